/*
 * Tamper sensors on Linux: file sensors (trip while a path exists) and
 * GPIO lines through libgpiod edge events, with debounce. The daemon
 * polls the descriptors given here and asks for events after each wake.
 */
#ifndef SHIM_COMMON_SENSORS_H
#define SHIM_COMMON_SENSORS_H

#include <poll.h>
#include <stddef.h>

#include "config.h"

enum shim_sensor_kind {
	SHIM_SENSOR_EV_TRIPPED = 1,
	SHIM_SENSOR_EV_CLEARED,
	SHIM_SENSOR_EV_FAULT,
};

struct shim_sensor_event {
	enum shim_sensor_kind kind;
	enum shim_sensor_role role;
	const char *event;       /* the configured event name, e.g. case_opened */
	char detail[128];        /* e.g. "gpiochip0 line 17 falling edge" */
};

struct shim_sensors;

int shim_sensors_open(struct shim_sensors **out, const struct shim_config *cfg);

/* Descriptors to poll for POLLIN/POLLPRI. Returns how many were written. */
size_t shim_sensors_pollfds(struct shim_sensors *s, struct pollfd *pfds,
			    size_t cap);

/* Milliseconds until the sensors next need a look (debounce, file checks),
 * or -1 for none. */
int shim_sensors_timeout_ms(struct shim_sensors *s);

/* After a wake: 1 and *ev filled when an event is ready, 0 when none. */
int shim_sensors_next(struct shim_sensors *s, struct shim_sensor_event *ev);

/* What shim_sensors_tamper_state() read. No value is 0, so a zeroed
 * result never reads as clear. */
enum shim_sensors_state {
	SHIM_SENSORS_CLEAR = 1,  /* every tamper sensor reads clear */
	SHIM_SENSORS_ACTIVE,     /* one reads active (tripped) now */
	SHIM_SENSORS_FAULT,      /* none active, but one cannot be read */
};

/*
 * Reads every tamper-role sensor now, without the debounce and without
 * queuing events or changing what was reported (for the check before a
 * reset of the latch). An active sensor wins over a faulted one. *event
 * (may be NULL) gets the event name of the sensor that decided it, and
 * detail (may be NULL, cap bytes) what was read. A NULL set (no sensors)
 * reads SHIM_SENSORS_CLEAR.
 */
enum shim_sensors_state shim_sensors_tamper_state(struct shim_sensors *s,
						  const char **event,
						  char *detail, size_t cap);

/*
 * Forgets what was reported for the tamper-role sensors and reads them
 * again as at start: one that reads active now is queued as TRIPPED (and
 * one in fault as FAULT) at once, even though it never went clear. Call it
 * after a reset of the latch, so a case still (or again) open trips anew.
 */
void shim_sensors_rearm(struct shim_sensors *s);

/* 1 when any tamper sensor is tripped now (checked at start). */
int shim_sensors_any_tripped(struct shim_sensors *s);

/* 1 when a reset_key sensor is active now (read it at start only). */
int shim_sensors_reset_key_held(struct shim_sensors *s);
#ifdef SHIM_FACTORY_BUILD
/* Factory build only: 1 while a factory_jumper input reads active. */
int shim_sensors_factory_jumper(struct shim_sensors *s);
#endif

/* 1 when any sensor is in fault now (tamper.on_sensor_fault decides). */
int shim_sensors_any_fault(struct shim_sensors *s);

void shim_sensors_close(struct shim_sensors *s);

#endif
