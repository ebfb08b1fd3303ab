/*
 * HOTP (RFC 4226) and TOTP (RFC 6238).
 */
#ifndef SHIM_CORE_OTP_H
#define SHIM_CORE_OTP_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define SHIM_OTP_MIN_DIGITS 6
#define SHIM_OTP_MAX_DIGITS 8

/* HOTP value for counter, reduced to digits (6..8) decimal digits. */
int shim_hotp(const struct shim_crypto_ops *crypto, enum shim_md md,
	      const uint8_t *key, size_t key_len, uint64_t counter,
	      unsigned digits, uint32_t *code);

/* The TOTP time step of a Unix time: floor((t - t0) / period), t0 = 0.
 * Times before the epoch give step 0. */
uint64_t shim_totp_step(int64_t unix_seconds, uint32_t period);

/* TOTP value at a Unix time. */
int shim_totp(const struct shim_crypto_ops *crypto, enum shim_md md,
	      const uint8_t *key, size_t key_len, int64_t unix_seconds,
	      uint32_t period, unsigned digits, uint32_t *code);

/* Writes code as exactly digits decimal characters and a NUL into out,
 * which must hold SHIM_OTP_MAX_DIGITS + 1 bytes. */
void shim_otp_format(uint32_t code, unsigned digits,
		     char out[SHIM_OTP_MAX_DIGITS + 1]);

/* Parses exactly digits ASCII decimal characters. Returns SHIM_EINVAL for
 * any other length or character. */
int shim_otp_parse(const char *text, size_t len, unsigned digits,
		   uint32_t *code);

/* Name used in otpauth URIs and config: "SHA1", "SHA256", "SHA512". */
const char *shim_md_name(enum shim_md md);
/* Parses those names, case-insensitive. */
int shim_md_from_name(const char *name, enum shim_md *md);

#endif
