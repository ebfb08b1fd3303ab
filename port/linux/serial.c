/*
 * Serial endpoints on Linux: termios ttys and pseudo-terminals. This is the
 * only file that includes <termios.h>.
 */
#include "serial.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "port_linux.h"
#include "util.h"

_Static_assert(sizeof(struct termios) <= sizeof(((struct shim_serial *)0)->orig),
	       "struct termios does not fit the saved-settings buffer");

struct baud_map {
	uint32_t baud;
	speed_t speed;
};

static const struct baud_map bauds[] = {
	{ 300, B300 },         { 600, B600 },         { 1200, B1200 },
	{ 2400, B2400 },       { 4800, B4800 },       { 9600, B9600 },
	{ 19200, B19200 },     { 38400, B38400 },     { 57600, B57600 },
	{ 115200, B115200 },   { 230400, B230400 },   { 460800, B460800 },
	{ 500000, B500000 },   { 576000, B576000 },   { 921600, B921600 },
};

static int baud_to_speed(uint32_t baud, speed_t *sp)
{
	size_t i;

	for (i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++) {
		if (bauds[i].baud == baud) {
			*sp = bauds[i].speed;
			return 0;
		}
	}
	return SHIM_ENOTSUP;
}

int shim_serial_is_pty_spec(const char *spec, const char **path)
{
	size_t n = strlen(SHIM_SERIAL_PTY_PREFIX);

	if (strncmp(spec, SHIM_SERIAL_PTY_PREFIX, n) == 0) {
		*path = spec + n;
		return 1;
	}
	*path = spec;
	return 0;
}

/* tcsetattr returns success if ANY of the requested changes were carried
 * out, not if ALL were: retry on EINTR, then read back and compare. */
static int set_attr_checked(int fd, const struct termios *want)
{
	struct termios got;
	const tcflag_t cmask = CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS |
			       CLOCAL | CREAD | HUPCL;
	const tcflag_t imask = IXON | IXOFF | IXANY | INPCK | PARMRK |
			       IGNBRK | BRKINT | ICRNL | INLCR | IGNCR | ISTRIP;
	int rc;

	do {
		rc = tcsetattr(fd, TCSANOW, want);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		return shim_err_from_errno(errno);
	}
	if (tcgetattr(fd, &got) < 0) {
		return shim_err_from_errno(errno);
	}
	if ((got.c_cflag & cmask) != (want->c_cflag & cmask) ||
	    (got.c_iflag & imask) != (want->c_iflag & imask) ||
	    (got.c_lflag & (ICANON | ECHO | ISIG)) != 0 ||
	    (got.c_oflag & OPOST) != 0 ||
	    cfgetispeed(&got) != cfgetispeed(want) ||
	    cfgetospeed(&got) != cfgetospeed(want)) {
		return SHIM_ENOTSUP;
	}
	return 0;
}

/* Builds raw settings for cfg on top of t. */
static int make_raw(struct termios *t, const struct shim_serial_cfg *cfg,
		    int is_pty)
{
	speed_t sp;
	int rc;

	rc = baud_to_speed(cfg->baud ? cfg->baud : 9600, &sp);
	if (rc < 0) {
		return rc;
	}
	cfmakeraw(t);
	t->c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS |
				  HUPCL);
	t->c_cflag |= CREAD | CLOCAL;
	t->c_cflag |= (cfg->data_bits == 7) ? CS7 : CS8;
	if (cfg->stop_bits == 2) {
		t->c_cflag |= CSTOPB;
	}
	t->c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY | INPCK | PARMRK |
				  IGNBRK | BRKINT | IGNPAR);
	switch (cfg->parity) {
	case SHIM_PARITY_NONE:
		break;
	case SHIM_PARITY_EVEN:
		t->c_cflag |= PARENB;
		t->c_iflag |= INPCK;
		break;
	case SHIM_PARITY_ODD:
		t->c_cflag |= PARENB | PARODD;
		t->c_iflag |= INPCK;
		break;
	default:
		return SHIM_EINVAL;
	}
	switch (cfg->flow) {
	case SHIM_FLOW_NONE:
		break;
	case SHIM_FLOW_RTSCTS:
		t->c_cflag |= CRTSCTS;
		break;
	case SHIM_FLOW_XONXOFF:
		t->c_iflag |= IXON | IXOFF;
		break;
	default:
		return SHIM_EINVAL;
	}
	if (!is_pty) {
		/* A BREAK reads as \377 \0 \0 and a real \377 as \377 \377,
		 * so BREAK can be told from data and forwarded. */
		t->c_iflag |= PARMRK;
	}
	t->c_cc[VMIN] = 1;
	t->c_cc[VTIME] = 0;
	cfsetispeed(t, sp);
	cfsetospeed(t, sp);
	return 0;
}

static void init_struct(struct shim_serial *s, const struct shim_serial_cfg *cfg)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->watch_fd = -1;
	s->cfg = *cfg;
}

static int open_tty(struct shim_serial *s)
{
	struct termios t;
	int fd, rc;

	fd = open(s->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		/* EBUSY: another program holds the line exclusively (only
		 * CAP_SYS_ADMIN opens it anyway, and shimd has none) */
		return errno == EBUSY ? SHIM_EACCES : shim_err_from_errno(errno);
	}
	if (!isatty(fd)) {
		close(fd);
		return SHIM_ENOTSUP;
	}
	/* Exclusive: no other program may open the line while we hold it. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 || ioctl(fd, TIOCEXCL) < 0) {
		close(fd);
		return SHIM_EACCES;
	}
	if (tcgetattr(fd, &t) < 0) {
		rc = shim_err_from_errno(errno);
		close(fd);
		return rc;
	}
	memcpy(s->orig, &t, sizeof(t));
	s->have_orig = 1;
	rc = make_raw(&t, &s->cfg, 0);
	if (rc == 0) {
		rc = set_attr_checked(fd, &t);
	}
	if (rc < 0) {
		tcsetattr(fd, TCSANOW, (struct termios *)(void *)s->orig);
		s->have_orig = 0;
		close(fd);
		return rc;
	}
	tcflush(fd, TCIFLUSH);
	s->fd = fd;
	s->brk_state = 0;
	return 0;
}

/* Puts a link to target at path atomically (temporary link + rename).
 * Refuses to replace anything that is not a symbolic link. */
static int place_link(const char *target, const char *path)
{
	char tmp[600];
	struct stat st;
	int n;

	if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode)) {
		return SHIM_EEXIST;
	}
	n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		return SHIM_ENOSPC;
	}
	unlink(tmp);
	if (symlink(target, tmp) < 0) {
		return shim_err_from_errno(errno);
	}
	if (rename(tmp, path) < 0) {
		n = shim_err_from_errno(errno);
		unlink(tmp);
		return n;
	}
	return 0;
}

static void remove_link(struct shim_serial *s)
{
	char target[PATH_MAX];
	ssize_t n;

	n = readlink(s->path, target, sizeof(target) - 1);
	if (n < 0) {
		return;
	}
	target[n] = '\0';
	if (strcmp(target, s->pty_name) == 0) {
		unlink(s->path);
	}
}

static void close_pty(struct shim_serial *s)
{
	if (s->watch_fd >= 0) {
		close(s->watch_fd);
		s->watch_fd = -1;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->peer_open = 0;
}

static int open_pty(struct shim_serial *s)
{
	struct termios t;
	int fd = -1, rc;

	fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		return shim_err_from_errno(errno);
	}
	if (grantpt(fd) < 0 || unlockpt(fd) < 0 ||
	    ptsname_r(fd, s->pty_name, sizeof(s->pty_name)) != 0) {
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	/* Termios requests on the master act on the slave: the peer starts
	 * in raw mode, so nothing is echoed or translated behind our back. */
	if (tcgetattr(fd, &t) < 0) {
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	rc = make_raw(&t, &s->cfg, 1);
	if (rc == 0) {
		rc = set_attr_checked(fd, &t);
	}
	if (rc < 0) {
		goto fail;
	}
	s->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->watch_fd < 0 ||
	    inotify_add_watch(s->watch_fd, s->pty_name, IN_OPEN) < 0) {
		rc = shim_err_from_errno(errno);
		goto fail;
	}
	rc = place_link(s->pty_name, s->path);
	if (rc < 0) {
		goto fail;
	}
	s->fd = fd;
	s->peer_open = 0;
	return 0;
fail:
	if (s->watch_fd >= 0) {
		close(s->watch_fd);
		s->watch_fd = -1;
	}
	close(fd);
	return rc;
}

int shim_serial_open(struct shim_serial *s, const char *spec,
		     const struct shim_serial_cfg *cfg)
{
	const char *path;
	int pty;

	init_struct(s, cfg);
	pty = shim_serial_is_pty_spec(spec, &path);
	if (path[0] == '\0' || strlen(path) >= sizeof(s->path)) {
		return SHIM_EINVAL;
	}
	memcpy(s->path, path, strlen(path) + 1);
	s->is_pty = pty;
	if (pty) {
		return open_pty(s);
	}
	return open_tty(s);
}

void shim_serial_close(struct shim_serial *s)
{
	if (s->is_pty) {
		if (s->fd >= 0) {
			remove_link(s);
		}
		close_pty(s);
		return;
	}
	if (s->fd >= 0) {
		if (s->have_orig) {
			tcsetattr(s->fd, TCSANOW,
				  (const struct termios *)(const void *)s->orig);
		}
		close(s->fd);
		s->fd = -1;
	}
	s->have_orig = 0;
}

/* Undoes PARMRK marking in place: \377\377 -> \377, \377\0\0 -> BREAK,
 * \377\0 X -> X (a byte with a parity or framing error). */
size_t shim_serial_unmark(struct shim_serial *s, uint8_t *buf, size_t n,
			  int *brk)
{
	size_t i = 0, o = 0;

	while (i < n) {
		uint8_t c;

		if (s->brk_state == 0) {
			/* The common case: a run of bytes without a mark,
			 * moved at once. */
			const uint8_t *ff = memchr(buf + i, 0xff, n - i);
			size_t run = ff != NULL ? (size_t)(ff - (buf + i)) :
						  n - i;

			if (o != i) {
				memmove(buf + o, buf + i, run);
			}
			o += run;
			i += run;
			if (ff == NULL) {
				break;
			}
		}
		c = buf[i++];
		switch (s->brk_state) {
		case 0:
			if (c == 0xff) {
				s->brk_state = 1;
			} else {
				buf[o++] = c;
			}
			break;
		case 1:
			if (c == 0xff) {
				buf[o++] = 0xff;
				s->brk_state = 0;
			} else if (c == 0) {
				s->brk_state = 2;
			} else {
				/* not a valid mark: keep both bytes' meaning */
				buf[o++] = c;
				s->brk_state = 0;
			}
			break;
		default:
			if (c == 0) {
				/* BREAK: reported for the whole read; bytes
				 * before it in this read were very recent */
				*brk = 1;
			} else {
				buf[o++] = c;
			}
			s->brk_state = 0;
			break;
		}
	}
	return o;
}

int shim_serial_read(struct shim_serial *s, uint8_t *buf, size_t cap, int *brk)
{
	ssize_t n;

	*brk = 0;
	if (s->fd < 0) {
		return SHIM_EDISCONN;
	}
	for (;;) {
		n = read(s->fd, buf, cap);
		if (n > 0) {
			break;
		}
		if (n == 0) {
			/* pty master after the last slave close, or a tty
			 * hung up */
			return SHIM_EDISCONN;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN) {
			return 0;
		}
		/* EIO: pty peer gone; ENXIO/ENODEV: USB adapter unplugged */
		return SHIM_EDISCONN;
	}
	if (!s->is_pty) {
		size_t o = shim_serial_unmark(s, buf, (size_t)n, brk);

		return (int)o;
	}
	return (int)n;
}

int shim_serial_write(struct shim_serial *s, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (s->fd < 0) {
		return SHIM_EDISCONN;
	}
	if (len > INT_MAX) {
		len = INT_MAX;
	}
	for (;;) {
		n = write(s->fd, buf, len);
		if (n >= 0) {
			return (int)n;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN) {
			return 0;
		}
		return SHIM_EDISCONN;
	}
}

int shim_serial_send_break(struct shim_serial *s)
{
	if (s->fd < 0) {
		return SHIM_EDISCONN;
	}
	if (s->is_pty) {
		return SHIM_ENOTSUP;
	}
	if (tcsendbreak(s->fd, 0) < 0) {
		return shim_err_from_errno(errno);
	}
	return 0;
}

void shim_serial_flush_input(struct shim_serial *s)
{
	uint8_t junk[1024];
	ssize_t n;
	int i;

	if (s->fd >= 0) {
		tcflush(s->fd, TCIFLUSH);
		/* Whatever the line discipline had already passed on is read
		 * and dropped too (bounded: a flood cannot hold the loop). */
		for (i = 0; i < 64; i++) {
			n = read(s->fd, junk, sizeof(junk));
			if (n <= 0) {
				break;
			}
		}
		shim_memzero(junk, sizeof(junk));
	}
	s->brk_state = 0;
}

void shim_serial_flush_output(struct shim_serial *s)
{
	if (s->fd >= 0) {
		tcflush(s->fd, TCOFLUSH);
	}
}

int shim_serial_set_dtr(struct shim_serial *s, int on)
{
	int bit = TIOCM_DTR;

	if (s->fd < 0) {
		return SHIM_EDISCONN;
	}
	if (s->is_pty) {
		return SHIM_ENOTSUP;
	}
	if (ioctl(s->fd, on ? TIOCMBIS : TIOCMBIC, &bit) < 0) {
		return errno == ENOTTY || errno == EINVAL ? SHIM_ENOTSUP :
							    shim_err_from_errno(errno);
	}
	return 0;
}

int shim_serial_alive(struct shim_serial *s)
{
	struct termios t;
	struct stat st;

	if (s->fd < 0) {
		return 0;
	}
	if (s->is_pty) {
		return 1;
	}
	/* A USB adapter that was pulled leaves a descriptor that fails
	 * every terminal call, and its device node is gone. */
	if (tcgetattr(s->fd, &t) < 0) {
		return 0;
	}
	if (stat(s->path, &st) < 0) {
		return 0;
	}
	return 1;
}

int shim_serial_presence(struct shim_serial *s)
{
	int bits = 0;

	if (s->cfg.presence == SHIM_PRESENCE_NONE || s->is_pty) {
		return 1;
	}
	if (s->fd < 0 || ioctl(s->fd, TIOCMGET, &bits) < 0) {
		return 0;
	}
	if (s->cfg.presence == SHIM_PRESENCE_DCD) {
		return (bits & TIOCM_CAR) != 0;
	}
	return (bits & TIOCM_DSR) != 0;
}

int shim_serial_pty_check_open(struct shim_serial *s)
{
	union {
		struct inotify_event ev;
		char buf[sizeof(struct inotify_event) + NAME_MAX + 1];
	} u;
	ssize_t n;
	int opened = 0;

	if (s->watch_fd < 0) {
		return 0;
	}
	for (;;) {
		n = read(s->watch_fd, &u, sizeof(u));
		if (n <= 0) {
			break;
		}
		opened = 1;
	}
	if (opened) {
		s->peer_open = 1;
	}
	return opened;
}

int shim_serial_pty_renew(struct shim_serial *s)
{
	if (!s->is_pty) {
		return SHIM_EINVAL;
	}
	close_pty(s);
	return open_pty(s);
}
