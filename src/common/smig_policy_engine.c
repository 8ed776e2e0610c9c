/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy_engine.c - the policy engine: model, strategies, plan
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
 * runs in index order and every tie is broken by index.
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include <metis.h>

#include "smig_error.h"
#include "smig_policy.h"

#define NODE_BAD (SMIG_NODE_DRAIN | SMIG_NODE_DOWN | SMIG_NODE_FAIL)
/* Default seconds per byte between nodes: 1 GB/s per switch level. */
#define DEFAULT_LINK_COST 1e-9
/* Candidate targets taken from the top of the least-loaded heap. */
#define HEAP_CANDIDATES 7
/* The default partitions the affinity graph when comm is this share of T. */
#define COMM_SHARE_FOR_METIS 0.05
/*
 * Greedy LPT from scratch moves nearly every rank, which pays only for
 * small jobs; beyond this many ranks the default leaves it out.
 */
#define GREEDY_MAX_RANKS 4096
/* Refinement tries this many of the heaviest ranks of the slowest node. */
#define REFINE_RANKS 16
/* Refinement stops within this factor of the lower bound of T. */
#define LOWER_BOUND_SLACK 1e-3

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

struct smig_policy_eval {
	model_t m;
	double *L, *lmax, *comm;
	uint32_t *k;
};

static inline double dist_cost(const model_t *m, uint32_t a, uint32_t b)
{
	const smig_policy_snapshot_t *s = m->snap;

	if (a == b)
		return m->cost[0];
	for (uint32_t l = 0; l < s->nlevels; l++) {
		if (s->node_switch[(size_t) a * s->nlevels + l] ==
		    s->node_switch[(size_t) b * s->nlevels + l])
			return m->cost[l + 1];
	}
	return m->cost[m->ncost - 1];
}

static void model_fini(model_t *m)
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

static bool finite_ge0(double x)
{
	return isfinite(x) && x >= 0;
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

static bool model_init(model_t *m, const smig_policy_snapshot_t *s,
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
	m->xadj = g_new0(uint64_t, nr + 1);
	for (size_t e = 0; e < s->nedges; e++) {
		m->xadj[s->edges[e].a + 1]++;
		m->xadj[s->edges[e].b + 1]++;
	}
	for (uint32_t r = 0; r < nr; r++)
		m->xadj[r + 1] += m->xadj[r];
	m->adj = g_new(uint32_t, m->xadj[nr] ? m->xadj[nr] : 1);
	m->w = g_new(double, m->xadj[nr] ? m->xadj[nr] : 1);
	fill = g_memdup2(m->xadj, sizeof(uint64_t) * (nr + 1));
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

static double node_time(const model_t *m, uint32_t n, uint32_t k, double L,
			double lmax, double comm)
{
	if (!k)
		return 0;
	return MAX(L / m->cap[n], lmax / m->snap->nodes[n].speed) + comm;
}

/*
 * Iteration time of a placement, from scratch; the slowest node and its
 * communication part too if asked (worst NULL: not asked).
 */
static double place_time(const model_t *m, const uint32_t *node_of,
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

	if (!model_init(&ev->m, snap, error)) {
		model_fini(&ev->m);
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
	t = place_time(&ev->m, rank_node, ev->L, ev->lmax, ev->comm, ev->k,
		       NULL, NULL);
	g_free(cur);
	return t;
}

/* smig_policy_eval_free - free an evaluator; NULL is a no-op */
void smig_policy_eval_free(smig_policy_eval_t *ev)
{
	if (!ev)
		return;
	model_fini(&ev->m);
	g_free(ev->L);
	g_free(ev->lmax);
	g_free(ev->comm);
	g_free(ev->k);
	g_free(ev);
}

/* --------------------------------------------------------- indexed heap */

typedef struct {
	uint32_t *h;		/* heap of node indices */
	uint32_t *pos;		/* position of each node in h */
	double *key;
	uint32_t n;
	bool max;
} heap_t;

/* Is node a before node b in the heap order? Ties by index: deterministic. */
static bool heap_before(const heap_t *hp, uint32_t a, uint32_t b)
{
	if (hp->key[a] != hp->key[b])
		return hp->max ? hp->key[a] > hp->key[b] :
				 hp->key[a] < hp->key[b];
	return a < b;
}

static void heap_swap(heap_t *hp, uint32_t i, uint32_t j)
{
	uint32_t a = hp->h[i], b = hp->h[j];

	hp->h[i] = b;
	hp->h[j] = a;
	hp->pos[b] = i;
	hp->pos[a] = j;
}

static void heap_down(heap_t *hp, uint32_t i);

static void heap_fix(heap_t *hp, uint32_t node)
{
	uint32_t i = hp->pos[node];

	while (i > 0 && heap_before(hp, hp->h[i], hp->h[(i - 1) / 2])) {
		heap_swap(hp, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	heap_down(hp, i);
}

static void heap_init(heap_t *hp, uint32_t n, bool max)
{
	hp->h = g_new(uint32_t, n);
	hp->pos = g_new(uint32_t, n);
	hp->key = g_new(double, n);
	hp->n = n;
	hp->max = max;
	for (uint32_t i = 0; i < n; i++) {
		hp->h[i] = i;
		hp->pos[i] = i;
	}
}

static void heap_down(heap_t *hp, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, best = i;

		if (l < hp->n && heap_before(hp, hp->h[l], hp->h[best]))
			best = l;
		if (r < hp->n && heap_before(hp, hp->h[r], hp->h[best]))
			best = r;
		if (best == i)
			break;
		heap_swap(hp, i, best);
		i = best;
	}
}

static void heap_build(heap_t *hp)
{
	for (uint32_t i = hp->n / 2; i-- > 0;)
		heap_down(hp, i);
}

static void heap_fini(heap_t *hp)
{
	g_free(hp->h);
	g_free(hp->pos);
	g_free(hp->key);
}

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

#define NONE UINT32_MAX

static double st_time(const state_t *st, uint32_t n)
{
	return node_time(st->m, n, st->k[n], st->L[n], st->lmax[n],
			 st->comm[n]);
}

static bool has_room(const state_t *st, uint32_t n)
{
	return st->m->usable[n] && st->k[n] < st->m->snap->nodes[n].slots;
}

static void st_rekey(state_t *st, uint32_t n)
{
	double t = st_time(st, n);

	st->top.key[n] = t;
	heap_fix(&st->top, n);
	st->low.key[n] = has_room(st, n) ? t : INFINITY;
	heap_fix(&st->low, n);
}

static void list_add(state_t *st, uint32_t r, uint32_t n)
{
	st->prev[r] = NONE;
	st->next[r] = st->head[n];
	if (st->head[n] != NONE)
		st->prev[st->head[n]] = r;
	st->head[n] = r;
}

static void list_del(state_t *st, uint32_t r, uint32_t n)
{
	if (st->prev[r] != NONE)
		st->next[st->prev[r]] = st->next[r];
	else
		st->head[n] = st->next[r];
	if (st->next[r] != NONE)
		st->prev[st->next[r]] = st->prev[r];
}

static double edge_cost(const state_t *st, uint32_t a, uint32_t b)
{
	return st->use_comm ? dist_cost(st->m, a, b) : 0;
}

/* Per-node sums, lists and heaps of a placement, from scratch. */
static void st_load(state_t *st, const uint32_t *placement)
{
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = m->snap->ranks;

	memcpy(st->node_of, placement, sizeof(uint32_t) * m->nr);
	memset(st->L, 0, sizeof(double) * m->nn);
	memset(st->lmax, 0, sizeof(double) * m->nn);
	memset(st->comm, 0, sizeof(double) * m->nn);
	memset(st->k, 0, sizeof(uint32_t) * m->nn);
	memset(st->mem, 0, sizeof(uint64_t) * m->nn);
	for (uint32_t n = 0; n < m->nn; n++)
		st->head[n] = NONE;
	st->nmoved = 0;
	st->moved_image = 0;
	/* Backwards, so that each node's list runs in rank order. */
	for (uint32_t r = m->nr; r-- > 0;) {
		uint32_t n = placement[r];

		st->L[n] += rk[r].load;
		st->lmax[n] = MAX(st->lmax[n], rk[r].load);
		st->k[n]++;
		st->mem[n] += rk[r].mem;
		list_add(st, r, n);
		if (n != rk[r].node) {
			st->nmoved++;
			st->moved_image += rk[r].image;
		}
		for (uint64_t i = m->xadj[r]; i < m->xadj[r + 1]; i++)
			st->comm[n] += m->w[i] *
				       edge_cost(st, n, placement[m->adj[i]]);
	}
	for (uint32_t n = 0; n < m->nn; n++) {
		double t = st_time(st, n);

		st->top.key[n] = t;
		st->low.key[n] = has_room(st, n) ? t : INFINITY;
	}
	heap_build(&st->top);
	heap_build(&st->low);
	g_array_set_size(st->log, 0);
}

static void st_init(state_t *st, const model_t *m, bool use_comm)
{
	uint32_t nr = m->nr ? m->nr : 1;
	uint32_t *cur = g_new(uint32_t, nr);

	memset(st, 0, sizeof(*st));
	st->m = m;
	st->use_comm = use_comm;
	st->node_of = g_new(uint32_t, nr);
	st->L = g_new(double, m->nn);
	st->lmax = g_new(double, m->nn);
	st->comm = g_new(double, m->nn);
	st->k = g_new(uint32_t, m->nn);
	st->mem = g_new(uint64_t, m->nn);
	st->head = g_new(uint32_t, m->nn);
	st->next = g_new(uint32_t, nr);
	st->prev = g_new(uint32_t, nr);
	heap_init(&st->top, m->nn, true);
	heap_init(&st->low, m->nn, false);
	st->log = g_array_new(false, false, sizeof(step_t));
	st->delta = g_new0(double, m->nn);
	st->touched = g_new(uint32_t, m->nn);
	st->mark = g_new0(bool, m->nn);
	for (uint32_t r = 0; r < m->nr; r++)
		cur[r] = m->snap->ranks[r].node;
	st_load(st, cur);
	g_free(cur);
}

static void st_fini(state_t *st)
{
	g_free(st->node_of);
	g_free(st->L);
	g_free(st->lmax);
	g_free(st->comm);
	g_free(st->k);
	g_free(st->mem);
	g_free(st->head);
	g_free(st->next);
	g_free(st->prev);
	heap_fini(&st->top);
	heap_fini(&st->low);
	g_array_unref(st->log);
	g_free(st->delta);
	g_free(st->touched);
	g_free(st->mark);
}

static double st_max(const state_t *st)
{
	return st->top.key[st->top.h[0]];
}

static void touch(state_t *st, uint32_t n, double d)
{
	if (!st->mark[n]) {
		st->mark[n] = true;
		st->touched[st->ntouched++] = n;
	}
	st->delta[n] += d;
}

static void untouch(state_t *st)
{
	for (uint32_t i = 0; i < st->ntouched; i++) {
		st->mark[st->touched[i]] = false;
		st->delta[st->touched[i]] = 0;
	}
	st->ntouched = 0;
}

/* Comm deltas of moving r from s to d, into st->delta (touched list). */
static void move_deltas(state_t *st, uint32_t r, uint32_t s, uint32_t d)
{
	const model_t *m = st->m;

	touch(st, s, 0);
	touch(st, d, 0);
	if (!st->use_comm)
		return;
	for (uint64_t i = m->xadj[r]; i < m->xadj[r + 1]; i++) {
		uint32_t q = m->adj[i], mq = st->node_of[q];
		/* Distances are symmetric: one look-up per end serves both. */
		double w = m->w[i], cs = dist_cost(m, s, mq);
		double cd = dist_cost(m, d, mq);

		/* r's side of the edge, then q's side. */
		touch(st, s, -w * cs);
		touch(st, d, w * cd);
		touch(st, mq, w * (cd - cs));
	}
}

/*
 * The largest T of a node that moving r from s to d changes.
 * lmax_s_without: the largest load on s once r has left.
 * OUT others - the largest T of those nodes but s (NULL: not wanted)
 */
static double eval_move(state_t *st, uint32_t r, uint32_t s, uint32_t d,
			double lmax_s_without, double *others)
{
	const model_t *m = st->m;
	double load = m->snap->ranks[r].load, worst = 0, t_s = 0;

	move_deltas(st, r, s, d);
	for (uint32_t i = 0; i < st->ntouched; i++) {
		uint32_t n = st->touched[i];
		double t;

		if (n == s) {
			t_s = node_time(m, n, st->k[n] - 1, st->L[n] - load,
					lmax_s_without,
					st->comm[n] + st->delta[n]);
			continue;
		} else if (n == d) {
			t = node_time(m, n, st->k[n] + 1, st->L[n] + load,
				      MAX(st->lmax[n], load),
				      st->comm[n] + st->delta[n]);
		} else {
			t = node_time(m, n, st->k[n], st->L[n], st->lmax[n],
				      st->comm[n] + st->delta[n]);
		}
		worst = MAX(worst, t);
	}
	untouch(st);
	if (others)
		*others = worst;
	return MAX(worst, t_s);
}

static bool fits(const state_t *st, uint32_t r, uint32_t d)
{
	return has_room(st, d) &&
	       st->mem[d] + st->m->snap->ranks[r].mem <= st->m->mem_cap[d];
}

static void st_move(state_t *st, uint32_t r, uint32_t d, bool logged)
{
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = &m->snap->ranks[r];
	uint32_t s = st->node_of[r];
	step_t step = { r, s, d };

	move_deltas(st, r, s, d);
	st->node_of[r] = d;
	list_del(st, r, s);
	list_add(st, r, d);
	st->L[s] -= rk->load;
	st->L[d] += rk->load;
	st->k[s]--;
	st->k[d]++;
	st->mem[s] -= rk->mem;
	st->mem[d] += rk->mem;
	st->lmax[d] = MAX(st->lmax[d], rk->load);
	if (rk->load >= st->lmax[s]) {
		st->lmax[s] = 0;
		for (uint32_t q = st->head[s]; q != NONE; q = st->next[q])
			st->lmax[s] = MAX(st->lmax[s], m->snap->ranks[q].load);
	}
	if (!st->k[s])
		st->L[s] = 0;	/* no drift on an emptied node */
	if (s == rk->node) {
		st->nmoved++;
		st->moved_image += rk->image;
	} else if (d == rk->node) {
		st->nmoved--;
		st->moved_image -= rk->image;
	}
	for (uint32_t i = 0; i < st->ntouched; i++) {
		uint32_t n = st->touched[i];

		st->comm[n] += st->delta[n];
		if (!st->k[n])
			st->comm[n] = 0;
	}
	for (uint32_t i = 0; i < st->ntouched; i++)
		st_rekey(st, st->touched[i]);
	untouch(st);
	if (logged)
		g_array_append_val(st->log, step);
}

/* The two largest loads on node s, and the rank of the largest. */
static void top_two(const state_t *st, uint32_t s, double *l1, double *l2,
		    uint32_t *r1)
{
	*l1 = *l2 = 0;
	*r1 = NONE;
	for (uint32_t q = st->head[s]; q != NONE; q = st->next[q]) {
		double l = st->m->snap->ranks[q].load;

		if (*r1 == NONE || l > *l1) {
			*l2 = *l1;
			*l1 = l;
			*r1 = q;
		} else if (l > *l2) {
			*l2 = l;
		}
	}
}

/* Candidate targets of r: least-loaded nodes with room, partners' nodes. */
static uint32_t candidates(const state_t *st, uint32_t r, uint32_t *out,
			   uint32_t max)
{
	const model_t *m = st->m;
	uint32_t n = 0;

	for (uint32_t i = 0; i < st->low.n && i < HEAP_CANDIDATES; i++) {
		uint32_t c = st->low.h[i];

		if (isfinite(st->low.key[c]))
			out[n++] = c;
	}
	if (!st->use_comm)
		return n;
	for (uint64_t i = m->xadj[r]; i < m->xadj[r + 1] && n < max; i++) {
		uint32_t c = st->node_of[m->adj[i]];
		bool dup = false;

		for (uint32_t j = 0; j < n && !dup; j++)
			dup = out[j] == c;
		if (!dup && m->usable[c])
			out[n++] = c;
	}
	return n;
}

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

	top_two(st, s, &l1, &l2, &r1);
	nc = candidates(st, r, cand, ncand_max);
	for (int pass = 0; pass < 2 && best == NONE; pass++) {
		uint32_t count = pass ? m->nn : nc;

		for (uint32_t i = 0; i < count; i++) {
			uint32_t d = pass ? i : cand[i];
			double t;

			if (d == s || !fits(st, r, d))
				continue;
			t = eval_move(st, r, s, d, r1 == r ? l2 : l1,
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
static bool evacuate(state_t *st, uint32_t max_moves, uint32_t *nforced,
		     uint32_t *left_flags, GError **error)
{
	const model_t *m = st->m;
	const smig_policy_snapshot_t *s = m->snap;
	by_load_t *ev = g_new(by_load_t, m->nr ? m->nr : 1);
	uint32_t n = 0, *cand = g_new(uint32_t, HEAP_CANDIDATES + 64);
	uint64_t free_slots = 0;
	bool ok = false;

	*left_flags = 0;
	for (uint32_t r = 0; r < m->nr; r++) {
		if (m->bad[st->node_of[r]]) {
			const smig_policy_node_t *nd =
				&s->nodes[st->node_of[r]];

			ev[n].rank = r;
			ev[n++].load = s->ranks[r].load;
			*left_flags |= nd->excluded ? (1u << 31) : nd->flags;
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

		d = best_target(st, r, cand, HEAP_CANDIDATES + 64, true);
		if (d == NONE) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u (mem=%" G_GUINT64_FORMAT " bytes) must leave %s but no usable node has room for it",
				    r, s->ranks[r].mem,
				    s->nodes[st->node_of[r]].name);
			goto out;
		}
		st_move(st, r, d, false);
	}
	ok = true;
out:
	g_free(cand);
	g_free(ev);
	return ok;
}

/* Net gain of the state's placement, as the plan will report it. */
static double rated_gain(const smig_policy_snapshot_t *s, double before,
			 double after, uint32_t nmoved, double image)
{
	double cost = nmoved ? s->relaunch + image / s->image_bw : 0;
	double saved = before > 0 ? s->remaining * (1 - after / before) : 0;

	return saved - cost;
}

/*
 * Refinement: while it helps, move one rank off the slowest node to the
 * node that keeps every changed node fastest. Then keep the prefix of the
 * moves that gains most (a rank moved twice counts once).
 */
static void refine(state_t *st, double before, uint32_t max_moves)
{
	const model_t *m = st->m;
	const smig_policy_snapshot_t *s = m->snap;
	uint32_t *cand = g_new(uint32_t, HEAP_CANDIDATES + 64);
	uint32_t start = st->log->len, best_len, budget;
	by_load_t on[REFINE_RANKS];
	double best_gain;

	/* Each step strictly lowers the slowest node; bound the steps too. */
	budget = 2 * m->nr + 16;
	best_gain = rated_gain(s, before, st_max(st), st->nmoved,
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
		top_two(st, src, &l1, &l2, &r1);
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
			uint32_t nc = candidates(st, r, cand,
						 HEAP_CANDIDATES + 64);

			for (uint32_t i = 0; i < nc; i++) {
				uint32_t d = cand[i];
				double t, side;

				if (d == src || !fits(st, r, d))
					continue;
				t = eval_move(st, r, src, d,
					      r1 == r ? l2 : l1, &side);
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
		st_move(st, br, bt, true);
		g = rated_gain(s, before, st_max(st), st->nmoved,
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
		st_move(st, step.rank, step.from, false);
	}
	g_free(cand);
}

/*
 * Fewer moves for the same time: send moved ranks home (largest image
 * first) where that slows no node beyond the slowest one now.
 */
static void prune(state_t *st)
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
		top_two(st, s, &l1, &l2, &r1);
		t = eval_move(st, r, s, o, r1 == r ? l2 : l1, NULL);
		if (t <= st_max(st))
			st_move(st, r, o, false);
	}
	g_free(mv);
}

/*
 * Longest processing time first, from scratch: ranks by load, heaviest
 * first, each to the node where it would finish first (the few least
 * loaded nodes with room and memory). Communication-blind.
 */
static bool greedy(state_t *st, GError **error)
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
	st_load(st, place);
	for (uint32_t n = 0; n < m->nn; n++) {
		st->L[n] = st->lmax[n] = st->comm[n] = 0;
		st->k[n] = 0;
		st->mem[n] = 0;
		st->top.key[n] = 0;
		st->low.key[n] = m->usable[n] ? 0 : INFINITY;
	}
	heap_build(&st->top);
	heap_build(&st->low);
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
		heap_fix(&st->low, best);
	}
	st->use_comm = use_comm;
	if (ok)
		st_load(st, place);
	g_free(place);
	g_free(order);
	return ok;
}

/* Room problems left by a global placement: move the lightest ranks out. */
static bool repair(state_t *st)
{
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = m->snap->ranks;
	uint32_t *cand = g_new(uint32_t, HEAP_CANDIDATES + 64);
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
			d = best_target(st, r, cand, HEAP_CANDIDATES + 64,
					true);
			if (d == NONE) {
				ok = false;
				break;
			}
			st_move(st, r, d, false);
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
static bool comm_place(state_t *st)
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

				if (!node_taken[n] && m->cap[n] == m->cap[home] &&
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
	st_load(st, place);
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
	if (!exact_better(ex, rated_gain(m->snap, ex->before,
					 exact_bound(ex), ex->nmoved,
					 ex->image), ex->nmoved))
		return;
	if (ex->max_moves && ex->nmoved > ex->max_moves)
		return;
	if (depth == m->nr) {
		double gain = rated_gain(m->snap, ex->before, exact_bound(ex),
					 ex->nmoved, ex->image);

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
static bool exact(const model_t *m, double before, uint32_t max_moves,
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
	c->after = place_time(m, c->place, L, lmax, comm, k, &c->worst,
			      &c->worst_comm);
	c->gain = rated_gain(m->snap, before, c->after, c->nmoved, c->image);
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
	bool use_comm, accept;
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
	if (!model_init(&m, snap, error)) {
		model_fini(&m);
		return NULL;
	}
	strat = params->strategy;
	use_comm = strat != SMIG_POLICY_BLIND && strat != SMIG_POLICY_GREEDY;
	L = g_new(double, m.nn);
	lmax = g_new(double, m.nn);
	comm = g_new(double, m.nn);
	k = g_new(uint32_t, m.nn);
	st_init(&st, &m, use_comm);
	before = place_time(&m, st.node_of, L, lmax, comm, k, &before_worst,
			    &comm_part);
	why = g_string_new(NULL);

	if (strat == SMIG_POLICY_GREEDY) {
		if (!greedy(&st, error))
			goto out;
		cand_take(&best, "greedy", &st, before, L, lmax, comm, k);
		nforced = 0;
		for (uint32_t r = 0; r < m.nr; r++) {
			if (m.bad[snap->ranks[r].node]) {
				nforced++;
				left_flags |= snap->nodes[snap->ranks[r].node]
						      .excluded ?
					      (1u << 31) :
					      snap->nodes[snap->ranks[r].node]
						      .flags;
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

	if (!evacuate(&st, params->max_moves, &nforced, &left_flags, error))
		goto out;
	evac_place = g_memdup2(st.node_of, sizeof(uint32_t) * (m.nr ? m.nr : 1));
	cand_take(&best, "evacuate", &st, before, L, lmax, comm, k);
	if (strat == SMIG_POLICY_EVACUATE)
		goto decided;

	/* Refinement from the evacuated placement. */
	refine(&st, before, params->max_moves);
	prune(&st);
	cand_take(&c, "refine", &st, before, L, lmax, comm, k);
	if (cand_better(&c, &best)) {
		g_free(best.place);
		best = c;
	} else {
		g_free(c.place);
	}
	if (strat == SMIG_POLICY_REFINE)
		goto decided;

	/* Communication-aware global placement, when traffic matters. */
	if (strat == SMIG_POLICY_COMM ||
	    (strat == SMIG_POLICY_DEFAULT && before > 0 &&
	     comm_part >= COMM_SHARE_FOR_METIS * before)) {
		st_load(&st, evac_place);
		if (comm_place(&st)) {
			refine(&st, before, params->max_moves);
			prune(&st);
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
	    greedy(&st, NULL)) {
		refine(&st, before, params->max_moves);
		prune(&st);
		cand_take(&c, "greedy+refine", &st, before, L, lmax, comm, k);
		if ((!params->max_moves || c.nmoved <= params->max_moves) &&
		    cand_better(&c, &best)) {
			g_free(best.place);
			best = c;
		} else {
			g_free(c.place);
		}
	}

	/* Small enough to search outright: the best plan there is. */
	if (strat == SMIG_POLICY_DEFAULT) {
		uint32_t *place = g_new(uint32_t, m.nr ? m.nr : 1);

		if (exact(&m, before, params->max_moves, best.gain,
			  best.nmoved, place)) {
			st_load(&st, place);
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
				       plan->cost, best.nmoved ? snap->relaunch : 0,
				       img, snap->image_bw / 1e6, plan->gain,
				       snap->remaining);
		describe_node(why, &m, best.worst, best.after, best.worst_comm);
		g_string_append_c(why, '.');
		g_free(img);
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
	 * communication time.
	 */
	else if (!strcmp(best.name, "comm") ||
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
	st_fini(&st);
	g_free(L);
	g_free(lmax);
	g_free(comm);
	g_free(k);
	model_fini(&m);
	return plan;
}
