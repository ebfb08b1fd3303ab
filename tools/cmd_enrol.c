/*
 * shimctl enrol <technician_id>: a fresh TOTP secret for a technician.
 *
 * Prints the base32 secret, the otpauth:// URI and a QR code, and adds the
 * technician to the technicians file named by the config (refusing an ID
 * already there). With --confirm the entry is written only after the
 * technician's authenticator has produced a matching code:
 *   shimctl enrol alice --confirm -             (asks for the code)
 *   shimctl enrol alice --secret B32 --confirm 123456   (scripted)
 */
#include <errno.h>
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

int cmd_enrol_main(int argc, char **argv, const char *config_path)
{
	struct shim_config cfg;
	const char *id = NULL, *given, *confirm, *png, *notes, *issuer;
	uint8_t key[SHIM_SECRET_MAX];
	size_t key_len = SECRET_BYTES;
	char b32[SHIM_SECRET_MAX * 2], date[16], line[64];
	char *uri = NULL;
	int have_cfg, dry_run, i, ret = 1, rc;
	time_t t = time(NULL);
	struct tm tm;

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
	notes = tool_opt(argc, argv, "--notes");
	issuer = tool_opt(argc, argv, "--issuer");
	dry_run = tool_flag(argc, argv, "--dry-run");

	have_cfg = tool_load_config(config_path, &cfg, 1);
	if (have_cfg < 0) {
		return 1;
	}
	if (issuer != NULL) {
		free(cfg.issuer);
		cfg.issuer = strdup(issuer);
	}
	if (cfg.issuer == NULL) {
		cfg.issuer = strdup("Shim");
	}
	/* Somewhere to save the entry, checked before a secret is shown. */
	if (!dry_run && cfg.technicians_file == NULL) {
		fprintf(stderr, "shimctl enrol: the configuration (%s) names no "
			"technicians_file: nowhere to save the entry (set "
			"technicians_file, or use --dry-run and add the "
			"technician by hand)\n",
			have_cfg == 1 ? "not found" : config_path);
		goto out;
	}
	if (!dry_run) {
		char dir[4096];
		const char *slash = strrchr(cfg.technicians_file, '/');
		size_t n = slash ? (size_t)(slash - cfg.technicians_file) : 0;

		if (slash == NULL)
			snprintf(dir, sizeof(dir), ".");
		else
			snprintf(dir, sizeof(dir), "%.*s",
				 (int)(n == 0 ? 1 : n), cfg.technicians_file);
		if (access(dir, W_OK | X_OK) != 0) {
			fprintf(stderr, "shimctl enrol: cannot save to %s: "
				"directory %s: %s\n", cfg.technicians_file,
				dir, strerror(errno));
			goto out;
		}
	}
	for (i = 0; i < (int)cfg.ntechs; i++) {
		if (strcmp(cfg.techs[i].id, id) == 0) {
			fprintf(stderr, "shimctl enrol: technician '%s' is already enrolled\n",
				id);
			goto out;
		}
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
	shim_base32_encode(key, key_len, b32, sizeof(b32));
	uri = make_uri(&cfg, id, b32);
	if (uri == NULL) {
		goto out;
	}

	printf("Technician: %s\n", id);
	printf("Secret (base32): %s\n", b32);
	printf("URI: %s\n", uri);
	printf("Parameters: %s, %u digits, %u s period\n\n",
	       shim_md_name(cfg.gate.md), (unsigned)cfg.gate.digits,
	       (unsigned)cfg.gate.period);
	qr_print(stdout, uri);
	fflush(stdout);
	if (png != NULL) {
		if (qr_write_png(png, uri, 8) != 0) {
			fprintf(stderr, "shimctl enrol: cannot write %s\n", png);
			goto out;
		}
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
		if (!confirm_ok(&cfg, key, key_len, code)) {
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
	if (cfg.technicians_file == NULL) {
		printf("\nThe configuration (%s) names no technicians_file: add this "
		       "technician to the config by hand.\n",
		       have_cfg == 1 ? "not found" : config_path);
		ret = 0;
		goto out;
	}
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	rc = shim_config_add_technician(cfg.technicians_file, id, b32, date, notes);
	if (rc == SHIM_EEXIST) {
		fprintf(stderr, "shimctl enrol: technician '%s' is already in %s\n",
			id, cfg.technicians_file);
		goto out;
	}
	if (rc != 0) {
		fprintf(stderr, "shimctl enrol: cannot update %s: %s\n",
			cfg.technicians_file, shim_strerror(rc));
		goto out;
	}
	printf("\nAdded '%s' to %s. Restart shimd to take it into use.\n", id,
	       cfg.technicians_file);
	ret = 0;
out:
	shim_memzero(key, sizeof(key));
	shim_memzero(b32, sizeof(b32));
	if (uri != NULL) {
		shim_memzero(uri, strlen(uri));
		free(uri);
	}
	shim_config_free(&cfg);
	return ret;
}
