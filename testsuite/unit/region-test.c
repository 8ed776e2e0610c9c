/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * region-test.c - images of memory regions (smig_region.h): layout, block
 * tracking of the pre-copy, the image at the safe point when the memory
 * changed during the copy, restore into the regions, damage and mismatch
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "smig_image.h"
#include "smig_region.h"

#define MIB (1024 * 1024)

static char *tmpdir;
static char errbuf[512];

static void setup(void)
{
	tmpdir = g_dir_make_tmp("region-test-XXXXXX", NULL);
	ck_assert_ptr_nonnull(tmpdir);
	errbuf[0] = '\0';
}

static void teardown(void)
{
	const char *name;
	GDir *d = g_dir_open(tmpdir, 0, NULL);

	while (d && (name = g_dir_read_name(d))) {
		char *p = g_build_filename(tmpdir, name, NULL);

		g_remove(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(tmpdir);
	g_clear_pointer(&tmpdir, g_free);
}

static smig_image_hdr_t make_hdr(uint64_t gen)
{
	smig_image_hdr_t h = {
		.job_id = 42, .step_id = 0, .rank = 1, .nranks = 2,
		.generation = gen, .safepoint = 77, .tag = "heat",
	};

	return h;
}

/* fill - deterministic bytes, different per seed */
static void fill(void *p, size_t len, unsigned seed)
{
	unsigned char *b = p;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char) x;
	}
}

/* count_tmp - temporary image files left in tmpdir */
static int count_tmp(void)
{
	GDir *d = g_dir_open(tmpdir, 0, NULL);
	const char *name;
	int n = 0;

	while ((name = g_dir_read_name(d)))
		if (strstr(name, ".tmp."))
			n++;
	g_dir_close(d);
	return n;
}

/*
 * restore_into - read the committed image of gen into fresh regions of the
 * same names and lengths as regs (or of lens, when given); RET its code
 */
static int restore_into(uint64_t gen, const smig_region_t *regs, size_t n,
			void **copies, void **app, uint64_t *app_len)
{
	smig_region_t r[8];
	smig_image_hdr_t h;
	char path[4096];
	int fd, rc;

	ck_assert_int_eq(smig_image_path(path, sizeof(path), tmpdir, 1, gen),
			 0);
	fd = smig_image_open(path, &h, errbuf, sizeof(errbuf));
	ck_assert_msg(fd >= 0, "open: %s", errbuf);
	for (size_t i = 0; i < n; i++) {
		r[i] = regs[i];
		copies[i] = calloc(1, regs[i].len ? regs[i].len : 1);
		r[i].ptr = copies[i];
	}
	rc = smig_region_restore_fd(fd, &h, path, r, n, app, app_len, errbuf,
				    sizeof(errbuf));
	close(fd);
	return rc;
}

static void region(smig_region_t *r, const char *name, void *ptr,
		   uint64_t len)
{
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->ptr = ptr;
	r->len = len;
}

START_TEST(test_layout)
{
	uint64_t len[3] = { 5000, 0, 3 * MIB + 1 }, off[3], app_off;

	ck_assert_int_eq(smig_region_layout(len, 3, off, &app_off), 0);
	/* Every region starts at a page of the file. */
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq((SMIG_IMAGE_HEADER_SIZE + off[i]) % 4096, 0);
	ck_assert_uint_ge(off[0], SMIG_REGION_DIR_SIZE + 3 * 64);
	ck_assert_uint_ge(off[1], off[0] + 5000);
	ck_assert_uint_ge(off[2], off[1]);
	ck_assert_uint_eq(app_off, off[2] + 3 * MIB + 1);
	ck_assert(smig_region_name_ok("grid.u-2"));
	ck_assert(!smig_region_name_ok(""));
	ck_assert(!smig_region_name_ok("a b"));
	ck_assert(!smig_region_name_ok("0123456789012345678901234567890123"));
}
END_TEST

/* Round trip: no pre-copy round (the capture at the safe point only). */
START_TEST(test_roundtrip_no_rounds)
{
	size_t la = 3 * MIB + 100, lb = 5000;
	char *a = malloc(la), *b = malloc(lb);
	smig_region_t regs[2];
	smig_image_hdr_t h = make_hdr(3), out;
	smig_precopy_stats_t st;
	smig_precopy_t *pc;
	void *copies[2], *app;
	uint64_t app_len;
	char path[4096];

	fill(a, la, 1);
	fill(b, lb, 2);
	region(&regs[0], "grid", a, la);
	region(&regs[1], "params", b, lb);
	pc = smig_precopy_new(tmpdir, &h, regs, 2, 0, errbuf, sizeof(errbuf));
	ck_assert_msg(pc, "%s", errbuf);
	ck_assert_int_eq(smig_precopy_finish(pc, &h, "cb-bytes", 8, &st, &out,
					     path, sizeof(path), errbuf,
					     sizeof(errbuf)), 0);
	ck_assert_uint_eq(st.rounds, 0);
	ck_assert_uint_eq(st.at_stop, la + lb);
	ck_assert_int_eq(count_tmp(), 0);
	/* An image like any other: the agent's check passes. */
	ck_assert_int_eq(smig_image_verify(path, &h, errbuf, sizeof(errbuf)),
			 0);
	ck_assert_uint_eq(h.payload_len, out.payload_len);
	ck_assert_int_eq(restore_into(3, regs, 2, copies, &app, &app_len), 0);
	ck_assert_mem_eq(copies[0], a, la);
	ck_assert_mem_eq(copies[1], b, lb);
	ck_assert_uint_eq(app_len, 8);
	ck_assert_mem_eq(app, "cb-bytes", 8);
	free(app);
	free(copies[0]);
	free(copies[1]);
	free(a);
	free(b);
}
END_TEST

/*
 * Block tracking: a round copies every block once, then only the blocks
 * whose bytes changed; the safe point rewrites only what changed after the
 * last round, including a block that changed and changed back (ABA).
 */
START_TEST(test_block_tracking)
{
	size_t la = 4 * MIB + 4096;	/* 5 blocks, the last short */
	char *a = malloc(la), *saved = malloc(MIB);
	smig_region_t regs[1];
	smig_image_hdr_t h = make_hdr(4);
	smig_precopy_stats_t st;
	smig_precopy_t *pc;
	void *copies[1], *app;
	uint64_t copied, app_len;
	char path[4096];

	fill(a, la, 3);
	region(&regs[0], "state", a, la);
	pc = smig_precopy_new(tmpdir, &h, regs, 1, 0, errbuf, sizeof(errbuf));
	ck_assert_msg(pc, "%s", errbuf);
	ck_assert(smig_precopy_same(pc, regs, 1, 4));
	ck_assert(!smig_precopy_same(pc, regs, 1, 5));
	ck_assert_int_eq(smig_precopy_round(pc, 0, NULL, 0, &copied, errbuf,
					    sizeof(errbuf)), 0);
	ck_assert_uint_eq(copied, la);
	ck_assert_int_eq(smig_precopy_round(pc, 0, NULL, 0, &copied, errbuf,
					    sizeof(errbuf)), 0);
	ck_assert_uint_eq(copied, 0);
	/* One byte in block 2 and one in the short last block. */
	a[2 * MIB + 17] ^= 0x5a;
	a[la - 1] ^= 0x01;
	ck_assert_int_eq(smig_precopy_round(pc, 0, NULL, 0, &copied, errbuf,
					    sizeof(errbuf)), 0);
	ck_assert_uint_eq(copied, MIB + 4096);
	/* After the last round: block 0 changes; block 3 changes and is
	 * changed back (its copy in the file is still right). */
	a[5] ^= 0x10;
	memcpy(saved, a + 3 * MIB, MIB);
	a[3 * MIB] ^= 0x77;
	memcpy(a + 3 * MIB, saved, MIB);
	ck_assert_int_eq(smig_precopy_sync(pc), 0);
	ck_assert_int_eq(smig_precopy_finish(pc, &h, NULL, 0, &st, NULL, path,
					     sizeof(path), errbuf,
					     sizeof(errbuf)), 0);
	ck_assert_uint_eq(st.rounds, 3);
	ck_assert_uint_eq(st.copied, la + MIB + 4096);
	ck_assert_uint_eq(st.at_stop, MIB);
	ck_assert_int_eq(smig_image_verify(path, &h, errbuf, sizeof(errbuf)),
			 0);
	ck_assert_int_eq(restore_into(4, regs, 1, copies, &app, &app_len), 0);
	ck_assert_mem_eq(copies[0], a, la);
	ck_assert_ptr_null(app);
	ck_assert_uint_eq(app_len, 0);
	free(copies[0]);
	free(saved);
	free(a);
}
END_TEST

/* A writer that keeps changing the region while the rounds copy it. */
struct writer {
	unsigned char *p;
	size_t len;
	atomic_int stop;
	unsigned long writes;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint32_t x = 12345;

	while (!atomic_load(&w->stop)) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		/* A run of 64 bytes anywhere, as an iteration would. */
		size_t at = x % (w->len - 64);

		for (size_t i = 0; i < 64; i++)
			((volatile unsigned char *) w->p)[at + i] =
				(unsigned char) (x + i);
		w->writes++;
	}
	return NULL;
}

/*
 * The application writes during the pre-copy (another thread, without any
 * synchronisation, as a rank's main loop does): the committed image equals
 * the memory at the safe point (the writer stopped), byte for byte.
 */
START_TEST(test_write_during_precopy)
{
	size_t la = 8 * MIB;
	struct writer w = { .len = la };
	smig_region_t regs[1];
	smig_image_hdr_t h = make_hdr(5);
	smig_precopy_stats_t st;
	smig_precopy_t *pc;
	pthread_t t;
	void *copies[1], *app;
	uint64_t copied, app_len;
	char path[4096];

	w.p = malloc(la);
	fill(w.p, la, 9);
	region(&regs[0], "field", w.p, la);
	pc = smig_precopy_new(tmpdir, &h, regs, 1, 0, errbuf, sizeof(errbuf));
	ck_assert_msg(pc, "%s", errbuf);
	ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(smig_precopy_round(pc, 0, NULL, 0, &copied,
						    errbuf, sizeof(errbuf)),
				 0);
	/* The safe point: the application stops. */
	atomic_store(&w.stop, 1);
	pthread_join(t, NULL);
	ck_assert_uint_gt(w.writes, 0);
	ck_assert_int_eq(smig_precopy_finish(pc, &h, "x", 1, &st, NULL, path,
					     sizeof(path), errbuf,
					     sizeof(errbuf)), 0);
	ck_assert_uint_eq(st.rounds, 4);
	ck_assert_int_eq(smig_image_verify(path, &h, errbuf, sizeof(errbuf)),
			 0);
	ck_assert_int_eq(restore_into(5, regs, 1, copies, &app, &app_len), 0);
	ck_assert_mem_eq(copies[0], w.p, la);
	ck_assert_uint_eq(app_len, 1);
	free(app);
	free(copies[0]);
	free(w.p);
}
END_TEST

/* A damaged image is refused by the verify and by the restore itself. */
START_TEST(test_damaged_refused)
{
	size_t la = 2 * MIB;
	char *a = malloc(la);
	smig_region_t regs[1];
	smig_image_hdr_t h = make_hdr(6), hd;
	smig_precopy_t *pc;
	void *copies[1], *app;
	uint64_t copied, app_len;
	char path[4096];
	unsigned char c;
	int fd;

	fill(a, la, 4);
	region(&regs[0], "state", a, la);
	pc = smig_precopy_new(tmpdir, &h, regs, 1, 0, errbuf, sizeof(errbuf));
	ck_assert_msg(pc, "%s", errbuf);
	ck_assert_int_eq(smig_precopy_round(pc, 0, NULL, 0, &copied, errbuf,
					    sizeof(errbuf)), 0);
	ck_assert_int_eq(smig_precopy_finish(pc, &h, NULL, 0, NULL, &hd, path,
					     sizeof(path), errbuf,
					     sizeof(errbuf)), 0);
	/* One byte in the middle of the region data. */
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, 128 + 4096 + MIB), 1);
	c ^= 0xff;
	ck_assert_int_eq(pwrite(fd, &c, 1, 128 + 4096 + MIB), 1);
	close(fd);
	ck_assert_int_eq(smig_image_verify(path, &h, errbuf, sizeof(errbuf)),
			 SMIG_IMAGE_ESUM);
	ck_assert_int_eq(restore_into(6, regs, 1, copies, &app, &app_len),
			 SMIG_IMAGE_ESUM);
	ck_assert_msg(strstr(errbuf, "checksum mismatch"), "%s", errbuf);
	ck_assert_ptr_null(app);
	free(copies[0]);
	free(a);
}
END_TEST

/* Registered regions that do not match the image: refused, named. */
START_TEST(test_mismatch_refused)
{
	char a[10000], b[300];
	smig_region_t regs[2], other[2];
	smig_image_hdr_t h = make_hdr(7);
	smig_precopy_t *pc;
	void *copies[2], *app;
	uint64_t app_len;
	char path[4096];

	fill(a, sizeof(a), 5);
	fill(b, sizeof(b), 6);
	region(&regs[0], "u", a, sizeof(a));
	region(&regs[1], "meta", b, sizeof(b));
	pc = smig_precopy_new(tmpdir, &h, regs, 2, 0, errbuf, sizeof(errbuf));
	ck_assert_msg(pc, "%s", errbuf);
	ck_assert_int_eq(smig_precopy_finish(pc, &h, NULL, 0, NULL, NULL, path,
					     sizeof(path), errbuf,
					     sizeof(errbuf)), 0);

	/* Another size. */
	other[0] = regs[0];
	other[1] = regs[1];
	other[0].len = 8000;
	ck_assert_int_eq(restore_into(7, other, 2, copies, &app, &app_len),
			 SMIG_IMAGE_EINVAL);
	ck_assert_msg(strstr(errbuf, "region \"u\" is 10000 bytes in the image but 8000 bytes registered"),
		      "%s", errbuf);
	free(copies[0]);
	free(copies[1]);
	/* One missing from the registration. */
	ck_assert_int_eq(restore_into(7, regs, 1, copies, &app, &app_len),
			 SMIG_IMAGE_EINVAL);
	ck_assert_msg(strstr(errbuf, "region \"meta\" (300 bytes), which is not registered"),
		      "%s", errbuf);
	free(copies[0]);
	/* Registered in another order: matched by name. */
	other[0] = regs[1];
	other[1] = regs[0];
	ck_assert_int_eq(restore_into(7, other, 2, copies, &app, &app_len), 0);
	ck_assert_mem_eq(copies[0], b, sizeof(b));
	ck_assert_mem_eq(copies[1], a, sizeof(a));
	free(copies[0]);
	free(copies[1]);
	/* One registered that the image does not hold. */
	other[0] = regs[0];
	other[1] = regs[1];
	region(&other[1], "extra", b, sizeof(b));
	ck_assert_int_eq(restore_into(7, other, 2, copies, &app, &app_len),
			 SMIG_IMAGE_EINVAL);
	ck_assert_msg(strstr(errbuf, "\"meta\""), "%s", errbuf);
	free(copies[0]);
	free(copies[1]);
}
END_TEST

/* An image of bytes only (no regions) is refused as a region image. */
START_TEST(test_not_regions)
{
	char a[100], bytes[200];
	smig_region_t regs[1];
	smig_image_hdr_t h = make_hdr(8);
	void *copies[1], *app;
	uint64_t app_len;

	h.payload_len = sizeof(bytes);
	memset(bytes, 1, sizeof(bytes));
	ck_assert_int_eq(smig_image_write(tmpdir, &h, bytes, NULL, 0, errbuf,
					  sizeof(errbuf)), 0);
	region(&regs[0], "u", a, sizeof(a));
	ck_assert_int_eq(restore_into(8, regs, 1, copies, &app, &app_len),
			 SMIG_IMAGE_EINVAL);
	ck_assert_msg(strstr(errbuf, "not an image of memory regions"), "%s",
		      errbuf);
	free(copies[0]);
}
END_TEST

/* A cancelled round stops, so does one at its deadline; a dropped
 * pre-copy leaves no file. */
START_TEST(test_cancel_and_free)
{
	size_t la = 4 * MIB;
	char *a = calloc(1, la);
	smig_region_t regs[1];
	smig_image_hdr_t h = make_hdr(9);
	smig_precopy_t *pc;
	atomic_int cancel = 1;
	uint64_t copied;

	region(&regs[0], "state", a, la);
	pc = smig_precopy_new(tmpdir, &h, regs, 1, 0, errbuf, sizeof(errbuf));
	ck_assert_msg(pc, "%s", errbuf);
	ck_assert_int_eq(count_tmp(), 1);
	ck_assert_int_eq(smig_precopy_round(pc, 0, &cancel, 0, &copied, errbuf,
					    sizeof(errbuf)), 1);
	ck_assert_uint_eq(copied, 0);
	/* A deadline already past: stopped before the first block. */
	atomic_store(&cancel, 0);
	ck_assert_int_eq(smig_precopy_round(pc, 0, &cancel, 1, &copied, errbuf,
					    sizeof(errbuf)), 2);
	ck_assert_uint_eq(copied, 0);
	smig_precopy_free(pc);
	ck_assert_int_eq(count_tmp(), 0);
	free(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("region");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_roundtrip_no_rounds);
	tcase_add_test(tc, test_block_tracking);
	tcase_add_test(tc, test_write_during_precopy);
	tcase_add_test(tc, test_damaged_refused);
	tcase_add_test(tc, test_mismatch_refused);
	tcase_add_test(tc, test_not_regions);
	tcase_add_test(tc, test_cancel_and_free);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
