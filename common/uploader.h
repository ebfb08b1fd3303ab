/*
 * Recordings to central custody (docs/custody.md): sealed recordings
 * (<storage_root>/sessions/<id>.rec) are sent with an HTTP PUT to
 * <custody.url>/<shim_id>/<id>.rec over mutual TLS (libcurl), then
 * checked: a HEAD must show the same length and a GET of the stored
 * object must hash to the same SHA-256. Only then is the recording
 * delivered, recorded durably in <storage_root>/state/custody.state
 * (upload_state.h), and its local copy may go.
 *
 * The uploader runs in its own thread, woken when a recording is sealed;
 * it never touches the serial data path. Failed attempts are retried
 * with exponential back-off (1 s doubling to custody.retry_max_seconds).
 */
#ifndef SHIM_COMMON_UPLOADER_H
#define SHIM_COMMON_UPLOADER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "record.h"

/* Where and how to reach the store (pointers into a config). */
struct shim_custody_target {
	const char *url;          /* https://host[:port]/base */
	const char *server_name;  /* checked in the server certificate */
	const char *ca;
	const char *client_cert;
	const char *client_key;
	const char *shim_id;      /* the shim's directory in the store */
	long timeout_s;           /* connect, and a stalled transfer */
	const int *cancel;        /* non-zero (read atomically): stop now */
	uint64_t max_bytes_per_second; /* PUT rate limit; 0 = none */
};

struct shim_custody_result {
	long http_status;         /* last HTTP status seen (0: none) */
	int reached;              /* an HTTP answer came back (TLS was ok) */
	int existed;              /* the PUT found the object already there
				   * (409/412), and the check passed */
	uint64_t size;
	char sha256[65];
	double seconds;           /* PUT + check */
	char reason[256];         /* why it failed, e.g. "TLS: ..." */
};

/* Fills t from cfg. SHIM_EINVAL (message in err) without custody. */
int shim_custody_target_from_config(struct shim_custody_target *t,
				    const struct shim_config *cfg, char *err,
				    size_t errcap);

/* The object's URL for name ("<id>.rec"), malloc'd. */
char *shim_custody_object_url(const struct shim_custody_target *t,
			      const char *name);

/* Sends the file at path as object name and checks what is stored.
 * 0 when delivered; otherwise a negative code with res->reason. */
int shim_custody_deliver(const struct shim_custody_target *t,
			 const char *path, const char *name,
			 struct shim_custody_result *res);

/* Sends buf as object name and checks it (shimctl upload test). */
int shim_custody_deliver_buf(const struct shim_custody_target *t,
			     const uint8_t *buf, size_t len, const char *name,
			     struct shim_custody_result *res);

/* SHA-256 of a file, hex; its size in *size. */
int shim_custody_file_digest(const char *path, char hex[65], uint64_t *size);

struct shim_uploader;

struct shim_uploader_ops {
	/* an event (called from the uploader's thread) */
	void (*emit)(void *arg, struct shim_event *ev);
	/* deletes the local copy of a delivered recording ("<id>.rec") */
	int (*remove)(void *arg, const char *name);
	void *arg;
};

struct shim_uploader_status {
	int enabled;
	uint64_t queue_count;      /* sealed recordings not yet delivered */
	uint64_t queue_bytes;
	char oldest[SHIM_SESSION_ID_MAX]; /* "" when the queue is empty */
	uint64_t delivered;        /* delivered since start */
	int link_ok;               /* last attempt succeeded (or none yet) */
	int outage_alarm;
	char last_error[256];
};

/* Starts the uploader (its thread). cfg must outlive it. */
int shim_uploader_open(struct shim_uploader **out,
		       const struct shim_config *cfg,
		       const struct shim_uploader_ops *ops);

/* A recording was sealed: look now. Never blocks. */
void shim_uploader_kick(struct shim_uploader *u);

/* The trusted time (Unix s, 0 = none), for custody.keep_local_days. */
void shim_uploader_set_trusted_time(struct shim_uploader *u, int64_t unix_s);

/* 1 when the local copy named name ("<id>.rec") may be deleted: it is
 * delivered. Names that are not recordings (damaged tails) are 1; a NULL
 * uploader (no custody) says 1. Thread-safe, no disk access. */
int shim_uploader_may_delete(struct shim_uploader *u, const char *name);

void shim_uploader_status(struct shim_uploader *u,
			  struct shim_uploader_status *st);

/* Stops the thread (an upload in flight is abandoned); status and
 * shim_uploader_may_delete() still answer. NULL is accepted. */
void shim_uploader_stop(struct shim_uploader *u);

/* Stops the thread (an upload in flight is abandoned; it is retried at
 * the next start) and frees. NULL is accepted. */
void shim_uploader_close(struct shim_uploader *u);

#endif
