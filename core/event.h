/*
 * The event model: what the shim reports to its audit log and the SIEM.
 *
 * An event has a name (DESIGN.md contract 7: boot, auth_ok, auth_fail,
 * lockout, session_start, session_end, heartbeat, tamper, emergency_stop,
 * storage_low, shutting_down, ...), a severity (syslog numbering), a time
 * and up to SHIM_EVENT_MAX_FIELDS key/value fields. The shim ID and the
 * sequence number are stamped by the sink when it accepts the event.
 * Events are plain values: caller-allocated, no pointers inside.
 */
#ifndef SHIM_CORE_EVENT_H
#define SHIM_CORE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define SHIM_EVENT_NAME_MAX 32
#define SHIM_EVENT_KEY_MAX 32
#define SHIM_SHIM_ID_MAX 64

/*
 * Build-time sizes: struct shim_event is about MAX_FIELDS * (KEY_MAX +
 * VALUE_MAX) bytes (7 KiB with the Linux defaults). A microcontroller
 * build may lower them; a value must still hold a signature (128 hex
 * characters and the NUL), and a signed event needs room for its fields
 * and "sig": 15 for a signed shutting_down (core/heartbeat.c checks).
 */
#ifndef SHIM_EVENT_VALUE_MAX
#define SHIM_EVENT_VALUE_MAX 256
#endif
#ifndef SHIM_EVENT_MAX_FIELDS
#define SHIM_EVENT_MAX_FIELDS 24
#endif

enum shim_severity {
	SHIM_SEV_EMERG = 0,
	SHIM_SEV_ALERT = 1,
	SHIM_SEV_CRIT = 2,
	SHIM_SEV_ERR = 3,
	SHIM_SEV_WARNING = 4,
	SHIM_SEV_NOTICE = 5,
	SHIM_SEV_INFO = 6,
	SHIM_SEV_DEBUG = 7,
};

struct shim_event_field {
	char key[SHIM_EVENT_KEY_MAX];
	char value[SHIM_EVENT_VALUE_MAX];
};

struct shim_event {
	char name[SHIM_EVENT_NAME_MAX];
	enum shim_severity severity;
	int64_t wall_ns;
	/* stamped by the sink */
	char shim_id[SHIM_SHIM_ID_MAX];
	uint64_t seq;
	int priority;           /* 1 = priority lane (tamper, emergency_stop, break-glass) */
	int sign;               /* 1 = the sink signs it with the identity key */
	size_t nfields;
	struct shim_event_field fields[SHIM_EVENT_MAX_FIELDS];
};

/* Starts an event. Names longer than the limit are refused (SHIM_EINVAL).
 * priority is set for tamper, emergency_stop and break_glass* names. */
int shim_event_init(struct shim_event *ev, const char *name,
		    enum shim_severity sev, int64_t wall_ns);

/* Adds a field. Keys are [A-Za-z0-9_], values any bytes but NUL (cut
 * at SHIM_EVENT_VALUE_MAX - 1 and marked with a trailing "..."). Returns
 * SHIM_ENOSPC when the event is full, SHIM_EINVAL on a bad key. */
int shim_event_add(struct shim_event *ev, const char *key, const char *value);
int shim_event_add_i64(struct shim_event *ev, const char *key, int64_t v);
int shim_event_add_u64(struct shim_event *ev, const char *key, uint64_t v);

/* Value of a field, or NULL. */
const char *shim_event_get(const struct shim_event *ev, const char *key);

/*
 * Signed events (heartbeat, shutting_down): the signature covers the
 * canonical text
 *     "<name>\nshim_id=<shim_id>\nseq=<seq>\n<key>=<value>\n..."
 * with every field in order except "sig", hashed with SHA-256 and signed
 * with ECDSA P-256 by the identity key. The signature is added as the last
 * field "sig", 128 lower-case hex characters (r || s). A SIEM reader
 * rebuilds the event from the structured data (shim_id, seq, then the
 * fields in order) and verifies it with shim_event_verify().
 */
#define SHIM_EVENT_CANON_MAX \
	(SHIM_EVENT_NAME_MAX + SHIM_SHIM_ID_MAX + 48 + \
	 SHIM_EVENT_MAX_FIELDS * (SHIM_EVENT_KEY_MAX + SHIM_EVENT_VALUE_MAX + 2))

/* Writes the canonical text into buf; SHIM_ENOSPC if cap is short. */
int shim_event_canonical(const struct shim_event *ev, char *buf, size_t cap,
			 size_t *len);

struct shim_crypto_ops;

/*
 * Signing and verifying build the canonical text in scratch, which the
 * caller owns (on its stack, static, or a buffer it shares with other
 * work): nothing is kept between calls, so both are reentrant. cap =
 * SHIM_EVENT_CANON_MAX always suffices; with less, an event whose text
 * does not fit fails to sign (SHIM_ENOSPC) or to verify (SHIM_ESIG). The
 * text holds nothing secret.
 */

/* Adds the "sig" field (replacing one already there). */
int shim_event_sign(struct shim_event *ev,
		    const struct shim_crypto_ops *crypto, char *scratch,
		    size_t cap);

/* 0 when "sig" verifies under pub, SHIM_ESIG when not or missing. */
int shim_event_verify(const struct shim_event *ev, const uint8_t pub[65],
		      const struct shim_crypto_ops *crypto, char *scratch,
		      size_t cap);

/* The raw signature (r || s) from the "sig" field: 0, or SHIM_ESIG when
 * the field is missing or not 128 hex characters. For verifiers that
 * check signatures their own way (in batches, say). */
int shim_event_sig(const struct shim_event *ev, uint8_t sig[64]);

#endif
