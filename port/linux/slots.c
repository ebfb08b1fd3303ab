/*
 * Two-slot state files (slots.h).
 */
#include "slots.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "port_linux.h"
#include "util.h"

#define SLOTS_MAX (64u * 1024 * 1024)

static uint32_t slot_crc(const uint8_t *hdr, const uint8_t *payload,
			 size_t len)
{
	uint32_t crc = shim_crc32(0, hdr + 8, 12); /* seq | len */

	return shim_crc32(crc, payload, len);
}

int shim_slots_examine(const uint8_t *img, size_t len,
		       struct shim_slot_info info[2])
{
	struct shim_slot_info tmp[2];
	size_t size, i;
	int best = -1;

	if (info == NULL) {
		info = tmp;
	}
	memset(info, 0, 2 * sizeof(*info));
	if (img == NULL || len == 0 || len % (2 * SHIM_SLOT_ALIGN) != 0) {
		return SHIM_ECORRUPT;
	}
	size = len / 2;
	for (i = 0; i < 2; i++) {
		const uint8_t *h = img + i * size;
		uint32_t n = shim_get_u32(h + 16);

		info[i].seq = shim_get_u64(h + 8);
		info[i].len = n;
		info[i].off = i * size + SHIM_SLOT_HDR;
		if (memcmp(h, SHIM_SLOT_MAGIC, 8) != 0 || info[i].seq == 0 ||
		    n > size - SHIM_SLOT_HDR ||
		    shim_get_u32(h + 20) != slot_crc(h, h + SHIM_SLOT_HDR, n)) {
			continue;
		}
		info[i].valid = 1;
		if (best < 0 || info[i].seq > info[best].seq) {
			best = (int)i;
		}
	}
	return best >= 0 ? best : SHIM_ECORRUPT;
}

/* The whole file, bounded, never through a link. */
static int read_image(const char *path, int *fdp, uint8_t **img, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	*img = NULL;
	*len = 0;
	if (fd < 0 && (errno == EACCES || errno == EROFS)) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		return errno == ELOOP ? SHIM_EACCES : shim_err_from_errno(errno);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)SLOTS_MAX) {
		close(fd);
		return SHIM_ECORRUPT;
	}
	*len = (size_t)st.st_size;
	*img = malloc(*len ? *len : 1);
	if (*img == NULL) {
		close(fd);
		return SHIM_ENOMEM;
	}
	if (*len > 0 && pread(fd, *img, *len, 0) != (ssize_t)*len) {
		int rc = shim_err_from_errno(errno ? errno : EIO);

		free(*img);
		*img = NULL;
		close(fd);
		return rc;
	}
	if (fdp != NULL) {
		*fdp = fd;
	} else {
		close(fd);
	}
	return 0;
}

int shim_slots_load(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	struct shim_slot_info info[2];
	uint8_t *img;
	size_t n;
	int rc, best;

	*len = 0;
	rc = read_image(path, NULL, &img, &n);
	if (rc != 0) {
		return rc;
	}
	best = shim_slots_examine(img, n, info);
	if (best < 0) {
		free(img);
		return best;
	}
	*len = info[best].len;
	if (info[best].len > cap) {
		free(img);
		return SHIM_ENOSPC;
	}
	memcpy(buf, img + info[best].off, info[best].len);
	shim_memzero(img, n);
	free(img);
	return 0;
}

static void fill_slot(uint8_t *slot, uint64_t seq, const uint8_t *buf,
		      size_t len)
{
	memcpy(slot, SHIM_SLOT_MAGIC, 8);
	shim_put_u64(slot + 8, seq);
	shim_put_u32(slot + 16, (uint32_t)len);
	memcpy(slot + SHIM_SLOT_HDR, buf, len);
	shim_put_u32(slot + 20, slot_crc(slot, slot + SHIM_SLOT_HDR, len));
}

/* A new file with slots large enough for len, holding buf as seq in slot
 * 0 (slot 1 empty), put in place atomically. */
static int rebuild(const char *path, const uint8_t *buf, size_t len,
		   uint64_t seq)
{
	size_t size = (len + SHIM_SLOT_HDR + SHIM_SLOT_ALIGN - 1) /
		      SHIM_SLOT_ALIGN * SHIM_SLOT_ALIGN;
	uint8_t *img;
	int rc;

	if (size * 2 > SLOTS_MAX) {
		return SHIM_ENOSPC;
	}
	img = calloc(1, size * 2);
	if (img == NULL) {
		return SHIM_ENOMEM;
	}
	fill_slot(img, seq, buf, len);
	rc = shim_write_file_atomic(path, img, size * 2, 0600);
	shim_memzero(img, size * 2);
	free(img);
	return rc;
}

/* Reads slot i (header and payload) of a file of two size-byte slots
 * and says whether it is valid; *seq gets its sequence. */
static int slot_valid(int fd, size_t size, int i, uint64_t *seq)
{
	uint8_t hdr[SHIM_SLOT_HDR], *body;
	uint32_t n;
	int ok;

	*seq = 0;
	if (pread(fd, hdr, sizeof(hdr), (off_t)((size_t)i * size)) !=
	    (ssize_t)sizeof(hdr) || memcmp(hdr, SHIM_SLOT_MAGIC, 8) != 0) {
		return 0;
	}
	*seq = shim_get_u64(hdr + 8);
	n = shim_get_u32(hdr + 16);
	if (*seq == 0 || n > size - SHIM_SLOT_HDR) {
		return 0;
	}
	body = malloc(n ? n : 1);
	if (body == NULL) {
		return 0;
	}
	ok = pread(fd, body, n, (off_t)((size_t)i * size + SHIM_SLOT_HDR)) ==
		     (ssize_t)n &&
	     shim_get_u32(hdr + 20) == slot_crc(hdr, body, n);
	shim_memzero(body, n);
	free(body);
	return ok;
}

int shim_slots_save(const char *path, const uint8_t *buf, size_t len)
{
	uint8_t *slot;
	size_t size;
	struct stat st;
	uint64_t seq0 = 0, seq1 = 0, seq;
	int fd, rc, v0, v1, target;

	if (len > SLOTS_MAX / 2 - SHIM_SLOT_HDR) {
		return SHIM_ENOSPC;
	}
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ELOOP)) {
		/* None yet, or a link planted in its place: a new file,
		 * renamed over the name (never written through the link). */
		return rebuild(path, buf, len, 1);
	}
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    st.st_size > (off_t)SLOTS_MAX ||
	    st.st_size % (2 * SHIM_SLOT_ALIGN) != 0) {
		close(fd);
		return rebuild(path, buf, len, 1);
	}
	size = (size_t)st.st_size / 2;
	/* Overwrite the slot that is not the newest valid one: the slot
	 * with the higher sequence is checked first, and when it holds the
	 * other one is not read at all. A file with no valid slot is not
	 * written in place: it is replaced (the caller decided, a reset). */
	{
		uint8_t h[SHIM_SLOT_HDR];
		int first = 0;

		if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h)) {
			seq0 = shim_get_u64(h + 8);
		}
		if (pread(fd, h, sizeof(h), (off_t)size) == (ssize_t)sizeof(h)) {
			seq1 = shim_get_u64(h + 8);
		}
		first = seq1 > seq0 ? 1 : 0;
		v0 = slot_valid(fd, size, first, first ? &seq1 : &seq0);
		if (v0) {
			target = 1 - first;
			seq = (first ? seq1 : seq0) + 1;
		} else {
			v1 = slot_valid(fd, size, 1 - first, first ? &seq0 : &seq1);
			if (!v1) {
				close(fd);
				return rebuild(path, buf, len, 1);
			}
			target = first;
			seq = (first ? seq0 : seq1) + 1;
		}
	}
	if (len + SHIM_SLOT_HDR > size) {
		close(fd);
		return rebuild(path, buf, len, seq);
	}
	slot = calloc(1, len + SHIM_SLOT_HDR);
	if (slot == NULL) {
		close(fd);
		return SHIM_ENOMEM;
	}
	fill_slot(slot, seq, buf, len);
	rc = 0;
	if (pwrite(fd, slot, len + SHIM_SLOT_HDR,
		   (off_t)((size_t)target * size)) != (ssize_t)(len + SHIM_SLOT_HDR)) {
		rc = shim_err_from_errno(errno ? errno : EIO);
	} else if (fdatasync(fd) != 0) {
		rc = shim_err_from_errno(errno);
	}
	shim_memzero(slot, len + SHIM_SLOT_HDR);
	free(slot);
	close(fd);
	return rc;
}
