/*
 * shimctl monitor: the SOC's view of a fleet's heartbeats.
 *
 *   shimctl monitor --inventory DIR [--authority PUB] --log FILE
 *                   [--follow] [--now T] [--json] [--period S]
 *                   [--threads N]
 *
 * DIR holds <shim_id>.pub (the identity public keys, PEM), or, with
 * --authority (the provisioning authority's public key), the units'
 * signed inventory records <shim_id>.inv: then only a key that a record
 * signed by that authority vouches for is trusted. FILE is the
 * SIEM's received log, one RFC 5424 message per line (rsyslog %rawmsg%).
 * Prints one verdict per shim (a table, or JSON with --json). Exit status:
 * 0 no alarm, 1 at least one alarm, 2 usage, 3 inventory or log unreadable.
 * With --follow it keeps reading the log as it grows and prints a line for
 * every verdict change.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "monitor.h"
#include "port_linux.h"
#include "subcommands.h"
#include "toolutil.h"

#define BATCH 8192
#define LINE_MAX_LEN 65536

struct reader {
	FILE *f;
	int follow;             /* a line without LF may still be growing */
	char *buf[BATCH];
	size_t cap[BATCH];
	size_t len[BATCH];
};

static int usage(void)
{
	fprintf(stderr, "usage: shimctl monitor --inventory DIR [--authority PUB] "
			"--log FILE [--follow] [--now T] [--json] [--period S] "
			"[--threads N]\n");
	return 2;
}

static int is_alarm(enum shim_mon_verdict v)
{
	return v != SHIM_MON_OK && v != SHIM_MON_OFFLINE_EXPECTED &&
	       v != SHIM_MON_DECOMMISSIONED;
}

/* Reads up to BATCH complete lines; returns how many. A partial last
 * line (a writer mid-line) is pushed back for the next call. */
static size_t read_batch(struct reader *r)
{
	size_t n = 0;
	ssize_t got;
	long pos;

	while (n < BATCH) {
		pos = ftell(r->f);
		got = getline(&r->buf[n], &r->cap[n], r->f);
		if (got <= 0) {
			clearerr(r->f);
			break;
		}
		if (r->buf[n][got - 1] != '\n' && r->follow) {
			fseek(r->f, pos, SEEK_SET);
			break;
		}
		r->len[n] = (size_t)got > LINE_MAX_LEN ? LINE_MAX_LEN : (size_t)got;
		n++;
	}
	return n;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			printf("\\%c", c);
		} else if (c < 0x20) {
			printf("\\u%04x", c);
		} else {
			putchar(c);
		}
	}
	putchar('"');
}

static void fmt_age(char *buf, size_t cap, int64_t now, int64_t t)
{
	if (t == 0) {
		snprintf(buf, cap, "never");
	} else {
		snprintf(buf, cap, "%llds ago", (long long)(now - t));
	}
}

static int print_report(struct shim_monitor *m, int64_t now, int json)
{
	struct shim_mon_report r;
	char age[32];
	size_t i, n = shim_mon_count(m);
	uint64_t lines, bad, foreign;
	int alarms = 0;

	shim_mon_counters(m, &lines, &bad, &foreign);
	if (json) {
		printf("{\"now\":%lld,\"lines\":%llu,\"malformed\":%llu,"
		       "\"shims\":[", (long long)now, (unsigned long long)lines,
		       (unsigned long long)bad);
	} else {
		printf("%-24s %-22s %-14s %10s %6s %8s  %s\n", "SHIM", "VERDICT",
		       "LAST-SEEN", "SEQ", "BOOT", "BEATS", "NOTE");
	}
	for (i = 0; i < n; i++) {
		shim_mon_report(m, i, now, &r);
		alarms += is_alarm(r.verdict);
		if (json) {
			printf("%s{\"shim_id\":", i ? "," : "");
			json_str(r.shim_id);
			printf(",\"verdict\":\"%s\",\"alarm\":%s,"
			       "\"in_inventory\":%s,\"last_seen\":%lld,"
			       "\"last_seq\":%llu,\"boot_count\":%llu,"
			       "\"heartbeats\":%llu,\"bad_signatures\":%llu,"
			       "\"replays\":%llu,\"period\":%.0f,\"note\":",
			       shim_mon_verdict_name(r.verdict),
			       is_alarm(r.verdict) ? "true" : "false",
			       r.in_inventory ? "true" : "false",
			       (long long)r.last_seen,
			       (unsigned long long)r.last_seq,
			       (unsigned long long)r.boot_count,
			       (unsigned long long)r.heartbeats,
			       (unsigned long long)r.bad_sigs,
			       (unsigned long long)r.replays, r.period);
			json_str(r.note);
			if (r.serial[0] != '\0') {
				printf(",\"serial\":");
				json_str(r.serial);
				printf(",\"build\":");
				json_str(r.build);
			}
			putchar('}');
		} else {
			fmt_age(age, sizeof(age), now, r.last_seen);
			printf("%-24s %-22s %-14s %10llu %6llu %8llu  %s\n",
			       r.shim_id, shim_mon_verdict_name(r.verdict), age,
			       (unsigned long long)r.last_seq,
			       (unsigned long long)r.boot_count,
			       (unsigned long long)r.heartbeats, r.note);
		}
	}
	if (json) {
		printf("],\"alarms\":%d}\n", alarms);
	} else {
		printf("\n%zu shims, %d alarm%s; %llu lines read, %llu malformed\n",
		       n, alarms, alarms == 1 ? "" : "s",
		       (unsigned long long)lines, (unsigned long long)bad);
	}
	return alarms;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

/* --follow: prints every verdict change until interrupted. */
static int follow(struct shim_monitor *m, struct reader *r, const char *log,
		  unsigned threads, int json)
{
	enum shim_mon_verdict *prev = NULL;
	struct shim_mon_report rep;
	struct stat st;
	size_t n, i, known = 0;
	int64_t now;
	ino_t ino = 0;
	char stamp[32];
	time_t tt;
	struct tm tm;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (fstat(fileno(r->f), &st) == 0) {
		ino = st.st_ino;
	}
	while (!stop) {
		n = read_batch(r);
		if (n > 0) {
			shim_mon_feed_lines(m, (const char *const *)r->buf, r->len,
					    n, threads, NULL, NULL);
		}
		now = shim_linux_wall_ns() / 1000000000LL;
		if (shim_mon_count(m) > known) {
			enum shim_mon_verdict *p = realloc(prev,
				shim_mon_count(m) * sizeof(*p));

			if (p == NULL) {
				break;
			}
			prev = p;
			for (i = known; i < shim_mon_count(m); i++) {
				prev[i] = (enum shim_mon_verdict)-1;
			}
			known = shim_mon_count(m);
		}
		for (i = 0; i < known; i++) {
			shim_mon_report(m, i, now, &rep);
			if (rep.verdict == prev[i]) {
				continue;
			}
			prev[i] = rep.verdict;
			tt = (time_t)now;
			gmtime_r(&tt, &tm);
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
			if (json) {
				printf("{\"time\":\"%s\",\"shim_id\":", stamp);
				json_str(rep.shim_id);
				printf(",\"verdict\":\"%s\",\"alarm\":%s,\"note\":",
				       shim_mon_verdict_name(rep.verdict),
				       is_alarm(rep.verdict) ? "true" : "false");
				json_str(rep.note);
				printf("}\n");
			} else {
				printf("%s %-24s %-22s %s\n", stamp, rep.shim_id,
				       shim_mon_verdict_name(rep.verdict), rep.note);
			}
			fflush(stdout);
		}
		if (n == BATCH) {
			continue;
		}
		/* Rotation: a new file under the same name starts over. */
		if (stat(log, &st) == 0 && st.st_ino != ino) {
			FILE *f = fopen(log, "r");

			if (f != NULL) {
				fclose(r->f);
				r->f = f;
				ino = st.st_ino;
				continue;
			}
		}
		sleep(1);
	}
	free(prev);
	return 0;
}

int cmd_monitor_main(int argc, char **argv, const char *config_path)
{
	const char *inv = tool_opt(argc, argv, "--inventory");
	const char *log = tool_opt(argc, argv, "--log");
	const char *now_s = tool_opt(argc, argv, "--now");
	const char *period_s = tool_opt(argc, argv, "--period");
	const char *threads_s = tool_opt(argc, argv, "--threads");
	const char *authority = tool_opt(argc, argv, "--authority");
	uint8_t auth_pub[SHIM_P256_PUB_LEN];
	int json = tool_flag(argc, argv, "--json");
	struct shim_monitor *m = NULL;
	struct reader r;
	double period = 60.0;
	unsigned bad = 0, threads;
	int64_t now;
	size_t n, i;
	long nproc;
	char *end;
	int added, status = 3;

	if (inv == NULL || log == NULL) {
		return usage();
	}
	if (period_s != NULL) {
		period = strtod(period_s, &end);
		if (end == period_s || *end != '\0' || !(period >= 1.0) ||
		    period > 86400.0) {
			fprintf(stderr, "shimctl: --period must be 1..86400 s\n");
			return 2;
		}
	}
	now = shim_linux_wall_ns() / 1000000000LL;
	if (now_s != NULL && shim_mon_parse_time(now_s, strlen(now_s), &now) !=
				     0) {
		fprintf(stderr, "shimctl: --now takes Unix seconds or an RFC 3339 "
				"time\n");
		return 2;
	}
	nproc = sysconf(_SC_NPROCESSORS_ONLN);
	threads = nproc > 0 ? (unsigned)nproc : 1;
	if (threads_s != NULL) {
		threads = (unsigned)strtoul(threads_s, &end, 10);
		if (end == threads_s || *end != '\0' || threads < 1 ||
		    threads > 64) {
			fprintf(stderr, "shimctl: --threads must be 1..64\n");
			return 2;
		}
	}
	memset(&r, 0, sizeof(r));
	if (shim_mon_new(&m, period) != 0) {
		return 3;
	}
	if (authority != NULL) {
		int krc = shim_keys_load_public(authority, auth_pub);

		if (krc != 0) {
			fprintf(stderr, "shimctl: %s: %s\n", authority,
				krc == SHIM_EINVAL ? "not a P-256 key" :
				shim_strerror(krc));
			goto out;
		}
		added = shim_mon_load_records(m, inv, auth_pub, stderr, &bad);
	} else {
		added = shim_mon_load_inventory(m, inv, stderr, &bad);
	}
	if (added < 0) {
		fprintf(stderr, "shimctl: inventory %s: %s\n", inv,
			strerror(errno));
		goto out;
	}
	if (added == 0) {
		fprintf(stderr, "shimctl: inventory %s holds no %s\n", inv,
			authority != NULL ? "<shim_id>.inv record signed by "
					    "that authority" :
					    "<shim_id>.pub key");
		goto out;
	}
	r.f = fopen(log, "r");
	if (r.f == NULL) {
		fprintf(stderr, "shimctl: %s: %s\n", log, strerror(errno));
		goto out;
	}
	if (tool_flag(argc, argv, "--follow")) {
		r.follow = 1;
		status = follow(m, &r, log, threads, json);
		goto out;
	}
	while ((n = read_batch(&r)) > 0) {
		if (shim_mon_feed_lines(m, (const char *const *)r.buf, r.len, n,
					threads, NULL, NULL) != 0) {
			fprintf(stderr, "shimctl: out of memory\n");
			goto out;
		}
	}
	status = print_report(m, now, json) > 0 || bad > 0 ? 1 : 0;
out:
	if (r.f != NULL) {
		fclose(r.f);
	}
	for (i = 0; i < BATCH; i++) {
		free(r.buf[i]);
	}
	shim_mon_free(m);
	return status;
}
