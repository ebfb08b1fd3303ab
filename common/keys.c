/*
 * P-256 key files with mbedTLS 2.28: generation, loading, ECDH.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ecdh.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "port_linux.h"
#include "util.h"

#define KEY_FILE_MAX 16384

struct shim_privkey {
	mbedtls_pk_context pk;
};

static int rng_cb(void *ctx, unsigned char *buf, size_t len)
{
	(void)ctx;
	return shim_linux_random(buf, len) == 0 ? 0 : -1;
}

static int point_out(const mbedtls_ecp_keypair *kp,
		     uint8_t pub[SHIM_P256_PUB_LEN])
{
	size_t olen = 0;

	if (kp->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
		return SHIM_EINVAL;
	}
	if (mbedtls_ecp_point_write_binary(&kp->grp, &kp->Q,
					   MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
					   pub, SHIM_P256_PUB_LEN) != 0 ||
	    olen != SHIM_P256_PUB_LEN) {
		return SHIM_EINVAL;
	}
	return 0;
}

static int pk_is_p256(mbedtls_pk_context *pk)
{
	return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
	       mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

int shim_keys_generate(const char *priv_path, const char *pub_path,
		       uint8_t pub[SHIM_P256_PUB_LEN], char *pub_pem)
{
	mbedtls_pk_context pk;
	unsigned char pem[1024];
	unsigned char ppem[SHIM_KEYS_PEM_MAX];
	uint8_t raw[SHIM_P256_PUB_LEN];
	struct stat st;
	int rc = SHIM_ECRYPTO;

	mbedtls_pk_init(&pk);
	if (lstat(priv_path, &st) == 0) {
		rc = SHIM_EEXIST;
		goto out;
	}
	if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(
					 MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
				rng_cb, NULL) != 0) {
		goto out;
	}
	if (mbedtls_pk_write_key_pem(&pk, pem, sizeof(pem)) != 0 ||
	    mbedtls_pk_write_pubkey_pem(&pk, ppem, sizeof(ppem)) != 0) {
		goto out;
	}
	rc = point_out(mbedtls_pk_ec(pk), raw);
	if (rc != 0) {
		goto out;
	}
	rc = shim_write_file_atomic(priv_path, pem, strlen((char *)pem), 0600);
	if (rc != 0) {
		goto out;
	}
	if (pub_path != NULL) {
		rc = shim_write_file_atomic(pub_path, ppem,
					    strlen((char *)ppem), 0644);
		if (rc != 0) {
			goto out;
		}
	}
	if (pub != NULL) {
		memcpy(pub, raw, sizeof(raw));
	}
	if (pub_pem != NULL) {
		memcpy(pub_pem, ppem, strlen((char *)ppem) + 1);
	}
out:
	shim_memzero(pem, sizeof(pem));
	mbedtls_pk_free(&pk);
	return rc;
}

/* Reads a PEM file into a NUL-terminated buffer (mbedTLS wants the NUL
 * counted in the length). */
static int read_pem(const char *path, unsigned flags, uint8_t **buf,
		    size_t *len)
{
	int rc = shim_read_file_opt(path, KEY_FILE_MAX, flags, buf, len, NULL);

	if (rc != 0) {
		return rc;
	}
	*len += 1;
	return 0;
}

static int load_public(const char *path, unsigned flags,
		       uint8_t pub[SHIM_P256_PUB_LEN])
{
	mbedtls_pk_context pk;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	mbedtls_pk_init(&pk);
	rc = read_pem(path, flags, &buf, &len);
	if (rc != 0) {
		goto out;
	}
	rc = SHIM_EINVAL;
	if (mbedtls_pk_parse_public_key(&pk, buf, len) != 0) {
		mbedtls_pk_free(&pk);
		mbedtls_pk_init(&pk);
		if (mbedtls_pk_parse_key(&pk, buf, len, NULL, 0) != 0) {
			goto out;
		}
	}
	if (!pk_is_p256(&pk)) {
		goto out;
	}
	rc = point_out(mbedtls_pk_ec(pk), pub);
out:
	if (buf != NULL) {
		shim_memzero(buf, len);
		free(buf);
	}
	mbedtls_pk_free(&pk);
	return rc;
}

int shim_keys_load_public(const char *path, uint8_t pub[SHIM_P256_PUB_LEN])
{
	return load_public(path, 0, pub);
}

int shim_keys_pub_pem(const uint8_t pub[SHIM_P256_PUB_LEN], char *out,
		      size_t cap)
{
	mbedtls_pk_context pk;
	mbedtls_ecp_keypair *kp;
	int rc = SHIM_EINVAL;

	mbedtls_pk_init(&pk);
	if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(
					 MBEDTLS_PK_ECKEY)) != 0) {
		goto out;
	}
	kp = mbedtls_pk_ec(pk);
	if (mbedtls_ecp_group_load(&kp->grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
	    mbedtls_ecp_point_read_binary(&kp->grp, &kp->Q, pub,
					  SHIM_P256_PUB_LEN) != 0 ||
	    mbedtls_ecp_check_pubkey(&kp->grp, &kp->Q) != 0) {
		goto out;
	}
	rc = mbedtls_pk_write_pubkey_pem(&pk, (unsigned char *)out, cap) == 0
		     ? 0
		     : SHIM_ENOSPC;
out:
	mbedtls_pk_free(&pk);
	return rc;
}

int shim_keys_load_private(const char *path, struct shim_privkey **out)
{
	struct shim_privkey *k = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = read_pem(path, 0, &buf, &len);
	if (rc != 0) {
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	mbedtls_pk_init(&k->pk);
	rc = SHIM_EINVAL;
	if (mbedtls_pk_parse_key(&k->pk, buf, len, NULL, 0) != 0 ||
	    !pk_is_p256(&k->pk)) {
		goto out;
	}
	*out = k;
	k = NULL; /* transferred */
	rc = 0;
out:
	if (buf != NULL) {
		shim_memzero(buf, len);
		free(buf);
	}
	shim_keys_free(k);
	return rc;
}

void shim_keys_free(struct shim_privkey *k)
{
	if (k == NULL) {
		return;
	}
	mbedtls_pk_free(&k->pk);
	shim_memzero(k, sizeof(*k));
	free(k);
}

void shim_keys_private_pub(const struct shim_privkey *k,
			   uint8_t pub[SHIM_P256_PUB_LEN])
{
	if (point_out(mbedtls_pk_ec(k->pk), pub) != 0) {
		memset(pub, 0, SHIM_P256_PUB_LEN);
	}
}

int shim_keys_ecdh(const struct shim_privkey *k,
		   const uint8_t peer_pub[SHIM_P256_PUB_LEN],
		   uint8_t shared[32])
{
	const mbedtls_ecp_keypair *kp = mbedtls_pk_ec(k->pk);
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q;
	mbedtls_mpi z;
	int rc = SHIM_ECRYPTO;

	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&q);
	mbedtls_mpi_init(&z);
	if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
	    mbedtls_ecp_point_read_binary(&grp, &q, peer_pub,
					  SHIM_P256_PUB_LEN) != 0 ||
	    mbedtls_ecp_check_pubkey(&grp, &q) != 0) {
		rc = SHIM_EINVAL;
		goto out;
	}
	if (mbedtls_ecdh_compute_shared(&grp, &z, &q, &kp->d, rng_cb, NULL) !=
		    0 ||
	    mbedtls_mpi_write_binary(&z, shared, 32) != 0) {
		goto out;
	}
	rc = 0;
out:
	mbedtls_mpi_free(&z);
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_group_free(&grp);
	return rc;
}

char *shim_keys_identity_path(const struct shim_config *cfg)
{
	return shim_config_path(cfg, "keys/identity.key");
}

char *shim_keys_recording_path(const struct shim_config *cfg)
{
	return shim_config_path(cfg, "keys/recording.key");
}

char *shim_keys_recording_pub_path(const struct shim_config *cfg)
{
	return shim_config_path(cfg, "keys/recording.pub");
}

static int ensure_keys_dir(const struct shim_config *cfg)
{
	char *dir = shim_config_path(cfg, "keys");
	int rc;

	if (dir == NULL) {
		return SHIM_ENOMEM;
	}
	rc = shim_mkdir_p(dir, 0700);
	free(dir);
	return rc;
}

int shim_keys_ensure_identity(const struct shim_config *cfg)
{
	char *path = NULL;
	struct stat st;
	int rc;

	rc = ensure_keys_dir(cfg);
	if (rc != 0) {
		return rc;
	}
	path = shim_keys_identity_path(cfg);
	if (path == NULL) {
		return SHIM_ENOMEM;
	}
	if (lstat(path, &st) == 0) {
		rc = 0;
	} else {
		rc = shim_keys_generate(path, NULL, NULL, NULL);
	}
	free(path);
	return rc;
}

int shim_keys_recording_public(const struct shim_config *cfg,
			       uint8_t pub[SHIM_P256_PUB_LEN], int *local)
{
	char *priv = NULL, *pubp = NULL;
	struct stat st;
	int rc;

	*local = 0;
	if (cfg->recording_public_key != NULL) {
		return shim_keys_load_public(cfg->recording_public_key, pub);
	}
	*local = 1;
	rc = ensure_keys_dir(cfg);
	if (rc != 0) {
		return rc;
	}
	priv = shim_keys_recording_path(cfg);
	pubp = shim_keys_recording_pub_path(cfg);
	if (priv == NULL || pubp == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	if (lstat(priv, &st) == 0) {
		/* under the storage root: never through a link */
		rc = load_public(priv, SHIM_READ_NOFOLLOW, pub);
	} else {
		rc = shim_keys_generate(priv, pubp, pub, NULL);
	}
out:
	free(priv);
	free(pubp);
	return rc;
}

int shim_sha256_file_hex(const char *path, char hex[65])
{
	mbedtls_sha256_context c;
	uint8_t buf[16384], d[32];
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts_ret(&c, 0);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			rc = shim_err_from_errno(errno);
			break;
		}
		mbedtls_sha256_update_ret(&c, buf, (size_t)n);
	}
	close(fd);
	mbedtls_sha256_finish_ret(&c, d);
	mbedtls_sha256_free(&c);
	/* The file may be the configuration with its TOTP secrets: what
	 * was read of it does not stay on the stack. */
	shim_memzero(buf, sizeof(buf));
	shim_memzero(&c, sizeof(c));
	if (rc != 0) {
		shim_memzero(d, sizeof(d));
		return rc;
	}
	shim_hex_encode(d, sizeof(d), hex);
	shim_memzero(d, sizeof(d));
	return 0;
}
