#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base32.h"
#include "otp.h"
#include "port_linux.h"

static struct shim_linux_port lp;

static int setup(void **state)
{
	(void)state;
	return shim_linux_port_init(&lp, NULL);
}

/* RFC 4226 Appendix D. */
static void test_rfc4226_vectors(void **state)
{
	static const uint32_t want[] = { 755224, 287082, 359152, 969429, 338314,
					 254676, 287922, 162583, 399871, 520489 };
	const uint8_t *key = (const uint8_t *)"12345678901234567890";
	uint32_t code;
	uint64_t c;

	(void)state;
	for (c = 0; c < 10; c++) {
		assert_int_equal(shim_hotp(&lp.port.crypto, SHIM_MD_SHA1, key, 20,
					   c, 6, &code), 0);
		assert_int_equal(code, want[c]);
	}
}

/* RFC 6238 Appendix B, all three algorithms, 8 digits. */
static void test_rfc6238_vectors(void **state)
{
	static const struct {
		int64_t t;
		uint32_t sha1, sha256, sha512;
	} v[] = {
		{ 59LL, 94287082, 46119246, 90693936 },
		{ 1111111109LL, 7081804, 68084774, 25091201 },
		{ 1111111111LL, 14050471, 67062674, 99943326 },
		{ 1234567890LL, 89005924, 91819424, 93441116 },
		{ 2000000000LL, 69279037, 90698825, 38618901 },
		{ 20000000000LL, 65353130, 77737706, 47863826 },
	};
	const uint8_t *k1 = (const uint8_t *)"12345678901234567890";
	const uint8_t *k256 = (const uint8_t *)"12345678901234567890123456789012";
	const uint8_t *k512 = (const uint8_t *)
		"1234567890123456789012345678901234567890123456789012345678901234";
	uint32_t code;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(shim_totp(&lp.port.crypto, SHIM_MD_SHA1, k1, 20,
					   v[i].t, 30, 8, &code), 0);
		assert_int_equal(code, v[i].sha1);
		assert_int_equal(shim_totp(&lp.port.crypto, SHIM_MD_SHA256, k256, 32,
					   v[i].t, 30, 8, &code), 0);
		assert_int_equal(code, v[i].sha256);
		assert_int_equal(shim_totp(&lp.port.crypto, SHIM_MD_SHA512, k512, 64,
					   v[i].t, 30, 8, &code), 0);
		assert_int_equal(code, v[i].sha512);
	}
}

static void test_format_keeps_leading_zeros(void **state)
{
	char out[9];

	(void)state;
	shim_otp_format(7081804, 8, out);
	assert_string_equal(out, "07081804");
	shim_otp_format(42, 6, out);
	assert_string_equal(out, "000042");
}

static void test_parse_exact_digits_only(void **state)
{
	uint32_t code;

	(void)state;
	assert_int_equal(shim_otp_parse("012345", 6, 6, &code), 0);
	assert_int_equal(code, 12345);
	assert_int_equal(shim_otp_parse("12345", 5, 6, &code), SHIM_EINVAL);
	assert_int_equal(shim_otp_parse("1234567", 7, 6, &code), SHIM_EINVAL);
	assert_int_equal(shim_otp_parse("12a456", 6, 6, &code), SHIM_EINVAL);
	assert_int_equal(shim_otp_parse("12 456", 6, 6, &code), SHIM_EINVAL);
	assert_int_equal(shim_otp_parse("-12345", 6, 6, &code), SHIM_EINVAL);
	assert_int_equal(shim_otp_parse("\xb1\x32\x33\x34\x35\x36", 6, 6, &code),
			 SHIM_EINVAL);
}

static void test_rejects_bad_digits(void **state)
{
	uint32_t code;

	(void)state;
	assert_int_equal(shim_hotp(&lp.port.crypto, SHIM_MD_SHA1,
				   (const uint8_t *)"k", 1, 0, 5, &code),
			 SHIM_EINVAL);
	assert_int_equal(shim_hotp(&lp.port.crypto, SHIM_MD_SHA1,
				   (const uint8_t *)"k", 1, 0, 9, &code),
			 SHIM_EINVAL);
}

/* Codes agree with oathtool, an independent implementation, for random
 * secrets, algorithms, digit counts, periods and times. */
static void test_agrees_with_oathtool(void **state)
{
	static const char *alg[] = { "SHA1", "SHA256", "SHA512" };
	static const uint32_t periods[] = { 30, 60, 15, 45 };
	uint8_t r[40], key[32];
	char b32[64], cmd[256], out[32];
	int i;

	(void)state;
	if (system("command -v oathtool >/dev/null 2>&1") != 0) {
		skip();
	}
	for (i = 0; i < 40; i++) {
		enum shim_md md = (enum shim_md)(i % 3);
		unsigned digits = 6 + (unsigned)(i % 3);
		uint32_t period = periods[i % 4], code;
		int64_t t;
		size_t klen;
		FILE *p;
		char want[9];

		assert_int_equal(shim_linux_random(r, sizeof(r)), 0);
		klen = 10 + r[0] % 22;
		memcpy(key, r + 8, klen);
		t = 1000000000LL + (int64_t)(((uint32_t)r[1] << 24 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 8 | r[4]) % 2000000000u);
		shim_base32_encode(key, klen, b32, sizeof(b32));
		snprintf(cmd, sizeof(cmd),
			 "oathtool --totp=%s -b -d %u -s %u -N @%lld %s", alg[md],
			 digits, period, (long long)t, b32);
		p = popen(cmd, "r");
		assert_non_null(p);
		assert_non_null(fgets(out, sizeof(out), p));
		assert_int_equal(pclose(p), 0);
		out[strcspn(out, "\n")] = '\0';
		assert_int_equal(shim_totp(&lp.port.crypto, md, key, klen, t, period,
					   digits, &code), 0);
		shim_otp_format(code, digits, want);
		assert_string_equal(want, out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4226_vectors),
		cmocka_unit_test(test_rfc6238_vectors),
		cmocka_unit_test(test_format_keeps_leading_zeros),
		cmocka_unit_test(test_parse_exact_digits_only),
		cmocka_unit_test(test_rejects_bad_digits),
		cmocka_unit_test(test_agrees_with_oathtool),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
