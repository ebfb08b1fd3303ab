/*
 * Inventory and decommission record parsers: any bytes parse or are refused with a line
 * number and a reason (leaving nothing behind); a record that parses is
 * exactly what the provisioning tool writes, so its signed part formats
 * back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The decommission record, same syntax and the same promises. */
static void decommission(const uint8_t *data, size_t size)
{
	static struct shim_decommission d;
	static char again[SHIM_INV_MAX + 1];
	const char *why = NULL;
	size_t len = 0;
	int line = 0;

	if (shim_decom_parse((const char *)data, size, &d, &line, &why) != 0) {
		if (why == NULL || line < 1 || d.when != 0 || d.is_signed) {
			__builtin_trap();
		}
		return;
	}
	if (shim_decom_format(&d, again, sizeof(again), &len) != 0 ||
	    len > size || memcmp(again, data, len) != 0 ||
	    (!d.is_signed && len != size)) {
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shim_inventory r;
	static char again[SHIM_INV_MAX + 1];
	const char *why = NULL;
	size_t len = 0;
	int line = 0;

	decommission(data, size);
	if (shim_inv_parse((const char *)data, size, &r, &line, &why) != 0) {
		if (why == NULL || line < 1 || r.build != SHIM_INV_BUILD_UNKNOWN ||
		    r.serial[0] != '\0' || r.is_signed) {
			__builtin_trap();
		}
		return 0;
	}
	if (r.build == SHIM_INV_BUILD_UNKNOWN || r.serial[0] == '\0' ||
	    r.identity_pub[0] != 0x04) {
		__builtin_trap();
	}
	if (shim_inv_format(&r, again, sizeof(again), &len) != 0 ||
	    len > size || memcmp(again, data, len) != 0 ||
	    (!r.is_signed && len != size)) {
		__builtin_trap();
	}
	return 0;
}
