/*
 * The TOTP gate.
 *
 * Order of checks in shim_gate_verify(), and why:
 *  1. the clock: an implausible clock refuses before anything else, and is
 *     not the technician's failure;
 *  2. the shim-wide rate limit and the per-ID lockout: both refuse without
 *     computing a single code, so a locked-out attacker learns nothing;
 *  3. the code, checked against every step of the window with no early
 *     exit, and against a dummy secret for unknown IDs, so that the time
 *     taken does not reveal whether the ID exists;
 *  4. replay: a match at or below the technician's last accepted step;
 *  5. the new replay mark is saved durably before OK is returned. If it
 *     cannot be saved, the in-memory mark is rolled back and the result is
 *     SHIM_AUTH_STATE: a code that could be replayed after a restart is
 *     never accepted.
 *
 * Persisted state (blob SHIM_GATE_STATE_NAME), big-endian:
 *   "SHGS" u8 version(1) u8[3] 0  i64 last_time
 *   u32 nmarks { u8 idlen, id, u64 last_step, i8 drift, i64 last_ok }*
 *   u32 nlocks { u8 idlen, id, u32 failures, i64 first, i64 until }*
 *   u32 crc32 of everything before it
 * Marks are keyed by technician ID, so re-ordering the technicians file
 * keeps them; marks of technicians no longer enrolled are dropped.
 */
#include <string.h>

#include "gate.h"
#include "otp.h"
#include "util.h"

#define STATE_MAGIC "SHGS"
#define STATE_VERSION 1
#define STATE_HDR 16
#define MARK_FIXED (1 + 8 + 1 + 8)
#define LOCK_FIXED (1 + 4 + 8 + 8)

static const uint8_t dummy_secret[20] = { 0x5a };

void shim_gate_cfg_default(struct shim_gate_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->md = SHIM_MD_SHA1;
	cfg->period = 30;
	cfg->digits = 6;
	cfg->window = 1;
	cfg->max_failures = 5;
	cfg->lockout_seconds = 300;
	cfg->rate_failures = 20;
	cfg->rate_seconds = 60;
#ifdef SHIM_BUILD_EPOCH
	cfg->min_time = SHIM_BUILD_EPOCH;
#endif
}

size_t shim_gate_scratch_size(size_t ntechs)
{
	return STATE_HDR + 4 + ntechs * (MARK_FIXED + SHIM_TECH_ID_MAX) + 4 +
	       SHIM_GATE_LOCK_SLOTS * (LOCK_FIXED + SHIM_TECH_ID_MAX) + 4;
}

const char *shim_auth_outcome_name(enum shim_auth_outcome o)
{
	switch (o) {
	case SHIM_AUTH_OK:
		return "ok";
	case SHIM_AUTH_BAD_USER:
		return "bad_user";
	case SHIM_AUTH_BAD_CODE:
		return "bad_code";
	case SHIM_AUTH_REPLAY:
		return "replay";
	case SHIM_AUTH_LOCKED_OUT:
		return "locked_out";
	case SHIM_AUTH_RATE_LIMITED:
		return "rate_limited";
	case SHIM_AUTH_CLOCK:
		return "clock_implausible";
	case SHIM_AUTH_STATE:
		return "state_not_durable";
	case SHIM_AUTH_MALFORMED:
		return "malformed";
	default:
		return "unknown";
	}
}

static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] != '\0') {
		n++;
	}
	return n;
}

int shim_gate_find(const struct shim_gate *g, const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len > SHIM_TECH_ID_MAX) {
		return -1;
	}
	for (i = 0; i < g->ntechs; i++) {
		if (bounded_len(g->techs[i].id, SHIM_TECH_ID_MAX + 1) == len &&
		    memcmp(g->techs[i].id, id, len) == 0) {
			return (int)i;
		}
	}
	return -1;
}

/* ---- persistence -------------------------------------------------------- */

static int state_encode(const struct shim_gate *g, size_t *out_len)
{
	uint8_t *p = g->scratch;
	uint8_t *end = g->scratch + g->scratch_cap;
	uint8_t *count_at;
	uint32_t n = 0;
	size_t i, idlen;

	if (g->scratch_cap < STATE_HDR + 12) {
		return SHIM_ENOSPC;
	}
	memcpy(p, STATE_MAGIC, 4);
	p[4] = STATE_VERSION;
	p[5] = p[6] = p[7] = 0;
	shim_put_u64(p + 8, (uint64_t)g->last_time);
	p += STATE_HDR;
	count_at = p;
	p += 4;
	for (i = 0; i < g->ntechs; i++) {
		const struct shim_technician *t = &g->techs[i];

		if (t->last_step == 0) {
			continue;
		}
		idlen = bounded_len(t->id, SHIM_TECH_ID_MAX);
		if ((size_t)(end - p) < MARK_FIXED + idlen + 8) {
			return SHIM_ENOSPC;
		}
		*p++ = (uint8_t)idlen;
		memcpy(p, t->id, idlen);
		p += idlen;
		shim_put_u64(p, t->last_step);
		p += 8;
		*p++ = (uint8_t)t->drift;
		shim_put_u64(p, (uint64_t)t->last_ok);
		p += 8;
		n++;
	}
	shim_put_u32(count_at, n);
	count_at = p;
	p += 4;
	n = 0;
	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		const struct shim_gate_lock *l = &g->locks[i];

		if (l->id[0] == '\0') {
			continue;
		}
		idlen = bounded_len(l->id, SHIM_TECH_ID_MAX);
		if ((size_t)(end - p) < LOCK_FIXED + idlen + 4) {
			return SHIM_ENOSPC;
		}
		*p++ = (uint8_t)idlen;
		memcpy(p, l->id, idlen);
		p += idlen;
		shim_put_u32(p, l->failures);
		p += 4;
		shim_put_u64(p, (uint64_t)l->first_failure);
		p += 8;
		shim_put_u64(p, (uint64_t)l->locked_until);
		p += 8;
		n++;
	}
	shim_put_u32(count_at, n);
	shim_put_u32(p, shim_crc32(0, g->scratch, (size_t)(p - g->scratch)));
	p += 4;
	*out_len = (size_t)(p - g->scratch);
	return 0;
}

static int state_save(struct shim_gate *g)
{
	size_t len;
	int rc;

	rc = state_encode(g, &len);
	if (rc != 0) {
		return rc;
	}
	return g->port->store.save(g->port->store.ctx, SHIM_GATE_STATE_NAME,
				   g->scratch, len);
}

/* Bounds-checked reader over the loaded blob. */
struct cur {
	const uint8_t *p;
	size_t left;
};

static int cur_take(struct cur *c, void *out, size_t n)
{
	if (c->left < n) {
		return SHIM_ECORRUPT;
	}
	if (out != NULL) {
		memcpy(out, c->p, n);
	}
	c->p += n;
	c->left -= n;
	return 0;
}

static int cur_u64(struct cur *c, uint64_t *v)
{
	uint8_t b[8];
	int rc = cur_take(c, b, 8);

	*v = rc == 0 ? shim_get_u64(b) : 0;
	return rc;
}

static int cur_u32(struct cur *c, uint32_t *v)
{
	uint8_t b[4];
	int rc = cur_take(c, b, 4);

	*v = rc == 0 ? shim_get_u32(b) : 0;
	return rc;
}

static int cur_id(struct cur *c, char id[SHIM_TECH_ID_MAX + 1])
{
	uint8_t len;
	int rc;

	rc = cur_take(c, &len, 1);
	if (rc != 0) {
		return rc;
	}
	if (len == 0 || len > SHIM_TECH_ID_MAX) {
		return SHIM_ECORRUPT;
	}
	rc = cur_take(c, id, len);
	if (rc != 0) {
		return rc;
	}
	id[len] = '\0';
	if (memchr(id, '\0', len) != NULL) {
		return SHIM_ECORRUPT;
	}
	return 0;
}

static int state_decode(struct shim_gate *g, const uint8_t *buf, size_t len)
{
	struct cur c;
	uint32_t n, i, crc;
	uint64_t v;
	char id[SHIM_TECH_ID_MAX + 1];
	int rc, slot = 0;

	if (len < STATE_HDR + 12 || memcmp(buf, STATE_MAGIC, 4) != 0 ||
	    buf[4] != STATE_VERSION) {
		return SHIM_ECORRUPT;
	}
	crc = shim_get_u32(buf + len - 4);
	if (crc != shim_crc32(0, buf, len - 4)) {
		return SHIM_ECORRUPT;
	}
	c.p = buf + 8;
	c.left = len - 8 - 4;
	if ((rc = cur_u64(&c, &v)) != 0) {
		return rc;
	}
	g->last_time = (int64_t)v;
	if ((rc = cur_u32(&c, &n)) != 0) {
		return rc;
	}
	for (i = 0; i < n; i++) {
		uint64_t step, ok;
		int8_t drift;
		int t;

		if ((rc = cur_id(&c, id)) != 0 || (rc = cur_u64(&c, &step)) != 0 ||
		    (rc = cur_take(&c, &drift, 1)) != 0 ||
		    (rc = cur_u64(&c, &ok)) != 0) {
			return rc;
		}
		t = shim_gate_find(g, id, bounded_len(id, SHIM_TECH_ID_MAX));
		if (t >= 0) {
			g->techs[t].last_step = step;
			g->techs[t].drift = drift;
			g->techs[t].last_ok = (int64_t)ok;
		}
	}
	if ((rc = cur_u32(&c, &n)) != 0) {
		return rc;
	}
	if (n > SHIM_GATE_LOCK_SLOTS) {
		return SHIM_ECORRUPT;
	}
	for (i = 0; i < n; i++) {
		struct shim_gate_lock *l = &g->locks[slot++];
		uint64_t first, until;

		if ((rc = cur_id(&c, id)) != 0 ||
		    (rc = cur_u32(&c, &l->failures)) != 0 ||
		    (rc = cur_u64(&c, &first)) != 0 ||
		    (rc = cur_u64(&c, &until)) != 0) {
			return rc;
		}
		memcpy(l->id, id, sizeof(l->id));
		l->first_failure = (int64_t)first;
		l->locked_until = (int64_t)until;
	}
	if (c.left != 0) {
		return SHIM_ECORRUPT;
	}
	return 0;
}

static void clear_state(struct shim_gate *g)
{
	size_t i;

	for (i = 0; i < g->ntechs; i++) {
		g->techs[i].last_step = 0;
		g->techs[i].drift = 0;
		g->techs[i].last_ok = 0;
	}
	memset(g->locks, 0, sizeof(g->locks));
	memset(g->rate, 0, sizeof(g->rate));
	g->rate_head = 0;
	g->last_time = 0;
}

int shim_gate_init(struct shim_gate *g, const struct shim_gate_cfg *cfg,
		   struct shim_technician *techs, size_t ntechs,
		   const struct shim_port *port, uint8_t *scratch,
		   size_t scratch_cap)
{
	size_t len = 0;
	int rc;

	memset(g, 0, sizeof(*g));
	if (cfg == NULL || port == NULL || port->crypto.hmac == NULL ||
	    port->store.load == NULL || port->store.save == NULL ||
	    cfg->period == 0 || cfg->digits < SHIM_OTP_MIN_DIGITS ||
	    cfg->digits > SHIM_OTP_MAX_DIGITS || cfg->window > 10 ||
	    scratch_cap < shim_gate_scratch_size(ntechs)) {
		return SHIM_EINVAL;
	}
	g->cfg = *cfg;
	g->techs = techs;
	g->ntechs = ntechs;
	g->port = port;
	g->scratch = scratch;
	g->scratch_cap = scratch_cap;
	clear_state(g);

	rc = port->store.load(port->store.ctx, SHIM_GATE_STATE_NAME, scratch,
			      scratch_cap, &len);
	if (rc == SHIM_ENOENT) {
		/* First start: make the (empty) state durable now, so that a
		 * store that cannot be written is found before any code is
		 * accepted. */
		rc = state_save(g);
		if (rc != 0) {
			return rc;
		}
		g->state_ok = 1;
		return 0;
	}
	if (rc == SHIM_ENOSPC) {
		return SHIM_ECORRUPT;
	}
	if (rc != 0) {
		return rc;
	}
	rc = state_decode(g, scratch, len);
	shim_memzero(scratch, len);
	if (rc != 0) {
		clear_state(g);
		return rc;
	}
	g->state_ok = 1;
	return 0;
}

int shim_gate_reset_state(struct shim_gate *g, int64_t now)
{
	uint64_t step = shim_totp_step(now, g->cfg.period) + g->cfg.window;
	size_t i;
	int rc;

	clear_state(g);
	/* Nothing issued up to the end of the current window is accepted:
	 * the old marks are lost, so assume every code so far was used. */
	for (i = 0; i < g->ntechs; i++) {
		g->techs[i].last_step = step;
	}
	g->last_time = now;
	rc = state_save(g);
	g->state_ok = rc == 0;
	return rc;
}

/* ---- clock, lockout, rate limit --------------------------------------- */

int shim_gate_clock_check(const struct shim_gate *g, int64_t now)
{
	int64_t slack = (int64_t)g->cfg.window * g->cfg.period;

	if (now < g->cfg.min_time) {
		return SHIM_ECLOCK;
	}
	if (g->last_time != 0 && now + slack < g->last_time) {
		return SHIM_ECLOCK;
	}
	return 0;
}

int shim_gate_note_time(struct shim_gate *g, int64_t now)
{
	if (!g->state_ok) {
		return SHIM_ESTATE;
	}
	if (shim_gate_clock_check(g, now) != 0) {
		return SHIM_ECLOCK;
	}
	if (now > g->last_time) {
		g->last_time = now;
	}
	return state_save(g);
}

static struct shim_gate_lock *lock_find(const struct shim_gate *g,
					const char *id, size_t len)
{
	size_t i;

	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		const struct shim_gate_lock *l = &g->locks[i];

		if (l->id[0] != '\0' && bounded_len(l->id, SHIM_TECH_ID_MAX) == len &&
		    memcmp(l->id, id, len) == 0) {
			return (struct shim_gate_lock *)l;
		}
	}
	return NULL;
}

/* A slot for a new ID: a free one, else the stalest one that is not
 * locked. NULL when every slot holds a live lockout: the caller then
 * refuses, rather than evict a lockout an attacker wants gone. */
static struct shim_gate_lock *lock_alloc(struct shim_gate *g, int64_t now)
{
	struct shim_gate_lock *best = NULL;
	size_t i;

	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		struct shim_gate_lock *l = &g->locks[i];

		if (l->id[0] == '\0') {
			return l;
		}
		if (l->locked_until > now) {
			continue;
		}
		if (best == NULL || l->first_failure < best->first_failure) {
			best = l;
		}
	}
	return best;
}

uint32_t shim_gate_lockout_left(const struct shim_gate *g, const char *id,
				int64_t now)
{
	const struct shim_gate_lock *l;

	l = lock_find(g, id, bounded_len(id, SHIM_TECH_ID_MAX + 1));
	if (l == NULL || l->locked_until <= now) {
		return 0;
	}
	return (uint32_t)(l->locked_until - now);
}

size_t shim_gate_lockouts(const struct shim_gate *g, int64_t now)
{
	size_t i, n = 0;

	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		if (g->locks[i].id[0] != '\0' && g->locks[i].locked_until > now) {
			n++;
		}
	}
	return n;
}

int shim_gate_reset_lockout(struct shim_gate *g, const char *id, int64_t now)
{
	struct shim_gate_lock *l;

	(void)now;
	l = lock_find(g, id, bounded_len(id, SHIM_TECH_ID_MAX + 1));
	if (l == NULL) {
		return SHIM_ENOENT;
	}
	memset(l, 0, sizeof(*l));
	return state_save(g);
}

static uint32_t rate_count(const struct shim_gate *g, int64_t now,
			   int64_t *oldest)
{
	uint32_t i, n = 0;
	int64_t from = now - (int64_t)g->cfg.rate_seconds;

	*oldest = now;
	for (i = 0; i < SHIM_GATE_RATE_SLOTS; i++) {
		int64_t t = g->rate[i];

		if (t != 0 && t > from && t <= now) {
			n++;
			if (t < *oldest) {
				*oldest = t;
			}
		}
	}
	return n;
}

static void rate_note(struct shim_gate *g, int64_t now)
{
	g->rate[g->rate_head % SHIM_GATE_RATE_SLOTS] = now;
	g->rate_head = (g->rate_head + 1) % SHIM_GATE_RATE_SLOTS;
}

/* Counts a failure against the claimed ID and the shim. */
static void note_failure(struct shim_gate *g, const char *id, size_t len,
			 int64_t now, struct shim_auth_result *res)
{
	struct shim_gate_lock *l = lock_find(g, id, len);

	rate_note(g, now);
	if (l == NULL) {
		l = lock_alloc(g, now);
		if (l == NULL) {
			return;
		}
		memset(l, 0, sizeof(*l));
		memcpy(l->id, id, len);
	}
	if (l->failures == 0 ||
	    now - l->first_failure >= (int64_t)g->cfg.lockout_seconds) {
		l->failures = 0;
		l->first_failure = now;
	}
	l->failures++;
	res->failures = l->failures;
	if (l->failures >= g->cfg.max_failures && l->locked_until <= now) {
		l->locked_until = now + (int64_t)g->cfg.lockout_seconds;
		res->locked_now = 1;
		res->retry_after = g->cfg.lockout_seconds;
	}
	/* Best effort: a failure that cannot be persisted still fails. */
	(void)state_save(g);
}

/* ---- verification -------------------------------------------------------- */

static int ids_ok(const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len > SHIM_TECH_ID_MAX) {
		return 0;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c <= 0x20 || c >= 0x7f) {
			return 0;
		}
	}
	return 1;
}

int shim_gate_verify(struct shim_gate *g, const char *id, size_t id_len,
		     const char *code, size_t code_len, int64_t now,
		     struct shim_auth_result *res)
{
	const uint8_t *secret;
	size_t secret_len;
	uint32_t want, got;
	uint64_t base, step, match_step = 0;
	int t, off, match_off = 0, matched = 0, bad_code, rc;
	int64_t oldest;
	struct shim_gate_lock *l;

	memset(res, 0, sizeof(*res));
	res->tech = -1;

	if (!ids_ok(id, id_len)) {
		res->outcome = SHIM_AUTH_MALFORMED;
		return 0;
	}
	if (!g->state_ok) {
		res->outcome = SHIM_AUTH_STATE;
		return 0;
	}
	if (shim_gate_clock_check(g, now) != 0) {
		res->outcome = SHIM_AUTH_CLOCK;
		return 0;
	}
	if (rate_count(g, now, &oldest) >= g->cfg.rate_failures) {
		res->outcome = SHIM_AUTH_RATE_LIMITED;
		res->retry_after =
			(uint32_t)(oldest + (int64_t)g->cfg.rate_seconds - now);
		return 0;
	}
	l = lock_find(g, id, id_len);
	if (l != NULL && l->locked_until > now) {
		res->outcome = SHIM_AUTH_LOCKED_OUT;
		res->retry_after = (uint32_t)(l->locked_until - now);
		res->failures = l->failures;
		return 0;
	}
	if (l == NULL && lock_alloc(g, now) == NULL) {
		/* Every slot holds a live lockout: an ID spray is under way. */
		res->outcome = SHIM_AUTH_RATE_LIMITED;
		res->retry_after = g->cfg.lockout_seconds;
		return 0;
	}

	t = shim_gate_find(g, id, id_len);
	if (t >= 0) {
		secret = g->techs[t].secret;
		secret_len = g->techs[t].secret_len;
	} else {
		secret = dummy_secret;
		secret_len = sizeof(dummy_secret);
	}
	bad_code = shim_otp_parse(code, code_len, g->cfg.digits, &got) != 0;

	base = shim_totp_step(now, g->cfg.period);
	for (off = -(int)g->cfg.window; off <= (int)g->cfg.window; off++) {
		int hit;

		if (off < 0 && base < (uint64_t)-off) {
			continue;
		}
		step = base + (uint64_t)(int64_t)off;
		rc = shim_hotp(&g->port->crypto, g->cfg.md, secret, secret_len,
			       step, g->cfg.digits, &want);
		if (rc != 0) {
			return rc;
		}
		hit = shim_ct_equal(&want, &got, sizeof(want));
		/* Keep the earliest matching step; no early exit. */
		if (hit && !matched) {
			matched = 1;
			match_off = off;
			match_step = step;
		}
		want = 0;
	}
	got = 0;

	if (t < 0 || bad_code || !matched) {
		res->outcome = t < 0 ? SHIM_AUTH_BAD_USER : SHIM_AUTH_BAD_CODE;
		note_failure(g, id, id_len, now, res);
		return 0;
	}
	if (match_step <= g->techs[t].last_step) {
		res->outcome = SHIM_AUTH_REPLAY;
		note_failure(g, id, id_len, now, res);
		return 0;
	}

	/* Success, provided the mark is durable first. */
	{
		struct shim_technician saved = g->techs[t];
		int64_t saved_time = g->last_time;
		struct shim_gate_lock saved_lock;

		if (l != NULL) {
			saved_lock = *l;
			memset(l, 0, sizeof(*l));
		}
		g->techs[t].last_step = match_step;
		g->techs[t].drift = (int8_t)match_off;
		g->techs[t].last_ok = now;
		if (now > g->last_time) {
			g->last_time = now;
		}
		rc = state_save(g);
		if (rc != 0) {
			g->techs[t].last_step = saved.last_step;
			g->techs[t].drift = saved.drift;
			g->techs[t].last_ok = saved.last_ok;
			g->last_time = saved_time;
			if (l != NULL) {
				*l = saved_lock;
			}
			shim_memzero(&saved, sizeof(saved));
			res->outcome = SHIM_AUTH_STATE;
			return 0;
		}
		shim_memzero(&saved, sizeof(saved));
	}
	res->outcome = SHIM_AUTH_OK;
	res->tech = t;
	res->drift = match_off;
	res->step = match_step;
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int shim_gate_verify_line(struct shim_gate *g, const char *line, size_t len,
			  int64_t now, struct shim_auth_result *res)
{
	size_t i = 0, id_start, id_end, code_start, code_end;

	while (i < len && is_blank(line[i])) {
		i++;
	}
	id_start = i;
	while (i < len && !is_blank(line[i])) {
		i++;
	}
	id_end = i;
	while (i < len && is_blank(line[i])) {
		i++;
	}
	code_start = i;
	while (i < len && !is_blank(line[i])) {
		i++;
	}
	code_end = i;
	while (i < len && is_blank(line[i])) {
		i++;
	}
	if (id_end == id_start || code_end == code_start || i != len) {
		memset(res, 0, sizeof(*res));
		res->tech = -1;
		res->outcome = SHIM_AUTH_MALFORMED;
		/* A malformed line with a recognisable ID still counts against
		 * that ID, so garbage cannot be used to probe for free. */
		if (id_end > id_start && ids_ok(line + id_start, id_end - id_start) &&
		    g->state_ok) {
			note_failure(g, line + id_start, id_end - id_start, now, res);
		} else if (g->state_ok) {
			rate_note(g, now);
		}
		return 0;
	}
	return shim_gate_verify(g, line + id_start, id_end - id_start,
				line + code_start, code_end - code_start, now,
				res);
}

void shim_gate_wipe(struct shim_gate *g)
{
	size_t i;

	for (i = 0; i < g->ntechs; i++) {
		shim_memzero(g->techs[i].secret, sizeof(g->techs[i].secret));
		g->techs[i].secret_len = 0;
	}
	if (g->scratch != NULL) {
		shim_memzero(g->scratch, g->scratch_cap);
	}
	shim_memzero(g->locks, sizeof(g->locks));
}
