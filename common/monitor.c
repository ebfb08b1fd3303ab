/*
 * The central heartbeat monitor. See monitor.h.
 *
 * Verdict rules, per shim:
 *   TAMPERED      a tamper or emergency_stop event, a heartbeat with the
 *                 latch set, or a boot count that went back (state wiped);
 *                 held until a signed tamper_reset verifies.
 *   BAD-SIGNATURE a signed event (heartbeat, shutting_down, tamper_reset)
 *                 whose signature does not verify under the inventory key,
 *                 or any event from a shim not in the inventory.
 *   REPLAYED      a verified signed event whose seq is not above the last.
 *   REBOOTED-UNEXPECTEDLY  the boot count rose without a shutting_down.
 *   MISSING       no verified heartbeat for 3 periods (or never), and no
 *                 shutting_down since the last one.
 *   OFFLINE-EXPECTED  silent after a verified shutting_down.
 *   DECOMMISSIONED    retired: a decommission record or event signed by
 *                 the unit's identity; silence is expected from then on.
 *   OK            otherwise.
 * The first three alarms and REBOOTED are kept once raised (they are
 * events the SOC must look at); MISSING is recomputed at "now".
 */
#include "monitor.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keys.h"
#include "inventory.h"
#include "p256key.h"
#include "port_linux.h"
#include "util.h"

#define MISSING_PERIODS 3
#define FUTURE_SKEW 300     /* seconds a shim's clock may run ahead */

struct entry {
	char shim_id[SHIM_SHIM_ID_MAX];
	int in_inventory;
	char serial[64];
	char build[16];
	struct shim_p256_verifier *v;
	unsigned alarms;
	int have_seq;
	uint64_t last_seq;
	int have_boot;
	uint64_t boot_count;
	int expect_restart;     /* a verified shutting_down came last */
	int offline_expected;
	int64_t decommissioned; /* Unix s of a verified decommissioning, or 0 */
	int64_t last_seen;
	double period;
	uint64_t heartbeats, bad_sigs, replays;
	char note[200];
};

struct shim_monitor {
	struct entry *e;
	size_t n, cap;
	uint32_t *index;        /* open addressing: entry + 1, 0 = empty */
	size_t index_cap;
	double default_period;
	uint64_t lines, malformed, foreign;
	/* batch scratch */
	struct shim_mon_line *scr;
	int *prc, *vrc;
	struct shim_p256_item *items, *sorted;
	size_t *where, *perm;
	size_t scr_cap;
};

/* ---- parsing ------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int shim_mon_parse_time(const char *s, size_t len, int64_t *out)
{
	unsigned y, mo, d, h, mi, se, oh, om;
	int64_t t;
	size_t i;

	if (len > 0 && len <= 15 && s[0] != '-') {
		for (i = 0, t = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			t = t * 10 + (s[i] - '0');
		}
		if (i == len) {
			*out = t;
			return 0;
		}
	}
	if (len < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
	    s[16] != ':' || digits(s, 4, &y) || digits(s + 5, 2, &mo) ||
	    digits(s + 8, 2, &d) || digits(s + 11, 2, &h) ||
	    digits(s + 14, 2, &mi) || digits(s + 17, 2, &se) || mo < 1 ||
	    mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
		return SHIM_EINVAL;
	}
	i = 19;
	if (s[i] == '.') {
		i++;
		if (i >= len || s[i] < '0' || s[i] > '9') {
			return SHIM_EINVAL;
		}
		while (i < len && s[i] >= '0' && s[i] <= '9' && i < 19 + 10) {
			i++;
		}
	}
	t = (days_from_civil(y, mo, d) * 24 + h) * 3600 + mi * 60 + se;
	if (i < len && (s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
		*out = t;
		return 0;
	}
	if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
	    digits(s + i + 1, 2, &oh) == 0 && digits(s + i + 4, 2, &om) == 0 &&
	    oh < 24 && om < 60) {
		int64_t off = (int64_t)oh * 3600 + om * 60;

		*out = s[i] == '+' ? t - off : t + off;
		return 0;
	}
	return SHIM_EINVAL;
}

/* Next space-delimited header token at *pos. */
static int token(const char *p, size_t len, size_t *pos, const char **tok,
		 size_t *tlen, size_t max)
{
	size_t i = *pos;

	while (i < len && p[i] != ' ') {
		i++;
	}
	if (i == *pos || i - *pos > max || i >= len) {
		return SHIM_EINVAL;
	}
	*tok = p + *pos;
	*tlen = i - *pos;
	*pos = i + 1;
	return 0;
}

static int is_key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* One SD-PARAM value after the opening quote: copies it unescaped into
 * out (cap with NUL), leaves *pos after the closing quote. */
static int sd_value(const char *p, size_t len, size_t *pos, char *out,
		    size_t cap, int *escaped)
{
	size_t i = *pos, n = 0;
	char c;

	while (i < len && p[i] != '"') {
		c = p[i];
		if (c == '\\' && i + 1 < len &&
		    (p[i + 1] == '"' || p[i + 1] == '\\' || p[i + 1] == ']')) {
			c = p[++i];
		} else if (c == '#' && i + 3 < len && p[i + 1] >= '0' &&
			   p[i + 1] <= '3' && p[i + 2] >= '0' &&
			   p[i + 2] <= '7' && p[i + 3] >= '0' &&
			   p[i + 3] <= '7') {
			*escaped = 1;
		} else if (c == '\0') {
			return SHIM_EINVAL;
		}
		if (n + 1 >= cap) {
			return SHIM_EINVAL;
		}
		out[n++] = c;
		i++;
	}
	if (i >= len) {
		return SHIM_EINVAL;
	}
	out[n] = '\0';
	*pos = i + 1;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0')) {
		return SHIM_EINVAL;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10) {
			return SHIM_EINVAL;
		}
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Parses one SD-ELEMENT at *pos ('[' already checked). When it is the
 * shim@<digits> element, fills ev. */
static int sd_element(const char *p, size_t len, size_t *pos,
		      struct shim_mon_line *out, int *found)
{
	struct shim_event *ev = &out->ev;
	char key[SHIM_EVENT_KEY_MAX];
	char val[SHIM_EVENT_VALUE_MAX];
	size_t i = *pos + 1, id0 = i, k;
	int ours, have_id = 0, have_seq = 0, rc;

	while (i < len && p[i] != ' ' && p[i] != ']' && p[i] != '"' &&
	       p[i] != '=') {
		i++;
	}
	if (i == id0 || i >= len || i - id0 > 32) {
		return SHIM_EINVAL;
	}
	ours = i - id0 > 5 && memcmp(p + id0, "shim@", 5) == 0 && !*found;
	for (k = id0 + 5; ours && k < i; k++) {
		if (p[k] < '0' || p[k] > '9') {
			ours = 0;
		}
	}
	while (i < len && p[i] == ' ') {
		i++;
		k = i;
		while (i < len && is_key_char(p[i])) {
			i++;
		}
		if (i == k || i - k >= sizeof(key) || i + 1 >= len ||
		    p[i] != '=' || p[i + 1] != '"') {
			return SHIM_EINVAL;
		}
		memcpy(key, p + k, i - k);
		key[i - k] = '\0';
		i += 2;
		rc = sd_value(p, len, &i, val, sizeof(val), &out->escaped);
		if (rc != 0) {
			return rc;
		}
		if (!ours) {
			continue;
		}
		if (strcmp(key, "shim_id") == 0 && !have_id) {
			if (strlen(val) >= sizeof(ev->shim_id) || val[0] == '\0') {
				return SHIM_EINVAL;
			}
			strcpy(ev->shim_id, val);
			have_id = 1;
		} else if (strcmp(key, "seq") == 0 && !have_seq) {
			if (parse_u64(val, &ev->seq) != 0) {
				return SHIM_EINVAL;
			}
			have_seq = 1;
		} else {
			if (ev->nfields >= SHIM_EVENT_MAX_FIELDS) {
				return SHIM_EINVAL;
			}
			strcpy(ev->fields[ev->nfields].key, key);
			strcpy(ev->fields[ev->nfields].value, val);
			ev->nfields++;
		}
	}
	if (i >= len || p[i] != ']') {
		return SHIM_EINVAL;
	}
	if (ours) {
		if (!have_id || !have_seq) {
			return SHIM_EINVAL;
		}
		*found = 1;
	}
	*pos = i + 1;
	return 0;
}

int shim_mon_parse_line(const char *line, size_t len, struct shim_mon_line *out)
{
	const char *tok;
	size_t pos = 0, tlen, i;
	int found = 0, rc;

	out->ts_s = 0;
	out->escaped = 0;
	out->ev.name[0] = '\0';
	out->ev.shim_id[0] = '\0';
	out->ev.seq = 0;
	out->ev.nfields = 0;
	out->ev.priority = 0;
	out->ev.sign = 0;
	out->ev.wall_ns = 0;
	out->ev.severity = SHIM_SEV_INFO;
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
		len--;
	}
	/* Octet-counted framing left in place: "123 <14>1 ...". */
	for (i = 0; i < len && i < 10 && line[i] >= '0' && line[i] <= '9'; i++) {
	}
	if (i > 0 && i < len && line[i] == ' ') {
		pos = i + 1;
	}
	if (pos >= len || line[pos] != '<') {
		return SHIM_EINVAL;
	}
	for (i = pos + 1; i < len && i < pos + 5 && line[i] >= '0' &&
	     line[i] <= '9'; i++) {
	}
	if (i == pos + 1 || i >= len || line[i] != '>') {
		return SHIM_EINVAL;
	}
	out->ev.severity = (enum shim_severity)((line[i - 1] - '0') % 8);
	pos = i + 1;
	if (pos + 1 >= len || line[pos] != '1' || line[pos + 1] != ' ') {
		return SHIM_EINVAL;
	}
	pos += 2;
	/* TIMESTAMP */
	rc = token(line, len, &pos, &tok, &tlen, 64);
	if (rc != 0) {
		return rc;
	}
	if (!(tlen == 1 && tok[0] == '-') &&
	    shim_mon_parse_time(tok, tlen, &out->ts_s) != 0) {
		return SHIM_EINVAL;
	}
	/* HOSTNAME, APP-NAME, PROCID */
	if (token(line, len, &pos, &tok, &tlen, 255) != 0 ||
	    token(line, len, &pos, &tok, &tlen, 48) != 0 ||
	    token(line, len, &pos, &tok, &tlen, 128) != 0) {
		return SHIM_EINVAL;
	}
	/* MSGID = the event name */
	if (token(line, len, &pos, &tok, &tlen, 32) != 0 ||
	    tlen >= sizeof(out->ev.name)) {
		return SHIM_EINVAL;
	}
	memcpy(out->ev.name, tok, tlen);
	out->ev.name[tlen] = '\0';
	/* STRUCTURED-DATA (required: at least "-") */
	if (pos >= len) {
		return SHIM_EINVAL;
	}
	if (line[pos] == '-') {
		return SHIM_ENOENT;
	}
	while (pos < len && line[pos] == '[') {
		rc = sd_element(line, len, &pos, out, &found);
		if (rc != 0) {
			return rc;
		}
	}
	if (pos < len && line[pos] != ' ') {
		return SHIM_EINVAL;
	}
	return found ? 0 : SHIM_ENOENT;
}

/* ---- the inventory ------------------------------------------------------- */

static uint32_t hash_id(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0') {
		h = (h ^ (uint8_t)*s++) * 16777619u;
	}
	return h;
}

static struct entry *find(const struct shim_monitor *m, const char *id)
{
	size_t mask = m->index_cap - 1, i;
	uint32_t slot;

	if (m->index_cap == 0) {
		return NULL;
	}
	for (i = hash_id(id) & mask;; i = (i + 1) & mask) {
		slot = m->index[i];
		if (slot == 0) {
			return NULL;
		}
		if (strcmp(m->e[slot - 1].shim_id, id) == 0) {
			return &m->e[slot - 1];
		}
	}
}

static void index_put(uint32_t *idx, size_t cap, const char *id,
		      uint32_t slot)
{
	size_t j;

	for (j = hash_id(id) & (cap - 1); idx[j] != 0; j = (j + 1) & (cap - 1)) {
	}
	idx[j] = slot;
}

static int reindex(struct shim_monitor *m, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	size_t i;

	if (idx == NULL) {
		return SHIM_ENOMEM;
	}
	for (i = 0; i < m->n; i++) {
		index_put(idx, cap, m->e[i].shim_id, (uint32_t)(i + 1));
	}
	free(m->index);
	m->index = idx;
	m->index_cap = cap;
	return 0;
}

static struct entry *add_entry(struct shim_monitor *m, const char *id)
{
	struct entry *e;
	size_t ncap;

	if (strlen(id) >= SHIM_SHIM_ID_MAX || m->n >= UINT32_MAX - 1) {
		return NULL;
	}
	if (m->n == m->cap) {
		ncap = m->cap ? m->cap * 2 : 64;
		e = realloc(m->e, ncap * sizeof(*e));
		if (e == NULL) {
			return NULL;
		}
		m->e = e;
		m->cap = ncap;
	}
	e = &m->e[m->n++];
	memset(e, 0, sizeof(*e));
	strcpy(e->shim_id, id);
	e->period = m->default_period;
	if (m->n * 2 > m->index_cap) {
		/* Grow: the new table indexes every entry, this one too. */
		if (reindex(m, m->index_cap ? m->index_cap * 2 : 128) != 0) {
			m->n--;
			return NULL;
		}
	} else {
		index_put(m->index, m->index_cap, id, (uint32_t)m->n);
	}
	return e;
}

int shim_mon_new(struct shim_monitor **out, double default_period_s)
{
	struct shim_monitor *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (m == NULL) {
		return SHIM_ENOMEM;
	}
	m->default_period = default_period_s > 0 ? default_period_s : 60.0;
	*out = m;
	return 0;
}

void shim_mon_free(struct shim_monitor *m)
{
	size_t i;

	if (m == NULL) {
		return;
	}
	for (i = 0; i < m->n; i++) {
		shim_p256_verifier_free(m->e[i].v);
	}
	free(m->e);
	free(m->index);
	free(m->scr);
	free(m->prc);
	free(m->vrc);
	free(m->items);
	free(m->sorted);
	free(m->where);
	free(m->perm);
	free(m);
}

int shim_mon_add_shim(struct shim_monitor *m, const char *shim_id,
		      const uint8_t pub[SHIM_P256_PUB_LEN])
{
	struct shim_p256_verifier *v;
	struct entry *e;

	if (find(m, shim_id) != NULL) {
		return SHIM_EEXIST;
	}
	v = shim_p256_verifier_new(pub);
	if (v == NULL) {
		return SHIM_EINVAL;
	}
	e = add_entry(m, shim_id);
	if (e == NULL) {
		shim_p256_verifier_free(v);
		return SHIM_ENOMEM;
	}
	e->v = v;
	e->in_inventory = 1;
	return 0;
}

int shim_mon_load_inventory(struct shim_monitor *m, const char *dir,
			    void *err_file, unsigned *bad)
{
	FILE *err = err_file;
	struct dirent **names = NULL;
	uint8_t pub[SHIM_P256_PUB_LEN];
	char path[4096], id[SHIM_SHIM_ID_MAX];
	int n, i, added = 0, rc;
	size_t l;

	*bad = 0;
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		return SHIM_ENOENT;
	}
	for (i = 0; i < n; i++) {
		l = strlen(names[i]->d_name);
		if (l <= 4 || strcmp(names[i]->d_name + l - 4, ".pub") != 0) {
			continue;
		}
		if (l - 4 >= sizeof(id)) {
			if (err != NULL) {
				fprintf(err, "%s/%s: shim ID too long\n", dir,
					names[i]->d_name);
			}
			(*bad)++;
			continue;
		}
		memcpy(id, names[i]->d_name, l - 4);
		id[l - 4] = '\0';
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		rc = shim_keys_load_public(path, pub);
		if (rc == 0) {
			rc = shim_mon_add_shim(m, id, pub);
		}
		if (rc != 0) {
			if (err != NULL) {
				fprintf(err, "%s: %s\n", path,
					rc == SHIM_EINVAL ? "not a P-256 public key" :
					shim_strerror(rc));
			}
			(*bad)++;
			continue;
		}
		added++;
	}
	for (i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
	return added;
}

static int has_suffix(const char *name, const char *suffix)
{
	size_t l = strlen(name), s = strlen(suffix);

	return l > s && strcmp(name + l - s, suffix) == 0;
}

/* Reads DIR/name (at most SHIM_INV_MAX bytes) and checks the record. */
static const char *load_record(const char *path, const char *id,
			       const uint8_t auth[SHIM_P256_PUB_LEN],
			       struct shim_inventory *rec, int *line)
{
	char buf[SHIM_INV_MAX + 1];
	const char *why = NULL;
	size_t n;
	FILE *f;

	*line = 0;
	f = fopen(path, "rb");
	if (f == NULL) {
		return strerror(errno);
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > SHIM_INV_MAX) {
		return "record too long";
	}
	if (shim_inv_parse(buf, n, rec, line, &why) != 0) {
		return why;
	}
	*line = 0;
	if (shim_inv_verify(rec, auth) != 0) {
		return rec->is_signed ?
		       "not signed by this authority (or altered): not trusted" :
		       "not signed: not trusted";
	}
	if (strcmp(rec->shim_id, id) != 0) {
		return "names another shim ID than its file name: not trusted";
	}
	return NULL;
}

int shim_mon_load_records(struct shim_monitor *m, const char *dir,
			  const uint8_t authority_pub[SHIM_P256_PUB_LEN],
			  void *err_file, unsigned *bad)
{
	FILE *err = err_file;
	struct dirent **names = NULL;
	struct shim_inventory rec;
	char path[4096], id[SHIM_SHIM_ID_MAX];
	const char *why;
	int n, i, added = 0, rc, line;
	size_t l;

	*bad = 0;
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		return SHIM_ENOENT;
	}
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;

		l = strlen(name);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (has_suffix(name, ".pub")) {
			/* Trusted only through a record of its own. */
			char inv[4096];
			struct stat st;

			snprintf(inv, sizeof(inv), "%.*s.inv", (int)(strlen(path) - 4),
				 path);
			if (stat(inv, &st) != 0) {
				if (err != NULL) {
					fprintf(err, "%s: no signed inventory "
						     "record vouches for this "
						     "key: not trusted\n", path);
				}
				(*bad)++;
			}
			continue;
		}
		if (!has_suffix(name, ".inv")) {
			continue;
		}
		if (l - 4 >= sizeof(id)) {
			if (err != NULL) {
				fprintf(err, "%s: shim ID too long\n", path);
			}
			(*bad)++;
			continue;
		}
		memcpy(id, name, l - 4);
		id[l - 4] = '\0';
		why = load_record(path, id, authority_pub, &rec, &line);
		if (why == NULL) {
			rc = shim_mon_add_shim(m, id, rec.identity_pub);
			if (rc != 0) {
				why = rc == SHIM_EEXIST ? "duplicate shim ID" :
					"not a P-256 public key";
			}
		}
		if (why != NULL) {
			if (err != NULL) {
				if (line > 0) {
					fprintf(err, "%s:%d: %s\n", path, line,
						why);
				} else {
					fprintf(err, "%s: %s\n", path, why);
				}
			}
			(*bad)++;
			continue;
		}
		{
			struct entry *e = find(m, id);
			struct shim_decommission dr;
			char dpath[4096];
			uint8_t *buf = NULL;
			size_t blen = 0;

			snprintf(e->serial, sizeof(e->serial), "%s", rec.serial);
			snprintf(e->build, sizeof(e->build), "%s",
				 shim_inv_build_name(rec.build));
			/* A decommission record the unit signed. */
			snprintf(dpath, sizeof(dpath), "%s/%s.decom", dir, id);
			if (shim_read_file_opt(dpath, SHIM_INV_MAX, 0, &buf,
					       &blen, NULL) == 0) {
				if (shim_decom_parse((const char *)buf, blen, &dr,
						     NULL, NULL) == 0 &&
				    shim_decom_verify(&dr, rec.identity_pub) == 0 &&
				    strcmp(dr.shim_id, id) == 0) {
					e->decommissioned = dr.when;
				} else if (err != NULL) {
					fprintf(err, "%s: not a decommission record "
						     "signed by this unit: "
						     "ignored\n", dpath);
					(*bad)++;
				}
				free(buf);
			}
		}
		added++;
	}
	for (i = 0; i < n; i++) {
		free(names[i]);
	}
	free(names);
	return added;
}

/* ---- verification -------------------------------------------------------- */

int shim_mon_is_signed(const struct shim_mon_line *l)
{
	return strcmp(l->ev.name, "heartbeat") == 0 ||
	       strcmp(l->ev.name, "shutting_down") == 0 ||
	       strcmp(l->ev.name, "tamper_reset") == 0 ||
	       strcmp(l->ev.name, "decommissioned") == 0 ||
	       shim_event_get(&l->ev, "sig") != NULL;
}

/*
 * shim_event_verify() split in two so that signatures can be checked in
 * batches: the signature and the digest of the canonical text now, the
 * check later by the batch verifier. The canonical text goes into scratch
 * on this thread's stack (the monitor verifies from several threads).
 */
static int prepare(const struct shim_event *ev, struct shim_p256_verifier *v,
		   struct shim_p256_item *item)
{
	char canon[SHIM_EVENT_CANON_MAX];
	size_t len;

	item->v = v;
	item->rc = SHIM_ESIG;
	if (shim_event_sig(ev, item->sig) != 0 ||
	    shim_event_canonical(ev, canon, sizeof(canon), &len) != 0) {
		return SHIM_ESIG;
	}
	shim_sha256((const uint8_t *)canon, len, item->digest);
	item->rc = 0;
	return 0;
}

static int verify_event(const struct shim_event *ev,
			struct shim_p256_verifier *v)
{
	struct shim_p256_item item;

	if (prepare(ev, v, &item) != 0) {
		return SHIM_ESIG;
	}
	return shim_p256_verifier_verify(v, item.digest, item.sig) == 0 ?
		       0 : SHIM_ESIG;
}

/* Undoes rsyslog's "#ooo" escaping of control characters. */
static void unescape(struct shim_event *ev)
{
	size_t f, i, o;
	char *v;

	for (f = 0; f < ev->nfields; f++) {
		v = ev->fields[f].value;
		for (i = 0, o = 0; v[i] != '\0'; i++, o++) {
			if (v[i] == '#' && v[i + 1] >= '0' && v[i + 1] <= '3' &&
			    v[i + 2] >= '0' && v[i + 2] <= '7' &&
			    v[i + 3] >= '0' && v[i + 3] <= '7') {
				v[o] = (char)((v[i + 1] - '0') * 64 +
					      (v[i + 2] - '0') * 8 +
					      (v[i + 3] - '0'));
				i += 3;
				if (v[o] == '\0') {
					v[o] = '#';
					i -= 3;
				}
			} else {
				v[o] = v[i];
			}
		}
		v[o] = '\0';
	}
}

int shim_mon_verify(const struct shim_monitor *m, const struct shim_mon_line *l)
{
	const struct entry *e = find(m, l->ev.shim_id);
	struct shim_event *copy;
	int rc;

	if (e == NULL || e->v == NULL) {
		return SHIM_ENOENT;
	}
	rc = verify_event(&l->ev, e->v);
	if (rc != 0 && l->escaped) {
		copy = malloc(sizeof(*copy));
		if (copy == NULL) {
			return SHIM_ENOMEM;
		}
		*copy = l->ev;
		unescape(copy);
		rc = verify_event(copy, e->v);
		free(copy);
	}
	return rc;
}

/* ---- verdicts ------------------------------------------------------------ */

static void note(struct entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Keeps the first story of a shim's alarms. */
static void note(struct entry *e, const char *fmt, ...)
{
	va_list ap;

	if (e->note[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(e->note, sizeof(e->note), fmt, ap);
		va_end(ap);
	}
}

static int get_u64(const struct shim_event *ev, const char *key,
		   uint64_t *out)
{
	const char *v = shim_event_get(ev, key);

	return v != NULL && parse_u64(v, out) == 0;
}

unsigned shim_mon_apply(struct shim_monitor *m, const struct shim_mon_line *l,
			int verify_rc)
{
	const struct shim_event *ev = &l->ev;
	struct entry *e;
	unsigned before;
	uint64_t bc, per, t;
	const char *v;
	int hb = strcmp(ev->name, "heartbeat") == 0;
	int sd = strcmp(ev->name, "shutting_down") == 0;

	e = find(m, ev->shim_id);
	if (e == NULL) {
		e = add_entry(m, ev->shim_id);
		if (e == NULL) {
			return 0;
		}
	}
	before = e->alarms;
	if (!e->in_inventory) {
		e->alarms |= SHIM_MON_A_BADSIG;
		note(e, "%s from a shim not in the inventory (seq %llu)",
		     ev->name, (unsigned long long)ev->seq);
		return e->alarms & ~before;
	}
	if (strcmp(ev->name, "tamper") == 0 ||
	    strcmp(ev->name, "emergency_stop") == 0) {
		v = shim_event_get(ev, strcmp(ev->name, "tamper") == 0 ?
				   "event" : "reason");
		e->alarms |= SHIM_MON_A_TAMPERED;
		snprintf(e->note, sizeof(e->note), "%s %s (seq %llu)", ev->name,
			 v != NULL ? v : "", (unsigned long long)ev->seq);
		return e->alarms & ~before;
	}
	if (!shim_mon_is_signed(l)) {
		return 0;
	}
	if (verify_rc != 0) {
		e->bad_sigs++;
		e->alarms |= SHIM_MON_A_BADSIG;
		note(e, "%s with a bad signature (seq %llu)", ev->name,
		     (unsigned long long)ev->seq);
		return e->alarms & ~before;
	}
	if (e->have_seq && ev->seq <= e->last_seq) {
		e->replays++;
		e->alarms |= SHIM_MON_A_REPLAYED;
		note(e, "%s replayed (seq %llu not above the last)", ev->name,
		     (unsigned long long)ev->seq);
		return e->alarms & ~before;
	}
	e->have_seq = 1;
	e->last_seq = ev->seq;

	if (strcmp(ev->name, "decommissioned") == 0) {
		/* Signed by the unit just before its identity was destroyed. */
		e->decommissioned = ev->wall_ns / 1000000000LL > 0 ?
				    ev->wall_ns / 1000000000LL : 1;
		return 0;
	}
	if (strcmp(ev->name, "tamper_reset") == 0) {
		/* An authorised reset: the latch is clear again. */
		e->alarms &= ~(unsigned)SHIM_MON_A_TAMPERED;
		v = shim_event_get(ev, "by");
		snprintf(e->note, sizeof(e->note), "tamper reset by %s",
			 v != NULL ? v : "?");
		return 0;
	}
	if (!hb && !sd) {
		return 0;
	}
	if (get_u64(ev, "boot_count", &bc)) {
		if (e->have_boot && bc > e->boot_count && !e->expect_restart) {
			e->alarms |= SHIM_MON_A_REBOOTED;
			note(e, "%s: boot count rose to %llu without shutting_down",
			     ev->name, (unsigned long long)bc);
		} else if (e->have_boot && bc < e->boot_count) {
			e->alarms |= SHIM_MON_A_TAMPERED;
			note(e, "%s: boot count went back to %llu (state wiped)",
			     ev->name, (unsigned long long)bc);
		}
		if (e->have_boot && bc != e->boot_count) {
			e->expect_restart = 0;
		}
		e->have_boot = 1;
		e->boot_count = bc;
	}
	v = shim_event_get(ev, "tamper");
	if (v != NULL && strcmp(v, "clear") != 0) {
		e->alarms |= SHIM_MON_A_TAMPERED;
		note(e, "%s reports the tamper latch %s", ev->name, v);
	}
	if (get_u64(ev, "period", &per) && per >= 1 && per <= 86400) {
		e->period = (double)per;
	}
	t = 0;
	if (!get_u64(ev, "time", &t) || t > INT64_MAX) {
		t = l->ts_s > 0 ? (uint64_t)l->ts_s : 0;
	}
	if ((int64_t)t > e->last_seen) {
		e->last_seen = (int64_t)t;
	}
	if (sd) {
		e->offline_expected = 1;
		e->expect_restart = 1;
	} else {
		e->heartbeats++;
		e->offline_expected = 0;
	}
	return e->alarms & ~before;
}

const char *shim_mon_verdict_name(enum shim_mon_verdict v)
{
	switch (v) {
	case SHIM_MON_OK:
		return "OK";
	case SHIM_MON_OFFLINE_EXPECTED:
		return "OFFLINE-EXPECTED";
	case SHIM_MON_DECOMMISSIONED:
		return "DECOMMISSIONED";
	case SHIM_MON_MISSING:
		return "MISSING";
	case SHIM_MON_REBOOTED:
		return "REBOOTED-UNEXPECTEDLY";
	case SHIM_MON_REPLAYED:
		return "REPLAYED";
	case SHIM_MON_BAD_SIGNATURE:
		return "BAD-SIGNATURE";
	case SHIM_MON_TAMPERED:
		return "TAMPERED";
	}
	return "?";
}

size_t shim_mon_count(const struct shim_monitor *m)
{
	return m->n;
}

void shim_mon_report(const struct shim_monitor *m, size_t i, int64_t now_s,
		     struct shim_mon_report *r)
{
	const struct entry *e = &m->e[i];
	unsigned a = e->alarms;
	int future;

	memset(r, 0, sizeof(*r));
	strcpy(r->shim_id, e->shim_id);
	r->in_inventory = e->in_inventory;
	memcpy(r->serial, e->serial, sizeof(r->serial));
	memcpy(r->build, e->build, sizeof(r->build));
	r->heartbeats = e->heartbeats;
	r->bad_sigs = e->bad_sigs;
	r->replays = e->replays;
	r->last_seq = e->last_seq;
	r->boot_count = e->boot_count;
	r->last_seen = e->last_seen;
	r->period = e->period;
	/* A heartbeat stamped far ahead of the monitor's clock would keep a
	 * silent shim "alive" until then: it does not count. */
	future = e->last_seen > now_s + FUTURE_SKEW;
	if (!e->offline_expected && !e->decommissioned && e->in_inventory &&
	    (e->last_seen == 0 || future ||
	     (double)(now_s - e->last_seen) > MISSING_PERIODS * e->period)) {
		a |= SHIM_MON_A_MISSING;
	}
	r->alarms = a;
	if (a & SHIM_MON_A_TAMPERED) {
		r->verdict = SHIM_MON_TAMPERED;
	} else if (a & SHIM_MON_A_BADSIG) {
		r->verdict = SHIM_MON_BAD_SIGNATURE;
	} else if (a & SHIM_MON_A_REPLAYED) {
		r->verdict = SHIM_MON_REPLAYED;
	} else if (a & SHIM_MON_A_REBOOTED) {
		r->verdict = SHIM_MON_REBOOTED;
	} else if (a & SHIM_MON_A_MISSING) {
		r->verdict = SHIM_MON_MISSING;
	} else if (e->decommissioned) {
		r->verdict = SHIM_MON_DECOMMISSIONED;
	} else if (e->offline_expected) {
		r->verdict = SHIM_MON_OFFLINE_EXPECTED;
	} else {
		r->verdict = SHIM_MON_OK;
	}
	if (e->note[0] != '\0' && (e->alarms != 0 ||
				   (a & SHIM_MON_A_MISSING) == 0)) {
		snprintf(r->note, sizeof(r->note), "%s", e->note);
	} else if (a & SHIM_MON_A_MISSING) {
		if (future) {
			snprintf(r->note, sizeof(r->note),
				 "last heartbeat is stamped %lld s ahead of now",
				 (long long)(e->last_seen - now_s));
		} else if (e->last_seen == 0) {
			snprintf(r->note, sizeof(r->note), "no heartbeat seen");
		} else {
			snprintf(r->note, sizeof(r->note),
				 "silent for %lld s (period %.0f s)",
				 (long long)(now_s - e->last_seen), e->period);
		}
	} else if (e->decommissioned && e->alarms == 0) {
		time_t t = (time_t)e->decommissioned;
		struct tm tm;
		char when[32] = "?";

		if (gmtime_r(&t, &tm) != NULL) {
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
		snprintf(r->note, sizeof(r->note), "decommissioned %s", when);
	} else if (e->offline_expected) {
		snprintf(r->note, sizeof(r->note), "shut down gracefully");
	}
}

void shim_mon_counters(const struct shim_monitor *m, uint64_t *lines,
		       uint64_t *malformed, uint64_t *foreign)
{
	*lines = m->lines;
	*malformed = m->malformed;
	*foreign = m->foreign;
}

void shim_mon_count_line(struct shim_monitor *m, int parse_rc)
{
	m->lines++;
	if (parse_rc == SHIM_EINVAL) {
		m->malformed++;
	} else if (parse_rc == SHIM_ENOENT) {
		m->foreign++;
	}
}

/* ---- batches --------------------------------------------------------------- */

struct job {
	struct shim_monitor *m;
	const char *const *lines;
	const size_t *lens;
	size_t a, b;                    /* lines [a, b) to parse */
	size_t n;                       /* signatures found in them */
	struct shim_p256_item *items;   /* theirs, in log order */
	size_t *where;                  /* the line of each */
	struct shim_p256_item *sorted;  /* phase 2: a run of whole keys */
	size_t nsorted;
};

static int by_key(const void *a, const void *b, void *ctx)
{
	const struct shim_p256_item *it = ctx;
	uintptr_t x = (uintptr_t)it[*(const size_t *)a].v;
	uintptr_t y = (uintptr_t)it[*(const size_t *)b].v;

	if (x != y) {
		return x < y ? -1 : 1;
	}
	/* the same key: log order, so that the order is total */
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Phase 1: parses a slice and collects its signatures. */
static void *parse_work(void *arg)
{
	struct job *j = arg;
	struct shim_monitor *m = j->m;
	const struct entry *e;
	size_t i;

	j->n = 0;
	for (i = j->a; i < j->b; i++) {
		m->prc[i] = shim_mon_parse_line(j->lines[i], j->lens[i],
						&m->scr[i]);
		m->vrc[i] = SHIM_ESIG;
		if (m->prc[i] != 0 || !shim_mon_is_signed(&m->scr[i])) {
			continue;
		}
		e = find(m, m->scr[i].ev.shim_id);
		if (e == NULL || e->v == NULL) {
			m->vrc[i] = SHIM_ENOENT;
			continue;
		}
		if (prepare(&m->scr[i].ev, e->v, &j->items[j->n]) == 0) {
			j->where[j->n++] = i;
		}
	}
	return NULL;
}

/* Phase 2: checks a run of the batch's signatures, all of each of its
 * keys, as one batch. */
static void *verify_work(void *arg)
{
	struct job *j = arg;

	shim_p256_verify_batch(j->sorted, j->nsorted);
	return NULL;
}

#define MAX_THREADS 64

/* Runs fn on every job, jobs 1.. on threads of their own. */
static void run_jobs(struct job *jobs, unsigned threads, void *(*fn)(void *))
{
	pthread_t tid[MAX_THREADS];
	int started[MAX_THREADS];
	unsigned t;

	for (t = 1; t < threads; t++) {
		started[t] = pthread_create(&tid[t], NULL, fn, &jobs[t]) == 0;
		if (!started[t]) {
			fn(&jobs[t]);
		}
	}
	fn(&jobs[0]);
	for (t = 1; t < threads; t++) {
		if (started[t]) {
			pthread_join(tid[t], NULL);
		}
	}
}

int shim_mon_feed_lines(struct shim_monitor *m, const char *const *lines,
			const size_t *lens, size_t n, unsigned threads,
			shim_mon_alarm_cb cb, void *ctx)
{
	struct job jobs[MAX_THREADS];
	unsigned t, raised;
	size_t i, k, total, cut;

	if (n > m->scr_cap) {
		free(m->scr);
		free(m->prc);
		free(m->vrc);
		free(m->items);
		free(m->sorted);
		free(m->where);
		free(m->perm);
		m->scr = malloc(n * sizeof(*m->scr));
		m->prc = malloc(n * sizeof(*m->prc));
		m->vrc = malloc(n * sizeof(*m->vrc));
		m->items = malloc(n * sizeof(*m->items));
		m->where = malloc(n * sizeof(*m->where));
		m->sorted = malloc(n * sizeof(*m->sorted));
		m->perm = malloc(n * sizeof(*m->perm));
		if (m->scr == NULL || m->prc == NULL || m->vrc == NULL ||
		    m->items == NULL || m->where == NULL ||
		    m->sorted == NULL || m->perm == NULL) {
			m->scr_cap = 0;
			return SHIM_ENOMEM;
		}
		m->scr_cap = n;
	}
	if (!shim_p256_verifier_threadsafe() || threads < 1) {
		threads = 1;
	}
	if (threads > MAX_THREADS) {
		threads = MAX_THREADS;
	}
	if (threads > n / 16 + 1) {
		threads = (unsigned)(n / 16 + 1);
	}
	/* Phase 1, by slices of the log: parse, find the key. */
	for (t = 0; t < threads; t++) {
		jobs[t].m = m;
		jobs[t].lines = lines;
		jobs[t].lens = lens;
		jobs[t].a = n * t / threads;
		jobs[t].b = n * (t + 1) / threads;
		jobs[t].items = m->items + jobs[t].a;
		jobs[t].where = m->where + jobs[t].a;
	}
	run_jobs(jobs, threads, parse_work);
	/* The signatures of the whole batch, grouped by key (log order
	 * within a key). */
	total = 0;
	for (t = 0; t < threads; t++) {
		if (total != jobs[t].a) {
			memmove(m->items + total, jobs[t].items,
				jobs[t].n * sizeof(*m->items));
			memmove(m->where + total, jobs[t].where,
				jobs[t].n * sizeof(*m->where));
		}
		total += jobs[t].n;
	}
	for (k = 0; k < total; k++) {
		m->perm[k] = k;
	}
	qsort_r(m->perm, total, sizeof(*m->perm), by_key, m->items);
	for (k = 0; k < total; k++) {
		m->sorted[k] = m->items[m->perm[k]];
	}
	/* Phase 2, by runs of whole keys: each key's precomputed table is
	 * built by one thread and stays in that core's cache for the whole
	 * run, instead of every thread fetching (or building) every key's. */
	cut = 0;
	for (t = 0; t < threads; t++) {
		size_t end = t + 1 == threads ? total : total * (t + 1) / threads;

		if (end < cut) {
			end = cut;
		}
		while (end > cut && end < total &&
		       m->sorted[end].v == m->sorted[end - 1].v) {
			end++;
		}
		jobs[t].sorted = m->sorted + cut;
		jobs[t].nsorted = end - cut;
		cut = end;
	}
	run_jobs(jobs, threads, verify_work);
	for (k = 0; k < total; k++) {
		m->vrc[m->where[m->perm[k]]] = m->sorted[k].rc;
	}
	/* A line whose values rsyslog escaped and that fails is tried again
	 * unescaped. */
	for (i = 0; i < n; i++) {
		if (m->prc[i] == 0 && m->vrc[i] == SHIM_ESIG &&
		    m->scr[i].escaped && shim_mon_is_signed(&m->scr[i])) {
			m->vrc[i] = shim_mon_verify(m, &m->scr[i]);
		}
	}
	for (i = 0; i < n; i++) {
		shim_mon_count_line(m, m->prc[i]);
		if (m->prc[i] != 0) {
			continue;
		}
		raised = shim_mon_apply(m, &m->scr[i], m->vrc[i]);
		if (raised != 0 && cb != NULL) {
			cb(ctx, &m->scr[i], raised);
		}
	}
	return 0;
}
