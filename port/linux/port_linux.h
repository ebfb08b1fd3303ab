/*
 * The Linux port: fills struct shim_port with clocks, getrandom(2),
 * mbedTLS crypto and files with fsync + atomic rename.
 */
#ifndef SHIM_PORT_LINUX_H
#define SHIM_PORT_LINUX_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"
#include "crypto.h" /* port/mbedtls: the shared mbedTLS crypto ops */

struct shim_linux_port {
	struct shim_port port;
	char *state_dir;           /* where store blobs live */
	void *identity;            /* mbedtls_pk_context *, or NULL */
	char *storage_key;         /* path of the storage key file, or NULL */
	struct shim_mbedtls_crypto mbc; /* ctx of port.crypto */
	unsigned legacy_gone;      /* per slot store: no single file left */
};

/* Sets up the port. state_dir (may be NULL for a port without storage) is
 * created 0700 if missing. Identity key: see shim_linux_port_load_identity. */
int shim_linux_port_init(struct shim_linux_port *lp, const char *state_dir);

/* Loads the device identity key (PEM, P-256) from path. */
int shim_linux_port_load_identity(struct shim_linux_port *lp,
				  const char *path);

/* The key provider of the Linux port: the storage key is the 32 bytes of
 * the file at path (mode 0600, no symbolic link, owned by the caller or
 * root). The file is read when the key is asked for, and the copy is
 * the caller's to wipe. */
int shim_linux_port_set_storage_key(struct shim_linux_port *lp,
				    const char *path);

/* Creates a fresh storage key file at path (0600, O_EXCL|O_NOFOLLOW).
 * SHIM_EEXIST when there is one already. */
int shim_linux_storage_key_create(const char *path);

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
 * NUL after the data. Follows a symbolic link (configuration files may be
 * links); storage files are read with shim_read_file_opt(). */
int shim_read_file(const char *path, size_t max, uint8_t **out,
		   size_t *out_len);

/* Flags for shim_read_file_opt(). */
#define SHIM_READ_NOFOLLOW 1u /* refuse a symbolic link: SHIM_EACCES */

/* Like shim_read_file(); only a regular file is read (anything else is
 * SHIM_EINVAL). When mode is not NULL it receives the st_mode permission
 * bits (07777) of the file that was read, taken from the open descriptor,
 * so the check and the read are of the same file. */
int shim_read_file_opt(const char *path, size_t max, unsigned flags,
		       uint8_t **out, size_t *out_len, unsigned *mode);

/* Creates "<prefix>.<16 random hex digits>" with
 * O_CREAT|O_EXCL|O_NOFOLLOW (never an existing file, never through a
 * link) and exactly mode (whatever the umask); returns its descriptor
 * (O_WRONLY, close-on-exec) and puts the name in out. A negative SHIM_E*
 * on failure. */
int shim_create_temp(const char *prefix, char *out, size_t cap, unsigned mode);

/* Creates a directory and its parents with mode. The last component must
 * end up a real directory: a symbolic link or another file there is
 * refused (SHIM_EACCES). */
int shim_mkdir_p(const char *path, unsigned mode);

/* Checks that the storage root can be trusted: the root and every
 * directory below it must be owned by the effective user and not be
 * writable by group or others, and no symbolic link may be inside it;
 * each directory above the root must be owned by root or the effective
 * user and not writable by group or others unless sticky (/tmp).
 * Returns 0, or a negative SHIM_E* with a one-line reason naming the
 * path, its owner and mode in why (NUL-terminated, cap > 0). */
int shim_storage_check(const char *root, char *why, size_t cap);

/* Writes all len bytes to fd, retrying on EINTR and short writes. */
int shim_write_all(int fd, const void *buf, size_t len);

/* fsync(2) of a directory, so that entries created or renamed in it are
 * durable. */
int shim_fsync_dir(const char *dir);

/* Maps an errno value to a SHIM_E* code. */
int shim_err_from_errno(int e);

#endif
