/*
 * Log lines of common/ (see logline.h).
 */
#include "logline.h"

#include <stdio.h>
#include <time.h>

void shim_log_line(const char *level, const char *component, const char *fmt,
		   va_list ap)
{
	char line[512];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ shimd %s: %s: %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, level, component,
		line);
}
