/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * badinput-test.c - every row of doc/bad-input.md's --migrate and
 * migrate.conf tables gets exactly the message the table shows
 *
 * The table is the documentation and the test data at once: a row whose
 * message drifts from the code fails here, and so does a --migrate key or
 * a migrate.conf key without any row.
 */
#include "smig_config.h"

#include <stdio.h>
#include <string.h>
#include <check.h>
#include <glib.h>

#include "smig_conf.h"
#include "smig_request.h"

#ifndef SMIG_TOP_SRCDIR
#error "SMIG_TOP_SRCDIR must name the source tree (see testsuite/unit/local.mk)"
#endif

typedef struct {
	char *input;
	char *message;
	unsigned line;
} row_t;

/* Cell text without its backticks, "\|" unescaped; new string. */
static char *cell_text(const char *cell)
{
	GString *s = g_string_new(NULL);
	size_t n = strlen(cell);

	if (n >= 2 && cell[0] == '`' && cell[n - 1] == '`') {
		cell++;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++) {
		if (cell[i] == '\\' && i + 1 < n && cell[i + 1] == '|')
			i++;
		g_string_append_c(s, cell[i]);
	}
	return g_string_free(s, false);
}

/*
 * The rows of the table under the "## " heading that starts with section.
 * RET new array of row_t (g_free the strings and the array)
 */
static GArray *table_rows(const char *section)
{
	char *path = g_build_filename(SMIG_TOP_SRCDIR, "doc", "bad-input.md",
				      NULL);
	char *text = NULL, **lines;
	GError *err = NULL;
	GArray *rows = g_array_new(false, true, sizeof(row_t));
	bool in = false;

	ck_assert_msg(g_file_get_contents(path, &text, NULL, &err), "%s",
		      err ? err->message : "");
	lines = g_strsplit(text, "\n", -1);
	for (unsigned i = 0; lines[i]; i++) {
		const char *l = lines[i];
		char **cells;
		row_t r;

		if (g_str_has_prefix(l, "## ")) {
			in = g_str_has_prefix(l + 3, section);
			continue;
		}
		if (!in || !g_str_has_prefix(l, "| `"))
			continue;
		/* "| `a` | `b` |": split on " | " outside escapes. */
		cells = g_regex_split_simple("\\s+(?<!\\\\)\\|\\s+", l + 2, 0,
					     0);
		ck_assert_msg(g_strv_length(cells) == 2,
			      "%s:%u: a row needs 2 cells: %s", path, i + 1, l);
		g_strchomp(cells[1]);
		if (g_str_has_suffix(cells[1], " |"))
			cells[1][strlen(cells[1]) - 2] = '\0';
		r.input = cell_text(cells[0]);
		r.message = cell_text(cells[1]);
		r.line = i + 1;
		g_array_append_val(rows, r);
		g_strfreev(cells);
	}
	g_strfreev(lines);
	g_free(text);
	g_free(path);
	ck_assert_msg(rows->len > 0, "no rows under \"## %s\"", section);
	return rows;
}

static void rows_free(GArray *rows)
{
	for (guint i = 0; i < rows->len; i++) {
		g_free(g_array_index(rows, row_t, i).input);
		g_free(g_array_index(rows, row_t, i).message);
	}
	g_array_free(rows, true);
}

/* A table message ending in "..." is a prefix. */
static void check_message(const row_t *r, const char *got)
{
	size_t n = strlen(r->message);

	if (n > 3 && g_str_has_suffix(r->message, "...")) {
		ck_assert_msg(!strncmp(got, r->message, n - 3),
			      "doc/bad-input.md:%u: `%s`:\n  table: %s\n  code:  %s",
			      r->line, r->input, r->message, got);
		return;
	}
	ck_assert_msg(!strcmp(got, r->message),
		      "doc/bad-input.md:%u: `%s`:\n  table: %s\n  code:  %s",
		      r->line, r->input, r->message, got);
}

static bool has_row_for(GArray *rows, const char *key, bool nocase)
{
	size_t n = strlen(key);

	for (guint i = 0; i < rows->len; i++) {
		const char *in = g_array_index(rows, row_t, i).input;

		if ((nocase ? g_ascii_strncasecmp(in, key, n) :
			      strncmp(in, key, n)) == 0 &&
		    strchr("=,", in[n]))	/* also matches in[n] == '\0' */
			return true;
	}
	return false;
}

START_TEST(test_migrate_rows)
{
	GArray *rows = table_rows("srun --migrate");

	for (guint i = 0; i < rows->len; i++) {
		const row_t *r = &g_array_index(rows, row_t, i);
		smig_request_t req;
		GError *err = NULL;

		if (smig_request_parse(r->input, &req, &err))
			ck_assert_msg(!smig_request_check_supported(&req, &err),
				      "doc/bad-input.md:%u: --migrate=%s is accepted",
				      r->line, r->input);
		check_message(r, err->message);
		g_error_free(err);
	}
	rows_free(rows);
}
END_TEST

START_TEST(test_migrate_keys_covered)
{
	GArray *rows = table_rows("srun --migrate");
	smig_request_t req;
	GError *err = NULL;
	char *open, *close, **keys;

	/* The parser lists its keys when it meets an unknown one. */
	ck_assert(!smig_request_parse("zz=1", &req, &err));
	open = strchr(err->message, '(');
	close = open ? strchr(open, ')') : NULL;
	ck_assert_msg(open && close, "%s", err->message);
	*close = '\0';
	keys = g_strsplit(open + 1, ", ", -1);
	for (char **k = keys; *k; k++)
		ck_assert_msg(has_row_for(rows, *k, false),
			      "doc/bad-input.md: no row for --migrate key %s: add one with its error message",
			      *k);
	g_strfreev(keys);
	g_error_free(err);
	rows_free(rows);
}
END_TEST

START_TEST(test_conf_rows)
{
	GArray *rows = table_rows("migrate.conf");

	for (guint i = 0; i < rows->len; i++) {
		const row_t *r = &g_array_index(rows, row_t, i);
		smig_conf_t *conf = smig_conf_new();
		GError *err = NULL;

		ck_assert_msg(!smig_conf_parse_line(conf, "migrate.conf", 3,
						    r->input, &err),
			      "doc/bad-input.md:%u: %s is accepted", r->line,
			      r->input);
		check_message(r, err->message);
		g_error_free(err);
		smig_conf_free(conf);
	}
	rows_free(rows);
}
END_TEST

START_TEST(test_conf_keys_covered)
{
	GArray *rows = table_rows("migrate.conf");
	smig_conf_t *conf = smig_conf_new();
	GArray *pairs = smig_conf_pairs(conf);

	for (guint i = 0; i < pairs->len; i++) {
		const char *key = g_array_index(pairs, smig_conf_pair_t, i).key;

		ck_assert_msg(has_row_for(rows, key, true),
			      "doc/bad-input.md: no row for migrate.conf key %s: add one with its error message",
			      key);
	}
	smig_conf_pairs_free(pairs);
	smig_conf_free(conf);
	rows_free(rows);
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("bad-input");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_migrate_rows);
	tcase_add_test(tc, test_migrate_keys_covered);
	tcase_add_test(tc, test_conf_rows);
	tcase_add_test(tc, test_conf_keys_covered);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(badinput_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
