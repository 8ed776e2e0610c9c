/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy_engine_state.c - one placement the strategies change: per-node
 * sums, the ranks of each node, two indexed heaps of nodes (slowest first,
 * least loaded with room first) and a move log; a move or its evaluation
 * touches only the nodes it changes
 *
 * Every loop runs in index order and every tie is broken by index, so the
 * strategies built on it are deterministic.
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_policy.h"
#include "smig_policy_engine_int.h"

/* --------------------------------------------------------- indexed heap */

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

/* smig_pol_heap_fix - restore the heap order after key[node] changed */
void smig_pol_heap_fix(heap_t *hp, uint32_t node)
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

/* smig_pol_heap_build - heap order over all keys, from scratch */
void smig_pol_heap_build(heap_t *hp)
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

static double st_time(const state_t *st, uint32_t n)
{
	return node_time(st->m, n, st->k[n], st->L[n], st->lmax[n],
			 st->comm[n]);
}

static void st_rekey(state_t *st, uint32_t n)
{
	double t = st_time(st, n);

	st->top.key[n] = t;
	smig_pol_heap_fix(&st->top, n);
	st->low.key[n] = has_room(st, n) ? t : INFINITY;
	smig_pol_heap_fix(&st->low, n);
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
void smig_pol_st_load(state_t *st, const uint32_t *placement)
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
	smig_pol_heap_build(&st->top);
	smig_pol_heap_build(&st->low);
	g_array_set_size(st->log, 0);
}

/* smig_pol_st_init - a state on the snapshot's placement; free with _fini() */
void smig_pol_st_init(state_t *st, const model_t *m, bool use_comm)
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
	smig_pol_st_load(st, cur);
	g_free(cur);
}

/* smig_pol_st_fini - free a state's arrays (not st itself) */
void smig_pol_st_fini(state_t *st)
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
double smig_pol_eval_move(state_t *st, uint32_t r, uint32_t s, uint32_t d,
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

/*
 * The largest T of a node that moving the ranks of g (each to its own
 * target, in order) changes, without moving them; INFINITY when a node
 * that receives ranks would get more than its slots or memory, or may not
 * receive any.
 */
double smig_pol_eval_group(state_t *st, const group_t *g)
{
	const model_t *m = st->m;
	const smig_policy_rank_t *rk = m->snap->ranks;
	uint32_t from[GROUP_MAX];
	double worst = 0;

	/* Each rank's comm deltas with those before it already moved. */
	for (uint32_t i = 0; i < g->n; i++) {
		from[i] = st->node_of[g->r[i]];
		move_deltas(st, g->r[i], from[i], g->to[i]);
		st->node_of[g->r[i]] = g->to[i];
	}
	for (uint32_t i = g->n; i-- > 0;)
		st->node_of[g->r[i]] = from[i];
	for (uint32_t t = 0; t < st->ntouched && isfinite(worst); t++) {
		uint32_t n = st->touched[t], k = st->k[n];
		double L = st->L[n], lmax = st->lmax[n], in_max = 0;
		uint64_t mem = st->mem[n];
		bool lost_max = false, gets = false;

		for (uint32_t i = 0; i < g->n; i++) {
			const smig_policy_rank_t *x = &rk[g->r[i]];

			if (from[i] == n) {
				k--;
				L -= x->load;
				mem -= x->mem;
				lost_max |= x->load >= st->lmax[n];
			}
			if (g->to[i] == n) {
				k++;
				L += x->load;
				mem += x->mem;
				in_max = MAX(in_max, x->load);
				gets = true;
			}
		}
		if (gets && (!m->usable[n] ||
			     (k > st->k[n] && k > m->snap->nodes[n].slots) ||
			     (mem > st->mem[n] && mem > m->mem_cap[n]))) {
			worst = INFINITY;
			break;
		}
		/*
		 * The largest load of the ranks that stay, when it can set
		 * the node's compute time (on a node of many ranks the sum
		 * does: no need to walk its list).
		 */
		if (lost_max && k &&
		    lmax / m->snap->nodes[n].speed > L / m->cap[n]) {
			lmax = 0;
			for (uint32_t q = st->head[n]; q != NONE;
			     q = st->next[q]) {
				bool leaves = false;

				for (uint32_t i = 0; i < g->n; i++)
					leaves |= g->r[i] == q;
				if (!leaves)
					lmax = MAX(lmax, rk[q].load);
			}
		}
		worst = MAX(worst, node_time(m, n, k, k ? L : 0,
					     MAX(lmax, in_max),
					     st->comm[n] + st->delta[n]));
	}
	untouch(st);
	return worst;
}

/* smig_pol_st_move - move rank r to node d; logged: append to st->log */
void smig_pol_st_move(state_t *st, uint32_t r, uint32_t d, bool logged)
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
void smig_pol_top_two(const state_t *st, uint32_t s, double *l1, double *l2,
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
uint32_t smig_pol_candidates(const state_t *st, uint32_t r, uint32_t *out,
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
