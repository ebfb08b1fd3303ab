/*
 * The CHALLENGE line editor: collects one technician line
 * "<technician_id> <totp_code>" byte by byte, with echo (service terminals
 * do not echo locally), backspace, and CR, LF or CRLF as the end of line.
 *
 * The line is bounded: a line longer than SHIM_LINE_MAX is reported once as
 * SHIM_LE_OVERFLOW (the caller counts it as a failure) and everything up
 * to the next end of line is discarded without echo. Portable, no
 * allocation; the caller owns the struct and wipes it with
 * shim_lineedit_reset() once the line has been used, since it holds a code.
 */
#ifndef SHIM_CORE_LINEEDIT_H
#define SHIM_CORE_LINEEDIT_H

#include <stddef.h>
#include <stdint.h>

#define SHIM_LINE_MAX 256
/* Most bytes one call to shim_lineedit_byte() asks to echo. */
#define SHIM_LE_ECHO_MAX 4

enum shim_le_result {
	SHIM_LE_MORE = 0,     /* keep feeding */
	SHIM_LE_LINE = 1,     /* a complete line is ready */
	SHIM_LE_OVERFLOW = 2, /* the line was too long and is discarded */
};

struct shim_lineedit {
	/* private */
	uint8_t buf[SHIM_LINE_MAX];
	size_t len;
	int discarding; /* after an overflow, until the end of line */
	int after_cr;   /* the last byte was CR: a following LF is swallowed */
};

/* Sets up an empty editor. */
void shim_lineedit_init(struct shim_lineedit *le);

/* Empties the editor and wipes what it held. It still remembers whether
 * the last byte was a CR, so the LF of a CRLF that ended the previous line
 * is swallowed rather than taken as an empty line. */
void shim_lineedit_reset(struct shim_lineedit *le);

/*
 * Feeds one byte. The bytes to echo back to the technician (possibly none)
 * are written to echo and their count to *echo_len. Returns SHIM_LE_MORE,
 * SHIM_LE_LINE (read it with shim_lineedit_line(), then reset) or
 * SHIM_LE_OVERFLOW (the editor is already emptied).
 */
enum shim_le_result shim_lineedit_byte(struct shim_lineedit *le, uint8_t c,
				       uint8_t echo[SHIM_LE_ECHO_MAX],
				       size_t *echo_len);

/* The completed line (not NUL-terminated) and its length. */
const uint8_t *shim_lineedit_line(const struct shim_lineedit *le,
				  size_t *len);

#endif
