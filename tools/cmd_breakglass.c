/*
 * shimctl breakglass: the central side of break-glass (docs/breakglass.md).
 *
 *   shimctl breakglass keygen --out MASTER
 *       makes the central issuing secret (0600, never replaced).
 *   shimctl breakglass provision --shim ID --key MASTER --out FILE
 *       writes the verify key of one shim (0600): what goes onto that
 *       shim, named in its config as breakglass: {verify_key: FILE}.
 *   shimctl breakglass issue --shim ID --ttl DURATION --reason TEXT
 *       --key MASTER [--technician ID] [--issuer NAME] [--now UNIX]
 *       prints the code alone on the first line of standard output, then
 *       the JSON issuance record for the central audit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "breakglass.h"
#include "port_linux.h"
#include "subcommands.h"
#include "util.h"

#define FILE_MAX 4096
#define REASON_MAX 200

static int usage(FILE *f, int ex)
{
	fprintf(f,
		"usage: shimctl breakglass keygen --out MASTER\n"
		"       shimctl breakglass provision --shim ID --key MASTER --out FILE\n"
		"       shimctl breakglass issue --shim ID --ttl DURATION --reason TEXT "
		"--key MASTER\n"
		"                                [--technician ID] [--issuer NAME] "
		"[--now UNIX]\n"
		"DURATION: 90s, 15m, 1h (at most 24h); a bare number is seconds.\n");
	return ex;
}

enum { O_OUT = 1, O_SHIM, O_KEY, O_TTL, O_REASON, O_TECH, O_ISSUER, O_NOW };

struct bg_opts {
	const char *out, *shim, *key, *ttl, *reason, *tech, *issuer, *now;
};

/* getopt_long over argv[1..] (argv[1] is the verb). Returns 0, 1 for
 * --help, -1 for a usage error (reported). */
static int parse_opts(int argc, char **argv, struct bg_opts *o)
{
	static const struct option longs[] = {
		{ "out", required_argument, NULL, O_OUT },
		{ "shim", required_argument, NULL, O_SHIM },
		{ "key", required_argument, NULL, O_KEY },
		{ "ttl", required_argument, NULL, O_TTL },
		{ "reason", required_argument, NULL, O_REASON },
		{ "technician", required_argument, NULL, O_TECH },
		{ "issuer", required_argument, NULL, O_ISSUER },
		{ "now", required_argument, NULL, O_NOW },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc - 1, argv + 1, ":h", longs, NULL)) != -1) {
		switch (ch) {
		case O_OUT: o->out = optarg; break;
		case O_SHIM: o->shim = optarg; break;
		case O_KEY: o->key = optarg; break;
		case O_TTL: o->ttl = optarg; break;
		case O_REASON: o->reason = optarg; break;
		case O_TECH: o->tech = optarg; break;
		case O_ISSUER: o->issuer = optarg; break;
		case O_NOW: o->now = optarg; break;
		case 'h': return 1;
		case ':':
			fprintf(stderr, "shimctl breakglass: %s needs a value\n",
				argv[optind]);
			return -1;
		default:
			fprintf(stderr, "shimctl breakglass: unknown option %s\n",
				argv[optind]);
			return -1;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "shimctl breakglass: unexpected argument '%s'\n",
			argv[optind + 1]);
		return -1;
	}
	return 0;
}

static int id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > SHIM_BG_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* "90s", "15m", "1h", "600": seconds, or -1. */
static long parse_duration(const char *s)
{
	char *end;
	long v, mult = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno != 0 || v <= 0) {
		return -1;
	}
	if (*end == 's') {
		end++;
	} else if (*end == 'm') {
		mult = 60;
		end++;
	} else if (*end == 'h') {
		mult = 3600;
		end++;
	}
	if (*end != '\0' || v > 86400 / mult) {
		return -1;
	}
	return v * mult;
}

/* Creates path 0600 with O_EXCL|O_NOFOLLOW and writes it durably. */
static int write_secret(const char *path, const char *text)
{
	char *dir, *slash;
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		fprintf(stderr, "shimctl breakglass: %s: %s\n", path,
			errno == EEXIST ? "exists already, not replaced" :
					  strerror(errno));
		return 1;
	}
	rc = fchmod(fd, 0600) == 0 ? 0 : shim_err_from_errno(errno);
	if (rc == 0) {
		rc = shim_write_all(fd, text, strlen(text));
	}
	if (rc == 0 && fsync(fd) != 0) {
		rc = shim_err_from_errno(errno);
	}
	close(fd);
	if (rc != 0) {
		fprintf(stderr, "shimctl breakglass: %s: %s\n", path,
			shim_strerror(rc));
		unlink(path);
		return 1;
	}
	dir = strdup(path);
	if (dir != NULL) {
		slash = strrchr(dir, '/');
		if (slash != NULL) {
			*slash = '\0';
			(void)shim_fsync_dir(slash == dir ? "/" : dir);
		} else {
			(void)shim_fsync_dir(".");
		}
		free(dir);
	}
	return 0;
}

static int load_master(const char *path, uint8_t master[SHIM_BG_KEY_LEN])
{
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned mode = 0, line = 0;
	int rc;

	rc = shim_read_file_opt(path, FILE_MAX, SHIM_READ_NOFOLLOW, &buf, &len,
				&mode);
	if (rc != 0) {
		fprintf(stderr, "shimctl breakglass: %s: %s\n", path,
			shim_strerror(rc));
		return 1;
	}
	if ((mode & 077) != 0) {
		fprintf(stderr, "shimctl breakglass: warning: %s is mode %03o; "
				"the master secret should be 0600\n", path,
			mode & 0777);
	}
	rc = shim_bg_master_parse((const char *)buf, len, master, &line);
	shim_memzero(buf, len);
	free(buf);
	if (rc != 0) {
		fprintf(stderr, "%s:%u: not a break-glass master secret "
				"(shimctl breakglass keygen writes one)\n", path,
			line);
		return 1;
	}
	return 0;
}

static int keygen(int argc, char **argv)
{
	struct shim_linux_port lp;
	struct bg_opts o;
	uint8_t master[SHIM_BG_KEY_LEN];
	char hex[2 * SHIM_BG_KEY_LEN + 1], kid[17], text[160];
	int rc, ex;

	rc = parse_opts(argc, argv, &o);
	if (rc != 0) {
		return usage(rc > 0 ? stdout : stderr, rc > 0 ? 0 : 2);
	}
	if (o.out == NULL || o.shim || o.key || o.ttl || o.reason || o.tech ||
	    o.issuer || o.now) {
		fprintf(stderr, "shimctl breakglass keygen: takes --out MASTER only\n");
		return usage(stderr, 2);
	}
	if (shim_linux_port_init(&lp, NULL) != 0) {
		fprintf(stderr, "shimctl breakglass: crypto unavailable\n");
		return 1;
	}
	rc = shim_linux_random(master, sizeof(master));
	if (rc == 0) {
		rc = shim_bg_key_id(&lp.port.crypto, master, kid);
	}
	if (rc != 0) {
		fprintf(stderr, "shimctl breakglass: %s\n", shim_strerror(rc));
		shim_linux_port_fini(&lp);
		return 1;
	}
	shim_hex_encode(master, sizeof(master), hex);
	snprintf(text, sizeof(text), "shimd-breakglass-master v1\nkey %s\n", hex);
	ex = write_secret(o.out, text);
	shim_memzero(master, sizeof(master));
	shim_memzero(hex, sizeof(hex));
	shim_memzero(text, sizeof(text));
	shim_linux_port_fini(&lp);
	if (ex == 0) {
		printf("key-id %s\n", kid);
		fprintf(stderr, "break-glass master secret written to %s (0600): "
				"keep it with InfoSec, off every shim\n", o.out);
	}
	return ex;
}

static int provision(int argc, char **argv)
{
	struct shim_linux_port lp;
	struct bg_opts o;
	uint8_t master[SHIM_BG_KEY_LEN], key[SHIM_BG_KEY_LEN];
	char hex[2 * SHIM_BG_KEY_LEN + 1], kid[17], text[400];
	int rc, ex;

	rc = parse_opts(argc, argv, &o);
	if (rc != 0) {
		return usage(rc > 0 ? stdout : stderr, rc > 0 ? 0 : 2);
	}
	if (o.shim == NULL || o.key == NULL || o.out == NULL || o.ttl ||
	    o.reason || o.tech || o.issuer || o.now) {
		fprintf(stderr, "shimctl breakglass provision: takes --shim ID "
				"--key MASTER --out FILE\n");
		return usage(stderr, 2);
	}
	if (!id_ok(o.shim)) {
		fprintf(stderr, "shimctl breakglass: --shim: 1..%d printable "
				"characters without blanks\n", SHIM_BG_ID_MAX);
		return 2;
	}
	if (load_master(o.key, master) != 0) {
		return 1;
	}
	if (shim_linux_port_init(&lp, NULL) != 0) {
		shim_memzero(master, sizeof(master));
		return 1;
	}
	rc = shim_bg_derive(&lp.port.crypto, master, o.shim, strlen(o.shim), key);
	if (rc == 0) {
		rc = shim_bg_key_id(&lp.port.crypto, master, kid);
	}
	shim_memzero(master, sizeof(master));
	shim_linux_port_fini(&lp);
	if (rc != 0) {
		fprintf(stderr, "shimctl breakglass: %s\n", shim_strerror(rc));
		shim_memzero(key, sizeof(key));
		return 1;
	}
	shim_hex_encode(key, sizeof(key), hex);
	snprintf(text, sizeof(text),
		 "shimd-breakglass-verify-key v1\nshim %s\nkey-id %s\nkey %s\n",
		 o.shim, kid, hex);
	ex = write_secret(o.out, text);
	shim_memzero(key, sizeof(key));
	shim_memzero(hex, sizeof(hex));
	shim_memzero(text, sizeof(text));
	if (ex == 0) {
		printf("verify key for %s written to %s (issuer key-id %s)\n"
		       "install it on that shim (0600) and name it in its "
		       "config:\n  breakglass: {verify_key: %s}\n",
		       o.shim, o.out, kid, o.out);
	}
	return ex;
}

static void iso(int64_t t, char *out, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			printf("\\%c", c);
		} else if (c < 0x20) {
			printf("\\u%04x", c);
		} else {
			putchar(c);
		}
	}
	putchar('"');
}

static const char *default_issuer(void)
{
	const char *u = getenv("SUDO_USER");
	struct passwd *pw;

	if (u != NULL && u[0] != '\0') {
		return u;
	}
	u = getenv("USER");
	if (u != NULL && u[0] != '\0') {
		return u;
	}
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_name : "unknown";
}

static int issue(int argc, char **argv)
{
	struct shim_linux_port lp;
	struct bg_opts o;
	struct shim_bg_code code;
	uint8_t master[SHIM_BG_KEY_LEN], key[SHIM_BG_KEY_LEN], nonce[2];
	char text[SHIM_BG_TEXT_LEN + 1], serial[SHIM_BG_SERIAL_LEN + 1];
	char kid[17], t_issued[32], t_expires[32];
	const char *issuer;
	long ttl;
	int64_t now, issued_s, expires_s, from;
	size_t i;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc != 0) {
		return usage(rc > 0 ? stdout : stderr, rc > 0 ? 0 : 2);
	}
	if (o.shim == NULL || o.ttl == NULL || o.reason == NULL ||
	    o.key == NULL || o.out != NULL) {
		fprintf(stderr, "shimctl breakglass issue: needs --shim ID --ttl "
				"DURATION --reason TEXT --key MASTER\n");
		return usage(stderr, 2);
	}
	if (!id_ok(o.shim) || (o.tech != NULL && !id_ok(o.tech))) {
		fprintf(stderr, "shimctl breakglass: --shim and --technician: "
				"1..%d printable characters without blanks\n",
			SHIM_BG_ID_MAX);
		return 2;
	}
	ttl = parse_duration(o.ttl);
	if (ttl < 0) {
		fprintf(stderr, "shimctl breakglass: --ttl '%s': a duration such "
				"as 90s, 15m or 1h, at most 24h\n", o.ttl);
		return 2;
	}
	if (o.reason[0] == '\0' || strlen(o.reason) > REASON_MAX) {
		fprintf(stderr, "shimctl breakglass: --reason: 1..%d characters\n",
			REASON_MAX);
		return 2;
	}
	for (i = 0; o.reason[i] != '\0'; i++) {
		if ((unsigned char)o.reason[i] < 0x20 || o.reason[i] == 0x7f) {
			fprintf(stderr, "shimctl breakglass: --reason: no control "
					"characters\n");
			return 2;
		}
	}
	now = shim_linux_wall_ns() / 1000000000LL;
	if (o.now != NULL) {
		char *end;

		errno = 0;
		now = strtoll(o.now, &end, 10);
		if (end == o.now || *end != '\0' || errno != 0) {
			fprintf(stderr, "shimctl breakglass: --now takes Unix "
					"seconds\n");
			return 2;
		}
	}
	if (now < SHIM_BG_EPOCH ||
	    (now - SHIM_BG_EPOCH) / 60 + SHIM_BG_TTL_MAX > SHIM_BG_ISSUED_MAX) {
		fprintf(stderr, "shimctl breakglass: the time %lld is outside the "
				"code's range (2025..2056)\n", (long long)now);
		return 1;
	}
	issuer = o.issuer != NULL ? o.issuer : default_issuer();
	if (load_master(o.key, master) != 0) {
		return 1;
	}
	if (shim_linux_port_init(&lp, NULL) != 0) {
		shim_memzero(master, sizeof(master));
		return 1;
	}
	memset(&code, 0, sizeof(code));
	/* Issued rounds down to the minute, the expiry up: the code lives at
	 * least the TTL asked for (capped at 24 h from the issued minute). */
	code.issued = (uint32_t)((now - SHIM_BG_EPOCH) / 60);
	from = SHIM_BG_EPOCH + (int64_t)code.issued * 60;
	{
		int64_t until = now + ttl;
		int64_t mins = (until - from + 59) / 60;

		if (mins > SHIM_BG_TTL_MAX) {
			mins = SHIM_BG_TTL_MAX;
		}
		code.ttl = (uint16_t)mins;
	}
	code.version = 0;
	code.bound = o.tech != NULL;
	code.tag = shim_bg_tag(o.shim, strlen(o.shim));
	rc = shim_linux_random(nonce, sizeof(nonce));
	code.nonce = (uint16_t)(((nonce[0] << 8) | nonce[1]) & SHIM_BG_NONCE_MAX);
	if (rc == 0) {
		rc = shim_bg_derive(&lp.port.crypto, master, o.shim,
				    strlen(o.shim), key);
	}
	if (rc == 0) {
		rc = shim_bg_key_id(&lp.port.crypto, master, kid);
	}
	if (rc == 0) {
		rc = shim_bg_mac(&lp.port.crypto, key, o.shim, strlen(o.shim),
				 o.tech, o.tech ? strlen(o.tech) : 0, &code,
				 code.mac);
	}
	if (rc == 0) {
		rc = shim_bg_format(&code, text);
	}
	shim_memzero(master, sizeof(master));
	shim_memzero(key, sizeof(key));
	shim_linux_port_fini(&lp);
	if (rc != 0) {
		fprintf(stderr, "shimctl breakglass: %s\n", shim_strerror(rc));
		return 1;
	}
	shim_bg_serial(&code, serial);
	issued_s = from;
	expires_s = from + (int64_t)code.ttl * 60;
	iso(issued_s, t_issued, sizeof(t_issued));
	iso(expires_s, t_expires, sizeof(t_expires));
	printf("%s\n", text);
	printf("{\"type\": \"breakglass_issued\", \"serial\": \"%s\", \"shim\": ",
	       serial);
	json_str(o.shim);
	printf(", \"issued\": \"%s\", \"expires\": \"%s\", \"issued_unix\": %lld, "
	       "\"expires_unix\": %lld, \"reason\": ",
	       t_issued, t_expires, (long long)issued_s, (long long)expires_s);
	json_str(o.reason);
	printf(", \"issuer\": ");
	json_str(issuer);
	printf(", \"issuer_key_id\": \"%s\", \"technician\": ", kid);
	if (o.tech != NULL) {
		json_str(o.tech);
	} else {
		printf("null");
	}
	printf("}\n");
	shim_memzero(text, sizeof(text));
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_breakglass_main(int argc, char **argv, const char *config_path)
{
	(void)config_path;
	if (argc < 2) {
		return usage(stderr, 2);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		return usage(stdout, 0);
	}
	if (strcmp(argv[1], "keygen") == 0) {
		return keygen(argc, argv);
	}
	if (strcmp(argv[1], "provision") == 0) {
		return provision(argc, argv);
	}
	if (strcmp(argv[1], "issue") == 0) {
		return issue(argc, argv);
	}
	fprintf(stderr, "shimctl breakglass: unknown command '%s'\n", argv[1]);
	return usage(stderr, 2);
}
