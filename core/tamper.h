/*
 * Tamper latch, boot count and authorised reset tokens.
 *
 * The latch is the EMERGENCY_STOP memory of the shim. It lives in two
 * blobs of the store port:
 *   "boot"   : boot count and a random install identity, written at every
 *              start (the count rises by one per start);
 *   "tamper" : the latch (event, detail, time), the boot count mirror and
 *              the nonces of the reset tokens already used.
 * Both carry a magic, a version and a CRC, and, when the port has a device
 * identity key, an ECDSA signature by that key. Removing, truncating or
 * editing either blob while the other is there is itself tampering: the
 * latch is set with event "state_missing", "state_corrupt" or
 * "state_forged". Only the absence of both is a factory-fresh device
 * (boot count 1), which the central monitor sees as a boot count going
 * back.
 *
 * Every trip gets a latch identity, "<seq>-<boot>": a latch sequence
 * number that rises with every trip (persisted in the tamper record and
 * mirrored in the boot record, so removing one record cannot bring an old
 * number back) and the boot count of the start in which it tripped.
 *
 * A reset needs authority: a reset token signed by the reset authority
 * key (ECDSA P-256), bound to this shim ID and to the latch it clears,
 * short-lived and single-use, or the physical reset-key input held at
 * start. Whether the sensors still read tripped is for the caller to
 * check before it resets (the core cannot read them).
 */
#ifndef SHIM_CORE_TAMPER_H
#define SHIM_CORE_TAMPER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "port.h"

#define SHIM_TAMPER_BLOB_BOOT "boot"
#define SHIM_TAMPER_BLOB_STATE "tamper"

#define SHIM_TOKEN_ISSUER_MAX 64
#define SHIM_TOKEN_REASON_MAX 160
#define SHIM_TAMPER_EVENT_MAX 32
#define SHIM_TAMPER_DETAIL_MAX 128
#define SHIM_TAMPER_NONCE_LEN 16
#define SHIM_TAMPER_USED_NONCES 16
/* "<seq>-<boot>": two numbers of up to 15 digits each, and the NUL. */
#define SHIM_LATCH_ID_MAX 32
#define SHIM_LATCH_NUM_MAX 999999999999999ULL

/* Reset tokens. */
#define SHIM_TOKEN_PREFIX "SRT1."
#define SHIM_TOKEN_MAX 1200        /* longest token string accepted */
#define SHIM_TOKEN_PAYLOAD_MAX 640
#define SHIM_TOKEN_PURPOSE_RESET "tamper-reset"
#define SHIM_TOKEN_MAX_TTL 86400   /* seconds; longer-lived tokens are refused */
#define SHIM_TOKEN_CLOCK_SKEW 300  /* an issue time this far ahead is accepted */

struct shim_tamper {
	/* read-only for callers */
	uint64_t boot_count;
	int latched;
	int tripped_at_open;     /* 1 when open() itself latched (state gone) */
	char event[SHIM_TAMPER_EVENT_MAX];     /* what tripped, e.g. case_opened */
	char detail[SHIM_TAMPER_DETAIL_MAX];
	int64_t since_ns;        /* wall time of the trip */
	uint64_t latch_seq;      /* of the current (or last) latch; 0 none yet */
	uint64_t latch_boot;     /* boot count of the start it tripped in */
	uint32_t reset_count;
	/* the last reset, until reported (see shim_tamper_reset_event) */
	int reset_pending;
	char reset_method[12];   /* "token" or "reset_key" */
	char reset_by[SHIM_TOKEN_ISSUER_MAX];
	char reset_reason[SHIM_TOKEN_REASON_MAX];
	char reset_cleared[SHIM_TAMPER_EVENT_MAX];
	uint64_t reset_latch_seq;  /* identity of the latch that reset cleared */
	uint64_t reset_latch_boot;
	/* private */
	const struct shim_port *port;
	char shim_id[SHIM_SHIM_ID_MAX];
	uint8_t install_id[16];
	int64_t created_ns;
	int64_t last_reset_issued;
	struct {
		uint8_t nonce[SHIM_TAMPER_NONCE_LEN];
		int64_t expires;
	} used[SHIM_TAMPER_USED_NONCES];
	unsigned used_next;
	int sign_state;          /* the port signs and checks the blobs */
};

/*
 * Loads the latch and the boot record, counts this start (boot_count + 1)
 * and saves both. Missing or altered state latches (see above) and sets
 * tripped_at_open so the caller reports it. Returns 0, or a negative
 * SHIM_E* when the store fails; the latch is then set in memory anyway
 * (fail closed) with event "state_unreadable".
 */
int shim_tamper_open(struct shim_tamper *t, const struct shim_port *port,
		     const char *shim_id);

/* Loads and checks the state like shim_tamper_open() but neither counts
 * a start nor writes anything (offline tools: status, reset). */
int shim_tamper_load(struct shim_tamper *t, const struct shim_port *port,
		     const char *shim_id);

/* 1 while latched. */
static inline int shim_tamper_is_latched(const struct shim_tamper *t)
{
	return t->latched;
}

/*
 * Latches and persists. event is the sensor's event name (case_opened),
 * detail free text. A trip takes the next latch sequence number and the
 * current boot count as its identity. A second trip while latched keeps
 * the first event and identity. Returns 0 or the store error (the latch
 * is set in memory either way).
 */
int shim_tamper_trip(struct shim_tamper *t, const char *event,
		     const char *detail, int64_t wall_ns);

/* Writes the identity "<seq>-<boot>" of the current (or last) latch.
 * SHIM_ENOSPC when cap is too small. */
int shim_tamper_latch_id(const struct shim_tamper *t, char *buf, size_t cap);

/* Formats / parses a latch identity. The parser takes exactly the form the
 * formatter writes: both numbers 1..SHIM_LATCH_NUM_MAX, no leading zeros,
 * no signs or spaces; SHIM_EINVAL otherwise. */
int shim_latch_id_format(uint64_t seq, uint64_t boot, char *buf, size_t cap);
int shim_latch_id_parse(const char *s, uint64_t *seq, uint64_t *boot);

struct shim_reset_token {
	char purpose[24];
	char shim_id[SHIM_SHIM_ID_MAX];
	uint64_t latch_seq;      /* the latch it clears, "<seq>-<boot>" */
	uint64_t latch_boot;
	int64_t issued;          /* Unix seconds */
	int64_t expires;
	uint8_t nonce[SHIM_TAMPER_NONCE_LEN];
	char issuer[SHIM_TOKEN_ISSUER_MAX];
	char reason[SHIM_TOKEN_REASON_MAX];
	/* filled by the parser */
	char payload[SHIM_TOKEN_PAYLOAD_MAX];
	size_t payload_len;
	uint8_t sig[SHIM_P256_SIG_LEN];
};

/*
 * Token text: "SRT1." base64url(payload) "." base64url(r || s), where the
 * payload is the lines
 *     shim-reset-token 2
 *     purpose=tamper-reset
 *     shim=<shim id>
 *     latch=<seq>-<boot>
 *     issued=<unix seconds>
 *     expires=<unix seconds>
 *     nonce=<32 hex>
 *     issuer=<name>
 *     reason=<text>
 * each ending in LF, in this order, and the signature is ECDSA P-256 over
 * SHA-256(payload). IDs are [A-Za-z0-9._-]; issuer and reason printable,
 * no control characters.
 */

/* Parses a token string (surrounding white space allowed). Checks only the
 * form: SHIM_EINVAL for anything malformed, SHIM_ENOTSUP for a token of
 * payload format 1 (no latch binding), which is never accepted. */
int shim_token_parse(const char *s, size_t len, struct shim_reset_token *tok);

/* Writes the payload of tok (purpose, shim_id, latch, times, nonce,
 * issuer, reason set by the caller) into tok->payload. SHIM_EINVAL on a field the
 * parser would refuse. */
int shim_token_make_payload(struct shim_reset_token *tok);

/* Builds the token string from tok->payload and sig. */
int shim_token_format(const struct shim_reset_token *tok,
		      const uint8_t sig[SHIM_P256_SIG_LEN], char *out,
		      size_t cap, size_t *out_len);

/*
 * Checks a parsed token for this shim at now_s (Unix seconds):
 *   SHIM_ESIG       not signed by the authority key
 *   SHIM_ESTATE     no emergency stop is latched
 *   SHIM_EACCES     another shim, another purpose, or another latch
 *                   (why: "token is for another latch")
 *   SHIM_ETIMEDOUT  expired, not yet valid, or lifetime above the maximum
 *   SHIM_EEXIST     already used (or older than the last token used)
 * Does not change the state. why (may be NULL) gets a short reason.
 */
int shim_tamper_check_token(const struct shim_tamper *t,
			    const struct shim_reset_token *tok,
			    const uint8_t authority_pub[SHIM_P256_PUB_LEN],
			    int64_t now_s, const char **why);

/* Checks the token and, when it is good, clears the latch, remembers the
 * nonce and persists both records (so an authorised reset also repairs
 * state that was removed or damaged). Returns as shim_tamper_check_token,
 * or a store error (the latch then stays set). A refused token is not
 * spent. The caller checks the sensors first and refuses while one still
 * reads tripped. */
int shim_tamper_reset_token(struct shim_tamper *t,
			    const struct shim_reset_token *tok,
			    const uint8_t authority_pub[SHIM_P256_PUB_LEN],
			    int64_t now_s, const char **why);

/* Clears the latch on the physical reset key held at start. The caller
 * has read the key input; the reset is persisted and counted. */
int shim_tamper_reset_physical(struct shim_tamper *t, int64_t wall_ns);

/*
 * Event builders for the daemon (emit them through the event log):
 *   tamper          priority lane: event, detail, boot_count, latch
 *   emergency_stop  priority lane: reason "tamper:<event>", latch
 *   tamper_reset    signed: method, by (issuer or "reset_key"), reason,
 *                   the event that had latched and its latch identity. A reset is remembered
 *                   (reset_pending, persisted) until the daemon has
 *                   emitted this event and called shim_tamper_reset_reported,
 *                   so a reset made offline by shimctl is reported at the
 *                   next start.
 */
int shim_tamper_event(const struct shim_tamper *t, struct shim_event *ev,
		      int64_t wall_ns);
int shim_tamper_stop_event(const struct shim_tamper *t, struct shim_event *ev,
			   int64_t wall_ns);
/* sensor_fault (priority lane): the sensor's event name, what failed, and
 * the action taken ("stop" or "report", tamper.on_sensor_fault). */
int shim_tamper_fault_event(struct shim_event *ev, const char *sensor_event,
			    const char *detail, const char *action,
			    int64_t wall_ns);
int shim_tamper_reset_event(const struct shim_tamper *t,
			    struct shim_event *ev, int64_t wall_ns);
int shim_tamper_reset_reported(struct shim_tamper *t);

#endif
