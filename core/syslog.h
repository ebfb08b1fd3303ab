/*
 * Event formatting for the SIEM and the audit log.
 *
 * - RFC 5424 with one structured-data element:
 *     <PRI>1 TIMESTAMP HOSTNAME shimd PROCID MSGID
 *         [shim@PEN shim_id="..." seq="..." key="value" ...] MSG
 *   SD parameters in this order: shim_id, seq, then the event's fields in
 *   insertion order (the order the signed canonical text uses). In values,
 *   '"', '\' and ']' are escaped with a backslash; bytes that are not valid
 *   UTF-8 become U+FFFD (RFC 5424 requires UTF-8 there).
 * - CEF (ArcSight Common Event Format) carried as the MSG of an RFC 5424
 *   message without structured data.
 * - One JSON object per line for the local audit log.
 * - RFC 5425 octet-counting framing: "LEN SP MSG".
 *
 * Every formatter writes into a caller buffer, never allocates, and returns
 * SHIM_ENOSPC (with nothing useful in buf) when cap is too small.
 */
#ifndef SHIM_CORE_SYSLOG_H
#define SHIM_CORE_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* Enough for any event in any format (worst case: JSON of 24 fields of
 * 255 control characters each, six bytes per character). */
#define SHIM_SYSLOG_MSG_MAX 49152

/* Documentation-only private enterprise number (RFC 5612). */
#define SHIM_SYSLOG_DEFAULT_PEN 32473u

/* security/authorization messages (private), RFC 5424 facility 10. */
#define SHIM_SYSLOG_FACILITY_AUTHPRIV 10

struct shim_syslog_opts {
	const char *hostname;     /* NULL or "" -> "-" */
	const char *app_name;     /* NULL -> "shimd" */
	uint32_t procid;          /* 0 -> "-" */
	uint32_t enterprise_number; /* 0 -> SHIM_SYSLOG_DEFAULT_PEN */
	int facility;             /* 0..23; default (negative) authpriv */
	const char *product_version; /* CEF header; NULL -> "0" */
};

/* RFC 3339 UTC time with microseconds: "2026-11-24T04:27:09.123456Z".
 * buf must hold 28 bytes. Returns the length written (27) or SHIM_EINVAL
 * for a time outside years 0000..9999. */
int shim_syslog_time(int64_t wall_ns, char *buf, size_t cap);

/* RFC 5424 message (no framing, no trailing newline). */
int shim_syslog_rfc5424(const struct shim_event *ev,
			const struct shim_syslog_opts *opts, char *buf,
			size_t cap, size_t *len);

/* RFC 5424 header (no SD) + CEF:0 payload. */
int shim_syslog_cef(const struct shim_event *ev,
		    const struct shim_syslog_opts *opts, char *buf,
		    size_t cap, size_t *len);

/* JSON line with a trailing '\n', fields flat after the fixed keys:
 * {"time":"...Z","time_ns":N,"event":"...","severity":6,"shim_id":"...",
 *  "seq":N,"key":"value",...}. A field named like a fixed key is written
 * as "field_<key>". */
int shim_syslog_json(const struct shim_event *ev, char *buf, size_t cap,
		     size_t *len);

/* Octet-counting frame header for a message of msg_len bytes: writes
 * "LEN " into buf. Returns the header length or SHIM_ENOSPC. */
int shim_syslog_frame_header(size_t msg_len, char *buf, size_t cap);

/* Name of a severity ("emerg" .. "debug"), "unknown" when out of range. */
const char *shim_severity_name(int sev);

/* CEF severity 0..10 for a syslog severity. */
int shim_syslog_cef_severity(int sev);

#endif
