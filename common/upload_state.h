/*
 * The uploader's durable state: which sealed recordings the central
 * custody store has confirmed, with the size and SHA-256 that were
 * checked there. One text file, <storage_root>/state/custody.state,
 * replaced atomically (temporary file, fsync, rename, directory fsync):
 *
 *   shim-custody-state 1
 *   delivered <session_id> <size> <sha256 hex> <delivered unix s>
 *   ...
 *   end <number of entries>
 *
 * A recording absent from the file is undelivered. A file that is
 * missing, truncated (no "end" line, or a count that disagrees) or
 * malformed reads as nothing delivered: the uploader then checks each
 * recording against the store again, and nothing is deleted meanwhile.
 */
#ifndef SHIM_COMMON_UPLOAD_STATE_H
#define SHIM_COMMON_UPLOAD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define SHIM_UPLOAD_STATE_MAX_ENTRIES 100000u
#define SHIM_UPLOAD_STATE_MAX_BYTES (16u * 1024 * 1024)

struct shim_upload_entry {
	char session_id[SHIM_SESSION_ID_MAX];
	uint64_t size;
	char sha256[65];        /* lower-case hex */
	int64_t delivered_s;    /* Unix seconds, wall clock at delivery */
};

struct shim_upload_state {
	struct shim_upload_entry *e;
	size_t n;
	size_t cap;
};

/* 1 when id is a session ID the state and the store accept: 1 to 63
 * characters of [A-Za-z0-9._-], not starting with '.'. */
int shim_upload_id_ok(const char *id, size_t len);

/* Parses buf (len bytes, need not be NUL-terminated) into st, which must
 * be empty (zeroed). On a malformed file returns SHIM_ECORRUPT with
 * *bad_line (when not NULL) the 1-based line at fault, and st emptied;
 * a missing "end" line is SHIM_ETRUNC. Never reads outside buf. */
int shim_upload_state_parse(struct shim_upload_state *st, const char *buf,
			    size_t len, size_t *bad_line);

/* Formats st into a malloc'd buffer (*out, *len). */
int shim_upload_state_format(const struct shim_upload_state *st, char **out,
			     size_t *len);

/* The entry for id, or NULL. */
const struct shim_upload_entry *
shim_upload_state_find(const struct shim_upload_state *st, const char *id);

/* Adds or replaces the entry for e->session_id. */
int shim_upload_state_put(struct shim_upload_state *st,
			  const struct shim_upload_entry *e);

/* Removes the entry for id (no error when absent). */
void shim_upload_state_remove(struct shim_upload_state *st, const char *id);

/* Reads path into st (empty first). A missing file is an empty state
 * (returns 0); a damaged one returns its parse error with st empty. */
int shim_upload_state_load(struct shim_upload_state *st, const char *path,
			   size_t *bad_line);

/* Writes st to path atomically and durably (mode 0600). */
int shim_upload_state_save(const struct shim_upload_state *st,
			   const char *path);

void shim_upload_state_free(struct shim_upload_state *st);

#endif
