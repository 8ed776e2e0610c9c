/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_history.c - the decisions of a job and their outcomes
 * (QUERY: history), and the advice of advise mode
 */
#include "smig_config.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_decide.h"

/* bal_decision_free - free one history entry (a GDestroyNotify) */
void bal_decision_free(gpointer p)
{
	bal_decision_t *e = p;

	g_free(e->kind);
	g_free(e->ranks);
	g_free(e->from);
	g_free(e->to);
	g_free(e->reason);
	g_free(e->strategy);
	g_free(e->why);
	g_free(e->outcome);
	g_free(e);
}

/*
 * bal_nodes_joined - the distinct nodes a plan moves ranks from (to:
 * false) or to (to: true), "node2+node3"
 * RET caller g_free()s
 */
char *bal_nodes_joined(const bal_step_t *s, const smig_plan_t *plan, bool to)
{
	GString *str = g_string_new(NULL);
	GPtrArray *seen = g_ptr_array_new();

	for (guint i = 0; i < plan->moves->len; i++) {
		smig_policy_move_t *m = &g_array_index(plan->moves,
						       smig_policy_move_t, i);
		const char *name = s->nodes[to ? m->to : m->from];
		guint k;

		for (k = 0; k < seen->len; k++)
			if (!strcmp(g_ptr_array_index(seen, k), name))
				break;
		if (k < seen->len)
			continue;
		g_ptr_array_add(seen, (gpointer) name);
		g_string_append_printf(str, "%s%s", str->len ? "+" : "", name);
	}
	g_ptr_array_free(seen, TRUE);
	return g_string_free(str, FALSE);
}

/* bal_plan_ranks - the ranks a plan moves, "2,3". RET caller g_free()s */
char *bal_plan_ranks(const smig_plan_t *plan)
{
	GString *str = g_string_new(NULL);

	for (guint i = 0; i < plan->moves->len; i++)
		g_string_append_printf(str, "%s%u", i ? "," : "",
				       g_array_index(plan->moves,
						     smig_policy_move_t,
						     i).rank);
	return g_string_free(str, FALSE);
}

/* "ranks=2,3;from=node2;to=node3;reason=drain", caller g_free()s */
char *bal_plan_move_text(const bal_step_t *s, const smig_plan_t *plan)
{
	char *ranks = bal_plan_ranks(plan);
	char *from = bal_nodes_joined(s, plan, false);
	char *to = bal_nodes_joined(s, plan, true);
	char *text = g_strdup_printf("ranks=%s;from=%s;to=%s;reason=%s",
				     ranks, from, to, plan->reason);

	g_free(ranks);
	g_free(from);
	g_free(to);
	return text;
}

static bal_decision_t *history_find(bal_job_t *j, uint64_t id)
{
	for (GList *l = j->history.tail; id && l; l = l->prev) {
		bal_decision_t *e = l->data;

		if (e->id == id)
			return e;
	}
	return NULL;
}

/*
 * bal_history_add - record a decision with a move plan in the job's history
 * (the oldest entry goes beyond HISTORY_MAX)
 * IN kind    - "drain", "auto", "advise", "request", "requeue" (copied)
 * IN plan    - the plan (borrowed; its moves are not empty, except for
 *              a job-scope move, whose caller fills ranks, from and to)
 * IN gen     - the capture's generation, 0: none
 * IN outcome - "pending", "advised" (copied)
 * RET the entry, owned by the job
 */
bal_decision_t *bal_history_add(bal_job_t *j, const bal_step_t *s,
				const char *kind, const smig_plan_t *plan,
				uint64_t gen, const char *outcome)
{
	bal_decision_t *e = g_new0(bal_decision_t, 1);
	double rate;

	e->id = ++j->hist_seq;
	e->time = g_get_real_time();
	e->gen = gen;
	e->step_id = s->step_id;
	e->kind = g_strdup(kind);
	e->ranks = bal_plan_ranks(plan);
	e->from = bal_nodes_joined(s, plan, false);
	e->to = bal_nodes_joined(s, plan, true);
	e->reason = g_strdup(plan->reason);
	e->strategy = g_strdup(plan->strategy ? plan->strategy :
			       !strcmp(kind, "drain") ? "evacuate" : "none");
	e->why = g_strdup(plan->why ? plan->why : plan->text);
	e->outcome = g_strdup(outcome);
	/*
	 * Only the engine predicts; forced moves stand whatever they gain.
	 * On the measured gain's scale: iteration rate after / before - 1.
	 */
	e->predicted = plan->strategy && !plan->forced &&
		       plan->iter_before > 0 && plan->iter_after > 0 ?
		       plan->iter_before / plan->iter_after - 1 : NAN;
	e->measured = NAN;
	if (j->metrics && smig_decide_rate(j->metrics, s->ntasks, 1, &rate))
		e->rate_before = rate;
	if (!isnan(e->predicted)) {
		e->link_bw = j->plan_link_bw;
		e->iter_before = plan->iter_before;
		e->iter_after = plan->iter_after;
		e->comm_before = plan->comm_before;
		e->comm_after = plan->comm_after;
	}
	g_queue_push_tail(&j->history, e);
	while (j->history.length > HISTORY_MAX)
		bal_decision_free(g_queue_pop_head(&j->history));
	return e;
}

/* The outcome of a capture's decision, if it has an entry. */
void bal_history_outcome(bal_job_t *j, const bal_capture_t *cap,
			 const char *outcome, const char *reason)
{
	bal_decision_t *e = history_find(j, cap->hist_id);

	if (!e)
		return;
	g_free(e->outcome);
	e->outcome = reason ? g_strdup_printf("%s:%s", outcome, reason) :
			      g_strdup(outcome);
	e->measuring = !strcmp(outcome, "moved") && e->rate_before > 0;
}

/*
 * bal_history_skip - an action the balancer did not take, in the log and, once
 * per cause, in the job's history (outcome "skipped:REASON"): the same
 * kind, reason and nodes again are not repeated until an action is taken
 * (see bal_job_t.skipped)
 * IN kind, ranks, from, to - as in bal_history_add() (copied; NULL: "")
 * IN cause  - the leave reason or "balance" (copied)
 * IN reason - why it was skipped, a word: "retry-delay", "no-spare" ...
 * IN why    - a sentence for the log and the history (copied)
 */
void bal_history_skip(bal_job_t *j, const bal_step_t *s, const char *kind,
		      const char *ranks, const char *from, const char *to,
		      const char *cause, const char *reason, const char *why)
{
	char *key = g_strdup_printf("%s:%s:%s", kind, reason,
				    from ? from : "");
	bal_decision_t *e;

	if (!g_strcmp0(key, j->skipped)) {
		g_free(key);
		return;
	}
	g_free(j->skipped);
	j->skipped = key;
	smig_cinfo(SMIG_CTX_STEP(j->id, s->step_id),
		   "%s of ranks=%s from=%s skipped: reason=%s: %s", kind,
		   ranks && ranks[0] ? ranks : "-", from && from[0] ? from : "-",
		   reason, why);
	e = g_new0(bal_decision_t, 1);
	e->id = ++j->hist_seq;
	e->time = g_get_real_time();
	e->step_id = s->step_id;
	e->kind = g_strdup(kind);
	e->ranks = g_strdup(ranks ? ranks : "");
	e->from = g_strdup(from ? from : "");
	e->to = g_strdup(to ? to : "");
	e->reason = g_strdup(cause);
	e->strategy = g_strdup(!strcmp(kind, "drain") ? "evacuate" : "none");
	e->why = g_strdup(why);
	e->outcome = g_strdup_printf("skipped:%s", reason);
	e->predicted = NAN;
	e->measured = NAN;
	g_queue_push_tail(&j->history, e);
	while (j->history.length > HISTORY_MAX)
		bal_decision_free(g_queue_pop_head(&j->history));
}

/*
 * What a measured move says about the cost of a byte between nodes
 * (smig_link_est_observe()): moves whose plan was mostly traffic teach the
 * balancer's estimate, which later plans use.
 */
static void learn_link(smig_balancer_t *b, const bal_job_t *j,
		       const bal_decision_t *e, double rate)
{
	smig_link_obs_t o = {
		.link_bw = e->link_bw,
		.iter_before = e->iter_before,
		.iter_after = e->iter_after,
		.comm_before = e->comm_before,
		.comm_after = e->comm_after,
		.rate_before = e->rate_before,
		.rate_after = rate,
	};
	double bw = 0;
	char *why = NULL;

	if (!(e->link_bw > 0))
		return;
	if (smig_link_est_observe(&b->link, &o, &bw, &why))
		smig_cinfo(SMIG_CTX_JOB(j->id),
			   "gen=%" PRIu64 " link cost: %s; between nodes now %.3g MB/s (%u moves measured)",
			   e->gen, why, smig_link_est_bw(&b->link) / 1e6,
			   b->link.n);
	else
		smig_cdebug(SMIG_CTX_JOB(j->id),
			    "gen=%" PRIu64 " link cost unchanged: %s", e->gen,
			    why);
	g_free(why);
}

/*
 * A move committed earlier: once every rank of the step has a full window
 * of samples after it, its measured gain (rate after / before - 1).
 */
void bal_history_measure(smig_balancer_t *b, bal_step_t *s)
{
	bal_job_t *j = s->job;
	double rate;

	if (s->committed || !j->metrics)
		return;
	for (GList *l = j->history.tail; l; l = l->prev) {
		bal_decision_t *e = l->data;

		if (!e->measuring)
			continue;
		if (!smig_decide_rate(j->metrics, s->ntasks,
				      SMIG_METRICS_WINDOW, &rate))
			return;
		e->measuring = false;
		e->measured = rate / e->rate_before - 1;
		smig_cverbose(SMIG_CTX_JOB(j->id),
			      "gen=%" PRIu64 " measured gain %.2f (rate %.3g/s, before %.3g/s, predicted %.2f)",
			      e->gen, e->measured, rate, e->rate_before,
			      e->predicted);
		learn_link(b, j, e, rate);
		bal_job_publish(b, j);
		return;
	}
}

/* The history as QUERY's "history" (aa{sv}, oldest first). RET floating */
GVariant *bal_history_variant(const bal_job_t *j)
{
	GVariantBuilder ab, vb;

	g_variant_builder_init(&ab, G_VARIANT_TYPE("aa{sv}"));
	for (GList *l = j->history.head; l; l = l->next) {
		const bal_decision_t *e = l->data;

		g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&vb, "{sv}", "time",
				      g_variant_new_int64(e->time));
		g_variant_builder_add(&vb, "{sv}", "gen",
				      g_variant_new_uint64(e->gen));
		g_variant_builder_add(&vb, "{sv}", "step",
				      g_variant_new_uint32(e->step_id));
		g_variant_builder_add(&vb, "{sv}", "kind",
				      g_variant_new_string(e->kind));
		g_variant_builder_add(&vb, "{sv}", "ranks",
				      g_variant_new_string(e->ranks));
		g_variant_builder_add(&vb, "{sv}", "from",
				      g_variant_new_string(e->from));
		g_variant_builder_add(&vb, "{sv}", "to",
				      g_variant_new_string(e->to));
		g_variant_builder_add(&vb, "{sv}", "reason",
				      g_variant_new_string(e->reason));
		g_variant_builder_add(&vb, "{sv}", "strategy",
				      g_variant_new_string(e->strategy));
		g_variant_builder_add(&vb, "{sv}", "why",
				      g_variant_new_string(e->why));
		if (!isnan(e->predicted))
			g_variant_builder_add(&vb, "{sv}", "predicted_gain",
				g_variant_new_double(e->predicted));
		if (!isnan(e->measured))
			g_variant_builder_add(&vb, "{sv}", "measured_gain",
				g_variant_new_double(e->measured));
		g_variant_builder_add(&vb, "{sv}", "outcome",
				      g_variant_new_string(e->outcome));
		g_variant_builder_add_value(&ab, g_variant_builder_end(&vb));
	}
	return g_variant_builder_end(&ab);
}

/*
 * The advice of an advise step (a plan with moves, or NULL: none any
 * more); a new advice goes to the history.
 */
void bal_job_advise(smig_balancer_t *b, bal_step_t *s, const smig_plan_t *plan,
		    bool forced)
{
	bal_job_t *j = s->job;
	char *advice = plan ? bal_plan_move_text(s, plan) : NULL;

	if (!g_strcmp0(advice, j->advice)) {
		g_free(advice);
		return;
	}
	if (plan) {
		smig_cverbose(SMIG_CTX_STEP(j->id, s->step_id),
			      "advise: %s (%s)", advice,
			      plan->why ? plan->why : plan->text);
		bal_history_add(j, s, "advise", plan, 0, "advised");
	}
	g_free(j->advice);
	j->advice = advice;
	j->advice_forced = forced;
	bal_job_publish(b, j);
}

/*
 * A history entry of the watchdog (no plan: nothing was decided but to
 * start the same placement again).
 */
void bal_history_relaunch(bal_job_t *j, const bal_step_t *s,
			  const char *missing, const char *outcome, char *why)
{
	bal_decision_t *e = g_new0(bal_decision_t, 1);

	e->id = ++j->hist_seq;
	e->time = g_get_real_time();
	e->gen = s->restore_gen;
	e->step_id = s->step_id;
	e->kind = g_strdup("relaunch");
	e->ranks = g_strdup(missing);
	e->from = g_strdup("");
	e->to = g_strdup("");
	e->reason = g_strdup("restore-timeout");
	e->strategy = g_strdup("watchdog");
	e->why = why;
	e->outcome = g_strdup(outcome);
	e->predicted = NAN;
	e->measured = NAN;
	g_queue_push_tail(&j->history, e);
	while (j->history.length > HISTORY_MAX)
		bal_decision_free(g_queue_pop_head(&j->history));
}
