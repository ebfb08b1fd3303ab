/*
 * AES-256-GCM (12-byte nonce, 16-byte tag) on the CPU's AES and
 * carry-less multiply instructions, where it has them (x86-64 AES-NI and
 * PCLMULQDQ, detected at run time). Each returns SHIM_ENOTSUP when they
 * are not there: the caller then uses mbedTLS. Open checks the tag before
 * it writes any plaintext (SHIM_ECRYPTO on a bad tag).
 */
#ifndef SHIM_PORT_GCM_ACCEL_H
#define SHIM_PORT_GCM_ACCEL_H

#include <stddef.h>
#include <stdint.h>

int shim_gcm_accel_available(void);
int shim_gcm_accel_seal(const uint8_t key[32], const uint8_t nonce[12],
			const uint8_t *aad, size_t aad_len, const uint8_t *pt,
			size_t len, uint8_t *ct, uint8_t tag[16]);
int shim_gcm_accel_open(const uint8_t key[32], const uint8_t nonce[12],
			const uint8_t *aad, size_t aad_len, const uint8_t *ct,
			size_t len, const uint8_t tag[16], uint8_t *pt);

#endif
