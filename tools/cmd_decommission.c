/*
 * shimctl decommission: retires a unit before disposal or reassignment
 * (docs/lifecycle.md, "Decommissioning").
 *
 *   shimctl decommission [--yes] [--abandon-undelivered] [--operator NAME]
 *                        [--timeout SECONDS] [--out FILE]
 *
 * With shimd stopped (it takes shimd's storage lock, so it cannot run
 * beside it), it:
 *  1. gives the SIEM link --timeout seconds (default 10) to deliver the
 *     events still spooled, offers each sealed recording that central
 *     custody has not confirmed to the store (when custody: is set), then
 *     counts what is still undelivered: spooled events, recordings not
 *     confirmed (the upload state) and unsealed ones. Anything undelivered
 *     is refused unless --abandon-undelivered is given; the refusal lists
 *     what would be lost.
 *  2. asks for the shim ID as confirmation (--yes for scripts);
 *  3. writes the decommission record (inventory.h), signed with the
 *     identity key, and sends it as a signed "decommissioned" event (the
 *     event log, so the SIEM gets it when the link is up);
 *  4. leaves <storage_root>/DECOMMISSIONED holding the record, before
 *     anything is erased: shimd refuses to start while it is there, until
 *     the unit is provisioned again, and an erase interrupted half-way
 *     is finished by running decommission again;
 *  5. crypto-erases: every key, the technicians' secrets, the gate and
 *     clock state, the spool, the audit log and every recording are
 *     overwritten and removed (keys first), and a configuration that holds
 *     technician secrets inline is overwritten too.
 * The record is printed on standard output (and written to --out).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eventlog.h"
#include "inventory.h"
#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "subcommands.h"
#include "upload_state.h"
#include "uploader.h"
#include "toolutil.h"
#include "util.h"

#define MARKER_NAME "DECOMMISSIONED"

static const char usage_text[] =
	"usage: shimctl decommission [--yes] [--abandon-undelivered]\n"
	"           [--operator NAME] [--timeout SECONDS] [--out FILE]\n";

enum { O_YES = 1, O_ABANDON, O_OPERATOR, O_TIMEOUT, O_OUT, O_HELP };

static const struct option longopts[] = {
	{ "yes", no_argument, NULL, O_YES },
	{ "abandon-undelivered", no_argument, NULL, O_ABANDON },
	{ "operator", required_argument, NULL, O_OPERATOR },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "out", required_argument, NULL, O_OUT },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

struct erase_stats {
	unsigned files;
	unsigned long long bytes;
	unsigned failed;
};

static int usage(int rc)
{
	fputs(usage_text, rc == 0 ? stdout : stderr);
	return rc;
}

static int has_suffix(const char *name, const char *suffix)
{
	size_t l = strlen(name), s = strlen(suffix);

	return l > s && strcmp(name + l - s, suffix) == 0;
}

/* A sealed recording the custody store confirmed (upload state: same
 * size and digest as the local file). */
static int delivered(const struct shim_upload_state *st, const char *path,
		     const char *name)
{
	const struct shim_upload_entry *e;
	char id[SHIM_SESSION_ID_MAX], hex[65];
	uint64_t size;
	size_t l = strlen(name);

	if (l <= 4 || l - 4 >= sizeof(id)) {
		return 0;
	}
	memcpy(id, name, l - 4);
	id[l - 4] = '\0';
	e = shim_upload_state_find(st, id);
	return e != NULL && shim_custody_file_digest(path, hex, &size) == 0 &&
	       size == e->size && strcmp(hex, e->sha256) == 0;
}

/*
 * Recordings under dir not confirmed by central custody. With custody
 * configured, each sealed one is offered to the store first (the same
 * PUT and check as shimd's uploader; the upload state is updated), so
 * that a unit whose shimd was stopped with a queue still delivers it.
 */
static unsigned long undelivered_recordings(const struct shim_config *cfg,
					    const char *dir, int try_upload)
{
	struct shim_custody_target t;
	struct shim_upload_state st;
	struct shim_custody_result res;
	struct dirent *de;
	char path[PATH_MAX], err[160];
	char *sp = shim_config_path(cfg, "state/custody.state");
	unsigned long n = 0;
	int have_target = 0, changed = 0;
	DIR *d;

	memset(&st, 0, sizeof(st));
	if (sp == NULL || shim_upload_state_load(&st, sp, NULL) != 0) {
		shim_upload_state_free(&st);
		memset(&st, 0, sizeof(st));
	}
	if (try_upload && cfg->custody_url != NULL &&
	    shim_custody_target_from_config(&t, cfg, err, sizeof(err)) == 0) {
		have_target = 1;
	}
	d = opendir(dir);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     de->d_name) >= sizeof(path)) {
			continue;
		}
		if (has_suffix(de->d_name, ".part")) {
			n++; /* never sealed: shimd recovers it at its next start */
			continue;
		}
		if (!has_suffix(de->d_name, ".rec") ||
		    delivered(&st, path, de->d_name)) {
			continue;
		}
		if (have_target) {
			memset(&res, 0, sizeof(res));
			if (shim_custody_deliver(&t, path, de->d_name, &res) == 0) {
				struct shim_upload_entry e;
				size_t l = strlen(de->d_name) - 4;

				memset(&e, 0, sizeof(e));
				if (l < sizeof(e.session_id)) {
					memcpy(e.session_id, de->d_name, l);
					e.size = res.size;
					memcpy(e.sha256, res.sha256, sizeof(e.sha256));
					e.delivered_s = (int64_t)time(NULL);
					if (shim_upload_state_put(&st, &e) == 0) {
						changed = 1;
						fprintf(stderr, "delivered %s to central "
								"custody\n", de->d_name);
						continue;
					}
				}
			} else {
				fprintf(stderr, "%s: not delivered: %s\n",
					de->d_name, res.reason);
			}
		}
		n++;
	}
	if (d != NULL) {
		closedir(d);
	}
	if (changed && sp != NULL) {
		shim_upload_state_save(&st, sp);
	}
	shim_upload_state_free(&st);
	free(sp);
	return n;
}

/* Overwrites a regular file with zeros, syncs it and removes it. */
static int shred_file(const char *path, struct erase_stats *st)
{
	static const uint8_t zeros[65536];
	struct stat sb;
	off_t left;
	int fd;

	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		left = sb.st_size;
		while (left > 0) {
			size_t n = left > (off_t)sizeof(zeros) ? sizeof(zeros) :
								 (size_t)left;

			if (shim_write_all(fd, zeros, n) != 0) {
				st->failed++;
				break;
			}
			left -= (off_t)n;
		}
		fdatasync(fd);
		st->bytes += (unsigned long long)sb.st_size;
	}
	if (fd >= 0) {
		close(fd);
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		st->failed++;
		return -1;
	}
	st->files++;
	return 0;
}

/* Removes everything under dir (depth first), shredding files; keeps
 * dir itself when keep is set, and the entry called skip (may be NULL)
 * directly under it. Symbolic links are removed, not followed. */
static void erase_tree(const char *dir, int keep, const char *skip,
		       struct erase_stats *st)
{
	struct dirent *de;
	char path[PATH_MAX];
	struct stat sb;
	DIR *d = opendir(dir);

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0 ||
			    (skip != NULL && strcmp(de->d_name, skip) == 0)) {
				continue;
			}
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
					     de->d_name) >= sizeof(path)) {
				st->failed++;
				continue;
			}
			if (lstat(path, &sb) != 0) {
				continue;
			}
			if (S_ISDIR(sb.st_mode)) {
				erase_tree(path, 0, NULL, st);
			} else if (S_ISREG(sb.st_mode)) {
				shred_file(path, st);
			} else if (unlink(path) != 0) {
				st->failed++;
			}
		}
		closedir(d);
	}
	if (!keep && rmdir(dir) != 0 && errno != ENOENT) {
		st->failed++;
	}
}

/* Step 4: keys first, then the technicians' secrets (and a configuration
 * that holds them inline), then everything else under the storage root
 * except the marker, which is written before this starts: an erase that
 * is interrupted (power cut, a full disk, a kill) leaves a unit that
 * refuses to start, and running decommission again finishes it. */
static void crypto_erase(const struct shim_config *cfg, struct erase_stats *st)
{
	char *keys = shim_config_path(cfg, "keys");

	if (keys != NULL) {
		erase_tree(keys, 0, NULL, st);
	}
	free(keys);
	if (cfg->technicians_file != NULL &&
	    access(cfg->technicians_file, F_OK) == 0) {
		shred_file(cfg->technicians_file, st);
	}
	if (cfg->secrets_inline && cfg->file != NULL) {
		static const char notice[] =
			"# This unit was decommissioned; its configuration held "
			"technician secrets and was erased.\n";
		/* The configuration itself held secrets: overwritten. */
		shred_file(cfg->file, st);
		shim_write_file_atomic(cfg->file, (const uint8_t *)notice,
				       sizeof(notice) - 1, 0600);
	}
	erase_tree(cfg->storage_root, 1, MARKER_NAME, st);
}

/* Entries left under the storage root besides the marker. */
static unsigned leftovers(const char *root)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir(root);

	if (d == NULL) {
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, MARKER_NAME) != 0) {
			n++;
		}
	}
	closedir(d);
	return n;
}

/* The confirmation: the shim ID typed back. */
static int confirmed(const char *shim_id)
{
	char line[256];
	size_t n;

	fprintf(stderr, "This erases every key, secret, recording and log of "
			"shim %s; it cannot be undone.\nType the shim ID to "
			"go on: ", shim_id);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		return 0;
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	return strcmp(line, shim_id) == 0;
}

/* The unit's serial from its inventory record, or "unknown". */
static void unit_serial(const struct shim_config *cfg, char *out, size_t cap)
{
	struct shim_inventory r;
	char *path = shim_config_path(cfg, "inventory.inv");
	uint8_t *buf = NULL;
	size_t len = 0;

	snprintf(out, cap, "unknown");
	if (path != NULL &&
	    shim_read_file_opt(path, SHIM_INV_MAX, SHIM_READ_NOFOLLOW, &buf,
			       &len, NULL) == 0 &&
	    shim_inv_parse((const char *)buf, len, &r, NULL, NULL) == 0) {
		snprintf(out, cap, "%s", r.serial);
	}
	free(buf);
	free(path);
}

/* Gives the SIEM link up to timeout seconds to deliver the spool; es
 * gets the status after. */
static void drain(struct shim_eventlog *el, struct shim_eventlog_status *es,
		  long timeout)
{
	int64_t deadline = shim_linux_mono_ns() + (int64_t)timeout * 1000000000LL;

	for (;;) {
		shim_eventlog_status(el, es);
		if (es->spool_depth == 0 || !es->transport_enabled ||
		    shim_linux_mono_ns() >= deadline) {
			return;
		}
		usleep(100000);
	}
}

static int parse(int argc, char **argv, const char *opt[O_HELP], int *yes,
		 int *abandon)
{
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case O_HELP:
			return 1;
		case O_YES:
			*yes = 1;
			break;
		case O_ABANDON:
			*abandon = 1;
			break;
		case O_OPERATOR:
		case O_TIMEOUT:
		case O_OUT:
			opt[c] = optarg;
			break;
		default:
			fprintf(stderr, "shimctl decommission: %s: %s\n",
				c == ':' ? "missing value" : "unknown option",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "shimctl decommission: unexpected argument "
				"'%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

int cmd_decommission_main(int argc, char **argv, const char *config_path)
{
	const char *opt[O_HELP] = { NULL };
	struct shim_config cfg;
	struct shim_linux_port lp;
	struct shim_eventlog *el = NULL;
	struct shim_eventlog_status es;
	struct shim_decommission rec;
	struct shim_event *ev = NULL;
	struct erase_stats st = { 0, 0, 0 };
	char *lock = NULL, *idpath = NULL, *sessions = NULL, *marker = NULL;
	char *state = NULL;
	char text[SHIM_INV_MAX + 160], hex[2 * SHIM_P256_SIG_LEN + 1];
	char digest_hex[65];
	uint8_t digest[32], sig[SHIM_P256_SIG_LEN];
	unsigned long recordings;
	long timeout = 10;
	size_t len;
	int yes = 0, abandon = 0, lock_fd = -1, have_port = 0, status = 1, rc;

	rc = parse(argc, argv, opt, &yes, &abandon);
	if (rc != 0) {
		return usage(rc == 1 ? 0 : 2);
	}
	if (opt[O_TIMEOUT] != NULL) {
		char *end;

		timeout = strtol(opt[O_TIMEOUT], &end, 10);
		if (end == opt[O_TIMEOUT] || *end != '\0' || timeout < 0 ||
		    timeout > 3600) {
			fprintf(stderr, "shimctl decommission: --timeout takes "
					"0-3600 seconds\n");
			return 2;
		}
	}
	if (opt[O_OPERATOR] != NULL && !shim_inv_text_ok(opt[O_OPERATOR])) {
		fprintf(stderr, "shimctl decommission: --operator takes 1-127 "
				"printable characters\n");
		return 2;
	}
	if (tool_load_config(config_path, &cfg, 0) != 0) {
		return 1;
	}
	marker = shim_config_path(&cfg, MARKER_NAME);
	lock = shim_config_path(&cfg, "shimd.lock");
	idpath = shim_keys_identity_path(&cfg);
	sessions = shim_config_path(&cfg, "sessions");
	state = shim_config_path(&cfg, "state");
	if (marker == NULL || lock == NULL || idpath == NULL ||
	    sessions == NULL || state == NULL) {
		goto out;
	}
	if (access(marker, F_OK) == 0) {
		unsigned left = leftovers(cfg.storage_root);

		if (left == 0) {
			fprintf(stderr, "shimctl: this unit is already "
					"decommissioned (%s)\n", marker);
			goto out;
		}
		/* An earlier run wrote its record and the marker, then was
		 * interrupted while erasing: finish the erase. */
		fprintf(stderr, "shimctl: an earlier decommission of this unit "
				"was interrupted (%u entries left under %s): "
				"finishing the erase\n", left, cfg.storage_root);
		if (!yes && !confirmed(cfg.shim_id)) {
			fprintf(stderr, "shimctl: not confirmed: nothing "
					"erased\n");
			goto out;
		}
		crypto_erase(&cfg, &st);
		fprintf(stderr, "erased %u files (%llu bytes) under %s%s\n",
			st.files, st.bytes, cfg.storage_root,
			st.failed ? " (SOME FAILED: check the storage)" : "");
		status = st.failed ? 1 : 0;
		goto out;
	}
	/* shimd holds this lock while it runs. */
	lock_fd = open(lock, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "shimctl: shimd is running on %s: stop it first "
				"(systemctl stop shimd), then decommission\n",
			cfg.storage_root);
		goto out;
	}
	if (shim_linux_port_init(&lp, state) != 0) {
		fprintf(stderr, "shimctl: %s: cannot open\n", state);
		goto out;
	}
	have_port = 1;
	rc = shim_linux_port_load_identity(&lp, idpath);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s (a unit without its identity "
				"cannot sign its decommission record)\n", idpath,
			shim_strerror(rc));
		goto out;
	}
	rc = shim_eventlog_open(&el, &cfg, &lp.port);
	if (rc != 0) {
		fprintf(stderr, "shimctl: event log under %s: %s%s\n",
			cfg.storage_root, shim_strerror(rc),
			rc == SHIM_ESTATE ? " (is shimd running?)" : "");
		goto out;
	}
	shim_eventlog_set_logger(el, NULL, NULL);

	/* 1. What would be lost. */
	drain(el, &es, timeout);
	recordings = undelivered_recordings(&cfg, sessions, 1);
	if ((es.spool_depth > 0 || recordings > 0) && !abandon) {
		fprintf(stderr, "shimctl: not decommissioned: it would lose\n");
		if (es.spool_depth > 0) {
			fprintf(stderr, "  %llu event(s) not yet delivered to the "
					"SIEM (%s)\n",
				(unsigned long long)es.spool_depth,
				es.transport_enabled ? "the link is down" :
				"siem.transport is noop");
		}
		if (recordings > 0) {
			fprintf(stderr, "  %lu recording(s) under %s not "
					"delivered to central custody%s\n",
				recordings, sessions,
				cfg.custody_url == NULL ?
				" (no custody: store is configured)" : "");
		}
		fprintf(stderr, "Deliver them first, or give "
				"--abandon-undelivered to erase them.\n");
		goto out;
	}
	/* 2. Confirmation. */
	if (!yes && !confirmed(cfg.shim_id)) {
		fprintf(stderr, "shimctl: not confirmed: nothing erased\n");
		goto out;
	}

	/* 3. The record, signed with the identity, and the event. */
	memset(&rec, 0, sizeof(rec));
	unit_serial(&cfg, rec.serial, sizeof(rec.serial));
	snprintf(rec.shim_id, sizeof(rec.shim_id), "%s", cfg.shim_id);
	rc = lp.port.crypto.identity_pub(lp.port.crypto.ctx, rec.identity_pub);
	rec.when = (int64_t)time(NULL);
	snprintf(rec.op, sizeof(rec.op), "%s",
		 opt[O_OPERATOR] != NULL ? opt[O_OPERATOR] :
		 getenv("SUDO_USER") != NULL && shim_inv_text_ok(getenv("SUDO_USER")) ?
		 getenv("SUDO_USER") : "unknown");
	rec.undelivered_events = es.spool_depth;
	rec.undelivered_recordings = recordings;
	if (rc != 0 || shim_decom_format(&rec, text, sizeof(text), &len) != 0) {
		fprintf(stderr, "shimctl: the shim ID '%s' cannot go into a "
				"decommission record\n", cfg.shim_id);
		goto out;
	}
	shim_sha256((const uint8_t *)text, len, digest);
	rc = lp.port.crypto.identity_sign(lp.port.crypto.ctx, digest, sig);
	if (rc != 0) {
		fprintf(stderr, "shimctl: cannot sign with %s\n", idpath);
		goto out;
	}
	shim_hex_encode(sig, sizeof(sig), hex);
	len += (size_t)snprintf(text + len, sizeof(text) - len, "signature %s\n",
				hex);
	shim_hex_encode(digest, sizeof(digest), digest_hex);
	ev = calloc(1, sizeof(*ev));
	if (ev == NULL || shim_event_init(ev, "decommissioned", SHIM_SEV_ALERT,
					  rec.when * 1000000000LL) != 0 ||
	    shim_event_add(ev, "serial", rec.serial) != 0 ||
	    shim_event_add(ev, "by", rec.op) != 0 ||
	    shim_event_add_u64(ev, "undelivered_events",
			       rec.undelivered_events) != 0 ||
	    shim_event_add_u64(ev, "undelivered_recordings",
			       rec.undelivered_recordings) != 0 ||
	    shim_event_add(ev, "record_digest", digest_hex) != 0) {
		fprintf(stderr, "shimctl: cannot build the event\n");
		goto out;
	}
	ev->sign = 1;
	rc = shim_eventlog_emit(el, ev);
	if (rc == 0) {
		rc = shim_eventlog_flush(el, 5000);
	}
	if (rc != 0) {
		fprintf(stderr, "shimctl: the decommissioned event could not be "
				"recorded: %s (nothing erased)\n",
			shim_strerror(rc));
		goto out;
	}
	drain(el, &es, timeout);
	fprintf(stderr, "decommissioned event %s\n",
		!es.transport_enabled ? "not sent (siem.transport is noop)" :
		es.spool_depth == 0 ? "delivered to the SIEM" :
		"NOT delivered (the SIEM link is down): give the record below "
		"to the SOC");
	shim_eventlog_close(el, 1000);
	el = NULL;
	shim_linux_port_fini(&lp);
	have_port = 0;

	/* 4. The marker, holding the record, before anything is erased. */
	rc = shim_write_file_atomic(marker, (const uint8_t *)text, len, 0644);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s: nothing erased (the "
				"decommissioned event was sent; run decommission "
				"again once the storage is writable)\n",
			marker, shim_strerror(rc));
		fwrite(text, 1, len, stdout);
		goto out;
	}
	/* 5. Crypto-erase. */
	crypto_erase(&cfg, &st);
	if (opt[O_OUT] != NULL &&
	    shim_write_file_atomic(opt[O_OUT], (const uint8_t *)text, len,
				   0644) != 0) {
		fprintf(stderr, "shimctl: %s: cannot write\n", opt[O_OUT]);
	}
	fwrite(text, 1, len, stdout);
	fprintf(stderr, "erased %u files (%llu bytes) under %s%s; shimd will "
			"refuse to start until the unit is provisioned again\n",
		st.files, st.bytes, cfg.storage_root,
		st.failed ? " (SOME FAILED: check the storage)" : "");
	status = st.failed ? 1 : 0;
out:
	if (el != NULL) {
		shim_eventlog_close(el, 1000);
	}
	if (have_port) {
		shim_linux_port_fini(&lp);
	}
	if (lock_fd >= 0) {
		close(lock_fd);
	}
	free(ev);
	free(lock);
	free(idpath);
	free(sessions);
	free(marker);
	free(state);
	shim_config_free(&cfg);
	return status;
}
