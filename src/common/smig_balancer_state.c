/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_state.c - the balancer's state file: what is kept, when
 * it is written, and how a restarted balancer reads it back
 */
#include "smig_config.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_state.h"

/*
 * The durable state (MigrateStateDir/balancer.state, doc/design.md "The
 * balancer's state file"): per job one a{sv} record, and per capture in
 * progress what a restarted balancer needs to settle it. Written on every
 * change that matters (bal_job_publish() notices those through job_durable(),
 * phase changes call bal_state_sync() themselves), never on a sample.
 */
static const char *phase_name(bal_phase_t phase)
{
	switch (phase) {
	case PHASE_PREPARE:
		return "prepare";
	case PHASE_CAPTURE:
		return "capture";
	case PHASE_HANDOFF:
		return "handoff";
	case PHASE_RELAUNCH:
		return "relaunch";
	}
	return "unknown";
}

/* The fields of a job that the state file keeps, as text. RET g_free() */
static char *job_durable(const bal_job_t *j)
{
	const bal_decision_t *e = j->history.tail ? j->history.tail->data :
						    NULL;

	/* A new decision, or the newest one's outcome or measured gain. */
	return g_strdup_printf("%u %d %" PRIu64 " %" PRIu64 " %u %s|%s|%s|%" PRIu64 " %s %g",
			       j->uid, (int) j->mode, j->last_good,
			       j->last_tried, j->moves,
			       j->last_move ? j->last_move : "",
			       j->last_error ? j->last_error : "",
			       j->advice ? j->advice : "", j->hist_seq,
			       e ? e->outcome : "", e ? e->measured : 0.0);
}

static void add_str(GVariantBuilder *vb, const char *key, const char *val)
{
	if (val)
		g_variant_builder_add(vb, "{sv}", key,
				      g_variant_new_string(val));
}

/* One job's record; caps: a{sv} of its captures in progress, or NULL */
static GVariant *job_record(const bal_job_t *j, GVariant *caps)
{
	GVariantBuilder vb;

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "id", g_variant_new_uint32(j->id));
	g_variant_builder_add(&vb, "{sv}", "uid", g_variant_new_uint32(j->uid));
	add_str(&vb, "mode", smig_mode_name(j->mode));
	g_variant_builder_add(&vb, "{sv}", "last_good",
			      g_variant_new_uint64(j->last_good));
	g_variant_builder_add(&vb, "{sv}", "last_tried",
			      g_variant_new_uint64(j->last_tried));
	g_variant_builder_add(&vb, "{sv}", "moves",
			      g_variant_new_uint32(j->moves));
	add_str(&vb, "last_move", j->last_move);
	add_str(&vb, "last_error", j->last_error);
	add_str(&vb, "advice", j->advice);
	if (caps)
		g_variant_builder_add(&vb, "{sv}", "captures", caps);
	/* The decision history, as QUERY shows it (at most HISTORY_MAX). */
	g_variant_builder_add(&vb, "{sv}", "history", bal_history_variant(j));
	return g_variant_builder_end(&vb);
}

/* The whole state: a{sv} with "jobs" aa{sv}. RET floating */
static GVariant *state_build(smig_balancer_t *b)
{
	GHashTable *caps = g_hash_table_new_full(NULL, NULL, NULL,
						 (GDestroyNotify) g_ptr_array_unref);
	GVariantBuilder jobs, top;
	GHashTableIter it;
	gpointer k, v;

	g_hash_table_iter_init(&it, b->steps);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		bal_step_t *s = v;
		GPtrArray *list;
		GVariantBuilder cb;

		if (!s->cap)
			continue;
		list = g_hash_table_lookup(caps, GUINT_TO_POINTER(s->job->id));
		if (!list) {
			list = g_ptr_array_new();
			g_hash_table_insert(caps, GUINT_TO_POINTER(s->job->id),
					    list);
		}
		g_variant_builder_init(&cb, G_VARIANT_TYPE_VARDICT);
		g_variant_builder_add(&cb, "{sv}", "step",
				      g_variant_new_uint32(s->step_id));
		add_str(&cb, "phase", phase_name(s->cap->phase));
		g_variant_builder_add(&cb, "{sv}", "gen",
				      g_variant_new_uint64(s->cap->gen));
		g_variant_builder_add(&cb, "{sv}", "good_before",
				      g_variant_new_uint64(s->cap->good_before));
		add_str(&cb, "reason", s->cap->plan->reason);
		g_ptr_array_add(list, g_variant_builder_end(&cb));
	}
	g_variant_builder_init(&jobs, G_VARIANT_TYPE("aa{sv}"));
	g_hash_table_iter_init(&it, b->jobs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		GPtrArray *list = g_hash_table_lookup(caps, k);
		GVariant *cv = NULL;

		if (list)
			cv = g_variant_new_array(G_VARIANT_TYPE_VARDICT,
						 (GVariant **) list->pdata,
						 list->len);
		g_variant_builder_add_value(&jobs, job_record(v, cv));
	}
	g_hash_table_destroy(caps);
	g_variant_builder_init(&top, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&top, "{sv}", "jobs",
			      g_variant_builder_end(&jobs));
	return g_variant_builder_end(&top);
}

/* Write the state file if anything in it changed. */
void bal_state_sync(smig_balancer_t *b)
{
	GError *err = NULL;
	GVariant *st;

	if (!b->conf->state_dir)
		return;
	st = g_variant_ref_sink(state_build(b));
	if (b->saved && g_variant_equal(st, b->saved)) {
		g_variant_unref(st);
		return;
	}
	if (!smig_state_save(b->conf->state_dir, st, &err)) {
		/* Once per failure spell: the next change tries again. */
		if (!b->save_failed)
			smig_error("MigrateStateDir=%s: cannot save the balancer's state: %s",
				   b->conf->state_dir, err->message);
		b->save_failed = true;
		g_error_free(err);
		g_variant_unref(st);
		return;
	}
	if (b->save_failed)
		smig_info("MigrateStateDir=%s: state saved again",
			  b->conf->state_dir);
	b->save_failed = false;
	if (b->saved)
		g_variant_unref(b->saved);
	b->saved = st;
}

/* Save if a durable field of the job changed since the last time. */
void bal_job_sync(smig_balancer_t *b, bal_job_t *j)
{
	char *d = job_durable(j);

	if (!g_strcmp0(d, j->durable)) {
		g_free(d);
		return;
	}
	g_free(j->durable);
	j->durable = d;
	bal_state_sync(b);
}

static bool mode_from_name(const char *name, smig_mode_t *mode)
{
	for (int m = SMIG_MODE_OFF; m <= SMIG_MODE_MANUAL; m++)
		if (!strcmp(name, smig_mode_name(m))) {
			*mode = m;
			return true;
		}
	return false;
}

static char *dict_str(GVariantDict *d, const char *key)
{
	const char *s = NULL;

	if (!g_variant_dict_lookup(d, key, "&s", &s) || !s[0])
		return NULL;
	return g_strdup(s);
}

/*
 * A capture that was in progress when the balancer stopped. Its peers
 * settled it on their side when the connection dropped (agents resume the
 * ranks, srun drops a move it was not told to commit): record that.
 */
static void state_restore_capture(smig_balancer_t *b, bal_job_t *j,
				  GVariant *cv)
{
	GVariantDict d;
	const char *phase = "?";
	uint32_t step = 0;
	uint64_t gen = 0, before = 0;

	g_variant_dict_init(&d, cv);
	g_variant_dict_lookup(&d, "step", "u", &step);
	g_variant_dict_lookup(&d, "phase", "&s", &phase);
	g_variant_dict_lookup(&d, "gen", "t", &gen);
	g_variant_dict_lookup(&d, "good_before", "t", &before);
	/* Its images may be complete, but no agent recorded them as good. */
	if (before < j->last_good)
		j->last_good = before;
	for (GList *l = j->history.head; l; l = l->next) {
		bal_decision_t *e = l->data;

		if (e->gen == gen && !g_strcmp0(e->outcome, "pending")) {
			g_free(e->outcome);
			e->outcome = g_strdup("failed:balancer-restart");
		}
	}
	j->last_tried = MAX(j->last_tried, gen);
	bal_job_set_error(j, gen, "balancer-restart", NULL);
	j->retry_after = bal_now_us() + (int64_t) b->conf->retry_interval_ms *
			 1000;
	smig_cinfo(SMIG_CTX_STEP(j->id, step),
		   "capture gen=%" PRIu64 " was in phase %s when the balancer stopped: abandoned, the ranks resumed where they were",
		   gen, phase);
	g_variant_dict_clear(&d);
}

static char *hist_str(GVariantDict *d, const char *key)
{
	const char *v = NULL;

	g_variant_dict_lookup(d, key, "&s", &v);
	return g_strdup(v ? v : "");
}

/* The decision history of a job record (bal_history_variant()'s format). */
static void state_restore_history(bal_job_t *j, GVariant *hist)
{
	for (gsize i = 0; i < g_variant_n_children(hist); i++) {
		GVariant *ev = g_variant_get_child_value(hist, i);
		bal_decision_t *e = g_new0(bal_decision_t, 1);
		GVariantDict d;

		g_variant_dict_init(&d, ev);
		e->id = ++j->hist_seq;
		g_variant_dict_lookup(&d, "time", "x", &e->time);
		g_variant_dict_lookup(&d, "gen", "t", &e->gen);
		g_variant_dict_lookup(&d, "step", "u", &e->step_id);
		e->kind = hist_str(&d, "kind");
		e->ranks = hist_str(&d, "ranks");
		e->from = hist_str(&d, "from");
		e->to = hist_str(&d, "to");
		e->reason = hist_str(&d, "reason");
		e->strategy = hist_str(&d, "strategy");
		e->why = hist_str(&d, "why");
		e->outcome = hist_str(&d, "outcome");
		if (!g_variant_dict_lookup(&d, "predicted_gain", "d",
					   &e->predicted))
			e->predicted = NAN;
		/* A gain still being measured at the stop stays unknown. */
		if (!g_variant_dict_lookup(&d, "measured_gain", "d",
					   &e->measured))
			e->measured = NAN;
		g_variant_dict_clear(&d);
		g_variant_unref(ev);
		g_queue_push_tail(&j->history, e);
		if (j->history.length > HISTORY_MAX)
			bal_decision_free(g_queue_pop_head(&j->history));
	}
}

/* One job of the state file. RET false (logged) if the record is unusable */
static bool state_restore_job(smig_balancer_t *b, GVariant *rec)
{
	GVariantDict d;
	GVariant *caps, *hist;
	const char *mode = NULL;
	bal_job_t *j;
	uint32_t id = 0;

	g_variant_dict_init(&d, rec);
	if (!g_variant_dict_lookup(&d, "id", "u", &id) || !id ||
	    g_hash_table_contains(b->jobs, GUINT_TO_POINTER(id))) {
		smig_error("MigrateStateDir=%s: a job record without a valid id (%u) skipped",
			   b->conf->state_dir, id);
		g_variant_dict_clear(&d);
		return false;
	}
	j = g_new0(bal_job_t, 1);
	j->id = id;
	j->restored = true;
	g_variant_dict_lookup(&d, "uid", "u", &j->uid);
	if (g_variant_dict_lookup(&d, "mode", "&s", &mode))
		mode_from_name(mode, &j->mode);
	g_variant_dict_lookup(&d, "last_good", "t", &j->last_good);
	g_variant_dict_lookup(&d, "last_tried", "t", &j->last_tried);
	g_variant_dict_lookup(&d, "moves", "u", &j->moves);
	j->last_move = dict_str(&d, "last_move");
	j->last_error = dict_str(&d, "last_error");
	j->advice = dict_str(&d, "advice");
	g_hash_table_insert(b->jobs, GUINT_TO_POINTER(id), j);
	hist = g_variant_dict_lookup_value(&d, "history",
					   G_VARIANT_TYPE("aa{sv}"));
	if (hist) {
		state_restore_history(j, hist);
		g_variant_unref(hist);
	}
	caps = g_variant_dict_lookup_value(&d, "captures",
					   G_VARIANT_TYPE("aa{sv}"));
	for (gsize i = 0; caps && i < g_variant_n_children(caps); i++) {
		GVariant *cv = g_variant_get_child_value(caps, i);

		state_restore_capture(b, j, cv);
		g_variant_unref(cv);
	}
	if (caps)
		g_variant_unref(caps);
	g_variant_dict_clear(&d);
	return true;
}

/*
 * At start: the state of the last run. A bad file is set aside and logged,
 * and the balancer starts empty: a restart must never fail for it.
 * RET false with error set only if MigrateStateDir is not a directory
 */
bool bal_state_restore(smig_balancer_t *b, GError **error)
{
	GVariant *st = NULL, *jobs;
	GError *err = NULL;
	uint32_t n = 0;

	if (!b->conf->state_dir)
		return true;
	if (!smig_state_check_dir(b->conf->state_dir, error))
		return false;
	if (!smig_state_load(b->conf->state_dir, &st, &err)) {
		smig_error("state file not used, starting with no job: %s",
			   err->message);
		g_error_free(err);
		return true;
	}
	if (!st) {
		smig_info("MigrateStateDir=%s: no state file yet, starting with no job",
			  b->conf->state_dir);
		return true;
	}
	jobs = g_variant_lookup_value(st, "jobs", G_VARIANT_TYPE("aa{sv}"));
	for (gsize i = 0; jobs && i < g_variant_n_children(jobs); i++) {
		GVariant *rec = g_variant_get_child_value(jobs, i);

		n += state_restore_job(b, rec);
		g_variant_unref(rec);
	}
	if (jobs)
		g_variant_unref(jobs);
	g_variant_unref(st);
	smig_info("MigrateStateDir=%s: state of %u jobs restored", b->conf->state_dir,
		  n);
	/* Settled captures are gone from the file now. */
	bal_state_sync(b);
	return true;
}
