/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lifecycle-test.c - what happens to a job's images when the job ends:
 * Slurm's job state -> phase (smigd_phase.c), phase -> fate
 * (smig_image_fate()), the keep marker, and a removal that never follows
 * a link planted in the job's directory
 */
#include "smig_config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <slurm/slurm.h>

#include "smig_lifecycle.h"
#include "smigd_phase.h"

START_TEST(test_phase)
{
	static const struct { uint32_t state; smig_job_phase_t phase;
			      const char *name; } cases[] = {
		{ JOB_PENDING, SMIG_JOB_ACTIVE, "PENDING" },
		{ JOB_RUNNING, SMIG_JOB_ACTIVE, "RUNNING" },
		{ JOB_SUSPENDED, SMIG_JOB_ACTIVE, "SUSPENDED" },
		{ JOB_COMPLETE, SMIG_JOB_COMPLETED, "COMPLETED" },
		{ JOB_COMPLETE | JOB_COMPLETING, SMIG_JOB_COMPLETED,
		  "COMPLETED" },
		{ JOB_FAILED | JOB_COMPLETING, SMIG_JOB_ENDED, "FAILED" },
		{ JOB_CANCELLED, SMIG_JOB_ENDED, "CANCELLED" },
		{ JOB_TIMEOUT, SMIG_JOB_ENDED, "TIMEOUT" },
		{ JOB_NODE_FAIL, SMIG_JOB_ENDED, "NODE_FAIL" },
		{ JOB_OOM, SMIG_JOB_ENDED, "OUT_OF_MEMORY" },
		{ JOB_PREEMPTED, SMIG_JOB_ENDED, "PREEMPTED" },
		{ JOB_BOOT_FAIL, SMIG_JOB_ENDED, "BOOT_FAIL" },
		{ JOB_DEADLINE, SMIG_JOB_ENDED, "DEADLINE" },
		/* A requeue (22.05's _job_requeue_op()): it runs again. */
		{ JOB_PENDING | JOB_COMPLETING, SMIG_JOB_ACTIVE, "PENDING" },
		{ JOB_NODE_FAIL | JOB_REQUEUE, SMIG_JOB_ACTIVE,
		  "NODE_FAIL+REQUEUE" },
		{ JOB_COMPLETE | JOB_REQUEUE, SMIG_JOB_ACTIVE,
		  "COMPLETED+REQUEUE" },
		{ JOB_PENDING | JOB_REQUEUE_HOLD, SMIG_JOB_ACTIVE,
		  "PENDING+REQUEUE" },
		{ JOB_FAILED | JOB_SPECIAL_EXIT, SMIG_JOB_ACTIVE,
		  "FAILED+REQUEUE" },
	};
	char buf[64];

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		ck_assert_msg(smigd_job_phase(cases[i].state) == cases[i].phase,
			      "state 0x%x", cases[i].state);
		smigd_job_state_name(cases[i].state, buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].name);
	}
}
END_TEST

START_TEST(test_fate)
{
	const int64_t now = 1000000, day = 86400;
	int64_t until = 0;

#define FATE(ph, end, keep, keepc) \
	smig_image_fate(ph, end, keep, keepc, now, &until)
	ck_assert_int_eq(FATE(SMIG_JOB_ACTIVE, 1, 0, 0), SMIG_FATE_KEEP);
	ck_assert_int_eq(FATE(SMIG_JOB_COMPLETED, now, 7 * day, 0),
			 SMIG_FATE_REMOVE);
	/* MigrateImageKeepCompleted: a completed job's kept that long. */
	ck_assert_int_eq(FATE(SMIG_JOB_COMPLETED, now - 5, 0, day),
			 SMIG_FATE_KEEP_UNTIL);
	ck_assert_int_eq(until, now - 5 + day);
	ck_assert_int_eq(FATE(SMIG_JOB_ENDED, now - 10, 7 * day, 0),
			 SMIG_FATE_KEEP_UNTIL);
	ck_assert_int_eq(until, now - 10 + 7 * day);
	/* At the second it expires, it goes. */
	ck_assert_int_eq(FATE(SMIG_JOB_ENDED, now - day, day, 0),
			 SMIG_FATE_REMOVE);
	ck_assert_int_eq(FATE(SMIG_JOB_ENDED, now - day + 1, day, 0),
			 SMIG_FATE_KEEP_UNTIL);
	ck_assert_int_eq(until, now + 1);
	/* MigrateImageKeep=0: at once, like a completed job. */
	ck_assert_int_eq(FATE(SMIG_JOB_ENDED, now, 0, day), SMIG_FATE_REMOVE);
	/* Unknown to slurmctld: as ended when an end is known, else kept. */
	ck_assert_int_eq(FATE(SMIG_JOB_UNKNOWN, 0, day, 0), SMIG_FATE_KEEP);
	ck_assert_int_eq(FATE(SMIG_JOB_UNKNOWN, now - 2 * day, day, 0),
			 SMIG_FATE_REMOVE);
	ck_assert_int_eq(FATE(SMIG_JOB_UNKNOWN, now - 5, day, 0),
			 SMIG_FATE_KEEP_UNTIL);
#undef FATE
	ck_assert_str_eq(smig_fate_name(SMIG_FATE_KEEP_UNTIL), "keep-until");
}
END_TEST

START_TEST(test_phase_names)
{
	smig_job_phase_t p;

	for (int i = SMIG_JOB_UNKNOWN; i <= SMIG_JOB_ENDED; i++) {
		ck_assert(smig_job_phase_parse(smig_job_phase_name(i), &p));
		ck_assert_int_eq(p, i);
	}
	ck_assert(!smig_job_phase_parse("running", &p));
}
END_TEST

static void write_file(const char *path, const char *text)
{
	ck_assert(g_file_set_contents(path, text, -1, NULL));
}

START_TEST(test_remove_no_follow)
{
	char *tmp = g_dir_make_tmp("lifecycle-XXXXXX", NULL);
	char *root = g_build_filename(tmp, "store", NULL);
	char *outside = g_build_filename(tmp, "outside", NULL);
	char *p;
	smig_keep_mark_t mark = { .until = 50, .end = 40 }, back;
	GError *err = NULL;
	uint64_t bytes = 0;
	GArray *jobs;

	ck_assert_int_eq(g_mkdir(root, 0755), 0);
	ck_assert_int_eq(g_mkdir(outside, 0755), 0);
	p = g_build_filename(outside, "precious", NULL);
	write_file(p, "keep me");
	g_free(p);
	p = g_build_filename(root, "42", NULL);
	ck_assert_int_eq(g_mkdir(p, 0700), 0);
	g_free(p);
	p = g_build_filename(root, "42", "rank0.g1.img", NULL);
	write_file(p, "0123456789");
	g_free(p);
	p = g_build_filename(root, "42", "sub", NULL);
	ck_assert_int_eq(g_mkdir(p, 0700), 0);
	g_free(p);
	p = g_build_filename(root, "42", "sub", "f", NULL);
	write_file(p, "abc");
	g_free(p);
	/* What a user could plant: links to a file and a directory. */
	p = g_build_filename(root, "42", "to-dir", NULL);
	ck_assert_int_eq(symlink(outside, p), 0);
	g_free(p);
	p = g_build_filename(root, "42", "sub", "to-file", NULL);
	ck_assert_int_eq(symlink("../../../outside/precious", p), 0);
	g_free(p);
	/* Not a job: a link named like one, and other names. */
	p = g_build_filename(root, "43", NULL);
	ck_assert_int_eq(symlink(outside, p), 0);
	g_free(p);
	p = g_build_filename(root, "007", NULL);
	ck_assert_int_eq(g_mkdir(p, 0700), 0);
	g_free(p);

	jobs = smig_store_jobs(root);
	ck_assert_uint_eq(jobs->len, 1);
	ck_assert_uint_eq(g_array_index(jobs, uint32_t, 0), 42);
	g_array_free(jobs, TRUE);
	ck_assert(smig_store_job_bytes(root, 42, &bytes));
	ck_assert_uint_eq(bytes, 13);

	g_strlcpy(mark.state, "FAILED", sizeof(mark.state));
	ck_assert(smig_store_mark(root, 42, &mark, &err));
	/* Owned by the caller, not root, unless the test runs as root. */
	if (geteuid() == 0) {
		ck_assert(smig_store_read_mark(root, 42, &back));
		ck_assert_int_eq(back.until, 50);
		ck_assert_int_eq(back.end, 40);
		ck_assert_str_eq(back.state, "FAILED");
	} else {
		ck_assert(!smig_store_read_mark(root, 42, &back));
	}

	ck_assert_msg(smig_store_remove_job(root, 42, "n1", &bytes, &err),
		      "%s", err ? err->message : "");
	ck_assert_uint_eq(bytes, 13);
	p = g_build_filename(root, "42", NULL);
	ck_assert(!g_file_test(p, G_FILE_TEST_EXISTS));
	g_free(p);
	p = g_build_filename(root, ".keep.42", NULL);
	ck_assert(!g_file_test(p, G_FILE_TEST_EXISTS));
	g_free(p);
	p = g_build_filename(outside, "precious", NULL);
	ck_assert(g_file_test(p, G_FILE_TEST_IS_REGULAR));
	g_free(p);
	/* Gone already (another node claimed it): fine, nothing freed. */
	ck_assert(smig_store_remove_job(root, 42, "n2", &bytes, &err));
	ck_assert_uint_eq(bytes, 0);
	/* A link named like a job is never removed through. */
	ck_assert(!smig_store_job_bytes(root, 43, &bytes));

	p = g_strdup_printf("rm -rf '%s'", tmp);
	ck_assert_int_eq(system(p), 0);
	g_free(p);
	g_free(outside);
	g_free(root);
	g_free(tmp);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("policy");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_phase);
	tcase_add_test(tc, test_fate);
	tcase_add_test(tc, test_phase_names);
	tcase_add_test(tc, test_remove_no_follow);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
