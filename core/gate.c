/*
 * The TOTP gate.
 *
 * Order of checks in shim_gate_verify(), and why:
 *  1. the clock (core/clock.c): an untrusted clock refuses before anything
 *     else, and is not the technician's failure;
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
 * Lockouts and the rate limit expire with time, so they are judged at the
 * time that has certainly passed: the wall clock when the clock is
 * trusted, else no later than the clock's persisted floor. A clock moved
 * forwards while the shim was off cannot expire them.
 *
 * Persisted state (blob SHIM_GATE_STATE_NAME), big-endian:
 *   "SHGS" u8 version(2) u8[3] 0  i64 0 (v1: the last trusted time, now
 *                                         kept by core/clock.c; ignored)
 *   u32 nmarks { u8 idlen, id, u64 last_step, i8 drift, i64 last_ok }*
 *   u32 nlocks { u8 idlen, id, u32 failures, i64 first, i64 until }*
 *   u32 nrate  { i64 failure time }*        (v2 only; oldest first)
 *   u32 crc32 of everything before it
 * Marks are keyed by technician ID, so re-ordering the technicians file
 * keeps them; marks of technicians no longer enrolled are dropped. Locks
 * of enrolled IDs go back to their technician, the others to the slots.
 */
#include <string.h>

#include "gate.h"
#include "otp.h"
#include "util.h"

#define STATE_MAGIC "SHGS"
#define STATE_VERSION 2
#define STATE_VERSION_V1 1
#define STATE_HDR 16
#define MARK_FIXED (1 + 8 + 1 + 8)
#define LOCK_FIXED (1 + 4 + 8 + 8)
#define RATE_FIXED 8

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
}

size_t shim_gate_scratch_size(size_t ntechs)
{
	return STATE_HDR + 4 + ntechs * (MARK_FIXED + SHIM_TECH_ID_MAX) + 4 +
	       (SHIM_GATE_LOCK_SLOTS + ntechs) * (LOCK_FIXED + SHIM_TECH_ID_MAX) +
	       4 + SHIM_GATE_RATE_SLOTS * RATE_FIXED + 4;
}
const char *shim_auth_outcome_name(enum shim_auth_outcome o)
{
	switch (o) {
	case SHIM_AUTH_ERROR:
		return "internal_error";
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

/* ---- time that has passed ----------------------------------------------- */

/* The time at which expiries are judged: now with a trusted clock; else
 * no later than the persisted floor, the latest time known to be past. */
static int64_t passed_time(const struct shim_gate *g, int64_t now)
{
	int64_t floor;

	if (g->clock != NULL &&
	    shim_clock_peek(g->clock, now) == SHIM_CLOCK_TRUSTED) {
		return now;
	}
	floor = g->clock != NULL ? shim_clock_floor(g->clock) : 0;
	return floor < now ? floor : now;
}

/* ---- persistence -------------------------------------------------------- */

static int fails_held(const struct shim_gate_fails *f)
{
	return f->failures != 0 || f->locked_until != 0;
}

static int put_lock(uint8_t **pp, const uint8_t *end, const char *id,
		    const struct shim_gate_fails *f)
{
	uint8_t *p = *pp;
	size_t idlen = bounded_len(id, SHIM_TECH_ID_MAX);

	if ((size_t)(end - p) < LOCK_FIXED + idlen + 4) {
		return SHIM_ENOSPC;
	}
	*p++ = (uint8_t)idlen;
	memcpy(p, id, idlen);
	p += idlen;
	shim_put_u32(p, f->failures);
	p += 4;
	shim_put_u64(p, (uint64_t)f->first_failure);
	p += 8;
	shim_put_u64(p, (uint64_t)f->locked_until);
	p += 8;
	*pp = p;
	return 0;
}

static int state_encode(const struct shim_gate *g, size_t *out_len)
{
	uint8_t *p = g->scratch;
	uint8_t *end = g->scratch + g->scratch_cap;
	uint8_t *count_at;
	uint32_t n = 0;
	size_t i, idlen;
	int rc;

	if (g->scratch_cap < STATE_HDR + 16) {
		return SHIM_ENOSPC;
	}
	memcpy(p, STATE_MAGIC, 4);
	p[4] = STATE_VERSION;
	p[5] = p[6] = p[7] = 0;
	shim_put_u64(p + 8, 0);
	p += STATE_HDR;
	count_at = p;
	p += 4;
	for (i = 0; i < g->ntechs; i++) {
		const struct shim_technician *t = &g->techs[i];

		if (t->last_step == 0) {
			continue;
		}
		idlen = bounded_len(t->id, SHIM_TECH_ID_MAX);
		if ((size_t)(end - p) < MARK_FIXED + idlen + 12) {
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
	for (i = 0; i < g->ntechs; i++) {
		const struct shim_technician *t = &g->techs[i];

		if (!fails_held(&t->fails) || t->id[0] == '\0') {
			continue;
		}
		if ((rc = put_lock(&p, end, t->id, &t->fails)) != 0) {
			return rc;
		}
		n++;
	}
	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		const struct shim_gate_lock *l = &g->locks[i];

		if (l->id[0] == '\0') {
			continue;
		}
		if ((rc = put_lock(&p, end, l->id, &l->f)) != 0) {
			return rc;
		}
		n++;
	}
	shim_put_u32(count_at, n);
	count_at = p;
	p += 4;
	n = 0;
	/* Oldest first, so that a reload refills the ring in order. */
	for (i = 0; i < SHIM_GATE_RATE_SLOTS; i++) {
		int64_t t = g->rate[(g->rate_head + i) % SHIM_GATE_RATE_SLOTS];

		if (t == 0) {
			continue;
		}
		if ((size_t)(end - p) < RATE_FIXED + 4) {
			return SHIM_ENOSPC;
		}
		shim_put_u64(p, (uint64_t)t);
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
	uint64_t v, v1_time;
	char id[SHIM_TECH_ID_MAX + 1];
	int rc, version;
	size_t slot = 0;

	if (len < STATE_HDR + 12 || memcmp(buf, STATE_MAGIC, 4) != 0 ||
	    (buf[4] != STATE_VERSION && buf[4] != STATE_VERSION_V1)) {
		return SHIM_ECORRUPT;
	}
	version = buf[4];
	crc = shim_get_u32(buf + len - 4);
	if (crc != shim_crc32(0, buf, len - 4)) {
		return SHIM_ECORRUPT;
	}
	c.p = buf + 8;
	c.left = len - 8 - 4;
	/* v1 kept the last trusted time here; the clock owns it now, and
	 * takes it over on the first start after an upgrade. */
	if ((rc = cur_u64(&c, &v1_time)) != 0) {
		return rc;
	}
	if ((rc = cur_u32(&c, &n)) != 0) {
		return rc;
	}
	if (n > c.left / (MARK_FIXED + 1)) {
		return SHIM_ECORRUPT;
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
	if (n > c.left / (LOCK_FIXED + 1)) {
		return SHIM_ECORRUPT;
	}
	for (i = 0; i < n; i++) {
		struct shim_gate_fails f;
		uint64_t first, until;
		int t;

		if ((rc = cur_id(&c, id)) != 0 ||
		    (rc = cur_u32(&c, &f.failures)) != 0 ||
		    (rc = cur_u64(&c, &first)) != 0 ||
		    (rc = cur_u64(&c, &until)) != 0) {
			return rc;
		}
		f.first_failure = (int64_t)first;
		f.locked_until = (int64_t)until;
		t = shim_gate_find(g, id, bounded_len(id, SHIM_TECH_ID_MAX));
		if (t >= 0) {
			g->techs[t].fails = f;
		} else if (slot < SHIM_GATE_LOCK_SLOTS) {
			memcpy(g->locks[slot].id, id, sizeof(id));
			g->locks[slot].f = f;
			slot++;
		}
		/* Else a technician who left the table turned the slots full;
		 * the remaining lockouts of unenrolled IDs are dropped. */
	}
	if (version >= 2) {
		if ((rc = cur_u32(&c, &n)) != 0) {
			return rc;
		}
		if (n > SHIM_GATE_RATE_SLOTS) {
			return SHIM_ECORRUPT;
		}
		for (i = 0; i < n; i++) {
			if ((rc = cur_u64(&c, &v)) != 0) {
				return rc;
			}
			g->rate[i] = (int64_t)v;
		}
		g->rate_head = n % SHIM_GATE_RATE_SLOTS;
	}
	if (c.left != 0) {
		return SHIM_ECORRUPT;
	}
	if (version == STATE_VERSION_V1 && v1_time != 0) {
		(void)shim_clock_adopt_floor(g->clock, (int64_t)v1_time);
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
		memset(&g->techs[i].fails, 0, sizeof(g->techs[i].fails));
	}
	memset(g->locks, 0, sizeof(g->locks));
	memset(g->rate, 0, sizeof(g->rate));
	g->rate_head = 0;
}

int shim_gate_init(struct shim_gate *g, const struct shim_gate_cfg *cfg,
		   struct shim_technician *techs, size_t ntechs,
		   const struct shim_port *port, struct shim_clock *clock,
		   uint8_t *scratch, size_t scratch_cap)
{
	size_t len = 0;
	int rc;

	memset(g, 0, sizeof(*g));
	if (cfg == NULL || port == NULL || clock == NULL ||
	    port->crypto.hmac == NULL ||
	    port->store.load == NULL || port->store.save == NULL ||
	    cfg->period == 0 || cfg->digits < SHIM_OTP_MIN_DIGITS ||
	    cfg->digits > SHIM_OTP_MAX_DIGITS || cfg->window > 10 ||
	    cfg->rate_failures > SHIM_GATE_RATE_SLOTS ||
	    (techs == NULL && ntechs != 0) || scratch == NULL ||
	    scratch_cap < shim_gate_scratch_size(ntechs)) {
		return SHIM_EINVAL;
	}
	g->cfg = *cfg;
	g->techs = techs;
	g->ntechs = ntechs;
	g->port = port;
	g->clock = clock;
	g->scratch = scratch;
	g->scratch_cap = scratch_cap;
	clear_state(g);

	rc = port->store.load(port->store.ctx, SHIM_GATE_STATE_NAME, scratch,
			      scratch_cap, &len);
	if (rc == SHIM_ENOENT && cfg->state_required) {
		/* The unit has run before, so its marks existed: a missing
		 * state would hand every used code a second life. */
		return SHIM_ENOENT;
	}
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
	int64_t floor = g->clock != NULL ? shim_clock_floor(g->clock) : 0;
	uint64_t step;
	size_t i;
	int rc;

	if (g->port == NULL) {
		return SHIM_EINVAL;
	}
	/* A clock set back must not lower the marks below codes already
	 * issued: start from the later of now and the trusted floor. */
	if (floor > now) {
		now = floor;
	}
	step = shim_totp_step(now, g->cfg.period) + g->cfg.window;
	clear_state(g);
	/* Nothing issued up to the end of the current window is accepted:
	 * the old marks are lost, so assume every code so far was used. */
	for (i = 0; i < g->ntechs; i++) {
		g->techs[i].last_step = step;
	}
	rc = state_save(g);
	g->state_ok = rc == 0;
	return rc;
}

int shim_gate_set_techs(struct shim_gate *g, struct shim_technician *techs,
			size_t ntechs, uint8_t *scratch, size_t scratch_cap)
{
	struct shim_technician *old = g->techs;
	size_t old_n = g->ntechs, i, j;
	int rc;

	if (g->port == NULL || (techs == NULL && ntechs != 0) ||
	    scratch == NULL || scratch_cap < shim_gate_scratch_size(ntechs)) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < ntechs; i++) {
		struct shim_technician *t = &techs[i];
		int o = -1;

		t->last_step = 0;
		t->drift = 0;
		t->last_ok = 0;
		memset(&t->fails, 0, sizeof(t->fails));
		for (j = 0; j < old_n && o < 0; j++) {
			if (strcmp(old[j].id, t->id) == 0) {
				o = (int)j;
			}
		}
		if (o >= 0) {
			t->last_step = old[o].last_step;
			t->drift = old[o].drift;
			t->last_ok = old[o].last_ok;
			t->fails = old[o].fails;
			continue;
		}
		for (j = 0; j < SHIM_GATE_LOCK_SLOTS; j++) {
			if (g->locks[j].id[0] != '\0' &&
			    strcmp(g->locks[j].id, t->id) == 0) {
				t->fails = g->locks[j].f;
				memset(&g->locks[j], 0, sizeof(g->locks[j]));
			}
		}
	}
	/* Removed technicians keep their lockout, in a free slot. */
	for (j = 0; j < old_n; j++) {
		int kept = 0;

		for (i = 0; i < ntechs && !kept; i++) {
			kept = strcmp(old[j].id, techs[i].id) == 0;
		}
		if (kept || !fails_held(&old[j].fails)) {
			continue;
		}
		for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
			if (g->locks[i].id[0] == '\0') {
				memcpy(g->locks[i].id, old[j].id,
				       sizeof(g->locks[i].id));
				g->locks[i].f = old[j].fails;
				break;
			}
		}
	}
	g->techs = techs;
	g->ntechs = ntechs;
	g->scratch = scratch;
	g->scratch_cap = scratch_cap;
	rc = g->state_ok ? state_save(g) : 0;
	if (rc != 0) {
		/* The new marks and lockouts are not durable: fail closed,
		 * as for any state that cannot be saved. */
		g->state_ok = 0;
	}
	return rc;
}

/* ---- clock, lockout, rate limit --------------------------------------- */

int shim_gate_clock_check(const struct shim_gate *g, int64_t now)
{
	enum shim_clock_verdict v;

	if (g->clock == NULL) {
		return SHIM_ECLOCK;
	}
	v = shim_clock_peek(g->clock, now);
	return v == SHIM_CLOCK_TRUSTED || v == SHIM_CLOCK_UNCONFIRMED ?
		       0 : SHIM_ECLOCK;
}

int shim_gate_note_time(struct shim_gate *g, int64_t now)
{
	if (g->clock == NULL) {
		return SHIM_ESTATE;
	}
	return shim_clock_save_at(g->clock, now);
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

/* The failure counters of a claimed ID: its technician's for an enrolled
 * ID, else its slot (NULL when it has none). */
static struct shim_gate_fails *fails_find(const struct shim_gate *g,
					  const char *id, size_t len)
{
	struct shim_gate_lock *l;
	int t = shim_gate_find(g, id, len);

	if (t >= 0) {
		return &g->techs[t].fails;
	}
	l = lock_find(g, id, len);
	return l != NULL ? &l->f : NULL;
}

/* A slot for a new unknown ID: a free one, else the stalest one that is
 * not locked at passed. NULL when every slot holds a live lockout: the
 * caller then refuses, rather than evict a lockout an attacker wants
 * gone. */
static struct shim_gate_lock *lock_alloc(struct shim_gate *g, int64_t passed)
{
	struct shim_gate_lock *best = NULL;
	size_t i;

	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		struct shim_gate_lock *l = &g->locks[i];

		if (l->id[0] == '\0') {
			return l;
		}
		if (l->f.locked_until > passed) {
			continue;
		}
		if (best == NULL || l->f.first_failure < best->f.first_failure) {
			best = l;
		}
	}
	return best;
}

uint32_t shim_gate_lockout_left(const struct shim_gate *g, const char *id,
				int64_t now)
{
	const struct shim_gate_fails *f;

	f = fails_find(g, id, bounded_len(id, SHIM_TECH_ID_MAX + 1));
	if (f == NULL || f->locked_until <= now) {
		return 0;
	}
	return (uint32_t)(f->locked_until - now);
}

size_t shim_gate_lockouts(const struct shim_gate *g, int64_t now)
{
	size_t i, n = 0;

	for (i = 0; i < g->ntechs; i++) {
		if (g->techs[i].fails.locked_until > now) {
			n++;
		}
	}
	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		if (g->locks[i].id[0] != '\0' && g->locks[i].f.locked_until > now) {
			n++;
		}
	}
	return n;
}

int shim_gate_lockout_next(const struct shim_gate *g, int64_t now,
			   size_t *cursor, const char **id, uint32_t *left,
			   int *enrolled)
{
	size_t i;

	for (i = *cursor; i < g->ntechs + SHIM_GATE_LOCK_SLOTS; i++) {
		const struct shim_gate_fails *f;
		const char *who;

		if (i < g->ntechs) {
			f = &g->techs[i].fails;
			who = g->techs[i].id;
		} else {
			f = &g->locks[i - g->ntechs].f;
			who = g->locks[i - g->ntechs].id;
			if (who[0] == '\0') {
				continue;
			}
		}
		if (f->locked_until > now) {
			*cursor = i + 1;
			*id = who;
			*left = (uint32_t)(f->locked_until - now);
			*enrolled = i < g->ntechs;
			return 1;
		}
	}
	*cursor = i;
	return 0;
}

int shim_gate_reset_lockout(struct shim_gate *g, const char *id, int64_t now)
{
	size_t len = bounded_len(id, SHIM_TECH_ID_MAX + 1);
	struct shim_gate_lock *l;
	int t;

	(void)now;
	t = shim_gate_find(g, id, len);
	if (t >= 0) {
		if (!fails_held(&g->techs[t].fails)) {
			return SHIM_ENOENT;
		}
		memset(&g->techs[t].fails, 0, sizeof(g->techs[t].fails));
		return state_save(g);
	}
	l = lock_find(g, id, len);
	if (l == NULL) {
		return SHIM_ENOENT;
	}
	memset(l, 0, sizeof(*l));
	return state_save(g);
}

int shim_gate_reset_rate(struct shim_gate *g)
{
	if (!g->state_ok) {
		return SHIM_ESTATE;
	}
	memset(g->rate, 0, sizeof(g->rate));
	g->rate_head = 0;
	return state_save(g);
}

/* Failures in the window that ends at passed. Failures stamped after
 * passed (a clock not yet confirmed, or corrected back a little) still
 * count: they cannot have expired. Failures more than a window ahead of
 * now were stamped by a clock that has since been found wrong and set
 * back; counting them would close the shim until that time came. */
static uint32_t rate_count(const struct shim_gate *g, int64_t now,
			   int64_t passed, int64_t *oldest)
{
	uint32_t i, n = 0;
	int64_t from = passed - (int64_t)g->cfg.rate_seconds;
	int64_t to = now + (int64_t)g->cfg.rate_seconds;

	*oldest = INT64_MAX;
	for (i = 0; i < SHIM_GATE_RATE_SLOTS; i++) {
		int64_t t = g->rate[i];

		if (t != 0 && t > from && t <= to) {
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

/* Counts a failure against the claimed ID and the shim, and persists
 * both. */
static void note_failure(struct shim_gate *g, const char *id, size_t len,
			 int64_t now, struct shim_auth_result *res)
{
	int64_t passed = passed_time(g, now);
	struct shim_gate_fails *f = fails_find(g, id, len);

	rate_note(g, now);
	if (f == NULL) {
		struct shim_gate_lock *l = lock_alloc(g, passed);

		if (l == NULL) {
			(void)state_save(g);
			return;
		}
		memset(l, 0, sizeof(*l));
		memcpy(l->id, id, len);
		f = &l->f;
	}
	if (f->failures == 0 ||
	    passed - f->first_failure >= (int64_t)g->cfg.lockout_seconds) {
		f->failures = 0;
		f->first_failure = now;
	}
	f->failures++;
	res->failures = f->failures;
	if (f->failures >= g->cfg.max_failures && f->locked_until <= passed) {
		f->locked_until = now + (int64_t)g->cfg.lockout_seconds;
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
	int64_t oldest, passed;
	enum shim_clock_verdict verdict;
	struct shim_gate_fails *f;

	memset(res, 0, sizeof(*res));
	res->outcome = SHIM_AUTH_ERROR;
	res->tech = -1;

	if (!ids_ok(id, id_len)) {
		res->outcome = SHIM_AUTH_MALFORMED;
		return 0;
	}
	if (!g->state_ok) {
		res->outcome = SHIM_AUTH_STATE;
		return 0;
	}
	verdict = shim_clock_check_at(g->clock, now, &res->clock);
	if (verdict != SHIM_CLOCK_TRUSTED && verdict != SHIM_CLOCK_UNCONFIRMED) {
		res->outcome = SHIM_AUTH_CLOCK;
		return 0;
	}
	passed = passed_time(g, now);
	if (rate_count(g, now, passed, &oldest) >= g->cfg.rate_failures) {
		int64_t left = oldest + (int64_t)g->cfg.rate_seconds - passed;

		res->outcome = SHIM_AUTH_RATE_LIMITED;
		res->retry_after = left > 0 ? (uint32_t)left : 1;
		return 0;
	}
	t = shim_gate_find(g, id, id_len);
	f = fails_find(g, id, id_len);
	if (f != NULL && f->locked_until > passed) {
		res->outcome = SHIM_AUTH_LOCKED_OUT;
		res->retry_after = (uint32_t)(f->locked_until - passed);
		res->failures = f->failures;
		return 0;
	}
	if (t < 0 && f == NULL && lock_alloc(g, passed) == NULL) {
		/* Every slot holds a live lockout: an ID spray is under way.
		 * Enrolled IDs keep their own counters and still get in. */
		res->outcome = SHIM_AUTH_RATE_LIMITED;
		res->retry_after = g->cfg.lockout_seconds;
		return 0;
	}

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
			/* outcome stays SHIM_AUTH_ERROR: refused */
			want = 0;
			got = 0;
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
	if (match_step <= g->techs[t].last_step ||
	    match_step <= g->techs[t].min_step) {
		res->outcome = SHIM_AUTH_REPLAY;
		note_failure(g, id, id_len, now, res);
		return 0;
	}

	/* Success, provided the mark is durable first. */
	{
		struct shim_technician saved = g->techs[t];

		memset(&g->techs[t].fails, 0, sizeof(g->techs[t].fails));
		g->techs[t].last_step = match_step;
		g->techs[t].drift = (int8_t)match_off;
		g->techs[t].last_ok = now;
		rc = state_save(g);
		if (rc != 0) {
			g->techs[t].last_step = saved.last_step;
			g->techs[t].drift = saved.drift;
			g->techs[t].last_ok = saved.last_ok;
			g->techs[t].fails = saved.fails;
			shim_memzero(&saved, sizeof(saved));
			res->outcome = SHIM_AUTH_STATE;
			return 0;
		}
		shim_memzero(&saved, sizeof(saved));
	}
	if (verdict == SHIM_CLOCK_TRUSTED) {
		/* A success is a moment the time is known: the floor should
		 * rise, so that a clock set back before the next start is
		 * caught. Best effort (the heartbeat raises it too), so the
		 * caller does it with shim_gate_note_time() once the
		 * technician has the answer. */
		res->floor_due = 1;
	} else if (verdict == SHIM_CLOCK_UNCONFIRMED) {
		/* A code that matches within the window is independent
		 * evidence of the time. The floor is re-anchored on it; a
		 * failure to persist leaves the clock trusted in memory and
		 * the next start unconfirmed again, which is safe. */
		(void)shim_clock_confirm_at(g->clock, now, "totp");
		res->clock_confirmed = 1;
	}
	res->outcome = SHIM_AUTH_OK;
	res->tech = t;
	res->drift = match_off;
	res->step = match_step;
	return 0;
}

/* ---- other factors (break-glass) -------------------------------------- */

int shim_gate_precheck(struct shim_gate *g, const char *id, size_t id_len,
		       int64_t now, struct shim_auth_result *res)
{
	struct shim_gate_fails *f;
	int64_t oldest, passed;

	memset(res, 0, sizeof(*res));
	res->outcome = SHIM_AUTH_ERROR;
	res->tech = -1;
	if (g->port == NULL) {
		return SHIM_EINVAL;
	}
	if (!ids_ok(id, id_len)) {
		res->outcome = SHIM_AUTH_MALFORMED;
		return 0;
	}
	if (!g->state_ok) {
		res->outcome = SHIM_AUTH_STATE;
		return 0;
	}
	passed = passed_time(g, now);
	if (rate_count(g, now, passed, &oldest) >= g->cfg.rate_failures) {
		int64_t left = oldest + (int64_t)g->cfg.rate_seconds - passed;

		res->outcome = SHIM_AUTH_RATE_LIMITED;
		res->retry_after = left > 0 ? (uint32_t)left : 1;
		return 0;
	}
	f = fails_find(g, id, id_len);
	if (f != NULL && f->locked_until > passed) {
		res->outcome = SHIM_AUTH_LOCKED_OUT;
		res->retry_after = (uint32_t)(f->locked_until - passed);
		res->failures = f->failures;
		return 0;
	}
	if (shim_gate_find(g, id, id_len) < 0 && f == NULL &&
	    lock_alloc(g, passed) == NULL) {
		res->outcome = SHIM_AUTH_RATE_LIMITED;
		res->retry_after = g->cfg.lockout_seconds;
		return 0;
	}
	res->outcome = SHIM_AUTH_OK;
	res->tech = shim_gate_find(g, id, id_len);
	return 0;
}

int shim_gate_fail(struct shim_gate *g, const char *id, size_t id_len,
		   int64_t now, struct shim_auth_result *res)
{
	memset(res, 0, sizeof(*res)); /* SHIM_AUTH_ERROR until said otherwise */
	if (g->port == NULL || !g->state_ok) {
		return SHIM_ESTATE;
	}
	if (ids_ok(id, id_len)) {
		note_failure(g, id, id_len, now, res);
	} else {
		rate_note(g, now);
		(void)state_save(g);
	}
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
			(void)state_save(g);
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
