#include "fakes.h"

#include <stdlib.h>
#include <string.h>

#include "port_linux.h"

static struct shim_linux_port real;
static int real_ready;

static int64_t fake_wall(void *ctx)
{
	return ((struct fake_port *)ctx)->wall_ns;
}

static int64_t fake_mono(void *ctx)
{
	return ((struct fake_port *)ctx)->mono_ns;
}

static int fake_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
		     size_t *len)
{
	struct fake_port *fp = ctx;
	int i;

	if (fp->store.fail_load) {
		return SHIM_EIO;
	}
	for (i = 0; i < FAKE_STORE_SLOTS; i++) {
		if (fp->store.blobs[i].data != NULL &&
		    strcmp(fp->store.blobs[i].name, name) == 0) {
			*len = fp->store.blobs[i].len;
			if (cap < *len) {
				return SHIM_ENOSPC;
			}
			memcpy(buf, fp->store.blobs[i].data, *len);
			return 0;
		}
	}
	return SHIM_ENOENT;
}

static int fake_save(void *ctx, const char *name, const uint8_t *buf,
		     size_t len)
{
	struct fake_port *fp = ctx;
	int i, free_slot = -1;

	if (fp->store.fail_save) {
		return SHIM_EIO;
	}
	for (i = 0; i < FAKE_STORE_SLOTS; i++) {
		if (fp->store.blobs[i].data != NULL &&
		    strcmp(fp->store.blobs[i].name, name) == 0) {
			break;
		}
		if (fp->store.blobs[i].data == NULL && free_slot < 0) {
			free_slot = i;
		}
	}
	if (i == FAKE_STORE_SLOTS) {
		if (free_slot < 0) {
			return SHIM_ENOSPC;
		}
		i = free_slot;
		strncpy(fp->store.blobs[i].name, name,
			sizeof(fp->store.blobs[i].name) - 1);
	}
	free(fp->store.blobs[i].data);
	fp->store.blobs[i].data = malloc(len ? len : 1);
	if (fp->store.blobs[i].data == NULL) {
		return SHIM_ENOMEM;
	}
	memcpy(fp->store.blobs[i].data, buf, len);
	fp->store.blobs[i].len = len;
	fp->store.saves++;
	return 0;
}

void fake_port_init(struct fake_port *fp, int64_t wall_s)
{
	memset(fp, 0, sizeof(*fp));
	if (!real_ready) {
		shim_linux_port_init(&real, NULL);
		real_ready = 1;
	}
	fp->port = real.port;
	fp->port.clock.wall_ns = fake_wall;
	fp->port.clock.mono_ns = fake_mono;
	fp->port.clock.ctx = fp;
	fp->port.store.load = fake_load;
	fp->port.store.save = fake_save;
	fp->port.store.ctx = fp;
	fake_port_set_time(fp, wall_s);
}

void fake_port_set_time(struct fake_port *fp, int64_t wall_s)
{
	fp->wall_ns = wall_s * 1000000000LL;
	fp->mono_ns = wall_s * 1000000000LL;
}

uint8_t *fake_store_get(struct fake_port *fp, const char *name, size_t *len)
{
	int i;

	for (i = 0; i < FAKE_STORE_SLOTS; i++) {
		if (fp->store.blobs[i].data != NULL &&
		    strcmp(fp->store.blobs[i].name, name) == 0) {
			*len = fp->store.blobs[i].len;
			return fp->store.blobs[i].data;
		}
	}
	return NULL;
}

void fake_port_free(struct fake_port *fp)
{
	int i;

	for (i = 0; i < FAKE_STORE_SLOTS; i++) {
		free(fp->store.blobs[i].data);
		fp->store.blobs[i].data = NULL;
	}
}
