/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_request.c - what people ask through the smig CLI:
 * REQUEST (capture, move, rebalance) and QUERY
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_topology.h"

/*
 * parse_rank_list - "2,3", "2-3", "0,2-5" into distinct ranks below ntasks
 * OUT ranks - caller-owned array of uint32_t, appended in the given order
 * RET NULL, or a reason naming the value (caller g_free()s)
 */
static char *parse_rank_list(const char *text, uint32_t ntasks, GArray *ranks)
{
	guint8 *seen = g_new0(guint8, ntasks);
	const char *p = text;
	char *why = NULL;

	while (!why) {
		guint64 lo, hi;
		char *end;

		if (!g_ascii_isdigit(*p))
			goto syntax;
		lo = hi = g_ascii_strtoull(p, &end, 10);
		p = end;
		if (*p == '-') {
			if (!g_ascii_isdigit(*++p))
				goto syntax;
			hi = g_ascii_strtoull(p, &end, 10);
			p = end;
		}
		if (hi < lo)
			goto syntax;
		if (hi >= ntasks) {
			why = g_strdup_printf("ranks=%.64s: rank %" G_GUINT64_FORMAT
					      " does not exist (the step has ranks 0-%u)",
					      text, hi, ntasks - 1);
			break;
		}
		for (uint32_t r = (uint32_t) lo; r <= (uint32_t) hi; r++) {
			if (seen[r]) {
				why = g_strdup_printf("ranks=%.64s: rank %u given twice",
						      text, r);
				break;
			}
			seen[r] = 1;
			g_array_append_val(ranks, r);
		}
		if (!*p)
			break;
		if (*p++ != ',')
			goto syntax;
	}
	g_free(seen);
	return why;
syntax:
	g_free(seen);
	return g_strdup_printf("ranks=%.64s: not a rank list (examples: 2,3 or 2-3)",
			       text);
}

/*
 * request_step - the step a move or rebalance request is for: the one
 * given, else the job's only step that is registered and not ending
 * RET the step, or NULL with *why set (caller g_free()s)
 */
static bal_step_t *request_step(smig_balancer_t *b, bal_job_t *j,
				uint32_t step_id, char **why)
{
	bal_step_t *found = NULL;
	GHashTableIter it;
	gpointer v;
	guint n = 0;

	if (step_id != UINT32_MAX) {
		found = bal_step_find(b, j->id, step_id);
		if (!found || !found->registered) {
			*why = g_strdup_printf("step=%u: no step %u of JobId=%u runs with --migrate",
					       step_id, step_id, j->id);
			return NULL;
		}
		return found;
	}
	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		bal_step_t *s = v;

		if (s->job != j || !s->registered || s->committed)
			continue;
		found = s;
		n++;
	}
	if (n == 1)
		return found;
	*why = n ? g_strdup_printf("JobId=%u has %u steps with --migrate: give step",
				   j->id, n) :
		   g_strdup_printf("JobId=%u has no running step with --migrate",
				   j->id);
	return NULL;
}

/*
 * request_busy - why a step cannot start a move now (a capture or move in
 * progress, srun or agents not all connected), or NULL
 * RET static string or NULL
 */
static const char *request_busy(bal_step_t *s)
{
	if (s->cap)
		return "a capture or move is in progress";
	if (s->committed)
		return "the step is ending for a move";
	if (!s->srun)
		return "srun is not connected";
	if (!bal_step_map_complete(s))
		return "not every rank's agent has registered yet";
	if (!bal_step_ready(s))
		return "not every rank is past smig_register() yet";
	return NULL;
}

static gint cmp_move_rank(gconstpointer a, gconstpointer b)
{
	uint32_t x = ((const smig_policy_move_t *) a)->rank;
	uint32_t y = ((const smig_policy_move_t *) b)->rank;

	return x < y ? -1 : x > y;
}

/*
 * plan_request_move - check a requested move of ranks to one node of the
 * step's allocation and make its plan (reason "request")
 * IN  ranks_text, to - the request's values (borrowed)
 * OUT why - the reason for a refusal, naming field and value; caller
 *           g_free()s
 * RET new plan, caller frees with smig_plan_free(); NULL with *why set
 */
static smig_plan_t *plan_request_move(smig_balancer_t *b, bal_step_t *s,
				      const char *ranks_text,
				      const char *to, char **why)
{
	GArray *ranks = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	smig_plan_t *plan = NULL;
	uint32_t dst = UINT32_MAX, flags = 0, used = 0;

	if ((*why = parse_rank_list(ranks_text, s->ntasks, ranks)))
		goto out;
	for (uint32_t n = 0; n < s->nnodes; n++)
		if (!strcmp(s->nodes[n], to))
			dst = n;
	if (dst == UINT32_MAX) {
		*why = g_strdup_printf("to=%.64s: not a node of the job's allocation",
				       to);
		goto out;
	}
	if (!b->ops.node_flags(b->ops.ctx, to, &flags) ||
	    flags != SMIG_NODE_OK) {
		*why = g_strdup_printf("to=%s: node is %s, not usable", to,
				       smig_node_flags_reason(flags));
		goto out;
	}
	if (bal_step_store_local(s) && !bal_step_agent_on(s, dst)) {
		*why = g_strdup_printf("to=%s: MigrateImageStore=local and the step has no agent there to receive images",
				       to);
		goto out;
	}
	for (uint32_t r = 0; r < s->ntasks; r++)
		if (s->rank_agent[r]->node_idx == dst)
			used++;
	for (guint i = 0; i < ranks->len; i++) {
		uint32_t r = g_array_index(ranks, uint32_t, i);

		if (s->rank_agent[r]->node_idx == dst) {
			*why = g_strdup_printf("ranks=%.64s: rank %u already runs on %s",
					       ranks_text, r, to);
			goto out;
		}
	}
	if (used + ranks->len > s->slots[dst]) {
		*why = g_strdup_printf("to=%s: %u free slots for %u ranks",
				       to, s->slots[dst] - MIN(used, s->slots[dst]),
				       ranks->len);
		goto out;
	}
	if (s->req.max_moves && s->job->moves >= s->req.max_moves) {
		*why = g_strdup_printf("max-moves=%u of the step reached",
				       s->req.max_moves);
		goto out;
	}
	plan = bal_plan_stay("request");
	for (guint i = 0; i < ranks->len; i++) {
		smig_policy_move_t mv = {
			.rank = g_array_index(ranks, uint32_t, i),
			.to = dst,
		};

		mv.from = s->rank_agent[mv.rank]->node_idx;
		g_array_append_val(plan->moves, mv);
	}
	g_array_sort(plan->moves, cmp_move_rank);
	g_free(plan->text);
	plan->text = bal_plan_move_text(s, plan);
out:
	g_array_free(ranks, TRUE);
	return plan;
}

/*
 * plan_request_rebalance - the policy engine's plan for a step now, as
 * step_balance() makes it but without hysteresis and cooldown (a person
 * asked); the samples, slots, min_gain and max-moves still count
 * OUT why - why no decision is possible (too few or stale samples, a node
 *           unknown to the host), caller g_free()s
 * RET new plan (empty: nothing gains, plan->why says why), caller frees
 *     with smig_plan_free(); NULL with *why set
 */
static smig_plan_t *plan_request_rebalance(smig_balancer_t *b, bal_step_t *s,
					   char **why)
{
	smig_policy_params_t params;
	bal_job_t *j = s->job;

	smig_policy_params_init(&params);
	params.hysteresis = 0;
	if (s->req.max_moves) {
		if (j->moves >= s->req.max_moves) {
			*why = g_strdup_printf("max-moves=%u of the step reached",
					       s->req.max_moves);
			return NULL;
		}
		params.max_moves = s->req.max_moves - j->moves;
	}
	return bal_step_plan_balance(b, s, &params, bal_now_us(), why);
}

/*
 * request_move - REQUEST what=move (ranks, to) or what=rebalance of one
 * step: refused with a reason naming the field and value, or REPLY status
 * 0 with the generation started and the move, -EBUSY with why the step
 * cannot move now, -ENODATA (rebalance) when no plan would gain, with why.
 */
static void request_move(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m,
			 bal_job_t *j, const smig_msg_request_t *in)
{
	const char *what = in->what;
	bool move = !strcmp(what, "move");
	const char *ranks = in->ranks, *to = in->to, *busy;
	uint32_t step_id = in->has_step ? in->step : UINT32_MAX;
	smig_plan_t *plan = NULL;
	char *why = NULL, *text = NULL, *started = NULL;
	int32_t status = 0;
	smig_msg_reply_t out;
	bal_step_t *s;

	if (move && (!in->has_ranks || !in->has_to)) {
		bal_send_refused(b, c, m, j->id, !in->has_ranks ?
				 "field ranks missing (type s)" :
				 "field to missing (type s)");
		return;
	}
	if (!(s = request_step(b, j, step_id, &why)))
		goto refuse;
	if (s->req.mode == SMIG_MODE_ADVISE || s->req.mode == SMIG_MODE_OFF) {
		why = g_strdup_printf("mode=%s: StepId=%u never moves",
				      smig_mode_name(s->req.mode), s->step_id);
		goto refuse;
	}
	if ((busy = request_busy(s))) {
		status = -EBUSY;
		why = g_strdup_printf("StepId=%u: %s", s->step_id, busy);
		goto reply;
	}
	if (move && !(plan = plan_request_move(b, s, ranks, to, &why)))
		goto refuse;
	if (!move && !(plan = plan_request_rebalance(b, s, &why))) {
		/* Not the requester's fault: say so in the reply. */
		status = -ENODATA;
		text = why;
		why = g_strdup_printf("no decision possible: %s", text);
		g_clear_pointer(&text, g_free);
		goto reply;
	}
	if (!plan->moves->len) {
		status = -ENODATA;
		why = g_strdup(plan->why ? plan->why : "no move would gain");
		goto reply;
	}
	why = g_strdup(plan->why ? plan->why : "");
	text = bal_plan_move_text(s, plan);
	bal_capture_start(b, s, plan);
	plan = NULL;
	started = g_strdup_printf("StepId=%u:gen=%" PRIu64, s->step_id,
				  s->cap->gen);
	smig_cinfo(SMIG_CTX_JOB(j->id), "%s requested by uid=%u: %s %s", what,
		   m->uid, started, text);
reply:
	if (status)
		smig_cverbose(SMIG_CTX_JOB(j->id),
			      "%s requested by uid=%u: no move: %s", what,
			      m->uid, why);
	out = (smig_msg_reply_t) {
		.job = j->id, .status = status, .started = started,
		.move = text, .has_move = true,
		.why = why, .has_why = true,
	};
	bal_conn_send(c, SMIG_MSG_REPLY, smig_msg_reply_body(&out));
	goto out;
refuse:
	bal_send_refused(b, c, m, j->id, why);
out:
	smig_plan_free(plan);
	g_free(why);
	g_free(text);
	g_free(started);
}

/*
 * REQUEST(job, what=capture[, step]): a capture for later, now, of every
 * registered step of the job (or the one given) that has no capture in
 * progress. REQUEST(job, what=move, ranks, to[, step]): the ranks move to
 * node to (a capture with a move plan, reason "request").
 * REQUEST(job, what=rebalance[, step]): the policy engine decides now,
 * without hysteresis and cooldown; a plan that gains starts as a move.
 * Owner, root or SlurmUser. REPLY says which generations started; the
 * requester follows them with QUERY (gen= of the state line, history).
 */
void bal_on_request(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_request_t in;
	smig_msg_reply_t out;
	GString *started = g_string_new(NULL), *busy = g_string_new(NULL);
	uint32_t job_id, step_id;
	const char *what;
	GError *err = NULL;
	GHashTableIter it;
	gpointer v;
	char *why;
	bal_job_t *j;

	if (!bal_decoded(b, c, m, smig_msg_request_decode(m, &in, &err),
			 &err))
		goto out_strings;
	job_id = in.job;
	what = in.what;
	step_id = in.has_step ? in.step : UINT32_MAX;
	j = g_hash_table_lookup(b->jobs, GUINT_TO_POINTER(job_id));
	if (!j) {
		bal_send_refused(b, c, m, job_id,
				 "job not known to the balancer (no step with --migrate is running)");
		goto out;
	}
	if (!bal_uid_may(b, m->uid, j->uid)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, j->uid);
		bal_send_refused(b, c, m, job_id, why);
		g_free(why);
		goto out;
	}
	if (!strcmp(what, "move") || !strcmp(what, "rebalance")) {
		request_move(b, c, m, j, &in);
		goto out;
	}
	if (strcmp(what, "capture")) {
		why = g_strdup_printf("what=%.64s: not a request the balancer knows (capture, move, rebalance)",
				      what);
		bal_send_refused(b, c, m, job_id, why);
		g_free(why);
		goto out;
	}
	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		bal_step_t *s = v;

		if (s->job != j ||
		    (step_id != UINT32_MAX && s->step_id != step_id))
			continue;
		if (s->cap || s->committed || !s->registered || !s->srun ||
		    !bal_step_ready(s)) {
			g_string_append_printf(busy, "%s%u", busy->len ? "," : "",
					       s->step_id);
			continue;
		}
		bal_capture_start(b, s, bal_plan_stay("request"));
		g_string_append_printf(started, "%sStepId=%u:gen=%" PRIu64,
				       started->len ? "," : "", s->step_id,
				       s->cap->gen);
	}
	smig_cinfo(SMIG_CTX_JOB(job_id),
		   "capture requested by uid=%u: started %s%s%s", m->uid,
		   started->len ? started->str : "none",
		   busy->len ? ", busy steps " : "", busy->str);
	out = (smig_msg_reply_t) {
		.job = job_id, .status = started->len ? 0 : -EBUSY,
		.started = started->str,
		.busy = busy->str, .has_busy = true,
	};
	bal_conn_send(c, SMIG_MSG_REPLY, smig_msg_reply_body(&out));
out:
	smig_msg_request_clear(&in);
out_strings:
	g_string_free(started, TRUE);
	g_string_free(busy, TRUE);
}

/*
 * STATUS's monitoring fields, from the job's smig_metrics_to_variant() mv
 * (its keys are those of the schema): references and copies into out,
 * which smig_msg_status_clear() frees
 */
static void status_metrics(smig_msg_status_t *out, GVariant *mv)
{
	out->ranks = g_variant_lookup_value(mv, "ranks",
					    G_VARIANT_TYPE("a(usddtdad)"));
	out->has_ranks = out->ranks;
	out->has_ranks_total = g_variant_lookup(mv, "ranks_total", "u",
						&out->ranks_total);
	out->nodes = g_variant_lookup_value(mv, "nodes",
					    G_VARIANT_TYPE("a(sddtssad)"));
	out->has_nodes = out->nodes;
	out->pairs = g_variant_lookup_value(mv, "pairs",
					    G_VARIANT_TYPE("a(uutt)"));
	out->has_pairs = out->pairs;
	out->has_pairs_total = g_variant_lookup(mv, "pairs_total", "u",
						&out->pairs_total);
	out->matrix = g_variant_lookup_value(mv, "matrix",
					     G_VARIANT_TYPE("a(sst)"));
	out->has_matrix = out->matrix;
	out->has_summary = g_variant_lookup(mv, "summary", "s",
					    &out->summary);
}

/*
 * query_interval - the job's sampling interval for STATUS: what its agents
 * said in their last SAMPLE, else, before any (a new step, or the step
 * relaunched by a move, before its first one), the interval its running
 * step asks for (interval=, else MigrateSampleInterval), raised to the
 * 100 ms the agents sample at least; 0 when no step of it is registered
 */
static uint32_t query_interval(smig_balancer_t *b, const bal_job_t *j)
{
	GHashTableIter it;
	gpointer v;

	if (j->sample_ms)
		return j->sample_ms;
	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		bal_step_t *s = v;

		if (s->job == j && s->registered && !s->committed)
			return MAX(bal_step_interval_ms(b, s), 100);
	}
	return 0;
}

/*
 * query_spares - STATUS's spares: each running step of j that asked for
 * spares=N and whose every rank is placed, with its hot spares now (nodes
 * of its allocation without its ranks that Slurm says are usable)
 * RET floating a(uuas), NULL when no step of j asked for spares
 */
static GVariant *query_spares(smig_balancer_t *b, const bal_job_t *j)
{
	GVariantBuilder vb, nb;
	GHashTableIter it;
	uint32_t flags;
	bool any = false;
	gpointer v;

	g_variant_builder_init(&vb, G_VARIANT_TYPE("a(uuas)"));
	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		bal_step_t *s = v;

		if (s->job != j || s->committed || !s->req.spares ||
		    !bal_step_map_complete(s))
			continue;
		g_variant_builder_init(&nb, G_VARIANT_TYPE("as"));
		for (uint32_t n = 0; n < s->nnodes; n++)
			if (bal_step_node_spare(s, n) &&
			    b->ops.node_flags(b->ops.ctx, s->nodes[n],
					      &flags) &&
			    flags == SMIG_NODE_OK)
				g_variant_builder_add(&nb, "s", s->nodes[n]);
		g_variant_builder_add(&vb, "(uuas)", s->step_id, s->req.spares,
				      &nb);
		any = true;
	}
	if (!any) {
		g_variant_builder_clear(&vb);
		return NULL;
	}
	return g_variant_builder_end(&vb);
}

/*
 * bal_on_query - a job's state and monitoring data for its owner or an admin
 * (the smig CLI); answered with STATUS on the same connection
 */
void bal_on_query(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_query_t in;
	smig_msg_status_t out = { 0 };
	GVariantBuilder ns, sw;
	smig_topology_t *topo = NULL;
	uint32_t job_id, flags;
	GVariant *mv = NULL;
	GError *err = NULL;
	GVariant *val;
	char *why;
	bal_job_t *j;

	if (!bal_decoded(b, c, m, smig_msg_query_decode(m, &in, &err), &err))
		return;
	job_id = in.job;
	smig_msg_query_clear(&in);
	j = g_hash_table_lookup(b->jobs, GUINT_TO_POINTER(job_id));
	if (!j) {
		bal_send_refused(b, c, m, job_id,
				 "job not known to the balancer (no step with --migrate is running)");
		return;
	}
	if (!bal_uid_may(b, m->uid, j->uid)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, j->uid);
		bal_send_refused(b, c, m, job_id, why);
		g_free(why);
		return;
	}
	out.job = j->id;
	out.state = bal_job_line(j);
	out.interval_ms = query_interval(b, j);
	/* What the balancer has looked at: SAMPLEs taken, and how many of
	 * them the last balancing decision saw. */
	out.samples = j->samples;
	out.decided = j->decided_samples;
	g_variant_builder_init(&ns, G_VARIANT_TYPE("a(ss)"));
	g_variant_builder_init(&sw, G_VARIANT_TYPE("a(ss)"));
	if (b->ops.topology)
		topo = b->ops.topology(b->ops.ctx);
	if (j->metrics) {
		mv = g_variant_ref_sink(smig_metrics_to_variant(j->metrics));
		status_metrics(&out, mv);
		val = out.nodes;
		for (gsize i = 0; val && i < g_variant_n_children(val); i++) {
			const char *node;

			g_variant_get_child(val, i, "(&sddtssad)", &node,
					    NULL, NULL, NULL, NULL, NULL,
					    NULL);
			if (!b->ops.node_flags(b->ops.ctx, node, &flags))
				continue;
			g_variant_builder_add(&ns, "(ss)", node,
					      smig_node_flags_reason(flags));
		}
		for (gsize i = 0; topo && val && i < g_variant_n_children(val);
		     i++) {
			const char *node, *leaf;

			g_variant_get_child(val, i, "(&sddtssad)", &node,
					    NULL, NULL, NULL, NULL, NULL,
					    NULL);
			leaf = smig_topology_leaf(topo, node);
			g_variant_builder_add(&sw, "(ss)", node,
					      leaf ? leaf : "");
		}
	}
	out.slurm_state = g_variant_ref_sink(g_variant_builder_end(&ns));
	/* Only a cluster with a switch tree has the field. */
	if (topo) {
		out.switches = g_variant_ref_sink(g_variant_builder_end(&sw));
		out.has_switches = true;
	} else {
		g_variant_builder_clear(&sw);
	}
	smig_topology_unref(topo);
	if ((val = query_spares(b, j))) {
		out.spares = g_variant_ref_sink(val);
		out.has_spares = true;
	}
	out.history = g_variant_ref_sink(bal_history_variant(j));
	bal_conn_send(c, SMIG_MSG_STATUS, smig_msg_status_body(&out));
	smig_msg_status_clear(&out);
	if (mv)
		g_variant_unref(mv);
}

/*
 * bal_on_fate_query - how a job stands, for its images (a node's epilog,
 * smig images): asked of slurmctld through the host now. Root, SlurmUser
 * and the job's owner hear it; anyone hears that a job is unknown. Refused
 * when the host cannot ask or slurmctld does not answer (the asker keeps
 * the images).
 */
void bal_on_fate_query(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_fate_query_t in;
	smig_job_facts_t f = { .uid = UINT32_MAX };
	smig_msg_fate_t out;
	GError *err = NULL;
	uint32_t job_id;
	char *why;

	if (!bal_decoded(b, c, m, smig_msg_fate_query_decode(m, &in, &err),
			 &err))
		return;
	job_id = in.job;
	smig_msg_fate_query_clear(&in);
	if (!b->ops.job_fate) {
		bal_send_refused(b, c, m, job_id,
				 "the balancer's host cannot ask Slurm about ended jobs");
		return;
	}
	if (!b->ops.job_fate(b->ops.ctx, job_id, &f)) {
		bal_send_refused(b, c, m, job_id,
				 "slurmctld did not answer; ask again later");
		return;
	}
	if (f.phase != SMIG_JOB_UNKNOWN && !bal_uid_may(b, m->uid, f.uid)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, f.uid);
		bal_send_refused(b, c, m, job_id, why);
		g_free(why);
		return;
	}
	smig_cdebug(SMIG_CTX_JOB(job_id), "FATE_QUERY from uid=%u: %s (%s)",
		    m->uid, smig_job_phase_name(f.phase), f.state);
	out = (smig_msg_fate_t) {
		.job = job_id,
		.phase = (char *) smig_job_phase_name(f.phase),
		.state = f.state,
		.end_time = (uint64_t) MAX(f.end_time, 0),
		.has_end_time = f.phase == SMIG_JOB_COMPLETED ||
				f.phase == SMIG_JOB_ENDED,
	};
	bal_conn_send(c, SMIG_MSG_FATE, smig_msg_fate_body(&out));
}

/*
 * bal_on_fate_done - what a node's epilog (or smig images --reclaim) did
 * with a job's images, into the balancer's log: Slurm 24.11 keeps a SPANK
 * epilog's own output out of slurmd's log (debug2 only), so this is where
 * an admin finds it on every release. Root and SlurmUser only; no answer.
 */
void bal_on_fate_done(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_fate_done_t in;
	GError *err = NULL;

	if (!bal_decoded(b, c, m, smig_msg_fate_done_decode(m, &in, &err),
			 &err))
		return;
	if (m->uid != 0 && m->uid != b->admin_uid) {
		bal_send_refused(b, c, m, in.job,
				 "only root or SlurmUser report what was done with images");
		smig_msg_fate_done_clear(&in);
		return;
	}
	if (in.has_failed && in.failed)
		smig_cerror(SMIG_CTX_NODE(in.job, SMIG_LOG_NO_ID, in.node),
			    "%s", in.text);
	else
		smig_cinfo(SMIG_CTX_NODE(in.job, SMIG_LOG_NO_ID, in.node),
			   "%s", in.text);
	smig_msg_fate_done_clear(&in);
}

/*
 * bal_on_node_event - Slurm's node trigger fired (NODE_EVENT from smigd -E,
 * which slurmctld runs as the uid that set the trigger): the host reads the
 * node table again at the next node_flags(), so a drain is acted on within
 * a tick, not a MigratePollInterval. Root and SlurmUser only.
 */
void bal_on_node_event(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_node_event_t in;
	smig_msg_node_event_ok_t out;
	GError *err = NULL;
	char *why;

	if (!bal_decoded(b, c, m, smig_msg_node_event_decode(m, &in, &err),
			 &err))
		return;
	if (m->uid != 0 && m->uid != b->admin_uid) {
		why = g_strdup_printf("uid %u is neither root nor SlurmUser (uid %u)",
				      m->uid, b->admin_uid);
		bal_send_refused(b, c, m, 0, why);
		g_free(why);
		goto out;
	}
	if (!b->ops.nodes_changed) {
		bal_send_refused(b, c, m, 0,
				 "the balancer's host reads no node table");
		goto out;
	}
	b->ops.nodes_changed(b->ops.ctx);
	smig_info("Slurm's node trigger: event=%.32s nodes=%.200s: the node table is read again",
		  in.event, in.nodes);
	out = (smig_msg_node_event_ok_t) { .event = in.event };
	bal_conn_send(c, SMIG_MSG_NODE_EVENT_OK,
		      smig_msg_node_event_ok_body(&out));
out:
	smig_msg_node_event_clear(&in);
}
