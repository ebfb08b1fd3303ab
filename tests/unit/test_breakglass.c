/*
 * Break-glass codes: the text format (alphabet, grouping, case, look-alike
 * reading, the check character that tells a typo from a forgery), the key
 * scheme (a shim's key verifies only its own codes), the verifier's
 * bindings (shim, lifetime, technician, single use that survives a
 * restart and a clock set back) and its durable marks, on a fake store
 * with failure injection and the real mbedTLS HMAC.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "breakglass.h"
#include "fakes.h"
#include "util.h"

#define NOW 1800000000LL
#define SHIM "pump-shim-07"

static const uint8_t master[SHIM_BG_KEY_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

struct ctx {
	struct fake_port fp;
	struct shim_bg_key key;
	struct shim_bg bg;
};

/* A code as shimctl breakglass issue makes it, for shim at issued_s. */
static void mint(struct ctx *c, const char *shim, const char *tech,
		 int64_t issued_s, unsigned ttl_min, uint16_t nonce,
		 char out[SHIM_BG_TEXT_LEN + 1])
{
	struct shim_bg_code code;
	uint8_t k[SHIM_BG_KEY_LEN];

	memset(&code, 0, sizeof(code));
	code.bound = tech != NULL;
	code.tag = shim_bg_tag(shim, strlen(shim));
	code.nonce = nonce;
	code.issued = (uint32_t)((issued_s - SHIM_BG_EPOCH) / 60);
	code.ttl = (uint16_t)ttl_min;
	assert_int_equal(shim_bg_derive(&c->fp.port.crypto, master, shim,
					strlen(shim), k), 0);
	assert_int_equal(shim_bg_mac(&c->fp.port.crypto, k, shim, strlen(shim),
				     tech, tech ? strlen(tech) : 0, &code,
				     code.mac), 0);
	assert_int_equal(shim_bg_format(&code, out), 0);
}

static void make_key(struct ctx *c, const char *shim)
{
	memset(&c->key, 0, sizeof(c->key));
	snprintf(c->key.shim_id, sizeof(c->key.shim_id), "%s", shim);
	assert_int_equal(shim_bg_derive(&c->fp.port.crypto, master, shim,
					strlen(shim), c->key.key), 0);
	assert_int_equal(shim_bg_key_id(&c->fp.port.crypto, master,
					c->key.key_id), 0);
	c->key.loaded = 1;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	fake_port_init(&c->fp, NOW);
	make_key(c, SHIM);
	assert_int_equal(shim_bg_init(&c->bg, &c->key, SHIM, &c->fp.port, 0, 0), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	shim_bg_wipe(&c->bg);
	fake_port_free(&c->fp);
	free(c);
	return 0;
}

static enum shim_bg_outcome verify(struct ctx *c, const char *tech,
				   const char *code, int64_t at, int trusted,
				   struct shim_bg_result *res)
{
	assert_int_equal(shim_bg_verify(&c->bg, tech, tech ? strlen(tech) : 0,
					code, strlen(code), at, trusted, res), 0);
	return res->outcome;
}

/* ---- format ------------------------------------------------------------ */

static void format_shape(void **state)
{
	struct ctx *c = *state;
	char code[SHIM_BG_TEXT_LEN + 1];
	size_t i;

	mint(c, SHIM, NULL, NOW, 60, 0x123, code);
	assert_int_equal(strlen(code), SHIM_BG_TEXT_LEN);
	for (i = 0; i < SHIM_BG_TEXT_LEN; i++) {
		if (i % 6 == 5) {
			assert_int_equal(code[i], '-');
		} else {
			/* no look-alikes: Crockford, no I L O U */
			assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ",
					       code[i]));
		}
	}
}

static void format_roundtrip(void **state)
{
	struct shim_bg_code a, b;
	char text[SHIM_BG_TEXT_LEN + 1];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.bound = 1;
	a.tag = 0x2a;
	a.nonce = 0xabc;
	a.issued = 0xfedcba;
	a.ttl = 1440;
	memcpy(a.mac, "\x01\x23\x45\x67\x89", 5);
	assert_int_equal(shim_bg_format(&a, text), 0);
	assert_int_equal(shim_bg_parse(text, strlen(text), &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* out of range fields are refused */
	a.nonce = 0x1000;
	assert_int_equal(shim_bg_format(&a, text), SHIM_EINVAL);
}

static void parse_case_separators_lookalikes(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_code a, b;
	char code[SHIM_BG_TEXT_LEN + 1], typed[64];
	size_t i, j = 0;

	mint(c, SHIM, NULL, NOW, 60, 7, code);
	assert_int_equal(shim_bg_parse(code, strlen(code), &a), 0);
	/* lower case, spaces instead of dashes, 0 typed as o, 1 as l */
	for (i = 0; code[i] != '\0'; i++) {
		char ch = code[i];

		if (ch == '-') {
			typed[j++] = ' ';
			continue;
		}
		if (ch == '0') {
			ch = 'o';
		} else if (ch == '1') {
			ch = 'l';
		} else if (ch >= 'A' && ch <= 'Z') {
			ch = (char)(ch - 'A' + 'a');
		}
		typed[j++] = ch;
	}
	typed[j] = '\0';
	assert_int_equal(shim_bg_parse(typed, strlen(typed), &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
}

static void parse_typos_are_not_forgeries(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_code out;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1], bad[SHIM_BG_TEXT_LEN + 1];
	const char *alpha = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	size_t i, k;

	mint(c, SHIM, NULL, NOW, 60, 99, code);
	/* every single substitution anywhere is caught by the check */
	for (i = 0; i < SHIM_BG_TEXT_LEN; i++) {
		if (code[i] == '-') {
			continue;
		}
		for (k = 0; k < 32; k++) {
			if (alpha[k] == code[i]) {
				continue;
			}
			memcpy(bad, code, sizeof(bad));
			bad[i] = alpha[k];
			assert_int_equal(shim_bg_parse(bad, strlen(bad), &out),
					 SHIM_ECORRUPT);
		}
	}
	/* adjacent swaps of different characters: Luhn mod 32 misses only
	 * the swaps of one pair of values (0 and 31, "0Z"), so over many codes
	 * at least 99 % are caught */
	{
		unsigned swaps = 0, caught = 0, n;

		for (n = 0; n < 200; n++) {
			mint(c, SHIM, NULL, NOW + 60 * (int64_t)n, 60,
			     (uint16_t)n, code);
			for (i = 0; i + 1 < SHIM_BG_TEXT_LEN; i++) {
				if (code[i] == '-' || code[i + 1] == '-' ||
				    code[i] == code[i + 1]) {
					continue;
				}
				memcpy(bad, code, sizeof(bad));
				bad[i] = code[i + 1];
				bad[i + 1] = code[i];
				swaps++;
				caught += shim_bg_parse(bad, strlen(bad), &out) != 0;
			}
		}
		assert_true(caught * 100 >= swaps * 99);
	}
	mint(c, SHIM, NULL, NOW, 60, 99, code);
	/* a character dropped, one added, one outside the alphabet */
	assert_int_equal(shim_bg_parse(code, strlen(code) - 1, &out), SHIM_EINVAL);
	{
		char longer[SHIM_BG_TEXT_LEN + 2];

		snprintf(longer, sizeof(longer), "%sA", code);
		assert_int_equal(shim_bg_parse(longer, strlen(longer), &out),
				 SHIM_EINVAL);
	}
	memcpy(bad, code, sizeof(bad));
	bad[0] = 'U';
	assert_int_equal(shim_bg_parse(bad, strlen(bad), &out), SHIM_EINVAL);
	assert_int_equal(out.issued, 0); /* nothing left behind */
	/* and the verifier logs the typo as such */
	memcpy(bad, code, sizeof(bad));
	bad[3] = bad[3] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(c, "tech", bad, NOW, 1, &res), SHIM_BG_MISTYPED);
}

/* A code with a valid check character but a wrong MAC is a forgery. */
static void forged_mac_is_bad(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_code code;
	struct shim_bg_result res;
	char text[SHIM_BG_TEXT_LEN + 1], good[SHIM_BG_TEXT_LEN + 1];

	mint(c, SHIM, NULL, NOW, 60, 5, good);
	assert_int_equal(shim_bg_parse(good, strlen(good), &code), 0);
	code.mac[4] ^= 1;
	assert_int_equal(shim_bg_format(&code, text), 0);
	assert_int_equal(verify(c, "tech", text, NOW, 1, &res), SHIM_BG_BAD);
	/* lengthening the lifetime breaks the MAC too */
	assert_int_equal(shim_bg_parse(good, strlen(good), &code), 0);
	code.ttl = 1440;
	assert_int_equal(shim_bg_format(&code, text), 0);
	assert_int_equal(verify(c, "tech", text, NOW, 1, &res), SHIM_BG_BAD);
	/* the reserved version and a zero or too long ttl are refused */
	assert_int_equal(shim_bg_parse(good, strlen(good), &code), 0);
	code.version = 1;
	assert_int_equal(shim_bg_format(&code, text), 0);
	assert_int_equal(verify(c, "tech", text, NOW, 1, &res), SHIM_BG_BAD);
	code.version = 0;
	code.ttl = 1441;
	assert_int_equal(shim_bg_format(&code, text), 0);
	assert_int_equal(verify(c, "tech", text, NOW, 1, &res), SHIM_BG_BAD);
	/* and the good one still opens */
	assert_int_equal(verify(c, "tech", good, NOW, 1, &res), SHIM_BG_OK);
}

/* ---- keys and bindings --------------------------------------------------- */

static void keys_per_shim(void **state)
{
	struct ctx *c = *state;
	uint8_t a[SHIM_BG_KEY_LEN], b[SHIM_BG_KEY_LEN];
	char kid[17];

	assert_int_equal(shim_bg_derive(&c->fp.port.crypto, master, "a", 1, a), 0);
	assert_int_equal(shim_bg_derive(&c->fp.port.crypto, master, "b", 1, b), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, master, sizeof(a));
	assert_int_equal(shim_bg_key_id(&c->fp.port.crypto, master, kid), 0);
	assert_int_equal(strlen(kid), 16);
	assert_int_equal(shim_bg_derive(&c->fp.port.crypto, master, "", 0, a),
			 SHIM_EINVAL);
}

static void other_shim_refused(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];
	const char *other = "pump-shim-08";
	char name[32];
	int i, found = 0;

	mint(c, other, NULL, NOW, 60, 1, code);
	if (shim_bg_tag(other, strlen(other)) != shim_bg_tag(SHIM, strlen(SHIM))) {
		assert_int_equal(verify(c, "t", code, NOW, 1, &res),
				 SHIM_BG_WRONG_SHIM);
	}
	/* a shim whose tag collides still refuses: its key is not ours */
	for (i = 0; i < 2000 && !found; i++) {
		snprintf(name, sizeof(name), "shim-%d", i);
		if (strcmp(name, SHIM) != 0 &&
		    shim_bg_tag(name, strlen(name)) == shim_bg_tag(SHIM, strlen(SHIM))) {
			found = 1;
		}
	}
	assert_true(found);
	mint(c, name, NULL, NOW, 60, 1, code);
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_BAD);
	/* a key for another shim does not start a verifier here */
	make_key(c, other);
	assert_int_equal(shim_bg_init(&c->bg, &c->key, SHIM, &c->fp.port, 0, 0),
			 SHIM_EINVAL);
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_ERROR);
}

static void lifetime(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];
	int64_t issued = SHIM_BG_EPOCH + ((NOW - SHIM_BG_EPOCH) / 60) * 60;

	mint(c, SHIM, NULL, NOW, 15, 2, code);
	assert_int_equal(verify(c, "t", code, issued + 15 * 60, 1, &res),
			 SHIM_BG_EXPIRED);
	assert_int_equal(res.expires_s, issued + 15 * 60);
	assert_int_equal(verify(c, "t", code, issued + 3600, 0, &res),
			 SHIM_BG_EXPIRED);
	/* dated far ahead of a trusted clock */
	assert_int_equal(verify(c, "t", code, issued - 3600, 1, &res),
			 SHIM_BG_NOT_YET);
	/* within the last second it opens, with what is left of it */
	assert_int_equal(verify(c, "t", code, issued + 15 * 60 - 1, 1, &res),
			 SHIM_BG_OK);
	assert_int_equal(res.remaining_s, 1);
	assert_string_equal(shim_bg_outcome_name(SHIM_BG_EXPIRED),
			    "breakglass_expired");
}

static void technician_binding(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];

	mint(c, SHIM, "vendor.eng", NOW, 60, 3, code);
	assert_int_equal(verify(c, "someone.else", code, NOW, 1, &res), SHIM_BG_BAD);
	assert_int_equal(verify(c, "vendor.eng", code, NOW, 1, &res), SHIM_BG_OK);
	assert_int_equal(res.code.bound, 1);
	/* an unbound code opens for whoever types it */
	mint(c, SHIM, NULL, NOW, 60, 4, code);
	assert_int_equal(verify(c, "anyone", code, NOW, 1, &res), SHIM_BG_OK);
}

/* ---- single use ---------------------------------------------------------- */

static void single_use_survives_restart_and_clock_back(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];
	unsigned saves = c->fp.store.saves;

	mint(c, SHIM, NULL, NOW, 60, 11, code);
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_OK);
	assert_true(c->fp.store.saves > saves); /* durable before OK */
	assert_int_equal(verify(c, "t", code, NOW + 1, 1, &res), SHIM_BG_USED);
	assert_string_equal(res.serial[6] == '-' ? "ok" : "no", "ok");
	/* restart from the store */
	make_key(c, SHIM);
	assert_int_equal(shim_bg_init(&c->bg, &c->key, SHIM, &c->fp.port, 1, NOW),
			 0);
	assert_int_equal(verify(c, "t", code, NOW + 5, 1, &res), SHIM_BG_USED);
	/* clock set back before the use: still used */
	assert_int_equal(verify(c, "t", code, NOW - 20, 1, &res), SHIM_BG_USED);
	assert_int_equal(verify(c, "t", code, NOW - 20, 0, &res), SHIM_BG_USED);
}

static void mark_not_durable_refuses(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];

	mint(c, SHIM, NULL, NOW, 60, 12, code);
	c->fp.store.fail_save = 1;
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_STATE);
	c->fp.store.fail_save = 0;
	/* nothing was kept: the code still works once the store does */
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_OK);
	/* unmark gives it back (notifications that could not be stored) */
	assert_int_equal(shim_bg_unmark(&c->bg, &res), 0);
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_OK);
}

static void corrupt_or_missing_marks(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];
	uint8_t *blob;
	size_t len;

	mint(c, SHIM, NULL, NOW, 60, 13, code);
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_OK);
	blob = fake_store_get(&c->fp, SHIM_BG_STATE_NAME, &len);
	assert_non_null(blob);
	blob[len - 1] ^= 0xff;
	make_key(c, SHIM);
	assert_int_equal(shim_bg_init(&c->bg, &c->key, SHIM, &c->fp.port, 1, NOW),
			 SHIM_ECORRUPT);
	/* corrupt marks: every code refused, a fresh one included */
	mint(c, SHIM, NULL, NOW + 120, 60, 14, code);
	assert_int_equal(verify(c, "t", code, NOW + 120, 1, &res), SHIM_BG_STATE);
	/* the file removed on a unit that ran before: codes older than the
	 * last known time count as used, newer ones work */
	blob[len - 1] ^= 0xff;
	memset(blob, 0, len);
	assert_int_equal(shim_bg_state_decode(&c->bg, blob, len), SHIM_ECORRUPT);
	{
		struct fake_port fp2;

		fake_port_init(&fp2, NOW);
		make_key(c, SHIM);
		assert_int_equal(shim_bg_init(&c->bg, &c->key, SHIM, &fp2.port, 1,
					      NOW + 60), 0);
		mint(c, SHIM, NULL, NOW, 60, 15, code);
		assert_int_equal(verify(c, "t", code, NOW + 90, 1, &res),
				 SHIM_BG_USED);
		mint(c, SHIM, NULL, NOW + 180, 60, 16, code);
		assert_int_equal(verify(c, "t", code, NOW + 190, 1, &res),
				 SHIM_BG_OK);
		shim_bg_wipe(&c->bg);
		fake_port_free(&fp2);
		make_key(c, SHIM);
		assert_int_equal(shim_bg_init(&c->bg, &c->key, SHIM, &c->fp.port,
					      0, 0), SHIM_ECORRUPT);
	}
}

static void marks_expire_and_fill(void **state)
{
	struct ctx *c = *state;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];
	int i;

	for (i = 0; i < SHIM_BG_USED_SLOTS; i++) {
		mint(c, SHIM, NULL, NOW, 60, (uint16_t)(100 + i), code);
		assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_OK);
	}
	/* full of live marks: refused, never an old mark evicted */
	mint(c, SHIM, NULL, NOW, 60, 999, code);
	assert_int_equal(verify(c, "t", code, NOW, 1, &res), SHIM_BG_STATE);
	/* a day after they expired the marks are dropped */
	mint(c, SHIM, NULL, NOW + 3600 + 86400, 60, 998, code);
	assert_int_equal(verify(c, "t", code, NOW + 3600 + 86400 + 10, 1, &res),
			 SHIM_BG_OK);
}

/* The zero value refuses. */
static void zero_value_refuses(void **state)
{
	struct ctx *c = *state;
	struct shim_bg zero;
	struct shim_bg_result res;
	char code[SHIM_BG_TEXT_LEN + 1];

	memset(&zero, 0, sizeof(zero));
	mint(c, SHIM, NULL, NOW, 60, 20, code);
	assert_int_equal(shim_bg_verify(&zero, "t", 1, code, strlen(code), NOW, 1,
					&res), 0);
	assert_int_equal(res.outcome, SHIM_BG_ERROR);
	memset(&res, 0, sizeof(res));
	assert_int_not_equal(res.outcome, SHIM_BG_OK);
}

/* ---- key files ----------------------------------------------------------- */

static void key_file_parse(void **state)
{
	struct shim_bg_key k;
	uint8_t m[SHIM_BG_KEY_LEN];
	unsigned line;
	const char *good =
		"shimd-breakglass-verify-key v1\nshim a-1\nkey-id 0011223344556677\n"
		"key 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	const char *short_key =
		"shimd-breakglass-verify-key v1\nshim a-1\nkey-id 0011223344556677\n"
		"key 0001\n";
	const char *mgood = "shimd-breakglass-master v1\n"
		"key 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

	(void)state;
	assert_int_equal(shim_bg_key_parse(good, strlen(good), &k, &line), 0);
	assert_string_equal(k.shim_id, "a-1");
	assert_int_equal(k.key[31], 0x1f);
	assert_int_equal(shim_bg_key_parse(short_key, strlen(short_key), &k, &line),
			 SHIM_ECORRUPT);
	assert_int_equal(line, 4);
	assert_int_equal(k.loaded, 0);
	assert_int_equal(shim_bg_key_parse(good, 20, &k, &line), SHIM_ECORRUPT);
	assert_int_equal(line, 1);
	/* a master is not a verify key, nor the reverse */
	assert_int_equal(shim_bg_key_parse(mgood, strlen(mgood), &k, &line),
			 SHIM_ECORRUPT);
	assert_int_equal(shim_bg_master_parse(good, strlen(good), m, &line),
			 SHIM_ECORRUPT);
	assert_int_equal(shim_bg_master_parse(mgood, strlen(mgood), m, &line), 0);
	assert_int_equal(m[1], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(format_shape, setup, teardown),
		cmocka_unit_test(format_roundtrip),
		cmocka_unit_test_setup_teardown(parse_case_separators_lookalikes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(parse_typos_are_not_forgeries,
						setup, teardown),
		cmocka_unit_test_setup_teardown(forged_mac_is_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(keys_per_shim, setup, teardown),
		cmocka_unit_test_setup_teardown(other_shim_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(lifetime, setup, teardown),
		cmocka_unit_test_setup_teardown(technician_binding, setup, teardown),
		cmocka_unit_test_setup_teardown(
			single_use_survives_restart_and_clock_back, setup, teardown),
		cmocka_unit_test_setup_teardown(mark_not_durable_refuses, setup,
						teardown),
		cmocka_unit_test_setup_teardown(corrupt_or_missing_marks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(marks_expire_and_fill, setup,
						teardown),
		cmocka_unit_test_setup_teardown(zero_value_refuses, setup, teardown),
		cmocka_unit_test(key_file_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
