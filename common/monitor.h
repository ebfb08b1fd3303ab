/*
 * The central heartbeat monitor: reads the SIEM's received log (RFC 5424
 * lines as rsyslog writes them with a %rawmsg% template), verifies each
 * signed event against the shim's public key from the inventory, and keeps
 * a verdict per shim.
 *
 * The parser is separate from the verdict engine so that many lines can
 * be parsed and verified in parallel and then applied in order.
 */
#ifndef SHIM_COMMON_MONITOR_H
#define SHIM_COMMON_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "port.h"

/* One parsed log line. */
struct shim_mon_line {
	int64_t ts_s;           /* header TIMESTAMP (Unix s), 0 when nil */
	int escaped;            /* values hold rsyslog "#ooo" escapes */
	struct shim_event ev;   /* name = MSGID; shim_id, seq, fields */
};

/*
 * Parses one line: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID [shim@PEN
 * shim_id=".." seq=".." k="v" ...] MSG", with an optional leading octet
 * count. Returns 0, SHIM_ENOENT for a well-formed line that is not a shim
 * event (no shim@ element), or SHIM_EINVAL for anything malformed.
 */
int shim_mon_parse_line(const char *line, size_t len, struct shim_mon_line *out);

/* Unix seconds of an RFC 3339 time ("2026-11-24T04:00:00Z", fraction and
 * offset allowed), or a plain integer of seconds. SHIM_EINVAL if neither. */
int shim_mon_parse_time(const char *s, size_t len, int64_t *out);

enum shim_mon_verdict {
	SHIM_MON_OK = 0,
	SHIM_MON_OFFLINE_EXPECTED,
	SHIM_MON_DECOMMISSIONED,
	SHIM_MON_MISSING,
	SHIM_MON_REBOOTED,
	SHIM_MON_REPLAYED,
	SHIM_MON_BAD_SIGNATURE,
	SHIM_MON_TAMPERED,
};

/* "OK", "MISSING", ... */
const char *shim_mon_verdict_name(enum shim_mon_verdict v);

/* Alarm bits (several may be set; the verdict is the most severe). */
#define SHIM_MON_A_TAMPERED 0x01
#define SHIM_MON_A_BADSIG 0x02
#define SHIM_MON_A_REPLAYED 0x04
#define SHIM_MON_A_REBOOTED 0x08
#define SHIM_MON_A_MISSING 0x10

struct shim_monitor;

/* default_period_s: heartbeat period assumed until a shim states its own. */
int shim_mon_new(struct shim_monitor **out, double default_period_s);
void shim_mon_free(struct shim_monitor *m);

/* Adds an inventory entry. SHIM_EEXIST for a duplicate ID, SHIM_EINVAL
 * for a bad key. */
int shim_mon_add_shim(struct shim_monitor *m, const char *shim_id,
		      const uint8_t pub[SHIM_P256_PUB_LEN]);

/* Adds every DIR/<shim_id>.pub (PEM public key). Problems are written
 * to err (one line each, may be NULL) and counted; returns the number of
 * shims added or a negative code when DIR cannot be read. */
int shim_mon_load_inventory(struct shim_monitor *m, const char *dir,
			    void *err_file, unsigned *bad);

/* Adds every DIR/<shim_id>.inv (a signed inventory record, see
 * inventory.h) that verifies under the provisioning authority's key and
 * names that shim ID: the SOC's view starts from provenance. A record
 * that does not verify, and a bare <shim_id>.pub that no record vouches
 * for, are reported to err and counted, and their shims are not added
 * (their heartbeats are then BAD-SIGNATURE, "not in the inventory").
 * Returns the number of shims added or a negative code when DIR cannot
 * be read. */
int shim_mon_load_records(struct shim_monitor *m, const char *dir,
			  const uint8_t authority_pub[SHIM_P256_PUB_LEN],
			  void *err_file, unsigned *bad);

/* 1 when the event carries a signature that the monitor checks. */
int shim_mon_is_signed(const struct shim_mon_line *l);

/* Verifies a signed line against its shim's key: 0, SHIM_ESIG (bad or no
 * signature), SHIM_ENOENT (shim not in the inventory). Thread-safe when
 * shim_p256_verifier_threadsafe() is 1, and does not change the state. */
int shim_mon_verify(const struct shim_monitor *m, const struct shim_mon_line *l);

/* Applies a line in log order; verify_rc is shim_mon_verify()'s answer
 * (ignored for unsigned events). Returns the shim's alarm bits that this
 * line raised (0 when none). */
unsigned shim_mon_apply(struct shim_monitor *m, const struct shim_mon_line *l,
			int verify_rc);

/*
 * Parses, verifies and applies n lines in order. Parsing and verification
 * run on up to `threads` threads (1 when the verifier is not thread-safe);
 * the state changes happen in log order on the calling thread. cb (may be
 * NULL) is called for each line that raised an alarm.
 */
typedef void (*shim_mon_alarm_cb)(void *ctx, const struct shim_mon_line *l,
				  unsigned raised);
int shim_mon_feed_lines(struct shim_monitor *m, const char *const *lines,
			const size_t *lens, size_t n, unsigned threads,
			shim_mon_alarm_cb cb, void *ctx);

struct shim_mon_report {
	char shim_id[SHIM_SHIM_ID_MAX];
	enum shim_mon_verdict verdict;
	unsigned alarms;
	int in_inventory;
	char serial[64];        /* from a signed inventory record, or "" */
	char build[16];         /* its build: deployed or factory, or "" */
	uint64_t heartbeats;    /* verified heartbeats */
	uint64_t bad_sigs;
	uint64_t replays;
	uint64_t last_seq;
	uint64_t boot_count;
	int64_t last_seen;      /* Unix s of the last verified heartbeat, 0 = never */
	double period;
	char note[200];         /* the first alarm's story, or the state */
};

size_t shim_mon_count(const struct shim_monitor *m);

/* Report for entry i (inventory order, then unknown shims) at now_s. */
void shim_mon_report(const struct shim_monitor *m, size_t i, int64_t now_s,
		     struct shim_mon_report *r);

/* Lines seen, lines malformed, lines that were not shim events. */
void shim_mon_counters(const struct shim_monitor *m, uint64_t *lines,
		       uint64_t *malformed, uint64_t *foreign);
void shim_mon_count_line(struct shim_monitor *m, int parse_rc);

#endif
