/*
 * shimctl totp now --secret B32: the current code, for bench work and the
 * demo. TOTP parameters come from the config when it can be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base32.h"
#include "otp.h"
#include "port_linux.h"
#include "subcommands.h"
#include "toolutil.h"
#include "util.h"

int cmd_totp_main(int argc, char **argv, const char *config_path)
{
	struct shim_config cfg;
	struct shim_linux_port lp;
	const char *secret, *opt;
	uint8_t key[SHIM_SECRET_MAX];
	size_t key_len;
	char text[SHIM_OTP_MAX_DIGITS + 1];
	uint32_t code;
	int64_t now = (int64_t)time(NULL);
	int rc, ret = 1;

	if (argc < 2 || strcmp(argv[1], "now") != 0) {
		fprintf(stderr, "usage: shimctl totp now --secret B32 [--time UNIX] "
				"[--digits N] [--period S] [--algorithm SHA1|SHA256|SHA512]\n");
		return 2;
	}
	secret = tool_opt(argc, argv, "--secret");
	if (secret == NULL) {
		secret = getenv("SHIM_TOTP_SECRET");
	}
	if (secret == NULL) {
		fprintf(stderr, "shimctl totp now: --secret B32 is required\n");
		return 2;
	}
	if (tool_load_config(config_path, &cfg, 1) < 0) {
		shim_config_defaults(&cfg);
	}
	if ((opt = tool_opt(argc, argv, "--digits")) != NULL) {
		cfg.gate.digits = (uint8_t)atoi(opt);
	}
	if ((opt = tool_opt(argc, argv, "--period")) != NULL) {
		cfg.gate.period = (uint32_t)strtoul(opt, NULL, 10);
	}
	if ((opt = tool_opt(argc, argv, "--algorithm")) != NULL &&
	    shim_md_from_name(opt, &cfg.gate.md) != 0) {
		fprintf(stderr, "shimctl totp now: unknown algorithm '%s'\n", opt);
		goto out;
	}
	if ((opt = tool_opt(argc, argv, "--time")) != NULL) {
		now = strtoll(opt[0] == '@' ? opt + 1 : opt, NULL, 10);
	}
	if (shim_base32_decode(secret, strlen(secret), key, sizeof(key),
			       &key_len) != 0 || key_len == 0) {
		fprintf(stderr, "shimctl totp now: the secret is not valid base32\n");
		goto out;
	}
	shim_linux_port_init(&lp, NULL);
	rc = shim_totp(&lp.port.crypto, cfg.gate.md, key, key_len, now,
		       cfg.gate.period, cfg.gate.digits, &code);
	shim_linux_port_fini(&lp);
	if (rc != 0) {
		fprintf(stderr, "shimctl totp now: %s\n", shim_strerror(rc));
		goto out;
	}
	shim_otp_format(code, cfg.gate.digits, text);
	printf("%s\n", text);
	ret = 0;
out:
	shim_memzero(key, sizeof(key));
	shim_config_free(&cfg);
	return ret;
}
