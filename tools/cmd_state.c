/*
 * shimctl state dump: what the unit's durable gate and clock state hold,
 * read without changing anything (docs/operations.md, "State files").
 *
 * For each two-slot file (the gate's replay marks and lockouts, the clock
 * floor): both slots' sequence, length and validity, and which one is
 * read; then, per enrolled technician, the last accepted time step, the
 * last success, the drift, the failures counted and the lockout; the
 * lockouts of IDs that are not enrolled; and the clock floor. Never a
 * secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fmt.h"
#include "gate.h"
#include "port_linux.h"
#include "slots.h"
#include "subcommands.h"
#include "techstore.h"
#include "techtool.h"
#include "toolutil.h"
#include "util.h"

static void iso(int64_t t, char *out, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(out, cap, "-");
		return;
	}
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void dump_slots(const char *state, const char *name)
{
	struct shim_slot_info info[2];
	char path[4096];
	uint8_t *img = NULL;
	size_t len = 0;
	int best, i, rc;

	snprintf(path, sizeof(path), "%s/%s.slots", state, name);
	rc = shim_read_file_opt(path, 64u << 20, SHIM_READ_NOFOLLOW, &img, &len,
				NULL);
	if (rc != 0) {
		printf("%s: %s\n", path, rc == SHIM_ENOENT ?
		       "none (not saved yet, or the single file of an earlier "
		       "version)" : shim_strerror(rc));
		return;
	}
	best = shim_slots_examine(img, len, info);
	printf("%s: %zu bytes, two slots of %zu\n", path, len, len / 2);
	for (i = 0; i < 2; i++) {
		printf("  slot %d: %s, sequence %llu, %u bytes%s\n", i,
		       info[i].valid ? "valid" : "INVALID (torn or altered)",
		       (unsigned long long)info[i].seq, (unsigned)info[i].len,
		       i == best ? "  <- read" : "");
	}
	if (best < 0) {
		printf("  no valid slot: shimd refuses every code until "
		       "shimctl gate reset-state\n");
	}
	free(img);
}

int cmd_state_main(int argc, char **argv, const char *config_path)
{
	struct tool_store ts;
	struct shim_technician *t = NULL;
	struct shim_gate *g = NULL;
	struct shim_clock clock;
	struct shim_clock_cfg ccfg;
	struct shim_gate_cfg gcfg;
	struct shim_linux_port lp;
	char why[600], when[32], until[32], *state = NULL;
	uint8_t *scratch = NULL;
	size_t n = 0, cap = 0, i, cur = 0;
	int64_t now = (int64_t)time(NULL);
	const char *lid;
	uint32_t left;
	int enrolled, rc, status = 1, have_lp = 0;

	if (argc != 2 || strcmp(argv[1], "dump") != 0) {
		fprintf(stderr, "usage: shimctl state dump\n");
		return 2;
	}
	if (tool_store_open(&ts, config_path, 0, "state") != 0) {
		tool_store_close(&ts);
		return 1;
	}
	state = shim_config_path(&ts.cfg, "state");
	if (state == NULL ||
	    shim_techs_build(&ts.cfg, ts.set, &t, &n, why, sizeof(why)) != 0) {
		fprintf(stderr, "shimctl state: %s\n", state ? why : "no memory");
		goto out;
	}
	dump_slots(state, SHIM_GATE_STATE_NAME);
	dump_slots(state, SHIM_CLOCK_STATE_NAME);
	if (shim_linux_port_init(&lp, NULL) != 0) {
		goto out;
	}
	have_lp = 1;
	lp.state_dir = state; /* read only: nothing is created or saved */
	state = NULL;
	shim_clock_cfg_default(&ccfg);
	ccfg.state_required = 1;
	rc = shim_clock_init(&clock, &ccfg, &lp.port);
	iso(shim_clock_floor(&clock), when, sizeof(when));
	printf("clock floor: %s%s\n", when, rc < 0 ? " (no valid clock state)" :
	       "");
	gcfg = ts.cfg.gate;
	gcfg.state_required = 1;
	g = calloc(1, sizeof(*g));
	cap = shim_gate_scratch_size(n);
	scratch = calloc(1, cap);
	if (g == NULL || scratch == NULL) {
		goto out;
	}
	rc = shim_gate_init(g, &gcfg, t, n, &lp.port, &clock, scratch, cap);
	if (rc != 0) {
		printf("gate state: %s: shimd refuses every code until shimctl "
		       "gate reset-state\n", rc == SHIM_ENOENT ? "missing" :
		       rc == SHIM_ECORRUPT ? "corrupt" : shim_strerror(rc));
		status = 0;
		goto out;
	}
	printf("\n%-32s %-12s %-20s %-6s %-9s %s\n", "TECHNICIAN", "LAST STEP",
	       "LAST SUCCESS", "DRIFT", "FAILURES", "LOCKED UNTIL");
	for (i = 0; i < n; i++) {
		iso(t[i].last_ok, when, sizeof(when));
		iso(t[i].fails.locked_until > now ? t[i].fails.locked_until : 0,
		    until, sizeof(until));
		printf("%-32s %-12llu %-20s %-+6d %-9u %s\n", t[i].id,
		       (unsigned long long)(t[i].last_step > t[i].min_step ?
					    t[i].last_step : t[i].min_step),
		       when, (int)t[i].drift, (unsigned)t[i].fails.failures,
		       until);
	}
	printf("\nlockouts of IDs not enrolled:\n");
	while (shim_gate_lockout_next(g, now, &cur, &lid, &left, &enrolled) ==
	       1) {
		char safe[SHIM_TECH_ID_MAX * 4 + 1];

		if (enrolled) {
			continue;
		}
		shim_sanitize(safe, sizeof(safe), lid, strlen(lid));
		iso(now + left, until, sizeof(until));
		printf("  %s until %s\n", safe, until);
	}
	status = 0;
out:
	if (g != NULL) {
		shim_gate_wipe(g);
	}
	free(g);
	if (scratch != NULL) {
		shim_memzero(scratch, cap);
	}
	free(scratch);
	shim_techs_free(t, n);
	free(state);
	if (have_lp) {
		shim_linux_port_fini(&lp);
	}
	tool_store_close(&ts);
	return status;
}
