/* base32 decoder: never reads or writes out of bounds, and whatever it
 * accepts re-encodes to the same bytes. Links core/ only. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base32.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[128], back[128];
	char text[256];
	size_t n = 0, m = 0;

	if (shim_base32_decode((const char *)data, size, out, sizeof(out), &n) != 0) {
		return 0;
	}
	if (shim_base32_encode(out, n, text, sizeof(text)) != 0) {
		__builtin_trap();
	}
	if (shim_base32_decode(text, strlen(text), back, sizeof(back), &m) != 0 ||
	    m != n || memcmp(out, back, n) != 0) {
		__builtin_trap();
	}
	return 0;
}
