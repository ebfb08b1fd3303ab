/*
 * The session controller on its own: the real gate, clock trust and
 * crypto on a fake clock, and fakes for the two lines, the recorder, the
 * event sink and the log. Every test asserts the technician's exact
 * lines, the events and the order of recorder and line operations; the
 * teardown checks that no log line, event or recorder meta ever held a
 * TOTP code or a secret, and that no transition was refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base32.h"
#include "breakglass.h"
#include "clock.h"
#include "controller.h"
#include "fakes.h"
#include "gate.h"
#include "otp.h"
#include "util.h"

#define T0 1800000000LL /* a TOTP step boundary */
#define NTECH 2
#define CAP 65536
#define MAX_OPS 4096
#define MAX_EVENTS 128
#define MAX_LINES 2048
#define MAX_CODES 64
#define UNLIMITED SIZE_MAX

#define ALICE 0
#define BOB 1

static const char prompt[] =
	"\r\nShim MFA gate. Authenticate as: <technician_id> <totp_code>\r\n> ";
static const char *const secrets_b32[NTECH] = {
	"JBSWY3DPEHPK3PXP", "JFAVAU2GMUKDOMRX",
};

enum op_kind {
	OP_WRITE,
	OP_WRITE_FAIL,
	OP_FLUSH_IN,
	OP_FLUSH_OUT,
	OP_LOST,
	OP_BREAK,
	OP_RESET,
	OP_BEGIN,
	OP_TRAFFIC,
	OP_EAGAIN,
	OP_TRAFFIC_FAIL,
	OP_META,
	OP_END,
};

struct op {
	enum op_kind kind;
	int side;            /* line side, or recorder direction */
	size_t off;          /* into the capture of that side / direction */
	size_t len;
	char name[64];       /* meta name, end reason, reset how */
	char detail[320];
	unsigned saves;      /* state saves made before this op */
};

struct line_cap {
	uint8_t buf[CAP];
	size_t len;
	size_t room;         /* bytes the line takes before it is full */
	int disconn;         /* write returns SHIM_EDISCONN */
	unsigned flush_in;
	unsigned flush_out;
	unsigned lost;
};

struct t {
	struct fake_port fp;
	struct shim_technician techs[NTECH];
	struct shim_gate gate;
	struct shim_gate_cfg gcfg;
	struct shim_clock clock;
	struct shim_clock_cfg ccfg;
	uint8_t *scratch;

	struct shim_ctl ctl;
	struct shim_ctl_cfg cfg;
	struct shim_ctl_io io;
	struct shim_ctl_rec_ops rec;
	struct shim_event_sink_ops sink;
	struct shim_ctl_hooks hooks;

	/* io */
	struct line_cap line[2];
	int lost_ret[2];
	int alive;
	unsigned breaks;
	int resets_begun, resets_ended;
	int reset_rc;

	/* recorder */
	uint8_t rec_buf[2][CAP];
	size_t rec_len[2];
	int can_start_rc;
	int begin_rc;
	unsigned eagain_n;   /* traffic returns SHIM_EAGAIN this many times */
	int traffic_rc;      /* hard traffic failure while set */
	unsigned sessions;
	unsigned traffic_calls;
	int64_t trusted;

	struct op *ops;
	size_t nops;
	struct shim_event *ev;
	size_t nev;
	char (*lines)[320];
	size_t nlines;
	unsigned latches;
	char latch_event[64];
	char codes[MAX_CODES][9];
	size_t ncodes;
	const char *sink_fail; /* events of this name are not durable */
	struct shim_bg bg;
};

/* ---- fakes ---------------------------------------------------------------- */

static struct op *op_add(struct t *t, enum op_kind kind, int side, size_t off,
			 size_t len)
{
	struct op *o;

	assert_true(t->nops < MAX_OPS);
	o = &t->ops[t->nops++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->side = side;
	o->off = off;
	o->len = len;
	o->saves = t->fp.store.saves;
	return o;
}

static int io_write(void *ctx, enum shim_side side, const uint8_t *buf,
		    size_t len)
{
	struct t *t = ctx;
	struct line_cap *l = &t->line[side];
	size_t n = len < l->room ? len : l->room;

	if (l->disconn) {
		op_add(t, OP_WRITE_FAIL, side, l->len, len);
		return SHIM_EDISCONN;
	}
	assert_true(l->len + n <= CAP);
	memcpy(l->buf + l->len, buf, n);
	if (n > 0) {
		op_add(t, OP_WRITE, side, l->len, n);
	}
	l->len += n;
	if (l->room != UNLIMITED) {
		l->room -= n;
	}
	return (int)n;
}

static void io_flush_input(void *ctx, enum shim_side side)
{
	struct t *t = ctx;

	t->line[side].flush_in++;
	op_add(t, OP_FLUSH_IN, side, 0, 0);
}

static void io_flush_output(void *ctx, enum shim_side side)
{
	struct t *t = ctx;

	t->line[side].flush_out++;
	op_add(t, OP_FLUSH_OUT, side, 0, 0);
}

static int io_lost(void *ctx, enum shim_side side)
{
	struct t *t = ctx;

	t->line[side].lost++;
	op_add(t, OP_LOST, side, 0, 0);
	return t->lost_ret[side];
}

static int io_send_break(void *ctx)
{
	struct t *t = ctx;

	t->breaks++;
	op_add(t, OP_BREAK, SHIM_SIDE_DEV, 0, 0);
	return 0;
}

static int io_dev_alive(void *ctx)
{
	return ((struct t *)ctx)->alive;
}

static int io_dev_reset(void *ctx, int begin, const char **how)
{
	struct t *t = ctx;
	struct op *o = op_add(t, OP_RESET, begin, 0, 0);

	*how = "dtr";
	snprintf(o->name, sizeof(o->name), "%s", begin ? "begin" : "end");
	if (t->reset_rc < 0) {
		return t->reset_rc;
	}
	if (begin) {
		t->resets_begun++;
	} else {
		t->resets_ended++;
	}
	return 0;
}

static int rec_can_start(void *ctx)
{
	return ((struct t *)ctx)->can_start_rc;
}

static int rec_begin(void *ctx, const char *technician,
		     char session_id[SHIM_SESSION_ID_MAX])
{
	struct t *t = ctx;
	struct op *o = op_add(t, OP_BEGIN, 0, 0, 0);

	snprintf(o->detail, sizeof(o->detail), "%s", technician);
	if (t->begin_rc < 0) {
		return t->begin_rc;
	}
	t->sessions++;
	snprintf(session_id, SHIM_SESSION_ID_MAX, "sess-%04u", t->sessions);
	return 0;
}

static int rec_traffic(void *ctx, enum shim_rec_dir dir, const uint8_t *buf,
		       size_t len, int64_t wall, int64_t mono)
{
	struct t *t = ctx;

	t->traffic_calls++;
	if (t->eagain_n > 0) {
		t->eagain_n--;
		op_add(t, OP_EAGAIN, dir, t->rec_len[dir], len);
		return SHIM_EAGAIN;
	}
	if (t->traffic_rc < 0) {
		op_add(t, OP_TRAFFIC_FAIL, dir, t->rec_len[dir], len);
		return t->traffic_rc;
	}
	assert_true(t->rec_len[dir] + len <= CAP);
	memcpy(t->rec_buf[dir] + t->rec_len[dir], buf, len);
	op_add(t, OP_TRAFFIC, dir, t->rec_len[dir], len);
	t->rec_len[dir] += len;
	return 0;
}

static int rec_meta(void *ctx, const char *name, const char *detail,
		    int64_t wall, int64_t mono)
{
	struct t *t = ctx;
	struct op *o = op_add(t, OP_META, 0, 0, 0);

	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->detail, sizeof(o->detail), "%s", detail ? detail : "");
	return 0;
}

static int rec_end(void *ctx, const char *reason, int64_t wall, int64_t mono)
{
	struct t *t = ctx;
	struct op *o = op_add(t, OP_END, 0, 0, 0);

	snprintf(o->name, sizeof(o->name), "%s", reason);
	return 0;
}

static void rec_trusted_time(void *ctx, int64_t unix_s)
{
	((struct t *)ctx)->trusted = unix_s;
}

static int sink_emit(void *ctx, const struct shim_event *ev)
{
	struct t *t = ctx;

	assert_true(t->nev < MAX_EVENTS);
	if (t->sink_fail != NULL && strcmp(ev->name, t->sink_fail) == 0) {
		return SHIM_EIO;
	}
	t->ev[t->nev++] = *ev;
	return 0;
}

static void hook_log(void *ctx, enum shim_log_level level, const char *line)
{
	struct t *t = ctx;

	if (t->nlines < MAX_LINES) {
		snprintf(t->lines[t->nlines++], sizeof(t->lines[0]), "%s", line);
	}
}

static void hook_latch(void *ctx, const char *event, const char *detail)
{
	struct t *t = ctx;

	t->latches++;
	snprintf(t->latch_event, sizeof(t->latch_event), "%s", event);
}

/* ---- set-up ------------------------------------------------------------- */

static void set_tech(struct shim_technician *tech, const char *id,
		     const char *b32)
{
	size_t n;

	memset(tech, 0, sizeof(*tech));
	strcpy(tech->id, id);
	assert_int_equal(shim_base32_decode(b32, strlen(b32), tech->secret,
					    sizeof(tech->secret), &n), 0);
	tech->secret_len = (uint8_t)n;
}

/* The gate and the clock as in test_gate.c, with the gate config as the
 * test left it in t->gcfg. */
static void gate_start(struct t *t)
{
	size_t cap = shim_gate_scratch_size(NTECH);

	set_tech(&t->techs[ALICE], "alice@example.org", secrets_b32[ALICE]);
	set_tech(&t->techs[BOB], "bob@example.org", secrets_b32[BOB]);
	(void)shim_clock_init(&t->clock, &t->ccfg, &t->fp.port);
	free(t->scratch);
	t->scratch = malloc(cap);
	assert_non_null(t->scratch);
	assert_int_equal(shim_gate_init(&t->gate, &t->gcfg, t->techs, NTECH,
					&t->fp.port, &t->clock, t->scratch, cap),
			 0);
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->ops = calloc(MAX_OPS, sizeof(*t->ops));
	t->ev = calloc(MAX_EVENTS, sizeof(*t->ev));
	t->lines = calloc(MAX_LINES, sizeof(*t->lines));
	assert_true(t->ops && t->ev && t->lines);
	fake_port_init(&t->fp, T0);
	shim_gate_cfg_default(&t->gcfg);
	shim_clock_cfg_default(&t->ccfg);
	t->ccfg.min_time = 1700000000LL;
	shim_ctl_cfg_default(&t->cfg);
	t->line[0].room = UNLIMITED;
	t->line[1].room = UNLIMITED;
	t->alive = 1;

	t->io = (struct shim_ctl_io){
		.write = io_write,
		.flush_input = io_flush_input,
		.flush_output = io_flush_output,
		.lost = io_lost,
		.send_break = io_send_break,
		.dev_alive = io_dev_alive,
		.dev_reset = io_dev_reset,
		.ctx = t,
	};
	t->rec = (struct shim_ctl_rec_ops){
		.can_start = rec_can_start,
		.begin = rec_begin,
		.traffic = rec_traffic,
		.meta = rec_meta,
		.end = rec_end,
		.trusted_time = rec_trusted_time,
		.ctx = t,
	};
	t->sink = (struct shim_event_sink_ops){ .emit = sink_emit, .ctx = t };
	t->hooks = (struct shim_ctl_hooks){
		.log = hook_log, .latch = hook_latch, .ctx = t,
	};
	*state = t;
	return 0;
}

static int contains(const void *hay, size_t hlen, const void *needle,
		    size_t nlen)
{
	const uint8_t *h = hay;
	size_t i;

	if (nlen == 0 || nlen > hlen) {
		return 0;
	}
	for (i = 0; i + nlen <= hlen; i++) {
		if (memcmp(h + i, needle, nlen) == 0) {
			return 1;
		}
	}
	return 0;
}

/* No secret and no code typed in any test in the log, the events or the
 * recorder's meta records. */
static void assert_no_secret_in(struct t *t, const char *s)
{
	char hex[2 * SHIM_SECRET_MAX + 1];
	size_t i;

	for (i = 0; i < t->ncodes; i++) {
		if (strstr(s, t->codes[i]) != NULL) {
			fail_msg("code %s leaked in \"%s\"", t->codes[i], s);
		}
	}
	for (i = 0; i < NTECH; i++) {
		shim_hex_encode(t->techs[i].secret, t->techs[i].secret_len, hex);
		assert_null(strstr(s, secrets_b32[i]));
		assert_null(strstr(s, hex));
		assert_false(contains(s, strlen(s), t->techs[i].secret,
				      t->techs[i].secret_len));
	}
}

static int teardown(void **state)
{
	struct t *t = *state;
	size_t i, j;

	for (i = 0; i < t->nlines; i++) {
		assert_no_secret_in(t, t->lines[i]);
		/* every transition asked for is in the table */
		if (strstr(t->lines[i], "refuses event") != NULL) {
			fail_msg("refused transition: %s", t->lines[i]);
		}
	}
	for (i = 0; i < t->nev; i++) {
		for (j = 0; j < t->ev[i].nfields; j++) {
			assert_no_secret_in(t, t->ev[i].fields[j].value);
		}
	}
	for (i = 0; i < t->nops; i++) {
		assert_no_secret_in(t, t->ops[i].name);
		assert_no_secret_in(t, t->ops[i].detail);
	}
	if (t->gate.techs != NULL) {
		shim_gate_wipe(&t->gate);
	}
	fake_port_free(&t->fp);
	free(t->scratch);
	free(t->ops);
	free(t->ev);
	free(t->lines);
	free(t);
	return 0;
}

/* Starts the gate and the controller with t->cfg, the device side up. */
static void boot(struct t *t)
{
	gate_start(t);
	assert_int_equal(shim_ctl_init(&t->ctl, &t->cfg, &t->fp.port, &t->gate,
				       &t->clock, &t->io, &t->rec, &t->sink,
				       &t->hooks), 0);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	shim_ctl_device_up(&t->ctl, 1);
}

/* ---- driving -------------------------------------------------------------- */

static int64_t now_mono(struct t *t)
{
	return t->fp.mono_ns;
}

/* Time passes (wall and monotonic together), then the loop's tick. */
static void advance_ms(struct t *t, int64_t ms)
{
	t->fp.wall_ns += ms * 1000000LL;
	t->fp.mono_ns += ms * 1000000LL;
	shim_ctl_tick(&t->ctl);
}

/* Jumps to the next armed deadline and ticks. */
static void run_to_deadline(struct t *t)
{
	int64_t next = shim_ctl_next_deadline(&t->ctl);

	assert_true(next != INT64_MAX);
	assert_true(next >= t->fp.mono_ns);
	t->fp.wall_ns += next - t->fp.mono_ns;
	t->fp.mono_ns = next;
	shim_ctl_tick(&t->ctl);
}

static void remember_code(struct t *t, const char *code)
{
	assert_true(t->ncodes < MAX_CODES);
	snprintf(t->codes[t->ncodes++], sizeof(t->codes[0]), "%s", code);
}

/* A code the gate accepts now for tech: the current step, or the next one
 * when the current one was used. */
static void fresh_code(struct t *t, int tech, char out[9])
{
	uint64_t now_step = (uint64_t)(t->fp.wall_ns / 1000000000LL) / 30;
	uint64_t step = now_step;
	uint32_t code;

	if (t->techs[tech].last_step >= step) {
		step = t->techs[tech].last_step + 1;
	}
	assert_true(step <= now_step + 1);
	assert_int_equal(shim_totp(&t->fp.port.crypto, t->gcfg.md,
				   t->techs[tech].secret,
				   t->techs[tech].secret_len, (int64_t)step * 30,
				   30, t->gcfg.digits, &code), 0);
	shim_otp_format(code, t->gcfg.digits, out);
	remember_code(t, out);
}

/* A code that is not the right one. */
static void wrong_code(struct t *t, int tech, char out[9])
{
	fresh_code(t, tech, out);
	out[0] = out[0] == '9' ? '0' : (char)(out[0] + 1);
}

static void type(struct t *t, const char *s)
{
	shim_ctl_input(&t->ctl, SHIM_SIDE_TECH, (const uint8_t *)s, strlen(s), 0);
}

static void type_line(struct t *t, int tech, const char *code)
{
	char line[256];

	snprintf(line, sizeof(line), "%s %s\r", t->techs[tech].id, code);
	type(t, line);
}

static void dev_says(struct t *t, const void *buf, size_t len)
{
	shim_ctl_input(&t->ctl, SHIM_SIDE_DEV, buf, len, 0);
}

/* What a side received since mark, as a string (binary-safe compare by
 * the callers that need it). */
static void assert_out(struct t *t, int side, size_t mark, const char *want)
{
	size_t got = t->line[side].len - mark;
	char *s = malloc(got + 1);

	assert_non_null(s);
	memcpy(s, t->line[side].buf + mark, got);
	s[got] = '\0';
	if (got != strlen(want) || memcmp(s, want, got) != 0) {
		print_error("side %d got %zu bytes \"%s\"\n", side, got, s);
		free(s);
		fail_msg("want \"%s\"", want);
	}
	free(s);
}

static size_t mark(struct t *t, int side)
{
	return t->line[side].len;
}

/* Connects and checks the prompt. */
static void connect_prompt(struct t *t)
{
	size_t m = mark(t, SHIM_SIDE_TECH);

	shim_ctl_connect(&t->ctl, "test");
	assert_int_equal(shim_ctl_dialogue_open(&t->ctl), 1);
	assert_out(t, SHIM_SIDE_TECH, m, prompt);
}

static int log_has(struct t *t, const char *s)
{
	size_t i;

	for (i = 0; i < t->nlines; i++) {
		if (strstr(t->lines[i], s) != NULL) {
			return 1;
		}
	}
	return 0;
}

static size_t events_named(struct t *t, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < t->nev; i++) {
		n += strcmp(t->ev[i].name, name) == 0;
	}
	return n;
}

/* The last event called name, which must exist. */
static const struct shim_event *last_event(struct t *t, const char *name)
{
	size_t i;

	for (i = t->nev; i > 0; i--) {
		if (strcmp(t->ev[i - 1].name, name) == 0) {
			return &t->ev[i - 1];
		}
	}
	fail_msg("no event %s", name);
	return NULL;
}

static void assert_field(const struct shim_event *ev, const char *k,
			 const char *v)
{
	const char *got = shim_event_get(ev, k);

	if (got == NULL || strcmp(got, v) != 0) {
		fail_msg("event %s: %s is \"%s\", want \"%s\"", ev->name, k,
			 got ? got : "(none)", v);
	}
}

static const struct op *last_op(struct t *t, enum op_kind kind)
{
	size_t i;

	for (i = t->nops; i > 0; i--) {
		if (t->ops[i - 1].kind == kind) {
			return &t->ops[i - 1];
		}
	}
	return NULL;
}

static size_t count_ops(struct t *t, size_t from, enum op_kind kind)
{
	size_t i, n = 0;

	for (i = from; i < t->nops; i++) {
		n += t->ops[i].kind == kind;
	}
	return n;
}

static size_t meta_index(struct t *t, size_t from, const char *name)
{
	size_t i;

	for (i = from; i < t->nops; i++) {
		if (t->ops[i].kind == OP_META && strcmp(t->ops[i].name, name) == 0) {
			return i;
		}
	}
	return SIZE_MAX;
}

/*
 * Every byte written to side dst after op from was recorded (direction
 * dir) before it was written, and is the recorded byte: the writes since
 * from are a prefix of the traffic recorded since from, at each moment.
 */
static void assert_recorded_first(struct t *t, size_t from, int dst,
				  enum shim_rec_dir dir)
{
	size_t i, recorded = 0, written = 0, base = SIZE_MAX;

	for (i = from; i < t->nops; i++) {
		const struct op *o = &t->ops[i];

		if (o->kind == OP_TRAFFIC && o->side == (int)dir) {
			if (base == SIZE_MAX) {
				base = o->off;
			}
			recorded += o->len;
		} else if (o->kind == OP_WRITE && o->side == dst) {
			assert_true(written + o->len <= recorded);
			assert_memory_equal(t->line[dst].buf + o->off,
					    t->rec_buf[dir] + base + written,
					    o->len);
			written += o->len;
		}
	}
}

/* Logs in tech from the prompt; returns the session id's number. */
static void login(struct t *t, int tech)
{
	char code[9], want[512];
	size_t m = mark(t, SHIM_SIDE_TECH);
	unsigned sid = t->sessions + 1;

	fresh_code(t, tech, code);
	type_line(t, tech, code);
	snprintf(want, sizeof(want),
		 "%s %s\r\nAuthenticated as %s; session sess-%04u\r\n",
		 t->techs[tech].id, code, t->techs[tech].id, sid);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
}

/* Boots, connects and logs alice in. */
static void open_session(struct t *t)
{
	boot(t);
	connect_prompt(t);
	login(t, ALICE);
}

/* ---- set-up and the zero value ---------------------------------------------- */

static void assert_refuses_everything(struct t *t)
{
	char code[9];
	size_t nops = t->nops;

	shim_ctl_connect(&t->ctl, "test");
	shim_ctl_device_up(&t->ctl, 1);
	fresh_code(t, ALICE, code);
	type_line(t, ALICE, code);
	dev_says(t, "x", 1);
	shim_ctl_tick(&t->ctl);
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_TECH);
	shim_ctl_rec_ready(&t->ctl);
	shim_ctl_estop_cleared(&t->ctl);
	shim_ctl_connect(&t->ctl, "test");
	type_line(t, ALICE, code);
	shim_ctl_hangup(&t->ctl);
	assert_true(shim_ctl_reset_lockout(&t->ctl, "alice@example.org",
					   "admin") < 0);
	shim_ctl_end_session(&t->ctl, "admin");
	shim_ctl_shutdown(&t->ctl, "shutdown");
	shim_ctl_estop(&t->ctl, "case_opened", NULL);
	assert_int_not_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_TECH), 0);
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_DEV), 0);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl), INT64_MAX);
	/* nothing was done through the ops, nothing reported */
	assert_int_equal(t->nops, nops);
	assert_int_equal(t->sessions, 0);
	assert_int_equal(t->nev, 0);
	assert_int_equal(t->latches, 0);
}

static void test_init_missing_op_refuses_everything(void **state)
{
	struct t *t = *state;
	struct shim_ctl_io io;
	struct shim_ctl_rec_ops rec;
	struct shim_port port;
	int i, rc;

	gate_start(t);
	for (i = 0; i < 11; i++) {
		io = t->io;
		rec = t->rec;
		port = t->fp.port;
		switch (i) {
		case 0:
			io.write = NULL;
			break;
		case 1:
			io.flush_input = NULL;
			break;
		case 2:
			io.flush_output = NULL;
			break;
		case 3:
			io.lost = NULL;
			break;
		case 4:
			rec.can_start = NULL;
			break;
		case 5:
			rec.begin = NULL;
			break;
		case 6:
			rec.traffic = NULL;
			break;
		case 7:
			rec.meta = NULL;
			break;
		case 8:
			rec.end = NULL;
			break;
		case 9:
			port.clock.wall_ns = NULL;
			break;
		default:
			port.clock.mono_ns = NULL;
			break;
		}
		rc = shim_ctl_init(&t->ctl, &t->cfg, &port, &t->gate, &t->clock,
				   &io, &rec, &t->sink, &t->hooks);
		assert_int_equal(rc, SHIM_EINVAL);
		assert_int_equal(t->ctl.state, SHIM_ST_EMERGENCY_STOP);
		assert_refuses_everything(t);
	}
	/* arguments missing */
	assert_int_equal(shim_ctl_init(&t->ctl, NULL, &t->fp.port, &t->gate,
				       &t->clock, &t->io, &t->rec, &t->sink,
				       &t->hooks), SHIM_EINVAL);
	assert_refuses_everything(t);
	assert_int_equal(shim_ctl_init(&t->ctl, &t->cfg, &t->fp.port, NULL,
				       &t->clock, &t->io, &t->rec, &t->sink,
				       &t->hooks), SHIM_EINVAL);
	assert_refuses_everything(t);
	/* a controller never initialised: the zero value */
	memset(&t->ctl, 0, sizeof(t->ctl));
	assert_refuses_everything(t);
	/* the optional ops may be missing */
	io = t->io;
	io.send_break = NULL;
	io.dev_alive = NULL;
	io.dev_reset = NULL;
	assert_int_equal(shim_ctl_init(&t->ctl, &t->cfg, &t->fp.port, &t->gate,
				       &t->clock, &io, &t->rec, NULL, NULL), 0);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
}

/* ---- IDLE / CHALLENGE ------------------------------------------------------- */

static void test_connect_prompts_and_hangup_idles(void **state)
{
	struct t *t = *state;
	size_t m;

	boot(t);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl), INT64_MAX);
	/* typed while nobody is connected (a pty): dropped, no echo */
	type(t, "alice@example.org 123456\r");
	assert_int_equal(t->line[SHIM_SIDE_TECH].len, 0);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);

	connect_prompt(t);
	assert_true(log_has(t, "state IDLE -> CHALLENGE (connect: test)"));
	/* what was typed before the prompt is dropped by the line */
	assert_int_equal(t->line[SHIM_SIDE_TECH].flush_in, 1);
	assert_int_equal(shim_ctl_dialogue_open(&t->ctl), 1);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH),
			 SHIM_CTL_DIALOGUE_CHUNK);

	/* CHALLENGE -> CHALLENGE on a second connect: a fresh prompt */
	type(t, "ali");
	connect_prompt(t);
	assert_true(log_has(t, "state CHALLENGE stays (connect: test)"));
	/* the half line was wiped: only the new line counts */
	m = mark(t, SHIM_SIDE_TECH);
	type(t, "\r");
	{
		char want[256];

		/* an empty line asks for the prompt again */
		snprintf(want, sizeof(want), "\r\n%s", prompt);
		assert_out(t, SHIM_SIDE_TECH, m, want);
		m = mark(t, SHIM_SIDE_TECH);
		type(t, "x\b\r");
		snprintf(want, sizeof(want), "x\b \b\r\n%s", prompt);
		assert_out(t, SHIM_SIDE_TECH, m, want);
	}
	assert_int_equal(t->nev, 0); /* an empty line is no failure */

	shim_ctl_hangup(&t->ctl);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	assert_true(log_has(t, "state CHALLENGE -> IDLE (hangup: technician hung up)"));
	assert_int_equal(t->line[SHIM_SIDE_TECH].lost, 1);
	assert_int_equal(shim_ctl_dialogue_open(&t->ctl), 0);
	m = mark(t, SHIM_SIDE_TECH);
	type(t, "abc\r");
	assert_out(t, SHIM_SIDE_TECH, m, "");
	assert_int_equal(t->nev, 0);
}

static void test_connect_on_input(void **state)
{
	struct t *t = *state;
	size_t m;

	t->cfg.connect_on_input = 1;
	boot(t);
	m = mark(t, SHIM_SIDE_TECH);
	type(t, "\r");
	/* the first byte is the connection; it is not input */
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_out(t, SHIM_SIDE_TECH, m, prompt);
	login(t, ALICE);
}

static void test_good_code_opens_session(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	size_t from, i;
	char code[9], line[256];
	size_t m;

	boot(t);
	connect_prompt(t);
	from = t->nops;
	m = mark(t, SHIM_SIDE_TECH);
	fresh_code(t, ALICE, code);
	/* the bytes after the code in the same read are not session input */
	snprintf(line, sizeof(line), "alice@example.org %s\rrm -rf /\r", code);
	type(t, line);
	snprintf(line, sizeof(line),
		 "alice@example.org %s\r\n"
		 "Authenticated as alice@example.org; session sess-0001\r\n",
		 code);
	assert_out(t, SHIM_SIDE_TECH, m, line);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	assert_true(log_has(t, "state CHALLENGE -> OPEN (auth_ok: code accepted)"));
	assert_int_equal(shim_ctl_dialogue_open(&t->ctl), 0);

	/* recorder: begin with the technician, then the session_start meta */
	for (i = from; t->ops[i].kind != OP_BEGIN; i++) {
		assert_true(i < t->nops);
	}
	assert_string_equal(t->ops[i].detail, "alice@example.org");
	assert_true(meta_index(t, from, "session_start") > i);
	/* stale device output and the rest of the technician's read dropped,
	 * both before the success line is written: a device that answers
	 * once the technician sees it must not lose its answer */
	assert_int_equal(t->line[SHIM_SIDE_DEV].flush_in, 1);
	assert_int_equal(t->line[SHIM_SIDE_TECH].flush_in, 2);
	{
		size_t k, flush_dev = 0, success = 0;
		const char *want = "Authenticated as";

		for (k = from; k < t->nops; k++) {
			const struct op *o = &t->ops[k];

			if (o->kind == OP_FLUSH_IN && o->side == SHIM_SIDE_DEV) {
				flush_dev = k + 1;
			}
			if (o->kind == OP_WRITE && o->side == SHIM_SIDE_TECH &&
			    success == 0 &&
			    memmem(t->line[SHIM_SIDE_TECH].buf + o->off, o->len,
				   want, strlen(want)) != NULL) {
				success = k + 1;
			}
		}
		assert_true(flush_dev > 0 && success > 0);
		assert_true(flush_dev < success);
		/* the replay mark is saved before the success line, the
		 * clock floor after it: off the technician's wait */
		assert_true(t->ops[success - 1].saves > t->ops[from].saves);
		assert_true(t->fp.store.saves > t->ops[success - 1].saves);
		assert_int_equal(shim_clock_floor(&t->clock),
				 t->fp.wall_ns / 1000000000LL);
	}
	{
		/* the echo of a line typed in one read is one write, not one
		 * per byte; then the success line */
		size_t k, writes = 0;

		for (k = from; k < t->nops; k++) {
			writes += t->ops[k].kind == OP_WRITE &&
				  t->ops[k].side == SHIM_SIDE_TECH;
		}
		assert_int_equal(writes, 2);
	}

	assert_int_equal(t->nev, 2);
	ev = &t->ev[0];
	assert_string_equal(ev->name, "auth_ok");
	assert_field(ev, "technician", "alice@example.org");
	assert_field(ev, "drift", "0");
	ev = &t->ev[1];
	assert_string_equal(ev->name, "session_start");
	assert_field(ev, "technician", "alice@example.org");
	assert_field(ev, "session", "sess-0001");

	/* relay room opens once the success line is out */
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH),
			 t->cfg.relay_cap);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV),
			 t->cfg.relay_cap);
}

static void test_bad_code_fail_delay_then_prompt(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char code[9];
	size_t m;
	int64_t t_fail;

	boot(t);
	connect_prompt(t);
	wrong_code(t, ALICE, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, ALICE, code);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_true(log_has(t, "state CHALLENGE stays (auth_fail: bad_code)"));
	{
		char want[128];

		snprintf(want, sizeof(want), "alice@example.org %s\r\nAuth fail\r\n",
			 code);
		assert_out(t, SHIM_SIDE_TECH, m, want);
	}
	ev = last_event(t, "auth_fail");
	assert_field(ev, "technician", "alice@example.org");
	assert_field(ev, "reason", "bad_code");
	assert_field(ev, "failures", "1");
	t_fail = now_mono(t);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl),
			 t_fail + 1000 * 1000000LL);

	/* input during the delay is ignored: no echo, not a line */
	m = mark(t, SHIM_SIDE_TECH);
	fresh_code(t, ALICE, code);
	type_line(t, ALICE, code);
	advance_ms(t, 999);
	assert_out(t, SHIM_SIDE_TECH, m, "");
	assert_int_equal(t->sessions, 0);
	assert_int_equal(events_named(t, "auth_fail"), 1);

	advance_ms(t, 1);
	assert_out(t, SHIM_SIDE_TECH, m, prompt);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl), INT64_MAX);
	/* the code typed during the delay was not spent */
	login(t, ALICE);
}

static void test_unknown_id_gets_the_uniform_answer(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char code[9];
	size_t m;

	boot(t);
	connect_prompt(t);
	fresh_code(t, ALICE, code);
	m = mark(t, SHIM_SIDE_TECH);
	type(t, "mallory ");
	type(t, code);
	type(t, "\r");
	{
		char want[128];

		snprintf(want, sizeof(want), "mallory %s\r\nAuth fail\r\n", code);
		assert_out(t, SHIM_SIDE_TECH, m, want);
	}
	ev = last_event(t, "auth_fail");
	assert_field(ev, "technician", "mallory");
	assert_field(ev, "reason", "bad_user");
	run_to_deadline(t);

	/* a code typed alone is never logged as an ID */
	type(t, code);
	type(t, "\r");
	ev = last_event(t, "auth_fail");
	assert_field(ev, "technician", "(malformed)");
	run_to_deadline(t);
	/* ... nor a code typed first */
	type(t, code);
	type(t, " alice@example.org\r");
	ev = last_event(t, "auth_fail");
	assert_field(ev, "technician", "(malformed)");
}

/*
 * A long ID typed with the code run on (no blank between): one word, so
 * it may hold a code and must not be logged. The claimed ID is cut at
 * SHIM_TECH_ID_MAX for the log; the one-word test has to look at the
 * whole word, not at the cut one, or most of the code reaches the log.
 */
static void test_long_word_with_code_is_not_logged(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char code[9], line[SHIM_TECH_ID_MAX + 32];
	size_t i;

	boot(t);
	connect_prompt(t);
	fresh_code(t, ALICE, code);
	for (i = 0; i < SHIM_TECH_ID_MAX - 5; i++) {
		line[i] = 'a';
	}
	memcpy(line + i, code, 6);
	line[i + 6] = '\r';
	line[i + 7] = '\0';
	type(t, line);
	ev = last_event(t, "auth_fail");
	assert_field(ev, "technician", "(malformed)");
	for (i = 0; i < t->nlines; i++) {
		assert_null(strstr(t->lines[i], "aaaaa"));
	}
}

static void test_per_id_lockout_retry_line(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char code[9];
	size_t m;
	int i;

	boot(t);
	connect_prompt(t);
	for (i = 0; i < 5; i++) {
		wrong_code(t, BOB, code);
		m = mark(t, SHIM_SIDE_TECH);
		type_line(t, BOB, code);
		if (i < 4) {
			char want[128];

			snprintf(want, sizeof(want),
				 "bob@example.org %s\r\nAuth fail\r\n", code);
			assert_out(t, SHIM_SIDE_TECH, m, want);
			assert_int_equal(events_named(t, "lockout"), 0);
		}
		run_to_deadline(t);
	}
	assert_true(contains(t->line[SHIM_SIDE_TECH].buf + m,
			     t->line[SHIM_SIDE_TECH].len - m,
			     "\r\nAuth fail: retry in 300 s\r\n", 29));
	ev = last_event(t, "lockout");
	assert_field(ev, "technician", "bob@example.org");
	assert_field(ev, "seconds", "300");
	ev = last_event(t, "auth_fail");
	assert_field(ev, "failures", "5");
	/* a per-ID lockout is not the shim-wide LOCKED state */
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	/* bob's good code is refused while locked out, with the time left */
	fresh_code(t, BOB, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, BOB, code);
	assert_true(contains(t->line[SHIM_SIDE_TECH].buf + m,
			     t->line[SHIM_SIDE_TECH].len - m,
			     "Auth fail: retry in ", 20));
	ev = last_event(t, "auth_fail");
	assert_field(ev, "reason", "locked_out");
	run_to_deadline(t);
	/* alice is not locked out */
	login(t, ALICE);
	/* an admin reset of bob's lockout while OPEN leaves the session */
	assert_int_equal(shim_ctl_reset_lockout(&t->ctl, "bob@example.org",
						"admin"), 0);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(shim_ctl_reset_lockout(&t->ctl, "carol", "admin"),
			 SHIM_ENOENT);
}

/* A line longer than the editor holds: one failure, the rest of the read
 * dropped, a fresh prompt after the delay. */
static void test_overlong_line_is_a_failure(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char line[SHIM_LINE_MAX + 64], want[SHIM_LINE_MAX + 64];
	size_t m;

	boot(t);
	connect_prompt(t);
	memset(line, 'a', SHIM_LINE_MAX + 40);
	line[SHIM_LINE_MAX + 40] = '\r';
	line[SHIM_LINE_MAX + 41] = '\0';
	m = mark(t, SHIM_SIDE_TECH);
	type(t, line);
	memset(want, 'a', SHIM_LINE_MAX);
	snprintf(want + SHIM_LINE_MAX, sizeof(want) - SHIM_LINE_MAX,
		 "\r\nAuth fail\r\n");
	assert_out(t, SHIM_SIDE_TECH, m, want);
	ev = last_event(t, "auth_fail");
	assert_field(ev, "reason", "line_too_long");
	assert_field(ev, "technician", "");
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	m = mark(t, SHIM_SIDE_TECH);
	run_to_deadline(t);
	assert_out(t, SHIM_SIDE_TECH, m, prompt);
	login(t, ALICE);
}

/* The wall clock jumps while the shim runs: codes are refused with their
 * own line (and unspent), clock_jump goes out; back within the bound, the
 * code works. */
static void test_clock_jump_refuses_codes(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char code[9], want[128];
	size_t m;

	boot(t);
	connect_prompt(t);
	fresh_code(t, ALICE, code);
	t->fp.wall_ns += 3600 * 1000000000LL;
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, ALICE, code);
	snprintf(want, sizeof(want),
		 "alice@example.org %s\r\nAuth fail: shim clock not trusted\r\n",
		 code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	ev = last_event(t, "clock_jump");
	assert_int_equal(ev->priority, 1);
	assert_field(ev, "offset", "3600");
	assert_field(last_event(t, "auth_fail"), "reason", "clock_implausible");
	assert_int_equal(t->techs[ALICE].last_step, 0);
	assert_int_equal(t->trusted, 0);
	run_to_deadline(t);
	t->fp.wall_ns -= 3600 * 1000000000LL;
	login(t, ALICE);
	assert_int_equal(events_named(t, "clock_recovered"), 1);
}

/* ---- LOCKED ------------------------------------------------------------------ */

/* Three failures shim-wide, then the fourth line (alice's good code) is
 * refused by the rate limit: LOCKED. */
static void lock_shim(struct t *t)
{
	const struct shim_event *ev;
	char code[9], want[160];
	size_t m;
	int i;

	t->gcfg.rate_failures = 3;
	t->gcfg.rate_seconds = 60;
	boot(t);
	connect_prompt(t);
	for (i = 0; i < 3; i++) {
		wrong_code(t, BOB, code);
		type_line(t, BOB, code);
		run_to_deadline(t); /* the 1 s fail delay */
	}
	fresh_code(t, ALICE, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, ALICE, code);
	/* failures at T0, T0+1, T0+2; now T0+3: 57 s until the first ages */
	snprintf(want, sizeof(want),
		 "alice@example.org %s\r\nAuth fail: retry in 57 s\r\n", code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_LOCKED);
	assert_true(log_has(t, "state CHALLENGE -> LOCKED (rate_lock: shim-wide failure limit)"));
	ev = last_event(t, "lockout");
	assert_field(ev, "technician", "*");
	assert_field(ev, "seconds", "57");
	ev = last_event(t, "auth_fail");
	assert_field(ev, "reason", "rate_limited");
	assert_int_equal(shim_ctl_next_deadline(&t->ctl),
			 now_mono(t) + 57 * 1000000000LL);
	assert_int_equal(shim_ctl_dialogue_open(&t->ctl), 0);
}

static void test_rate_lock_then_expiry(void **state)
{
	struct t *t = *state;
	size_t m;

	lock_shim(t);
	/* input while LOCKED is dropped: no echo, no failure */
	m = mark(t, SHIM_SIDE_TECH);
	type(t, "bob@example.org 000000\r");
	assert_out(t, SHIM_SIDE_TECH, m, "");
	assert_int_equal(events_named(t, "auth_fail"), 4);
	/* device output never crosses */
	dev_says(t, "hello", 5);
	assert_out(t, SHIM_SIDE_TECH, m, "");

	/* a hang-up and a new connection while LOCKED */
	shim_ctl_hangup(&t->ctl);
	assert_int_equal(t->ctl.state, SHIM_ST_LOCKED);
	shim_ctl_connect(&t->ctl, "test");
	assert_int_equal(t->ctl.state, SHIM_ST_LOCKED);
	assert_out(t, SHIM_SIDE_TECH, m,
		   "\r\nShim locked: too many failures, try later\r\n");

	/* LOCKED -> CHALLENGE at expiry, with a prompt */
	m = mark(t, SHIM_SIDE_TECH);
	advance_ms(t, 56999);
	assert_int_equal(t->ctl.state, SHIM_ST_LOCKED);
	advance_ms(t, 1);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_true(log_has(t, "state LOCKED -> CHALLENGE (unlock: lock expired)"));
	assert_out(t, SHIM_SIDE_TECH, m, prompt);
	/* alice's code was never spent by the rate limit */
	login(t, ALICE);
}

static void test_rate_lock_expiry_with_nobody_there(void **state)
{
	struct t *t = *state;

	lock_shim(t);
	shim_ctl_hangup(&t->ctl);
	run_to_deadline(t);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	assert_true(log_has(t, "state LOCKED -> CHALLENGE (unlock: lock expired)"));
	assert_true(log_has(t, "state CHALLENGE -> IDLE (hangup: technician absent)"));
	connect_prompt(t);
}

static void test_reset_lockout_unlocks(void **state)
{
	struct t *t = *state;
	size_t m;

	lock_shim(t);
	m = mark(t, SHIM_SIDE_TECH);
	assert_int_equal(shim_ctl_reset_lockout(&t->ctl, "bob@example.org",
						"admin"), 0);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_true(log_has(t, "state LOCKED -> CHALLENGE (unlock: admin reset)"));
	assert_true(log_has(t, "admin admin: reset-lockout bob@example.org"));
	assert_out(t, SHIM_SIDE_TECH, m, prompt);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl), INT64_MAX);
}

/* The admin's reset clears the shim-wide window with the state: the next
 * good code opens a session instead of locking the shim again. */
static void test_reset_lockout_clears_the_window(void **state)
{
	struct t *t = *state;
	char code[9];

	lock_shim(t);
	assert_int_equal(shim_ctl_reset_lockout(&t->ctl, "bob@example.org",
						"admin"), 0);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	fresh_code(t, ALICE, code);
	type_line(t, ALICE, code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_false(log_has(t, "failure window not cleared"));
}

/* ---- OPEN -> CHALLENGE / IDLE ------------------------------------------------- */

static void test_session_end_owner_present(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	size_t m, from;
	char want[256];

	open_session(t);
	type(t, "ls\r");
	dev_says(t, "file\r\n", 6);
	from = t->nops;
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_end_session(&t->ctl, "admin");
	snprintf(want, sizeof(want), "\r\nSession sess-0001 ended: admin\r\n%s",
		 prompt);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_true(log_has(t, "state OPEN -> CHALLENGE (session_end: admin)"));
	assert_string_equal(last_op(t, OP_END)->name, "admin");
	/* nothing queued for either line leaves after the end */
	assert_int_equal(count_ops(t, from, OP_FLUSH_OUT), 2);
	ev = last_event(t, "session_end");
	assert_field(ev, "technician", "alice@example.org");
	assert_field(ev, "session", "sess-0001");
	assert_field(ev, "reason", "admin");
	assert_field(ev, "bytes_in", "3");
	assert_field(ev, "bytes_out", "6");
	/* not in OPEN: nothing to end */
	shim_ctl_end_session(&t->ctl, "admin");
	assert_int_equal(events_named(t, "session_end"), 1);
	/* after the end nothing crosses */
	m = mark(t, SHIM_SIDE_TECH);
	dev_says(t, "late", 4);
	assert_out(t, SHIM_SIDE_TECH, m, "");
	login(t, BOB);
}

static void test_hangup_without_grace_ends_to_idle(void **state)
{
	struct t *t = *state;
	size_t m, from;

	open_session(t);
	from = t->nops;
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_hangup(&t->ctl);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	assert_true(log_has(t, "state OPEN -> CHALLENGE (session_end: technician_disconnect)"));
	assert_true(log_has(t, "state CHALLENGE -> IDLE (hangup: technician absent)"));
	/* nobody to tell */
	assert_out(t, SHIM_SIDE_TECH, m, "");
	assert_true(meta_index(t, from, "technician_hangup") <
		    (size_t)(last_op(t, OP_END) - t->ops));
	assert_string_equal(last_op(t, OP_END)->name, "technician_disconnect");
	assert_field(last_event(t, "session_end"), "reason",
		     "technician_disconnect");
	assert_int_equal(t->line[SHIM_SIDE_TECH].lost, 1);
	/* the port is told after the state moved */
	assert_int_equal(t->ops[t->nops - 1].kind, OP_LOST);
}

static void test_tech_write_failure_is_a_hangup(void **state)
{
	struct t *t = *state;

	open_session(t);
	t->line[SHIM_SIDE_TECH].disconn = 1;
	dev_says(t, "data", 4);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	assert_int_equal(t->line[SHIM_SIDE_TECH].lost, 1);
	assert_string_equal(last_op(t, OP_END)->name, "technician_disconnect");
	/* recorded before the write was tried */
	assert_int_equal(t->rec_len[SHIM_DIR_OUT], 4);
}

/* ---- emergency stop ---------------------------------------------------------- */

static void assert_estopped(struct t *t, size_t m, const char *before)
{
	char want[512];
	char code[9];

	snprintf(want, sizeof(want), "%s\r\nEMERGENCY STOP\r\n", before);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_EMERGENCY_STOP);
	assert_int_equal(t->latches, 1);
	assert_string_equal(t->latch_event, "case_opened");
	assert_int_equal(shim_ctl_dialogue_open(&t->ctl), 0);
	/* a second stop reports again but latches once */
	shim_ctl_estop(&t->ctl, "case_opened", "again");
	assert_int_equal(t->latches, 1);
	/* a good code does nothing, a connect hears the stop */
	m = mark(t, SHIM_SIDE_TECH);
	fresh_code(t, BOB, code);
	type_line(t, BOB, code);
	assert_out(t, SHIM_SIDE_TECH, m, "");
	shim_ctl_connect(&t->ctl, "test");
	assert_out(t, SHIM_SIDE_TECH, m, "\r\nEMERGENCY STOP\r\n");
	dev_says(t, "x", 1);
	assert_out(t, SHIM_SIDE_TECH, m, "\r\nEMERGENCY STOP\r\n");
	assert_int_equal(t->ctl.state, SHIM_ST_EMERGENCY_STOP);
	/* the reset: back to the prompt with someone there */
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_estop_cleared(&t->ctl);
	assert_true(log_has(t, "state EMERGENCY_STOP -> IDLE (estop_reset: authorised reset)"));
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_out(t, SHIM_SIDE_TECH, m, prompt);
	/* bob's code was not spent */
	login(t, BOB);
}

static void test_estop_from_idle(void **state)
{
	struct t *t = *state;

	boot(t);
	shim_ctl_estop(&t->ctl, "case_opened", "lid");
	assert_int_equal(t->ctl.state, SHIM_ST_EMERGENCY_STOP);
	assert_true(log_has(t, "state IDLE -> EMERGENCY_STOP (tamper: case_opened)"));
	assert_true(log_has(t, "EMERGENCY STOP: case_opened: lid"));
	assert_int_equal(t->latches, 1);
	/* nobody there: the reset leaves IDLE */
	shim_ctl_estop_cleared(&t->ctl);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	connect_prompt(t);
}

static void test_estop_from_challenge(void **state)
{
	struct t *t = *state;
	size_t m;

	boot(t);
	connect_prompt(t);
	type(t, "ali");
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_estop(&t->ctl, "case_opened", NULL);
	assert_true(log_has(t, "state CHALLENGE -> EMERGENCY_STOP (tamper: case_opened)"));
	assert_estopped(t, m, "");
}

static void test_estop_from_open(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	size_t m;

	open_session(t);
	/* bytes held for the device (it is full) are never forwarded */
	t->line[SHIM_SIDE_DEV].room = 2;
	type(t, "secret-cmd");
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 2);
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_estop(&t->ctl, "case_opened", NULL);
	t->line[SHIM_SIDE_DEV].room = UNLIMITED;
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_DEV);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 2);
	assert_true(log_has(t, "state OPEN -> EMERGENCY_STOP (tamper: case_opened)"));
	assert_string_equal(last_op(t, OP_END)->name, "tamper:case_opened");
	ev = last_event(t, "session_end");
	assert_field(ev, "reason", "tamper:case_opened");
	assert_estopped(t, m, "\r\nSession sess-0001 ended: tamper:case_opened\r\n");
}

static void test_estop_from_locked(void **state)
{
	struct t *t = *state;
	size_t m;

	lock_shim(t);
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_estop(&t->ctl, "case_opened", NULL);
	assert_true(log_has(t, "state LOCKED -> EMERGENCY_STOP (tamper: case_opened)"));
	/* the lock's deadline is gone with it */
	assert_int_equal(shim_ctl_next_deadline(&t->ctl), INT64_MAX);
	assert_out(t, SHIM_SIDE_TECH, m, "\r\nEMERGENCY STOP\r\n");
	assert_int_equal(t->latches, 1);
	shim_ctl_estop_cleared(&t->ctl);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
}

/* ---- the relay ---------------------------------------------------------------- */

static void test_nothing_crosses_before_auth(void **state)
{
	struct t *t = *state;
	char code[9], line[64];
	size_t m;

	boot(t);
	/* IDLE: device output dropped, and nothing to the device */
	dev_says(t, "login: ", 7);
	assert_int_equal(t->line[SHIM_SIDE_TECH].len, 0);
	connect_prompt(t);
	m = mark(t, SHIM_SIDE_TECH);
	dev_says(t, "login: ", 7);
	assert_out(t, SHIM_SIDE_TECH, m, "");
	type(t, "root\r");
	run_to_deadline(t);
	wrong_code(t, ALICE, code);
	type_line(t, ALICE, code);
	run_to_deadline(t);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	assert_int_equal(t->rec_len[SHIM_DIR_IN] + t->rec_len[SHIM_DIR_OUT], 0);
	/* a good code with device output around it */
	dev_says(t, "secret-prompt", 13);
	fresh_code(t, ALICE, code);
	snprintf(line, sizeof(line), "alice@example.org %s\r", code);
	type(t, line);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	assert_false(contains(t->line[SHIM_SIDE_TECH].buf,
			      t->line[SHIM_SIDE_TECH].len, "login", 5));
	assert_false(contains(t->line[SHIM_SIDE_TECH].buf,
			      t->line[SHIM_SIDE_TECH].len, "secret-prompt", 13));
	assert_int_equal(t->rec_len[SHIM_DIR_IN] + t->rec_len[SHIM_DIR_OUT], 0);
}

static void test_every_byte_crosses_both_ways_recorded_first(void **state)
{
	struct t *t = *state;
	uint8_t all[256];
	size_t from, m, i;

	for (i = 0; i < sizeof(all); i++) {
		all[i] = (uint8_t)i;
	}
	open_session(t);
	from = t->nops;
	shim_ctl_input(&t->ctl, SHIM_SIDE_TECH, all, sizeof(all), 0);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 256);
	assert_memory_equal(t->line[SHIM_SIDE_DEV].buf, all, 256);
	assert_int_equal(t->rec_len[SHIM_DIR_IN], 256);
	assert_memory_equal(t->rec_buf[SHIM_DIR_IN], all, 256);
	assert_recorded_first(t, from, SHIM_SIDE_DEV, SHIM_DIR_IN);

	m = mark(t, SHIM_SIDE_TECH);
	dev_says(t, all, sizeof(all));
	assert_int_equal(t->line[SHIM_SIDE_TECH].len - m, 256);
	assert_memory_equal(t->line[SHIM_SIDE_TECH].buf + m, all, 256);
	assert_int_equal(t->rec_len[SHIM_DIR_OUT], 256);
	assert_memory_equal(t->rec_buf[SHIM_DIR_OUT], all, 256);
	assert_recorded_first(t, from, SHIM_SIDE_TECH, SHIM_DIR_OUT);

	/* byte by byte, interleaved, through narrow lines */
	t->line[SHIM_SIDE_DEV].room = 1;
	t->line[SHIM_SIDE_TECH].room = 1;
	m = mark(t, SHIM_SIDE_TECH);
	for (i = 0; i < 256; i++) {
		shim_ctl_input(&t->ctl, SHIM_SIDE_TECH, &all[255 - i], 1, 0);
		dev_says(t, &all[i], 1);
		t->line[SHIM_SIDE_DEV].room = 1;
		t->line[SHIM_SIDE_TECH].room = 1;
	}
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 512);
	for (i = 0; i < 256; i++) {
		assert_int_equal(t->line[SHIM_SIDE_DEV].buf[256 + i], 255 - i);
		assert_int_equal(t->line[SHIM_SIDE_TECH].buf[m + i], i);
	}
	assert_recorded_first(t, from, SHIM_SIDE_DEV, SHIM_DIR_IN);
	assert_recorded_first(t, from, SHIM_SIDE_TECH, SHIM_DIR_OUT);
	shim_ctl_end_session(&t->ctl, "admin");
	assert_field(last_event(t, "session_end"), "bytes_in", "512");
	assert_field(last_event(t, "session_end"), "bytes_out", "512");
}

static void test_recorder_backpressure_holds_input(void **state)
{
	struct t *t = *state;
	size_t m, from;
	int i;

	open_session(t);
	from = t->nops;
	t->eagain_n = 2;
	type(t, "abc");
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	/* both sides stop being read */
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH), 0);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV), 0);
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_DEV), 0);
	/* room reported, still full: nothing written */
	shim_ctl_rec_ready(&t->ctl);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH), 0);
	assert_int_equal(count_ops(t, from, OP_EAGAIN), 2);
	shim_ctl_rec_ready(&t->ctl);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 3);
	assert_memory_equal(t->line[SHIM_SIDE_DEV].buf, "abc", 3);
	assert_int_equal(t->rec_len[SHIM_DIR_IN], 3);
	assert_int_equal(count_ops(t, from, OP_TRAFFIC), 1);
	assert_recorded_first(t, from, SHIM_SIDE_DEV, SHIM_DIR_IN);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH),
			 t->cfg.relay_cap);

	/* the device line asking for more never writes unrecorded bytes */
	t->eagain_n = 3;
	type(t, "def");
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_DEV);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 3);
	for (i = 0; i < 4 && t->line[SHIM_SIDE_DEV].len == 3; i++) {
		shim_ctl_rec_ready(&t->ctl);
	}
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 6);
	assert_int_equal(count_ops(t, from, OP_TRAFFIC), 2);
	assert_recorded_first(t, from, SHIM_SIDE_DEV, SHIM_DIR_IN);

	/* the device side the same way */
	t->eagain_n = 1;
	m = mark(t, SHIM_SIDE_TECH);
	dev_says(t, "out", 3);
	assert_out(t, SHIM_SIDE_TECH, m, "");
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH), 0);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV), 0);
	shim_ctl_rec_ready(&t->ctl);
	assert_out(t, SHIM_SIDE_TECH, m, "out");
	assert_recorded_first(t, from, SHIM_SIDE_TECH, SHIM_DIR_OUT);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV),
			 t->cfg.relay_cap);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH),
			 t->cfg.relay_cap);
}

static void test_partial_writes_complete_on_output_ready(void **state)
{
	struct t *t = *state;
	size_t m, from;

	open_session(t);
	from = t->nops;
	t->line[SHIM_SIDE_DEV].room = 3;
	type(t, "0123456789");
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 3);
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_DEV), 1);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH), 0);
	/* the other direction goes on meanwhile */
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV),
			 t->cfg.relay_cap);
	/* still full: nothing moves */
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_DEV);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 3);
	t->line[SHIM_SIDE_DEV].room = 3;
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_DEV);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 6);
	t->line[SHIM_SIDE_DEV].room = UNLIMITED;
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_DEV);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 10);
	assert_memory_equal(t->line[SHIM_SIDE_DEV].buf, "0123456789", 10);
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_DEV), 0);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH),
			 t->cfg.relay_cap);
	/* recorded once, before the first write */
	assert_int_equal(count_ops(t, from, OP_TRAFFIC), 1);
	assert_recorded_first(t, from, SHIM_SIDE_DEV, SHIM_DIR_IN);

	/* towards the technician */
	t->line[SHIM_SIDE_TECH].room = 3;
	m = mark(t, SHIM_SIDE_TECH);
	dev_says(t, "abcdefgh", 8);
	assert_out(t, SHIM_SIDE_TECH, m, "abc");
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_TECH), 1);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV), 0);
	t->line[SHIM_SIDE_TECH].room = UNLIMITED;
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_TECH);
	assert_out(t, SHIM_SIDE_TECH, m, "abcdefgh");
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_TECH), 0);
	assert_recorded_first(t, from, SHIM_SIDE_TECH, SHIM_DIR_OUT);
}

static void test_success_line_goes_before_relayed_bytes(void **state)
{
	struct t *t = *state;
	char code[9], want[256];
	size_t m;

	boot(t);
	connect_prompt(t);
	fresh_code(t, ALICE, code);
	t->line[SHIM_SIDE_TECH].room = 40; /* the echo and a bit */
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, ALICE, code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	/* the device is not read while the success line waits */
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV), 0);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH), 0);
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_TECH), 1);
	t->line[SHIM_SIDE_TECH].room = UNLIMITED;
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_TECH);
	dev_says(t, "$ ", 2);
	snprintf(want, sizeof(want),
		 "alice@example.org %s\r\n"
		 "Authenticated as alice@example.org; session sess-0001\r\n$ ",
		 code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
}

static void test_recorder_hard_error_ends_session(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char want[256];
	size_t m;

	open_session(t);
	t->traffic_rc = SHIM_EIO;
	m = mark(t, SHIM_SIDE_TECH);
	type(t, "reboot\r");
	/* never relayed unrecorded */
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	snprintf(want, sizeof(want),
		 "\r\nSession sess-0001 ended: recording_failed\r\n%s", prompt);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	ev = last_event(t, "session_end");
	assert_field(ev, "reason", "recording_failed");
	assert_field(ev, "bytes_in", "0");
	assert_string_equal(last_op(t, OP_END)->name, "recording_failed");
	assert_true(log_has(t, "recording failed"));

	/* the device side the same */
	t->traffic_rc = 0;
	login(t, ALICE);
	t->traffic_rc = SHIM_EIO;
	m = mark(t, SHIM_SIDE_TECH);
	dev_says(t, "leak", 4);
	assert_false(contains(t->line[SHIM_SIDE_TECH].buf + m,
			      t->line[SHIM_SIDE_TECH].len - m, "leak", 4));
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_int_equal(events_named(t, "session_end"), 2);
}

static void test_writer_failure_continue_tells_once(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	size_t m;

	t->cfg.on_failure_continue = 1;
	open_session(t);
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_rec_failed(&t->ctl, "No space left on device");
	shim_ctl_rec_failed(&t->ctl, "No space left on device");
	assert_out(t, SHIM_SIDE_TECH, m,
		   "\r\nShim: recording failed; this session is no longer "
		   "fully recorded\r\n");
	assert_int_equal(events_named(t, "recording_failed"), 1);
	ev = last_event(t, "recording_failed");
	assert_field(ev, "session", "sess-0001");
	assert_field(ev, "technician", "alice@example.org");
	assert_field(ev, "reason", "No space left on device");
	assert_field(ev, "on_failure", "continue");
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	type(t, "x");
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 1);
}

/*
 * recording.on_failure: stop. The writer's failure ends the session at
 * once (controller.h: "With on_failure: stop the session ends"), not at
 * the next relayed byte: an idle technician must not keep a session
 * whose recording is gone.
 */
static void test_writer_failure_stop_ends_session(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char want[256];
	size_t m;

	open_session(t);
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_rec_failed(&t->ctl, "input/output error");
	ev = last_event(t, "recording_failed");
	assert_field(ev, "on_failure", "stop");
	assert_field(ev, "reason", "input/output error");
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	snprintf(want, sizeof(want),
		 "\r\nSession sess-0001 ended: recording_failed\r\n%s", prompt);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_field(last_event(t, "session_end"), "reason", "recording_failed");
	assert_int_equal(events_named(t, "recording_failed"), 1);
}

/* ---- deadlines ---------------------------------------------------------------- */

static void test_next_deadline_is_the_earliest(void **state)
{
	struct t *t = *state;
	int64_t t_open;

	t->cfg.idle_timeout_ms = 60000;
	t->cfg.max_duration_ms = 30000;
	t->cfg.reconnect_grace_ms = 10000;
	open_session(t);
	t_open = now_mono(t);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl),
			 t_open + 30000 * 1000000LL);
	shim_ctl_hangup(&t->ctl);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl),
			 t_open + 10000 * 1000000LL);
	run_to_deadline(t);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl), INT64_MAX);
}

static void test_idle_timeout_counts_technician_input_only(void **state)
{
	struct t *t = *state;
	char want[256];
	size_t m;
	int i;

	t->cfg.idle_timeout_ms = 10000;
	open_session(t);
	/* technician input at 8 s pushes the end to 18 s */
	advance_ms(t, 8000);
	type(t, "a");
	/* the device chatters every second: it does not keep it open */
	for (i = 0; i < 9; i++) {
		advance_ms(t, 1000);
		dev_says(t, ".", 1);
		assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	}
	/* 17 s */
	m = mark(t, SHIM_SIDE_TECH);
	advance_ms(t, 999);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	dev_says(t, ".", 1);
	advance_ms(t, 1);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	snprintf(want, sizeof(want),
		 ".\r\nSession sess-0001 ended: idle_timeout\r\n%s", prompt);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_field(last_event(t, "session_end"), "reason", "idle_timeout");
	assert_field(last_event(t, "session_end"), "duration_ms", "18000");
}

static void test_break_counts_as_input_and_is_recorded(void **state)
{
	struct t *t = *state;
	size_t from, i;

	t->cfg.idle_timeout_ms = 10000;
	open_session(t);
	from = t->nops;
	advance_ms(t, 9000);
	shim_ctl_input(&t->ctl, SHIM_SIDE_TECH, NULL, 0, 1);
	assert_int_equal(t->breaks, 1);
	i = meta_index(t, from, "break");
	assert_true(i != SIZE_MAX);
	assert_string_equal(t->ops[i].detail, "technician");
	/* recorded before it was sent */
	assert_int_equal(t->ops[i + 1].kind, OP_BREAK);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	advance_ms(t, 9000);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	/* a BREAK with bytes: both go */
	shim_ctl_input(&t->ctl, SHIM_SIDE_TECH, (const uint8_t *)"q", 1, 1);
	assert_int_equal(t->breaks, 2);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 1);
	/* a BREAK in the dialogue does not reach the device */
	shim_ctl_end_session(&t->ctl, "admin");
	shim_ctl_input(&t->ctl, SHIM_SIDE_TECH, NULL, 0, 1);
	assert_int_equal(t->breaks, 2);
}

static void test_max_duration(void **state)
{
	struct t *t = *state;
	char want[256];
	size_t m;
	int i;

	t->cfg.max_duration_ms = 5000;
	open_session(t);
	for (i = 0; i < 4; i++) {
		advance_ms(t, 1000);
		type(t, "k");
	}
	m = mark(t, SHIM_SIDE_TECH);
	advance_ms(t, 999);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	advance_ms(t, 1);
	snprintf(want, sizeof(want),
		 "\r\nSession sess-0001 ended: max_duration\r\n%s", prompt);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_field(last_event(t, "session_end"), "reason", "max_duration");
	assert_field(last_event(t, "session_end"), "bytes_in", "4");
}

/* ---- reconnect grace ---------------------------------------------------------- */

static void start_grace(struct t *t)
{
	size_t m;

	t->cfg.reconnect_grace_ms = 60000;
	open_session(t);
	type(t, "cmd\r");
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_hangup(&t->ctl);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(t->ctl.grace, 1);
	assert_int_equal(t->line[SHIM_SIDE_TECH].lost, 1);
	assert_true(meta_index(t, 0, "technician_hangup") != SIZE_MAX);
	assert_out(t, SHIM_SIDE_TECH, m, "");
	assert_int_equal(shim_ctl_next_deadline(&t->ctl),
			 now_mono(t) + 60000 * 1000000LL);
}

static void test_grace_holds_device_output_and_resumes(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char code[9], want[512];
	size_t m, from;

	start_grace(t);
	from = t->nops;
	/* device output meanwhile is recorded and held */
	dev_says(t, "result\r\n", 8);
	assert_int_equal(t->rec_len[SHIM_DIR_OUT], 8);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_DEV), 0);
	assert_int_equal(shim_ctl_wants_output(&t->ctl, SHIM_SIDE_TECH), 0);
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_output_ready(&t->ctl, SHIM_SIDE_TECH);
	assert_out(t, SHIM_SIDE_TECH, m, "");

	/* someone connects: the normal prompt, the dialogue is open */
	advance_ms(t, 20000);
	connect_prompt(t);
	assert_int_equal(shim_ctl_dialogue_open(&t->ctl), 1);
	assert_int_equal(shim_ctl_input_room(&t->ctl, SHIM_SIDE_TECH),
			 SHIM_CTL_DIALOGUE_CHUNK);
	/* their input does not reach the device */
	type(t, "ls\r");
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 4);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_true(log_has(t, "state OPEN stays (auth_fail: malformed)"));
	run_to_deadline(t); /* the fail delay */

	/* a wrong code: OPEN -> OPEN, session goes on */
	wrong_code(t, ALICE, code);
	type_line(t, ALICE, code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	run_to_deadline(t);

	/* alice again with a fresh code: resumed, held output follows */
	fresh_code(t, ALICE, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, ALICE, code);
	snprintf(want, sizeof(want),
		 "alice@example.org %s\r\n"
		 "Authenticated as alice@example.org; session sess-0001\r\n"
		 "Session resumed\r\nresult\r\n", code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.grace, 0);
	assert_int_equal(t->sessions, 1);
	assert_int_equal(events_named(t, "session_end"), 0);
	ev = last_event(t, "technician_returned");
	assert_field(ev, "technician", "alice@example.org");
	assert_field(ev, "session", "sess-0001");
	assert_field(ev, "away_ms", "22000");
	ev = last_event(t, "auth_ok");
	assert_field(ev, "session", "sess-0001");
	assert_true(meta_index(t, from, "technician_returned") != SIZE_MAX);
	/* the held bytes: recorded during the absence, written last */
	{
		const struct op *w = last_op(t, OP_WRITE);
		const struct op *r = last_op(t, OP_TRAFFIC);

		assert_int_equal(w->side, SHIM_SIDE_TECH);
		assert_int_equal(w->len, 8);
		assert_memory_equal(t->line[SHIM_SIDE_TECH].buf + w->off,
				    "result\r\n", 8);
		assert_int_equal(r->side, SHIM_DIR_OUT);
		assert_true(r < w);
		assert_int_equal(count_ops(t, from, OP_TRAFFIC), 1);
	}
	/* the relay goes on, the grace deadline is gone */
	type(t, "more");
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 8);
	assert_int_equal(shim_ctl_next_deadline(&t->ctl), INT64_MAX);
}

static void test_grace_other_technician_opens_new_session(void **state)
{
	struct t *t = *state;
	char code[9], want[512];
	size_t m, i_end, i_begin;

	start_grace(t);
	dev_says(t, "alice's output", 14);
	connect_prompt(t);
	fresh_code(t, BOB, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, BOB, code);
	/* bob hears nothing of alice's session, nor sees its output */
	snprintf(want, sizeof(want),
		 "bob@example.org %s\r\n"
		 "Authenticated as bob@example.org; session sess-0002\r\n", code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_field(last_event(t, "session_end"), "session", "sess-0001");
	assert_field(last_event(t, "session_end"), "reason",
		     "technician_disconnect");
	assert_field(last_event(t, "session_start"), "session", "sess-0002");
	/* the old session sealed before the new began */
	i_end = (size_t)(last_op(t, OP_END) - t->ops);
	i_begin = (size_t)(last_op(t, OP_BEGIN) - t->ops);
	assert_true(i_end < i_begin);
	assert_string_equal(t->ops[i_begin].detail, "bob@example.org");
	dev_says(t, "bob's", 5);
	strcat(want, "bob's");
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_true(contains(t->line[SHIM_SIDE_TECH].buf, t->line[SHIM_SIDE_TECH].len,
			     "bob's", 5));
	assert_false(contains(t->line[SHIM_SIDE_TECH].buf,
			      t->line[SHIM_SIDE_TECH].len, "alice's", 7));
}

static void test_grace_expiry_ends_session(void **state)
{
	struct t *t = *state;
	size_t m;

	start_grace(t);
	advance_ms(t, 59999);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	advance_ms(t, 1);
	assert_int_equal(t->ctl.state, SHIM_ST_IDLE);
	assert_field(last_event(t, "session_end"), "reason",
		     "technician_disconnect");
	assert_string_equal(last_op(t, OP_END)->name, "technician_disconnect");

	/* with someone at the prompt when it runs out: the dialogue stays */
	shim_ctl_connect(&t->ctl, "test");
	login(t, ALICE);
	shim_ctl_hangup(&t->ctl);
	connect_prompt(t);
	type(t, "ali");
	m = mark(t, SHIM_SIDE_TECH);
	run_to_deadline(t);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_out(t, SHIM_SIDE_TECH, m, "");
	assert_true(log_has(t, "technician at the prompt keeps the dialogue"));
	type(t, "ce@example.org 1\r");
	assert_field(last_event(t, "auth_fail"), "technician",
		     "alice@example.org");
}

static void test_grace_rate_lock_seals_session(void **state)
{
	struct t *t = *state;
	char code[9];
	int i;

	t->gcfg.rate_failures = 2;
	start_grace(t);
	connect_prompt(t);
	for (i = 0; i < 2; i++) {
		wrong_code(t, BOB, code);
		type_line(t, BOB, code);
		run_to_deadline(t);
	}
	wrong_code(t, BOB, code);
	type_line(t, BOB, code);
	assert_int_equal(t->ctl.state, SHIM_ST_LOCKED);
	assert_field(last_event(t, "session_end"), "reason",
		     "technician_disconnect");
	assert_true(log_has(t, "state OPEN -> CHALLENGE (session_end: technician_disconnect)"));
	assert_true(log_has(t, "state CHALLENGE -> LOCKED"));
}

/* Whoever is at the prompt during the grace leaves again: the session
 * still waits for its technician. */
static void test_grace_stranger_hangs_up(void **state)
{
	struct t *t = *state;

	start_grace(t);
	connect_prompt(t);
	type(t, "bo");
	shim_ctl_hangup(&t->ctl);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(t->ctl.grace, 1);
	assert_int_equal(t->line[SHIM_SIDE_TECH].lost, 2);
	assert_int_equal(events_named(t, "session_end"), 0);
	connect_prompt(t);
	{
		char code[9];
		size_t m = mark(t, SHIM_SIDE_TECH);

		fresh_code(t, ALICE, code);
		type_line(t, ALICE, code);
		assert_true(contains(t->line[SHIM_SIDE_TECH].buf + m,
				     t->line[SHIM_SIDE_TECH].len - m,
				     "Session resumed\r\n", 17));
	}
}

/* Another technician during the grace while the device is reset at every
 * session end: sealing the old session starts the reset, and the new one
 * is refused like any session onto a device being reset. */
static void test_grace_other_technician_waits_for_device_reset(void **state)
{
	struct t *t = *state;
	char code[9], want[256];
	size_t m;

	t->cfg.device_reset = SHIM_CTL_RESET_DTR;
	t->cfg.device_reset_hold_ms = 2000;
	start_grace(t);
	connect_prompt(t);
	fresh_code(t, BOB, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, BOB, code);
	snprintf(want, sizeof(want),
		 "bob@example.org %s\r\nAuth fail: device resetting, try again\r\n",
		 code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_int_equal(t->sessions, 1);
	assert_int_equal(t->resets_begun, 1);
	assert_field(last_event(t, "session_end"), "session", "sess-0001");
	advance_ms(t, 2000);
	assert_int_equal(t->resets_ended, 1);
	login(t, BOB);
}

/* ---- refusals that do not spend the code -------------------------------------- */

static void refused_then_works(struct t *t, const char *answer)
{
	char code[9], want[256];
	size_t m;
	unsigned sessions = t->sessions;
	uint64_t step = t->techs[ALICE].last_step;

	fresh_code(t, ALICE, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, ALICE, code);
	snprintf(want, sizeof(want), "alice@example.org %s\r\n%s", code, answer);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_int_equal(t->sessions, sessions);
	/* the code was not spent */
	assert_int_equal(t->techs[ALICE].last_step, step);
}

static void test_device_not_connected_keeps_the_code(void **state)
{
	struct t *t = *state;

	boot(t);
	shim_ctl_device_up(&t->ctl, 0);
	assert_int_equal(t->line[SHIM_SIDE_DEV].lost, 1);
	connect_prompt(t);
	refused_then_works(t, "Auth fail: device not connected\r\n");
	assert_true(log_has(t, "device not connected"));
	run_to_deadline(t);
	shim_ctl_device_up(&t->ctl, 1);
	login(t, ALICE);
}

static void test_device_vanished_keeps_the_code(void **state)
{
	struct t *t = *state;

	boot(t);
	connect_prompt(t);
	t->alive = 0;
	refused_then_works(t, "Auth fail: device not connected\r\n");
	/* the vanished line was reported to the port */
	assert_int_equal(t->line[SHIM_SIDE_DEV].lost, 1);
	run_to_deadline(t);
	t->alive = 1;
	shim_ctl_device_up(&t->ctl, 1);
	login(t, ALICE);
}

static void test_storage_full_keeps_the_code(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;

	boot(t);
	connect_prompt(t);
	t->can_start_rc = SHIM_ENOSPC;
	refused_then_works(t, "Auth fail: recording storage full\r\n");
	ev = last_event(t, "storage_low");
	assert_field(ev, "reason", "buffer or storage too small");
	assert_int_equal(count_ops(t, 0, OP_BEGIN), 0);
	run_to_deadline(t);
	t->can_start_rc = 0;
	login(t, ALICE);
}

static void test_device_reset_refuses_then_ends_at_hold(void **state)
{
	struct t *t = *state;
	size_t from, i;

	t->cfg.device_reset = SHIM_CTL_RESET_DTR;
	t->cfg.device_reset_hold_ms = 3000;
	open_session(t);
	from = t->nops;
	shim_ctl_end_session(&t->ctl, "admin");
	assert_int_equal(t->resets_begun, 1);
	assert_int_equal(t->resets_ended, 0);
	i = meta_index(t, from, "device_reset");
	assert_true(i != SIZE_MAX);
	assert_string_equal(t->ops[i].detail, "dtr");
	assert_true(i < (size_t)(last_op(t, OP_END) - t->ops));
	assert_int_equal(shim_ctl_next_deadline(&t->ctl),
			 now_mono(t) + 3000 * 1000000LL);
	/* a good code while the device is held in reset is refused unspent */
	advance_ms(t, 1000);
	{
		char code[9], want[256];
		size_t m = mark(t, SHIM_SIDE_TECH);
		uint64_t step = t->techs[BOB].last_step;

		fresh_code(t, BOB, code);
		type_line(t, BOB, code);
		snprintf(want, sizeof(want),
			 "bob@example.org %s\r\nAuth fail: device resetting, "
			 "try again\r\n", code);
		assert_out(t, SHIM_SIDE_TECH, m, want);
		assert_int_equal(t->techs[BOB].last_step, step);
	}
	advance_ms(t, 1999);
	assert_int_equal(t->resets_ended, 0);
	advance_ms(t, 1);
	assert_int_equal(t->resets_ended, 1);
	assert_true(log_has(t, "device reset (dtr) ended after the session"));
	login(t, BOB);
}

static void test_recording_begin_failure_never_opens(void **state)
{
	struct t *t = *state;
	const struct shim_event *ev;
	char code[9], want[256];
	size_t m;

	boot(t);
	connect_prompt(t);
	t->begin_rc = SHIM_EIO;
	fresh_code(t, ALICE, code);
	m = mark(t, SHIM_SIDE_TECH);
	type_line(t, ALICE, code);
	snprintf(want, sizeof(want),
		 "alice@example.org %s\r\nAuth fail: recording unavailable\r\n",
		 code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	ev = last_event(t, "auth_fail");
	assert_field(ev, "technician", "alice@example.org");
	assert_field(ev, "reason", "recording_unavailable");
	assert_int_equal(events_named(t, "auth_ok"), 0);
	assert_int_equal(events_named(t, "session_start"), 0);
	/* nothing relays */
	type(t, "x");
	dev_says(t, "y", 1);
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, 0);
	assert_int_equal(t->rec_len[0] + t->rec_len[1], 0);
	run_to_deadline(t);
	t->begin_rc = 0;
	login(t, ALICE);
}

/* ---- device side at session end and in a session ------------------------------- */

static void test_device_logout_written_and_recorded(void **state)
{
	struct t *t = *state;
	static const uint8_t logout[] = "exit\r";
	size_t from, i, d0;

	t->cfg.device_logout = logout;
	t->cfg.device_logout_len = 5;
	open_session(t);
	type(t, "ls");
	d0 = t->line[SHIM_SIDE_DEV].len;
	from = t->nops;
	shim_ctl_end_session(&t->ctl, "admin");
	assert_int_equal(t->line[SHIM_SIDE_DEV].len, d0 + 5);
	assert_memory_equal(t->line[SHIM_SIDE_DEV].buf + d0, "exit\r", 5);
	i = meta_index(t, from, "device_logout");
	assert_true(i != SIZE_MAX);
	assert_string_equal(t->ops[i].detail, "exit\\x0d");
	/* the queue was flushed before, the footer written after */
	for (; i > from && t->ops[i].kind != OP_FLUSH_OUT; i--) {
	}
	assert_int_equal(t->ops[i].kind, OP_FLUSH_OUT);
	assert_true(meta_index(t, from, "device_logout") <
		    (size_t)(last_op(t, OP_END) - t->ops));
	assert_true(log_has(t, "device logout sent"));
}

static void test_device_write_disconnect_ends_session(void **state)
{
	struct t *t = *state;
	char want[256];
	size_t m;

	open_session(t);
	t->line[SHIM_SIDE_DEV].disconn = 1;
	m = mark(t, SHIM_SIDE_TECH);
	type(t, "x");
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	snprintf(want, sizeof(want),
		 "\r\nSession sess-0001 ended: device_disconnect\r\n%s", prompt);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_field(last_event(t, "session_end"), "reason", "device_disconnect");
	assert_int_equal(t->line[SHIM_SIDE_DEV].lost, 1);
	assert_int_equal(t->ctl.dev_up, 0);
	/* until the port reports the device back, codes are refused unspent */
	refused_then_works(t, "Auth fail: device not connected\r\n");
	run_to_deadline(t);
	shim_ctl_device_up(&t->ctl, 1);
	login(t, ALICE);
}

static void test_device_down_in_session(void **state)
{
	struct t *t = *state;

	open_session(t);
	t->lost_ret[SHIM_SIDE_DEV] = 1; /* a renewed pty: up again at once */
	shim_ctl_device_up(&t->ctl, 0);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_field(last_event(t, "session_end"), "reason", "device_disconnect");
	assert_int_equal(t->ctl.dev_up, 1);
	login(t, BOB);
}

/* ---- shutdown -------------------------------------------------------------------- */

static void test_shutdown_ends_and_opens_nothing(void **state)
{
	struct t *t = *state;
	char code[9], want[256];
	size_t m;

	open_session(t);
	m = mark(t, SHIM_SIDE_TECH);
	shim_ctl_shutdown(&t->ctl, "shutdown");
	snprintf(want, sizeof(want),
		 "\r\nSession sess-0001 ended: shutdown\r\n\r\nShim shutting down\r\n");
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_field(last_event(t, "session_end"), "reason", "shutdown");
	/* no prompt afterwards, and no session either */
	m = mark(t, SHIM_SIDE_TECH);
	fresh_code(t, BOB, code);
	type_line(t, BOB, code);
	shim_ctl_hangup(&t->ctl);
	shim_ctl_connect(&t->ctl, "test");
	type_line(t, BOB, code);
	assert_int_not_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(t->sessions, 1);
	assert_false(contains(t->line[SHIM_SIDE_TECH].buf + m,
			      t->line[SHIM_SIDE_TECH].len - m, "> ", 2));
}

static void test_clock_report_gives_trusted_time(void **state)
{
	struct t *t = *state;
	struct shim_clock_report rep;

	boot(t);
	shim_ctl_clock_report(&t->ctl, NULL);
	assert_int_equal(t->trusted, T0);
	memset(&rep, 0, sizeof(rep));
	rep.jumped = 1;
	rep.wall = T0 + 1000;
	rep.expected = T0;
	shim_ctl_clock_report(&t->ctl, &rep);
	assert_field(last_event(t, "clock_jump"), "offset", "1000");
}


/* ---- break-glass ---------------------------------------------------------------- */

#define BG_SHIM "shim-under-test"

static const uint8_t bg_master[SHIM_BG_KEY_LEN] = { 0x42, 0x17, 0x99 };

/* Boots with a break-glass verifier for BG_SHIM. */
static void bg_boot(struct t *t)
{
	struct shim_bg_key key;

	boot(t);
	memset(&key, 0, sizeof(key));
	snprintf(key.shim_id, sizeof(key.shim_id), "%s", BG_SHIM);
	assert_int_equal(shim_bg_derive(&t->fp.port.crypto, bg_master, BG_SHIM,
					strlen(BG_SHIM), key.key), 0);
	assert_int_equal(shim_bg_key_id(&t->fp.port.crypto, bg_master,
					key.key_id), 0);
	key.loaded = 1;
	assert_int_equal(shim_bg_init(&t->bg, &key, BG_SHIM, &t->fp.port, 0, 0),
			 0);
	shim_ctl_set_breakglass(&t->ctl, &t->bg);
}

/* A code for shim issued at issued_s; its last group (the MAC's end) is
 * remembered so that the teardown finds it in no log, event or meta. */
static void bg_code(struct t *t, const char *shim, const char *tech,
		    int64_t issued_s, unsigned ttl_min, uint16_t nonce,
		    char out[SHIM_BG_TEXT_LEN + 1])
{
	struct shim_bg_code code;
	uint8_t k[SHIM_BG_KEY_LEN];

	memset(&code, 0, sizeof(code));
	code.bound = tech != NULL;
	code.tag = shim_bg_tag(shim, strlen(shim));
	code.nonce = nonce;
	code.issued = (uint32_t)((issued_s - SHIM_BG_EPOCH) / 60);
	code.ttl = (uint16_t)ttl_min;
	assert_int_equal(shim_bg_derive(&t->fp.port.crypto, bg_master, shim,
					strlen(shim), k), 0);
	assert_int_equal(shim_bg_mac(&t->fp.port.crypto, k, shim, strlen(shim),
				     tech, tech ? strlen(tech) : 0, &code,
				     code.mac), 0);
	assert_int_equal(shim_bg_format(&code, out), 0);
	remember_code(t, out + 18);
}

static void bg_type(struct t *t, const char *id, const char *code)
{
	char line[256];

	snprintf(line, sizeof(line), "%s %s\r", id, code);
	type(t, line);
}

static size_t event_index(struct t *t, const char *name, const char *k,
			  const char *v)
{
	size_t i;

	for (i = 0; i < t->nev; i++) {
		const char *got = k ? shim_event_get(&t->ev[i], k) : "";

		if (strcmp(t->ev[i].name, name) == 0 && got != NULL &&
		    (v == NULL || strcmp(got, v) == 0)) {
			return i;
		}
	}
	return SIZE_MAX;
}

static void test_bg_opens_session_with_elevated_audit(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1], want[512];
	const struct shim_event *ev;
	size_t m, used, ce, is, ok;
	const struct op *meta;

	t->cfg.max_duration_ms = 8 * 3600 * 1000;
	t->cfg.bg_max_duration_ms = 3600 * 1000;
	bg_boot(t);
	connect_prompt(t);
	bg_code(t, BG_SHIM, NULL, T0, 30, 0x5a5, code);
	m = mark(t, SHIM_SIDE_TECH);
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	/* a technician who is not enrolled: the typed ID */
	assert_string_equal(t->ctl.tech_id, "vendor.eng");
	snprintf(want, sizeof(want),
		 "vendor.eng %s\r\nAuthenticated as vendor.eng; session sess-0001\r\n"
		 "BREAK-GLASS session %s: recorded, reported to clinical "
		 "engineering and InfoSec; ends in 30 min\r\n",
		 code, t->ctl.bg_serial);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	/* the three reports, in the priority lane, before the session */
	used = event_index(t, "breakglass_used", NULL, NULL);
	ce = event_index(t, "breakglass_notify", "audience", "clinical_engineering");
	is = event_index(t, "breakglass_notify", "audience", "infosec");
	ok = event_index(t, "auth_ok", NULL, NULL);
	assert_true(used != SIZE_MAX && ce != SIZE_MAX && is != SIZE_MAX);
	assert_true(used < ok && ce < ok && is < ok);
	ev = &t->ev[used];
	assert_int_equal(ev->priority, 1);
	assert_int_equal(t->ev[ce].priority, 1);
	assert_int_equal(t->ev[is].priority, 1);
	assert_field(ev, "technician", "vendor.eng");
	assert_field(ev, "serial", t->ctl.bg_serial);
	assert_field(ev, "issuer", t->bg.key.key_id);
	assert_field(ev, "technician_bound", "no");
	assert_field(ev, "clock", "trusted");
	assert_field(last_event(t, "auth_ok"), "factor", "breakglass");
	assert_field(last_event(t, "session_start"), "breakglass", t->ctl.bg_serial);
	/* the recording says so */
	meta = &t->ops[meta_index(t, 0, "breakglass")];
	assert_non_null(strstr(meta->detail, t->ctl.bg_serial));
	assert_non_null(strstr(meta->detail, t->bg.key.key_id));
	assert_true(meta_index(t, 0, "breakglass") > meta_index(t, 0, "session_start"));
	/* its own maximum: the code's 30 minutes, before the hour */
	assert_int_equal(t->ctl.deadline[SHIM_DL_MAX],
			 now_mono(t) + 30LL * 60 * 1000000000LL);
	advance_ms(t, 30LL * 60 * 1000);
	assert_field(last_event(t, "session_end"), "reason", "max_duration");
	assert_field(last_event(t, "session_end"), "breakglass", t->ev[used].fields[1].value);
}

static void test_bg_max_duration_setting_is_shorter(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1];

	t->cfg.bg_max_duration_ms = 600 * 1000;
	bg_boot(t);
	connect_prompt(t);
	bg_code(t, BG_SHIM, NULL, T0, 120, 1, code);
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_int_equal(t->ctl.deadline[SHIM_DL_MAX],
			 now_mono(t) + 600LL * 1000000000LL);
}

/* Each refusal: the uniform line, its own reason, counted as a failure. */
static void bg_refused(struct t *t, const char *id, const char *code,
		       const char *reason, unsigned failures)
{
	char want[256], n[16];
	size_t m = mark(t, SHIM_SIDE_TECH);
	size_t sessions = t->sessions;

	bg_type(t, id, code);
	snprintf(want, sizeof(want), "%s %s\r\nAuth fail\r\n", id, code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->sessions, sessions);
	assert_field(last_event(t, "auth_fail"), "reason", reason);
	snprintf(n, sizeof(n), "%u", failures);
	assert_field(last_event(t, "auth_fail"), "failures", n);
	assert_int_not_equal(t->ctl.state, SHIM_ST_OPEN);
	run_to_deadline(t); /* the fail delay */
}

static void test_bg_refusals_have_precise_reasons(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1], other[SHIM_BG_TEXT_LEN + 1];
	char typo[SHIM_BG_TEXT_LEN + 1];
	struct shim_bg_code c;
	const char *name = "another-shim";
	int i;

	t->gcfg.max_failures = 10;
	bg_boot(t);
	connect_prompt(t);
	/* a typo */
	bg_code(t, BG_SHIM, NULL, T0, 60, 2, code);
	memcpy(typo, code, sizeof(typo));
	typo[2] = typo[2] == 'A' ? 'B' : 'A';
	bg_refused(t, "vendor.eng", typo, "breakglass_mistyped", 1);
	/* a forgery with a good check character */
	assert_int_equal(shim_bg_parse(code, strlen(code), &c), 0);
	c.mac[0] ^= 0x80;
	assert_int_equal(shim_bg_format(&c, typo), 0);
	bg_refused(t, "vendor.eng", typo, "breakglass_bad", 2);
	assert_non_null(shim_event_get(last_event(t, "auth_fail"), "breakglass"));
	/* another shim's code (its tag differs from ours) */
	for (i = 0; shim_bg_tag(name, strlen(name)) ==
		    shim_bg_tag(BG_SHIM, strlen(BG_SHIM)); i++) {
		name = i == 0 ? "shim-b" : "shim-c";
	}
	bg_code(t, name, NULL, T0, 60, 3, other);
	bg_refused(t, "vendor.eng", other, "breakglass_wrong_shim", 3);
	/* expired: issued two hours ago for an hour */
	bg_code(t, BG_SHIM, NULL, T0 - 7200, 60, 4, other);
	bg_refused(t, "vendor.eng", other, "breakglass_expired", 4);
	/* bound to someone else */
	bg_code(t, BG_SHIM, "alice@example.org", T0, 60, 5, other);
	bg_refused(t, "vendor.eng", other, "breakglass_bad", 5);
	/* the good one opens, once */
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	shim_ctl_end_session(&t->ctl, "technician_disconnect");
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	bg_refused(t, "vendor.eng", code, "breakglass_used", 6);
	/* and not for another technician either */
	bg_refused(t, "bob@example.org", code, "breakglass_used", 1);
}

static void test_bg_not_configured_is_a_failure(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1];

	boot(t);
	connect_prompt(t);
	bg_code(t, BG_SHIM, NULL, T0, 60, 2, code);
	bg_refused(t, "vendor.eng", code, "breakglass_not_configured", 1);
}

static void test_bg_notifications_not_durable_gate_stays_closed(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1], want[512];
	size_t m;

	bg_boot(t);
	connect_prompt(t);
	bg_code(t, BG_SHIM, NULL, T0, 60, 7, code);
	t->sink_fail = "breakglass_notify";
	m = mark(t, SHIM_SIDE_TECH);
	bg_type(t, "vendor.eng", code);
	snprintf(want, sizeof(want),
		 "vendor.eng %s\r\nAuth fail\r\nBreak-glass: the notifications "
		 "could not be stored; the gate stays closed. Call InfoSec.\r\n",
		 code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_int_equal(t->ctl.state, SHIM_ST_CHALLENGE);
	assert_int_equal(t->sessions, 0);
	assert_null(last_op(t, OP_BEGIN));
	assert_field(last_event(t, "auth_fail"), "reason", "breakglass_not_reported");
	/* the code was not spent: with the spool back it opens */
	t->sink_fail = NULL;
	run_to_deadline(t);
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
}

static void test_bg_never_clears_an_emergency_stop(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1];
	size_t m;

	bg_boot(t);
	connect_prompt(t);
	shim_ctl_estop(&t->ctl, "case_opened", "lid");
	bg_code(t, BG_SHIM, NULL, T0, 60, 8, code);
	m = mark(t, SHIM_SIDE_TECH);
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_EMERGENCY_STOP);
	assert_int_equal(t->sessions, 0);
	assert_int_equal(mark(t, SHIM_SIDE_TECH), m); /* not even read */
	assert_int_equal(events_named(t, "breakglass_used"), 0);
	shim_ctl_hangup(&t->ctl);
	shim_ctl_connect(&t->ctl, "again");
	assert_int_equal(t->ctl.state, SHIM_ST_EMERGENCY_STOP);
	/* the authorised reset, then the unspent code works */
	shim_ctl_estop_cleared(&t->ctl);
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
}

static void test_bg_guesses_hit_the_rate_limit(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1], id[32];
	struct shim_bg_code c;
	int i;

	t->gcfg.rate_failures = 5;
	t->gcfg.rate_seconds = 60;
	bg_boot(t);
	connect_prompt(t);
	bg_code(t, BG_SHIM, NULL, T0, 60, 9, code);
	assert_int_equal(shim_bg_parse(code, strlen(code), &c), 0);
	for (i = 0; i < 5; i++) {
		c.mac[1] = (uint8_t)(c.mac[1] + 1);
		assert_int_equal(shim_bg_format(&c, code), 0);
		snprintf(id, sizeof(id), "guess%d", i);
		bg_type(t, id, code);
		if (t->ctl.state == SHIM_ST_LOCKED) {
			break;
		}
		run_to_deadline(t);
	}
	/* the sixth line meets the shim-wide limit, whatever it holds */
	bg_code(t, BG_SHIM, NULL, T0, 60, 10, code);
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_LOCKED);
	assert_field(last_event(t, "auth_fail"), "reason", "rate_limited");
	assert_int_equal(events_named(t, "breakglass_used"), 0);
}

static void test_bg_untrusted_clock_judged_at_floor(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1];

	bg_boot(t);
	connect_prompt(t);
	/* the clock falls back to 1970 (RTC battery dead) */
	bg_code(t, BG_SHIM, NULL, T0, 60, 11, code);
	fake_port_set_time(&t->fp, 1000);
	bg_type(t, "vendor.eng", code);
	/* not provably expired at the last known time: accepted, flagged */
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
	assert_field(last_event(t, "breakglass_used"), "clock", "untrusted");
	shim_ctl_end_session(&t->ctl, "technician_disconnect");
	/* a code that had expired by the last known time is refused */
	bg_code(t, BG_SHIM, NULL, T0 - 7200, 60, 12, code);
	bg_refused(t, "vendor.eng", code, "breakglass_expired", 1);
}

static void test_bg_code_without_id_is_kept_nowhere(void **state)
{
	struct t *t = *state;
	char code[SHIM_BG_TEXT_LEN + 1], want[128];
	size_t m, i;

	bg_boot(t);
	connect_prompt(t);
	bg_code(t, BG_SHIM, NULL, T0, 60, 13, code);
	m = mark(t, SHIM_SIDE_TECH);
	snprintf(want, sizeof(want), "%s\r", code);
	type(t, want);
	snprintf(want, sizeof(want), "%s\r\nAuth fail\r\n", code);
	assert_out(t, SHIM_SIDE_TECH, m, want);
	assert_field(last_event(t, "auth_fail"), "reason", "breakglass_no_id");
	assert_field(last_event(t, "auth_fail"), "technician", "(malformed)");
	/* counted shim-wide, never as a claimed ID in the lockout slots */
	for (i = 0; i < SHIM_GATE_LOCK_SLOTS; i++) {
		assert_null(strstr(t->gate.locks[i].id, code + 18));
	}
	assert_int_equal(t->gate.rate[0] != 0, 1);
	/* and not spent: typed with an ID it opens */
	run_to_deadline(t);
	bg_type(t, "vendor.eng", code);
	assert_int_equal(t->ctl.state, SHIM_ST_OPEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_init_missing_op_refuses_everything),
		T(test_connect_prompts_and_hangup_idles),
		T(test_connect_on_input),
		T(test_good_code_opens_session),
		T(test_bad_code_fail_delay_then_prompt),
		T(test_unknown_id_gets_the_uniform_answer),
		T(test_long_word_with_code_is_not_logged),
		T(test_per_id_lockout_retry_line),
		T(test_overlong_line_is_a_failure),
		T(test_clock_jump_refuses_codes),
		T(test_rate_lock_then_expiry),
		T(test_rate_lock_expiry_with_nobody_there),
		T(test_reset_lockout_unlocks),
		T(test_reset_lockout_clears_the_window),
		T(test_session_end_owner_present),
		T(test_hangup_without_grace_ends_to_idle),
		T(test_tech_write_failure_is_a_hangup),
		T(test_estop_from_idle),
		T(test_estop_from_challenge),
		T(test_estop_from_open),
		T(test_estop_from_locked),
		T(test_nothing_crosses_before_auth),
		T(test_every_byte_crosses_both_ways_recorded_first),
		T(test_recorder_backpressure_holds_input),
		T(test_partial_writes_complete_on_output_ready),
		T(test_success_line_goes_before_relayed_bytes),
		T(test_recorder_hard_error_ends_session),
		T(test_writer_failure_continue_tells_once),
		T(test_writer_failure_stop_ends_session),
		T(test_next_deadline_is_the_earliest),
		T(test_idle_timeout_counts_technician_input_only),
		T(test_break_counts_as_input_and_is_recorded),
		T(test_max_duration),
		T(test_grace_holds_device_output_and_resumes),
		T(test_grace_other_technician_opens_new_session),
		T(test_grace_expiry_ends_session),
		T(test_grace_rate_lock_seals_session),
		T(test_grace_stranger_hangs_up),
		T(test_grace_other_technician_waits_for_device_reset),
		T(test_device_not_connected_keeps_the_code),
		T(test_device_vanished_keeps_the_code),
		T(test_storage_full_keeps_the_code),
		T(test_device_reset_refuses_then_ends_at_hold),
		T(test_recording_begin_failure_never_opens),
		T(test_device_logout_written_and_recorded),
		T(test_device_write_disconnect_ends_session),
		T(test_device_down_in_session),
		T(test_shutdown_ends_and_opens_nothing),
		T(test_clock_report_gives_trusted_time),
		T(test_bg_opens_session_with_elevated_audit),
		T(test_bg_max_duration_setting_is_shorter),
		T(test_bg_refusals_have_precise_reasons),
		T(test_bg_not_configured_is_a_failure),
		T(test_bg_notifications_not_durable_gate_stays_closed),
		T(test_bg_never_clears_an_emergency_stop),
		T(test_bg_guesses_hit_the_rate_limit),
		T(test_bg_untrusted_clock_judged_at_floor),
		T(test_bg_code_without_id_is_kept_nowhere),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
