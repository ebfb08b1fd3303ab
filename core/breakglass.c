/*
 * Break-glass codes (see breakglass.h for the format and keys).
 *
 * Order of checks in shim_bg_verify(), and why:
 *  1. the text: length, alphabet and check character, so a typo is told
 *     apart from a forgery;
 *  2. the version and the field ranges, then the shim tag: a code for
 *     another shim cannot be checked here (no key), and says so;
 *  3. the MAC, compared in constant time; nothing after it is reported for
 *     a code that does not verify, so the precise reasons below cannot be
 *     probed with forged fields;
 *  4. the lifetime at the judged time, then the single-use mark;
 *  5. the new mark is saved durably before OK is returned; if it cannot
 *     be, it is dropped again and the result is SHIM_BG_STATE.
 *
 * Persisted marks (blob SHIM_BG_STATE_NAME), big-endian:
 *   "SHBG" u8 version(1) u8[3] 0  u32 not_before  u32 n
 *   { u32 issued, u16 nonce, u32 expires }*n   u32 crc32 of what precedes
 */
#include <string.h>

#include "breakglass.h"
#include "util.h"

#define STATE_MAGIC "SHBG"
#define STATE_VERSION 1
#define STATE_HDR 16
#define MARK_LEN 10
#define PRUNE_AFTER_S 86400
#define FIELD_BYTES 7
#define DEFAULT_SKEW_S 300

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char ctx_code[] = "shimd-bg-v1-code";
static const char ctx_shim[] = "shimd-bg-v1-shim";
static const char ctx_id[] = "shimd-bg-v1-id";

/* ---- text -------------------------------------------------------------- */

/* Crockford's reading: case-insensitive, O as 0, I and L as 1. */
static int symbol_value(char ch)
{
	unsigned char c = (unsigned char)ch;
	int i;

	if (c >= 'a' && c <= 'z') {
		c = (unsigned char)(c - 'a' + 'A');
	}
	if (c == 'O') {
		return 0;
	}
	if (c == 'I' || c == 'L') {
		return 1;
	}
	for (i = 0; i < 32; i++) {
		if (alphabet[i] == (char)c) {
			return i;
		}
	}
	return -1;
}

/* Luhn mod 32 over v[0..n): the symbol that makes the sum come out 0. */
static unsigned luhn32(const uint8_t *v, size_t n)
{
	unsigned sum = 0, factor = 2, a;
	size_t i;

	for (i = n; i-- > 0;) {
		a = factor * v[i];
		factor = factor == 2 ? 1 : 2;
		sum += a / 32 + a % 32;
	}
	return (32 - sum % 32) % 32;
}

static void put_bits(uint8_t *buf, unsigned *pos, uint32_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		unsigned bit = (v >> (n - 1 - i)) & 1u;
		unsigned p = *pos + i;

		if (bit) {
			buf[p / 8] |= (uint8_t)(0x80u >> (p % 8));
		}
	}
	*pos += n;
}

static uint32_t get_bits(const uint8_t *buf, unsigned *pos, unsigned n)
{
	uint32_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		unsigned p = *pos + i;

		v = (v << 1) | ((buf[p / 8] >> (7 - p % 8)) & 1u);
	}
	*pos += n;
	return v;
}

/* The 55 field bits, left-aligned in FIELD_BYTES bytes. */
static void pack_fields(const struct shim_bg_code *c, uint8_t out[FIELD_BYTES])
{
	unsigned pos = 0;

	memset(out, 0, FIELD_BYTES);
	put_bits(out, &pos, c->version & 1u, 1);
	put_bits(out, &pos, c->bound & 1u, 1);
	put_bits(out, &pos, c->tag & 0x3fu, 6);
	put_bits(out, &pos, c->nonce & SHIM_BG_NONCE_MAX, 12);
	put_bits(out, &pos, c->issued & SHIM_BG_ISSUED_MAX, 24);
	put_bits(out, &pos, c->ttl & 0x7ffu, 11);
}

int shim_bg_parse(const char *text, size_t len, struct shim_bg_code *out)
{
	uint8_t v[SHIM_BG_CHARS];
	uint8_t bits[12];
	unsigned pos = 0;
	size_t i, n = 0;
	int s;

	memset(out, 0, sizeof(*out));
	if (text == NULL) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (text[i] == '-' || text[i] == ' ' || text[i] == '\t') {
			continue;
		}
		if (n == SHIM_BG_CHARS) {
			return SHIM_EINVAL;
		}
		s = symbol_value(text[i]);
		if (s < 0) {
			return SHIM_EINVAL;
		}
		v[n++] = (uint8_t)s;
	}
	if (n != SHIM_BG_CHARS) {
		return SHIM_EINVAL;
	}
	if (luhn32(v, SHIM_BG_CHARS - 1) != v[SHIM_BG_CHARS - 1]) {
		return SHIM_ECORRUPT;
	}
	memset(bits, 0, sizeof(bits));
	for (i = 0; i < SHIM_BG_CHARS - 1; i++) {
		put_bits(bits, &pos, v[i], 5);
	}
	pos = 0;
	out->version = (uint8_t)get_bits(bits, &pos, 1);
	out->bound = (uint8_t)get_bits(bits, &pos, 1);
	out->tag = (uint8_t)get_bits(bits, &pos, 6);
	out->nonce = (uint16_t)get_bits(bits, &pos, 12);
	out->issued = get_bits(bits, &pos, 24);
	out->ttl = (uint16_t)get_bits(bits, &pos, 11);
	for (i = 0; i < sizeof(out->mac); i++) {
		out->mac[i] = (uint8_t)get_bits(bits, &pos, 8);
	}
	return 0;
}

int shim_bg_format(const struct shim_bg_code *c, char out[SHIM_BG_TEXT_LEN + 1])
{
	uint8_t bits[12];
	uint8_t v[SHIM_BG_CHARS];
	unsigned pos = 0;
	size_t i, o = 0;

	out[0] = '\0';
	if (c->version > 1 || c->bound > 1 || c->tag > 0x3f ||
	    c->nonce > SHIM_BG_NONCE_MAX || c->issued > SHIM_BG_ISSUED_MAX ||
	    c->ttl > 0x7ff) {
		return SHIM_EINVAL;
	}
	memset(bits, 0, sizeof(bits));
	pack_fields(c, bits);
	pos = 55;
	for (i = 0; i < sizeof(c->mac); i++) {
		put_bits(bits, &pos, c->mac[i], 8);
	}
	pos = 0;
	for (i = 0; i < SHIM_BG_CHARS - 1; i++) {
		v[i] = (uint8_t)get_bits(bits, &pos, 5);
	}
	v[SHIM_BG_CHARS - 1] = (uint8_t)luhn32(v, SHIM_BG_CHARS - 1);
	for (i = 0; i < SHIM_BG_CHARS; i++) {
		if (i > 0 && i % 5 == 0) {
			out[o++] = '-';
		}
		out[o++] = alphabet[v[i]];
	}
	out[o] = '\0';
	return 0;
}

static void hex_digits(uint32_t v, unsigned n, char *out)
{
	static const char hx[] = "0123456789ABCDEF";
	unsigned i;

	for (i = 0; i < n; i++) {
		out[i] = hx[(v >> (4 * (n - 1 - i))) & 0xfu];
	}
}

void shim_bg_serial(const struct shim_bg_code *c,
		    char out[SHIM_BG_SERIAL_LEN + 1])
{
	hex_digits(c->issued, 6, out);
	out[6] = '-';
	hex_digits(c->nonce, 3, out + 7);
	out[SHIM_BG_SERIAL_LEN] = '\0';
}

uint8_t shim_bg_tag(const char *shim_id, size_t len)
{
	return (uint8_t)(shim_crc32(0, (const uint8_t *)shim_id, len) & 0x3fu);
}

/* ---- keys ---------------------------------------------------------------- */

int shim_bg_derive(const struct shim_crypto_ops *crypto,
		   const uint8_t master[SHIM_BG_KEY_LEN], const char *shim_id,
		   size_t id_len, uint8_t out[SHIM_BG_KEY_LEN])
{
	uint8_t msg[sizeof(ctx_shim) + SHIM_BG_ID_MAX];
	int rc;

	if (crypto == NULL || crypto->hmac == NULL || id_len == 0 ||
	    id_len > SHIM_BG_ID_MAX) {
		return SHIM_EINVAL;
	}
	memcpy(msg, ctx_shim, sizeof(ctx_shim)); /* with its NUL */
	memcpy(msg + sizeof(ctx_shim), shim_id, id_len);
	rc = crypto->hmac(crypto->ctx, SHIM_MD_SHA256, master, SHIM_BG_KEY_LEN,
			  msg, sizeof(ctx_shim) + id_len, out);
	shim_memzero(msg, sizeof(msg));
	return rc;
}

int shim_bg_key_id(const struct shim_crypto_ops *crypto,
		   const uint8_t master[SHIM_BG_KEY_LEN], char out[17])
{
	uint8_t d[32];
	int rc;

	out[0] = '\0';
	if (crypto == NULL || crypto->hmac == NULL) {
		return SHIM_EINVAL;
	}
	rc = crypto->hmac(crypto->ctx, SHIM_MD_SHA256, master, SHIM_BG_KEY_LEN,
			  (const uint8_t *)ctx_id, sizeof(ctx_id) - 1, d);
	if (rc == 0) {
		shim_hex_encode(d, 8, out);
		out[16] = '\0';
	}
	shim_memzero(d, sizeof(d));
	return rc;
}

int shim_bg_mac(const struct shim_crypto_ops *crypto,
		const uint8_t key[SHIM_BG_KEY_LEN], const char *shim_id,
		size_t shim_len, const char *tech, size_t tech_len,
		const struct shim_bg_code *code, uint8_t mac[5])
{
	uint8_t msg[sizeof(ctx_code) + FIELD_BYTES + 2 + 2 * SHIM_BG_ID_MAX];
	uint8_t d[32];
	size_t n = 0;
	int rc;

	memset(mac, 0, 5);
	if (crypto == NULL || crypto->hmac == NULL || shim_len == 0 ||
	    shim_len > SHIM_BG_ID_MAX || tech_len > SHIM_BG_ID_MAX ||
	    (tech == NULL && tech_len != 0)) {
		return SHIM_EINVAL;
	}
	memcpy(msg, ctx_code, sizeof(ctx_code));
	n = sizeof(ctx_code);
	pack_fields(code, msg + n);
	n += FIELD_BYTES;
	msg[n++] = (uint8_t)shim_len;
	memcpy(msg + n, shim_id, shim_len);
	n += shim_len;
	msg[n++] = (uint8_t)tech_len;
	if (tech_len > 0) {
		memcpy(msg + n, tech, tech_len);
		n += tech_len;
	}
	rc = crypto->hmac(crypto->ctx, SHIM_MD_SHA256, key, SHIM_BG_KEY_LEN, msg,
			  n, d);
	if (rc == 0) {
		memcpy(mac, d, 5);
	}
	shim_memzero(d, sizeof(d));
	return rc;
}

/* ---- key files --------------------------------------------------------- */

struct lines {
	const char *p;
	size_t left;
	unsigned no;
};

/* The next line without its newline (and a CR before it). 0 at the end. */
static int next_line(struct lines *l, const char **s, size_t *n)
{
	size_t i = 0;

	if (l->left == 0) {
		return 0;
	}
	while (i < l->left && l->p[i] != '\n') {
		i++;
	}
	*s = l->p;
	*n = i;
	if (*n > 0 && (*s)[*n - 1] == '\r') {
		(*n)--;
	}
	l->p += i < l->left ? i + 1 : i;
	l->left -= i < l->left ? i + 1 : i;
	l->no++;
	return 1;
}

/* "word value": *v and *vn the value, when the line starts "word ". */
static int field(const char *s, size_t n, const char *word, const char **v,
		 size_t *vn)
{
	size_t w = strlen(word);

	if (n <= w + 1 || memcmp(s, word, w) != 0 || s[w] != ' ') {
		return 0;
	}
	*v = s + w + 1;
	*vn = n - w - 1;
	return 1;
}

static int hex_take(const char *s, size_t n, uint8_t *out, size_t outlen)
{
	volatile int bad = 0;
	size_t i;

	if (n != outlen * 2) {
		return SHIM_ECORRUPT;
	}
	for (i = 0; i < outlen; i++) {
		int hi = shim_hexval(s[2 * i]);
		int lo = shim_hexval(s[2 * i + 1]);

		bad |= (hi < 0) | (lo < 0);
		out[i] = (uint8_t)(((unsigned)hi << 4) | ((unsigned)lo & 0xfu));
	}
	return bad ? SHIM_ECORRUPT : 0;
}

static int id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SHIM_BG_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* Nothing but empty lines may follow the last field. */
static int rest_empty(struct lines *l, unsigned *line)
{
	const char *s;
	size_t n;

	while (next_line(l, &s, &n)) {
		if (n != 0) {
			*line = l->no;
			return SHIM_ECORRUPT;
		}
	}
	return 0;
}

int shim_bg_key_parse(const char *text, size_t len, struct shim_bg_key *out,
		      unsigned *line)
{
	struct lines l = { text, len, 0 };
	const char *s, *v;
	size_t n, vn;
	int rc;

	memset(out, 0, sizeof(*out));
	*line = 0;
	if (text == NULL) {
		return SHIM_ECORRUPT;
	}
	if (!next_line(&l, &s, &n)) {
		return SHIM_ECORRUPT;
	}
	*line = l.no;
	if (n != strlen("shimd-breakglass-verify-key v1") ||
	    memcmp(s, "shimd-breakglass-verify-key v1", n) != 0) {
		return SHIM_ECORRUPT;
	}
	*line = 0;
	if (!next_line(&l, &s, &n)) {
		return SHIM_ECORRUPT;
	}
	*line = l.no;
	if (!field(s, n, "shim", &v, &vn) || !id_ok(v, vn)) {
		return SHIM_ECORRUPT;
	}
	memcpy(out->shim_id, v, vn);
	*line = 0;
	if (!next_line(&l, &s, &n)) {
		goto bad;
	}
	*line = l.no;
	if (!field(s, n, "key-id", &v, &vn) || vn != 16) {
		goto bad;
	}
	{
		uint8_t tmp[8];

		if (hex_take(v, vn, tmp, sizeof(tmp)) != 0) {
			goto bad;
		}
	}
	memcpy(out->key_id, v, 16);
	*line = 0;
	if (!next_line(&l, &s, &n)) {
		goto bad;
	}
	*line = l.no;
	if (!field(s, n, "key", &v, &vn) ||
	    hex_take(v, vn, out->key, sizeof(out->key)) != 0) {
		goto bad;
	}
	rc = rest_empty(&l, line);
	if (rc != 0) {
		goto bad;
	}
	*line = 0;
	out->loaded = 1;
	return 0;
bad:
	shim_memzero(out, sizeof(*out));
	return SHIM_ECORRUPT;
}

int shim_bg_master_parse(const char *text, size_t len,
			 uint8_t master[SHIM_BG_KEY_LEN], unsigned *line)
{
	struct lines l = { text, len, 0 };
	const char *s, *v;
	size_t n, vn;

	memset(master, 0, SHIM_BG_KEY_LEN);
	*line = 0;
	if (text == NULL || !next_line(&l, &s, &n)) {
		return SHIM_ECORRUPT;
	}
	*line = l.no;
	if (n != strlen("shimd-breakglass-master v1") ||
	    memcmp(s, "shimd-breakglass-master v1", n) != 0) {
		return SHIM_ECORRUPT;
	}
	*line = 0;
	if (!next_line(&l, &s, &n)) {
		return SHIM_ECORRUPT;
	}
	*line = l.no;
	if (!field(s, n, "key", &v, &vn) ||
	    hex_take(v, vn, master, SHIM_BG_KEY_LEN) != 0 ||
	    rest_empty(&l, line) != 0) {
		shim_memzero(master, SHIM_BG_KEY_LEN);
		return SHIM_ECORRUPT;
	}
	*line = 0;
	return 0;
}

/* ---- marks --------------------------------------------------------------- */

int shim_bg_state_encode(struct shim_bg *bg, size_t *len)
{
	uint8_t *p = bg->blob;
	uint32_t n = 0;
	size_t i;

	memcpy(p, STATE_MAGIC, 4);
	p[4] = STATE_VERSION;
	p[5] = p[6] = p[7] = 0;
	shim_put_u32(p + 8, bg->not_before);
	p += STATE_HDR;
	for (i = 0; i < SHIM_BG_USED_SLOTS; i++) {
		const struct shim_bg_mark *m = &bg->marks[i];

		if (m->expires == 0) {
			continue;
		}
		shim_put_u32(p, m->issued);
		shim_put_u16(p + 4, m->nonce);
		shim_put_u32(p + 6, m->expires);
		p += MARK_LEN;
		n++;
	}
	shim_put_u32(bg->blob + 12, n);
	shim_put_u32(p, shim_crc32(0, bg->blob, (size_t)(p - bg->blob)));
	p += 4;
	*len = (size_t)(p - bg->blob);
	return 0;
}

int shim_bg_state_decode(struct shim_bg *bg, const uint8_t *buf, size_t len)
{
	uint32_t n, i;

	memset(bg->marks, 0, sizeof(bg->marks));
	bg->not_before = 0;
	if (len < STATE_HDR + 4 || memcmp(buf, STATE_MAGIC, 4) != 0 ||
	    buf[4] != STATE_VERSION) {
		return SHIM_ECORRUPT;
	}
	n = shim_get_u32(buf + 12);
	if (n > SHIM_BG_USED_SLOTS ||
	    len != STATE_HDR + (size_t)n * MARK_LEN + 4 ||
	    shim_get_u32(buf + len - 4) != shim_crc32(0, buf, len - 4)) {
		return SHIM_ECORRUPT;
	}
	for (i = 0; i < n; i++) {
		const uint8_t *p = buf + STATE_HDR + (size_t)i * MARK_LEN;
		struct shim_bg_mark *m = &bg->marks[i];

		m->issued = shim_get_u32(p);
		m->nonce = shim_get_u16(p + 4);
		m->expires = shim_get_u32(p + 6);
		if (m->expires == 0 || m->issued > SHIM_BG_ISSUED_MAX ||
		    m->nonce > SHIM_BG_NONCE_MAX) {
			memset(bg->marks, 0, sizeof(bg->marks));
			return SHIM_ECORRUPT;
		}
	}
	bg->not_before = shim_get_u32(buf + 8);
	return 0;
}

static int state_save(struct shim_bg *bg)
{
	size_t len = 0;
	int rc = shim_bg_state_encode(bg, &len);

	if (rc != 0) {
		return rc;
	}
	return bg->port->store.save(bg->port->store.ctx, SHIM_BG_STATE_NAME,
				    bg->blob, len);
}

int shim_bg_init(struct shim_bg *bg, const struct shim_bg_key *key,
		 const char *shim_id, const struct shim_port *port,
		 int state_required, int64_t floor_s)
{
	size_t len = 0;
	int rc;

	memset(bg, 0, sizeof(*bg));
	if (key == NULL || !key->loaded || shim_id == NULL || port == NULL ||
	    port->crypto.hmac == NULL || port->store.load == NULL ||
	    port->store.save == NULL ||
	    strncmp(key->shim_id, shim_id, sizeof(key->shim_id)) != 0) {
		return SHIM_EINVAL;
	}
	bg->key = *key;
	bg->port = port;
	bg->skew = DEFAULT_SKEW_S;
	rc = port->store.load(port->store.ctx, SHIM_BG_STATE_NAME, bg->blob,
			      sizeof(bg->blob), &len);
	if (rc == SHIM_ENOENT) {
		if (state_required && floor_s > SHIM_BG_EPOCH) {
			/* marks may have existed: a code from before the
			 * last known time may have been used */
			bg->not_before =
				(uint32_t)((floor_s - SHIM_BG_EPOCH) / 60) + 1;
		}
		rc = state_save(bg);
		bg->state_ok = rc == 0;
		return rc;
	}
	if (rc == SHIM_ENOSPC) {
		return SHIM_ECORRUPT;
	}
	if (rc != 0) {
		return rc;
	}
	rc = shim_bg_state_decode(bg, bg->blob, len);
	bg->state_ok = rc == 0;
	return rc;
}

static struct shim_bg_mark *mark_find(struct shim_bg *bg,
				      const struct shim_bg_code *c)
{
	size_t i;

	for (i = 0; i < SHIM_BG_USED_SLOTS; i++) {
		struct shim_bg_mark *m = &bg->marks[i];

		if (m->expires != 0 && m->issued == c->issued &&
		    m->nonce == c->nonce) {
			return m;
		}
	}
	return NULL;
}

/* A free slot, after dropping marks expired for a day at judged_s (a time
 * known to have passed). NULL when every slot is live. */
static struct shim_bg_mark *mark_alloc(struct shim_bg *bg, int64_t judged_s)
{
	struct shim_bg_mark *free_slot = NULL;
	size_t i;

	for (i = 0; i < SHIM_BG_USED_SLOTS; i++) {
		struct shim_bg_mark *m = &bg->marks[i];

		if (m->expires != 0 &&
		    SHIM_BG_EPOCH + (int64_t)m->expires * 60 + PRUNE_AFTER_S <=
			    judged_s) {
			memset(m, 0, sizeof(*m));
		}
		if (m->expires == 0 && free_slot == NULL) {
			free_slot = m;
		}
	}
	return free_slot;
}

int shim_bg_verify(struct shim_bg *bg, const char *tech, size_t tech_len,
		   const char *text, size_t text_len, int64_t judged_s,
		   int trusted, struct shim_bg_result *res)
{
	const struct shim_bg_code *c = &res->code;
	struct shim_bg_mark *m;
	uint8_t mac[5];
	size_t shim_len;
	int rc;

	memset(res, 0, sizeof(*res));
	res->outcome = SHIM_BG_ERROR;
	res->judged_s = judged_s;
	res->clock_trusted = trusted ? 1 : 0;
	if (bg == NULL || bg->port == NULL || !bg->key.loaded ||
	    tech_len > SHIM_BG_ID_MAX || (tech == NULL && tech_len != 0)) {
		return 0;
	}
	rc = shim_bg_parse(text, text_len, &res->code);
	if (rc != 0) {
		res->outcome = SHIM_BG_MISTYPED;
		return 0;
	}
	shim_bg_serial(c, res->serial);
	res->issued_s = SHIM_BG_EPOCH + (int64_t)c->issued * 60;
	res->expires_s = res->issued_s + (int64_t)c->ttl * 60;
	shim_len = strlen(bg->key.shim_id);
	if (c->version != 0 || c->ttl == 0 || c->ttl > SHIM_BG_TTL_MAX) {
		res->outcome = SHIM_BG_BAD;
		return 0;
	}
	if (c->tag != shim_bg_tag(bg->key.shim_id, shim_len)) {
		res->outcome = SHIM_BG_WRONG_SHIM;
		return 0;
	}
	rc = shim_bg_mac(&bg->port->crypto, bg->key.key, bg->key.shim_id,
			 shim_len, tech, c->bound ? tech_len : 0, c, mac);
	if (rc != 0) {
		shim_memzero(mac, sizeof(mac));
		return rc; /* outcome stays SHIM_BG_ERROR */
	}
	if (!shim_ct_equal(mac, c->mac, sizeof(mac))) {
		shim_memzero(mac, sizeof(mac));
		res->outcome = SHIM_BG_BAD;
		return 0;
	}
	shim_memzero(mac, sizeof(mac));
	if (!bg->state_ok) {
		res->outcome = SHIM_BG_STATE;
		return 0;
	}
	if (judged_s >= res->expires_s) {
		res->outcome = SHIM_BG_EXPIRED;
		return 0;
	}
	if (trusted && res->issued_s > judged_s + (int64_t)bg->skew) {
		res->outcome = SHIM_BG_NOT_YET;
		return 0;
	}
	if (c->issued < bg->not_before || mark_find(bg, c) != NULL) {
		res->outcome = SHIM_BG_USED;
		return 0;
	}
	m = mark_alloc(bg, judged_s);
	if (m == NULL) {
		res->outcome = SHIM_BG_STATE;
		return 0;
	}
	m->issued = c->issued;
	m->nonce = c->nonce;
	m->expires = c->issued + c->ttl;
	rc = state_save(bg);
	if (rc != 0) {
		memset(m, 0, sizeof(*m));
		res->outcome = SHIM_BG_STATE;
		return 0;
	}
	{
		int64_t from = judged_s > res->issued_s ? judged_s : res->issued_s;
		int64_t left = res->expires_s - from;

		if (left > (int64_t)c->ttl * 60) {
			left = (int64_t)c->ttl * 60;
		}
		res->remaining_s = left > 0 ? (uint32_t)left : 1;
	}
	res->outcome = SHIM_BG_OK;
	return 0;
}

int shim_bg_unmark(struct shim_bg *bg, const struct shim_bg_result *res)
{
	struct shim_bg_mark *m;

	if (bg == NULL || bg->port == NULL || res->outcome != SHIM_BG_OK) {
		return SHIM_EINVAL;
	}
	m = mark_find(bg, &res->code);
	if (m == NULL) {
		return SHIM_ENOENT;
	}
	memset(m, 0, sizeof(*m));
	return state_save(bg);
}

const char *shim_bg_outcome_name(enum shim_bg_outcome o)
{
	switch (o) {
	case SHIM_BG_OK:
		return "ok";
	case SHIM_BG_MISTYPED:
		return "breakglass_mistyped";
	case SHIM_BG_BAD:
		return "breakglass_bad";
	case SHIM_BG_WRONG_SHIM:
		return "breakglass_wrong_shim";
	case SHIM_BG_EXPIRED:
		return "breakglass_expired";
	case SHIM_BG_NOT_YET:
		return "breakglass_not_yet_valid";
	case SHIM_BG_USED:
		return "breakglass_used";
	case SHIM_BG_STATE:
		return "breakglass_state_not_durable";
	case SHIM_BG_ERROR:
	default:
		return "breakglass_error";
	}
}

void shim_bg_wipe(struct shim_bg *bg)
{
	shim_memzero(&bg->key, sizeof(bg->key));
	shim_memzero(bg->blob, sizeof(bg->blob));
}
