/*
 * Recorder benchmark: throughput of the whole recorder (queue, writer
 * thread, AES-256-GCM, chain, append, group-commit fdatasync) against a
 * plain append of the same bytes with the same syncs, and bytes on disk
 * per byte of traffic for bulk transfers and for interactive typing,
 * beside the prototype's JSON-lines format for the same traffic.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "keys.h"
#include "port_linux.h"
#include "recorder.h"

#define BULK_BYTES (64u << 20)
#define CHUNK 4096
#define KEYS 300
#define BEGINS 20

static char dir[64];

static double now_s(void)
{
	return (double)shim_linux_mono_ns() / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0) {
	}
}

static uint64_t session_size(const char *root, const char *id)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/sessions/%s.rec", root, id);
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void send(struct shim_recorder *r, enum shim_rec_dir d,
		 const uint8_t *b, size_t n, int64_t wall, int64_t mono)
{
	while (shim_recorder_traffic(r, d, b, n, wall, mono) == SHIM_EAGAIN) {
		struct timespec ts = { 0, 200000 };

		nanosleep(&ts, NULL);
		shim_recorder_ack(r);
	}
}

/* One prototype JSON traffic line, as its json.dumps writes it. */
static size_t proto_line(size_t len)
{
	char line[256];
	int n = snprintf(line, sizeof(line),
			 "{\"type\": \"traffic\", \"direction\": \"out\", "
			 "\"len\": %zu, \"monotonic\": %.9f, \"epoch\": "
			 "%.7f, \"data_hex\": \"\"}\n",
			 len, 123456.789012345, 1795495197.1234567);

	return (size_t)n + 2 * len;
}

/* CPU time of the whole process (every thread), user and system, in s. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_bulk(struct shim_config *cfg, struct shim_linux_port *lp,
		    double *mbs, double *ratio, double *ns_per_byte)
{
	struct shim_recorder *r = NULL;
	char id[SHIM_SESSION_ID_MAX];
	static uint8_t buf[CHUNK];
	double t0, t1, c0;
	size_t done;
	int rc, i;

	for (i = 0; i < CHUNK; i++) {
		buf[i] = (uint8_t)(i * 31 + 7);
	}
	rc = shim_recorder_open(&r, cfg, &lp->port, NULL, NULL);
	if (rc != 0) {
		return rc;
	}
	t0 = now_s();
	c0 = cpu_s();
	rc = shim_recorder_begin(r, "bench", id);
	if (rc != 0) {
		shim_recorder_close(r, "shutdown");
		return rc;
	}
	for (done = 0; done < BULK_BYTES; done += CHUNK) {
		send(r, (done / CHUNK) & 1 ? SHIM_DIR_OUT : SHIM_DIR_IN, buf,
		     CHUNK, shim_linux_wall_ns(), shim_linux_mono_ns());
	}
	rc = shim_recorder_end(r, "shutdown", shim_linux_wall_ns(),
			       shim_linux_mono_ns());
	t1 = now_s();
	*ns_per_byte = (cpu_s() - c0) * 1e9 / (double)BULK_BYTES;
	shim_recorder_close(r, "shutdown");
	*mbs = (double)BULK_BYTES / (t1 - t0) / 1e6;
	*ratio = (double)session_size(cfg->storage_root, id) /
		 (double)BULK_BYTES;
	return rc;
}

/* Plain append of the same bytes, fdatasync every sync interval. */
static double run_plain(unsigned sync_ms, double *ns_per_byte)
{
	char path[128];
	static uint8_t buf[CHUNK];
	double t0, last, c0 = cpu_s();
	size_t done;
	int fd;

	snprintf(path, sizeof(path), "%s/plain.bin", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (fd < 0) {
		return 0;
	}
	t0 = last = now_s();
	for (done = 0; done < BULK_BYTES; done += CHUNK) {
		if (write(fd, buf, CHUNK) != CHUNK) {
			break;
		}
		if (now_s() - last >= sync_ms / 1000.0) {
			fdatasync(fd);
			last = now_s();
		}
	}
	fdatasync(fd);
	*ns_per_byte = (cpu_s() - c0) * 1e9 / (double)BULK_BYTES;
	close(fd);
	unlink(path);
	return (double)BULK_BYTES / (now_s() - t0) / 1e6;
}

/* Typing: one byte per read and its echo, each keystroke in its own
 * sync window (the worst case: nothing to coalesce). */
static int run_typing(struct shim_config *cfg, struct shim_linux_port *lp,
		      double *ratio)
{
	struct shim_recorder *r = NULL;
	char id[SHIM_SESSION_ID_MAX];
	uint32_t saved = cfg->sync_interval_ms;
	int rc, k;

	cfg->sync_interval_ms = 5;
	rc = shim_recorder_open(&r, cfg, &lp->port, NULL, NULL);
	if (rc != 0) {
		cfg->sync_interval_ms = saved;
		return rc;
	}
	rc = shim_recorder_begin(r, "bench", id);
	for (k = 0; rc == 0 && k < KEYS; k++) {
		uint8_t c = (uint8_t)('a' + k % 26);

		send(r, SHIM_DIR_IN, &c, 1, shim_linux_wall_ns(),
		     shim_linux_mono_ns());
		send(r, SHIM_DIR_OUT, &c, 1, shim_linux_wall_ns(),
		     shim_linux_mono_ns());
		sleep_ms(8);
	}
	if (rc == 0) {
		rc = shim_recorder_end(r, "shutdown", shim_linux_wall_ns(),
				       shim_linux_mono_ns());
	}
	shim_recorder_close(r, "shutdown");
	cfg->sync_interval_ms = saved;
	*ratio = (double)session_size(cfg->storage_root, id) / (2.0 * KEYS);
	return rc;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* shim_recorder_begin() alone, median over BEGINS sessions, each begun
 * 50 ms after the last one ended (the writer has made the next key
 * material meanwhile, as between two technicians). */
static int run_begin(struct shim_config *cfg, struct shim_linux_port *lp,
		     double *med_ms, double *max_ms)
{
	struct shim_recorder *r = NULL;
	char id[SHIM_SESSION_ID_MAX];
	double t[BEGINS], t0;
	uint8_t c = 'x';
	int rc, i;

	rc = shim_recorder_open(&r, cfg, &lp->port, NULL, NULL);
	for (i = 0; rc == 0 && i < BEGINS; i++) {
		sleep_ms(50);
		t0 = now_s();
		rc = shim_recorder_begin(r, "bench", id);
		t[i] = (now_s() - t0) * 1e3;
		if (rc == 0) {
			send(r, SHIM_DIR_IN, &c, 1, shim_linux_wall_ns(),
			     shim_linux_mono_ns());
			rc = shim_recorder_end(r, "shutdown",
					       shim_linux_wall_ns(),
					       shim_linux_mono_ns());
		}
	}
	shim_recorder_close(r, "shutdown");
	if (rc == 0) {
		qsort(t, BEGINS, sizeof(t[0]), cmp_d);
		*med_ms = t[BEGINS / 2];
		*max_ms = t[BEGINS - 1];
	}
	return rc;
}

/* A small state blob saved the way the gate saves its replay marks
 * (shim_write_file_atomic: temp file, fsync, rename, directory fsync). */
static double run_state_save(void)
{
	char path[128];
	uint8_t blob[256];
	double t[BEGINS], t0;
	int i;

	memset(blob, 0x5a, sizeof(blob));
	snprintf(path, sizeof(path), "%s/state.bin", dir);
	for (i = 0; i < BEGINS; i++) {
		blob[0] = (uint8_t)i;
		t0 = now_s();
		if (shim_write_file_atomic(path, blob, sizeof(blob), 0600) != 0) {
			return -1;
		}
		t[i] = (now_s() - t0) * 1e3;
	}
	unlink(path);
	qsort(t, BEGINS, sizeof(t[0]), cmp_d);
	return t[BEGINS / 2];
}

int main(void)
{
	struct shim_config cfg;
	struct shim_linux_port lp;
	char path[128], cmd[128];
	double mbs = 0, bulk = 0, typing = 0, plain, save;
	double beg = 0, beg_max = 0, cpu_rec = 0, cpu_plain = 0;
	int rc;

	snprintf(dir, sizeof(dir), "/var/tmp/bench-rec.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		snprintf(dir, sizeof(dir), "/tmp/bench-rec.XXXXXX");
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			return 1;
		}
	}
	shim_config_defaults(&cfg);
	cfg.storage_root = strdup(dir);
	cfg.shim_id = strdup("shim-bench");
	snprintf(path, sizeof(path), "%s/identity.key", dir);
	if (shim_linux_port_init(&lp, NULL) != 0 ||
	    shim_keys_generate(path, NULL, NULL, NULL) != 0 ||
	    shim_linux_port_load_identity(&lp, path) != 0) {
		fprintf(stderr, "bench_recorder: cannot set up keys\n");
		return 1;
	}
	rc = run_bulk(&cfg, &lp, &mbs, &bulk, &cpu_rec);
	if (rc == 0) {
		rc = run_typing(&cfg, &lp, &typing);
	}
	if (rc == 0) {
		rc = run_begin(&cfg, &lp, &beg, &beg_max);
	}
	plain = run_plain(cfg.sync_interval_ms, &cpu_plain);
	save = run_state_save();
	if (rc != 0) {
		fprintf(stderr, "bench_recorder: %s\n", shim_strerror(rc));
	}
	printf("%-44s %12s %14s\n", "recorder (64 MiB in 4 KiB reads)", "shimd",
	       "reference");
	printf("%-44s %9.1f MB/s %9.1f MB/s  (plain append, same syncs)\n",
	       "throughput: encrypt + chain + write + sync", mbs, plain);
	printf("%-44s %9.2f ns %12.2f ns  (plain append; all threads, user + "
	       "system)\n", "CPU per traffic byte", cpu_rec, cpu_plain);
	printf("%-44s %11.3f x %11.3f x  (prototype jsonl; target <= 1.1)\n",
	       "disk bytes per traffic byte, bulk", bulk,
	       (double)proto_line(CHUNK) / CHUNK);
	printf("%-44s %11.1f x %11.1f x  (prototype jsonl; target <= 30)\n",
	       "disk bytes per traffic byte, typing", typing,
	       (double)proto_line(1));
	printf("%-44s %11.3f ms  (median of %d, max %.3f ms; part of the "
	       "auth -> success budget of 1 ms)\n",
	       "session begin (header written)", beg, BEGINS, beg_max);
	printf("%-44s %11.3f ms  (median of %d; the gate's durable replay "
	       "mark costs one)\n", "state blob saved atomically", save,
	       BEGINS);
	shim_linux_port_fini(&lp);
	shim_config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_recorder: could not remove %s\n", dir);
	}
	return rc == 0 ? 0 : 1;
}
