/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_metrics.c - rolling windows of rank and node load, sparse traffic
 * table, /proc and health-file parsers (see smig_metrics.h)
 */
#include "smig_config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_metrics.h"

#define NO_NODE UINT32_MAX

typedef struct rank_win {
	uint32_t node;		/* index into m->nodes, NO_NODE: never seen */
	uint8_t n;		/* samples in the window */
	uint8_t head;		/* next slot */
	float cpu[SMIG_METRICS_WINDOW];
	float delay[SMIG_METRICS_WINDOW];
	float iters[SMIG_METRICS_WINDOW];
	uint64_t rss;		/* latest */
} rank_win_t;

typedef struct node_win {
	char *name;
	uint8_t n;
	uint8_t head;
	float load[SMIG_METRICS_WINDOW];
	uint64_t mem_avail;
	smig_health_t health;
	char *reason;
} node_win_t;

typedef struct pair_val {
	uint64_t bytes;
	uint64_t msgs;
} pair_val_t;

struct smig_metrics {
	rank_win_t *ranks;	/* dense, by rank */
	uint32_t nranks;	/* allocated entries */
	uint32_t sampled;	/* ranks with n > 0 */
	GPtrArray *nodes;	/* of node_win_t */
	GHashTable *node_idx;	/* name (borrowed from nodes) -> idx + 1 */
	GHashTable *pairs;	/* guint64 (src << 32 | dst) -> pair_val_t */
};

const char *smig_health_name(smig_health_t h)
{
	switch (h) {
	case SMIG_HEALTH_OK:
		return "ok";
	case SMIG_HEALTH_WARN:
		return "warn";
	case SMIG_HEALTH_FAIL:
		return "fail";
	default:
		return "unknown";
	}
}

static void node_win_free(gpointer p)
{
	node_win_t *n = p;

	g_free(n->name);
	g_free(n->reason);
	g_free(n);
}

smig_metrics_t *smig_metrics_new(void)
{
	smig_metrics_t *m = g_new0(smig_metrics_t, 1);

	m->nodes = g_ptr_array_new_with_free_func(node_win_free);
	m->node_idx = g_hash_table_new(g_str_hash, g_str_equal);
	m->pairs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
					 g_free);
	return m;
}

void smig_metrics_free(smig_metrics_t *m)
{
	if (!m)
		return;
	g_free(m->ranks);
	g_hash_table_destroy(m->node_idx);
	g_ptr_array_free(m->nodes, TRUE);
	g_hash_table_destroy(m->pairs);
	g_free(m);
}

static uint32_t node_find(const smig_metrics_t *m, const char *name)
{
	gpointer v = g_hash_table_lookup(m->node_idx, name);

	return v ? GPOINTER_TO_UINT(v) - 1 : NO_NODE;
}

/* smig_metrics_node_health - see smig_metrics.h */
smig_health_t smig_metrics_node_health(const smig_metrics_t *m,
				       const char *node, const char **reason)
{
	uint32_t idx = m && node ? node_find(m, node) : NO_NODE;
	const node_win_t *n;

	if (reason)
		*reason = NULL;
	if (idx == NO_NODE)
		return SMIG_HEALTH_UNKNOWN;
	n = g_ptr_array_index(m->nodes, idx);
	if (reason)
		*reason = n->reason;
	return n->health;
}

static bool bad_value(double v)
{
	return !isfinite(v) || v < 0;
}

bool smig_metrics_add_node(smig_metrics_t *m, const smig_node_sample_t *s,
			   GError **error)
{
	uint32_t idx;
	node_win_t *n;

	if (!s->node || !s->node[0]) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "node sample without a node name");
		return false;
	}
	if (bad_value(s->load)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "node=%s: load=%g: not a finite number >= 0",
			    s->node, s->load);
		return false;
	}
	idx = node_find(m, s->node);
	if (idx == NO_NODE) {
		if (m->nodes->len >= SMIG_METRICS_MAX_NODES) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "node=%s: too many nodes for one job (%u)",
				    s->node, SMIG_METRICS_MAX_NODES);
			return false;
		}
		n = g_new0(node_win_t, 1);
		n->name = g_strdup(s->node);
		g_ptr_array_add(m->nodes, n);
		g_hash_table_insert(m->node_idx, n->name,
				    GUINT_TO_POINTER(m->nodes->len));
	} else {
		n = g_ptr_array_index(m->nodes, idx);
	}
	n->load[n->head] = (float) s->load;
	n->head = (n->head + 1) % SMIG_METRICS_WINDOW;
	if (n->n < SMIG_METRICS_WINDOW)
		n->n++;
	n->mem_avail = s->mem_avail;
	n->health = s->health;
	g_free(n->reason);
	n->reason = g_strdup(s->reason ? s->reason : "");
	return true;
}

bool smig_metrics_add_rank(smig_metrics_t *m, const char *node,
			   const smig_rank_sample_t *s, GError **error)
{
	uint32_t idx = node ? node_find(m, node) : NO_NODE;
	rank_win_t *r;

	if (s->rank >= SMIG_METRICS_MAX_RANKS) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "rank=%u: beyond the cap of %u ranks per job",
			    s->rank, SMIG_METRICS_MAX_RANKS);
		return false;
	}
	if (idx == NO_NODE) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "rank=%u: node=%s: no sample of that node",
			    s->rank, node ? node : "(none)");
		return false;
	}
	if (bad_value(s->cpu) || bad_value(s->delay) || !isfinite(s->iters)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "rank=%u: cpu=%g delay=%g iters=%g: not finite numbers >= 0",
			    s->rank, s->cpu, s->delay, s->iters);
		return false;
	}
	if (s->rank >= m->nranks) {
		uint32_t n = MAX(s->rank + 1, MIN(m->nranks * 2,
						 SMIG_METRICS_MAX_RANKS));

		m->ranks = g_renew(rank_win_t, m->ranks, n);
		memset(m->ranks + m->nranks, 0,
		       (n - m->nranks) * sizeof(rank_win_t));
		for (uint32_t i = m->nranks; i < n; i++)
			m->ranks[i].node = NO_NODE;
		m->nranks = n;
	}
	r = &m->ranks[s->rank];
	if (!r->n)
		m->sampled++;
	r->node = idx;
	r->cpu[r->head] = (float) s->cpu;
	r->delay[r->head] = (float) s->delay;
	r->iters[r->head] = s->iters < 0 ? -1.0f : (float) s->iters;
	r->rss = s->rss;
	r->head = (r->head + 1) % SMIG_METRICS_WINDOW;
	if (r->n < SMIG_METRICS_WINDOW)
		r->n++;
	return true;
}

bool smig_metrics_set_pair(smig_metrics_t *m, const smig_pair_sample_t *s,
			   GError **error)
{
	guint64 key = ((guint64) s->src << 32) | s->dst;
	pair_val_t *v;

	if (s->src == s->dst || s->src >= SMIG_METRICS_MAX_RANKS ||
	    s->dst >= SMIG_METRICS_MAX_RANKS) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
			    "pair %u->%u: not two distinct ranks below %u",
			    s->src, s->dst, SMIG_METRICS_MAX_RANKS);
		return false;
	}
	v = g_hash_table_lookup(m->pairs, &key);
	if (!v) {
		guint64 *k;

		if (g_hash_table_size(m->pairs) >= SMIG_METRICS_MAX_PAIRS) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "pair %u->%u: too many rank pairs for one job (%u)",
				    s->src, s->dst, SMIG_METRICS_MAX_PAIRS);
			return false;
		}
		k = g_new(guint64, 1);
		*k = key;
		v = g_new0(pair_val_t, 1);
		g_hash_table_insert(m->pairs, k, v);
	}
	v->bytes = s->bytes;
	v->msgs = s->msgs;
	return true;
}

bool smig_metrics_has_samples(const smig_metrics_t *m)
{
	return m && m->sampled > 0;
}

/* Mean of the n newest values of a ring; -1 if any is unknown (< 0). */
/*
 * ring_mean - mean of a window; with allow_unknown, of its known values
 * (>= 0), or -1 if none is known: a rank's first sample after a start or
 * a move never has a rate (it takes two), as smig_decide_rate() knows
 */
static double ring_mean(const float *v, uint8_t n, bool allow_unknown)
{
	double sum = 0;
	uint8_t known = 0;

	for (uint8_t i = 0; i < n; i++) {
		if (v[i] < 0 && allow_unknown)
			continue;
		sum += v[i];
		known++;
	}
	if (!known)
		return allow_unknown ? -1 : 0;
	return sum / known;
}

/* Ring values oldest first, as a GVariant "ad". */
static GVariant *ring_variant(const float *v, uint8_t n, uint8_t head)
{
	GVariantBuilder b;
	uint8_t first = (uint8_t) ((head + SMIG_METRICS_WINDOW - n) %
				   SMIG_METRICS_WINDOW);

	g_variant_builder_init(&b, G_VARIANT_TYPE("ad"));
	for (uint8_t i = 0; i < n; i++)
		g_variant_builder_add(&b, "d",
				      (double) v[(first + i) %
						 SMIG_METRICS_WINDOW]);
	return g_variant_builder_end(&b);
}

bool smig_metrics_hot(const smig_metrics_t *m, uint32_t *rank,
		      double *imbalance)
{
	double best = -1, sum = 0, c;
	uint32_t hot = 0, n = 0;

	for (uint32_t i = 0; i < m->nranks; i++) {
		if (!m->ranks[i].n)
			continue;
		c = ring_mean(m->ranks[i].cpu, m->ranks[i].n, false);
		sum += c;
		n++;
		if (c > best) {
			best = c;
			hot = i;
		}
	}
	if (!n)
		return false;
	*rank = hot;
	/* Idle ranks: no meaningful ratio. */
	*imbalance = sum / n > 0.01 ? best / (sum / n) : 1.0;
	return true;
}

/* CPU used by the ranks of each node (mean over windows), by node index. */
static double *node_cpu(const smig_metrics_t *m)
{
	double *cpu = g_new0(double, m->nodes->len + 1);

	for (uint32_t i = 0; i < m->nranks; i++)
		if (m->ranks[i].n && m->ranks[i].node != NO_NODE)
			cpu[m->ranks[i].node] +=
				ring_mean(m->ranks[i].cpu, m->ranks[i].n,
					  false);
	return cpu;
}

char *smig_metrics_summary(const smig_metrics_t *m)
{
	const node_win_t *hot_node, *busiest = NULL;
	double imbalance, *cpu, best = -1;
	GString *s;
	uint32_t hot;
	bool first = true;

	if (!smig_metrics_hot(m, &hot, &imbalance))
		return NULL;
	cpu = node_cpu(m);
	for (guint i = 0; i < m->nodes->len; i++) {
		if (cpu[i] > best) {
			best = cpu[i];
			busiest = g_ptr_array_index(m->nodes, i);
		}
	}
	hot_node = g_ptr_array_index(m->nodes, m->ranks[hot].node);
	s = g_string_new(NULL);
	g_string_printf(s, "imbalance:%.2f,hot:rank%u@%s,node:%s", imbalance,
			hot, hot_node->name, busiest->name);
	for (guint i = 0; i < m->nodes->len; i++) {
		const node_win_t *n = g_ptr_array_index(m->nodes, i);

		if (n->health != SMIG_HEALTH_WARN &&
		    n->health != SMIG_HEALTH_FAIL)
			continue;
		g_string_append_printf(s, "%s%s", first ? ",unhealthy:" : "+",
				       n->name);
		first = false;
	}
	g_free(cpu);
	return g_string_free(s, FALSE);
}

typedef struct upair {
	uint32_t a, b;		/* a < b */
	uint64_t bytes, msgs;
} upair_t;

static gint upair_cmp(gconstpointer x, gconstpointer y)
{
	const upair_t *p = x, *q = y;

	if (p->bytes != q->bytes)
		return p->bytes < q->bytes ? 1 : -1;
	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return p->b < q->b ? -1 : (p->b > q->b);
}

/* Both directions of each pair summed, heaviest first. RET caller frees */
static GArray *undirected_pairs(const smig_metrics_t *m)
{
	GHashTable *idx = g_hash_table_new(g_int64_hash, g_int64_equal);
	GArray *out = g_array_new(FALSE, FALSE, sizeof(upair_t));
	GHashTableIter it;
	gpointer k, v;
	guint64 *keys;
	guint n = 0;

	keys = g_new(guint64, g_hash_table_size(m->pairs) + 1);
	g_hash_table_iter_init(&it, m->pairs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		uint32_t src = *(guint64 *) k >> 32;
		uint32_t dst = *(guint64 *) k & 0xffffffffu;
		const pair_val_t *pv = v;
		upair_t *u;
		gpointer pos;

		keys[n] = ((guint64) MIN(src, dst) << 32) | MAX(src, dst);
		if (g_hash_table_lookup_extended(idx, &keys[n], NULL, &pos)) {
			u = &g_array_index(out, upair_t, GPOINTER_TO_UINT(pos));
		} else {
			upair_t z = { MIN(src, dst), MAX(src, dst), 0, 0 };

			g_array_append_val(out, z);
			g_hash_table_insert(idx, &keys[n],
					    GUINT_TO_POINTER(out->len - 1));
			u = &g_array_index(out, upair_t, out->len - 1);
			n++;
		}
		u->bytes += pv->bytes;
		u->msgs += pv->msgs;
	}
	g_hash_table_destroy(idx);
	g_free(keys);
	g_array_sort(out, upair_cmp);
	return out;
}

static const char *rank_node_name(const smig_metrics_t *m, uint32_t rank)
{
	const node_win_t *n;

	if (rank >= m->nranks || m->ranks[rank].node == NO_NODE)
		return NULL;
	n = g_ptr_array_index(m->nodes, m->ranks[rank].node);
	return n->name;
}

/* Node x node bytes (directed, from the sender's counts), as a(sst). */
static GVariant *node_matrix(const smig_metrics_t *m)
{
	GHashTable *cells = g_hash_table_new_full(g_str_hash, g_str_equal,
						  g_free, g_free);
	GVariantBuilder b;
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, m->pairs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		const char *from = rank_node_name(m, *(guint64 *) k >> 32);
		const char *to = rank_node_name(m, *(guint64 *) k &
						   0xffffffffu);
		char *key;
		uint64_t *sum;

		if (!from || !to)
			continue;
		key = g_strconcat(from, "\n", to, NULL);
		sum = g_hash_table_lookup(cells, key);
		if (!sum) {
			sum = g_new0(uint64_t, 1);
			g_hash_table_insert(cells, key, sum);
		} else {
			g_free(key);
		}
		*sum += ((const pair_val_t *) v)->bytes;
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE("a(sst)"));
	g_hash_table_iter_init(&it, cells);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		char *nl = strchr(k, '\n');

		*nl = '\0';
		g_variant_builder_add(&b, "(sst)", (char *) k, nl + 1,
				      *(uint64_t *) v);
		*nl = '\n';
	}
	g_hash_table_destroy(cells);
	return g_variant_builder_end(&b);
}

GVariant *smig_metrics_to_variant(const smig_metrics_t *m)
{
	GVariantBuilder d, b;
	double *cpu = node_cpu(m);
	GArray *pairs;
	uint32_t listed = 0;
	char *summary;

	g_variant_builder_init(&d, G_VARIANT_TYPE_VARDICT);

	g_variant_builder_init(&b, G_VARIANT_TYPE("a(usddtdad)"));
	for (uint32_t i = 0; i < m->nranks &&
	     listed < SMIG_METRICS_STATUS_RANKS; i++) {
		const rank_win_t *r = &m->ranks[i];

		if (!r->n)
			continue;
		g_variant_builder_add(&b, "(usddtd@ad)", i,
				      rank_node_name(m, i),
				      ring_mean(r->cpu, r->n, false),
				      ring_mean(r->delay, r->n, false),
				      (guint64) r->rss,
				      ring_mean(r->iters, r->n, true),
				      ring_variant(r->cpu, r->n, r->head));
		listed++;
	}
	g_variant_builder_add(&d, "{sv}", "ranks", g_variant_builder_end(&b));
	g_variant_builder_add(&d, "{sv}", "ranks_total",
			      g_variant_new_uint32(m->sampled));

	g_variant_builder_init(&b, G_VARIANT_TYPE("a(sddtssad)"));
	for (guint i = 0; i < m->nodes->len; i++) {
		const node_win_t *n = g_ptr_array_index(m->nodes, i);
		uint8_t last = (n->head + SMIG_METRICS_WINDOW - 1) %
			       SMIG_METRICS_WINDOW;

		g_variant_builder_add(&b, "(sddtss@ad)", n->name,
				      (double) n->load[last], cpu[i],
				      (guint64) n->mem_avail,
				      smig_health_name(n->health),
				      n->reason ? n->reason : "",
				      ring_variant(n->load, n->n, n->head));
	}
	g_variant_builder_add(&d, "{sv}", "nodes", g_variant_builder_end(&b));

	pairs = undirected_pairs(m);
	g_variant_builder_init(&b, G_VARIANT_TYPE("a(uutt)"));
	for (guint i = 0; i < pairs->len && i < SMIG_METRICS_STATUS_PAIRS;
	     i++) {
		upair_t *u = &g_array_index(pairs, upair_t, i);

		g_variant_builder_add(&b, "(uutt)", u->a, u->b,
				      (guint64) u->bytes, (guint64) u->msgs);
	}
	g_variant_builder_add(&d, "{sv}", "pairs", g_variant_builder_end(&b));
	g_variant_builder_add(&d, "{sv}", "pairs_total",
			      g_variant_new_uint32(pairs->len));
	g_array_free(pairs, TRUE);
	g_variant_builder_add(&d, "{sv}", "matrix", node_matrix(m));

	summary = smig_metrics_summary(m);
	if (summary)
		g_variant_builder_add(&d, "{sv}", "summary",
				      g_variant_new_take_string(summary));
	g_free(cpu);
	return g_variant_builder_end(&d);
}

uint32_t smig_metrics_rank_window(const smig_metrics_t *m, uint32_t rank,
				  const char **node, double *cpu,
				  double *delay, double *iters, uint64_t *rss)
{
	const rank_win_t *r;

	if (node)
		*node = NULL;
	if (!m || rank >= m->nranks || !m->ranks[rank].n)
		return 0;
	r = &m->ranks[rank];
	if (node)
		*node = rank_node_name(m, rank);
	for (uint8_t i = 0; i < r->n; i++) {
		/* i-th newest: the slot before head, going back. */
		uint8_t k = (uint8_t) ((r->head + 2 * SMIG_METRICS_WINDOW - 1 -
					i) % SMIG_METRICS_WINDOW);

		if (cpu)
			cpu[i] = r->cpu[k];
		if (delay)
			delay[i] = r->delay[k];
		if (iters)
			iters[i] = r->iters[k] < 0 ? -1.0 : r->iters[k];
	}
	if (rss)
		*rss = r->rss;
	return r->n;
}

void smig_metrics_foreach_pair(const smig_metrics_t *m,
			       void (*fn)(const smig_pair_sample_t *s,
					  void *data),
			       void *data)
{
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, m->pairs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		const pair_val_t *pv = v;
		smig_pair_sample_t s = {
			.src = *(guint64 *) k >> 32,
			.dst = *(guint64 *) k & 0xffffffffu,
			.bytes = pv->bytes,
			.msgs = pv->msgs,
		};

		fn(&s, data);
	}
}

void smig_metrics_clear_ranks(smig_metrics_t *m)
{
	if (!m)
		return;
	g_clear_pointer(&m->ranks, g_free);
	m->nranks = 0;
	m->sampled = 0;
	g_hash_table_remove_all(m->pairs);
}

size_t smig_metrics_memory(const smig_metrics_t *m)
{
	size_t bytes = sizeof(*m) + (size_t) m->nranks * sizeof(rank_win_t);

	/* glib hash tables: ~3 words per slot plus the key and value. */
	bytes += g_hash_table_size(m->pairs) *
		 (sizeof(guint64) + sizeof(pair_val_t) + 32 + 3 * 8);
	bytes += m->nodes->len * (sizeof(node_win_t) + 64 + 3 * 8);
	return bytes;
}

/* ---------------------------------------------------------------- /proc */

/* Parse an unsigned decimal at *p, moving *p past it. */
static bool take_u64(const char **p, uint64_t *out)
{
	char *end;
	unsigned long long v;

	while (**p == ' ' || **p == '\t')
		(*p)++;
	if (!g_ascii_isdigit(**p))
		return false;
	v = g_ascii_strtoull(*p, &end, 10);
	if (end == *p)
		return false;
	*p = end;
	*out = v;
	return true;
}

bool smig_proc_parse_stat(const char *text, uint64_t *ticks)
{
	/* The command name may hold spaces and ')': fields follow the last ')'. */
	const char *p = text ? strrchr(text, ')') : NULL;
	uint64_t ut, st;

	if (!p)
		return false;
	p++;
	/* Fields 3 (state) to 13, then 14 utime and 15 stime. */
	for (int field = 3; field <= 13; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return false;
		while (*p && *p != ' ')
			p++;
	}
	if (!take_u64(&p, &ut) || !take_u64(&p, &st))
		return false;
	*ticks = ut + st;
	return true;
}

bool smig_proc_parse_schedstat(const char *text, uint64_t *run_ns,
			       uint64_t *delay_ns)
{
	const char *p = text;
	uint64_t r, d;

	if (!p || !take_u64(&p, &r) || !take_u64(&p, &d))
		return false;
	*run_ns = r;
	*delay_ns = d;
	return true;
}

/* Find "Key:" at a line start and parse "<n> kB" after it, in bytes. */
static bool kb_field(const char *text, const char *key, uint64_t *bytes)
{
	size_t len = strlen(key);
	const char *p = text;
	uint64_t kb;

	while (p && *p) {
		if (!strncmp(p, key, len)) {
			p += len;
			if (!take_u64(&p, &kb))
				return false;
			while (*p == ' ')
				p++;
			if (strncmp(p, "kB", 2) || kb > UINT64_MAX / 1024)
				return false;
			*bytes = kb * 1024;
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

bool smig_proc_parse_status_rss(const char *text, uint64_t *bytes)
{
	return text && kb_field(text, "VmRSS:", bytes);
}

bool smig_proc_parse_meminfo(const char *text, uint64_t *bytes)
{
	return text && kb_field(text, "MemAvailable:", bytes);
}

bool smig_proc_parse_loadavg(const char *text, double *load)
{
	char *end;
	double v;

	if (!text)
		return false;
	v = g_ascii_strtod(text, &end);
	if (end == text || (*end != ' ' && *end != '\0' && *end != '\n') ||
	    !isfinite(v) || v < 0)
		return false;
	*load = v;
	return true;
}

bool smig_health_parse(const char *text, smig_health_t *health,
		       char **reason)
{
	const char *p = text, *w;
	size_t wlen;
	smig_health_t h;
	char *r;

	if (!p)
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	w = p;
	while (*p && !g_ascii_isspace(*p))
		p++;
	wlen = p - w;
	if (wlen == 2 && !g_ascii_strncasecmp(w, "ok", 2))
		h = SMIG_HEALTH_OK;
	else if (wlen == 4 && !g_ascii_strncasecmp(w, "warn", 4))
		h = SMIG_HEALTH_WARN;
	else if (wlen == 4 && !g_ascii_strncasecmp(w, "fail", 4))
		h = SMIG_HEALTH_FAIL;
	else
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	r = g_strndup(p, strcspn(p, "\r\n"));
	g_strchomp(r);
	/* One line in a log and in scontrol: bounded, printable. */
	if (strlen(r) > 200)
		r[200] = '\0';
	for (char *c = r; *c; c++)
		if (!g_ascii_isprint(*c))
			*c = '?';
	*health = h;
	*reason = r;
	return true;
}
