/*
 * Reset token parser: any bytes must parse or be refused cleanly (leaving
 * nothing behind), a token that parses must name a latch, and it must
 * survive payload re-encoding unchanged.
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
		if (tok.payload_len != 0 || tok.latch_seq != 0) {
			__builtin_trap();
		}
		return 0;
	}
	if (tok.latch_seq == 0 || tok.latch_boot == 0) {
		__builtin_trap();
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
