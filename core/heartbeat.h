/*
 * Heartbeats: the signed proof of life the shim sends every
 * tamper.heartbeat_period, and the final signed "shutting_down" event of a
 * graceful stop (expected absence).
 *
 * Field order (the signature covers it, see event.h):
 *   time, period, boot_count, uptime, state, tamper, session_active,
 *   spool_depth, version, binary_digest, config_digest, chain_head
 * and for shutting_down the same, preceded by reason. Both events have
 * sign = 1: the event log stamps shim_id and seq, then signs with the
 * identity key.
 */
#ifndef SHIM_CORE_HEARTBEAT_H
#define SHIM_CORE_HEARTBEAT_H

#include <stdint.h>

#include "event.h"

struct shim_heartbeat_info {
	uint64_t boot_count;
	int64_t uptime_s;
	const char *state;          /* IDLE, CHALLENGE, OPEN, LOCKED, EMERGENCY_STOP */
	int tamper;                 /* 1 while the tamper latch is set */
	int session_active;
	uint64_t spool_depth;
	const char *version;
	const char *binary_digest;  /* hex SHA-256 of the running binary, or NULL */
	const char *config_digest;  /* hex SHA-256 of the configuration, or NULL */
	const char *chain_head;     /* hex head of the last recording's chain, or NULL */
	uint32_t period_s;          /* heartbeat period, for the monitor */
};

/* Values of the "tamper" field. */
#define SHIM_HB_TAMPER_CLEAR "clear"
#define SHIM_HB_TAMPER_LATCHED "latched"

/* Builds a heartbeat event. Missing digests are sent as "-". */
int shim_heartbeat_build(struct shim_event *ev,
			 const struct shim_heartbeat_info *hb, int64_t wall_ns);

/* Builds the shutting_down event; reason is "sigterm", "power_fail",
 * "admin", ... */
int shim_heartbeat_build_shutdown(struct shim_event *ev,
				  const struct shim_heartbeat_info *hb,
				  const char *reason, int64_t wall_ns);

/*
 * A period timer on the monotonic clock. The first heartbeat is due at
 * once (start), then every period; a late wake fires once and re-aligns
 * (no burst of heartbeats after a stall).
 */
struct shim_hb_timer {
	int64_t period_ns;
	int64_t next_ns;
};

#define SHIM_HB_PERIOD_MIN_NS 1000000000LL       /* 1 s */
#define SHIM_HB_PERIOD_MAX_NS 86400000000000LL    /* 1 day */

/* Starts the timer; the period is clamped to 1 s .. 1 day. */
void shim_hb_timer_start(struct shim_hb_timer *t, int64_t period_ns,
			 int64_t mono_now_ns);

/* The same with the period in seconds as a host's configuration gives it
 * (tamper.heartbeat_period). Inline, so that only a caller that uses it
 * does floating point: core itself, and an MCU build, never does. A NaN
 * or a period below 1 s gives 1 s. */
static inline void shim_hb_timer_init(struct shim_hb_timer *t,
				      double period_s, int64_t mono_now_ns)
{
	int64_t ns = SHIM_HB_PERIOD_MIN_NS;

	if (period_s > 86400.0) {
		ns = SHIM_HB_PERIOD_MAX_NS;
	} else if (period_s >= 1.0) {
		ns = (int64_t)(period_s * 1e9);
	}
	shim_hb_timer_start(t, ns, mono_now_ns);
}

/* Milliseconds until due (0 when due now), for a poll timeout. */
int shim_hb_timer_ms(const struct shim_hb_timer *t, int64_t mono_now_ns);

/* 1 when due (and schedules the next one), else 0. */
int shim_hb_timer_fire(struct shim_hb_timer *t, int64_t mono_now_ns);

#endif
