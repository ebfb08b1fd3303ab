/*
 * Event log, first cut: the local audit log (JSON lines) with a persisted
 * sequence number. The SIEM transport plugs in behind the same calls.
 */
#include "eventlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "port_linux.h"
#include "util.h"

#define SEQ_BLOB "event-seq"

struct shim_eventlog {
	const struct shim_config *cfg;
	const struct shim_port *port;
	pthread_mutex_t lock;
	int fd;
	uint64_t next_seq;
};

static int load_seq(struct shim_eventlog *el)
{
	uint8_t buf[12];
	size_t len = 0;
	int rc;

	rc = el->port->store.load(el->port->store.ctx, SEQ_BLOB, buf,
				  sizeof(buf), &len);
	if (rc == SHIM_ENOENT) {
		el->next_seq = 1;
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	if (len != 12 || shim_crc32(0, buf, 8) != shim_get_u32(buf + 8)) {
		return SHIM_ECORRUPT;
	}
	el->next_seq = shim_get_u64(buf);
	return 0;
}

static int save_seq(struct shim_eventlog *el, uint64_t next)
{
	uint8_t buf[12];

	shim_put_u64(buf, next);
	shim_put_u32(buf + 8, shim_crc32(0, buf, 8));
	return el->port->store.save(el->port->store.ctx, SEQ_BLOB, buf,
				    sizeof(buf));
}

int shim_eventlog_open(struct shim_eventlog **out, const struct shim_config *cfg,
		       const struct shim_port *port)
{
	struct shim_eventlog *el;
	int rc;

	*out = NULL;
	el = calloc(1, sizeof(*el));
	if (el == NULL) {
		return SHIM_ENOMEM;
	}
	el->cfg = cfg;
	el->port = port;
	el->fd = -1;
	pthread_mutex_init(&el->lock, NULL);
	rc = load_seq(el);
	if (rc != 0) {
		goto fail;
	}
	if (cfg->audit_log != NULL) {
		el->fd = open(cfg->audit_log,
			      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (el->fd < 0) {
			rc = shim_err_from_errno(errno);
			goto fail;
		}
	}
	*out = el;
	return 0;
fail:
	pthread_mutex_destroy(&el->lock);
	free(el);
	return rc;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

int shim_eventlog_emit(struct shim_eventlog *el, struct shim_event *ev)
{
	char *line = NULL;
	size_t len = 0, i;
	FILE *f;
	int rc;

	pthread_mutex_lock(&el->lock);
	snprintf(ev->shim_id, sizeof(ev->shim_id), "%s",
		 el->cfg->shim_id != NULL ? el->cfg->shim_id : "");
	ev->seq = el->next_seq;
	rc = save_seq(el, el->next_seq + 1);
	if (rc != 0) {
		goto out;
	}
	el->next_seq++;
	if (ev->sign) {
		rc = shim_event_sign(ev, &el->port->crypto);
		if (rc != 0 && rc != SHIM_ENOTSUP) {
			goto out;
		}
	}
	f = open_memstream(&line, &len);
	if (f == NULL) {
		rc = SHIM_ENOMEM;
		goto out;
	}
	fprintf(f, "{\"time_ns\":%lld,\"event\":", (long long)ev->wall_ns);
	json_str(f, ev->name);
	fprintf(f, ",\"severity\":%d,\"shim_id\":", (int)ev->severity);
	json_str(f, ev->shim_id);
	fprintf(f, ",\"seq\":%llu", (unsigned long long)ev->seq);
	for (i = 0; i < ev->nfields; i++) {
		fputc(',', f);
		json_str(f, ev->fields[i].key);
		fputc(':', f);
		json_str(f, ev->fields[i].value);
	}
	fputs("}\n", f);
	fclose(f);
	if (el->fd >= 0) {
		if (write(el->fd, line, len) != (ssize_t)len ||
		    fdatasync(el->fd) != 0) {
			rc = SHIM_EIO;
		}
	}
	free(line);
out:
	pthread_mutex_unlock(&el->lock);
	return rc;
}

void shim_eventlog_status(struct shim_eventlog *el,
			  struct shim_eventlog_status *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&el->lock);
	st->next_seq = el->next_seq;
	pthread_mutex_unlock(&el->lock);
}

void shim_eventlog_close(struct shim_eventlog *el, int timeout_ms)
{
	(void)timeout_ms;
	if (el == NULL) {
		return;
	}
	if (el->fd >= 0) {
		close(el->fd);
	}
	pthread_mutex_destroy(&el->lock);
	free(el);
}
