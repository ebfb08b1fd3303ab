/*
 * The session recording format, version 1 (docs/recording-format.md).
 *
 * A recording is the 8-byte magic followed by frames:
 *
 *     frame := u32 body_len | body | u32 crc32(body_len || body)
 *
 * The first frame is the header (clear), then DATA frames (the traffic,
 * AES-256-GCM under a per-session key), then one FOOTER frame (clear,
 * signed by the device identity key). Every frame extends a SHA-256 chain
 *
 *     chain_0 = SHA-256("SHIMREC chain v1" || magic || header frame)
 *     chain_i = SHA-256(chain_{i-1} || frame_i)
 *
 * and each DATA frame authenticates chain_{i-1} and its sequence number,
 * so a record that is altered, dropped, reordered or taken from another
 * session fails to open (with the key) and breaks the chain head that the
 * footer signs (without the key).
 *
 * Everything here writes into caller buffers and never allocates.
 */
#ifndef SHIM_CORE_RECORD_H
#define SHIM_CORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define SHIM_REC_MAGIC "SHIMREC\0"
#define SHIM_REC_MAGIC_LEN 8
#define SHIM_REC_VERSION 1

#define SHIM_REC_ID_MAX 63     /* session ID, shim ID */
#define SHIM_REC_TECH_MAX 127  /* technician ID */
#define SHIM_REC_REASON_MAX 63 /* footer terminal reason */
#define SHIM_REC_HASH_LEN 32
#define SHIM_REC_KEY_LEN 32

/* Largest plaintext of one DATA record, and the largest frame body. */
#define SHIM_REC_MAX_PLAIN 65536
#define SHIM_REC_MAX_BODY (SHIM_REC_MAX_PLAIN + 64)
/* Bytes a frame adds around its body (length and CRC). */
#define SHIM_REC_FRAME_OVERHEAD 8
/* Buffer a reader needs: one frame body plus its decrypted plaintext. */
#define SHIM_REC_READER_BUF (2 * SHIM_REC_MAX_BODY + 16)
/* Room a header or footer frame (with magic) can take. */
#define SHIM_REC_HEADER_MAX 1024
#define SHIM_REC_FOOTER_MAX 512

enum shim_rec_type {
	SHIM_REC_HEADER = 1,
	SHIM_REC_DATA = 2,
	SHIM_REC_FOOTER = 3,
};

/* Items inside a DATA record. */
#define SHIM_SESSION_ID_MAX 64

/* A relayed chunk's direction. */
enum shim_rec_dir {
	SHIM_DIR_IN = 0,  /* technician -> device */
	SHIM_DIR_OUT = 1, /* device -> technician */
};

enum shim_rec_kind {
	SHIM_REC_IN = 0,   /* traffic technician -> device */
	SHIM_REC_OUT = 1,  /* traffic device -> technician */
	SHIM_REC_META = 2, /* event inside the session: name NUL detail */
};

/* How the session key is sealed. */
#define SHIM_REC_SEAL_P256_HKDF_AESGCM 1
/* Who holds the recording private key. */
#define SHIM_REC_CUSTODY_CENTRAL 0
#define SHIM_REC_CUSTODY_LOCAL 1

/* Footer flags. */
#define SHIM_REC_F_DEGRADED 0x1   /* recording failed; bytes were dropped */
#define SHIM_REC_F_OVER_BUDGET 0x2 /* storage budget exceeded in session */
#define SHIM_REC_F_RECOVERED 0x4  /* sealed at start after a power loss */
#define SHIM_REC_F_DAMAGED 0x8    /* recovery cut a damaged (not torn) tail */
#define SHIM_REC_F_BREAKGLASS 0x10 /* opened by a break-glass code */

struct shim_rec_header {
	uint16_t version;
	char session_id[SHIM_REC_ID_MAX + 1];
	char shim_id[SHIM_REC_ID_MAX + 1];
	char technician_id[SHIM_REC_TECH_MAX + 1];
	int64_t start_wall_ns;
	int64_t start_mono_ns;
	uint8_t seal_alg;
	uint8_t custody;
	uint8_t recipient_id[SHIM_REC_HASH_LEN]; /* SHA-256 of recipient pub */
	uint8_t eph_pub[SHIM_P256_PUB_LEN];
	uint8_t sealed_key[SHIM_REC_KEY_LEN];
	uint8_t sealed_tag[SHIM_GCM_TAG_LEN];
	uint8_t identity_pub[SHIM_P256_PUB_LEN];
};

struct shim_rec_footer {
	int64_t end_wall_ns;
	int64_t end_mono_ns;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t records;      /* DATA records before the footer */
	uint64_t dropped;      /* traffic bytes not recorded (failure) */
	uint64_t cut;          /* bytes cut from the tail at recovery */
	uint32_t flags;        /* SHIM_REC_F_* */
	char reason[SHIM_REC_REASON_MAX + 1];
	uint8_t chain_head[SHIM_REC_HASH_LEN];
	uint8_t sig[SHIM_P256_SIG_LEN];
};

/* One decoded item, handed to the reader's item callback. */
struct shim_rec_item {
	enum shim_rec_kind kind;
	int64_t wall_ns;
	int64_t mono_ns;
	const uint8_t *data; /* traffic bytes, or "name\0detail" for META */
	size_t len;
	uint64_t record;     /* index of the DATA record (0-based) */
};

/* ---- HKDF-SHA256 (RFC 5869) over the crypto port's HMAC ------------- */

int shim_hkdf_sha256(const struct shim_crypto_ops *c, const uint8_t *salt,
		     size_t salt_len, const uint8_t *ikm, size_t ikm_len,
		     const uint8_t *info, size_t info_len, uint8_t *out,
		     size_t out_len);

/* ---- session key sealing ------------------------------------------- */

/* Seals key to recipient_pub: ephemeral ECDH, HKDF-SHA256, AES-256-GCM.
 * Fills h->seal_alg, recipient_id, eph_pub, sealed_key, sealed_tag; the
 * session ID, shim ID and technician ID must already be set in h. */
int shim_rec_seal_key(const struct shim_crypto_ops *c,
		      const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		      const uint8_t key[SHIM_REC_KEY_LEN],
		      struct shim_rec_header *h);

/* The same with the ephemeral ECDH done beforehand: eph_pub and shared
 * (x coordinate) come from one fresh ecdh_ephemeral() against
 * recipient_pub and must be used for one session only. */
int shim_rec_seal_key_shared(const struct shim_crypto_ops *c,
			     const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
			     const uint8_t eph_pub[SHIM_P256_PUB_LEN],
			     const uint8_t shared[32],
			     const uint8_t key[SHIM_REC_KEY_LEN],
			     struct shim_rec_header *h);

/* Opens the sealed key given the ECDH shared secret (x coordinate) of the
 * recipient private key and h->eph_pub, and the recipient public key.
 * SHIM_ECRYPTO when it does not open (wrong key or altered header). */
int shim_rec_unseal_key(const struct shim_crypto_ops *c,
			const struct shim_rec_header *h,
			const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
			const uint8_t shared[32], uint8_t key[SHIM_REC_KEY_LEN]);

/* ---- writer ---------------------------------------------------------- */

/* Consecutive traffic chunks of one direction closer than this share one
 * item (the item keeps the time of its first chunk). */
#define SHIM_REC_COALESCE_NS 1000000LL

struct shim_rec_writer {
	/* private */
	const struct shim_crypto_ops *crypto;
	uint8_t key[SHIM_REC_KEY_LEN];
	uint8_t chain[SHIM_REC_HASH_LEN];
	uint64_t records;
	uint64_t bytes_in;
	uint64_t bytes_out;
	int64_t start_mono;
	int64_t prev_wall;        /* time of the previous encoded item */
	int64_t prev_mono;
	int64_t last_wall;        /* time of the latest chunk */
	int64_t last_mono;
	uint8_t *plain;           /* caller's batch buffer */
	size_t plain_cap;         /* its size, <= SHIM_REC_MAX_PLAIN */
	size_t plain_len;
	uint64_t batch_in;
	uint64_t batch_out;
	/* open traffic item: its data sits at plain[open_data] */
	int open;
	enum shim_rec_kind open_kind;
	size_t open_data;
	size_t open_len;
	int64_t open_wall;
	int64_t open_mono;
	int64_t open_last_mono;
};

/* Fills the header of a new session: version, start times from the
 * port's clocks, a session ID "YYYYMMDDTHHMMSSZ-xxxxxx" (UTC start, three
 * random bytes), the shim and technician IDs, custody and the identity
 * key. The caller then seals a fresh session key into it. SHIM_EINVAL for
 * an ID too long, SHIM_ECLOCK for a wall time outside 0000..9999. */
int shim_rec_header_start(const struct shim_port *port, const char *shim_id,
			  const char *technician, int custody,
			  const uint8_t identity[SHIM_P256_PUB_LEN],
			  struct shim_rec_header *h);

/* Encodes magic + header frame into out. */
int shim_rec_header_encode(const struct shim_rec_header *h, uint8_t *out,
			   size_t cap, size_t *len);

/* The smallest batch buffer a writer takes. */
#define SHIM_REC_MIN_PLAIN 256

/* Starts a writer after the header (whose encoded bytes, with magic, are
 * hdr/hdr_len). plain is the caller's batch buffer of plain_cap bytes,
 * SHIM_REC_MIN_PLAIN..SHIM_REC_MAX_PLAIN (a reader takes any batch up to
 * the maximum, so an MCU can use a small one); a batch never grows past
 * it. The key is copied and wiped by shim_rec_writer_wipe(), which also
 * wipes the batch buffer. */
int shim_rec_writer_init(struct shim_rec_writer *w,
			 const struct shim_crypto_ops *c,
			 const uint8_t key[SHIM_REC_KEY_LEN],
			 const struct shim_rec_header *h, const uint8_t *hdr,
			 size_t hdr_len, uint8_t *plain, size_t plain_cap);

/* Adds an item to the current batch. SHIM_ENOSPC when the batch has no
 * room for it (seal first; an item larger than a batch must be split by
 * the caller: at most shim_rec_writer_room() bytes fit). */
int shim_rec_writer_add(struct shim_rec_writer *w, enum shim_rec_kind kind,
			const uint8_t *data, size_t len, int64_t wall_ns,
			int64_t mono_ns);

/* Payload bytes a new item can still take in the current batch. */
size_t shim_rec_writer_room(const struct shim_rec_writer *w);

/* Plaintext bytes waiting in the current batch (0 when empty). */
size_t shim_rec_writer_pending(const struct shim_rec_writer *w);

/* Encrypts the batch into one DATA frame in out (cap >=
 * shim_rec_writer_pending() + 64) and advances the chain. With an empty
 * batch *len is 0 and nothing changes. */
int shim_rec_writer_seal(struct shim_rec_writer *w, uint8_t *out, size_t cap,
			 size_t *len);

/* Fills the counts, records and chain head of f from the writer. */
void shim_rec_writer_summary(const struct shim_rec_writer *w,
			     struct shim_rec_footer *f);

void shim_rec_writer_wipe(struct shim_rec_writer *w);

/* Signs f (chain_head, records and counts set by the caller) with the
 * identity key and encodes the FOOTER frame into out. */
int shim_rec_footer_encode(const struct shim_crypto_ops *c,
			   struct shim_rec_footer *f, uint8_t *out, size_t cap,
			   size_t *len);

/* ---- reader ---------------------------------------------------------- */

/* A zeroed result never reads as complete: 0 is "not classified". */
enum shim_rec_status {
	SHIM_REC_UNCLASSIFIED = 0, /* finish has not run */
	SHIM_REC_COMPLETE,     /* header, records, valid signed footer */
	SHIM_REC_UNSEALED,     /* ends after a whole record, no footer */
	SHIM_REC_TORN,         /* ends inside a record: torn tail */
	SHIM_REC_CORRUPT,      /* damaged: see damage */
};

#define SHIM_REC_DAMAGE_MAP(XX)                                              \
	XX(OK, "intact")                                                     \
	XX(EMPTY, "file is empty")                                           \
	XX(BAD_MAGIC, "not a session recording (bad magic)")                 \
	XX(BAD_VERSION, "unsupported recording format version")             \
	XX(BAD_HEADER, "header is damaged")                                  \
	XX(BAD_FRAME, "record framing is damaged")                           \
	XX(BAD_CRC, "record checksum mismatch (altered or damaged bytes)")   \
	XX(RECORD_AUTH,                                                      \
	   "record does not authenticate (altered, dropped, reordered or "   \
	   "spliced record)")                                                \
	XX(BAD_RECORD, "record content is malformed")                       \
	XX(COUNT, "record count differs from the footer (records dropped "   \
		  "or added)")                                               \
	XX(CHAIN, "chain head differs from the footer (records altered, "    \
		  "reordered or spliced)")                                   \
	XX(BYTES, "byte counts differ from the footer")                     \
	XX(SIG, "footer signature does not verify")                         \
	XX(IDENTITY, "footer signed by a different device identity")        \
	XX(TRAILING, "data after the footer")                                \
	XX(TORN, "torn tail (incomplete last record)")                      \
	XX(NO_FOOTER, "no footer (session open or cut short)")

enum shim_rec_damage {
#define SHIM__REC_DMG_ENUM(name, msg) SHIM_REC_D_##name,
	SHIM_REC_DAMAGE_MAP(SHIM__REC_DMG_ENUM)
#undef SHIM__REC_DMG_ENUM
	SHIM_REC_D__COUNT
};

const char *shim_rec_damage_str(int damage);
const char *shim_rec_damage_name(int damage);

/* What an investigator may conclude, set by shim_rec_reader_finish. The
 * zero value is "not classified", never intact. */
enum shim_rec_verdict {
	SHIM_REC_V_NONE = 0,  /* finish has not run */
	SHIM_REC_V_INTACT,    /* complete, signer pinned, nothing lost */
	SHIM_REC_V_DEGRADED,  /* complete and pinned, but traffic went
			       * unrecorded (see degraded, dropped, gap_*) */
	SHIM_REC_V_UNPINNED,  /* complete, but no expected identity was
			       * given: any key could have signed it */
	SHIM_REC_V_FAILED,    /* not complete: see status and damage */
};

/* Name of the meta item that marks a hole left by a write failure; its
 * detail is "N bytes not recorded", optionally followed by
 * " (in I, out O)" with I + O = N (docs/recording-format.md). */
#define SHIM_REC_GAP_EVENT "recording_gap"

struct shim_rec_result {
	enum shim_rec_verdict verdict;
	enum shim_rec_status status;
	enum shim_rec_damage damage;
	uint64_t offset;      /* where the damage or torn tail starts */
	uint64_t record;      /* DATA record index at the damage */
	uint64_t good_end;    /* end of the last intact frame: a safe cut */
	uint64_t total;       /* bytes fed */
	uint64_t records;     /* intact DATA records */
	uint64_t bytes_in;    /* traffic bytes in intact records */
	uint64_t bytes_out;
	int64_t last_end_ms;  /* last record's end, ms after start */
	uint8_t chain[SHIM_REC_HASH_LEN]; /* chain at good_end */
	int have_header;
	int have_footer;
	int decrypted;        /* every record was opened with the key */
	int pinned;           /* the footer's signer was compared with an
			       * expected identity */
	/* Traffic that was not recorded. degraded is set by the footer's
	 * SHIM_REC_F_DEGRADED flag, by dropped bytes in the footer, or by a
	 * gap marker in the records (the last needs the key). */
	int degraded;
	uint64_t dropped;     /* the footer's total (0 without a footer) */
	uint64_t gaps;        /* recording_gap items read (with the key) */
	uint64_t gap_bytes;   /* bytes they report, in total */
	uint64_t gap_in;      /* of which markers name technician -> device */
	uint64_t gap_out;     /* of which markers name device -> technician */
	uint64_t gap_bad;     /* markers whose byte count is unreadable */
};

struct shim_rec_reader_cb {
	/* Called once the header is read; may call shim_rec_reader_set_key.
	 * A non-zero return stops the reader with that code. */
	int (*header)(void *arg, const struct shim_rec_header *h);
	/* Called for every decoded item (only with a key set). */
	int (*item)(void *arg, const struct shim_rec_item *it);
	/* Called once the footer has been read and checked. */
	int (*footer)(void *arg, const struct shim_rec_footer *f);
	void *arg;
};

struct shim_rec_reader {
	/* read-only after feed/finish */
	struct shim_rec_header hdr;
	struct shim_rec_footer ftr;
	struct shim_rec_result res;
	/* private */
	const struct shim_crypto_ops *crypto;
	struct shim_rec_reader_cb cb;
	uint8_t *buf;
	size_t cap;
	size_t have;          /* bytes of the current frame (or magic) */
	size_t need;          /* bytes the current frame needs */
	int state;
	uint64_t pos;         /* bytes consumed so far */
	uint64_t frame_off;   /* offset of the frame being read */
	uint8_t key[SHIM_REC_KEY_LEN];
	int have_key;
	int64_t prev_wall;
	int64_t prev_mono;
	int cb_err;
	/* damage seen mid-stream, classified at finish */
	uint64_t bad_end;     /* end of a bad frame, or 0 if unknown */
	int bad_len_zero;
	int nonzero_after;
};

/* buf must hold SHIM_REC_READER_BUF bytes; cb may be NULL. */
void shim_rec_reader_init(struct shim_rec_reader *r,
			  const struct shim_crypto_ops *c,
			  const struct shim_rec_reader_cb *cb, uint8_t *buf,
			  size_t cap);

/* Sets the session key so DATA records are opened and items decoded. */
void shim_rec_reader_set_key(struct shim_rec_reader *r,
			     const uint8_t key[SHIM_REC_KEY_LEN]);

/* Feeds the next bytes of the file. Returns 0 while the stream is
 * readable, or a negative code once it is known to be damaged or a
 * callback failed (further input is counted and ignored). */
int shim_rec_reader_feed(struct shim_rec_reader *r, const uint8_t *data,
			 size_t len);

/* Ends the stream and classifies it. expect_identity (may be NULL) is
 * the device identity public key the footer must be signed by. Returns
 * 0 for COMPLETE, otherwise a negative code (SHIM_ETRUNC for unsealed or
 * torn, SHIM_ECORRUPT, SHIM_ECHAIN, SHIM_ESIG, SHIM_ECRYPTO); *res (may
 * be NULL) says precisely what and where. A COMPLETE stream is intact
 * only when res->verdict is SHIM_REC_V_INTACT: without expect_identity
 * it is SHIM_REC_V_UNPINNED, and with unrecorded traffic
 * SHIM_REC_V_DEGRADED. */
int shim_rec_reader_finish(struct shim_rec_reader *r,
			   const uint8_t *expect_identity,
			   struct shim_rec_result *res);

void shim_rec_reader_wipe(struct shim_rec_reader *r);

#endif
