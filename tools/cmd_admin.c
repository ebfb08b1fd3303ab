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

int cmd_status_main(int argc, char **argv, const char *config_path)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: shimctl status\n");
		return 2;
	}
	return tool_admin_request(config_path, "status");
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
