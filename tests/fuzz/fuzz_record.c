/*
 * Fuzz target for the record reader (core/record.c): arbitrary bytes,
 * fed in pieces whose sizes come from the input, must never crash, read
 * out of bounds or hang, and finish must classify every stream.
 *
 * The first input byte picks the feed piece size; when its top bit is set
 * a fixed session key is installed at the header, so the decryption and
 * item decoder paths are reached too (the seeds are recorded with that
 * key). The crypto is the real mbedTLS port.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "port_linux.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct shim_linux_port lp;
static int ready;
static uint8_t rbuf[SHIM_REC_READER_BUF];
static struct shim_rec_reader rd;

static const uint8_t fuzz_key[SHIM_REC_KEY_LEN] = {
	0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x6b, 0x65, 0x79,
};

static int on_header(void *arg, const struct shim_rec_header *h)
{
	(void)h;
	if (*(int *)arg) {
		shim_rec_reader_set_key(&rd, fuzz_key);
	}
	return 0;
}

static int on_item(void *arg, const struct shim_rec_item *it)
{
	volatile uint8_t sink = 0;
	size_t i;

	(void)arg;
	for (i = 0; i < it->len; i++) {
		sink ^= it->data[i];
	}
	(void)sink;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_rec_result res;
	struct shim_rec_reader_cb cb;
	int use_key;
	size_t step, i;

	if (!ready) {
		if (shim_linux_port_init(&lp, NULL) != 0) {
			abort();
		}
		ready = 1;
	}
	if (size < 1) {
		return 0;
	}
	use_key = (data[0] & 0x80) != 0;
	step = (size_t)(data[0] & 0x7f) + 1;
	data++;
	size--;
	cb.header = on_header;
	cb.item = on_item;
	cb.footer = NULL;
	cb.arg = &use_key;
	shim_rec_reader_init(&rd, &lp.port.crypto, &cb, rbuf, sizeof(rbuf));
	for (i = 0; i < size; i += step) {
		size_t n = size - i < step ? size - i : step;

		shim_rec_reader_feed(&rd, data + i, n);
	}
	shim_rec_reader_finish(&rd, NULL, &res);
	if (res.status == SHIM_REC_COMPLETE && !res.have_footer) {
		abort();
	}
	if (res.good_end > res.total) {
		abort();
	}
	/* Nothing pinned the signer: never intact, never merely degraded;
	 * anything but a complete file is a failure. */
	if (res.verdict == SHIM_REC_V_NONE || res.verdict == SHIM_REC_V_INTACT ||
	    res.verdict == SHIM_REC_V_DEGRADED || res.pinned ||
	    (res.verdict == SHIM_REC_V_UNPINNED) !=
		    (res.status == SHIM_REC_COMPLETE)) {
		abort();
	}
	if (res.gap_bad > res.gaps || (res.gaps != 0 && !res.degraded)) {
		abort();
	}
	shim_rec_reader_wipe(&rd);
	return 0;
}
