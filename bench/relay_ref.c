/*
 * The least a relay must do on shimd's tty lines, for bench_tty.py to
 * compare with: shimd's own serial layer (port/linux/serial.c: the same
 * termios, PARMRK marking so that a BREAK can be told from data, and its
 * undoing), a poll loop and a buffer each way; no gate, no controller, no
 * recording. The difference between it and socat's raw relay is the line
 * discipline's; the difference between shimd and it is shimd's.
 *
 * Usage: relay_ref TECH_TTY DEVICE_TTY   (runs until SIGTERM)
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "serial.h"

#define BUF 4096

struct dir {
	struct shim_serial *from, *to;
	unsigned char buf[BUF];
	size_t len, off;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Moves what can be moved without blocking; -1 when a side is gone. */
static int pump(struct dir *d)
{
	int n, brk;

	for (;;) {
		if (d->off < d->len) {
			n = shim_serial_write(d->to, d->buf + d->off,
					      d->len - d->off);
			if (n < 0) {
				return -1;
			}
			d->off += (size_t)n;
			if (d->off < d->len) {
				return 0;
			}
		}
		d->off = d->len = 0;
		n = shim_serial_read(d->from, d->buf, sizeof(d->buf), &brk);
		if (n < 0) {
			return -1;
		}
		if (n == 0) {
			return 0;
		}
		d->len = (size_t)n;
	}
}

int main(int argc, char **argv)
{
	struct shim_serial_cfg cfg;
	struct shim_serial tech, dev;
	struct dir up, down;
	struct pollfd p[2];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: relay_ref TECH_TTY DEVICE_TTY\n");
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.baud = 115200;
	cfg.data_bits = 8;
	cfg.stop_bits = 1;
	cfg.parity = SHIM_PARITY_NONE;
	cfg.flow = SHIM_FLOW_NONE;
	cfg.presence = SHIM_PRESENCE_NONE;
	memset(&tech, 0, sizeof(tech));
	memset(&dev, 0, sizeof(dev));
	rc = shim_serial_open(&tech, argv[1], &cfg);
	if (rc == 0) {
		rc = shim_serial_open(&dev, argv[2], &cfg);
	}
	if (rc != 0) {
		fprintf(stderr, "relay_ref: %s\n", shim_strerror(rc));
		return 1;
	}
	signal(SIGTERM, on_term);
	memset(&up, 0, sizeof(up));
	memset(&down, 0, sizeof(down));
	up.from = &tech;
	up.to = &dev;
	down.from = &dev;
	down.to = &tech;
	while (!stop) {
		if (pump(&up) < 0 || pump(&down) < 0) {
			break;
		}
		p[0].fd = tech.fd;
		p[0].events = (short)((up.len == 0 ? POLLIN : 0) |
				      (down.len > 0 ? POLLOUT : 0));
		p[1].fd = dev.fd;
		p[1].events = (short)((down.len == 0 ? POLLIN : 0) |
				      (up.len > 0 ? POLLOUT : 0));
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			break;
		}
	}
	shim_serial_close(&tech);
	shim_serial_close(&dev);
	return 0;
}
