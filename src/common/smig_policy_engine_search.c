/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy_engine_search.c - the policy engine's strategies: evacuate
 * (mandatory moves), refine, prune, greedy (LPT from scratch), METIS
 * placement of the affinity graph, and the exact search of small instances
 *
 * Each works on a state (smig_policy_engine_state.c) and is deterministic;
 * smig_policy_decide() chooses among their placements.
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <metis.h>

#include "smig_error.h"
#include "smig_policy.h"
#include "smig_policy_engine_int.h"

/* Room for the candidate targets of one rank (smig_pol_candidates()). */
#define CAND_MAX (HEAP_CANDIDATES + 64)
/* Refinement tries this many of the heaviest ranks of the slowest node. */
#define REFINE_RANKS 16
/* Refinement stops within this factor of the lower bound of T. */
#define LOWER_BOUND_SLACK 1e-3

/* ------------------------------------------------------------ strategies */

typedef struct {
	uint32_t rank;
	double load;
} by_load_t;

static int cmp_by_load(const void *a, const void *b)
{
	const by_load_t *x = a, *y = b;

	if (x->load != y->load)
		return x->load > y->load ? -1 : 1;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Best node for r among candidates, else among all nodes: NONE if none. */
static uint32_t best_target(state_t *st, uint32_t r, uint32_t *cand,
			    uint32_t ncand_max, bool skip_s)
{
	const model_t *m = st->m;
	uint32_t s = st->node_of[r], best = NONE;
	double best_t = INFINITY, l1, l2, others;
	uint32_t r1, nc;

	smig_pol_top_two(st, s, &l1, &l2, &r1);
	nc = smig_pol_candidates(st, r, cand, ncand_max);
	for (int pass = 0; pass < 2 && best == NONE; pass++) {
		uint32_t count = pass ? m->nn : nc;

		for (uint32_t i = 0; i < count; i++) {
			uint32_t d = pass ? i : cand[i];
			double t;

			if (d == s || !fits(st, r, d))
				continue;
			t = smig_pol_eval_move(st, r, s, d, r1 == r ? l2 : l1,
					       &others);
			/* Left: s does not count. */
			if (skip_s)
				t = others;
			if (t < best_t ||
			    (t == best_t && best != NONE &&
			     m->snap->nodes[best].spare &&
			     !m->snap->nodes[d].spare)) {
				best_t = t;
				best = d;
			}
		}
	}
	return best;
}

/*
 * Mandatory moves: every rank on a node to be left, heaviest first, each to
 * the node where the model predicts the smallest time after it arrives.
 */
bool smig_pol_evacuate(state_t *st, uint32_t max_moves, uint32_t *nforced,
		       uint32_t *left_flags, GError **error)
{
	const model_t *m = st->m;
	const smig_policy_snapshot_t *s = m->snap;
	by_load_t *ev = g_new(by_load_t, m->nr ? m->nr : 1);
	uint32_t n = 0, *cand = g_new(uint32_t, CAND_MAX);
	uint64_t free_slots = 0;
	bool ok = false;

	*left_flags = 0;
	for (uint32_t r = 0; r < m->nr; r++) {
		if (m->bad[st->node_of[r]]) {
			const smig_policy_node_t *nd =
				&s->nodes[st->node_of[r]];

			ev[n].rank = r;
			ev[n++].load = s->ranks[r].load;
			*left_flags |= left_flag(nd);
		}
	}
	*nforced = n;
	for (uint32_t i = 0; i < m->nn; i++) {
		if (m->usable[i] && s->nodes[i].slots > st->k[i])
			free_slots += s->nodes[i].slots - st->k[i];
	}
	if (n > free_slots) {
		GString *names = g_string_new(NULL);

		for (uint32_t i = 0; i < m->nn; i++) {
			if (m->bad[i] && st->k[i])
				g_string_append_printf(names, "%s%s",
						       names->len ? "," : "",
						       s->nodes[i].name);
		}
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "%u rank%s must leave %s but only %" G_GUINT64_FORMAT " free slot%s remain%s",
			    n, n == 1 ? "" : "s", names->str, free_slots,
			    free_slots == 1 ? "" : "s",
			    free_slots == 1 ? "s" : "");
		g_string_free(names, true);
		goto out;
	}
	if (max_moves && n > max_moves) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "%u ranks must leave their nodes but max_moves=%u",
			    n, max_moves);
		goto out;
	}
	qsort(ev, n, sizeof(*ev), cmp_by_load);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t r = ev[i].rank, d;

		d = best_target(st, r, cand, CAND_MAX, true);
		if (d == NONE) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u (mem=%" G_GUINT64_FORMAT " bytes) must leave %s but no usable node has room for it",
				    r, s->ranks[r].mem,
				    s->nodes[st->node_of[r]].name);
			goto out;
		}
		smig_pol_st_move(st, r, d, false);
	}
	ok = true;
out:
	g_free(cand);
	g_free(ev);
	return ok;
}

/*
 * Refinement: while it helps, move one rank off the slowest node to the
 * node that keeps every changed node fastest. Then keep the prefix of the
 * moves that gains most (a rank moved twice counts once).
 */
void smig_pol_refine(state_t *st, double before, uint32_t max_moves)
{
	const model_t *m = st->m;
	const smig_policy_snapshot_t *s = m->snap;
	uint32_t *cand = g_new(uint32_t, CAND_MAX);
	uint32_t start = st->log->len, best_len, budget;
	by_load_t on[REFINE_RANKS];
	double best_gain;

	/* Each step strictly lowers the slowest node; bound the steps too. */
	budget = 2 * m->nr + 16;
	best_gain = smig_pol_rated_gain(s, before, st_max(st), st->nmoved,
					st->moved_image);
	best_len = start;
	/* Stop too once as many steps as led to the best gained nothing. */
	while (budget-- &&
	       st->log->len - best_len <= MAX(64, best_len - start)) {
		uint32_t src = st->top.h[0], bt = NONE, br = NONE, r1, nsrc;
		uint32_t sbt = NONE, sbr = NONE;
		double tmax = st_max(st), best_t = INFINITY, l1, l2, g;
		double side_t = INFINITY;

		if (tmax <= m->lower_bound * (1 + LOWER_BOUND_SLACK) ||
		    (max_moves && st->nmoved >= max_moves))
			break;
		smig_pol_top_two(st, src, &l1, &l2, &r1);
		/*
		 * The heaviest ranks move the slowest node most per move:
		 * all of them in list order when few, else the REFINE_RANKS
		 * first by cmp_by_load(), in order (insertion into a short
		 * sorted array, no full sort).
		 */
		nsrc = 0;
		for (uint32_t r = st->head[src]; r != NONE; r = st->next[r]) {
			by_load_t x = { r, s->ranks[r].load };
			uint32_t j = nsrc;

			if (st->k[src] <= REFINE_RANKS) {
				on[nsrc++] = x;
				continue;
			}
			if (nsrc == REFINE_RANKS &&
			    cmp_by_load(&x, &on[nsrc - 1]) >= 0)
				continue;
			if (nsrc < REFINE_RANKS)
				nsrc++;
			else
				j--;
			for (; j > 0 && cmp_by_load(&x, &on[j - 1]) < 0; j--)
				on[j] = on[j - 1];
			on[j] = x;
		}
		for (uint32_t j = 0; j < nsrc; j++) {
			uint32_t r = on[j].rank;
			uint32_t nc = smig_pol_candidates(st, r, cand,
							  CAND_MAX);

			for (uint32_t i = 0; i < nc; i++) {
				uint32_t d = cand[i];
				double t, side;

				if (d == src || !fits(st, r, d))
					continue;
				t = smig_pol_eval_move(st, r, src, d,
						       r1 == r ? l2 : l1,
						       &side);
				if (t < best_t ||
				    (t == best_t && br != NONE &&
				     s->ranks[r].image < s->ranks[br].image)) {
					best_t = t;
					bt = d;
					br = r;
				}
				if (t < tmax * (1 - 1e-9))
					continue;
				/*
				 * Sideways: src stays as slow (a rank there
				 * is slow by itself) but no other node gets
				 * as slow; emptying src may pay later.
				 */
				if (side < side_t) {
					side_t = side;
					sbt = d;
					sbr = r;
				}
			}
		}
		if (bt == NONE || best_t >= tmax * (1 - 1e-9)) {
			if (sbt == NONE || side_t >= tmax * (1 - 1e-9))
				break;
			bt = sbt;
			br = sbr;
		}
		smig_pol_st_move(st, br, bt, true);
		g = smig_pol_rated_gain(s, before, st_max(st), st->nmoved,
					st->moved_image);
		if (g > best_gain) {
			best_gain = g;
			best_len = st->log->len;
		}
	}
	/* Undo the moves after the best prefix, newest first. */
	while (st->log->len > best_len) {
		step_t step = g_array_index(st->log, step_t,
					    st->log->len - 1);

		g_array_set_size(st->log, st->log->len - 1);
		smig_pol_st_move(st, step.rank, step.from, false);
	}
	g_free(cand);
}

/*
 * Fewer moves for the same time: send moved ranks home (largest image
 * first) where that slows no node beyond the slowest one now.
 */
void smig_pol_prune(state_t *st)
{
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = m->snap->ranks;
	by_load_t *mv = g_new(by_load_t, st->nmoved ? st->nmoved : 1);
	uint32_t n = 0;

	for (uint32_t r = 0; r < m->nr && n < st->nmoved; r++) {
		if (st->node_of[r] != rk[r].node) {
			mv[n].rank = r;
			mv[n++].load = rk[r].image;
		}
	}
	qsort(mv, n, sizeof(*mv), cmp_by_load);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t r = mv[i].rank, s = st->node_of[r], o = rk[r].node;
		double l1, l2, t;
		uint32_t r1;

		if (!fits(st, r, o))
			continue;
		smig_pol_top_two(st, s, &l1, &l2, &r1);
		t = smig_pol_eval_move(st, r, s, o, r1 == r ? l2 : l1, NULL);
		if (t <= st_max(st))
			smig_pol_st_move(st, r, o, false);
	}
	g_free(mv);
}

/*
 * Longest processing time first, from scratch: ranks by load, heaviest
 * first, each to the node where it would finish first (the few least
 * loaded nodes with room and memory). Communication-blind.
 */
bool smig_pol_greedy(state_t *st, GError **error)
{
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = m->snap->ranks;
	by_load_t *order = g_new(by_load_t, m->nr ? m->nr : 1);
	uint32_t *place = g_new(uint32_t, m->nr ? m->nr : 1);
	bool use_comm = st->use_comm, ok = true;

	for (uint32_t r = 0; r < m->nr; r++) {
		order[r].rank = r;
		order[r].load = rk[r].load;
		place[r] = rk[r].node;
	}
	qsort(order, m->nr, sizeof(*order), cmp_by_load);
	/* Empty every node: all ranks wait on their node's list, unplaced. */
	st->use_comm = false;
	smig_pol_st_load(st, place);
	for (uint32_t n = 0; n < m->nn; n++) {
		st->L[n] = st->lmax[n] = st->comm[n] = 0;
		st->k[n] = 0;
		st->mem[n] = 0;
		st->top.key[n] = 0;
		st->low.key[n] = m->usable[n] ? 0 : INFINITY;
	}
	smig_pol_heap_build(&st->top);
	smig_pol_heap_build(&st->low);
	for (uint32_t i = 0; i < m->nr; i++) {
		uint32_t r = order[i].rank, best = NONE;
		double best_t = INFINITY;

		for (int pass = 0; pass < 2 && best == NONE; pass++) {
			uint32_t count = pass ? m->nn :
				MIN(st->low.n, HEAP_CANDIDATES);

			for (uint32_t j = 0; j < count; j++) {
				uint32_t d = pass ? j : st->low.h[j];
				double t;

				if (!fits(st, r, d))
					continue;
				t = node_time(m, d, st->k[d] + 1,
					      st->L[d] + rk[r].load,
					      MAX(st->lmax[d], rk[r].load), 0);
				if (t < best_t) {
					best_t = t;
					best = d;
				}
			}
		}
		if (best == NONE) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u (mem=%" G_GUINT64_FORMAT " bytes) fits on no usable node",
				    r, rk[r].mem);
			ok = false;
			break;
		}
		place[r] = best;
		st->L[best] += rk[r].load;
		st->lmax[best] = MAX(st->lmax[best], rk[r].load);
		st->k[best]++;
		st->mem[best] += rk[r].mem;
		st->low.key[best] = has_room(st, best) ?
			node_time(m, best, st->k[best], st->L[best],
				  st->lmax[best], 0) : INFINITY;
		smig_pol_heap_fix(&st->low, best);
	}
	st->use_comm = use_comm;
	if (ok)
		smig_pol_st_load(st, place);
	g_free(place);
	g_free(order);
	return ok;
}

/* Room problems left by a global placement: move the lightest ranks out. */
static bool repair(state_t *st)
{
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = m->snap->ranks;
	uint32_t *cand = g_new(uint32_t, CAND_MAX);
	bool ok = true;

	for (uint32_t n = 0; n < m->nn && ok; n++) {
		while (st->k[n] > m->snap->nodes[n].slots ||
		       st->mem[n] > m->mem_cap[n] ||
		       (m->bad[n] && st->k[n])) {
			uint32_t r = st->head[n], d;

			for (uint32_t q = r; q != NONE; q = st->next[q]) {
				if (rk[q].load < rk[r].load)
					r = q;
			}
			d = best_target(st, r, cand, CAND_MAX, true);
			if (d == NONE) {
				ok = false;
				break;
			}
			smig_pol_st_move(st, r, d, false);
		}
	}
	g_free(cand);
	return ok;
}

typedef struct {
	uint64_t key;		/* part << 32 | node */
	uint64_t count;
} overlap_t;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

static int cmp_overlap(const void *a, const void *b)
{
	const overlap_t *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

/*
 * Communication-aware placement: METIS k-way partition of the affinity
 * graph, one part per usable node with a target weight proportional to its
 * capacity; parts go to nodes of equal capacity and speed so that as many
 * ranks as possible stay where they are. RET false: METIS failed or the
 * result cannot be made to fit (the candidate is dropped).
 */
bool smig_pol_comm_place(state_t *st)
{
	const model_t *m = st->m;
	const smig_policy_snapshot_t *s = m->snap;
	uint32_t nu = 0, *unode, *part_node, *place = NULL;
	idx_t nvtxs = m->nr, ncon = 1, nparts, objval, *xadj = NULL;
	idx_t *adjncy = NULL, *vwgt = NULL, *adjwgt = NULL, *part = NULL;
	idx_t options[METIS_NOPTIONS];
	real_t *tpwgts = NULL, ubvec = 1.03;
	double maxl = 0, maxw = 0, sumcap = 0;
	uint64_t *keys = NULL, nkeys = 0;
	overlap_t *ov = NULL;
	bool *node_taken = NULL, *part_done = NULL, ok = false;
	uint64_t nov = 0;

	unode = g_new(uint32_t, m->nn);
	for (uint32_t n = 0; n < m->nn; n++) {
		if (m->usable[n]) {
			unode[nu++] = n;
			sumcap += m->cap[n];
		}
	}
	part_node = g_new(uint32_t, nu ? nu : 1);
	if (nu < 2 || m->nr < 2 || m->xadj[m->nr] > INT32_MAX)
		goto out;
	nparts = nu;
	xadj = g_new(idx_t, m->nr + 1);
	adjncy = g_new(idx_t, m->xadj[m->nr] ? m->xadj[m->nr] : 1);
	adjwgt = g_new(idx_t, m->xadj[m->nr] ? m->xadj[m->nr] : 1);
	vwgt = g_new(idx_t, m->nr);
	part = g_new(idx_t, m->nr);
	tpwgts = g_new(real_t, nu);
	for (uint32_t r = 0; r < m->nr; r++)
		maxl = MAX(maxl, s->ranks[r].load);
	for (uint64_t i = 0; i < m->xadj[m->nr]; i++)
		maxw = MAX(maxw, m->w[i]);
	for (uint32_t r = 0; r <= m->nr; r++)
		xadj[r] = m->xadj[r];
	for (uint64_t i = 0; i < m->xadj[m->nr]; i++) {
		adjncy[i] = m->adj[i];
		adjwgt[i] = 1 + (idx_t) (999 * (maxw > 0 ? m->w[i] / maxw : 0));
	}
	for (uint32_t r = 0; r < m->nr; r++)
		vwgt[r] = 1 + (idx_t) (999 * (maxl > 0 ?
					     s->ranks[r].load / maxl : 0));
	for (uint32_t p = 0; p < nu; p++)
		tpwgts[p] = sumcap > 0 ? m->cap[unode[p]] / sumcap : 1.0 / nu;
	METIS_SetDefaultOptions(options);
	options[METIS_OPTION_SEED] = 1;
	options[METIS_OPTION_NUMBERING] = 0;
	if (METIS_PartGraphKway(&nvtxs, &ncon, xadj, adjncy, vwgt, NULL,
				adjwgt, &nparts, tpwgts, &ubvec, options,
				&objval, part) != METIS_OK)
		goto out;

	/* Overlap of each part with each current node of the same kind. */
	keys = g_new(uint64_t, m->nr);
	for (uint32_t r = 0; r < m->nr; r++) {
		uint32_t p = part[r], n = st->node_of[r], home = unode[p];

		if (m->usable[n] && m->cap[n] == m->cap[home] &&
		    s->nodes[n].speed == s->nodes[home].speed)
			keys[nkeys++] = (uint64_t) p << 32 | n;
	}
	qsort(keys, nkeys, sizeof(*keys), cmp_u64);
	ov = g_new(overlap_t, nkeys ? nkeys : 1);
	for (uint64_t i = 0; i < nkeys; i++) {
		if (nov && ov[nov - 1].key == keys[i]) {
			ov[nov - 1].count++;
		} else {
			ov[nov].key = keys[i];
			ov[nov++].count = 1;
		}
	}
	qsort(ov, nov, sizeof(*ov), cmp_overlap);
	node_taken = g_new0(bool, m->nn);
	part_done = g_new0(bool, nu);
	for (uint64_t i = 0; i < nov; i++) {
		uint32_t p = ov[i].key >> 32, n = ov[i].key & 0xffffffffu;

		if (part_done[p] || node_taken[n])
			continue;
		part_done[p] = node_taken[n] = true;
		part_node[p] = n;
	}
	/* Parts left: their own node, else the first free one of its kind. */
	for (uint32_t p = 0; p < nu; p++) {
		uint32_t home = unode[p];

		if (part_done[p])
			continue;
		if (node_taken[home]) {
			for (uint32_t j = 0; j < nu; j++) {
				uint32_t n = unode[j];

				if (!node_taken[n] &&
				    m->cap[n] == m->cap[home] &&
				    s->nodes[n].speed == s->nodes[home].speed) {
					home = n;
					break;
				}
			}
		}
		part_node[p] = home;
		node_taken[home] = true;
	}
	place = g_new(uint32_t, m->nr);
	for (uint32_t r = 0; r < m->nr; r++)
		place[r] = part_node[part[r]];
	smig_pol_st_load(st, place);
	ok = repair(st);
out:
	g_free(place);
	g_free(node_taken);
	g_free(part_done);
	g_free(ov);
	g_free(keys);
	g_free(xadj);
	g_free(adjncy);
	g_free(adjwgt);
	g_free(vwgt);
	g_free(part);
	g_free(tpwgts);
	g_free(part_node);
	g_free(unode);
	return ok;
}

/* ------------------------------------------------------- exact search */

/*
 * Small instances: a branch and bound over every placement finds the best
 * plan outright, by the rule cand_better() uses (net gain, then fewer
 * moves). Ranks go heaviest first, each to its own node first, so that
 * good bounds come early; a partial placement's slowest node bounds every
 * completion from below, since adding a rank never makes a node faster.
 */
/* Searched when nnodes ^ nranks is at most this (4 nodes, 10 ranks). */
#define EXACT_MAX_LEAVES (1u << 20)
/* Search nodes visited at most: bounds the time whatever the pruning. */
#define EXACT_MAX_VISITS 1000000

typedef struct {
	const model_t *m;
	double before;
	uint32_t max_moves;
	uint32_t *order;	/* ranks, heaviest first */
	uint32_t *node_order;	/* nodes that are not spares, then spares */
	uint32_t *node_of;	/* NONE: not placed yet */
	double *L, *lmax, *comm;
	uint32_t *k;
	uint64_t *mem;
	uint32_t nmoved;
	double image;
	uint64_t visits;
	/* The incumbent: */
	uint32_t *best;
	double best_gain;
	uint32_t best_moves;
	bool found;		/* best beats the first bound */
} exact_t;

static int cmp_load_desc(const void *a, const void *b, void *data)
{
	const smig_policy_rank_t *rk = data;
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	if (rk[x].load != rk[y].load)
		return rk[x].load > rk[y].load ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* Is (gain, moves) better than the incumbent, as cand_better() rules? */
static bool exact_better(const exact_t *ex, double gain, uint32_t moves)
{
	double eps = 1e-9 * MAX(1.0, fabs(ex->best_gain));

	if (gain > ex->best_gain + eps)
		return true;
	if (gain < ex->best_gain - eps)
		return false;
	return moves < ex->best_moves;
}

/* Slowest node of the partial placement: a bound on any completion. */
static double exact_bound(const exact_t *ex)
{
	const model_t *m = ex->m;
	double t = m->lower_bound;

	for (uint32_t n = 0; n < m->nn; n++)
		t = MAX(t, node_time(m, n, ex->k[n], ex->L[n], ex->lmax[n],
				     ex->comm[n]));
	return t;
}

/* Traffic of rank r on node n with its placed partners, both ends. */
static void exact_comm(exact_t *ex, uint32_t r, uint32_t n, double sign)
{
	const model_t *m = ex->m;

	for (uint64_t i = m->xadj[r]; i < m->xadj[r + 1]; i++) {
		uint32_t o = ex->node_of[m->adj[i]];
		double c;

		if (o == NONE)
			continue;
		c = sign * m->w[i] * dist_cost(m, n, o);
		ex->comm[n] += c;
		ex->comm[o] += c;
	}
}

static void exact_dfs(exact_t *ex, uint32_t depth)
{
	const model_t *m = ex->m;
	const smig_policy_rank_t *rk = m->snap->ranks;
	uint32_t r, home;

	if (ex->visits++ >= EXACT_MAX_VISITS)
		return;
	/* Completions only get slower and move more: can one still win? */
	if (!exact_better(ex, smig_pol_rated_gain(m->snap, ex->before,
						  exact_bound(ex), ex->nmoved,
						  ex->image), ex->nmoved))
		return;
	if (ex->max_moves && ex->nmoved > ex->max_moves)
		return;
	if (depth == m->nr) {
		double gain = smig_pol_rated_gain(m->snap, ex->before,
						  exact_bound(ex), ex->nmoved,
						  ex->image);

		if (exact_better(ex, gain, ex->nmoved)) {
			memcpy(ex->best, ex->node_of,
			       sizeof(uint32_t) * m->nr);
			ex->best_gain = gain;
			ex->best_moves = ex->nmoved;
			ex->found = true;
		}
		return;
	}
	r = ex->order[depth];
	home = rk[r].node;
	for (uint32_t i = 0; i <= m->nn; i++) {
		/*
		 * Its own node first, then the others, spares last: among
		 * equal plans the first found stands, so ties go to nodes
		 * that are not spares, as in the other strategies.
		 */
		uint32_t n = i == 0 ? home : ex->node_order[i - 1];
		double lmax;
		bool moved = n != home;

		if ((i > 0 && n == home) || !m->usable[n] ||
		    ex->k[n] >= m->snap->nodes[n].slots ||
		    ex->mem[n] + rk[r].mem > m->mem_cap[n])
			continue;
		lmax = ex->lmax[n];
		ex->L[n] += rk[r].load;
		ex->lmax[n] = MAX(lmax, rk[r].load);
		ex->k[n]++;
		ex->mem[n] += rk[r].mem;
		ex->nmoved += moved;
		ex->image += moved ? rk[r].image : 0;
		exact_comm(ex, r, n, 1);
		ex->node_of[r] = n;
		exact_dfs(ex, depth + 1);
		ex->node_of[r] = NONE;
		exact_comm(ex, r, n, -1);
		ex->image -= moved ? rk[r].image : 0;
		ex->nmoved -= moved;
		ex->mem[n] -= rk[r].mem;
		ex->k[n]--;
		ex->lmax[n] = lmax;
		ex->L[n] -= rk[r].load;
	}
}

/*
 * Exact search on a small instance. Beats the incumbent (gain, moves) or
 * leaves place untouched.
 * IN  max_moves - 0: any
 * OUT place     - the best placement found, when true (nr entries)
 * RET true when a placement better than the incumbent was found
 */
bool smig_pol_exact(const model_t *m, double before, uint32_t max_moves,
		    double gain, uint32_t moves, uint32_t *place)
{
	exact_t ex = { 0 };
	uint64_t leaves = 1;

	for (uint32_t r = 0; r < m->nr; r++) {
		leaves *= m->nn;
		if (leaves > EXACT_MAX_LEAVES)
			return false;
	}
	if (!m->nr)
		return false;
	ex.m = m;
	ex.before = before;
	ex.max_moves = max_moves;
	ex.order = g_new(uint32_t, m->nr);
	ex.node_order = g_new(uint32_t, m->nn);
	for (uint32_t pass = 0, i = 0; pass < 2; pass++) {
		for (uint32_t n = 0; n < m->nn; n++) {
			if (m->snap->nodes[n].spare == (pass == 1))
				ex.node_order[i++] = n;
		}
	}
	ex.node_of = g_new(uint32_t, m->nr);
	ex.best = g_new(uint32_t, m->nr);
	ex.L = g_new0(double, m->nn);
	ex.lmax = g_new0(double, m->nn);
	ex.comm = g_new0(double, m->nn);
	ex.k = g_new0(uint32_t, m->nn);
	ex.mem = g_new0(uint64_t, m->nn);
	ex.best_gain = gain;
	ex.best_moves = moves;
	for (uint32_t r = 0; r < m->nr; r++) {
		ex.order[r] = r;
		ex.node_of[r] = NONE;
	}
	g_qsort_with_data(ex.order, m->nr, sizeof(uint32_t), cmp_load_desc,
			  (void *) m->snap->ranks);
	exact_dfs(&ex, 0);
	if (ex.found)
		memcpy(place, ex.best, sizeof(uint32_t) * m->nr);
	g_free(ex.order);
	g_free(ex.node_order);
	g_free(ex.node_of);
	g_free(ex.best);
	g_free(ex.L);
	g_free(ex.lmax);
	g_free(ex.comm);
	g_free(ex.k);
	g_free(ex.mem);
	return ex.found;
}
