/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_capture.c - the capture state machine of one step:
 * PREPARE, CAPTURE, HANDOFF, RELAUNCH, COMMIT or ABORT, the requeue of
 * a job-scope move, and the watchdog of the relaunched step
 *
 * Every change of bal_step_t.cap and of a step's restore watch is made
 * here: the other files start a capture (bal_capture_start*()), pass on
 * what peers report (bal_on_*()) and its deadline (bal_capture_poll()),
 * or end it (bal_capture_abort()).
 */
#include "smig_config.h"

#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_partner.h"

static uint32_t capture_timeout_ms(const smig_balancer_t *b,
				   const bal_step_t *s);
static void capture_relaunch(smig_balancer_t *b, bal_step_t *s);
static void capture_commit_requeue(smig_balancer_t *b, bal_step_t *s);

#define UNHEARD_TRIES	3		/* see bal_capture_abort() */

/* bal_capture_free - free a capture and its plan; NULL: no-op */
void bal_capture_free(bal_capture_t *cap)
{
	if (!cap)
		return;
	smig_plan_free(cap->plan);
	g_free(cap->pause_at);
	g_free(cap->counted);
	g_free(cap->done);
	g_free(cap->handed);
	g_free(cap->hostfile);
	g_free(cap->requeue_exclude);
	g_free(cap);
}

/* Ranks of the capture that have not reached the current phase's mark. */
static char *capture_missing(const bal_step_t *s)
{
	const bal_capture_t *cap = s->cap;
	GString *str = g_string_new(NULL);
	const guint8 *have = cap->phase == PHASE_PREPARE ? cap->counted :
							   cap->done;

	if (cap->phase == PHASE_HANDOFF) {
		for (guint i = 0; i < cap->plan->moves->len; i++) {
			uint32_t r = g_array_index(cap->plan->moves,
						   smig_policy_move_t, i).rank;

			if (r < s->ntasks && !cap->handed[r])
				g_string_append_printf(str, "%s%u",
						       str->len ? "," : "", r);
		}
		return g_string_free(str, FALSE);
	}
	if (cap->phase != PHASE_RELAUNCH)
		for (uint32_t r = 0; r < s->ntasks; r++)
			if (!have[r])
				g_string_append_printf(str, "%s%u",
						       str->len ? "," : "", r);
	return g_string_free(str, FALSE);
}

/*
 * After a failed capture (retry_after set for balancing moves): the next
 * evacuation of the same nodes after one capture timeout (at most
 * MigrateRetryInterval), and the next every= capture at the next every=
 * tick, or after MigrateRetryInterval if that comes first: "every" keeps
 * its promise once the cause is gone (doc/design.md).
 */
static void backoff_after_failure(smig_balancer_t *b, bal_step_t *s,
				  bool evacuate)
{
	int64_t now = bal_now_us();

	if (evacuate)
		s->job->evac_after = now +
				     (int64_t) MIN(b->conf->retry_interval_ms,
						   capture_timeout_ms(b, s)) *
				     1000;
	if (s->req.every_ms)
		s->next_periodic = now +
				   (int64_t) MIN(s->req.every_ms,
						 b->conf->retry_interval_ms) *
				   1000;
}

/*
 * Discard the capture in progress: ABORT to the agents, record the reason,
 * back off (backoff_after_failure(); balancing moves: MigrateRetryInterval).
 */
void bal_capture_abort(smig_balancer_t *b, bal_step_t *s, const char *reason,
		       const char *ranks)
{
	bal_capture_t *cap = s->cap;
	smig_msg_abort_t out;
	GVariant *body;

	if (!cap)
		return;
	out = (smig_msg_abort_t) {
		.job = s->job->id, .step = s->step_id, .gen = cap->gen,
		.reason = (char *) reason,
	};
	body = g_variant_ref_sink(smig_msg_abort_body(&out));
	/* srun prepared a relaunch for this generation: it must drop it. */
	if (cap->phase == PHASE_RELAUNCH && s->srun)
		bal_conn_send(s->srun, SMIG_MSG_ABORT, body);
	bal_send_agents(s, SMIG_MSG_ABORT, body);
	g_variant_unref(body);

	smig_cinfo(SMIG_CTX_STEP(s->job->id, s->step_id),
		   "capture aborted gen=%" PRIu64 " reason=%s ranks=%s",
		   cap->gen, reason, ranks && ranks[0] ? ranks : "-");
	bal_job_set_error(s->job, cap->gen, reason, ranks);
	/* Complete images, but no agent recorded them as good (COMMIT). */
	s->job->last_good = cap->good_before;
	bal_history_outcome(s->job, cap, "failed", reason);
	/*
	 * No rank answered PREPARE: they were not listening yet (a PMIx
	 * event reaches only ranks past smig_register(), and an application
	 * may take long to get there). Not worth MigrateRetryInterval the
	 * first UNHEARD_TRIES times: try again after one capture timeout.
	 */
	if (!strcmp(reason, "capture-timeout") &&
	    cap->phase == PHASE_PREPARE && !cap->ncounted &&
	    ++s->unheard <= UNHEARD_TRIES)
		s->job->retry_after = bal_now_us() +
				      (int64_t) MIN(b->conf->retry_interval_ms,
						    capture_timeout_ms(b, s)) *
				      1000;
	else
		s->job->retry_after = bal_now_us() +
				      (int64_t) b->conf->retry_interval_ms *
				      1000;
	backoff_after_failure(b, s, cap->evacuate);
	g_clear_pointer(&s->cap, bal_capture_free);
	bal_job_publish(b, s->job);
}

static uint32_t capture_timeout_ms(const smig_balancer_t *b,
				   const bal_step_t *s)
{
	if (s->req.capture_timeout_ms)
		return s->req.capture_timeout_ms;
	return b->conf->capture_timeout_ms;
}

/*
 * bal_capture_reason - PREPARE's reason, which the ranks' capture callbacks
 * see (smig_capture_info(3)): "drain", "balance", "periodic", "request";
 * "requeue" is given by bal_capture_start_requeue()
 * IN kind - as bal_capture_start_kind()
 * IN plan - its reason tells every= ("periodic") from a person's request
 * RET static string
 */
const char *bal_capture_reason(const char *kind, const smig_plan_t *plan)
{
	if (!strcmp(kind, "drain"))
		return "drain";
	if (!strcmp(kind, "auto"))
		return "balance";
	if (plan->reason && !strcmp(plan->reason, "periodic"))
		return "periodic";
	return "request";
}

/*
 * capture_start - bal_capture_start_kind() with PREPARE's reason and stop
 * IN why  - PREPARE's reason (static)
 * IN stop - PREPARE's stop: the ranks stop once it succeeds (moves, requeue)
 */
static void capture_start(smig_balancer_t *b, bal_step_t *s,
			  smig_plan_t *plan, const char *kind, bool evacuate,
			  const char *why, bool stop)
{
	bal_job_t *j = s->job;
	bal_capture_t *cap = g_new0(bal_capture_t, 1);
	uint32_t timeout = capture_timeout_ms(b, s);
	smig_msg_prepare_t out;

	/*
	 * A failed generation's images may be left on disk: never reuse its
	 * number, so a stale image can never pass for a new one.
	 */
	cap->gen = MAX(j->last_good, j->last_tried) + 1;
	cap->good_before = j->last_good;
	j->last_tried = cap->gen;
	cap->phase = PHASE_PREPARE;
	cap->deadline = bal_now_us() + (int64_t) timeout * 1000;
	cap->plan = plan;
	cap->pause_at = g_new0(uint64_t, s->ntasks);
	cap->counted = g_new0(guint8, s->ntasks);
	cap->done = g_new0(guint8, s->ntasks);
	cap->evacuate = evacuate;
	s->cap = cap;
	if (plan->moves->len)
		cap->hist_id = bal_history_add(j, s, kind, plan, cap->gen,
					       "pending")->id;
	/* A restarted balancer must never hand out this number again. */
	bal_state_sync(b);

	smig_cverbose(SMIG_CTX_STEP(j->id, s->step_id),
		      "capture gen=%" PRIu64 " timeout_ms=%u for %s", cap->gen,
		      timeout, plan->text ? plan->text : "");
	out = (smig_msg_prepare_t) {
		.job = j->id, .step = s->step_id, .gen = cap->gen,
		.timeout_ms = timeout,
		.reason = (char *) why, .has_reason = true,
		.stop = stop, .has_stop = true,
	};
	bal_send_agents(s, SMIG_MSG_PREPARE, smig_msg_prepare_body(&out));
}

/*
 * bal_capture_start_kind - start a new generation of a step to carry out
 * plan; a plan with moves goes to the job's history as a decision of this
 * kind
 * IN plan     - taken
 * IN kind     - "drain", "auto", "request" (copied)
 * IN evacuate - ranks leave nodes (drain, down, fail, health): a failure
 *               delays the next try of the same nodes (evac_after)
 */
void bal_capture_start_kind(smig_balancer_t *b, bal_step_t *s,
			    smig_plan_t *plan, const char *kind, bool evacuate)
{
	capture_start(b, s, plan, kind, evacuate,
		      bal_capture_reason(kind, plan), plan->moves->len > 0);
}

/*
 * bal_capture_start - a capture asked for by a person (REQUEST) or by
 * every=: history kind "request"
 * IN plan - taken
 */
void bal_capture_start(smig_balancer_t *b, bal_step_t *s, smig_plan_t *plan)
{
	bal_capture_start_kind(b, s, plan, "request", false);
}

/* The job-scope capture just started, as one entry of the job's history. */
static void requeue_history(bal_job_t *j, const bal_step_t *s,
			    const char *from)
{
	bal_capture_t *cap = s->cap;
	bal_decision_t *e = bal_history_add(j, s, "requeue", cap->plan, cap->gen,
					    "pending");

	g_free(e->ranks);
	e->ranks = g_strdup("all");
	g_free(e->from);
	e->from = g_strdup(from);
	g_free(e->to);
	e->to = g_strdup("requeue");
	g_free(e->strategy);
	e->strategy = g_strdup("job-scope");
	cap->hist_id = e->id;
}

/*
 * bal_capture_start_requeue - a job-scope move (an evacuation): capture
 * every rank where it is, then requeue the job without the nodes to leave
 * (capture_commit_requeue())
 * IN plan    - moves nobody (taken)
 * IN exclude - the nodes to leave for Slurm, "node2,node3" (taken)
 * IN from    - the same nodes for the history, "node2+node3" (borrowed)
 */
void bal_capture_start_requeue(smig_balancer_t *b, bal_step_t *s,
			       smig_plan_t *plan, char *exclude,
			       const char *from)
{
	/* The ranks are ended by the requeue once the capture succeeds. */
	capture_start(b, s, plan, "request", false, "requeue", true);
	s->cap->requeue_exclude = exclude;
	requeue_history(s->job, s, from);
	s->cap->evacuate = true;
}

/* All ranks counted: capture at the highest pause point. */
static void capture_all_counted(smig_balancer_t *b, bal_step_t *s)
{
	bal_capture_t *cap = s->cap;
	uint64_t target = 0;
	smig_msg_capture_t out;

	for (uint32_t r = 0; r < s->ntasks; r++)
		target = MAX(target, cap->pause_at[r]);
	cap->phase = PHASE_CAPTURE;
	bal_state_sync(b);
	smig_cverbose(SMIG_CTX_STEP(s->job->id, s->step_id),
		      "capture gen=%" PRIu64 " target=%" PRIu64, cap->gen,
		      target);
	out = (smig_msg_capture_t) {
		.job = s->job->id, .step = s->step_id, .gen = cap->gen,
		.target = target,
	};
	bal_send_agents(s, SMIG_MSG_CAPTURE, smig_msg_capture_body(&out));
}

/*
 * commit_partners - MigratePartnerCopies=yes with a node-local store: the
 * COMMIT of a generation the ranks go on from names, to each agent, the
 * partner that gets copies of its ranks' images (smig_partner_pick(): the
 * next node of the allocation whose agent has a hand-off receiver).
 * RET false if the step has no such node (every agent then gets out as it is)
 */
static bool commit_partners(bal_step_t *s, const smig_msg_commit_t *out)
{
	bool *usable = g_new0(bool, s->nnodes ? s->nnodes : 1);
	bool any = false;

	for (uint32_t i = 0; i < s->nnodes; i++) {
		bal_agent_t *a = bal_step_agent_on(s, i);

		usable[i] = a && a->addr && a->handoff_port;
		any = any || usable[i];
	}
	for (guint i = 0; any && i < s->agents->len; i++) {
		bal_agent_t *a = g_ptr_array_index(s->agents, i);
		smig_msg_commit_t m = *out;
		bal_agent_t *to = NULL;
		uint32_t p;

		if (!a->conn)
			continue;
		p = smig_partner_pick(usable, s->nnodes, a->node_idx);
		if (p != SMIG_PARTNER_NONE)
			to = bal_step_agent_on(s, p);
		if (to && bal_step_agent_on(s, a->node_idx) == a) {
			m.partner = to->node;
			m.has_partner = true;
			m.partner_addr = to->addr;
			m.has_partner_addr = true;
			m.partner_port = to->handoff_port;
			m.has_partner_port = true;
		}
		bal_conn_send(a->conn, SMIG_MSG_COMMIT,
			      smig_msg_commit_body(&m));
	}
	g_free(usable);
	return any;
}

/*
 * A capture for later is complete: the ranks go on where they are
 * (COMMIT stop=false), the generation is the job's last good one.
 */
static void capture_commit_stay(smig_balancer_t *b, bal_step_t *s)
{
	bal_capture_t *cap = s->cap;
	smig_msg_commit_t out = {
		.job = s->job->id, .step = s->step_id, .gen = cap->gen,
		.stop = false,
	};

	if (!b->conf->partner_copies || !commit_partners(s, &out))
		bal_send_agents(s, SMIG_MSG_COMMIT,
				smig_msg_commit_body(&out));
	smig_cinfo(SMIG_CTX_STEP(s->job->id, s->step_id),
		   "captured gen=%" PRIu64 " reason=%s", cap->gen,
		   cap->plan->reason);
	if (s->req.every_ms)
		s->next_periodic = bal_now_us() +
				   (int64_t) s->req.every_ms * 1000;
	g_clear_pointer(&s->cap, bal_capture_free);
	bal_job_publish(b, s->job);
}

/* A plan in which nobody moves, for a capture for later. RET owned */
smig_plan_t *bal_plan_stay(const char *reason)
{
	smig_plan_t *plan = g_new0(smig_plan_t, 1);

	plan->moves = g_array_new(FALSE, TRUE, sizeof(smig_policy_move_t));
	plan->reason = g_strdup(reason);
	plan->text = g_strdup("no rank moves");
	return plan;
}

/*
 * Node-local store: each moving rank's image goes from the agent of its
 * node to the agent of its target node (HANDOFF), which writes and verifies
 * it; only then may srun relaunch (nothing is lost if a node dies now).
 */
static void capture_handoff(smig_balancer_t *b, bal_step_t *s)
{
	bal_capture_t *cap = s->cap;
	smig_msg_handoff_t out;

	cap->phase = PHASE_HANDOFF;
	cap->handed = g_new0(guint8, s->ntasks);
	cap->deadline = bal_now_us() +
			(int64_t) capture_timeout_ms(b, s) * 1000;
	for (guint i = 0; i < cap->plan->moves->len; i++) {
		smig_policy_move_t *m = &g_array_index(cap->plan->moves,
						       smig_policy_move_t, i);
		bal_agent_t *from = m->rank < s->ntasks ?
				    s->rank_agent[m->rank] : NULL;
		bal_agent_t *to = m->to < s->nnodes ?
				  bal_step_agent_on(s, m->to) : NULL;
		char *r;

		if (!from || !from->conn || !to || !to->addr) {
			r = g_strdup_printf("%u", m->rank);
			bal_capture_abort(b, s, "handoff-failed", r);
			g_free(r);
			return;
		}
		out = (smig_msg_handoff_t) {
			.job = s->job->id, .step = s->step_id,
			.gen = cap->gen, .rank = m->rank,
			.to_node = to->node, .has_to_node = true,
			.addr = to->addr, .has_addr = true,
			.port = to->handoff_port, .has_port = true,
		};
		bal_conn_send(from->conn, SMIG_MSG_HANDOFF,
			      smig_msg_handoff_body(&out));
		cap->nhandoff++;
		smig_cverbose(SMIG_CTX_STEP(s->job->id, s->step_id),
			      "gen=%" PRIu64 " hand-off of rank %u %s->%s",
			      cap->gen, m->rank, from->node, to->node);
	}
	if (!cap->nhandoff)
		capture_relaunch(b, s);
}

/* All images good: tell srun the new mapping. */
static void capture_all_done(smig_balancer_t *b, bal_step_t *s)
{
	bal_capture_t *cap = s->cap;

	s->job->last_good = cap->gen;
	if (cap->requeue_exclude) {
		capture_commit_requeue(b, s);
		return;
	}
	if (!cap->plan->moves->len) {
		/* A capture for later (every=, REQUEST): nobody moves. */
		capture_commit_stay(b, s);
		return;
	}
	if (bal_step_store_local(s)) {
		capture_handoff(b, s);
		return;
	}
	capture_relaunch(b, s);
}

/* Images are where the moved ranks will restore: tell srun the mapping. */
static void capture_relaunch(smig_balancer_t *b, bal_step_t *s)
{
	bal_capture_t *cap = s->cap;
	uint32_t *node_of = g_new(uint32_t, s->ntasks);
	GString *hf = g_string_new(NULL);
	smig_msg_relaunch_t out;

	for (uint32_t r = 0; r < s->ntasks; r++)
		node_of[r] = s->rank_agent[r]->node_idx;
	for (guint i = 0; i < cap->plan->moves->len; i++) {
		smig_policy_move_t *m = &g_array_index(cap->plan->moves,
						       smig_policy_move_t, i);

		if (m->rank < s->ntasks && m->to < s->nnodes)
			node_of[m->rank] = m->to;
	}
	for (uint32_t r = 0; r < s->ntasks; r++)
		g_string_append_printf(hf, "%s\n", s->nodes[node_of[r]]);
	g_free(node_of);
	cap->hostfile = g_string_free(hf, FALSE);
	cap->phase = PHASE_RELAUNCH;
	smig_cverbose(SMIG_CTX_STEP(s->job->id, s->step_id),
		      "gen=%" PRIu64 " complete, asking srun to relaunch",
		      cap->gen);
	bal_job_publish(b, s->job);
	bal_state_sync(b);

	if (!s->srun) {
		bal_capture_abort(b, s, "srun-lost", NULL);
		return;
	}
	out = (smig_msg_relaunch_t) {
		.job = s->job->id, .step = s->step_id, .gen = cap->gen,
		.hostfile = cap->hostfile, .reason = cap->plan->reason,
	};
	bal_conn_send(s->srun, SMIG_MSG_RELAUNCH, smig_msg_relaunch_body(&out));
}

/* srun will relaunch: the ranks may stop now. */
static void capture_commit(smig_balancer_t *b, bal_step_t *s)
{
	bal_capture_t *cap = s->cap;
	bal_job_t *j = s->job;
	uint64_t gen = cap->gen;
	char *ranks, *from, *to;
	smig_msg_commit_t out;
	GVariant *body;

	ranks = bal_plan_ranks(cap->plan);
	from = bal_nodes_joined(s, cap->plan, false);
	to = bal_nodes_joined(s, cap->plan, true);
	smig_cinfo(SMIG_CTX_JOB(j->id),
		   "ranks=%s %s->%s gen=%" PRIu64 " reason=%s", ranks, from, to,
		   gen, cap->plan->reason);
	g_free(ranks);
	g_free(from);
	g_free(to);

	/*
	 * The move is recorded (state file) before anyone hears of it: a
	 * balancer restarted from here on knows the step is moving.
	 */
	j->moves++;
	g_free(j->last_move);
	j->last_move = bal_plan_move_text(s, cap->plan);
	bal_history_outcome(j, cap, "moved", NULL);
	/*
	 * The windows describe the old placement: start afresh (the
	 * measured gain and the next decision wait for a full new window).
	 */
	smig_metrics_clear_ranks(j->metrics);
	j->cooldown_until = bal_now_us() + (int64_t) COOLDOWN_WINDOWS *
			    SMIG_METRICS_WINDOW * bal_step_interval_ms(b, s) *
			    1000;
	s->committed = true;
	g_clear_pointer(&s->cap, bal_capture_free);
	bal_job_publish(b, j);

	out = (smig_msg_commit_t) {
		.job = j->id, .step = s->step_id, .gen = gen, .stop = true,
	};
	body = g_variant_ref_sink(smig_msg_commit_body(&out));
	/*
	 * srun first: from its COMMIT on, srun relaunches when the step
	 * ends; the ranks stop on theirs.
	 */
	bal_conn_send(s->srun, SMIG_MSG_COMMIT, body);
	bal_send_agents(s, SMIG_MSG_COMMIT, body);
	g_variant_unref(body);
}

/*
 * The whole job's images are good: the agents record the generation in
 * the manifest (COMMIT stop=false: the ranks run on until Slurm stops
 * them), then the host requeues the job without the bad nodes and
 * bal_release_pass() lets it start again at once. The COMMIT is on the wire
 * before the requeue is asked for, and Slurm's kill reaches the nodes
 * through slurmd later: the agents record it first. Had one not, the
 * restart falls back to the previous good generation (doc/images.md).
 */
static void capture_commit_requeue(smig_balancer_t *b, bal_step_t *s)
{
	bal_capture_t *cap = s->cap;
	bal_job_t *j = s->job;
	GError *err = NULL;
	smig_msg_commit_t out = {
		.job = j->id, .step = s->step_id, .gen = cap->gen,
		.stop = false,
	};
	char *from;

	bal_send_agents(s, SMIG_MSG_COMMIT, smig_msg_commit_body(&out));

	if (!b->ops.job_requeue(b->ops.ctx, j->id, cap->requeue_exclude,
				false, &err)) {
		smig_cerror(SMIG_CTX_JOB(j->id),
			    "gen=%" PRIu64 " captured for a job-scope move but not requeued: %s",
			    cap->gen, err->message);
		g_error_free(err);
		bal_job_set_error(j, cap->gen, "requeue-failed", NULL);
		bal_history_outcome(j, cap, "failed", "requeue-failed");
		j->retry_after = bal_now_us() +
				 (int64_t) b->conf->retry_interval_ms * 1000;
		backoff_after_failure(b, s, true);
		g_clear_pointer(&s->cap, bal_capture_free);
		bal_job_publish(b, j);
		return;
	}
	/*
	 * Left for a drain or a health file only, every node of the old run
	 * still has its slurmd and ends its tasks: the release need not wait
	 * for the old sruns (job_release()). A node down or not responding
	 * may hold tasks nobody hears of.
	 */
	j->clean_requeue = !g_strcmp0(cap->plan->reason, "drain") ||
			 !g_strcmp0(cap->plan->reason, "health");
	from = g_strdelimit(g_strdup(cap->requeue_exclude), ",", '+');
	smig_cinfo(SMIG_CTX_JOB(j->id),
		   "requeued gen=%" PRIu64 " exclude=%s reason=%s", cap->gen,
		   cap->requeue_exclude, cap->plan->reason);
	j->moves++;
	g_free(j->last_move);
	j->last_move = g_strdup_printf("ranks=all;from=%s;to=requeue;reason=%s",
				       from, cap->plan->reason);
	g_free(from);
	bal_history_outcome(j, cap, "requeued", NULL);
	j->requeued = true;
	j->released = false;
	s->committed = true;
	g_clear_pointer(&s->cap, bal_capture_free);
	bal_job_publish(b, j);
	bal_state_sync(b);
	bal_release_timer_start(b);
}

/*
 * restore_missing - ranks of a relaunched step not past their restore yet
 * (no agent registered them, or their agent has not said RESTORED)
 * RET new text ("2,3", "" if none), caller g_free()s
 */
static char *restore_missing(const bal_step_t *s)
{
	GString *str = g_string_new(NULL);

	for (uint32_t r = 0; r < s->ntasks; r++) {
		const bal_agent_t *a = s->rank_agent[r];
		bool ok = false;

		for (size_t i = 0; a && a->restored && i < a->nranks; i++)
			if (a->ranks[i] == r)
				ok = a->restored[i];
		if (!ok)
			g_string_append_printf(str, "%s%u", str->len ? "," : "",
					       r);
	}
	return g_string_free(str, FALSE);
}

/* restore_check - end the watch once every rank is past its restore */
static void restore_check(bal_step_t *s)
{
	char *missing;

	if (!s->restore_deadline || !s->registered)
		return;
	missing = restore_missing(s);
	if (!missing[0]) {
		smig_cinfo(SMIG_CTX_STEP(s->job->id, s->step_id),
			   "all %u ranks past their restore of generation %" PRIu64 " (relaunch try %u)",
			   s->ntasks, s->restore_gen, s->restore_try);
		s->restore_deadline = 0;
	}
	g_free(missing);
}

/*
 * bal_restore_watch - a relaunched step registered (HELLO_SRUN restored_gen,
 * prev_step, restore_try): its ranks have MigrateRestoreTimeout to be past
 * their restore, or bal_restore_timeout() has srun relaunch it again. With
 * capture=signal a rank is past its restore once it has read the
 * checkpoint file its agent wrote (the agent reports it: RESTORED).
 */
void bal_restore_watch(smig_balancer_t *b, bal_step_t *s, uint64_t gen,
		       uint32_t try)
{
	s->restore_gen = gen;
	s->restore_try = MAX(try, 1);
	s->restore_deadline = bal_now_us() +
			      (int64_t) b->conf->restore_timeout_ms * 1000;
	restore_check(s);
}

/*
 * bal_restore_timeout - the ranks of a relaunched step were not all past their
 * restore within MigrateRestoreTimeout (a start that hangs: doc/faults.md).
 * srun ends the step and starts it again from the same generation, or,
 * after MigrateRelaunchTries starts, ends it for good; the generation stays
 * in the manifest either way.
 */
static void restore_timeout(smig_balancer_t *b, bal_step_t *s)
{
	bal_job_t *j = s->job;
	bool final = s->restore_try >= b->conf->relaunch_tries;
	char *missing = restore_missing(s);
	char *timeout = smig_format_duration(b->conf->restore_timeout_ms);
	smig_msg_abort_t out;

	s->restore_deadline = 0;
	smig_cerror(SMIG_CTX_STEP(j->id, s->step_id),
		    "ranks %s not past their restore of generation %" PRIu64 " within MigrateRestoreTimeout=%s (relaunch try %u of %u): %s",
		    missing, s->restore_gen, timeout, s->restore_try,
		    b->conf->relaunch_tries,
		    !s->srun ? "no srun to end the step" :
		    final ? "srun ends the step" :
		    "srun ends the step and starts it again");
	bal_history_relaunch(j, s, missing,
			     final ? "failed:restore-timeout" : "relaunched",
			     g_strdup_printf("ranks %s not past their restore within %s (try %u of %u)",
					 missing, timeout, s->restore_try,
					 b->conf->relaunch_tries));
	bal_job_set_error(j, s->restore_gen,
			  final ? "restore-failed" : "restore-timeout", missing);
	if (s->srun) {
		out = (smig_msg_abort_t) {
			.job = j->id, .step = s->step_id,
			.gen = s->restore_gen, .reason = "restore-timeout",
			.ranks = missing, .has_ranks = true,
			.try = s->restore_try, .has_try = true,
			.tries = b->conf->relaunch_tries, .has_tries = true,
			.timeout = timeout, .has_timeout = true,
			.final = final, .has_final = true,
		};
		bal_conn_send(s->srun, SMIG_MSG_ABORT,
			      smig_msg_abort_body(&out));
		/* It ends: no capture, no agent registers for it any more. */
		s->committed = true;
	}
	bal_job_publish(b, j);
	g_free(timeout);
	g_free(missing);
}

/* RESTORED: ranks of an agent's node past their restore */
void bal_on_restored(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_restored_t in;
	GError *err = NULL;
	bal_agent_t *a = c->agent;
	uint32_t *ranks;
	size_t n;
	bal_step_t *s;

	if (!bal_decoded(b, c, m, smig_msg_restored_decode(m, &in, &err), &err))
		return;
	s = bal_bound_step(b, c, m, ROLE_AGENT, in.job, in.step);
	if (!s)
		goto out;
	ranks = in.ranks;
	n = in.n_ranks;
	if (!a->restored)
		a->restored = g_new0(guint8, a->nranks);
	for (size_t k = 0; k < n; k++) {
		size_t i;

		for (i = 0; i < a->nranks && a->ranks[i] != ranks[k]; i++)
			;
		if (i == a->nranks) {
			char *why = g_strdup_printf("ranks=%u: not a rank of node %s",
						    ranks[k], a->node);

			bal_send_refused(b, c, m, s->job->id, why);
			g_free(why);
			break;
		}
		a->restored[i] = 1;
	}
	smig_cdebug(SMIG_CTX_NODE(s->job->id, s->step_id, a->node),
		    "RESTORED gen=%" PRIu64 " ranks=%zu", in.gen, n);
	restore_check(s);
out:
	smig_msg_restored_clear(&in);
}

/* What DONE and an agent's HANDOFF report of one rank (borrowed) */
typedef struct {
	uint32_t job;
	uint32_t step;
	uint64_t gen;
	uint32_t rank;
	int32_t status;
	const char *msg;
} rank_report_t;

/* Rank and gen of COUNT/DONE; RET false if stale or refused */
static bool rank_msg(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m,
		     bal_step_t *s, bal_phase_t phase, uint64_t gen,
		     uint32_t rank)
{
	char *why;
	size_t i;

	for (i = 0; i < c->agent->nranks; i++)
		if (c->agent->ranks[i] == rank)
			break;
	if (i == c->agent->nranks) {
		why = g_strdup_printf("rank=%u is not on node %s", rank,
				      c->agent->node);
		bal_send_refused(b, c, m, s->job->id, why);
		g_free(why);
		return false;
	}
	if (!s->cap || s->cap->gen != gen || s->cap->phase != phase) {
		smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id),
			    "stale %s gen=%" PRIu64 " rank=%u ignored",
			    smig_msg_type_name(m->type), gen, rank);
		return false;
	}
	return true;
}

/* COUNT: a rank's pause point; once every rank counted, CAPTURE */
void bal_on_count(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_count_t in;
	GError *err = NULL;
	uint64_t pause_at;
	uint32_t rank;
	bal_step_t *s;

	if (!bal_decoded(b, c, m, smig_msg_count_decode(m, &in, &err), &err))
		return;
	s = bal_bound_step(b, c, m, ROLE_AGENT, in.job, in.step);
	rank = in.rank;
	pause_at = in.pause_at;
	if (!s || !rank_msg(b, c, m, s, PHASE_PREPARE, in.gen, rank))
		return;
	smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id),
		    "COUNT rank=%u pause_at=%" PRIu64, rank, pause_at);
	if (!s->cap->counted[rank]) {
		s->cap->counted[rank] = 1;
		s->cap->ncounted++;
		s->unheard = 0;
	}
	s->cap->pause_at[rank] = pause_at;
	if (s->cap->ncounted == s->ntasks)
		capture_all_counted(b, s);
}

/*
 * A rank's result for the capture in progress (DONE in PHASE_CAPTURE, a
 * hand-off report in PHASE_HANDOFF): a failure aborts the capture.
 * RET the step if the rank succeeded, NULL otherwise (ignored or aborted)
 */
static bal_step_t *rank_result(smig_balancer_t *b, bal_conn_t *c,
			       const smig_msg_t *m, bal_phase_t phase,
			       const char *what, const char *reason,
			       const rank_report_t *res)
{
	bal_step_t *s = bal_bound_step(b, c, m, ROLE_AGENT, res->job,
				       res->step);
	char *r;

	if (!s || !rank_msg(b, c, m, s, phase, res->gen, res->rank))
		return NULL;
	if (res->status == 0)
		return s;
	smig_cinfo(SMIG_CTX_STEP(s->job->id, s->step_id),
		   "rank=%u %s gen=%" PRIu64 " failed: status=%d %s",
		   res->rank, what, s->cap->gen, res->status,
		   res->msg ? res->msg : "");
	r = g_strdup_printf("%u", res->rank);
	bal_capture_abort(b, s, reason, r);
	g_free(r);
	return NULL;
}

/* DONE: a rank's image is written; once every rank is done, what follows */
void bal_on_done(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_done_t in;
	GError *err = NULL;
	rank_report_t res;
	uint32_t rank;
	bal_step_t *s;

	if (!bal_decoded(b, c, m, smig_msg_done_decode(m, &in, &err), &err))
		return;
	res = (rank_report_t) {
		.job = in.job, .step = in.step, .gen = in.gen,
		.rank = in.rank, .status = in.status, .msg = in.msg,
	};
	rank = in.rank;
	s = rank_result(b, c, m, PHASE_CAPTURE, "capture", "capture-failed",
			&res);
	smig_msg_done_clear(&in);
	if (!s)
		return;
	smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id), "DONE rank=%u", rank);
	if (!s->cap->done[rank]) {
		s->cap->done[rank] = 1;
		s->cap->ndone++;
	}
	if (s->cap->ndone == s->ntasks)
		capture_all_done(b, s);
}

/* An agent says how the hand-off of one of its ranks' images went. */
void bal_on_handoff(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_handoff_t in;
	GError *err = NULL;
	rank_report_t res;
	uint32_t rank;
	bal_step_t *s;

	if (!bal_decoded(b, c, m, smig_msg_handoff_decode(m, &in, &err), &err))
		return;
	/* A report without a status is no success. */
	res = (rank_report_t) {
		.job = in.job, .step = in.step, .gen = in.gen,
		.rank = in.rank, .status = in.has_status ? in.status : -1,
		.msg = in.msg,
	};
	rank = in.rank;
	s = rank_result(b, c, m, PHASE_HANDOFF, "hand-off", "handoff-failed",
			&res);
	smig_msg_handoff_clear(&in);
	if (!s || s->cap->handed[rank])
		return;
	s->cap->handed[rank] = 1;
	smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id),
		    "hand-off of rank %u done", rank);
	if (--s->cap->nhandoff == 0)
		capture_relaunch(b, s);
}

/* RELAUNCH_ACK: srun will relaunch the step, the move commits */
void bal_on_relaunch_ack(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_relaunch_ack_t in;
	GError *err = NULL;
	uint64_t gen;
	bal_step_t *s;

	if (!bal_decoded(b, c, m,
			 smig_msg_relaunch_ack_decode(m, &in, &err), &err))
		return;
	gen = in.gen;
	s = bal_bound_step(b, c, m, ROLE_SRUN, in.job, in.step);
	if (!s)
		return;
	if (!s->cap || s->cap->phase != PHASE_RELAUNCH || s->cap->gen != gen) {
		smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id),
			    "stale RELAUNCH_ACK gen=%" PRIu64 " ignored", gen);
		return;
	}
	capture_commit(b, s);
}

/*
 * bal_capture_poll - the poll's turn at a step's capture in progress, if
 * any: past its deadline, it is aborted (capture-timeout, handoff-timeout)
 * RET true if the step has a capture in progress (the poll does nothing
 *     else with it)
 */
bool bal_capture_poll(smig_balancer_t *b, bal_step_t *s, int64_t now)
{
	char *missing;

	if (!s->cap)
		return false;
	if (now >= s->cap->deadline) {
		missing = capture_missing(s);
		bal_capture_abort(b, s, s->cap->phase == PHASE_HANDOFF ?
				  "handoff-timeout" : "capture-timeout",
				  missing);
		g_free(missing);
	}
	return true;
}

/*
 * bal_restore_poll - the poll's turn at the watch of a relaunched step:
 * past MigrateRestoreTimeout, restore_timeout()
 * RET true while the step is watched (nothing else until its ranks are
 *     back)
 */
bool bal_restore_poll(smig_balancer_t *b, bal_step_t *s, int64_t now)
{
	if (!s->restore_deadline)
		return false;
	if (now >= s->restore_deadline)
		restore_timeout(b, s);
	return true;
}
