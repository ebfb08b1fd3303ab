/*
 * The uploader's durable state file (upload_state.h): a bounded,
 * line-oriented parser and its writer.
 */
#include "upload_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "port_linux.h"

#define MAGIC "shim-custody-state 1"
#define LINE_MAX_LEN 256

int shim_upload_id_ok(const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len >= SHIM_SESSION_ID_MAX || id[0] == '.') {
		return 0;
	}
	for (i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-')) {
			return 0;
		}
	}
	return 1;
}

/* One space-separated field of [s, e): its bounds in *fs, *fl; s moves
 * past it and one following space. */
static int field(const char **s, const char *e, const char **fs, size_t *fl)
{
	const char *p = *s;

	*fs = p;
	while (p < e && *p != ' ') {
		p++;
	}
	*fl = (size_t)(p - *fs);
	if (*fl == 0) {
		return -1;
	}
	if (p < e) {
		p++; /* the separator; a field must follow it */
		if (p == e) {
			return -1;
		}
	}
	*s = p;
	return 0;
}

static int dec_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) {
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10) {
			return -1;
		}
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int hex64_ok(const char *s, size_t n)
{
	size_t i;

	if (n != 64) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return 1;
}

static int parse_entry(const char *s, const char *e,
		       struct shim_upload_entry *out)
{
	const char *f;
	size_t fl;
	uint64_t v;

	memset(out, 0, sizeof(*out));
	if (field(&s, e, &f, &fl) != 0 || !shim_upload_id_ok(f, fl)) {
		return -1;
	}
	memcpy(out->session_id, f, fl);
	if (field(&s, e, &f, &fl) != 0 ||
	    dec_u64(f, fl, UINT64_MAX, &out->size) != 0) {
		return -1;
	}
	if (field(&s, e, &f, &fl) != 0 || !hex64_ok(f, fl)) {
		return -1;
	}
	memcpy(out->sha256, f, 64);
	if (field(&s, e, &f, &fl) != 0 ||
	    dec_u64(f, fl, (uint64_t)INT64_MAX, &v) != 0 || s != e) {
		return -1;
	}
	out->delivered_s = (int64_t)v;
	return 0;
}

int shim_upload_state_parse(struct shim_upload_state *st, const char *buf,
			    size_t len, size_t *bad_line)
{
	const char *p = buf, *end = buf + len;
	size_t line = 0;
	int rc = SHIM_ETRUNC;

	if (bad_line != NULL) {
		*bad_line = 0;
	}
	if (st == NULL || (buf == NULL && len != 0)) {
		return SHIM_EINVAL;
	}
	if (len > SHIM_UPLOAD_STATE_MAX_BYTES) {
		return SHIM_ERANGE;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le;
		struct shim_upload_entry ent;
		uint64_t count;

		line++;
		if (nl == NULL) {
			/* a last line without its newline: torn */
			rc = SHIM_ETRUNC;
			goto bad;
		}
		le = nl;
		if ((size_t)(le - p) > LINE_MAX_LEN || memchr(p, '\0', (size_t)(le - p)) != NULL) {
			rc = SHIM_ECORRUPT;
			goto bad;
		}
		if (line == 1) {
			if ((size_t)(le - p) != strlen(MAGIC) ||
			    memcmp(p, MAGIC, strlen(MAGIC)) != 0) {
				rc = SHIM_ECORRUPT;
				goto bad;
			}
		} else if ((size_t)(le - p) > 10 &&
			   memcmp(p, "delivered ", 10) == 0) {
			if (parse_entry(p + 10, le, &ent) != 0 ||
			    shim_upload_state_find(st, ent.session_id) != NULL ||
			    st->n >= SHIM_UPLOAD_STATE_MAX_ENTRIES) {
				rc = SHIM_ECORRUPT;
				goto bad;
			}
			if (shim_upload_state_put(st, &ent) != 0) {
				rc = SHIM_ENOMEM;
				goto bad;
			}
		} else if ((size_t)(le - p) > 4 && memcmp(p, "end ", 4) == 0) {
			if (dec_u64(p + 4, (size_t)(le - p - 4),
				    SHIM_UPLOAD_STATE_MAX_ENTRIES, &count) != 0 ||
			    count != st->n || nl + 1 != end) {
				rc = SHIM_ECORRUPT;
				goto bad;
			}
			return 0;
		} else {
			rc = SHIM_ECORRUPT;
			goto bad;
		}
		p = nl + 1;
	}
	line++;
bad:
	if (bad_line != NULL) {
		*bad_line = line;
	}
	shim_upload_state_free(st);
	return rc;
}

int shim_upload_state_format(const struct shim_upload_state *st, char **out,
			     size_t *len)
{
	size_t cap = strlen(MAGIC) + 1 + 32 + st->n * (LINE_MAX_LEN + 1);
	char *b = malloc(cap);
	size_t n = 0, i;
	int w;

	*out = NULL;
	*len = 0;
	if (b == NULL) {
		return SHIM_ENOMEM;
	}
	w = snprintf(b, cap, "%s\n", MAGIC);
	n = (size_t)w;
	for (i = 0; i < st->n; i++) {
		const struct shim_upload_entry *e = &st->e[i];

		w = snprintf(b + n, cap - n, "delivered %s %llu %s %lld\n",
			     e->session_id, (unsigned long long)e->size,
			     e->sha256, (long long)e->delivered_s);
		if (w < 0 || (size_t)w >= cap - n) {
			free(b);
			return SHIM_EINTERNAL;
		}
		n += (size_t)w;
	}
	w = snprintf(b + n, cap - n, "end %zu\n", st->n);
	if (w < 0 || (size_t)w >= cap - n) {
		free(b);
		return SHIM_EINTERNAL;
	}
	n += (size_t)w;
	*out = b;
	*len = n;
	return 0;
}

const struct shim_upload_entry *
shim_upload_state_find(const struct shim_upload_state *st, const char *id)
{
	size_t i;

	for (i = 0; i < st->n; i++) {
		if (strcmp(st->e[i].session_id, id) == 0) {
			return &st->e[i];
		}
	}
	return NULL;
}

int shim_upload_state_put(struct shim_upload_state *st,
			  const struct shim_upload_entry *e)
{
	size_t i;

	if (!shim_upload_id_ok(e->session_id, strnlen(e->session_id,
						      SHIM_SESSION_ID_MAX)) ||
	    !hex64_ok(e->sha256, strnlen(e->sha256, 65))) {
		return SHIM_EINVAL;
	}
	for (i = 0; i < st->n; i++) {
		if (strcmp(st->e[i].session_id, e->session_id) == 0) {
			st->e[i] = *e;
			return 0;
		}
	}
	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 16;
		struct shim_upload_entry *ne;

		if (nc > SHIM_UPLOAD_STATE_MAX_ENTRIES) {
			nc = SHIM_UPLOAD_STATE_MAX_ENTRIES;
		}
		if (nc <= st->n) {
			return SHIM_ENOSPC;
		}
		ne = realloc(st->e, nc * sizeof(*ne));
		if (ne == NULL) {
			return SHIM_ENOMEM;
		}
		st->e = ne;
		st->cap = nc;
	}
	st->e[st->n++] = *e;
	return 0;
}

void shim_upload_state_remove(struct shim_upload_state *st, const char *id)
{
	size_t i;

	for (i = 0; i < st->n; i++) {
		if (strcmp(st->e[i].session_id, id) == 0) {
			st->e[i] = st->e[st->n - 1];
			st->n--;
			return;
		}
	}
}

int shim_upload_state_load(struct shim_upload_state *st, const char *path,
			   size_t *bad_line)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (bad_line != NULL) {
		*bad_line = 0;
	}
	rc = shim_read_file_opt(path, SHIM_UPLOAD_STATE_MAX_BYTES,
				SHIM_READ_NOFOLLOW, &buf, &len, NULL);
	if (rc == SHIM_ENOENT) {
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	rc = shim_upload_state_parse(st, (const char *)buf, len, bad_line);
	free(buf);
	return rc;
}

int shim_upload_state_save(const struct shim_upload_state *st,
			   const char *path)
{
	char *buf;
	size_t len;
	int rc = shim_upload_state_format(st, &buf, &len);

	if (rc != 0) {
		return rc;
	}
	rc = shim_write_file_atomic(path, (const uint8_t *)buf, len, 0600);
	free(buf);
	return rc;
}

void shim_upload_state_free(struct shim_upload_state *st)
{
	if (st == NULL) {
		return;
	}
	free(st->e);
	memset(st, 0, sizeof(*st));
}
