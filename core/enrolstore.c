/*
 * The sealed enrolment store (enrolstore.h): the set's text and its two
 * containers. Every length read from untrusted bytes is checked before it
 * is used; nothing is allocated.
 */
#include <string.h>

#include "base32.h"
#include "enrolstore.h"
#include "fmt.h"
#include "otp.h"
#include "record.h"
#include "util.h"

#define HEADER_LINE "shim-enrolment 1"
static const char info[] = "shim enrolment v1";

/* ---- text ---------------------------------------------------------- */

static int id_ok(const char *s, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
			return 0;
		}
	}
	return 1;
}

static int tech_ok(const struct shim_enrol_tech *t)
{
	return id_ok(t->id, strlen(t->id), SHIM_TECH_ID_MAX) &&
	       t->secret_len >= SHIM_ENROL_SECRET_MIN &&
	       t->secret_len <= SHIM_SECRET_MAX &&
	       shim_md_len(t->md) != 0 && t->digits >= SHIM_OTP_MIN_DIGITS &&
	       t->digits <= SHIM_OTP_MAX_DIGITS && t->period >= 1 &&
	       t->period <= 3600 && t->enrolled >= 0;
}

int shim_enrol_format(const struct shim_enrol_set *s, char *out, size_t cap,
		      size_t *len)
{
	char b32[SHIM_SECRET_MAX * 2 + 8];
	size_t at = 0, n;
	uint32_t i;

	if (s == NULL || out == NULL || len == NULL || s->n > SHIM_ENROL_MAX ||
	    !id_ok(s->shim_id, strlen(s->shim_id), SHIM_ENROL_SHIM_ID_MAX) ||
	    s->created < 0) {
		return SHIM_EINVAL;
	}
	n = shim_fmt(out, cap, HEADER_LINE "\nshim %s\ncreated %lld\n",
		     s->shim_id, (long long)s->created);
	if (n + 1 >= cap) {
		return SHIM_ENOSPC;
	}
	at = n;
	for (i = 0; i < s->n; i++) {
		const struct shim_enrol_tech *t = &s->t[i];

		if (!tech_ok(t) || shim_base32_encode(t->secret, t->secret_len,
						      b32, sizeof(b32)) != 0) {
			shim_memzero(b32, sizeof(b32));
			return SHIM_EINVAL;
		}
		n = shim_fmt(out + at, cap - at, "tech %s %s %u %u %lld %llu %s\n",
			     t->id, shim_md_name(t->md), (unsigned)t->digits,
			     (unsigned)t->period, (long long)t->enrolled,
			     (unsigned long long)t->min_step, b32);
		shim_memzero(b32, sizeof(b32));
		if (at + n + 1 >= cap) {
			shim_memzero(out, cap);
			return SHIM_ENOSPC;
		}
		at += n;
	}
	n = shim_fmt(out + at, cap - at, "end\n");
	if (at + n + 1 >= cap) {
		shim_memzero(out, cap);
		return SHIM_ENOSPC;
	}
	*len = at + n;
	return 0;
}

/* Splits line[0..n) at single spaces into up to max fields. Returns the
 * count, or -1 for an empty field (two spaces, leading or trailing). */
static int split(const char *line, size_t n, const char **f, size_t *fl,
		 int max)
{
	int k = 0;
	size_t i, start = 0;

	for (i = 0; i <= n; i++) {
		if (i == n || line[i] == ' ') {
			if (i == start || k == max) {
				return -1;
			}
			f[k] = line + start;
			fl[k] = i - start;
			k++;
			start = i + 1;
		}
	}
	return k;
}

static int is(const char *f, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(f, word, n) == 0;
}

/* Unsigned decimal, no sign, no leading zeros except "0", bounded. */
static int num(const char *f, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20 || (n > 1 && f[0] == '0')) {
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned d;

		if (f[i] < '0' || f[i] > '9') {
			return -1;
		}
		d = (unsigned)(f[i] - '0');
		if (d > max || v > (max - d) / 10) {
			return -1;
		}
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int md_of(const char *f, size_t n, enum shim_md *md)
{
	if (is(f, n, "SHA1")) {
		*md = SHIM_MD_SHA1;
	} else if (is(f, n, "SHA256")) {
		*md = SHIM_MD_SHA256;
	} else if (is(f, n, "SHA512")) {
		*md = SHIM_MD_SHA512;
	} else {
		return -1;
	}
	return 0;
}

static int parse_tech(const char **f, const size_t *fl,
		      struct shim_enrol_tech *t)
{
	uint64_t v;
	size_t slen = 0;

	if (!id_ok(f[1], fl[1], SHIM_TECH_ID_MAX)) {
		return -1;
	}
	memcpy(t->id, f[1], fl[1]);
	t->id[fl[1]] = '\0';
	if (md_of(f[2], fl[2], &t->md) != 0) {
		return -1;
	}
	if (num(f[3], fl[3], SHIM_OTP_MAX_DIGITS, &v) != 0 ||
	    v < SHIM_OTP_MIN_DIGITS) {
		return -1;
	}
	t->digits = (uint8_t)v;
	if (num(f[4], fl[4], 3600, &v) != 0 || v == 0) {
		return -1;
	}
	t->period = (uint32_t)v;
	if (num(f[5], fl[5], (uint64_t)INT64_MAX, &v) != 0) {
		return -1;
	}
	t->enrolled = (int64_t)v;
	if (num(f[6], fl[6], UINT64_MAX, &t->min_step) != 0) {
		return -1;
	}
	if (shim_base32_decode(f[7], fl[7], t->secret, sizeof(t->secret),
			       &slen) != 0 ||
	    slen < SHIM_ENROL_SECRET_MIN || slen > SHIM_SECRET_MAX) {
		shim_memzero(t->secret, sizeof(t->secret));
		return -1;
	}
	t->secret_len = (uint8_t)slen;
	return 0;
}

int shim_enrol_parse(const char *text, size_t len, struct shim_enrol_set *s,
		     size_t *bad_line)
{
	const char *f[8];
	size_t fl[8], pos = 0, line = 0;
	int stage = 0, k, rc = SHIM_ECORRUPT;
	uint64_t v;

	if (bad_line != NULL) {
		*bad_line = 0;
	}
	if (s == NULL || (text == NULL && len != 0)) {
		return SHIM_EINVAL;
	}
	memset(s, 0, sizeof(*s));
	if (len > SHIM_ENROL_TEXT_MAX) {
		goto bad;
	}
	/* stage: 0 header, 1 shim, 2 created, 3 techs, 4 after end */
	while (pos < len) {
		const char *l = text + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t n;

		line++;
		if (nl == NULL || stage == 4) {
			goto bad; /* unterminated line, or bytes after "end" */
		}
		n = (size_t)(nl - l);
		pos += n + 1;
		if (n > SHIM_ENROL_LINE_MAX) {
			goto bad;
		}
		if (stage == 0) {
			if (is(l, n, HEADER_LINE)) {
				stage = 1;
				continue;
			}
			if (n > 15 && memcmp(l, "shim-enrolment ", 15) == 0) {
				rc = SHIM_ENOTSUP;
			}
			goto bad;
		}
		k = split(l, n, f, fl, 8);
		if (k < 1) {
			goto bad;
		}
		if (stage == 1) {
			if (k != 2 || !is(f[0], fl[0], "shim") ||
			    !id_ok(f[1], fl[1], SHIM_ENROL_SHIM_ID_MAX)) {
				goto bad;
			}
			memcpy(s->shim_id, f[1], fl[1]);
			s->shim_id[fl[1]] = '\0';
			stage = 2;
		} else if (stage == 2) {
			if (k != 2 || !is(f[0], fl[0], "created") ||
			    num(f[1], fl[1], (uint64_t)INT64_MAX, &v) != 0) {
				goto bad;
			}
			s->created = (int64_t)v;
			stage = 3;
		} else if (k == 1 && is(f[0], fl[0], "end")) {
			stage = 4;
		} else {
			struct shim_enrol_tech *t;

			if (k != 8 || !is(f[0], fl[0], "tech") ||
			    s->n >= SHIM_ENROL_MAX) {
				goto bad;
			}
			t = &s->t[s->n];
			if (parse_tech(f, fl, t) != 0) {
				shim_memzero(t, sizeof(*t));
				goto bad;
			}
			/* An ID appears once. */
			if (shim_enrol_find(s, t->id) >= 0) {
				shim_memzero(t, sizeof(*t));
				goto bad;
			}
			s->n++;
		}
	}
	if (stage != 4) {
		line++;
		goto bad;
	}
	return 0;
bad:
	if (bad_line != NULL) {
		*bad_line = line;
	}
	shim_enrol_wipe(s);
	return rc;
}

int shim_enrol_find(const struct shim_enrol_set *s, const char *id)
{
	uint32_t i;

	for (i = 0; i < s->n && i < SHIM_ENROL_MAX; i++) {
		if (strcmp(s->t[i].id, id) == 0) {
			return (int)i;
		}
	}
	return -1;
}

void shim_enrol_remove(struct shim_enrol_set *s, uint32_t i)
{
	if (i >= s->n || s->n > SHIM_ENROL_MAX) {
		return;
	}
	memmove(&s->t[i], &s->t[i + 1], (s->n - i - 1) * sizeof(s->t[0]));
	s->n--;
	shim_memzero(&s->t[s->n], sizeof(s->t[0]));
}

void shim_enrol_wipe(struct shim_enrol_set *s)
{
	if (s != NULL) {
		shim_memzero(s, sizeof(*s));
	}
}

/* ---- containers ----------------------------------------------------- */

static void put_header(uint8_t *h, int kind, size_t pt_len)
{
	memcpy(h, SHIM_ENROL_MAGIC, 8);
	h[8] = SHIM_ENROL_VERSION;
	h[9] = (uint8_t)kind;
	h[10] = h[11] = 0;
	shim_put_u32(h + 12, (uint32_t)pt_len);
}

int shim_enrol_kind(const uint8_t *in, size_t len)
{
	size_t pt_len, want;

	if (in == NULL || len < SHIM_ENROL_HDR_LEN ||
	    memcmp(in, SHIM_ENROL_MAGIC, 8) != 0) {
		return SHIM_ECORRUPT;
	}
	if (in[8] != SHIM_ENROL_VERSION) {
		return SHIM_ENOTSUP;
	}
	if (in[10] != 0 || in[11] != 0) {
		return SHIM_ECORRUPT;
	}
	pt_len = shim_get_u32(in + 12);
	if (pt_len > SHIM_ENROL_TEXT_MAX) {
		return SHIM_ECORRUPT;
	}
	if (in[9] == SHIM_ENROL_LOCAL) {
		want = SHIM_ENROL_LOCAL_OVERHEAD + pt_len;
	} else if (in[9] == SHIM_ENROL_TO_PUB) {
		want = SHIM_ENROL_PUB_OVERHEAD + pt_len;
	} else {
		return SHIM_ECORRUPT;
	}
	return len == want ? (int)in[9] : SHIM_ECORRUPT;
}

int shim_enrol_seal_local(const struct shim_crypto_ops *c,
			  const struct shim_rng_ops *rng,
			  const uint8_t key[SHIM_AES256_KEY_LEN],
			  const uint8_t *text, size_t len, uint8_t *out,
			  size_t cap, size_t *out_len)
{
	uint8_t *nonce = out + SHIM_ENROL_HDR_LEN;
	uint8_t *ct = nonce + SHIM_GCM_NONCE_LEN;
	int rc;

	if (c == NULL || c->aead_seal == NULL || rng == NULL ||
	    rng->fill == NULL || key == NULL || text == NULL || out == NULL ||
	    out_len == NULL || len > SHIM_ENROL_TEXT_MAX ||
	    cap < len + SHIM_ENROL_LOCAL_OVERHEAD) {
		return SHIM_EINVAL;
	}
	put_header(out, SHIM_ENROL_LOCAL, len);
	rc = rng->fill(rng->ctx, nonce, SHIM_GCM_NONCE_LEN);
	if (rc == 0) {
		rc = c->aead_seal(c->ctx, key, nonce, out, SHIM_ENROL_HDR_LEN,
				  text, len, ct, ct + len);
	}
	if (rc != 0) {
		shim_memzero(out, cap);
		return rc;
	}
	*out_len = len + SHIM_ENROL_LOCAL_OVERHEAD;
	return 0;
}

int shim_enrol_open_local(const struct shim_crypto_ops *c,
			  const uint8_t key[SHIM_AES256_KEY_LEN],
			  const uint8_t *in, size_t len, uint8_t *text,
			  size_t cap, size_t *text_len)
{
	size_t pt_len;
	int rc;

	if (c == NULL || c->aead_open == NULL || key == NULL || text == NULL ||
	    text_len == NULL) {
		return SHIM_EINVAL;
	}
	rc = shim_enrol_kind(in, len);
	if (rc < 0) {
		return rc;
	}
	if (rc != SHIM_ENROL_LOCAL) {
		return SHIM_EACCES;
	}
	pt_len = shim_get_u32(in + 12);
	if (cap < pt_len) {
		return SHIM_ENOSPC;
	}
	rc = c->aead_open(c->ctx, key, in + SHIM_ENROL_HDR_LEN, in,
			  SHIM_ENROL_HDR_LEN,
			  in + SHIM_ENROL_HDR_LEN + SHIM_GCM_NONCE_LEN, pt_len,
			  in + len - SHIM_GCM_TAG_LEN, text);
	if (rc != 0) {
		shim_memzero(text, pt_len);
		return SHIM_ECRYPTO;
	}
	*text_len = pt_len;
	return 0;
}

static int pub_key_id(const struct shim_crypto_ops *c,
		      const uint8_t pub[SHIM_P256_PUB_LEN],
		      uint8_t id[SHIM_ENROL_KEY_ID_LEN])
{
	uint8_t d[32];
	int rc;

	if (c->hash == NULL) {
		return SHIM_ENOTSUP;
	}
	rc = c->hash(c->ctx, SHIM_MD_SHA256, pub, SHIM_P256_PUB_LEN, d);
	if (rc == 0) {
		memcpy(id, d, SHIM_ENROL_KEY_ID_LEN);
	}
	return rc;
}

static int derive(const struct shim_crypto_ops *c,
		  const uint8_t eph_pub[SHIM_P256_PUB_LEN],
		  const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		  const uint8_t shared[32], uint8_t key[SHIM_AES256_KEY_LEN])
{
	uint8_t salt[2 * SHIM_P256_PUB_LEN];

	memcpy(salt, eph_pub, SHIM_P256_PUB_LEN);
	memcpy(salt + SHIM_P256_PUB_LEN, recipient_pub, SHIM_P256_PUB_LEN);
	return shim_hkdf_sha256(c, salt, sizeof(salt), shared, 32,
				(const uint8_t *)info, sizeof(info) - 1, key,
				SHIM_AES256_KEY_LEN);
}

int shim_enrol_seal_to(const struct shim_crypto_ops *c,
		       const struct shim_rng_ops *rng,
		       const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		       const uint8_t *text, size_t len, uint8_t *out,
		       size_t cap, size_t *out_len)
{
	uint8_t *kid = out + SHIM_ENROL_HDR_LEN;
	uint8_t *eph = kid + SHIM_ENROL_KEY_ID_LEN;
	uint8_t *nonce = eph + SHIM_P256_PUB_LEN;
	uint8_t *ct = nonce + SHIM_GCM_NONCE_LEN;
	uint8_t shared[32], key[SHIM_AES256_KEY_LEN];
	size_t aad_len = (size_t)(nonce - out);
	int rc;

	if (c == NULL || c->aead_seal == NULL || c->ecdh_ephemeral == NULL ||
	    rng == NULL || rng->fill == NULL || recipient_pub == NULL ||
	    text == NULL || out == NULL || out_len == NULL ||
	    len > SHIM_ENROL_TEXT_MAX || cap < len + SHIM_ENROL_PUB_OVERHEAD) {
		return SHIM_EINVAL;
	}
	put_header(out, SHIM_ENROL_TO_PUB, len);
	rc = pub_key_id(c, recipient_pub, kid);
	if (rc == 0) {
		rc = c->ecdh_ephemeral(c->ctx, recipient_pub, eph, shared);
	}
	if (rc == 0) {
		rc = derive(c, eph, recipient_pub, shared, key);
	}
	if (rc == 0) {
		rc = rng->fill(rng->ctx, nonce, SHIM_GCM_NONCE_LEN);
	}
	if (rc == 0) {
		rc = c->aead_seal(c->ctx, key, nonce, out, aad_len, text, len,
				  ct, ct + len);
	}
	shim_memzero(shared, sizeof(shared));
	shim_memzero(key, sizeof(key));
	if (rc != 0) {
		shim_memzero(out, cap);
		return rc;
	}
	*out_len = len + SHIM_ENROL_PUB_OVERHEAD;
	return 0;
}

int shim_enrol_open_with(const struct shim_crypto_ops *c,
			 const uint8_t my_pub[SHIM_P256_PUB_LEN],
			 shim_enrol_ecdh_fn ecdh, void *ecdh_ctx,
			 const uint8_t *in, size_t len, uint8_t *text,
			 size_t cap, size_t *text_len)
{
	const uint8_t *kid = in + SHIM_ENROL_HDR_LEN;
	const uint8_t *eph = kid + SHIM_ENROL_KEY_ID_LEN;
	const uint8_t *nonce = eph + SHIM_P256_PUB_LEN;
	uint8_t want[SHIM_ENROL_KEY_ID_LEN];
	uint8_t shared[32], key[SHIM_AES256_KEY_LEN];
	size_t pt_len;
	int rc;

	if (c == NULL || c->aead_open == NULL || my_pub == NULL ||
	    ecdh == NULL || text == NULL || text_len == NULL) {
		return SHIM_EINVAL;
	}
	rc = shim_enrol_kind(in, len);
	if (rc < 0) {
		return rc;
	}
	if (rc != SHIM_ENROL_TO_PUB) {
		return SHIM_EACCES;
	}
	rc = pub_key_id(c, my_pub, want);
	if (rc != 0) {
		return rc;
	}
	if (memcmp(want, kid, sizeof(want)) != 0) {
		return SHIM_EACCES;
	}
	pt_len = shim_get_u32(in + 12);
	if (cap < pt_len) {
		return SHIM_ENOSPC;
	}
	rc = ecdh(ecdh_ctx, eph, shared);
	if (rc == 0) {
		rc = derive(c, eph, my_pub, shared, key);
	}
	if (rc == 0) {
		rc = c->aead_open(c->ctx, key, nonce, in, (size_t)(nonce - in),
				  nonce + SHIM_GCM_NONCE_LEN, pt_len,
				  in + len - SHIM_GCM_TAG_LEN, text);
		if (rc != 0) {
			shim_memzero(text, pt_len);
			rc = SHIM_ECRYPTO;
		}
	}
	shim_memzero(shared, sizeof(shared));
	shim_memzero(key, sizeof(key));
	if (rc == 0) {
		*text_len = pt_len;
	}
	return rc;
}
