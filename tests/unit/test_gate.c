/*
 * The TOTP gate: every behaviour of the prototype's gate, and ours
 * (durable replay marks, clock trust, corrupt and missing state, a
 * shim-wide rate limit that survives restarts, lockouts that an ID spray
 * cannot turn against enrolled technicians), on a fake clock and an
 * in-memory store with failure injection.
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
#include "clock.h"
#include "fakes.h"
#include "gate.h"
#include "otp.h"
#include "util.h"

#define T0 1800000000LL /* a step boundary: 1800000000 / 30 = 60000000 */
#define NTECH 3

struct ctx {
	struct fake_port fp;
	struct shim_technician techs[NTECH];
	struct shim_gate gate;
	struct shim_gate_cfg cfg;
	struct shim_clock clock;
	struct shim_clock_cfg ccfg;
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

/* Starts the clock (its result is checked by the clock's own tests)
 * and the gate over the current store. */
static int start(struct ctx *c)
{
	load_techs(c);
	c->ccfg.state_required = c->cfg.state_required;
	(void)shim_clock_init(&c->clock, &c->ccfg, &c->fp.port);
	return shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH, &c->fp.port,
			      &c->clock, c->scratch, c->scratch_cap);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	fake_port_init(&c->fp, T0);
	shim_gate_cfg_default(&c->cfg);
	shim_clock_cfg_default(&c->ccfg);
	c->ccfg.min_time = 1700000000LL;
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

/* A reboot whose wall clock reads t at start. */
static void restart_at(struct ctx *c, int64_t t)
{
	fake_port_set_time(&c->fp, t);
	restart(c);
}

static void store_delete(struct fake_port *fp, const char *name)
{
	int i;

	for (i = 0; i < FAKE_STORE_SLOTS; i++) {
		if (fp->store.blobs[i].data != NULL &&
		    strcmp(fp->store.blobs[i].name, name) == 0) {
			free(fp->store.blobs[i].data);
			fp->store.blobs[i].data = NULL;
			fp->store.blobs[i].len = 0;
		}
	}
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
	/* The wall clock reads now, and the monotonic clock went with it:
	 * no jump, unless a test moves one of them on its own. */
	fake_port_set_time(&c->fp, now);
	assert_int_equal(shim_gate_verify(&c->gate, id, strlen(id), code,
					  strlen(code), now, res), 0);
	if (res->floor_due) {
		/* what the controller does once the success line is out */
		assert_int_equal(shim_gate_note_time(&c->gate, now), 0);
	}
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
	/* The clock is set back an hour while the shim is off. */
	restart_at(c, T0);
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
					&c->fp.port, &c->clock, c->scratch,
					c->scratch_cap),
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
						&c->fp.port, &c->clock, c->scratch,
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
					&c->fp.port, &c->clock, c->scratch,
					c->scratch_cap),
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
					&fp2.port, &c->clock, c->scratch,
					c->scratch_cap),
			 SHIM_EIO);
	fake_port_free(&fp2);
}

/* ---- missing state (item: a deleted state file is no fresh start) ---- */

static void test_missing_state_is_fresh_start_on_a_new_unit(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_OK);
	store_delete(&c->fp, SHIM_GATE_STATE_NAME);
	/* Factory-fresh (state not required): the marks are gone with the
	 * file, so the same code is accepted once more. This is why the
	 * daemon sets state_required on every unit that has started. */
	restart(c);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 1, NULL), SHIM_AUTH_OK);
	assert_non_null(fake_store_get(&c->fp, SHIM_GATE_STATE_NAME, &(size_t){ 0 }));
}

static void test_missing_state_fails_closed_when_required(void **state)
{
	struct ctx *c = *state;
	char code[9], bob[9];

	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_OK);
	store_delete(&c->fp, SHIM_GATE_STATE_NAME);
	c->cfg.state_required = 1;
	shim_gate_wipe(&c->gate);
	load_techs(c);
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&c->fp.port, &c->clock, c->scratch,
					c->scratch_cap), SHIM_ENOENT);
	/* Nothing was written: the loss stays visible to the next start. */
	assert_null(fake_store_get(&c->fp, SHIM_GATE_STATE_NAME, &(size_t){ 0 }));
	/* Every code is refused, the used one and a fresh one. */
	assert_int_equal(try(c, "alice@example.org", code, T0 + 1, NULL), SHIM_AUTH_STATE);
	code_at(c, 1, T0 + 1, bob);
	assert_int_equal(try(c, "bob@example.org", bob, T0 + 1, NULL), SHIM_AUTH_STATE);
	/* An operator resets: every step up to now counts as used. */
	assert_int_equal(shim_gate_reset_state(&c->gate, T0 + 1), 0);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 1, NULL), SHIM_AUTH_REPLAY);
	assert_int_equal(try(c, "bob@example.org", bob, T0 + 1, NULL), SHIM_AUTH_REPLAY);
	code_at(c, 1, T0 + 61, bob);
	assert_int_equal(try(c, "bob@example.org", bob, T0 + 61, NULL), SHIM_AUTH_OK);
	/* And the state exists again: the next start is a normal one. */
	restart(c);
	assert_int_equal(try(c, "bob@example.org", bob, T0 + 62, NULL), SHIM_AUTH_REPLAY);
}

static void test_reset_state_uses_the_clock_floor(void **state)
{
	struct ctx *c = *state;
	char code[9];

	code_at(c, 0, T0 + 3600, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 3600, NULL), SHIM_AUTH_OK);
	/* An operator resets with a clock an hour behind: the marks still
	 * start from the floor, so the code used an hour "later" stays used. */
	assert_int_equal(shim_gate_reset_state(&c->gate, T0), 0);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 3600, NULL),
			 SHIM_AUTH_REPLAY);
}

/* ---- the rate limit survives a restart -------------------------------- */

static void test_rate_limit_survives_restart(void **state)
{
	struct ctx *c = *state;
	char id[32], code[9];
	unsigned i;

	for (i = 0; i < c->cfg.rate_failures; i++) {
		snprintf(id, sizeof(id), "spray%u", i);
		assert_int_equal(try(c, id, "000000", T0 + 1, NULL), SHIM_AUTH_BAD_USER);
	}
	/* A power cycle does not give fresh guesses. */
	restart_at(c, T0 + 2);
	code_at(c, 0, T0 + 2, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 2, NULL),
			 SHIM_AUTH_RATE_LIMITED);
	restart_at(c, T0 + 3);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 3, NULL),
			 SHIM_AUTH_RATE_LIMITED);
	/* The window still ends on time. */
	code_at(c, 0, T0 + 2 + c->cfg.rate_seconds, code);
	assert_int_equal(try(c, "alice@example.org", code,
			     T0 + 2 + c->cfg.rate_seconds, NULL), SHIM_AUTH_OK);
}

static void test_rate_limit_from_malformed_lines_survives_restart(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	char code[9];
	unsigned i;

	fake_port_set_time(&c->fp, T0 + 1);
	for (i = 0; i < c->cfg.rate_failures; i++) {
		assert_int_equal(shim_gate_verify_line(&c->gate, "", 0, T0 + 1, &r), 0);
	}
	restart_at(c, T0 + 2);
	code_at(c, 0, T0 + 2, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 2, NULL),
			 SHIM_AUTH_RATE_LIMITED);
}

static void test_rate_limit_from_a_wrong_clock_does_not_close_the_shim(void **state)
{
	struct ctx *c = *state;
	char id[32], code[9];
	unsigned i;

	/* Started with the clock a day ahead (unconfirmed), sprayed... */
	restart_at(c, T0 + 86400);
	for (i = 0; i < c->cfg.rate_failures; i++) {
		snprintf(id, sizeof(id), "spray%u", i);
		assert_int_equal(try(c, id, "000000", T0 + 86400, NULL), SHIM_AUTH_BAD_USER);
	}
	code_at(c, 0, T0 + 86400, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 86400, NULL),
			 SHIM_AUTH_RATE_LIMITED);
	/* ...then the clock is set right: those failures do not hold the
	 * shim closed for a day. */
	restart_at(c, T0 + 60);
	assert_int_equal(shim_clock_peek(&c->clock, T0 + 60), SHIM_CLOCK_TRUSTED);
	code_at(c, 0, T0 + 60, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 60, NULL), SHIM_AUTH_OK);
}

static void put_id(uint8_t **p, const char *id)
{
	size_t n = strlen(id);

	*(*p)++ = (uint8_t)n;
	memcpy(*p, id, n);
	*p += n;
}

static void put64(uint8_t **p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		*(*p)++ = (uint8_t)(v >> (i * 8));
	}
}

static void put32(uint8_t **p, uint32_t v)
{
	int i;

	for (i = 3; i >= 0; i--) {
		*(*p)++ = (uint8_t)(v >> (i * 8));
	}
}

static void test_version_1_state_still_reads(void **state)
{
	struct ctx *c = *state;
	uint8_t blob[512], *p = blob;
	char code[9];
	uint64_t step = (uint64_t)(T0 / 30);

	/* A state written by the previous version: no rate section. */
	memcpy(p, "SHGS\x01\x00\x00\x00", 8);
	p += 8;
	put64(&p, (uint64_t)T0);
	put32(&p, 1);
	put_id(&p, "alice@example.org");
	put64(&p, step);
	*p++ = 0;
	put64(&p, (uint64_t)T0);
	put32(&p, 2);
	put_id(&p, "mallory");
	put32(&p, 5);
	put64(&p, (uint64_t)T0);
	put64(&p, (uint64_t)T0 + 300);
	put_id(&p, "bob@example.org");
	put32(&p, 5);
	put64(&p, (uint64_t)T0);
	put64(&p, (uint64_t)T0 + 300);
	put32(&p, shim_crc32(0, blob, (size_t)(p - blob)));
	assert_int_equal(c->fp.port.store.save(c->fp.port.store.ctx,
					       SHIM_GATE_STATE_NAME, blob,
					       (size_t)(p - blob)), 0);
	restart_at(c, T0 + 5);
	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0 + 5, NULL), SHIM_AUTH_REPLAY);
	assert_int_equal(try(c, "mallory", "123456", T0 + 5, NULL), SHIM_AUTH_LOCKED_OUT);
	code_at(c, 1, T0 + 5, code);
	assert_int_equal(try(c, "bob@example.org", code, T0 + 5, NULL), SHIM_AUTH_LOCKED_OUT);
	/* The next save writes the current version, which reads back. */
	code_at(c, 2, T0 + 5, code);
	assert_int_equal(try(c, "carol", code, T0 + 5, NULL), SHIM_AUTH_OK);
	assert_int_equal(fake_store_get(&c->fp, SHIM_GATE_STATE_NAME,
					&(size_t){ 0 })[4], 2);
	restart(c);
	assert_int_equal(try(c, "carol", code, T0 + 6, NULL), SHIM_AUTH_REPLAY);
	assert_int_equal(try(c, "mallory", "123456", T0 + 6, NULL), SHIM_AUTH_LOCKED_OUT);
}

static void test_upgrade_takes_the_clock_floor_from_version_1(void **state)
{
	struct ctx *c = *state;
	uint8_t blob[64], *p = blob;
	int64_t last = T0 + 3600;

	/* A unit that ran the previous version: its gate state kept the last
	 * trusted time, and there is no clock floor yet. */
	memcpy(p, "SHGS\x01\x00\x00\x00", 8);
	p += 8;
	put64(&p, (uint64_t)last);
	put32(&p, 0);
	put32(&p, 0);
	put32(&p, shim_crc32(0, blob, (size_t)(p - blob)));
	assert_int_equal(c->fp.port.store.save(c->fp.port.store.ctx,
					       SHIM_GATE_STATE_NAME, blob,
					       (size_t)(p - blob)), 0);
	store_delete(&c->fp, SHIM_CLOCK_STATE_NAME);
	c->cfg.state_required = 1;
	/* Started with the clock set back an hour: caught by that time. */
	restart_at(c, T0);
	assert_int_equal(shim_clock_floor(&c->clock), last);
	assert_int_equal(shim_clock_peek(&c->clock, T0), SHIM_CLOCK_UNTRUSTED);
	assert_non_null(fake_store_get(&c->fp, SHIM_CLOCK_STATE_NAME, &(size_t){ 0 }));
	/* And at the right time, trusted without an operator. */
	store_delete(&c->fp, SHIM_CLOCK_STATE_NAME);
	assert_int_equal(c->fp.port.store.save(c->fp.port.store.ctx,
					       SHIM_GATE_STATE_NAME, blob,
					       (size_t)(p - blob)), 0);
	restart_at(c, last + 10);
	assert_int_equal(shim_clock_peek(&c->clock, last + 10), SHIM_CLOCK_TRUSTED);
	/* An existing floor is never replaced from the gate state. */
	assert_int_equal(shim_clock_adopt_floor(&c->clock, T0), SHIM_ESTATE);
}

/* ---- an ID spray cannot lock out enrolled technicians ----------------- */

static void test_lockout_table_spray_leaves_enrolled_reachable(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	char id[32], code[9];
	int64_t t = T0;
	unsigned i, k;

	/* A patient sprayer, under the shim-wide limit, fills every slot. */
	c->cfg.lockout_seconds = 7200;
	c->cfg.rate_failures = SHIM_GATE_RATE_SLOTS;
	c->cfg.rate_seconds = 1;
	restart(c);
	for (i = 0; i < SHIM_GATE_LOCK_SLOTS + 8; i++) {
		snprintf(id, sizeof(id), "spray%u", i);
		for (k = 0; k < c->cfg.max_failures; k++) {
			try(c, id, "000000", t++, NULL);
		}
	}
	assert_int_equal(shim_gate_lockouts(&c->gate, t), SHIM_GATE_LOCK_SLOTS);
	/* A new unknown ID is refused outright... */
	assert_int_equal(try(c, "another", "000000", t, &r), SHIM_AUTH_RATE_LIMITED);
	/* ...the sprayed ones stay locked... */
	assert_int_equal(try(c, "spray0", "000000", t, NULL), SHIM_AUTH_LOCKED_OUT);
	/* ...and enrolled technicians get in, also after a restart. */
	code_at(c, 0, t, code);
	assert_int_equal(try(c, "alice@example.org", code, t, &r), SHIM_AUTH_OK);
	restart_at(c, t + 1);
	code_at(c, 1, t + 1, code);
	assert_int_equal(try(c, "bob@example.org", code, t + 1, &r), SHIM_AUTH_OK);
	assert_int_equal(try(c, "another", "000000", t + 2, &r), SHIM_AUTH_RATE_LIMITED);
	/* An enrolled ID's own lockout still works with the table full. */
	lock(c, "carol", t + 3);
	code_at(c, 2, t + 4, code);
	assert_int_equal(try(c, "carol", code, t + 4, NULL), SHIM_AUTH_LOCKED_OUT);
	assert_int_equal(shim_gate_lockout_left(&c->gate, "carol", t + 4),
			 c->cfg.lockout_seconds - 1);
	assert_int_equal(shim_gate_reset_lockout(&c->gate, "carol", t + 4), 0);
	assert_int_equal(try(c, "carol", code, t + 4, NULL), SHIM_AUTH_OK);
}

/* A rate limit above what the rate slots can count would never trip: the
 * gate refuses it (the slots are a build-time size). */
static void test_rate_limit_fits_the_slots(void **state)
{
	struct ctx *c = *state;

	shim_gate_wipe(&c->gate);
	load_techs(c);
	c->cfg.rate_failures = SHIM_GATE_RATE_SLOTS + 1;
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&c->fp.port, &c->clock, c->scratch,
					c->scratch_cap), SHIM_EINVAL);
	c->cfg.rate_failures = SHIM_GATE_RATE_SLOTS;
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&c->fp.port, &c->clock, c->scratch,
					c->scratch_cap), 0);
}

/* ---- the gate and clock trust ---------------------------------------- */

static void test_gate_needs_a_clock(void **state)
{
	struct ctx *c = *state;
	struct shim_clock zero;
	char code[9];

	shim_gate_wipe(&c->gate);
	load_techs(c);
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&c->fp.port, NULL, c->scratch,
					c->scratch_cap), SHIM_EINVAL);
	/* A clock that was never initialised is UNKNOWN: refused. */
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->techs, NTECH,
					&c->fp.port, &zero, c->scratch,
					c->scratch_cap), 0);
	code_at(c, 0, T0, code);
	assert_int_equal(try(c, "alice@example.org", code, T0, NULL), SHIM_AUTH_CLOCK);
	assert_int_equal(shim_gate_clock_check(&c->gate, T0), SHIM_ECLOCK);
}

static void test_clock_jump_while_running_refused_and_reported(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	char code[9];

	/* The wall clock leaps an hour ahead; the monotonic clock does not. */
	c->fp.wall_ns += 3600LL * 1000000000LL;
	code_at(c, 0, T0 + 3600, code);
	assert_int_equal(shim_gate_verify(&c->gate, "alice@example.org", 17, code,
					  strlen(code), T0 + 3600, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_CLOCK);
	assert_int_equal(r.clock.verdict, SHIM_CLOCK_UNTRUSTED);
	assert_int_equal(r.clock.reason, SHIM_CLOCK_WHY_JUMP);
	assert_int_equal(r.clock.jumped, 1);
	assert_int_equal(r.clock.wall, T0 + 3600);
	assert_int_equal(r.clock.expected, T0);
	/* Reported once; still refused; not counted against anyone. */
	assert_int_equal(shim_gate_verify(&c->gate, "alice@example.org", 17, code,
					  strlen(code), T0 + 3600, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_CLOCK);
	assert_int_equal(r.clock.jumped, 0);
	assert_int_equal(r.failures, 0);
	/* Back within the bound of expected: accepted again. */
	code_at(c, 0, T0 + 10, code);
	c->fp.wall_ns = c->fp.mono_ns + 10LL * 1000000000LL;
	assert_int_equal(shim_gate_verify(&c->gate, "alice@example.org", 17, code,
					  strlen(code), T0 + 10, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_OK);
	assert_int_equal(r.clock.recovered, 1);
}

static void test_unconfirmed_clock_confirmed_by_a_valid_code(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	int64_t later = T0 + 86400;
	char code[9];

	/* Off for a day (or moved a day ahead while off). */
	restart_at(c, later);
	assert_int_equal(shim_clock_peek(&c->clock, later), SHIM_CLOCK_UNCONFIRMED);
	assert_int_equal(shim_gate_clock_check(&c->gate, later), 0);
	/* A wrong code confirms nothing. */
	assert_int_equal(try(c, "alice@example.org", "000000", later, &r),
			 SHIM_AUTH_BAD_CODE);
	assert_int_equal(r.clock_confirmed, 0);
	assert_int_equal(shim_clock_peek(&c->clock, later), SHIM_CLOCK_UNCONFIRMED);
	code_at(c, 0, later, code);
	assert_int_equal(try(c, "alice@example.org", code, later, &r), SHIM_AUTH_OK);
	assert_int_equal(r.clock.verdict, SHIM_CLOCK_UNCONFIRMED);
	assert_int_equal(r.clock_confirmed, 1);
	assert_string_equal(shim_clock_source(&c->clock), "totp");
	assert_int_equal(shim_clock_peek(&c->clock, later), SHIM_CLOCK_TRUSTED);
	assert_int_equal(shim_clock_floor(&c->clock), later);
	/* Persisted: the next start at that time is trusted. */
	restart_at(c, later + 5);
	assert_int_equal(shim_clock_peek(&c->clock, later + 5), SHIM_CLOCK_TRUSTED);
}

static void test_unconfirmed_clock_does_not_expire_lockouts(void **state)
{
	struct ctx *c = *state;
	int64_t later = T0 + 86400;
	char id[32], code[9];
	unsigned i;

	lock(c, "alice@example.org", T0);
	for (i = 0; i < c->cfg.rate_failures - 1; i++) {
		snprintf(id, sizeof(id), "spray%u", i);
		try(c, id, "000000", T0, NULL);
	}
	/* The clock is moved a day ahead while off: neither the lockout nor
	 * the rate window may pass on its word. */
	restart_at(c, later);
	code_at(c, 0, later, code);
	assert_int_equal(try(c, "alice@example.org", code, later, NULL),
			 SHIM_AUTH_RATE_LIMITED);
	/* An operator confirms the time: now both have expired. */
	assert_int_equal(shim_clock_confirm(&c->clock, "admin"), 0);
	assert_int_equal(try(c, "alice@example.org", code, later, NULL), SHIM_AUTH_OK);
}

static void test_unconfirmed_clock_keeps_lockout(void **state)
{
	struct ctx *c = *state;
	int64_t later = T0 + 86400;
	char code[9];

	lock(c, "alice@example.org", T0);
	restart_at(c, later);
	code_at(c, 0, later, code);
	assert_int_equal(try(c, "alice@example.org", code, later, NULL),
			 SHIM_AUTH_LOCKED_OUT);
	/* Another technician's code confirms the clock... */
	code_at(c, 1, later, code);
	assert_int_equal(try(c, "bob@example.org", code, later, NULL), SHIM_AUTH_OK);
	/* ...and then the day has really passed. */
	code_at(c, 0, later + 30, code);
	assert_int_equal(try(c, "alice@example.org", code, later + 30, NULL), SHIM_AUTH_OK);
}

static void test_success_raises_the_clock_floor(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result r;
	int64_t before = shim_clock_floor(&c->clock);
	char code[9];

	code_at(c, 0, T0 + 600, code);
	fake_port_set_time(&c->fp, T0 + 600);
	assert_int_equal(shim_gate_verify(&c->gate, "alice@example.org", 17,
					  code, strlen(code), T0 + 600, &r), 0);
	assert_int_equal(r.outcome, SHIM_AUTH_OK);
	/* The success asks for the floor to be raised, and leaves the write
	 * to the caller, after the success line. */
	assert_int_equal(r.floor_due, 1);
	assert_int_equal(shim_clock_floor(&c->clock), before);
	assert_true(before < T0 + 600);
	assert_int_equal(shim_gate_note_time(&c->gate, T0 + 600), 0);
	assert_int_equal(shim_clock_floor(&c->clock), T0 + 600);
	/* A failure asks for nothing. */
	assert_int_equal(try(c, "alice@example.org", "000000", T0 + 600, &r) != SHIM_AUTH_OK, 1);
	assert_int_equal(r.floor_due, 0);
	/* The heartbeat raises it as time passes. */
	fake_port_set_time(&c->fp, T0 + 660);
	assert_int_equal(shim_gate_note_time(&c->gate, T0 + 660), 0);
	assert_int_equal(shim_clock_floor(&c->clock), T0 + 660);
	/* A reading ahead of the monotonic clock (within the jump bound)
	 * moves the floor by a second at most. */
	assert_int_equal(shim_gate_note_time(&c->gate, T0 + 700), 0);
	assert_int_equal(shim_clock_floor(&c->clock), T0 + 661);
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

static int failing_hmac(void *ctx, enum shim_md md, const uint8_t *key,
			size_t key_len, const uint8_t *msg, size_t msg_len,
			uint8_t *out)
{
	(void)ctx; (void)md; (void)key; (void)key_len; (void)msg;
	(void)msg_len;
	memset(out, 0, SHIM_MD_MAX_LEN);
	return SHIM_ECRYPTO;
}

/* A port whose HMAC fails: the call reports the error, and a caller that
 * reads only the outcome still finds a refusal, never SHIM_AUTH_OK. */
static void test_crypto_failure_never_reads_as_ok(void **state)
{
	struct ctx *c = *state;
	struct shim_auth_result res;
	char code[9];
	int rc;

	code_at(c, 0, T0, code);
	c->fp.port.crypto.hmac = failing_hmac;
	memset(&res, 0xff, sizeof(res));
	rc = shim_gate_verify(&c->gate, "alice@example.org", 17, code,
			      strlen(code), T0, &res);
	assert_true(rc < 0);
	assert_int_not_equal(res.outcome, SHIM_AUTH_OK);
	assert_int_equal(res.outcome, SHIM_AUTH_ERROR);
	assert_int_equal(res.tech, -1);
	rc = shim_gate_verify_line(&c->gate, "alice@example.org 123456", 24,
				   T0, &res);
	assert_true(rc < 0);
	assert_int_equal(res.outcome, SHIM_AUTH_ERROR);
	/* A result nobody filled in is an error too. */
	memset(&res, 0, sizeof(res));
	assert_int_equal(res.outcome, SHIM_AUTH_ERROR);
	assert_string_equal(shim_auth_outcome_name(res.outcome), "internal_error");
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
		T(test_missing_state_is_fresh_start_on_a_new_unit),
		T(test_missing_state_fails_closed_when_required),
		T(test_reset_state_uses_the_clock_floor),
		T(test_rate_limit_survives_restart),
		T(test_rate_limit_from_malformed_lines_survives_restart),
		T(test_rate_limit_from_a_wrong_clock_does_not_close_the_shim),
		T(test_version_1_state_still_reads),
		T(test_upgrade_takes_the_clock_floor_from_version_1),
		T(test_lockout_table_spray_leaves_enrolled_reachable),
		T(test_rate_limit_fits_the_slots),
		T(test_gate_needs_a_clock),
		T(test_clock_jump_while_running_refused_and_reported),
		T(test_unconfirmed_clock_confirmed_by_a_valid_code),
		T(test_unconfirmed_clock_does_not_expire_lockouts),
		T(test_unconfirmed_clock_keeps_lockout),
		T(test_success_raises_the_clock_floor),
		T(test_crypto_failure_never_reads_as_ok),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
