/*
 * Crypto of the Linux port: the shared mbedTLS operations
 * (port/mbedtls/crypto.c) over getrandom(2), and the identity key loaded
 * from a PEM file.
 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>

#include "port_linux.h"
#include "util.h"

void shim__linux_crypto_ops(struct shim_linux_port *lp);

/* mbedTLS random callback over getrandom(2). */
static int rng_cb(void *ctx, unsigned char *buf, size_t len)
{
	(void)ctx;
	return shim_linux_random(buf, len) == 0 ? 0 : -1;
}

void shim__linux_crypto_ops(struct shim_linux_port *lp)
{
	lp->mbc.f_rng = rng_cb;
	lp->mbc.rng_ctx = NULL;
	lp->mbc.identity = NULL;
	shim_mbedtls_crypto_ops(&lp->port.crypto, &lp->mbc);
}

int shim_linux_port_load_identity(struct shim_linux_port *lp, const char *path)
{
	mbedtls_pk_context *pk;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	pk = calloc(1, sizeof(*pk));
	if (pk == NULL) {
		return SHIM_ENOMEM;
	}
	mbedtls_pk_init(pk);
	/* The identity key lives in the storage: never read through a
	 * link planted there. */
	rc = shim_read_file_opt(path, 16384, SHIM_READ_NOFOLLOW, &buf, &len,
				NULL);
	if (rc != 0) {
		free(pk);
		return rc;
	}
	/* mbedTLS wants a PEM's NUL counted in the length. */
	rc = mbedtls_pk_parse_key(pk, buf, len + 1, NULL, 0);
	shim_memzero(buf, len);
	free(buf);
	if (rc != 0) {
		mbedtls_pk_free(pk);
		free(pk);
		return SHIM_ECRYPTO;
	}
	if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY) ||
	    mbedtls_pk_ec(*pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
		mbedtls_pk_free(pk);
		free(pk);
		return SHIM_EINVAL;
	}
	if (lp->identity != NULL) {
		lp->mbc.identity = NULL;
		mbedtls_pk_free(lp->identity);
		free(lp->identity);
	}
	lp->identity = pk;
	lp->mbc.identity = mbedtls_pk_ec(*pk);
	return 0;
}

void shim_linux_port_fini(struct shim_linux_port *lp)
{
	if (lp->identity != NULL) {
		mbedtls_pk_free(lp->identity);
		free(lp->identity);
		lp->identity = NULL;
	}
	lp->mbc.identity = NULL;
	free(lp->state_dir);
	lp->state_dir = NULL;
	free(lp->storage_key);
	lp->storage_key = NULL;
}
