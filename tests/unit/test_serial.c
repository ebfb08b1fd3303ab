/*
 * Serial endpoints: the PARMRK decoding that tells BREAK from data, and
 * pty endpoints (link, peer open, hang-up, renewal at the same path).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "err.h"
#include "serial.h"

static void test_unmark_plain_and_escaped(void **state)
{
	struct shim_serial s;
	uint8_t buf[] = { 'a', 0xff, 0xff, 'b', 0xff, 0x00, 'c', 'd' };
	int brk = 0;
	size_t n;

	(void)state;
	memset(&s, 0, sizeof(s));
	n = shim_serial_unmark(&s, buf, sizeof(buf), &brk);
	/* \377\377 -> \377; \377\0 c -> c (parity error byte) */
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "a\xff" "bcd", 5);
	assert_int_equal(brk, 0);
}

static void test_unmark_break(void **state)
{
	struct shim_serial s;
	uint8_t buf[] = { 'x', 0xff, 0x00, 0x00, 'y' };
	int brk = 0;
	size_t n;

	(void)state;
	memset(&s, 0, sizeof(s));
	n = shim_serial_unmark(&s, buf, sizeof(buf), &brk);
	assert_int_equal(brk, 1);
	assert_int_equal(n, 2);
	assert_memory_equal(buf, "xy", 2);
}

static void test_unmark_split_across_reads(void **state)
{
	struct shim_serial s;
	uint8_t a[] = { 'x', 0xff };
	uint8_t b[] = { 0x00 };
	uint8_t c[] = { 0x00, 0xff };
	uint8_t d[] = { 0xff, 'z' };
	int brk = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(shim_serial_unmark(&s, a, sizeof(a), &brk), 1);
	assert_int_equal(brk, 0);
	assert_int_equal(shim_serial_unmark(&s, b, sizeof(b), &brk), 0);
	assert_int_equal(brk, 0);
	assert_int_equal(shim_serial_unmark(&s, c, sizeof(c), &brk), 0);
	assert_int_equal(brk, 1);
	brk = 0;
	assert_int_equal(shim_serial_unmark(&s, d, sizeof(d), &brk), 2);
	assert_memory_equal(d, "\xffz", 2);
	assert_int_equal(brk, 0);
}

static void test_pty_spec(void **state)
{
	const char *p;

	(void)state;
	assert_int_equal(shim_serial_is_pty_spec("pty:/tmp/x", &p), 1);
	assert_string_equal(p, "/tmp/x");
	assert_int_equal(shim_serial_is_pty_spec("/dev/ttyUSB0", &p), 0);
	assert_string_equal(p, "/dev/ttyUSB0");
}

static void test_pty_link_open_hangup_renew(void **state)
{
	char dir[] = "/tmp/shim-serial-XXXXXX";
	char link[128], spec[140], target[64];
	struct shim_serial s;
	struct shim_serial_cfg cfg = { 9600, 8, 1, SHIM_PARITY_NONE,
				       SHIM_FLOW_NONE, SHIM_PRESENCE_NONE };
	uint8_t buf[16];
	int fd, brk, n;
	ssize_t tl;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/tech", dir);
	snprintf(spec, sizeof(spec), "pty:%s", link);
	assert_int_equal(shim_serial_open(&s, spec, &cfg), 0);
	assert_true(s.is_pty);
	tl = readlink(link, target, sizeof(target) - 1);
	assert_true(tl > 0);
	target[tl] = '\0';
	assert_string_equal(target, s.pty_name);
	/* nothing to read before a peer comes */
	assert_int_equal(shim_serial_read(&s, buf, sizeof(buf), &brk), 0);
	assert_int_equal(shim_serial_pty_check_open(&s), 0);

	fd = open(link, O_RDWR | O_NOCTTY);
	assert_true(fd >= 0);
	assert_int_equal(shim_serial_pty_check_open(&s), 1);
	/* raw both ways: no echo, no CR/LF translation */
	assert_int_equal(write(fd, "a\r\n\xff", 4), 4);
	usleep(20000);
	n = shim_serial_read(&s, buf, sizeof(buf), &brk);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "a\r\n\xff", 4);
	assert_int_equal(shim_serial_write(&s, (const uint8_t *)"b\n", 2), 2);
	usleep(20000);
	assert_int_equal(read(fd, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "b\n", 2);
	/* the peer leaves: hang-up */
	close(fd);
	assert_int_equal(shim_serial_read(&s, buf, sizeof(buf), &brk),
			 SHIM_EDISCONN);
	/* a fresh pty at the same path */
	assert_int_equal(shim_serial_pty_renew(&s), 0);
	tl = readlink(link, target, sizeof(target) - 1);
	assert_true(tl > 0);
	target[tl] = '\0';
	assert_string_equal(target, s.pty_name);
	assert_int_equal(shim_serial_read(&s, buf, sizeof(buf), &brk), 0);
	fd = open(link, O_RDWR | O_NOCTTY);
	assert_true(fd >= 0);
	assert_int_equal(shim_serial_pty_check_open(&s), 1);
	close(fd);
	shim_serial_close(&s);
	/* the link goes with it */
	assert_int_equal(access(link, F_OK), -1);
	rmdir(dir);
}

static void test_pty_refuses_to_replace_a_file(void **state)
{
	char dir[] = "/tmp/shim-serial-XXXXXX";
	char path[128], spec[140];
	struct shim_serial s;
	struct shim_serial_cfg cfg = { 9600, 8, 1, SHIM_PARITY_NONE,
				       SHIM_FLOW_NONE, SHIM_PRESENCE_NONE };
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/precious", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(spec, sizeof(spec), "pty:%s", path);
	assert_int_equal(shim_serial_open(&s, spec, &cfg), SHIM_EEXIST);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	rmdir(dir);
}

static void test_missing_device(void **state)
{
	struct shim_serial s;
	struct shim_serial_cfg cfg = { 9600, 8, 1, SHIM_PARITY_NONE,
				       SHIM_FLOW_NONE, SHIM_PRESENCE_NONE };

	(void)state;
	assert_int_equal(shim_serial_open(&s, "/dev/serial/by-id/none", &cfg),
			 SHIM_ENOENT);
	cfg.baud = 12345;
	assert_int_equal(shim_serial_open(&s, "pty:/tmp/shim-nobaud", &cfg),
			 SHIM_ENOTSUP);
	assert_int_equal(access("/tmp/shim-nobaud", F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unmark_plain_and_escaped),
		cmocka_unit_test(test_unmark_break),
		cmocka_unit_test(test_unmark_split_across_reads),
		cmocka_unit_test(test_pty_spec),
		cmocka_unit_test(test_pty_link_open_hangup_renew),
		cmocka_unit_test(test_pty_refuses_to_replace_a_file),
		cmocka_unit_test(test_missing_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
