/*
 * The sealed enrolment store on Linux (techstore.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gate.h"
#include "keys.h"
#include "otp.h"
#include "techstore.h"
#include "util.h"

#define CONTAINER_MAX (SHIM_ENROL_TEXT_MAX + SHIM_ENROL_PUB_OVERHEAD)

char *shim_techstore_key_path(const struct shim_config *cfg)
{
	return shim_config_path(cfg, "keys/storage.key");
}

int shim_techstore_use_key(const struct shim_config *cfg,
			   struct shim_linux_port *lp)
{
	char *path = shim_techstore_key_path(cfg);
	int rc;

	if (path == NULL) {
		return SHIM_ENOMEM;
	}
	rc = shim_linux_port_set_storage_key(lp, path);
	free(path);
	return rc;
}

int shim_techstore_ensure_key(const struct shim_config *cfg)
{
	char *path = shim_techstore_key_path(cfg);
	char *dir = shim_config_path(cfg, "keys");
	int rc = SHIM_ENOMEM;

	if (path != NULL && dir != NULL) {
		rc = shim_mkdir_p(dir, 0700);
		if (rc == 0) {
			rc = shim_linux_storage_key_create(path);
			if (rc == SHIM_EEXIST) {
				rc = 0;
			}
		}
	}
	free(path);
	free(dir);
	return rc;
}

int shim_techstore_read_container(const char *path, uint8_t **buf,
				  size_t *len)
{
	return shim_read_file_opt(path, CONTAINER_MAX, SHIM_READ_NOFOLLOW, buf,
				  len, NULL);
}

int shim_techstore_load(const struct shim_config *cfg,
			const struct shim_port *port,
			struct shim_enrol_set *set, char *why, size_t cap)
{
	uint8_t key[SHIM_AES256_KEY_LEN];
	uint8_t *buf = NULL, *text = NULL;
	size_t len = 0, tlen = 0, line = 0;
	int rc;

	memset(set, 0, sizeof(*set));
	snprintf(why, cap, "ok");
	if (cfg->enrol_store == NULL) {
		snprintf(why, cap, "no storage.root: no enrolment store");
		return SHIM_EINVAL;
	}
	rc = shim_techstore_read_container(cfg->enrol_store, &buf, &len);
	if (rc == SHIM_ENOENT) {
		snprintf(why, cap, "%s: no enrolment store yet", cfg->enrol_store);
		return SHIM_ENOENT;
	}
	if (rc != 0) {
		snprintf(why, cap, "%s: %s", cfg->enrol_store,
			 rc == SHIM_ENOSPC ? "too large for an enrolment store" :
			 rc == SHIM_EACCES ? "a symbolic link or unreadable" :
			 shim_strerror(rc));
		return rc == SHIM_ENOSPC ? SHIM_ECORRUPT : rc;
	}
	if (port->keys.storage_key == NULL) {
		rc = SHIM_ENOTSUP;
	} else {
		rc = port->keys.storage_key(port->keys.ctx, key);
	}
	if (rc != 0) {
		snprintf(why, cap, "%s: the storage key is %s", cfg->enrol_store,
			 rc == SHIM_ENOENT ? "missing (keys/storage.key)" :
			 rc == SHIM_EACCES ? "readable by others or a link" :
			 shim_strerror(rc));
		goto out;
	}
	text = malloc(len);
	if (text == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	rc = shim_enrol_open_local(&port->crypto, key, buf, len, text, len,
				   &tlen);
	if (rc != 0) {
		snprintf(why, cap, "%s: %s", cfg->enrol_store,
			 rc == SHIM_ECRYPTO ? "does not open with this unit's "
			 "storage key (altered, or from another unit)" :
			 rc == SHIM_EACCES ? "not sealed under a storage key" :
			 rc == SHIM_ENOTSUP ? "a version this shimd cannot read" :
			 "not an enrolment store");
		goto out;
	}
	rc = shim_enrol_parse((const char *)text, tlen, set, &line);
	if (rc != 0) {
		snprintf(why, cap, "%s: sealed text malformed at line %zu",
			 cfg->enrol_store, line);
		goto out;
	}
	if (cfg->shim_id != NULL && strcmp(set->shim_id, cfg->shim_id) != 0) {
		snprintf(why, cap, "%s: the set belongs to shim '%s', not '%s'",
			 cfg->enrol_store, set->shim_id, cfg->shim_id);
		shim_enrol_wipe(set);
		rc = SHIM_EACCES;
	}
out:
	if (text != NULL) {
		shim_memzero(text, len);
		free(text);
	}
	shim_memzero(key, sizeof(key));
	free(buf);
	return rc;
}

int shim_techstore_save(const struct shim_config *cfg,
			const struct shim_port *port,
			struct shim_enrol_set *set, char *why, size_t cap)
{
	uint8_t key[SHIM_AES256_KEY_LEN];
	char *text = NULL;
	uint8_t *out = NULL;
	size_t tlen = 0, olen = 0;
	int rc;

	if (cfg->enrol_store == NULL || cfg->shim_id == NULL) {
		snprintf(why, cap, "the configuration has no storage.root or "
			 "shim.id");
		return SHIM_EINVAL;
	}
	snprintf(set->shim_id, sizeof(set->shim_id), "%s", cfg->shim_id);
	set->created = (int64_t)time(NULL);
	text = malloc(SHIM_ENROL_TEXT_MAX);
	out = malloc(SHIM_ENROL_TEXT_MAX + SHIM_ENROL_LOCAL_OVERHEAD);
	if (text == NULL || out == NULL) {
		rc = SHIM_ENOMEM;
		snprintf(why, cap, "out of memory");
		goto out;
	}
	rc = port->keys.storage_key != NULL ?
		     port->keys.storage_key(port->keys.ctx, key) : SHIM_ENOTSUP;
	if (rc != 0) {
		snprintf(why, cap, "the storage key: %s", shim_strerror(rc));
		goto out;
	}
	rc = shim_enrol_format(set, text, SHIM_ENROL_TEXT_MAX, &tlen);
	if (rc == 0) {
		rc = shim_enrol_seal_local(&port->crypto, &port->rng, key,
					   (const uint8_t *)text, tlen, out,
					   SHIM_ENROL_TEXT_MAX +
						   SHIM_ENROL_LOCAL_OVERHEAD,
					   &olen);
	}
	if (rc != 0) {
		snprintf(why, cap, "cannot seal the set: %s", shim_strerror(rc));
		goto out;
	}
	rc = shim_write_file_atomic(cfg->enrol_store, out, olen, 0600);
	if (rc != 0) {
		snprintf(why, cap, "%s: %s", cfg->enrol_store, shim_strerror(rc));
	}
out:
	shim_memzero(key, sizeof(key));
	if (text != NULL) {
		shim_memzero(text, SHIM_ENROL_TEXT_MAX);
		free(text);
	}
	free(out);
	return rc;
}

void shim_techs_free(struct shim_technician *t, size_t n)
{
	if (t != NULL) {
		shim_memzero(t, n * sizeof(*t));
		free(t);
	}
}

int shim_techs_build(const struct shim_config *cfg,
		     const struct shim_enrol_set *set,
		     struct shim_technician **out, size_t *n, char *why,
		     size_t cap)
{
	size_t total = cfg->ntechs + (set != NULL ? set->n : 0), k = 0, i, j;
	struct shim_technician *t;

	*out = NULL;
	*n = 0;
	t = calloc(total ? total : 1, sizeof(*t));
	if (t == NULL) {
		snprintf(why, cap, "out of memory");
		return SHIM_ENOMEM;
	}
	for (i = 0; i < cfg->ntechs; i++) {
		t[k++] = cfg->techs[i];
	}
	for (i = 0; set != NULL && i < set->n; i++) {
		const struct shim_enrol_tech *e = &set->t[i];
		int dup = -1;

		if (e->md != cfg->gate.md || e->digits != cfg->gate.digits ||
		    e->period != cfg->gate.period) {
			snprintf(why, cap, "technician '%s' was enrolled for %s, "
				 "%u digits, %u s, but the gate checks %s, %u "
				 "digits, %u s (totp: in the configuration)",
				 e->id, shim_md_name(e->md), (unsigned)e->digits,
				 (unsigned)e->period, shim_md_name(cfg->gate.md),
				 (unsigned)cfg->gate.digits,
				 (unsigned)cfg->gate.period);
			shim_techs_free(t, total);
			return SHIM_EINVAL;
		}
		for (j = 0; j < cfg->ntechs && dup < 0; j++) {
			if (strcmp(t[j].id, e->id) == 0) {
				dup = (int)j;
			}
		}
		if (dup >= 0) {
			if (t[dup].secret_len != e->secret_len ||
			    !shim_ct_equal(t[dup].secret, e->secret,
					   e->secret_len)) {
				snprintf(why, cap, "technician '%s' is in the "
					 "configuration and in the enrolment "
					 "store with different secrets: remove "
					 "one", e->id);
				shim_techs_free(t, total);
				return SHIM_EINVAL;
			}
			t[dup].min_step = e->min_step;
			continue;
		}
		memset(&t[k], 0, sizeof(t[k]));
		memcpy(t[k].id, e->id, sizeof(t[k].id));
		memcpy(t[k].secret, e->secret, e->secret_len);
		t[k].secret_len = e->secret_len;
		t[k].min_step = e->min_step;
		k++;
	}
	*out = t;
	*n = k;
	return 0;
}

int shim_techstore_read_gate(const struct shim_config *cfg,
			     struct shim_technician *t, size_t n)
{
	struct shim_linux_port lp;
	struct shim_clock clock;
	struct shim_clock_cfg ccfg;
	struct shim_gate *g = NULL;
	struct shim_gate_cfg gcfg = cfg->gate;
	uint8_t *scratch = NULL;
	size_t cap;
	char *state = shim_config_path(cfg, "state");
	int rc;

	if (state == NULL) {
		return SHIM_ENOMEM;
	}
	if (shim_linux_port_init(&lp, NULL) != 0) {
		free(state);
		return SHIM_ENOMEM;
	}
	/* Read only: a state that exists is decoded, a missing one is not
	 * created (state_required). */
	lp.state_dir = state;
	g = calloc(1, sizeof(*g));
	cap = shim_gate_scratch_size(n);
	scratch = calloc(1, cap);
	rc = SHIM_ENOMEM;
	if (g != NULL && scratch != NULL) {
		memset(&ccfg, 0, sizeof(ccfg));
		shim_clock_cfg_default(&ccfg);
		ccfg.state_required = 1;
		(void)shim_clock_init(&clock, &ccfg, &lp.port);
		gcfg.state_required = 1;
		rc = shim_gate_init(g, &gcfg, t, n, &lp.port, &clock, scratch,
				    cap);
	}
	if (scratch != NULL) {
		shim_memzero(scratch, cap);
	}
	free(scratch);
	free(g);
	shim_linux_port_fini(&lp);
	return rc;
}

int shim_techstore_add_marks(const struct shim_config *cfg,
			     struct shim_enrol_set *set)
{
	struct shim_technician *t;
	size_t i;
	int rc;

	if (set->n == 0) {
		return 0;
	}
	t = calloc(set->n, sizeof(*t));
	if (t == NULL) {
		return SHIM_ENOMEM;
	}
	for (i = 0; i < set->n; i++) {
		memcpy(t[i].id, set->t[i].id, sizeof(t[i].id));
	}
	rc = shim_techstore_read_gate(cfg, t, set->n);
	if (rc == 0) {
		for (i = 0; i < set->n; i++) {
			if (t[i].last_step > set->t[i].min_step) {
				set->t[i].min_step = t[i].last_step;
			}
		}
	} else if (rc == SHIM_ENOENT) {
		rc = 0;
	}
	free(t);
	return rc;
}

int shim_techstore_escrow(const struct shim_config *cfg,
			  const struct shim_port *port,
			  const struct shim_enrol_set *set, const char *out_path,
			  char *why, size_t cap)
{
	uint8_t pub[SHIM_P256_PUB_LEN];
	char *text = NULL, *dir = NULL, *path = NULL;
	uint8_t *out = NULL;
	size_t tlen = 0, olen = 0;
	int rc;

	if (cfg->enrol_custody_key == NULL) {
		snprintf(why, cap, "no enrolment.custody_key is configured");
		return SHIM_ENOENT;
	}
	rc = shim_keys_load_public(cfg->enrol_custody_key, pub);
	if (rc != 0) {
		snprintf(why, cap, "enrolment.custody_key %s: %s",
			 cfg->enrol_custody_key, shim_strerror(rc));
		return rc;
	}
	text = malloc(SHIM_ENROL_TEXT_MAX);
	out = malloc(SHIM_ENROL_TEXT_MAX + SHIM_ENROL_PUB_OVERHEAD);
	dir = shim_config_path(cfg, "escrow");
	path = shim_config_path(cfg, "escrow/enrolment.sealed");
	rc = SHIM_ENOMEM;
	if (text == NULL || out == NULL || dir == NULL || path == NULL) {
		snprintf(why, cap, "out of memory");
		goto out;
	}
	rc = shim_enrol_format(set, text, SHIM_ENROL_TEXT_MAX, &tlen);
	if (rc == 0) {
		rc = shim_enrol_seal_to(&port->crypto, &port->rng, pub,
					(const uint8_t *)text, tlen, out,
					SHIM_ENROL_TEXT_MAX +
						SHIM_ENROL_PUB_OVERHEAD,
					&olen);
	}
	if (rc != 0) {
		snprintf(why, cap, "cannot seal the escrow copy: %s",
			 shim_strerror(rc));
		goto out;
	}
	rc = shim_mkdir_p(dir, 0700);
	if (rc == 0) {
		rc = shim_write_file_atomic(path, out, olen, 0600);
	}
	if (rc != 0) {
		snprintf(why, cap, "%s: %s", path, shim_strerror(rc));
		goto out;
	}
	if (out_path != NULL) {
		rc = shim_write_file_atomic(out_path, out, olen, 0600);
		if (rc != 0) {
			snprintf(why, cap, "%s: %s", out_path, shim_strerror(rc));
			goto out;
		}
	}
	snprintf(why, cap, "%s", out_path != NULL ? out_path : path);
out:
	if (text != NULL) {
		shim_memzero(text, SHIM_ENROL_TEXT_MAX);
		free(text);
	}
	free(out);
	free(dir);
	free(path);
	return rc;
}
