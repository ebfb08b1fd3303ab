/*
 * shimctl tamper: the operator's side of the tamper latch.
 *
 *   shimctl tamper status [--identity FILE]
 *   shimctl tamper reset --token TOKEN [--identity FILE] [--now UNIX]
 *
 * status reads the state directory (<storage_root>/state), also while
 * shimd runs (it only reads what shimd persisted), and shows the latch
 * identity "<seq>-<boot>" that a reset token must name (shimctl token
 * issue ... --latch ID).
 *
 * reset hands the token to shimd when its admin socket answers (the
 * running daemon owns the latch). With shimd stopped it works on the state
 * directory itself, holding shimd's locks so shimd cannot start halfway
 * through; it refuses while shimd holds them. The token is checked
 * against tamper.reset_authority_public_key, this shim's ID and the latch
 * identity, and the reset is refused while a tamper sensor reads active
 * (or, with on_sensor_fault: stop, cannot be read); a refused token is not
 * spent. The reset is recorded in the state and reported as a signed
 * tamper_reset event at shimd's next start. The identity key (default
 * <storage_root>/keys/identity.key, when present) signs the state as
 * shimd does.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "sensors.h"
#include "subcommands.h"
#include "tamper.h"
#include "toolutil.h"
#include "util.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: shimctl tamper status [--identity FILE]\n"
		"       shimctl tamper reset --token TOKEN [--identity FILE]\n");
	return 2;
}

/*
 * Takes the locks a running shimd holds (<storage_root>/shimd.lock and
 * the event log's eventlog.lock) so that shimd cannot start while the
 * state is changed. Returns 1 when one of them is held already (shimd
 * runs), 0 when both are now ours (fds[] to close when done).
 */
static int take_locks(const struct shim_config *cfg, int fds[2])
{
	static const char *const names[2] = { "shimd.lock", "eventlog.lock" };
	char *path;
	int i;

	for (i = 0; i < 2; i++) {
		fds[i] = -1;
	}
	for (i = 0; i < 2; i++) {
		path = shim_config_path(cfg, names[i]);
		if (path == NULL) {
			return 1;
		}
		fds[i] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		free(path);
		if (fds[i] >= 0 && flock(fds[i], LOCK_EX | LOCK_NB) != 0) {
			return 1;
		}
	}
	return 0;
}

/* 1 when something answers on the admin socket. */
static int daemon_running(const char *path)
{
	struct sockaddr_un sa;
	int fd, up;

	if (path == NULL || strlen(path) >= sizeof(sa.sun_path)) {
		return 0;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return 0;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return up;
}

static void print_time(const char *label, int64_t ns)
{
	char buf[32];
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;

	if (ns <= 0 || gmtime_r(&t, &tm) == NULL) {
		printf("%s-\n", label);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s%s\n", label, buf);
}

/* 0 when the sensors allow a reset; otherwise prints why and returns 1.
 * As in shimd: an active tamper sensor refuses, and so does one that
 * cannot be read when on_sensor_fault is stop. */
static int sensors_refuse(const struct shim_config *cfg)
{
	struct shim_sensors *ss = NULL;
	const char *event = NULL;
	char detail[128];
	enum shim_sensors_state st;
	int rc;

	rc = shim_sensors_open(&ss, cfg);
	if (rc != 0) {
		fprintf(stderr, "shimctl: reset refused: sensors cannot be "
				"opened: %s\n", shim_strerror(rc));
		return 1;
	}
	st = shim_sensors_tamper_state(ss, &event, detail, sizeof(detail));
	rc = 0;
	if (st == SHIM_SENSORS_ACTIVE ||
	    (st == SHIM_SENSORS_FAULT &&
	     cfg->on_sensor_fault == SHIM_ON_FAILURE_STOP)) {
		fprintf(stderr, "shimctl: reset refused: sensor %s %s (%s); "
				"the token was not used\n", event ? event : "-",
			st == SHIM_SENSORS_ACTIVE ? "still active" :
						    "cannot be read", detail);
		rc = 1;
	}
	shim_sensors_close(ss);
	return rc;
}

static void print_sensors(const struct shim_config *cfg)
{
	struct shim_sensors *ss = NULL;
	const char *event = NULL;
	char detail[128];
	enum shim_sensors_state st;

	if (cfg->nsensors == 0 || shim_sensors_open(&ss, cfg) != 0) {
		return;
	}
	st = shim_sensors_tamper_state(ss, &event, detail, sizeof(detail));
	if (st == SHIM_SENSORS_CLEAR) {
		printf("sensors: clear\n");
	} else {
		printf("sensors: %s %s (%s)\n", event ? event : "-",
		       st == SHIM_SENSORS_ACTIVE ? "active" : "fault", detail);
	}
	shim_sensors_close(ss);
}

int cmd_tamper_main(int argc, char **argv, const char *config_path)
{
	struct shim_config cfg;
	struct shim_linux_port lp;
	struct shim_tamper t;
	struct shim_reset_token tok;
	uint8_t auth[SHIM_P256_PUB_LEN];
	const char *identity = tool_opt(argc, argv, "--identity");
	const char *token = tool_opt(argc, argv, "--token");
	const char *now_s = tool_opt(argc, argv, "--now");
	const char *why = "";
	char *state_dir = NULL, *idpath = NULL;
	char lid[SHIM_LATCH_ID_MAX], tlid[SHIM_LATCH_ID_MAX];
	int port_up = 0, reset, rc, status = 1, running = 0;
	int lock_fds[2] = { -1, -1 };
	int64_t now;

	if (argc < 2 || (strcmp(argv[1], "status") != 0 &&
			 strcmp(argv[1], "reset") != 0)) {
		return usage();
	}
	reset = strcmp(argv[1], "reset") == 0;
	if (reset && token == NULL) {
		return usage();
	}
	if (tool_load_config(config_path, &cfg, 0) < 0) {
		return 1;
	}
	if (cfg.shim_id == NULL) {
		fprintf(stderr, "shimctl: %s names no shim.id\n", config_path);
		goto out;
	}
	if (reset && daemon_running(cfg.admin_socket)) {
		/* The running daemon owns the latch: it checks the token. */
		char *req = malloc(strlen(token) + 16);

		if (req == NULL) {
			goto out;
		}
		snprintf(req, strlen(token) + 16, "tamper-reset %s", token);
		status = tool_admin_request(config_path, req);
		free(req);
		goto out;
	}
	if (daemon_running(cfg.admin_socket) || take_locks(&cfg, lock_fds)) {
		if (reset) {
			fprintf(stderr, "shimctl: shimd is running (%s): stop it "
					"first; the latch is held by the "
					"running daemon\n", cfg.admin_socket);
			goto out;
		}
		/* Status only reads what the running shimd persisted. */
		running = 1;
	}
	state_dir = shim_config_path(&cfg, "state");
	idpath = identity != NULL ? strdup(identity) :
				    shim_keys_identity_path(&cfg);
	if (state_dir == NULL || idpath == NULL) {
		goto out;
	}
	rc = shim_linux_port_init(&lp, state_dir);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", state_dir, shim_strerror(rc));
		goto out;
	}
	port_up = 1;
	if (access(idpath, F_OK) == 0) {
		rc = shim_linux_port_load_identity(&lp, idpath);
		if (rc != 0) {
			fprintf(stderr, "shimctl: identity key %s: %s\n", idpath,
				shim_strerror(rc));
			goto out;
		}
	} else if (identity != NULL) {
		fprintf(stderr, "shimctl: %s: no such file\n", identity);
		goto out;
	}
	rc = shim_tamper_load(&t, &lp.port, cfg.shim_id);
	if (rc != 0) {
		fprintf(stderr, "shimctl: tamper state: %s\n", shim_strerror(rc));
		goto out;
	}
	if (shim_tamper_latch_id(&t, lid, sizeof(lid)) != 0) {
		snprintf(lid, sizeof(lid), "-");
	}
	if (!reset) {
		printf("shim: %s\nlatch: %s\n", cfg.shim_id,
		       t.latched ? "LATCHED (emergency stop)" : "clear");
		if (t.latched) {
			printf("latch_id: %s\n", lid);
			printf("event: %s\ndetail: %s\n", t.event, t.detail);
			print_time("since: ", t.since_ns);
		}
		printf("boot_count: %llu\nresets: %u\n",
		       (unsigned long long)t.boot_count, t.reset_count);
		if (t.reset_count > 0) {
			if (shim_latch_id_format(t.reset_latch_seq,
						 t.reset_latch_boot, tlid,
						 sizeof(tlid)) != 0) {
				snprintf(tlid, sizeof(tlid), "-");
			}
			printf("last reset: latch %s, %s by %s (%s)%s\n", tlid,
			       t.reset_method, t.reset_by, t.reset_reason,
			       t.reset_pending ? ", not yet reported" : "");
		}
		if (running) {
			printf("shimd: running (state as last persisted)\n");
		} else {
			print_sensors(&cfg);
		}
		status = t.latched ? 1 : 0;
		goto out;
	}

	if (cfg.reset_authority_public_key == NULL) {
		fprintf(stderr, "shimctl: the configuration names no "
				"tamper.reset_authority_public_key\n");
		goto out;
	}
	rc = shim_keys_load_public(cfg.reset_authority_public_key, auth);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", cfg.reset_authority_public_key,
			rc == SHIM_EINVAL ? "not a P-256 public key" :
					    shim_strerror(rc));
		goto out;
	}
	rc = shim_token_parse(token, strlen(token), &tok);
	if (rc == SHIM_ENOTSUP) {
		fprintf(stderr, "shimctl: reset refused: token of format 1 names "
				"no latch: issue a new one with --latch %s\n",
			lid);
		goto out;
	}
	if (rc != 0) {
		fprintf(stderr, "shimctl: the token is malformed\n");
		goto out;
	}
	now = shim_linux_wall_ns() / 1000000000LL;
	if (now_s != NULL) {
		now = strtoll(now_s, NULL, 10);
	}
	if (!t.latched) {
		printf("the latch is not set; the token was not used\n");
		status = 0;
		goto out;
	}
	rc = shim_tamper_check_token(&t, &tok, auth, now, &why);
	if (rc != 0) {
		if (rc == SHIM_EACCES && (tok.latch_seq != t.latch_seq ||
					  tok.latch_boot != t.latch_boot) &&
		    strcmp(tok.shim_id, cfg.shim_id) == 0 &&
		    shim_latch_id_format(tok.latch_seq, tok.latch_boot, tlid,
					 sizeof(tlid)) == 0) {
			fprintf(stderr, "shimctl: reset refused: %s (token: "
					"latch %s; latched: %s)\n", why, tlid,
				lid);
		} else {
			fprintf(stderr, "shimctl: reset refused: %s\n", why);
		}
		goto out;
	}
	if (sensors_refuse(&cfg) != 0) {
		goto out;
	}
	rc = shim_tamper_reset_token(&t, &tok, auth, now, &why);
	if (rc != 0) {
		fprintf(stderr, "shimctl: reset refused: %s\n", why);
		goto out;
	}
	printf("latch cleared (latch %s, was %s); reset by %s: %s\n", lid,
	       t.reset_cleared, t.reset_by,
	       t.reset_reason[0] ? t.reset_reason : "(no reason)");
	status = 0;
out:
	if (port_up) {
		shim_linux_port_fini(&lp);
	}
	for (rc = 0; rc < 2; rc++) {
		if (lock_fds[rc] >= 0) {
			close(lock_fds[rc]);
		}
	}
	free(state_dir);
	free(idpath);
	shim_config_free(&cfg);
	return status;
}
