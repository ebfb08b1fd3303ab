/*
 * The monitor's log-line parser (RFC 5424 with structured data, as
 * rsyslog stores it), and the verdict engine behind it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "monitor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shim_mon_line l;
	static struct shim_monitor *m;
	struct shim_mon_report r;
	int64_t t;
	size_t i;

	if (m == NULL && shim_mon_new(&m, 60) != 0) {
		return 0;
	}
	(void)shim_mon_parse_time((const char *)data, size < 64 ? size : 64, &t);
	if (shim_mon_parse_line((const char *)data, size, &l) != 0) {
		return 0;
	}
	if (strnlen(l.ev.shim_id, sizeof(l.ev.shim_id)) >= sizeof(l.ev.shim_id) ||
	    l.ev.nfields > SHIM_EVENT_MAX_FIELDS) {
		__builtin_trap();
	}
	/* Unknown shims: apply without a key, then report. Keep the table
	 * small so a long run does not grow without bound. */
	(void)shim_mon_apply(m, &l, SHIM_ENOENT);
	for (i = 0; i < shim_mon_count(m); i++) {
		shim_mon_report(m, i, 1800000000, &r);
	}
	if (shim_mon_count(m) > 1000) {
		shim_mon_free(m);
		m = NULL;
	}
	return 0;
}
