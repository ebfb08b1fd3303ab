/*
 * Break-glass parsers: the code text a technician types, the verify-key
 * and master files, and the persisted marks. Any bytes must parse or be
 * refused cleanly (leaving nothing behind); a code that parses must
 * format back to a text that parses to the same fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "breakglass.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] != 0) {
			return 0;
		}
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shim_bg bg;
	struct shim_bg_code code, again;
	struct shim_bg_key key;
	uint8_t master[SHIM_BG_KEY_LEN];
	char text[SHIM_BG_TEXT_LEN + 1];
	unsigned line;
	size_t len;

	if (shim_bg_parse((const char *)data, size, &code) != 0) {
		if (!all_zero(&code, sizeof(code))) {
			__builtin_trap();
		}
	} else {
		if (shim_bg_format(&code, text) != 0 ||
		    shim_bg_parse(text, strlen(text), &again) != 0 ||
		    memcmp(&code, &again, sizeof(code)) != 0) {
			__builtin_trap();
		}
	}
	if (shim_bg_key_parse((const char *)data, size, &key, &line) != 0) {
		if (key.loaded || !all_zero(&key, sizeof(key))) {
			__builtin_trap();
		}
	} else if (!key.loaded || key.shim_id[0] == '\0') {
		__builtin_trap();
	}
	if (shim_bg_master_parse((const char *)data, size, master, &line) != 0 &&
	    !all_zero(master, sizeof(master))) {
		__builtin_trap();
	}
	memset(&bg, 0, sizeof(bg));
	if (shim_bg_state_decode(&bg, data, size) == 0) {
		/* what decoded encodes back to the same bytes */
		if (shim_bg_state_encode(&bg, &len) != 0 || len != size ||
		    memcmp(bg.blob, data, size) != 0) {
			__builtin_trap();
		}
	} else if (!all_zero(bg.marks, sizeof(bg.marks)) || bg.not_before != 0) {
		__builtin_trap();
	}
	return 0;
}
