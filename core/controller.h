/*
 * The session controller: what the shim does with every byte in every
 * state. The technician dialogue (DESIGN.md contract 4.4), the gate call,
 * session start and end with the recorder and the events, the relay and
 * its back-pressure, the timeouts as deadlines, the reconnect grace, the
 * emergency stop.
 *
 * It is driven by its loop (shimd on Linux, the firmware's main loop on a
 * microcontroller) through the shim_ctl_* calls below, and acts through
 * ops tables: the two serial lines, the recorder, the event sink, a log
 * and the tamper latch. It never blocks, never allocates and reads time
 * from the port's clock.
 *
 * Invariants:
 *  - Bytes cross between the two sides only in OPEN, only while the
 *    session's technician is on the line, and only after the recorder
 *    took them.
 *  - Every transition goes through the state table (session.h); a refused
 *    transition closes the gate.
 *  - The zero value of every result is a refusal.
 */
#ifndef SHIM_CORE_CONTROLLER_H
#define SHIM_CORE_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>

#include "breakglass.h"
#include "clock.h"
#include "event.h"
#include "gate.h"
#include "lineedit.h"
#include "port.h"
#include "record.h"
#include "session.h"

/* Bytes held per relay direction; the MCU build sets it smaller. */
#ifndef SHIM_CTL_RELAY_BUF
#define SHIM_CTL_RELAY_BUF 4096
#endif
/* Text queued for the technician outside the relay (prompt, echo). */
#ifndef SHIM_CTL_MSG_BUF
#define SHIM_CTL_MSG_BUF 2048
#endif
/* Bytes taken per shim_ctl_input() call outside a session. */
#define SHIM_CTL_DIALOGUE_CHUNK 512

enum shim_side {
	SHIM_SIDE_TECH = 0,
	SHIM_SIDE_DEV = 1,
};

enum shim_log_level {
	SHIM_LOG_ERR = 0,
	SHIM_LOG_WARN,
	SHIM_LOG_INFO,
	SHIM_LOG_DEBUG,
};

/* The two serial lines. */
struct shim_ctl_io {
	/* Writes up to len bytes without blocking. Returns the count taken
	 * (0 when the line is full: the loop calls shim_ctl_output_ready()
	 * when it can take more) or SHIM_EDISCONN. Mandatory. */
	int (*write)(void *ctx, enum shim_side side, const uint8_t *buf,
		     size_t len);
	/* Drops what the line received and nobody read yet. Mandatory. */
	void (*flush_input)(void *ctx, enum shim_side side);
	/* Drops what was written to the line and not sent yet. Mandatory. */
	void (*flush_output)(void *ctx, enum shim_side side);
	/* The controller learnt that a side is gone (a failed write, a
	 * vanished device, shim_ctl_hangup(), shim_ctl_device_up(0)): the
	 * port releases or renews the line. Returns 1 when the line is ready
	 * again at once (a renewed pty), 0 when the port reports it back
	 * later with shim_ctl_connect() / shim_ctl_device_up(). Mandatory. */
	int (*lost)(void *ctx, enum shim_side side);
	/* Sends BREAK on the device line. Optional. */
	int (*send_break)(void *ctx);
	/* 1 while the device line is still there (a USB adapter that was
	 * pulled is not), 0 when it is gone. Optional: always there. */
	int (*dev_alive)(void *ctx);
	/* session.device_reset: begin = 1 drops DTR (or arranges the
	 * equivalent), begin = 0 ends the reset. *how names it for the
	 * recording ("dtr", "hangup"). Optional: no reset. */
	int (*dev_reset)(void *ctx, int begin, const char **how);
	void *ctx;
};

/* The session recorder (the record format of record.h, written by the
 * port: a writer thread on Linux, the storage port on an MCU). */
struct shim_ctl_rec_ops {
	/* 0 when a session can be recorded now (storage there, room above
	 * the floor), else the reason. Mandatory. */
	int (*can_start)(void *ctx);
	/* Starts a recording and names the session. Mandatory. */
	int (*begin)(void *ctx, const char *technician,
		     char session_id[SHIM_SESSION_ID_MAX]);
	/* Takes relayed bytes. SHIM_EAGAIN: full, the controller holds the
	 * bytes until shim_ctl_rec_ready(). Any other error ends the session
	 * (recording.on_failure: stop). Mandatory. */
	int (*traffic)(void *ctx, enum shim_rec_dir dir, const uint8_t *buf,
		       size_t len, int64_t wall_ns, int64_t mono_ns);
	/* An event inside the session (hang-up, BREAK, logout). Mandatory. */
	int (*meta)(void *ctx, const char *name, const char *detail,
		    int64_t wall_ns, int64_t mono_ns);
	/* Seals the recording with its footer. Mandatory. */
	int (*end)(void *ctx, const char *reason, int64_t wall_ns,
		   int64_t mono_ns);
	/* The trusted time for retention (0: none). Optional. */
	void (*trusted_time)(void *ctx, int64_t unix_s);
	void *ctx;
};

struct shim_ctl_hooks {
	/* One log line, without a newline. Optional. */
	void (*log)(void *ctx, enum shim_log_level level, const char *line);
	/* Latches the emergency stop durably and reports it (the tamper
	 * latch). Called once per stop, after the gate closed. Optional. */
	void (*latch)(void *ctx, const char *event, const char *detail);
	void *ctx;
};

enum shim_ctl_device_reset {
	SHIM_CTL_RESET_NONE = 0,
	SHIM_CTL_RESET_DTR = 1,
};

struct shim_ctl_cfg {
	uint32_t idle_timeout_ms;     /* no technician input; 0 = none */
	uint32_t max_duration_ms;     /* 0 = none */
	uint32_t reconnect_grace_ms;  /* 0 = a hang-up ends the session */
	uint32_t fail_delay_ms;       /* input ignored after a refusal */
	uint32_t device_reset_hold_ms;
	enum shim_ctl_device_reset device_reset;
	const uint8_t *device_logout; /* sent to the device at session end */
	size_t device_logout_len;
	int on_failure_continue;      /* recording.on_failure: continue */
	size_t relay_cap;             /* bytes per relayed chunk (<= buf) */
	/* The technician line has no presence signal (a plain tty): its first
	 * byte is the connection. Otherwise input while absent is dropped. */
	int connect_on_input;
	/* breakglass.max_duration: a break-glass session ends by then or at
	 * its code's expiry, whichever is first (0: the code's expiry). */
	uint32_t bg_max_duration_ms;
};

/* Defaults: the Linux daemon's (fail delay 1 s, 4096-byte chunks). */
void shim_ctl_cfg_default(struct shim_ctl_cfg *cfg);

struct shim_ctl_relay {
	uint8_t buf[SHIM_CTL_RELAY_BUF];
	size_t len;       /* bytes held */
	size_t off;       /* bytes already written */
	int recorded;     /* the held bytes are in the recorder */
	uint64_t bytes;   /* forwarded in this session */
};

/* Deadlines (monotonic ns; 0 = not armed). */
enum shim_ctl_deadline {
	SHIM_DL_FAIL_DELAY = 0,
	SHIM_DL_IDLE,
	SHIM_DL_MAX,
	SHIM_DL_GRACE,
	SHIM_DL_LOCK,
	SHIM_DL_DEVRESET,
	SHIM_DL__COUNT,
};

struct shim_ctl {
	struct shim_ctl_cfg cfg;
	const struct shim_port *port;
	struct shim_gate *gate;
	struct shim_clock *clock;
	struct shim_ctl_io io;
	struct shim_ctl_rec_ops rec;
	struct shim_event_sink_ops sink;
	struct shim_ctl_hooks hooks;

	enum shim_state state;
	int64_t state_since_ns;   /* wall time of the last transition */
	struct shim_lineedit le;
	int fail_delay;           /* refusal delay running: input ignored */
	int tech_present;
	int dev_up;
	int dev_resetting;
	int stopping;             /* shutting down: no new prompt */

	char session_id[SHIM_SESSION_ID_MAX];
	char tech_id[SHIM_TECH_ID_MAX + 1];
	int64_t session_start_mono;
	int64_t session_start_wall;
	int64_t last_input_mono;
	int grace;                /* technician away within the grace */
	int64_t grace_since_mono;
	struct shim_ctl_relay in;  /* technician -> device */
	struct shim_ctl_relay out; /* device -> technician */
	int rec_wait;             /* waiting for recorder room */
	int rec_failure_reported;
	uint64_t rec_stalls;

	uint8_t msg[SHIM_CTL_MSG_BUF];
	size_t msg_len;
	int msg_hold;           /* echo of one read: written once, at its end */

	struct shim_bg *bg;       /* break-glass verifier; NULL: none */
	char bg_serial[SHIM_BG_SERIAL_LEN + 1]; /* of a break-glass session */

	int64_t deadline[SHIM_DL__COUNT];
	char estop_event[64];
	int64_t estop_ns;
	struct shim_event ev;     /* scratch for the events emitted */
};

/* Checks the ops (the mandatory ones set) and starts in IDLE with the
 * device side down. Returns 0 or SHIM_EINVAL. */
int shim_ctl_init(struct shim_ctl *c, const struct shim_ctl_cfg *cfg,
		  const struct shim_port *port, struct shim_gate *gate,
		  struct shim_clock *clock, const struct shim_ctl_io *io,
		  const struct shim_ctl_rec_ops *rec,
		  const struct shim_event_sink_ops *sink,
		  const struct shim_ctl_hooks *hooks);

/* Gives the controller a break-glass verifier (already set up with
 * shim_bg_init(); it must outlive the controller), or NULL for none. A
 * line "<technician_id> <code>" whose code part is break-glass shaped
 * (SHIM_BG_MIN_ATTEMPT characters or more) is then checked as one: the
 * gate's rate limit and lockout first, every failure counted there; on
 * success the code's mark is durable, breakglass_used and two
 * breakglass_notify events (audience clinical_engineering and infosec)
 * are durable in the priority lane, and only then does the session open,
 * marked "breakglass" in its recording. Without a verifier such a line is
 * refused (breakglass_not_configured). */
void shim_ctl_set_breakglass(struct shim_ctl *c, struct shim_bg *bg);

/* ---- what the loop reports ------------------------------------------- */

/* A technician is on the line (pty opened, DCD/DSR up, first byte on a
 * plain tty). Prompts, or says why not (locked, emergency stop). */
void shim_ctl_connect(struct shim_ctl *c, const char *cause);
/* The technician went away. In OPEN starts the reconnect grace or ends
 * the session. Calls io.lost(TECH). */
void shim_ctl_hangup(struct shim_ctl *c);
/* The device line is open (up = 1) or was found gone (up = 0: ends an
 * open session with device_disconnect and calls io.lost(DEV)). */
void shim_ctl_device_up(struct shim_ctl *c, int up);

/* Bytes the controller takes from a side now (0: do not read it). */
size_t shim_ctl_input_room(const struct shim_ctl *c, enum shim_side side);
/* Where the loop may read a side's bytes to spare a copy on the relay
 * path: the relay's own buffer while that side is relayed and has room
 * (shim_ctl_input_room() bytes), else NULL (read into a buffer of the
 * loop's own). */
uint8_t *shim_ctl_input_buffer(struct shim_ctl *c, enum shim_side side);
/* Bytes read from a side (at most shim_ctl_input_room()). brk: a BREAK
 * arrived before them (technician side). */
void shim_ctl_input(struct shim_ctl *c, enum shim_side side,
		    const uint8_t *buf, size_t len, int brk);
/* 1 when bytes wait for a side that could not take them. */
int shim_ctl_wants_output(const struct shim_ctl *c, enum shim_side side);
/* The side can take bytes again. */
void shim_ctl_output_ready(struct shim_ctl *c, enum shim_side side);
/* The recorder has room again (after SHIM_EAGAIN). */
void shim_ctl_rec_ready(struct shim_ctl *c);
/* The recorder's writer failed (reason for the SIEM). With on_failure:
 * stop the session ends; with continue it goes on, the technician told
 * once. */
void shim_ctl_rec_failed(struct shim_ctl *c, const char *reason);

/* Runs what is due at the port's monotonic time. */
void shim_ctl_tick(struct shim_ctl *c);
/* The earliest armed deadline (monotonic ns), or INT64_MAX. */
int64_t shim_ctl_next_deadline(const struct shim_ctl *c);

/* ---- commands ---------------------------------------------------------- */

/* Closes the gate at once: nothing held is forwarded, an open session
 * ends with "tamper:<event>", EMERGENCY_STOP (latched through
 * hooks.latch) and "EMERGENCY STOP" to the technician. */
void shim_ctl_estop(struct shim_ctl *c, const char *event,
		    const char *detail);
/* The latch was cleared by an authorised reset: back to the prompt. */
void shim_ctl_estop_cleared(struct shim_ctl *c);
/* Clears a technician's lockout (and the LOCKED state). */
int shim_ctl_reset_lockout(struct shim_ctl *c, const char *id,
			   const char *who);
/* Ends an open session with reason ("shutdown", "power_loss") and tells
 * the technician the shim is going down. No prompt afterwards. */
void shim_ctl_shutdown(struct shim_ctl *c, const char *reason);
/* Ends the open session with reason (contract 4.6). */
void shim_ctl_end_session(struct shim_ctl *c, const char *reason);
/* Reports a clock check (clock_jump, clock_recovered; NULL: no news)
 * and gives the recorder the trusted time, or none. */
void shim_ctl_clock_report(struct shim_ctl *c,
			   const struct shim_clock_report *rep);

/* Emits an event through the sink (errors are logged). */
void shim_ctl_emit(struct shim_ctl *c, struct shim_event *ev);
/* Formats one log line through hooks.log (%s %d %u %ld %lld %lu %llu %zu
 * %x %c %%, with - and a width for numbers). */
void shim_ctl_log(struct shim_ctl *c, enum shim_log_level level,
		  const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/* The technician line is in the dialogue (prompt, line editor, gate). */
int shim_ctl_dialogue_open(const struct shim_ctl *c);

#endif
