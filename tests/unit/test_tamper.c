/*
 * The tamper latch: persistence across restarts, removed or altered state,
 * the boot count, and reset tokens (good, wrong key, other shim, expired,
 * reused, malformed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fakes.h"
#include "keys.h"
#include "p256key.h"
#include "port_linux.h"
#include "tamper.h"
#include "util.h"

#define T0 1800000000LL
#define SHIM "pump-01"

static char dir[64];
static char auth_key[128], other_key[128], id_key[128];
static uint8_t auth_pub[SHIM_P256_PUB_LEN], other_pub[SHIM_P256_PUB_LEN];

static int setup_keys(void **state)
{
	uint8_t pub[SHIM_P256_PUB_LEN];

	snprintf(dir, sizeof(dir), "/tmp/test_tamper.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(auth_key, sizeof(auth_key), "%s/auth.key", dir);
	snprintf(other_key, sizeof(other_key), "%s/other.key", dir);
	snprintf(id_key, sizeof(id_key), "%s/id.key", dir);
	if (shim_keys_generate(auth_key, NULL, auth_pub, NULL) != 0 ||
	    shim_keys_generate(other_key, NULL, other_pub, NULL) != 0 ||
	    shim_keys_generate(id_key, NULL, pub, NULL) != 0) {
		return -1;
	}
	return 0;
}

static int teardown_keys(void **state)
{
	unlink(auth_key);
	unlink(other_key);
	unlink(id_key);
	rmdir(dir);
	return 0;
}

static void store_del(struct fake_port *fp, const char *name)
{
	int i;

	for (i = 0; i < FAKE_STORE_SLOTS; i++) {
		if (fp->store.blobs[i].data != NULL &&
		    strcmp(fp->store.blobs[i].name, name) == 0) {
			free(fp->store.blobs[i].data);
			fp->store.blobs[i].data = NULL;
			fp->store.blobs[i].name[0] = '\0';
		}
	}
}

/* Issues a token the way shimctl does, for latch seq-boot, then parses
 * it back. */
static void make_token_for(const char *key, const char *shim, uint64_t seq,
			   uint64_t boot, int64_t issued, int64_t expires,
			   uint8_t nonce, struct shim_reset_token *out)
{
	struct shim_reset_token tok;
	uint8_t digest[32], sig[SHIM_P256_SIG_LEN];
	char text[SHIM_TOKEN_MAX + 1];
	size_t len;

	memset(&tok, 0, sizeof(tok));
	strcpy(tok.purpose, SHIM_TOKEN_PURPOSE_RESET);
	strcpy(tok.shim_id, shim);
	tok.latch_seq = seq;
	tok.latch_boot = boot;
	strcpy(tok.issuer, "soc-duty");
	strcpy(tok.reason, "case closed after inspection");
	tok.issued = issued;
	tok.expires = expires;
	memset(tok.nonce, nonce, sizeof(tok.nonce));
	assert_int_equal(shim_token_make_payload(&tok), 0);
	shim_sha256((const uint8_t *)tok.payload, tok.payload_len, digest);
	assert_int_equal(shim_p256_sign_with(key, digest, sig), 0);
	assert_int_equal(shim_token_format(&tok, sig, text, sizeof(text), &len), 0);
	assert_int_equal(strlen(text), len);
	assert_int_equal(shim_token_parse(text, len, out), 0);
	assert_int_equal(out->latch_seq, seq);
	assert_int_equal(out->latch_boot, boot);
}

/* A token for the latch t holds now. */
#define make_token(key, shim, issued, expires, nonce, out)                \
	make_token_for((key), (shim), t.latch_seq, t.latch_boot, (issued), \
		       (expires), (nonce), (out))

static void test_fresh_boot_counts(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	int i;

	fake_port_init(&fp, T0);
	for (i = 1; i <= 3; i++) {
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		assert_int_equal(t.boot_count, (uint64_t)i);
		assert_false(shim_tamper_is_latched(&t));
		assert_false(t.tripped_at_open);
	}
	fake_port_free(&fp);
}

static void test_latch_survives_restart(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	struct shim_event ev;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "file /run/x exists",
					  T0 * 1000000000LL), 0);
	assert_true(shim_tamper_is_latched(&t));
	/* A second trip keeps the first cause. */
	assert_int_equal(shim_tamper_trip(&t, "magnet", "", T0), 0);
	assert_string_equal(t.event, "case_opened");

	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_true(shim_tamper_is_latched(&t));
	assert_false(t.tripped_at_open);
	assert_string_equal(t.event, "case_opened");
	assert_int_equal(t.boot_count, 2);

	assert_int_equal(shim_tamper_event(&t, &ev, T0), 0);
	assert_string_equal(ev.name, "tamper");
	assert_int_equal(ev.priority, 1);
	assert_string_equal(shim_event_get(&ev, "event"), "case_opened");
	assert_int_equal(shim_tamper_stop_event(&t, &ev, T0), 0);
	assert_string_equal(ev.name, "emergency_stop");
	assert_int_equal(ev.priority, 1);
	assert_string_equal(shim_event_get(&ev, "reason"), "tamper:case_opened");
	assert_int_equal(shim_tamper_fault_event(&ev, "case_opened",
						 "gpiochip0 line 17 chip missing",
						 "stop", T0), 0);
	assert_string_equal(ev.name, "sensor_fault");
	assert_int_equal(ev.priority, 1);
	assert_string_equal(shim_event_get(&ev, "action"), "stop");
	fake_port_free(&fp);
}

static void test_removed_state_latches(void **state)
{
	const char *names[] = { SHIM_TAMPER_BLOB_STATE, SHIM_TAMPER_BLOB_BOOT };
	struct fake_port fp;
	struct shim_tamper t;
	size_t i;

	for (i = 0; i < 2; i++) {
		fake_port_init(&fp, T0);
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		store_del(&fp, names[i]);
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		assert_true(shim_tamper_is_latched(&t));
		assert_true(t.tripped_at_open);
		assert_string_equal(t.event, "state_missing");
		/* The count goes on from the record that is left. */
		assert_int_equal(t.boot_count, 3);
		/* And stays latched on the next start. */
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		assert_true(shim_tamper_is_latched(&t));
		fake_port_free(&fp);
	}
}

static void test_altered_state_latches(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	uint8_t *p;
	size_t len;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0), 0);
	p = fake_store_get(&fp, SHIM_TAMPER_BLOB_STATE, &len);
	assert_non_null(p);
	p[6] = 0; /* "not latched", CRC now wrong */
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_true(shim_tamper_is_latched(&t));
	assert_string_equal(t.event, "state_corrupt");

	/* Truncated */
	fake_port_free(&fp);
	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	for (int i = 0; i < FAKE_STORE_SLOTS; i++) {
		if (fp.store.blobs[i].data != NULL) {
			fp.store.blobs[i].len--;
		}
	}
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_true(shim_tamper_is_latched(&t));
	assert_string_equal(t.event, "state_corrupt");
	fake_port_free(&fp);
}

static void test_old_copy_put_back(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	uint8_t old[2048], *p;
	size_t len, old_len;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	p = fake_store_get(&fp, SHIM_TAMPER_BLOB_STATE, &old_len);
	assert_true(old_len <= sizeof(old));
	memcpy(old, p, old_len);
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0), 0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	/* Put the pre-trip tamper record back. */
	assert_int_equal(fp.port.store.save(fp.port.store.ctx,
					    SHIM_TAMPER_BLOB_STATE, old, old_len), 0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_true(shim_tamper_is_latched(&t));
	assert_string_equal(t.event, "state_rollback");
	(void)len;
	fake_port_free(&fp);
}

static void test_store_failure_fails_closed(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	fp.store.fail_save = 1;
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0), SHIM_EIO);
	assert_true(shim_tamper_is_latched(&t));
	fp.store.fail_save = 0;
	fp.store.fail_load = 1;
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), SHIM_EIO);
	assert_true(shim_tamper_is_latched(&t));
	assert_string_equal(t.event, "state_unreadable");
	fake_port_free(&fp);
}

static void test_token_resets(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	struct shim_reset_token tok, tok2;
	struct shim_event ev;
	const char *why;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0), 0);

	/* Wrong key */
	make_token(other_key, SHIM, T0, T0 + 600, 1, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 10, &why),
			 SHIM_ESIG);
	assert_true(shim_tamper_is_latched(&t));
	/* Another shim */
	make_token(auth_key, "pump-02", T0, T0 + 600, 2, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 10, &why),
			 SHIM_EACCES);
	/* Expired, not yet valid, too long-lived */
	make_token(auth_key, SHIM, T0, T0 + 600, 3, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 600, &why),
			 SHIM_ETIMEDOUT);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 - 3600, &why),
			 SHIM_ETIMEDOUT);
	make_token(auth_key, SHIM, T0, T0 + SHIM_TOKEN_MAX_TTL + 1, 4, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 1, &why),
			 SHIM_ETIMEDOUT);
	assert_true(shim_tamper_is_latched(&t));
	/* An altered payload breaks the signature. */
	make_token(auth_key, SHIM, T0, T0 + 600, 5, &tok);
	tok.payload[tok.payload_len - 2] ^= 1;
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 1, &why),
			 SHIM_ESIG);

	/* A good one clears, and the clearing survives a restart. */
	make_token(auth_key, SHIM, T0, T0 + 600, 6, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 10, &why),
			 0);
	assert_false(shim_tamper_is_latched(&t));
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_false(shim_tamper_is_latched(&t));
	assert_int_equal(t.reset_count, 1);
	assert_true(t.reset_pending);
	assert_int_equal(shim_tamper_reset_event(&t, &ev, T0), 0);
	assert_string_equal(ev.name, "tamper_reset");
	assert_int_equal(ev.sign, 1);
	assert_string_equal(shim_event_get(&ev, "by"), "soc-duty");
	assert_string_equal(shim_event_get(&ev, "cleared"), "case_opened");
	assert_string_equal(shim_event_get(&ev, "method"), "token");
	assert_int_equal(shim_tamper_reset_reported(&t), 0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_false(t.reset_pending);

	/* The used token names the latch it cleared, not the next one. */
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0 + 20), 0);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 30, &why),
			 SHIM_EACCES);
	assert_string_equal(why, "token is for another latch");
	/* Single use, even after a restart: its nonce again is refused. */
	make_token(auth_key, SHIM, T0, T0 + 600, 6, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 30, &why),
			 SHIM_EEXIST);
	/* A token issued before the last one used is dead too. */
	make_token(auth_key, SHIM, T0 - 10, T0 + 600, 7, &tok2);
	assert_int_equal(shim_tamper_reset_token(&t, &tok2, auth_pub, T0 + 30, &why),
			 SHIM_EEXIST);
	assert_true(shim_tamper_is_latched(&t));
	/* A failed save does not spend the token and keeps the latch. */
	make_token(auth_key, SHIM, T0 + 25, T0 + 600, 8, &tok2);
	fp.store.fail_save = 1;
	assert_int_equal(shim_tamper_reset_token(&t, &tok2, auth_pub, T0 + 30, &why),
			 SHIM_EIO);
	assert_true(shim_tamper_is_latched(&t));
	fp.store.fail_save = 0;
	assert_int_equal(shim_tamper_reset_token(&t, &tok2, auth_pub, T0 + 30, &why),
			 0);
	assert_false(shim_tamper_is_latched(&t));
	fake_port_free(&fp);
}

static void test_reset_repairs_removed_state(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	struct shim_reset_token tok;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	store_del(&fp, SHIM_TAMPER_BLOB_BOOT);
	assert_int_equal(shim_tamper_load(&t, &fp.port, SHIM), 0);
	assert_true(shim_tamper_is_latched(&t));
	make_token(auth_key, SHIM, T0, T0 + 600, 9, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0, NULL), 0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_false(shim_tamper_is_latched(&t));
	assert_int_equal(t.boot_count, 2);
	fake_port_free(&fp);
}

static void test_physical_reset(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	struct shim_event ev;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(shim_tamper_trip(&t, "magnet", "", T0), 0);
	assert_int_equal(shim_tamper_reset_physical(&t, T0), 0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_false(shim_tamper_is_latched(&t));
	assert_int_equal(shim_tamper_reset_event(&t, &ev, T0), 0);
	assert_string_equal(shim_event_get(&ev, "method"), "reset_key");
	assert_string_equal(shim_event_get(&ev, "cleared"), "magnet");
	fake_port_free(&fp);
}

static void test_signed_state(void **state)
{
	struct shim_linux_port lp;
	struct fake_port fp;
	struct shim_tamper t;
	uint8_t *p;
	size_t len;

	assert_int_equal(shim_linux_port_init(&lp, NULL), 0);
	assert_int_equal(shim_linux_port_load_identity(&lp, id_key), 0);
	fake_port_init(&fp, T0);
	/* Unsigned records from before, then the identity key appears:
	 * records not signed by it are not believed. */
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	fp.port.crypto = lp.port.crypto;
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_true(shim_tamper_is_latched(&t));
	assert_string_equal(t.event, "state_forged");
	fake_port_free(&fp);

	fake_port_init(&fp, T0);
	fp.port.crypto = lp.port.crypto;
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_false(shim_tamper_is_latched(&t));
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_false(shim_tamper_is_latched(&t));
	assert_int_equal(t.boot_count, 2);
	/* Flip the latch byte and fix the CRC: the signature still fails. */
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0), 0);
	p = fake_store_get(&fp, SHIM_TAMPER_BLOB_STATE, &len);
	p[6] = 0;
	{
		size_t body = len - 4 - SHIM_P256_SIG_LEN;
		uint32_t crc = shim_crc32(0, p, body);

		p[body] = (uint8_t)(crc >> 24);
		p[body + 1] = (uint8_t)(crc >> 16);
		p[body + 2] = (uint8_t)(crc >> 8);
		p[body + 3] = (uint8_t)crc;
	}
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_true(shim_tamper_is_latched(&t));
	assert_string_equal(t.event, "state_forged");
	fake_port_free(&fp);
	shim_linux_port_fini(&lp);
}

static void test_token_parse_edges(void **state)
{
	struct shim_tamper t = { .latch_seq = 1, .latch_boot = 1 };
	struct shim_reset_token tok, good;
	char text[SHIM_TOKEN_MAX + 64];
	uint8_t sig[SHIM_P256_SIG_LEN];
	size_t len;

	make_token(auth_key, SHIM, T0, T0 + 600, 1, &good);
	memset(sig, 7, sizeof(sig));
	assert_int_equal(shim_token_format(&good, sig, text, sizeof(text), &len), 0);
	/* Surrounding white space is fine. */
	{
		char padded[SHIM_TOKEN_MAX + 80];

		snprintf(padded, sizeof(padded), "  %s\r\n", text);
		assert_int_equal(shim_token_parse(padded, strlen(padded), &tok), 0);
		assert_string_equal(tok.shim_id, SHIM);
		assert_int_equal(tok.issued, T0);
	}
	/* Truncated anywhere: refused. */
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(shim_token_parse(text, cut, &tok), SHIM_EINVAL);
	}
	/* Bad prefix, bad alphabet, no dot, trailing junk. */
	text[0] = 'X';
	assert_int_equal(shim_token_parse(text, len, &tok), SHIM_EINVAL);
	text[0] = 'S';
	text[8] = '*';
	assert_int_equal(shim_token_parse(text, len, &tok), SHIM_EINVAL);
	assert_int_equal(shim_token_parse("SRT1.abcd", 9, &tok), SHIM_EINVAL);
	assert_int_equal(shim_token_parse(NULL, 0, &tok), SHIM_EINVAL);
	/* Fields the parser would refuse cannot be issued either. */
	tok = good;
	strcpy(tok.shim_id, "pump 01");
	assert_int_equal(shim_token_make_payload(&tok), SHIM_EINVAL);
	tok = good;
	strcpy(tok.reason, "line\nbreak");
	assert_int_equal(shim_token_make_payload(&tok), SHIM_EINVAL);
	/* A giant input is refused before decoding. */
	{
		char *big = malloc(100000);

		assert_non_null(big);
		memset(big, 'A', 100000);
		memcpy(big, "SRT1.", 5);
		assert_int_equal(shim_token_parse(big, 100000, &tok), SHIM_EINVAL);
		free(big);
	}
}

/* Every trip gets the next latch number and the boot count it tripped
 * in; both survive restarts, and removing the tamper record does not bring
 * an old number back. */
static void test_latch_sequence(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	struct shim_reset_token tok;
	struct shim_event ev;
	char lid[SHIM_LATCH_ID_MAX];

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(t.latch_seq, 0);
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0), 0);
	assert_int_equal(t.latch_seq, 1);
	assert_int_equal(t.latch_boot, 1);
	/* A second trip while latched keeps the identity. */
	assert_int_equal(shim_tamper_trip(&t, "magnet", "", T0), 0);
	assert_int_equal(t.latch_seq, 1);
	assert_int_equal(shim_tamper_latch_id(&t, lid, sizeof(lid)), 0);
	assert_string_equal(lid, "1-1");
	assert_int_equal(shim_tamper_latch_id(&t, lid, 3), SHIM_ENOSPC);
	/* It is in the events the SOC sees. */
	assert_int_equal(shim_tamper_event(&t, &ev, T0), 0);
	assert_string_equal(shim_event_get(&ev, "latch"), "1-1");
	assert_int_equal(shim_tamper_stop_event(&t, &ev, T0), 0);
	assert_string_equal(shim_event_get(&ev, "latch"), "1-1");

	/* Persisted: the next start (boot 2) still holds latch 1-1. */
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(t.boot_count, 2);
	assert_int_equal(t.latch_seq, 1);
	assert_int_equal(t.latch_boot, 1);
	make_token(auth_key, SHIM, T0, T0 + 600, 1, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 1, NULL),
			 0);
	assert_int_equal(shim_tamper_reset_event(&t, &ev, T0), 0);
	assert_string_equal(shim_event_get(&ev, "latch"), "1-1");
	/* The next trip, in boot 2, is latch 2-2. */
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0 + 5), 0);
	assert_int_equal(shim_tamper_latch_id(&t, lid, sizeof(lid)), 0);
	assert_string_equal(lid, "2-2");
	make_token(auth_key, SHIM, T0 + 1, T0 + 600, 2, &tok);
	assert_int_equal(shim_tamper_reset_token(&t, &tok, auth_pub, T0 + 6, NULL),
			 0);
	/* Boot 3; the tamper record is removed: state_missing is latch 3
	 * (the boot record remembers 2), of the start that finds it. */
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	store_del(&fp, SHIM_TAMPER_BLOB_STATE);
	assert_int_equal(shim_tamper_load(&t, &fp.port, SHIM), 0);
	assert_string_equal(t.event, "state_missing");
	assert_int_equal(shim_tamper_latch_id(&t, lid, sizeof(lid)), 0);
	/* The offline tools name the latch the next start will hold. */
	assert_string_equal(lid, "3-4");
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(t.boot_count, 4);
	assert_int_equal(shim_tamper_latch_id(&t, lid, sizeof(lid)), 0);
	assert_string_equal(lid, "3-4");
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(shim_tamper_latch_id(&t, lid, sizeof(lid)), 0);
	assert_string_equal(lid, "3-4");
	fake_port_free(&fp);
}

/* An unused token cannot clear a later, unrelated trip, and a token
 * refused for its latch is not spent. */
static void test_token_bound_to_latch(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	struct shim_reset_token a, b, c;
	const char *why;

	fake_port_init(&fp, T0);
	assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0), 0);
	make_token(auth_key, SHIM, T0, T0 + 600, 1, &a);
	make_token(auth_key, SHIM, T0, T0 + 600, 2, &b);
	/* A token for the next latch does not clear this one. */
	make_token_for(auth_key, SHIM, t.latch_seq + 1, t.latch_boot, T0,
		       T0 + 600, 3, &c);
	assert_int_equal(shim_tamper_reset_token(&t, &c, auth_pub, T0 + 1, &why),
			 SHIM_EACCES);
	assert_string_equal(why, "token is for another latch");
	make_token_for(auth_key, SHIM, t.latch_seq, t.latch_boot + 1, T0,
		       T0 + 600, 3, &c);
	assert_int_equal(shim_tamper_reset_token(&t, &c, auth_pub, T0 + 1, &why),
			 SHIM_EACCES);
	assert_true(shim_tamper_is_latched(&t));
	assert_int_equal(shim_tamper_reset_token(&t, &a, auth_pub, T0 + 1, &why),
			 0);
	/* Not latched: a good token is not spent on nothing. */
	assert_int_equal(shim_tamper_check_token(&t, &b, auth_pub, T0 + 2, &why),
			 SHIM_ESTATE);
	assert_int_equal(shim_tamper_reset_token(&t, &b, auth_pub, T0 + 2, &why),
			 SHIM_ESTATE);
	assert_string_equal(why, "no emergency stop is latched");
	assert_int_equal(t.reset_count, 1);
	/* Latch 2: the unused token for latch 1 is refused. */
	assert_int_equal(shim_tamper_trip(&t, "case_opened", "", T0 + 3), 0);
	assert_int_equal(t.latch_seq, 2);
	assert_int_equal(shim_tamper_reset_token(&t, &b, auth_pub, T0 + 4, &why),
			 SHIM_EACCES);
	assert_string_equal(why, "token is for another latch");
	assert_true(shim_tamper_is_latched(&t));
	/* The token issued for it works (c was refused, so c's nonce 3 is
	 * not spent either). */
	make_token(auth_key, SHIM, T0 + 1, T0 + 600, 3, &c);
	assert_int_equal(shim_tamper_reset_token(&t, &c, auth_pub, T0 + 4, &why),
			 0);
	assert_false(shim_tamper_is_latched(&t));
	fake_port_free(&fp);
}

/* A format-1 token (no latch line), properly signed, is refused. */
static void test_old_format_token_refused(void **state)
{
	static const char v1[] =
		"shim-reset-token 1\npurpose=tamper-reset\nshim=" SHIM
		"\nissued=1800000000\nexpires=1800000600\n"
		"nonce=01010101010101010101010101010101\nissuer=soc\n"
		"reason=old\n";
	struct shim_reset_token tok;
	uint8_t digest[32], sig[SHIM_P256_SIG_LEN];
	char text[SHIM_TOKEN_MAX + 1];
	size_t len;

	memset(&tok, 0, sizeof(tok));
	memcpy(tok.payload, v1, sizeof(v1) - 1);
	tok.payload_len = sizeof(v1) - 1;
	shim_sha256((const uint8_t *)tok.payload, tok.payload_len, digest);
	assert_int_equal(shim_p256_sign_with(auth_key, digest, sig), 0);
	assert_int_equal(shim_token_format(&tok, sig, text, sizeof(text), &len), 0);
	assert_int_equal(shim_token_parse(text, len, &tok), SHIM_ENOTSUP);
	assert_int_equal(tok.payload_len, 0);
	/* The issuer cannot make a token without a latch. */
	{
		struct shim_tamper t = { .latch_seq = 0, .latch_boot = 1 };
		struct shim_reset_token nt;

		memset(&nt, 0, sizeof(nt));
		strcpy(nt.purpose, SHIM_TOKEN_PURPOSE_RESET);
		strcpy(nt.shim_id, SHIM);
		strcpy(nt.issuer, "soc");
		nt.issued = T0;
		nt.expires = T0 + 60;
		nt.latch_seq = t.latch_seq;
		nt.latch_boot = t.latch_boot;
		assert_int_equal(shim_token_make_payload(&nt), SHIM_EINVAL);
		nt.latch_seq = 1;
		nt.latch_boot = 0;
		assert_int_equal(shim_token_make_payload(&nt), SHIM_EINVAL);
		nt.latch_boot = 1;
		assert_int_equal(shim_token_make_payload(&nt), 0);
		assert_non_null(strstr(nt.payload, "\nlatch=1-1\n"));
	}
}

static void test_latch_id_parse(void **state)
{
	static const char *const bad[] = {
		"", "-", "1", "1-", "-1", "0-1", "1-0", "01-2", "1-02", "1-2-3",
		"a-1", "1-b", " 1-2", "1-2 ", "+1-2", "1--2",
		"1000000000000000-1", "1-1000000000000000",
	};
	uint64_t seq, boot;
	char buf[SHIM_LATCH_ID_MAX];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(shim_latch_id_parse(bad[i], &seq, &boot),
				 SHIM_EINVAL);
		assert_int_equal(seq, 0);
	}
	assert_int_equal(shim_latch_id_parse("3-12", &seq, &boot), 0);
	assert_int_equal(seq, 3);
	assert_int_equal(boot, 12);
	assert_int_equal(shim_latch_id_parse("999999999999999-999999999999999",
					     &seq, &boot), 0);
	assert_int_equal(shim_latch_id_format(seq, boot, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "999999999999999-999999999999999");
	assert_int_equal(shim_latch_id_parse(NULL, &seq, &boot), SHIM_EINVAL);
}

/* Records written by the previous format (version 1) are still read, so
 * an update does not latch a unit; a latch they hold becomes latch 1. */
static void test_version1_records_read(void **state)
{
	struct fake_port fp;
	struct shim_tamper t;
	uint8_t *p;
	size_t len;
	int i, latched;
	char lid[SHIM_LATCH_ID_MAX];

	for (latched = 0; latched < 2; latched++) {
		fake_port_init(&fp, T0);
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		if (latched) {
			assert_int_equal(shim_tamper_trip(&t, "case_opened", "",
							  T0), 0);
		}
		/* Rewrite both records as version 1: drop the latch fields,
		 * set the version, fix the CRC (no identity key here). */
		for (i = 0; i < FAKE_STORE_SLOTS; i++) {
			size_t extra, body;
			uint32_t crc;

			if (fp.store.blobs[i].data == NULL) {
				continue;
			}
			p = fp.store.blobs[i].data;
			len = fp.store.blobs[i].len;
			extra = strcmp(fp.store.blobs[i].name,
				       SHIM_TAMPER_BLOB_BOOT) == 0 ? 8 : 32;
			body = len - 4 - extra;
			p[4] = 1;
			crc = shim_crc32(0, p, body);
			p[body] = (uint8_t)(crc >> 24);
			p[body + 1] = (uint8_t)(crc >> 16);
			p[body + 2] = (uint8_t)(crc >> 8);
			p[body + 3] = (uint8_t)crc;
			fp.store.blobs[i].len = body + 4;
		}
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		assert_false(t.tripped_at_open);
		assert_int_equal(shim_tamper_is_latched(&t), latched);
		assert_int_equal(t.boot_count, 2);
		if (latched) {
			assert_string_equal(t.event, "case_opened");
			assert_int_equal(shim_tamper_latch_id(&t, lid,
							      sizeof(lid)), 0);
			assert_string_equal(lid, "1-1");
		}
		/* Rewritten as version 2, and read back the same. */
		assert_int_equal(shim_tamper_open(&t, &fp.port, SHIM), 0);
		assert_int_equal(shim_tamper_is_latched(&t), latched);
		assert_int_equal(t.latch_seq, (uint64_t)latched);
		fake_port_free(&fp);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_boot_counts),
		cmocka_unit_test(test_latch_survives_restart),
		cmocka_unit_test(test_removed_state_latches),
		cmocka_unit_test(test_altered_state_latches),
		cmocka_unit_test(test_old_copy_put_back),
		cmocka_unit_test(test_store_failure_fails_closed),
		cmocka_unit_test(test_token_resets),
		cmocka_unit_test(test_reset_repairs_removed_state),
		cmocka_unit_test(test_physical_reset),
		cmocka_unit_test(test_signed_state),
		cmocka_unit_test(test_token_parse_edges),
		cmocka_unit_test(test_latch_sequence),
		cmocka_unit_test(test_token_bound_to_latch),
		cmocka_unit_test(test_old_format_token_refused),
		cmocka_unit_test(test_latch_id_parse),
		cmocka_unit_test(test_version1_records_read),
	};

	return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
