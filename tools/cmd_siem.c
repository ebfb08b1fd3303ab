/*
 * shimctl siem test: connects to the configured SIEM exactly as shimd
 * does, prints the TLS result (version, cipher suite, server certificate
 * subject) and sends one "siem_test" event, or prints the exact failure.
 *
 * The test event does not use the shim's sequence (shimd owns it while it
 * runs): it carries seq="0", which no real event ever has, plus a random
 * nonce to find it in the SIEM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "port_linux.h"
#include "siem_tls.h"
#include "subcommands.h"
#include "syslog.h"

static int usage(void)
{
	fprintf(stderr, "usage: shimctl siem test [--timeout SECONDS]\n");
	return 2;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int siem_test(const struct shim_config *cfg, int timeout_s)
{
	static char msg[SHIM_SYSLOG_MSG_MAX + 16];
	struct shim_siem_target t;
	struct shim_siem_conn *c = NULL;
	struct shim_syslog_opts opts;
	struct shim_event ev;
	char err[256], version[32], cipher[64], peer[256], host[256];
	char nonce_hex[17];
	uint8_t nonce[8];
	size_t len;
	int64_t start;
	int rc, i;

	rc = shim_siem_target_from_config(&t, cfg, err, sizeof(err));
	if (rc != 0) {
		printf("siem test: %s\n", err);
		return 1;
	}
	t.connect_timeout_ms = timeout_s * 1000;
	printf("connecting to %s port %u (%s, server name %s)\n", t.host,
	       (unsigned)t.port, t.tls ? "TLS" : "plain TCP, insecure",
	       t.tls ? t.server_name : "-");
	rc = shim_siem_connect(&c, &t, err, sizeof(err));
	if (rc != 0) {
		printf("FAILED: %s\n", err);
		return 1;
	}
	shim_siem_info(c, version, sizeof(version), cipher, sizeof(cipher),
		       peer, sizeof(peer));
	if (t.tls) {
		printf("TLS version: %s\ncipher suite: %s\n"
		       "server certificate subject: %s\n"
		       "handshake: %.1f ms\n",
		       version, cipher, peer,
		       (double)shim_siem_handshake_ns(c) / 1e6);
	}

	shim_linux_random(nonce, sizeof(nonce));
	for (i = 0; i < 8; i++) {
		snprintf(nonce_hex + 2 * i, 3, "%02x", nonce[i]);
	}
	shim_event_init(&ev, "siem_test", SHIM_SEV_NOTICE,
			shim_linux_wall_ns());
	snprintf(ev.shim_id, sizeof(ev.shim_id), "%s",
		 cfg->shim_id ? cfg->shim_id : "");
	ev.seq = 0;
	shim_event_add(&ev, "nonce", nonce_hex);
	shim_event_add(&ev, "origin", "shimctl siem test");
	memset(&opts, 0, sizeof(opts));
	if (gethostname(host, sizeof(host) - 1) != 0) {
		host[0] = '\0';
	}
	host[sizeof(host) - 1] = '\0';
	opts.hostname = host;
	opts.procid = (uint32_t)getpid();
	opts.enterprise_number = cfg->siem_enterprise_number;
	opts.facility = -1;
	opts.product_version = SHIM_VERSION;
	if (cfg->siem_format == SHIM_SIEM_CEF) {
		rc = shim_syslog_cef(&ev, &opts, msg + 16, sizeof(msg) - 16,
				     &len);
	} else {
		rc = shim_syslog_rfc5424(&ev, &opts, msg + 16,
					 sizeof(msg) - 16, &len);
	}
	if (rc != 0) {
		printf("FAILED: formatting the test event: %s\n",
		       shim_strerror(rc));
		shim_siem_close(c);
		return 1;
	}
	/* Put the frame header right before the message. */
	{
		char hdr[16];
		int n = shim_syslog_frame_header(len, hdr, sizeof(hdr));

		memcpy(msg + 16 - n, hdr, (size_t)n);
		rc = shim_siem_write(c, (const uint8_t *)msg + 16 - n,
				     len + (size_t)n, err, sizeof(err));
	}
	if (rc != 0) {
		printf("FAILED: sending the test event: %s\n", err);
		shim_siem_close(c);
		return 1;
	}
	/* The receiver sends nothing back; it shows a rejection by closing.
	 * Wait until its TCP has the bytes and it kept the connection open. */
	start = shim_linux_mono_ns();
	for (;;) {
		rc = shim_siem_check(c, 50, err, sizeof(err));
		if (rc != 0) {
			printf("FAILED: %s\n", err);
			shim_siem_close(c);
			return 1;
		}
		if (shim_siem_wire_acked(c) >= shim_siem_wire_sent(c) &&
		    shim_linux_mono_ns() - start >
			    2 * shim_siem_handshake_ns(c) + 500000000LL) {
			break;
		}
		if (shim_linux_mono_ns() - start > (int64_t)timeout_s * 1000000000LL) {
			printf("FAILED: the server did not take the test event "
			       "within %d s\n", timeout_s);
			shim_siem_close(c);
			return 1;
		}
		sleep_ms(20);
	}
	shim_siem_close(c);
	printf("sent test event siem_test nonce=%s shim_id=%s seq=0: "
	       "delivered (the server took it and kept the connection)\n",
	       nonce_hex, cfg->shim_id ? cfg->shim_id : "");
	return 0;
}

int cmd_siem_main(int argc, char **argv, const char *config_path)
{
	struct shim_config cfg;
	struct shim_config_diag diag = { stderr, 0, 0, 1 };
	int timeout_s = 10, rc, i;

	if (argc < 2 || strcmp(argv[1], "test") != 0) {
		return usage();
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			timeout_s = atoi(argv[++i]);
			if (timeout_s <= 0 || timeout_s > 600) {
				return usage();
			}
		} else {
			return usage();
		}
	}
	shim_config_defaults(&cfg);
	if (shim_config_load(&cfg, config_path, &diag) != 0) {
		fprintf(stderr, "shimctl: %s: configuration has errors\n",
			config_path);
		shim_config_free(&cfg);
		return 1;
	}
	rc = siem_test(&cfg, timeout_s);
	shim_config_free(&cfg);
	return rc;
}
