/*
 * shimctl enrolment: the enrolment set's central custody, so that a
 * failed unit is replaced without re-enrolling anyone (docs/lifecycle.md,
 * "Replacing a unit").
 *
 *   shimctl enrolment keygen --out FILE
 *       (central) the enrolment-custody key pair: FILE (private, 0600)
 *       and FILE.pub, which goes into every unit's enrolment.custody_key.
 *   shimctl enrolment escrow [--out FILE]
 *       (unit) writes the escrow copy now: the set sealed to the custody
 *       key, with the replay marks of the codes already used. enrol,
 *       technicians remove/import and restore write it too.
 *   shimctl enrolment export --escrow FILE --custody-key KEY
 *                            --inventory RECORD --authority PUB --out FILE
 *                            [--last-seen TIME] [--window N]
 *       (central) opens a failed unit's escrow copy and re-seals its set
 *       for the replacement named by its signed inventory record (checked
 *       against the provisioning authority). Every code up to the end of
 *       the window around --last-seen (default: now) is marked used, so a
 *       code the old unit accepted after its last escrow is refused too.
 *   shimctl enrolment restore FILE [--force]
 *       (replacement unit) opens the transfer with the unit's identity key
 *       and makes it the unit's sealed store; --force replaces a store
 *       that already holds technicians.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inventory.h"
#include "keys.h"
#include "otp.h"
#include "port_linux.h"
#include "subcommands.h"
#include "techstore.h"
#include "techtool.h"
#include "toolutil.h"
#include "util.h"

static const char usage_text[] =
	"usage: shimctl enrolment keygen --out FILE\n"
	"       shimctl enrolment escrow [--out FILE]\n"
	"       shimctl enrolment export --escrow FILE --custody-key KEY "
	"--inventory RECORD --authority PUB --out FILE [--last-seen TIME] "
	"[--window N]\n"
	"       shimctl enrolment restore FILE [--force]\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return 2;
}

/* "2026-12-01T10:00:00Z" or Unix seconds. */
static int parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;
	long long v;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end != NULL && *end == '\0') {
		*out = (int64_t)timegm(&tm);
		return 0;
	}
	v = strtoll(s, &end, 10);
	if (*s != '\0' && *end == '\0' && v > 0) {
		*out = v;
		return 0;
	}
	return -1;
}

static int ecdh_with(void *ctx, const uint8_t eph[SHIM_P256_PUB_LEN],
		     uint8_t shared[32])
{
	return shim_keys_ecdh(ctx, eph, shared);
}

/* Opens a kind 2 container with a private key file into set. */
static int open_to_key(const struct shim_crypto_ops *c, const char *keyfile,
		       const char *path, struct shim_enrol_set *set,
		       const char *what)
{
	struct shim_privkey *k = NULL;
	uint8_t pub[SHIM_P256_PUB_LEN];
	uint8_t *buf = NULL, *text = NULL;
	size_t len = 0, tlen = 0, line = 0;
	int rc;

	rc = shim_keys_load_private(keyfile, &k);
	if (rc != 0) {
		fprintf(stderr, "shimctl enrolment: %s: %s\n", keyfile,
			shim_strerror(rc));
		return -1;
	}
	shim_keys_private_pub(k, pub);
	rc = shim_techstore_read_container(path, &buf, &len);
	if (rc != 0) {
		fprintf(stderr, "shimctl enrolment: %s: %s\n", path,
			shim_strerror(rc));
		goto out;
	}
	text = malloc(len);
	rc = text == NULL ? SHIM_ENOMEM :
			    shim_enrol_open_with(c, pub, ecdh_with, k, buf, len,
						 text, len, &tlen);
	if (rc != 0) {
		fprintf(stderr, "shimctl enrolment: %s: %s\n", path,
			rc == SHIM_EACCES ? (what != NULL ? what :
			"sealed to another key") :
			rc == SHIM_ECRYPTO ? "does not open: altered bytes" :
			rc == SHIM_ENOTSUP ? "a version this shimctl cannot read" :
			"not a sealed enrolment set");
		goto out;
	}
	rc = shim_enrol_parse((const char *)text, tlen, set, &line);
	if (rc != 0) {
		fprintf(stderr, "shimctl enrolment: %s: sealed text malformed "
			"at line %zu\n", path, line);
	}
out:
	if (text != NULL) {
		shim_memzero(text, len);
		free(text);
	}
	free(buf);
	shim_keys_free(k);
	return rc == 0 ? 0 : -1;
}

static int do_keygen(const char *out)
{
	char pub[4096];
	int rc;

	if ((size_t)snprintf(pub, sizeof(pub), "%s.pub", out) >= sizeof(pub)) {
		return usage();
	}
	rc = shim_keys_generate(out, pub, NULL, NULL);
	if (rc != 0) {
		fprintf(stderr, "shimctl enrolment keygen: %s: %s\n", out,
			rc == SHIM_EEXIST ? "exists (refusing to overwrite)" :
			shim_strerror(rc));
		return 1;
	}
	printf("Enrolment-custody key: %s (private, keep it offline)\n"
	       "Public key: %s (enrolment.custody_key on every unit)\n", out,
	       pub);
	return 0;
}

static int do_escrow(const char *config_path, const char *out)
{
	struct tool_store ts;
	char why[600];
	int rc = 1;

	if (tool_store_open(&ts, config_path, 0, "enrolment escrow") == 0) {
		(void)shim_techstore_add_marks(&ts.cfg, ts.set);
		if (shim_techstore_escrow(&ts.cfg, &ts.lp.port, ts.set, out, why,
					  sizeof(why)) != 0) {
			fprintf(stderr, "shimctl enrolment escrow: %s\n", why);
		} else {
			printf("Escrow copy of %u technicians: %s\n",
			       (unsigned)ts.set->n, why);
			rc = 0;
		}
	}
	tool_store_close(&ts);
	return rc;
}

static int do_export(const char *escrow, const char *custody_key,
		     const char *inv_path, const char *authority,
		     const char *out, const char *last_seen, const char *win)
{
	struct shim_linux_port lp;
	struct shim_enrol_set *set = calloc(1, sizeof(*set));
	struct shim_inventory r;
	uint8_t auth[SHIM_P256_PUB_LEN];
	uint8_t *buf = NULL, *sealed = NULL;
	char *text = NULL, old_id[SHIM_ENROL_SHIM_ID_MAX + 1];
	const char *why = NULL;
	size_t len = 0, tlen = 0, slen = 0;
	int64_t seen = (int64_t)time(NULL);
	unsigned window = 1;
	int line = 0, rc, status = 1;
	uint32_t i;

	if (set == NULL || shim_linux_port_init(&lp, NULL) != 0) {
		free(set);
		return 1;
	}
	if (last_seen != NULL && parse_time(last_seen, &seen) != 0) {
		fprintf(stderr, "shimctl enrolment export: --last-seen: '%s' is "
			"not a time (2026-12-01T10:00:00Z or Unix seconds)\n",
			last_seen);
		status = 2;
		goto out;
	}
	if (win != NULL) {
		char *end;
		unsigned long v = strtoul(win, &end, 10);

		if (*win == '\0' || *end != '\0' || v > 10) {
			fprintf(stderr, "shimctl enrolment export: --window: 0 "
				"to 10 steps\n");
			status = 2;
			goto out;
		}
		window = (unsigned)v;
	}
	/* The replacement, as the provisioning authority vouches for it. */
	rc = shim_keys_load_public(authority, auth);
	if (rc != 0) {
		fprintf(stderr, "shimctl enrolment export: %s: %s\n", authority,
			shim_strerror(rc));
		goto out;
	}
	rc = shim_read_file_opt(inv_path, SHIM_INV_MAX, SHIM_READ_NOFOLLOW, &buf,
				&len, NULL);
	if (rc != 0 || shim_inv_parse((const char *)buf, len, &r, &line,
				      &why) != 0) {
		fprintf(stderr, "shimctl enrolment export: %s: %s%s\n", inv_path,
			rc != 0 ? shim_strerror(rc) : "not an inventory record: ",
			rc != 0 ? "" : why != NULL ? why : "?");
		goto out;
	}
	if (shim_inv_verify(&r, auth) != 0) {
		fprintf(stderr, "shimctl enrolment export: %s: not signed by "
			"the provisioning authority %s: refusing to seal "
			"secrets to it\n", inv_path, authority);
		goto out;
	}
	if (open_to_key(&lp.port.crypto, custody_key, escrow, set,
			"not sealed to this custody key") != 0) {
		goto out;
	}
	/* Codes the old unit may have accepted up to last-seen, plus the
	 * window, are spent. */
	for (i = 0; i < set->n; i++) {
		uint64_t floor = shim_totp_step(seen, set->t[i].period) + window;

		if (set->t[i].min_step < floor) {
			set->t[i].min_step = floor;
		}
	}
	snprintf(old_id, sizeof(old_id), "%s", set->shim_id);
	snprintf(set->shim_id, sizeof(set->shim_id), "%s", r.shim_id);
	set->created = (int64_t)time(NULL);
	text = malloc(SHIM_ENROL_TEXT_MAX);
	sealed = malloc(SHIM_ENROL_TEXT_MAX + SHIM_ENROL_PUB_OVERHEAD);
	rc = text == NULL || sealed == NULL ? SHIM_ENOMEM :
		shim_enrol_format(set, text, SHIM_ENROL_TEXT_MAX, &tlen);
	if (rc == 0) {
		rc = shim_enrol_seal_to(&lp.port.crypto, &lp.port.rng,
					r.identity_pub, (const uint8_t *)text,
					tlen, sealed,
					SHIM_ENROL_TEXT_MAX +
						SHIM_ENROL_PUB_OVERHEAD,
					&slen);
	}
	if (rc == 0) {
		rc = shim_write_file_atomic(out, sealed, slen, 0600);
	}
	if (rc != 0) {
		fprintf(stderr, "shimctl enrolment export: %s: %s\n", out,
			shim_strerror(rc));
		goto out;
	}
	printf("%u technicians of shim %s sealed for shim %s (serial %s): %s\n"
	       "Codes up to the window around %lld are spent. On the new "
	       "unit: shimctl enrolment restore %s\n",
	       (unsigned)set->n, old_id, r.shim_id, r.serial, out,
	       (long long)seen, out);
	status = 0;
out:
	if (text != NULL) {
		shim_memzero(text, SHIM_ENROL_TEXT_MAX);
		free(text);
	}
	free(sealed);
	free(buf);
	shim_enrol_wipe(set);
	free(set);
	shim_linux_port_fini(&lp);
	return status;
}

static int do_restore(const char *config_path, const char *file, int force)
{
	struct tool_store ts;
	struct shim_enrol_set *in = calloc(1, sizeof(*in));
	char *idpath = NULL;
	int status = 1;

	if (in == NULL) {
		return 1;
	}
	if (tool_store_open(&ts, config_path, 1, "enrolment restore") != 0) {
		goto out;
	}
	idpath = shim_keys_identity_path(&ts.cfg);
	if (idpath == NULL ||
	    open_to_key(&ts.lp.port.crypto, idpath, file, in,
			"sealed for another unit (export it for this unit's "
			"inventory record)") != 0) {
		goto out;
	}
	if (strcmp(in->shim_id, ts.cfg.shim_id) != 0) {
		fprintf(stderr, "shimctl enrolment restore: %s was made for shim "
			"'%s', this unit is '%s'\n", file, in->shim_id,
			ts.cfg.shim_id);
		goto out;
	}
	if (ts.set->n > 0 && !force) {
		fprintf(stderr, "shimctl enrolment restore: this unit already has "
			"%u technicians in its store: --force replaces them\n",
			(unsigned)ts.set->n);
		goto out;
	}
	memcpy(ts.set, in, sizeof(*in));
	if (tool_store_commit(&ts, "enrolment restore") != 0) {
		goto out;
	}
	printf("Restored %u technicians; no one enrols again.\n",
	       (unsigned)in->n);
	status = 0;
out:
	free(idpath);
	shim_enrol_wipe(in);
	free(in);
	tool_store_close(&ts);
	return status;
}

int cmd_enrolment_main(int argc, char **argv, const char *config_path)
{
	const char *verb = argc > 1 ? argv[1] : "";
	const char *out = tool_opt(argc, argv, "--out");

	if (strcmp(verb, "keygen") == 0) {
		return out != NULL ? do_keygen(out) : usage();
	}
	if (strcmp(verb, "escrow") == 0) {
		return do_escrow(config_path, out);
	}
	if (strcmp(verb, "export") == 0) {
		const char *e = tool_opt(argc, argv, "--escrow");
		const char *k = tool_opt(argc, argv, "--custody-key");
		const char *i = tool_opt(argc, argv, "--inventory");
		const char *a = tool_opt(argc, argv, "--authority");

		if (e == NULL || k == NULL || i == NULL || a == NULL ||
		    out == NULL) {
			return usage();
		}
		return do_export(e, k, i, a, out,
				 tool_opt(argc, argv, "--last-seen"),
				 tool_opt(argc, argv, "--window"));
	}
	if (strcmp(verb, "restore") == 0) {
		int force = tool_flag(argc, argv, "--force");

		if (argc != 3 + force || argv[2][0] == '-') {
			return usage();
		}
		return do_restore(config_path, argv[2], force);
	}
	return usage();
}
