/*
 * The sealed enrolment store (core/enrolstore.h) and the gate's side of
 * it: the set's text round-trips and refuses malformed input with its
 * line; the containers open only with the right key and refuse any
 * altered byte; a table swapped into a running gate keeps marks and
 * lockouts by ID; a restored set's min_step refuses the codes it marks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base32.h"
#include "clock.h"
#include "enrolstore.h"
#include "fakes.h"
#include "gate.h"
#include "keys.h"
#include "otp.h"
#include "util.h"

#define T0 1800000000LL

static const char *const B32 = "KRUGS4ZANFZSAYJAONSWG4TFOQQGM33S";

static void fill(struct shim_enrol_set *s)
{
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	strcpy(s->shim_id, "pump-a");
	s->created = T0;
	s->n = 2;
	strcpy(s->t[0].id, "alice@example.org");
	assert_int_equal(shim_base32_decode(B32, strlen(B32), s->t[0].secret,
					    sizeof(s->t[0].secret), &n), 0);
	s->t[0].secret_len = (uint8_t)n;
	s->t[0].md = SHIM_MD_SHA1;
	s->t[0].digits = 6;
	s->t[0].period = 30;
	s->t[0].enrolled = T0 - 86400;
	s->t[1] = s->t[0];
	memset(s->t[1].id, 0, sizeof(s->t[1].id));
	strcpy(s->t[1].id, "bob");
	s->t[1].md = SHIM_MD_SHA512;
	s->t[1].digits = 8;
	s->t[1].min_step = 60000001;
	s->t[1].secret[0] ^= 0x55;
}

static void test_text_round_trip(void **state)
{
	static struct shim_enrol_set a, b;
	char text[2048];
	size_t len = 0, line = 99;

	(void)state;
	fill(&a);
	assert_int_equal(shim_enrol_format(&a, text, sizeof(text), &len), 0);
	assert_non_null(strstr(text, "tech bob SHA512 8 30 1799913600 60000001 "));
	assert_int_equal(shim_enrol_parse(text, len, &b, &line), 0);
	assert_int_equal(line, 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(shim_enrol_find(&b, "bob"), 1);
	shim_enrol_remove(&b, 0);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.t[0].id, "bob");
	assert_int_equal(shim_enrol_find(&b, "alice@example.org"), -1);
	/* too small a buffer is ENOSPC, not a cut set */
	assert_int_equal(shim_enrol_format(&a, text, 100, &len), SHIM_ENOSPC);
}

static void refused(const char *text, size_t want_line, int want_rc)
{
	static struct shim_enrol_set s;
	size_t line = 0;

	assert_int_equal(shim_enrol_parse(text, strlen(text), &s, &line),
			 want_rc);
	assert_int_equal(line, want_line);
	assert_int_equal(s.n, 0);
	assert_int_equal(s.t[0].secret_len, 0);
}

static void test_malformed_text_refused_with_its_line(void **state)
{
	const char *h = "shim-enrolment 1\nshim p\ncreated 5\n";
	char buf[512];

	(void)state;
	refused("shim-enrolment 2\n", 1, SHIM_ENOTSUP);
	refused("hello\n", 1, SHIM_ECORRUPT);
	refused("shim-enrolment 1\nshim bad id\n", 2, SHIM_ECORRUPT);
	refused("shim-enrolment 1\nshim p\ncreated -5\n", 3, SHIM_ECORRUPT);
	snprintf(buf, sizeof(buf), "%stech a SHA1 6 30 1 0 %s\n", h, B32);
	refused(buf, 5, SHIM_ECORRUPT); /* no "end" */
	snprintf(buf, sizeof(buf), "%stech a SHA1 6 30 1 0 %s", h, B32);
	refused(buf, 4, SHIM_ECORRUPT); /* unterminated line */
	snprintf(buf, sizeof(buf), "%stech a SHA1 6 30 1 0 %s\ntech a SHA1 6 30 "
		 "1 0 %s\nend\n", h, B32, B32);
	refused(buf, 5, SHIM_ECORRUPT); /* the same ID twice */
	snprintf(buf, sizeof(buf), "%stech a SHA1 9 30 1 0 %s\nend\n", h, B32);
	refused(buf, 4, SHIM_ECORRUPT); /* 9 digits */
	snprintf(buf, sizeof(buf), "%stech a MD5 6 30 1 0 %s\nend\n", h, B32);
	refused(buf, 4, SHIM_ECORRUPT);
	snprintf(buf, sizeof(buf), "%stech a SHA1 6 30 1 0 JBSWY3DP\nend\n", h);
	refused(buf, 4, SHIM_ECORRUPT); /* 40-bit secret */
	snprintf(buf, sizeof(buf), "%stech a SHA1 6 30 1 0  %s\nend\n", h, B32);
	refused(buf, 4, SHIM_ECORRUPT); /* two spaces */
	snprintf(buf, sizeof(buf), "%stech a SHA1 6 30 1 "
		 "99999999999999999999 %s\nend\n", h, B32);
	refused(buf, 4, SHIM_ECORRUPT); /* beyond 64 bits */
	snprintf(buf, sizeof(buf), "%send\nextra\n", h);
	refused(buf, 5, SHIM_ECORRUPT);
}

static void test_local_container(void **state)
{
	static struct shim_enrol_set a;
	struct fake_port fp;
	uint8_t key[32] = { 7 }, other[32] = { 8 };
	char text[2048];
	uint8_t sealed[2048 + SHIM_ENROL_LOCAL_OVERHEAD], out[2048];
	size_t len = 0, slen = 0, olen = 0, i;

	(void)state;
	fake_port_init(&fp, T0);
	fill(&a);
	assert_int_equal(shim_enrol_format(&a, text, sizeof(text), &len), 0);
	assert_int_equal(shim_enrol_seal_local(&fp.port.crypto, &fp.port.rng,
					       key, (uint8_t *)text, len,
					       sealed, sizeof(sealed), &slen), 0);
	assert_int_equal(slen, len + SHIM_ENROL_LOCAL_OVERHEAD);
	assert_int_equal(shim_enrol_kind(sealed, slen), SHIM_ENROL_LOCAL);
	/* the secret is not in the sealed bytes */
	assert_null(memmem(sealed, slen, B32, strlen(B32)));
	assert_null(memmem(sealed, slen, a.t[0].secret, a.t[0].secret_len));
	assert_int_equal(shim_enrol_open_local(&fp.port.crypto, key, sealed,
					       slen, out, sizeof(out), &olen), 0);
	assert_int_equal(olen, len);
	assert_memory_equal(out, text, len);
	assert_int_equal(shim_enrol_open_local(&fp.port.crypto, other, sealed,
					       slen, out, sizeof(out), &olen),
			 SHIM_ECRYPTO);
	/* every altered byte is refused */
	for (i = 0; i < slen; i += 7) {
		sealed[i] ^= 1;
		assert_true(shim_enrol_open_local(&fp.port.crypto, key, sealed,
						  slen, out, sizeof(out),
						  &olen) < 0);
		sealed[i] ^= 1;
	}
	assert_int_equal(shim_enrol_open_local(&fp.port.crypto, key, sealed,
					       slen - 1, out, sizeof(out), &olen),
			 SHIM_ECORRUPT);
	/* a container for a public key is not opened as a local one */
	sealed[9] = SHIM_ENROL_TO_PUB;
	assert_true(shim_enrol_open_local(&fp.port.crypto, key, sealed, slen,
					  out, sizeof(out), &olen) < 0);
	fake_port_free(&fp);
}

static int ecdh_cb(void *ctx, const uint8_t eph[SHIM_P256_PUB_LEN],
		   uint8_t shared[32])
{
	return shim_keys_ecdh(ctx, eph, shared);
}

static void test_sealed_to_a_public_key(void **state)
{
	static struct shim_enrol_set a;
	struct fake_port fp;
	struct shim_privkey *k1 = NULL, *k2 = NULL;
	uint8_t pub1[SHIM_P256_PUB_LEN], pub2[SHIM_P256_PUB_LEN];
	char dir[] = "/tmp/enrolstore-XXXXXX", p1[64], p2[64], text[2048];
	uint8_t sealed[2048 + SHIM_ENROL_PUB_OVERHEAD], out[2048];
	size_t len = 0, slen = 0, olen = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p1, sizeof(p1), "%s/k1", dir);
	snprintf(p2, sizeof(p2), "%s/k2", dir);
	assert_int_equal(shim_keys_generate(p1, NULL, pub1, NULL), 0);
	assert_int_equal(shim_keys_generate(p2, NULL, pub2, NULL), 0);
	assert_int_equal(shim_keys_load_private(p1, &k1), 0);
	assert_int_equal(shim_keys_load_private(p2, &k2), 0);
	fake_port_init(&fp, T0);
	fill(&a);
	assert_int_equal(shim_enrol_format(&a, text, sizeof(text), &len), 0);
	assert_int_equal(shim_enrol_seal_to(&fp.port.crypto, &fp.port.rng, pub1,
					    (uint8_t *)text, len, sealed,
					    sizeof(sealed), &slen), 0);
	assert_int_equal(shim_enrol_kind(sealed, slen), SHIM_ENROL_TO_PUB);
	assert_null(memmem(sealed, slen, B32, strlen(B32)));
	assert_int_equal(shim_enrol_open_with(&fp.port.crypto, pub1, ecdh_cb, k1,
					      sealed, slen, out, sizeof(out),
					      &olen), 0);
	assert_memory_equal(out, text, len);
	/* another key holder cannot open it */
	assert_int_equal(shim_enrol_open_with(&fp.port.crypto, pub2, ecdh_cb, k2,
					      sealed, slen, out, sizeof(out),
					      &olen), SHIM_EACCES);
	/* nor can a wrong key claiming the right name */
	assert_int_equal(shim_enrol_open_with(&fp.port.crypto, pub1, ecdh_cb, k2,
					      sealed, slen, out, sizeof(out),
					      &olen), SHIM_ECRYPTO);
	sealed[30] ^= 1; /* the ephemeral key */
	assert_true(shim_enrol_open_with(&fp.port.crypto, pub1, ecdh_cb, k1,
					 sealed, slen, out, sizeof(out),
					 &olen) < 0);
	shim_keys_free(k1);
	shim_keys_free(k2);
	unlink(p1);
	unlink(p2);
	rmdir(dir);
	fake_port_free(&fp);
}

/* ---- the gate's side -------------------------------------------------- */

struct gctx {
	struct fake_port fp;
	struct shim_gate gate;
	struct shim_gate_cfg cfg;
	struct shim_clock clock;
	struct shim_technician t1[2], t2[2];
	uint8_t *s1, *s2;
	size_t cap;
};

static void tech(struct shim_technician *t, const char *id)
{
	size_t n = 0;

	memset(t, 0, sizeof(*t));
	strcpy(t->id, id);
	shim_base32_decode(B32, strlen(B32), t->secret, sizeof(t->secret), &n);
	t->secret_len = (uint8_t)n;
	t->secret[0] ^= (uint8_t)id[0];
}

static const char *code(struct gctx *c, const struct shim_technician *t,
			int64_t when)
{
	static char out[9];
	uint32_t v = 0;

	shim_totp(&c->fp.port.crypto, c->cfg.md, t->secret, t->secret_len, when,
		  c->cfg.period, c->cfg.digits, &v);
	shim_otp_format(v, c->cfg.digits, out);
	return out;
}

static enum shim_auth_outcome try(struct gctx *c, const char *id,
				  const char *cd, int64_t now)
{
	struct shim_auth_result r;

	fake_port_set_time(&c->fp, now);
	assert_int_equal(shim_gate_verify(&c->gate, id, strlen(id), cd,
					  strlen(cd), now, &r), 0);
	return r.outcome;
}

static struct gctx *gate_up(void)
{
	struct gctx *c = calloc(1, sizeof(*c));
	struct shim_clock_cfg ccfg;

	fake_port_init(&c->fp, T0);
	shim_gate_cfg_default(&c->cfg);
	shim_clock_cfg_default(&ccfg);
	ccfg.min_time = 1700000000LL;
	(void)shim_clock_init(&c->clock, &ccfg, &c->fp.port);
	c->cap = shim_gate_scratch_size(2);
	c->s1 = calloc(1, c->cap);
	c->s2 = calloc(1, c->cap);
	tech(&c->t1[0], "alice");
	tech(&c->t1[1], "bob");
	assert_int_equal(shim_gate_init(&c->gate, &c->cfg, c->t1, 2,
					&c->fp.port, &c->clock, c->s1, c->cap),
			 0);
	return c;
}

static void gate_down(struct gctx *c)
{
	shim_gate_wipe(&c->gate);
	fake_port_free(&c->fp);
	free(c->s1);
	free(c->s2);
	free(c);
}

static void test_swapped_table_keeps_marks_and_lockouts(void **state)
{
	struct gctx *c = gate_up();
	const char *used;
	int i;

	(void)state;
	used = code(c, &c->t1[0], T0 + 5);
	assert_int_equal(try(c, "alice", used, T0 + 5), SHIM_AUTH_OK);
	for (i = 0; i < 5; i++) {
		try(c, "bob", "000000", T0 + 6);
	}
	assert_true(shim_gate_lockout_left(&c->gate, "bob", T0 + 7) > 0);
	/* bob removed, carol added, alice kept */
	tech(&c->t2[0], "carol");
	tech(&c->t2[1], "alice");
	assert_int_equal(shim_gate_set_techs(&c->gate, c->t2, 2, c->s2, c->cap),
			 0);
	assert_int_equal(c->gate.ntechs, 2);
	/* alice's mark survived the swap: her used code is a replay */
	assert_int_equal(try(c, "alice", used, T0 + 8), SHIM_AUTH_REPLAY);
	assert_int_equal(try(c, "bob", code(c, &c->t1[1], T0 + 9), T0 + 9),
			 SHIM_AUTH_LOCKED_OUT);
	assert_int_equal(try(c, "carol", code(c, &c->t2[0], T0 + 9), T0 + 9),
			 SHIM_AUTH_OK);
	/* bob enrolled again: his lockout comes back with him */
	tech(&c->t1[0], "bob");
	tech(&c->t1[1], "alice");
	assert_int_equal(shim_gate_set_techs(&c->gate, c->t1, 2, c->s1, c->cap),
			 0);
	assert_int_equal(try(c, "bob", code(c, &c->t1[0], T0 + 10), T0 + 10),
			 SHIM_AUTH_LOCKED_OUT);
	/* a scratch too small is refused, the table stays */
	assert_int_equal(shim_gate_set_techs(&c->gate, c->t2, 2, c->s2, 16),
			 SHIM_EINVAL);
	assert_ptr_equal(c->gate.techs, c->t1);
	gate_down(c);
}

static void test_swap_that_cannot_be_saved_fails_closed(void **state)
{
	struct gctx *c = gate_up();

	(void)state;
	tech(&c->t2[0], "alice");
	tech(&c->t2[1], "carol");
	c->fp.store.fail_save = 1;
	assert_true(shim_gate_set_techs(&c->gate, c->t2, 2, c->s2, c->cap) < 0);
	c->fp.store.fail_save = 0;
	assert_int_equal(try(c, "alice", code(c, &c->t2[0], T0 + 5), T0 + 5),
			 SHIM_AUTH_STATE);
	gate_down(c);
}

static void test_min_step_refuses_codes_it_marks(void **state)
{
	struct gctx *c = gate_up();
	uint64_t s0 = shim_totp_step(T0, 30);

	(void)state;
	c->t1[0].min_step = s0 + 1; /* a restored set: up to T0's window */
	assert_int_equal(try(c, "alice", code(c, &c->t1[0], T0), T0),
			 SHIM_AUTH_REPLAY);
	assert_int_equal(try(c, "alice", code(c, &c->t1[0], T0 + 30), T0 + 30),
			 SHIM_AUTH_REPLAY);
	assert_int_equal(try(c, "alice", code(c, &c->t1[0], T0 + 60), T0 + 60),
			 SHIM_AUTH_OK);
	gate_down(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_round_trip),
		cmocka_unit_test(test_malformed_text_refused_with_its_line),
		cmocka_unit_test(test_local_container),
		cmocka_unit_test(test_sealed_to_a_public_key),
		cmocka_unit_test(test_swapped_table_keeps_marks_and_lockouts),
		cmocka_unit_test(test_swap_that_cannot_be_saved_fails_closed),
		cmocka_unit_test(test_min_step_refuses_codes_it_marks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
