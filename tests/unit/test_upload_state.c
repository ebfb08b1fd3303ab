/*
 * The custody upload-state file (common/upload_state.c): round trip,
 * every kind of damage (each reads as "nothing delivered", with the line
 * at fault), bounds, and the atomic save and load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "upload_state.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MAGIC "shim-custody-state 1\n"
#define E1 "delivered 20261202T194719Z-25b45a 10972 " H64 " 1764704839\n"
#define E2 "delivered 20261202T194720Z-00aa11 1 " H64 " 0\n"

static int parse(const char *text, struct shim_upload_state *st, size_t *bad)
{
	memset(st, 0, sizeof(*st));
	return shim_upload_state_parse(st, text, strlen(text), bad);
}

static void test_round_trip(void **state)
{
	struct shim_upload_state st, back;
	const struct shim_upload_entry *e;
	char *out;
	size_t len, bad;

	(void)state;
	assert_int_equal(parse(MAGIC E1 E2 "end 2\n", &st, &bad), 0);
	assert_int_equal(st.n, 2);
	e = shim_upload_state_find(&st, "20261202T194719Z-25b45a");
	assert_non_null(e);
	assert_int_equal(e->size, 10972);
	assert_string_equal(e->sha256, H64);
	assert_int_equal(e->delivered_s, 1764704839);
	assert_null(shim_upload_state_find(&st, "20261202T194719Z-25b45"));
	assert_int_equal(shim_upload_state_format(&st, &out, &len), 0);
	assert_int_equal(len, strlen(MAGIC E1 E2 "end 2\n"));
	assert_memory_equal(out, MAGIC E1 E2 "end 2\n", len);
	memset(&back, 0, sizeof(back));
	assert_int_equal(shim_upload_state_parse(&back, out, len, &bad), 0);
	assert_int_equal(back.n, 2);
	free(out);
	shim_upload_state_free(&st);
	shim_upload_state_free(&back);
}

static void test_empty_state(void **state)
{
	struct shim_upload_state st;
	size_t bad;

	(void)state;
	assert_int_equal(parse(MAGIC "end 0\n", &st, &bad), 0);
	assert_int_equal(st.n, 0);
	shim_upload_state_free(&st);
}

/* Each damaged file is refused, names its line, and leaves nothing. */
static void test_damage(void **state)
{
	static const struct {
		const char *text;
		int rc;
		size_t line;
	} cases[] = {
		{ "", SHIM_ETRUNC, 1 },
		{ MAGIC, SHIM_ETRUNC, 2 },                        /* no end */
		{ MAGIC E1, SHIM_ETRUNC, 3 },                     /* torn */
		{ MAGIC E1 "end 1", SHIM_ETRUNC, 3 },             /* no LF */
		{ MAGIC E1 "end 2\n", SHIM_ECORRUPT, 3 },         /* count */
		{ MAGIC E1 "end 1\nx\n", SHIM_ECORRUPT, 3 },      /* after end */
		{ "shim-custody-state 2\nend 0\n", SHIM_ECORRUPT, 1 },
		{ MAGIC E1 E1 "end 2\n", SHIM_ECORRUPT, 3 },      /* duplicate */
		{ MAGIC "delivered ../x 1 " H64 " 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered .x 1 " H64 " 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered a 01 " H64 " 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered a -1 " H64 " 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered a 18446744073709551616 " H64 " 0\nend 1\n",
		  SHIM_ECORRUPT, 2 },                             /* u64 + 1 */
		{ MAGIC "delivered a 1 " H64 " 9223372036854775808\nend 1\n",
		  SHIM_ECORRUPT, 2 },                             /* i64 + 1 */
		{ MAGIC "delivered a 1 " H64 "0 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered a 1 ABCDEF" H64 " 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered a 1 " H64 " 0 \nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered a  1 " H64 " 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "delivered a 1 " H64 "\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "pending a 1 " H64 " 0\nend 1\n", SHIM_ECORRUPT, 2 },
		{ MAGIC "end x\n", SHIM_ECORRUPT, 2 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shim_upload_state st;
		size_t bad = 99;
		int rc = parse(cases[i].text, &st, &bad);

		if (rc != cases[i].rc || bad != cases[i].line) {
			fail_msg("case %zu: rc %d line %zu, want %d line %zu", i,
				 rc, bad, cases[i].rc, cases[i].line);
		}
		assert_int_equal(st.n, 0);
		assert_null(st.e);
	}
}

static void test_embedded_nul_and_long_line(void **state)
{
	struct shim_upload_state st;
	char buf[600];
	size_t bad, n;

	(void)state;
	n = (size_t)snprintf(buf, sizeof(buf), MAGIC "delivered a 1 " H64 " 0\nend 1\n");
	buf[strlen(MAGIC) + 10] = '\0';
	memset(&st, 0, sizeof(st));
	assert_int_equal(shim_upload_state_parse(&st, buf, n, &bad), SHIM_ECORRUPT);
	assert_int_equal(bad, 2);
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, MAGIC, strlen(MAGIC));
	buf[sizeof(buf) - 1] = '\n';
	assert_int_equal(shim_upload_state_parse(&st, buf, sizeof(buf), &bad),
			 SHIM_ECORRUPT);
	assert_int_equal(st.n, 0);
}

static void test_id_rules(void **state)
{
	char longid[SHIM_SESSION_ID_MAX + 1];

	(void)state;
	assert_true(shim_upload_id_ok("20261202T194719Z-25b45a", 23));
	assert_false(shim_upload_id_ok("", 0));
	assert_false(shim_upload_id_ok(".hidden", 7));
	assert_false(shim_upload_id_ok("a/b", 3));
	assert_false(shim_upload_id_ok("a b", 3));
	memset(longid, 'a', sizeof(longid));
	assert_true(shim_upload_id_ok(longid, SHIM_SESSION_ID_MAX - 1));
	assert_false(shim_upload_id_ok(longid, SHIM_SESSION_ID_MAX));
}

static void test_put_remove(void **state)
{
	struct shim_upload_state st;
	struct shim_upload_entry e;

	(void)state;
	memset(&st, 0, sizeof(st));
	memset(&e, 0, sizeof(e));
	snprintf(e.session_id, sizeof(e.session_id), "a");
	memcpy(e.sha256, H64, 65);
	assert_int_equal(shim_upload_state_put(&st, &e), 0);
	e.size = 7;
	assert_int_equal(shim_upload_state_put(&st, &e), 0); /* replaces */
	assert_int_equal(st.n, 1);
	assert_int_equal(shim_upload_state_find(&st, "a")->size, 7);
	snprintf(e.session_id, sizeof(e.session_id), "../a");
	assert_int_equal(shim_upload_state_put(&st, &e), SHIM_EINVAL);
	snprintf(e.session_id, sizeof(e.session_id), "b");
	e.sha256[3] = 'X';
	assert_int_equal(shim_upload_state_put(&st, &e), SHIM_EINVAL);
	shim_upload_state_remove(&st, "a");
	shim_upload_state_remove(&st, "a");
	assert_int_equal(st.n, 0);
	shim_upload_state_free(&st);
}

static void test_save_load(void **state)
{
	char dir[] = "/tmp/test_upload_state.XXXXXX";
	char path[300], link[300];
	struct shim_upload_state st, back;
	struct shim_upload_entry e;
	struct stat sb;
	size_t bad;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/custody.state", dir);
	memset(&back, 0, sizeof(back));
	/* missing: empty, not an error */
	assert_int_equal(shim_upload_state_load(&back, path, &bad), 0);
	assert_int_equal(back.n, 0);
	memset(&st, 0, sizeof(st));
	memset(&e, 0, sizeof(e));
	snprintf(e.session_id, sizeof(e.session_id), "20261202T194719Z-25b45a");
	memcpy(e.sha256, H64, 65);
	e.size = 42;
	e.delivered_s = 1764704839;
	assert_int_equal(shim_upload_state_put(&st, &e), 0);
	assert_int_equal(shim_upload_state_save(&st, path), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(shim_upload_state_load(&back, path, &bad), 0);
	assert_int_equal(back.n, 1);
	assert_int_equal(shim_upload_state_find(&back, e.session_id)->size, 42);
	shim_upload_state_free(&back);
	/* a torn file reads as nothing delivered */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(MAGIC E1, f);
	fclose(f);
	assert_int_equal(shim_upload_state_load(&back, path, &bad), SHIM_ETRUNC);
	assert_int_equal(back.n, 0);
	/* never read through a symbolic link */
	snprintf(link, sizeof(link), "%s/link.state", dir);
	assert_int_equal(shim_upload_state_save(&st, path), 0);
	assert_int_equal(symlink(path, link), 0);
	assert_int_not_equal(shim_upload_state_load(&back, link, &bad), 0);
	assert_int_equal(back.n, 0);
	unlink(link);
	unlink(path);
	rmdir(dir);
	shim_upload_state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty_state),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_embedded_nul_and_long_line),
		cmocka_unit_test(test_id_rules),
		cmocka_unit_test(test_put_remove),
		cmocka_unit_test(test_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
