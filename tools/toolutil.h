#ifndef SHIM_TOOLS_TOOLUTIL_H
#define SHIM_TOOLS_TOOLUTIL_H

#include "config.h"

/* Loads the configuration for a subcommand. Errors are printed as
 * FILE:LINE: message. With optional set, a missing file is not an error:
 * returns 1 and cfg holds defaults. Returns 0 on success, -1 on error. */
int tool_load_config(const char *path, struct shim_config *cfg, int optional);

/* Finds "--name VALUE" or "--name=VALUE" in argv (from index 1); returns
 * the value or NULL. Flags without values: tool_flag(). */
const char *tool_opt(int argc, char **argv, const char *name);
int tool_flag(int argc, char **argv, const char *name);

/* Sends one request line to the running shimd's admin socket, prints the
 * answer; returns the exit status (0 when shimd answered "ok"). */
int tool_admin_request(const char *config_path, const char *request);

#endif
