/*
 * Fuzz target: the spool segment reader. The input is a segment file as
 * found on disk after a crash (or tampering). It is parsed directly, then
 * placed in a spool directory and recovered through shim_spool_open(),
 * and every record the spool then hands out is read and acknowledged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "spool.h"

static uint8_t rbuf[SHIM_SPOOL_REC_MAX];
static char dir[64];

static void cb(void *arg, uint64_t off, uint64_t seq, enum shim_spool_lane lane,
	       const uint8_t *payload, size_t len)
{
	size_t *total = arg;

	(void)off;
	(void)seq;
	(void)lane;
	/* Touch every byte the parser vouched for. */
	if (len > 0) {
		*total += payload[0] + payload[len - 1];
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Empties the spool directory (no fork per input). */
static void clear_dir(const char *dir)
{
	char p[300];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			continue;
		}
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
}

static void cleanup(void)
{
	clear_dir(dir);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	struct shim_spool *sp;
	struct shim_spool_rec rec;
	size_t total = 0;
	int corrupt, fd, n = 0;
	long long end;

	end = shim_spool_parse_segment(data, size, -1, cb, &total, &corrupt);
	if (end >= 0 && (size_t)end > size) {
		abort();
	}
	if (dir[0] == '\0') {
		/* tmpfs when there is one: fsync is then nearly free. */
		snprintf(dir, sizeof(dir), "%s/fuzz_spool.%d",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
			 (int)getpid());
		atexit(cleanup);
	}
	/* The same bytes as the normal lane's only segment. */
	clear_dir(dir);
	if (shim_spool_open(&sp, dir, 0) != 0) {
		return 0;
	}
	shim_spool_close(sp);
	snprintf(path, sizeof(path), "%s/norm-0000000000000001.seg", dir);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0) {
		return 0;
	}
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	close(fd);
	if (shim_spool_open(&sp, dir, 1 << 20) != 0) {
		return 0;
	}
	while (n++ < 100000 &&
	       shim_spool_next(sp, rbuf, sizeof(rbuf), &rec) == 1) {
		if (rec.len > sizeof(rbuf)) {
			abort();
		}
		shim_spool_ack(sp, rec.lane, rec.next);
	}
	shim_spool_append(sp, SHIM_LANE_NORMAL, 1, (const uint8_t *)"x", 1);
	shim_spool_close(sp);
	return 0;
}
