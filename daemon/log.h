/*
 * shimd logging: one line per message on stderr, with a level. Secrets
 * never go through here.
 */
#ifndef SHIMD_LOG_H
#define SHIMD_LOG_H

enum shimd_log_level {
	SHIMD_LOG_ERROR = 0,
	SHIMD_LOG_WARN,
	SHIMD_LOG_INFO,
	SHIMD_LOG_DEBUG,
};

extern enum shimd_log_level shimd_log_level;

/* Parses "error", "warn", "info" or "debug". */
int shimd_log_parse_level(const char *s, enum shimd_log_level *out);

void shimd_log(enum shimd_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) shimd_log(SHIMD_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) shimd_log(SHIMD_LOG_WARN, __VA_ARGS__)
#define log_info(...) shimd_log(SHIMD_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                \
	do {                                                          \
		if (shimd_log_level >= SHIMD_LOG_DEBUG) {             \
			shimd_log(SHIMD_LOG_DEBUG, __VA_ARGS__);      \
		}                                                     \
	} while (0)

/* Copies an untrusted string (e.g. a claimed technician ID) for a log
 * line: printable ASCII kept, everything else as \xNN, cut at cap - 1. */
void shimd_log_sanitize(char *out, size_t cap, const char *in, size_t len);

#endif
