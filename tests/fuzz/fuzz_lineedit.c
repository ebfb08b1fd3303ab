/*
 * The technician's line as an attacker types it: bytes through the
 * CHALLENGE line editor, each completed (or overflowed) line through
 * shim_gate_verify_line() with a real gate (mbedTLS HMAC, in-memory state).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base32.h"
#include "err.h"
#include "gate.h"
#include "lineedit.h"
#include "port_linux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct shim_linux_port lp;
static struct shim_technician techs[2];
static uint8_t scratch[65536];
static int ready;
static int64_t fuzz_ns;

/* Wall and monotonic clocks move together with the harness's "now". */
static int64_t fuzz_clock(void *ctx)
{
	(void)ctx;
	return fuzz_ns;
}

static int mem_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
		    size_t *len)
{
	(void)ctx; (void)name; (void)buf; (void)cap;
	*len = 0;
	return SHIM_ENOENT;
}

static int mem_save(void *ctx, const char *name, const uint8_t *buf,
		    size_t len)
{
	(void)ctx; (void)name; (void)buf; (void)len;
	return 0;
}

static void setup(void)
{
	size_t n = 0;

	shim_linux_port_init(&lp, NULL);
	lp.port.store.load = mem_load;
	lp.port.store.save = mem_save;
	lp.port.clock.wall_ns = fuzz_clock;
	lp.port.clock.mono_ns = fuzz_clock;
	strcpy(techs[0].id, "alice@example.org");
	shim_base32_decode("JBSWY3DPEHPK3PXP", 16, techs[0].secret,
			   sizeof(techs[0].secret), &n);
	techs[0].secret_len = (uint8_t)n;
	strcpy(techs[1].id, "bob");
	shim_base32_decode("JFAVAU2GMUKDOMRX", 16, techs[1].secret,
			   sizeof(techs[1].secret), &n);
	techs[1].secret_len = (uint8_t)n;
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_gate g;
	struct shim_gate_cfg cfg;
	struct shim_clock clock;
	struct shim_clock_cfg ccfg;
	struct shim_lineedit le;
	struct shim_auth_result res;
	uint8_t echo[SHIM_LE_ECHO_MAX];
	size_t i, elen, len;
	int64_t now = 1790000000;

	if (!ready) {
		setup();
	}
	if (shim_gate_scratch_size(2) > sizeof(scratch)) {
		return 0;
	}
	techs[0].last_step = techs[1].last_step = 0;
	fuzz_ns = now * 1000000000LL;
	shim_clock_cfg_default(&ccfg);
	ccfg.min_time = 0;
	if (shim_clock_init(&clock, &ccfg, &lp.port) < 0) {
		return 0;
	}
	shim_gate_cfg_default(&cfg);
	if (shim_gate_init(&g, &cfg, techs, 2, &lp.port, &clock, scratch,
			   sizeof(scratch)) < 0) {
		return 0;
	}
	shim_lineedit_init(&le);
	for (i = 0; i < size; i++) {
		enum shim_le_result r = shim_lineedit_byte(&le, data[i], echo, &elen);

		if (elen > SHIM_LE_ECHO_MAX) {
			__builtin_trap();
		}
		if (r == SHIM_LE_LINE) {
			const uint8_t *line = shim_lineedit_line(&le, &len);

			if (len > SHIM_LINE_MAX) {
				__builtin_trap();
			}
			shim_gate_verify_line(&g, (const char *)line, len, now, &res);
			if (res.outcome == SHIM_AUTH_OK &&
			    (res.tech < 0 || res.tech > 1)) {
				__builtin_trap();
			}
			shim_lineedit_reset(&le);
			now += 7;
			fuzz_ns = now * 1000000000LL;
		} else if (r == SHIM_LE_OVERFLOW) {
			shim_gate_verify_line(&g, "", 0, now, &res);
		}
	}
	shim_lineedit_init(&le);
	/* the gate wipe also wipes the table: restore secrets next time */
	g.techs = NULL;
	g.ntechs = 0;
	shim_gate_wipe(&g);
	return 0;
}
