/*
 * shimctl inventory: the signed inventory record of a unit (provenance;
 * common/inventory.h, docs/lifecycle.md).
 *
 *   shimctl inventory keygen --out FILE [--pub FILE]
 *       makes the provisioning authority's key (0600; keep it on the
 *       provisioning bench or offline) and its public key (FILE.pub).
 *   shimctl inventory create --serial SN [--shim-id ID] --operator NAME
 *                            [--identity FILE] [--recording-pub FILE]
 *                            [--binary FILE] [--key AUTHKEY] [--out FILE]
 *       writes the unit's record from its identity key, recording public
 *       key and shimd binary (defaults from the configuration); signed
 *       when --key is given, else for signing elsewhere.
 *   shimctl inventory sign RECORD --key AUTHKEY [--out FILE]
 *   shimctl inventory verify RECORD --authority PUB [--json]
 *       exit 0 when the record is well formed and signed by that
 *       authority, 1 when it is not signed by it, 3 when it is unreadable
 *       or malformed (FILE:LINE: why).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inventory.h"
#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "subcommands.h"
#include "toolutil.h"
#include "util.h"

#ifdef SHIM_FACTORY_BUILD
#define THIS_BUILD SHIM_INV_BUILD_FACTORY
#else
#define THIS_BUILD SHIM_INV_BUILD_DEPLOYED
#endif

static const char usage_text[] =
	"usage: shimctl inventory keygen --out FILE [--pub FILE]\n"
	"       shimctl inventory create --serial SN [--shim-id ID] --operator NAME\n"
	"                [--identity FILE] [--recording-pub FILE] [--binary FILE]\n"
	"                [--key AUTHKEY] [--out FILE]\n"
	"       shimctl inventory sign RECORD --key AUTHKEY [--out FILE]\n"
	"       shimctl inventory verify RECORD --authority PUB [--json]\n";

static int usage(int rc)
{
	fputs(usage_text, rc == 0 ? stdout : stderr);
	return rc;
}

enum {
	O_OUT = 1, O_PUB, O_SERIAL, O_SHIM_ID, O_OPERATOR, O_IDENTITY,
	O_RECPUB, O_BINARY, O_KEY, O_AUTHORITY, O_JSON, O_HELP,
};

static const struct option longopts[] = {
	{ "out", required_argument, NULL, O_OUT },
	{ "pub", required_argument, NULL, O_PUB },
	{ "serial", required_argument, NULL, O_SERIAL },
	{ "shim-id", required_argument, NULL, O_SHIM_ID },
	{ "operator", required_argument, NULL, O_OPERATOR },
	{ "identity", required_argument, NULL, O_IDENTITY },
	{ "recording-pub", required_argument, NULL, O_RECPUB },
	{ "binary", required_argument, NULL, O_BINARY },
	{ "key", required_argument, NULL, O_KEY },
	{ "authority", required_argument, NULL, O_AUTHORITY },
	{ "json", no_argument, NULL, O_JSON },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	const char *out, *pub, *serial, *shim_id, *op, *identity, *recpub;
	const char *binary, *key, *authority;
	int json;
	const char *arg;          /* the one positional argument (RECORD) */
};

/* Which options each verb takes (a bit per option id). */
#define B(o) (1u << (o))
static const struct verb {
	const char *name;
	unsigned allowed;
	int positional;
} verbs[] = {
	{ "keygen", B(O_OUT) | B(O_PUB), 0 },
	{ "create", B(O_SERIAL) | B(O_SHIM_ID) | B(O_OPERATOR) | B(O_IDENTITY) |
		    B(O_RECPUB) | B(O_BINARY) | B(O_KEY) | B(O_OUT), 0 },
	{ "sign", B(O_KEY) | B(O_OUT), 1 },
	{ "verify", B(O_AUTHORITY) | B(O_JSON), 1 },
};

/* Parses argv[2..] (argv[1] is the verb), options and the positional
 * argument in any order. 0, 1 for --help, or 2 (the caller prints the
 * usage). */
static int parse(int argc, char **argv, const struct verb *v, struct opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	/* The verb is argv[0] of the parse; optind 0 restarts getopt. */
	argc--;
	argv++;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == O_HELP) {
			return 1;
		}
		if (c == '?' || c == ':') {
			fprintf(stderr, "shimctl inventory %s: %s: %s\n",
				v->name, c == ':' ? "missing value" :
				"unknown option", argv[optind - 1]);
			return 2;
		}
		if (c == '?' || c == ':' || c <= 0 || c > O_HELP ||
		    !(v->allowed & B(c))) {
			if (c > 0 && c < O_HELP) {
				fprintf(stderr, "shimctl inventory %s: option "
						"--%s does not apply\n",
					v->name, longopts[c - 1].name);
			}
			return 2;
		}
		switch (c) {
		case O_OUT: o->out = optarg; break;
		case O_PUB: o->pub = optarg; break;
		case O_SERIAL: o->serial = optarg; break;
		case O_SHIM_ID: o->shim_id = optarg; break;
		case O_OPERATOR: o->op = optarg; break;
		case O_IDENTITY: o->identity = optarg; break;
		case O_RECPUB: o->recpub = optarg; break;
		case O_BINARY: o->binary = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_AUTHORITY: o->authority = optarg; break;
		case O_JSON: o->json = 1; break;
		}
	}
	if (argc - optind != v->positional) {
		fprintf(stderr, "shimctl inventory %s: %s\n", v->name,
			argc - optind > v->positional ? "unexpected argument" :
							"which record?");
		return 2;
	}
	if (v->positional) {
		o->arg = argv[optind];
	}
	return 0;
}

static int load_pub(const char *path, uint8_t pub[SHIM_P256_PUB_LEN])
{
	int rc = shim_keys_load_public(path, pub);

	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", path,
			rc == SHIM_EINVAL ? "not a P-256 key" : shim_strerror(rc));
	}
	return rc;
}

static int write_text(const char *path, const char *text, size_t len)
{
	int rc;

	if (path == NULL) {
		return fwrite(text, 1, len, stdout) == len ? 0 : 1;
	}
	rc = shim_write_file_atomic(path, (const uint8_t *)text, len, 0644);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", path, shim_strerror(rc));
		return 1;
	}
	return 0;
}

/* Sets the authority from the key file, signs, and writes the record. */
static int sign_and_write(struct shim_inventory *r, const char *key,
			  const char *out)
{
	char text[SHIM_INV_MAX + 160], hex[2 * SHIM_P256_SIG_LEN + 1];
	uint8_t pub[SHIM_P256_PUB_LEN], digest[32], sig[SHIM_P256_SIG_LEN];
	size_t len;
	int rc;

	if (key != NULL) {
		if (load_pub(key, pub) != 0) {
			return 1;
		}
		shim_inv_key_digest(pub, r->authority);
	} else {
		memset(r->authority, 0, sizeof(r->authority));
	}
	rc = shim_inv_format(r, text, sizeof(text), &len);
	if (rc != 0) {
		fprintf(stderr, "shimctl: inventory: %s\n",
			rc == SHIM_EINVAL ? "serial and shim ID take 1-63 of "
			"A-Z a-z 0-9 . _ : -; operator and version printable "
			"text without leading or trailing spaces" :
			shim_strerror(rc));
		return 1;
	}
	if (key != NULL) {
		shim_sha256((const uint8_t *)text, len, digest);
		rc = shim_p256_sign_with(key, digest, sig);
		if (rc != 0) {
			fprintf(stderr, "shimctl: %s: cannot sign: %s\n", key,
				shim_strerror(rc));
			return 1;
		}
		shim_hex_encode(sig, sizeof(sig), hex);
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"signature %s\n", hex);
	}
	return write_text(out, text, len);
}

/* Reads and parses RECORD; prints FILE:LINE: why on error. */
static int read_record(const char *path, struct shim_inventory *r)
{
	char buf[SHIM_INV_MAX + 1];
	const char *why = NULL;
	size_t n;
	FILE *f;
	int line = 0;

	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "shimctl: %s: %s\n", path, strerror(errno));
		return 3;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > SHIM_INV_MAX) {
		fprintf(stderr, "shimctl: %s: record too long\n", path);
		return 3;
	}
	if (shim_inv_parse(buf, n, r, &line, &why) != 0) {
		fprintf(stderr, "%s:%d: %s\n", path, line, why);
		return 3;
	}
	return 0;
}

static int default_binary(char *out, size_t cap)
{
	char self[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(out, cap, "%s/shimd", self) < cap &&
			    access(out, R_OK) == 0) {
				return 0;
			}
			if ((size_t)snprintf(out, cap, "%s/../sbin/shimd",
					     self) < cap &&
			    access(out, R_OK) == 0) {
				return 0;
			}
		}
	}
	snprintf(out, cap, "/usr/sbin/shimd");
	return access(out, R_OK) == 0 ? 0 : -1;
}

static int hex_to_bin(const char hex[65], uint8_t out[32])
{
	size_t i;

	for (i = 0; i < 32; i++) {
		out[i] = (uint8_t)(shim_hexval(hex[2 * i]) << 4 |
				   shim_hexval(hex[2 * i + 1]));
	}
	return 0;
}

/* Fills a record from the unit's files (the configuration gives what is
 * not named). Returns 0 or 1 after printing why. */
int shim_tool_inventory_fill(struct shim_inventory *r, const char *config_path,
			     const char *serial, const char *shim_id,
			     const char *op, const char *identity,
			     const char *recpub, const char *binary)
{
	struct shim_config cfg;
	uint8_t rpub[SHIM_P256_PUB_LEN];
	char bin[PATH_MAX], hex[65];
	char *idpath = NULL;
	int have_cfg, rc = 1, local = 0;

	memset(r, 0, sizeof(*r));
	have_cfg = tool_load_config(config_path, &cfg, 1);
	if (have_cfg < 0) {
		return 1;
	}
	if (shim_id == NULL) {
		shim_id = cfg.shim_id;
	}
	if (serial == NULL || op == NULL || shim_id == NULL ||
	    strlen(serial) > SHIM_INV_ID_MAX || strlen(shim_id) > SHIM_INV_ID_MAX ||
	    strlen(op) > SHIM_INV_TEXT_MAX) {
		fprintf(stderr, "shimctl: inventory: --serial, --operator and a "
				"shim ID (--shim-id or the configuration's) are "
				"needed, each within its length\n");
		goto out;
	}
	snprintf(r->serial, sizeof(r->serial), "%s", serial);
	snprintf(r->shim_id, sizeof(r->shim_id), "%s", shim_id);
	snprintf(r->op, sizeof(r->op), "%s", op);
	snprintf(r->software, sizeof(r->software), "%s", SHIM_VERSION);
	r->build = THIS_BUILD;
	r->provisioned = (int64_t)time(NULL);
	if (identity == NULL) {
		idpath = shim_keys_identity_path(&cfg);
		identity = idpath;
	}
	if (identity == NULL || load_pub(identity, r->identity_pub) != 0) {
		goto out;
	}
	if (recpub != NULL) {
		if (load_pub(recpub, rpub) != 0) {
			goto out;
		}
	} else if (shim_keys_recording_public(&cfg, rpub, &local) != 0) {
		fprintf(stderr, "shimctl: inventory: no recording public key "
				"(recording.public_key, or --recording-pub)\n");
		goto out;
	}
	shim_inv_key_digest(rpub, r->recording_key);
	if (binary == NULL) {
		if (default_binary(bin, sizeof(bin)) != 0) {
			fprintf(stderr, "shimctl: inventory: shimd not found "
					"(--binary FILE)\n");
			goto out;
		}
		binary = bin;
	}
	if (shim_sha256_file_hex(binary, hex) != 0) {
		fprintf(stderr, "shimctl: %s: cannot read\n", binary);
		goto out;
	}
	hex_to_bin(hex, r->binary);
	rc = 0;
out:
	free(idpath);
	shim_config_free(&cfg);
	return rc;
}

static void print_record(const struct shim_inventory *r, int json,
			 int verified)
{
	char id[2 * SHIM_P256_PUB_LEN + 1], rec[65], bin[65], auth[65];
	char when[32];
	struct tm tm;
	time_t t = (time_t)r->provisioned;

	shim_hex_encode(r->identity_pub, SHIM_P256_PUB_LEN, id);
	shim_hex_encode(r->recording_key, 32, rec);
	shim_hex_encode(r->binary, 32, bin);
	shim_hex_encode(r->authority, 32, auth);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (json) {
		/* Every field was checked by the parser: IDs and digests
		 * hold no characters that JSON escapes; the operator and
		 * version are printable ASCII, with " and \ escaped here. */
		const char *s;

		printf("{\"verified\":%s,\"serial\":\"%s\",\"shim_id\":\"%s\","
		       "\"identity_pub\":\"%s\",\"recording_key\":\"sha256:%s\","
		       "\"software\":\"", verified ? "true" : "false",
		       r->serial, r->shim_id, id, rec);
		for (s = r->software; *s; s++) {
			printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
		}
		printf("\",\"binary\":\"sha256:%s\",\"build\":\"%s\","
		       "\"provisioned\":\"%s\",\"operator\":\"", bin,
		       shim_inv_build_name(r->build), when);
		for (s = r->op; *s; s++) {
			printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
		}
		printf("\",\"authority\":\"sha256:%s\"}\n", auth);
		return;
	}
	printf("verdict:       %s\nserial:        %s\nshim_id:       %s\n"
	       "identity_pub:  %s\nrecording_key: sha256:%s\nsoftware:      %s\n"
	       "binary:        sha256:%s\nbuild:         %s\nprovisioned:   %s\n"
	       "operator:      %s\nauthority:     sha256:%s\n",
	       verified ? "signed by this authority" : "NOT VERIFIED",
	       r->serial, r->shim_id, id, rec, r->software, bin,
	       shim_inv_build_name(r->build), when, r->op, auth);
}

static int keygen(const struct opts *o)
{
	char pub_path[PATH_MAX], pem[SHIM_KEYS_PEM_MAX];
	int rc;

	if (o->out == NULL) {
		return usage(2);
	}
	snprintf(pub_path, sizeof(pub_path), "%s.pub", o->out);
	rc = shim_keys_generate(o->out, o->pub != NULL ? o->pub : pub_path,
				NULL, pem);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", o->out,
			rc == SHIM_EEXIST ? "exists (not overwritten)" :
					    shim_strerror(rc));
		return 1;
	}
	fprintf(stderr, "provisioning authority key written to %s (0600; keep "
			"it on the provisioning bench or offline); public key "
			"in %s, for shimctl inventory verify and shimctl "
			"monitor --authority\n",
		o->out, o->pub != NULL ? o->pub : pub_path);
	fputs(pem, stdout);
	return 0;
}

int cmd_inventory_main(int argc, char **argv, const char *config_path)
{
	struct shim_inventory r;
	struct opts o;
	uint8_t auth[SHIM_P256_PUB_LEN];
	size_t i;
	int rc;

	if (argc < 2) {
		return usage(2);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		return usage(0);
	}
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[1], verbs[i].name) == 0) {
			break;
		}
	}
	if (i == sizeof(verbs) / sizeof(verbs[0])) {
		fprintf(stderr, "shimctl inventory: unknown command '%s'\n",
			argv[1]);
		return usage(2);
	}
	rc = parse(argc, argv, &verbs[i], &o);
	if (rc != 0) {
		return usage(rc == 1 ? 0 : 2);
	}
	switch (i) {
	case 0:
		return keygen(&o);
	case 1:
		if (shim_tool_inventory_fill(&r, config_path, o.serial,
					     o.shim_id, o.op, o.identity,
					     o.recpub, o.binary) != 0) {
			return 1;
		}
		return sign_and_write(&r, o.key, o.out);
	case 2:
		if (o.key == NULL) {
			return usage(2);
		}
		rc = read_record(o.arg, &r);
		if (rc != 0) {
			return rc;
		}
		return sign_and_write(&r, o.key, o.out != NULL ? o.out : o.arg);
	default:
		if (o.authority == NULL) {
			return usage(2);
		}
		if (load_pub(o.authority, auth) != 0) {
			return 3;
		}
		rc = read_record(o.arg, &r);
		if (rc != 0) {
			return rc;
		}
		rc = shim_inv_verify(&r, auth);
		print_record(&r, o.json, rc == 0);
		if (rc != 0) {
			fprintf(stderr, "shimctl: %s: %s\n", o.arg,
				!r.is_signed ? "not signed" :
				"not signed by this authority (or altered)");
			return 1;
		}
		return 0;
	}
}
