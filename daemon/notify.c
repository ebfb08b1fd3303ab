#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "port_linux.h"

int shimd_notify_open(struct shimd_notify *n)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *wd = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");
	struct sockaddr_un sa;
	socklen_t len;
	size_t plen;
	int rc = 0;

	n->fd = -1;
	n->watchdog_us = 0;
	if (wd != NULL && wd[0] != '\0') {
		char *end;
		unsigned long long us = strtoull(wd, &end, 10);

		if (*end == '\0' && us > 0 &&
		    (wpid == NULL || strtol(wpid, NULL, 10) == (long)getpid())) {
			n->watchdog_us = us;
		}
	}
	if (path == NULL || path[0] == '\0') {
		n->watchdog_us = 0;
		goto out;
	}
	plen = strlen(path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path)) {
		log_err("NOTIFY_SOCKET %s: not a socket path", path);
		rc = SHIM_EINVAL;
		goto out;
	}
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@') {
		sa.sun_path[0] = '\0'; /* abstract namespace */
	}
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0 || connect(n->fd, (struct sockaddr *)&sa, len) < 0) {
		log_err("NOTIFY_SOCKET %s: %s", path, strerror(errno));
		rc = shim_err_from_errno(errno);
		if (n->fd >= 0) {
			close(n->fd);
			n->fd = -1;
		}
	}
out:
	/* not for the demo's child, nor anything else started later */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return rc;
}

int shimd_notify_send(struct shimd_notify *n, const char *msg)
{
	if (n->fd < 0) {
		return 0;
	}
	if (send(n->fd, msg, strlen(msg), MSG_NOSIGNAL) < 0) {
		return shim_err_from_errno(errno);
	}
	return 0;
}

void shimd_notify_close(struct shimd_notify *n)
{
	if (n->fd >= 0) {
		close(n->fd);
		n->fd = -1;
	}
}
