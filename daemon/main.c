/*
 * shimd command line (DESIGN.md contract 4.2):
 *   shimd --config FILE [--log-level LEVEL]
 *   shimd --check-config FILE
 *   shimd --demo
 *   shimd --version | --help
 * Runs in the foreground, logs to stderr, stops gracefully on SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "shimd.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shimd --config FILE [--log-level error|warn|info|debug]\n"
		"       shimd --check-config FILE\n"
		"       shimd --demo\n"
		"       shimd --version | --help\n"
		"\n"
		"The Pattern C MFA shim: demands \"<technician_id> <totp_code>\" on\n"
		"the technician's serial line before any byte reaches the device,\n"
		"then relays and records the session.\n"
		"\n"
		"  --config FILE        run with this configuration (YAML)\n"
		"  --check-config FILE  validate FILE; print FILE:LINE: message for\n"
		"                       each error and exit non-zero if any\n"
		"  --demo               run with an emulated infusion pump, storage in a\n"
		"                       temporary directory, demo technician\n"
		"                       alice@example.org\n"
		"  --log-level LEVEL    error, warn, info (default) or debug\n"
		"  --version            print the version\n"
		"  --help               print this help\n");
}

/* One serial side for --check-config: a tty must exist; a "pty:" link is
 * created at start-up, so its directory must exist. Warnings only: the
 * device may be plugged in later (serial.device_retry). */
static void check_serial_path(const char *file, const char *key,
			      const char *spec)
{
	struct stat st;

	if (spec == NULL)
		return;
	if (strncmp(spec, "pty:", 4) == 0) {
		char dir[4096];
		const char *slash = strrchr(spec + 4, '/');
		size_t n = slash ? (size_t)(slash - (spec + 4)) : 0;

		if (n == 0 || n >= sizeof(dir))
			return;
		memcpy(dir, spec + 4, n);
		dir[n] = '\0';
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			fprintf(stderr, "%s: warning: serial.%s: directory %s "
				"for the pty link does not exist\n", file, key,
				dir);
		return;
	}
	if (stat(spec, &st) != 0)
		fprintf(stderr, "%s: warning: serial.%s: %s does not exist "
			"(%s)\n", file, key, spec, strerror(errno));
	else if (!S_ISCHR(st.st_mode))
		fprintf(stderr, "%s: warning: serial.%s: %s is not a "
			"character device (not a tty)\n", file, key, spec);
	else
		printf("%s: serial.%s: %s exists\n", file, key, spec);
}

/* What --check-config can see beyond the file itself: technicians, serial
 * paths, the storage root. All warnings: the file is still valid. */
static void check_environment(const struct shim_config *cfg, const char *file)
{
	struct stat st;

	if (cfg->ntechs == 0 && (cfg->enrol_store == NULL ||
				 access(cfg->enrol_store, F_OK) != 0))
		fprintf(stderr, "%s: warning: no technicians enrolled: nobody "
			"can authenticate (shimctl enrol)\n", file);
	check_serial_path(file, "technician_side_path", cfg->tech_path);
	check_serial_path(file, "device_side_path", cfg->dev_path);
	if (cfg->storage_root == NULL)
		return;
	if (stat(cfg->storage_root, &st) != 0)
		fprintf(stderr, "%s: warning: storage.root: %s does not exist "
			"(%s)\n", file, cfg->storage_root, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		fprintf(stderr, "%s: warning: storage.root: %s is not a "
			"directory\n", file, cfg->storage_root);
	else if (access(cfg->storage_root, W_OK | X_OK) != 0)
		fprintf(stderr, "%s: warning: storage.root: %s is not writable "
			"(%s)\n", file, cfg->storage_root, strerror(errno));
	else
		printf("%s: storage.root: %s is writable\n", file,
		       cfg->storage_root);
}

static int check_config(const char *path)
{
	struct shim_config cfg;
	struct shim_config_diag diag = { .out = stderr };
	int rc;

	shim_config_defaults(&cfg);
	rc = shim_config_load(&cfg, path, &diag);
	if (rc == 0 && diag.errors == 0 && cfg.breakglass_verify_key != NULL) {
		struct shim_bg_key key;

		if (shimd_breakglass_key(&cfg, &key, stderr) < 0) {
			diag.errors++;
		}
		shim_memzero(&key, sizeof(key));
	}
	if (rc < 0 || diag.errors > 0) {
		shim_config_free(&cfg);
		fprintf(stderr, "%s: %u error%s\n", path, diag.errors,
			diag.errors == 1 ? "" : "s");
		return 1;
	}
	check_environment(&cfg, path);
	shim_config_free(&cfg);
	printf("%s: ok\n", path);
	return 0;
}

static int run(const char *path)
{
	struct shim_config cfg;
	struct shim_config_diag diag = { .out = stderr };
	static struct shimd d;
	int rc;

	shim_config_defaults(&cfg);
	rc = shim_config_load(&cfg, path, &diag);
	if (rc < 0 || diag.errors > 0) {
		shim_config_free(&cfg);
		log_err("refusing to start: %s has %u error%s", path,
			diag.errors, diag.errors == 1 ? "" : "s");
		return 1;
	}
	/* d takes cfg over (shimd_fini frees it) */
	rc = shimd_init(&d, &cfg);
	if (rc < 0) {
		log_err("refusing to start: %s", shim_strerror(rc));
		shimd_fini(&d);
		return 1;
	}
	rc = shimd_run(&d);
	shimd_fini(&d);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'k' },
		{ "demo", no_argument, NULL, 'd' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *check = NULL;
	int demo = 0, c;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			check = optarg;
			break;
		case 'd':
			demo = 1;
			break;
		case 'l':
			if (shimd_log_parse_level(optarg, &shimd_log_level) < 0) {
				fprintf(stderr, "shimd: unknown log level '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'V':
			printf("shimd %s\n", SHIM_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shimd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (check != NULL) {
		return check_config(check);
	}
	if (demo) {
		return shimd_demo(argv[0]);
	}
	if (config == NULL) {
		fprintf(stderr, "shimd: --config FILE is required\n");
		usage(stderr);
		return 2;
	}
	return run(config);
}
