#ifndef SHIM_TOOLS_QR_H
#define SHIM_TOOLS_QR_H

#include <stdio.h>

/* Draws text as a QR code with Unicode half blocks (for dark terminals,
 * as `qrencode -t UTF8` does). Returns 0 or -1. */
int qr_print(FILE *f, const char *text);

/* Writes text as a QR code into a PNG file (mode 0600: it holds a secret),
 * scale pixels per module. Returns 0 or -1. */
int qr_write_png(const char *path, const char *text, int scale);

#endif
