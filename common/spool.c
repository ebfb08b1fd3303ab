/*
 * The SIEM outbox: durable segment files in three lanes. See spool.h.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "err.h"
#include "port_linux.h"
#include "util.h"

#define CURSOR_LEN SHIM_SPOOL_CURSOR_LEN

#define REC_MAGIC 0x53505231u /* "SPR1" */
static const uint8_t seg_magic[8] = { 'S', 'H', 'I', 'M', 'S', 'P', 'L', '1' };
static const uint8_t cur_magic[8] = { 'S', 'H', 'I', 'M', 'C', 'U', 'R', '1' };

static const char *const lane_names[SHIM_SPOOL_LANES] = { "prio", "norm",
							   "hb" };

struct lane {
	uint64_t first_seg;
	uint64_t last_seg;
	int wfd;                        /* last segment, appends */
	int retired_fd;                 /* previous segment, not yet synced */
	uint64_t retired_seg;
	uint64_t wr_off;                /* end of the last segment */
	struct shim_spool_pos synced;   /* durable up to here */
	struct shim_spool_pos rd;       /* next record to hand out */
	struct shim_spool_pos ack;      /* everything before is delivered */
	int rfd;                        /* read descriptor of rfd_seg */
	uint64_t rfd_seg;
	uint64_t records;               /* waiting: from ack to the end */
	uint64_t bytes;
};

struct shim_spool {
	char *dir;
	uint64_t max_bytes;
	uint64_t seg_max;
	struct lane lanes[SHIM_SPOOL_LANES];
	uint64_t dropped;
	uint64_t corrupt;
	uint64_t max_seq;
	uint64_t over_limit;
	int dir_dirty;                  /* a segment file was created */
	struct shim_spool_pos saved_ack[SHIM_SPOOL_LANES];
	uint64_t saved_dropped;
};

static int pos_cmp(struct shim_spool_pos a, struct shim_spool_pos b)
{
	if (a.seg != b.seg) {
		return a.seg < b.seg ? -1 : 1;
	}
	if (a.off != b.off) {
		return a.off < b.off ? -1 : 1;
	}
	return 0;
}

static char *seg_path(const struct shim_spool *sp, int lane, uint64_t seg)
{
	size_t n = strlen(sp->dir) + 40;
	char *p = malloc(n);

	if (p != NULL) {
		snprintf(p, n, "%s/%s-%016llx.seg", sp->dir, lane_names[lane],
			 (unsigned long long)seg);
	}
	return p;
}

/* truncate(2) follows a link; this cuts only the file itself. */
static int truncate_nofollow(const char *path, off_t len)
{
	int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		return -1;
	}
	rc = ftruncate(fd, len);
	close(fd);
	return rc;
}

/* pread/pwrite until done; 0 or a SHIM_E*. A short read is SHIM_ETRUNC. */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return shim_err_from_errno(errno);
		}
		if (n == 0) {
			return SHIM_ETRUNC;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

void shim_spool_encode_header(uint8_t *hdr, enum shim_spool_lane lane,
			      uint64_t seq, const uint8_t *payload,
			      size_t len)
{
	uint32_t crc;

	shim_put_u32(hdr, REC_MAGIC);
	shim_put_u32(hdr + 4, (uint32_t)len);
	shim_put_u64(hdr + 8, seq);
	hdr[16] = (uint8_t)lane;
	hdr[17] = 0;
	hdr[18] = 0;
	hdr[19] = 0;
	crc = shim_crc32(0, hdr, 20);
	crc = shim_crc32(crc, payload, len);
	shim_put_u32(hdr + 20, crc);
}

/* Checks a record header (and payload when given); 0 when valid. */
static int check_header(const uint8_t *hdr, int expect_lane, size_t *len,
			uint64_t *seq)
{
	uint32_t n;

	if (shim_get_u32(hdr) != REC_MAGIC) {
		return SHIM_ECORRUPT;
	}
	n = shim_get_u32(hdr + 4);
	if (n > SHIM_SPOOL_REC_MAX || hdr[16] >= SHIM_SPOOL_LANES ||
	    hdr[17] != 0 || hdr[18] != 0 || hdr[19] != 0) {
		return SHIM_ECORRUPT;
	}
	if (expect_lane >= 0 && hdr[16] != (uint8_t)expect_lane) {
		return SHIM_ECORRUPT;
	}
	*len = n;
	*seq = shim_get_u64(hdr + 8);
	return 0;
}

static int check_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	uint32_t crc = shim_crc32(0, hdr, 20);

	crc = shim_crc32(crc, payload, len);
	return crc == shim_get_u32(hdr + 20) ? 0 : SHIM_ECORRUPT;
}

long long shim_spool_parse_segment(const uint8_t *buf, size_t len,
				   int expect_lane, shim_spool_rec_cb cb,
				   void *arg, int *corrupt)
{
	size_t off = SHIM_SPOOL_SEG_HDR;
	size_t n;
	uint64_t seq;

	*corrupt = 0;
	if (len < SHIM_SPOOL_SEG_HDR || memcmp(buf, seg_magic, 8) != 0 ||
	    buf[8] >= SHIM_SPOOL_LANES) {
		return SHIM_ECORRUPT;
	}
	if (expect_lane >= 0 && buf[8] != (uint8_t)expect_lane) {
		return SHIM_ECORRUPT;
	}
	while (off < len) {
		if (len - off < SHIM_SPOOL_REC_HDR ||
		    check_header(buf + off, buf[8], &n, &seq) != 0 ||
		    len - off - SHIM_SPOOL_REC_HDR < n ||
		    check_crc(buf + off, buf + off + SHIM_SPOOL_REC_HDR, n) !=
			    0) {
			*corrupt = 1;
			break;
		}
		if (cb != NULL) {
			cb(arg, off, seq, (enum shim_spool_lane)buf[8],
			   buf + off + SHIM_SPOOL_REC_HDR, n);
		}
		off += SHIM_SPOOL_REC_HDR + n;
	}
	return (long long)off;
}

/* ---- opening and recovery -------------------------------------------- */

static int load_cursor(struct shim_spool *sp)
{
	char path[4096];
	uint8_t buf[CURSOR_LEN];
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "%s/cursor", sp->dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return errno == ENOENT ? 0 : shim_err_from_errno(errno);
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != (ssize_t)sizeof(buf) || memcmp(buf, cur_magic, 8) != 0 ||
	    shim_crc32(0, buf, CURSOR_LEN - 4) !=
		    shim_get_u32(buf + CURSOR_LEN - 4)) {
		/* A bad cursor only costs duplicates: start from the
		 * oldest segment. */
		return 0;
	}
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		sp->lanes[i].ack.seg = shim_get_u64(buf + 8 + i * 16);
		sp->lanes[i].ack.off = shim_get_u64(buf + 16 + i * 16);
	}
	sp->dropped = shim_get_u64(buf + 8 + SHIM_SPOOL_LANES * 16);
	return 0;
}

struct scan_ctx {
	struct shim_spool *sp;
	struct lane *ln;
	uint64_t seg;
	uint64_t boundary;     /* largest record start <= ack.off */
	int ack_here;
};

static void scan_cb(void *arg, uint64_t off, uint64_t seq,
		    enum shim_spool_lane lane, const uint8_t *payload,
		    size_t len)
{
	struct scan_ctx *c = arg;
	struct shim_spool_pos p = { c->seg, off };

	(void)lane;
	(void)payload;
	if (seq > c->sp->max_seq) {
		c->sp->max_seq = seq;
	}
	if (c->ack_here && off <= c->ln->ack.off) {
		c->boundary = off;
	}
	if (pos_cmp(p, c->ln->ack) >= 0 ||
	    (c->ack_here && off + SHIM_SPOOL_REC_HDR + len > c->ln->ack.off)) {
		c->ln->records++;
		c->ln->bytes += SHIM_SPOOL_REC_HDR + len;
	}
}

static int create_segment(struct shim_spool *sp, int lane, uint64_t seg,
			  int *fd_out)
{
	uint8_t hdr[SHIM_SPOOL_SEG_HDR];
	char *path = seg_path(sp, lane, seg);
	int fd, rc;

	*fd_out = -1;
	if (path == NULL) {
		return SHIM_ENOMEM;
	}
	/* Rewritten as a new file: a name planted before is replaced,
	 * never written through. */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	free(path);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, seg_magic, 8);
	hdr[8] = (uint8_t)lane;
	rc = shim_write_all(fd, hdr, sizeof(hdr));
	if (rc != 0) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

/* Reads a whole file (bounded) into a malloc'd buffer. */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	int fd, rc;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	if (fstat(fd, &st) != 0 || st.st_size < 0 ||
	    (uint64_t)st.st_size > (1ull << 31)) {
		close(fd);
		return SHIM_EIO;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return SHIM_ENOMEM;
	}
	rc = pread_all(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static int recover_lane(struct shim_spool *sp, int lane)
{
	struct lane *ln = &sp->lanes[lane];
	char prefix[16];
	size_t plen;
	struct dirent *de;
	DIR *d;
	uint64_t lo = UINT64_MAX, hi = 0, seg;
	int found = 0, rc = 0;

	snprintf(prefix, sizeof(prefix), "%s-", lane_names[lane]);
	plen = strlen(prefix);
	d = opendir(sp->dir);
	if (d == NULL) {
		return shim_err_from_errno(errno);
	}
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		char *end;
		unsigned long long v;

		if (strncmp(nm, prefix, plen) != 0 ||
		    strlen(nm) != plen + 16 + 4 ||
		    strcmp(nm + plen + 16, ".seg") != 0) {
			continue;
		}
		errno = 0;
		v = strtoull(nm + plen, &end, 16);
		if (errno != 0 || end != nm + plen + 16) {
			continue;
		}
		found = 1;
		if (v < lo) {
			lo = v;
		}
		if (v > hi) {
			hi = v;
		}
	}
	closedir(d);

	if (!found) {
		lo = hi = ln->ack.seg > 0 ? ln->ack.seg : 1;
		ln->first_seg = ln->last_seg = lo;
		ln->ack.seg = lo;
		ln->ack.off = SHIM_SPOOL_SEG_HDR;
		rc = create_segment(sp, lane, lo, &ln->wfd);
		if (rc != 0) {
			return rc;
		}
		ln->wr_off = SHIM_SPOOL_SEG_HDR;
		goto done;
	}
	ln->first_seg = lo;
	ln->last_seg = hi;
	if (ln->ack.seg < lo || ln->ack.seg > hi) {
		ln->ack.seg = lo;
		ln->ack.off = SHIM_SPOOL_SEG_HDR;
	}
	for (seg = lo; seg <= hi; seg++) {
		struct scan_ctx c = { sp, ln, seg, SHIM_SPOOL_SEG_HDR, 0 };
		char *path = seg_path(sp, lane, seg);
		uint8_t *buf = NULL;
		size_t len = 0;
		long long end;
		int corrupt = 0;

		if (path == NULL) {
			return SHIM_ENOMEM;
		}
		rc = slurp(path, &buf, &len);
		if (rc == SHIM_ENOENT && seg != hi) {
			free(path);
			rc = 0;
			continue;
		}
		if (rc != 0 && rc != SHIM_ENOENT) {
			free(path);
			return rc;
		}
		c.ack_here = (seg == ln->ack.seg);
		end = buf != NULL ? shim_spool_parse_segment(buf, len, lane,
							     scan_cb, &c,
							     &corrupt)
				  : SHIM_ECORRUPT;
		free(buf);
		if (c.ack_here) {
			/* Keep the cursor on a record boundary; going back
			 * costs a duplicate, never a loss. */
			if (ln->ack.off > (uint64_t)(end > 0 ? end : 0)) {
				ln->ack.off = end > 0 ? (uint64_t)end :
						SHIM_SPOOL_SEG_HDR;
			} else if (ln->ack.off != c.boundary &&
				   ln->ack.off != (uint64_t)end) {
				ln->ack.off = c.boundary;
			}
		}
		if (end < 0) {
			/* Header lost: rewrite the segment empty. */
			int fd;

			sp->corrupt++;
			rc = create_segment(sp, lane, seg, &fd);
			free(path);
			if (rc != 0) {
				return rc;
			}
			end = SHIM_SPOOL_SEG_HDR;
			if (seg == hi) {
				ln->wfd = fd;
			} else {
				close(fd);
			}
			if (c.ack_here) {
				ln->ack.off = SHIM_SPOOL_SEG_HDR;
			}
		} else {
			if (corrupt || (uint64_t)end != len) {
				sp->corrupt++;
				if (truncate_nofollow(path, (off_t)end) != 0) {
					free(path);
					return shim_err_from_errno(errno);
				}
			}
			if (seg == hi) {
				ln->wfd = open(path, O_WRONLY | O_APPEND |
						     O_NOFOLLOW | O_CLOEXEC);
				if (ln->wfd < 0) {
					rc = shim_err_from_errno(errno);
					free(path);
					return rc;
				}
			}
			free(path);
		}
		if (seg == hi) {
			ln->wr_off = (uint64_t)end;
		}
	}
done:
	ln->rd = ln->ack;
	ln->synced.seg = ln->last_seg;
	ln->synced.off = ln->wr_off;
	return 0;
}

int shim_spool_open(struct shim_spool **out, const char *dir,
		    uint64_t max_bytes)
{
	struct shim_spool *sp;
	int rc, i;

	*out = NULL;
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL) {
		return SHIM_ENOMEM;
	}
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		sp->lanes[i].wfd = -1;
		sp->lanes[i].rfd = -1;
		sp->lanes[i].retired_fd = -1;
	}
	sp->dir = strdup(dir);
	if (sp->dir == NULL) {
		rc = SHIM_ENOMEM;
		goto fail;
	}
	sp->max_bytes = max_bytes;
	sp->seg_max = max_bytes / 8;
	if (sp->seg_max < 64 * 1024) {
		sp->seg_max = 64 * 1024;
	}
	if (sp->seg_max > 4 * 1024 * 1024 || max_bytes == 0) {
		sp->seg_max = 4 * 1024 * 1024;
	}
	rc = shim_mkdir_p(dir, 0700);
	if (rc != 0) {
		goto fail;
	}
	rc = load_cursor(sp);
	if (rc != 0) {
		goto fail;
	}
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		rc = recover_lane(sp, i);
		if (rc != 0) {
			goto fail;
		}
		sp->saved_ack[i] = sp->lanes[i].ack;
	}
	sp->saved_dropped = sp->dropped;
	/* Segment files may have just been created or cut. */
	shim_fsync_dir(dir);
	*out = sp;
	return 0;
fail:
	shim_spool_close(sp);
	return rc;
}

/* ---- appending ------------------------------------------------------- */

/*
 * Starts a new segment without waiting for the disk: the full one is
 * handed to the next sync (retired), and the directory entry of the new
 * one is synced with it. Only when the previous retired segment has not
 * been synced yet (a sync slower than a whole segment of appends) does
 * this sync it on the spot.
 */
static int rotate(struct shim_spool *sp, int lane)
{
	struct lane *ln = &sp->lanes[lane];
	int fd, rc;

	if (ln->retired_fd >= 0) {
		if (fdatasync(ln->retired_fd) != 0) {
			return SHIM_EIO;
		}
		close(ln->retired_fd);
		ln->retired_fd = -1;
		if (ln->synced.seg < ln->last_seg) {
			ln->synced.seg = ln->last_seg;
			ln->synced.off = SHIM_SPOOL_SEG_HDR;
		}
	}
	rc = create_segment(sp, lane, ln->last_seg + 1, &fd);
	if (rc != 0) {
		return rc;
	}
	ln->retired_fd = ln->wfd;
	ln->retired_seg = ln->last_seg;
	ln->wfd = fd;
	ln->last_seg++;
	ln->wr_off = SHIM_SPOOL_SEG_HDR;
	sp->dir_dirty = 1;
	return 0;
}

static uint64_t total_bytes(const struct shim_spool *sp)
{
	return sp->lanes[0].bytes + sp->lanes[1].bytes + sp->lanes[2].bytes;
}

/* Opens the read descriptor of lane for seg; 0 or SHIM_E*. */
static int lane_rfd(struct shim_spool *sp, int lane, uint64_t seg)
{
	struct lane *ln = &sp->lanes[lane];
	char *path;

	if (ln->rfd >= 0 && ln->rfd_seg == seg) {
		return 0;
	}
	if (ln->rfd >= 0) {
		close(ln->rfd);
		ln->rfd = -1;
	}
	path = seg_path(sp, lane, seg);
	if (path == NULL) {
		return SHIM_ENOMEM;
	}
	ln->rfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (ln->rfd < 0) {
		return shim_err_from_errno(errno);
	}
	ln->rfd_seg = seg;
	return 0;
}

/*
 * Reads the header of the record at *p in lane, moving *p to the next
 * segment at a segment's end. Returns 1 with the header when a record is
 * there, 0 at the end of the lane (limit: stop at lim when not NULL).
 */
static int peek_at(struct shim_spool *sp, int lane, struct shim_spool_pos *p,
		   const struct shim_spool_pos *lim, uint8_t *hdr,
		   size_t *len, uint64_t *seq)
{
	struct lane *ln = &sp->lanes[lane];
	int rc;

	for (;;) {
		if (lim != NULL && pos_cmp(*p, *lim) >= 0) {
			return 0;
		}
		if (p->seg == ln->last_seg && p->off >= ln->wr_off) {
			return 0;
		}
		rc = lane_rfd(sp, lane, p->seg);
		if (rc == 0) {
			rc = pread_all(ln->rfd, hdr, SHIM_SPOOL_REC_HDR,
				       p->off);
		}
		if (rc == 0) {
			rc = check_header(hdr, lane, len, seq);
			if (rc == 0) {
				return 1;
			}
			sp->corrupt++;
		}
		if (rc != SHIM_ETRUNC && rc != SHIM_ENOENT &&
		    rc != SHIM_ECORRUPT) {
			return rc;
		}
		/* End (or unreadable rest) of this segment. */
		if (p->seg >= ln->last_seg) {
			p->off = ln->wr_off;
			return 0;
		}
		p->seg++;
		p->off = SHIM_SPOOL_SEG_HDR;
	}
}

/* Drops the oldest waiting heartbeat; 1 when one was dropped. */
static int drop_oldest_heartbeat(struct shim_spool *sp)
{
	struct lane *ln = &sp->lanes[SHIM_LANE_HEARTBEAT];
	uint8_t hdr[SHIM_SPOOL_REC_HDR];
	size_t len;
	uint64_t seq;

	if (ln->records == 0) {
		return 0;
	}
	if (peek_at(sp, SHIM_LANE_HEARTBEAT, &ln->ack, NULL, hdr, &len,
		    &seq) != 1) {
		return 0;
	}
	ln->ack.off += SHIM_SPOOL_REC_HDR + len;
	if (pos_cmp(ln->rd, ln->ack) < 0) {
		ln->rd = ln->ack;
	}
	ln->records--;
	ln->bytes -= SHIM_SPOOL_REC_HDR + len;
	sp->dropped++;
	return 1;
}

int shim_spool_append(struct shim_spool *sp, enum shim_spool_lane lane,
		      uint64_t seq, const uint8_t *data, size_t len)
{
	uint8_t hdr[SHIM_SPOOL_REC_HDR];
	struct iovec iov[2];
	struct lane *ln;
	uint64_t need = SHIM_SPOOL_REC_HDR + (uint64_t)len;
	ssize_t n;
	int rc;

	if (sp == NULL || (unsigned)lane >= SHIM_SPOOL_LANES ||
	    len > SHIM_SPOOL_REC_MAX || (data == NULL && len > 0)) {
		return SHIM_EINVAL;
	}
	ln = &sp->lanes[lane];
	if (sp->max_bytes != 0) {
		while (total_bytes(sp) + need > sp->max_bytes &&
		       drop_oldest_heartbeat(sp)) {
		}
		if (total_bytes(sp) + need > sp->max_bytes) {
			if (lane == SHIM_LANE_HEARTBEAT) {
				sp->dropped++;
				return SHIM_ENOSPC;
			}
			sp->over_limit++;
		}
	}
	if (ln->wr_off + need > sp->seg_max &&
	    ln->wr_off > SHIM_SPOOL_SEG_HDR) {
		rc = rotate(sp, lane);
		if (rc != 0) {
			return rc;
		}
	}
	shim_spool_encode_header(hdr, lane, seq, data, len);
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(hdr);
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	do {
		n = writev(ln->wfd, iov, 2);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)need) {
		rc = n < 0 ? shim_err_from_errno(errno) : SHIM_ENOSPC;
		/* Leave no partial record behind. */
		if (ftruncate(ln->wfd, (off_t)ln->wr_off) != 0) {
			rc = SHIM_EIO;
		}
		return rc;
	}
	ln->wr_off += need;
	ln->records++;
	ln->bytes += need;
	if (seq > sp->max_seq) {
		sp->max_seq = seq;
	}
	return 0;
}

/* ---- durability ------------------------------------------------------- */

void shim_spool_sync_begin(struct shim_spool *sp,
			   struct shim_spool_sync_ticket *t)
{
	int i;

	t->dir_fd = -1;
	if (sp->dir_dirty) {
		t->dir_fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		sp->dir_dirty = 0;
	}
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		struct lane *ln = &sp->lanes[i];

		t->fd[i] = -1;
		t->old_fd[i] = -1;
		t->old_seg[i] = ln->retired_seg;
		t->upto[i].seg = ln->last_seg;
		t->upto[i].off = ln->wr_off;
		/* Copies: the lane may rotate (and close a descriptor)
		 * while the caller syncs. */
		if (ln->retired_fd >= 0) {
			t->old_fd[i] = fcntl(ln->retired_fd, F_DUPFD_CLOEXEC, 0);
		}
		if (pos_cmp(ln->synced, t->upto[i]) < 0 && ln->wfd >= 0) {
			t->fd[i] = fcntl(ln->wfd, F_DUPFD_CLOEXEC, 0);
		}
	}
}

int shim_spool_sync_run(struct shim_spool_sync_ticket *t)
{
	int i, ok = 1;

	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		if (t->old_fd[i] >= 0) {
			if (fdatasync(t->old_fd[i]) != 0) {
				ok = 0;
			}
			close(t->old_fd[i]);
		}
		if (t->fd[i] >= 0) {
			if (fdatasync(t->fd[i]) != 0) {
				ok = 0;
			}
			close(t->fd[i]);
		}
	}
	if (t->dir_fd >= 0) {
		if (fsync(t->dir_fd) != 0) {
			ok = 0;
		}
		close(t->dir_fd);
	}
	return ok;
}

void shim_spool_sync_done(struct shim_spool *sp,
			  const struct shim_spool_sync_ticket *t, int ok)
{
	int i;

	if (!ok) {
		if (t->dir_fd >= 0) {
			sp->dir_dirty = 1;
		}
		return;
	}
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		struct lane *ln = &sp->lanes[i];

		if (t->old_fd[i] >= 0 && ln->retired_fd >= 0 &&
		    ln->retired_seg == t->old_seg[i]) {
			close(ln->retired_fd);
			ln->retired_fd = -1;
		}
		if (t->fd[i] < 0 && t->old_fd[i] < 0) {
			continue;
		}
		/* Never past a segment that is still waiting for its sync. */
		if (ln->retired_fd >= 0 && ln->retired_seg < t->upto[i].seg) {
			continue;
		}
		if (pos_cmp(ln->synced, t->upto[i]) < 0) {
			ln->synced = t->upto[i];
		}
	}
}

int shim_spool_sync(struct shim_spool *sp)
{
	struct shim_spool_sync_ticket t;
	int ok;

	shim_spool_sync_begin(sp, &t);
	ok = shim_spool_sync_run(&t);
	shim_spool_sync_done(sp, &t, ok);
	return ok ? 0 : SHIM_EIO;
}

int shim_spool_is_synced(struct shim_spool *sp)
{
	int i;

	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		struct shim_spool_pos end = { sp->lanes[i].last_seg,
					      sp->lanes[i].wr_off };

		if (pos_cmp(sp->lanes[i].synced, end) < 0) {
			return 0;
		}
	}
	return 1;
}

/* ---- reading ---------------------------------------------------------- */

int shim_spool_next(struct shim_spool *sp, uint8_t *buf, size_t cap,
		    struct shim_spool_rec *rec)
{
	uint8_t hdr[SHIM_SPOOL_LANES][SHIM_SPOOL_REC_HDR];
	size_t len[SHIM_SPOOL_LANES];
	uint64_t seq[SHIM_SPOOL_LANES];
	int have[SHIM_SPOOL_LANES];
	int i, pick = -1, rc;
	struct lane *ln;

	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		ln = &sp->lanes[i];
		rc = peek_at(sp, i, &ln->rd, &ln->synced, hdr[i], &len[i],
			     &seq[i]);
		if (rc < 0) {
			return rc;
		}
		have[i] = rc;
	}
	if (have[SHIM_LANE_PRIORITY]) {
		pick = SHIM_LANE_PRIORITY;
	} else if (have[SHIM_LANE_NORMAL] && have[SHIM_LANE_HEARTBEAT]) {
		pick = seq[SHIM_LANE_NORMAL] <= seq[SHIM_LANE_HEARTBEAT] ?
			       SHIM_LANE_NORMAL :
			       SHIM_LANE_HEARTBEAT;
	} else if (have[SHIM_LANE_NORMAL]) {
		pick = SHIM_LANE_NORMAL;
	} else if (have[SHIM_LANE_HEARTBEAT]) {
		pick = SHIM_LANE_HEARTBEAT;
	} else {
		return 0;
	}
	ln = &sp->lanes[pick];
	if (len[pick] > cap) {
		return SHIM_ENOSPC;
	}
	rc = pread_all(ln->rfd_seg == ln->rd.seg ? ln->rfd : -1, buf,
		       len[pick], ln->rd.off + SHIM_SPOOL_REC_HDR);
	if (rc == 0) {
		rc = check_crc(hdr[pick], buf, len[pick]);
	}
	if (rc != 0) {
		/* Unreadable record: skip the rest of the segment (or of
		 * the durable part of the last one). */
		sp->corrupt++;
		if (ln->rd.seg < ln->last_seg) {
			ln->rd.seg++;
			ln->rd.off = SHIM_SPOOL_SEG_HDR;
		} else {
			ln->rd.off = ln->synced.off;
		}
		return SHIM_ECORRUPT;
	}
	rec->lane = (enum shim_spool_lane)pick;
	rec->seq = seq[pick];
	rec->len = len[pick];
	rec->data = buf;
	ln->rd.off += SHIM_SPOOL_REC_HDR + len[pick];
	rec->next = ln->rd;
	return 1;
}

void shim_spool_ack(struct shim_spool *sp, enum shim_spool_lane lane,
		    struct shim_spool_pos pos)
{
	struct lane *ln;
	uint8_t hdr[SHIM_SPOOL_REC_HDR];
	size_t len;
	uint64_t seq;

	if ((unsigned)lane >= SHIM_SPOOL_LANES) {
		return;
	}
	ln = &sp->lanes[lane];
	/* Walk the records up to pos to keep the counters exact. */
	while (pos_cmp(ln->ack, pos) < 0 &&
	       peek_at(sp, lane, &ln->ack, &pos, hdr, &len, &seq) == 1) {
		ln->ack.off += SHIM_SPOOL_REC_HDR + len;
		ln->records--;
		ln->bytes -= SHIM_SPOOL_REC_HDR + len;
	}
	if (pos_cmp(ln->rd, ln->ack) < 0) {
		ln->rd = ln->ack;
	}
}

void shim_spool_rewind(struct shim_spool *sp)
{
	int i;

	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		sp->lanes[i].rd = sp->lanes[i].ack;
	}
}

int shim_spool_checkpoint_pending(const struct shim_spool *sp)
{
	int i;

	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		if (pos_cmp(sp->saved_ack[i], sp->lanes[i].ack) != 0) {
			return 1;
		}
	}
	return sp->saved_dropped != sp->dropped;
}

int shim_spool_checkpoint_begin(struct shim_spool *sp,
				struct shim_spool_ckpt *c)
{
	int i, same = 1;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		c->ack[i] = sp->lanes[i].ack;
		if (pos_cmp(sp->saved_ack[i], sp->lanes[i].ack) != 0) {
			same = 0;
		}
	}
	c->dropped = sp->dropped;
	if (same && sp->saved_dropped == sp->dropped) {
		return 0;
	}
	memcpy(c->buf, cur_magic, 8);
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		shim_put_u64(c->buf + 8 + i * 16, c->ack[i].seg);
		shim_put_u64(c->buf + 16 + i * 16, c->ack[i].off);
	}
	shim_put_u64(c->buf + 8 + SHIM_SPOOL_LANES * 16, c->dropped);
	shim_put_u32(c->buf + CURSOR_LEN - 4,
		     shim_crc32(0, c->buf, CURSOR_LEN - 4));
	c->dir = sp->dir;
	c->needed = 1;
	return 1;
}

int shim_spool_checkpoint_write(struct shim_spool_ckpt *c)
{
	char path[4096], prefix[4096], tmp[4096];
	int fd, rc;

	if (!c->needed) {
		return 0;
	}
	snprintf(path, sizeof(path), "%s/cursor", c->dir);
	snprintf(prefix, sizeof(prefix), "%s/cursor.tmp", c->dir);
	fd = shim_create_temp(prefix, tmp, sizeof(tmp), 0600);
	if (fd < 0) {
		return c->rc = fd;
	}
	rc = shim_write_all(fd, c->buf, CURSOR_LEN);
	if (rc == 0 && fdatasync(fd) != 0) {
		rc = SHIM_EIO;
	}
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = shim_err_from_errno(errno);
	}
	if (rc != 0) {
		unlink(tmp);
	}
	if (rc == 0) {
		rc = shim_fsync_dir(c->dir);
	}
	c->rc = rc;
	return rc;
}

void shim_spool_checkpoint_done(struct shim_spool *sp,
				const struct shim_spool_ckpt *c)
{
	uint64_t seg;
	int i;

	if (!c->needed || c->rc != 0) {
		return;
	}
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		struct lane *ln = &sp->lanes[i];

		sp->saved_ack[i] = c->ack[i];
		/* Delete segments wholly behind the saved cursor. */
		for (seg = ln->first_seg;
		     seg < c->ack[i].seg && seg < ln->last_seg; seg++) {
			char *p = seg_path(sp, i, seg);

			if (p != NULL) {
				unlink(p);
				free(p);
			}
			if (ln->rfd >= 0 && ln->rfd_seg == seg) {
				close(ln->rfd);
				ln->rfd = -1;
			}
		}
		if (seg > ln->first_seg) {
			ln->first_seg = seg;
		}
	}
	sp->saved_dropped = c->dropped;
}

int shim_spool_checkpoint(struct shim_spool *sp)
{
	struct shim_spool_ckpt c;
	int rc;

	if (shim_spool_checkpoint_begin(sp, &c) == 0) {
		return 0;
	}
	rc = shim_spool_checkpoint_write(&c);
	shim_spool_checkpoint_done(sp, &c);
	return rc;
}

void shim_spool_status(struct shim_spool *sp, struct shim_spool_status *st)
{
	int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		st->lane_records[i] = sp->lanes[i].records;
		st->records += sp->lanes[i].records;
		st->bytes += sp->lanes[i].bytes;
	}
	st->dropped_heartbeats = sp->dropped;
	st->corrupt_skipped = sp->corrupt;
	st->max_seq = sp->max_seq;
	st->over_limit = sp->over_limit;
}

void shim_spool_close(struct shim_spool *sp)
{
	int i;

	if (sp == NULL) {
		return;
	}
	if (sp->dir != NULL && sp->lanes[0].wfd >= 0) {
		shim_spool_sync(sp);
		shim_spool_checkpoint(sp);
	}
	for (i = 0; i < SHIM_SPOOL_LANES; i++) {
		if (sp->lanes[i].wfd >= 0) {
			close(sp->lanes[i].wfd);
		}
		if (sp->lanes[i].rfd >= 0) {
			close(sp->lanes[i].rfd);
		}
		if (sp->lanes[i].retired_fd >= 0) {
			close(sp->lanes[i].retired_fd);
		}
	}
	free(sp->dir);
	free(sp);
}
