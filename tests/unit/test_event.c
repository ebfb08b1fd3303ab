/*
 * The event model: fields, limits, the canonical text, and signed events
 * verified the way a SIEM reader does it (from the RFC 5424 structured
 * data, after unescaping).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "event.h"
#include "port_linux.h"
#include "syslog.h"

#define T0 (1795494429LL * 1000000000LL)

static void test_init_and_priority(void **state)
{
	struct shim_event ev;
	char longname[SHIM_EVENT_NAME_MAX + 4];

	(void)state;
	assert_int_equal(shim_event_init(&ev, "auth_ok", SHIM_SEV_INFO, T0), 0);
	assert_int_equal(ev.priority, 0);
	assert_int_equal(shim_event_init(&ev, "tamper", SHIM_SEV_ALERT, T0), 0);
	assert_int_equal(ev.priority, 1);
	assert_int_equal(shim_event_init(&ev, "emergency_stop", 1, T0), 0);
	assert_int_equal(ev.priority, 1);
	assert_int_equal(shim_event_init(&ev, "break_glass_used", 1, T0), 0);
	assert_int_equal(ev.priority, 1);
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	assert_int_equal(ev.priority, 0);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(shim_event_init(&ev, longname, 6, T0), SHIM_EINVAL);
	assert_int_equal(shim_event_init(&ev, "bad name", 6, T0), SHIM_EINVAL);
}

static void test_fields(void **state)
{
	struct shim_event ev;
	char big[600], key[16];
	const char *v;
	int i;

	(void)state;
	assert_int_equal(shim_event_init(&ev, "session_end", 6, T0), 0);
	assert_int_equal(shim_event_add(&ev, "bytes_in", "12"), 0);
	assert_int_equal(shim_event_add_i64(&ev, "delta", -42), 0);
	assert_int_equal(shim_event_add_u64(&ev, "max", UINT64_MAX), 0);
	assert_string_equal(shim_event_get(&ev, "delta"), "-42");
	assert_string_equal(shim_event_get(&ev, "max"),
			    "18446744073709551615");
	assert_null(shim_event_get(&ev, "nope"));
	assert_int_equal(shim_event_add(&ev, "bad-key", "x"), SHIM_EINVAL);
	assert_int_equal(shim_event_add(&ev, "", "x"), SHIM_EINVAL);
	/* A giant value is cut and marked. */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(shim_event_add(&ev, "big", big), 0);
	v = shim_event_get(&ev, "big");
	assert_int_equal(strlen(v), SHIM_EVENT_VALUE_MAX - 1);
	assert_string_equal(v + strlen(v) - 3, "...");
	/* Full. */
	for (i = (int)ev.nfields; i < SHIM_EVENT_MAX_FIELDS; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		assert_int_equal(shim_event_add(&ev, key, "x"), 0);
	}
	assert_int_equal(shim_event_add(&ev, "more", "x"), SHIM_ENOSPC);
}

static void test_canonical(void **state)
{
	struct shim_event ev;
	char buf[SHIM_EVENT_CANON_MAX];
	size_t len;

	(void)state;
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	strcpy(ev.shim_id, "shim-01");
	ev.seq = 99;
	shim_event_add(&ev, "boot_count", "3");
	shim_event_add(&ev, "state", "IDLE");
	shim_event_add(&ev, "sig", "ignored");
	assert_int_equal(shim_event_canonical(&ev, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf, "heartbeat\nshim_id=shim-01\nseq=99\n"
				 "boot_count=3\nstate=IDLE\n");
	assert_int_equal(len, strlen(buf));
	assert_int_equal(shim_event_canonical(&ev, buf, 10, &len), SHIM_ENOSPC);
}

/* ---- signed events through RFC 5424 ---------------------------------------- */

static struct shim_linux_port lp;
static int have_key;
/* The scratch a caller of sign and verify supplies. */
static char canon[SHIM_EVENT_CANON_MAX];

static int sign(struct shim_event *ev)
{
	return shim_event_sign(ev, &lp.port.crypto, canon, sizeof(canon));
}

static int verify(const struct shim_event *ev, const uint8_t *pub)
{
	return shim_event_verify(ev, pub, &lp.port.crypto, canon,
				 sizeof(canon));
}

static int key_setup(void **state)
{
	char path[] = "/tmp/test_event_key.XXXXXX";
	char cmd[256];
	int fd;

	(void)state;
	assert_int_equal(shim_linux_port_init(&lp, NULL), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "openssl ecparam -name prime256v1 -genkey -noout -out %s "
		 ">/dev/null 2>&1", path);
	if (system(cmd) == 0 &&
	    shim_linux_port_load_identity(&lp, path) == 0) {
		have_key = 1;
	}
	unlink(path);
	return 0;
}

static int key_teardown(void **state)
{
	(void)state;
	shim_linux_port_fini(&lp);
	return 0;
}

/* A SIEM-side reader: rebuilds the event from "[shim@N k="v" ...]". */
static int parse_sd(const char *msg, struct shim_event *ev)
{
	const char *p = strchr(msg, '[');
	char key[SHIM_EVENT_KEY_MAX], val[SHIM_EVENT_VALUE_MAX * 2];
	const char *sp;
	size_t k, v;

	/* MSGID is the 6th header field. */
	sp = msg;
	for (k = 0; k < 5; k++) {
		sp = strchr(sp, ' ') + 1;
	}
	v = (size_t)(strchr(sp, ' ') - sp);
	memset(ev, 0, sizeof(*ev));
	memcpy(ev->name, sp, v);
	if (p == NULL) {
		return -1;
	}
	p = strchr(p, ' ');
	while (p != NULL && *p == ' ') {
		p++;
		for (k = 0; *p != '=' && k < sizeof(key) - 1; k++) {
			key[k] = *p++;
		}
		key[k] = '\0';
		p += 2; /* =" */
		for (v = 0; *p != '"'; v++) {
			if (*p == '\\') {
				p++;
			}
			val[v] = *p++;
		}
		val[v] = '\0';
		p++;
		if (strcmp(key, "shim_id") == 0) {
			assert_true(strlen(val) < sizeof(ev->shim_id));
			memcpy(ev->shim_id, val, strlen(val) + 1);
		} else if (strcmp(key, "seq") == 0) {
			ev->seq = strtoull(val, NULL, 10);
		} else {
			shim_event_add(ev, key, val);
		}
	}
	return 0;
}

static void test_sign_verify_via_rfc5424(void **state)
{
	struct shim_syslog_opts o;
	struct shim_event ev, back;
	uint8_t pub[SHIM_P256_PUB_LEN];
	char buf[4096];
	size_t len;

	(void)state;
	if (!have_key) {
		skip();
	}
	assert_int_equal(lp.port.crypto.identity_pub(lp.port.crypto.ctx, pub),
			 0);
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	strcpy(ev.shim_id, "shim-01");
	ev.seq = 1234;
	shim_event_add(&ev, "boot_count", "3");
	shim_event_add(&ev, "state", "OPEN \"quoted\" ] \\ end");
	shim_event_add(&ev, "tamper", "clear");
	assert_int_equal(sign(&ev), 0);
	assert_int_equal(strlen(shim_event_get(&ev, "sig")), 128);
	assert_string_equal(ev.fields[ev.nfields - 1].key, "sig");
	assert_int_equal(verify(&ev, pub), 0);

	memset(&o, 0, sizeof(o));
	o.hostname = "h";
	o.facility = -1;
	assert_int_equal(shim_syslog_rfc5424(&ev, &o, buf, sizeof(buf), &len),
			 0);
	assert_int_equal(parse_sd(buf, &back), 0);
	assert_string_equal(back.name, "heartbeat");
	assert_int_equal(back.seq, 1234);
	assert_int_equal(verify(&back, pub), 0);

	/* Any change breaks it: a field, the order, the sequence number. */
	back.seq++;
	assert_int_equal(verify(&back, pub), SHIM_ESIG);
	back.seq--;
	strcpy(back.fields[0].value, "4");
	assert_int_equal(verify(&back, pub), SHIM_ESIG);
	/* Signing again replaces the old signature. */
	assert_int_equal(sign(&back), 0);
	assert_int_equal(verify(&back, pub), 0);
	assert_int_equal(back.nfields, 4);
}

static void test_unsigned_does_not_verify(void **state)
{
	struct shim_event ev;
	uint8_t pub[SHIM_P256_PUB_LEN];

	(void)state;
	if (!have_key) {
		skip();
	}
	lp.port.crypto.identity_pub(lp.port.crypto.ctx, pub);
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	assert_int_equal(verify(&ev, pub), SHIM_ESIG);
	shim_event_add(&ev, "sig", "zz");
	assert_int_equal(verify(&ev, pub), SHIM_ESIG);
}

/* The caller's scratch bounds sign and verify: the canonical text and its
 * NUL fit exactly, one byte less fails closed, and nothing past cap is
 * written. */
static void test_scratch_bounds(void **state)
{
	static char buf[SHIM_EVENT_CANON_MAX + 64];
	struct shim_event ev;
	uint8_t pub[SHIM_P256_PUB_LEN], sig[SHIM_P256_SIG_LEN];
	size_t len, i;

	(void)state;
	if (!have_key) {
		skip();
	}
	lp.port.crypto.identity_pub(lp.port.crypto.ctx, pub);
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	strcpy(ev.shim_id, "shim-01");
	ev.seq = 7;
	shim_event_add(&ev, "state", "IDLE");
	assert_int_equal(shim_event_canonical(&ev, buf, sizeof(buf), &len), 0);

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(shim_event_sign(&ev, &lp.port.crypto, buf, len + 1), 0);
	for (i = len + 1; i < sizeof(buf); i++) {
		assert_int_equal((unsigned char)buf[i], 0xa5);
	}
	assert_int_equal(shim_event_sig(&ev, sig), 0);
	assert_int_equal(shim_event_verify(&ev, pub, &lp.port.crypto, buf,
					   len + 1), 0);
	assert_int_equal(shim_event_verify(&ev, pub, &lp.port.crypto, buf,
					   len), SHIM_ESIG);
	assert_int_equal(shim_event_verify(&ev, pub, &lp.port.crypto, NULL, 0),
			 SHIM_ESIG);
	assert_int_equal(shim_event_sign(&ev, &lp.port.crypto, buf, len),
			 SHIM_ENOSPC);
	assert_int_equal(shim_event_sign(&ev, &lp.port.crypto, NULL, 0),
			 SHIM_EINVAL);
	assert_null(shim_event_get(&ev, "sig"));
}

/* The raw signature is read from exactly 128 hex characters. */
static void test_sig_field(void **state)
{
	struct shim_event ev;
	uint8_t sig[SHIM_P256_SIG_LEN];
	char hex[2 * SHIM_P256_SIG_LEN + 2];

	(void)state;
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	assert_int_equal(shim_event_sig(&ev, sig), SHIM_ESIG);
	memset(hex, '0', sizeof(hex) - 1);
	hex[sizeof(hex) - 1] = '\0';
	hex[0] = 'f';
	hex[2 * SHIM_P256_SIG_LEN - 1] = '7';
	shim_event_add(&ev, "sig", hex); /* 129 characters */
	assert_int_equal(shim_event_sig(&ev, sig), SHIM_ESIG);
	hex[2 * SHIM_P256_SIG_LEN] = '\0';
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	shim_event_add(&ev, "sig", hex);
	assert_int_equal(shim_event_sig(&ev, sig), 0);
	assert_int_equal(sig[0], 0xf0);
	assert_int_equal(sig[SHIM_P256_SIG_LEN - 1], 0x07);
	hex[5] = 'g';
	assert_int_equal(shim_event_init(&ev, "heartbeat", 6, T0), 0);
	shim_event_add(&ev, "sig", hex);
	assert_int_equal(shim_event_sig(&ev, sig), SHIM_ESIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_priority),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_sign_verify_via_rfc5424),
		cmocka_unit_test(test_unsigned_does_not_verify),
		cmocka_unit_test(test_scratch_bounds),
		cmocka_unit_test(test_sig_field),
	};

	return cmocka_run_group_tests(tests, key_setup, key_teardown);
}
