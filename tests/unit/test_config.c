/*
 * Configuration loading: the prototype's example loads unchanged (paths
 * aside), and every kind of error names the file and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

struct result {
	struct shim_config cfg;
	char *text;
	size_t len;
	int rc;
	unsigned errors, warnings;
};

static void load(struct result *r, const char *yaml)
{
	FILE *out = open_memstream(&r->text, &r->len);
	struct shim_config_diag diag = { out, 0, 0, 0 };

	r->rc = shim_config_load_buffer(&r->cfg, "test.yaml", yaml, strlen(yaml),
					&diag);
	fclose(out);
	r->errors = diag.errors;
	r->warnings = diag.warnings;
}

static void done(struct result *r)
{
	shim_config_free(&r->cfg);
	free(r->text);
}

static void expect_msg(struct result *r, const char *needle)
{
	if (strstr(r->text, needle) == NULL) {
		fail_msg("expected '%s' in:\n%s", needle, r->text);
	}
}

#define BASE                                                                 \
	"shim:\n  id: shim-1\n"                                              \
	"serial:\n  technician_side_path: pty:/tmp/t\n  device_side_path: /dev/ttyUSB0\n" \
	"storage:\n  root: /var/lib/shim\n"

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Writes text to a fresh temporary file with mode; name in path. */
static void write_temp(char path[64], const char *text, mode_t mode)
{
	int fd;

	snprintf(path, 64, "/tmp/shimcfgXXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* Loads a file through shim_config_load (the mode check applies). */
static void load_file(struct result *r, const char *path)
{
	FILE *out = open_memstream(&r->text, &r->len);
	struct shim_config_diag diag = { out, 0, 0, 0 };

	r->rc = shim_config_load(&r->cfg, path, &diag);
	fclose(out);
	r->errors = diag.errors;
	r->warnings = diag.warnings;
}

static void test_prototype_example_loads(void **state)
{
	struct result r;
	char path[512], copy[64], msgline[256];
	char *yaml;
	const char *src = getenv("SHIM_SRC");

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/data/prototype-config.example.yaml",
		 src != NULL ? src : ".");
	yaml = read_all(path);
	/* It holds technician secrets: as a 0644 file it is refused ... */
	write_temp(copy, yaml, 0644);
	load_file(&r, copy);
	assert_int_equal(r.rc, SHIM_EINVAL);
	snprintf(msgline, sizeof(msgline),
		 "%s: holds TOTP secrets but is readable by group or others (mode 0644)",
		 copy);
	expect_msg(&r, msgline);
	done(&r);
	/* ... and loads unchanged once only its owner may read it. */
	assert_int_equal(chmod(copy, 0600), 0);
	load_file(&r, copy);
	unlink(copy);
	if (r.rc != 0) {
		fail_msg("%s", r.text);
	}
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.errors, 0);
	assert_string_equal(r.cfg.shim_id, "shim-empump-001");
	assert_string_equal(r.cfg.tech_path, "/tmp/shim-tech");
	assert_string_equal(r.cfg.dev_path, "/tmp/shim-dev");
	assert_int_equal(r.cfg.tech_serial.baud, 9600);
	assert_int_equal(r.cfg.dev_serial.baud, 9600);
	assert_int_equal(r.cfg.gate.period, 30);
	assert_int_equal(r.cfg.gate.digits, 6);
	assert_int_equal(r.cfg.gate.window, 1);
	assert_int_equal(r.cfg.gate.max_failures, 5);
	assert_int_equal(r.cfg.gate.lockout_seconds, 300);
	assert_string_equal(r.cfg.storage_root, "/var/lib/shim");
	assert_true(r.cfg.heartbeat_period == 60.0);
	assert_int_equal(r.cfg.siem_transport, SHIM_SIEM_NOOP);
	assert_int_equal(r.cfg.ntechs, 2);
	assert_string_equal(r.cfg.techs[0].id, "alice@example.org");
	assert_int_equal(r.cfg.techs[0].secret_len, 10);
	assert_memory_equal(r.cfg.techs[0].secret, "Hello!\xde\xad\xbe\xef", 10);
	assert_string_equal(r.cfg.techs[1].id, "bob@example.org");
	/* The demo secrets are 80 bits: loaded, with a warning. */
	assert_true(r.warnings >= 2);
	snprintf(msgline, sizeof(msgline),
		 "%s:52: warning: totp_secret of 'alice@example.org'", copy);
	expect_msg(&r, msgline);
	free(yaml);
	done(&r);
}

static void test_unknown_key_names_line(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE "totp:\n  period: 30\n  perod: 60\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:10: unknown key 'totp.perod'");
	done(&r);
	load(&r, BASE "extra: 1\n");
	expect_msg(&r, "test.yaml:8: unknown key 'extra'");
	done(&r);
}

static void test_wrong_type(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE "totp:\n  period: thirty\n  window: [1, 2]\n");
	assert_int_equal(r.errors, 2);
	expect_msg(&r, "test.yaml:9: totp.period: expected a whole number, got 'thirty'");
	expect_msg(&r, "test.yaml:10: totp.window: expected a single value, not a list");
	done(&r);
	load(&r, BASE "siem:\n  insecure: maybe\n");
	expect_msg(&r, "test.yaml:9: siem.insecure: expected true or false, got 'maybe'");
	done(&r);
}

static void test_out_of_range(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE "totp:\n  digits: 9\n  period: 0\nserial:\n  baudrate: 12345\n");
	expect_msg(&r, "test.yaml:9: totp.digits: 9 is out of range (6 to 8)");
	expect_msg(&r, "test.yaml:10: totp.period: 0 is out of range");
	done(&r);
	load(&r, "shim:\n  id: s\nserial:\n  technician_side_path: a\n  device_side_path: b\n"
		 "  baudrate: 12345\n  parity: mark\n  data_bits: 6\nstorage:\n  root: /x\n");
	expect_msg(&r, "test.yaml:6: serial.baudrate: 12345 is not a standard baud rate");
	expect_msg(&r, "test.yaml:7: serial.parity: 'mark' is not one of none, even, odd");
	expect_msg(&r, "test.yaml:8: serial.data_bits: 6 is out of range (7 to 8)");
	done(&r);
}

static void test_duplicate_technician(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE "technicians:\n"
		      "  - technician_id: a\n    totp_secret: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n"
		      "  - technician_id: a\n    totp_secret: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:11: duplicate technician 'a'");
	done(&r);
}

static void test_malformed_secret_not_echoed(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE "technicians:\n"
		      "  - technician_id: a\n    totp_secret: \"SECRETVALUE1\"\n");
	expect_msg(&r, "test.yaml:10: totp_secret of 'a' is not valid base32");
	assert_null(strstr(r.text, "SECRETVALUE1"));
	done(&r);
	load(&r, BASE "technicians:\n  - technician_id: a\n    totp_secret: MZXW6===\n");
	expect_msg(&r, "test.yaml:10: totp_secret of 'a' is 3 bytes; it must be 10 to 64 bytes");
	done(&r);
}

static void test_missing_required(void **state)
{
	struct result r;

	(void)state;
	load(&r, "shim:\n  description: x\n");
	assert_int_equal(r.errors, 4);
	expect_msg(&r, "test.yaml: missing required key 'shim.id'");
	expect_msg(&r, "test.yaml: missing required key 'serial.technician_side_path'");
	expect_msg(&r, "test.yaml: missing required key 'serial.device_side_path'");
	expect_msg(&r, "test.yaml: missing required key 'storage.root'");
	done(&r);
	load(&r, BASE "technicians:\n  - technician_id: a\n");
	expect_msg(&r, "test.yaml:9: technician needs 'totp_secret'");
	done(&r);
}

static void test_syntax_error_line(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE "totp:\n  period: [30\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:");
	expect_msg(&r, "YAML syntax");
	done(&r);
}

static void test_extensions(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE
	     "serial:\n  technician_side_path: pty:/tmp/t\n  device_side_path: /dev/ttyS0\n"
	     "  baudrate: 115200\n  parity: even\n  data_bits: 7\n  stop_bits: 2\n"
	     "  flow_control: rtscts\n  technician_presence: dcd\n"
	     "  device:\n    baudrate: 9600\n    parity: none\n    data_bits: 8\n");
	/* serial appears twice in this document: a duplicate key error. */
	expect_msg(&r, "duplicate key 'serial'");
	done(&r);
	load(&r,
	     "shim:\n  id: shim-1\n"
	     "serial:\n  technician_side_path: pty:/tmp/t\n  device_side_path: /dev/ttyS0\n"
	     "  baudrate: 115200\n  parity: even\n  data_bits: 7\n  stop_bits: 2\n"
	     "  flow_control: rtscts\n  technician_presence: dcd\n"
	     "  device:\n    baudrate: 9600\n    parity: none\n    data_bits: 8\n"
	     "storage:\n  root: /var/lib/shim\n  max_bytes: 2G\n  min_free_bytes: 100M\n"
	     "totp:\n  algorithm: SHA256\n  digits: 8\n  period: 60\n"
	     "session:\n  idle_timeout: 900\n  max_duration: 28800\n  reconnect_grace: 30\n"
	     "recording:\n  on_failure: stop\n  sync_interval_ms: 50\n"
	     "tamper:\n  heartbeat_period: 60.0\n  sensors:\n"
	     "    - {type: file, path: /run/shim/case-open, event: case_opened}\n"
	     "    - {type: gpio, chip: gpiochip0, line: 17, active: low, event: case_opened}\n"
	     "siem:\n  transport: syslog-tls\n  host: 127.0.0.1\n  port: 6514\n"
	     "  server_name: localhost\n  ca: /etc/shim/siem-ca.pem\n"
	     "  client_cert: /etc/shim/client.pem\n  client_key: /etc/shim/client.key\n");
	if (r.rc != 0) {
		fail_msg("%s", r.text);
	}
	assert_int_equal(r.cfg.tech_serial.baud, 115200);
	assert_int_equal(r.cfg.tech_serial.parity, SHIM_PARITY_EVEN);
	assert_int_equal(r.cfg.tech_serial.data_bits, 7);
	assert_int_equal(r.cfg.tech_serial.stop_bits, 2);
	assert_int_equal(r.cfg.tech_serial.flow, SHIM_FLOW_RTSCTS);
	assert_int_equal(r.cfg.tech_serial.presence, SHIM_PRESENCE_DCD);
	assert_int_equal(r.cfg.dev_serial.baud, 9600);
	assert_int_equal(r.cfg.dev_serial.parity, SHIM_PARITY_NONE);
	assert_int_equal(r.cfg.dev_serial.data_bits, 8);
	assert_int_equal(r.cfg.dev_serial.stop_bits, 2);
	assert_true(r.cfg.max_bytes == 2ull * 1024 * 1024 * 1024);
	assert_true(r.cfg.min_free_bytes == 100ull * 1024 * 1024);
	assert_int_equal(r.cfg.gate.md, SHIM_MD_SHA256);
	assert_int_equal(r.cfg.gate.digits, 8);
	assert_int_equal(r.cfg.on_failure, SHIM_ON_FAILURE_STOP);
	assert_int_equal(r.cfg.nsensors, 2);
	assert_int_equal(r.cfg.sensors[0].type, SHIM_SENSOR_FILE);
	assert_string_equal(r.cfg.sensors[0].path, "/run/shim/case-open");
	assert_int_equal(r.cfg.sensors[1].type, SHIM_SENSOR_GPIO);
	assert_int_equal(r.cfg.sensors[1].line, 17);
	assert_int_equal(r.cfg.sensors[1].active_low, 1);
	assert_string_equal(r.cfg.sensors[1].event, "case_opened");
	assert_int_equal(r.cfg.siem_transport, SHIM_SIEM_SYSLOG_TLS);
	assert_string_equal(r.cfg.siem_server_name, "localhost");
	assert_int_equal(r.cfg.siem_port, 6514);
	done(&r);
}

static void test_insecure_tcp_needs_opt_in(void **state)
{
	struct result r;

	(void)state;
	load(&r, BASE "siem:\n  transport: syslog-tcp\n  host: 127.0.0.1\n");
	expect_msg(&r, "syslog-tcp sends events in clear text");
	done(&r);
	load(&r, BASE "siem:\n  transport: syslog-tcp\n  host: 127.0.0.1\n  insecure: true\n");
	assert_int_equal(r.rc, 0);
	done(&r);
}

static void test_technicians_file_and_enrol(void **state)
{
	char dir[] = "/tmp/shimcfgXXXXXX";
	char cfgpath[256], techs[256], yaml[1024];
	struct shim_config cfg;
	struct shim_config_diag diag = { stderr, 0, 0, 1 };
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cfgpath, sizeof(cfgpath), "%s/config.yaml", dir);
	snprintf(techs, sizeof(techs), "%s/technicians.yaml", dir);
	snprintf(yaml, sizeof(yaml), BASE "technicians_file: technicians.yaml\n");
	f = fopen(cfgpath, "w");
	fputs(yaml, f);
	fclose(f);

	assert_int_equal(shim_config_add_technician(techs, "dave", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
						    "2026-11-24", "bench \"A\""), 0);
	assert_int_equal(stat(techs, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(shim_config_add_technician(techs, "erin", "JBSWY3DPEHPK3PXPJBSWY3DP",
						    "2026-11-24", NULL), 0);
	assert_int_equal(shim_config_add_technician(techs, "dave", "JBSWY3DPEHPK3PXPJBSWY3DP",
						    "2026-11-24", NULL), SHIM_EEXIST);

	assert_int_equal(shim_config_load(&cfg, cfgpath, &diag), 0);
	assert_int_equal(cfg.ntechs, 2);
	assert_string_equal(cfg.techs[0].id, "dave");
	assert_string_equal(cfg.techs[1].id, "erin");
	assert_string_equal(cfg.technicians_file, techs);
	shim_config_free(&cfg);
	unlink(techs);
	unlink(cfgpath);
	rmdir(dir);
}

/* A config or technicians file holding secrets that group or others may
 * read is an error naming the file, not a warning. */
static void test_secret_file_mode_refused(void **state)
{
	const char *yaml = BASE "technicians:\n  - technician_id: a\n"
			   "    totp_secret: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n";
	char path[64], dir[] = "/tmp/shimcfgXXXXXX", cfgpath[256], techs[256];
	char want[512];
	struct result r;
	FILE *f;

	(void)state;
	write_temp(path, yaml, 0640);
	load_file(&r, path);
	assert_int_equal(r.rc, SHIM_EINVAL);
	assert_int_equal(r.errors, 1);
	snprintf(want, sizeof(want),
		 "%s: holds TOTP secrets but is readable by group or others (mode 0640): chmod 600",
		 path);
	expect_msg(&r, want);
	done(&r);
	chmod(path, 0600);
	load_file(&r, path);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.warnings, 0);
	done(&r);
	unlink(path);
	/* a config without secrets may be world-readable */
	write_temp(path, BASE, 0644);
	load_file(&r, path);
	assert_int_equal(r.rc, 0);
	done(&r);
	unlink(path);

	/* the technicians file the config names */
	assert_non_null(mkdtemp(dir));
	snprintf(cfgpath, sizeof(cfgpath), "%s/config.yaml", dir);
	snprintf(techs, sizeof(techs), "%s/technicians.yaml", dir);
	f = fopen(cfgpath, "w");
	fputs(BASE "technicians_file: technicians.yaml\n", f);
	fclose(f);
	chmod(cfgpath, 0644);
	f = fopen(techs, "w");
	fputs("technicians:\n  - technician_id: b\n"
	      "    totp_secret: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n", f);
	fclose(f);
	chmod(techs, 0604);
	load_file(&r, cfgpath);
	assert_int_equal(r.rc, SHIM_EINVAL);
	snprintf(want, sizeof(want), "%s: holds TOTP secrets but is readable by group or others (mode 0604)",
		 techs);
	expect_msg(&r, want);
	done(&r);
	chmod(techs, 0600);
	load_file(&r, cfgpath);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cfg.ntechs, 1);
	done(&r);
	unlink(techs);
	unlink(cfgpath);
	rmdir(dir);
}

static void test_session_and_clock_keys(void **state)
{
	struct result r;
	char big[400];

	(void)state;
	/* defaults */
	load(&r, BASE);
	assert_int_equal(r.rc, 0);
	assert_null(r.cfg.device_logout);
	assert_int_equal(r.cfg.device_logout_len, 0);
	assert_int_equal(r.cfg.device_reset, SHIM_DEVICE_RESET_NONE);
	assert_true(r.cfg.device_reset_hold == 0.5);
	assert_true(r.cfg.clock_max_jump == 120);
	assert_int_equal(r.cfg.min_free_explicit, 0);
	done(&r);

	/* escapes give the bytes, an embedded NUL included */
	load(&r, BASE "session:\n  device_logout: \"logout\\r\\x04\\0!\"\n"
		      "  device_reset: dtr\n  device_reset_hold: 0.25\n"
		      "clock:\n  max_jump: 30\n");
	if (r.rc != 0) {
		fail_msg("%s", r.text);
	}
	assert_int_equal(r.cfg.device_logout_len, 10);
	assert_memory_equal(r.cfg.device_logout, "logout\r\x04\0!", 10);
	assert_int_equal(r.cfg.device_reset, SHIM_DEVICE_RESET_DTR);
	assert_true(r.cfg.device_reset_hold == 0.25);
	assert_true(r.cfg.clock_max_jump == 30);
	done(&r);

	/* exactly 256 bytes is allowed, 257 is not */
	memset(big, 'x', sizeof(big));
	big[256] = '\0';
	{
		char yaml[1024];

		snprintf(yaml, sizeof(yaml), BASE "session:\n  device_logout: \"%s\"\n", big);
		load(&r, yaml);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.cfg.device_logout_len, 256);
		done(&r);
		big[256] = 'x';
		big[257] = '\0';
		snprintf(yaml, sizeof(yaml), BASE "session:\n  device_logout: \"%s\"\n", big);
		load(&r, yaml);
		assert_int_equal(r.rc, SHIM_EINVAL);
		expect_msg(&r, "test.yaml:9: session.device_logout: 257 bytes is too long (at most 256)");
		assert_null(r.cfg.device_logout);
		done(&r);
	}

	/* an empty string is no logout */
	load(&r, BASE "session:\n  device_logout: \"\"\n");
	assert_int_equal(r.rc, 0);
	assert_null(r.cfg.device_logout);
	assert_int_equal(r.cfg.device_logout_len, 0);
	done(&r);

	/* errors name file and line */
	load(&r, BASE "session:\n  device_reset: rts\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:9: session.device_reset: 'rts' is not one of none, dtr");
	done(&r);
	load(&r, BASE "session:\n  device_reset_hold: 0.01\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:9: session.device_reset_hold: 0.01 is out of range (0.05 to 10)");
	done(&r);
	load(&r, BASE "session:\n  device_reset_hold: 11\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	done(&r);
	load(&r, BASE "clock:\n  max_jump: 4\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:9: clock.max_jump: 4 is out of range (5 to 86400)");
	done(&r);
	load(&r, BASE "clock:\n  max_jump: 86401\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	done(&r);
	load(&r, BASE "clock:\n  max_jmp: 60\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:9: unknown key 'clock.max_jmp'");
	done(&r);
	load(&r, BASE "session:\n  device_logout: [a, b]\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:9: session.device_logout: expected a single value");
	done(&r);
	/* an explicit reserve is kept as given */
	load(&r, BASE "  min_free_bytes: 0\n");
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cfg.min_free_explicit, 1);
	done(&r);
}

static void test_custody_keys(void **state)
{
	struct result r;

	(void)state;
	/* no section: no custody */
	load(&r, BASE);
	assert_int_equal(r.rc, 0);
	assert_null(r.cfg.custody_url);
	done(&r);
	/* defaults; the name from the URL; identity from siem */
	load(&r, BASE "siem:\n  client_cert: /c.pem\n  client_key: /c.key\n"
		 "custody:\n  url: https://store.example:8443/custody/\n"
		 "  ca: /ca.pem\n");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.cfg.custody_server_name, "store.example");
	assert_string_equal(r.cfg.custody_client_cert, "/c.pem");
	assert_string_equal(r.cfg.custody_client_key, "/c.key");
	assert_int_equal(r.cfg.custody_keep_local_days, 7);
	assert_true(r.cfg.custody_outage_alarm_seconds == 900);
	assert_true(r.cfg.custody_retry_max_seconds == 300);
	done(&r);
	/* every key */
	load(&r, BASE "custody:\n  url: https://[::1]/c\n  ca: /ca.pem\n"
		 "  client_cert: /x.pem\n  client_key: /x.key\n"
		 "  server_name: store.test\n  keep_local_days: 0\n"
		 "  outage_alarm_seconds: 60\n  retry_max_seconds: 5\n"
		 "  timeout_seconds: 9\n  max_bytes_per_second: 2M\n");
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.cfg.custody_server_name, "store.test");
	assert_int_equal(r.cfg.custody_keep_local_days, 0);
	assert_int_equal(r.cfg.custody_max_bytes_per_second, 2u * 1024 * 1024);
	done(&r);
	/* errors name file and line */
	load(&r, BASE "custody:\n  url: http://store/c\n  keep_local_days: -1\n"
		 "  retry_max_seconds: 0\n  colour: blue\n");
	assert_int_equal(r.rc, SHIM_EINVAL);
	expect_msg(&r, "test.yaml:9: custody.url: 'http://store/c' must be an https:// URL");
	expect_msg(&r, "test.yaml:10: custody.keep_local_days");
	expect_msg(&r, "test.yaml:11: custody.retry_max_seconds");
	expect_msg(&r, "test.yaml:12: unknown key 'custody.colour'");
	expect_msg(&r, "test.yaml:9: custody: needs 'custody.ca'");
	expect_msg(&r, "needs 'custody.client_cert' and 'custody.client_key'");
	done(&r);
	load(&r, BASE "custody:\n  url: https://a@b/c\n  ca: /ca\n"
		 "  client_cert: /x\n  client_key: /y\n");
	expect_msg(&r, "test.yaml:9: custody.url: 'https://a@b/c' needs a host");
	done(&r);
	load(&r, BASE "custody:\n  ca: /ca\n");
	expect_msg(&r, "test.yaml:9: custody: needs 'custody.url'");
	done(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prototype_example_loads),
		cmocka_unit_test(test_unknown_key_names_line),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_duplicate_technician),
		cmocka_unit_test(test_malformed_secret_not_echoed),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_syntax_error_line),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_insecure_tcp_needs_opt_in),
		cmocka_unit_test(test_technicians_file_and_enrol),
		cmocka_unit_test(test_secret_file_mode_refused),
		cmocka_unit_test(test_session_and_clock_keys),
		cmocka_unit_test(test_custody_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
