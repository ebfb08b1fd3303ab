/*
 * AES-256-GCM (96-bit nonce, 128-bit tag) on the CPU's AES and carry-less
 * multiply instructions (x86-64 AES-NI and PCLMULQDQ, detected at run
 * time). mbedTLS 2.28 uses AES-NI one block at a time and multiplies in
 * GF(2^128) per block through a generic path; the recorder seals every
 * recorded byte, so this is where its time went. Counter blocks are
 * encrypted eight at a time, and GHASH takes four blocks a step. Elsewhere, or on a CPU without the
 * instructions, the functions say SHIM_ENOTSUP and the caller uses
 * mbedTLS. tests/unit/test_gcm_accel.c checks both against each other.
 */
#include "gcm_accel.h"

#include <string.h>

#include "err.h"
#include "util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("aes,pclmul,sse4.1,ssse3")))

int shim_gcm_accel_available(void)
{
	return __builtin_cpu_supports("aes") &&
	       __builtin_cpu_supports("pclmul") &&
	       __builtin_cpu_supports("sse4.1") &&
	       __builtin_cpu_supports("ssse3");
}

TARGET static __m128i expand_even(__m128i k, __m128i assist)
{
	__m128i t = _mm_slli_si128(k, 4);

	assist = _mm_shuffle_epi32(assist, 0xff);
	k = _mm_xor_si128(k, t);
	t = _mm_slli_si128(t, 4);
	k = _mm_xor_si128(k, t);
	t = _mm_slli_si128(t, 4);
	k = _mm_xor_si128(k, t);
	return _mm_xor_si128(k, assist);
}

TARGET static __m128i expand_odd(__m128i prev_even, __m128i k)
{
	__m128i assist = _mm_shuffle_epi32(
		_mm_aeskeygenassist_si128(prev_even, 0x00), 0xaa);
	__m128i t = _mm_slli_si128(k, 4);

	k = _mm_xor_si128(k, t);
	t = _mm_slli_si128(t, 4);
	k = _mm_xor_si128(k, t);
	t = _mm_slli_si128(t, 4);
	k = _mm_xor_si128(k, t);
	return _mm_xor_si128(k, assist);
}

#define EVEN(i, rcon) \
	rk[i] = expand_even(rk[(i) - 2], _mm_aeskeygenassist_si128(rk[(i) - 1], rcon))
#define ODD(i) rk[i] = expand_odd(rk[(i) - 1], rk[(i) - 2])

TARGET static void key_schedule(const uint8_t key[32], __m128i rk[15])
{
	rk[0] = _mm_loadu_si128((const __m128i *)key);
	rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
	EVEN(2, 0x01);
	ODD(3);
	EVEN(4, 0x02);
	ODD(5);
	EVEN(6, 0x04);
	ODD(7);
	EVEN(8, 0x08);
	ODD(9);
	EVEN(10, 0x10);
	ODD(11);
	EVEN(12, 0x20);
	ODD(13);
	EVEN(14, 0x40);
}

TARGET static __m128i aes(const __m128i rk[15], __m128i x)
{
	int r;

	x = _mm_xor_si128(x, rk[0]);
	for (r = 1; r < 14; r++) {
		x = _mm_aesenc_si128(x, rk[r]);
	}
	return _mm_aesenclast_si128(x, rk[14]);
}

/* Eight counter blocks at once: the AES unit is pipelined, and eight
 * rounds in flight hide its latency. */
TARGET static void aes8(const __m128i rk[15], __m128i x[8])
{
	int r, i;

	for (i = 0; i < 8; i++) {
		x[i] = _mm_xor_si128(x[i], rk[0]);
	}
	for (r = 1; r < 14; r++) {
		for (i = 0; i < 8; i++) {
			x[i] = _mm_aesenc_si128(x[i], rk[r]);
		}
	}
	for (i = 0; i < 8; i++) {
		x[i] = _mm_aesenclast_si128(x[i], rk[14]);
	}
}

/* Multiplication in GF(2^128) of byte-reversed operands: a 256-bit
 * carry-less product, shifted left by one (the bit-reflected form), then
 * reduced modulo x^128 + x^7 + x^2 + x + 1. The shift and the reduction
 * are linear, so products can be summed first and reduced once. */
TARGET static void clmul256(__m128i a, __m128i b, __m128i *lo, __m128i *hi)
{
	__m128i l = _mm_clmulepi64_si128(a, b, 0x00);
	__m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10),
				    _mm_clmulepi64_si128(a, b, 0x01));
	__m128i h = _mm_clmulepi64_si128(a, b, 0x11);

	*lo = _mm_xor_si128(l, _mm_slli_si128(mid, 8));
	*hi = _mm_xor_si128(h, _mm_srli_si128(mid, 8));
}

TARGET static __m128i reduce(__m128i lo, __m128i hi)
{
	__m128i t7, t8, t9, t2, t4, t5;

	/* << 1 across the 256 bits */
	t7 = _mm_srli_epi32(lo, 31);
	t8 = _mm_srli_epi32(hi, 31);
	lo = _mm_slli_epi32(lo, 1);
	hi = _mm_slli_epi32(hi, 1);
	t9 = _mm_srli_si128(t7, 12);
	t8 = _mm_slli_si128(t8, 4);
	t7 = _mm_slli_si128(t7, 4);
	lo = _mm_or_si128(lo, t7);
	hi = _mm_or_si128(hi, t8);
	hi = _mm_or_si128(hi, t9);
	/* reduction, first phase */
	t7 = _mm_slli_epi32(lo, 31);
	t8 = _mm_slli_epi32(lo, 30);
	t9 = _mm_slli_epi32(lo, 25);
	t7 = _mm_xor_si128(t7, t8);
	t7 = _mm_xor_si128(t7, t9);
	t8 = _mm_srli_si128(t7, 4);
	t7 = _mm_slli_si128(t7, 12);
	lo = _mm_xor_si128(lo, t7);
	/* second phase */
	t2 = _mm_srli_epi32(lo, 1);
	t4 = _mm_srli_epi32(lo, 2);
	t5 = _mm_srli_epi32(lo, 7);
	t2 = _mm_xor_si128(t2, t4);
	t2 = _mm_xor_si128(t2, t5);
	t2 = _mm_xor_si128(t2, t8);
	lo = _mm_xor_si128(lo, t2);
	return _mm_xor_si128(hi, lo);
}

TARGET static __m128i gfmul(__m128i a, __m128i b)
{
	__m128i lo, hi;

	clmul256(a, b, &lo, &hi);
	return reduce(lo, hi);
}

struct gcm {
	__m128i rk[15];
	__m128i h[4];   /* byte-reversed hash key H, H^2, H^3, H^4 */
	__m128i x;      /* byte-reversed GHASH state */
	__m128i bswap;
	uint8_t j0[16];
};

TARGET static void ghash_bytes(struct gcm *g, const uint8_t *p, size_t n)
{
	uint8_t last[16];
	__m128i lo, hi, l, h, blk[4];
	int k;

	/* Four blocks a step: (X + B0) H^4 + B1 H^3 + B2 H^2 + B3 H, one
	 * reduction, no product waiting on the one before. */
	for (; n >= 64; p += 64, n -= 64) {
		for (k = 0; k < 4; k++) {
			blk[k] = _mm_shuffle_epi8(
				_mm_loadu_si128((const __m128i *)(p + 16 * k)),
				g->bswap);
		}
		clmul256(_mm_xor_si128(g->x, blk[0]), g->h[3], &lo, &hi);
		for (k = 1; k < 4; k++) {
			clmul256(blk[k], g->h[3 - k], &l, &h);
			lo = _mm_xor_si128(lo, l);
			hi = _mm_xor_si128(hi, h);
		}
		g->x = reduce(lo, hi);
	}
	for (; n >= 16; p += 16, n -= 16) {
		__m128i b = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p),
					     g->bswap);

		g->x = gfmul(_mm_xor_si128(g->x, b), g->h[0]);
	}
	if (n > 0) {
		memset(last, 0, sizeof(last));
		memcpy(last, p, n);
		g->x = gfmul(_mm_xor_si128(g->x, _mm_shuffle_epi8(
			_mm_loadu_si128((const __m128i *)last), g->bswap)), g->h[0]);
	}
}

TARGET static void gcm_start(struct gcm *g, const uint8_t key[32],
			     const uint8_t nonce[12], const uint8_t *aad,
			     size_t aad_len)
{
	g->bswap = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
				14, 15);
	key_schedule(key, g->rk);
	g->h[0] = _mm_shuffle_epi8(aes(g->rk, _mm_setzero_si128()), g->bswap);
	g->h[1] = gfmul(g->h[0], g->h[0]);
	g->h[2] = gfmul(g->h[1], g->h[0]);
	g->h[3] = gfmul(g->h[2], g->h[0]);
	g->x = _mm_setzero_si128();
	memcpy(g->j0, nonce, 12);
	shim_put_u32(g->j0 + 12, 1);
	ghash_bytes(g, aad, aad_len);
}

/* out = in XOR keystream from counter 2 on (in may equal out). The
 * counter block is kept byte-reversed in a register, so that its 32-bit
 * counter is lane 0 and inc32 is one addition (wrapping in its lane, as
 * GCM's inc32 does); it is reversed back for each block. */
TARGET static void ctr(struct gcm *g, const uint8_t *in, uint8_t *out,
		       size_t len)
{
	uint8_t ks[128];
	__m128i rev, x[8];
	const __m128i one = _mm_set_epi32(0, 0, 0, 1);
	size_t i, n;
	int k;

	rev = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)g->j0),
			       g->bswap);
	rev = _mm_add_epi32(rev, one); /* counter 2 */
	while (len > 0) {
		for (k = 0; k < 8; k++) {
			x[k] = _mm_shuffle_epi8(rev, g->bswap);
			rev = _mm_add_epi32(rev, one);
		}
		aes8(g->rk, x);
		n = len < 128 ? len : 128;
		if (n == 128) {
			for (k = 0; k < 8; k++) {
				__m128i d = _mm_loadu_si128((const __m128i *)(in + 16 * k));

				_mm_storeu_si128((__m128i *)(out + 16 * k),
						 _mm_xor_si128(d, x[k]));
			}
		} else {
			for (k = 0; k < 8; k++) {
				_mm_storeu_si128((__m128i *)(ks + 16 * k), x[k]);
			}
			for (i = 0; i < n; i++) {
				out[i] = in[i] ^ ks[i];
			}
		}
		in += n;
		out += n;
		len -= n;
	}
	shim_memzero(ks, sizeof(ks));
}

TARGET static void gcm_tag(struct gcm *g, size_t aad_len, size_t len,
			   uint8_t tag[16])
{
	uint8_t lens[16];
	__m128i s;

	shim_put_u64(lens, (uint64_t)aad_len * 8);
	shim_put_u64(lens + 8, (uint64_t)len * 8);
	ghash_bytes(g, lens, 16);
	s = _mm_shuffle_epi8(g->x, g->bswap);
	s = _mm_xor_si128(s, aes(g->rk, _mm_loadu_si128((const __m128i *)g->j0)));
	_mm_storeu_si128((__m128i *)tag, s);
}

TARGET static void gcm_wipe(struct gcm *g)
{
	shim_memzero(g, sizeof(*g));
}

TARGET int shim_gcm_accel_seal(const uint8_t key[32], const uint8_t nonce[12],
			       const uint8_t *aad, size_t aad_len,
			       const uint8_t *pt, size_t len, uint8_t *ct,
			       uint8_t tag[16])
{
	struct gcm g;

	if (!shim_gcm_accel_available() || (uint64_t)len > (1ULL << 36) - 64) {
		return SHIM_ENOTSUP;
	}
	gcm_start(&g, key, nonce, aad, aad_len);
	ctr(&g, pt, ct, len);
	ghash_bytes(&g, ct, len);
	gcm_tag(&g, aad_len, len, tag);
	gcm_wipe(&g);
	return 0;
}

TARGET int shim_gcm_accel_open(const uint8_t key[32], const uint8_t nonce[12],
			       const uint8_t *aad, size_t aad_len,
			       const uint8_t *ct, size_t len,
			       const uint8_t tag[16], uint8_t *pt)
{
	struct gcm g;
	uint8_t want[16];
	int ok;

	if (!shim_gcm_accel_available() || (uint64_t)len > (1ULL << 36) - 64) {
		return SHIM_ENOTSUP;
	}
	/* The tag first: no plaintext is made from bytes that fail it. */
	gcm_start(&g, key, nonce, aad, aad_len);
	ghash_bytes(&g, ct, len);
	gcm_tag(&g, aad_len, len, want);
	ok = shim_ct_equal(want, tag, 16);
	if (ok) {
		ctr(&g, ct, pt, len);
	}
	shim_memzero(want, sizeof(want));
	gcm_wipe(&g);
	return ok ? 0 : SHIM_ECRYPTO;
}

#else

int shim_gcm_accel_available(void)
{
	return 0;
}

int shim_gcm_accel_seal(const uint8_t key[32], const uint8_t nonce[12],
			const uint8_t *aad, size_t aad_len, const uint8_t *pt,
			size_t len, uint8_t *ct, uint8_t tag[16])
{
	(void)key;
	(void)nonce;
	(void)aad;
	(void)aad_len;
	(void)pt;
	(void)len;
	(void)ct;
	(void)tag;
	return SHIM_ENOTSUP;
}

int shim_gcm_accel_open(const uint8_t key[32], const uint8_t nonce[12],
			const uint8_t *aad, size_t aad_len, const uint8_t *ct,
			size_t len, const uint8_t tag[16], uint8_t *pt)
{
	(void)key;
	(void)nonce;
	(void)aad;
	(void)aad_len;
	(void)ct;
	(void)len;
	(void)tag;
	(void)pt;
	return SHIM_ENOTSUP;
}

#endif
