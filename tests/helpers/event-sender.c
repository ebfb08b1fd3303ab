/*
 * event-sender: emits events through the event log exactly as shimd does,
 * for the SIEM integration tests and the benchmark.
 *
 *   event-sender --config FILE [--name NAME] [--count N] [--rate N/s]
 *                [--field KEY=VALUE]... [--severity 0..7] [--sign]
 *                [--identity PEM] [--wait-drain SECONDS] [--hold]
 *                [--close-timeout MS] [--state-dir DIR]
 *
 * Prints one line "emitted=N first_seq=A last_seq=B" and, at the end, a
 * status line "status spool_depth=.. link_up=.. dropped_heartbeats=..
 * delivered=.. next_seq=.. link_error=..". With --hold it waits for a
 * signal after emitting (the tests kill it). --wait-drain waits until the
 * spool is empty; the exit status is 3 when it did not empty in time.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "eventlog.h"
#include "port_linux.h"

#define MAX_FIELDS 16

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop) {
	}
}

static void print_status(struct shim_eventlog *el)
{
	struct shim_eventlog_status st;

	shim_eventlog_status(el, &st);
	printf("status spool_depth=%llu link_up=%d dropped_heartbeats=%llu "
	       "delivered=%llu next_seq=%llu outage_alarm=%d tls=%s "
	       "cipher=%s peer=\"%s\" link_error=\"%s\"\n",
	       (unsigned long long)st.spool_depth, st.link_up,
	       (unsigned long long)st.dropped_heartbeats,
	       (unsigned long long)st.delivered,
	       (unsigned long long)st.next_seq, st.outage_alarm,
	       st.tls_version[0] ? st.tls_version : "-",
	       st.tls_cipher[0] ? st.tls_cipher : "-", st.peer_subject,
	       st.link_error);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *config = NULL, *name = "auth_ok", *identity = NULL;
	const char *state_dir = NULL;
	const char *fields[MAX_FIELDS];
	struct shim_config cfg;
	struct shim_config_diag diag = { stderr, 0, 0, 0 };
	struct shim_linux_port lp;
	struct shim_eventlog *el = NULL;
	long count = 1, rate = 0, wait_drain = -1, close_timeout = 2000, i;
	int sev = SHIM_SEV_INFO, sign = 0, hold = 0, nfields = 0, rc, status = 0;
	uint64_t first = 0, last = 0;
	char *sdir = NULL;
	int64_t t0, t_emit, t_flush, t_drain;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--config") == 0 && v) {
			config = v;
		} else if (strcmp(a, "--name") == 0 && v) {
			name = v;
		} else if (strcmp(a, "--count") == 0 && v) {
			count = strtol(v, NULL, 10);
		} else if (strcmp(a, "--rate") == 0 && v) {
			rate = strtol(v, NULL, 10);
		} else if (strcmp(a, "--field") == 0 && v &&
			   nfields < MAX_FIELDS) {
			fields[nfields++] = v;
		} else if (strcmp(a, "--severity") == 0 && v) {
			sev = atoi(v);
		} else if (strcmp(a, "--identity") == 0 && v) {
			identity = v;
		} else if (strcmp(a, "--state-dir") == 0 && v) {
			state_dir = v;
		} else if (strcmp(a, "--wait-drain") == 0 && v) {
			wait_drain = strtol(v, NULL, 10);
		} else if (strcmp(a, "--close-timeout") == 0 && v) {
			close_timeout = strtol(v, NULL, 10);
		} else if (strcmp(a, "--sign") == 0) {
			sign = 1;
			continue;
		} else if (strcmp(a, "--hold") == 0) {
			hold = 1;
			continue;
		} else {
			fprintf(stderr, "event-sender: bad argument %s\n", a);
			return 2;
		}
		i++;
	}
	if (config == NULL) {
		fprintf(stderr, "event-sender: --config FILE is required\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	shim_config_defaults(&cfg);
	if (shim_config_load(&cfg, config, &diag) != 0) {
		shim_config_free(&cfg);
		return 2;
	}
	if (state_dir == NULL) {
		sdir = shim_config_path(&cfg, "state");
		state_dir = sdir;
	}
	rc = shim_linux_port_init(&lp, state_dir);
	if (rc != 0) {
		fprintf(stderr, "event-sender: port: %s\n", shim_strerror(rc));
		return 1;
	}
	if (identity != NULL) {
		rc = shim_linux_port_load_identity(&lp, identity);
		if (rc != 0) {
			fprintf(stderr, "event-sender: identity %s: %s\n",
				identity, shim_strerror(rc));
			return 1;
		}
	}
	rc = shim_eventlog_open(&el, &cfg, &lp.port);
	if (rc != 0) {
		fprintf(stderr, "event-sender: open: %s\n", shim_strerror(rc));
		return 1;
	}
	t0 = shim_linux_mono_ns();
	for (i = 0; i < count && !stop; i++) {
		struct shim_event ev;
		int k;

		rc = shim_event_init(&ev, name, (enum shim_severity)sev,
				     shim_linux_wall_ns());
		if (rc != 0) {
			fprintf(stderr, "event-sender: bad event name %s\n",
				name);
			status = 2;
			break;
		}
		ev.sign = sign;
		shim_event_add_u64(&ev, "n", (uint64_t)i);
		for (k = 0; k < nfields; k++) {
			char key[SHIM_EVENT_KEY_MAX];
			const char *eq = strchr(fields[k], '=');
			size_t kl = eq ? (size_t)(eq - fields[k]) : 0;

			if (eq == NULL || kl == 0 || kl >= sizeof(key)) {
				continue;
			}
			memcpy(key, fields[k], kl);
			key[kl] = '\0';
			shim_event_add(&ev, key, eq + 1);
		}
		rc = shim_eventlog_emit(el, &ev);
		if (rc != 0) {
			fprintf(stderr, "event-sender: emit: %s\n",
				shim_strerror(rc));
			status = 1;
		}
		if (i == 0) {
			first = ev.seq;
		}
		last = ev.seq;
		if (rate > 0) {
			sleep_ms(1000 / rate > 0 ? 1000 / rate : 1);
		}
	}
	t_emit = shim_linux_mono_ns();
	rc = shim_eventlog_flush(el, 10000);
	t_flush = shim_linux_mono_ns();
	if (rc != 0) {
		fprintf(stderr, "event-sender: flush: %s\n", shim_strerror(rc));
		status = 1;
	}
	printf("emitted=%ld first_seq=%llu last_seq=%llu\n", i,
	       (unsigned long long)first, (unsigned long long)last);
	fflush(stdout);
	if (hold) {
		while (!stop) {
			sleep_ms(100);
		}
	}
	if (wait_drain >= 0) {
		long waited = 0;
		struct shim_eventlog_status st;

		for (;;) {
			shim_eventlog_status(el, &st);
			if (st.spool_depth == 0 || stop ||
			    waited >= wait_drain * 1000) {
				break;
			}
			sleep_ms(50);
			waited += 50;
		}
		if (st.spool_depth != 0) {
			status = status ? status : 3;
		}
	}
	t_drain = shim_linux_mono_ns();
	printf("timing emit_ms=%.1f durable_ms=%.1f drained_ms=%.1f\n",
	       (double)(t_emit - t0) / 1e6, (double)(t_flush - t0) / 1e6,
	       (double)(t_drain - t0) / 1e6);
	print_status(el);
	shim_eventlog_close(el, (int)close_timeout);
	shim_linux_port_fini(&lp);
	shim_config_free(&cfg);
	free(sdir);
	return status;
}
