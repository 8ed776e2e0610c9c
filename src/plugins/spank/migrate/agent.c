/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent.c - the Slurm and PMIx glue of the node agent of one step on one
 * node, inside slurmstepd
 *
 * The protocol with the balancer is the engine's (src/common/smig_agent.c),
 * the image files are the agent store's (src/common/smig_agent_store.c).
 * This file gives them a host: it forwards the engine's PREPARE, CAPTURE,
 * COMMIT and ABORT to the ranks as PMIx events and feeds the ranks' answers
 * (PMIX_JCTRL_CHECKPOINT_COMPLETE events) back to the engine, which turns
 * them into COUNT, DONE and RESTORED. See doc/design.md for the messages
 * and events. With capture=signal:SIG there are no PMIx events: agent_signal.c
 * answers the engine instead, and task_init here writes an image back into
 * the task's checkpoint file before a relaunched task starts.
 *
 * Threads: slurmstepd's main thread runs smig_spank_agent_start()/_stop();
 * the PMIx progress thread runs checkpoint_complete_cb(), which only copies
 * the event into a queue and wakes the agent thread; the agent thread is
 * the only one that drives the engine, verifies images and sends PMIx
 * events; the hand-off receiver thread only stores images handed to this
 * node (MigrateImageStore=local); the partner copy thread only sends this
 * node's images of good generations to the partner the balancer named
 * (MigratePartnerCopies=yes).
 *
 * libpmix is the copy slurmstepd's mpi/pmix plugin loaded (RTLD_GLOBAL): the
 * functions are looked up with dlsym(RTLD_DEFAULT), never linked, so steps
 * without --mpi=pmix (and srun) never need libpmix.
 */
#include "smig_config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <pmix.h>
#include <slurm/spank.h>

#include "smig_agent.h"
#include "smig_agent_store.h"
#include "smig_auth.h"
#include "smig_log.h"
#include "agent_signal.h"
#include "agent_sock.h"
#include "spank_migrate.h"

#define PMIX_WAIT_US		(5 * G_USEC_PER_SEC) /* PMIx callbacks */

#define CTX SMIG_CTX_NODE(smig_spank.job_id, smig_spank.step_id, agent.node)

/* One PMIx_Notify_event() in flight; freed by its callback. */
typedef struct notify_ctx {
	pmix_info_t info[8];
	size_t ninfo;
	char *op;		/* the string of smig.op */
	char *reason;		/* prepare: smig.reason, or NULL */
} notify_ctx_t;

static struct {
	__typeof__(PMIx_Notify_event) *notify;
	__typeof__(PMIx_Register_event_handler) *reg;
	__typeof__(PMIx_Deregister_event_handler) *dereg;

	bool pmix;		/* a PMIx server: events, else the socket */
	bool registered;	/* the -107 handler */
	size_t hdlr_ref;

	GThread *thread;
	int wake_fd;
	/* MigrateImageStore=local: receiver of images handed to this node */
	GThread *rx_thread;
	int rx_fd;		/* listening socket, -1 if none */
	uint16_t rx_port;
	/* MigratePartnerCopies=yes: copies of good generations, sent */
	GThread *partner_thread;
	GAsyncQueue *partner_q;	/* of partner_job_t, newest wins */
	gint stopping;		/* atomic */
	GAsyncQueue *events;	/* of rank_event_t, from the PMIx thread */
	smig_auth_t *auth;
	smig_agent_t *engine;	/* agent thread only, once started */
	smig_agent_store_t store; /* set before the threads start */

	char nspace[PMIX_MAX_NSLEN + 1];
	char *node;
	uint32_t *ranks;
	uint32_t nranks;
	uint32_t ntasks;	/* ranks of the step */

	/* PMIx callbacks that were started and have not run yet */
	GMutex lock;
	GCond cond;
	int notifies;
	bool reg_done;
	pmix_status_t reg_status;
	bool dereg_done;
} agent = { .wake_fd = -1, .rx_fd = -1 };

static bool local_rank(uint32_t rank)
{
	for (uint32_t i = 0; i < agent.nranks; i++)
		if (agent.ranks[i] == rank)
			return true;
	return false;
}

/* store_fill - the agent store of this step on this node */
static void store_fill(smig_agent_store_t *st)
{
	st->dir = smig_spank.image_dir;
	st->dir_id = &smig_spank.dir_id;
	st->job_id = smig_spank.job_id;
	st->step_id = smig_spank.step_id;
	st->node = agent.node;
	st->ranks = agent.ranks;
	st->nranks = agent.nranks;
	st->ntasks = agent.ntasks;
	st->retain = smig_spank.conf ? smig_spank.conf->retain : 1;
	st->timeout_ms = smig_spank.conf ? smig_spank.conf->capture_timeout_ms
					 : 0;
	st->auth = agent.auth;
}

/*
 * find_info - the value of key in an event's info array, if it has type
 * RET borrowed value, NULL if absent or of another type
 */
static const pmix_value_t *find_info(const pmix_info_t *info, size_t ninfo,
				     const char *key, pmix_data_type_t type)
{
	for (size_t i = 0; i < ninfo; i++)
		if (PMIX_CHECK_KEY(&info[i], key))
			return info[i].value.type == type ? &info[i].value
							  : NULL;
	return NULL;
}

/*
 * parse_rank_event - a rank's PMIX_JCTRL_CHECKPOINT_COMPLETE as the design
 * says: smig.op (count|done|restored), smig.gen, smig.rank, then
 * smig.pause_at (count) or smig.status, smig.bytes, smig.msg (done). The
 * sender is the event's source as the PMIx server knows it: it must be a
 * rank of this step on this node.
 * RET new event, free with rank_event_free(); NULL (logged) if malformed
 */
static rank_event_t *parse_rank_event(const pmix_proc_t *source,
				      const pmix_info_t *info, size_t ninfo)
{
	const pmix_value_t *op, *gen, *rank, *v;
	rank_event_t *ev;

	if (!source || strncmp(source->nspace, agent.nspace, PMIX_MAX_NSLEN) ||
	    !local_rank(source->rank)) {
		smig_cerror(CTX, "checkpoint-complete event from %s rank %u: not a rank of this step on this node, ignored",
			    source ? source->nspace : "(null)",
			    source ? source->rank : 0);
		return NULL;
	}
	op = find_info(info, ninfo, "smig.op", PMIX_STRING);
	gen = find_info(info, ninfo, "smig.gen", PMIX_UINT64);
	rank = find_info(info, ninfo, "smig.rank", PMIX_UINT32);
	if (!op || !op->data.string || !gen || !rank) {
		smig_cerror(CTX, "checkpoint-complete event from rank %u lacks smig.op (string), smig.gen (uint64) or smig.rank (uint32), ignored",
			    source->rank);
		return NULL;
	}
	if (rank->data.uint32 != source->rank) {
		smig_cerror(CTX, "checkpoint-complete event from rank %u says smig.rank=%u, ignored",
			    source->rank, rank->data.uint32);
		return NULL;
	}
	ev = g_new0(rank_event_t, 1);
	ev->gen = gen->data.uint64;
	ev->rank = source->rank;
	if (!strcmp(op->data.string, "count")) {
		if (!(v = find_info(info, ninfo, "smig.pause_at", PMIX_UINT64)))
			goto bad_field;
		ev->pause_at = v->data.uint64;
	} else if (!strcmp(op->data.string, "restored")) {
		ev->restored = true;
	} else if (!strcmp(op->data.string, "done")) {
		ev->done = true;
		if (!(v = find_info(info, ninfo, "smig.status", PMIX_INT32)))
			goto bad_field;
		ev->status = v->data.int32;
		if ((v = find_info(info, ninfo, "smig.bytes", PMIX_UINT64)))
			ev->bytes = v->data.uint64;
		if ((v = find_info(info, ninfo, "smig.msg", PMIX_STRING)) &&
		    v->data.string)
			ev->msg = g_strdup(v->data.string);
	} else {
		smig_cerror(CTX, "checkpoint-complete event from rank %u: smig.op=%s: unknown (count, done, restored), ignored",
			    source->rank, op->data.string);
		g_free(ev);
		return NULL;
	}
	return ev;

bad_field:
	smig_cerror(CTX, "checkpoint-complete event from rank %u: smig.op=%s without %s, ignored",
		    source->rank, op->data.string,
		    ev->done ? "smig.status (int32)" : "smig.pause_at (uint64)");
	g_free(ev);
	return NULL;
}

/*
 * checkpoint_complete_cb - PMIx progress thread: a rank answered. Never
 * blocks: copies the event, completes it at once and wakes the agent.
 */
static void checkpoint_complete_cb(size_t id, pmix_status_t status,
				   const pmix_proc_t *source,
				   pmix_info_t info[], size_t ninfo,
				   pmix_info_t *results, size_t nresults,
				   pmix_event_notification_cbfunc_fn_t cbfunc,
				   void *cbdata)
{
	rank_event_t *ev = NULL;

	if (!g_atomic_int_get(&agent.stopping))
		ev = parse_rank_event(source, info, ninfo);
	/* Handled: no other handler (Slurm's kills the step) sees it. */
	if (cbfunc)
		cbfunc(PMIX_EVENT_ACTION_COMPLETE, NULL, 0, NULL, NULL, cbdata);
	if (ev) {
		g_async_queue_push(agent.events, ev);
		smig_spank_wake(agent.wake_fd);
	}
}

/* sock_deliver - the socket's thread: a rank answered (agent_sock.c) */
static void sock_deliver(rank_event_t *ev)
{
	if (g_atomic_int_get(&agent.stopping)) {
		rank_event_free(ev);
		return;
	}
	g_async_queue_push(agent.events, ev);
	smig_spank_wake(agent.wake_fd);
}

/* A key, NUL-padded as PMIX_LOAD_KEY() does. */
static void load_key(pmix_info_t *i, const char *key)
{
	memset(i->key, 0, sizeof(i->key));
	g_strlcpy(i->key, key, sizeof(i->key));
}

static void info_bool(pmix_info_t *i, const char *key, bool val)
{
	load_key(i, key);
	i->value.type = PMIX_BOOL;
	i->value.data.flag = val;
}

static void info_u64(pmix_info_t *i, const char *key, uint64_t val)
{
	load_key(i, key);
	i->value.type = PMIX_UINT64;
	i->value.data.uint64 = val;
}

static void notify_done_cb(pmix_status_t status, void *cbdata)
{
	notify_ctx_t *ctx = cbdata;

	if (status != PMIX_SUCCESS)
		smig_cerror(CTX, "PMIx_Notify_event(smig.op=%s) failed: status %d",
			    ctx->op, status);
	g_free(ctx->op);
	g_free(ctx->reason);
	g_free(ctx);
	g_mutex_lock(&agent.lock);
	agent.notifies--;
	g_cond_broadcast(&agent.cond);
	g_mutex_unlock(&agent.lock);
}

/*
 * pmix_notify - PMIX_JCTRL_CHECKPOINT to the ranks of this node
 * IN arg - smig.timeout_ms (prepare), smig.target (capture), smig.stop
 *          (commit, 0/1); a prepare also carries the PREPARE's reason and
 *          stop (smig.reason, smig.stop), for smig_capture_info(3)
 */
static void pmix_notify(smig_agent_op_t op, uint64_t gen, uint64_t arg)
{
	notify_ctx_t *ctx = g_new0(notify_ctx_t, 1);
	pmix_info_t *i = ctx->info;
	pmix_status_t rc;

	/* The catch-all handler of slurmstepd kills the step otherwise. */
	info_bool(i++, PMIX_EVENT_NON_DEFAULT, true);
	/* A relaunched rank must never see an old request. */
	info_bool(i++, PMIX_EVENT_DO_NOT_CACHE, true);
	ctx->op = g_strdup(smig_agent_op_name(op));
	load_key(i, "smig.op");
	i->value.type = PMIX_STRING;
	i->value.data.string = ctx->op;
	i++;
	info_u64(i++, "smig.gen", gen);
	if (op == SMIG_AGENT_PREPARE) {
		load_key(i, "smig.timeout_ms");
		i->value.type = PMIX_UINT32;
		i->value.data.uint32 = (uint32_t) arg;
		i++;
		if (agent.engine) {
			bool stop;
			const char *why = smig_agent_prepared(agent.engine,
							      &stop);

			if (why) {
				ctx->reason = g_strdup(why);
				load_key(i, "smig.reason");
				i->value.type = PMIX_STRING;
				i->value.data.string = ctx->reason;
				i++;
			}
			info_bool(i++, "smig.stop", stop);
		}
	} else if (op == SMIG_AGENT_CAPTURE) {
		info_u64(i++, "smig.target", arg);
	} else if (op == SMIG_AGENT_COMMIT) {
		info_bool(i++, "smig.stop", arg != 0);
	}
	ctx->ninfo = i - ctx->info;

	g_mutex_lock(&agent.lock);
	agent.notifies++;
	g_mutex_unlock(&agent.lock);
	rc = agent.notify(PMIX_JCTRL_CHECKPOINT, NULL, PMIX_RANGE_LOCAL,
			  ctx->info, ctx->ninfo, notify_done_cb, ctx);
	if (rc != PMIX_SUCCESS) {
		/* The callback will not run. */
		smig_cerror(CTX, "PMIx_Notify_event(smig.op=%s, smig.gen=%" PRIu64 ") failed: status %d",
			    ctx->op, gen, rc);
		notify_done_cb(PMIX_SUCCESS, ctx);
		return;
	}
	smig_cdebug(CTX, "event smig.op=%s smig.gen=%" PRIu64 " sent to the ranks of this node",
		    smig_agent_op_name(op), gen);
}

/* One generation to copy to a partner (host_partner_copy()). */
typedef struct partner_job {
	uint64_t gen;
	char *node;
	char *addr;
	uint16_t port;
} partner_job_t;

static void partner_job_free(gpointer p)
{
	partner_job_t *j = p;

	g_free(j->node);
	g_free(j->addr);
	g_free(j);
}

/*
 * partner_main - the partner copy thread: copies the newest good generation
 * queued (an older one still queued is skipped: its images may be pruned
 * already, and the newer one supersedes it), off the agent thread so that
 * neither the ranks nor the balancer's messages wait for it
 */
static gpointer partner_main(gpointer unused)
{
	while (!g_atomic_int_get(&agent.stopping)) {
		partner_job_t *j, *newer;

		j = g_async_queue_timeout_pop(agent.partner_q,
					      250 * G_TIME_SPAN_MILLISECOND);
		if (!j)
			continue;
		while ((newer = g_async_queue_try_pop(agent.partner_q))) {
			partner_job_free(j);
			j = newer;
		}
		if (!g_atomic_int_get(&agent.stopping))
			smig_agent_store_partner_copy(&agent.store, j->gen,
						      j->node, j->addr,
						      j->port);
		partner_job_free(j);
	}
	return NULL;
}

static void host_partner_copy(void *host, uint64_t gen, const char *node,
			      const char *addr, uint16_t port)
{
	partner_job_t *j;

	if (!agent.partner_q)
		return;
	j = g_new0(partner_job_t, 1);
	j->gen = gen;
	j->node = g_strdup(node);
	j->addr = g_strdup(addr);
	j->port = port;
	g_async_queue_push(agent.partner_q, j);
}

/*
 * partner_start - the partner copy thread (node-local store only)
 * RET false (logged): no partner copies from this node
 */
static bool partner_start(void)
{
	GError *err = NULL;

	agent.partner_q = g_async_queue_new_full(partner_job_free);
	agent.partner_thread = g_thread_try_new("smig-partner", partner_main,
						NULL, &err);
	if (!agent.partner_thread) {
		smig_cerror(CTX, "partner copy thread: %s; no partner copies of this node's images",
			    err->message);
		g_error_free(err);
		g_clear_pointer(&agent.partner_q, g_async_queue_unref);
		return false;
	}
	return true;
}

/* The engine's ops (smig_agent.h), in the agent thread. */

static void host_notify(void *host, smig_agent_op_t op, uint64_t gen,
			uint64_t arg)
{
	if (smig_spank.req.capture == SMIG_CAPTURE_SIGNAL)
		agent_signal_notify(op, gen, arg);
	else if (agent.pmix)
		pmix_notify(op, gen, arg);
	else if (op == SMIG_AGENT_PREPARE && agent.engine) {
		bool stop;
		const char *why = smig_agent_prepared(agent.engine, &stop);

		agent_sock_notify(op, gen, arg, why, stop);
	} else
		agent_sock_notify(op, gen, arg, NULL, -1);
}

static GVariant *host_sample(void *host)
{
	return smig_sample_collect();
}

static int host_image_verify(void *host, uint32_t rank, uint64_t gen,
			     uint64_t *bytes, char *errbuf, size_t errlen)
{
	return smig_agent_store_verify(&agent.store, rank, gen, bytes, errbuf,
				       errlen);
}

static void host_image_commit(void *host, uint64_t gen)
{
	smig_agent_store_commit(&agent.store, gen);
}

static int host_handoff(void *host, uint32_t rank, uint64_t gen,
			const char *to, const char *addr, uint16_t port,
			char *errbuf, size_t errlen)
{
	return smig_agent_store_send(&agent.store, rank, gen, to, addr, port,
				     errbuf, errlen);
}

static bool host_from_balancer(void *host, const smig_msg_t *msg)
{
	return smig_spank_from_balancer(msg);
}

static const smig_agent_ops_t host_ops = {
	.notify = host_notify,
	.sample = host_sample,
	.image_verify = host_image_verify,
	.image_commit = host_image_commit,
	.handoff = host_handoff,
	.from_balancer = host_from_balancer,
	.partner_copy = host_partner_copy,
};

/* rx_main - the receiver thread: one hand-off connection at a time */
static gpointer rx_main(gpointer unused)
{
	while (!g_atomic_int_get(&agent.stopping)) {
		struct pollfd p = { .fd = agent.rx_fd, .events = POLLIN };
		int fd;

		/* Wakes up to see agent.stopping: no eventfd to share. */
		if (poll(&p, 1, 250) <= 0)
			continue;
		fd = accept(agent.rx_fd, NULL, NULL);
		if (fd < 0)
			continue;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		smig_agent_store_receive(&agent.store, fd);
		close(fd);
	}
	return NULL;
}

/*
 * rx_start - MigrateImageStore=local: listen for hand-offs on a port of
 * the kernel's choice (said to the balancer in HELLO_AGENT)
 * RET false (logged) on failure: the step then runs with a shared-store
 * view (the balancer moves no rank of it to another node's store)
 */
static bool rx_start(void)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_addr = IN6ADDR_ANY_INIT };
	socklen_t len = sizeof(sa);
	GError *err = NULL;
	int no = 0;

	agent.rx_fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (agent.rx_fd < 0 ||
	    setsockopt(agent.rx_fd, IPPROTO_IPV6, IPV6_V6ONLY, &no,
		       sizeof(no)) < 0 ||
	    bind(agent.rx_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
	    listen(agent.rx_fd, 16) < 0 ||
	    getsockname(agent.rx_fd, (struct sockaddr *) &sa, &len) < 0) {
		int e = errno;

		smig_cerror(CTX, "hand-off receiver: %s; no rank will be moved to this node's store",
			    g_strerror(e));
		goto out_close;
	}
	agent.rx_port = ntohs(sa.sin6_port);
	agent.rx_thread = g_thread_try_new("smig-rx", rx_main, NULL, &err);
	if (!agent.rx_thread) {
		smig_cerror(CTX, "hand-off receiver thread: %s", err->message);
		g_error_free(err);
		agent.rx_port = 0;
		goto out_close;
	}
	return true;
out_close:
	if (agent.rx_fd >= 0)
		close(agent.rx_fd);
	agent.rx_fd = -1;
	return false;
}

/* rank_event - a rank's answer, to the engine */
static void rank_event(const rank_event_t *ev)
{
	if (ev->restored)
		smig_agent_restored(agent.engine, ev->rank, ev->gen);
	else if (ev->done)
		smig_agent_done(agent.engine, ev->rank, ev->gen, ev->status,
				ev->bytes, ev->msg);
	else
		smig_agent_count(agent.engine, ev->rank, ev->gen,
				 ev->pause_at);
}

static gpointer agent_main(gpointer unused)
{
	rank_event_t *ev;
	int w, left;

	while (!g_atomic_int_get(&agent.stopping)) {
		left = agent_signal_timeout(smig_agent_tick(agent.engine));
		w = smig_spank_wait(smig_agent_fd(agent.engine), agent.wake_fd,
				    left);
		while ((ev = g_async_queue_try_pop(agent.events))) {
			rank_event(ev);
			rank_event_free(ev);
		}
		agent_signal_poll();
		if (w & SMIG_WAIT_FD)
			smig_agent_read(agent.engine);
	}
	smig_agent_bye(agent.engine);
	return NULL;
}

static void reg_cb(pmix_status_t status, size_t refid, void *cbdata)
{
	g_mutex_lock(&agent.lock);
	agent.reg_status = status;
	agent.hdlr_ref = refid;
	agent.reg_done = true;
	g_cond_broadcast(&agent.cond);
	g_mutex_unlock(&agent.lock);
}

static void dereg_cb(pmix_status_t status, void *cbdata)
{
	g_mutex_lock(&agent.lock);
	agent.dereg_done = true;
	g_cond_broadcast(&agent.cond);
	g_mutex_unlock(&agent.lock);
}

/*
 * wait_flag - wait (bounded) until *flag is true, under agent.lock
 * RET false on timeout
 */
static bool wait_flag(bool *flag)
{
	gint64 end = g_get_monotonic_time() + PMIX_WAIT_US;
	bool ok = true;

	g_mutex_lock(&agent.lock);
	while (!*flag && ok)
		ok = g_cond_wait_until(&agent.cond, &agent.lock, end);
	ok = *flag;
	g_mutex_unlock(&agent.lock);
	return ok;
}

/*
 * resolve_pmix - the PMIx functions of the libpmix slurmstepd loaded
 * RET false if there is none (step without --mpi=pmix)
 */
static bool resolve_pmix(void)
{
	__typeof__(PMIx_Initialized) *initialized;

	agent.notify = dlsym(RTLD_DEFAULT, "PMIx_Notify_event");
	agent.reg = dlsym(RTLD_DEFAULT, "PMIx_Register_event_handler");
	agent.dereg = dlsym(RTLD_DEFAULT, "PMIx_Deregister_event_handler");
	initialized = dlsym(RTLD_DEFAULT, "PMIx_Initialized");
	return agent.notify && agent.reg && agent.dereg && initialized &&
	       initialized();
}

/* local_ranks - the global ranks of this node's tasks; false if unknown */
static bool local_ranks(spank_t sp)
{
	uint32_t n, gid;

	if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &n) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_TOTAL_TASK_COUNT, &agent.ntasks) !=
	    ESPANK_SUCCESS)
		return false;
	agent.ranks = g_new0(uint32_t, n ? n : 1);
	for (uint32_t i = 0; i < n; i++) {
		if (spank_get_item(sp, S_JOB_LOCAL_TO_GLOBAL_ID, i, &gid) !=
		    ESPANK_SUCCESS)
			return false;
		agent.ranks[i] = gid;
	}
	agent.nranks = n;
	return true;
}

/* engine_cfg - what the engine speaks for (pointers into agent) */
static void engine_cfg(smig_agent_cfg_t *cfg)
{
	const smig_conf_t *conf = smig_spank.conf;

	*cfg = (smig_agent_cfg_t) {
		.job_id = smig_spank.job_id,
		.step_id = smig_spank.step_id,
		.node = agent.node,
		.ranks = agent.ranks,
		.nranks = agent.nranks,
		.balancer_addr = conf->balancer_addr,
		.port = conf->port,
		.handoff_port = agent.rx_port,
		.auth = agent.auth,
	};
}

/* this_node - Slurm's name of this node (g_free) */
static char *this_node(void)
{
	const char *node = getenv("SLURMD_NODENAME");

	/*
	 * slurmstepd sets SLURMD_NODENAME in its own environment to Slurm's
	 * name of this node (slurmd -N), which differs from the host name
	 * when several slurmd share a host.
	 */
	return g_strdup(node && *node ? node : g_get_host_name());
}

/*
 * sock_start - no PMIx server in this step (srun --mpi=pmi2, MPICH): the
 * ranks reach the agent through its socket (agent_sock.c)
 * RET false (logged): the step runs without migration
 */
static bool sock_start(spank_t sp)
{
	uid_t uid;
	gid_t gid;

	if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
		smig_cerror(CTX, "no PMIx server in this step and the job's user is unknown: no agent socket; the step runs without migration");
		return false;
	}
	if (!agent_sock_start(smig_spank.image_dir, agent.node,
			      smig_spank.job_id, smig_spank.step_id, uid, gid,
			      agent.ranks, agent.nranks, sock_deliver)) {
		smig_cerror(CTX, "no PMIx server in this step and no agent socket; the step runs without migration");
		return false;
	}
	smig_cinfo(CTX, "no PMIx server in this step (not srun --mpi=pmix): the ranks reach the agent through %s",
		   agent_sock_path());
	return true;
}

/*
 * partner_restore - node-local store, a step that restores (its
 * SLURM_MIGRATE_RESTORE_GEN is set and not none): the partner copies this
 * node holds of its ranks' images take the images' names before any task
 * starts (smig_agent_store_partner_restore())
 */
static void partner_restore(spank_t sp)
{
	smig_agent_store_t st = { 0 };
	char val[64] = "";

	if (!smig_spank.image_dir ||
	    spank_getenv(sp, "SLURM_MIGRATE_RESTORE_GEN", val, sizeof(val)) !=
	    ESPANK_SUCCESS || !val[0] || !strcmp(val, "none"))
		return;
	store_fill(&st);
	smig_agent_store_partner_restore(&st);
}

void smig_spank_agent_start(spank_t sp)
{
	pmix_status_t code = PMIX_JCTRL_CHECKPOINT_COMPLETE;
	smig_agent_cfg_t cfg;
	GError *err = NULL;
	pmix_status_t rc;

	agent.node = this_node();
	snprintf(agent.nspace, sizeof(agent.nspace), "slurm.pmix.%u.%u",
		 smig_spank.job_id, smig_spank.step_id);
	agent.pmix = resolve_pmix();
	if (!local_ranks(sp)) {
		smig_cerror(CTX, "cannot read the global ids of the local tasks; the step runs without migration");
		return;
	}
	if (smig_spank.conf->image_store_local)
		partner_restore(sp);
	smig_sample_setup(sp, agent.node);
	agent.auth = smig_auth_munge_new(smig_spank.conf->munge_socket, &err);
	if (!agent.auth) {
		smig_cerror(CTX, "%s; the step runs without migration",
			    err->message);
		g_error_free(err);
		return;
	}
	agent.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (agent.wake_fd < 0) {
		int e = errno;

		smig_cerror(CTX, "eventfd: %s; the step runs without migration",
			    g_strerror(e));
		return;
	}
	agent.events = g_async_queue_new_full(rank_event_free);
	if (!agent.pmix) {
		if (smig_spank.req.capture != SMIG_CAPTURE_SIGNAL &&
		    !sock_start(sp))
			return;
		goto registered;
	}

	rc = agent.reg(&code, 1, NULL, 0, checkpoint_complete_cb, reg_cb,
		       NULL);
	if (rc == PMIX_SUCCESS && !wait_flag(&agent.reg_done))
		rc = PMIX_ERR_TIMEOUT;
	else if (rc == PMIX_SUCCESS)
		rc = agent.reg_status;
	if (rc != PMIX_SUCCESS) {
		smig_cerror(CTX, "cannot register for PMIX_JCTRL_CHECKPOINT_COMPLETE: status %d; the step runs without migration",
			    rc);
		return;
	}
	agent.registered = true;
registered:
	store_fill(&agent.store);
	if (smig_spank.conf->image_store_local && rx_start())
		partner_start();
	engine_cfg(&cfg);
	cfg.sample_interval_ms = MAX(smig_sample_interval_ms(), 100);
	agent.engine = smig_agent_new(&cfg, &host_ops, NULL);
	if (smig_spank.req.capture == SMIG_CAPTURE_SIGNAL)
		agent_signal_start(sp, agent.engine, &agent.store);
	agent.thread = g_thread_try_new("smig-agent", agent_main, NULL, &err);
	if (!agent.thread) {
		smig_cerror(CTX, "cannot start the agent thread: %s; the step runs without migration",
			    err->message);
		g_error_free(err);
	}
}

void smig_spank_agent_report(spank_t sp, const char *why)
{
	smig_agent_cfg_t cfg;
	smig_agent_t *engine;
	GError *err = NULL;

	agent.node = this_node();
	if (!smig_spank.conf || !local_ranks(sp)) {
		smig_cerror(CTX, "cannot tell the balancer that the step runs without migration");
		goto out;
	}
	agent.auth = smig_auth_munge_new(smig_spank.conf->munge_socket, &err);
	if (agent.auth) {
		engine_cfg(&cfg);
		engine = smig_agent_new(&cfg, &host_ops, NULL);
		smig_agent_report(engine, why, &err);
		smig_agent_free(engine);
	}
	if (err) {
		smig_cerror(CTX, "cannot tell the balancer that the step runs without migration: %s",
			    err->message);
		g_error_free(err);
	}
out:
	g_clear_pointer(&agent.auth, smig_auth_free);
	g_clear_pointer(&agent.ranks, g_free);
	g_clear_pointer(&agent.node, g_free);
	agent.nranks = 0;
}

void smig_spank_agent_stop(void)
{
	gint64 end = g_get_monotonic_time() + PMIX_WAIT_US;

	g_atomic_int_set(&agent.stopping, 1);
	/* No new rank events: the handler lives in this plugin. */
	if (agent.registered) {
		agent.dereg_done = false;
		if (agent.dereg(agent.hdlr_ref, dereg_cb, NULL) ==
		    PMIX_SUCCESS && !wait_flag(&agent.dereg_done))
			smig_cerror(CTX, "PMIx did not confirm the removal of the event handler");
		agent.registered = false;
	}
	if (agent.thread) {
		smig_spank_wake(agent.wake_fd);
		g_thread_join(agent.thread);
		agent.thread = NULL;
	}
	/* No new rank events from the socket either. */
	agent_sock_stop();
	if (agent.rx_thread) {
		g_thread_join(agent.rx_thread);
		agent.rx_thread = NULL;
	}
	/* A copy in flight ends within its bound (MigrateCaptureTimeout). */
	if (agent.partner_thread) {
		g_thread_join(agent.partner_thread);
		agent.partner_thread = NULL;
	}
	g_clear_pointer(&agent.partner_q, g_async_queue_unref);
	if (agent.rx_fd >= 0)
		close(agent.rx_fd);
	agent.rx_fd = -1;
	agent.rx_port = 0;
	/* Events still in flight hold pointers into this plugin. */
	g_mutex_lock(&agent.lock);
	while (agent.notifies > 0 &&
	       g_cond_wait_until(&agent.cond, &agent.lock, end))
		;
	g_mutex_unlock(&agent.lock);
	g_clear_pointer(&agent.engine, smig_agent_free);
	g_clear_pointer(&agent.events, g_async_queue_unref);
	if (agent.wake_fd >= 0)
		close(agent.wake_fd);
	agent.wake_fd = -1;
	g_clear_pointer(&agent.auth, smig_auth_free);
	g_clear_pointer(&agent.ranks, g_free);
	g_clear_pointer(&agent.node, g_free);
	agent_signal_stop();
	agent.nranks = 0;
}

int smig_spank_agent_task_init(spank_t sp)
{
	char ckpt[PATH_MAX], errbuf[PATH_MAX + 256] = "", val[64] = "";
	smig_agent_store_t st = { 0 };
	uint32_t rank;
	uint64_t gen;
	uid_t uid;
	gid_t gid;
	int rc;

	/* The rank's way to the agent when the step has no PMIx server. */
	if (agent_sock_path() &&
	    spank_setenv(sp, "SLURM_MIGRATE_AGENT_SOCKET", agent_sock_path(),
			 1) != ESPANK_SUCCESS) {
		smig_cerror(CTX, "cannot set SLURM_MIGRATE_AGENT_SOCKET=%s",
			    agent_sock_path());
		return -1;
	}
	if (smig_spank.req.capture != SMIG_CAPTURE_SIGNAL ||
	    !smig_spank.image_dir)
		return 0;
	store_fill(&st);
	if (spank_get_item(sp, S_TASK_GLOBAL_ID, &rank) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
		smig_cerror(CTX, "cannot read the task's rank and user; capture=signal needs them");
		return -1;
	}
	if (smig_agent_store_ckpt_path(&st, ckpt, sizeof(ckpt), rank) < 0 ||
	    spank_setenv(sp, "SLURM_MIGRATE_CHECKPOINT_FILE", ckpt, 1) !=
	    ESPANK_SUCCESS) {
		smig_cerror(CTX, "rank=%u: cannot set SLURM_MIGRATE_CHECKPOINT_FILE",
			    rank);
		return -1;
	}
	if (spank_getenv(sp, "SLURM_MIGRATE_RESTORE_GEN", val, sizeof(val)) !=
	    ESPANK_SUCCESS)
		val[0] = '\0';
	rc = smig_agent_store_restore_gen(&st, val, &gen, errbuf,
					  sizeof(errbuf));
	/* A fresh start must not find an older step's state. */
	if (rc == 0 && !gen && unlink(ckpt) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(errbuf, sizeof(errbuf), "%s: unlink: %s", ckpt,
			 g_strerror(-rc));
	}
	if (rc == 0 && gen)
		rc = smig_agent_store_unwrap(&st, rank, gen, ckpt, uid, gid,
					     errbuf, sizeof(errbuf));
	if (rc < 0) {
		smig_cerror(CTX, "rank=%u: cannot restore the checkpoint file: %s",
			    rank, errbuf);
		return -1;
	}
	if (gen)
		smig_cverbose(CTX, "rank=%u: generation %" PRIu64 " restored into %s",
			      rank, gen, ckpt);
	return 0;
}
