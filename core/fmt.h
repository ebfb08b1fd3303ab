/*
 * Text formatting without stdio, for the technician's lines and the log:
 * a bounded subset of printf and a sanitiser for untrusted strings.
 */
#ifndef SHIM_CORE_FMT_H
#define SHIM_CORE_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* Formats into buf (always NUL-terminated when cap > 0; cut at cap - 1).
 * Conversions: %s %c %d %i %u %x %ld %lu %lld %llu %zu %% with an
 * optional '-', '+', '0' and a width. Returns the length written. */
size_t shim_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
size_t shim_fmt(char *buf, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/* Copies an untrusted string (a claimed technician ID, device bytes) for a
 * log line: printable ASCII kept, everything else as \xNN, cut at cap - 1. */
void shim_sanitize(char *out, size_t cap, const char *in, size_t len);

#endif
