/*
 * pump-emulator PATH: the service console of an imaginary infusion pump
 * (ExampleMed VIP-3) on a serial path, for the demo and the tests.
 *
 * Like the real devices the shim protects, it has a hard-coded service PIN
 * (4711). After the PIN it takes text commands (help, status, get rate,
 * set rate <ml/h>, history, fwinfo, reboot, logout) and one binary
 * command, a framed firmware-chunk upload that exercises binary
 * pass-through:
 *
 *     STX(0x02) seq(1) len(2, big-endian, <= 1024) payload(len)
 *     crc32(4, big-endian, zlib CRC-32 of the payload)
 *
 * answered by ACK(0x06) seq on a good frame or NAK(0x15) seq on a bad one.
 * A frame starts where a command line would start.
 *
 * The line is used as it is: shimd's pty endpoints are already raw. The
 * console echoes what it reads, as service consoles do.
 *
 * Like a device that logs out when its cable is dropped, the service
 * login ends when the line hangs up (a pty's other side renewed or
 * closed) and, on a serial line with modem control, when DSR or DCD
 * (the shim's DTR through a null-modem cable) drops.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PIN "4711"
#define LINE_MAX_LEN 128
#define FRAME_MAX 1024
#define HISTORY_MAX 16

enum mode { M_PIN, M_MENU, M_FRAME };

struct pump {
	int fd;
	enum mode mode;
	int had_lines;   /* DSR or DCD seen up (serial lines only) */
	char line[LINE_MAX_LEN + 1];
	size_t len;
	int after_cr;
	/* frame */
	uint8_t frame[4 + FRAME_MAX + 4];
	size_t flen;
	/* device state */
	unsigned rate_tenths;
	unsigned chunks;
	uint64_t fw_bytes;
	uint32_t fw_crc;
	char history[HISTORY_MAX][80];
	unsigned nhist;
	int pin_failures;
};

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	size_t i;
	int k;

	crc = ~crc;
	for (i = 0; i < n; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++) {
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
		}
	}
	return ~crc;
}

static void out(struct pump *p, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	ssize_t n;

	while (len > 0) {
		n = write(p->fd, b, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN) {
				struct pollfd pf = { p->fd, POLLOUT, 0 };

				poll(&pf, 1, 1000);
				continue;
			}
			return;
		}
		b += n;
		len -= (size_t)n;
	}
}

static void outs(struct pump *p, const char *s)
{
	out(p, s, strlen(s));
}

static void history_add(struct pump *p, const char *what)
{
	time_t t = time(NULL);
	struct tm tm;
	char ts[32];

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	if (p->nhist == HISTORY_MAX) {
		memmove(p->history[0], p->history[1],
			sizeof(p->history[0]) * (HISTORY_MAX - 1));
		p->nhist--;
	}
	snprintf(p->history[p->nhist++], sizeof(p->history[0]), "%s  %s", ts,
		 what);
}

static void banner(struct pump *p)
{
	outs(p, "\r\nExampleMed VIP-3 Volumetric Infusion Pump\r\n"
		"Service console v3.2 (c) ExampleMed Inc.\r\n"
		"Service PIN: ");
	p->mode = M_PIN;
}

static void prompt(struct pump *p)
{
	outs(p, "svc> ");
}

static void command(struct pump *p, char *cmd)
{
	char buf[256];
	double v;
	char *end;
	unsigned i;

	while (*cmd == ' ') {
		cmd++;
	}
	if (*cmd == '\0') {
		prompt(p);
		return;
	}
	if (strcmp(cmd, "help") == 0) {
		outs(p, "commands: status | get rate | set rate <ml/h> | history |"
			" fwinfo | reboot | logout\r\n"
			"binary: STX seq len16 payload crc32 -> ACK/NAK seq\r\n");
	} else if (strcmp(cmd, "status") == 0) {
		snprintf(buf, sizeof(buf),
			 "STATUS running; rate %u.%u ml/h; infused 143.2 ml; "
			 "battery 87%%; alarms none; firmware 3.2.7\r\n",
			 p->rate_tenths / 10, p->rate_tenths % 10);
		outs(p, buf);
	} else if (strcmp(cmd, "get rate") == 0) {
		snprintf(buf, sizeof(buf), "RATE %u.%u ml/h\r\n",
			 p->rate_tenths / 10, p->rate_tenths % 10);
		outs(p, buf);
	} else if (strncmp(cmd, "set rate ", 9) == 0) {
		errno = 0;
		v = strtod(cmd + 9, &end);
		if (errno != 0 || end == cmd + 9 || *end != '\0' || v < 0.1 ||
		    v > 999.9) {
			outs(p, "ERR rate must be 0.1 to 999.9 ml/h\r\n");
		} else {
			p->rate_tenths = (unsigned)(v * 10.0 + 0.5);
			snprintf(buf, sizeof(buf), "RATE SET %u.%u ml/h\r\n",
				 p->rate_tenths / 10, p->rate_tenths % 10);
			outs(p, buf);
			snprintf(buf, sizeof(buf), "rate set to %u.%u ml/h",
				 p->rate_tenths / 10, p->rate_tenths % 10);
			history_add(p, buf);
		}
	} else if (strcmp(cmd, "history") == 0) {
		for (i = 0; i < p->nhist; i++) {
			outs(p, p->history[i]);
			outs(p, "\r\n");
		}
		snprintf(buf, sizeof(buf), "END %u events\r\n", p->nhist);
		outs(p, buf);
	} else if (strcmp(cmd, "fwinfo") == 0) {
		snprintf(buf, sizeof(buf),
			 "FW chunks %u; bytes %llu; crc32 %08x\r\n", p->chunks,
			 (unsigned long long)p->fw_bytes, p->fw_crc);
		outs(p, buf);
	} else if (strcmp(cmd, "reboot") == 0) {
		outs(p, "Rebooting...\r\n");
		history_add(p, "service reboot");
		banner(p);
		return;
	} else if (strcmp(cmd, "logout") == 0) {
		outs(p, "Bye.\r\n");
		history_add(p, "service logout");
		banner(p);
		return;
	} else {
		outs(p, "ERR unknown command (try help)\r\n");
	}
	prompt(p);
}

static void frame_byte(struct pump *p, uint8_t c)
{
	size_t need;
	uint32_t crc, got;
	uint8_t ans[2];

	p->frame[p->flen++] = c;
	if (p->flen < 3) {
		return;
	}
	need = ((size_t)p->frame[1] << 8 | p->frame[2]);
	if (need > FRAME_MAX) {
		ans[0] = 0x15;
		ans[1] = p->frame[0];
		out(p, ans, 2);
		p->mode = M_MENU;
		p->flen = 0;
		return;
	}
	if (p->flen < 3 + need + 4) {
		return;
	}
	crc = crc32_update(0, p->frame + 3, need);
	got = (uint32_t)p->frame[3 + need] << 24 |
	      (uint32_t)p->frame[4 + need] << 16 |
	      (uint32_t)p->frame[5 + need] << 8 | p->frame[6 + need];
	ans[1] = p->frame[0];
	if (crc == got) {
		ans[0] = 0x06;
		p->chunks++;
		p->fw_bytes += need;
		p->fw_crc = crc32_update(p->fw_crc, p->frame + 3, need);
	} else {
		ans[0] = 0x15;
	}
	out(p, ans, 2);
	p->mode = M_MENU;
	p->flen = 0;
}

static void input(struct pump *p, uint8_t c)
{
	int after_cr = p->after_cr;

	if (p->mode == M_FRAME) {
		frame_byte(p, c);
		return;
	}
	p->after_cr = 0;
	if (p->mode == M_MENU && c == 0x02 && p->len == 0) {
		p->mode = M_FRAME;
		p->flen = 0;
		return;
	}
	if (c == '\n' && after_cr) {
		return;
	}
	if (c == '\r' || c == '\n') {
		p->after_cr = (c == '\r');
		outs(p, "\r\n");
		p->line[p->len] = '\0';
		p->len = 0;
		if (p->mode == M_PIN) {
			if (p->line[0] == '\0') {
				outs(p, "Service PIN: ");
			} else if (strcmp(p->line, PIN) == 0) {
				p->pin_failures = 0;
				outs(p, "Service mode. Type help.\r\n");
				history_add(p, "service login");
				p->mode = M_MENU;
				prompt(p);
			} else {
				p->pin_failures++;
				outs(p, "Wrong PIN\r\nService PIN: ");
			}
		} else {
			command(p, p->line);
		}
		return;
	}
	if (c == 0x08 || c == 0x7f) {
		if (p->len > 0) {
			p->len--;
			outs(p, "\b \b");
		}
		return;
	}
	if (c < 0x20 || c >= 0x7f || p->len >= LINE_MAX_LEN) {
		return;
	}
	p->line[p->len++] = (char)c;
	if (p->mode == M_PIN) {
		outs(p, "*");
	} else {
		out(p, &c, 1);
	}
}

static int open_line(const char *path, int wait_ms)
{
	int fd, waited = 0;

	for (;;) {
		fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0) {
			return fd;
		}
		if (waited >= wait_ms) {
			return -1;
		}
		usleep(100000);
		waited += 100;
	}
}

int main(int argc, char **argv)
{
	struct pump p;
	uint8_t buf[512];
	ssize_t n, i;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: pump-emulator PATH\n"
				"The service console of an emulated infusion pump on "
				"the serial line PATH (service PIN " PIN ").\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&p, 0, sizeof(p));
	p.rate_tenths = 125;
	history_add(&p, "power on");
	p.fd = open_line(argv[1], 10000);
	if (p.fd < 0) {
		fprintf(stderr, "pump-emulator: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	banner(&p);
	for (;;) {
		struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
		int bits, lines_now;

		if (poll(&pfd, 1, 100) == 0) {
			/* modem lines: a drop logs the service user out */
			if (ioctl(p.fd, TIOCMGET, &bits) == 0) {
				lines_now = bits & (TIOCM_DSR | TIOCM_CAR);
				if (p.had_lines && !lines_now && p.mode != M_PIN) {
					history_add(&p, "service logout (line dropped)");
					p.len = 0;
					p.mode = M_PIN;
				}
				p.had_lines = lines_now != 0;
			}
			continue;
		}
		n = read(p.fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			/* The shim went away or renewed the line: reconnect
			 * like a device whose cable was replugged. */
			close(p.fd);
			p.fd = open_line(argv[1], 5000);
			if (p.fd < 0) {
				return 0;
			}
			if (p.mode != M_PIN) {
				history_add(&p, "service logout (line hung up)");
			}
			p.len = 0;
			p.mode = M_PIN;
			banner(&p);
			continue;
		}
		for (i = 0; i < n; i++) {
			input(&p, buf[i]);
		}
	}
}
