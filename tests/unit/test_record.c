/*
 * Unit tests for the recording format (core/record.c): round trip of
 * every byte value with timing, and a distinct verdict for each kind of
 * damage, with and without the session key; the verdicts for an
 * unpinned signer and for unrecorded traffic (footer totals and gap
 * markers); and every meta record the daemon writes, recorded through
 * the recorder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes.h"
#include "keys.h"
#include "port_linux.h"
#include "config.h"
#include "record.h"
#include "recorder.h"
#include "util.h"

static struct shim_linux_port lp;      /* identity A */
static struct shim_linux_port lp_b;    /* identity B */
static uint8_t rec_pub[SHIM_P256_PUB_LEN];
static struct shim_privkey *rec_priv;
static struct shim_privkey *other_priv;
static char tmpdir[64];

#define T0 1700000000000000000LL

struct built {
	uint8_t *buf;
	size_t len;
	size_t off[64]; /* frame offsets: [0] = first DATA frame */
	size_t nframes; /* DATA frames + footer */
	uint8_t key[SHIM_REC_KEY_LEN];
	struct shim_rec_header h;
};

static int setup_all(void **state)
{
	char path[128], path2[128], path3[128], path4[128];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_record.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/id.key", tmpdir);
	snprintf(path2, sizeof(path2), "%s/rec.key", tmpdir);
	snprintf(path3, sizeof(path3), "%s/idb.key", tmpdir);
	snprintf(path4, sizeof(path4), "%s/other.key", tmpdir);
	assert_int_equal(shim_keys_generate(path, NULL, NULL, NULL), 0);
	assert_int_equal(shim_keys_generate(path2, NULL, rec_pub, NULL), 0);
	assert_int_equal(shim_keys_generate(path3, NULL, NULL, NULL), 0);
	assert_int_equal(shim_keys_generate(path4, NULL, NULL, NULL), 0);
	assert_int_equal(shim_linux_port_init(&lp, NULL), 0);
	assert_int_equal(shim_linux_port_load_identity(&lp, path), 0);
	assert_int_equal(shim_linux_port_init(&lp_b, NULL), 0);
	assert_int_equal(shim_linux_port_load_identity(&lp_b, path3), 0);
	assert_int_equal(shim_keys_load_private(path2, &rec_priv), 0);
	assert_int_equal(shim_keys_load_private(path4, &other_priv), 0);
	return 0;
}

static int teardown_all(void **state)
{
	char cmd[128];

	(void)state;
	shim_keys_free(rec_priv);
	shim_keys_free(other_priv);
	shim_linux_port_fini(&lp);
	shim_linux_port_fini(&lp_b);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void append(struct built *b, const uint8_t *p, size_t n)
{
	b->buf = realloc(b->buf, b->len + n);
	assert_non_null(b->buf);
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

/* Builds a session: nrec DATA records each holding a few items of every
 * byte value, then a footer signed by identity port p. */
static void build(struct built *b, const struct shim_port *p,
		  const char *sid, int nrec)
{
	const struct shim_crypto_ops *c = &p->crypto;
	struct shim_rec_writer w;
	struct shim_rec_footer f;
	static uint8_t plain[SHIM_REC_MAX_PLAIN];
	static uint8_t frame[SHIM_REC_MAX_BODY + 16];
	uint8_t hdr[SHIM_REC_HEADER_MAX];
	uint8_t data[256];
	size_t len;
	int i, k;

	memset(b, 0, sizeof(*b));
	for (i = 0; i < 256; i++) {
		data[i] = (uint8_t)i;
	}
	b->h.version = SHIM_REC_VERSION;
	snprintf(b->h.session_id, sizeof(b->h.session_id), "%s", sid);
	snprintf(b->h.shim_id, sizeof(b->h.shim_id), "shim-test-001");
	snprintf(b->h.technician_id, sizeof(b->h.technician_id),
		 "alice@example.org");
	b->h.start_wall_ns = T0;
	b->h.start_mono_ns = 5000;
	assert_int_equal(c->identity_pub(c->ctx, b->h.identity_pub), 0);
	assert_int_equal(shim_linux_random(b->key, sizeof(b->key)), 0);
	assert_int_equal(shim_rec_seal_key(c, rec_pub, b->key, &b->h), 0);
	assert_int_equal(shim_rec_header_encode(&b->h, hdr, sizeof(hdr), &len),
			 0);
	append(b, hdr, len);
	assert_int_equal(
		shim_rec_writer_init(&w, c, b->key, &b->h, hdr, len, plain,
				     sizeof(plain)), 0);
	for (i = 0; i < nrec; i++) {
		int64_t t = (int64_t)(i + 1) * 1000000000LL;

		/* every byte value, technician side, in uneven chunks */
		for (k = 0; k < 256; k += 37) {
			size_t n = 256 - (size_t)k < 37 ? 256 - (size_t)k : 37;

			assert_int_equal(shim_rec_writer_add(&w, SHIM_REC_IN,
							     data + k, n,
							     T0 + t + k * 10,
							     5000 + t + k * 10),
					 0);
		}
		assert_int_equal(shim_rec_writer_add(&w, SHIM_REC_META,
						     (const uint8_t *)"break\0x",
						     7, T0 + t + 50000000,
						     5000 + t + 50000000),
				 0);
		assert_int_equal(shim_rec_writer_add(&w, SHIM_REC_OUT, data,
						     256, T0 + t + 90000000,
						     5000 + t + 90000000),
				 0);
		assert_int_equal(shim_rec_writer_seal(&w, frame, sizeof(frame),
						      &len),
				 0);
		b->off[b->nframes++] = b->len;
		append(b, frame, len);
	}
	memset(&f, 0, sizeof(f));
	shim_rec_writer_summary(&w, &f);
	f.end_wall_ns = T0 + (int64_t)(nrec + 1) * 1000000000LL;
	f.end_mono_ns = 5000 + (int64_t)(nrec + 1) * 1000000000LL;
	snprintf(f.reason, sizeof(f.reason), "technician_disconnect");
	assert_int_equal(shim_rec_footer_encode(c, &f, frame, sizeof(frame),
						&len),
			 0);
	b->off[b->nframes++] = b->len;
	append(b, frame, len);
	shim_rec_writer_wipe(&w);
}

struct collect {
	const struct built *b;
	struct shim_privkey *priv;
	int use_key;
	int unseal_rc;
	uint8_t in[65536];
	size_t nin;
	uint8_t out[65536];
	size_t nout;
	int metas;
	int items;
	int64_t last_mono;
	int64_t first_in_wall;
	int footers;
};

static struct shim_rec_reader *cur_reader;

static int cb_header_key(void *arg, const struct shim_rec_header *h)
{
	struct collect *c = arg;
	uint8_t shared[32], key[32], pub[SHIM_P256_PUB_LEN];

	if (!c->use_key) {
		return 0;
	}
	assert_int_equal(shim_keys_ecdh(c->priv, h->eph_pub, shared), 0);
	shim_keys_private_pub(c->priv, pub);
	c->unseal_rc = shim_rec_unseal_key(&lp.port.crypto, h, pub, shared,
					   key);
	if (c->unseal_rc == 0) {
		shim_rec_reader_set_key(cur_reader, key);
	}
	return 0;
}

static int cb_item(void *arg, const struct shim_rec_item *it)
{
	struct collect *c = arg;

	c->items++;
	assert_true(it->mono_ns >= c->last_mono);
	c->last_mono = it->mono_ns;
	if (it->kind == SHIM_REC_IN) {
		if (c->nin == 0) {
			c->first_in_wall = it->wall_ns;
		}
		memcpy(c->in + c->nin, it->data, it->len);
		c->nin += it->len;
	} else if (it->kind == SHIM_REC_OUT) {
		memcpy(c->out + c->nout, it->data, it->len);
		c->nout += it->len;
	} else {
		assert_int_equal(it->len, 7);
		assert_memory_equal(it->data, "break\0x", 7);
		c->metas++;
	}
	return 0;
}

static int cb_footer(void *arg, const struct shim_rec_footer *f)
{
	struct collect *c = arg;

	c->footers++;
	assert_string_equal(f->reason, "technician_disconnect");
	return 0;
}

/* Reads buf in chunks of step bytes; returns finish's code. */
static int read_all(const uint8_t *buf, size_t len, size_t step,
		    struct collect *col, const uint8_t *expect_id,
		    struct shim_rec_result *res)
{
	static uint8_t rbuf[SHIM_REC_READER_BUF];
	struct shim_rec_reader r;
	struct shim_rec_reader_cb cb = { cb_header_key, cb_item, cb_footer,
					 col };
	size_t i;
	int rc;

	shim_rec_reader_init(&r, &lp.port.crypto, &cb, rbuf, sizeof(rbuf));
	cur_reader = &r;
	for (i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;

		shim_rec_reader_feed(&r, buf + i, n);
	}
	rc = shim_rec_reader_finish(&r, expect_id, res);
	shim_rec_reader_wipe(&r);
	return rc;
}

static void test_round_trip_every_byte(void **state)
{
	struct built b;
	struct collect *col = calloc(1, sizeof(*col));
	struct shim_rec_result res;
	uint8_t id[SHIM_P256_PUB_LEN];
	size_t steps[] = { 1, 7, 4096, 1 << 20 };
	size_t s;
	int i, k;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-aaaaaa", 3);
	assert_int_equal(lp.port.crypto.identity_pub(lp.port.crypto.ctx, id),
			 0);
	for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		memset(col, 0, sizeof(*col));
		col->b = &b;
		col->priv = rec_priv;
		col->use_key = 1;
		assert_int_equal(read_all(b.buf, b.len, steps[s], col, id,
					  &res),
				 0);
		assert_int_equal(res.status, SHIM_REC_COMPLETE);
		assert_int_equal(res.damage, SHIM_REC_D_OK);
		assert_true(res.decrypted);
		assert_int_equal(res.records, 3);
		assert_int_equal(res.bytes_in, 3 * 256);
		assert_int_equal(res.bytes_out, 3 * 256);
		assert_int_equal(col->nin, 3 * 256);
		assert_int_equal(col->nout, 3 * 256);
		assert_int_equal(col->metas, 3);
		assert_int_equal(col->footers, 1);
		for (i = 0; i < 3; i++) {
			for (k = 0; k < 256; k++) {
				assert_int_equal(col->in[i * 256 + k], k);
				assert_int_equal(col->out[i * 256 + k], k);
			}
		}
		/* Chunks 10 ns apart of one direction share an item; the
		 * item keeps the first chunk's exact time. */
		assert_true(col->first_in_wall == T0 + 1000000000LL);
		assert_true(col->items == 9);
	}
	free(col);
	free(b.buf);
}

static void test_header_fields_and_no_key(void **state)
{
	struct built b;
	struct collect *col = calloc(1, sizeof(*col));
	struct shim_rec_result res;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-bbbbbb", 2);
	col->use_key = 0;
	assert_int_equal(read_all(b.buf, b.len, 100, col, NULL, &res), 0);
	assert_int_equal(res.status, SHIM_REC_COMPLETE);
	assert_false(res.decrypted);
	assert_int_equal(col->items, 0);
	assert_int_equal(res.bytes_in, 512);
	free(col);
	free(b.buf);
}

/* Recomputes a frame's CRC after a deliberate edit, as a forger would. */
static void fix_crc(uint8_t *frame)
{
	uint32_t bl = shim_get_u32(frame);

	shim_put_u32(frame + 4 + bl, shim_crc32(0, frame, 4 + bl));
}

static void expect(const uint8_t *buf, size_t len, int use_key,
		   const uint8_t *id, enum shim_rec_status st,
		   enum shim_rec_damage d, int want_rc)
{
	struct collect *col = calloc(1, sizeof(*col));
	struct shim_rec_result res;
	int rc;

	col->priv = rec_priv;
	col->use_key = use_key;
	rc = read_all(buf, len, 333, col, id, &res);
	if (res.status != st || res.damage != d || rc != want_rc) {
		fail_msg("got status %d damage %s rc %d; want %d %s %d",
			 res.status, shim_rec_damage_name(res.damage), rc, st,
			 shim_rec_damage_name(d), want_rc);
	}
	free(col);
}

static void test_damage_flip_byte(void **state)
{
	struct built b;
	uint8_t *frame;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-cccccc", 3);
	frame = b.buf + b.off[1];
	frame[20] ^= 0x01;
	/* A flipped byte breaks the record checksum; the rest is intact,
	 * so it is damage, not a torn tail. */
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_BAD_CRC,
	       SHIM_ECORRUPT);
	/* A forger who fixes the checksum breaks the chain... */
	fix_crc(frame);
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_CHAIN,
	       SHIM_ECHAIN);
	/* ...and with the key, the record itself fails to open. */
	expect(b.buf, b.len, 1, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_RECORD_AUTH,
	       SHIM_ECHAIN);
	free(b.buf);
}

static void test_damage_drop_record(void **state)
{
	struct built b;
	size_t a, e;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-dddddd", 3);
	a = b.off[1];
	e = b.off[2];
	memmove(b.buf + a, b.buf + e, b.len - e);
	b.len -= e - a;
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_COUNT,
	       SHIM_ECHAIN);
	expect(b.buf, b.len, 1, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_RECORD_AUTH,
	       SHIM_ECHAIN);
	free(b.buf);
}

static void test_damage_reorder(void **state)
{
	struct built b;
	uint8_t *tmp;
	size_t l0, l1;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-eeeeee", 3);
	l0 = b.off[1] - b.off[0];
	l1 = b.off[2] - b.off[1];
	tmp = malloc(l0 + l1);
	memcpy(tmp, b.buf + b.off[1], l1);
	memcpy(tmp + l1, b.buf + b.off[0], l0);
	memcpy(b.buf + b.off[0], tmp, l0 + l1);
	free(tmp);
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_CHAIN,
	       SHIM_ECHAIN);
	expect(b.buf, b.len, 1, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_RECORD_AUTH,
	       SHIM_ECHAIN);
	free(b.buf);
}

static void test_damage_truncate(void **state)
{
	struct built b;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-ffffff", 3);
	/* inside a record: torn tail */
	expect(b.buf, b.off[2] + 10, 0, NULL, SHIM_REC_TORN, SHIM_REC_D_TORN,
	       SHIM_ETRUNC);
	/* at a record boundary: whole records, no footer */
	expect(b.buf, b.off[2], 0, NULL, SHIM_REC_UNSEALED,
	       SHIM_REC_D_NO_FOOTER, SHIM_ETRUNC);
	/* inside the header */
	expect(b.buf, 40, 0, NULL, SHIM_REC_TORN, SHIM_REC_D_TORN,
	       SHIM_ETRUNC);
	expect(b.buf, 0, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_EMPTY,
	       SHIM_ECORRUPT);
	free(b.buf);
}

static void test_torn_tail_zero_filled(void **state)
{
	struct built b;
	struct collect col;
	struct shim_rec_result res;
	size_t cut;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-f0f0f0", 3);
	/* A crash after the size grew but before the data reached the
	 * disk leaves zeros: a torn tail, cut at the last whole record. */
	cut = b.off[2];
	memset(b.buf + cut, 0, b.len - cut);
	memset(&col, 0, sizeof(col));
	assert_int_equal(read_all(b.buf, b.len, 500, &col, NULL, &res),
			 SHIM_ETRUNC);
	assert_int_equal(res.status, SHIM_REC_TORN);
	assert_int_equal(res.good_end, cut);
	assert_int_equal(res.records, 2);
	/* Half-written last record: garbage checksum, end of file. */
	free(b.buf);
	build(&b, &lp.port, "20261124T000000Z-f1f1f1", 3);
	memset(b.buf + b.off[2] + 30, 0, b.off[3] - b.off[2] - 30);
	assert_int_equal(read_all(b.buf, b.off[3], 500, &col, NULL, &res),
			 SHIM_ETRUNC);
	assert_int_equal(res.status, SHIM_REC_TORN);
	assert_int_equal(res.good_end, b.off[2]);
	free(b.buf);
}

static void test_damage_splice(void **state)
{
	struct built a, b;
	uint8_t *s;
	size_t n;

	(void)state;
	build(&a, &lp.port, "20261124T000000Z-111111", 3);
	build(&b, &lp.port, "20261124T000000Z-222222", 3);
	/* header and first record of A, then B from its second record */
	n = a.off[1] + (b.len - b.off[1]);
	s = malloc(n);
	memcpy(s, a.buf, a.off[1]);
	memcpy(s + a.off[1], b.buf + b.off[1], b.len - b.off[1]);
	expect(s, n, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_CHAIN, SHIM_ECHAIN);
	expect(s, n, 1, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_RECORD_AUTH,
	       SHIM_ECHAIN);
	free(s);
	free(a.buf);
	free(b.buf);
}

static void test_wrong_key(void **state)
{
	struct built b;
	struct collect *col = calloc(1, sizeof(*col));
	struct shim_rec_result res;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-333333", 1);
	col->priv = other_priv;
	col->use_key = 1;
	assert_int_equal(read_all(b.buf, b.len, 4096, col, NULL, &res), 0);
	assert_int_equal(col->unseal_rc, SHIM_ECRYPTO);
	assert_false(res.decrypted);
	free(col);
	free(b.buf);
}

static void test_wrong_identity(void **state)
{
	struct built b;
	uint8_t id_a[SHIM_P256_PUB_LEN];

	(void)state;
	assert_int_equal(lp.port.crypto.identity_pub(lp.port.crypto.ctx, id_a),
			 0);
	/* signed by identity B, expected A */
	build(&b, &lp_b.port, "20261124T000000Z-444444", 2);
	expect(b.buf, b.len, 0, id_a, SHIM_REC_CORRUPT, SHIM_REC_D_IDENTITY,
	       SHIM_ESIG);
	expect(b.buf, b.len, 0, NULL, SHIM_REC_COMPLETE, SHIM_REC_D_OK, 0);
	free(b.buf);
}

static void test_footer_forged(void **state)
{
	struct built b;
	uint8_t *f;

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-555555", 2);
	f = b.buf + b.off[2];
	/* change bytes_in in the footer and fix its checksum */
	f[4 + 1 + 16 + 7] ^= 0x01;
	fix_crc(f);
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_SIG,
	       SHIM_ESIG);
	free(b.buf);
}

static void test_trailing_and_magic(void **state)
{
	struct built b;
	uint8_t junk[3] = { 1, 2, 3 };

	(void)state;
	build(&b, &lp.port, "20261124T000000Z-666666", 1);
	append(&b, junk, sizeof(junk));
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_TRAILING,
	       SHIM_ECORRUPT);
	b.buf[0] = 'X';
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_BAD_MAGIC,
	       SHIM_ECORRUPT);
	b.buf[0] = 'S';
	b.buf[SHIM_REC_MAGIC_LEN + 4 + 2] = 9; /* version 9 */
	fix_crc(b.buf + SHIM_REC_MAGIC_LEN);
	expect(b.buf, b.len, 0, NULL, SHIM_REC_CORRUPT, SHIM_REC_D_BAD_VERSION,
	       SHIM_ECORRUPT);
	free(b.buf);
}

static void test_hkdf_rfc5869(void **state)
{
	/* RFC 5869 test case 1 */
	uint8_t ikm[22], salt[13], info[10], okm[42];
	static const uint8_t want[42] = {
		0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43,
		0x4f, 0x64, 0xd0, 0x36, 0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90,
		0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56, 0xec, 0xc4,
		0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18,
		0x58, 0x65,
	};
	int i;

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	for (i = 0; i < 13; i++) {
		salt[i] = (uint8_t)i;
	}
	for (i = 0; i < 10; i++) {
		info[i] = (uint8_t)(0xf0 + i);
	}
	assert_int_equal(shim_hkdf_sha256(&lp.port.crypto, salt, sizeof(salt),
					  ikm, sizeof(ikm), info, sizeof(info),
					  okm, sizeof(okm)),
			 0);
	assert_memory_equal(okm, want, sizeof(want));
}

/* Bytes on disk per traffic byte for two shapes of traffic. */
static double overhead(size_t chunk, int alternate, int64_t gap_ns,
		       size_t total)
{
	struct shim_rec_header h;
	struct shim_rec_writer w;
	static uint8_t plain[SHIM_REC_MAX_PLAIN];
	static uint8_t frame[SHIM_REC_MAX_BODY + 16];
	static uint8_t data[4096];
	uint8_t key[32] = { 1 };
	uint8_t hdr[SHIM_REC_HEADER_MAX];
	size_t len, disk = 0, done = 0;
	int64_t t = 0, last_seal = 0;
	int dir = 0;

	memset(&h, 0, sizeof(h));
	snprintf(h.session_id, sizeof(h.session_id), "x");
	assert_int_equal(shim_rec_header_encode(&h, hdr, sizeof(hdr), &len),
			 0);
	assert_int_equal(shim_rec_writer_init(&w, &lp.port.crypto, key, &h, hdr,
					      len, plain, sizeof(plain)),
			 0);
	while (done < total) {
		int rc = shim_rec_writer_add(&w, dir ? SHIM_REC_OUT : SHIM_REC_IN,
					     data, chunk, t, t);

		if (rc == 0) {
			done += chunk;
			t += gap_ns;
			if (alternate) {
				dir ^= 1;
			}
		} else {
			assert_int_equal(rc, SHIM_ENOSPC);
		}
		if (rc != 0 || shim_rec_writer_pending(&w) >= 32768 ||
		    t - last_seal >= 100000000) {
			assert_int_equal(shim_rec_writer_seal(&w, frame,
							      sizeof(frame),
							      &len),
					 0);
			disk += len;
			last_seal = t;
		}
	}
	assert_int_equal(shim_rec_writer_seal(&w, frame, sizeof(frame), &len),
			 0);
	disk += len;
	shim_rec_writer_wipe(&w);
	return (double)disk / (double)total;
}

static void test_overhead_targets(void **state)
{
	double bulk, typing;

	(void)state;
	bulk = overhead(4096, 0, 40000, 8 << 20);
	/* typing: one byte per read, echoed, 10 keys a second */
	typing = overhead(1, 1, 50000000, 2000);
	print_message("bytes on disk per byte: bulk %.3f, typing %.1f\n", bulk,
		      typing);
	assert_true(bulk <= 1.1);
	assert_true(typing <= 30.0);
}

/* An MCU's small batch buffer: the writer takes any size in
 * SHIM_REC_MIN_PLAIN..SHIM_REC_MAX_PLAIN, never lets a batch outgrow it,
 * and what it writes reads back byte for byte. */
static void test_small_batch_buffer(void **state)
{
	const struct shim_crypto_ops *c = &lp.port.crypto;
	struct built b;
	struct collect *col = calloc(1, sizeof(*col));
	struct shim_rec_result res;
	struct shim_rec_writer w;
	struct shim_rec_footer f;
	static uint8_t plain[SHIM_REC_MAX_PLAIN + 1];
	static uint8_t frame[SHIM_REC_MAX_BODY + 16];
	uint8_t hdr[SHIM_REC_HEADER_MAX], data[1000], id[SHIM_P256_PUB_LEN];
	size_t len, done = 0, cap = SHIM_REC_MIN_PLAIN;
	int i;

	(void)state;
	assert_non_null(col);
	memset(&b, 0, sizeof(b));
	for (i = 0; i < (int)sizeof(data); i++) {
		data[i] = (uint8_t)(i * 7);
	}
	b.h.version = SHIM_REC_VERSION;
	snprintf(b.h.session_id, sizeof(b.h.session_id), "%s",
		 "20261124T000000Z-cccccc");
	snprintf(b.h.shim_id, sizeof(b.h.shim_id), "shim-test-001");
	b.h.start_wall_ns = T0;
	b.h.start_mono_ns = 5000;
	assert_int_equal(c->identity_pub(c->ctx, b.h.identity_pub), 0);
	assert_int_equal(shim_linux_random(b.key, sizeof(b.key)), 0);
	assert_int_equal(shim_rec_seal_key(c, rec_pub, b.key, &b.h), 0);
	assert_int_equal(shim_rec_header_encode(&b.h, hdr, sizeof(hdr), &len),
			 0);
	append(&b, hdr, len);
	/* a missing, too small or too large buffer is refused */
	assert_int_equal(shim_rec_writer_init(&w, c, b.key, &b.h, hdr, len,
					      plain, 0),
			 SHIM_EINVAL);
	assert_int_equal(shim_rec_writer_init(&w, c, b.key, &b.h, hdr, len,
					      plain, SHIM_REC_MIN_PLAIN - 1),
			 SHIM_EINVAL);
	assert_int_equal(shim_rec_writer_init(&w, c, b.key, &b.h, hdr, len,
					      plain, SHIM_REC_MAX_PLAIN + 1),
			 SHIM_EINVAL);
	assert_int_equal(shim_rec_writer_init(&w, c, b.key, &b.h, hdr, len,
					      NULL, cap),
			 SHIM_EINVAL);
	assert_int_equal(shim_rec_writer_init(&w, c, b.key, &b.h, hdr, len,
					      plain, cap),
			 0);
	assert_true(shim_rec_writer_room(&w) < cap);
	/* more than a batch at once does not fit */
	assert_int_equal(shim_rec_writer_add(&w, SHIM_REC_IN, data, cap, T0,
					     5000),
			 SHIM_ENOSPC);
	/* the firmware's way: add what fits, seal when full */
	while (done < sizeof(data)) {
		size_t room = shim_rec_writer_room(&w);
		size_t n = sizeof(data) - done < 100 ? sizeof(data) - done : 100;
		int64_t t = (int64_t)done * 5000000;

		if (room == 0) {
			assert_int_equal(shim_rec_writer_seal(&w, frame,
							      sizeof(frame),
							      &len),
					 0);
			assert_true(len <= cap + 64);
			append(&b, frame, len);
			continue;
		}
		n = n < room ? n : room;
		assert_int_equal(shim_rec_writer_add(&w, SHIM_REC_IN,
						     data + done, n, T0 + t,
						     5000 + t),
				 0);
		assert_true(shim_rec_writer_pending(&w) <= cap);
		done += n;
	}
	assert_int_equal(shim_rec_writer_seal(&w, frame, sizeof(frame), &len),
			 0);
	append(&b, frame, len);
	memset(&f, 0, sizeof(f));
	shim_rec_writer_summary(&w, &f);
	assert_true(f.records >= 4);
	f.end_wall_ns = T0 + 10000000000LL;
	f.end_mono_ns = 5000 + 10000000000LL;
	snprintf(f.reason, sizeof(f.reason), "technician_disconnect");
	assert_int_equal(shim_rec_footer_encode(c, &f, frame, sizeof(frame),
						&len),
			 0);
	append(&b, frame, len);
	/* the batch buffer is wiped with the writer */
	plain[0] = 0x5a;
	shim_rec_writer_wipe(&w);
	assert_int_equal(plain[0], 0);

	assert_int_equal(c->identity_pub(c->ctx, id), 0);
	col->b = &b;
	col->priv = rec_priv;
	col->use_key = 1;
	assert_int_equal(read_all(b.buf, b.len, 64, col, id, &res), 0);
	assert_int_equal(res.status, SHIM_REC_COMPLETE);
	assert_int_equal(res.damage, SHIM_REC_D_OK);
	assert_int_equal(res.bytes_in, sizeof(data));
	assert_int_equal(col->nin, sizeof(data));
	assert_memory_equal(col->in, data, sizeof(data));
	free(col);
	free(b.buf);
}

/* ---- verdicts: pinning and unrecorded traffic ----------------------- */

struct meta_spec {
	const char *name;
	const char *detail;
};

/* One record of traffic, then the given meta items, then a footer with
 * the given dropped count and flags, signed by identity A. */
static void build_meta(struct built *b, const struct meta_spec *m, size_t n,
		       uint64_t dropped, uint32_t flags)
{
	const struct shim_crypto_ops *c = &lp.port.crypto;
	struct shim_rec_writer w;
	struct shim_rec_footer f;
	static uint8_t plain[SHIM_REC_MAX_PLAIN];
	static uint8_t frame[SHIM_REC_MAX_BODY + 16];
	uint8_t hdr[SHIM_REC_HEADER_MAX], item[512];
	size_t len, i;

	memset(b, 0, sizeof(*b));
	b->h.version = SHIM_REC_VERSION;
	snprintf(b->h.session_id, sizeof(b->h.session_id),
		 "20261124T000000Z-9a9a9a");
	snprintf(b->h.shim_id, sizeof(b->h.shim_id), "shim-test-001");
	snprintf(b->h.technician_id, sizeof(b->h.technician_id), "bob");
	b->h.start_wall_ns = T0;
	b->h.start_mono_ns = 5000;
	assert_int_equal(c->identity_pub(c->ctx, b->h.identity_pub), 0);
	assert_int_equal(shim_linux_random(b->key, sizeof(b->key)), 0);
	assert_int_equal(shim_rec_seal_key(c, rec_pub, b->key, &b->h), 0);
	assert_int_equal(shim_rec_header_encode(&b->h, hdr, sizeof(hdr), &len),
			 0);
	append(b, hdr, len);
	assert_int_equal(
		shim_rec_writer_init(&w, c, b->key, &b->h, hdr, len, plain,
				     sizeof(plain)), 0);
	assert_int_equal(shim_rec_writer_add(&w, SHIM_REC_IN,
					     (const uint8_t *)"PIN\r", 4,
					     T0 + 10, 5010),
			 0);
	for (i = 0; i < n; i++) {
		size_t nl = strlen(m[i].name), dl = strlen(m[i].detail);

		memcpy(item, m[i].name, nl);
		item[nl] = 0;
		memcpy(item + nl + 1, m[i].detail, dl);
		assert_int_equal(shim_rec_writer_add(&w, SHIM_REC_META, item,
						     nl + 1 + dl,
						     T0 + 100 + (int64_t)i,
						     5100 + (int64_t)i),
				 0);
	}
	assert_int_equal(shim_rec_writer_seal(&w, frame, sizeof(frame), &len),
			 0);
	b->off[b->nframes++] = b->len;
	append(b, frame, len);
	memset(&f, 0, sizeof(f));
	shim_rec_writer_summary(&w, &f);
	f.end_wall_ns = T0 + 1000000000LL;
	f.end_mono_ns = 5000 + 1000000000LL;
	f.dropped = dropped;
	f.flags = flags;
	snprintf(f.reason, sizeof(f.reason), "technician_disconnect");
	assert_int_equal(shim_rec_footer_encode(c, &f, frame, sizeof(frame),
						&len),
			 0);
	b->off[b->nframes++] = b->len;
	append(b, frame, len);
	shim_rec_writer_wipe(&w);
}

/* Collects meta items as "name|detail;" into text. */
struct metas {
	int use_key;
	char text[2048];
};

static int cb_header_m(void *arg, const struct shim_rec_header *h)
{
	struct metas *m = arg;
	uint8_t shared[32], key[32], pub[SHIM_P256_PUB_LEN];

	if (!m->use_key) {
		return 0;
	}
	assert_int_equal(shim_keys_ecdh(rec_priv, h->eph_pub, shared), 0);
	shim_keys_private_pub(rec_priv, pub);
	assert_int_equal(shim_rec_unseal_key(&lp.port.crypto, h, pub, shared,
					     key),
			 0);
	shim_rec_reader_set_key(cur_reader, key);
	return 0;
}

static int cb_item_m(void *arg, const struct shim_rec_item *it)
{
	struct metas *m = arg;
	const uint8_t *z;
	size_t l = strlen(m->text);

	if (it->kind != SHIM_REC_META) {
		return 0;
	}
	z = memchr(it->data, 0, it->len);
	assert_non_null(z);
	snprintf(m->text + l, sizeof(m->text) - l, "%.*s|%.*s;",
		 (int)(z - it->data), (const char *)it->data,
		 (int)(it->len - (size_t)(z - it->data) - 1),
		 (const char *)z + 1);
	return 0;
}

static int read_metas(const struct built *b, int use_key, const uint8_t *id,
		      struct metas *m, struct shim_rec_result *res)
{
	static uint8_t rbuf[SHIM_REC_READER_BUF];
	struct shim_rec_reader r;
	struct shim_rec_reader_cb cb = { cb_header_m, cb_item_m, NULL, m };
	int rc;

	memset(m, 0, sizeof(*m));
	m->use_key = use_key;
	shim_rec_reader_init(&r, &lp.port.crypto, &cb, rbuf, sizeof(rbuf));
	cur_reader = &r;
	shim_rec_reader_feed(&r, b->buf, b->len);
	rc = shim_rec_reader_finish(&r, id, res);
	shim_rec_reader_wipe(&r);
	return rc;
}

static void test_zero_result_is_not_intact(void **state)
{
	struct shim_rec_result res;

	(void)state;
	memset(&res, 0, sizeof(res));
	assert_int_not_equal(res.status, SHIM_REC_COMPLETE);
	assert_int_equal(res.verdict, SHIM_REC_V_NONE);
	assert_int_not_equal(res.verdict, SHIM_REC_V_INTACT);
}

static void test_verdict_pinned_unpinned_wrong(void **state)
{
	struct built b;
	struct metas m;
	struct shim_rec_result res;
	uint8_t id_a[SHIM_P256_PUB_LEN], id_b[SHIM_P256_PUB_LEN];

	(void)state;
	assert_int_equal(lp.port.crypto.identity_pub(lp.port.crypto.ctx, id_a),
			 0);
	assert_int_equal(
		lp_b.port.crypto.identity_pub(lp_b.port.crypto.ctx, id_b), 0);
	build_meta(&b, NULL, 0, 0, 0);
	assert_int_equal(read_metas(&b, 1, id_a, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_INTACT);
	assert_true(res.pinned);
	assert_false(res.degraded);
	/* complete and signed, but by whom nobody said */
	assert_int_equal(read_metas(&b, 1, NULL, &m, &res), 0);
	assert_int_equal(res.status, SHIM_REC_COMPLETE);
	assert_int_equal(res.verdict, SHIM_REC_V_UNPINNED);
	assert_false(res.pinned);
	assert_int_equal(read_metas(&b, 0, NULL, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_UNPINNED);
	/* pinned to another identity */
	assert_int_equal(read_metas(&b, 1, id_b, &m, &res), SHIM_ESIG);
	assert_int_equal(res.verdict, SHIM_REC_V_FAILED);
	assert_int_equal(res.damage, SHIM_REC_D_IDENTITY);
	free(b.buf);
}

static void test_verdict_degraded_by_footer(void **state)
{
	struct built b;
	struct metas m;
	struct shim_rec_result res;
	uint8_t id[SHIM_P256_PUB_LEN];

	(void)state;
	assert_int_equal(lp.port.crypto.identity_pub(lp.port.crypto.ctx, id),
			 0);
	/* the flag and a total, as the recorder seals a failed session;
	 * readable without the key */
	build_meta(&b, NULL, 0, 51200, SHIM_REC_F_DEGRADED);
	assert_int_equal(read_metas(&b, 0, id, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_DEGRADED);
	assert_true(res.degraded);
	assert_int_equal(res.dropped, 51200);
	assert_int_equal(res.gaps, 0);
	free(b.buf);
	/* dropped bytes alone are enough */
	build_meta(&b, NULL, 0, 7, 0);
	assert_int_equal(read_metas(&b, 0, id, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_DEGRADED);
	free(b.buf);
	/* the flag alone too */
	build_meta(&b, NULL, 0, 0, SHIM_REC_F_DEGRADED);
	assert_int_equal(read_metas(&b, 0, id, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_DEGRADED);
	free(b.buf);
	/* unpinned wins over degraded; degraded is still reported */
	build_meta(&b, NULL, 0, 10, SHIM_REC_F_DEGRADED);
	assert_int_equal(read_metas(&b, 0, NULL, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_UNPINNED);
	assert_true(res.degraded);
	free(b.buf);
	/* other flags do not make a recording degraded */
	build_meta(&b, NULL, 0, 0, SHIM_REC_F_RECOVERED | SHIM_REC_F_OVER_BUDGET);
	assert_int_equal(read_metas(&b, 0, id, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_INTACT);
	free(b.buf);
}

/* Gap markers inside the records: totals, the per-direction form, and
 * markers that do not parse (counted, never trusted, still degraded). */
static void test_gap_markers_exact_and_malformed(void **state)
{
	static const struct meta_spec gaps[] = {
		{ "recording_gap", "300 bytes not recorded" },
		{ "recording_gap", "120 bytes not recorded (in 100, out 20)" },
		{ "recording_gap", "0 bytes not recorded (in 0, out 0)" },
		{ "recording_gap", "lots of bytes not recorded" },
		{ "recording_gap", "5 bytes not recorded (in 1, out 1)" },
		{ "recording_gap", "5 bytes not recorded (in 5, out 0) " },
		{ "recording_gap", "99999999999999999999999 bytes not recorded" },
		{ "recording_gap", "" },
		{ "recording_gapx", "1000 bytes not recorded" },
		{ "break", "technician" },
	};
	struct built b;
	struct metas m;
	struct shim_rec_result res;
	uint8_t id[SHIM_P256_PUB_LEN];

	(void)state;
	assert_int_equal(lp.port.crypto.identity_pub(lp.port.crypto.ctx, id),
			 0);
	/* a footer that says nothing was lost (a session sealed by the
	 * recovery at start has no total): the markers still tell */
	build_meta(&b, gaps, sizeof(gaps) / sizeof(gaps[0]), 0,
		   SHIM_REC_F_RECOVERED);
	assert_int_equal(read_metas(&b, 1, id, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_DEGRADED);
	assert_true(res.degraded);
	assert_int_equal(res.gaps, 8);
	assert_int_equal(res.gap_bytes, 420);
	assert_int_equal(res.gap_in, 100);
	assert_int_equal(res.gap_out, 20);
	assert_int_equal(res.gap_bad, 5);
	/* without the key the markers cannot be seen */
	assert_int_equal(read_metas(&b, 0, id, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_INTACT);
	assert_int_equal(res.gaps, 0);
	free(b.buf);
}

/* Every meta record the daemon writes, recorded through the recorder
 * (common/recorder.h) as shimd does, comes back in order with its
 * detail. */
static void test_daemon_meta_records_through_recorder(void **state)
{
	static const struct meta_spec ev[] = {
		{ "session_start", "alice@example.org" },
		{ "technician_hangup", "" },
		{ "technician_returned", "alice@example.org" },
		{ "break", "technician" },
		{ "device_logout", "logout\\r" },
		{ "device_reset", "dtr" },
		{ "recording_failed", "No space left on device" },
	};
	static const char want[] =
		"session_start|alice@example.org;technician_hangup|;"
		"technician_returned|alice@example.org;break|technician;"
		"device_logout|logout\\r;device_reset|dtr;"
		"recording_failed|No space left on device;";
	struct shim_config cfg;
	struct shim_recorder *r;
	struct shim_privkey *saved = rec_priv;
	struct metas m;
	struct shim_rec_result res;
	struct built b;
	char id[SHIM_SESSION_ID_MAX], path[256], root[128], *kp;
	uint8_t idpub[SHIM_P256_PUB_LEN], buf[8192];
	size_t i, n;
	FILE *f;

	(void)state;
	shim_config_defaults(&cfg);
	snprintf(root, sizeof(root), "%s/meta", tmpdir);
	cfg.storage_root = strdup(root);
	cfg.shim_id = strdup("shim-unit");
	cfg.sync_interval_ms = 20;
	assert_int_equal(shim_recorder_open(&r, &cfg, &lp.port, NULL, NULL), 0);
	assert_int_equal(shim_recorder_begin(r, "alice@example.org", id), 0);
	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		assert_int_equal(shim_recorder_meta(r, ev[i].name, ev[i].detail,
						    T0 + (int64_t)i * 1000,
						    5000 + (int64_t)i * 1000),
				 0);
		assert_int_equal(shim_recorder_traffic(r, SHIM_DIR_OUT,
						       (const uint8_t *)"ok",
						       2,
						       T0 + (int64_t)i * 1000 +
							       1,
						       5000 +
							       (int64_t)i * 1000 +
							       1),
				 0);
	}
	assert_int_equal(shim_recorder_end(r, "technician_disconnect",
					   T0 + 100000, 5000 + 100000),
			 0);
	shim_recorder_close(r, "shutdown");

	/* the local recording key the recorder made for itself */
	kp = shim_keys_recording_path(&cfg);
	assert_non_null(kp);
	assert_int_equal(shim_keys_load_private(kp, &rec_priv), 0);
	free(kp);
	snprintf(path, sizeof(path), "%s/sessions/%s.rec", root, id);
	f = fopen(path, "rb");
	assert_non_null(f);
	memset(&b, 0, sizeof(b));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		append(&b, buf, n);
	}
	fclose(f);
	assert_int_equal(lp.port.crypto.identity_pub(lp.port.crypto.ctx, idpub),
			 0);
	assert_int_equal(read_metas(&b, 1, idpub, &m, &res), 0);
	assert_int_equal(res.verdict, SHIM_REC_V_INTACT);
	assert_string_equal(m.text, want);
	assert_int_equal(res.bytes_out, 2 * (sizeof(ev) / sizeof(ev[0])));
	shim_keys_free(rec_priv);
	rec_priv = saved;
	free(b.buf);
	shim_config_free(&cfg);
}

/* A new session's header: its ID from the UTC start and three random
 * bytes, the IDs as given, and IDs too long refused. */
static void test_header_start(void **state)
{
	struct fake_port fp;
	struct shim_rec_header h;
	uint8_t identity[SHIM_P256_PUB_LEN];
	char tech[SHIM_REC_TECH_MAX + 2];
	size_t i;

	(void)state;
	fake_port_init(&fp, 1796207023LL); /* 2026-12-02T10:23:43Z */
	memset(identity, 0x04, sizeof(identity));
	assert_int_equal(shim_rec_header_start(&fp.port, "shim-1", "alice",
					       SHIM_REC_CUSTODY_CENTRAL,
					       identity, &h), 0);
	assert_int_equal(strlen(h.session_id), 23);
	assert_memory_equal(h.session_id, "20261202T102343Z-", 17);
	for (i = 17; i < 23; i++) {
		assert_true(shim_hexval(h.session_id[i]) >= 0);
	}
	assert_string_equal(h.shim_id, "shim-1");
	assert_string_equal(h.technician_id, "alice");
	assert_int_equal(h.version, SHIM_REC_VERSION);
	assert_int_equal(h.custody, SHIM_REC_CUSTODY_CENTRAL);
	assert_memory_equal(h.identity_pub, identity, sizeof(identity));
	memset(tech, 'a', sizeof(tech) - 1);
	tech[sizeof(tech) - 1] = '\0';
	assert_int_equal(shim_rec_header_start(&fp.port, "shim-1", tech,
					       SHIM_REC_CUSTODY_CENTRAL,
					       identity, &h), SHIM_EINVAL);
	fake_port_free(&fp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_header_start),
		cmocka_unit_test(test_round_trip_every_byte),
		cmocka_unit_test(test_header_fields_and_no_key),
		cmocka_unit_test(test_damage_flip_byte),
		cmocka_unit_test(test_damage_drop_record),
		cmocka_unit_test(test_damage_reorder),
		cmocka_unit_test(test_damage_truncate),
		cmocka_unit_test(test_torn_tail_zero_filled),
		cmocka_unit_test(test_damage_splice),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_wrong_identity),
		cmocka_unit_test(test_footer_forged),
		cmocka_unit_test(test_trailing_and_magic),
		cmocka_unit_test(test_overhead_targets),
		cmocka_unit_test(test_small_batch_buffer),
		cmocka_unit_test(test_zero_result_is_not_intact),
		cmocka_unit_test(test_verdict_pinned_unpinned_wrong),
		cmocka_unit_test(test_verdict_degraded_by_footer),
		cmocka_unit_test(test_gap_markers_exact_and_malformed),
		cmocka_unit_test(test_daemon_meta_records_through_recorder),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
