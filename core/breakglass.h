/*
 * Break-glass codes: offline, one-time, time-limited emergency access
 * (docs/breakglass.md has the runbook and the security argument).
 *
 * A code is 20 characters of Crockford base32 (0-9 A-Z without I L O U),
 * shown in four groups of five ("7K3QF-M2XNA-0RT9B-HC4WZ"). Input is
 * case-insensitive, '-' and blanks are ignored, and O, I, L are read as
 * 0, 1, 1. The first 19 characters carry 95 bits, most significant first:
 *
 *   version 1 | bound 1 | shim tag 6 | nonce 12 | issued 24 | ttl 11 | mac 40
 *
 *   version  0 (1 is reserved for a later format and refused);
 *   bound    1 when the code names a technician ID (it then enters the MAC);
 *   shim tag the low 6 bits of CRC-32(shim ID): tells a code for another
 *            shim apart from a forged one in the log (not a secret);
 *   nonce    random, so that two codes issued in one minute differ;
 *   issued   minutes since SHIM_BG_EPOCH (2025-01-01T00:00:00Z), ~31 years;
 *   ttl      minutes, 1..SHIM_BG_TTL_MAX (24 h);
 *   mac      the first 40 bits of HMAC-SHA256(K_shim, "shimd-bg-v1-code" 0
 *            || the 55 field bits in 7 bytes || u8 len || shim ID ||
 *            u8 len || technician ID or nothing).
 *
 * The 20th character is a Luhn mod 32 check over the other 19: it catches
 * every single-character typo and adjacent swap, so a mistyped code is
 * logged as such and not as a forgery.
 *
 * Keys: the central master M (32 random bytes) never leaves InfoSec. Each
 * shim holds only K_shim = HMAC-SHA256(M, "shimd-bg-v1-shim" 0 || shim ID),
 * which verifies (and could mint) that one shim's codes and nothing else.
 *
 * Single use: a code's mark (issued minute and nonce) is persisted through
 * the store port (blob SHIM_BG_STATE_NAME) before the gate opens; marks
 * are dropped once their code has expired for a day by the trusted floor.
 *
 * Nothing here allocates; keys are wiped by shim_bg_wipe().
 */
#ifndef SHIM_CORE_BREAKGLASS_H
#define SHIM_CORE_BREAKGLASS_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define SHIM_BG_CHARS 20        /* characters of a code, without '-' */
#define SHIM_BG_TEXT_LEN 23     /* the grouped form, without the NUL */
#define SHIM_BG_KEY_LEN 32
#define SHIM_BG_MAC_BITS 40
#define SHIM_BG_EPOCH 1735689600LL /* 2025-01-01T00:00:00Z */
#define SHIM_BG_TTL_MAX 1440u   /* minutes */
#define SHIM_BG_ISSUED_MAX 0xffffffu
#define SHIM_BG_NONCE_MAX 0xfffu
#define SHIM_BG_SERIAL_LEN 10   /* "IIIIII-NNN" hex, without the NUL */
#define SHIM_BG_ID_MAX 128      /* shim and technician IDs, bytes */
#define SHIM_BG_STATE_NAME "breakglass-used"
/* Marks kept at once: codes used within their lifetime plus a day. */
#ifndef SHIM_BG_USED_SLOTS
#define SHIM_BG_USED_SLOTS 64
#endif
/* Input lines whose code part (without blanks and '-') is at least this
 * long are break-glass attempts: a TOTP code has at most 8 digits. */
#define SHIM_BG_MIN_ATTEMPT 12
#define SHIM_BG_MAX_ATTEMPT 64

/* The decoded fields of a code. */
struct shim_bg_code {
	uint8_t version;
	uint8_t bound;
	uint8_t tag;
	uint16_t nonce;
	uint32_t issued;   /* minutes since SHIM_BG_EPOCH */
	uint16_t ttl;      /* minutes */
	uint8_t mac[5];
};

/* The zero value is an error: only SHIM_BG_OK opens the gate. */
enum shim_bg_outcome {
	SHIM_BG_ERROR = 0,     /* not verified (not configured, crypto) */
	SHIM_BG_OK,
	SHIM_BG_MISTYPED,      /* length, character or check character */
	SHIM_BG_BAD,           /* MAC, version or fields: a forgery */
	SHIM_BG_WRONG_SHIM,    /* the shim tag names another shim */
	SHIM_BG_EXPIRED,       /* past issued + ttl at the judged time */
	SHIM_BG_NOT_YET,       /* issued more than the skew after now */
	SHIM_BG_USED,          /* its mark is held (or it predates the marks) */
	SHIM_BG_STATE,         /* the marks are not loaded or not durable */
};

/* The verify key a shim holds (written by shimctl breakglass provision). */
struct shim_bg_key {
	char shim_id[SHIM_BG_ID_MAX + 1];
	uint8_t key[SHIM_BG_KEY_LEN];
	char key_id[17];       /* 16 hex: names the master it derives from */
	int loaded;
};

struct shim_bg_mark {
	uint32_t issued;       /* minutes; 0 with expires 0 = free slot */
	uint16_t nonce;
	uint32_t expires;      /* minutes since SHIM_BG_EPOCH */
};

/* Verifier state: the key, the marks and the ports. Caller-owned. */
struct shim_bg {
	struct shim_bg_key key;
	const struct shim_port *port;
	uint32_t skew;         /* seconds a code may be dated ahead of now */
	int state_ok;
	uint32_t not_before;   /* minutes: older codes count as used */
	struct shim_bg_mark marks[SHIM_BG_USED_SLOTS];
	uint8_t blob[16 + SHIM_BG_USED_SLOTS * 10 + 4];
};

/* The result of one verification. */
struct shim_bg_result {
	enum shim_bg_outcome outcome;
	struct shim_bg_code code;
	char serial[SHIM_BG_SERIAL_LEN + 1]; /* "IIIIII-NNN", once parsed */
	int64_t issued_s;      /* Unix seconds */
	int64_t expires_s;
	int64_t judged_s;      /* the time the lifetime was judged at */
	uint32_t remaining_s;  /* lifetime left at judged_s (OK) */
	int clock_trusted;     /* judged at a trusted wall clock */
};

/* ---- code format ------------------------------------------------------- */

/* Parses a code typed by a technician: case-insensitive, '-' and blanks
 * ignored, O/I/L read as 0/1/1. 0 and *out filled, or SHIM_EINVAL (a
 * character outside the alphabet, or not 20 of them) or SHIM_ECORRUPT
 * (the check character does not match); *out is zeroed on failure. */
int shim_bg_parse(const char *text, size_t len, struct shim_bg_code *out);

/* Encodes a code's fields as the grouped text (SHIM_BG_TEXT_LEN + 1
 * bytes with the NUL). SHIM_EINVAL for fields out of range. */
int shim_bg_format(const struct shim_bg_code *code,
		   char out[SHIM_BG_TEXT_LEN + 1]);

/* "IIIIII-NNN": the issued minute and nonce in hex, unique per shim. */
void shim_bg_serial(const struct shim_bg_code *code,
		    char out[SHIM_BG_SERIAL_LEN + 1]);

/* The shim tag of an ID (6 bits). */
uint8_t shim_bg_tag(const char *shim_id, size_t len);

/* ---- keys ---------------------------------------------------------------- */

/* K_shim from the master (both SHIM_BG_KEY_LEN bytes). */
int shim_bg_derive(const struct shim_crypto_ops *crypto,
		   const uint8_t master[SHIM_BG_KEY_LEN], const char *shim_id,
		   size_t id_len, uint8_t out[SHIM_BG_KEY_LEN]);

/* The 16-hex key ID of a master: HMAC-SHA256(M, "shimd-bg-v1-id"). */
int shim_bg_key_id(const struct shim_crypto_ops *crypto,
		   const uint8_t master[SHIM_BG_KEY_LEN], char out[17]);

/* The code's 40-bit MAC under a shim key. tech NULL or tech_len 0 for an
 * unbound code. */
int shim_bg_mac(const struct shim_crypto_ops *crypto,
		const uint8_t key[SHIM_BG_KEY_LEN], const char *shim_id,
		size_t shim_len, const char *tech, size_t tech_len,
		const struct shim_bg_code *code, uint8_t mac[5]);

/*
 * The verify-key file, text (0600):
 *   shimd-breakglass-verify-key v1
 *   shim <shim ID>
 *   key-id <16 hex>
 *   key <64 hex>
 * Parsed with bounds: 0 and *out loaded, else SHIM_ECORRUPT (*line set to
 * the 1-based line at fault, 0 for a missing line). The master file has
 * the same shape with the first line "shimd-breakglass-master v1" and no
 * shim line (shim_bg_master_parse).
 */
int shim_bg_key_parse(const char *text, size_t len, struct shim_bg_key *out,
		      unsigned *line);
int shim_bg_master_parse(const char *text, size_t len,
			 uint8_t master[SHIM_BG_KEY_LEN], unsigned *line);

/* ---- the verifier ----------------------------------------------------- */

/* Sets up a verifier over a loaded key and the port, and loads the marks.
 * shim_id must be the key's (SHIM_EINVAL otherwise: a key for another
 * shim). A missing blob is a first start and is saved empty; with
 * state_required (the unit ran before), the marks that could have been
 * lost are assumed spent: codes issued before floor_s count as used.
 * @retval 0, SHIM_EINVAL, or the store's error (SHIM_ECORRUPT, SHIM_EIO):
 * then every code is refused with SHIM_BG_STATE. */
int shim_bg_init(struct shim_bg *bg, const struct shim_bg_key *key,
		 const char *shim_id, const struct shim_port *port,
		 int state_required, int64_t floor_s);

/* Verifies code text for a claimed technician. judged_s is the time the
 * lifetime is judged at (the wall clock when trusted, else the latest time
 * known to have passed); trusted says which. On SHIM_BG_OK the mark is
 * durable. Failures are precise; the caller shows only "Auth fail". */
int shim_bg_verify(struct shim_bg *bg, const char *tech, size_t tech_len,
		   const char *text, size_t text_len, int64_t judged_s,
		   int trusted, struct shim_bg_result *res);

/* Takes back the mark of a verified code whose session could not open
 * (notifications not durable): the code can be used again. */
int shim_bg_unmark(struct shim_bg *bg, const struct shim_bg_result *res);

/* Encodes / decodes the marks blob (exposed for the fuzz harness). */
int shim_bg_state_decode(struct shim_bg *bg, const uint8_t *buf, size_t len);
int shim_bg_state_encode(struct shim_bg *bg, size_t *len);

/* "ok", "breakglass_mistyped", "breakglass_bad", ... */
const char *shim_bg_outcome_name(enum shim_bg_outcome o);

/* Wipes the key. */
void shim_bg_wipe(struct shim_bg *bg);

#endif
