#include <string.h>

#include "util.h"
#include "port.h"

void shim_memzero(void *p, size_t len)
{
#if defined(__GNUC__) || defined(__clang__)
	/* memset at full speed, then a barrier that tells the compiler the
	 * zeros are read: the store cannot be dropped as dead. */
	if (len > 0) {
		memset(p, 0, len);
		__asm__ __volatile__("" : : "r"(p) : "memory");
	}
#else
	volatile uint8_t *v = (volatile uint8_t *)p;

	while (len-- > 0) {
		*v++ = 0;
	}
#endif
}

int shim_ct_equal(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = (const volatile uint8_t *)a;
	const volatile uint8_t *y = (const volatile uint8_t *)b;
	volatile uint8_t acc = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		acc |= (uint8_t)(x[i] ^ y[i]);
	}
	/* Map 0 -> 1 and 1..255 -> 0 without a data-dependent branch. */
	return (int)(1 & (((unsigned)acc - 1) >> 8));
}

uint32_t shim_crc32(uint32_t crc, const uint8_t *buf, size_t len)
{
	size_t i;
	int k;

	crc = ~crc;
	for (i = 0; i < len; i++) {
		crc ^= buf[i];
		for (k = 0; k < 8; k++) {
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
		}
	}
	return ~crc;
}

void shim_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int shim_hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

size_t shim_md_len(enum shim_md md)
{
	switch (md) {
	case SHIM_MD_SHA1:
		return 20;
	case SHIM_MD_SHA256:
		return 32;
	case SHIM_MD_SHA512:
		return 64;
	default:
		return 0;
	}
}
