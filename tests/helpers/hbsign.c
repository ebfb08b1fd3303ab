/*
 * Test helper: turns event specifications into RFC 5424 messages as shimd
 * sends them to the SIEM (shim_syslog_rfc5424), signed with identity keys
 * the way shimd's event log signs.
 * One spec per input line, tab-separated:
 *     KEYFILE  SHIM_ID  SEQ  UNIX_TIME  NAME  [key=value ...]
 * KEYFILE "-" leaves the event unsigned. "\n" in a value stands for a line
 * feed. Writes each message followed by a NUL byte (a message may hold
 * a line feed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "syslog.h"
#include "port_linux.h"

#define MAX_KEYS 32

static struct {
	char path[256];
	struct shim_linux_port lp;
} keys[MAX_KEYS];
static int nkeys;

static struct shim_linux_port *key(const char *path)
{
	int i;

	for (i = 0; i < nkeys; i++) {
		if (strcmp(keys[i].path, path) == 0) {
			return &keys[i].lp;
		}
	}
	if (nkeys == MAX_KEYS || strlen(path) >= sizeof(keys[0].path) ||
	    shim_linux_port_init(&keys[nkeys].lp, NULL) != 0 ||
	    shim_linux_port_load_identity(&keys[nkeys].lp, path) != 0) {
		fprintf(stderr, "hbsign: cannot load %s\n", path);
		exit(1);
	}
	strcpy(keys[nkeys].path, path);
	return &keys[nkeys++].lp;
}

static void unescape(char *v)
{
	char *o = v;

	for (; *v != '\0'; v++) {
		if (v[0] == '\\' && v[1] == 'n') {
			*o++ = '\n';
			v++;
		} else {
			*o++ = *v;
		}
	}
	*o = '\0';
}

int main(void)
{
	static struct shim_event ev;
	static char out[SHIM_SYSLOG_MSG_MAX];
	static char canon[SHIM_EVENT_CANON_MAX];
	struct shim_syslog_opts opts = { .hostname = "shim-host", .procid = 4242,
					 .facility = -1 };
	size_t len;
	char *line = NULL, *f[64], *save, *eq;
	size_t cap = 0;
	ssize_t n;
	int nf, i;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n') {
			line[n - 1] = '\0';
		}
		nf = 0;
		for (f[nf] = strtok_r(line, "\t", &save); f[nf] != NULL && nf < 63;
		     f[nf] = strtok_r(NULL, "\t", &save)) {
			nf++;
		}
		if (nf < 5 || shim_event_init(&ev, f[4], SHIM_SEV_INFO, 0) != 0) {
			fprintf(stderr, "hbsign: bad spec\n");
			return 1;
		}
		snprintf(ev.shim_id, sizeof(ev.shim_id), "%s", f[1]);
		ev.seq = strtoull(f[2], NULL, 10);
		for (i = 5; i < nf; i++) {
			eq = strchr(f[i], '=');
			if (eq == NULL) {
				fprintf(stderr, "hbsign: bad field %s\n", f[i]);
				return 1;
			}
			*eq = '\0';
			unescape(eq + 1);
			if (shim_event_add(&ev, f[i], eq + 1) != 0) {
				fprintf(stderr, "hbsign: cannot add %s\n", f[i]);
				return 1;
			}
		}
		if (strcmp(f[0], "-") != 0 &&
		    shim_event_sign(&ev, &key(f[0])->port.crypto, canon,
				    sizeof(canon)) != 0) {
			fprintf(stderr, "hbsign: signing failed\n");
			return 1;
		}
		ev.wall_ns = strtoll(f[3], NULL, 10) * 1000000000LL;
		if (shim_syslog_rfc5424(&ev, &opts, out, sizeof(out), &len) != 0) {
			return 1;
		}
		fwrite(out, 1, strlen(out) + 1, stdout);
	}
	free(line);
	for (i = 0; i < nkeys; i++) {
		shim_linux_port_fini(&keys[i].lp);
	}
	return 0;
}
