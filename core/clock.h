/*
 * Clock trust: one mechanism, used by the gate, recording retention and
 * token expiry, that decides whether the wall clock can be believed.
 *
 * The clock keeps a trusted-time floor: the last wall time it trusted and
 * the monotonic time at that moment. While running, the wall clock is
 * expected at floor + (monotonic time since); a wall clock further than
 * max_jump from that is a jump. At start, the floor persisted through the
 * store port (blob SHIM_CLOCK_STATE_NAME) says whether the clock was set
 * back (untrusted) or moved forward (unconfirmed: a power-off and a jump
 * look the same).
 *
 * The caller owns the struct; nothing is allocated. A zeroed struct, or one
 * whose init failed its arguments, gives SHIM_CLOCK_UNKNOWN, which every
 * user treats as an error.
 */
#ifndef SHIM_CORE_CLOCK_H
#define SHIM_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define SHIM_CLOCK_STATE_NAME "clock"
#define SHIM_CLOCK_MAX_JUMP 120 /* seconds, default bound of a jump */
#define SHIM_CLOCK_BLOB_LEN 20  /* bytes of the persisted floor */
#define SHIM_CLOCK_SOURCE_MAX 15

enum shim_clock_verdict {
	SHIM_CLOCK_UNKNOWN = 0,  /* not initialised: an error */
	SHIM_CLOCK_TRUSTED,      /* usable for every decision */
	SHIM_CLOCK_UNCONFIRMED,  /* ahead of the floor at start: authentication
				  * may proceed, "time has passed" may not */
	SHIM_CLOCK_UNTRUSTED,    /* refuse anything that depends on time */
};

/* Why the verdict is what it is; for logs and events. */
enum shim_clock_reason {
	SHIM_CLOCK_WHY_UNSET = 0,     /* not initialised */
	SHIM_CLOCK_WHY_OK,            /* trusted */
	SHIM_CLOCK_WHY_BEFORE_BUILD,  /* earlier than the build date */
	SHIM_CLOCK_WHY_SET_BACK,      /* at start, behind the persisted floor */
	SHIM_CLOCK_WHY_AHEAD,         /* at start, ahead of the persisted floor */
	SHIM_CLOCK_WHY_JUMP,          /* while running, away from expected */
	SHIM_CLOCK_WHY_MISSING,       /* no floor on a unit that started before */
	SHIM_CLOCK_WHY_CORRUPT,       /* the persisted floor does not parse */
	SHIM_CLOCK_WHY_UNREADABLE,    /* the store could not be read */
};

struct shim_clock_cfg {
	int64_t min_time;     /* earliest plausible Unix time (build date) */
	uint32_t max_jump;    /* seconds; 0 is invalid */
	int state_required;   /* the unit has started before: a missing floor
			       * fails closed until shim_clock_confirm() */
};

/* What one check saw. jumped is set once, on the check that first sees a
 * jump, so the caller emits one clock_jump event with wall and expected. */
struct shim_clock_report {
	enum shim_clock_verdict verdict;
	enum shim_clock_reason reason;
	int jumped;        /* a jump seen for the first time */
	int recovered;     /* back within the bound after a jump */
	int64_t wall;      /* seconds: the wall clock checked */
	int64_t expected;  /* seconds: where it should be (0 when unknown) */
};

struct shim_clock {
	/* private */
	struct shim_clock_cfg cfg;
	const struct shim_port *port;
	int ready;                     /* init accepted its arguments */
	int need_confirm;              /* missing/corrupt/unreadable floor */
	enum shim_clock_reason held;   /* the reason need_confirm holds */
	int may_start;                 /* first start: no floor yet, none needed */
	int have_floor;
	int64_t floor_ns;              /* persisted floor, wall ns */
	int anchored;                  /* anchor_* valid */
	int64_t anchor_wall_ns;        /* trusted wall time ... */
	int64_t anchor_mono_ns;        /* ... at this monotonic time */
	int in_jump;                   /* a jump is being reported */
	char source[SHIM_CLOCK_SOURCE_MAX + 1]; /* last confirmation */
};

/* Fills cfg with defaults: the build date (SHIM_BUILD_EPOCH) and a bound
 * of SHIM_CLOCK_MAX_JUMP seconds; state_required off. */
void shim_clock_cfg_default(struct shim_clock_cfg *cfg);

/* Sets up the clock and loads the persisted floor through port->store.
 * port->clock.wall_ns, mono_ns and the store ops are mandatory.
 * @retval 0           loaded, or a first start (floor saved when the wall
 *                     clock is past the build date)
 * @retval SHIM_EINVAL bad arguments; the clock stays UNKNOWN
 * @retval SHIM_ENOENT no floor and cfg->state_required: UNTRUSTED until
 *                     shim_clock_confirm()
 * @retval SHIM_ECORRUPT / SHIM_EIO the floor does not parse or cannot be
 *                     read: UNTRUSTED until shim_clock_confirm()
 * Any other error is from saving the first floor; the clock is then
 * trusted in memory and the next shim_clock_save() retries. */
int shim_clock_init(struct shim_clock *c, const struct shim_clock_cfg *cfg,
		    const struct shim_port *port);

/* Checks the port's wall clock now. Fills rep (may be NULL). */
enum shim_clock_verdict shim_clock_check(struct shim_clock *c,
					 struct shim_clock_report *rep);

/* Checks a wall clock reading the caller took (Unix seconds) against the
 * port's monotonic clock. Use it when the decision is made with that
 * reading (the gate checks the same "now" it computes codes with). */
enum shim_clock_verdict shim_clock_check_at(struct shim_clock *c,
					    int64_t wall_s,
					    struct shim_clock_report *rep);

/* The verdict shim_clock_check_at() would give, without changing any
 * state or reporting a jump (for status displays). */
enum shim_clock_verdict shim_clock_peek(const struct shim_clock *c,
					int64_t wall_s);

/* The current wall time, for deletions and expiries: 0 and *now set when
 * TRUSTED, else SHIM_ECLOCK and *now = 0. Changes nothing: a jump it sees
 * is still reported, once, by the next shim_clock_check(). */
int shim_clock_trusted_now(struct shim_clock *c, int64_t *now);

/* Advances the floor to the current wall clock and persists it, when the
 * clock is TRUSTED (SHIM_ECLOCK otherwise). Call it periodically (each
 * heartbeat). The persisted floor never moves backwards. */
int shim_clock_save(struct shim_clock *c);
int shim_clock_save_at(struct shim_clock *c, int64_t wall_s);

/* An operator (or independent evidence, source "totp") confirms the wall
 * clock: the floor is re-anchored on it, even backwards, the clock becomes
 * TRUSTED and the floor is persisted. source is a short name kept for
 * status ("admin", "totp"). SHIM_ECLOCK before the build date. */
int shim_clock_confirm(struct shim_clock *c, const char *source);
int shim_clock_confirm_at(struct shim_clock *c, int64_t wall_s,
			  const char *source);

/* Upgrade path: a unit whose floor is missing (SHIM_CLOCK_WHY_MISSING)
 * but whose previous-version gate state kept the last trusted time takes
 * that time as its floor, and is then judged as at any start. SHIM_ESTATE
 * in any other case, so it cannot lower an existing floor. */
int shim_clock_adopt_floor(struct shim_clock *c, int64_t floor_s);

/* The persisted floor in Unix seconds, 0 when there is none. */
int64_t shim_clock_floor(const struct shim_clock *c);

/* The source of the last confirmation, "" when none. */
const char *shim_clock_source(const struct shim_clock *c);

/* "trusted", "unconfirmed", "untrusted", "unknown". */
const char *shim_clock_verdict_name(enum shim_clock_verdict v);

/* "ok", "before_build", "set_back", "ahead", "jump", "missing", ... */
const char *shim_clock_reason_name(enum shim_clock_reason r);

/* Parses a persisted floor blob: 0 and *floor_ns on success, else
 * SHIM_ECORRUPT (*floor_ns = 0). Exposed for the fuzz harness. */
int shim_clock_decode(const uint8_t *buf, size_t len, int64_t *floor_ns);

/* Encodes a floor into out[SHIM_CLOCK_BLOB_LEN]. */
void shim_clock_encode(int64_t floor_ns, uint8_t out[SHIM_CLOCK_BLOB_LEN]);

#endif
