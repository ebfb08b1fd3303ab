#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base32.h"
#include "err.h"
#include "port_linux.h"

static void decode_str(const char *in, const char *want, int want_rc)
{
	uint8_t out[64];
	size_t n = 0;
	int rc = shim_base32_decode(in, strlen(in), out, sizeof(out), &n);

	assert_int_equal(rc, want_rc);
	if (want_rc == 0) {
		assert_int_equal(n, strlen(want));
		assert_memory_equal(out, want, n);
	}
}

/* RFC 4648 section 10 test vectors. */
static void test_rfc4648_vectors(void **state)
{
	(void)state;
	decode_str("", "", 0);
	decode_str("MY======", "f", 0);
	decode_str("MZXQ====", "fo", 0);
	decode_str("MZXW6===", "foo", 0);
	decode_str("MZXW6YQ=", "foob", 0);
	decode_str("MZXW6YTB", "fooba", 0);
	decode_str("MZXW6YTBOI======", "foobar", 0);
}

static void test_case_spaces_padding(void **state)
{
	(void)state;
	decode_str("mzxw6ytboi", "foobar", 0);
	decode_str("MZXW 6YTB OI", "foobar", 0);
	decode_str("mZxW6yTbOi======", "foobar", 0);
}

static void test_rejects_bad_characters(void **state)
{
	(void)state;
	decode_str("MZXW6YTB0I", "", SHIM_EINVAL);  /* '0' */
	decode_str("MZXW6YTB1I", "", SHIM_EINVAL);  /* '1' */
	decode_str("MZXW6YTB8I", "", SHIM_EINVAL);  /* '8' */
	decode_str("MZXW-6YTB", "", SHIM_EINVAL);
	decode_str("MZXW\t6YTB", "", SHIM_EINVAL);
	decode_str("MZ=XW6YTB", "", SHIM_EINVAL);   /* data after padding */
	decode_str("MZXW6YTB\xc3\xa9", "", SHIM_EINVAL);
}

static void test_rejects_impossible_lengths(void **state)
{
	(void)state;
	decode_str("M", "", SHIM_EINVAL);
	decode_str("MZX", "", SHIM_EINVAL);
	decode_str("MZXW6Y", "", SHIM_EINVAL);
	/* Non-zero leftover bits: not a canonical encoding. */
	decode_str("MZ", "", SHIM_EINVAL);
}

static void test_buffer_too_small(void **state)
{
	uint8_t out[3];
	size_t n = 0;

	(void)state;
	assert_int_equal(shim_base32_decode("MZXW6YTBOI", 10, out, sizeof(out), &n),
			 SHIM_ENOSPC);
	assert_int_equal(n, 6);
}

static void test_round_trip_random(void **state)
{
	uint8_t in[64], out[64];
	char text[128];
	size_t len, n;
	int i;

	(void)state;
	for (i = 0; i < 500; i++) {
		assert_int_equal(shim_linux_random(in, sizeof(in)), 0);
		len = (size_t)(in[0] % 64) + 1;
		assert_int_equal(shim_base32_encode(in, len, text, sizeof(text)), 0);
		assert_int_equal(strlen(text), shim_base32_encoded_len(len));
		assert_int_equal(shim_base32_decode(text, strlen(text), out,
						    sizeof(out), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(in, out, len);
	}
}

static void test_encode_exact_capacity(void **state)
{
	char text[17];

	(void)state;
	assert_int_equal(shim_base32_encode((const uint8_t *)"0123456789", 10,
					    text, 16), SHIM_ENOSPC);
	assert_int_equal(shim_base32_encode((const uint8_t *)"0123456789", 10,
					    text, 17), 0);
	assert_string_equal(text, "GAYTEMZUGU3DOOBZ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_case_spaces_padding),
		cmocka_unit_test(test_rejects_bad_characters),
		cmocka_unit_test(test_rejects_impossible_lengths),
		cmocka_unit_test(test_buffer_too_small),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_encode_exact_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
