/*
 * The Linux port's key provider (core/port.h, struct shim_keyprov_ops):
 * the device storage key is a 32-byte file under the storage root, mode
 * 0600. A board replaces this with a TPM or a secure element.
 */
#include "port_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int storage_key(void *ctx, uint8_t key[SHIM_AES256_KEY_LEN])
{
	struct shim_linux_port *lp = ctx;
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned mode = 0;
	int rc;

	if (lp->storage_key == NULL) {
		return SHIM_ENOENT;
	}
	rc = shim_read_file_opt(lp->storage_key, 64, SHIM_READ_NOFOLLOW, &buf,
				&len, &mode);
	if (rc != 0) {
		return rc;
	}
	if (len != SHIM_AES256_KEY_LEN || (mode & 077) != 0) {
		/* A key others can read is not a secret any more. */
		rc = len != SHIM_AES256_KEY_LEN ? SHIM_ECORRUPT : SHIM_EACCES;
	} else {
		memcpy(key, buf, SHIM_AES256_KEY_LEN);
	}
	shim_memzero(buf, len);
	free(buf);
	return rc;
}

int shim_linux_port_set_storage_key(struct shim_linux_port *lp,
				    const char *path)
{
	char *p = strdup(path);

	if (p == NULL) {
		return SHIM_ENOMEM;
	}
	free(lp->storage_key);
	lp->storage_key = p;
	lp->port.keys.storage_key = storage_key;
	lp->port.keys.ctx = lp;
	return 0;
}

int shim_linux_storage_key_create(const char *path)
{
	uint8_t key[SHIM_AES256_KEY_LEN];
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	rc = fchmod(fd, 0600) != 0 ? shim_err_from_errno(errno) : 0;
	if (rc == 0) {
		rc = shim_linux_random(key, sizeof(key));
	}
	if (rc == 0) {
		rc = shim_write_all(fd, key, sizeof(key));
	}
	if (rc == 0 && fsync(fd) != 0) {
		rc = shim_err_from_errno(errno);
	}
	shim_memzero(key, sizeof(key));
	close(fd);
	if (rc != 0) {
		unlink(path);
		return rc;
	}
	{
		char dir[4096];
		const char *slash = strrchr(path, '/');
		size_t n = slash == NULL ? 0 : (size_t)(slash - path);

		if (n >= sizeof(dir)) {
			return SHIM_EINVAL;
		}
		memcpy(dir, path, n);
		dir[n] = '\0';
		return shim_fsync_dir(slash == NULL ? "." : n == 0 ? "/" : dir);
	}
}
