/*
 * One log line on stderr in shimd's format, for the threads of common/
 * (recorder, uploader) that cannot use the daemon's logger:
 *   2026-12-02T19:40:00.123Z shimd <level>: <component>: <message>
 */
#ifndef SHIM_COMMON_LOGLINE_H
#define SHIM_COMMON_LOGLINE_H

#include <stdarg.h>

void shim_log_line(const char *level, const char *component, const char *fmt,
		   va_list ap) __attribute__((format(printf, 3, 0)));

#endif
