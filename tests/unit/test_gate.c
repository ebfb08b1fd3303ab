/*
 * The TOTP gate: every behaviour of the prototype's gate, and ours
 * (durable replay marks, clock checks, corrupt state, shim-wide rate
 * limit), on a fake clock and an in-memory store with failure injection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base32.h"
#include "fakes.h"
#include "gate.h"
#include "otp.h"

#define T0 1800000000LL /* a step boundary: 1800000000 / 30 = 60000000 */
#define NTECH 3

struct ctx {
	struct fake_port fp;
	struct shim_technician techs[NTECH];
	struct shim_gate gate;
	struct shim_gate_cfg cfg;
	uint8_t *scratch;
	size_t scratch_cap;
};

static void set_tech(struct shim_technician *t, const char *id, const char *b32)
{
	size_t n;

	memset(t, 0, sizeof(*t));
	strcpy(t->id, id);
	assert_int_equal(shim_base32_decode(b32, strlen(b32), t->secret,
					    sizeof(t->secret), &n), 0);
	t->secret_len = (uint8_t)n;
}

static void load_techs(struct ctx *c)
{
	set_tech(&c->techs[0], "alice@example.org", "JBSWY3DPEHPK3PXP");
	set_tech(&c->techs[1], "bob@example.org", "JFAVAU2GMUKDOMRX");
	set_tech(&c->techs[2], "carol", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

static int start(struct ctx *c)
{
	load_techs(c);
	return shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH, &c->fp.port,
			      c->scratch, c->scratch_cap);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	fake_port_init(&c->fp, T0);
	shim_gate_cfg_default(&c->cfg);
	c->cfg.min_time = 1700000000LL;
	c->scratch_cap = shim_gate_scratch_size(NTECH);
	c->scratch = malloc(c->scratch_cap);
	assert_int_equal(start(c), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	shim_gate_wipe(&c->gate);
	fake_port_free(&c->fp);
	free(c->scratch);
	free(c);
	return 0;
}

/* Restart: a new gate over the same store, as after a reboot. */
static void restart(struct ctx *c)
{
	shim_gate_wipe(&c->gate);
	assert_int_equal(start(c), 0);
}

static void code_at(struct ctx *c, int tech, int64_t t, char out[9])
{
	uint32_t code;

	assert_int_equal(shim_totp(&c->fp.port.crypto, c->cfg.md,
				   c->techs[tech].secret, c->techs[tech].secret_len,
				   t, c->cfg.period, c->cfg.digits, &code), 0);
	shim_otp_format(code, c->cfg.digits, out);
}

static enum shim_auth_outcome try(struct ctx *c, const char *id,
				  const char *code, int64_t now,
				  struct shim_auth_result *res)
{
	struct shim_auth_result tmp;

	if (res == NULL) {
		res = &tmp;
	}
	assert_int_equal(shim_gate_verify(&c->gate, id, strlen(id), code,
					  strlen(code), now, res), 0);
	return res->outcome;
}

static void test_valid_code(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	char code[9];

	code_at(c, 0, T0 + 5, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 5, &r), SHIM_AUTH_OK);
	assert_int_equal(r.tech, 0);
	assert_int_equal(r.drift, 0);
}

static void test_unknown_user(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "mallory", code, T0, NULL), SHIM_AUTH_BAD_USER);
}

static void test_bad_code(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0, code);
	code[0] = code[0] == '9' ? '0' : (char)(code[0] + 1);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL),
			 SHIM_AUTH_BAD_CODE);
	assert_int_equal(try(c, "alice@example.org", "12345", T0, NULL),
			 SHIM_AUTH_BAD_CODE);
	assert_int_equal(try(c, "alice@example.org", "abcdef", T0, NULL),
			 SHIM_AUTH_BAD_CODE);
}

static void test_one_step_each_way_accepted_with_drift(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	char code[9];

	code_at(c, 0, T0 - 30, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, &r), SHIM_AUTH_OK);
	assert_int_equal(r.drift, -1);
	code_at(c, 1, T0 + 30, code);
	assert_int_equal(try(c, "bob@example.org", code, T0, &r), SHIM_AUTH_OK);
	assert_int_equal(r.drift, 1);
}

static void test_two_steps_refused(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0 - 60, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL),
			 SHIM_AUTH_BAD_CODE);
	code_at(c, 0, T0 + 60, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL),
			 SHIM_AUTH_BAD_CODE);
}

static void test_same_period_replay_refused(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 1, NULL), SHIM_AUTH_OK);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 2, NULL),
			 SHIM_AUTH_REPLAY);
}

static void test_earlier_step_after_later_refused(void **state)
{
	struct ctx *c = *state;
	char late[9], early[9];

	code_at(c, 0, T0 + 30, late);
	code_at(c, 0, T0, early);
	assert_int_equal(try(c, "alice@example.org", late, T0 + 10, NULL), SHIM_AUTH_OK);
	/* The earlier code is still inside the window, but below the mark. */
	assert_int_equal(try(c, "alice@example.org", early, T0 + 20, NULL),
			 SHIM_AUTH_REPLAY);
}

static void test_next_period_accepted(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_OK);
	code_at(c, 0, T0 + 30, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 30, NULL), SHIM_AUTH_OK);
}

static void test_replay_refused_after_restart(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_OK);
	restart(c);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 3, NULL),
			 SHIM_AUTH_REPLAY);
}

static void test_replay_refused_with_clock_set_back(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0 + 30, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 30, NULL), SHIM_AUTH_OK);
	restart(c);
	/* The clock goes back by one step: the old code is "current" again,
	 * and within the allowed slack, but the durable mark refuses it. */
	assert_int_equal(try(c, "alice@example.org", code, T0 + 5, NULL),
			 SHIM_AUTH_REPLAY);
}

static void test_clock_far_behind_persisted_time_refused(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 1, T0 + 3600, code);
	assert_int_equal(try(c, "bob@example.org", code, T0 + 3600, NULL), SHIM_AUTH_OK);
	restart(c);
	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_CLOCK);
	assert_int_equal(shim_gate_clock_check(&c->gate, T0), SHIM_ECLOCK);
	assert_int_equal(shim_gate_clock_check(&c->gate, T0 + 3600), 0);
}

static void test_clock_before_build_date_refused(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, 1000, code);
	assert_int_equal(try(c, "alice@example.org", code, 1000, NULL), SHIM_AUTH_CLOCK);
	/* Unset clocks (the epoch) are refused too. */
	assert_int_equal(try(c, "alice@example.org", code, 0, NULL), SHIM_AUTH_CLOCK);
}

static void test_lockout_after_n_failures(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	unsigned i;

	for (i = 1; i < c->cfg.max_failures; i++) {
		assert_int_equal(try(c, "alice@example.org", "000000", T0 + i, &r),
				 SHIM_AUTH_BAD_CODE);
		assert_int_equal(r.locked_now, 0);
	}
	assert_int_equal(try(c, "alice@example.org", "000000", T0 + i, &r),
			 SHIM_AUTH_BAD_CODE);
	assert_int_equal(r.locked_now, 1);
	assert_int_equal(r.failures, c->cfg.max_failures);
	assert_int_equal(try(c, "alice@example.org", "000000", T0 + i, &r),
			 SHIM_AUTH_LOCKED_OUT);
	assert_true(r.retry_after > 0 && r.retry_after <= c->cfg.lockout_seconds);
	assert_int_equal(shim_gate_lockouts(&c->gate, T0 + i), 1);
}

static void lock(struct ctx *c, const char *id, int64_t t)
{
	unsigned i;

	for (i = 0; i < c->cfg.max_failures; i++) {
		try(c, id, "000000", t, NULL);
	}
}

static void test_lockout_refuses_valid_code(void **state)
{
	struct ctx *c = *state;
	char code[9];

	lock(c, "alice@example.org", T0);
	code_at(c, 0, T0 + 1, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 1, NULL),
			 SHIM_AUTH_LOCKED_OUT);
}

static void test_lockout_expires(void **state)
{
	struct ctx *c = *state;
	int64_t later = T0 + c->cfg.lockout_seconds + 30;
	char code[9];

	lock(c, "alice@example.org", T0);
	code_at(c, 0, later, code);
	assert_int_equal(try(c, "alice@example.org", code, later, NULL), SHIM_AUTH_OK);
}

static void test_lockout_survives_restart(void **state)
{
	struct ctx *c = *state;
	char code[9];

	lock(c, "alice@example.org", T0);
	restart(c);
	code_at(c, 0, T0 + 2, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 2, NULL),
			 SHIM_AUTH_LOCKED_OUT);
}

static void test_admin_reset(void **state)
{
	struct ctx *c = *state;
	char code[9];

	lock(c, "alice@example.org", T0);
	assert_int_equal(shim_gate_reset_lockout(&c->gate, "alice@example.org", T0), 0);
	assert_int_equal(shim_gate_reset_lockout(&c->gate, "nobody", T0), SHIM_ENOENT);
	code_at(c, 0, T0 + 1, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 1, NULL), SHIM_AUTH_OK);
}

static void test_lockout_of_one_leaves_others(void **state)
{
	struct ctx *c = *state;
	char code[9];

	lock(c, "alice@example.org", T0);
	code_at(c, 1, T0 + 1, code);
	assert_int_equal(try(c, "bob@example.org", code, T0 + 1, NULL), SHIM_AUTH_OK);
}

static void test_unknown_id_locked_out_too(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;

	lock(c, "mallory", T0);
	assert_int_equal(try(c, "mallory", "123456", T0 + 1, &r), SHIM_AUTH_LOCKED_OUT);
}

static void test_rate_limit_across_ids(void **state)
{
	struct ctx *c = *state;
	char id[32], code[9];
	unsigned i;

	/* Spraying many IDs, each below its own lockout threshold... */
	for (i = 0; i < c->cfg.rate_failures; i++) {
		snprintf(id, sizeof(id), "spray%u", i);
		assert_int_equal(try(c, id, "000000", T0 + 1, NULL), SHIM_AUTH_BAD_USER);
	}
	/* ...trips the shim-wide limit, which refuses even a valid code. */
	code_at(c, 0, T0 + 2, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 2, NULL),
			 SHIM_AUTH_RATE_LIMITED);
	/* It lifts once the window has passed. */
	code_at(c, 0, T0 + 2 + c->cfg.rate_seconds, code);
	assert_int_equal(try(c, "alice@example.org", code,
			     T0 + 2 + c->cfg.rate_seconds, NULL), SHIM_AUTH_OK);
}

static void test_success_needs_durable_mark(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0, code);
	c->fp.store.fail_save = 1;
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_STATE);
	c->fp.store.fail_save = 0;
	/* Nothing was marked, so the same code now succeeds once. */
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_OK);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_REPLAY);
}

static void test_corrupt_state_fails_closed(void **state)
{
	struct ctx *c = *state;
	uint8_t *blob;
	size_t len;
	char code[9];

	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_OK);
	blob = fake_store_get(&c->fp, SHIM_GATE_STATE_NAME, &len);
	assert_non_null(blob);
	blob[len / 2] ^= 0x40;
	shim_gate_wipe(&c->gate);
	load_techs(c);
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&c->fp.port, c->scratch, c->scratch_cap),
			 SHIM_ECORRUPT);
	code_at(c, 1, T0 + 30, code);
	assert_int_equal(try(c, "bob@example.org", code, T0 + 30, NULL), SHIM_AUTH_STATE);
	/* An operator resets the state: codes up to now stay refused. */
	assert_int_equal(shim_gate_reset_state(&c->gate, T0 + 30), 0);
	assert_int_equal(try(c, "bob@example.org", code, T0 + 30, NULL), SHIM_AUTH_REPLAY);
	code_at(c, 1, T0 + 90, code);
	assert_int_equal(try(c, "bob@example.org", code, T0 + 90, NULL), SHIM_AUTH_OK);
}

static void test_truncated_state_fails_closed(void **state)
{
	struct ctx *c = *state;
	uint8_t *blob;
	size_t len;
	size_t cut;

	lock(c, "alice@example.org", T0);
	blob = fake_store_get(&c->fp, SHIM_GATE_STATE_NAME, &len);
	for (cut = 0; cut < len; cut += 7) {
		uint8_t *copy = malloc(len);

		memcpy(copy, blob, len);
		assert_int_equal(c->fp.port.store.save(c->fp.port.store.ctx,
						       SHIM_GATE_STATE_NAME, copy, cut), 0);
		shim_gate_wipe(&c->gate);
		load_techs(c);
		assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
						&c->fp.port, c->scratch,
						c->scratch_cap), SHIM_ECORRUPT);
		blob = copy;
		c->fp.store.fail_save = 0;
		assert_int_equal(c->fp.port.store.save(c->fp.port.store.ctx,
						       SHIM_GATE_STATE_NAME, copy, len), 0);
		blob = fake_store_get(&c->fp, SHIM_GATE_STATE_NAME, &len);
		free(copy);
	}
}

static void test_unreadable_state_fails_closed(void **state)
{
	struct ctx *c = *state;
	char code[9];

	c->fp.store.fail_load = 1;
	shim_gate_wipe(&c->gate);
	load_techs(c);
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&c->fp.port, c->scratch, c->scratch_cap),
			 SHIM_EIO);
	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_STATE);
}

static void test_unwritable_store_at_first_start(void **state)
{
	struct ctx *c = *state;
	struct fake_port fp2;

	fake_port_init(&fp2, T0);
	fp2.store.fail_save = 1;
	shim_gate_wipe(&c->gate);
	load_techs(c);
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&fp2.port, c->scratch, c->scratch_cap),
			 SHIM_EIO);
	fake_port_free(&fp2);
}

static void test_verify_line_parsing(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	char line[64], code[9];

	code_at(c, 0, T0, code);
	snprintf(line, sizeof(line), "  alice@example.org \t %s  ", code);
	assert_int_equal(shim_gate_verify_line(&c->gate, line, strlen(line), T0, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_OK);
	assert_int_equal(shim_gate_verify_line(&c->gate, "alice", 5, T0, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_MALFORMED);
	assert_int_equal(shim_gate_verify_line(&c->gate, "a b c", 5, T0, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_MALFORMED);
	assert_int_equal(shim_gate_verify_line(&c->gate, "", 0, T0, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_MALFORMED);
	assert_int_equal(shim_gate_verify_line(&c->gate, "al\x01ice 123456", 12, T0, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_MALFORMED);
}

static void test_generated_secret_round_trip(void **state)
{
	struct ctx *c = *state;
	uint8_t secret[20], back[20];
	char b32[40];
	size_t n;

	assert_int_equal(c->fp.port.rng.fill(NULL, secret, sizeof(secret)), 0);
	assert_int_equal(shim_base32_encode(secret, sizeof(secret), b32, sizeof(b32)), 0);
	assert_int_equal(strlen(b32), 32);
	assert_int_equal(shim_base32_decode(b32, strlen(b32), back, sizeof(back), &n), 0);
	assert_int_equal(n, 20);
	assert_memory_equal(secret, back, 20);
}

static void test_wipe_clears_secrets(void **state)
{
	struct ctx *c = *state;
	uint8_t zero[SHIM_SECRET_MAX] = { 0 };

	shim_gate_wipe(&c->gate);
	assert_memory_equal(c->techs[0].secret, zero, SHIM_SECRET_MAX);
	assert_int_equal(c->techs[0].secret_len, 0);
	assert_int_equal(start(c), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_valid_code),
		T(test_unknown_user),
		T(test_bad_code),
		T(test_one_step_each_way_accepted_with_drift),
		T(test_two_steps_refused),
		T(test_same_period_replay_refused),
		T(test_earlier_step_after_later_refused),
		T(test_next_period_accepted),
		T(test_replay_refused_after_restart),
		T(test_replay_refused_with_clock_set_back),
		T(test_clock_far_behind_persisted_time_refused),
		T(test_clock_before_build_date_refused),
		T(test_lockout_after_n_failures),
		T(test_lockout_refuses_valid_code),
		T(test_lockout_expires),
		T(test_lockout_survives_restart),
		T(test_admin_reset),
		T(test_lockout_of_one_leaves_others),
		T(test_unknown_id_locked_out_too),
		T(test_rate_limit_across_ids),
		T(test_success_needs_durable_mark),
		T(test_corrupt_state_fails_closed),
		T(test_truncated_state_fails_closed),
		T(test_unreadable_state_fails_closed),
		T(test_unwritable_store_at_first_start),
		T(test_verify_line_parsing),
		T(test_generated_secret_round_trip),
		T(test_wipe_clears_secrets),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
