/*
 * The recorder's checkpoint format (ckpt.h).
 */
#include "ckpt.h"

#include <string.h>

#include "err.h"
#include "util.h"

static int id_char(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	       (c >= 'a' && c <= 'z') || c == '-';
}

size_t shim_fw_ckpt_encode(const struct shim_fw_ckpt *c,
			   uint8_t out[SHIM_FW_CKPT_LEN])
{
	uint8_t *p = out;
	size_t n;

	if (c == NULL) {
		out[0] = 0;
		return 1;
	}
	memset(out, 0, SHIM_FW_CKPT_LEN);
	n = strlen(c->id);
	n = n > SHIM_REC_ID_MAX ? SHIM_REC_ID_MAX : n;
	*p++ = SHIM_FW_CKPT_VERSION;
	*p++ = (uint8_t)n;
	memcpy(p, c->id, n);
	p += SHIM_REC_ID_MAX;
	shim_put_u64(p, c->written);
	shim_put_u64(p + 8, c->records);
	shim_put_u64(p + 16, c->bytes_in);
	shim_put_u64(p + 24, c->bytes_out);
	p += 32;
	memcpy(p, c->chain, SHIM_REC_HASH_LEN);
	p += SHIM_REC_HASH_LEN;
	shim_put_u64(p, (uint64_t)c->start_wall_ns);
	shim_put_u64(p + 8, (uint64_t)c->start_mono_ns);
	shim_put_u64(p + 16, (uint64_t)c->last_mono_ns);
	return SHIM_FW_CKPT_LEN;
}

int shim_fw_ckpt_decode(const uint8_t *buf, size_t len,
			struct shim_fw_ckpt *c)
{
	const uint8_t *p;
	size_t n, i;

	memset(c, 0, sizeof(*c));
	if (buf == NULL || len == 0) {
		return SHIM_ECORRUPT;
	}
	if (len == 1 && buf[0] == 0) {
		return SHIM_ENOENT;
	}
	if (len != SHIM_FW_CKPT_LEN || buf[0] != SHIM_FW_CKPT_VERSION) {
		return SHIM_ECORRUPT;
	}
	n = buf[1];
	if (n == 0 || n > SHIM_REC_ID_MAX) {
		return SHIM_ECORRUPT;
	}
	/* The ID names a file: only the characters the recorder uses, and
	 * zero padding after it. */
	for (i = 0; i < SHIM_REC_ID_MAX; i++) {
		uint8_t ch = buf[2 + i];

		if (i < n ? !id_char(ch) : ch != 0) {
			return SHIM_ECORRUPT;
		}
	}
	memcpy(c->id, buf + 2, n);
	c->id[n] = '\0';
	p = buf + 2 + SHIM_REC_ID_MAX;
	c->written = shim_get_u64(p);
	c->records = shim_get_u64(p + 8);
	c->bytes_in = shim_get_u64(p + 16);
	c->bytes_out = shim_get_u64(p + 24);
	p += 32;
	memcpy(c->chain, p, SHIM_REC_HASH_LEN);
	p += SHIM_REC_HASH_LEN;
	c->start_wall_ns = (int64_t)shim_get_u64(p);
	c->start_mono_ns = (int64_t)shim_get_u64(p + 8);
	c->last_mono_ns = (int64_t)shim_get_u64(p + 16);
	/* A file shorter than a recording's magic and header is no
	 * recording to seal. */
	if (c->written < SHIM_REC_MAGIC_LEN) {
		memset(c, 0, sizeof(*c));
		return SHIM_ECORRUPT;
	}
	return 0;
}
