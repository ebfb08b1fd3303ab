/*
 * Heartbeat and shutting_down events: fields in the agreed order, signed
 * by the identity key and verified with the public key; an altered field
 * or another key fails; the period timer.
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

#include "heartbeat.h"
#include "keys.h"
#include "p256key.h"
#include "port_linux.h"

#define T0 1800000000LL

/* The scratch a caller of sign and verify supplies. */
static char canon[SHIM_EVENT_CANON_MAX];

static int verify(const struct shim_event *ev, const uint8_t *pub,
		  const struct shim_crypto_ops *crypto)
{
	return shim_event_verify(ev, pub, crypto, canon, sizeof(canon));
}

static const char *const order[] = {
	"time", "period", "boot_count", "uptime", "state", "tamper",
	"session_active", "spool_depth", "version", "binary_digest",
	"config_digest", "chain_head",
};

static void info(struct shim_heartbeat_info *hb)
{
	memset(hb, 0, sizeof(*hb));
	hb->boot_count = 7;
	hb->uptime_s = 3600;
	hb->state = "OPEN";
	hb->tamper = 0;
	hb->session_active = 1;
	hb->spool_depth = 12;
	hb->version = "0.1.0";
	hb->binary_digest = "ab12";
	hb->config_digest = "cd34";
	hb->chain_head = NULL;
	hb->period_s = 60;
}

static void test_fields(void **state)
{
	struct shim_heartbeat_info hb;
	struct shim_event ev;
	size_t i;

	info(&hb);
	assert_int_equal(shim_heartbeat_build(&ev, &hb, T0 * 1000000000LL), 0);
	assert_string_equal(ev.name, "heartbeat");
	assert_int_equal(ev.sign, 1);
	assert_int_equal(ev.nfields, sizeof(order) / sizeof(order[0]));
	for (i = 0; i < ev.nfields; i++) {
		assert_string_equal(ev.fields[i].key, order[i]);
	}
	assert_string_equal(shim_event_get(&ev, "time"), "1800000000");
	assert_string_equal(shim_event_get(&ev, "boot_count"), "7");
	assert_string_equal(shim_event_get(&ev, "uptime"), "3600");
	assert_string_equal(shim_event_get(&ev, "state"), "OPEN");
	assert_string_equal(shim_event_get(&ev, "tamper"), "clear");
	assert_string_equal(shim_event_get(&ev, "session_active"), "1");
	assert_string_equal(shim_event_get(&ev, "spool_depth"), "12");
	assert_string_equal(shim_event_get(&ev, "chain_head"), "-");

	hb.tamper = 1;
	hb.state = "EMERGENCY_STOP";
	assert_int_equal(shim_heartbeat_build(&ev, &hb, T0), 0);
	assert_string_equal(shim_event_get(&ev, "tamper"), "latched");
	assert_int_equal(ev.severity, SHIM_SEV_ALERT);

	assert_int_equal(shim_heartbeat_build_shutdown(&ev, &hb, "power_fail", T0),
			 0);
	assert_string_equal(ev.name, "shutting_down");
	assert_int_equal(ev.sign, 1);
	assert_string_equal(ev.fields[0].key, "reason");
	assert_string_equal(shim_event_get(&ev, "reason"), "power_fail");
	assert_int_equal(shim_heartbeat_build(NULL, &hb, T0), SHIM_EINVAL);
}

static void test_signed_and_verified(void **state)
{
	struct shim_linux_port lp;
	struct shim_heartbeat_info hb;
	struct shim_event ev, bad;
	uint8_t pub[SHIM_P256_PUB_LEN], other[SHIM_P256_PUB_LEN];
	char dir[] = "/tmp/test_hb.XXXXXX", key[64], key2[64];

	assert_non_null(mkdtemp(dir));
	snprintf(key, sizeof(key), "%s/id.key", dir);
	snprintf(key2, sizeof(key2), "%s/other.key", dir);
	assert_int_equal(shim_keys_generate(key, NULL, pub, NULL), 0);
	assert_int_equal(shim_keys_generate(key2, NULL, other, NULL), 0);
	assert_int_equal(shim_linux_port_init(&lp, NULL), 0);
	assert_int_equal(shim_linux_port_load_identity(&lp, key), 0);

	info(&hb);
	assert_int_equal(shim_heartbeat_build(&ev, &hb, T0 * 1000000000LL), 0);
	/* What the event log does: stamp, then sign. */
	strcpy(ev.shim_id, "pump-01");
	ev.seq = 42;
	assert_int_equal(shim_event_sign(&ev, &lp.port.crypto, canon,
					 sizeof(canon)), 0);
	assert_string_equal(ev.fields[ev.nfields - 1].key, "sig");
	assert_int_equal(strlen(shim_event_get(&ev, "sig")), 128);
	assert_int_equal(verify(&ev, pub, &lp.port.crypto), 0);

	/* Another key, an altered value, another seq, another shim. */
	assert_int_equal(verify(&ev, other, &lp.port.crypto), SHIM_ESIG);
	bad = ev;
	strcpy(bad.fields[5].value, "clear ");
	assert_int_equal(verify(&bad, pub, &lp.port.crypto), SHIM_ESIG);
	bad = ev;
	bad.seq = 43;
	assert_int_equal(verify(&bad, pub, &lp.port.crypto), SHIM_ESIG);
	bad = ev;
	strcpy(bad.shim_id, "pump-02");
	assert_int_equal(verify(&bad, pub, &lp.port.crypto), SHIM_ESIG);

	shim_linux_port_fini(&lp);
	unlink(key);
	unlink(key2);
	rmdir(dir);
}

static void test_timer(void **state)
{
	struct shim_hb_timer t;
	const int64_t s = 1000000000LL;

	shim_hb_timer_init(&t, 60.0, 100 * s);
	/* Due at once at start. */
	assert_int_equal(shim_hb_timer_ms(&t, 100 * s), 0);
	assert_int_equal(shim_hb_timer_fire(&t, 100 * s), 1);
	assert_int_equal(shim_hb_timer_fire(&t, 100 * s), 0);
	assert_int_equal(shim_hb_timer_ms(&t, 130 * s), 30000);
	assert_int_equal(shim_hb_timer_fire(&t, 159 * s), 0);
	assert_int_equal(shim_hb_timer_fire(&t, 160 * s), 1);
	/* A stall of ten periods gives one heartbeat, then the period. */
	assert_int_equal(shim_hb_timer_fire(&t, 800 * s), 1);
	assert_int_equal(shim_hb_timer_fire(&t, 801 * s), 0);
	assert_int_equal(shim_hb_timer_ms(&t, 801 * s), 59000);
	/* Nonsense periods are clamped. */
	shim_hb_timer_init(&t, 0.0, 0);
	assert_int_equal(t.period_ns, s);
}

/* The integer timer (what an MCU calls) and the host's seconds agree,
 * and both clamp to 1 s .. 1 day. */
static void test_timer_integer(void **state)
{
	struct shim_hb_timer t;
	const int64_t s = 1000000000LL;

	shim_hb_timer_start(&t, 1500000000LL, 0);
	assert_int_equal(t.period_ns, 1500000000LL);
	shim_hb_timer_init(&t, 1.5, 0);
	assert_int_equal(t.period_ns, 1500000000LL);
	shim_hb_timer_start(&t, 0, 0);
	assert_int_equal(t.period_ns, s);
	shim_hb_timer_start(&t, -5 * s, 0);
	assert_int_equal(t.period_ns, s);
	shim_hb_timer_start(&t, 90000 * s, 0);
	assert_int_equal(t.period_ns, 86400 * s);
	shim_hb_timer_init(&t, 1e12, 0);
	assert_int_equal(t.period_ns, 86400 * s);
	shim_hb_timer_init(&t, -1.0, 0);
	assert_int_equal(t.period_ns, s);
	shim_hb_timer_start(&t, 60 * s, 5 * s);
	assert_int_equal(shim_hb_timer_fire(&t, 5 * s), 1);
	/* Rounded up: never a hair early. */
	assert_int_equal(shim_hb_timer_ms(&t, 5 * s + 1), 60000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_signed_and_verified),
		cmocka_unit_test(test_timer),
		cmocka_unit_test(test_timer_integer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
