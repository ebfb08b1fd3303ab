#include "options.h"

#include <string.h>

void tool_command_help(FILE *f, const struct tool_command *c)
{
	const struct tool_option *o;

	fprintf(f, "usage: shimctl %s\n", c->usage);
	if (c->summary != NULL)
		fprintf(f, "\n%s\n", c->summary);
	if (c->options == NULL || c->options[0].name == NULL) {
		fprintf(f, "\noptions:\n  --help  print this help\n");
		return;
	}
	fprintf(f, "\noptions:\n");
	for (o = c->options; o->name != NULL; o++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s", o->name,
			 o->value ? " " : "", o->value ? o->value : "");
		fprintf(f, "  %-22s %s\n", left, o->help);
	}
	fprintf(f, "  %-22s %s\n", "--help", "print this help");
}

static const struct tool_option *find(const struct tool_command *c,
				      const char *arg, size_t n)
{
	const struct tool_option *o;

	for (o = c->options; o != NULL && o->name != NULL; o++)
		if (strlen(o->name) == n && strncmp(o->name, arg, n) == 0)
			return o;
	return NULL;
}

static int usage_error(const struct tool_command *c, const char *what,
		       const char *arg)
{
	fprintf(stderr, "shimctl %s: %s '%s'\n\n", c->name, what, arg);
	tool_command_help(stderr, c);
	return 2;
}

int tool_parse_options(const struct tool_command *c, int argc, char **argv,
		       int *out_argc, char **out)
{
	int i, n = 0, only_args = 0;

	/* --help anywhere wins: nothing else is looked at */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			tool_command_help(stdout, c);
			return 0;
		}
	}
	out[n++] = argv[0];
	for (i = 1; i < argc; i++) {
		char *a = argv[i];
		const struct tool_option *o;
		const char *eq;
		size_t len;

		if (only_args || a[0] != '-' || a[1] == '\0') {
			out[n++] = a;   /* an argument ("-" is stdin) */
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_args = 1;
			continue;
		}
		eq = a[1] == '-' ? strchr(a, '=') : NULL;
		len = eq ? (size_t)(eq - a) : strlen(a);
		o = find(c, a, len);
		if (o == NULL) {
			if (eq != NULL) {
				char name[64];

				snprintf(name, sizeof(name), "%.*s",
					 (int)(len < 63 ? len : 63), a);
				return usage_error(c, "unknown option",
						   name);
			}
			return usage_error(c, "unknown option", a);
		}
		if (o->value == NULL) {
			if (eq != NULL)
				return usage_error(c, "no value is taken by",
						   o->name);
			out[n++] = a;
			continue;
		}
		if (eq != NULL) {
			out[n++] = (char *)o->name;
			out[n++] = (char *)eq + 1;
			continue;
		}
		if (i + 1 >= argc)
			return usage_error(c, "a value is needed by", o->name);
		out[n++] = a;
		out[n++] = argv[++i];
	}
	out[n] = NULL;
	*out_argc = n;
	return -1;
}
