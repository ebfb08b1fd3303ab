/*
 * The SIEM spool (lanes, durability, cursors, bounds, torn tails) and the
 * event log built on it (sequence numbers across restarts, audit log
 * rotation, heartbeats dropped first).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "err.h"
#include "eventlog.h"
#include "fakes.h"
#include "spool.h"
#include "util.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_spool.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static char *sub(const char *name)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static void put(struct shim_spool *sp, enum shim_spool_lane lane,
		uint64_t seq)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "message %llu", (unsigned long long)seq);
	assert_int_equal(shim_spool_append(sp, lane, seq, (uint8_t *)msg,
					   strlen(msg)),
			 0);
}

/* Reads the next record; returns its seq or 0 when none. */
static uint64_t take(struct shim_spool *sp, struct shim_spool_rec *rec)
{
	static uint8_t buf[SHIM_SPOOL_REC_MAX];
	char want[64];
	int rc = shim_spool_next(sp, buf, sizeof(buf), rec);

	assert_true(rc >= 0);
	if (rc == 0) {
		return 0;
	}
	snprintf(want, sizeof(want), "message %llu",
		 (unsigned long long)rec->seq);
	assert_int_equal(rec->len, strlen(want));
	assert_memory_equal(rec->data, want, rec->len);
	return rec->seq;
}

static void test_order_and_lanes(void **state)
{
	struct shim_spool *sp;
	struct shim_spool_rec rec;

	(void)state;
	assert_int_equal(shim_spool_open(&sp, sub("s"), 0), 0);
	put(sp, SHIM_LANE_NORMAL, 1);
	put(sp, SHIM_LANE_HEARTBEAT, 2);
	put(sp, SHIM_LANE_NORMAL, 3);
	put(sp, SHIM_LANE_PRIORITY, 4);
	put(sp, SHIM_LANE_HEARTBEAT, 5);
	/* Nothing leaves before it is durable. */
	assert_int_equal(take(sp, &rec), 0);
	assert_int_equal(shim_spool_is_synced(sp), 0);
	assert_int_equal(shim_spool_sync(sp), 0);
	assert_int_equal(shim_spool_is_synced(sp), 1);
	/* Priority first, then by sequence number. */
	assert_int_equal(take(sp, &rec), 4);
	assert_int_equal(take(sp, &rec), 1);
	assert_int_equal(take(sp, &rec), 2);
	assert_int_equal(take(sp, &rec), 3);
	assert_int_equal(take(sp, &rec), 5);
	assert_int_equal(take(sp, &rec), 0);
	shim_spool_close(sp);
}

static void test_rewind_and_ack(void **state)
{
	struct shim_spool *sp;
	struct shim_spool_rec rec;
	struct shim_spool_status st;
	uint64_t i;

	(void)state;
	assert_int_equal(shim_spool_open(&sp, sub("s"), 0), 0);
	for (i = 1; i <= 10; i++) {
		put(sp, SHIM_LANE_NORMAL, i);
	}
	shim_spool_sync(sp);
	for (i = 1; i <= 4; i++) {
		assert_int_equal(take(sp, &rec), i);
		if (i <= 3) {
			shim_spool_ack(sp, rec.lane, rec.next);
		}
	}
	shim_spool_status(sp, &st);
	assert_int_equal(st.records, 7);
	/* Link lost: the unacknowledged record 4 comes again. */
	shim_spool_rewind(sp);
	assert_int_equal(take(sp, &rec), 4);
	shim_spool_ack(sp, rec.lane, rec.next);
	/* An old ack is harmless. */
	shim_spool_ack(sp, rec.lane, rec.next);
	shim_spool_status(sp, &st);
	assert_int_equal(st.records, 6);
	shim_spool_close(sp);

	/* Reopen: acknowledged records stay delivered, the rest come. */
	assert_int_equal(shim_spool_open(&sp, sub("s"), 0), 0);
	shim_spool_status(sp, &st);
	assert_int_equal(st.records, 6);
	assert_int_equal(st.max_seq, 10);
	for (i = 5; i <= 10; i++) {
		assert_int_equal(take(sp, &rec), i);
	}
	assert_int_equal(take(sp, &rec), 0);
	shim_spool_close(sp);
}

static void test_torn_tail(void **state)
{
	struct shim_spool *sp;
	struct shim_spool_rec rec;
	struct shim_spool_status st;
	char path[1024];
	struct dirent *de;
	DIR *d;
	int fd;

	(void)state;
	assert_int_equal(shim_spool_open(&sp, sub("s"), 0), 0);
	put(sp, SHIM_LANE_NORMAL, 1);
	put(sp, SHIM_LANE_NORMAL, 2);
	shim_spool_close(sp);
	/* A record cut by a power loss, then garbage. */
	d = opendir(sub("s"));
	assert_non_null(d);
	path[0] = '\0';
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "norm-", 5) == 0) {
			snprintf(path, sizeof(path), "%s/%s", sub("s"),
				 de->d_name);
		}
	}
	closedir(d);
	assert_true(path[0] != '\0');
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "SPR1\0\0\0\x20xx", 10), 10);
	close(fd);

	assert_int_equal(shim_spool_open(&sp, sub("s"), 0), 0);
	shim_spool_status(sp, &st);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.corrupt_skipped, 1);
	/* Appends continue cleanly after the cut. */
	put(sp, SHIM_LANE_NORMAL, 3);
	shim_spool_sync(sp);
	assert_int_equal(take(sp, &rec), 1);
	assert_int_equal(take(sp, &rec), 2);
	assert_int_equal(take(sp, &rec), 3);
	assert_int_equal(take(sp, &rec), 0);
	shim_spool_close(sp);
}

static void test_bound_drops_heartbeats_first(void **state)
{
	struct shim_spool *sp;
	struct shim_spool_rec rec;
	struct shim_spool_status st;
	uint64_t seq = 1, i, got, last_hb = 0, normal = 0;
	uint8_t payload[1000];

	(void)state;
	memset(payload, 'x', sizeof(payload));
	/* Room for about 64 records of ~1 KiB. */
	assert_int_equal(shim_spool_open(&sp, sub("s"), 64 * 1024), 0);
	for (i = 0; i < 200; i++) {
		enum shim_spool_lane lane = (i % 4 == 0) ? SHIM_LANE_NORMAL :
						SHIM_LANE_HEARTBEAT;
		int rc = shim_spool_append(sp, lane, seq++, payload,
					   sizeof(payload));

		assert_true(rc == 0 || (rc == SHIM_ENOSPC &&
					lane == SHIM_LANE_HEARTBEAT));
	}
	shim_spool_status(sp, &st);
	assert_true(st.bytes <= 64 * 1024);
	assert_true(st.dropped_heartbeats > 0);
	assert_int_equal(st.lane_records[SHIM_LANE_NORMAL], 50);
	assert_int_equal(st.over_limit, 0);
	/* Now only session events: they are kept even over the bound. */
	for (i = 0; i < 100; i++) {
		assert_int_equal(shim_spool_append(sp, SHIM_LANE_NORMAL, seq++,
						   payload, sizeof(payload)),
				 0);
	}
	shim_spool_status(sp, &st);
	assert_int_equal(st.lane_records[SHIM_LANE_HEARTBEAT], 0);
	assert_int_equal(st.lane_records[SHIM_LANE_NORMAL], 150);
	assert_true(st.over_limit > 0);
	shim_spool_sync(sp);
	while (shim_spool_next(sp, (uint8_t[SHIM_SPOOL_REC_MAX]){ 0 },
			       SHIM_SPOOL_REC_MAX, &rec) == 1) {
		if (rec.lane == SHIM_LANE_HEARTBEAT) {
			last_hb = rec.seq;
		} else {
			normal++;
		}
	}
	assert_int_equal(normal, 150);
	assert_int_equal(last_hb, 0);
	got = st.dropped_heartbeats;
	shim_spool_close(sp);
	/* The drop counter survives a restart. */
	assert_int_equal(shim_spool_open(&sp, sub("s"), 64 * 1024), 0);
	shim_spool_status(sp, &st);
	assert_int_equal(st.dropped_heartbeats, got);
	shim_spool_close(sp);
}

static void test_segments_rotate_and_are_deleted(void **state)
{
	struct shim_spool *sp;
	struct shim_spool_rec rec;
	uint8_t payload[4000];
	struct dirent *de;
	DIR *d;
	uint64_t i;
	int segs = 0;

	(void)state;
	memset(payload, 'y', sizeof(payload));
	/* 64 KiB segments: 100 records of 4 KiB need several. */
	assert_int_equal(shim_spool_open(&sp, sub("s"), 512 * 1024), 0);
	for (i = 1; i <= 100; i++) {
		assert_int_equal(shim_spool_append(sp, SHIM_LANE_NORMAL, i,
						   payload, sizeof(payload)),
				 0);
		if (i == 20) {
			/* One rotation so far, and it did not sync:
			 * nothing is handed out yet. */
			assert_int_equal(shim_spool_is_synced(sp), 0);
			assert_int_equal(shim_spool_next(sp,
							 (uint8_t[64]){ 0 }, 64,
							 &rec), 0);
		}
	}
	shim_spool_sync(sp);
	assert_int_equal(shim_spool_is_synced(sp), 1);
	for (i = 1; i <= 100; i++) {
		static uint8_t buf[SHIM_SPOOL_REC_MAX];

		assert_int_equal(shim_spool_next(sp, buf, sizeof(buf), &rec), 1);
		assert_int_equal(rec.seq, i);
		shim_spool_ack(sp, rec.lane, rec.next);
	}
	assert_int_equal(shim_spool_checkpoint(sp), 0);
	d = opendir(sub("s"));
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "norm-", 5) == 0) {
			segs++;
		}
	}
	closedir(d);
	assert_int_equal(segs, 1);
	shim_spool_close(sp);
}

static void test_parse_segment_rejects_garbage(void **state)
{
	uint8_t buf[256];
	uint8_t hdr[SHIM_SPOOL_REC_HDR];
	int corrupt;
	long long end;

	(void)state;
	memset(buf, 0, sizeof(buf));
	assert_true(shim_spool_parse_segment(buf, sizeof(buf), -1, NULL, NULL,
					     &corrupt) < 0);
	memcpy(buf, "SHIMSPL1", 8);
	buf[8] = SHIM_LANE_NORMAL;
	assert_int_equal(shim_spool_parse_segment(buf, 16, 1, NULL, NULL,
						  &corrupt), 16);
	assert_int_equal(corrupt, 0);
	/* Wrong lane. */
	assert_true(shim_spool_parse_segment(buf, 16, 2, NULL, NULL,
					     &corrupt) < 0);
	/* A good record, then one whose CRC is wrong. */
	shim_spool_encode_header(hdr, SHIM_LANE_NORMAL, 7,
				 (const uint8_t *)"abc", 3);
	memcpy(buf + 16, hdr, sizeof(hdr));
	memcpy(buf + 16 + sizeof(hdr), "abc", 3);
	memcpy(buf + 43, hdr, sizeof(hdr));
	memcpy(buf + 43 + sizeof(hdr), "abd", 3);
	end = shim_spool_parse_segment(buf, 70, 1, NULL, NULL, &corrupt);
	assert_int_equal(end, 43);
	assert_int_equal(corrupt, 1);
	/* A length field larger than the rest. */
	buf[43 + 4] = 0x7f;
	end = shim_spool_parse_segment(buf, 70, 1, NULL, NULL, &corrupt);
	assert_int_equal(end, 43);
}

/* ---- the event log ------------------------------------------------------- */

static void cfg_init(struct shim_config *cfg)
{
	shim_config_defaults(cfg);
	cfg->shim_id = strdup("shim-unit");
	cfg->storage_root = strdup(dir);
	cfg->audit_log = strdup(sub("audit.jsonl"));
}

static uint64_t emit(struct shim_eventlog *el, const char *name)
{
	struct shim_event ev;

	assert_int_equal(shim_event_init(&ev, name, SHIM_SEV_INFO,
					 1795494429LL * 1000000000LL), 0);
	assert_int_equal(shim_event_add(&ev, "k", "v"), 0);
	assert_int_equal(shim_eventlog_emit(el, &ev), 0);
	assert_string_equal(ev.shim_id, "shim-unit");
	return ev.seq;
}

static void test_eventlog_seq_persists(void **state)
{
	struct fake_port fp;
	struct shim_config cfg;
	struct shim_eventlog *el;
	struct shim_eventlog_status st;
	uint64_t i;

	(void)state;
	fake_port_init(&fp, 1795494429);
	cfg_init(&cfg);
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	{
		/* A second writer would reuse sequence numbers. */
		struct shim_eventlog *el2 = NULL;

		assert_int_equal(shim_eventlog_open(&el2, &cfg, &fp.port),
				 SHIM_ESTATE);
		assert_null(el2);
	}
	for (i = 1; i <= 5; i++) {
		assert_int_equal(emit(el, "auth_ok"), i);
	}
	assert_int_equal(shim_eventlog_flush(el, 5000), 0);
	shim_eventlog_status(el, &st);
	assert_int_equal(st.next_seq, 6);
	assert_int_equal(st.transport_enabled, 0);
	shim_eventlog_close(el, 0);

	/* Restart: continues at 6. */
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	assert_int_equal(emit(el, "boot"), 6);
	shim_eventlog_close(el, 0);

	/* The store blob lost (or behind): the audit log still has 6. */
	fake_port_free(&fp);
	fake_port_init(&fp, 1795494429);
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	assert_int_equal(emit(el, "boot"), 7);
	shim_eventlog_close(el, 0);
	fake_port_free(&fp);
	shim_config_free(&cfg);
}

/* recording_failed is an alert: it waits in the priority lane, like
 * tamper, ahead of the ordinary events, while the SIEM is unreachable. */
static void test_eventlog_recording_failed_priority(void **state)
{
	struct fake_port fp;
	struct shim_config cfg;
	struct shim_eventlog *el;
	struct shim_eventlog_status st;

	(void)state;
	fake_port_init(&fp, 1795494429);
	cfg_init(&cfg);
	cfg.siem_transport = SHIM_SIEM_SYSLOG_TCP;
	cfg.siem_insecure = 1;
	cfg.siem_host = strdup("127.0.0.1");
	cfg.siem_port = 9;   /* discard: nothing listens */
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	emit(el, "auth_ok");
	emit(el, "session_start");
	shim_eventlog_status(el, &st);
	assert_int_equal(st.spool_priority, 0);
	emit(el, "recording_failed");
	shim_eventlog_status(el, &st);
	assert_int_equal(st.spool_priority, 1);
	emit(el, "tamper");
	shim_eventlog_status(el, &st);
	assert_int_equal(st.spool_priority, 2);
	shim_eventlog_close(el, 0);
	fake_port_free(&fp);
	shim_config_free(&cfg);
}

static void test_eventlog_store_failure_reported(void **state)
{
	struct fake_port fp;
	struct shim_config cfg;
	struct shim_eventlog *el;
	struct shim_eventlog_status st;
	struct shim_event ev;

	(void)state;
	fake_port_init(&fp, 1795494429);
	cfg_init(&cfg);
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	assert_int_equal(emit(el, "boot"), 1);
	assert_int_equal(shim_eventlog_flush(el, 5000), 0);
	/* The store fails: events are still recorded durably (the audit
	 * log), and status says the backup of the sequence is failing. */
	fp.store.fail_save = 1;
	assert_int_equal(shim_event_init(&ev, "tamper", SHIM_SEV_ALERT,
					 1795494429LL * 1000000000LL), 0);
	assert_int_equal(shim_eventlog_emit(el, &ev), 0);
	assert_int_equal(ev.seq, 2);
	assert_int_equal(emit(el, "boot"), 3);
	shim_eventlog_close(el, 0);
	/* The store's copy is behind; the audit log is not. */
	fp.store.fail_save = 0;
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	assert_int_equal(emit(el, "boot"), 4);
	shim_eventlog_status(el, &st);
	assert_string_equal(st.link_error, "");
	shim_eventlog_close(el, 0);
	{
		size_t len;
		uint8_t *b = fake_store_get(&fp, "event-seq", &len);

		assert_non_null(b);
		assert_int_equal(len, 12);
		assert_int_equal(shim_get_u64(b), 5);
	}
	fake_port_free(&fp);
	shim_config_free(&cfg);
}

static void test_eventlog_audit_rotates(void **state)
{
	struct fake_port fp;
	struct shim_config cfg;
	struct shim_eventlog *el;
	struct stat st;
	char p[600];
	int i;

	(void)state;
	fake_port_init(&fp, 1795494429);
	cfg_init(&cfg);
	cfg.audit_log_max_bytes = 4096;
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	for (i = 0; i < 200; i++) {
		emit(el, "auth_fail");
	}
	shim_eventlog_close(el, 0);
	assert_int_equal(stat(sub("audit.jsonl"), &st), 0);
	assert_true(st.st_size <= 4096);
	snprintf(p, sizeof(p), "%s.1", sub("audit.jsonl"));
	assert_int_equal(stat(p, &st), 0);
	assert_true(st.st_size <= 4096 && st.st_size > 3000);
	assert_int_equal(st.st_mode & 0777, 0640);
	snprintf(p, sizeof(p), "%s.5", sub("audit.jsonl"));
	assert_int_equal(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s.6", sub("audit.jsonl"));
	assert_int_not_equal(stat(p, &st), 0);

	/* The sequence survives rotation (found in the newest file). */
	fake_port_free(&fp);
	fake_port_init(&fp, 1795494429);
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	assert_int_equal(emit(el, "boot"), 201);
	shim_eventlog_close(el, 0);
	fake_port_free(&fp);
	shim_config_free(&cfg);
}

static void test_eventlog_spool_unreachable(void **state)
{
	struct fake_port fp;
	struct shim_config cfg;
	struct shim_eventlog *el;
	struct shim_eventlog_status st;
	int i;

	(void)state;
	fake_port_init(&fp, 1795494429);
	cfg_init(&cfg);
	/* Plain TCP to a closed port: events wait in the spool. */
	cfg.siem_transport = SHIM_SIEM_SYSLOG_TCP;
	cfg.siem_insecure = 1;
	cfg.siem_host = strdup("127.0.0.1");
	cfg.siem_port = 9;
	cfg.siem_spool_max_bytes = 64 * 1024;
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	shim_eventlog_set_logger(el, NULL, NULL);
	for (i = 0; i < 1000; i++) {
		emit(el, i % 10 == 0 ? "session_start" : "heartbeat");
	}
	emit(el, "tamper");
	assert_int_equal(shim_eventlog_flush(el, 5000), 0);
	shim_eventlog_status(el, &st);
	assert_int_equal(st.transport_enabled, 1);
	assert_int_equal(st.link_up, 0);
	assert_true(st.dropped_heartbeats > 0);
	assert_int_equal(st.spool_priority, 1);
	assert_true(st.spool_bytes <= 64 * 1024);
	{
		char text[512];

		shim_eventlog_status_text(&st, text, sizeof(text));
		assert_non_null(strstr(text, "siem: link DOWN"));
		assert_non_null(strstr(text, "Connection refused"));
		assert_non_null(strstr(text, "(1 priority)"));
		shim_eventlog_status_text(&st, text, 10);
		assert_int_equal(strlen(text), 9);
	}
	/* Through the core's event sink interface. */
	{
		struct shim_event_sink_ops ops;
		struct shim_event ev;

		shim_eventlog_sink(el, &ops);
		assert_int_equal(shim_event_init(&ev, "storage_low",
						 SHIM_SEV_WARNING, 0), 0);
		assert_int_equal(ops.emit(ops.ctx, &ev), 0);
		assert_int_equal(ev.seq, 0); /* the caller's copy is untouched */
	}
	shim_eventlog_close(el, 100);

	/* Session events and the alert are all still there. */
	{
		struct shim_spool *sp;
		struct shim_spool_status sst;
		char sdir[600];

		snprintf(sdir, sizeof(sdir), "%s/spool", dir);
		assert_int_equal(shim_spool_open(&sp, sdir, 64 * 1024), 0);
		shim_spool_status(sp, &sst);
		assert_int_equal(sst.lane_records[SHIM_LANE_NORMAL], 101);
		assert_int_equal(sst.lane_records[SHIM_LANE_PRIORITY], 1);
		shim_spool_close(sp);
	}
	fake_port_free(&fp);
	shim_config_free(&cfg);
}

static void test_eventlog_backoff(void **state)
{
	struct fake_port fp;
	struct shim_config cfg;
	struct shim_eventlog *el;
	struct shim_eventlog_status st;

	(void)state;
	fake_port_init(&fp, 1795494429);
	cfg_init(&cfg);
	cfg.siem_transport = SHIM_SIEM_SYSLOG_TCP;
	cfg.siem_insecure = 1;
	cfg.siem_host = strdup("127.0.0.1");
	cfg.siem_port = 9; /* refused at once */
	assert_int_equal(shim_eventlog_open(&el, &cfg, &fp.port), 0);
	shim_eventlog_set_logger(el, NULL, NULL);
	sleep(3);
	shim_eventlog_status(el, &st);
	/* Back-off 0.5, 1, 2 s halved at most by jitter: at most 5
	 * attempts in 3 s (a fixed 0.5 s retry would make 7), at least 3. */
	assert_in_range(st.connect_attempts, 3, 5);
	assert_int_equal(st.connects, 0);
	assert_int_equal(st.link_up, 0);
	shim_eventlog_close(el, 0);
	fake_port_free(&fp);
	shim_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_lanes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rewind_and_ack, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_bound_drops_heartbeats_first, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_segments_rotate_and_are_deleted, setup, teardown),
		cmocka_unit_test(test_parse_segment_rejects_garbage),
		cmocka_unit_test_setup_teardown(test_eventlog_seq_persists,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_eventlog_recording_failed_priority, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_eventlog_store_failure_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eventlog_audit_rotates,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_eventlog_backoff, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eventlog_spool_unreachable,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
