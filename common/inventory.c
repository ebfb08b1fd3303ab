/*
 * The signed inventory record (see inventory.h).
 */
#include "inventory.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "p256key.h"
#include "util.h"

#define MAGIC "shim-inventory"
#define LINE_MAX_INV 256

const char *shim_inv_build_name(enum shim_inv_build b)
{
	switch (b) {
	case SHIM_INV_BUILD_DEPLOYED:
		return "deployed";
	case SHIM_INV_BUILD_FACTORY:
		return "factory";
	default:
		return "unknown";
	}
}

void shim_inv_key_digest(const uint8_t pub[SHIM_P256_PUB_LEN],
			 uint8_t out[SHIM_INV_DIGEST_LEN])
{
	shim_sha256(pub, SHIM_P256_PUB_LEN, out);
}

/* Serial numbers and shim IDs: letters, digits and . _ : - only. */
static int id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SHIM_INV_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '-')) {
			return 0;
		}
	}
	return 1;
}

/* Free text (operator, version): printable ASCII, no leading or
 * trailing space. */
static int text_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SHIM_INV_TEXT_MAX || s[0] == ' ' || s[n - 1] == ' ') {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e) {
			return 0;
		}
	}
	return 1;
}

int shim_inv_id_ok(const char *s)
{
	return id_ok(s, strlen(s));
}

int shim_inv_text_ok(const char *s)
{
	return text_ok(s, strlen(s));
}

static int time_text(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || (int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
	    tm.tm_year + 1900 > 9999) {
		return SHIM_EINVAL;
	}
	return strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 20 ? 0 :
								    SHIM_EINVAL;
}

/* "YYYY-MM-DDTHH:MM:SSZ", a real date (it must print back the same). */
static int parse_time(const char *s, size_t n, int64_t *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	struct tm tm;
	char back[32];
	size_t i;
	time_t t;

	if (n != sizeof(shape) - 1) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') :
				      s[i] != shape[i]) {
			return SHIM_EINVAL;
		}
	}
	memset(&tm, 0, sizeof(tm));
#define NUM(a, b) ((int)(s[a] - '0') * 10 + (int)(s[b] - '0'))
	tm.tm_year = NUM(0, 1) * 100 + NUM(2, 3) - 1900;
	tm.tm_mon = NUM(5, 6) - 1;
	tm.tm_mday = NUM(8, 9);
	tm.tm_hour = NUM(11, 12);
	tm.tm_min = NUM(14, 15);
	tm.tm_sec = NUM(17, 18);
#undef NUM
	t = timegm(&tm);
	if (t < 0 || time_text((int64_t)t, back) != 0 || memcmp(back, s, n) != 0) {
		return SHIM_EINVAL;
	}
	*out = (int64_t)t;
	return 0;
}

/* Lower-case hex of exactly 2 * n digits. */
static int parse_hex(const char *s, size_t len, uint8_t *out, size_t n)
{
	size_t i;

	if (len != 2 * n) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return SHIM_EINVAL;
		}
	}
	for (i = 0; i < n; i++) {
		out[i] = (uint8_t)(shim_hexval(s[2 * i]) << 4 |
				   shim_hexval(s[2 * i + 1]));
	}
	return 0;
}

static int parse_digest(const char *s, size_t len, uint8_t out[32])
{
	if (len < 7 || memcmp(s, "sha256:", 7) != 0) {
		return SHIM_EINVAL;
	}
	return parse_hex(s + 7, len - 7, out, 32);
}

int shim_inv_format(const struct shim_inventory *r, char *out, size_t cap,
		    size_t *len)
{
	char id_hex[2 * SHIM_P256_PUB_LEN + 1], rec[65], bin[65], auth[65];
	char when[32];
	int n;

	if (!id_ok(r->serial, strlen(r->serial)) ||
	    !id_ok(r->shim_id, strlen(r->shim_id)) ||
	    r->identity_pub[0] != 0x04 ||
	    !text_ok(r->software, strlen(r->software)) ||
	    !text_ok(r->op, strlen(r->op)) ||
	    (r->build != SHIM_INV_BUILD_DEPLOYED &&
	     r->build != SHIM_INV_BUILD_FACTORY) ||
	    time_text(r->provisioned, when) != 0) {
		return SHIM_EINVAL;
	}
	shim_hex_encode(r->identity_pub, SHIM_P256_PUB_LEN, id_hex);
	shim_hex_encode(r->recording_key, 32, rec);
	shim_hex_encode(r->binary, 32, bin);
	shim_hex_encode(r->authority, 32, auth);
	n = snprintf(out, cap,
		     MAGIC " %d\nserial %s\nshim_id %s\nidentity_pub %s\n"
		     "recording_key sha256:%s\nsoftware %s\nbinary sha256:%s\n"
		     "build %s\nprovisioned %s\noperator %s\n"
		     "authority sha256:%s\n",
		     SHIM_INV_VERSION, r->serial, r->shim_id, id_hex, rec,
		     r->software, bin, shim_inv_build_name(r->build), when,
		     r->op, auth);
	if (n < 0 || (size_t)n >= cap || (size_t)n > SHIM_INV_MAX) {
		return SHIM_ENOSPC;
	}
	*len = (size_t)n;
	return 0;
}

/* Field takers shared by both records: NULL, or the message. */
static const char *take_id(char *dst, const char *v, size_t n,
			   const char *msg)
{
	if (!id_ok(v, n)) {
		return msg;
	}
	memcpy(dst, v, n);
	return NULL;
}

static const char *take_text(char *dst, const char *v, size_t n,
			     const char *msg)
{
	if (!text_ok(v, n)) {
		return msg;
	}
	memcpy(dst, v, n);
	return NULL;
}

static const char *take_pub(uint8_t dst[SHIM_P256_PUB_LEN], const char *v,
			    size_t n)
{
	return parse_hex(v, n, dst, SHIM_P256_PUB_LEN) == 0 && dst[0] == 0x04 ?
	       NULL : "identity_pub: 130 lower-case hex digits, 04...";
}

static const char *take_sig(uint8_t dst[SHIM_P256_SIG_LEN], int *is_signed,
			    const char *v, size_t n)
{
	if (parse_hex(v, n, dst, SHIM_P256_SIG_LEN) != 0) {
		return "signature: 128 lower-case hex digits";
	}
	*is_signed = 1;
	return NULL;
}

#define MSG_SERIAL "serial: 1-63 of A-Z a-z 0-9 . _ : -"
#define MSG_SHIM_ID "shim_id: 1-63 of A-Z a-z 0-9 . _ : -"
#define MSG_OPERATOR "operator: printable text, 1-127 characters"

static const char *const inv_keys[] = {
	MAGIC, "serial", "shim_id", "identity_pub", "recording_key",
	"software", "binary", "build", "provisioned", "operator",
	"authority", "signature",
};

/* Takes the value of line k (its key already matched). */
static const char *inv_field(void *ctx, size_t k, const char *v, size_t n)
{
	struct shim_inventory *r = ctx;

	switch (k) {
	case 0:
		return n == 1 && v[0] == '0' + SHIM_INV_VERSION ? NULL :
			"unsupported version (this shimctl reads version 1)";
	case 1:
		return take_id(r->serial, v, n, MSG_SERIAL);
	case 2:
		return take_id(r->shim_id, v, n, MSG_SHIM_ID);
	case 3:
		return take_pub(r->identity_pub, v, n);
	case 4:
		return parse_digest(v, n, r->recording_key) == 0 ? NULL :
			"recording_key: sha256: and 64 lower-case hex digits";
	case 5:
		return take_text(r->software, v, n,
				 "software: printable text, 1-127 characters");
	case 6:
		return parse_digest(v, n, r->binary) == 0 ? NULL :
			"binary: sha256: and 64 lower-case hex digits";
	case 7:
		if (n == 8 && memcmp(v, "deployed", 8) == 0) {
			r->build = SHIM_INV_BUILD_DEPLOYED;
		} else if (n == 7 && memcmp(v, "factory", 7) == 0) {
			r->build = SHIM_INV_BUILD_FACTORY;
		} else {
			return "build: deployed or factory";
		}
		return NULL;
	case 8:
		return parse_time(v, n, &r->provisioned) == 0 ? NULL :
			"provisioned: YYYY-MM-DDTHH:MM:SSZ";
	case 9:
		return take_text(r->op, v, n, MSG_OPERATOR);
	case 10:
		return parse_digest(v, n, r->authority) == 0 ? NULL :
			"authority: sha256: and 64 lower-case hex digits";
	default:
		return take_sig(r->sig, &r->is_signed, v, n);
	}
}

/*
 * The record syntax shared by the inventory and decommission records:
 * "key value" lines in the order of keys[], the last one (the signature)
 * optional. Returns NULL and sets *signed_len (the bytes before the
 * signature line, or all of them), or a message and *line.
 */
static const char *kv_parse(const char *buf, size_t len,
			    const char *const *keys, size_t nkeys,
			    const char *(*field)(void *, size_t, const char *,
						 size_t),
			    void *ctx, int *line, size_t *signed_len)
{
	const char *msg;
	size_t pos = 0, k = 0;

	*signed_len = 0;
	*line = 1;
	if (len > SHIM_INV_MAX) {
		return "record too long";
	}
	while (pos < len && k < nkeys) {
		const char *p = buf + pos, *nl, *sp;
		size_t n, kl;

		*line = (int)k + 1;
		nl = memchr(p, '\n', len - pos);
		if (nl == NULL) {
			return "line without its newline";
		}
		n = (size_t)(nl - p);
		if (n > LINE_MAX_INV) {
			return "line too long";
		}
		sp = memchr(p, ' ', n);
		kl = strlen(keys[k]);
		if (sp == NULL || (size_t)(sp - p) != kl ||
		    memcmp(p, keys[k], kl) != 0) {
			return k == 0 ? "not a record of this kind" :
					"unexpected line (keys come in a fixed order)";
		}
		if (k == nkeys - 1) {
			*signed_len = pos;
		}
		msg = field(ctx, k, sp + 1, n - kl - 1);
		if (msg != NULL) {
			return msg;
		}
		pos += n + 1;
		k++;
	}
	*line = (int)k + 1;
	if (k < nkeys - 1) {
		return "record ends early";
	}
	if (pos < len) {
		return "data after the signature";
	}
	if (k < nkeys) {
		*signed_len = len;
	}
	return NULL;
}

int shim_inv_parse(const char *buf, size_t len, struct shim_inventory *r,
		   int *line, const char **why)
{
	const char *msg;
	size_t signed_len;
	int l;

	memset(r, 0, sizeof(*r));
	msg = kv_parse(buf, len, inv_keys, sizeof(inv_keys) / sizeof(inv_keys[0]),
		       inv_field, r, &l, &signed_len);
	if (msg != NULL) {
		if (line != NULL) {
			*line = l;
		}
		if (why != NULL) {
			*why = msg;
		}
		memset(r, 0, sizeof(*r));
		return SHIM_EINVAL;
	}
	shim_sha256((const uint8_t *)buf, signed_len, r->digest);
	return 0;
}

int shim_inv_verify(const struct shim_inventory *r,
		    const uint8_t authority_pub[SHIM_P256_PUB_LEN])
{
	struct shim_p256_verifier *v;
	uint8_t fp[SHIM_INV_DIGEST_LEN];
	int rc;

	if (!r->is_signed || r->build == SHIM_INV_BUILD_UNKNOWN) {
		return SHIM_ESIG;
	}
	shim_inv_key_digest(authority_pub, fp);
	if (!shim_ct_equal(fp, r->authority, sizeof(fp))) {
		return SHIM_ESIG;
	}
	v = shim_p256_verifier_new(authority_pub);
	if (v == NULL) {
		return SHIM_ESIG;
	}
	rc = shim_p256_verifier_verify(v, r->digest, r->sig);
	shim_p256_verifier_free(v);
	return rc == 0 ? 0 : SHIM_ESIG;
}

/* ---- decommission record ------------------------------------------------ */

#define DECOM_MAGIC "shim-decommission"

static const char *const decom_keys[] = {
	DECOM_MAGIC, "serial", "shim_id", "identity_pub", "decommissioned",
	"operator", "undelivered_events", "undelivered_recordings",
	"signature",
};

static int parse_count(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19 || (n > 1 && s[0] == '0')) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return SHIM_EINVAL;
		}
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static const char *decom_field(void *ctx, size_t k, const char *v, size_t n)
{
	struct shim_decommission *d = ctx;

	switch (k) {
	case 0:
		return n == 1 && v[0] == '1' ? NULL :
			"unsupported version (this shimctl reads version 1)";
	case 1:
		return take_id(d->serial, v, n, MSG_SERIAL);
	case 2:
		return take_id(d->shim_id, v, n, MSG_SHIM_ID);
	case 3:
		return take_pub(d->identity_pub, v, n);
	case 4:
		return parse_time(v, n, &d->when) == 0 ? NULL :
			"decommissioned: YYYY-MM-DDTHH:MM:SSZ";
	case 5:
		return take_text(d->op, v, n, MSG_OPERATOR);
	case 6:
		return parse_count(v, n, &d->undelivered_events) == 0 ? NULL :
			"undelivered_events: a decimal count";
	case 7:
		return parse_count(v, n, &d->undelivered_recordings) == 0 ? NULL :
			"undelivered_recordings: a decimal count";
	default:
		return take_sig(d->sig, &d->is_signed, v, n);
	}
}

int shim_decom_format(const struct shim_decommission *d, char *out,
		      size_t cap, size_t *len)
{
	char id_hex[2 * SHIM_P256_PUB_LEN + 1], when[32];
	int n;

	if (!id_ok(d->serial, strlen(d->serial)) ||
	    !id_ok(d->shim_id, strlen(d->shim_id)) ||
	    d->identity_pub[0] != 0x04 || !text_ok(d->op, strlen(d->op)) ||
	    time_text(d->when, when) != 0) {
		return SHIM_EINVAL;
	}
	shim_hex_encode(d->identity_pub, SHIM_P256_PUB_LEN, id_hex);
	n = snprintf(out, cap,
		     DECOM_MAGIC " 1\nserial %s\nshim_id %s\nidentity_pub %s\n"
		     "decommissioned %s\noperator %s\nundelivered_events %llu\n"
		     "undelivered_recordings %llu\n",
		     d->serial, d->shim_id, id_hex, when, d->op,
		     (unsigned long long)d->undelivered_events,
		     (unsigned long long)d->undelivered_recordings);
	if (n < 0 || (size_t)n >= cap || (size_t)n > SHIM_INV_MAX) {
		return SHIM_ENOSPC;
	}
	*len = (size_t)n;
	return 0;
}

int shim_decom_parse(const char *buf, size_t len, struct shim_decommission *d,
		     int *line, const char **why)
{
	const char *msg;
	size_t signed_len;
	int l;

	memset(d, 0, sizeof(*d));
	msg = kv_parse(buf, len, decom_keys,
		       sizeof(decom_keys) / sizeof(decom_keys[0]), decom_field,
		       d, &l, &signed_len);
	if (msg != NULL) {
		if (line != NULL) {
			*line = l;
		}
		if (why != NULL) {
			*why = msg;
		}
		memset(d, 0, sizeof(*d));
		return SHIM_EINVAL;
	}
	shim_sha256((const uint8_t *)buf, signed_len, d->digest);
	return 0;
}

int shim_decom_verify(const struct shim_decommission *d,
		      const uint8_t pub[SHIM_P256_PUB_LEN])
{
	struct shim_p256_verifier *v;
	int rc;

	if (!d->is_signed || d->when == 0 ||
	    !shim_ct_equal(d->identity_pub, pub, SHIM_P256_PUB_LEN)) {
		return SHIM_ESIG;
	}
	v = shim_p256_verifier_new(pub);
	if (v == NULL) {
		return SHIM_ESIG;
	}
	rc = shim_p256_verifier_verify(v, d->digest, d->sig);
	shim_p256_verifier_free(v);
	return rc == 0 ? 0 : SHIM_ESIG;
}
