/*
 * The heartbeat monitor on synthetic logs: heartbeats signed with real
 * identity keys through the event log's signing code, and forged,
 * replayed, altered ones. Every verdict is shown, through the library and
 * through the shimctl binary (table, JSON, exit status).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "heartbeat.h"
#include "monitor.h"
#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "syslog.h"
#include "tamper.h"

#define T0 1800000000LL
#define PERIOD 60
#define NOW (T0 + 100 * PERIOD)

static char dir[64], inv[96], logpath[96];
static struct shim_linux_port key_a, key_b, key_rogue;
static uint8_t pub_a[SHIM_P256_PUB_LEN], pub_b[SHIM_P256_PUB_LEN];
static FILE *logf;
static struct shim_monitor *mon;

/* Shims and their keys: a and b are inventory keys; rogue is not. */
static const struct {
	const char *id;
	int key; /* 0 = a, 1 = b */
} fleet[] = {
	{ "ok-1", 0 },       { "missing-1", 1 },  { "never-1", 0 },
	{ "offline-1", 1 },  { "restart-1", 0 },  { "tamper-1", 1 },
	{ "latched-1", 0 },  { "reset-1", 1 },    { "forged-1", 0 },
	{ "altered-1", 1 },  { "replay-1", 0 },   { "reboot-1", 1 },
	{ "wiped-1", 0 },
};

static int load_key(struct shim_linux_port *lp, const char *name,
		    uint8_t *pub)
{
	char path[128];
	uint8_t tmp[SHIM_P256_PUB_LEN];

	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	if (shim_keys_generate(path, NULL, pub != NULL ? pub : tmp, NULL) != 0 ||
	    shim_linux_port_init(lp, NULL) != 0 ||
	    shim_linux_port_load_identity(lp, path) != 0) {
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	char path[160], pem[512];
	size_t i;
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/test_monitor.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(inv, sizeof(inv), "%s/inventory", dir);
	snprintf(logpath, sizeof(logpath), "%s/received.log", dir);
	if (mkdir(inv, 0700) != 0 || load_key(&key_a, "a", pub_a) != 0 ||
	    load_key(&key_b, "b", pub_b) != 0 ||
	    load_key(&key_rogue, "rogue", NULL) != 0) {
		return -1;
	}
	for (i = 0; i < sizeof(fleet) / sizeof(fleet[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s.pub", inv, fleet[i].id);
		if (shim_keys_pub_pem(fleet[i].key ? pub_b : pub_a, pem,
				      sizeof(pem)) != 0) {
			return -1;
		}
		f = fopen(path, "w");
		if (f == NULL) {
			return -1;
		}
		fputs(pem, f);
		fclose(f);
	}
	logf = fopen(logpath, "w");
	return logf == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	shim_linux_port_fini(&key_a);
	shim_linux_port_fini(&key_b);
	shim_linux_port_fini(&key_rogue);
	shim_mon_free(mon);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct shim_linux_port *key_of(const char *id)
{
	size_t i;

	for (i = 0; i < sizeof(fleet) / sizeof(fleet[0]); i++) {
		if (strcmp(fleet[i].id, id) == 0) {
			return fleet[i].key ? &key_b : &key_a;
		}
	}
	return &key_rogue;
}

/* Stamps, signs (as the event log does) and formats one event. */
static char canon[SHIM_EVENT_CANON_MAX];

static void line_of(struct shim_event *ev, const char *id, uint64_t seq,
		    int64_t ts, struct shim_linux_port *signer, char *buf,
		    size_t cap)
{
	snprintf(ev->shim_id, sizeof(ev->shim_id), "%s", id);
	ev->seq = seq;
	if (ev->sign) {
		assert_int_equal(shim_event_sign(ev, &signer->port.crypto,
						 canon, sizeof(canon)), 0);
	}
	struct shim_syslog_opts o = { .hostname = "shim-host", .facility = -1 };
	size_t len;

	ev->wall_ns = ts * 1000000000LL;
	assert_int_equal(shim_syslog_rfc5424(ev, &o, buf, cap, &len), 0);
}

static void put(const char *line)
{
	fprintf(logf, "%s\n", line);
}

static void heartbeat(const char *id, uint64_t seq, uint64_t boot, int64_t t,
		      int tamper)
{
	struct shim_heartbeat_info hb;
	struct shim_event ev;
	char line[8192];

	memset(&hb, 0, sizeof(hb));
	hb.boot_count = boot;
	hb.uptime_s = 100;
	hb.state = tamper ? "EMERGENCY_STOP" : "IDLE";
	hb.tamper = tamper;
	hb.version = "0.1.0";
	hb.period_s = PERIOD;
	assert_int_equal(shim_heartbeat_build(&ev, &hb, t * 1000000000LL), 0);
	line_of(&ev, id, seq, t, key_of(id), line, sizeof(line));
	put(line);
}

static void shutdown_ev(const char *id, uint64_t seq, uint64_t boot, int64_t t)
{
	struct shim_heartbeat_info hb;
	struct shim_event ev;
	char line[8192];

	memset(&hb, 0, sizeof(hb));
	hb.boot_count = boot;
	hb.state = "IDLE";
	hb.period_s = PERIOD;
	assert_int_equal(shim_heartbeat_build_shutdown(&ev, &hb, "sigterm",
						       t * 1000000000LL), 0);
	line_of(&ev, id, seq, t, key_of(id), line, sizeof(line));
	put(line);
}

/* Regular heartbeats from..to (inclusive), seq and time advancing. */
static uint64_t beats(const char *id, uint64_t seq, uint64_t boot,
		      int64_t from, int64_t to)
{
	int64_t t;

	for (t = from; t <= to; t += PERIOD) {
		heartbeat(id, seq++, boot, t, 0);
	}
	return seq;
}

static void write_log(void)
{
	struct shim_event ev;
	struct shim_tamper t;
	char line[8192], *p;
	uint64_t s;

	/* OK: beating to the end. */
	beats("ok-1", 1, 5, T0, NOW);
	/* MISSING: stopped 4 periods before now, no shutting_down. */
	beats("missing-1", 1, 2, T0, NOW - 4 * PERIOD);
	/* never-1: nothing at all. */
	/* OFFLINE-EXPECTED: a graceful stop, silent since. */
	s = beats("offline-1", 1, 3, T0, T0 + 10 * PERIOD);
	shutdown_ev("offline-1", s, 3, T0 + 10 * PERIOD + 5);
	/* A graceful restart is not unexpected. */
	s = beats("restart-1", 1, 3, T0, T0 + 10 * PERIOD);
	shutdown_ev("restart-1", s++, 3, T0 + 10 * PERIOD + 5);
	beats("restart-1", s, 4, T0 + 12 * PERIOD, NOW);
	/* TAMPERED: a tamper event (priority lane, unsigned). */
	s = beats("tamper-1", 1, 1, T0, NOW);
	memset(&t, 0, sizeof(t));
	strcpy(t.event, "case_opened");
	assert_int_equal(shim_tamper_event(&t, &ev, NOW * 1000000000LL), 0);
	line_of(&ev, "tamper-1", s, NOW - 30, NULL, line, sizeof(line));
	put(line);
	/* TAMPERED: a signed heartbeat saying the latch is set. */
	s = beats("latched-1", 1, 1, T0, NOW - PERIOD);
	heartbeat("latched-1", s, 1, NOW, 1);
	/* A tamper, then an authorised reset: OK again. The reset reason
	 * holds a line break that rsyslog stored as #012. */
	s = beats("reset-1", 1, 1, T0, T0 + 5 * PERIOD);
	assert_int_equal(shim_tamper_event(&t, &ev, 0), 0);
	line_of(&ev, "reset-1", s++, T0 + 5 * PERIOD + 1, NULL, line,
		sizeof(line));
	put(line);
	strcpy(t.reset_method, "token");
	strcpy(t.reset_by, "soc-duty");
	strcpy(t.reset_reason, "inspected");
	strcpy(t.reset_cleared, "case_opened");
	assert_int_equal(shim_tamper_reset_event(&t, &ev, 0), 0);
	assert_int_equal(shim_event_add(&ev, "note", "line one\nline two"), 0);
	line_of(&ev, "reset-1", s++, T0 + 6 * PERIOD, key_of("reset-1"), line,
		sizeof(line));
	p = strchr(line, '\n');
	assert_non_null(p);
	memmove(p + 4, p + 1, strlen(p + 1) + 1);
	memcpy(p, "#012", 4);
	put(line);
	beats("reset-1", s, 1, T0 + 7 * PERIOD, NOW);
	/* BAD-SIGNATURE: signed by a key that is not the shim's. */
	s = beats("forged-1", 1, 1, T0, NOW - 2 * PERIOD);
	{
		struct shim_heartbeat_info hb;

		memset(&hb, 0, sizeof(hb));
		hb.boot_count = 1;
		hb.state = "IDLE";
		hb.period_s = PERIOD;
		shim_heartbeat_build(&ev, &hb, NOW * 1000000000LL);
		line_of(&ev, "forged-1", s, NOW, &key_rogue, line, sizeof(line));
		put(line);
	}
	/* BAD-SIGNATURE: a good heartbeat with a value altered on the way. */
	s = beats("altered-1", 1, 1, T0, NOW - PERIOD);
	{
		struct shim_heartbeat_info hb;

		memset(&hb, 0, sizeof(hb));
		hb.boot_count = 1;
		hb.state = "IDLE";
		hb.tamper = 1;
		hb.period_s = PERIOD;
		shim_heartbeat_build(&ev, &hb, NOW * 1000000000LL);
		line_of(&ev, "altered-1", s, NOW, key_of("altered-1"), line,
			sizeof(line));
		p = strstr(line, "tamper=\"latched\"");
		assert_non_null(p);
		/* latched -> clear */
		memmove(p + 13, p + 15, strlen(p + 15) + 1);
		memcpy(p + 8, "clear", 5);
		assert_non_null(strstr(line, "tamper=\"clear\" session"));
		put(line);
	}
	/* REPLAYED: an old heartbeat sent again. */
	s = beats("replay-1", 1, 1, T0, NOW);
	heartbeat("replay-1", 3, 1, T0 + 2 * PERIOD, 0);
	/* REBOOTED-UNEXPECTEDLY: boot count rises, no shutting_down. */
	s = beats("reboot-1", 1, 7, T0, T0 + 20 * PERIOD);
	beats("reboot-1", s, 8, T0 + 22 * PERIOD, NOW);
	/* Boot and tamper state wiped (the event sequence survived): the
	 * boot count goes back. */
	s = beats("wiped-1", 100, 9, T0, T0 + 20 * PERIOD);
	beats("wiped-1", s, 1, T0 + 22 * PERIOD, NOW);
	/* A shim not in the inventory. */
	beats("stranger-1", 1, 1, NOW - PERIOD, NOW);
	/* Noise: rsyslog's own lines, garbage, another application. */
	put("<46>1 2026-11-24T04:00:00Z siem-host rsyslogd - - - [origin software=\"rsyslogd\"] start");
	put("garbage that is not syslog");
	put("<14>1 2026-11-24T04:00:00Z host other - - [meta x=\"1\"] hello");
	fflush(logf);
}

static enum shim_mon_verdict verdict(const char *id, int64_t now,
				     struct shim_mon_report *r)
{
	size_t i;

	for (i = 0; i < shim_mon_count(mon); i++) {
		shim_mon_report(mon, i, now, r);
		if (strcmp(r->shim_id, id) == 0) {
			return r->verdict;
		}
	}
	fail_msg("no report for %s", id);
	return SHIM_MON_OK;
}

static void test_every_verdict(void **state)
{
	struct shim_mon_report r;
	unsigned bad;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	const char *lines[1];
	size_t lens[1];
	uint64_t nl, nbad, nforeign;

	write_log();
	assert_int_equal(shim_mon_new(&mon, 60), 0);
	assert_int_equal(shim_mon_load_inventory(mon, inv, stderr, &bad), 13);
	assert_int_equal(bad, 0);
	f = fopen(logpath, "r");
	assert_non_null(f);
	while ((n = getline(&line, &cap, f)) > 0) {
		lines[0] = line;
		lens[0] = (size_t)n;
		assert_int_equal(shim_mon_feed_lines(mon, lines, lens, 1, 1, NULL,
						     NULL), 0);
	}
	free(line);
	fclose(f);
	shim_mon_counters(mon, &nl, &nbad, &nforeign);
	assert_int_equal(nbad, 1);
	assert_int_equal(nforeign, 2);

	assert_int_equal(verdict("ok-1", NOW, &r), SHIM_MON_OK);
	assert_int_equal(r.heartbeats, 101);
	/* Judged before its last heartbeats were stamped: they are from the
	 * future and do not keep it alive. */
	assert_int_equal(verdict("ok-1", NOW - 20 * PERIOD, &r), SHIM_MON_MISSING);
	assert_non_null(strstr(r.note, "ahead of now"));
	assert_int_equal(verdict("missing-1", NOW, &r), SHIM_MON_MISSING);
	/* ... and not yet at three periods. */
	assert_int_equal(verdict("missing-1", NOW - PERIOD, &r), SHIM_MON_OK);
	assert_int_equal(verdict("never-1", NOW, &r), SHIM_MON_MISSING);
	assert_string_equal(r.note, "no heartbeat seen");
	assert_int_equal(verdict("offline-1", NOW, &r), SHIM_MON_OFFLINE_EXPECTED);
	assert_int_equal(verdict("restart-1", NOW, &r), SHIM_MON_OK);
	assert_int_equal(r.boot_count, 4);
	assert_int_equal(verdict("tamper-1", NOW, &r), SHIM_MON_TAMPERED);
	assert_non_null(strstr(r.note, "case_opened"));
	assert_int_equal(verdict("latched-1", NOW, &r), SHIM_MON_TAMPERED);
	assert_int_equal(verdict("reset-1", NOW, &r), SHIM_MON_OK);
	assert_non_null(strstr(r.note, "soc-duty"));
	assert_int_equal(verdict("forged-1", NOW, &r), SHIM_MON_BAD_SIGNATURE);
	assert_int_equal(r.bad_sigs, 1);
	assert_int_equal(verdict("altered-1", NOW, &r), SHIM_MON_BAD_SIGNATURE);
	assert_int_equal(verdict("replay-1", NOW, &r), SHIM_MON_REPLAYED);
	assert_int_equal(r.replays, 1);
	assert_int_equal(verdict("reboot-1", NOW, &r), SHIM_MON_REBOOTED);
	assert_int_equal(verdict("wiped-1", NOW, &r), SHIM_MON_TAMPERED);
	assert_int_equal(verdict("stranger-1", NOW, &r), SHIM_MON_BAD_SIGNATURE);
	assert_false(r.in_inventory);
}

static void test_same_verdicts_with_threads(void **state)
{
	struct shim_monitor *m2;
	struct shim_mon_report r1, r2;
	unsigned bad;
	char **lines = NULL;
	size_t *lens = NULL, n = 0, cap = 0, i;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t got;
	FILE *f;

	assert_int_equal(shim_mon_new(&m2, 60), 0);
	assert_int_equal(shim_mon_load_inventory(m2, inv, NULL, &bad), 13);
	f = fopen(logpath, "r");
	assert_non_null(f);
	while ((got = getline(&line, &lcap, f)) > 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			lines = realloc(lines, cap * sizeof(*lines));
			lens = realloc(lens, cap * sizeof(*lens));
			assert_non_null(lines);
			assert_non_null(lens);
		}
		lines[n] = strdup(line);
		lens[n++] = (size_t)got;
	}
	free(line);
	fclose(f);
	assert_int_equal(shim_mon_feed_lines(m2, (const char *const *)lines, lens,
					     n, 4, NULL, NULL), 0);
	assert_int_equal(shim_mon_count(m2), shim_mon_count(mon));
	for (i = 0; i < shim_mon_count(mon); i++) {
		shim_mon_report(mon, i, NOW, &r1);
		shim_mon_report(m2, i, NOW, &r2);
		assert_string_equal(r1.shim_id, r2.shim_id);
		assert_int_equal(r1.verdict, r2.verdict);
		assert_int_equal(r1.alarms, r2.alarms);
	}
	for (i = 0; i < n; i++) {
		free(lines[i]);
	}
	free(lines);
	free(lens);
	shim_mon_free(m2);
}

/* Runs shimctl monitor; returns its exit status, output in out. */
static int run_shimctl(const char *args, char *out, size_t cap)
{
	const char *build = getenv("SHIM_BUILD");
	char cmd[1024];
	size_t n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/shimctl monitor --inventory %s %s",
		 build != NULL ? build : ".", inv, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_shimctl_monitor(void **state)
{
	static char out[65536];
	char args[512], okfile[160];
	FILE *f;

	if (getenv("SHIM_BUILD") == NULL) {
		skip();
	}
	snprintf(args, sizeof(args), "--log %s --now %lld --json", logpath,
		 (long long)NOW);
	assert_int_equal(run_shimctl(args, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "\"shim_id\":\"replay-1\",\"verdict\":\"REPLAYED\""));
	assert_non_null(strstr(out, "\"shim_id\":\"offline-1\",\"verdict\":\"OFFLINE-EXPECTED\",\"alarm\":false"));
	assert_non_null(strstr(out, "\"shim_id\":\"reboot-1\",\"verdict\":\"REBOOTED-UNEXPECTEDLY\""));
	assert_non_null(strstr(out, "\"alarms\":10}"));

	snprintf(args, sizeof(args), "--log %s --now 2027-01-15T08:00:00Z",
		 logpath);
	assert_int_equal(run_shimctl(args, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "VERDICT"));
	assert_non_null(strstr(out, "forged-1"));

	/* A quiet fleet exits 0: only ok-1's lines, judged at NOW. */
	snprintf(okfile, sizeof(okfile), "%s/ok.log", dir);
	snprintf(args, sizeof(args), "grep 'shim_id=\"ok-1\"' %s > %s", logpath,
		 okfile);
	assert_int_equal(system(args), 0);
	f = fopen(okfile, "r");
	assert_non_null(f);
	fclose(f);
	{
		char inv1[160], cmd[512];

		snprintf(inv1, sizeof(inv1), "%s/inv1", dir);
		snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s/ok-1.pub %s/",
			 inv1, inv, inv1);
		assert_int_equal(system(cmd), 0);
		snprintf(cmd, sizeof(cmd),
			 "%s/shimctl monitor --inventory %s --log %s --now %lld "
			 ">/dev/null", getenv("SHIM_BUILD"), inv1, okfile,
			 (long long)NOW);
		assert_int_equal(WEXITSTATUS(system(cmd)), 0);
		/* Usage and unreadable inputs. */
		snprintf(cmd, sizeof(cmd), "%s/shimctl monitor --log %s 2>/dev/null",
			 getenv("SHIM_BUILD"), okfile);
		assert_int_equal(WEXITSTATUS(system(cmd)), 2);
		snprintf(cmd, sizeof(cmd),
			 "%s/shimctl monitor --inventory %s --log /nonexistent "
			 "2>/dev/null", getenv("SHIM_BUILD"), inv1);
		assert_int_equal(WEXITSTATUS(system(cmd)), 3);
	}
}

static void test_parse_edges(void **state)
{
	struct shim_mon_line l;
	int64_t t;
	const char *ok =
		"123 <134>1 2026-11-24T04:00:00.123+01:00 h shimd 77 heartbeat "
		"[meta a=\"b\"][shim@1 shim_id=\"p-1\" seq=\"9\" "
		"reason=\"a \\\"q\\\" \\\\ \\] z\" x=\"\"] msg";

	assert_int_equal(shim_mon_parse_line(ok, strlen(ok), &l), 0);
	assert_string_equal(l.ev.name, "heartbeat");
	assert_string_equal(l.ev.shim_id, "p-1");
	assert_int_equal(l.ev.seq, 9);
	assert_int_equal(l.ev.nfields, 2);
	assert_string_equal(l.ev.fields[0].value, "a \"q\" \\ ] z");
	assert_string_equal(l.ev.fields[1].value, "");
	assert_int_equal(l.ts_s, 1795492800LL - 3600);

	/* Missing shim_id or seq, bad seq, unterminated, too many fields. */
	{
		const char *bad[] = {
			"<1>1 - h shimd - heartbeat [shim@1 seq=\"1\"]",
			"<1>1 - h shimd - heartbeat [shim@1 shim_id=\"a\"]",
			"<1>1 - h shimd - heartbeat [shim@1 shim_id=\"a\" seq=\"01\"]",
			"<1>1 - h shimd - heartbeat [shim@1 shim_id=\"a\" seq=\"99999999999999999999\"]",
			"<1>1 - h shimd - heartbeat [shim@1 shim_id=\"a\" seq=\"1\"",
			"<1>1 - h shimd - heartbeat [shim@1 shim_id=\"a\" seq=\"1\" k=\"v]",
			"<1>1 - h shimd - heartbeat [shim@1 shim_id=\"a\" seq=\"1\" bad-key=\"v\"]",
			"<1>2 - h shimd - heartbeat [shim@1 shim_id=\"a\" seq=\"1\"]",
			"<1>1 yesterday h shimd - heartbeat [shim@1 shim_id=\"a\" seq=\"1\"]",
			"<1>1 - h shimd - a_name_that_is_far_too_long_for_an_event [shim@1 shim_id=\"a\" seq=\"1\"]",
			"<1>1 - h shimd - heartbeat ",
			"<1>1 - h shimd - heartbeat",
			"",
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_int_equal(shim_mon_parse_line(bad[i], strlen(bad[i]),
							     &l), SHIM_EINVAL);
		}
	}
	{
		char big[8192];
		size_t n, i;

		n = (size_t)snprintf(big, sizeof(big),
				     "<1>1 - h shimd - hb [shim@1 shim_id=\"a\" seq=\"1\"");
		for (i = 0; i < SHIM_EVENT_MAX_FIELDS + 1; i++) {
			n += (size_t)snprintf(big + n, sizeof(big) - n, " k%zu=\"v\"", i);
		}
		snprintf(big + n, sizeof(big) - n, "]");
		assert_int_equal(shim_mon_parse_line(big, strlen(big), &l), SHIM_EINVAL);
	}
	/* Not ours: no SD, or an SD-ID that is not shim@digits. */
	assert_int_equal(shim_mon_parse_line("<1>1 - h x - y -", 16, &l), SHIM_ENOENT);
	assert_int_equal(shim_mon_parse_line("<1>1 - h x - y [shim@x a=\"b\"]", 29, &l),
			 SHIM_ENOENT);

	assert_int_equal(shim_mon_parse_time("1800000000", 10, &t), 0);
	assert_int_equal(t, 1800000000LL);
	assert_int_equal(shim_mon_parse_time("2027-01-15T08:00:00Z", 20, &t), 0);
	assert_int_equal(t, 1800000000LL);
	assert_int_equal(shim_mon_parse_time("2027-01-15T08:00:00-02:30", 25, &t), 0);
	assert_int_equal(t, 1800000000LL + 9000);
	assert_int_equal(shim_mon_parse_time("2027-13-15T08:00:00Z", 20, &t),
			 SHIM_EINVAL);
	assert_int_equal(shim_mon_parse_time("2027-01-15T08:00:00", 19, &t),
			 SHIM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_verdict),
		cmocka_unit_test(test_same_verdicts_with_threads),
		cmocka_unit_test(test_shimctl_monitor),
		cmocka_unit_test(test_parse_edges),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
