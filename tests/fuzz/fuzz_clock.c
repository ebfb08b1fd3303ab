/*
 * The persisted clock floor as an attacker with the storage writes it:
 * the bytes go through shim_clock_decode() and, as the loaded blob,
 * through shim_clock_init() and a few checks, on a fake clock. A blob
 * that does not parse must leave the clock UNTRUSTED; one that does must
 * give a verdict and never crash. Linked against core/ only.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *blob;
static size_t blob_len;
static int64_t wall_ns, mono_ns;

static int64_t f_wall(void *ctx)
{
	(void)ctx;
	return wall_ns;
}

static int64_t f_mono(void *ctx)
{
	(void)ctx;
	return mono_ns;
}

static int f_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
		  size_t *len)
{
	(void)ctx;
	(void)name;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_port port;
	struct shim_clock c;
	struct shim_clock_cfg cfg;
	struct shim_clock_report r;
	int64_t floor = 0, now;
	int rc, drc;

	memset(&port, 0, sizeof(port));
	port.clock.wall_ns = f_wall;
	port.clock.mono_ns = f_mono;
	port.store.load = f_load;
	port.store.save = f_save;
	blob = data;
	blob_len = size;

	drc = shim_clock_decode(data, size, &floor);
	if (drc != 0 && floor != 0) {
		__builtin_trap();
	}
	if (drc == 0) {
		uint8_t again[SHIM_CLOCK_BLOB_LEN];

		/* What parses is exactly what encodes. */
		shim_clock_encode(floor, again);
		if (size != sizeof(again) || memcmp(again, data, size) != 0) {
			__builtin_trap();
		}
	}

	shim_clock_cfg_default(&cfg);
	cfg.min_time = 1700000000LL;
	wall_ns = 1800000000LL * 1000000000LL;
	mono_ns = 7;
	rc = shim_clock_init(&c, &cfg, &port);
	if (drc != 0) {
		if (rc == 0 || shim_clock_check(&c, &r) != SHIM_CLOCK_UNTRUSTED ||
		    shim_clock_trusted_now(&c, &now) != SHIM_ECLOCK) {
			__builtin_trap();
		}
		return 0;
	}
	if (rc != 0) {
		__builtin_trap();
	}
	/* Walk the clock about: far ahead, far back, overflow territory. */
	if (shim_clock_check(&c, &r) == SHIM_CLOCK_UNKNOWN) {
		__builtin_trap();
	}
	wall_ns = INT64_MAX;
	(void)shim_clock_check(&c, &r);
	(void)shim_clock_save(&c);
	wall_ns = INT64_MIN;
	mono_ns = INT64_MAX;
	(void)shim_clock_check(&c, &r);
	if (shim_clock_trusted_now(&c, &now) == 0 && now < cfg.min_time) {
		__builtin_trap();
	}
	return 0;
}
