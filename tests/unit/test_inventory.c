/*
 * The signed inventory record: what the provisioning tool writes parses
 * back to the same fields, a signature by the authority verifies and any
 * change to a signed byte breaks it, another authority is refused, and
 * every kind of malformed record is refused with its line number.
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

#include "err.h"
#include "inventory.h"
#include "keys.h"
#include "p256key.h"
#include "util.h"

static char dir[] = "/tmp/shim-inv-XXXXXX";
static char key_a[64], key_b[64];
static uint8_t pub_a[SHIM_P256_PUB_LEN], pub_b[SHIM_P256_PUB_LEN];

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(key_a, sizeof(key_a), "%s/a.key", dir);
	snprintf(key_b, sizeof(key_b), "%s/b.key", dir);
	if (shim_keys_generate(key_a, NULL, pub_a, NULL) != 0 ||
	    shim_keys_generate(key_b, NULL, pub_b, NULL) != 0) {
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(key_a);
	unlink(key_b);
	rmdir(dir);
	return 0;
}

static void sample(struct shim_inventory *r)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->serial, "SN-0042");
	strcpy(r->shim_id, "pump-ward3-01");
	memcpy(r->identity_pub, pub_b, SHIM_P256_PUB_LEN);
	memset(r->recording_key, 0x11, 32);
	strcpy(r->software, "0.1.0");
	memset(r->binary, 0x22, 32);
	r->build = SHIM_INV_BUILD_DEPLOYED;
	r->provisioned = 1795000000; /* 2026-11-18T... */
	strcpy(r->op, "Jo Bloggs");
}

/* A record signed by key (its authority set from pub), in out. */
static size_t signed_record(const char *key, const uint8_t *pub, char *out,
			    size_t cap)
{
	struct shim_inventory r;
	uint8_t d[32], sig[SHIM_P256_SIG_LEN];
	char hex[2 * SHIM_P256_SIG_LEN + 1];
	size_t len;

	sample(&r);
	shim_inv_key_digest(pub, r.authority);
	assert_int_equal(shim_inv_format(&r, out, cap, &len), 0);
	shim_sha256((const uint8_t *)out, len, d);
	assert_int_equal(shim_p256_sign_with(key, d, sig), 0);
	shim_hex_encode(sig, sizeof(sig), hex);
	len += (size_t)snprintf(out + len, cap - len, "signature %s\n", hex);
	return len;
}

static void test_round_trip_and_verify(void **state)
{
	struct shim_inventory r, want;
	char buf[SHIM_INV_MAX + 1];
	size_t len;

	(void)state;
	len = signed_record(key_a, pub_a, buf, sizeof(buf));
	assert_int_equal(shim_inv_parse(buf, len, &r, NULL, NULL), 0);
	sample(&want);
	assert_string_equal(r.serial, want.serial);
	assert_string_equal(r.shim_id, want.shim_id);
	assert_memory_equal(r.identity_pub, want.identity_pub,
			    SHIM_P256_PUB_LEN);
	assert_memory_equal(r.recording_key, want.recording_key, 32);
	assert_memory_equal(r.binary, want.binary, 32);
	assert_string_equal(r.software, "0.1.0");
	assert_string_equal(r.op, "Jo Bloggs");
	assert_int_equal(r.build, SHIM_INV_BUILD_DEPLOYED);
	assert_true(r.provisioned == want.provisioned);
	assert_true(r.is_signed);
	assert_int_equal(shim_inv_verify(&r, pub_a), 0);
	/* another authority: refused */
	assert_int_equal(shim_inv_verify(&r, pub_b), SHIM_ESIG);
}

static void test_every_signed_byte_counts(void **state)
{
	struct shim_inventory r;
	char buf[SHIM_INV_MAX + 1];
	size_t len, i, sig_at;
	int refused = 0, tried = 0;

	(void)state;
	len = signed_record(key_a, pub_a, buf, sizeof(buf));
	sig_at = (size_t)(strstr(buf, "\nsignature ") - buf);
	/* Change one character of each value (keep the syntax valid where
	 * the change is a digit or letter): it must fail to parse or fail
	 * to verify, never verify. */
	for (i = 0; i < sig_at; i += 7) {
		char saved = buf[i];

		if (buf[i] >= '0' && buf[i] <= '8') {
			buf[i]++;
		} else if (buf[i] >= 'a' && buf[i] <= 'e') {
			buf[i]++;
		} else {
			continue;
		}
		tried++;
		if (shim_inv_parse(buf, len, &r, NULL, NULL) != 0 ||
		    shim_inv_verify(&r, pub_a) != 0) {
			refused++;
		}
		buf[i] = saved;
	}
	assert_true(tried > 50);
	assert_int_equal(refused, tried);
}

static void test_unsigned_and_zero_value(void **state)
{
	struct shim_inventory r;
	char buf[SHIM_INV_MAX + 1];
	size_t len;

	(void)state;
	/* the zero value formats to nothing and verifies as nothing */
	memset(&r, 0, sizeof(r));
	assert_int_equal(shim_inv_format(&r, buf, sizeof(buf), &len),
			 SHIM_EINVAL);
	assert_int_equal(shim_inv_verify(&r, pub_a), SHIM_ESIG);
	/* an unsigned record parses (for signing) but never verifies */
	sample(&r);
	shim_inv_key_digest(pub_a, r.authority);
	assert_int_equal(shim_inv_format(&r, buf, sizeof(buf), &len), 0);
	assert_int_equal(shim_inv_parse(buf, len, &r, NULL, NULL), 0);
	assert_false(r.is_signed);
	assert_int_equal(shim_inv_verify(&r, pub_a), SHIM_ESIG);
	/* fields the parser would refuse are not written */
	sample(&r);
	strcpy(r.serial, "SN 42");
	assert_int_equal(shim_inv_format(&r, buf, sizeof(buf), &len),
			 SHIM_EINVAL);
	sample(&r);
	r.build = SHIM_INV_BUILD_UNKNOWN;
	assert_int_equal(shim_inv_format(&r, buf, sizeof(buf), &len),
			 SHIM_EINVAL);
	sample(&r);
	strcpy(r.op, "Jo\tBloggs");
	assert_int_equal(shim_inv_format(&r, buf, sizeof(buf), &len),
			 SHIM_EINVAL);
}

/* Replaces the first occurrence of from with to in a copy of rec and
 * expects the parser to refuse it at line. */
static void refused_at(const char *rec, const char *from, const char *to,
		       int line)
{
	char buf[2 * SHIM_INV_MAX];
	struct shim_inventory r;
	const char *why = NULL, *p = strstr(rec, from);
	int got = 0;
	size_t n;

	assert_non_null(p);
	n = (size_t)(p - rec);
	memcpy(buf, rec, n);
	strcpy(buf + n, to);
	strcat(buf, p + strlen(from));
	assert_int_equal(shim_inv_parse(buf, strlen(buf), &r, &got, &why),
			 SHIM_EINVAL);
	assert_non_null(why);
	if (got != line) {
		print_message("'%s' -> '%s': line %d (%s), want %d\n", from,
			      to, got, why, line);
	}
	assert_int_equal(got, line);
	assert_int_equal(r.build, SHIM_INV_BUILD_UNKNOWN);
}

static void test_malformed_names_the_line(void **state)
{
	char rec[SHIM_INV_MAX + 1];

	(void)state;
	signed_record(key_a, pub_a, rec, sizeof(rec));
	refused_at(rec, "shim-inventory 1", "shim-inventory 2", 1);
	refused_at(rec, "shim-inventory 1", "SHIMREC", 1);
	refused_at(rec, "serial SN-0042", "serial SN 0042", 2);
	refused_at(rec, "serial SN-0042\n", "", 2);           /* missing key */
	refused_at(rec, "shim_id ", "shim_id  ", 3);
	refused_at(rec, "identity_pub 04", "identity_pub 05", 4);
	refused_at(rec, "identity_pub 04", "identity_pub 04A", 4);
	refused_at(rec, "recording_key sha256:", "recording_key md5:", 5);
	refused_at(rec, "software 0.1.0", "software \x01", 6);
	refused_at(rec, "build deployed", "build debug", 8);
	refused_at(rec, "provisioned 2026-", "provisioned 2026-02-30T00:00:00Z\nx", 9);
	refused_at(rec, "operator Jo Bloggs", "operator Jo Bloggs\r", 10);
	refused_at(rec, "operator Jo Bloggs\n", "operator Jo Bloggs\nextra 1\n", 11);
	refused_at(rec, "\nsignature ", "\nsignature 00", 12);
	refused_at(rec, "\nsignature ", "\nsignature", 12);
	/* data after the signature, and a last line without its newline */
	{
		char buf[SHIM_INV_MAX + 16];
		struct shim_inventory r;
		const char *why;
		int line;
		size_t n = strlen(rec);

		memcpy(buf, rec, n);
		memcpy(buf + n, "more\n", 6);
		assert_int_equal(shim_inv_parse(buf, n + 5, &r, &line, &why),
				 SHIM_EINVAL);
		assert_int_equal(line, 13);
		assert_int_equal(shim_inv_parse(rec, n - 1, &r, &line, &why),
				 SHIM_EINVAL);
		assert_int_equal(line, 12);
	}
	/* too long as a whole */
	{
		static char big[SHIM_INV_MAX + 2];
		struct shim_inventory r;

		memset(big, 'a', sizeof(big));
		assert_int_equal(shim_inv_parse(big, sizeof(big), &r, NULL,
						NULL),
				 SHIM_EINVAL);
	}
}

/* The decommission record: signed by the unit's identity (key b here),
 * refused under any other key or when altered; malformed ones name the
 * line. */
static void test_decommission_record(void **state)
{
	struct shim_decommission d, got;
	char buf[SHIM_INV_MAX + 1], hex[2 * SHIM_P256_SIG_LEN + 1];
	uint8_t dg[32], sig[SHIM_P256_SIG_LEN];
	const char *why;
	size_t len;
	int line;

	(void)state;
	memset(&d, 0, sizeof(d));
	assert_int_equal(shim_decom_format(&d, buf, sizeof(buf), &len),
			 SHIM_EINVAL);
	assert_int_equal(shim_decom_verify(&d, pub_b), SHIM_ESIG);
	strcpy(d.serial, "SN-0042");
	strcpy(d.shim_id, "pump-ward3-01");
	memcpy(d.identity_pub, pub_b, SHIM_P256_PUB_LEN);
	d.when = 1795000000;
	strcpy(d.op, "Jo Bloggs");
	d.undelivered_events = 3;
	d.undelivered_recordings = 0;
	assert_int_equal(shim_decom_format(&d, buf, sizeof(buf), &len), 0);
	shim_sha256((const uint8_t *)buf, len, dg);
	assert_int_equal(shim_p256_sign_with(key_b, dg, sig), 0);
	shim_hex_encode(sig, sizeof(sig), hex);
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "signature %s\n",
				hex);
	assert_int_equal(shim_decom_parse(buf, len, &got, NULL, NULL), 0);
	assert_string_equal(got.shim_id, "pump-ward3-01");
	assert_true(got.undelivered_events == 3);
	assert_int_equal(shim_decom_verify(&got, pub_b), 0);
	assert_int_equal(shim_decom_verify(&got, pub_a), SHIM_ESIG);
	/* altered after signing */
	*strstr(buf, "events 3") = 'E';
	assert_int_equal(shim_decom_parse(buf, len, &got, &line, &why),
			 SHIM_EINVAL);
	assert_int_equal(line, 7);
	*strstr(buf, "Events 3") = 'e';
	*strstr(buf, "events 3") = 'e';
	buf[strstr(buf, "events 3") - buf + 7] = '4';
	assert_int_equal(shim_decom_parse(buf, len, &got, NULL, NULL), 0);
	assert_int_equal(shim_decom_verify(&got, pub_b), SHIM_ESIG);
	/* an inventory record is not a decommission record */
	len = signed_record(key_a, pub_a, buf, sizeof(buf));
	assert_int_equal(shim_decom_parse(buf, len, &got, &line, &why),
			 SHIM_EINVAL);
	assert_int_equal(line, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_verify),
		cmocka_unit_test(test_every_signed_byte_counts),
		cmocka_unit_test(test_unsigned_and_zero_value),
		cmocka_unit_test(test_malformed_names_the_line),
		cmocka_unit_test(test_decommission_record),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
