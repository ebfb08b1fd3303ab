/*
 * shimctl subcommands: one file per subcommand, tools/cmd_<name>.c.
 * Each returns the process exit status (0 success, 1 failure, 2 usage).
 */
#ifndef SHIM_TOOLS_SUBCOMMANDS_H
#define SHIM_TOOLS_SUBCOMMANDS_H

int cmd_enrol_main(int argc, char **argv, const char *config_path);
int cmd_technicians_main(int argc, char **argv, const char *config_path);
int cmd_enrolment_main(int argc, char **argv, const char *config_path);
int cmd_totp_main(int argc, char **argv, const char *config_path);
int cmd_status_main(int argc, char **argv, const char *config_path);
int cmd_state_main(int argc, char **argv, const char *config_path);
int cmd_lockouts_main(int argc, char **argv, const char *config_path);
int cmd_reset_lockout_main(int argc, char **argv, const char *config_path);
int cmd_end_session_main(int argc, char **argv, const char *config_path);
int cmd_gate_main(int argc, char **argv, const char *config_path);
int cmd_clock_main(int argc, char **argv, const char *config_path);
int cmd_session_main(int argc, char **argv, const char *config_path);
int cmd_keygen_main(int argc, char **argv, const char *config_path);
int cmd_siem_main(int argc, char **argv, const char *config_path);
int cmd_upload_main(int argc, char **argv, const char *config_path);

int cmd_token_main(int argc, char **argv, const char *config_path);
int cmd_identity_main(int argc, char **argv, const char *config_path);
int cmd_tamper_main(int argc, char **argv, const char *config_path);
int cmd_monitor_main(int argc, char **argv, const char *config_path);
int cmd_firmware_config_main(int argc, char **argv, const char *config_path);
int cmd_inventory_main(int argc, char **argv, const char *config_path);
/* Fills an inventory record from a unit's files (tools/cmd_inventory.c);
 * 0, or 1 after printing why. */
struct shim_inventory;
int shim_tool_inventory_fill(struct shim_inventory *r, const char *config_path,
			     const char *serial, const char *shim_id,
			     const char *op, const char *identity,
			     const char *recpub, const char *binary);
int cmd_provision_main(int argc, char **argv, const char *config_path);
int cmd_decommission_main(int argc, char **argv, const char *config_path);
/* Writes a CSR (CN = cn) signed by the key file to out (stdout when
 * NULL); the exit status. */
int shim_tool_identity_csr(const char *key, const char *cn, const char *out);
int cmd_breakglass_main(int argc, char **argv, const char *config_path);
/* For a "keygen authority" entry point: same arguments as "token keygen". */
int cmd_token_keygen_authority(int argc, char **argv, const char *config_path);

#endif
