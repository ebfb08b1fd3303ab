/*
 * Linux port: clocks, getrandom(2), durable files and the blob store.
 */
#include "port_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int shim_err_from_errno(int e)
{
	switch (e) {
	case 0:
		return SHIM_OK;
	case ENOENT:
	case ENOTDIR:
		return SHIM_ENOENT;
	case EEXIST:
		return SHIM_EEXIST;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return SHIM_ENOSPC;
	case ENOMEM:
		return SHIM_ENOMEM;
	case EACCES:
	case EPERM:
	case EROFS:
		return SHIM_EACCES;
	case EAGAIN:
	case EINTR:
		return SHIM_EAGAIN;
	case EINVAL:
		return SHIM_EINVAL;
	case ETIMEDOUT:
		return SHIM_ETIMEDOUT;
	case EPIPE:
	case ECONNRESET:
	case EIO:
		return SHIM_EIO;
	default:
		return SHIM_EIO;
	}
}

int64_t shim_linux_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t shim_linux_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t port_wall_ns(void *ctx)
{
	(void)ctx;
	return shim_linux_wall_ns();
}

static int64_t port_mono_ns(void *ctx)
{
	(void)ctx;
	return shim_linux_mono_ns();
}

int shim_linux_random(uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = getrandom(buf, len, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return shim_err_from_errno(errno);
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int port_random(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	return shim_linux_random(buf, len);
}

int shim_mkdir_p(const char *path, unsigned mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	size_t i;

	if (len == 0 || len >= sizeof(tmp)) {
		return SHIM_EINVAL;
	}
	memcpy(tmp, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (tmp[i] == '/' || tmp[i] == '\0') {
			char c = tmp[i];

			tmp[i] = '\0';
			if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) {
				return shim_err_from_errno(errno);
			}
			tmp[i] = c;
		}
	}
	return 0;
}

int shim_fsync_dir(const char *dir)
{
	int fd, rc = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	if (fsync(fd) != 0) {
		rc = shim_err_from_errno(errno);
	}
	close(fd);
	return rc;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		return shim_fsync_dir(".");
	}
	n = (size_t)(slash - path);
	if (n == 0) {
		n = 1;
	}
	if (n >= sizeof(dir)) {
		return SHIM_EINVAL;
	}
	memcpy(dir, path, n);
	dir[n] = '\0';
	return shim_fsync_dir(dir);
}

int shim_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return shim_err_from_errno(errno);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int shim_write_file_atomic(const char *path, const uint8_t *buf, size_t len,
			   unsigned mode)
{
	char tmp[PATH_MAX];
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		return SHIM_EINVAL;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	/* The mode given to open() is masked by the umask; secrets must not
	 * depend on the caller's umask. */
	if (fchmod(fd, (mode_t)mode) != 0) {
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	rc = shim_write_all(fd, buf, len);
	if (rc != 0) {
		goto fail;
	}
	if (fsync(fd) != 0) {
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	return fsync_dir_of(path);
fail:
	if (fd >= 0) {
		close(fd);
	}
	unlink(tmp);
	return rc;
}

int shim_read_file(const char *path, size_t max, uint8_t **out,
		   size_t *out_len)
{
	int fd, rc = 0;
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0;

	*out = NULL;
	*out_len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	if (fstat(fd, &st) != 0) {
		rc = shim_err_from_errno(errno);
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = SHIM_ENOSPC;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			rc = shim_err_from_errno(errno);
			goto out;
		}
		if (n == 0) {
			break;
		}
		off += (size_t)n;
	}
	buf[off] = '\0';
	*out = buf;
	*out_len = off;
	buf = NULL; /* transferred */
out:
	free(buf);
	close(fd);
	return rc;
}

static int blob_path(const struct shim_linux_port *lp, const char *name,
		     char *out, size_t cap)
{
	const char *p;

	if (lp->state_dir == NULL) {
		return SHIM_ENOTSUP;
	}
	for (p = name; *p != '\0'; p++) {
		if (*p == '/' || (p == name && *p == '.')) {
			return SHIM_EINVAL;
		}
	}
	if (snprintf(out, cap, "%s/%s", lp->state_dir, name) >= (int)cap) {
		return SHIM_EINVAL;
	}
	return 0;
}

static int store_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
		      size_t *len)
{
	struct shim_linux_port *lp = ctx;
	char path[PATH_MAX];
	uint8_t *data;
	size_t n;
	int rc;

	*len = 0;
	rc = blob_path(lp, name, path, sizeof(path));
	if (rc != 0) {
		return rc;
	}
	rc = shim_read_file(path, 64u * 1024 * 1024, &data, &n);
	if (rc != 0) {
		return rc;
	}
	*len = n;
	if (n > cap) {
		free(data);
		return SHIM_ENOSPC;
	}
	memcpy(buf, data, n);
	free(data);
	return 0;
}

static int store_save(void *ctx, const char *name, const uint8_t *buf,
		      size_t len)
{
	struct shim_linux_port *lp = ctx;
	char path[PATH_MAX];
	int rc;

	rc = blob_path(lp, name, path, sizeof(path));
	if (rc != 0) {
		return rc;
	}
	return shim_write_file_atomic(path, buf, len, 0600);
}

/* Defined in crypto.c. */
void shim__linux_crypto_ops(struct shim_linux_port *lp);

int shim_linux_port_init(struct shim_linux_port *lp, const char *state_dir)
{
	int rc;

	memset(lp, 0, sizeof(*lp));
	lp->port.clock.wall_ns = port_wall_ns;
	lp->port.clock.mono_ns = port_mono_ns;
	lp->port.rng.fill = port_random;
	lp->port.store.load = store_load;
	lp->port.store.save = store_save;
	lp->port.store.ctx = lp;
	if (state_dir != NULL) {
		lp->state_dir = strdup(state_dir);
		if (lp->state_dir == NULL) {
			return SHIM_ENOMEM;
		}
		rc = shim_mkdir_p(state_dir, 0700);
		if (rc != 0) {
			return rc;
		}
	}
	shim__linux_crypto_ops(lp);
	return 0;
}
