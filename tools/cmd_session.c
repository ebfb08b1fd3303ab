/*
 * shimctl session list | verify <id|file> | export <id|file>
 *
 * Reads recordings (core/record.h) for investigators: a table of the
 * sessions on this shim, a verdict with a precise message and exit code
 * for each kind of damage, and exports as JSON lines (the prototype's
 * schema), asciicast v2 or a readable transcript.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "keys.h"
#include "port_linux.h"
#include "record.h"
#include "subcommands.h"
#include "upload_state.h"
#include "util.h"

/* Exit codes of verify and export (docs/recordings.md). */
enum {
	EX_INTACT = 0,
	EX_ERROR = 1,
	EX_USAGE = 2,
	EX_NO_FOOTER = 3,
	EX_TORN = 4,
	EX_DAMAGED = 5,
	EX_CHAIN = 6,
	EX_SIG = 7,
	EX_IDENTITY = 8,
	EX_WRONG_KEY = 9,
	EX_DEGRADED = 10,
	EX_UNPINNED = 11,
};

enum fmt { FMT_NONE, FMT_JSONL, FMT_ASCIICAST, FMT_TEXT };

struct opts {
	const char *config_path;
	const char *target;
	const char *key_path;
	const char *identity_path;
	const char *out_path;
	enum fmt fmt;
	int json;
};

struct ctx {
	struct opts *o;
	struct shim_config cfg;
	int cfg_loaded;
	struct shim_linux_port lp;
	struct shim_rec_reader *rd;
	uint8_t *rbuf;
	/* key handling */
	struct shim_privkey *priv;
	int key_tried;
	int key_ok;
	int key_wrong;
	char key_msg[256];
	/* export */
	FILE *out;
	enum fmt fmt;
	int no_key;             /* list: structure, chain, signature only */
	int64_t start_mono;
	int io_err;
	uint64_t metas;         /* meta records read (with the key) */
};

static void usage(void)
{
	fprintf(stderr,
		"usage: shimctl session list [--json]\n"
		"       shimctl session verify <id|file> [--key FILE] "
		"[--identity FILE]\n"
		"       shimctl session export <id|file> --format "
		"jsonl|asciicast|text [--key FILE] [--out FILE]\n");
}

static int load_cfg(struct ctx *c, int required)
{
	struct shim_config_diag diag;

	if (c->cfg_loaded) {
		return 0;
	}
	memset(&diag, 0, sizeof(diag));
	diag.out = required ? stderr : NULL;
	diag.no_warnings = 1;
	if (!required && access(c->o->config_path, R_OK) != 0) {
		return -1;
	}
	if (shim_config_load(&c->cfg, c->o->config_path, &diag) != 0) {
		shim_config_free(&c->cfg);
		if (required) {
			fprintf(stderr, "shimctl session: cannot load %s\n",
				c->o->config_path);
		}
		return -1;
	}
	c->cfg_loaded = 1;
	return 0;
}

static char *sessions_dir(struct ctx *c)
{
	return shim_config_path(&c->cfg, "sessions");
}

/* A unique session whose ID starts with prefix, or NULL (message
 * printed). */
static char *resolve_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char *found = NULL;
	size_t pl = strlen(prefix);
	int n = 0;

	if (d == NULL) {
		fprintf(stderr, "shimctl session: %s: %s\n", dir,
			strerror(errno));
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (strncmp(de->d_name, prefix, pl) != 0 ||
		    !((l > 4 && strcmp(de->d_name + l - 4, ".rec") == 0) ||
		      (l > 5 && strcmp(de->d_name + l - 5, ".part") == 0))) {
			continue;
		}
		if (n++ == 0) {
			size_t m = strlen(dir) + l + 2;

			found = malloc(m);
			if (found != NULL) {
				snprintf(found, m, "%s/%s", dir, de->d_name);
			}
		}
	}
	closedir(d);
	if (n == 1) {
		return found;
	}
	free(found);
	fprintf(stderr, "shimctl session: %s: %s\n", prefix,
		n == 0 ? "no such session" : "ambiguous: name more of the ID");
	return NULL;
}

/* Resolves an ID (or a unique start of one) or a file name to a path
 * (malloc'd). */
static char *resolve(struct ctx *c, const char *target)
{
	struct stat st;
	char *dir, *p;
	size_t n;

	if (strchr(target, '/') != NULL || stat(target, &st) == 0) {
		return strdup(target);
	}
	if (load_cfg(c, 1) != 0) {
		return NULL;
	}
	dir = sessions_dir(c);
	if (dir == NULL) {
		return NULL;
	}
	n = strlen(dir) + strlen(target) + 8;
	p = malloc(n);
	if (p != NULL) {
		snprintf(p, n, "%s/%s.rec", dir, target);
		if (stat(p, &st) != 0) {
			snprintf(p, n, "%s/%s.part", dir, target);
		}
		if (stat(p, &st) != 0) {
			free(p);
			p = resolve_prefix(dir, target);
		}
	}
	free(dir);
	return p;
}

/* ---- JSON and text output helpers --------------------------------------- */

/* a - b for times read from a file, without signed overflow. */
static int64_t diff_ns(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a - (uint64_t)b);
}

static void put_ch(struct ctx *c, int ch)
{
	if (fputc(ch, c->out) == EOF) {
		c->io_err = 1;
	}
}

/* Decodes one UTF-8 sequence at p (n bytes left); returns its length or 0
 * when it is not valid UTF-8. */
static size_t utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t v;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if ((p[0] & 0xe0) == 0xc0) {
		len = 2;
		v = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3;
		v = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4;
		v = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len) {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
		v = (v << 6) | (p[i] & 0x3f);
	}
	if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) ||
	    (len == 4 && (v < 0x10000 || v > 0x10ffff)) ||
	    (v >= 0xd800 && v <= 0xdfff)) {
		return 0;
	}
	*cp = v;
	return len;
}

/* A JSON string (ASCII only, like Python's json.dumps). Bytes that are
 * not UTF-8 are shown as the code point of the same value. */
static void json_str(struct ctx *c, const uint8_t *p, size_t n)
{
	size_t i = 0;

	put_ch(c, '"');
	while (i < n) {
		uint32_t cp;
		size_t l = utf8_seq(p + i, n - i, &cp);

		if (l == 0) {
			cp = p[i];
			l = 1;
		}
		i += l;
		if (cp == '"' || cp == '\\') {
			fprintf(c->out, "\\%c", (int)cp);
		} else if (cp == '\n') {
			fputs("\\n", c->out);
		} else if (cp == '\r') {
			fputs("\\r", c->out);
		} else if (cp == '\t') {
			fputs("\\t", c->out);
		} else if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000)) {
			fprintf(c->out, "\\u%04x", (unsigned)cp);
		} else if (cp >= 0x10000) {
			cp -= 0x10000;
			fprintf(c->out, "\\u%04x\\u%04x",
				(unsigned)(0xd800 + (cp >> 10)),
				(unsigned)(0xdc00 + (cp & 0x3ff)));
		} else {
			put_ch(c, (int)cp);
		}
	}
	put_ch(c, '"');
}

static void json_cstr(struct ctx *c, const char *s)
{
	json_str(c, (const uint8_t *)s, strlen(s));
}

static void put_secs(FILE *f, int64_t ns)
{
	uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;

	fprintf(f, "%s%llu.%09llu", ns < 0 ? "-" : "",
		(unsigned long long)(a / 1000000000ULL),
		(unsigned long long)(a % 1000000000ULL));
}

static void iso_time(int64_t ns, char *out, size_t cap, int python)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char base[32];

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, cap, "?");
		return;
	}
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (python) {
		snprintf(out, cap, "%s.%06lld+00:00", base,
			 (long long)((ns % 1000000000) / 1000));
	} else {
		snprintf(out, cap, "%sZ", base);
	}
}

static void hexdump(struct ctx *c, const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		put_ch(c, d[p[i] >> 4]);
		put_ch(c, d[p[i] & 15]);
	}
}

static void text_escape(struct ctx *c, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t b = p[i];

		if (b == '\\') {
			fputs("\\\\", c->out);
		} else if (b == '\r') {
			fputs("\\r", c->out);
		} else if (b == '\n') {
			fputs("\\n", c->out);
		} else if (b == '\t') {
			fputs("\\t", c->out);
		} else if (b >= 0x20 && b < 0x7f) {
			put_ch(c, b);
		} else {
			fprintf(c->out, "\\x%02x", b);
		}
	}
}

/* "name: detail" (or "name" alone) as one JSON string. */
static void meta_label(struct ctx *c, const uint8_t *name, size_t nl,
		       const uint8_t *detail, size_t dl)
{
	uint8_t *s = malloc(nl + 2 + dl + 1);

	if (s == NULL) {
		c->io_err = 1;
		return;
	}
	memcpy(s, name, nl);
	if (dl > 0) {
		memcpy(s + nl, ": ", 2);
		memcpy(s + nl + 2, detail, dl);
	}
	json_str(c, s, dl > 0 ? nl + 2 + dl : nl);
	free(s);
}

/* ---- reader callbacks -------------------------------------------------- */

static int open_key(struct ctx *c, const struct shim_rec_header *h)
{
	char *path = NULL;
	uint8_t shared[32], key[SHIM_REC_KEY_LEN], pub[SHIM_P256_PUB_LEN];
	int rc;

	if (c->no_key) {
		return 0;
	}
	c->key_tried = 1;
	if (c->o->key_path != NULL) {
		path = strdup(c->o->key_path);
	} else if (h->custody == SHIM_REC_CUSTODY_LOCAL &&
		   load_cfg(c, 0) == 0) {
		path = shim_keys_recording_path(&c->cfg);
		if (path != NULL && access(path, R_OK) != 0) {
			free(path);
			path = NULL;
		}
	}
	if (path == NULL) {
		snprintf(c->key_msg, sizeof(c->key_msg),
			 "no recording private key (custody is %s; pass "
			 "--key FILE)",
			 h->custody == SHIM_REC_CUSTODY_LOCAL ? "local"
							      : "central");
		return 0;
	}
	rc = shim_keys_load_private(path, &c->priv);
	if (rc != 0) {
		snprintf(c->key_msg, sizeof(c->key_msg),
			 "cannot load recording key %s: %s", path,
			 shim_strerror(rc));
		free(path);
		return 0;
	}
	free(path);
	shim_keys_private_pub(c->priv, pub);
	rc = shim_keys_ecdh(c->priv, h->eph_pub, shared);
	if (rc == 0) {
		rc = shim_rec_unseal_key(&c->lp.port.crypto, h, pub, shared,
					 key);
	}
	shim_memzero(shared, sizeof(shared));
	if (rc != 0) {
		c->key_wrong = 1;
		snprintf(c->key_msg, sizeof(c->key_msg),
			 "the recording key does not open this session "
			 "(wrong key, or the header was altered)");
		return 0;
	}
	shim_rec_reader_set_key(c->rd, key);
	shim_memzero(key, sizeof(key));
	c->key_ok = 1;
	return 0;
}

static int cb_header(void *arg, const struct shim_rec_header *h)
{
	struct ctx *c = arg;
	char iso[48];

	open_key(c, h);
	c->start_mono = h->start_mono_ns;
	if (c->fmt == FMT_NONE || !c->key_ok) {
		return 0;
	}
	if (c->fmt == FMT_JSONL) {
		iso_time(h->start_wall_ns, iso, sizeof(iso), 1);
		fputs("{\"type\": \"session_header\", \"session_id\": ", c->out);
		json_cstr(c, h->session_id);
		fputs(", \"technician_id\": ", c->out);
		json_cstr(c, h->technician_id);
		fputs(", \"shim_id\": ", c->out);
		json_cstr(c, h->shim_id);
		fputs(", \"started_at_epoch\": ", c->out);
		put_secs(c->out, h->start_wall_ns);
		fprintf(c->out,
			", \"started_at_iso\": \"%s\", \"version\": \"1.0\", "
			"\"format_version\": %u, \"key_custody\": \"%s\", "
			"\"started_at_monotonic\": ",
			iso, h->version,
			h->custody == SHIM_REC_CUSTODY_LOCAL ? "local"
							     : "central");
		put_secs(c->out, h->start_mono_ns);
		fputs("}\n", c->out);
	} else if (c->fmt == FMT_ASCIICAST) {
		char title[320];

		snprintf(title, sizeof(title), "shim %s session %s (%s)",
			 h->shim_id, h->session_id, h->technician_id);
		fprintf(c->out,
			"{\"version\": 2, \"width\": 80, \"height\": 24, "
			"\"timestamp\": %lld, \"title\": ",
			(long long)(h->start_wall_ns / 1000000000));
		json_cstr(c, title);
		fputs(", \"env\": {\"TERM\": \"xterm-256color\"}}\n", c->out);
	} else {
		iso_time(h->start_wall_ns, iso, sizeof(iso), 1);
		fprintf(c->out,
			"# session %s\n# technician %s\n# shim %s\n"
			"# started %s\n# marks: '>' technician to device, "
			"'<' device to technician, '*' event\n",
			h->session_id, h->technician_id, h->shim_id, iso);
	}
	return 0;
}

static int cb_item(void *arg, const struct shim_rec_item *it)
{
	struct ctx *c = arg;
	int64_t rel = diff_ns(it->mono_ns, c->start_mono);
	const char *name = (const char *)it->data, *detail = "";
	size_t nl = it->len, dl = 0;

	if (it->kind == SHIM_REC_META) {
		const uint8_t *z = memchr(it->data, 0, it->len);

		c->metas++;
		if (z != NULL) {
			nl = (size_t)(z - it->data);
			detail = (const char *)z + 1;
			dl = it->len - nl - 1;
		}
	}
	switch (c->fmt) {
	case FMT_JSONL:
		if (it->kind == SHIM_REC_META) {
			fputs("{\"type\": \"meta\", \"epoch\": ", c->out);
			put_secs(c->out, it->wall_ns);
			fputs(", \"monotonic\": ", c->out);
			put_secs(c->out, it->mono_ns);
			fputs(", \"event\": ", c->out);
			json_str(c, (const uint8_t *)name, nl);
			fputs(", \"detail\": ", c->out);
			json_str(c, (const uint8_t *)detail, dl);
			fputs("}\n", c->out);
			break;
		}
		fprintf(c->out,
			"{\"type\": \"traffic\", \"direction\": \"%s\", "
			"\"len\": %zu, \"monotonic\": ",
			it->kind == SHIM_REC_IN ? "in" : "out", it->len);
		put_secs(c->out, it->mono_ns);
		fputs(", \"epoch\": ", c->out);
		put_secs(c->out, it->wall_ns);
		fputs(", \"data_hex\": \"", c->out);
		hexdump(c, it->data, it->len);
		fputs("\"}\n", c->out);
		break;
	case FMT_ASCIICAST:
		if (it->kind == SHIM_REC_META) {
			/* asciicast v2 marker (asciinema 2.2 and later):
			 * [t, "m", "name: detail"] */
			put_ch(c, '[');
			put_secs(c->out, rel < 0 ? 0 : rel);
			fputs(", \"m\", ", c->out);
			meta_label(c, (const uint8_t *)name, nl,
				   (const uint8_t *)detail, dl);
			fputs("]\n", c->out);
			break;
		}
		put_ch(c, '[');
		put_secs(c->out, rel < 0 ? 0 : rel);
		fprintf(c->out, ", \"%s\", ",
			it->kind == SHIM_REC_OUT ? "o" : "i");
		json_str(c, it->data, it->len);
		fputs("]\n", c->out);
		break;
	case FMT_TEXT:
		fputs("[+", c->out);
		put_secs(c->out, rel);
		fprintf(c->out, "s] %c ",
			it->kind == SHIM_REC_IN ? '>'
			: it->kind == SHIM_REC_OUT ? '<' : '*');
		if (it->kind == SHIM_REC_META) {
			text_escape(c, (const uint8_t *)name, nl);
			if (dl > 0) {
				put_ch(c, ' ');
				text_escape(c, (const uint8_t *)detail, dl);
			}
		} else {
			text_escape(c, it->data, it->len);
		}
		put_ch(c, '\n');
		break;
	default:
		break;
	}
	return c->io_err ? SHIM_EIO : 0;
}

/* Bytes not recorded: the footer's total, or what the gap markers add up
 * to when that is more (a session sealed by recovery has no total). */
static uint64_t lost_total(const struct shim_rec_result *res)
{
	return res->gap_bytes > res->dropped ? res->gap_bytes : res->dropped;
}

static void flag_list(FILE *f, uint32_t flags)
{
	const char *sep = "";

	fputc('[', f);
	if (flags & SHIM_REC_F_DEGRADED) {
		fprintf(f, "%s\"recording_degraded\"", sep);
		sep = ", ";
	}
	if (flags & SHIM_REC_F_OVER_BUDGET) {
		fprintf(f, "%s\"storage_over_budget\"", sep);
		sep = ", ";
	}
	if (flags & SHIM_REC_F_RECOVERED) {
		fprintf(f, "%s\"recovered\"", sep);
		sep = ", ";
	}
	if (flags & SHIM_REC_F_BREAKGLASS) {
		fprintf(f, "%s\"breakglass\"", sep);
		sep = ", ";
	}
	if (flags & SHIM_REC_F_DAMAGED) {
		fprintf(f, "%s\"damaged_tail_cut\"", sep);
	}
	fputc(']', f);
}

static void write_footer(struct ctx *c, const struct shim_rec_header *h,
			 const struct shim_rec_footer *f,
			 const struct shim_rec_result *res, int verified)
{
	char iso[48], ch[65];
	int64_t dur = diff_ns(f->end_mono_ns, h->start_mono_ns);

	iso_time(f->end_wall_ns, iso, sizeof(iso), 1);
	shim_hex_encode(f->chain_head, 32, ch);
	if (c->fmt == FMT_JSONL) {
		fputs("{\"type\": \"session_footer\", \"ended_at_epoch\": ",
		      c->out);
		put_secs(c->out, f->end_wall_ns);
		fprintf(c->out, ", \"ended_at_iso\": \"%s\", "
				"\"duration_seconds\": ",
			iso);
		put_secs(c->out, dur);
		fprintf(c->out,
			", \"bytes_inbound\": %llu, \"bytes_outbound\": %llu, "
			"\"terminal_reason\": ",
			(unsigned long long)f->bytes_in,
			(unsigned long long)f->bytes_out);
		json_cstr(c, f->reason);
		fputs(", \"session_id\": ", c->out);
		json_cstr(c, h->session_id);
		fprintf(c->out,
			", \"records\": %llu, \"dropped_bytes\": %llu, "
			"\"cut_bytes\": %llu, \"flags\": ",
			(unsigned long long)f->records,
			(unsigned long long)f->dropped,
			(unsigned long long)f->cut);
		flag_list(c->out, f->flags);
		fprintf(c->out,
			", \"chain_head\": \"%s\", \"verified\": %s, "
			"\"identity_pinned\": %s, \"degraded\": %s}\n",
			ch, verified ? "true" : "false",
			res->pinned ? "true" : "false",
			res->degraded ? "true" : "false");
	} else if (c->fmt == FMT_TEXT) {
		fprintf(c->out, "# ended %s after ", iso);
		put_secs(c->out, dur);
		fprintf(c->out,
			"s, reason %s\n# bytes in %llu, out %llu, records "
			"%llu, dropped %llu\n# chain head %s (%s)\n",
			f->reason, (unsigned long long)f->bytes_in,
			(unsigned long long)f->bytes_out,
			(unsigned long long)f->records,
			(unsigned long long)f->dropped, ch,
			verified	 ? "verified"
			: res->pinned ? "NOT verified"
				      : "NOT verified: identity not pinned");
		if (res->degraded) {
			fprintf(c->out,
				"# DEGRADED: %llu bytes not recorded (see the "
				"recording_gap events)\n",
				(unsigned long long)lost_total(res));
		}
	}
}

/* ---- reading one file ---------------------------------------------------- */

static int damage_exit(const struct shim_rec_result *res)
{
	switch (res->status) {
	case SHIM_REC_COMPLETE:
		return EX_INTACT;
	case SHIM_REC_UNSEALED:
		return EX_NO_FOOTER;
	case SHIM_REC_TORN:
		return EX_TORN;
	case SHIM_REC_CORRUPT:
		break;
	default:
		return EX_ERROR; /* never classified */
	}
	switch (res->damage) {
	case SHIM_REC_D_CHAIN:
	case SHIM_REC_D_COUNT:
	case SHIM_REC_D_RECORD_AUTH:
	case SHIM_REC_D_BYTES:
		return EX_CHAIN;
	case SHIM_REC_D_SIG:
		return EX_SIG;
	case SHIM_REC_D_IDENTITY:
		return EX_IDENTITY;
	default:
		return EX_DAMAGED;
	}
}

/* The exit status of verify and export. Damage comes first, then a key
 * that does not open the session, then a signer nobody vouches for, then
 * traffic that was not recorded. Intact only when the reader says so. */
static int verdict_exit(const struct ctx *c, const struct shim_rec_result *res)
{
	int ex = damage_exit(res);

	if (ex != EX_INTACT) {
		return ex;
	}
	if (c->key_wrong) {
		return EX_WRONG_KEY;
	}
	switch (res->verdict) {
	case SHIM_REC_V_INTACT:
		return EX_INTACT;
	case SHIM_REC_V_UNPINNED:
		return EX_UNPINNED;
	case SHIM_REC_V_DEGRADED:
		return EX_DEGRADED;
	default:
		return EX_ERROR;
	}
}

/* Prints what was not recorded, per direction where the recording says. */
static void print_degraded(const struct ctx *c,
			   const struct shim_rec_result *res)
{
	uint64_t total = lost_total(res);
	uint64_t known = res->gap_in + res->gap_out;

	printf("  degraded: traffic was relayed without being recorded%s\n",
	       res->have_footer &&
			       (c->rd->ftr.flags & SHIM_REC_F_DEGRADED) != 0
		       ? " (footer flag recording_degraded)"
		       : "");
	printf("  not recorded: %llu bytes in total\n",
	       (unsigned long long)total);
	if (!c->key_ok) {
		printf("  not recorded by direction: not known without the "
		       "recording key (the gap markers are in the encrypted "
		       "records)\n");
		return;
	}
	printf("  not recorded by direction: in %llu, out %llu, unknown "
	       "%llu\n",
	       (unsigned long long)res->gap_in,
	       (unsigned long long)res->gap_out,
	       (unsigned long long)(known < res->gap_in || known > total
					    ? 0
					    : total - known));
	printf("  gap markers: %llu (%llu bytes%s)\n",
	       (unsigned long long)res->gaps,
	       (unsigned long long)res->gap_bytes,
	       res->gap_bad != 0 ? ", some unreadable" : "");
}

/* Reads path through the reader. Returns 0, or -1 when it cannot be read
 * at all (message printed). */
static int read_file(struct ctx *c, const char *path, const uint8_t *expect,
		     struct shim_rec_result *res)
{
	struct shim_rec_reader_cb cb = { cb_header, cb_item, NULL, c };
	uint8_t buf[65536];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "shimctl session: %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	shim_rec_reader_init(c->rd, &c->lp.port.crypto, &cb, c->rbuf,
			     SHIM_REC_READER_BUF);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		shim_rec_reader_feed(c->rd, buf, (size_t)n);
	}
	if (n < 0) {
		fprintf(stderr, "shimctl session: %s: %s\n", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	shim_rec_reader_finish(c->rd, expect, res);
	shim_rec_reader_wipe(c->rd);
	return 0;
}

/* The identity the footer must be signed by: --identity FILE, else this
 * shim's own identity key. Returns 1 when one was found. */
static int expected_identity(struct ctx *c, uint8_t pub[SHIM_P256_PUB_LEN],
			     char *src, size_t cap)
{
	char *path;
	int rc;

	if (c->o->identity_path != NULL) {
		rc = shim_keys_load_public(c->o->identity_path, pub);
		if (rc != 0) {
			fprintf(stderr, "shimctl session: %s: %s\n",
				c->o->identity_path, shim_strerror(rc));
			return -1;
		}
		snprintf(src, cap, "%s", c->o->identity_path);
		return 1;
	}
	if (load_cfg(c, 0) != 0) {
		return 0;
	}
	path = shim_keys_identity_path(&c->cfg);
	if (path == NULL || access(path, R_OK) != 0 ||
	    shim_keys_load_public(path, pub) != 0) {
		free(path);
		return 0;
	}
	snprintf(src, cap, "%s", path);
	free(path);
	return 1;
}

static void describe(const struct shim_rec_result *res, char *out,
		     size_t cap)
{
	switch (res->status) {
	case SHIM_REC_COMPLETE:
		snprintf(out, cap, "intact");
		break;
	case SHIM_REC_UNSEALED:
		snprintf(out, cap,
			 "incomplete: no footer after record %llu (session "
			 "open, or sealed at the next start of shimd)",
			 (unsigned long long)res->records);
		break;
	case SHIM_REC_TORN:
		snprintf(out, cap,
			 "torn tail at offset %llu (%llu bytes after the "
			 "last intact record %llu)",
			 (unsigned long long)res->offset,
			 (unsigned long long)(res->total - res->good_end),
			 (unsigned long long)res->records);
		break;
	default:
		snprintf(out, cap, "%s: %s at offset %llu (record %llu)",
			 shim_rec_damage_name(res->damage),
			 shim_rec_damage_str(res->damage),
			 (unsigned long long)res->offset,
			 (unsigned long long)res->record);
		break;
	}
}

static const char *verdict_word(int ex)
{
	switch (ex) {
	case EX_INTACT:
		return "OK";
	case EX_DEGRADED:
		return "DEGRADED";
	case EX_UNPINNED:
		return "NOT PINNED";
	default:
		return "FAILED";
	}
}

static int do_verify(struct ctx *c)
{
	struct shim_rec_result res;
	uint8_t id[SHIM_P256_PUB_LEN];
	char idsrc[256], msg[256];
	char *path;
	int have_id, ex;

	path = resolve(c, c->o->target);
	if (path == NULL) {
		return EX_ERROR;
	}
	have_id = expected_identity(c, id, idsrc, sizeof(idsrc));
	if (have_id < 0) {
		free(path);
		return EX_ERROR;
	}
	if (read_file(c, path, have_id ? id : NULL, &res) != 0) {
		free(path);
		return EX_ERROR;
	}
	describe(&res, msg, sizeof(msg));
	ex = verdict_exit(c, &res);
	printf("%s: %s\n", path, verdict_word(ex));
	if (res.have_header) {
		printf("  session %s, technician %s, shim %s\n",
		       c->rd->hdr.session_id, c->rd->hdr.technician_id,
		       c->rd->hdr.shim_id);
	}
	printf("  records %llu, bytes in %llu, out %llu\n",
	       (unsigned long long)res.records,
	       (unsigned long long)res.bytes_in,
	       (unsigned long long)res.bytes_out);
	if (res.have_footer) {
		printf("  footer: reason %s, signed by the identity in the "
		       "header%s%s\n",
		       c->rd->ftr.reason,
		       have_id ? ", expected identity "
			       : " (identity not pinned: no --identity and "
				 "no identity key in the configuration)",
		       have_id ? idsrc : "");
	}
	if (c->key_ok) {
		printf("  contents: every record opened with the recording "
		       "key, %llu meta records\n",
		       (unsigned long long)c->metas);
	} else if (c->key_msg[0] != '\0') {
		printf("  contents: not checked: %s\n", c->key_msg);
	}
	if (res.degraded) {
		print_degraded(c, &res);
	}
	switch (ex) {
	case EX_WRONG_KEY:
		printf("  verdict: wrong recording key\n");
		break;
	case EX_UNPINNED:
		printf("  verdict: identity not pinned (the footer verifies "
		       "under the key the file itself names; pass --identity "
		       "PUB or --config with the shim's identity key)%s\n",
		       res.degraded ? "; degraded" : "");
		break;
	case EX_DEGRADED:
		printf("  verdict: degraded (%llu bytes not recorded)\n",
		       (unsigned long long)lost_total(&res));
		break;
	default:
		printf("  verdict: %s\n", msg);
		break;
	}
	free(path);
	return ex;
}

static int do_export(struct ctx *c)
{
	struct shim_rec_result res;
	uint8_t id[SHIM_P256_PUB_LEN];
	char idsrc[256], msg[256];
	char *path;
	int have_id, ex, fd;

	path = resolve(c, c->o->target);
	if (path == NULL) {
		return EX_ERROR;
	}
	have_id = expected_identity(c, id, idsrc, sizeof(idsrc));
	if (have_id < 0) {
		free(path);
		return EX_ERROR;
	}
	c->out = stdout;
	if (c->o->out_path != NULL) {
		fd = open(c->o->out_path,
			  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || (c->out = fdopen(fd, "w")) == NULL) {
			fprintf(stderr, "shimctl session export: %s: %s\n",
				c->o->out_path, strerror(errno));
			if (fd >= 0) {
				close(fd);
			}
			free(path);
			return EX_ERROR;
		}
	}
	c->fmt = c->o->fmt;
	if (read_file(c, path, have_id ? id : NULL, &res) != 0) {
		ex = EX_ERROR;
		goto out;
	}
	if (!res.have_header) {
		describe(&res, msg, sizeof(msg));
		fprintf(stderr, "shimctl session export: %s: %s\n", path, msg);
		ex = damage_exit(&res);
		goto out;
	}
	if (!c->key_ok) {
		fprintf(stderr, "shimctl session export: %s\n",
			c->key_msg[0] ? c->key_msg : "cannot read the session");
		ex = c->key_wrong ? EX_WRONG_KEY : EX_ERROR;
		goto out;
	}
	ex = verdict_exit(c, &res);
	if (res.have_footer) {
		write_footer(c, &c->rd->hdr, &c->rd->ftr, &res,
			     damage_exit(&res) == EX_INTACT && res.pinned);
	}
	if (ex == EX_UNPINNED) {
		fprintf(stderr,
			"shimctl session export: %s: identity not pinned (pass "
			"--identity PUB or --config with the shim's identity "
			"key)\n",
			path);
	} else if (ex == EX_DEGRADED) {
		fprintf(stderr,
			"shimctl session export: %s: degraded: %llu bytes not "
			"recorded\n",
			path, (unsigned long long)lost_total(&res));
	} else if (ex != EX_INTACT) {
		describe(&res, msg, sizeof(msg));
		fprintf(stderr,
			"shimctl session export: %s: %s (exported what is "
			"intact)\n",
			path, msg);
	}
	if (fflush(c->out) != 0 || c->io_err) {
		fprintf(stderr, "shimctl session export: write failed\n");
		ex = EX_ERROR;
	}
out:
	if (c->out != stdout) {
		fclose(c->out);
	}
	free(path);
	return ex;
}

/* ---- list ------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int do_list(struct ctx *c)
{
	uint8_t id[SHIM_P256_PUB_LEN];
	char idsrc[256];
	char *dir;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, i;
	int have_id;
	struct shim_upload_state ust;
	int custody;

	if (load_cfg(c, 1) != 0) {
		return EX_ERROR;
	}
	/* with central custody: which recordings the store has confirmed */
	memset(&ust, 0, sizeof(ust));
	custody = c->cfg.custody_url != NULL;
	if (custody) {
		char *sp = shim_config_path(&c->cfg, "state/custody.state");
		size_t bad = 0;

		if (sp == NULL || shim_upload_state_load(&ust, sp, &bad) != 0) {
			fprintf(stderr, "shimctl session list: %s is damaged "
				"(line %zu): showing every recording as not delivered\n",
				sp ? sp : "the upload state", bad);
		}
		free(sp);
	}
	have_id = expected_identity(c, id, idsrc, sizeof(idsrc));
	dir = sessions_dir(c);
	if (dir == NULL) {
		return EX_ERROR;
	}
	d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT) {
			printf("no sessions under %s\n", dir);
			free(dir);
			return 0;
		}
		fprintf(stderr, "shimctl session list: %s: %s\n", dir,
			strerror(errno));
		free(dir);
		return EX_ERROR;
	}
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		char **nn;

		if (!((l > 4 && strcmp(de->d_name + l - 4, ".rec") == 0) ||
		      (l > 5 && strcmp(de->d_name + l - 5, ".part") == 0))) {
			continue;
		}
		nn = realloc(names, (n + 1) * sizeof(*names));
		if (nn == NULL) {
			break;
		}
		names = nn;
		names[n] = strdup(de->d_name);
		if (names[n] != NULL) {
			n++;
		}
	}
	closedir(d);
	if (n > 1) {
		qsort(names, n, sizeof(*names), cmp_str);
	}
	if (!c->o->json) {
		printf("%-24s %-20s %-20s %9s %9s %9s %-22s %s%s\n", "ID",
		       "TECHNICIAN", "START (UTC)", "DURATION", "IN", "OUT",
		       "REASON", custody ? "VERIFIED          " : "VERIFIED",
		       custody ? "CUSTODY" : "");
	}
	for (i = 0; i < n; i++) {
		struct shim_rec_result res;
		const struct shim_rec_header *h = &c->rd->hdr;
		const struct shim_rec_footer *f = &c->rd->ftr;
		char path[4096], start[48], verdict[64], dur[32];
		char fid[SHIM_SESSION_ID_MAX];
		const char *cust = "";
		size_t fl = strlen(names[i]);
		int64_t dns;

		if (custody) {
			cust = "open";
			if (fl > 4 && strcmp(names[i] + fl - 4, ".rec") == 0 &&
			    fl - 4 < sizeof(fid)) {
				memcpy(fid, names[i], fl - 4);
				fid[fl - 4] = '\0';
				cust = shim_upload_state_find(&ust, fid) != NULL ?
					       "delivered" : "not delivered";
			}
		}

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		/* list checks structure, chain and signature; contents are
		 * opened by verify and export */
		c->no_key = 1;
		c->fmt = FMT_NONE;
		if (read_file(c, path, have_id == 1 ? id : NULL, &res) != 0) {
			continue;
		}
		if (!res.have_header) {
			printf("%-24s %s\n", names[i], "(unreadable header)");
			continue;
		}
		iso_time(h->start_wall_ns, start, sizeof(start), 0);
		if (res.have_footer) {
			dns = diff_ns(f->end_mono_ns, h->start_mono_ns);
		} else {
			dns = (int64_t)((uint64_t)res.last_end_ms * 1000000u);
		}
		snprintf(dur, sizeof(dur), "%.1fs", (double)dns / 1e9);
		switch (res.status) {
		case SHIM_REC_COMPLETE:
			snprintf(verdict, sizeof(verdict), "%s%s",
				 res.degraded ? "degraded" : "yes",
				 res.pinned ? "" : " (unpinned)");
			break;
		case SHIM_REC_UNSEALED:
			snprintf(verdict, sizeof(verdict), "open");
			break;
		case SHIM_REC_TORN:
			snprintf(verdict, sizeof(verdict), "no: torn tail");
			break;
		default:
			snprintf(verdict, sizeof(verdict), "NO: %s",
				 shim_rec_damage_name(res.damage));
			break;
		}
		if (res.have_footer && (f->flags & SHIM_REC_F_BREAKGLASS) != 0) {
			size_t vl = strlen(verdict);

			snprintf(verdict + vl, sizeof(verdict) - vl, " BREAK-GLASS");
		}
		if (c->o->json) {
			c->out = stdout;
			fputs("{\"session_id\": ", stdout);
			json_cstr(c, h->session_id);
			fputs(", \"technician_id\": ", stdout);
			json_cstr(c, h->technician_id);
			fprintf(stdout, ", \"started_at\": \"%s\", "
					"\"duration_seconds\": ",
				start);
			put_secs(stdout, dns);
			fprintf(stdout,
				", \"bytes_inbound\": %llu, "
				"\"bytes_outbound\": %llu, \"terminal_reason\": ",
				(unsigned long long)res.bytes_in,
				(unsigned long long)res.bytes_out);
			if (res.have_footer) {
				json_cstr(c, f->reason);
			} else {
				fputs("null", stdout);
			}
			fprintf(stdout, ", \"status\": \"%s\", \"file\": ",
				res.status == SHIM_REC_COMPLETE
					? (res.degraded ? "degraded"
							: "verified")
				: res.status == SHIM_REC_UNSEALED ? "open"
				: res.status == SHIM_REC_TORN	  ? "torn"
								  : "damaged");
			json_cstr(c, path);
			fprintf(stdout,
				", \"degraded\": %s, \"dropped_bytes\": %llu, "
				"\"identity_pinned\": %s, \"breakglass\": %s",
				res.degraded ? "true" : "false",
				(unsigned long long)res.dropped,
				res.pinned ? "true" : "false",
				res.have_footer &&
						(f->flags & SHIM_REC_F_BREAKGLASS) != 0
					? "true"
					: "false");
			if (custody) {
				fprintf(stdout, ", \"delivered\": %s",
					strcmp(cust, "delivered") == 0 ? "true" :
									 "false");
			}
			fputs("}\n", stdout);
		} else {
			printf("%-24s %-20s %-20s %9s %9llu %9llu %-22s %-*s%s\n",
			       h->session_id, h->technician_id, start, dur,
			       (unsigned long long)res.bytes_in,
			       (unsigned long long)res.bytes_out,
			       res.have_footer ? f->reason : "-",
			       custody ? 18 : 0, verdict, cust);
		}
	}
	for (i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
	free(dir);
	shim_upload_state_free(&ust);
	return 0;
}

/* ---- entry ------------------------------------------------------------- */

static int parse(int argc, char **argv, struct opts *o, int first)
{
	int i;

	for (i = first; i < argc; i++) {
		const char *a = argv[i];

		if ((strcmp(a, "--key") == 0 || strcmp(a, "--identity") == 0 ||
		     strcmp(a, "--format") == 0 || strcmp(a, "--out") == 0) &&
		    i + 1 >= argc) {
			fprintf(stderr, "shimctl session: %s needs a value\n",
				a);
			return -1;
		}
		if (strcmp(a, "--key") == 0) {
			o->key_path = argv[++i];
		} else if (strcmp(a, "--identity") == 0) {
			o->identity_path = argv[++i];
		} else if (strcmp(a, "--out") == 0) {
			o->out_path = argv[++i];
		} else if (strcmp(a, "--json") == 0) {
			o->json = 1;
		} else if (strcmp(a, "--format") == 0) {
			a = argv[++i];
			if (strcmp(a, "jsonl") == 0) {
				o->fmt = FMT_JSONL;
			} else if (strcmp(a, "asciicast") == 0) {
				o->fmt = FMT_ASCIICAST;
			} else if (strcmp(a, "text") == 0) {
				o->fmt = FMT_TEXT;
			} else {
				fprintf(stderr,
					"shimctl session: unknown format '%s' "
					"(jsonl, asciicast or text)\n",
					a);
				return -1;
			}
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "shimctl session: unknown option %s\n",
				a);
			return -1;
		} else if (o->target == NULL) {
			o->target = a;
		} else {
			fprintf(stderr, "shimctl session: unexpected '%s'\n",
				a);
			return -1;
		}
	}
	return 0;
}

int cmd_session_main(int argc, char **argv, const char *config_path)
{
	struct opts o;
	struct ctx *c;
	int ex = EX_USAGE;

	memset(&o, 0, sizeof(o));
	o.config_path = config_path;
	if (argc < 2) {
		usage();
		return EX_USAGE;
	}
	if (parse(argc, argv, &o, 2) != 0) {
		usage();
		return EX_USAGE;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return EX_ERROR;
	}
	c->o = &o;
	c->rd = calloc(1, sizeof(*c->rd));
	c->rbuf = malloc(SHIM_REC_READER_BUF);
	if (c->rd == NULL || c->rbuf == NULL ||
	    shim_linux_port_init(&c->lp, NULL) != 0) {
		ex = EX_ERROR;
		goto out;
	}
	if (strcmp(argv[1], "list") == 0 && o.target == NULL) {
		ex = do_list(c);
	} else if (strcmp(argv[1], "verify") == 0 && o.target != NULL) {
		ex = do_verify(c);
	} else if (strcmp(argv[1], "export") == 0 && o.target != NULL) {
		if (o.fmt == FMT_NONE) {
			fprintf(stderr, "shimctl session export: --format "
					"jsonl|asciicast|text is required\n");
			usage();
		} else {
			ex = do_export(c);
		}
	} else {
		usage();
	}
	shim_linux_port_fini(&c->lp);
out:
	shim_keys_free(c->priv);
	if (c->cfg_loaded) {
		shim_config_free(&c->cfg);
	}
	if (c->rbuf != NULL) {
		shim_memzero(c->rbuf, SHIM_REC_READER_BUF);
	}
	free(c->rbuf);
	free(c->rd);
	free(c);
	return ex;
}
