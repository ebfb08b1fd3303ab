/*
 * RFC 5424 / CEF / JSON formatting of events. See syslog.h.
 */
#include "syslog.h"

#include <stdbool.h>
#include <string.h>

#include "err.h"

/* An output cursor over a caller buffer; the first overflow sticks. */
struct out {
	char *buf;
	size_t cap;
	size_t len;
	int err;
};

static void put_mem(struct out *o, const char *s, size_t n)
{
	if (o->err != 0) {
		return;
	}
	if (n > o->cap - o->len) {
		o->err = SHIM_ENOSPC;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put_mem(o, s, strlen(s));
}

static void put_ch(struct out *o, char c)
{
	put_mem(o, &c, 1);
}

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + (v % 10));
		v /= 10;
	} while (v != 0);
	put_mem(o, tmp + i, sizeof(tmp) - i);
}

static void put_i64(struct out *o, int64_t v)
{
	if (v < 0) {
		put_ch(o, '-');
		put_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(o, (uint64_t)v);
	}
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and code
 * points above U+10FFFF are refused too).
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t need, i;
	uint32_t cp;

	if (c < 0x80) {
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < need) {
		return 0;
	}
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		return 0;
	}
	return need;
}

static const char utf8_replacement[] = "\xef\xbf\xbd";

/* strlen bounded by the size of the array holding s. */
static size_t blen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] != '\0') {
		n++;
	}
	return n;
}

/* RFC 5424 PARAM-VALUE: escape '"', '\' and ']'; invalid UTF-8 -> U+FFFD. */
static void put_sd_value(struct out *o, const char *v, size_t max)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n = blen(v, max), i = 0, k;

	while (i < n) {
		if (s[i] == '"' || s[i] == '\\' || s[i] == ']') {
			put_ch(o, '\\');
			put_ch(o, (char)s[i]);
			i++;
			continue;
		}
		k = utf8_seq_len(s + i, n - i);
		if (k == 0) {
			put_str(o, utf8_replacement);
			i++;
		} else {
			put_mem(o, (const char *)s + i, k);
			i += k;
		}
	}
}

/* JSON string body: RFC 8259 escapes; invalid UTF-8 -> U+FFFD. */
static void put_json_str(struct out *o, const char *v, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)v;
	size_t n = blen(v, max), i = 0, k;
	char esc[6];

	put_ch(o, '"');
	while (i < n) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			put_ch(o, '\\');
			put_ch(o, (char)c);
			i++;
		} else if (c == '\n') {
			put_str(o, "\\n");
			i++;
		} else if (c == '\r') {
			put_str(o, "\\r");
			i++;
		} else if (c == '\t') {
			put_str(o, "\\t");
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put_mem(o, esc, sizeof(esc));
			i++;
		} else {
			k = utf8_seq_len(s + i, n - i);
			if (k == 0) {
				put_str(o, utf8_replacement);
				i++;
			} else {
				put_mem(o, (const char *)s + i, k);
				i += k;
			}
		}
	}
	put_ch(o, '"');
}

/* CEF: header fields escape '|' and '\'; extension values escape '\' and
 * '=' and encode CR/LF; other control characters become '?'. */
static void put_cef(struct out *o, const char *v, size_t max, bool header)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n = blen(v, max), i = 0, k;

	while (i < n) {
		unsigned char c = s[i];

		if (c == '\\' || (header && c == '|') || (!header && c == '=')) {
			put_ch(o, '\\');
			put_ch(o, (char)c);
			i++;
		} else if (c == '\n' || c == '\r') {
			if (header) {
				put_ch(o, ' ');
			} else {
				put_str(o, c == '\n' ? "\\n" : "\\r");
			}
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			put_ch(o, '?');
			i++;
		} else {
			k = utf8_seq_len(s + i, n - i);
			if (k == 0) {
				put_str(o, utf8_replacement);
				i++;
			} else {
				put_mem(o, (const char *)s + i, k);
				i += k;
			}
		}
	}
}

/* PRINTUSASCII token of at most max characters; other bytes become '_';
 * empty -> "-". */
static void put_token(struct out *o, const char *s, size_t max)
{
	size_t i;

	if (s == NULL || s[0] == '\0') {
		put_ch(o, '-');
		return;
	}
	for (i = 0; i < max && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		put_ch(o, (c >= 33 && c <= 126) ? (char)c : '_');
	}
}

/* SD-NAME: PRINTUSASCII except '=', SP, ']', '"', at most 32. */
static void put_sd_name(struct out *o, const char *s)
{
	size_t i;

	for (i = 0; i < 32 && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126 || c == '=' || c == ']' || c == '"') {
			c = '_';
		}
		put_ch(o, (char)c);
	}
}

static void put_digits(struct out *o, uint64_t v, int width)
{
	char tmp[20];
	int i;

	for (i = width - 1; i >= 0; i--) {
		tmp[i] = (char)('0' + (v % 10));
		v /= 10;
	}
	put_mem(o, tmp, (size_t)width);
}

int shim_syslog_time(int64_t wall_ns, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0, 0 };
	int64_t secs, days, rem, z, era, doe, yoe, y, doy, mp, d, m;
	int64_t usec;

	if (buf == NULL || cap < 28) {
		return SHIM_ENOSPC;
	}
	secs = wall_ns / 1000000000LL;
	usec = (wall_ns % 1000000000LL) / 1000;
	if (usec < 0) {
		usec += 1000000;
		secs -= 1;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days -= 1;
	}
	/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2) {
		y += 1;
	}
	if (y < 0 || y > 9999) {
		return SHIM_EINVAL;
	}
	put_digits(&o, (uint64_t)y, 4);
	put_ch(&o, '-');
	put_digits(&o, (uint64_t)m, 2);
	put_ch(&o, '-');
	put_digits(&o, (uint64_t)d, 2);
	put_ch(&o, 'T');
	put_digits(&o, (uint64_t)(rem / 3600), 2);
	put_ch(&o, ':');
	put_digits(&o, (uint64_t)(rem / 60 % 60), 2);
	put_ch(&o, ':');
	put_digits(&o, (uint64_t)(rem % 60), 2);
	put_ch(&o, '.');
	put_digits(&o, (uint64_t)usec, 6);
	put_ch(&o, 'Z');
	buf[o.len] = '\0';
	return (int)o.len;
}

const char *shim_severity_name(int sev)
{
	static const char *const names[] = {
		"emerg", "alert", "crit", "err",
		"warning", "notice", "info", "debug",
	};

	if (sev < 0 || sev > 7) {
		return "unknown";
	}
	return names[sev];
}

int shim_syslog_cef_severity(int sev)
{
	static const int map[] = { 10, 9, 8, 7, 5, 3, 2, 0 };

	if (sev < 0 || sev > 7) {
		return 5;
	}
	return map[sev];
}

/* "<PRI>1 TIMESTAMP HOSTNAME APP PROCID MSGID " */
static void put_header(struct out *o, const struct shim_event *ev,
		       const struct shim_syslog_opts *opts)
{
	char ts[32];
	int fac = opts->facility;
	int sev = (int)ev->severity;

	if (fac < 0 || fac > 23) {
		fac = SHIM_SYSLOG_FACILITY_AUTHPRIV;
	}
	if (sev < 0 || sev > 7) {
		sev = SHIM_SEV_NOTICE;
	}
	put_ch(o, '<');
	put_u64(o, (uint64_t)(fac * 8 + sev));
	put_str(o, ">1 ");
	if (shim_syslog_time(ev->wall_ns, ts, sizeof(ts)) > 0) {
		put_str(o, ts);
	} else {
		put_ch(o, '-');
	}
	put_ch(o, ' ');
	put_token(o, opts->hostname, 255);
	put_ch(o, ' ');
	put_token(o, opts->app_name ? opts->app_name : "shimd", 48);
	put_ch(o, ' ');
	if (opts->procid != 0) {
		put_u64(o, opts->procid);
	} else {
		put_ch(o, '-');
	}
	put_ch(o, ' ');
	put_token(o, ev->name, 32);
	put_ch(o, ' ');
}

static int finish(struct out *o, size_t *len)
{
	if (o->err != 0) {
		if (len != NULL) {
			*len = 0;
		}
		return o->err;
	}
	if (o->len < o->cap) {
		o->buf[o->len] = '\0';
	}
	if (len != NULL) {
		*len = o->len;
	}
	return 0;
}

static const struct shim_syslog_opts default_opts = {
	NULL, NULL, 0, 0, -1, NULL,
};

int shim_syslog_rfc5424(const struct shim_event *ev,
			const struct shim_syslog_opts *opts, char *buf,
			size_t cap, size_t *len)
{
	struct out o = { buf, cap, 0, 0 };
	size_t i;

	if (ev == NULL || buf == NULL) {
		return SHIM_EINVAL;
	}
	if (opts == NULL) {
		opts = &default_opts;
	}
	put_header(&o, ev, opts);
	put_str(&o, "[shim@");
	put_u64(&o, opts->enterprise_number ? opts->enterprise_number :
		SHIM_SYSLOG_DEFAULT_PEN);
	put_str(&o, " shim_id=\"");
	put_sd_value(&o, ev->shim_id, SHIM_SHIM_ID_MAX);
	put_str(&o, "\" seq=\"");
	put_u64(&o, ev->seq);
	put_ch(&o, '"');
	for (i = 0; i < ev->nfields && i < SHIM_EVENT_MAX_FIELDS; i++) {
		put_ch(&o, ' ');
		put_sd_name(&o, ev->fields[i].key);
		put_str(&o, "=\"");
		put_sd_value(&o, ev->fields[i].value, SHIM_EVENT_VALUE_MAX);
		put_ch(&o, '"');
	}
	put_str(&o, "] ");
	put_token(&o, ev->name, 32);
	return finish(&o, len);
}

int shim_syslog_cef(const struct shim_event *ev,
		    const struct shim_syslog_opts *opts, char *buf,
		    size_t cap, size_t *len)
{
	struct out o = { buf, cap, 0, 0 };
	size_t i;

	if (ev == NULL || buf == NULL) {
		return SHIM_EINVAL;
	}
	if (opts == NULL) {
		opts = &default_opts;
	}
	put_header(&o, ev, opts);
	put_str(&o, "- CEF:0|shim|shimd|");
	put_cef(&o, opts->product_version ? opts->product_version : "0",
		64, true);
	put_ch(&o, '|');
	put_cef(&o, ev->name, SHIM_EVENT_NAME_MAX, true);
	put_ch(&o, '|');
	put_cef(&o, ev->name, SHIM_EVENT_NAME_MAX, true);
	put_ch(&o, '|');
	put_u64(&o, (uint64_t)shim_syslog_cef_severity((int)ev->severity));
	put_str(&o, "|rt=");
	put_i64(&o, ev->wall_ns / 1000000LL);
	if (opts->hostname != NULL && opts->hostname[0] != '\0') {
		put_str(&o, " dvchost=");
		put_cef(&o, opts->hostname, 255, false);
	}
	put_str(&o, " shim_id=");
	put_cef(&o, ev->shim_id, SHIM_SHIM_ID_MAX, false);
	put_str(&o, " seq=");
	put_u64(&o, ev->seq);
	for (i = 0; i < ev->nfields && i < SHIM_EVENT_MAX_FIELDS; i++) {
		put_ch(&o, ' ');
		put_sd_name(&o, ev->fields[i].key);
		put_ch(&o, '=');
		put_cef(&o, ev->fields[i].value, SHIM_EVENT_VALUE_MAX, false);
	}
	return finish(&o, len);
}

/* Names the audit line itself uses; a field with one of them is written
 * as "field_<key>" so that no JSON key repeats. */
static bool json_reserved(const char *key)
{
	static const char *const names[] = {
		"time", "time_ns", "event", "severity", "shim_id", "seq",
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strncmp(key, names[i], SHIM_EVENT_KEY_MAX) == 0) {
			return true;
		}
	}
	return false;
}

int shim_syslog_json(const struct shim_event *ev, char *buf, size_t cap,
		     size_t *len)
{
	struct out o = { buf, cap, 0, 0 };
	char ts[32];
	size_t i;

	if (ev == NULL || buf == NULL) {
		return SHIM_EINVAL;
	}
	put_str(&o, "{\"time\":");
	if (shim_syslog_time(ev->wall_ns, ts, sizeof(ts)) > 0) {
		put_ch(&o, '"');
		put_str(&o, ts);
		put_ch(&o, '"');
	} else {
		put_str(&o, "null");
	}
	put_str(&o, ",\"time_ns\":");
	put_i64(&o, ev->wall_ns);
	put_str(&o, ",\"event\":");
	put_json_str(&o, ev->name, SHIM_EVENT_NAME_MAX);
	put_str(&o, ",\"severity\":");
	put_u64(&o, (uint64_t)((int)ev->severity & 7));
	put_str(&o, ",\"shim_id\":");
	put_json_str(&o, ev->shim_id, SHIM_SHIM_ID_MAX);
	put_str(&o, ",\"seq\":");
	put_u64(&o, ev->seq);
	for (i = 0; i < ev->nfields && i < SHIM_EVENT_MAX_FIELDS; i++) {
		put_ch(&o, ',');
		if (json_reserved(ev->fields[i].key)) {
			put_str(&o, "\"field_");
			put_sd_name(&o, ev->fields[i].key);
			put_ch(&o, '"');
		} else {
			put_json_str(&o, ev->fields[i].key,
				     SHIM_EVENT_KEY_MAX);
		}
		put_ch(&o, ':');
		put_json_str(&o, ev->fields[i].value, SHIM_EVENT_VALUE_MAX);
	}
	put_str(&o, "}\n");
	return finish(&o, len);
}

int shim_syslog_frame_header(size_t msg_len, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0, 0 };

	put_u64(&o, (uint64_t)msg_len);
	put_ch(&o, ' ');
	if (o.err != 0) {
		return o.err;
	}
	return (int)o.len;
}
