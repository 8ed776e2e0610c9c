/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig.c - the slurm-migrate command line tool: what the balancer knows
 * about a job (smig show), pictures of it (smig plot), and the subcommands
 * of the other files (a table below): smig capture (smig_capture.c),
 * smig move, rebalance and history (smig_manual.c)
 *
 * It asks the balancer with QUERY over a munge-authenticated connection;
 * the balancer answers STATUS to the job's owner, root and SlurmUser and
 * REFUSED to anyone else. Fields are in doc/design.md.
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "smig_link.h"
#include "smig_msgs.h"

/* In the other files of the tool. */
int smig_cmd_capture(int argc, char **argv);
int smig_cmd_move(int argc, char **argv);
int smig_cmd_rebalance(int argc, char **argv);
int smig_cmd_history(int argc, char **argv);
int smig_cmd_images(int argc, char **argv);

static int cmd_show(int argc, char **argv);
static int cmd_plot(int argc, char **argv);

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "show", cmd_show, "show JOBID [--json]     state, per-rank load, top pairs, node (and switch) traffic" },
	{ "plot", cmd_plot, "plot JOBID --out FILE.svg  affinity matrix and load over time" },
	{ "capture", smig_cmd_capture, "capture JOBID [--step S] [--wait [SECONDS]]  capture images now" },
	{ "move", smig_cmd_move, "move JOBID --ranks R --to NODE [--step S] [--wait [SECONDS]]  move ranks now" },
	{ "rebalance", smig_cmd_rebalance, "rebalance JOBID [--step S] [--wait [SECONDS]]  let the policy place the ranks now" },
	{ "history", smig_cmd_history, "history JOBID [--json]  decisions and their outcomes" },
	{ "images", smig_cmd_images, "images [--reclaim]      job directories of the image store, their fate; --reclaim (root) removes what the policy allows" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: smig COMMAND [ARGS]\n");
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
		fprintf(f, "  smig %s\n", commands[i].usage);
	fprintf(f, "The balancer is found through migrate.conf beside $SLURM_CONF (default /etc/slurm/slurm.conf).\n");
}

/*
 * query - QUERY(job) to the balancer, STATUS back
 * OUT st - the STATUS, caller frees it with smig_msg_status_clear()
 * RET false after a message on stderr
 */
static bool query(uint32_t job, smig_msg_status_t *st)
{
	smig_link_t l = { .fd = -1 };
	GError *err = NULL;
	bool ok;

	ok = smig_link_open(&l, &err) && smig_link_query(&l, job, st, &err);
	if (!ok) {
		fprintf(stderr, "smig: JobId=%u: %s\n", job, err->message);
		g_error_free(err);
	}
	smig_link_close(&l);
	return ok;
}

/*
 * An array field of STATUS (v, NULL when absent) of the given type, or an
 * empty one. RET new reference, caller g_variant_unref()s
 */
static GVariant *field(GVariant *v, const char *type)
{
	if (v)
		return g_variant_ref(v);
	return g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE(type + 1),
						      NULL, 0));
}

static const char *slurm_state(GVariant *states, const char *node)
{
	const char *n, *s;

	for (gsize i = 0; i < g_variant_n_children(states); i++) {
		g_variant_get_child(states, i, "(&s&s)", &n, &s);
		if (!strcmp(n, node))
			return s;
	}
	return "?";
}

/*
 * A node's leaf switch from STATUS's switches field (NULL: the cluster has
 * no switch tree): the name, "-" for a node under no switch
 */
static const char *node_switch(GVariant *switches, const char *node)
{
	const char *n, *sw;

	for (gsize i = 0; switches && i < g_variant_n_children(switches); i++) {
		g_variant_get_child(switches, i, "(&s&s)", &n, &sw);
		if (!strcmp(n, node))
			return *sw ? sw : "-";
	}
	return "-";
}

/*
 * Traffic by switch pair: the node matrix summed by the nodes' leaf
 * switches. OUT names - sorted switch names (caller
 * g_ptr_array_free()s); RET new table "from\tto" -> guint64 * bytes,
 * caller g_hash_table_unref()s
 */
static GHashTable *switch_traffic(GVariant *matrix, GVariant *switches,
				  GPtrArray **names)
{
	GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					      g_free);
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
	const char *a, *b, *sa, *sb;
	guint64 bytes;

	*names = g_ptr_array_new_with_free_func(g_free);
	for (gsize i = 0; i < g_variant_n_children(matrix); i++) {
		char *key;
		guint64 *cell;

		g_variant_get_child(matrix, i, "(&s&st)", &a, &b, &bytes);
		sa = node_switch(switches, a);
		sb = node_switch(switches, b);
		for (int k = 0; k < 2; k++) {
			const char *sw = k ? sb : sa;

			if (!g_hash_table_contains(seen, sw)) {
				char *copy = g_strdup(sw);

				g_ptr_array_add(*names, copy);
				g_hash_table_add(seen, copy);
			}
		}
		key = g_strdup_printf("%s\t%s", sa, sb);
		cell = g_hash_table_lookup(t, key);
		if (!cell) {
			cell = g_new0(guint64, 1);
			g_hash_table_insert(t, key, cell);
		} else {
			g_free(key);
		}
		*cell += bytes;
	}
	g_hash_table_unref(seen);
	g_ptr_array_sort(*names, (GCompareFunc) g_strcmp0);
	return t;
}

static guint64 switch_cell(GHashTable *t, const char *from, const char *to)
{
	char *key = g_strdup_printf("%s\t%s", from, to);
	guint64 *cell = g_hash_table_lookup(t, key);

	g_free(key);
	return cell ? *cell : 0;
}

/* Sorted unique node names of the matrix. RET caller g_ptr_array_free()s */
static GPtrArray *matrix_nodes(GVariant *matrix, GVariant *nodes)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const char *a;

	for (gsize i = 0; i < g_variant_n_children(nodes); i++) {
		g_variant_get_child(nodes, i, "(&sddtssad)", &a, NULL, NULL,
				    NULL, NULL, NULL, NULL);
		g_ptr_array_add(names, g_strdup(a));
	}
	g_ptr_array_sort(names, (GCompareFunc) g_strcmp0);
	(void) matrix;
	return names;
}

static guint64 matrix_cell(GVariant *matrix, const char *from, const char *to)
{
	const char *a, *b;
	guint64 bytes;

	for (gsize i = 0; i < g_variant_n_children(matrix); i++) {
		g_variant_get_child(matrix, i, "(&s&st)", &a, &b, &bytes);
		if (!strcmp(a, from) && !strcmp(b, to))
			return bytes;
	}
	return 0;
}

static guint64 node_cell(gpointer data, const char *from, const char *to)
{
	return matrix_cell(data, from, to);
}

static guint64 leaf_cell(gpointer data, const char *from, const char *to)
{
	return switch_cell(data, from, to);
}

/* A traffic matrix under its title: one row and one column per name. */
static void print_traffic(const char *title, GPtrArray *names,
			  guint64 (*cell)(gpointer, const char *,
					  const char *),
			  gpointer data)
{
	printf("\n%s\n%-12s", title, "");
	for (guint j = 0; j < names->len; j++)
		printf(" %14s", (char *) names->pdata[j]);
	printf("\n");
	for (guint i = 0; i < names->len; i++) {
		printf("%-12s", (char *) names->pdata[i]);
		for (guint j = 0; j < names->len; j++)
			printf(" %14" G_GUINT64_FORMAT,
			       cell(data, names->pdata[i], names->pdata[j]));
		printf("\n");
	}
}

/*
 * fmt_interval - ms as seconds for a person: "0.1s", "2s", "1.5s"
 * (never rounded to "0.0s"). RET static buffer
 */
static const char *fmt_interval(uint32_t ms)
{
	static char buf[32];

	if (ms % 1000 == 0)
		snprintf(buf, sizeof(buf), "%us", ms / 1000);
	else if (ms % 100 == 0)
		snprintf(buf, sizeof(buf), "%.1fs", ms / 1000.0);
	else
		snprintf(buf, sizeof(buf), "%.3gs", ms / 1000.0);
	return buf;
}

/*
 * print_spares - the hot spares of each step that asked for spares=N, one
 * line each: "hot spares: StepId=0 spares=1: node3" ("none usable now"
 * when a move used them or Slurm drained them)
 */
static void print_spares(const smig_msg_status_t *st)
{
	GVariant *spares = st->has_spares ? st->spares : NULL;
	GVariantIter *names;
	uint32_t step, asked;
	const char *node;

	for (gsize i = 0; spares && i < g_variant_n_children(spares); i++) {
		bool first = true;

		g_variant_get_child(spares, i, "(uuas)", &step, &asked,
				    &names);
		printf("hot spares: StepId=%u spares=%u: ", step, asked);
		while (g_variant_iter_loop(names, "&s", &node)) {
			printf("%s%s", first ? "" : ",", node);
			first = false;
		}
		printf("%s\n", first ? "none usable now" : "");
		g_variant_iter_free(names);
	}
}

static void print_text(uint32_t job, const smig_msg_status_t *st)
{
	GVariant *ranks = field(st->ranks, "a(usddtdad)");
	GVariant *nodes = field(st->nodes, "a(sddtssad)");
	GVariant *pairs = field(st->pairs, "a(uutt)");
	GVariant *matrix = field(st->matrix, "a(sst)");
	GVariant *states = field(st->slurm_state, "a(ss)");
	/* NULL: the cluster has no switch tree (no SWITCH column). */
	GVariant *switches = st->has_switches ? st->switches : NULL;
	const char *state = st->state, *node, *health, *reason;
	uint32_t interval = st->interval_ms, rank, a, b, total;
	double cpu, delay, iters, load;
	guint64 rss, bytes, msgs, avail;
	GPtrArray *names;

	printf("JobId=%u %s\n", job, state);
	print_spares(st);
	/*
	 * No rank in the window: none sampled yet, or a move emptied the
	 * window (samples were taken, of the old placement). The interval
	 * is the balancer's (0: no step registered, not known).
	 */
	if (!g_variant_n_children(ranks)) {
		printf("%s", st->samples ? "no sample since the last move" :
		       "no sample yet");
		if (interval)
			printf(" (ranks are sampled every %s)",
			       fmt_interval(interval));
		printf("\n");
		goto out;
	}
	total = st->has_ranks_total ? st->ranks_total : 0;
	if (interval)
		printf("sampled every %s, ", fmt_interval(interval));
	printf("%u ranks, window of up to 8 samples\n\n", total);
	printf("%6s  %-12s ", "RANK", "NODE");
	if (switches)
		printf("%-12s ", "SWITCH");
	printf("%7s %7s %10s %10s\n", "CPU%", "DELAY%", "RSS_MB", "ITER/S");
	for (gsize i = 0; i < g_variant_n_children(ranks); i++) {
		char it[32] = "-";

		g_variant_get_child(ranks, i, "(u&sddtdad)", &rank, &node,
				    &cpu, &delay, &rss, &iters, NULL);
		if (iters >= 0)
			snprintf(it, sizeof(it), "%.1f", iters);
		printf("%6u  %-12s ", rank, node);
		if (switches)
			printf("%-12s ", node_switch(switches, node));
		printf("%7.1f %7.1f %10.1f %10s\n", 100 * cpu, 100 * delay,
		       rss / 1048576.0, it);
	}
	printf("\n%-12s %-6s %6s %7s %12s  %s\n", "NODE", "SLURM", "LOAD",
	       "CPU%", "MEM_AVAIL_MB", "HEALTH");
	for (gsize i = 0; i < g_variant_n_children(nodes); i++) {
		g_variant_get_child(nodes, i, "(&sddt&s&sad)", &node, &load,
				    &cpu, &avail, &health, &reason, NULL);
		printf("%-12s %-6s %6.2f %7.1f %12.0f  %s%s%s\n", node,
		       slurm_state(states, node), load, 100 * cpu,
		       avail / 1048576.0, health, reason[0] ? ": " : "",
		       reason);
	}
	total = st->has_pairs_total ? st->pairs_total : 0;
	if (g_variant_n_children(pairs)) {
		printf("\nTOP PAIRS (bytes both ways; %u pairs talk)\n", total);
		printf("%6s %6s %14s %10s\n", "RANK", "RANK", "BYTES", "MSGS");
		for (gsize i = 0; i < g_variant_n_children(pairs) && i < 10;
		     i++) {
			g_variant_get_child(pairs, i, "(uutt)", &a, &b, &bytes,
					    &msgs);
			printf("%6u %6u %14" G_GUINT64_FORMAT " %10"
			       G_GUINT64_FORMAT "\n", a, b, bytes, msgs);
		}
		names = matrix_nodes(matrix, nodes);
		print_traffic("NODE TRAFFIC (bytes sent, row -> column)",
			      names, node_cell, matrix);
		g_ptr_array_free(names, TRUE);
	}
	if (switches && g_variant_n_children(matrix)) {
		GHashTable *t = switch_traffic(matrix, switches, &names);

		print_traffic("SWITCH TRAFFIC (bytes sent, row -> column; leaf switches)",
			      names, leaf_cell, t);
		g_ptr_array_free(names, TRUE);
		g_hash_table_unref(t);
	}
out:
	g_variant_unref(ranks);
	g_variant_unref(nodes);
	g_variant_unref(pairs);
	g_variant_unref(matrix);
	g_variant_unref(states);
}

static void json_doubles(GString *s, GVariant *ad)
{
	gsize n;
	const double *v = g_variant_get_fixed_array(ad, &n, sizeof(double));

	g_string_append_c(s, '[');
	for (gsize i = 0; i < n; i++)
		g_string_append_printf(s, "%s%.4f", i ? "," : "", v[i]);
	g_string_append_c(s, ']');
}

/* ,"spares":[{"step":0,"spares":1,"nodes":["node3"]}] ([] when none) */
static void json_spares(GString *s, const smig_msg_status_t *st)
{
	GVariant *spares = st->has_spares ? st->spares : NULL;
	GVariantIter *names;
	uint32_t step, asked;
	const char *node;

	g_string_append(s, ",\"spares\":[");
	for (gsize i = 0; spares && i < g_variant_n_children(spares); i++) {
		bool first = true;

		g_variant_get_child(spares, i, "(uuas)", &step, &asked,
				    &names);
		g_string_append_printf(s, "%s{\"step\":%u,\"spares\":%u,\"nodes\":[",
				       i ? "," : "", step, asked);
		while (g_variant_iter_loop(names, "&s", &node)) {
			if (!first)
				g_string_append_c(s, ',');
			smig_json_str(s, node);
			first = false;
		}
		g_string_append(s, "]}");
		g_variant_iter_free(names);
	}
	g_string_append_c(s, ']');
}

static void print_json(uint32_t job, const smig_msg_status_t *st)
{
	GVariant *ranks = field(st->ranks, "a(usddtdad)");
	GVariant *nodes = field(st->nodes, "a(sddtssad)");
	GVariant *pairs = field(st->pairs, "a(uutt)");
	GVariant *matrix = field(st->matrix, "a(sst)");
	GVariant *states = field(st->slurm_state, "a(ss)");
	const char *state = st->state, *node, *to, *health, *reason;
	const char *summary = st->has_summary ? st->summary : NULL;
	GVariant *switches = st->has_switches ? st->switches : NULL;
	uint32_t interval = st->interval_ms, rank, a, b;
	guint64 samples = st->samples, decided = st->decided;
	double cpu, delay, iters, load;
	guint64 rss, bytes, msgs, avail;
	GString *s = g_string_new(NULL);
	GVariant *hist;

	g_string_append_printf(s, "{\"job\":%u,\"state\":", job);
	smig_json_str(s, state);
	g_string_append(s, ",\"summary\":");
	if (summary)
		smig_json_str(s, summary);
	else
		g_string_append(s, "null");
	g_string_append_printf(s, ",\"interval_ms\":%u", interval);
	g_string_append_printf(s, ",\"samples\":%" G_GUINT64_FORMAT, samples);
	g_string_append_printf(s, ",\"decided_samples\":%" G_GUINT64_FORMAT,
			       decided);
	json_spares(s, st);
	g_string_append(s, ",\"ranks\":[");
	for (gsize i = 0; i < g_variant_n_children(ranks); i++) {
		g_variant_get_child(ranks, i, "(u&sddtd@ad)", &rank, &node,
				    &cpu, &delay, &rss, &iters, &hist);
		g_string_append_printf(s, "%s{\"rank\":%u,\"node\":",
				       i ? "," : "", rank);
		smig_json_str(s, node);
		g_string_append(s, ",\"switch\":");
		if (switches)
			smig_json_str(s, node_switch(switches, node));
		else
			g_string_append(s, "null");
		g_string_append_printf(s, ",\"cpu\":%.4f,\"delay\":%.4f,\"rss\":%" G_GUINT64_FORMAT ",\"iters_per_s\":",
				       cpu, delay, rss);
		if (iters >= 0)
			g_string_append_printf(s, "%.3f", iters);
		else
			g_string_append(s, "null");
		g_string_append(s, ",\"cpu_history\":");
		json_doubles(s, hist);
		g_string_append_c(s, '}');
		g_variant_unref(hist);
	}
	g_string_append(s, "],\"nodes\":[");
	for (gsize i = 0; i < g_variant_n_children(nodes); i++) {
		g_variant_get_child(nodes, i, "(&sddt&s&s@ad)", &node, &load,
				    &cpu, &avail, &health, &reason, &hist);
		g_string_append_printf(s, "%s{\"node\":", i ? "," : "");
		smig_json_str(s, node);
		g_string_append(s, ",\"switch\":");
		if (switches)
			smig_json_str(s, node_switch(switches, node));
		else
			g_string_append(s, "null");
		g_string_append(s, ",\"slurm_state\":");
		smig_json_str(s, slurm_state(states, node));
		g_string_append_printf(s, ",\"load\":%.2f,\"cpu\":%.4f,\"mem_avail\":%" G_GUINT64_FORMAT ",\"health\":",
				       load, cpu, avail);
		smig_json_str(s, health);
		g_string_append(s, ",\"reason\":");
		smig_json_str(s, reason);
		g_string_append(s, ",\"load_history\":");
		json_doubles(s, hist);
		g_string_append_c(s, '}');
		g_variant_unref(hist);
	}
	g_string_append(s, "],\"pairs\":[");
	for (gsize i = 0; i < g_variant_n_children(pairs); i++) {
		g_variant_get_child(pairs, i, "(uutt)", &a, &b, &bytes, &msgs);
		g_string_append_printf(s, "%s{\"ranks\":[%u,%u],\"bytes\":%" G_GUINT64_FORMAT ",\"msgs\":%" G_GUINT64_FORMAT "}",
				       i ? "," : "", a, b, bytes, msgs);
	}
	g_string_append(s, "],\"node_traffic\":[");
	for (gsize i = 0; i < g_variant_n_children(matrix); i++) {
		g_variant_get_child(matrix, i, "(&s&st)", &node, &to, &bytes);
		g_string_append_printf(s, "%s{\"from\":", i ? "," : "");
		smig_json_str(s, node);
		g_string_append(s, ",\"to\":");
		smig_json_str(s, to);
		g_string_append_printf(s, ",\"bytes\":%" G_GUINT64_FORMAT "}",
				       bytes);
	}
	g_string_append(s, "],\"switch_traffic\":");
	if (switches) {
		GPtrArray *names;
		GHashTable *t = switch_traffic(matrix, switches, &names);
		bool first = true;

		g_string_append_c(s, '[');
		for (guint x = 0; x < names->len; x++) {
			for (guint y = 0; y < names->len; y++) {
				guint64 v = switch_cell(t, names->pdata[x],
							names->pdata[y]);

				if (!v)
					continue;
				g_string_append_printf(s, "%s{\"from\":",
						       first ? "" : ",");
				smig_json_str(s, names->pdata[x]);
				g_string_append(s, ",\"to\":");
				smig_json_str(s, names->pdata[y]);
				g_string_append_printf(s, ",\"bytes\":%" G_GUINT64_FORMAT "}",
						       v);
				first = false;
			}
		}
		g_string_append_c(s, ']');
		g_ptr_array_free(names, TRUE);
		g_hash_table_unref(t);
	} else {
		g_string_append(s, "null");
	}
	g_string_append(s, "}\n");
	fputs(s->str, stdout);
	g_string_free(s, TRUE);
	g_variant_unref(ranks);
	g_variant_unref(nodes);
	g_variant_unref(pairs);
	g_variant_unref(matrix);
	g_variant_unref(states);
}

static int cmd_show(int argc, char **argv)
{
	bool json = false;
	uint32_t job;
	smig_msg_status_t st;

	if (!smig_parse_job_json("show", argc, argv, &job, &json))
		return 2;
	if (!query(job, &st))
		return 1;
	if (json)
		print_json(job, &st);
	else
		print_text(job, &st);
	smig_msg_status_clear(&st);
	return 0;
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

/* Colour of a heat value in [0, 1]: white to dark red. */
static void heat_colour(double v, char *buf, size_t len)
{
	int g = (int) lround(255 * (1 - v));
	int r = (int) lround(255 - 80 * v);

	snprintf(buf, len, "#%02x%02x%02x", r, g, g);
}

/*
 * write_svg - the affinity matrix of the top pairs (ranks that appear in
 * them, bytes both ways) and each rank's CPU share over the window
 */
static bool write_svg(FILE *f, uint32_t job,
		      const smig_msg_status_t *st)
{
	GVariant *ranks = field(st->ranks, "a(usddtdad)");
	GVariant *pairs = field(st->pairs, "a(uutt)");
	GArray *ids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	uint32_t a, b, interval = st->interval_ms, rank;
	guint64 bytes, msgs, max = 1;
	const int cell = 16, mx = 60, my = 60, W = 900;
	int n, lw = 380, lh = 220, lx, ly;
	const char *node;
	double maxcpu = 1.0;
	GVariant *hist;
	char col[32];

	for (gsize i = 0; i < g_variant_n_children(pairs); i++) {
		g_variant_get_child(pairs, i, "(uutt)", &a, &b, &bytes, &msgs);
		max = MAX(max, bytes);
		for (int k = 0; k < 2; k++) {
			uint32_t r = k ? b : a;
			guint j;

			for (j = 0; j < ids->len; j++)
				if (g_array_index(ids, uint32_t, j) == r)
					break;
			if (j == ids->len)
				g_array_append_val(ids, r);
		}
	}
	g_array_sort(ids, cmp_u32);
	n = ids->len;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"10\" y=\"20\" font-size=\"14\">JobId=%u: communication affinity (bytes both ways) and CPU share over time</text>\n",
		W, MAX(my + n * cell + 60, my + lh + 80), job);
	/* Matrix. */
	fprintf(f, "<text x=\"%d\" y=\"%d\">rank x rank (top pairs)</text>\n",
		mx, my - 20);
	for (int i = 0; i < n; i++) {
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%u</text>\n",
			mx - 4, my + i * cell + 12,
			g_array_index(ids, uint32_t, i));
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%u</text>\n",
			mx + i * cell + cell / 2, my - 4,
			g_array_index(ids, uint32_t, i));
	}
	for (gsize p = 0; p < g_variant_n_children(pairs); p++) {
		int ia = 0, ib = 0;

		g_variant_get_child(pairs, p, "(uutt)", &a, &b, &bytes, &msgs);
		for (int i = 0; i < n; i++) {
			if (g_array_index(ids, uint32_t, i) == a)
				ia = i;
			if (g_array_index(ids, uint32_t, i) == b)
				ib = i;
		}
		heat_colour((double) bytes / max, col, sizeof(col));
		for (int k = 0; k < 2; k++)
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#ccc\"><title>%u-%u: %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " messages</title></rect>\n",
				mx + (k ? ia : ib) * cell,
				my + (k ? ib : ia) * cell, cell, cell, col,
				a, b, bytes, msgs);
	}
	if (!n)
		fprintf(f, "<text x=\"%d\" y=\"%d\">no traffic counted (run with --migrate=...,affinity)</text>\n",
			mx, my + 12);
	/* Load over time. */
	lx = MAX(mx + n * cell + 80, 420);
	ly = my;
	lw = MIN(lw, W - lx - 20);
	for (gsize i = 0; i < g_variant_n_children(ranks); i++) {
		gsize nh;
		const double *v;

		g_variant_get_child(ranks, i, "(u&sddtd@ad)", &rank, &node,
				    NULL, NULL, NULL, NULL, &hist);
		v = g_variant_get_fixed_array(hist, &nh, sizeof(double));
		for (gsize k = 0; k < nh; k++)
			maxcpu = MAX(maxcpu, v[k]);
		g_variant_unref(hist);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\">CPU share per rank, last samples (every %.1fs); top = %.2f cores</text>\n"
		"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n",
		lx, ly - 20, interval / 1000.0, maxcpu, lx, ly, lw, lh);
	for (gsize i = 0; i < g_variant_n_children(ranks); i++) {
		gsize nh;
		const double *v;

		g_variant_get_child(ranks, i, "(u&sddtd@ad)", &rank, &node,
				    NULL, NULL, NULL, NULL, &hist);
		v = g_variant_get_fixed_array(hist, &nh, sizeof(double));
		snprintf(col, sizeof(col), "hsl(%u,70%%,40%%)",
			 (unsigned) ((rank * 137) % 360));
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
			col);
		for (gsize k = 0; k < nh; k++)
			fprintf(f, "%.1f,%.1f ",
				lx + (nh > 1 ? (double) k * lw / (nh - 1) : 0),
				ly + lh - v[k] / maxcpu * lh);
		fprintf(f, "\"><title>rank %u on %s</title></polyline>\n",
			rank, node);
		if (i < 16)
			fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\">rank %u@%s</text>\n",
				lx + (int) (i % 4) * 95, ly + lh + 20 +
				(int) (i / 4) * 14, col, rank, node);
		g_variant_unref(hist);
	}
	fprintf(f, "</svg>\n");
	g_array_free(ids, TRUE);
	g_variant_unref(ranks);
	g_variant_unref(pairs);
	return !ferror(f);
}

static int cmd_plot(int argc, char **argv)
{
	const char *jobarg = NULL, *out = NULL;
	uint32_t job;
	smig_msg_status_t st;
	FILE *f;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!jobarg && argv[i][0] != '-')
			jobarg = argv[i];
		else {
			fprintf(stderr, "smig plot: %s: unexpected argument (smig plot JOBID --out FILE.svg)\n",
				argv[i]);
			return 2;
		}
	}
	if (!jobarg || !out) {
		fprintf(stderr, "smig plot: JOBID and --out FILE.svg needed\n");
		return 2;
	}
	if (!smig_parse_job(jobarg, &job))
		return 2;
	if (!query(job, &st))
		return 1;
	f = fopen(out, "w");
	if (!f) {
		fprintf(stderr, "smig plot: %s: %s\n", out, g_strerror(errno));
		smig_msg_status_clear(&st);
		return 1;
	}
	if (!write_svg(f, job, &st)) {
		fprintf(stderr, "smig plot: %s: write error\n", out);
		rc = 1;
	}
	if (fclose(f) != 0 && !rc) {
		fprintf(stderr, "smig plot: %s: %s\n", out, g_strerror(errno));
		rc = 1;
	}
	smig_msg_status_clear(&st);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "smig: %s: unknown command\n", argv[1]);
	usage(stderr);
	return 2;
}
