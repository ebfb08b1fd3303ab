/*
 * The semihosting calls (Arm semihosting v2, chapter 5): operation in r0,
 * a pointer to the parameter block in r1, the result back in r0.
 */
#include "semihost.h"

#include <string.h>

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_FLEN 0x0C
#define SYS_REMOVE 0x0E
#define SYS_RENAME 0x0F
#define SYS_TIME 0x11
#define SYS_ERRNO 0x13
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_ELAPSED 0x30
#define SYS_TICKFREQ 0x31
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static long sh_call(uint32_t op, const void *arg)
{
	register uint32_t r0 __asm__("r0") = op;
	register const void *r1 __asm__("r1") = arg;

	__asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
	return (long)(int32_t)r0;
}

int sh_open(const char *name, int mode)
{
	uint32_t a[3] = { (uint32_t)(uintptr_t)name, (uint32_t)mode,
			  (uint32_t)strlen(name) };

	return (int)sh_call(SYS_OPEN, a);
}

int sh_close(int fd)
{
	uint32_t a[1] = { (uint32_t)fd };

	return (int)sh_call(SYS_CLOSE, a);
}

/* SYS_WRITE and SYS_READ return the count NOT transferred. */
long sh_write(int fd, const void *buf, size_t len)
{
	uint32_t a[3] = { (uint32_t)fd, (uint32_t)(uintptr_t)buf,
			  (uint32_t)len };
	long left = sh_call(SYS_WRITE, a);

	if (left < 0 || (size_t)left > len) {
		return -1;
	}
	return (long)len - left;
}

long sh_read(int fd, void *buf, size_t len)
{
	uint32_t a[3] = { (uint32_t)fd, (uint32_t)(uintptr_t)buf,
			  (uint32_t)len };
	long left = sh_call(SYS_READ, a);

	if (left < 0 || (size_t)left > len) {
		return -1;
	}
	return (long)len - left;
}

long sh_flen(int fd)
{
	uint32_t a[1] = { (uint32_t)fd };

	return sh_call(SYS_FLEN, a);
}

int sh_remove(const char *name)
{
	uint32_t a[2] = { (uint32_t)(uintptr_t)name, (uint32_t)strlen(name) };

	return (int)sh_call(SYS_REMOVE, a);
}

int sh_rename(const char *from, const char *to)
{
	uint32_t a[4] = { (uint32_t)(uintptr_t)from, (uint32_t)strlen(from),
			  (uint32_t)(uintptr_t)to, (uint32_t)strlen(to) };

	return (int)sh_call(SYS_RENAME, a);
}

int64_t sh_time(void)
{
	/* An unsigned 32-bit count of seconds: good until 2106. */
	return (int64_t)(uint32_t)sh_call(SYS_TIME, NULL);
}

int sh_errno(void)
{
	return (int)sh_call(SYS_ERRNO, NULL);
}

int sh_cmdline(char *buf, size_t cap)
{
	uint32_t a[2] = { (uint32_t)(uintptr_t)buf, (uint32_t)cap };

	if (cap == 0) {
		return -1;
	}
	buf[0] = '\0';
	if (sh_call(SYS_GET_CMDLINE, a) != 0) {
		return -1;
	}
	buf[cap - 1] = '\0';
	return 0;
}

void sh_write0(const char *s)
{
	(void)sh_call(SYS_WRITE0, s);
}

void sh_exit(int status)
{
	/* Semihosting v2 on AArch32: r1 is the reason code itself; QEMU
	 * takes a non-zero status from an error reason. */
	(void)sh_call(SYS_EXIT, (const void *)(uintptr_t)(
				   status == 0 ? ADP_STOPPED_APPLICATION_EXIT :
						 0x20024 /* RunTimeErrorUnknown */));
	for (;;) {
	}
}

int64_t sh_tickfreq(void)
{
	return (int64_t)sh_call(SYS_TICKFREQ, NULL);
}

int sh_elapsed(uint64_t *ticks)
{
	/* The count comes back in two words, least significant first. */
	uint32_t w[2] = { 0, 0 };

	if (sh_call(SYS_ELAPSED, w) != 0) {
		return -1;
	}
	*ticks = (uint64_t)w[1] << 32 | w[0];
	return 0;
}
