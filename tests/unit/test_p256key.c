/*
 * P-256 key files and the monitor's verifier: the batched verification
 * (shared inversions, per-key tables, Jacobian x check) must agree with
 * mbedTLS on every good signature and refuse every altered one, out-of-range
 * r and s, and other keys' signatures.
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

#include "keys.h"
#include "p256key.h"
#include "port_linux.h"

#define N 150

static const uint8_t order[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
	0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

static char dir[64], key_a[96], key_b[96];
static uint8_t pub_a[SHIM_P256_PUB_LEN], pub_b[SHIM_P256_PUB_LEN];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_p256key.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(key_a, sizeof(key_a), "%s/a.key", dir);
	snprintf(key_b, sizeof(key_b), "%s/b.key", dir);
	return shim_keys_generate(key_a, NULL, pub_a, NULL) != 0 ||
	       shim_keys_generate(key_b, NULL, pub_b, NULL) != 0 ? -1 : 0;
}

static int teardown(void **state)
{
	unlink(key_a);
	unlink(key_b);
	rmdir(dir);
	return 0;
}

static void test_key_files(void **state)
{
	uint8_t pub[SHIM_P256_PUB_LEN];
	char pem[512], path[128];
	FILE *f;

	/* The public half of the private key file. */
	assert_int_equal(shim_keys_load_public(key_a, pub), 0);
	assert_memory_equal(pub, pub_a, sizeof(pub));
	assert_int_equal(shim_keys_pub_pem(pub_a, pem, sizeof(pem)), 0);
	/* Never replaces a key; a public key cannot sign. */
	assert_int_equal(shim_keys_generate(key_a, NULL, pub, NULL), SHIM_EEXIST);
	snprintf(path, sizeof(path), "%s/a.pub", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(pem, f);
	fclose(f);
	{
		uint8_t d[32] = { 0 }, sig[64];

		assert_int_equal(shim_p256_sign_with(path, d, sig), SHIM_EINVAL);
	}
	unlink(path);
}

static void test_batch_agrees(void **state)
{
	struct shim_linux_port lp;
	struct shim_p256_verifier *va, *vb;
	static struct shim_p256_item it[N];
	size_t i, bit;
	int single;

	assert_int_equal(shim_linux_port_init(&lp, NULL), 0);
	va = shim_p256_verifier_new(pub_a);
	vb = shim_p256_verifier_new(pub_b);
	assert_non_null(va);
	assert_non_null(vb);
	for (i = 0; i < N; i++) {
		assert_int_equal(shim_linux_random(it[i].digest, 32), 0);
		it[i].v = i % 3 ? va : vb;
		assert_int_equal(shim_p256_sign_with(i % 3 ? key_a : key_b,
						     it[i].digest, it[i].sig), 0);
	}
	/* Twice: the second pass runs with the per-key tables built. */
	for (int pass = 0; pass < 2; pass++) {
		shim_p256_verify_batch(it, N);
		for (i = 0; i < N; i++) {
			assert_int_equal(it[i].rc, 0);
			assert_int_equal(lp.port.crypto.verify(lp.port.crypto.ctx,
							       i % 3 ? pub_a : pub_b,
							       it[i].digest,
							       it[i].sig), 0);
		}
	}
	/* One bit flipped anywhere in a digest or a signature. */
	for (i = 0; i < N; i++) {
		bit = (i * 37) % (96 * 8);
		if (bit < 256) {
			it[i].digest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		} else {
			bit -= 256;
			it[i].sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
	}
	shim_p256_verify_batch(it, N);
	for (i = 0; i < N; i++) {
		single = shim_p256_verifier_verify(it[i].v, it[i].digest,
						   it[i].sig);
		assert_int_equal(it[i].rc, SHIM_ESIG);
		assert_int_equal(single, SHIM_ESIG);
	}
	shim_p256_verifier_free(va);
	shim_p256_verifier_free(vb);
	shim_linux_port_fini(&lp);
}

static void test_batch_refuses_edges(void **state)
{
	struct shim_p256_verifier *va, *vb;
	static struct shim_p256_item it[8];
	uint8_t d[32];
	size_t i;

	va = shim_p256_verifier_new(pub_a);
	vb = shim_p256_verifier_new(pub_b);
	assert_int_equal(shim_linux_random(d, 32), 0);
	for (i = 0; i < 8; i++) {
		memcpy(it[i].digest, d, 32);
		it[i].v = va;
		assert_int_equal(shim_p256_sign_with(key_a, d, it[i].sig), 0);
	}
	memset(it[0].sig, 0, 32);               /* r = 0 */
	memset(it[1].sig + 32, 0, 32);          /* s = 0 */
	memcpy(it[2].sig, order, 32);           /* r = n */
	memcpy(it[3].sig + 32, order, 32);      /* s = n */
	memset(it[4].sig, 0xff, 32);            /* r > n */
	it[5].v = vb;                           /* another key */
	/* it[6], it[7] stay good: a bad neighbour must not spoil them. */
	shim_p256_verify_batch(it, 8);
	for (i = 0; i < 6; i++) {
		assert_int_equal(it[i].rc, SHIM_ESIG);
	}
	assert_int_equal(it[6].rc, 0);
	assert_int_equal(it[7].rc, 0);
	shim_p256_verify_batch(it, 0);
	/* A point not on the curve is not a key. */
	{
		uint8_t bad[SHIM_P256_PUB_LEN];

		memcpy(bad, pub_a, sizeof(bad));
		bad[64] ^= 1;
		assert_null(shim_p256_verifier_new(bad));
	}
	shim_p256_verifier_free(va);
	shim_p256_verifier_free(vb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_files),
		cmocka_unit_test(test_batch_agrees),
		cmocka_unit_test(test_batch_refuses_edges),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
