/*
 * SHA-256 and HMAC-SHA256 on the CPU's SHA instructions (port/mbedtls/
 * sha256_accel.c) give exactly mbedTLS's results: the FIPS 180-2 vectors,
 * every length across the block and padding boundaries, keys shorter and
 * longer than a block. On a CPU without the instructions they say
 * SHIM_ENOTSUP and the crypto ops fall back, which the same checks cover.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include "port_linux.h"
#include "sha256_accel.h"
#include "util.h"

static void hex(const uint8_t *d, char *out)
{
	shim_hex_encode(d, 32, out);
}

static void test_fips_vectors(void **state)
{
	static uint8_t million[1000000];
	uint8_t d[32];
	char h[65];

	(void)state;
	if (!shim_sha256_accel_available()) {
		assert_int_equal(shim_sha256_accel((const uint8_t *)"abc", 3, d),
				 SHIM_ENOTSUP);
		skip();
	}
	assert_int_equal(shim_sha256_accel((const uint8_t *)"abc", 3, d), 0);
	hex(d, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223"
			       "b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(shim_sha256_accel(
		(const uint8_t *)"abcdbcdecdefdefgefghfghighijhijkijkljklmklmn"
				 "lmnomnopnopq", 56, d), 0);
	hex(d, h);
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039"
			       "a33ce45964ff2167f6ecedd419db06c1");
	assert_int_equal(shim_sha256_accel((const uint8_t *)"", 0, d), 0);
	hex(d, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb924"
			       "27ae41e4649b934ca495991b7852b855");
	memset(million, 'a', sizeof(million));
	assert_int_equal(shim_sha256_accel(million, sizeof(million), d), 0);
	hex(d, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67"
			       "f1809a48a497200e046d39ccc7112cd0");
}

static void test_every_length_matches_mbedtls(void **state)
{
	static uint8_t msg[4200];
	uint8_t a[32], b[32];
	size_t n, i;

	(void)state;
	if (!shim_sha256_accel_available()) {
		skip();
	}
	for (i = 0; i < sizeof(msg); i++) {
		msg[i] = (uint8_t)(i * 131 + 7);
	}
	for (n = 0; n <= sizeof(msg); n += n < 300 ? 1 : 97) {
		assert_int_equal(shim_sha256_accel(msg, n, a), 0);
		assert_int_equal(mbedtls_sha256_ret(msg, n, b, 0), 0);
		assert_memory_equal(a, b, 32);
	}
}

static void test_hmac_matches_mbedtls(void **state)
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	static uint8_t msg[2000], key[200];
	uint8_t a[32], b[32];
	size_t kl, n, i;

	(void)state;
	if (!shim_sha256_accel_available()) {
		skip();
	}
	for (i = 0; i < sizeof(msg); i++) {
		msg[i] = (uint8_t)(i * 17 + 3);
	}
	for (i = 0; i < sizeof(key); i++) {
		key[i] = (uint8_t)(i * 29 + 1);
	}
	for (kl = 0; kl <= sizeof(key); kl += kl < 70 ? 1 : 13) {
		for (n = 0; n <= sizeof(msg); n += n < 130 ? 7 : 301) {
			assert_int_equal(shim_hmac_sha256_accel(key, kl, msg, n, a),
					 0);
			assert_int_equal(mbedtls_md_hmac(md, key, kl, msg, n, b), 0);
			assert_memory_equal(a, b, 32);
		}
	}
}

static void test_crypto_ops_agree_either_way(void **state)
{
	struct shim_linux_port lp;
	uint8_t a[32], b[32];

	(void)state;
	/* the ops (accelerated when possible) against mbedTLS itself */
	assert_int_equal(shim_linux_port_init(&lp, NULL), 0);
	assert_int_equal(lp.port.crypto.hmac(lp.port.crypto.ctx, SHIM_MD_SHA256,
					     (const uint8_t *)"key", 3,
					     (const uint8_t *)"The quick brown "
					     "fox", 19, a), 0);
	assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(
						 MBEDTLS_MD_SHA256),
					 (const uint8_t *)"key", 3,
					 (const uint8_t *)"The quick brown fox",
					 19, b), 0);
	assert_memory_equal(a, b, 32);
	assert_int_equal(lp.port.crypto.hash(lp.port.crypto.ctx, SHIM_MD_SHA256,
					     (const uint8_t *)"abc", 3, a), 0);
	assert_int_equal(mbedtls_sha256_ret((const uint8_t *)"abc", 3, b, 0), 0);
	assert_memory_equal(a, b, 32);
	shim_linux_port_fini(&lp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_every_length_matches_mbedtls),
		cmocka_unit_test(test_hmac_matches_mbedtls),
		cmocka_unit_test(test_crypto_ops_agree_either_way),
	};

	printf("SHA instructions: %s\n", shim_sha256_accel_available() ?
	       "used" : "not on this CPU (fallback checked)");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
