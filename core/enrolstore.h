/*
 * The sealed enrolment store: the technicians a unit accepts, their TOTP
 * secrets and the replay marks they carry, kept encrypted at rest.
 *
 * Two layers, both portable (no OS, no allocation; the caller owns every
 * buffer):
 *
 * The set, as text (what is sealed; never written anywhere in the clear):
 *
 *     shim-enrolment 1
 *     shim <shim_id>
 *     created <unix seconds>
 *     tech <id> <sha1|sha256|sha512> <digits> <period> <enrolled unix>
 *          <min_step> <base32 secret>          (one line, once per technician)
 *     end
 *
 *   min_step is a replay mark that travels with the technician: codes of
 *   time steps at or below it are refused wherever the set is restored
 *   (0: none). Lines end with "\n"; fields are separated by one space;
 *   anything else is refused with the line number.
 *
 * The container (docs/lifecycle.md, "Sealed enrolment store"):
 *
 *     header := "SHIMENRL" | u8 version (1) | u8 kind | u16 0 | u32 pt_len
 *     kind 1 (SHIM_ENROL_LOCAL, under the unit's storage key):
 *         header | nonce[12] | ct[pt_len] | tag[16]
 *         AAD = header
 *     kind 2 (SHIM_ENROL_TO_PUB, to a P-256 public key, e.g. the central
 *             enrolment-custody key or a replacement unit's identity):
 *         header | key_id[8] | eph_pub[65] | nonce[12] | ct | tag[16]
 *         key    = HKDF-SHA256(salt = eph_pub | recipient_pub,
 *                              ikm = ECDH x coordinate,
 *                              info = "shim enrolment v1")
 *         key_id = SHA-256(recipient_pub)[0..8)
 *         AAD    = header | key_id | eph_pub
 *   Integers are big-endian. A fresh random nonce (and, for kind 2, a
 *   fresh ephemeral key) is used for every seal.
 */
#ifndef SHIM_CORE_ENROLSTORE_H
#define SHIM_CORE_ENROLSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "gate.h"
#include "port.h"

#ifndef SHIM_ENROL_MAX
#define SHIM_ENROL_MAX 256 /* technicians in one set */
#endif
#define SHIM_ENROL_SHIM_ID_MAX 63
#define SHIM_ENROL_SECRET_MIN 10 /* bytes (80 bits) */

#define SHIM_ENROL_MAGIC "SHIMENRL"
#define SHIM_ENROL_VERSION 1
#define SHIM_ENROL_HDR_LEN 16
#define SHIM_ENROL_KEY_ID_LEN 8
#define SHIM_ENROL_LOCAL 1
#define SHIM_ENROL_TO_PUB 2
/* Bytes a sealed container adds to the text. */
#define SHIM_ENROL_LOCAL_OVERHEAD \
	(SHIM_ENROL_HDR_LEN + SHIM_GCM_NONCE_LEN + SHIM_GCM_TAG_LEN)
#define SHIM_ENROL_PUB_OVERHEAD                                       \
	(SHIM_ENROL_HDR_LEN + SHIM_ENROL_KEY_ID_LEN + SHIM_P256_PUB_LEN + \
	 SHIM_GCM_NONCE_LEN + SHIM_GCM_TAG_LEN)
/* Longest text line: "tech" + ID + algorithm + numbers + base32 of the
 * longest secret, with separators. */
#define SHIM_ENROL_LINE_MAX 320
/* Bound on the text of a full set: the readers' limit. */
#define SHIM_ENROL_TEXT_MAX (SHIM_ENROL_LINE_MAX * (SHIM_ENROL_MAX + 4))

struct shim_enrol_tech {
	char id[SHIM_TECH_ID_MAX + 1];
	uint8_t secret[SHIM_SECRET_MAX];
	uint8_t secret_len;
	enum shim_md md;
	uint8_t digits;
	uint32_t period;
	int64_t enrolled;  /* Unix seconds */
	uint64_t min_step; /* replay mark carried with the set; 0 = none */
};

struct shim_enrol_set {
	char shim_id[SHIM_ENROL_SHIM_ID_MAX + 1];
	int64_t created;
	uint32_t n;
	struct shim_enrol_tech t[SHIM_ENROL_MAX];
};

/* Writes the set as text into out. SHIM_ENOSPC when cap is short,
 * SHIM_EINVAL for a set that could not be read back (bad ID, secret or
 * parameters). */
int shim_enrol_format(const struct shim_enrol_set *s, char *out, size_t cap,
		      size_t *len);

/* Parses text into s (wiped first; wiped again on failure). *bad_line
 * (may be NULL) gets the 1-based line of the first problem.
 * @retval 0 parsed; SHIM_ECORRUPT malformed; SHIM_ENOTSUP other version. */
int shim_enrol_parse(const char *text, size_t len, struct shim_enrol_set *s,
		     size_t *bad_line);

/* Index of id in s, or -1. */
int shim_enrol_find(const struct shim_enrol_set *s, const char *id);

/* Removes entry i (wiping its secret). */
void shim_enrol_remove(struct shim_enrol_set *s, uint32_t i);

/* Seals text under key (kind 1). out needs len + SHIM_ENROL_LOCAL_OVERHEAD
 * bytes. */
int shim_enrol_seal_local(const struct shim_crypto_ops *c,
			  const struct shim_rng_ops *rng,
			  const uint8_t key[SHIM_AES256_KEY_LEN],
			  const uint8_t *text, size_t len, uint8_t *out,
			  size_t cap, size_t *out_len);

/* Seals text to recipient_pub (kind 2). out needs len +
 * SHIM_ENROL_PUB_OVERHEAD bytes. */
int shim_enrol_seal_to(const struct shim_crypto_ops *c,
		       const struct shim_rng_ops *rng,
		       const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		       const uint8_t *text, size_t len, uint8_t *out,
		       size_t cap, size_t *out_len);

/* The kind of a container (SHIM_ENROL_LOCAL or SHIM_ENROL_TO_PUB), or a
 * negative SHIM_E* code for one that is not well formed. */
int shim_enrol_kind(const uint8_t *in, size_t len);

/* Opens a kind 1 container. text needs the header's pt_len bytes.
 * SHIM_ECRYPTO: wrong key or altered bytes (no text is left behind). */
int shim_enrol_open_local(const struct shim_crypto_ops *c,
			  const uint8_t key[SHIM_AES256_KEY_LEN],
			  const uint8_t *in, size_t len, uint8_t *text,
			  size_t cap, size_t *text_len);

/* The ECDH of the recipient's private key with eph_pub (x coordinate):
 * a private key in a file, a TPM or a secure element. */
typedef int (*shim_enrol_ecdh_fn)(void *ctx,
				  const uint8_t eph_pub[SHIM_P256_PUB_LEN],
				  uint8_t shared[32]);

/* Opens a kind 2 container for the holder of my_pub's private key.
 * SHIM_EACCES when it was sealed to another key. */
int shim_enrol_open_with(const struct shim_crypto_ops *c,
			 const uint8_t my_pub[SHIM_P256_PUB_LEN],
			 shim_enrol_ecdh_fn ecdh, void *ecdh_ctx,
			 const uint8_t *in, size_t len, uint8_t *text,
			 size_t cap, size_t *text_len);

/* Wipes every secret in s and zeroes it. */
void shim_enrol_wipe(struct shim_enrol_set *s);

#endif
