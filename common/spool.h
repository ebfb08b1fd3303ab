/*
 * The SIEM outbox: a durable, bounded, on-disk spool of formatted
 * messages, in three lanes.
 *
 *   priority   tamper, emergency_stop and break-glass events: sent first
 *   normal     every other event; never dropped
 *   heartbeat  heartbeats: the only records dropped when the spool is full
 *
 * Each lane is a run of segment files "<dir>/<lane>-<16 hex>.seg", each a
 * 16-byte header followed by records:
 *
 *   u32 magic "SPR1" | u32 len | u64 seq | u8 lane | u8 flags | u16 0 |
 *   u32 crc32(first 20 header bytes || payload) | payload[len]
 *
 * (big-endian). Appends go to the page cache; shim_spool_sync() makes them
 * durable (group commit), and only durable records are handed to the
 * sender. The sender reads ahead from a read cursor; shim_spool_ack()
 * advances the acknowledged cursor and shim_spool_rewind() goes back to it
 * after a failed connection (at-least-once delivery). The acknowledged
 * cursors are checkpointed to "<dir>/cursor" (atomic replace); segments
 * wholly behind them are deleted. At open, a torn or corrupt tail of the
 * last segment is cut off; corruption inside an older segment skips the
 * rest of that segment (counted in status).
 *
 * The spool is not thread-safe: the caller serialises access.
 */
#ifndef SHIM_COMMON_SPOOL_H
#define SHIM_COMMON_SPOOL_H

#include <stddef.h>
#include <stdint.h>

enum shim_spool_lane {
	SHIM_LANE_PRIORITY = 0,
	SHIM_LANE_NORMAL = 1,
	SHIM_LANE_HEARTBEAT = 2,
};
#define SHIM_SPOOL_LANES 3

#define SHIM_SPOOL_REC_HDR 24
#define SHIM_SPOOL_SEG_HDR 16
#define SHIM_SPOOL_REC_MAX (64 * 1024)

struct shim_spool;

struct shim_spool_pos {
	uint64_t seg;
	uint64_t off;
};

/* One record handed to the sender. */
struct shim_spool_rec {
	enum shim_spool_lane lane;
	uint64_t seq;
	struct shim_spool_pos next; /* position just after this record */
	size_t len;
	uint8_t *data;              /* points into the caller's buffer */
};

struct shim_spool_status {
	uint64_t records;           /* waiting, all lanes */
	uint64_t bytes;             /* waiting, all lanes (with headers) */
	uint64_t lane_records[SHIM_SPOOL_LANES];
	uint64_t dropped_heartbeats;
	uint64_t corrupt_skipped;   /* records lost to corruption at open */
	uint64_t max_seq;           /* highest seq ever appended or found */
	uint64_t over_limit;        /* appends kept although over max_bytes */
};

/* Opens (creating 0700) the spool directory dir. max_bytes bounds the
 * waiting bytes (0 = no bound). Recovers segments and cursors. */
int shim_spool_open(struct shim_spool **out, const char *dir,
		    uint64_t max_bytes);

/* Appends one record (len <= SHIM_SPOOL_REC_MAX). When the spool would go
 * over its bound, the oldest heartbeats are dropped first; a heartbeat
 * that still does not fit is itself dropped (returns SHIM_ENOSPC, and is
 * counted); any other record is kept even over the bound (counted in
 * over_limit). Not yet durable: see shim_spool_sync(). */
int shim_spool_append(struct shim_spool *sp, enum shim_spool_lane lane,
		      uint64_t seq, const uint8_t *data, size_t len);

/* Group commit without holding the caller's lock: lock; begin; unlock;
 * run (fdatasync of every descriptor in the ticket, which it closes);
 * lock; done(ok); unlock. A full segment is synced by the next commit,
 * not by the append that started a new one. */
struct shim_spool_sync_ticket {
	int fd[SHIM_SPOOL_LANES];       /* current segments */
	int old_fd[SHIM_SPOOL_LANES];   /* segments closed by rotation */
	uint64_t old_seg[SHIM_SPOOL_LANES];
	int dir_fd;                     /* new segment files to make durable */
	struct shim_spool_pos upto[SHIM_SPOOL_LANES];
};
void shim_spool_sync_begin(struct shim_spool *sp,
			   struct shim_spool_sync_ticket *t);
/* Returns 1 when every sync succeeded. */
int shim_spool_sync_run(struct shim_spool_sync_ticket *t);
void shim_spool_sync_done(struct shim_spool *sp,
			  const struct shim_spool_sync_ticket *t, int ok);

/* Convenience: begin + fdatasync + done, for single-threaded callers. */
int shim_spool_sync(struct shim_spool *sp);

/* 1 when every appended byte is durable. */
int shim_spool_is_synced(struct shim_spool *sp);

/* Reads the next durable record past the read cursor, priority lane
 * first, then the lower sequence number of the normal and heartbeat
 * lanes. Copies the payload into buf. Returns 1 with *rec set, 0 when
 * nothing is ready, or a negative SHIM_E*. Advances the read cursor. */
int shim_spool_next(struct shim_spool *sp, uint8_t *buf, size_t cap,
		    struct shim_spool_rec *rec);

/* Marks everything in lane up to pos (a rec->next) as delivered. */
void shim_spool_ack(struct shim_spool *sp, enum shim_spool_lane lane,
		    struct shim_spool_pos pos);

/* Moves the read cursors back to the acknowledged ones. */
void shim_spool_rewind(struct shim_spool *sp);

/* Persists the acknowledged cursors and the drop counter (atomic
 * replace + fsync) when they changed, then deletes delivered segments. */
int shim_spool_checkpoint(struct shim_spool *sp);

/* The same in three steps, so that the file I/O runs without the
 * caller's lock: lock; begin (returns 1 when there is something to save);
 * unlock; write; lock; done; unlock. */
#define SHIM_SPOOL_CURSOR_LEN (8 + SHIM_SPOOL_LANES * 16 + 8 + 4)
struct shim_spool_ckpt {
	int needed;
	int rc;
	const char *dir;
	struct shim_spool_pos ack[SHIM_SPOOL_LANES];
	uint64_t dropped;
	uint8_t buf[SHIM_SPOOL_CURSOR_LEN];
};
int shim_spool_checkpoint_begin(struct shim_spool *sp,
				struct shim_spool_ckpt *c);
int shim_spool_checkpoint_write(struct shim_spool_ckpt *c);
void shim_spool_checkpoint_done(struct shim_spool *sp,
				const struct shim_spool_ckpt *c);

void shim_spool_status(struct shim_spool *sp, struct shim_spool_status *st);

/* Checkpoints and closes. NULL is accepted. */
void shim_spool_close(struct shim_spool *sp);

/*
 * Segment parser, used at open and by the fuzz target: walks buf (a whole
 * segment file, header included). For each valid record calls cb (if not
 * NULL) with its offset. Returns the offset where valid data ends (the
 * file length when all is well), or a negative SHIM_E* when the segment
 * header itself is bad. *corrupt is set to 1 when data after the returned
 * offset is not a clean end of file.
 */
typedef void (*shim_spool_rec_cb)(void *arg, uint64_t off, uint64_t seq,
				  enum shim_spool_lane lane,
				  const uint8_t *payload, size_t len);
long long shim_spool_parse_segment(const uint8_t *buf, size_t len,
				   int expect_lane, shim_spool_rec_cb cb,
				   void *arg, int *corrupt);

/* Encodes a record header for payload into hdr[SHIM_SPOOL_REC_HDR]. */
void shim_spool_encode_header(uint8_t *hdr, enum shim_spool_lane lane,
			      uint64_t seq, const uint8_t *payload,
			      size_t len);

#endif
