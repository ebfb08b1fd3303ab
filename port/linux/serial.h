/*
 * Serial endpoints on Linux: tty devices configured through termios, and
 * "pty:/path" endpoints for which a pseudo-terminal is created and a link
 * to its peer (the slave side) is put at /path.
 *
 * A tty is opened exclusively (TIOCEXCL) in raw mode with the configured
 * line settings, read back after tcsetattr; HUPCL is cleared and modem
 * lines are not toggled, so opening does not reset the device; the
 * original settings are restored on close.
 *
 * A pty endpoint notices when its peer is opened (inotify on the slave
 * node) and closed (POLLHUP on the master). After a hang-up the pty is
 * replaced by a fresh one linked at the same path, so the next program can
 * connect there.
 */
#ifndef SHIM_PORT_LINUX_SERIAL_H
#define SHIM_PORT_LINUX_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "port.h"

#define SHIM_SERIAL_PTY_PREFIX "pty:"

struct shim_serial {
	/* public, read-only */
	int fd;            /* tty or pty master; -1 when closed */
	int is_pty;
	int watch_fd;      /* pty: inotify descriptor, readable on peer open */
	int peer_open;     /* pty: the peer has the slave open */
	char path[512];    /* device path, or the pty link path */
	char pty_name[64]; /* pty: /dev/pts/N */
	struct shim_serial_cfg cfg;
	/* private */
	int brk_state;     /* PARMRK decoding state */
	int have_orig;
	unsigned char orig[256]; /* saved struct termios */
};

/* Parses "pty:/path" (returns 1 and the path) or a device path (0). */
int shim_serial_is_pty_spec(const char *spec, const char **path);

/*
 * Opens the endpoint named by spec with the line settings cfg. Missing
 * device: SHIM_ENOENT; busy (another program holds it exclusively):
 * SHIM_EACCES; settings the device does not take: SHIM_ENOTSUP.
 */
int shim_serial_open(struct shim_serial *s, const char *spec,
		     const struct shim_serial_cfg *cfg);

/* Restores the saved settings, closes, and removes a pty link. */
void shim_serial_close(struct shim_serial *s);

/*
 * Reads up to cap bytes without blocking. Returns the count (0 = nothing
 * now) or SHIM_EDISCONN on hang-up/device loss. *brk is set to 1 when a
 * BREAK condition was received before the returned bytes (ttys only).
 */
int shim_serial_read(struct shim_serial *s, uint8_t *buf, size_t cap,
		     int *brk);

/* Undoes the PARMRK marking of bytes read from a tty, in place, keeping
 * state across calls: \377\377 is a \377 byte, \377\0\0 a BREAK (sets
 * *brk), \377\0 X a byte X received with a parity or framing error.
 * Returns the number of data bytes left in buf. */
size_t shim_serial_unmark(struct shim_serial *s, uint8_t *buf, size_t n,
			  int *brk);

/* Writes without blocking; returns the count taken (0 when full) or
 * SHIM_EDISCONN. */
int shim_serial_write(struct shim_serial *s, const uint8_t *buf, size_t len);

/* Sends a BREAK (tcsendbreak); SHIM_ENOTSUP on a pty. */
int shim_serial_send_break(struct shim_serial *s);

/* Discards input received but not yet read. */
void shim_serial_flush_input(struct shim_serial *s);

/* Discards output written but not yet sent on the line (tcflush). */
void shim_serial_flush_output(struct shim_serial *s);

/* Raises (on = 1) or drops (on = 0) DTR. SHIM_ENOTSUP on a pty or a line
 * without modem control. */
int shim_serial_set_dtr(struct shim_serial *s, int on);

/* 1 while the endpoint is usable: a tty whose device node is still there
 * and still answers terminal calls (a pulled USB adapter does not); a pty
 * endpoint always (its peer may open it later). */
int shim_serial_alive(struct shim_serial *s);

/*
 * Technician presence from the modem lines (DCD or DSR, as configured):
 * 1 present, 0 absent. Always 1 for SHIM_PRESENCE_NONE.
 */
int shim_serial_presence(struct shim_serial *s);

/* pty: consumes inotify events; returns 1 when the peer opened the slave. */
int shim_serial_pty_check_open(struct shim_serial *s);

/* pty: replaces the pty after a hang-up with a fresh one at the same link
 * path. */
int shim_serial_pty_renew(struct shim_serial *s);

#endif
