/*
 * Configuration loader on libyaml's document API.
 *
 * The whole file is loaded into a node tree first, so every node keeps its
 * line for messages. Each section is walked against a key table; anything
 * not in a table is an error naming the key and its line. Problems are
 * collected, not stopped at: --check-config shows them all at once.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "base32.h"
#include "otp.h"
#include "port_linux.h"
#include "util.h"

#define MAX_TECHNICIANS 100000
#define MAX_CONFIG_BYTES (16u * 1024 * 1024)

struct loader {
	struct shim_config *cfg;
	struct shim_config_diag *diag;
	const char *file;       /* file being read (config or technicians) */
	yaml_document_t *doc;
	int in_techs_file;
	int have_mode;          /* mode is that of the file being read */
	unsigned mode;
	/* which serial keys were given per side, so side blocks override */
	int seen_required[8];
};

static void msg(struct loader *ld, int warn, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void msg(struct loader *ld, int warn, int line, const char *fmt, ...)
{
	va_list ap;

	if (warn) {
		ld->diag->warnings++;
	} else {
		ld->diag->errors++;
	}
	if (ld->diag->out == NULL || (warn && ld->diag->no_warnings)) {
		return;
	}
	if (line > 0) {
		fprintf(ld->diag->out, "%s:%d: %s", ld->file, line,
			warn ? "warning: " : "");
	} else {
		fprintf(ld->diag->out, "%s: %s", ld->file, warn ? "warning: " : "");
	}
	va_start(ap, fmt);
	vfprintf(ld->diag->out, fmt, ap);
	va_end(ap);
	fputc('\n', ld->diag->out);
}

static int line_of(const yaml_node_t *n)
{
	return n != NULL ? (int)n->start_mark.line + 1 : 0;
}

static yaml_node_t *node(struct loader *ld, int id)
{
	return yaml_document_get_node(ld->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
					   : NULL;
}

/* A plain (unquoted) scalar "null", "~" or empty counts as unset. */
static int is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);

	if (s == NULL || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		return 0;
	}
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0;
}

/* ---- typed value readers ------------------------------------------------ */

static int want_scalar(struct loader *ld, const yaml_node_t *n,
		       const char *key, const char **out)
{
	*out = scalar(n);
	if (*out == NULL) {
		msg(ld, 0, line_of(n), "%s: expected a single value, not a %s",
		    key, n->type == YAML_MAPPING_NODE ? "mapping" : "list");
		return -1;
	}
	return 0;
}

static int get_str(struct loader *ld, const yaml_node_t *n, const char *key,
		   char **dst)
{
	const char *s;

	if (want_scalar(ld, n, key, &s) != 0) {
		return -1;
	}
	if (strlen(s) > 4096) {
		msg(ld, 0, line_of(n), "%s: value too long", key);
		return -1;
	}
	free(*dst);
	*dst = strdup(s);
	return *dst != NULL ? 0 : -1;
}

/* Unsigned integer with optional K/M/G/T (binary) suffix when sizes. */
static int get_uint(struct loader *ld, const yaml_node_t *n, const char *key,
		    uint64_t min, uint64_t max, int sizes, uint64_t *out)
{
	const char *s;
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (want_scalar(ld, n, key, &s) != 0) {
		return -1;
	}
	if (s[0] < '0' || s[0] > '9') {
		msg(ld, 0, line_of(n), "%s: expected a whole number, got '%s'",
		    key, s);
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (sizes && *end != '\0' && end[1] == '\0') {
		switch (*end) {
		case 'K': case 'k': mul = 1024ull; end++; break;
		case 'M': case 'm': mul = 1024ull * 1024; end++; break;
		case 'G': case 'g': mul = 1024ull * 1024 * 1024; end++; break;
		case 'T': case 't': mul = 1024ull * 1024 * 1024 * 1024; end++; break;
		default: break;
		}
	}
	if (errno != 0 || *end != '\0') {
		msg(ld, 0, line_of(n), "%s: expected a whole number%s, got '%s'",
		    key, sizes ? " (optionally with K, M, G or T)" : "", s);
		return -1;
	}
	if (v > UINT64_MAX / mul || v * mul < min || v * mul > max) {
		msg(ld, 0, line_of(n), "%s: %s is out of range (%llu to %llu)",
		    key, s, (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v * mul;
	return 0;
}

static int get_u32(struct loader *ld, const yaml_node_t *n, const char *key,
		   uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (get_uint(ld, n, key, min, max, 0, &v) != 0) {
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int get_double(struct loader *ld, const yaml_node_t *n, const char *key,
		      double min, double max, double *out)
{
	const char *s;
	char *end;
	double v;

	if (want_scalar(ld, n, key, &s) != 0) {
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || isnan(v)) {
		msg(ld, 0, line_of(n), "%s: expected a number of seconds, got '%s'",
		    key, s);
		return -1;
	}
	if (v < min || v > max) {
		msg(ld, 0, line_of(n), "%s: %s is out of range (%g to %g)", key,
		    s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int get_bool(struct loader *ld, const yaml_node_t *n, const char *key,
		    int *out)
{
	const char *s;

	if (want_scalar(ld, n, key, &s) != 0) {
		return -1;
	}
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
	    strcmp(s, "on") == 0) {
		*out = 1;
	} else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
		   strcmp(s, "off") == 0) {
		*out = 0;
	} else {
		msg(ld, 0, line_of(n), "%s: expected true or false, got '%s'",
		    key, s);
		return -1;
	}
	return 0;
}

/* One of a NULL-terminated list of names; *out gets its index. */
static int get_enum(struct loader *ld, const yaml_node_t *n, const char *key,
		    const char *const *names, int *out)
{
	const char *s;
	char list[256] = "";
	int i;

	if (want_scalar(ld, n, key, &s) != 0) {
		return -1;
	}
	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
		if (i > 0) {
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		}
		strncat(list, names[i], sizeof(list) - strlen(list) - 1);
	}
	msg(ld, 0, line_of(n), "%s: '%s' is not one of %s", key, s, list);
	return -1;
}

/* ---- mapping walker ----------------------------------------------------- */

typedef void (*key_fn)(struct loader *ld, const char *key, yaml_node_t *val);

struct keydef {
	const char *name;
	key_fn fn;
};

static void walk(struct loader *ld, yaml_node_t *map, const char *section,
		 const struct keydef *keys)
{
	yaml_node_pair_t *p;
	char seen[64] = { 0 };

	if (map->type != YAML_MAPPING_NODE) {
		if (is_null(map)) {
			return;
		}
		msg(ld, 0, line_of(map), "%s: expected a mapping of keys", section);
		return;
	}
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(ld, p->key), *v = node(ld, p->value);
		const char *name = k != NULL ? scalar(k) : NULL;
		char full[128];
		int i;

		if (name == NULL || v == NULL) {
			msg(ld, 0, line_of(k), "%s: keys must be plain names", section);
			continue;
		}
		snprintf(full, sizeof(full), "%s%s%s", section, section[0] ? "." : "",
			 name);
		for (i = 0; keys[i].name != NULL; i++) {
			if (strcmp(keys[i].name, name) == 0) {
				break;
			}
		}
		if (keys[i].name == NULL) {
			msg(ld, 0, line_of(k), "unknown key '%s'", full);
			continue;
		}
		if (i < 64 && seen[i]) {
			msg(ld, 0, line_of(k), "duplicate key '%s'", full);
			continue;
		}
		if (i < 64) {
			seen[i] = 1;
		}
		if (is_null(v)) {
			continue; /* explicit null: keep the default */
		}
		keys[i].fn(ld, full, v);
	}
}

/* ---- sections ------------------------------------------------------------ */

#define CFG (ld->cfg)

static void k_shim_id(struct loader *ld, const char *key, yaml_node_t *v)
{
	const char *s;
	size_t i;

	if (get_str(ld, v, key, &CFG->shim_id) != 0) {
		return;
	}
	s = CFG->shim_id;
	if (s[0] == '\0' || strlen(s) >= 64) {
		msg(ld, 0, line_of(v), "%s: must be 1 to 63 characters", key);
		return;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
		    s[i] == '"' || s[i] == '\\' || s[i] == ']' || s[i] == '/') {
			msg(ld, 0, line_of(v),
			    "%s: '%s' may hold only printable characters other than space, quote, backslash, ']' and '/'",
			    key, s);
			return;
		}
	}
}

static void k_shim_desc(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->description);
}

/* The account shimd becomes when started as root (daemon/harden.c). */
static void k_shim_user(struct loader *ld, const char *key, yaml_node_t *v)
{
	const char *s;
	size_t i;

	if (get_str(ld, v, key, &CFG->run_user) != 0) {
		return;
	}
	s = CFG->run_user;
	if (s[0] == '\0' || strlen(s) > 32) {
		msg(ld, 0, line_of(v), "%s: must be a user name of 1 to 32 characters",
		    key);
		return;
	}
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
		      ch == '.') || (i == 0 && ch == '-')) {
			msg(ld, 0, line_of(v), "%s: '%s' is not a user name", key, s);
			return;
		}
	}
}

static const struct keydef shim_keys[] = {
	{ "id", k_shim_id },
	{ "description", k_shim_desc },
	{ "user", k_shim_user },
	{ NULL, NULL },
};

static const uint32_t bauds[] = { 300, 600, 1200, 2400, 4800, 9600, 19200,
				  38400, 57600, 115200, 230400, 460800,
				  921600 };

static void set_baud(struct loader *ld, const char *key, yaml_node_t *v,
		     struct shim_serial_cfg *a, struct shim_serial_cfg *b)
{
	uint32_t baud;
	size_t i;

	if (get_u32(ld, v, key, 300, 921600, &baud) != 0) {
		return;
	}
	for (i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++) {
		if (bauds[i] == baud) {
			a->baud = baud;
			if (b != NULL) {
				b->baud = baud;
			}
			return;
		}
	}
	msg(ld, 0, line_of(v),
	    "%s: %u is not a standard baud rate (300 to 921600)", key, baud);
}

static void set_bits(struct loader *ld, const char *key, yaml_node_t *v,
		     struct shim_serial_cfg *a, struct shim_serial_cfg *b,
		     int data)
{
	uint32_t n;

	if (get_u32(ld, v, key, data ? 7 : 1, data ? 8 : 2, &n) != 0) {
		return;
	}
	if (data) {
		a->data_bits = (uint8_t)n;
		if (b != NULL) {
			b->data_bits = (uint8_t)n;
		}
	} else {
		a->stop_bits = (uint8_t)n;
		if (b != NULL) {
			b->stop_bits = (uint8_t)n;
		}
	}
}

static const char *const parity_names[] = { "none", "even", "odd", NULL };
static const char *const flow_names[] = { "none", "rtscts", "xonxoff", NULL };
static const char *const presence_names[] = { "none", "dcd", "dsr", NULL };

static void set_parity(struct loader *ld, const char *key, yaml_node_t *v,
		       struct shim_serial_cfg *a, struct shim_serial_cfg *b)
{
	int i;

	if (get_enum(ld, v, key, parity_names, &i) == 0) {
		a->parity = (enum shim_parity)i;
		if (b != NULL) {
			b->parity = (enum shim_parity)i;
		}
	}
}

static void set_flow(struct loader *ld, const char *key, yaml_node_t *v,
		     struct shim_serial_cfg *a, struct shim_serial_cfg *b)
{
	int i;

	if (get_enum(ld, v, key, flow_names, &i) == 0) {
		a->flow = (enum shim_flow)i;
		if (b != NULL) {
			b->flow = (enum shim_flow)i;
		}
	}
}

/* serial.* keys apply to both sides; serial.technician.* and
 * serial.device.* override one side. Side blocks are applied after the
 * shared keys whatever their order in the file. */
static yaml_node_t *side_tech, *side_dev;

static void k_tech_path(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->tech_path);
}

static void k_dev_path(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->dev_path);
}

static void k_baud(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_baud(ld, key, v, &CFG->tech_serial, &CFG->dev_serial);
}

static void k_data_bits(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_bits(ld, key, v, &CFG->tech_serial, &CFG->dev_serial, 1);
}

static void k_stop_bits(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_bits(ld, key, v, &CFG->tech_serial, &CFG->dev_serial, 0);
}

static void k_parity(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_parity(ld, key, v, &CFG->tech_serial, &CFG->dev_serial);
}

static void k_flow(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_flow(ld, key, v, &CFG->tech_serial, &CFG->dev_serial);
}

static void k_presence(struct loader *ld, const char *key, yaml_node_t *v)
{
	int i;

	if (get_enum(ld, v, key, presence_names, &i) == 0) {
		CFG->tech_serial.presence = (enum shim_presence)i;
	}
}

static void k_device_retry(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_bool(ld, v, key, &CFG->device_retry);
}

static void k_side_tech(struct loader *ld, const char *key, yaml_node_t *v)
{
	(void)ld;
	(void)key;
	side_tech = v;
}

static void k_side_dev(struct loader *ld, const char *key, yaml_node_t *v)
{
	(void)ld;
	(void)key;
	side_dev = v;
}

static struct shim_serial_cfg *side_target;

static void s_baud(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_baud(ld, key, v, side_target, NULL);
}

static void s_data_bits(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_bits(ld, key, v, side_target, NULL, 1);
}

static void s_stop_bits(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_bits(ld, key, v, side_target, NULL, 0);
}

static void s_parity(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_parity(ld, key, v, side_target, NULL);
}

static void s_flow(struct loader *ld, const char *key, yaml_node_t *v)
{
	set_flow(ld, key, v, side_target, NULL);
}

static const struct keydef side_keys[] = {
	{ "baudrate", s_baud },
	{ "data_bits", s_data_bits },
	{ "stop_bits", s_stop_bits },
	{ "parity", s_parity },
	{ "flow_control", s_flow },
	{ NULL, NULL },
};

static const struct keydef serial_keys[] = {
	{ "technician_side_path", k_tech_path },
	{ "device_side_path", k_dev_path },
	{ "baudrate", k_baud },
	{ "data_bits", k_data_bits },
	{ "stop_bits", k_stop_bits },
	{ "parity", k_parity },
	{ "flow_control", k_flow },
	{ "technician_presence", k_presence },
	{ "device_retry", k_device_retry },
	{ "technician", k_side_tech },
	{ "device", k_side_dev },
	{ NULL, NULL },
};

static void k_period(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, 3600, &CFG->gate.period);
}

static void k_digits(struct loader *ld, const char *key, yaml_node_t *v)
{
	uint32_t n;

	if (get_u32(ld, v, key, SHIM_OTP_MIN_DIGITS, SHIM_OTP_MAX_DIGITS, &n) == 0) {
		CFG->gate.digits = (uint8_t)n;
	}
}

static void k_window(struct loader *ld, const char *key, yaml_node_t *v)
{
	uint32_t n;

	if (get_u32(ld, v, key, 0, 10, &n) == 0) {
		CFG->gate.window = (uint8_t)n;
	}
}

static void k_max_failures(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, 1000, &CFG->gate.max_failures);
}

static void k_lockout(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, 7 * 86400, &CFG->gate.lockout_seconds);
}

static void k_rate_failures(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, SHIM_GATE_RATE_SLOTS, &CFG->gate.rate_failures);
}

static void k_rate_seconds(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, 86400, &CFG->gate.rate_seconds);
}

static void k_algorithm(struct loader *ld, const char *key, yaml_node_t *v)
{
	const char *s;

	if (want_scalar(ld, v, key, &s) != 0) {
		return;
	}
	if (shim_md_from_name(s, &CFG->gate.md) != 0) {
		msg(ld, 0, line_of(v), "%s: '%s' is not one of SHA1, SHA256, SHA512",
		    key, s);
	}
}

static void k_issuer(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->issuer);
}

static const struct keydef totp_keys[] = {
	{ "period", k_period },
	{ "digits", k_digits },
	{ "window", k_window },
	{ "max_failures", k_max_failures },
	{ "lockout_seconds", k_lockout },
	{ "rate_limit_failures", k_rate_failures },
	{ "rate_limit_seconds", k_rate_seconds },
	{ "algorithm", k_algorithm },
	{ "issuer", k_issuer },
	{ NULL, NULL },
};

static void k_root(struct loader *ld, const char *key, yaml_node_t *v)
{
	if (get_str(ld, v, key, &CFG->storage_root) == 0 &&
	    CFG->storage_root[0] != '/') {
		msg(ld, 0, line_of(v), "%s: must be an absolute path", key);
	}
}

static void k_max_bytes(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_uint(ld, v, key, 0, UINT64_MAX, 1, &CFG->max_bytes);
}

static void k_min_free(struct loader *ld, const char *key, yaml_node_t *v)
{
	if (get_uint(ld, v, key, 0, UINT64_MAX, 1, &CFG->min_free_bytes) == 0) {
		CFG->min_free_explicit = 1;
	}
}

static void k_retention(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, 36500, &CFG->retention_days);
}

static const struct keydef storage_keys[] = {
	{ "root", k_root },
	{ "max_bytes", k_max_bytes },
	{ "min_free_bytes", k_min_free },
	{ "retention_days", k_retention },
	{ NULL, NULL },
};

static const char *const on_failure_names[] = { "continue", "stop", NULL };

static void k_rec_pub(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->recording_public_key);
}

static void k_sync(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, 60000, &CFG->sync_interval_ms);
}

static void k_on_failure(struct loader *ld, const char *key, yaml_node_t *v)
{
	int i;

	if (get_enum(ld, v, key, on_failure_names, &i) == 0) {
		CFG->on_failure = (enum shim_on_failure)i;
	}
}

static void k_queue(struct loader *ld, const char *key, yaml_node_t *v)
{
	uint64_t n;

	if (get_uint(ld, v, key, 4096, 256u * 1024 * 1024, 1, &n) == 0) {
		CFG->queue_bytes = (uint32_t)n;
	}
}

static const struct keydef recording_keys[] = {
	{ "public_key", k_rec_pub },
	{ "sync_interval_ms", k_sync },
	{ "on_failure", k_on_failure },
	{ "queue_bytes", k_queue },
	{ NULL, NULL },
};

static void k_idle(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 1, 7 * 86400, &CFG->idle_timeout);
}

static void k_max_dur(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 1, 7 * 86400, &CFG->max_duration);
}

static void k_grace(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 0, 3600, &CFG->reconnect_grace);
}

/* Bytes, not text: YAML escapes ("logout\r", "\x04", even "\0") give
 * them, so the scalar's length is used, not strlen(). */
static void k_logout(struct loader *ld, const char *key, yaml_node_t *v)
{
	const char *s;
	size_t n;

	if (want_scalar(ld, v, key, &s) != 0) {
		return;
	}
	n = v->data.scalar.length;
	if (n > SHIM_DEVICE_LOGOUT_MAX) {
		msg(ld, 0, line_of(v), "%s: %zu bytes is too long (at most %d)",
		    key, n, SHIM_DEVICE_LOGOUT_MAX);
		return;
	}
	free(CFG->device_logout);
	CFG->device_logout = NULL;
	CFG->device_logout_len = 0;
	if (n == 0) {
		return;
	}
	CFG->device_logout = malloc(n);
	if (CFG->device_logout == NULL) {
		msg(ld, 0, line_of(v), "%s: out of memory", key);
		return;
	}
	memcpy(CFG->device_logout, s, n);
	CFG->device_logout_len = n;
}

static void k_reset(struct loader *ld, const char *key, yaml_node_t *v)
{
	static const char *const names[] = { "none", "dtr", NULL };
	int i;

	if (get_enum(ld, v, key, names, &i) == 0) {
		CFG->device_reset = (enum shim_device_reset)i;
	}
}

static void k_reset_hold(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 0.05, 10, &CFG->device_reset_hold);
}

static const struct keydef session_keys[] = {
	{ "idle_timeout", k_idle },
	{ "max_duration", k_max_dur },
	{ "reconnect_grace", k_grace },
	{ "device_logout", k_logout },
	{ "device_reset", k_reset },
	{ "device_reset_hold", k_reset_hold },
	{ NULL, NULL },
};

static void k_bg_key(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->breakglass_verify_key);
}

static void k_bg_max(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 60, 86400, &CFG->breakglass_max_duration);
}

static const struct keydef breakglass_keys[] = {
	{ "verify_key", k_bg_key },
	{ "max_duration", k_bg_max },
	{ NULL, NULL },
};

static void k_max_jump(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 5, 86400, &CFG->clock_max_jump);
}

static const struct keydef clock_keys[] = {
	{ "max_jump", k_max_jump },
	{ NULL, NULL },
};

/* tamper.sensors: a list of mappings. */
static struct shim_sensor_cfg *cur_sensor;

static void ks_type(struct loader *ld, const char *key, yaml_node_t *v)
{
	static const char *const names[] = { "file", "gpio", NULL };
	int i;

	if (get_enum(ld, v, key, names, &i) == 0) {
		cur_sensor->type = (enum shim_sensor_type)i;
	}
}

static void ks_role(struct loader *ld, const char *key, yaml_node_t *v)
{
	static const char *const names[] = { "tamper", "power_fail",
					     "reset_key",
#ifdef SHIM_FACTORY_BUILD
					     "factory_jumper",
#endif
					     NULL };
	int i;

#ifndef SHIM_FACTORY_BUILD
	if (v->type == YAML_SCALAR_NODE &&
	    strcmp((const char *)v->data.scalar.value, "factory_jumper") == 0) {
		msg(ld, 0, line_of(v), "%s: 'factory_jumper' exists only in a "
		    "factory build (cmake -DSHIM_FACTORY=ON); this is a "
		    "deployed build, which has no such mode", key);
		return;
	}
#endif
	if (get_enum(ld, v, key, names, &i) == 0) {
		cur_sensor->role = (enum shim_sensor_role)i;
	}
}

static void ks_event(struct loader *ld, const char *key, yaml_node_t *v)
{
	size_t i;

	if (get_str(ld, v, key, &cur_sensor->event) != 0) {
		return;
	}
	for (i = 0; cur_sensor->event[i] != '\0'; i++) {
		char c = cur_sensor->event[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_')) {
			msg(ld, 0, line_of(v),
			    "%s: '%s' must be lower-case letters, digits and '_'",
			    key, cur_sensor->event);
			return;
		}
	}
	if (i == 0 || i > 24) {
		msg(ld, 0, line_of(v), "%s: must be 1 to 24 characters", key);
	}
}

static void ks_path(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &cur_sensor->path);
}

static void ks_chip(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &cur_sensor->chip);
}

static void ks_line(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 0, 4095, &cur_sensor->line);
}

static void ks_active(struct loader *ld, const char *key, yaml_node_t *v)
{
	static const char *const names[] = { "high", "low", NULL };
	int i;

	if (get_enum(ld, v, key, names, &i) == 0) {
		cur_sensor->active_low = i;
	}
}

static void ks_debounce(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 0, 10000, &cur_sensor->debounce_ms);
}

static const struct keydef sensor_keys[] = {
	{ "type", ks_type },
	{ "role", ks_role },
	{ "event", ks_event },
	{ "path", ks_path },
	{ "chip", ks_chip },
	{ "line", ks_line },
	{ "active", ks_active },
	{ "debounce_ms", ks_debounce },
	{ NULL, NULL },
};

static void k_sensors(struct loader *ld, const char *key, yaml_node_t *v)
{
	yaml_node_item_t *it;

	if (v->type != YAML_SEQUENCE_NODE) {
		msg(ld, 0, line_of(v), "%s: expected a list of sensors", key);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *s = node(ld, *it);
		struct shim_sensor_cfg *sc;

		if (CFG->nsensors >= SHIM_MAX_SENSORS) {
			msg(ld, 0, line_of(s), "%s: at most %d sensors", key,
			    SHIM_MAX_SENSORS);
			return;
		}
		sc = &CFG->sensors[CFG->nsensors++];
		memset(sc, 0, sizeof(*sc));
		sc->type = (enum shim_sensor_type)-1;
		sc->debounce_ms = 20;
		sc->line_no = line_of(s);
		cur_sensor = sc;
		walk(ld, s, key, sensor_keys);
		if ((int)sc->type == -1) {
			msg(ld, 0, sc->line_no, "%s: sensor needs 'type' (file or gpio)", key);
			continue;
		}
		if (sc->event == NULL) {
			sc->event = strdup(sc->role == SHIM_ROLE_POWER_FAIL ? "power_fail" :
					   sc->role == SHIM_ROLE_RESET_KEY ? "reset_key" :
#ifdef SHIM_FACTORY_BUILD
					   sc->role == SHIM_ROLE_FACTORY_JUMPER ?
					   "factory_jumper" :
#endif
					   "case_opened");
		}
		if (sc->type == SHIM_SENSOR_FILE && sc->path == NULL) {
			msg(ld, 0, sc->line_no, "%s: file sensor needs 'path'", key);
		}
		if (sc->type == SHIM_SENSOR_GPIO && sc->chip == NULL) {
			msg(ld, 0, sc->line_no, "%s: gpio sensor needs 'chip' and 'line'", key);
		}
	}
}

static void k_heartbeat(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 1, 86400, &CFG->heartbeat_period);
}

static void k_sensor_fault(struct loader *ld, const char *key, yaml_node_t *v)
{
	static const char *const names[] = { "report", "stop", NULL };
	int i;

	if (get_enum(ld, v, key, names, &i) == 0) {
		CFG->on_sensor_fault = i == 1 ? SHIM_ON_FAILURE_STOP
					      : SHIM_ON_FAILURE_CONTINUE;
	}
}

static void k_reset_pub(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->reset_authority_public_key);
}

static const struct keydef tamper_keys[] = {
	{ "heartbeat_period", k_heartbeat },
	{ "sensors", k_sensors },
	{ "on_sensor_fault", k_sensor_fault },
	{ "reset_authority_public_key", k_reset_pub },
	{ NULL, NULL },
};

static void k_transport(struct loader *ld, const char *key, yaml_node_t *v)
{
	static const char *const names[] = { "noop", "syslog-tls", "syslog-tcp",
					     NULL };
	int i;

	if (get_enum(ld, v, key, names, &i) == 0) {
		CFG->siem_transport = (enum shim_siem_transport)i;
	}
}

static void k_format(struct loader *ld, const char *key, yaml_node_t *v)
{
	static const char *const names[] = { "rfc5424", "cef", NULL };
	int i;

	if (get_enum(ld, v, key, names, &i) == 0) {
		CFG->siem_format = (enum shim_siem_format)i;
	}
}

static void k_host(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->siem_host);
}

static void k_port(struct loader *ld, const char *key, yaml_node_t *v)
{
	uint32_t p;

	if (get_u32(ld, v, key, 1, 65535, &p) == 0) {
		CFG->siem_port = (uint16_t)p;
	}
}

static void k_server_name(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->siem_server_name);
}

static void k_ca(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->siem_ca);
}

static void k_client_cert(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->siem_client_cert);
}

static void k_client_key(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->siem_client_key);
}

static void k_insecure(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_bool(ld, v, key, &CFG->siem_insecure);
}

static void k_pen(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 1, UINT32_MAX, &CFG->siem_enterprise_number);
}

static void k_outage(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 1, 30 * 86400, &CFG->siem_outage_alarm_seconds);
}

static void k_spool_max(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_uint(ld, v, key, 64 * 1024, UINT64_MAX, 1, &CFG->siem_spool_max_bytes);
}

static const struct keydef siem_keys[] = {
	{ "transport", k_transport },
	{ "format", k_format },
	{ "host", k_host },
	{ "port", k_port },
	{ "server_name", k_server_name },
	{ "ca", k_ca },
	{ "client_cert", k_client_cert },
	{ "client_key", k_client_key },
	{ "insecure", k_insecure },
	{ "enterprise_number", k_pen },
	{ "outage_alarm_seconds", k_outage },
	{ "spool_max_bytes", k_spool_max },
	{ NULL, NULL },
};

/* custody: */
static void k_cu_url(struct loader *ld, const char *key, yaml_node_t *v)
{
	const char *h;

	if (get_str(ld, v, key, &CFG->custody_url) != 0) {
		return;
	}
	if (strncmp(CFG->custody_url, "https://", 8) != 0) {
		msg(ld, 0, line_of(v),
		    "%s: '%s' must be an https:// URL (recordings go only over mutual TLS)",
		    key, CFG->custody_url);
		return;
	}
	h = CFG->custody_url + 8;
	if (*h == '\0' || *h == '/' || *h == ':' ||
	    strpbrk(CFG->custody_url, " ?#@\"'\\") != NULL) {
		msg(ld, 0, line_of(v),
		    "%s: '%s' needs a host and may not hold a query, fragment, user or quotes",
		    key, CFG->custody_url);
	}
}

static void k_cu_server_name(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->custody_server_name);
}

static void k_cu_ca(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->custody_ca);
}

static void k_cu_cert(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->custody_client_cert);
}

static void k_cu_key(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->custody_client_key);
}

static void k_cu_keep(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_u32(ld, v, key, 0, 36500, &CFG->custody_keep_local_days);
}

static void k_cu_outage(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 1, 30 * 86400,
		   &CFG->custody_outage_alarm_seconds);
}

static void k_cu_retry(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 1, 86400, &CFG->custody_retry_max_seconds);
}

static void k_cu_timeout(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_double(ld, v, key, 1, 3600, &CFG->custody_timeout_seconds);
}

static void k_cu_rate(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_uint(ld, v, key, 0, UINT64_MAX, 1, &CFG->custody_max_bytes_per_second);
}

static const struct keydef custody_keys[] = {
	{ "url", k_cu_url },
	{ "server_name", k_cu_server_name },
	{ "ca", k_cu_ca },
	{ "client_cert", k_cu_cert },
	{ "client_key", k_cu_key },
	{ "keep_local_days", k_cu_keep },
	{ "outage_alarm_seconds", k_cu_outage },
	{ "retry_max_seconds", k_cu_retry },
	{ "timeout_seconds", k_cu_timeout },
	{ "max_bytes_per_second", k_cu_rate },
	{ NULL, NULL },
};

static void k_socket(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->admin_socket);
}

static void k_audit(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->audit_log);
}

static void k_audit_max(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_uint(ld, v, key, 4096, UINT64_MAX, 1, &CFG->audit_log_max_bytes);
}

static const struct keydef admin_keys[] = {
	{ "socket", k_socket },
	{ "audit_log", k_audit },
	{ "audit_log_max_bytes", k_audit_max },
	{ NULL, NULL },
};

/* ---- technicians ---------------------------------------------------------- */

struct tech_fields {
	yaml_node_t *id, *secret;
	int line;
};
static struct tech_fields cur_tech;

static void kt_id(struct loader *ld, const char *key, yaml_node_t *v)
{
	(void)ld;
	(void)key;
	cur_tech.id = v;
}

static void kt_secret(struct loader *ld, const char *key, yaml_node_t *v)
{
	(void)ld;
	(void)key;
	cur_tech.secret = v;
}

static void kt_ignore(struct loader *ld, const char *key, yaml_node_t *v)
{
	const char *s;

	want_scalar(ld, v, key, &s);
}

static const struct keydef tech_keys[] = {
	{ "technician_id", kt_id },
	{ "totp_secret", kt_secret },
	{ "enrolment_date", kt_ignore },
	{ "notes", kt_ignore },
	{ "name", kt_ignore },
	{ NULL, NULL },
};

static int tech_id_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > SHIM_TECH_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
			return 0;
		}
	}
	return 1;
}

static void add_tech(struct loader *ld)
{
	struct shim_config *cfg = CFG;
	struct shim_technician *t;
	const char *id, *sec;
	uint8_t buf[SHIM_SECRET_MAX + 64];
	size_t n, i;
	int rc;

	if (cur_tech.id == NULL || cur_tech.secret == NULL) {
		msg(ld, 0, cur_tech.line, "technician needs %s",
		    cur_tech.id == NULL ? "'technician_id'" : "'totp_secret'");
		return;
	}
	if (want_scalar(ld, cur_tech.id, "technician_id", &id) != 0 ||
	    want_scalar(ld, cur_tech.secret, "totp_secret", &sec) != 0) {
		return;
	}
	if (!tech_id_ok(id)) {
		msg(ld, 0, line_of(cur_tech.id),
		    "technician_id: '%s' must be 1 to %d printable characters without spaces",
		    id, SHIM_TECH_ID_MAX);
		return;
	}
	for (i = 0; i < cfg->ntechs; i++) {
		if (strcmp(cfg->techs[i].id, id) == 0) {
			msg(ld, 0, line_of(cur_tech.id),
			    "duplicate technician '%s'", id);
			return;
		}
	}
	rc = shim_base32_decode(sec, strlen(sec), buf, sizeof(buf), &n);
	if (rc != 0 || n == 0) {
		shim_memzero(buf, sizeof(buf));
		/* Never echo the secret itself. */
		msg(ld, 0, line_of(cur_tech.secret),
		    "totp_secret of '%s' is not valid base32 (RFC 4648: letters A-Z, digits 2-7)",
		    id);
		return;
	}
	if (n > SHIM_SECRET_MAX || n < 10) {
		shim_memzero(buf, sizeof(buf));
		msg(ld, 0, line_of(cur_tech.secret),
		    "totp_secret of '%s' is %zu bytes; it must be 10 to %d bytes",
		    id, n, SHIM_SECRET_MAX);
		return;
	}
	if (n < 16) {
		msg(ld, 1, line_of(cur_tech.secret),
		    "totp_secret of '%s' is %zu bits; RFC 4226 asks for at least 128 (160 recommended): re-enrol",
		    id, n * 8);
	}
	if (cfg->ntechs == cfg->techs_cap) {
		size_t cap = cfg->techs_cap ? cfg->techs_cap * 2 : 16;
		struct shim_technician *nt;

		if (cap > MAX_TECHNICIANS) {
			msg(ld, 0, line_of(cur_tech.id), "too many technicians");
			shim_memzero(buf, sizeof(buf));
			return;
		}
		nt = calloc(cap, sizeof(*nt));
		if (nt == NULL) {
			shim_memzero(buf, sizeof(buf));
			msg(ld, 0, line_of(cur_tech.id), "out of memory");
			return;
		}
		if (cfg->techs != NULL) {
			memcpy(nt, cfg->techs, cfg->ntechs * sizeof(*nt));
			shim_memzero(cfg->techs, cfg->techs_cap * sizeof(*nt));
			free(cfg->techs);
		}
		cfg->techs = nt;
		cfg->techs_cap = cap;
	}
	t = &cfg->techs[cfg->ntechs++];
	memset(t, 0, sizeof(*t));
	memcpy(t->id, id, strlen(id));
	memcpy(t->secret, buf, n);
	t->secret_len = (uint8_t)n;
	shim_memzero(buf, sizeof(buf));
	if (!ld->in_techs_file) {
		cfg->secrets_inline = 1;
	}
}

static void k_technicians(struct loader *ld, const char *key, yaml_node_t *v)
{
	yaml_node_item_t *it;

	if (v->type != YAML_SEQUENCE_NODE) {
		msg(ld, 0, line_of(v), "%s: expected a list of technicians", key);
		return;
	}
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *t = node(ld, *it);

		memset(&cur_tech, 0, sizeof(cur_tech));
		cur_tech.line = line_of(t);
		if (t->type != YAML_MAPPING_NODE) {
			msg(ld, 0, line_of(t), "%s: each technician is a mapping", key);
			continue;
		}
		walk(ld, t, key, tech_keys);
		add_tech(ld);
	}
}

static void k_techs_file(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->technicians_file);
}

/* ---- top level -------------------------------------------------------------- */

static void k_shim(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, shim_keys);
}

static void k_serial(struct loader *ld, const char *key, yaml_node_t *v)
{
	side_tech = side_dev = NULL;
	walk(ld, v, key, serial_keys);
	if (side_tech != NULL) {
		side_target = &CFG->tech_serial;
		walk(ld, side_tech, "serial.technician", side_keys);
	}
	if (side_dev != NULL) {
		side_target = &CFG->dev_serial;
		walk(ld, side_dev, "serial.device", side_keys);
	}
}

static void k_totp(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, totp_keys);
}

static void k_storage(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, storage_keys);
}

static void k_recording(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, recording_keys);
}

static void k_session(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, session_keys);
}

static void k_clock(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, clock_keys);
}

static void k_tamper(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, tamper_keys);
}

static void k_siem(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, siem_keys);
}

static void k_custody(struct loader *ld, const char *key, yaml_node_t *v)
{
	CFG->custody_line = line_of(v);
	walk(ld, v, key, custody_keys);
}

static void k_en_store(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->enrol_store);
}

static void k_en_custody(struct loader *ld, const char *key, yaml_node_t *v)
{
	get_str(ld, v, key, &CFG->enrol_custody_key);
}

static const struct keydef enrolment_keys[] = {
	{ "store", k_en_store },
	{ "custody_key", k_en_custody },
	{ NULL, NULL },
};

static void k_enrolment(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, enrolment_keys);
}

static void k_admin(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, admin_keys);
}

static void k_breakglass(struct loader *ld, const char *key, yaml_node_t *v)
{
	walk(ld, v, key, breakglass_keys);
}

static const struct keydef top_keys[] = {
	{ "shim", k_shim },
	{ "serial", k_serial },
	{ "totp", k_totp },
	{ "storage", k_storage },
	{ "recording", k_recording },
	{ "session", k_session },
	{ "clock", k_clock },
	{ "tamper", k_tamper },
	{ "siem", k_siem },
	{ "custody", k_custody },
	{ "admin", k_admin },
	{ "breakglass", k_breakglass },
	{ "enrolment", k_enrolment },
	{ "technicians", k_technicians },
	{ "technicians_file", k_techs_file },
	{ NULL, NULL },
};

static const struct keydef techs_file_keys[] = {
	{ "technicians", k_technicians },
	{ NULL, NULL },
};

/* ---- driver --------------------------------------------------------------- */

void shim_config_defaults(struct shim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	shim_gate_cfg_default(&cfg->gate);
	cfg->tech_serial.baud = cfg->dev_serial.baud = 9600;
	cfg->tech_serial.data_bits = cfg->dev_serial.data_bits = 8;
	cfg->tech_serial.stop_bits = cfg->dev_serial.stop_bits = 1;
	cfg->retention_days = 90;
	cfg->sync_interval_ms = 100;
	cfg->queue_bytes = 256 * 1024;
	cfg->idle_timeout = 900;
	cfg->max_duration = 28800;
	cfg->reconnect_grace = 30;
	cfg->breakglass_max_duration = 14400;
	cfg->device_reset = SHIM_DEVICE_RESET_NONE;
	cfg->device_reset_hold = 0.5;
	cfg->clock_max_jump = 120;
	cfg->heartbeat_period = 60;
	cfg->on_sensor_fault = SHIM_ON_FAILURE_STOP;
	cfg->siem_port = 6514;
	cfg->siem_enterprise_number = 32473;
	cfg->siem_outage_alarm_seconds = 900;
	cfg->siem_spool_max_bytes = 64ull * 1024 * 1024;
	cfg->audit_log_max_bytes = 16ull * 1024 * 1024;
	cfg->custody_keep_local_days = 7;
	cfg->custody_outage_alarm_seconds = 900;
	cfg->custody_retry_max_seconds = 300;
	cfg->custody_timeout_seconds = 60;
}

static int load_doc(struct loader *ld, const char *buf, size_t len,
		    const struct keydef *keys)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	int rc = 0;

	if (!yaml_parser_initialize(&parser)) {
		msg(ld, 0, 0, "out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		msg(ld, 0, (int)parser.problem_mark.line + 1, "YAML syntax: %s%s%s",
		    parser.problem ? parser.problem : "error",
		    parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	ld->doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		msg(ld, 0, 0, "the file is empty");
		rc = -1;
	} else if (root->type != YAML_MAPPING_NODE) {
		msg(ld, 0, line_of(root), "expected a mapping of sections at the top");
		rc = -1;
	} else {
		walk(ld, root, "", keys);
	}
	ld->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* A file that holds technician secrets is refused unless only its owner
 * may read it. The mode is the one of the descriptor the file was read
 * from (see shim_read_file_opt), so the file checked is the file read. */
static void check_secret_mode(struct loader *ld)
{
	if (ld->have_mode && (ld->mode & 077) != 0) {
		msg(ld, 0, 0,
		    "holds TOTP secrets but is readable by group or others (mode %04o): chmod 600",
		    ld->mode & 07777);
	}
}

static char *resolve_relative(const char *base_file, const char *path)
{
	const char *slash;
	char *out;
	size_t n;

	if (path[0] == '/' || (slash = strrchr(base_file, '/')) == NULL) {
		return strdup(path);
	}
	n = (size_t)(slash - base_file);
	out = malloc(n + 1 + strlen(path) + 1);
	if (out != NULL) {
		memcpy(out, base_file, n);
		out[n] = '/';
		strcpy(out + n + 1, path);
	}
	return out;
}

/* custody: the section is all or nothing; the client identity defaults
 * to the SIEM's (the shim's one certificate). */
static void finish_custody(struct loader *ld)
{
	struct shim_config *cfg = CFG;
	int line = cfg->custody_line;
	const char *h, *e;

	if (line == 0) {
		return;
	}
	if (cfg->custody_url == NULL) {
		msg(ld, 0, line, "custody: needs 'custody.url'");
		return;
	}
	if (cfg->custody_ca == NULL) {
		msg(ld, 0, line, "custody: needs 'custody.ca' (the store's CA)");
	}
	if (cfg->custody_client_cert == NULL && cfg->siem_client_cert != NULL) {
		cfg->custody_client_cert = strdup(cfg->siem_client_cert);
	}
	if (cfg->custody_client_key == NULL && cfg->siem_client_key != NULL) {
		cfg->custody_client_key = strdup(cfg->siem_client_key);
	}
	if (cfg->custody_client_cert == NULL || cfg->custody_client_key == NULL) {
		msg(ld, 0, line,
		    "custody: needs 'custody.client_cert' and 'custody.client_key' (mutual TLS; default: the siem's)");
	}
	if (cfg->custody_server_name == NULL &&
	    strncmp(cfg->custody_url, "https://", 8) == 0) {
		h = cfg->custody_url + 8;
		if (*h == '[') {
			e = strchr(h, ']');
			e = e != NULL ? e + 1 : h + strlen(h);
		} else {
			e = h + strcspn(h, ":/");
		}
		cfg->custody_server_name = strndup(h, (size_t)(e - h));
	}
}

static void finish(struct loader *ld)
{
	struct shim_config *cfg = CFG;

	if (cfg->shim_id == NULL) {
		msg(ld, 0, 0, "missing required key 'shim.id'");
	}
	if (cfg->tech_path == NULL) {
		msg(ld, 0, 0, "missing required key 'serial.technician_side_path'");
	}
	if (cfg->dev_path == NULL) {
		msg(ld, 0, 0, "missing required key 'serial.device_side_path'");
	}
	if (cfg->storage_root == NULL) {
		msg(ld, 0, 0, "missing required key 'storage.root'");
	}
	if (cfg->tech_path != NULL && cfg->dev_path != NULL &&
	    strcmp(cfg->tech_path, cfg->dev_path) == 0) {
		msg(ld, 0, 0, "serial: technician and device sides are the same path '%s'",
		    cfg->tech_path);
	}
	if (cfg->siem_transport == SHIM_SIEM_SYSLOG_TCP && !cfg->siem_insecure) {
		msg(ld, 0, 0,
		    "siem.transport: syslog-tcp sends events in clear text; set 'siem.insecure: true' to allow it");
	}
	if (cfg->siem_transport == SHIM_SIEM_SYSLOG_TLS) {
		if (cfg->siem_host == NULL) {
			msg(ld, 0, 0, "siem.transport syslog-tls needs 'siem.host'");
		}
		if (cfg->siem_ca == NULL) {
			msg(ld, 0, 0, "siem.transport syslog-tls needs 'siem.ca'");
		}
		if (cfg->siem_client_cert == NULL || cfg->siem_client_key == NULL) {
			msg(ld, 0, 0,
			    "siem.transport syslog-tls needs 'siem.client_cert' and 'siem.client_key' (mutual TLS)");
		}
	}
	if (cfg->siem_transport == SHIM_SIEM_SYSLOG_TCP && cfg->siem_host == NULL) {
		msg(ld, 0, 0, "siem.transport syslog-tcp needs 'siem.host'");
	}
	if (cfg->siem_server_name == NULL && cfg->siem_host != NULL) {
		cfg->siem_server_name = strdup(cfg->siem_host);
	}
	finish_custody(ld);
	if (cfg->issuer == NULL) {
		cfg->issuer = strdup("Shim");
	}
	if (cfg->storage_root != NULL) {
		if (cfg->admin_socket == NULL) {
			cfg->admin_socket = shim_config_path(cfg, "shimd.sock");
		}
		if (cfg->audit_log == NULL) {
			cfg->audit_log = shim_config_path(cfg, "audit.jsonl");
		}
		if (cfg->enrol_store == NULL) {
			cfg->enrol_store = shim_config_path(cfg,
							    "technicians.sealed");
		}
	}
	if (cfg->secrets_inline) {
		check_secret_mode(ld);
	}
}

static int load_techs_file(struct loader *ld)
{
	struct shim_config *cfg = CFG;
	const char *saved = ld->file;
	int saved_have = ld->have_mode;
	unsigned saved_mode = ld->mode;
	char *path;
	uint8_t *buf = NULL;
	size_t len;
	unsigned mode = 0;
	int rc;

	path = resolve_relative(cfg->file, cfg->technicians_file);
	if (path == NULL) {
		return -1;
	}
	free(cfg->technicians_file);
	cfg->technicians_file = path;
	rc = shim_read_file_opt(path, MAX_CONFIG_BYTES, 0, &buf, &len, &mode);
	if (rc == SHIM_ENOENT) {
		/* A technicians file not yet written: enrolment creates it. */
		return 0;
	}
	ld->file = path;
	if (rc != 0) {
		msg(ld, 0, 0, "cannot read technicians file: %s", shim_strerror(rc));
		ld->file = saved;
		return -1;
	}
	ld->in_techs_file = 1;
	ld->have_mode = 1;
	ld->mode = mode;
	rc = load_doc(ld, (const char *)buf, len, techs_file_keys);
	if (cfg->ntechs > 0) {
		check_secret_mode(ld);
	}
	ld->in_techs_file = 0;
	ld->file = saved;
	ld->have_mode = saved_have;
	ld->mode = saved_mode;
	shim_memzero(buf, len);
	free(buf);
	return rc;
}

static int load_common(struct shim_config *cfg, const char *name,
		       const char *buf, size_t len, const unsigned *mode,
		       struct shim_config_diag *diag)
{
	struct loader ld;

	memset(&ld, 0, sizeof(ld));
	if (mode != NULL) {
		ld.have_mode = 1;
		ld.mode = *mode;
	}
	shim_config_defaults(cfg);
	cfg->file = strdup(name);
	ld.cfg = cfg;
	ld.diag = diag;
	ld.file = name;
	if (load_doc(&ld, buf, len, top_keys) == 0) {
		if (cfg->technicians_file != NULL) {
			load_techs_file(&ld);
		}
		finish(&ld);
	}
	return diag->errors == 0 ? 0 : SHIM_EINVAL;
}

int shim_config_load_buffer(struct shim_config *cfg, const char *name,
			    const char *buf, size_t len,
			    struct shim_config_diag *diag)
{
	return load_common(cfg, name, buf, len, NULL, diag);
}

int shim_config_load(struct shim_config *cfg, const char *path,
		     struct shim_config_diag *diag)
{
	uint8_t *buf = NULL;
	size_t len;
	unsigned mode = 0;
	int rc;

	rc = shim_read_file_opt(path, MAX_CONFIG_BYTES, 0, &buf, &len, &mode);
	if (rc != 0) {
		shim_config_defaults(cfg);
		cfg->file = strdup(path);
		diag->errors++;
		if (diag->out != NULL) {
			struct stat st;
			int err = stat(path, &st) != 0 ? errno : 0;

			/* name the real cause, not the read's errno */
			if (err == 0 && S_ISDIR(st.st_mode))
				fprintf(diag->out, "%s: cannot read: is a "
					"directory, not a config file\n", path);
			else if (err != 0)
				fprintf(diag->out, "%s: cannot read: %s\n",
					path, strerror(err));
			else
				fprintf(diag->out, "%s: cannot read: %s\n",
					path, rc == SHIM_ENOSPC
					? "file too large" : shim_strerror(rc));
		}
		return SHIM_EINVAL;
	}
	rc = load_common(cfg, path, (const char *)buf, len, &mode, diag);
	shim_memzero(buf, len);
	free(buf);
	return rc;
}

char *shim_config_path(const struct shim_config *cfg, const char *rel)
{
	size_t n;
	char *out;

	if (cfg->storage_root == NULL) {
		return NULL;
	}
	n = strlen(cfg->storage_root) + 1 + strlen(rel) + 1;
	out = malloc(n);
	if (out != NULL) {
		snprintf(out, n, "%s/%s", cfg->storage_root, rel);
	}
	return out;
}

static int yaml_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\x%02x", c);
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
	return 0;
}

int shim_config_add_technician(const char *file, const char *id,
			       const char *secret_b32, const char *date,
			       const char *notes)
{
	struct shim_config tmp;
	struct shim_config_diag diag = { NULL, 0, 0, 1 };
	struct loader ld;
	uint8_t *old = NULL;
	size_t old_len = 0, i;
	char *out = NULL;
	size_t out_len = 0;
	FILE *f;
	int rc;

	if (!tech_id_ok(id)) {
		return SHIM_EINVAL;
	}
	rc = shim_read_file(file, MAX_CONFIG_BYTES, &old, &old_len);
	if (rc != 0 && rc != SHIM_ENOENT) {
		return rc;
	}
	if (rc == 0) {
		memset(&ld, 0, sizeof(ld));
		shim_config_defaults(&tmp);
		ld.cfg = &tmp;
		ld.diag = &diag;
		ld.file = file;
		ld.in_techs_file = 1;
		load_doc(&ld, (const char *)old, old_len, techs_file_keys);
		rc = diag.errors != 0 ? SHIM_ECORRUPT : 0;
		for (i = 0; rc == 0 && i < tmp.ntechs; i++) {
			if (strcmp(tmp.techs[i].id, id) == 0) {
				rc = SHIM_EEXIST;
			}
		}
		shim_config_free(&tmp);
		if (rc != 0) {
			goto out;
		}
	}
	f = open_memstream(&out, &out_len);
	if (f == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	if (old_len == 0) {
		fputs("# Technicians enrolled with 'shimctl enrol'. Holds TOTP secrets: keep 0600.\n"
		      "technicians:\n", f);
	} else {
		fwrite(old, 1, old_len, f);
		if (old[old_len - 1] != '\n') {
			fputc('\n', f);
		}
	}
	fputs("  - technician_id: ", f);
	yaml_quote(f, id);
	fputs("\n    totp_secret: ", f);
	yaml_quote(f, secret_b32);
	fputs("\n    enrolment_date: ", f);
	yaml_quote(f, date != NULL ? date : "");
	if (notes != NULL) {
		fputs("\n    notes: ", f);
		yaml_quote(f, notes);
	}
	fputc('\n', f);
	fclose(f);
	rc = shim_write_file_atomic(file, (const uint8_t *)out, out_len, 0600);
out:
	if (old != NULL) {
		shim_memzero(old, old_len);
		free(old);
	}
	if (out != NULL) {
		shim_memzero(out, out_len);
		free(out);
	}
	return rc;
}

void shim_config_free(struct shim_config *cfg)
{
	size_t i;

	free(cfg->file);
	free(cfg->shim_id);
	free(cfg->description);
	free(cfg->run_user);
	free(cfg->tech_path);
	free(cfg->dev_path);
	free(cfg->issuer);
	free(cfg->storage_root);
	free(cfg->recording_public_key);
	free(cfg->breakglass_verify_key);
	for (i = 0; i < cfg->nsensors; i++) {
		free(cfg->sensors[i].event);
		free(cfg->sensors[i].path);
		free(cfg->sensors[i].chip);
	}
	free(cfg->device_logout);
	free(cfg->reset_authority_public_key);
	free(cfg->siem_host);
	free(cfg->siem_server_name);
	free(cfg->siem_ca);
	free(cfg->siem_client_cert);
	free(cfg->siem_client_key);
	free(cfg->custody_url);
	free(cfg->custody_server_name);
	free(cfg->custody_ca);
	free(cfg->custody_client_cert);
	free(cfg->custody_client_key);
	free(cfg->admin_socket);
	free(cfg->audit_log);
	free(cfg->enrol_store);
	free(cfg->enrol_custody_key);
	free(cfg->technicians_file);
	if (cfg->techs != NULL) {
		shim_memzero(cfg->techs, cfg->techs_cap * sizeof(*cfg->techs));
		free(cfg->techs);
	}
	memset(cfg, 0, sizeof(*cfg));
}
