/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_comment-test.c - smigd's "smig[...]" segment of a job's AdminComment
 */
#include "smig_config.h"

#include <stdlib.h>
#include <check.h>
#include <glib.h>

#include "smigd_comment.h"

static void expect_set(const char *comment, const char *line, const char *want)
{
	char *got = smigd_comment_set(comment, line);

	ck_assert_str_eq(got, want);
	g_free(got);
}

static void expect_get(const char *comment, const char *want)
{
	char *got = smigd_comment_get(comment);

	if (want)
		ck_assert_str_eq(got, want);
	else
		ck_assert_ptr_null(got);
	g_free(got);
}

START_TEST(test_set)
{
	expect_set(NULL, "mode=auto gen=0 moves=0", "smig[mode=auto gen=0 moves=0]");
	expect_set("", "a", "smig[a]");
	/* The site's text stays; ours follows after a blank. */
	expect_set("site: ticket 42", "a", "site: ticket 42 smig[a]");
	/* Replaced where it is, the rest untouched. */
	expect_set("x smig[old] y", "new", "x smig[new] y");
	expect_set("smig[old]", "new", "smig[new]");
	expect_set("smig[o\\]ld] y", "n", "smig[n] y");
	/* Escaped: a ']' or backslash in the line does not end the segment. */
	expect_set(NULL, "a]b\\c", "smig[a\\]b\\\\c]");
	/* "smig[" inside a word is the site's, not ours. */
	expect_set("xsmig[a]", "b", "xsmig[a] smig[b]");
	/* A segment cut off by a site tool is replaced as a whole. */
	expect_set("x smig[cut", "b", "x smig[b]");
}
END_TEST

START_TEST(test_remove)
{
	expect_set("x smig[a] y", NULL, "x y");
	expect_set("smig[a] y", NULL, "y");
	expect_set("x smig[a]", NULL, "x");
	expect_set("smig[a]", NULL, "");
	expect_set("x", NULL, "x");
	expect_set(NULL, NULL, "");
}
END_TEST

START_TEST(test_get)
{
	expect_get(NULL, NULL);
	expect_get("", NULL);
	expect_get("site text", NULL);
	expect_get("xsmig[a]", NULL);
	expect_get("smig[]", "");
	expect_get("x smig[mode=auto gen=1] y", "mode=auto gen=1");
	expect_get("smig[a\\]b\\\\c] y", "a]b\\c");
	expect_get("x smig[cut", "cut");
}
END_TEST

START_TEST(test_round_trip)
{
	static const char *const lines[] = {
		"mode=auto gen=1 moves=1 last_move=ranks=2-3;from=node2;to=node3;reason=drain",
		"]", "\\", "smig[x]", "a\\]b", "",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++) {
		char *c = smigd_comment_set("site smig[old] end", lines[i]);

		expect_get(c, lines[i]);
		ck_assert(g_str_has_prefix(c, "site smig["));
		ck_assert(g_str_has_suffix(c, "] end"));
		g_free(c);
	}
}
END_TEST

START_TEST(test_minor)
{
#define L "mode=advise gen=0 moves=0 load="
	/* The imbalance drifting: minor, until it moved by 0.10. */
	ck_assert(smigd_comment_minor(L "imbalance:1.42,hot:rank3@n2,node:n2",
				      L "imbalance:1.47,hot:rank3@n2,node:n2"));
	ck_assert(smigd_comment_minor(L "imbalance:1.42,hot:rank3@n2,node:n2",
				      L "imbalance:1.33,hot:rank3@n2,node:n2"));
	ck_assert(!smigd_comment_minor(L "imbalance:1.42,hot:rank3@n2,node:n2",
				       L "imbalance:1.52,hot:rank3@n2,node:n2"));
	/* Another hot rank: news when a rank stands out, noise when not. */
	ck_assert(!smigd_comment_minor(L "imbalance:1.42,hot:rank3@n2,node:n2",
				       L "imbalance:1.42,hot:rank2@n2,node:n2"));
	ck_assert(!smigd_comment_minor(L "imbalance:1.05,hot:rank3@n2,node:n2",
				       L "imbalance:1.12,hot:rank1@n1,node:n1"));
	ck_assert(smigd_comment_minor(L "imbalance:1.02,hot:rank3@n2,node:n2",
				      L "imbalance:1.04,hot:rank1@n1,node:n1"));
	/* A node turning unhealthy, the summary appearing or going. */
	ck_assert(!smigd_comment_minor(L "imbalance:1.02,hot:rank3@n2,node:n2",
				       L "imbalance:1.02,hot:rank3@n2,node:n2,unhealthy:n1"));
	ck_assert(!smigd_comment_minor("mode=advise gen=0 moves=0",
				       L "imbalance:1.02,hot:rank3@n2,node:n2"));
	ck_assert(!smigd_comment_minor(L "imbalance:1.02,hot:rank3@n2,node:n2",
				       "mode=advise gen=0 moves=0"));
	/* Anything else changing. */
	ck_assert(!smigd_comment_minor(L "imbalance:1.02,hot:rank3@n2,node:n2",
				       "mode=advise gen=1 moves=0 load=imbalance:1.02,hot:rank3@n2,node:n2"));
	ck_assert(!smigd_comment_minor(L "imbalance:1.02,hot:rank3@n2,node:n2",
				       L "imbalance:1.02,hot:rank3@n2,node:n2 last_error=x"));
	ck_assert(!smigd_comment_minor(NULL, L "imbalance:1.02,hot:rank3@n2,node:n2"));
	ck_assert(!smigd_comment_minor(L "bogus", L "imbalance:1.02,hot:rank3@n2,node:n2"));
#undef L
}
END_TEST

int main(void)
{
	Suite *s = suite_create("smigd_comment");
	TCase *tc = tcase_create("smigd_comment");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_set);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_get);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_minor);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
