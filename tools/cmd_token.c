/*
 * shimctl token: the reset authority's side of the tamper latch.
 *
 *   shimctl token keygen --out FILE [--pub FILE]
 *       makes the authority key (0600) and prints its public key, which
 *       goes into every shim's tamper.reset_authority_public_key file.
 *   shimctl token issue tamper-reset --shim ID --latch LATCH --key FILE
 *       [--reason TEXT] [--ttl SECONDS] [--issuer NAME] [--now UNIX]
 *       prints a signed, single-use reset token for one latch of one
 *       shim. LATCH is the latch identity "<seq>-<boot>" the shim shows
 *       (shimctl tamper status, the tamper / emergency_stop events, the
 *       heartbeat's latch field); the token clears that latch only.
 *   shimctl token show TOKEN
 *       prints what a token says (without checking it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "subcommands.h"
#include "tamper.h"
#include "toolutil.h"
#include "util.h"

#define DEFAULT_TTL 900

/* A Unix time for people: ISO 8601 UTC ("2026-12-02T21:03:00Z"). */
static const char *iso_utc(long long t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "%lld", t);
	return buf;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: shimctl token keygen --out FILE [--pub FILE]\n"
		"       shimctl token issue tamper-reset --shim ID --latch SEQ-BOOT "
		"--key FILE [--reason TEXT] [--ttl SECONDS] [--issuer NAME]\n"
		"       shimctl token show TOKEN\n");
	return 2;
}

static int write_pub(const uint8_t pub[SHIM_P256_PUB_LEN], const char *path)
{
	char pem[SHIM_KEYS_PEM_MAX];
	int rc;

	rc = shim_keys_pub_pem(pub, pem, sizeof(pem));
	if (rc != 0) {
		fprintf(stderr, "shimctl: public key: %s\n", shim_strerror(rc));
		return 1;
	}
	if (path != NULL) {
		rc = shim_write_file_atomic(path, (const uint8_t *)pem,
					    strlen(pem), 0644);
		if (rc != 0) {
			fprintf(stderr, "shimctl: %s: %s\n", path,
				shim_strerror(rc));
			return 1;
		}
	}
	fputs(pem, stdout);
	return 0;
}

int cmd_token_keygen_authority(int argc, char **argv, const char *config_path)
{
	const char *out = tool_opt(argc, argv, "--out");
	uint8_t pub[SHIM_P256_PUB_LEN];
	int rc;

	if (out == NULL) {
		return usage();
	}
	rc = shim_keys_generate(out, NULL, pub, NULL);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", out,
			rc == SHIM_EEXIST ? "exists already, not replaced" :
					    shim_strerror(rc));
		return 1;
	}
	fprintf(stderr, "authority key written to %s (keep it offline); "
			"public key:\n", out);
	return write_pub(pub, tool_opt(argc, argv, "--pub"));
}

static long parse_long(const char *s, long lo, long hi, int *ok)
{
	char *end;
	long v;

	v = strtol(s, &end, 10);
	*ok = end != s && *end == '\0' && v >= lo && v <= hi;
	return v;
}

static int issue(int argc, char **argv)
{
	const char *shim = tool_opt(argc, argv, "--shim");
	const char *key = tool_opt(argc, argv, "--key");
	const char *reason = tool_opt(argc, argv, "--reason");
	const char *ttl_s = tool_opt(argc, argv, "--ttl");
	const char *issuer = tool_opt(argc, argv, "--issuer");
	const char *now_s = tool_opt(argc, argv, "--now");
	const char *latch = tool_opt(argc, argv, "--latch");
	struct shim_reset_token tok;
	uint8_t digest[32], sig[SHIM_P256_SIG_LEN];
	char out[SHIM_TOKEN_MAX + 1];
	size_t out_len;
	long ttl = DEFAULT_TTL, now;
	int ok = 1, rc;

	if (argc < 3 || strcmp(argv[2], SHIM_TOKEN_PURPOSE_RESET) != 0 ||
	    shim == NULL || key == NULL) {
		return usage();
	}
	if (latch == NULL) {
		fprintf(stderr, "shimctl: --latch is required: the latch identity "
				"(SEQ-BOOT) shown by 'shimctl tamper status' on "
				"the shim or in its tamper event\n");
		return 2;
	}
	memset(&tok, 0, sizeof(tok));
	if (shim_latch_id_parse(latch, &tok.latch_seq, &tok.latch_boot) != 0) {
		fprintf(stderr, "shimctl: --latch takes SEQ-BOOT, two numbers "
				"from 1 (e.g. 3-12)\n");
		return 2;
	}
	if (ttl_s != NULL) {
		ttl = parse_long(ttl_s, 1, SHIM_TOKEN_MAX_TTL, &ok);
		if (!ok) {
			fprintf(stderr, "shimctl: --ttl must be 1..%d seconds\n",
				SHIM_TOKEN_MAX_TTL);
			return 2;
		}
	}
	now = (long)(shim_linux_wall_ns() / 1000000000LL);
	if (now_s != NULL) {
		now = parse_long(now_s, 0, 999999999999L, &ok);
		if (!ok) {
			fprintf(stderr, "shimctl: --now takes Unix seconds\n");
			return 2;
		}
	}
	if (issuer == NULL) {
		issuer = getenv("USER");
	}
	snprintf(tok.purpose, sizeof(tok.purpose), "%s",
		 SHIM_TOKEN_PURPOSE_RESET);
	if (strlen(shim) >= sizeof(tok.shim_id) ||
	    strlen(issuer != NULL ? issuer : "authority") >= sizeof(tok.issuer) ||
	    (reason != NULL && strlen(reason) >= sizeof(tok.reason))) {
		fprintf(stderr, "shimctl: --shim, --issuer or --reason too long\n");
		return 2;
	}
	snprintf(tok.shim_id, sizeof(tok.shim_id), "%s", shim);
	snprintf(tok.issuer, sizeof(tok.issuer), "%s",
		 issuer != NULL && issuer[0] != '\0' ? issuer : "authority");
	snprintf(tok.reason, sizeof(tok.reason), "%s",
		 reason != NULL ? reason : "");
	tok.issued = now;
	tok.expires = now + ttl;
	rc = shim_linux_random(tok.nonce, sizeof(tok.nonce));
	if (rc != 0) {
		fprintf(stderr, "shimctl: random: %s\n", shim_strerror(rc));
		return 1;
	}
	rc = shim_token_make_payload(&tok);
	if (rc != 0) {
		fprintf(stderr, "shimctl: shim ID must be [A-Za-z0-9._-]; issuer "
				"and reason printable text without control "
				"characters\n");
		return 2;
	}
	shim_sha256((const uint8_t *)tok.payload, tok.payload_len, digest);
	rc = shim_p256_sign_with(key, digest, sig);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", key,
			rc == SHIM_EINVAL ? "not a P-256 private key" :
					    shim_strerror(rc));
		return 1;
	}
	rc = shim_token_format(&tok, sig, out, sizeof(out), &out_len);
	if (rc != 0) {
		fprintf(stderr, "shimctl: token: %s\n", shim_strerror(rc));
		return 1;
	}
	printf("%s\n", out);
	{
		char until[32];

		fprintf(stderr, "tamper-reset token for %s latch %s, valid "
				"%ld s (until %s)\n", tok.shim_id, latch, ttl,
			iso_utc((long long)tok.expires, until, sizeof(until)));
	}
	return 0;
}

static int show(int argc, char **argv)
{
	struct shim_reset_token tok;
	char lid[SHIM_LATCH_ID_MAX];
	size_t i;
	int rc;

	if (argc < 3) {
		return usage();
	}
	rc = shim_token_parse(argv[2], strlen(argv[2]), &tok);
	if (rc == SHIM_ENOTSUP) {
		fprintf(stderr, "shimctl: a reset token of format 1 (no latch "
				"binding): no shim accepts it\n");
		return 1;
	}
	if (rc != 0 || shim_latch_id_format(tok.latch_seq, tok.latch_boot, lid,
					     sizeof(lid)) != 0) {
		fprintf(stderr, "shimctl: not a well-formed reset token\n");
		return 1;
	}
	{
		char is[32], ex[32];

		printf("purpose: %s\nshim: %s\nlatch: %s\nissued: %s (%lld)\n"
		       "expires: %s (%lld)\nissuer: %s\nreason: %s\nnonce: ",
		       tok.purpose, tok.shim_id, lid,
		       iso_utc((long long)tok.issued, is, sizeof(is)),
		       (long long)tok.issued,
		       iso_utc((long long)tok.expires, ex, sizeof(ex)),
		       (long long)tok.expires, tok.issuer, tok.reason);
	}
	for (i = 0; i < sizeof(tok.nonce); i++) {
		printf("%02x", tok.nonce[i]);
	}
	printf("\n");
	return 0;
}

int cmd_token_main(int argc, char **argv, const char *config_path)
{
	if (argc < 2) {
		return usage();
	}
	if (strcmp(argv[1], "keygen") == 0) {
		return cmd_token_keygen_authority(argc, argv, config_path);
	}
	if (strcmp(argv[1], "issue") == 0) {
		return issue(argc, argv);
	}
	if (strcmp(argv[1], "show") == 0) {
		return show(argc, argv);
	}
	return usage();
}
