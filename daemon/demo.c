/*
 * shimd --demo: the shim with an emulated infusion pump on the device side,
 * storage in a temporary directory, the technician side at a pty path and
 * the prototype's demo technician alice@example.org.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "shimd.h"

#define DEMO_SECRET "JBSWY3DPEHPK3PXP"
#define DEMO_TECH "alice@example.org"

static int exe_dir(char *out, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", out, cap - 1);
	char *slash;

	if (n <= 0) {
		return -1;
	}
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (slash == NULL) {
		return -1;
	}
	*slash = '\0';
	return 0;
}

static int write_demo_config(const char *dir, char *path, size_t cap)
{
	FILE *f;
	int n;

	n = snprintf(path, cap, "%s/config.yaml", dir);
	if (n < 0 || (size_t)n >= cap) {
		return -1;
	}
	f = fopen(path, "w");
	if (f == NULL) {
		return -1;
	}
	fprintf(f,
		"# shimd --demo configuration (generated)\n"
		"shim:\n"
		"  id: \"shim-demo\"\n"
		"  description: \"Demo: emulated ExampleMed infusion pump\"\n"
		"serial:\n"
		"  technician_side_path: \"pty:%s/tech\"\n"
		"  device_side_path: \"pty:%s/pump\"\n"
		"  baudrate: 9600\n"
		"totp:\n"
		"  period: 30\n"
		"  digits: 6\n"
		"  window: 1\n"
		"  max_failures: 5\n"
		"  lockout_seconds: 300\n"
		"storage:\n"
		"  root: \"%s/storage\"\n"
		"session:\n"
		"  idle_timeout: 900\n"
		"  max_duration: 28800\n"
		"  reconnect_grace: 30\n"
		"siem:\n"
		"  transport: \"noop\"\n"
		"technicians:\n"
		"  - technician_id: \"" DEMO_TECH "\"\n"
		"    totp_secret: \"" DEMO_SECRET "\"\n"
		"    enrolment_date: \"2026-04-01\"\n"
		"    notes: \"Demo technician\"\n",
		dir, dir, dir);
	if (fclose(f) != 0) {
		return -1;
	}
	chmod(path, 0600);
	return 0;
}

int shimd_demo(const char *argv0)
{
	char tmpl[] = "/tmp/shim-demo.XXXXXX";
	char cfgpath[PATH_MAX], bindir[PATH_MAX], emu[PATH_MAX + 32];
	char pump[PATH_MAX];
	struct shim_config cfg;
	struct shim_config_diag diag = { .out = stderr };
	static struct shimd d;
	const char *dir;
	pid_t pid;
	int rc, st;

	(void)argv0;
	dir = mkdtemp(tmpl);
	if (dir == NULL) {
		log_err("demo: temporary directory: %s", strerror(errno));
		return 1;
	}
	if (write_demo_config(dir, cfgpath, sizeof(cfgpath)) < 0) {
		log_err("demo: cannot write the configuration in %s", dir);
		return 1;
	}
	shim_config_defaults(&cfg);
	rc = shim_config_load(&cfg, cfgpath, &diag);
	if (rc < 0 || diag.errors > 0) {
		shim_config_free(&cfg);
		log_err("demo: the generated configuration does not load");
		return 1;
	}
	if (exe_dir(bindir, sizeof(bindir)) < 0) {
		snprintf(bindir, sizeof(bindir), ".");
	}
	snprintf(emu, sizeof(emu), "%s/pump-emulator", bindir);
	shimd_harden_exec_path = emu; /* Landlock lets the demo start it */
	rc = shimd_init(&d, &cfg);
	if (rc < 0) {
		shimd_fini(&d);
		return 1;
	}
	snprintf(pump, sizeof(pump), "%s/pump", dir);
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(emu, emu, pump, (char *)NULL);
		fprintf(stderr, "demo: cannot run %s: %s\n", emu, strerror(errno));
		_exit(127);
	}
	printf("\n"
	       "=== shimd demo ===================================================\n"
	       "Device side : emulated infusion pump (%s, service PIN 4711)\n"
	       "Technician  : connect a terminal to %s/tech, e.g.\n"
	       "                picocom -b 9600 %s/tech     (quit: C-a C-x)\n"
	       "                tio %s/tech                 (quit: C-t q)\n"
	       "Authenticate: " DEMO_TECH " <code>\n"
	       "Current code: %s/shimctl totp now --secret " DEMO_SECRET "\n"
	       "              (or: oathtool --totp -b " DEMO_SECRET ")\n"
	       "Recordings  : %s/shimctl --config %s session list\n"
	       "              %s/shimctl --config %s session export <id> --format text\n"
	       "Admin       : %s/shimctl --config %s status\n"
	       "Stop        : Ctrl-C (storage stays in %s)\n"
	       "==================================================================\n\n",
	       pid > 0 ? "running" : "not started", dir, dir, dir, bindir,
	       bindir, cfgpath, bindir, cfgpath, bindir, cfgpath, dir);
	fflush(stdout);
	rc = shimd_run(&d);
	shimd_fini(&d);
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, &st, 0);
	}
	printf("\nDemo stopped. Storage and recordings are in %s\n"
	       "  %s/shimctl --config %s session list\n", dir, bindir, cfgpath);
	return rc;
}
