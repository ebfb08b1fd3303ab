/*
 * The session controller driven by an attacker who owns the technician
 * line, the device line and the timing: the input is a script of loop
 * events (bytes from either side, hang-ups, lines that stall, a recorder
 * that pushes back or fails, time passing, tamper, admin commands), and
 * one event that types a valid code, so that sessions open and the relay
 * is explored too. Invariants checked after every step:
 *  - a byte reaches the device only in OPEN, only after the recorder took
 *    it (bytes written <= bytes recorded), and never during the grace;
 *  - outside OPEN nothing is held for either line;
 *  - the controller's buffers never exceed their bounds (ASan).
 * Real gate, clock trust and HMAC (mbedTLS); in-memory store.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base32.h"
#include "clock.h"
#include "controller.h"
#include "err.h"
#include "gate.h"
#include "otp.h"
#include "port_linux.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 1800000000LL

static struct shim_linux_port lp;
static int64_t now_ns;
static struct shim_technician techs[2];
static uint8_t secret[SHIM_SECRET_MAX];
static size_t secret_len;
static uint8_t scratch[65536];
static uint8_t blobs[2][4096];
static size_t blob_len[2];
static struct shim_ctl ctl;
static struct shim_gate gate;
static struct shim_clock clk;

static struct {
	int tech_full;      /* technician line takes nothing */
	int dev_full;
	int tech_gone;      /* writes fail with SHIM_EDISCONN */
	int dev_gone;
	int rec_eagain;     /* recorder pushes back */
	int rec_fail;       /* recorder fails hard */
	uint64_t recorded_in;
	uint64_t written_dev;
	int session;        /* a recording is open */
} f;

static void check(int ok)
{
	if (!ok) {
		__builtin_trap();
	}
}

static int64_t f_clock(void *ctx)
{
	(void)ctx;
	return now_ns;
}

static int slot(const char *name)
{
	return strcmp(name, SHIM_GATE_STATE_NAME) == 0 ? 0 : 1;
}

static int f_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
		  size_t *len)
{
	int s = slot(name);

	(void)ctx;
	*len = blob_len[s];
	if (blob_len[s] == 0) {
		return SHIM_ENOENT;
	}
	if (cap < blob_len[s]) {
		return SHIM_ENOSPC;
	}
	memcpy(buf, blobs[s], blob_len[s]);
	return 0;
}

static int f_save(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
	int s = slot(name);

	(void)ctx;
	if (len > sizeof(blobs[s])) {
		return SHIM_ENOSPC;
	}
	memcpy(blobs[s], buf, len);
	blob_len[s] = len;
	return 0;
}

static int io_write(void *ctx, enum shim_side side, const uint8_t *buf,
		    size_t len)
{
	(void)ctx;
	if (side == SHIM_SIDE_DEV) {
		check(ctl.state == SHIM_ST_OPEN);
		if (f.dev_gone) {
			return SHIM_EDISCONN;
		}
		if (f.dev_full) {
			return 0;
		}
		if (buf == ctl.cfg.device_logout) {
			/* the logout at session end: recorded as meta */
			return (int)len;
		}
		f.written_dev += len;
		/* the relay's bytes were recorded first */
		check(f.written_dev <= f.recorded_in);
		return (int)len;
	}
	if (f.tech_gone) {
		return SHIM_EDISCONN;
	}
	return f.tech_full ? 0 : (int)(len > 7 ? len - 3 : len);
}

static void io_flush(void *ctx, enum shim_side side)
{
	(void)ctx;
	(void)side;
}

static int io_lost(void *ctx, enum shim_side side)
{
	(void)ctx;
	return side == SHIM_SIDE_DEV ? 0 : 1;
}

static int io_reset(void *ctx, int begin, const char **how)
{
	(void)ctx;
	(void)begin;
	*how = "dtr";
	return 0;
}

static int rec_can_start(void *ctx)
{
	(void)ctx;
	return f.rec_fail ? SHIM_ENOSPC : 0;
}

static int rec_begin(void *ctx, const char *tech, char sid[SHIM_SESSION_ID_MAX])
{
	(void)ctx;
	(void)tech;
	check(!f.session);
	if (f.rec_fail) {
		return SHIM_EIO;
	}
	snprintf(sid, SHIM_SESSION_ID_MAX, "s-%lld", (long long)now_ns);
	f.session = 1;
	return 0;
}

static int rec_traffic(void *ctx, enum shim_rec_dir dir, const uint8_t *buf,
		       size_t len, int64_t wall, int64_t mono)
{
	(void)ctx;
	(void)buf;
	(void)wall;
	(void)mono;
	check(f.session);
	check(len > 0 && len <= SHIM_CTL_RELAY_BUF);
	if (f.rec_fail) {
		return SHIM_EIO;
	}
	if (f.rec_eagain) {
		return SHIM_EAGAIN;
	}
	if (dir == SHIM_DIR_IN) {
		f.recorded_in += len;
	}
	return 0;
}

static int rec_meta(void *ctx, const char *name, const char *detail,
		    int64_t wall, int64_t mono)
{
	(void)ctx;
	(void)name;
	(void)detail;
	(void)wall;
	(void)mono;
	check(f.session);
	return 0;
}

static int rec_end(void *ctx, const char *reason, int64_t wall, int64_t mono)
{
	(void)ctx;
	(void)reason;
	(void)wall;
	(void)mono;
	check(f.session);
	f.session = 0;
	return 0;
}

static int sink_emit(void *ctx, const struct shim_event *ev)
{
	(void)ctx;
	check(ev->name[0] != '\0');
	return 0;
}

static void setup(void)
{
	shim_linux_port_init(&lp, NULL);
	lp.port.store.load = f_load;
	lp.port.store.save = f_save;
	lp.port.clock.wall_ns = f_clock;
	lp.port.clock.mono_ns = f_clock;
	shim_base32_decode("JBSWY3DPEHPK3PXP", 16, secret, sizeof(secret),
			   &secret_len);
}

static void start(void)
{
	struct shim_gate_cfg gcfg;
	struct shim_clock_cfg ccfg;
	struct shim_ctl_cfg cfg;
	struct shim_ctl_io io = {
		.write = io_write, .flush_input = io_flush,
		.flush_output = io_flush, .lost = io_lost,
		.dev_reset = io_reset, .ctx = NULL,
	};
	struct shim_ctl_rec_ops rec = {
		.can_start = rec_can_start, .begin = rec_begin,
		.traffic = rec_traffic, .meta = rec_meta, .end = rec_end,
	};
	struct shim_event_sink_ops sink = { .emit = sink_emit };
	static const uint8_t logout[] = "exit\r";

	memset(&f, 0, sizeof(f));
	blob_len[0] = blob_len[1] = 0;
	now_ns = T0 * 1000000000LL;
	memset(techs, 0, sizeof(techs));
	strcpy(techs[0].id, "alice");
	memcpy(techs[0].secret, secret, secret_len);
	techs[0].secret_len = (uint8_t)secret_len;
	strcpy(techs[1].id, "bob");
	memcpy(techs[1].secret, secret, secret_len);
	techs[1].secret_len = (uint8_t)secret_len;
	shim_clock_cfg_default(&ccfg);
	ccfg.min_time = 1700000000LL;
	check(shim_clock_init(&clk, &ccfg, &lp.port) == 0);
	shim_gate_cfg_default(&gcfg);
	check(shim_gate_init(&gate, &gcfg, techs, 2, &lp.port, &clk, scratch,
			     sizeof(scratch)) == 0);
	shim_ctl_cfg_default(&cfg);
	cfg.idle_timeout_ms = 5000;
	cfg.max_duration_ms = 60000;
	cfg.reconnect_grace_ms = 3000;
	cfg.device_reset = SHIM_CTL_RESET_DTR;
	cfg.device_reset_hold_ms = 500;
	cfg.device_logout = logout;
	cfg.device_logout_len = sizeof(logout) - 1;
	cfg.relay_cap = 64;
	check(shim_ctl_init(&ctl, &cfg, &lp.port, &gate, &clk, &io, &rec, &sink,
			    NULL) == 0);
	shim_ctl_device_up(&ctl, 1);
}

static void type_code(const char *id)
{
	char line[64];
	uint32_t code;
	char digits[9];

	shim_totp(&lp.port.crypto, gate.cfg.md, secret, secret_len,
		  now_ns / 1000000000LL, gate.cfg.period, gate.cfg.digits, &code);
	shim_otp_format(code, gate.cfg.digits, digits);
	snprintf(line, sizeof(line), "%s %s\r", id, digits);
	if (shim_ctl_input_room(&ctl, SHIM_SIDE_TECH) >= strlen(line)) {
		shim_ctl_input(&ctl, SHIM_SIDE_TECH, (const uint8_t *)line,
			       strlen(line), 0);
	}
}

static void feed(enum shim_side side, const uint8_t *p, size_t n, int brk)
{
	size_t room = shim_ctl_input_room(&ctl, side);

	if (n > room) {
		n = room;
	}
	shim_ctl_input(&ctl, side, p, n, brk);
}

static void invariants(void)
{
	if (ctl.state != SHIM_ST_OPEN) {
		check(ctl.in.len == 0 && ctl.out.len == 0);
		check(!shim_ctl_wants_output(&ctl, SHIM_SIDE_DEV));
		check(ctl.session_id[0] == '\0');
		check(!f.session);
	} else {
		check(f.session);
		check(ctl.in.len <= ctl.cfg.relay_cap);
		check(ctl.out.len <= ctl.cfg.relay_cap);
	}
	check(ctl.msg_len <= sizeof(ctl.msg));
	check((unsigned)ctl.state < SHIM_ST__COUNT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 0, n;

	if (lp.port.clock.wall_ns == NULL) {
		setup();
	}
	start();
	while (i < size) {
		uint8_t op = data[i++];
		uint8_t arg = i < size ? data[i] : 0;

		switch (op % 20) {
		case 0:
			shim_ctl_connect(&ctl, "fuzz");
			break;
		case 1:
			shim_ctl_hangup(&ctl);
			break;
		case 2:
			shim_ctl_device_up(&ctl, arg & 1);
			i++;
			break;
		case 3:
		case 4:
		case 5:
			/* technician bytes: a length, then the bytes */
			n = arg % 48;
			i++;
			if (n > size - (i < size ? i : size)) {
				n = i < size ? size - i : 0;
			}
			feed(SHIM_SIDE_TECH, data + (i < size ? i : size), n,
			     op % 20 == 5);
			i += n;
			break;
		case 6:
		case 7:
			n = arg % 80;
			i++;
			if (n > size - (i < size ? i : size)) {
				n = i < size ? size - i : 0;
			}
			feed(SHIM_SIDE_DEV, data + (i < size ? i : size), n, 0);
			i += n;
			break;
		case 8:
			/* time passes: up to ~4 minutes, in 1 s steps */
			now_ns += (int64_t)(arg + 1) * 1000000000LL;
			i++;
			shim_ctl_tick(&ctl);
			break;
		case 9:
			now_ns += (int64_t)(arg % 50) * 20000000LL;
			i++;
			shim_ctl_tick(&ctl);
			break;
		case 10:
			shim_ctl_output_ready(&ctl, SHIM_SIDE_TECH);
			shim_ctl_output_ready(&ctl, SHIM_SIDE_DEV);
			break;
		case 11:
			f.tech_full = arg & 1;
			f.dev_full = (arg >> 1) & 1;
			f.tech_gone = (arg >> 2) & 1 && (arg & 0x30) == 0x30;
			f.dev_gone = (arg >> 3) & 1 && (arg & 0xc0) == 0xc0;
			i++;
			break;
		case 12:
			f.rec_eagain = arg & 1;
			f.rec_fail = (arg & 0x0e) == 0x0e;
			i++;
			if (!f.rec_eagain) {
				shim_ctl_rec_ready(&ctl);
			}
			break;
		case 13:
			shim_ctl_estop(&ctl, "case_open", NULL);
			break;
		case 14:
			shim_ctl_estop_cleared(&ctl);
			break;
		case 15:
			(void)shim_ctl_reset_lockout(&ctl, arg & 1 ? "alice" : "x",
						     "fuzz");
			i++;
			break;
		case 16:
			type_code(arg & 1 ? "bob" : "alice");
			i++;
			break;
		case 17:
			shim_ctl_end_session(&ctl, "admin");
			break;
		case 18:
			shim_ctl_rec_failed(&ctl, "fuzz");
			break;
		default:
			if (arg == 0xff) {
				shim_ctl_shutdown(&ctl, "shutdown");
			}
			i++;
			break;
		}
		invariants();
		if (shim_ctl_next_deadline(&ctl) <= now_ns) {
			shim_ctl_tick(&ctl);
			invariants();
		}
	}
	shim_ctl_shutdown(&ctl, "shutdown");
	check(!f.session);
	shim_gate_wipe(&gate);
	return 0;
}
