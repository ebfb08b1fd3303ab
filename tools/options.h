/*
 * The option parser every shimctl subcommand goes through (tools/shimctl.c
 * runs it before dispatching): a table of the options each subcommand
 * accepts. Unknown options and options missing their value print that
 * subcommand's usage on stderr (exit 2) before anything is read, written or
 * sent; --help/-h prints its help on stdout (exit 0). "--name=VALUE" is
 * rewritten as "--name" "VALUE" so the subcommands see one form.
 */
#ifndef SHIM_TOOLS_OPTIONS_H
#define SHIM_TOOLS_OPTIONS_H

#include <stdio.h>

struct tool_option {
	const char *name;   /* "--out", "-o" */
	const char *value;  /* metavariable ("FILE"), NULL for a flag */
	const char *help;
};

struct tool_command {
	const char *name;
	const char *usage;                 /* after "shimctl " */
	const char *summary;
	const struct tool_option *options; /* ends with { NULL } */
};

/* Prints "usage: shimctl USAGE" and the options. */
void tool_command_help(FILE *f, const struct tool_command *c);

/* Checks argv (argv[0] is the subcommand) against c's options, rewriting
 * "--name=VALUE" in place into out (room for 2 * argc + 1 pointers).
 * Returns -1 to go on with *out_argc/out, or the exit status to end with
 * (0 after --help, 2 on a usage error). */
int tool_parse_options(const struct tool_command *c, int argc, char **argv,
		       int *out_argc, char **out);

#endif
