/*
 * The state table. Each row is one allowed transition; the absence of a
 * row is a refusal (OpenSSH monitor style allowlist).
 */
#include "session.h"

#include <stddef.h>

#include "err.h"

struct sm_row {
	enum shim_state from;
	enum shim_sm_event ev;
	enum shim_state to;
};

static const struct sm_row sm_table[] = {
	{ SHIM_ST_IDLE, SHIM_SM_CONNECT, SHIM_ST_CHALLENGE },
	{ SHIM_ST_IDLE, SHIM_SM_HANGUP, SHIM_ST_IDLE },
	{ SHIM_ST_IDLE, SHIM_SM_RATE_LOCK, SHIM_ST_LOCKED },
	{ SHIM_ST_IDLE, SHIM_SM_UNLOCK, SHIM_ST_IDLE },
	{ SHIM_ST_IDLE, SHIM_SM_TAMPER, SHIM_ST_EMERGENCY_STOP },

	{ SHIM_ST_CHALLENGE, SHIM_SM_CONNECT, SHIM_ST_CHALLENGE },
	{ SHIM_ST_CHALLENGE, SHIM_SM_HANGUP, SHIM_ST_IDLE },
	{ SHIM_ST_CHALLENGE, SHIM_SM_AUTH_OK, SHIM_ST_OPEN },
	{ SHIM_ST_CHALLENGE, SHIM_SM_AUTH_FAIL, SHIM_ST_CHALLENGE },
	{ SHIM_ST_CHALLENGE, SHIM_SM_RATE_LOCK, SHIM_ST_LOCKED },
	{ SHIM_ST_CHALLENGE, SHIM_SM_UNLOCK, SHIM_ST_CHALLENGE },
	{ SHIM_ST_CHALLENGE, SHIM_SM_TAMPER, SHIM_ST_EMERGENCY_STOP },

	{ SHIM_ST_OPEN, SHIM_SM_SESSION_END, SHIM_ST_CHALLENGE },
	/* a failed line from whoever is at the prompt during the reconnect
	 * grace: the session stays open, its technician side stays closed */
	{ SHIM_ST_OPEN, SHIM_SM_AUTH_FAIL, SHIM_ST_OPEN },
	{ SHIM_ST_OPEN, SHIM_SM_UNLOCK, SHIM_ST_OPEN },
	{ SHIM_ST_OPEN, SHIM_SM_TAMPER, SHIM_ST_EMERGENCY_STOP },

	{ SHIM_ST_LOCKED, SHIM_SM_CONNECT, SHIM_ST_LOCKED },
	{ SHIM_ST_LOCKED, SHIM_SM_HANGUP, SHIM_ST_LOCKED },
	{ SHIM_ST_LOCKED, SHIM_SM_AUTH_FAIL, SHIM_ST_LOCKED },
	{ SHIM_ST_LOCKED, SHIM_SM_RATE_LOCK, SHIM_ST_LOCKED },
	{ SHIM_ST_LOCKED, SHIM_SM_UNLOCK, SHIM_ST_CHALLENGE },
	{ SHIM_ST_LOCKED, SHIM_SM_TAMPER, SHIM_ST_EMERGENCY_STOP },

	{ SHIM_ST_EMERGENCY_STOP, SHIM_SM_CONNECT, SHIM_ST_EMERGENCY_STOP },
	{ SHIM_ST_EMERGENCY_STOP, SHIM_SM_HANGUP, SHIM_ST_EMERGENCY_STOP },
	{ SHIM_ST_EMERGENCY_STOP, SHIM_SM_TAMPER, SHIM_ST_EMERGENCY_STOP },
	{ SHIM_ST_EMERGENCY_STOP, SHIM_SM_ESTOP_RESET, SHIM_ST_IDLE },
};

int shim_sm_next(enum shim_state from, enum shim_sm_event ev,
		 enum shim_state *to)
{
	size_t i;

	for (i = 0; i < sizeof(sm_table) / sizeof(sm_table[0]); i++) {
		if (sm_table[i].from == from && sm_table[i].ev == ev) {
			*to = sm_table[i].to;
			return 0;
		}
	}
	return SHIM_ESTATE;
}

const char *shim_state_name(enum shim_state s)
{
	static const char *const names[SHIM_ST__COUNT] = {
		"IDLE", "CHALLENGE", "OPEN", "LOCKED", "EMERGENCY_STOP",
	};

	if ((unsigned)s >= SHIM_ST__COUNT) {
		return "?";
	}
	return names[s];
}

const char *shim_sm_event_name(enum shim_sm_event ev)
{
	static const char *const names[SHIM_SM__COUNT] = {
		"connect", "hangup", "auth_ok", "auth_fail", "rate_lock",
		"unlock", "session_end", "tamper", "estop_reset",
	};

	if ((unsigned)ev >= SHIM_SM__COUNT) {
		return "?";
	}
	return names[ev];
}
