/*
 * shimctl firmware-config [CONFIG] [-o FILE]
 * shimctl firmware-config --show BLOB
 *
 * Turns the shim's YAML configuration into the provisioning blob that the
 * firmware reads at boot (core/provision.h), and shows a blob's settings
 * without its secrets. The blob holds the technicians' TOTP secrets: it
 * is written 0600 to a new file (never over an existing one or through a
 * symbolic link), or to stdout when that is not a terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "keys.h"
#include "otp.h"
#include "provision.h"
#include "subcommands.h"
#include "util.h"

#define PROG "shimctl firmware-config"

static void usage(void)
{
	fprintf(stderr,
		"usage: " PROG " [CONFIG] [-o FILE]\n"
		"       " PROG " --show BLOB|-\n");
}

/* Seconds (the YAML's unit) to milliseconds; the loader bounded them. */
static uint32_t to_ms(double s)
{
	return (uint32_t)(s * 1000.0 + 0.5);
}

static int fill_provision(const struct shim_config *cfg,
			  struct shim_provision *p)
{
	int rc;

	shim_provision_defaults(p);
	if (strlen(cfg->shim_id) > SHIM_PROV_SHIM_ID_MAX) {
		return SHIM_ERANGE;
	}
	memcpy(p->shim_id, cfg->shim_id, strlen(cfg->shim_id) + 1);
	p->gate = cfg->gate;
	/* Whether the unit started before is the firmware's to know. */
	p->gate.state_required = 0;
	p->idle_timeout_ms = to_ms(cfg->idle_timeout);
	p->max_duration_ms = to_ms(cfg->max_duration);
	p->reconnect_grace_ms = to_ms(cfg->reconnect_grace);
	p->device_reset_hold_ms = to_ms(cfg->device_reset_hold);
	p->device_reset = cfg->device_reset == SHIM_DEVICE_RESET_DTR ?
				  SHIM_PROV_RESET_DTR :
				  SHIM_PROV_RESET_NONE;
	p->on_failure = cfg->on_failure == SHIM_ON_FAILURE_CONTINUE ?
				SHIM_PROV_ON_FAILURE_CONTINUE :
				SHIM_PROV_ON_FAILURE_STOP;
	if (cfg->device_logout_len > SHIM_PROV_LOGOUT_MAX) {
		return SHIM_ERANGE;
	}
	if (cfg->device_logout_len > 0) {
		memcpy(p->device_logout, cfg->device_logout,
		       cfg->device_logout_len);
	}
	p->device_logout_len = (uint16_t)cfg->device_logout_len;
	p->heartbeat_period_ms = to_ms(cfg->heartbeat_period);
	p->clock_max_jump = (uint32_t)(cfg->clock_max_jump + 0.5);
	if (cfg->recording_public_key != NULL) {
		rc = shim_keys_load_public(cfg->recording_public_key,
					   p->record_key);
		if (rc != 0) {
			fprintf(stderr, PROG ": recording.public_key %s: %s\n",
				cfg->recording_public_key, shim_strerror(rc));
			return rc;
		}
		p->has_record_key = 1;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_blob(const char *out, const uint8_t *blob, size_t len)
{
	int fd;

	if (out == NULL) {
		if (isatty(STDOUT_FILENO)) {
			fprintf(stderr, PROG ": refusing to write the binary "
					"blob (it holds secrets) to a terminal; "
					"use -o FILE or a redirection\n");
			return -1;
		}
		if (write_all(STDOUT_FILENO, blob, len) != 0) {
			fprintf(stderr, PROG ": stdout: %s\n", strerror(errno));
			return -1;
		}
		return 0;
	}
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		fprintf(stderr, PROG ": %s: %s%s\n", out, strerror(errno),
			errno == EEXIST ? " (not overwritten)" : "");
		return -1;
	}
	if (fchmod(fd, 0600) != 0 || write_all(fd, blob, len) != 0 ||
	    fsync(fd) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", out, strerror(errno));
		close(fd);
		unlink(out);
		return -1;
	}
	if (close(fd) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", out, strerror(errno));
		unlink(out);
		return -1;
	}
	return 0;
}

static int make_blob(const char *config_path, const char *out)
{
	static uint8_t blob[SHIM_PROV_BLOB_MAX(SHIM_PROVISION_MAX_TECHS)];
	struct shim_config cfg;
	struct shim_config_diag diag = { stderr, 0, 0, 0 };
	struct shim_provision p;
	enum shim_prov_reason why = SHIM_PROV_R_OK;
	size_t len = 0;
	int rc, ex = 1;

	if (shim_config_load(&cfg, config_path, &diag) != 0) {
		fprintf(stderr, PROG ": %s: %u error(s); no blob written\n",
			config_path, diag.errors);
		shim_config_free(&cfg);
		return 1;
	}
	rc = fill_provision(&cfg, &p);
	if (rc != 0) {
		goto out;
	}
	if (cfg.ntechs > SHIM_PROVISION_MAX_TECHS) {
		fprintf(stderr, PROG ": %s: %zu technicians; the firmware "
				"holds at most %d\n",
			config_path, cfg.ntechs, SHIM_PROVISION_MAX_TECHS);
		goto out;
	}
	rc = shim_provision_encode(&p, cfg.techs, cfg.ntechs, blob,
				   sizeof(blob), &len, &why);
	if (rc != 0) {
		fprintf(stderr, PROG ": %s: %s\n", config_path,
			why == SHIM_PROV_R_NO_TECH ?
				"no technician (the firmware would refuse every code)" :
				shim_provision_reason_str(why));
		goto out;
	}
	if (write_blob(out, blob, len) != 0) {
		goto out;
	}
	fprintf(stderr, "%s: %zu bytes, %zu technician(s)\n",
		out != NULL ? out : "blob", len, cfg.ntechs);
	ex = 0;
out:
	shim_memzero(blob, sizeof(blob));
	shim_provision_wipe(&p, NULL, 0);
	shim_config_free(&cfg);
	return ex;
}

/* ---- --show ------------------------------------------------------------- */

/* Reads at most cap bytes; *len > SHIM_PROV_MAX_LEN tells "too long". */
static int read_blob(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	int fd = STDIN_FILENO;

	*len = 0;
	if (strcmp(path, "-") != 0) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			return -1;
		}
	}
	while (*len < cap) {
		ssize_t n = read(fd, buf + *len, cap - *len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			if (fd != STDIN_FILENO) {
				close(fd);
			}
			return -1;
		}
		if (n == 0) {
			break;
		}
		*len += (size_t)n;
	}
	if (fd != STDIN_FILENO) {
		close(fd);
	}
	return 0;
}

/* "30 s", "0.5 s" */
static void print_ms(const char *name, uint32_t ms)
{
	if (ms % 1000 == 0) {
		printf("%s: %u s\n", name, ms / 1000);
	} else {
		printf("%s: %u.%03u s\n", name, ms / 1000, ms % 1000);
	}
}

static void show(const struct shim_provision *p,
		 const struct shim_technician *t, size_t len, uint32_t crc)
{
	char hex[2 * SHIM_P256_PUB_LEN + 1];
	size_t i;

	printf("format: SHIMPRV1 version %u, %zu bytes, crc32 %08x\n",
	       p->version, len, crc);
	printf("shim_id: %s\n", p->shim_id);
	printf("totp: algorithm %s, digits %u, period %u s, window %u\n",
	       shim_md_name(p->gate.md), p->gate.digits, p->gate.period,
	       p->gate.window);
	printf("lockout: %u failures in %u s\n", p->gate.max_failures,
	       p->gate.lockout_seconds);
	printf("rate_limit: %u failures in %u s\n", p->gate.rate_failures,
	       p->gate.rate_seconds);
	print_ms("idle_timeout", p->idle_timeout_ms);
	print_ms("max_duration", p->max_duration_ms);
	print_ms("reconnect_grace", p->reconnect_grace_ms);
	printf("device_logout: %u bytes\n", p->device_logout_len);
	if (p->device_reset == SHIM_PROV_RESET_DTR) {
		printf("device_reset: dtr, held %u ms\n",
		       p->device_reset_hold_ms);
	} else {
		printf("device_reset: none\n");
	}
	printf("on_failure: %s\n",
	       p->on_failure == SHIM_PROV_ON_FAILURE_STOP ? "stop" : "continue");
	print_ms("heartbeat_period", p->heartbeat_period_ms);
	printf("clock_max_jump: %u s\n", p->clock_max_jump);
	if (p->has_record_key) {
		shim_hex_encode(p->record_key, sizeof(p->record_key), hex);
		printf("recording_public_key: %s\n", hex);
	} else {
		printf("recording_public_key: none\n");
	}
	if (p->record_size != 0) {
		printf("record_size: %u bytes\n", p->record_size);
	} else {
		printf("record_size: build default\n");
	}
	/* IDs and the count only: never a secret, nor its length. */
	printf("technicians: %zu\n", p->ntechs);
	for (i = 0; i < p->ntechs; i++) {
		printf("  %s\n", t[i].id);
	}
}

static int show_blob(const char *path)
{
	static uint8_t buf[SHIM_PROV_MAX_LEN + 1];
	static struct shim_technician techs[SHIM_PROVISION_MAX_TECHS];
	struct shim_provision p;
	size_t len;
	int rc, ex = 1;

	if (read_blob(path, buf, sizeof(buf), &len) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return 1;
	}
	rc = shim_provision_decode(buf, len, &p, techs,
				   SHIM_PROVISION_MAX_TECHS);
	if (rc != 0) {
		fprintf(stderr, PROG ": %s: refused: %s (%s) at byte %u\n",
			path, shim_provision_reason_str(p.reason),
			shim_err_name(rc), p.error_offset);
		goto out;
	}
	show(&p, techs, len, shim_get_u32(buf + len - SHIM_PROV_CRC_LEN));
	ex = fflush(stdout) == 0 ? 0 : 1;
out:
	shim_provision_wipe(&p, techs, SHIM_PROVISION_MAX_TECHS);
	shim_memzero(buf, len);
	return ex;
}

int cmd_firmware_config_main(int argc, char **argv, const char *config_path)
{
	const char *config = NULL, *out = NULL, *blob = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-o") == 0 ||
		     strcmp(argv[i], "--out") == 0) && i + 1 < argc) {
			out = argv[++i];
		} else if ((strcmp(argv[i], "--show") == 0 ||
			    strcmp(argv[i], "--dump") == 0) && i + 1 < argc) {
			blob = argv[++i];
		} else if (argv[i][0] != '-' && config == NULL) {
			config = argv[i];
		} else {
			usage();
			return 2;
		}
	}
	if (blob != NULL) {
		if (config != NULL || out != NULL) {
			usage();
			return 2;
		}
		return show_blob(blob);
	}
	return make_blob(config != NULL ? config : config_path, out);
}
