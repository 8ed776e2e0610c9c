/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_jobscope.c - job-scope moves: nodes a step must leave,
 * whether the whole job may move (requeue), and the release of
 * requeued jobs
 */
#include "smig_config.h"

#include <inttypes.h>
#include <glib.h>

#include "smig_balancer_int.h"

/*
 * Predicted failure: a node whose agent reports health "fail" (the admin's
 * MigrateHealthFile) is left like a failing node, before it dies. "warn"
 * only shows in the state line. Marks such nodes in health_only (when Slurm
 * itself has no complaint about them).
 */
void bal_step_node_health(const bal_step_t *s, smig_policy_node_t *nodes,
			  bool *health_only)
{
	for (uint32_t n = 0; n < s->nnodes; n++) {
		const char *why = NULL;

		health_only[n] = false;
		if (smig_metrics_node_health(s->job->metrics, s->nodes[n],
					     &why) != SMIG_HEALTH_FAIL)
			continue;
		if (nodes[n].flags == SMIG_NODE_OK) {
			health_only[n] = true;
			smig_cdebug(SMIG_CTX_NODE(s->job->id, s->step_id,
						  s->nodes[n]),
				    "health fail (%s): leaving it",
				    why ? why : "");
		}
		nodes[n].flags |= SMIG_NODE_FAIL;
	}
}

/*
 * Why ranks leave: the worst Slurm state of the nodes with ranks that must
 * be left ("down", "fail", "drain"), or "health" when only health files
 * complain. RET static text
 */
const char *bal_leave_reason(const bal_step_t *s,
			     const smig_policy_node_t *nodes,
			     const bool *health_only, const uint32_t *rank_node)
{
	uint32_t flags = 0;
	bool health = false;

	for (uint32_t r = 0; r < s->ntasks; r++) {
		uint32_t n = rank_node[r];

		if (health_only[n])
			health = true;
		else
			flags |= nodes[n].flags;
	}
	if (flags == SMIG_NODE_OK && health)
		return "health";
	return smig_node_flags_reason(flags);
}

/*
 * Nodes of the allocation that must be left, joined by sep ("," for
 * Slurm, "+" for the state line). RET caller g_free()s
 */
char *bal_bad_nodes(const bal_step_t *s, const smig_policy_node_t *nodes,
		    const char *sep)
{
	GString *str = g_string_new(NULL);

	for (uint32_t n = 0; n < s->nnodes; n++)
		if (nodes[n].flags != SMIG_NODE_OK)
			g_string_append_printf(str, "%s%s",
					       str->len ? sep : "",
					       s->nodes[n]);
	return g_string_free(str, FALSE);
}

/*
 * Whether a step whose ranks cannot stay in the allocation may move as a
 * whole job (requeue). RET NULL if it may; else the last_error reason
 */
static const char *job_scope_refusal(smig_balancer_t *b, const bal_step_t *s,
				     const char *exclude)
{
	GError *err = NULL;

	if (!b->ops.job_requeue)
		return "no-spare";
	if (bal_step_store_local(s)) {
		smig_cverbose(SMIG_CTX_STEP(s->job->id, s->step_id),
			      "not requeued: MigrateImageStore=local keeps images on the nodes the job leaves");
		return "no-spare";
	}
	if (s->job->nsteps > 1) {
		smig_cverbose(SMIG_CTX_STEP(s->job->id, s->step_id),
			      "not requeued: the job has %u migrating steps, a requeue would lose the others' progress",
			      s->job->nsteps);
		return "no-spare";
	}
	if (!b->ops.job_requeue(b->ops.ctx, s->job->id, exclude, true, &err)) {
		smig_cverbose(SMIG_CTX_STEP(s->job->id, s->step_id),
			      "not requeued: %s", err->message);
		g_error_free(err);
		return "no-requeue";
	}
	return NULL;
}

/*
 * No room in the allocation for the ranks that must leave (or the other
 * nodes are bad too): capture every rank where it is, then requeue the job
 * without the bad nodes (bal_capture_start_requeue()); in advise mode, say
 * so.
 * RET true if handled (capture started, or advice given), false if the job
 * cannot move as a whole: *refusal is then the last_error reason
 */
bool bal_job_scope_start(smig_balancer_t *b, bal_step_t *s,
			 const smig_policy_node_t *nodes, const char *reason,
			 const char **refusal)
{
	bal_job_t *j = s->job;
	char *exclude = bal_bad_nodes(s, nodes, ",");
	char *from = bal_bad_nodes(s, nodes, "+");
	smig_plan_t *plan;
	bool started = false;

	*refusal = job_scope_refusal(b, s, exclude);
	if (*refusal)
		goto out;
	if (s->req.mode == SMIG_MODE_ADVISE) {
		char *advice = g_strdup_printf("ranks=all;from=%s;to=requeue;reason=%s",
					       from, reason);

		if (g_strcmp0(advice, j->advice))
			smig_cverbose(SMIG_CTX_STEP(j->id, s->step_id),
				      "advise: %s", advice);
		g_free(j->advice);
		j->advice = advice;
		/* Forced: cleared once the nodes are fine again. */
		j->advice_forced = true;
		bal_job_publish(b, j);
		started = true;
		goto out;
	}
	if (s->req.max_moves && j->moves >= s->req.max_moves) {
		*refusal = "max-moves";
		goto out;
	}
	plan = bal_plan_stay(reason);
	g_free(plan->text);
	plan->text = g_strdup_printf("whole job: requeue without %s",
				     exclude);
	bal_capture_start_requeue(b, s, plan, exclude, from);
	exclude = NULL;
	started = true;
out:
	g_free(exclude);
	g_free(from);
	return started;
}

/* Forget every step of a job (its processes are gone: requeued). */
static void job_drop_steps(smig_balancer_t *b, bal_job_t *j)
{
	GHashTableIter it;
	GPtrArray *list = g_ptr_array_new();
	gpointer v;

	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (((bal_step_t *) v)->job == j)
			g_ptr_array_add(list, v);
	for (guint i = 0; i < list->len; i++)
		bal_step_remove(b, g_ptr_array_index(list, i));
	g_ptr_array_free(list, TRUE);
}

/*
 * Jobs the host no longer runs: one that was requeued (by a job-scope move
 * or by Slurm after a node failure) loses its old steps, keeps its state
 * (generations only grow) and is released to start again at once instead
 * of after Slurm's credential wait.
 * RET true while some requeued job still waits (completing)
 */
bool bal_release_pass(smig_balancer_t *b)
{
	GHashTableIter it;
	bool waiting = false;
	gpointer v;

	if (!b->ops.job_release)
		return false;
	g_hash_table_iter_init(&it, b->jobs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		bal_job_t *j = v;
		uint32_t uid;
		int rc;

		if (b->ops.job_owner(b->ops.ctx, j->id, &uid)) {
			j->requeued = j->released = false;
			continue;
		}
		rc = b->ops.job_release(b->ops.ctx, j->id, j->clean_requeue);
		if (rc == SMIG_RELEASE_NONE) {
			j->requeued = j->released = false;
			continue;
		}
		if (!j->requeued || j->nsteps) {
			smig_cinfo(SMIG_CTX_JOB(j->id),
				   "requeued: its steps are gone, restart from gen=%" PRIu64,
				   j->last_good);
			j->requeued = true;
			j->released = false;
			/* A back-off of the old run must not hold the new. */
			j->retry_after = 0;
			job_drop_steps(b, j);
		}
		if (rc == SMIG_RELEASE_WAIT) {
			waiting = true;
		} else if (!j->released) {
			smig_cinfo(SMIG_CTX_JOB(j->id), "released: %s",
				   j->clean_requeue ? "may start again now" :
				   "may start again once no srun of the old run can cancel its steps (a node of it may hold tasks nobody hears of)");
			j->released = true;
			j->clean_requeue = false;
		}
	}
	return waiting;
}

static gboolean release_timer(gpointer data)
{
	smig_balancer_t *b = data;

	if (bal_release_pass(b))
		return G_SOURCE_CONTINUE;
	g_clear_pointer(&b->release_timer, g_source_unref);
	return G_SOURCE_REMOVE;
}

/* Run bal_release_pass() every 100 ms until no requeued job waits. */
void bal_release_timer_start(smig_balancer_t *b)
{
	if (b->release_timer || !b->ops.job_release)
		return;
	b->release_timer = g_timeout_source_new(100);
	g_source_set_callback(b->release_timer, release_timer, b, NULL);
	g_source_attach(b->release_timer, b->ctx);
}
