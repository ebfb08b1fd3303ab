/*
 * QR codes for enrolment: libqrencode for the symbol, our own drawing for
 * the terminal, and a minimal PNG writer (stored deflate blocks), so no
 * image library is needed.
 */
#include "qr.h"

#include <errno.h>
#include <fcntl.h>
#include <qrencode.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "port_linux.h"
#include "util.h"

#define QUIET 2

static int dark(const QRcode *q, int x, int y)
{
	if (x < 0 || y < 0 || x >= q->width || y >= q->width) {
		return 0;
	}
	return q->data[y * q->width + x] & 1;
}

int qr_print(FILE *f, const char *text)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	int x, y;

	if (q == NULL) {
		return -1;
	}
	for (y = -QUIET; y < q->width + QUIET; y += 2) {
		for (x = -QUIET; x < q->width + QUIET; x++) {
			int top = dark(q, x, y), bottom = dark(q, x, y + 1);

			/* Light modules are drawn, dark ones left blank. */
			if (!top && !bottom) {
				fputs("\xe2\x96\x88", f); /* full block */
			} else if (!top) {
				fputs("\xe2\x96\x80", f); /* upper half */
			} else if (!bottom) {
				fputs("\xe2\x96\x84", f); /* lower half */
			} else {
				fputc(' ', f);
			}
		}
		fputc('\n', f);
	}
	QRcode_free(q);
	return 0;
}

static uint32_t adler32(uint32_t a, const uint8_t *p, size_t n)
{
	uint32_t s1 = a & 0xffff, s2 = a >> 16;

	while (n-- > 0) {
		s1 = (s1 + *p++) % 65521;
		s2 = (s2 + s1) % 65521;
	}
	return (s2 << 16) | s1;
}

static void chunk(FILE *f, const char *type, const uint8_t *data, size_t len)
{
	uint8_t hdr[8];
	uint32_t crc;

	shim_put_u32(hdr, (uint32_t)len);
	memcpy(hdr + 4, type, 4);
	fwrite(hdr, 1, 8, f);
	fwrite(data, 1, len, f);
	crc = shim_crc32(0, hdr + 4, 4);
	crc = shim_crc32(crc, data, len);
	shim_put_u32(hdr, crc);
	fwrite(hdr, 1, 4, f);
}

int qr_write_png(const char *path, const char *text, int scale)
{
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	uint8_t ihdr[13];
	uint8_t *raw = NULL, *z = NULL;
	size_t side, row, rawlen, zlen, off, pos;
	uint32_t ad;
	char *buf = NULL;
	size_t buflen = 0;
	FILE *f = NULL;
	int rc = -1, x, y;

	if (q == NULL) {
		return -1;
	}
	side = (size_t)(q->width + 2 * 4) * (size_t)scale;
	row = 1 + side; /* filter byte + 8-bit grey pixels */
	rawlen = row * side;
	raw = malloc(rawlen);
	/* Stored deflate: 5 bytes of header per 65535-byte block. */
	z = malloc(2 + rawlen + 5 * (rawlen / 65535 + 1) + 4);
	if (raw == NULL || z == NULL) {
		goto out;
	}
	for (y = 0; y < (int)side; y++) {
		uint8_t *r = raw + (size_t)y * row;

		r[0] = 0;
		for (x = 0; x < (int)side; x++) {
			int mx = x / scale - 4, my = y / scale - 4;

			r[1 + x] = dark(q, mx, my) ? 0 : 255;
		}
	}
	z[0] = 0x78;
	z[1] = 0x01;
	zlen = 2;
	for (off = 0; off < rawlen; off += 65535) {
		size_t n = rawlen - off > 65535 ? 65535 : rawlen - off;

		z[zlen++] = off + n == rawlen ? 1 : 0;
		z[zlen++] = (uint8_t)n;
		z[zlen++] = (uint8_t)(n >> 8);
		z[zlen++] = (uint8_t)~n;
		z[zlen++] = (uint8_t)(~n >> 8);
		memcpy(z + zlen, raw + off, n);
		zlen += n;
	}
	ad = adler32(1, raw, rawlen);
	shim_put_u32(z + zlen, ad);
	zlen += 4;

	f = open_memstream(&buf, &buflen);
	if (f == NULL) {
		goto out;
	}
	fwrite(sig, 1, sizeof(sig), f);
	shim_put_u32(ihdr, (uint32_t)side);
	shim_put_u32(ihdr + 4, (uint32_t)side);
	ihdr[8] = 8;  /* bit depth */
	ihdr[9] = 0;  /* greyscale */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* adaptive filtering */
	ihdr[12] = 0; /* no interlace */
	chunk(f, "IHDR", ihdr, sizeof(ihdr));
	chunk(f, "IDAT", z, zlen);
	chunk(f, "IEND", ihdr, 0);
	fclose(f);
	pos = buflen;
	rc = shim_write_file_atomic(path, (const uint8_t *)buf, pos, 0600) == 0 ? 0 : -1;
out:
	free(buf);
	free(raw);
	free(z);
	QRcode_free(q);
	return rc;
}
