/*
 * CRC-32 (IEEE 802.3, the recording's frame checksum) on the CPU's
 * carry-less multiply instruction, where it has one (x86-64 PCLMULQDQ,
 * detected at run time): blocks of 64 bytes are folded into 128 bits, then
 * reduced (Barrett). The same value as shim_crc32(0, buf, len).
 * shim_crc32_accel_available() says 0 elsewhere, and the crypto ops then
 * leave the checksum to core's tables.
 */
#ifndef SHIM_PORT_CRC32_ACCEL_H
#define SHIM_PORT_CRC32_ACCEL_H

#include <stddef.h>
#include <stdint.h>

int shim_crc32_accel_available(void);
/* CRC-32 of buf; only when shim_crc32_accel_available(). */
uint32_t shim_crc32_accel(const uint8_t *buf, size_t len);

#endif
