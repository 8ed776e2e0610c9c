/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy_engine.c - the policy engine: runs the strategies, rates
 * their placements and writes the plan (smig_policy_decide())
 *
 * The model (doc/design.md, "Policy"): a bulk-synchronous job runs at the
 * pace of its slowest node. Node n with ranks R(n):
 *   compute(n) = max(sum load / (speed * (cores - background)),
 *                    max load / speed)          (a rank uses one core)
 *   comm(n)    = sum over ranks r in R(n), partners q of r:
 *                bytes(r, q) / rate * byte_cost[distance(n, node(q))]
 *   T(n)       = compute(n) + comm(n);  iteration time T = max T(n)
 * A plan costs relaunch + image bytes of moved ranks / image_bw and gains
 * remaining * (1 - T_after / T_before) minus that cost.
 *
 * Strategies work on one "state" (a placement with per-node sums, two
 * indexed heaps of nodes, a move log) and are deterministic: every loop
 * runs in index order and every tie is broken by index. The model, the
 * state and the strategies live in their own files, listed in
 * smig_policy_engine_int.h.
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_policy.h"
#include "smig_policy_engine_int.h"

/* The default partitions the affinity graph when comm is this share of T. */
#define COMM_SHARE_FOR_METIS 0.05
/*
 * Greedy LPT from scratch moves nearly every rank, which pays only for
 * small jobs; beyond this many ranks the default leaves it out.
 */
#define GREEDY_MAX_RANKS 4096
/*
 * The swap search tries many exchanges a step; beyond this many ranks the
 * default leaves it out (its decision time is a goal: bench-policy).
 */
#define SWAP_MAX_RANKS 4096

/* ----------------------------------------------------------------- plan */

/*
 * smig_policy_params_init - default parameters
 * OUT params - caller-owned storage
 */
void smig_policy_params_init(smig_policy_params_t *params)
{
	memset(params, 0, sizeof(*params));
	params->strategy = SMIG_POLICY_DEFAULT;
	params->max_moves = 0;
	params->min_gain = 60;
	params->hysteresis = 0.05;
}

/* smig_policy_strategy_name - name of a strategy (static) */
const char *smig_policy_strategy_name(smig_policy_strategy_t strategy)
{
	switch (strategy) {
	case SMIG_POLICY_DEFAULT:
		return "default";
	case SMIG_POLICY_EVACUATE:
		return "evacuate";
	case SMIG_POLICY_REFINE:
		return "refine";
	case SMIG_POLICY_COMM:
		return "comm";
	case SMIG_POLICY_GREEDY:
		return "greedy";
	case SMIG_POLICY_BLIND:
		return "blind";
	}
	return "unknown";
}

/* A candidate plan: a placement and how it rates. */
typedef struct {
	const char *name;
	uint32_t *place;
	uint32_t nmoved;
	double image, after, gain;
	uint32_t worst;		/* its slowest node */
	double worst_comm;	/* and that node's communication time */
} cand_t;

/* Rate the state's placement (exactly, from scratch) into c. */
static void cand_take(cand_t *c, const char *name, const state_t *st,
		      double before, double *L, double *lmax, double *comm,
		      uint32_t *k)
{
	const model_t *m = st->m;

	c->name = name;
	c->place = g_memdup2(st->node_of, sizeof(uint32_t) *
					  (m->nr ? m->nr : 1));
	c->nmoved = st->nmoved;
	c->image = st->moved_image;
	c->after = smig_pol_place_time(m, c->place, L, lmax, comm, k,
				       &c->worst, &c->worst_comm);
	c->gain = smig_pol_rated_gain(m->snap, before, c->after, c->nmoved,
				      c->image);
}

/* Is candidate a better than b: gain, then fewer moves, then first. */
static bool cand_better(const cand_t *a, const cand_t *b)
{
	double eps = 1e-9 * MAX(1.0, fabs(b->gain));

	if (!b->place)
		return true;
	if (a->gain > b->gain + eps)
		return true;
	if (a->gain < b->gain - eps)
		return false;
	return a->nmoved < b->nmoved;
}

/*
 * The default's swap search from the placement of the candidate just
 * taken (the state holds it): a candidate of its own, name, when it
 * changed the placement, kept when it is better than the best so far.
 */
static void cand_swap(cand_t *best, const char *name, state_t *st,
		      double before, uint32_t max_moves, double *L,
		      double *lmax, double *comm, uint32_t *k)
{
	cand_t c;

	if (st->m->nr > SWAP_MAX_RANKS || !smig_pol_swap(st, before, max_moves))
		return;
	smig_pol_prune(st);
	cand_take(&c, name, st, before, L, lmax, comm, k);
	if ((!max_moves || c.nmoved <= max_moves) && cand_better(&c, best)) {
		g_free(best->place);
		*best = c;
	} else {
		g_free(c.place);
	}
}

static char *fmt_bytes(double b)
{
	if (b >= 1e9)
		return g_strdup_printf("%.1f GB", b / 1e9);
	if (b >= 1e6)
		return g_strdup_printf("%.1f MB", b / 1e6);
	return g_strdup_printf("%.0f bytes", b);
}

/* "node1 (1.2 s/iteration: compute 1 s, communication 0.2 s)" */
static void describe_node(GString *s, const model_t *m, uint32_t n,
			  double t, double comm)
{
	g_string_append_printf(s, "%s (%.3g s/iteration: compute %.3g s, communication %.3g s)",
			       m->snap->nodes[n].name, t, t - comm, comm);
}

/*
 * Bytes per iteration of a placement by distance (dist_level()): by[d] for
 * d < ncost, each pair counted once.
 */
static void level_bytes(const model_t *m, const uint32_t *place, double *by)
{
	memset(by, 0, sizeof(double) * m->ncost);
	for (uint32_t r = 0; r < m->nr; r++)
		for (uint64_t e = m->xadj[r]; e < m->xadj[r + 1]; e++)
			if (m->adj[e] > r)
				by[dist_level(m, place[r], place[m->adj[e]])] +=
					m->w[e];
}

/* "under one leaf switch", "via a level-1 switch", "across no switch" */
static char *level_name(const model_t *m, uint32_t d)
{
	if (d == 0)
		return g_strdup("on one node");
	if (d == 1)
		return g_strdup("under one leaf switch");
	if (d < m->ncost - 1)
		return g_strdup_printf("via a level-%u switch", d - 1);
	return g_strdup("with no common switch");
}

/*
 * With switch levels: the plan's traffic by distance in words, and whether
 * the levels decided it: its drop in communication seconds (all pairs, at
 * the levels' costs) is more than twice what a flat network (every byte
 * between two nodes at the cost of one leaf switch) would see. RET true
 * if the levels decided
 */
static bool describe_levels(GString *why, const model_t *m,
			    const uint32_t *before, const uint32_t *after)
{
	double *b = g_new(double, m->ncost), *a = g_new(double, m->ncost);
	double topo_drop = 0, flat_drop = 0;
	bool first = true;

	level_bytes(m, before, b);
	level_bytes(m, after, a);
	g_string_append(why, " Topology (switch levels): bytes per iteration ");
	for (uint32_t d = 0; d < m->ncost; d++) {
		char *name, *x, *y;

		topo_drop += (b[d] - a[d]) * m->cost[d];
		if (d)
			flat_drop += (b[d] - a[d]) * m->cost[1];
		if (b[d] <= 0 && a[d] <= 0)
			continue;
		name = level_name(m, d);
		x = fmt_bytes(b[d]);
		y = fmt_bytes(a[d]);
		g_string_append_printf(why, "%s%s %s -> %s", first ? "" : ", ",
				       name, x, y);
		first = false;
		g_free(name);
		g_free(x);
		g_free(y);
	}
	if (first)
		g_string_append(why, "none");
	g_string_append_printf(why, "; communication %.3g s -> %.3g s less per iteration than on a flat network.",
			       topo_drop, flat_drop);
	g_free(b);
	g_free(a);
	return topo_drop > 0 && topo_drop > 2 * flat_drop;
}

static const char *left_reason(uint32_t flags)
{
	if (flags & NODE_BAD)
		return smig_node_flags_reason(flags & NODE_BAD);
	return "excluded";
}

/*
 * smig_policy_decide - where the ranks should run: see smig_policy.h
 * RET new plan, caller frees with smig_plan_free(); NULL on error (set)
 */
smig_plan_t *smig_policy_decide(const smig_policy_snapshot_t *snap,
				const smig_policy_params_t *params,
				GError **error)
{
	smig_policy_params_t defaults;
	model_t m;
	state_t st;
	cand_t best = { 0 }, c;
	uint32_t *evac_place = NULL, nforced = 0, left_flags = 0;
	double before, comm_part, *L, *lmax, *comm;
	uint32_t before_worst;
	uint32_t *k;
	smig_plan_t *plan = NULL;
	smig_policy_strategy_t strat;
	bool use_comm, swaps, accept, by_levels = false;
	GString *why;

	if (!params) {
		smig_policy_params_init(&defaults);
		params = &defaults;
	}
	if (!finite_ge0(params->min_gain)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "min_gain=%g: not a finite number >= 0",
			    params->min_gain);
		return NULL;
	}
	if (!finite_ge0(params->hysteresis) || params->hysteresis >= 1) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "hysteresis=%g: not a finite number in [0, 1)",
			    params->hysteresis);
		return NULL;
	}
	if ((unsigned) params->strategy > SMIG_POLICY_BLIND) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "strategy=%d: not a smig_policy_strategy_t",
			    (int) params->strategy);
		return NULL;
	}
	if (!smig_pol_model_init(&m, snap, error)) {
		smig_pol_model_fini(&m);
		return NULL;
	}
	strat = params->strategy;
	use_comm = strat != SMIG_POLICY_BLIND && strat != SMIG_POLICY_GREEDY;
	/* The default's own search (blind: the default, traffic ignored). */
	swaps = strat == SMIG_POLICY_DEFAULT || strat == SMIG_POLICY_BLIND;
	L = g_new(double, m.nn);
	lmax = g_new(double, m.nn);
	comm = g_new(double, m.nn);
	k = g_new(uint32_t, m.nn);
	smig_pol_st_init(&st, &m, use_comm);
	before = smig_pol_place_time(&m, st.node_of, L, lmax, comm, k,
				     &before_worst, &comm_part);
	why = g_string_new(NULL);

	if (strat == SMIG_POLICY_GREEDY) {
		if (!smig_pol_greedy(&st, error))
			goto out;
		cand_take(&best, "greedy", &st, before, L, lmax, comm, k);
		nforced = 0;
		for (uint32_t r = 0; r < m.nr; r++) {
			uint32_t n = snap->ranks[r].node;

			if (m.bad[n]) {
				nforced++;
				left_flags |= left_flag(&snap->nodes[n]);
			}
		}
		if (nforced && params->max_moves &&
		    best.nmoved > params->max_moves) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "greedy placement moves %u ranks but max_moves=%u",
				    best.nmoved, params->max_moves);
			goto out;
		}
		goto decided;
	}

	if (!smig_pol_evacuate(&st, params->max_moves, &nforced, &left_flags,
			       error))
		goto out;
	evac_place = g_memdup2(st.node_of,
			       sizeof(uint32_t) * (m.nr ? m.nr : 1));
	cand_take(&best, "evacuate", &st, before, L, lmax, comm, k);
	if (strat == SMIG_POLICY_EVACUATE)
		goto decided;

	/* Refinement from the evacuated placement. */
	smig_pol_refine(&st, before, params->max_moves);
	smig_pol_prune(&st);
	cand_take(&c, "refine", &st, before, L, lmax, comm, k);
	if (cand_better(&c, &best)) {
		g_free(best.place);
		best = c;
	} else {
		g_free(c.place);
	}
	if (strat == SMIG_POLICY_REFINE)
		goto decided;
	if (swaps)
		cand_swap(&best, "refine+swap", &st, before,
			  params->max_moves, L, lmax, comm, k);

	/* Communication-aware global placement, when traffic matters. */
	if (strat == SMIG_POLICY_COMM ||
	    (strat == SMIG_POLICY_DEFAULT && before > 0 &&
	     comm_part >= COMM_SHARE_FOR_METIS * before)) {
		smig_pol_st_load(&st, evac_place);
		if (smig_pol_comm_place(&st)) {
			smig_pol_refine(&st, before, params->max_moves);
			smig_pol_prune(&st);
			cand_take(&c, "comm", &st, before, L, lmax, comm, k);
			if ((!params->max_moves ||
			     c.nmoved <= params->max_moves) &&
			    (strat == SMIG_POLICY_COMM ||
			     cand_better(&c, &best))) {
				g_free(best.place);
				best = c;
			} else {
				g_free(c.place);
			}
			if (swaps)
				cand_swap(&best, "comm+swap", &st, before,
					  params->max_moves, L, lmax, comm,
					  k);
		}
	}
	if (strat == SMIG_POLICY_COMM)
		goto decided;

	/*
	 * Longest processing time from scratch, then refined: only where
	 * traffic matters little (it scatters partners).
	 */
	if (m.nr <= GREEDY_MAX_RANKS &&
	    (before <= 0 || comm_part < COMM_SHARE_FOR_METIS * before) &&
	    smig_pol_greedy(&st, NULL)) {
		smig_pol_refine(&st, before, params->max_moves);
		smig_pol_prune(&st);
		cand_take(&c, "greedy+refine", &st, before, L, lmax, comm, k);
		if ((!params->max_moves || c.nmoved <= params->max_moves) &&
		    cand_better(&c, &best)) {
			g_free(best.place);
			best = c;
		} else {
			g_free(c.place);
		}
		if (swaps)
			cand_swap(&best, "greedy+refine+swap", &st, before,
				  params->max_moves, L, lmax, comm, k);
	}

	/* Small enough to search outright: the best plan there is. */
	if (strat == SMIG_POLICY_DEFAULT) {
		uint32_t *place = g_new(uint32_t, m.nr ? m.nr : 1);

		if (smig_pol_exact(&m, before, params->max_moves, best.gain,
				   best.nmoved, place)) {
			smig_pol_st_load(&st, place);
			cand_take(&c, "exact", &st, before, L, lmax, comm, k);
			if (cand_better(&c, &best)) {
				g_free(best.place);
				best = c;
			} else {
				g_free(c.place);
			}
		}
		g_free(place);
	}

decided:
	plan = g_new0(smig_plan_t, 1);
	plan->moves = g_array_new(false, false, sizeof(smig_policy_move_t));
	plan->strategy = best.name;
	plan->iter_before = before;
	plan->comm_before = comm_part;
	plan->comm_after = comm_part;
	plan->forced = nforced > 0;
	/* A plan must pay unless ranks have to leave. */
	accept = nforced > 0 ||
		 (best.nmoved && best.gain >= params->min_gain &&
		  best.after <= (1 - params->hysteresis) * before);
	if (nforced)
		g_string_append_printf(why, "%u rank%s must leave nodes that are %s. ",
				       nforced, nforced == 1 ? "" : "s",
				       left_reason(left_flags));
	g_string_append(why, "Slowest node now: ");
	describe_node(why, &m, before_worst, before, comm_part);
	g_string_append(why, ". ");
	if (accept) {
		char *img = fmt_bytes(best.image);

		for (uint32_t r = 0; r < m.nr; r++) {
			smig_policy_move_t mv = { r, snap->ranks[r].node,
						  best.place[r] };

			if (mv.from != mv.to)
				g_array_append_val(plan->moves, mv);
		}
		plan->iter_after = best.after;
		plan->comm_after = best.worst_comm;
		plan->cost = best.nmoved ? snap->relaunch +
					   best.image / snap->image_bw : 0;
		plan->gain = best.gain;
		g_string_append_printf(why, "Plan (%s): %u move%s; iteration %.3g s -> %.3g s",
				       best.name, best.nmoved,
				       best.nmoved == 1 ? "" : "s", before,
				       best.after);
		if (before > 0)
			g_string_append_printf(why, " (%+.1f %%)",
					       100 * (best.after / before - 1));
		g_string_append_printf(why, "; cost %.3g s (relaunch %.3g s, %s of images at %.3g MB/s); net gain %.3g s over %.3g s remaining. New slowest node: ",
				       plan->cost,
				       best.nmoved ? snap->relaunch : 0,
				       img, snap->image_bw / 1e6, plan->gain,
				       snap->remaining);
		describe_node(why, &m, best.worst, best.after, best.worst_comm);
		g_string_append_c(why, '.');
		g_free(img);
		if (snap->nlevels && best.nmoved) {
			uint32_t *now = g_new(uint32_t, m.nr ? m.nr : 1);

			for (uint32_t r = 0; r < m.nr; r++)
				now[r] = snap->ranks[r].node;
			by_levels = describe_levels(why, &m, now, best.place);
			g_free(now);
		}
	} else {
		plan->iter_after = before;
		if (!best.nmoved)
			g_string_append(why, "No move makes the slowest node faster.");
		else if (best.gain < params->min_gain)
			g_string_append_printf(why, "No move pays: the best plan (%s, %u move%s, iteration %.3g s -> %.3g s) gains %.3g s net, below min_gain=%.3g s.",
					       best.name, best.nmoved,
					       best.nmoved == 1 ? "" : "s",
					       before, best.after, best.gain,
					       params->min_gain);
		else
			g_string_append_printf(why, "No move pays: the best plan (%s, %u move%s) shortens the iteration by %.1f %%, below hysteresis=%.1f %%.",
					       best.name, best.nmoved,
					       best.nmoved == 1 ? "" : "s",
					       100 * (1 - best.after / before),
					       100 * params->hysteresis);
	}
	if (nforced)
		plan->reason = g_strdup(left_reason(left_flags));
	else if (!plan->moves->len)
		plan->reason = g_strdup("ok");
	/*
	 * Affinity: METIS's plan, or any plan (the exact search finds the
	 * same swaps on small jobs) whose gain is mostly the bottleneck's
	 * communication time; "topology" when the switch levels, not the
	 * bytes leaving nodes, make the difference (describe_levels()).
	 */
	else if (by_levels)
		plan->reason = g_strdup("topology");
	else if (g_str_has_prefix(best.name, "comm") ||
		 2 * (comm_part - best.worst_comm) > before - best.after)
		plan->reason = g_strdup("affinity");
	else
		plan->reason = g_strdup("balance");
	plan->text = plan->moves->len ?
		smig_plan_moves_text(snap->nodes, plan->moves) :
		g_strdup("no rank moves");
	plan->why = g_string_free(why, false);
	why = NULL;
out:
	if (why)
		g_string_free(why, true);
	g_free(best.place);
	g_free(evac_place);
	smig_pol_st_fini(&st);
	g_free(L);
	g_free(lmax);
	g_free(comm);
	g_free(k);
	smig_pol_model_fini(&m);
	return plan;
}

