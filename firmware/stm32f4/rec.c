/*
 * Session recordings on the MCU (see rec.h).
 */
#include "rec.h"

#include <string.h>

#include "ckpt.h"
#include "record.h"
#include "semihost.h"
#include "syslog.h"
#include "util.h"

/* The open session's checkpoint in the store (ckpt.h). */
#define CKPT_NAME "rec-open"
#define PATH_MAX_FW 96
#define FRAME_MAX (SHIM_FW_REC_BATCH + 64 + SHIM_REC_FRAME_OVERHEAD)

struct shim_fw_rec {
	const struct shim_port *port;
	char shim_id[SHIM_REC_ID_MAX + 1];
	uint8_t recipient[SHIM_P256_PUB_LEN];
	uint8_t identity[SHIM_P256_PUB_LEN];
	int custody;

	int open;
	int fd;
	struct shim_rec_header hdr;
	struct shim_rec_writer w;
	int64_t batch_since;      /* mono time of the oldest pending byte */
	int64_t last_mono;        /* time of the latest item */
	uint64_t written;         /* bytes in the file: whole frames */
	uint64_t dropped;
	char part[PATH_MAX_FW];
	char done[PATH_MAX_FW];
};

static struct shim_fw_rec rec;
static uint8_t plain[SHIM_FW_REC_BATCH];
static uint8_t frame[FRAME_MAX > SHIM_REC_HEADER_MAX ? FRAME_MAX
						    : SHIM_REC_HEADER_MAX];

static int put_all(int fd, const uint8_t *buf, size_t len)
{
	return sh_write(fd, buf, len) == (long)len ? 0 : SHIM_EIO;
}

/* "20261202T101500Z-" + 6 hex digits, as common/recorder.c names them. */
static void path_of(char *out, const char *id, const char *ext)
{
	size_t a = strlen("sessions/"), b = strlen(id);

	memcpy(out, "sessions/", a);
	memcpy(out + a, id, b);
	memcpy(out + a + b, ext, strlen(ext) + 1);
}

/*
 * Power-loss recovery without reading the file back (the core's reader
 * needs 128 KB): after every whole frame the recorder saves a checkpoint
 * (ckpt.h) through the store. At the next boot a checkpoint of a session
 * that never ended seals the file as Linux does after a power cut: the
 * bytes past the last checkpoint are cut, and a footer with reason
 * power_loss_recovered and SHIM_REC_F_RECOVERED is signed.
 */
static int checkpoint(struct shim_fw_rec *r)
{
	const struct shim_store_ops *st = &r->port->store;
	struct shim_rec_footer f;
	struct shim_fw_ckpt c;
	uint8_t b[SHIM_FW_CKPT_LEN];
	size_t n;

	memset(&c, 0, sizeof(c));
	memset(&f, 0, sizeof(f));
	shim_rec_writer_summary(&r->w, &f);
	memcpy(c.id, r->hdr.session_id, sizeof(c.id));
	c.written = r->written;
	c.records = f.records;
	c.bytes_in = f.bytes_in;
	c.bytes_out = f.bytes_out;
	memcpy(c.chain, f.chain_head, sizeof(c.chain));
	c.start_wall_ns = r->hdr.start_wall_ns;
	c.start_mono_ns = r->hdr.start_mono_ns;
	c.last_mono_ns = r->last_mono;
	n = shim_fw_ckpt_encode(&c, b);
	return st->save(st->ctx, CKPT_NAME, b, n);
}

static int checkpoint_clear(const struct shim_port *port)
{
	uint8_t b[SHIM_FW_CKPT_LEN];
	size_t n = shim_fw_ckpt_encode(NULL, b);

	return port->store.save(port->store.ctx, CKPT_NAME, b, n);
}

/* Seals the batch into one DATA frame, appends it and checkpoints. */
static int flush(struct shim_fw_rec *r)
{
	size_t len = 0;
	int rc;

	if (shim_rec_writer_pending(&r->w) == 0) {
		return 0;
	}
	rc = shim_rec_writer_seal(&r->w, frame, sizeof(frame), &len);
	if (rc == 0 && len > 0) {
		rc = put_all(r->fd, frame, len);
		if (rc == 0) {
			r->written += len;
			rc = checkpoint(r);
		}
	}
	r->batch_since = 0;
	return rc;
}

static int add(struct shim_fw_rec *r, enum shim_rec_kind kind,
	       const uint8_t *data, size_t len, int64_t wall, int64_t mono)
{
	int rc;

	do {
		size_t room, n;

		/* The writer says what still fits (item headers included);
		 * a full batch is sealed first, and a meta item is never
		 * split: it starts a batch of its own when it does not fit. */
		room = shim_rec_writer_room(&r->w);
		if (room == 0 || (kind == SHIM_REC_META && room < len)) {
			rc = flush(r);
			if (rc != 0) {
				return rc;
			}
			room = shim_rec_writer_room(&r->w);
			if (kind == SHIM_REC_META && room < len) {
				return SHIM_EINVAL;
			}
		}
		n = len < room ? len : room;
		rc = shim_rec_writer_add(&r->w, kind, data, n, wall, mono);
		if (rc != 0) {
			return rc;
		}
		if (r->batch_since == 0) {
			r->batch_since = mono;
		}
		r->last_mono = mono;
		data += n;
		len -= n;
	} while (len > 0);
	return 0;
}

static int op_can_start(void *ctx)
{
	struct shim_fw_rec *r = ctx;

	return r->open ? SHIM_ESTATE : 0;
}

static int op_begin(void *ctx, const char *technician,
		    char session_id[SHIM_SESSION_ID_MAX])
{
	struct shim_fw_rec *r = ctx;
	struct shim_rec_header *h = &r->hdr;
	const struct shim_crypto_ops *c = &r->port->crypto;
	uint8_t key[SHIM_REC_KEY_LEN];
	size_t hlen = 0;
	int rc;

	session_id[0] = '\0';
	if (r->open) {
		return SHIM_ESTATE;
	}
	rc = shim_rec_header_start(r->port, r->shim_id, technician, r->custody,
				   r->identity, h);
	if (rc != 0) {
		return rc;
	}
	rc = r->port->rng.fill(r->port->rng.ctx, key, sizeof(key));
	if (rc == 0) {
		rc = shim_rec_seal_key(c, r->recipient, key, h);
	}
	if (rc == 0) {
		rc = shim_rec_header_encode(h, frame, sizeof(frame), &hlen);
	}
	if (rc != 0) {
		goto out;
	}
	path_of(r->part, h->session_id, ".part");
	path_of(r->done, h->session_id, ".rec");
	r->fd = sh_open(r->part, SH_MODE_WB);
	if (r->fd < 0) {
		rc = SHIM_EIO;
		goto out;
	}
	rc = put_all(r->fd, frame, hlen);
	if (rc == 0) {
		rc = shim_rec_writer_init(&r->w, c, key, h, frame, hlen, plain,
					  sizeof(plain));
	}
	if (rc == 0) {
		r->written = hlen;
		r->last_mono = h->start_mono_ns;
		rc = checkpoint(r);
	}
	if (rc != 0) {
		sh_close(r->fd);
		sh_remove(r->part);
		goto out;
	}
	r->open = 1;
	r->dropped = 0;
	r->batch_since = 0;
	memcpy(session_id, h->session_id, strlen(h->session_id) + 1);
out:
	shim_memzero(key, sizeof(key));
	return rc;
}

static int op_traffic(void *ctx, enum shim_rec_dir dir, const uint8_t *buf,
		      size_t len, int64_t wall_ns, int64_t mono_ns)
{
	struct shim_fw_rec *r = ctx;

	if (!r->open) {
		return SHIM_ESTATE;
	}
	return add(r, dir == SHIM_DIR_IN ? SHIM_REC_IN : SHIM_REC_OUT, buf,
		   len, wall_ns, mono_ns);
}

static int op_meta(void *ctx, const char *name, const char *detail,
		   int64_t wall_ns, int64_t mono_ns)
{
	struct shim_fw_rec *r = ctx;
	uint8_t item[160];
	size_t a, b;

	if (!r->open) {
		return SHIM_ESTATE;
	}
	detail = detail ? detail : "";
	a = strlen(name);
	b = strlen(detail);
	if (a + 1 + b > sizeof(item)) {
		b = sizeof(item) - 1 - a;
	}
	if (a + 1 > sizeof(item)) {
		return SHIM_EINVAL;
	}
	memcpy(item, name, a);
	item[a] = 0;
	memcpy(item + a + 1, detail, b);
	return add(r, SHIM_REC_META, item, a + 1 + b, wall_ns, mono_ns);
}

static int op_end(void *ctx, const char *reason, int64_t wall_ns,
		  int64_t mono_ns)
{
	struct shim_fw_rec *r = ctx;
	struct shim_rec_footer f;
	size_t len = 0, n;
	int rc;

	if (!r->open) {
		return SHIM_ESTATE;
	}
	rc = flush(r);
	memset(&f, 0, sizeof(f));
	shim_rec_writer_summary(&r->w, &f);
	f.end_wall_ns = wall_ns;
	f.end_mono_ns = mono_ns;
	f.dropped = r->dropped;
	if (rc != 0 || r->dropped) {
		f.flags |= SHIM_REC_F_DEGRADED;
	}
	n = strlen(reason);
	n = n < SHIM_REC_REASON_MAX ? n : SHIM_REC_REASON_MAX;
	memcpy(f.reason, reason, n);
	f.reason[n] = '\0';
	if (rc == 0) {
		rc = shim_rec_footer_encode(&r->port->crypto, &f, frame,
					    sizeof(frame), &len);
	}
	if (rc == 0) {
		rc = put_all(r->fd, frame, len);
	}
	if (sh_close(r->fd) != 0 && rc == 0) {
		rc = SHIM_EIO;
	}
	if (rc == 0 && sh_rename(r->part, r->done) != 0) {
		rc = SHIM_EIO;
	}
	if (rc == 0) {
		rc = checkpoint_clear(r->port);
	}
	shim_rec_writer_wipe(&r->w);
	r->open = 0;
	return rc;
}

/* Copies the first len bytes of from into to. */
static int copy_prefix(int from, int to, uint64_t len)
{
	while (len > 0) {
		size_t n = len < sizeof(frame) ? (size_t)len : sizeof(frame);

		if (sh_read(from, frame, n) != (long)n) {
			return SHIM_ETRUNC;
		}
		if (put_all(to, frame, n) != 0) {
			return SHIM_EIO;
		}
		len -= n;
	}
	return 0;
}

int shim_fw_rec_recover(const struct shim_port *port,
			char session_id[SHIM_SESSION_ID_MAX],
			uint64_t *records)
{
	const struct shim_store_ops *st = &port->store;
	struct shim_rec_footer f;
	struct shim_fw_ckpt c;
	uint8_t b[SHIM_FW_CKPT_LEN];
	char part[PATH_MAX_FW], done[PATH_MAX_FW], tmp[PATH_MAX_FW];
	size_t len = 0, flen = 0;
	long total;
	int in, out, rc;

	session_id[0] = '\0';
	*records = 0;
	rc = st->load(st->ctx, CKPT_NAME, b, sizeof(b), &len);
	if (rc == SHIM_ENOENT) {
		return 0;
	}
	if (rc == 0) {
		rc = shim_fw_ckpt_decode(b, len, &c);
	}
	if (rc == SHIM_ENOENT) {
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	path_of(part, c.id, ".part");
	path_of(done, c.id, ".rec");
	path_of(tmp, c.id, ".rec.new");
	in = sh_open(part, SH_MODE_RB);
	if (in < 0) {
		/* Sealed, renamed, and the power went before the
		 * checkpoint was cleared. */
		return checkpoint_clear(port);
	}
	total = sh_flen(in);
	if (total < 0 || (uint64_t)total < c.written) {
		sh_close(in);
		return SHIM_ETRUNC;
	}
	out = sh_open(tmp, SH_MODE_WB);
	if (out < 0) {
		sh_close(in);
		return SHIM_EIO;
	}
	rc = copy_prefix(in, out, c.written);
	sh_close(in);
	if (rc == 0) {
		memset(&f, 0, sizeof(f));
		f.records = c.records;
		f.bytes_in = c.bytes_in;
		f.bytes_out = c.bytes_out;
		memcpy(f.chain_head, c.chain, sizeof(f.chain_head));
		/* unsigned arithmetic: the checkpoint is not trusted */
		f.end_mono_ns = c.last_mono_ns;
		f.end_wall_ns = (int64_t)((uint64_t)c.start_wall_ns +
					  ((uint64_t)c.last_mono_ns -
					   (uint64_t)c.start_mono_ns));
		f.cut = (uint64_t)total - c.written;
		f.flags = SHIM_REC_F_RECOVERED;
		memcpy(f.reason, "power_loss_recovered",
		       sizeof("power_loss_recovered"));
		rc = shim_rec_footer_encode(&port->crypto, &f, frame,
					    sizeof(frame), &flen);
	}
	if (rc == 0) {
		rc = put_all(out, frame, flen);
	}
	if (sh_close(out) != 0 && rc == 0) {
		rc = SHIM_EIO;
	}
	if (rc == 0 && sh_rename(tmp, done) != 0) {
		rc = SHIM_EIO;
	}
	if (rc != 0) {
		sh_remove(tmp);
		return rc;
	}
	sh_remove(part);
	memcpy(session_id, c.id, strlen(c.id) + 1);
	*records = c.records;
	return checkpoint_clear(port);
}

int shim_fw_rec_poll(int64_t mono_ns)
{
	struct shim_fw_rec *r = &rec;

	if (!r->open || r->batch_since == 0 ||
	    mono_ns - r->batch_since < SHIM_FW_REC_FLUSH_NS) {
		return 0;
	}
	return flush(r);
}

int64_t shim_fw_rec_next_due(void)
{
	if (!rec.open || rec.batch_since == 0) {
		return INT64_MAX;
	}
	return rec.batch_since + SHIM_FW_REC_FLUSH_NS;
}

int shim_fw_rec_init(const struct shim_port *port, const char *shim_id,
		     const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		     int custody, struct shim_ctl_rec_ops *ops)
{
	struct shim_fw_rec *r = &rec;
	size_t n = strlen(shim_id);
	int rc;

	memset(r, 0, sizeof(*r));
	if (n == 0 || n > SHIM_REC_ID_MAX) {
		return SHIM_EINVAL;
	}
	r->port = port;
	memcpy(r->shim_id, shim_id, n + 1);
	memcpy(r->recipient, recipient_pub, SHIM_P256_PUB_LEN);
	r->custody = custody;
	rc = port->crypto.identity_pub(port->crypto.ctx, r->identity);
	if (rc != 0) {
		return rc;
	}
	memset(ops, 0, sizeof(*ops));
	ops->can_start = op_can_start;
	ops->begin = op_begin;
	ops->traffic = op_traffic;
	ops->meta = op_meta;
	ops->end = op_end;
	ops->ctx = r;
	return 0;
}
