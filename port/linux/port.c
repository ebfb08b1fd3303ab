/*
 * Linux port: clocks, getrandom(2), durable files and the blob store.
 */
#include "port_linux.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "slots.h"
#include "util.h"

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
	struct stat st;
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
	/* mkdir() says EEXIST for a symbolic link too: the directory that
	 * files are then created in must be the real one. */
	if (lstat(path, &st) != 0) {
		return shim_err_from_errno(errno);
	}
	if (!S_ISDIR(st.st_mode)) {
		return SHIM_EACCES;
	}
	return 0;
}

/* ---- storage trust --------------------------------------------------- */

static void owner_name(uid_t uid, char *out, size_t cap)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
		snprintf(out, cap, "%s (uid %lu)", res->pw_name,
			 (unsigned long)uid);
	} else {
		snprintf(out, cap, "uid %lu", (unsigned long)uid);
	}
}

static int distrust(char *why, size_t cap, const char *path,
		    const struct stat *st, const char *problem)
{
	char owner[128], me[128];

	owner_name(st->st_uid, owner, sizeof(owner));
	owner_name(geteuid(), me, sizeof(me));
	snprintf(why, cap,
		 "storage %s: %s (owner %s, mode %04o); it must be a directory "
		 "owned by %s and not writable by group or others", path,
		 problem, owner, (unsigned)(st->st_mode & 07777), me);
	return SHIM_EACCES;
}

/* The root and each directory below it: ours, not group/other-writable;
 * no symbolic links anywhere (a link is how a file outside the storage
 * would be reached). fd is an open directory; it is closed here. */
static int check_tree(int fd, char *path, size_t plen, size_t pcap, int depth,
		      char *why, size_t cap)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (fstat(fd, &st) != 0) {
		rc = shim_err_from_errno(errno);
		snprintf(why, cap, "storage %s: %s", path, shim_strerror(rc));
		close(fd);
		return rc;
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return distrust(why, cap, path, &st,
				"owned by another user");
	}
	if ((st.st_mode & 022) != 0) {
		close(fd);
		return distrust(why, cap, path, &st,
				"writable by group or others");
	}
	if (depth > 8) {
		close(fd);
		return distrust(why, cap, path, &st, "nested too deep");
	}
	d = fdopendir(fd);
	if (d == NULL) {
		rc = shim_err_from_errno(errno);
		snprintf(why, cap, "storage %s: %s", path, shim_strerror(rc));
		close(fd);
		return rc;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		size_t n;
		int sub;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0) {
			continue;
		}
		n = strlen(de->d_name);
		if (plen + 1 + n >= pcap) {
			snprintf(why, cap, "storage %s: path too long", path);
			rc = SHIM_EINVAL;
			break;
		}
		path[plen] = '/';
		memcpy(path + plen + 1, de->d_name, n + 1);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
		    0) {
			if (errno != ENOENT) {
				rc = shim_err_from_errno(errno);
				snprintf(why, cap, "storage %s: %s", path,
					 shim_strerror(rc));
			}
		} else if (S_ISLNK(st.st_mode)) {
			rc = distrust(why, cap, path, &st,
				      "is a symbolic link");
		} else if (S_ISDIR(st.st_mode) && st.st_uid != geteuid()) {
			/* said before opening it: without capabilities
			 * another user's 0700 directory cannot be opened */
			rc = distrust(why, cap, path, &st,
				      "owned by another user");
		} else if (S_ISDIR(st.st_mode)) {
			sub = openat(dirfd(d), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
			if (sub < 0) {
				rc = shim_err_from_errno(errno);
				snprintf(why, cap, "storage %s: %s", path,
					 shim_strerror(rc));
			} else {
				rc = check_tree(sub, path, plen + 1 + n, pcap,
						depth + 1, why, cap);
			}
		}
		path[plen] = '\0';
	}
	closedir(d);
	return rc;
}

int shim_storage_check(const char *root, char *why, size_t cap)
{
	char path[PATH_MAX];
	size_t len, i;
	struct stat st;
	int fd;

	if (why == NULL || cap == 0) {
		return SHIM_EINVAL;
	}
	why[0] = '\0';
	if (root == NULL || root[0] == '\0' ||
	    (len = strlen(root)) >= sizeof(path)) {
		snprintf(why, cap, "storage: no usable storage root");
		return SHIM_EINVAL;
	}
	memcpy(path, root, len + 1);
	while (len > 1 && path[len - 1] == '/') {
		path[--len] = '\0';
	}
	/* Above the root: whoever may write there may swap the root. */
	for (i = 1; i < len; i++) {
		if (path[i] != '/') {
			continue;
		}
		path[i] = '\0';
		if (stat(path, &st) != 0) {
			int rc = shim_err_from_errno(errno);

			snprintf(why, cap, "storage %s: %s", path,
				 shim_strerror(rc));
			return rc;
		}
		if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
		    ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)) {
			char owner[128], me[128];

			owner_name(st.st_uid, owner, sizeof(owner));
			owner_name(geteuid(), me, sizeof(me));
			snprintf(why, cap,
				 "storage %s (above the root %s): owner %s, "
				 "mode %04o; it must be owned by root or %s and "
				 "not writable by group or others unless sticky",
				 path, root, owner,
				 (unsigned)(st.st_mode & 07777), me);
			return SHIM_EACCES;
		}
		path[i] = '/';
	}
	if (lstat(path, &st) != 0) {
		int rc = shim_err_from_errno(errno);

		snprintf(why, cap, "storage %s: %s", path, shim_strerror(rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		return distrust(why, cap, path, &st,
				S_ISLNK(st.st_mode) ? "is a symbolic link"
						    : "is not a directory");
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int rc = shim_err_from_errno(errno);

		snprintf(why, cap, "storage %s: %s", path, shim_strerror(rc));
		return rc;
	}
	return check_tree(fd, path, len, sizeof(path), 0, why, cap);
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

int shim_create_temp(const char *prefix, char *out, size_t cap, unsigned mode)
{
	uint8_t rnd[8];
	char hex[17];
	int attempt, fd, rc;

	for (attempt = 0; attempt < 8; attempt++) {
		rc = shim_linux_random(rnd, sizeof(rnd));
		if (rc != 0) {
			return rc;
		}
		shim_hex_encode(rnd, sizeof(rnd), hex);
		if (snprintf(out, cap, "%s.%s", prefix, hex) >= (int)cap) {
			return SHIM_EINVAL;
		}
		fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				       O_CLOEXEC, (mode_t)mode);
		if (fd < 0 && errno == EEXIST) {
			continue;
		}
		if (fd < 0) {
			return shim_err_from_errno(errno);
		}
		/* The mode given to open() is masked by the umask; secrets
		 * must not depend on the caller's umask. */
		if (fchmod(fd, (mode_t)mode) != 0) {
			rc = shim_err_from_errno(errno);
			close(fd);
			unlink(out);
			return rc;
		}
		return fd;
	}
	return SHIM_EEXIST;
}

int shim_write_file_atomic(const char *path, const uint8_t *buf, size_t len,
			   unsigned mode)
{
	char tmp[PATH_MAX], prefix[PATH_MAX];
	int fd, rc = 0;

	/* A fresh, unguessable name created exclusively: a name planted
	 * beforehand (a link to a file elsewhere) is never opened. */
	if (snprintf(prefix, sizeof(prefix), "%s.tmp", path) >=
	    (int)sizeof(prefix)) {
		return SHIM_EINVAL;
	}
	fd = shim_create_temp(prefix, tmp, sizeof(tmp), mode);
	if (fd < 0) {
		return fd;
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
	/* rename() replaces a link at path itself, never its target. */
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
	return shim_read_file_opt(path, max, 0, out, out_len, NULL);
}

int shim_read_file_opt(const char *path, size_t max, unsigned flags,
		       uint8_t **out, size_t *out_len, unsigned *mode)
{
	int fd, rc = 0;
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0;

	*out = NULL;
	*out_len = 0;
	if (mode != NULL) {
		*mode = 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
				(flags & SHIM_READ_NOFOLLOW ? O_NOFOLLOW : 0));
	if (fd < 0) {
		return errno == ELOOP ? SHIM_EACCES : shim_err_from_errno(errno);
	}
	if (fstat(fd, &st) != 0) {
		rc = shim_err_from_errno(errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = SHIM_EINVAL;
		goto out;
	}
	if (mode != NULL) {
		*mode = (unsigned)(st.st_mode & 07777);
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

/* The blobs saved on the way to a technician's success line (the replay
 * marks and the clock floor) live in two-slot files (slots.h): one
 * fdatasync each. The others keep one file replaced by rename. Returns
 * 0 for those, else the blob's bit number in legacy_gone (1 or 2). */
static int in_slots(const char *name)
{
	return strcmp(name, "gate-state") == 0 ? 1 :
	       strcmp(name, "clock") == 0      ? 2 : 0;
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
	/* The two-slot file; the single file of earlier versions is read
	 * until the first save replaces it. */
	if (in_slots(name)) {
		if (strlen(path) + 7 > sizeof(path)) {
			return SHIM_EINVAL;
		}
		strcat(path, ".slots");
		rc = shim_slots_load(path, buf, cap, len);
		if (rc != SHIM_ENOENT) {
			return rc;
		}
		path[strlen(path) - 6] = '\0';
	}
	rc = shim_read_file_opt(path, 64u * 1024 * 1024, SHIM_READ_NOFOLLOW,
				&data, &n, NULL);
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
	int rc, slot;

	rc = blob_path(lp, name, path, sizeof(path));
	if (rc != 0) {
		return rc;
	}
	slot = in_slots(name);
	if (slot == 0) {
		return shim_write_file_atomic(path, buf, len, 0600);
	}
	if (strlen(path) + 7 > sizeof(path)) {
		return SHIM_EINVAL;
	}
	strcat(path, ".slots");
	rc = shim_slots_save(path, buf, len);
	if (rc == 0 && !(lp->legacy_gone & (1u << slot))) {
		/* The single file of earlier versions, now replaced: looked
		 * for once, not at every save. */
		path[strlen(path) - 6] = '\0';
		if (unlink(path) == 0) {
			(void)fsync_dir_of(path);
			lp->legacy_gone |= 1u << slot;
		} else if (errno == ENOENT) {
			lp->legacy_gone |= 1u << slot;
		}
	}
	return rc;
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
