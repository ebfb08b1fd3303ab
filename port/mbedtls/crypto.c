/*
 * struct shim_crypto_ops over mbedTLS 2.28: HMAC and digests through the
 * md layer, AES-256-GCM, ephemeral ECDH and ECDSA on P-256. Nothing here
 * depends on the operating system: randomness and the identity key come
 * from the port (crypto.h).
 */
#include <string.h>

#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>

#include "crypto.h"
#include "crc32_accel.h"
#include "gcm_accel.h"
#include "sha256_accel.h"

static const mbedtls_md_info_t *md_info(enum shim_md md)
{
	switch (md) {
	case SHIM_MD_SHA1:
		return mbedtls_md_info_from_type(MBEDTLS_MD_SHA1);
	case SHIM_MD_SHA256:
		return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	case SHIM_MD_SHA512:
		return mbedtls_md_info_from_type(MBEDTLS_MD_SHA512);
	default:
		return NULL;
	}
}

static int c_hmac(void *ctx, enum shim_md md, const uint8_t *key,
		  size_t key_len, const uint8_t *msg, size_t msg_len,
		  uint8_t *out)
{
	const mbedtls_md_info_t *info = md_info(md);

	(void)ctx;
	if (info == NULL) {
		return SHIM_EINVAL;
	}
	if (md == SHIM_MD_SHA256 &&
	    shim_hmac_sha256_accel(key, key_len, msg, msg_len, out) == 0) {
		return 0;
	}
	if (mbedtls_md_hmac(info, key, key_len, msg, msg_len, out) != 0) {
		return SHIM_ECRYPTO;
	}
	return 0;
}

static int c_hash(void *ctx, enum shim_md md, const uint8_t *msg,
		  size_t msg_len, uint8_t *out)
{
	const mbedtls_md_info_t *info = md_info(md);

	(void)ctx;
	if (info == NULL) {
		return SHIM_EINVAL;
	}
	if (md == SHIM_MD_SHA256 && shim_sha256_accel(msg, msg_len, out) == 0) {
		return 0;
	}
	return mbedtls_md(info, msg, msg_len, out) == 0 ? 0 : SHIM_ECRYPTO;
}

static int c_seal(void *ctx, const uint8_t key[SHIM_AES256_KEY_LEN],
		  const uint8_t nonce[SHIM_GCM_NONCE_LEN], const uint8_t *aad,
		  size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
		  uint8_t tag[SHIM_GCM_TAG_LEN])
{
	mbedtls_gcm_context gcm;
	int rc = SHIM_ECRYPTO;

	(void)ctx;
	rc = shim_gcm_accel_seal(key, nonce, aad, aad_len, pt, len, ct, tag);
	if (rc != SHIM_ENOTSUP) {
		return rc;
	}
	rc = SHIM_ECRYPTO;
	mbedtls_gcm_init(&gcm);
	if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) != 0) {
		goto out;
	}
	if (mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce,
				      SHIM_GCM_NONCE_LEN, aad, aad_len, pt, ct,
				      SHIM_GCM_TAG_LEN, tag) != 0) {
		goto out;
	}
	rc = 0;
out:
	mbedtls_gcm_free(&gcm);
	return rc;
}

static int c_open(void *ctx, const uint8_t key[SHIM_AES256_KEY_LEN],
		  const uint8_t nonce[SHIM_GCM_NONCE_LEN], const uint8_t *aad,
		  size_t aad_len, const uint8_t *ct, size_t len,
		  const uint8_t tag[SHIM_GCM_TAG_LEN], uint8_t *pt)
{
	mbedtls_gcm_context gcm;
	int rc = SHIM_ECRYPTO;

	(void)ctx;
	rc = shim_gcm_accel_open(key, nonce, aad, aad_len, ct, len, tag, pt);
	if (rc != SHIM_ENOTSUP) {
		return rc;
	}
	rc = SHIM_ECRYPTO;
	mbedtls_gcm_init(&gcm);
	if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) != 0) {
		goto out;
	}
	/* mbedtls_gcm_auth_decrypt wipes the output on a bad tag. */
	if (mbedtls_gcm_auth_decrypt(&gcm, len, nonce, SHIM_GCM_NONCE_LEN, aad,
				     aad_len, tag, SHIM_GCM_TAG_LEN, ct,
				     pt) != 0) {
		goto out;
	}
	rc = 0;
out:
	mbedtls_gcm_free(&gcm);
	return rc;
}

static int c_ecdh_ephemeral(void *ctx, const uint8_t peer_pub[SHIM_P256_PUB_LEN],
			    uint8_t eph_pub[SHIM_P256_PUB_LEN],
			    uint8_t shared[32])
{
	struct shim_mbedtls_crypto *mc = ctx;
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q, peer;
	mbedtls_mpi d, z;
	size_t olen;
	int rc = SHIM_ECRYPTO;

	if (mc == NULL || mc->f_rng == NULL) {
		return SHIM_EINVAL;
	}
	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&q);
	mbedtls_ecp_point_init(&peer);
	mbedtls_mpi_init(&d);
	mbedtls_mpi_init(&z);
	if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
	    mbedtls_ecp_point_read_binary(&grp, &peer, peer_pub,
					  SHIM_P256_PUB_LEN) != 0 ||
	    mbedtls_ecp_check_pubkey(&grp, &peer) != 0) {
		rc = SHIM_EINVAL;
		goto out;
	}
	if (mbedtls_ecdh_gen_public(&grp, &d, &q, mc->f_rng,
				    mc->rng_ctx) != 0 ||
	    mbedtls_ecdh_compute_shared(&grp, &z, &peer, &d, mc->f_rng,
					mc->rng_ctx) != 0 ||
	    mbedtls_ecp_point_write_binary(&grp, &q,
					   MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
					   eph_pub, SHIM_P256_PUB_LEN) != 0 ||
	    olen != SHIM_P256_PUB_LEN ||
	    mbedtls_mpi_write_binary(&z, shared, 32) != 0) {
		goto out;
	}
	rc = 0;
out:
	/* mbedtls_mpi_free zeroes the limbs: d and z leave nothing behind. */
	mbedtls_ecp_group_free(&grp);
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_point_free(&peer);
	mbedtls_mpi_free(&d);
	mbedtls_mpi_free(&z);
	return rc;
}

static int c_identity_sign(void *ctx, const uint8_t digest[32],
			   uint8_t sig[SHIM_P256_SIG_LEN])
{
	struct shim_mbedtls_crypto *mc = ctx;
	mbedtls_ecp_keypair *kp;
	mbedtls_mpi r, s;
	int rc = SHIM_ECRYPTO;

	if (mc == NULL || mc->identity == NULL) {
		return SHIM_ENOTSUP;
	}
	if (mc->f_rng == NULL) {
		return SHIM_EINVAL;
	}
	kp = mc->identity;
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	if (mbedtls_ecdsa_sign(&kp->grp, &r, &s, &kp->d, digest, 32, mc->f_rng,
			       mc->rng_ctx) != 0 ||
	    mbedtls_mpi_write_binary(&r, sig, 32) != 0 ||
	    mbedtls_mpi_write_binary(&s, sig + 32, 32) != 0) {
		goto out;
	}
	rc = 0;
out:
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return rc;
}

static int c_identity_pub(void *ctx, uint8_t pub[SHIM_P256_PUB_LEN])
{
	struct shim_mbedtls_crypto *mc = ctx;
	mbedtls_ecp_keypair *kp;
	size_t olen;

	if (mc == NULL || mc->identity == NULL) {
		return SHIM_ENOTSUP;
	}
	kp = mc->identity;
	if (mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q,
					   MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
					   pub, SHIM_P256_PUB_LEN) != 0 ||
	    olen != SHIM_P256_PUB_LEN) {
		return SHIM_ECRYPTO;
	}
	return 0;
}

static int c_verify(void *ctx, const uint8_t pub[SHIM_P256_PUB_LEN],
		    const uint8_t digest[32], const uint8_t sig[SHIM_P256_SIG_LEN])
{
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q;
	mbedtls_mpi r, s;
	int rc = SHIM_ESIG;

	(void)ctx;
	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&q);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
	    mbedtls_ecp_point_read_binary(&grp, &q, pub, SHIM_P256_PUB_LEN) != 0 ||
	    mbedtls_ecp_check_pubkey(&grp, &q) != 0 ||
	    mbedtls_mpi_read_binary(&r, sig, 32) != 0 ||
	    mbedtls_mpi_read_binary(&s, sig + 32, 32) != 0) {
		goto out;
	}
	if (mbedtls_ecdsa_verify(&grp, digest, 32, &q, &r, &s) == 0) {
		rc = 0;
	}
out:
	mbedtls_ecp_group_free(&grp);
	mbedtls_ecp_point_free(&q);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return rc;
}

static uint32_t c_crc32(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	return shim_crc32_accel(buf, len);
}

void shim_mbedtls_crypto_ops(struct shim_crypto_ops *ops,
			     struct shim_mbedtls_crypto *mc)
{
	ops->hmac = c_hmac;
	ops->hash = c_hash;
	ops->aead_seal = c_seal;
	ops->aead_open = c_open;
	ops->ecdh_ephemeral = c_ecdh_ephemeral;
	ops->identity_sign = c_identity_sign;
	ops->identity_pub = c_identity_pub;
	ops->verify = c_verify;
	ops->crc32 = shim_crc32_accel_available() ? c_crc32 : NULL;
	ops->ctx = mc;
}
