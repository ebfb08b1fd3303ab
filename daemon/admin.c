/*
 * The admin socket: a Unix stream socket (0600) for "shimctl status",
 * "shimctl reset-lockout <id>" and "shimctl end-session". One request line
 * per connection; the answer is text lines, the last one "ok" or
 * "error: <message>". Peer credentials are checked (root or shimd's own
 * user) and every action is logged with who asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "shimd.h"

int shimd_admin_open(struct shimd *d)
{
	struct sockaddr_un sa;
	const char *path;
	mode_t old;
	int fd;

	if (d->cfg.admin_socket != NULL) {
		d->admin_path = strdup(d->cfg.admin_socket);
	} else {
		d->admin_path = shim_config_path(&d->cfg, "shimd.sock");
	}
	if (d->admin_path == NULL) {
		return SHIM_ENOMEM;
	}
	path = d->admin_path;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("admin socket path too long: %s", path);
		return SHIM_EINVAL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_err("admin socket: %s", strerror(errno));
		return SHIM_EIO;
	}
	/* A stale socket from an earlier run is replaced. */
	unlink(path);
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		log_err("admin socket %s: %s", path, strerror(errno));
		close(fd);
		return SHIM_EIO;
	}
	umask(old);
	chmod(path, 0600);
	if (listen(fd, 4) < 0) {
		log_err("admin socket %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return SHIM_EIO;
	}
	d->admin_fd = fd;
	return 0;
}

static void replys(struct shimd_admin_client *c, const char *s);

static void client_close(struct shimd_admin_client *c)
{
	if (c->fd >= 0) {
		close(c->fd);
	}
	c->fd = -1;
	c->len = 0;
}

void shimd_admin_close(struct shimd *d)
{
	size_t i;

	for (i = 0; i < SHIMD_ADMIN_CLIENTS; i++) {
		client_close(&d->admin[i]);
	}
	if (d->admin_fd >= 0) {
		close(d->admin_fd);
		d->admin_fd = -1;
		unlink(d->admin_path);
	}
	free(d->admin_path);
	d->admin_path = NULL;
}

void shimd_admin_accept(struct shimd *d)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	size_t i;
	int fd;

	fd = accept4(d->admin_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("admin: connection refused (uid %d)",
			 cl == sizeof(cred) ? (int)cred.uid : -1);
		(void)!write(fd, "error: permission denied\n", 25);
		close(fd);
		return;
	}
	{
		struct shimd_admin_client *slot = NULL;

		for (i = 0; i < SHIMD_ADMIN_CLIENTS; i++) {
			if (d->admin[i].fd < 0) {
				slot = &d->admin[i];
				break;
			}
			if (slot == NULL ||
			    d->admin[i].since_mono < slot->since_mono) {
				slot = &d->admin[i];
			}
		}
		if (slot->fd >= 0) {
			/* All busy: clients that connect and say nothing must
			 * not keep the operator out. The oldest goes. */
			log_warn("admin: client uid=%u pid=%d closed: table full",
				 slot->uid, slot->pid);
			replys(slot, "error: admin connections full\n");
			client_close(slot);
		}
		slot->fd = fd;
		slot->len = 0;
		slot->uid = cred.uid;
		slot->pid = cred.pid;
		slot->since_mono = shimd_mono_ns();
		shimd_timer_set(d, SHIMD_T_ADMIN, SHIMD_ADMIN_IDLE_MS);
	}
}

/* Closes the clients that have not sent their request line in time and
 * re-arms the timer for the others. */
void shimd_admin_expire(struct shimd *d)
{
	int64_t now = shimd_mono_ns();
	int64_t limit = (int64_t)SHIMD_ADMIN_IDLE_MS * 1000000LL;
	int64_t next = 0;
	size_t i;

	for (i = 0; i < SHIMD_ADMIN_CLIENTS; i++) {
		struct shimd_admin_client *c = &d->admin[i];
		int64_t left;

		if (c->fd < 0) {
			continue;
		}
		left = c->since_mono + limit - now;
		if (left <= 0) {
			log_info("admin: client uid=%u pid=%d closed: no request "
				 "within %d ms", c->uid, c->pid, SHIMD_ADMIN_IDLE_MS);
			replys(c, "error: idle timeout\n");
			client_close(c);
			continue;
		}
		if (next == 0 || left < next) {
			next = left;
		}
	}
	if (next > 0) {
		shimd_timer_set(d, SHIMD_T_ADMIN, (uint64_t)(next / 1000000 + 1));
	}
}

/* Writes the whole answer; the socket is small and the client waits, so a
 * short blocking-free attempt is enough (a client that does not read loses
 * its answer). */
static void reply(struct shimd_admin_client *c, const char *s, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(c->fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0) {
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

static void replys(struct shimd_admin_client *c, const char *s)
{
	reply(c, s, strlen(s));
}

/* Admin actions that change something are also events, with who. */
static void admin_event(struct shimd *d, struct shimd_admin_client *c,
			const char *action, const char *target)
{
	struct shim_event ev;

	if (shim_event_init(&ev, "admin", SHIM_SEV_NOTICE, shimd_wall_ns()) < 0) {
		return;
	}
	shim_event_add(&ev, "action", action);
	if (target != NULL) {
		shim_event_add(&ev, "target", target);
	}
	shim_event_add_u64(&ev, "uid", c->uid);
	shim_event_add_i64(&ev, "pid", c->pid);
	shimd_emit(d, &ev);
}

static void run_command(struct shimd *d, struct shimd_admin_client *c,
			char *line)
{
	char who[64];
	char buf[2048];
	size_t n;
	int rc;

	snprintf(who, sizeof(who), "uid=%u pid=%d", c->uid, c->pid);
	if (strcmp(line, "status") == 0) {
		log_debug("admin %s: status", who);
		n = shimd_status_text(d, buf, sizeof(buf));
		n += shimd_harden_status(&d->hard, buf + n, sizeof(buf) - n);
		reply(c, buf, n);
		replys(c, "ok\n");
		return;
	}
	if (strncmp(line, "reset-lockout ", 14) == 0) {
		const char *id = line + 14;
		char safe[SHIM_TECH_ID_MAX * 4 + 1];

		shimd_log_sanitize(safe, sizeof(safe), id, strlen(id));
		if (id[0] == '\0' || strlen(id) > SHIM_TECH_ID_MAX) {
			replys(c, "error: bad technician id\n");
			return;
		}
		rc = shimd_reset_lockout(d, id, who);
		admin_event(d, c, "reset_lockout", safe);
		if (rc == SHIM_ENOENT) {
			size_t i;
			int enrolled = 0;

			for (i = 0; i < d->cfg.ntechs; i++)
				if (strcmp(d->cfg.techs[i].id, id) == 0)
					enrolled = 1;
			replys(c, enrolled ? "no lockout held for that id\nok\n"
				  : "no lockout held for that id, and it is "
				    "not an enrolled technician\nok\n");
			return;
		}
		if (rc < 0) {
			snprintf(buf, sizeof(buf), "error: %s\n", shim_strerror(rc));
			replys(c, buf);
			return;
		}
		snprintf(buf, sizeof(buf), "lockout of %s cleared\nok\n", safe);
		replys(c, buf);
		return;
	}
	if (strcmp(line, "lockouts") == 0) {
		int64_t now = shimd_wall_ns() / 1000000000LL;
		size_t cur = 0;
		const char *lid;
		uint32_t left;
		int enrolled;

		/* One line each: ID, seconds left, enrolled or unknown. IDs
		 * are sanitised: an unenrolled one is whatever was typed. */
		while (shim_gate_lockout_next(&d->gate, now, &cur, &lid, &left,
					      &enrolled) == 1) {
			char safe[SHIM_TECH_ID_MAX * 4 + 1];

			shimd_log_sanitize(safe, sizeof(safe), lid, strlen(lid));
			n = (size_t)snprintf(buf, sizeof(buf), "%s\t%u\t%s\n",
					     safe, (unsigned)left,
					     enrolled ? "enrolled" : "unknown");
			reply(c, buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
		}
		replys(c, "ok\n");
		return;
	}
	if (strcmp(line, "technicians-reload") == 0) {
		char msg[640];

		rc = shimd_techs_reload(d, who, msg, sizeof(msg));
		admin_event(d, c, "technicians_reload", "");
		snprintf(buf, sizeof(buf), "%s\n%s", msg, rc == 0 ? "ok\n" : "");
		replys(c, buf);
		return;
	}
	if (strcmp(line, "end-session") == 0) {
		if (d->ctl.state != SHIM_ST_OPEN) {
			log_info("admin %s: end-session: no session open", who);
			replys(c, "error: no session open\n");
			return;
		}
		log_info("admin %s: end-session %s", who, d->ctl.session_id);
		snprintf(buf, sizeof(buf), "session %s ended\nok\n",
			 d->ctl.session_id);
		admin_event(d, c, "end_session", d->ctl.session_id);
		shimd_end_session(d, "admin");
		replys(c, buf);
		return;
	}
#ifdef SHIM_TEST_HOOKS
	/* test builds only: proves that the seccomp filter kills */
	if (strcmp(line, "test-forbidden-syscall") == 0) {
		shimd_harden_test_forbidden();
		replys(c, "error: the forbidden system call returned\n");
		return;
	}
	if (strncmp(line, "test-open ", 10) == 0) {
		int fd = open(line + 10, O_RDONLY | O_CLOEXEC);

		snprintf(buf, sizeof(buf), "%s\nok\n",
			 fd >= 0 ? "opened" : strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		replys(c, buf);
		return;
	}
#endif
	if (strcmp(line, "clock-status") == 0) {
		n = shimd_clock_status(d, buf, sizeof(buf));
		reply(c, buf, n);
		replys(c, "ok\n");
		return;
	}
	if (strcmp(line, "clock-trust") == 0) {
		char msg[160];

		rc = shimd_clock_trust(d, who, msg, sizeof(msg));
		admin_event(d, c, "clock_trust", rc == 0 ? "done" : "failed");
		snprintf(buf, sizeof(buf), "%s\n%s", msg, rc == 0 ? "ok\n" : "");
		replys(c, buf);
		return;
	}
	if (strcmp(line, "gate-reset-state") == 0) {
		rc = shimd_gate_reset_state(d, who);
		admin_event(d, c, "gate_reset_state", rc == 0 ? "done" : "failed");
		if (rc < 0) {
			snprintf(buf, sizeof(buf), "error: gate state not saved: %s\n",
				 shim_strerror(rc));
			replys(c, buf);
			return;
		}
		replys(c, "gate state reset: every code up to now counts as used\nok\n");
		return;
	}
	if (strncmp(line, "tamper-reset ", 13) == 0) {
		char msg[256];

		rc = shimd_tamper_reset(d, line + 13, who, msg, sizeof(msg));
		admin_event(d, c, "tamper_reset", rc == 0 ? "cleared" : "refused");
		snprintf(buf, sizeof(buf), "%s\n%s", msg, rc == 0 ? "ok\n" : "");
		replys(c, buf);
		return;
	}
	log_warn("admin %s: unknown command", who);
	replys(c, "error: unknown command\n");
}

void shimd_admin_client_io(struct shimd *d, struct shimd_admin_client *c)
{
	ssize_t n;
	char *nl;

	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len,
		 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return;
	}
	if (n <= 0) {
		client_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	nl = memchr(c->buf, '\n', c->len);
	if (nl == NULL) {
		if (c->len >= sizeof(c->buf) - 1) {
			replys(c, "error: request too long\n");
			client_close(c);
		}
		return;
	}
	*nl = '\0';
	if (nl > c->buf && nl[-1] == '\r') {
		nl[-1] = '\0';
	}
	run_command(d, c, c->buf);
	client_close(c);
}
