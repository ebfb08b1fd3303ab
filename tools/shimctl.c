/*
 * shimctl: enrolment, keys, recordings, status and admin commands, and the
 * central-side tools. One table dispatches and prints usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subcommands.h"

#define DEFAULT_CONFIG "/etc/shim/config.yaml"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, const char *config_path);
	const char *usage;
} subcommands[] = {
	{ "enrol", cmd_enrol_main,
	  "enrol <technician_id> [--dry-run] [--png FILE] [--secret B32 --confirm CODE|-]" },
	{ "session", cmd_session_main,
	  "session list [--json] | verify <id|file> [--key FILE] [--identity FILE] | export <id|file> --format jsonl|asciicast|text [--key FILE] [--out FILE]" },
	{ "keygen", cmd_keygen_main, "keygen recording --out FILE | keygen identity [--out FILE]" },
	{ "totp", cmd_totp_main, "totp now --secret B32 [--time UNIX] [--digits N] [--period S] [--algorithm A]" },
	{ "status", cmd_status_main, "status" },
	{ "reset-lockout", cmd_reset_lockout_main, "reset-lockout <technician_id>" },
	{ "end-session", cmd_end_session_main, "end-session" },
	{ "gate", cmd_gate_main, "gate reset-state" },
	{ "clock", cmd_clock_main, "clock status | trust" },
	{ "siem", cmd_siem_main, "siem test [--timeout SECONDS]" },
	{ "upload", cmd_upload_main, "upload test [--timeout SECONDS]" },
	{ "identity", cmd_identity_main,
	  "identity pub|csr [--cn SHIM_ID] [--key FILE] [--out FILE]" },
	{ "token", cmd_token_main,
	  "token issue tamper-reset --shim ID --latch SEQ-BOOT --key FILE [--reason TEXT] [--ttl S] | keygen --out FILE | show TOKEN" },
	{ "tamper", cmd_tamper_main, "tamper status | reset --token TOKEN" },
	{ "firmware-config", cmd_firmware_config_main,
	  "firmware-config [CONFIG] [-o FILE] | firmware-config --show BLOB|-" },
	{ "provision", cmd_provision_main,
	  "provision --serial SN --shim-id ID --operator NAME [--storage DIR] [--recording-pub FILE] [--tamper-authority FILE] [--siem-host H --siem-ca F [--siem-cert F]] [--inventory-key KEY] [--force]" },
	{ "decommission", cmd_decommission_main,
	  "decommission [--yes] [--abandon-undelivered] [--operator NAME] [--timeout S] [--out FILE]" },
	{ "inventory", cmd_inventory_main,
	  "inventory keygen --out FILE | create --serial SN --operator NAME [...] | sign RECORD --key FILE | verify RECORD --authority PUB [--json]" },
	{ "breakglass", cmd_breakglass_main,
	  "breakglass keygen --out MASTER | provision --shim ID --key MASTER --out FILE | issue --shim ID --ttl DURATION --reason TEXT --key MASTER [--technician ID]" },
	{ "monitor", cmd_monitor_main,
	  "monitor --inventory DIR [--authority PUB] --log FILE [--follow] [--now T] [--json] [--period S]" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: shimctl [--config FILE] <command> [args]\n"
		   "       (default config: %s)\n\ncommands:\n", DEFAULT_CONFIG);
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		fprintf(f, "  shimctl %s\n", subcommands[i].usage);
	}
}

int main(int argc, char **argv)
{
	const char *config = getenv("SHIM_CONFIG");
	char **args;
	int nargs = 0, i;
	size_t k;

	if (config == NULL) {
		config = DEFAULT_CONFIG;
	}
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (args == NULL) {
		return 1;
	}
	/* --config may stand anywhere on the line. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config = argv[i] + 9;
		} else {
			args[nargs++] = argv[i];
		}
	}
	if (nargs == 0 || strcmp(args[0], "--help") == 0 ||
	    strcmp(args[0], "-h") == 0 || strcmp(args[0], "help") == 0) {
		usage(nargs == 0 ? stderr : stdout);
		free(args);
		return nargs == 0 ? 2 : 0;
	}
	if (strcmp(args[0], "--version") == 0) {
		printf("shimctl %s\n", SHIM_VERSION);
		free(args);
		return 0;
	}
	for (k = 0; k < sizeof(subcommands) / sizeof(subcommands[0]); k++) {
		if (strcmp(args[0], subcommands[k].name) == 0) {
			int rc = subcommands[k].fn(nargs, args, config);

			free(args);
			return rc;
		}
	}
	fprintf(stderr, "shimctl: unknown command '%s'\n\n", args[0]);
	usage(stderr);
	free(args);
	return 2;
}
