/*
 * Break-glass verify time: median and p99 in microseconds for a code
 * refused at each stage (typo, forgery, expired) and for an accepted code
 * (whose single-use mark is made durable with fsync), on the real Linux
 * port. The failure delay the technician waits after a refusal is 1 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "breakglass.h"
#include "port_linux.h"

#define ROUNDS 2000
#define OK_ROUNDS 60 /* marks held at once: SHIM_BG_USED_SLOTS */
#define SHIM "bench-shim"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *us, int n)
{
	qsort(us, (size_t)n, sizeof(*us), cmp);
	printf("  %-44s p50 %8.1f us   p99 %8.1f us   (n=%d)\n", what, us[n / 2],
	       us[n * 99 / 100], n);
}

static double now_us(void)
{
	return (double)shim_linux_mono_ns() / 1000.0;
}

static void mint(struct shim_linux_port *lp, const struct shim_bg_key *key,
		 int64_t issued, uint16_t nonce, int flip, char *out)
{
	struct shim_bg_code c;

	memset(&c, 0, sizeof(c));
	c.tag = shim_bg_tag(SHIM, strlen(SHIM));
	c.nonce = nonce;
	c.issued = (uint32_t)((issued - SHIM_BG_EPOCH) / 60);
	c.ttl = 60;
	shim_bg_mac(&lp->port.crypto, key->key, SHIM, strlen(SHIM), NULL, 0, &c,
		    c.mac);
	c.mac[0] ^= (uint8_t)flip;
	shim_bg_format(&c, out);
}

static void run(const char *what, struct shim_bg *bg, const char *code,
		int64_t at, double *us, int n)
{
	struct shim_bg_result res;
	int i;

	for (i = 0; i < n; i++) {
		double t0 = now_us();

		shim_bg_verify(bg, "vendor.eng", 10, code, strlen(code), at, 1, &res);
		us[i] = now_us() - t0;
	}
	report(what, us, n);
}

int main(void)
{
	static double us[ROUNDS];
	static struct shim_bg bg;
	struct shim_linux_port lp;
	struct shim_bg_key key;
	struct shim_bg_result res;
	uint8_t master[SHIM_BG_KEY_LEN];
	char dir[] = "/tmp/shim-bench-bgXXXXXX";
	char code[SHIM_BG_TEXT_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	int i;

	if (mkdtemp(dir) == NULL || shim_linux_port_init(&lp, dir) != 0) {
		perror("setup");
		return 1;
	}
	memset(&key, 0, sizeof(key));
	shim_linux_random(master, sizeof(master));
	snprintf(key.shim_id, sizeof(key.shim_id), "%s", SHIM);
	shim_bg_derive(&lp.port.crypto, master, SHIM, strlen(SHIM), key.key);
	shim_bg_key_id(&lp.port.crypto, master, key.key_id);
	key.loaded = 1;
	if (shim_bg_init(&bg, &key, SHIM, &lp.port, 0, 0) != 0) {
		fprintf(stderr, "bench: verifier init failed\n");
		return 1;
	}
	printf("break-glass code verification (HMAC-SHA256, mbedTLS), storage %s\n",
	       dir);
	mint(&lp, &key, now, 1, 0, code);
	code[3] = code[3] == 'A' ? 'B' : 'A';
	run("refused: mistyped (check character)", &bg, code, now, us, ROUNDS);
	mint(&lp, &key, now, 2, 1, code);
	run("refused: forged (MAC)", &bg, code, now, us, ROUNDS);
	mint(&lp, &key, now - 7200, 3, 0, code);
	run("refused: expired (after the MAC)", &bg, code, now, us, ROUNDS);
	for (i = 0; i < OK_ROUNDS; i++) {
		double t0;

		mint(&lp, &key, now, (uint16_t)(100 + i), 0, code);
		t0 = now_us();
		shim_bg_verify(&bg, "vendor.eng", 10, code, strlen(code), now, 1,
			       &res);
		us[i] = now_us() - t0;
		if (res.outcome != SHIM_BG_OK) {
			fprintf(stderr, "bench: code %d refused: %s\n", i,
				shim_bg_outcome_name(res.outcome));
			return 1;
		}
	}
	report("accepted (mark made durable, fsync)", us, OK_ROUNDS);
	printf("  reference: the failure delay after a refusal is 1000000 us\n");
	shim_bg_wipe(&bg);
	shim_linux_port_fini(&lp);
	return 0;
}
