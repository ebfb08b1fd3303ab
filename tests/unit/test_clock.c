/*
 * Clock trust: jumps while running, starts ahead of and behind the
 * persisted floor, operator and code confirmation, a floor that never
 * moves back, corrupt, truncated, unreadable and missing floors, and the
 * zero value, on a fake wall and monotonic clock and an in-memory store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "fakes.h"

#define T0 1800000000LL
#define BUILD 1700000000LL
#define NS 1000000000LL

struct ctx {
	struct fake_port fp;
	struct shim_clock clk;
	struct shim_clock_cfg cfg;
};

/* Wall clock at wall_s, monotonic clock at mono_s. */
static void set(struct ctx *c, int64_t wall_s, int64_t mono_s)
{
	c->fp.wall_ns = wall_s * NS;
	c->fp.mono_ns = mono_s * NS;
}

/* Let s seconds pass on both clocks. */
static void pass(struct ctx *c, int64_t s)
{
	c->fp.wall_ns += s * NS;
	c->fp.mono_ns += s * NS;
}

static int start(struct ctx *c)
{
	return shim_clock_init(&c->clk, &c->cfg, &c->fp.port);
}

/* A power cycle: the monotonic clock restarts near zero, the wall clock
 * reads wall_s. */
static int reboot(struct ctx *c, int64_t wall_s)
{
	set(c, wall_s, 5);
	return start(c);
}

static int64_t stored_floor(struct ctx *c)
{
	uint8_t *blob;
	size_t len;
	int64_t floor;

	blob = fake_store_get(&c->fp, SHIM_CLOCK_STATE_NAME, &len);
	assert_non_null(blob);
	assert_int_equal(shim_clock_decode(blob, len, &floor), 0);
	return floor / NS;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	fake_port_init(&c->fp, T0);
	shim_clock_cfg_default(&c->cfg);
	c->cfg.min_time = BUILD;
	set(c, T0, 100);
	assert_int_equal(start(c), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	fake_port_free(&c->fp);
	free(c);
	return 0;
}

static enum shim_clock_verdict check(struct ctx *c, struct shim_clock_report *r)
{
	return shim_clock_check(&c->clk, r);
}

/* ---- zero value and arguments --------------------------------------------- */

static void test_zero_value_is_an_error(void **state)
{
	struct shim_clock z;
	struct shim_clock_report r;
	int64_t now = 123;

	(void)state;
	memset(&z, 0, sizeof(z));
	assert_int_equal(shim_clock_check(&z, &r), SHIM_CLOCK_UNKNOWN);
	assert_int_equal(r.verdict, SHIM_CLOCK_UNKNOWN);
	assert_int_equal(r.reason, SHIM_CLOCK_WHY_UNSET);
	assert_int_equal(shim_clock_check_at(&z, T0, NULL), SHIM_CLOCK_UNKNOWN);
	assert_int_equal(shim_clock_peek(&z, T0), SHIM_CLOCK_UNKNOWN);
	assert_int_equal(shim_clock_trusted_now(&z, &now), SHIM_ECLOCK);
	assert_int_equal(now, 0);
	assert_int_equal(shim_clock_save(&z), SHIM_ECLOCK);
	assert_int_equal(shim_clock_save_at(&z, T0), SHIM_ECLOCK);
	assert_int_equal(shim_clock_confirm(&z, "admin"), SHIM_EINVAL);
	assert_int_equal(shim_clock_floor(&z), 0);
	assert_int_equal(shim_clock_check(NULL, NULL), SHIM_CLOCK_UNKNOWN);
	assert_string_equal(shim_clock_verdict_name(SHIM_CLOCK_UNKNOWN), "unknown");
}

static void test_bad_arguments_leave_it_unknown(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_cfg cfg = c->cfg;
	struct shim_port port = c->fp.port;

	cfg.max_jump = 0;
	assert_int_equal(shim_clock_init(&c->clk, &cfg, &c->fp.port), SHIM_EINVAL);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_UNKNOWN);
	port.clock.mono_ns = NULL;
	assert_int_equal(shim_clock_init(&c->clk, &c->cfg, &port), SHIM_EINVAL);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_UNKNOWN);
	assert_int_equal(shim_clock_init(&c->clk, NULL, &c->fp.port), SHIM_EINVAL);
	assert_int_equal(shim_clock_init(&c->clk, &c->cfg, NULL), SHIM_EINVAL);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_UNKNOWN);
}

/* ---- first start ------------------------------------------------------------ */

static void test_first_start_trusted_and_floor_saved(void **state)
{
	struct ctx *c = *state;
	int64_t now;

	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
	assert_int_equal(stored_floor(c), T0);
	assert_int_equal(shim_clock_floor(&c->clk), T0);
	pass(c, 30);
	assert_int_equal(shim_clock_trusted_now(&c->clk, &now), 0);
	assert_int_equal(now, T0 + 30);
}

static void test_first_start_before_build_date(void **state)
{
	struct ctx *c = *state;
	struct fake_port fp2;
	struct shim_clock_report r;

	fake_port_init(&fp2, 1000);
	fp2.mono_ns = 5 * NS;
	assert_int_equal(shim_clock_init(&c->clk, &c->cfg, &fp2.port), 0);
	assert_int_equal(shim_clock_check(&c->clk, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.reason, SHIM_CLOCK_WHY_BEFORE_BUILD);
	assert_null(fake_store_get(&fp2, SHIM_CLOCK_STATE_NAME, &(size_t){ 0 }));
	assert_int_equal(shim_clock_save(&c->clk), SHIM_ECLOCK);
	/* The clock is set (NTP): that is the first trusted time. */
	fp2.wall_ns = T0 * NS;
	assert_int_equal(shim_clock_check(&c->clk, &r), SHIM_CLOCK_TRUSTED);
	assert_non_null(fake_store_get(&fp2, SHIM_CLOCK_STATE_NAME, &(size_t){ 0 }));
	assert_int_equal(shim_clock_floor(&c->clk), T0);
	fake_port_free(&fp2);
}

/* ---- jumps while running ---------------------------------------------------- */

static void test_forward_jump_while_running(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;
	int64_t now;

	pass(c, 60);
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
	/* Someone sets the clock ten minutes ahead. */
	c->fp.wall_ns += 600 * NS;
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.reason, SHIM_CLOCK_WHY_JUMP);
	assert_int_equal(r.jumped, 1);
	assert_int_equal(r.wall, T0 + 660);
	assert_int_equal(r.expected, T0 + 60);
	/* Reported once, and it stays untrusted while away. */
	pass(c, 10);
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.jumped, 0);
	assert_int_equal(r.expected, T0 + 70);
	assert_int_equal(shim_clock_trusted_now(&c->clk, &now), SHIM_ECLOCK);
	assert_int_equal(shim_clock_save(&c->clk), SHIM_ECLOCK);
	assert_int_equal(stored_floor(c), T0);
	/* Set right again: trusted, recovery reported. */
	c->fp.wall_ns -= 600 * NS;
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
	assert_int_equal(r.recovered, 1);
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
	assert_int_equal(r.recovered, 0);
}

/* Asking for the trusted time does not swallow the jump report: whoever
 * checks next still hears of it, once. */
static void test_trusted_now_leaves_the_jump_to_report(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;
	int64_t now;

	pass(c, 60);
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
	c->fp.wall_ns += 600 * NS;
	assert_int_equal(shim_clock_trusted_now(&c->clk, &now), SHIM_ECLOCK);
	assert_int_equal(now, 0);
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.jumped, 1);
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.jumped, 0);
}

static void test_backward_jump_while_running(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;

	pass(c, 3600);
	c->fp.wall_ns -= 1800 * NS;
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.jumped, 1);
	assert_int_equal(r.wall, T0 + 1800);
	assert_int_equal(r.expected, T0 + 3600);
	/* A second jump after the first is still the same episode. */
	c->fp.wall_ns -= 60 * NS;
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.jumped, 0);
}

static void test_jump_bound_is_configurable(void **state)
{
	struct ctx *c = *state;

	/* Within the default bound: a correction, not a jump. */
	c->fp.wall_ns += 100 * NS;
	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
	c->fp.wall_ns -= 200 * NS;
	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
	c->fp.wall_ns += 100 * NS;
	c->cfg.max_jump = 30;
	assert_int_equal(start(c), 0);
	c->fp.wall_ns += 31 * NS;
	assert_int_equal(check(c, NULL), SHIM_CLOCK_UNTRUSTED);
}

static void test_jump_before_build_date_untrusted(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;

	c->fp.wall_ns = 0; /* RTC reset to the epoch */
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.jumped, 1);
}

static void test_creeping_clock_caught(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;
	int i, caught = 0;

	/* Moved 100 s ahead (under the bound) before every periodic save:
	 * the anchor follows only slowly, so the steps add up to a jump. */
	for (i = 0; i < 10 && !caught; i++) {
		pass(c, 60);
		c->fp.wall_ns += 100 * NS;
		if (check(c, &r) == SHIM_CLOCK_UNTRUSTED) {
			caught = 1;
			break;
		}
		assert_int_equal(shim_clock_save(&c->clk), 0);
	}
	assert_int_equal(caught, 1);
	assert_int_equal(r.reason, SHIM_CLOCK_WHY_JUMP);
	assert_true(stored_floor(c) < T0 + 60 * 10 + 10);
}

/* ---- the floor ---------------------------------------------------------------- */

static void test_floor_advances_and_never_goes_back(void **state)
{
	struct ctx *c = *state;

	pass(c, 600);
	assert_int_equal(shim_clock_save(&c->clk), 0);
	assert_int_equal(stored_floor(c), T0 + 600);
	/* NTP steps back 60 s (within the bound): still trusted, but the
	 * floor stays where it was. */
	c->fp.wall_ns -= 60 * NS;
	assert_int_equal(shim_clock_save(&c->clk), 0);
	assert_int_equal(stored_floor(c), T0 + 600);
	assert_int_equal(shim_clock_floor(&c->clk), T0 + 600);
	pass(c, 120);
	assert_int_equal(shim_clock_save(&c->clk), 0);
	assert_true(stored_floor(c) >= T0 + 600);
	/* A failed save reports it. */
	c->fp.store.fail_save = 1;
	assert_int_equal(shim_clock_save(&c->clk), SHIM_EIO);
	c->fp.store.fail_save = 0;
}

/* ---- start against the persisted floor -------------------------------------- */

static void test_start_behind_floor_untrusted(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;
	int64_t now;

	pass(c, 3600);
	assert_int_equal(shim_clock_save(&c->clk), 0);
	/* Set back an hour while off. */
	assert_int_equal(reboot(c, T0), 0);
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.reason, SHIM_CLOCK_WHY_SET_BACK);
	assert_int_equal(r.expected, T0 + 3600);
	assert_int_equal(shim_clock_trusted_now(&c->clk, &now), SHIM_ECLOCK);
	/* Saving does not fix it, and does not lower the floor. */
	assert_int_equal(shim_clock_save(&c->clk), SHIM_ECLOCK);
	assert_int_equal(stored_floor(c), T0 + 3600);
	/* Set right: trusted. */
	c->fp.wall_ns = (T0 + 3600 + 30) * NS;
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
}

static void test_start_slightly_behind_floor_trusted(void **state)
{
	struct ctx *c = *state;

	pass(c, 600);
	assert_int_equal(shim_clock_save(&c->clk), 0);
	assert_int_equal(reboot(c, T0 + 600 - 60), 0);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
}

static void test_start_ahead_of_floor_unconfirmed(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;
	int64_t now;

	/* Off for a day: indistinguishable from a clock moved forwards. */
	assert_int_equal(reboot(c, T0 + 86400), 0);
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNCONFIRMED);
	assert_int_equal(r.reason, SHIM_CLOCK_WHY_AHEAD);
	assert_int_equal(r.expected, T0);
	/* Not good enough for deletions, nor for raising the floor. */
	assert_int_equal(shim_clock_trusted_now(&c->clk, &now), SHIM_ECLOCK);
	assert_int_equal(shim_clock_save(&c->clk), SHIM_ECLOCK);
	assert_int_equal(stored_floor(c), T0);
	/* A code confirms it (the gate passes source "totp"). */
	assert_int_equal(shim_clock_confirm(&c->clk, "totp"), 0);
	assert_string_equal(shim_clock_source(&c->clk), "totp");
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
	assert_int_equal(stored_floor(c), T0 + 86400);
	assert_int_equal(shim_clock_trusted_now(&c->clk, &now), 0);
	assert_int_equal(now, T0 + 86400);
	/* Jumps are measured from the confirmed time. */
	c->fp.wall_ns += 3600 * NS;
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.jumped, 1);
}

static void test_start_before_build_date_with_floor(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;

	/* The RTC lost its battery. */
	assert_int_equal(reboot(c, 0), 0);
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.reason, SHIM_CLOCK_WHY_BEFORE_BUILD);
	assert_int_equal(shim_clock_confirm(&c->clk, "admin"), SHIM_ECLOCK);
	/* NTP sets it near the floor: trusted. */
	c->fp.wall_ns = (T0 + 10) * NS;
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
}

/* ---- operator confirmation ---------------------------------------------------- */

static void test_confirm_after_jump_reanchors(void **state)
{
	struct ctx *c = *state;
	struct shim_clock_report r;

	pass(c, 60);
	c->fp.wall_ns += 7200 * NS; /* a real correction, two hours */
	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(shim_clock_confirm(&c->clk, "admin"), 0);
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
	assert_int_equal(stored_floor(c), T0 + 60 + 7200);
	assert_string_equal(shim_clock_source(&c->clk), "admin");
	pass(c, 60);
	assert_int_equal(check(c, &r), SHIM_CLOCK_TRUSTED);
}

static void test_confirm_may_move_floor_back(void **state)
{
	struct ctx *c = *state;

	/* The floor was written by a clock that was wrong; an operator
	 * decides the current, earlier time is right. */
	pass(c, 86400);
	assert_int_equal(shim_clock_save(&c->clk), 0);
	assert_int_equal(reboot(c, T0 + 3600), 0);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(shim_clock_confirm(&c->clk, "admin"), 0);
	assert_int_equal(stored_floor(c), T0 + 3600);
	assert_int_equal(reboot(c, T0 + 3610), 0);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
}

static void test_confirm_source_is_bounded(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(shim_clock_confirm(&c->clk, "a-very-long-source-name-here"), 0);
	assert_int_equal(strlen(shim_clock_source(&c->clk)), SHIM_CLOCK_SOURCE_MAX);
	assert_int_equal(shim_clock_confirm(&c->clk, NULL), SHIM_EINVAL);
}

/* ---- a damaged or missing floor fails closed --------------------------------- */

static void expect_closed(struct ctx *c, enum shim_clock_reason why)
{
	struct shim_clock_report r;
	int64_t now;

	assert_int_equal(check(c, &r), SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.reason, why);
	assert_int_equal(shim_clock_trusted_now(&c->clk, &now), SHIM_ECLOCK);
	assert_int_equal(shim_clock_save(&c->clk), SHIM_ECLOCK);
	/* Time passing does not open it. */
	pass(c, 60);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_UNTRUSTED);
	/* An operator does. */
	assert_int_equal(shim_clock_confirm(&c->clk, "admin"), 0);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
}

static void test_corrupt_floor_fails_closed(void **state)
{
	struct ctx *c = *state;
	uint8_t *blob;
	size_t len, i;

	for (i = 0; i < SHIM_CLOCK_BLOB_LEN; i++) {
		blob = fake_store_get(&c->fp, SHIM_CLOCK_STATE_NAME, &len);
		assert_int_equal(len, SHIM_CLOCK_BLOB_LEN);
		blob[i] ^= 0x01;
		assert_int_equal(reboot(c, T0), SHIM_ECORRUPT);
		expect_closed(c, SHIM_CLOCK_WHY_CORRUPT);
	}
}

static void test_truncated_or_long_floor_fails_closed(void **state)
{
	struct ctx *c = *state;
	uint8_t good[SHIM_CLOCK_BLOB_LEN + 1];
	size_t len = 0, cut;

	uint8_t *blob = fake_store_get(&c->fp, SHIM_CLOCK_STATE_NAME, &len);

	assert_non_null(blob);
	assert_int_equal(len, SHIM_CLOCK_BLOB_LEN);
	memcpy(good, blob, len);
	good[SHIM_CLOCK_BLOB_LEN] = 0;
	for (cut = 0; cut <= SHIM_CLOCK_BLOB_LEN + 1; cut++) {
		if (cut == SHIM_CLOCK_BLOB_LEN) {
			continue;
		}
		assert_int_equal(c->fp.port.store.save(c->fp.port.store.ctx,
						       SHIM_CLOCK_STATE_NAME,
						       good, cut), 0);
		assert_int_equal(reboot(c, T0), SHIM_ECORRUPT);
		expect_closed(c, SHIM_CLOCK_WHY_CORRUPT);
	}
	/* Far longer than any floor: the store reports ENOSPC. */
	{
		uint8_t big[256] = { 0 };

		assert_int_equal(c->fp.port.store.save(c->fp.port.store.ctx,
						       SHIM_CLOCK_STATE_NAME,
						       big, sizeof(big)), 0);
		assert_int_equal(reboot(c, T0), SHIM_ECORRUPT);
		expect_closed(c, SHIM_CLOCK_WHY_CORRUPT);
	}
}

static void test_unreadable_floor_fails_closed(void **state)
{
	struct ctx *c = *state;

	c->fp.store.fail_load = 1;
	assert_int_equal(reboot(c, T0), SHIM_EIO);
	c->fp.store.fail_load = 0;
	expect_closed(c, SHIM_CLOCK_WHY_UNREADABLE);
}

static void delete_floor(struct ctx *c)
{
	int i;

	for (i = 0; i < FAKE_STORE_SLOTS; i++) {
		if (c->fp.store.blobs[i].data != NULL &&
		    strcmp(c->fp.store.blobs[i].name, SHIM_CLOCK_STATE_NAME) == 0) {
			free(c->fp.store.blobs[i].data);
			c->fp.store.blobs[i].data = NULL;
		}
	}
}

static void test_missing_floor_when_required_fails_closed(void **state)
{
	struct ctx *c = *state;

	pass(c, 3600);
	assert_int_equal(shim_clock_save(&c->clk), 0);
	delete_floor(c);
	c->cfg.state_required = 1;
	/* Deleted while stopped, and the clock set back: not a first start. */
	assert_int_equal(reboot(c, T0), SHIM_ENOENT);
	assert_null(fake_store_get(&c->fp, SHIM_CLOCK_STATE_NAME, &(size_t){ 0 }));
	expect_closed(c, SHIM_CLOCK_WHY_MISSING);
	assert_non_null(fake_store_get(&c->fp, SHIM_CLOCK_STATE_NAME, &(size_t){ 0 }));
}

static void test_missing_floor_on_a_new_unit_is_first_start(void **state)
{
	struct ctx *c = *state;

	delete_floor(c);
	assert_int_equal(reboot(c, T0 + 10), 0);
	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
	assert_int_equal(stored_floor(c), T0 + 10);
}

static void test_unwritable_store_at_first_start(void **state)
{
	struct ctx *c = *state;

	delete_floor(c);
	c->fp.store.fail_save = 1;
	assert_int_equal(reboot(c, T0), SHIM_EIO);
	c->fp.store.fail_save = 0;
	/* Trusted in memory; the next save makes the floor durable. */
	assert_int_equal(check(c, NULL), SHIM_CLOCK_TRUSTED);
	assert_int_equal(shim_clock_save(&c->clk), 0);
	assert_int_equal(stored_floor(c), T0);
}

/* ---- the blob parser ------------------------------------------------------------ */

static void test_decode_rejects_bad_values(void **state)
{
	uint8_t b[SHIM_CLOCK_BLOB_LEN];
	int64_t f = 99;

	(void)state;
	shim_clock_encode(T0 * NS, b);
	assert_int_equal(shim_clock_decode(b, sizeof(b), &f), 0);
	assert_int_equal(f, T0 * NS);
	/* A zero or negative floor, even with a good checksum. */
	shim_clock_encode(0, b);
	assert_int_equal(shim_clock_decode(b, sizeof(b), &f), SHIM_ECORRUPT);
	assert_int_equal(f, 0);
	shim_clock_encode(-5, b);
	assert_int_equal(shim_clock_decode(b, sizeof(b), &f), SHIM_ECORRUPT);
	shim_clock_encode(INT64_MAX, b);
	assert_int_equal(shim_clock_decode(b, sizeof(b), &f), SHIM_ECORRUPT);
	assert_int_equal(shim_clock_decode(NULL, 0, &f), SHIM_ECORRUPT);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_zero_value_is_an_error),
		T(test_bad_arguments_leave_it_unknown),
		T(test_first_start_trusted_and_floor_saved),
		T(test_first_start_before_build_date),
		T(test_forward_jump_while_running),
		T(test_backward_jump_while_running),
		T(test_jump_bound_is_configurable),
		T(test_jump_before_build_date_untrusted),
		T(test_creeping_clock_caught),
		T(test_floor_advances_and_never_goes_back),
		T(test_trusted_now_leaves_the_jump_to_report),
		T(test_start_behind_floor_untrusted),
		T(test_start_slightly_behind_floor_trusted),
		T(test_start_ahead_of_floor_unconfirmed),
		T(test_start_before_build_date_with_floor),
		T(test_confirm_after_jump_reanchors),
		T(test_confirm_may_move_floor_back),
		T(test_confirm_source_is_bounded),
		T(test_corrupt_floor_fails_closed),
		T(test_truncated_or_long_floor_fails_closed),
		T(test_unreadable_floor_fails_closed),
		T(test_missing_floor_when_required_fails_closed),
		T(test_missing_floor_on_a_new_unit_is_first_start),
		T(test_unwritable_store_at_first_start),
		T(test_decode_rejects_bad_values),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
