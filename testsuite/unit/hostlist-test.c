/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hostlist-test.c - host list and count expressions, both directions
 */
#include "smig_config.h"

#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_hostlist.h"

static char *joined(char **v)
{
	return g_strjoinv(" ", v);
}

static void expect_expand(const char *expr, const char *names)
{
	GError *err = NULL;
	char **v = smig_hostlist_expand(expr, &err);
	char *s;

	ck_assert_msg(v, "%s: %s", expr, err ? err->message : "");
	s = joined(v);
	ck_assert_str_eq(s, names);
	g_free(s);
	g_strfreev(v);
}

static void expect_expand_error(const char *expr, const char *msg)
{
	GError *err = NULL;

	ck_assert_ptr_null(smig_hostlist_expand(expr, &err));
	ck_assert_ptr_nonnull(err);
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_WIRE));
	ck_assert_str_eq(err->message, msg);
	g_error_free(err);
}

static void expect_compress(const char *names, const char *expr)
{
	char **v = g_strsplit(names, " ", -1);
	char *s = smig_hostlist_compress((const char *const *) v);
	char **back;
	char *j;

	ck_assert_str_eq(s, expr);
	/* And back: the same names in the same order. */
	back = smig_hostlist_expand(s, NULL);
	ck_assert_ptr_nonnull(back);
	j = joined(back);
	ck_assert_str_eq(j, names);
	g_free(j);
	g_strfreev(back);
	g_free(s);
	g_strfreev(v);
}

START_TEST(test_expand)
{
	expect_expand("node1", "node1");
	expect_expand("node[1-3,7],gpu01", "node1 node2 node3 node7 gpu01");
	expect_expand("n[01-10]", "n01 n02 n03 n04 n05 n06 n07 n08 n09 n10");
	expect_expand("n[8-10]", "n8 n9 n10");
	expect_expand("n[098-101]", "n098 n099 n100 n101");
	expect_expand("rack[1-2]-ib", "rack1-ib rack2-ib");
	expect_expand("[1-2]", "1 2");
	expect_expand("b,a,b", "b a b");
}
END_TEST

START_TEST(test_expand_errors)
{
	expect_expand_error("", "host list \"\": empty (e.g. node[1-4],gpu1)");
	expect_expand_error(NULL, "host list \"\": empty (e.g. node[1-4],gpu1)");
	expect_expand_error("a,,b",
			    "host list \"a,,b\": empty name (e.g. node[1-4],gpu1)");
	expect_expand_error("a,",
			    "host list \"a,\": empty name (e.g. node[1-4],gpu1)");
	expect_expand_error("n[1-2]x[3-4]",
			    "host list \"n[1-2]x[3-4]\": more than one bracket group in one name (one per name, e.g. node[1-4])");
	expect_expand_error("n[1-2", "host list \"n[1-2\": unmatched '['");
	expect_expand_error("n1-2]", "host list \"n1-2]\": unmatched ']'");
	expect_expand_error("n[3-1]",
			    "host list \"n[3-1]\": range \"3-1\" runs backwards (LOW-HIGH with LOW <= HIGH)");
	expect_expand_error("n[a-b]",
			    "host list \"n[a-b]\": bad range \"a-b\" (N or LOW-HIGH of up to 9 digits, e.g. node[1-4,7])");
	expect_expand_error("n[]",
			    "host list \"n[]\": bad range \"\" (N or LOW-HIGH of up to 9 digits, e.g. node[1-4,7])");
	expect_expand_error("n[1-]",
			    "host list \"n[1-]\": bad range \"1-\" (N or LOW-HIGH of up to 9 digits, e.g. node[1-4,7])");
	expect_expand_error("n[1234567890]",
			    "host list \"n[1234567890]\": bad range \"1234567890\" (N or LOW-HIGH of up to 9 digits, e.g. node[1-4,7])");
	expect_expand_error("n[0-999999999]",
			    "host list \"n[0-999999999]\": more than 65536 names");
	expect_expand_error("a b",
			    "host list \"a b\": blank or control character (names separated by commas)");
}
END_TEST

START_TEST(test_compress)
{
	const char *none[] = { NULL };
	char *s;

	expect_compress("node1 node2 node3 node7 gpu01",
			"node[1-3,7],gpu01");
	expect_compress("n01 n02 n03 n10", "n[01-03,10]");
	expect_compress("n8 n9 n10 n11", "n[8-11]");
	expect_compress("n09 n10", "n[09-10]");
	expect_compress("n1 n01", "n[1,01]");
	expect_compress("node3 node1 node2", "node[3,1-2]");
	expect_compress("a b a1", "a,b,a1");
	expect_compress("x1 y1 x2", "x1,y1,x2");
	expect_compress("n1-ib n2-ib", "n1-ib,n2-ib");
	s = smig_hostlist_compress(none);
	ck_assert_str_eq(s, "");
	g_free(s);
}
END_TEST

START_TEST(test_counts)
{
	GError *err = NULL;
	GArray *a = smig_counts_expand("2(x3),1", &err);

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->len, 4);
	ck_assert_uint_eq(g_array_index(a, uint32_t, 0), 2);
	ck_assert_uint_eq(g_array_index(a, uint32_t, 2), 2);
	ck_assert_uint_eq(g_array_index(a, uint32_t, 3), 1);
	g_array_unref(a);
	a = smig_counts_expand("16", &err);
	ck_assert_uint_eq(a->len, 1);
	g_array_unref(a);

	ck_assert_ptr_null(smig_counts_expand("2(x0)", &err));
	ck_assert_str_eq(err->message,
			 "counts \"2(x0)\": bad item \"2(x0)\" (N or N(xM) with M >= 1, e.g. 2(x3),1)");
	g_clear_error(&err);
	ck_assert_ptr_null(smig_counts_expand("2(3)", &err));
	ck_assert_str_eq(err->message,
			 "counts \"2(3)\": bad item \"2(3)\" (N or N(xM) with M >= 1, e.g. 2(x3),1)");
	g_clear_error(&err);
	ck_assert_ptr_null(smig_counts_expand("2,,1", &err));
	ck_assert_str_eq(err->message,
			 "counts \"2,,1\": bad item \"\" (N or N(xM) with M >= 1, e.g. 2(x3),1)");
	g_clear_error(&err);
	ck_assert_ptr_null(smig_counts_expand("1(x99999)", &err));
	ck_assert_str_eq(err->message, "counts \"1(x99999)\": more than 65536 values");
	g_clear_error(&err);
	ck_assert_ptr_null(smig_counts_expand("", &err));
	ck_assert_str_eq(err->message, "counts \"\": empty (e.g. 2(x3),1)");
	g_clear_error(&err);
}
END_TEST

/* Slurm's mpi/pmix compares step and job node indexes (doc/faults.md). */
START_TEST(test_is_prefix)
{
	GError *err = NULL;
	bool prefix = false;

	ck_assert(smig_hostlist_is_prefix("node[1-2]", "node[1-3]", &prefix,
					  &err));
	ck_assert(prefix);
	ck_assert(smig_hostlist_is_prefix("node[1-3]", "node[1-3]", &prefix,
					  &err));
	ck_assert(prefix);
	ck_assert(smig_hostlist_is_prefix("node[2-3]", "node[1-3]", &prefix,
					  &err));
	ck_assert(!prefix);
	ck_assert(smig_hostlist_is_prefix("node[1,3]", "node[1-3]", &prefix,
					  &err));
	ck_assert(!prefix);
	ck_assert(smig_hostlist_is_prefix("node[1-4]", "node[1-3]", &prefix,
					  &err));
	ck_assert(!prefix);
	ck_assert(!smig_hostlist_is_prefix("node[1-", "node[1-3]", &prefix,
					   &err));
	ck_assert_ptr_nonnull(err);
	g_clear_error(&err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hostlist");
	TCase *tc = tcase_create("hostlist");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_expand);
	tcase_add_test(tc, test_expand_errors);
	tcase_add_test(tc, test_compress);
	tcase_add_test(tc, test_counts);
	tcase_add_test(tc, test_is_prefix);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
