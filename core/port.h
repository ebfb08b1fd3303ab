/*
 * Port interfaces: everything the portable core needs from its home.
 *
 * The core never calls the operating system. Time, randomness, crypto,
 * durable storage and the event sink come in through the small operation
 * tables below; the serial lines, the recorder and the tamper latch
 * through the session controller's (controller.h). Each table carries a context
 * pointer that is passed back to every operation. A port fills the tables
 * once at start (port/linux/ for Linux; an MCU port supplies its own).
 *
 * Every operation returns 0 on success or a negative SHIM_E* code, unless
 * its comment says otherwise. Mandatory operations must be set; optional
 * ones may be NULL, and the core then treats the feature as SHIM_ENOTSUP.
 */
#ifndef SHIM_CORE_PORT_H
#define SHIM_CORE_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* ---- clock ------------------------------------------------------------ */

struct shim_clock_ops {
	/* UTC wall time, nanoseconds since the Unix epoch. Mandatory. */
	int64_t (*wall_ns)(void *ctx);
	/* Monotonic time in nanoseconds, arbitrary origin. Mandatory. */
	int64_t (*mono_ns)(void *ctx);
	void *ctx;
};

/* ---- randomness ------------------------------------------------------- */

struct shim_rng_ops {
	/* Fill buf with len bytes from a cryptographically secure source. */
	int (*fill)(void *ctx, uint8_t *buf, size_t len);
	void *ctx;
};

/* ---- crypto ----------------------------------------------------------- */

enum shim_md {
	SHIM_MD_SHA1 = 0,
	SHIM_MD_SHA256 = 1,
	SHIM_MD_SHA512 = 2,
};

#define SHIM_MD_MAX_LEN 64
#define SHIM_P256_PUB_LEN 65 /* uncompressed point: 0x04 || X || Y */
#define SHIM_P256_SIG_LEN 64 /* raw r || s */
#define SHIM_AES256_KEY_LEN 32
#define SHIM_GCM_NONCE_LEN 12
#define SHIM_GCM_TAG_LEN 16

/* Returns the digest length of md, or 0 for an unknown value. */
size_t shim_md_len(enum shim_md md);

struct shim_crypto_ops {
	/* HMAC(md, key, msg); out must hold shim_md_len(md) bytes. Mandatory. */
	int (*hmac)(void *ctx, enum shim_md md, const uint8_t *key,
		    size_t key_len, const uint8_t *msg, size_t msg_len,
		    uint8_t *out);
	/* Plain digest of msg; out must hold shim_md_len(md) bytes. */
	int (*hash)(void *ctx, enum shim_md md, const uint8_t *msg,
		    size_t msg_len, uint8_t *out);
	/* AES-256-GCM. ct may equal pt. Open returns SHIM_ECRYPTO on a bad tag
	 * and leaves no plaintext behind. */
	int (*aead_seal)(void *ctx, const uint8_t key[SHIM_AES256_KEY_LEN],
			 const uint8_t nonce[SHIM_GCM_NONCE_LEN],
			 const uint8_t *aad, size_t aad_len, const uint8_t *pt,
			 size_t len, uint8_t *ct, uint8_t tag[SHIM_GCM_TAG_LEN]);
	int (*aead_open)(void *ctx, const uint8_t key[SHIM_AES256_KEY_LEN],
			 const uint8_t nonce[SHIM_GCM_NONCE_LEN],
			 const uint8_t *aad, size_t aad_len, const uint8_t *ct,
			 size_t len, const uint8_t tag[SHIM_GCM_TAG_LEN],
			 uint8_t *pt);
	/* Ephemeral-static ECDH on P-256: makes a fresh key pair, returns its
	 * public half and the shared secret with peer_pub (x coordinate). */
	int (*ecdh_ephemeral)(void *ctx,
			      const uint8_t peer_pub[SHIM_P256_PUB_LEN],
			      uint8_t eph_pub[SHIM_P256_PUB_LEN],
			      uint8_t shared[32]);
	/* Signs a SHA-256 digest with the device identity key (which may live
	 * in a secure element and never leave it). Optional. */
	int (*identity_sign)(void *ctx, const uint8_t digest[32],
			     uint8_t sig[SHIM_P256_SIG_LEN]);
	/* Public half of the device identity key. Optional. */
	int (*identity_pub)(void *ctx, uint8_t pub[SHIM_P256_PUB_LEN]);
	/* Verifies an ECDSA P-256 signature over a SHA-256 digest.
	 * Returns 0 when it verifies, SHIM_ESIG when it does not. */
	int (*verify)(void *ctx, const uint8_t pub[SHIM_P256_PUB_LEN],
		      const uint8_t digest[32],
		      const uint8_t sig[SHIM_P256_SIG_LEN]);
	/* CRC-32 (IEEE 802.3) of buf, the same as shim_crc32(0, buf, len),
	 * on the platform's own unit or instructions (every recorded byte
	 * goes through it). Optional: NULL means core's tables. */
	uint32_t (*crc32)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx;
};

/* ---- durable small-state storage -------------------------------------- */

struct shim_store_ops {
	/* Reads the blob called name into buf. SHIM_ENOENT when it does not
	 * exist, SHIM_ENOSPC (with *len set to the size) when cap is short. */
	int (*load)(void *ctx, const char *name, uint8_t *buf, size_t cap,
		    size_t *len);
	/* Replaces the blob atomically and durably: after a power cut either
	 * the old or the new content is found, never a mix. */
	int (*save)(void *ctx, const char *name, const uint8_t *buf,
		    size_t len);
	void *ctx;
};

/* ---- serial line settings ---------------------------------------------- */

/* The lines themselves reach the core through the session controller's
 * io table (controller.h): write, flush, BREAK, presence and loss, fed
 * by the port's loop. */

enum shim_parity {
	SHIM_PARITY_NONE = 0,
	SHIM_PARITY_EVEN,
	SHIM_PARITY_ODD,
};

enum shim_flow {
	SHIM_FLOW_NONE = 0,
	SHIM_FLOW_RTSCTS,
	SHIM_FLOW_XONXOFF,
};

enum shim_presence {
	SHIM_PRESENCE_NONE = 0, /* pty hang-up only */
	SHIM_PRESENCE_DCD,
	SHIM_PRESENCE_DSR,
};

struct shim_serial_cfg {
	uint32_t baud;     /* 300 .. 921600 */
	uint8_t data_bits; /* 7 or 8 */
	uint8_t stop_bits; /* 1 or 2 */
	enum shim_parity parity;
	enum shim_flow flow;
	enum shim_presence presence;
};

/* ---- event sink ------------------------------------------------------- */

struct shim_event;

struct shim_event_sink_ops {
	/* Takes an event for durable delivery (audit log, spool, SIEM),
	 * stamping it with the shim ID and sequence number on its own copy.
	 * Must not block the data path. */
	int (*emit)(void *ctx, const struct shim_event *ev);
	void *ctx;
};

/* ---- key provider ----------------------------------------------------- */

struct shim_keyprov_ops {
	/* The device storage key (AES-256) that seals the enrolment store
	 * (enrolstore.h): a 0600 key file in the Linux port; on a board, a
	 * key held in (or unwrapped by) a TPM or a secure element such as
	 * the ATECC608B. SHIM_ENOENT when the unit has none (not
	 * provisioned). Optional. */
	int (*storage_key)(void *ctx, uint8_t key[SHIM_AES256_KEY_LEN]);
	void *ctx;
};

/* ---- the whole port ---------------------------------------------------- */

struct shim_port {
	struct shim_clock_ops clock;
	struct shim_rng_ops rng;
	struct shim_crypto_ops crypto;
	struct shim_store_ops store;
	struct shim_keyprov_ops keys;
};

#endif
