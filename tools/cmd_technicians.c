/*
 * shimctl technicians list|remove|import: the unit's enrolled technicians
 * (docs/lifecycle.md, "Technicians").
 *
 *   shimctl technicians list [--json]
 *       every technician the gate accepts: the sealed store's and the
 *       configuration's (inline or technicians_file), with algorithm,
 *       digits, period, enrolment date, last success and drift (from the
 *       gate state). Never a secret.
 *   shimctl technicians remove ID
 *       removes ID from the sealed store; a running shimd stops accepting
 *       it at once (and ends its open session).
 *   shimctl technicians import
 *       moves the configuration's technicians into the sealed store; a
 *       technicians_file is overwritten and removed afterwards, and the
 *       inline technicians: block is named for the operator to delete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otp.h"
#include "subcommands.h"
#include "techstore.h"
#include "techtool.h"
#include "toolutil.h"
#include "util.h"

static const char usage_text[] =
	"usage: shimctl technicians list [--json] | remove ID | import\n";

static void iso(int64_t t, char *out, size_t cap, const char *none)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		snprintf(out, cap, "%s", none);
		return;
	}
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\') {
			printf("\\%c", *s);
		} else if ((unsigned char)*s < 0x20) {
			printf("\\u%04x", (unsigned char)*s);
		} else {
			putchar(*s);
		}
	}
	putchar('"');
}

struct row {
	const char *id;
	const char *source;
	enum shim_md md;
	unsigned digits, period;
	int64_t enrolled;
};

static int list(struct tool_store *ts, int json)
{
	size_t n = ts->set->n + ts->cfg.ntechs, k = 0, i;
	struct shim_technician *g = calloc(n ? n : 1, sizeof(*g));
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));
	int64_t now = (int64_t)time(NULL);
	int have_gate;

	if (g == NULL || rows == NULL) {
		free(g);
		free(rows);
		return 1;
	}
	for (i = 0; i < ts->set->n; i++, k++) {
		const struct shim_enrol_tech *e = &ts->set->t[i];

		rows[k] = (struct row){ e->id, "store", e->md, e->digits,
					e->period, e->enrolled };
	}
	for (i = 0; i < ts->cfg.ntechs; i++) {
		if (shim_enrol_find(ts->set, ts->cfg.techs[i].id) >= 0) {
			continue; /* imported, not yet deleted from the config */
		}
		rows[k++] = (struct row){ ts->cfg.techs[i].id,
					  ts->cfg.technicians_file != NULL ?
						  "technicians_file" : "config",
					  ts->cfg.gate.md, ts->cfg.gate.digits,
					  ts->cfg.gate.period, 0 };
	}
	for (i = 0; i < k; i++) {
		snprintf(g[i].id, sizeof(g[i].id), "%s", rows[i].id);
	}
	have_gate = shim_techstore_read_gate(&ts->cfg, g, k) == 0;
	if (json) {
		printf("{\"shim_id\": ");
		json_str(ts->cfg.shim_id);
		printf(", \"store\": ");
		json_str(ts->cfg.enrol_store);
		printf(", \"technicians\": [");
	} else {
		printf("%-32s %-16s %-6s %-6s %-6s %-20s %-20s %s\n", "ID",
		       "SOURCE", "ALG", "DIGITS", "PERIOD", "ENROLLED",
		       "LAST SUCCESS", "DRIFT");
	}
	for (i = 0; i < k; i++) {
		char en[32], last[32];
		int locked = g[i].fails.locked_until > now;

		iso(rows[i].enrolled, en, sizeof(en), "-");
		iso(have_gate ? g[i].last_ok : 0, last, sizeof(last), "never");
		if (json) {
			printf("%s\n  {\"id\": ", i ? "," : "");
			json_str(rows[i].id);
			printf(", \"source\": \"%s\", \"algorithm\": \"%s\", "
			       "\"digits\": %u, \"period\": %u, \"enrolled\": ",
			       rows[i].source, shim_md_name(rows[i].md),
			       rows[i].digits, rows[i].period);
			if (rows[i].enrolled > 0) {
				printf("\"%s\"", en);
			} else {
				printf("null");
			}
			printf(", \"last_success\": ");
			if (have_gate && g[i].last_ok > 0) {
				printf("\"%s\", \"drift\": %d", last,
				       (int)g[i].drift);
			} else {
				printf("null, \"drift\": null");
			}
			printf(", \"locked_out\": %s}", locked ? "true" : "false");
		} else {
			char drift[16];

			if (have_gate && g[i].last_ok > 0) {
				snprintf(drift, sizeof(drift), "%+d",
					 (int)g[i].drift);
			} else {
				snprintf(drift, sizeof(drift), "-");
			}
			printf("%-32s %-16s %-6s %-6u %-6u %-20s %-20s %s%s\n",
			       rows[i].id, rows[i].source,
			       shim_md_name(rows[i].md), rows[i].digits,
			       rows[i].period, en, last, drift,
			       locked ? " (locked out)" : "");
		}
	}
	if (json) {
		printf("%s]}\n", k ? "\n" : "");
	} else if (k == 0) {
		printf("(no technicians enrolled: shimctl enrol ID)\n");
	}
	shim_memzero(g, (n ? n : 1) * sizeof(*g));
	free(g);
	free(rows);
	return 0;
}

static int remove_one(struct tool_store *ts, const char *id)
{
	int i = shim_enrol_find(ts->set, id);
	size_t j;

	if (i < 0) {
		for (j = 0; j < ts->cfg.ntechs; j++) {
			if (strcmp(ts->cfg.techs[j].id, id) == 0) {
				fprintf(stderr, "shimctl technicians: '%s' is "
					"not in the sealed store but in %s: "
					"delete it there, then restart shimd\n",
					id, ts->cfg.technicians_file != NULL ?
					ts->cfg.technicians_file : ts->cfg.file);
				return 1;
			}
		}
		fprintf(stderr, "shimctl technicians: '%s' is not enrolled\n",
			id);
		return 1;
	}
	shim_enrol_remove(ts->set, (uint32_t)i);
	if (tool_store_commit(ts, "technicians remove") != 0) {
		return 1;
	}
	printf("Removed '%s'.\n", id);
	return 0;
}

static int import(struct tool_store *ts)
{
	size_t i, moved = 0;

	if (ts->cfg.ntechs == 0) {
		printf("The configuration holds no technicians: nothing to "
		       "import.\n");
		return 0;
	}
	for (i = 0; i < ts->cfg.ntechs; i++) {
		const struct shim_technician *t = &ts->cfg.techs[i];
		int at = shim_enrol_find(ts->set, t->id);
		struct shim_enrol_tech *e;

		if (at >= 0) {
			e = &ts->set->t[at];
			if (e->secret_len != t->secret_len ||
			    !shim_ct_equal(e->secret, t->secret,
					   t->secret_len)) {
				fprintf(stderr, "shimctl technicians import: '%s' "
					"is in the store with another secret: "
					"nothing imported\n", t->id);
				return 1;
			}
			continue;
		}
		if (t->secret_len < SHIM_ENROL_SECRET_MIN ||
		    ts->set->n >= SHIM_ENROL_MAX) {
			fprintf(stderr, "shimctl technicians import: '%s' cannot "
				"go into the store: nothing imported\n", t->id);
			return 1;
		}
		e = &ts->set->t[ts->set->n++];
		memset(e, 0, sizeof(*e));
		memcpy(e->id, t->id, sizeof(e->id));
		memcpy(e->secret, t->secret, t->secret_len);
		e->secret_len = t->secret_len;
		e->md = ts->cfg.gate.md;
		e->digits = ts->cfg.gate.digits;
		e->period = ts->cfg.gate.period;
		e->enrolled = (int64_t)time(NULL);
		moved++;
	}
	if (tool_store_commit(ts, "technicians import") != 0) {
		return 1;
	}
	printf("Imported %zu technicians into the sealed store.\n", moved);
	if (ts->cfg.technicians_file != NULL &&
	    access(ts->cfg.technicians_file, F_OK) == 0) {
		if (tool_shred(ts->cfg.technicians_file) == 0) {
			printf("%s overwritten and removed: its secrets live in "
			       "the sealed store now.\n",
			       ts->cfg.technicians_file);
		} else {
			fprintf(stderr, "shimctl technicians import: warning: "
				"%s could not be removed: delete it by hand\n",
				ts->cfg.technicians_file);
		}
	}
	if (ts->cfg.secrets_inline) {
		printf("Now delete the technicians: block from %s (and restart "
		       "shimd): until then the secrets are still in that file "
		       "in the clear. shimd accepts the identical entries in "
		       "both meanwhile.\n", ts->cfg.file);
	}
	return 0;
}

int cmd_technicians_main(int argc, char **argv, const char *config_path)
{
	struct tool_store ts;
	const char *verb = argc > 1 ? argv[1] : NULL;
	int rc = 1, json = tool_flag(argc, argv, "--json");

	if (verb == NULL ||
	    (strcmp(verb, "list") != 0 && strcmp(verb, "remove") != 0 &&
	     strcmp(verb, "import") != 0) ||
	    (strcmp(verb, "remove") == 0 && (argc != 3 || argv[2][0] == '-')) ||
	    (strcmp(verb, "list") == 0 && argc != 2 + json) ||
	    (strcmp(verb, "import") == 0 && argc != 2)) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (tool_store_open(&ts, config_path, strcmp(verb, "list") != 0,
			    "technicians") != 0) {
		tool_store_close(&ts);
		return 1;
	}
	if (strcmp(verb, "list") == 0) {
		rc = list(&ts, json);
	} else if (strcmp(verb, "remove") == 0) {
		rc = remove_one(&ts, argv[2]);
	} else {
		rc = import(&ts);
	}
	tool_store_close(&ts);
	return rc;
}
