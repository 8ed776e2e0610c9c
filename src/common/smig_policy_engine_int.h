/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy_engine_int.h - internals shared by the policy engine's files
 *
 *   smig_policy_engine_model.c   the model: snapshot checks, affinity
 *                                graph, T(n), net gain, the evaluator
 *   smig_policy_engine_state.c   one placement being changed: per-node
 *                                sums, indexed heaps, the move log
 *   smig_policy_engine_search.c  the strategies: evacuate, refine, prune,
 *                                greedy, METIS placement, exact search
 *   smig_policy_engine_swap.c    the swap search: pairs moved, exchanged
 *   smig_policy_engine.c         smig_policy_decide(): runs them, rates
 *                                the candidates, writes the plan
 *
 * Private to libsmig_core (never installed). The files share no variable:
 * every function works on the model or state its caller passes.
 */
#ifndef SMIG_POLICY_ENGINE_INT_H
#define SMIG_POLICY_ENGINE_INT_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "smig_policy.h"

#define NODE_BAD (SMIG_NODE_DRAIN | SMIG_NODE_DOWN | SMIG_NODE_FAIL)
/* Candidate targets taken from the top of the least-loaded heap. */
#define HEAP_CANDIDATES 7
/* No rank, no node: the end of a node's rank list, "not placed". */
#define NONE UINT32_MAX
/* In the flags of the nodes ranks must leave: a node that is excluded. */
#define LEFT_EXCLUDED (1u << 31)

/* ------------------------------------------------------------- the model */

typedef struct {
	const smig_policy_snapshot_t *snap;
	uint32_t nr, nn;
	uint64_t *xadj;		/* CSR of the symmetric affinity graph */
	uint32_t *adj;
	double *w;		/* bytes per iteration */
	double *cap;		/* speed * (cores - background) */
	bool *bad;		/* ranks must leave it */
	bool *usable;		/* may receive ranks */
	uint64_t *mem_cap;	/* mem_free + the memory of our ranks there */
	double *cost;		/* seconds per byte by distance, ncost */
	uint32_t ncost;
	double lower_bound;	/* no placement is faster (compute only) */
} model_t;

/*
 * Distance of nodes a and b as an index into cost: 0 the same node, l + 1
 * when they first share a switch at level l, ncost - 1 when they share none.
 */
static inline uint32_t dist_level(const model_t *m, uint32_t a, uint32_t b)
{
	const smig_policy_snapshot_t *s = m->snap;

	if (a == b)
		return 0;
	for (uint32_t l = 0; l < s->nlevels; l++) {
		if (s->node_switch[(size_t) a * s->nlevels + l] ==
		    s->node_switch[(size_t) b * s->nlevels + l])
			return l + 1;
	}
	return m->ncost - 1;
}

/* Seconds per byte between nodes a and b (the switch level they share). */
static inline double dist_cost(const model_t *m, uint32_t a, uint32_t b)
{
	return m->cost[dist_level(m, a, b)];
}

static inline bool finite_ge0(double x)
{
	return isfinite(x) && x >= 0;
}

/* T(n) of node n with k ranks, load L, largest load lmax and comm time. */
static inline double node_time(const model_t *m, uint32_t n, uint32_t k,
			       double L, double lmax, double comm)
{
	if (!k)
		return 0;
	return MAX(L / m->cap[n], lmax / m->snap->nodes[n].speed) + comm;
}

/* Why ranks must leave node nd: its SMIG_NODE_* flags, or LEFT_EXCLUDED. */
static inline uint32_t left_flag(const smig_policy_node_t *nd)
{
	return nd->excluded ? LEFT_EXCLUDED : nd->flags;
}

/*
 * smig_pol_model_init - check a snapshot and build its model
 * IN  s     - the snapshot (borrowed: the model points into it)
 * OUT m     - caller-owned storage; free its arrays with
 *             smig_pol_model_fini(), also after a failure
 * OUT error - set on failure; caller frees it with g_error_free()
 * RET false on a bad snapshot
 */
bool smig_pol_model_init(model_t *m, const smig_policy_snapshot_t *s,
			 GError **error);

/* smig_pol_model_fini - free a model's arrays (not m itself) */
void smig_pol_model_fini(model_t *m);

/*
 * smig_pol_place_time - iteration time of a placement, from scratch
 * IN  node_of         - node of each rank (borrowed)
 * L, lmax, comm, k    - caller's scratch arrays of nn entries
 * OUT worst, comm_part - the slowest node and its communication time;
 *                        worst NULL: not asked
 */
double smig_pol_place_time(const model_t *m, const uint32_t *node_of,
			   double *L, double *lmax, double *comm, uint32_t *k,
			   uint32_t *worst, double *comm_part);

/* smig_pol_rated_gain - net gain of a placement, as the plan reports it */
double smig_pol_rated_gain(const smig_policy_snapshot_t *s, double before,
			   double after, uint32_t nmoved, double image);

/* --------------------------------------------------------- indexed heap */

typedef struct {
	uint32_t *h;		/* heap of node indices */
	uint32_t *pos;		/* position of each node in h */
	double *key;
	uint32_t n;
	bool max;
} heap_t;

/* smig_pol_heap_fix - restore the heap order after key[node] changed */
void smig_pol_heap_fix(heap_t *hp, uint32_t node);

/* smig_pol_heap_build - heap order over all keys, from scratch */
void smig_pol_heap_build(heap_t *hp);

/* ---------------------------------------------------------------- state */

typedef struct {
	uint32_t rank, from, to;
} step_t;

typedef struct {
	const model_t *m;
	bool use_comm;		/* affinity counts while deciding */
	uint32_t *node_of;
	double *L, *lmax, *comm;
	uint32_t *k;
	uint64_t *mem;
	uint32_t *head, *next, *prev;	/* ranks of each node, a list */
	heap_t top;		/* max-heap of T(n) */
	heap_t low;		/* min-heap of T(n) over nodes with room */
	uint32_t nmoved;	/* ranks away from their snapshot node */
	double moved_image;	/* their image bytes */
	GArray *log;		/* of step_t */
	/* scratch for one evaluation: per-node comm deltas */
	double *delta;
	uint32_t *touched;
	uint32_t ntouched;
	bool *mark;
} state_t;

static inline bool has_room(const state_t *st, uint32_t n)
{
	return st->m->usable[n] && st->k[n] < st->m->snap->nodes[n].slots;
}

/* May rank r move to node d: a free slot and memory for it? */
static inline bool fits(const state_t *st, uint32_t r, uint32_t d)
{
	return has_room(st, d) &&
	       st->mem[d] + st->m->snap->ranks[r].mem <= st->m->mem_cap[d];
}

/* T of the slowest node. */
static inline double st_max(const state_t *st)
{
	return st->top.key[st->top.h[0]];
}

/*
 * smig_pol_st_init - a state on the model's current placement
 * IN  m  - the model (borrowed, must outlive the state)
 * OUT st - caller-owned storage; free its arrays with smig_pol_st_fini()
 */
void smig_pol_st_init(state_t *st, const model_t *m, bool use_comm);

/* smig_pol_st_fini - free a state's arrays (not st itself) */
void smig_pol_st_fini(state_t *st);

/*
 * smig_pol_st_load - per-node sums, lists and heaps of a placement, from
 * scratch; empties the move log
 * IN placement - node of each rank (borrowed, copied)
 */
void smig_pol_st_load(state_t *st, const uint32_t *placement);

/* smig_pol_st_move - move rank r to node d; logged: append to st->log */
void smig_pol_st_move(state_t *st, uint32_t r, uint32_t d, bool logged);

/*
 * smig_pol_eval_move - the largest T of a node that moving r from s to d
 * changes, without moving it
 * IN  lmax_s_without - the largest load on s once r has left
 * OUT others - the largest T of those nodes but s (NULL: not wanted)
 */
double smig_pol_eval_move(state_t *st, uint32_t r, uint32_t s, uint32_t d,
			  double lmax_s_without, double *others);

/* Ranks moved together by the swap search, each to its own node. */
#define GROUP_MAX 4
typedef struct {
	uint32_t n;
	uint32_t r[GROUP_MAX], to[GROUP_MAX];
} group_t;

/*
 * smig_pol_eval_group - the largest T of a node that moving the ranks of g
 * changes, without moving them
 * RET INFINITY when a node receiving ranks would exceed its slots or
 *     memory, or may not receive ranks
 */
double smig_pol_eval_group(state_t *st, const group_t *g);

/* smig_pol_top_two - the two largest loads on node s, rank of the first */
void smig_pol_top_two(const state_t *st, uint32_t s, double *l1, double *l2,
		      uint32_t *r1);

/*
 * smig_pol_candidates - candidate targets of r: the least-loaded nodes
 * with room, then its partners' nodes (with affinity)
 * OUT out - caller's array of max entries
 * RET how many were written
 */
uint32_t smig_pol_candidates(const state_t *st, uint32_t r, uint32_t *out,
			     uint32_t max);

/* ----------------------------------------------------------- strategies */

/*
 * smig_pol_evacuate - the mandatory moves: every rank off the nodes to be
 * left, heaviest first, each to the best node for it
 * IN  max_moves  - 0: any
 * OUT nforced    - ranks that had to leave
 * OUT left_flags - left_flag() of the nodes left, ORed
 * OUT error      - set on failure; caller frees it with g_error_free()
 * RET false when they cannot all leave
 */
bool smig_pol_evacuate(state_t *st, uint32_t max_moves, uint32_t *nforced,
		       uint32_t *left_flags, GError **error);

/* smig_pol_refine - move ranks off the slowest node while it pays */
void smig_pol_refine(state_t *st, double before, uint32_t max_moves);

/* smig_pol_prune - send moved ranks home where no node gets slowest */
void smig_pol_prune(state_t *st);

/*
 * smig_pol_greedy - longest processing time first, from scratch
 * OUT error - set on failure (may be NULL); caller frees it
 * RET false when a rank fits nowhere (the state is then unchanged)
 */
bool smig_pol_greedy(state_t *st, GError **error);

/*
 * smig_pol_comm_place - METIS partition of the affinity graph, one part per
 * usable node; RET false: dropped (METIS failed or it cannot fit)
 */
bool smig_pol_comm_place(state_t *st);

/*
 * smig_pol_swap - swap search (smig_policy_engine_swap.c): while it helps,
 * move one rank or a pair off the slowest node, alone or in exchange for
 * one rank or a pair of another node; keeps the prefix that gains most
 * IN  max_moves - 0: any
 * RET true when the placement changed
 */
bool smig_pol_swap(state_t *st, double before, uint32_t max_moves);

/*
 * smig_pol_exact - branch and bound over every placement of a small
 * instance; beats the incumbent (gain, moves) or leaves place untouched
 * IN  max_moves - 0: any
 * OUT place     - the best placement found, when true (nr entries)
 * RET true when a placement better than the incumbent was found
 */
bool smig_pol_exact(const model_t *m, double before, uint32_t max_moves,
		    double gain, uint32_t moves, uint32_t *place);

#endif /* SMIG_POLICY_ENGINE_INT_H */
