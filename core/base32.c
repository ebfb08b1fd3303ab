/*
 * RFC 4648 base32. The decoder maps characters without table lookups
 * indexed by secret data, so decoding a secret leaks nothing through the
 * cache; errors are collected and reported once at the end.
 */
#include "base32.h"
#include "err.h"

/* Returns the 5-bit value of c, or -1. Branch-free on the character. */
static int b32_value(unsigned char c)
{
	int v = -1;
	unsigned upper = (unsigned)c & ~0x20u; /* fold lower case */
	int is_alpha = (int)(((upper - 'A') & 0xffffu) < 26u);
	int is_digit = (int)((((unsigned)c - '2') & 0xffffu) < 6u);

	v += is_alpha * ((int)(upper - 'A') + 1);
	v += is_digit * ((int)((unsigned)c - '2') + 26 + 1);
	return v;
}

int shim_base32_decode(const char *in, size_t in_len, uint8_t *out,
		       size_t cap, size_t *out_len)
{
	size_t i, nbits = 0, n = 0, nchars = 0, needed;
	uint32_t acc = 0;
	int bad = 0, seen_pad = 0;

	*out_len = 0;
	for (i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == ' ') {
			continue;
		}
		if (c == '=') {
			seen_pad = 1;
			continue;
		}
		if (seen_pad || b32_value(c) < 0) {
			return SHIM_EINVAL;
		}
		nchars++;
	}
	needed = nchars * 5 / 8;
	/* Lengths that leave 1, 3 or 6 characters in the last group cannot
	 * come from whole bytes. */
	switch (nchars % 8) {
	case 1:
	case 3:
	case 6:
		return SHIM_EINVAL;
	default:
		break;
	}
	if (needed > cap) {
		*out_len = needed;
		return SHIM_ENOSPC;
	}
	for (i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == ' ' || c == '=') {
			continue;
		}
		v = b32_value(c);
		acc = (acc << 5) | (uint32_t)(v & 31);
		nbits += 5;
		if (nbits >= 8) {
			nbits -= 8;
			out[n++] = (uint8_t)(acc >> nbits);
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	bad |= (int)(acc & ((1u << nbits) - 1u));
	acc = 0;
	if (bad) {
		return SHIM_EINVAL;
	}
	*out_len = n;
	return 0;
}

int shim_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	size_t i, n = 0, nbits = 0;
	uint32_t acc = 0;

	if (cap < shim_base32_encoded_len(len) + 1) {
		return SHIM_ENOSPC;
	}
	for (i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		nbits += 8;
		while (nbits >= 5) {
			nbits -= 5;
			out[n++] = alphabet[(acc >> nbits) & 31];
		}
	}
	if (nbits > 0) {
		out[n++] = alphabet[(acc << (5 - nbits)) & 31];
	}
	out[n] = '\0';
	return 0;
}
