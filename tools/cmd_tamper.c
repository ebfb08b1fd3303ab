/*
 * shimctl tamper: the operator's side of the tamper latch.
 *
 *   shimctl tamper status [--identity FILE]
 *   shimctl tamper reset --token TOKEN [--identity FILE] [--now UNIX]
 *
 * Both work on the state directory (<storage_root>/state) while shimd is
 * stopped; with shimd running (its admin socket answers, or it holds its
 * locks) they refuse: the running daemon owns the latch. The locks are
 * held meanwhile, so shimd cannot start halfway through a reset. The token is checked against tamper.reset_authority_public_key
 * and this shim's ID; the reset is recorded in the state and reported as
 * a signed tamper_reset event at shimd's next start. The identity key
 * (default <storage_root>/keys/identity.key, when present) signs the
 * state as shimd does.
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
	int port_up = 0, reset, rc, status = 1;
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
		fprintf(stderr, "shimctl: shimd is running (%s): stop it first; "
				"the latch is held by the running daemon\n",
			cfg.admin_socket);
		goto out;
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
	if (!reset) {
		printf("shim: %s\nlatch: %s\n", cfg.shim_id,
		       t.latched ? "LATCHED (emergency stop)" : "clear");
		if (t.latched) {
			printf("event: %s\ndetail: %s\n", t.event, t.detail);
			print_time("since: ", t.since_ns);
		}
		printf("boot_count: %llu\nresets: %u\n",
		       (unsigned long long)t.boot_count, t.reset_count);
		if (t.reset_count > 0) {
			printf("last reset: %s by %s (%s)%s\n", t.reset_method,
			       t.reset_by, t.reset_reason,
			       t.reset_pending ? ", not yet reported" : "");
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
	if (shim_token_parse(token, strlen(token), &tok) != 0) {
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
	rc = shim_tamper_reset_token(&t, &tok, auth, now, &why);
	if (rc != 0) {
		fprintf(stderr, "shimctl: reset refused: %s\n", why);
		goto out;
	}
	printf("latch cleared (was %s); reset by %s: %s\n", t.reset_cleared,
	       t.reset_by, t.reset_reason[0] ? t.reset_reason : "(no reason)");
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
