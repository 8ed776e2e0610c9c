/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy_engine_model.c - the policy engine's model: snapshot checks,
 * the affinity graph, iteration time and net gain of a placement, and the
 * public evaluator (smig_policy_eval_*())
 *
 * The model itself is described at the top of smig_policy_engine.c and in
 * doc/design.md ("Policy").
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_policy.h"
#include "smig_policy_engine_int.h"

/* Default seconds per byte between nodes: 1 GB/s per switch level. */
#define DEFAULT_LINK_COST 1e-9

struct smig_policy_eval {
	model_t m;
	double *L, *lmax, *comm;
	uint32_t *k;
};

/* Sizes from which big_new() populates, and asks for huge pages. */
#define POPULATE_MIN (64u << 10)
#define HUGE_MIN (4u << 20)

/*
 * g_malloc() for the affinity graph's arrays (about 130 MB written once in
 * random order at a million ranks): big ones get their pages mapped by one
 * madvise(MADV_POPULATE_WRITE) (Linux 5.14) instead of a page fault per
 * 4 KiB, and from HUGE_MIN ask for transparent huge pages (Debian's
 * "madvise" mode). In a VM each fault costs more than the writes: the
 * first touch was most of model_init() at 10k and at 1M ranks. Free with
 * g_free(); where the kernel refuses, the pages fault in as before.
 */
static void *big_new(size_t size)
{
	void *p = g_malloc(size ? size : 1);
	uintptr_t pg = 4096, a = ((uintptr_t) p + pg - 1) & ~(pg - 1);
	uintptr_t e = ((uintptr_t) p + size) & ~(pg - 1);

	if (size < POPULATE_MIN || e <= a)
		return p;
#ifdef MADV_HUGEPAGE
	if (size >= HUGE_MIN)
		(void) madvise((void *) a, e - a, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
	(void) madvise((void *) a, e - a, MADV_POPULATE_WRITE);
#endif
	return p;
}

/* smig_pol_model_fini - free a model's arrays (not m itself) */
void smig_pol_model_fini(model_t *m)
{
	g_free(m->xadj);
	g_free(m->adj);
	g_free(m->w);
	g_free(m->cap);
	g_free(m->bad);
	g_free(m->usable);
	g_free(m->mem_cap);
	g_free(m->cost);
	memset(m, 0, sizeof(*m));
}

static bool validate(const smig_policy_snapshot_t *s, GError **error)
{
	if (!s->nnodes || !s->nodes) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "nnodes=%u: a snapshot needs at least one node",
			    s->nnodes);
		return false;
	}
	if (s->nranks && !s->ranks) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "nranks=%u but no rank array", s->nranks);
		return false;
	}
	if (s->nedges && !s->edges) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "nedges=%zu but no edge array", s->nedges);
		return false;
	}
	if (s->nlevels && !s->node_switch) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "nlevels=%u but no node_switch array", s->nlevels);
		return false;
	}
	if (!isfinite(s->image_bw) || s->image_bw <= 0) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "image_bw=%g: not a finite number > 0",
			    s->image_bw);
		return false;
	}
	if (!finite_ge0(s->relaunch)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "relaunch=%g: not a finite number >= 0",
			    s->relaunch);
		return false;
	}
	if (!finite_ge0(s->remaining)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "remaining=%g: not a finite number >= 0",
			    s->remaining);
		return false;
	}
	for (uint32_t i = 0; s->byte_cost && i < s->nlevels + 2; i++) {
		if (!finite_ge0(s->byte_cost[i])) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "byte_cost[%u]=%g: not a finite number >= 0",
				    i, s->byte_cost[i]);
			return false;
		}
	}
	for (uint32_t n = 0; n < s->nnodes; n++) {
		const smig_policy_node_t *nd = &s->nodes[n];
		const char *name = nd->name ? nd->name : "?";

		if (!nd->cores) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "node %u (%s): cores=0: not an integer >= 1",
				    n, name);
			return false;
		}
		if (!isfinite(nd->speed) || nd->speed <= 0) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "node %u (%s): speed=%g: not a finite number > 0",
				    n, name, nd->speed);
			return false;
		}
		if (!finite_ge0(nd->background) ||
		    nd->background >= nd->cores) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "node %u (%s): background=%g: not a finite number in [0, cores=%u)",
				    n, name, nd->background, nd->cores);
			return false;
		}
	}
	for (uint32_t r = 0; r < s->nranks; r++) {
		const smig_policy_rank_t *rk = &s->ranks[r];

		if (rk->node >= s->nnodes) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u: node=%u: not a node index < %u",
				    r, rk->node, s->nnodes);
			return false;
		}
		if (!finite_ge0(rk->load)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u: load=%g: not a finite number >= 0",
				    r, rk->load);
			return false;
		}
		if (!finite_ge0(rk->rate)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u: rate=%g: not a finite number >= 0",
				    r, rk->rate);
			return false;
		}
	}
	for (size_t e = 0; e < s->nedges; e++) {
		const smig_policy_edge_t *ed = &s->edges[e];

		if (ed->a >= s->nranks || ed->b >= s->nranks) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "edge %zu: rank %u - rank %u: not a rank index < %u",
				    e, ed->a, ed->b, s->nranks);
			return false;
		}
		if (ed->a == ed->b) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "edge %zu: rank %u - rank %u: an edge joins two different ranks",
				    e, ed->a, ed->b);
			return false;
		}
		if (!finite_ge0(ed->bytes)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "edge %zu (rank %u - rank %u): bytes=%g: not a finite number >= 0",
				    e, ed->a, ed->b, ed->bytes);
			return false;
		}
	}
	return true;
}

/* Rows longer than this (hubs: a master talking to all) use qsort(). */
#define ROW_INSERTION_MAX 32

typedef struct {
	uint32_t adj;
	uint64_t pos;		/* index in the row: keeps the sort stable */
	double w;
} row_entry_t;

static int cmp_row_entry(const void *a, const void *b)
{
	const row_entry_t *x = a, *y = b;

	if (x->adj != y->adj)
		return x->adj < y->adj ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sort one CSR row by neighbour and merge duplicates; RET new length. */
static uint64_t row_merge(uint32_t *adj, double *w, uint64_t n)
{
	uint64_t out = 0;

	if (n > ROW_INSERTION_MAX) {
		/* Stable, as the insertion sort: the same sums in order. */
		row_entry_t *e = g_new(row_entry_t, n);

		for (uint64_t i = 0; i < n; i++)
			e[i] = (row_entry_t) { adj[i], i, w[i] };
		qsort(e, n, sizeof(*e), cmp_row_entry);
		for (uint64_t i = 0; i < n; i++) {
			adj[i] = e[i].adj;
			w[i] = e[i].w;
		}
		g_free(e);
	} else {
		/* Most rows are short (about ten partners): insertion. */
		for (uint64_t i = 1; i < n; i++) {
			uint32_t a = adj[i];
			double x = w[i];
			uint64_t j = i;

			while (j > 0 && adj[j - 1] > a) {
				adj[j] = adj[j - 1];
				w[j] = w[j - 1];
				j--;
			}
			adj[j] = a;
			w[j] = x;
		}
	}
	for (uint64_t i = 0; i < n; i++) {
		if (out && adj[out - 1] == adj[i]) {
			w[out - 1] += w[i];
		} else {
			adj[out] = adj[i];
			w[out] = w[i];
			out++;
		}
	}
	return out;
}

/*
 * smig_pol_model_init - check a snapshot and build its model (m points
 * into s); free with smig_pol_model_fini(), also after a failure
 */
bool smig_pol_model_init(model_t *m, const smig_policy_snapshot_t *s,
			 GError **error)
{
	uint32_t nr = s->nranks, nn = s->nnodes;
	uint64_t *fill, pos = 0;
	double rate = 0, max_speed = 0, sum_cap = 0, sum_load = 0;
	double max_load = 0;
	uint32_t nrate = 0;
	bool traffic = false;

	memset(m, 0, sizeof(*m));
	if (!validate(s, error))
		return false;
	m->snap = s;
	m->nr = nr;
	m->nn = nn;

	for (uint32_t r = 0; r < nr; r++) {
		if (s->ranks[r].rate > 0) {
			rate += s->ranks[r].rate;
			nrate++;
		}
	}
	for (size_t e = 0; e < s->nedges; e++)
		traffic |= s->edges[e].bytes > 0;
	if (traffic && !nrate) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "affinity: %zu edges in bytes/s but no rank has a rate > 0 to turn them into bytes per iteration",
			    s->nedges);
		return false;
	}
	rate = nrate ? rate / nrate : 1;

	m->ncost = s->nlevels + 2;
	m->cost = g_new(double, m->ncost);
	for (uint32_t i = 0; i < m->ncost; i++)
		m->cost[i] = s->byte_cost ? s->byte_cost[i] :
					    i * DEFAULT_LINK_COST;

	/* CSR: count, fill both directions, then sort and merge rows. */
	m->xadj = big_new(sizeof(uint64_t) * (nr + 1));
	memset(m->xadj, 0, sizeof(uint64_t) * (nr + 1));
	for (size_t e = 0; e < s->nedges; e++) {
		m->xadj[s->edges[e].a + 1]++;
		m->xadj[s->edges[e].b + 1]++;
	}
	for (uint32_t r = 0; r < nr; r++)
		m->xadj[r + 1] += m->xadj[r];
	m->adj = big_new(sizeof(uint32_t) * m->xadj[nr]);
	m->w = big_new(sizeof(double) * m->xadj[nr]);
	fill = big_new(sizeof(uint64_t) * (nr + 1));
	memcpy(fill, m->xadj, sizeof(uint64_t) * (nr + 1));
	for (size_t e = 0; e < s->nedges; e++) {
		const smig_policy_edge_t *ed = &s->edges[e];
		double x = ed->bytes / rate;

		m->adj[fill[ed->a]] = ed->b;
		m->w[fill[ed->a]++] = x;
		m->adj[fill[ed->b]] = ed->a;
		m->w[fill[ed->b]++] = x;
	}
	g_free(fill);
	for (uint32_t r = 0; r < nr; r++) {
		uint64_t start = m->xadj[r];
		uint64_t n = row_merge(m->adj + start, m->w + start,
				       m->xadj[r + 1] - start);

		if (pos != start) {
			memmove(m->adj + pos, m->adj + start,
				n * sizeof(uint32_t));
			memmove(m->w + pos, m->w + start, n * sizeof(double));
		}
		m->xadj[r] = pos;
		pos += n;
	}
	m->xadj[nr] = pos;

	m->cap = g_new(double, nn);
	m->bad = g_new(bool, nn);
	m->usable = g_new(bool, nn);
	m->mem_cap = g_new(uint64_t, nn);
	for (uint32_t n = 0; n < nn; n++) {
		const smig_policy_node_t *nd = &s->nodes[n];

		m->cap[n] = nd->speed * (nd->cores - nd->background);
		m->bad[n] = (nd->flags & NODE_BAD) || nd->excluded;
		m->usable[n] = !m->bad[n] && nd->slots > 0;
		m->mem_cap[n] = nd->mem_free;
		if (m->usable[n]) {
			sum_cap += m->cap[n];
			max_speed = MAX(max_speed, nd->speed);
		}
	}
	for (uint32_t r = 0; r < nr; r++) {
		m->mem_cap[s->ranks[r].node] += s->ranks[r].mem;
		sum_load += s->ranks[r].load;
		max_load = MAX(max_load, s->ranks[r].load);
	}
	if (sum_cap > 0)
		m->lower_bound = MAX(sum_load / sum_cap, max_load / max_speed);
	return true;
}

/*
 * Iteration time of a placement, from scratch; the slowest node and its
 * communication part too if asked (worst NULL: not asked).
 */
double smig_pol_place_time(const model_t *m, const uint32_t *node_of,
			   double *L, double *lmax, double *comm, uint32_t *k,
			   uint32_t *worst, double *comm_part)
{
	const smig_policy_rank_t *rk = m->snap->ranks;
	double t = 0, cp = 0;
	uint32_t wn = 0;

	memset(L, 0, sizeof(double) * m->nn);
	memset(lmax, 0, sizeof(double) * m->nn);
	memset(comm, 0, sizeof(double) * m->nn);
	memset(k, 0, sizeof(uint32_t) * m->nn);
	for (uint32_t r = 0; r < m->nr; r++) {
		uint32_t n = node_of[r];

		L[n] += rk[r].load;
		lmax[n] = MAX(lmax[n], rk[r].load);
		k[n]++;
		for (uint64_t i = m->xadj[r]; i < m->xadj[r + 1]; i++)
			comm[n] += m->w[i] *
				   dist_cost(m, n, node_of[m->adj[i]]);
	}
	for (uint32_t n = 0; n < m->nn; n++) {
		double tn = node_time(m, n, k[n], L[n], lmax[n], comm[n]);

		if (tn > t) {
			t = tn;
			cp = k[n] ? comm[n] : 0;
			wn = n;
		}
	}
	if (worst) {
		*worst = wn;
		*comm_part = cp;
	}
	return t;
}

/* Net gain of the state's placement, as the plan will report it. */
double smig_pol_rated_gain(const smig_policy_snapshot_t *s, double before,
			   double after, uint32_t nmoved, double image)
{
	double cost = nmoved ? s->relaunch + image / s->image_bw : 0;
	double saved = before > 0 ? s->remaining * (1 - after / before) : 0;

	return saved - cost;
}

/* ----------------------------------------------------- public evaluator */

/*
 * smig_policy_eval_new - prepare the model of a snapshot
 * RET new evaluator, caller frees with smig_policy_eval_free(); NULL on
 *     error (set)
 */
smig_policy_eval_t *smig_policy_eval_new(const smig_policy_snapshot_t *snap,
					 GError **error)
{
	smig_policy_eval_t *ev = g_new0(smig_policy_eval_t, 1);

	if (!smig_pol_model_init(&ev->m, snap, error)) {
		smig_pol_model_fini(&ev->m);
		g_free(ev);
		return NULL;
	}
	ev->L = g_new(double, snap->nnodes);
	ev->lmax = g_new(double, snap->nnodes);
	ev->comm = g_new(double, snap->nnodes);
	ev->k = g_new(uint32_t, snap->nnodes);
	return ev;
}

/*
 * smig_policy_eval_time - predicted seconds per iteration of a placement
 * IN rank_node - node of each rank (borrowed), NULL: where they run now
 */
double smig_policy_eval_time(smig_policy_eval_t *ev, const uint32_t *rank_node)
{
	uint32_t *cur = NULL;
	double t;

	if (!rank_node) {
		cur = g_new(uint32_t, ev->m.nr ? ev->m.nr : 1);
		for (uint32_t r = 0; r < ev->m.nr; r++)
			cur[r] = ev->m.snap->ranks[r].node;
		rank_node = cur;
	}
	t = smig_pol_place_time(&ev->m, rank_node, ev->L, ev->lmax, ev->comm,
				ev->k, NULL, NULL);
	g_free(cur);
	return t;
}

/* smig_policy_eval_free - free an evaluator; NULL is a no-op */
void smig_policy_eval_free(smig_policy_eval_t *ev)
{
	if (!ev)
		return;
	smig_pol_model_fini(&ev->m);
	g_free(ev->L);
	g_free(ev->lmax);
	g_free(ev->comm);
	g_free(ev->k);
	g_free(ev);
}
