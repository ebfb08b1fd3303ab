/*
 * The null port: every operation of core/port.h as a stub. See
 * port_null.h. Each comment says what the real operation must do; the
 * contracts themselves are in core/port.h.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "port_null.h"

/* ---- clock ------------------------------------------------------------ */

/*
 * UTC wall time in nanoseconds since the Unix epoch. On a board: a
 * battery-backed RTC (the STM32 RTC, a DS3231 over I2C) read at start and
 * advanced by a monotonic counter in between; never a value that starts
 * at 0 on every boot. 0 here reads as "before the build date", so the
 * gate refuses every code (core/clock.h: the clock is not trusted).
 */
static int64_t null_wall_ns(void *ctx)
{
	(void)ctx;
	return 0;
}

/*
 * Monotonic nanoseconds from any origin, never going back: SysTick or a
 * free-running timer widened to 64 bits (count the wraps in its interrupt).
 * Deadlines (idle timeout, lockouts, heartbeats) are measured on it.
 */
static int64_t null_mono_ns(void *ctx)
{
	(void)ctx;
	return 0;
}

/* ---- randomness ------------------------------------------------------- */

/*
 * len bytes from a cryptographically secure source: the MCU's TRNG (the
 * STM32 RNG peripheral, the ESP32's esp_fill_random with the RF on) or a
 * CTR-DRBG seeded from it, checking the peripheral's health flags. Never
 * a time- or counter-based seed. Session IDs, recording keys and nonces
 * come from here.
 */
static int null_rng_fill(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return SHIM_ENOTSUP;
}

/* ---- crypto ----------------------------------------------------------- */

/*
 * HMAC with SHA-1, SHA-256 or SHA-512 (TOTP): mbedtls_md_hmac() from
 * mbedTLS built for the target, or a secure element holding the secrets.
 * out receives shim_md_len(md) bytes. Mandatory: without it the gate does
 * not start.
 */
static int null_hmac(void *ctx, enum shim_md md, const uint8_t *key,
		     size_t key_len, const uint8_t *msg, size_t msg_len,
		     uint8_t *out)
{
	(void)ctx;
	(void)md;
	(void)key;
	(void)key_len;
	(void)msg;
	(void)msg_len;
	(void)out;
	return SHIM_ENOTSUP;
}

/* A plain digest (recording chain, signed events): mbedtls_md(). */
static int null_hash(void *ctx, enum shim_md md, const uint8_t *msg,
		     size_t msg_len, uint8_t *out)
{
	(void)ctx;
	(void)md;
	(void)msg;
	(void)msg_len;
	(void)out;
	return SHIM_ENOTSUP;
}

/*
 * AES-256-GCM seal of the recording records (mbedtls_gcm_crypt_and_tag, or
 * the MCU's AES engine). ct may be the same buffer as pt.
 */
static int null_aead_seal(void *ctx, const uint8_t key[SHIM_AES256_KEY_LEN],
			  const uint8_t nonce[SHIM_GCM_NONCE_LEN],
			  const uint8_t *aad, size_t aad_len,
			  const uint8_t *pt, size_t len, uint8_t *ct,
			  uint8_t tag[SHIM_GCM_TAG_LEN])
{
	(void)ctx;
	(void)key;
	(void)nonce;
	(void)aad;
	(void)aad_len;
	(void)pt;
	(void)len;
	(void)ct;
	(void)tag;
	return SHIM_ENOTSUP;
}

/*
 * AES-256-GCM open: SHIM_ECRYPTO on a bad tag, and then no plaintext may
 * be left in pt (mbedtls_gcm_auth_decrypt wipes it; check a hardware
 * engine does too).
 */
static int null_aead_open(void *ctx, const uint8_t key[SHIM_AES256_KEY_LEN],
			  const uint8_t nonce[SHIM_GCM_NONCE_LEN],
			  const uint8_t *aad, size_t aad_len,
			  const uint8_t *ct, size_t len,
			  const uint8_t tag[SHIM_GCM_TAG_LEN], uint8_t *pt)
{
	(void)ctx;
	(void)key;
	(void)nonce;
	(void)aad;
	(void)aad_len;
	(void)ct;
	(void)len;
	(void)tag;
	(void)pt;
	return SHIM_ENOTSUP;
}

/*
 * Ephemeral-static ECDH on P-256 (sealing each recording's key to the
 * recording public key): a fresh key pair from the rng above, its public
 * half uncompressed (0x04 || X || Y) in eph_pub, the shared x coordinate
 * in shared. Wipe the ephemeral private key before returning.
 */
static int null_ecdh_ephemeral(void *ctx,
			       const uint8_t peer_pub[SHIM_P256_PUB_LEN],
			       uint8_t eph_pub[SHIM_P256_PUB_LEN],
			       uint8_t shared[32])
{
	(void)ctx;
	(void)peer_pub;
	(void)eph_pub;
	(void)shared;
	return SHIM_ENOTSUP;
}

/*
 * ECDSA P-256 over a SHA-256 digest with the device identity key, raw
 * r || s. Optional (NULL: events and recordings go out unsigned). Best in
 * a secure element (ATECC608B) so the key never leaves it; else a key in
 * read-protected flash, loaded into mbedtls_ecdsa_sign().
 */
static int null_identity_sign(void *ctx, const uint8_t digest[32],
			      uint8_t sig[SHIM_P256_SIG_LEN])
{
	(void)ctx;
	(void)digest;
	(void)sig;
	return SHIM_ENOTSUP;
}

/* The public half of the identity key, uncompressed. Optional. */
static int null_identity_pub(void *ctx, uint8_t pub[SHIM_P256_PUB_LEN])
{
	(void)ctx;
	(void)pub;
	return SHIM_ENOTSUP;
}

/*
 * Verifies an ECDSA P-256 signature over a SHA-256 digest (tamper reset
 * tokens, recording footers, signed events): 0 when it verifies,
 * SHIM_ESIG when not. Any failure of the library or the hardware must be
 * non-zero, never 0: the core reads only 0 as "verifies".
 */
static int null_verify(void *ctx, const uint8_t pub[SHIM_P256_PUB_LEN],
		       const uint8_t digest[32],
		       const uint8_t sig[SHIM_P256_SIG_LEN])
{
	(void)ctx;
	(void)pub;
	(void)digest;
	(void)sig;
	return SHIM_ENOTSUP;
}

/* ---- durable small-state storage -------------------------------------- */

/*
 * Reads the blob called name (gate-state, clock, tamper, boot: a few
 * hundred bytes to some KB) into buf: SHIM_ENOENT when it was never saved,
 * SHIM_ENOSPC with *len set when cap is short, SHIM_EIO when the medium
 * fails. On flash: LittleFS files, or two checksummed slots per blob in
 * their own sectors with a sequence number, the newest valid one read.
 */
static int null_store_load(void *ctx, const char *name, uint8_t *buf,
			   size_t cap, size_t *len)
{
	(void)ctx;
	(void)name;
	(void)buf;
	(void)cap;
	*len = 0;
	return SHIM_ENOTSUP;
}

/*
 * Replaces the blob atomically and durably: after a power cut at any
 * instant the old or the new content is read back, never a mix and never
 * nothing (write the other slot, then its sequence number; or LittleFS's
 * own copy-on-write). Return only once it is on the medium: the gate's
 * replay marks depend on it.
 */
static int null_store_save(void *ctx, const char *name, const uint8_t *buf,
			   size_t len)
{
	(void)ctx;
	(void)name;
	(void)buf;
	(void)len;
	return SHIM_ENOTSUP;
}

/* ---- the whole port ---------------------------------------------------- */

int shim_null_port_init(struct shim_null_port *np)
{
	struct shim_port *p = &np->port;

	memset(np, 0, sizeof(*np));
	p->clock.wall_ns = null_wall_ns;
	p->clock.mono_ns = null_mono_ns;
	p->clock.ctx = np;
	p->rng.fill = null_rng_fill;
	p->rng.ctx = np;
	p->crypto.hmac = null_hmac;
	p->crypto.hash = null_hash;
	p->crypto.aead_seal = null_aead_seal;
	p->crypto.aead_open = null_aead_open;
	p->crypto.ecdh_ephemeral = null_ecdh_ephemeral;
	p->crypto.identity_sign = null_identity_sign;
	p->crypto.identity_pub = null_identity_pub;
	p->crypto.verify = null_verify;
	p->crypto.ctx = np;
	p->store.load = null_store_load;
	p->store.save = null_store_save;
	p->store.ctx = np;
	return 0;
}
