/*
 * The sealed enrolment store, as shimctl changes it (techtool.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "techstore.h"
#include "techtool.h"
#include "toolutil.h"
#include "util.h"

void tool_give_to_storage_owner(const struct shim_config *cfg,
				const char *path)
{
	struct stat st;

	if (geteuid() != 0 || cfg->storage_root == NULL ||
	    stat(cfg->storage_root, &st) != 0 || st.st_uid == 0) {
		return;
	}
	if (lchown(path, st.st_uid, st.st_gid) != 0) {
		fprintf(stderr, "shimctl: warning: %s: cannot give it to the "
			"storage owner (uid %u): %s\n", path,
			(unsigned)st.st_uid, strerror(errno));
	}
}

static int dir_writable(const char *file, char *dir, size_t cap)
{
	const char *slash = strrchr(file, '/');
	size_t n = slash ? (size_t)(slash - file) : 0;

	if (slash == NULL) {
		snprintf(dir, cap, ".");
	} else {
		snprintf(dir, cap, "%.*s", (int)(n == 0 ? 1 : n), file);
	}
	return access(dir, W_OK | X_OK) == 0;
}

int tool_store_open(struct tool_store *ts, const char *config_path,
		    int for_write, const char *cmd)
{
	char why[600], dir[4096];
	char *key = NULL;
	int rc;

	memset(ts, 0, sizeof(*ts));
	rc = tool_load_config(config_path, &ts->cfg, 1);
	if (rc < 0) {
		return -1;
	}
	if (rc == 1 || ts->cfg.storage_root == NULL || ts->cfg.shim_id == NULL) {
		fprintf(stderr, "shimctl %s: %s: %s: no sealed enrolment store "
			"to use (provision the unit first: shimctl provision)\n",
			cmd, config_path, rc == 1 ? "not found" :
			ts->cfg.storage_root == NULL ? "no storage.root" :
			"no shim.id");
		return -1;
	}
	if (access(ts->cfg.storage_root, F_OK) != 0) {
		fprintf(stderr, "shimctl %s: storage root %s: %s (provision the "
			"unit first: shimctl provision)\n", cmd,
			ts->cfg.storage_root, strerror(errno));
		return -1;
	}
	if (for_write && !dir_writable(ts->cfg.enrol_store, dir, sizeof(dir))) {
		fprintf(stderr, "shimctl %s: cannot save the enrolment store %s: "
			"directory %s: %s\n", cmd, ts->cfg.enrol_store, dir,
			strerror(errno));
		return -1;
	}
	ts->set = calloc(1, sizeof(*ts->set));
	if (ts->set == NULL || shim_linux_port_init(&ts->lp, NULL) != 0) {
		fprintf(stderr, "shimctl %s: out of memory\n", cmd);
		return -1;
	}
	ts->have_port = 1;
	if (for_write) {
		rc = shim_techstore_ensure_key(&ts->cfg);
		key = shim_techstore_key_path(&ts->cfg);
		if (rc != 0) {
			fprintf(stderr, "shimctl %s: storage key %s: %s\n", cmd,
				key != NULL ? key : "?", shim_strerror(rc));
			free(key);
			return -1;
		}
		if (key != NULL) {
			tool_give_to_storage_owner(&ts->cfg, key);
		}
		free(key);
	}
	if (shim_techstore_use_key(&ts->cfg, &ts->lp) != 0) {
		fprintf(stderr, "shimctl %s: out of memory\n", cmd);
		return -1;
	}
	rc = shim_techstore_load(&ts->cfg, &ts->lp.port, ts->set, why,
				 sizeof(why));
	if (rc != 0 && rc != SHIM_ENOENT) {
		fprintf(stderr, "shimctl %s: %s\n", cmd, why);
		return -1;
	}
	ts->existed = rc == 0;
	return 0;
}

int tool_techs_notify(const struct shim_config *cfg, const char *cmd)
{
	char buf[1024];
	size_t len;
	int down = 0, rc;

	rc = tool_admin_exchange(cfg->admin_socket, "technicians-reload", buf,
				 sizeof(buf), &down);
	if (rc != 0 && (down || cfg->admin_socket == NULL)) {
		return 1; /* not running: it reads the store when it starts */
	}
	len = rc == 0 ? strlen(buf) : 0;
	if (len >= 3 && strcmp(buf + len - 3, "ok\n") == 0) {
		return 0;
	}
	fprintf(stderr, "shimctl %s: shimd could not take the change into use: "
		"%s", cmd, len ? buf : "no answer\n");
	return -1;
}

int tool_store_commit(struct tool_store *ts, const char *cmd)
{
	char why[600];
	int rc;

	rc = shim_techstore_save(&ts->cfg, &ts->lp.port, ts->set, why,
				 sizeof(why));
	if (rc != 0) {
		fprintf(stderr, "shimctl %s: nothing saved: %s\n", cmd, why);
		return -1;
	}
	tool_give_to_storage_owner(&ts->cfg, ts->cfg.enrol_store);
	printf("Sealed enrolment store %s: %u technicians.\n",
	       ts->cfg.enrol_store, (unsigned)ts->set->n);
	/* The escrow copy carries the codes already used (gate marks). */
	(void)shim_techstore_add_marks(&ts->cfg, ts->set);
	rc = shim_techstore_escrow(&ts->cfg, &ts->lp.port, ts->set, NULL, why,
				   sizeof(why));
	if (rc == 0) {
		char *dir = shim_config_path(&ts->cfg, "escrow");

		tool_give_to_storage_owner(&ts->cfg, why);
		if (dir != NULL) {
			tool_give_to_storage_owner(&ts->cfg, dir);
		}
		free(dir);
		printf("Escrow copy for central custody: %s (sealed to "
		       "enrolment.custody_key).\n", why);
	} else if (rc == SHIM_ENOENT) {
		fprintf(stderr, "shimctl %s: warning: no enrolment.custody_key "
			"is configured: if this unit fails, its technicians "
			"must enrol again on the replacement\n", cmd);
	} else {
		fprintf(stderr, "shimctl %s: warning: escrow copy not written: "
			"%s\n", cmd, why);
	}
	rc = tool_techs_notify(&ts->cfg, cmd);
	if (rc == 0) {
		printf("shimd took the change into use.\n");
	} else if (rc == 1) {
		printf("shimd is not running: it reads the store when it "
		       "starts.\n");
	}
	return 0;
}

void tool_store_close(struct tool_store *ts)
{
	if (ts->set != NULL) {
		shim_enrol_wipe(ts->set);
		free(ts->set);
	}
	if (ts->have_port) {
		shim_linux_port_fini(&ts->lp);
	}
	shim_config_free(&ts->cfg);
	memset(ts, 0, sizeof(*ts));
}
