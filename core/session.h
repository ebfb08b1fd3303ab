/*
 * The shim's state machine as a table: (state, event) -> next state.
 * Anything not in the table is refused, and the caller fails closed.
 * Portable: the daemon performs the actions, this file only decides.
 */
#ifndef SHIM_CORE_SESSION_H
#define SHIM_CORE_SESSION_H

enum shim_state {
	SHIM_ST_IDLE = 0,      /* no technician; gate closed */
	SHIM_ST_CHALLENGE,     /* prompt shown; waiting for "<id> <code>" */
	SHIM_ST_OPEN,          /* authenticated and recording; relaying */
	SHIM_ST_LOCKED,        /* shim-wide failure limit hit; timed */
	SHIM_ST_EMERGENCY_STOP,/* tamper or integrity failure; latched */
	SHIM_ST__COUNT,
};

enum shim_sm_event {
	SHIM_SM_CONNECT = 0,   /* a technician is present */
	SHIM_SM_HANGUP,        /* the technician went away (not in OPEN) */
	SHIM_SM_AUTH_OK,       /* code accepted and recording started */
	SHIM_SM_AUTH_FAIL,     /* any refused line */
	SHIM_SM_RATE_LOCK,     /* shim-wide limit: lock the gate */
	SHIM_SM_UNLOCK,        /* lock expired or cleared by admin */
	SHIM_SM_SESSION_END,   /* the open session ended (any reason) */
	SHIM_SM_TAMPER,        /* emergency stop */
	SHIM_SM_ESTOP_RESET,   /* authorised reset of the emergency stop */
	SHIM_SM__COUNT,
};

/* Next state for ev in from. Returns 0 and sets *to, or SHIM_ESTATE when
 * the pair is not allowed. */
int shim_sm_next(enum shim_state from, enum shim_sm_event ev,
		 enum shim_state *to);

/* "IDLE", "CHALLENGE", ... */
const char *shim_state_name(enum shim_state s);
/* "connect", "hangup", ... */
const char *shim_sm_event_name(enum shim_sm_event ev);

#endif
