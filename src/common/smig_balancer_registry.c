/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer_registry.c - jobs, steps and agents: the HELLOs that
 * register them, the checks of registered peers, their state line
 */
#include "smig_config.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <glib.h>

#include "smig_balancer_int.h"
#include "smig_hostlist.h"

static void job_peer_report(smig_balancer_t *b, bal_job_t *j,
			    uint64_t good, uint64_t tried);

/* bal_job_free - free a job and its history (the jobs table's free) */
void bal_job_free(bal_job_t *j)
{
	g_queue_clear_full(&j->history, bal_decision_free);
	g_free(j->last_move);
	g_free(j->last_error);
	g_free(j->advice);
	g_free(j->published);
	g_free(j->durable);
	g_free(j->evac_nodes);
	g_free(j->skipped);
	smig_metrics_free(j->metrics);
	g_free(j);
}

/*
 * " last_decision=auto;gain=0.41[;measured=0.38]": the newest decision of
 * the policy engine (one with a predicted gain), for the state line
 */
static void job_line_decision(const bal_job_t *j, GString *s)
{
	for (GList *l = j->history.tail; l; l = l->prev) {
		const bal_decision_t *e = l->data;

		if (isnan(e->predicted))
			continue;
		g_string_append_printf(s, " last_decision=%s;gain=%.2f",
				       e->kind, e->predicted);
		if (!isnan(e->measured))
			g_string_append_printf(s, ";measured=%.2f",
					       e->measured);
		return;
	}
}

/* The job's state line, doc/design.md format. RET caller g_free()s */
char *bal_job_line(const bal_job_t *j)
{
	GString *s = g_string_new(NULL);

	g_string_printf(s, "mode=%s gen=%" PRIu64 " moves=%u",
			smig_mode_name(j->mode), j->last_good, j->moves);
	if (j->last_move)
		g_string_append_printf(s, " last_move=%s", j->last_move);
	if (j->advice)
		g_string_append_printf(s, " advice=%s", j->advice);
	job_line_decision(j, s);
	if (j->last_error)
		g_string_append_printf(s, " last_error=%s", j->last_error);
	if (j->metrics) {
		char *load = smig_metrics_summary(j->metrics);

		if (load)
			g_string_append_printf(s, " load=%s", load);
		g_free(load);
	}
	return g_string_free(s, FALSE);
}

/* Hand the state line to the host if it changed since the last time. */
void bal_job_publish(smig_balancer_t *b, bal_job_t *j)
{
	char *line = bal_job_line(j);

	bal_job_sync(b, j);
	if (!g_strcmp0(line, j->published)) {
		g_free(line);
		return;
	}
	smig_cdebug(SMIG_CTX_JOB(j->id), "state: %s", line);
	if (b->ops.job_publish)
		b->ops.job_publish(b->ops.ctx, j->id, line);
	g_free(j->published);
	j->published = line;
}

/*
 * bal_job_set_error - the job's last_error: "gen=G;reason=R[;ranks=2,3]"
 * IN reason, ranks - copied; ranks NULL or "": none
 */
void bal_job_set_error(bal_job_t *j, uint64_t gen, const char *reason,
		       const char *ranks)
{
	g_free(j->last_error);
	if (ranks && ranks[0])
		j->last_error = g_strdup_printf("gen=%" PRIu64
						";reason=%s;ranks=%s",
						gen, reason, ranks);
	else
		j->last_error = g_strdup_printf("gen=%" PRIu64 ";reason=%s",
						gen, reason);
}

static void agent_free(bal_agent_t *a)
{
	g_free(a->restored);
	g_free(a->addr);
	g_free(a->node);
	g_free(a->ranks);
	g_free(a);
}

/* bal_step_free - free a step, its capture and agents (steps table) */
void bal_step_free(bal_step_t *s)
{
	bal_capture_free(s->cap);
	g_strfreev(s->nodes);
	g_free(s->slots);
	g_free(s->rank_agent);
	g_ptr_array_free(s->agents, TRUE);
	g_free(s);
}

static gint64 step_key(uint32_t job_id, uint32_t step_id)
{
	return (gint64) (((uint64_t) job_id << 32) | step_id);
}

/* bal_step_find - a tracked step. RET borrowed, or NULL */
bal_step_t *bal_step_find(smig_balancer_t *b, uint32_t job_id, uint32_t step_id)
{
	gint64 key = step_key(job_id, step_id);

	return g_hash_table_lookup(b->steps, &key);
}

/* Detach every connection from a step and forget it. */
void bal_step_remove(smig_balancer_t *b, bal_step_t *s)
{
	if (s->srun) {
		s->srun->role = ROLE_NONE;
		s->srun->step = NULL;
	}
	for (guint i = 0; i < s->agents->len; i++) {
		bal_agent_t *a = g_ptr_array_index(s->agents, i);

		if (a->conn) {
			a->conn->role = ROLE_NONE;
			a->conn->step = NULL;
			a->conn->agent = NULL;
		}
	}
	smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id), "forgotten");
	s->job->nsteps--;
	g_hash_table_remove(b->steps, &s->key);
}

/* Forget a step once neither its srun nor any agent is connected. */
static void step_maybe_remove(smig_balancer_t *b, bal_step_t *s)
{
	if (s->srun || s->agents->len)
		return;
	bal_step_remove(b, s);
}

/*
 * Place an agent's ranks in the step's rank map.
 * RET false with *why set (caller g_free()s) if the node is not in the
 * allocation or a rank is out of range or claimed already.
 */
static bool step_index_agent(bal_step_t *s, bal_agent_t *a, char **why)
{
	uint32_t n;

	for (n = 0; n < s->nnodes; n++)
		if (!strcmp(s->nodes[n], a->node))
			break;
	if (n == s->nnodes) {
		*why = g_strdup_printf("node=%s: not in the allocation",
				       a->node);
		return false;
	}
	for (size_t i = 0; i < a->nranks; i++) {
		uint32_t r = a->ranks[i];

		if (r >= s->ntasks) {
			*why = g_strdup_printf("rank=%u: out of range (ntasks=%u)",
					       r, s->ntasks);
			goto undo;
		}
		if (s->rank_agent[r]) {
			*why = g_strdup_printf("rank=%u: already reported by node %s",
					       r, s->rank_agent[r]->node);
			goto undo;
		}
		s->rank_agent[r] = a;
		continue;
undo:
		for (size_t k = 0; k < i; k++)
			if (s->rank_agent[a->ranks[k]] == a)
				s->rank_agent[a->ranks[k]] = NULL;
		return false;
	}
	a->node_idx = n;
	return true;
}

static void step_unindex_agent(bal_step_t *s, bal_agent_t *a)
{
	if (!s->registered)
		return;
	for (size_t i = 0; i < a->nranks; i++)
		if (a->ranks[i] < s->ntasks &&
		    s->rank_agent[a->ranks[i]] == a)
			s->rank_agent[a->ranks[i]] = NULL;
}

/* bal_step_map_complete - every rank of a registered step has an agent */
bool bal_step_map_complete(const bal_step_t *s)
{
	if (!s->registered)
		return false;
	for (uint32_t r = 0; r < s->ntasks; r++)
		if (!s->rank_agent[r])
			return false;
	return true;
}

/* Ranks as "2,3", caller g_free()s */
char *bal_ranks_text(const uint32_t *ranks, size_t n)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%s%u", i ? "," : "", ranks[i]);
	return g_string_free(s, FALSE);
}

/*
 * MigrateImageStore=local: the agents keep images on their node's disk, so
 * every agent of the step must have a receiver; moves go only to nodes
 * where the step has an agent (see step_poll()).
 */
bool bal_step_store_local(const bal_step_t *s)
{
	if (!s->agents->len)
		return false;
	for (guint i = 0; i < s->agents->len; i++) {
		bal_agent_t *a = g_ptr_array_index(s->agents, i);

		if (!a->handoff_port)
			return false;
	}
	return true;
}

/*
 * bal_step_agent_on - the connected agent of a step on a node
 * RET borrowed, or NULL
 */
bal_agent_t *bal_step_agent_on(const bal_step_t *s, uint32_t node_idx)
{
	for (guint i = 0; i < s->agents->len; i++) {
		bal_agent_t *a = g_ptr_array_index(s->agents, i);

		if (a->conn && a->node_idx == node_idx)
			return a;
	}
	return NULL;
}

/*
 * bal_step_node_spare - a hot spare of the step (doc/design.md, "Hot
 * spares"): it asked for spares=N and holds no rank on node node_idx of
 * its allocation. Srun left the allocation's last N nodes out of the step;
 * a move onto one makes it a node of the step (no longer a spare), and a
 * node the ranks left is a spare again once usable (the caller checks the
 * node's state). A step whose rank map is incomplete has none yet.
 */
bool bal_step_node_spare(const bal_step_t *s, uint32_t node_idx)
{
	if (!s->req.spares || node_idx >= s->nnodes ||
	    !bal_step_map_complete(s))
		return false;
	for (uint32_t r = 0; r < s->ntasks; r++)
		if (s->rank_agent[r]->node_idx == node_idx)
			return false;
	return true;
}

/* bal_uid_may - root, SlurmUser and the job's owner may act on a job */
bool bal_uid_may(const smig_balancer_t *b, uint32_t uid, uint32_t owner)
{
	return uid == 0 || uid == b->admin_uid || uid == owner;
}

/*
 * Check that a HELLO comes from someone allowed; find or make the job.
 * IN good, tried - the HELLO's good_gen and tried_gen, 0 if absent
 */
static bal_job_t *hello_job(smig_balancer_t *b, bal_conn_t *c,
			    const smig_msg_t *m, uint32_t job_id,
			    uint64_t good, uint64_t tried)
{
	bal_job_t *j;
	uint32_t owner;
	char *why;

	if (c->role != ROLE_NONE) {
		bal_send_refused(b, c, m, job_id,
				 "connection already registered");
		return NULL;
	}
	if (!b->ops.job_owner(b->ops.ctx, job_id, &owner)) {
		bal_send_refused(b, c, m, job_id, "job is not running");
		return NULL;
	}
	if (!bal_uid_may(b, m->uid, owner)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, owner);
		bal_send_refused(b, c, m, job_id, why);
		g_free(why);
		return NULL;
	}
	j = g_hash_table_lookup(b->jobs, GUINT_TO_POINTER(job_id));
	if (!j) {
		j = g_new0(bal_job_t, 1);
		j->id = job_id;
		g_hash_table_insert(b->jobs, GUINT_TO_POINTER(job_id), j);
	}
	j->uid = owner;
	job_peer_report(b, j, good, tried);
	return j;
}

static bal_step_t *step_new(smig_balancer_t *b, bal_job_t *j, uint32_t step_id)
{
	bal_step_t *s = g_new0(bal_step_t, 1);

	s->key = step_key(j->id, step_id);
	s->step_id = step_id;
	s->job = j;
	s->agents = g_ptr_array_new_with_free_func((GDestroyNotify) agent_free);
	smig_request_init(&s->req);
	j->nsteps++;
	g_hash_table_insert(b->steps, &s->key, s);
	return s;
}

/* Parse the allocation of a HELLO_SRUN into s. RET false, *why set */
static bool srun_alloc(bal_step_t *s, const char *alloc_nodes,
		       const char *alloc_cpus, uint32_t cpus_per_task,
		       char **why)
{
	GError *err = NULL;
	GArray *cpus;
	char **nodes;
	guint n;

	nodes = smig_hostlist_expand(alloc_nodes, &err);
	if (!nodes) {
		*why = g_strdup_printf("alloc_nodes=%s: %s", alloc_nodes,
				       err->message);
		g_error_free(err);
		return false;
	}
	n = g_strv_length(nodes);
	if (n == 0 || n > MAX_NODES) {
		*why = g_strdup_printf("alloc_nodes=%s: %u nodes (1 to %u accepted)",
				       alloc_nodes, n, MAX_NODES);
		g_strfreev(nodes);
		return false;
	}
	cpus = smig_counts_expand(alloc_cpus, &err);
	if (!cpus) {
		*why = g_strdup_printf("alloc_cpus=%s: %s", alloc_cpus,
				       err->message);
		g_error_free(err);
		g_strfreev(nodes);
		return false;
	}
	if (cpus->len != n) {
		*why = g_strdup_printf("alloc_cpus=%s: %u counts for %u nodes (%s)",
				       alloc_cpus, cpus->len, n, alloc_nodes);
		g_array_unref(cpus);
		g_strfreev(nodes);
		return false;
	}
	s->nodes = nodes;
	s->nnodes = n;
	s->slots = g_new(uint32_t, n);
	for (guint i = 0; i < n; i++)
		s->slots[i] = g_array_index(cpus, uint32_t, i) /
			      MAX(cpus_per_task, 1);
	g_array_unref(cpus);
	return true;
}

/*
 * bal_step_ready - every rank has an agent and is past smig_register(): a
 * PMIx event reaches only ranks that listen, so no capture starts before
 * (capture=signal: the agent itself answers, once it is registered)
 */
bool bal_step_ready(bal_step_t *s)
{
	uint32_t n = 0;

	/* An agent may go (its ranks then have none): checked every time. */
	if (!bal_step_map_complete(s))
		return false;
	if (s->ready)
		return true;
	/* Each rank has exactly one agent now: count their reports. */
	for (guint i = 0; i < s->agents->len; i++) {
		const bal_agent_t *a = g_ptr_array_index(s->agents, i);

		for (size_t k = 0; a->restored && k < a->nranks; k++)
			n += a->restored[k];
	}
	s->ready = s->req.capture == SMIG_CAPTURE_SIGNAL || n >= s->ntasks;
	return s->ready;
}

/* HELLO_SRUN: srun registers a step (its request, tasks and allocation) */
void bal_on_hello_srun(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_hello_srun_t in;
	uint32_t job_id, step_id, ntasks, cpt;
	uint64_t restored;
	const char *request, *alloc_nodes, *alloc_cpus;
	smig_request_t req;
	GError *err = NULL;
	char *why = NULL;
	bal_job_t *j;
	bal_step_t *s;

	if (!bal_decoded(b, c, m, smig_msg_hello_srun_decode(m, &in, &err),
			 &err))
		return;
	job_id = in.job;
	step_id = in.step;
	request = in.request;
	ntasks = in.ntasks;
	alloc_nodes = in.alloc_nodes;
	alloc_cpus = in.alloc_cpus;
	cpt = in.has_cpus_per_task ? in.cpus_per_task : 1;
	restored = in.has_restored_gen ? in.restored_gen : 0;
	if (ntasks == 0 || ntasks > MAX_RANKS) {
		why = g_strdup_printf("ntasks=%u: 1 to %u accepted", ntasks,
				      MAX_RANKS);
		goto refuse;
	}
	if (!smig_request_parse(request, &req, &err)) {
		why = g_strdup_printf("request=%s: %s", request, err->message);
		g_error_free(err);
		goto refuse;
	}
	if (!(j = hello_job(b, c, m, job_id,
			    in.has_good_gen ? in.good_gen : 0, 0)))
		goto out;

	s = bal_step_find(b, job_id, step_id);
	if (s && (s->registered || s->srun)) {
		why = g_strdup_printf("StepId=%u already registered", step_id);
		goto refuse;
	}
	if (!s && g_hash_table_size(b->steps) >= MAX_STEPS) {
		why = g_strdup_printf("too many steps tracked (%u)", MAX_STEPS);
		goto refuse;
	}
	/* One user's job must not take every slot from the others. */
	if (!s && j->nsteps >= MAX_JOB_STEPS) {
		why = g_strdup_printf("too many steps of JobId=%u tracked (%u)",
				      j->id, MAX_JOB_STEPS);
		goto refuse;
	}
	if (!s)
		s = step_new(b, j, step_id);
	if (!srun_alloc(s, alloc_nodes, alloc_cpus, cpt, &why)) {
		step_maybe_remove(b, s);
		goto refuse;
	}
	s->req = req;
	s->ntasks = ntasks;
	s->rank_agent = g_new0(bal_agent_t *, ntasks);
	s->registered = true;
	s->next_periodic = bal_now_us() + (int64_t) req.every_ms * 1000;
	s->srun = c;
	c->role = ROLE_SRUN;
	c->step = s;
	j->mode = req.mode;
	/* Registered again while its committed move is under way. */
	if (in.has_move_gen && in.move_gen)
		s->committed = true;

	/* Agents that came first: place their ranks now. */
	for (guint i = 0; i < s->agents->len; i++) {
		bal_agent_t *a = g_ptr_array_index(s->agents, i);
		char *bad = NULL;

		if (a->conn && !step_index_agent(s, a, &bad)) {
			smig_cerror(SMIG_CTX_STEP(job_id, step_id),
				    "agent %s: %s", a->conn->peer, bad);
			g_free(bad);
			bal_conn_kill(a->conn, "inconsistent registration");
		}
	}

	/* A relaunched step replaces the one it was moved from. */
	if (restored && in.has_prev_step) {
		bal_step_t *old = bal_step_find(b, job_id, in.prev_step);

		if (old && old != s)
			bal_step_remove(b, old);
		j->last_good = MAX(j->last_good, restored);
		j->last_tried = MAX(j->last_tried, restored);
		g_clear_pointer(&j->advice, g_free);
		bal_restore_watch(b, s, restored,
				  in.has_restore_try ? in.restore_try : 1);
	}
	smig_cverbose(SMIG_CTX_STEP(job_id, step_id),
		      "registered by srun %s uid=%u: %s ntasks=%u nodes=%s restored_gen=%" PRIu64,
		      c->peer, m->uid, request, ntasks, alloc_nodes, restored);
	bal_job_publish(b, j);
	goto out;
refuse:
	bal_send_refused(b, c, m, job_id, why);
	g_free(why);
out:
	smig_msg_hello_srun_clear(&in);
}

/*
 * agent_unprotected - a node agent could not set its step up (the job's
 * image directory could not be made or checked, ...): it says why in
 * HELLO_AGENT's "error" instead of registering. The step can never be
 * captured whole: the reason goes to the log, to the job's last_error
 * (reason=unprotected, the node's ranks) and to the step's srun, which
 * prints it on the user's terminal (REFUSED what=unprotected).
 * IN error - the agent's text (borrowed; cut at MAX_REASON bytes)
 */
static void agent_unprotected(smig_balancer_t *b, bal_conn_t *c, bal_job_t *j,
			      uint32_t step_id, const char *node,
			      const uint32_t *ranks, size_t nranks,
			      const char *error)
{
	bal_step_t *s = bal_step_find(b, j->id, step_id);
	char *rtext = bal_ranks_text(ranks, MIN(nranks, 64));
	size_t len = strlen(error);
	char *cut = len > MAX_REASON ? g_utf8_make_valid(error, MAX_REASON) :
				       NULL;
	char *text = g_strdup_printf("node=%s ranks=%s%s cannot be protected: %s%s; the step runs without migration",
				     node, rtext, nranks > 64 ? ",..." : "",
				     cut ? cut : error, cut ? "..." : "");
	smig_msg_refused_t out = { .what = "unprotected", .reason = text };

	smig_cerror(SMIG_CTX_STEP(j->id, step_id), "%s", text);
	bal_job_set_error(j, MAX(j->last_good, j->last_tried) + 1, "unprotected",
			  rtext);
	bal_job_publish(b, j);
	if (s && s->srun)
		bal_conn_send(s->srun, SMIG_MSG_REFUSED,
			      smig_msg_refused_body(&out));
	/* The agent waits for an answer before it closes. */
	out.reason = "recorded";
	bal_conn_send(c, SMIG_MSG_REFUSED, smig_msg_refused_body(&out));
	g_free(text);
	g_free(cut);
	g_free(rtext);
}

/*
 * HELLO_AGENT: a node agent registers its ranks of a step, or says why it
 * cannot (agent_unprotected())
 */
void bal_on_hello_agent(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_hello_agent_t in;
	uint32_t job_id, step_id, *ranks, port;
	size_t nranks;
	const char *node;
	GError *err = NULL;
	char *why = NULL;
	bal_agent_t *a;
	bal_job_t *j;
	bal_step_t *s;

	if (!bal_decoded(b, c, m, smig_msg_hello_agent_decode(m, &in, &err),
			 &err))
		return;
	job_id = in.job;
	step_id = in.step;
	node = in.node;
	ranks = in.ranks;
	nranks = in.n_ranks;
	port = in.has_handoff_port ? in.handoff_port : 0;
	if (!node[0]) {
		why = g_strdup("node: empty name");
		goto refuse;
	}
	if (nranks == 0 || nranks > MAX_RANKS) {
		why = g_strdup_printf("node=%s: %zu ranks (1 to %u accepted)",
				      node, nranks, MAX_RANKS);
		goto refuse;
	}
	if (!(j = hello_job(b, c, m, job_id,
			    in.has_good_gen ? in.good_gen : 0,
			    in.has_tried_gen ? in.tried_gen : 0)))
		goto out;
	if (in.has_error) {
		agent_unprotected(b, c, j, step_id, node, ranks, nranks,
				  in.error);
		goto out;
	}
	s = bal_step_find(b, job_id, step_id);
	if (!s && g_hash_table_size(b->steps) >= MAX_STEPS) {
		why = g_strdup_printf("too many steps tracked (%u)", MAX_STEPS);
		goto refuse;
	}
	/* One user's job must not take every slot from the others. */
	if (!s && j->nsteps >= MAX_JOB_STEPS) {
		why = g_strdup_printf("too many steps of JobId=%u tracked (%u)",
				      j->id, MAX_JOB_STEPS);
		goto refuse;
	}
	if (s && s->committed) {
		why = g_strdup_printf("StepId=%u is ending (moved)", step_id);
		goto refuse;
	}
	for (guint i = 0; s && i < s->agents->len; i++) {
		a = g_ptr_array_index(s->agents, i);
		if (!strcmp(a->node, node)) {
			why = g_strdup_printf("node=%s already registered",
					      node);
			goto refuse;
		}
	}
	if (!s)
		s = step_new(b, j, step_id);
	a = g_new0(bal_agent_t, 1);
	a->node = g_strdup(node);
	a->ranks = ranks;
	a->nranks = nranks;
	if (port && port <= UINT16_MAX) {
		const char *colon = strrchr(c->peer, ':');

		a->handoff_port = port;
		/* "addr:port" or "[v6addr]:port" as address_text() made it */
		a->addr = colon ? g_strndup(c->peer, colon - c->peer) :
				  g_strdup(c->peer);
		if (a->addr[0] == '[') {
			size_t l = strlen(a->addr);

			memmove(a->addr, a->addr + 1, l);
			if (l >= 2 && a->addr[l - 2] == ']')
				a->addr[l - 2] = '\0';
		}
	}
	/* a owns the ranks now */
	in.ranks = NULL;
	in.n_ranks = 0;
	if (s->registered && !step_index_agent(s, a, &why)) {
		agent_free(a);
		step_maybe_remove(b, s);
		goto refuse;
	}
	a->conn = c;
	g_ptr_array_add(s->agents, a);
	c->role = ROLE_AGENT;
	c->step = s;
	c->agent = a;
	smig_cverbose(SMIG_CTX_NODE(job_id, step_id, node),
		      "agent %s uid=%u ranks=%zu", c->peer, m->uid, nranks);
	goto out;
refuse:
	bal_send_refused(b, c, m, job_id, why);
	g_free(why);
out:
	smig_msg_hello_agent_clear(&in);
}

/*
 * Common checks of a message on a registered connection: the role, the
 * sender, the job and step fields. RET the step, or NULL if refused.
 */
bal_step_t *bal_bound_step(smig_balancer_t *b, bal_conn_t *c,
			   const smig_msg_t *m, bal_conn_role_t role,
			   uint32_t job_id, uint32_t step_id)
{
	bal_step_t *s = c->step;
	char *why;

	if (c->role != role || !s) {
		bal_send_refused(b, c, m, job_id,
				 role == ROLE_SRUN ?
				 "connection is not registered as srun" :
				 "connection is not registered as an agent");
		return NULL;
	}
	if (job_id != s->job->id || step_id != s->step_id) {
		why = g_strdup_printf("connection is registered for JobId=%u StepId=%u, not JobId=%u StepId=%u",
				      s->job->id, s->step_id, job_id, step_id);
		bal_send_refused(b, c, m, job_id, why);
		g_free(why);
		return NULL;
	}
	if (!bal_uid_may(b, m->uid, s->job->uid)) {
		why = g_strdup_printf("uid %u is not the owner (uid %u) of the job",
				      m->uid, s->job->uid);
		bal_send_refused(b, c, m, job_id, why);
		g_free(why);
		return NULL;
	}
	return s;
}

/* The peer says its side of the step is over. */
void bal_on_bye(smig_balancer_t *b, bal_conn_t *c, const smig_msg_t *m)
{
	smig_msg_bye_t in;
	GError *err = NULL;
	bal_step_t *s;

	/* A step replaced by its relaunch: its peers leave unnoticed. */
	if (c->role == ROLE_NONE) {
		bal_conn_kill(c, NULL);
		return;
	}
	if (!bal_decoded(b, c, m, smig_msg_bye_decode(m, &in, &err), &err))
		return;
	s = bal_bound_step(b, c, m, c->role, in.job, in.step);
	if (!s)
		return;
	smig_cdebug(SMIG_CTX_STEP(s->job->id, s->step_id),
		    "BYE from %s status=%d", c->peer, in.status);
	c->bye = true;
	/* The rest is what a close does; the socket closes soon after. */
	bal_conn_kill(c, NULL);
}

/*
 * An agent's connection was closed by its end without a BYE: its
 * slurmstepd is gone (killed, crashed), and Slurm 22.05 waits for that
 * node's tasks forever. srun ends the step (ABORT reason=agent-lost with
 * the node), so that the job can restart from its last good generation.
 */
static void step_agent_gone(bal_step_t *s, const char *node, uint64_t gen)
{
	smig_msg_abort_t out = {
		.job = s->job->id, .step = s->step_id, .gen = gen,
		.reason = "agent-lost",
		.node = (char *) node, .has_node = true,
	};

	smig_cinfo(SMIG_CTX_NODE(s->job->id, s->step_id, node),
		   "agent gone without BYE (its slurmstepd died): %s",
		   s->srun ? "srun ends the step" : "no srun to end the step");
	if (!s->srun)
		return;
	bal_conn_send(s->srun, SMIG_MSG_ABORT, smig_msg_abort_body(&out));
}

/* What a closed connection means for its step. */
void bal_conn_detach(smig_balancer_t *b, bal_conn_t *c)
{
	bal_step_t *s = c->step;
	bal_agent_t *a = c->agent;

	if (!s)
		return;
	/* A requeue or the job's end kills its steps: ask Slurm anew. */
	if (b->ops.jobs_changed)
		b->ops.jobs_changed(b->ops.ctx);
	c->step = NULL;
	c->agent = NULL;
	if (c->role == ROLE_SRUN) {
		s->srun = NULL;
		if (s->cap)
			bal_capture_abort(b, s, "srun-lost", NULL);
	} else if (c->role == ROLE_AGENT && a) {
		char *ranks = bal_ranks_text(a->ranks, a->nranks);
		char *node = g_strdup(a->node);
		uint64_t gen = s->cap ? s->cap->gen : 0;

		a->conn = NULL;
		step_unindex_agent(s, a);
		g_ptr_array_remove(s->agents, a);	/* frees a */
		/* BYE: its ranks ended (the step is over), nothing was lost. */
		if (s->cap)
			bal_capture_abort(b, s, c->bye ? "step-ended" : "agent-lost",
					  ranks);
		if (c->eof && !c->bye && !s->committed)
			step_agent_gone(s, node, gen);
		g_free(node);
		g_free(ranks);
	}
	c->role = ROLE_NONE;
	step_maybe_remove(b, s);
}

/*
 * What a peer that registers again (after its connection dropped, or after
 * a restart of the balancer) knows: generations it saw committed, or that
 * were started. Numbers only grow, so a lost or stale state file can never
 * make the balancer hand out a generation again.
 */
static void job_peer_report(smig_balancer_t *b, bal_job_t *j,
			    uint64_t good, uint64_t tried)
{
	if (good > j->last_good)
		j->last_good = good;
	j->last_tried = MAX(j->last_tried, MAX(good, tried));
}
