/*
 * shimd: the Linux loop around the session controller (core/controller.c).
 *
 * The controller decides what happens to every byte in every state; this
 * file feeds it from poll(2) (serial lines, the recorder's descriptor,
 * timers and signals as file descriptors) and gives it the Linux port:
 * the termios/pty lines, the recorder's writer thread, the event log.
 *
 * Invariants:
 *  - A side is read only for as many bytes as the controller takes
 *    (shim_ctl_input_room()); nothing is read ahead of it.
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
#include <sys/statvfs.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "keys.h"
#include "log.h"
#include "shimd.h"
#include "util.h"

int64_t shimd_wall_ns(void)
{
	return shim_linux_wall_ns();
}

int64_t shimd_mono_ns(void)
{
	return shim_linux_mono_ns();
}

static uint32_t secs_to_ms(double s)
{
	if (s <= 0) {
		return 0;
	}
	if (s > 4000000.0) {
		return 4000000000u;
	}
	return (uint32_t)(s * 1000.0 + 0.5);
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

/* The controller's deadlines behind one timer, armed at the earliest and
 * re-armed only when it moves. Relative to the port's clock, which is the
 * one the deadlines are read on (under a faked clock too). */
static void ctl_timer_update(struct shimd *d)
{
	struct itimerspec its;
	int64_t next = shim_ctl_next_deadline(&d->ctl);
	int64_t left;

	if (next == d->ctl_armed) {
		return;
	}
	d->ctl_armed = next;
	memset(&its, 0, sizeof(its));
	if (next != INT64_MAX) {
		left = next - d->lp.port.clock.mono_ns(d->lp.port.clock.ctx);
		if (left <= 0) {
			left = 1;
		}
		its.it_value.tv_sec = (time_t)(left / 1000000000LL);
		its.it_value.tv_nsec = (long)(left % 1000000000LL);
	}
	timerfd_settime(d->timer_fd[SHIMD_T_CTL], 0, &its, NULL);
}

/* ---- the controller's Linux ops ------------------------------------------- */

static struct shim_serial *side_line(struct shimd *d, enum shim_side side)
{
	return side == SHIM_SIDE_TECH ? &d->tech : &d->dev;
}

static int io_write(void *ctx, enum shim_side side, const uint8_t *buf,
		    size_t len)
{
	return shim_serial_write(side_line(ctx, side), buf, len);
}

static void io_flush_input(void *ctx, enum shim_side side)
{
	shim_serial_flush_input(side_line(ctx, side));
}

static void io_flush_output(void *ctx, enum shim_side side)
{
	shim_serial_flush_output(side_line(ctx, side));
}

static int io_send_break(void *ctx)
{
	struct shimd *d = ctx;

	return shim_serial_send_break(&d->dev);
}

static int io_dev_alive(void *ctx)
{
	struct shimd *d = ctx;

	return shim_serial_alive(&d->dev);
}

/* A side is gone: a pty is renewed at once (a fresh one, waiting for its
 * peer), a tty is closed and reopened by a timer. */
static int io_lost(void *ctx, enum shim_side side)
{
	struct shimd *d = ctx;
	int rc;

	if (side == SHIM_SIDE_TECH) {
		shimd_timer_set(d, SHIMD_T_SETTLE, 0);
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
		return 0;
	}
	if (d->dev.is_pty) {
		rc = shim_serial_pty_renew(&d->dev);
		if (rc < 0) {
			log_err("device pty %s: %s", d->dev.path, shim_strerror(rc));
			shimd_timer_set(d, SHIMD_T_DEVICE, SHIMD_DEVICE_RETRY_MS);
			return 0;
		}
		log_info("device side %s renewed: waiting for the device",
			 d->dev.path);
		return 1;
	}
	shim_serial_close(&d->dev);
	shimd_timer_set(d, SHIMD_T_DEVICE, SHIMD_DEVICE_RETRY_MS);
	return 0;
}

/* session.device_reset: dtr. A pty has no DTR: it is hung up when the
 * hold ends, which is what a device sees of a dropped DTR on a null-modem
 * line. */
static int io_dev_reset(void *ctx, int begin, const char **how)
{
	struct shimd *d = ctx;
	int rc;

	*how = d->dev.is_pty ? "hangup" : "dtr";
	if (begin) {
		return d->dev.is_pty ? 0 : shim_serial_set_dtr(&d->dev, 0);
	}
	if (d->dev.is_pty) {
		rc = shim_serial_pty_renew(&d->dev);
		log_info("device pty %s hung up after the session%s%s", d->dev.path,
			 rc < 0 ? ": " : "", rc < 0 ? shim_strerror(rc) : "");
		return rc;
	}
	return shim_serial_set_dtr(&d->dev, 1);
}

static int rec_can_start(void *ctx)
{
	struct shimd *d = ctx;
	struct shim_uploader_status us;
	int rc = shim_recorder_can_start(d->rec);

	/* full because recordings wait for central custody: say so */
	if (rc == SHIM_ENOSPC && d->up != NULL) {
		shim_uploader_status(d->up, &us);
		if (us.queue_count > 0) {
			log_err("storage full: %" PRIu64 " recordings (%" PRIu64
				" bytes) not yet delivered to central custody "
				"are kept: %s", us.queue_count, us.queue_bytes,
				us.last_error[0] ? us.last_error : "waiting");
			rc = SHIM_EUNDELIVERED;
		}
	}
	return rc;
}

static int rec_begin(void *ctx, const char *tech,
		     char session_id[SHIM_SESSION_ID_MAX])
{
	struct shimd *d = ctx;

	return shim_recorder_begin(d->rec, tech, session_id);
}

static int rec_traffic(void *ctx, enum shim_rec_dir dir, const uint8_t *buf,
		       size_t len, int64_t wall, int64_t mono)
{
	struct shimd *d = ctx;

	return shim_recorder_traffic(d->rec, dir, buf, len, wall, mono);
}

static int rec_meta(void *ctx, const char *name, const char *detail,
		    int64_t wall, int64_t mono)
{
	struct shimd *d = ctx;

	return shim_recorder_meta(d->rec, name, detail, wall, mono);
}

static int rec_end(void *ctx, const char *reason, int64_t wall, int64_t mono)
{
	struct shimd *d = ctx;
	int rc = shim_recorder_end(d->rec, reason, wall, mono);

	shim_uploader_kick(d->up); /* sealed: off to central custody */
	return rc;
}

static void rec_trusted_time(void *ctx, int64_t now)
{
	struct shimd *d = ctx;

	if (d->rec != NULL) {
		shim_recorder_set_trusted_time(d->rec, now);
	}
	shim_uploader_set_trusted_time(d->up, now);
}

static void hook_log(void *ctx, enum shim_log_level level, const char *line)
{
	static const enum shimd_log_level map[] = {
		SHIMD_LOG_ERROR, SHIMD_LOG_WARN, SHIMD_LOG_INFO, SHIMD_LOG_DEBUG,
	};

	(void)ctx;
	if ((unsigned)level > SHIM_LOG_DEBUG) {
		level = SHIM_LOG_ERR;
	}
	if (map[level] == SHIMD_LOG_DEBUG && shimd_log_level < SHIMD_LOG_DEBUG) {
		return;
	}
	shimd_log(map[level], "%s", line);
}

static void hook_latch(void *ctx, const char *event, const char *detail)
{
	struct shimd *d = ctx;

	if (!shim_tamper_is_latched(&d->tamper)) {
		shimd_tamper_latch(d, event, detail);
	}
}

static int ctl_start(struct shimd *d)
{
	struct shim_ctl_cfg cfg;
	struct shim_ctl_io io = {
		.write = io_write,
		.flush_input = io_flush_input,
		.flush_output = io_flush_output,
		.lost = io_lost,
		.send_break = io_send_break,
		.dev_alive = io_dev_alive,
		.dev_reset = io_dev_reset,
		.ctx = d,
	};
	struct shim_ctl_rec_ops rec = {
		.can_start = rec_can_start,
		.begin = rec_begin,
		.traffic = rec_traffic,
		.meta = rec_meta,
		.end = rec_end,
		.trusted_time = rec_trusted_time,
		.ctx = d,
	};
	struct shim_ctl_hooks hooks = {
		.log = hook_log,
		.latch = hook_latch,
		.ctx = d,
	};
	struct shim_event_sink_ops sink;
	size_t q;
	int rc;

	shim_ctl_cfg_default(&cfg);
	cfg.idle_timeout_ms = secs_to_ms(d->cfg.idle_timeout);
	cfg.max_duration_ms = secs_to_ms(d->cfg.max_duration);
	cfg.reconnect_grace_ms = secs_to_ms(d->cfg.reconnect_grace);
	cfg.fail_delay_ms = SHIMD_FAIL_DELAY_MS;
	cfg.device_reset_hold_ms = secs_to_ms(d->cfg.device_reset_hold);
	cfg.device_reset = d->cfg.device_reset == SHIM_DEVICE_RESET_DTR ?
				   SHIM_CTL_RESET_DTR : SHIM_CTL_RESET_NONE;
	cfg.device_logout = d->cfg.device_logout;
	cfg.device_logout_len = d->cfg.device_logout_len;
	cfg.on_failure_continue = d->cfg.on_failure != SHIM_ON_FAILURE_STOP;
	/* A relayed chunk must fit the recorder queue with its header. */
	q = d->cfg.queue_bytes >= 4096 ? d->cfg.queue_bytes : 1024 * 1024;
	cfg.relay_cap = q / 2 - 64;
	if (cfg.relay_cap > SHIM_CTL_RELAY_BUF) {
		cfg.relay_cap = SHIM_CTL_RELAY_BUF;
	}
	/* a plain tty without a presence signal: the first byte connects */
	cfg.connect_on_input = !shim_serial_is_pty_spec(d->cfg.tech_path,
							&(const char *){ NULL }) &&
			       d->cfg.tech_serial.presence == SHIM_PRESENCE_NONE;
	cfg.bg_max_duration_ms = secs_to_ms(d->cfg.breakglass_max_duration);
	shim_eventlog_sink(d->evlog, &sink);
	d->ctl_armed = INT64_MAX;
	rc = shim_ctl_init(&d->ctl, &cfg, &d->lp.port, &d->gate, &d->clock,
			   &io, &rec, &sink, &hooks);
	if (rc == 0 && d->cfg.breakglass_verify_key != NULL) {
		shim_ctl_set_breakglass(&d->ctl, &d->bg);
	}
	return rc;
}

/* Reads and checks breakglass.verify_key against cfg's shim ID. Problems
 * are printed as "FILE:LINE: message" (or "FILE: message") through log
 * (shimd's log) or to out (--check-config). 0 and *key loaded, or < 0. */
int shimd_breakglass_key(const struct shim_config *cfg, struct shim_bg_key *key,
			 FILE *out)
{
	const char *path = cfg->breakglass_verify_key;
	char buf[4096], why[600];
	struct stat st;
	unsigned line = 0;
	ssize_t n;
	int fd, rc = 0;

	memset(key, 0, sizeof(*key));
	why[0] = '\0';
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, sizeof(why), "%s: breakglass.verify_key: %s", path,
			 strerror(errno));
		rc = SHIM_EIO;
		goto out;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
		log_warn("breakglass.verify_key %s: mode %03o, should be 0600",
			 path, (unsigned)(st.st_mode & 0777));
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || (size_t)n == sizeof(buf)) {
		snprintf(why, sizeof(why), "%s: breakglass.verify_key: %s", path,
			 n < 0 ? strerror(errno) : "too large");
		shim_memzero(buf, sizeof(buf));
		rc = SHIM_EIO;
		goto out;
	}
	rc = shim_bg_key_parse(buf, (size_t)n, key, &line);
	shim_memzero(buf, sizeof(buf));
	if (rc != 0) {
		snprintf(why, sizeof(why), "%s:%u: not a break-glass verify key "
			 "(shimctl breakglass provision writes one)", path, line);
		goto out;
	}
	if (cfg->shim_id == NULL || strcmp(key->shim_id, cfg->shim_id) != 0) {
		snprintf(why, sizeof(why), "%s: breakglass.verify_key %s is for "
			 "shim '%s', this is '%s'", path, path, key->shim_id,
			 cfg->shim_id ? cfg->shim_id : "");
		shim_memzero(key, sizeof(*key));
		rc = SHIM_EINVAL;
	}
out:
	if (rc != 0) {
		if (out != NULL) {
			fprintf(out, "%s\n", why);
		} else {
			log_err("%s", why);
		}
	}
	return rc;
}

/* breakglass.verify_key: the file shimctl breakglass provision wrote for
 * this shim. A key that cannot be read or is another shim's stops the
 * start (a configuration error); marks that cannot be loaded leave
 * break-glass refusing every code (breakglass_state_not_durable). */
static int bg_start(struct shimd *d)
{
	const char *path = d->cfg.breakglass_verify_key;
	struct shim_bg_key key;
	int rc;

	if (path == NULL) {
		return 0;
	}
	rc = shimd_breakglass_key(&d->cfg, &key, NULL);
	if (rc < 0) {
		return rc;
	}
	rc = shim_bg_init(&d->bg, &key, d->cfg.shim_id, &d->lp.port,
			  d->cfg.gate.state_required, shim_clock_floor(&d->clock));
	shim_memzero(&key, sizeof(key));
	if (rc < 0) {
		log_err("break-glass marks (%s): %s: every break-glass code is "
			"refused until the file is repaired or removed",
			SHIM_BG_STATE_NAME, shim_strerror(rc));
		emit_simple(d, "breakglass_state_lost", SHIM_SEV_ERR, "reason",
			    shim_strerror(rc));
		return 0;
	}
	log_info("break-glass: verify key %s for %s (issuer %s)", path,
		 d->cfg.shim_id, d->bg.key.key_id);
	return 0;
}

/* ---- feeding the controller ------------------------------------------------ */

/* One read of a side, as much as the controller takes. Returns 1 when
 * bytes (or a BREAK) went in, 0 when nothing was there or wanted, -1 when
 * the side is gone (reported). */
static int feed_once(struct shimd *d, enum shim_side side)
{
	struct shim_serial *s = side_line(d, side);
	size_t room = shim_ctl_input_room(&d->ctl, side);
	/* relayed bytes go straight into the controller's buffer */
	uint8_t *buf = shim_ctl_input_buffer(&d->ctl, side);
	int n, brk = 0;

	if (room == 0 || s->fd < 0) {
		return 0;
	}
	if (buf == NULL) {
		buf = d->rbuf;
		if (room > sizeof(d->rbuf)) {
			room = sizeof(d->rbuf);
		}
	}
	n = shim_serial_read(s, buf, room, &brk);
	if (n == SHIM_EDISCONN) {
		if (side == SHIM_SIDE_TECH) {
			shim_ctl_hangup(&d->ctl);
		} else {
			shim_ctl_device_up(&d->ctl, 0);
		}
		return -1;
	}
	if (n < 0 || (n == 0 && !brk)) {
		return 0;
	}
	shim_ctl_input(&d->ctl, side, buf, (size_t)n, brk);
	if (side == SHIM_SIDE_TECH && buf == d->rbuf) {
		/* dialogue input may hold a code, also when it just opened a
		 * session */
		shim_memzero(d->rbuf, (size_t)n);
	}
	return 1;
}

/* Dialogue input (and input dropped outside a session): bounded, so that
 * a flood cannot starve timers and signals. */
static void feed_dialogue(struct shimd *d, enum shim_side side)
{
	int rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		if (feed_once(d, side) <= 0) {
			break;
		}
		if (side == SHIM_SIDE_TECH && d->ctl.state == SHIM_ST_OPEN &&
		    !d->ctl.grace) {
			/* a session opened: the rest is relay input */
			break;
		}
	}
}

/* Relays until nothing moves (bounded, so timers and signals are not
 * starved): fewer trips through poll() when traffic is heavy. */
static void feed_relay(struct shimd *d)
{
	int i, moved;

	for (i = 0; i < 16 && d->ctl.state == SHIM_ST_OPEN; i++) {
		moved = 0;
		if (!d->ctl.grace) {
			moved |= feed_once(d, SHIM_SIDE_TECH) != 0;
		}
		if (d->ctl.state == SHIM_ST_OPEN) {
			moved |= feed_once(d, SHIM_SIDE_DEV) != 0;
		}
		if (!moved) {
			break;
		}
	}
}

/* The writer reports a failure through its descriptor. */
static void rec_check(struct shimd *d)
{
	struct shim_recorder_status rs;

	shim_recorder_ack(d->rec);
	shim_ctl_rec_ready(&d->ctl);
	if (d->ctl.state != SHIM_ST_OPEN || d->ctl.rec_failure_reported) {
		return;
	}
	shim_recorder_status(d->rec, &rs);
	if (!rs.failed) {
		return;
	}
	shim_ctl_rec_failed(&d->ctl, rs.failure);
	if (strstr(rs.failure, "space") != NULL ||
	    strstr(rs.failure, "ENOSPC") != NULL) {
		emit_simple(d, "storage_low", SHIM_SEV_ERR, "reason", rs.failure);
	}
}

/* ---- endpoints ----------------------------------------------------------- */

static void device_reopen(struct shimd *d)
{
	int rc;

	timer_ack(d, SHIMD_T_DEVICE);
	if (d->ctl.dev_up) {
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
	shim_ctl_device_up(&d->ctl, 1);
	log_info("device side %s connected", d->cfg.dev_path);
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
		shim_ctl_connect(&d->ctl, "technician line back");
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
	if (p && !d->ctl.tech_present) {
		shim_ctl_connect(&d->ctl, d->tech.cfg.presence == SHIM_PRESENCE_DCD ?
						  "DCD raised" : "DSR raised");
	} else if (!p && d->ctl.tech_present) {
		shim_ctl_hangup(&d->ctl);
	}
}

/* ---- emergency stop -------------------------------------------------------- */

void shimd_emergency_stop(struct shimd *d, const char *event,
			  const char *detail)
{
	shim_ctl_estop(&d->ctl, event, detail);
}

void shimd_estop_cleared(struct shimd *d)
{
	shim_ctl_estop_cleared(&d->ctl);
}

void shimd_end_session(struct shimd *d, const char *reason)
{
	shim_ctl_end_session(&d->ctl, reason);
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
	return shim_ctl_reset_lockout(&d->ctl, id, who);
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
	shim_ctl_clock_report(&d->ctl, rep);
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
		     shim_state_name(d->ctl.state),
		     iso_time(d->ctl.state_since_ns, since, sizeof(since)),
		     d->ctl.state == SHIM_ST_OPEN ? d->ctl.tech_id : "-",
		     d->ctl.state == SHIM_ST_OPEN ? d->ctl.session_id : "-",
		     d->ctl.state == SHIM_ST_OPEN ?
			     iso_time(d->ctl.session_start_wall, started,
				      sizeof(started)) : "-",
		     d->ctl.state == SHIM_ST_OPEN ? d->ctl.in.bytes : 0,
		     d->ctl.state == SHIM_ST_OPEN ? d->ctl.out.bytes : 0,
		     d->cfg.tech_path,
		     d->ctl.tech_present ? (d->ctl.grace ? "reconnect grace" :
				       "connected") : "absent",
		     d->cfg.dev_path, d->ctl.dev_up ? "open" : "absent",
		     shim_gate_lockouts(&d->gate, now),
		     clock == SHIM_CLOCK_TRUSTED ? "ok" :
						   shim_clock_verdict_name(clock),
		     rs.failed ? "failed" : "ok", rs.failed ? ": " : "",
		     rs.failed ? rs.failure : "", rs.storage_used,
		     d->cfg.siem_transport == SHIM_SIEM_NOOP ?
			     "disabled (transport: noop)" :
		     es.link_up ? "up" : (es.link_error[0] ? es.link_error :
				       "down"),
		     es.spool_depth,
		     d->ctl.state == SHIM_ST_EMERGENCY_STOP ? d->ctl.estop_event : "no",
		     shimd_latch_id(d, latch));
	if (n < 0) {
		return 0;
	}
	if ((size_t)n < cap) {
		int m;

		if (d->up != NULL) {
			struct shim_uploader_status us;

			shim_uploader_status(d->up, &us);
			m = snprintf(buf + n, cap - (size_t)n,
				     "upload_queue: %" PRIu64 " recordings, %" PRIu64
				     " bytes\n"
				     "upload_oldest: %s\n"
				     "upload_delivered: %" PRIu64 "\n"
				     "upload_link: %s%s%s\n",
				     us.queue_count, us.queue_bytes,
				     us.oldest[0] ? us.oldest : "-", us.delivered,
				     us.link_ok ? "ok" : "failing",
				     us.outage_alarm ? " (outage alarm)" : "",
				     us.link_ok ? "" : "");
			if (m > 0 && !us.link_ok && us.last_error[0] &&
			    (size_t)(n + m) < cap) {
				/* the reason on its own line */
				m += snprintf(buf + n + m, cap - (size_t)(n + m),
					      "upload_error: %s\n", us.last_error);
			}
		} else {
			m = snprintf(buf + n, cap - (size_t)n,
				     "upload_queue: off (no custody: section)\n");
		}
		if (m > 0) {
			n += m;
		}
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
	const struct shim_ctl *c = &d->ctl;
	size_t i;
	int open = c->state == SHIM_ST_OPEN;

	for (i = 0; i < SLOT__COUNT; i++) {
		p[i].fd = -1;
		p[i].events = 0;
		p[i].revents = 0;
	}
	if (d->tech.fd >= 0 && (!open || !c->grace || c->tech_present)) {
		/* in the reconnect grace only someone at the prompt is read */
		p[SLOT_TECH].fd = d->tech.fd;
		if (shim_ctl_input_room(c, SHIM_SIDE_TECH) > 0) {
			p[SLOT_TECH].events |= POLLIN;
		}
		if (shim_ctl_wants_output(c, SHIM_SIDE_TECH)) {
			p[SLOT_TECH].events |= POLLOUT;
		}
		if (d->tech.is_pty && !d->tech.peer_open && !c->tech_present) {
			/* a fresh pty: nothing to read until a peer opens it */
			p[SLOT_TECH].events &= (short)~POLLIN;
		}
	}
	p[SLOT_TECH_WATCH].fd = d->tech.watch_fd;
	p[SLOT_TECH_WATCH].events = POLLIN;
	if (d->dev.fd >= 0) {
		p[SLOT_DEV].fd = d->dev.fd;
		if (shim_ctl_input_room(c, SHIM_SIDE_DEV) > 0) {
			p[SLOT_DEV].events = POLLIN;
		}
		if (shim_ctl_wants_output(c, SHIM_SIDE_DEV)) {
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

static void on_timer(struct shimd *d, enum shimd_timer t)
{
	switch (t) {
	case SHIMD_T_CTL:
		timer_ack(d, t);
		d->ctl_armed = INT64_MIN; /* fired: arm again */
		shim_ctl_tick(&d->ctl);
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
		shim_ctl_connect(&d->ctl, "technician opened the line");
		break;
	case SHIMD_T_SENSORS:
		timer_ack(d, t);
		shimd_sensors_service(d);
		break;
	case SHIMD_T_HEARTBEAT:
		timer_ack(d, t);
		shimd_heartbeat_tick(d);
		shimd_techs_check(d);
		break;
	case SHIMD_T_ADMIN:
		timer_ack(d, t);
		shimd_admin_expire(d);
		break;
	case SHIMD_T_WATCHDOG:
		/* the loop is alive: a wedged loop misses this, and the
		 * service manager restarts shimd */
		timer_ack(d, t);
		(void)shimd_notify_send(&d->notify, "WATCHDOG=1");
		break;
	default:
		timer_ack(d, t);
		break;
	}
}

/* The serial lines after poll: writes first (the dialogue's text and held
 * relay bytes), then reads, then hang-ups seen without data. */
static void serve_lines(struct shimd *d, short trev, short drev)
{
	const short in_ev = POLLIN | POLLHUP | POLLERR;

	if (trev & POLLOUT) {
		shim_ctl_output_ready(&d->ctl, SHIM_SIDE_TECH);
	}
	if ((drev & POLLOUT) && d->ctl.state == SHIM_ST_OPEN) {
		shim_ctl_output_ready(&d->ctl, SHIM_SIDE_DEV);
	}
	if (d->ctl.state != SHIM_ST_OPEN) {
		if (trev & in_ev) {
			feed_dialogue(d, SHIM_SIDE_TECH);
		}
		if (drev & in_ev) {
			/* read and dropped: it never reaches the technician,
			 * and the device is not left blocked on a full line */
			feed_dialogue(d, SHIM_SIDE_DEV);
		}
		return;
	}
	if (d->ctl.grace && d->ctl.tech_present && (trev & in_ev)) {
		feed_dialogue(d, SHIM_SIDE_TECH);
	}
	if (d->ctl.state == SHIM_ST_OPEN && ((trev | drev) & in_ev)) {
		feed_relay(d);
	}
	if (d->ctl.state == SHIM_ST_OPEN && !d->ctl.grace &&
	    (trev & (POLLHUP | POLLERR)) && !(trev & POLLIN)) {
		shim_ctl_hangup(&d->ctl);
	}
	if (d->ctl.state == SHIM_ST_OPEN && (drev & (POLLHUP | POLLERR)) &&
	    !(drev & POLLIN)) {
		shim_ctl_device_up(&d->ctl, 0);
	}
}

int shimd_run(struct shimd *d)
{
	struct pollfd p[SLOT__COUNT];
	char line[512];
	size_t i;
	int n;

	/* Start-up is over: from here on only the steady state's system
	 * calls (daemon/harden.c). */
	if (shimd_harden_seccomp(&d->hard) < 0) {
		log_err("refusing to run without the seccomp allow-list");
		return 1;
	}
	shimd_harden_summary(&d->hard, line, sizeof(line));
	log_info("%s", line);
	if (d->notify.watchdog_us > 0) {
		uint64_t ms = d->notify.watchdog_us / 2000;
		struct itimerspec its;

		memset(&its, 0, sizeof(its));
		its.it_value.tv_sec = its.it_interval.tv_sec = (time_t)(ms / 1000);
		its.it_value.tv_nsec = its.it_interval.tv_nsec =
			(long)(ms % 1000) * 1000000L;
		if (ms == 0) {
			its.it_value.tv_nsec = its.it_interval.tv_nsec = 500000L;
		}
		timerfd_settime(d->timer_fd[SHIMD_T_WATCHDOG], 0, &its, NULL);
	}
	snprintf(line, sizeof(line), "READY=1\nSTATUS=%s, gate %s",
		 d->hard.seccomp ? "seccomp on" : "seccomp off",
		 shim_state_name(d->ctl.state));
	(void)shimd_notify_send(&d->notify, line);

	while (!d->stop) {
		ctl_timer_update(d);
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
			rec_check(d);
		}
		for (i = 0; i < SHIMD_T__COUNT; i++) {
			if (p[SLOT_TIMER0 + i].revents) {
				on_timer(d, (enum shimd_timer)i);
			}
		}
		if (p[SLOT_TECH_WATCH].revents &&
		    shim_serial_pty_check_open(&d->tech)) {
			if (d->ctl.state == SHIM_ST_OPEN) {
				/* back within the reconnect grace: no prompt */
				shim_ctl_connect(&d->ctl, "technician reconnected");
			} else {
				shimd_timer_set(d, SHIMD_T_SETTLE,
						SHIMD_SETTLE_MS);
			}
		}
		if (p[SLOT_DEV_WATCH].revents &&
		    shim_serial_pty_check_open(&d->dev)) {
			log_info("device side opened (%s)", d->dev.path);
		}
		serve_lines(d, p[SLOT_TECH].revents, p[SLOT_DEV].revents);
		if (p[SLOT_ADMIN].revents) {
			shimd_admin_accept(d);
		}
		for (i = 0; i < SHIMD_ADMIN_CLIENTS; i++) {
			if (p[SLOT_ADMIN_CLIENT0 + i].revents) {
				shimd_admin_client_io(d, &d->admin[i]);
			}
		}
	}
	/* SIGTERM or the power-fail input: end the session, say so, report
	 * the expected absence with a signed shutting_down. */
	{
		int pf = strcmp(d->stop_reason, "power_fail") == 0;

		(void)shimd_notify_send(&d->notify, "STOPPING=1");
		shim_ctl_shutdown(&d->ctl, pf ? "power_loss" : "shutdown");
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

/* Central custody (common/uploader.c, its thread). */
static void up_emit(void *arg, struct shim_event *ev)
{
	shimd_emit(arg, ev);
}

static int up_remove(void *arg, const char *name)
{
	struct shimd *d = arg;

	return shim_recorder_remove(d->rec, name);
}

static int up_may_delete(void *arg, const char *name)
{
	struct shimd *d = arg;

	return shim_uploader_may_delete(d->up, name);
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
		struct statvfs vfs;

		/* Name the real cause: a read-only filesystem (an SD card
		 * mounted ro, a failing card the kernel remounted) reads as
		 * "permission denied" otherwise. */
		if (statvfs(root, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
			log_err("storage %s is on a read-only filesystem: "
				"remount it read-write (a card the kernel "
				"remounted read-only may be failing)", root);
		} else {
			log_err("storage %s is not writable: %s", root,
				shim_strerror(fd));
		}
		return fd;
	}
	unlink(probe);
	close(fd);
	return 0;
}

/* Why a serial path could not be opened, in the words of what it is. */
static const char *serial_cause(const char *path, int rc)
{
	struct stat st;

	if (rc != SHIM_ENOTSUP || stat(path, &st) != 0) {
		return shim_strerror(rc);
	}
	if (S_ISREG(st.st_mode)) {
		return "is a regular file, not a terminal (name the serial "
		       "port's device, e.g. /dev/ttyUSB0)";
	}
	if (S_ISDIR(st.st_mode)) {
		return "is a directory, not a terminal";
	}
	if (S_ISCHR(st.st_mode)) {
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		int not_tty = fd >= 0 && !isatty(fd);

		if (fd >= 0) {
			close(fd);
		}
		/* a terminal that refuses a setting (or one that cannot be
		 * looked at again): the code says so */
		return !not_tty ? shim_strerror(rc) :
		       "is a character device but not a terminal (not a "
		       "serial port)";
	}
	return "is not a terminal";
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
	d->notify.fd = -1;
	if (d->cfg.tech_path == NULL || d->cfg.dev_path == NULL) {
		log_err("configuration names no serial endpoints");
		return SHIM_EINVAL;
	}
	/* A decommissioned unit (shimctl decommission) stays stopped until
	 * it is provisioned again. */
	{
		char *marker = shim_config_path(&d->cfg, "DECOMMISSIONED");
		int gone = marker != NULL && access(marker, F_OK) == 0;

		if (gone) {
			log_err("this unit is decommissioned (%s): shimd does "
				"not start until it is provisioned again "
				"(shimctl provision)", marker);
		}
		free(marker);
		if (gone) {
			return SHIM_ESTATE;
		}
	}
#ifdef SHIM_FACTORY_BUILD
	log_warn("factory-test build: a factory_jumper input lets tamper "
		 "sensors report without latching; not for deployed units");
#endif
	rc = shimd_notify_open(&d->notify);
	if (rc < 0) {
		return rc;
	}
	/* no_new_privs, root dropped, no capability: before anything is
	 * created in the storage (daemon/harden.c) */
	rc = shimd_harden_privileges(&d->hard, &d->cfg);
	if (rc < 0) {
		return rc;
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
	/* Before the first thread: a Landlock domain binds the thread that
	 * asks and those it creates afterwards. */
	rc = shimd_harden_landlock(&d->hard, &d->cfg);
	if (rc < 0) {
		log_err("refusing to start: the Landlock rules were refused");
		return rc;
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
	rc = shimd_techs_init(d);
	if (rc < 0) {
		return rc;
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

	rc = shim_recorder_open(&d->rec, &d->cfg, &d->lp.port, on_recovered, d);
	if (rc < 0) {
		log_err("recorder under %s: %s", d->cfg.storage_root,
			shim_strerror(rc));
		return rc;
	}
	shim_recorder_set_on_deleted(d->rec, on_rec_deleted, d);
	if (d->cfg.custody_url != NULL) {
		struct shim_uploader_ops uops = {
			.emit = up_emit,
			.remove = up_remove,
			.arg = d,
		};

		rc = shim_uploader_open(&d->up, &d->cfg, &uops);
		if (rc < 0) {
			log_err("custody uploader: %s", shim_strerror(rc));
			return rc;
		}
		/* before any trusted time reaches the recorder: retention
		 * and the budget never delete an undelivered recording */
		shim_recorder_set_may_delete(d->rec, up_may_delete, d);
		log_info("custody: sealed recordings go to %s/%s/",
			 d->cfg.custody_url, d->cfg.shim_id);
	}
	rc = bg_start(d);
	if (rc < 0) {
		return rc;
	}
	rc = ctl_start(d);
	if (rc < 0) {
		log_err("session controller: %s", shim_strerror(rc));
		return rc;
	}
	shimd_clock_report(d, NULL);
	if (shim_recorder_local_custody(d->rec)) {
		log_warn("recording key custody is local (no recording.public_key): "
			 "whoever takes this shim's storage can read its recordings; "
			 "configure the central recording key (shimctl keygen recording)");
	}

	rc = shim_serial_open(&d->tech, d->cfg.tech_path, &d->cfg.tech_serial);
	if (rc < 0) {
		log_err("technician side %s: %s", d->cfg.tech_path,
			serial_cause(d->cfg.tech_path, rc));
		return rc;
	}
	rc = shim_serial_open(&d->dev, d->cfg.dev_path, &d->cfg.dev_serial);
	if (rc < 0) {
		if (!d->cfg.device_retry || shim_serial_is_pty_spec(d->cfg.dev_path,
								    &(const char *){ NULL })) {
			log_err("device side %s: %s", d->cfg.dev_path,
				serial_cause(d->cfg.dev_path, rc));
			return rc;
		}
		log_warn("device side %s: %s: retrying", d->cfg.dev_path,
			 shim_strerror(rc));
		d->dev.fd = -1;
		shimd_timer_set(d, SHIMD_T_DEVICE, SHIMD_DEVICE_RETRY_MS);
	} else {
		shim_ctl_device_up(&d->ctl, 1);
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
			shim_event_add(&ev, "state", shim_state_name(d->ctl.state));
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
			shim_ctl_connect(&d->ctl, d->tech.cfg.presence ==
							  SHIM_PRESENCE_NONE ?
						  "serial line open" :
						  "presence line up");
		}
	}
	return 0;
}

void shimd_fini(struct shimd *d)
{
	size_t i;

	shimd_admin_close(d);
	shimd_tamper_fini(d);
	/* the uploader's thread first (it deletes through the recorder);
	 * its state answers the recorder's questions until both are gone */
	shim_uploader_stop(d->up);
	if (d->rec != NULL) {
		shim_recorder_close(d->rec, "shutdown");
	}
	shim_uploader_close(d->up);
	d->up = NULL;
	d->rec = NULL;
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
	shim_bg_wipe(&d->bg);
	if (d->gate_scratch != NULL) {
		shim_memzero(d->gate_scratch, d->gate_scratch_cap);
		free(d->gate_scratch);
	}
	shim_lineedit_reset(&d->ctl.le);
	shim_memzero(d->rbuf, sizeof(d->rbuf));
	shim_linux_port_fini(&d->lp);
	shimd_techs_fini(d);
	shim_config_free(&d->cfg);
	shimd_notify_close(&d->notify);
	if (d->lock_fd >= 0) {
		close(d->lock_fd);
	}
}
