/*
 * The event log: every event goes to the local audit log (JSON lines,
 * rotated by size) and, through a durable spool, to the SIEM transport
 * named in the configuration. Emitting never waits for the network.
 */
#ifndef SHIM_COMMON_EVENTLOG_H
#define SHIM_COMMON_EVENTLOG_H

#include <stdint.h>

#include "config.h"
#include "event.h"
#include "port.h"

struct shim_eventlog;

struct shim_eventlog_status {
	uint64_t next_seq;
	uint64_t spool_depth;       /* events waiting for the SIEM */
	uint64_t dropped_heartbeats;
	int link_up;                /* 1 when the SIEM link is up */
	char link_error[160];       /* last transport error, "" if none */
};

/* Opens the audit log and spool under cfg->storage_root and starts the
 * transport. The sequence number continues from its persisted value. */
int shim_eventlog_open(struct shim_eventlog **out,
		       const struct shim_config *cfg,
		       const struct shim_port *port);

/* Stamps shim ID and sequence number into ev, then records it durably in
 * the audit log and spool. Never blocks on the network. */
int shim_eventlog_emit(struct shim_eventlog *el, struct shim_event *ev);

void shim_eventlog_status(struct shim_eventlog *el,
			  struct shim_eventlog_status *st);

/* Flushes what it can within timeout_ms, stops the transport, closes. */
void shim_eventlog_close(struct shim_eventlog *el, int timeout_ms);

#endif
