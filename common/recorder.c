/*
 * The session recorder: a bounded byte queue filled by the forwarding
 * loop and drained by a writer thread that encodes records (core/record.h),
 * appends them to <storage_root>/sessions/<id>.part and makes them durable
 * with one fdatasync per recording.sync_interval_ms (group commit). The
 * footer is written at the end and the file renamed to <id>.rec.
 *
 * The forwarding loop never waits for the disk: shim_recorder_traffic()
 * only copies into the queue, or answers SHIM_EAGAIN when it is full; the
 * eventfd from shim_recorder_fd() says when there is room again.
 */
#include "recorder.h"
#include "logline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "port_linux.h"
#include "record.h"
#include "util.h"

/* Queued item: kind, length, wall and monotonic time, then the bytes. */
#define QHDR 21
/* Traffic is queued in pieces of at most this many bytes. */
#define PIECE_MAX 16384
/* A DATA record is sealed once its plaintext reaches this size. */
#define RECORD_TARGET 32768
/* Free space below which no session starts, whatever the config says. */
#define FREE_FLOOR (64u * 1024)
/* The default reserve (storage.min_free_bytes not set): a fixed part,
 * for the rest of the system (logs, the event spool, state blobs) ... */
#define RESERVE_FIXED (64ull * 1024 * 1024)
/* Retention passes asked for by a trusted time, at most this often. */
#define PRUNE_EVERY_S 3600
/* ... plus 1/20 of the filesystem, at most RESERVE_FRACTION_MAX ... */
#define RESERVE_FRACTION 20u
#define RESERVE_FRACTION_MAX (1024ull * 1024 * 1024)
/* ... and never less than one session of session.max_duration at the
 * serial line rates, both ways, with the record overhead (1/8). */
/* Stack of the writer thread: records are built in heap buffers; the
 * deepest use is mbedTLS (ECDH, signing), a few KiB. */
#define WRITER_STACK (256u * 1024)

/* What the writer is doing, for shim_recorder_traffic(): whether a newly
 * queued item needs a wake-up (see enqueue()). */
enum { W_BUSY = 0, W_IDLE = 1, W_TIMED = 2 };

enum { Q_IN = 0, Q_OUT = 1, Q_META = 2 };

struct shim_recorder {
	const struct shim_config *cfg;
	const struct shim_port *port;
	char *sessions_dir;
	uint8_t recipient[SHIM_P256_PUB_LEN];
	uint8_t identity[SHIM_P256_PUB_LEN];
	int local_custody;

	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t wake;   /* writer: work to do */
	pthread_cond_t done;   /* caller: end finished */
	int efd;
	int wstate;            /* W_* (under mu) */

	/* Key material for the next session, made by the writer while idle
	 * (under mu): an ephemeral key pair's public half and its ECDH
	 * shared secret with the recipient key. Used once, then wiped. */
	int pre_ready;
	uint8_t pre_eph[SHIM_P256_PUB_LEN];
	uint8_t pre_shared[32];

	/* queue (under mu) */
	uint8_t *q;
	size_t qcap;
	size_t qhead;
	size_t qused;
	int want_room;

	/* session (under mu for the flags; the writer owns the rest) */
	int session_open;
	int end_req;
	int end_done;
	int end_rc;
	int stop;
	char reason[SHIM_REC_REASON_MAX + 1];
	int64_t end_wall;
	int64_t end_mono;
	int failed;
	char failure[128];
	uint64_t dropped;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t records;
	uint64_t storage_used;
	char session_id[SHIM_SESSION_ID_MAX];
	char chain_hex[65];

	/* writer-owned */
	int fd;
	struct shim_rec_header hdr;
	struct shim_rec_writer w;
	uint8_t *plain;
	uint8_t *frame;
	uint8_t *item;
	uint64_t good_size;    /* file size after the last good write */
	int dirty;             /* written but not yet synced */
	int dir_dirty;         /* the session file's name not yet synced */
	int broken;            /* a failed write could not be cut back */
	uint64_t gap;          /* bytes lost since the last good record (mu) */
	uint64_t gap_marked;   /* of which the batch's gap marker reports */
	uint64_t gap_in, gap_out;             /* gap by direction (mu) */
	uint64_t gap_marked_in, gap_marked_out;
	int64_t bstart_wall;   /* item time base when the batch began */
	int64_t bstart_mono;
	int64_t pending_since; /* monotonic ms of the oldest unsynced byte */
	int over_budget;
	int breakglass;         /* a "breakglass" meta record: footer flag */
	int idle_work;         /* make the next key material (under mu) */

	/* retention (under mu): deletion only against a trusted time */
	int64_t trusted_s;     /* Unix seconds from the daemon; 0 = none */
	int prune_req;         /* a trusted time came: prune when idle */
	int64_t prune_asked_s; /* trusted time of the last such request */
	void (*on_deleted)(void *arg, const char *name, int64_t started_s);
	void *deleted_arg;
	int (*may_delete)(void *arg, const char *name);
	void *may_delete_arg;
	pthread_mutex_t prune_mu; /* one pruning pass at a time */
};

/* ---- small helpers ------------------------------------------------------- */

/* A warning on stderr, in the daemon's log line format. */
static void rec_log(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void rec_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	shim_log_line("warn", "recorder", fmt, ap);
	va_end(ap);
}

static int64_t now_ms(void)
{
	return shim_linux_mono_ns() / 1000000;
}

static void set_failure(struct shim_recorder *r, const char *what, int err)
{
	uint64_t one = 1;
	ssize_t n;

	pthread_mutex_lock(&r->mu);
	if (!r->failed) {
		r->failed = 1;
		snprintf(r->failure, sizeof(r->failure), "%s: %s", what,
			 shim_strerror(err));
	}
	pthread_mutex_unlock(&r->mu);
	n = write(r->efd, &one, sizeof(one));
	(void)n;
}

static char *session_path(const struct shim_recorder *r, const char *id,
			  const char *ext)
{
	size_t n = strlen(r->sessions_dir) + strlen(id) + strlen(ext) + 3;
	char *p = malloc(n);

	if (p != NULL) {
		snprintf(p, n, "%s/%s%s", r->sessions_dir, id, ext);
	}
	return p;
}

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Start time (Unix seconds) from a session ID "YYYYmmddTHHMMSSZ-xxxx". */
static int id_time(const char *id, int64_t *t)
{
	struct tm tm;
	const char *e;

	memset(&tm, 0, sizeof(tm));
	e = strptime(id, "%Y%m%dT%H%M%SZ", &tm);
	if (e == NULL) {
		return SHIM_EINVAL;
	}
	*t = (int64_t)timegm(&tm);
	return 0;
}

/* ---- storage accounting and retention --------------------------------- */

static uint64_t scan_usage(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t total = 0;

	if (d == NULL) {
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.') {
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    S_ISREG(st.st_mode)) {
			total += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return total;
}

/* Retention. The age of a recording is the time in its name against the
 * trusted time the daemon gives (shim_recorder_set_trusted_time), never
 * the wall clock alone: one start with the clock set far ahead must not
 * delete every recording. Without a trusted time nothing is deleted. */
static void prune(struct shim_recorder *r)
{
	int64_t keep = (int64_t)r->cfg->retention_days * 86400;
	int64_t now;
	void (*cb)(void *, const char *, int64_t);
	void *cb_arg;
	int (*may)(void *, const char *);
	void *may_arg;
	DIR *d;
	struct dirent *de;

	if (r->cfg->retention_days == 0) {
		return;
	}
	pthread_mutex_lock(&r->prune_mu);
	pthread_mutex_lock(&r->mu);
	now = r->trusted_s;
	cb = r->on_deleted;
	cb_arg = r->deleted_arg;
	may = r->may_delete;
	may_arg = r->may_delete_arg;
	pthread_mutex_unlock(&r->mu);
	if (now <= 0) {
		pthread_mutex_unlock(&r->prune_mu);
		return;
	}
	d = opendir(r->sessions_dir);
	if (d == NULL) {
		pthread_mutex_unlock(&r->prune_mu);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		int64_t t;
		struct stat st;

		/* finished recordings and the damaged tails kept beside
		 * them; never a session still open */
		if (has_suffix(de->d_name, ".part") ||
		    id_time(de->d_name, &t) != 0 || now - t <= keep) {
			continue;
		}
		/* central custody: never a recording not yet delivered */
		if (may != NULL && !may(may_arg, de->d_name)) {
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			    0 &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0) {
			pthread_mutex_lock(&r->mu);
			r->storage_used -= r->storage_used >= (uint64_t)st.st_size
						   ? (uint64_t)st.st_size
						   : r->storage_used;
			pthread_mutex_unlock(&r->mu);
			rec_log("retention: deleted %s (%llu bytes): older than "
				"%u days by the trusted clock", de->d_name,
				(unsigned long long)st.st_size,
				r->cfg->retention_days);
			if (cb != NULL) {
				cb(cb_arg, de->d_name, t);
			}
		}
	}
	closedir(d);
	pthread_mutex_unlock(&r->prune_mu);
}

/* ---- recovery ------------------------------------------------------------- */

static int read_into(struct shim_rec_reader *rd, int fd)
{
	uint8_t buf[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return shim_err_from_errno(errno);
		}
		if (n == 0) {
			return 0;
		}
		/* A damaged stream is classified at finish. */
		(void)shim_rec_reader_feed(rd, buf, (size_t)n);
	}
}

/* Copies bytes [from, EOF) of fd to path (the cut of a damaged tail, kept
 * for the investigator). */
static void keep_tail(int fd, uint64_t from, const char *path)
{
	uint8_t buf[8192];
	int out;
	ssize_t n;
	off_t off = (off_t)from;

	/* A name left from before is replaced, never written through. */
	unlink(path);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   0600);
	if (out < 0) {
		return;
	}
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		if (shim_write_all(out, buf, (size_t)n) != 0) {
			break;
		}
		off += n;
	}
	fsync(out);
	close(out);
}

static int recover_one(struct shim_recorder *r, const char *name,
		       void (*on_recovered)(void *, const char *, uint64_t),
		       void *arg)
{
	struct shim_rec_reader *rd = NULL;
	struct shim_rec_result res;
	struct shim_rec_footer f;
	uint8_t *buf = NULL;
	uint8_t footer[SHIM_REC_FOOTER_MAX];
	char id[SHIM_SESSION_ID_MAX];
	char *part = NULL, *done = NULL, *tail = NULL;
	size_t flen;
	int fd = -1, rc;

	snprintf(id, sizeof(id), "%.*s", (int)(strlen(name) - 5), name);
	part = session_path(r, id, ".part");
	done = session_path(r, id, ".rec");
	tail = session_path(r, id, ".damaged-tail");
	rd = calloc(1, sizeof(*rd));
	buf = malloc(SHIM_REC_READER_BUF);
	if (part == NULL || done == NULL || tail == NULL || rd == NULL ||
	    buf == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	fd = open(part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = shim_err_from_errno(errno);
		goto out;
	}
	shim_rec_reader_init(rd, &r->port->crypto, NULL, buf,
			     SHIM_REC_READER_BUF);
	rc = read_into(rd, fd);
	if (rc != 0) {
		goto out;
	}
	shim_rec_reader_finish(rd, NULL, &res);
	if (!res.have_header) {
		/* The header never became durable: the power went within
		 * sync_interval_ms of the session's start (or its start
		 * failed). No byte of it can be read: nothing to keep unless
		 * the bytes are damage rather than a torn start. */
		if (res.status == SHIM_REC_TORN || res.total == 0) {
			unlink(part);
			rec_log("session %s: header not on disk (power lost "
				"at session start): removed its %llu-byte file",
				id, (unsigned long long)res.total);
		} else {
			char *bad = session_path(r, id, ".damaged");

			if (bad != NULL && rename(part, bad) == 0) {
				rec_log("session %s: no readable header: file "
					"kept as %s", id, bad);
			} else {
				rec_log("session %s: no readable header",
					id);
			}
			free(bad);
		}
		rc = 0;
		goto out;
	}
	if (res.status == SHIM_REC_COMPLETE) {
		rc = rename(part, done) == 0 ? shim_fsync_dir(r->sessions_dir)
					     : shim_err_from_errno(errno);
		goto out;
	}
	memset(&f, 0, sizeof(f));
	if (res.status == SHIM_REC_CORRUPT) {
		keep_tail(fd, res.good_end, tail);
		f.flags |= SHIM_REC_F_DAMAGED;
	}
	if (ftruncate(fd, (off_t)res.good_end) != 0) {
		rc = shim_err_from_errno(errno);
		goto out;
	}
	/* unsigned arithmetic: the file's values are not trusted */
	f.end_wall_ns = (int64_t)((uint64_t)rd->hdr.start_wall_ns +
				  (uint64_t)res.last_end_ms * 1000000u);
	f.end_mono_ns = (int64_t)((uint64_t)rd->hdr.start_mono_ns +
				  (uint64_t)res.last_end_ms * 1000000u);
	f.bytes_in = res.bytes_in;
	f.bytes_out = res.bytes_out;
	f.records = res.records;
	f.cut = res.total - res.good_end;
	f.flags |= SHIM_REC_F_RECOVERED;
	snprintf(f.reason, sizeof(f.reason), "power_loss_recovered");
	memcpy(f.chain_head, res.chain, sizeof(f.chain_head));
	rc = shim_rec_footer_encode(&r->port->crypto, &f, footer,
				    sizeof(footer), &flen);
	if (rc != 0) {
		goto out;
	}
	if (lseek(fd, 0, SEEK_END) < 0) {
		rc = shim_err_from_errno(errno);
		goto out;
	}
	rc = shim_write_all(fd, footer, flen);
	if (rc == 0 && fdatasync(fd) != 0) {
		rc = shim_err_from_errno(errno);
	}
	if (rc == 0 && rename(part, done) != 0) {
		rc = shim_err_from_errno(errno);
	}
	if (rc == 0) {
		rc = shim_fsync_dir(r->sessions_dir);
	}
	if (rc == 0 && on_recovered != NULL) {
		on_recovered(arg, id, res.records);
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (rd != NULL) {
		shim_rec_reader_wipe(rd);
	}
	free(rd);
	free(buf);
	free(part);
	free(done);
	free(tail);
	return rc;
}

static int recover_all(struct shim_recorder *r,
		       void (*on_recovered)(void *, const char *, uint64_t),
		       void *arg)
{
	DIR *d = opendir(r->sessions_dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;
	int rc = 0;

	if (d == NULL) {
		return shim_err_from_errno(errno);
	}
	while ((de = readdir(d)) != NULL) {
		char **nn;

		if (!has_suffix(de->d_name, ".part")) {
			continue;
		}
		nn = realloc(names, (n + 1) * sizeof(*names));
		if (nn == NULL) {
			rc = SHIM_ENOMEM;
			break;
		}
		names = nn;
		names[n] = strdup(de->d_name);
		if (names[n] == NULL) {
			rc = SHIM_ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	for (i = 0; i < n; i++) {
		if (rc == 0) {
			rc = recover_one(r, names[i], on_recovered, arg);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* The chain head of the newest finished session, read from its footer
 * at the end of the file, so heartbeats report it from the start. */
static void load_last_head(struct shim_recorder *r)
{
	uint8_t buf[SHIM_REC_FOOTER_MAX];
	char best[256] = "", *path;
	struct timespec newest = { 0, 0 };
	DIR *d = opendir(r->sessions_dir);
	struct dirent *de;
	struct stat st;
	size_t n, rl;
	int fd;

	if (d == NULL) {
		return;
	}
	/* newest by the time the footer was written */
	while ((de = readdir(d)) != NULL) {
		struct stat fs;

		if (!has_suffix(de->d_name, ".rec") ||
		    strlen(de->d_name) >= sizeof(best) ||
		    fstatat(dirfd(d), de->d_name, &fs, AT_SYMLINK_NOFOLLOW) !=
			    0 ||
		    !S_ISREG(fs.st_mode)) {
			continue;
		}
		if (best[0] == '\0' || fs.st_mtim.tv_sec > newest.tv_sec ||
		    (fs.st_mtim.tv_sec == newest.tv_sec &&
		     fs.st_mtim.tv_nsec > newest.tv_nsec)) {
			newest = fs.st_mtim;
			snprintf(best, sizeof(best), "%s", de->d_name);
		}
	}
	closedir(d);
	if (best[0] == '\0') {
		return;
	}
	path = session_path(r, best, "");
	fd = path != NULL ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	free(path);
	if (fd < 0) {
		return;
	}
	if (fstat(fd, &st) != 0 || st.st_size < 8) {
		close(fd);
		return;
	}
	n = (size_t)st.st_size < sizeof(buf) ? (size_t)st.st_size
					    : sizeof(buf);
	if (pread(fd, buf, n, st.st_size - (off_t)n) != (ssize_t)n) {
		close(fd);
		return;
	}
	close(fd);
	/* footer body: 62 fixed bytes, the reason, chain head, signature */
	for (rl = 0; rl <= SHIM_REC_REASON_MAX; rl++) {
		size_t body = 62 + rl + 32 + 64, off;
		const uint8_t *b;

		if (body + 8 > n) {
			break;
		}
		off = n - body - 8;
		b = buf + off;
		if (shim_get_u32(b) != body || b[4] != SHIM_REC_FOOTER ||
		    b[4 + 61] != rl ||
		    shim_crc32(0, b, 4 + body) != shim_get_u32(b + 4 + body)) {
			continue;
		}
		shim_hex_encode(b + 4 + 62 + rl, 32, r->chain_hex);
		return;
	}
}

/* ---- queue ---------------------------------------------------------------- */

static void q_put(struct shim_recorder *r, const uint8_t *p, size_t n)
{
	size_t tail = (r->qhead + r->qused) % r->qcap;
	size_t first = r->qcap - tail < n ? r->qcap - tail : n;

	memcpy(r->q + tail, p, first);
	memcpy(r->q, p + first, n - first);
	r->qused += n;
}

static void q_get(struct shim_recorder *r, uint8_t *p, size_t n)
{
	size_t first = r->qcap - r->qhead < n ? r->qcap - r->qhead : n;

	memcpy(p, r->q + r->qhead, first);
	memcpy(p + first, r->q, n - first);
	/* explicit_bzero: wiped like shim_memzero, at memset speed */
	explicit_bzero(r->q + r->qhead, first);
	explicit_bzero(r->q, n - first);
	r->qhead = (r->qhead + n) % r->qcap;
	r->qused -= n;
}

static void q_push_item(struct shim_recorder *r, int kind, const uint8_t *buf,
			size_t len, int64_t wall, int64_t mono)
{
	uint8_t h[QHDR];

	h[0] = (uint8_t)kind;
	shim_put_u32(h + 1, (uint32_t)len);
	shim_put_u64(h + 5, (uint64_t)wall);
	shim_put_u64(h + 13, (uint64_t)mono);
	q_put(r, h, QHDR);
	q_put(r, buf, len);
}

static size_t piece_max(const struct shim_recorder *r)
{
	size_t m = r->qcap / 4;

	return m < PIECE_MAX ? m : PIECE_MAX;
}

/* ---- writer thread ------------------------------------------------------ */

/* Seals the batch and appends it. On a write error the file is cut back
 * to its last good size and the batch counted as dropped. */
static int flush_batch(struct shim_recorder *r)
{
	struct shim_rec_writer snap = r->w;
	size_t len;
	int rc;

	if (shim_rec_writer_pending(&r->w) == 0) {
		return 0;
	}
	rc = shim_rec_writer_seal(&r->w, r->frame, SHIM_REC_MAX_BODY + 16,
				  &len);
	if (rc == 0) {
		rc = shim_write_all(r->fd, r->frame, len);
	}
	if (rc != 0) {
		/* Roll the writer back to the last good record: the batch is
		 * lost, the chain and the item times go on from before it. */
		if (ftruncate(r->fd, (off_t)r->good_size) != 0) {
			/* Garbage stays after the last good record: nothing
			 * more is appended; recovery at the next start cuts
			 * it and seals the session. */
			r->broken = 1;
		}
		memcpy(r->w.chain, snap.chain, sizeof(snap.chain));
		r->w.records = snap.records;
		r->w.bytes_in = snap.bytes_in;
		r->w.bytes_out = snap.bytes_out;
		r->w.batch_in = 0;
		r->w.batch_out = 0;
		r->w.plain_len = 0;
		r->w.open = 0;
		r->w.prev_wall = r->bstart_wall;
		r->w.prev_mono = r->bstart_mono;
		pthread_mutex_lock(&r->mu);
		r->dropped += snap.batch_in + snap.batch_out;
		r->gap += snap.batch_in + snap.batch_out;
		r->gap_in += snap.batch_in;
		r->gap_out += snap.batch_out;
		r->gap_marked = 0;
		r->gap_marked_in = 0;
		r->gap_marked_out = 0;
		pthread_mutex_unlock(&r->mu);
		set_failure(r, "writing session record", rc);
		return rc;
	}
	r->good_size += len;
	pthread_mutex_lock(&r->mu);
	r->gap -= r->gap_marked;
	r->gap_in -= r->gap_marked_in;
	r->gap_out -= r->gap_marked_out;
	r->gap_marked = 0;
	r->gap_marked_in = 0;
	r->gap_marked_out = 0;
	r->records = r->w.records;
	r->storage_used += len;
	if (r->cfg->max_bytes != 0 && r->storage_used > r->cfg->max_bytes) {
		r->over_budget = 1;
	}
	pthread_mutex_unlock(&r->mu);
	if (!r->dirty) {
		r->dirty = 1;
	}
	return 0;
}

static int sync_now(struct shim_recorder *r)
{
	if (!r->dirty) {
		return 0;
	}
	r->dirty = 0;
	if (fdatasync(r->fd) != 0) {
		int rc = shim_err_from_errno(errno);

		set_failure(r, "syncing session file", rc);
		return rc;
	}
	if (r->dir_dirty) {
		/* The first commit of a session: its file's name too. */
		int rc = shim_fsync_dir(r->sessions_dir);

		if (rc != 0) {
			set_failure(r, "syncing session directory", rc);
			return rc;
		}
		r->dir_dirty = 0;
	}
	return 0;
}

/* Adds one dequeued item to the batch, sealing when it is full. */
static void add_item(struct shim_recorder *r, int kind, const uint8_t *buf,
		     size_t len, int64_t wall, int64_t mono)
{
	uint64_t gap, gap_in, gap_out;
	int rc;

	if (r->broken) {
		if (kind != Q_META) {
			pthread_mutex_lock(&r->mu);
			r->dropped += len;
			r->gap += len;
			if (kind == Q_IN) {
				r->gap_in += len;
			} else {
				r->gap_out += len;
			}
			pthread_mutex_unlock(&r->mu);
		}
		return;
	}
	if (shim_rec_writer_pending(&r->w) == 0) {
		/* A new batch. After lost bytes it opens with a marker, so
		 * the reader sees where the recording has a hole. */
		r->bstart_wall = r->w.prev_wall;
		r->bstart_mono = r->w.prev_mono;
		pthread_mutex_lock(&r->mu);
		gap = r->gap;
		gap_in = r->gap_in;
		gap_out = r->gap_out;
		pthread_mutex_unlock(&r->mu);
		if (gap > 0) {
			char m[96];
			int n;

			if (gap_in + gap_out == gap) {
				n = snprintf(m, sizeof(m),
					     "recording_gap%c%llu bytes not recorded "
					     "(in %llu, out %llu)", 0,
					     (unsigned long long)gap,
					     (unsigned long long)gap_in,
					     (unsigned long long)gap_out);
			} else {
				n = snprintf(m, sizeof(m),
					     "recording_gap%c%llu bytes not recorded",
					     0, (unsigned long long)gap);
			}
			if (shim_rec_writer_add(&r->w, SHIM_REC_META,
						(const uint8_t *)m, (size_t)n,
						wall, mono) == 0) {
				r->gap_marked = gap;
				r->gap_marked_in = gap_in;
				r->gap_marked_out = gap_out;
			}
		}
	}
	rc = shim_rec_writer_add(&r->w, (enum shim_rec_kind)kind, buf, len,
				 wall, mono);
	if (rc == SHIM_ENOSPC) {
		if (flush_batch(r) != 0) {
			add_item(r, kind, buf, len, wall, mono);
			return;
		}
		rc = shim_rec_writer_add(&r->w, (enum shim_rec_kind)kind, buf,
					 len, wall, mono);
	}
	if (rc != 0) {
		set_failure(r, "encoding session record", rc);
		return;
	}
	if (r->pending_since < 0) {
		r->pending_since = now_ms();
	}
	if (shim_rec_writer_pending(&r->w) >= RECORD_TARGET) {
		flush_batch(r);
	}
}

/* Writes the footer, syncs and renames the file to .rec. */
static int finish_session(struct shim_recorder *r)
{
	struct shim_rec_footer f;
	uint8_t footer[SHIM_REC_FOOTER_MAX];
	char *part = NULL, *done = NULL;
	size_t flen;
	int rc;

	if (r->broken) {
		/* The file ends in garbage we could not cut: leave it
		 * footer-less for the recovery at the next start. */
		close(r->fd);
		r->fd = -1;
		r->dirty = 0;
		shim_rec_writer_wipe(&r->w);
		return SHIM_EIO;
	}
	flush_batch(r);
	memset(&f, 0, sizeof(f));
	shim_rec_writer_summary(&r->w, &f);
	pthread_mutex_lock(&r->mu);
	f.end_wall_ns = r->end_wall;
	f.end_mono_ns = r->end_mono;
	f.dropped = r->dropped;
	if (r->failed) {
		f.flags |= SHIM_REC_F_DEGRADED;
	}
	if (r->over_budget) {
		f.flags |= SHIM_REC_F_OVER_BUDGET;
	}
	if (r->breakglass) {
		f.flags |= SHIM_REC_F_BREAKGLASS;
	}
	snprintf(f.reason, sizeof(f.reason), "%s", r->reason);
	pthread_mutex_unlock(&r->mu);
	rc = shim_rec_footer_encode(&r->port->crypto, &f, footer,
				    sizeof(footer), &flen);
	if (rc == 0) {
		rc = shim_write_all(r->fd, footer, flen);
		if (rc != 0 && ftruncate(r->fd, (off_t)r->good_size) != 0) {
			/* recovery cuts the torn footer at the next start */
		}
	}
	if (rc == 0 && fdatasync(r->fd) != 0) {
		rc = shim_err_from_errno(errno);
	}
	close(r->fd);
	r->fd = -1;
	r->dirty = 0;
	if (rc != 0) {
		/* The .part file stays; recovery seals it at next start. */
		set_failure(r, "writing session footer", rc);
		goto out;
	}
	part = session_path(r, r->session_id, ".part");
	done = session_path(r, r->session_id, ".rec");
	if (part == NULL || done == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	if (rename(part, done) != 0) {
		rc = shim_err_from_errno(errno);
		goto out;
	}
	rc = shim_fsync_dir(r->sessions_dir);
	if (rc == 0) {
		r->dir_dirty = 0;
	}
	pthread_mutex_lock(&r->mu);
	r->storage_used += flen;
	shim_hex_encode(f.chain_head, 32, r->chain_hex);
	pthread_mutex_unlock(&r->mu);
out:
	free(part);
	free(done);
	shim_rec_writer_wipe(&r->w);
	return rc;
}

/* Between sessions: retention, and the next session's ephemeral ECDH,
 * so that shim_recorder_begin() has only to seal the key and write the
 * header. Called without mu. */
static void prepare_next(struct shim_recorder *r)
{
	uint8_t eph[SHIM_P256_PUB_LEN], shared[32];
	const struct shim_crypto_ops *c = &r->port->crypto;
	int rc = SHIM_ENOTSUP;

	prune(r);
	if (c->ecdh_ephemeral != NULL) {
		rc = c->ecdh_ephemeral(c->ctx, r->recipient, eph, shared);
	}
	pthread_mutex_lock(&r->mu);
	if (rc == 0 && !r->pre_ready) {
		memcpy(r->pre_eph, eph, sizeof(eph));
		memcpy(r->pre_shared, shared, sizeof(shared));
		r->pre_ready = 1;
	}
	pthread_mutex_unlock(&r->mu);
	shim_memzero(shared, sizeof(shared));
}

static void *writer_main(void *arg)
{
	struct shim_recorder *r = arg;
	uint64_t one = 1;
	ssize_t wn;

	pthread_setname_np(pthread_self(), "shim-recorder");
	pthread_mutex_lock(&r->mu);
	for (;;) {
		int64_t deadline = -1;

		if (r->session_open && r->pending_since >= 0) {
			deadline = r->pending_since +
				   (int64_t)r->cfg->sync_interval_ms;
		} else if (r->session_open && r->dirty) {
			deadline = now_ms();
		}
		if (r->qused == 0 && !r->end_req && !r->stop &&
		    (deadline < 0 || now_ms() < deadline)) {
			if ((r->idle_work || r->prune_req) &&
			    !r->session_open) {
				int work = r->idle_work;

				r->idle_work = 0;
				r->prune_req = 0;
				pthread_mutex_unlock(&r->mu);
				if (work) {
					prepare_next(r); /* prunes too */
				} else {
					prune(r);
				}
				pthread_mutex_lock(&r->mu);
				continue;
			}
			/* Producers wake the writer only when it sleeps
			 * without a deadline (nothing to sync yet) or the
			 * queue fills up: a pending group commit collects
			 * the rest when it is due (enqueue()). */
			if (deadline < 0) {
				r->wstate = W_IDLE;
				pthread_cond_wait(&r->wake, &r->mu);
			} else {
				struct timespec ts;

				r->wstate = W_TIMED;
				ts.tv_sec = deadline / 1000;
				ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
				pthread_cond_timedwait(&r->wake, &r->mu, &ts);
			}
			r->wstate = W_BUSY;
			continue;
		}
		if (r->qused > 0) {
			uint8_t h[QHDR];
			size_t len;
			int notify;

			q_get(r, h, QHDR);
			len = shim_get_u32(h + 1);
			q_get(r, r->item, len);
			notify = r->want_room;
			r->want_room = 0;
			pthread_mutex_unlock(&r->mu);
			if (notify) {
				wn = write(r->efd, &one, sizeof(one));
				(void)wn;
			}
			add_item(r, h[0], r->item, len,
				 (int64_t)shim_get_u64(h + 5),
				 (int64_t)shim_get_u64(h + 13));
			shim_memzero(r->item, len);
			pthread_mutex_lock(&r->mu);
			continue;
		}
		if (r->session_open && (r->pending_since >= 0 || r->dirty) &&
		    (r->end_req || r->stop || now_ms() >= deadline)) {
			/* Group commit: one sync for everything so far. */
			pthread_mutex_unlock(&r->mu);
			if (!r->broken) {
				flush_batch(r);
			}
			sync_now(r);
			r->pending_since = -1;
			pthread_mutex_lock(&r->mu);
			continue;
		}
		if (r->end_req) {
			pthread_mutex_unlock(&r->mu);
			r->end_rc = finish_session(r);
			pthread_mutex_lock(&r->mu);
			r->session_open = 0;
			r->end_req = 0;
			r->end_done = 1;
			r->idle_work = 1;
			pthread_cond_broadcast(&r->done);
			continue;
		}
		if (r->stop) {
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---- public API --------------------------------------------------------- */

static void recorder_free(struct shim_recorder *r)
{
	if (r == NULL) {
		return;
	}
	if (r->efd >= 0) {
		close(r->efd);
	}
	if (r->q != NULL) {
		shim_memzero(r->q, r->qcap);
	}
	free(r->q);
	if (r->plain != NULL) {
		shim_memzero(r->plain, SHIM_REC_MAX_PLAIN);
	}
	free(r->plain);
	free(r->frame);
	if (r->item != NULL) {
		shim_memzero(r->item, PIECE_MAX);
	}
	free(r->item);
	free(r->sessions_dir);
	shim_memzero(r->pre_shared, sizeof(r->pre_shared));
	pthread_mutex_destroy(&r->prune_mu);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->done);
	shim_memzero(r, sizeof(*r));
	free(r);
}

int shim_recorder_open(struct shim_recorder **out,
		       const struct shim_config *cfg,
		       const struct shim_port *port,
		       void (*on_recovered)(void *arg, const char *session_id,
					    uint64_t records),
		       void *arg)
{
	struct shim_recorder *r;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (cfg == NULL || port == NULL || cfg->storage_root == NULL) {
		return SHIM_EINVAL;
	}
	if (port->crypto.identity_pub == NULL ||
	    port->crypto.identity_sign == NULL) {
		return SHIM_ENOTSUP;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return SHIM_ENOMEM;
	}
	r->cfg = cfg;
	r->port = port;
	r->fd = -1;
	r->efd = -1;
	r->pending_since = -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->prune_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&r->done, NULL);
	r->qcap = cfg->queue_bytes >= 4096 ? cfg->queue_bytes : 256 * 1024;
	r->q = calloc(1, r->qcap);
	r->plain = calloc(1, SHIM_REC_MAX_PLAIN);
	r->frame = calloc(1, SHIM_REC_MAX_BODY + 16);
	r->item = calloc(1, PIECE_MAX);
	r->sessions_dir = shim_config_path(cfg, "sessions");
	if (r->q == NULL || r->plain == NULL || r->frame == NULL ||
	    r->item == NULL || r->sessions_dir == NULL) {
		rc = SHIM_ENOMEM;
		goto fail;
	}
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	rc = shim_mkdir_p(r->sessions_dir, 0700);
	if (rc != 0) {
		goto fail;
	}
	rc = port->crypto.identity_pub(port->crypto.ctx, r->identity);
	if (rc != 0) {
		goto fail;
	}
	rc = shim_keys_recording_public(cfg, r->recipient, &r->local_custody);
	if (rc != 0) {
		goto fail;
	}
	rc = recover_all(r, on_recovered, arg);
	if (rc != 0) {
		goto fail;
	}
	r->storage_used = scan_usage(r->sessions_dir);
	/* No retention here: no trusted time yet (it comes from the daemon,
	 * and the writer prunes when it does). */
	load_last_head(r);
	r->idle_work = 1;
	{
		pthread_attr_t ta;

		pthread_attr_init(&ta);
		pthread_attr_setstacksize(&ta, WRITER_STACK);
		rc = pthread_create(&r->thread, &ta, writer_main, r);
		pthread_attr_destroy(&ta);
	}
	if (rc != 0) {
		rc = SHIM_ENOMEM;
		goto fail;
	}
	r->thread_started = 1;
	*out = r;
	return 0;
fail:
	recorder_free(r);
	return rc;
}

int shim_recorder_local_custody(struct shim_recorder *r)
{
	return r->local_custody;
}

void shim_recorder_set_trusted_time(struct shim_recorder *r, int64_t unix_s)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->trusted_s = unix_s > 0 ? unix_s : 0;
	/* The daemon gives the time every few seconds; retention counts in
	 * days. A pass when the time first becomes trusted, then hourly (and
	 * after each session, as before). */
	if (r->trusted_s > 0 && r->cfg->retention_days != 0 &&
	    (r->prune_asked_s == 0 ||
	     r->trusted_s - r->prune_asked_s >= PRUNE_EVERY_S ||
	     r->trusted_s < r->prune_asked_s)) {
		r->prune_asked_s = r->trusted_s;
		/* pruned by the writer when no session is open: the
		 * caller's loop never waits for the disk */
		r->prune_req = 1;
		if (r->wstate == W_IDLE) {
			pthread_cond_signal(&r->wake);
		}
	}
	pthread_mutex_unlock(&r->mu);
}

void shim_recorder_set_on_deleted(struct shim_recorder *r,
				  void (*fn)(void *arg, const char *name,
					     int64_t started_s),
				  void *arg)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->on_deleted = fn;
	r->deleted_arg = arg;
	pthread_mutex_unlock(&r->mu);
}

void shim_recorder_set_may_delete(struct shim_recorder *r,
				  int (*fn)(void *arg, const char *name),
				  void *arg)
{
	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->may_delete = fn;
	r->may_delete_arg = arg;
	pthread_mutex_unlock(&r->mu);
}

int shim_recorder_remove(struct shim_recorder *r, const char *name)
{
	struct stat st;
	DIR *d;
	int rc = 0;

	if (r == NULL || name[0] == '.' || strchr(name, '/') != NULL ||
	    !has_suffix(name, ".rec")) {
		return SHIM_EINVAL;
	}
	pthread_mutex_lock(&r->prune_mu);
	d = opendir(r->sessions_dir);
	if (d == NULL) {
		rc = shim_err_from_errno(errno);
	} else if ((errno = 0, fstatat(dirfd(d), name, &st,
					 AT_SYMLINK_NOFOLLOW)) != 0 ||
		   !S_ISREG(st.st_mode) || unlinkat(dirfd(d), name, 0) != 0) {
		rc = errno != 0 ? shim_err_from_errno(errno) : SHIM_EINVAL;
	} else {
		(void)fsync(dirfd(d));
		pthread_mutex_lock(&r->mu);
		r->storage_used -= r->storage_used >= (uint64_t)st.st_size
					   ? (uint64_t)st.st_size
					   : r->storage_used;
		pthread_mutex_unlock(&r->mu);
	}
	if (d != NULL) {
		closedir(d);
	}
	pthread_mutex_unlock(&r->prune_mu);
	return rc;
}

/* The free space no session may start below. */
static uint64_t reserve_bytes(const struct shim_recorder *r,
			      const struct statvfs *sv)
{
	const struct shim_config *c = r->cfg;
	uint64_t fs, part, line, dur;

	if (c->min_free_explicit) {
		return c->min_free_bytes > FREE_FLOOR ? c->min_free_bytes
						      : FREE_FLOOR;
	}
	fs = (uint64_t)sv->f_blocks * (uint64_t)sv->f_frsize;
	part = fs / RESERVE_FRACTION;
	if (part > RESERVE_FRACTION_MAX) {
		part = RESERVE_FRACTION_MAX;
	}
	/* 10 bits a byte on the line (start, 8 data, stop) */
	dur = c->max_duration > 0 && c->max_duration < 1e7
		      ? (uint64_t)c->max_duration : 28800u;
	line = ((uint64_t)c->tech_serial.baud + (uint64_t)c->dev_serial.baud) /
	       10u * dur;
	line += line / 8;
	return RESERVE_FIXED + part > line ? RESERVE_FIXED + part : line;
}

static int can_start(struct shim_recorder *r);

/* Retention runs in the writer at open and after each session; here only
 * when the budget needs the room. */
int shim_recorder_can_start(struct shim_recorder *r)
{
	int rc = can_start(r);

	if (rc == SHIM_ENOSPC && r->cfg->retention_days != 0) {
		prune(r);
		rc = can_start(r);
	}
	return rc;
}

static int can_start(struct shim_recorder *r)
{
	struct statvfs sv;
	uint64_t used;

	pthread_mutex_lock(&r->mu);
	used = r->storage_used;
	pthread_mutex_unlock(&r->mu);
	if (r->cfg->max_bytes != 0 && used >= r->cfg->max_bytes) {
		return SHIM_ENOSPC;
	}
	if (statvfs(r->sessions_dir, &sv) != 0) {
		return SHIM_EIO;
	}
	/* Below the floor even the header and footer of a session may not
	 * fit, whatever min_free_bytes says. */
	if ((uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize <
	    reserve_bytes(r, &sv)) {
		return SHIM_ENOSPC;
	}
	return 0;
}

int shim_recorder_begin(struct shim_recorder *r, const char *technician_id,
			char session_id[SHIM_SESSION_ID_MAX])
{
	struct shim_rec_header *h = &r->hdr;
	uint8_t key[SHIM_REC_KEY_LEN];
	uint8_t eph[SHIM_P256_PUB_LEN], shared[32];
	uint8_t hdr[SHIM_REC_HEADER_MAX];
	char *path = NULL;
	size_t hlen;
	int fd = -1, rc, pre = 0;

	session_id[0] = '\0';
	pthread_mutex_lock(&r->mu);
	rc = r->session_open ? SHIM_ESTATE : 0;
	if (rc == 0 && r->pre_ready) {
		/* taken whatever happens next: never used twice */
		memcpy(eph, r->pre_eph, sizeof(eph));
		memcpy(shared, r->pre_shared, sizeof(shared));
		shim_memzero(r->pre_shared, sizeof(r->pre_shared));
		r->pre_ready = 0;
		pre = 1;
	}
	pthread_mutex_unlock(&r->mu);
	if (rc != 0) {
		goto out;
	}
	if (technician_id == NULL || strlen(technician_id) > SHIM_REC_TECH_MAX ||
	    r->cfg->shim_id == NULL || strlen(r->cfg->shim_id) > SHIM_REC_ID_MAX) {
		rc = SHIM_EINVAL;
		goto out;
	}
	rc = shim_recorder_can_start(r);
	if (rc != 0) {
		goto out;
	}
	rc = shim_rec_header_start(r->port, r->cfg->shim_id, technician_id,
				   r->local_custody ? SHIM_REC_CUSTODY_LOCAL :
						      SHIM_REC_CUSTODY_CENTRAL,
				   r->identity, h);
	if (rc != 0) {
		goto out;
	}
	rc = r->port->rng.fill(r->port->rng.ctx, key, sizeof(key));
	if (rc != 0) {
		goto out;
	}
	if (pre) {
		rc = shim_rec_seal_key_shared(&r->port->crypto, r->recipient,
					      eph, shared, key, h);
	} else {
		rc = shim_rec_seal_key(&r->port->crypto, r->recipient, key, h);
	}
	if (rc != 0) {
		goto out;
	}
	rc = shim_rec_header_encode(h, hdr, sizeof(hdr), &hlen);
	if (rc != 0) {
		goto out;
	}
	path = session_path(r, h->session_id, ".part");
	if (path == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW |
				O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = shim_err_from_errno(errno);
		goto out;
	}
	/* Not synced here: the header becomes durable with the session's
	 * first group commit, within sync_interval_ms, like any traffic
	 * byte (recovery removes a file whose header did not make it). */
	rc = shim_write_all(fd, hdr, hlen);
	if (rc == 0) {
		rc = shim_rec_writer_init(&r->w, &r->port->crypto, key, h, hdr,
					  hlen, r->plain, SHIM_REC_MAX_PLAIN);
	}
	if (rc != 0) {
		close(fd);
		fd = -1;
		unlink(path);
		goto out;
	}
	pthread_mutex_lock(&r->mu);
	r->fd = fd;
	fd = -1;
	r->good_size = hlen;
	r->dirty = 1;
	r->dir_dirty = 1;
	r->pending_since = now_ms();
	r->over_budget = 0;
	r->breakglass = 0;
	r->failed = 0;
	r->failure[0] = '\0';
	r->dropped = 0;
	r->gap = 0;
	r->gap_marked = 0;
	r->gap_in = r->gap_out = 0;
	r->gap_marked_in = r->gap_marked_out = 0;
	r->broken = 0;
	r->bytes_in = 0;
	r->bytes_out = 0;
	r->records = 0;
	r->storage_used += hlen;
	r->end_done = 0;
	snprintf(r->session_id, sizeof(r->session_id), "%s", h->session_id);
	r->session_open = 1;
	/* the writer now has a commit to schedule */
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->mu);
	snprintf(session_id, SHIM_SESSION_ID_MAX, "%s", h->session_id);
out:
	if (fd >= 0) {
		close(fd);
	}
	if (rc != 0 && pre) {
		/* the material is spent: make fresh for the next try */
		pthread_mutex_lock(&r->mu);
		r->idle_work = 1;
		pthread_cond_signal(&r->wake);
		pthread_mutex_unlock(&r->mu);
	}
	shim_memzero(key, sizeof(key));
	shim_memzero(shared, sizeof(shared));
	free(path);
	return rc;
}

/* Queues one item (split into pieces); all or nothing. Called with mu. */
static int enqueue(struct shim_recorder *r, int kind, const uint8_t *buf,
		   size_t len, int64_t wall, int64_t mono)
{
	size_t pm = piece_max(r);
	size_t pieces = len == 0 ? 1 : (len + pm - 1) / pm;
	size_t need = len + pieces * QHDR, off = 0;

	if (need > r->qcap) {
		return SHIM_ERANGE;
	}
	if (r->qcap - r->qused < need) {
		r->want_room = 1;
		return SHIM_EAGAIN;
	}
	do {
		size_t n = len - off < pm ? len - off : pm;

		q_push_item(r, kind, buf + off, n, wall, mono);
		off += n;
	} while (off < len);
	/* No wake-up while a group commit is pending: the writer takes
	 * everything queued when it falls due (within sync_interval_ms of
	 * the oldest unsynced byte, so within it of these bytes too), or
	 * sooner once the queue passes a quarter full. */
	if (r->wstate == W_IDLE ||
	    (r->wstate == W_TIMED && r->qused > r->qcap / 4)) {
		pthread_cond_signal(&r->wake);
	}
	return 0;
}

int shim_recorder_traffic(struct shim_recorder *r, enum shim_rec_dir dir,
			  const uint8_t *buf, size_t len, int64_t wall_ns,
			  int64_t mono_ns)
{
	int rc;

	if (dir != SHIM_DIR_IN && dir != SHIM_DIR_OUT) {
		return SHIM_EINVAL;
	}
	if (len == 0) {
		return 0;
	}
	pthread_mutex_lock(&r->mu);
	if (!r->session_open || r->end_req) {
		rc = SHIM_ESTATE;
	} else if (r->failed && r->cfg->on_failure == SHIM_ON_FAILURE_STOP) {
		rc = SHIM_EIO;
	} else {
		rc = enqueue(r, dir == SHIM_DIR_IN ? Q_IN : Q_OUT, buf, len,
			     wall_ns, mono_ns);
		if (rc == SHIM_EAGAIN && r->failed) {
			/* After a failure forwarding never waits for the
			 * disk: what does not fit is counted, not kept. The
			 * writer keeps trying to record the rest. */
			r->dropped += len;
			r->gap += len;
			if (dir == SHIM_DIR_IN) {
				r->gap_in += len;
			} else {
				r->gap_out += len;
			}
			r->want_room = 0;
			rc = 0;
		}
	}
	if (rc == 0) {
		if (dir == SHIM_DIR_IN) {
			r->bytes_in += len;
		} else {
			r->bytes_out += len;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int shim_recorder_meta(struct shim_recorder *r, const char *name,
		       const char *detail, int64_t wall_ns, int64_t mono_ns)
{
	uint8_t buf[1024];
	size_t nl, dl;
	int rc;

	if (name == NULL || name[0] == '\0') {
		return SHIM_EINVAL;
	}
	if (detail == NULL) {
		detail = "";
	}
	nl = strlen(name);
	dl = strlen(detail);
	if (nl + 1 + dl > sizeof(buf)) {
		dl = sizeof(buf) - 1 - nl;
		if (nl + 1 > sizeof(buf)) {
			return SHIM_EINVAL;
		}
	}
	memcpy(buf, name, nl);
	buf[nl] = '\0';
	memcpy(buf + nl + 1, detail, dl);
	pthread_mutex_lock(&r->mu);
	if (!r->session_open || r->end_req) {
		rc = SHIM_ESTATE;
	} else if (r->failed && r->cfg->on_failure == SHIM_ON_FAILURE_STOP) {
		rc = SHIM_EIO;
	} else {
		rc = enqueue(r, Q_META, buf, nl + 1 + dl, wall_ns, mono_ns);
		if (rc == SHIM_EAGAIN && r->failed) {
			rc = 0;
		}
		if (strcmp(name, "breakglass") == 0) {
			/* a break-glass session: the signed footer says so */
			r->breakglass = 1;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int shim_recorder_end(struct shim_recorder *r, const char *reason,
		      int64_t wall_ns, int64_t mono_ns)
{
	int rc;

	pthread_mutex_lock(&r->mu);
	if (!r->session_open || r->end_req) {
		pthread_mutex_unlock(&r->mu);
		return SHIM_ESTATE;
	}
	snprintf(r->reason, sizeof(r->reason), "%s",
		 reason != NULL ? reason : "shutdown");
	r->end_wall = wall_ns;
	r->end_mono = mono_ns;
	r->end_done = 0;
	r->end_req = 1;
	pthread_cond_signal(&r->wake);
	while (!r->end_done) {
		pthread_cond_wait(&r->done, &r->mu);
	}
	rc = r->end_rc;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int shim_recorder_fd(struct shim_recorder *r)
{
	return r->efd;
}

void shim_recorder_ack(struct shim_recorder *r)
{
	uint64_t v;
	ssize_t n = read(r->efd, &v, sizeof(v));

	(void)n;
}

void shim_recorder_status(struct shim_recorder *r,
			  struct shim_recorder_status *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&r->mu);
	st->session_open = r->session_open;
	st->failed = r->failed;
	snprintf(st->failure, sizeof(st->failure), "%s", r->failure);
	st->bytes_in = r->bytes_in;
	st->bytes_out = r->bytes_out;
	st->queued_bytes = r->qused;
	st->storage_used = r->storage_used;
	st->records = r->records;
	pthread_mutex_unlock(&r->mu);
}

uint64_t shim_recorder_dropped(struct shim_recorder *r)
{
	uint64_t d;

	pthread_mutex_lock(&r->mu);
	d = r->dropped;
	pthread_mutex_unlock(&r->mu);
	return d;
}

void shim_recorder_chain_head(struct shim_recorder *r, char out[65])
{
	pthread_mutex_lock(&r->mu);
	memcpy(out, r->chain_hex, 65);
	pthread_mutex_unlock(&r->mu);
}

void shim_recorder_close(struct shim_recorder *r, const char *reason)
{
	int open_now;

	if (r == NULL) {
		return;
	}
	pthread_mutex_lock(&r->mu);
	open_now = r->session_open;
	pthread_mutex_unlock(&r->mu);
	if (open_now) {
		shim_recorder_end(r, reason,
				  r->port->clock.wall_ns(r->port->clock.ctx),
				  r->port->clock.mono_ns(r->port->clock.ctx));
	}
	if (r->thread_started) {
		pthread_mutex_lock(&r->mu);
		r->stop = 1;
		pthread_cond_signal(&r->wake);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
	}
	recorder_free(r);
}
