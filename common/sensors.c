/*
 * Tamper sensors on Linux. See sensors.h.
 *
 * file: trips while its path exists. An inotify watch on the parent
 * directory wakes the loop at once on create/delete/rename; every wake and
 * every timeout (at most SENSOR_CHECK_MS apart) also looks with stat(), so
 * a directory created later, or an inotify queue overflow, cannot hide a
 * trip for long.
 *
 * gpio: libgpiod 1.6 line requested for both edge events, with the
 * active-low flag when the line is active low, so a value of 1 always
 * means "active" (tripped). After an edge the level is read back and must
 * hold for debounce_ms before the new state is reported.
 *
 * A sensor that cannot be read reports SHIM_SENSOR_EV_FAULT; a faulted
 * GPIO is re-opened at each periodic check and reports its state again
 * once it reads.
 *
 * Reports are edges: a sensor that stays active is reported once. After a
 * reset of the latch the daemon re-arms the tamper sensors, so one that is
 * still active is reported again instead of staying silent.
 */
#include "sensors.h"

#include <errno.h>
#include <gpiod.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SENSOR_CHECK_MS 1000
#define EVQ_LEN 64

enum raw_state {
	RAW_CLEAR = 0,
	RAW_ACTIVE = 1,
	RAW_FAULT = 2,
};

struct sensor {
	enum shim_sensor_type type;
	enum shim_sensor_role role;
	char *event;
	char *path;             /* file */
	char *chip_name;        /* gpio */
	unsigned line_no;
	int active_low;
	uint32_t debounce_ms;
	int reported;           /* enum raw_state last reported, -1 none */
	int raw;                /* last raw reading */
	int64_t raw_since_us;   /* when raw last changed */
	char fault[96];
	struct gpiod_chip *chip;
	struct gpiod_line *line;
	int fd;
};

struct shim_sensors {
	struct sensor s[SHIM_MAX_SENSORS];
	size_t n;
	int ino_fd;
	int64_t next_check_us;
	struct shim_sensor_event q[EVQ_LEN];
	size_t q_head, q_len;
};

/* Microseconds, so that a debounce holds for all of its milliseconds:
 * on a millisecond clock a change seen just before a tick would count
 * that tick's whole millisecond. */
static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void push(struct shim_sensors *ss, struct sensor *s,
		 enum shim_sensor_kind kind, const char *detail)
{
	struct shim_sensor_event *ev;

	if (ss->q_len == EVQ_LEN) {
		/* A full queue drops the oldest: the newest state wins. */
		ss->q_head = (ss->q_head + 1) % EVQ_LEN;
		ss->q_len--;
	}
	ev = &ss->q[(ss->q_head + ss->q_len) % EVQ_LEN];
	ss->q_len++;
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->role = s->role;
	ev->event = s->event;
	snprintf(ev->detail, sizeof(ev->detail), "%s", detail);
}

static void describe(const struct sensor *s, char *buf, size_t cap,
		     const char *what)
{
	if (s->type == SHIM_SENSOR_FILE) {
		snprintf(buf, cap, "file %s %s", s->path ? s->path : "(none)",
			 what);
	} else {
		snprintf(buf, cap, "%s line %u %s", s->chip_name ? s->chip_name :
			 "(none)", s->line_no, what);
	}
}

/* Reports a state change, once. */
static void report(struct shim_sensors *ss, struct sensor *s, int state)
{
	char detail[128];

	if (s->reported == state) {
		return;
	}
	if (state == RAW_FAULT) {
		describe(s, detail, sizeof(detail), s->fault);
		push(ss, s, SHIM_SENSOR_EV_FAULT, detail);
	} else if (state == RAW_ACTIVE) {
		describe(s, detail, sizeof(detail),
			 s->type == SHIM_SENSOR_FILE ? "exists" : "active");
		push(ss, s, SHIM_SENSOR_EV_TRIPPED, detail);
	} else if (s->reported != -1) {
		/* The first reading of a clear sensor is no news. */
		describe(s, detail, sizeof(detail),
			 s->type == SHIM_SENSOR_FILE ? "gone" : "inactive");
		push(ss, s, SHIM_SENSOR_EV_CLEARED, detail);
	}
	s->reported = state;
}

/* Feeds a raw reading through the debounce. Faults, and tamper sensors
 * becoming active, are reported at once: the debounce only keeps a
 * bouncing contact from reporting a clear (or a power-fail glitch from
 * shutting down); it must never delay closing the gate. */
static void feed(struct shim_sensors *ss, struct sensor *s, int raw,
		 int64_t now)
{
	if (raw != s->raw) {
		s->raw = raw;
		s->raw_since_us = now;
	}
	if (raw == RAW_FAULT || s->debounce_ms == 0 || s->reported == -1 ||
	    (raw == RAW_ACTIVE && s->role == SHIM_ROLE_TAMPER) ||
	    now - s->raw_since_us >= (int64_t)s->debounce_ms * 1000) {
		report(ss, s, raw);
	}
}

/* ---- file sensors -------------------------------------------------------- */

static int file_read(struct sensor *s)
{
	struct stat st;

	if (s->path == NULL || s->path[0] == '\0') {
		snprintf(s->fault, sizeof(s->fault), "has no path");
		return RAW_FAULT;
	}
	if (lstat(s->path, &st) == 0) {
		return RAW_ACTIVE;
	}
	if (errno == ENOENT || errno == ENOTDIR) {
		return RAW_CLEAR;
	}
	snprintf(s->fault, sizeof(s->fault), "unreadable: %s", strerror(errno));
	return RAW_FAULT;
}

static void file_watch(struct shim_sensors *ss, struct sensor *s)
{
	char dir[PATH_MAX];
	char *slash;

	if (ss->ino_fd < 0 || s->path == NULL) {
		return;
	}
	snprintf(dir, sizeof(dir), "%s", s->path);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	/* A missing directory cannot hold the path; the periodic check will
	 * still see it if both appear later. */
	(void)inotify_add_watch(ss->ino_fd, dir,
				IN_CREATE | IN_DELETE | IN_MOVED_FROM |
				IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
				IN_ATTRIB | IN_ONLYDIR);
}

/* ---- gpio sensors ------------------------------------------------------- */

static void gpio_release(struct sensor *s)
{
	if (s->line != NULL) {
		gpiod_line_release(s->line);
		s->line = NULL;
	}
	if (s->chip != NULL) {
		gpiod_chip_close(s->chip);
		s->chip = NULL;
	}
	s->fd = -1;
}

static int gpio_open(struct sensor *s)
{
	int flags = s->active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
	int v;

	gpio_release(s);
	if (s->chip_name == NULL || s->chip_name[0] == '\0') {
		snprintf(s->fault, sizeof(s->fault), "has no chip");
		return RAW_FAULT;
	}
	s->chip = gpiod_chip_open_lookup(s->chip_name);
	if (s->chip == NULL) {
		snprintf(s->fault, sizeof(s->fault), "chip missing: %s",
			 strerror(errno));
		return RAW_FAULT;
	}
	s->line = gpiod_chip_get_line(s->chip, s->line_no);
	if (s->line == NULL) {
		snprintf(s->fault, sizeof(s->fault), "no such line: %s",
			 strerror(errno));
		gpio_release(s);
		return RAW_FAULT;
	}
	if (gpiod_line_request_both_edges_events_flags(s->line, "shimd",
						       flags) != 0) {
		snprintf(s->fault, sizeof(s->fault), "line busy: %s",
			 strerror(errno));
		s->line = NULL; /* not ours to release */
		gpio_release(s);
		return RAW_FAULT;
	}
	s->fd = gpiod_line_event_get_fd(s->line);
	v = gpiod_line_get_value(s->line);
	if (s->fd < 0 || v < 0) {
		snprintf(s->fault, sizeof(s->fault), "I/O error: %s",
			 strerror(errno));
		gpio_release(s);
		return RAW_FAULT;
	}
	return v ? RAW_ACTIVE : RAW_CLEAR;
}

/* Drains the edge events of a line, then reads its level. */
static int gpio_read(struct sensor *s, int drain)
{
	struct gpiod_line_event ev;
	struct timespec zero = { 0, 0 };
	int v, r;

	if (s->line == NULL) {
		return gpio_open(s);
	}
	while (drain) {
		r = gpiod_line_event_wait(s->line, &zero);
		if (r == 0) {
			break;
		}
		if (r < 0 || gpiod_line_event_read(s->line, &ev) != 0) {
			snprintf(s->fault, sizeof(s->fault), "I/O error: %s",
				 strerror(errno));
			gpio_release(s);
			return RAW_FAULT;
		}
	}
	v = gpiod_line_get_value(s->line);
	if (v < 0) {
		snprintf(s->fault, sizeof(s->fault), "I/O error: %s",
			 strerror(errno));
		gpio_release(s);
		return RAW_FAULT;
	}
	return v ? RAW_ACTIVE : RAW_CLEAR;
}

/* ---- the set ------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int shim_sensors_open(struct shim_sensors **out,
		      const struct shim_config *cfg)
{
	struct shim_sensors *ss;
	struct sensor *s;
	int64_t now = now_us();
	size_t i;
	int raw;

	*out = NULL;
	if (cfg->nsensors > SHIM_MAX_SENSORS) {
		return SHIM_EINVAL;
	}
	ss = calloc(1, sizeof(*ss));
	if (ss == NULL) {
		return SHIM_ENOMEM;
	}
	ss->ino_fd = -1;
	for (i = 0; i < cfg->nsensors; i++) {
		if (cfg->sensors[i].type == SHIM_SENSOR_FILE) {
			ss->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
			break;
		}
	}
	for (i = 0; i < cfg->nsensors; i++) {
		const struct shim_sensor_cfg *c = &cfg->sensors[i];

		s = &ss->s[ss->n++];
		s->type = c->type;
		s->role = c->role;
		s->event = strdup(c->event != NULL ? c->event :
				  (c->role == SHIM_ROLE_POWER_FAIL ? "power_fail" :
				   c->role == SHIM_ROLE_RESET_KEY ? "reset_key" :
				   "tamper"));
		s->path = dup_or_null(c->path);
		s->chip_name = dup_or_null(c->chip);
		if (s->event == NULL || (c->path != NULL && s->path == NULL) ||
		    (c->chip != NULL && s->chip_name == NULL)) {
			shim_sensors_close(ss);
			return SHIM_ENOMEM;
		}
		s->line_no = c->line;
		s->active_low = c->active_low;
		s->debounce_ms = c->debounce_ms;
		s->reported = -1;
		s->raw = -1;
		s->fd = -1;
		if (s->type == SHIM_SENSOR_FILE) {
			file_watch(ss, s);
			raw = file_read(s);
		} else {
			raw = gpio_open(s);
		}
		feed(ss, s, raw, now);
	}
	ss->next_check_us = now + SENSOR_CHECK_MS * 1000;
	*out = ss;
	return 0;
}

size_t shim_sensors_pollfds(struct shim_sensors *ss, struct pollfd *pfds,
			    size_t cap)
{
	size_t i, n = 0;

	if (ss == NULL) {
		return 0;
	}
	if (ss->ino_fd >= 0 && n < cap) {
		pfds[n].fd = ss->ino_fd;
		pfds[n].events = POLLIN;
		pfds[n].revents = 0;
		n++;
	}
	for (i = 0; i < ss->n && n < cap; i++) {
		if (ss->s[i].type == SHIM_SENSOR_GPIO && ss->s[i].fd >= 0) {
			pfds[n].fd = ss->s[i].fd;
			pfds[n].events = POLLIN | POLLPRI;
			pfds[n].revents = 0;
			n++;
		}
	}
	return n;
}

int shim_sensors_timeout_ms(struct shim_sensors *ss)
{
	int64_t now = now_us(), due = INT64_MAX;
	size_t i;

	if (ss == NULL || ss->n == 0) {
		return -1;
	}
	if (ss->q_len > 0) {
		return 0;
	}
	due = ss->next_check_us;
	for (i = 0; i < ss->n; i++) {
		struct sensor *s = &ss->s[i];

		if (s->raw != s->reported && s->raw != -1) {
			int64_t t = s->raw_since_us +
				    (int64_t)s->debounce_ms * 1000;

			if (t < due) {
				due = t;
			}
		}
	}
	if (due <= now) {
		return 0;
	}
	/* whole milliseconds, rounded up: a wake never comes early */
	due = (due - now + 999) / 1000;
	return due > INT32_MAX ? INT32_MAX : (int)due;
}

/* Looks at every sensor: drains inotify and the edge queues, reads
 * levels, applies the debounce. */
static void scan(struct shim_sensors *ss)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int64_t now = now_us();
	int periodic = now >= ss->next_check_us;
	size_t i;

	if (ss->ino_fd >= 0) {
		while (read(ss->ino_fd, buf, sizeof(buf)) > 0) {
		}
	}
	for (i = 0; i < ss->n; i++) {
		struct sensor *s = &ss->s[i];

		if (s->type == SHIM_SENSOR_FILE) {
			feed(ss, s, file_read(s), now);
		} else if (s->line != NULL || periodic) {
			feed(ss, s, gpio_read(s, 1), now);
		}
	}
	if (periodic) {
		ss->next_check_us = now + SENSOR_CHECK_MS * 1000;
	}
}

int shim_sensors_next(struct shim_sensors *ss, struct shim_sensor_event *ev)
{
	if (ss == NULL) {
		return 0;
	}
	if (ss->q_len == 0) {
		scan(ss);
	}
	if (ss->q_len == 0) {
		return 0;
	}
	*ev = ss->q[ss->q_head];
	ss->q_head = (ss->q_head + 1) % EVQ_LEN;
	ss->q_len--;
	return 1;
}

enum shim_sensors_state shim_sensors_tamper_state(struct shim_sensors *ss,
						  const char **event,
						  char *detail, size_t cap)
{
	enum shim_sensors_state st = SHIM_SENSORS_CLEAR;
	const struct sensor *why = NULL;
	char what[128];
	size_t i;
	int raw, v;

	if (event != NULL) {
		*event = NULL;
	}
	if (detail != NULL && cap > 0) {
		detail[0] = '\0';
	}
	what[0] = '\0';
	if (ss == NULL) {
		return SHIM_SENSORS_CLEAR;
	}
	for (i = 0; i < ss->n && st != SHIM_SENSORS_ACTIVE; i++) {
		struct sensor *s = &ss->s[i];

		if (s->role != SHIM_ROLE_TAMPER) {
			continue;
		}
		if (s->type == SHIM_SENSOR_FILE) {
			raw = file_read(s);
		} else if (s->line == NULL) {
			/* Faulted and not re-opened yet: it cannot vouch for
			 * a closed case. */
			raw = RAW_FAULT;
		} else {
			v = gpiod_line_get_value(s->line);
			if (v < 0) {
				snprintf(s->fault, sizeof(s->fault),
					 "I/O error: %s", strerror(errno));
			}
			raw = v < 0 ? RAW_FAULT : (v ? RAW_ACTIVE : RAW_CLEAR);
		}
		if (raw == RAW_ACTIVE) {
			st = SHIM_SENSORS_ACTIVE;
			why = s;
			describe(s, what, sizeof(what),
				 s->type == SHIM_SENSOR_FILE ? "exists" : "active");
		} else if (raw == RAW_FAULT && st == SHIM_SENSORS_CLEAR) {
			st = SHIM_SENSORS_FAULT;
			why = s;
			describe(s, what, sizeof(what), s->fault);
		}
	}
	if (why != NULL && event != NULL) {
		*event = why->event;
	}
	if (why != NULL && detail != NULL && cap > 0) {
		snprintf(detail, cap, "%s", what);
	}
	return st;
}

void shim_sensors_rearm(struct shim_sensors *ss)
{
	int64_t now = now_us();
	size_t i;
	int raw;

	if (ss == NULL) {
		return;
	}
	for (i = 0; i < ss->n; i++) {
		struct sensor *s = &ss->s[i];

		if (s->role != SHIM_ROLE_TAMPER) {
			continue;
		}
		/* As at open: the first reading is reported, active or
		 * faulted, and a clear one is no news. */
		s->reported = -1;
		s->raw = -1;
		if (s->type == SHIM_SENSOR_FILE) {
			raw = file_read(s);
		} else if (s->line != NULL) {
			raw = gpio_read(s, 1);
		} else {
			/* Re-opened by the periodic check, not here: a new
			 * line descriptor is the loop's business. */
			raw = RAW_FAULT;
		}
		feed(ss, s, raw, now);
	}
}

static int any_in(struct shim_sensors *ss, enum shim_sensor_role role,
		  int state)
{
	size_t i;

	if (ss == NULL) {
		return 0;
	}
	for (i = 0; i < ss->n; i++) {
		if (ss->s[i].role == role && ss->s[i].reported == state) {
			return 1;
		}
	}
	return 0;
}

int shim_sensors_any_tripped(struct shim_sensors *ss)
{
	return any_in(ss, SHIM_ROLE_TAMPER, RAW_ACTIVE);
}

int shim_sensors_reset_key_held(struct shim_sensors *ss)
{
	return any_in(ss, SHIM_ROLE_RESET_KEY, RAW_ACTIVE);
}

#ifdef SHIM_FACTORY_BUILD
int shim_sensors_factory_jumper(struct shim_sensors *ss)
{
	return any_in(ss, SHIM_ROLE_FACTORY_JUMPER, RAW_ACTIVE);
}
#endif

int shim_sensors_any_fault(struct shim_sensors *ss)
{
	size_t i;

	if (ss == NULL) {
		return 0;
	}
	for (i = 0; i < ss->n; i++) {
		if (ss->s[i].reported == RAW_FAULT) {
			return 1;
		}
	}
	return 0;
}

void shim_sensors_close(struct shim_sensors *ss)
{
	size_t i;

	if (ss == NULL) {
		return;
	}
	for (i = 0; i < ss->n; i++) {
		gpio_release(&ss->s[i]);
		free(ss->s[i].event);
		free(ss->s[i].path);
		free(ss->s[i].chip_name);
	}
	if (ss->ino_fd >= 0) {
		close(ss->ino_fd);
	}
	free(ss);
}
