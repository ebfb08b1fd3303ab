/*
 * Monitor throughput: a synthetic day of a 1,000-shim fleet (one heartbeat
 * per shim per minute: 1.44 million signed heartbeats) through the
 * monitor's parser, signature check and verdict engine.
 *
 * The heartbeats are built by the shim's own code (shim_heartbeat_build,
 * canonical text of the event log, shim_syslog_rfc5424 as sent to the SIEM) and signed with one
 * P-256 key per shim, as in a real fleet (every heartbeat its own
 * signature; with OpenSSL's signer this takes well under a minute, so
 * nothing needs to be reused).
 * Signing is timed apart; the monitor's figure covers parsing, one real
 * ECDSA verification per heartbeat and the verdicts.
 *
 * BENCH_MONITOR_SHIMS=N runs a smaller fleet; BENCH_MONITOR_THREADS=N sets
 * the verification threads (default: one per CPU); BENCH_MONITOR_BATCH=N
 * the lines per batch (default 8192, as shimctl monitor reads).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heartbeat.h"
#include "monitor.h"
#include "keys.h"
#include "p256key.h"
#include "util.h"
#include "port_linux.h"
#include "syslog.h"

#ifdef SHIM_HAVE_OPENSSL
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>

#define PER_DAY 1440
#define STRIDE 768
#define T0 1800000000LL
#define TARGET_S 30.0

static int shims = 1000;
static EC_KEY **keys;
static char *arena;
static size_t *lens;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f != NULL) {
		if (fscanf(f, "%lf", &l) != 1) {
			l = -1;
		}
		fclose(f);
	}
	return l;
}

static int sign_event(struct shim_event *ev, EC_KEY *key)
{
	char canon[SHIM_EVENT_CANON_MAX], hex[129];
	uint8_t digest[32], raw[64];
	const BIGNUM *r, *s;
	ECDSA_SIG *sig;
	size_t len;

	if (shim_event_canonical(ev, canon, sizeof(canon), &len) != 0) {
		return -1;
	}
	shim_sha256((const uint8_t *)canon, len, digest);
	sig = ECDSA_do_sign(digest, 32, key);
	if (sig == NULL) {
		return -1;
	}
	ECDSA_SIG_get0(sig, &r, &s);
	BN_bn2binpad(r, raw, 32);
	BN_bn2binpad(s, raw + 32, 32);
	ECDSA_SIG_free(sig);
	shim_hex_encode(raw, sizeof(raw), hex);
	return shim_event_add(ev, "sig", hex);
}

struct gen_job {
	size_t a, b;
	int failed;
};

/* Heartbeat k: minute k / shims, shim k % shims; log order is time. */
static void *gen(void *arg)
{
	struct gen_job *j = arg;
	struct shim_heartbeat_info hb;
	struct shim_event ev;
	struct shim_syslog_opts opts = { .hostname = "pump-host", .procid = 812,
					 .facility = -1 };
	size_t k;
	int shim, minute;

	for (k = j->a; k < j->b; k++) {
		minute = (int)(k / (size_t)shims);
		shim = (int)(k % (size_t)shims);
		memset(&hb, 0, sizeof(hb));
		hb.boot_count = 1 + (uint64_t)(shim % 5);
		hb.uptime_s = 3600 + (int64_t)minute * 60;
		hb.state = minute % 97 == 0 ? "OPEN" : "IDLE";
		hb.session_active = minute % 97 == 0;
		hb.version = "0.1.0";
		hb.binary_digest = "9f2c0d1e6b5a4f3e2d1c0b9a8f7e6d5c4b3a29181706f5e4d3c2b1a098f7e6d5";
		hb.config_digest = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
		hb.period_s = 60;
		if (shim_heartbeat_build(&ev, &hb,
					 (T0 + minute * 60LL + shim % 60) *
						 1000000000LL) != 0) {
			j->failed = 1;
			return NULL;
		}
		snprintf(ev.shim_id, sizeof(ev.shim_id), "shim-%04d", shim);
		ev.seq = 1000 + (uint64_t)minute * 3;
		if (sign_event(&ev, keys[shim]) != 0) {
			j->failed = 1;
			return NULL;
		}
		if (shim_syslog_rfc5424(&ev, &opts, arena + k * STRIDE, STRIDE,
					&lens[k]) != 0) {
			j->failed = 1;
			return NULL;
		}
	}
	return NULL;
}

/* Single-thread cost of one verification, for the side-by-side figure. */
static double mbedtls_verify_us(void)
{
	struct shim_linux_port lp;
	uint8_t pub[SHIM_P256_PUB_LEN], digest[32] = { 1 }, sig[64];
	char path[] = "/tmp/bench_monitor_key.XXXXXX";
	int fd, i, n = 50;
	double t;

	fd = mkstemp(path);
	if (fd < 0) {
		return 0;
	}
	close(fd);
	unlink(path);
	if (shim_keys_generate(path, NULL, pub, NULL) != 0 ||
	    shim_p256_sign_with(path, digest, sig) != 0 ||
	    shim_linux_port_init(&lp, NULL) != 0) {
		unlink(path);
		return 0;
	}
	unlink(path);
	t = now_s();
	for (i = 0; i < n; i++) {
		if (lp.port.crypto.verify(lp.port.crypto.ctx, pub, digest, sig) != 0) {
			return 0;
		}
	}
	t = (now_s() - t) / n * 1e6;
	shim_linux_port_fini(&lp);
	return t;
}

int main(void)
{
	struct shim_monitor *m;
	struct shim_mon_report r;
	struct gen_job jobs[64];
	pthread_t tid[64];
	const char **ptrs;
	const char *env = getenv("BENCH_MONITOR_SHIMS");
	unsigned char pub[SHIM_P256_PUB_LEN];
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = nproc > 0 ? (unsigned)(nproc > 64 ? 64 : nproc) : 1;
	size_t total, k, batch = 8192, ok = 0;
	uint64_t beats = 0;
	double tg, tm, t1, tw, rate1, cpu;
	char id[32];
	int i;

	if (env != NULL && atoi(env) > 0) {
		shims = atoi(env);
	}
	env = getenv("BENCH_MONITOR_BATCH");
	if (env != NULL && atoi(env) > 0) {
		batch = (size_t)atoi(env);
	}
	env = getenv("BENCH_MONITOR_THREADS");
	if (env != NULL && atoi(env) > 0 && atoi(env) <= 64) {
		threads = (unsigned)atoi(env);
	}
	total = (size_t)shims * PER_DAY;
	keys = calloc((size_t)shims, sizeof(*keys));
	if (keys == NULL) {
		return 1;
	}
	for (i = 0; i < shims; i++) {
		keys[i] = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
		if (keys[i] == NULL || EC_KEY_generate_key(keys[i]) != 1) {
			fprintf(stderr, "bench_monitor: key generation failed\n");
			return 1;
		}
	}
	arena = malloc(total * STRIDE);
	lens = calloc(total, sizeof(*lens));
	ptrs = calloc(total, sizeof(*ptrs));
	if (arena == NULL || lens == NULL || ptrs == NULL ||
	    shim_mon_new(&m, 60) != 0) {
		fprintf(stderr, "bench_monitor: out of memory\n");
		return 1;
	}
	for (i = 0; i < shims; i++) {
		unsigned char *p = pub;

		snprintf(id, sizeof(id), "shim-%04d", i);
		if (i2o_ECPublicKey(keys[i], &p) != SHIM_P256_PUB_LEN ||
		    shim_mon_add_shim(m, id, pub) != 0) {
			fprintf(stderr, "bench_monitor: inventory failed\n");
			return 1;
		}
	}

	printf("generating %zu signed heartbeats (%d shims x %d, one key each, "
	       "%u threads)...\n", total, shims, PER_DAY, threads);
	fflush(stdout);
	tg = now_s();
	for (k = 0; k < threads; k++) {
		jobs[k].a = total * k / threads;
		jobs[k].b = total * (k + 1) / threads;
		jobs[k].failed = 0;
		pthread_create(&tid[k], NULL, gen, &jobs[k]);
	}
	for (k = 0; k < threads; k++) {
		pthread_join(tid[k], NULL);
		if (jobs[k].failed) {
			fprintf(stderr, "bench_monitor: generation failed\n");
			return 1;
		}
	}
	tg = now_s() - tg;
	for (k = 0; k < total; k++) {
		ptrs[k] = arena + k * STRIDE;
	}

	cpu = cpu_s();
	tm = now_s();
	for (k = 0; k < total; k += batch) {
		size_t n = total - k < batch ? total - k : batch;

		if (shim_mon_feed_lines(m, ptrs + k, lens + k, n, threads, NULL,
					NULL) != 0) {
			fprintf(stderr, "bench_monitor: feed failed\n");
			return 1;
		}
	}
	tm = now_s() - tm;
	cpu = cpu_s() - cpu;

	for (k = 0; k < shim_mon_count(m); k++) {
		shim_mon_report(m, k, T0 + PER_DAY * 60LL, &r);
		ok += r.verdict == SHIM_MON_OK;
		beats += r.heartbeats;
	}
	/* The day again with every key's table built, on all threads: what
	 * a long-running monitor (shimctl monitor --follow) spends on a day.
	 * Replayed lines are verified in full before they are found to be
	 * replays, so the work is the same. */
	tw = now_s();
	for (k = 0; k < total; k += batch) {
		size_t n = total - k < batch ? total - k : batch;

		shim_mon_feed_lines(m, ptrs + k, lens + k, n, threads, NULL,
				    NULL);
	}
	tw = now_s() - tw;
	/* The per-core rate once every key has its table (a long-running
	 * monitor): the first lines again, on one thread. The verdicts are
	 * taken above; these lines only replay. */
	{
		size_t n1 = total < 100000 ? total : 100000;

		t1 = now_s();
		for (k = 0; k < n1; k += batch) {
			shim_mon_feed_lines(m, ptrs + k, lens + k,
					    n1 - k < batch ? n1 - k : batch, 1,
					    NULL, NULL);
		}
		rate1 = n1 / (now_s() - t1);
	}
	printf("\n%-44s %14s %14s\n", "monitor, synthetic fleet day", "measured",
	       "reference");
	printf("%-44s %14zu %14s\n", "heartbeats", total, "1440000");
	printf("%-44s %14.1f %14s\n", "signing (generation only), s", tg, "-");
	printf("%-44s %14.2f %14.1f\n", "monitor: parse + verify + verdict, s",
	       tm, TARGET_S * total / 1440000.0);
	printf("%-44s %14.0f %14s\n", "monitor throughput, heartbeats/s",
	       total / tm, "48000");
	printf("%-44s %14.1f %14s\n", "  CPU time of the monitor, s", cpu, "-");
	printf("%-44s %14.1f %14s\n", "  CPU per heartbeat, us", cpu / total * 1e6,
	       "-");
	printf("%-44s %14.2f %14.1f\n", "the day again, keys warm, s",
	       tw, TARGET_S * total / 1440000.0);
	printf("%-44s %14.0f %14s\n", "one thread, keys warm, heartbeats/s",
	       rate1, "-");
	printf("%-44s %14.2f %14s\n", "load average (1 min) at the end",
	       loadavg(), "-");
	printf("%-44s %14u %14s\n", "verification threads", threads, "-");
	printf("%-44s %14s %14s\n", "verifier", shim_p256_verifier_backend(),
	       "-");
	{
		double us = mbedtls_verify_us();

		printf("%-44s %14.0f %14s\n",
		       "mbedTLS 2.28 verify, us (1 thread, for scale)", us, "-");
		printf("%-44s %14.0f %14s\n",
		       "  the same day with mbedTLS, 1 thread, s (est.)",
		       us * total / 1e6, "-");
	}
	printf("%-44s %14llu %14zu\n", "verified heartbeats",
	       (unsigned long long)beats, total);
	printf("%-44s %14zu %14d\n", "shims with verdict OK", ok, shims);
	printf("target: the day in under %.0f s on the reference: %s\n", TARGET_S,
	       tm * 1440000.0 / total < TARGET_S ? "met" : "NOT met on this machine");
	shim_mon_free(m);
	free(arena);
	free(lens);
	free(ptrs);
	for (i = 0; i < shims; i++) {
		EC_KEY_free(keys[i]);
	}
	free(keys);
	return beats == total && ok == (size_t)shims ? 0 : 1;
}

#else

int main(void)
{
	printf("bench_monitor: skipped (built without OpenSSL libcrypto; the "
	       "mbedTLS verifier needs about 1 ms per heartbeat)\n");
	return 0;
}

#endif
