/*
 * ARM semihosting (the "bkpt 0xab" interface of the Arm semihosting
 * specification v2): the host's files, clock and command line, as QEMU
 * gives them with -semihosting-config enable=on,target=native. Only the
 * emulated build uses it; on hardware the store, clock and random source
 * are flash, an RTC and the RNG peripheral (docs/hardware-port.md).
 *
 * Without a debugger attached a bkpt faults, so nothing here may run on a
 * bare board.
 */
#ifndef SHIM_STM32_SEMIHOST_H
#define SHIM_STM32_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* SYS_OPEN modes (fopen's "r", "rb", "w", "wb", "a", "ab", ...). */
#define SH_MODE_RB 1
#define SH_MODE_WB 5
#define SH_MODE_AB 9

/* A handle (>= 0) or -1. */
int sh_open(const char *name, int mode);
int sh_close(int fd);
/* The count written/read (short on error or end of file), or -1. */
long sh_write(int fd, const void *buf, size_t len);
long sh_read(int fd, void *buf, size_t len);
/* The file's length, or -1. */
long sh_flen(int fd);
int sh_remove(const char *name);
int sh_rename(const char *from, const char *to);
/* Seconds since the Unix epoch (the host's clock). */
int64_t sh_time(void);
/* The host's tick rate for sh_elapsed() (QEMU: 10^9), or <= 0 where the
 * host has no such clock. */
int64_t sh_tickfreq(void);
/* The ticks since the emulation started (the host's monotonic clock,
 * so it keeps pace however slowly the guest runs); 0 or -1. */
int sh_elapsed(uint64_t *ticks);
/* The host's errno of the last failed call. */
int sh_errno(void);
/* The command line (arg=... of -semihosting-config, space-separated),
 * NUL-terminated; 0 or -1. */
int sh_cmdline(char *buf, size_t cap);
/* A NUL-terminated string to the host's console (QEMU's stderr). */
void sh_write0(const char *s);
/* Ends the emulation with status (0 = success). */
void sh_exit(int status) __attribute__((noreturn));

#endif
