/*
 * The session recorder (Linux side): a bounded queue in front of a writer
 * thread that encrypts, chains and appends records to one file per
 * session under <storage_root>/sessions/, with group-commit fdatasync
 * every recording.sync_interval_ms. The format is core/record.h.
 */
#ifndef SHIM_COMMON_RECORDER_H
#define SHIM_COMMON_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "port.h"
#include "record.h"

struct shim_recorder;

struct shim_recorder_status {
	int session_open;
	int failed;              /* recording has failed in this session */
	char failure[128];
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t queued_bytes;
	uint64_t storage_used;
	uint64_t records;
};

/* Opens the recorder: checks storage, loads or creates the keys, recovers
 * sessions without a footer (sealed "power_loss_recovered"; each one is
 * reported through on_recovered), prunes by retention, starts the writer. */
int shim_recorder_open(struct shim_recorder **out,
		       const struct shim_config *cfg,
		       const struct shim_port *port,
		       void (*on_recovered)(void *arg, const char *session_id,
					    uint64_t records),
		       void *arg);

/* Gives the recorder the time it may trust (Unix seconds; 0 = none), from
 * the daemon's clock-trust mechanism; call it again as that time goes on.
 * Retention and the pruning a full storage budget asks for delete only
 * recordings older than retention_days by this time; until one is given
 * (the initial value) nothing is deleted, whatever the wall clock says.
 * Thread-safe; never waits for the disk: the writer thread prunes when no
 * session is open. */
void shim_recorder_set_trusted_time(struct shim_recorder *r, int64_t unix_s);

/* fn (may be NULL) is called for each recording file retention deletes,
 * with its name ("<session id>.rec", or a damaged file kept beside it)
 * and the start time in its name. Each deletion is also logged. Called
 * from the recorder's writer thread or from the thread in
 * shim_recorder_can_start()/shim_recorder_begin(), with no recorder lock
 * held; fn must not call back into the recorder. */
void shim_recorder_set_on_deleted(struct shim_recorder *r,
				  void (*fn)(void *arg, const char *name,
					     int64_t started_s),
				  void *arg);

/* fn (may be NULL) is asked before retention or the storage budget
 * deletes a file (name as above): 0 keeps it (central custody: a
 * recording not yet delivered). Same threads and rules as on_deleted. */
void shim_recorder_set_may_delete(struct shim_recorder *r,
				  int (*fn)(void *arg, const char *name),
				  void *arg);

/* Deletes the sealed recording name ("<id>.rec") and takes it off the
 * storage used (a delivered recording's local copy). */
int shim_recorder_remove(struct shim_recorder *r, const char *name);

/* SHIM_OK when a new session may start; SHIM_ENOSPC when the storage
 * budget (max_bytes, and the free-space reserve: storage.min_free_bytes,
 * or by default 64 MiB + 1/20 of the filesystem (at most 1 GiB), and at
 * least one session.max_duration of traffic at the line rates) forbids
 * it. */
int shim_recorder_can_start(struct shim_recorder *r);

/* Starts a session for a technician: creates its file and writes the
 * header, without waiting for the disk. The header becomes durable with
 * the session's first group commit, within recording.sync_interval_ms,
 * like any traffic byte; after a power cut inside that window, recovery
 * at open removes the headerless file and logs it (nothing of the session
 * had been recorded durably). session_id receives a fresh ID
 * (NUL-terminated). The session key's ECDH is done by the writer thread
 * beforehand, so this costs no public-key operation. */
int shim_recorder_begin(struct shim_recorder *r, const char *technician_id,
			char session_id[SHIM_SESSION_ID_MAX]);

/* Queues traffic. SHIM_EAGAIN when the queue has no room (the caller holds
 * the bytes back and retries after shim_recorder_fd() is readable);
 * never blocks. After a recording failure with on_failure: continue it
 * accepts and drops, returning 0 (status says failed). */
int shim_recorder_traffic(struct shim_recorder *r, enum shim_rec_dir dir,
			  const uint8_t *buf, size_t len, int64_t wall_ns,
			  int64_t mono_ns);

/* Queues a meta record (an event inside the session, e.g. "break"). */
int shim_recorder_meta(struct shim_recorder *r, const char *name,
		       const char *detail, int64_t wall_ns, int64_t mono_ns);

/* Ends the session: writes the signed footer with reason, syncs, waits
 * for the writer. */
int shim_recorder_end(struct shim_recorder *r, const char *reason,
		      int64_t wall_ns, int64_t mono_ns);

/* A descriptor that becomes readable when queue room frees up or the
 * writer reports a failure; read it with shim_recorder_ack(). */
int shim_recorder_fd(struct shim_recorder *r);
void shim_recorder_ack(struct shim_recorder *r);

void shim_recorder_status(struct shim_recorder *r,
			  struct shim_recorder_status *st);

/* Head of the last finished session's chain (hex, for heartbeats). */
void shim_recorder_chain_head(struct shim_recorder *r, char out[65]);

/* 1 when the recording key pair is kept under the storage root (no
 * recording.public_key configured): shimd warns that custody is local. */
int shim_recorder_local_custody(struct shim_recorder *r);

/* Traffic bytes accepted but not recorded in the current session. */
uint64_t shim_recorder_dropped(struct shim_recorder *r);

/* Ends any open session with reason, stops the writer, frees. */
void shim_recorder_close(struct shim_recorder *r, const char *reason);

#endif
