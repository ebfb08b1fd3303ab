/*
 * RFC 5424 / CEF / JSON formatting and RFC 5425 framing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "event.h"
#include "syslog.h"

/* 2026-11-24T04:27:09.123456Z */
#define T0 (1795494429LL * 1000000000LL + 123456789LL)

static struct shim_syslog_opts opts(void)
{
	struct shim_syslog_opts o;

	memset(&o, 0, sizeof(o));
	o.hostname = "pump-gw";
	o.procid = 42;
	o.facility = -1;
	o.product_version = "0.1.0";
	return o;
}

static void mkevent(struct shim_event *ev)
{
	assert_int_equal(shim_event_init(ev, "auth_fail", SHIM_SEV_WARNING, T0),
			 0);
	strcpy(ev->shim_id, "shim-01");
	ev->seq = 17;
	assert_int_equal(shim_event_add(ev, "technician", "alice"), 0);
	assert_int_equal(shim_event_add(ev, "reason", "bad\"]\\x"), 0);
}

static void test_time(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(shim_syslog_time(0, buf, sizeof(buf)), 27);
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
	assert_int_equal(shim_syslog_time(T0, buf, sizeof(buf)), 27);
	assert_string_equal(buf, "2026-11-24T04:27:09.123456Z");
	/* Leap day and the end of a year. */
	shim_syslog_time(1709164800LL * 1000000000LL, buf, sizeof(buf));
	assert_string_equal(buf, "2024-02-29T00:00:00.000000Z");
	shim_syslog_time(1735689599LL * 1000000000LL + 999999999LL, buf,
			 sizeof(buf));
	assert_string_equal(buf, "2024-12-31T23:59:59.999999Z");
	/* Before the epoch. */
	shim_syslog_time(-1000LL, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
	/* Too small a buffer. */
	assert_int_equal(shim_syslog_time(0, buf, 27), SHIM_ENOSPC);
}

static void test_rfc5424_exact(void **state)
{
	struct shim_syslog_opts o = opts();
	struct shim_event ev;
	char buf[1024];
	size_t len;

	(void)state;
	mkevent(&ev);
	assert_int_equal(shim_syslog_rfc5424(&ev, &o, buf, sizeof(buf), &len),
			 0);
	assert_string_equal(buf,
			    "<84>1 2026-11-24T04:27:09.123456Z pump-gw shimd 42 "
			    "auth_fail [shim@32473 shim_id=\"shim-01\" "
			    "seq=\"17\" technician=\"alice\" "
			    "reason=\"bad\\\"\\]\\\\x\"] auth_fail");
	assert_int_equal(len, strlen(buf));

	/* Configured enterprise number, no host name, no pid. */
	o.enterprise_number = 99999;
	o.hostname = NULL;
	o.procid = 0;
	assert_int_equal(shim_syslog_rfc5424(&ev, &o, buf, sizeof(buf), &len),
			 0);
	assert_non_null(strstr(buf, " - shimd - auth_fail [shim@99999 "));
}

static void test_rfc5424_utf8(void **state)
{
	struct shim_syslog_opts o = opts();
	struct shim_event ev;
	char buf[1024];
	size_t len;

	(void)state;
	assert_int_equal(shim_event_init(&ev, "boot", SHIM_SEV_INFO, T0), 0);
	/* valid 2-byte, invalid lone continuation, overlong '/', surrogate */
	assert_int_equal(shim_event_add(&ev, "v",
					"caf\xc3\xa9 \x80 \xc0\xaf \xed\xa0\x80"),
			 0);
	assert_int_equal(shim_syslog_rfc5424(&ev, &o, buf, sizeof(buf), &len),
			 0);
	assert_non_null(strstr(buf, "v=\"caf\xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd"
				    "\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd"
				    "\xef\xbf\xbd\"]"));
}

static void test_truncated_buffers(void **state)
{
	struct shim_syslog_opts o = opts();
	struct shim_event ev;
	char full[1024], buf[1024];
	size_t len, cap, flen;

	(void)state;
	mkevent(&ev);
	assert_int_equal(shim_syslog_rfc5424(&ev, &o, full, sizeof(full),
					     &flen), 0);
	for (cap = 0; cap < flen; cap++) {
		memset(buf, 'Z', sizeof(buf));
		assert_int_equal(shim_syslog_rfc5424(&ev, &o, buf, cap, &len),
				 SHIM_ENOSPC);
		/* Nothing written past cap. */
		assert_int_equal(buf[cap], 'Z');
	}
	/* Exact fit without room for the NUL still succeeds. */
	assert_int_equal(shim_syslog_rfc5424(&ev, &o, buf, flen, &len), 0);
	assert_memory_equal(buf, full, flen);

	assert_int_equal(shim_syslog_json(&ev, full, sizeof(full), &flen), 0);
	for (cap = 0; cap < flen; cap++) {
		assert_int_equal(shim_syslog_json(&ev, buf, cap, &len),
				 SHIM_ENOSPC);
	}
	assert_int_equal(shim_syslog_cef(&ev, &o, full, sizeof(full), &flen),
			 0);
	for (cap = 0; cap < flen; cap++) {
		assert_int_equal(shim_syslog_cef(&ev, &o, buf, cap, &len),
				 SHIM_ENOSPC);
	}
}

static void test_giant_event_fits(void **state)
{
	static char buf[SHIM_SYSLOG_MSG_MAX];
	struct shim_syslog_opts o = opts();
	struct shim_event ev;
	char key[8], val[SHIM_EVENT_VALUE_MAX];
	size_t len;
	int i;

	(void)state;
	assert_int_equal(shim_event_init(&ev, "giant", SHIM_SEV_INFO, T0), 0);
	memset(ev.shim_id, '"', sizeof(ev.shim_id) - 1);
	ev.seq = UINT64_MAX;
	memset(val, 0x01, sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	for (i = 0; i < SHIM_EVENT_MAX_FIELDS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(shim_event_add(&ev, key, val), 0);
	}
	assert_int_equal(shim_syslog_json(&ev, buf, sizeof(buf), &len), 0);
	assert_int_equal(shim_syslog_rfc5424(&ev, &o, buf, sizeof(buf), &len),
			 0);
	assert_non_null(strstr(buf, "seq=\"18446744073709551615\""));
	assert_int_equal(shim_syslog_cef(&ev, &o, buf, sizeof(buf), &len), 0);
}

static void test_cef(void **state)
{
	struct shim_syslog_opts o = opts();
	struct shim_event ev;
	char buf[1024];
	size_t len;

	(void)state;
	assert_int_equal(shim_event_init(&ev, "tamper", SHIM_SEV_ALERT, T0),
			 0);
	strcpy(ev.shim_id, "shim|01");
	ev.seq = 5;
	assert_int_equal(shim_event_add(&ev, "sensor", "case=open\\now\nx|y"),
			 0);
	assert_int_equal(shim_syslog_cef(&ev, &o, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf,
			    "<81>1 2026-11-24T04:27:09.123456Z pump-gw shimd 42 "
			    "tamper - CEF:0|shim|shimd|0.1.0|tamper|tamper|9|"
			    "rt=1795494429123 dvchost=pump-gw shim_id=shim|01 "
			    "seq=5 sensor=case\\=open\\\\now\\nx|y");
}

static void test_json(void **state)
{
	struct shim_event ev;
	char buf[1024];
	size_t len;

	(void)state;
	assert_int_equal(shim_event_init(&ev, "auth_ok", SHIM_SEV_INFO, T0), 0);
	strcpy(ev.shim_id, "s");
	ev.seq = 9;
	assert_int_equal(shim_event_add(&ev, "technician", "a\"b\\c\n\t\x01"),
			 0);
	/* A field named like a fixed key cannot shadow it. */
	assert_int_equal(shim_event_add(&ev, "seq", "evil"), 0);
	assert_int_equal(shim_syslog_json(&ev, buf, sizeof(buf), &len), 0);
	assert_string_equal(buf,
			    "{\"time\":\"2026-11-24T04:27:09.123456Z\","
			    "\"time_ns\":1795494429123456789,\"event\":\"auth_ok\","
			    "\"severity\":6,\"shim_id\":\"s\",\"seq\":9,"
			    "\"technician\":\"a\\\"b\\\\c\\n\\t\\u0001\","
			    "\"field_seq\":\"evil\"}\n");
}

static void test_frame(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(shim_syslog_frame_header(0, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "0 ", 2);
	assert_int_equal(shim_syslog_frame_header(12345, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "12345 ", 6);
	assert_int_equal(shim_syslog_frame_header(12345, buf, 5), SHIM_ENOSPC);
}

static void test_severity_maps(void **state)
{
	(void)state;
	assert_string_equal(shim_severity_name(0), "emerg");
	assert_string_equal(shim_severity_name(7), "debug");
	assert_string_equal(shim_severity_name(8), "unknown");
	assert_int_equal(shim_syslog_cef_severity(0), 10);
	assert_int_equal(shim_syslog_cef_severity(6), 2);
	assert_int_equal(shim_syslog_cef_severity(-1), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_rfc5424_exact),
		cmocka_unit_test(test_rfc5424_utf8),
		cmocka_unit_test(test_truncated_buffers),
		cmocka_unit_test(test_giant_event_fits),
		cmocka_unit_test(test_cef),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_severity_maps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
