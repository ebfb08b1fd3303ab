/*
 * Configuration: the YAML file read by shimd and shimctl.
 *
 * The prototype's config.example.yaml loads unchanged; extension keys keep
 * its layout. Unknown keys, wrong types, out-of-range values, duplicate
 * technicians, malformed secrets and missing required keys are errors,
 * each reported as "FILE:LINE: message".
 */
#ifndef SHIM_COMMON_CONFIG_H
#define SHIM_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gate.h"
#include "port.h"

#define SHIM_MAX_SENSORS 16

enum shim_siem_transport {
	SHIM_SIEM_NOOP = 0,
	SHIM_SIEM_SYSLOG_TLS,
	SHIM_SIEM_SYSLOG_TCP,
};

enum shim_siem_format {
	SHIM_SIEM_RFC5424 = 0,
	SHIM_SIEM_CEF,
};

enum shim_on_failure {
	SHIM_ON_FAILURE_CONTINUE = 0,
	SHIM_ON_FAILURE_STOP,
};

enum shim_device_reset {
	SHIM_DEVICE_RESET_NONE = 0, /* nothing at session end */
	SHIM_DEVICE_RESET_DTR,      /* DTR held low for device_reset_hold s */
};

#define SHIM_DEVICE_LOGOUT_MAX 256

enum shim_sensor_type {
	SHIM_SENSOR_FILE = 0,
	SHIM_SENSOR_GPIO,
};

enum shim_sensor_role {
	SHIM_ROLE_TAMPER = 0,    /* trips the emergency stop */
	SHIM_ROLE_POWER_FAIL,    /* graceful shutdown, not tamper */
	SHIM_ROLE_RESET_KEY,     /* physical reset key, read at start */
#ifdef SHIM_FACTORY_BUILD
	SHIM_ROLE_FACTORY_JUMPER, /* factory build only: tamper not latched */
#endif
};

/* What this binary is: "factory" (SHIM_FACTORY=ON) or "deployed". */
#ifdef SHIM_FACTORY_BUILD
#define SHIM_BUILD_KIND "factory"
#else
#define SHIM_BUILD_KIND "deployed"
#endif

struct shim_sensor_cfg {
	enum shim_sensor_type type;
	enum shim_sensor_role role;
	char *event;      /* e.g. "case_opened" */
	char *path;       /* file sensors */
	char *chip;       /* gpio sensors, e.g. "gpiochip0" */
	uint32_t line;
	int active_low;
	uint32_t debounce_ms;
	int line_no;      /* config line, for messages */
};

struct shim_config {
	char *file;                 /* path it was read from */

	/* shim: */
	char *shim_id;
	char *description;
	char *run_user;             /* shim.user: account to become when root */

	/* serial: */
	char *tech_path;            /* "pty:/path" or a tty device */
	char *dev_path;
	struct shim_serial_cfg tech_serial;
	struct shim_serial_cfg dev_serial;
	int device_retry;           /* keep retrying a missing device */

	/* totp: */
	struct shim_gate_cfg gate;
	char *issuer;

	/* storage: */
	char *storage_root;
	uint64_t max_bytes;         /* 0 = no limit */
	uint64_t min_free_bytes;    /* used when min_free_explicit */
	int min_free_explicit;      /* 0: the default reserve (docs) */
	uint32_t retention_days;

	/* recording: */
	char *recording_public_key; /* PEM file; NULL = local custody */
	uint32_t sync_interval_ms;
	enum shim_on_failure on_failure;
	uint32_t queue_bytes;

	/* session: (seconds) */
	double idle_timeout;
	double max_duration;
	double reconnect_grace;
	uint8_t *device_logout;     /* sent to the device at session end */
	size_t device_logout_len;   /* 0 = nothing (device_logout NULL) */
	enum shim_device_reset device_reset;
	double device_reset_hold;   /* seconds DTR is held low */

	/* breakglass: */
	char *breakglass_verify_key; /* provisioned verify key; NULL = none */
	double breakglass_max_duration; /* seconds */

	/* clock: (seconds) */
	double clock_max_jump;      /* wall vs trusted clock disagreement */

	/* tamper: */
	double heartbeat_period;
	struct shim_sensor_cfg sensors[SHIM_MAX_SENSORS];
	size_t nsensors;
	enum shim_on_failure on_sensor_fault; /* STOP (default) or CONTINUE=report */
	char *reset_authority_public_key;

	/* siem: */
	enum shim_siem_transport siem_transport;
	enum shim_siem_format siem_format;
	char *siem_host;
	uint16_t siem_port;
	char *siem_server_name;
	char *siem_ca;
	char *siem_client_cert;
	char *siem_client_key;
	int siem_insecure;
	uint32_t siem_enterprise_number;
	double siem_outage_alarm_seconds;
	uint64_t siem_spool_max_bytes;

	/* custody: (central recording store; docs/custody.md) */
	char *custody_url;          /* https://host[:port]/base; NULL = none */
	char *custody_server_name;  /* name checked in the server cert
				     * (default: the URL's host) */
	char *custody_ca;
	char *custody_client_cert;  /* default: siem.client_cert */
	char *custody_client_key;   /* default: siem.client_key */
	uint32_t custody_keep_local_days; /* after delivery */
	double custody_outage_alarm_seconds;
	double custody_retry_max_seconds; /* back-off ceiling */
	double custody_timeout_seconds;   /* one request's stall limit */
	uint64_t custody_max_bytes_per_second; /* 0 = no limit */
	int custody_line;           /* line of the section, for messages */

	/* admin: */
	char *admin_socket;         /* default <storage_root>/shimd.sock */
	char *audit_log;            /* default <storage_root>/audit.jsonl */
	uint64_t audit_log_max_bytes;

	/* enrolment: the sealed enrolment store (core/enrolstore.h) */
	char *enrol_store;          /* default <storage_root>/technicians.sealed */
	char *enrol_custody_key;    /* central enrolment-custody public key */

	/* technicians (inline list and/or technicians_file) */
	char *technicians_file;
	struct shim_technician *techs;
	size_t ntechs;
	size_t techs_cap;
	int secrets_inline;         /* the config file itself holds secrets */
};

/* Collects "FILE:LINE: message" lines. */
struct shim_config_diag {
	FILE *out;      /* where messages go, or NULL to only count */
	unsigned errors;
	unsigned warnings;
	int no_warnings;  /* count warnings but do not print them */
};

/* Sets every default. */
void shim_config_defaults(struct shim_config *cfg);

/* Loads and validates path. Every problem is reported through diag; the
 * return is 0 when there was no error, SHIM_EINVAL otherwise (cfg then
 * holds whatever could be read, and must still be freed). */
int shim_config_load(struct shim_config *cfg, const char *path,
		     struct shim_config_diag *diag);

/* Loads from a memory buffer (name is used in messages). */
int shim_config_load_buffer(struct shim_config *cfg, const char *name,
			    const char *buf, size_t len,
			    struct shim_config_diag *diag);

/* Appends one technician to a technicians file (created 0600 when
 * missing). Refuses an ID already present: SHIM_EEXIST. */
int shim_config_add_technician(const char *file, const char *id,
			       const char *secret_b32, const char *date,
			       const char *notes);

/* Frees everything and wipes secrets. */
void shim_config_free(struct shim_config *cfg);

/* Path under the storage root: "<root>/<rel>", malloc'd. */
char *shim_config_path(const struct shim_config *cfg, const char *rel);

#endif
