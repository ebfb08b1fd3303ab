/*
 * The session controller (see controller.h). One state, one dialogue, one
 * session at a time; every action through the ops tables.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "controller.h"
#include "fmt.h"
#include "util.h"

static const char prompt_text[] =
	"\r\nShim MFA gate. Authenticate as: <technician_id> <totp_code>\r\n> ";

static void device_lost(struct shim_ctl *c);
static void tech_gone(struct shim_ctl *c);
static void pump_out(struct shim_ctl *c);
static const char *bg_clock_name(const struct shim_bg_result *bg);

/* shim_ctl_init() refused its arguments, or never ran (the zero value):
 * the ops are not there, so every call is refused without using them. */
static int unready(const struct shim_ctl *c)
{
	return c->port == NULL;
}

/* ---- time, log, events --------------------------------------------------- */

static int64_t wall_ns(const struct shim_ctl *c)
{
	return c->port->clock.wall_ns(c->port->clock.ctx);
}

static int64_t mono_ns(const struct shim_ctl *c)
{
	return c->port->clock.mono_ns(c->port->clock.ctx);
}

void shim_ctl_log(struct shim_ctl *c, enum shim_log_level level,
		  const char *fmt, ...)
{
	char line[320];
	va_list ap;

	if (c->hooks.log == NULL) {
		return;
	}
	va_start(ap, fmt);
	shim_vfmt(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->hooks.log(c->hooks.ctx, level, line);
}

#define LOG_ERR(c, ...) shim_ctl_log(c, SHIM_LOG_ERR, __VA_ARGS__)
#define LOG_WARN(c, ...) shim_ctl_log(c, SHIM_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(c, ...) shim_ctl_log(c, SHIM_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(c, ...) shim_ctl_log(c, SHIM_LOG_DEBUG, __VA_ARGS__)

void shim_ctl_emit(struct shim_ctl *c, struct shim_event *ev)
{
	int rc;

	if (c->sink.emit == NULL) {
		return;
	}
	rc = c->sink.emit(c->sink.ctx, ev);
	if (rc < 0) {
		LOG_ERR(c, "event %s not recorded: %s", ev->name, shim_strerror(rc));
	}
}

/* Starts the controller's event scratch; NULL when the name is refused. */
static struct shim_event *ev_start(struct shim_ctl *c, const char *name,
				   enum shim_severity sev)
{
	if (shim_event_init(&c->ev, name, sev, wall_ns(c)) < 0) {
		return NULL;
	}
	return &c->ev;
}

static void emit_simple(struct shim_ctl *c, const char *name,
			enum shim_severity sev, const char *k, const char *v)
{
	struct shim_event *ev = ev_start(c, name, sev);

	if (ev == NULL) {
		return;
	}
	if (k != NULL) {
		shim_event_add(ev, k, v);
	}
	shim_ctl_emit(c, ev);
}

/* ---- deadlines ------------------------------------------------------------ */

static void arm(struct shim_ctl *c, enum shim_ctl_deadline d, uint32_t ms)
{
	c->deadline[d] = ms > 0 ? mono_ns(c) + (int64_t)ms * 1000000LL : 0;
	if (ms > 0 && c->deadline[d] == 0) {
		c->deadline[d] = 1;
	}
}

static void disarm(struct shim_ctl *c, enum shim_ctl_deadline d)
{
	c->deadline[d] = 0;
}

int64_t shim_ctl_next_deadline(const struct shim_ctl *c)
{
	int64_t next = INT64_MAX;
	int i;

	for (i = 0; i < SHIM_DL__COUNT; i++) {
		if (c->deadline[i] != 0 && c->deadline[i] < next) {
			next = c->deadline[i];
		}
	}
	return next;
}

/* ---- messages to the technician outside the relay ---------------------------- */

static void msg_flush(struct shim_ctl *c)
{
	int n;

	if (c->msg_len == 0) {
		return;
	}
	n = c->io.write(c->io.ctx, SHIM_SIDE_TECH, c->msg, c->msg_len);
	if (n <= 0) {
		/* full (retried on output_ready) or gone (the loop reports
		 * the hang-up it sees on its read side) */
		return;
	}
	if ((size_t)n > c->msg_len) {
		n = (int)c->msg_len;
	}
	memmove(c->msg, c->msg + n, c->msg_len - (size_t)n);
	c->msg_len -= (size_t)n;
}

/* Queues text for the technician; what does not fit is dropped (a
 * technician who does not read cannot grow the shim's memory). */
static void say(struct shim_ctl *c, const void *p, size_t len)
{
	size_t room = sizeof(c->msg) - c->msg_len;

	if (!c->tech_present) {
		/* nobody to tell: nothing waits for whoever comes next */
		return;
	}
	if (len > room && c->msg_hold) {
		/* held text first, rather than lose what follows it */
		msg_flush(c);
		room = sizeof(c->msg) - c->msg_len;
	}
	if (len > room) {
		len = room;
	}
	memcpy(c->msg + c->msg_len, p, len);
	c->msg_len += len;
	if (!c->msg_hold) {
		msg_flush(c);
	}
}

/* Writes the echo held in dialogue_input(); say() writes at once again. */
static void release_echo(struct shim_ctl *c)
{
	c->msg_hold = 0;
	msg_flush(c);
}

static void says(struct shim_ctl *c, const char *s)
{
	say(c, s, strlen(s));
}

static void show_prompt(struct shim_ctl *c)
{
	shim_lineedit_reset(&c->le);
	/* What was typed before the prompt never counts as input. */
	c->io.flush_input(c->io.ctx, SHIM_SIDE_TECH);
	says(c, prompt_text);
}

/* Answers a line that opens no session: one "Auth fail" line, then the
 * failure delay (input is ignored meanwhile). */
static void refuse_line(struct shim_ctl *c, const char *answer)
{
	shim_lineedit_reset(&c->le);
	says(c, answer);
	c->fail_delay = 1;
	arm(c, SHIM_DL_FAIL_DELAY, c->cfg.fail_delay_ms);
}

/* ---- states ----------------------------------------------------------------- */

static void set_state(struct shim_ctl *c, enum shim_sm_event ev,
		      const char *cause)
{
	enum shim_state to;

	if (shim_sm_next(c->state, ev, &to) < 0) {
		LOG_ERR(c, "state %s refuses event %s (%s): closing the gate",
			shim_state_name(c->state), shim_sm_event_name(ev), cause);
		if (c->state == SHIM_ST_OPEN) {
			/* should not happen: the table has every OPEN exit */
			shim_ctl_estop(c, "integrity",
				       "state machine refused a transition");
		}
		return;
	}
	if (to != c->state) {
		LOG_INFO(c, "state %s -> %s (%s: %s)", shim_state_name(c->state),
			 shim_state_name(to), shim_sm_event_name(ev), cause);
		c->state_since_ns = wall_ns(c);
	} else {
		LOG_DEBUG(c, "state %s stays (%s: %s)", shim_state_name(to),
			  shim_sm_event_name(ev), cause);
	}
	c->state = to;
}

int shim_ctl_dialogue_open(const struct shim_ctl *c)
{
	return c->state == SHIM_ST_CHALLENGE ||
	       (c->state == SHIM_ST_OPEN && c->grace && c->tech_present);
}

static void rec_meta(struct shim_ctl *c, const char *name, const char *detail)
{
	int rc;

	if (c->session_id[0] == '\0') {
		return;
	}
	rc = c->rec.meta(c->rec.ctx, name, detail, wall_ns(c), mono_ns(c));
	if (rc < 0) {
		LOG_WARN(c, "session %s: meta record %s not queued: %s",
			 c->session_id, name, shim_strerror(rc));
	}
}

/* Enters CHALLENGE with a prompt, or IDLE when nobody is there. */
static void to_challenge(struct shim_ctl *c, const char *cause)
{
	if (c->stopping || c->state == SHIM_ST_EMERGENCY_STOP ||
	    c->state == SHIM_ST_LOCKED) {
		return;
	}
	if (!c->tech_present) {
		if (c->state == SHIM_ST_CHALLENGE) {
			set_state(c, SHIM_SM_HANGUP, cause);
		}
		return;
	}
	set_state(c, SHIM_SM_CONNECT, cause);
	c->fail_delay = 0;
	disarm(c, SHIM_DL_FAIL_DELAY);
	show_prompt(c);
}

/* ---- sessions ----------------------------------------------------------------- */

static void relay_clear(struct shim_ctl_relay *r)
{
	r->len = 0;
	r->off = 0;
	r->recorded = 0;
}

/* session.device_logout / session.device_reset: the device's service
 * login does not outlive the shim session. The logout bytes go out after
 * the device's output queue was flushed, and are recorded. */
static void device_logout(struct shim_ctl *c)
{
	char shown[256];
	const char *how = "dtr";
	int n, rc;

	if (!c->dev_up) {
		return;
	}
	if (c->cfg.device_logout_len > 0) {
		n = c->io.write(c->io.ctx, SHIM_SIDE_DEV, c->cfg.device_logout,
				c->cfg.device_logout_len);
		shim_sanitize(shown, sizeof(shown),
			      (const char *)c->cfg.device_logout,
			      c->cfg.device_logout_len);
		rec_meta(c, "device_logout", shown);
		if (n < 0 || (size_t)n < c->cfg.device_logout_len) {
			LOG_WARN(c, "session %s: device logout sent %d of %zu bytes",
				 c->session_id, n < 0 ? 0 : n,
				 c->cfg.device_logout_len);
		} else {
			LOG_INFO(c, "session %s: device logout sent", c->session_id);
		}
	}
	if (c->cfg.device_reset == SHIM_CTL_RESET_DTR && !c->dev_resetting) {
		rc = c->io.dev_reset ? c->io.dev_reset(c->io.ctx, 1, &how) :
				       SHIM_ENOTSUP;
		rec_meta(c, "device_reset", how);
		if (rc < 0) {
			LOG_WARN(c, "session %s: device reset not started: %s",
				 c->session_id, shim_strerror(rc));
			return;
		}
		c->dev_resetting = 1;
		arm(c, SHIM_DL_DEVRESET, c->cfg.device_reset_hold_ms);
		if (c->cfg.device_reset_hold_ms == 0) {
			c->deadline[SHIM_DL_DEVRESET] = mono_ns(c);
		}
	}
}

static void device_reset_done(struct shim_ctl *c)
{
	const char *how = "dtr";
	int rc;

	if (!c->dev_resetting) {
		return;
	}
	c->dev_resetting = 0;
	rc = c->io.dev_reset(c->io.ctx, 0, &how);
	if (rc < 0) {
		LOG_WARN(c, "device reset (%s) not ended: %s", how,
			 shim_strerror(rc));
	} else {
		LOG_INFO(c, "device reset (%s) ended after the session", how);
	}
}

/* Seals the open session: the gate closes, the recording gets its
 * footer, the SIEM hears session_end, the session's own technician is
 * told. The state is left to the caller. */
static void session_close(struct shim_ctl *c, const char *reason, int owner,
			  int stranger)
{
	struct shim_event *ev;
	int64_t wall = wall_ns(c);
	int64_t mono = mono_ns(c);
	char line[160];
	int rc;

	/* Nothing is forwarded from here on, and nothing already queued for
	 * either line leaves after it. */
	relay_clear(&c->in);
	relay_clear(&c->out);
	c->io.flush_output(c->io.ctx, SHIM_SIDE_DEV);
	if (!stranger) {
		c->io.flush_output(c->io.ctx, SHIM_SIDE_TECH);
	}
	c->rec_wait = 0;
	c->grace = 0;
	device_logout(c);
	disarm(c, SHIM_DL_IDLE);
	disarm(c, SHIM_DL_MAX);
	disarm(c, SHIM_DL_GRACE);

	rc = c->rec.end(c->rec.ctx, reason, wall, mono);
	if (rc < 0) {
		LOG_ERR(c, "session %s: footer not written: %s", c->session_id,
			shim_strerror(rc));
	}
	LOG_INFO(c, "session %s of %s ended: %s (in %llu bytes, out %llu bytes)",
		 c->session_id, c->tech_id, reason,
		 (unsigned long long)c->in.bytes,
		 (unsigned long long)c->out.bytes);
	LOG_DEBUG(c, "session %s: recorder queue pushed back %llu times",
		  c->session_id, (unsigned long long)c->rec_stalls);
	ev = ev_start(c, "session_end", SHIM_SEV_NOTICE);
	if (ev != NULL) {
		ev->wall_ns = wall;
		shim_event_add(ev, "technician", c->tech_id);
		shim_event_add(ev, "session", c->session_id);
		shim_event_add(ev, "reason", reason);
		shim_event_add_u64(ev, "bytes_in", c->in.bytes);
		shim_event_add_u64(ev, "bytes_out", c->out.bytes);
		shim_event_add_i64(ev, "duration_ms",
				   (mono - c->session_start_mono) / 1000000);
		if (c->bg_serial[0] != '\0') {
			shim_event_add(ev, "breakglass", c->bg_serial);
		}
		shim_ctl_emit(c, ev);
	}
	if (owner) {
		shim_fmt(line, sizeof(line), "\r\nSession %s ended: %s\r\n",
			 c->session_id, reason);
		c->msg_len = 0;
		says(c, line);
	}
	c->session_id[0] = '\0';
	c->tech_id[0] = '\0';
	c->bg_serial[0] = '\0';
}

void shim_ctl_end_session(struct shim_ctl *c, const char *reason)
{
	/* the session's own technician is on the line; or someone else is at
	 * the prompt during the reconnect grace, who hears nothing of it */
	int owner = c->tech_present && !c->grace;
	int stranger = c->tech_present && c->grace;

	if (c->state != SHIM_ST_OPEN) {
		return;
	}
	session_close(c, reason, owner, stranger);
	set_state(c, SHIM_SM_SESSION_END, reason);
	if (owner) {
		to_challenge(c, "session ended");
	} else if (stranger) {
		/* already at the prompt: the dialogue goes on as it is */
		LOG_DEBUG(c, "technician at the prompt keeps the dialogue");
	} else {
		set_state(c, SHIM_SM_HANGUP, "technician absent");
	}
}

/* Opens a session for id, authenticated by res (TOTP) or bg (a verified
 * break-glass code). Returns 0 when OPEN, < 0 when refused (answered). */
static int start_session(struct shim_ctl *c, const char *id,
			 const struct shim_auth_result *res,
			 const struct shim_bg_result *bg)
{
	struct shim_event *ev;
	char line[SHIM_TECH_ID_MAX + SHIM_SESSION_ID_MAX + 64];
	char detail[200];
	int64_t t0 = mono_ns(c);
	uint32_t max_ms;
	int rc;

	shim_fmt(c->tech_id, sizeof(c->tech_id), "%s", id);
	c->session_id[0] = '\0';
	c->bg_serial[0] = '\0';
	rc = c->rec.begin(c->rec.ctx, c->tech_id, c->session_id);
	LOG_DEBUG(c, "recording start took %lld us",
		  (long long)((mono_ns(c) - t0) / 1000));
	if (rc < 0 || c->session_id[0] == '\0') {
		/* Never OPEN without a live recording. */
		LOG_ERR(c, "recording could not start for %s: %s", c->tech_id,
			shim_strerror(rc < 0 ? rc : SHIM_EIO));
		ev = ev_start(c, "auth_fail", SHIM_SEV_WARNING);
		if (ev != NULL) {
			shim_event_add(ev, "technician", c->tech_id);
			shim_event_add(ev, "reason", "recording_unavailable");
			shim_ctl_emit(c, ev);
		}
		c->tech_id[0] = '\0';
		c->session_id[0] = '\0';
		refuse_line(c, "Auth fail: recording unavailable\r\n");
		return SHIM_EIO;
	}
	if (bg != NULL) {
		memcpy(c->bg_serial, bg->serial, sizeof(c->bg_serial));
	}
	c->session_start_mono = mono_ns(c);
	c->session_start_wall = wall_ns(c);
	c->last_input_mono = c->session_start_mono;
	relay_clear(&c->in);
	relay_clear(&c->out);
	c->in.bytes = 0;
	c->out.bytes = 0;
	c->grace = 0;
	c->rec_wait = 0;
	c->rec_stalls = 0;
	c->rec_failure_reported = 0;

	ev = ev_start(c, "auth_ok", SHIM_SEV_NOTICE);
	if (ev != NULL) {
		ev->wall_ns = c->session_start_wall;
		shim_event_add(ev, "technician", c->tech_id);
		if (bg != NULL) {
			shim_event_add(ev, "factor", "breakglass");
			shim_event_add(ev, "breakglass", bg->serial);
		} else {
			shim_event_add_i64(ev, "drift", res->drift);
		}
		shim_ctl_emit(c, ev);
	}
	ev = ev_start(c, "session_start", SHIM_SEV_NOTICE);
	if (ev != NULL) {
		ev->wall_ns = c->session_start_wall;
		shim_event_add(ev, "technician", c->tech_id);
		shim_event_add(ev, "session", c->session_id);
		if (bg != NULL) {
			shim_event_add(ev, "breakglass", bg->serial);
		}
		shim_ctl_emit(c, ev);
	}
	if (bg != NULL) {
		LOG_WARN(c, "auth ok: %s by BREAK-GLASS code %s, session %s",
			 c->tech_id, bg->serial, c->session_id);
	} else {
		LOG_INFO(c, "auth ok: %s (drift %d), session %s", c->tech_id,
			 res->drift, c->session_id);
	}
	rec_meta(c, "session_start", c->tech_id);
	if (bg != NULL) {
		/* the elevated audit: the footer is flagged by the recorder */
		shim_fmt(detail, sizeof(detail),
			 "serial=%s issuer=%s issued=%lld expires=%lld "
			 "technician_bound=%s clock=%s",
			 bg->serial, c->bg->key.key_id, (long long)bg->issued_s,
			 (long long)bg->expires_s, bg->code.bound ? "yes" : "no",
			 bg_clock_name(bg));
		rec_meta(c, "breakglass", detail);
	}
	/* Whatever was typed before the success line (after the code, in
	 * the same write) is not session input: it is dropped. Device output
	 * collected while nobody was authenticated is stale: dropped too,
	 * and before the success line, never after it, since the device may
	 * answer as soon as the technician sees it. */
	c->io.flush_input(c->io.ctx, SHIM_SIDE_TECH);
	c->io.flush_input(c->io.ctx, SHIM_SIDE_DEV);
	shim_fmt(line, sizeof(line), "Authenticated as %s; session %s\r\n",
		 c->tech_id, c->session_id);
	says(c, line);
	max_ms = c->cfg.max_duration_ms;
	if (bg != NULL) {
		max_ms = bg->remaining_s * 1000u;
		if (c->cfg.bg_max_duration_ms != 0 &&
		    c->cfg.bg_max_duration_ms < max_ms) {
			max_ms = c->cfg.bg_max_duration_ms;
		}
		shim_fmt(line, sizeof(line),
			 "BREAK-GLASS session %s: recorded, reported to "
			 "clinical engineering and InfoSec; ends in %u min\r\n",
			 bg->serial, (unsigned)((max_ms + 59999u) / 60000u));
		says(c, line);
	}
	/* The success line goes out before any relayed byte. */
	set_state(c, SHIM_SM_AUTH_OK, "code accepted");
	arm(c, SHIM_DL_IDLE, c->cfg.idle_timeout_ms);
	arm(c, SHIM_DL_MAX, max_ms);
	return 0;
}

/* The session's own technician authenticated again within the reconnect
 * grace: the session and its recording go on. */
static void resume_session(struct shim_ctl *c, const struct shim_auth_result *res)
{
	struct shim_event *ev;
	char line[SHIM_TECH_ID_MAX + SHIM_SESSION_ID_MAX + 64];
	int64_t now = mono_ns(c);
	int64_t away_ms = (now - c->grace_since_mono) / 1000000;

	c->grace = 0;
	disarm(c, SHIM_DL_GRACE);
	c->last_input_mono = now;
	relay_clear(&c->in);
	rec_meta(c, "technician_returned", c->tech_id);
	LOG_INFO(c, "session %s: %s returned after %lld ms (drift %d)",
		 c->session_id, c->tech_id, (long long)away_ms, res->drift);
	ev = ev_start(c, "auth_ok", SHIM_SEV_NOTICE);
	if (ev != NULL) {
		shim_event_add(ev, "technician", c->tech_id);
		shim_event_add_i64(ev, "drift", res->drift);
		shim_event_add(ev, "session", c->session_id);
		shim_ctl_emit(c, ev);
	}
	ev = ev_start(c, "technician_returned", SHIM_SEV_NOTICE);
	if (ev != NULL) {
		shim_event_add(ev, "technician", c->tech_id);
		shim_event_add(ev, "session", c->session_id);
		shim_event_add_i64(ev, "away_ms", away_ms);
		shim_ctl_emit(c, ev);
	}
	c->io.flush_input(c->io.ctx, SHIM_SIDE_TECH);
	shim_fmt(line, sizeof(line),
		 "Authenticated as %s; session %s\r\nSession resumed\r\n",
		 c->tech_id, c->session_id);
	says(c, line);
	shim_lineedit_reset(&c->le);
	/* device output held during the absence follows the success line */
	pump_out(c);
}

/* The conditions for opening a session that are not the code: a device
 * that is there and not being reset, and (with storage) room to record.
 * Returns 1 after answering the technician when one fails. */
static int session_refused(struct shim_ctl *c, const char *who, int storage)
{
	int rc;

	if (c->dev_up && c->io.dev_alive != NULL &&
	    !c->io.dev_alive(c->io.ctx)) {
		/* a tty that vanished since it was opened (adapter pulled) */
		device_lost(c);
	}
	if (!c->dev_up) {
		LOG_WARN(c, "auth refused for '%s': device not connected", who);
		refuse_line(c, "Auth fail: device not connected\r\n");
		return 1;
	}
	if (c->dev_resetting) {
		LOG_WARN(c, "auth refused for '%s': device reset in progress", who);
		refuse_line(c, "Auth fail: device resetting, try again\r\n");
		return 1;
	}
	rc = storage ? c->rec.can_start(c->rec.ctx) : 0;
	if (rc < 0) {
		LOG_ERR(c, "auth refused for '%s': recording storage: %s", who,
			shim_strerror(rc));
		emit_simple(c, "storage_low", SHIM_SEV_ERR, "reason",
			    shim_strerror(rc));
		refuse_line(c, rc == SHIM_EUNDELIVERED ?
			    "Auth fail: recording storage full, recordings "
			    "not yet delivered to central custody\r\n" :
			    "Auth fail: recording storage full\r\n");
		return 1;
	}
	return 0;
}

static int is_blank(uint8_t b)
{
	return b == ' ' || b == '\t';
}

/* Copies the claimed ID (first word of the line) for logs and events. */
static void claimed_id(const uint8_t *line, size_t len, char *out, size_t cap)
{
	size_t i = 0, j, k, m;
	int digits;

	while (i < len && is_blank(line[i])) {
		i++;
	}
	j = i;
	while (j < len && !is_blank(line[j])) {
		j++;
	}
	/* A line of one word, or one that starts with a string of digits,
	 * may be a code typed alone or first: never log it. Nor a first word
	 * longer than any ID: cut for the log, it would still show most of
	 * a code typed onto its end. */
	k = j;
	digits = j > i;
	while (k < len && is_blank(line[k])) {
		k++;
	}
	for (m = i; m < j; m++) {
		if (line[m] < '0' || line[m] > '9') {
			digits = 0;
		}
	}
	if (k >= len || digits || j - i > SHIM_TECH_ID_MAX) {
		shim_fmt(out, cap, "%s", "(malformed)");
		return;
	}
	shim_sanitize(out, cap, (const char *)line + i, j - i);
}

/* serial: the break-glass code's, when one was read (else NULL). */
static void auth_failed_ex(struct shim_ctl *c, const char *who,
			   const struct shim_auth_result *res,
			   const char *reason, const char *serial)
{
	struct shim_event *ev;
	char line[96];

	LOG_WARN(c, "auth fail: technician '%s': %s (failures %u)", who, reason,
		 (unsigned)res->failures);
	ev = ev_start(c, "auth_fail", SHIM_SEV_WARNING);
	if (ev != NULL) {
		shim_event_add(ev, "technician", who);
		shim_event_add(ev, "reason", reason);
		shim_event_add_u64(ev, "failures", res->failures);
		if (serial != NULL && serial[0] != '\0') {
			shim_event_add(ev, "breakglass", serial);
		}
		shim_ctl_emit(c, ev);
	}
	if (res->locked_now || res->outcome == SHIM_AUTH_RATE_LIMITED) {
		ev = ev_start(c, "lockout", SHIM_SEV_WARNING);
		if (ev != NULL) {
			shim_event_add(ev, "technician",
				       res->outcome == SHIM_AUTH_RATE_LIMITED ?
					       "*" : who);
			shim_event_add_u64(ev, "seconds", res->retry_after);
			shim_ctl_emit(c, ev);
		}
	}
	if (res->outcome == SHIM_AUTH_CLOCK) {
		shim_fmt(line, sizeof(line), "Auth fail: shim clock not trusted\r\n");
	} else if (res->retry_after > 0) {
		shim_fmt(line, sizeof(line), "Auth fail: retry in %u s\r\n",
			 (unsigned)res->retry_after);
	} else {
		shim_fmt(line, sizeof(line), "Auth fail\r\n");
	}
	says(c, line);
	if (res->outcome == SHIM_AUTH_RATE_LIMITED) {
		if (c->state == SHIM_ST_OPEN) {
			/* the shim locks: the waiting session is sealed first */
			shim_ctl_end_session(c, "technician_disconnect");
		}
		set_state(c, SHIM_SM_RATE_LOCK, "shim-wide failure limit");
		arm(c, SHIM_DL_LOCK,
		    (res->retry_after ? res->retry_after : 1) * 1000u);
		return;
	}
	set_state(c, SHIM_SM_AUTH_FAIL, reason);
	c->fail_delay = 1;
	arm(c, SHIM_DL_FAIL_DELAY, c->cfg.fail_delay_ms);
}

static void auth_failed(struct shim_ctl *c, const char *who,
			const struct shim_auth_result *res, const char *reason)
{
	auth_failed_ex(c, who, res, reason, NULL);
}

/* ---- break-glass ------------------------------------------------------------ */

void shim_ctl_set_breakglass(struct shim_ctl *c, struct shim_bg *bg)
{
	c->bg = bg;
}

/* A line "<id> <code...>" whose code part, without blanks and '-', has
 * break-glass length: 1, with *id and *code pointing into line. A line of
 * one word of that length (a code typed without an ID): 2. Else 0. */
static int bg_attempt(const uint8_t *line, size_t len, const char **id,
		      size_t *id_len, const char **code, size_t *code_len)
{
	size_t i = 0, j, n = 0, end;

	*id = *code = NULL;
	*id_len = *code_len = 0;
	while (i < len && is_blank(line[i])) {
		i++;
	}
	j = i;
	while (j < len && !is_blank(line[j])) {
		j++;
	}
	if (j == i) {
		return 0;
	}
	end = len;
	while (end > j && is_blank(line[end - 1])) {
		end--;
	}
	if (end == j) {
		for (; i < j; i++) {
			n += line[i] != '-';
		}
		return n >= SHIM_BG_MIN_ATTEMPT && n <= SHIM_BG_MAX_ATTEMPT ? 2 : 0;
	}
	*id = (const char *)line + i;
	*id_len = j - i;
	while (j < end && is_blank(line[j])) {
		j++;
	}
	for (i = j; i < end; i++) {
		if (line[i] != '-' && !is_blank(line[i])) {
			n++;
		}
	}
	if (n < SHIM_BG_MIN_ATTEMPT || n > SHIM_BG_MAX_ATTEMPT) {
		return 0;
	}
	*code = (const char *)line + j;
	*code_len = end - j;
	return 1;
}

/* How the code's lifetime was judged: clock_trusted is 1 at a trusted
 * wall clock, 2 at an unconfirmed one (ahead of the floor at start), 0 at
 * the floor. */
static const char *bg_clock_name(const struct shim_bg_result *bg)
{
	return bg->clock_trusted == 1 ? "trusted" :
	       bg->clock_trusted == 2 ? "unconfirmed" : "untrusted";
}

/* Emits one break-glass event in the priority lane; < 0 when it is not
 * durable (or there is no sink to take it). */
static int bg_event(struct shim_ctl *c, const char *name, const char *audience,
		    const char *id, const struct shim_bg_result *bg)
{
	struct shim_event *ev = ev_start(c, name, SHIM_SEV_ALERT);
	int rc;

	if (ev == NULL || c->sink.emit == NULL) {
		return SHIM_ESTATE;
	}
	ev->priority = 1;
	if (audience != NULL) {
		shim_event_add(ev, "audience", audience);
	}
	shim_event_add(ev, "technician", id);
	shim_event_add(ev, "serial", bg->serial);
	shim_event_add(ev, "issuer", c->bg->key.key_id);
	shim_event_add_i64(ev, "issued", bg->issued_s);
	shim_event_add_i64(ev, "expires", bg->expires_s);
	shim_event_add(ev, "technician_bound", bg->code.bound ? "yes" : "no");
	shim_event_add(ev, "clock", bg_clock_name(bg));
	if (audience != NULL) {
		shim_event_add(ev, "review", "within 24 h by clinical engineering "
			       "and InfoSec leadership");
	}
	rc = c->sink.emit(c->sink.ctx, ev);
	if (rc < 0) {
		LOG_ERR(c, "event %s not durable: %s", name, shim_strerror(rc));
	}
	return rc;
}

/* The time a code's lifetime is judged at: the wall clock when it can be
 * believed, else the latest time known to have passed (the clock's
 * persisted floor, at least the build date). *trusted says which. */
static int64_t bg_judged_time(struct shim_ctl *c, int64_t now, int *trusted,
			      int *unconfirmed)
{
	struct shim_clock_report rep;
	enum shim_clock_verdict v;
	int64_t floor;

	memset(&rep, 0, sizeof(rep));
	v = shim_clock_check_at(c->clock, now, &rep);
	shim_ctl_clock_report(c, &rep);
	*unconfirmed = v == SHIM_CLOCK_UNCONFIRMED;
	if (v == SHIM_CLOCK_TRUSTED || v == SHIM_CLOCK_UNCONFIRMED) {
		*trusted = 1;
		return now;
	}
	*trusted = 0;
	floor = shim_clock_floor(c->clock);
	if (floor < c->clock->cfg.min_time) {
		floor = c->clock->cfg.min_time;
	}
	return floor;
}

static void breakglass_line(struct shim_ctl *c, const char *who,
			    const char *id, size_t id_len, const char *code,
			    size_t code_len, int64_t now)
{
	struct shim_auth_result ar;
	struct shim_bg_result br;
	char tech[SHIM_TECH_ID_MAX + 1];
	int64_t judged, t0;
	int trusted = 0, unconfirmed = 0, rc;

	memset(&br, 0, sizeof(br));
	rc = shim_gate_precheck(c->gate, id, id_len, now, &ar);
	if (rc < 0 || ar.outcome != SHIM_AUTH_OK) {
		/* rate limit, lockout, state: refused before the code is read */
		if (ar.outcome == SHIM_AUTH_OK) {
			ar.outcome = SHIM_AUTH_ERROR;
		}
		auth_failed(c, who, &ar, shim_auth_outcome_name(ar.outcome));
		return;
	}
	if (c->bg == NULL) {
		(void)shim_gate_fail(c->gate, id, id_len, now, &ar);
		ar.outcome = SHIM_AUTH_BAD_CODE;
		auth_failed(c, who, &ar, "breakglass_not_configured");
		return;
	}
	judged = bg_judged_time(c, now, &trusted, &unconfirmed);
	t0 = mono_ns(c);
	rc = shim_bg_verify(c->bg, id, id_len, code, code_len, judged, trusted,
			    &br);
	if (unconfirmed && br.clock_trusted) {
		br.clock_trusted = 2;
	}
	LOG_DEBUG(c, "break-glass verification took %lld us",
		  (long long)((mono_ns(c) - t0) / 1000));
	if (rc < 0 || br.outcome != SHIM_BG_OK) {
		if (br.outcome == SHIM_BG_OK) {
			br.outcome = SHIM_BG_ERROR;
		}
		(void)shim_gate_fail(c->gate, id, id_len, now, &ar);
		ar.outcome = SHIM_AUTH_BAD_CODE;
		auth_failed_ex(c, who, &ar, shim_bg_outcome_name(br.outcome),
			       br.outcome == SHIM_BG_MISTYPED ? NULL : br.serial);
		return;
	}
	memcpy(tech, id, id_len);
	tech[id_len] = '\0';
	/* The mark is durable; now the reports, before the gate opens. */
	if (bg_event(c, "breakglass_used", NULL, tech, &br) < 0 ||
	    bg_event(c, "breakglass_notify", "clinical_engineering", tech, &br) < 0 ||
	    bg_event(c, "breakglass_notify", "infosec", tech, &br) < 0) {
		rc = shim_bg_unmark(c->bg, &br);
		LOG_ERR(c, "break-glass %s for '%s' refused: notifications not "
			"durable (code %s)", br.serial, who,
			rc == 0 ? "not spent" : "spent");
		(void)shim_gate_fail(c->gate, id, id_len, now, &ar);
		ar.outcome = SHIM_AUTH_BAD_CODE;
		auth_failed_ex(c, who, &ar, "breakglass_not_reported", br.serial);
		/* the uniform line went out; say why the gate stays closed */
		says(c, "Break-glass: the notifications could not be stored; "
			"the gate stays closed. Call InfoSec.\r\n");
		return;
	}
	if (c->state == SHIM_ST_OPEN) {
		/* someone came back (or came) during the reconnect grace */
		LOG_INFO(c, "session %s of %s: break-glass by %s during the "
			 "reconnect grace: sealing it", c->session_id, c->tech_id,
			 tech);
		shim_ctl_end_session(c, "technician_disconnect");
		if (c->state != SHIM_ST_CHALLENGE || session_refused(c, who, 1)) {
			(void)shim_bg_unmark(c->bg, &br);
			return;
		}
	}
	memset(&ar, 0, sizeof(ar));
	if (start_session(c, tech, &ar, &br) < 0) {
		(void)shim_bg_unmark(c->bg, &br);
	}
}

/* A code accepted on a trusted clock raises the clock floor, after the
 * technician has the answer: the floor is best effort and its write need
 * not delay the success line (the replay mark, which must be durable
 * first, was written by the gate). */
static void raise_floor(struct shim_ctl *c, const struct shim_auth_result *res,
			int64_t now)
{
	if (res->floor_due && shim_gate_note_time(c->gate, now) != 0) {
		LOG_DEBUG(c, "clock floor not raised after the success");
	}
}

/* A code was accepted: the session opens, or goes on when its own
 * technician came back within the reconnect grace. */
static void accepted(struct shim_ctl *c, const char *who,
		     const struct shim_auth_result *res)
{
	const char *id = c->gate->techs[res->tech].id;

	if (c->state == SHIM_ST_OPEN) {
		/* someone authenticated during the reconnect grace */
		if (strcmp(id, c->tech_id) == 0) {
			resume_session(c, res);
			return;
		}
		LOG_INFO(c, "session %s of %s: %s authenticated during the "
			 "reconnect grace: sealing it", c->session_id,
			 c->tech_id, id);
		shim_ctl_end_session(c, "technician_disconnect");
		/* The same checks as for any new session: sealing the old one
		 * may have started a device reset. */
		if (c->state != SHIM_ST_CHALLENGE ||
		    session_refused(c, who, 1)) {
			return;
		}
	}
	(void)start_session(c, id, res, NULL);
}

static void handle_line(struct shim_ctl *c, int overflow)
{
	struct shim_auth_result res = { 0 };
	char who[SHIM_TECH_ID_MAX * 4 + 1];
	const uint8_t *line;
	size_t len;
	int64_t now = wall_ns(c) / 1000000000LL;
	int64_t t0;
	int rc;

	if (overflow) {
		/* Counts as a failure: the gate sees a malformed line. */
		(void)shim_gate_verify_line(c->gate, "", 0, now, &res);
		shim_lineedit_reset(&c->le);
		says(c, "\r\n");
		if (res.outcome == SHIM_AUTH_OK) {
			res.outcome = SHIM_AUTH_MALFORMED;
		}
		auth_failed(c, "", &res, "line_too_long");
		return;
	}
	line = shim_lineedit_line(&c->le, &len);
	claimed_id(line, len, who, sizeof(who));
	if (len == 0) {
		/* an empty line asks for the prompt again */
		show_prompt(c);
		return;
	}
	/* Nothing to talk to, or nowhere to record: do not spend the code.
	 * (Within the reconnect grace a recording is live already.) */
	if (session_refused(c, who, c->state != SHIM_ST_OPEN)) {
		return;
	}
	{
		const char *bid, *bcode;
		size_t bid_len, bcode_len;

		switch (bg_attempt(line, len, &bid, &bid_len, &bcode,
				   &bcode_len)) {
		case 1:
			breakglass_line(c, who, bid, bid_len, bcode, bcode_len,
					now);
			shim_lineedit_reset(&c->le);
			return;
		case 2:
			/* A code without an ID: refused as malformed, counted
			 * shim-wide only, so that the code is never kept as a
			 * claimed ID in the gate's lockout slots. */
			(void)shim_gate_fail(c->gate, "", 0, now, &res);
			res.outcome = SHIM_AUTH_MALFORMED;
			shim_lineedit_reset(&c->le);
			auth_failed(c, who, &res, "breakglass_no_id");
			return;
		default:
			break;
		}
	}
	t0 = mono_ns(c);
	rc = shim_gate_verify_line(c->gate, (const char *)line, len, now, &res);
	shim_lineedit_reset(&c->le);
	LOG_DEBUG(c, "gate verification took %lld us",
		  (long long)((mono_ns(c) - t0) / 1000));
	if (rc < 0) {
		LOG_ERR(c, "gate: %s", shim_strerror(rc));
		if (res.outcome == SHIM_AUTH_OK) {
			res.outcome = SHIM_AUTH_ERROR;
		}
	}
	shim_ctl_clock_report(c, &res.clock);
	if (res.clock_confirmed) {
		emit_simple(c, "clock_confirmed", SHIM_SEV_NOTICE, "source", "totp");
		LOG_INFO(c, "clock confirmed by a valid code");
		shim_ctl_clock_report(c, NULL);
	}
	if (rc == 0 && res.outcome == SHIM_AUTH_OK && res.tech >= 0 &&
	    (size_t)res.tech < c->gate->ntechs) {
		accepted(c, who, &res);
		raise_floor(c, &res, now);
		return;
	}
	if (res.outcome == SHIM_AUTH_OK) {
		res.outcome = SHIM_AUTH_ERROR;
	}
	auth_failed(c, who, &res, shim_auth_outcome_name(res.outcome));
}

/* ---- technician input in the dialogue ------------------------------------- */

static void dialogue_input(struct shim_ctl *c, const uint8_t *buf, size_t n)
{
	uint8_t echo[SHIM_LE_ECHO_MAX];
	size_t elen, i;

	if (c->stopping) {
		/* shutting down: no prompt, and no session either */
		return;
	}
	if (!c->tech_present) {
		if (c->cfg.connect_on_input) {
			/* a tty technician without presence lines: the first
			 * byte is the connection */
			shim_ctl_connect(c, "technician input");
		}
		/* typed before the prompt: dropped */
		return;
	}
	if (!shim_ctl_dialogue_open(c) || c->fail_delay) {
		/* discarded: never reaches the device */
		return;
	}
	/* The echo of a read goes out in one write, not one per byte; it is
	 * written before a line is answered. */
	c->msg_hold = 1;
	for (i = 0; i < n; i++) {
		enum shim_le_result r;

		r = shim_lineedit_byte(&c->le, buf[i], echo, &elen);
		if (elen > 0) {
			say(c, echo, elen);
		}
		if (r == SHIM_LE_LINE || r == SHIM_LE_OVERFLOW) {
			release_echo(c);
			handle_line(c, r == SHIM_LE_OVERFLOW);
			if (!shim_ctl_dialogue_open(c) || c->fail_delay) {
				/* the rest of this read is dropped */
				break;
			}
			c->msg_hold = 1;
		}
	}
	release_echo(c);
	shim_memzero(echo, sizeof(echo));
}

/* ---- relay -------------------------------------------------------------------- */

/* On a recorder error other than back-pressure: on_failure stop. The gate
 * closes rather than relay unrecorded. */
static void rec_failed_stop(struct shim_ctl *c, int rc)
{
	LOG_ERR(c, "session %s: recording failed: %s", c->session_id,
		shim_strerror(rc));
	shim_ctl_end_session(c, "recording_failed");
}

/* Into the recorder before anything is forwarded. Returns 1 when the held
 * bytes are recorded, 0 when the recorder is full, < 0 after the session
 * ended on a recorder failure. */
static int relay_record(struct shim_ctl *c, struct shim_ctl_relay *r,
			enum shim_rec_dir dir)
{
	int rc;

	if (r->recorded) {
		return 1;
	}
	rc = c->rec.traffic(c->rec.ctx, dir, r->buf, r->len, wall_ns(c),
			    mono_ns(c));
	if (rc == SHIM_EAGAIN) {
		/* Back-pressure: hold the bytes, read no more of this side
		 * until the recorder has room. */
		c->rec_wait = 1;
		c->rec_stalls++;
		return 0;
	}
	if (rc < 0) {
		rec_failed_stop(c, rc);
		return rc;
	}
	r->recorded = 1;
	return 1;
}

/* Writes the held, recorded bytes to dst. Returns 0, or SHIM_EDISCONN
 * when dst is gone. */
static int relay_write(struct shim_ctl *c, struct shim_ctl_relay *r,
		       enum shim_side dst)
{
	int n;

	while (r->off < r->len) {
		n = c->io.write(c->io.ctx, dst, r->buf + r->off, r->len - r->off);
		if (n < 0) {
			return SHIM_EDISCONN;
		}
		if (n == 0) {
			return 0; /* dst full: wait for output_ready */
		}
		if ((size_t)n > r->len - r->off) {
			n = (int)(r->len - r->off);
		}
		r->off += (size_t)n;
		r->bytes += (uint64_t)n;
	}
	relay_clear(r);
	return 0;
}

static void pump_in(struct shim_ctl *c)
{
	if (c->state != SHIM_ST_OPEN || c->grace || c->in.len == 0) {
		return;
	}
	if (relay_record(c, &c->in, SHIM_DIR_IN) <= 0) {
		return;
	}
	if (relay_write(c, &c->in, SHIM_SIDE_DEV) < 0) {
		device_lost(c);
	}
}

static void pump_out(struct shim_ctl *c)
{
	if (c->state != SHIM_ST_OPEN || c->out.len == 0) {
		return;
	}
	if (relay_record(c, &c->out, SHIM_DIR_OUT) <= 0) {
		return;
	}
	if (c->grace) {
		/* held (recorded) until the technician is back */
		return;
	}
	/* the dialogue's text (the success line) goes first */
	msg_flush(c);
	if (c->msg_len > 0) {
		return;
	}
	if (relay_write(c, &c->out, SHIM_SIDE_TECH) < 0) {
		tech_gone(c);
	}
}

static void relay_input(struct shim_ctl *c, enum shim_side side,
			const uint8_t *buf, size_t n, int brk)
{
	struct shim_ctl_relay *r = side == SHIM_SIDE_TECH ? &c->in : &c->out;
	int rc;

	if (brk && side == SHIM_SIDE_TECH) {
		c->last_input_mono = mono_ns(c);
		rec_meta(c, "break", "technician");
		rc = c->io.send_break ? c->io.send_break(c->io.ctx) : SHIM_ENOTSUP;
		LOG_INFO(c, "session %s: BREAK forwarded to device (%s)",
			 c->session_id, rc == 0 ? "sent" : shim_strerror(rc));
	}
	if (n == 0) {
		return;
	}
	if (r->len > 0 || n > c->cfg.relay_cap) {
		/* beyond shim_ctl_input_room(): a loop error, never relayed
		 * unrecorded; the recording shows the gap */
		LOG_ERR(c, "session %s: %zu bytes beyond the relay's room dropped",
			c->session_id, n);
		return;
	}
	if (buf != r->buf) {
		memcpy(r->buf, buf, n);
	}
	r->len = n;
	r->off = 0;
	r->recorded = 0;
	if (side == SHIM_SIDE_TECH) {
		/* idle means no technician input: a chatty device does not
		 * keep an abandoned session open */
		c->last_input_mono = mono_ns(c);
		pump_in(c);
	} else {
		pump_out(c);
	}
}

/* ---- what the loop reports --------------------------------------------------- */

size_t shim_ctl_input_room(const struct shim_ctl *c, enum shim_side side)
{
	const struct shim_ctl_relay *r = side == SHIM_SIDE_TECH ? &c->in : &c->out;

	if (c->state != SHIM_ST_OPEN) {
		/* dialogue, or read and dropped */
		return SHIM_CTL_DIALOGUE_CHUNK;
	}
	if (side == SHIM_SIDE_TECH && c->grace) {
		return SHIM_CTL_DIALOGUE_CHUNK;
	}
	if (c->rec_wait || r->len > 0) {
		return 0;
	}
	if (!c->grace && c->msg_len > 0) {
		/* the success line first */
		return 0;
	}
	return c->cfg.relay_cap;
}

uint8_t *shim_ctl_input_buffer(struct shim_ctl *c, enum shim_side side)
{
	if (unready(c) || c->state != SHIM_ST_OPEN ||
	    (side == SHIM_SIDE_TECH && c->grace) ||
	    shim_ctl_input_room(c, side) == 0) {
		return NULL;
	}
	return side == SHIM_SIDE_TECH ? c->in.buf : c->out.buf;
}

void shim_ctl_input(struct shim_ctl *c, enum shim_side side,
		    const uint8_t *buf, size_t len, int brk)
{
	if (unready(c)) {
		return;
	}
	if (side == SHIM_SIDE_TECH) {
		if (c->state == SHIM_ST_OPEN && !c->grace) {
			relay_input(c, side, buf, len, brk);
		} else {
			dialogue_input(c, buf, len);
		}
		return;
	}
	if (c->state == SHIM_ST_OPEN) {
		relay_input(c, side, buf, len, 0);
		return;
	}
	/* Device output outside OPEN never reaches the technician. */
	if (len > 0) {
		LOG_DEBUG(c, "dropped %zu device bytes outside a session", len);
	}
}

int shim_ctl_wants_output(const struct shim_ctl *c, enum shim_side side)
{
	if (side == SHIM_SIDE_TECH) {
		return c->msg_len > 0 ||
		       (c->state == SHIM_ST_OPEN && !c->grace && c->out.len > 0 &&
			c->out.recorded);
	}
	return c->state == SHIM_ST_OPEN && !c->grace && c->in.len > 0 &&
	       c->in.recorded;
}

void shim_ctl_output_ready(struct shim_ctl *c, enum shim_side side)
{
	if (side == SHIM_SIDE_TECH) {
		msg_flush(c);
		pump_out(c);
	} else {
		pump_in(c);
	}
}

void shim_ctl_rec_ready(struct shim_ctl *c)
{
	c->rec_wait = 0;
	pump_in(c);
	pump_out(c);
}

void shim_ctl_rec_failed(struct shim_ctl *c, const char *reason)
{
	struct shim_event *ev;
	const char *mode = c->cfg.on_failure_continue ? "continue" : "stop";

	if (c->state != SHIM_ST_OPEN || c->rec_failure_reported) {
		return;
	}
	c->rec_failure_reported = 1;
	if (c->tech_present && !c->grace && c->cfg.on_failure_continue) {
		/* once per session, between relayed chunks */
		says(c, "\r\nShim: recording failed; this session is no longer "
			"fully recorded\r\n");
	}
	LOG_ERR(c, "session %s: recording degraded: %s (on_failure: %s)",
		c->session_id, reason, mode);
	ev = ev_start(c, "recording_failed", SHIM_SEV_ERR);
	if (ev != NULL) {
		shim_event_add(ev, "session", c->session_id);
		shim_event_add(ev, "technician", c->tech_id);
		shim_event_add(ev, "reason", reason);
		shim_event_add(ev, "on_failure", mode);
		shim_ctl_emit(c, ev);
	}
	if (!c->cfg.on_failure_continue) {
		/* the session ends at once: nothing passes unrecorded, and no
		 * session stays open on a recording that is gone */
		shim_ctl_end_session(c, "recording_failed");
	}
}

static void device_lost(struct shim_ctl *c)
{
	if (c->state == SHIM_ST_OPEN) {
		LOG_WARN(c, "device side lost during session %s", c->session_id);
		shim_ctl_end_session(c, "device_disconnect");
	} else {
		LOG_WARN(c, "device side lost");
	}
	c->dev_up = c->io.lost(c->io.ctx, SHIM_SIDE_DEV) > 0;
}

void shim_ctl_device_up(struct shim_ctl *c, int up)
{
	if (unready(c)) {
		return;
	}
	if (up) {
		c->dev_up = 1;
		return;
	}
	device_lost(c);
}

/* The technician went away; the port is told after the state moved. */
static void tech_gone(struct shim_ctl *c)
{
	c->tech_present = 0;
	c->msg_len = 0;
	shim_lineedit_init(&c->le);
	if (c->state == SHIM_ST_OPEN) {
		if (c->grace) {
			/* whoever was at the prompt meanwhile left too */
			goto out;
		}
		rec_meta(c, "technician_hangup", c->tech_id);
		if (c->cfg.reconnect_grace_ms > 0) {
			/* The session waits for its technician, who must
			 * authenticate again; the line is closed meanwhile. */
			c->grace = 1;
			c->grace_since_mono = mono_ns(c);
			relay_clear(&c->in);
			LOG_INFO(c, "session %s: reconnect grace %u ms",
				 c->session_id, (unsigned)c->cfg.reconnect_grace_ms);
			arm(c, SHIM_DL_GRACE, c->cfg.reconnect_grace_ms);
			goto out;
		}
		shim_ctl_end_session(c, "technician_disconnect");
		goto out;
	}
	if (c->state == SHIM_ST_CHALLENGE) {
		set_state(c, SHIM_SM_HANGUP, "technician hung up");
	}
out:
	if (c->io.lost(c->io.ctx, SHIM_SIDE_TECH) < 0) {
		LOG_WARN(c, "technician line not renewed");
	}
}

void shim_ctl_hangup(struct shim_ctl *c)
{
	if (unready(c)) {
		return;
	}
	LOG_INFO(c, "technician hung up");
	tech_gone(c);
}

void shim_ctl_connect(struct shim_ctl *c, const char *cause)
{
	if (unready(c)) {
		return;
	}
	c->tech_present = 1;
	if (c->state == SHIM_ST_OPEN) {
		if (c->grace) {
			/* Nobody can tell who this is: the normal prompt. The
			 * session's technician gets it back with a fresh code;
			 * anyone else starts a new session. */
			LOG_INFO(c, "session %s: someone connected during the "
				 "reconnect grace: prompting", c->session_id);
			c->fail_delay = 0;
			disarm(c, SHIM_DL_FAIL_DELAY);
			show_prompt(c);
		}
		return;
	}
	if (c->state == SHIM_ST_EMERGENCY_STOP) {
		says(c, "\r\nEMERGENCY STOP\r\n");
		return;
	}
	if (c->state == SHIM_ST_LOCKED) {
		says(c, "\r\nShim locked: too many failures, try later\r\n");
		return;
	}
	to_challenge(c, cause);
}

/* ---- deadlines ---------------------------------------------------------------- */

static void unlock(struct shim_ctl *c, const char *cause)
{
	set_state(c, SHIM_SM_UNLOCK, cause);
	if (c->tech_present) {
		show_prompt(c);
	} else {
		set_state(c, SHIM_SM_HANGUP, "technician absent");
	}
}

static void on_deadline(struct shim_ctl *c, enum shim_ctl_deadline d,
			int64_t now)
{
	int64_t left;

	switch (d) {
	case SHIM_DL_FAIL_DELAY:
		if (c->fail_delay) {
			c->fail_delay = 0;
			if (shim_ctl_dialogue_open(c)) {
				show_prompt(c);
			}
		}
		break;
	case SHIM_DL_IDLE:
		if (c->state != SHIM_ST_OPEN) {
			break;
		}
		left = c->last_input_mono +
		       (int64_t)c->cfg.idle_timeout_ms * 1000000LL - now;
		if (left > 0) {
			c->deadline[SHIM_DL_IDLE] = now + left;
		} else {
			shim_ctl_end_session(c, "idle_timeout");
		}
		break;
	case SHIM_DL_MAX:
		shim_ctl_end_session(c, "max_duration");
		break;
	case SHIM_DL_GRACE:
		if (c->state == SHIM_ST_OPEN && c->grace) {
			shim_ctl_end_session(c, "technician_disconnect");
		}
		break;
	case SHIM_DL_LOCK:
		if (c->state == SHIM_ST_LOCKED) {
			unlock(c, "lock expired");
		}
		break;
	case SHIM_DL_DEVRESET:
		device_reset_done(c);
		break;
	default:
		break;
	}
}

void shim_ctl_tick(struct shim_ctl *c)
{
	int64_t now;
	int i;

	if (unready(c)) {
		return;
	}
	now = mono_ns(c);
	for (i = 0; i < SHIM_DL__COUNT; i++) {
		if (c->deadline[i] != 0 && c->deadline[i] <= now) {
			c->deadline[i] = 0;
			on_deadline(c, (enum shim_ctl_deadline)i, now);
		}
	}
}

/* ---- commands ------------------------------------------------------------------ */

void shim_ctl_estop(struct shim_ctl *c, const char *event, const char *detail)
{
	char reason[96];
	int already = c->state == SHIM_ST_EMERGENCY_STOP;

	if (unready(c)) {
		/* stopped already, and nothing to latch it with */
		return;
	}
	/* Close the gate before anything else: nothing held is forwarded,
	 * and nothing is relayed outside OPEN. */
	c->estop_ns = wall_ns(c);
	relay_clear(&c->in);
	relay_clear(&c->out);
	/* bytes already queued for either line stay where they are */
	c->io.flush_output(c->io.ctx, SHIM_SIDE_DEV);
	c->io.flush_output(c->io.ctx, SHIM_SIDE_TECH);
	if (c->state == SHIM_ST_OPEN) {
		shim_fmt(reason, sizeof(reason), "tamper:%s", event);
		/* sealed without the usual return to CHALLENGE */
		session_close(c, reason, c->tech_present && !c->grace,
			      c->tech_present && c->grace);
	}
	if (!already) {
		shim_fmt(c->estop_event, sizeof(c->estop_event), "%s", event);
		set_state(c, SHIM_SM_TAMPER, event);
	}
	c->fail_delay = 0;
	disarm(c, SHIM_DL_FAIL_DELAY);
	disarm(c, SHIM_DL_LOCK);
	shim_lineedit_reset(&c->le);
	c->msg_len = 0;
	says(c, "\r\nEMERGENCY STOP\r\n");
	LOG_ERR(c, "EMERGENCY STOP: %s%s%s", event, detail ? ": " : "",
		detail ? detail : "");
	/* Then latch (persisted) and report in the priority lane. */
	if (!already && c->hooks.latch != NULL) {
		c->hooks.latch(c->hooks.ctx, event, detail ? detail : "");
	}
}

void shim_ctl_estop_cleared(struct shim_ctl *c)
{
	if (unready(c)) {
		return;
	}
	set_state(c, SHIM_SM_ESTOP_RESET, "authorised reset");
	c->estop_event[0] = '\0';
	if (c->tech_present) {
		to_challenge(c, "technician present");
	}
}

int shim_ctl_reset_lockout(struct shim_ctl *c, const char *id, const char *who)
{
	int64_t now;
	int rc;

	if (unready(c)) {
		return SHIM_EINVAL;
	}
	now = wall_ns(c) / 1000000000LL;
	rc = shim_gate_reset_lockout(c->gate, id, now);
	LOG_INFO(c, "admin %s: reset-lockout %s: %s", who, id,
		 rc == 0 ? "cleared" : shim_strerror(rc));
	if (c->state == SHIM_ST_LOCKED) {
		/* LOCKED is the shim-wide limit: its window goes too, or the
		 * next line would lock the shim again */
		rc = shim_gate_reset_rate(c->gate);
		if (rc < 0) {
			LOG_WARN(c, "admin %s: failure window not cleared: %s", who,
				 shim_strerror(rc));
		}
		disarm(c, SHIM_DL_LOCK);
		unlock(c, "admin reset");
		return 0;
	}
	return rc;
}

void shim_ctl_shutdown(struct shim_ctl *c, const char *reason)
{
	if (unready(c)) {
		return;
	}
	c->stopping = 1;
	shim_ctl_end_session(c, reason);
	if (c->tech_present) {
		c->msg_len = 0;
		says(c, "\r\nShim shutting down\r\n");
	}
}

void shim_ctl_clock_report(struct shim_ctl *c,
			   const struct shim_clock_report *rep)
{
	struct shim_event *ev;
	int64_t now = 0;

	if (unready(c)) {
		return;
	}
	if (rep != NULL && rep->jumped) {
		LOG_ERR(c, "clock jump: wall clock %lld, trusted clock %lld "
			"(%+lld s): codes, deletions and token expiry refused "
			"until it is back or confirmed (shimctl clock trust)",
			(long long)rep->wall, (long long)rep->expected,
			(long long)(rep->wall - rep->expected));
		ev = ev_start(c, "clock_jump", SHIM_SEV_ERR);
		if (ev != NULL) {
			ev->priority = 1;
			shim_event_add_i64(ev, "wall", rep->wall);
			shim_event_add_i64(ev, "expected", rep->expected);
			shim_event_add_i64(ev, "offset", rep->wall - rep->expected);
			shim_ctl_emit(c, ev);
		}
	}
	if (rep != NULL && rep->recovered) {
		LOG_WARN(c, "clock back within %u s of the trusted clock",
			 (unsigned)c->clock->cfg.max_jump);
		emit_simple(c, "clock_recovered", SHIM_SEV_NOTICE, "reason",
			    "within_bound");
	}
	/* Retention deletes only against a trusted time. */
	if (c->rec.trusted_time != NULL) {
		if (shim_clock_trusted_now(c->clock, &now) < 0) {
			now = 0;
		}
		c->rec.trusted_time(c->rec.ctx, now);
	}
}

/* ---- set-up -------------------------------------------------------------------- */

void shim_ctl_cfg_default(struct shim_ctl_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->fail_delay_ms = 1000;
	cfg->relay_cap = SHIM_CTL_RELAY_BUF;
}

int shim_ctl_init(struct shim_ctl *c, const struct shim_ctl_cfg *cfg,
		  const struct shim_port *port, struct shim_gate *gate,
		  struct shim_clock *clock, const struct shim_ctl_io *io,
		  const struct shim_ctl_rec_ops *rec,
		  const struct shim_event_sink_ops *sink,
		  const struct shim_ctl_hooks *hooks)
{
	memset(c, 0, sizeof(*c));
	c->state = SHIM_ST_IDLE;
	if (cfg == NULL || port == NULL || gate == NULL || clock == NULL ||
	    io == NULL || rec == NULL || port->clock.wall_ns == NULL ||
	    port->clock.mono_ns == NULL || io->write == NULL ||
	    io->flush_input == NULL || io->flush_output == NULL ||
	    io->lost == NULL || rec->can_start == NULL || rec->begin == NULL ||
	    rec->traffic == NULL || rec->meta == NULL || rec->end == NULL) {
		/* the zero-value controller refuses everything: no state
		 * accepts a session without its ops */
		c->state = SHIM_ST_EMERGENCY_STOP;
		shim_fmt(c->estop_event, sizeof(c->estop_event), "%s",
			 "not_initialised");
		return SHIM_EINVAL;
	}
	c->cfg = *cfg;
	if (c->cfg.relay_cap == 0 || c->cfg.relay_cap > SHIM_CTL_RELAY_BUF) {
		c->cfg.relay_cap = SHIM_CTL_RELAY_BUF;
	}
	c->port = port;
	c->gate = gate;
	c->clock = clock;
	c->io = *io;
	c->rec = *rec;
	if (sink != NULL) {
		c->sink = *sink;
	}
	if (hooks != NULL) {
		c->hooks = *hooks;
	}
	if (c->cfg.device_reset != SHIM_CTL_RESET_NONE && c->io.dev_reset == NULL) {
		c->cfg.device_reset = SHIM_CTL_RESET_NONE;
	}
	shim_lineedit_init(&c->le);
	c->state_since_ns = wall_ns(c);
	return 0;
}
