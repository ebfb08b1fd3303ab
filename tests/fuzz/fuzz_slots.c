/*
 * The two-slot state file's reader (port/linux/slots.h): any file image
 * either has no valid slot or names one whose payload lies inside the
 * image and whose checksum holds; the pick is the valid slot with the
 * higher sequence.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "slots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t img[2 * SHIM_SLOT_ALIGN];
	struct shim_slot_info info[2];
	size_t half = size / 2, n;
	int best, other;

	/* The input fills the head of each slot of a two-slot image (the
	 * rest stays zero), so the fuzzer reaches valid slots within the
	 * run's input size; odd sizes test an image that is not two
	 * slots. */
	memset(img, 0, sizeof(img));
	memcpy(img, data, half < SHIM_SLOT_ALIGN ? half : SHIM_SLOT_ALIGN);
	n = size - half < SHIM_SLOT_ALIGN ? size - half : SHIM_SLOT_ALIGN;
	memcpy(img + SHIM_SLOT_ALIGN, data + half, n);
	size = size % 2 ? sizeof(img) - 1 : sizeof(img);
	data = img;
	best = shim_slots_examine(data, size, info);

	if (best < 0) {
		if (info[0].valid || info[1].valid) {
			__builtin_trap();
		}
		return 0;
	}
	if (best > 1 || !info[best].valid ||
	    info[best].off + info[best].len > size) {
		__builtin_trap();
	}
	other = 1 - best;
	if (info[other].valid && info[other].seq > info[best].seq) {
		__builtin_trap();
	}
	return 0;
}
