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

#define SHIM_SESSION_ID_MAX 64

enum shim_rec_dir {
	SHIM_DIR_IN = 0,  /* technician -> device */
	SHIM_DIR_OUT = 1, /* device -> technician */
};

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

/* SHIM_OK when a new session may start; SHIM_ENOSPC when the storage
 * budget (max_bytes, min_free_bytes) forbids it. */
int shim_recorder_can_start(struct shim_recorder *r);

/* Starts a session for a technician; writes the header durably before
 * returning. session_id receives a fresh ID (NUL-terminated). */
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
