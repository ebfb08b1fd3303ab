/*
 * The provisioning blob (provision.h).
 *
 * The decoder reads hostile bytes: every read is checked against what
 * remains by subtraction, nothing in a field is looked at before the CRC
 * over the whole blob matched, and any refusal wipes every output, so a
 * caller that ignores the return code still holds no half-read secret and
 * no technician (ntechs 0).
 *
 * The range checks are shared by the encoder and the decoder: a blob that
 * shimctl writes is one the firmware accepts, and the limits are those of
 * the YAML loader (common/config.c).
 */
#include <string.h>

#include "err.h"
#include "otp.h"
#include "provision.h"
#include "record.h"
#include "util.h"

#define OFF_VERSION 8
#define OFF_FLAGS 10
#define OFF_TOTAL 12
#define MIN_TOTAL (SHIM_PROV_HEADER_LEN + SHIM_PROV_CRC_LEN)
#define RECORD_SIZE_MIN 64

/* The singletons seen so far, one bit per known type. */
#define SEEN(t) (1u << (t))

#define SHIM_PROV_REASONS(XX)                                              \
	XX(OK, 0, "ok")                                                    \
	XX(ARGS, SHIM_EINVAL, "invalid arguments")                         \
	XX(TRUNCATED, SHIM_ETRUNC, "blob is truncated")                    \
	XX(MAGIC, SHIM_ECORRUPT, "not a provisioning blob (bad magic)")    \
	XX(VERSION, SHIM_ENOTSUP, "unsupported blob version")              \
	XX(FLAGS, SHIM_ENOTSUP, "unsupported header flags")                \
	XX(LENGTH, SHIM_ERANGE, "total length out of range")               \
	XX(TRAILING, SHIM_ECORRUPT, "bytes after the blob's total length") \
	XX(CRC, SHIM_ECORRUPT, "bad CRC")                                  \
	XX(FIELD_OVERRUN, SHIM_ECORRUPT, "a field runs past the end")      \
	XX(FIELD_LENGTH, SHIM_ECORRUPT, "a field has the wrong length")    \
	XX(UNKNOWN_FIELD, SHIM_ENOTSUP, "unknown mandatory field")         \
	XX(DUPLICATE, SHIM_EEXIST, "a field appears twice")                \
	XX(MISSING, SHIM_ENOENT, "a required field is missing")            \
	XX(SHIM_ID, SHIM_EINVAL, "shim_id is empty, too long or has a bad character") \
	XX(RANGE, SHIM_ERANGE, "a setting is out of range")                \
	XX(RECORD_KEY, SHIM_EINVAL, "recording key is not an uncompressed P-256 point") \
	XX(TECH_ID, SHIM_EINVAL, "technician ID is empty, too long or has a bad character") \
	XX(SECRET_LEN, SHIM_ERANGE, "technician secret is under 10 or over 64 bytes") \
	XX(TECH_DUP, SHIM_EEXIST, "duplicate technician ID")               \
	XX(TOO_MANY, SHIM_ENOSPC, "too many technicians")                  \
	XX(NO_TECH, SHIM_ENOENT, "no technician")                          \
	XX(NOSPACE, SHIM_ENOSPC, "output buffer too small")

const char *shim_provision_reason_str(enum shim_prov_reason r)
{
	switch (r) {
#define SHIM__PROV_STR(name, err, text) \
	case SHIM_PROV_R_##name:        \
		return text;
		SHIM_PROV_REASONS(SHIM__PROV_STR)
#undef SHIM__PROV_STR
	case SHIM_PROV_R__COUNT:
	default:
		return "unknown reason";
	}
}

int shim_provision_reason_err(enum shim_prov_reason r)
{
	switch (r) {
#define SHIM__PROV_ERR(name, err, text) \
	case SHIM_PROV_R_##name:        \
		return err;
		SHIM_PROV_REASONS(SHIM__PROV_ERR)
#undef SHIM__PROV_ERR
	case SHIM_PROV_R__COUNT:
	default:
		return SHIM_EINTERNAL;
	}
}

void shim_provision_defaults(struct shim_provision *p)
{
	memset(p, 0, sizeof(*p));
	p->version = SHIM_PROV_VERSION;
	shim_gate_cfg_default(&p->gate);
	p->idle_timeout_ms = 900u * 1000u;
	p->max_duration_ms = 28800u * 1000u;
	p->reconnect_grace_ms = 30u * 1000u;
	p->device_reset_hold_ms = 500;
	p->device_reset = SHIM_PROV_RESET_NONE;
	p->on_failure = SHIM_PROV_ON_FAILURE_CONTINUE;
	p->heartbeat_period_ms = 60u * 1000u;
	p->clock_max_jump = 120;
}

void shim_provision_wipe(struct shim_provision *p,
			 struct shim_technician *techs, size_t ntechs)
{
	if (p != NULL) {
		shim_memzero(p, sizeof(*p));
	}
	if (techs != NULL && ntechs > 0) {
		shim_memzero(techs, ntechs * sizeof(*techs));
	}
}

/* ---- checks shared by both directions ---------------------------------- */

static int in_range(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi;
}

/* shim.id as the YAML loader takes it: printable, no space, quote,
 * backslash, ']' or '/' (it names files and RFC 5424 SD-IDs). */
static int shim_id_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SHIM_PROV_SHIM_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' ||
		    s[i] == '\\' || s[i] == ']' || s[i] == '/') {
			return 0;
		}
	}
	return 1;
}

/* technician_id as the YAML loader takes it: printable, no space. */
static int tech_id_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SHIM_TECH_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f) {
			return 0;
		}
	}
	return 1;
}

static int gate_ok(const struct shim_gate_cfg *g)
{
	return (g->md == SHIM_MD_SHA1 || g->md == SHIM_MD_SHA256 ||
		g->md == SHIM_MD_SHA512) &&
	       in_range(g->digits, SHIM_OTP_MIN_DIGITS, SHIM_OTP_MAX_DIGITS) &&
	       g->window <= 10 && in_range(g->period, 1, 3600) &&
	       in_range(g->max_failures, 1, 1000) &&
	       in_range(g->lockout_seconds, 1, 7u * 86400u) &&
	       in_range(g->rate_failures, 1, SHIM_GATE_RATE_SLOTS) &&
	       in_range(g->rate_seconds, 1, 86400);
}

static int session_ok(const struct shim_provision *p)
{
	return in_range(p->idle_timeout_ms, 1000, 7u * 86400u * 1000u) &&
	       in_range(p->max_duration_ms, 1000, 7u * 86400u * 1000u) &&
	       p->reconnect_grace_ms <= 3600u * 1000u &&
	       in_range(p->device_reset_hold_ms, 50, 10000) &&
	       (p->device_reset == SHIM_PROV_RESET_NONE ||
		p->device_reset == SHIM_PROV_RESET_DTR) &&
	       (p->on_failure == SHIM_PROV_ON_FAILURE_CONTINUE ||
		p->on_failure == SHIM_PROV_ON_FAILURE_STOP);
}

static int heartbeat_ok(uint32_t ms)
{
	return in_range(ms, 1000, 86400u * 1000u);
}

static int clock_ok(uint32_t s)
{
	return in_range(s, 5, 86400);
}

static int record_size_ok(uint32_t n)
{
	return in_range(n, RECORD_SIZE_MIN, SHIM_REC_MAX_PLAIN);
}

/* ---- decoder ------------------------------------------------------------ */

struct dec {
	struct shim_provision *out;
	struct shim_technician *techs;
	size_t max_techs;
	uint32_t seen;
};

/* Clears every output but the reason, and returns its code. */
static int refuse(struct shim_provision *out, struct shim_technician *techs,
		  size_t max_techs, enum shim_prov_reason r, size_t off)
{
	shim_provision_wipe(out, techs, max_techs);
	out->reason = r;
	out->error_offset = (uint32_t)off;
	return shim_provision_reason_err(r);
}

static enum shim_prov_reason peek(const uint8_t *hdr, size_t len,
				  size_t *total, size_t *off)
{
	size_t n = len < SHIM_PROV_MAGIC_LEN ? len : SHIM_PROV_MAGIC_LEN;
	uint32_t t;

	*off = 0;
	if (memcmp(hdr, SHIM_PROV_MAGIC, n) != 0) {
		return SHIM_PROV_R_MAGIC;
	}
	if (len < SHIM_PROV_HEADER_LEN) {
		*off = len;
		return SHIM_PROV_R_TRUNCATED;
	}
	t = shim_get_u32(hdr + OFF_TOTAL);
	if (t < MIN_TOTAL || t > SHIM_PROV_MAX_LEN) {
		*off = OFF_TOTAL;
		return SHIM_PROV_R_LENGTH;
	}
	*total = t;
	return SHIM_PROV_R_OK;
}

int shim_provision_peek_len(const uint8_t *hdr, size_t len, size_t *total)
{
	enum shim_prov_reason r;
	size_t off;

	if (hdr == NULL || total == NULL) {
		return SHIM_EINVAL;
	}
	*total = 0;
	r = peek(hdr, len, total, &off);
	return shim_provision_reason_err(r);
}

static uint32_t u32_at(const uint8_t *v, size_t i)
{
	return shim_get_u32(v + i);
}

static enum shim_prov_reason dec_gate(struct dec *d, const uint8_t *v,
				      size_t n)
{
	struct shim_gate_cfg *g = &d->out->gate;

	if (n != SHIM_PROV_GATE_LEN) {
		return SHIM_PROV_R_FIELD_LENGTH;
	}
	/* The enum gets only a checked value. */
	if (v[0] > SHIM_MD_SHA512 || v[3] != 0) {
		return SHIM_PROV_R_RANGE;
	}
	memset(g, 0, sizeof(*g));
	g->md = (enum shim_md)v[0];
	g->digits = v[1];
	g->window = v[2];
	g->period = u32_at(v, 4);
	g->max_failures = u32_at(v, 8);
	g->lockout_seconds = u32_at(v, 12);
	g->rate_failures = u32_at(v, 16);
	g->rate_seconds = u32_at(v, 20);
	return gate_ok(g) ? SHIM_PROV_R_OK : SHIM_PROV_R_RANGE;
}

static enum shim_prov_reason dec_session(struct dec *d, const uint8_t *v,
					 size_t n)
{
	struct shim_provision *p = d->out;

	if (n != SHIM_PROV_SESSION_LEN) {
		return SHIM_PROV_R_FIELD_LENGTH;
	}
	if (v[16] > SHIM_PROV_RESET_DTR || v[17] > SHIM_PROV_ON_FAILURE_STOP ||
	    v[18] != 0 || v[19] != 0) {
		return SHIM_PROV_R_RANGE;
	}
	p->idle_timeout_ms = u32_at(v, 0);
	p->max_duration_ms = u32_at(v, 4);
	p->reconnect_grace_ms = u32_at(v, 8);
	p->device_reset_hold_ms = u32_at(v, 12);
	p->device_reset = (enum shim_prov_device_reset)v[16];
	p->on_failure = (enum shim_prov_on_failure)v[17];
	return session_ok(p) ? SHIM_PROV_R_OK : SHIM_PROV_R_RANGE;
}

static enum shim_prov_reason dec_u32(const uint8_t *v, size_t n,
				     uint32_t *dst, int (*ok)(uint32_t))
{
	if (n != 4) {
		return SHIM_PROV_R_FIELD_LENGTH;
	}
	*dst = u32_at(v, 0);
	return ok(*dst) ? SHIM_PROV_R_OK : SHIM_PROV_R_RANGE;
}

static enum shim_prov_reason dec_tech(struct dec *d, const uint8_t *v,
				      size_t n)
{
	struct shim_technician *t;
	size_t id_len, sec_len, i;

	/* u8 id_len | id | u8 sec_len | secret, exactly n bytes */
	if (n < 2) {
		return SHIM_PROV_R_FIELD_LENGTH;
	}
	id_len = v[0];
	if (n - 1 - 1 < id_len) {
		return SHIM_PROV_R_FIELD_LENGTH;
	}
	sec_len = v[1 + id_len];
	if (n - 2 - id_len != sec_len) {
		return SHIM_PROV_R_FIELD_LENGTH;
	}
	if (!tech_id_ok(v + 1, id_len)) {
		return SHIM_PROV_R_TECH_ID;
	}
	if (sec_len < SHIM_PROV_SECRET_MIN || sec_len > SHIM_SECRET_MAX) {
		return SHIM_PROV_R_SECRET_LEN;
	}
	for (i = 0; i < d->out->ntechs; i++) {
		if (strlen(d->techs[i].id) == id_len &&
		    memcmp(d->techs[i].id, v + 1, id_len) == 0) {
			return SHIM_PROV_R_TECH_DUP;
		}
	}
	if (d->out->ntechs >= d->max_techs) {
		return SHIM_PROV_R_TOO_MANY;
	}
	t = &d->techs[d->out->ntechs++];
	memcpy(t->id, v + 1, id_len);
	t->id[id_len] = '\0';
	memcpy(t->secret, v + 2 + id_len, sec_len);
	t->secret_len = (uint8_t)sec_len;
	return SHIM_PROV_R_OK;
}

static enum shim_prov_reason dec_field(struct dec *d, unsigned type,
				       const uint8_t *v, size_t n)
{
	struct shim_provision *p = d->out;

	if (type == SHIM_PROV_T_TECHNICIAN) {
		return dec_tech(d, v, n);
	}
	if (type >= SHIM_PROV_T_SHIM_ID && type <= SHIM_PROV_T_RECORD_SIZE) {
		if (d->seen & SEEN(type)) {
			return SHIM_PROV_R_DUPLICATE;
		}
		d->seen |= SEEN(type);
	}
	switch (type) {
	case SHIM_PROV_T_SHIM_ID:
		if (!shim_id_ok(v, n)) {
			return SHIM_PROV_R_SHIM_ID;
		}
		memcpy(p->shim_id, v, n);
		p->shim_id[n] = '\0';
		return SHIM_PROV_R_OK;
	case SHIM_PROV_T_GATE:
		return dec_gate(d, v, n);
	case SHIM_PROV_T_SESSION:
		return dec_session(d, v, n);
	case SHIM_PROV_T_LOGOUT:
		if (n == 0) {
			return SHIM_PROV_R_FIELD_LENGTH;
		}
		if (n > SHIM_PROV_LOGOUT_MAX) {
			return SHIM_PROV_R_RANGE;
		}
		memcpy(p->device_logout, v, n);
		p->device_logout_len = (uint16_t)n;
		return SHIM_PROV_R_OK;
	case SHIM_PROV_T_HEARTBEAT:
		return dec_u32(v, n, &p->heartbeat_period_ms, heartbeat_ok);
	case SHIM_PROV_T_CLOCK:
		return dec_u32(v, n, &p->clock_max_jump, clock_ok);
	case SHIM_PROV_T_RECORD_KEY:
		if (n != SHIM_P256_PUB_LEN) {
			return SHIM_PROV_R_FIELD_LENGTH;
		}
		if (v[0] != 0x04) {
			return SHIM_PROV_R_RECORD_KEY;
		}
		memcpy(p->record_key, v, n);
		p->has_record_key = 1;
		return SHIM_PROV_R_OK;
	case SHIM_PROV_T_RECORD_SIZE:
		return dec_u32(v, n, &p->record_size, record_size_ok);
	default:
		return (type & SHIM_PROV_T_OPTIONAL) ? SHIM_PROV_R_OK :
						       SHIM_PROV_R_UNKNOWN_FIELD;
	}
}

#define REQUIRED                                                   \
	(SEEN(SHIM_PROV_T_SHIM_ID) | SEEN(SHIM_PROV_T_GATE) |      \
	 SEEN(SHIM_PROV_T_SESSION) | SEEN(SHIM_PROV_T_HEARTBEAT))

int shim_provision_decode(const uint8_t *blob, size_t len,
			  struct shim_provision *out,
			  struct shim_technician *techs, size_t max_techs)
{
	struct dec d;
	enum shim_prov_reason r;
	size_t total = 0, off, end;

	if (out == NULL) {
		return SHIM_EINVAL;
	}
	if (techs == NULL) {
		max_techs = 0;
	}
	shim_provision_wipe(out, techs, max_techs);
	if (blob == NULL) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_ARGS, 0);
	}
	r = peek(blob, len, &total, &off);
	if (r != SHIM_PROV_R_OK) {
		return refuse(out, techs, max_techs, r, off);
	}
	if (len < total) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_TRUNCATED, len);
	}
	if (len > total) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_TRAILING, total);
	}
	end = total - SHIM_PROV_CRC_LEN;
	if (shim_crc32(0, blob, end) != shim_get_u32(blob + end)) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_CRC, end);
	}
	if (shim_get_u16(blob + OFF_VERSION) != SHIM_PROV_VERSION) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_VERSION,
			      OFF_VERSION);
	}
	if (shim_get_u16(blob + OFF_FLAGS) != 0) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_FLAGS,
			      OFF_FLAGS);
	}

	memset(&d, 0, sizeof(d));
	d.out = out;
	d.techs = techs;
	d.max_techs = max_techs;
	out->version = SHIM_PROV_VERSION;
	out->clock_max_jump = 120;
	for (off = SHIM_PROV_HEADER_LEN; off < end;) {
		unsigned type;
		size_t n;

		if (end - off < SHIM_PROV_FIELD_HDR) {
			return refuse(out, techs, max_techs,
				      SHIM_PROV_R_FIELD_OVERRUN, off);
		}
		type = shim_get_u16(blob + off);
		n = shim_get_u16(blob + off + 2);
		if (end - off - SHIM_PROV_FIELD_HDR < n) {
			return refuse(out, techs, max_techs,
				      SHIM_PROV_R_FIELD_OVERRUN, off);
		}
		r = dec_field(&d, type, blob + off + SHIM_PROV_FIELD_HDR, n);
		if (r != SHIM_PROV_R_OK) {
			return refuse(out, techs, max_techs, r, off);
		}
		off += SHIM_PROV_FIELD_HDR + n;
	}
	if ((d.seen & REQUIRED) != REQUIRED) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_MISSING, end);
	}
	if (out->ntechs == 0) {
		return refuse(out, techs, max_techs, SHIM_PROV_R_NO_TECH, end);
	}
	out->reason = SHIM_PROV_R_OK;
	out->error_offset = 0;
	return 0;
}

/* ---- encoder ------------------------------------------------------------ */

/* Counts every byte; stores those that fit. */
struct enc {
	uint8_t *buf;
	size_t cap;
	size_t off;
};

static void put(struct enc *e, const void *src, size_t n)
{
	if (n <= e->cap && e->off <= e->cap - n) {
		memcpy(e->buf + e->off, src, n);
	}
	e->off += n;
}

static void put8(struct enc *e, uint8_t v)
{
	put(e, &v, 1);
}

static void put16(struct enc *e, uint16_t v)
{
	uint8_t b[2];

	shim_put_u16(b, v);
	put(e, b, 2);
}

static void put32(struct enc *e, uint32_t v)
{
	uint8_t b[4];

	shim_put_u32(b, v);
	put(e, b, 4);
}

static void put_field(struct enc *e, unsigned type, size_t n)
{
	put16(e, (uint16_t)type);
	put16(e, (uint16_t)n);
}

/* strnlen() is POSIX, not C11. */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] != '\0') {
		n++;
	}
	return n;
}

static enum shim_prov_reason enc_check(const struct shim_provision *p,
				       const struct shim_technician *techs,
				       size_t ntechs)
{
	size_t i, j;

	if (!shim_id_ok((const uint8_t *)p->shim_id,
			bounded_len(p->shim_id, sizeof(p->shim_id))) ||
	    p->shim_id[sizeof(p->shim_id) - 1] != '\0') {
		return SHIM_PROV_R_SHIM_ID;
	}
	if (!gate_ok(&p->gate) || !session_ok(p) ||
	    !heartbeat_ok(p->heartbeat_period_ms) ||
	    !clock_ok(p->clock_max_jump) ||
	    p->device_logout_len > SHIM_PROV_LOGOUT_MAX ||
	    (p->record_size != 0 && !record_size_ok(p->record_size))) {
		return SHIM_PROV_R_RANGE;
	}
	if (p->has_record_key && p->record_key[0] != 0x04) {
		return SHIM_PROV_R_RECORD_KEY;
	}
	if (ntechs == 0) {
		return SHIM_PROV_R_NO_TECH;
	}
	if (ntechs > SHIM_PROVISION_MAX_TECHS) {
		return SHIM_PROV_R_TOO_MANY;
	}
	for (i = 0; i < ntechs; i++) {
		size_t n = bounded_len(techs[i].id, sizeof(techs[i].id));

		if (n == sizeof(techs[i].id) ||
		    !tech_id_ok((const uint8_t *)techs[i].id, n)) {
			return SHIM_PROV_R_TECH_ID;
		}
		if (techs[i].secret_len < SHIM_PROV_SECRET_MIN ||
		    techs[i].secret_len > SHIM_SECRET_MAX) {
			return SHIM_PROV_R_SECRET_LEN;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(techs[i].id, techs[j].id) == 0) {
				return SHIM_PROV_R_TECH_DUP;
			}
		}
	}
	return SHIM_PROV_R_OK;
}

static void enc_settings(struct enc *e, const struct shim_provision *p)
{
	const struct shim_gate_cfg *g = &p->gate;
	size_t n = strlen(p->shim_id);

	put_field(e, SHIM_PROV_T_SHIM_ID, n);
	put(e, p->shim_id, n);

	put_field(e, SHIM_PROV_T_GATE, SHIM_PROV_GATE_LEN);
	put8(e, (uint8_t)g->md);
	put8(e, g->digits);
	put8(e, g->window);
	put8(e, 0);
	put32(e, g->period);
	put32(e, g->max_failures);
	put32(e, g->lockout_seconds);
	put32(e, g->rate_failures);
	put32(e, g->rate_seconds);

	put_field(e, SHIM_PROV_T_SESSION, SHIM_PROV_SESSION_LEN);
	put32(e, p->idle_timeout_ms);
	put32(e, p->max_duration_ms);
	put32(e, p->reconnect_grace_ms);
	put32(e, p->device_reset_hold_ms);
	put8(e, (uint8_t)p->device_reset);
	put8(e, (uint8_t)p->on_failure);
	put16(e, 0);

	if (p->device_logout_len > 0) {
		put_field(e, SHIM_PROV_T_LOGOUT, p->device_logout_len);
		put(e, p->device_logout, p->device_logout_len);
	}
	put_field(e, SHIM_PROV_T_HEARTBEAT, 4);
	put32(e, p->heartbeat_period_ms);
	put_field(e, SHIM_PROV_T_CLOCK, 4);
	put32(e, p->clock_max_jump);
	if (p->has_record_key) {
		put_field(e, SHIM_PROV_T_RECORD_KEY, SHIM_P256_PUB_LEN);
		put(e, p->record_key, SHIM_P256_PUB_LEN);
	}
	if (p->record_size != 0) {
		put_field(e, SHIM_PROV_T_RECORD_SIZE, 4);
		put32(e, p->record_size);
	}
}

static void enc_tech(struct enc *e, const struct shim_technician *t)
{
	size_t n = strlen(t->id);

	put_field(e, SHIM_PROV_T_TECHNICIAN, 2 + n + t->secret_len);
	put8(e, (uint8_t)n);
	put(e, t->id, n);
	put8(e, t->secret_len);
	put(e, t->secret, t->secret_len);
}

int shim_provision_encode(const struct shim_provision *p,
			  const struct shim_technician *techs, size_t ntechs,
			  uint8_t *buf, size_t cap, size_t *out_len,
			  enum shim_prov_reason *why)
{
	enum shim_prov_reason dummy, r;
	struct enc e;
	size_t i;

	if (why == NULL) {
		why = &dummy;
	}
	*why = SHIM_PROV_R_ARGS;
	if (out_len != NULL) {
		*out_len = 0;
	}
	if (p == NULL || out_len == NULL || (buf == NULL && cap > 0) ||
	    (techs == NULL && ntechs > 0)) {
		return SHIM_EINVAL;
	}
	r = enc_check(p, techs, ntechs);
	if (r != SHIM_PROV_R_OK) {
		*why = r;
		return shim_provision_reason_err(r);
	}
	e.buf = buf;
	e.cap = cap;
	e.off = 0;
	put(&e, SHIM_PROV_MAGIC, SHIM_PROV_MAGIC_LEN);
	put16(&e, SHIM_PROV_VERSION);
	put16(&e, 0);
	put32(&e, 0); /* total_len, below */
	enc_settings(&e, p);
	for (i = 0; i < ntechs; i++) {
		enc_tech(&e, &techs[i]);
	}
	*out_len = e.off + SHIM_PROV_CRC_LEN;
	if (*out_len > SHIM_PROV_MAX_LEN) {
		/* Unreachable within the limits checked above. */
		if (buf != NULL) {
			shim_memzero(buf, cap);
		}
		*why = SHIM_PROV_R_LENGTH;
		return SHIM_ERANGE;
	}
	if (*out_len > cap) {
		if (buf != NULL) {
			shim_memzero(buf, cap);
		}
		*why = SHIM_PROV_R_NOSPACE;
		return SHIM_ENOSPC;
	}
	shim_put_u32(buf + OFF_TOTAL, (uint32_t)*out_len);
	shim_put_u32(buf + e.off, shim_crc32(0, buf, e.off));
	*why = SHIM_PROV_R_OK;
	return 0;
}
