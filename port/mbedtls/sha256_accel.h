/*
 * SHA-256 and HMAC-SHA256 on the CPU's SHA instructions, where it has
 * them (x86-64 SHA-NI, detected at run time). Each returns SHIM_ENOTSUP
 * when they are not there: the caller then uses mbedTLS.
 */
#ifndef SHIM_PORT_SHA256_ACCEL_H
#define SHIM_PORT_SHA256_ACCEL_H

#include <stddef.h>
#include <stdint.h>

int shim_sha256_accel_available(void);
int shim_sha256_accel(const uint8_t *msg, size_t len, uint8_t out[32]);
int shim_hmac_sha256_accel(const uint8_t *key, size_t key_len,
			   const uint8_t *msg, size_t len, uint8_t out[32]);

#endif
