/*
 * Fuzz target: the custody upload-state parser (common/upload_state.c).
 * The input is the state file as found on disk after a crash or
 * tampering. A parse that succeeds must format back to a file that
 * parses to the same entries.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upload_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_upload_state a, b;
	char *out = NULL;
	size_t len = 0, bad = 0, i;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (shim_upload_state_parse(&a, (const char *)data, size, &bad) != 0) {
		if (a.n != 0 || a.e != NULL) {
			abort(); /* a failed parse leaves nothing behind */
		}
		return 0;
	}
	if (shim_upload_state_format(&a, &out, &len) != 0) {
		abort();
	}
	if (shim_upload_state_parse(&b, out, len, &bad) != 0 || b.n != a.n) {
		abort();
	}
	for (i = 0; i < a.n; i++) {
		const struct shim_upload_entry *e =
			shim_upload_state_find(&b, a.e[i].session_id);

		if (e == NULL || e->size != a.e[i].size ||
		    e->delivered_s != a.e[i].delivered_s ||
		    strcmp(e->sha256, a.e[i].sha256) != 0) {
			abort();
		}
	}
	free(out);
	shim_upload_state_free(&a);
	shim_upload_state_free(&b);
	return 0;
}
