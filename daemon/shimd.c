/*
 * shimd: the event loop, the state machine's actions, the technician
 * dialogue (DESIGN.md contract 4.4) and the relay.
 *
 * Invariants:
 *  - Bytes cross between the two sides only in OPEN, and only after they
 *    were accepted by the recorder queue.
 *  - Every transition goes through set_state(), which checks the state
 *    table and logs the cause; a refused transition fails closed.
 *  - Nothing here waits on disk or network while relaying: the recorder
 *    queue pushes back through SHIM_EAGAIN and its descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "keys.h"
#include "log.h"
#include "shimd.h"
#include "util.h"

static const char prompt_fmt[] =
	"\r\nShim MFA gate. Authenticate as: <technician_id> <totp_code>\r\n> ";

static void on_tech_hangup(struct shimd *d);
static void on_tech_connect(struct shimd *d, const char *cause);
static void on_device_lost(struct shimd *d);

int64_t shimd_wall_ns(void)
{
	return shim_linux_wall_ns();
}

int64_t shimd_mono_ns(void)
{
	return shim_linux_mono_ns();
}

static uint64_t secs_to_ms(double s)
{
	if (s <= 0) {
		return 0;
	}
	return (uint64_t)(s * 1000.0 + 0.5);
}

/* ---- events ------------------------------------------------------------ */

void shimd_emit(struct shimd *d, struct shim_event *ev)
{
	int rc;

	if (d->evlog == NULL) {
		return;
	}
	rc = shim_eventlog_emit(d->evlog, ev);
	if (rc < 0) {
		log_err("event %s not recorded: %s", ev->name, shim_strerror(rc));
	}
}

static void emit_simple(struct shimd *d, const char *name,
			enum shim_severity sev, const char *k, const char *v)
{
	struct shim_event ev;

	if (shim_event_init(&ev, name, sev, shimd_wall_ns()) < 0) {
		return;
	}
	if (k != NULL) {
		shim_event_add(&ev, k, v);
	}
	shimd_emit(d, &ev);
}

/* ---- timers ------------------------------------------------------------ */

void shimd_timer_set(struct shimd *d, enum shimd_timer t, uint64_t ms)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (d->timer_fd[t] >= 0) {
		timerfd_settime(d->timer_fd[t], 0, &its, NULL);
	}
}

static void timer_ack(struct shimd *d, enum shimd_timer t)
{
	uint64_t n;

	while (read(d->timer_fd[t], &n, sizeof(n)) < 0 && errno == EINTR) {
	}
}

/* ---- messages to the technician outside OPEN ----------------------------- */

static void msg_flush(struct shimd *d)
{
	int n;

	if (d->msg_len == 0 || d->tech.fd < 0) {
		return;
	}
	n = shim_serial_write(&d->tech, d->msg, d->msg_len);
	if (n <= 0) {
		return;
	}
	memmove(d->msg, d->msg + n, d->msg_len - (size_t)n);
	d->msg_len -= (size_t)n;
}

/* Queues text for the technician; what does not fit is dropped (a
 * technician who does not read cannot grow our memory). */
static void say(struct shimd *d, const void *p, size_t len)
{
	size_t room = sizeof(d->msg) - d->msg_len;

	if (len > room) {
		len = room;
	}
	memcpy(d->msg + d->msg_len, p, len);
	d->msg_len += len;
	msg_flush(d);
}

static void says(struct shimd *d, const char *s)
{
	say(d, s, strlen(s));
}

static void show_prompt(struct shimd *d)
{
	shim_lineedit_reset(&d->le);
	/* What was typed before the prompt never counts as input. */
	shim_serial_flush_input(&d->tech);
	says(d, prompt_fmt);
}

/* Answers a line that opens no session: one "Auth fail" line, then the
 * failure delay (input is ignored meanwhile). */
static void refuse_line(struct shimd *d, const char *answer)
{
	shim_lineedit_reset(&d->le);
	says(d, answer);
	d->fail_delay = 1;
	shimd_timer_set(d, SHIMD_T_FAIL_DELAY, SHIMD_FAIL_DELAY_MS);
}

/* ---- states ------------------------------------------------------------ */

static void set_state(struct shimd *d, enum shim_sm_event ev,
		      const char *cause)
{
	enum shim_state to;

	if (shim_sm_next(d->state, ev, &to) < 0) {
		log_err("state %s refuses event %s (%s): closing the gate",
			shim_state_name(d->state), shim_sm_event_name(ev),
			cause);
		if (d->state == SHIM_ST_OPEN) {
			/* should not happen: the table has every OPEN exit */
			shimd_emergency_stop(d, "integrity", "state machine refused a transition");
		}
		return;
	}
	if (to != d->state) {
		log_info("state %s -> %s (%s: %s)", shim_state_name(d->state),
			 shim_state_name(to), shim_sm_event_name(ev), cause);
		d->state_since_ns = shimd_wall_ns();
	} else {
		log_debug("state %s stays (%s: %s)", shim_state_name(to),
			  shim_sm_event_name(ev), cause);
	}
	d->state = to;
}

/* The technician line is in the dialogue (prompt, line editor, gate):
 * in CHALLENGE, and in OPEN while the session's technician is away within
 * the reconnect grace and someone else is on the line. */
static int dialogue_open(const struct shimd *d)
{
	return d->state == SHIM_ST_CHALLENGE ||
	       (d->state == SHIM_ST_OPEN && d->grace && d->tech_present);
}

static void rec_meta(struct shimd *d, const char *name, const char *detail)
{
	int rc;

	if (d->rec == NULL || d->session_id[0] == '\0') {
		return;
	}
	rc = shim_recorder_meta(d->rec, name, detail, shimd_wall_ns(),
				shimd_mono_ns());
	if (rc < 0) {
		log_warn("session %s: meta record %s not queued: %s",
			 d->session_id, name, shim_strerror(rc));
	}
}

/* Enters CHALLENGE with a prompt, or IDLE when nobody is there. */
static void to_challenge(struct shimd *d, const char *cause)
{
	if (d->stop || d->state == SHIM_ST_EMERGENCY_STOP ||
	    d->state == SHIM_ST_LOCKED) {
		return;
	}
	if (!d->tech_present) {
		if (d->state == SHIM_ST_CHALLENGE) {
			set_state(d, SHIM_SM_HANGUP, cause);
		}
		return;
	}
	set_state(d, SHIM_SM_CONNECT, cause);
	d->fail_delay = 0;
	shimd_timer_set(d, SHIMD_T_FAIL_DELAY, 0);
	show_prompt(d);
}

/* ---- sessions ----------------------------------------------------------- */

static void relay_clear(struct shimd_relay *r)
{
	r->len = 0;
	r->off = 0;
	r->recorded = 0;
}

/* session.device_logout / session.device_reset: the device's service
 * login does not outlive the shim session. The logout bytes go out after
 * the device's output queue was flushed, and are recorded. */
static void device_logout(struct shimd *d)
{
	char shown[SHIMD_MSG_BUF];
	int n, rc;

	if (!d->dev_up) {
		return;
	}
	if (d->cfg.device_logout_len > 0) {
		n = shim_serial_write(&d->dev, d->cfg.device_logout,
				      d->cfg.device_logout_len);
		shimd_log_sanitize(shown, sizeof(shown),
				   (const char *)d->cfg.device_logout,
				   d->cfg.device_logout_len);
		rec_meta(d, "device_logout", shown);
		if (n < 0 || (size_t)n < d->cfg.device_logout_len) {
			log_warn("session %s: device logout sent %d of %zu bytes",
				 d->session_id, n < 0 ? 0 : n,
				 d->cfg.device_logout_len);
		} else {
			log_info("session %s: device logout sent", d->session_id);
		}
	}
	if (d->cfg.device_reset == SHIM_DEVICE_RESET_DTR && !d->dev_resetting) {
		/* A pty has no DTR: it is hung up when the hold ends, which is
		 * what a device sees of a dropped DTR on a null-modem line. */
		rc = d->dev.is_pty ? 0 : shim_serial_set_dtr(&d->dev, 0);
		rec_meta(d, "device_reset", d->dev.is_pty ? "hangup" : "dtr");
		if (rc < 0) {
			log_warn("session %s: DTR not dropped: %s", d->session_id,
				 shim_strerror(rc));
			return;
		}
		d->dev_resetting = 1;
		shimd_timer_set(d, SHIMD_T_DEVRESET,
				secs_to_ms(d->cfg.device_reset_hold));
	}
}

static void device_reset_done(struct shimd *d)
{
	int rc;

	timer_ack(d, SHIMD_T_DEVRESET);
	if (!d->dev_resetting) {
		return;
	}
	d->dev_resetting = 0;
	if (d->dev.is_pty) {
		rc = shim_serial_pty_renew(&d->dev);
		log_info("device pty %s hung up after the session%s%s", d->dev.path,
			 rc < 0 ? ": " : "", rc < 0 ? shim_strerror(rc) : "");
		return;
	}
	rc = shim_serial_set_dtr(&d->dev, 1);
	if (rc < 0) {
		log_warn("device %s: DTR not raised again: %s", d->dev.path,
			 shim_strerror(rc));
	} else {
		log_info("device %s: DTR up again after the session", d->dev.path);
	}
}

void shimd_end_session(struct shimd *d, const char *reason)
{
	struct shim_event ev;
	int64_t wall = shimd_wall_ns();
	int64_t mono = shimd_mono_ns();
	char line[160];
	/* the session's own technician is on the line; or someone else is at
	 * the prompt during the reconnect grace, who hears nothing of it */
	int owner = d->tech_present && !d->grace;
	int stranger = d->tech_present && d->grace;
	int rc;

	if (d->state != SHIM_ST_OPEN && d->session_id[0] == '\0') {
		return;
	}
	/* The gate closes first: nothing is forwarded from here on, and
	 * nothing already queued in the kernel for either line leaves after
	 * it. */
	relay_clear(&d->in);
	relay_clear(&d->out);
	shim_serial_flush_output(&d->dev);
	if (!stranger) {
		shim_serial_flush_output(&d->tech);
	}
	d->rec_wait = 0;
	d->grace = 0;
	device_logout(d);
	shimd_timer_set(d, SHIMD_T_IDLE, 0);
	shimd_timer_set(d, SHIMD_T_MAX, 0);
	shimd_timer_set(d, SHIMD_T_GRACE, 0);

	rc = shim_recorder_end(d->rec, reason, wall, mono);
	if (rc < 0) {
		log_err("session %s: footer not written: %s", d->session_id,
			shim_strerror(rc));
	}
	log_info("session %s of %s ended: %s (in %" PRIu64 " bytes, out %" PRIu64
		 " bytes)", d->session_id, d->tech_id, reason, d->in.bytes,
		 d->out.bytes);
	log_debug("session %s: recorder queue pushed back %" PRIu64 " times",
		  d->session_id, d->rec_stalls);
	if (shim_event_init(&ev, "session_end", SHIM_SEV_NOTICE, wall) == 0) {
		shim_event_add(&ev, "technician", d->tech_id);
		shim_event_add(&ev, "session", d->session_id);
		shim_event_add(&ev, "reason", reason);
		shim_event_add_u64(&ev, "bytes_in", d->in.bytes);
		shim_event_add_u64(&ev, "bytes_out", d->out.bytes);
		shim_event_add_i64(&ev, "duration_ms",
				   (mono - d->session_start_mono) / 1000000);
		shimd_emit(d, &ev);
	}
	if (owner) {
		snprintf(line, sizeof(line), "\r\nSession %s ended: %s\r\n",
			 d->session_id, reason);
		d->msg_len = 0;
		says(d, line);
	}
	d->session_id[0] = '\0';
	d->tech_id[0] = '\0';
	if (d->state == SHIM_ST_OPEN) {
		set_state(d, SHIM_SM_SESSION_END, reason);
		if (owner) {
			to_challenge(d, "session ended");
		} else if (stranger) {
			/* already at the prompt: the dialogue goes on as it is */
			log_debug("technician at the prompt keeps the dialogue");
		} else {
			set_state(d, SHIM_SM_HANGUP, "technician absent");
		}
	}
}

static void start_session(struct shimd *d, const struct shim_auth_result *res)
{
	const struct shim_technician *t = &d->cfg.techs[res->tech];
	struct shim_event ev;
	char line[SHIM_TECH_ID_MAX + SHIM_SESSION_ID_MAX + 64];
	int rc;

	int64_t t0 = shimd_mono_ns();

	memcpy(d->tech_id, t->id, sizeof(d->tech_id));
	rc = shim_recorder_begin(d->rec, d->tech_id, d->session_id);
	log_debug("recording start took %.3f ms",
		  (double)(shimd_mono_ns() - t0) / 1e6);
	if (rc < 0) {
		/* Never OPEN without a live recording. */
		log_err("recording could not start for %s: %s", d->tech_id,
			shim_strerror(rc));
		if (shim_event_init(&ev, "auth_fail", SHIM_SEV_WARNING,
				    shimd_wall_ns()) == 0) {
			shim_event_add(&ev, "technician", d->tech_id);
			shim_event_add(&ev, "reason", "recording_unavailable");
			shimd_emit(d, &ev);
		}
		d->tech_id[0] = '\0';
		d->session_id[0] = '\0';
		refuse_line(d, "Auth fail: recording unavailable\r\n");
		return;
	}
	d->session_start_mono = shimd_mono_ns();
	d->session_start_wall = shimd_wall_ns();
	d->last_input_mono = d->session_start_mono;
	relay_clear(&d->in);
	relay_clear(&d->out);
	d->in.bytes = 0;
	d->out.bytes = 0;
	d->grace = 0;
	d->rec_wait = 0;
	d->rec_stalls = 0;
	d->rec_failure_reported = 0;

	if (shim_event_init(&ev, "auth_ok", SHIM_SEV_NOTICE,
			    d->session_start_wall) == 0) {
		shim_event_add(&ev, "technician", d->tech_id);
		shim_event_add_i64(&ev, "drift", res->drift);
		shimd_emit(d, &ev);
	}
	if (shim_event_init(&ev, "session_start", SHIM_SEV_NOTICE,
			    d->session_start_wall) == 0) {
		shim_event_add(&ev, "technician", d->tech_id);
		shim_event_add(&ev, "session", d->session_id);
		shimd_emit(d, &ev);
	}
	log_info("auth ok: %s (drift %d), session %s", d->tech_id, res->drift,
		 d->session_id);
	rec_meta(d, "session_start", d->tech_id);
	/* Whatever was typed before the success line (after the code, in
	 * the same write) is not session input: it is dropped. */
	shim_serial_flush_input(&d->tech);
	snprintf(line, sizeof(line), "Authenticated as %s; session %s\r\n",
		 d->tech_id, d->session_id);
	says(d, line);
	/* The success line goes out before any relayed byte. */
	set_state(d, SHIM_SM_AUTH_OK, "code accepted");
	shimd_timer_set(d, SHIMD_T_IDLE, secs_to_ms(d->cfg.idle_timeout));
	shimd_timer_set(d, SHIMD_T_MAX, secs_to_ms(d->cfg.max_duration));
	/* Device output collected while nobody was authenticated is stale. */
	shim_serial_flush_input(&d->dev);
}

/* The session's own technician authenticated again within the reconnect
 * grace: the session and its recording go on. */
static void resume_session(struct shimd *d, const struct shim_auth_result *res)
{
	struct shim_event ev;
	char line[SHIM_TECH_ID_MAX + SHIM_SESSION_ID_MAX + 64];
	int64_t now = shimd_mono_ns();
	int64_t away_ms = (now - d->grace_since_mono) / 1000000;

	d->grace = 0;
	shimd_timer_set(d, SHIMD_T_GRACE, 0);
	d->last_input_mono = now;
	relay_clear(&d->in);
	rec_meta(d, "technician_returned", d->tech_id);
	log_info("session %s: %s returned after %" PRId64 " ms (drift %d)",
		 d->session_id, d->tech_id, away_ms, res->drift);
	if (shim_event_init(&ev, "auth_ok", SHIM_SEV_NOTICE,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "technician", d->tech_id);
		shim_event_add_i64(&ev, "drift", res->drift);
		shim_event_add(&ev, "session", d->session_id);
		shimd_emit(d, &ev);
	}
	if (shim_event_init(&ev, "technician_returned", SHIM_SEV_NOTICE,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "technician", d->tech_id);
		shim_event_add(&ev, "session", d->session_id);
		shim_event_add_i64(&ev, "away_ms", away_ms);
		shimd_emit(d, &ev);
	}
	shim_serial_flush_input(&d->tech);
	snprintf(line, sizeof(line),
		 "Authenticated as %s; session %s\r\nSession resumed\r\n", d->tech_id,
		 d->session_id);
	says(d, line);
	shim_lineedit_reset(&d->le);
}

/* The conditions for opening a session that are not the code: a device
 * that is there and not being reset, and (with storage) room to record.
 * Returns 1 after answering the technician when one fails. */
static int session_refused(struct shimd *d, const char *who, int storage)
{
	int rc;

	if (d->dev_up && !shim_serial_alive(&d->dev)) {
		/* a tty that vanished since it was opened (adapter pulled) */
		on_device_lost(d);
	}
	if (!d->dev_up) {
		log_warn("auth refused for '%s': device not connected", who);
		refuse_line(d, "Auth fail: device not connected\r\n");
		return 1;
	}
	if (d->dev_resetting) {
		log_warn("auth refused for '%s': device reset in progress", who);
		refuse_line(d, "Auth fail: device resetting, try again\r\n");
		return 1;
	}
	rc = storage ? shim_recorder_can_start(d->rec) : 0;
	if (rc < 0) {
		log_err("auth refused for '%s': recording storage: %s", who,
			shim_strerror(rc));
		emit_simple(d, "storage_low", SHIM_SEV_ERR, "reason",
			    shim_strerror(rc));
		refuse_line(d, "Auth fail: recording storage full\r\n");
		return 1;
	}
	return 0;
}

/* Copies the claimed ID (first word of the line) for logs and events. */
static void claimed_id(const uint8_t *line, size_t len, char *out, size_t cap)
{
	size_t i = 0, j;

	while (i < len && (line[i] == ' ' || line[i] == '\t')) {
		i++;
	}
	j = i;
	while (j < len && line[j] != ' ' && line[j] != '\t') {
		j++;
	}
	if (j - i > SHIM_TECH_ID_MAX) {
		j = i + SHIM_TECH_ID_MAX;
	}
	{
		/* A line of one word, or one that starts with a string of
		 * digits, may be a code typed alone or first: never log it. */
		size_t k = j, m;
		int digits = j > i;

		while (k < len && (line[k] == ' ' || line[k] == '\t')) {
			k++;
		}
		for (m = i; m < j; m++) {
			if (line[m] < '0' || line[m] > '9') {
				digits = 0;
			}
		}
		if (k >= len || digits) {
			snprintf(out, cap, "%s", "(malformed)");
			return;
		}
	}
	shimd_log_sanitize(out, cap, (const char *)line + i, j - i);
}

static void auth_failed(struct shimd *d, const char *who,
			const struct shim_auth_result *res, const char *reason)
{
	struct shim_event ev;
	char line[96];

	log_warn("auth fail: technician '%s': %s (failures %u)", who, reason,
		 (unsigned)res->failures);
	if (shim_event_init(&ev, "auth_fail", SHIM_SEV_WARNING,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "technician", who);
		shim_event_add(&ev, "reason", reason);
		shim_event_add_u64(&ev, "failures", res->failures);
		shimd_emit(d, &ev);
	}
	if (res->locked_now || res->outcome == SHIM_AUTH_RATE_LIMITED) {
		if (shim_event_init(&ev, "lockout", SHIM_SEV_WARNING,
				    shimd_wall_ns()) == 0) {
			shim_event_add(&ev, "technician",
				       res->outcome == SHIM_AUTH_RATE_LIMITED ?
					       "*" : who);
			shim_event_add_u64(&ev, "seconds", res->retry_after);
			shimd_emit(d, &ev);
		}
	}
	if (res->outcome == SHIM_AUTH_CLOCK) {
		snprintf(line, sizeof(line),
			 "Auth fail: shim clock not trusted\r\n");
	} else if (res->retry_after > 0) {
		snprintf(line, sizeof(line), "Auth fail: retry in %u s\r\n",
			 (unsigned)res->retry_after);
	} else {
		snprintf(line, sizeof(line), "Auth fail\r\n");
	}
	says(d, line);
	if (res->outcome == SHIM_AUTH_RATE_LIMITED) {
		if (d->state == SHIM_ST_OPEN) {
			/* the shim locks: the waiting session is sealed first */
			shimd_end_session(d, "technician_disconnect");
		}
		set_state(d, SHIM_SM_RATE_LOCK, "shim-wide failure limit");
		shimd_timer_set(d, SHIMD_T_LOCK,
				(uint64_t)(res->retry_after ? res->retry_after : 1) *
					1000);
		return;
	}
	set_state(d, SHIM_SM_AUTH_FAIL, reason);
	d->fail_delay = 1;
	shimd_timer_set(d, SHIMD_T_FAIL_DELAY, SHIMD_FAIL_DELAY_MS);
}

static void handle_line(struct shimd *d, int overflow)
{
	struct shim_auth_result res;
	char who[SHIM_TECH_ID_MAX * 4 + 1];
	const uint8_t *line;
	size_t len;
	int64_t now = shimd_wall_ns() / 1000000000LL;
	int64_t t0;
	int rc;

	memset(&res, 0, sizeof(res));
	res.tech = -1;
	if (overflow) {
		/* Counts as a failure: the gate sees a malformed line. */
		shim_gate_verify_line(&d->gate, "", 0, now, &res);
		shim_lineedit_reset(&d->le);
		says(d, "\r\n");
		auth_failed(d, "", &res, "line_too_long");
		return;
	}
	line = shim_lineedit_line(&d->le, &len);
	claimed_id(line, len, who, sizeof(who));
	if (len == 0) {
		/* an empty line asks for the prompt again */
		show_prompt(d);
		return;
	}
	/* Nothing to talk to, or nowhere to record: do not spend the code.
	 * (Within the reconnect grace a recording is live already.) */
	if (session_refused(d, who, d->state != SHIM_ST_OPEN)) {
		return;
	}
	t0 = shimd_mono_ns();
	rc = shim_gate_verify_line(&d->gate, (const char *)line, len, now,
				   &res);
	shim_lineedit_reset(&d->le);
	log_debug("gate verification took %.3f ms",
		  (double)(shimd_mono_ns() - t0) / 1e6);
	if (rc < 0 && res.outcome == SHIM_AUTH_OK) {
		res.outcome = SHIM_AUTH_STATE;
	}
	shimd_clock_report(d, &res.clock);
	if (res.clock_confirmed) {
		emit_simple(d, "clock_confirmed", SHIM_SEV_NOTICE, "source", "totp");
		log_info("clock confirmed by a valid code");
		shimd_clock_report(d, NULL);
	}
	if (res.outcome == SHIM_AUTH_OK && res.tech >= 0 &&
	    (size_t)res.tech < d->cfg.ntechs) {
		if (d->state == SHIM_ST_OPEN) {
			/* someone authenticated during the reconnect grace */
			if (strcmp(d->cfg.techs[res.tech].id, d->tech_id) == 0) {
				resume_session(d, &res);
				return;
			}
			log_info("session %s of %s: %s authenticated during the "
				 "reconnect grace: sealing it", d->session_id,
				 d->tech_id, d->cfg.techs[res.tech].id);
			shimd_end_session(d, "technician_disconnect");
			/* The same checks as for any new session: sealing the
			 * old one may have started a device reset. */
			if (d->state != SHIM_ST_CHALLENGE ||
			    session_refused(d, who, 1)) {
				return;
			}
		}
		start_session(d, &res);
		return;
	}
	if (res.outcome == SHIM_AUTH_OK) {
		res.outcome = SHIM_AUTH_STATE;
	}
	auth_failed(d, who, &res, shim_auth_outcome_name(res.outcome));
}

/* ---- technician input outside OPEN ---------------------------------------- */

static void tech_input_closed(struct shimd *d)
{
	uint8_t buf[512];
	uint8_t echo[SHIM_LE_ECHO_MAX];
	size_t elen, i;
	int n, brk, rounds;

	/* Bounded, so that a flood cannot starve timers and signals. */
	for (rounds = 0; rounds < 64; rounds++) {
		n = shim_serial_read(&d->tech, buf, sizeof(buf), &brk);
		if (n == SHIM_EDISCONN) {
			on_tech_hangup(d);
			break;
		}
		if (n <= 0) {
			break;
		}
		if (!d->tech_present &&
		    (d->tech.is_pty ||
		     d->tech.cfg.presence != SHIM_PRESENCE_NONE)) {
			/* typed before the prompt, or without the presence
			 * line up: dropped */
			continue;
		}
		if (!d->tech_present) {
			/* a tty technician without presence lines: the first
			 * byte is the connection */
			on_tech_connect(d, "technician input");
			continue;
		}
		if (!dialogue_open(d) || d->fail_delay) {
			/* discarded: never reaches the device */
			continue;
		}
		for (i = 0; i < (size_t)n; i++) {
			enum shim_le_result r;

			r = shim_lineedit_byte(&d->le, buf[i], echo, &elen);
			if (elen > 0) {
				say(d, echo, elen);
			}
			if (r == SHIM_LE_LINE || r == SHIM_LE_OVERFLOW) {
				handle_line(d, r == SHIM_LE_OVERFLOW);
				if (!dialogue_open(d) || d->fail_delay) {
					/* the rest of this read is dropped */
					break;
				}
			}
		}
		if (d->state == SHIM_ST_OPEN && !d->grace) {
			break;
		}
	}
	/* what was typed may hold a code */
	shim_memzero(buf, sizeof(buf));
}

/* ---- relay --------------------------------------------------------------- */

static int relay_pump(struct shimd *d, struct shimd_relay *r,
		      struct shim_serial *src, struct shim_serial *dst,
		      enum shim_rec_dir dir, int *dst_failed)
{
	int n, brk = 0, rc;

	*dst_failed = 0;
	if (r->len == 0) {
		n = shim_serial_read(src, r->buf, d->relay_cap, &brk);
		if (n < 0) {
			return n;
		}
		if (brk && dir == SHIM_DIR_IN) {
			int64_t w = shimd_wall_ns(), m = shimd_mono_ns();

			d->last_input_mono = m;

			shim_recorder_meta(d->rec, "break", "technician", w, m);
			rc = shim_serial_send_break(dst);
			log_info("session %s: BREAK forwarded to device (%s)",
				 d->session_id, rc == 0 ? "sent" : shim_strerror(rc));
		}
		if (n == 0) {
			return 0;
		}
		r->len = (size_t)n;
		r->off = 0;
		r->recorded = 0;
		if (dir == SHIM_DIR_IN) {
			/* idle means no technician input: a chatty device does
			 * not keep an abandoned session open */
			d->last_input_mono = shimd_mono_ns();
		}
	}
	if (!r->recorded) {
		/* Into the recorder queue before it is forwarded. */
		rc = shim_recorder_traffic(d->rec, dir, r->buf, r->len,
					   shimd_wall_ns(), shimd_mono_ns());
		if (rc == SHIM_EAGAIN) {
			/* Back-pressure: hold the bytes, stop reading this
			 * side until the recorder has room. */
			d->rec_wait = 1;
			d->rec_stalls++;
			return 0;
		}
		if (rc < 0) {
			return rc;
		}
		r->recorded = 1;
	}
	while (r->off < r->len) {
		n = shim_serial_write(dst, r->buf + r->off, r->len - r->off);
		if (n < 0) {
			*dst_failed = 1;
			return n;
		}
		if (n == 0) {
			return 0; /* dst full: wait for POLLOUT */
		}
		r->off += (size_t)n;
		r->bytes += (uint64_t)n;
	}
	r->len = 0;
	r->off = 0;
	r->recorded = 0;
	return 0;
}

static void on_device_lost(struct shimd *d);

/* Holds device output while the technician is away (reconnect grace):
 * one chunk is read and recorded, then the device waits. */
static int relay_hold(struct shimd *d)
{
	int brk = 0, n, rc;

	if (d->out.len > 0) {
		if (!d->out.recorded) {
			rc = shim_recorder_traffic(d->rec, SHIM_DIR_OUT, d->out.buf,
						   d->out.len, shimd_wall_ns(),
						   shimd_mono_ns());
			if (rc == SHIM_EAGAIN) {
				d->rec_wait = 1;
				return 0;
			}
			if (rc < 0) {
				return rc;
			}
			d->out.recorded = 1;
		}
		return 0;
	}
	n = shim_serial_read(&d->dev, d->out.buf, d->relay_cap, &brk);
	if (n <= 0) {
		return n;
	}
	d->out.len = (size_t)n;
	d->out.off = 0;
	d->out.recorded = 0;
	return relay_hold(d);
}

static void relay_step(struct shimd *d)
{
	int rc, dst_failed = 0;

	if (d->state != SHIM_ST_OPEN) {
		return;
	}
	if (!d->grace) {
		rc = relay_pump(d, &d->in, &d->tech, &d->dev, SHIM_DIR_IN,
				&dst_failed);
		if (rc == SHIM_EDISCONN) {
			if (dst_failed) {
				on_device_lost(d);
			} else {
				on_tech_hangup(d);
			}
			return;
		}
		if (rc < 0) {
			goto rec_failed;
		}
	}
	if (d->state != SHIM_ST_OPEN) {
		return;
	}
	if (d->grace) {
		rc = relay_hold(d);
	} else {
		rc = relay_pump(d, &d->out, &d->dev, &d->tech, SHIM_DIR_OUT,
				&dst_failed);
	}
	if (rc == SHIM_EDISCONN) {
		if (dst_failed) {
			on_tech_hangup(d);
		} else {
			on_device_lost(d);
		}
		return;
	}
	if (rc < 0) {
		goto rec_failed;
	}
	return;
rec_failed:
	/* on_failure: stop. The gate closes rather than relay unrecorded. */
	log_err("session %s: recording failed: %s", d->session_id,
		shim_strerror(rc));
	shimd_end_session(d, "recording_failed");
}

/* The writer reports a failure through its descriptor. With
 * recording.on_failure: continue the session goes on recording what it
 * can (the footer says so); either way the SIEM hears of it once. */
static void rec_check(struct shimd *d)
{
	struct shim_recorder_status rs;
	struct shim_event ev;

	if (d->state != SHIM_ST_OPEN || d->rec_failure_reported) {
		return;
	}
	shim_recorder_status(d->rec, &rs);
	if (!rs.failed) {
		return;
	}
	d->rec_failure_reported = 1;
	if (d->tech_present && !d->grace &&
	    d->cfg.on_failure != SHIM_ON_FAILURE_STOP) {
		/* once per session, between relayed chunks */
		says(d, "\r\nShim: recording failed; this session is no longer "
			"fully recorded\r\n");
	}
	log_err("session %s: recording degraded: %s (on_failure: %s)",
		d->session_id, rs.failure,
		d->cfg.on_failure == SHIM_ON_FAILURE_STOP ? "stop" : "continue");
	if (shim_event_init(&ev, "recording_failed", SHIM_SEV_ERR,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "session", d->session_id);
		shim_event_add(&ev, "technician", d->tech_id);
		shim_event_add(&ev, "reason", rs.failure);
		shim_event_add(&ev, "on_failure",
			       d->cfg.on_failure == SHIM_ON_FAILURE_STOP ?
				       "stop" : "continue");
		shimd_emit(d, &ev);
	}
	if (strstr(rs.failure, "space") != NULL ||
	    strstr(rs.failure, "ENOSPC") != NULL) {
		emit_simple(d, "storage_low", SHIM_SEV_ERR, "reason", rs.failure);
	}
}

/* Relays until nothing moves (bounded, so timers and signals are not
 * starved): fewer trips through poll() when traffic is heavy. */
static void relay_run(struct shimd *d)
{
	int i;

	for (i = 0; i < 16 && d->state == SHIM_ST_OPEN; i++) {
		uint64_t moved = d->in.bytes + d->out.bytes;
		size_t lin = d->in.len, lout = d->out.len;

		relay_step(d);
		if (d->in.bytes + d->out.bytes == moved && d->in.len == lin &&
		    d->out.len == lout) {
			break;
		}
	}
}

/* ---- endpoints ----------------------------------------------------------- */

static void on_device_lost(struct shimd *d)
{
	int rc;

	if (d->state == SHIM_ST_OPEN) {
		log_warn("device side lost during session %s", d->session_id);
		shimd_end_session(d, "device_disconnect");
	} else {
		log_warn("device side lost");
	}
	if (d->dev.is_pty) {
		rc = shim_serial_pty_renew(&d->dev);
		if (rc < 0) {
			log_err("device pty %s: %s", d->dev.path, shim_strerror(rc));
			d->dev_up = 0;
			shimd_timer_set(d, SHIMD_T_DEVICE, SHIMD_DEVICE_RETRY_MS);
		} else {
			log_info("device side %s renewed: waiting for the device",
				 d->dev.path);
		}
		return;
	}
	shim_serial_close(&d->dev);
	d->dev_up = 0;
	shimd_timer_set(d, SHIMD_T_DEVICE, SHIMD_DEVICE_RETRY_MS);
}

static void device_reopen(struct shimd *d)
{
	int rc;

	timer_ack(d, SHIMD_T_DEVICE);
	if (d->dev_up) {
		return;
	}
	if (d->dev.is_pty) {
		rc = shim_serial_pty_renew(&d->dev);
	} else {
		rc = shim_serial_open(&d->dev, d->cfg.dev_path, &d->cfg.dev_serial);
	}
	if (rc < 0) {
		log_debug("device %s: %s", d->cfg.dev_path, shim_strerror(rc));
		shimd_timer_set(d, SHIMD_T_DEVICE, SHIMD_DEVICE_RETRY_MS);
		return;
	}
	d->dev_up = 1;
	log_info("device side %s connected", d->cfg.dev_path);
}

static void on_tech_hangup(struct shimd *d)
{
	int rc;

	log_info("technician hung up (%s)", d->tech.path);
	shimd_timer_set(d, SHIMD_T_SETTLE, 0);
	d->tech_present = 0;
	d->msg_len = 0;
	shim_lineedit_init(&d->le);
	if (d->tech.is_pty) {
		rc = shim_serial_pty_renew(&d->tech);
		if (rc < 0) {
			log_err("technician pty %s: %s", d->tech.path,
				shim_strerror(rc));
			shimd_timer_set(d, SHIMD_T_TECH, SHIMD_DEVICE_RETRY_MS);
		}
	} else if (d->tech.cfg.presence == SHIM_PRESENCE_NONE) {
		/* a tty that reported a hang-up is gone (USB unplugged) */
		shim_serial_close(&d->tech);
		shimd_timer_set(d, SHIMD_T_TECH, SHIMD_DEVICE_RETRY_MS);
	}
	if (d->state == SHIM_ST_OPEN) {
		if (d->grace) {
			/* whoever was at the prompt meanwhile left too */
			return;
		}
		rec_meta(d, "technician_hangup", d->tech_id);
		if (d->cfg.reconnect_grace > 0) {
			/* The session waits for its technician, who must
			 * authenticate again; the line is closed meanwhile. */
			d->grace = 1;
			d->grace_since_mono = shimd_mono_ns();
			relay_clear(&d->in);
			log_info("session %s: reconnect grace %.0f s", d->session_id,
				 d->cfg.reconnect_grace);
			shimd_timer_set(d, SHIMD_T_GRACE,
					secs_to_ms(d->cfg.reconnect_grace));
			return;
		}
		shimd_end_session(d, "technician_disconnect");
		return;
	}
	if (d->state == SHIM_ST_CHALLENGE) {
		set_state(d, SHIM_SM_HANGUP, "technician hung up");
	}
}

static void on_tech_connect(struct shimd *d, const char *cause)
{
	d->tech_present = 1;
	if (d->state == SHIM_ST_OPEN) {
		if (d->grace) {
			/* Nobody can tell who this is: the normal prompt. The
			 * session's technician gets it back with a fresh code;
			 * anyone else starts a new session. */
			log_info("session %s: someone connected during the reconnect "
				 "grace: prompting", d->session_id);
			d->fail_delay = 0;
			shimd_timer_set(d, SHIMD_T_FAIL_DELAY, 0);
			show_prompt(d);
		}
		return;
	}
	if (d->state == SHIM_ST_EMERGENCY_STOP) {
		says(d, "\r\nEMERGENCY STOP\r\n");
		return;
	}
	if (d->state == SHIM_ST_LOCKED) {
		says(d, "\r\nShim locked: too many failures, try later\r\n");
		return;
	}
	to_challenge(d, cause);
}

static void tech_reopen(struct shimd *d)
{
	int rc;

	timer_ack(d, SHIMD_T_TECH);
	if (d->tech.fd >= 0) {
		return;
	}
	if (d->tech.is_pty) {
		rc = shim_serial_pty_renew(&d->tech);
	} else {
		rc = shim_serial_open(&d->tech, d->cfg.tech_path,
				      &d->cfg.tech_serial);
	}
	if (rc < 0) {
		shimd_timer_set(d, SHIMD_T_TECH, SHIMD_DEVICE_RETRY_MS);
		return;
	}
	log_info("technician side %s open", d->cfg.tech_path);
	if (!d->tech.is_pty && shim_serial_presence(&d->tech)) {
		on_tech_connect(d, "technician line back");
	}
}

static void presence_check(struct shimd *d)
{
	int p;

	timer_ack(d, SHIMD_T_PRESENCE);
	shimd_timer_set(d, SHIMD_T_PRESENCE, SHIMD_PRESENCE_POLL_MS);
	if (d->tech.fd < 0) {
		return;
	}
	p = shim_serial_presence(&d->tech);
	if (p && !d->tech_present) {
		on_tech_connect(d, d->tech.cfg.presence == SHIM_PRESENCE_DCD ?
					   "DCD raised" : "DSR raised");
	} else if (!p && d->tech_present) {
		on_tech_hangup(d);
	}
}

/* ---- emergency stop -------------------------------------------------------- */

void shimd_emergency_stop(struct shimd *d, const char *event,
			  const char *detail)
{
	char reason[96];
	int already = d->state == SHIM_ST_EMERGENCY_STOP;

	/* Close the gate before anything else: nothing held is forwarded,
	 * and the loop reads neither side again outside OPEN. */
	d->estop_ns = shimd_wall_ns();
	relay_clear(&d->in);
	relay_clear(&d->out);
	/* bytes already queued in the kernel for either line stay there */
	shim_serial_flush_output(&d->dev);
	shim_serial_flush_output(&d->tech);
	snprintf(reason, sizeof(reason), "tamper:%s", event);
	if (d->state == SHIM_ST_OPEN) {
		enum shim_state keep = d->state;

		/* end the session without the usual return to CHALLENGE */
		d->state = SHIM_ST_EMERGENCY_STOP;
		shimd_end_session(d, reason);
		d->state = keep;
	}
	if (!already) {
		snprintf(d->estop_event, sizeof(d->estop_event), "%s", event);
		set_state(d, SHIM_SM_TAMPER, event);
	}
	if (d->state != SHIM_ST_EMERGENCY_STOP) {
		/* the table always allows it; be certain anyway */
		d->state = SHIM_ST_EMERGENCY_STOP;
	}
	d->fail_delay = 0;
	shim_lineedit_reset(&d->le);
	d->msg_len = 0;
	says(d, "\r\nEMERGENCY STOP\r\n");
	log_err("EMERGENCY STOP: %s%s%s", event, detail ? ": " : "",
		detail ? detail : "");
	/* Then latch (persisted) and report in the priority lane. */
	if (!shim_tamper_is_latched(&d->tamper)) {
		shimd_tamper_latch(d, event, detail ? detail : "");
	}
}

void shimd_estop_cleared(struct shimd *d)
{
	set_state(d, SHIM_SM_ESTOP_RESET, "authorised reset");
	if (d->tech_present) {
		set_state(d, SHIM_SM_CONNECT, "technician present");
		show_prompt(d);
	}
}

/* ---- watches ------------------------------------------------------------- */

int shimd_watch_add(struct shimd *d, int fd, short events, shimd_watch_cb cb,
		    void *arg)
{
	if (d->nwatches >= SHIMD_MAX_WATCHES) {
		return SHIM_ENOSPC;
	}
	d->watches[d->nwatches].fd = fd;
	d->watches[d->nwatches].events = events;
	d->watches[d->nwatches].cb = cb;
	d->watches[d->nwatches].arg = arg;
	d->nwatches++;
	return 0;
}

void shimd_watch_remove(struct shimd *d, int fd)
{
	size_t i;

	for (i = 0; i < d->nwatches; i++) {
		if (d->watches[i].fd == fd) {
			d->watches[i] = d->watches[d->nwatches - 1];
			d->nwatches--;
			return;
		}
	}
}

/* ---- admin actions ---------------------------------------------------------- */

int shimd_reset_lockout(struct shimd *d, const char *id, const char *who)
{
	int64_t now = shimd_wall_ns() / 1000000000LL;
	int rc;

	rc = shim_gate_reset_lockout(&d->gate, id, now);
	log_info("admin %s: reset-lockout %s: %s", who, id,
		 rc == 0 ? "cleared" : shim_strerror(rc));
	if (d->state == SHIM_ST_LOCKED) {
		shimd_timer_set(d, SHIMD_T_LOCK, 0);
		set_state(d, SHIM_SM_UNLOCK, "admin reset");
		if (d->tech_present) {
			show_prompt(d);
		} else {
			set_state(d, SHIM_SM_HANGUP, "technician absent");
		}
		return 0;
	}
	return rc;
}

int shimd_gate_reset_state(struct shimd *d, const char *who)
{
	struct shim_event ev;
	int64_t now = shimd_wall_ns() / 1000000000LL;
	int rc;

	rc = shim_gate_reset_state(&d->gate, now);
	log_warn("admin %s: gate state reset: %s", who,
		 rc == 0 ? "every code up to now counts as used" :
			   shim_strerror(rc));
	if (shim_event_init(&ev, "gate_state_reset", SHIM_SEV_WARNING,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "by", who);
		shim_event_add(&ev, "result", rc == 0 ? "done" : shim_strerror(rc));
		shimd_emit(d, &ev);
	}
	return rc;
}

/* ---- clock trust ------------------------------------------------------------ */

static int unit_started_before(struct shimd *d)
{
	uint8_t buf[16];
	size_t len = 0;
	int rc;

	rc = d->lp.port.store.load(d->lp.port.store.ctx, SHIM_TAMPER_BLOB_BOOT,
				   buf, sizeof(buf), &len);
	/* present (too big for the probe buffer is present too) or not
	 * readable: either way not a factory-fresh unit */
	return rc != SHIM_ENOENT;
}

void shimd_clock_report(struct shimd *d, const struct shim_clock_report *rep)
{
	struct shim_event ev;
	int64_t now = 0;

	if (rep != NULL && rep->jumped) {
		log_err("clock jump: wall clock %" PRId64 ", trusted clock %" PRId64
			" (%+" PRId64 " s): codes, deletions and token expiry "
			"refused until it is back or confirmed (shimctl clock trust)",
			rep->wall, rep->expected, rep->wall - rep->expected);
		if (shim_event_init(&ev, "clock_jump", SHIM_SEV_ERR,
				    shimd_wall_ns()) == 0) {
			ev.priority = 1;
			shim_event_add_i64(&ev, "wall", rep->wall);
			shim_event_add_i64(&ev, "expected", rep->expected);
			shim_event_add_i64(&ev, "offset", rep->wall - rep->expected);
			shimd_emit(d, &ev);
		}
	}
	if (rep != NULL && rep->recovered) {
		log_warn("clock back within %u s of the trusted clock",
			 (unsigned)d->clock.cfg.max_jump);
		emit_simple(d, "clock_recovered", SHIM_SEV_NOTICE, "reason", "within_bound");
	}
	/* Retention deletes only against a trusted time. */
	if (d->rec != NULL) {
		if (shim_clock_trusted_now(&d->clock, &now) < 0) {
			now = 0;
		}
		shim_recorder_set_trusted_time(d->rec, now);
	}
}

void shimd_clock_tick(struct shimd *d)
{
	struct shim_clock_report rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	shim_clock_check(&d->clock, &rep);
	shimd_clock_report(d, &rep);
	if (rep.verdict == SHIM_CLOCK_TRUSTED) {
		rc = shim_clock_save(&d->clock);
		if (rc < 0) {
			log_warn("clock floor not saved: %s", shim_strerror(rc));
		}
	}
}

int shimd_clock_trust(struct shimd *d, const char *who, char *msg, size_t cap)
{
	struct shim_event ev;
	int64_t before = shim_clock_floor(&d->clock);
	int rc;

	rc = shim_clock_confirm(&d->clock, "admin");
	log_warn("admin %s: clock trusted as it is now (floor was %" PRId64
		 "): %s", who, before, rc == 0 ? "done" : shim_strerror(rc));
	if (shim_event_init(&ev, "clock_confirmed", SHIM_SEV_WARNING,
			    shimd_wall_ns()) == 0) {
		ev.priority = 1;
		shim_event_add(&ev, "source", "admin");
		shim_event_add(&ev, "by", who);
		shim_event_add_i64(&ev, "previous_floor", before);
		shim_event_add(&ev, "result", rc == 0 ? "done" : shim_strerror(rc));
		shimd_emit(d, &ev);
	}
	if (rc < 0) {
		snprintf(msg, cap, "error: clock not trusted: %s", shim_strerror(rc));
		return rc;
	}
	shimd_clock_report(d, NULL);
	snprintf(msg, cap, "clock trusted from now on (wall %" PRId64 ")",
		 (int64_t)(shimd_wall_ns() / 1000000000LL));
	return 0;
}

size_t shimd_clock_status(struct shimd *d, char *buf, size_t cap)
{
	int64_t wall = shimd_wall_ns() / 1000000000LL;
	enum shim_clock_verdict v = shim_clock_peek(&d->clock, wall);
	int n;

	n = snprintf(buf, cap,
		     "clock: %s\n"
		     "wall: %" PRId64 "\n"
		     "floor: %" PRId64 "\n"
		     "max_jump: %u\n"
		     "confirmed_by: %s\n",
		     shim_clock_verdict_name(v), wall, shim_clock_floor(&d->clock),
		     (unsigned)d->clock.cfg.max_jump,
		     shim_clock_source(&d->clock)[0] ? shim_clock_source(&d->clock) :
						       "-");
	if (n < 0) {
		return 0;
	}
	return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static const char *iso_time(int64_t ns, char *buf, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

size_t shimd_status_text(struct shimd *d, char *buf, size_t cap)
{
	struct shim_recorder_status rs;
	struct shim_eventlog_status es;
	int64_t now_ns = shimd_wall_ns();
	int64_t now = now_ns / 1000000000LL;
	char since[32], started[32];
	char latch[SHIM_LATCH_ID_MAX];
	enum shim_clock_verdict clock = shim_clock_peek(&d->clock, now);
	int n;

	memset(&rs, 0, sizeof(rs));
	memset(&es, 0, sizeof(es));
	if (d->rec != NULL) {
		shim_recorder_status(d->rec, &rs);
	}
	if (d->evlog != NULL) {
		shim_eventlog_status(d->evlog, &es);
	}
	n = snprintf(buf, cap,
		     "shim_id: %s\n"
		     "state: %s\n"
		     "since: %s\n"
		     "technician: %s\n"
		     "session: %s\n"
		     "session_started: %s\n"
		     "bytes_in: %" PRIu64 "\n"
		     "bytes_out: %" PRIu64 "\n"
		     "technician_side: %s (%s)\n"
		     "device_side: %s (%s)\n"
		     "lockouts: %zu\n"
		     "clock: %s\n"
		     "recording: %s%s%s\n"
		     "storage_used: %" PRIu64 "\n"
		     "siem_link: %s\n"
		     "siem_spool: %" PRIu64 "\n"
		     "emergency_stop: %s\n"
		     "tamper_latch: %s\n",
		     d->cfg.shim_id ? d->cfg.shim_id : "",
		     shim_state_name(d->state),
		     iso_time(d->state_since_ns, since, sizeof(since)),
		     d->state == SHIM_ST_OPEN ? d->tech_id : "-",
		     d->state == SHIM_ST_OPEN ? d->session_id : "-",
		     d->state == SHIM_ST_OPEN ?
			     iso_time(d->session_start_wall, started,
				      sizeof(started)) : "-",
		     d->state == SHIM_ST_OPEN ? d->in.bytes : 0,
		     d->state == SHIM_ST_OPEN ? d->out.bytes : 0,
		     d->cfg.tech_path,
		     d->tech_present ? (d->grace ? "reconnect grace" :
				       "connected") : "absent",
		     d->cfg.dev_path, d->dev_up ? "open" : "absent",
		     shim_gate_lockouts(&d->gate, now),
		     clock == SHIM_CLOCK_TRUSTED ? "ok" :
						   shim_clock_verdict_name(clock),
		     rs.failed ? "failed" : "ok", rs.failed ? ": " : "",
		     rs.failed ? rs.failure : "", rs.storage_used,
		     es.link_up ? "up" : (es.link_error[0] ? es.link_error :
				       "down"),
		     es.spool_depth,
		     d->state == SHIM_ST_EMERGENCY_STOP ? d->estop_event : "no",
		     shimd_latch_id(d, latch));
	if (n < 0) {
		return 0;
	}
	return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* ---- signals -------------------------------------------------------------- */

static void on_signal(struct shimd *d)
{
	struct signalfd_siginfo si;

	while (read(d->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: shutting down", si.ssi_signo);
			d->stop = 1;
			break;
		case SIGHUP:
			log_info("SIGHUP ignored: no live reconfiguration");
			break;
		default:
			break;
		}
	}
}

/* ---- the loop ------------------------------------------------------------ */

enum {
	SLOT_TECH = 0, SLOT_TECH_WATCH, SLOT_DEV, SLOT_DEV_WATCH, SLOT_REC,
	SLOT_SIGNAL, SLOT_ADMIN, SLOT_TIMER0,
	SLOT_ADMIN_CLIENT0 = SLOT_TIMER0 + SHIMD_T__COUNT,
	SLOT_WATCH0 = SLOT_ADMIN_CLIENT0 + SHIMD_ADMIN_CLIENTS,
	SLOT__COUNT = SLOT_WATCH0 + SHIMD_MAX_WATCHES,
};

static void build_pollset(struct shimd *d, struct pollfd *p)
{
	size_t i;
	int open = d->state == SHIM_ST_OPEN;

	for (i = 0; i < SLOT__COUNT; i++) {
		p[i].fd = -1;
		p[i].events = 0;
		p[i].revents = 0;
	}
	if (d->tech.fd >= 0) {
		p[SLOT_TECH].fd = d->tech.fd;
		if (!open) {
			p[SLOT_TECH].events = POLLIN;
			if (d->msg_len > 0) {
				p[SLOT_TECH].events |= POLLOUT;
			}
		} else if (!d->grace) {
			if (d->in.len == 0) {
				p[SLOT_TECH].events |= POLLIN;
			}
			if (d->msg_len > 0 || (d->out.len > 0 && d->out.recorded)) {
				p[SLOT_TECH].events |= POLLOUT;
			}
		} else if (d->tech_present) {
			/* someone at the prompt during the reconnect grace */
			p[SLOT_TECH].events = POLLIN;
			if (d->msg_len > 0) {
				p[SLOT_TECH].events |= POLLOUT;
			}
		}
		if (d->tech.is_pty && !d->tech.peer_open && d->tech_present == 0) {
			/* a fresh pty: nothing to read until a peer opens it */
			p[SLOT_TECH].events &= (short)~POLLIN;
		}
	}
	p[SLOT_TECH_WATCH].fd = d->tech.watch_fd;
	p[SLOT_TECH_WATCH].events = POLLIN;
	if (d->dev.fd >= 0) {
		p[SLOT_DEV].fd = d->dev.fd;
		if (!open || d->out.len == 0) {
			p[SLOT_DEV].events = POLLIN;
		}
		if (open && d->in.len > 0 && d->in.recorded) {
			p[SLOT_DEV].events |= POLLOUT;
		}
	}
	p[SLOT_DEV_WATCH].fd = d->dev.watch_fd;
	p[SLOT_DEV_WATCH].events = POLLIN;
	if (d->rec != NULL) {
		p[SLOT_REC].fd = shim_recorder_fd(d->rec);
		p[SLOT_REC].events = POLLIN;
	}
	p[SLOT_SIGNAL].fd = d->signal_fd;
	p[SLOT_SIGNAL].events = POLLIN;
	p[SLOT_ADMIN].fd = d->admin_fd;
	p[SLOT_ADMIN].events = POLLIN;
	for (i = 0; i < SHIMD_T__COUNT; i++) {
		p[SLOT_TIMER0 + i].fd = d->timer_fd[i];
		p[SLOT_TIMER0 + i].events = POLLIN;
	}
	for (i = 0; i < SHIMD_ADMIN_CLIENTS; i++) {
		p[SLOT_ADMIN_CLIENT0 + i].fd = d->admin[i].fd;
		p[SLOT_ADMIN_CLIENT0 + i].events = POLLIN;
	}
	for (i = 0; i < d->nwatches; i++) {
		p[SLOT_WATCH0 + i].fd = d->watches[i].fd;
		p[SLOT_WATCH0 + i].events = d->watches[i].events;
	}
}

/* Device output outside OPEN is read and dropped: it never reaches the
 * technician, and the device is not left blocked on a full line. */
static void dev_drain(struct shimd *d)
{
	uint8_t buf[512];
	int n, brk, rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		n = shim_serial_read(&d->dev, buf, sizeof(buf), &brk);
		if (n == SHIM_EDISCONN) {
			on_device_lost(d);
			return;
		}
		if (n <= 0) {
			return;
		}
		log_debug("dropped %d device bytes outside a session", n);
	}
}

static void on_timer(struct shimd *d, enum shimd_timer t)
{
	int64_t now, left;

	switch (t) {
	case SHIMD_T_FAIL_DELAY:
		timer_ack(d, t);
		if (d->fail_delay) {
			d->fail_delay = 0;
			if (dialogue_open(d)) {
				show_prompt(d);
			}
		}
		break;
	case SHIMD_T_IDLE:
		timer_ack(d, t);
		if (d->state != SHIM_ST_OPEN) {
			break;
		}
		now = shimd_mono_ns();
		left = d->last_input_mono +
		       (int64_t)secs_to_ms(d->cfg.idle_timeout) * 1000000LL - now;
		if (left > 0) {
			shimd_timer_set(d, t, (uint64_t)(left / 1000000 + 1));
		} else {
			shimd_end_session(d, "idle_timeout");
		}
		break;
	case SHIMD_T_MAX:
		timer_ack(d, t);
		if (d->state == SHIM_ST_OPEN) {
			shimd_end_session(d, "max_duration");
		}
		break;
	case SHIMD_T_GRACE:
		timer_ack(d, t);
		if (d->state == SHIM_ST_OPEN && d->grace) {
			shimd_end_session(d, "technician_disconnect");
		}
		break;
	case SHIMD_T_LOCK:
		timer_ack(d, t);
		if (d->state == SHIM_ST_LOCKED) {
			set_state(d, SHIM_SM_UNLOCK, "lock expired");
			if (d->tech_present) {
				show_prompt(d);
			} else {
				set_state(d, SHIM_SM_HANGUP, "technician absent");
			}
		}
		break;
	case SHIMD_T_DEVICE:
		device_reopen(d);
		break;
	case SHIMD_T_TECH:
		tech_reopen(d);
		break;
	case SHIMD_T_PRESENCE:
		presence_check(d);
		break;
	case SHIMD_T_SETTLE:
		timer_ack(d, t);
		on_tech_connect(d, "technician opened the line");
		break;
	case SHIMD_T_SENSORS:
		timer_ack(d, t);
		shimd_sensors_service(d);
		break;
	case SHIMD_T_HEARTBEAT:
		timer_ack(d, t);
		shimd_heartbeat_tick(d);
		break;
	case SHIMD_T_ADMIN:
		timer_ack(d, t);
		shimd_admin_expire(d);
		break;
	case SHIMD_T_DEVRESET:
		device_reset_done(d);
		break;
	default:
		timer_ack(d, t);
		break;
	}
}

int shimd_run(struct shimd *d)
{
	struct pollfd p[SLOT__COUNT];
	size_t i;
	int n;

	while (!d->stop) {
		build_pollset(d, p);
		n = poll(p, SLOT__COUNT, -1);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			log_err("poll: %s", strerror(errno));
			d->exit_code = 1;
			break;
		}
		/* Signals and sensors first: they may close the gate. */
		if (p[SLOT_SIGNAL].revents) {
			on_signal(d);
			if (d->stop) {
				break;
			}
		}
		for (i = 0; i < d->nwatches; i++) {
			if (p[SLOT_WATCH0 + i].revents && d->watches[i].cb) {
				d->watches[i].cb(d, p[SLOT_WATCH0 + i].fd,
						 p[SLOT_WATCH0 + i].revents,
						 d->watches[i].arg);
			}
		}
		if (p[SLOT_REC].revents) {
			shim_recorder_ack(d->rec);
			d->rec_wait = 0;
			rec_check(d);
		}
		for (i = 0; i < SHIMD_T__COUNT; i++) {
			if (p[SLOT_TIMER0 + i].revents) {
				on_timer(d, (enum shimd_timer)i);
			}
		}
		if (p[SLOT_TECH_WATCH].revents &&
		    shim_serial_pty_check_open(&d->tech)) {
			if (d->state == SHIM_ST_OPEN) {
				/* back within the reconnect grace: no prompt */
				on_tech_connect(d, "technician reconnected");
			} else {
				shimd_timer_set(d, SHIMD_T_SETTLE,
						SHIMD_SETTLE_MS);
			}
		}
		if (p[SLOT_DEV_WATCH].revents &&
		    shim_serial_pty_check_open(&d->dev)) {
			log_info("device side opened (%s)", d->dev.path);
		}
		if (d->state == SHIM_ST_OPEN) {
			if (p[SLOT_TECH].revents & POLLOUT) {
				msg_flush(d);
			}
			if (d->grace && d->tech_present &&
			    (p[SLOT_TECH].revents & (POLLIN | POLLHUP | POLLERR))) {
				tech_input_closed(d);
			}
			if (d->state == SHIM_ST_OPEN &&
			    (p[SLOT_TECH].revents | p[SLOT_DEV].revents) &&
			    (d->msg_len == 0 || d->grace)) {
				relay_run(d);
			}
			if (d->state == SHIM_ST_OPEN &&
			    (p[SLOT_TECH].revents & (POLLHUP | POLLERR)) &&
			    !(p[SLOT_TECH].revents & POLLIN) && !d->grace) {
				on_tech_hangup(d);
			}
			if (d->state == SHIM_ST_OPEN &&
			    (p[SLOT_DEV].revents & (POLLHUP | POLLERR)) &&
			    !(p[SLOT_DEV].revents & POLLIN)) {
				on_device_lost(d);
			}
		} else {
			if (p[SLOT_TECH].revents & POLLOUT) {
				msg_flush(d);
			}
			if (p[SLOT_TECH].revents & (POLLIN | POLLHUP | POLLERR)) {
				tech_input_closed(d);
			}
			if (p[SLOT_DEV].revents & (POLLIN | POLLHUP | POLLERR)) {
				dev_drain(d);
			}
		}
		if (p[SLOT_ADMIN].revents) {
			shimd_admin_accept(d);
		}
		for (i = 0; i < SHIMD_ADMIN_CLIENTS; i++) {
			if (p[SLOT_ADMIN_CLIENT0 + i].revents) {
				shimd_admin_client_io(d, &d->admin[i]);
			}
		}
		/* A session that just opened may have bytes waiting already. */
		if (d->state == SHIM_ST_OPEN && !d->rec_wait &&
		    (d->msg_len == 0 || d->grace) &&
		    ((d->in.len > 0 && !d->in.recorded) ||
		     (d->out.len > 0 && !d->out.recorded))) {
			relay_step(d);
		}
	}
	/* SIGTERM or the power-fail input: end the session, say so, report
	 * the expected absence with a signed shutting_down. */
	{
		int pf = strcmp(d->stop_reason, "power_fail") == 0;

		if (d->state == SHIM_ST_OPEN) {
			shimd_end_session(d, pf ? "power_loss" : "shutdown");
		}
		if (d->tech_present) {
			d->msg_len = 0;
			says(d, "\r\nShim shutting down\r\n");
		}
		shimd_heartbeat_shutdown(d, pf ? "power_fail" :
					 d->exit_code == 0 ? "sigterm" : "error");
	}
	return d->exit_code;
}

/* ---- start-up -------------------------------------------------------------- */

static int open_timers(struct shimd *d)
{
	sigset_t set;
	size_t i;

	for (i = 0; i < SHIMD_T__COUNT; i++) {
		d->timer_fd[i] = timerfd_create(CLOCK_MONOTONIC,
						TFD_NONBLOCK | TFD_CLOEXEC);
		if (d->timer_fd[i] < 0) {
			return shim_err_from_errno(errno);
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		return shim_err_from_errno(errno);
	}
	d->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->signal_fd < 0) {
		return shim_err_from_errno(errno);
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void on_recovered(void *arg, const char *session_id, uint64_t records)
{
	struct shimd *d = arg;
	struct shim_event ev;

	log_warn("session %s had no footer: sealed as power_loss_recovered "
		 "(%" PRIu64 " records)", session_id, records);
	if (shim_event_init(&ev, "session_end", SHIM_SEV_WARNING,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "session", session_id);
		shim_event_add(&ev, "reason", "power_loss_recovered");
		shim_event_add_u64(&ev, "records", records);
		shimd_emit(d, &ev);
	}
}

/* The storage root must be ours alone before anything is written in it:
 * with a directory others may write to, a link planted there would make
 * shimd write through it to a file elsewhere. Logs the reason. */
/* Retention deleted a recording (called from the recorder's writer
 * thread; the event log is thread-safe). */
static void on_rec_deleted(void *arg, const char *name, int64_t started_s)
{
	struct shimd *d = arg;
	struct shim_event ev;

	if (shim_event_init(&ev, "recording_deleted", SHIM_SEV_NOTICE,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "file", name);
		shim_event_add_i64(&ev, "started", started_s);
		shim_event_add(&ev, "reason", "retention");
		shimd_emit(d, &ev);
	}
}

static int check_storage(const char *root)
{
	char why[640], prefix[4096], probe[4096];
	int fd, n, rc;

	rc = shim_mkdir_p(root, 0700);
	if (rc < 0) {
		log_err("storage %s is not writable: cannot create it: %s", root,
			shim_strerror(rc));
		return rc;
	}
	rc = shim_storage_check(root, why, sizeof(why));
	if (rc < 0) {
		log_err("%s", why);
		return rc;
	}
	/* Writable? A fresh name, created exclusively, never through a
	 * link planted beforehand. */
	n = snprintf(prefix, sizeof(prefix), "%s/.shimd-write-test", root);
	if (n < 0 || (size_t)n >= sizeof(prefix)) {
		return SHIM_EINVAL;
	}
	fd = shim_create_temp(prefix, probe, sizeof(probe), 0600);
	if (fd < 0) {
		log_err("storage %s is not writable: %s", root, shim_strerror(fd));
		return fd;
	}
	unlink(probe);
	close(fd);
	return 0;
}

int shimd_init(struct shimd *d, const struct shim_config *cfg)
{
	char *state_dir = NULL;
	int64_t now;
	size_t i;
	int rc;

	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->tech.fd = d->tech.watch_fd = -1;
	d->dev.fd = d->dev.watch_fd = -1;
	d->signal_fd = -1;
	d->admin_fd = -1;
	d->lock_fd = -1;
	for (i = 0; i < SHIMD_T__COUNT; i++) {
		d->timer_fd[i] = -1;
	}
	for (i = 0; i < SHIMD_ADMIN_CLIENTS; i++) {
		d->admin[i].fd = -1;
	}
	d->state = SHIM_ST_IDLE;
	d->state_since_ns = shimd_wall_ns();

	if (d->cfg.tech_path == NULL || d->cfg.dev_path == NULL) {
		log_err("configuration names no serial endpoints");
		return SHIM_EINVAL;
	}
	rc = check_storage(d->cfg.storage_root);
	if (rc < 0) {
		return rc;
	}
	/* One shimd per storage root: a second one would recover (seal) the
	 * first one's live recording and take its admin socket. */
	{
		char *lock = shim_config_path(&d->cfg, "shimd.lock");

		d->lock_fd = lock ? open(lock, O_RDWR | O_CREAT | O_NOFOLLOW |
						 O_CLOEXEC, 0600) :
				    -1;
		free(lock);
		if (d->lock_fd < 0) {
			log_err("storage %s: cannot create the lock file",
				d->cfg.storage_root);
			return SHIM_EACCES;
		}
		if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			log_err("another shimd is running on storage %s",
				d->cfg.storage_root);
			return SHIM_EEXIST;
		}
	}
	state_dir = shim_config_path(&d->cfg, "state");
	if (state_dir == NULL) {
		return SHIM_ENOMEM;
	}
	rc = shim_linux_port_init(&d->lp, state_dir);
	free(state_dir);
	if (rc < 0) {
		log_err("state directory under %s: %s", d->cfg.storage_root,
			shim_strerror(rc));
		return rc;
	}
	/* The device identity signs recording footers and events. */
	rc = shim_keys_ensure_identity(&d->cfg);
	if (rc == 0) {
		char *idpath = shim_keys_identity_path(&d->cfg);

		rc = idpath ? shim_linux_port_load_identity(&d->lp, idpath) :
			      SHIM_ENOMEM;
		free(idpath);
	}
	if (rc < 0) {
		log_err("device identity key under %s: %s", d->cfg.storage_root,
			shim_strerror(rc));
		return rc;
	}
	rc = open_timers(d);
	if (rc < 0) {
		log_err("timers: %s", shim_strerror(rc));
		return rc;
	}

	rc = shim_eventlog_open(&d->evlog, &d->cfg, &d->lp.port);
	if (rc < 0) {
		log_err("event log under %s: %s", d->cfg.storage_root,
			shim_strerror(rc));
		return rc;
	}

	{
		struct shim_clock_cfg ccfg;

		shim_clock_cfg_default(&ccfg);
		/* A unit that has started before has a signed boot record
		 * (written after the gate state and the clock floor at every
		 * start): their absence then is loss or tampering, not a
		 * fresh start. */
		d->cfg.gate.state_required = unit_started_before(d);
		ccfg.state_required = d->cfg.gate.state_required;
		ccfg.max_jump = (uint32_t)d->cfg.clock_max_jump; /* 5..86400 */
		rc = shim_clock_init(&d->clock, &ccfg, &d->lp.port);
		if (rc == SHIM_EINVAL) {
			log_err("clock: %s", shim_strerror(rc));
			return rc;
		}
		if (rc < 0) {
			log_err("clock floor: %s: the clock is untrusted until an "
				"operator confirms it", shim_strerror(rc));
		}
	}
	d->gate_scratch_cap = shim_gate_scratch_size(d->cfg.ntechs);
	d->gate_scratch = calloc(1, d->gate_scratch_cap ? d->gate_scratch_cap : 1);
	if (d->gate_scratch == NULL) {
		return SHIM_ENOMEM;
	}
	rc = shim_gate_init(&d->gate, &d->cfg.gate, d->cfg.techs, d->cfg.ntechs,
			    &d->lp.port, &d->clock, d->gate_scratch,
			    d->gate_scratch_cap);
	if (rc < 0) {
		/* The gate refuses every code until an operator decides. */
		const char *what = rc == SHIM_ENOENT ? "missing" :
				   rc == SHIM_ECORRUPT ? "corrupt" : "unreadable";

		log_err("gate state %s (%s): every code is refused until "
			"shimctl gate reset-state", what, shim_strerror(rc));
		emit_simple(d, "gate_state_lost", SHIM_SEV_ERR, "reason", what);
	}
	now = shimd_wall_ns() / 1000000000LL;
	{
		enum shim_clock_verdict v = shim_clock_peek(&d->clock, now);

		if (v == SHIM_CLOCK_UNCONFIRMED) {
			log_warn("the wall clock is ahead of the last trusted "
				 "time: it is confirmed by the next valid code "
				 "or an operator");
		} else if (v != SHIM_CLOCK_TRUSTED) {
			log_warn("the wall clock is not trusted: codes are "
				 "refused until it is set or confirmed");
		}
	}

	/* A relayed chunk must fit the recorder queue with its header. */
	{
		size_t q = d->cfg.queue_bytes >= 4096 ? d->cfg.queue_bytes :
							1024 * 1024;

		d->relay_cap = q / 2 - 64;
		if (d->relay_cap > SHIMD_RELAY_BUF) {
			d->relay_cap = SHIMD_RELAY_BUF;
		}
	}
	rc = shim_recorder_open(&d->rec, &d->cfg, &d->lp.port, on_recovered, d);
	if (rc < 0) {
		log_err("recorder under %s: %s", d->cfg.storage_root,
			shim_strerror(rc));
		return rc;
	}
	shim_recorder_set_on_deleted(d->rec, on_rec_deleted, d);
	shimd_clock_report(d, NULL);
	if (shim_recorder_local_custody(d->rec)) {
		log_warn("recording key custody is local (no recording.public_key): "
			 "whoever takes this shim's storage can read its recordings; "
			 "configure the central recording key (shimctl keygen recording)");
	}

	rc = shim_serial_open(&d->tech, d->cfg.tech_path, &d->cfg.tech_serial);
	if (rc < 0) {
		log_err("technician side %s: %s", d->cfg.tech_path,
			shim_strerror(rc));
		return rc;
	}
	rc = shim_serial_open(&d->dev, d->cfg.dev_path, &d->cfg.dev_serial);
	if (rc < 0) {
		if (!d->cfg.device_retry || shim_serial_is_pty_spec(d->cfg.dev_path,
								    &(const char *){ NULL })) {
			log_err("device side %s: %s", d->cfg.dev_path,
				shim_strerror(rc));
			return rc;
		}
		log_warn("device side %s: %s: retrying", d->cfg.dev_path,
			 shim_strerror(rc));
		d->dev.fd = -1;
		shimd_timer_set(d, SHIMD_T_DEVICE, SHIMD_DEVICE_RETRY_MS);
	} else {
		d->dev_up = 1;
	}

	rc = shimd_admin_open(d);
	if (rc < 0) {
		return rc;
	}

	rc = shimd_tamper_init(d);
	if (rc < 0) {
		return rc;
	}

	{
		struct shim_event ev;

		if (shim_event_init(&ev, "boot", SHIM_SEV_NOTICE,
				    shimd_wall_ns()) == 0) {
			shim_event_add(&ev, "version", SHIM_VERSION);
			shim_event_add(&ev, "state", shim_state_name(d->state));
			shim_event_add_u64(&ev, "boot_count", d->tamper.boot_count);
			shimd_emit(d, &ev);
		}
	}
	log_info("shimd %s: technician side %s, device side %s, %zu technicians",
		 SHIM_VERSION, d->cfg.tech_path, d->cfg.dev_path, d->cfg.ntechs);

	if (!d->tech.is_pty) {
		if (d->tech.cfg.presence == SHIM_PRESENCE_NONE) {
			log_warn("technician side %s is a serial line without a "
				 "presence signal (serial.technician_presence: none): "
				 "an unplugged cable is not noticed, an open session "
				 "ends only by session.idle_timeout or max_duration; "
				 "use dcd or dsr with an adapter that carries them",
				 d->cfg.tech_path);
		}
		if (d->tech.cfg.presence != SHIM_PRESENCE_NONE) {
			shimd_timer_set(d, SHIMD_T_PRESENCE, SHIMD_PRESENCE_POLL_MS);
		}
		if (shim_serial_presence(&d->tech)) {
			on_tech_connect(d, d->tech.cfg.presence ==
						   SHIM_PRESENCE_NONE ?
					   "serial line open" : "presence line up");
		}
	}
	return 0;
}

void shimd_fini(struct shimd *d)
{
	size_t i;

	shimd_admin_close(d);
	shimd_tamper_fini(d);
	if (d->rec != NULL) {
		shim_recorder_close(d->rec, "shutdown");
		d->rec = NULL;
	}
	shim_serial_close(&d->tech);
	shim_serial_close(&d->dev);
	if (d->evlog != NULL) {
		shim_eventlog_close(d->evlog, 2000);
		d->evlog = NULL;
	}
	for (i = 0; i < SHIMD_T__COUNT; i++) {
		if (d->timer_fd[i] >= 0) {
			close(d->timer_fd[i]);
		}
	}
	if (d->signal_fd >= 0) {
		close(d->signal_fd);
	}
	shim_gate_wipe(&d->gate);
	if (d->gate_scratch != NULL) {
		shim_memzero(d->gate_scratch, d->gate_scratch_cap);
		free(d->gate_scratch);
	}
	shim_lineedit_reset(&d->le);
	shim_linux_port_fini(&d->lp);
	shim_config_free(&d->cfg);
	if (d->lock_fd >= 0) {
		close(d->lock_fd);
	}
}
