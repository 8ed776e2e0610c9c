/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log-test.c - the core's log calls: levels and the job/step/node context
 */
#include "smig_config.h"

#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <glib.h>

#include "smig_log.h"

static GString *seen;

static void sink(smig_log_level_t level, const char *msg)
{
	g_string_append_printf(seen, "%s|%s\n", smig_log_level_word(level), msg);
}

static void setup(void)
{
	seen = g_string_new(NULL);
	smig_log_set_sink(sink, SMIG_LOG_VERBOSE);
}

static void teardown(void)
{
	smig_log_set_sink(NULL, SMIG_LOG_INFO);
	g_string_free(seen, TRUE);
}

START_TEST(test_context)
{
	smig_cinfo(SMIG_CTX_STEP(7, 0), "captured gen=%u", 3u);
	smig_cerror(SMIG_CTX_JOB(8), "requeued");
	smig_cverbose(SMIG_CTX_NODE(9, 1, "node2"), "ranks %s", "0-3");
	smig_cinfo(NULL, "no context");
	smig_cinfo(SMIG_CTX_NODE(SMIG_LOG_NO_ID, SMIG_LOG_NO_ID, "n1"), "x");
	ck_assert_str_eq(seen->str,
			 "info|JobId=7 StepId=0: captured gen=3\n"
			 "error|JobId=8: requeued\n"
			 "verbose|JobId=9 StepId=1 node=node2: ranks 0-3\n"
			 "info|no context\n"
			 "info|node=n1: x\n");
}
END_TEST

START_TEST(test_level_filter)
{
	smig_cdebug(SMIG_CTX_STEP(7, 0), "hidden");
	smig_debug("hidden too");
	smig_verbose("shown");
	ck_assert_str_eq(seen->str, "verbose|shown\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_context);
	tcase_add_test(tc, test_level_filter);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
