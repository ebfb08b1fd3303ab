/*
 * The provisioning blob (core/provision.c): round trips, and every kind of
 * damaged or hostile blob refused with its own code and reason, leaving
 * no technician and no secret behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "provision.h"
#include "util.h"

#define BUF_CAP SHIM_PROV_BLOB_MAX(SHIM_PROVISION_MAX_TECHS + 2)

static uint8_t blob[BUF_CAP];
static size_t blob_len;
static struct shim_technician techs[SHIM_PROVISION_MAX_TECHS + 2];
static struct shim_provision prov;

static void set_tech(struct shim_technician *t, const char *id,
		     uint8_t seed, size_t secret_len)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	memcpy(t->id, id, strlen(id));
	for (i = 0; i < secret_len; i++) {
		t->secret[i] = (uint8_t)(seed + i * 7);
	}
	t->secret_len = (uint8_t)secret_len;
}

/* Two technicians, every optional field present. */
static void sample(struct shim_provision *p, struct shim_technician *t)
{
	size_t i;

	shim_provision_defaults(p);
	strcpy(p->shim_id, "shim-empump-001");
	p->gate.md = SHIM_MD_SHA256;
	p->gate.digits = 8;
	p->gate.window = 2;
	p->gate.period = 60;
	p->gate.max_failures = 3;
	p->gate.lockout_seconds = 600;
	p->gate.rate_failures = 10;
	p->gate.rate_seconds = 120;
	p->idle_timeout_ms = 120000;
	p->max_duration_ms = 3600000;
	p->reconnect_grace_ms = 0;
	p->device_reset = SHIM_PROV_RESET_DTR;
	p->device_reset_hold_ms = 250;
	p->on_failure = SHIM_PROV_ON_FAILURE_STOP;
	memcpy(p->device_logout, "logout\r\0\xff", 9);
	p->device_logout_len = 9;
	p->heartbeat_period_ms = 15000;
	p->clock_max_jump = 300;
	p->record_key[0] = 0x04;
	for (i = 1; i < sizeof(p->record_key); i++) {
		p->record_key[i] = (uint8_t)i;
	}
	p->has_record_key = 1;
	p->record_size = 4096;
	set_tech(&t[0], "alice@example.org", 0x11, 10);
	set_tech(&t[1], "bob@example.org", 0x22, 20);
}

static void encode_sample(void)
{
	struct shim_technician t[2];
	struct shim_provision p;
	enum shim_prov_reason why;

	sample(&p, t);
	assert_int_equal(shim_provision_encode(&p, t, 2, blob, sizeof(blob),
					       &blob_len, &why), 0);
	assert_int_equal(why, SHIM_PROV_R_OK);
}

/* Recomputes the CRC after a test edited the blob. */
static void reseal(uint8_t *b, size_t len)
{
	shim_put_u32(b + 12, (uint32_t)len);
	shim_put_u32(b + len - 4, shim_crc32(0, b, len - 4));
}

/* Offset of the first field of type (its type bytes), or 0. */
static size_t find_field(const uint8_t *b, size_t len, unsigned type)
{
	size_t off = SHIM_PROV_HEADER_LEN;

	while (off + 4 <= len - 4) {
		if (shim_get_u16(b + off) == type) {
			return off;
		}
		off += 4 + shim_get_u16(b + off + 2);
	}
	return 0;
}

/* Inserts a raw field before the CRC and reseals. */
static void append_field(unsigned type, const void *v, size_t n)
{
	size_t at = blob_len - 4;

	assert_true(blob_len + 4 + n <= sizeof(blob));
	shim_put_u16(blob + at, (uint16_t)type);
	shim_put_u16(blob + at + 2, (uint16_t)n);
	memcpy(blob + at + 4, v, n);
	blob_len += 4 + n;
	reseal(blob, blob_len);
}

/* Removes the first field of type and reseals. */
static void remove_field(unsigned type)
{
	size_t off = find_field(blob, blob_len, type), n;

	assert_true(off != 0);
	n = 4 + shim_get_u16(blob + off + 2);
	memmove(blob + off, blob + off + n, blob_len - off - n);
	blob_len -= n;
	reseal(blob, blob_len);
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] != 0) {
			return 0;
		}
	}
	return 1;
}

/* Decodes blob and checks the refusal: code, reason, nothing left. */
static void expect_refused(size_t len, size_t max_techs, int want_rc,
			   enum shim_prov_reason want)
{
	int rc;

	memset(techs, 0xAA, sizeof(techs));
	memset(&prov, 0xAA, sizeof(prov));
	rc = shim_provision_decode(blob, len, &prov, techs, max_techs);
	assert_int_equal(rc, want_rc);
	assert_int_equal(prov.reason, want);
	assert_int_equal(shim_provision_reason_err(want), want_rc);
	assert_int_equal(prov.ntechs, 0);
	assert_true(all_zero(techs, max_techs * sizeof(techs[0])));
	assert_true(all_zero(prov.shim_id, sizeof(prov.shim_id)));
	assert_int_equal(prov.has_record_key, 0);
}

static void decode_ok(size_t max_techs)
{
	int rc = shim_provision_decode(blob, blob_len, &prov, techs, max_techs);

	assert_int_equal(rc, 0);
	assert_int_equal(prov.reason, SHIM_PROV_R_OK);
}

/* ---- round trips ---------------------------------------------------- */

static void test_round_trip(void **state)
{
	struct shim_technician t[2];
	struct shim_provision p;
	uint8_t again[BUF_CAP];
	size_t again_len, i;

	(void)state;
	sample(&p, t);
	encode_sample();
	decode_ok(SHIM_PROVISION_MAX_TECHS);

	assert_int_equal(prov.version, 1);
	assert_string_equal(prov.shim_id, "shim-empump-001");
	assert_int_equal(prov.gate.md, SHIM_MD_SHA256);
	assert_int_equal(prov.gate.digits, 8);
	assert_int_equal(prov.gate.window, 2);
	assert_int_equal(prov.gate.period, 60);
	assert_int_equal(prov.gate.max_failures, 3);
	assert_int_equal(prov.gate.lockout_seconds, 600);
	assert_int_equal(prov.gate.rate_failures, 10);
	assert_int_equal(prov.gate.rate_seconds, 120);
	assert_int_equal(prov.gate.state_required, 0);
	assert_int_equal(prov.idle_timeout_ms, 120000);
	assert_int_equal(prov.max_duration_ms, 3600000);
	assert_int_equal(prov.reconnect_grace_ms, 0);
	assert_int_equal(prov.device_reset, SHIM_PROV_RESET_DTR);
	assert_int_equal(prov.device_reset_hold_ms, 250);
	assert_int_equal(prov.on_failure, SHIM_PROV_ON_FAILURE_STOP);
	assert_int_equal(prov.device_logout_len, 9);
	assert_memory_equal(prov.device_logout, "logout\r\0\xff", 9);
	assert_int_equal(prov.heartbeat_period_ms, 15000);
	assert_int_equal(prov.clock_max_jump, 300);
	assert_int_equal(prov.has_record_key, 1);
	assert_memory_equal(prov.record_key, p.record_key, 65);
	assert_int_equal(prov.record_size, 4096);
	assert_int_equal(prov.ntechs, 2);
	for (i = 0; i < 2; i++) {
		assert_string_equal(techs[i].id, t[i].id);
		assert_int_equal(techs[i].secret_len, t[i].secret_len);
		assert_memory_equal(techs[i].secret, t[i].secret,
				    t[i].secret_len);
		/* The gate's private fields start clean. */
		assert_int_equal(techs[i].last_step, 0);
		assert_int_equal(techs[i].fails.failures, 0);
	}
	/* What decodes encodes to the same bytes. */
	assert_int_equal(shim_provision_encode(&prov, techs, prov.ntechs, again,
					       sizeof(again), &again_len, NULL),
			 0);
	assert_int_equal(again_len, blob_len);
	assert_memory_equal(again, blob, blob_len);
}

static void test_round_trip_defaults(void **state)
{
	struct shim_provision p;
	struct shim_gate_cfg g;
	struct shim_technician t[1];

	(void)state;
	shim_provision_defaults(&p);
	strcpy(p.shim_id, "s");
	set_tech(&t[0], "x", 1, 64);
	assert_int_equal(shim_provision_encode(&p, t, 1, blob, sizeof(blob),
					       &blob_len, NULL), 0);
	/* No logout, key or record size: those fields are left out. */
	assert_int_equal(find_field(blob, blob_len, SHIM_PROV_T_LOGOUT), 0);
	assert_int_equal(find_field(blob, blob_len, SHIM_PROV_T_RECORD_KEY), 0);
	assert_int_equal(find_field(blob, blob_len, SHIM_PROV_T_RECORD_SIZE), 0);
	decode_ok(1);
	shim_gate_cfg_default(&g);
	assert_memory_equal(&prov.gate, &g, sizeof(g));
	assert_int_equal(prov.device_logout_len, 0);
	assert_int_equal(prov.has_record_key, 0);
	assert_int_equal(prov.record_size, 0);
	assert_int_equal(prov.idle_timeout_ms, 900000);
	assert_int_equal(prov.on_failure, SHIM_PROV_ON_FAILURE_CONTINUE);
	assert_int_equal(techs[0].secret_len, 64);
}

/* The clock field may be left out: 120 s. */
static void test_clock_field_optional(void **state)
{
	(void)state;
	encode_sample();
	remove_field(SHIM_PROV_T_CLOCK);
	decode_ok(2);
	assert_int_equal(prov.clock_max_jump, 120);
}

/* The largest blob is what SHIM_PROV_BLOB_MAX() says. */
static void test_largest_blob(void **state)
{
	static struct shim_technician t[SHIM_PROVISION_MAX_TECHS];
	struct shim_provision p;
	char id[SHIM_TECH_ID_MAX + 1];
	size_t i;

	(void)state;
	sample(&p, t);
	memset(p.shim_id, 'S', SHIM_PROV_SHIM_ID_MAX);
	p.shim_id[SHIM_PROV_SHIM_ID_MAX] = '\0';
	memset(p.device_logout, 0, sizeof(p.device_logout));
	p.device_logout_len = SHIM_PROV_LOGOUT_MAX;
	for (i = 0; i < SHIM_PROVISION_MAX_TECHS; i++) {
		memset(id, 'a', SHIM_TECH_ID_MAX);
		id[SHIM_TECH_ID_MAX] = '\0';
		snprintf(id, 8, "t%03zu", i);
		id[4] = 'a';
		set_tech(&t[i], id, (uint8_t)i, SHIM_SECRET_MAX);
	}
	assert_int_equal(shim_provision_encode(&p, t, SHIM_PROVISION_MAX_TECHS,
					       blob, sizeof(blob), &blob_len,
					       NULL), 0);
	assert_int_equal(blob_len, SHIM_PROV_BLOB_MAX(SHIM_PROVISION_MAX_TECHS));
	decode_ok(SHIM_PROVISION_MAX_TECHS);
	assert_int_equal(prov.ntechs, SHIM_PROVISION_MAX_TECHS);
	assert_int_equal(strlen(techs[15].id), SHIM_TECH_ID_MAX);
	assert_int_equal(strlen(prov.shim_id), SHIM_PROV_SHIM_ID_MAX);
}

/* ---- damage --------------------------------------------------------- */

static void test_every_truncation(void **state)
{
	size_t n;

	(void)state;
	encode_sample();
	for (n = 0; n < blob_len; n++) {
		expect_refused(n, 2, SHIM_ETRUNC, SHIM_PROV_R_TRUNCATED);
		assert_int_equal(prov.error_offset, n);
	}
}

static void test_trailing_bytes(void **state)
{
	(void)state;
	encode_sample();
	blob[blob_len] = 0;
	expect_refused(blob_len + 1, 2, SHIM_ECORRUPT, SHIM_PROV_R_TRAILING);
	assert_int_equal(prov.error_offset, blob_len);
}

static void test_bad_magic(void **state)
{
	(void)state;
	encode_sample();
	blob[7] = '2';
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_MAGIC);
	/* Even a short prefix that is not the magic is named for it. */
	blob[0] = 'X';
	expect_refused(3, 2, SHIM_ECORRUPT, SHIM_PROV_R_MAGIC);
}

static void test_bad_crc(void **state)
{
	(void)state;
	encode_sample();
	blob[blob_len - 1] ^= 0x01;
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_CRC);
	assert_int_equal(prov.error_offset, blob_len - 4);
	blob[blob_len - 1] ^= 0x01;
	/* A secret byte flipped: the CRC catches it before anything is read. */
	blob[blob_len - 5] ^= 0x80;
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_CRC);
}

/* No single flipped bit anywhere gives an accepted blob. */
static void test_every_bit_flip(void **state)
{
	struct shim_provision p;
	size_t i;
	int bit, rc;

	(void)state;
	encode_sample();
	for (i = 0; i < blob_len; i++) {
		for (bit = 0; bit < 8; bit++) {
			blob[i] ^= (uint8_t)(1u << bit);
			rc = shim_provision_decode(blob, blob_len, &p, techs, 2);
			assert_true(rc < 0);
			assert_int_equal(p.ntechs, 0);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
}

static void test_version_and_flags(void **state)
{
	(void)state;
	encode_sample();
	shim_put_u16(blob + 8, 2);
	reseal(blob, blob_len);
	expect_refused(blob_len, 2, SHIM_ENOTSUP, SHIM_PROV_R_VERSION);
	assert_int_equal(prov.error_offset, 8);
	encode_sample();
	shim_put_u16(blob + 10, 1);
	reseal(blob, blob_len);
	expect_refused(blob_len, 2, SHIM_ENOTSUP, SHIM_PROV_R_FLAGS);
}

static void test_total_len_impossible(void **state)
{
	size_t total;

	(void)state;
	encode_sample();
	shim_put_u32(blob + 12, 19);
	expect_refused(blob_len, 2, SHIM_ERANGE, SHIM_PROV_R_LENGTH);
	assert_int_equal(prov.error_offset, 12);
	shim_put_u32(blob + 12, SHIM_PROV_MAX_LEN + 1);
	expect_refused(blob_len, 2, SHIM_ERANGE, SHIM_PROV_R_LENGTH);
	shim_put_u32(blob + 12, 0xffffffffu);
	expect_refused(blob_len, 2, SHIM_ERANGE, SHIM_PROV_R_LENGTH);
	/* peek_len says the same from the header alone. */
	assert_int_equal(shim_provision_peek_len(blob, 16, &total),
			 SHIM_ERANGE);
	encode_sample();
	assert_int_equal(shim_provision_peek_len(blob, 16, &total), 0);
	assert_int_equal(total, blob_len);
	assert_int_equal(shim_provision_peek_len(blob, 15, &total),
			 SHIM_ETRUNC);
	assert_int_equal(shim_provision_peek_len(NULL, 16, &total),
			 SHIM_EINVAL);
}

static void test_unknown_fields(void **state)
{
	size_t at;

	(void)state;
	encode_sample();
	at = blob_len - 4;
	append_field(0x0042, "x", 1);
	expect_refused(blob_len, 2, SHIM_ENOTSUP, SHIM_PROV_R_UNKNOWN_FIELD);
	assert_int_equal(prov.error_offset, at);
	/* The same type marked optional is skipped. */
	encode_sample();
	append_field(0x0042 | SHIM_PROV_T_OPTIONAL, "x", 1);
	append_field(0xffff, "", 0);
	decode_ok(2);
	assert_int_equal(prov.ntechs, 2);
}

static void test_field_overrun(void **state)
{
	size_t off;

	(void)state;
	encode_sample();
	/* The last field (bob) gets a length one past the CRC. */
	off = find_field(blob, blob_len, SHIM_PROV_T_TECHNICIAN);
	assert_true(off != 0);
	off += 4 + shim_get_u16(blob + off + 2);
	assert_int_equal(shim_get_u16(blob + off), SHIM_PROV_T_TECHNICIAN);
	shim_put_u16(blob + off + 2,
		     (uint16_t)(blob_len - 4 - off - 4 + 1));
	reseal(blob, blob_len);
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_FIELD_OVERRUN);
	assert_int_equal(prov.error_offset, off);
	/* 1 to 3 bytes left before the CRC: not even a field header. */
	for (off = 1; off < 4; off++) {
		encode_sample();
		memset(blob + blob_len - 4, 0, off);
		blob_len += off;
		reseal(blob, blob_len);
		expect_refused(blob_len, 2, SHIM_ECORRUPT,
			       SHIM_PROV_R_FIELD_OVERRUN);
		assert_int_equal(prov.error_offset, blob_len - 4 - off);
	}
}

/* Fixed-size fields with one byte too few or too many. */
static void test_field_wrong_length(void **state)
{
	static const struct {
		unsigned type;
		size_t len;
	} f[] = {
		{ SHIM_PROV_T_GATE, SHIM_PROV_GATE_LEN },
		{ SHIM_PROV_T_SESSION, SHIM_PROV_SESSION_LEN },
		{ SHIM_PROV_T_HEARTBEAT, 4 },
		{ SHIM_PROV_T_CLOCK, 4 },
		{ SHIM_PROV_T_RECORD_KEY, SHIM_P256_PUB_LEN },
		{ SHIM_PROV_T_RECORD_SIZE, 4 },
	};
	uint8_t v[SHIM_P256_PUB_LEN + 1];
	size_t i, off;

	(void)state;
	memset(v, 0, sizeof(v));
	v[0] = 0x04;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		encode_sample();
		remove_field(f[i].type);
		append_field(f[i].type, v, f[i].len - 1);
		expect_refused(blob_len, 2, SHIM_ECORRUPT,
			       SHIM_PROV_R_FIELD_LENGTH);
		encode_sample();
		remove_field(f[i].type);
		append_field(f[i].type, v, f[i].len + 1);
		expect_refused(blob_len, 2, SHIM_ECORRUPT,
			       SHIM_PROV_R_FIELD_LENGTH);
	}
	/* An empty logout field is malformed (no logout = no field). */
	encode_sample();
	remove_field(SHIM_PROV_T_LOGOUT);
	append_field(SHIM_PROV_T_LOGOUT, v, 0);
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_FIELD_LENGTH);
	/* A technician whose inner lengths disagree with the field's. */
	encode_sample();
	off = find_field(blob, blob_len, SHIM_PROV_T_TECHNICIAN);
	blob[off + 4] = 200; /* id_len beyond the field */
	reseal(blob, blob_len);
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_FIELD_LENGTH);
	encode_sample();
	blob[off + 4 + 1 + 17] = 11; /* alice's secret is 10 bytes */
	reseal(blob, blob_len);
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_FIELD_LENGTH);
	encode_sample();
	append_field(SHIM_PROV_T_TECHNICIAN, "\x01", 1);
	expect_refused(blob_len, 2, SHIM_ECORRUPT, SHIM_PROV_R_FIELD_LENGTH);
}

static void test_duplicate_field(void **state)
{
	static const unsigned types[] = {
		SHIM_PROV_T_SHIM_ID, SHIM_PROV_T_GATE, SHIM_PROV_T_SESSION,
		SHIM_PROV_T_LOGOUT, SHIM_PROV_T_HEARTBEAT, SHIM_PROV_T_CLOCK,
		SHIM_PROV_T_RECORD_KEY, SHIM_PROV_T_RECORD_SIZE,
	};
	uint8_t v[512];
	size_t i, off, n;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		encode_sample();
		off = find_field(blob, blob_len, types[i]);
		assert_true(off != 0);
		n = shim_get_u16(blob + off + 2);
		memcpy(v, blob + off + 4, n);
		append_field(types[i], v, n);
		expect_refused(blob_len, 2, SHIM_EEXIST, SHIM_PROV_R_DUPLICATE);
	}
}

static void test_missing_field(void **state)
{
	static const unsigned types[] = {
		SHIM_PROV_T_SHIM_ID, SHIM_PROV_T_GATE, SHIM_PROV_T_SESSION,
		SHIM_PROV_T_HEARTBEAT,
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		encode_sample();
		remove_field(types[i]);
		expect_refused(blob_len, 2, SHIM_ENOENT, SHIM_PROV_R_MISSING);
	}
	encode_sample();
	remove_field(SHIM_PROV_T_TECHNICIAN);
	remove_field(SHIM_PROV_T_TECHNICIAN);
	expect_refused(blob_len, 2, SHIM_ENOENT, SHIM_PROV_R_NO_TECH);
}

/* ---- technicians ------------------------------------------------------ */

static void test_duplicate_technician(void **state)
{
	struct shim_provision p;
	struct shim_technician t[2];
	uint8_t v[64];
	enum shim_prov_reason why;
	size_t len;

	(void)state;
	encode_sample();
	v[0] = 15;
	memcpy(v + 1, "bob@example.org", 15);
	v[16] = 10;
	memset(v + 17, 0x5a, 10);
	append_field(SHIM_PROV_T_TECHNICIAN, v, 27);
	expect_refused(blob_len, 4, SHIM_EEXIST, SHIM_PROV_R_TECH_DUP);
	/* A prefix of an ID is another ID. */
	encode_sample();
	v[0] = 3;
	memcpy(v + 1, "bob", 3);
	v[4] = 10;
	append_field(SHIM_PROV_T_TECHNICIAN, v, 15);
	decode_ok(3);
	assert_int_equal(prov.ntechs, 3);
	/* The encoder refuses it too. */
	sample(&p, t);
	strcpy(t[1].id, t[0].id);
	assert_int_equal(shim_provision_encode(&p, t, 2, blob, sizeof(blob),
					       &len, &why), SHIM_EEXIST);
	assert_int_equal(why, SHIM_PROV_R_TECH_DUP);
}

static void test_too_many_technicians(void **state)
{
	static struct shim_technician t[SHIM_PROVISION_MAX_TECHS + 1];
	struct shim_provision p;
	enum shim_prov_reason why;
	char id[16];
	size_t i;

	(void)state;
	encode_sample();
	expect_refused(blob_len, 1, SHIM_ENOSPC, SHIM_PROV_R_TOO_MANY);
	expect_refused(blob_len, 0, SHIM_ENOSPC, SHIM_PROV_R_TOO_MANY);
	decode_ok(2);

	sample(&p, t);
	for (i = 0; i < SHIM_PROVISION_MAX_TECHS + 1; i++) {
		snprintf(id, sizeof(id), "tech%zu", i);
		set_tech(&t[i], id, (uint8_t)i, 20);
	}
	assert_int_equal(shim_provision_encode(&p, t,
					       SHIM_PROVISION_MAX_TECHS + 1,
					       blob, sizeof(blob), &blob_len,
					       &why), SHIM_ENOSPC);
	assert_int_equal(why, SHIM_PROV_R_TOO_MANY);
	assert_int_equal(shim_provision_encode(&p, t, SHIM_PROVISION_MAX_TECHS,
					       blob, sizeof(blob), &blob_len,
					       &why), 0);
	decode_ok(SHIM_PROVISION_MAX_TECHS);
	expect_refused(blob_len, SHIM_PROVISION_MAX_TECHS - 1, SHIM_ENOSPC,
		       SHIM_PROV_R_TOO_MANY);
	/* A blob written by a build with a larger table: one more field. */
	assert_int_equal(shim_provision_encode(&p, t, SHIM_PROVISION_MAX_TECHS,
					       blob, sizeof(blob), &blob_len,
					       &why), 0);
	{
		uint8_t v[32];

		v[0] = 5;
		memcpy(v + 1, "extra", 5);
		v[6] = 10;
		memset(v + 7, 1, 10);
		append_field(SHIM_PROV_T_TECHNICIAN, v, 17);
	}
	expect_refused(blob_len, SHIM_PROVISION_MAX_TECHS, SHIM_ENOSPC,
		       SHIM_PROV_R_TOO_MANY);
}

/* Appends "id" with a secret of n bytes, then decodes. */
static int decode_with_tech(const uint8_t *id, size_t id_len, size_t n)
{
	uint8_t v[2 + 255 + 255];

	encode_sample();
	remove_field(SHIM_PROV_T_TECHNICIAN);
	remove_field(SHIM_PROV_T_TECHNICIAN);
	v[0] = (uint8_t)id_len;
	memcpy(v + 1, id, id_len);
	v[1 + id_len] = (uint8_t)n;
	memset(v + 2 + id_len, 0x33, n);
	append_field(SHIM_PROV_T_TECHNICIAN, v, 2 + id_len + n);
	memset(techs, 0xAA, sizeof(techs));
	return shim_provision_decode(blob, blob_len, &prov, techs, 2);
}

static void test_secret_limits(void **state)
{
	struct shim_provision p;
	struct shim_technician t[2];
	enum shim_prov_reason why;
	size_t len;

	(void)state;
	assert_int_equal(decode_with_tech((const uint8_t *)"t", 1, 10), 0);
	assert_int_equal(techs[0].secret_len, 10);
	assert_int_equal(decode_with_tech((const uint8_t *)"t", 1, 64), 0);
	assert_int_equal(techs[0].secret_len, 64);
	assert_int_equal(decode_with_tech((const uint8_t *)"t", 1, 9),
			 SHIM_ERANGE);
	assert_int_equal(prov.reason, SHIM_PROV_R_SECRET_LEN);
	assert_int_equal(decode_with_tech((const uint8_t *)"t", 1, 65),
			 SHIM_ERANGE);
	assert_int_equal(prov.reason, SHIM_PROV_R_SECRET_LEN);
	assert_true(all_zero(techs, 2 * sizeof(techs[0])));
	assert_int_equal(decode_with_tech((const uint8_t *)"t", 1, 255),
			 SHIM_ERANGE);
	assert_int_equal(decode_with_tech((const uint8_t *)"t", 1, 0),
			 SHIM_ERANGE);

	sample(&p, t);
	t[1].secret_len = 9;
	assert_int_equal(shim_provision_encode(&p, t, 2, blob, sizeof(blob),
					       &len, &why), SHIM_ERANGE);
	assert_int_equal(why, SHIM_PROV_R_SECRET_LEN);
	t[1].secret_len = 65;
	assert_int_equal(shim_provision_encode(&p, t, 2, blob, sizeof(blob),
					       &len, &why), SHIM_ERANGE);
}

static void test_id_limits(void **state)
{
	static const char *const bad[] = {
		"a b", "a\tb", "\x7f", "\x80", "caf\xc3\xa9", "a\nb",
	};
	struct shim_provision p;
	struct shim_technician t[2];
	uint8_t id[255];
	enum shim_prov_reason why;
	size_t i, len;

	(void)state;
	memset(id, 'i', sizeof(id));
	assert_int_equal(decode_with_tech(id, SHIM_TECH_ID_MAX, 16), 0);
	assert_int_equal(strlen(techs[0].id), SHIM_TECH_ID_MAX);
	assert_int_equal(decode_with_tech(id, SHIM_TECH_ID_MAX + 1, 16),
			 SHIM_EINVAL);
	assert_int_equal(prov.reason, SHIM_PROV_R_TECH_ID);
	assert_int_equal(decode_with_tech(id, 255, 16), SHIM_EINVAL);
	assert_int_equal(decode_with_tech(id, 0, 16), SHIM_EINVAL);
	assert_int_equal(prov.reason, SHIM_PROV_R_TECH_ID);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(decode_with_tech((const uint8_t *)bad[i],
						  strlen(bad[i]), 16),
				 SHIM_EINVAL);
		assert_int_equal(prov.reason, SHIM_PROV_R_TECH_ID);
	}
	/* An embedded NUL would make the C string another, shorter ID. */
	assert_int_equal(decode_with_tech((const uint8_t *)"bob\0x", 5, 16),
			 SHIM_EINVAL);
	assert_int_equal(prov.reason, SHIM_PROV_R_TECH_ID);

	sample(&p, t);
	strcpy(t[0].id, "a b");
	assert_int_equal(shim_provision_encode(&p, t, 2, blob, sizeof(blob),
					       &len, &why), SHIM_EINVAL);
	assert_int_equal(why, SHIM_PROV_R_TECH_ID);
	t[0].id[0] = '\0';
	assert_int_equal(shim_provision_encode(&p, t, 2, blob, sizeof(blob),
					       &len, &why), SHIM_EINVAL);
	/* A table entry that is not NUL-terminated. */
	memset(t[0].id, 'x', sizeof(t[0].id));
	assert_int_equal(shim_provision_encode(&p, t, 2, blob, sizeof(blob),
					       &len, &why), SHIM_EINVAL);
	assert_int_equal(why, SHIM_PROV_R_TECH_ID);
}

static void test_shim_id_limits(void **state)
{
	static const char *const bad[] = { "a/b", "a b", "a\"b", "a\\b", "a]b" };
	uint8_t v[SHIM_PROV_SHIM_ID_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		encode_sample();
		remove_field(SHIM_PROV_T_SHIM_ID);
		append_field(SHIM_PROV_T_SHIM_ID, bad[i], strlen(bad[i]));
		expect_refused(blob_len, 2, SHIM_EINVAL, SHIM_PROV_R_SHIM_ID);
	}
	memset(v, 'S', sizeof(v));
	encode_sample();
	remove_field(SHIM_PROV_T_SHIM_ID);
	append_field(SHIM_PROV_T_SHIM_ID, v, SHIM_PROV_SHIM_ID_MAX + 1);
	expect_refused(blob_len, 2, SHIM_EINVAL, SHIM_PROV_R_SHIM_ID);
	encode_sample();
	remove_field(SHIM_PROV_T_SHIM_ID);
	append_field(SHIM_PROV_T_SHIM_ID, v, 0);
	expect_refused(blob_len, 2, SHIM_EINVAL, SHIM_PROV_R_SHIM_ID);
}

/* ---- ranges ------------------------------------------------------------ */

/* Patches a big-endian value into a field of the sample and reseals. */
static void patch(unsigned type, size_t at, size_t width, uint32_t v)
{
	size_t off;

	encode_sample();
	off = find_field(blob, blob_len, type);
	assert_true(off != 0);
	off += 4 + at;
	if (width == 1) {
		blob[off] = (uint8_t)v;
	} else if (width == 2) {
		shim_put_u16(blob + off, (uint16_t)v);
	} else {
		shim_put_u32(blob + off, v);
	}
	reseal(blob, blob_len);
}

static void test_decoder_ranges(void **state)
{
	static const struct {
		unsigned type;
		size_t at, width;
		uint32_t bad, good;
	} r[] = {
		{ SHIM_PROV_T_GATE, 0, 1, 3, 2 },         /* md */
		{ SHIM_PROV_T_GATE, 1, 1, 5, 6 },         /* digits */
		{ SHIM_PROV_T_GATE, 1, 1, 9, 8 },
		{ SHIM_PROV_T_GATE, 2, 1, 11, 10 },       /* window */
		{ SHIM_PROV_T_GATE, 3, 1, 1, 0 },         /* reserved */
		{ SHIM_PROV_T_GATE, 4, 4, 0, 1 },         /* period */
		{ SHIM_PROV_T_GATE, 4, 4, 3601, 3600 },
		{ SHIM_PROV_T_GATE, 8, 4, 0, 1 },         /* max_failures */
		{ SHIM_PROV_T_GATE, 8, 4, 1001, 1000 },
		{ SHIM_PROV_T_GATE, 12, 4, 0, 1 },        /* lockout */
		{ SHIM_PROV_T_GATE, 12, 4, 604801, 604800 },
		{ SHIM_PROV_T_GATE, 16, 4, 0, 1 },        /* rate_failures */
		{ SHIM_PROV_T_GATE, 16, 4, SHIM_GATE_RATE_SLOTS + 1,
		  SHIM_GATE_RATE_SLOTS },
		{ SHIM_PROV_T_GATE, 20, 4, 0, 1 },        /* rate_seconds */
		{ SHIM_PROV_T_GATE, 20, 4, 86401, 86400 },
		{ SHIM_PROV_T_SESSION, 0, 4, 999, 1000 }, /* idle */
		{ SHIM_PROV_T_SESSION, 0, 4, 604800001, 604800000 },
		{ SHIM_PROV_T_SESSION, 4, 4, 999, 1000 }, /* max_duration */
		{ SHIM_PROV_T_SESSION, 4, 4, 0xffffffffu, 604800000 },
		{ SHIM_PROV_T_SESSION, 8, 4, 3600001, 3600000 }, /* grace */
		{ SHIM_PROV_T_SESSION, 12, 4, 49, 50 },   /* reset hold */
		{ SHIM_PROV_T_SESSION, 12, 4, 10001, 10000 },
		{ SHIM_PROV_T_SESSION, 16, 1, 2, 0 },     /* device_reset */
		{ SHIM_PROV_T_SESSION, 17, 1, 2, 0 },     /* on_failure */
		{ SHIM_PROV_T_SESSION, 18, 2, 1, 0 },     /* reserved */
		{ SHIM_PROV_T_HEARTBEAT, 0, 4, 999, 1000 },
		{ SHIM_PROV_T_HEARTBEAT, 0, 4, 86400001, 86400000 },
		{ SHIM_PROV_T_CLOCK, 0, 4, 4, 5 },
		{ SHIM_PROV_T_CLOCK, 0, 4, 86401, 86400 },
		{ SHIM_PROV_T_RECORD_SIZE, 0, 4, 63, 64 },
		{ SHIM_PROV_T_RECORD_SIZE, 0, 4, 65537, 65536 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		patch(r[i].type, r[i].at, r[i].width, r[i].good);
		decode_ok(2);
		patch(r[i].type, r[i].at, r[i].width, r[i].bad);
		expect_refused(blob_len, 2, SHIM_ERANGE, SHIM_PROV_R_RANGE);
		assert_int_equal(prov.error_offset,
				 find_field(blob, blob_len, r[i].type));
	}
	/* A logout of 257 bytes. */
	{
		uint8_t v[SHIM_PROV_LOGOUT_MAX + 1];

		memset(v, 'q', sizeof(v));
		encode_sample();
		remove_field(SHIM_PROV_T_LOGOUT);
		append_field(SHIM_PROV_T_LOGOUT, v, sizeof(v));
		expect_refused(blob_len, 2, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	}
	/* A compressed point is not what the recorder takes. */
	patch(SHIM_PROV_T_RECORD_KEY, 0, 1, 0x02);
	expect_refused(blob_len, 2, SHIM_EINVAL, SHIM_PROV_R_RECORD_KEY);
}

static void test_encoder_ranges(void **state)
{
	struct shim_provision p;
	struct shim_technician t[2];
	enum shim_prov_reason why;
	size_t len;

	(void)state;
#define REFUSED(stmt, rc, r)                                                \
	do {                                                                \
		sample(&p, t);                                              \
		stmt;                                                       \
		assert_int_equal(shim_provision_encode(&p, t, 2, blob,      \
						       sizeof(blob), &len,  \
						       &why), rc);          \
		assert_int_equal(why, r);                                   \
	} while (0)
	REFUSED(p.gate.digits = 9, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.gate.md = (enum shim_md)7, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.gate.period = 0, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.idle_timeout_ms = 10, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.device_reset = (enum shim_prov_device_reset)2, SHIM_ERANGE,
		SHIM_PROV_R_RANGE);
	REFUSED(p.device_logout_len = 257, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.heartbeat_period_ms = 0, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.clock_max_jump = 0, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.record_size = 1, SHIM_ERANGE, SHIM_PROV_R_RANGE);
	REFUSED(p.record_key[0] = 0x03, SHIM_EINVAL, SHIM_PROV_R_RECORD_KEY);
	REFUSED(p.shim_id[0] = '\0', SHIM_EINVAL, SHIM_PROV_R_SHIM_ID);
	REFUSED(strcpy(p.shim_id, "a/b"), SHIM_EINVAL, SHIM_PROV_R_SHIM_ID);
	REFUSED(memset(p.shim_id, 'x', sizeof(p.shim_id)), SHIM_EINVAL,
		SHIM_PROV_R_SHIM_ID);
#undef REFUSED
	sample(&p, t);
	assert_int_equal(shim_provision_encode(&p, t, 0, blob, sizeof(blob),
					       &len, &why), SHIM_ENOENT);
	assert_int_equal(why, SHIM_PROV_R_NO_TECH);
	assert_int_equal(shim_provision_encode(NULL, t, 2, blob, sizeof(blob),
					       &len, &why), SHIM_EINVAL);
	assert_int_equal(why, SHIM_PROV_R_ARGS);
}

static void test_encoder_no_space(void **state)
{
	struct shim_provision p;
	struct shim_technician t[2];
	enum shim_prov_reason why;
	uint8_t small[BUF_CAP];
	size_t need, len;

	(void)state;
	sample(&p, t);
	assert_int_equal(shim_provision_encode(&p, t, 2, NULL, 0, &need, &why),
			 SHIM_ENOSPC);
	assert_int_equal(why, SHIM_PROV_R_NOSPACE);
	assert_true(need > 100);
	memset(small, 0xAA, sizeof(small));
	assert_int_equal(shim_provision_encode(&p, t, 2, small, need - 1, &len,
					       &why), SHIM_ENOSPC);
	assert_int_equal(len, need);
	/* What was written (secrets included) is wiped. */
	assert_true(all_zero(small, need - 1));
	assert_int_equal(small[need - 1], 0xAA);
	assert_int_equal(shim_provision_encode(&p, t, 2, small, need, &len,
					       &why), 0);
	assert_int_equal(len, need);
}

/* ---- wipe and reasons -------------------------------------------------- */

static void test_wipe(void **state)
{
	(void)state;
	encode_sample();
	decode_ok(SHIM_PROVISION_MAX_TECHS);
	assert_false(all_zero(techs[1].secret, techs[1].secret_len));
	shim_provision_wipe(&prov, techs, prov.ntechs);
	assert_true(all_zero(&prov, sizeof(prov)));
	assert_true(all_zero(techs, 2 * sizeof(techs[0])));
	shim_provision_wipe(NULL, NULL, 3);
}

/* A refusal after a success leaves none of the earlier secrets. */
static void test_refusal_wipes_earlier_decode(void **state)
{
	(void)state;
	encode_sample();
	decode_ok(2);
	assert_int_equal(prov.ntechs, 2);
	blob[blob_len - 1] ^= 1;
	assert_int_equal(shim_provision_decode(blob, blob_len, &prov, techs, 2),
			 SHIM_ECORRUPT);
	assert_true(all_zero(techs, 2 * sizeof(techs[0])));
	assert_int_equal(prov.ntechs, 0);
	/* A refusal late in the blob (the second technician bad): the first,
	 * already copied, is wiped too. */
	encode_sample();
	append_field(SHIM_PROV_T_TECHNICIAN, "\x01!\x01\x01", 4);
	expect_refused(blob_len, 3, SHIM_ERANGE, SHIM_PROV_R_SECRET_LEN);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	encode_sample();
	assert_int_equal(shim_provision_decode(blob, blob_len, NULL, techs, 2),
			 SHIM_EINVAL);
	assert_int_equal(shim_provision_decode(NULL, blob_len, &prov, techs, 2),
			 SHIM_EINVAL);
	assert_int_equal(prov.reason, SHIM_PROV_R_ARGS);
	/* No table: any technician is one too many. */
	assert_int_equal(shim_provision_decode(blob, blob_len, &prov, NULL, 5),
			 SHIM_ENOSPC);
}

static void test_reason_strings(void **state)
{
	int r;

	(void)state;
	for (r = 0; r < SHIM_PROV_R__COUNT; r++) {
		const char *s = shim_provision_reason_str((enum shim_prov_reason)r);

		assert_non_null(s);
		assert_string_not_equal(s, "unknown reason");
		assert_int_not_equal(shim_provision_reason_err(
					     (enum shim_prov_reason)r),
				     SHIM_EINTERNAL);
	}
	assert_string_equal(shim_provision_reason_str(SHIM_PROV_R_CRC),
			    "bad CRC");
	assert_string_equal(shim_provision_reason_str(SHIM_PROV_R__COUNT),
			    "unknown reason");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_round_trip_defaults),
		cmocka_unit_test(test_clock_field_optional),
		cmocka_unit_test(test_largest_blob),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_bad_crc),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_version_and_flags),
		cmocka_unit_test(test_total_len_impossible),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_field_overrun),
		cmocka_unit_test(test_field_wrong_length),
		cmocka_unit_test(test_duplicate_field),
		cmocka_unit_test(test_missing_field),
		cmocka_unit_test(test_duplicate_technician),
		cmocka_unit_test(test_too_many_technicians),
		cmocka_unit_test(test_secret_limits),
		cmocka_unit_test(test_id_limits),
		cmocka_unit_test(test_shim_id_limits),
		cmocka_unit_test(test_decoder_ranges),
		cmocka_unit_test(test_encoder_ranges),
		cmocka_unit_test(test_encoder_no_space),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_refusal_wipes_earlier_decode),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_reason_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
