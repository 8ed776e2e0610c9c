/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * balancer-test.c - a real balancer over loopback TCP, with test peers
 *
 * One fake srun and two fake node agents talk to the balancer with
 * smig_wire_send/recv and the "none" credentials; the host is a table here.
 * Allocation node[1-3], 2 CPUs each, 4 ranks: 0,1 on node1 and 2,3 on node2.
 */
#include "smig_config.h"

#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_balancer.h"
#include "smig_conf.h"
#include "smig_error.h"
#include "smig_policy.h"
#include "smig_topology.h"
#include "smig_wire.h"

#define JOB	42
#define OWNER	1000
#define OTHER	2000
#define ADMIN	64030
#define WAIT_MS	3000

/* The host: node flags, one running job, the last published line. */
static GMutex host_lock;
static GCond host_cond;
static uint32_t node_state[4];		/* node1..node3 */
static char *published;
static unsigned npublished;
/* Job scope (tcase "job scope"): the host can requeue and release. */
static bool requeue_host;
static bool requeue_ok = true;	/* the job is requeue-able */
static bool job_pending;	/* requeued, not running */
static char *requeue_exclude;
static unsigned nrequeue, nrelease;
static bool release_clean;	/* the last job_release()'s clean */
static const char *health_word = "ok";	/* in SAMPLEs */
static const char *alloc_cpus = "2(x3)";	/* HELLO_SRUN */
static smig_topology_t *host_topo;	/* the switch tree, NULL: flat */

static bool host_node_flags(void *ctx, const char *node, uint32_t *flags)
{
	unsigned i;

	if (sscanf(node, "node%u", &i) != 1 || i < 1 || i > 3)
		return false;
	g_mutex_lock(&host_lock);
	*flags = node_state[i];
	g_mutex_unlock(&host_lock);
	return true;
}

static smig_topology_t *host_topology(void *ctx)
{
	smig_topology_t *t;

	g_mutex_lock(&host_lock);
	t = smig_topology_ref(host_topo);
	g_mutex_unlock(&host_lock);
	return t;
}

static bool host_job_owner(void *ctx, uint32_t job_id, uint32_t *uid)
{
	bool pending;

	if (job_id != JOB)
		return false;
	g_mutex_lock(&host_lock);
	pending = job_pending;
	g_mutex_unlock(&host_lock);
	*uid = OWNER;
	return !pending;
}

static bool host_job_requeue(void *ctx, uint32_t job_id, const char *exclude,
			     bool check_only, GError **error)
{
	bool ok;

	ck_assert_uint_eq(job_id, JOB);
	g_mutex_lock(&host_lock);
	ok = requeue_ok;
	if (ok && !check_only) {
		nrequeue++;
		g_free(requeue_exclude);
		requeue_exclude = g_strdup(exclude);
		job_pending = true;
		g_cond_broadcast(&host_cond);
	}
	g_mutex_unlock(&host_lock);
	if (!ok)
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_STATE,
			    "JobId=%u: not requeue-able", job_id);
	return ok;
}

static int host_job_release(void *ctx, uint32_t job_id, bool clean)
{
	int rc = SMIG_RELEASE_NONE;

	g_mutex_lock(&host_lock);
	if (job_id == JOB && job_pending) {
		nrelease++;
		release_clean = clean;
		rc = SMIG_RELEASE_DONE;
		g_cond_broadcast(&host_cond);
	}
	g_mutex_unlock(&host_lock);
	return rc;
}

static void host_job_publish(void *ctx, uint32_t job_id, const char *text)
{
	ck_assert_uint_eq(job_id, JOB);
	g_mutex_lock(&host_lock);
	g_free(published);
	published = g_strdup(text);
	npublished++;
	g_cond_broadcast(&host_cond);
	g_mutex_unlock(&host_lock);
}

/* Calls of the nodes_changed and jobs_changed host ops (balancer thread). */
static gint nodes_changed, jobs_changed;

static void host_nodes_changed(void *ctx)
{
	g_atomic_int_inc(&nodes_changed);
}

static void host_jobs_changed(void *ctx)
{
	g_atomic_int_inc(&jobs_changed);
}

static void set_node(unsigned i, uint32_t flags)
{
	g_mutex_lock(&host_lock);
	node_state[i] = flags;
	g_mutex_unlock(&host_lock);
}

/* Wait until the published line is want; RET the last line seen (g_free) */
static char *wait_published(const char *want)
{
	gint64 end = g_get_monotonic_time() + WAIT_MS * 1000;
	char *got;

	g_mutex_lock(&host_lock);
	while (g_strcmp0(published, want) &&
	       g_cond_wait_until(&host_cond, &host_lock, end))
		;
	got = g_strdup(published);
	g_mutex_unlock(&host_lock);
	return got;
}

static smig_conf_t *conf;
static smig_auth_t *bal_auth, *user_auth, *other_auth;
static smig_balancer_t *bal;

static void setup(void)
{
	smig_host_ops_t ops = {
		.node_flags = host_node_flags,
		.job_owner = host_job_owner,
		.job_publish = host_job_publish,
		.topology = host_topology,
		.nodes_changed = host_nodes_changed,
		.jobs_changed = host_jobs_changed,
	};
	GError *err = NULL;

	/* CK_FORK=no runs every test in one process: start clean. */
	g_atomic_int_set(&nodes_changed, 0);
	g_atomic_int_set(&jobs_changed, 0);
	alloc_cpus = "2(x3)";
	health_word = "ok";
	requeue_ok = true;
	job_pending = false;
	nrequeue = nrelease = 0;
	release_clean = false;
	if (requeue_host) {
		ops.job_requeue = host_job_requeue;
		ops.job_release = host_job_release;
	}
	conf = smig_conf_new();
	g_free(conf->balancer_addr);
	conf->balancer_addr = g_strdup("127.0.0.1");
	conf->port = 0;
	conf->poll_interval_ms = 20;
	conf->capture_timeout_ms = 1000;
	conf->retry_interval_ms = 60000;
	bal_auth = smig_auth_none_new(ADMIN, ADMIN);
	user_auth = smig_auth_none_new(OWNER, OWNER);
	other_auth = smig_auth_none_new(OTHER, OTHER);
	memset(node_state, 0, sizeof(node_state));
	bal = smig_balancer_new(conf, &ops, bal_auth, ADMIN);
	ck_assert_msg(smig_balancer_start(bal, &err), "%s",
		      err ? err->message : "");
	ck_assert_uint_ne(smig_balancer_port(bal), 0);
}

static void teardown(void)
{
	smig_balancer_free(bal);
	smig_auth_free(bal_auth);
	smig_auth_free(user_auth);
	smig_auth_free(other_auth);
	smig_conf_free(conf);
	g_clear_pointer(&published, g_free);
	g_clear_pointer(&requeue_exclude, g_free);
	g_clear_pointer(&host_topo, smig_topology_unref);
	requeue_host = false;
}

static void setup_requeue(void)
{
	requeue_host = true;
	setup();
}

/* ---------------------------------------------------------------- peers */

static int peer(void)
{
	GError *err = NULL;
	int fd = smig_wire_connect("127.0.0.1", smig_balancer_port(bal),
				   WAIT_MS, &err);

	ck_assert_msg(fd >= 0, "%s", err ? err->message : "");
	return fd;
}

static void body_start(GVariantBuilder *vb, uint32_t step)
{
	g_variant_builder_init(vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(vb, "{sv}", "job", g_variant_new_uint32(JOB));
	g_variant_builder_add(vb, "{sv}", "step", g_variant_new_uint32(step));
}

static void send_msg(int fd, smig_auth_t *auth, smig_msg_type_t type,
		     GVariantBuilder *vb)
{
	smig_msg_t *m = smig_msg_new(type, g_variant_builder_end(vb));
	GError *err = NULL;

	ck_assert_msg(smig_wire_send(fd, auth, m, &err), "%s",
		      err ? err->message : "");
	smig_msg_free(m);
}

/* srun's RELAUNCH_ACK of gen for step 0 */
static void relaunch_ack(int srun, uint64_t gen)
{
	GVariantBuilder vb;

	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(gen));
	send_msg(srun, user_auth, SMIG_MSG_RELAUNCH_ACK, &vb);
}

static smig_msg_t *expect(int fd, smig_msg_type_t type)
{
	GError *err = NULL;
	smig_msg_t *m = smig_wire_recv(fd, user_auth, WAIT_MS, &err);

	ck_assert_msg(m, "waiting for %s: %s", smig_msg_type_name(type),
		      err ? err->message : "");
	ck_assert_str_eq(smig_msg_type_name(m->type),
			 smig_msg_type_name(type));
	return m;
}

static uint64_t get_u64(const smig_msg_t *m, const char *key)
{
	uint64_t v = 0;

	ck_assert_msg(smig_msg_get_u64(m, key, &v), "no %s", key);
	return v;
}

static const char *get_str(const smig_msg_t *m, const char *key)
{
	const char *v = NULL;

	ck_assert_msg(smig_msg_get_str(m, key, &v), "no %s", key);
	return v;
}

static void hello_srun(int fd, smig_auth_t *auth, uint32_t step,
		       const char *request, uint64_t restored,
		       uint32_t prev_step)
{
	GVariantBuilder vb;

	body_start(&vb, step);
	g_variant_builder_add(&vb, "{sv}", "request",
			      g_variant_new_string(request));
	g_variant_builder_add(&vb, "{sv}", "ntasks", g_variant_new_uint32(4));
	g_variant_builder_add(&vb, "{sv}", "alloc_nodes",
			      g_variant_new_string("node[1-3]"));
	g_variant_builder_add(&vb, "{sv}", "alloc_cpus",
			      g_variant_new_string(alloc_cpus));
	g_variant_builder_add(&vb, "{sv}", "cpus_per_task",
			      g_variant_new_uint32(1));
	g_variant_builder_add(&vb, "{sv}", "restored_gen",
			      g_variant_new_uint64(restored));
	g_variant_builder_add(&vb, "{sv}", "prev_step",
			      g_variant_new_uint32(prev_step));
	send_msg(fd, auth, SMIG_MSG_HELLO_SRUN, &vb);
}

static void restored(int fd, uint32_t step, uint64_t gen, uint32_t r0,
		     uint32_t r1);

/* HELLO_AGENT of a node with ranks r0, r1 that are not past
 * smig_register() yet */
static void hello_agent_bare(int fd, smig_auth_t *auth, uint32_t step,
			     const char *node, uint32_t r0, uint32_t r1)
{
	uint32_t ranks[2] = { r0, r1 };
	GVariantBuilder vb;

	body_start(&vb, step);
	g_variant_builder_add(&vb, "{sv}", "node", g_variant_new_string(node));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	send_msg(fd, auth, SMIG_MSG_HELLO_AGENT, &vb);
}

/* HELLO_AGENT, and both ranks are past smig_register() (a fresh start) */
static void hello_agent(int fd, smig_auth_t *auth, uint32_t step,
			const char *node, uint32_t r0, uint32_t r1)
{
	GVariantBuilder vb;
	uint32_t ranks[2] = { r0, r1 };

	hello_agent_bare(fd, auth, step, node, r0, r1);
	body_start(&vb, step);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(0));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	send_msg(fd, auth, SMIG_MSG_RESTORED, &vb);
}

static void count(int fd, uint64_t gen, uint32_t rank, uint64_t pause_at)
{
	GVariantBuilder vb;

	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&vb, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&vb, "{sv}", "pause_at",
			      g_variant_new_uint64(pause_at));
	send_msg(fd, user_auth, SMIG_MSG_COUNT, &vb);
}

static void done(int fd, uint64_t gen, uint32_t rank, int32_t status)
{
	GVariantBuilder vb;

	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&vb, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&vb, "{sv}", "status",
			      g_variant_new_int32(status));
	g_variant_builder_add(&vb, "{sv}", "bytes", g_variant_new_uint64(64));
	g_variant_builder_add(&vb, "{sv}", "msg", g_variant_new_string(""));
	send_msg(fd, user_auth, SMIG_MSG_DONE, &vb);
}

/*
 * The job's decision history (QUERY's "history", aa{sv}), asked for as
 * the owner. RET new reference, caller g_variant_unref()s
 */
static GVariant *query_history(void)
{
	int cli = peer();
	GVariantBuilder vb;
	GVariant *h;
	smig_msg_t *m;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(cli, user_auth, SMIG_MSG_QUERY, &vb);
	m = expect(cli, SMIG_MSG_STATUS);
	h = g_variant_lookup_value(m->body, "history",
				   G_VARIANT_TYPE("aa{sv}"));
	ck_assert_ptr_nonnull(h);
	smig_msg_free(m);
	close(cli);
	return h;
}

/* Entry i of a history: its string field key (borrowed from h). */
static const char *hist_str(GVariant *h, gsize i, const char *key)
{
	GVariant *e = g_variant_get_child_value(h, i);
	const char *v = NULL;

	ck_assert_msg(g_variant_lookup(e, key, "&s", &v), "no %s", key);
	g_variant_unref(e);
	return v;
}

static bool hist_double(GVariant *h, gsize i, const char *key, double *v)
{
	GVariant *e = g_variant_get_child_value(h, i);
	bool found = g_variant_lookup(e, key, "d", v);

	g_variant_unref(e);
	return found;
}

static uint64_t hist_gen(GVariant *h, gsize i)
{
	GVariant *e = g_variant_get_child_value(h, i);
	guint64 gen = UINT64_MAX;

	ck_assert(g_variant_lookup(e, "gen", "t", &gen));
	g_variant_unref(e);
	return gen;
}

static GVariant *wait_history(gsize n);

/* srun and two agents registered for step 0; the map is complete. */
static void register_step(int *srun, int *a1, int *a2)
{
	char *got;

	*srun = peer();
	hello_srun(*srun, user_auth, 0, "mode=auto", 0, 0);
	got = wait_published("mode=auto gen=0 moves=0");
	ck_assert_str_eq(got, "mode=auto gen=0 moves=0");
	g_free(got);
	*a1 = peer();
	hello_agent(*a1, user_auth, 0, "node1", 0, 1);
	*a2 = peer();
	hello_agent(*a2, user_auth, 0, "node2", 2, 3);
}

/*
 * check_prepare - PREPARE tells the ranks why (smig_capture_info(3)) and
 * whether they stop once the capture succeeds
 */
static void check_prepare(const smig_msg_t *m, const char *reason, bool stop)
{
	bool got = !stop;

	ck_assert_str_eq(get_str(m, "reason"), reason);
	ck_assert_msg(smig_msg_get_bool(m, "stop", &got), "no stop");
	ck_assert_msg(got == stop, "PREPARE stop=%d, expected %d", got, stop);
}

/* drain_and_count()'s PREPARE reason: "requeue" in job-scope tests */
static const char *drain_reason = "drain";

/* Drain node2 and run PREPARE/COUNT/CAPTURE up to the DONEs. */
static void drain_and_count(int a1, int a2)
{
	smig_msg_t *m;

	set_node(2, SMIG_NODE_DRAIN);
	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	/* Ranks move (or the job is requeued): they stop after it. */
	check_prepare(m, drain_reason, true);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	check_prepare(m, drain_reason, true);
	smig_msg_free(m);

	count(a1, 1, 0, 5);
	count(a1, 1, 1, 7);
	count(a2, 1, 2, 6);
	count(a2, 1, 3, 9);
	m = expect(a1, SMIG_MSG_CAPTURE);
	ck_assert_uint_eq(get_u64(m, "target"), 9);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_CAPTURE);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_uint_eq(get_u64(m, "target"), 9);
	smig_msg_free(m);
}

START_TEST(test_drain_moves_ranks)
{
	int srun, a1, a2, srun2;
	smig_msg_t *m;
	bool stop = false;
	char *got;

	register_step(&srun, &a1, &a2);
	drain_and_count(a1, a2);
	done(a1, 1, 0, 0);
	done(a1, 1, 1, 0);
	done(a2, 1, 2, 0);
	done(a2, 1, 3, 0);

	m = expect(srun, SMIG_MSG_RELAUNCH);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_str_eq(get_str(m, "hostfile"),
			 "node1\nnode1\nnode3\nnode3\n");
	ck_assert_str_eq(get_str(m, "reason"), "drain");
	smig_msg_free(m);

	relaunch_ack(srun, 1);
	m = expect(a1, SMIG_MSG_COMMIT);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert(smig_msg_get_bool(m, "stop", &stop) && stop);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_COMMIT);
	smig_msg_free(m);

	got = wait_published("mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain");
	ck_assert_str_eq(got, "mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain");
	g_free(got);
	{
		GVariant *h = query_history();
		double d;

		ck_assert_uint_eq(g_variant_n_children(h), 1);
		ck_assert_str_eq(hist_str(h, 0, "kind"), "drain");
		ck_assert_uint_eq(hist_gen(h, 0), 1);
		ck_assert_str_eq(hist_str(h, 0, "ranks"), "2,3");
		ck_assert_str_eq(hist_str(h, 0, "from"), "node2");
		ck_assert_str_eq(hist_str(h, 0, "to"), "node3");
		ck_assert_str_eq(hist_str(h, 0, "reason"), "drain");
		ck_assert_str_eq(hist_str(h, 0, "strategy"), "evacuate");
		ck_assert_str_eq(hist_str(h, 0, "outcome"), "moved");
		/* Forced: no prediction; no samples: nothing to measure. */
		ck_assert(!hist_double(h, 0, "predicted_gain", &d));
		ck_assert(!hist_double(h, 0, "measured_gain", &d));
		g_variant_unref(h);
	}

	/* The relaunched step takes over the job's state. */
	close(a1);
	close(a2);
	close(srun);
	srun2 = peer();
	hello_srun(srun2, user_auth, 1, "mode=auto", 1, 0);
	/* Still the same line: same job record, nothing new. */
	usleep(200 * 1000);
	g_mutex_lock(&host_lock);
	ck_assert_str_eq(published, "mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain");
	g_mutex_unlock(&host_lock);
	close(srun2);
}
END_TEST

/* RESTORED: ranks r0 and r1 of an agent are past their restore */
static void restored(int fd, uint32_t step, uint64_t gen, uint32_t r0,
		     uint32_t r1)
{
	uint32_t ranks[2] = { r0, r1 };
	GVariantBuilder vb;

	body_start(&vb, step);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	send_msg(fd, user_auth, SMIG_MSG_RESTORED, &vb);
}

/*
 * A relaunched step 7 (from step 6, generation 5, relaunch try "try") with
 * its two agents; the ranks of node1 say RESTORED.
 */
static void relaunched_step(int *srun, int *a1, int *a2, uint32_t try)
{
	GVariantBuilder vb;

	*srun = peer();
	body_start(&vb, 7);
	g_variant_builder_add(&vb, "{sv}", "request",
			      g_variant_new_string("mode=auto"));
	g_variant_builder_add(&vb, "{sv}", "ntasks", g_variant_new_uint32(4));
	g_variant_builder_add(&vb, "{sv}", "alloc_nodes",
			      g_variant_new_string("node[1-3]"));
	g_variant_builder_add(&vb, "{sv}", "alloc_cpus",
			      g_variant_new_string(alloc_cpus));
	g_variant_builder_add(&vb, "{sv}", "restored_gen",
			      g_variant_new_uint64(5));
	g_variant_builder_add(&vb, "{sv}", "prev_step",
			      g_variant_new_uint32(6));
	g_variant_builder_add(&vb, "{sv}", "restore_try",
			      g_variant_new_uint32(try));
	send_msg(*srun, user_auth, SMIG_MSG_HELLO_SRUN, &vb);
	*a1 = peer();
	hello_agent_bare(*a1, user_auth, 7, "node1", 0, 1);
	*a2 = peer();
	hello_agent_bare(*a2, user_auth, 7, "node2", 2, 3);
	restored(*a1, 7, 5, 0, 1);
}

/* The watchdog's ABORT to srun; RET its "final" */
static bool expect_restore_timeout(int srun, uint32_t try)
{
	smig_msg_t *m = expect(srun, SMIG_MSG_ABORT);
	gboolean final = FALSE;
	uint32_t v = 0;

	ck_assert_str_eq(get_str(m, "reason"), "restore-timeout");
	ck_assert_uint_eq(get_u64(m, "gen"), 5);
	ck_assert_str_eq(get_str(m, "ranks"), "2,3");
	ck_assert_str_eq(get_str(m, "timeout"), "300ms");
	ck_assert(smig_msg_get_u32(m, "try", &v));
	ck_assert_uint_eq(v, try);
	ck_assert(smig_msg_get_u32(m, "tries", &v));
	ck_assert_uint_eq(v, 3);
	ck_assert(g_variant_lookup(m->body, "final", "b", &final));
	smig_msg_free(m);
	return final;
}

/*
 * A relaunched step whose ranks 2,3 never get past their restore: after
 * MigrateRestoreTimeout srun is told to start it again (try 1 of 3), the
 * state line and the history say so, and no capture starts on it.
 */
START_TEST(test_restore_watchdog_relaunches)
{
	int srun, a1, a2;
	char *got;

	conf->restore_timeout_ms = 300;
	relaunched_step(&srun, &a1, &a2, 1);
	/* A drain while the ranks restore: nothing can be captured yet. */
	set_node(2, SMIG_NODE_DRAIN);
	ck_assert(!expect_restore_timeout(srun, 1));
	got = wait_published("mode=auto gen=5 moves=0 last_error=gen=5;reason=restore-timeout;ranks=2,3");
	ck_assert_str_eq(got, "mode=auto gen=5 moves=0 last_error=gen=5;reason=restore-timeout;ranks=2,3");
	g_free(got);
	{
		GVariant *h = query_history();

		ck_assert_uint_eq(g_variant_n_children(h), 1);
		ck_assert_str_eq(hist_str(h, 0, "kind"), "relaunch");
		ck_assert_uint_eq(hist_gen(h, 0), 5);
		ck_assert_str_eq(hist_str(h, 0, "ranks"), "2,3");
		ck_assert_str_eq(hist_str(h, 0, "reason"), "restore-timeout");
		ck_assert_str_eq(hist_str(h, 0, "outcome"), "relaunched");
		ck_assert_str_eq(hist_str(h, 0, "why"),
				 "ranks 2,3 not past their restore within 300ms (try 1 of 3)");
		g_variant_unref(h);
	}
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/* The last try: srun ends the step for good (final), reason restore-failed */
START_TEST(test_restore_watchdog_last_try)
{
	int srun, a1, a2;
	char *got;

	conf->restore_timeout_ms = 300;
	relaunched_step(&srun, &a1, &a2, 3);
	ck_assert(expect_restore_timeout(srun, 3));
	got = wait_published("mode=auto gen=5 moves=0 last_error=gen=5;reason=restore-failed;ranks=2,3");
	ck_assert_str_eq(got, "mode=auto gen=5 moves=0 last_error=gen=5;reason=restore-failed;ranks=2,3");
	g_free(got);
	{
		GVariant *h = query_history();

		ck_assert_str_eq(hist_str(h, 0, "outcome"),
				 "failed:restore-timeout");
		g_variant_unref(h);
	}
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * Every rank back: the watch ends, and the step is an ordinary one again
 * (a drain starts a capture: no capture starts while it is watched).
 */
START_TEST(test_restore_watchdog_all_back)
{
	int srun, a1, a2;
	smig_msg_t *m;

	conf->restore_timeout_ms = 300;
	relaunched_step(&srun, &a1, &a2, 1);
	restored(a2, 7, 5, 2, 3);
	set_node(2, SMIG_NODE_DRAIN);
	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 6);
	smig_msg_free(m);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/* RESTORED naming a rank of another node is refused */
START_TEST(test_restored_foreign_rank_refused)
{
	int srun, a1, a2;
	smig_msg_t *m;

	relaunched_step(&srun, &a1, &a2, 1);
	restored(a1, 7, 5, 2, 3);
	m = expect(a1, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "reason"), "ranks=2: not a rank of node node1");
	smig_msg_free(m);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

START_TEST(test_missing_done_aborts)
{
	int srun, a1, a2;
	smig_msg_t *m;
	char *got;

	register_step(&srun, &a1, &a2);
	drain_and_count(a1, a2);
	done(a1, 1, 0, 0);
	done(a1, 1, 1, 0);
	done(a2, 1, 2, 0);
	/* rank 3 never answers */
	m = expect(a1, SMIG_MSG_ABORT);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_str_eq(get_str(m, "reason"), "capture-timeout");
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_ABORT);
	smig_msg_free(m);
	got = wait_published("mode=auto gen=0 moves=0 last_error=gen=1;reason=capture-timeout;ranks=3");
	ck_assert_str_eq(got, "mode=auto gen=0 moves=0 last_error=gen=1;reason=capture-timeout;ranks=3");
	g_free(got);
	{
		/* Then the evacuation waits one capture timeout, and says so. */
		GVariant *h = wait_history(2);

		ck_assert_str_eq(hist_str(h, 0, "outcome"),
				 "failed:capture-timeout");
		ck_assert_str_eq(hist_str(h, 1, "outcome"),
				 "skipped:retry-delay");
		g_variant_unref(h);
	}
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * No rank answers PREPARE (the application is not past smig_register()
 * yet): the capture times out, and the next one comes after one capture
 * timeout (1 s here), not after MigrateRetryInterval (60 s here); once
 * ranks answer, the move goes through.
 */
START_TEST(test_unheard_prepare_retried)
{
	int srun, a1, a2;
	smig_msg_t *m;
	gint64 t0;

	register_step(&srun, &a1, &a2);
	set_node(2, SMIG_NODE_DRAIN);
	smig_msg_free(expect(a1, SMIG_MSG_PREPARE));
	smig_msg_free(expect(a2, SMIG_MSG_PREPARE));
	m = expect(a1, SMIG_MSG_ABORT);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_str_eq(get_str(m, "reason"), "capture-timeout");
	smig_msg_free(m);
	smig_msg_free(expect(a2, SMIG_MSG_ABORT));
	t0 = g_get_monotonic_time();
	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 2);
	smig_msg_free(m);
	ck_assert_int_lt(g_get_monotonic_time() - t0, 10 * G_USEC_PER_SEC);
	smig_msg_free(expect(a2, SMIG_MSG_PREPARE));
	count(a1, 2, 0, 5);
	count(a1, 2, 1, 5);
	count(a2, 2, 2, 5);
	count(a2, 2, 3, 5);
	m = expect(a1, SMIG_MSG_CAPTURE);
	ck_assert_uint_eq(get_u64(m, "gen"), 2);
	smig_msg_free(m);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

START_TEST(test_failed_done_aborts)
{
	int srun, a1, a2;
	smig_msg_t *m;
	char *got;

	register_step(&srun, &a1, &a2);
	drain_and_count(a1, a2);
	done(a2, 1, 2, -28);
	m = expect(a1, SMIG_MSG_ABORT);
	ck_assert_str_eq(get_str(m, "reason"), "capture-failed");
	smig_msg_free(m);
	got = wait_published("mode=auto gen=0 moves=0 last_error=gen=1;reason=capture-failed;ranks=2");
	ck_assert_str_eq(got, "mode=auto gen=0 moves=0 last_error=gen=1;reason=capture-failed;ranks=2");
	g_free(got);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/* An agent whose connection closes without BYE: its slurmstepd died. */
START_TEST(test_agent_gone_ends_step)
{
	int srun, a1, a2;
	smig_msg_t *m;
	char *got;

	register_step(&srun, &a1, &a2);
	drain_and_count(a1, a2);
	close(a2);
	m = expect(a1, SMIG_MSG_ABORT);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_str_eq(get_str(m, "reason"), "agent-lost");
	smig_msg_free(m);
	/* srun ends the step, which Slurm would wait for forever. */
	m = expect(srun, SMIG_MSG_ABORT);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_str_eq(get_str(m, "reason"), "agent-lost");
	ck_assert_str_eq(get_str(m, "node"), "node2");
	smig_msg_free(m);
	got = wait_published("mode=auto gen=0 moves=0 last_error=gen=1;reason=agent-lost;ranks=2,3");
	ck_assert_str_eq(got, "mode=auto gen=0 moves=0 last_error=gen=1;reason=agent-lost;ranks=2,3");
	g_free(got);
	close(a1);
	close(srun);
}
END_TEST

/* srun gone after RELAUNCH, before its ACK: the ranks go on. */
START_TEST(test_srun_lost_before_commit)
{
	int srun, a1, a2;
	smig_msg_t *m;
	char *got;

	register_step(&srun, &a1, &a2);
	drain_and_count(a1, a2);
	done(a1, 1, 0, 0);
	done(a1, 1, 1, 0);
	done(a2, 1, 2, 0);
	done(a2, 1, 3, 0);
	m = expect(srun, SMIG_MSG_RELAUNCH);
	smig_msg_free(m);
	close(srun);
	m = expect(a1, SMIG_MSG_ABORT);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert_str_eq(get_str(m, "reason"), "srun-lost");
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_ABORT);
	smig_msg_free(m);
	/* Never committed: not in the manifest, so not the last good one. */
	got = wait_published("mode=auto gen=0 moves=0 last_error=gen=1;reason=srun-lost");
	ck_assert_str_eq(got, "mode=auto gen=0 moves=0 last_error=gen=1;reason=srun-lost");
	g_free(got);
	close(a1);
	close(a2);
}
END_TEST

/* An agent that says BYE before it closes leaves the step alone. */
START_TEST(test_agent_bye_keeps_step)
{
	int srun, a1, a2;
	GVariantBuilder vb;
	GError *err = NULL;
	smig_msg_t *m;

	register_step(&srun, &a1, &a2);
	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "status", g_variant_new_int32(0));
	send_msg(a2, user_auth, SMIG_MSG_BYE, &vb);
	close(a2);
	m = smig_wire_recv(srun, user_auth, 500, &err);
	ck_assert_msg(!m, "srun got %s", m ? smig_msg_type_name(m->type) : "");
	ck_assert_msg(strstr(err->message, "timed out"), "%s", err->message);
	g_error_free(err);
	close(a1);
	close(srun);
}
END_TEST

START_TEST(test_wrong_uid_refused)
{
	int bad, srun, agent;
	smig_msg_t *m;

	bad = peer();
	hello_srun(bad, other_auth, 0, "mode=auto", 0, 0);
	m = expect(bad, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "HELLO_SRUN");
	ck_assert_str_eq(get_str(m, "reason"),
			 "uid 2000 is not the owner (uid 1000) of the job");
	smig_msg_free(m);

	/* The owner's srun is fine; another user's agent is not. */
	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=auto", 0, 0);
	agent = peer();
	hello_agent_bare(agent, other_auth, 0, "node1", 0, 1);
	m = expect(agent, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "HELLO_AGENT");
	smig_msg_free(m);
	close(bad);
	close(agent);
	close(srun);
}
END_TEST

/* NODE_EVENT from uid as sent by smigd -E (event, nodes). */
static void node_event(int fd, smig_auth_t *auth, const char *event,
		       const char *nodes)
{
	GVariantBuilder vb;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "event",
			      g_variant_new_string(event));
	g_variant_builder_add(&vb, "{sv}", "nodes",
			      g_variant_new_string(nodes));
	send_msg(fd, auth, SMIG_MSG_NODE_EVENT, &vb);
}

/*
 * NODE_EVENT (Slurm's node trigger ran smigd -E): from a user it is
 * refused naming the uid and the host is not told; from SlurmUser the host's
 * nodes_changed() is called once and NODE_EVENT_OK echoes the event. A
 * registered srun or agent that leaves calls jobs_changed() (a requeue
 * kills the job's steps), a peer that never registered does not.
 */
START_TEST(test_node_event)
{
	int fd, srun, a1, a2, anon;
	smig_msg_t *m;
	char *want;

	fd = peer();
	node_event(fd, user_auth, "reconfig", "reconfig");
	m = expect(fd, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "NODE_EVENT");
	want = g_strdup_printf("uid %u is neither root nor SlurmUser (uid %u)",
			       OWNER, ADMIN);
	ck_assert_str_eq(get_str(m, "reason"), want);
	g_free(want);
	smig_msg_free(m);
	ck_assert_int_eq(g_atomic_int_get(&nodes_changed), 0);

	node_event(fd, bal_auth, "down", "node[1-2]");
	m = expect(fd, SMIG_MSG_NODE_EVENT_OK);
	ck_assert_str_eq(get_str(m, "event"), "down");
	smig_msg_free(m);
	ck_assert_int_eq(g_atomic_int_get(&nodes_changed), 1);
	close(fd);

	anon = peer();
	close(anon);
	register_step(&srun, &a1, &a2);
	ck_assert_int_eq(g_atomic_int_get(&jobs_changed), 0);
	close(a2);
	for (int i = 0; i < WAIT_MS / 10 &&
	     !g_atomic_int_get(&jobs_changed); i++)
		g_usleep(10000);
	ck_assert_int_eq(g_atomic_int_get(&jobs_changed), 1);
	close(a1);
	close(srun);
}
END_TEST

/*
 * A message that breaks its schema (a field of another type, a required
 * one missing) is refused naming the message, the field and the types,
 * before any handler sees it; the connection stays usable.
 */
START_TEST(test_schema_refused)
{
	GVariantBuilder vb;
	int srun;
	smig_msg_t *m;

	srun = peer();
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	g_variant_builder_add(&vb, "{sv}", "step", g_variant_new_int32(0));
	g_variant_builder_add(&vb, "{sv}", "status", g_variant_new_int32(0));
	send_msg(srun, user_auth, SMIG_MSG_BYE, &vb);
	m = expect(srun, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "BYE");
	ck_assert_str_eq(get_str(m, "reason"),
			 "BYE: field step: expected type u, found i");
	smig_msg_free(m);

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(srun, user_auth, SMIG_MSG_HELLO_SRUN, &vb);
	m = expect(srun, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "HELLO_SRUN");
	ck_assert_str_eq(get_str(m, "reason"),
			 "HELLO_SRUN: field step (type u) is missing");
	smig_msg_free(m);

	/* Still connected: a well-formed HELLO_SRUN registers. */
	hello_srun(srun, user_auth, 0, "mode=auto", 0, 0);
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(srun, user_auth, SMIG_MSG_QUERY, &vb);
	m = expect(srun, SMIG_MSG_STATUS);
	smig_msg_free(m);
	close(srun);
}
END_TEST

START_TEST(test_bad_frame_closes)
{
	static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
	GError *err = NULL;
	smig_msg_t *m;
	int fd, srun;
	char *got;

	fd = peer();
	ck_assert_int_eq(write(fd, junk, sizeof(junk) - 1),
			 (ssize_t) sizeof(junk) - 1);
	m = smig_wire_recv(fd, user_auth, WAIT_MS, &err);
	ck_assert(!m);
	ck_assert_str_eq(err->message, "connection closed");
	g_error_free(err);
	close(fd);

	/* The balancer still serves others. */
	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=advise", 0, 0);
	got = wait_published("mode=advise gen=0 moves=0");
	ck_assert_str_eq(got, "mode=advise gen=0 moves=0");
	g_free(got);
	close(srun);
}
END_TEST

START_TEST(test_advise_never_moves)
{
	int srun, a1, a2;
	const char *want = "mode=advise gen=0 moves=0 advice=ranks=2,3;from=node2;to=node3;reason=drain";
	GError *err = NULL;
	smig_msg_t *m;
	char *got;

	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=advise", 0, 0);
	a1 = peer();
	hello_agent(a1, user_auth, 0, "node1", 0, 1);
	a2 = peer();
	hello_agent(a2, user_auth, 0, "node2", 2, 3);
	set_node(2, SMIG_NODE_DRAIN);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	m = smig_wire_recv(a1, user_auth, 200, &err);
	ck_assert(!m);
	ck_assert_str_eq(err->message, "timed out");
	g_error_free(err);
	{
		GVariant *h = query_history();

		/* One entry: the advice did not change between polls. */
		ck_assert_uint_eq(g_variant_n_children(h), 1);
		ck_assert_str_eq(hist_str(h, 0, "kind"), "advise");
		ck_assert_str_eq(hist_str(h, 0, "outcome"), "advised");
		ck_assert_uint_eq(hist_gen(h, 0), 0);
		g_variant_unref(h);
	}
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

START_TEST(test_no_spare)
{
	const char *want = "mode=auto gen=0 moves=0 last_error=gen=1;reason=no-spare";
	GError *err = NULL;
	int srun, a1, a2;
	smig_msg_t *m;
	char *got;

	/* node3 has no CPU of this job: ranks 2,3 have nowhere to go. */
	alloc_cpus = "2,2,0";
	register_step(&srun, &a1, &a2);
	set_node(2, SMIG_NODE_DRAIN);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	m = smig_wire_recv(a2, user_auth, 200, &err);
	ck_assert(!m);
	ck_assert_str_eq(err->message, "timed out");
	g_error_free(err);
	/* Said once, though the poll sees the drain every 20 ms. */
	{
		GVariant *h = query_history();

		ck_assert_uint_eq(g_variant_n_children(h), 1);
		ck_assert_str_eq(hist_str(h, 0, "kind"), "drain");
		ck_assert_str_eq(hist_str(h, 0, "from"), "node2");
		ck_assert_str_eq(hist_str(h, 0, "outcome"),
				 "skipped:no-spare");
		ck_assert_str_eq(hist_str(h, 0, "why"),
				 "no room in the allocation (2 ranks must leave node2 but only 0 free slots remain)");
		g_variant_unref(h);
	}
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

static void register_step_req(const char *req, const char *line, int *srun,
			      int *a1, int *a2);

/*
 * query_spares - STATUS's spares as text: "step:asked:node,node;..."; ""
 * when the field is absent (no step asked for spares)
 */
static char *query_spares(void)
{
	GString *s = g_string_new(NULL);
	int cli = peer();
	GVariantBuilder vb;
	GVariantIter *names;
	uint32_t step, asked;
	const char *node;
	GVariant *sp;
	smig_msg_t *m;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(cli, user_auth, SMIG_MSG_QUERY, &vb);
	m = expect(cli, SMIG_MSG_STATUS);
	sp = g_variant_lookup_value(m->body, "spares",
				    G_VARIANT_TYPE("a(uuas)"));
	for (gsize i = 0; sp && i < g_variant_n_children(sp); i++) {
		bool first = true;

		g_variant_get_child(sp, i, "(uuas)", &step, &asked, &names);
		g_string_append_printf(s, "%s%u:%u:", i ? ";" : "", step,
				       asked);
		while (g_variant_iter_loop(names, "&s", &node)) {
			g_string_append_printf(s, "%s%s", first ? "" : ",",
					       node);
			first = false;
		}
		g_variant_iter_free(names);
	}
	if (sp)
		g_variant_unref(sp);
	smig_msg_free(m);
	close(cli);
	return g_string_free(s, FALSE);
}

/* Wait until query_spares() says want; RET the last answer, g_free() it */
static char *wait_spares(const char *want)
{
	char *got = NULL;

	for (int i = 0; i < WAIT_MS / 20; i++) {
		g_free(got);
		got = query_spares();
		if (!strcmp(got, want))
			break;
		usleep(20 * 1000);
	}
	return got;
}

/*
 * Hot spares (spares=1): node3 holds no rank of the step. A drain of node2
 * moves its ranks to the spare though node1 has two free slots (without
 * spares= they would go to node1: policy-test's test_spares_first); STATUS
 * lists the spare, then none once a move used it, then node2 once it is
 * usable again.
 */
START_TEST(test_spares_used_first)
{
	int srun, a1, a2, srun2, b1, b3;
	smig_msg_t *m;
	char *got;

	alloc_cpus = "4(x3)";
	register_step_req("mode=auto,spares=1", "mode=auto gen=0 moves=0",
			  &srun, &a1, &a2);
	got = wait_spares("0:1:node3");
	ck_assert_str_eq(got, "0:1:node3");
	g_free(got);

	drain_and_count(a1, a2);
	done(a1, 1, 0, 0);
	done(a1, 1, 1, 0);
	done(a2, 1, 2, 0);
	done(a2, 1, 3, 0);
	m = expect(srun, SMIG_MSG_RELAUNCH);
	ck_assert_str_eq(get_str(m, "hostfile"),
			 "node1\nnode1\nnode3\nnode3\n");
	smig_msg_free(m);
	relaunch_ack(srun, 1);
	smig_msg_free(expect(a1, SMIG_MSG_COMMIT));
	smig_msg_free(expect(a2, SMIG_MSG_COMMIT));
	got = wait_published("mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain");
	ck_assert_str_eq(got, "mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain");
	g_free(got);
	close(a1);
	close(a2);
	close(srun);

	/* The relaunched step: node3 is used, node2 drained: no spare. */
	srun2 = peer();
	hello_srun(srun2, user_auth, 1, "mode=auto,spares=1", 1, 0);
	b1 = peer();
	hello_agent(b1, user_auth, 1, "node1", 0, 1);
	b3 = peer();
	hello_agent(b3, user_auth, 1, "node3", 2, 3);
	got = wait_spares("1:1:");
	ck_assert_str_eq(got, "1:1:");
	g_free(got);
	/* node2 is resumed: it holds no rank, it is the spare now. */
	set_node(2, SMIG_NODE_OK);
	got = wait_spares("1:1:node2");
	ck_assert_str_eq(got, "1:1:node2");
	g_free(got);
	close(b1);
	close(b3);
	close(srun2);
}
END_TEST

/* Without spares=, STATUS has no spares field. */
START_TEST(test_no_spares_field)
{
	int srun, a1, a2;
	char *got;

	register_step(&srun, &a1, &a2);
	got = query_spares();
	ck_assert_str_eq(got, "");
	g_free(got);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/* One agent's SAMPLE: ranks r0, r1 with CPU c0, c1; a pair r0 -> r1. */
static void sample(int fd, const char *node, uint32_t r0, uint32_t r1,
		   double c0, double c1, guint n_cpu)
{
	uint32_t ranks[2] = { r0, r1 };
	double cpu[2] = { c0, c1 }, delay[2] = { 0.01, 0.02 };
	double iters[2] = { 10, -1 };
	guint64 rss[2] = { 1 << 20, 2 << 20 };
	GVariantBuilder vb, pairs;

	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "interval_ms",
			      g_variant_new_uint32(1000));
	g_variant_builder_add(&vb, "{sv}", "load", g_variant_new_double(1.5));
	g_variant_builder_add(&vb, "{sv}", "health",
			      g_variant_new_string(health_word));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2, 4));
	g_variant_builder_add(&vb, "{sv}", "cpu",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE,
							cpu, n_cpu, 8));
	g_variant_builder_add(&vb, "{sv}", "delay",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE,
							delay, 2, 8));
	g_variant_builder_add(&vb, "{sv}", "iters",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE,
							iters, 2, 8));
	g_variant_builder_add(&vb, "{sv}", "rss",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64,
							rss, 2, 8));
	g_variant_builder_init(&pairs, G_VARIANT_TYPE("a(uutt)"));
	g_variant_builder_add(&pairs, "(uutt)", r0, r1, (guint64) 1000,
			      (guint64) 2);
	g_variant_builder_add(&vb, "{sv}", "pairs",
			      g_variant_builder_end(&pairs));
	send_msg(fd, user_auth, SMIG_MSG_SAMPLE, &vb);
	(void) node;
}

/* A SAMPLE of step: both ranks with CPU share cpu, run delay delay. */
static void sample_load(int fd, uint32_t step, uint32_t r0, uint32_t r1,
			double cpu, double delay, double iters)
{
	uint32_t ranks[2] = { r0, r1 };
	double c[2] = { cpu, cpu }, d[2] = { delay, delay };
	double it[2] = { iters, iters };
	guint64 rss[2] = { 1 << 20, 1 << 20 };
	GVariantBuilder vb;

	body_start(&vb, step);
	g_variant_builder_add(&vb, "{sv}", "interval_ms",
			      g_variant_new_uint32(1000));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2, 4));
	g_variant_builder_add(&vb, "{sv}", "cpu",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE,
							c, 2, 8));
	g_variant_builder_add(&vb, "{sv}", "delay",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE,
							d, 2, 8));
	g_variant_builder_add(&vb, "{sv}", "iters",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_DOUBLE,
							it, 2, 8));
	g_variant_builder_add(&vb, "{sv}", "rss",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64,
							rss, 2, 8));
	send_msg(fd, user_auth, SMIG_MSG_SAMPLE, &vb);
}

/*
 * mode=auto: node2's ranks get a tenth of a core in every sample of a
 * window, node1's six tenths: the balancer moves them to node3 by itself
 * (reason balance), the history shows the decision with its prediction,
 * and once the relaunched step has a full window at twice the rate, the
 * measured gain 1.00.
 */
START_TEST(test_auto_balances)
{
	int srun, a1, a2, srun2, b1, b2;
	double predicted, measured;
	smig_msg_t *m;
	GVariant *h;
	char *got, *want;

	register_step(&srun, &a1, &a2);
	for (int i = 0; i < 8; i++) {
		sample_load(a1, 0, 0, 1, 0.6, 0.4, 2.0);
		sample_load(a2, 0, 2, 3, 0.1, 0.9, 2.0);
	}
	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	check_prepare(m, "balance", true);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_PREPARE);
	smig_msg_free(m);
	h = query_history();
	ck_assert_uint_eq(g_variant_n_children(h), 1);
	ck_assert_str_eq(hist_str(h, 0, "kind"), "auto");
	ck_assert_str_eq(hist_str(h, 0, "reason"), "balance");
	ck_assert_str_eq(hist_str(h, 0, "ranks"), "2,3");
	ck_assert_str_eq(hist_str(h, 0, "from"), "node2");
	ck_assert_str_eq(hist_str(h, 0, "to"), "node3");
	ck_assert_str_eq(hist_str(h, 0, "outcome"), "pending");
	ck_assert(strlen(hist_str(h, 0, "strategy")) > 0);
	ck_assert(strstr(hist_str(h, 0, "why"), "node2"));
	ck_assert(hist_double(h, 0, "predicted_gain", &predicted));
	ck_assert_msg(predicted > 1, "%g", predicted);	/* iterations 2x faster at least */
	g_variant_unref(h);

	count(a1, 1, 0, 5);
	count(a1, 1, 1, 5);
	count(a2, 1, 2, 5);
	count(a2, 1, 3, 5);
	m = expect(a1, SMIG_MSG_CAPTURE);
	smig_msg_free(m);
	for (uint32_t r = 0; r < 4; r++)
		done(r < 2 ? a1 : a2, 1, r, 0);
	m = expect(srun, SMIG_MSG_RELAUNCH);
	ck_assert_str_eq(get_str(m, "hostfile"),
			 "node1\nnode1\nnode3\nnode3\n");
	ck_assert_str_eq(get_str(m, "reason"), "balance");
	smig_msg_free(m);
	relaunch_ack(srun, 1);
	m = expect(a1, SMIG_MSG_COMMIT);
	smig_msg_free(m);
	/* The windows start afresh: no load= until new samples. */
	want = g_strdup_printf("mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=balance last_decision=auto;gain=%.2f",
			       predicted);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	g_free(want);
	/* A late sample of the stopping step is not counted. */
	sample_load(a1, 0, 0, 1, 0.6, 0.4, 2.0);
	close(a1);
	close(a2);
	close(srun);

	srun2 = peer();
	hello_srun(srun2, user_auth, 1, "mode=auto", 1, 0);
	b1 = peer();
	hello_agent(b1, user_auth, 1, "node1", 0, 1);
	b2 = peer();
	hello_agent(b2, user_auth, 1, "node3", 2, 3);
	for (int i = 0; i < 8; i++) {
		sample_load(b1, 1, 0, 1, 0.5, 0.5, 4.0);
		sample_load(b2, 1, 2, 3, 0.5, 0.5, 4.0);
	}
	want = g_strdup_printf("mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=balance last_decision=auto;gain=%.2f;measured=1.00 load=imbalance:1.00,hot:rank0@node1,node:node1",
			       predicted);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	g_free(want);
	h = query_history();
	ck_assert_str_eq(hist_str(h, 0, "outcome"), "moved");
	ck_assert(hist_double(h, 0, "measured_gain", &measured));
	ck_assert(fabs(measured - 1.0) < 1e-6);
	g_variant_unref(h);
	/* Cooldown: equal nodes anyway, and no new capture. */
	{
		GError *err = NULL;

		m = smig_wire_recv(b1, user_auth, 200, &err);
		ck_assert(!m);
		g_error_free(err);
	}
	close(b1);
	close(b2);
	close(srun2);
}
END_TEST

/* QUERY of the job as its owner on fd; RET the STATUS */
static smig_msg_t *query_on(int fd)
{
	GVariantBuilder vb;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(fd, user_auth, SMIG_MSG_QUERY, &vb);
	return expect(fd, SMIG_MSG_STATUS);
}

static uint32_t get_u32(const smig_msg_t *m, const char *key)
{
	uint32_t v = 0;

	ck_assert_msg(g_variant_lookup(m->body, key, "u", &v), "no %s", key);
	return v;
}

START_TEST(test_samples_and_query)
{
	const char *want = "mode=auto gen=0 moves=0 "
			   "load=imbalance:2.00,hot:rank3@node2,node:node2";
	int srun, a1, a2, cli;
	GVariantBuilder vb;
	GVariant *pairs;
	smig_msg_t *m;
	char *got;

	register_step(&srun, &a1, &a2);
	/* Before any sample: no load field, QUERY answers without ranks. */
	cli = peer();
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(cli, other_auth, SMIG_MSG_QUERY, &vb);
	m = expect(cli, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "QUERY");
	ck_assert_str_eq(get_str(m, "reason"),
			 "uid 2000 is not the owner (uid 1000) of the job");
	smig_msg_free(m);

	/* A malformed sample is refused; a rank of another node skipped. */
	sample(a1, "node1", 0, 1, 0.5, 0.5, 1);
	m = expect(a1, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "SAMPLE");
	ck_assert_str_eq(get_str(m, "reason"),
			 "fields ranks, cpu, delay, iters and rss: 2, 1, 2, 2 and 2 elements (the same number, one per rank, accepted)");
	smig_msg_free(m);
	sample(a1, "node1", 0, 2, 0.5, 9.0, 2);
	sample(a1, "node1", 0, 1, 0.5, 0.5, 2);
	sample(a2, "node2", 2, 3, 0.5, 1.5, 2);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(cli, user_auth, SMIG_MSG_QUERY, &vb);
	m = expect(cli, SMIG_MSG_STATUS);
	ck_assert_str_eq(get_str(m, "state"), want);
	/* The SAMPLEs' own interval (1000 ms), not the step's (30 s). */
	ck_assert_uint_eq(get_u32(m, "interval_ms"), 1000);
	pairs = g_variant_lookup_value(m->body, "pairs",
				       G_VARIANT_TYPE("a(uutt)"));
	ck_assert_ptr_nonnull(pairs);
	/* 0-1, 2-3 and 0-2: rank 2 was not sampled by node1, its traffic counts */
	ck_assert_uint_eq(g_variant_n_children(pairs), 3);
	g_variant_unref(pairs);
	/* A flat network: no switches field. */
	ck_assert(!g_variant_lookup_value(m->body, "switches", NULL));
	smig_msg_free(m);

	/* The host knows a switch tree: each node's leaf switch. */
	{
		smig_topology_t *t = smig_topology_parse(
			"SwitchName=s0 Nodes=node1\n"
			"SwitchName=s1 Nodes=node2\n"
			"SwitchName=top Switches=s[0-1]\n", "t", NULL);
		const char *node, *sw;
		GVariant *sws;

		ck_assert_ptr_nonnull(t);
		g_mutex_lock(&host_lock);
		host_topo = t;
		g_mutex_unlock(&host_lock);
		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "job",
				      g_variant_new_uint32(JOB));
		send_msg(cli, user_auth, SMIG_MSG_QUERY, &vb);
		m = expect(cli, SMIG_MSG_STATUS);
		sws = g_variant_lookup_value(m->body, "switches",
					     G_VARIANT_TYPE("a(ss)"));
		ck_assert_ptr_nonnull(sws);
		ck_assert_uint_eq(g_variant_n_children(sws), 2);
		for (gsize i = 0; i < 2; i++) {
			g_variant_get_child(sws, i, "(&s&s)", &node, &sw);
			ck_assert_str_eq(sw, !strcmp(node, "node1") ? "s0" :
					 "s1");
		}
		g_variant_unref(sws);
		smig_msg_free(m);
	}
	close(cli);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * STATUS's interval_ms is the agents' interval before their first SAMPLE
 * too: the running step's interval= (issue 17: "smig show" right after a
 * move said "ranks are sampled every 0.0s", the balancer knowing no
 * interval until a SAMPLE came); 0 only while no step is registered.
 * QUERY goes on the srun's own connection: answered after its HELLO.
 */
START_TEST(test_query_interval)
{
	int srun, a1, a2, srun2;
	smig_msg_t *m;
	char *got;

	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=auto,interval=2s", 0, 0);
	m = query_on(srun);
	ck_assert_uint_eq(get_u32(m, "interval_ms"), 2000);
	ck_assert_uint_eq(get_u64(m, "samples"), 0);
	ck_assert(!g_variant_lookup_value(m->body, "ranks", NULL));
	smig_msg_free(m);
	got = wait_published("mode=auto gen=0 moves=0");
	g_free(got);
	a1 = peer();
	hello_agent(a1, user_auth, 0, "node1", 0, 1);
	a2 = peer();
	hello_agent(a2, user_auth, 0, "node2", 2, 3);

	/* A drain moves ranks 2, 3; no SAMPLE came in this test. */
	drain_and_count(a1, a2);
	done(a1, 1, 0, 0);
	done(a1, 1, 1, 0);
	done(a2, 1, 2, 0);
	done(a2, 1, 3, 0);
	m = expect(srun, SMIG_MSG_RELAUNCH);
	smig_msg_free(m);
	relaunch_ack(srun, 1);
	m = expect(a1, SMIG_MSG_COMMIT);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_COMMIT);
	smig_msg_free(m);
	m = expect(srun, SMIG_MSG_COMMIT);
	smig_msg_free(m);
	/* Between the moved step and its relaunch: no step, not known. */
	m = query_on(srun);
	ck_assert_uint_eq(get_u32(m, "interval_ms"), 0);
	smig_msg_free(m);
	close(a1);
	close(a2);
	close(srun);

	/* The relaunched step, before its first SAMPLE: its interval. */
	srun2 = peer();
	hello_srun(srun2, user_auth, 1, "mode=auto,interval=2s", 1, 0);
	m = query_on(srun2);
	ck_assert_str_eq(get_str(m, "state"),
			 "mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain");
	ck_assert_uint_eq(get_u32(m, "interval_ms"), 2000);
	smig_msg_free(m);
	close(srun2);
}
END_TEST

/* REQUEST what=move from auth; RET the answer (REPLY or REFUSED) */
static smig_msg_t *request_move(int fd, smig_auth_t *auth, const char *ranks,
				const char *to)
{
	GError *err = NULL;
	GVariantBuilder vb;
	smig_msg_t *m;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	g_variant_builder_add(&vb, "{sv}", "what", g_variant_new_string("move"));
	g_variant_builder_add(&vb, "{sv}", "ranks", g_variant_new_string(ranks));
	g_variant_builder_add(&vb, "{sv}", "to", g_variant_new_string(to));
	send_msg(fd, auth, SMIG_MSG_REQUEST, &vb);
	m = smig_wire_recv(fd, user_auth, WAIT_MS, &err);
	ck_assert_msg(m, "no answer: %s", err ? err->message : "");
	return m;
}

static void expect_refused(int fd, smig_auth_t *auth, const char *ranks,
			   const char *to, const char *reason)
{
	smig_msg_t *m = request_move(fd, auth, ranks, to);

	ck_assert_str_eq(smig_msg_type_name(m->type), "REFUSED");
	ck_assert_str_eq(get_str(m, "what"), "REQUEST");
	ck_assert_str_eq(get_str(m, "reason"), reason);
	smig_msg_free(m);
}

START_TEST(test_request_move)
{
	int srun, a1, a2, cli;
	int32_t status = 1;
	gint64 end;
	smig_msg_t *m;
	char *got;

	register_step(&srun, &a1, &a2);
	cli = peer();
	/* Until both agents are registered the step cannot move (EBUSY). */
	for (end = g_get_monotonic_time() + WAIT_MS * 1000;;) {
		m = request_move(cli, user_auth, "2-3", "node3");
		ck_assert_str_eq(smig_msg_type_name(m->type), "REPLY");
		ck_assert(smig_msg_get_i32(m, "status", &status));
		if (status != -EBUSY || g_get_monotonic_time() > end)
			break;
		smig_msg_free(m);
		usleep(20 * 1000);
	}
	ck_assert_int_eq(status, 0);
	ck_assert_str_eq(get_str(m, "started"), "StepId=0:gen=1");
	ck_assert_str_eq(get_str(m, "move"),
			 "ranks=2,3;from=node2;to=node3;reason=request");
	smig_msg_free(m);

	/* A second request while the first one runs: busy. */
	m = request_move(cli, user_auth, "0", "node3");
	ck_assert(smig_msg_get_i32(m, "status", &status));
	ck_assert_int_eq(status, -EBUSY);
	ck_assert_str_eq(get_str(m, "why"),
			 "StepId=0: a capture or move is in progress");
	smig_msg_free(m);

	m = expect(a1, SMIG_MSG_PREPARE);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_PREPARE);
	smig_msg_free(m);
	for (uint32_t r = 0; r < 4; r++)
		count(r < 2 ? a1 : a2, 1, r, 3);
	m = expect(a1, SMIG_MSG_CAPTURE);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_CAPTURE);
	smig_msg_free(m);
	for (uint32_t r = 0; r < 4; r++)
		done(r < 2 ? a1 : a2, 1, r, 0);
	m = expect(srun, SMIG_MSG_RELAUNCH);
	ck_assert_str_eq(get_str(m, "hostfile"),
			 "node1\nnode1\nnode3\nnode3\n");
	ck_assert_str_eq(get_str(m, "reason"), "request");
	smig_msg_free(m);
	relaunch_ack(srun, 1);
	got = wait_published("mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=request");
	ck_assert_str_eq(got, "mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=request");
	g_free(got);
	close(cli);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * A step whose ranks are not all past smig_register() is not captured: a
 * PMIx event reaches only ranks that listen. The move waits (EBUSY, with
 * the reason) until the last agent says RESTORED, then starts.
 */
START_TEST(test_capture_waits_for_ready)
{
	int srun, a1, a2, cli;
	int32_t status = 1;
	gint64 end;
	smig_msg_t *m;

	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=auto", 0, 0);
	a1 = peer();
	hello_agent(a1, user_auth, 0, "node1", 0, 1);
	a2 = peer();
	hello_agent_bare(a2, user_auth, 0, "node2", 2, 3);
	cli = peer();
	for (end = g_get_monotonic_time() + WAIT_MS * 1000;;) {
		m = request_move(cli, user_auth, "2-3", "node3");
		ck_assert(smig_msg_get_i32(m, "status", &status));
		ck_assert_int_eq(status, -EBUSY);
		if (!strcmp(get_str(m, "why"),
			    "StepId=0: not every rank is past smig_register() yet") ||
		    g_get_monotonic_time() > end)
			break;
		smig_msg_free(m);
		usleep(20 * 1000);
	}
	ck_assert_str_eq(get_str(m, "why"),
			 "StepId=0: not every rank is past smig_register() yet");
	smig_msg_free(m);
	restored(a2, 0, 0, 2, 3);
	for (end = g_get_monotonic_time() + WAIT_MS * 1000;;) {
		m = request_move(cli, user_auth, "2-3", "node3");
		ck_assert(smig_msg_get_i32(m, "status", &status));
		if (status != -EBUSY || g_get_monotonic_time() > end)
			break;
		smig_msg_free(m);
		usleep(20 * 1000);
	}
	ck_assert_int_eq(status, 0);
	smig_msg_free(m);
	m = expect(a2, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	smig_msg_free(m);
	close(cli);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

START_TEST(test_request_move_refused)
{
	int srun, a1, a2, cli;
	int32_t status = 1;
	gint64 end;
	smig_msg_t *m;

	register_step(&srun, &a1, &a2);
	cli = peer();
	/* Wait for the agents with a request that cannot start a move. */
	for (end = g_get_monotonic_time() + WAIT_MS * 1000;;) {
		m = request_move(cli, user_auth, "0", "node1");
		if (m->type != SMIG_MSG_REPLY ||
		    g_get_monotonic_time() > end)
			break;
		ck_assert(smig_msg_get_i32(m, "status", &status));
		ck_assert_int_eq(status, -EBUSY);
		smig_msg_free(m);
		usleep(20 * 1000);
	}
	ck_assert_str_eq(smig_msg_type_name(m->type), "REFUSED");
	ck_assert_str_eq(get_str(m, "reason"),
			 "ranks=0: rank 0 already runs on node1");
	smig_msg_free(m);

	expect_refused(cli, other_auth, "2,3", "node3",
		       "uid 2000 is not the owner (uid 1000) of the job");
	expect_refused(cli, user_auth, "2,7", "node3",
		       "ranks=2,7: rank 7 does not exist (the step has ranks 0-3)");
	expect_refused(cli, user_auth, "2,2", "node3",
		       "ranks=2,2: rank 2 given twice");
	expect_refused(cli, user_auth, "3-2", "node3",
		       "ranks=3-2: not a rank list (examples: 2,3 or 2-3)");
	expect_refused(cli, user_auth, "two", "node3",
		       "ranks=two: not a rank list (examples: 2,3 or 2-3)");
	expect_refused(cli, user_auth, "2,", "node3",
		       "ranks=2,: not a rank list (examples: 2,3 or 2-3)");
	expect_refused(cli, user_auth, "2", "node9",
		       "to=node9: not a node of the job's allocation");
	expect_refused(cli, user_auth, "0,2", "node1",
		       "ranks=0,2: rank 0 already runs on node1");
	expect_refused(cli, user_auth, "2", "node1",
		       "to=node1: 0 free slots for 1 ranks");
	set_node(3, SMIG_NODE_DRAIN);
	expect_refused(cli, user_auth, "2", "node3",
		       "to=node3: node is drain, not usable");
	set_node(3, SMIG_NODE_OK);
	/* Root may ask: this one is valid (seen by the answer, a REPLY). */
	{
		smig_auth_t *root = smig_auth_none_new(0, 0);

		m = request_move(cli, root, "1", "node3");
		ck_assert_str_eq(smig_msg_type_name(m->type), "REPLY");
		ck_assert(smig_msg_get_i32(m, "status", &status));
		ck_assert_int_eq(status, 0);
		smig_msg_free(m);
		smig_auth_free(root);
	}
	close(cli);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

START_TEST(test_request_rebalance)
{
	int srun, a1, a2, cli;
	int32_t status = -EBUSY;
	GVariantBuilder vb;
	gint64 end;
	smig_msg_t *m = NULL;

	register_step(&srun, &a1, &a2);
	cli = peer();
	/* Without samples the engine cannot decide: said in the reply. */
	for (end = g_get_monotonic_time() + WAIT_MS * 1000;
	     status == -EBUSY && g_get_monotonic_time() < end;) {
		smig_msg_free(m);
		usleep(20 * 1000);
		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "job",
				      g_variant_new_uint32(JOB));
		g_variant_builder_add(&vb, "{sv}", "what",
				      g_variant_new_string("rebalance"));
		send_msg(cli, user_auth, SMIG_MSG_REQUEST, &vb);
		m = expect(cli, SMIG_MSG_REPLY);
		ck_assert(smig_msg_get_i32(m, "status", &status));
	}
	ck_assert_int_eq(status, -ENODATA);
	ck_assert_str_eq(get_str(m, "started"), "");
	ck_assert_str_eq(get_str(m, "why"),
			 "no decision possible: samples of node node1 are stale");
	smig_msg_free(m);

	/* A step given that does not exist is refused by name. */
	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	g_variant_builder_add(&vb, "{sv}", "what",
			      g_variant_new_string("rebalance"));
	g_variant_builder_add(&vb, "{sv}", "step", g_variant_new_uint32(7));
	send_msg(cli, user_auth, SMIG_MSG_REQUEST, &vb);
	m = expect(cli, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "reason"),
			 "step=7: no step 7 of JobId=42 runs with --migrate");
	smig_msg_free(m);
	close(cli);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

START_TEST(test_request_advise_refused)
{
	int srun, cli;
	char *got;

	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=advise", 0, 0);
	got = wait_published("mode=advise gen=0 moves=0");
	ck_assert_str_eq(got, "mode=advise gen=0 moves=0");
	g_free(got);
	cli = peer();
	expect_refused(cli, user_auth, "2", "node3",
		       "mode=advise: StepId=0 never moves");
	close(cli);
	close(srun);
}
END_TEST

/* Finish the capture of gen 1 started by drain_and_count(). */
static void all_done(int a1, int a2, uint64_t gen)
{
	done(a1, gen, 0, 0);
	done(a1, gen, 1, 0);
	done(a2, gen, 2, 0);
	done(a2, gen, 3, 0);
}

START_TEST(test_health_fail_moves)
{
	int srun, a1, a2;
	smig_msg_t *m;

	register_step(&srun, &a1, &a2);
	health_word = "fail";
	sample(a2, "node2", 2, 3, 0.5, 0.5, 2);
	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	smig_msg_free(m);
	smig_msg_free(expect(a2, SMIG_MSG_PREPARE));
	count(a1, 1, 0, 1);
	count(a1, 1, 1, 1);
	count(a2, 1, 2, 1);
	count(a2, 1, 3, 1);
	smig_msg_free(expect(a1, SMIG_MSG_CAPTURE));
	smig_msg_free(expect(a2, SMIG_MSG_CAPTURE));
	all_done(a1, a2, 1);
	m = expect(srun, SMIG_MSG_RELAUNCH);
	ck_assert_str_eq(get_str(m, "hostfile"),
			 "node1\nnode1\nnode3\nnode3\n");
	ck_assert_str_eq(get_str(m, "reason"), "health");
	smig_msg_free(m);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/* Wait until the host saw n releases; RET how many it saw */
static unsigned wait_released(unsigned n)
{
	gint64 end = g_get_monotonic_time() + WAIT_MS * 1000;
	unsigned got;

	g_mutex_lock(&host_lock);
	while (nrelease < n && g_cond_wait_until(&host_cond, &host_lock, end))
		;
	got = nrelease;
	g_mutex_unlock(&host_lock);
	return got;
}

START_TEST(test_job_scope_requeue)
{
	const char *want = "mode=auto gen=1 moves=1 last_move=ranks=all;from=node2;to=requeue;reason=drain";
	int srun, a1, a2, srun2, b1, b2;
	GError *err = NULL;
	bool stop = true;
	smig_msg_t *m;
	char *got;

	/* node3 has no CPU of this job: the ranks of node2 cannot stay. */
	alloc_cpus = "2,2,0";
	register_step(&srun, &a1, &a2);
	drain_reason = "requeue";
	drain_and_count(a1, a2);
	all_done(a1, a2, 1);
	/* Good: recorded (the ranks run on until Slurm stops them). */
	m = expect(a1, SMIG_MSG_COMMIT);
	ck_assert_uint_eq(get_u64(m, "gen"), 1);
	ck_assert(smig_msg_get_bool(m, "stop", &stop) && !stop);
	smig_msg_free(m);
	smig_msg_free(expect(a2, SMIG_MSG_COMMIT));
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	g_mutex_lock(&host_lock);
	ck_assert_uint_eq(nrequeue, 1);
	ck_assert_str_eq(requeue_exclude, "node2");
	g_mutex_unlock(&host_lock);
	ck_assert_uint_ge(wait_released(1), 1);
	/* Our own requeue: released without waiting for old sruns. */
	g_mutex_lock(&host_lock);
	ck_assert(release_clean);
	g_mutex_unlock(&host_lock);
	/* srun relaunches nothing: Slurm restarts the batch script. */
	m = smig_wire_recv(srun, user_auth, 200, &err);
	ck_assert(!m);
	g_error_free(err);
	close(a1);
	close(a2);
	close(srun);

	/* The job runs again: its steps register anew, generations go on. */
	g_mutex_lock(&host_lock);
	job_pending = false;
	g_mutex_unlock(&host_lock);
	srun2 = peer();
	hello_srun(srun2, user_auth, 0, "mode=auto", 0, 0);
	b1 = peer();
	hello_agent(b1, user_auth, 0, "node1", 0, 1);
	b2 = peer();
	hello_agent(b2, user_auth, 0, "node2", 2, 3);
	/* node2 is still drained here: the next capture is generation 2. */
	m = expect(b1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 2);
	smig_msg_free(m);
	close(b1);
	close(b2);
	close(srun2);
}
END_TEST

/*
 * A job Slurm requeued itself (a node failed): released, but not as clean
 * (an srun of the old run may still cancel its step by id: doc/faults.md).
 */
START_TEST(test_slurm_requeue_released_not_clean)
{
	int srun, a1, a2;

	register_step(&srun, &a1, &a2);
	g_mutex_lock(&host_lock);
	job_pending = true;
	g_mutex_unlock(&host_lock);
	ck_assert_uint_ge(wait_released(1), 1);
	g_mutex_lock(&host_lock);
	ck_assert(!release_clean);
	ck_assert_uint_eq(nrequeue, 0);
	g_mutex_unlock(&host_lock);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

START_TEST(test_job_scope_not_requeueable)
{
	const char *want = "mode=auto gen=0 moves=0 last_error=gen=1;reason=no-requeue";
	int srun, a1, a2;
	char *got;

	requeue_ok = false;
	alloc_cpus = "2,2,0";
	register_step(&srun, &a1, &a2);
	set_node(2, SMIG_NODE_DRAIN);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	ck_assert_uint_eq(nrequeue, 0);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/* srun (request req) and two agents registered for step 0. */
static void register_step_req(const char *req, const char *line, int *srun,
			      int *a1, int *a2)
{
	char *got;

	*srun = peer();
	hello_srun(*srun, user_auth, 0, req, 0, 0);
	got = wait_published(line);
	ck_assert_str_eq(got, line);
	g_free(got);
	*a1 = peer();
	hello_agent(*a1, user_auth, 0, "node1", 0, 1);
	*a2 = peer();
	hello_agent(*a2, user_auth, 0, "node2", 2, 3);
}

/* PREPARE gen to both agents, all ranks counted, CAPTURE to both. */
static void prepare_and_count(int a1, int a2, uint64_t gen)
{
	smig_msg_t *m;

	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), gen);
	/* Callers' steps have every=1s: nobody moves. */
	check_prepare(m, "periodic", false);
	smig_msg_free(m);
	smig_msg_free(expect(a2, SMIG_MSG_PREPARE));
	for (uint32_t r = 0; r < 4; r++)
		count(r < 2 ? a1 : a2, gen, r, 5);
	smig_msg_free(expect(a1, SMIG_MSG_CAPTURE));
	smig_msg_free(expect(a2, SMIG_MSG_CAPTURE));
}

/* Rank 2 fails its capture (ENOSPC: the store is full): ABORT to both. */
static void fail_capture(int a1, int a2, uint64_t gen)
{
	smig_msg_t *m;

	done(a2, gen, 2, -28);
	m = expect(a1, SMIG_MSG_ABORT);
	ck_assert_uint_eq(get_u64(m, "gen"), gen);
	ck_assert_str_eq(get_str(m, "reason"), "capture-failed");
	smig_msg_free(m);
	smig_msg_free(expect(a2, SMIG_MSG_ABORT));
}

/* The history once it has n entries or more (waits up to WAIT_MS). */
static GVariant *wait_history(gsize n)
{
	gint64 end = g_get_monotonic_time() + WAIT_MS * 1000;
	GVariant *h = query_history();

	while (g_variant_n_children(h) < n &&
	       g_get_monotonic_time() < end) {
		g_variant_unref(h);
		g_usleep(20 * 1000);
		h = query_history();
	}
	ck_assert_uint_ge(g_variant_n_children(h), n);
	return h;
}

/*
 * A periodic capture fails (the image store is full): a drain right after
 * is acted on at once, not after MigrateRetryInterval (60 s here).
 */
START_TEST(test_failed_capture_drain_acts)
{
	int srun, a1, a2;
	smig_msg_t *m;
	GVariant *h;

	register_step_req("mode=manual,every=1s",
			  "mode=manual gen=0 moves=0", &srun, &a1, &a2);
	prepare_and_count(a1, a2, 1);
	fail_capture(a1, a2, 1);
	set_node(2, SMIG_NODE_DRAIN);
	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 2);
	smig_msg_free(m);
	h = query_history();
	ck_assert_uint_eq(g_variant_n_children(h), 1);
	ck_assert_str_eq(hist_str(h, 0, "kind"), "drain");
	ck_assert_str_eq(hist_str(h, 0, "ranks"), "2,3");
	ck_assert_str_eq(hist_str(h, 0, "outcome"), "pending");
	g_variant_unref(h);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * every=1s: after a failed periodic capture the next one comes at the next
 * every tick (within WAIT_MS), not after MigrateRetryInterval (60 s here).
 */
START_TEST(test_periodic_after_failure)
{
	int srun, a1, a2;
	char *got;

	register_step_req("mode=auto,every=1s", "mode=auto gen=0 moves=0",
			  &srun, &a1, &a2);
	prepare_and_count(a1, a2, 1);
	fail_capture(a1, a2, 1);
	got = wait_published("mode=auto gen=0 moves=0 last_error=gen=1;reason=capture-failed;ranks=2");
	ck_assert_str_eq(got, "mode=auto gen=0 moves=0 last_error=gen=1;reason=capture-failed;ranks=2");
	g_free(got);
	prepare_and_count(a1, a2, 2);
	for (uint32_t r = 0; r < 4; r++)
		done(r < 2 ? a1 : a2, 2, r, 0);
	smig_msg_free(expect(a1, SMIG_MSG_COMMIT));
	got = wait_published("mode=auto gen=2 moves=0 last_error=gen=1;reason=capture-failed;ranks=2");
	ck_assert_str_eq(got, "mode=auto gen=2 moves=0 last_error=gen=1;reason=capture-failed;ranks=2");
	g_free(got);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/* HELLO_AGENT with a hand-off receiver (node-local store), ranks past
 * smig_register() */
static void hello_agent_rx(int fd, const char *node, uint32_t r0,
			   uint32_t r1, uint32_t port)
{
	uint32_t ranks[2] = { r0, r1 };
	GVariantBuilder vb;

	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "node", g_variant_new_string(node));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	g_variant_builder_add(&vb, "{sv}", "handoff_port",
			      g_variant_new_uint32(port));
	send_msg(fd, user_auth, SMIG_MSG_HELLO_AGENT, &vb);
	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(0));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	send_msg(fd, user_auth, SMIG_MSG_RESTORED, &vb);
}

/* A COMMIT of gen, stop false, naming partner at port (NULL: none). */
static void expect_commit_partner(int fd, uint64_t gen, const char *partner,
				  uint32_t port)
{
	smig_msg_t *m = expect(fd, SMIG_MSG_COMMIT);
	GVariant *v;

	ck_assert_uint_eq(get_u64(m, "gen"), gen);
	v = g_variant_lookup_value(m->body, "stop", G_VARIANT_TYPE_BOOLEAN);
	ck_assert(v && !g_variant_get_boolean(v));
	g_variant_unref(v);
	v = g_variant_lookup_value(m->body, "partner", G_VARIANT_TYPE_STRING);
	if (!partner) {
		ck_assert_ptr_null(v);
		ck_assert_ptr_null(g_variant_lookup_value(m->body,
							  "partner_port",
							  NULL));
	} else {
		ck_assert_ptr_nonnull(v);
		ck_assert_str_eq(g_variant_get_string(v, NULL), partner);
		g_variant_unref(v);
		v = g_variant_lookup_value(m->body, "partner_port",
					   G_VARIANT_TYPE_UINT32);
		ck_assert_ptr_nonnull(v);
		ck_assert_uint_eq(g_variant_get_uint32(v), port);
		g_variant_unref(v);
		ck_assert_str_ne(get_str(m, "partner_addr"), "");
	}
	smig_msg_free(m);
}

/*
 * MigratePartnerCopies=yes: the COMMIT of a periodic generation names to
 * each agent the next node of the allocation (node[1-3]) with a receiver:
 * node3 has no agent, so node1 and node2 are each other's partner. With
 * the key off, no COMMIT names a partner.
 */
START_TEST(test_partner_commits)
{
	int srun, a1, a2;

	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=manual,every=1s", 0, 0);
	g_free(wait_published("mode=manual gen=0 moves=0"));
	a1 = peer();
	hello_agent_rx(a1, "node1", 0, 1, 7001);
	a2 = peer();
	hello_agent_rx(a2, "node2", 2, 3, 7002);
	conf->partner_copies = true;
	prepare_and_count(a1, a2, 1);
	for (uint32_t r = 0; r < 4; r++)
		done(r < 2 ? a1 : a2, 1, r, 0);
	expect_commit_partner(a1, 1, "node2", 7002);
	expect_commit_partner(a2, 1, "node1", 7001);
	conf->partner_copies = false;
	prepare_and_count(a1, a2, 2);
	for (uint32_t r = 0; r < 4; r++)
		done(r < 2 ? a1 : a2, 2, r, 0);
	expect_commit_partner(a1, 2, NULL, 0);
	expect_commit_partner(a2, 2, NULL, 0);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * A drain whose capture fails: the same evacuation waits one capture
 * timeout (1 s here, not MigrateRetryInterval), and the wait is in the
 * history with its reason; then it is tried again.
 */
START_TEST(test_drain_failed_retried)
{
	int srun, a1, a2;
	smig_msg_t *m;
	GVariant *h;

	register_step(&srun, &a1, &a2);
	drain_and_count(a1, a2);
	fail_capture(a1, a2, 1);
	h = wait_history(2);
	ck_assert_str_eq(hist_str(h, 0, "outcome"), "failed:capture-failed");
	ck_assert_str_eq(hist_str(h, 1, "kind"), "drain");
	ck_assert_str_eq(hist_str(h, 1, "ranks"), "2,3");
	ck_assert_str_eq(hist_str(h, 1, "from"), "node2");
	ck_assert_str_eq(hist_str(h, 1, "reason"), "drain");
	ck_assert_str_eq(hist_str(h, 1, "outcome"), "skipped:retry-delay");
	ck_assert_str_eq(hist_str(h, 1, "why"),
			 "the last try failed or was refused (last_error=gen=1;reason=capture-failed;ranks=2); next try in 1 s");
	g_variant_unref(h);
	m = expect(a1, SMIG_MSG_PREPARE);
	ck_assert_uint_eq(get_u64(m, "gen"), 2);
	smig_msg_free(m);
	h = query_history();
	ck_assert_uint_eq(g_variant_n_children(h), 3);
	ck_assert_str_eq(hist_str(h, 2, "kind"), "drain");
	ck_assert_str_eq(hist_str(h, 2, "outcome"), "pending");
	g_variant_unref(h);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * After a failed capture, MigrateRetryInterval holds back balancing moves
 * only, and says so: the move auto would make is in the history as
 * skipped, with the failure and the time left.
 */
START_TEST(test_balance_skipped_after_failure)
{
	GError *err = NULL;
	int srun, a1, a2;
	smig_msg_t *m;
	GVariant *h;
	const char *why;

	register_step(&srun, &a1, &a2);
	drain_and_count(a1, a2);
	set_node(2, SMIG_NODE_OK);
	fail_capture(a1, a2, 1);
	for (int i = 0; i < 8; i++) {
		sample_load(a1, 0, 0, 1, 0.6, 0.4, 2.0);
		sample_load(a2, 0, 2, 3, 0.1, 0.9, 2.0);
	}
	h = wait_history(2);
	ck_assert_str_eq(hist_str(h, 0, "outcome"), "failed:capture-failed");
	ck_assert_str_eq(hist_str(h, 1, "kind"), "auto");
	ck_assert_str_eq(hist_str(h, 1, "ranks"), "2,3");
	ck_assert_str_eq(hist_str(h, 1, "from"), "node2");
	ck_assert_str_eq(hist_str(h, 1, "to"), "node3");
	ck_assert_str_eq(hist_str(h, 1, "reason"), "balance");
	ck_assert_str_eq(hist_str(h, 1, "outcome"), "skipped:retry-delay");
	why = hist_str(h, 1, "why");
	ck_assert_msg(g_str_has_prefix(why, "a capture failed (last_error=gen=1;reason=capture-failed;ranks=2): no balancing move for ") &&
		      g_str_has_suffix(why, " s more (MigrateRetryInterval)"),
		      "%s", why);
	g_variant_unref(h);
	m = smig_wire_recv(a2, user_auth, 200, &err);
	ck_assert(!m);
	g_error_free(err);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

/*
 * A node agent that could not make the job's image directory says so in
 * HELLO_AGENT "error": the job's last_error names the node's ranks, and
 * the step's srun gets the reason to print (REFUSED what=unprotected).
 */
START_TEST(test_agent_unprotected)
{
	const char *want = "mode=auto gen=0 moves=0 last_error=gen=1;reason=unprotected;ranks=2,3";
	uint32_t ranks[2] = { 2, 3 };
	int srun, a1, a2;
	GVariantBuilder vb;
	smig_msg_t *m;
	char *got;

	srun = peer();
	hello_srun(srun, user_auth, 0, "mode=auto", 0, 0);
	got = wait_published("mode=auto gen=0 moves=0");
	g_free(got);
	a1 = peer();
	hello_agent(a1, user_auth, 0, "node1", 0, 1);
	a2 = peer();
	body_start(&vb, 0);
	g_variant_builder_add(&vb, "{sv}", "node", g_variant_new_string("node2"));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	g_variant_builder_add(&vb, "{sv}", "error",
			      g_variant_new_string("/img/42: owned by uid 2000, not by the job's user 1000: left from another job? Remove it."));
	send_msg(a2, user_auth, SMIG_MSG_HELLO_AGENT, &vb);
	m = expect(a2, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "unprotected");
	smig_msg_free(m);
	m = expect(srun, SMIG_MSG_REFUSED);
	ck_assert_str_eq(get_str(m, "what"), "unprotected");
	ck_assert_str_eq(get_str(m, "reason"),
			 "node=node2 ranks=2,3 cannot be protected: /img/42: owned by uid 2000, not by the job's user 1000: left from another job? Remove it.; the step runs without migration");
	smig_msg_free(m);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	close(a1);
	close(a2);
	close(srun);
}
END_TEST

static Suite *balancer_suite(void)
{
	Suite *s = suite_create("balancer");
	TCase *tc = tcase_create("protocol");
	TCase *js = tcase_create("job scope");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_drain_moves_ranks);
	tcase_add_test(tc, test_auto_balances);
	tcase_add_test(tc, test_missing_done_aborts);
	tcase_add_test(tc, test_restore_watchdog_relaunches);
	tcase_add_test(tc, test_restore_watchdog_last_try);
	tcase_add_test(tc, test_restore_watchdog_all_back);
	tcase_add_test(tc, test_restored_foreign_rank_refused);
	tcase_add_test(tc, test_unheard_prepare_retried);
	tcase_add_test(tc, test_failed_done_aborts);
	tcase_add_test(tc, test_agent_gone_ends_step);
	tcase_add_test(tc, test_agent_bye_keeps_step);
	tcase_add_test(tc, test_srun_lost_before_commit);
	tcase_add_test(tc, test_wrong_uid_refused);
	tcase_add_test(tc, test_node_event);
	tcase_add_test(tc, test_schema_refused);
	tcase_add_test(tc, test_bad_frame_closes);
	tcase_add_test(tc, test_advise_never_moves);
	tcase_add_test(tc, test_no_spare);
	tcase_add_test(tc, test_spares_used_first);
	tcase_add_test(tc, test_no_spares_field);
	tcase_add_test(tc, test_samples_and_query);
	tcase_add_test(tc, test_query_interval);
	tcase_add_test(tc, test_request_move);
	tcase_add_test(tc, test_capture_waits_for_ready);
	tcase_add_test(tc, test_request_move_refused);
	tcase_add_test(tc, test_request_rebalance);
	tcase_add_test(tc, test_request_advise_refused);
	tcase_add_test(tc, test_health_fail_moves);
	tcase_add_test(tc, test_failed_capture_drain_acts);
	tcase_add_test(tc, test_periodic_after_failure);
	tcase_add_test(tc, test_partner_commits);
	tcase_add_test(tc, test_drain_failed_retried);
	tcase_add_test(tc, test_balance_skipped_after_failure);
	tcase_add_test(tc, test_agent_unprotected);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(js, setup_requeue, teardown);
	tcase_set_timeout(js, 20);
	tcase_add_test(js, test_job_scope_requeue);
	tcase_add_test(js, test_slurm_requeue_released_not_clean);
	tcase_add_test(js, test_job_scope_not_requeueable);
	suite_add_tcase(s, js);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(balancer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
