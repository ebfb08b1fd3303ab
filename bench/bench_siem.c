/*
 * bench_siem: the cost of emitting an event with the durable spool.
 *
 * Emits events through shim_eventlog_emit() with a SIEM transport whose
 * receiver is down (everything lands in the audit log and the spool, and
 * is made durable by group commit), and reports:
 *   - emit latency p50 / p99 / max (what the daemon loop pays per event),
 *   - sustained events per second until all of them are durable,
 *   - the same with a priority-lane event (durable before emit returns).
 * The network half (events/s to rsyslog over TLS, backlog drain) is in
 * bench_siem.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "eventlog.h"
#include "port_linux.h"

#define N 20000
#define NPRIO 500

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int run(const char *root, const char *name, int n, int64_t *lat,
	       double *rate)
{
	struct shim_config cfg;
	struct shim_linux_port lp;
	struct shim_eventlog *el;
	char state[512];
	int64_t t0, t1;
	int i, rc;

	shim_config_defaults(&cfg);
	cfg.shim_id = strdup("bench-shim");
	cfg.storage_root = strdup(root);
	cfg.siem_transport = SHIM_SIEM_SYSLOG_TCP;
	cfg.siem_insecure = 1;
	cfg.siem_host = strdup("127.0.0.1");
	cfg.siem_port = 9; /* discard: nobody listens */
	cfg.siem_spool_max_bytes = 1ull << 30;
	snprintf(state, sizeof(state), "%s/state", root);
	rc = shim_linux_port_init(&lp, state);
	if (rc == 0) {
		rc = shim_eventlog_open(&el, &cfg, &lp.port);
	}
	if (rc != 0) {
		fprintf(stderr, "bench_siem: open: %s\n", shim_strerror(rc));
		return 1;
	}
	/* The receiver is down on purpose. */
	shim_eventlog_set_logger(el, NULL, NULL);
	t0 = shim_linux_mono_ns();
	for (i = 0; i < n; i++) {
		struct shim_event ev;
		int64_t a;

		shim_event_init(&ev, name, SHIM_SEV_INFO, shim_linux_wall_ns());
		shim_event_add(&ev, "technician", "alice@example.org");
		shim_event_add(&ev, "session", "5f1c2a9e0b7d4e21");
		shim_event_add_u64(&ev, "bytes_inbound", 123456);
		shim_event_add(&ev, "reason", "technician_disconnect");
		a = shim_linux_mono_ns();
		rc = shim_eventlog_emit(el, &ev);
		lat[i] = shim_linux_mono_ns() - a;
		if (rc != 0) {
			fprintf(stderr, "bench_siem: emit: %s\n",
				shim_strerror(rc));
			return 1;
		}
	}
	rc = shim_eventlog_flush(el, 60000);
	t1 = shim_linux_mono_ns();
	*rate = (double)n / ((double)(t1 - t0) / 1e9);
	shim_eventlog_close(el, 0);
	shim_linux_port_fini(&lp);
	shim_config_free(&cfg);
	return rc != 0;
}

int main(void)
{
	static int64_t lat[N];
	char root[] = "/var/tmp/bench_siem.XXXXXX";
	char cmd[128];
	double rate;

	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	printf("%-44s %12s %12s\n", "figure", "shimd", "target");
	if (run(root, "session_end", N, lat, &rate) != 0) {
		return 1;
	}
	qsort(lat, N, sizeof(lat[0]), cmp_i64);
	printf("%-44s %9.1f us %12s\n", "emit latency p50 (audit + spool append)",
	       (double)lat[N / 2] / 1e3, "-");
	printf("%-44s %9.1f us %12s\n", "emit latency p99",
	       (double)lat[N * 99 / 100] / 1e3, "-");
	printf("%-44s %9.1f us %12s\n", "emit latency max",
	       (double)lat[N - 1] / 1e3, "-");
	printf("%-44s %12.0f %12s\n", "events/s until durable (group commit)",
	       rate, ">= 2000");
	if (run(root, "tamper", NPRIO, lat, &rate) != 0) {
		return 1;
	}
	qsort(lat, NPRIO, sizeof(lat[0]), cmp_i64);
	printf("%-44s %9.1f us %12s\n",
	       "priority emit p50 (durable on return)",
	       (double)lat[NPRIO / 2] / 1e3, "-");
	printf("%-44s %9.1f us %12s\n", "priority emit p99",
	       (double)lat[NPRIO * 99 / 100] / 1e3, "-");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : 1;
}
