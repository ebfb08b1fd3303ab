/*
 * The firmware's session recorder: struct shim_ctl_rec_ops over the
 * record format of core/record.h, written in MCU-sized batches to
 * "sessions/<id>.part" in the state directory (a semihosting file in
 * QEMU), renamed to "sessions/<id>.rec" once the signed footer is written,
 * as common/recorder.c does on Linux. shimctl session verify reads them.
 */
#ifndef SHIM_FW_REC_H
#define SHIM_FW_REC_H

#include <stddef.h>
#include <stdint.h>

#include "controller.h"
#include "port.h"

/* Plaintext bytes per DATA record on the MCU (the format allows 64 KB). */
#ifndef SHIM_FW_REC_BATCH
#define SHIM_FW_REC_BATCH 2048
#endif
/* A batch is sealed and written at least this often while traffic flows. */
#define SHIM_FW_REC_FLUSH_NS (250 * 1000000LL)

struct shim_fw_rec;

/* Sets up the recorder for shim_id, sealing session keys to
 * recipient_pub (custody: SHIM_REC_CUSTODY_*). port must hold the
 * identity key. Fills ops. */
int shim_fw_rec_init(const struct shim_port *port, const char *shim_id,
		     const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		     int custody, struct shim_ctl_rec_ops *ops);

/* Seals the recording of a session that a power cut left open (see
 * rec.c): at the last checkpoint, with a signed footer, reason
 * power_loss_recovered. Call at boot, before the controller starts.
 * Returns 0 (session_id set, or "" when there was none) or an error. */
int shim_fw_rec_recover(const struct shim_port *port,
			char session_id[SHIM_SESSION_ID_MAX],
			uint64_t *records);

/* Seals and writes the pending batch when it is older than
 * SHIM_FW_REC_FLUSH_NS (call from the main loop). Returns 0 or the write
 * error (then report it with shim_ctl_rec_failed()). */
int shim_fw_rec_poll(int64_t mono_ns);

/* The monotonic time the next poll is due, or INT64_MAX. */
int64_t shim_fw_rec_next_due(void);

#endif
