/*
 * What the shimctl commands that change the sealed enrolment store share
 * (enrol, technicians, enrolment): open it, change the set, then commit:
 * seal and save it, refresh the escrow copy for central custody, and tell
 * a running shimd to read it.
 */
#ifndef SHIM_TOOLS_TECHTOOL_H
#define SHIM_TOOLS_TECHTOOL_H

#include "config.h"
#include "enrolstore.h"
#include "port_linux.h"

struct tool_store {
	struct shim_config cfg;
	struct shim_linux_port lp;
	struct shim_enrol_set *set;
	int have_port;
	int existed;       /* the store file was there */
};

/* Loads the configuration (required: storage.root and shim.id), checks
 * that the store can be written (when for_write), creates the storage
 * key if the unit has none (for_write), and opens the store. Prints the
 * cause and returns -1 on any failure (nothing was changed). */
int tool_store_open(struct tool_store *ts, const char *config_path,
		    int for_write, const char *cmd);

/* Seals and saves the set, refreshes the escrow copy and tells shimd.
 * Prints what it did; returns 0, or -1 when the set was not saved. */
int tool_store_commit(struct tool_store *ts, const char *cmd);

void tool_store_close(struct tool_store *ts);

/* Asks a running shimd to read the store again. 0: it did; 1: shimd is
 * not running (it reads the store when it starts); -1: it answered with
 * an error (printed). */
int tool_techs_notify(const struct shim_config *cfg, const char *cmd);

/* Gives a file made under the storage root by root to the storage root's
 * owner (the shim user under the package), so that shimd can read it. */
void tool_give_to_storage_owner(const struct shim_config *cfg,
				const char *path);

#endif
