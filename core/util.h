/*
 * Small helpers for secrets: wiping and constant-time comparison.
 */
#ifndef SHIM_CORE_UTIL_H
#define SHIM_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Overwrites len bytes at p with zeros in a way the compiler cannot drop. */
void shim_memzero(void *p, size_t len);

/* Compares len bytes in time that depends only on len. Returns 1 when
 * equal, 0 otherwise. */
int shim_ct_equal(const void *a, const void *b, size_t len);

/* Big-endian loads and stores. */
static inline void shim_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void shim_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void shim_put_u64(uint8_t *p, uint64_t v)
{
	shim_put_u32(p, (uint32_t)(v >> 32));
	shim_put_u32(p + 4, (uint32_t)v);
}

static inline uint16_t shim_get_u16(const uint8_t *p)
{
	return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static inline uint32_t shim_get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t shim_get_u64(const uint8_t *p)
{
	return ((uint64_t)shim_get_u32(p) << 32) | shim_get_u32(p + 4);
}

/* Writes len bytes as 2*len lower-case hex characters and a NUL into out
 * (which must hold 2 * len + 1 bytes). */
void shim_hex_encode(const uint8_t *in, size_t len, char *out);

/* Value of one hexadecimal digit (either case), or -1. */
int shim_hexval(char c);

/* CRC-32 (IEEE 802.3, as zlib) over buf, continuing from crc (start at 0). */
uint32_t shim_crc32(uint32_t crc, const uint8_t *buf, size_t len);

#endif
