/*
 * P-256 for the tamper tools: signing with a private key file (reset
 * tokens), SHA-256 helpers, and a verifier that keeps a parsed key for
 * many verifications (the monitor). Key files are made and read with
 * common/keys.h.
 */
#ifndef SHIM_COMMON_P256KEY_H
#define SHIM_COMMON_P256KEY_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

/* Signs a SHA-256 digest with the private key in path (raw r || s). */
int shim_p256_sign_with(const char *path, const uint8_t digest[32],
			uint8_t sig[SHIM_P256_SIG_LEN]);

/* SHA-256 of a buffer, and of a whole file as 64 hex characters. */
void shim_sha256(const uint8_t *buf, size_t len, uint8_t out[32]);

/*
 * A verifier holds one parsed public key. Verification is thread-safe
 * when shim_p256_verifier_threadsafe() says so (OpenSSL build).
 */
struct shim_p256_verifier;

struct shim_p256_verifier *shim_p256_verifier_new(
	const uint8_t pub[SHIM_P256_PUB_LEN]);
int shim_p256_verifier_verify(struct shim_p256_verifier *v,
			      const uint8_t digest[32],
			      const uint8_t sig[SHIM_P256_SIG_LEN]);
void shim_p256_verifier_free(struct shim_p256_verifier *v);

/*
 * Verifies many signatures at once (same rules as one by one: each item
 * gets rc 0 or SHIM_ESIG). With OpenSSL the inversions are shared across
 * the batch and a key used often gets its own precomputed table (about
 * 150 KiB), which together make a verification about twice as fast.
 * Thread-safe as shim_p256_verifier_threadsafe() says.
 */
struct shim_p256_item {
	struct shim_p256_verifier *v;
	uint8_t digest[32];
	uint8_t sig[SHIM_P256_SIG_LEN];
	int rc;
};

void shim_p256_verify_batch(struct shim_p256_item *items, size_t n);
int shim_p256_verifier_threadsafe(void);
const char *shim_p256_verifier_backend(void);

#endif
