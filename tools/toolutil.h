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

/* One request on the admin socket at sock; the whole answer goes into buf
 * (NUL-terminated). 0, or a SHIM_E code (*not_running set when nothing
 * listens there: shimd is stopped). */
int tool_admin_exchange(const char *sock, const char *request, char *buf,
			size_t cap, int *not_running);

/* Overwrites a regular file with zeros, syncs and removes it (a file that
 * held a secret). 0, or -1 when it is not a regular file or cannot be. */
int tool_shred(const char *path);

#endif
