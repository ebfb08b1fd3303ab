/*
 * The CHALLENGE line editor and the state table, at their edges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "lineedit.h"
#include "session.h"

struct fed {
	uint8_t echo[4096];
	size_t echo_len;
	int lines;
	int overflows;
	char last[SHIM_LINE_MAX + 1];
};

static void feed(struct shim_lineedit *le, struct fed *f, const char *s,
		 size_t n)
{
	size_t i, el, len;
	uint8_t e[SHIM_LE_ECHO_MAX];

	for (i = 0; i < n; i++) {
		enum shim_le_result r = shim_lineedit_byte(le, (uint8_t)s[i], e, &el);

		assert_true(el <= SHIM_LE_ECHO_MAX);
		assert_true(f->echo_len + el <= sizeof(f->echo));
		memcpy(f->echo + f->echo_len, e, el);
		f->echo_len += el;
		if (r == SHIM_LE_LINE) {
			const uint8_t *l = shim_lineedit_line(le, &len);

			memcpy(f->last, l, len);
			f->last[len] = '\0';
			f->lines++;
			shim_lineedit_reset(le);
		} else if (r == SHIM_LE_OVERFLOW) {
			f->overflows++;
		}
	}
}

#define FEED(le, f, s) feed(le, f, s, sizeof(s) - 1)

static void test_plain_line_cr(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };

	(void)state;
	shim_lineedit_init(&le);
	FEED(&le, &f, "alice 123456\r");
	assert_int_equal(f.lines, 1);
	assert_string_equal(f.last, "alice 123456");
	assert_memory_equal(f.echo, "alice 123456\r\n", 14);
	assert_int_equal(f.echo_len, 14);
}

static void test_crlf_is_one_line_lf_alone_too(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };

	(void)state;
	shim_lineedit_init(&le);
	FEED(&le, &f, "a 1\r\nb 2\nc 3\r\r");
	/* CRLF ends one line, LF one, CR one, and the last CR an empty one */
	assert_int_equal(f.lines, 4);
	assert_string_equal(f.last, "");
	/* LF right after a CRLF-ended line that was reset is still swallowed */
	FEED(&le, &f, "x\r");
	FEED(&le, &f, "\n");
	assert_int_equal(f.lines, 5);
	assert_string_equal(f.last, "x");
}

static void test_backspace_and_delete(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };

	(void)state;
	shim_lineedit_init(&le);
	FEED(&le, &f, "abx\x08" "c\x7f\x7f\x7f\x7fq\r");
	assert_int_equal(f.lines, 1);
	assert_string_equal(f.last, "q");
	/* erasing at the start echoes nothing */
	assert_int_equal(f.echo_len, 19);
	assert_memory_equal(f.echo, "abx\b \bc\b \b\b \b\b \bq\r\n", 19);
}

static void test_backspace_utf8_whole_char(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };

	(void)state;
	shim_lineedit_init(&le);
	FEED(&le, &f, "j\xc3\xa9\x7f" "e\r");
	assert_string_equal(f.last, "je");
}

static void test_control_chars_ignored_kill_line(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };

	(void)state;
	shim_lineedit_init(&le);
	FEED(&le, &f, "ab\x1b[A\x03" "c\x15xy\tz\r");
	assert_int_equal(f.lines, 1);
	/* ESC and ^C dropped, "[A" kept as text, ^U erased "ab[Ac" */
	assert_string_equal(f.last, "xy\tz");
}

static void test_line_exact_limit(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };
	char buf[SHIM_LINE_MAX + 1];

	(void)state;
	shim_lineedit_init(&le);
	memset(buf, 'a', SHIM_LINE_MAX);
	buf[SHIM_LINE_MAX] = '\r';
	feed(&le, &f, buf, sizeof(buf));
	assert_int_equal(f.lines, 1);
	assert_int_equal(f.overflows, 0);
	assert_int_equal(strlen(f.last), SHIM_LINE_MAX);
}

static void test_line_overflow_discards_to_eol(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };
	char buf[SHIM_LINE_MAX + 40];
	size_t echo_before;

	(void)state;
	shim_lineedit_init(&le);
	memset(buf, 'a', sizeof(buf));
	feed(&le, &f, buf, sizeof(buf));
	assert_int_equal(f.overflows, 1);
	assert_int_equal(f.lines, 0);
	/* only the bytes that fitted were echoed */
	assert_int_equal(f.echo_len, SHIM_LINE_MAX);
	echo_before = f.echo_len;
	FEED(&le, &f, "more\r");
	/* the rest of the long line, its end included, is not a line */
	assert_int_equal(f.lines, 0);
	assert_int_equal(f.echo_len, echo_before + 2);
	FEED(&le, &f, "bob 1\r");
	assert_int_equal(f.lines, 1);
	assert_string_equal(f.last, "bob 1");
}

static void test_reset_wipes(void **state)
{
	struct shim_lineedit le;
	struct fed f = { 0 };
	size_t i;

	(void)state;
	shim_lineedit_init(&le);
	FEED(&le, &f, "alice 654321");
	shim_lineedit_reset(&le);
	for (i = 0; i < sizeof(le.buf); i++) {
		assert_int_equal(le.buf[i], 0);
	}
}

static void test_state_table(void **state)
{
	enum shim_state to;

	(void)state;
	assert_int_equal(shim_sm_next(SHIM_ST_IDLE, SHIM_SM_CONNECT, &to), 0);
	assert_int_equal(to, SHIM_ST_CHALLENGE);
	assert_int_equal(shim_sm_next(SHIM_ST_CHALLENGE, SHIM_SM_AUTH_OK, &to), 0);
	assert_int_equal(to, SHIM_ST_OPEN);
	assert_int_equal(shim_sm_next(SHIM_ST_OPEN, SHIM_SM_SESSION_END, &to), 0);
	assert_int_equal(to, SHIM_ST_CHALLENGE);
	/* never OPEN from anywhere but CHALLENGE */
	assert_int_equal(shim_sm_next(SHIM_ST_IDLE, SHIM_SM_AUTH_OK, &to),
			 SHIM_ESTATE);
	assert_int_equal(shim_sm_next(SHIM_ST_LOCKED, SHIM_SM_AUTH_OK, &to),
			 SHIM_ESTATE);
	assert_int_equal(shim_sm_next(SHIM_ST_EMERGENCY_STOP, SHIM_SM_AUTH_OK,
				      &to), SHIM_ESTATE);
	/* emergency stop is reachable from every state and latched */
	for (int s = 0; s < SHIM_ST__COUNT; s++) {
		assert_int_equal(shim_sm_next((enum shim_state)s, SHIM_SM_TAMPER,
					      &to), 0);
		assert_int_equal(to, SHIM_ST_EMERGENCY_STOP);
	}
	assert_int_equal(shim_sm_next(SHIM_ST_EMERGENCY_STOP, SHIM_SM_UNLOCK,
				      &to), SHIM_ESTATE);
	assert_int_equal(shim_sm_next(SHIM_ST_EMERGENCY_STOP,
				      SHIM_SM_ESTOP_RESET, &to), 0);
	assert_int_equal(to, SHIM_ST_IDLE);
	assert_string_equal(shim_state_name(SHIM_ST_OPEN), "OPEN");
	assert_string_equal(shim_state_name((enum shim_state)99), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_line_cr),
		cmocka_unit_test(test_crlf_is_one_line_lf_alone_too),
		cmocka_unit_test(test_backspace_and_delete),
		cmocka_unit_test(test_backspace_utf8_whole_char),
		cmocka_unit_test(test_control_chars_ignored_kill_line),
		cmocka_unit_test(test_line_exact_limit),
		cmocka_unit_test(test_line_overflow_discards_to_eol),
		cmocka_unit_test(test_reset_wipes),
		cmocka_unit_test(test_state_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
