/*
 * The Linux port: fills struct shim_port with clocks, getrandom(2),
 * mbedTLS crypto and files with fsync + atomic rename.
 */
#ifndef SHIM_PORT_LINUX_H
#define SHIM_PORT_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

struct shim_linux_port {
	struct shim_port port;
	char *state_dir;           /* where store blobs live */
	void *identity;            /* mbedtls_pk_context *, or NULL */
};

/* Sets up the port. state_dir (may be NULL for a port without storage) is
 * created 0700 if missing. Identity key: see shim_linux_port_load_identity. */
int shim_linux_port_init(struct shim_linux_port *lp, const char *state_dir);

/* Loads the device identity key (PEM, P-256) from path. */
int shim_linux_port_load_identity(struct shim_linux_port *lp,
				  const char *path);

void shim_linux_port_fini(struct shim_linux_port *lp);

/* Clock helpers usable without a port. */
int64_t shim_linux_wall_ns(void);
int64_t shim_linux_mono_ns(void);

/* Fills buf from getrandom(2). */
int shim_linux_random(uint8_t *buf, size_t len);

/* Writes a file atomically and durably: temporary file in the same
 * directory, write, fsync, rename, fsync of the directory. mode is used
 * for the new file (0600 for anything holding secrets). */
int shim_write_file_atomic(const char *path, const uint8_t *buf, size_t len,
			   unsigned mode);

/* Reads a whole file (at most max bytes) into a malloc'd buffer with a
 * NUL after the data. */
int shim_read_file(const char *path, size_t max, uint8_t **out,
		   size_t *out_len);

/* Creates a directory and its parents with mode. */
int shim_mkdir_p(const char *path, unsigned mode);

/* Writes all len bytes to fd, retrying on EINTR and short writes. */
int shim_write_all(int fd, const void *buf, size_t len);

/* fsync(2) of a directory, so that entries created or renamed in it are
 * durable. */
int shim_fsync_dir(const char *dir);

/* Maps an errno value to a SHIM_E* code. */
int shim_err_from_errno(int e);

#endif
