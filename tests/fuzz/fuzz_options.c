/*
 * shimctl's shared option parser (tools/options.c): any argument vector
 * (the fuzz input split at NUL bytes) either ends the command (0 after
 * --help, 2 on a usage error) or yields a rewritten vector that stays in
 * its bounds: at most 2 * argc + 1 entries, every one a string from the
 * input or an option's name, a value-taking option always followed by its
 * value, and no unknown option let through.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

static const struct tool_option opts[] = {
	{ "--out", "FILE", "where" },
	{ "--json", NULL, "as JSON" },
	{ "-o", "FILE", "short" },
	{ NULL, NULL, NULL },
};
static const struct tool_command cmd = { "fuzz", "fuzz [--out FILE] [--json]",
					 "A command.", opts };

static const struct tool_option *known(const char *a)
{
	const struct tool_option *o;

	for (o = opts; o->name != NULL; o++) {
		if (strcmp(o->name, a) == 0) {
			return o;
		}
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[4097];
	static int quiet;
	char *argv[MAX_ARGS + 1], *out[2 * MAX_ARGS + 1];
	int argc = 0, out_argc = 0, rc, i, only_args = 0;
	size_t at = 0;

	if (!quiet) {
		/* help text is not what is checked here (usage errors go
		 * to stderr, with libFuzzer's own report) */
		if (freopen("/dev/null", "w", stdout) == NULL) {
			return 0;
		}
		quiet = 1;
	}
	if (size > sizeof(buf) - 1) {
		size = sizeof(buf) - 1;
	}
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "fuzz";
	while (at <= size && argc < MAX_ARGS) {
		argv[argc++] = buf + at;
		at += strlen(buf + at) + 1;
	}
	argv[argc] = NULL;
	rc = tool_parse_options(&cmd, argc, argv, &out_argc, out);
	if (rc == 0 || rc == 2) {
		return 0;
	}
	if (rc != -1 || out_argc < 1 || out_argc > 2 * argc + 1 ||
	    strcmp(out[0], "fuzz") != 0) {
		__builtin_trap();
	}
	/* "--" is dropped from the rewritten vector, and what follows it
	 * is arguments however it looks: then only the bounds are checked. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			only_args = 1;
		}
	}
	for (i = 1; i < out_argc; i++) {
		const struct tool_option *o;

		if (out[i] == NULL) {
			__builtin_trap();
		}
		if (only_args || out[i][0] != '-' || out[i][1] == '\0') {
			continue;
		}
		o = known(out[i]);
		if (o == NULL) {
			/* an option's value may look like an option, but only
			 * right after a value-taking option */
			const struct tool_option *p =
				i > 1 ? known(out[i - 1]) : NULL;

			if (p == NULL || p->value == NULL) {
				__builtin_trap();
			}
			continue;
		}
		if (o->value != NULL) {
			if (i + 1 >= out_argc) {
				__builtin_trap();
			}
			i++; /* its value, whatever it looks like */
		}
	}
	return 0;
}
