/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_policy_topo.c - bench-policy's topology scenario
 *
 * Groups of heavy talkers (a ring each, one leaf switch's worth of ranks)
 * start spread over every leaf switch of a two-level tree (leaf switches
 * under one spine), as a block placement of ranks numbered without regard
 * to the tree leaves them. Byte costs as the balancer sets them by default
 * (MigrateLinkBandwidth 1 GB/s): 0 on one node, 1 ns a byte under one leaf
 * switch, 2 ns across the spine. Three placements, each rated by the
 * topology-aware model (the truth) as the policy's objective (T + before
 * x cost / remaining, see bench_policy_ilp.h):
 * (a) the engine's default with the switch levels in its snapshot;
 * (b) the same engine topology-blind: the same snapshot without levels
 *     (one flat network, 1 ns a byte between any two nodes);
 * (c) the optimum of the placement problem with levels, as an integer
 *     linear programme (bench_policy_ilp.c, which shares no code with the
 *     policy) solved by GLPK; where GLPK stops at its time limit, its best
 *     bound (the ratio is then an upper bound).
 * All figures are the model's predictions, not measurements of jobs.
 */
#include "smig_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_policy.h"
#include "bench_policy_ilp.h"
#include "bench_policy_topo.h"

/*
 * Ranks, leaf switches, nodes under each leaf switch: sizes GLPK solves to
 * optimality within seconds (with 24 ranks on 6 nodes or 16 on 8 it rarely
 * closes the gap in 20 s).
 */
static const uint32_t topo_sizes[][3] = {
	{ 8, 2, 2 }, { 12, 2, 2 }, { 16, 2, 2 }, { 8, 4, 2 }, { 12, 3, 2 },
};
#define NSIZES G_N_ELEMENTS(topo_sizes)
#define LINK_BW 1e9		/* MigrateLinkBandwidth's default */

/* A snapshot with a switch tree and the storage it points into. */
typedef struct {
	smig_policy_snapshot_t s, flat;
	smig_policy_node_t *nodes;
	smig_policy_rank_t *ranks;
	GArray *edges;
	uint32_t *node_switch;
	double byte_cost[4];
	char **names;
} topo_inst_t;

/*
 * topo_instance - NR ranks on LEAVES x PER_LEAF nodes, each leaf switch
 * (ids 0..LEAVES-1, level 0) under one spine (id LEAVES, level 1); ranks
 * in blocks per node, cores = ranks per node, one slot free a node; group
 * g = the ranks whose random position mod LEAVES is g, a ring each of
 * 0.5-1.5e8 bytes/s a pair, and a light pair (1e6-5e6) between random
 * ranks for one rank in four; loads 0.8-1.2
 */
static void topo_instance(topo_inst_t *in, uint32_t nr, uint32_t leaves,
			  uint32_t per_leaf, int seed)
{
	uint32_t nn = leaves * per_leaf, per = nr / nn;
	GRand *rng = g_rand_new_with_seed(7000 + 100 * seed + nr + nn);
	uint32_t *pos = g_new(uint32_t, nr), *perm = g_new(uint32_t, nr);

	memset(in, 0, sizeof(*in));
	in->nodes = g_new0(smig_policy_node_t, nn);
	in->ranks = g_new0(smig_policy_rank_t, nr);
	in->edges = g_array_new(false, false, sizeof(smig_policy_edge_t));
	in->node_switch = g_new(uint32_t, nn * 2);
	in->names = g_new0(char *, nn + 1);
	for (uint32_t n = 0; n < nn; n++) {
		in->names[n] = g_strdup_printf("node%u", n + 1);
		in->nodes[n].name = in->names[n];
		in->nodes[n].slots = per + 1;
		in->nodes[n].cores = per;
		in->nodes[n].speed = 1;
		in->nodes[n].mem_free = 64ull << 30;
		in->node_switch[n * 2] = n / per_leaf;
		in->node_switch[n * 2 + 1] = leaves;
	}
	for (uint32_t r = 0; r < nr; r++) {
		in->ranks[r].node = r / per;
		in->ranks[r].load = g_rand_double_range(rng, 0.8, 1.2);
		in->ranks[r].mem = 1ull << 30;
		in->ranks[r].image = 100ull << 20;
		in->ranks[r].rate = 1;
		perm[r] = r;
	}
	/* Fisher-Yates: perm[i] is the rank at random position i. */
	for (uint32_t i = nr - 1; i > 0; i--) {
		uint32_t j = g_rand_int_range(rng, 0, i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (uint32_t i = 0; i < nr; i++)
		pos[perm[i]] = i;
	/* Ring of group g: positions g, g + leaves, g + 2 leaves, ... */
	for (uint32_t g = 0; g < leaves; g++) {
		uint32_t k = nr / leaves;

		for (uint32_t i = 0; i < k; i++) {
			smig_policy_edge_t e = {
				perm[g + i * leaves],
				perm[g + (i + 1) % k * leaves],
				g_rand_double_range(rng, 0.5e8, 1.5e8),
			};

			if (k > 2 || i == 0)
				g_array_append_val(in->edges, e);
		}
	}
	for (uint32_t r = 0; r < nr; r += 4) {
		smig_policy_edge_t e = { r, g_rand_int_range(rng, 0, nr),
					 g_rand_double_range(rng, 1e6, 5e6) };

		if (e.b != e.a)
			g_array_append_val(in->edges, e);
	}
	/* The balancer's byte_cost: [0] 0, [l] = l / MigrateLinkBandwidth. */
	for (uint32_t l = 0; l < 4; l++)
		in->byte_cost[l] = l / LINK_BW;
	in->s.nodes = in->nodes;
	in->s.nnodes = nn;
	in->s.ranks = in->ranks;
	in->s.nranks = nr;
	in->s.edges = (smig_policy_edge_t *) in->edges->data;
	in->s.nedges = in->edges->len;
	in->s.image_bw = 1e9;
	in->s.relaunch = 2;
	in->s.remaining = 3600;
	in->flat = in->s;
	in->s.nlevels = 2;
	in->s.node_switch = in->node_switch;
	in->s.byte_cost = in->byte_cost;
	g_free(pos);
	g_free(perm);
	g_rand_free(rng);
}

static void topo_fini(topo_inst_t *in)
{
	g_free(in->nodes);
	g_free(in->ranks);
	g_array_unref(in->edges);
	g_free(in->node_switch);
	g_strfreev(in->names);
}

/* The default's plan for snapshot S; NULL plan: exit (a bench bug). */
static uint32_t *topo_place(const smig_policy_snapshot_t *s,
			    smig_plan_t **planp)
{
	smig_policy_params_t p;
	GError *err = NULL;
	smig_plan_t *plan;
	uint32_t *place = g_new(uint32_t, s->nranks);

	smig_policy_params_init(&p);
	p.min_gain = 0;
	p.hysteresis = 0;
	plan = smig_policy_decide(s, &p, &err);
	if (!plan) {
		fprintf(stderr, "bench-policy: topology: %s\n", err->message);
		exit(1);
	}
	for (uint32_t r = 0; r < s->nranks; r++)
		place[r] = s->ranks[r].node;
	for (guint i = 0; i < plan->moves->len; i++) {
		const smig_policy_move_t *mv =
			&g_array_index(plan->moves, smig_policy_move_t, i);

		place[mv->rank] = mv->to;
	}
	*planp = plan;
	return place;
}

/* Bytes per iteration between two leaf switches in placement PLACE. */
static double cross_leaf(const topo_inst_t *in, const uint32_t *place)
{
	double sum = 0;

	for (guint e = 0; e < in->edges->len; e++) {
		const smig_policy_edge_t *ed =
			&g_array_index(in->edges, smig_policy_edge_t, e);

		if (in->node_switch[place[ed->a] * 2] !=
		    in->node_switch[place[ed->b] * 2])
			sum += ed->bytes;
	}
	return sum;
}

static bool differs(double a, double b)
{
	return fabs(a - b) > 1e-9 * MAX(1e-12, MAX(fabs(a), fabs(b)));
}

/* table_topology - the scenario's table (see the header) */
void table_topology(int seeds, double limit, topo_sum_t *sum)
{
	int cap = NSIZES * seeds, k = 0;
	double *ratio = g_new(double, cap), *bratio = g_new(double, cap);

	memset(sum, 0, sizeof(*sum));
	printf("== 5. topology: heavy talkers split across leaf switches (one spine), engine with switch levels vs the same engine topology-blind vs the ILP optimum (GLPK limit %.1f s) ==\n",
	       limit);
	printf("a group = one leaf switch's worth of ranks talking in a ring (0.5-1.5e8 bytes/s a pair), spread over all leaf switches; byte_cost 0 / 1 / 2 ns (node / leaf / spine), cores = ranks per node, one free slot a node, loads 0.8-1.2; every T is the topology-aware model's; obj = T + before x cost / remaining; ratio = obj / optimum (GLPK proved it) or, where GLPK stopped at its limit, / its bound (<=)\n");
	printf("%-5s %-7s %4s %8s %8s %8s %8s %8s %8s %8s %7s %7s %5s %5s %5s %7s %7s %7s %s\n",
	       "ranks", "leafxn", "seed", "T_now", "T_topo", "T_blind",
	       "obj_topo", "obj_bld", "obj_ilp", "bound", "ratio",
	       "r_blind", "m_top", "m_bld", "m_ilp", "xl_now", "xl_top",
	       "xl_bld", "GLPK");
	for (guint z = 0; z < NSIZES; z++) {
		for (int seed = 1; seed <= seeds; seed++) {
			uint32_t nr = topo_sizes[z][0], lv = topo_sizes[z][1];
			uint32_t pl = topo_sizes[z][2], mt, mb;
			topo_inst_t in;
			smig_plan_t *pt, *pb;
			uint32_t *ptop, *pbl, *now;
			smig_policy_eval_t *ev;
			GError *err = NULL;
			ilp_result_t ilp;
			double before, et, eb, den;
			bool bad = false;
			char lxn[16];

			topo_instance(&in, nr, lv, pl, seed);
			ptop = topo_place(&in.s, &pt);
			pbl = topo_place(&in.flat, &pb);
			now = g_new(uint32_t, nr);
			for (uint32_t r = 0; r < nr; r++)
				now[r] = in.ranks[r].node;
			before = ref_time(&in.s, NULL);
			et = ref_eff(&in.s, ptop, before, &mt);
			eb = ref_eff(&in.s, pbl, before, &mb);
			/* The model written again must agree. */
			ev = smig_policy_eval_new(&in.s, &err);
			if (!ev) {
				fprintf(stderr, "bench-policy: topology: %s\n",
					err->message);
				exit(1);
			}
			if (differs(before, pt->iter_before) ||
			    differs(ref_time(&in.s, ptop),
				    smig_policy_eval_time(ev, ptop)) ||
			    differs(ref_time(&in.s, pbl),
				    smig_policy_eval_time(ev, pbl)))
				bad = true;
			if (!ilp_solve(&in.s, before, limit, &ilp)) {
				fprintf(stderr, "bench-policy: topology: instance outside the ILP's model\n");
				exit(1);
			}
			if (ilp.found &&
			    (differs(ilp.t, smig_policy_eval_time(ev,
								  ilp.place)) ||
			     ilp.obj < ilp.eff * (1 - 1e-6) ||
			     (ilp.optimal && fabs(ilp.eff - ilp.obj) >
					     1e-6 * ilp.eff)))
				bad = true;
			smig_policy_eval_free(ev);
			den = ilp.optimal ? ilp.eff : ilp.bound;
			ratio[k] = den > 0 ? et / den : INFINITY;
			bratio[k] = den > 0 ? eb / den : INFINITY;
			snprintf(lxn, sizeof(lxn), "%ux%u", lv, pl);
			printf("%-5u %-7s %4d %8.4f %8.4f %8.4f %8.4f %8.4f ",
			       nr, lxn, seed, before, ref_time(&in.s, ptop),
			       ref_time(&in.s, pbl), et, eb);
			if (ilp.found)
				printf("%8.4f ", ilp.eff);
			else
				printf("%8s ", "-");
			printf("%8.4f %s%6.4f %s%6.4f %5u %5u ", ilp.bound,
			       ilp.optimal ? " " : "<", ratio[k],
			       ilp.optimal ? " " : "<", bratio[k], mt, mb);
			if (ilp.found)
				printf("%5u ", ilp.moves);
			else
				printf("%5s ", "-");
			printf("%7.2f %7.2f %7.2f %.2f s %s%s\n",
			       cross_leaf(&in, now) / 1e8,
			       cross_leaf(&in, ptop) / 1e8,
			       cross_leaf(&in, pbl) / 1e8, ilp.seconds,
			       ilp.optimal ? "optimal" :
			       ilp.found ? "limit" : "limit, no placement",
			       bad ? "  MODEL-MISMATCH" : "");
			sum->n++;
			sum->proven += ilp.optimal;
			sum->model_bad += bad;
			sum->blind_better += eb < et * (1 - 1e-9);
			sum->topo_better += et < eb * (1 - 1e-9);
			sum->max = MAX(sum->max, ratio[k]);
			sum->bmax = MAX(sum->bmax, bratio[k]);
			sum->tsec += ilp.seconds;
			k++;
			g_free(ilp.place);
			g_free(ptop);
			g_free(pbl);
			g_free(now);
			smig_plan_free(pt);
			smig_plan_free(pb);
			topo_fini(&in);
		}
	}
	printf("xl = bytes per iteration between leaf switches, in 1e8; m = ranks moved\n\n");
	boot_median(ratio, k, &sum->lo, &sum->hi);
	boot_median(bratio, k, &sum->blo, &sum->bhi);
	sum->med = median_of(ratio, k);
	sum->bmed = median_of(bratio, k);
	g_free(ratio);
	g_free(bratio);
}

/* topo_headline - the line "bench-policy: topology ..." (see the header) */
void topo_headline(const topo_sum_t *sum)
{
	printf("bench-policy: topology (heavy talkers split across 2-4 leaf switches under one spine, 8-16 ranks on 4-8 nodes), objective / optimum (or, where GLPK stopped at its limit, / its bound: an upper bound of the ratio): engine with switch levels ratio %.4f [%.4f, %.4f] (n=%d), max %.4f; the same engine topology-blind ratio %.4f [%.4f, %.4f] (n=%d), max %.4f; with levels better on %d, blind better on %d; GLPK proved %d of %d optimal; model checks %d mismatches\n",
	       sum->med, sum->lo, sum->hi, sum->n, sum->max, sum->bmed,
	       sum->blo, sum->bhi, sum->n, sum->bmax, sum->topo_better,
	       sum->blind_better, sum->proven, sum->n, sum->model_bad);
}
