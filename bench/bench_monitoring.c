/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_monitoring.c - can the balancer ingest the samples of a big
 * machine? A load generator plays AGENTS node agents with RANKS ranks in
 * all (default 10,000 x 100 = 1,000,000 ranks, 2 peers per rank counted by
 * the PMPI layer) sending one SAMPLE each per interval (default 30 s, the
 * MigrateSampleInterval default). For each interval it measures:
 *   agents  building and encoding the frames (spread over the agents'
 *           nodes in reality: shown, not charged to the balancer);
 *   balancer decoding every frame (smig_wire_decode, auth "none") and the
 *           balancer's SAMPLE ingestion (validation, smig_metrics windows
 *           and traffic table, the load= summary of each job).
 * What it does not measure: the socket reads (one read per frame, the
 * balancer's poll loop) and munge's decode of each credential, which with
 * munged here costs tens of microseconds per message (see the summary line).
 * CPU share = balancer CPU time per interval / interval. Memory = the
 * metrics' own count and the growth of this process's VmRSS.
 * The last line is the headline: "bench-monitoring: ingestion ...".
 */
#include "smig_config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_metrics.h"
#include "smig_wire.h"

#define RANKS_PER_JOB	50000	/* below SMIG_METRICS_MAX_RANKS */

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_now(void)
{
	return g_get_monotonic_time() / 1e6;
}

static long rss_kb(void)
{
	char *text = NULL, *p;
	long kb = -1;

	if (!g_file_get_contents("/proc/self/status", &text, NULL, NULL))
		return -1;
	p = strstr(text, "VmRSS:");
	if (p)
		kb = strtol(p + 6, NULL, 10);
	g_free(text);
	return kb;
}

/* One agent's SAMPLE body: ranks [first, first + n) of its job. */
static GVariant *sample_body(uint32_t job, uint32_t first, uint32_t n,
			     uint32_t job_ranks, const char *node,
			     GRand *rnd)
{
	GVariantBuilder b, pairs;
	uint32_t *ranks = g_new(uint32_t, n);
	double *cpu = g_new(double, n), *delay = g_new(double, n);
	double *iters = g_new(double, n);
	guint64 *rss = g_new(guint64, n);

	g_variant_builder_init(&pairs, G_VARIANT_TYPE("a(uutt)"));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t r = first + i;

		ranks[i] = r;
		cpu[i] = g_rand_double_range(rnd, 0.5, 1.0);
		delay[i] = g_rand_double_range(rnd, 0, 0.1);
		iters[i] = g_rand_double_range(rnd, 9, 11);
		rss[i] = (guint64) g_rand_int_range(rnd, 100, 200) << 20;
		/* Ring neighbours, as a stencil code talks. */
		g_variant_builder_add(&pairs, "(uutt)", r,
				      (r + 1) % job_ranks,
				      (guint64) g_rand_int(rnd), (guint64) 100);
		g_variant_builder_add(&pairs, "(uutt)", r,
				      (r + job_ranks - 1) % job_ranks,
				      (guint64) g_rand_int(rnd), (guint64) 100);
	}
	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "job", g_variant_new_uint32(job));
	g_variant_builder_add(&b, "{sv}", "step", g_variant_new_uint32(0));
	g_variant_builder_add(&b, "{sv}", "interval_ms",
			      g_variant_new_uint32(30000));
	g_variant_builder_add(&b, "{sv}", "load", g_variant_new_double(1.5));
	g_variant_builder_add(&b, "{sv}", "mem_avail",
			      g_variant_new_uint64(64ull << 30));
	g_variant_builder_add(&b, "{sv}", "health", g_variant_new_string("ok"));
	g_variant_builder_add(&b, "{sv}", "reason", g_variant_new_string(""));
	g_variant_builder_add(&b, "{sv}", "node", g_variant_new_string(node));
#define FIXED(key, type, arr, sz) \
	g_variant_builder_add(&b, "{sv}", key, g_variant_new_fixed_array( \
			      G_VARIANT_TYPE(type), arr, n, sz))
	FIXED("ranks", "u", ranks, sizeof(uint32_t));
	FIXED("cpu", "d", cpu, sizeof(double));
	FIXED("delay", "d", delay, sizeof(double));
	FIXED("iters", "d", iters, sizeof(double));
	FIXED("rss", "t", rss, sizeof(guint64));
#undef FIXED
	g_variant_builder_add(&b, "{sv}", "pairs",
			      g_variant_builder_end(&pairs));
	g_free(ranks);
	g_free(cpu);
	g_free(delay);
	g_free(iters);
	g_free(rss);
	return g_variant_builder_end(&b);
}

/*
 * ingest - what the balancer's on_sample() does with one decoded SAMPLE
 * (same calls, same validation); RET rank samples taken
 */
static uint32_t ingest(smig_metrics_t **jobs, uint32_t njobs,
		       const smig_msg_t *m)
{
	smig_node_sample_t ns = { 0 };
	uint32_t job, *ranks = NULL, taken = 0;
	size_t n = 0;
	gsize got;
	GVariant *v[4], *pairs;
	const double *cpu, *delay, *iters;
	const guint64 *rss;
	GError *err = NULL;
	const char *health = "unknown";

	if (!smig_msg_get_u32(m, "job", &job) || job >= njobs ||
	    !smig_msg_get_u32_array(m, "ranks", &ranks, &n))
		return 0;
	v[0] = g_variant_lookup_value(m->body, "cpu", G_VARIANT_TYPE("ad"));
	v[1] = g_variant_lookup_value(m->body, "delay", G_VARIANT_TYPE("ad"));
	v[2] = g_variant_lookup_value(m->body, "iters", G_VARIANT_TYPE("ad"));
	v[3] = g_variant_lookup_value(m->body, "rss", G_VARIANT_TYPE("at"));
	cpu = g_variant_get_fixed_array(v[0], &got, sizeof(double));
	delay = g_variant_get_fixed_array(v[1], &got, sizeof(double));
	iters = g_variant_get_fixed_array(v[2], &got, sizeof(double));
	rss = g_variant_get_fixed_array(v[3], &got, sizeof(guint64));
	smig_msg_get_str(m, "node", &ns.node);
	smig_msg_get_u64(m, "mem_avail", &ns.mem_avail);
	smig_msg_get_str(m, "reason", &ns.reason);
	smig_msg_get_str(m, "health", &health);
	g_variant_lookup(m->body, "load", "d", &ns.load);
	ns.health = strcmp(health, "ok") ? SMIG_HEALTH_UNKNOWN :
		    SMIG_HEALTH_OK;
	if (!jobs[job])
		jobs[job] = smig_metrics_new();
	if (!smig_metrics_add_node(jobs[job], &ns, &err))
		goto out;
	for (size_t i = 0; i < n; i++) {
		smig_rank_sample_t rs = { ranks[i], cpu[i], delay[i], rss[i],
					  iters[i] };

		if (smig_metrics_add_rank(jobs[job], ns.node, &rs, &err))
			taken++;
		g_clear_error(&err);
	}
	pairs = g_variant_lookup_value(m->body, "pairs",
				       G_VARIANT_TYPE("a(uutt)"));
	if (pairs) {
		/* (uutt) is fixed-size: the same layout as the struct. */
		G_STATIC_ASSERT(sizeof(smig_pair_sample_t) == 24);
		const smig_pair_sample_t *ps =
			g_variant_get_fixed_array(pairs, &got,
						  sizeof(smig_pair_sample_t));

		for (gsize i = 0; i < got; i++)
			if (!smig_metrics_set_pair(jobs[job], &ps[i], &err))
				break;
	}
	if (pairs)
		g_variant_unref(pairs);
out:
	g_clear_error(&err);
	for (int i = 0; i < 4; i++)
		g_variant_unref(v[i]);
	g_free(ranks);
	return taken;
}

int main(int argc, char **argv)
{
	uint32_t agents = 10000, ranks = 1000000, intervals = 3;
	double interval = 30.0;
	uint32_t per_agent, njobs, agents_per_job;
	smig_auth_t *auth = smig_auth_none_new(0, 0);
	smig_metrics_t **jobs;
	GRand *rnd = g_rand_new_with_seed(42);
	GBytes **frames;
	long rss0 = rss_kb();
	double bal_cpu = 0, bal_wall = 0, gen_cpu = 0;
	uint64_t taken = 0, bytes = 0;
	size_t metrics_mem = 0;

	if (argc > 1)
		agents = (uint32_t) strtoul(argv[1], NULL, 10);
	if (argc > 2)
		ranks = (uint32_t) strtoul(argv[2], NULL, 10);
	if (argc > 3)
		intervals = (uint32_t) strtoul(argv[3], NULL, 10);
	if (!agents || ranks < agents || ranks % agents || !intervals) {
		fprintf(stderr, "usage: bench_monitoring [AGENTS [RANKS [INTERVALS]]] (RANKS a multiple of AGENTS)\n");
		return 2;
	}
	per_agent = ranks / agents;
	agents_per_job = MAX(1u, RANKS_PER_JOB / per_agent);
	njobs = (agents + agents_per_job - 1) / agents_per_job;
	jobs = g_new0(smig_metrics_t *, njobs);
	frames = g_new0(GBytes *, agents);

	for (uint32_t it = 0; it < intervals; it++) {
		double c0 = cpu_now(), c1, w1;

		for (uint32_t a = 0; a < agents; a++) {
			uint32_t job = a / agents_per_job;
			uint32_t first = (a % agents_per_job) * per_agent;
			char node[32];
			smig_msg_t *m;

			snprintf(node, sizeof(node), "node%u", a);
			m = smig_msg_new(SMIG_MSG_SAMPLE,
					 sample_body(job, first, per_agent,
						     agents_per_job * per_agent,
						     node, rnd));
			frames[a] = smig_wire_encode(auth, m, NULL);
			smig_msg_free(m);
		}
		c1 = cpu_now();
		gen_cpu += c1 - c0;
		w1 = wall_now();
		for (uint32_t a = 0; a < agents; a++) {
			gsize len;
			const uint8_t *buf = g_bytes_get_data(frames[a], &len);
			size_t used = 0;
			GError *err = NULL;
			smig_msg_t *m;

			bytes += len;
			m = smig_wire_decode(auth, buf, len, &used, &err);
			if (!m) {
				fprintf(stderr, "decode: %s\n",
					err ? err->message : "incomplete");
				return 1;
			}
			taken += ingest(jobs, njobs, m);
			smig_msg_free(m);
			g_bytes_unref(frames[a]);
		}
		/* The state line of each job is rebuilt after its samples. */
		for (uint32_t j = 0; j < njobs; j++)
			g_free(smig_metrics_summary(jobs[j]));
		bal_wall += wall_now() - w1;
		bal_cpu += cpu_now() - c1;
	}
	for (uint32_t j = 0; j < njobs; j++)
		metrics_mem += smig_metrics_memory(jobs[j]);

	printf("bench-monitoring ingestion: %u agents x %u ranks = %u ranks in %u jobs, 2 peers per rank, %u intervals of %.0f s\n",
	       agents, per_agent, ranks, njobs, intervals, interval);
	printf("  %-44s %10.3f s\n", "agents: build + encode, per interval",
	       gen_cpu / intervals);
	printf("  %-44s %10.3f s (wall %.3f s)\n",
	       "balancer: decode + ingest, CPU per interval", bal_cpu / intervals,
	       bal_wall / intervals);
	printf("  %-44s %10.1f MB\n", "frames per interval",
	       bytes / intervals / 1e6);
	printf("  %-44s %10.2f M/s\n", "rank samples ingested",
	       taken / bal_cpu / 1e6);
	printf("  %-44s %10.1f MB (VmRSS growth %.1f MB)\n",
	       "balancer memory: metrics", metrics_mem / 1e6,
	       (rss_kb() - rss0) / 1024.0);
	printf("  %-44s %10.2f s per interval (50 us x %u messages)\n",
	       "not measured: munge decode, estimated", 50e-6 * agents,
	       agents);
	printf("bench-monitoring: ingestion of %u ranks every %.0f s %s: balancer CPU share=%.2f%% (%.3f s per interval), memory %.0f MB\n",
	       ranks, interval, bal_cpu / intervals < interval ?
	       "keeps up" : "DOES NOT keep up",
	       100 * bal_cpu / intervals / interval,
	       bal_cpu / intervals, metrics_mem / 1e6);
	for (uint32_t j = 0; j < njobs; j++)
		smig_metrics_free(jobs[j]);
	g_free(jobs);
	g_free(frames);
	g_rand_free(rnd);
	smig_auth_free(auth);
	return taken == (uint64_t) ranks * intervals ? 0 : 1;
}
