/*
 * shimd protects itself (it also runs outside systemd):
 *   1. privileges: no_new_privs; started as root it becomes shim.user (or,
 *      with no shim.user, stays uid 0 without a single capability);
 *   2. Landlock (when the kernel has it): the filesystem is cut down to the
 *      storage root, the configuration and the files it names, the ttys
 *      and GPIO chips, and the few system files libc reads;
 *   3. a seccomp allow-list for the steady state: a system call outside it
 *      kills the process.
 * 1 and 2 run at the start of shimd_init (before any thread exists, as a
 * Landlock domain binds only the calling thread and what it creates); 3 at
 * the start of shimd_run, for every thread (TSYNC).
 */
#ifndef SHIMD_HARDEN_H
#define SHIMD_HARDEN_H

#include <stddef.h>
#include <sys/types.h>

struct shimd;
struct shim_config;

struct shimd_harden {
	char user[40];          /* account shimd runs as */
	uid_t uid;
	gid_t gid;
	int was_root;           /* started with euid 0 */
	int caps_none;          /* no capability in any set (verified) */
	int bounding_empty;     /* capability bounding set empty */
	int nnp;                /* no_new_privs set */
	int landlock_abi;       /* > 0: restricted with this ABI */
	unsigned landlock_rules;
	char landlock_why[48];  /* when not restricted */
	int seccomp;            /* allow-list installed */
	unsigned seccomp_calls; /* system calls on the list */
};

/* A program the demo starts after shimd_init (the pump emulator): Landlock
 * lets it be executed. NULL otherwise. */
extern const char *shimd_harden_exec_path;

/* no_new_privs, the user change and the capability drop. Started as root
 * with a shim.user, creates a missing storage root owned by that user
 * first. Returns 0 or a negative code after logging why. */
int shimd_harden_privileges(struct shimd_harden *h, const struct shim_config *cfg);

/* Landlock, when the kernel has it (a kernel without it is reported, not
 * an error; a kernel with it that refuses the rules is an error). */
int shimd_harden_landlock(struct shimd_harden *h, const struct shim_config *cfg);

/* The seccomp allow-list for every thread. Returns 0 or a negative code
 * after logging why. */
int shimd_harden_seccomp(struct shimd_harden *h);

/* One line: "user shim (uid 999), capabilities none, ..." */
size_t shimd_harden_summary(const struct shimd_harden *h, char *buf, size_t cap);

/* The status lines for "shimctl status" (appended by the admin socket). */
size_t shimd_harden_status(const struct shimd_harden *h, char *buf, size_t cap);

#ifdef SHIM_TEST_HOOKS
/* Test builds only: makes a system call that is not on the allow-list. */
void shimd_harden_test_forbidden(void);
#endif

#endif
