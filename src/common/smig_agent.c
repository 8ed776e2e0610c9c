/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_agent.c - the node agent's protocol engine: registration with the
 * balancer and re-registration after a loss, the capture messages, the
 * ranks' answers, RESTORED, SAMPLE and HANDOFF (see smig_agent.h)
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "smig_agent.h"
#include "smig_error.h"
#include "smig_log.h"
#include "smig_msgs.h"

struct smig_agent {
	smig_agent_ops_t ops;
	void *host;
	uint32_t job_id;
	uint32_t step_id;
	char *node;
	uint32_t *ranks;
	uint32_t nranks;
	char *balancer_addr;
	uint16_t port;
	uint16_t handoff_port;
	uint32_t sample_interval_ms;
	smig_auth_t *auth;		/* borrowed */

	int fd;				/* -1: not connected */
	uint64_t capture_gen;		/* 0: no capture */
	char *capture_reason;		/* PREPARE's reason, NULL: none */
	bool capture_stop;		/* PREPARE's stop */
	/* reconnecting (see agent_connect()) */
	int64_t retry_at;		/* monotonic us of the next try; 0: none */
	int64_t lost_at;		/* monotonic us of the loss; 0: none */
	uint32_t backoff_ms;
	uint32_t attempts;		/* failed tries since the loss */
	bool connected_once;
	bool ending;			/* COMMIT stop=true or BYE: no retry */
	uint64_t good_gen;		/* last generation COMMITted here */
	uint64_t tried_gen;		/* last generation PREPAREd here */
	int64_t next_sample;		/* monotonic us; 0: no SAMPLEs */
	/* ranks past their restore (see send_restored()) */
	bool *restored;			/* per index of ranks[] */
	uint32_t nrestored;
	uint64_t restored_gen;		/* the newest generation one named */
};

#define CTX(a) SMIG_CTX_NODE((a)->job_id, (a)->step_id, (a)->node)

/* smig_agent_prepared - what the last PREPARE said (see smig_agent.h) */
const char *smig_agent_prepared(const smig_agent_t *a, bool *stop)
{
	*stop = a->capture_stop;
	return a->capture_reason;
}

const char *smig_agent_op_name(smig_agent_op_t op)
{
	switch (op) {
	case SMIG_AGENT_PREPARE:
		return "prepare";
	case SMIG_AGENT_CAPTURE:
		return "capture";
	case SMIG_AGENT_COMMIT:
		return "commit";
	default:
		return "abort";
	}
}

static int64_t now_us(const smig_agent_t *a)
{
	return a->ops.now ? a->ops.now(a->host) : g_get_monotonic_time();
}

smig_agent_t *smig_agent_new(const smig_agent_cfg_t *cfg,
			     const smig_agent_ops_t *ops, void *host)
{
	smig_agent_t *a = g_new0(smig_agent_t, 1);

	a->ops = *ops;
	a->host = host;
	a->job_id = cfg->job_id;
	a->step_id = cfg->step_id;
	a->node = g_strdup(cfg->node);
	a->nranks = cfg->nranks;
	a->ranks = g_new0(uint32_t, cfg->nranks ? cfg->nranks : 1);
	if (cfg->nranks)
		memcpy(a->ranks, cfg->ranks, cfg->nranks * sizeof(uint32_t));
	a->restored = g_new0(bool, cfg->nranks ? cfg->nranks : 1);
	a->balancer_addr = g_strdup(cfg->balancer_addr);
	a->port = cfg->port;
	a->handoff_port = cfg->handoff_port;
	a->sample_interval_ms = cfg->sample_interval_ms;
	a->auth = cfg->auth;
	a->fd = -1;
	/* The first tick connects. */
	a->retry_at = now_us(a);
	if (a->sample_interval_ms && a->ops.sample)
		a->next_sample = a->retry_at +
				 1000 * (int64_t) MAX(a->sample_interval_ms,
						      100);
	return a;
}

void smig_agent_free(smig_agent_t *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	g_free(a->node);
	g_free(a->capture_reason);
	g_free(a->ranks);
	g_free(a->restored);
	g_free(a->balancer_addr);
	g_free(a);
}

int smig_agent_fd(const smig_agent_t *a)
{
	return a->fd;
}

uint64_t smig_agent_capture_gen(const smig_agent_t *a)
{
	return a->capture_gen;
}

uint64_t smig_agent_good_gen(const smig_agent_t *a)
{
	return a->good_gen;
}

static bool local_rank(const smig_agent_t *a, uint32_t rank)
{
	for (uint32_t i = 0; i < a->nranks; i++)
		if (a->ranks[i] == rank)
			return true;
	return false;
}

/*
 * send_body - one message to the balancer, logged on failure
 * IN body - floating or owned reference, sunk here
 */
static bool send_body(smig_agent_t *a, smig_msg_type_t type, GVariant *body)
{
	smig_msg_t *msg = smig_msg_new(type, body);
	GError *err = NULL;
	bool ok;

	ok = smig_wire_send(a->fd, a->auth, msg, &err);
	if (!ok) {
		smig_cerror(CTX(a), "cannot send %s to the balancer: %s",
			    smig_msg_type_name(type), err->message);
		g_error_free(err);
	} else {
		smig_cdebug2(CTX(a), "sent %s", smig_msg_type_name(type));
	}
	smig_msg_free(msg);
	return ok;
}

static void lost_connection(smig_agent_t *a, const char *why);

/*
 * send_msg - one message to the balancer; the connection is dropped (and
 * retried) on error
 * IN body - floating or owned reference, sunk here
 */
static bool send_msg(smig_agent_t *a, smig_msg_type_t type, GVariant *body)
{
	if (send_body(a, type, body))
		return true;
	lost_connection(a, "send failed");
	return false;
}

/*
 * lost_connection - the balancer is gone: ranks waiting in a capture
 * resume (abort: a capture never outlives the connection that runs it);
 * the agent connects again (agent_connect()) unless the step is ending.
 */
static void lost_connection(smig_agent_t *a, const char *why)
{
	bool retry = !a->ending;
	uint64_t gen = a->capture_gen;

	if (a->fd < 0)
		return;
	smig_cerror(CTX(a), "connection to the balancer lost: %s%s", why,
		    retry ? "; reconnecting" : "; the step is ending");
	/*
	 * A BYE if the socket still takes one (unlogged, best effort): the
	 * balancer takes an agent that closes without BYE for a dead
	 * slurmstepd and has srun end the step.
	 */
	{
		smig_msg_bye_t bye = {
			.job = a->job_id, .step = a->step_id, .status = -1,
		};
		smig_msg_t *msg = smig_msg_bye_encode(&bye);

		smig_wire_send(a->fd, a->auth, msg, NULL);
		smig_msg_free(msg);
	}
	close(a->fd);
	a->fd = -1;
	a->capture_gen = 0;
	if (retry) {
		a->lost_at = now_us(a);
		a->backoff_ms = SMIG_AGENT_RECONNECT_FIRST_MS;
		a->attempts = 0;
		a->retry_at = a->lost_at + 1000 * a->backoff_ms;
	}
	if (gen)
		a->ops.notify(a->host, SMIG_AGENT_ABORT, gen, 0);
}

/*
 * send_restored - RESTORED: every rank of this node that is past its
 * restore so far (all of them each time: a message lost with a connection
 * is made good by the next one, and after a reconnect by agent_connect())
 */
static void send_restored(smig_agent_t *a)
{
	smig_msg_restored_t out;
	GVariant *body;
	GArray *ranks;

	if (a->fd < 0 || !a->nrestored)
		return;
	ranks = g_array_new(false, false, sizeof(uint32_t));
	for (uint32_t i = 0; i < a->nranks; i++)
		if (a->restored[i])
			g_array_append_val(ranks, a->ranks[i]);
	out = (smig_msg_restored_t) {
		.job = a->job_id, .step = a->step_id, .gen = a->restored_gen,
		.ranks = (uint32_t *) ranks->data, .n_ranks = ranks->len,
	};
	body = smig_msg_restored_body(&out);
	g_array_free(ranks, true);
	send_msg(a, SMIG_MSG_RESTORED, body);
}

void smig_agent_restored(smig_agent_t *a, uint32_t rank, uint64_t gen)
{
	for (uint32_t i = 0; i < a->nranks; i++) {
		if (a->ranks[i] != rank || a->restored[i])
			continue;
		a->restored[i] = true;
		a->nrestored++;
		a->restored_gen = MAX(a->restored_gen, gen);
		smig_cverbose(CTX(a), "rank=%u: past its restore (smig_register(), or its checkpoint file read), generation %" PRIu64 " restored (0: a fresh start); %u of %u ranks on this node",
			      rank, gen, a->nrestored, a->nranks);
		send_restored(a);
		return;
	}
}

/* current - an answer of rank for gen belongs to the capture in progress */
static bool current(const smig_agent_t *a, uint32_t rank, uint64_t gen)
{
	if (a->fd < 0)
		return false;
	if (!a->capture_gen || gen != a->capture_gen) {
		smig_cdebug(CTX(a), "rank %u answered for generation %" PRIu64 " but the capture in progress is %" PRIu64 ", ignored",
			    rank, gen, a->capture_gen);
		return false;
	}
	return true;
}

void smig_agent_count(smig_agent_t *a, uint32_t rank, uint64_t gen,
		      uint64_t pause_at)
{
	smig_msg_count_t out = {
		.job = a->job_id, .step = a->step_id, .gen = gen,
		.rank = rank, .pause_at = pause_at,
	};

	if (!current(a, rank, gen))
		return;
	send_msg(a, SMIG_MSG_COUNT, smig_msg_count_body(&out));
}

void smig_agent_done(smig_agent_t *a, uint32_t rank, uint64_t gen,
		     int32_t status, uint64_t bytes, const char *msg)
{
	char errbuf[512] = "";
	smig_msg_done_t out;

	if (!current(a, rank, gen))
		return;
	if (!msg)
		msg = "";
	if (status == 0 && a->ops.image_verify) {
		status = a->ops.image_verify(a->host, rank, gen, &bytes,
					     errbuf, sizeof(errbuf));
		if (status != 0) {
			smig_cerror(CTX(a), "rank=%u generation=%" PRIu64 ": image refused: %s",
				    rank, gen, errbuf);
			msg = errbuf;
		}
	}
	out = (smig_msg_done_t) {
		.job = a->job_id, .step = a->step_id, .gen = gen,
		.rank = rank, .status = status, .bytes = bytes,
		.msg = (char *) msg,
	};
	send_msg(a, SMIG_MSG_DONE, smig_msg_done_body(&out));
}

/*
 * handoff - the balancer asks this agent to hand the image of one of its
 * ranks to the agent of another node (MigrateImageStore=local); the
 * outcome goes back to the balancer as HANDOFF
 */
static void handoff(smig_agent_t *a, const smig_msg_handoff_t *in)
{
	const char *addr = in->addr, *to = in->to_node;
	uint32_t rank = in->rank, port = in->port;
	uint64_t gen = in->gen;
	char errbuf[512] = "";
	smig_msg_handoff_t out;
	int32_t status;

	if (!local_rank(a, rank) || !in->has_addr || !in->has_to_node ||
	    !in->has_port || !port || port > UINT16_MAX) {
		smig_cerror(CTX(a), "HANDOFF without a rank of this node (u), to_node (s), addr (s) or port (u 1-65535), ignored");
		return;
	}
	if (a->ops.handoff) {
		status = a->ops.handoff(a->host, rank, gen, to, addr,
					(uint16_t) port, errbuf,
					sizeof(errbuf));
	} else {
		status = -ENOTSUP;
		snprintf(errbuf, sizeof(errbuf), "node %s: no image hand-off on this node",
			 a->node);
	}
	if (status)
		smig_cerror(CTX(a), "rank=%u generation=%" PRIu64 ": hand-off to node %s failed: %s",
			    rank, gen, to, errbuf);
	else
		smig_cverbose(CTX(a), "rank=%u generation=%" PRIu64 ": image handed off %s->%s",
			      rank, gen, a->node, to);
	if (a->fd < 0)
		return;
	out = (smig_msg_handoff_t) {
		.job = a->job_id, .step = a->step_id, .gen = gen,
		.rank = rank,
		.status = status, .has_status = true,
		.msg = errbuf, .has_msg = true,
	};
	send_msg(a, SMIG_MSG_HANDOFF, smig_msg_handoff_body(&out));
}

static bool from_balancer(smig_agent_t *a, const smig_msg_t *msg)
{
	if (a->ops.from_balancer)
		return a->ops.from_balancer(a->host, msg);
	if (msg->uid == 0)
		return true;
	smig_cerror(CTX(a), "%s from uid=%u ignored: the balancer runs as root",
		    smig_msg_type_name(msg->type), msg->uid);
	return false;
}

/*
 * check_msg - a PREPARE, CAPTURE, COMMIT, ABORT or HANDOFF (msg, decoded:
 * job, step, gen) is of this step with gen > 0; all but PREPARE about the
 * capture in progress
 */
static bool check_msg(smig_agent_t *a, const smig_msg_t *msg, uint32_t job,
		      uint32_t step, uint64_t gen)
{
	const char *what = smig_msg_type_name(msg->type);

	if (job != a->job_id || step != a->step_id || gen == 0) {
		smig_cerror(CTX(a), "%s from the balancer without job/step of this step or gen > 0, ignored",
			    what);
		return false;
	}
	smig_cdebug(CTX(a), "received %s gen=%" PRIu64, what, gen);
	/* Only PREPARE starts a capture; the rest must be about that one. */
	if (msg->type != SMIG_MSG_PREPARE &&
	    (!a->capture_gen || gen != a->capture_gen)) {
		smig_cerror(CTX(a), "%s for generation %" PRIu64 " but the capture in progress is %" PRIu64 ", ignored",
			    what, gen, a->capture_gen);
		return false;
	}
	return true;
}

/* The messages an agent receives, decoded (handle_msg()). */
typedef union {
	smig_msg_refused_t refused;
	smig_msg_prepare_t prepare;
	smig_msg_capture_t capture;
	smig_msg_commit_t commit;
	smig_msg_abort_t abort;
	smig_msg_handoff_t handoff;
} agent_in_t;

/* Is type one of those in agent_in_t? */
static bool agent_receives(smig_msg_type_t type)
{
	return type == SMIG_MSG_REFUSED || type == SMIG_MSG_PREPARE ||
	       type == SMIG_MSG_CAPTURE || type == SMIG_MSG_COMMIT ||
	       type == SMIG_MSG_ABORT || type == SMIG_MSG_HANDOFF;
}

/* handle_msg - one message from the balancer (its schema checked) */
static void handle_msg(smig_agent_t *a, const smig_msg_t *msg)
{
	GError *err = NULL;
	agent_in_t in;

	if (!from_balancer(a, msg))
		return;
	if (!agent_receives(msg->type)) {
		smig_cerror(CTX(a), "unexpected %s from the balancer, ignored",
			    smig_msg_type_name(msg->type));
		return;
	}
	/* Each member starts with its struct: decode by the type. */
	if (!smig_msgs_decode(msg->type, msg, &in, &err)) {
		smig_cerror(CTX(a), "message from the balancer ignored: %s",
			    err->message);
		g_error_free(err);
		return;
	}
	switch (msg->type) {
	case SMIG_MSG_REFUSED:
		smig_cerror(CTX(a), "the balancer refused %s: %s",
			    in.refused.what, in.refused.reason);
		break;
	case SMIG_MSG_PREPARE:
		if (!check_msg(a, msg, in.prepare.job, in.prepare.step,
			       in.prepare.gen))
			break;
		a->capture_gen = in.prepare.gen;
		a->tried_gen = MAX(a->tried_gen, in.prepare.gen);
		g_free(a->capture_reason);
		a->capture_reason = in.prepare.has_reason ?
				    g_strdup(in.prepare.reason) : NULL;
		a->capture_stop = in.prepare.has_stop && in.prepare.stop;
		a->ops.notify(a->host, SMIG_AGENT_PREPARE, in.prepare.gen,
			      in.prepare.timeout_ms);
		break;
	case SMIG_MSG_CAPTURE:
		if (!check_msg(a, msg, in.capture.job, in.capture.step,
			       in.capture.gen))
			break;
		a->ops.notify(a->host, SMIG_AGENT_CAPTURE, in.capture.gen,
			      in.capture.target);
		break;
	case SMIG_MSG_COMMIT:
		if (!check_msg(a, msg, in.commit.job, in.commit.step,
			       in.commit.gen))
			break;
		a->capture_gen = 0;
		a->good_gen = MAX(a->good_gen, in.commit.gen);
		if (in.commit.stop)
			a->ending = true;
		if (a->ops.image_commit)
			a->ops.image_commit(a->host, in.commit.gen);
		if (!in.commit.stop && a->ops.partner_copy &&
		    in.commit.has_partner && in.commit.has_partner_addr &&
		    in.commit.has_partner_port && in.commit.partner_port &&
		    in.commit.partner_port <= UINT16_MAX &&
		    strcmp(in.commit.partner, a->node))
			a->ops.partner_copy(a->host, in.commit.gen,
					    in.commit.partner,
					    in.commit.partner_addr,
					    (uint16_t) in.commit.partner_port);
		a->ops.notify(a->host, SMIG_AGENT_COMMIT, in.commit.gen,
			      in.commit.stop);
		break;
	case SMIG_MSG_HANDOFF:
		if (check_msg(a, msg, in.handoff.job, in.handoff.step,
			      in.handoff.gen))
			handoff(a, &in.handoff);
		break;
	default:	/* ABORT */
		if (!check_msg(a, msg, in.abort.job, in.abort.step,
			       in.abort.gen))
			break;
		smig_cverbose(CTX(a), "capture of generation %" PRIu64 " aborted: %s",
			      in.abort.gen, in.abort.reason);
		a->capture_gen = 0;
		a->ops.notify(a->host, SMIG_AGENT_ABORT, in.abort.gen, 0);
		break;
	}
	smig_msgs_clear(msg->type, &in);
}

void smig_agent_read(smig_agent_t *a)
{
	GError *err = NULL;
	smig_msg_t *msg;

	if (a->fd < 0)
		return;
	msg = smig_wire_recv(a->fd, a->auth, SMIG_AGENT_RECV_TIMEOUT_MS,
			     &err);
	if (!msg && g_error_matches(err, SMIG_ERROR, SMIG_ERROR_SCHEMA)) {
		/* The balancer's bug or another version: this one message is
		 * dropped, the connection and any capture go on. */
		smig_cerror(CTX(a), "message from the balancer ignored: %s",
			    err->message);
		g_error_free(err);
		return;
	}
	if (!msg) {
		lost_connection(a, err->message);
		g_error_free(err);
		return;
	}
	handle_msg(a, msg);
	smig_msg_free(msg);
}

/* hello_ids - HELLO_AGENT's ids, node and ranks (borrowed from a) */
static smig_msg_hello_agent_t hello_ids(const smig_agent_t *a)
{
	return (smig_msg_hello_agent_t) {
		.job = a->job_id, .step = a->step_id, .node = a->node,
		.ranks = a->ranks, .n_ranks = a->nranks,
	};
}

static bool say_hello(smig_agent_t *a)
{
	smig_msg_hello_agent_t out = hello_ids(a);

	out.handoff_port = a->handoff_port;
	out.has_handoff_port = a->handoff_port != 0;
	/* What this node saw, for a balancer that restarted meanwhile. */
	out.good_gen = a->good_gen;
	out.has_good_gen = true;
	out.tried_gen = a->tried_gen;
	out.has_tried_gen = true;
	return send_body(a, SMIG_MSG_HELLO_AGENT,
			 smig_msg_hello_agent_body(&out));
}

/*
 * agent_connect - one try to reach the balancer and register (HELLO_AGENT);
 * on failure the next try is scheduled (backoff from RECONNECT_FIRST_MS,
 * doubling up to RECONNECT_CAP_MS) until RECONNECT_FOR_MS after the loss
 */
static void agent_connect(smig_agent_t *a)
{
	int64_t now = now_us(a);
	GError *err = NULL;

	a->retry_at = 0;
	a->fd = smig_wire_connect(a->balancer_addr, a->port,
				  SMIG_AGENT_CONNECT_TIMEOUT_MS, &err);
	if (a->fd >= 0 && !say_hello(a)) {
		close(a->fd);
		a->fd = -1;
	}
	if (a->fd >= 0) {
		if (!a->connected_once)
			smig_cinfo(CTX(a), "ranks=%u: connected to the balancer at %s:%u (HELLO_AGENT sent)",
				   a->nranks, a->balancer_addr, a->port);
		else
			smig_cinfo(CTX(a), "reconnected to the balancer at %s:%u after %u failed tries (HELLO_AGENT sent, good_gen=%" PRIu64 ")",
				   a->balancer_addr, a->port, a->attempts,
				   a->good_gen);
		a->connected_once = true;
		a->lost_at = 0;
		a->attempts = 0;
		g_clear_error(&err);
		/* Ranks restored before (or while the balancer was away). */
		send_restored(a);
		return;
	}
	if (!a->lost_at) {
		a->lost_at = now;
		a->backoff_ms = SMIG_AGENT_RECONNECT_FIRST_MS;
	}
	a->attempts++;
	if (now - a->lost_at >= 1000 * (int64_t) SMIG_AGENT_RECONNECT_FOR_MS) {
		smig_cerror(CTX(a), "cannot reach the balancer at %s:%u for %u s (%s); no more captures for this step",
			    a->balancer_addr, a->port,
			    SMIG_AGENT_RECONNECT_FOR_MS / 1000,
			    err ? err->message : "registration failed");
		g_clear_error(&err);
		return;
	}
	if (a->attempts == 1)
		smig_cerror(CTX(a), "cannot reach the balancer at %s:%u: %s; retrying for up to %u s",
			    a->balancer_addr, a->port,
			    err ? err->message : "registration failed",
			    SMIG_AGENT_RECONNECT_FOR_MS / 1000);
	g_clear_error(&err);
	a->retry_at = now + 1000 * (int64_t) a->backoff_ms;
	a->backoff_ms = MIN(a->backoff_ms * 2, SMIG_AGENT_RECONNECT_CAP_MS);
}

/* take_sample - one SAMPLE of this node's ranks to the balancer */
static void take_sample(smig_agent_t *a)
{
	GVariant *body;

	if (a->fd < 0 || !(body = a->ops.sample(a->host)))
		return;
	if (!send_body(a, SMIG_MSG_SAMPLE, body))
		lost_connection(a, "send failed");
}

int smig_agent_tick(smig_agent_t *a)
{
	int64_t now = now_us(a), next = -1;

	if (a->fd < 0 && a->retry_at && !a->ending && now >= a->retry_at)
		agent_connect(a);
	if (a->next_sample) {
		if (now >= a->next_sample) {
			take_sample(a);
			a->next_sample += 1000 * (int64_t)
					  MAX(a->sample_interval_ms, 100);
			/* A host that slept long: no burst of samples. */
			if (a->next_sample <= now)
				a->next_sample = now + 1000 * (int64_t)
					MAX(a->sample_interval_ms, 100);
		}
		next = a->next_sample;
	}
	if (a->fd < 0 && a->retry_at && !a->ending &&
	    (next < 0 || a->retry_at < next))
		next = a->retry_at;
	if (next < 0)
		return -1;
	return (int) MIN((MAX(next - now, 0) + 999) / 1000, G_MAXINT);
}

void smig_agent_bye(smig_agent_t *a)
{
	smig_msg_bye_t out = {
		.job = a->job_id, .step = a->step_id, .status = 0,
	};

	a->ending = true;
	a->retry_at = 0;
	if (a->fd < 0)
		return;
	send_body(a, SMIG_MSG_BYE, smig_msg_bye_body(&out));
	close(a->fd);
	a->fd = -1;
}

bool smig_agent_report(smig_agent_t *a, const char *why, GError **error)
{
	smig_msg_hello_agent_t out = hello_ids(a);
	smig_msg_t *msg, *reply;
	bool ok;

	a->retry_at = 0;
	a->fd = smig_wire_connect(a->balancer_addr, a->port,
				  SMIG_AGENT_CONNECT_TIMEOUT_MS, error);
	if (a->fd < 0)
		return false;
	out.error = (char *) why;
	out.has_error = true;
	msg = smig_msg_hello_agent_encode(&out);
	ok = smig_wire_send(a->fd, a->auth, msg, error);
	smig_msg_free(msg);
	if (ok) {
		/* Its answer says it was read: then closing loses nothing. */
		reply = smig_wire_recv(a->fd, a->auth,
				       SMIG_AGENT_RECV_TIMEOUT_MS, error);
		ok = reply != NULL;
		smig_msg_free(reply);
	}
	close(a->fd);
	a->fd = -1;
	a->ending = true;
	return ok;
}
