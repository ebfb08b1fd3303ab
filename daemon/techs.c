/*
 * shimd's technician table: the configuration's technicians plus the
 * sealed enrolment store's (common/techstore.h), read at start and again
 * when the store changes, without a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event.h"
#include "log.h"
#include "shimd.h"
#include "techstore.h"
#include "util.h"

static int find_in(const struct shim_technician *t, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(t[i].id, id) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static void note_seen(struct shimd *d)
{
	struct stat st;

	memset(&d->store_seen, 0, sizeof(d->store_seen));
	if (d->cfg.enrol_store != NULL && lstat(d->cfg.enrol_store, &st) == 0) {
		d->store_seen.present = 1;
		d->store_seen.ino = (unsigned long long)st.st_ino;
		d->store_seen.size = (unsigned long long)st.st_size;
		d->store_seen.mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL +
					 st.st_mtim.tv_nsec;
	}
}

/* The configuration with only its own technicians, for shim_techs_build. */
static int build(struct shimd *d, struct shim_technician **out, size_t *n,
		 char *why, size_t cap)
{
	struct shim_config view = d->cfg;
	struct shim_enrol_set *set = calloc(1, sizeof(*set));
	int rc;

	if (set == NULL) {
		snprintf(why, cap, "out of memory");
		return SHIM_ENOMEM;
	}
	note_seen(d);
	rc = shim_techstore_load(&d->cfg, &d->lp.port, set, why, cap);
	if (rc == 0 || rc == SHIM_ENOENT) {
		view.techs = d->conf_techs;
		view.ntechs = d->conf_ntechs;
		rc = shim_techs_build(&view, rc == 0 ? set : NULL, out, n, why,
				      cap);
	}
	shim_enrol_wipe(set);
	free(set);
	return rc;
}

int shimd_techs_init(struct shimd *d)
{
	struct shim_technician *t = NULL;
	char why[512];
	size_t n = 0;
	int rc;

	rc = shim_techstore_use_key(&d->cfg, &d->lp);
	if (rc != 0) {
		return rc;
	}
	/* cfg.techs becomes the gate's table; the configuration's own list
	 * is kept aside for reloads. */
	d->conf_techs = d->cfg.techs;
	d->conf_ntechs = d->cfg.ntechs;
	d->cfg.techs = NULL;
	d->cfg.ntechs = d->cfg.techs_cap = 0;
	rc = build(d, &t, &n, why, sizeof(why));
	if (rc != 0) {
		log_err("enrolment store: %s", why);
		return rc;
	}
	d->cfg.techs = t;
	d->cfg.ntechs = d->cfg.techs_cap = n;
	return 0;
}

void shimd_techs_fini(struct shimd *d)
{
	shim_techs_free(d->conf_techs, d->conf_ntechs);
	d->conf_techs = NULL;
	d->conf_ntechs = 0;
}

static void store_error(struct shimd *d, const char *why)
{
	struct shim_event ev;

	log_err("enrolment store: %s: the technicians enrolled before stay in "
		"use", why);
	if (shim_event_init(&ev, "enrolment_store_error", SHIM_SEV_ERR,
			    shimd_wall_ns()) == 0) {
		shim_event_add(&ev, "reason", why);
		shimd_emit(d, &ev);
	}
}

int shimd_techs_reload(struct shimd *d, const char *who, char *msg,
		       size_t cap)
{
	struct shim_technician *t = NULL, *old = d->cfg.techs;
	size_t n = 0, old_n = d->cfg.ntechs, scap, i, added = 0, removed = 0;
	uint8_t *scratch, *old_scratch = d->gate_scratch;
	size_t old_scap = d->gate_scratch_cap;
	struct shim_event ev;
	char why[512];
	int rc;

	rc = build(d, &t, &n, why, sizeof(why));
	if (rc != 0) {
		store_error(d, why);
		snprintf(msg, cap, "error: %s", why);
		return rc;
	}
	scap = shim_gate_scratch_size(n);
	scratch = calloc(1, scap ? scap : 1);
	if (scratch == NULL) {
		shim_techs_free(t, n);
		snprintf(msg, cap, "error: out of memory");
		return SHIM_ENOMEM;
	}
	rc = shim_gate_set_techs(&d->gate, t, n, scratch, scap);
	if (rc != 0 && d->gate.techs != t) {
		shim_techs_free(t, n);
		free(scratch);
		store_error(d, shim_strerror(rc));
		snprintf(msg, cap, "error: %s", shim_strerror(rc));
		return rc;
	}
	/* The gate uses the new table now (its state could not be saved
	 * when rc != 0: it refuses every code, and says so below). */
	for (i = 0; i < n; i++) {
		if (find_in(old, old_n, t[i].id) < 0) {
			added++;
		}
	}
	for (i = 0; i < old_n; i++) {
		if (find_in(t, n, old[i].id) < 0) {
			removed++;
		}
	}
	d->cfg.techs = t;
	d->cfg.ntechs = d->cfg.techs_cap = n;
	d->gate_scratch = scratch;
	d->gate_scratch_cap = scap;
	shim_techs_free(old, old_n);
	shim_memzero(old_scratch, old_scap);
	free(old_scratch);
	if (rc != 0) {
		log_err("gate state could not be saved after the enrolment "
			"change (%s): every code is refused until shimctl gate "
			"reset-state", shim_strerror(rc));
		if (shim_event_init(&ev, "gate_state_lost", SHIM_SEV_ERR,
				    shimd_wall_ns()) == 0) {
			shim_event_add(&ev, "reason", "unwritable");
			shimd_emit(d, &ev);
		}
	}
	log_info("%s: enrolment store read: %zu technicians (%zu added, %zu "
		 "removed)", who, n, added, removed);
	if (shim_event_init(&ev, "technicians_changed", SHIM_SEV_NOTICE,
			    shimd_wall_ns()) == 0) {
		shim_event_add_u64(&ev, "technicians", n);
		shim_event_add_u64(&ev, "added", added);
		shim_event_add_u64(&ev, "removed", removed);
		shimd_emit(d, &ev);
	}
	/* A technician removed mid-session loses the session. */
	if (d->ctl.state == SHIM_ST_OPEN &&
	    find_in(t, n, d->ctl.tech_id) < 0) {
		log_info("the technician of session %s is no longer enrolled: "
			 "ending it", d->ctl.session_id);
		shimd_end_session(d, "technician_removed");
	}
	snprintf(msg, cap, "%zu technicians (%zu added, %zu removed)", n,
		 added, removed);
	return rc;
}

void shimd_techs_check(struct shimd *d)
{
	struct stat st;
	int present;
	char msg[600];

	if (d->cfg.enrol_store == NULL) {
		return;
	}
	present = lstat(d->cfg.enrol_store, &st) == 0;
	if (present == d->store_seen.present &&
	    (!present ||
	     (d->store_seen.ino == (unsigned long long)st.st_ino &&
	      d->store_seen.size == (unsigned long long)st.st_size &&
	      d->store_seen.mtime_ns ==
		      (long long)st.st_mtim.tv_sec * 1000000000LL +
			      st.st_mtim.tv_nsec))) {
		return;
	}
	(void)shimd_techs_reload(d, "store changed", msg, sizeof(msg));
}
