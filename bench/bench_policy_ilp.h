/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_policy_ilp.h - an optimum of the policy's placement problem that
 * shares no code with the policy engine: the model written again from its
 * description (doc/design.md, "Policy"; smig_policy_engine.c's header) and
 * the placement problem as an integer linear programme solved by GLPK
 *
 * Only the snapshot's types come from smig_policy.h. Flat networks and
 * switch trees (nlevels, node_switch, byte_cost): a pair's bytes cost
 * byte_cost[d] at each end, d the distance of their nodes.
 */
#ifndef BENCH_POLICY_ILP_H
#define BENCH_POLICY_ILP_H

#include <stdbool.h>
#include <stdint.h>

#include "smig_policy.h"

typedef struct {
	bool found;		/* a placement was found (else the rest is 0) */
	bool optimal;		/* GLPK proved it optimal */
	double eff;		/* its objective: ref_eff() of place */
	double obj;		/* GLPK's objective value of it (check) */
	double bound;		/* proven lower bound on the optimum's eff */
	double t;		/* its iteration time */
	uint32_t moves;
	double seconds;		/* wall time of glp_intopt() */
	int rows, cols, nonzeros, binaries;
	uint32_t *place;	/* nranks entries; caller g_free()s */
} ilp_result_t;

/*
 * ref_time - seconds per iteration of a placement, by the model written
 * again here (not smig_policy_eval_time())
 * IN place - node of each rank; NULL: where the ranks run now
 */
double ref_time(const smig_policy_snapshot_t *s, const uint32_t *place);

/*
 * ref_eff - the policy's objective as an iteration time: the net gain
 * remaining * (1 - T / before) - cost is largest where
 * T + before * cost / remaining is smallest; cost = relaunch + moved images
 * / image_bw when any rank moves, else 0
 * IN before - ref_time() of the current placement
 * OUT moves - ranks moved (NULL: not asked)
 */
double ref_eff(const smig_policy_snapshot_t *s, const uint32_t *place,
	       double before, uint32_t *moves);

/*
 * ilp_solve - the placement of least ref_eff() under the policy's
 * constraints (nodes to leave, slots, memory), by GLPK's branch and cut
 * IN  before  - ref_time() of the current placement
 * IN  seconds - time limit of the search
 * OUT res     - result; res->place to be freed
 * RET false when the snapshot is not one this formulation covers
 *     (remaining 0, no ranks)
 */
bool ilp_solve(const smig_policy_snapshot_t *s, double before,
	       double seconds, ilp_result_t *res);

/* ilp_version - GLPK's version string (static) */
const char *ilp_version(void);

#endif /* BENCH_POLICY_ILP_H */
