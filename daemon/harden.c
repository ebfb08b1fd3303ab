/*
 * shimd's self-protection: privileges, Landlock, seccomp (see harden.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/securebits.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "config.h"
#include "harden.h"
#include "log.h"
#include "port.h"
#include "serial.h"

const char *shimd_harden_exec_path;

/* ---- privileges ------------------------------------------------------- */

static int cap_last(void)
{
	int c;

	for (c = 0; c < 64; c++) {
		if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) < 0) {
			return c - 1;
		}
	}
	return 63;
}

static int capset_none(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	return (int)syscall(SYS_capset, &hdr, data);
}

static int caps_all_clear(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	int i;

	memset(data, 0xff, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0) {
		return 0;
	}
	for (i = 0; i < 2; i++) {
		if (data[i].effective || data[i].permitted || data[i].inheritable) {
			return 0;
		}
	}
	return 1;
}

static int bounding_clear(void)
{
	int c, last = cap_last();

	for (c = 0; c <= last; c++) {
		if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) == 1) {
			return 0;
		}
	}
	return 1;
}

/* Needs CAP_SETPCAP: only while still root. */
static int bounding_drop(void)
{
	int c, last = cap_last();

	for (c = 0; c <= last; c++) {
		if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Started as root with a user to become: a missing storage root is
 * created for that user (its parent must exist). */
static int storage_for(const char *root, uid_t uid, gid_t gid)
{
	struct stat st;

	if (root == NULL || lstat(root, &st) == 0 || errno != ENOENT) {
		return 0;
	}
	if (mkdir(root, 0700) < 0) {
		return 0; /* check_storage says why */
	}
	if (chown(root, uid, gid) < 0) {
		log_err("storage %s: cannot give it to uid %u: %s", root,
			(unsigned)uid, strerror(errno));
		return SHIM_EACCES;
	}
	return 0;
}

int shimd_harden_privileges(struct shimd_harden *h, const struct shim_config *cfg)
{
	const char *want = cfg->run_user;
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];

	memset(h, 0, sizeof(*h));
	h->was_root = geteuid() == 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("hardening: cannot set no_new_privs: %s", strerror(errno));
		return SHIM_EACCES;
	}
	h->nnp = 1;
	if (h->was_root && want != NULL && strcmp(want, "root") != 0) {
		gid_t groups[64];
		int ng = (int)(sizeof(groups) / sizeof(groups[0]));
		int rc;

		if (getpwnam_r(want, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 ||
		    pwp == NULL) {
			log_err("refusing to start: shim.user %s: no such user "
				"(%s)", want, cfg->file ? cfg->file : "config");
			return SHIM_ENOENT;
		}
		if (getgrouplist(want, pw.pw_gid, groups, &ng) < 0) {
			log_err("hardening: user %s is in too many groups", want);
			return SHIM_EINVAL;
		}
		rc = storage_for(cfg->storage_root, pw.pw_uid, pw.pw_gid);
		if (rc < 0) {
			return rc;
		}
		if (bounding_drop() < 0 ||
		    setgroups((size_t)ng, groups) < 0 ||
		    setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) < 0 ||
		    setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) < 0) {
			log_err("hardening: cannot become %s: %s", want,
				strerror(errno));
			return SHIM_EACCES;
		}
		if (pw.pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
			log_err("hardening: root could be regained after the "
				"change to %s", want);
			return SHIM_EACCES;
		}
	} else if (h->was_root) {
		/* uid 0 stays, with no capability: no override of file
		 * permissions, no devices or mounts, no way back. */
		if (bounding_drop() < 0 ||
		    prctl(PR_SET_SECUREBITS,
			  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
			  SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
			  SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0) < 0) {
			log_err("hardening: cannot drop the capability bounding "
				"set: %s", strerror(errno));
			return SHIM_EACCES;
		}
		(void)setgroups(0, NULL);
	}
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (capset_none() < 0 || !caps_all_clear()) {
		log_err("hardening: cannot drop every capability: %s",
			strerror(errno));
		return SHIM_EACCES;
	}
	h->caps_none = 1;
	h->bounding_empty = bounding_clear();
	h->uid = geteuid();
	h->gid = getegid();
	if (getpwuid_r(h->uid, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 &&
	    pwp != NULL) {
		snprintf(h->user, sizeof(h->user), "%s", pw.pw_name);
	} else {
		snprintf(h->user, sizeof(h->user), "%u", (unsigned)h->uid);
	}
	if (h->was_root && h->uid == 0) {
		log_warn("running as root without capabilities: set shim.user "
			 "(the package's user is shim) to run unprivileged");
	}
	return 0;
}

/* ---- Landlock ------------------------------------------------------------ */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define LL_FILE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
		 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
		 LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define LL_RO (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_DEV (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
		LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define LL_ALL ((LANDLOCK_ACCESS_FS_IOCTL_DEV << 1) - 1)

struct ll {
	int fd;
	uint64_t handled;
	unsigned rules;
	int failed;
};

static void ll_add(struct ll *l, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb;
	struct stat st;
	int fd;

	if (path == NULL || path[0] == '\0' || l->failed) {
		return;
	}
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		log_debug("landlock: %s: %s (no rule)", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
		access &= LL_FILE;
	}
	pb.allowed_access = access & l->handled;
	pb.parent_fd = fd;
	if (pb.allowed_access != 0 &&
	    syscall(SYS_landlock_add_rule, l->fd, LANDLOCK_RULE_PATH_BENEATH,
		    &pb, 0) < 0) {
		log_err("landlock: rule for %s: %s", path, strerror(errno));
		l->failed = 1;
	} else if (pb.allowed_access != 0) {
		l->rules++;
	}
	close(fd);
}

/* The directory holding path ("." for a bare name). */
static void ll_add_parent(struct ll *l, const char *path, uint64_t access)
{
	char dir[4096];
	char *slash;

	if (path == NULL || snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		return;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	ll_add(l, dir, access);
}

static void ll_serial(struct ll *l, const char *path)
{
	const char *link = NULL;

	if (path == NULL) {
		return;
	}
	if (shim_serial_is_pty_spec(path, &link)) {
		/* shimd makes the pty and a link to its peer at link */
		ll_add_parent(l, link, LANDLOCK_ACCESS_FS_MAKE_SYM |
			      LANDLOCK_ACCESS_FS_REMOVE_FILE |
			      LANDLOCK_ACCESS_FS_READ_DIR);
		ll_add(l, "/dev/ptmx", LL_DEV);
		ll_add(l, "/dev/pts", LL_DEV);
		return;
	}
	ll_add(l, path, LL_DEV);
}

int shimd_harden_landlock(struct shimd_harden *h, const struct shim_config *cfg)
{
	static const char *const sys_ro[] = {
		"/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf",
		"/etc/gai.conf", "/etc/host.conf", "/etc/services",
		"/etc/localtime", "/etc/ld.so.cache", "/usr/share/zoneinfo",
		"/dev/urandom", "/dev/random", NULL,
	};
	static const char *const sys_lib[] = { "/usr/lib", "/lib", "/lib64", NULL };
	struct landlock_ruleset_attr attr;
	struct ll l = { .fd = -1 };
	int abi;
	size_t i;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1) {
		snprintf(h->landlock_why, sizeof(h->landlock_why),
			 errno == EOPNOTSUPP ? "disabled in the kernel" :
					       "not in this kernel");
		return 0;
	}
	l.handled = LL_ALL;
	if (abi < 2) {
		l.handled &= ~LANDLOCK_ACCESS_FS_REFER;
	}
	if (abi < 3) {
		l.handled &= ~LANDLOCK_ACCESS_FS_TRUNCATE;
	}
	if (abi < 5) {
		l.handled &= ~LANDLOCK_ACCESS_FS_IOCTL_DEV;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = l.handled;
	l.fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (l.fd < 0) {
		log_err("landlock: ruleset: %s", strerror(errno));
		return SHIM_EACCES;
	}
	ll_add(&l, cfg->storage_root, LL_ALL);
	ll_add(&l, cfg->file, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->technicians_file, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->recording_public_key, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->reset_authority_public_key, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->siem_ca, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->siem_client_cert, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->siem_client_key, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->breakglass_verify_key, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->custody_ca, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->custody_client_cert, LANDLOCK_ACCESS_FS_READ_FILE);
	ll_add(&l, cfg->custody_client_key, LANDLOCK_ACCESS_FS_READ_FILE);
	if (cfg->custody_url != NULL) {
		/* libcurl's OpenSSL reads its configuration at start */
		ll_add(&l, "/usr/lib/ssl", LANDLOCK_ACCESS_FS_READ_FILE |
					   LANDLOCK_ACCESS_FS_READ_DIR);
		ll_add(&l, "/etc/ssl", LANDLOCK_ACCESS_FS_READ_FILE |
				       LANDLOCK_ACCESS_FS_READ_DIR);
	}
	if (cfg->admin_socket != NULL) {
		ll_add_parent(&l, cfg->admin_socket,
			      LANDLOCK_ACCESS_FS_MAKE_SOCK |
			      LANDLOCK_ACCESS_FS_REMOVE_FILE);
	}
	if (cfg->audit_log != NULL) {
		/* appended, rotated by rename in its directory */
		ll_add_parent(&l, cfg->audit_log,
			      LANDLOCK_ACCESS_FS_READ_FILE |
			      LANDLOCK_ACCESS_FS_WRITE_FILE |
			      LANDLOCK_ACCESS_FS_TRUNCATE |
			      LANDLOCK_ACCESS_FS_MAKE_REG |
			      LANDLOCK_ACCESS_FS_REMOVE_FILE |
			      LANDLOCK_ACCESS_FS_READ_DIR);
	}
	ll_serial(&l, cfg->tech_path);
	ll_serial(&l, cfg->dev_path);
	for (i = 0; i < cfg->nsensors; i++) {
		const struct shim_sensor_cfg *s = &cfg->sensors[i];

		if (s->type == SHIM_SENSOR_FILE) {
			ll_add_parent(&l, s->path, LL_RO);
		} else if (s->type == SHIM_SENSOR_GPIO && s->chip != NULL) {
			glob_t g;
			size_t j;

			/* a chip named by label is looked up among them all */
			if (glob("/dev/gpiochip*", 0, NULL, &g) == 0) {
				for (j = 0; j < g.gl_pathc; j++) {
					ll_add(&l, g.gl_pathv[j], LL_DEV);
				}
				globfree(&g);
			}
			if (strchr(s->chip, '/') != NULL) {
				ll_add(&l, s->chip, LL_DEV);
			}
			ll_add(&l, "/dev", LANDLOCK_ACCESS_FS_READ_DIR);
			ll_add(&l, "/sys/bus/gpio", LL_RO);
			ll_add(&l, "/sys/devices", LL_RO);
		}
	}
	for (i = 0; sys_ro[i] != NULL; i++) {
		ll_add(&l, sys_ro[i], LL_RO);
	}
	for (i = 0; sys_lib[i] != NULL; i++) {
		/* name-service modules libc may load late */
		ll_add(&l, sys_lib[i], LL_RO | LANDLOCK_ACCESS_FS_EXECUTE);
	}
	ll_add(&l, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE |
				LANDLOCK_ACCESS_FS_WRITE_FILE);
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer reads the maps and the threads at exit */
	ll_add(&l, "/proc", LL_RO);
#endif
#ifdef SHIM_TEST_HOOKS
	/* test builds: libfaketime (LD_PRELOAD by the clock tests) reads
	 * the fake time from this file */
	ll_add_parent(&l, getenv("FAKETIME_TIMESTAMP_FILE"), LL_RO);
#endif
	if (shimd_harden_exec_path != NULL) {
		ll_add(&l, shimd_harden_exec_path, LANDLOCK_ACCESS_FS_READ_FILE |
						   LANDLOCK_ACCESS_FS_EXECUTE);
	}
	if (l.failed) {
		close(l.fd);
		return SHIM_EACCES;
	}
	if (syscall(SYS_landlock_restrict_self, l.fd, 0) < 0) {
		log_err("landlock: restrict: %s", strerror(errno));
		close(l.fd);
		return SHIM_EACCES;
	}
	close(l.fd);
	h->landlock_abi = abi;
	h->landlock_rules = l.rules;
	return 0;
}

/* ---- seccomp ------------------------------------------------------------- */

/* The steady state of shimd: its loop, the recorder and event-log threads,
 * mbedTLS, libgpiod, libyaml, and the demo's child. Names unknown on an
 * architecture (the old open/stat family on arm64) are skipped. */
static const char *const allowed[] = {
	/* files and descriptors */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "preadv2", "pwritev2", "open", "openat", "openat2", "close",
	"close_range", "lseek", "_llseek", "fstat", "stat", "lstat",
	"newfstatat", "fstatat64", "statx", "fstatfs", "statfs", "access",
	"faccessat", "faccessat2", "readlink", "readlinkat", "getdents64",
	"getcwd", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename",
	"renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
	"chmod", "fchmod", "fchmodat", "ftruncate", "truncate", "fallocate",
	"fsync", "fdatasync", "sync_file_range", "syncfs", "flock", "fcntl",
	"ioctl", "dup", "dup2", "dup3", "pipe", "pipe2", "umask", "utimensat",
	"fadvise64", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	/* waiting */
	"poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "eventfd2", "timerfd_create",
	"timerfd_settime", "timerfd_gettime", "signalfd4", "nanosleep",
	"clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday",
	"time", "restart_syscall", "sched_yield",
	/* sockets (socket itself: by family, below) */
	"connect", "accept", "accept4", "bind", "listen", "getsockname",
	"getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom",
	"sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
	"socketpair", /* libcurl's wake-up pair (the custody uploader) */
	/* memory and threads */
	"mmap", "munmap", "mremap", "mprotect", "brk", "madvise", "futex",
	"set_robust_list", "get_robust_list", "rseq", "clone", "clone3",
	"exit", "exit_group", "membarrier", "sched_getaffinity",
	/* signals (rt_sigaction: below) */
	"rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack",
	"tgkill", "tkill", "kill", "wait4",
	/* identity and limits */
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "getgroups", "getresuid", "getresgid", "uname", "sysinfo",
	"prlimit64", "getrlimit", "getrusage", "getrandom", "prctl",
	"getpriority", "setpriority", /* the uploader runs niced */
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer stops the threads with ptrace at exit */
	"ptrace", "waitpid", "mincore", "sched_getparam",
#endif
	NULL,
};

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	static const char pre[] = "shimd: seccomp: system call ";
	static const char post[] = " is not on the allow-list: stopping\n";
	char num[16];
	int n = si->si_syscall, i = (int)sizeof(num);
	struct sigaction dfl;

	(void)sig;
	(void)uc;
	if (n < 0) {
		n = 0;
	}
	do {
		num[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0 && i > 0);
	(void)!write(2, pre, sizeof(pre) - 1);
	(void)!write(2, num + i, sizeof(num) - (size_t)i);
	(void)!write(2, post, sizeof(post) - 1);
	/* The filter kills the process for this one. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGSYS, &dfl, NULL);
	_exit(128 + SIGSYS); /* not reached */
}

/* SCMP_A0 with every field named (clang's -Wmissing-field-initializers) */
static struct scmp_arg_cmp arg0(enum scmp_compare op, scmp_datum_t v)
{
	struct scmp_arg_cmp c = { .arg = 0, .op = op, .datum_a = v, .datum_b = 0 };

	return c;
}

int shimd_harden_seccomp(struct shimd_harden *h)
{
	static const int families[] = { AF_UNIX, AF_INET, AF_INET6 };
	scmp_filter_ctx ctx;
	struct sigaction sa;
	unsigned n = 0;
	size_t i;
	int rc;

#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer's check at exit stops the threads from a helper
	 * process, which cannot work under the filter: the sanitizer build
	 * checks for leaks here, at the end of start-up, instead. */
	__lsan_do_leak_check();
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		log_err("seccomp: SIGSYS handler: %s", strerror(errno));
		return SHIM_EACCES;
	}
	/* Outside the list: SIGSYS, whose handler names the call and then
	 * dies by the rule below (or the kernel's default if it is blocked). */
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (ctx == NULL) {
		log_err("seccomp: cannot start the filter");
		return SHIM_ENOMEM;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (i = 0; rc == 0 && allowed[i] != NULL; i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);

		if (nr == __NR_SCMP_ERROR || nr < 0) {
			continue;
		}
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		n++;
	}
	for (i = 0; rc == 0 && i < sizeof(families) / sizeof(families[0]); i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      arg0(SCMP_CMP_EQ, (scmp_datum_t)families[i]));
	}
	if (rc == 0) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1,
				      arg0(SCMP_CMP_NE, SIGSYS));
	}
	if (rc == 0) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS,
				      SCMP_SYS(rt_sigaction), 1,
				      arg0(SCMP_CMP_EQ, SIGSYS));
	}
	n += 2;
	if (rc == 0) {
		rc = seccomp_load(ctx);
	}
	seccomp_release(ctx);
	if (rc != 0) {
		log_err("seccomp: cannot install the allow-list: %s",
			strerror(-rc));
		return SHIM_EACCES;
	}
	h->seccomp = 1;
	h->seccomp_calls = n;
	return 0;
}

#ifdef SHIM_TEST_HOOKS
void shimd_harden_test_forbidden(void)
{
	log_warn("test hook: calling chroot, which is not on the allow-list");
	(void)syscall(SYS_chroot, "/");
}
#endif

/* ---- reporting ----------------------------------------------------------- */

static const char *landlock_text(const struct shimd_harden *h, char *buf,
				 size_t cap)
{
	if (h->landlock_abi > 0) {
		snprintf(buf, cap, "on (ABI %d, %u rules)", h->landlock_abi,
			 h->landlock_rules);
	} else {
		snprintf(buf, cap, "off (%s)",
			 h->landlock_why[0] ? h->landlock_why : "not applied");
	}
	return buf;
}

size_t shimd_harden_summary(const struct shimd_harden *h, char *buf, size_t cap)
{
	char ll[64];
	int n;

	n = snprintf(buf, cap,
		     "hardening: user %s (uid %u, gid %u%s), capabilities %s, "
		     "bounding set %s, no_new_privs %s, landlock %s, "
		     "seccomp %s (%u system calls)",
		     h->user, (unsigned)h->uid, (unsigned)h->gid,
		     h->was_root ? (h->uid == 0 ? ", started as root" :
				    ", root dropped") : "",
		     h->caps_none ? "none" : "HELD",
		     h->bounding_empty ? "empty" : "not empty",
		     h->nnp ? "on" : "off", landlock_text(h, ll, sizeof(ll)),
		     h->seccomp ? "allow-list" : "off", h->seccomp_calls);
	if (n < 0) {
		return 0;
	}
	return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

size_t shimd_harden_status(const struct shimd_harden *h, char *buf, size_t cap)
{
	char ll[64];
	int n;

	n = snprintf(buf, cap,
		     "user: %s (uid %u)\n"
		     "capabilities: %s\n"
		     "no_new_privs: %s\n"
		     "landlock: %s\n"
		     "seccomp: %s\n",
		     h->user, (unsigned)h->uid, h->caps_none ? "none" : "held",
		     h->nnp ? "on" : "off", landlock_text(h, ll, sizeof(ll)),
		     h->seccomp ? "on (allow-list, kill)" : "off");
	if (n < 0) {
		return 0;
	}
	return (size_t)n >= cap ? cap - 1 : (size_t)n;
}
