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

static void builder_ids(const smig_agent_t *a, GVariantBuilder *b)
{
	g_variant_builder_init(b, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(b, "{sv}", "job", g_variant_new_uint32(a->job_id));
	g_variant_builder_add(b, "{sv}", "step",
			      g_variant_new_uint32(a->step_id));
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
 */
static bool send_msg(smig_agent_t *a, smig_msg_type_t type, GVariantBuilder *b)
{
	if (send_body(a, type, g_variant_builder_end(b)))
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
		GVariantBuilder b;
		smig_msg_t *msg;

		builder_ids(a, &b);
		g_variant_builder_add(&b, "{sv}", "status",
				      g_variant_new_int32(-1));
		msg = smig_msg_new(SMIG_MSG_BYE, g_variant_builder_end(&b));
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
	GVariantBuilder b;
	GArray *ranks;

	if (a->fd < 0 || !a->nrestored)
		return;
	ranks = g_array_new(false, false, sizeof(uint32_t));
	for (uint32_t i = 0; i < a->nranks; i++)
		if (a->restored[i])
			g_array_append_val(ranks, a->ranks[i]);
	builder_ids(a, &b);
	g_variant_builder_add(&b, "{sv}", "gen",
			      g_variant_new_uint64(a->restored_gen));
	g_variant_builder_add(&b, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks->data, ranks->len,
							sizeof(uint32_t)));
	g_array_free(ranks, true);
	send_msg(a, SMIG_MSG_RESTORED, &b);
}

void smig_agent_restored(smig_agent_t *a, uint32_t rank, uint64_t gen)
{
	for (uint32_t i = 0; i < a->nranks; i++) {
		if (a->ranks[i] != rank || a->restored[i])
			continue;
		a->restored[i] = true;
		a->nrestored++;
		a->restored_gen = MAX(a->restored_gen, gen);
		smig_cverbose(CTX(a), "rank=%u: past smig_register(), generation %" PRIu64 " restored (0: a fresh start); %u of %u ranks on this node",
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
	GVariantBuilder b;

	if (!current(a, rank, gen))
		return;
	builder_ids(a, &b);
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&b, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&b, "{sv}", "pause_at",
			      g_variant_new_uint64(pause_at));
	send_msg(a, SMIG_MSG_COUNT, &b);
}

void smig_agent_done(smig_agent_t *a, uint32_t rank, uint64_t gen,
		     int32_t status, uint64_t bytes, const char *msg)
{
	char errbuf[512] = "";
	GVariantBuilder b;

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
	builder_ids(a, &b);
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&b, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&b, "{sv}", "status",
			      g_variant_new_int32(status));
	g_variant_builder_add(&b, "{sv}", "bytes", g_variant_new_uint64(bytes));
	g_variant_builder_add(&b, "{sv}", "msg", g_variant_new_string(msg));
	send_msg(a, SMIG_MSG_DONE, &b);
}

/*
 * handoff - the balancer asks this agent to hand the image of one of its
 * ranks to the agent of another node (MigrateImageStore=local); the
 * outcome goes back to the balancer as HANDOFF
 */
static void handoff(smig_agent_t *a, const smig_msg_t *msg, uint64_t gen)
{
	const char *addr = NULL, *to = NULL;
	char errbuf[512] = "";
	uint32_t rank, port;
	GVariantBuilder b;
	int32_t status;

	if (!smig_msg_get_u32(msg, "rank", &rank) || !local_rank(a, rank) ||
	    !smig_msg_get_str(msg, "addr", &addr) ||
	    !smig_msg_get_str(msg, "to_node", &to) ||
	    !smig_msg_get_u32(msg, "port", &port) || !port ||
	    port > UINT16_MAX) {
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
	builder_ids(a, &b);
	g_variant_builder_add(&b, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&b, "{sv}", "rank", g_variant_new_uint32(rank));
	g_variant_builder_add(&b, "{sv}", "status",
			      g_variant_new_int32(status));
	g_variant_builder_add(&b, "{sv}", "msg",
			      g_variant_new_string(errbuf));
	send_msg(a, SMIG_MSG_HANDOFF, &b);
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
 * check_msg - msg is a PREPARE, CAPTURE, COMMIT, ABORT or HANDOFF of this
 * step with gen > 0; all but PREPARE about the capture in progress
 * OUT gen - its generation
 */
static bool check_msg(smig_agent_t *a, const smig_msg_t *msg, uint64_t *gen)
{
	const char *what = smig_msg_type_name(msg->type);
	uint32_t job, step;

	if (msg->type != SMIG_MSG_PREPARE && msg->type != SMIG_MSG_CAPTURE &&
	    msg->type != SMIG_MSG_COMMIT && msg->type != SMIG_MSG_ABORT &&
	    msg->type != SMIG_MSG_HANDOFF) {
		smig_cerror(CTX(a), "unexpected %s from the balancer, ignored",
			    what);
		return false;
	}
	if (!smig_msg_get_u32(msg, "job", &job) ||
	    !smig_msg_get_u32(msg, "step", &step) ||
	    !smig_msg_get_u64(msg, "gen", gen) ||
	    job != a->job_id || step != a->step_id || *gen == 0) {
		smig_cerror(CTX(a), "%s from the balancer without job/step of this step or gen > 0, ignored",
			    what);
		return false;
	}
	smig_cdebug(CTX(a), "received %s gen=%" PRIu64, what, *gen);
	/* Only PREPARE starts a capture; the rest must be about that one. */
	if (msg->type != SMIG_MSG_PREPARE &&
	    (!a->capture_gen || *gen != a->capture_gen)) {
		smig_cerror(CTX(a), "%s for generation %" PRIu64 " but the capture in progress is %" PRIu64 ", ignored",
			    what, *gen, a->capture_gen);
		return false;
	}
	return true;
}

/* handle_msg - one message from the balancer */
static void handle_msg(smig_agent_t *a, const smig_msg_t *msg)
{
	const char *s1 = NULL, *s2 = NULL;
	uint64_t gen, u64;
	uint32_t u32;
	bool stop;

	if (!from_balancer(a, msg))
		return;
	if (msg->type == SMIG_MSG_REFUSED) {
		smig_msg_get_str(msg, "what", &s1);
		smig_msg_get_str(msg, "reason", &s2);
		smig_cerror(CTX(a), "the balancer refused %s: %s",
			    s1 ? s1 : "?", s2 ? s2 : "?");
		return;
	}
	if (!check_msg(a, msg, &gen))
		return;
	switch (msg->type) {
	case SMIG_MSG_PREPARE:
		if (!smig_msg_get_u32(msg, "timeout_ms", &u32)) {
			smig_cerror(CTX(a), "PREPARE without timeout_ms (u), ignored");
			return;
		}
		a->capture_gen = gen;
		a->tried_gen = MAX(a->tried_gen, gen);
		a->ops.notify(a->host, SMIG_AGENT_PREPARE, gen, u32);
		break;
	case SMIG_MSG_CAPTURE:
		if (!smig_msg_get_u64(msg, "target", &u64)) {
			smig_cerror(CTX(a), "CAPTURE without target (t), ignored");
			return;
		}
		a->ops.notify(a->host, SMIG_AGENT_CAPTURE, gen, u64);
		break;
	case SMIG_MSG_COMMIT:
		if (!smig_msg_get_bool(msg, "stop", &stop)) {
			smig_cerror(CTX(a), "COMMIT without stop (b), ignored");
			return;
		}
		a->capture_gen = 0;
		a->good_gen = MAX(a->good_gen, gen);
		if (stop)
			a->ending = true;
		if (a->ops.image_commit)
			a->ops.image_commit(a->host, gen);
		a->ops.notify(a->host, SMIG_AGENT_COMMIT, gen, stop);
		break;
	case SMIG_MSG_HANDOFF:
		handoff(a, msg, gen);
		break;
	default:	/* ABORT */
		smig_msg_get_str(msg, "reason", &s1);
		smig_cverbose(CTX(a), "capture of generation %" PRIu64 " aborted: %s",
			      gen, s1 ? s1 : "no reason given");
		a->capture_gen = 0;
		a->ops.notify(a->host, SMIG_AGENT_ABORT, gen, 0);
		break;
	}
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

/* hello_start - HELLO_AGENT's ids, node and ranks into b */
static void hello_start(const smig_agent_t *a, GVariantBuilder *b)
{
	builder_ids(a, b);
	g_variant_builder_add(b, "{sv}", "node", g_variant_new_string(a->node));
	g_variant_builder_add(b, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							a->ranks, a->nranks,
							sizeof(uint32_t)));
}

static bool say_hello(smig_agent_t *a)
{
	GVariantBuilder b;

	hello_start(a, &b);
	if (a->handoff_port)
		g_variant_builder_add(&b, "{sv}", "handoff_port",
				      g_variant_new_uint32(a->handoff_port));
	/* What this node saw, for a balancer that restarted meanwhile. */
	g_variant_builder_add(&b, "{sv}", "good_gen",
			      g_variant_new_uint64(a->good_gen));
	g_variant_builder_add(&b, "{sv}", "tried_gen",
			      g_variant_new_uint64(a->tried_gen));
	return send_body(a, SMIG_MSG_HELLO_AGENT, g_variant_builder_end(&b));
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
	GVariantBuilder b;

	a->ending = true;
	a->retry_at = 0;
	if (a->fd < 0)
		return;
	builder_ids(a, &b);
	g_variant_builder_add(&b, "{sv}", "status", g_variant_new_int32(0));
	send_body(a, SMIG_MSG_BYE, g_variant_builder_end(&b));
	close(a->fd);
	a->fd = -1;
}

bool smig_agent_report(smig_agent_t *a, const char *why, GError **error)
{
	GVariantBuilder b;
	smig_msg_t *msg, *reply;
	bool ok;

	a->retry_at = 0;
	a->fd = smig_wire_connect(a->balancer_addr, a->port,
				  SMIG_AGENT_CONNECT_TIMEOUT_MS, error);
	if (a->fd < 0)
		return false;
	hello_start(a, &b);
	g_variant_builder_add(&b, "{sv}", "error", g_variant_new_string(why));
	msg = smig_msg_new(SMIG_MSG_HELLO_AGENT, g_variant_builder_end(&b));
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
