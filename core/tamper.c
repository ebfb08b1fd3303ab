/*
 * Tamper latch, boot count and reset tokens. See tamper.h.
 */
#include "tamper.h"

#include <stdbool.h>
#include <string.h>

#include "util.h"

#define BOOT_MAGIC "SHBT"
#define STATE_MAGIC "SHTP"
/* Version 2 added the latch identity; version 1 records are still read
 * (and rewritten as version 2), so an update does not latch every unit. */
#define BLOB_VERSION 2
#define BLOB_VERSION_1 1
#define FLAG_SIGNED 0x01

/* boot blob: magic 4, version 1, flags 1, pad 2, boot_count 8,
 * install_id 16, created_ns 8, [v2: latch_seq 8], crc 4, [sig 64] */
#define BOOT_BODY_V1 40
#define BOOT_BODY (BOOT_BODY_V1 + 8)

/* tamper blob: magic 4, version 1, flags 1, latched 1, pad 1,
 * boot_count 8, install_id 16, since_ns 8, reset_count 4, used_next 4,
 * last_reset_issued 8, event 32, detail 128, used 16 * 24, pending 1,
 * method 12, by 64, reason 160, cleared 32, pad 3, [v2: latch_seq 8,
 * latch_boot 8, reset_latch_seq 8, reset_latch_boot 8], crc 4, [sig] */
#define USED_LEN (SHIM_TAMPER_USED_NONCES * (SHIM_TAMPER_NONCE_LEN + 8))
#define RESET_LEN (1 + 12 + SHIM_TOKEN_ISSUER_MAX + SHIM_TOKEN_REASON_MAX + \
		   SHIM_TAMPER_EVENT_MAX)
#define STATE_BODY_V1 (8 + 8 + 16 + 8 + 4 + 4 + 8 + SHIM_TAMPER_EVENT_MAX + \
		       SHIM_TAMPER_DETAIL_MAX + USED_LEN + RESET_LEN + 3)
#define STATE_BODY (STATE_BODY_V1 + 32)
#define STATE_LEN (STATE_BODY + 4)

#define BLOB_MAX (STATE_LEN + SHIM_P256_SIG_LEN)

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	if (src != NULL) {
		while (n + 1 < cap && src[n] != '\0') {
			n++;
		}
		memcpy(dst, src, n);
	}
	memset(dst + n, 0, cap - n);
}

/* ---- signing of the state blobs ---------------------------------------- */

static int blob_digest(const struct shim_tamper *t, const uint8_t *buf,
		       size_t len, uint8_t digest[32])
{
	if (t->port->crypto.hash == NULL) {
		return SHIM_ENOTSUP;
	}
	return t->port->crypto.hash(t->port->crypto.ctx, SHIM_MD_SHA256, buf,
				    len, digest);
}

/* Appends the CRC and, when the state is signed, the signature. Returns
 * the blob length or a negative code. */
static int blob_seal(const struct shim_tamper *t, uint8_t *buf, size_t body)
{
	uint8_t digest[32];
	int rc;

	shim_put_u32(buf + body, shim_crc32(0, buf, body));
	if (!t->sign_state) {
		return (int)(body + 4);
	}
	rc = blob_digest(t, buf, body + 4, digest);
	if (rc == 0) {
		rc = t->port->crypto.identity_sign(t->port->crypto.ctx, digest,
						   buf + body + 4);
	}
	if (rc != 0) {
		return rc;
	}
	return (int)(body + 4 + SHIM_P256_SIG_LEN);
}

/* 0 when buf holds a good blob (of body_v1 or body_v2 bytes by its
 * version) + CRC (+ signature). SHIM_ECORRUPT for a damaged one, SHIM_ESIG
 * for a bad or missing signature where one is required. */
static int blob_check(const struct shim_tamper *t, const uint8_t *buf,
		      size_t len, size_t body_v1, size_t body_v2,
		      const char *magic)
{
	uint8_t digest[32];
	uint8_t pub[SHIM_P256_PUB_LEN];
	size_t body;
	int rc;

	if (len < 5 || memcmp(buf, magic, 4) != 0 ||
	    (buf[4] != BLOB_VERSION && buf[4] != BLOB_VERSION_1)) {
		return SHIM_ECORRUPT;
	}
	body = buf[4] == BLOB_VERSION_1 ? body_v1 : body_v2;
	if (len < body + 4) {
		return SHIM_ECORRUPT;
	}
	if (shim_get_u32(buf + body) != shim_crc32(0, buf, body)) {
		return SHIM_ECORRUPT;
	}
	if ((buf[5] & FLAG_SIGNED) != 0 && len != body + 4 + SHIM_P256_SIG_LEN) {
		return SHIM_ECORRUPT;
	}
	if ((buf[5] & FLAG_SIGNED) == 0 && len != body + 4) {
		return SHIM_ECORRUPT;
	}
	if (!t->sign_state) {
		return 0;
	}
	/* With an identity key every blob must carry its signature: a blob
	 * written without it was not written by this shim. */
	if ((buf[5] & FLAG_SIGNED) == 0) {
		return SHIM_ESIG;
	}
	rc = blob_digest(t, buf, body + 4, digest);
	if (rc == 0) {
		rc = t->port->crypto.identity_pub(t->port->crypto.ctx, pub);
	}
	if (rc == 0) {
		rc = t->port->crypto.verify(t->port->crypto.ctx, pub, digest,
					    buf + body + 4);
	}
	return rc == 0 ? 0 : SHIM_ESIG;
}

/* ---- blob encoding ------------------------------------------------------ */

static int save_boot(struct shim_tamper *t)
{
	uint8_t buf[BLOB_MAX];
	int n;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, BOOT_MAGIC, 4);
	buf[4] = BLOB_VERSION;
	buf[5] = t->sign_state ? FLAG_SIGNED : 0;
	shim_put_u64(buf + 8, t->boot_count);
	memcpy(buf + 16, t->install_id, 16);
	shim_put_u64(buf + 32, (uint64_t)t->created_ns);
	shim_put_u64(buf + 40, t->latch_seq);
	n = blob_seal(t, buf, BOOT_BODY);
	if (n < 0) {
		return n;
	}
	return t->port->store.save(t->port->store.ctx, SHIM_TAMPER_BLOB_BOOT,
				   buf, (size_t)n);
}

static int save_state(struct shim_tamper *t)
{
	uint8_t buf[BLOB_MAX];
	uint8_t *p;
	unsigned i;
	int n;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, STATE_MAGIC, 4);
	buf[4] = BLOB_VERSION;
	buf[5] = t->sign_state ? FLAG_SIGNED : 0;
	buf[6] = t->latched ? 1 : 0;
	p = buf + 8;
	shim_put_u64(p, t->boot_count);
	p += 8;
	memcpy(p, t->install_id, 16);
	p += 16;
	shim_put_u64(p, (uint64_t)t->since_ns);
	p += 8;
	shim_put_u32(p, t->reset_count);
	p += 4;
	shim_put_u32(p, t->used_next);
	p += 4;
	shim_put_u64(p, (uint64_t)t->last_reset_issued);
	p += 8;
	memcpy(p, t->event, SHIM_TAMPER_EVENT_MAX);
	p += SHIM_TAMPER_EVENT_MAX;
	memcpy(p, t->detail, SHIM_TAMPER_DETAIL_MAX);
	p += SHIM_TAMPER_DETAIL_MAX;
	for (i = 0; i < SHIM_TAMPER_USED_NONCES; i++) {
		memcpy(p, t->used[i].nonce, SHIM_TAMPER_NONCE_LEN);
		p += SHIM_TAMPER_NONCE_LEN;
		shim_put_u64(p, (uint64_t)t->used[i].expires);
		p += 8;
	}
	*p++ = t->reset_pending ? 1 : 0;
	memcpy(p, t->reset_method, sizeof(t->reset_method));
	p += sizeof(t->reset_method);
	memcpy(p, t->reset_by, sizeof(t->reset_by));
	p += sizeof(t->reset_by);
	memcpy(p, t->reset_reason, sizeof(t->reset_reason));
	p += sizeof(t->reset_reason);
	memcpy(p, t->reset_cleared, sizeof(t->reset_cleared));
	p += sizeof(t->reset_cleared) + 3;
	shim_put_u64(p, t->latch_seq);
	p += 8;
	shim_put_u64(p, t->latch_boot);
	p += 8;
	shim_put_u64(p, t->reset_latch_seq);
	p += 8;
	shim_put_u64(p, t->reset_latch_boot);
	n = blob_seal(t, buf, STATE_BODY);
	if (n < 0) {
		return n;
	}
	return t->port->store.save(t->port->store.ctx, SHIM_TAMPER_BLOB_STATE,
				   buf, (size_t)n);
}

static void decode_state(struct shim_tamper *t, const uint8_t *buf,
			 uint64_t *boot_mirror, uint8_t install_id[16])
{
	const uint8_t *p = buf + 8;
	unsigned i;

	t->latched = buf[6] != 0;
	*boot_mirror = shim_get_u64(p);
	p += 8;
	memcpy(install_id, p, 16);
	p += 16;
	t->since_ns = (int64_t)shim_get_u64(p);
	p += 8;
	t->reset_count = shim_get_u32(p);
	p += 4;
	t->used_next = shim_get_u32(p) % SHIM_TAMPER_USED_NONCES;
	p += 4;
	t->last_reset_issued = (int64_t)shim_get_u64(p);
	p += 8;
	memcpy(t->event, p, SHIM_TAMPER_EVENT_MAX);
	t->event[SHIM_TAMPER_EVENT_MAX - 1] = '\0';
	p += SHIM_TAMPER_EVENT_MAX;
	memcpy(t->detail, p, SHIM_TAMPER_DETAIL_MAX);
	t->detail[SHIM_TAMPER_DETAIL_MAX - 1] = '\0';
	p += SHIM_TAMPER_DETAIL_MAX;
	for (i = 0; i < SHIM_TAMPER_USED_NONCES; i++) {
		memcpy(t->used[i].nonce, p, SHIM_TAMPER_NONCE_LEN);
		p += SHIM_TAMPER_NONCE_LEN;
		t->used[i].expires = (int64_t)shim_get_u64(p);
		p += 8;
	}
	t->reset_pending = *p++ != 0;
	memcpy(t->reset_method, p, sizeof(t->reset_method));
	t->reset_method[sizeof(t->reset_method) - 1] = '\0';
	p += sizeof(t->reset_method);
	memcpy(t->reset_by, p, sizeof(t->reset_by));
	t->reset_by[sizeof(t->reset_by) - 1] = '\0';
	p += sizeof(t->reset_by);
	memcpy(t->reset_reason, p, sizeof(t->reset_reason));
	t->reset_reason[sizeof(t->reset_reason) - 1] = '\0';
	p += sizeof(t->reset_reason);
	memcpy(t->reset_cleared, p, sizeof(t->reset_cleared));
	t->reset_cleared[sizeof(t->reset_cleared) - 1] = '\0';
	p += sizeof(t->reset_cleared) + 3;
	if (buf[4] == BLOB_VERSION_1) {
		/* Written before latches had an identity: a latch set then
		 * becomes latch 1 of the boot count it was saved in. */
		t->latch_seq = t->latched ? 1 : 0;
		t->latch_boot = t->latched ? *boot_mirror : 0;
		return;
	}
	t->latch_seq = shim_get_u64(p);
	p += 8;
	t->latch_boot = shim_get_u64(p);
	p += 8;
	t->reset_latch_seq = shim_get_u64(p);
	p += 8;
	t->reset_latch_boot = shim_get_u64(p);
}

/* Sets the latch in memory only. */
static void latch(struct shim_tamper *t, const char *event,
		  const char *detail, int64_t wall_ns)
{
	if (t->latched) {
		return;
	}
	t->latched = 1;
	copy_str(t->event, sizeof(t->event), event);
	copy_str(t->detail, sizeof(t->detail), detail);
	t->since_ns = wall_ns;
	/* A new identity for every trip; a latch set while the state is
	 * being loaded gets its boot count once that is known. */
	if (t->latch_seq < SHIM_LATCH_NUM_MAX) {
		t->latch_seq++;
	}
	t->latch_boot = t->boot_count;
}

static int load_blob(const struct shim_tamper *t, const char *name,
		     uint8_t *buf, size_t *len)
{
	int rc;

	rc = t->port->store.load(t->port->store.ctx, name, buf, BLOB_MAX, len);
	if (rc == SHIM_ENOSPC) {
		/* Larger than any blob we write: not ours. */
		return SHIM_ECORRUPT;
	}
	return rc;
}

static const char *check_name(int rc)
{
	return rc == SHIM_ESIG ? "state_forged" : "state_corrupt";
}

static int tamper_load(struct shim_tamper *t, const struct shim_port *port,
		       const char *shim_id, int count)
{
	uint8_t boot[BLOB_MAX], state[BLOB_MAX];
	uint8_t pub[SHIM_P256_PUB_LEN];
	uint8_t state_install[16];
	size_t boot_len = 0, state_len = 0;
	uint64_t boot_count = 0, mirror = 0, boot_seq = 0;
	int64_t now;
	int rb, rs, rc;

	memset(t, 0, sizeof(*t));
	t->port = port;
	copy_str(t->shim_id, sizeof(t->shim_id), shim_id);
	now = port->clock.wall_ns(port->clock.ctx);

	/* A device identity key, when there is one, signs the state. */
	if (port->crypto.identity_pub != NULL &&
	    port->crypto.identity_sign != NULL && port->crypto.verify != NULL &&
	    port->crypto.identity_pub(port->crypto.ctx, pub) == 0) {
		t->sign_state = 1;
	}

	rb = load_blob(t, SHIM_TAMPER_BLOB_BOOT, boot, &boot_len);
	rs = load_blob(t, SHIM_TAMPER_BLOB_STATE, state, &state_len);
	if ((rb != 0 && rb != SHIM_ENOENT && rb != SHIM_ECORRUPT) ||
	    (rs != 0 && rs != SHIM_ENOENT && rs != SHIM_ECORRUPT)) {
		latch(t, "state_unreadable", "tamper state could not be read",
		      now);
		t->tripped_at_open = 1;
		rc = rb != 0 && rb != SHIM_ENOENT && rb != SHIM_ECORRUPT ? rb : rs;
		goto out;
	}

	if (rb == SHIM_ENOENT && rs == SHIM_ENOENT) {
		/* Factory fresh: a new install identity. */
		rc = port->rng.fill(port->rng.ctx, t->install_id, 16);
		if (rc != 0) {
			latch(t, "state_unreadable", "no randomness", now);
			t->tripped_at_open = 1;
			goto out;
		}
		t->created_ns = now;
		goto count;
	}

	if (rb == 0) {
		rb = blob_check(t, boot, boot_len, BOOT_BODY_V1, BOOT_BODY,
				BOOT_MAGIC);
	}
	if (rs == 0) {
		rs = blob_check(t, state, state_len, STATE_BODY_V1, STATE_BODY,
				STATE_MAGIC);
	}
	if (rb == 0) {
		boot_count = shim_get_u64(boot + 8);
		memcpy(t->install_id, boot + 16, 16);
		t->created_ns = (int64_t)shim_get_u64(boot + 32);
		if (boot[4] != BLOB_VERSION_1) {
			boot_seq = shim_get_u64(boot + 40);
		}
	}
	if (rs == 0) {
		decode_state(t, state, &mirror, state_install);
		if (rb != 0) {
			memcpy(t->install_id, state_install, 16);
			t->created_ns = now;
		}
	}
	/* The next latch number is above any the boot record has seen, so a
	 * removed tamper record cannot bring an old number back. */
	if (!t->latched && boot_seq > t->latch_seq) {
		t->latch_seq = boot_seq;
	}

	if (rb == SHIM_ENOENT || rs == SHIM_ENOENT) {
		latch(t, "state_missing",
		      rb == SHIM_ENOENT ? "boot record removed" :
					  "tamper record removed", now);
		t->tripped_at_open = 1;
	} else if (rb != 0 || rs != 0) {
		latch(t, check_name(rb != 0 ? rb : rs),
		      rb != 0 ? "boot record altered" : "tamper record altered",
		      now);
		t->tripped_at_open = 1;
	} else if (!shim_ct_equal(t->install_id, state_install, 16)) {
		latch(t, "state_forged", "records of another install", now);
		t->tripped_at_open = 1;
	} else if (mirror < boot_count) {
		/* The tamper record is older than the boot record: an old
		 * copy was put back. The save order (tamper, then boot) makes
		 * mirror == boot_count + 1 the only benign difference. */
		latch(t, "state_rollback", "tamper record older than boot record",
		      now);
		t->tripped_at_open = 1;
	}
	if (rs != 0) {
		/* Nothing of the tamper record can be trusted. */
		memset(t->used, 0, sizeof(t->used));
		t->used_next = 0;
		t->last_reset_issued = 0;
	}
	if (mirror > boot_count) {
		boot_count = mirror;
	}

count:
	if (t->tripped_at_open) {
		/* Latched by this load: the trip belongs to the start that
		 * follows (open counts it; the offline tools name the same). */
		t->latch_boot = boot_count + 1;
	}
	if (!count) {
		t->boot_count = boot_count;
		rc = 0;
		goto out;
	}
	t->boot_count = boot_count + 1;
	/* Tamper record first: a crash before the boot record is written
	 * leaves mirror == boot + 1, which the next start accepts. */
	rc = save_state(t);
	if (rc == 0) {
		rc = save_boot(t);
	}
	if (rc != 0) {
		latch(t, "state_unwritable", "tamper state could not be saved",
		      now);
		t->tripped_at_open = 1;
	}
out:
	if (t->tripped_at_open && t->latch_boot == 0) {
		t->latch_boot = boot_count + 1;
	}
	shim_memzero(boot, sizeof(boot));
	shim_memzero(state, sizeof(state));
	return rc;
}

int shim_tamper_open(struct shim_tamper *t, const struct shim_port *port,
		     const char *shim_id)
{
	return tamper_load(t, port, shim_id, 1);
}

int shim_tamper_load(struct shim_tamper *t, const struct shim_port *port,
		     const char *shim_id)
{
	return tamper_load(t, port, shim_id, 0);
}

/* Writes both records: tamper first (see the order note in open). */
static int save_all(struct shim_tamper *t)
{
	int rc = save_state(t);

	return rc != 0 ? rc : save_boot(t);
}

int shim_tamper_trip(struct shim_tamper *t, const char *event,
		     const char *detail, int64_t wall_ns)
{
	if (t->latched) {
		return 0;
	}
	latch(t, event, detail, wall_ns);
	return save_state(t);
}

/* ---- latch identity ------------------------------------------------------ */

static size_t fmt_u64(char *tmp, size_t cap, uint64_t v)
{
	size_t n = cap;

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && n > 0);
	return n;
}

int shim_latch_id_format(uint64_t seq, uint64_t boot, char *buf, size_t cap)
{
	char a[24], b[24];
	size_t na, nb, la, lb;

	if (buf == NULL || cap == 0) {
		return SHIM_EINVAL;
	}
	buf[0] = '\0';
	na = fmt_u64(a, sizeof(a), seq);
	nb = fmt_u64(b, sizeof(b), boot);
	la = sizeof(a) - na;
	lb = sizeof(b) - nb;
	if (la + 1 + lb + 1 > cap) {
		return SHIM_ENOSPC;
	}
	memcpy(buf, a + na, la);
	buf[la] = '-';
	memcpy(buf + la + 1, b + nb, lb);
	buf[la + 1 + lb] = '\0';
	return 0;
}

int shim_tamper_latch_id(const struct shim_tamper *t, char *buf, size_t cap)
{
	return shim_latch_id_format(t->latch_seq, t->latch_boot, buf, cap);
}

/* One number of the latch identity: 1..SHIM_LATCH_NUM_MAX, canonical. */
static int latch_num(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 15 || s[0] == '0') {
		return SHIM_EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return SHIM_EINVAL;
		}
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int shim_latch_id_parse(const char *s, uint64_t *seq, uint64_t *boot)
{
	size_t dash, len;
	uint64_t a, b;

	if (s == NULL || seq == NULL || boot == NULL) {
		return SHIM_EINVAL;
	}
	*seq = 0;
	*boot = 0;
	len = strlen(s);
	for (dash = 0; dash < len && s[dash] != '-'; dash++) {
	}
	if (dash >= len || latch_num(s, dash, &a) != 0 ||
	    latch_num(s + dash + 1, len - dash - 1, &b) != 0) {
		return SHIM_EINVAL;
	}
	*seq = a;
	*boot = b;
	return 0;
}

/* ---- tokens -------------------------------------------------------------- */

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z') {
		return c - 'A';
	}
	if (c >= 'a' && c <= 'z') {
		return c - 'a' + 26;
	}
	if (c >= '0' && c <= '9') {
		return c - '0' + 52;
	}
	if (c == '-') {
		return 62;
	}
	if (c == '_') {
		return 63;
	}
	return -1;
}

/* Unpadded base64url. Returns the decoded length or a negative code. */
static int b64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0, v;

	if (len % 4 == 1) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < len; i++) {
		v = b64_val(s[i]);
		if (v < 0) {
			return SHIM_EINVAL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap) {
				return SHIM_ENOSPC;
			}
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero: one encoding per byte string. */
	if ((acc & ((1u << bits) - 1u)) != 0) {
		return SHIM_EINVAL;
	}
	return (int)n;
}

static int b64_encode(const uint8_t *in, size_t len, char *out, size_t cap,
		      size_t *olen)
{
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0;

	for (i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			if (n >= cap) {
				return SHIM_ENOSPC;
			}
			out[n++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits > 0) {
		if (n >= cap) {
			return SHIM_ENOSPC;
		}
		out[n++] = b64url[(acc << (6 - bits)) & 63];
	}
	*olen = n;
	return 0;
}

static bool id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static bool text_char(unsigned char c)
{
	return c >= 0x20 && c != 0x7f;
}

/* Reads "key=value\n" at *pos; value is copied to out (cap incl. NUL). */
static int read_line(const char *p, size_t len, size_t *pos, const char *key,
		     char *out, size_t cap, bool (*ok)(unsigned char),
		     size_t min)
{
	size_t klen = strlen(key), i, n = 0;

	if (len - *pos < klen + 1 || memcmp(p + *pos, key, klen) != 0 ||
	    p[*pos + klen] != '=') {
		return SHIM_EINVAL;
	}
	i = *pos + klen + 1;
	while (i < len && p[i] != '\n') {
		if (n + 1 >= cap || !ok((unsigned char)p[i])) {
			return SHIM_EINVAL;
		}
		out[n++] = p[i++];
	}
	if (i >= len || n < min) {
		return SHIM_EINVAL;
	}
	out[n] = '\0';
	*pos = i + 1;
	return 0;
}

static bool id_ok(unsigned char c)
{
	return id_char((char)c);
}

static bool digit_ok(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool hex_ok(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool text_ok(unsigned char c)
{
	return text_char(c);
}

static bool latch_ok(unsigned char c)
{
	return (c >= '0' && c <= '9') || c == '-';
}

static int parse_secs(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	/* read_line gave 1..15 digits: fits, no overflow. */
	if (s[0] == '0' && s[1] != '\0') {
		return SHIM_EINVAL;
	}
	for (i = 0; s[i] != '\0'; i++) {
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int hex_nibble(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

static int parse_payload(struct shim_reset_token *tok)
{
	static const char head[] = "shim-reset-token 2\n";
	static const char head_v1[] = "shim-reset-token 1\n";
	const char *p = tok->payload;
	size_t len = tok->payload_len, pos = sizeof(head) - 1, i;
	char num[16], hex[2 * SHIM_TAMPER_NONCE_LEN + 1];
	char lid[SHIM_LATCH_ID_MAX];
	int rc;

	if (len >= pos && memcmp(p, head_v1, pos) == 0) {
		/* Format 1 named no latch: such a token could clear any later
		 * trip, so it is refused outright. */
		return SHIM_ENOTSUP;
	}
	if (len < pos || memcmp(p, head, pos) != 0) {
		return SHIM_EINVAL;
	}
	rc = read_line(p, len, &pos, "purpose", tok->purpose,
		       sizeof(tok->purpose), id_ok, 1);
	if (rc == 0) {
		rc = read_line(p, len, &pos, "shim", tok->shim_id,
			       sizeof(tok->shim_id), id_ok, 1);
	}
	if (rc == 0) {
		rc = read_line(p, len, &pos, "latch", lid, sizeof(lid),
			       latch_ok, 3);
	}
	if (rc == 0) {
		rc = shim_latch_id_parse(lid, &tok->latch_seq, &tok->latch_boot);
	}
	if (rc == 0) {
		rc = read_line(p, len, &pos, "issued", num, sizeof(num),
			       digit_ok, 1);
	}
	if (rc == 0) {
		rc = parse_secs(num, &tok->issued);
	}
	if (rc == 0) {
		rc = read_line(p, len, &pos, "expires", num, sizeof(num),
			       digit_ok, 1);
	}
	if (rc == 0) {
		rc = parse_secs(num, &tok->expires);
	}
	if (rc == 0) {
		rc = read_line(p, len, &pos, "nonce", hex, sizeof(hex), hex_ok,
			       sizeof(hex) - 1);
	}
	if (rc == 0) {
		for (i = 0; i < SHIM_TAMPER_NONCE_LEN; i++) {
			tok->nonce[i] = (uint8_t)(hex_nibble(hex[2 * i]) << 4 |
						  hex_nibble(hex[2 * i + 1]));
		}
		rc = read_line(p, len, &pos, "issuer", tok->issuer,
			       sizeof(tok->issuer), text_ok, 1);
	}
	if (rc == 0) {
		rc = read_line(p, len, &pos, "reason", tok->reason,
			       sizeof(tok->reason), text_ok, 0);
	}
	if (rc == 0 && pos != len) {
		rc = SHIM_EINVAL;
	}
	return rc;
}

int shim_token_parse(const char *s, size_t len, struct shim_reset_token *tok)
{
	const size_t plen = sizeof(SHIM_TOKEN_PREFIX) - 1;
	size_t a, b, dot;
	int n, rc;

	memset(tok, 0, sizeof(*tok));
	if (s == NULL) {
		return SHIM_EINVAL;
	}
	a = 0;
	b = len;
	while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r' ||
			 s[a] == '\n')) {
		a++;
	}
	while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' ||
			 s[b - 1] == '\r' || s[b - 1] == '\n')) {
		b--;
	}
	if (b - a > SHIM_TOKEN_MAX || b - a < plen ||
	    memcmp(s + a, SHIM_TOKEN_PREFIX, plen) != 0) {
		return SHIM_EINVAL;
	}
	a += plen;
	for (dot = a; dot < b && s[dot] != '.'; dot++) {
	}
	if (dot >= b) {
		return SHIM_EINVAL;
	}
	n = b64_decode(s + a, dot - a, (uint8_t *)tok->payload,
		       sizeof(tok->payload) - 1);
	if (n <= 0) {
		rc = SHIM_EINVAL;
		goto fail;
	}
	tok->payload_len = (size_t)n;
	n = b64_decode(s + dot + 1, b - dot - 1, tok->sig, sizeof(tok->sig));
	if (n != SHIM_P256_SIG_LEN) {
		rc = SHIM_EINVAL;
		goto fail;
	}
	rc = parse_payload(tok);
	if (rc == 0) {
		return 0;
	}
	if (rc == SHIM_ENOTSUP) {
		memset(tok, 0, sizeof(*tok));
		return SHIM_ENOTSUP;
	}
fail:
	memset(tok, 0, sizeof(*tok));
	return SHIM_EINVAL;
}

static int put_str(char *buf, size_t cap, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (cap - *pos <= n) {
		return SHIM_ENOSPC;
	}
	memcpy(buf + *pos, s, n);
	*pos += n;
	buf[*pos] = '\0';
	return 0;
}

static int put_u64(char *buf, size_t cap, size_t *pos, uint64_t v)
{
	char tmp[24];
	size_t n = sizeof(tmp) - 1;

	tmp[n] = '\0';
	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return put_str(buf, cap, pos, tmp + n);
}

static bool all_chars(const char *s, bool (*ok)(unsigned char), size_t min,
		      size_t max)
{
	size_t n = 0;

	while (s[n] != '\0') {
		if (!ok((unsigned char)s[n]) || n >= max) {
			return false;
		}
		n++;
	}
	return n >= min;
}

int shim_token_make_payload(struct shim_reset_token *tok)
{
	char hex[2 * SHIM_TAMPER_NONCE_LEN + 1];
	char lid[SHIM_LATCH_ID_MAX];
	char *b = tok->payload;
	size_t cap = sizeof(tok->payload), pos = 0;
	int rc;

	if (!all_chars(tok->purpose, id_ok, 1, sizeof(tok->purpose) - 1) ||
	    !all_chars(tok->shim_id, id_ok, 1, sizeof(tok->shim_id) - 1) ||
	    !all_chars(tok->issuer, text_ok, 1, sizeof(tok->issuer) - 1) ||
	    !all_chars(tok->reason, text_ok, 0, sizeof(tok->reason) - 1) ||
	    tok->issued < 0 || tok->expires < 0 ||
	    tok->issued > 999999999999999LL || tok->expires > 999999999999999LL ||
	    tok->latch_seq == 0 || tok->latch_seq > SHIM_LATCH_NUM_MAX ||
	    tok->latch_boot == 0 || tok->latch_boot > SHIM_LATCH_NUM_MAX) {
		return SHIM_EINVAL;
	}
	if (shim_latch_id_format(tok->latch_seq, tok->latch_boot, lid,
				 sizeof(lid)) != 0) {
		return SHIM_EINVAL;
	}
	shim_hex_encode(tok->nonce, SHIM_TAMPER_NONCE_LEN, hex);
	rc = put_str(b, cap, &pos, "shim-reset-token 2\npurpose=");
	rc = rc ? rc : put_str(b, cap, &pos, tok->purpose);
	rc = rc ? rc : put_str(b, cap, &pos, "\nshim=");
	rc = rc ? rc : put_str(b, cap, &pos, tok->shim_id);
	rc = rc ? rc : put_str(b, cap, &pos, "\nlatch=");
	rc = rc ? rc : put_str(b, cap, &pos, lid);
	rc = rc ? rc : put_str(b, cap, &pos, "\nissued=");
	rc = rc ? rc : put_u64(b, cap, &pos, (uint64_t)tok->issued);
	rc = rc ? rc : put_str(b, cap, &pos, "\nexpires=");
	rc = rc ? rc : put_u64(b, cap, &pos, (uint64_t)tok->expires);
	rc = rc ? rc : put_str(b, cap, &pos, "\nnonce=");
	rc = rc ? rc : put_str(b, cap, &pos, hex);
	rc = rc ? rc : put_str(b, cap, &pos, "\nissuer=");
	rc = rc ? rc : put_str(b, cap, &pos, tok->issuer);
	rc = rc ? rc : put_str(b, cap, &pos, "\nreason=");
	rc = rc ? rc : put_str(b, cap, &pos, tok->reason);
	rc = rc ? rc : put_str(b, cap, &pos, "\n");
	if (rc != 0) {
		return SHIM_EINVAL;
	}
	tok->payload_len = pos;
	return 0;
}

int shim_token_format(const struct shim_reset_token *tok,
		      const uint8_t sig[SHIM_P256_SIG_LEN], char *out,
		      size_t cap, size_t *out_len)
{
	size_t pos = 0, n;
	int rc;

	rc = put_str(out, cap, &pos, SHIM_TOKEN_PREFIX);
	if (rc == 0) {
		rc = b64_encode((const uint8_t *)tok->payload, tok->payload_len,
				out + pos, cap - pos, &n);
		pos += rc == 0 ? n : 0;
	}
	rc = rc ? rc : put_str(out, cap, &pos, ".");
	if (rc == 0) {
		rc = b64_encode(sig, SHIM_P256_SIG_LEN, out + pos, cap - pos,
				&n);
		pos += rc == 0 ? n : 0;
	}
	if (rc == 0 && pos >= cap) {
		rc = SHIM_ENOSPC;
	}
	if (rc != 0) {
		return rc;
	}
	out[pos] = '\0';
	*out_len = pos;
	return 0;
}

int shim_tamper_check_token(const struct shim_tamper *t,
			    const struct shim_reset_token *tok,
			    const uint8_t authority_pub[SHIM_P256_PUB_LEN],
			    int64_t now_s, const char **why)
{
	const struct shim_crypto_ops *c = &t->port->crypto;
	uint8_t digest[32];
	const char *dummy;
	unsigned i;
	int rc;

	if (why == NULL) {
		why = &dummy;
	}
	*why = "malformed token";
	if (tok->payload_len == 0 || tok->payload_len >= sizeof(tok->payload)) {
		return SHIM_EINVAL;
	}
	/* The signature first: nothing of an unsigned token is believed. */
	rc = c->hash(c->ctx, SHIM_MD_SHA256, (const uint8_t *)tok->payload,
		     tok->payload_len, digest);
	if (rc != 0) {
		*why = "cannot hash token";
		return rc;
	}
	if (c->verify(c->ctx, authority_pub, digest, tok->sig) != 0) {
		*why = "not signed by the reset authority";
		return SHIM_ESIG;
	}
	if (strcmp(tok->purpose, SHIM_TOKEN_PURPOSE_RESET) != 0) {
		*why = "token is not for a tamper reset";
		return SHIM_EACCES;
	}
	if (strcmp(tok->shim_id, t->shim_id) != 0) {
		*why = "token is for another shim";
		return SHIM_EACCES;
	}
	if (!t->latched) {
		*why = "no emergency stop is latched";
		return SHIM_ESTATE;
	}
	if (tok->latch_seq != t->latch_seq || tok->latch_boot != t->latch_boot) {
		*why = "token is for another latch";
		return SHIM_EACCES;
	}
	if (tok->expires <= tok->issued ||
	    tok->expires - tok->issued > SHIM_TOKEN_MAX_TTL) {
		*why = "token lifetime is out of range";
		return SHIM_ETIMEDOUT;
	}
	if (now_s + SHIM_TOKEN_CLOCK_SKEW < tok->issued) {
		*why = "token is not valid yet (check the clock)";
		return SHIM_ETIMEDOUT;
	}
	if (now_s >= tok->expires) {
		*why = "token has expired";
		return SHIM_ETIMEDOUT;
	}
	for (i = 0; i < SHIM_TAMPER_USED_NONCES; i++) {
		if (shim_ct_equal(t->used[i].nonce, tok->nonce,
				  SHIM_TAMPER_NONCE_LEN) &&
		    t->used[i].expires != 0) {
			*why = "token was already used";
			return SHIM_EEXIST;
		}
	}
	/* Tokens issued before the last one used are dead too, so a token
	 * pushed out of the nonce ring cannot come back. */
	if (tok->issued < t->last_reset_issued) {
		*why = "a newer token has been used since";
		return SHIM_EEXIST;
	}
	*why = "ok";
	return 0;
}

int shim_tamper_reset_token(struct shim_tamper *t,
			    const struct shim_reset_token *tok,
			    const uint8_t authority_pub[SHIM_P256_PUB_LEN],
			    int64_t now_s, const char **why)
{
	struct shim_tamper saved;
	int rc;

	rc = shim_tamper_check_token(t, tok, authority_pub, now_s, why);
	if (rc != 0) {
		return rc;
	}
	saved = *t;
	memcpy(t->used[t->used_next].nonce, tok->nonce, SHIM_TAMPER_NONCE_LEN);
	t->used[t->used_next].expires = tok->expires;
	t->used_next = (t->used_next + 1) % SHIM_TAMPER_USED_NONCES;
	t->last_reset_issued = tok->issued;
	t->reset_pending = 1;
	copy_str(t->reset_method, sizeof(t->reset_method), "token");
	copy_str(t->reset_by, sizeof(t->reset_by), tok->issuer);
	copy_str(t->reset_reason, sizeof(t->reset_reason), tok->reason);
	copy_str(t->reset_cleared, sizeof(t->reset_cleared),
		 t->latched ? t->event : "");
	t->reset_latch_seq = t->latch_seq;
	t->reset_latch_boot = t->latch_boot;
	t->latched = 0;
	t->tripped_at_open = 0;
	t->reset_count++;
	rc = save_all(t);
	if (rc != 0) {
		/* Not persisted: the token is not spent and the latch holds. */
		*t = saved;
		if (why != NULL) {
			*why = "tamper state could not be saved";
		}
	}
	return rc;
}

int shim_tamper_reset_physical(struct shim_tamper *t, int64_t wall_ns)
{
	struct shim_tamper saved = *t;
	int rc;

	(void)wall_ns; /* no expiry to check, unlike a token */
	t->reset_pending = 1;
	copy_str(t->reset_method, sizeof(t->reset_method), "reset_key");
	copy_str(t->reset_by, sizeof(t->reset_by), "reset_key");
	copy_str(t->reset_reason, sizeof(t->reset_reason),
		 "physical reset key held at start");
	copy_str(t->reset_cleared, sizeof(t->reset_cleared),
		 t->latched ? t->event : "");
	t->reset_latch_seq = t->latch_seq;
	t->reset_latch_boot = t->latch_boot;
	t->latched = 0;
	t->tripped_at_open = 0;
	t->reset_count++;
	rc = save_all(t);
	if (rc != 0) {
		*t = saved;
	}
	return rc;
}

/* ---- events ------------------------------------------------------------- */

int shim_tamper_event(const struct shim_tamper *t, struct shim_event *ev,
		      int64_t wall_ns)
{
	char lid[SHIM_LATCH_ID_MAX];
	int rc;

	rc = shim_tamper_latch_id(t, lid, sizeof(lid));
	rc = rc ? rc : shim_event_init(ev, "tamper", SHIM_SEV_ALERT, wall_ns);
	rc = rc ? rc : shim_event_add(ev, "event", t->event);
	rc = rc ? rc : shim_event_add(ev, "detail", t->detail);
	rc = rc ? rc : shim_event_add_u64(ev, "boot_count", t->boot_count);
	rc = rc ? rc : shim_event_add_i64(ev, "since", t->since_ns / 1000000000LL);
	rc = rc ? rc : shim_event_add(ev, "latch", lid);
	ev->priority = 1;
	return rc;
}

int shim_tamper_stop_event(const struct shim_tamper *t, struct shim_event *ev,
			   int64_t wall_ns)
{
	char reason[8 + SHIM_TAMPER_EVENT_MAX];
	char lid[SHIM_LATCH_ID_MAX];
	size_t n = 0;
	int rc;

	memcpy(reason, "tamper:", 7);
	n = 7;
	copy_str(reason + n, sizeof(reason) - n, t->event);
	rc = shim_tamper_latch_id(t, lid, sizeof(lid));
	rc = rc ? rc : shim_event_init(ev, "emergency_stop", SHIM_SEV_ALERT, wall_ns);
	rc = rc ? rc : shim_event_add(ev, "reason", reason);
	rc = rc ? rc : shim_event_add(ev, "latch", lid);
	ev->priority = 1;
	return rc;
}

int shim_tamper_fault_event(struct shim_event *ev, const char *sensor_event,
			    const char *detail, const char *action,
			    int64_t wall_ns)
{
	int rc;

	rc = shim_event_init(ev, "sensor_fault", SHIM_SEV_ALERT, wall_ns);
	rc = rc ? rc : shim_event_add(ev, "sensor", sensor_event ? sensor_event : "-");
	rc = rc ? rc : shim_event_add(ev, "detail", detail ? detail : "");
	rc = rc ? rc : shim_event_add(ev, "action", action ? action : "stop");
	ev->priority = 1;
	return rc;
}

int shim_tamper_reset_event(const struct shim_tamper *t,
			    struct shim_event *ev, int64_t wall_ns)
{
	char lid[SHIM_LATCH_ID_MAX];
	int rc;

	rc = shim_latch_id_format(t->reset_latch_seq, t->reset_latch_boot, lid,
				  sizeof(lid));
	rc = rc ? rc : shim_event_init(ev, "tamper_reset", SHIM_SEV_NOTICE, wall_ns);
	rc = rc ? rc : shim_event_add(ev, "method", t->reset_method);
	rc = rc ? rc : shim_event_add(ev, "by", t->reset_by);
	rc = rc ? rc : shim_event_add(ev, "reason", t->reset_reason);
	rc = rc ? rc : shim_event_add(ev, "cleared", t->reset_cleared);
	rc = rc ? rc : shim_event_add(ev, "latch", lid);
	rc = rc ? rc : shim_event_add_u64(ev, "resets", t->reset_count);
	ev->sign = 1;
	return rc;
}

int shim_tamper_reset_reported(struct shim_tamper *t)
{
	if (!t->reset_pending) {
		return 0;
	}
	t->reset_pending = 0;
	return save_state(t);
}
