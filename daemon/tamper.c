/*
 * Tamper sensors, the emergency-stop latch and heartbeats in shimd.
 *
 * The latch itself is core/tamper.c (persisted, signed, survives restart,
 * cleared only with authority); the sensors are common/sensors.c. This
 * file wires them into the loop: sensor descriptors and a sensor timer,
 * the heartbeat timer, the start-up checks and the admin reset.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat.h"
#include "keys.h"
#include "log.h"
#include "shimd.h"

static int reset_refused(struct shimd *d, const char *who, int rc,
			 const char *why, char *msg, size_t cap);
static int sensors_allow_reset(struct shimd *d, char *why, size_t cap);

static void tamper_emit_trip(struct shimd *d, int64_t wall)
{
	struct shim_event ev;

	if (shim_tamper_event(&d->tamper, &ev, wall) == 0) {
		if (d->ctl.estop_ns != 0) {
			shim_event_add_i64(&ev, "gate_closed_ns", d->ctl.estop_ns);
		}
		shimd_emit(d, &ev);
	}
	if (shim_tamper_stop_event(&d->tamper, &ev, wall) == 0) {
		shimd_emit(d, &ev);
	}
}

void shimd_tamper_latch(struct shimd *d, const char *event, const char *detail)
{
	int64_t wall = shimd_wall_ns();
	int rc;

	rc = shim_tamper_trip(&d->tamper, event, detail, wall);
	if (rc < 0) {
		log_err("tamper latch not persisted: %s (latched in memory)",
			shim_strerror(rc));
	}
	tamper_emit_trip(d, wall);
}

static void power_fail(struct shimd *d, const struct shim_sensor_event *sev)
{
	log_warn("power-fail input (%s): graceful shutdown", sev->detail);
	snprintf(d->stop_reason, sizeof(d->stop_reason), "power_fail");
	d->stop = 1;
}

#ifdef SHIM_FACTORY_BUILD
/* Factory build, jumper in: the sensor is reported, nothing latches. */
static void factory_report(struct shimd *d, const struct shim_sensor_event *sev)
{
	struct shim_event ev;

	log_warn("factory-test mode: sensor %s tripped (%s): reported, not "
		 "latched", sev->event, sev->detail);
	if (shim_event_init(&ev, "tamper", SHIM_SEV_WARNING,
			    shimd_wall_ns()) == 0 &&
	    shim_event_add(&ev, "event", sev->event) == 0 &&
	    shim_event_add(&ev, "detail", sev->detail) == 0 &&
	    shim_event_add(&ev, "latched", "no") == 0 &&
	    shim_event_add(&ev, "build", SHIM_BUILD_KIND) == 0) {
		shimd_emit(d, &ev);
	}
}
#endif

static void handle_sensor(struct shimd *d, const struct shim_sensor_event *sev)
{
	struct shim_event ev;
	int stop;

	switch (sev->kind) {
	case SHIM_SENSOR_EV_TRIPPED:
#ifdef SHIM_FACTORY_BUILD
		if (sev->role == SHIM_ROLE_TAMPER &&
		    shim_sensors_factory_jumper(d->sensors)) {
			factory_report(d, sev);
			break;
		}
		if (sev->role == SHIM_ROLE_FACTORY_JUMPER) {
			log_warn("factory-test mode: jumper in (%s): tamper "
				 "sensors report without latching", sev->detail);
			break;
		}
#endif
		if (sev->role == SHIM_ROLE_TAMPER) {
			shimd_emergency_stop(d, sev->event, sev->detail);
		} else if (sev->role == SHIM_ROLE_POWER_FAIL) {
			power_fail(d, sev);
		} else {
			log_info("reset key pressed (%s): it is read only at start",
				 sev->detail);
		}
		break;
	case SHIM_SENSOR_EV_FAULT:
		stop = d->cfg.on_sensor_fault == SHIM_ON_FAILURE_STOP;
		log_err("sensor %s fault: %s%s", sev->event, sev->detail,
			stop ? ": emergency stop" : "");
		if (shim_tamper_fault_event(&ev, sev->event, sev->detail,
					    stop ? "stop" : "report",
					    shimd_wall_ns()) == 0) {
			shimd_emit(d, &ev);
		}
		if (stop && sev->role == SHIM_ROLE_TAMPER) {
			shimd_emergency_stop(d, "sensor_fault", sev->detail);
		}
		break;
	case SHIM_SENSOR_EV_CLEARED:
	default:
		log_info("sensor %s cleared (%s)", sev->event, sev->detail);
		break;
	}
}

static void sensors_arm(struct shimd *d)
{
	int ms = shim_sensors_timeout_ms(d->sensors);

	shimd_timer_set(d, SHIMD_T_SENSORS, ms < 0 ? 0 : (uint64_t)ms + (ms == 0));
}

void shimd_sensors_service(struct shimd *d)
{
	struct shim_sensor_event sev;

	if (d->sensors == NULL) {
		return;
	}
	while (shim_sensors_next(d->sensors, &sev) == 1) {
		handle_sensor(d, &sev);
	}
	sensors_arm(d);
}

static void on_sensor_fd(struct shimd *d, int fd, short revents, void *arg)
{
	(void)fd;
	(void)revents;
	(void)arg;
	shimd_sensors_service(d);
}

static void heartbeat_info(struct shimd *d, struct shim_heartbeat_info *hb,
			   char chain[65])
{
	struct shim_eventlog_status es;

	memset(hb, 0, sizeof(*hb));
	memset(&es, 0, sizeof(es));
	if (d->evlog != NULL) {
		shim_eventlog_status(d->evlog, &es);
	}
	chain[0] = '\0';
	if (d->rec != NULL) {
		shim_recorder_chain_head(d->rec, chain);
	}
	hb->boot_count = d->tamper.boot_count;
	hb->uptime_s = (shimd_mono_ns() - d->boot_mono_ns) / 1000000000LL;
	hb->state = shim_state_name(d->ctl.state);
	hb->tamper = shim_tamper_is_latched(&d->tamper);
	hb->session_active = d->ctl.state == SHIM_ST_OPEN;
	hb->spool_depth = es.spool_depth;
	hb->version = SHIM_VERSION;
	hb->binary_digest = d->bin_digest[0] ? d->bin_digest : NULL;
	hb->config_digest = d->cfg_digest[0] ? d->cfg_digest : NULL;
	hb->chain_head = chain[0] ? chain : NULL;
	hb->period_s = (uint32_t)(d->cfg.heartbeat_period + 0.5);
}

/* The identity of the latch held, "-" when clear: the issuer of a reset
 * token needs it. Added before the event is signed. */
const char *shimd_latch_id(const struct shimd *d, char buf[SHIM_LATCH_ID_MAX])
{
	if (!shim_tamper_is_latched(&d->tamper) ||
	    shim_tamper_latch_id(&d->tamper, buf, SHIM_LATCH_ID_MAX) != 0) {
		snprintf(buf, SHIM_LATCH_ID_MAX, "-");
	}
	return buf;
}

/* The latch and the build (deployed or factory), added before the
 * heartbeat is signed. */
static int add_latch(struct shimd *d, struct shim_event *ev)
{
	char lid[SHIM_LATCH_ID_MAX];

	if (shim_event_add(ev, "latch", shimd_latch_id(d, lid)) != 0) {
		return -1;
	}
	return shim_event_add(ev, "build", SHIM_BUILD_KIND);
}

void shimd_heartbeat_tick(struct shimd *d)
{
	struct shim_heartbeat_info hb;
	struct shim_event ev;
	char chain[65];
	int64_t mono = shimd_mono_ns();
	int ms;

	if (shim_hb_timer_fire(&d->hb, mono)) {
		heartbeat_info(d, &hb, chain);
		if (shim_heartbeat_build(&ev, &hb, shimd_wall_ns()) == 0 &&
		    add_latch(d, &ev) == 0) {
			shimd_emit(d, &ev);
			log_debug("heartbeat %" PRIu64 " (boot %" PRIu64 ")", ev.seq,
				  hb.boot_count);
		}
		/* The clock is checked (jumps reported) and a trusted one
		 * moves the time floor on, at the same beat. */
		shimd_clock_tick(d);
	}
	ms = shim_hb_timer_ms(&d->hb, shimd_mono_ns());
	shimd_timer_set(d, SHIMD_T_HEARTBEAT, ms <= 0 ? 1 : (uint64_t)ms);
}

void shimd_heartbeat_shutdown(struct shimd *d, const char *reason)
{
	struct shim_heartbeat_info hb;
	struct shim_event ev;
	char chain[65];

	heartbeat_info(d, &hb, chain);
	if (shim_heartbeat_build_shutdown(&ev, &hb, reason, shimd_wall_ns()) == 0 &&
	    add_latch(d, &ev) == 0) {
		shimd_emit(d, &ev);
	}
}

int shimd_tamper_init(struct shimd *d)
{
	struct shim_sensor_event sev;
	struct pollfd pfds[SHIM_MAX_SENSORS * 2 + 2];
	struct shim_event ev;
	size_t n, i;
	int rc;

	d->boot_mono_ns = shimd_mono_ns();
	rc = shim_tamper_open(&d->tamper, &d->lp.port, d->cfg.shim_id);
	if (rc < 0) {
		log_err("tamper state: %s: the latch is set (fail closed)",
			shim_strerror(rc));
	}
	rc = shim_sensors_open(&d->sensors, &d->cfg);
	if (rc < 0) {
		log_err("sensors: %s", shim_strerror(rc));
		return rc;
	}
	if (shim_tamper_is_latched(&d->tamper) &&
	    shim_sensors_reset_key_held(d->sensors)) {
		char why[256];

		if (sensors_allow_reset(d, why, sizeof(why)) < 0) {
			char msg[300];

			reset_refused(d, "reset_key", SHIM_ESTATE, why, msg,
				      sizeof(msg));
		} else {
			rc = shim_tamper_reset_physical(&d->tamper,
							shimd_wall_ns());
			log_warn("physical reset key held at start: latch %s",
				 rc == 0 ? "cleared" : shim_strerror(rc));
		}
	}
	if (d->tamper.reset_pending) {
		if (shim_tamper_reset_event(&d->tamper, &ev, shimd_wall_ns()) == 0) {
			shimd_emit(d, &ev);
		}
		shim_tamper_reset_reported(&d->tamper);
	}
	if (shim_tamper_is_latched(&d->tamper)) {
		/* the controller closes the gate; the latch is already held,
		 * so it is not latched again */
		shim_ctl_estop(&d->ctl, d->tamper.event, d->tamper.detail);
		log_err("EMERGENCY STOP latched (%s%s%s): the gate stays closed "
			"until an authorised reset", d->tamper.event,
			d->tamper.detail[0] ? ": " : "", d->tamper.detail);
		if (d->tamper.tripped_at_open) {
			tamper_emit_trip(d, shimd_wall_ns());
		}
	}

	n = shim_sensors_pollfds(d->sensors, pfds, sizeof(pfds) / sizeof(pfds[0]));
	for (i = 0; i < n; i++) {
		rc = shimd_watch_add(d, pfds[i].fd, pfds[i].events, on_sensor_fd,
				     NULL);
		if (rc < 0) {
			log_err("sensors: too many descriptors");
			return rc;
		}
	}
	/* A sensor already tripped at start trips now, before any prompt. */
	while (shim_sensors_next(d->sensors, &sev) == 1) {
		handle_sensor(d, &sev);
	}
	sensors_arm(d);

	if (shim_sha256_file_hex("/proc/self/exe", d->bin_digest) != 0) {
		d->bin_digest[0] = '\0';
	}
	if (shim_sha256_file_hex(d->cfg.file, d->cfg_digest) != 0) {
		d->cfg_digest[0] = '\0';
	}
	shim_hb_timer_init(&d->hb, d->cfg.heartbeat_period, shimd_mono_ns());
	shimd_heartbeat_tick(d);
	return 0;
}

/* Logs, answers and reports a refused reset; the latch and the token are
 * untouched. */
static int reset_refused(struct shimd *d, const char *who, int rc,
			 const char *why, char *msg, size_t cap)
{
	struct shim_event ev;
	char lid[SHIM_LATCH_ID_MAX];

	shimd_latch_id(d, lid);
	log_warn("admin %s: tamper reset of latch %s refused: %s", who, lid, why);
	snprintf(msg, cap, "error: reset refused: %s", why);
	if (shim_event_init(&ev, "tamper_reset_refused", SHIM_SEV_WARNING,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "reason", why);
		shim_event_add(&ev, "latch", lid);
		shim_event_add(&ev, "admin", who);
		shimd_emit(d, &ev);
	}
	return rc;
}

/*
 * Reads the tamper sensors now. Returns 0 when the latch may be cleared,
 * or SHIM_ESTATE with why (cap bytes) saying which sensor holds it: one
 * that reads active, or, with on_sensor_fault: stop, one that cannot be
 * read (it would stop the gate again at once, and cannot vouch for a
 * closed case).
 */
static int sensors_allow_reset(struct shimd *d, char *why, size_t cap)
{
	const char *event = NULL;
	char detail[128];

	switch (shim_sensors_tamper_state(d->sensors, &event, detail,
					  sizeof(detail))) {
	case SHIM_SENSORS_CLEAR:
		return 0;
	case SHIM_SENSORS_FAULT:
		if (d->cfg.on_sensor_fault != SHIM_ON_FAILURE_STOP) {
			return 0;
		}
		snprintf(why, cap, "sensor %s cannot be read (%s)",
			 event ? event : "-", detail);
		return SHIM_ESTATE;
	case SHIM_SENSORS_ACTIVE:
	default:
		snprintf(why, cap, "sensor %s still active (%s)",
			 event ? event : "-", detail);
		return SHIM_ESTATE;
	}
}

int shimd_tamper_reset(struct shimd *d, const char *token, const char *who,
		       char *msg, size_t cap)
{
	struct shim_reset_token tok;
	struct shim_event ev;
	uint8_t auth[SHIM_P256_PUB_LEN];
	char lid[SHIM_LATCH_ID_MAX], tlid[SHIM_LATCH_ID_MAX];
	char why_buf[256];
	const char *why = "";
	int64_t now = 0;
	int rc;

	if (!shim_tamper_is_latched(&d->tamper)) {
		snprintf(msg, cap, "error: no emergency stop is latched");
		return SHIM_ESTATE;
	}
	/* A token's lifetime is judged on the trusted clock only: a clock
	 * set back would otherwise bring an expired token back to life. */
	if (shim_clock_trusted_now(&d->clock, &now) < 0) {
		return reset_refused(d, who, SHIM_ECLOCK, "shim clock not trusted: "
				     "check it, then shimctl clock trust",
				     msg, cap);
	}
	if (d->cfg.reset_authority_public_key == NULL) {
		snprintf(msg, cap, "error: the configuration names no "
				   "tamper.reset_authority_public_key");
		return SHIM_ENOENT;
	}
	rc = shim_keys_load_public(d->cfg.reset_authority_public_key, auth);
	if (rc < 0) {
		snprintf(msg, cap, "error: reset authority key: %s",
			 shim_strerror(rc));
		return rc;
	}
	rc = shim_token_parse(token, strlen(token), &tok);
	if (rc == SHIM_ENOTSUP) {
		return reset_refused(d, who, rc, "token of format 1 names no "
				     "latch: issue a new one with --latch",
				     msg, cap);
	}
	if (rc < 0) {
		return reset_refused(d, who, rc, "malformed token", msg, cap);
	}
	/* The token first (nothing is spent), then the sensors: the case
	 * must be closed before the latch may go. */
	rc = shim_tamper_check_token(&d->tamper, &tok, auth, now, &why);
	if (rc == SHIM_EACCES && (tok.latch_seq != d->tamper.latch_seq ||
				  tok.latch_boot != d->tamper.latch_boot) &&
	    shim_tamper_latch_id(&d->tamper, lid, sizeof(lid)) == 0 &&
	    shim_latch_id_format(tok.latch_seq, tok.latch_boot, tlid,
				 sizeof(tlid)) == 0 &&
	    strcmp(tok.shim_id, d->cfg.shim_id ? d->cfg.shim_id : "") == 0) {
		snprintf(why_buf, sizeof(why_buf), "%s (token: latch %s; "
			 "latched: %s)", why, tlid, lid);
		why = why_buf;
	}
	if (rc < 0) {
		return reset_refused(d, who, rc, why && why[0] ? why :
				     shim_strerror(rc), msg, cap);
	}
	rc = sensors_allow_reset(d, why_buf, sizeof(why_buf));
	if (rc < 0) {
		return reset_refused(d, who, rc, why_buf, msg, cap);
	}
	rc = shim_tamper_reset_token(&d->tamper, &tok, auth, now, &why);
	if (rc < 0) {
		return reset_refused(d, who, rc, why && why[0] ? why :
				     shim_strerror(rc), msg, cap);
	}
	if (shim_tamper_reset_event(&d->tamper, &ev, shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "admin", who);
		shimd_emit(d, &ev);
	}
	shim_tamper_reset_reported(&d->tamper);
	if (shim_latch_id_format(d->tamper.reset_latch_seq,
				 d->tamper.reset_latch_boot, lid,
				 sizeof(lid)) != 0) {
		snprintf(lid, sizeof(lid), "-");
	}
	log_warn("admin %s: emergency stop (latch %s) cleared by token from "
		 "%s (%s)", who, lid, tok.issuer, tok.reason);
	shimd_estop_cleared(d);
	snprintf(msg, cap, "emergency stop cleared (latch %s, issuer %s)", lid,
		 tok.issuer);
	/* Edges only fire on a change: re-arm, so a sensor that went active
	 * again since the check (or never cleared in the edge history) trips
	 * now rather than never. */
	shim_sensors_rearm(d->sensors);
	shimd_sensors_service(d);
	return 0;
}

void shimd_tamper_fini(struct shimd *d)
{
	if (d->sensors != NULL) {
		shim_sensors_close(d->sensors);
		d->sensors = NULL;
	}
}
