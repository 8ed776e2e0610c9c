/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_policy_ilp.c - the policy's placement problem as an integer linear
 * programme (GLPK), and its model written again, for bench-policy
 *
 * The model (doc/design.md, "Policy"): node n with ranks R(n) takes
 *   T(n) = max(sum load / (speed * (cores - background)), max load / speed)
 *          + comm(n),  comm(n) = sum over the edges with one end on n of
 *          their bytes per iteration x byte_cost[d], d the distance to the
 *          other end's node: 0 on n, l + 1 where the two nodes first share
 *          a switch of level l, nlevels + 1 where they share none (flat:
 *          1 between two nodes; no byte_cost: d x 1e-9 s per byte),
 * the iteration takes T = max T(n) over nodes with ranks; bytes per
 * iteration = bytes/s / the ranks' mean rate. A plan costs relaunch + the
 * moved ranks' images / image_bw when anything moves.
 *
 * The programme, over the usable nodes n (not draining, down, failing or
 * excluded, slots > 0):
 *   x[r,n] binary: rank r on n;  sum_n x[r,n] = 1
 *   sum_r x[r,n] <= slots(n);  sum_r mem(r) x[r,n] <= mem_free(n) + memory
 *     of the ranks on n now
 *   C[n] >= sum_r load(r) / cap(n) x[r,n];  C[n] >= load(r) / speed(n) x[r,n]
 *   d[e,n] >= x[a,n] - x[b,n] and >= x[b,n] - x[a,n] for edge e = (a, b)
 *     (1 exactly when one end is on n);  K[n] >= sum_e w(e) (c0 (x[a,n] +
 *     x[b,n]) + (c1 - c0) d[e,n] + sum over levels l of (c[l+2] - c[l+1])
 *     (p[e,n,l] + q[e,n,l])), c = byte_cost,
 *     p[e,n,l] >= x[a,n] - sum of x[b,m] over the nodes m under n's switch
 *     of level l (1 exactly when a is on n and b is not under that switch),
 *     q likewise with a and b swapped; levels whose switch all usable
 *     nodes share are left out (their p and q are 0)
 *   T >= C[n] + K[n]
 *   y >= 1 - x[r,home(r)] (anything moved; y = 1 when a rank must leave)
 *   minimise T + before / remaining * (relaunch y + sum_r image(r) / bw *
 *     (1 - x[r,home(r)]))
 * and, to help the bound (valid for every integer point): T >= sum_n
 * load(r) / speed(n) x[r,n] for each r.
 */
#include "smig_config.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include <glpk.h>

#include "bench_policy_ilp.h"

/* Seconds per byte between two nodes of a flat network (the default). */
#define LINK_COST 1e-9
#define NODE_LEAVE (SMIG_NODE_DRAIN | SMIG_NODE_DOWN | SMIG_NODE_FAIL)

static double mean_rate(const smig_policy_snapshot_t *s)
{
	double sum = 0;
	uint32_t n = 0;

	for (uint32_t r = 0; r < s->nranks; r++) {
		if (s->ranks[r].rate > 0) {
			sum += s->ranks[r].rate;
			n++;
		}
	}
	return n ? sum / n : 1;
}

/* byte_cost[k], or its default (k links of 1 GB/s) */
static double ref_bc(const smig_policy_snapshot_t *s, uint32_t k)
{
	return s->byte_cost ? s->byte_cost[k] : k * LINK_COST;
}

/* Distance of nodes a and b: 0, l + 1 (first common switch level l). */
static uint32_t ref_dist(const smig_policy_snapshot_t *s, uint32_t a,
			 uint32_t b)
{
	uint32_t nl = s->nlevels;

	if (a == b)
		return 0;
	for (uint32_t l = 0; l < nl; l++) {
		if (s->node_switch[a * nl + l] == s->node_switch[b * nl + l])
			return l + 1;
	}
	return nl + 1;
}

static double node_cap(const smig_policy_node_t *nd)
{
	return nd->speed * (nd->cores - nd->background);
}

/*
 * ref_time - seconds per iteration of a placement (the model, again)
 * IN place - node of each rank; NULL: where they run now
 */
double ref_time(const smig_policy_snapshot_t *s, const uint32_t *place)
{
	double *L = g_new0(double, s->nnodes);
	double *lmax = g_new0(double, s->nnodes);
	double *comm = g_new0(double, s->nnodes), rate = mean_rate(s), t = 0;
	uint32_t *k = g_new0(uint32_t, s->nnodes);

	for (uint32_t r = 0; r < s->nranks; r++) {
		uint32_t n = place ? place[r] : s->ranks[r].node;

		L[n] += s->ranks[r].load;
		lmax[n] = MAX(lmax[n], s->ranks[r].load);
		k[n]++;
	}
	for (size_t e = 0; e < s->nedges; e++) {
		const smig_policy_edge_t *ed = &s->edges[e];
		uint32_t na = place ? place[ed->a] : s->ranks[ed->a].node;
		uint32_t nb = place ? place[ed->b] : s->ranks[ed->b].node;
		double c = ed->bytes / rate * ref_bc(s, ref_dist(s, na, nb));

		comm[na] += c;
		comm[nb] += c;
	}
	for (uint32_t n = 0; n < s->nnodes; n++) {
		const smig_policy_node_t *nd = &s->nodes[n];

		if (k[n])
			t = MAX(t, MAX(L[n] / node_cap(nd),
				       lmax[n] / nd->speed) + comm[n]);
	}
	g_free(L);
	g_free(lmax);
	g_free(comm);
	g_free(k);
	return t;
}

/* ref_eff - T + before * cost / remaining of a placement; moves too */
double ref_eff(const smig_policy_snapshot_t *s, const uint32_t *place,
	       double before, uint32_t *moves)
{
	double image = 0, cost = 0;
	uint32_t nm = 0;

	for (uint32_t r = 0; r < s->nranks; r++) {
		if (place[r] != s->ranks[r].node) {
			nm++;
			image += s->ranks[r].image;
		}
	}
	if (nm)
		cost = s->relaunch + image / s->image_bw;
	if (moves)
		*moves = nm;
	return ref_time(s, place) + before * cost / s->remaining;
}

/* A pair of ranks and its bytes per iteration (edges of a pair merged). */
typedef struct {
	uint32_t a, b;
	double w;
} pair_t;

static int cmp_pair(const void *x, const void *y)
{
	const pair_t *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return p->b < q->b ? -1 : p->b > q->b;
}

static GArray *pairs_of(const smig_policy_snapshot_t *s)
{
	GArray *p = g_array_new(false, false, sizeof(pair_t));
	double rate = mean_rate(s);
	guint out = 0;

	for (size_t e = 0; e < s->nedges; e++) {
		const smig_policy_edge_t *ed = &s->edges[e];
		pair_t x = { MIN(ed->a, ed->b), MAX(ed->a, ed->b),
			     ed->bytes / rate };

		if (x.w > 0)
			g_array_append_val(p, x);
	}
	g_array_sort(p, cmp_pair);
	for (guint i = 0; i < p->len; i++) {
		pair_t *x = &g_array_index(p, pair_t, i);
		pair_t *o = out ? &g_array_index(p, pair_t, out - 1) : NULL;

		if (o && o->a == x->a && o->b == x->b)
			o->w += x->w;
		else
			g_array_index(p, pair_t, out++) = *x;
	}
	g_array_set_size(p, out);
	return p;
}

/* The constraint matrix, 1-based as glp_load_matrix() wants it. */
typedef struct {
	GArray *ia, *ja, *ar;
} mat_t;

static void mat_add(mat_t *mt, int row, int col, double v)
{
	g_array_append_val(mt->ia, row);
	g_array_append_val(mt->ja, col);
	g_array_append_val(mt->ar, v);
}

static int add_row(glp_prob *lp, int type, double lb, double ub)
{
	int i = glp_add_rows(lp, 1);

	glp_set_row_bnds(lp, i, type, lb, ub);
	return i;
}

static int add_col(glp_prob *lp, int kind, int type, double lb, double ub,
		   double obj)
{
	int j = glp_add_cols(lp, 1);

	glp_set_col_kind(lp, j, kind);
	if (kind != GLP_BV)
		glp_set_col_bnds(lp, j, type, lb, ub);
	glp_set_obj_coef(lp, j, obj);
	return j;
}

/* The best bound of the open nodes, kept as the search goes. */
typedef struct {
	double bound;
	bool have;
} cb_t;

static void search_cb(glp_tree *tree, void *info)
{
	cb_t *cb = info;
	int p = glp_ios_best_node(tree);

	if (p) {
		double b = glp_ios_node_bound(tree, p);

		if (isfinite(b) && b > -DBL_MAX / 2) {
			cb->bound = b;
			cb->have = true;
		}
	}
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * level_terms - the cost of pair p at switch level l on usable node u:
 * p[e,u,l] and q[e,u,l] with their rows, their cost in row ik (K[u]);
 * nothing when every usable node is under u's switch of that level or
 * the level costs no more than the one below
 */
static void level_terms(const smig_policy_snapshot_t *s, glp_prob *lp,
			mat_t *mt, const int *x, const int *unode, uint32_t nu,
			uint32_t u, uint32_t l, const pair_t *p, int ik)
{
	uint32_t nl = s->nlevels, sw = s->node_switch[unode[u] * nl + l];
	double delta = ref_bc(s, l + 2) - ref_bc(s, l + 1);
	uint32_t shared = 0;

	for (uint32_t m = 0; m < nu; m++)
		shared += s->node_switch[unode[m] * nl + l] == sw;
	if (shared == nu || delta == 0)
		return;
	for (int side = 0; side < 2; side++) {
		uint32_t here = side ? p->b : p->a, there = side ? p->a : p->b;
		int v = add_col(lp, GLP_CV, GLP_LO, 0, 0, 0);
		int i = add_row(lp, GLP_LO, 0, 0);

		mat_add(mt, ik, v, -p->w * delta);
		mat_add(mt, i, v, 1);
		mat_add(mt, i, x[here * nu + u], -1);
		for (uint32_t m = 0; m < nu; m++) {
			if (s->node_switch[unode[m] * nl + l] == sw)
				mat_add(mt, i, x[there * nu + m], 1);
		}
	}
}

/*
 * ilp_solve - the placement of least ref_eff() (see the header)
 * RET false when remaining is 0 or there are no ranks
 */
bool ilp_solve(const smig_policy_snapshot_t *s, double before,
	       double seconds, ilp_result_t *res)
{
	uint32_t nr = s->nranks, nn = s->nnodes, nu = 0;
	int *x, *C, *K, T, y = 0, rc;
	int *unode = g_new(int, nn), *uidx = g_new(int, nn);
	double alpha, konst = 0, *memcap = g_new0(double, nn);
	mat_t mt = {
		g_array_new(false, false, sizeof(int)),
		g_array_new(false, false, sizeof(int)),
		g_array_new(false, false, sizeof(double)),
	};
	GArray *pairs = pairs_of(s);
	int zero_i = 0;
	double zero_d = 0;
	glp_prob *lp;
	glp_iocp parm;
	cb_t cb = { 0, false };
	bool must_move = false;
	double t0;

	memset(res, 0, sizeof(*res));
	if (s->remaining <= 0 || !nr) {
		g_free(unode);
		g_free(uidx);
		g_free(memcap);
		g_array_unref(mt.ia);
		g_array_unref(mt.ja);
		g_array_unref(mt.ar);
		g_array_unref(pairs);
		return false;
	}
	alpha = before / s->remaining;
	for (uint32_t n = 0; n < nn; n++) {
		const smig_policy_node_t *nd = &s->nodes[n];

		uidx[n] = -1;
		memcap[n] = nd->mem_free;
		if (!(nd->flags & NODE_LEAVE) && !nd->excluded && nd->slots) {
			uidx[n] = nu;
			unode[nu++] = n;
		}
	}
	for (uint32_t r = 0; r < nr; r++)
		memcap[s->ranks[r].node] += s->ranks[r].mem;
	/* glp_load_matrix() skips element 0. */
	g_array_append_val(mt.ia, zero_i);
	g_array_append_val(mt.ja, zero_i);
	g_array_append_val(mt.ar, zero_d);

	glp_term_out(GLP_OFF);
	lp = glp_create_prob();
	glp_set_obj_dir(lp, GLP_MIN);
	T = add_col(lp, GLP_CV, GLP_LO, 0, 0, 1);
	x = g_new(int, (size_t) nr * (nu ? nu : 1));
	C = g_new(int, nu ? nu : 1);
	K = g_new(int, nu ? nu : 1);
	for (uint32_t r = 0; r < nr; r++) {
		uint32_t home = s->ranks[r].node;
		double img = alpha * s->ranks[r].image / s->image_bw;

		/* Moving costs img, written as img * (1 - x[r,home]). */
		konst += img;
		if (uidx[home] < 0)
			must_move = true;
		for (uint32_t u = 0; u < nu; u++)
			x[r * nu + u] = add_col(lp, GLP_BV, 0, 0, 0,
						(uint32_t) unode[u] == home ?
						-img : 0);
	}
	if (s->relaunch > 0) {
		y = add_col(lp, must_move ? GLP_CV : GLP_BV, GLP_FX, 1, 1,
			    alpha * s->relaunch);
	}
	for (uint32_t u = 0; u < nu; u++) {
		C[u] = add_col(lp, GLP_CV, GLP_LO, 0, 0, 0);
		K[u] = add_col(lp, GLP_CV, GLP_LO, 0, 0, 0);
	}

	/* Each rank on one usable node. */
	for (uint32_t r = 0; r < nr; r++) {
		int i = add_row(lp, GLP_FX, 1, 1);

		for (uint32_t u = 0; u < nu; u++)
			mat_add(&mt, i, x[r * nu + u], 1);
	}
	for (uint32_t u = 0; u < nu; u++) {
		const smig_policy_node_t *nd = &s->nodes[unode[u]];
		int is = add_row(lp, GLP_UP, 0, nd->slots);
		/* Memory in GiB: coefficients near 1. */
		int im = add_row(lp, GLP_UP, 0,
				 memcap[unode[u]] / 1073741824.0);
		int il = add_row(lp, GLP_LO, 0, 0);
		int it = add_row(lp, GLP_LO, 0, 0);

		mat_add(&mt, il, C[u], 1);
		mat_add(&mt, it, T, 1);
		mat_add(&mt, it, C[u], -1);
		mat_add(&mt, it, K[u], -1);
		for (uint32_t r = 0; r < nr; r++) {
			int xr = x[r * nu + u];
			int ix = add_row(lp, GLP_LO, 0, 0);

			mat_add(&mt, is, xr, 1);
			mat_add(&mt, im, xr, s->ranks[r].mem / 1073741824.0);
			mat_add(&mt, il, xr, -s->ranks[r].load / node_cap(nd));
			mat_add(&mt, ix, C[u], 1);
			mat_add(&mt, ix, xr, -s->ranks[r].load / nd->speed);
		}
		if (pairs->len) {
			int ik = add_row(lp, GLP_LO, 0, 0);
			double c0 = ref_bc(s, 0), c1 = ref_bc(s, 1);

			mat_add(&mt, ik, K[u], 1);
			for (guint e = 0; e < pairs->len; e++) {
				const pair_t *p =
					&g_array_index(pairs, pair_t, e);
				int d = add_col(lp, GLP_CV, GLP_LO, 0, 0, 0);
				int i1 = add_row(lp, GLP_LO, 0, 0);
				int i2 = add_row(lp, GLP_LO, 0, 0);

				mat_add(&mt, ik, d, -p->w * (c1 - c0));
				mat_add(&mt, i1, d, 1);
				mat_add(&mt, i1, x[p->a * nu + u], -1);
				mat_add(&mt, i1, x[p->b * nu + u], 1);
				mat_add(&mt, i2, d, 1);
				mat_add(&mt, i2, x[p->b * nu + u], -1);
				mat_add(&mt, i2, x[p->a * nu + u], 1);
				if (c0 > 0) {
					mat_add(&mt, ik, x[p->a * nu + u],
						-p->w * c0);
					mat_add(&mt, ik, x[p->b * nu + u],
						-p->w * c0);
				}
				for (uint32_t l = 0; l < s->nlevels; l++)
					level_terms(s, lp, &mt, x, unode, nu,
						    u, l, p, ik);
			}
		}
	}
	for (uint32_t r = 0; r < nr; r++) {
		uint32_t home = s->ranks[r].node;
		int i = add_row(lp, GLP_LO, 0, 0);

		/* Rank r runs at least load / speed of its node. */
		mat_add(&mt, i, T, 1);
		for (uint32_t u = 0; u < nu; u++)
			mat_add(&mt, i, x[r * nu + u],
				-s->ranks[r].load /
					s->nodes[unode[u]].speed);
		/* y >= 1 - x[r,home]: anything moved costs the relaunch. */
		if (y && !must_move && uidx[home] >= 0) {
			i = add_row(lp, GLP_LO, 1, 0);
			mat_add(&mt, i, y, 1);
			mat_add(&mt, i, x[r * nu + uidx[home]], 1);
		}
	}
	glp_load_matrix(lp, mt.ia->len - 1, (int *) mt.ia->data,
			(int *) mt.ja->data, (double *) mt.ar->data);
	res->rows = glp_get_num_rows(lp);
	res->cols = glp_get_num_cols(lp);
	res->nonzeros = glp_get_num_nz(lp);
	res->binaries = glp_get_num_bin(lp);

	glp_init_iocp(&parm);
	parm.msg_lev = GLP_MSG_OFF;
	parm.presolve = GLP_ON;
	parm.gmi_cuts = GLP_ON;
	parm.mir_cuts = GLP_ON;
	parm.cov_cuts = GLP_ON;
	parm.clq_cuts = GLP_ON;
	parm.fp_heur = GLP_ON;
	parm.ps_heur = GLP_ON;
	parm.ps_tm_lim = (int) (seconds * 1000 / 4);
	parm.tm_lim = (int) (seconds * 1000);
	parm.mip_gap = 0;
	parm.cb_func = search_cb;
	parm.cb_info = &cb;
	t0 = wall();
	rc = glp_intopt(lp, &parm);
	res->seconds = wall() - t0;
	if ((rc == 0 || rc == GLP_ETMLIM) &&
	    (glp_mip_status(lp) == GLP_OPT || glp_mip_status(lp) == GLP_FEAS)) {
		res->found = true;
		res->optimal = rc == 0 && glp_mip_status(lp) == GLP_OPT;
		res->obj = glp_mip_obj_val(lp) + konst;
		res->place = g_new(uint32_t, nr);
		for (uint32_t r = 0; r < nr; r++) {
			res->place[r] = UINT32_MAX;
			for (uint32_t u = 0; u < nu; u++) {
				if (glp_mip_col_val(lp, x[r * nu + u]) > 0.5)
					res->place[r] = unode[u];
			}
		}
		res->eff = ref_eff(s, res->place, before, &res->moves);
		res->t = ref_time(s, res->place);
		if (res->optimal)
			res->bound = res->obj;
		else
			res->bound = cb.have ? cb.bound + konst : 0;
		res->bound = MIN(res->bound, res->obj);
	} else if (cb.have) {
		res->bound = cb.bound + konst;
	}
	glp_delete_prob(lp);
	g_free(x);
	g_free(C);
	g_free(K);
	g_free(unode);
	g_free(uidx);
	g_free(memcap);
	g_array_unref(mt.ia);
	g_array_unref(mt.ja);
	g_array_unref(mt.ar);
	g_array_unref(pairs);
	return true;
}

/* ilp_version - GLPK's version (static) */
const char *ilp_version(void)
{
	return glp_version();
}
