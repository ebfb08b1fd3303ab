/*
 * The event log: every event goes to the local audit log (JSON lines,
 * rotated by size) and, through a durable spool, to the SIEM transport
 * named in the configuration. Emitting never waits for the network.
 */
#ifndef SHIM_COMMON_EVENTLOG_H
#define SHIM_COMMON_EVENTLOG_H

#include <stddef.h>
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

	/* Added for shimctl status and the tests. */
	int transport_enabled;      /* 0 for siem.transport: noop */
	uint64_t spool_bytes;       /* bytes waiting (records + headers) */
	uint64_t spool_priority;    /* waiting in the priority lane */
	uint64_t spool_over_limit;  /* events kept beyond spool_max_bytes */
	int outage_alarm;           /* link down > siem.outage_alarm_seconds */
	uint64_t link_down_seconds; /* 0 while up */
	uint64_t delivered;         /* confirmed since open */
	uint64_t last_delivered_seq;
	uint64_t connects;          /* successful connections since open */
	uint64_t connect_attempts;  /* all attempts since open */
	char tls_version[32];       /* of the current/last connection */
	char tls_cipher[64];
	char peer_subject[160];
};

/* Opens the audit log and spool under cfg->storage_root and starts the
 * transport. The sequence number continues from its persisted value.
 * One process at a time per storage root (SHIM_ESTATE when another one
 * has it open: <storage_root>/eventlog.lock). */
int shim_eventlog_open(struct shim_eventlog **out,
		       const struct shim_config *cfg,
		       const struct shim_port *port);

/* Stamps shim ID and sequence number into ev, then records it durably in
 * the audit log and spool. Never blocks on the network. The writes are
 * made durable by group commit within a few milliseconds (before the
 * event can leave for the SIEM); tamper, emergency_stop and break-glass
 * events are durable before this returns. */
int shim_eventlog_emit(struct shim_eventlog *el, struct shim_event *ev);

/* Waits until every event emitted so far is durable (audit log, spool,
 * sequence number), at most timeout_ms. 0, SHIM_ETIMEDOUT or SHIM_EIO.
 * Events of the priority lane are made durable before emit returns. */
int shim_eventlog_flush(struct shim_eventlog *el, int timeout_ms);

void shim_eventlog_status(struct shim_eventlog *el,
			  struct shim_eventlog_status *st);

/* Where the transport reports link changes and the outage alarm for the
 * operator (level: enum shim_severity). Default: a line on stderr. fn may
 * be called from the sender thread; NULL silences it. */
typedef void (*shim_eventlog_log_fn)(void *ctx, int level, const char *msg);
void shim_eventlog_set_logger(struct shim_eventlog *el,
			      shim_eventlog_log_fn fn, void *ctx);

/* Fills ops so that the core's event sink (port.h) feeds this log. The
 * event is copied, stamped and recorded; the caller's copy is unchanged. */
void shim_eventlog_sink(struct shim_eventlog *el,
			struct shim_event_sink_ops *ops);

/* Human-readable status for shimctl status, several lines, e.g.
 *   siem: link up (TLSv1.2 TLS-ECDHE-..., server CN=siem.example)
 *   siem: spool 0 events, 0 bytes (0 priority), 0 heartbeats dropped
 *   events: next seq 1843, 1842 delivered this run
 * Always NUL-terminated; cut at cap. */
void shim_eventlog_status_text(const struct shim_eventlog_status *st,
			       char *buf, size_t cap);

/* Flushes what it can within timeout_ms, stops the transport, closes. */
void shim_eventlog_close(struct shim_eventlog *el, int timeout_ms);

#endif
