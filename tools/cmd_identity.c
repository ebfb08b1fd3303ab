/*
 * shimctl identity: the device identity key (P-256, made by
 * "shimctl keygen identity") that signs heartbeats, shutting_down,
 * tamper_reset and the tamper state.
 *
 *   shimctl identity pub [--key FILE] [--out FILE]
 *       prints the public key (PEM), e.g. for the monitor's inventory
 *       (<shim_id>.pub).
 *   shimctl identity csr --cn SHIM_ID [--key FILE] [--out FILE]
 *       makes a certificate signing request for the SIEM client
 *       certificate, signed by the identity key.
 * The key defaults to <storage_root>/keys/identity.key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_csr.h>

#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "subcommands.h"
#include "toolutil.h"
#include "util.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: shimctl identity pub [--key FILE] [--out FILE]\n"
		"       shimctl identity csr --cn SHIM_ID [--key FILE] [--out FILE]\n");
	return 2;
}

/* --key, or <storage_root>/keys/identity.key from the configuration. */
static char *key_path(int argc, char **argv, const char *config_path)
{
	const char *key = tool_opt(argc, argv, "--key");
	struct shim_config cfg;
	char *p;

	if (key != NULL) {
		return strdup(key);
	}
	if (tool_load_config(config_path, &cfg, 1) < 0) {
		return NULL;
	}
	p = shim_keys_identity_path(&cfg);
	shim_config_free(&cfg);
	return p;
}

static int rng(void *ctx, unsigned char *buf, size_t len)
{
	return shim_linux_random(buf, len) == 0 ? 0 : -1;
}

static int write_out(const char *path, const char *text)
{
	int rc;

	if (path == NULL) {
		fputs(text, stdout);
		return 0;
	}
	rc = shim_write_file_atomic(path, (const uint8_t *)text, strlen(text),
				    0644);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", path, shim_strerror(rc));
		return 1;
	}
	return 0;
}

static int csr(int argc, char **argv, const char *key)
{
	return shim_tool_identity_csr(key, tool_opt(argc, argv, "--cn"),
				      tool_opt(argc, argv, "--out"));
}

int shim_tool_identity_csr(const char *key, const char *cn, const char *out)
{
	mbedtls_x509write_csr req;
	mbedtls_pk_context pk;
	unsigned char pem[4096];
	char subject[128];
	size_t i;
	int rc = 1;

	if (cn == NULL || cn[0] == '\0' || strlen(cn) > 64) {
		fprintf(stderr, "shimctl: the CSR's common name (the shim ID) "
				"takes 1-64 characters\n");
		return 2;
	}
	for (i = 0; cn[i] != '\0'; i++) {
		/* The CN goes into an X.500 name string: keep it plain. */
		if (cn[i] == ',' || cn[i] == '=' || cn[i] == '\\' ||
		    cn[i] == '+' || (unsigned char)cn[i] < 0x20) {
			fprintf(stderr, "shimctl: --cn may not hold , = + \\ or "
					"control characters\n");
			return 2;
		}
	}
	snprintf(subject, sizeof(subject), "CN=%s", cn);
	mbedtls_pk_init(&pk);
	mbedtls_x509write_csr_init(&req);
	if (mbedtls_pk_parse_keyfile(&pk, key, NULL) != 0 ||
	    mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY) {
		fprintf(stderr, "shimctl: %s: not a readable EC private key\n",
			key);
		goto out;
	}
	mbedtls_x509write_csr_set_md_alg(&req, MBEDTLS_MD_SHA256);
	mbedtls_x509write_csr_set_key(&req, &pk);
	if (mbedtls_x509write_csr_set_subject_name(&req, subject) != 0 ||
	    mbedtls_x509write_csr_set_key_usage(&req,
			MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0 ||
	    mbedtls_x509write_csr_pem(&req, pem, sizeof(pem), rng, NULL) != 0) {
		fprintf(stderr, "shimctl: cannot make the request\n");
		goto out;
	}
	rc = write_out(out, (const char *)pem);
out:
	mbedtls_x509write_csr_free(&req);
	mbedtls_pk_free(&pk);
	return rc;
}

int cmd_identity_main(int argc, char **argv, const char *config_path)
{
	uint8_t pub[SHIM_P256_PUB_LEN];
	char pem[SHIM_KEYS_PEM_MAX];
	char *key;
	int rc;

	if (argc < 2) {
		return usage();
	}
	if (strcmp(argv[1], "pub") != 0 && strcmp(argv[1], "csr") != 0) {
		return usage();
	}
	key = key_path(argc, argv, config_path);
	if (key == NULL) {
		return 1;
	}
	if (strcmp(argv[1], "csr") == 0) {
		rc = csr(argc, argv, key);
		free(key);
		return rc;
	}
	rc = shim_keys_load_public(key, pub);
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s: %s\n", key,
			rc == SHIM_EINVAL ? "not a P-256 key" : shim_strerror(rc));
		free(key);
		return 1;
	}
	free(key);
	rc = shim_keys_pub_pem(pub, pem, sizeof(pem));
	if (rc != 0) {
		fprintf(stderr, "shimctl: %s\n", shim_strerror(rc));
		return 1;
	}
	return write_out(tool_opt(argc, argv, "--out"), pem);
}
