/*
 * The TOTP gate: decides whether "<technician_id> <totp_code>" opens a
 * session, and keeps the state that makes each code single-use (replay
 * marks) and locks out guessing (per claimed ID and shim-wide). Whether
 * the wall clock can be believed is decided by core/clock.h: the gate is
 * given a struct shim_clock at init and refuses codes while it is not
 * trusted.
 *
 * The caller owns all storage: the gate struct, the technician table and
 * the scratch buffer used to persist state. Nothing is allocated.
 */
#ifndef SHIM_CORE_GATE_H
#define SHIM_CORE_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "port.h"

#define SHIM_TECH_ID_MAX 128  /* bytes, without the NUL */
#define SHIM_SECRET_MAX 64    /* decoded secret bytes */
/*
 * Build-time sizes. Lock slots hold the lockouts of IDs that are not
 * enrolled (about 160 bytes each: the ID dominates); rate slots remember
 * the times of recent failures shim-wide and bound the rate limit
 * (rate_failures above it cannot be counted). struct shim_gate and the
 * scratch grow with both. The defaults are the Linux ones; an MCU build
 * may lower them.
 */
#ifndef SHIM_GATE_LOCK_SLOTS
#define SHIM_GATE_LOCK_SLOTS 256
#endif
#ifndef SHIM_GATE_RATE_SLOTS
#define SHIM_GATE_RATE_SLOTS 128
#endif
#define SHIM_GATE_STATE_NAME "gate-state"

/* Failures counted against one claimed ID. */
struct shim_gate_fails {
	uint32_t failures;
	int64_t first_failure;
	int64_t locked_until;
};

/* One enrolled technician. The secret is wiped by shim_gate_wipe(). */
struct shim_technician {
	char id[SHIM_TECH_ID_MAX + 1];
	uint8_t secret[SHIM_SECRET_MAX];
	uint8_t secret_len;
	/* Codes of time steps at or below min_step are refused as replays:
	 * the marks a restored enrolment carries from the unit it replaces
	 * (enrolstore.h). Set by the caller; 0 = none. */
	uint64_t min_step;
	/* private, kept by the gate */
	uint64_t last_step; /* highest accepted time step; 0 = none */
	int8_t drift;       /* offset in steps at the last success */
	int64_t last_ok;    /* Unix seconds of the last success */
	/* Enrolled IDs keep their lockout here, never in the shared slots,
	 * so that a spray of unknown IDs cannot lock them out. */
	struct shim_gate_fails fails;
};

struct shim_gate_cfg {
	enum shim_md md;
	uint32_t period;          /* seconds per step, >= 1 */
	uint8_t digits;           /* 6..8 */
	uint8_t window;           /* +/- steps accepted, 0..10 */
	uint32_t max_failures;    /* failures per ID before lockout */
	uint32_t lockout_seconds; /* failure window and lockout length */
	uint32_t rate_failures;   /* shim-wide failures per rate_seconds */
	uint32_t rate_seconds;
	int state_required;       /* the unit has started before: a missing
				   * state fails closed like a corrupt one */
};

/* The zero value is an error: a result nobody filled in, or one left by
 * an early return, never opens the gate. Only SHIM_AUTH_OK does. */
enum shim_auth_outcome {
	SHIM_AUTH_ERROR = 0,    /* not verified (crypto or internal failure) */
	SHIM_AUTH_OK,
	SHIM_AUTH_BAD_USER,     /* ID not enrolled */
	SHIM_AUTH_BAD_CODE,     /* wrong or malformed code */
	SHIM_AUTH_REPLAY,       /* code at or below the last accepted step */
	SHIM_AUTH_LOCKED_OUT,   /* this ID is locked out */
	SHIM_AUTH_RATE_LIMITED, /* too many failures shim-wide */
	SHIM_AUTH_CLOCK,        /* the clock is untrusted (or unknown) */
	SHIM_AUTH_STATE,        /* the replay mark could not be made durable */
	SHIM_AUTH_MALFORMED,    /* the line is not "<id> <code>" */
};

struct shim_auth_result {
	enum shim_auth_outcome outcome;
	int tech;               /* index of the technician on OK, else -1 */
	int drift;              /* steps between the clock and the code (OK) */
	uint64_t step;          /* accepted time step (OK) */
	uint32_t retry_after;   /* seconds, for LOCKED_OUT and RATE_LIMITED */
	int locked_now;         /* this failure started a lockout */
	uint32_t failures;      /* failures counted for this ID in the window */
	struct shim_clock_report clock; /* the clock check of this attempt:
					 * clock.jumped asks for clock_jump */
	int clock_confirmed;    /* OK on an UNCONFIRMED clock: the code
				 * confirmed it (source "totp") */
	int floor_due;          /* OK on a trusted clock: the clock floor
				 * should be raised, with shim_gate_note_time()
				 * (not done here, to keep its write off the
				 * path to the success line) */
};

/* A lockout slot for an ID that is not enrolled. */
struct shim_gate_lock {
	char id[SHIM_TECH_ID_MAX + 1]; /* empty = free slot */
	struct shim_gate_fails f;
};

struct shim_gate {
	/* public, read-only after init */
	struct shim_gate_cfg cfg;
	struct shim_technician *techs;
	size_t ntechs;
	/* private */
	const struct shim_port *port;
	struct shim_clock *clock;
	uint8_t *scratch;
	size_t scratch_cap;
	int state_ok;      /* 0 until the state loaded and is durable */
	struct shim_gate_lock locks[SHIM_GATE_LOCK_SLOTS];
	int64_t rate[SHIM_GATE_RATE_SLOTS]; /* times of recent failures */
	uint32_t rate_head;
};

/* Bytes of scratch needed to persist state for ntechs technicians. */
size_t shim_gate_scratch_size(size_t ntechs);

/* Fills cfg with the prototype's defaults (SHA1, 30 s, 6 digits, +/-1,
 * 5 failures per 300 s, 20 failures per 60 s shim-wide). */
void shim_gate_cfg_default(struct shim_gate_cfg *cfg);

/* Sets up the gate over a caller-owned technician table, clock (already
 * initialised with shim_clock_init(); it must outlive the gate) and
 * scratch buffer, then loads persisted state through port->store.
 * @retval 0            loaded, or a fresh start (missing state without
 *                      cfg->state_required; the empty state is saved)
 * @retval SHIM_ENOENT  missing state with cfg->state_required
 * @retval SHIM_ECORRUPT, SHIM_EIO  corrupt or unreadable state
 * @retval SHIM_EINVAL  bad arguments (clock NULL included)
 * After ENOENT, ECORRUPT or EIO the gate refuses every code with
 * SHIM_AUTH_STATE (fail closed) until an operator calls
 * shim_gate_reset_state(). */
int shim_gate_init(struct shim_gate *g, const struct shim_gate_cfg *cfg,
		   struct shim_technician *techs, size_t ntechs,
		   const struct shim_port *port, struct shim_clock *clock,
		   uint8_t *scratch, size_t scratch_cap);

/* Verifies a code for a claimed technician at Unix time now (a reading of
 * the port's wall clock). now is judged by the gate's clock first:
 * UNTRUSTED or UNKNOWN refuses with SHIM_AUTH_CLOCK; UNCONFIRMED lets the
 * code be checked, a success then confirms the clock (source "totp",
 * res->clock_confirmed), and lockouts and the rate limit do not expire
 * meanwhile. The outcome is precise; callers show the technician only a
 * uniform failure. A success is reported only after the replay mark is
 * durable. */
int shim_gate_verify(struct shim_gate *g, const char *id, size_t id_len,
		     const char *code, size_t code_len, int64_t now,
		     struct shim_auth_result *res);

/* Parses and verifies one technician line "<id> <code>" (spaces or tabs
 * between, surrounding blanks ignored). */
int shim_gate_verify_line(struct shim_gate *g, const char *line,
			  size_t len, int64_t now,
			  struct shim_auth_result *res);

/* For a factor other than TOTP (break-glass): the checks that come before
 * any code is looked at, without counting anything: a malformed ID, state
 * not loaded, the shim-wide rate limit, the ID's lockout. res->outcome is
 * SHIM_AUTH_OK when the factor may be checked (res->tech: the enrolled
 * technician's index or -1), else the refusal with retry_after. The clock
 * is the caller's to judge. */
int shim_gate_precheck(struct shim_gate *g, const char *id, size_t id_len,
		       int64_t now, struct shim_auth_result *res);

/* Counts a failure of such a factor against the claimed ID and the shim
 * (persisted like any failure); sets res->failures and res->locked_now /
 * retry_after when this failure starts a lockout. */
int shim_gate_fail(struct shim_gate *g, const char *id, size_t id_len,
		   int64_t now, struct shim_auth_result *res);

/* Clears the lockout of one claimed ID. SHIM_ENOENT when none is held. */
int shim_gate_reset_lockout(struct shim_gate *g, const char *id, int64_t now);

/* Clears the shim-wide failure window (the admin's reset of a LOCKED
 * shim): the failures it held no longer count. Saved durably. */
int shim_gate_reset_rate(struct shim_gate *g);

/* Seconds left on the lockout of id, or 0. */
uint32_t shim_gate_lockout_left(const struct shim_gate *g, const char *id,
				int64_t now);

/* Walks the IDs locked out at now: start with *cursor = 0; each call
 * that returns 1 gives one ID (valid until the gate changes), the seconds
 * left and whether it is an enrolled technician; 0 when there are no more.
 * Reads only. */
int shim_gate_lockout_next(const struct shim_gate *g, int64_t now,
			   size_t *cursor, const char **id, uint32_t *left,
			   int *enrolled);

/* Number of IDs locked out at now. */
size_t shim_gate_lockouts(const struct shim_gate *g, int64_t now);

/* The gate's view of a wall clock reading, without side effects: 0 when
 * its clock lets codes be checked (TRUSTED or UNCONFIRMED), SHIM_ECLOCK
 * otherwise. For the full verdict use shim_clock_peek(g->clock, now). */
int shim_gate_clock_check(const struct shim_gate *g, int64_t now);

/* Advances the clock's trusted floor to now (e.g. at each heartbeat):
 * shim_clock_save_at(g->clock, now). SHIM_ECLOCK when not trusted. */
int shim_gate_note_time(struct shim_gate *g, int64_t now);

/* Discards corrupt or missing state after an operator decision: replay
 * marks restart from the time step of max(now, clock floor) plus the
 * window, so no earlier code is accepted; lockouts and the rate limit are
 * cleared. */
int shim_gate_reset_state(struct shim_gate *g, int64_t now);

/* Puts a new technician table in place of the current one (technicians
 * enrolled or removed while the shim runs), with a scratch buffer of at
 * least shim_gate_scratch_size(ntechs) bytes. The state travels by ID:
 * marks and lockouts of technicians in both tables are kept; a removed
 * technician's lockout stays in a lock slot, and a newly enrolled ID
 * takes over the lockout its slot held. The state is saved durably
 * before it returns 0; when it cannot be, the gate refuses every code
 * (SHIM_AUTH_STATE, as after a lost state) until an operator resets the
 * state. The old table and scratch are the caller's again afterwards. */
int shim_gate_set_techs(struct shim_gate *g, struct shim_technician *techs,
			size_t ntechs, uint8_t *scratch, size_t scratch_cap);

/* Index of the technician with this ID, or -1. */
int shim_gate_find(const struct shim_gate *g, const char *id, size_t len);

/* Wipes secrets and state. */
void shim_gate_wipe(struct shim_gate *g);

/* "ok", "bad_user", ... : the reason string used in logs and events. */
const char *shim_auth_outcome_name(enum shim_auth_outcome o);

#endif
