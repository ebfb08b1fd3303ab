/*
 * The CHALLENGE line editor. See lineedit.h.
 */
#include "lineedit.h"

#include "util.h"

#define LE_BS 0x08
#define LE_DEL 0x7f
#define LE_CR 0x0d
#define LE_LF 0x0a
#define LE_KILL 0x15 /* ^U: erase the whole line */

void shim_lineedit_init(struct shim_lineedit *le)
{
	shim_memzero(le->buf, sizeof(le->buf));
	le->len = 0;
	le->discarding = 0;
	le->after_cr = 0;
}

void shim_lineedit_reset(struct shim_lineedit *le)
{
	shim_memzero(le->buf, sizeof(le->buf));
	le->len = 0;
	le->discarding = 0;
}

static int is_utf8_cont(uint8_t c)
{
	return (c & 0xc0) == 0x80;
}

/* Removes the last character (a whole UTF-8 sequence). */
static void erase_char(struct shim_lineedit *le)
{
	while (le->len > 0 && is_utf8_cont(le->buf[le->len - 1])) {
		le->len--;
		le->buf[le->len] = 0;
	}
	if (le->len > 0) {
		le->len--;
		le->buf[le->len] = 0;
	}
}

enum shim_le_result shim_lineedit_byte(struct shim_lineedit *le, uint8_t c,
				       uint8_t echo[SHIM_LE_ECHO_MAX],
				       size_t *echo_len)
{
	int after_cr = le->after_cr;

	*echo_len = 0;
	le->after_cr = 0;

	if (c == LE_CR || c == LE_LF) {
		if (c == LE_LF && after_cr) {
			/* the LF of a CRLF pair: the line already ended */
			return SHIM_LE_MORE;
		}
		le->after_cr = (c == LE_CR);
		if (le->discarding) {
			le->discarding = 0;
			echo[0] = '\r';
			echo[1] = '\n';
			*echo_len = 2;
			return SHIM_LE_MORE;
		}
		echo[0] = '\r';
		echo[1] = '\n';
		*echo_len = 2;
		return SHIM_LE_LINE;
	}
	if (le->discarding) {
		return SHIM_LE_MORE;
	}
	if (c == LE_BS || c == LE_DEL) {
		if (le->len > 0) {
			erase_char(le);
			echo[0] = LE_BS;
			echo[1] = ' ';
			echo[2] = LE_BS;
			*echo_len = 3;
		}
		return SHIM_LE_MORE;
	}
	if (c == LE_KILL) {
		/* Erase on screen only what fits in one echo: the terminal
		 * gets a fresh line instead. */
		shim_lineedit_reset(le);
		echo[0] = '^';
		echo[1] = 'U';
		echo[2] = '\r';
		echo[3] = '\n';
		*echo_len = 4;
		return SHIM_LE_MORE;
	}
	if (c < 0x20 && c != '\t') {
		/* other control characters (escape sequences, ^C) are ignored */
		return SHIM_LE_MORE;
	}
	if (le->len >= SHIM_LINE_MAX) {
		shim_lineedit_reset(le);
		le->discarding = 1;
		return SHIM_LE_OVERFLOW;
	}
	le->buf[le->len++] = c;
	echo[0] = c;
	*echo_len = 1;
	return SHIM_LE_MORE;
}

const uint8_t *shim_lineedit_line(const struct shim_lineedit *le,
				  size_t *len)
{
	*len = le->len;
	return le->buf;
}
