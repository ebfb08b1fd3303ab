/*
 * Heartbeat and shutting_down events. See heartbeat.h.
 */
#include "heartbeat.h"

#include <stddef.h>

#include "err.h"

/* A signed heartbeat (12 fields, the daemon's latch, "sig") and a signed
 * shutting_down (one more, the reason) must fit in an event. */
_Static_assert(SHIM_EVENT_MAX_FIELDS >= 15,
	       "SHIM_EVENT_MAX_FIELDS too small for a signed shutting_down");

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

static int add_body(struct shim_event *ev, const struct shim_heartbeat_info *hb,
		    int64_t wall_ns)
{
	int rc;

	rc = shim_event_add_i64(ev, "time", wall_ns / 1000000000LL);
	rc = rc ? rc : shim_event_add_u64(ev, "period", hb->period_s);
	rc = rc ? rc : shim_event_add_u64(ev, "boot_count", hb->boot_count);
	rc = rc ? rc : shim_event_add_i64(ev, "uptime",
					  hb->uptime_s < 0 ? 0 : hb->uptime_s);
	rc = rc ? rc : shim_event_add(ev, "state", or_dash(hb->state));
	rc = rc ? rc : shim_event_add(ev, "tamper",
				      hb->tamper ? SHIM_HB_TAMPER_LATCHED :
						   SHIM_HB_TAMPER_CLEAR);
	rc = rc ? rc : shim_event_add(ev, "session_active",
				      hb->session_active ? "1" : "0");
	rc = rc ? rc : shim_event_add_u64(ev, "spool_depth", hb->spool_depth);
	rc = rc ? rc : shim_event_add(ev, "version", or_dash(hb->version));
	rc = rc ? rc : shim_event_add(ev, "binary_digest",
				      or_dash(hb->binary_digest));
	rc = rc ? rc : shim_event_add(ev, "config_digest",
				      or_dash(hb->config_digest));
	rc = rc ? rc : shim_event_add(ev, "chain_head", or_dash(hb->chain_head));
	ev->sign = 1;
	return rc;
}

int shim_heartbeat_build(struct shim_event *ev,
			 const struct shim_heartbeat_info *hb, int64_t wall_ns)
{
	int rc;

	if (ev == NULL || hb == NULL) {
		return SHIM_EINVAL;
	}
	rc = shim_event_init(ev, "heartbeat",
			     hb->tamper ? SHIM_SEV_ALERT : SHIM_SEV_INFO,
			     wall_ns);
	return rc ? rc : add_body(ev, hb, wall_ns);
}

int shim_heartbeat_build_shutdown(struct shim_event *ev,
				  const struct shim_heartbeat_info *hb,
				  const char *reason, int64_t wall_ns)
{
	int rc;

	if (ev == NULL || hb == NULL) {
		return SHIM_EINVAL;
	}
	rc = shim_event_init(ev, "shutting_down", SHIM_SEV_NOTICE, wall_ns);
	rc = rc ? rc : shim_event_add(ev, "reason", or_dash(reason));
	return rc ? rc : add_body(ev, hb, wall_ns);
}

void shim_hb_timer_start(struct shim_hb_timer *t, int64_t period_ns,
			 int64_t mono_now_ns)
{
	if (period_ns < SHIM_HB_PERIOD_MIN_NS) {
		period_ns = SHIM_HB_PERIOD_MIN_NS;
	}
	if (period_ns > SHIM_HB_PERIOD_MAX_NS) {
		period_ns = SHIM_HB_PERIOD_MAX_NS;
	}
	t->period_ns = period_ns;
	t->next_ns = mono_now_ns;
}

int shim_hb_timer_ms(const struct shim_hb_timer *t, int64_t mono_now_ns)
{
	int64_t d = t->next_ns - mono_now_ns;

	if (d <= 0) {
		return 0;
	}
	/* Round up so a wake never comes a hair early. */
	return (int)((d + 999999) / 1000000);
}

int shim_hb_timer_fire(struct shim_hb_timer *t, int64_t mono_now_ns)
{
	if (mono_now_ns < t->next_ns) {
		return 0;
	}
	t->next_ns += t->period_ns;
	if (t->next_ns <= mono_now_ns) {
		t->next_ns = mono_now_ns + t->period_ns;
	}
	return 1;
}
