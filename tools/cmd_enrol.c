/*
 * shimctl enrol <technician_id>: a fresh TOTP secret for a technician.
 *
 * Prints the base32 secret, the otpauth:// URI and a QR code, and adds the
 * technician to the unit's sealed enrolment store (common/techstore.h;
 * refusing an ID already enrolled), refreshes the escrow copy for central
 * custody and tells a running shimd, which takes the technician into use
 * without a restart. Where the entry will be saved is checked before any
 * secret is shown. With --confirm the entry is written only after the
 * technician's authenticator has produced a matching code, and a failed
 * confirmation leaves no file holding the secret (a --png is removed):
 *   shimctl enrol alice --confirm -             (asks for the code)
 *   shimctl enrol alice --secret B32 --confirm 123456   (scripted)
 */
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base32.h"
#include "otp.h"
#include "port_linux.h"
#include "qr.h"
#include "subcommands.h"
#include "techtool.h"
#include "toolutil.h"
#include "util.h"

#define SECRET_BYTES 20 /* 160 bits, as RFC 4226 recommends */

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static void pct(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			fputc(c, f);
		} else {
			fprintf(f, "%%%02X", c);
		}
	}
}

static char *make_uri(const struct shim_config *cfg, const char *id,
		      const char *b32)
{
	char *uri = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&uri, &len);

	if (f == NULL) {
		return NULL;
	}
	fputs("otpauth://totp/", f);
	pct(f, cfg->issuer);
	fputc(':', f);
	pct(f, id);
	fputs("?secret=", f);
	fputs(b32, f);
	fputs("&issuer=", f);
	pct(f, cfg->issuer);
	fprintf(f, "&algorithm=%s&digits=%u&period=%u", shim_md_name(cfg->gate.md),
		(unsigned)cfg->gate.digits, (unsigned)cfg->gate.period);
	fclose(f);
	return uri;
}

/* Accepts code within the configured window around now. */
static int confirm_ok(const struct shim_config *cfg, const uint8_t *key,
		      size_t key_len, const char *code_text)
{
	struct shim_linux_port lp;
	int64_t now = (int64_t)time(NULL);
	uint32_t got, want;
	int off, ok = 0;

	if (shim_otp_parse(code_text, strlen(code_text), cfg->gate.digits,
			   &got) != 0) {
		return 0;
	}
	shim_linux_port_init(&lp, NULL);
	for (off = -(int)cfg->gate.window; off <= (int)cfg->gate.window; off++) {
		if (shim_totp(&lp.port.crypto, cfg->gate.md, key, key_len,
			      now + (int64_t)off * cfg->gate.period,
			      cfg->gate.period, cfg->gate.digits, &want) == 0) {
			ok |= shim_ct_equal(&want, &got, sizeof(want));
		}
	}
	shim_linux_port_fini(&lp);
	return ok;
}

static int valid_id(const char *id)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > SHIM_TECH_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* Warnings about the secret itself, before it is shown. */
static void secret_warnings(const struct tool_store *ts, const char *id,
			    const uint8_t *key, size_t key_len)
{
	uint32_t i;

	if (key_len < 16) {
		fprintf(stderr, "shimctl enrol: warning: the secret has %zu "
			"bits; 128 or more are recommended (RFC 4226 asks for "
			"160)\n", key_len * 8);
	}
	for (i = 0; i < ts->cfg.ntechs; i++) {
		if (ts->cfg.techs[i].secret_len == key_len &&
		    shim_ct_equal(ts->cfg.techs[i].secret, key, key_len)) {
			fprintf(stderr, "shimctl enrol: warning: '%s' has the "
				"same secret as '%s': each technician should "
				"have their own\n", id, ts->cfg.techs[i].id);
		}
	}
	for (i = 0; i < ts->set->n; i++) {
		if (ts->set->t[i].secret_len == key_len &&
		    shim_ct_equal(ts->set->t[i].secret, key, key_len)) {
			fprintf(stderr, "shimctl enrol: warning: '%s' has the "
				"same secret as '%s': each technician should "
				"have their own\n", id, ts->set->t[i].id);
		}
	}
}

int cmd_enrol_main(int argc, char **argv, const char *config_path)
{
	struct tool_store ts;
	struct shim_enrol_tech *e;
	const char *id = NULL, *given, *confirm, *png, *issuer;
	uint8_t key[SHIM_SECRET_MAX];
	size_t key_len = SECRET_BYTES;
	char b32[SHIM_SECRET_MAX * 2], line[64];
	char *uri = NULL;
	int dry_run, i, ret = 1, rc, png_written = 0;

	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-') {
			if (strcmp(argv[i], "--dry-run") != 0 && i + 1 < argc &&
			    strchr(argv[i], '=') == NULL) {
				i++;
			}
			continue;
		}
		if (id != NULL) {
			fprintf(stderr, "shimctl enrol: one technician ID at a time\n");
			return 2;
		}
		id = argv[i];
	}
	if (id == NULL) {
		fprintf(stderr, "usage: shimctl enrol <technician_id> [--dry-run] "
				"[--png FILE] [--notes TEXT] [--issuer NAME] "
				"[--secret B32 --confirm CODE | --confirm -]\n");
		return 2;
	}
	if (!valid_id(id)) {
		fprintf(stderr, "shimctl enrol: '%s' is not a valid technician ID "
				"(1 to %d printable characters, no spaces)\n",
			id, SHIM_TECH_ID_MAX);
		return 2;
	}
	given = tool_opt(argc, argv, "--secret");
	confirm = tool_opt(argc, argv, "--confirm");
	png = tool_opt(argc, argv, "--png");
	issuer = tool_opt(argc, argv, "--issuer");
	dry_run = tool_flag(argc, argv, "--dry-run");

	memset(&ts, 0, sizeof(ts));
	if (dry_run) {
		/* Only the parameters are needed; nothing is saved. */
		if (tool_load_config(config_path, &ts.cfg, 1) < 0) {
			return 1;
		}
		ts.set = calloc(1, sizeof(*ts.set));
		if (ts.set == NULL) {
			goto out;
		}
	} else if (tool_store_open(&ts, config_path, 1, "enrol") != 0) {
		/* Somewhere to save the entry, checked before a secret is
		 * shown. */
		goto out;
	}
	if (issuer != NULL) {
		free(ts.cfg.issuer);
		ts.cfg.issuer = strdup(issuer);
	}
	if (ts.cfg.issuer == NULL) {
		ts.cfg.issuer = strdup("Shim");
	}
	if (shim_enrol_find(ts.set, id) >= 0) {
		fprintf(stderr, "shimctl enrol: technician '%s' is already "
			"enrolled (shimctl technicians remove first)\n", id);
		goto out;
	}
	for (i = 0; i < (int)ts.cfg.ntechs; i++) {
		if (strcmp(ts.cfg.techs[i].id, id) == 0) {
			fprintf(stderr, "shimctl enrol: technician '%s' is already "
				"enrolled (in %s)\n", id, ts.cfg.file);
			goto out;
		}
	}
	if (!dry_run && ts.set->n >= SHIM_ENROL_MAX) {
		fprintf(stderr, "shimctl enrol: the store holds %d technicians, "
			"its most\n", SHIM_ENROL_MAX);
		goto out;
	}

	if (given != NULL) {
		rc = shim_base32_decode(given, strlen(given), key, sizeof(key),
					&key_len);
		if (rc != 0 || key_len < 10) {
			fprintf(stderr, "shimctl enrol: --secret is not valid base32 of at least 80 bits\n");
			goto out;
		}
	} else if (shim_linux_random(key, key_len) != 0) {
		fprintf(stderr, "shimctl enrol: no randomness available\n");
		goto out;
	}
	secret_warnings(&ts, id, key, key_len);
	shim_base32_encode(key, key_len, b32, sizeof(b32));
	uri = make_uri(&ts.cfg, id, b32);
	if (uri == NULL) {
		goto out;
	}

	printf("Technician: %s\n", id);
	printf("Secret (base32): %s\n", b32);
	printf("URI: %s\n", uri);
	printf("Parameters: %s, %u digits, %u s period\n\n",
	       shim_md_name(ts.cfg.gate.md), (unsigned)ts.cfg.gate.digits,
	       (unsigned)ts.cfg.gate.period);
	qr_print(stdout, uri);
	fflush(stdout);
	if (png != NULL) {
		if (qr_write_png(png, uri, 8) != 0) {
			fprintf(stderr, "shimctl enrol: cannot write %s\n", png);
			goto out;
		}
		png_written = 1;
		printf("\nQR code written to %s (mode 0600; delete it after use)\n", png);
	}

	if (confirm != NULL) {
		const char *code = confirm;

		if (strcmp(confirm, "-") == 0) {
			printf("\nEnter the code the authenticator shows now: ");
			fflush(stdout);
			if (fgets(line, sizeof(line), stdin) == NULL) {
				fprintf(stderr, "shimctl enrol: no code given\n");
				goto out;
			}
			line[strcspn(line, "\r\n")] = '\0';
			code = line;
		}
		if (!confirm_ok(&ts.cfg, key, key_len, code)) {
			fprintf(stderr, "shimctl enrol: the code does not match: "
					"nothing was written (check the authenticator's clock)\n");
			goto out;
		}
		printf("Confirmation code matches.\n");
	}

	if (dry_run) {
		printf("\nDry run: nothing was written.\n");
		ret = 0;
		goto out;
	}
	e = &ts.set->t[ts.set->n];
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	memcpy(e->secret, key, key_len);
	e->secret_len = (uint8_t)key_len;
	e->md = ts.cfg.gate.md;
	e->digits = ts.cfg.gate.digits;
	e->period = ts.cfg.gate.period;
	e->enrolled = (int64_t)time(NULL);
	ts.set->n++;
	printf("\n");
	if (tool_store_commit(&ts, "enrol") != 0) {
		goto out;
	}
	printf("Enrolled '%s'.\n", id);
	ret = 0;
out:
	if (ret != 0 && png_written) {
		/* A failed enrolment leaves no file holding the secret. */
		(void)tool_shred(png);
		fprintf(stderr, "shimctl enrol: %s removed\n", png);
	}
	shim_memzero(key, sizeof(key));
	shim_memzero(b32, sizeof(b32));
	shim_memzero(line, sizeof(line));
	if (uri != NULL) {
		shim_memzero(uri, strlen(uri));
		free(uri);
	}
	tool_store_close(&ts);
	return ret;
}
