/*
 * rec-writer: records a synthetic session through common/recorder.h, so
 * integration tests can kill it mid-session, fill its storage or make its
 * writes fail, and then check what shimctl reads back.
 *
 *   rec-writer --config FILE [--technician ID] [--bursts N]
 *              [--burst-chunks K] [--chunk-size S] [--pause-ms P]
 *              [--reason R] [--fsize-limit BYTES] [--recover-only]
 *              [--meta NAME[:DETAIL]]...
 *
 * Each --meta records one meta event right after session_start, in the
 * order given (NAME:DETAIL splits at the first colon).
 * Traffic is deterministic: byte j of the inbound stream is
 * (j * 7 + 3) & 0xff, of the outbound stream (j * 13 + 1) & 0xff, so a
 * reader can check every recovered byte. After each burst the program
 * waits pause-ms (longer than recording.sync_interval_ms) and prints
 * "durable IN OUT": the stream lengths that must survive a crash.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "keys.h"
#include "port_linux.h"
#include "recorder.h"

static void on_recovered(void *arg, const char *id, uint64_t records)
{
	(void)arg;
	printf("recovered %s %llu\n", id, (unsigned long long)records);
	fflush(stdout);
}

static const char *opt(int argc, char **argv, const char *name,
		       const char *def)
{
	int i;

	for (i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			return argv[i + 1];
		}
	}
	return def;
}

static int flag(int argc, char **argv, const char *name)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			return 1;
		}
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0) {
	}
}

/* Queues buf, waiting on the recorder's descriptor while it is full. */
static int send(struct shim_recorder *r, enum shim_rec_dir dir,
		const uint8_t *buf, size_t len)
{
	int rc;

	for (;;) {
		rc = shim_recorder_traffic(r, dir, buf, len,
					   shim_linux_wall_ns(),
					   shim_linux_mono_ns());
		if (rc != SHIM_EAGAIN) {
			return rc;
		}
		sleep_ms(1);
		shim_recorder_ack(r);
	}
}

int main(int argc, char **argv)
{
	struct shim_config cfg;
	struct shim_config_diag diag;
	struct shim_linux_port lp;
	struct shim_recorder *r = NULL;
	struct shim_recorder_status st;
	char id[SHIM_SESSION_ID_MAX];
	char *idpath = NULL;
	const char *cfgpath = opt(argc, argv, "--config", NULL);
	const char *tech = opt(argc, argv, "--technician", "alice@example.org");
	const char *reason = opt(argc, argv, "--reason", "technician_disconnect");
	long bursts = atol(opt(argc, argv, "--bursts", "5"));
	long per = atol(opt(argc, argv, "--burst-chunks", "20"));
	long csize = atol(opt(argc, argv, "--chunk-size", "64"));
	long pause = atol(opt(argc, argv, "--pause-ms", "300"));
	long fsize = atol(opt(argc, argv, "--fsize-limit", "0"));
	uint8_t *buf;
	uint64_t jin = 0, jout = 0;
	long b, k, i;
	int rc, ex = 1;

	if (cfgpath == NULL || csize <= 0 || csize > 65536) {
		fprintf(stderr, "usage: rec-writer --config FILE [...]\n");
		return 2;
	}
	memset(&diag, 0, sizeof(diag));
	diag.out = stderr;
	diag.no_warnings = 1;
	if (shim_config_load(&cfg, cfgpath, &diag) != 0) {
		return 2;
	}
	buf = malloc((size_t)csize);
	if (buf == NULL || shim_linux_port_init(&lp, NULL) != 0) {
		return 1;
	}
	rc = shim_keys_ensure_identity(&cfg);
	idpath = shim_keys_identity_path(&cfg);
	if (rc == 0) {
		rc = shim_linux_port_load_identity(&lp, idpath);
	}
	if (rc != 0) {
		fprintf(stderr, "identity: %s\n", shim_strerror(rc));
		goto out;
	}
	rc = shim_recorder_open(&r, &cfg, &lp.port, on_recovered, NULL);
	if (rc != 0) {
		fprintf(stderr, "recorder open: %s\n", shim_strerror(rc));
		goto out;
	}
	if (shim_recorder_local_custody(r)) {
		printf("custody local\n");
	}
	if (flag(argc, argv, "--recover-only")) {
		ex = 0;
		goto out;
	}
	if (fsize > 0) {
		struct rlimit rl = { (rlim_t)fsize, (rlim_t)fsize };

		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
	}
	rc = shim_recorder_begin(r, tech, id);
	if (rc == SHIM_ENOSPC) {
		printf("refused storage\n");
		fflush(stdout);
		ex = 3;
		goto out;
	}
	if (rc != 0) {
		fprintf(stderr, "begin: %s\n", shim_strerror(rc));
		goto out;
	}
	printf("session %s\n", id);
	fflush(stdout);
	shim_recorder_meta(r, "session_start", tech, shim_linux_wall_ns(),
			   shim_linux_mono_ns());
	for (i = 1; i + 1 < argc; i++) {
		char name[128];
		const char *colon;
		size_t nl;

		if (strcmp(argv[i], "--meta") != 0) {
			continue;
		}
		colon = strchr(argv[i + 1], ':');
		nl = colon != NULL ? (size_t)(colon - argv[i + 1])
				   : strlen(argv[i + 1]);
		if (nl >= sizeof(name)) {
			nl = sizeof(name) - 1;
		}
		memcpy(name, argv[i + 1], nl);
		name[nl] = '\0';
		rc = shim_recorder_meta(r, name,
					colon != NULL ? colon + 1 : "",
					shim_linux_wall_ns(),
					shim_linux_mono_ns());
		if (rc != 0) {
			fprintf(stderr, "meta %s: %s\n", name,
				shim_strerror(rc));
		}
	}
	for (b = 0; b < bursts; b++) {
		for (k = 0; k < per; k++) {
			enum shim_rec_dir dir = (k & 1) ? SHIM_DIR_OUT
							: SHIM_DIR_IN;
			uint64_t *j = dir == SHIM_DIR_IN ? &jin : &jout;

			for (i = 0; i < csize; i++) {
				uint64_t x = *j + (uint64_t)i;

				buf[i] = dir == SHIM_DIR_IN
						 ? (uint8_t)(x * 7 + 3)
						 : (uint8_t)(x * 13 + 1);
			}
			rc = send(r, dir, buf, (size_t)csize);
			if (rc != 0) {
				printf("traffic refused %s\n",
				       shim_err_name(rc));
				fflush(stdout);
				goto end;
			}
			*j += (uint64_t)csize;
		}
		shim_recorder_meta(r, "burst", "done", shim_linux_wall_ns(),
				   shim_linux_mono_ns());
		sleep_ms(pause);
		shim_recorder_status(r, &st);
		if (st.failed) {
			printf("failed %s\n", st.failure);
		}
		printf("durable %llu %llu\n", (unsigned long long)jin,
		       (unsigned long long)jout);
		fflush(stdout);
	}
end:
	rc = shim_recorder_end(r, reason, shim_linux_wall_ns(),
			       shim_linux_mono_ns());
	shim_recorder_status(r, &st);
	printf("ended %s failed=%d dropped=%llu\n", shim_err_name(rc),
	       st.failed, (unsigned long long)shim_recorder_dropped(r));
	ex = 0;
out:
	fflush(stdout);
	shim_recorder_close(r, "shutdown");
	shim_linux_port_fini(&lp);
	shim_config_free(&cfg);
	free(idpath);
	free(buf);
	return ex;
}
