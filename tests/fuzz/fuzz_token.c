/*
 * Reset token parser: any bytes must parse or be refused cleanly, and a
 * token that parses must survive payload re-encoding unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tamper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shim_reset_token tok, again;

	if (shim_token_parse((const char *)data, size, &tok) != 0) {
		return 0;
	}
	/* What parsed must be what the issuer would have written. */
	again = tok;
	if (shim_token_make_payload(&again) != 0 ||
	    again.payload_len != tok.payload_len ||
	    memcmp(again.payload, tok.payload, tok.payload_len) != 0) {
		__builtin_trap();
	}
	return 0;
}
