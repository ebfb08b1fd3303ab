/*
 * The frame checksum: core's table CRC-32 (shim_crc32) agrees with the
 * bit-at-a-time definition, in one go and in pieces; the carry-less
 * multiply version (port/mbedtls/crc32_accel.c) agrees with it for every
 * length across the 16- and 64-byte folds and at every alignment; the
 * crypto ops offer it only where the CPU has the instruction. (A
 * recording the firmware seals with core's tables is read back here with
 * this one: the firmware recording check.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crc32_accel.h"
#include "crypto.h"
#include "port.h"
#include "util.h"

/* CRC-32 from its definition, one bit at a time. */
static uint32_t ref_crc(uint32_t crc, const uint8_t *p, size_t n)
{
	int k;

	crc = ~crc;
	while (n-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++) {
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
		}
	}
	return ~crc;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void test_known_values(void **state)
{
	static const uint8_t check[] = "123456789";
	uint8_t ff[64];

	(void)state;
	/* the catalogue's check value of CRC-32/ISO-HDLC */
	assert_int_equal(shim_crc32(0, check, 9), 0xCBF43926u);
	assert_int_equal(shim_crc32(0, check, 0), 0);
	memset(ff, 0xff, sizeof(ff));
	assert_int_equal(shim_crc32(0, ff, sizeof(ff)),
			 ref_crc(0, ff, sizeof(ff)));
	if (shim_crc32_accel_available()) {
		assert_int_equal(shim_crc32_accel(check, 9), 0xCBF43926u);
		assert_int_equal(shim_crc32_accel(ff, sizeof(ff)),
				 ref_crc(0, ff, sizeof(ff)));
	}
}

static void test_tables_match_the_definition(void **state)
{
	static uint8_t buf[3000];
	size_t n, cut;

	(void)state;
	fill(buf, sizeof(buf), 7);
	for (n = 0; n <= sizeof(buf); n += n < 100 ? 1 : 97) {
		uint32_t want = ref_crc(0, buf, n);

		assert_int_equal(shim_crc32(0, buf, n), want);
		/* continued across a split at any point */
		cut = n / 3;
		assert_int_equal(shim_crc32(shim_crc32(0, buf, cut), buf + cut,
					    n - cut), want);
	}
}

static void test_accel_matches_every_length_and_alignment(void **state)
{
	static uint8_t buf[4200 + 16];
	size_t n, off;

	(void)state;
	if (!shim_crc32_accel_available()) {
		skip();
	}
	fill(buf, sizeof(buf), 3);
	for (off = 0; off < 16; off++) {
		for (n = 0; n <= 4200; n += n < 300 ? 1 : 37) {
			assert_int_equal(shim_crc32_accel(buf + off, n),
					 shim_crc32(0, buf + off, n));
		}
	}
	/* one flipped bit anywhere changes it */
	for (n = 0; n < 512; n += 5) {
		uint32_t before = shim_crc32_accel(buf, 512);

		buf[n] ^= 0x10;
		assert_int_not_equal(shim_crc32_accel(buf, 512), before);
		assert_int_equal(shim_crc32_accel(buf, 512),
				 ref_crc(0, buf, 512));
		buf[n] ^= 0x10;
	}
}

static void test_ops_offer_it_only_with_the_instruction(void **state)
{
	struct shim_mbedtls_crypto mc;
	struct shim_crypto_ops ops;
	static uint8_t buf[1000];

	(void)state;
	memset(&mc, 0, sizeof(mc));
	memset(&ops, 0, sizeof(ops));
	shim_mbedtls_crypto_ops(&ops, &mc);
	if (!shim_crc32_accel_available()) {
		assert_null(ops.crc32);
		return;
	}
	assert_non_null(ops.crc32);
	fill(buf, sizeof(buf), 11);
	assert_int_equal(ops.crc32(ops.ctx, buf, sizeof(buf)),
			 ref_crc(0, buf, sizeof(buf)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_tables_match_the_definition),
		cmocka_unit_test(test_accel_matches_every_length_and_alignment),
		cmocka_unit_test(test_ops_offer_it_only_with_the_instruction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
