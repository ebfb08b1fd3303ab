/*
 * shimd logging to stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fmt.h"
#include "log.h"

enum shimd_log_level shimd_log_level = SHIMD_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int shimd_log_parse_level(const char *s, enum shimd_log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum shimd_log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = SHIMD_LOG_WARN;
		return 0;
	}
	return -1;
}

void shimd_log(enum shimd_log_level lvl, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (lvl > shimd_log_level) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ shimd %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
		     level_names[lvl]);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

void shimd_log_sanitize(char *out, size_t cap, const char *in, size_t len)
{
	shim_sanitize(out, cap, in, len);
}
