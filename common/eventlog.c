/*
 * The event log: audit log + durable spool + SIEM sender. See eventlog.h.
 *
 * Threads and locking. One mutex guards everything below. Callers of
 * shim_eventlog_emit() (the daemon loop, the sensor thread) only format
 * and write(2) into the page cache: the audit line and the spool record.
 * The flusher thread makes those writes durable in groups (one fdatasync
 * per file for every event written meanwhile: group commit) and persists
 * the sequence number through the store ops. The sender thread hands only
 * durable spool records to the network, and acknowledges them in the spool
 * once the connection has proved it took them (see siem_tls.h), so an
 * event is on disk before it leaves and is never lost by a failed link.
 *
 * Sequence numbers. The next number is the largest of: the persisted
 * "event-seq" blob, one past the highest number in the spool, and one
 * past the highest in the tail of the audit log (and of its last rotated
 * file). The audit line of every event is synced in the same group commit
 * that makes the event durable, so the audit log is the durable record of
 * the numbers handed out; the blob, refreshed at most once a second and at
 * close, backs it up. After a crash the spool and audit log (in the page
 * cache, or on disk after a power cut once synced) are at least as new as
 * the blob, so a number is never reused for an event anyone could have
 * seen, and none is skipped.
 */
#include "eventlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "port_linux.h"
#include "siem_tls.h"
#include "spool.h"
#include "syslog.h"
#include "util.h"

#define SEQ_BLOB "event-seq"
#define AUDIT_KEEP 5                  /* audit.jsonl.1 .. .5 */
#define AUDIT_TAIL_SCAN (64 * 1024)
#define CHECKPOINT_NS (1000000000LL)
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 60000
#define CONFIRM_MIN_NS (500 * 1000000LL)
#define SEND_BATCH 65536
#define INFLIGHT_MAX 32768
#define PRIORITY_WAIT_MS 2000
/* Stack of the flusher and sender threads: buffers are on the heap; the
 * deepest use is an mbedTLS handshake, a few KiB. */
#define THREAD_STACK (256u * 1024)

struct inflight {
	enum shim_spool_lane lane;
	struct shim_spool_pos next;
	uint64_t seq;
	uint64_t wire_end;       /* wire bytes sent once it was written */
	int64_t written_ns;
};

struct shim_eventlog {
	const struct shim_port *port;
	pthread_mutex_t mu;
	pthread_cond_t cv_flush;     /* flusher: work to do */
	pthread_cond_t cv_durable;   /* emitters: a commit finished */
	pthread_cond_t cv_send;      /* sender: records ready or closing */
	int wake_efd;                /* sender polling its socket: the same */
	int sender_polling;

	/* identity and formatting */
	char shim_id[SHIM_SHIM_ID_MAX];
	char hostname[256];
	enum shim_siem_format format;
	struct shim_syslog_opts opts;
	char fmtbuf[SHIM_SYSLOG_MSG_MAX];

	/* sequence */
	uint64_t next_seq;
	uint64_t seq_saved;          /* next_seq value persisted */
	int64_t last_seq_save_ns;
	char store_err[96];

	int lock_fd;                 /* <storage_root>/eventlog.lock */

	/* audit log */
	char *audit_path;
	int audit_fd;
	uint64_t audit_size;
	uint64_t audit_max;
	int audit_dirty;
	char audit_err[160];

	/* spool and group commit */
	struct shim_spool *spool;    /* NULL for the noop transport */
	uint64_t write_gen;          /* bumped by every emit */
	uint64_t durable_gen;        /* all writes up to it are durable */
	uint64_t commits;
	int64_t last_checkpoint_ns;
	int flush_error;

	/* threads */
	int closing;
	int64_t close_deadline_ns;
	int flusher_started, sender_started;
	pthread_t flusher, sender;

	/* transport */
	struct shim_siem_target target;
	char *host, *server_name, *ca, *client_cert, *client_key;
	int link_up;
	char link_error[160];
	char tls_version[32];
	char tls_cipher[64];
	char peer_subject[160];
	int64_t outage_since_ns;     /* monotonic; 0 while the link is up */
	double outage_alarm_s;
	int outage_alarm;
	uint64_t delivered;
	uint64_t last_delivered_seq;
	uint64_t connects;
	uint64_t connect_attempts;
	uint64_t emitted;

	shim_eventlog_log_fn log_fn;
	void *log_ctx;
};

static int64_t now_mono(const struct shim_eventlog *el)
{
	struct timespec ts;

	(void)el;
	/* The sender measures real time for back-off and confirmation, even
	 * under a fake port clock. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t now_wall(const struct shim_eventlog *el)
{
	if (el->port != NULL && el->port->clock.wall_ns != NULL) {
		return el->port->clock.wall_ns(el->port->clock.ctx);
	}
	return (int64_t)time(NULL) * 1000000000LL;
}

static char *xstrdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static char *path_join(const char *dir, const char *rel)
{
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = malloc(n);

	if (p != NULL) {
		snprintf(p, n, "%s/%s", dir, rel);
	}
	return p;
}

/* ---- sequence number persistence --------------------------------------- */

static uint64_t load_seq_blob(const struct shim_eventlog *el)
{
	uint8_t buf[12];
	size_t len = 0;

	if (el->port == NULL || el->port->store.load == NULL) {
		return 0;
	}
	if (el->port->store.load(el->port->store.ctx, SEQ_BLOB, buf,
				 sizeof(buf), &len) != 0 ||
	    len != 12 || shim_crc32(0, buf, 8) != shim_get_u32(buf + 8)) {
		return 0;
	}
	return shim_get_u64(buf);
}

static int save_seq_blob(const struct shim_eventlog *el, uint64_t next)
{
	uint8_t buf[12];

	if (el->port == NULL || el->port->store.save == NULL) {
		return 0;
	}
	shim_put_u64(buf, next);
	shim_put_u32(buf + 8, shim_crc32(0, buf, 8));
	return el->port->store.save(el->port->store.ctx, SEQ_BLOB, buf,
				    sizeof(buf));
}

/* Highest "seq":N in the last AUDIT_TAIL_SCAN bytes of path, or 0. */
static uint64_t audit_tail_seq(const char *path)
{
	static const char key[] = "\"seq\":";
	char *buf;
	struct stat st;
	uint64_t best = 0;
	off_t off;
	ssize_t n;
	int fd;
	char *p;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		close(fd);
		return 0;
	}
	off = st.st_size > AUDIT_TAIL_SCAN ? st.st_size - AUDIT_TAIL_SCAN : 0;
	buf = malloc(AUDIT_TAIL_SCAN + 1);
	if (buf == NULL) {
		close(fd);
		return 0;
	}
	n = pread(fd, buf, AUDIT_TAIL_SCAN, off);
	close(fd);
	if (n <= 0) {
		free(buf);
		return 0;
	}
	buf[n] = '\0';
	for (p = buf; (p = memmem(p, (size_t)(buf + n - p), key,
				  sizeof(key) - 1)) != NULL;) {
		uint64_t v = 0;

		p += sizeof(key) - 1;
		while (*p >= '0' && *p <= '9' && v < UINT64_MAX / 10) {
			v = v * 10 + (uint64_t)(*p - '0');
			p++;
		}
		if (v > best) {
			best = v;
		}
	}
	free(buf);
	return best;
}

/* ---- audit log --------------------------------------------------------- */

static int audit_open(struct shim_eventlog *el)
{
	struct stat st;

	el->audit_fd = open(el->audit_path,
			    O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
			    0640);
	if (el->audit_fd < 0) {
		return shim_err_from_errno(errno);
	}
	if (fstat(el->audit_fd, &st) == 0) {
		el->audit_size = (uint64_t)st.st_size;
	}
	return 0;
}

static void fsync_parent(const char *path)
{
	char *dir = strdup(path);
	char *slash;
	int fd;

	if (dir == NULL) {
		return;
	}
	slash = strrchr(dir, '/');
	if (slash == dir) {
		slash[1] = '\0';
	} else if (slash != NULL) {
		*slash = '\0';
	} else {
		strcpy(dir, ".");
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* audit.jsonl -> .1 -> .2 ... ; the oldest falls off. */
static int audit_rotate(struct shim_eventlog *el)
{
	size_t n = strlen(el->audit_path) + 8;
	char *from = malloc(n), *to = malloc(n);
	int i, rc = 0;

	if (from == NULL || to == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	fdatasync(el->audit_fd);
	close(el->audit_fd);
	el->audit_fd = -1;
	for (i = AUDIT_KEEP - 1; i >= 1; i--) {
		snprintf(from, n, "%s.%d", el->audit_path, i);
		snprintf(to, n, "%s.%d", el->audit_path, i + 1);
		rename(from, to);
	}
	snprintf(to, n, "%s.1", el->audit_path);
	if (rename(el->audit_path, to) != 0) {
		rc = shim_err_from_errno(errno);
	}
	el->audit_size = 0;
	if (audit_open(el) != 0 && rc == 0) {
		rc = SHIM_EIO;
	}
	fsync_parent(el->audit_path);
out:
	free(from);
	free(to);
	return rc;
}

static int audit_write(struct shim_eventlog *el, const char *line, size_t len)
{
	const char *p = line;
	size_t left = len;
	int rc;

	if (el->audit_fd < 0) {
		rc = audit_open(el);
		if (rc != 0) {
			return rc;
		}
	}
	if (el->audit_max > 0 && el->audit_size > 0 &&
	    el->audit_size + len > el->audit_max) {
		rc = audit_rotate(el);
		if (rc != 0 && el->audit_fd < 0) {
			return rc;
		}
	}
	while (left > 0) {
		ssize_t n = write(el->audit_fd, p, left);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return shim_err_from_errno(errno);
		}
		p += n;
		left -= (size_t)n;
	}
	el->audit_size += len;
	el->audit_dirty = 1;
	return 0;
}

/* ---- operator log ------------------------------------------------------- */

static void log_default(void *ctx, int level, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "shim: %s: %s\n", level <= SHIM_SEV_WARNING ?
		"warning" : "info", msg);
}

void shim_eventlog_set_logger(struct shim_eventlog *el,
			      shim_eventlog_log_fn fn, void *ctx)
{
	pthread_mutex_lock(&el->mu);
	el->log_fn = fn;
	el->log_ctx = ctx;
	pthread_mutex_unlock(&el->mu);
}

/* Logs a transport message (lock not held). */
static void oplog(struct shim_eventlog *el, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void oplog(struct shim_eventlog *el, int level, const char *fmt, ...)
{
	shim_eventlog_log_fn fn;
	void *ctx;
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&el->mu);
	fn = el->log_fn;
	ctx = el->log_ctx;
	pthread_mutex_unlock(&el->mu);
	if (fn != NULL) {
		fn(ctx, level, msg);
	}
}

/* ---- emitting ---------------------------------------------------------- */

/* The core marks tamper, emergency_stop and break-glass events; a
 * recording that failed is an alert too: the session goes on without
 * (part of) its audit trail. */
static int is_priority(const struct shim_event *ev)
{
	return ev->priority ||
	       strncmp(ev->name, "recording_failed", SHIM_EVENT_NAME_MAX) == 0;
}

static enum shim_spool_lane lane_of(const struct shim_event *ev)
{
	if (is_priority(ev)) {
		return SHIM_LANE_PRIORITY;
	}
	if (strncmp(ev->name, "heartbeat", SHIM_EVENT_NAME_MAX) == 0) {
		return SHIM_LANE_HEARTBEAT;
	}
	return SHIM_LANE_NORMAL;
}

static int wait_durable(struct shim_eventlog *el, uint64_t gen, int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (el->durable_gen < gen && el->flusher_started) {
		if (pthread_cond_timedwait(&el->cv_durable, &el->mu, &ts) ==
		    ETIMEDOUT) {
			return SHIM_ETIMEDOUT;
		}
	}
	return el->flush_error;
}

int shim_eventlog_emit(struct shim_eventlog *el, struct shim_event *ev)
{
	size_t len;
	uint64_t gen;
	int rc = 0, rc2;

	if (el == NULL || ev == NULL) {
		return SHIM_EINVAL;
	}
	pthread_mutex_lock(&el->mu);
	memcpy(ev->shim_id, el->shim_id, sizeof(ev->shim_id));
	ev->seq = el->next_seq++;
	el->emitted++;
	if (ev->sign) {
		/* Without an identity key the event goes out unsigned; a
		 * verifier then reports it as such. The canonical text is
		 * built in fmtbuf, which is formatted into only after. */
		rc = shim_event_sign(ev, &el->port->crypto, el->fmtbuf,
				     sizeof(el->fmtbuf));
		if (rc == SHIM_ENOTSUP) {
			rc = 0;
		}
	}
	rc2 = shim_syslog_json(ev, el->fmtbuf, sizeof(el->fmtbuf), &len);
	if (rc2 == 0) {
		rc2 = audit_write(el, el->fmtbuf, len);
	}
	if (rc2 != 0) {
		snprintf(el->audit_err, sizeof(el->audit_err), "audit log %s: %s",
			 el->audit_path, shim_strerror(rc2));
		if (rc == 0) {
			rc = rc2;
		}
	}
	if (el->spool != NULL) {
		if (el->format == SHIM_SIEM_CEF) {
			rc2 = shim_syslog_cef(ev, &el->opts, el->fmtbuf,
					      sizeof(el->fmtbuf), &len);
		} else {
			rc2 = shim_syslog_rfc5424(ev, &el->opts, el->fmtbuf,
						  sizeof(el->fmtbuf), &len);
		}
		if (rc2 == 0) {
			rc2 = shim_spool_append(el->spool, lane_of(ev), ev->seq,
						(const uint8_t *)el->fmtbuf,
						len);
		}
		/* A heartbeat dropped from a full spool is counted, not an
		 * error: the audit log has it. */
		if (rc2 == SHIM_ENOSPC && lane_of(ev) == SHIM_LANE_HEARTBEAT) {
			rc2 = 0;
		}
		if (rc2 != 0 && rc == 0) {
			rc = rc2;
		}
	}
	gen = ++el->write_gen;
	pthread_cond_signal(&el->cv_flush);
	if (is_priority(ev)) {
		/* Alerts are on disk before the caller goes on. */
		rc2 = wait_durable(el, gen, PRIORITY_WAIT_MS);
		if (rc2 != 0 && rc == 0) {
			rc = rc2;
		}
	}
	pthread_mutex_unlock(&el->mu);
	return rc;
}

int shim_eventlog_flush(struct shim_eventlog *el, int timeout_ms)
{
	int rc;

	if (el == NULL) {
		return SHIM_EINVAL;
	}
	pthread_mutex_lock(&el->mu);
	pthread_cond_signal(&el->cv_flush);
	rc = wait_durable(el, el->write_gen, timeout_ms);
	pthread_mutex_unlock(&el->mu);
	return rc;
}

static int sink_emit(void *ctx, const struct shim_event *ev)
{
	struct shim_event copy = *ev;

	return shim_eventlog_emit(ctx, &copy);
}

void shim_eventlog_sink(struct shim_eventlog *el,
			struct shim_event_sink_ops *ops)
{
	ops->emit = sink_emit;
	ops->ctx = el;
}

/* Wakes the sender, whether it waits on cv_send or polls its socket.
 * Lock held. */
static void sender_kick(struct shim_eventlog *el)
{
	uint64_t one = 1;
	ssize_t n;

	pthread_cond_broadcast(&el->cv_send);
	if (el->sender_polling && el->wake_efd >= 0) {
		n = write(el->wake_efd, &one, sizeof(one));
		(void)n;
	}
}

/* Connected and idle: sleeps until a commit, close, or the peer closing
 * the connection (so a dropped link shows at once, without a timer).
 * Without the lock. */
static void sender_idle(struct shim_eventlog *el, struct shim_siem_conn *conn,
			uint64_t seen_commits)
{
	struct pollfd pfd[2];
	uint64_t v;
	ssize_t n;
	int rc;

	pthread_mutex_lock(&el->mu);
	if (el->closing || el->commits != seen_commits) {
		pthread_mutex_unlock(&el->mu);
		return;
	}
	el->sender_polling = 1;
	pthread_mutex_unlock(&el->mu);
	pfd[0].fd = shim_siem_fd(conn);
	pfd[0].events = POLLIN | POLLRDHUP;
	pfd[0].revents = 0;
	pfd[1].fd = el->wake_efd;
	pfd[1].events = POLLIN;
	pfd[1].revents = 0;
	do {
		rc = poll(pfd, 2, -1);
	} while (rc < 0 && errno == EINTR);
	pthread_mutex_lock(&el->mu);
	el->sender_polling = 0;
	pthread_mutex_unlock(&el->mu);
	if (pfd[1].revents & POLLIN) {
		n = read(el->wake_efd, &v, sizeof(v));
		(void)n;
	}
	/* The caller's next shim_siem_check() sees a closed peer. */
}

/* ---- flusher: group commit --------------------------------------------- */

static void *flusher_main(void *arg)
{
	struct shim_eventlog *el = arg;
	struct shim_spool_sync_ticket t;
	struct timespec ts;
	uint64_t target, seq;
	int audit_fd, ok, i, store_err = 0;

	pthread_setname_np(pthread_self(), "shim-eventlog");
	pthread_mutex_lock(&el->mu);
	for (;;) {
		/* Asleep until there is something to commit; the only timers
		 * are those of work held back by the once-a-second limits (a
		 * sequence backup, a cursor checkpoint after deliveries). */
		while (el->durable_gen == el->write_gen &&
		       (!el->closing || el->sender_started)) {
			int64_t due = -1, now = now_mono(el);

			if (el->spool != NULL &&
			    shim_spool_checkpoint_pending(el->spool)) {
				due = el->last_checkpoint_ns + CHECKPOINT_NS;
			}
			if (el->next_seq != el->seq_saved &&
			    (due < 0 ||
			     el->last_seq_save_ns + CHECKPOINT_NS < due)) {
				due = el->last_seq_save_ns + CHECKPOINT_NS;
			}
			if (due < 0) {
				pthread_cond_wait(&el->cv_flush, &el->mu);
				continue;
			}
			if (now > due) {
				break;
			}
			due = due - now + 1000000LL;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += (time_t)(due / 1000000000LL);
			ts.tv_nsec += (long)(due % 1000000000LL);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&el->cv_flush, &el->mu, &ts);
		}
		if (el->closing && el->durable_gen == el->write_gen &&
		    el->sender_started == 0) {
			break;
		}
		target = el->write_gen;
		seq = el->next_seq;
		audit_fd = -1;
		if (el->audit_dirty && el->audit_fd >= 0) {
			audit_fd = fcntl(el->audit_fd, F_DUPFD_CLOEXEC, 0);
			el->audit_dirty = 0;
		}
		if (el->spool != NULL) {
			shim_spool_sync_begin(el->spool, &t);
		} else {
			memset(&t, 0, sizeof(t));
			t.dir_fd = -1;
			for (i = 0; i < SHIM_SPOOL_LANES; i++) {
				t.fd[i] = -1;
				t.old_fd[i] = -1;
			}
		}
		pthread_mutex_unlock(&el->mu);

		ok = shim_spool_sync_run(&t);
		if (audit_fd >= 0) {
			if (fdatasync(audit_fd) != 0) {
				ok = 0;
			}
			close(audit_fd);
		}
		/* The audit line synced above is the durable record of the
		 * number (see the top of this file); the blob is its backup,
		 * refreshed at most once a second to keep commits short. */
		if (seq != el->seq_saved &&
		    (now_mono(el) - el->last_seq_save_ns >= CHECKPOINT_NS ||
		     el->closing)) {
			int src = save_seq_blob(el, seq);

			el->last_seq_save_ns = now_mono(el);

			/* A port without storage: the spool and audit log
			 * alone carry the sequence. A failing store only
			 * loses the backup: retried, and shown in status. */
			if (src == 0 || src == SHIM_ENOTSUP) {
				el->seq_saved = seq;
				store_err = 0;
			} else {
				store_err = src;
			}
		}

		pthread_mutex_lock(&el->mu);
		if (el->spool != NULL) {
			shim_spool_sync_done(el->spool, &t, ok);
			if (now_mono(el) - el->last_checkpoint_ns >
			    CHECKPOINT_NS) {
				struct shim_spool_ckpt c;

				el->last_checkpoint_ns = now_mono(el);
				if (shim_spool_checkpoint_begin(el->spool,
								&c)) {
					/* Emitters go on meanwhile. */
					pthread_mutex_unlock(&el->mu);
					shim_spool_checkpoint_write(&c);
					pthread_mutex_lock(&el->mu);
					shim_spool_checkpoint_done(el->spool,
								   &c);
				}
			}
		}
		el->flush_error = ok ? 0 : SHIM_EIO;
		if (store_err != 0) {
			snprintf(el->store_err, sizeof(el->store_err),
				 "sequence backup (store \"%s\"): %s", SEQ_BLOB,
				 shim_strerror(store_err));
		} else {
			el->store_err[0] = '\0';
		}
		if (target > el->durable_gen) {
			el->durable_gen = target;
		}
		el->commits++;
		pthread_cond_broadcast(&el->cv_durable);
		sender_kick(el);
		if (el->closing && el->sender_started == 0 &&
		    el->durable_gen == el->write_gen) {
			break;
		}
	}
	pthread_mutex_unlock(&el->mu);
	return NULL;
}

/* ---- sender ------------------------------------------------------------ */

/* Records the reason in status; logs it when it changes. */
static void set_link_error(struct shim_eventlog *el, const char *msg)
{
	int changed;

	pthread_mutex_lock(&el->mu);
	changed = strncmp(el->link_error, msg, sizeof(el->link_error) - 1) != 0;
	snprintf(el->link_error, sizeof(el->link_error), "%s", msg);
	pthread_mutex_unlock(&el->mu);
	if (changed) {
		oplog(el, SHIM_SEV_WARNING, "SIEM %s port %u not reachable, "
		      "events kept in the spool: %s", el->target.host,
		      (unsigned)el->target.port, msg);
	}
}

/* Sleeps on cv_send until deadline (monotonic ns) or closing. Lock held. */
static void sender_wait(struct shim_eventlog *el, int64_t ns)
{
	struct timespec ts;

	if (ns <= 0) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec += (long)(ns % 1000000000LL);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&el->cv_send, &el->mu, &ts);
}

/* 1 when the sender should stop: closing and nothing more can be done. */
static int sender_done(struct shim_eventlog *el, size_t inflight)
{
	struct shim_spool_status st;

	if (!el->closing) {
		return 0;
	}
	if (now_mono(el) >= el->close_deadline_ns) {
		return 1;
	}
	shim_spool_status(el->spool, &st);
	return st.records == 0 && inflight == 0;
}

static void emit_link_event(struct shim_eventlog *el, const char *name,
			    enum shim_severity sev, int64_t outage_ns,
			    const char *error)
{
	struct shim_event ev;
	char since[32];
	struct shim_eventlog_status st;

	if (shim_event_init(&ev, name, sev, now_wall(el)) != 0) {
		return;
	}
	shim_syslog_time(now_wall(el) - outage_ns, since, sizeof(since));
	shim_event_add(&ev, "down_since", since);
	shim_event_add_i64(&ev, "outage_seconds", outage_ns / 1000000000LL);
	shim_eventlog_status(el, &st);
	shim_event_add_u64(&ev, "spool_depth", st.spool_depth);
	shim_event_add_u64(&ev, "dropped_heartbeats", st.dropped_heartbeats);
	if (error != NULL && error[0] != '\0') {
		shim_event_add(&ev, "error", error);
	}
	shim_eventlog_emit(el, &ev);
}

/* Raises the outage alarm once the link has been down long enough. */
static void check_outage(struct shim_eventlog *el)
{
	int64_t since, now = now_mono(el);
	char err[160];
	int raise = 0;

	pthread_mutex_lock(&el->mu);
	since = el->outage_since_ns;
	if (since != 0 && !el->outage_alarm && el->outage_alarm_s > 0 &&
	    (double)(now - since) / 1e9 >= el->outage_alarm_s) {
		el->outage_alarm = 1;
		raise = 1;
		snprintf(err, sizeof(err), "%s", el->link_error);
	}
	pthread_mutex_unlock(&el->mu);
	if (raise) {
		oplog(el, SHIM_SEV_WARNING,
		      "SIEM unreachable for %.0f s (alarm after %.0f s): %s",
		      (double)(now - since) / 1e9, el->outage_alarm_s, err);
		/* The audit log has it at once (the local alarm); the SIEM
		 * gets it from the spool when the link is back. */
		emit_link_event(el, "siem_outage", SHIM_SEV_WARNING,
				now - since, err);
	}
}

static void *sender_main(void *arg)
{
	struct shim_eventlog *el = arg;
	struct shim_siem_conn *conn = NULL;
	struct inflight *fl;
	size_t fl_head = 0, fl_count = 0;
	uint8_t *batch, *rbuf;
	int64_t next_attempt = 0, confirm_ns = CONFIRM_MIN_NS;
	uint64_t seen_commits = 0;
	unsigned fails = 0;
	char err[160];

	pthread_setname_np(pthread_self(), "shim-siem");
	fl = calloc(INFLIGHT_MAX, sizeof(*fl));
	batch = malloc(SEND_BATCH + SHIM_SPOOL_REC_MAX + 16);
	rbuf = malloc(SHIM_SPOOL_REC_MAX);
	if (fl == NULL || batch == NULL || rbuf == NULL) {
		set_link_error(el, "sender: out of memory");
		goto out;
	}
	for (;;) {
		int64_t now;

		pthread_mutex_lock(&el->mu);
		if (sender_done(el, fl_count)) {
			pthread_mutex_unlock(&el->mu);
			break;
		}
		pthread_mutex_unlock(&el->mu);
		check_outage(el);

		if (conn == NULL) {
			int64_t outage = 0;
			struct shim_siem_target tgt = el->target;
			char v[32], c[64], pr[160];
			int64_t deadline;
			uint32_t backoff;
			uint8_t r[2];
			unsigned k;
			int was_alarm, closing, rc;

			now = now_mono(el);
			pthread_mutex_lock(&el->mu);
			closing = el->closing;
			deadline = el->close_deadline_ns;
			pthread_mutex_unlock(&el->mu);
			if (closing && next_attempt >= deadline) {
				/* No attempt fits before the close deadline:
				 * the spool keeps the rest for next time. */
				break;
			}
			if (now < next_attempt) {
				pthread_mutex_lock(&el->mu);
				sender_wait(el, next_attempt - now);
				pthread_mutex_unlock(&el->mu);
				continue;
			}
			if (closing) {
				/* Do not outstay the close deadline. */
				int64_t left = (deadline - now) / 1000000LL;

				if (left < 100) {
					left = 100;
				}
				if (left < tgt.connect_timeout_ms) {
					tgt.connect_timeout_ms = (int)left;
				}
				if (left < tgt.io_timeout_ms) {
					tgt.io_timeout_ms = (int)left;
				}
			}
			pthread_mutex_lock(&el->mu);
			el->connect_attempts++;
			pthread_mutex_unlock(&el->mu);
			rc = shim_siem_connect(&conn, &tgt, err, sizeof(err));
			if (rc != 0) {
				fails++;
				backoff = BACKOFF_MIN_MS;
				for (k = 1; k < fails && backoff < BACKOFF_MAX_MS;
				     k++) {
					backoff *= 2;
				}
				if (backoff > BACKOFF_MAX_MS) {
					backoff = BACKOFF_MAX_MS;
				}
				/* Full jitter in the upper half: spreads a
				 * fleet's reconnects after a SIEM outage. */
				r[0] = r[1] = 0;
				if (el->port != NULL && el->port->rng.fill != NULL) {
					el->port->rng.fill(el->port->rng.ctx, r, 2);
				}
				next_attempt = now_mono(el) +
					(int64_t)(backoff / 2 +
						  (uint32_t)((backoff / 2) *
						  (uint32_t)(r[0] << 8 | r[1]) / 65535u)) *
						1000000LL;
				set_link_error(el, err);
				continue;
			}
			fails = 0;
			confirm_ns = 2 * shim_siem_handshake_ns(conn);
			if (confirm_ns < CONFIRM_MIN_NS) {
				confirm_ns = CONFIRM_MIN_NS;
			}
			pthread_mutex_lock(&el->mu);
			el->link_up = 1;
			el->connects++;
			el->link_error[0] = '\0';
			shim_siem_info(conn, el->tls_version,
				       sizeof(el->tls_version), el->tls_cipher,
				       sizeof(el->tls_cipher), el->peer_subject,
				       sizeof(el->peer_subject));
			was_alarm = el->outage_alarm;
			if (el->outage_since_ns != 0) {
				outage = now_mono(el) - el->outage_since_ns;
			}
			el->outage_since_ns = 0;
			el->outage_alarm = 0;
			pthread_mutex_unlock(&el->mu);
			shim_siem_info(conn, v, sizeof(v), c, sizeof(c), pr,
				       sizeof(pr));
			oplog(el, SHIM_SEV_INFO,
			      "SIEM %s port %u connected (%s %s, server %s)",
			      el->target.host, (unsigned)el->target.port, v, c,
			      pr);
			if (was_alarm) {
				emit_link_event(el, "siem_restored",
						SHIM_SEV_NOTICE, outage, NULL);
			}
			continue;
		}

		/* Connected: fill a batch with durable records. */
		{
			size_t blen = 0;
			size_t first = fl_count;
			int rc = 0;

			pthread_mutex_lock(&el->mu);
			/* records committed after this point wake the wait
			 * below (cv_send after each commit) */
			seen_commits = el->commits;
			while (blen < SEND_BATCH && fl_count < INFLIGHT_MAX) {
				struct shim_spool_rec rec;
				int hl;

				rc = shim_spool_next(el->spool, rbuf,
						     SHIM_SPOOL_REC_MAX, &rec);
				if (rc == SHIM_ECORRUPT) {
					continue;
				}
				if (rc <= 0) {
					break;
				}
				hl = shim_syslog_frame_header(
					rec.len, (char *)batch + blen, 16);
				if (hl < 0) {
					break;
				}
				blen += (size_t)hl;
				memcpy(batch + blen, rec.data, rec.len);
				blen += rec.len;
				{
					struct inflight *f =
						&fl[(fl_head + fl_count) %
						    INFLIGHT_MAX];

					f->lane = rec.lane;
					f->next = rec.next;
					f->seq = rec.seq;
					f->wire_end = 0;
					f->written_ns = 0;
				}
				fl_count++;
			}
			pthread_mutex_unlock(&el->mu);
			/* A spool read error is not a link error: send what
			 * was read, retry the rest later. */
			rc = 0;

			if (blen > 0) {
				rc = shim_siem_write(conn, batch, blen, err,
						     sizeof(err));
				if (rc == 0) {
					size_t k;
					uint64_t w = shim_siem_wire_sent(conn);

					now = now_mono(el);
					for (k = first; k < fl_count; k++) {
						struct inflight *f =
							&fl[(fl_head + k) %
							    INFLIGHT_MAX];

						f->wire_end = w;
						f->written_ns = now;
					}
				}
			}
			if (rc == 0) {
				/* Wait a little when idle; look for EOF. */
				rc = shim_siem_check(conn,
						     blen > 0 ? 0 :
						     (fl_count > 0 ? 20 : 0),
						     err, sizeof(err));
			}
			if (rc != 0) {
				/* Not delivered: everything unconfirmed goes
				 * out again on the next connection. */
				shim_siem_close(conn);
				conn = NULL;
				fl_count = 0;
				pthread_mutex_lock(&el->mu);
				shim_spool_rewind(el->spool);
				el->link_up = 0;
				el->outage_since_ns = now_mono(el);
				pthread_mutex_unlock(&el->mu);
				set_link_error(el, err);
				next_attempt = now_mono(el) + BACKOFF_MIN_MS *
					1000000LL;
				continue;
			}

			/* Confirm what the peer has taken and kept. */
			if (fl_count > 0) {
				uint64_t acked = shim_siem_wire_acked(conn);

				now = now_mono(el);
				pthread_mutex_lock(&el->mu);
				while (fl_count > 0) {
					struct inflight *f = &fl[fl_head];

					if (f->written_ns == 0 ||
					    f->wire_end > acked ||
					    now - f->written_ns < confirm_ns) {
						break;
					}
					shim_spool_ack(el->spool, f->lane,
						       f->next);
					el->delivered++;
					el->last_delivered_seq = f->seq;
					fl_head = (fl_head + 1) % INFLIGHT_MAX;
					fl_count--;
				}
				/* the flusher checkpoints the new cursor */
				if (shim_spool_checkpoint_pending(el->spool)) {
					pthread_cond_signal(&el->cv_flush);
				}
				pthread_mutex_unlock(&el->mu);
			}
			if (blen == 0 && fl_count == 0) {
				int closing;

				pthread_mutex_lock(&el->mu);
				closing = el->closing;
				pthread_mutex_unlock(&el->mu);
				if (!closing && el->wake_efd >= 0) {
					/* Idle: asleep until the next commit,
					 * close, or the peer hanging up. */
					sender_idle(el, conn, seen_commits);
				} else {
					pthread_mutex_lock(&el->mu);
					if (el->closing ||
					    el->commits == seen_commits) {
						sender_wait(el, el->closing ?
							10000000LL :
							200000000LL);
					}
					pthread_mutex_unlock(&el->mu);
				}
			}
		}
	}
out:
	if (conn != NULL) {
		shim_siem_close(conn);
	}
	pthread_mutex_lock(&el->mu);
	if (fl_count > 0 && el->spool != NULL) {
		shim_spool_rewind(el->spool);
	}
	el->link_up = 0;
	el->sender_started = 0;
	pthread_cond_signal(&el->cv_flush);
	pthread_mutex_unlock(&el->mu);
	free(fl);
	free(batch);
	free(rbuf);
	return NULL;
}

/* ---- open / status / close --------------------------------------------- */

int shim_eventlog_open(struct shim_eventlog **out,
		       const struct shim_config *cfg,
		       const struct shim_port *port)
{
	struct shim_eventlog *el;
	struct shim_spool_status sst;
	char *spool_dir = NULL, rotated[4096];
	pthread_attr_t ta;
	uint64_t seq;
	int rc;

	*out = NULL;
	if (cfg == NULL || cfg->storage_root == NULL) {
		return SHIM_EINVAL;
	}
	el = calloc(1, sizeof(*el));
	if (el == NULL) {
		return SHIM_ENOMEM;
	}
	el->port = port;
	el->audit_fd = -1;
	el->lock_fd = -1;
	el->log_fn = log_default;
	pthread_mutex_init(&el->mu, NULL);
	pthread_cond_init(&el->cv_flush, NULL);
	pthread_cond_init(&el->cv_durable, NULL);
	pthread_cond_init(&el->cv_send, NULL);
	el->wake_efd = -1;
	snprintf(el->shim_id, sizeof(el->shim_id), "%s",
		 cfg->shim_id != NULL ? cfg->shim_id : "");
	if (gethostname(el->hostname, sizeof(el->hostname) - 1) != 0) {
		el->hostname[0] = '\0';
	}
	el->format = cfg->siem_format;
	el->opts.hostname = el->hostname;
	el->opts.app_name = "shimd";
	el->opts.procid = (uint32_t)getpid();
	el->opts.enterprise_number = cfg->siem_enterprise_number;
	el->opts.facility = -1;
	el->opts.product_version = SHIM_VERSION;
	el->outage_alarm_s = cfg->siem_outage_alarm_seconds;
	el->audit_max = cfg->audit_log_max_bytes;

	/* One process at a time: two writers would hand out the same
	 * sequence numbers and interleave the spool. */
	{
		char *lock = path_join(cfg->storage_root, "eventlog.lock");

		if (lock == NULL) {
			rc = SHIM_ENOMEM;
			goto fail;
		}
		el->lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW |
					       O_CLOEXEC, 0600);
		free(lock);
		if (el->lock_fd < 0) {
			rc = shim_err_from_errno(errno);
			goto fail;
		}
		if (flock(el->lock_fd, LOCK_EX | LOCK_NB) != 0) {
			rc = errno == EWOULDBLOCK ? SHIM_ESTATE :
						    shim_err_from_errno(errno);
			goto fail;
		}
	}
	el->audit_path = cfg->audit_log != NULL ?
				 strdup(cfg->audit_log) :
				 path_join(cfg->storage_root, "audit.jsonl");
	if (el->audit_path == NULL) {
		rc = SHIM_ENOMEM;
		goto fail;
	}
	rc = audit_open(el);
	if (rc != 0) {
		goto fail;
	}

	if (cfg->siem_transport != SHIM_SIEM_NOOP) {
		char err[160];

		el->host = xstrdup(cfg->siem_host);
		el->server_name = xstrdup(cfg->siem_server_name);
		el->ca = xstrdup(cfg->siem_ca);
		el->client_cert = xstrdup(cfg->siem_client_cert);
		el->client_key = xstrdup(cfg->siem_client_key);
		rc = shim_siem_target_from_config(&el->target, cfg, err,
						  sizeof(err));
		el->target.host = el->host;
		el->target.server_name = el->server_name != NULL &&
						 el->server_name[0] != '\0' ?
					 el->server_name : el->host;
		el->target.ca = el->ca;
		el->target.client_cert = el->client_cert;
		el->target.client_key = el->client_key;
		if (rc != 0) {
			/* Events are still spooled; the link stays down with
			 * the reason in status. */
			snprintf(el->link_error, sizeof(el->link_error), "%s",
				 err);
			log_default(NULL, SHIM_SEV_WARNING, err);
		}
		spool_dir = path_join(cfg->storage_root, "spool");
		if (spool_dir == NULL) {
			rc = SHIM_ENOMEM;
			goto fail;
		}
		rc = shim_spool_open(&el->spool, spool_dir,
				     cfg->siem_spool_max_bytes);
		free(spool_dir);
		if (rc != 0) {
			goto fail;
		}
	}

	/* The sequence continues after the newest number anywhere. */
	seq = load_seq_blob(el);
	if (el->spool != NULL) {
		shim_spool_status(el->spool, &sst);
		if (sst.max_seq + 1 > seq) {
			seq = sst.max_seq + 1;
		}
	}
	if (audit_tail_seq(el->audit_path) + 1 > seq) {
		seq = audit_tail_seq(el->audit_path) + 1;
	}
	snprintf(rotated, sizeof(rotated), "%s.1", el->audit_path);
	if (audit_tail_seq(rotated) + 1 > seq) {
		seq = audit_tail_seq(rotated) + 1;
	}
	el->next_seq = seq > 0 ? seq : 1;
	el->seq_saved = load_seq_blob(el);
	el->last_checkpoint_ns = now_mono(el);
	el->outage_since_ns = now_mono(el);

	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, THREAD_STACK);
	if (pthread_create(&el->flusher, &ta, flusher_main, el) != 0) {
		pthread_attr_destroy(&ta);
		rc = SHIM_ENOMEM;
		goto fail;
	}
	el->flusher_started = 1;
	if (el->spool != NULL && el->link_error[0] == '\0') {
		/* without it the sender falls back to waking every 200 ms */
		el->wake_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		el->sender_started = 1;
		if (pthread_create(&el->sender, &ta, sender_main, el) != 0) {
			el->sender_started = 0;
			snprintf(el->link_error, sizeof(el->link_error),
				 "cannot start the sender thread");
		}
	}
	pthread_attr_destroy(&ta);
	*out = el;
	return 0;
fail:
	shim_eventlog_close(el, 0);
	return rc;
}

void shim_eventlog_status(struct shim_eventlog *el,
			  struct shim_eventlog_status *st)
{
	struct shim_spool_status sst;

	memset(st, 0, sizeof(*st));
	if (el == NULL) {
		return;
	}
	pthread_mutex_lock(&el->mu);
	st->next_seq = el->next_seq;
	if (el->spool != NULL) {
		shim_spool_status(el->spool, &sst);
		st->spool_depth = sst.records;
		st->dropped_heartbeats = sst.dropped_heartbeats;
		st->spool_bytes = sst.bytes;
		st->spool_priority = sst.lane_records[SHIM_LANE_PRIORITY];
		st->spool_over_limit = sst.over_limit;
	}
	st->link_up = el->link_up;
	snprintf(st->link_error, sizeof(st->link_error), "%s",
		 el->link_error[0] != '\0' ? el->link_error :
		 el->audit_err[0] != '\0' ? el->audit_err : el->store_err);
	st->transport_enabled = el->spool != NULL;
	st->outage_alarm = el->outage_alarm;
	st->link_down_seconds = el->outage_since_ns != 0 && el->spool != NULL ?
		(uint64_t)((now_mono(el) - el->outage_since_ns) / 1000000000LL) : 0;
	st->delivered = el->delivered;
	st->last_delivered_seq = el->last_delivered_seq;
	st->connects = el->connects;
	st->connect_attempts = el->connect_attempts;
	snprintf(st->tls_version, sizeof(st->tls_version), "%s",
		 el->tls_version);
	snprintf(st->tls_cipher, sizeof(st->tls_cipher), "%s", el->tls_cipher);
	snprintf(st->peer_subject, sizeof(st->peer_subject), "%s",
		 el->peer_subject);
	pthread_mutex_unlock(&el->mu);
}

void shim_eventlog_status_text(const struct shim_eventlog_status *st,
			       char *buf, size_t cap)
{
	size_t n = 0;
	int w;

	if (buf == NULL || cap == 0) {
		return;
	}
	buf[0] = '\0';
#define APPEND(...)                                                        \
	do {                                                               \
		if (n < cap) {                                             \
			w = snprintf(buf + n, cap - n, __VA_ARGS__);       \
			n += w > 0 ? (size_t)w : 0;                        \
		}                                                          \
	} while (0)
	if (!st->transport_enabled) {
		APPEND("siem: transport noop (audit log only)\n");
	} else if (st->link_up) {
		APPEND("siem: link up (%s %s, server %s)\n", st->tls_version,
		       st->tls_cipher, st->peer_subject);
	} else {
		APPEND("siem: link DOWN for %llu s%s: %s\n",
		       (unsigned long long)st->link_down_seconds,
		       st->outage_alarm ? " (OUTAGE ALARM)" : "",
		       st->link_error[0] ? st->link_error : "connecting");
	}
	if (st->transport_enabled) {
		APPEND("siem: spool %llu events, %llu bytes (%llu priority), "
		       "%llu heartbeats dropped%s\n",
		       (unsigned long long)st->spool_depth,
		       (unsigned long long)st->spool_bytes,
		       (unsigned long long)st->spool_priority,
		       (unsigned long long)st->dropped_heartbeats,
		       st->spool_over_limit ? ", OVER LIMIT" : "");
	}
	APPEND("events: next seq %llu, %llu delivered this run\n",
	       (unsigned long long)st->next_seq,
	       (unsigned long long)st->delivered);
#undef APPEND
	if (n >= cap) {
		buf[cap - 1] = '\0';
	}
}

void shim_eventlog_close(struct shim_eventlog *el, int timeout_ms)
{
	int sender, flusher;

	if (el == NULL) {
		return;
	}
	pthread_mutex_lock(&el->mu);
	el->closing = 1;
	el->close_deadline_ns = now_mono(el) +
				(int64_t)(timeout_ms > 0 ? timeout_ms : 0) *
					1000000LL;
	sender = el->sender_started;
	flusher = el->flusher_started;
	sender_kick(el);
	pthread_cond_broadcast(&el->cv_flush);
	pthread_mutex_unlock(&el->mu);
	if (sender) {
		pthread_join(el->sender, NULL);
	}
	if (flusher) {
		pthread_mutex_lock(&el->mu);
		pthread_cond_broadcast(&el->cv_flush);
		pthread_mutex_unlock(&el->mu);
		pthread_join(el->flusher, NULL);
		el->flusher_started = 0;
	}
	if (el->spool != NULL) {
		shim_spool_close(el->spool);
	}
	if (el->audit_fd >= 0) {
		fdatasync(el->audit_fd);
		close(el->audit_fd);
	}
	if (el->seq_saved != el->next_seq) {
		save_seq_blob(el, el->next_seq);
	}
	if (el->lock_fd >= 0) {
		close(el->lock_fd);
	}
	free(el->audit_path);
	free(el->host);
	free(el->server_name);
	free(el->ca);
	free(el->client_cert);
	free(el->client_key);
	if (el->wake_efd >= 0) {
		close(el->wake_efd);
	}
	pthread_cond_destroy(&el->cv_send);
	pthread_cond_destroy(&el->cv_durable);
	pthread_cond_destroy(&el->cv_flush);
	pthread_mutex_destroy(&el->mu);
	free(el);
}
