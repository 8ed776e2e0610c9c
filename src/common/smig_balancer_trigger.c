/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_trigger.c - what starts a move: the poll of node
 * states and deadlines, automatic balancing, and the samples it uses
 */
#include "smig_config.h"

#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_decide.h"

/* The step's sampling interval: its interval=, else migrate.conf's. */
uint32_t bal_step_interval_ms(const smig_balancer_t *b, const bal_step_t *s)
{
	return MAX(s->req.interval_ms ? s->req.interval_ms :
		   b->conf->sample_interval_ms, 1);
}

/*
 * bal_step_plan_balance - the policy engine's plan for a step from its samples
 * (doc/design.md, "Automatic balancing"): a full window of every rank,
 * sampled where it runs now, no agent silent for STALE_SAMPLES intervals.
 * Node flags come from the host now: ranks on nodes to leave move whatever
 * it costs (a forced plan). The host's switch tree, if it has one, gives the
 * distances (smig_decide_input_t.topo); none: one flat network. Usable for
 * requests too (no cooldown here).
 * IN  s      - a registered step with a complete rank map
 * IN  params - the engine's parameters
 * OUT why    - set when no decision is possible (too few or stale
 *              samples, unknown node, engine error); caller g_free()s
 * RET new plan (empty: nothing gains, plan->why says why), caller frees
 *     with smig_plan_free(); NULL with *why set
 */
smig_plan_t *bal_step_plan_balance(smig_balancer_t *b, bal_step_t *s,
				   const smig_policy_params_t *params,
				   int64_t now, char **why)
{
	bal_job_t *j = s->job;
	int64_t interval_us = (int64_t) bal_step_interval_ms(b, s) * 1000;
	smig_decide_input_t in = { 0 };
	smig_policy_node_t *nodes;
	uint32_t *rank_node;
	smig_decide_t *d = NULL;
	smig_plan_t *plan = NULL;
	smig_topology_t *topo = NULL;
	GError *err = NULL;
	int64_t end;

	nodes = g_new0(smig_policy_node_t, s->nnodes);
	rank_node = g_new(uint32_t, s->ntasks);
	for (uint32_t n = 0; n < s->nnodes; n++) {
		nodes[n].name = s->nodes[n];
		nodes[n].slots = s->slots[n];
		if (!b->ops.node_flags(b->ops.ctx, s->nodes[n],
				       &nodes[n].flags)) {
			*why = g_strdup_printf("node %s unknown to the host",
					       s->nodes[n]);
			goto out;
		}
		/* A node-local store hands images only to the step's agents. */
		if (bal_step_store_local(s) && !bal_step_agent_on(s, n))
			nodes[n].slots = 0;
		/* Hot spares (spares=N) wait for nodes that must be left. */
		if (bal_step_node_spare(s, n))
			nodes[n].slots = 0;
	}
	for (uint32_t r = 0; r < s->ntasks; r++)
		rank_node[r] = s->rank_agent[r]->node_idx;
	for (guint i = 0; i < s->agents->len; i++) {
		bal_agent_t *a = g_ptr_array_index(s->agents, i);

		if (!a->last_sample ||
		    now - a->last_sample > STALE_SAMPLES * interval_us) {
			*why = g_strdup_printf("samples of node %s are stale",
					       a->node);
			goto out;
		}
	}
	in.metrics = j->metrics;
	in.nranks = s->ntasks;
	in.rank_node = rank_node;
	in.nodes = nodes;
	in.nnodes = s->nnodes;
	in.min_samples = SMIG_METRICS_WINDOW;
	/* The pair counters run since the ranks started: two intervals of
	 * baseline before the first SAMPLE. */
	in.elapsed = s->first_sample ? (double) (now - s->first_sample +
						 2 * interval_us) / 1e6 : 0;
	in.remaining = HORIZON_S;
	if (b->ops.job_end_time &&
	    b->ops.job_end_time(b->ops.ctx, j->id, &end))
		in.remaining = MAX((double) (end - g_get_real_time() / 1000000),
				   0);
	in.relaunch = RELAUNCH_COST_S;
	in.image_bw = IMAGE_BW;
	if (b->ops.topology)
		topo = b->ops.topology(b->ops.ctx);
	in.topo = topo;
	in.link_bw = smig_link_est_bw(&b->link);
	j->plan_link_bw = 0;
	d = j->metrics ? smig_decide_snapshot(&in, &err) : NULL;
	if (!d) {
		*why = g_strdup(err ? err->message : "no samples yet");
		g_clear_error(&err);
		goto out;
	}
	plan = smig_policy_decide(&d->snap, params, &err);
	if (!plan) {
		*why = g_strdup(err->message);
		g_error_free(err);
	} else {
		smig_decide_adjust(d, params, plan);
		j->plan_link_bw = d->link_bw;
		smig_cdebug(SMIG_CTX_STEP(j->id, s->step_id),
			    "decide: %s remaining=%.0fs: %s: %s", d->text,
			    in.remaining, plan->text, plan->why);
	}
out:
	smig_decide_free(d);
	smig_topology_unref(topo);
	g_free(rank_node);
	g_free(nodes);
	return plan;
}

/*
 * evac_plan - the plan for ranks that must leave: smig_policy_evacuate()
 * or, when the host has a switch tree, smig_policy_evacuate_topo() with
 * the step's node paths and its traffic counters (doc/design.md,
 * "Topology")
 * OUT error - as smig_policy_evacuate()
 * RET new plan or NULL, as smig_policy_evacuate()
 */
static smig_plan_t *evac_plan(smig_balancer_t *b, bal_step_t *s,
			      const smig_policy_node_t *nodes,
			      const uint32_t *rank_node, GError **error)
{
	smig_topology_t *topo = NULL;
	smig_policy_evac_topo_t et = { 0 };
	GArray *edges = NULL;
	uint32_t *paths = NULL;
	smig_plan_t *plan;

	if (b->ops.topology)
		topo = b->ops.topology(b->ops.ctx);
	if (topo && smig_topology_levels(topo)) {
		paths = smig_topology_paths(topo,
					    (const char *const *) s->nodes,
					    s->nnodes, &et.nlevels);
		/* The bytes since the ranks started. */
		edges = smig_decide_edges(s->job->metrics, s->ntasks, 1);
		et.node_switch = paths;
		et.edges = (const smig_policy_edge_t *) edges->data;
		et.nedges = edges->len;
		smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id),
			    "evacuate: %u switch levels, %zu rank pairs with traffic: targets near partners",
			    et.nlevels, et.nedges);
	}
	plan = smig_policy_evacuate_topo(nodes, s->nnodes, rank_node,
					 s->ntasks, &et, error);
	if (edges)
		g_array_unref(edges);
	g_free(paths);
	smig_topology_unref(topo);
	return plan;
}

/*
 * One balancing decision of an auto or advise step with no node to leave,
 * tried when new samples came in, taken at most twice per sampling
 * interval and not within the cooldown after a move: auto starts the move,
 * advise publishes it.
 */
static void step_balance(smig_balancer_t *b, bal_step_t *s, int64_t now)
{
	bal_job_t *j = s->job;
	smig_policy_params_t params;
	smig_plan_t *plan;
	char *why = NULL;

	if ((s->req.mode != SMIG_MODE_AUTO &&
	     s->req.mode != SMIG_MODE_ADVISE) ||
	    j->samples == j->decided_samples || now < j->next_decide ||
	    now < j->cooldown_until)
		return;
	j->decided_samples = j->samples;
	smig_policy_params_init(&params);
	params.hysteresis = AUTO_HYSTERESIS;
	if (s->req.max_moves) {
		if (j->moves >= s->req.max_moves &&
		    s->req.mode == SMIG_MODE_AUTO)
			return;
		params.max_moves = s->req.max_moves -
				   MIN(j->moves, s->req.max_moves);
	}
	plan = bal_step_plan_balance(b, s, &params, now, &why);
	if (!plan) {
		smig_cdebug(SMIG_CTX_STEP(j->id, s->step_id),
			    "no balancing decision: %s", why);
		g_free(why);
		/* No decision on stale or missing samples: no advice. */
		if (j->advice && s->req.mode == SMIG_MODE_ADVISE)
			bal_job_advise(b, s, NULL, false);
		return;
	}
	j->next_decide = now + (int64_t) bal_step_interval_ms(b, s) * 500;
	if (!plan->moves->len) {
		if (j->advice && s->req.mode == SMIG_MODE_ADVISE)
			bal_job_advise(b, s, NULL, false);
		smig_plan_free(plan);
		return;
	}
	if (s->req.mode == SMIG_MODE_ADVISE) {
		bal_job_advise(b, s, plan, false);
		smig_plan_free(plan);
		return;
	}
	if (j->retry_after && now < j->retry_after) {
		char *ranks = bal_plan_ranks(plan);
		char *from = bal_nodes_joined(s, plan, false);
		char *to = bal_nodes_joined(s, plan, true);
		char *skip = g_strdup_printf("a capture failed (last_error=%s): no balancing move for %" PRId64 " s more (MigrateRetryInterval)",
					     j->last_error ? j->last_error : "-",
					     (j->retry_after - now + 999999) /
					     1000000);

		bal_history_skip(j, s, "auto", ranks, from, to, plan->reason,
				 "retry-delay", skip);
		g_free(skip);
		g_free(ranks);
		g_free(from);
		g_free(to);
		smig_plan_free(plan);
		return;
	}
	smig_cverbose(SMIG_CTX_STEP(j->id, s->step_id), "balance: %s (%s)",
		      plan->text, plan->why);
	g_clear_pointer(&j->skipped, g_free);
	bal_capture_start_kind(b, s, plan, "auto", false);
}

/* Ranks of the step on nodes to leave ("2,3"). RET caller g_free()s */
static char *leaving_ranks(const bal_step_t *s, const smig_policy_node_t *nodes,
			   const uint32_t *rank_node)
{
	GString *str = g_string_new(NULL);

	for (uint32_t r = 0; r < s->ntasks; r++)
		if (nodes[rank_node[r]].flags != SMIG_NODE_OK)
			g_string_append_printf(str, "%s%u",
					       str->len ? "," : "", r);
	return g_string_free(str, FALSE);
}

/*
 * step_evacuate - ranks of s are on nodes to leave (drain, down, fail,
 * health): start their move (or a job-scope move), advise it, or say why
 * not. Never held by retry_after: a failed evacuation of the same nodes is
 * tried again after evac_after, a refused one (no-spare, no-requeue,
 * max-moves) after MigrateRetryInterval; other nodes to leave are acted on
 * at once. Every skip is logged and recorded (bal_history_skip()).
 * RET true if a capture started (nothing else this poll)
 */
static bool step_evacuate(smig_balancer_t *b, bal_step_t *s,
			  smig_policy_node_t *nodes, const bool *health_only,
			  const uint32_t *rank_node, int64_t now)
{
	bal_job_t *j = s->job;
	char *bad = bal_bad_nodes(s, nodes, "+");
	char *ranks = leaving_ranks(s, nodes, rank_node);
	const char *reason = bal_leave_reason(s, nodes, health_only, rank_node);
	const char *refusal;
	char *why = NULL;
	smig_plan_t *plan;
	GError *err = NULL;
	bool started = false;

	if (j->evac_after && now < j->evac_after &&
	    !g_strcmp0(bad, j->evac_nodes)) {
		/* A refusal of these nodes was said already: it stands. */
		if (j->skipped && g_str_has_prefix(j->skipped, "drain:"))
			goto out;
		why = g_strdup_printf("the last try failed or was refused (last_error=%s); next try in %" PRId64 " s",
				      j->last_error ? j->last_error : "-",
				      (j->evac_after - now + 999999) / 1000000);
		bal_history_skip(j, s, "drain", ranks, bad, "", reason,
				 "retry-delay", why);
		goto out;
	}
	g_free(j->evac_nodes);
	j->evac_nodes = g_strdup(bad);
	j->evac_after = 0;

	plan = evac_plan(b, s, nodes, rank_node, &err);
	if (!plan) {
		smig_cverbose(SMIG_CTX_STEP(j->id, s->step_id),
			      "cannot evacuate: %s", err->message);
		why = g_strdup_printf("no room in the allocation (%s)",
				      err->message);
		g_error_free(err);
		if (bal_job_scope_start(b, s, nodes, reason, &refusal)) {
			if (s->cap) {
				g_clear_pointer(&j->skipped, g_free);
				started = true;
			}
			goto out;
		}
		bal_job_set_error(j, MAX(j->last_good, j->last_tried) + 1,
				  refusal, NULL);
		j->evac_after = now + (int64_t) b->conf->retry_interval_ms *
				      1000;
		bal_history_skip(j, s, "drain", ranks, bad, "", reason, refusal,
				 why);
		bal_job_publish(b, j);
		goto out;
	}
	if (!plan->moves->len) {
		smig_plan_free(plan);
		goto out;
	}
	g_free(plan->reason);
	plan->reason = g_strdup(reason);
	if (s->req.mode == SMIG_MODE_ADVISE) {
		bal_job_advise(b, s, plan, true);
		smig_plan_free(plan);
		goto out;
	}
	if (s->req.max_moves && j->moves >= s->req.max_moves) {
		why = g_strdup_printf("max-moves=%u reached", s->req.max_moves);
		bal_job_set_error(j, MAX(j->last_good, j->last_tried) + 1,
				  "max-moves", NULL);
		j->evac_after = now + (int64_t) b->conf->retry_interval_ms *
				      1000;
		bal_history_skip(j, s, "drain", ranks, bad, "", reason,
				 "max-moves", why);
		smig_plan_free(plan);
		bal_job_publish(b, j);
		goto out;
	}
	g_clear_pointer(&j->skipped, g_free);
	bal_capture_start_kind(b, s, plan, "drain", true);
	started = true;
out:
	g_free(why);
	g_free(ranks);
	g_free(bad);
	return started;
}

/*
 * One step's turn at the poll: deadline of a capture in progress, or the
 * node states of its allocation and, if ranks must leave, a plan.
 */
static void step_poll(smig_balancer_t *b, bal_step_t *s, int64_t now)
{
	bal_job_t *j = s->job;
	smig_policy_node_t *nodes;
	uint32_t *rank_node;
	bool leave = false, unknown = false;
	bool *health_only;

	if (bal_capture_poll(b, s, now))
		return;
	bal_history_measure(b, s);
	/* A relaunched step: nothing else until its ranks are back. */
	if (bal_restore_poll(b, s, now))
		return;
	/*
	 * No back-off here: a failure spaces out balancing moves only
	 * (step_balance()); evacuations and every= have their own.
	 */
	if (s->committed || !s->registered ||
	    (s->req.mode != SMIG_MODE_AUTO && s->req.mode != SMIG_MODE_MANUAL &&
	     s->req.mode != SMIG_MODE_ADVISE) ||
	    !s->srun || !bal_step_ready(s))
		return;

	nodes = g_new0(smig_policy_node_t, s->nnodes);
	for (uint32_t n = 0; n < s->nnodes; n++) {
		nodes[n].name = s->nodes[n];
		nodes[n].slots = s->slots[n];
		if (!b->ops.node_flags(b->ops.ctx, s->nodes[n],
				       &nodes[n].flags)) {
			smig_cdebug(SMIG_CTX_NODE(j->id, s->step_id,
						  s->nodes[n]),
				    "unknown to the host");
			unknown = true;
		}
	}
	health_only = g_new0(bool, s->nnodes);
	bal_step_node_health(s, nodes, health_only);
	/* A node-local store can hand images only to a node where the
	 * step has an agent: other nodes cannot be targets. */
	if (bal_step_store_local(s))
		for (uint32_t n = 0; n < s->nnodes; n++)
			if (!bal_step_agent_on(s, n))
				nodes[n].slots = 0;
	/* Evacuations fill hot spares first. */
	for (uint32_t n = 0; n < s->nnodes; n++)
		nodes[n].spare = bal_step_node_spare(s, n);
	rank_node = g_new(uint32_t, s->ntasks);
	for (uint32_t r = 0; r < s->ntasks; r++) {
		rank_node[r] = s->rank_agent[r]->node_idx;
		if (nodes[rank_node[r]].flags != SMIG_NODE_OK)
			leave = true;
	}
	if (unknown)
		goto out;
	if (leave && step_evacuate(b, s, nodes, health_only, rank_node, now))
		goto out;
	if (!leave) {
		/* Nothing to evacuate any more: the nodes are fine again. */
		if (j->advice && j->advice_forced)
			bal_job_advise(b, s, NULL, false);
		g_clear_pointer(&j->evac_nodes, g_free);
		j->evac_after = 0;
		if (j->skipped && g_str_has_prefix(j->skipped, "drain:"))
			g_clear_pointer(&j->skipped, g_free);
	}
	/*
	 * Ranks that must leave but cannot yet still get their every=
	 * images: those are what a restart would need.
	 */
	if (s->req.every_ms && now >= s->next_periodic) {
		s->next_periodic = now + (int64_t) s->req.every_ms * 1000;
		bal_capture_start(b, s, bal_plan_stay("periodic"));
		goto out;
	}
	if (!leave)
		step_balance(b, s, now);
out:
	g_free(health_only);
	g_free(rank_node);
	g_free(nodes);
}

/*
 * bal_poll_timer - every tick (smig_conf_tick_ms()): requeued jobs, each
 * step's turn (step_poll()), ended jobs, connections that never spoke
 */
gboolean bal_poll_timer(gpointer data)
{
	smig_balancer_t *b = data;
	int64_t now = bal_now_us();
	GHashTableIter it;
	gpointer v;
	GPtrArray *list = g_ptr_array_new();
	bool forgot = false;

	/* Requeued jobs first: their steps are gone, nothing to poll. */
	if (bal_release_pass(b))
		bal_release_timer_start(b);

	/* step_poll() may publish, never remove: iterate over a copy anyway. */
	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_ptr_array_add(list, v);
	for (guint i = 0; i < list->len; i++)
		step_poll(b, g_ptr_array_index(list, i), now);
	g_ptr_array_free(list, TRUE);

	/* Forget jobs without steps once the host says they are over. */
	g_hash_table_iter_init(&it, b->jobs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		bal_job_t *j = v;
		uint32_t uid;

		if (j->samples_new) {
			j->samples_new = false;
			bal_job_publish(b, j);
		}

		if (j->nsteps || j->requeued ||
		    b->ops.job_owner(b->ops.ctx, j->id, &uid)) {
			/* Restored from the state file: show it again. */
			if (j->restored && !j->published)
				bal_job_publish(b, j);
			continue;
		}
		smig_cdebug(SMIG_CTX_JOB(j->id), "ended, state dropped");
		g_hash_table_iter_remove(&it);
		forgot = true;
	}
	if (forgot)
		bal_state_sync(b);

	/* A connection slot held by a peer that never says who it is (no
	 * authenticated message) is given back; bal_conn_kill() only queues. */
	g_hash_table_iter_init(&it, b->conns);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		bal_conn_t *c = v;

		if (!c->spoke && !c->dead &&
		    now - c->accepted > (int64_t) IDLE_POLLS *
		    smig_conf_tick_ms(b->conf) * 1000)
			bal_conn_kill(c, "no message from the peer");
	}
	return G_SOURCE_CONTINUE;
}

/*
 * bal_on_sample - an agent's samples of one interval: its node, then each of
 * its ranks, then the traffic its ranks sent. A bad entry is skipped with
 * one log line; a malformed message is refused as a whole.
 */
void bal_on_sample(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_sample_t in;
	smig_node_sample_t ns = { 0 };
	const double *cpu, *delay, *iters;
	const uint64_t *rss;
	uint32_t *ranks, interval;
	const char *health;
	size_t nranks;
	GVariant *pairs;
	GError *err = NULL;
	bal_step_t *s;
	bal_job_t *j;

	if (!bal_decoded(b, c, m, smig_msg_sample_decode(m, &in, &err), &err))
		return;
	s = bal_bound_step(b, c, m, ROLE_AGENT, in.job, in.step);
	if (!s)
		goto out;
	j = s->job;
	/* Ranks told to stop for a move: their samples describe the old
	 * placement, which the job's windows have just forgotten. */
	if (s->committed)
		goto out;
	ranks = in.ranks;
	nranks = in.n_ranks;
	cpu = in.cpu;
	delay = in.delay;
	iters = in.iters;
	rss = in.rss;
	if (in.n_cpu != nranks || in.n_delay != nranks ||
	    in.n_iters != nranks || in.n_rss != nranks) {
		char *why = g_strdup_printf("fields ranks, cpu, delay, iters and rss: %zu, %zu, %zu, %zu and %zu elements (the same number, one per rank, accepted)",
					    nranks, in.n_cpu, in.n_delay,
					    in.n_iters, in.n_rss);

		bal_send_refused(b, c, m, j->id, why);
		g_free(why);
		goto out;
	}
	ns.node = c->agent->node;
	interval = in.has_interval_ms ? in.interval_ms : 0;
	ns.mem_avail = in.has_mem_avail ? in.mem_avail : 0;
	ns.reason = in.has_reason ? in.reason : NULL;
	health = in.has_health ? in.health : "unknown";
	ns.load = in.has_load ? in.load : 0;
	if (!strcmp(health, "ok"))
		ns.health = SMIG_HEALTH_OK;
	else if (!strcmp(health, "warn"))
		ns.health = SMIG_HEALTH_WARN;
	else if (!strcmp(health, "fail"))
		ns.health = SMIG_HEALTH_FAIL;
	if (!j->metrics)
		j->metrics = smig_metrics_new();
	if (interval)
		j->sample_ms = interval;
	if (!smig_metrics_add_node(j->metrics, &ns, &err)) {
		smig_cerror(SMIG_CTX_NODE(j->id, s->step_id, ns.node),
			    "SAMPLE skipped: %s", err->message);
		g_clear_error(&err);
		goto out;
	}
	for (size_t i = 0; i < nranks; i++) {
		smig_rank_sample_t rs = { ranks[i], cpu[i], delay[i], rss[i],
					  iters[i] };
		size_t k;

		for (k = 0; k < c->agent->nranks; k++)
			if (c->agent->ranks[k] == ranks[i])
				break;
		if (k == c->agent->nranks) {
			smig_cerror(SMIG_CTX_NODE(j->id, s->step_id, ns.node),
				    "SAMPLE: rank=%u is not on that node, skipped",
				    ranks[i]);
			continue;
		}
		if (!smig_metrics_add_rank(j->metrics, ns.node, &rs, &err)) {
			smig_cerror(SMIG_CTX_NODE(j->id, s->step_id, ns.node),
				    "SAMPLE skipped: %s", err->message);
			g_clear_error(&err);
		}
	}
	pairs = in.has_pairs ? in.pairs : NULL;
	for (gsize i = 0; pairs && i < g_variant_n_children(pairs); i++) {
		smig_pair_sample_t ps;
		guint64 bytes, msgs;
		size_t k;

		g_variant_get_child(pairs, i, "(uutt)", &ps.src, &ps.dst,
				    &bytes, &msgs);
		ps.bytes = bytes;
		ps.msgs = msgs;
		for (k = 0; k < c->agent->nranks; k++)
			if (c->agent->ranks[k] == ps.src)
				break;
		if (k == c->agent->nranks) {
			smig_cerror(SMIG_CTX_NODE(j->id, s->step_id, ns.node),
				    "SAMPLE: pair %u->%u: rank %u is not on that node, skipped",
				    ps.src, ps.dst, ps.src);
			continue;
		}
		if (!smig_metrics_set_pair(j->metrics, &ps, &err)) {
			smig_cerror(SMIG_CTX_NODE(j->id, s->step_id, ns.node),
				    "SAMPLE: %s; rest of its pairs skipped",
				    err->message);
			g_clear_error(&err);
			break;
		}
	}
	c->agent->last_sample = bal_now_us();
	j->samples++;
	if (!s->first_sample)
		s->first_sample = c->agent->last_sample;
	smig_cdebug(SMIG_CTX_NODE(j->id, s->step_id, ns.node),
		    "SAMPLE ranks=%zu", nranks);
	/* The summary walks every rank of the job: once per poll, not once
	 * per SAMPLE (a job's agents all send within one interval). */
	j->samples_new = true;
out:
	smig_msg_sample_clear(&in);
}
