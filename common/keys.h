/*
 * Key files: P-256 key pairs in PEM (mbedTLS), for the device identity
 * and the recording key.
 *
 * Under the storage root:
 *     keys/identity.key    device identity private key (0600)
 *     keys/recording.key   local-custody recording private key (0600)
 *     keys/recording.pub   its public half
 */
#ifndef SHIM_COMMON_KEYS_H
#define SHIM_COMMON_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "port.h"

#define SHIM_KEYS_PEM_MAX 512

/* Generates a P-256 key pair. The private key is written as PEM to
 * priv_path (0600, atomically; an existing file is refused with
 * SHIM_EEXIST); the public key to pub_path when it is not NULL. pub (may
 * be NULL) receives the raw point, pub_pem (may be NULL, SHIM_KEYS_PEM_MAX
 * bytes) the public PEM text. */
int shim_keys_generate(const char *priv_path, const char *pub_path,
		       uint8_t pub[SHIM_P256_PUB_LEN], char *pub_pem);

/* Loads a P-256 public key from a PEM file holding either a public key or
 * a private key. SHIM_ENOENT when missing, SHIM_EINVAL when it is not a
 * P-256 key. */
int shim_keys_load_public(const char *path, uint8_t pub[SHIM_P256_PUB_LEN]);

/* Writes the public PEM text for a raw point. */
int shim_keys_pub_pem(const uint8_t pub[SHIM_P256_PUB_LEN], char *out,
		      size_t cap);

/* A private key loaded for opening recordings (shimctl only). */
struct shim_privkey;

int shim_keys_load_private(const char *path, struct shim_privkey **out);
void shim_keys_free(struct shim_privkey *k);
void shim_keys_private_pub(const struct shim_privkey *k,
			   uint8_t pub[SHIM_P256_PUB_LEN]);
/* ECDH: x coordinate of d * peer_pub. */
int shim_keys_ecdh(const struct shim_privkey *k,
		   const uint8_t peer_pub[SHIM_P256_PUB_LEN],
		   uint8_t shared[32]);

/* Paths under the storage root (malloc'd). */
char *shim_keys_identity_path(const struct shim_config *cfg);
char *shim_keys_recording_path(const struct shim_config *cfg);
char *shim_keys_recording_pub_path(const struct shim_config *cfg);

/* Creates <storage_root>/keys/identity.key (0600) when it is missing. */
int shim_keys_ensure_identity(const struct shim_config *cfg);

/* The recording public key: from recording.public_key when set, else the
 * local-custody pair under the storage root (created when missing; *local
 * is then set to 1). */
int shim_keys_recording_public(const struct shim_config *cfg,
			       uint8_t pub[SHIM_P256_PUB_LEN], int *local);

/* Hex SHA-256 of a file's contents (boot integrity report). */
int shim_sha256_file_hex(const char *path, char hex[65]);

#endif
