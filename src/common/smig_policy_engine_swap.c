/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy_engine_swap.c - the swap search: a local search that moves
 * ranks off the slowest node one at a time, in pairs (a rank with the
 * partner it talks to most there), or exchanges them with one rank or a
 * pair of another node, in the manner of Kernighan-Lin and
 * Fiduccia-Mattheyses but on the policy's own objective
 *
 * Single moves stop where every node that could take a rank is full, or
 * where moving one rank of a pair costs more traffic than it saves; an
 * exchange keeps the slots as they are and a pair moved whole keeps its
 * traffic on one node. Deterministic: ranks and nodes in index order, ties
 * to the group found first; the work is bounded by a count of evaluations.
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_policy.h"
#include "smig_policy_engine_int.h"

/* Every usable node is a target up to this many nodes, else candidates. */
#define SWAP_ALL_NODES 16
/* The heaviest ranks of the slowest node tried, and of a target node. */
#define SWAP_SRC_RANKS 16
#define SWAP_DST_RANKS 16
/*
 * Evaluations of one call at most: bounds its time whatever the size (some
 * 10 ms a call at 256-4096 ranks here; the instances of bench-policy's
 * table 1 need fewer than 5,000).
 */
#define SWAP_MAX_EVALS 20000
/* Steps without a better prefix before the search stops, at least. */
#define SWAP_STALL 32
/* The search stops within this factor of the lower bound of T. */
#define SWAP_BOUND_SLACK 1e-3
/* Room for the candidate targets of one rank (smig_pol_candidates()). */
#define SWAP_CAND_MAX (HEAP_CANDIDATES + 64)

/* The partner r talks to most on its own node, NONE if none. */
static uint32_t pair_of(const state_t *st, uint32_t r)
{
	const model_t *m = st->m;
	uint32_t best = NONE, n = st->node_of[r];
	double bw = 0;

	for (uint64_t i = m->xadj[r]; i < m->xadj[r + 1]; i++) {
		uint32_t q = m->adj[i];

		if (q != r && st->node_of[q] == n && m->w[i] > bw) {
			bw = m->w[i];
			best = q;
		}
	}
	return best;
}

/* Is rank a before rank b: heavier first, then lower index. */
static bool heavier(const smig_policy_rank_t *rk, uint32_t a, uint32_t b)
{
	if (rk[a].load != rk[b].load)
		return rk[a].load > rk[b].load;
	return a < b;
}

/*
 * The heaviest ranks of node n, at most max, heaviest first (insertion
 * into a short sorted array, no full sort). RET how many.
 */
static uint32_t heaviest(const state_t *st, uint32_t n, uint32_t *out,
			 uint32_t max)
{
	const smig_policy_rank_t *rk = st->m->snap->ranks;
	uint32_t cnt = 0;

	for (uint32_t r = st->head[n]; r != NONE; r = st->next[r]) {
		uint32_t j;

		if (cnt == max && !heavier(rk, r, out[cnt - 1]))
			continue;
		j = cnt < max ? cnt++ : cnt - 1;
		for (; j > 0 && heavier(rk, r, out[j - 1]); j--)
			out[j] = out[j - 1];
		out[j] = r;
	}
	return cnt;
}

/* Moves the group adds (a rank sent home counts -1). */
static int group_moves(const state_t *st, const group_t *g)
{
	const smig_policy_rank_t *rk = st->m->snap->ranks;
	int d = 0;

	for (uint32_t i = 0; i < g->n; i++) {
		uint32_t r = g->r[i], home = rk[r].node;

		d += (g->to[i] != home) - (st->node_of[r] != home);
	}
	return d;
}

/* Sum of the loads of the first n ranks of a group. */
static double group_load(const smig_policy_rank_t *rk, const group_t *g,
			 uint32_t from, uint32_t n)
{
	double l = 0;

	for (uint32_t i = from; i < from + n; i++)
		l += rk[g->r[i]].load;
	return l;
}

typedef struct {
	state_t *st;
	uint32_t src, max_moves;
	double tmax;
	uint64_t evals;
	bool no_comm;		/* no rank of the job has a partner */
	/* The best group so far: */
	group_t best;
	double best_t;
	int best_dm;
} swap_t;

/* Rate group g; keep it when it beats the best so far. */
static void swap_try(swap_t *sw, const group_t *g, uint32_t na)
{
	state_t *st = sw->st;
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = m->snap->ranks;
	uint32_t d = g->to[0];
	double la = group_load(rk, g, 0, na);
	double lb = group_load(rk, g, na, g->n - na), t;
	int dm = group_moves(st, g);

	if (sw->max_moves && (int64_t) st->nmoved + dm > sw->max_moves)
		return;
	/*
	 * Compute alone bounds T from below (traffic only adds to it): skip
	 * the groups that cannot beat the best without evaluating them.
	 */
	if ((st->L[d] + la - lb) / m->cap[d] >= sw->best_t ||
	    (st->L[sw->src] - la + lb) / m->cap[sw->src] >= sw->best_t)
		return;
	/* Without traffic, an exchange must lighten the slowest node. */
	if (sw->no_comm && lb >= la)
		return;
	sw->evals++;
	t = smig_pol_eval_group(st, g);
	if (t < sw->best_t || (t == sw->best_t && dm < sw->best_dm)) {
		sw->best = *g;
		sw->best_t = t;
		sw->best_dm = dm;
	}
}

/*
 * Groups that take a (one rank of the slowest node, or it and its pair) to
 * node d: alone, or in exchange for one rank or a pair of d.
 */
static void swap_node(swap_t *sw, const group_t *a, uint32_t d,
		      uint32_t *on, bool pairs)
{
	state_t *st = sw->st;
	group_t g = *a;
	uint32_t non;

	for (uint32_t i = 0; i < a->n; i++)
		g.to[i] = d;
	swap_try(sw, &g, a->n);
	non = heaviest(st, d, on, SWAP_DST_RANKS);
	for (uint32_t j = 0; j < non && sw->evals < SWAP_MAX_EVALS; j++) {
		uint32_t q = on[j], p;

		g.n = a->n + 1;
		g.r[a->n] = q;
		g.to[a->n] = sw->src;
		swap_try(sw, &g, a->n);
		if (!pairs)
			continue;
		p = pair_of(st, q);
		if (p == NONE)
			continue;
		g.n = a->n + 2;
		g.r[a->n + 1] = p;
		g.to[a->n + 1] = sw->src;
		swap_try(sw, &g, a->n);
	}
}

/*
 * smig_pol_swap - from the state's placement, while it helps: the group
 * move or exchange that leaves every node it changes fastest, if all of
 * them end below the slowest node now; then keep the prefix of the moves
 * that gains most
 * IN max_moves - 0: any
 * RET true when the placement changed
 */
bool smig_pol_swap(state_t *st, double before, uint32_t max_moves)
{
	const model_t *m = st->m;
	const smig_policy_snapshot_t *s = m->snap;
	uint32_t *src_on = g_new(uint32_t, SWAP_SRC_RANKS);
	uint32_t *dst_on = g_new(uint32_t, SWAP_DST_RANKS);
	uint32_t *cand = g_new(uint32_t, SWAP_CAND_MAX);
	uint32_t start = st->log->len, best_len = start, budget;
	uint32_t steps = 0, best_steps = 0;
	swap_t sw = { .st = st, .max_moves = max_moves };
	double best_gain;

	sw.no_comm = !st->use_comm || !m->xadj[m->nr];
	budget = 2 * m->nr + 16;
	best_gain = smig_pol_rated_gain(s, before, st_max(st), st->nmoved,
					st->moved_image);
	/* Stop too once as many steps as led to the best gained nothing. */
	while (budget-- && sw.evals < SWAP_MAX_EVALS &&
	       steps - best_steps <= MAX(SWAP_STALL, best_steps)) {
		uint32_t nsrc;
		double g;

		sw.src = st->top.h[0];
		sw.tmax = st_max(st);
		if (sw.tmax <= m->lower_bound * (1 + SWAP_BOUND_SLACK))
			break;
		/* Every changed node must end below the slowest one now. */
		sw.best_t = sw.tmax * (1 - 1e-9);
		sw.best.n = 0;
		sw.best_dm = 0;
		nsrc = heaviest(st, sw.src, src_on, SWAP_SRC_RANKS);
		for (uint32_t j = 0; j < nsrc && sw.evals < SWAP_MAX_EVALS;
		     j++) {
			uint32_t r = src_on[j], p = pair_of(st, r), nc;

			for (uint32_t two = 0; two < 2; two++) {
				group_t a = { .n = 1, .r = { r } };

				if (two) {
					if (p == NONE)
						break;
					a.n = 2;
					a.r[1] = p;
				}
				if (m->nn <= SWAP_ALL_NODES) {
					for (uint32_t d = 0; d < m->nn; d++) {
						if (d != sw.src &&
						    m->usable[d])
							swap_node(&sw, &a, d,
								  dst_on,
								  !sw.no_comm);
					}
					continue;
				}
				nc = smig_pol_candidates(st, r, cand,
							 SWAP_CAND_MAX);
				for (uint32_t i = 0; i < nc; i++) {
					if (cand[i] != sw.src)
						swap_node(&sw, &a, cand[i],
							  dst_on,
							  !sw.no_comm);
				}
			}
		}
		if (!sw.best.n)
			break;
		for (uint32_t i = 0; i < sw.best.n; i++)
			smig_pol_st_move(st, sw.best.r[i], sw.best.to[i], true);
		steps++;
		g = smig_pol_rated_gain(s, before, st_max(st), st->nmoved,
					st->moved_image);
		if (g > best_gain) {
			best_gain = g;
			best_len = st->log->len;
			best_steps = steps;
		}
	}
	/* Undo the moves after the best prefix, newest first. */
	while (st->log->len > best_len) {
		step_t step = g_array_index(st->log, step_t,
					    st->log->len - 1);

		g_array_set_size(st->log, st->log->len - 1);
		smig_pol_st_move(st, step.rank, step.from, false);
	}
	g_free(src_on);
	g_free(dst_on);
	g_free(cand);
	return best_len > start;
}
