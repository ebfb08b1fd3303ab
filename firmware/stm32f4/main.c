/*
 * The shim as STM32F405 firmware: the same core/ session controller as
 * shimd, fed by an MCU loop.
 *
 *   USART1  technician side      USART2  device side
 *   USART3  event line: one RFC 5424 message per line (the SIEM feed)
 *
 * Boot: SysTick and the wall clock, the port (DRBG seeded from the host),
 * the boot count, the provisioning blob (the file named on the
 * semihosting command line, else "provision.bin" in the state directory),
 * the identity key, the clock floor and the gate state, the recorder;
 * then the loop. Any failure before the loop stops the firmware with the
 * gate closed (QEMU exits with an error the launcher reports).
 *
 * The loop: bytes from the UART rings to shim_ctl_input() (no more than
 * shim_ctl_input_room()), shim_ctl_output_ready() when a TX ring has
 * room, shim_ctl_tick() at shim_ctl_next_deadline(), a heartbeat every
 * heartbeat period, the recorder's batch flush, WFI when idle.
 *
 * QEMU's USART shows no presence or hang-up: the technician is connected
 * at the first byte (connect_on_input), and a session ends by the idle
 * timeout or the maximum duration. On a board the presence comes from
 * DCD/DSR on a GPIO (docs/hardware-port.md).
 */
#include <stdarg.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "controller.h"
#include "fmt.h"
#include "heartbeat.h"
#include "port_stm32.h"
#include "provision.h"
#include "rec.h"
#include "regs.h"
#include "semihost.h"
#include "syslog.h"
#include "uart.h"
#include "util.h"

#define FW_BAUD 115200u
#define FW_BLOB_DEFAULT "provision.bin"
#define FW_BOOT_NAME "boot-count"
#define FW_LATCH_NAME "tamper-latch"
#define FW_RECKEY_NAME "record-key"
#define FW_IDENTITY_PEM "identity.pub.pem"
#define FW_RECORDING_PEM "recording.pub.pem"
#define FW_EVENT_LINE 2048
#define FW_CMDLINE 256
/* Bytes to persist the gate state (shim_gate_scratch_size() of the
 * build's lock slots and SHIM_PROVISION_MAX_TECHS; checked at boot). */
#ifndef SHIM_FW_GATE_SCRATCH
#define SHIM_FW_GATE_SCRATCH 8192
#endif

struct fw_sink {
	char shim_id[SHIM_SHIM_ID_MAX];
	uint64_t boot_count;
	uint32_t next;            /* events sent this boot */
	uint32_t dropped;
	struct shim_event ev;     /* the stamped copy */
	char line[FW_EVENT_LINE];
};

static struct shim_stm32_port sp;
static struct shim_provision prov;
static struct shim_technician techs[SHIM_PROVISION_MAX_TECHS];
static uint8_t blob[SHIM_PROV_BLOB_MAX(SHIM_PROVISION_MAX_TECHS)];
static struct shim_clock clk;
static struct shim_gate gate;
static uint8_t gate_scratch[SHIM_FW_GATE_SCRATCH] __attribute__((section(".ccm")));
static struct shim_ctl_rec_ops rec_ops;
static struct shim_ctl ctl;
static struct fw_sink sink;
static struct shim_hb_timer hb;
static struct shim_event loop_ev; /* boot and heartbeat events */
static char cmdline[FW_CMDLINE];
static int ready;
static int64_t boot_mono;

/* ---- console (QEMU's stderr through semihosting) --------------------- */

static void console(const char *a, const char *b)
{
	sh_write0("shim-fw: ");
	sh_write0(a);
	if (b != NULL) {
		sh_write0(b);
	}
	sh_write0("\n");
}

static __attribute__((noreturn)) void die(const char *what, int rc)
{
	console(what, rc < 0 ? shim_strerror(rc) : NULL);
	sh_exit(1);
}

static void hook_log(void *ctx, enum shim_log_level level, const char *line)
{
	static const char *const names[] = { "error: ", "warning: ", "", "" };

	(void)ctx;
	if (level > SHIM_LOG_INFO) {
		return;
	}
	sh_write0("shim-fw: ");
	sh_write0(names[level]);
	sh_write0(line);
	sh_write0("\n");
}

/* ---- event line ------------------------------------------------------ */

static void uart_put_all(struct shim_uart *u, const uint8_t *buf, size_t len,
			 uint32_t *dropped)
{
	unsigned spins = 0;

	while (len > 0) {
		size_t n = shim_uart_write(u, buf, len);

		buf += n;
		len -= n;
		shim_uart_kick(u);
		if (n == 0 && ++spins > 100000u) {
			(*dropped)++;
			return;
		}
	}
}

/* Stamps shim_id and a sequence number that never repeats for this shim
 * (boot count in the high 32 bits, the event's number in this boot in the
 * low 32), signs what asks to be signed and sends one RFC 5424 line. */
static int sink_emit(void *ctx, const struct shim_event *ev)
{
	struct fw_sink *s = ctx;
	struct shim_syslog_opts o;
	size_t len = 0;
	int rc;

	memcpy(&s->ev, ev, sizeof(s->ev));
	memcpy(s->ev.shim_id, s->shim_id, sizeof(s->ev.shim_id));
	s->ev.seq = s->boot_count << 32 | s->next++;
	if (s->ev.sign) {
		/* the line is formatted only after: it holds the canonical text */
		rc = shim_event_sign(&s->ev, &sp.port.crypto, s->line,
				     sizeof(s->line));
		if (rc != 0) {
			return rc;
		}
	}
	memset(&o, 0, sizeof(o));
	o.hostname = s->shim_id;
	o.app_name = "shimd";
	o.facility = -1;
	rc = shim_syslog_rfc5424(&s->ev, &o, s->line, sizeof(s->line) - 1,
				 &len);
	if (rc != 0) {
		return rc;
	}
	s->line[len++] = '\n';
	uart_put_all(shim_uart_get(SHIM_UART_EVT), (const uint8_t *)s->line,
		     len, &s->dropped);
	return 0;
}

static void emit(struct shim_event *ev)
{
	if (ready) {
		shim_ctl_emit(&ctl, ev);
	} else {
		(void)sink_emit(&sink, ev);
	}
}

/* ---- serial lines for the controller --------------------------------- */

static struct shim_uart *side_uart(enum shim_side side)
{
	return shim_uart_get(side == SHIM_SIDE_TECH ? SHIM_UART_TECH :
						      SHIM_UART_DEV);
}

static int io_write(void *ctx, enum shim_side side, const uint8_t *buf,
		    size_t len)
{
	struct shim_uart *u = side_uart(side);
	size_t n;

	(void)ctx;
	n = shim_uart_write(u, buf, len);
	shim_uart_kick(u);
	return (int)n;
}

static void io_flush_input(void *ctx, enum shim_side side)
{
	(void)ctx;
	shim_uart_flush_rx(side_uart(side));
}

static void io_flush_output(void *ctx, enum shim_side side)
{
	(void)ctx;
	shim_uart_flush_tx(side_uart(side));
}

/* A UART has no hang-up to release or renew: the line is ready again at
 * once (with connect_on_input the technician is back at the next byte). */
static int io_lost(void *ctx, enum shim_side side)
{
	(void)ctx;
	(void)side;
	return 1;
}

/* ---- tamper latch ------------------------------------------------------ */

static void hook_latch(void *ctx, const char *event, const char *detail)
{
	const struct shim_store_ops *st = &sp.port.store;
	size_t n = strlen(event);

	(void)ctx;
	(void)detail;
	if (st->save(st->ctx, FW_LATCH_NAME, (const uint8_t *)event, n) != 0) {
		console("cannot persist the emergency-stop latch", NULL);
	}
}

/* ---- boot steps ------------------------------------------------------ */

/* Known answers of the crypto the gate stands on (RFC 2202 and RFC 4231
 * test case 2: key "Jefe"): a library miscompiled for the target stops
 * the firmware before any code is checked. */
static int crypto_selftest(void)
{
	static const uint8_t want1[20] = {
		0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74,
		0x16, 0xd5, 0xf1, 0x84, 0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79,
	};
	static const uint8_t want256[32] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
		0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
		0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	static const char msg[] = "what do ya want for nothing?";
	const struct shim_crypto_ops *c = &sp.port.crypto;
	uint8_t out[SHIM_MD_MAX_LEN];

	if (c->hmac(c->ctx, SHIM_MD_SHA1, (const uint8_t *)"Jefe", 4,
		    (const uint8_t *)msg, sizeof(msg) - 1, out) != 0 ||
	    memcmp(out, want1, sizeof(want1)) != 0) {
		return SHIM_ECRYPTO;
	}
	if (c->hmac(c->ctx, SHIM_MD_SHA256, (const uint8_t *)"Jefe", 4,
		    (const uint8_t *)msg, sizeof(msg) - 1, out) != 0 ||
	    memcmp(out, want256, sizeof(want256)) != 0) {
		return SHIM_ECRYPTO;
	}
	return 0;
}

/* High-water marks of the mbedTLS heap and the stack, to the console
 * when they grow. */
static void report_memory(void)
{
	static size_t last_heap, last_stack;
	size_t heap = shim_stm32_heap_peak();
	size_t stack = shim_stm32_stack_peak();
	char line[96];

	if (heap <= last_heap && stack <= last_stack) {
		return;
	}
	last_heap = heap;
	last_stack = stack;
	shim_fmt(line, sizeof(line), "memory: mbedTLS heap peak %zu of %zu B, "
		 "stack peak %zu of %zu B", heap, shim_stm32_heap_size(),
		 stack, shim_stm32_stack_size());
	console(line, NULL);
}

static uint64_t boot_count_next(int *started_before)
{
	const struct shim_store_ops *st = &sp.port.store;
	uint8_t b[8];
	size_t len = 0;
	uint64_t n = 0;
	int rc;

	rc = st->load(st->ctx, FW_BOOT_NAME, b, sizeof(b), &len);
	if (rc == 0 && len == sizeof(b)) {
		n = shim_get_u64(b);
		*started_before = 1;
	} else if (rc == SHIM_ENOENT) {
		*started_before = 0;
	} else {
		/* Unreadable: the unit has started before; fail closed. */
		*started_before = 1;
		n = 0;
	}
	n++;
	shim_put_u64(b, n);
	rc = st->save(st->ctx, FW_BOOT_NAME, b, sizeof(b));
	if (rc != 0) {
		die("cannot save the boot count: ", rc);
	}
	return n;
}

/* The blob: the file named on the semihosting command line (the first
 * word after the program name), else FW_BLOB_DEFAULT. */
static void load_provision(void)
{
	const char *path = FW_BLOB_DEFAULT;
	char *p;
	long n;
	int fd, rc;

	if (sh_cmdline(cmdline, sizeof(cmdline)) == 0) {
		p = strchr(cmdline, ' ');
		if (p != NULL) {
			while (*p == ' ') {
				p++;
			}
			if (*p != '\0') {
				path = p;
				p = strchr(p, ' ');
				if (p != NULL) {
					*p = '\0';
				}
			}
		}
	}
	fd = sh_open(path, SH_MODE_RB);
	if (fd < 0) {
		console("no provisioning blob at ", path);
		sh_exit(1);
	}
	n = sh_read(fd, blob, sizeof(blob));
	sh_close(fd);
	if (n <= 0) {
		die("cannot read the provisioning blob", 0);
	}
	rc = shim_provision_decode(blob, (size_t)n, &prov, techs,
				   SHIM_PROVISION_MAX_TECHS);
	shim_memzero(blob, sizeof(blob));
	if (rc != 0) {
		console("provisioning blob refused: ",
			shim_provision_reason_str(prov.reason));
		sh_exit(1);
	}
}

/* Writes pub as a PEM SubjectPublicKeyInfo to a host file (for shimctl
 * session verify --identity, and the recording key's holder). */
static int write_pub_pem(const char *name, const uint8_t pub[SHIM_P256_PUB_LEN])
{
	static const uint8_t spki[26] = {
		0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
		0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
		0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
	};
	static const char head[] = "-----BEGIN PUBLIC KEY-----\n";
	static const char tail[] = "-----END PUBLIC KEY-----\n";
	uint8_t der[sizeof(spki) + SHIM_P256_PUB_LEN];
	unsigned char b64[160];
	size_t olen = 0, i;
	int fd, rc = 0;

	memcpy(der, spki, sizeof(spki));
	memcpy(der + sizeof(spki), pub, SHIM_P256_PUB_LEN);
	if (mbedtls_base64_encode(b64, sizeof(b64), &olen, der,
				  sizeof(der)) != 0) {
		return SHIM_ENOSPC;
	}
	fd = sh_open(name, SH_MODE_WB);
	if (fd < 0) {
		return SHIM_EIO;
	}
	if (sh_write(fd, head, sizeof(head) - 1) != (long)sizeof(head) - 1) {
		rc = SHIM_EIO;
	}
	for (i = 0; rc == 0 && i < olen; i += 64) {
		size_t n = olen - i < 64 ? olen - i : 64;

		if (sh_write(fd, b64 + i, n) != (long)n ||
		    sh_write(fd, "\n", 1) != 1) {
			rc = SHIM_EIO;
		}
	}
	if (rc == 0 &&
	    sh_write(fd, tail, sizeof(tail) - 1) != (long)sizeof(tail) - 1) {
		rc = SHIM_EIO;
	}
	sh_close(fd);
	return rc;
}

static void start_clock_and_gate(int started_before)
{
	struct shim_clock_cfg ccfg;
	struct shim_gate_cfg gcfg;
	int rc;

	shim_clock_cfg_default(&ccfg);
	ccfg.max_jump = prov.clock_max_jump ? prov.clock_max_jump :
					      SHIM_CLOCK_MAX_JUMP;
	ccfg.state_required = started_before;
	rc = shim_clock_init(&clk, &ccfg, &sp.port);
	if (rc != 0) {
		console("clock: ", shim_strerror(rc));
	}
	gcfg = prov.gate;
	gcfg.state_required = started_before;
	if (shim_gate_scratch_size(prov.ntechs) > sizeof(gate_scratch)) {
		die("gate scratch too small", 0);
	}
	rc = shim_gate_init(&gate, &gcfg, techs, prov.ntechs, &sp.port, &clk,
			    gate_scratch, sizeof(gate_scratch));
	if (rc != 0) {
		/* The gate refuses every code until an operator resets
		 * its state: fail closed, but keep answering. */
		console("gate state: ", shim_strerror(rc));
	}
}

static void start_recorder(void)
{
	struct shim_ctl_rec_ops *rec = &rec_ops;
	uint8_t pub[SHIM_P256_PUB_LEN];
	int custody = SHIM_REC_CUSTODY_CENTRAL;
	int rc;

	if (prov.has_record_key) {
		memcpy(pub, prov.record_key, sizeof(pub));
	} else {
		/* Local custody: the unit's own recording key, kept in the
		 * store beside the identity key. */
		console("no recording key provisioned: using a local one", NULL);
		custody = SHIM_REC_CUSTODY_LOCAL;
		rc = shim_stm32_local_keypair(&sp, FW_RECKEY_NAME, pub);
		if (rc != 0) {
			die("cannot make the local recording key: ", rc);
		}
		(void)write_pub_pem(FW_RECORDING_PEM, pub);
	}
	rc = shim_fw_rec_init(&sp.port, prov.shim_id, pub, custody, rec);
	if (rc != 0) {
		die("recorder: ", rc);
	}
}

/* A session that a power cut left open is sealed before any new one. */
static void recover_recording(void)
{
	char id[SHIM_SESSION_ID_MAX];
	uint64_t records = 0;
	int rc;

	rc = shim_fw_rec_recover(&sp.port, id, &records);
	if (rc != 0) {
		console("recording recovery failed: ", shim_strerror(rc));
		return;
	}
	if (id[0] == '\0') {
		return;
	}
	console("session had no footer, sealed as power_loss_recovered: ", id);
	if (shim_event_init(&loop_ev, "session_end", SHIM_SEV_WARNING,
			    sp.port.clock.wall_ns(NULL)) == 0) {
		shim_event_add(&loop_ev, "session", id);
		shim_event_add(&loop_ev, "reason", "power_loss_recovered");
		shim_event_add_u64(&loop_ev, "records", records);
		emit(&loop_ev);
	}
}

static void start_controller(void)
{
	static const struct shim_ctl_io io = {
		.write = io_write,
		.flush_input = io_flush_input,
		.flush_output = io_flush_output,
		.lost = io_lost,
	};
	struct shim_event_sink_ops so = { sink_emit, &sink };
	struct shim_ctl_hooks hooks = { hook_log, hook_latch, NULL };
	struct shim_ctl_cfg cfg;
	int rc;

	shim_ctl_cfg_default(&cfg);
	cfg.idle_timeout_ms = prov.idle_timeout_ms;
	cfg.max_duration_ms = prov.max_duration_ms;
	cfg.reconnect_grace_ms = 0;
	cfg.device_reset_hold_ms = prov.device_reset_hold_ms;
	cfg.device_reset = SHIM_CTL_RESET_NONE; /* no DTR in QEMU */
	cfg.device_logout = prov.device_logout_len ? prov.device_logout : NULL;
	cfg.device_logout_len = prov.device_logout_len;
	cfg.on_failure_continue =
		prov.on_failure == SHIM_PROV_ON_FAILURE_CONTINUE;
	cfg.relay_cap = SHIM_CTL_RELAY_BUF;
	cfg.connect_on_input = 1;
	rc = shim_ctl_init(&ctl, &cfg, &sp.port, &gate, &clk, &io, &rec_ops, &so,
			   &hooks);
	if (rc != 0) {
		die("controller: ", rc);
	}
	ready = 1;
	shim_ctl_device_up(&ctl, 1);
}

static void emit_boot(void)
{
	struct shim_event *ev = &loop_ev;

	if (shim_event_init(ev, "boot", SHIM_SEV_NOTICE,
			    sp.port.clock.wall_ns(NULL)) == 0) {
		shim_event_add(ev, "version", SHIM_VERSION);
		shim_event_add(ev, "platform", "stm32f405");
		shim_event_add(ev, "state", shim_state_name(ctl.state));
		shim_event_add_u64(ev, "boot_count", sink.boot_count);
		emit(ev);
	}
}

static void heartbeat(int64_t now_mono)
{
	struct shim_heartbeat_info hi;
	struct shim_clock_report rep;
	struct shim_event *ev = &loop_ev;

	memset(&rep, 0, sizeof(rep));
	(void)shim_clock_check(&clk, &rep);
	shim_ctl_clock_report(&ctl, &rep);
	(void)shim_clock_save(&clk);
	memset(&hi, 0, sizeof(hi));
	hi.boot_count = sink.boot_count;
	hi.uptime_s = (now_mono - boot_mono) / 1000000000LL;
	hi.state = shim_state_name(ctl.state);
	hi.tamper = ctl.state == SHIM_ST_EMERGENCY_STOP;
	hi.session_active = ctl.state == SHIM_ST_OPEN;
	hi.version = SHIM_VERSION;
	hi.period_s = prov.heartbeat_period_ms / 1000u;
	/* The firmware has no factory-test mode: every image is a deployed
	 * build, and its heartbeats say so as shimd's do. */
	if (shim_heartbeat_build(ev, &hi, sp.port.clock.wall_ns(NULL)) == 0 &&
	    shim_event_add(ev, "build", "deployed") == 0) {
		emit(ev);
	}
}

static void relatch(void)
{
	const struct shim_store_ops *st = &sp.port.store;
	char event[64];
	size_t len = 0;

	if (st->load(st->ctx, FW_LATCH_NAME, (uint8_t *)event,
		     sizeof(event) - 1, &len) != 0) {
		return;
	}
	event[len] = '\0';
	shim_ctl_estop(&ctl, event, "latched before this boot");
}

/* ---- the loop -------------------------------------------------------- */

static int pump_in(enum shim_side side)
{
	static uint8_t buf[SHIM_CTL_DIALOGUE_CHUNK];
	struct shim_uart *u = side_uart(side);
	size_t room, n;

	if (shim_uart_rx_avail(u) == 0) {
		return 0;
	}
	room = shim_ctl_input_room(&ctl, side);
	if (room == 0) {
		return 0;
	}
	n = shim_uart_read(u, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n > 0) {
		shim_ctl_input(&ctl, side, buf, n, 0);
	}
	return n > 0;
}

static int pump_out(enum shim_side side)
{
	struct shim_uart *u = side_uart(side);

	shim_uart_kick(u);
	if (shim_ctl_wants_output(&ctl, side) && shim_uart_tx_room(u) > 0) {
		shim_ctl_output_ready(&ctl, side);
		return 1;
	}
	return 0;
}

static void loop(void)
{
	for (;;) {
		int64_t now;
		int busy = 0;
		uint32_t m;
		int rc;

		busy |= pump_in(SHIM_SIDE_TECH);
		busy |= pump_in(SHIM_SIDE_DEV);
		busy |= pump_out(SHIM_SIDE_TECH);
		busy |= pump_out(SHIM_SIDE_DEV);
		shim_uart_kick(shim_uart_get(SHIM_UART_EVT));

		now = sp.port.clock.mono_ns(NULL);
		if (now >= shim_ctl_next_deadline(&ctl)) {
			shim_ctl_tick(&ctl);
		}
		rc = shim_fw_rec_poll(now);
		if (rc != 0) {
			shim_ctl_rec_failed(&ctl, shim_strerror(rc));
		}
		if (shim_hb_timer_fire(&hb, now)) {
			heartbeat(now);
			report_memory();
		}
		if (busy) {
			continue;
		}
		/* Sleep until the next interrupt (SysTick at the latest),
		 * unless one came in since the checks above. */
		m = shim_irq_save();
		if (shim_uart_rx_avail(shim_uart_get(SHIM_UART_TECH)) == 0 &&
		    shim_uart_rx_avail(shim_uart_get(SHIM_UART_DEV)) == 0) {
			__asm__ volatile("wfi");
		}
		shim_irq_restore(m);
	}
}

int main(void)
{
	int started_before = 0;
	int rc;

	shim_stm32_clock_init();
	shim_uart_init(SHIM_UART_TECH, FW_BAUD);
	shim_uart_init(SHIM_UART_DEV, FW_BAUD);
	shim_uart_init(SHIM_UART_EVT, FW_BAUD);

	rc = shim_stm32_port_init(&sp, "shim stm32f405");
	if (rc != 0) {
		die("port: ", rc);
	}
	boot_mono = sp.port.clock.mono_ns(NULL);
	rc = crypto_selftest();
	if (rc != 0) {
		die("crypto self-test failed: ", rc);
	}
	sink.boot_count = boot_count_next(&started_before);
	load_provision();
	memcpy(sink.shim_id, prov.shim_id, sizeof(prov.shim_id));

	rc = shim_stm32_load_identity(&sp);
	if (rc != 0) {
		die("identity key: ", rc);
	}
	{
		uint8_t pub[SHIM_P256_PUB_LEN];

		if (sp.port.crypto.identity_pub(sp.port.crypto.ctx, pub) == 0) {
			(void)write_pub_pem(FW_IDENTITY_PEM, pub);
		}
	}
	start_clock_and_gate(started_before);
	start_recorder();
	start_controller();
	emit_boot();
	recover_recording();
	relatch();
	shim_hb_timer_init(&hb, prov.heartbeat_period_ms / 1000.0,
			   sp.port.clock.mono_ns(NULL));
	console("ready", NULL);
	report_memory();
	loop();
	return 0;
}
