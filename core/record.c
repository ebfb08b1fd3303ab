/*
 * The session recording format: encoder, key sealing and a chunk-fed
 * reader. See record.h for the layout and docs/recording-format.md for the
 * specification.
 */
#include "record.h"

#include <string.h>

#include "syslog.h"
#include "util.h"

#define CHAIN_LABEL "SHIMREC chain v1"
#define SEAL_LABEL "SHIMREC seal v1"
#define FOOTER_LABEL "SHIMREC footer v1"

/* Largest item header: tag varint + two zigzag varints. */
#define ITEM_RESERVE 24
/* Bytes of a DATA body besides the ciphertext: type, 3 varints, tag. */
#define DATA_PREFIX_MAX (1 + 3 * 10)

/* Fixed part of the footer body (without reason text and signature). */
#define FOOTER_FIXED (1 + 8 * 7 + 4 + 1)

enum {
	RS_MAGIC = 0,
	RS_HEADER,
	RS_FRAMES,
	RS_AFTER_FOOTER,
	RS_BAD,    /* a bad frame; torn or corrupt is decided at finish */
	RS_FAILED, /* corrupt for certain, or a callback stopped us */
};


/* ---- small encoders ---------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)((v >> 1) ^ (0 - (v & 1)));
}

/* Reads a varint from p[*pos..end). Returns 0 or SHIM_ECORRUPT. */
static int get_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t i = *pos;

	while (i < end) {
		uint8_t b = p[i++];

		if (shift == 63 && (b & 0x7e) != 0) {
			return SHIM_ECORRUPT;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*pos = i;
			*out = v;
			return 0;
		}
		shift += 7;
		if (shift > 63) {
			return SHIM_ECORRUPT;
		}
	}
	return SHIM_ECORRUPT;
}

/* Differences of caller timestamps, computed without signed overflow. */
static int64_t sub_i64(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a - (uint64_t)b);
}

static int64_t add_i64(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* ---- HKDF ---------------------------------------------------------------- */

int shim_hkdf_sha256(const struct shim_crypto_ops *c, const uint8_t *salt,
		     size_t salt_len, const uint8_t *ikm, size_t ikm_len,
		     const uint8_t *info, size_t info_len, uint8_t *out,
		     size_t out_len)
{
	static const uint8_t zero_salt[32];
	uint8_t prk[32];
	uint8_t t[32 + 128 + 1];
	uint8_t block[32];
	size_t done = 0, tlen = 0;
	uint8_t ctr = 1;
	int rc;

	if (c == NULL || c->hmac == NULL || info_len > 128 ||
	    out_len > 255 * 32) {
		return SHIM_EINVAL;
	}
	if (salt == NULL || salt_len == 0) {
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	rc = c->hmac(c->ctx, SHIM_MD_SHA256, salt, salt_len, ikm, ikm_len, prk);
	if (rc != 0) {
		goto out;
	}
	while (done < out_len) {
		size_t n;

		/* T(i) = HMAC(PRK, T(i-1) || info || i) */
		memcpy(t + tlen, info, info_len);
		t[tlen + info_len] = ctr++;
		rc = c->hmac(c->ctx, SHIM_MD_SHA256, prk, sizeof(prk), t,
			     tlen + info_len + 1, block);
		if (rc != 0) {
			goto out;
		}
		n = out_len - done < 32 ? out_len - done : 32;
		memcpy(out + done, block, n);
		done += n;
		memcpy(t, block, 32);
		tlen = 32;
	}
out:
	shim_memzero(prk, sizeof(prk));
	shim_memzero(t, sizeof(t));
	shim_memzero(block, sizeof(block));
	return rc;
}

/* ---- key sealing --------------------------------------------------------- */

static size_t seal_aad(const struct shim_rec_header *h, uint8_t *aad)
{
	size_t n = sizeof(SEAL_LABEL) - 1, l;

	memcpy(aad, SEAL_LABEL, n);
	l = strlen(h->session_id);
	aad[n++] = (uint8_t)l;
	memcpy(aad + n, h->session_id, l);
	n += l;
	l = strlen(h->shim_id);
	aad[n++] = (uint8_t)l;
	memcpy(aad + n, h->shim_id, l);
	n += l;
	l = strlen(h->technician_id);
	aad[n++] = (uint8_t)l;
	memcpy(aad + n, h->technician_id, l);
	n += l;
	return n;
}

static int seal_kek(const struct shim_crypto_ops *c,
		    const struct shim_rec_header *h,
		    const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		    const uint8_t shared[32], uint8_t kek[32])
{
	uint8_t salt[2 * SHIM_P256_PUB_LEN];
	uint8_t info[sizeof(SEAL_LABEL) + SHIM_REC_ID_MAX];
	size_t ilen = sizeof(SEAL_LABEL) - 1, sl = strlen(h->session_id);

	memcpy(salt, h->eph_pub, SHIM_P256_PUB_LEN);
	memcpy(salt + SHIM_P256_PUB_LEN, recipient_pub, SHIM_P256_PUB_LEN);
	memcpy(info, SEAL_LABEL, ilen);
	memcpy(info + ilen, h->session_id, sl);
	return shim_hkdf_sha256(c, salt, sizeof(salt), shared, 32, info,
				ilen + sl, kek, 32);
}

/* 1 when s has a NUL within cap bytes. */
static int str_fits(const char *s, size_t cap)
{
	return memchr(s, 0, cap) != NULL;
}

static int header_ids_ok(const struct shim_rec_header *h)
{
	return str_fits(h->session_id, sizeof(h->session_id)) &&
	       str_fits(h->shim_id, sizeof(h->shim_id)) &&
	       str_fits(h->technician_id, sizeof(h->technician_id));
}

int shim_rec_seal_key_shared(const struct shim_crypto_ops *c,
			     const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
			     const uint8_t eph_pub[SHIM_P256_PUB_LEN],
			     const uint8_t shared[32],
			     const uint8_t key[SHIM_REC_KEY_LEN],
			     struct shim_rec_header *h)
{
	static const uint8_t nonce[SHIM_GCM_NONCE_LEN];
	uint8_t kek[32];
	uint8_t aad[sizeof(SEAL_LABEL) + 3 + 2 * SHIM_REC_ID_MAX +
		    SHIM_REC_TECH_MAX];
	int rc;

	if (c == NULL || c->hash == NULL || c->aead_seal == NULL ||
	    !header_ids_ok(h)) {
		return SHIM_EINVAL;
	}
	memcpy(h->eph_pub, eph_pub, SHIM_P256_PUB_LEN);
	rc = c->hash(c->ctx, SHIM_MD_SHA256, recipient_pub, SHIM_P256_PUB_LEN,
		     h->recipient_id);
	if (rc != 0) {
		goto out;
	}
	rc = seal_kek(c, h, recipient_pub, shared, kek);
	if (rc != 0) {
		goto out;
	}
	h->seal_alg = SHIM_REC_SEAL_P256_HKDF_AESGCM;
	rc = c->aead_seal(c->ctx, kek, nonce, aad, seal_aad(h, aad), key,
			  SHIM_REC_KEY_LEN, h->sealed_key, h->sealed_tag);
out:
	shim_memzero(kek, sizeof(kek));
	return rc;
}

int shim_rec_seal_key(const struct shim_crypto_ops *c,
		      const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		      const uint8_t key[SHIM_REC_KEY_LEN],
		      struct shim_rec_header *h)
{
	uint8_t eph[SHIM_P256_PUB_LEN], shared[32];
	int rc;

	if (c == NULL || c->ecdh_ephemeral == NULL || !header_ids_ok(h)) {
		return SHIM_EINVAL;
	}
	rc = c->ecdh_ephemeral(c->ctx, recipient_pub, eph, shared);
	if (rc == 0) {
		rc = shim_rec_seal_key_shared(c, recipient_pub, eph, shared,
					      key, h);
	}
	shim_memzero(shared, sizeof(shared));
	return rc;
}

int shim_rec_unseal_key(const struct shim_crypto_ops *c,
			const struct shim_rec_header *h,
			const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
			const uint8_t shared[32], uint8_t key[SHIM_REC_KEY_LEN])
{
	static const uint8_t nonce[SHIM_GCM_NONCE_LEN];
	uint8_t kek[32], id[32];
	uint8_t aad[sizeof(SEAL_LABEL) + 3 + 2 * SHIM_REC_ID_MAX +
		    SHIM_REC_TECH_MAX];
	int rc;

	if (c == NULL || c->aead_open == NULL || c->hash == NULL ||
	    !header_ids_ok(h) ||
	    h->seal_alg != SHIM_REC_SEAL_P256_HKDF_AESGCM) {
		return SHIM_EINVAL;
	}
	rc = c->hash(c->ctx, SHIM_MD_SHA256, recipient_pub, SHIM_P256_PUB_LEN,
		     id);
	if (rc != 0) {
		return rc;
	}
	if (!shim_ct_equal(id, h->recipient_id, sizeof(id))) {
		return SHIM_ECRYPTO;
	}
	rc = seal_kek(c, h, recipient_pub, shared, kek);
	if (rc == 0) {
		rc = c->aead_open(c->ctx, kek, nonce, aad, seal_aad(h, aad),
				  h->sealed_key, SHIM_REC_KEY_LEN,
				  h->sealed_tag, key);
		if (rc != 0) {
			rc = SHIM_ECRYPTO;
		}
	}
	shim_memzero(kek, sizeof(kek));
	return rc;
}

/* ---- frames -------------------------------------------------------------- */

/* The frame checksum: the platform's CRC-32 where it has one. */
static uint32_t frame_crc(const struct shim_crypto_ops *c, const uint8_t *p,
			  size_t n)
{
	return c != NULL && c->crc32 != NULL ? c->crc32(c->ctx, p, n) :
					       shim_crc32(0, p, n);
}

/* Wraps body (already at out + 4, body_len bytes) into a frame; c may be
 * NULL (the header is written before any crypto is at hand). */
static size_t frame_close(const struct shim_crypto_ops *c, uint8_t *out,
			  size_t body_len)
{
	shim_put_u32(out, (uint32_t)body_len);
	shim_put_u32(out + 4 + body_len, frame_crc(c, out, 4 + body_len));
	return body_len + SHIM_REC_FRAME_OVERHEAD;
}

static int chain_step(const struct shim_crypto_ops *c, uint8_t chain[32],
		      const uint8_t *frame, size_t len)
{
	uint8_t next[32];
	int rc;

	rc = c->hmac(c->ctx, SHIM_MD_SHA256, chain, 32, frame, len, next);
	if (rc == 0) {
		memcpy(chain, next, 32);
	}
	return rc;
}

static int chain_start(const struct shim_crypto_ops *c, uint8_t chain[32],
		       const uint8_t *hdr, size_t len)
{
	return c->hmac(c->ctx, SHIM_MD_SHA256, (const uint8_t *)CHAIN_LABEL,
		       sizeof(CHAIN_LABEL) - 1, hdr, len, chain);
}

static size_t put_str8(uint8_t *p, const char *s)
{
	size_t l = strlen(s);

	p[0] = (uint8_t)l;
	memcpy(p + 1, s, l);
	return l + 1;
}

int shim_rec_header_encode(const struct shim_rec_header *h, uint8_t *out,
			   size_t cap, size_t *len)
{
	uint8_t *b;
	size_t n = 0;

	*len = 0;
	if (!header_ids_ok(h)) {
		return SHIM_EINVAL;
	}
	if (cap < SHIM_REC_HEADER_MAX) {
		return SHIM_ENOSPC;
	}
	memcpy(out, SHIM_REC_MAGIC, SHIM_REC_MAGIC_LEN);
	b = out + SHIM_REC_MAGIC_LEN + 4;
	b[n++] = SHIM_REC_HEADER;
	shim_put_u16(b + n, SHIM_REC_VERSION);
	n += 2;
	n += put_str8(b + n, h->session_id);
	n += put_str8(b + n, h->shim_id);
	n += put_str8(b + n, h->technician_id);
	shim_put_u64(b + n, (uint64_t)h->start_wall_ns);
	n += 8;
	shim_put_u64(b + n, (uint64_t)h->start_mono_ns);
	n += 8;
	b[n++] = h->seal_alg;
	b[n++] = h->custody;
	memcpy(b + n, h->recipient_id, SHIM_REC_HASH_LEN);
	n += SHIM_REC_HASH_LEN;
	memcpy(b + n, h->eph_pub, SHIM_P256_PUB_LEN);
	n += SHIM_P256_PUB_LEN;
	memcpy(b + n, h->sealed_key, SHIM_REC_KEY_LEN);
	n += SHIM_REC_KEY_LEN;
	memcpy(b + n, h->sealed_tag, SHIM_GCM_TAG_LEN);
	n += SHIM_GCM_TAG_LEN;
	memcpy(b + n, h->identity_pub, SHIM_P256_PUB_LEN);
	n += SHIM_P256_PUB_LEN;
	*len = SHIM_REC_MAGIC_LEN +
	       frame_close(NULL, out + SHIM_REC_MAGIC_LEN, n);
	return 0;
}

static int get_str8(const uint8_t *b, size_t end, size_t *pos, char *out,
		    size_t max)
{
	size_t l;

	if (*pos >= end) {
		return SHIM_ECORRUPT;
	}
	l = b[*pos];
	if (l > max || end - *pos - 1 < l || memchr(b + *pos + 1, 0, l)) {
		return SHIM_ECORRUPT;
	}
	memcpy(out, b + *pos + 1, l);
	out[l] = '\0';
	*pos += l + 1;
	return 0;
}

/* Parses a header body (type byte first). SHIM_ENOTSUP for a version we
 * do not read, SHIM_ECORRUPT for anything malformed. */
static int header_decode(const uint8_t *b, size_t n, struct shim_rec_header *h)
{
	size_t pos = 3;
	const size_t fixed = 8 + 8 + 2 + SHIM_REC_HASH_LEN +
			     SHIM_P256_PUB_LEN + SHIM_REC_KEY_LEN +
			     SHIM_GCM_TAG_LEN + SHIM_P256_PUB_LEN;

	memset(h, 0, sizeof(*h));
	if (n < 3 || b[0] != SHIM_REC_HEADER) {
		return SHIM_ECORRUPT;
	}
	h->version = shim_get_u16(b + 1);
	if (h->version != SHIM_REC_VERSION) {
		return SHIM_ENOTSUP;
	}
	if (get_str8(b, n, &pos, h->session_id, SHIM_REC_ID_MAX) != 0 ||
	    get_str8(b, n, &pos, h->shim_id, SHIM_REC_ID_MAX) != 0 ||
	    get_str8(b, n, &pos, h->technician_id, SHIM_REC_TECH_MAX) != 0) {
		return SHIM_ECORRUPT;
	}
	if (n - pos != fixed) {
		return SHIM_ECORRUPT;
	}
	h->start_wall_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	h->start_mono_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	h->seal_alg = b[pos++];
	h->custody = b[pos++];
	memcpy(h->recipient_id, b + pos, SHIM_REC_HASH_LEN);
	pos += SHIM_REC_HASH_LEN;
	memcpy(h->eph_pub, b + pos, SHIM_P256_PUB_LEN);
	pos += SHIM_P256_PUB_LEN;
	memcpy(h->sealed_key, b + pos, SHIM_REC_KEY_LEN);
	pos += SHIM_REC_KEY_LEN;
	memcpy(h->sealed_tag, b + pos, SHIM_GCM_TAG_LEN);
	pos += SHIM_GCM_TAG_LEN;
	memcpy(h->identity_pub, b + pos, SHIM_P256_PUB_LEN);
	if (h->session_id[0] == '\0') {
		return SHIM_ECORRUPT;
	}
	return 0;
}

/* ---- footer -------------------------------------------------------------- */

static size_t footer_body(const struct shim_rec_footer *f, uint8_t *b)
{
	size_t n = 0;

	b[n++] = SHIM_REC_FOOTER;
	shim_put_u64(b + n, (uint64_t)f->end_wall_ns);
	n += 8;
	shim_put_u64(b + n, (uint64_t)f->end_mono_ns);
	n += 8;
	shim_put_u64(b + n, f->bytes_in);
	n += 8;
	shim_put_u64(b + n, f->bytes_out);
	n += 8;
	shim_put_u64(b + n, f->records);
	n += 8;
	shim_put_u64(b + n, f->dropped);
	n += 8;
	shim_put_u64(b + n, f->cut);
	n += 8;
	shim_put_u32(b + n, f->flags);
	n += 4;
	n += put_str8(b + n, f->reason);
	memcpy(b + n, f->chain_head, SHIM_REC_HASH_LEN);
	n += SHIM_REC_HASH_LEN;
	return n;
}

/* SHA-256(FOOTER_LABEL || body-without-signature). */
static int footer_digest(const struct shim_crypto_ops *c, const uint8_t *body,
			 size_t n, uint8_t digest[32])
{
	uint8_t m[sizeof(FOOTER_LABEL) + SHIM_REC_FOOTER_MAX];
	size_t l = sizeof(FOOTER_LABEL) - 1;

	if (n > SHIM_REC_FOOTER_MAX) {
		return SHIM_EINVAL;
	}
	memcpy(m, FOOTER_LABEL, l);
	memcpy(m + l, body, n);
	return c->hash(c->ctx, SHIM_MD_SHA256, m, l + n, digest);
}

int shim_rec_footer_encode(const struct shim_crypto_ops *c,
			   struct shim_rec_footer *f, uint8_t *out, size_t cap,
			   size_t *len)
{
	uint8_t digest[32];
	size_t n;
	int rc;

	*len = 0;
	if (!str_fits(f->reason, sizeof(f->reason))) {
		return SHIM_EINVAL;
	}
	if (cap < SHIM_REC_FOOTER_MAX) {
		return SHIM_ENOSPC;
	}
	if (c->identity_sign == NULL || c->hash == NULL) {
		return SHIM_ENOTSUP;
	}
	n = footer_body(f, out + 4);
	rc = footer_digest(c, out + 4, n, digest);
	if (rc != 0) {
		return rc;
	}
	rc = c->identity_sign(c->ctx, digest, f->sig);
	if (rc != 0) {
		return rc;
	}
	memcpy(out + 4 + n, f->sig, SHIM_P256_SIG_LEN);
	n += SHIM_P256_SIG_LEN;
	*len = frame_close(c, out, n);
	return 0;
}

static int footer_decode(const uint8_t *b, size_t n, struct shim_rec_footer *f)
{
	size_t pos = 1;

	memset(f, 0, sizeof(*f));
	if (n < FOOTER_FIXED + SHIM_REC_HASH_LEN + SHIM_P256_SIG_LEN) {
		return SHIM_ECORRUPT;
	}
	f->end_wall_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	f->end_mono_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	f->bytes_in = shim_get_u64(b + pos);
	pos += 8;
	f->bytes_out = shim_get_u64(b + pos);
	pos += 8;
	f->records = shim_get_u64(b + pos);
	pos += 8;
	f->dropped = shim_get_u64(b + pos);
	pos += 8;
	f->cut = shim_get_u64(b + pos);
	pos += 8;
	f->flags = shim_get_u32(b + pos);
	pos += 4;
	if (get_str8(b, n, &pos, f->reason, SHIM_REC_REASON_MAX) != 0) {
		return SHIM_ECORRUPT;
	}
	if (n - pos != SHIM_REC_HASH_LEN + SHIM_P256_SIG_LEN) {
		return SHIM_ECORRUPT;
	}
	memcpy(f->chain_head, b + pos, SHIM_REC_HASH_LEN);
	pos += SHIM_REC_HASH_LEN;
	memcpy(f->sig, b + pos, SHIM_P256_SIG_LEN);
	return 0;
}

/* ---- writer -------------------------------------------------------------- */

int shim_rec_writer_init(struct shim_rec_writer *w,
			 const struct shim_crypto_ops *c,
			 const uint8_t key[SHIM_REC_KEY_LEN],
			 const struct shim_rec_header *h, const uint8_t *hdr,
			 size_t hdr_len, uint8_t *plain, size_t plain_cap)
{
	memset(w, 0, sizeof(*w));
	if (c == NULL || c->hmac == NULL || c->aead_seal == NULL ||
	    plain == NULL || plain_cap < SHIM_REC_MIN_PLAIN ||
	    plain_cap > SHIM_REC_MAX_PLAIN) {
		return SHIM_EINVAL;
	}
	w->crypto = c;
	memcpy(w->key, key, SHIM_REC_KEY_LEN);
	w->plain = plain;
	w->plain_cap = plain_cap;
	w->start_mono = h->start_mono_ns;
	w->prev_wall = h->start_wall_ns;
	w->prev_mono = h->start_mono_ns;
	w->last_wall = h->start_wall_ns;
	w->last_mono = h->start_mono_ns;
	return chain_start(c, w->chain, hdr, hdr_len);
}

static size_t item_header(uint8_t *p, enum shim_rec_kind kind, size_t len,
			  int64_t dmono, int64_t skew)
{
	size_t n;

	n = put_varint(p, ((uint64_t)len << 2) | (uint64_t)kind);
	n += put_varint(p + n, zigzag(dmono));
	n += put_varint(p + n, zigzag(skew));
	return n;
}

static void item_times(struct shim_rec_writer *w, int64_t wall, int64_t mono,
		       int64_t *dmono, int64_t *skew)
{
	*dmono = sub_i64(mono, w->prev_mono);
	*skew = sub_i64(sub_i64(wall, w->prev_wall), *dmono);
	w->prev_wall = wall;
	w->prev_mono = mono;
}

/* Encodes the open traffic item's header in front of its data. */
static void close_open(struct shim_rec_writer *w)
{
	uint8_t hdr[ITEM_RESERVE];
	int64_t dmono, skew;
	size_t hl;

	if (!w->open) {
		return;
	}
	item_times(w, w->open_wall, w->open_mono, &dmono, &skew);
	hl = item_header(hdr, w->open_kind, w->open_len, dmono, skew);
	memcpy(w->plain + w->plain_len, hdr, hl);
	if (hl != ITEM_RESERVE) {
		memmove(w->plain + w->plain_len + hl, w->plain + w->open_data,
			w->open_len);
	}
	w->plain_len += hl + w->open_len;
	w->open = 0;
}

size_t shim_rec_writer_room(const struct shim_rec_writer *w)
{
	size_t used = w->plain_len + ITEM_RESERVE;

	if (w->open) {
		used += ITEM_RESERVE + w->open_len;
	}
	return used >= w->plain_cap ? 0 : w->plain_cap - used;
}

size_t shim_rec_writer_pending(const struct shim_rec_writer *w)
{
	return w->plain_len + (w->open ? ITEM_RESERVE + w->open_len : 0);
}

int shim_rec_writer_add(struct shim_rec_writer *w, enum shim_rec_kind kind,
			const uint8_t *data, size_t len, int64_t wall_ns,
			int64_t mono_ns)
{
	int64_t dmono, skew;

	if (kind != SHIM_REC_IN && kind != SHIM_REC_OUT &&
	    kind != SHIM_REC_META) {
		return SHIM_EINVAL;
	}
	if (len > 0 && data == NULL) {
		return SHIM_EINVAL;
	}
	if (kind != SHIM_REC_META && len == 0) {
		return 0;
	}
	/* Extend the open item: same direction, in quick succession, and
	 * the clock did not step. */
	if (w->open && kind == w->open_kind &&
	    sub_i64(mono_ns, w->open_last_mono) >= 0 &&
	    sub_i64(mono_ns, w->open_last_mono) < SHIM_REC_COALESCE_NS &&
	    sub_i64(sub_i64(wall_ns, w->last_wall),
		    sub_i64(mono_ns, w->last_mono)) == 0) {
		if (shim_rec_writer_room(w) + ITEM_RESERVE < len) {
			return SHIM_ENOSPC;
		}
		memcpy(w->plain + w->open_data + w->open_len, data, len);
		w->open_len += len;
		w->open_last_mono = mono_ns;
		goto count;
	}
	if (shim_rec_writer_room(w) < len) {
		return SHIM_ENOSPC;
	}
	close_open(w);
	if (kind == SHIM_REC_META) {
		item_times(w, wall_ns, mono_ns, &dmono, &skew);
		w->plain_len += item_header(w->plain + w->plain_len, kind, len,
					    dmono, skew);
		memcpy(w->plain + w->plain_len, data, len);
		w->plain_len += len;
	} else {
		w->open = 1;
		w->open_kind = kind;
		w->open_data = w->plain_len + ITEM_RESERVE;
		w->open_len = len;
		w->open_wall = wall_ns;
		w->open_mono = mono_ns;
		w->open_last_mono = mono_ns;
		memcpy(w->plain + w->open_data, data, len);
	}
count:
	if (kind == SHIM_REC_IN) {
		w->batch_in += len;
	} else if (kind == SHIM_REC_OUT) {
		w->batch_out += len;
	}
	w->last_wall = wall_ns;
	w->last_mono = mono_ns;
	return 0;
}

static void data_nonce(uint64_t seq, uint8_t nonce[SHIM_GCM_NONCE_LEN])
{
	shim_put_u32(nonce, SHIM_REC_DATA);
	shim_put_u64(nonce + 4, seq);
}

/* AAD of a DATA record: its clear prefix, sequence number, chain. */
static size_t data_aad(const uint8_t *prefix, size_t plen, uint64_t seq,
		       const uint8_t chain[32], uint8_t *aad)
{
	memcpy(aad, prefix, plen);
	shim_put_u64(aad + plen, seq);
	memcpy(aad + plen + 8, chain, 32);
	return plen + 40;
}

int shim_rec_writer_seal(struct shim_rec_writer *w, uint8_t *out, size_t cap,
			 size_t *len)
{
	uint8_t nonce[SHIM_GCM_NONCE_LEN];
	uint8_t aad[DATA_PREFIX_MAX + 40];
	uint8_t *b = out + 4;
	size_t n = 0, alen, flen;
	int64_t end_ms;
	int rc;

	*len = 0;
	close_open(w);
	if (w->plain_len == 0) {
		return 0;
	}
	if (cap < w->plain_len + DATA_PREFIX_MAX + SHIM_GCM_TAG_LEN +
			  SHIM_REC_FRAME_OVERHEAD) {
		return SHIM_ENOSPC;
	}
	end_ms = sub_i64(w->last_mono, w->start_mono) / 1000000;
	if (end_ms < 0) {
		end_ms = 0;
	}
	b[n++] = SHIM_REC_DATA;
	n += put_varint(b + n, w->batch_in);
	n += put_varint(b + n, w->batch_out);
	n += put_varint(b + n, (uint64_t)end_ms);
	alen = data_aad(b, n, w->records, w->chain, aad);
	data_nonce(w->records, nonce);
	rc = w->crypto->aead_seal(w->crypto->ctx, w->key, nonce, aad, alen,
				  w->plain, w->plain_len, b + n,
				  b + n + w->plain_len);
	if (rc != 0) {
		return rc;
	}
	n += w->plain_len + SHIM_GCM_TAG_LEN;
	flen = frame_close(w->crypto, out, n);
	rc = chain_step(w->crypto, w->chain, out, flen);
	if (rc != 0) {
		return rc;
	}
	shim_memzero(w->plain, w->plain_len);
	w->records++;
	w->bytes_in += w->batch_in;
	w->bytes_out += w->batch_out;
	w->batch_in = 0;
	w->batch_out = 0;
	w->plain_len = 0;
	*len = flen;
	return 0;
}

void shim_rec_writer_summary(const struct shim_rec_writer *w,
			     struct shim_rec_footer *f)
{
	f->bytes_in = w->bytes_in;
	f->bytes_out = w->bytes_out;
	f->records = w->records;
	memcpy(f->chain_head, w->chain, SHIM_REC_HASH_LEN);
}

void shim_rec_writer_wipe(struct shim_rec_writer *w)
{
	if (w->plain != NULL) {
		shim_memzero(w->plain, w->plain_cap);
	}
	shim_memzero(w, sizeof(*w));
}

/* ---- reader -------------------------------------------------------------- */

static const char *const damage_msg[] = {
#define SHIM__REC_DMG_MSG(name, msg) msg,
	SHIM_REC_DAMAGE_MAP(SHIM__REC_DMG_MSG)
#undef SHIM__REC_DMG_MSG
};

static const char *const damage_name[] = {
#define SHIM__REC_DMG_NAME(name, msg) #name,
	SHIM_REC_DAMAGE_MAP(SHIM__REC_DMG_NAME)
#undef SHIM__REC_DMG_NAME
};

const char *shim_rec_damage_str(int damage)
{
	if (damage < 0 || damage >= SHIM_REC_D__COUNT) {
		return "unknown damage";
	}
	return damage_msg[damage];
}

const char *shim_rec_damage_name(int damage)
{
	if (damage < 0 || damage >= SHIM_REC_D__COUNT) {
		return "UNKNOWN";
	}
	return damage_name[damage];
}

/* Where frames are assembled: the magic sits in front of the header. */
#define FRAME_AREA (SHIM_REC_MAX_BODY + 16)

void shim_rec_reader_init(struct shim_rec_reader *r,
			  const struct shim_crypto_ops *c,
			  const struct shim_rec_reader_cb *cb, uint8_t *buf,
			  size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->crypto = c;
	if (cb != NULL) {
		r->cb = *cb;
	}
	r->buf = buf;
	r->cap = cap;
	r->state = RS_MAGIC;
	r->need = SHIM_REC_MAGIC_LEN;
	r->res.status = SHIM_REC_UNSEALED;
}

void shim_rec_reader_set_key(struct shim_rec_reader *r,
			     const uint8_t key[SHIM_REC_KEY_LEN])
{
	memcpy(r->key, key, SHIM_REC_KEY_LEN);
	r->have_key = 1;
}

static int fail(struct shim_rec_reader *r, enum shim_rec_damage d,
		uint64_t off)
{
	r->state = RS_FAILED;
	r->res.status = SHIM_REC_CORRUPT;
	r->res.damage = d;
	r->res.offset = off;
	r->res.record = r->res.records;
	return SHIM_ECORRUPT;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* Reads a decimal number of 1..20 digits at p[*pos] without overflow. */
static int dec_u64(const uint8_t *p, size_t n, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	size_t start = *pos;

	while (*pos < n && p[*pos] >= '0' && p[*pos] <= '9') {
		uint64_t d = (uint64_t)(p[*pos] - '0');

		if (v > (UINT64_MAX - d) / 10) {
			return SHIM_ECORRUPT;
		}
		v = v * 10 + d;
		(*pos)++;
	}
	if (*pos == start) {
		return SHIM_ECORRUPT;
	}
	*out = v;
	return 0;
}

/* Matches the literal lit at p[*pos]. */
static int lit(const uint8_t *p, size_t n, size_t *pos, const char *s)
{
	size_t l = strlen(s);

	if (n - *pos < l || memcmp(p + *pos, s, l) != 0) {
		return SHIM_ECORRUPT;
	}
	*pos += l;
	return 0;
}

/* Accounts a meta item named SHIM_REC_GAP_EVENT. Its detail is
 * "N bytes not recorded", or "N bytes not recorded (in I, out O)" with
 * I + O = N. A marker that does not read that way still marks the
 * recording degraded and is counted in gap_bad. */
static void note_gap(struct shim_rec_result *o, const uint8_t *d, size_t n)
{
	size_t pos = 0;
	uint64_t total, in, out;

	o->gaps = add_sat(o->gaps, 1);
	o->degraded = 1;
	if (dec_u64(d, n, &pos, &total) != 0 ||
	    lit(d, n, &pos, " bytes not recorded") != 0) {
		o->gap_bad = add_sat(o->gap_bad, 1);
		return;
	}
	if (pos == n) {
		o->gap_bytes = add_sat(o->gap_bytes, total);
		return;
	}
	if (lit(d, n, &pos, " (in ") != 0 || dec_u64(d, n, &pos, &in) != 0 ||
	    lit(d, n, &pos, ", out ") != 0 || dec_u64(d, n, &pos, &out) != 0 ||
	    lit(d, n, &pos, ")") != 0 || pos != n || in + out < in ||
	    in + out != total) {
		o->gap_bad = add_sat(o->gap_bad, 1);
		return;
	}
	o->gap_bytes = add_sat(o->gap_bytes, total);
	o->gap_in = add_sat(o->gap_in, in);
	o->gap_out = add_sat(o->gap_out, out);
}

static void note_meta(struct shim_rec_result *o, const uint8_t *p, size_t n)
{
	static const char name[] = SHIM_REC_GAP_EVENT;
	size_t nl = sizeof(name) - 1;

	if (n > nl && memcmp(p, name, nl) == 0 && p[nl] == 0) {
		note_gap(o, p + nl + 1, n - nl - 1);
	}
}

static int decode_items(struct shim_rec_reader *r, const uint8_t *p, size_t n)
{
	size_t pos = 0;

	while (pos < n) {
		struct shim_rec_item it;
		uint64_t tag, zm, zs;
		int64_t dmono;

		if (get_varint(p, n, &pos, &tag) != 0 ||
		    get_varint(p, n, &pos, &zm) != 0 ||
		    get_varint(p, n, &pos, &zs) != 0) {
			return SHIM_ECORRUPT;
		}
		if ((tag & 3) > SHIM_REC_META || (tag >> 2) > n - pos) {
			return SHIM_ECORRUPT;
		}
		dmono = unzigzag(zm);
		it.kind = (enum shim_rec_kind)(tag & 3);
		it.len = (size_t)(tag >> 2);
		it.data = p + pos;
		it.mono_ns = add_i64(r->prev_mono, dmono);
		it.wall_ns = add_i64(add_i64(r->prev_wall, dmono),
				     unzigzag(zs));
		it.record = r->res.records;
		r->prev_mono = it.mono_ns;
		r->prev_wall = it.wall_ns;
		pos += it.len;
		if (it.kind == SHIM_REC_META) {
			note_meta(&r->res, it.data, it.len);
		}
		if (r->cb.item != NULL) {
			int rc = r->cb.item(r->cb.arg, &it);

			if (rc != 0) {
				r->cb_err = rc;
				return rc;
			}
		}
	}
	return 0;
}

static int on_data(struct shim_rec_reader *r, const uint8_t *frame,
		   size_t flen)
{
	const uint8_t *b = frame + 4;
	size_t n = flen - SHIM_REC_FRAME_OVERHEAD, pos = 1;
	uint64_t nin, nout, end_ms;

	if (get_varint(b, n, &pos, &nin) != 0 ||
	    get_varint(b, n, &pos, &nout) != 0 ||
	    get_varint(b, n, &pos, &end_ms) != 0 ||
	    n - pos < SHIM_GCM_TAG_LEN + 1 ||
	    n - pos - SHIM_GCM_TAG_LEN > SHIM_REC_MAX_PLAIN) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	if (nin + nout < nin || nin + nout > n - pos - SHIM_GCM_TAG_LEN) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	if (r->have_key) {
		uint8_t nonce[SHIM_GCM_NONCE_LEN];
		uint8_t aad[DATA_PREFIX_MAX + 40];
		uint8_t *plain = r->buf + FRAME_AREA;
		size_t clen = n - pos - SHIM_GCM_TAG_LEN, alen;
		int rc;

		if (pos > DATA_PREFIX_MAX) {
			return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
		}
		alen = data_aad(b, pos, r->res.records, r->res.chain, aad);
		data_nonce(r->res.records, nonce);
		rc = r->crypto->aead_open(r->crypto->ctx, r->key, nonce, aad,
					  alen, b + pos, clen, b + pos + clen,
					  plain);
		if (rc != 0) {
			return fail(r, SHIM_REC_D_RECORD_AUTH, r->frame_off);
		}
		rc = decode_items(r, plain, clen);
		shim_memzero(plain, clen);
		if (rc != 0) {
			if (r->cb_err != 0) {
				r->state = RS_FAILED;
				return rc;
			}
			return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
		}
	}
	if (r->res.bytes_in + nin < r->res.bytes_in ||
	    r->res.bytes_out + nout < r->res.bytes_out) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	r->res.bytes_in += nin;
	r->res.bytes_out += nout;
	r->res.last_end_ms = (int64_t)(end_ms & 0x7fffffffffffffffULL);
	r->res.records++;
	return 0;
}

static int on_footer(struct shim_rec_reader *r, const uint8_t *frame,
		     size_t flen)
{
	const uint8_t *b = frame + 4;
	size_t n = flen - SHIM_REC_FRAME_OVERHEAD;
	struct shim_rec_footer *f = &r->ftr;
	uint8_t digest[32];

	if (footer_decode(b, n, f) != 0) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	if (r->crypto->hash == NULL || r->crypto->verify == NULL ||
	    footer_digest(r->crypto, b, n - SHIM_P256_SIG_LEN, digest) != 0 ||
	    r->crypto->verify(r->crypto->ctx, r->hdr.identity_pub, digest,
			      f->sig) != 0) {
		return fail(r, SHIM_REC_D_SIG, r->frame_off);
	}
	if (f->records != r->res.records) {
		return fail(r, SHIM_REC_D_COUNT, r->frame_off);
	}
	if (!shim_ct_equal(f->chain_head, r->res.chain, SHIM_REC_HASH_LEN)) {
		return fail(r, SHIM_REC_D_CHAIN, r->frame_off);
	}
	if (f->bytes_in != r->res.bytes_in || f->bytes_out != r->res.bytes_out) {
		return fail(r, SHIM_REC_D_BYTES, r->frame_off);
	}
	r->res.have_footer = 1;
	if (r->cb.footer != NULL) {
		int rc = r->cb.footer(r->cb.arg, f);

		if (rc != 0) {
			r->cb_err = rc;
			r->state = RS_FAILED;
			return rc;
		}
	}
	r->state = RS_AFTER_FOOTER;
	return 0;
}

/* A whole frame (length, body, CRC) sits at frame, flen bytes. */
static int on_frame(struct shim_rec_reader *r, const uint8_t *frame,
		    size_t flen)
{
	size_t blen = flen - SHIM_REC_FRAME_OVERHEAD;
	uint8_t type;
	int rc;

	if (frame_crc(r->crypto, frame, 4 + blen) !=
	    shim_get_u32(frame + 4 + blen)) {
		if (r->state == RS_HEADER) {
			return fail(r, SHIM_REC_D_BAD_HEADER, r->frame_off);
		}
		/* Torn or altered: decided by what follows. */
		r->state = RS_BAD;
		r->res.damage = SHIM_REC_D_BAD_CRC;
		r->res.offset = r->frame_off;
		r->res.record = r->res.records;
		r->bad_end = r->frame_off + flen;
		return 0;
	}
	type = frame[4];
	if (r->state == RS_HEADER) {
		rc = header_decode(frame + 4, blen, &r->hdr);
		if (rc == SHIM_ENOTSUP) {
			return fail(r, SHIM_REC_D_BAD_VERSION, r->frame_off);
		}
		if (rc != 0) {
			return fail(r, SHIM_REC_D_BAD_HEADER, r->frame_off);
		}
		/* magic + header frame are contiguous in buf */
		rc = chain_start(r->crypto, r->res.chain, r->buf,
				 SHIM_REC_MAGIC_LEN + flen);
		if (rc != 0) {
			return fail(r, SHIM_REC_D_BAD_HEADER, r->frame_off);
		}
		r->prev_wall = r->hdr.start_wall_ns;
		r->prev_mono = r->hdr.start_mono_ns;
		r->res.have_header = 1;
		r->state = RS_FRAMES;
		if (r->cb.header != NULL) {
			rc = r->cb.header(r->cb.arg, &r->hdr);
			if (rc != 0) {
				r->cb_err = rc;
				r->state = RS_FAILED;
				return rc;
			}
		}
		r->res.decrypted = r->have_key;
		return 0;
	}
	if (type == SHIM_REC_DATA) {
		rc = on_data(r, frame, flen);
		if (rc != 0) {
			return rc;
		}
		rc = chain_step(r->crypto, r->res.chain, frame, flen);
		if (rc != 0) {
			return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
		}
		return 0;
	}
	if (type == SHIM_REC_FOOTER) {
		return on_footer(r, frame, flen);
	}
	return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
}

static uint8_t *frame_buf(struct shim_rec_reader *r)
{
	/* The header frame follows the magic so both can be hashed. */
	return r->state == RS_HEADER ? r->buf + SHIM_REC_MAGIC_LEN : r->buf;
}

int shim_rec_reader_feed(struct shim_rec_reader *r, const uint8_t *data,
			 size_t len)
{
	size_t i = 0;

	if (r->buf == NULL || r->cap < SHIM_REC_READER_BUF ||
	    r->crypto == NULL || r->crypto->hmac == NULL) {
		return SHIM_EINVAL;
	}
	while (i < len) {
		uint8_t *fb;
		size_t take;
		int rc;

		switch (r->state) {
		case RS_FAILED:
			r->pos += len - i;
			return r->cb_err != 0 ? r->cb_err : SHIM_ECORRUPT;
		case RS_BAD:
		case RS_AFTER_FOOTER:
			/* Only the shape of what follows matters now. */
			for (; i < len; i++, r->pos++) {
				if (data[i] != 0 && r->pos >= r->bad_end) {
					r->nonzero_after = 1;
				}
			}
			if (r->state == RS_AFTER_FOOTER && r->pos > r->bad_end) {
				r->state = RS_FAILED;
				r->res.status = SHIM_REC_CORRUPT;
				r->res.damage = SHIM_REC_D_TRAILING;
				r->res.offset = r->bad_end;
				r->res.record = r->res.records;
				return SHIM_ECORRUPT;
			}
			return 0;
		case RS_MAGIC:
			take = r->need - r->have;
			if (take > len - i) {
				take = len - i;
			}
			memcpy(r->buf + r->have, data + i, take);
			r->have += take;
			r->pos += take;
			i += take;
			if (r->have < r->need) {
				return 0;
			}
			if (memcmp(r->buf, SHIM_REC_MAGIC,
				   SHIM_REC_MAGIC_LEN) != 0) {
				return fail(r, SHIM_REC_D_BAD_MAGIC, 0);
			}
			r->state = RS_HEADER;
			r->have = 0;
			r->need = 4;
			r->frame_off = r->pos;
			break;
		default: /* RS_HEADER, RS_FRAMES */
			fb = frame_buf(r);
			take = r->need - r->have;
			if (take > len - i) {
				take = len - i;
			}
			memcpy(fb + r->have, data + i, take);
			r->have += take;
			r->pos += take;
			i += take;
			if (r->have < r->need) {
				return 0;
			}
			if (r->need == 4) {
				uint32_t bl = shim_get_u32(fb);

				if (bl == 0 || bl > SHIM_REC_MAX_BODY ||
				    (r->state == RS_HEADER &&
				     bl > SHIM_REC_HEADER_MAX)) {
					if (r->state == RS_HEADER) {
						return fail(r,
							    SHIM_REC_D_BAD_HEADER,
							    r->frame_off);
					}
					r->state = RS_BAD;
					r->res.damage = SHIM_REC_D_BAD_FRAME;
					r->res.offset = r->frame_off;
					r->res.record = r->res.records;
					r->bad_len_zero = bl == 0;
					r->bad_end = r->frame_off;
					r->nonzero_after = bl != 0;
					break;
				}
				r->need = 4 + (size_t)bl + 4;
				break;
			}
			rc = on_frame(r, fb, r->have);
			if (r->state == RS_FRAMES ||
			    r->state == RS_AFTER_FOOTER) {
				r->res.good_end = r->pos;
				r->frame_off = r->pos;
				r->bad_end = r->pos;
				r->have = 0;
				r->need = 4;
			}
			if (rc != 0) {
				return rc;
			}
			break;
		}
	}
	return 0;
}

int shim_rec_reader_finish(struct shim_rec_reader *r,
			   const uint8_t *expect_identity,
			   struct shim_rec_result *res)
{
	struct shim_rec_result *o = &r->res;
	int rc;

	o->total = r->pos;
	switch (r->state) {
	case RS_MAGIC:
		o->status = r->pos == 0 ? SHIM_REC_CORRUPT : SHIM_REC_TORN;
		o->damage = r->pos == 0 ? SHIM_REC_D_EMPTY : SHIM_REC_D_TORN;
		o->offset = 0;
		break;
	case RS_HEADER:
		o->status = SHIM_REC_TORN;
		o->damage = SHIM_REC_D_TORN;
		o->offset = r->frame_off;
		break;
	case RS_FRAMES:
		if (r->have == 0) {
			o->status = SHIM_REC_UNSEALED;
			o->damage = SHIM_REC_D_NO_FOOTER;
			o->offset = r->pos;
		} else {
			o->status = SHIM_REC_TORN;
			o->damage = SHIM_REC_D_TORN;
			o->offset = r->frame_off;
		}
		o->record = o->records;
		break;
	case RS_BAD:
		/* A bad frame at the very end, followed by nothing but
		 * zeros, is a tail torn by a power cut; anything else is
		 * damage. */
		if (!r->nonzero_after &&
		    (o->damage == SHIM_REC_D_BAD_CRC || r->bad_len_zero)) {
			o->status = SHIM_REC_TORN;
			o->damage = SHIM_REC_D_TORN;
		} else {
			o->status = SHIM_REC_CORRUPT;
		}
		break;
	case RS_AFTER_FOOTER:
		o->status = SHIM_REC_COMPLETE;
		o->damage = SHIM_REC_D_OK;
		o->offset = 0;
		if (expect_identity != NULL &&
		    !shim_ct_equal(expect_identity, r->hdr.identity_pub,
				   SHIM_P256_PUB_LEN)) {
			o->status = SHIM_REC_CORRUPT;
			o->damage = SHIM_REC_D_IDENTITY;
			o->offset = o->good_end;
			o->record = o->records;
		}
		break;
	default:
		break;
	}
	o->pinned = expect_identity != NULL;
	if (o->have_footer) {
		o->dropped = r->ftr.dropped;
		if ((r->ftr.flags & SHIM_REC_F_DEGRADED) != 0 ||
		    r->ftr.dropped != 0) {
			o->degraded = 1;
		}
	}
	if (r->cb_err != 0 || o->status != SHIM_REC_COMPLETE) {
		o->verdict = SHIM_REC_V_FAILED;
	} else if (!o->pinned) {
		o->verdict = SHIM_REC_V_UNPINNED;
	} else if (o->degraded) {
		o->verdict = SHIM_REC_V_DEGRADED;
	} else {
		o->verdict = SHIM_REC_V_INTACT;
	}
	if (r->cb_err != 0) {
		rc = r->cb_err;
	} else if (o->status == SHIM_REC_COMPLETE) {
		rc = 0;
	} else if (o->status != SHIM_REC_CORRUPT) {
		rc = SHIM_ETRUNC;
	} else {
		switch (o->damage) {
		case SHIM_REC_D_SIG:
		case SHIM_REC_D_IDENTITY:
			rc = SHIM_ESIG;
			break;
		case SHIM_REC_D_CHAIN:
		case SHIM_REC_D_COUNT:
		case SHIM_REC_D_RECORD_AUTH:
			rc = SHIM_ECHAIN;
			break;
		default:
			rc = SHIM_ECORRUPT;
			break;
		}
	}
	if (res != NULL) {
		*res = *o;
	}
	return rc;
}

void shim_rec_reader_wipe(struct shim_rec_reader *r)
{
	shim_memzero(r->key, sizeof(r->key));
	if (r->buf != NULL && r->cap >= SHIM_REC_READER_BUF) {
		shim_memzero(r->buf + FRAME_AREA, SHIM_REC_MAX_BODY);
	}
	r->have_key = 0;
}

int shim_rec_header_start(const struct shim_port *port, const char *shim_id,
			  const char *technician, int custody,
			  const uint8_t identity[SHIM_P256_PUB_LEN],
			  struct shim_rec_header *h)
{
	char t[32];
	uint8_t rnd[3];
	size_t n = 0, sid = strlen(shim_id), tid = strlen(technician);
	int i, rc;

	memset(h, 0, sizeof(*h));
	if (sid > SHIM_REC_ID_MAX || tid > SHIM_REC_TECH_MAX) {
		return SHIM_EINVAL;
	}
	h->version = SHIM_REC_VERSION;
	h->start_wall_ns = port->clock.wall_ns(port->clock.ctx);
	h->start_mono_ns = port->clock.mono_ns(port->clock.ctx);
	/* "YYYY-MM-DDTHH:MM:SS..." without its separators */
	if (shim_syslog_time(h->start_wall_ns, t, sizeof(t)) < 0) {
		return SHIM_ECLOCK;
	}
	rc = port->rng.fill(port->rng.ctx, rnd, sizeof(rnd));
	if (rc != 0) {
		return rc;
	}
	for (i = 0; i < 19; i++) {
		if (t[i] != '-' && t[i] != ':') {
			h->session_id[n++] = t[i];
		}
	}
	h->session_id[n++] = 'Z';
	h->session_id[n++] = '-';
	shim_hex_encode(rnd, sizeof(rnd), h->session_id + n);
	memcpy(h->shim_id, shim_id, sid + 1);
	memcpy(h->technician_id, technician, tid + 1);
	h->custody = (uint8_t)custody;
	memcpy(h->identity_pub, identity, SHIM_P256_PUB_LEN);
	return 0;
}
