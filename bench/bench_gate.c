/*
 * Gate verify latency with 1,000 enrolled technicians: median and p99 in
 * microseconds, for a success (which makes the replay mark durable with
 * fsync) and for failures, on the real Linux port.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate.h"
#include "otp.h"
#include "port_linux.h"

#define NTECH 1000
#define ROUNDS 1000

/* The bench moves through time faster than the wall clock; its clock
 * follows, wall and monotonic together, so no jump is seen. */
static int64_t bench_ns;

static int64_t bench_clock(void *ctx)
{
	(void)ctx;
	return bench_ns;
}

static void at(int64_t t)
{
	bench_ns = t * 1000000000LL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *us, int n)
{
	qsort(us, (size_t)n, sizeof(*us), cmp);
	printf("  %-44s p50 %8.1f us   p99 %8.1f us   (n=%d)\n", what, us[n / 2],
	       us[n * 99 / 100], n);
}

int main(void)
{
	static struct shim_technician techs[NTECH];
	static double us[ROUNDS];
	struct shim_linux_port lp;
	struct shim_gate gate;
	struct shim_gate_cfg cfg;
	struct shim_clock clock;
	struct shim_clock_cfg ccfg;
	struct shim_auth_result res;
	char dir[] = "/tmp/shim-bench-gateXXXXXX";
	char code[9], line[300];
	uint8_t *scratch;
	size_t cap;
	int64_t now = (int64_t)time(NULL);
	int i, t;

	if (mkdtemp(dir) == NULL || shim_linux_port_init(&lp, dir) != 0) {
		perror("setup");
		return 1;
	}
	for (i = 0; i < NTECH; i++) {
		snprintf(techs[i].id, sizeof(techs[i].id), "tech%04d@example.org", i);
		shim_linux_random(techs[i].secret, 20);
		techs[i].secret_len = 20;
	}
	lp.port.clock.wall_ns = bench_clock;
	lp.port.clock.mono_ns = bench_clock;
	at(now);
	shim_clock_cfg_default(&ccfg);
	if (shim_clock_init(&clock, &ccfg, &lp.port) != 0) {
		fprintf(stderr, "clock init failed\n");
		return 1;
	}
	shim_gate_cfg_default(&cfg);
	cfg.rate_failures = SHIM_GATE_RATE_SLOTS;
	cap = shim_gate_scratch_size(NTECH);
	scratch = malloc(cap);
	if (shim_gate_init(&gate, &cfg, techs, NTECH, &lp.port, &clock, scratch,
			   cap) != 0) {
		fprintf(stderr, "gate init failed\n");
		return 1;
	}
	printf("gate verify, %d technicians, state in %s (fsync'd)\n", NTECH, dir);

	/* Successes: each technician once per step, so no replay. */
	for (i = 0; i < ROUNDS; i++) {
		struct timespec a, b;
		uint32_t c;

		t = (i * 7919) % NTECH;
		shim_totp(&lp.port.crypto, cfg.md, techs[t].secret, 20,
			  now + (int64_t)(i / NTECH) * 30, 30, 6, &c);
		shim_otp_format(c, 6, code);
		snprintf(line, sizeof(line), "%.128s %s", techs[t].id, code);
		at(now + (int64_t)(i / NTECH) * 30);
		clock_gettime(CLOCK_MONOTONIC, &a);
		shim_gate_verify_line(&gate, line, strlen(line),
				      now + (int64_t)(i / NTECH) * 30, &res);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (res.outcome != SHIM_AUTH_OK) {
			fprintf(stderr, "unexpected outcome %s\n",
				shim_auth_outcome_name(res.outcome));
			return 1;
		}
		us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 +
			(double)(b.tv_nsec - a.tv_nsec) / 1e3;
	}
	report("success (HMAC x3 + durable replay mark)", us, ROUNDS);

	/* Failures with a wrong code, spread over IDs and time so neither
	 * lockout nor the rate limit short-cuts the work. */
	for (i = 0; i < ROUNDS; i++) {
		struct timespec a, b;

		t = i % NTECH;
		snprintf(line, sizeof(line), "%.128s 000000", techs[t].id);
		at(now + 3600 + (int64_t)i * 10);
		clock_gettime(CLOCK_MONOTONIC, &a);
		shim_gate_verify_line(&gate, line, strlen(line),
				      now + 3600 + (int64_t)i * 10, &res);
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 +
			(double)(b.tv_nsec - a.tv_nsec) / 1e3;
	}
	report("failure, known ID (HMAC x3 + lockout state)", us, ROUNDS);
	for (i = 0; i < ROUNDS; i++) {
		struct timespec a, b;

		snprintf(line, sizeof(line), "nobody%d 123456", i);
		at(now + 20000 + (int64_t)i * 10);
		clock_gettime(CLOCK_MONOTONIC, &a);
		shim_gate_verify_line(&gate, line, strlen(line),
				      now + 20000 + (int64_t)i * 10, &res);
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 +
			(double)(b.tv_nsec - a.tv_nsec) / 1e3;
	}
	report("failure, unknown ID (dummy HMAC x3)", us, ROUNDS);
	printf("  reference: the prototype's budget is 500000 us per authentication\n");

	shim_gate_wipe(&gate);
	free(scratch);
	snprintf(line, sizeof(line), "rm -rf %s", dir);
	if (system(line) != 0) {
		return 1;
	}
	shim_linux_port_fini(&lp);
	return 0;
}
