/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_hostlist.h - Slurm's compact host lists and counts, without Slurm
 *
 * "node[1-3,7],gpu01" <-> node1 node2 node3 node7 gpu01 (order kept);
 * SLURM_JOB_CPUS_PER_NODE style counts "2(x3),1" <-> 2 2 2 1.
 */
#ifndef SMIG_HOSTLIST_H
#define SMIG_HOSTLIST_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/*
 * smig_hostlist_expand - names of a host list expression
 * RET new NULL-terminated vector, caller frees with g_strfreev(); NULL on
 *     error (set, naming the expression)
 */
char **smig_hostlist_expand(const char *expr, GError **error);

/*
 * smig_hostlist_compress - compact expression of names (order kept, runs of
 * equal prefix and consecutive numbers merged)
 * RET new string, caller g_free()s
 */
char *smig_hostlist_compress(const char *const *names);

/*
 * smig_hostlist_is_prefix - the names of step are the first names of job, in
 * the same order, so that every name has the same index in both lists
 * IN step, job - host list expressions (borrowed)
 * OUT prefix   - the answer
 * RET true, or false (error set) if one expression is bad
 */
bool smig_hostlist_is_prefix(const char *step, const char *job, bool *prefix,
			     GError **error);

/*
 * smig_counts_expand - "2(x3),1" into an array of uint32_t
 * RET new GArray of uint32_t, caller frees with g_array_unref(); NULL on error
 */
GArray *smig_counts_expand(const char *expr, GError **error);

#endif /* SMIG_HOSTLIST_H */
