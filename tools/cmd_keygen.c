/*
 * shimctl keygen recording --out FILE
 * shimctl keygen identity [--out FILE]
 *
 * P-256 key pairs. The recording private key stays with the central
 * recording custodian; the public key printed here goes into the shim's
 * config (recording: public_key:). The identity key signs footers and
 * heartbeats; by default it is created under the storage root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "port_linux.h"
#include "subcommands.h"

static void usage(void)
{
	fprintf(stderr, "usage: shimctl keygen recording --out FILE\n"
			"       shimctl keygen identity [--out FILE]\n");
}

/* FILE.key -> FILE.pub, anything else -> FILE.pub appended. */
static char *pub_path_for(const char *priv)
{
	size_t n = strlen(priv);
	char *p = malloc(n + 5);

	if (p == NULL) {
		return NULL;
	}
	if (n > 4 && strcmp(priv + n - 4, ".key") == 0) {
		snprintf(p, n + 5, "%.*s.pub", (int)(n - 4), priv);
	} else {
		snprintf(p, n + 5, "%s.pub", priv);
	}
	return p;
}

int cmd_keygen_main(int argc, char **argv, const char *config_path)
{
	struct shim_config cfg;
	struct shim_config_diag diag;
	const char *out = NULL;
	char *priv = NULL, *pub = NULL;
	char pem[SHIM_KEYS_PEM_MAX];
	int recording, cfg_loaded = 0, i, rc, ex = 1;

	if (argc < 2 || (strcmp(argv[1], "recording") != 0 &&
			 strcmp(argv[1], "identity") != 0)) {
		usage();
		return 2;
	}
	recording = strcmp(argv[1], "recording") == 0;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else {
			usage();
			return 2;
		}
	}
	if (recording && out == NULL) {
		fprintf(stderr, "shimctl keygen recording: --out FILE is "
				"required (the private key file for the "
				"recording custodian)\n");
		return 2;
	}
	if (out != NULL) {
		priv = strdup(out);
	} else {
		char *dir;

		memset(&diag, 0, sizeof(diag));
		diag.out = stderr;
		diag.no_warnings = 1;
		if (shim_config_load(&cfg, config_path, &diag) != 0) {
			fprintf(stderr, "shimctl keygen: cannot load %s (pass "
					"--out FILE)\n",
				config_path);
			shim_config_free(&cfg);
			return 1;
		}
		cfg_loaded = 1;
		priv = shim_keys_identity_path(&cfg);
		dir = shim_config_path(&cfg, "keys");
		rc = dir != NULL ? shim_mkdir_p(dir, 0700) : SHIM_ENOMEM;
		free(dir);
		if (rc != 0 || priv == NULL) {
			fprintf(stderr, "shimctl keygen identity: %s\n",
				shim_strerror(rc));
			goto out;
		}
	}
	pub = pub_path_for(priv);
	if (pub == NULL) {
		goto out;
	}
	rc = shim_keys_generate(priv, pub, NULL, pem);
	if (rc == SHIM_EEXIST && out == NULL) {
		uint8_t raw[65];

		/* The shim's own identity exists: keep it, show it. */
		rc = shim_keys_load_public(priv, raw);
		if (rc == 0) {
			rc = shim_keys_pub_pem(raw, pem, sizeof(pem));
		}
		if (rc != 0) {
			fprintf(stderr, "shimctl keygen: %s: %s\n", priv,
				shim_strerror(rc));
			goto out;
		}
		fprintf(stderr, "identity key %s already exists; kept\n",
			priv);
		fputs(pem, stdout);
		ex = 0;
		goto out;
	}
	if (rc == SHIM_EEXIST) {
		fprintf(stderr,
			"shimctl keygen: %s already exists; not overwriting "
			"a key\n",
			priv);
		goto out;
	}
	if (rc != 0) {
		fprintf(stderr, "shimctl keygen: %s: %s\n", priv,
			shim_strerror(rc));
		goto out;
	}
	if (recording) {
		fprintf(stderr,
			"private key: %s (0600; keep it with the recording "
			"custodian, never on the shim)\npublic key:  %s\n"
			"put the public key on the shim and name it in the "
			"config:\n  recording:\n    public_key: /etc/shim/"
			"recording.pub\n",
			priv, pub);
	} else {
		fprintf(stderr, "identity key: %s (0600)\n", priv);
	}
	fputs(pem, stdout);
	ex = 0;
out:
	free(priv);
	free(pub);
	if (cfg_loaded) {
		shim_config_free(&cfg);
	}
	return ex;
}
