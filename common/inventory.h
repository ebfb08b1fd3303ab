/*
 * The signed inventory record: a unit's provenance, written when it is
 * provisioned and signed by the provisioning authority, so that the
 * SOC's view of the fleet starts from identities someone vouched for.
 *
 * The record is text, one "key value" per line in a fixed order, ending
 * with the authority's signature (docs/lifecycle.md, "Inventory record"):
 *
 *   shim-inventory 1
 *   serial SN-0042
 *   shim_id pump-ward3-01
 *   identity_pub 04...            (130 hex: the uncompressed P-256 point)
 *   recording_key sha256:...      (of the recording public key's point)
 *   software 0.1.0
 *   binary sha256:...             (of the shimd executable)
 *   build deployed                (or factory)
 *   provisioned 2026-12-02T19:40:00Z
 *   operator Jo Bloggs
 *   authority sha256:...          (of the authority public key's point)
 *   signature ...                 (128 hex: P-256 r || s)
 *
 * The signature covers the SHA-256 of every byte before the "signature"
 * line. The parser takes nothing else: no other keys, no blank lines, no
 * CR, printable ASCII only, every line and the whole record bounded.
 */
#ifndef SHIM_COMMON_INVENTORY_H
#define SHIM_COMMON_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define SHIM_INV_VERSION 1
#define SHIM_INV_MAX 2048        /* bytes of a whole record */
#define SHIM_INV_ID_MAX 63       /* serial, shim ID */
#define SHIM_INV_TEXT_MAX 127    /* software version, operator */
#define SHIM_INV_DIGEST_LEN 32

enum shim_inv_build {
	SHIM_INV_BUILD_UNKNOWN = 0,  /* zero value: not a valid record */
	SHIM_INV_BUILD_DEPLOYED,
	SHIM_INV_BUILD_FACTORY,
};

struct shim_inventory {
	char serial[SHIM_INV_ID_MAX + 1];
	char shim_id[SHIM_INV_ID_MAX + 1];
	uint8_t identity_pub[SHIM_P256_PUB_LEN];
	uint8_t recording_key[SHIM_INV_DIGEST_LEN];
	char software[SHIM_INV_TEXT_MAX + 1];
	uint8_t binary[SHIM_INV_DIGEST_LEN];
	enum shim_inv_build build;
	int64_t provisioned;         /* Unix seconds, UTC */
	char op[SHIM_INV_TEXT_MAX + 1];
	uint8_t authority[SHIM_INV_DIGEST_LEN];
	/* Set by shim_inv_parse: */
	int is_signed;
	uint8_t sig[SHIM_P256_SIG_LEN];
	uint8_t digest[32];          /* SHA-256 of the signed part */
};

/* Writes the record without its signature line into out (cap bytes, NUL
 * terminated); *len gets its length. SHIM_EINVAL for a field that the
 * parser would refuse, SHIM_ENOSPC when out is too small. */
int shim_inv_format(const struct shim_inventory *r, char *out, size_t cap,
		    size_t *len);

/* Parses a record, signed or not (a record without its signature line is
 * what shim_inv_format writes). On error returns SHIM_EINVAL and, when
 * line is not NULL, sets *line (1-based) and *why (a static message). The
 * signature is not checked here: see shim_inv_verify. */
int shim_inv_parse(const char *buf, size_t len, struct shim_inventory *r,
		   int *line, const char **why);

/* Checks a parsed record against the authority's public key: it must be
 * signed, name that authority, and the signature must verify. 0, or
 * SHIM_ESIG (unsigned, another authority, or a bad signature). */
int shim_inv_verify(const struct shim_inventory *r,
		    const uint8_t authority_pub[SHIM_P256_PUB_LEN]);

/* The fingerprint used in records: SHA-256 of a public key's raw point. */
void shim_inv_key_digest(const uint8_t pub[SHIM_P256_PUB_LEN],
			 uint8_t out[SHIM_INV_DIGEST_LEN]);

const char *shim_inv_build_name(enum shim_inv_build b);

/* 1 when s is a valid serial or shim ID for a record (1-63 of A-Z a-z
 * 0-9 . _ : -), and when s is valid free text (operator, version). */
int shim_inv_id_ok(const char *s);
int shim_inv_text_ok(const char *s);

/*
 * The decommission record: written by `shimctl decommission` and signed
 * with the unit's identity key just before the key is destroyed, so the
 * SOC can tell a unit that was retired from one that went silent. Same
 * syntax as the inventory record:
 *
 *   shim-decommission 1
 *   serial SN-0042                (from the unit's inventory record, or unknown)
 *   shim_id pump-ward3-01
 *   identity_pub 04...
 *   decommissioned 2026-12-02T20:00:00Z
 *   operator Jo Bloggs
 *   undelivered_events 0          (abandoned with --abandon-undelivered)
 *   undelivered_recordings 0
 *   signature ...                 (the identity key's, r || s)
 */
struct shim_decommission {
	char serial[SHIM_INV_ID_MAX + 1];
	char shim_id[SHIM_INV_ID_MAX + 1];
	uint8_t identity_pub[SHIM_P256_PUB_LEN];
	int64_t when;
	char op[SHIM_INV_TEXT_MAX + 1];
	uint64_t undelivered_events;
	uint64_t undelivered_recordings;
	int is_signed;
	uint8_t sig[SHIM_P256_SIG_LEN];
	uint8_t digest[32];
};

int shim_decom_format(const struct shim_decommission *d, char *out,
		      size_t cap, size_t *len);
int shim_decom_parse(const char *buf, size_t len, struct shim_decommission *d,
		     int *line, const char **why);
/* 0 when d is signed by the identity it names and that identity is pub;
 * SHIM_ESIG otherwise. */
int shim_decom_verify(const struct shim_decommission *d,
		      const uint8_t pub[SHIM_P256_PUB_LEN]);

#endif
