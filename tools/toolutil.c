#include "toolutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tool_load_config(const char *path, struct shim_config *cfg, int optional)
{
	struct shim_config_diag diag = { stderr, 0, 0, 1 };

	if (optional && access(path, F_OK) != 0) {
		shim_config_defaults(cfg);
		return 1;
	}
	if (shim_config_load(cfg, path, &diag) != 0) {
		return -1;
	}
	return 0;
}

const char *tool_opt(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], name) == 0 && i + 1 < argc) {
			return argv[i + 1];
		}
		if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') {
			return argv[i] + n + 1;
		}
	}
	return NULL;
}

int tool_flag(int argc, char **argv, const char *name)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], name) == 0) {
			return 1;
		}
	}
	return 0;
}

int tool_shred(const char *path)
{
	static const char zeros[4096];
	struct stat st;
	off_t left;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	for (left = st.st_size; left > 0 && rc == 0;) {
		size_t n = left > (off_t)sizeof(zeros) ? sizeof(zeros) :
							 (size_t)left;
		ssize_t w = write(fd, zeros, n);

		if (w <= 0) {
			rc = -1;
		} else {
			left -= w;
		}
	}
	if (fsync(fd) != 0) {
		rc = -1;
	}
	close(fd);
	return unlink(path) == 0 ? rc : -1;
}
