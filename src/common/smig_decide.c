/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_decide.c - monitoring samples to a policy snapshot (smig_decide.h)
 */
#include "smig_config.h"

#include <math.h>
#include <string.h>
#include <glib.h>

#include "smig_decide.h"
#include "smig_error.h"

/* Below this runnable time per rank and wall second a node is idle. */
#define MIN_RUNNABLE	0.05
/* Floor of a speed: the engine needs > 0. */
#define MIN_SPEED	0.01
/* Memory is the allocation's (Slurm reserved it): not a constraint here. */
#define MEM_UNBOUNDED	(UINT64_MAX / 4)
/*
 * A move teaches the cost of a byte only when traffic was at least this
 * share of the iteration time it was to save (else it tests the compute
 * model); one observation scales the assumed cost by at most 1/x .. x; an
 * observation's weight decays by LINK_DECAY at each newer one (about five
 * count), so that the estimate follows a network that changes.
 */
#define LINK_MIN_SHARE	0.25
#define LINK_MIN_SCALE	1e-3
#define LINK_DECAY	0.8

static bool finite_ge0(double x)
{
	return isfinite(x) && x >= 0;
}

/*
 * lost_share - the share of a wall second a node's ranks were neither on
 * a CPU nor waiting for one
 * IN run  - their CPU + run delay, summed, per wall second
 * IN busy - how many ranks
 * RET 0 to 1
 */
static double lost_share(double run, uint32_t busy)
{
	return 1 - MIN(run / busy, 1.0);
}

void smig_decide_free(smig_decide_t *d)
{
	if (!d)
		return;
	g_free(d->nodes);
	g_free(d->ranks);
	g_free(d->edges);
	g_free(d->node_switch);
	g_free(d->byte_cost);
	g_free(d->avail);
	g_free(d->text);
	g_free(d);
}

bool smig_decide_adjust(const smig_decide_t *d,
			const smig_policy_params_t *params, smig_plan_t *plan)
{
	double idle, before, after, rel, gain;
	char *why;

	if (plan->forced || !plan->moves->len)
		return plan->moves->len > 0;
	idle = d->t_iter - plan->iter_before;
	if (idle >= 0 || d->rate <= 0) {
		idle = MAX(idle, 0);
		before = plan->iter_before + idle;
		after = plan->iter_after + idle;
	} else {
		/*
		 * The model's iteration is longer than the measured one (CPU
		 * spent polling counted again as communication, a reference
		 * core slower than the node's): anchored at the measured
		 * time, the model's saving kept, never below its proportion.
		 */
		before = d->t_iter;
		after = MAX(d->t_iter - (plan->iter_before - plan->iter_after),
			    plan->iter_after * d->t_iter / plan->iter_before);
	}
	rel = before > 0 ? 1 - after / before : 0;
	gain = d->snap.remaining * rel - plan->cost;
	if (idle > 0) {
		why = g_strdup_printf("%s Measured iteration %.3g s, of which %.3g s no node's CPU explains: iteration %.3g s -> %.3g s (-%.1f %%), net gain %.3g s.",
				      plan->why ? plan->why : "", d->t_iter,
				      idle, before, after, 100 * rel, gain);
		g_free(plan->why);
		plan->why = why;
	} else if (idle < 0) {
		why = g_strdup_printf("%s Measured iteration %.3g s, %.3g s shorter than the model's: iteration %.3g s -> %.3g s (-%.1f %%), net gain %.3g s.",
				      plan->why ? plan->why : "", d->t_iter,
				      -idle, before, after, 100 * rel, gain);
		g_free(plan->why);
		plan->why = why;
	}
	plan->iter_before = before;
	plan->iter_after = after;
	plan->gain = gain;
	if (rel >= params->hysteresis && gain >= params->min_gain)
		return true;
	why = g_strdup_printf("%s Not moving: %.1f %% shorter iterations (%.0f %% needed), net gain %.3g s (%.3g s needed).",
			      plan->why ? plan->why : "", 100 * rel,
			      100 * params->hysteresis, gain,
			      params->min_gain);
	g_free(plan->why);
	plan->why = why;
	g_array_set_size(plan->moves, 0);
	g_free(plan->reason);
	plan->reason = g_strdup("ok");
	g_free(plan->text);
	plan->text = g_strdup("no rank moves");
	return false;
}

bool smig_decide_rate(const smig_metrics_t *m, uint32_t nranks,
		      uint32_t min_samples, double *rate)
{
	double iters[SMIG_METRICS_WINDOW], sum = 0;

	if (!m || !nranks)
		return false;
	for (uint32_t r = 0; r < nranks; r++) {
		uint32_t n = smig_metrics_rank_window(m, r, NULL, NULL, NULL,
						      iters, NULL);
		uint32_t known = 0;
		double mean = 0;

		if (!n || n < min_samples)
			return false;
		/*
		 * A sample right after a (re)start has no rate yet (the
		 * counter appeared after the agent's first look): skip it.
		 */
		for (uint32_t i = 0; i < n; i++) {
			if (iters[i] < 0)
				continue;
			mean += iters[i];
			known++;
		}
		if (!known || 2 * known < n)
			return false;
		sum += mean / known;
	}
	*rate = sum / nranks;
	return true;
}

typedef struct edge_ctx {
	GArray *edges;
	uint32_t nranks;
	double per;
} edge_ctx_t;

static void add_edge(const smig_pair_sample_t *s, void *data)
{
	edge_ctx_t *ec = data;
	smig_policy_edge_t e;

	if (s->src >= ec->nranks || s->dst >= ec->nranks || !s->bytes)
		return;
	e.a = MIN(s->src, s->dst);
	e.b = MAX(s->src, s->dst);
	e.bytes = (double) s->bytes / ec->per;
	g_array_append_val(ec->edges, e);
}

static gint edge_cmp(gconstpointer x, gconstpointer y)
{
	const smig_policy_edge_t *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return p->bytes < q->bytes ? -1 : p->bytes > q->bytes;
}

/* smig_decide_edges - see smig_decide.h */
GArray *smig_decide_edges(const smig_metrics_t *m, uint32_t nranks,
			  double per)
{
	edge_ctx_t ec = {
		.edges = g_array_new(FALSE, FALSE, sizeof(smig_policy_edge_t)),
		.nranks = nranks,
		.per = per > 0 ? per : 1,
	};

	if (m)
		smig_metrics_foreach_pair(m, add_edge, &ec);
	/* The hash table's order is not ours: stay deterministic. */
	g_array_sort(ec.edges, edge_cmp);
	return ec.edges;
}

static bool check_input(const smig_decide_input_t *in, GError **error)
{
	if (!in->metrics || !in->nranks || !in->rank_node || !in->nodes ||
	    !in->nnodes) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "no samples, ranks or nodes to decide from");
		return false;
	}
	if (in->min_samples < 1 || in->min_samples > SMIG_METRICS_WINDOW) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "min_samples=%u: 1 to %u accepted",
			    in->min_samples, SMIG_METRICS_WINDOW);
		return false;
	}
	if (!isfinite(in->link_bw) || in->link_bw < 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "link_bw=%g: not a finite number >= 0",
			    in->link_bw);
		return false;
	}
	if (!isfinite(in->elapsed) || in->elapsed < 0 ||
	    !isfinite(in->remaining) || in->remaining < 0 ||
	    !isfinite(in->relaunch) || in->relaunch < 0 ||
	    !isfinite(in->image_bw) || in->image_bw <= 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "elapsed=%g remaining=%g relaunch=%g image_bw=%g: not finite numbers >= 0 (image_bw > 0)",
			    in->elapsed, in->remaining, in->relaunch,
			    in->image_bw);
		return false;
	}
	for (uint32_t r = 0; r < in->nranks; r++) {
		if (in->rank_node[r] >= in->nnodes) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u: node index %u, only %u nodes",
				    r, in->rank_node[r], in->nnodes);
			return false;
		}
	}
	return true;
}

smig_decide_t *smig_decide_snapshot(const smig_decide_input_t *in,
				    GError **error)
{
	uint32_t nn = in->nnodes, nr = in->nranks;
	double (*cpu)[SMIG_METRICS_WINDOW] = NULL;
	double (*delay)[SMIG_METRICS_WINDOW] = NULL;
	double *cpu_sum = NULL, *run_sum = NULL, *raw = NULL, *best_raw = NULL;
	uint32_t *count = NULL;
	double best_avail = 0, slow_speed = INFINITY, t_iter, *rel = NULL;
	uint32_t nbest = 0;
	smig_decide_t *d = NULL;
	GString *text;

	if (!check_input(in, error))
		return NULL;
	cpu = g_malloc0_n(nr, sizeof(*cpu));
	delay = g_malloc0_n(nr, sizeof(*delay));
	count = g_new0(uint32_t, nr);

	/* Every rank: a window, sampled where it runs now. */
	for (uint32_t r = 0; r < nr; r++) {
		const char *node;
		uint64_t rss = 0;

		count[r] = smig_metrics_rank_window(in->metrics, r, &node,
						    cpu[r], delay[r], NULL,
						    &rss);
		if (count[r] < in->min_samples) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u: %u samples, %u needed", r,
				    count[r], in->min_samples);
			goto out;
		}
		if (g_strcmp0(node, in->nodes[in->rank_node[r]].name)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u: sampled on %s but runs on %s",
				    r, node, in->nodes[in->rank_node[r]].name);
			goto out;
		}
	}

	d = g_new0(smig_decide_t, 1);
	d->nodes = g_new0(smig_policy_node_t, nn);
	d->ranks = g_new0(smig_policy_rank_t, nr);
	d->avail = g_new(double, nn);
	for (uint32_t n = 0; n < nn; n++)
		d->avail[n] = -1;
	if (!smig_decide_rate(in->metrics, nr, in->min_samples, &d->rate))
		d->rate = 0;

	/*
	 * Availability of each node: pooled over its ranks per sample age i,
	 * relative to the best node of the same sample (the nodes share the
	 * same moment, whatever else the machine did then); a node's speed
	 * is its best relative value of the window (slow in every sample =
	 * slow). best_avail: the mean of the per-sample best, the reference.
	 */
	cpu_sum = g_new(double, nn);
	run_sum = g_new(double, nn);
	rel = g_new(double, nn);
	for (uint32_t n = 0; n < nn; n++)
		rel[n] = -1;
	for (uint32_t i = 0; i < SMIG_METRICS_WINDOW; i++) {
		uint32_t *busy = g_new0(uint32_t, nn);
		double top = 0, least_lost = 1;

		memset(cpu_sum, 0, nn * sizeof(double));
		memset(run_sum, 0, nn * sizeof(double));
		for (uint32_t r = 0; r < nr; r++) {
			uint32_t n = in->rank_node[r];

			if (i >= count[r])
				continue;
			cpu_sum[n] += cpu[r][i];
			run_sum[n] += cpu[r][i] + delay[r][i];
			busy[n]++;
		}
		/*
		 * Time neither on a CPU nor waiting for one, per rank and
		 * wall second: the part every node shows (the least) is the
		 * application's own (sleep, I/O, blocking waits); what a node
		 * loses beyond it is a stall of that node (a cpu quota's
		 * throttled time, which the kernel does not count as run
		 * delay), counted like run delay below.
		 */
		for (uint32_t n = 0; n < nn; n++)
			if (busy[n] && run_sum[n] >= MIN_RUNNABLE * busy[n])
				least_lost = MIN(least_lost,
						 lost_share(run_sum[n],
							    busy[n]));
		for (uint32_t n = 0; n < nn; n++) {
			double stall;

			if (!busy[n] || run_sum[n] < MIN_RUNNABLE * busy[n]) {
				cpu_sum[n] = -1;
				continue;
			}
			stall = (lost_share(run_sum[n], busy[n]) -
				 least_lost) * busy[n];
			cpu_sum[n] = MIN(cpu_sum[n] / (run_sum[n] + stall),
					 1.0);
			d->avail[n] = MAX(d->avail[n], cpu_sum[n]);
			top = MAX(top, cpu_sum[n]);
		}
		g_free(busy);
		if (top <= 0)
			continue;
		best_avail += top;
		nbest++;
		for (uint32_t n = 0; n < nn; n++)
			if (cpu_sum[n] >= 0)
				rel[n] = MAX(rel[n], cpu_sum[n] / top);
	}
	if (nbest)
		best_avail /= nbest;

	for (uint32_t n = 0; n < nn; n++) {
		smig_policy_node_t *pn = &d->nodes[n];

		*pn = in->nodes[n];
		pn->cores = MAX(in->nodes[n].slots, 1);
		pn->background = 0;
		pn->mem_free = MEM_UNBOUNDED;
		pn->speed = rel[n] > 0 ? MAX(rel[n], MIN_SPEED) : 1.0;
	}

	/*
	 * Loads in reference-core seconds per iteration: CPU seconds per
	 * iteration, over the best availability (a reference core is one of
	 * the best node, as the ranks there get it). No iteration rate
	 * (no smig_safepoint()): one iteration = one second.
	 */
	t_iter = d->rate > 0 ? 1.0 / d->rate : 1.0;
	d->t_iter = t_iter;
	raw = g_new0(double, nr);
	best_raw = g_new0(double, nn);
	d->slowest = in->rank_node[0];
	for (uint32_t r = 0; r < nr; r++) {
		uint32_t n = in->rank_node[r];
		double mean = 0;

		for (uint32_t i = 0; i < count[r]; i++)
			mean += cpu[r][i];
		mean /= count[r];
		raw[r] = best_avail > 0 ? mean * t_iter / best_avail : 0;
		best_raw[n] = MAX(best_raw[n], raw[r]);
		if (d->nodes[n].speed < slow_speed) {
			slow_speed = d->nodes[n].speed;
			d->slowest = n;
		}
	}
	for (uint32_t r = 0; r < nr; r++) {
		uint32_t n = in->rank_node[r];
		uint64_t rss = 0;

		smig_metrics_rank_window(in->metrics, r, NULL, NULL, NULL,
					 NULL, &rss);
		d->ranks[r].node = n;
		/* Polling looks like work: cap at the slowest node's. */
		d->ranks[r].load = n == d->slowest ? raw[r] :
				   MIN(raw[r], best_raw[d->slowest]);
		d->ranks[r].mem = rss;
		d->ranks[r].image = rss;
		d->ranks[r].rate = d->rate;
	}

	if (in->elapsed > 0) {
		/* Counters run since the ranks started: their mean rate. */
		GArray *edges = smig_decide_edges(in->metrics, nr, in->elapsed);

		d->snap.nedges = edges->len;
		d->edges = (smig_policy_edge_t *) g_array_free(edges,
							       !edges->len);
	}

	d->snap.nodes = d->nodes;
	d->snap.nnodes = nn;
	d->snap.ranks = d->ranks;
	d->snap.nranks = nr;
	d->snap.edges = d->edges;
	d->snap.image_bw = in->image_bw;
	d->snap.relaunch = in->relaunch;
	d->snap.remaining = in->remaining;
	{
		double bw = in->link_bw > 0 ? in->link_bw : SMIG_DECIDE_LINK_BW;
		const char **names;
		uint32_t nl = 0;

		if (in->topo && smig_topology_levels(in->topo)) {
			names = g_new(const char *, nn);
			for (uint32_t n = 0; n < nn; n++)
				names[n] = d->nodes[n].name;
			d->node_switch = smig_topology_paths(in->topo, names,
							     nn, &nl);
			g_free(names);
		}
		d->byte_cost = g_new(double, nl + 2);
		/* One node: free, as on a flat network. */
		smig_topology_byte_cost(bw, nl, d->byte_cost);
		d->snap.nlevels = nl;
		d->snap.node_switch = d->node_switch;
		d->snap.byte_cost = d->byte_cost;
		d->link_bw = bw;
	}

	text = g_string_new("speed");
	for (uint32_t n = 0; n < nn; n++)
		if (d->avail[n] >= 0)
			g_string_append_printf(text, " %s=%.2f",
					       d->nodes[n].name,
					       d->nodes[n].speed);
	if (d->rate > 0)
		g_string_append_printf(text, " rate=%.3g/s", d->rate);
	else
		g_string_append(text, " rate=unknown");
	if (d->snap.nedges)
		g_string_append_printf(text, " link=%.3gMB/s",
				       d->link_bw / 1e6);
	if (d->node_switch) {
		g_string_append(text, " switches");
		for (uint32_t n = 0; n < nn; n++) {
			const char *leaf = smig_topology_leaf(in->topo,
							      d->nodes[n].name);

			g_string_append_printf(text, " %s=%s",
					       d->nodes[n].name,
					       leaf ? leaf : "-");
		}
	}
	d->text = g_string_free(text, FALSE);
out:
	g_free(cpu);
	g_free(delay);
	g_free(count);
	g_free(cpu_sum);
	g_free(run_sum);
	g_free(rel);
	g_free(raw);
	g_free(best_raw);
	return d;
}

/* ------------------------------------------------ the cost of a byte */

void smig_link_est_init(smig_link_est_t *est, double prior_bw)
{
	memset(est, 0, sizeof(*est));
	est->prior_bw = prior_bw > 0 && isfinite(prior_bw) ? prior_bw :
			SMIG_DECIDE_LINK_BW;
}

double smig_link_est_bw(const smig_link_est_t *est)
{
	if (est->weight <= 0)
		return est->prior_bw;
	return exp(est->sum_log / est->weight);
}

bool smig_link_est_observe(smig_link_est_t *est, const smig_link_obs_t *o,
			   double *bw_seen, char **why)
{
	double saved, other, comm, k, bw;

	if (!(o->rate_before > 0) || !(o->rate_after > 0) ||
	    !isfinite(o->rate_before) || !isfinite(o->rate_after) ||
	    !(o->link_bw > 0) || !isfinite(o->link_bw) ||
	    !finite_ge0(o->iter_before) || !finite_ge0(o->iter_after) ||
	    !finite_ge0(o->comm_before) || !finite_ge0(o->comm_after)) {
		*why = g_strdup_printf("not measured or not predicted (rate %g/s -> %g/s, iteration %g s -> %g s, communication %g s -> %g s at %g B/s)",
				       o->rate_before, o->rate_after,
				       o->iter_before, o->iter_after,
				       o->comm_before, o->comm_after,
				       o->link_bw);
		return false;
	}
	/* What the move was to save by traffic, and by everything else. */
	comm = o->comm_before - o->comm_after;
	other = (o->iter_before - o->comm_before) -
		(o->iter_after - o->comm_after);
	if (comm <= 0 || comm < LINK_MIN_SHARE * (o->iter_before -
						   o->iter_after)) {
		*why = g_strdup_printf("the plan's gain was not mostly traffic (communication %.3g s of %.3g s saved)",
				       comm, o->iter_before - o->iter_after);
		return false;
	}
	saved = 1 / o->rate_before - 1 / o->rate_after;
	k = (saved - other) / comm;
	k = CLAMP(k, LINK_MIN_SCALE, 1 / LINK_MIN_SCALE);
	bw = o->link_bw / k;
	est->sum_log = LINK_DECAY * est->sum_log + log(bw);
	est->weight = LINK_DECAY * est->weight + 1;
	est->n++;
	*bw_seen = bw;
	*why = g_strdup_printf("saved %.3g s an iteration, %.3g s of it predicted by compute: traffic between nodes costs %.3g x the %.3g MB/s assumed, %.3g MB/s",
			       saved, other, k, o->link_bw / 1e6, bw / 1e6);
	return true;
}
