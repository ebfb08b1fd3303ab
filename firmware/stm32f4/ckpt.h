/*
 * The recorder's checkpoint (rec.c): what a power-loss recovery needs to
 * seal an open session without reading its file back. Portable: encoded
 * and decoded here, stored through the store port.
 *
 *   u8 version (1) | u8 id_len | id[63] (zero-padded) | u64 written |
 *   u64 records | u64 bytes_in | u64 bytes_out | chain[32] |
 *   i64 start_wall_ns | i64 start_mono_ns | i64 last_mono_ns
 *
 * big-endian; a single byte 0 means "no session open".
 */
#ifndef SHIM_FW_CKPT_H
#define SHIM_FW_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define SHIM_FW_CKPT_VERSION 1
#define SHIM_FW_CKPT_LEN \
	(2 + SHIM_REC_ID_MAX + 4 * 8 + SHIM_REC_HASH_LEN + 3 * 8)

struct shim_fw_ckpt {
	char id[SHIM_REC_ID_MAX + 1]; /* [0-9A-Za-z-], as the recorder names */
	uint64_t written;             /* bytes of whole frames in the file */
	uint64_t records;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint8_t chain[SHIM_REC_HASH_LEN];
	int64_t start_wall_ns;
	int64_t start_mono_ns;
	int64_t last_mono_ns;
};

/* Encodes c (NULL: "no session open") into out; returns the length. */
size_t shim_fw_ckpt_encode(const struct shim_fw_ckpt *c,
			   uint8_t out[SHIM_FW_CKPT_LEN]);

/* Decodes buf[0..len). 0 with *c filled; SHIM_ENOENT for "no session
 * open"; SHIM_ECORRUPT for anything else (c is then zeroed). */
int shim_fw_ckpt_decode(const uint8_t *buf, size_t len,
			struct shim_fw_ckpt *c);

#endif
