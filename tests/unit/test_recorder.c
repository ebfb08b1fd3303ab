/*
 * Unit tests for the recorder (common/recorder.c) on a real directory:
 * the queue never blocks and answers SHIM_EAGAIN when full, its descriptor
 * wakes the caller when room frees up, every byte accepted is recorded,
 * one session at a time, the storage budget, retention, and the calls a
 * caller may make out of order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "keys.h"
#include "port_linux.h"
#include "record.h"
#include "recorder.h"

static struct shim_linux_port lp;
static char tmpdir[64];
static int rec_count;

static int setup(void **state)
{
	char path[128];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_recorder.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/id.key", tmpdir);
	assert_int_equal(shim_keys_generate(path, NULL, NULL, NULL), 0);
	assert_int_equal(shim_linux_port_init(&lp, NULL), 0);
	assert_int_equal(shim_linux_port_load_identity(&lp, path), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	shim_linux_port_fini(&lp);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void make_cfg(struct shim_config *cfg, const char *sub)
{
	char root[128];

	shim_config_defaults(cfg);
	snprintf(root, sizeof(root), "%s/%s", tmpdir, sub);
	cfg->storage_root = strdup(root);
	cfg->shim_id = strdup("shim-unit");
	cfg->sync_interval_ms = 20;
}

static void on_recovered(void *arg, const char *id, uint64_t records)
{
	(void)arg;
	(void)id;
	(void)records;
	rec_count++;
}

/* Reads a finished session back (without a key): its status and the
 * clear byte counts. */
static enum shim_rec_status read_back(const struct shim_config *cfg,
				      const char *id, uint64_t *in,
				      uint64_t *out)
{
	static uint8_t rbuf[SHIM_REC_READER_BUF];
	struct shim_rec_reader r;
	struct shim_rec_result res;
	char path[256];
	uint8_t buf[8192];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sessions/%s.rec", cfg->storage_root,
		 id);
	f = fopen(path, "rb");
	assert_non_null(f);
	shim_rec_reader_init(&r, &lp.port.crypto, NULL, rbuf, sizeof(rbuf));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		shim_rec_reader_feed(&r, buf, n);
	}
	fclose(f);
	shim_rec_reader_finish(&r, NULL, &res);
	*in = res.bytes_in;
	*out = res.bytes_out;
	return res.status;
}

/* Reads a session file as a crash would leave it: what is readable. */
static void read_part(const struct shim_config *cfg, const char *id,
		      struct shim_rec_result *res)
{
	static uint8_t rbuf[SHIM_REC_READER_BUF];
	struct shim_rec_reader r;
	char path[256];
	uint8_t buf[8192];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sessions/%s.part", cfg->storage_root,
		 id);
	f = fopen(path, "rb");
	assert_non_null(f);
	shim_rec_reader_init(&r, &lp.port.crypto, NULL, rbuf, sizeof(rbuf));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		shim_rec_reader_feed(&r, buf, n);
	}
	fclose(f);
	shim_rec_reader_finish(&r, NULL, res);
}

/* Bytes queued while a group commit is already pending (no wake-up for
 * them) are still in the file when the commit falls due, with nothing
 * else happening; the header is there from begin on. */
static void test_group_commit_takes_late_bytes(void **state)
{
	struct shim_config cfg;
	struct shim_recorder *r;
	struct shim_rec_result res;
	char id[SHIM_SESSION_ID_MAX];
	uint8_t a = 'a', b = 'b', c = 'c';
	int round;

	(void)state;
	make_cfg(&cfg, "late");
	cfg.sync_interval_ms = 100;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_begin(r, "alice", id), 0);
	read_part(&cfg, id, &res);
	assert_true(res.have_header);
	for (round = 0; round < 3; round++) {
		/* the first byte starts the commit window, the others
		 * arrive inside it */
		assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_IN, &a, 1,
						       shim_linux_wall_ns(),
						       shim_linux_mono_ns()),
				 0);
		usleep(20000);
		assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_OUT, &b, 1,
						       shim_linux_wall_ns(),
						       shim_linux_mono_ns()),
				 0);
		usleep(20000);
		assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_IN, &c, 1,
						       shim_linux_wall_ns(),
						       shim_linux_mono_ns()),
				 0);
		/* well past the window even on a loaded machine */
		usleep(600000);
		read_part(&cfg, id, &res);
		assert_true(res.have_header);
		assert_int_equal(res.bytes_in, 2 * (round + 1));
		assert_int_equal(res.bytes_out, round + 1);
	}
	assert_int_equal(shim_recorder_end(r, "technician_disconnect",
					   shim_linux_wall_ns(),
					   shim_linux_mono_ns()),
			 0);
	/* a second session begins with key material made in between */
	usleep(50000);
	assert_int_equal(shim_recorder_begin(r, "bob", id), 0);
	assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_IN, &a, 1,
					       shim_linux_wall_ns(),
					       shim_linux_mono_ns()),
			 0);
	assert_int_equal(shim_recorder_end(r, "technician_disconnect",
					   shim_linux_wall_ns(),
					   shim_linux_mono_ns()),
			 0);
	shim_recorder_close(r, "shutdown");
	{
		uint64_t in, out;

		assert_int_equal(read_back(&cfg, id, &in, &out),
				 SHIM_REC_COMPLETE);
		assert_int_equal(in, 1);
	}
	shim_config_free(&cfg);
}

static void test_backpressure_and_wakeup(void **state)
{
	struct shim_config cfg;
	struct shim_recorder *r;
	struct shim_recorder_status st;
	char id[SHIM_SESSION_ID_MAX];
	static uint8_t chunk[1024];
	uint64_t sent = 0, in, out;
	int eagain = 0, woken = 0, i, rc;

	(void)state;
	make_cfg(&cfg, "bp");
	cfg.queue_bytes = 4096;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_begin(r, "alice", id), 0);
	assert_int_equal(strlen(id), 23);
	for (i = 0; i < 2000; i++) {
		rc = shim_recorder_traffic(r, SHIM_DIR_OUT, chunk,
					   sizeof(chunk), shim_linux_wall_ns(),
					   shim_linux_mono_ns());
		if (rc == SHIM_EAGAIN) {
			struct pollfd p = { shim_recorder_fd(r), POLLIN, 0 };

			eagain++;
			/* the writer frees room and says so */
			if (poll(&p, 1, 2000) == 1) {
				woken++;
				shim_recorder_ack(r);
			}
			i--;
			continue;
		}
		assert_int_equal(rc, 0);
		sent += sizeof(chunk);
	}
	/* 2 MB through a 4 KiB queue cannot go without back-pressure */
	assert_true(eagain > 0);
	assert_int_equal(woken, eagain);
	/* a chunk that can never fit is refused outright */
	{
		static uint8_t big[8192];

		assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_IN, big,
						       sizeof(big), 0, 0),
				 SHIM_ERANGE);
	}
	shim_recorder_status(r, &st);
	assert_int_equal(st.bytes_out, sent);
	assert_int_equal(shim_recorder_end(r, "technician_disconnect",
					   shim_linux_wall_ns(),
					   shim_linux_mono_ns()),
			 0);
	assert_int_equal(read_back(&cfg, id, &in, &out), SHIM_REC_COMPLETE);
	assert_int_equal(out, sent);
	assert_int_equal(in, 0);
	shim_recorder_close(r, "shutdown");
	shim_config_free(&cfg);
}

static void test_state_rules(void **state)
{
	struct shim_config cfg;
	struct shim_recorder *r;
	char id[SHIM_SESSION_ID_MAX], id2[SHIM_SESSION_ID_MAX];
	char head[65];
	uint8_t b = 'x';
	char longtech[200];

	(void)state;
	make_cfg(&cfg, "state");
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_local_custody(r), 1);
	assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_IN, &b, 1, 0, 0),
			 SHIM_ESTATE);
	assert_int_equal(shim_recorder_end(r, "admin", 0, 0), SHIM_ESTATE);
	memset(longtech, 'a', sizeof(longtech) - 1);
	longtech[sizeof(longtech) - 1] = '\0';
	assert_int_equal(shim_recorder_begin(r, longtech, id), SHIM_EINVAL);
	assert_int_equal(shim_recorder_begin(r, "alice", id), 0);
	assert_int_equal(shim_recorder_begin(r, "bob", id2), SHIM_ESTATE);
	assert_int_equal(shim_recorder_traffic(r, 7, &b, 1, 0, 0),
			 SHIM_EINVAL);
	assert_int_equal(shim_recorder_meta(r, "break", NULL,
					    shim_linux_wall_ns(),
					    shim_linux_mono_ns()),
			 0);
	assert_int_equal(shim_recorder_end(r, "admin", shim_linux_wall_ns(),
					   shim_linux_mono_ns()),
			 0);
	shim_recorder_chain_head(r, head);
	assert_int_equal(strlen(head), 64);
	/* a new session after the first */
	assert_int_equal(shim_recorder_begin(r, "bob", id2), 0);
	assert_string_not_equal(id, id2);
	/* close ends the open session with its reason */
	shim_recorder_close(r, "shutdown");
	/* the newest session's chain head is known again after a restart */
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	{
		char again[65];

		shim_recorder_chain_head(r, again);
		assert_int_equal(strlen(again), 64);
		assert_string_not_equal(again, head);
	}
	shim_recorder_close(r, "shutdown");
	{
		uint64_t in, out;

		assert_int_equal(read_back(&cfg, id2, &in, &out),
				 SHIM_REC_COMPLETE);
	}
	shim_config_free(&cfg);
}

static int wait_gone(const char *path)
{
	int i;

	for (i = 0; i < 200; i++) {
		if (access(path, F_OK) != 0) {
			return 1;
		}
		usleep(10000);
	}
	return 0;
}

/* A wall clock 100 days ahead of the real one. */
static int64_t ahead_wall_ns(void *ctx)
{
	(void)ctx;
	return shim_linux_wall_ns() + 100LL * 86400 * 1000000000LL;
}

static char deleted_name[128];
static int64_t deleted_start;
static int deleted_count;

static void on_deleted(void *arg, const char *name, int64_t started_s)
{
	(void)arg;
	snprintf(deleted_name, sizeof(deleted_name), "%s", name);
	deleted_start = started_s;
	deleted_count++;
}

/* Starting once with the clock 100 days ahead deletes nothing: retention
 * goes by the trusted time only, and reports each deletion. */
static void test_retention_ignores_jumped_clock(void **state)
{
	struct shim_config cfg;
	struct shim_recorder *r;
	struct shim_port ahead = lp.port;
	char dir[256], recent[320], old[320], name[64];
	int64_t now = shim_linux_wall_ns() / 1000000000, t;
	time_t tt;
	struct tm tm;
	FILE *f;

	(void)state;
	ahead.clock.wall_ns = ahead_wall_ns;
	make_cfg(&cfg, "jump");
	cfg.retention_days = 30;
	snprintf(dir, sizeof(dir), "%s/sessions", cfg.storage_root);
	assert_int_equal(shim_mkdir_p(dir, 0700), 0);
	/* one recording a day old, one 40 days old */
	tt = (time_t)(now - 86400);
	gmtime_r(&tt, &tm);
	strftime(name, sizeof(name), "%Y%m%dT%H%M%SZ-aaaaaa.rec", &tm);
	snprintf(recent, sizeof(recent), "%s/%s", dir, name);
	tt = (time_t)(now - 40 * 86400);
	gmtime_r(&tt, &tm);
	strftime(name, sizeof(name), "%Y%m%dT%H%M%SZ-bbbbbb.rec", &tm);
	snprintf(old, sizeof(old), "%s/%s", dir, name);
	t = (int64_t)tt;
	f = fopen(recent, "wb");
	assert_non_null(f);
	fclose(f);
	f = fopen(old, "wb");
	assert_non_null(f);
	fclose(f);

	assert_int_equal(shim_recorder_open(&r, &cfg, &ahead, NULL, NULL), 0);
	shim_recorder_set_on_deleted(r, on_deleted, NULL);
	assert_int_equal(shim_recorder_can_start(r), 0);
	usleep(300000);
	/* the clock says 100 days later: both would be expired by it */
	assert_int_equal(access(recent, F_OK), 0);
	assert_int_equal(access(old, F_OK), 0);
	assert_int_equal(deleted_count, 0);
	/* 0 takes nothing away either */
	shim_recorder_set_trusted_time(r, 0);
	usleep(100000);
	assert_int_equal(access(old, F_OK), 0);
	/* the trusted time: only the 40-day-old one goes, reported */
	shim_recorder_set_trusted_time(r, now);
	assert_true(wait_gone(old));
	assert_int_equal(access(recent, F_OK), 0);
	assert_int_equal(deleted_count, 1);
	assert_string_equal(deleted_name, strrchr(old, '/') + 1);
	assert_true(deleted_start == t);
	shim_recorder_close(r, "shutdown");
	shim_config_free(&cfg);
}

/* The default reserve is far above the old 64 KiB floor: a filesystem with
 * less free than that refuses, an explicit small reserve is obeyed. */
static void test_default_reserve(void **state)
{
	struct shim_config cfg;
	struct shim_recorder *r;

	(void)state;
	make_cfg(&cfg, "reserve");
	assert_int_equal(cfg.min_free_explicit, 0);
	/* one 8 h session at 10 Gbaud each way cannot be reserved */
	cfg.tech_serial.baud = cfg.dev_serial.baud = 4000000000u;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_can_start(r), SHIM_ENOSPC);
	shim_recorder_close(r, "shutdown");
	cfg.tech_serial.baud = cfg.dev_serial.baud = 9600;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_can_start(r), 0);
	shim_recorder_close(r, "shutdown");
	/* asked explicitly for more than any disk has */
	cfg.min_free_explicit = 1;
	cfg.min_free_bytes = UINT64_MAX;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_can_start(r), SHIM_ENOSPC);
	shim_recorder_close(r, "shutdown");
	shim_config_free(&cfg);
}

static void test_budget_and_retention(void **state)
{
	struct shim_config cfg;
	struct shim_recorder *r;
	struct shim_recorder_status st;
	char id[SHIM_SESSION_ID_MAX], path[256];
	static uint8_t chunk[2000];
	FILE *f;

	(void)state;
	make_cfg(&cfg, "budget");
	cfg.max_bytes = 1500;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_can_start(r), 0);
	assert_int_equal(shim_recorder_begin(r, "alice", id), 0);
	assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_IN, chunk,
					       sizeof(chunk),
					       shim_linux_wall_ns(),
					       shim_linux_mono_ns()),
			 0);
	assert_int_equal(shim_recorder_end(r, "technician_disconnect",
					   shim_linux_wall_ns(),
					   shim_linux_mono_ns()),
			 0);
	assert_int_equal(shim_recorder_can_start(r), SHIM_ENOSPC);
	assert_int_equal(shim_recorder_begin(r, "bob", id), SHIM_ENOSPC);
	shim_recorder_close(r, "shutdown");

	/* an old recording is kept at open (no trusted time yet) and pruned
	 * by the writer once the daemon gives one */
	snprintf(path, sizeof(path), "%s/sessions/20000101T000000Z-aaaaaa.rec",
		 cfg.storage_root);
	f = fopen(path, "wb");
	assert_non_null(f);
	fclose(f);
	cfg.max_bytes = 0;
	cfg.retention_days = 30;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	usleep(200000);
	assert_int_equal(access(path, F_OK), 0);
	shim_recorder_set_trusted_time(r, shim_linux_wall_ns() / 1000000000);
	assert_true(wait_gone(path));
	shim_recorder_close(r, "shutdown");

	/* over budget because of an expired recording: the check that
	 * refuses a session prunes first */
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(chunk, 1, sizeof(chunk), f), sizeof(chunk));
	fclose(f);
	cfg.retention_days = 0;
	cfg.max_bytes = 1500 + sizeof(chunk);
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	/* the writer's own pass is over (retention off); status takes the
	 * recorder's lock after it */
	usleep(200000);
	shim_recorder_status(r, &st);
	assert_int_equal(access(path, F_OK), 0);
	cfg.retention_days = 30;
	/* without a trusted time the refusal stands and nothing goes */
	assert_int_equal(shim_recorder_can_start(r), SHIM_ENOSPC);
	assert_int_equal(access(path, F_OK), 0);
	shim_recorder_set_trusted_time(r, shim_linux_wall_ns() / 1000000000);
	assert_int_equal(shim_recorder_can_start(r), 0);
	assert_int_not_equal(access(path, F_OK), 0);
	shim_recorder_close(r, "shutdown");
	shim_config_free(&cfg);
}

static void test_recovery_at_open(void **state)
{
	struct shim_config cfg;
	struct shim_recorder *r;
	char id[SHIM_SESSION_ID_MAX], path[200], done[512];
	uint8_t b[100] = { 1 };
	uint64_t in, out;
	FILE *f;

	(void)state;
	make_cfg(&cfg, "recover");
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL),
			 0);
	assert_int_equal(shim_recorder_begin(r, "alice", id), 0);
	assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_IN, b, sizeof(b),
					       shim_linux_wall_ns(),
					       shim_linux_mono_ns()),
			 0);
	usleep(100000);
	/* keep the .part as a crash would leave it: copy it aside before
	 * the session ends normally, then put it back */
	snprintf(path, sizeof(path), "%s/sessions/%s.part", cfg.storage_root,
		 id);
	snprintf(done, sizeof(done), "cp %s %s.saved", path, path);
	assert_int_equal(system(done), 0);
	shim_recorder_close(r, "shutdown");
	snprintf(done, sizeof(done), "%s/sessions/%s.rec", cfg.storage_root,
		 id);
	assert_int_equal(unlink(done), 0);
	snprintf(done, sizeof(done), "mv %s.saved %s", path, path);
	assert_int_equal(system(done), 0);
	/* plus a stray file whose header never made it */
	snprintf(done, sizeof(done), "%s/sessions/20261124T000000Z-000000.part",
		 cfg.storage_root);
	f = fopen(done, "wb");
	assert_non_null(f);
	fwrite("SHIMREC", 1, 7, f);
	fclose(f);
	/* and an empty one: created, header not yet on disk at the cut */
	snprintf(done, sizeof(done), "%s/sessions/20261124T000001Z-000001.part",
		 cfg.storage_root);
	f = fopen(done, "wb");
	assert_non_null(f);
	fclose(f);
	rec_count = 0;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, on_recovered,
					    NULL),
			 0);
	assert_int_equal(rec_count, 1);
	/* both headerless files removed, neither reported as a session */
	assert_int_not_equal(access(done, F_OK), 0);
	snprintf(done, sizeof(done), "%s/sessions/20261124T000000Z-000000.part",
		 cfg.storage_root);
	assert_int_not_equal(access(done, F_OK), 0);
	assert_int_equal(read_back(&cfg, id, &in, &out), SHIM_REC_COMPLETE);
	assert_int_equal(in, sizeof(b));
	shim_recorder_close(r, "shutdown");
	shim_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backpressure_and_wakeup),
		cmocka_unit_test(test_group_commit_takes_late_bytes),
		cmocka_unit_test(test_state_rules),
		cmocka_unit_test(test_budget_and_retention),
		cmocka_unit_test(test_retention_ignores_jumped_clock),
		cmocka_unit_test(test_default_reserve),
		cmocka_unit_test(test_recovery_at_open),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
