/*
 * shimctl provision: takes a new unit from empty to ready in one command,
 * on the clinical-engineering bench (docs/lifecycle.md).
 *
 *   shimctl provision --serial SN --shim-id ID --operator NAME
 *       [--storage DIR] [--technician-port PATH] [--device-port PATH]
 *       [--recording-pub FILE] [--tamper-authority FILE]
 *       [--siem-host HOST [--siem-port N] --siem-ca FILE
 *        [--siem-server-name NAME] [--siem-cert FILE]]
 *       [--inventory-key KEY] [--force]
 *
 * It writes, in this order: the storage tree (0700), the configuration
 * (the --config path, /etc/shim/config.yaml by default) from the options,
 * the device identity key (0600), a CSR for the SIEM client certificate
 * (<storage>/keys/siem-client.csr, CN = the shim ID), the recording key
 * (central: --recording-pub is copied in; else a local-custody pair), the
 * tamper reset authority's public key, and the unit's inventory record
 * (<storage>/inventory.inv, signed with --inventory-key, else left for
 * `shimctl inventory sign`). The configuration is loaded back and checked
 * before anything else is made.
 *
 * Run again with the same serial and shim ID it changes nothing that
 * exists (the identity stays; the configuration is rewritten from the
 * options, so a later run can add --siem-cert once the CA has signed the
 * CSR). A unit provisioned as another serial or shim ID, or a
 * configuration not written by this command, is refused unless --force
 * is given; --force makes a new identity. --user NAME (shim.user: the
 * account shimd drops to, "shim" for the package) is written into the
 * configuration and given the storage tree. Provisioning a decommissioned
 * unit puts it back in service (the DECOMMISSIONED marker goes).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <pwd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "breakglass.h"
#include "inventory.h"
#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "subcommands.h"
#include "techstore.h"
#include "toolutil.h"
#include "util.h"

#define MARKER "# shimctl provision: "
#define DEFAULT_CONFIG "/etc/shim/config.yaml"

static const char usage_text[] =
	"usage: shimctl provision --serial SN --shim-id ID --operator NAME\n"
	"           [--storage DIR] [--technician-port PATH] [--device-port PATH]\n"
	"           [--recording-pub FILE] [--tamper-authority FILE]\n"
	"           [--siem-host HOST [--siem-port N] --siem-ca FILE\n"
	"            [--siem-server-name NAME] [--siem-cert FILE]]\n"
	"           [--inventory-key KEY] [--breakglass-key FILE]\n"
	"           [--enrolment-custody-key PUB] [--user NAME]\n"
	"           [--force]\n";

enum {
	O_SERIAL = 1, O_SHIM_ID, O_OPERATOR, O_STORAGE, O_TECH, O_DEV,
	O_RECPUB, O_TAMPER, O_SIEM_HOST, O_SIEM_PORT, O_SIEM_CA,
	O_SIEM_NAME, O_SIEM_CERT, O_INVKEY, O_BGKEY, O_USER, O_FORCE, O_ENCUST, O_HELP,
};

static const struct option longopts[] = {
	{ "serial", required_argument, NULL, O_SERIAL },
	{ "shim-id", required_argument, NULL, O_SHIM_ID },
	{ "operator", required_argument, NULL, O_OPERATOR },
	{ "storage", required_argument, NULL, O_STORAGE },
	{ "technician-port", required_argument, NULL, O_TECH },
	{ "device-port", required_argument, NULL, O_DEV },
	{ "recording-pub", required_argument, NULL, O_RECPUB },
	{ "tamper-authority", required_argument, NULL, O_TAMPER },
	{ "siem-host", required_argument, NULL, O_SIEM_HOST },
	{ "siem-port", required_argument, NULL, O_SIEM_PORT },
	{ "siem-ca", required_argument, NULL, O_SIEM_CA },
	{ "siem-server-name", required_argument, NULL, O_SIEM_NAME },
	{ "siem-cert", required_argument, NULL, O_SIEM_CERT },
	{ "inventory-key", required_argument, NULL, O_INVKEY },
	{ "breakglass-key", required_argument, NULL, O_BGKEY },
	{ "enrolment-custody-key", required_argument, NULL, O_ENCUST },
	{ "user", required_argument, NULL, O_USER },
	{ "force", no_argument, NULL, O_FORCE },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

struct prov {
	const char *opt[O_HELP];
	int force;
	const char *config;
	char keys[PATH_MAX];
	char identity[PATH_MAX];
	char recpub[PATH_MAX];
	char tamper[PATH_MAX];
	char bgkey[PATH_MAX];
	char encust[PATH_MAX];
	char csr[PATH_MAX];
	char inventory[PATH_MAX];
	char abs[2][PATH_MAX];   /* --siem-ca, --siem-cert made absolute */
	uid_t uid;               /* --user's */
	gid_t gid;
};

#define OPT(p, o) ((p)->opt[(o)])

static int usage(int rc)
{
	fputs(usage_text, rc == 0 ? stdout : stderr);
	return rc;
}

/* Values that go into the YAML inside double quotes: no quote, no
 * backslash, no control character. */
static int yaml_safe(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ||
		    *s == 0x7f) {
			return 0;
		}
	}
	return 1;
}

static int join(char *out, size_t cap, const char *a, const char *b)
{
	return (size_t)snprintf(out, cap, "%s/%s", a, b) < cap ? 0 : -1;
}

static int mkdir_0700(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "shimctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "shimctl: %s: not a directory\n", path);
		return -1;
	}
	if ((st.st_mode & 0077) != 0 && chmod(path, 0700) != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Copies a public key file in (after checking that it is one). */
static int install_pub(const char *from, const char *to)
{
	uint8_t pub[SHIM_P256_PUB_LEN];
	char pem[SHIM_KEYS_PEM_MAX];
	int rc;

	rc = shim_keys_load_public(from, pub);
	if (rc == 0) {
		rc = shim_keys_pub_pem(pub, pem, sizeof(pem));
	}
	if (rc == 0) {
		rc = shim_write_file_atomic(to, (const uint8_t *)pem,
					    strlen(pem), 0644);
	}
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", from,
			rc == SHIM_EINVAL ? "not a P-256 public key" :
					    shim_strerror(rc));
		return -1;
	}
	return 0;
}

/* The break-glass verify key (shimctl breakglass provision): it must be
 * this shim's. */
static int check_bgkey(const char *path, const char *shim_id)
{
	struct shim_bg_key k;
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned line = 0;
	int rc;

	rc = shim_read_file_opt(path, 4096, 0, &buf, &len, NULL);
	if (rc == 0) {
		rc = shim_bg_key_parse((const char *)buf, len, &k, &line);
	}
	shim_memzero(buf, len);
	free(buf);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s%s%u: not a break-glass verify key "
				"(shimctl breakglass provision)\n", path,
			line ? ":" : "", line);
		shim_memzero(&k, sizeof(k));
		return -1;
	}
	rc = strcmp(k.shim_id, shim_id) == 0 ? 0 : -1;
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s is the break-glass key of shim '%s', "
				"not of %s\n", path, k.shim_id, shim_id);
	}
	shim_memzero(&k, sizeof(k));
	return rc;
}

/* Copies a secret file in (0600). */
static int install_secret(const char *from, const char *to)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rc = shim_read_file_opt(from, 4096, 0, &buf, &len, NULL);
	if (rc == 0) {
		rc = shim_write_file_atomic(to, buf, len, 0600);
	}
	shim_memzero(buf, len);
	free(buf);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s -> %s: %s\n", from, to,
			shim_strerror(rc));
		return -1;
	}
	return 0;
}

/* Gives the storage tree to shimd's account (shim.user): what provision
 * made as root must be readable by the shimd that drops to it. Links are
 * changed, never followed. */
static int chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	struct dirent *de;
	char path[PATH_MAX];
	struct stat st;
	int rc = 0;
	DIR *d;

	if (lchown(dir, uid, gid) != 0) {
		return -1;
	}
	d = opendir(dir);
	if (d == NULL) {
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
			continue;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     de->d_name) >= sizeof(path) ||
		    lstat(path, &st) != 0) {
			rc = -1;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			rc |= chown_tree(path, uid, gid);
		} else if (lchown(path, uid, gid) != 0) {
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/* The configuration text from the options. */
static int config_text(const struct prov *p, char *out, size_t cap)
{
	const char *tech = OPT(p, O_TECH) ? OPT(p, O_TECH) : "/dev/ttyUSB0";
	const char *dev = OPT(p, O_DEV) ? OPT(p, O_DEV) : "/dev/ttyUSB1";
	size_t n = 0;
	int w;

#define ADD(...)                                                        \
	do {                                                            \
		w = snprintf(out + n, cap - n, __VA_ARGS__);            \
		if (w < 0 || (size_t)w >= cap - n) {                    \
			return -1;                                      \
		}                                                       \
		n += (size_t)w;                                         \
	} while (0)
	ADD(MARKER "serial %s, shim %s. Rerun it to change these settings;\n"
	    "# edits by hand are kept only if the next run has --force.\n"
	    "shim:\n  id: \"%s\"\n  description: \"serial %s\"\n%s%s%s"
	    "serial:\n  technician_side_path: \"%s\"\n"
	    "  device_side_path: \"%s\"\n"
	    "storage:\n  root: \"%s\"\n",
	    OPT(p, O_SERIAL), OPT(p, O_SHIM_ID), OPT(p, O_SHIM_ID),
	    OPT(p, O_SERIAL), OPT(p, O_USER) ? "  user: \"" : "",
	    OPT(p, O_USER) ? OPT(p, O_USER) : "", OPT(p, O_USER) ? "\"\n" : "",
	    tech, dev, OPT(p, O_STORAGE));
	if (OPT(p, O_RECPUB)) {
		ADD("recording:\n  public_key: \"%s\"\n", p->recpub);
	}
	if (OPT(p, O_TAMPER)) {
		ADD("tamper:\n  reset_authority_public_key: \"%s\"\n",
		    p->tamper);
	}
	if (OPT(p, O_BGKEY)) {
		ADD("breakglass:\n  verify_key: \"%s\"\n", p->bgkey);
	}
	if (OPT(p, O_ENCUST)) {
		ADD("enrolment:\n  custody_key: \"%s\"\n", p->encust);
	}
	if (OPT(p, O_SIEM_HOST) && OPT(p, O_SIEM_CERT)) {
		ADD("siem:\n  transport: syslog-tls\n  host: \"%s\"\n"
		    "  port: %s\n  ca: \"%s\"\n  client_cert: \"%s\"\n"
		    "  client_key: \"%s\"\n",
		    OPT(p, O_SIEM_HOST),
		    OPT(p, O_SIEM_PORT) ? OPT(p, O_SIEM_PORT) : "6514",
		    OPT(p, O_SIEM_CA), OPT(p, O_SIEM_CERT), p->identity);
		if (OPT(p, O_SIEM_NAME)) {
			ADD("  server_name: \"%s\"\n", OPT(p, O_SIEM_NAME));
		}
	} else if (OPT(p, O_SIEM_HOST)) {
		ADD("# siem: %s, once the CA has signed %s: rerun with "
		    "--siem-cert FILE\n", OPT(p, O_SIEM_HOST), p->csr);
	}
#undef ADD
	return 0;
}

/* The configuration: refused when one exists that this command did not
 * write (unless --force); unchanged when it already says the same. With
 * dry set only checks that it may be written. */
static int write_config(const struct prov *p, int dry)
{
	char text[8192], old[8192];
	size_t n = 0;
	FILE *f;

	if (config_text(p, text, sizeof(text)) != 0) {
		fprintf(stderr, "shimctl: provision: settings too long\n");
		return -1;
	}
	f = fopen(p->config, "r");
	if (f != NULL) {
		n = fread(old, 1, sizeof(old) - 1, f);
		fclose(f);
		old[n] = '\0';
		if (strcmp(old, text) == 0) {
			return 0;
		}
		if (strncmp(old, MARKER, strlen(MARKER)) != 0 && !p->force) {
			fprintf(stderr, "shimctl: %s exists and was not written "
					"by shimctl provision: not overwritten "
					"(--force replaces it)\n", p->config);
			return -1;
		}
	} else if (errno != ENOENT) {
		fprintf(stderr, "shimctl: %s: %s\n", p->config, strerror(errno));
		return -1;
	}
	if (dry) {
		return 0;
	}
	if (shim_write_file_atomic(p->config, (const uint8_t *)text,
				   strlen(text), 0640) != 0) {
		fprintf(stderr, "shimctl: %s: cannot write\n", p->config);
		return -1;
	}
	return 0;
}

/* An earlier provisioning of this storage: the same unit, or refused. */
static int check_earlier(const struct prov *p, int *same_identity)
{
	struct shim_inventory r;
	char buf[SHIM_INV_MAX + 1];
	uint8_t pub[SHIM_P256_PUB_LEN];
	size_t n;
	FILE *f;

	*same_identity = 0;
	f = fopen(p->inventory, "rb");
	if (f == NULL) {
		/* An identity without a record: made by hand or by shimd. */
		if (access(p->identity, F_OK) == 0 && !p->force) {
			fprintf(stderr, "shimctl: %s holds an identity that no "
					"inventory record describes: not "
					"replaced (--force makes a new one)\n",
				p->identity);
			return -1;
		}
		return 0;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > SHIM_INV_MAX ||
	    shim_inv_parse(buf, n, &r, NULL, NULL) != 0) {
		if (!p->force) {
			fprintf(stderr, "shimctl: %s is not a readable inventory "
					"record (--force re-provisions)\n",
				p->inventory);
			return -1;
		}
		return 0;
	}
	if (strcmp(r.serial, OPT(p, O_SERIAL)) != 0 ||
	    strcmp(r.shim_id, OPT(p, O_SHIM_ID)) != 0) {
		if (!p->force) {
			fprintf(stderr, "shimctl: this unit is provisioned as "
					"serial %s, shim %s: not changed "
					"(--force re-provisions it with a new "
					"identity)\n", r.serial, r.shim_id);
			return -1;
		}
		return 0;
	}
	if (shim_keys_load_public(p->identity, pub) == 0) {
		if (memcmp(pub, r.identity_pub, sizeof(pub)) == 0) {
			*same_identity = !p->force;
		} else if (!p->force) {
			fprintf(stderr, "shimctl: %s is not the identity that %s "
					"describes: not replaced (--force makes "
					"a new one)\n", p->identity,
				p->inventory);
			return -1;
		}
	}
	return 0;
}

/* 1 when the record at path verifies under the key file's public key
 * (a rerun then keeps it as it is). */
static int signed_by(const char *path, const char *key)
{
	struct shim_inventory r;
	uint8_t pub[SHIM_P256_PUB_LEN], *buf = NULL;
	size_t len = 0;
	int ok;

	if (shim_keys_load_public(key, pub) != 0 ||
	    shim_read_file_opt(path, SHIM_INV_MAX, SHIM_READ_NOFOLLOW, &buf,
			       &len, NULL) != 0) {
		return 0;
	}
	ok = shim_inv_parse((const char *)buf, len, &r, NULL, NULL) == 0 &&
	     shim_inv_verify(&r, pub) == 0;
	free(buf);
	return ok;
}

static int parse(int argc, char **argv, struct prov *p)
{
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == O_HELP) {
			return 1;
		}
		if (c == '?' || c == ':') {
			fprintf(stderr, "shimctl provision: %s: %s\n",
				c == ':' ? "missing value" : "unknown option",
				argv[optind - 1]);
			return 2;
		}
		if (c == O_FORCE) {
			p->force = 1;
		} else if (c > 0 && c < O_HELP) {
			p->opt[c] = optarg;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "shimctl provision: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	return 0;
}

int cmd_provision_main(int argc, char **argv, const char *config_path)
{
	struct shim_config cfg;
	struct shim_inventory rec;
	struct prov *p;
	uint8_t rpub[SHIM_P256_PUB_LEN];
	char inv_text[SHIM_INV_MAX + 160], hex[2 * SHIM_P256_SIG_LEN + 1];
	uint8_t digest[32], sig[SHIM_P256_SIG_LEN];
	size_t len, i;
	int rc, same = 0, local = 0, status = 1, have_cfg = 0;

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		return 1;
	}
	rc = parse(argc, argv, p);
	if (rc != 0) {
		free(p);
		return usage(rc == 1 ? 0 : 2);
	}
	p->config = config_path != NULL ? config_path : DEFAULT_CONFIG;
	if (OPT(p, O_STORAGE) == NULL) {
		p->opt[O_STORAGE] = "/var/lib/shim";
	}
	if (!OPT(p, O_SERIAL) || !OPT(p, O_SHIM_ID) || !OPT(p, O_OPERATOR)) {
		fprintf(stderr, "shimctl provision: --serial, --shim-id and "
				"--operator are required\n");
		free(p);
		return usage(2);
	}
	if (OPT(p, O_SIEM_HOST) && !OPT(p, O_SIEM_CA)) {
		fprintf(stderr, "shimctl provision: --siem-host needs --siem-ca "
				"(the CA that signed the SIEM's certificate)\n");
		free(p);
		return 2;
	}
	for (i = 1; i < O_HELP; i++) {
		if (p->opt[i] != NULL && !yaml_safe(p->opt[i])) {
			fprintf(stderr, "shimctl provision: --%s may not hold "
					"quotes, backslashes or control "
					"characters\n", longopts[i - 1].name);
			free(p);
			return 2;
		}
	}
	if (OPT(p, O_STORAGE)[0] != '/') {
		fprintf(stderr, "shimctl provision: --storage takes an absolute "
				"path\n");
		free(p);
		return 2;
	}
	if (join(p->keys, sizeof(p->keys), OPT(p, O_STORAGE), "keys") != 0 ||
	    join(p->identity, sizeof(p->identity), p->keys, "identity.key") ||
	    join(p->recpub, sizeof(p->recpub), p->keys, "recording-central.pub") ||
	    join(p->tamper, sizeof(p->tamper), p->keys, "tamper-authority.pub") ||
	    join(p->bgkey, sizeof(p->bgkey), p->keys, "breakglass.key") ||
	    join(p->encust, sizeof(p->encust), p->keys,
		 "enrolment-custody.pub") ||
	    join(p->csr, sizeof(p->csr), p->keys, "siem-client.csr") ||
	    join(p->inventory, sizeof(p->inventory), OPT(p, O_STORAGE),
		 "inventory.inv")) {
		fprintf(stderr, "shimctl provision: --storage path too long\n");
		free(p);
		return 2;
	}
	/* Validate the record's fields before anything is written. */
	memset(&rec, 0, sizeof(rec));
	if (!shim_inv_id_ok(OPT(p, O_SERIAL)) ||
	    !shim_inv_id_ok(OPT(p, O_SHIM_ID)) ||
	    !shim_inv_text_ok(OPT(p, O_OPERATOR))) {
		fprintf(stderr, "shimctl provision: the serial and shim ID take "
				"1-63 of A-Z a-z 0-9 . _ : -, the operator "
				"1-127 printable characters\n");
		free(p);
		return 2;
	}
	/* Files named by the options: readable, and absolute in the
	 * configuration (which resolves relative paths against its own
	 * directory). */
	for (i = 0; i < sizeof(p->abs) / sizeof(p->abs[0]); i++) {
		static const int file_opts[] = { O_SIEM_CA, O_SIEM_CERT };
		const char *f = OPT(p, file_opts[i]);

		if (f != NULL) {
			if (realpath(f, p->abs[i]) == NULL) {
				fprintf(stderr, "shimctl: %s: %s\n", f,
					strerror(errno));
				goto out;
			}
			p->opt[file_opts[i]] = p->abs[i];
		}
	}
	{
		uint8_t chk[SHIM_P256_PUB_LEN];

		if ((OPT(p, O_RECPUB) &&
		     shim_keys_load_public(OPT(p, O_RECPUB), chk) != 0) ||
		    (OPT(p, O_TAMPER) &&
		     shim_keys_load_public(OPT(p, O_TAMPER), chk) != 0)) {
			fprintf(stderr, "shimctl provision: %s: not a readable "
					"P-256 public key\n",
				OPT(p, O_RECPUB) &&
				shim_keys_load_public(OPT(p, O_RECPUB), chk) != 0 ?
				OPT(p, O_RECPUB) : OPT(p, O_TAMPER));
			goto out;
		}
	}
	if (OPT(p, O_USER) != NULL) {
		struct passwd *pw = getpwnam(OPT(p, O_USER));

		if (pw == NULL) {
			fprintf(stderr, "shimctl provision: --user %s: no such "
					"user\n", OPT(p, O_USER));
			goto out;
		}
		p->uid = pw->pw_uid;
		p->gid = pw->pw_gid;
	}
	if (OPT(p, O_BGKEY) && check_bgkey(OPT(p, O_BGKEY), OPT(p, O_SHIM_ID)) != 0) {
		goto out;
	}
	if (check_earlier(p, &same) != 0 || write_config(p, 1) != 0) {
		goto out;
	}
	if (mkdir_0700(OPT(p, O_STORAGE)) != 0 || mkdir_0700(p->keys) != 0) {
		goto out;
	}
	if (OPT(p, O_RECPUB) && install_pub(OPT(p, O_RECPUB), p->recpub) != 0) {
		goto out;
	}
	if (OPT(p, O_TAMPER) && install_pub(OPT(p, O_TAMPER), p->tamper) != 0) {
		goto out;
	}
	if (OPT(p, O_BGKEY) && install_secret(OPT(p, O_BGKEY), p->bgkey) != 0) {
		goto out;
	}
	if (OPT(p, O_ENCUST) && install_pub(OPT(p, O_ENCUST), p->encust) != 0) {
		goto out;
	}
	if (write_config(p, 0) != 0) {
		goto out;
	}
	if (tool_load_config(p->config, &cfg, 0) != 0) {
		fprintf(stderr, "shimctl provision: the configuration written to "
				"%s does not load (above)\n", p->config);
		goto out;
	}
	have_cfg = 1;
	if (!same && access(p->identity, F_OK) == 0) {
		/* --force, or an identity no record describes: replaced. */
		if (unlink(p->identity) != 0) {
			fprintf(stderr, "shimctl: %s: %s\n", p->identity,
				strerror(errno));
			goto out;
		}
	}
	rc = shim_keys_ensure_identity(&cfg);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", p->identity,
			shim_strerror(rc));
		goto out;
	}
	if (shim_keys_recording_public(&cfg, rpub, &local) != 0) {
		fprintf(stderr, "shimctl provision: no recording key\n");
		goto out;
	}
	if (!same || access(p->csr, F_OK) != 0) {
		if (shim_tool_identity_csr(p->identity, OPT(p, O_SHIM_ID),
					   p->csr) != 0) {
			goto out;
		}
	}
	if (!same || access(p->inventory, F_OK) != 0 ||
	    (OPT(p, O_INVKEY) && !signed_by(p->inventory, OPT(p, O_INVKEY)))) {
		if (shim_tool_inventory_fill(&rec, p->config, OPT(p, O_SERIAL),
					     OPT(p, O_SHIM_ID),
					     OPT(p, O_OPERATOR), p->identity,
					     NULL, NULL) != 0) {
			goto out;
		}
		if (OPT(p, O_INVKEY)) {
			uint8_t apub[SHIM_P256_PUB_LEN];

			if (shim_keys_load_public(OPT(p, O_INVKEY), apub) != 0) {
				fprintf(stderr, "shimctl: %s: not a P-256 key\n",
					OPT(p, O_INVKEY));
				goto out;
			}
			shim_inv_key_digest(apub, rec.authority);
		}
		if (shim_inv_format(&rec, inv_text, sizeof(inv_text), &len) !=
		    0) {
			fprintf(stderr, "shimctl provision: serial and shim ID "
					"take A-Z a-z 0-9 . _ : -; the operator "
					"printable text\n");
			goto out;
		}
		if (OPT(p, O_INVKEY)) {
			shim_sha256((const uint8_t *)inv_text, len, digest);
			if (shim_p256_sign_with(OPT(p, O_INVKEY), digest, sig) !=
			    0) {
				fprintf(stderr, "shimctl: %s: cannot sign\n",
					OPT(p, O_INVKEY));
				goto out;
			}
			shim_hex_encode(sig, sizeof(sig), hex);
			len += (size_t)snprintf(inv_text + len,
						sizeof(inv_text) - len,
						"signature %s\n", hex);
		}
		if (shim_write_file_atomic(p->inventory,
					   (const uint8_t *)inv_text, len,
					   0644) != 0) {
			fprintf(stderr, "shimctl: %s: cannot write\n",
				p->inventory);
			goto out;
		}
	}
	/* The storage key that seals the enrolment store. */
	rc = shim_techstore_ensure_key(&cfg);
	if (rc != 0) {
		fprintf(stderr, "shimctl provision: storage key: %s\n",
			shim_strerror(rc));
		goto out;
	}
	if (OPT(p, O_USER) && chown_tree(OPT(p, O_STORAGE), p->uid, p->gid) != 0) {
		fprintf(stderr, "shimctl provision: cannot give %s to %s\n",
			OPT(p, O_STORAGE), OPT(p, O_USER));
		goto out;
	}
	{
		/* A decommissioned unit is in service again. */
		char marker[PATH_MAX];

		if (join(marker, sizeof(marker), OPT(p, O_STORAGE),
			 "DECOMMISSIONED") == 0 && unlink(marker) == 0) {
			printf("(the unit was decommissioned; it is in service "
			       "again)\n");
		}
	}
	printf("provisioned serial %s as %s%s\n"
	       "  configuration:   %s\n"
	       "  storage:         %s (0700)\n"
	       "  identity key:    %s (0600)%s\n"
	       "  SIEM client CSR: %s (send to the hospital CA)\n"
	       "  recordings:      %s\n"
	       "  tamper reset:    %s\n"
	       "  break-glass:     %s\n"
	       "  enrolment store: %s (sealed under keys/storage.key)\n"
	       "  enrolment copy:  %s\n"
	       "  inventory:       %s (%s)\n",
	       OPT(p, O_SERIAL), OPT(p, O_SHIM_ID),
	       same ? " (already provisioned: nothing replaced)" : "",
	       p->config, OPT(p, O_STORAGE), p->identity,
	       same ? "" : " new", p->csr,
	       local ? "local custody key (no --recording-pub)" : p->recpub,
	       OPT(p, O_TAMPER) ? p->tamper : "no authority (--tamper-authority)",
	       OPT(p, O_BGKEY) ? p->bgkey : "none (--breakglass-key)",
	       cfg.enrol_store,
	       OPT(p, O_ENCUST) ? p->encust :
	       "none: a failed unit means re-enrolling (--enrolment-custody-key)",
	       p->inventory, OPT(p, O_INVKEY) ? "signed" :
	       "unsigned: shimctl inventory sign");
	status = 0;
out:
	if (have_cfg) {
		shim_config_free(&cfg);
	}
	free(p);
	return status;
}
