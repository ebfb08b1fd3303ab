/*
 * The persisted gate state as an attacker with the storage writes it:
 * the bytes are the loaded blob of shim_gate_init(). A blob that does not
 * parse must leave the gate refusing every code; one that does must never
 * let a code through twice. Real HMAC (mbedTLS), in-memory store.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base32.h"
#include "clock.h"
#include "err.h"
#include "gate.h"
#include "otp.h"
#include "port_linux.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000LL

static struct shim_linux_port lp;
static struct shim_technician techs[2];
static uint8_t secrets[2][SHIM_SECRET_MAX];
static uint8_t secret_lens[2];
static uint8_t scratch[65536];
static uint8_t fixed[65536];
static const uint8_t *blob;
static size_t blob_len;
static int ready;

static int64_t f_clock(void *ctx)
{
	(void)ctx;
	return NOW * 1000000000LL;
}

static int f_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
		  size_t *len)
{
	(void)ctx;
	if (strcmp(name, SHIM_GATE_STATE_NAME) != 0) {
		*len = 0;
		return SHIM_ENOENT;
	}
	*len = blob_len;
	if (cap < blob_len) {
		return SHIM_ENOSPC;
	}
	memcpy(buf, blob, blob_len);
	return 0;
}

static int f_save(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)name;
	(void)buf;
	(void)len;
	return 0;
}

static void setup(void)
{
	size_t n = 0;

	shim_linux_port_init(&lp, NULL);
	lp.port.store.load = f_load;
	lp.port.store.save = f_save;
	lp.port.clock.wall_ns = f_clock;
	lp.port.clock.mono_ns = f_clock;
	shim_base32_decode("JBSWY3DPEHPK3PXP", 16, secrets[0], SHIM_SECRET_MAX, &n);
	secret_lens[0] = (uint8_t)n;
	shim_base32_decode("JFAVAU2GMUKDOMRX", 16, secrets[1], SHIM_SECRET_MAX, &n);
	secret_lens[1] = (uint8_t)n;
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_gate g;
	struct shim_gate_cfg cfg;
	struct shim_clock clock;
	struct shim_clock_cfg ccfg;
	struct shim_auth_result res;
	char code[9];
	uint32_t c;
	int rc, i;

	if (!ready) {
		setup();
	}
	if (shim_gate_scratch_size(2) > sizeof(scratch)) {
		return 0;
	}
	memset(techs, 0, sizeof(techs));
	strcpy(techs[0].id, "alice@example.org");
	strcpy(techs[1].id, "mallory");
	for (i = 0; i < 2; i++) {
		memcpy(techs[i].secret, secrets[i], SHIM_SECRET_MAX);
		techs[i].secret_len = secret_lens[i];
	}
	/* An odd first byte asks for the rest with its checksum made right,
	 * so that the parser behind the CRC is explored too. */
	if (size >= 5 && (data[0] & 1) != 0 && size - 1 <= sizeof(fixed)) {
		memcpy(fixed, data + 1, size - 1);
		shim_put_u32(fixed + size - 5, shim_crc32(0, fixed, size - 5));
		blob = fixed;
		blob_len = size - 1;
	} else {
		blob = data;
		blob_len = size;
	}
	shim_clock_cfg_default(&ccfg);
	ccfg.min_time = 1700000000LL;
	if (shim_clock_init(&clock, &ccfg, &lp.port) != 0) {
		__builtin_trap();
	}
	shim_gate_cfg_default(&cfg);
	rc = shim_gate_init(&g, &cfg, techs, 2, &lp.port, &clock, scratch,
			    sizeof(scratch));
	shim_totp(&lp.port.crypto, cfg.md, techs[0].secret, techs[0].secret_len,
		  NOW, cfg.period, cfg.digits, &c);
	shim_otp_format(c, cfg.digits, code);
	shim_gate_verify(&g, techs[0].id, strlen(techs[0].id), code,
			 strlen(code), NOW, &res);
	if (rc != 0 && res.outcome != SHIM_AUTH_STATE) {
		__builtin_trap();
	}
	if (res.outcome == SHIM_AUTH_OK) {
		/* Whatever the state said, the same code never works twice. */
		shim_gate_verify(&g, techs[0].id, strlen(techs[0].id), code,
				 strlen(code), NOW, &res);
		if (res.outcome == SHIM_AUTH_OK) {
			__builtin_trap();
		}
	}
	(void)shim_gate_lockouts(&g, NOW);
	(void)shim_gate_lockout_left(&g, "mallory", NOW);
	g.techs = NULL;
	g.ntechs = 0;
	shim_gate_wipe(&g);
	return 0;
}
