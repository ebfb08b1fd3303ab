/*
 * Fake port pieces for unit tests: a settable clock, an in-memory store
 * that can be told to fail, and the real mbedTLS crypto of the Linux port.
 */
#ifndef SHIM_TEST_FAKES_H
#define SHIM_TEST_FAKES_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define FAKE_STORE_SLOTS 8
#define FAKE_STORE_MAX (1024 * 1024)

struct fake_store {
	struct {
		char name[64];
		uint8_t *data;
		size_t len;
	} blobs[FAKE_STORE_SLOTS];
	int fail_save;      /* every save fails with SHIM_EIO while set */
	int fail_load;      /* every load fails with SHIM_EIO while set */
	unsigned saves;
};

struct fake_port {
	struct shim_port port;
	int64_t wall_ns;
	int64_t mono_ns;
	struct fake_store store;
};

/* Sets up a fake port: clock at wall_s, real crypto and rng. */
void fake_port_init(struct fake_port *fp, int64_t wall_s);
void fake_port_set_time(struct fake_port *fp, int64_t wall_s);
void fake_port_free(struct fake_port *fp);

/* Direct access to a stored blob (NULL if absent). */
uint8_t *fake_store_get(struct fake_port *fp, const char *name, size_t *len);

#endif
