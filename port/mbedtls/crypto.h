/*
 * The crypto operations of struct shim_crypto_ops over mbedTLS 2.28,
 * shared by every port that has mbedTLS (the Linux port links Debian's
 * libmbedcrypto, the firmware one built from Debian's source package).
 *
 * The port supplies what differs between homes: the random source (an
 * mbedTLS f_rng callback: getrandom(2) on Linux, a CTR-DRBG on an MCU)
 * and the device identity key, an mbedtls_ecp_keypair on P-256 that it
 * loaded (from a PEM file, from its storage) or NULL when there is none.
 */
#ifndef SHIM_PORT_MBEDTLS_CRYPTO_H
#define SHIM_PORT_MBEDTLS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

struct shim_mbedtls_crypto {
	/* mbedTLS random callback: 0 on success. Mandatory. */
	int (*f_rng)(void *rng_ctx, unsigned char *buf, size_t len);
	void *rng_ctx;
	/* mbedtls_ecp_keypair * (P-256) or NULL: identity_sign and
	 * identity_pub then return SHIM_ENOTSUP. Owned by the port. */
	void *identity;
};

/* Fills ops with the mbedTLS operations; ops->ctx = mc, which must
 * outlive the ops. */
void shim_mbedtls_crypto_ops(struct shim_crypto_ops *ops,
			     struct shim_mbedtls_crypto *mc);

#endif
