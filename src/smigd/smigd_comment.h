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

#include <stdbool.h>
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

/*
 * smigd_comment_minor - whether going from state line old to new is only a
 * drift of its load= summary, which smigd writes at most every few minutes
 * (each write is an RPC that slurmctld logs), not at every sample: the
 * same line but for "load=", where the imbalance moved by less than
 * SMIGD_LOAD_STEP and the hot rank, its node and the busiest node are
 * the same, or differ while the imbalance stays below SMIGD_LOAD_HOT (no
 * rank stands out: which one is "hot" is noise). Anything else (another
 * generation, a move, advice, an error, a node unhealthy, the summary
 * appearing or going) is written at once.
 * IN old, new - state lines (borrowed, may be NULL)
 */
#define SMIGD_LOAD_STEP 0.10
#define SMIGD_LOAD_HOT 1.10
bool smigd_comment_minor(const char *old, const char *new);

#endif /* SMIGD_COMMENT_H */
