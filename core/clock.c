/*
 * Clock trust.
 *
 * Two times are kept, and they are different on purpose:
 *  - the anchor (anchor_wall_ns at anchor_mono_ns) is where the wall clock
 *    was last trusted while running; it follows small corrections (NTP),
 *    and a wall clock further than max_jump from anchor + monotonic time
 *    since is a jump;
 *  - the floor (floor_ns) is the persisted lower bound of trusted time; it
 *    only moves forwards, except when an operator confirms the clock.
 * At start there is no anchor: the wall clock is judged against the floor
 * until it is trusted, and then anchored.
 *
 * Persisted floor (blob SHIM_CLOCK_STATE_NAME), big-endian:
 *   "SHCK" u8 version(1) u8[3] 0  i64 floor_ns  u32 crc32 of the 16 before
 */
#include <string.h>

#include "clock.h"
#include "util.h"

#define BLOB_MAGIC "SHCK"
#define BLOB_VERSION 1
#define NS 1000000000LL
/* Wall readings are clamped so that seconds to nanoseconds never
 * overflows: +/- 9e9 s is beyond year 2255 either way. */
#define WALL_S_MAX 9000000000LL

void shim_clock_cfg_default(struct shim_clock_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_jump = SHIM_CLOCK_MAX_JUMP;
#ifdef SHIM_BUILD_EPOCH
	cfg->min_time = SHIM_BUILD_EPOCH;
#endif
}

const char *shim_clock_verdict_name(enum shim_clock_verdict v)
{
	switch (v) {
	case SHIM_CLOCK_TRUSTED:
		return "trusted";
	case SHIM_CLOCK_UNCONFIRMED:
		return "unconfirmed";
	case SHIM_CLOCK_UNTRUSTED:
		return "untrusted";
	case SHIM_CLOCK_UNKNOWN:
	default:
		return "unknown";
	}
}

const char *shim_clock_reason_name(enum shim_clock_reason r)
{
	switch (r) {
	case SHIM_CLOCK_WHY_OK:
		return "ok";
	case SHIM_CLOCK_WHY_BEFORE_BUILD:
		return "before_build";
	case SHIM_CLOCK_WHY_SET_BACK:
		return "set_back";
	case SHIM_CLOCK_WHY_AHEAD:
		return "ahead";
	case SHIM_CLOCK_WHY_JUMP:
		return "jump";
	case SHIM_CLOCK_WHY_MISSING:
		return "missing";
	case SHIM_CLOCK_WHY_CORRUPT:
		return "corrupt";
	case SHIM_CLOCK_WHY_UNREADABLE:
		return "unreadable";
	case SHIM_CLOCK_WHY_UNSET:
	default:
		return "unset";
	}
}

/* ---- the persisted floor ------------------------------------------------ */

void shim_clock_encode(int64_t floor_ns, uint8_t out[SHIM_CLOCK_BLOB_LEN])
{
	memcpy(out, BLOB_MAGIC, 4);
	out[4] = BLOB_VERSION;
	out[5] = out[6] = out[7] = 0;
	shim_put_u64(out + 8, (uint64_t)floor_ns);
	shim_put_u32(out + 16, shim_crc32(0, out, 16));
}

int shim_clock_decode(const uint8_t *buf, size_t len, int64_t *floor_ns)
{
	int64_t v;

	*floor_ns = 0;
	if (buf == NULL || len != SHIM_CLOCK_BLOB_LEN ||
	    memcmp(buf, BLOB_MAGIC, 4) != 0 || buf[4] != BLOB_VERSION ||
	    buf[5] != 0 || buf[6] != 0 || buf[7] != 0) {
		return SHIM_ECORRUPT;
	}
	if (shim_get_u32(buf + 16) != shim_crc32(0, buf, 16)) {
		return SHIM_ECORRUPT;
	}
	v = (int64_t)shim_get_u64(buf + 8);
	/* A floor is a trusted time: never at or before the epoch, never
	 * beyond what the comparisons below can hold. */
	if (v <= 0 || v > WALL_S_MAX * NS) {
		return SHIM_ECORRUPT;
	}
	*floor_ns = v;
	return 0;
}

static int floor_persist(struct shim_clock *c)
{
	uint8_t blob[SHIM_CLOCK_BLOB_LEN];

	shim_clock_encode(c->floor_ns, blob);
	return c->port->store.save(c->port->store.ctx, SHIM_CLOCK_STATE_NAME,
				   blob, sizeof(blob));
}

/* ---- judging a reading ---------------------------------------------------- */

static int64_t clamp_wall(int64_t wall_s)
{
	if (wall_s > WALL_S_MAX) {
		return WALL_S_MAX;
	}
	if (wall_s < -WALL_S_MAX) {
		return -WALL_S_MAX;
	}
	return wall_s;
}

static int64_t mono_now(const struct shim_clock *c)
{
	return c->port->clock.mono_ns(c->port->clock.ctx);
}

/* Nanoseconds between a and b, saturated instead of overflowing. */
static int64_t sat_sub(int64_t a, int64_t b)
{
	if (b < 0 && a > INT64_MAX + b) {
		return INT64_MAX;
	}
	if (b > 0 && a < INT64_MIN + b) {
		return INT64_MIN;
	}
	return a - b;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b) {
		return INT64_MAX;
	}
	if (b < 0 && a < INT64_MIN - b) {
		return INT64_MIN;
	}
	return a + b;
}

static void anchor(struct shim_clock *c, int64_t wall_ns, int64_t mono)
{
	c->anchored = 1;
	c->anchor_wall_ns = wall_ns;
	c->anchor_mono_ns = mono;
	c->in_jump = 0;
}

/*
 * The one judgement. With commit, state changes are applied (a jump is
 * reported once, a clock found good is anchored, a first floor is
 * saved); without, c is only read.
 */
static enum shim_clock_verdict judge(struct shim_clock *c, int64_t wall_s,
				     struct shim_clock_report *rep, int commit)
{
	struct shim_clock_report tmp;
	int64_t wall_ns, mono, expected, diff, bound;

	if (rep == NULL) {
		rep = &tmp;
	}
	memset(rep, 0, sizeof(*rep));
	rep->verdict = SHIM_CLOCK_UNKNOWN;
	rep->reason = SHIM_CLOCK_WHY_UNSET;
	wall_s = clamp_wall(wall_s);
	rep->wall = wall_s;
	if (c == NULL || !c->ready) {
		return SHIM_CLOCK_UNKNOWN;
	}
	wall_ns = wall_s * NS;
	mono = mono_now(c);
	bound = (int64_t)c->cfg.max_jump * NS;

	if (c->anchored) {
		expected = sat_add(c->anchor_wall_ns,
				   sat_sub(mono, c->anchor_mono_ns));
		rep->expected = expected / NS;
		diff = sat_sub(wall_ns, expected);
		if (diff > bound || diff < -bound) {
			if (!c->in_jump) {
				rep->jumped = 1;
				if (commit) {
					c->in_jump = 1;
				}
			}
			rep->verdict = SHIM_CLOCK_UNTRUSTED;
			rep->reason = SHIM_CLOCK_WHY_JUMP;
			return rep->verdict;
		}
		if (c->in_jump) {
			rep->recovered = 1;
			if (commit) {
				c->in_jump = 0;
			}
		}
		if (wall_s < c->cfg.min_time) {
			rep->verdict = SHIM_CLOCK_UNTRUSTED;
			rep->reason = SHIM_CLOCK_WHY_BEFORE_BUILD;
			return rep->verdict;
		}
		rep->verdict = SHIM_CLOCK_TRUSTED;
		rep->reason = SHIM_CLOCK_WHY_OK;
		return rep->verdict;
	}

	if (c->need_confirm) {
		rep->verdict = SHIM_CLOCK_UNTRUSTED;
		rep->reason = c->held;
		rep->expected = c->floor_ns / NS;
		return rep->verdict;
	}
	if (wall_s < c->cfg.min_time) {
		rep->verdict = SHIM_CLOCK_UNTRUSTED;
		rep->reason = SHIM_CLOCK_WHY_BEFORE_BUILD;
		rep->expected = c->floor_ns / NS;
		return rep->verdict;
	}
	if (!c->have_floor) {
		/* A first start, whose clock is now past the build date. */
		if (!c->may_start) {
			rep->verdict = SHIM_CLOCK_UNTRUSTED;
			rep->reason = SHIM_CLOCK_WHY_MISSING;
			return rep->verdict;
		}
		if (commit) {
			anchor(c, wall_ns, mono);
			c->have_floor = 1;
			c->may_start = 0;
			c->floor_ns = wall_ns;
			/* Best effort: the periodic save retries. */
			(void)floor_persist(c);
		}
		rep->expected = wall_s;
		rep->verdict = SHIM_CLOCK_TRUSTED;
		rep->reason = SHIM_CLOCK_WHY_OK;
		return rep->verdict;
	}
	rep->expected = c->floor_ns / NS;
	diff = sat_sub(wall_ns, c->floor_ns);
	if (diff < -bound) {
		rep->verdict = SHIM_CLOCK_UNTRUSTED;
		rep->reason = SHIM_CLOCK_WHY_SET_BACK;
		return rep->verdict;
	}
	if (diff > bound) {
		/* Powered off for a while, or moved forwards: the shim cannot
		 * tell which until something confirms the time. */
		rep->verdict = SHIM_CLOCK_UNCONFIRMED;
		rep->reason = SHIM_CLOCK_WHY_AHEAD;
		return rep->verdict;
	}
	if (commit) {
		anchor(c, wall_ns, mono);
	}
	rep->verdict = SHIM_CLOCK_TRUSTED;
	rep->reason = SHIM_CLOCK_WHY_OK;
	return rep->verdict;
}

static int64_t port_wall_s(const struct shim_clock *c)
{
	int64_t ns = c->port->clock.wall_ns(c->port->clock.ctx);

	/* Floor division, so a reading just before the epoch stays before. */
	return ns >= 0 ? ns / NS : -((-(ns + 1)) / NS) - 1;
}

/* ---- public ----------------------------------------------------------------- */

int shim_clock_init(struct shim_clock *c, const struct shim_clock_cfg *cfg,
		    const struct shim_port *port)
{
	uint8_t blob[SHIM_CLOCK_BLOB_LEN + 1];
	size_t len = 0;
	int rc;

	if (c == NULL) {
		return SHIM_EINVAL;
	}
	memset(c, 0, sizeof(*c));
	if (cfg == NULL || port == NULL || port->clock.wall_ns == NULL ||
	    port->clock.mono_ns == NULL || port->store.load == NULL ||
	    port->store.save == NULL || cfg->max_jump == 0) {
		return SHIM_EINVAL;
	}
	c->cfg = *cfg;
	c->port = port;
	c->ready = 1;

	rc = port->store.load(port->store.ctx, SHIM_CLOCK_STATE_NAME, blob,
			      sizeof(blob), &len);
	if (rc == SHIM_ENOENT) {
		if (cfg->state_required) {
			/* Deleted while stopped: a fresh floor would accept a
			 * clock set back to any time after the build date. */
			c->need_confirm = 1;
			c->held = SHIM_CLOCK_WHY_MISSING;
			return SHIM_ENOENT;
		}
		c->may_start = 1;
		if (judge(c, port_wall_s(c), NULL, 0) != SHIM_CLOCK_TRUSTED) {
			/* Not past the build date yet: the first check that
			 * is makes the first floor. */
			return 0;
		}
		c->may_start = 0;
		c->have_floor = 1;
		c->floor_ns = port_wall_s(c) * NS;
		anchor(c, c->floor_ns, mono_now(c));
		return floor_persist(c);
	}
	if (rc == 0) {
		rc = shim_clock_decode(blob, len, &c->floor_ns);
	} else if (rc == SHIM_ENOSPC) {
		rc = SHIM_ECORRUPT;
	}
	if (rc != 0) {
		c->floor_ns = 0;
		c->need_confirm = 1;
		c->held = rc == SHIM_ECORRUPT ? SHIM_CLOCK_WHY_CORRUPT :
						SHIM_CLOCK_WHY_UNREADABLE;
		return rc;
	}
	c->have_floor = 1;
	/* Anchor now if the clock agrees with the floor, so that a jump right
	 * after start is measured from here. */
	(void)judge(c, port_wall_s(c), NULL, 1);
	return 0;
}

enum shim_clock_verdict shim_clock_check_at(struct shim_clock *c,
					    int64_t wall_s,
					    struct shim_clock_report *rep)
{
	return judge(c, wall_s, rep, 1);
}

enum shim_clock_verdict shim_clock_check(struct shim_clock *c,
					 struct shim_clock_report *rep)
{
	if (c == NULL || !c->ready) {
		return judge(c, 0, rep, 1);
	}
	return judge(c, port_wall_s(c), rep, 1);
}

enum shim_clock_verdict shim_clock_peek(const struct shim_clock *c,
					int64_t wall_s)
{
	/* judge() without commit only reads. */
	return judge((struct shim_clock *)c, wall_s, NULL, 0);
}

int shim_clock_trusted_now(struct shim_clock *c, int64_t *now)
{
	int64_t wall;

	*now = 0;
	if (c == NULL || !c->ready) {
		return SHIM_ECLOCK;
	}
	/* Judged without committing: a jump seen here first must still be
	 * reported by the next shim_clock_check() of whoever reports. */
	wall = clamp_wall(port_wall_s(c));
	if (shim_clock_peek(c, wall) != SHIM_CLOCK_TRUSTED) {
		return SHIM_ECLOCK;
	}
	*now = wall;
	return 0;
}

int shim_clock_save_at(struct shim_clock *c, int64_t wall_s)
{
	int64_t wall_ns, mono, expected, diff, slew;

	if (judge(c, wall_s, NULL, 1) != SHIM_CLOCK_TRUSTED) {
		return SHIM_ECLOCK;
	}
	wall_ns = clamp_wall(wall_s) * NS;
	mono = mono_now(c);
	/* The anchor follows the wall clock only at a bounded rate (1 s plus
	 * 1000 ppm of the time since it was set), enough for an oscillator's
	 * drift, so that a clock moved in steps just under max_jump, one per
	 * save, is still caught as a jump. */
	expected = sat_add(c->anchor_wall_ns, sat_sub(mono, c->anchor_mono_ns));
	slew = NS + sat_sub(mono, c->anchor_mono_ns) / 1000;
	if (slew < NS) {
		slew = NS;
	}
	diff = sat_sub(wall_ns, expected);
	if (diff > slew) {
		diff = slew;
	} else if (diff < -slew) {
		diff = -slew;
	}
	anchor(c, sat_add(expected, diff), mono);
	/* The floor only rises. */
	if (c->anchor_wall_ns > c->floor_ns) {
		c->floor_ns = c->anchor_wall_ns;
	}
	c->have_floor = 1;
	return floor_persist(c);
}

int shim_clock_save(struct shim_clock *c)
{
	if (c == NULL || !c->ready) {
		return SHIM_ECLOCK;
	}
	return shim_clock_save_at(c, port_wall_s(c));
}

int shim_clock_confirm_at(struct shim_clock *c, int64_t wall_s,
			  const char *source)
{
	size_t n = 0;

	if (c == NULL || !c->ready || source == NULL) {
		return SHIM_EINVAL;
	}
	wall_s = clamp_wall(wall_s);
	if (wall_s < c->cfg.min_time) {
		return SHIM_ECLOCK;
	}
	anchor(c, wall_s * NS, mono_now(c));
	c->floor_ns = wall_s * NS;
	c->have_floor = 1;
	c->may_start = 0;
	c->need_confirm = 0;
	c->held = SHIM_CLOCK_WHY_UNSET;
	while (n < SHIM_CLOCK_SOURCE_MAX && source[n] != '\0') {
		c->source[n] = source[n];
		n++;
	}
	c->source[n] = '\0';
	return floor_persist(c);
}

int shim_clock_confirm(struct shim_clock *c, const char *source)
{
	if (c == NULL || !c->ready) {
		return SHIM_EINVAL;
	}
	return shim_clock_confirm_at(c, port_wall_s(c), source);
}

int shim_clock_adopt_floor(struct shim_clock *c, int64_t floor_s)
{
	if (c == NULL || !c->ready || !c->need_confirm ||
	    c->held != SHIM_CLOCK_WHY_MISSING || floor_s < c->cfg.min_time ||
	    floor_s > WALL_S_MAX) {
		return SHIM_ESTATE;
	}
	c->need_confirm = 0;
	c->held = SHIM_CLOCK_WHY_UNSET;
	c->have_floor = 1;
	c->floor_ns = floor_s * NS;
	(void)judge(c, port_wall_s(c), NULL, 1);
	return floor_persist(c);
}

int64_t shim_clock_floor(const struct shim_clock *c)
{
	if (c == NULL || !c->ready || !c->have_floor) {
		return 0;
	}
	return c->floor_ns / NS;
}

const char *shim_clock_source(const struct shim_clock *c)
{
	return c != NULL && c->ready ? c->source : "";
}
