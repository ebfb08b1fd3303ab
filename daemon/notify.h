/*
 * The service manager's notification protocol (sd_notify(3)), spoken on
 * the datagram socket named by $NOTIFY_SOCKET without libsystemd: READY=1
 * when the loop starts, WATCHDOG=1 from the loop every half of
 * $WATCHDOG_USEC, STOPPING=1 on the way out. Without $NOTIFY_SOCKET every
 * call does nothing.
 */
#ifndef SHIMD_NOTIFY_H
#define SHIMD_NOTIFY_H

#include <stdint.h>

struct shimd_notify {
	int fd;                /* connected datagram socket, or -1 */
	uint64_t watchdog_us;  /* 0: no watchdog asked for */
};

/* Reads and unsets NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, and
 * connects the socket (before Landlock and seccomp). Returns 0, or a
 * negative code for a malformed $NOTIFY_SOCKET or one that cannot be
 * reached (a service manager that waits for READY would wait forever). */
int shimd_notify_open(struct shimd_notify *n);

/* Sends one message ("READY=1", ...); 0 or a negative code. */
int shimd_notify_send(struct shimd_notify *n, const char *msg);

void shimd_notify_close(struct shimd_notify *n);

#endif
