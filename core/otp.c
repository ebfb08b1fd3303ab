/*
 * HOTP (RFC 4226) and TOTP (RFC 6238) over the port's HMAC.
 */
#include <string.h>

#include "otp.h"
#include "util.h"

static const uint32_t pow10[] = {
	1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u,
};

int shim_hotp(const struct shim_crypto_ops *crypto, enum shim_md md,
	      const uint8_t *key, size_t key_len, uint64_t counter,
	      unsigned digits, uint32_t *code)
{
	uint8_t msg[8];
	uint8_t mac[SHIM_MD_MAX_LEN];
	size_t mac_len = shim_md_len(md);
	unsigned off;
	uint32_t bin;
	int rc;

	*code = 0;
	if (digits < SHIM_OTP_MIN_DIGITS || digits > SHIM_OTP_MAX_DIGITS ||
	    mac_len == 0 || crypto == NULL || crypto->hmac == NULL) {
		return SHIM_EINVAL;
	}
	shim_put_u64(msg, counter);
	rc = crypto->hmac(crypto->ctx, md, key, key_len, msg, sizeof(msg), mac);
	if (rc != 0) {
		shim_memzero(mac, sizeof(mac));
		return rc;
	}
	/* Dynamic truncation, RFC 4226 section 5.3. */
	off = mac[mac_len - 1] & 0x0f;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) |
	      ((uint32_t)mac[off + 1] << 16) | ((uint32_t)mac[off + 2] << 8) |
	      (uint32_t)mac[off + 3];
	*code = bin % pow10[digits];
	shim_memzero(mac, sizeof(mac));
	return 0;
}

uint64_t shim_totp_step(int64_t unix_seconds, uint32_t period)
{
	if (unix_seconds < 0 || period == 0) {
		return 0;
	}
	return (uint64_t)unix_seconds / period;
}

int shim_totp(const struct shim_crypto_ops *crypto, enum shim_md md,
	      const uint8_t *key, size_t key_len, int64_t unix_seconds,
	      uint32_t period, unsigned digits, uint32_t *code)
{
	if (period == 0) {
		return SHIM_EINVAL;
	}
	return shim_hotp(crypto, md, key, key_len,
			 shim_totp_step(unix_seconds, period), digits, code);
}

void shim_otp_format(uint32_t code, unsigned digits,
		     char out[SHIM_OTP_MAX_DIGITS + 1])
{
	unsigned i;

	if (digits > SHIM_OTP_MAX_DIGITS) {
		digits = SHIM_OTP_MAX_DIGITS;
	}
	for (i = digits; i > 0; i--) {
		out[i - 1] = (char)('0' + code % 10);
		code /= 10;
	}
	out[digits] = '\0';
}

int shim_otp_parse(const char *text, size_t len, unsigned digits,
		   uint32_t *code)
{
	uint32_t v = 0;
	unsigned bad = 0;
	size_t i;

	*code = 0;
	if (len != digits || digits < SHIM_OTP_MIN_DIGITS ||
	    digits > SHIM_OTP_MAX_DIGITS) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned)(unsigned char)text[i] - '0';

		bad |= (unsigned)(d > 9);
		v = v * 10 + (d & 15);
	}
	if (bad) {
		return SHIM_EINVAL;
	}
	*code = v;
	return 0;
}

const char *shim_md_name(enum shim_md md)
{
	switch (md) {
	case SHIM_MD_SHA1:
		return "SHA1";
	case SHIM_MD_SHA256:
		return "SHA256";
	case SHIM_MD_SHA512:
		return "SHA512";
	default:
		return "?";
	}
}

static int ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = (*a >= 'a' && *a <= 'z') ? (char)(*a - 32) : *a;
		char y = (*b >= 'a' && *b <= 'z') ? (char)(*b - 32) : *b;

		if (x != y) {
			return 1;
		}
		if (x == '\0') {
			return 0;
		}
	}
}

int shim_md_from_name(const char *name, enum shim_md *md)
{
	if (ascii_casecmp(name, "SHA1") == 0 ||
	    ascii_casecmp(name, "SHA-1") == 0) {
		*md = SHIM_MD_SHA1;
	} else if (ascii_casecmp(name, "SHA256") == 0 ||
		   ascii_casecmp(name, "SHA-256") == 0) {
		*md = SHIM_MD_SHA256;
	} else if (ascii_casecmp(name, "SHA512") == 0 ||
		   ascii_casecmp(name, "SHA-512") == 0) {
		*md = SHIM_MD_SHA512;
	} else {
		return SHIM_EINVAL;
	}
	return 0;
}
