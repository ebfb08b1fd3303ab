/*
 * SHA-256 and HMAC-SHA256 on the CPU's SHA instructions (x86-64 SHA-NI),
 * used by the crypto ops when the CPU has them: mbedTLS 2.28 computes
 * SHA-256 in software only, and the recorder hashes every byte it records
 * (the chain). Elsewhere, or on a CPU without them, the functions say
 * SHIM_ENOTSUP and the caller uses mbedTLS. tests/unit/test_sha256_accel.c
 * checks both against each other and against the FIPS 180-2 vectors.
 */
#include "sha256_accel.h"

#include <string.h>

#include "err.h"
#include "util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* The compression function over nblocks 64-byte blocks. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
blocks(uint32_t state[8], const uint8_t *p, size_t nblocks)
{
	const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL,
					    0x0405060700010203ULL);
	__m128i s0, s1, tmp, msg, w[4], save0, save1;
	int g;

	/* state is A B C D E F G H; the instructions want ABEF and CDGH */
	tmp = _mm_loadu_si128((const __m128i *)&state[0]);
	s1 = _mm_loadu_si128((const __m128i *)&state[4]);
	tmp = _mm_shuffle_epi32(tmp, 0xB1);
	s1 = _mm_shuffle_epi32(s1, 0x1B);
	s0 = _mm_alignr_epi8(tmp, s1, 8);
	s1 = _mm_blend_epi16(s1, tmp, 0xF0);

	while (nblocks-- > 0) {
		save0 = s0;
		save1 = s1;
		for (g = 0; g < 16; g++) {
			if (g < 4) {
				w[g] = _mm_shuffle_epi8(
					_mm_loadu_si128((const __m128i *)(p + 16 * g)),
					swap);
			} else {
				/* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) +
				 * W[t-16], four at a time */
				__m128i a = _mm_sha256msg1_epu32(w[g & 3],
								 w[(g + 1) & 3]);

				a = _mm_add_epi32(a, _mm_alignr_epi8(w[(g + 3) & 3],
								     w[(g + 2) & 3], 4));
				w[g & 3] = _mm_sha256msg2_epu32(a, w[(g + 3) & 3]);
			}
			msg = _mm_add_epi32(w[g & 3],
					    _mm_loadu_si128((const __m128i *)&K[4 * g]));
			s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
			msg = _mm_shuffle_epi32(msg, 0x0E);
			s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
		}
		s0 = _mm_add_epi32(s0, save0);
		s1 = _mm_add_epi32(s1, save1);
		p += 64;
	}
	tmp = _mm_shuffle_epi32(s0, 0x1B);
	s1 = _mm_shuffle_epi32(s1, 0xB1);
	s0 = _mm_blend_epi16(tmp, s1, 0xF0);
	s1 = _mm_alignr_epi8(s1, tmp, 8);
	_mm_storeu_si128((__m128i *)&state[0], s0);
	_mm_storeu_si128((__m128i *)&state[4], s1);
}

int shim_sha256_accel_available(void)
{
	static int known = -1;
	unsigned a, b, c, d;

	if (known >= 0) {
		return known;
	}
	known = 0;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) &&
	    (c & bit_SSE4_1) && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
	    (b & bit_SHA)) {
		known = 1;
	}
	return known;
}

#else

static void blocks(uint32_t state[8], const uint8_t *p, size_t nblocks)
{
	(void)state;
	(void)p;
	(void)nblocks;
}

int shim_sha256_accel_available(void)
{
	return 0;
}

#endif

struct ctx {
	uint32_t h[8];
	uint8_t buf[64];
	size_t fill;
	uint64_t total;
};

static void init(struct ctx *c)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372,
					0xa54ff53a, 0x510e527f, 0x9b05688c,
					0x1f83d9ab, 0x5be0cd19 };

	memcpy(c->h, iv, sizeof(iv));
	c->fill = 0;
	c->total = 0;
}

static void update(struct ctx *c, const uint8_t *p, size_t n)
{
	c->total += n;
	if (c->fill > 0) {
		size_t take = 64 - c->fill < n ? 64 - c->fill : n;

		memcpy(c->buf + c->fill, p, take);
		c->fill += take;
		p += take;
		n -= take;
		if (c->fill < 64) {
			return;
		}
		blocks(c->h, c->buf, 1);
		c->fill = 0;
	}
	if (n >= 64) {
		blocks(c->h, p, n / 64);
		p += n / 64 * 64;
		n %= 64;
	}
	memcpy(c->buf, p, n);
	c->fill = n;
}

static void final(struct ctx *c, uint8_t out[32])
{
	uint64_t bits = c->total * 8;
	size_t i;

	c->buf[c->fill++] = 0x80;
	if (c->fill > 56) {
		memset(c->buf + c->fill, 0, 64 - c->fill);
		blocks(c->h, c->buf, 1);
		c->fill = 0;
	}
	memset(c->buf + c->fill, 0, 56 - c->fill);
	shim_put_u64(c->buf + 56, bits);
	blocks(c->h, c->buf, 1);
	for (i = 0; i < 8; i++) {
		shim_put_u32(out + 4 * i, c->h[i]);
	}
	shim_memzero(c, sizeof(*c));
}

int shim_sha256_accel(const uint8_t *msg, size_t len, uint8_t out[32])
{
	struct ctx c;

	if (!shim_sha256_accel_available()) {
		return SHIM_ENOTSUP;
	}
	init(&c);
	update(&c, msg, len);
	final(&c, out);
	return 0;
}

int shim_hmac_sha256_accel(const uint8_t *key, size_t key_len,
			   const uint8_t *msg, size_t len, uint8_t out[32])
{
	uint8_t k[64], pad[64], inner[32];
	struct ctx c;
	size_t i;

	if (!shim_sha256_accel_available()) {
		return SHIM_ENOTSUP;
	}
	memset(k, 0, sizeof(k));
	if (key_len > 64) {
		init(&c);
		update(&c, key, key_len);
		final(&c, k);
	} else if (key_len > 0) {
		memcpy(k, key, key_len);
	}
	for (i = 0; i < 64; i++) {
		pad[i] = k[i] ^ 0x36;
	}
	init(&c);
	update(&c, pad, 64);
	update(&c, msg, len);
	final(&c, inner);
	for (i = 0; i < 64; i++) {
		pad[i] = k[i] ^ 0x5c;
	}
	init(&c);
	update(&c, pad, 64);
	update(&c, inner, 32);
	final(&c, out);
	shim_memzero(k, sizeof(k));
	shim_memzero(pad, sizeof(pad));
	shim_memzero(inner, sizeof(inner));
	return 0;
}
