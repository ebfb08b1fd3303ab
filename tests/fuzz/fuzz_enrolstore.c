/*
 * The sealed enrolment store's parsers (core/enrolstore.h): any bytes are
 * either refused (leaving no technician behind) or parse into a set that
 * formats and parses back to the same set; any bytes given as a sealed
 * container are refused or open only with the right key, never read out
 * of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "enrolstore.h"
#include "port_linux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct shim_enrol_set a, b;
static char text[SHIM_ENROL_TEXT_MAX];
static uint8_t out[SHIM_ENROL_TEXT_MAX];

static void container(const uint8_t *data, size_t size)
{
	static struct shim_linux_port lp;
	static int ready;
	static const uint8_t key[SHIM_AES256_KEY_LEN] = { 1, 2, 3 };
	size_t len = 0;
	int kind;

	if (!ready) {
		shim_linux_port_init(&lp, NULL);
		ready = 1;
	}
	kind = shim_enrol_kind(data, size);
	if (kind < 0) {
		if (shim_enrol_open_local(&lp.port.crypto, key, data, size, out,
					  sizeof(out), &len) == 0) {
			__builtin_trap();
		}
		return;
	}
	if (kind != SHIM_ENROL_LOCAL && kind != SHIM_ENROL_TO_PUB) {
		__builtin_trap();
	}
	/* Random bytes never carry a valid tag under this key. */
	if (shim_enrol_open_local(&lp.port.crypto, key, data, size, out,
				  sizeof(out), &len) == 0) {
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t line = 0, len = 0;
	uint32_t i;

	container(data, size);
	if (shim_enrol_parse((const char *)data, size, &a, &line) != 0) {
		static const struct shim_enrol_set zero;

		if (line < 1 || memcmp(&a, &zero, sizeof(a)) != 0) {
			__builtin_trap();
		}
		return 0;
	}
	if (a.n > SHIM_ENROL_MAX ||
	    shim_enrol_format(&a, text, sizeof(text), &len) != 0 ||
	    shim_enrol_parse(text, len, &b, &line) != 0 || a.n != b.n ||
	    strcmp(a.shim_id, b.shim_id) != 0 || a.created != b.created) {
		__builtin_trap();
	}
	for (i = 0; i < a.n; i++) {
		if (memcmp(&a.t[i], &b.t[i], sizeof(a.t[i])) != 0) {
			__builtin_trap();
		}
	}
	return 0;
}
