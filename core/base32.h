/*
 * RFC 4648 base32, as used for TOTP secrets.
 */
#ifndef SHIM_CORE_BASE32_H
#define SHIM_CORE_BASE32_H

#include <stddef.h>
#include <stdint.h>

/* Decodes base32 text. Letters of either case are accepted; spaces and
 * '=' padding at the end are ignored; any other character, a padding
 * character followed by data, or leftover bits that are not zero give
 * SHIM_EINVAL. On SHIM_ENOSPC *out_len is the size needed. Nothing is
 * promised about out on failure, and the caller wipes it. */
int shim_base32_decode(const char *in, size_t in_len, uint8_t *out,
		       size_t cap, size_t *out_len);

/* Encodes len bytes as upper-case base32 without padding and a NUL. cap
 * must be at least shim_base32_encoded_len(len) + 1. */
int shim_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap);

static inline size_t shim_base32_encoded_len(size_t len)
{
	return (len * 8 + 4) / 5;
}

#endif
