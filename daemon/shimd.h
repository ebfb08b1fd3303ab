/*
 * shimd: one event loop over poll(2) with timers and signals as file
 * descriptors, wiring the gate, the recorder, the event log and the two
 * serial endpoints together.
 */
#ifndef SHIMD_SHIMD_H
#define SHIMD_SHIMD_H

#include <poll.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "controller.h"
#include "eventlog.h"
#include "gate.h"
#include "harden.h"
#include "heartbeat.h"
#include "lineedit.h"
#include "notify.h"
#include "port_linux.h"
#include "recorder.h"
#include "sensors.h"
#include "serial.h"
#include "session.h"
#include "tamper.h"
#include "uploader.h"

#define SHIMD_ADMIN_CLIENTS 4
#define SHIMD_ADMIN_LINE 2048
#define SHIMD_MAX_WATCHES 24
#define SHIMD_FAIL_DELAY_MS 1000
#define SHIMD_DEVICE_RETRY_MS 1000
#define SHIMD_PRESENCE_POLL_MS 500
/* A terminal program that opens the line usually sets it up next and
 * flushes its input, which would swallow a prompt sent at once. */
#define SHIMD_SETTLE_MS 150
/* An admin client that has not sent its request line by then is closed. */
#define SHIMD_ADMIN_IDLE_MS 2000

struct shimd_admin_client {
	int fd;
	size_t len;
	char buf[SHIMD_ADMIN_LINE];
	unsigned uid;
	int pid;
	int64_t since_mono;  /* accepted at (monotonic ns) */
};

/* Extra descriptors (tamper sensors, heartbeats, SIEM link) watched by the
 * loop. The callback runs after poll reports revents for fd. */
struct shimd;
typedef void (*shimd_watch_cb)(struct shimd *d, int fd, short revents,
			       void *arg);

struct shimd_watch {
	int fd;
	short events;
	shimd_watch_cb cb;
	void *arg;
};

enum shimd_timer {
	SHIMD_T_CTL = 0,        /* the controller's earliest deadline */
	SHIMD_T_DEVICE,         /* reopen a lost tty device */
	SHIMD_T_TECH,           /* reopen a lost technician tty */
	SHIMD_T_PRESENCE,       /* DCD/DSR look */
	SHIMD_T_SETTLE,         /* prompt a moment after a terminal opened */
	SHIMD_T_SENSORS,        /* sensor debounce and file checks */
	SHIMD_T_HEARTBEAT,      /* tamper.heartbeat_period */
	SHIMD_T_ADMIN,          /* admin clients' idle limit */
	SHIMD_T_WATCHDOG,       /* WATCHDOG=1 to the service manager */
	SHIMD_T__COUNT,
};

struct shimd {
	struct shim_config cfg;
	struct shim_linux_port lp;
	struct shim_clock clock; /* clock trust: the gate, retention, tokens */
	struct shim_gate gate;
	struct shim_bg bg;          /* break-glass verifier (breakglass:) */
	uint8_t *gate_scratch;
	size_t gate_scratch_cap;
	/* The configuration's own technicians; cfg.techs is the gate's
	 * table: these plus the sealed enrolment store's (techstore.h). */
	struct shim_technician *conf_techs;
	size_t conf_ntechs;
	struct {                 /* the store file as last read */
		int present;
		unsigned long long ino, size;
		long long mtime_ns;
	} store_seen;
	struct shim_recorder *rec;
	struct shim_uploader *up; /* NULL without custody: */
	struct shim_eventlog *evlog;

	struct shim_serial tech;
	struct shim_serial dev;

	/* the session controller: states, dialogue, sessions, relay */
	struct shim_ctl ctl;
	int64_t ctl_armed;       /* deadline the controller's timer is set to */
	uint8_t rbuf[SHIM_CTL_RELAY_BUF]; /* one read from a line */

	int timer_fd[SHIMD_T__COUNT];
	int signal_fd;
	int admin_fd;
	char *admin_path;
	struct shimd_admin_client admin[SHIMD_ADMIN_CLIENTS];

	struct shimd_watch watches[SHIMD_MAX_WATCHES];
	size_t nwatches;

	/* tamper latch, sensors, heartbeats (tamper.c) */
	struct shim_tamper tamper;
	struct shim_sensors *sensors;
	struct shim_hb_timer hb;
	int64_t boot_mono_ns;
	char bin_digest[65];
	char cfg_digest[65];
	char stop_reason[24];    /* why the loop is stopping ("" = signal) */

	int lock_fd;             /* <storage_root>/shimd.lock, held */
	struct shimd_harden hard; /* privileges, Landlock, seccomp */
	struct shimd_notify notify; /* $NOTIFY_SOCKET, watchdog */
	int stop;                /* leave the loop */
	int exit_code;
};

/* Sets everything up from a loaded configuration (cfg is moved into d).
 * Returns 0, or a negative code after logging a one-line reason. */
int shimd_init(struct shimd *d, const struct shim_config *cfg);

/* Runs the loop until SIGTERM/SIGINT or a fatal error. Returns the exit
 * status for the process. */
int shimd_run(struct shimd *d);

void shimd_fini(struct shimd *d);

/* Closes the gate at once: stops forwarding both ways, ends an open
 * session with "tamper:<event>", enters EMERGENCY_STOP (latched, persisted)
 * and prints "EMERGENCY STOP" to the technician; then reports "tamper" and
 * "emergency_stop" in the priority lane. detail may be NULL. */
void shimd_emergency_stop(struct shimd *d, const char *event,
			  const char *detail);

/* Back to IDLE/CHALLENGE after an authorised reset of the latch. */
void shimd_estop_cleared(struct shimd *d);

/* tamper.c: the latch, sensors and heartbeats in the loop. */
int shimd_tamper_init(struct shimd *d);
void shimd_tamper_fini(struct shimd *d);
void shimd_tamper_latch(struct shimd *d, const char *event, const char *detail);
void shimd_sensors_service(struct shimd *d);
void shimd_heartbeat_tick(struct shimd *d);
void shimd_heartbeat_shutdown(struct shimd *d, const char *reason);
/* The identity of the latch held ("<seq>-<boot>"), "-" when clear. */
const char *shimd_latch_id(const struct shimd *d, char buf[SHIM_LATCH_ID_MAX]);
/* Clears the latch with a signed reset token; msg gets the answer line. */
int shimd_tamper_reset(struct shimd *d, const char *token, const char *who,
		       char *msg, size_t cap);

/* Adds a descriptor to the loop (sensors, heartbeat timers, SIEM). */
int shimd_watch_add(struct shimd *d, int fd, short events, shimd_watch_cb cb,
		    void *arg);
void shimd_watch_remove(struct shimd *d, int fd);

/* Emits an event through the event log (stamped with shim ID and seq). */
void shimd_emit(struct shimd *d, struct shim_event *ev);

/* Ends the open session with reason (contract 4.6). */
void shimd_end_session(struct shimd *d, const char *reason);

/* Start: points the key provider at the storage key, and makes cfg.techs
 * the configuration's technicians plus the store's. A store that cannot
 * be opened stops the start (logged). */
int shimd_techs_init(struct shimd *d);
void shimd_techs_fini(struct shimd *d);

/* Reads the sealed enrolment store again and puts the new technician
 * table in use (who: for the log). An open session of a technician who
 * is no longer enrolled ends. On an error the current table stays and
 * an enrolment_store_error event says why. Returns 0 or a SHIM_E code;
 * msg gets a line for the admin's reply. */
int shimd_techs_reload(struct shimd *d, const char *who, char *msg,
		       size_t cap);

/* Reloads when the store file changed since it was last read (called at
 * each heartbeat, so a change made without telling shimd is found). */
void shimd_techs_check(struct shimd *d);

/* Arms (ms > 0) or disarms (ms == 0) one timer. */
void shimd_timer_set(struct shimd *d, enum shimd_timer t, uint64_t ms);

/* Admin socket (admin.c). */
int shimd_admin_open(struct shimd *d);
void shimd_admin_close(struct shimd *d);
void shimd_admin_accept(struct shimd *d);
void shimd_admin_client_io(struct shimd *d, struct shimd_admin_client *c);
void shimd_admin_expire(struct shimd *d);

/* Fills buf with the status text given by "shimctl status". */
size_t shimd_status_text(struct shimd *d, char *buf, size_t cap);

/* shimctl gate reset-state: a lost or damaged gate state is replaced by
 * one that marks every time step up to now as used. */
int shimd_gate_reset_state(struct shimd *d, const char *who);

/* Reports what a clock check saw (clock_jump, recovery) and gives the
 * recorder the trusted time, or none. */
void shimd_clock_report(struct shimd *d, const struct shim_clock_report *rep);

/* At every heartbeat: checks the clock (reporting a jump), and saves the
 * time floor when it is trusted. */
void shimd_clock_tick(struct shimd *d);

/* shimctl clock trust / status. */
int shimd_clock_trust(struct shimd *d, const char *who, char *msg, size_t cap);
size_t shimd_clock_status(struct shimd *d, char *buf, size_t cap);

/* Clears a technician's lockout (and the LOCKED state). */
int shimd_reset_lockout(struct shimd *d, const char *id, const char *who);

/* Runs --demo: temporary storage, emulated pump, technician pty. */
int shimd_demo(const char *argv0);

int64_t shimd_wall_ns(void);
int64_t shimd_mono_ns(void);

/* Reads breakglass.verify_key and checks it is this shim's (shimd's start
 * and --check-config): 0 and *key loaded, else < 0 with the problem
 * printed as "FILE:LINE: message" to out (NULL: shimd's log). */
int shimd_breakglass_key(const struct shim_config *cfg, struct shim_bg_key *key,
			 FILE *out);

#endif
