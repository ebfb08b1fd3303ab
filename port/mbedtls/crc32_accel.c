/*
 * CRC-32 by folding with carry-less multiplication (crc32_accel.h).
 *
 * The bit-reflected CRC of a message M is M(x) * x^32 mod P(x). Four
 * 128-bit lanes take 64 bytes at a time: a lane L is replaced by
 * L.lo * (x^(4*128+32) mod P) + L.hi * (x^(4*128-32) mod P) + the next
 * 16 bytes, which keeps its CRC contribution. The four lanes are then
 * folded into one (the same with 128-bit distances), the 128 bits into
 * 64, then 32, and a Barrett reduction by P gives the remainder. The
 * constants are those powers of x reduced modulo P, bit-reflected.
 */
#include "crc32_accel.h"

#include "util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("pclmul,sse4.1")))

int shim_crc32_accel_available(void)
{
	return __builtin_cpu_supports("pclmul") &&
	       __builtin_cpu_supports("sse4.1");
}

TARGET static __m128i fold(__m128i x, __m128i k, __m128i next)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
					   _mm_clmulepi64_si128(x, k, 0x11)),
			     next);
}

#define LOAD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))

/* state is the running (inverted) CRC; len >= 64 and a multiple of 16. */
TARGET static uint32_t clmul_blocks(uint32_t state, const uint8_t *p,
				    size_t len)
{
	const __m128i k12 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
	const __m128i k34 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
	const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124LL);
	const __m128i pu = _mm_set_epi64x(0x1f7011641LL, 0x1db710641LL);
	const __m128i low32 = _mm_set_epi32(0, 0, 0, -1);
	__m128i x1, x2, x3, x4;

	x1 = _mm_xor_si128(LOAD(p), _mm_cvtsi32_si128((int)state));
	x2 = LOAD(p + 16);
	x3 = LOAD(p + 32);
	x4 = LOAD(p + 48);
	for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
		x1 = fold(x1, k12, LOAD(p));
		x2 = fold(x2, k12, LOAD(p + 16));
		x3 = fold(x3, k12, LOAD(p + 32));
		x4 = fold(x4, k12, LOAD(p + 48));
	}
	x1 = fold(x1, k34, x2);
	x1 = fold(x1, k34, x3);
	x1 = fold(x1, k34, x4);
	for (; len >= 16; p += 16, len -= 16) {
		x1 = fold(x1, k34, LOAD(p));
	}
	/* 128 bits -> 64 */
	x2 = _mm_clmulepi64_si128(x1, k34, 0x10);
	x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
	/* 64 -> 32, ahead of the reduction */
	x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), k5, 0x00);
	x1 = _mm_xor_si128(_mm_srli_si128(x1, 4), x2);
	/* Barrett: q = floor(x / P) by u = x^64 / P, then x - q * P */
	x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), pu, 0x10);
	x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, low32), pu, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	return (uint32_t)_mm_extract_epi32(x1, 1);
}

uint32_t shim_crc32_accel(const uint8_t *buf, size_t len)
{
	uint32_t state = 0xffffffffu;
	size_t bulk = len >= 64 ? len & ~(size_t)15 : 0;

	if (bulk > 0) {
		state = clmul_blocks(state, buf, bulk);
	}
	/* the tail (and short inputs) with core's tables */
	return shim_crc32(~state, buf + bulk, len - bulk);
}

#else

int shim_crc32_accel_available(void)
{
	return 0;
}

uint32_t shim_crc32_accel(const uint8_t *buf, size_t len)
{
	return shim_crc32(0, buf, len);
}

#endif
