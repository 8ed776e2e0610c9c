/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_hostlist.c - Slurm's compact host lists and counts, without Slurm
 */
#include "smig_config.h"

#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_hostlist.h"

/* Larger lists than any allocation has are refused, not expanded. */
#define MAX_NAMES	65536
/* Digits of one host number; more cannot be a node index. */
#define MAX_DIGITS	9

/* A decimal number of 1..MAX_DIGITS digits; RET false otherwise. */
static bool parse_num(const char *s, size_t len, uint32_t *out)
{
	uint32_t n = 0;

	if (len == 0 || len > MAX_DIGITS)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!g_ascii_isdigit(s[i]))
			return false;
		n = n * 10 + (uint32_t) (s[i] - '0');
	}
	*out = n;
	return true;
}

/*
 * Expand "lo-hi,n,..." (the inside of one bracket group) between prefix and
 * suffix into names. RET false with error set.
 */
static bool expand_ranges(const char *expr, const char *prefix,
			  const char *ranges, const char *suffix,
			  GPtrArray *names, GError **error)
{
	char **items = g_strsplit(ranges, ",", -1);
	bool ok = false;

	/* g_strsplit("") gives no items: "n[]" must not expand to nothing. */
	if (!*ranges) {
		g_strfreev(items);
		items = g_new0(char *, 2);
		items[0] = g_strdup("");
	}

	for (char **it = items; *it; it++) {
		const char *dash = strchr(*it, '-');
		size_t lolen = dash ? (size_t) (dash - *it) : strlen(*it);
		uint32_t lo, hi;

		if (!parse_num(*it, lolen, &lo) ||
		    (dash && !parse_num(dash + 1, strlen(dash + 1), &hi))) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "host list \"%s\": bad range \"%s\" (N or LOW-HIGH of up to %d digits, e.g. node[1-4,7])",
				    expr, *it, MAX_DIGITS);
			goto out;
		}
		if (!dash)
			hi = lo;
		if (hi < lo) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "host list \"%s\": range \"%s\" runs backwards (LOW-HIGH with LOW <= HIGH)",
				    expr, *it);
			goto out;
		}
		if ((uint64_t) hi - lo + 1 + names->len > MAX_NAMES) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "host list \"%s\": more than %d names",
				    expr, MAX_NAMES);
			goto out;
		}
		/* The low bound's digits set the width: n[01-10]. */
		for (uint64_t n = lo; n <= hi; n++)
			g_ptr_array_add(names,
					g_strdup_printf("%s%0*u%s", prefix,
							(int) lolen,
							(unsigned) n, suffix));
	}
	ok = true;
out:
	g_strfreev(items);
	return ok;
}

/*
 * smig_hostlist_expand - names of a host list expression such as
 * "node[1-3,7],gpu01" (one bracket group per name)
 * RET new NULL-terminated vector, caller frees with g_strfreev(); NULL on
 *     error (set, SMIG_ERROR_WIRE, naming the expression)
 */
char **smig_hostlist_expand(const char *expr, GError **error)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const char *p = expr, *start;

	if (!expr || !*expr) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "host list \"%s\": empty (e.g. node[1-4],gpu1)",
			    expr ? expr : "");
		goto out_free;
	}
	while (*p) {
		const char *open = NULL, *close = NULL;
		char *item, *prefix, *ranges, *suffix;
		bool ok;

		/* One item: up to a comma outside brackets. */
		for (start = p; *p && (*p != ',' || (open && !close)); p++) {
			if (*p == '[') {
				if (open) {
					g_set_error(error, SMIG_ERROR,
						    SMIG_ERROR_WIRE,
						    "host list \"%s\": more than one bracket group in one name (one per name, e.g. node[1-4])",
						    expr);
					goto out_free;
				}
				open = p;
			} else if (*p == ']') {
				if (!open || close) {
					g_set_error(error, SMIG_ERROR,
						    SMIG_ERROR_WIRE,
						    "host list \"%s\": unmatched ']'",
						    expr);
					goto out_free;
				}
				close = p;
			} else if (g_ascii_isspace(*p) || g_ascii_iscntrl(*p)) {
				g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
					    "host list \"%s\": blank or control character (names separated by commas)",
					    expr);
				goto out_free;
			}
		}
		if (open && !close) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "host list \"%s\": unmatched '['", expr);
			goto out_free;
		}
		if (p == start) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "host list \"%s\": empty name (e.g. node[1-4],gpu1)",
				    expr);
			goto out_free;
		}
		item = g_strndup(start, p - start);
		if (!open) {
			g_ptr_array_add(names, item);
		} else {
			prefix = g_strndup(start, open - start);
			ranges = g_strndup(open + 1, close - open - 1);
			suffix = g_strndup(close + 1, p - close - 1);
			ok = expand_ranges(expr, prefix, ranges, suffix, names,
					   error);
			g_free(prefix);
			g_free(ranges);
			g_free(suffix);
			g_free(item);
			if (!ok)
				goto out_free;
		}
		if (names->len > MAX_NAMES) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "host list \"%s\": more than %d names",
				    expr, MAX_NAMES);
			goto out_free;
		}
		if (*p == ',') {
			p++;
			if (!*p) {
				g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
					    "host list \"%s\": empty name (e.g. node[1-4],gpu1)",
					    expr);
				goto out_free;
			}
		}
	}
	g_ptr_array_add(names, NULL);
	return (char **) g_ptr_array_free(names, false);

out_free:
	g_ptr_array_free(names, true);
	return NULL;
}

/* Split a name into prefix and trailing number; RET false if it has none. */
static bool split_name(const char *name, size_t *plen, uint32_t *num,
		       int *width)
{
	size_t len = strlen(name), i = len;

	while (i > 0 && g_ascii_isdigit(name[i - 1]))
		i--;
	if (i == len || !parse_num(name + i, len - i, num))
		return false;
	/* Names that the bracket syntax cannot carry stay as they are. */
	if (strpbrk(name, "[],"))
		return false;
	*plen = i;
	*width = (int) (len - i);
	return true;
}

/* Does "%0*u" of num at width w print exactly name's digits? */
static bool same_digits(const char *digits, uint32_t num, int w)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%0*u", w, num);
	return !strcmp(buf, digits);
}

/*
 * smig_hostlist_compress - compact expression of names (order kept; runs of
 * names with equal prefix merged into one bracket group, consecutive numbers
 * into ranges)
 * IN names - NULL-terminated (borrowed)
 * RET new string, caller g_free()s ("" for no names)
 */
char *smig_hostlist_compress(const char *const *names)
{
	GString *out = g_string_new(NULL);
	size_t i = 0;

	while (names && names[i]) {
		size_t plen, plen2, first = i;
		uint32_t lo, hi, num;
		int w, w2;
		GString *group;
		unsigned nitems = 0;
		bool ranged = false;

		if (out->len)
			g_string_append_c(out, ',');
		if (!split_name(names[i], &plen, &lo, &w)) {
			g_string_append(out, names[i++]);
			continue;
		}
		group = g_string_new(NULL);
		/* Following names with the same prefix join the group. */
		while (names[i] && split_name(names[i], &plen2, &lo, &w) &&
		       plen2 == plen && !memcmp(names[i], names[first], plen)) {
			size_t j = i + 1;

			/* Extend the range while numbers are consecutive. */
			hi = lo;
			while (names[j] &&
			       split_name(names[j], &plen2, &num, &w2) &&
			       plen2 == plen &&
			       !memcmp(names[j], names[first], plen) &&
			       num == hi + 1 &&
			       same_digits(names[j] + plen, num, w)) {
				hi = num;
				j++;
			}
			if (nitems++)
				g_string_append_c(group, ',');
			g_string_append(group, names[i] + plen);
			if (hi != lo) {
				g_string_append_printf(group, "-%0*u", w, hi);
				ranged = true;
			}
			i = j;
		}
		g_string_append_len(out, names[first], plen);
		if (nitems == 1 && !ranged)
			g_string_append(out, group->str);
		else
			g_string_append_printf(out, "[%s]", group->str);
		g_string_free(group, true);
	}
	return g_string_free(out, false);
}

/*
 * smig_counts_expand - "2(x3),1" into an array of uint32_t
 * RET new GArray of uint32_t, caller frees with g_array_unref(); NULL on
 *     error (set, SMIG_ERROR_WIRE, naming the expression)
 */
GArray *smig_counts_expand(const char *expr, GError **error)
{
	GArray *counts = g_array_new(false, false, sizeof(uint32_t));
	char **items;

	if (!expr || !*expr) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "counts \"%s\": empty (e.g. 2(x3),1)",
			    expr ? expr : "");
		g_array_unref(counts);
		return NULL;
	}
	items = g_strsplit(expr, ",", -1);
	for (char **it = items; *it; it++) {
		const char *paren = strchr(*it, '(');
		size_t nlen = paren ? (size_t) (paren - *it) : strlen(*it);
		uint32_t n, rep = 1;

		if (!parse_num(*it, nlen, &n) ||
		    (paren && (strncmp(paren, "(x", 2) ||
			       !g_str_has_suffix(paren, ")") ||
			       !parse_num(paren + 2, strlen(paren) - 3,
					  &rep) ||
			       rep == 0))) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "counts \"%s\": bad item \"%s\" (N or N(xM) with M >= 1, e.g. 2(x3),1)",
				    expr, *it);
			goto out_free;
		}
		if (counts->len + (uint64_t) rep > MAX_NAMES) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "counts \"%s\": more than %d values",
				    expr, MAX_NAMES);
			goto out_free;
		}
		for (uint32_t r = 0; r < rep; r++)
			g_array_append_val(counts, n);
	}
	g_strfreev(items);
	return counts;

out_free:
	g_strfreev(items);
	g_array_unref(counts);
	return NULL;
}

bool smig_hostlist_is_prefix(const char *step, const char *job, bool *prefix,
			     GError **error)
{
	char **s, **j;
	guint i;

	if (!(s = smig_hostlist_expand(step, error)))
		return false;
	if (!(j = smig_hostlist_expand(job, error))) {
		g_strfreev(s);
		return false;
	}
	for (i = 0; s[i] && j[i] && !strcmp(s[i], j[i]); i++)
		;
	*prefix = !s[i];
	g_strfreev(s);
	g_strfreev(j);
	return true;
}
