/*
 * Two-slot state files (port/linux/slots.h) and the Linux store over
 * them: saves alternate between the slots with a growing sequence; a torn
 * or corrupt newest slot gives the previous copy, never a mix; no valid
 * slot is an error; a blob that outgrows the slots rebuilds the file; the
 * single file of earlier versions is read once and replaced; a link
 * planted at the name is never written through.
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

#include "port_linux.h"
#include "slots.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/slots-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/gate-state.slots", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint8_t *image(size_t *len)
{
	uint8_t *buf = NULL;

	assert_int_equal(shim_read_file(path, 1 << 20, &buf, len), 0);
	return buf;
}

static void test_saves_alternate_and_load_the_newest(void **state)
{
	struct shim_slot_info info[2];
	uint8_t out[64];
	size_t len = 0, n;
	uint8_t *img;
	struct stat st;

	(void)state;
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len),
			 SHIM_ENOENT);
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"one", 3), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 2 * SHIM_SLOT_ALIGN);
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"two!", 4), 0);
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"three", 5), 0);
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(out, "three", 5);
	img = image(&n);
	assert_int_equal(shim_slots_examine(img, n, info), 0);
	assert_int_equal(info[0].seq, 3);
	assert_int_equal(info[1].seq, 2);
	free(img);
	/* too small a buffer says how much is needed */
	assert_int_equal(shim_slots_load(path, out, 2, &len), SHIM_ENOSPC);
	assert_int_equal(len, 5);
}

static void flip(size_t off)
{
	FILE *f = fopen(path, "r+b");
	int c;

	assert_non_null(f);
	fseek(f, (long)off, SEEK_SET);
	c = fgetc(f);
	fseek(f, (long)off, SEEK_SET);
	fputc(c ^ 1, f);
	fclose(f);
}

static void test_torn_newest_slot_gives_the_previous_copy(void **state)
{
	uint8_t out[64];
	size_t len = 0;

	(void)state;
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"old", 3), 0);
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"new", 3), 0);
	/* the newest copy is in slot 1: a torn payload byte */
	flip(SHIM_SLOT_ALIGN + SHIM_SLOT_HDR + 1);
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len), 0);
	assert_memory_equal(out, "old", 3);
	/* the next save goes to the torn slot, not over the good one */
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"next", 4), 0);
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "next", 4);
	/* both slots bad: an error, never a guess */
	flip(SHIM_SLOT_HDR);
	flip(SHIM_SLOT_ALIGN + 9);
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len),
			 SHIM_ECORRUPT);
	/* a save after that starts a new file (the caller reset the state) */
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"reset", 5), 0);
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len), 0);
	assert_memory_equal(out, "reset", 5);
}

static void test_growing_blob_rebuilds_the_file(void **state)
{
	static uint8_t big[10000], out[10000];
	size_t len = 0, i;
	struct stat st;

	(void)state;
	for (i = 0; i < sizeof(big); i++) {
		big[i] = (uint8_t)(i * 7);
	}
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"small", 5), 0);
	assert_int_equal(shim_slots_save(path, big, sizeof(big)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 * 12288);
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(out, big, sizeof(big));
	assert_int_equal(shim_slots_save(path, (const uint8_t *)"small", 5), 0);
	assert_int_equal(shim_slots_load(path, out, sizeof(out), &len), 0);
	assert_int_equal(len, 5);
}

static void test_not_two_aligned_slots_is_corrupt(void **state)
{
	uint8_t img[2 * SHIM_SLOT_ALIGN];

	(void)state;
	memset(img, 0, sizeof(img));
	assert_int_equal(shim_slots_examine(img, sizeof(img), NULL),
			 SHIM_ECORRUPT);
	assert_int_equal(shim_slots_examine(img, 100, NULL), SHIM_ECORRUPT);
	assert_int_equal(shim_slots_examine(NULL, 0, NULL), SHIM_ECORRUPT);
}

static void test_store_reads_the_old_file_once_then_replaces_it(void **state)
{
	struct shim_linux_port lp;
	char legacy[160], target[160];
	uint8_t out[64], *kept = NULL;
	size_t len = 0;

	(void)state;
	snprintf(legacy, sizeof(legacy), "%s/gate-state", dir);
	assert_int_equal(shim_write_file_atomic(legacy, (const uint8_t *)"v1",
						2, 0600), 0);
	assert_int_equal(shim_linux_port_init(&lp, dir), 0);
	assert_int_equal(lp.port.store.load(lp.port.store.ctx, "gate-state",
					    out, sizeof(out), &len), 0);
	assert_memory_equal(out, "v1", 2);
	assert_int_equal(lp.port.store.save(lp.port.store.ctx, "gate-state",
					    (const uint8_t *)"v2", 2), 0);
	assert_int_equal(access(legacy, F_OK), -1);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(lp.port.store.load(lp.port.store.ctx, "gate-state",
					    out, sizeof(out), &len), 0);
	assert_memory_equal(out, "v2", 2);
	/* a link planted at the name is replaced, its target untouched */
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	assert_int_equal(shim_write_file_atomic(target, (const uint8_t *)"keep",
						4, 0600), 0);
	unlink(path);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(lp.port.store.load(lp.port.store.ctx, "gate-state",
					    out, sizeof(out), &len),
			 SHIM_EACCES);
	assert_int_equal(lp.port.store.save(lp.port.store.ctx, "gate-state",
					    (const uint8_t *)"v3", 2), 0);
	assert_int_equal(shim_read_file(target, 64, &kept, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(kept, "keep", 4);
	free(kept);
	/* other blobs keep their single file */
	assert_int_equal(lp.port.store.save(lp.port.store.ctx, "tamper",
					    (const uint8_t *)"t", 1), 0);
	snprintf(legacy, sizeof(legacy), "%s/tamper", dir);
	assert_int_equal(access(legacy, F_OK), 0);
	shim_linux_port_fini(&lp);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_saves_alternate_and_load_the_newest),
		T(test_torn_newest_slot_gives_the_previous_copy),
		T(test_growing_blob_rebuilds_the_file),
		T(test_not_two_aligned_slots_is_corrupt),
		T(test_store_reads_the_old_file_once_then_replaces_it),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
