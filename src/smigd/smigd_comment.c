/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_comment.c - the balancer's "smig[...]" segment of an AdminComment
 */
#include "smig_config.h"

#include <stdbool.h>
#include <string.h>
#include <glib.h>

#include "smigd_comment.h"

#define SEG_OPEN "smig["

/*
 * Find our segment: "smig[" at the start or after a blank, up to the first
 * unescaped ']' (or the end of the text if a site tool cut it off).
 * OUT start, end - offsets of the segment, end one past its ']'
 * RET false if there is none
 */
static bool find_segment(const char *comment, size_t *start, size_t *end)
{
	const char *p = comment;

	while ((p = strstr(p, SEG_OPEN))) {
		if (p == comment || g_ascii_isspace(p[-1]))
			break;
		p++;
	}
	if (!p)
		return false;
	*start = p - comment;
	for (p += strlen(SEG_OPEN); *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
		} else if (*p == ']') {
			p++;
			break;
		}
	}
	*end = p - comment;
	return true;
}

/*
 * smigd_comment_get - the state line held in an AdminComment
 * See smigd_comment.h.
 */
char *smigd_comment_get(const char *comment)
{
	size_t start, end;
	GString *s;

	if (!comment || !find_segment(comment, &start, &end))
		return NULL;
	s = g_string_new(NULL);
	for (const char *p = comment + start + strlen(SEG_OPEN); *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == ']')
			break;
		g_string_append_c(s, *p);
	}
	return g_string_free(s, FALSE);
}

/*
 * smigd_comment_set - an AdminComment with our segment replaced
 * See smigd_comment.h.
 */
char *smigd_comment_set(const char *comment, const char *line)
{
	GString *s = g_string_new(NULL);
	size_t start, end;
	const char *rest = "";

	if (comment && find_segment(comment, &start, &end)) {
		g_string_append_len(s, comment, start);
		rest = comment + end;
	} else if (comment) {
		g_string_append(s, comment);
	}
	if (!line) {
		/* Removed: the blank that separated it goes too. */
		while (s->len && s->str[s->len - 1] == ' ')
			g_string_truncate(s, s->len - 1);
		if (!s->len)
			while (*rest == ' ')
				rest++;
		g_string_append(s, rest);
		return g_string_free(s, FALSE);
	}
	if (s->len && !g_ascii_isspace(s->str[s->len - 1]))
		g_string_append_c(s, ' ');
	g_string_append(s, SEG_OPEN);
	for (const char *p = line; *p; p++) {
		if (*p == '\\' || *p == ']')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *p);
	}
	g_string_append_c(s, ']');
	if (*rest && !g_ascii_isspace(*rest))
		g_string_append_c(s, ' ');
	g_string_append(s, rest);
	return g_string_free(s, FALSE);
}

/*
 * Split a load= summary "imbalance:X,hot:rankR@N,node:M[,unhealthy:...]"
 * into its imbalance and the rest after it (borrowed).
 * RET false if it does not have that shape
 */
static bool load_parts(const char *load, double *imbalance, const char **rest)
{
	char *end;

	if (strncmp(load, "imbalance:", 10))
		return false;
	*imbalance = g_ascii_strtod(load + 10, &end);
	if (end == load + 10 || (*end && *end != ','))
		return false;
	*rest = end;
	return true;
}

/* smigd_comment_minor - see smigd_comment.h */
bool smigd_comment_minor(const char *old, const char *new)
{
	const char *lo, *ln, *ro, *rn;
	double io, in;

	if (!old || !new)
		return false;
	lo = strstr(old, " load=");
	ln = strstr(new, " load=");
	/* The summary is the line's last field: everything before it equal. */
	if (!lo || !ln || lo - old != ln - new || strncmp(old, new, lo - old) ||
	    strchr(lo + 1, ' ') || strchr(ln + 1, ' '))
		return false;
	if (!load_parts(lo + 6, &io, &ro) || !load_parts(ln + 6, &in, &rn))
		return false;
	if (in - io >= SMIGD_LOAD_STEP || io - in >= SMIGD_LOAD_STEP)
		return false;
	if (!strcmp(ro, rn))
		return true;
	/* Another hot rank or node: news only if a rank stands out. */
	if (in >= SMIGD_LOAD_HOT || io >= SMIGD_LOAD_HOT)
		return false;
	/* Below it, a node turning unhealthy still is news. */
	return !strstr(rn, ",unhealthy:") && !strstr(ro, ",unhealthy:");
}
