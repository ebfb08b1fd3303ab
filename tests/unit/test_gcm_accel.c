/*
 * AES-256-GCM on the CPU's AES and carry-less multiply instructions
 * (port/mbedtls/gcm_accel.c) gives exactly mbedTLS's ciphertext and tag
 * for every length of text and AAD across the block boundaries, in place
 * too; opening refuses any altered byte of text, AAD, nonce or tag
 * without writing plaintext; and what one seals the other opens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mbedtls/gcm.h>

#include "err.h"
#include "gcm_accel.h"

static void ref_seal(const uint8_t *key, const uint8_t *nonce,
		     const uint8_t *aad, size_t al, const uint8_t *pt,
		     size_t n, uint8_t *ct, uint8_t *tag)
{
	mbedtls_gcm_context g;

	mbedtls_gcm_init(&g);
	assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256),
			 0);
	assert_int_equal(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, n,
						   nonce, 12, aad, al, pt, ct,
						   16, tag), 0);
	mbedtls_gcm_free(&g);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void test_matches_mbedtls(void **state)
{
	static uint8_t pt[5000], a[5000], b[5000], aad[100], back[5000];
	uint8_t key[32], nonce[12], ta[16], tb[16];
	size_t n, al;

	(void)state;
	if (!shim_gcm_accel_available()) {
		skip();
	}
	fill(pt, sizeof(pt), 1);
	fill(aad, sizeof(aad), 2);
	for (n = 0; n <= sizeof(pt); n += n < 200 ? 1 : 311) {
		al = n % 61;
		fill(key, 32, (unsigned)n + 3);
		fill(nonce, 12, (unsigned)n + 4);
		assert_int_equal(shim_gcm_accel_seal(key, nonce, aad, al, pt, n, a,
						     ta), 0);
		ref_seal(key, nonce, aad, al, pt, n, b, tb);
		assert_memory_equal(ta, tb, 16);
		if (n > 0) {
			assert_memory_equal(a, b, n);
		}
		assert_int_equal(shim_gcm_accel_open(key, nonce, aad, al, a, n, ta,
						     back), 0);
		if (n > 0) {
			assert_memory_equal(back, pt, n);
		}
	}
}

static void test_in_place_and_refusals(void **state)
{
	static uint8_t buf[1000], pt[1000], out[1000];
	uint8_t key[32], nonce[12], tag[16], aad[20];
	size_t i;

	(void)state;
	if (!shim_gcm_accel_available()) {
		assert_int_equal(shim_gcm_accel_seal(key, nonce, aad, 0, buf, 0,
						     buf, tag), SHIM_ENOTSUP);
		skip();
	}
	fill(key, 32, 9);
	fill(nonce, 12, 10);
	fill(aad, 20, 11);
	fill(pt, sizeof(pt), 12);
	memcpy(buf, pt, sizeof(buf));
	assert_int_equal(shim_gcm_accel_seal(key, nonce, aad, 20, buf,
					     sizeof(buf), buf, tag), 0);
	assert_memory_not_equal(buf, pt, sizeof(buf));
	for (i = 0; i < sizeof(buf); i += 37) {
		buf[i] ^= 1;
		memset(out, 0x5a, sizeof(out));
		assert_int_equal(shim_gcm_accel_open(key, nonce, aad, 20, buf,
						     sizeof(buf), tag, out),
				 SHIM_ECRYPTO);
		assert_int_equal(out[0], 0x5a); /* nothing written */
		buf[i] ^= 1;
	}
	aad[3] ^= 1;
	assert_int_equal(shim_gcm_accel_open(key, nonce, aad, 20, buf,
					     sizeof(buf), tag, out), SHIM_ECRYPTO);
	aad[3] ^= 1;
	tag[15] ^= 0x80;
	assert_int_equal(shim_gcm_accel_open(key, nonce, aad, 20, buf,
					     sizeof(buf), tag, out), SHIM_ECRYPTO);
	tag[15] ^= 0x80;
	nonce[0] ^= 1;
	assert_int_equal(shim_gcm_accel_open(key, nonce, aad, 20, buf,
					     sizeof(buf), tag, out), SHIM_ECRYPTO);
	nonce[0] ^= 1;
	assert_int_equal(shim_gcm_accel_open(key, nonce, aad, 20, buf,
					     sizeof(buf), tag, buf), 0);
	assert_memory_equal(buf, pt, sizeof(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches_mbedtls),
		cmocka_unit_test(test_in_place_and_refusals),
	};

	printf("AES and carry-less multiply instructions: %s\n",
	       shim_gcm_accel_available() ? "used" :
	       "not on this CPU (fallback checked)");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
