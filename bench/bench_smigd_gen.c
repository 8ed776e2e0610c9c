/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_smigd_gen.c - node agents and sruns for bench-smigd's ingestion
 *
 * Plays, for each given job (real running jobs of the user this runs as),
 * one srun (HELLO_SRUN of step 0, mode=advise) and AGENTS node agents
 * (HELLO_AGENT) with RANKS ranks each, one TCP connection each, every
 * message sealed with munge (munged's default socket: no fallback to
 * "none"). Then, per interval, it builds every agent's SAMPLE frame (2 ring
 * peers per rank, as a stencil code talks), waits for "go" on stdin
 * and sends them all at once (synchronised agents, the worst case). It is
 * driven by bench_smigd.py through stdin and stdout, one line each way:
 *   out "registered SECONDS"           every srun and agent connected and
 *                                      its HELLO sent
 *   in  "encode"                       build and seal an interval's frames
 *                                      (not while smigd's CPU is measured)
 *   out "encoded CPU WALL"             done
 *   in  "go"                           send them
 *   out "sent WALL"                    all written to the sockets
 *   in  "quit"                         close everything, exit 0
 * Node names are "simNNNNN": not nodes of slurm.conf (see bench/README.md).
 */
#include "smig_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_wire.h"

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

/* One agent's SAMPLE body: ranks [first, first + n) of a job of nranks. */
static GVariant *sample_body(uint32_t job, uint32_t first, uint32_t n,
			     uint32_t nranks, const char *node, GRand *rnd)
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
		g_variant_builder_add(&pairs, "(uutt)", r, (r + 1) % nranks,
				      (guint64) g_rand_int(rnd), (guint64) 100);
		g_variant_builder_add(&pairs, "(uutt)", r,
				      (r + nranks - 1) % nranks,
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

static bool write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= n;
	}
	return true;
}

/* RET true if the next line of stdin is word */
static bool read_word(const char *word)
{
	char line[64];

	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	return !strcmp(line, word);
}

static bool send_msg(int fd, smig_auth_t *auth, smig_msg_type_t type,
		     GVariantBuilder *vb)
{
	smig_msg_t *m = smig_msg_new(type, g_variant_builder_end(vb));
	GError *err = NULL;
	bool ok = smig_wire_send(fd, auth, m, &err);

	if (!ok) {
		fprintf(stderr, "bench_smigd_gen: send %s: %s\n",
			smig_msg_type_name(type), err->message);
		g_error_free(err);
	}
	smig_msg_free(m);
	return ok;
}

/* Agent a of job j is node "sim%05u" with a = j * per_job + k. */
static void node_name(char *buf, size_t len, uint32_t a)
{
	snprintf(buf, len, "sim%05u", a);
}

typedef struct {
	const char *addr;
	uint16_t port;
	uint32_t *jobs, njobs, per_job, per_agent, intervals;
} gen_t;

/* Each job's srun, then each agent: connect and send its HELLO. */
static bool gen_register(const gen_t *g, smig_auth_t *auth, int *sfd, int *afd)
{
	GVariantBuilder vb;
	GError *err = NULL;

	for (uint32_t j = 0; j < g->njobs; j++) {
		char first[32], last[32], *nodes, *cpus;
		bool ok;

		sfd[j] = smig_wire_connect(g->addr, g->port, 10000, &err);
		if (sfd[j] < 0)
			goto fail;
		node_name(first, sizeof(first), j * g->per_job);
		node_name(last, sizeof(last), (j + 1) * g->per_job - 1);
		nodes = g_strdup_printf("sim[%s-%s]", first + 3, last + 3);
		cpus = g_strdup_printf("%u(x%u)", g->per_agent, g->per_job);
		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "job",
				      g_variant_new_uint32(g->jobs[j]));
		g_variant_builder_add(&vb, "{sv}", "step",
				      g_variant_new_uint32(0));
		g_variant_builder_add(&vb, "{sv}", "request",
				      g_variant_new_string("mode=advise"));
		g_variant_builder_add(&vb, "{sv}", "ntasks",
				      g_variant_new_uint32(g->per_job *
							   g->per_agent));
		g_variant_builder_add(&vb, "{sv}", "alloc_nodes",
				      g_variant_new_string(nodes));
		g_variant_builder_add(&vb, "{sv}", "alloc_cpus",
				      g_variant_new_string(cpus));
		g_variant_builder_add(&vb, "{sv}", "cpus_per_task",
				      g_variant_new_uint32(1));
		g_variant_builder_add(&vb, "{sv}", "restored_gen",
				      g_variant_new_uint64(0));
		g_variant_builder_add(&vb, "{sv}", "prev_step",
				      g_variant_new_uint32(0));
		ok = send_msg(sfd[j], auth, SMIG_MSG_HELLO_SRUN, &vb);
		g_free(nodes);
		g_free(cpus);
		if (!ok)
			return false;
	}
	for (uint32_t a = 0; a < g->njobs * g->per_job; a++) {
		uint32_t *ranks = g_new(uint32_t, g->per_agent);
		uint32_t first = (a % g->per_job) * g->per_agent;
		char node[32];
		bool ok;

		afd[a] = smig_wire_connect(g->addr, g->port, 10000, &err);
		if (afd[a] < 0) {
			g_free(ranks);
			goto fail;
		}
		for (uint32_t i = 0; i < g->per_agent; i++)
			ranks[i] = first + i;
		node_name(node, sizeof(node), a);
		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "job",
				      g_variant_new_uint32(g->jobs[a /
								   g->per_job]));
		g_variant_builder_add(&vb, "{sv}", "step",
				      g_variant_new_uint32(0));
		g_variant_builder_add(&vb, "{sv}", "node",
				      g_variant_new_string(node));
		g_variant_builder_add(&vb, "{sv}", "ranks",
				      g_variant_new_fixed_array(
					G_VARIANT_TYPE_UINT32, ranks,
					g->per_agent, sizeof(uint32_t)));
		g_free(ranks);
		ok = send_msg(afd[a], auth, SMIG_MSG_HELLO_AGENT, &vb);
		if (!ok)
			return false;
	}
	return true;
fail:
	fprintf(stderr, "bench_smigd_gen: connect %s:%u: %s\n", g->addr,
		g->port, err->message);
	g_error_free(err);
	return false;
}

/* RET exit status: 0 if every step went as told */
static int gen_run(const gen_t *g)
{
	uint32_t nagents = g->njobs * g->per_job;
	int *afd = g_new(int, nagents), *sfd = g_new(int, g->njobs);
	GBytes **frames = g_new0(GBytes *, nagents);
	GRand *rnd = g_rand_new_with_seed(7);
	smig_auth_t *auth;
	GError *err = NULL;
	struct rlimit rl;
	double t0;
	int rc = 1;

	memset(afd, -1, nagents * sizeof(int));
	memset(sfd, -1, g->njobs * sizeof(int));
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	auth = smig_auth_munge_new(NULL, &err);
	if (!auth) {
		fprintf(stderr, "bench_smigd_gen: munge: %s\n", err->message);
		g_error_free(err);
		goto out;
	}
	t0 = wall_now();
	if (!gen_register(g, auth, sfd, afd))
		goto out;
	printf("registered %.3f\n", wall_now() - t0);
	fflush(stdout);
	for (uint32_t it = 0; it < g->intervals; it++) {
		double c0, w0;

		if (!read_word("encode"))
			goto out;
		c0 = cpu_now();
		w0 = wall_now();
		for (uint32_t a = 0; a < nagents; a++) {
			uint32_t j = a / g->per_job;
			char node[32];
			smig_msg_t *m;

			node_name(node, sizeof(node), a);
			m = smig_msg_new(SMIG_MSG_SAMPLE,
					 sample_body(g->jobs[j],
						     (a % g->per_job) *
						     g->per_agent, g->per_agent,
						     g->per_job * g->per_agent,
						     node, rnd));
			frames[a] = smig_wire_encode(auth, m, &err);
			smig_msg_free(m);
			if (!frames[a]) {
				fprintf(stderr, "bench_smigd_gen: encode: %s\n",
					err->message);
				g_error_free(err);
				goto out;
			}
		}
		printf("encoded %.3f %.3f\n", cpu_now() - c0, wall_now() - w0);
		fflush(stdout);
		if (!read_word("go"))
			goto out;
		w0 = wall_now();
		for (uint32_t a = 0; a < nagents; a++) {
			gsize len;
			const uint8_t *buf = g_bytes_get_data(frames[a], &len);

			if (!write_all(afd[a], buf, len)) {
				fprintf(stderr, "bench_smigd_gen: agent %u: send: %s\n",
					a, g_strerror(errno));
				goto out;
			}
			g_clear_pointer(&frames[a], g_bytes_unref);
		}
		printf("sent %.3f\n", wall_now() - w0);
		fflush(stdout);
	}
	/* Connections stay open until the caller has its figures. */
	if (read_word("quit"))
		rc = 0;
out:
	for (uint32_t a = 0; a < nagents; a++) {
		if (afd[a] >= 0)
			close(afd[a]);
		if (frames[a])
			g_bytes_unref(frames[a]);
	}
	for (uint32_t j = 0; j < g->njobs; j++)
		if (sfd[j] >= 0)
			close(sfd[j]);
	g_free(afd);
	g_free(sfd);
	g_free(frames);
	g_rand_free(rnd);
	smig_auth_free(auth);
	return rc;
}

int main(int argc, char **argv)
{
	gen_t g = { 0 };
	gchar **ids;
	int rc;

	if (argc != 7) {
		fprintf(stderr, "usage: bench_smigd_gen ADDR PORT JOBID[,JOBID...] AGENTS_PER_JOB RANKS_PER_AGENT INTERVALS\n");
		return 2;
	}
	g.addr = argv[1];
	g.port = (uint16_t) strtoul(argv[2], NULL, 10);
	ids = g_strsplit(argv[3], ",", -1);
	g.njobs = g_strv_length(ids);
	g.jobs = g_new(uint32_t, g.njobs);
	for (uint32_t j = 0; j < g.njobs; j++)
		g.jobs[j] = (uint32_t) strtoul(ids[j], NULL, 10);
	g_strfreev(ids);
	g.per_job = (uint32_t) strtoul(argv[4], NULL, 10);
	g.per_agent = (uint32_t) strtoul(argv[5], NULL, 10);
	g.intervals = (uint32_t) strtoul(argv[6], NULL, 10);
	if (!g.port || !g.njobs || !g.per_job || !g.per_agent ||
	    !g.intervals) {
		fprintf(stderr, "bench_smigd_gen: PORT, JOBIDs, AGENTS_PER_JOB, RANKS_PER_AGENT and INTERVALS must be positive numbers\n");
		return 2;
	}
	rc = gen_run(&g);
	g_free(g.jobs);
	return rc;
}
