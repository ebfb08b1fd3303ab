/*
 * shimctl: enrolment, keys, recordings, status and admin commands, and the
 * central-side tools. One table dispatches and prints usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "subcommands.h"

#define DEFAULT_CONFIG "/etc/shim/config.yaml"

static const struct tool_option enrol_opts[] = {
	{ "--dry-run", NULL, "print the secret and QR code, save nothing" },
	{ "--png", "FILE", "also write the QR code as a PNG (0600)" },
	{ "--secret", "B32", "enrol this base32 secret instead of a new one" },
	{ "--confirm", "CODE", "save only if CODE (or - to prompt) is valid" },
	{ "--issuer", "NAME", "issuer in the authenticator app" },
	{ NULL, NULL, NULL },
};
static const struct tool_option technicians_opts[] = {
	{ "--json", NULL, "list: the technicians as JSON" },
	{ NULL, NULL, NULL },
};
static const struct tool_option enrolment_opts[] = {
	{ "--out", "FILE", "keygen, escrow, export: where to write" },
	{ "--escrow", "FILE", "export: the failed unit's escrow copy" },
	{ "--custody-key", "KEY", "export: the enrolment-custody private key" },
	{ "--inventory", "RECORD", "export: the replacement's signed inventory record" },
	{ "--authority", "PUB", "export: the provisioning authority's public key" },
	{ "--last-seen", "TIME", "export: when the old unit was last in use (default now)" },
	{ "--window", "N", "export: the units' totp.window (default 1)" },
	{ "--force", NULL, "restore: replace technicians already in the store" },
	{ NULL, NULL, NULL },
};
static const struct tool_option session_opts[] = {
	{ "--json", NULL, "list: one JSON object a line" },
	{ "--key", "FILE", "recording private key (verify, export)" },
	{ "--identity", "FILE", "shim identity public key (verify)" },
	{ "--format", "FMT", "export: jsonl, asciicast or text" },
	{ "--out", "FILE", "export: write here instead of stdout" },
	{ NULL, NULL, NULL },
};
static const struct tool_option out_opts[] = {
	{ "--out", "FILE", "where to write the key" },
	{ NULL, NULL, NULL },
};
static const struct tool_option totp_opts[] = {
	{ "--secret", "B32", "base32 secret" },
	{ "--time", "UNIX", "time to compute the code for (default now)" },
	{ "--digits", "N", "6 to 8" },
	{ "--period", "S", "seconds per step" },
	{ "--algorithm", "A", "SHA1, SHA256 or SHA512" },
	{ NULL, NULL, NULL },
};
static const struct tool_option json_opts[] = {
	{ "--json", NULL, "one JSON object" },
	{ NULL, NULL, NULL },
};
static const struct tool_option no_opts[] = {
	{ NULL, NULL, NULL },
};
static const struct tool_option siem_opts[] = {
	{ "--timeout", "SECONDS", "how long to wait for the SIEM" },
	{ NULL, NULL, NULL },
};
static const struct tool_option identity_opts[] = {
	{ "--cn", "SHIM_ID", "common name of the CSR (default shim.id)" },
	{ "--key", "FILE", "identity private key" },
	{ "--out", "FILE", "write here instead of stdout" },
	{ NULL, NULL, NULL },
};
static const struct tool_option token_opts[] = {
	{ "--shim", "ID", "issue: the shim the token is for" },
	{ "--latch", "SEQ-BOOT", "issue: the tamper latch to reset" },
	{ "--key", "FILE", "issue: the reset authority's private key" },
	{ "--reason", "TEXT", "issue: recorded with the reset" },
	{ "--ttl", "S", "issue: seconds the token is valid" },
	{ "--issuer", "NAME", "issue: who issues it" },
	{ "--now", "UNIX", "issue: issue time (default now)" },
	{ "--out", "FILE", "keygen: the private key file" },
	{ "--pub", "FILE", "keygen: the public key file" },
	{ NULL, NULL, NULL },
};
static const struct tool_option tamper_opts[] = {
	{ "--token", "TOKEN", "reset: the signed tamper-reset token" },
	{ "--identity", "FILE", "shim identity public key" },
	{ "--now", "UNIX", "the time to check against (default now)" },
	{ NULL, NULL, NULL },
};
static const struct tool_option fwcfg_opts[] = {
	{ "-o", "FILE", "write the blob here" },
	{ "--out", "FILE", "same as -o" },
	{ "--show", "BLOB", "print a blob (- for stdin)" },
	{ "--dump", "BLOB", "same as --show" },
	{ NULL, NULL, NULL },
};
static const struct tool_option provision_opts[] = {
	{ "--serial", "SN", "the unit's serial number" },
	{ "--shim-id", "ID", "the shim ID (events, recordings, heartbeats)" },
	{ "--operator", "NAME", "who provisions, in the inventory record" },
	{ "--storage", "DIR", "the storage root (default /var/lib/shim)" },
	{ "--technician-port", "PATH", "technician side serial port" },
	{ "--device-port", "PATH", "device side serial port" },
	{ "--recording-pub", "FILE", "the central recording public key" },
	{ "--tamper-authority", "FILE", "the tamper reset authority's public key" },
	{ "--siem-host", "HOST", "the SIEM receiver" },
	{ "--siem-port", "N", "its port (default 6514)" },
	{ "--siem-ca", "FILE", "the CA of the SIEM's certificate" },
	{ "--siem-server-name", "NAME", "the name in the SIEM's certificate" },
	{ "--siem-cert", "FILE", "the shim's SIEM client certificate, once signed" },
	{ "--inventory-key", "KEY", "the provisioning authority's key: sign the record" },
	{ "--breakglass-key", "FILE", "this shim's break-glass verify key" },
	{ "--enrolment-custody-key", "PUB", "the central enrolment-custody public key" },
	{ "--user", "NAME", "the account shimd drops to (shim.user)" },
	{ "--force", NULL, "re-provision: a new identity" },
	{ NULL, NULL, NULL },
};
static const struct tool_option inventory_opts[] = {
	{ "--out", "FILE", "where to write (key or record)" },
	{ "--pub", "FILE", "keygen: the public key file" },
	{ "--serial", "SN", "create: the unit's serial number" },
	{ "--shim-id", "ID", "create: the shim ID (default shim.id)" },
	{ "--operator", "NAME", "create: who provisions" },
	{ "--identity", "FILE", "create: the unit's identity key" },
	{ "--recording-pub", "FILE", "create: the recording public key" },
	{ "--binary", "FILE", "create: the shimd executable" },
	{ "--key", "AUTHKEY", "create, sign: the provisioning authority's key" },
	{ "--authority", "PUB", "verify: the provisioning authority's public key" },
	{ "--json", NULL, "verify: the fields as JSON" },
	{ NULL, NULL, NULL },
};
static const struct tool_option decommission_opts[] = {
	{ "--yes", NULL, "do not ask for the shim ID" },
	{ "--abandon-undelivered", NULL, "erase also what is not delivered" },
	{ "--operator", "NAME", "who decommissions, in the record" },
	{ "--timeout", "SECONDS", "how long the SIEM may take to deliver" },
	{ "--out", "FILE", "also write the record here" },
	{ NULL, NULL, NULL },
};
static const struct tool_option breakglass_opts[] = {
	{ "--out", "FILE", "keygen, provision: the file to write" },
	{ "--key", "MASTER", "provision, issue: the issuing secret" },
	{ "--shim", "ID", "provision, issue: the shim" },
	{ "--ttl", "DURATION", "issue: lifetime (90s, 15m, 1h; at most 24h)" },
	{ "--reason", "TEXT", "issue: why, for the audit" },
	{ "--technician", "ID", "issue: bind the code to this technician" },
	{ "--issuer", "NAME", "issue: who issues it" },
	{ "--now", "UNIX", "issue: issue time (default now)" },
	{ NULL, NULL, NULL },
};
static const struct tool_option monitor_opts[] = {
	{ "--inventory", "DIR", "the shims' identity keys or signed records" },
	{ "--authority", "PUB", "trust only records this authority signed" },
	{ "--log", "FILE", "the SIEM log to read" },
	{ "--follow", NULL, "keep reading as the log grows" },
	{ "--now", "UNIX", "the time to judge by (default now)" },
	{ "--json", NULL, "one JSON object a line" },
	{ "--period", "S", "expected heartbeat period" },
	{ "--threads", "N", "verification threads" },
	{ NULL, NULL, NULL },
};

static const struct {
	struct tool_command cmd;
	int (*fn)(int argc, char **argv, const char *config_path);
} subcommands[] = {
	{ { "enrol",
	    "enrol <technician_id> [--dry-run] [--png FILE] [--secret B32 --confirm CODE|-] [--issuer NAME]",
	    "Enrols a technician: a new TOTP secret (or --secret), shown as a QR code, saved to the sealed enrolment store; a running shimd takes it into use.",
	    enrol_opts }, cmd_enrol_main },
	{ { "technicians",
	    "technicians list [--json] | remove ID | import",
	    "Lists the enrolled technicians (never their secrets), removes one, or moves the configuration's into the sealed store.",
	    technicians_opts }, cmd_technicians_main },
	{ { "enrolment",
	    "enrolment keygen --out FILE | escrow [--out FILE] | export --escrow FILE --custody-key KEY --inventory RECORD --authority PUB --out FILE [--last-seen TIME] [--window N] | restore FILE [--force]",
	    "Central custody of the enrolment set: a failed unit's technicians restored on its replacement.",
	    enrolment_opts }, cmd_enrolment_main },
	{ { "session",
	    "session list [--json] | verify <id|file> [--key FILE] [--identity FILE] | export <id|file> --format jsonl|asciicast|text [--key FILE] [--out FILE]",
	    "Lists, verifies and exports session recordings.", session_opts },
	  cmd_session_main },
	{ { "keygen", "keygen recording --out FILE | keygen identity [--out FILE]",
	    "Creates the recording key pair or the shim's identity key.",
	    out_opts }, cmd_keygen_main },
	{ { "totp",
	    "totp now --secret B32 [--time UNIX] [--digits N] [--period S] [--algorithm A]",
	    "Prints the TOTP code of a secret.", totp_opts }, cmd_totp_main },
	{ { "status", "status [--json]", "Asks the running shimd for its state.",
	    json_opts }, cmd_status_main },
	{ { "state", "state dump",
	    "Shows the durable gate and clock state: both slots of each file, every technician's marks and lockouts (read only).",
	    no_opts }, cmd_state_main },
	{ { "lockouts", "lockouts [--json]",
	    "Lists the IDs the running shimd has locked out, with the time left.",
	    json_opts }, cmd_lockouts_main },
	{ { "reset-lockout", "reset-lockout <technician_id>",
	    "Clears a technician's lockout in the running shimd.", no_opts },
	  cmd_reset_lockout_main },
	{ { "end-session", "end-session",
	    "Ends the open session in the running shimd.", no_opts },
	  cmd_end_session_main },
	{ { "gate", "gate reset-state",
	    "Resets the gate's state after its state file was lost.", no_opts },
	  cmd_gate_main },
	{ { "clock", "clock status | trust",
	    "Shows the clock's trust, or trusts the current wall clock.",
	    no_opts }, cmd_clock_main },
	{ { "siem", "siem test [--timeout SECONDS]",
	    "Sends a test event to the SIEM and waits for it to be taken.",
	    siem_opts }, cmd_siem_main },
	{ { "identity", "identity pub|csr [--cn SHIM_ID] [--key FILE] [--out FILE]",
	    "Prints the shim's identity public key or a certificate request.",
	    identity_opts }, cmd_identity_main },
	{ { "token",
	    "token issue tamper-reset --shim ID --latch SEQ-BOOT --key FILE [--reason TEXT] [--ttl S] | keygen --out FILE [--pub FILE] | show TOKEN",
	    "Issues and shows signed tamper-reset tokens (central side).",
	    token_opts }, cmd_token_main },
	{ { "tamper", "tamper status | reset --token TOKEN",
	    "Shows the tamper latch, or resets it with a signed token.",
	    tamper_opts }, cmd_tamper_main },
	{ { "firmware-config",
	    "firmware-config [CONFIG] [-o FILE] | firmware-config --show BLOB|-",
	    "Converts a configuration into the firmware's blob, or shows one.",
	    fwcfg_opts }, cmd_firmware_config_main },
	{ { "upload", "upload test [--timeout SECONDS]",
	    "Sends a probe recording to the central custody store and checks it.",
	    siem_opts }, cmd_upload_main },
	{ { "provision",
	    "provision --serial SN --shim-id ID --operator NAME [--storage DIR] [--technician-port PATH] [--device-port PATH] [--recording-pub FILE] [--tamper-authority FILE] [--siem-host HOST] [--siem-port N] [--siem-ca FILE] [--siem-server-name NAME] [--siem-cert FILE] [--inventory-key KEY] [--breakglass-key FILE] [--enrolment-custody-key PUB] [--user NAME] [--force]",
	    "Takes a new unit from empty to ready: storage, configuration, identity, CSR, keys, signed inventory record.",
	    provision_opts }, cmd_provision_main },
	{ { "inventory",
	    "inventory keygen --out FILE [--pub FILE] | create --serial SN --operator NAME [--shim-id ID] [--identity FILE] [--recording-pub FILE] [--binary FILE] [--key AUTHKEY] [--out FILE] | sign RECORD --key AUTHKEY [--out FILE] | verify RECORD --authority PUB [--json]",
	    "Makes, signs and verifies units' signed inventory records (provenance).",
	    inventory_opts }, cmd_inventory_main },
	{ { "decommission",
	    "decommission [--yes] [--abandon-undelivered] [--operator NAME] [--timeout SECONDS] [--out FILE]",
	    "Erases the unit before disposal, after a record signed with its identity; shimd then refuses to start.",
	    decommission_opts }, cmd_decommission_main },
	{ { "breakglass",
	    "breakglass keygen --out MASTER | provision --shim ID --key MASTER --out FILE | issue --shim ID --ttl DURATION --reason TEXT --key MASTER [--technician ID] [--issuer NAME] [--now UNIX]",
	    "Makes the issuing secret, a shim's verify key, and one-time emergency codes (central side).",
	    breakglass_opts }, cmd_breakglass_main },
	{ { "monitor",
	    "monitor --inventory DIR [--authority PUB] --log FILE [--follow] [--now T] [--json] [--period S] [--threads N]",
	    "Checks the shims' signed heartbeats in a SIEM log (central side).",
	    monitor_opts }, cmd_monitor_main },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: shimctl [--config FILE] <command> [args]\n"
		   "       (default config: %s)\n\ncommands:\n", DEFAULT_CONFIG);
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		fprintf(f, "  shimctl %s\n", subcommands[i].cmd.usage);
	}
	fprintf(f, "\nshimctl <command> --help shows a command's options.\n");
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
		if (strcmp(args[0], subcommands[k].cmd.name) == 0) {
			char **parsed = calloc(2 * (size_t)nargs + 1,
					       sizeof(*parsed));
			int nparsed = 0, rc;

			if (parsed == NULL) {
				free(args);
				return 1;
			}
			rc = tool_parse_options(&subcommands[k].cmd, nargs,
						args, &nparsed, parsed);
			if (rc < 0)
				rc = subcommands[k].fn(nparsed, parsed, config);
			free(parsed);
			free(args);
			return rc;
		}
	}
	fprintf(stderr, "shimctl: unknown command '%s'\n\n", args[0]);
	usage(stderr);
	free(args);
	return 2;
}
