/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent.c - the node agent of one step on one node, inside slurmstepd
 *
 * The agent connects to the balancer, says which ranks of the step run on
 * this node (HELLO_AGENT), forwards the balancer's PREPARE, CAPTURE, COMMIT
 * and ABORT to those ranks as PMIx events, and forwards the ranks' answers
 * (PMIX_JCTRL_CHECKPOINT_COMPLETE events) as COUNT and DONE after verifying
 * each image itself. See doc/design.md for the messages and events.
 * With capture=signal:SIG there are no PMIx events: the agent answers
 * PREPARE itself, signals its ranks on CAPTURE, turns the files they rename
 * into place into images (sig_capture(), sig_poll()) and writes an image
 * back into the file before a relaunched task starts (task_init).
 *
 * Threads: slurmstepd's main thread runs smig_agent_start()/_stop(); the
 * PMIx progress thread runs checkpoint_complete_cb(), which only copies the
 * event into a queue and wakes the agent thread; the agent thread is the
 * only one that touches the socket, verifies images and sends PMIx events.
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

#include "smig_auth.h"
#include "smig_image.h"
#include "smig_wire.h"
#include "spank_migrate.h"

#define CONNECT_TIMEOUT_MS	5000	/* to the balancer */
#define RECV_TIMEOUT_MS		10000	/* rest of a frame */
#define PMIX_WAIT_US		(5 * G_USEC_PER_SEC) /* PMIx callbacks */
/* Reconnecting to the balancer (doc/design.md "Restart of the balancer") */
#define RECONNECT_FIRST_MS	250	/* first retry after a loss */
#define RECONNECT_CAP_MS	5000	/* backoff doubles up to this */
#define RECONNECT_FOR_MS	(600 * 1000) /* then give up: no more captures */

/* A rank's answer, copied out of the PMIx progress thread. */
typedef struct rank_event {
	bool done;		/* false: count (or restored) */
	bool restored;		/* past its restore (relaunch watchdog) */
	uint64_t gen;
	uint32_t rank;
	uint64_t pause_at;	/* count */
	int32_t status;		/* done */
	uint64_t bytes;		/* done */
	char *msg;		/* done, g_free() */
} rank_event_t;

/* One PMIx_Notify_event() in flight; freed by its callback. */
typedef struct notify_ctx {
	pmix_info_t info[6];
	size_t ninfo;
	char *op;		/* the string of smig.op */
} notify_ctx_t;

static struct {
	__typeof__(PMIx_Notify_event) *notify;
	__typeof__(PMIx_Register_event_handler) *reg;
	__typeof__(PMIx_Deregister_event_handler) *dereg;

	bool registered;	/* the -107 handler */
	size_t hdlr_ref;

	GThread *thread;
	int wake_fd;
	/* MigrateImageStore=local: receiver of images handed to this node */
	GThread *rx_thread;
	int rx_fd;		/* listening socket, -1 if none */
	uint16_t rx_port;
	gint stopping;		/* atomic */
	GAsyncQueue *events;	/* of rank_event_t, from the PMIx thread */
	smig_auth_t *auth;
	int fd;			/* agent thread only */
	uint64_t capture_gen;	/* agent thread only: 0 = no capture */
	/* agent thread only: reconnecting (see agent_connect()) */
	int64_t retry_at;	/* monotonic us of the next try; 0: none */
	int64_t lost_at;	/* monotonic us of the loss */
	uint32_t backoff_ms;
	uint32_t attempts;	/* failed tries since the loss */
	bool connected_once;
	bool ending;		/* COMMIT stop=true: the step ends */
	uint64_t good_gen;	/* last generation COMMITted here */
	uint64_t tried_gen;	/* last generation PREPAREd here */
	/* capture=signal: (agent thread only) */
	uint32_t sig_timeout_ms;	/* PREPARE's timeout_ms */
	int64_t sig_deadline;	/* monotonic us; 0: no signal capture */
	bool *sig_done;		/* per index of ranks[]: DONE sent */
	/* agent thread only: ranks past their restore (see send_restored()) */
	bool *restored;		/* per index of ranks[] */
	uint32_t nrestored;
	uint64_t restored_gen;	/* the newest generation one of them named */

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
} agent = { .wake_fd = -1, .fd = -1, .rx_fd = -1 };

static void rank_event_free(gpointer p)
{
	rank_event_t *ev = p;

	g_free(ev->msg);
	g_free(ev);
}

static bool local_rank(uint32_t rank)
{
	for (uint32_t i = 0; i < agent.nranks; i++)
		if (agent.ranks[i] == rank)
			return true;
	return false;
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
 * smig.pause_at (count) or smig.status, smig.bytes, smig.msg (done). The sender is the event's source as
 * the PMIx server knows it: it must be a rank of this step on this node.
 * RET new event, free with rank_event_free(); NULL (logged) if malformed
 */
static rank_event_t *parse_rank_event(const pmix_proc_t *source,
				      const pmix_info_t *info, size_t ninfo)
{
	const pmix_value_t *op, *gen, *rank, *v;
	rank_event_t *ev;

	if (!source || strncmp(source->nspace, agent.nspace, PMIX_MAX_NSLEN) ||
	    !local_rank(source->rank)) {
		slurm_error("migrate: checkpoint-complete event from %s rank %u: not a rank of this step on this node, ignored",
			    source ? source->nspace : "(null)",
			    source ? source->rank : 0);
		return NULL;
	}
	op = find_info(info, ninfo, "smig.op", PMIX_STRING);
	gen = find_info(info, ninfo, "smig.gen", PMIX_UINT64);
	rank = find_info(info, ninfo, "smig.rank", PMIX_UINT32);
	if (!op || !op->data.string || !gen || !rank) {
		slurm_error("migrate: checkpoint-complete event from rank %u lacks smig.op (string), smig.gen (uint64) or smig.rank (uint32), ignored",
			    source->rank);
		return NULL;
	}
	if (rank->data.uint32 != source->rank) {
		slurm_error("migrate: checkpoint-complete event from rank %u says smig.rank=%u, ignored",
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
		slurm_error("migrate: checkpoint-complete event from rank %u: smig.op=%s: unknown (count, done, restored), ignored",
			    source->rank, op->data.string);
		g_free(ev);
		return NULL;
	}
	return ev;

bad_field:
	slurm_error("migrate: checkpoint-complete event from rank %u: smig.op=%s without %s, ignored",
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
		slurm_error("migrate: PMIx_Notify_event(smig.op=%s) failed: status %d",
			    ctx->op, status);
	g_free(ctx->op);
	g_free(ctx);
	g_mutex_lock(&agent.lock);
	agent.notifies--;
	g_cond_broadcast(&agent.cond);
	g_mutex_unlock(&agent.lock);
}

/*
 * notify_ranks - PMIX_JCTRL_CHECKPOINT to the ranks of this node
 * IN op     - "prepare", "capture", "commit" or "abort"
 * IN arg    - smig.timeout_ms (prepare), smig.target (capture),
 *             smig.stop (commit, 0/1)
 */
static void notify_ranks(const char *op, uint64_t gen, uint64_t arg)
{
	notify_ctx_t *ctx = g_new0(notify_ctx_t, 1);
	pmix_info_t *i = ctx->info;
	pmix_status_t rc;

	/* The catch-all handler of slurmstepd kills the step otherwise. */
	info_bool(i++, PMIX_EVENT_NON_DEFAULT, true);
	/* A relaunched rank must never see an old request. */
	info_bool(i++, PMIX_EVENT_DO_NOT_CACHE, true);
	ctx->op = g_strdup(op);
	load_key(i, "smig.op");
	i->value.type = PMIX_STRING;
	i->value.data.string = ctx->op;
	i++;
	info_u64(i++, "smig.gen", gen);
	if (!strcmp(op, "prepare")) {
		load_key(i, "smig.timeout_ms");
		i->value.type = PMIX_UINT32;
		i->value.data.uint32 = (uint32_t) arg;
		i++;
	} else if (!strcmp(op, "capture")) {
		info_u64(i++, "smig.target", arg);
	} else if (!strcmp(op, "commit")) {
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
		slurm_error("migrate: JobId=%u StepId=%u: PMIx_Notify_event(smig.op=%s, smig.gen=%" PRIu64 ") failed: status %d",
			    smig_spank.job_id, smig_spank.step_id, op, gen, rc);
		notify_done_cb(PMIX_SUCCESS, ctx);
		return;
	}
	slurm_debug("migrate: JobId=%u StepId=%u: event smig.op=%s smig.gen=%" PRIu64 " sent to the ranks of node %s",
		    smig_spank.job_id, smig_spank.step_id, op, gen, agent.node);
}

/* send_msg - one message to the balancer; the connection is closed on error */
static bool send_msg(smig_msg_type_t type, GVariantBuilder *b)
{
	smig_msg_t *msg = smig_msg_new(type, g_variant_builder_end(b));
	GError *err = NULL;
	bool ok;

	ok = smig_wire_send(agent.fd, agent.auth, msg, &err);
	if (!ok) {
		slurm_error("migrate: JobId=%u StepId=%u node=%s: cannot send %s to the balancer: %s",
			    smig_spank.job_id, smig_spank.step_id, agent.node,
			    smig_msg_type_name(type), err->message);
		g_error_free(err);
	} else {
		slurm_debug2("migrate: JobId=%u StepId=%u node=%s: sent %s",
			     smig_spank.job_id, smig_spank.step_id, agent.node,
			     smig_msg_type_name(type));
	}
	smig_msg_free(msg);
	return ok;
}

static void builder_ids(GVariantBuilder *b)
{
	g_variant_builder_init(b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(b, "{sv}", "job",
			      g_variant_new_uint32(smig_spank.job_id));
	g_variant_builder_add(b, "{sv}", "step",
			      g_variant_new_uint32(smig_spank.step_id));
}

/*
 * lost_connection - the balancer is gone: ranks waiting in a capture
 * resume (abort: a capture never outlives the connection that runs it);
 * the agent connects again (agent_connect()) unless the step is ending.
 */
static void lost_connection(const char *why)
{
	bool retry = !g_atomic_int_get(&agent.stopping) && !agent.ending;

	if (!g_atomic_int_get(&agent.stopping))
		slurm_error("migrate: JobId=%u StepId=%u node=%s: connection to the balancer lost: %s%s",
			    smig_spank.job_id, smig_spank.step_id, agent.node,
			    why, retry ? "; reconnecting" :
			    "; the step is ending");
	if (agent.capture_gen &&
	    smig_spank.req.capture != SMIG_CAPTURE_SIGNAL)
		notify_ranks("abort", agent.capture_gen, 0);
	agent.capture_gen = 0;
	agent.sig_deadline = 0;
	/*
	 * A BYE if the socket still takes one (unlogged, best effort): the
	 * balancer takes an agent that closes without BYE for a dead
	 * slurmstepd and has srun end the step.
	 */
	if (agent.fd >= 0) {
		GVariantBuilder b;
		smig_msg_t *msg;

		builder_ids(&b);
		g_variant_builder_add(&b, "{sv}", "status",
				      g_variant_new_int32(-1));
		msg = smig_msg_new(SMIG_MSG_BYE, g_variant_builder_end(&b));
		smig_wire_send(agent.fd, agent.auth, msg, NULL);
		smig_msg_free(msg);
	}
	close(agent.fd);
	agent.fd = -1;
	if (retry) {
		agent.lost_at = g_get_monotonic_time();
		agent.backoff_ms = RECONNECT_FIRST_MS;
		agent.attempts = 0;
		agent.retry_at = agent.lost_at + 1000 * agent.backoff_ms;
	}
}

/*
 * verify_image - the agent's own check of a rank's image of gen: the path
 * is computed here, never taken from the rank
 * OUT bytes - payload length, on success
 * RET 0, or a negative code with a message in errbuf
 */
/*
 * dir_check - the job directory is still the one made at the step's start
 * (not replaced, e.g. by a symbolic link): checked before every image is
 * verified, written, received or recorded as good
 * RET 0, or a negative code with errbuf set (and logged)
 */
static int dir_check(char *errbuf, size_t errlen)
{
	int rc = smig_dir_check(smig_spank.image_dir, &smig_spank.dir_id,
				errbuf, errlen);

	if (rc < 0)
		slurm_error("migrate: JobId=%u StepId=%u: %s",
			    smig_spank.job_id, smig_spank.step_id, errbuf);
	return rc;
}

static int verify_image(uint32_t rank, uint64_t gen, uint64_t *bytes,
			char *errbuf, size_t errlen)
{
	char path[PATH_MAX];
	smig_image_hdr_t hdr;
	int rc;

	rc = dir_check(errbuf, errlen);
	if (rc < 0)
		return rc;

	rc = smig_image_path(path, sizeof(path), smig_spank.image_dir, rank,
			     gen);
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s/rank%u.g%" PRIu64 ".img: path too long",
			 smig_spank.image_dir, rank, gen);
		return rc;
	}
	rc = smig_image_verify(path, &hdr, errbuf, errlen);
	if (rc < 0)
		return rc;
	if (hdr.job_id != smig_spank.job_id || hdr.rank != rank ||
	    hdr.generation != gen) {
		snprintf(errbuf, errlen, "%.200s: header says job %u rank %u generation %" PRIu64 ", expected job %u rank %u generation %" PRIu64,
			 path, hdr.job_id, hdr.rank, hdr.generation,
			 smig_spank.job_id, rank, gen);
		return SMIG_IMAGE_EINVAL;
	}
	*bytes = hdr.payload_len;
	return 0;
}

/*
 * send_restored - RESTORED: every rank of this node that is past its
 * restore so far (all of them each time: a message lost with a connection
 * is made good by the next one, and after a reconnect by say_hello())
 */
static void send_restored(void)
{
	GVariantBuilder b;
	GArray *ranks;

	if (agent.fd < 0 || !agent.nrestored)
		return;
	ranks = g_array_new(false, false, sizeof(uint32_t));
	for (uint32_t i = 0; i < agent.nranks; i++)
		if (agent.restored[i])
			g_array_append_val(ranks, agent.ranks[i]);
	builder_ids(&b);
	g_variant_builder_add(&b, "{sv}", "gen",
			      g_variant_new_uint64(agent.restored_gen));
	g_variant_builder_add(&b, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks->data, ranks->len,
							sizeof(uint32_t)));
	g_array_free(ranks, true);
	if (!send_msg(SMIG_MSG_RESTORED, &b))
		lost_connection("send failed");
}

/* rank_restored - a rank of this node is past its restore */
static void rank_restored(const rank_event_t *ev)
{
	for (uint32_t i = 0; i < agent.nranks; i++) {
		if (agent.ranks[i] != ev->rank || agent.restored[i])
			continue;
		agent.restored[i] = true;
		agent.nrestored++;
		agent.restored_gen = MAX(agent.restored_gen, ev->gen);
		slurm_verbose("migrate: JobId=%u StepId=%u rank=%u: past smig_register(), generation %" PRIu64 " restored (0: a fresh start); %u of %u ranks on this node",
			      smig_spank.job_id, smig_spank.step_id, ev->rank,
			      ev->gen, agent.nrestored, agent.nranks);
		send_restored();
		return;
	}
}

/* forward_rank_event - COUNT or DONE for one rank's answer, or RESTORED */
static void forward_rank_event(rank_event_t *ev)
{
	GVariantBuilder b;
	char errbuf[512] = "";
	uint64_t bytes = ev->bytes;
	int32_t status = ev->status;
	const char *msg = ev->msg ? ev->msg : "";

	if (ev->restored) {
		rank_restored(ev);
		return;
	}
	if (agent.fd < 0)
		return;
	if (!agent.capture_gen || ev->gen != agent.capture_gen) {
		slurm_debug("migrate: JobId=%u StepId=%u: rank %u answered for generation %" PRIu64 " but the capture in progress is %" PRIu64 ", ignored",
			    smig_spank.job_id, smig_spank.step_id, ev->rank,
			    ev->gen, agent.capture_gen);
		return;
	}
	builder_ids(&b);
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(ev->gen));
	g_variant_builder_add(&b, "{sv}", "rank",
			      g_variant_new_uint32(ev->rank));
	if (!ev->done) {
		g_variant_builder_add(&b, "{sv}", "pause_at",
				      g_variant_new_uint64(ev->pause_at));
		if (!send_msg(SMIG_MSG_COUNT, &b))
			lost_connection("send failed");
		return;
	}
	if (status == 0) {
		status = verify_image(ev->rank, ev->gen, &bytes, errbuf,
				      sizeof(errbuf));
		if (status != 0) {
			slurm_error("migrate: JobId=%u StepId=%u rank=%u generation=%" PRIu64 ": image refused: %s",
				    smig_spank.job_id, smig_spank.step_id,
				    ev->rank, ev->gen, errbuf);
			msg = errbuf;
		}
	}
	g_variant_builder_add(&b, "{sv}", "status",
			      g_variant_new_int32(status));
	g_variant_builder_add(&b, "{sv}", "bytes", g_variant_new_uint64(bytes));
	g_variant_builder_add(&b, "{sv}", "msg", g_variant_new_string(msg));
	if (!send_msg(SMIG_MSG_DONE, &b))
		lost_connection("send failed");
}

/*
 * smig_checkpoint_path - capture=signal: "<image_dir>/rank<R>.ckpt", the
 * file the application writes when signalled (SLURM_MIGRATE_CHECKPOINT_FILE)
 * RET 0, or -ENAMETOOLONG
 */
static int smig_checkpoint_path(char *buf, size_t len, uint32_t rank)
{
	int n = snprintf(buf, len, "%s/rank%u.ckpt", smig_spank.image_dir,
			 rank);

	return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

/* done_msg - DONE for one local rank, without a rank event */
static void done_msg(uint32_t rank, uint64_t gen, int32_t status,
		     uint64_t bytes, const char *msg)
{
	rank_event_t ev = {
		.done = true, .gen = gen, .rank = rank, .status = status,
		.bytes = bytes, .msg = (char *) msg,
	};

	forward_rank_event(&ev);
}

/*
 * sig_wrap - capture=signal: the rank's checkpoint file is complete (the
 * application renamed it into place): wrap its bytes into the image of gen
 * (owned by the job's user, 0600), as libsmig would have written it
 * RET 0 or a negative code with a message in errbuf
 */
static int sig_wrap(uint32_t rank, uint64_t gen, const char *ckpt,
		    char *errbuf, size_t errlen)
{
	smig_image_hdr_t hdr = { 0 };
	char path[PATH_MAX];
	struct stat st, dst;
	void *buf = NULL;
	size_t got = 0;
	int fd, rc = 0;

	rc = dir_check(errbuf, errlen);
	if (rc < 0)
		return rc;
	fd = open(ckpt, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: open: %s", ckpt, g_strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0 || stat(smig_spank.image_dir, &dst) < 0) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: stat: %s", ckpt, g_strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != dst.st_uid) {
		snprintf(errbuf, errlen, "%s: not a regular file of the job's user (uid %u)",
			 ckpt, (unsigned) dst.st_uid);
		rc = -EPERM;
		goto out;
	}
	if ((uint64_t) st.st_size > SMIG_IMAGE_MAX_PAYLOAD) {
		snprintf(errbuf, errlen, "%s: %jd bytes, more than an image holds (%" PRIu64 ")",
			 ckpt, (intmax_t) st.st_size,
			 (uint64_t) SMIG_IMAGE_MAX_PAYLOAD);
		rc = -EFBIG;
		goto out;
	}
	buf = g_try_malloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		snprintf(errbuf, errlen, "%s: no memory for %jd bytes", ckpt,
			 (intmax_t) st.st_size);
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t) st.st_size) {
		ssize_t n = read(fd, (char *) buf + got, st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			snprintf(errbuf, errlen, "%s: read at byte %zu of %jd: %s",
				 ckpt, got, (intmax_t) st.st_size,
				 n < 0 ? g_strerror(-rc) : "file shrank");
			goto out;
		}
		got += n;
	}
	hdr.job_id = smig_spank.job_id;
	hdr.step_id = smig_spank.step_id;
	hdr.rank = rank;
	hdr.nranks = agent.ntasks;
	hdr.generation = gen;
	hdr.payload_len = got;
	hdr.created_ns = g_get_real_time() * 1000;
	g_strlcpy(hdr.tag, "signal", sizeof(hdr.tag));
	rc = smig_image_write(smig_spank.image_dir, &hdr, buf, path,
			      sizeof(path), errbuf, errlen);
	if (rc == 0 && lchown(path, dst.st_uid, dst.st_gid) < 0) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: chown to uid %u: %s", path,
			 (unsigned) dst.st_uid, g_strerror(-rc));
	}
out:
	g_free(buf);
	close(fd);
	return rc;
}

/*
 * sig_capture - capture=signal:SIG, CAPTURE of gen: remove each local
 * rank's old checkpoint file and send it the signal; sig_poll() waits for
 * the new files
 */
static void sig_capture(uint64_t gen)
{
	int sig = smig_spank.req.capture_signal;
	char ckpt[PATH_MAX], msg[PATH_MAX + 64];

	g_free(agent.sig_done);
	agent.sig_done = g_new0(bool, agent.nranks);
	agent.sig_deadline = g_get_monotonic_time() +
			     1000 * (int64_t) agent.sig_timeout_ms;
	for (uint32_t i = 0; i < agent.nranks; i++) {
		uint32_t rank = agent.ranks[i];
		pid_t pid = smig_sample_pid(rank);

		smig_checkpoint_path(ckpt, sizeof(ckpt), rank);
		if (unlink(ckpt) < 0 && errno != ENOENT) {
			snprintf(msg, sizeof(msg), "%s: cannot remove the previous checkpoint: %s",
				 ckpt, g_strerror(errno));
		} else if (pid <= 0) {
			snprintf(msg, sizeof(msg), "rank %u: no task process known on node %s",
				 rank, agent.node);
		} else if (kill(pid, sig) < 0) {
			snprintf(msg, sizeof(msg), "rank %u pid %d: kill(%s): %s",
				 rank, (int) pid, strsignal(sig),
				 g_strerror(errno));
		} else {
			continue;
		}
		slurm_error("migrate: JobId=%u StepId=%u generation=%" PRIu64 ": %s",
			    smig_spank.job_id, smig_spank.step_id, gen, msg);
		agent.sig_done[i] = true;
		done_msg(rank, gen, -EIO, 0, msg);
	}
}

/*
 * sig_poll - capture=signal: wrap the checkpoint files that appeared; at
 * the deadline, a DONE with an error for every rank still missing
 */
static void sig_poll(void)
{
	uint64_t gen = agent.capture_gen;
	bool late = g_get_monotonic_time() >= agent.sig_deadline;
	char ckpt[PATH_MAX], errbuf[PATH_MAX + 128];
	bool all = true;
	struct stat st;

	for (uint32_t i = 0; i < agent.nranks && agent.sig_deadline; i++) {
		uint32_t rank = agent.ranks[i];
		int rc;

		if (agent.sig_done[i])
			continue;
		smig_checkpoint_path(ckpt, sizeof(ckpt), rank);
		if (lstat(ckpt, &st) < 0 && !late) {
			all = false;
			continue;
		}
		if (lstat(ckpt, &st) < 0) {
			snprintf(errbuf, sizeof(errbuf), "%s: no checkpoint file %u ms after %s",
				 ckpt, agent.sig_timeout_ms,
				 strsignal(smig_spank.req.capture_signal));
			rc = -ETIMEDOUT;
		} else {
			rc = sig_wrap(rank, gen, ckpt, errbuf, sizeof(errbuf));
		}
		if (rc < 0)
			slurm_error("migrate: JobId=%u StepId=%u rank=%u generation=%" PRIu64 ": capture by signal failed: %s",
				    smig_spank.job_id, smig_spank.step_id,
				    rank, gen, errbuf);
		agent.sig_done[i] = true;
		done_msg(rank, gen, rc, 0, rc < 0 ? errbuf : "");
	}
	if (all)
		agent.sig_deadline = 0;
}

/* sig_stop - capture=signal: COMMIT stop=true, the ranks cannot return */
static void sig_stop(void)
{
	for (uint32_t i = 0; i < agent.nranks; i++) {
		pid_t pid = smig_sample_pid(agent.ranks[i]);

		if (pid > 0 && kill(pid, SIGKILL) < 0 && errno != ESRCH)
			slurm_error("migrate: JobId=%u StepId=%u rank=%u pid %d: kill(SIGKILL) after the capture: %s",
				    smig_spank.job_id, smig_spank.step_id,
				    agent.ranks[i], (int) pid,
				    g_strerror(errno));
	}
}

/*
 * store_commit - gen is good: record it in the job directory's manifest
 * (where a restart finds it) and delete this node's ranks' images older
 * than the MigrateRetain newest good generations. Failures are logged: the
 * images themselves are safe, only the restart-after-failure record or
 * disk space is affected.
 */
static void store_commit(uint64_t gen)
{
	char errbuf[512] = "";
	uint64_t keep_from = gen;
	struct stat st;
	int rc;

	if (dir_check(errbuf, sizeof(errbuf)) < 0) {
		slurm_error("migrate: JobId=%u StepId=%u generation=%" PRIu64 ": not recorded as good",
			    smig_spank.job_id, smig_spank.step_id, gen);
		return;
	}
	/* The job directory belongs to the job's user (make_job_dir()). */
	if (stat(smig_spank.image_dir, &st) < 0) {
		st.st_uid = (uid_t) -1;
		st.st_gid = (gid_t) -1;
	}
	rc = smig_store_commit(smig_spank.image_dir, gen,
			       smig_spank.conf->retain, st.st_uid, st.st_gid,
			       &keep_from, errbuf, sizeof(errbuf));
	if (rc < 0) {
		slurm_error("migrate: JobId=%u StepId=%u generation=%" PRIu64 ": cannot record it as good: %s",
			    smig_spank.job_id, smig_spank.step_id, gen,
			    errbuf);
		return;
	}
	rc = smig_store_prune(smig_spank.image_dir, agent.ranks, agent.nranks,
			      keep_from, gen, errbuf, sizeof(errbuf));
	if (rc < 0)
		slurm_error("migrate: JobId=%u StepId=%u: retention: %s",
			    smig_spank.job_id, smig_spank.step_id, errbuf);
	else
		slurm_debug("migrate: JobId=%u StepId=%u node=%s: generation %" PRIu64 " good, %d old image files deleted (keeping generations >= %" PRIu64 ")",
			    smig_spank.job_id, smig_spank.step_id, agent.node,
			    gen, rc, keep_from);
}

/* job_owner - uid and gid of the job directory (the job's user) */
static void job_owner(uint32_t *uid, uint32_t *gid)
{
	struct stat st;

	if (stat(smig_spank.image_dir, &st) < 0) {
		*uid = *gid = (uint32_t) -1;
		return;
	}
	*uid = st.st_uid;
	*gid = st.st_gid;
}

/* handoff_reply - HANDOFF with the outcome of one hand-off on fd */
static bool handoff_reply(int fd, uint32_t step, uint64_t gen, uint32_t rank,
			  int32_t status, const char *text, GError **error)
{
	GVariantBuilder b;
	smig_msg_t *msg;
	bool ok;

	g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&b, "{sv}", "job",
			      g_variant_new_uint32(smig_spank.job_id));
	g_variant_builder_add(&b, "{sv}", "step", g_variant_new_uint32(step));
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&b, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&b, "{sv}", "status",
			      g_variant_new_int32(status));
	g_variant_builder_add(&b, "{sv}", "msg", g_variant_new_string(text));
	msg = smig_msg_new(SMIG_MSG_HANDOFF, g_variant_builder_end(&b));
	ok = smig_wire_send(fd, agent.auth, msg, error);
	smig_msg_free(msg);
	return ok;
}

/*
 * handoff_send - the balancer asks this agent to hand the image of one of
 * its ranks to the agent of the target node (MigrateImageStore=local):
 * connect, HANDOFF with the size, the file's bytes, then wait for the
 * target's HANDOFF reply (written, checked, fsync'ed) and tell the
 * balancer. Runs in the agent thread; bounded by MigrateCaptureTimeout.
 */
static void handoff_send(const smig_msg_t *msg, uint64_t gen)
{
	const char *addr = NULL, *to = NULL, *text = "";
	uint32_t rank, port;
	char path[PATH_MAX], errbuf[512] = "";
	int timeout = (int) MIN(smig_spank.conf->capture_timeout_ms,
				(uint32_t) G_MAXINT);
	GError *err = NULL;
	GVariantBuilder b;
	smig_msg_t *m = NULL, *reply = NULL;
	int32_t status = 0;
	struct stat st;
	struct timeval tv = { .tv_sec = timeout / 1000,
			      .tv_usec = timeout % 1000 * 1000 };
	int fd = -1;

	if (!smig_msg_get_u32(msg, "rank", &rank) || !local_rank(rank) ||
	    !smig_msg_get_str(msg, "addr", &addr) ||
	    !smig_msg_get_str(msg, "to_node", &to) ||
	    !smig_msg_get_u32(msg, "port", &port) || !port ||
	    port > UINT16_MAX) {
		slurm_error("migrate: JobId=%u StepId=%u: HANDOFF without a rank of this node (u), to_node (s), addr (s) or port (u 1-65535), ignored",
			    smig_spank.job_id, smig_spank.step_id);
		return;
	}
	if (smig_image_path(path, sizeof(path), smig_spank.image_dir, rank,
			    gen) < 0 || lstat(path, &st) < 0 ||
	    !S_ISREG(st.st_mode)) {
		snprintf(errbuf, sizeof(errbuf), "%s/rank%u.g%" PRIu64 ".img: not a regular file",
			 smig_spank.image_dir, rank, gen);
		status = SMIG_IMAGE_EINVAL;
		goto report;
	}
	fd = smig_wire_connect(addr, (uint16_t) port, CONNECT_TIMEOUT_MS,
			       &err);
	if (fd < 0) {
		snprintf(errbuf, sizeof(errbuf), "node %s at %s:%u: %s", to,
			 addr, port, err->message);
		status = -ECONNREFUSED;
		goto report;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	builder_ids(&b);
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&b, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&b, "{sv}", "bytes",
			      g_variant_new_uint64((uint64_t) st.st_size));
	m = smig_msg_new(SMIG_MSG_HANDOFF, g_variant_builder_end(&b));
	if (!smig_wire_send(fd, agent.auth, m, &err)) {
		snprintf(errbuf, sizeof(errbuf), "node %s: %s", to,
			 err->message);
		status = -EPIPE;
		goto report;
	}
	status = smig_image_send(path, fd, (uint64_t) st.st_size, errbuf,
				 sizeof(errbuf));
	if (status)
		goto report;
	reply = smig_wire_recv(fd, agent.auth, timeout, &err);
	if (!reply || reply->type != SMIG_MSG_HANDOFF ||
	    !smig_msg_get_i32(reply, "status", &status)) {
		snprintf(errbuf, sizeof(errbuf), "node %s: no hand-off reply: %s",
			 to, err ? err->message : "not a HANDOFF with status");
		status = -EPROTO;
		goto report;
	}
	if (status && smig_msg_get_str(reply, "msg", &text))
		snprintf(errbuf, sizeof(errbuf), "node %s: %s", to, text);

report:
	if (status)
		slurm_error("migrate: JobId=%u StepId=%u rank=%u generation=%" PRIu64 ": hand-off to node %s failed: %s",
			    smig_spank.job_id, smig_spank.step_id, rank, gen,
			    to, errbuf);
	else
		slurm_verbose("migrate: JobId=%u StepId=%u rank=%u generation=%" PRIu64 ": image handed off %s->%s (%lld bytes)",
			      smig_spank.job_id, smig_spank.step_id, rank,
			      gen, agent.node, to, (long long) st.st_size);
	g_clear_error(&err);
	smig_msg_free(m);
	smig_msg_free(reply);
	if (fd >= 0)
		close(fd);
	if (agent.fd < 0)
		return;
	builder_ids(&b);
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&b, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&b, "{sv}", "status",
			      g_variant_new_int32(status));
	g_variant_builder_add(&b, "{sv}", "msg",
			      g_variant_new_string(errbuf));
	if (!send_msg(SMIG_MSG_HANDOFF, &b))
		lost_connection("send failed");
}

/*
 * handoff_receive - one connection to the receiver: a HANDOFF from an
 * agent of this job (munge: root or the job's user), then the image bytes,
 * stored and checked here; the outcome goes back on the connection.
 */
static void handoff_receive(int fd)
{
	uint32_t job, step = 0, rank, uid, gid;
	uint64_t gen, bytes;
	char errbuf[512] = "";
	smig_image_hdr_t hdr;
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_MS / 1000 };
	GError *err = NULL;
	smig_msg_t *msg;
	int32_t status;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	msg = smig_wire_recv(fd, agent.auth, RECV_TIMEOUT_MS, &err);
	if (!msg) {
		slurm_error("migrate: JobId=%u node=%s: hand-off receiver: %s",
			    smig_spank.job_id, agent.node, err->message);
		g_error_free(err);
		return;
	}
	job_owner(&uid, &gid);
	if (msg->type != SMIG_MSG_HANDOFF ||
	    !smig_msg_get_u32(msg, "job", &job) ||
	    !smig_msg_get_u32(msg, "step", &step) ||
	    !smig_msg_get_u64(msg, "gen", &gen) ||
	    !smig_msg_get_u32(msg, "rank", &rank) ||
	    !smig_msg_get_u64(msg, "bytes", &bytes) ||
	    job != smig_spank.job_id || gen == 0 ||
	    (msg->uid != 0 && msg->uid != uid)) {
		slurm_error("migrate: JobId=%u node=%s: hand-off receiver: %s from uid %u is not a HANDOFF of this job (job u, step u, gen t > 0, rank u, bytes t) from root or the job's user: refused",
			    smig_spank.job_id, agent.node,
			    smig_msg_type_name(msg->type), msg->uid);
		smig_msg_free(msg);
		return;
	}
	smig_msg_free(msg);
	status = dir_check(errbuf, sizeof(errbuf));
	if (!status)
		status = smig_image_receive(smig_spank.image_dir, job, rank,
					    gen, fd, bytes, uid, gid, &hdr,
					    errbuf, sizeof(errbuf));
	if (status)
		slurm_error("migrate: JobId=%u rank=%u generation=%" PRIu64 " node=%s: hand-off refused: %s",
			    job, rank, gen, agent.node, errbuf);
	else
		slurm_info("migrate: JobId=%u rank=%u generation=%" PRIu64 " node=%s: image received and verified (%" PRIu64 " bytes)",
			      job, rank, gen, agent.node, bytes);
	if (!handoff_reply(fd, step, gen, rank, status, errbuf, &err)) {
		slurm_error("migrate: JobId=%u rank=%u node=%s: hand-off reply: %s",
			    job, rank, agent.node, err->message);
		g_error_free(err);
	}
}

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
		handoff_receive(fd);
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

		slurm_error("migrate: JobId=%u StepId=%u: hand-off receiver: %s; no rank will be moved to this node's store",
			    smig_spank.job_id, smig_spank.step_id,
			    g_strerror(e));
		goto out_close;
	}
	agent.rx_port = ntohs(sa.sin6_port);
	agent.rx_thread = g_thread_try_new("smig-rx", rx_main, NULL, &err);
	if (!agent.rx_thread) {
		slurm_error("migrate: JobId=%u StepId=%u: hand-off receiver thread: %s",
			    smig_spank.job_id, smig_spank.step_id,
			    err->message);
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

/* handle_msg - one message from the balancer */
static void handle_msg(const smig_msg_t *msg)
{
	const char *what = smig_msg_type_name(msg->type);
	const char *s1 = NULL, *s2 = NULL;
	uint32_t job, step, u32;
	uint64_t gen, u64;
	bool stop;

	if (!smig_spank_from_balancer(msg))
		return;
	if (msg->type == SMIG_MSG_REFUSED) {
		smig_msg_get_str(msg, "what", &s1);
		smig_msg_get_str(msg, "reason", &s2);
		slurm_error("migrate: JobId=%u StepId=%u node=%s: the balancer refused %s: %s",
			    smig_spank.job_id, smig_spank.step_id, agent.node,
			    s1 ? s1 : "?", s2 ? s2 : "?");
		return;
	}
	if (msg->type != SMIG_MSG_PREPARE && msg->type != SMIG_MSG_CAPTURE &&
	    msg->type != SMIG_MSG_COMMIT && msg->type != SMIG_MSG_ABORT &&
	    msg->type != SMIG_MSG_HANDOFF) {
		slurm_error("migrate: JobId=%u StepId=%u: unexpected %s from the balancer, ignored",
			    smig_spank.job_id, smig_spank.step_id, what);
		return;
	}
	if (!smig_msg_get_u32(msg, "job", &job) ||
	    !smig_msg_get_u32(msg, "step", &step) ||
	    !smig_msg_get_u64(msg, "gen", &gen) ||
	    job != smig_spank.job_id || step != smig_spank.step_id ||
	    gen == 0) {
		slurm_error("migrate: JobId=%u StepId=%u: %s from the balancer without job/step of this step or gen > 0, ignored",
			    smig_spank.job_id, smig_spank.step_id, what);
		return;
	}
	slurm_debug("migrate: JobId=%u StepId=%u node=%s: received %s gen=%" PRIu64,
		    job, step, agent.node, what, gen);
	/* Only PREPARE starts a capture; the rest must be about that one. */
	if (msg->type != SMIG_MSG_PREPARE &&
	    (!agent.capture_gen || gen != agent.capture_gen)) {
		slurm_error("migrate: JobId=%u StepId=%u node=%s: %s for generation %" PRIu64 " but the capture in progress is %" PRIu64 ", ignored",
			    job, step, agent.node, what, gen,
			    agent.capture_gen);
		return;
	}
	switch (msg->type) {
	case SMIG_MSG_PREPARE:
		if (!smig_msg_get_u32(msg, "timeout_ms", &u32)) {
			slurm_error("migrate: JobId=%u StepId=%u: PREPARE without timeout_ms (u), ignored",
				    job, step);
			return;
		}
		agent.capture_gen = gen;
		agent.tried_gen = MAX(agent.tried_gen, gen);
		if (smig_spank.req.capture != SMIG_CAPTURE_SIGNAL) {
			notify_ranks("prepare", gen, u32);
			break;
		}
		/* No safe points: the application picks its own moment. */
		agent.sig_timeout_ms = u32;
		agent.sig_deadline = 0;
		for (uint32_t i = 0; i < agent.nranks; i++) {
			rank_event_t ev = { .gen = gen, .rank = agent.ranks[i] };

			forward_rank_event(&ev);
		}
		break;
	case SMIG_MSG_CAPTURE:
		if (!smig_msg_get_u64(msg, "target", &u64)) {
			slurm_error("migrate: JobId=%u StepId=%u: CAPTURE without target (t), ignored",
				    job, step);
			return;
		}
		if (smig_spank.req.capture == SMIG_CAPTURE_SIGNAL)
			sig_capture(gen);
		else
			notify_ranks("capture", gen, u64);
		break;
	case SMIG_MSG_COMMIT:
		if (!smig_msg_get_bool(msg, "stop", &stop)) {
			slurm_error("migrate: JobId=%u StepId=%u: COMMIT without stop (b), ignored",
				    job, step);
			return;
		}
		agent.capture_gen = 0;
		agent.sig_deadline = 0;
		agent.good_gen = MAX(agent.good_gen, gen);
		if (stop)
			agent.ending = true;
		store_commit(gen);
		if (smig_spank.req.capture != SMIG_CAPTURE_SIGNAL)
			notify_ranks("commit", gen, stop);
		else if (stop)
			sig_stop();
		break;
	case SMIG_MSG_HANDOFF:
		handoff_send(msg, gen);
		break;
	default:	/* ABORT */
		smig_msg_get_str(msg, "reason", &s1);
		slurm_verbose("migrate: JobId=%u StepId=%u: capture of generation %" PRIu64 " aborted: %s",
			      job, step, gen, s1 ? s1 : "no reason given");
		agent.capture_gen = 0;
		agent.sig_deadline = 0;
		if (smig_spank.req.capture != SMIG_CAPTURE_SIGNAL)
			notify_ranks("abort", gen, 0);
		break;
	}
}

/* hello_start - HELLO_AGENT's ids, node and ranks into b */
static void hello_start(GVariantBuilder *b)
{
	builder_ids(b);
	g_variant_builder_add(b, "{sv}", "node",
			      g_variant_new_string(agent.node));
	g_variant_builder_add(b, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							agent.ranks,
							agent.nranks,
							sizeof(uint32_t)));
}

static bool say_hello(void)
{
	GVariantBuilder b;

	hello_start(&b);
	if (agent.rx_port)
		g_variant_builder_add(&b, "{sv}", "handoff_port",
				      g_variant_new_uint32(agent.rx_port));
	/* What this node saw, for a balancer that restarted meanwhile. */
	g_variant_builder_add(&b, "{sv}", "good_gen",
			      g_variant_new_uint64(agent.good_gen));
	g_variant_builder_add(&b, "{sv}", "tried_gen",
			      g_variant_new_uint64(agent.tried_gen));
	return send_msg(SMIG_MSG_HELLO_AGENT, &b);
}

/*
 * agent_connect - one try to reach the balancer and register (HELLO_AGENT);
 * on failure the next try is scheduled (backoff from RECONNECT_FIRST_MS,
 * doubling up to RECONNECT_CAP_MS) until RECONNECT_FOR_MS after the loss
 */
static void agent_connect(void)
{
	const smig_conf_t *conf = smig_spank.conf;
	int64_t now = g_get_monotonic_time();
	GError *err = NULL;

	agent.retry_at = 0;
	agent.fd = smig_wire_connect(conf->balancer_addr, conf->port,
				     CONNECT_TIMEOUT_MS, &err);
	if (agent.fd >= 0 && !say_hello()) {
		close(agent.fd);
		agent.fd = -1;
	}
	if (agent.fd >= 0) {
		if (!agent.connected_once)
			slurm_info("migrate: JobId=%u StepId=%u node=%s ranks=%u: connected to the balancer at %s:%u (HELLO_AGENT sent)",
				   smig_spank.job_id, smig_spank.step_id,
				   agent.node, agent.nranks,
				   conf->balancer_addr, conf->port);
		else
			slurm_info("migrate: JobId=%u StepId=%u node=%s: reconnected to the balancer at %s:%u after %u failed tries (HELLO_AGENT sent, good_gen=%" PRIu64 ")",
				   smig_spank.job_id, smig_spank.step_id,
				   agent.node, conf->balancer_addr, conf->port,
				   agent.attempts, agent.good_gen);
		agent.connected_once = true;
		g_clear_error(&err);
		/* Ranks restored before (or while the balancer was away). */
		send_restored();
		return;
	}
	if (!agent.lost_at) {
		agent.lost_at = now;
		agent.backoff_ms = RECONNECT_FIRST_MS;
	}
	agent.attempts++;
	if (now - agent.lost_at >= 1000 * (int64_t) RECONNECT_FOR_MS) {
		slurm_error("migrate: JobId=%u StepId=%u node=%s: cannot reach the balancer at %s:%u for %u s (%s); no more captures for this step",
			    smig_spank.job_id, smig_spank.step_id, agent.node,
			    conf->balancer_addr, conf->port,
			    RECONNECT_FOR_MS / 1000,
			    err ? err->message : "registration failed");
		g_clear_error(&err);
		return;
	}
	if (agent.attempts == 1)
		slurm_error("migrate: JobId=%u StepId=%u node=%s: cannot reach the balancer at %s:%u: %s; retrying for up to %u s",
			    smig_spank.job_id, smig_spank.step_id, agent.node,
			    conf->balancer_addr, conf->port,
			    err ? err->message : "registration failed",
			    RECONNECT_FOR_MS / 1000);
	g_clear_error(&err);
	agent.retry_at = now + 1000 * (int64_t) agent.backoff_ms;
	agent.backoff_ms = MIN(agent.backoff_ms * 2, RECONNECT_CAP_MS);
}

/* take_sample - one SAMPLE of this node's ranks to the balancer */
static void take_sample(void)
{
	GVariant *body;
	smig_msg_t *msg;
	GError *err = NULL;

	if (agent.fd < 0 || !(body = smig_sample_collect()))
		return;
	msg = smig_msg_new(SMIG_MSG_SAMPLE, body);
	if (!smig_wire_send(agent.fd, agent.auth, msg, &err)) {
		slurm_error("migrate: JobId=%u StepId=%u node=%s: cannot send SAMPLE to the balancer: %s",
			    smig_spank.job_id, smig_spank.step_id, agent.node,
			    err->message);
		g_error_free(err);
		lost_connection("send failed");
	}
	smig_msg_free(msg);
}

static gpointer agent_main(gpointer unused)
{
	GError *err = NULL;
	uint32_t interval = MAX(smig_sample_interval_ms(), 100);
	int64_t next_sample;
	rank_event_t *ev;
	smig_msg_t *msg;
	int w;

	agent_connect();
	next_sample = g_get_monotonic_time() + 1000 * (int64_t) interval;
	while (!g_atomic_int_get(&agent.stopping)) {
		int64_t left = next_sample - g_get_monotonic_time();

		if (agent.fd < 0 && agent.retry_at &&
		    g_get_monotonic_time() >= agent.retry_at)
			agent_connect();
		if (left <= 0) {
			take_sample();
			next_sample += 1000 * (int64_t) interval;
			left = MAX(next_sample - g_get_monotonic_time(), 0);
		}
		if (agent.fd < 0 && agent.retry_at)
			left = MIN(left, MAX(agent.retry_at -
					     g_get_monotonic_time(), 0));
		/* capture=signal: look for the checkpoint files every 20 ms */
		if (agent.sig_deadline)
			left = MIN(left, 20000);
		w = smig_spank_wait(agent.fd, agent.wake_fd,
				    (int) MIN(left / 1000 + 1, INT_MAX));
		while ((ev = g_async_queue_try_pop(agent.events))) {
			forward_rank_event(ev);
			rank_event_free(ev);
		}
		if (agent.sig_deadline && agent.capture_gen)
			sig_poll();
		if (!(w & SMIG_WAIT_FD) || agent.fd < 0)
			continue;
		msg = smig_wire_recv(agent.fd, agent.auth, RECV_TIMEOUT_MS,
				     &err);
		if (!msg) {
			lost_connection(err->message);
			g_clear_error(&err);
			continue;
		}
		handle_msg(msg);
		smig_msg_free(msg);
	}

	if (agent.fd >= 0) {
		GVariantBuilder b;

		builder_ids(&b);
		g_variant_builder_add(&b, "{sv}", "status",
				      g_variant_new_int32(0));
		send_msg(SMIG_MSG_BYE, &b);
		close(agent.fd);
		agent.fd = -1;
	}
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
	agent.restored = g_new0(bool, n ? n : 1);
	for (uint32_t i = 0; i < n; i++) {
		if (spank_get_item(sp, S_JOB_LOCAL_TO_GLOBAL_ID, i, &gid) !=
		    ESPANK_SUCCESS)
			return false;
		agent.ranks[i] = gid;
	}
	agent.nranks = n;
	return true;
}

void smig_agent_start(spank_t sp)
{
	pmix_status_t code = PMIX_JCTRL_CHECKPOINT_COMPLETE;
	const char *node = getenv("SLURMD_NODENAME");
	GError *err = NULL;
	pmix_status_t rc;

	/*
	 * slurmstepd sets SLURMD_NODENAME in its own environment to Slurm's
	 * name of this node (slurmd -N), which differs from the host name
	 * when several slurmd share a host.
	 */
	agent.node = g_strdup(node && *node ? node : g_get_host_name());
	snprintf(agent.nspace, sizeof(agent.nspace), "slurm.pmix.%u.%u",
		 smig_spank.job_id, smig_spank.step_id);
	if (!resolve_pmix()) {
		slurm_info("migrate: JobId=%u StepId=%u: no PMIx server in this step: capture needs srun --mpi=pmix; the step runs without migration",
			   smig_spank.job_id, smig_spank.step_id);
		return;
	}
	if (!local_ranks(sp)) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot read the global ids of the local tasks; the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id);
		return;
	}
	smig_sample_setup(sp, agent.node);
	agent.auth = smig_auth_munge_new(smig_spank.conf->munge_socket, &err);
	if (!agent.auth) {
		slurm_error("migrate: JobId=%u StepId=%u: %s; the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id,
			    err->message);
		g_error_free(err);
		return;
	}
	agent.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (agent.wake_fd < 0) {
		int e = errno;

		slurm_error("migrate: JobId=%u StepId=%u: eventfd: %s; the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id,
			    g_strerror(e));
		return;
	}
	agent.events = g_async_queue_new_full(rank_event_free);

	rc = agent.reg(&code, 1, NULL, 0, checkpoint_complete_cb, reg_cb,
		       NULL);
	if (rc == PMIX_SUCCESS && !wait_flag(&agent.reg_done))
		rc = PMIX_ERR_TIMEOUT;
	else if (rc == PMIX_SUCCESS)
		rc = agent.reg_status;
	if (rc != PMIX_SUCCESS) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot register for PMIX_JCTRL_CHECKPOINT_COMPLETE: status %d; the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id, rc);
		return;
	}
	agent.registered = true;
	if (smig_spank.conf->image_store_local)
		rx_start();
	agent.thread = g_thread_try_new("smig-agent", agent_main, NULL, &err);
	if (!agent.thread) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot start the agent thread: %s; the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id,
			    err->message);
		g_error_free(err);
	}
}

void smig_agent_report(spank_t sp, const char *why)
{
	const smig_conf_t *conf = smig_spank.conf;
	const char *node = getenv("SLURMD_NODENAME");
	smig_msg_t *reply;
	GVariantBuilder b;
	GError *err = NULL;

	agent.node = g_strdup(node && *node ? node : g_get_host_name());
	if (!conf || !local_ranks(sp)) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot tell the balancer that the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id);
		goto out;
	}
	agent.auth = smig_auth_munge_new(conf->munge_socket, &err);
	if (agent.auth)
		agent.fd = smig_wire_connect(conf->balancer_addr, conf->port,
					     CONNECT_TIMEOUT_MS, &err);
	if (!agent.auth || agent.fd < 0) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot tell the balancer that the step runs without migration: %s",
			    smig_spank.job_id, smig_spank.step_id,
			    err->message);
		g_error_free(err);
		goto out;
	}
	hello_start(&b);
	g_variant_builder_add(&b, "{sv}", "error", g_variant_new_string(why));
	/* Its answer says it was read: then closing loses nothing. */
	if (send_msg(SMIG_MSG_HELLO_AGENT, &b)) {
		reply = smig_wire_recv(agent.fd, agent.auth, RECV_TIMEOUT_MS,
				       &err);
		if (!reply) {
			slurm_error("migrate: JobId=%u StepId=%u: no answer from the balancer to the report that the step runs without migration: %s",
				    smig_spank.job_id, smig_spank.step_id,
				    err->message);
			g_clear_error(&err);
		}
		smig_msg_free(reply);
	}
out:
	if (agent.fd >= 0)
		close(agent.fd);
	agent.fd = -1;
	g_clear_pointer(&agent.auth, smig_auth_free);
	g_clear_pointer(&agent.ranks, g_free);
	g_clear_pointer(&agent.node, g_free);
	agent.nranks = 0;
}

void smig_agent_stop(void)
{
	gint64 end = g_get_monotonic_time() + PMIX_WAIT_US;

	g_atomic_int_set(&agent.stopping, 1);
	/* No new rank events: the handler lives in this plugin. */
	if (agent.registered) {
		agent.dereg_done = false;
		if (agent.dereg(agent.hdlr_ref, dereg_cb, NULL) ==
		    PMIX_SUCCESS && !wait_flag(&agent.dereg_done))
			slurm_error("migrate: JobId=%u StepId=%u: PMIx did not confirm the removal of the event handler",
				    smig_spank.job_id, smig_spank.step_id);
		agent.registered = false;
	}
	if (agent.thread) {
		smig_spank_wake(agent.wake_fd);
		g_thread_join(agent.thread);
		agent.thread = NULL;
	}
	if (agent.rx_thread) {
		g_thread_join(agent.rx_thread);
		agent.rx_thread = NULL;
	}
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
	g_clear_pointer(&agent.events, g_async_queue_unref);
	if (agent.wake_fd >= 0)
		close(agent.wake_fd);
	agent.wake_fd = -1;
	g_clear_pointer(&agent.auth, smig_auth_free);
	g_clear_pointer(&agent.ranks, g_free);
	g_clear_pointer(&agent.node, g_free);
	g_clear_pointer(&agent.sig_done, g_free);
	g_clear_pointer(&agent.restored, g_free);
	agent.sig_deadline = 0;
	agent.nranks = 0;
}

/* restore_gen - SLURM_MIGRATE_RESTORE_GEN of the step: 0 none, or G */
static int restore_gen(spank_t sp, uint64_t *gen, char *errbuf, size_t errlen)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD];
	char val[64] = "";
	size_t n = 0;
	int rc;

	*gen = 0;
	if (spank_getenv(sp, "SLURM_MIGRATE_RESTORE_GEN", val, sizeof(val)) !=
	    ESPANK_SUCCESS || !val[0] || !strcmp(val, "none"))
		return 0;
	if (strcmp(val, "last")) {
		if (!g_ascii_string_to_unsigned(val, 10, 1, UINT64_MAX, gen,
						NULL)) {
			snprintf(errbuf, errlen, "SLURM_MIGRATE_RESTORE_GEN=%s: not a generation (a number >= 1, last or none)",
				 val);
			return -EINVAL;
		}
		return 0;
	}
	rc = smig_store_good_read(smig_spank.image_dir, gens, &n, errbuf,
				  errlen);
	if (rc < 0)
		return rc;
	if (!n) {
		snprintf(errbuf, errlen, "SLURM_MIGRATE_RESTORE_GEN=last: no good generation recorded in %s/%s",
			 smig_spank.image_dir, SMIG_STORE_MANIFEST);
		return -ENOENT;
	}
	*gen = gens[n - 1];
	return 0;
}

/*
 * restore_file - write the payload of rank's image of gen into ckpt
 * (temporary name, owner uid/gid, 0600, fsync, rename)
 */
static int restore_file(uint32_t rank, uint64_t gen, const char *ckpt,
			uid_t uid, gid_t gid, char *errbuf, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	smig_image_hdr_t hdr;
	void *payload = NULL;
	size_t off = 0;
	int fd, rc;

	if (smig_image_path(path, sizeof(path), smig_spank.image_dir, rank,
			    gen) < 0 ||
	    snprintf(tmp, sizeof(tmp), "%s.restore", ckpt) >= (int) sizeof(tmp)) {
		snprintf(errbuf, errlen, "%s: path too long", ckpt);
		return -ENAMETOOLONG;
	}
	rc = smig_image_read(path, &hdr, &payload, errbuf, errlen);
	if (rc < 0)
		return rc;
	if (hdr.job_id != smig_spank.job_id || hdr.rank != rank ||
	    hdr.generation != gen) {
		snprintf(errbuf, errlen, "%.200s: header says job %u rank %u generation %" PRIu64 ", expected job %u rank %u generation %" PRIu64,
			 path, hdr.job_id, hdr.rank, hdr.generation,
			 smig_spank.job_id, rank, gen);
		free(payload);
		return SMIG_IMAGE_EINVAL;
	}
	if (unlink(tmp) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: unlink: %s", tmp, g_strerror(-rc));
		free(payload);
		return rc;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || fchown(fd, uid, gid) < 0)
		goto fail;
	while (off < hdr.payload_len) {
		ssize_t n = write(fd, (char *) payload + off,
				  hdr.payload_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		off += n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, ckpt) < 0)
		goto fail;
	free(payload);
	return 0;
fail:
	rc = -errno;
	snprintf(errbuf, errlen, "%.1000s: writing %" PRIu64 " bytes of %.1000s: %s", tmp,
		 hdr.payload_len, path, g_strerror(-rc));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(payload);
	return rc;
}

int smig_agent_task_init(spank_t sp)
{
	char ckpt[PATH_MAX], errbuf[PATH_MAX + 256] = "";
	uint32_t rank;
	uint64_t gen;
	uid_t uid;
	gid_t gid;
	int rc;

	if (smig_spank.req.capture != SMIG_CAPTURE_SIGNAL ||
	    !smig_spank.image_dir)
		return 0;
	if (spank_get_item(sp, S_TASK_GLOBAL_ID, &rank) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot read the task's rank and user; capture=signal needs them",
			    smig_spank.job_id, smig_spank.step_id);
		return -1;
	}
	if (smig_checkpoint_path(ckpt, sizeof(ckpt), rank) < 0 ||
	    spank_setenv(sp, "SLURM_MIGRATE_CHECKPOINT_FILE", ckpt, 1) !=
	    ESPANK_SUCCESS) {
		slurm_error("migrate: JobId=%u StepId=%u rank=%u: cannot set SLURM_MIGRATE_CHECKPOINT_FILE",
			    smig_spank.job_id, smig_spank.step_id, rank);
		return -1;
	}
	rc = restore_gen(sp, &gen, errbuf, sizeof(errbuf));
	/* A fresh start must not find an older step's state. */
	if (rc == 0 && !gen && unlink(ckpt) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(errbuf, sizeof(errbuf), "%s: unlink: %s", ckpt,
			 g_strerror(-rc));
	}
	if (rc == 0 && gen)
		rc = restore_file(rank, gen, ckpt, uid, gid, errbuf,
				  sizeof(errbuf));
	if (rc < 0) {
		slurm_error("migrate: JobId=%u StepId=%u rank=%u: cannot restore the checkpoint file: %s",
			    smig_spank.job_id, smig_spank.step_id, rank,
			    errbuf);
		return -1;
	}
	if (gen)
		slurm_verbose("migrate: JobId=%u StepId=%u rank=%u: generation %" PRIu64 " restored into %s",
			      smig_spank.job_id, smig_spank.step_id, rank, gen,
			      ckpt);
	return 0;
}
