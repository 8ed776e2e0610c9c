/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_comment.h - the balancer's segment of a job's AdminComment
 *
 * SystemComment can only be written inside slurmctld, so smigd publishes a
 * job's migration state line in AdminComment, which root and SlurmUser may
 * set and the job's owner may read. AdminComment is shared with site tools:
 * ours is one segment, "smig[LINE]", at the start of the text or after a
 * blank; inside LINE a backslash and a ']' are escaped with a backslash.
 * Everything outside the segment is left as it was. Pure functions: no
 * Slurm, unit-tested.
 */
#ifndef SMIGD_COMMENT_H
#define SMIGD_COMMENT_H

#include <glib.h>

/*
 * smigd_comment_get - the state line held in an AdminComment
 * IN  comment - the whole AdminComment (borrowed, may be NULL)
 * RET new string (unescaped), caller g_free()s; NULL if there is no segment
 */
char *smigd_comment_get(const char *comment);

/*
 * smigd_comment_set - an AdminComment with our segment replaced
 * IN  comment - the whole AdminComment (borrowed, may be NULL)
 * IN  line    - the new state line (borrowed); NULL removes the segment
 * RET new string, caller g_free()s: the site's text unchanged, our segment
 *     where it was (or appended after a blank)
 */
char *smigd_comment_set(const char *comment, const char *line);

#endif /* SMIGD_COMMENT_H */
