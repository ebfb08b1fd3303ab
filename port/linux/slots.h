/*
 * Two-slot state files: the Linux port's durable small-state store
 * (core/port.h, struct shim_store_ops). A blob lives in <name>.slots, a
 * file of two equal slots made once (and again only when a blob outgrows
 * them). Each save overwrites the slot that does not hold the newest
 * valid copy, in place, with one pwrite and one fdatasync: no rename, no
 * directory sync, no metadata. A write torn by a power cut fails its
 * checksum and the other slot (the previous copy) is read; so after a
 * crash either the old or the new content is found, never a mix.
 *
 *     slot  := header | payload | zero padding up to the slot size
 *     header:= "SHSLOT1\0" | u64 seq | u32 len | u32 crc32(seq | len | payload)
 *
 * Integers are big-endian; seq starts at 1 and grows by one per save; the
 * slot size is a multiple of 4096 and the file is exactly two slots.
 */
#ifndef SHIM_PORT_LINUX_SLOTS_H
#define SHIM_PORT_LINUX_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#define SHIM_SLOT_MAGIC "SHSLOT1"
#define SHIM_SLOT_HDR 24
#define SHIM_SLOT_ALIGN 4096u

/* What one slot of a file image holds. */
struct shim_slot_info {
	int valid;       /* header and checksum good */
	uint64_t seq;
	uint32_t len;
	size_t off;      /* of the payload in the image */
};

/* Examines a whole file image (two slots). Returns the index (0 or 1) of
 * the newest valid slot, or SHIM_ECORRUPT when neither is valid or the
 * image is not two equal aligned slots. info (may be NULL) gets both. */
int shim_slots_examine(const uint8_t *img, size_t len,
		       struct shim_slot_info info[2]);

/* Reads the newest valid copy into buf. SHIM_ENOENT without the file,
 * SHIM_ENOSPC (with *len set) when cap is short, SHIM_ECORRUPT when no
 * slot is valid. */
int shim_slots_load(const char *path, uint8_t *buf, size_t cap, size_t *len);

/* Saves buf durably (one fdatasync) as the next copy. Creates the file
 * (0600, exclusively, never through a link) when missing, and rebuilds it
 * with larger slots when buf does not fit. */
int shim_slots_save(const char *path, const uint8_t *buf, size_t len);

#endif
