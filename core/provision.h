/*
 * The provisioning blob: what a shim without a file system (the STM32
 * firmware) needs from the YAML configuration, as bytes that shimctl
 * writes ("shimctl firmware-config") and the firmware reads at boot, from
 * a flash sector or, in QEMU, a semihosting file. docs/configuration.md,
 * "Firmware provisioning blob", has the format table.
 *
 *     blob   := header | field* | u32 crc32(header | field*)
 *     header := "SHIMPRV1" | u16 version | u16 flags (0) | u32 total_len
 *     field  := u16 type | u16 len | value[len]
 *
 * All integers are big-endian. total_len counts every byte of the blob,
 * the CRC included. A field type with SHIM_PROV_T_OPTIONAL set may be
 * skipped by a reader that does not know it; any other unknown type is
 * refused (SHIM_ENOTSUP). Each known field appears at most once, except
 * SHIM_PROV_T_TECHNICIAN, once per technician.
 *
 * The CRC finds a torn or corrupt sector; it is not a signature. The blob
 * holds the technicians' TOTP secrets in the clear: it is as sensitive as
 * the YAML it came from (file mode 0600, a read-protected flash sector),
 * and the secrets never enter the firmware image.
 *
 * Portable: no allocation, no OS. The caller owns every buffer.
 */
#ifndef SHIM_CORE_PROVISION_H
#define SHIM_CORE_PROVISION_H

#include <stddef.h>
#include <stdint.h>

#include "gate.h"
#include "port.h"

#define SHIM_PROV_MAGIC "SHIMPRV1"
#define SHIM_PROV_MAGIC_LEN 8
#define SHIM_PROV_VERSION 1
#define SHIM_PROV_HEADER_LEN 16 /* magic, version, flags, total_len */
#define SHIM_PROV_CRC_LEN 4
#define SHIM_PROV_FIELD_HDR 4   /* type, len */

/* Technicians a decoded blob may hold (arrays are sized by it). */
#ifndef SHIM_PROVISION_MAX_TECHS
#define SHIM_PROVISION_MAX_TECHS 16
#endif

/* Largest total_len a reader accepts: the format's bound, not a buffer
 * size. A blob with SHIM_PROVISION_MAX_TECHS technicians, every field at
 * its longest, needs SHIM_PROV_BLOB_MAX(SHIM_PROVISION_MAX_TECHS). */
#define SHIM_PROV_MAX_LEN 65536

#define SHIM_PROV_SHIM_ID_MAX 63   /* as shim.id in the YAML */
#define SHIM_PROV_LOGOUT_MAX 256   /* session.device_logout bytes */
#define SHIM_PROV_SECRET_MIN 10    /* decoded TOTP secret bytes */

/* Field types. */
#define SHIM_PROV_T_OPTIONAL 0x8000u  /* unknown: skip, do not refuse */
enum shim_prov_type {
	SHIM_PROV_T_SHIM_ID = 0x0001,     /* required: 1..63 id characters */
	SHIM_PROV_T_GATE = 0x0002,        /* required: 24 bytes, below */
	SHIM_PROV_T_SESSION = 0x0003,     /* required: 20 bytes, below */
	SHIM_PROV_T_LOGOUT = 0x0004,      /* 1..256 bytes for the device */
	SHIM_PROV_T_HEARTBEAT = 0x0005,   /* required: u32 period ms */
	SHIM_PROV_T_CLOCK = 0x0006,       /* u32 max_jump s (default 120) */
	SHIM_PROV_T_RECORD_KEY = 0x0007,  /* 65-byte P-256 point 04||X||Y */
	SHIM_PROV_T_RECORD_SIZE = 0x0008, /* u32 largest plaintext record */
	SHIM_PROV_T_TECHNICIAN = 0x0010,  /* u8 id_len | id | u8 sec_len | sec */
};

/*
 * GATE (24 bytes):    u8 md (0 SHA1, 1 SHA256, 2 SHA512) | u8 digits |
 *                     u8 window | u8 0 | u32 period | u32 max_failures |
 *                     u32 lockout_seconds | u32 rate_failures |
 *                     u32 rate_seconds
 * SESSION (20 bytes): u32 idle_timeout_ms | u32 max_duration_ms |
 *                     u32 reconnect_grace_ms | u32 device_reset_hold_ms |
 *                     u8 device_reset | u8 on_failure | u16 0
 */
#define SHIM_PROV_GATE_LEN 24
#define SHIM_PROV_SESSION_LEN 20

/* Bytes of the longest technician field, and of the longest blob with n
 * technicians (every optional field present, at its longest). */
#define SHIM_PROV_TECH_FIELD_MAX \
	(SHIM_PROV_FIELD_HDR + 2 + SHIM_TECH_ID_MAX + SHIM_SECRET_MAX)
#define SHIM_PROV_BLOB_MAX(n)                                               \
	(SHIM_PROV_HEADER_LEN + SHIM_PROV_CRC_LEN +                           \
	 8 * SHIM_PROV_FIELD_HDR + SHIM_PROV_SHIM_ID_MAX + SHIM_PROV_GATE_LEN + \
	 SHIM_PROV_SESSION_LEN + SHIM_PROV_LOGOUT_MAX + 4 + 4 +               \
	 SHIM_P256_PUB_LEN + 4 + (size_t)(n) * SHIM_PROV_TECH_FIELD_MAX)

/* Values match the controller's enum shim_ctl_device_reset. */
enum shim_prov_device_reset {
	SHIM_PROV_RESET_NONE = 0,
	SHIM_PROV_RESET_DTR = 1,
};

/* recording.on_failure */
enum shim_prov_on_failure {
	SHIM_PROV_ON_FAILURE_CONTINUE = 0,
	SHIM_PROV_ON_FAILURE_STOP = 1,
};

/* Why a blob was refused: one per check, for logs and tests. Never names
 * a secret byte. */
enum shim_prov_reason {
	SHIM_PROV_R_OK = 0,
	SHIM_PROV_R_ARGS,          /* NULL pointer or no room    (EINVAL)   */
	SHIM_PROV_R_TRUNCATED,     /* shorter than total_len     (ETRUNC)   */
	SHIM_PROV_R_MAGIC,         /* not "SHIMPRV1"             (ECORRUPT) */
	SHIM_PROV_R_VERSION,       /* version not 1              (ENOTSUP)  */
	SHIM_PROV_R_FLAGS,         /* flags not 0                (ENOTSUP)  */
	SHIM_PROV_R_LENGTH,        /* total_len impossible       (ERANGE)   */
	SHIM_PROV_R_TRAILING,      /* bytes after total_len      (ECORRUPT) */
	SHIM_PROV_R_CRC,           /* CRC mismatch               (ECORRUPT) */
	SHIM_PROV_R_FIELD_OVERRUN, /* a field runs past the end  (ECORRUPT) */
	SHIM_PROV_R_FIELD_LENGTH,  /* wrong length for its type  (ECORRUPT) */
	SHIM_PROV_R_UNKNOWN_FIELD, /* unknown mandatory type     (ENOTSUP)  */
	SHIM_PROV_R_DUPLICATE,     /* a single field repeated    (EEXIST)   */
	SHIM_PROV_R_MISSING,       /* a required field absent    (ENOENT)   */
	SHIM_PROV_R_SHIM_ID,       /* shim_id empty/long/bad chr (EINVAL)   */
	SHIM_PROV_R_RANGE,         /* a setting out of range     (ERANGE)   */
	SHIM_PROV_R_RECORD_KEY,    /* not an uncompressed point  (EINVAL)   */
	SHIM_PROV_R_TECH_ID,       /* id empty/long/bad chr      (EINVAL)   */
	SHIM_PROV_R_SECRET_LEN,    /* secret under 10 or over 64 (ERANGE)   */
	SHIM_PROV_R_TECH_DUP,      /* technician ID twice        (EEXIST)   */
	SHIM_PROV_R_TOO_MANY,      /* more than max_techs        (ENOSPC)   */
	SHIM_PROV_R_NO_TECH,       /* no technician at all       (ENOENT)   */
	SHIM_PROV_R_NOSPACE,       /* encoder: buffer too small  (ENOSPC)   */
	SHIM_PROV_R__COUNT,
};

/* The decoded settings. The technicians go to a caller array beside it. */
struct shim_provision {
	uint16_t version;
	char shim_id[SHIM_PROV_SHIM_ID_MAX + 1];

	/* Ready for shim_gate_init(); state_required is 0 in the blob, the
	 * firmware sets it from its own storage ("started before"). */
	struct shim_gate_cfg gate;

	/* session: */
	uint32_t idle_timeout_ms;
	uint32_t max_duration_ms;
	uint32_t reconnect_grace_ms;    /* 0 = a hang-up ends the session */
	uint32_t device_reset_hold_ms;
	enum shim_prov_device_reset device_reset;
	enum shim_prov_on_failure on_failure;
	uint8_t device_logout[SHIM_PROV_LOGOUT_MAX];
	uint16_t device_logout_len;     /* 0 = nothing sent */

	uint32_t heartbeat_period_ms;
	uint32_t clock_max_jump;        /* seconds */

	/* recording: */
	uint8_t record_key[SHIM_P256_PUB_LEN];
	int has_record_key;             /* 0: local custody, no key */
	uint32_t record_size;           /* 0: the build's record size */

	size_t ntechs;

	/* After a refusal: why, and the byte offset of the field (or of the
	 * header value) that was refused. */
	enum shim_prov_reason reason;
	uint32_t error_offset;
};

/* Fills p with the defaults of the YAML loader (the gate's via
 * shim_gate_cfg_default(), idle 900 s, max 8 h, grace 30 s, no logout,
 * no reset, hold 500 ms, on_failure continue, heartbeat 60 s, clock 120 s, no
 * key). shim_id stays empty and must be set before encoding. */
void shim_provision_defaults(struct shim_provision *p);

/*
 * Decodes and checks blob[0..len) (len is exactly the blob: the bytes
 * read from the sector or file, trimmed with shim_provision_peek_len()
 * when the medium is larger). Technicians go to techs[0..max_techs) with
 * their ID, decoded secret and secret_len set and every gate-private
 * field zero, ready for shim_gate_init(techs, out->ntechs).
 *
 * Every check is made; nothing is trusted before the CRC matched. On any
 * failure out is cleared except out->reason and out->error_offset, and
 * techs[0..max_techs) is wiped, so no half-read secret stays behind.
 * @retval 0              decoded
 * @retval SHIM_EINVAL    NULL arguments; a bad shim_id, technician ID or
 *                        record key
 * @retval SHIM_ETRUNC    shorter than its header or its total_len
 * @retval SHIM_ECORRUPT  bad magic, CRC, trailing bytes, a field that
 *                        overruns or has the wrong length
 * @retval SHIM_ENOTSUP   another version, flags, an unknown mandatory
 *                        field
 * @retval SHIM_ERANGE    total_len impossible, a setting or a secret
 *                        length out of range
 * @retval SHIM_EEXIST    a field or a technician ID repeated
 * @retval SHIM_ENOENT    a required field or every technician missing
 * @retval SHIM_ENOSPC    more technicians than max_techs
 * out->reason says which check; shim_provision_reason_str() names it.
 */
int shim_provision_decode(const uint8_t *blob, size_t len,
			  struct shim_provision *out,
			  struct shim_technician *techs, size_t max_techs);

/*
 * From the first SHIM_PROV_HEADER_LEN bytes, the blob's total_len, so a
 * reader can fetch exactly that many bytes (a flash sector is larger).
 * @retval 0 and *total set; SHIM_ETRUNC when len < SHIM_PROV_HEADER_LEN;
 * SHIM_ECORRUPT on a bad magic; SHIM_ERANGE when total_len is impossible;
 * SHIM_EINVAL on NULL arguments.
 */
int shim_provision_peek_len(const uint8_t *hdr, size_t len, size_t *total);

/*
 * Encodes p and techs[0..ntechs) into buf[0..cap). The values are checked
 * as the decoder checks them, so what encodes decodes; *why (may be NULL)
 * says what was refused. p->ntechs, reason and error_offset are ignored.
 * *out_len is set to the blob's length, also on SHIM_ENOSPC (the size
 * needed). On failure buf[0..cap) is wiped.
 * @retval 0, SHIM_ENOSPC, or the decoder's code for a value it refuses
 */
int shim_provision_encode(const struct shim_provision *p,
			  const struct shim_technician *techs, size_t ntechs,
			  uint8_t *buf, size_t cap, size_t *out_len,
			  enum shim_prov_reason *why);

/* Wipes the decoded settings and techs[0..ntechs) (secrets included).
 * Either pointer may be NULL. */
void shim_provision_wipe(struct shim_provision *p,
			 struct shim_technician *techs, size_t ntechs);

/* "bad CRC", "unknown mandatory field", ...: a static string for logs. */
const char *shim_provision_reason_str(enum shim_prov_reason r);

/* The SHIM_E* code that goes with a reason. */
int shim_provision_reason_err(enum shim_prov_reason r);

#endif
