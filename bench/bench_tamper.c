/*
 * Tamper response latency, the parts below the daemon:
 *   - sensor edge to the loop knowing: a file sensor's path is created, the
 *     poll on the sensors' descriptors wakes, shim_sensors_next() returns
 *     TRIPPED (the daemon closes the gate right there, before anything
 *     else);
 *   - latching: shim_tamper_trip() persisting the latch through the Linux
 *     store (write, fsync, rename, fsync of the directory).
 * Target: the gate closed within 10 ms of a sensor edge.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "port_linux.h"
#include "sensors.h"
#include "tamper.h"

#define ROUNDS 200

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void stats(const char *what, int64_t *v, int n, const char *target)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-38s %9.3f %9.3f %9.3f %9s\n", what, v[n / 2] / 1e6,
	       v[n * 99 / 100] / 1e6, v[n - 1] / 1e6, target);
}

int main(void)
{
	static int64_t edge[ROUNDS], latch[ROUNDS];
	char dir[] = "/tmp/bench_tamper.XXXXXX", path[128], state[160];
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	struct shim_linux_port lp;
	struct shim_tamper t;
	struct pollfd pfd[4];
	int64_t t0;
	int i, n, got, fails = 0;
	FILE *f;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/case-open", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.nsensors = 1;
	cfg.sensors[0].type = SHIM_SENSOR_FILE;
	cfg.sensors[0].role = SHIM_ROLE_TAMPER;
	cfg.sensors[0].event = "case_opened";
	cfg.sensors[0].path = path;
	if (shim_sensors_open(&s, &cfg) != 0 ||
	    shim_linux_port_init(&lp, state) != 0) {
		fprintf(stderr, "bench_tamper: setup failed\n");
		return 1;
	}
	for (i = 0; i < ROUNDS; i++) {
		n = (int)shim_sensors_pollfds(s, pfd, 4);
		t0 = now_ns();
		f = fopen(path, "w");
		if (f == NULL) {
			return 1;
		}
		fclose(f);
		got = 0;
		while (!got && poll(pfd, (nfds_t)n, 1000) >= 0) {
			while (shim_sensors_next(s, &ev)) {
				if (ev.kind == SHIM_SENSOR_EV_TRIPPED) {
					got = 1;
				}
			}
			if (now_ns() - t0 > 2000000000LL) {
				break;
			}
		}
		edge[i] = now_ns() - t0;
		fails += !got;

		if (shim_tamper_open(&t, &lp.port, "bench") != 0) {
			return 1;
		}
		t0 = now_ns();
		if (shim_tamper_trip(&t, "case_opened", "bench", 0) != 0) {
			return 1;
		}
		latch[i] = now_ns() - t0;
		/* Clear for the next round (a bench shortcut, not a reset). */
		unlink(path);
		while (shim_sensors_next(s, &ev)) {
		}
		snprintf(state, sizeof(state), "rm -rf %s/state/*", dir);
		if (system(state) != 0) {
			return 1;
		}
	}
	printf("%-38s %9s %9s %9s %9s\n", "tamper response, ms", "median",
	       "p99", "max", "target");
	stats("file sensor edge -> TRIPPED in loop", edge, ROUNDS, "< 10");
	stats("latch persisted (fsync)", latch, ROUNDS, "-");
	printf("missed trips: %d of %d\n", fails, ROUNDS);
	shim_sensors_close(s);
	shim_linux_port_fini(&lp);
	snprintf(state, sizeof(state), "rm -rf %s", dir);
	if (system(state) != 0) {
		return 1;
	}
	return fails == 0 ? 0 : 1;
}
