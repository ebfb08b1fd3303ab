/*
 * The event model and signed events.
 */
#include <string.h>

#include "event.h"
#include "err.h"
#include "port.h"
#include "util.h"

/* A signature is 128 hex characters; the value must hold it. */
_Static_assert(SHIM_EVENT_VALUE_MAX > 2 * SHIM_P256_SIG_LEN,
	       "SHIM_EVENT_VALUE_MAX too small for a signature");

static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] != '\0') {
		n++;
	}
	return n;
}

static int is_priority(const char *name)
{
	return strcmp(name, "tamper") == 0 ||
	       strcmp(name, "emergency_stop") == 0 ||
	       strncmp(name, "break_glass", 11) == 0 ||
	       strncmp(name, "breakglass", 10) == 0;
}

static int key_ok(const char *key)
{
	size_t i, n = bounded_len(key, SHIM_EVENT_KEY_MAX);

	if (n == 0 || n >= SHIM_EVENT_KEY_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		char c = key[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_')) {
			return 0;
		}
	}
	return 1;
}

int shim_event_init(struct shim_event *ev, const char *name,
		    enum shim_severity sev, int64_t wall_ns)
{
	memset(ev, 0, sizeof(*ev));
	if (!key_ok(name) || bounded_len(name, SHIM_EVENT_NAME_MAX) >= SHIM_EVENT_NAME_MAX) {
		return SHIM_EINVAL;
	}
	memcpy(ev->name, name, bounded_len(name, SHIM_EVENT_NAME_MAX));
	ev->severity = sev;
	ev->wall_ns = wall_ns;
	ev->priority = is_priority(name);
	return 0;
}

int shim_event_add(struct shim_event *ev, const char *key, const char *value)
{
	struct shim_event_field *f;
	size_t n;

	if (!key_ok(key)) {
		return SHIM_EINVAL;
	}
	if (ev->nfields >= SHIM_EVENT_MAX_FIELDS) {
		return SHIM_ENOSPC;
	}
	f = &ev->fields[ev->nfields];
	memset(f, 0, sizeof(*f));
	memcpy(f->key, key, bounded_len(key, SHIM_EVENT_KEY_MAX));
	if (value == NULL) {
		value = "";
	}
	n = bounded_len(value, SHIM_EVENT_VALUE_MAX);
	if (n >= SHIM_EVENT_VALUE_MAX) {
		memcpy(f->value, value, SHIM_EVENT_VALUE_MAX - 4);
		memcpy(f->value + SHIM_EVENT_VALUE_MAX - 4, "...", 4);
	} else {
		memcpy(f->value, value, n);
	}
	ev->nfields++;
	return 0;
}

static char *fmt_u64(uint64_t v, char buf[24])
{
	char *p = buf + 23;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return p;
}

int shim_event_add_u64(struct shim_event *ev, const char *key, uint64_t v)
{
	char buf[24];

	return shim_event_add(ev, key, fmt_u64(v, buf));
}

int shim_event_add_i64(struct shim_event *ev, const char *key, int64_t v)
{
	char buf[24];
	char *p;

	if (v >= 0) {
		return shim_event_add(ev, key, fmt_u64((uint64_t)v, buf));
	}
	p = fmt_u64((uint64_t)0 - (uint64_t)v, buf);
	*--p = '-';
	return shim_event_add(ev, key, p);
}

const char *shim_event_get(const struct shim_event *ev, const char *key)
{
	size_t i;

	for (i = 0; i < ev->nfields && i < SHIM_EVENT_MAX_FIELDS; i++) {
		if (strncmp(ev->fields[i].key, key, SHIM_EVENT_KEY_MAX) == 0) {
			return ev->fields[i].value;
		}
	}
	return NULL;
}

/* Appends s (bounded by max) to buf. */
static int canon_put(char *buf, size_t cap, size_t *len, const char *s,
		     size_t max)
{
	size_t n = bounded_len(s, max);

	if (cap - *len < n + 1) {
		return SHIM_ENOSPC;
	}
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

int shim_event_canonical(const struct shim_event *ev, char *buf, size_t cap,
			 size_t *len)
{
	char num[24];
	size_t i;
	int rc;

	*len = 0;
	if (cap == 0) {
		return SHIM_ENOSPC;
	}
	buf[0] = '\0';
	if ((rc = canon_put(buf, cap, len, ev->name, SHIM_EVENT_NAME_MAX)) ||
	    (rc = canon_put(buf, cap, len, "\nshim_id=", 16)) ||
	    (rc = canon_put(buf, cap, len, ev->shim_id, SHIM_SHIM_ID_MAX)) ||
	    (rc = canon_put(buf, cap, len, "\nseq=", 8)) ||
	    (rc = canon_put(buf, cap, len, fmt_u64(ev->seq, num), 24)) ||
	    (rc = canon_put(buf, cap, len, "\n", 2))) {
		return rc;
	}
	for (i = 0; i < ev->nfields && i < SHIM_EVENT_MAX_FIELDS; i++) {
		const struct shim_event_field *f = &ev->fields[i];

		if (strncmp(f->key, "sig", SHIM_EVENT_KEY_MAX) == 0) {
			continue;
		}
		if ((rc = canon_put(buf, cap, len, f->key, SHIM_EVENT_KEY_MAX)) ||
		    (rc = canon_put(buf, cap, len, "=", 2)) ||
		    (rc = canon_put(buf, cap, len, f->value,
				    SHIM_EVENT_VALUE_MAX)) ||
		    (rc = canon_put(buf, cap, len, "\n", 2))) {
			return rc;
		}
	}
	return 0;
}

static int event_digest(const struct shim_event *ev,
			const struct shim_crypto_ops *crypto, char *scratch,
			size_t cap, uint8_t digest[32])
{
	size_t len;
	int rc;

	if (scratch == NULL) {
		return SHIM_EINVAL;
	}
	rc = shim_event_canonical(ev, scratch, cap, &len);
	if (rc != 0) {
		return rc;
	}
	if (crypto == NULL || crypto->hash == NULL) {
		return SHIM_ENOTSUP;
	}
	return crypto->hash(crypto->ctx, SHIM_MD_SHA256,
			    (const uint8_t *)scratch, len, digest);
}

static void drop_field(struct shim_event *ev, const char *key)
{
	size_t i;

	for (i = 0; i < ev->nfields; i++) {
		if (strncmp(ev->fields[i].key, key, SHIM_EVENT_KEY_MAX) == 0) {
			memmove(&ev->fields[i], &ev->fields[i + 1],
				(ev->nfields - i - 1) * sizeof(ev->fields[0]));
			ev->nfields--;
			return;
		}
	}
}

int shim_event_sign(struct shim_event *ev, const struct shim_crypto_ops *crypto,
		    char *scratch, size_t cap)
{
	uint8_t digest[32], sig[SHIM_P256_SIG_LEN];
	char text[2 * SHIM_P256_SIG_LEN + 1];
	int rc;

	if (crypto == NULL || crypto->identity_sign == NULL) {
		return SHIM_ENOTSUP;
	}
	drop_field(ev, "sig");
	if (ev->nfields >= SHIM_EVENT_MAX_FIELDS) {
		return SHIM_ENOSPC;
	}
	rc = event_digest(ev, crypto, scratch, cap, digest);
	if (rc != 0) {
		return rc;
	}
	rc = crypto->identity_sign(crypto->ctx, digest, sig);
	if (rc != 0) {
		return rc;
	}
	shim_hex_encode(sig, sizeof(sig), text);
	return shim_event_add(ev, "sig", text);
}

int shim_event_sig(const struct shim_event *ev, uint8_t sig[SHIM_P256_SIG_LEN])
{
	const char *text = shim_event_get(ev, "sig");
	size_t i;

	if (text == NULL ||
	    bounded_len(text, SHIM_EVENT_VALUE_MAX) != 2 * SHIM_P256_SIG_LEN) {
		return SHIM_ESIG;
	}
	for (i = 0; i < SHIM_P256_SIG_LEN; i++) {
		int hi = shim_hexval(text[2 * i]), lo = shim_hexval(text[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			return SHIM_ESIG;
		}
		sig[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int shim_event_verify(const struct shim_event *ev, const uint8_t pub[65],
		      const struct shim_crypto_ops *crypto, char *scratch,
		      size_t cap)
{
	uint8_t digest[32], sig[SHIM_P256_SIG_LEN];

	if (crypto == NULL || crypto->verify == NULL ||
	    shim_event_sig(ev, sig) != 0 ||
	    event_digest(ev, crypto, scratch, cap, digest) != 0) {
		return SHIM_ESIG;
	}
	return crypto->verify(crypto->ctx, pub, digest, sig) == 0 ? 0 : SHIM_ESIG;
}
