/*
 * shimctl upload test: checks the link to the central custody store
 * exactly as shimd uses it (docs/custody.md): mutual TLS with the shim's
 * client certificate, the server checked against custody.ca and
 * custody.server_name, then a PUT of a small probe object
 * <url>/<shim_id>/upload-test-<UTC time>-<nonce>.txt and the same check
 * as for a recording (HEAD length, GET SHA-256). The probe stays in the
 * store (a custody store does not let its clients delete).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "port_linux.h"
#include "subcommands.h"
#include "uploader.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shimctl upload test [--timeout SECONDS]\n"
		   "  Sends a probe object to the custody store (custody: in "
		   "the config) and checks it.\n");
}

static int upload_test(const struct shim_config *cfg, long timeout_s)
{
	struct shim_custody_target t;
	struct shim_custody_result res;
	char err[256], name[96], body[256], nonce_hex[17], when[32];
	uint8_t nonce[8];
	char *url;
	time_t now = time(NULL);
	struct tm tm;
	int rc, i, n;

	rc = shim_custody_target_from_config(&t, cfg, err, sizeof(err));
	if (rc != 0) {
		printf("upload test: %s\n", err);
		return 1;
	}
	if (timeout_s > 0) {
		t.timeout_s = timeout_s;
	}
	shim_linux_random(nonce, sizeof(nonce));
	for (i = 0; i < 8; i++) {
		snprintf(nonce_hex + 2 * i, 3, "%02x", nonce[i]);
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(name, sizeof(name), "upload-test-%s-%s.txt", when, nonce_hex);
	n = snprintf(body, sizeof(body),
		     "shimctl upload test: shim %s at %s, nonce %s\n",
		     t.shim_id, when, nonce_hex);
	url = shim_custody_object_url(&t, name);
	printf("store: %s\nTLS: server name %s checked against %s; client "
	       "certificate %s\n", url ? url : "?", t.server_name, t.ca,
	       t.client_cert);
	free(url);
	rc = shim_custody_deliver_buf(&t, (const uint8_t *)body, (size_t)n,
				      name, &res);
	if (rc != 0) {
		printf("FAILED: %s\n", res.reason);
		return 1;
	}
	printf("OK: probe %s stored (HTTP %ld) and checked: %" PRIu64
	       " bytes, sha256 %s, %.3f s\n", name, res.http_status, res.size,
	       res.sha256, res.seconds);
	return 0;
}

int cmd_upload_main(int argc, char **argv, const char *config_path)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct shim_config cfg;
	struct shim_config_diag diag = { stderr, 0, 0, 1 };
	long timeout_s = 0;
	char *end;
	int c, rc;

	optind = 1;
	opterr = 1;
	/* GNU getopt_long permutes: options may come before or after "test" */
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			timeout_s = strtol(optarg, &end, 10);
			if (*end != '\0' || timeout_s <= 0 || timeout_s > 600) {
				fprintf(stderr, "shimctl upload: --timeout: 1 to 600 seconds, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || strcmp(argv[optind], "test") != 0) {
		usage(stderr);
		return 2;
	}
	shim_config_defaults(&cfg);
	if (shim_config_load(&cfg, config_path, &diag) != 0) {
		fprintf(stderr, "shimctl: %s: configuration has errors\n",
			config_path);
		shim_config_free(&cfg);
		return 1;
	}
	rc = upload_test(&cfg, timeout_s);
	shim_config_free(&cfg);
	return rc;
}
