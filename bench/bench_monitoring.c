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
 *
 * Then the same load through the real path: a balancer (smig_balancer_new
 * + start on 127.0.0.1:0, munge if munged answers on its default socket,
 * else auth "none", as the output says; SMIG_BENCH_AUTH=none forces it,
 * for a munged that comes and goes) in this process, and a generator
 * in a child process with one TCP connection per agent plus one per step's
 * srun. Each job's srun sends HELLO_SRUN, each agent HELLO_AGENT for its
 * ranks, then one SAMPLE per interval, all agents at once (the worst case:
 * synchronised agents). This process's CPU time is the balancer's (its
 * main thread only sleeps); the generator's is not counted. The balancer's
 * log lines say when each SAMPLE was ingested: it keeps up when all of an
 * interval's samples are in before the next interval starts.
 * The last two lines are headlines: "bench-monitoring: ingestion ...".
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_balancer.h"
#include "smig_conf.h"
#include "smig_log.h"
#include "smig_metrics.h"
#include "smig_wire.h"

#define RANKS_PER_JOB	50000	/* below SMIG_METRICS_MAX_RANKS */
#define JOB0		1000	/* job ids of the socket run */

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

/* ------------------------------------------------ through the real path */

/* What the balancer logs, counted on its thread: when samples are in. */
static gint seen_samples, seen_ranks, seen_agents, seen_sruns, seen_errors;
static uint32_t sock_njobs;

static void count_sink(smig_log_level_t level, const char *msg)
{
	const char *p;

	if (level == SMIG_LOG_ERROR) {
		if (g_atomic_int_add(&seen_errors, 1) < 5)
			fprintf(stderr, "balancer: %s\n", msg);
	} else if (level == SMIG_LOG_INFO) {
		fprintf(stderr, "balancer: %s\n", msg);
	} else if ((p = strstr(msg, " SAMPLE node=")) &&
		   (p = strstr(p, " ranks="))) {
		g_atomic_int_add(&seen_ranks, atoi(p + 7));
		g_atomic_int_inc(&seen_samples);
	} else if (strstr(msg, " registered by srun ")) {
		g_atomic_int_inc(&seen_sruns);
	} else if (strstr(msg, " agent ") && strstr(msg, " uid=")) {
		g_atomic_int_inc(&seen_agents);
	}
}

static bool host_node_flags(void *ctx, const char *node, uint32_t *flags)
{
	*flags = 0;
	return true;
}

static bool host_job_owner(void *ctx, uint32_t job_id, uint32_t *uid)
{
	*uid = 0;
	return job_id >= JOB0 && job_id < JOB0 + sock_njobs;
}

static void host_job_publish(void *ctx, uint32_t job_id, const char *text)
{
}

/* RET true if one byte, want, came */
static bool read_byte(int fd, char want)
{
	ssize_t n;
	char c;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 && c == want;
}

static void write_byte(int fd, char c)
{
	while (write(fd, &c, 1) < 0 && errno == EINTR)
		;
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

typedef struct {
	uint32_t agents, per_agent, agents_per_job, njobs, intervals;
	bool munge;
} gen_args_t;

/* Agents of job j: [j * agents_per_job, +nagents) */
static uint32_t job_agents(const gen_args_t *ga, uint32_t j)
{
	return MIN(ga->agents_per_job, ga->agents - j * ga->agents_per_job);
}

static bool gen_send(int fd, smig_auth_t *auth, smig_msg_type_t type,
		     GVariantBuilder *vb)
{
	smig_msg_t *m = smig_msg_new(type, g_variant_builder_end(vb));
	GError *err = NULL;
	bool ok = smig_wire_send(fd, auth, m, &err);

	if (!ok) {
		fprintf(stderr, "generator: send: %s\n", err->message);
		g_error_free(err);
	}
	smig_msg_free(m);
	return ok;
}

static int gen_connect(uint16_t port)
{
	GError *err = NULL;
	int fd = smig_wire_connect("127.0.0.1", port, 10000, &err);

	if (fd < 0) {
		fprintf(stderr, "generator: %s\n", err->message);
		g_error_free(err);
	}
	return fd;
}

/* Each job's srun, then each agent: connect and register. */
static bool gen_register(const gen_args_t *ga, smig_auth_t *auth,
			 uint16_t port, int *sfd, int *afd)
{
	GVariantBuilder vb;

	for (uint32_t j = 0; j < ga->njobs; j++) {
		uint32_t n = job_agents(ga, j), node0 = j * ga->agents_per_job;
		char *nodes, *cpus;
		bool ok;

		if ((sfd[j] = gen_connect(port)) < 0)
			return false;
		nodes = g_strdup_printf("node[%u-%u]", node0, node0 + n - 1);
		cpus = g_strdup_printf("%u(x%u)", ga->per_agent, n);
		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "job",
				      g_variant_new_uint32(JOB0 + j));
		g_variant_builder_add(&vb, "{sv}", "step",
				      g_variant_new_uint32(0));
		g_variant_builder_add(&vb, "{sv}", "request",
				      g_variant_new_string("mode=advise"));
		g_variant_builder_add(&vb, "{sv}", "ntasks",
				      g_variant_new_uint32(n * ga->per_agent));
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
		ok = gen_send(sfd[j], auth, SMIG_MSG_HELLO_SRUN, &vb);
		g_free(nodes);
		g_free(cpus);
		if (!ok)
			return false;
	}
	for (uint32_t a = 0; a < ga->agents; a++) {
		uint32_t *ranks = g_new(uint32_t, ga->per_agent);
		uint32_t first = (a % ga->agents_per_job) * ga->per_agent;
		char node[32];

		if ((afd[a] = gen_connect(port)) < 0) {
			g_free(ranks);
			return false;
		}
		for (uint32_t i = 0; i < ga->per_agent; i++)
			ranks[i] = first + i;
		snprintf(node, sizeof(node), "node%u", a);
		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "job",
				      g_variant_new_uint32(JOB0 + a /
						ga->agents_per_job));
		g_variant_builder_add(&vb, "{sv}", "step",
				      g_variant_new_uint32(0));
		g_variant_builder_add(&vb, "{sv}", "node",
				      g_variant_new_string(node));
		g_variant_builder_add(&vb, "{sv}", "ranks",
				      g_variant_new_fixed_array(
					G_VARIANT_TYPE_UINT32, ranks,
					ga->per_agent, sizeof(uint32_t)));
		g_free(ranks);
		if (!gen_send(afd[a], auth, SMIG_MSG_HELLO_AGENT, &vb))
			return false;
	}
	return true;
}

/*
 * The generator, in the child: register, then per interval build every
 * agent's SAMPLE frame ('B' to the parent), wait for 'G' and send them all.
 * RET exit status
 */
static int gen_main(const gen_args_t *ga, int in, int out)
{
	int *afd = g_new(int, ga->agents), *sfd = g_new(int, ga->njobs);
	GBytes **frames = g_new0(GBytes *, ga->agents);
	GRand *rnd = g_rand_new_with_seed(7);
	smig_auth_t *auth;
	GError *err = NULL;
	struct rlimit rl;
	uint16_t port;
	int rc = 1;

	memset(afd, -1, ga->agents * sizeof(int));
	memset(sfd, -1, ga->njobs * sizeof(int));
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	auth = ga->munge ? smig_auth_munge_new(NULL, &err) :
			   smig_auth_none_new(0, 0);
	if (!auth) {
		fprintf(stderr, "generator: %s\n", err->message);
		g_error_free(err);
		goto out;
	}
	if (read(in, &port, sizeof(port)) != sizeof(port) ||
	    !gen_register(ga, auth, port, sfd, afd))
		goto out;
	write_byte(out, 'R');
	for (uint32_t it = 0; it < ga->intervals; it++) {
		for (uint32_t a = 0; a < ga->agents; a++) {
			uint32_t j = a / ga->agents_per_job;
			char node[32];
			smig_msg_t *m;

			snprintf(node, sizeof(node), "node%u", a);
			m = smig_msg_new(SMIG_MSG_SAMPLE,
					 sample_body(JOB0 + j,
						     (a % ga->agents_per_job) *
						     ga->per_agent,
						     ga->per_agent,
						     job_agents(ga, j) *
						     ga->per_agent,
						     node, rnd));
			frames[a] = smig_wire_encode(auth, m, &err);
			smig_msg_free(m);
			if (!frames[a]) {
				fprintf(stderr, "generator: encode: %s\n",
					err->message);
				g_error_free(err);
				goto out;
			}
		}
		write_byte(out, 'B');
		if (!read_byte(in, 'G'))
			goto out;
		for (uint32_t a = 0; a < ga->agents; a++) {
			gsize len;
			const uint8_t *buf = g_bytes_get_data(frames[a], &len);

			if (!write_all(afd[a], buf, len)) {
				fprintf(stderr, "generator: agent %u: send: %s\n",
					a, g_strerror(errno));
				goto out;
			}
			g_clear_pointer(&frames[a], g_bytes_unref);
		}
	}
	/* Connections stay open until the parent has its figures. */
	if (read_byte(in, 'Q'))
		rc = 0;
out:
	for (uint32_t a = 0; a < ga->agents; a++) {
		if (afd[a] >= 0)
			close(afd[a]);
		if (frames[a])
			g_bytes_unref(frames[a]);
	}
	for (uint32_t j = 0; j < ga->njobs; j++)
		if (sfd[j] >= 0)
			close(sfd[j]);
	g_free(afd);
	g_free(sfd);
	g_free(frames);
	g_rand_free(rnd);
	smig_auth_free(auth);
	return rc;
}

/*
 * munge if munged answers (a frame sealed and opened again), else "none"
 * OUT why - why not munge, caller g_free()s; NULL with munge
 * RET new auth, caller frees with smig_auth_free()
 */
static smig_auth_t *bench_auth(char **why)
{
	GError *err = NULL;
	smig_auth_t *auth = smig_auth_munge_new(NULL, &err);
	GVariantBuilder vb;
	smig_msg_t *m, *back = NULL;
	GBytes *frame = NULL;

	*why = NULL;
	if (!g_strcmp0(g_getenv("SMIG_BENCH_AUTH"), "none")) {
		smig_auth_free(auth);
		g_clear_error(&err);
		*why = g_strdup("SMIG_BENCH_AUTH=none");
		return smig_auth_none_new(0, 0);
	}
	if (auth) {
		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		m = smig_msg_new(SMIG_MSG_BYE, g_variant_builder_end(&vb));
		frame = smig_wire_encode(auth, m, &err);
		smig_msg_free(m);
	}
	if (frame) {
		gsize len;
		const uint8_t *buf = g_bytes_get_data(frame, &len);
		size_t used = 0;

		back = smig_wire_decode(auth, buf, len, &used, &err);
		g_bytes_unref(frame);
	}
	if (back) {
		smig_msg_free(back);
		return auth;
	}
	*why = g_strdup_printf("munged does not answer: %s",
			       err ? err->message : "incomplete frame");
	g_clear_error(&err);
	smig_auth_free(auth);
	return smig_auth_none_new(0, 0);
}

/*
 * The ingestion through sockets (see the top of the file)
 * RET true if every interval's samples were all in within the interval
 */
static bool socket_run(uint32_t agents, uint32_t per_agent,
		       uint32_t agents_per_job, uint32_t intervals,
		       double seconds)
{
	smig_host_ops_t ops = {
		.node_flags = host_node_flags,
		.job_owner = host_job_owner,
		.job_publish = host_job_publish,
	};
	gen_args_t ga = {
		.agents = agents,
		.per_agent = per_agent,
		.agents_per_job = agents_per_job,
		.njobs = (agents + agents_per_job - 1) / agents_per_job,
		.intervals = intervals,
	};
	int to_child[2], to_parent[2], status = 0;
	double cpu = 0, max_lat = 0, setup, t0;
	bool kept_up = true, ok = false;
	char *why_none = NULL;
	smig_balancer_t *bal;
	smig_auth_t *auth;
	smig_conf_t *conf;
	GError *err = NULL;
	long rss0, rss1;
	uint16_t port;
	pid_t pid;

	sock_njobs = ga.njobs;
	auth = bench_auth(&why_none);
	ga.munge = !why_none;
	conf = smig_conf_new();
	g_free(conf->balancer_addr);
	conf->balancer_addr = g_strdup("127.0.0.1");
	conf->port = 0;
	smig_log_set_sink(count_sink, SMIG_LOG_DEBUG);
	bal = smig_balancer_new(conf, &ops, auth, 0);
	if (pipe(to_child) || pipe(to_parent)) {
		perror("bench_monitoring: pipe");
		exit(1);
	}
	/* Before the balancer's thread exists: the child forks one thread. */
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("bench_monitoring: fork");
		exit(1);
	}
	if (pid == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		_exit(gen_main(&ga, to_child[0], to_parent[1]));
	}
	close(to_child[0]);
	close(to_parent[1]);
	malloc_trim(0);
	rss0 = rss_kb();
	if (!smig_balancer_start(bal, &err)) {
		fprintf(stderr, "bench_monitoring: %s\n", err->message);
		g_error_free(err);
		goto out;
	}
	port = smig_balancer_port(bal);
	t0 = wall_now();
	if (write(to_child[1], &port, sizeof(port)) != sizeof(port) ||
	    !read_byte(to_parent[0], 'R')) {
		fprintf(stderr, "bench_monitoring: the generator failed to register\n");
		goto out;
	}
	while ((g_atomic_int_get(&seen_agents) < (gint) agents ||
		g_atomic_int_get(&seen_sruns) < (gint) ga.njobs) &&
	       wall_now() - t0 < 120)
		g_usleep(10000);
	setup = wall_now() - t0;
	if (g_atomic_int_get(&seen_agents) < (gint) agents) {
		fprintf(stderr, "bench_monitoring: %d of %u agents registered\n",
			g_atomic_int_get(&seen_agents), agents);
		goto out;
	}
	for (uint32_t it = 0; it < intervals; it++) {
		gint s0 = g_atomic_int_get(&seen_samples);
		gint r0 = g_atomic_int_get(&seen_ranks);
		double c0, lat;

		if (!read_byte(to_parent[0], 'B')) {
			fprintf(stderr, "bench_monitoring: the generator failed\n");
			goto out;
		}
		c0 = cpu_now();
		t0 = wall_now();
		write_byte(to_child[1], 'G');
		while (g_atomic_int_get(&seen_samples) - s0 < (gint) agents &&
		       wall_now() - t0 < seconds)
			g_usleep(2000);
		lat = wall_now() - t0;
		if (g_atomic_int_get(&seen_samples) - s0 != (gint) agents ||
		    g_atomic_int_get(&seen_ranks) - r0 !=
		    (gint) (agents * per_agent))
			kept_up = false;
		max_lat = MAX(max_lat, lat);
		if (lat < seconds)
			g_usleep((seconds - lat) * 1e6);
		cpu += cpu_now() - c0;
	}
	rss1 = rss_kb();
	write_byte(to_child[1], 'Q');
	ok = true;

	printf("bench-monitoring ingestion through sockets: %u agents x %u ranks = %u ranks in %u jobs, one TCP connection per agent and per srun, auth=%s, %u intervals of %.0f s\n",
	       agents, per_agent, agents * per_agent, ga.njobs,
	       ga.munge ? "munge" : "none", intervals, seconds);
	if (why_none)
		printf("  auth=none (%s): munge encode and decode (tens of us per message) not measured\n",
		       why_none);
	printf("  %-44s %10.2f s\n", "connect + register every srun and agent",
	       setup);
	printf("  %-44s %10.3f s (share %.2f%%)\n",
	       "balancer process: CPU per interval", cpu / intervals,
	       100 * cpu / intervals / seconds);
	printf("  %-44s %10.3f s (all agents send at once)\n",
	       "last sample of an interval in after, at most", max_lat);
	printf("  %-44s %10.1f MB\n", "balancer process: VmRSS growth",
	       (rss1 - rss0) / 1024.0);
	printf("  %-44s %10d\n", "balancer log errors", seen_errors);
	printf("bench-monitoring: ingestion through sockets of %u ranks every %.0f s %s: balancer CPU share=%.2f%% (%.3f s per interval), all samples in after %.2f s, VmRSS +%.0f MB, auth=%s\n",
	       agents * per_agent, seconds, kept_up && !seen_errors ?
	       "keeps up" : "DOES NOT keep up", 100 * cpu / intervals / seconds,
	       cpu / intervals, max_lat, (rss1 - rss0) / 1024.0,
	       ga.munge ? "munge" : "none");
out:
	close(to_child[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	close(to_parent[0]);
	smig_balancer_free(bal);
	smig_log_set_sink(NULL, SMIG_LOG_INFO);
	smig_conf_free(conf);
	smig_auth_free(auth);
	g_free(why_none);
	return ok && kept_up && !seen_errors &&
	       WIFEXITED(status) && !WEXITSTATUS(status);
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
	bool sock_ok;

	if (argc > 1)
		agents = (uint32_t) strtoul(argv[1], NULL, 10);
	if (argc > 2)
		ranks = (uint32_t) strtoul(argv[2], NULL, 10);
	if (argc > 3)
		intervals = (uint32_t) strtoul(argv[3], NULL, 10);
	if (argc > 4)
		interval = strtod(argv[4], NULL);
	if (!agents || ranks < agents || ranks % agents || !intervals ||
	    !(interval >= 1 && interval <= 3600)) {
		fprintf(stderr, "usage: bench_monitoring [AGENTS [RANKS [INTERVALS [SECONDS]]]] (RANKS a multiple of AGENTS, SECONDS of the socket run's interval, 1 to 3600)\n");
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
	fflush(stdout);
	sock_ok = socket_run(agents, per_agent, agents_per_job, intervals,
			     interval);
	return taken == (uint64_t) ranks * intervals && sock_ok ? 0 : 1;
}
