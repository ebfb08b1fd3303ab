/*
 * shimctl status | reset-lockout <technician_id> | end-session
 *
 * Talks to the running shimd over its admin socket (admin.socket, default
 * <storage_root>/shimd.sock; 0600, peer credentials checked by shimd).
 * One request line; the answer is text lines ending with "ok" or
 * "error: <message>".
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "subcommands.h"
#include "port_linux.h"
#include "toolutil.h"

#define ADMIN_TIMEOUT_MS 10000

int tool_admin_exchange(const char *sock, const char *request, char *buf,
			size_t cap, int *not_running)
{
	struct sockaddr_un sa;
	size_t len = 0;
	ssize_t n;
	int fd;

	*not_running = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (sock == NULL || strlen(sock) >= sizeof(sa.sun_path) || cap < 2) {
		return SHIM_EINVAL;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (fd >= 0) {
			close(fd);
		}
		*not_running = e == ENOENT || e == ECONNREFUSED;
		return shim_err_from_errno(e);
	}
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		int e = errno;

		close(fd);
		return shim_err_from_errno(e);
	}
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };

		if (poll(&pf, 1, ADMIN_TIMEOUT_MS) <= 0) {
			close(fd);
			return SHIM_ETIMEDOUT;
		}
		if (len >= cap - 1) {
			break;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return 0;
}

int tool_admin_request(const char *config_path, const char *request)
{
	struct shim_config cfg;
	char buf[4096], *last;
	size_t len;
	int rc = 1, down, err;

	if (tool_load_config(config_path, &cfg, 0) < 0) {
		shim_config_free(&cfg);
		return 1;
	}
	if (cfg.admin_socket == NULL) {
		fprintf(stderr, "shimctl: no usable admin socket path in %s\n",
			config_path);
		goto out;
	}
	err = tool_admin_exchange(cfg.admin_socket, request, buf, sizeof(buf),
				  &down);
	if (err == SHIM_ETIMEDOUT) {
		fprintf(stderr, "shimctl: shimd did not answer\n");
		goto out;
	}
	if (err != 0) {
		fprintf(stderr, "shimctl: cannot reach shimd at %s: %s\n",
			cfg.admin_socket, shim_strerror(err));
		goto out;
	}
	len = strlen(buf);
	/* the last line is the verdict */
	while (len > 0 && buf[len - 1] == '\n') {
		buf[--len] = '\0';
	}
	last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	if (strcmp(last, "ok") == 0) {
		*last = '\0';
		fputs(buf, stdout);
		rc = 0;
	} else if (strncmp(last, "error: ", 7) == 0) {
		*last = '\0';
		fputs(buf, stdout);
		fprintf(stderr, "shimctl: %s\n", last + 7);
	} else {
		fprintf(stderr, "shimctl: unexpected answer from shimd\n");
	}
out:
	shim_config_free(&cfg);
	return rc;
}

static void json_str(const char *s, size_t n)
{
	size_t i;

	putchar('"');
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			printf("\\%c", ch);
		} else if (ch < 0x20 || ch == 0x7f) {
			printf("\\u%04x", ch);
		} else {
			putchar(ch);
		}
	}
	putchar('"');
}

/* Sends request, checks the verdict line, and leaves the answer without
 * it in buf. 0, or the exit status after printing why. */
static int ask(const char *config_path, const char *request, char *buf,
	       size_t cap)
{
	struct shim_config cfg;
	size_t len;
	char *last;
	int down = 0, rc;

	if (tool_load_config(config_path, &cfg, 0) < 0) {
		shim_config_free(&cfg);
		return 1;
	}
	rc = tool_admin_exchange(cfg.admin_socket, request, buf, cap, &down);
	if (rc != 0) {
		fprintf(stderr, "shimctl: cannot reach shimd at %s: %s\n",
			cfg.admin_socket ? cfg.admin_socket : "?",
			down ? "shimd is not running" : shim_strerror(rc));
		shim_config_free(&cfg);
		return 1;
	}
	shim_config_free(&cfg);
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == '\n') {
		buf[--len] = '\0';
	}
	last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	if (strcmp(last, "ok") != 0) {
		fprintf(stderr, "shimctl: %s\n", strncmp(last, "error: ", 7) == 0 ?
			last + 7 : "unexpected answer from shimd");
		return 1;
	}
	*last = '\0';
	return 0;
}

static int all_digits(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 18 || (n > 1 && s[0] == '0')) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return 0;
		}
	}
	return 1;
}

int cmd_status_main(int argc, char **argv, const char *config_path)
{
	static char buf[16384];
	char *line, *save = NULL;
	int first = 1;

	if (argc == 1) {
		return tool_admin_request(config_path, "status");
	}
	if (argc != 2 || strcmp(argv[1], "--json") != 0) {
		fprintf(stderr, "usage: shimctl status [--json]\n");
		return 2;
	}
	if (ask(config_path, "status", buf, sizeof(buf)) != 0) {
		return 1;
	}
	/* Every "key: value" line of the text status, under the same key;
	 * whole numbers as numbers, "-" as null. */
	putchar('{');
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strstr(line, ": ");
		const char *v;
		size_t vn;

		if (colon == NULL || colon == line) {
			continue;
		}
		v = colon + 2;
		vn = strlen(v);
		printf("%s\n  ", first ? "" : ",");
		first = 0;
		json_str(line, (size_t)(colon - line));
		fputs(": ", stdout);
		if (all_digits(v, vn)) {
			fputs(v, stdout);
		} else if (vn == 1 && v[0] == '-') {
			fputs("null", stdout);
		} else {
			json_str(v, vn);
		}
	}
	puts(first ? "}" : "\n}");
	return 0;
}

int cmd_lockouts_main(int argc, char **argv, const char *config_path)
{
	static char buf[262144];
	char *line, *save = NULL;
	int json, n = 0;
	time_t now = time(NULL);

	json = argc == 2 && strcmp(argv[1], "--json") == 0;
	if (argc != 1 && !json) {
		fprintf(stderr, "usage: shimctl lockouts [--json]\n");
		return 2;
	}
	if (ask(config_path, "lockouts", buf, sizeof(buf)) != 0) {
		return 1;
	}
	if (json) {
		fputs("{\"lockouts\": [", stdout);
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *t1 = strchr(line, '\t'), *t2, until[32];
		unsigned long left;
		time_t u;
		struct tm tm;

		if (t1 == NULL || (t2 = strchr(t1 + 1, '\t')) == NULL) {
			continue;
		}
		*t1 = *t2 = '\0';
		left = strtoul(t1 + 1, NULL, 10);
		u = now + (time_t)left;
		gmtime_r(&u, &tm);
		strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (json) {
			printf("%s\n  {\"id\": ", n ? "," : "");
			json_str(line, strlen(line));
			printf(", \"seconds_left\": %lu, \"until\": \"%s\", "
			       "\"enrolled\": %s}", left, until,
			       strcmp(t2 + 1, "enrolled") == 0 ? "true" : "false");
		} else {
			if (n == 0) {
				printf("%-40s %-8s %-20s %s\n", "ID", "LEFT",
				       "UNTIL", "ENROLLED");
			}
			printf("%-40s %-8lu %-20s %s\n", line, left, until,
			       strcmp(t2 + 1, "enrolled") == 0 ? "yes" : "no");
		}
		n++;
	}
	if (json) {
		puts(n ? "\n]}" : "]}");
	} else if (n == 0) {
		puts("no lockouts");
	}
	return 0;
}

int cmd_reset_lockout_main(int argc, char **argv, const char *config_path)
{
	char req[300];

	if (argc != 2 || argv[1][0] == '\0' || strchr(argv[1], '\n') != NULL ||
	    strlen(argv[1]) > 128) {
		fprintf(stderr, "usage: shimctl reset-lockout <technician_id>\n");
		return 2;
	}
	snprintf(req, sizeof(req), "reset-lockout %s", argv[1]);
	return tool_admin_request(config_path, req);
}

int cmd_end_session_main(int argc, char **argv, const char *config_path)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: shimctl end-session\n");
		return 2;
	}
	return tool_admin_request(config_path, "end-session");
}

/* shimctl gate reset-state: after the gate state was lost or damaged,
 * every time step up to now is marked used and codes are taken again. */
int cmd_gate_main(int argc, char **argv, const char *config_path)
{
	if (argc != 2 || strcmp(argv[1], "reset-state") != 0) {
		fprintf(stderr, "usage: shimctl gate reset-state\n");
		return 2;
	}
	return tool_admin_request(config_path, "gate-reset-state");
}

/* shimctl clock status | trust: the shim's clock trust; "trust" takes the
 * wall clock as it is now as the trusted time (after checking it). */
int cmd_clock_main(int argc, char **argv, const char *config_path)
{
	if (argc != 2 || (strcmp(argv[1], "trust") != 0 &&
			  strcmp(argv[1], "status") != 0)) {
		fprintf(stderr, "usage: shimctl clock status|trust\n");
		return 2;
	}
	return tool_admin_request(config_path, strcmp(argv[1], "trust") == 0 ?
					       "clock-trust" : "clock-status");
}
