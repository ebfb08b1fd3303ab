/*
 * The build-time sizes that scripts/size-report.py reports: the state a
 * caller of core/ must allocate, at whatever -D configuration this is
 * compiled with.
 *
 * Cross-compiled (-c), each size is the size of an object named
 * shim_size_<name>, read back with nm. Compiled for the host with
 * -DSHIM_SIZE_MAIN and linked with core/, it prints "<name> <bytes>"
 * lines, and adds the gate's scratch sizes, which only a function call
 * gives (they are bytes of the persisted format, the same on every
 * target).
 */
#include <stddef.h>

#include "clock.h"
#include "event.h"
#include "gate.h"
#include "lineedit.h"
#include "record.h"
#include "tamper.h"
#if defined(__has_include)
#if __has_include("controller.h")
#include "controller.h"
#define SHIM_SIZE_CTL 1
#endif
#endif

#define SIZES(X)                                                         \
	X(gate, sizeof(struct shim_gate))                                \
	X(gate_lock, sizeof(struct shim_gate_lock))                      \
	X(technician, sizeof(struct shim_technician))                    \
	X(clock, sizeof(struct shim_clock))                              \
	X(event, sizeof(struct shim_event))                              \
	X(event_canon, SHIM_EVENT_CANON_MAX)                             \
	X(lineedit, sizeof(struct shim_lineedit))                        \
	X(tamper, sizeof(struct shim_tamper))                            \
	X(rec_writer, sizeof(struct shim_rec_writer))                    \
	X(rec_plain, SHIM_REC_MAX_PLAIN)                                 \
	X(rec_reader, sizeof(struct shim_rec_reader))                    \
	X(rec_reader_buf, SHIM_REC_READER_BUF)                           \
	CTL_SIZES(X)

#ifdef SHIM_SIZE_CTL
#define CTL_SIZES(X) X(ctl, sizeof(struct shim_ctl))
#else
#define CTL_SIZES(X)
#endif

#ifndef SHIM_SIZE_MAIN

#define OBJ(name, n) char shim_size_##name[n];
SIZES(OBJ)

#else

#include <stdio.h>

int main(void)
{
	static const size_t techs[] = { 8, 100 };
	size_t i;

#define PRINT(name, n) printf("%s %zu\n", #name, (size_t)(n));
	SIZES(PRINT)
	for (i = 0; i < sizeof(techs) / sizeof(techs[0]); i++) {
		printf("gate_scratch_%zu %zu\n", techs[i],
		       shim_gate_scratch_size(techs[i]));
	}
	return 0;
}

#endif
