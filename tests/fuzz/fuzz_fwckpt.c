/*
 * The firmware recorder's checkpoint (firmware/stm32f4/ckpt.c), read from
 * the unit's storage at boot: every input is decoded without reading out
 * of bounds, and whatever decodes encodes back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../firmware/stm32f4/ckpt.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_fw_ckpt c, d;
	uint8_t out[SHIM_FW_CKPT_LEN];
	size_t n;
	int rc;

	rc = shim_fw_ckpt_decode(data, size, &c);
	if (rc == SHIM_ENOENT) {
		if (shim_fw_ckpt_encode(NULL, out) != size ||
		    memcmp(out, data, size) != 0) {
			abort();
		}
		return 0;
	}
	if (rc != 0) {
		return 0;
	}
	if (strlen(c.id) == 0 || strlen(c.id) > SHIM_REC_ID_MAX) {
		abort();
	}
	n = shim_fw_ckpt_encode(&c, out);
	if (n != size || memcmp(out, data, size) != 0) {
		abort();
	}
	if (shim_fw_ckpt_decode(out, n, &d) != 0 || memcmp(&c, &d, sizeof(c))) {
		abort();
	}
	return 0;
}
