/*
 * Sensors on Linux: a real file sensor tripping and clearing through
 * inotify, debounce, roles, a path that cannot be read, and a GPIO chip
 * that is not there (FAULT). Real GPIO edges need gpio-sim or gpio-mockup,
 * which need a kernel with loadable modules and configfs; where those are
 * missing (containers) the GPIO edge path is not exercised here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sensors.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_sensors.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void one_file(struct shim_config *cfg, char *path,
		     enum shim_sensor_role role, uint32_t debounce)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nsensors = 1;
	cfg->sensors[0].type = SHIM_SENSOR_FILE;
	cfg->sensors[0].role = role;
	cfg->sensors[0].event = "case_opened";
	cfg->sensors[0].path = path;
	cfg->sensors[0].debounce_ms = debounce;
}

/* Polls like the daemon does until an event comes or max_ms pass. */
static int wait_event(struct shim_sensors *s, struct shim_sensor_event *ev,
		      int max_ms)
{
	struct pollfd pfd[SHIM_MAX_SENSORS + 1];
	int64_t end = now_us() + (int64_t)max_ms * 1000;
	int n, t;

	for (;;) {
		if (shim_sensors_next(s, ev)) {
			return 1;
		}
		if (now_us() >= end) {
			return 0;
		}
		n = (int)shim_sensors_pollfds(s, pfd, SHIM_MAX_SENSORS + 1);
		t = shim_sensors_timeout_ms(s);
		if (t < 0 || t > max_ms) {
			t = max_ms;
		}
		poll(pfd, (nfds_t)n, t);
	}
}

static void test_file_trip_and_clear(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	struct pollfd pfd[4];
	char path[128];
	int64_t t0, lat;
	FILE *f;

	snprintf(path, sizeof(path), "%s/case-open", dir);
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 0);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_next(s, &ev), 0);
	assert_int_equal(shim_sensors_any_tripped(s), 0);
	assert_int_equal(shim_sensors_pollfds(s, pfd, 4), 1);
	/* File sensors are looked at again at least once a second. */
	assert_true(shim_sensors_timeout_ms(s) <= 1000);

	t0 = now_us();
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	/* inotify wakes the poll at once. */
	assert_int_equal(poll(pfd, 1, 1000), 1);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	lat = now_us() - t0;
	print_message("file sensor: create to TRIPPED in %lld us\n",
		      (long long)lat);
	assert_true(lat < 100000);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	assert_int_equal(ev.role, SHIM_ROLE_TAMPER);
	assert_string_equal(ev.event, "case_opened");
	assert_non_null(strstr(ev.detail, path));
	assert_int_equal(shim_sensors_any_tripped(s), 1);
	assert_int_equal(shim_sensors_next(s, &ev), 0);

	assert_int_equal(unlink(path), 0);
	assert_int_equal(wait_event(s, &ev, 2000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_CLEARED);
	assert_int_equal(shim_sensors_any_tripped(s), 0);
	shim_sensors_close(s);
}

static void test_file_tripped_at_start(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/already", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 50);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	/* No debounce wait for the state found at start. */
	assert_int_equal(shim_sensors_any_tripped(s), 1);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	shim_sensors_close(s);
	unlink(path);
}

static void test_file_debounce(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	char path[128];
	int64_t t0;
	FILE *f;

	/* A tamper contact trips on its first edge: debounce never delays
	 * closing the gate. */
	snprintf(path, sizeof(path), "%s/case", dir);
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 150);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	t0 = now_us();
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(wait_event(s, &ev, 1000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	assert_true(now_us() - t0 < 100000);
	/* Its clearing is debounced. */
	unlink(path);
	usleep(20000);
	assert_int_equal(shim_sensors_next(s, &ev), 0);
	assert_int_equal(wait_event(s, &ev, 1000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_CLEARED);
	shim_sensors_close(s);

	/* A power-fail input ignores a blip shorter than the debounce... */
	snprintf(path, sizeof(path), "%s/bouncy", dir);
	one_file(&cfg, path, SHIM_ROLE_POWER_FAIL, 150);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	usleep(20000);
	assert_int_equal(shim_sensors_next(s, &ev), 0);
	assert_true(shim_sensors_timeout_ms(s) <= 150);
	unlink(path);
	assert_int_equal(wait_event(s, &ev, 400), 0);
	/* ...and reports a steady one after the debounce. */
	t0 = now_us();
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(wait_event(s, &ev, 1000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	assert_true(now_us() - t0 >= 150000);
	shim_sensors_close(s);
	unlink(path);
}

static void test_directory_created_later(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	char sub[128], path[160];
	FILE *f;

	snprintf(sub, sizeof(sub), "%s/later", dir);
	snprintf(path, sizeof(path), "%s/flag", sub);
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 0);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	/* No watch on a directory that did not exist: nothing wakes the
	 * poll, the timeout (at most a second) does, and the check then
	 * finds the path. */
	{
		struct pollfd pfd[2];
		int n = (int)shim_sensors_pollfds(s, pfd, 2);
		int t = shim_sensors_timeout_ms(s);

		assert_true(t >= 0 && t <= 1000);
		assert_int_equal(poll(pfd, (nfds_t)n, t), 0);
	}
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	shim_sensors_close(s);
}

static void test_roles(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	char pf[128], rk[128];
	FILE *f;

	snprintf(pf, sizeof(pf), "%s/ups-on-battery", dir);
	snprintf(rk, sizeof(rk), "%s/reset-key", dir);
	f = fopen(rk, "w");
	assert_non_null(f);
	fclose(f);
	memset(&cfg, 0, sizeof(cfg));
	cfg.nsensors = 2;
	cfg.sensors[0].type = SHIM_SENSOR_FILE;
	cfg.sensors[0].role = SHIM_ROLE_POWER_FAIL;
	cfg.sensors[0].event = "power_fail";
	cfg.sensors[0].path = pf;
	cfg.sensors[1].type = SHIM_SENSOR_FILE;
	cfg.sensors[1].role = SHIM_ROLE_RESET_KEY;
	cfg.sensors[1].path = rk;
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_reset_key_held(s), 1);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.role, SHIM_ROLE_RESET_KEY);
	assert_string_equal(ev.event, "reset_key");

	f = fopen(pf, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(wait_event(s, &ev, 1000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	assert_int_equal(ev.role, SHIM_ROLE_POWER_FAIL);
	/* Power failure is not tamper. */
	assert_int_equal(shim_sensors_any_tripped(s), 0);
	shim_sensors_close(s);
	unlink(pf);
	unlink(rk);
}

static void test_unreadable_file_faults(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	char loop[128], path[160];

	snprintf(loop, sizeof(loop), "%s/loop", dir);
	snprintf(path, sizeof(path), "%s/x", loop);
	assert_int_equal(symlink(loop, loop), 0);
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 0);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_FAULT);
	assert_non_null(strstr(ev.detail, "unreadable"));
	assert_int_equal(shim_sensors_any_fault(s), 1);
	shim_sensors_close(s);
	unlink(loop);
}

/* The check before a reset reads the sensors now, not their reported
 * (debounced) state, and never queues an event. */
static void test_tamper_state_reads_now(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	const char *event;
	char path[128], pf[128], detail[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/lid", dir);
	snprintf(pf, sizeof(pf), "%s/ups", dir);
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 5000);
	cfg.nsensors = 2;
	cfg.sensors[1].type = SHIM_SENSOR_FILE;
	cfg.sensors[1].role = SHIM_ROLE_POWER_FAIL;
	cfg.sensors[1].event = "mains_lost";
	cfg.sensors[1].path = pf;
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_tamper_state(s, &event, detail,
						   sizeof(detail)),
			 SHIM_SENSORS_CLEAR);
	assert_null(event);
	/* Other roles are not tamper. */
	f = fopen(pf, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(shim_sensors_tamper_state(s, NULL, NULL, 0),
			 SHIM_SENSORS_CLEAR);

	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	/* Active at once, before the loop has even looked. */
	assert_int_equal(shim_sensors_tamper_state(s, &event, detail,
						   sizeof(detail)),
			 SHIM_SENSORS_ACTIVE);
	assert_string_equal(event, "case_opened");
	assert_non_null(strstr(detail, path));
	assert_int_equal(wait_event(s, &ev, 1000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	/* Closed again: the clear is still in its 5 s debounce, but the
	 * check reads the switch as it is now. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(shim_sensors_any_tripped(s), 1);
	assert_int_equal(shim_sensors_tamper_state(s, &event, NULL, 0),
			 SHIM_SENSORS_CLEAR);
	shim_sensors_close(s);
	unlink(pf);
}

/* The bug this guards against: reports are edges, so a case opened,
 * closed (clear still debouncing) and opened again, or never closed, was
 * never reported again after a reset. Re-arming reports it at once. */
static void test_rearm_reports_still_active(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/case-rearm", dir);
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 0);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(wait_event(s, &ev, 1000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	/* Still open: no news without a re-arm... */
	assert_int_equal(wait_event(s, &ev, 300), 0);
	/* ...and TRIPPED again at once with one. */
	shim_sensors_rearm(s);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	assert_string_equal(ev.event, "case_opened");
	assert_int_equal(shim_sensors_next(s, &ev), 0);
	shim_sensors_close(s);

	/* Debounced clear, then re-opened within the debounce. */
	one_file(&cfg, path, SHIM_ROLE_TAMPER, 5000);
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(wait_event(s, &ev, 200), 0);
	/* The reset happens here: the case reads closed. A clear sensor
	 * re-armed is no news. */
	shim_sensors_rearm(s);
	assert_int_equal(shim_sensors_next(s, &ev), 0);
	assert_int_equal(shim_sensors_any_tripped(s), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(wait_event(s, &ev, 1000), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	shim_sensors_close(s);
	unlink(path);
}

static void test_tamper_state_fault(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	const char *event;
	char path[128], detail[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/case-f", dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.nsensors = 2;
	cfg.sensors[0].type = SHIM_SENSOR_GPIO;
	cfg.sensors[0].role = SHIM_ROLE_TAMPER;
	cfg.sensors[0].event = "lid_switch";
	cfg.sensors[0].chip = "gpiochip-not-here";
	cfg.sensors[0].line = 4;
	cfg.sensors[1].type = SHIM_SENSOR_FILE;
	cfg.sensors[1].role = SHIM_ROLE_TAMPER;
	cfg.sensors[1].event = "case_opened";
	cfg.sensors[1].path = path;
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_tamper_state(s, &event, detail,
						   sizeof(detail)),
			 SHIM_SENSORS_FAULT);
	assert_string_equal(event, "lid_switch");
	assert_non_null(strstr(detail, "gpiochip-not-here"));
	/* An active sensor wins over a faulted one. */
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(shim_sensors_tamper_state(s, &event, NULL, 0),
			 SHIM_SENSORS_ACTIVE);
	assert_string_equal(event, "case_opened");
	/* Re-arming reports the fault and the trip again. */
	while (shim_sensors_next(s, &ev)) {
	}
	shim_sensors_rearm(s);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_FAULT);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_TRIPPED);
	shim_sensors_close(s);
	unlink(path);
	/* No sensors at all read clear; a NULL set too. */
	assert_int_equal(shim_sensors_tamper_state(NULL, &event, NULL, 0),
			 SHIM_SENSORS_CLEAR);
	shim_sensors_rearm(NULL);
}

static void test_gpio_chip_missing(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;

	memset(&cfg, 0, sizeof(cfg));
	cfg.nsensors = 1;
	cfg.sensors[0].type = SHIM_SENSOR_GPIO;
	cfg.sensors[0].role = SHIM_ROLE_TAMPER;
	cfg.sensors[0].event = "case_opened";
	cfg.sensors[0].chip = "gpiochip-does-not-exist";
	cfg.sensors[0].line = 17;
	cfg.sensors[0].active_low = 1;
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_next(s, &ev), 1);
	assert_int_equal(ev.kind, SHIM_SENSOR_EV_FAULT);
	assert_int_equal(ev.role, SHIM_ROLE_TAMPER);
	assert_string_equal(ev.event, "case_opened");
	assert_non_null(strstr(ev.detail, "gpiochip-does-not-exist line 17"));
	assert_non_null(strstr(ev.detail, "chip missing"));
	assert_int_equal(shim_sensors_any_fault(s), 1);
	assert_int_equal(shim_sensors_any_tripped(s), 0);
	/* Reported once, retried quietly. */
	assert_int_equal(shim_sensors_next(s, &ev), 0);
	assert_true(shim_sensors_timeout_ms(s) <= 1000);
	shim_sensors_close(s);
}

static void test_no_sensors(void **state)
{
	struct shim_config cfg;
	struct shim_sensors *s;
	struct shim_sensor_event ev;
	struct pollfd pfd[2];

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(shim_sensors_open(&s, &cfg), 0);
	assert_int_equal(shim_sensors_pollfds(s, pfd, 2), 0);
	assert_int_equal(shim_sensors_timeout_ms(s), -1);
	assert_int_equal(shim_sensors_next(s, &ev), 0);
	shim_sensors_close(s);
	shim_sensors_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_trip_and_clear),
		cmocka_unit_test(test_file_tripped_at_start),
		cmocka_unit_test(test_file_debounce),
		cmocka_unit_test(test_directory_created_later),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_unreadable_file_faults),
		cmocka_unit_test(test_gpio_chip_missing),
		cmocka_unit_test(test_no_sensors),
		cmocka_unit_test(test_tamper_state_reads_now),
		cmocka_unit_test(test_rearm_reports_still_active),
		cmocka_unit_test(test_tamper_state_fault),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
