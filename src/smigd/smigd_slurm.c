/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_slurm.c - the balancer's host operations on libslurm's public API
 *
 * With smigd_topo.c (the switch tree), the only file of smigd that calls
 * libslurm, and only <slurm/slurm.h>. It
 * reads and updates job and node records through RPCs to slurmctld:
 *   node_flags    slurm_load_node() with its update time (slurmctld answers
 *                 "no change"), at most once per MigratePollInterval, or
 *                 per 6 while Slurm's triggers tell of node events
 *                 (smigd_trigger.c), and at once after one
 *   job_owner,    the whole job table: slurm_load_jobs() with its update
 *   job_end_time  time (likewise), as often (and when a step's peer left),
 *                 one RPC however many jobs the balancer follows
 * The balancer asks far more often (every tick, smig_conf_tick_ms()): its
 * questions are answered from these tables. Even a "no change" answer costs
 * slurmctld: 22.05's REQUEST_NODE_INFO takes the node write lock and walks
 * every node (select_g_select_nodeinfo_set_all()) before it compares times
 * (bench/results/smigd-poll.txt measures it).
 *   job_publish   the job's AdminComment segment "smig[LINE]"
 *                 (smigd_comment.h): stored here, written by
 *                 smigd_slurm_flush() from the main loop, read-modify-write,
 *                 only when it differs, at most once a second per job, and
 *                 at most every 5 minutes when only the numbers of its
 *                 load= summary drifted (smigd_comment_minor())
 *   job_requeue   slurm_requeue(), then exc_nodes through slurm_update_job()
 *                 on the pending job (Slurm delays its begin time after a
 *                 requeue, so it cannot start in between)
 *   job_release   begin_time through slurm_update_job()
 *   topology      the switch tree: slurm_load_topo() at start, on SIGHUP
 *                 (smigd_slurm_topology_reload()) and when slurmctld's
 *                 configuration changed (slurm_load_ctl_conf() with its
 *                 update time, at most once per TOPO_CHECK_US, asked only
 *                 when the balancer wants the tree for a decision): never a
 *                 per-poll cost. No records (topology/none, flat, default):
 *                 one flat network.
 *   job_fate      the job table read now (a node's epilog asks once per
 *                 job that has images, smig images once per directory):
 *                 state, end time, owner (smigd_phase.h)
 * When slurmctld does not answer, the last answer stands: a running job is
 * not taken for ended because its controller restarts.
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "smig_error.h"
#include "smig_hostlist.h"
#include "smig_log.h"
#include "smig_policy.h"
#include "smig_topology.h"
#include "smigd_comment.h"
#include "smigd_phase.h"
#include "smigd_slurm.h"
#include "smigd_topo.h"

/*
 * How often, at most, slurmctld is asked whether its configuration (and so
 * topology.conf, read again on "scontrol reconfigure") changed.
 */
#define TOPO_CHECK_US (60 * G_USEC_PER_SEC)

/* A job's AdminComment is written at most this often. */
#define PUBLISH_GAP_US (1000 * 1000)
/* ... and when only its load= summary drifted (smigd_comment_minor()). */
#define LOAD_GAP_US ((int64_t) 300 * 1000 * 1000)
/*
 * Slurm's own default credential lifetime: DEFAULT_EXPIRATION_WINDOW, 120 s
 * in 22.05's src/common/slurm_cred.c and 24.11's src/interfaces/cred.h
 * (job_mgr.c's comment of 1200 is only its fallback when it cannot ask).
 * A begin time later than submit + this + 1 is a user's, never moved.
 */
#define DEFAULT_CRED_EXPIRE 120
/*
 * srun's wait for an aborted step beyond KillWait (STEP_ABORT_TIME of
 * src/api/step_launch.c, 2 s in 22.05 to 26.05): an srun of a requeued
 * run may still cancel its step by id until KillWait plus this after its
 * abort (doc/faults.md, "A requeued job's new step cancelled by the old
 * run's srun").
 */
#define SRUN_ABORT_WAIT 2
/*
 * Whether Slurm's requeue of a job after a node failure can give the new
 * run's first step the id of a step of the old run (N.0 again): 24.11's
 * kill_running_job_by_node_name() calls batch_requeue_fini(), which resets
 * the job's next step id; 22.05.8's does not (the new run's first step was
 * N.1 in the same test). Releases between them are taken to reuse ids.
 */
#if SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(23, 2, 0)
#define REQUEUE_REUSES_STEP_IDS 0
#else
#define REQUEUE_REUSES_STEP_IDS 1
#endif

/*
 * What differs between Slurm releases, in this file only, as configure
 * found it: SMIG_SLURM_STEP_ID_API, from 26.05 the job calls and records
 * name a job by a slurm_step_id_t (job_desc_msg_t.step_id,
 * slurm_job_info_t.step_id); HAVE_DECL_SLURM_FREE_CTL_CONF, 26.05 calls it
 * slurm_free_conf().
 */
#if SMIG_SLURM_STEP_ID_API
#define JOB_INFO_ID(j) ((j)->step_id.job_id)
#define JOB_DESC_SET_ID(d, id) ((d)->step_id.job_id = (id))

static slurm_step_id_t job_step_id(uint32_t job_id)
{
	slurm_step_id_t id = SLURM_STEP_ID_INITIALIZER;

	id.job_id = job_id;
	return id;
}
#else
#define JOB_INFO_ID(j) ((j)->job_id)
#define JOB_DESC_SET_ID(d, id) ((d)->job_id = (id))
#endif

static void free_ctl_conf(slurm_conf_t *ctl)
{
#if HAVE_DECL_SLURM_FREE_CTL_CONF
	slurm_free_ctl_conf(ctl);
#else
	slurm_free_conf(ctl);	/* 26.05 */
#endif
}

/*
 * slurm_load_job() of one job; *msg freed with slurm_free_job_info_msg().
 * SHOW_LOCAL: without it libslurm first asks slurmctld for the federation
 * (REQUEST_FED_INFO), a second RPC per call; smigd's jobs are local ones.
 */
static int load_job(job_info_msg_t **msg, uint32_t job_id)
{
#if SMIG_SLURM_STEP_ID_API
	return slurm_load_job(msg, job_step_id(job_id), SHOW_ALL | SHOW_LOCAL);
#else
	return slurm_load_job(msg, job_id, SHOW_ALL | SHOW_LOCAL);
#endif
}

static int requeue_job(uint32_t job_id)
{
#if SMIG_SLURM_STEP_ID_API
	return slurm_requeue(job_step_id(job_id), 0);
#else
	return slurm_requeue(job_id, 0);
#endif
}

typedef struct node_ent {
	uint32_t state;		/* node_state as slurmctld sent it */
	int64_t noresp_since;	/* monotonic us NO_RESPOND was first seen */
} node_ent_t;

/* One job of slurmctld's job table, as far as the balancer needs it. */
typedef struct job_ent {
	uint32_t state, uid, time_limit, het_job_id;
	uint16_t batch_flag, requeue, restart_cnt;
	time_t end_time, submit_time, eligible_time;
	char *exc_nodes;
} job_ent_t;

typedef struct pub_ent {
	char *want;		/* line the balancer published last */
	char *have;		/* line AdminComment holds (last written) */
	bool dirty;		/* want not written yet */
	int64_t written;	/* monotonic us of the last write */
} pub_ent_t;

struct smigd_slurm {
	GMutex lock;		/* everything below, and every RPC */
	uint32_t admin_uid;
	uint32_t msg_timeout;	/* seconds */
	uint32_t cred_expire;	/* seconds */
	uint32_t kill_wait;	/* seconds, KillWait */
	char *conf_path;
	char *state_save;
	GHashTable *nodes;	/* name -> node_ent_t */
	time_t nodes_update;	/* last_update of the node table */
	int64_t nodes_polled;	/* monotonic us of the last read, 0: due */
	const char *nodes_due;	/* why it is due when nodes_polled is 0 */
	int64_t max_age;	/* us: the tables are read again when older */
	bool ctld_lost;		/* an RPC failed: log once per outage */
	GHashTable *jobs;	/* job id -> job_ent_t, every job slurmctld has */
	time_t jobs_update;	/* last_update of the job table */
	int64_t jobs_loaded;	/* monotonic us of the last answer, 0: stale */
	GHashTable *pubs;	/* job id -> pub_ent_t */
	smigd_topo_cache_t *topo;	/* the switch tree */
	time_t conf_update;	/* last_update of slurmctld's config */
};

static void job_ent_free(gpointer p)
{
	job_ent_t *e = p;

	g_free(e->exc_nodes);
	g_free(e);
}

static void pub_ent_free(gpointer p)
{
	pub_ent_t *e = p;

	g_free(e->want);
	g_free(e->have);
	g_free(e);
}

/* "cred_expire=N" of AuthInfo, else Slurm's default. */
static uint32_t parse_cred_expire(const char *authinfo)
{
	const char *p = authinfo ? strstr(authinfo, "cred_expire=") : NULL;
	uint64_t v;

	if (!p)
		return DEFAULT_CRED_EXPIRE;
	v = g_ascii_strtoull(p + strlen("cred_expire="), NULL, 10);
	return v ? (uint32_t) MIN(v, G_MAXUINT32) : DEFAULT_CRED_EXPIRE;
}

/* An RPC failed (errno e): say so once, until one works again. */
static void ctld_failed(smigd_slurm_t *s, const char *what, int e)
{
	if (s->ctld_lost)
		return;
	s->ctld_lost = true;
	smig_error("%s: %s: the last answers stand until slurmctld answers again",
		   what, slurm_strerror(e));
}

static void ctld_answered(smigd_slurm_t *s)
{
	if (!s->ctld_lost)
		return;
	s->ctld_lost = false;
	smig_info("slurmctld answers again");
}

/*
 * smigd_slurm_new - initialise libslurm and read slurmctld's configuration
 * See smigd_slurm.h.
 */
smigd_slurm_t *smigd_slurm_new(GError **error)
{
	slurm_conf_t *ctl = NULL;
	smigd_slurm_t *s;
	const char *env;

	slurm_init(NULL);
	if (slurm_load_ctl_conf((time_t) 0, &ctl) != SLURM_SUCCESS) {
		int e = errno;

		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "cannot read slurmctld's configuration (SLURM_CONF=%s): %s",
			    g_getenv("SLURM_CONF") ? g_getenv("SLURM_CONF") :
			    "unset", slurm_strerror(e));
		return NULL;
	}
#if SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(23, 2, 0)
	/* SlurmctldPlugstack (and the slurmctld plugin) is gone in 23.02. */
	if (ctl->slurmctld_plugstack &&
	    strstr(ctl->slurmctld_plugstack, "migrate")) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "SlurmctldPlugstack=%s: slurmctld still loads slurmctld_migrate.so, the balancer of an older slurm-migrate; remove it from slurm.conf and restart slurmctld to run smigd",
			    ctl->slurmctld_plugstack);
		free_ctl_conf(ctl);
		return NULL;
	}
#endif
	s = g_new0(smigd_slurm_t, 1);
	g_mutex_init(&s->lock);
	s->admin_uid = ctl->slurm_user_id;
	s->msg_timeout = ctl->msg_timeout;
	s->cred_expire = parse_cred_expire(ctl->authinfo);
	s->kill_wait = ctl->kill_wait;
	env = g_getenv("SLURM_CONF");
	s->conf_path = g_strdup(env && *env ? env : ctl->slurm_conf);
	s->state_save = g_strdup(ctl->state_save_location);
	s->conf_update = ctl->last_update;
	free_ctl_conf(ctl);
	s->nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 g_free);
	s->jobs = g_hash_table_new_full(NULL, NULL, NULL, job_ent_free);
	s->pubs = g_hash_table_new_full(NULL, NULL, NULL, pub_ent_free);
	s->topo = smigd_topo_cache_new();
	return s;
}

/* smigd_slurm_free - free the link; NULL is a no-op. */
void smigd_slurm_free(smigd_slurm_t *s)
{
	if (!s)
		return;
	g_hash_table_destroy(s->nodes);
	g_hash_table_destroy(s->jobs);
	g_hash_table_destroy(s->pubs);
	smigd_topo_cache_free(s->topo);
	g_free(s->conf_path);
	g_free(s->state_save);
	g_mutex_clear(&s->lock);
	g_free(s);
}

/* smigd_slurm_admin_uid - SlurmUser's uid */
uint32_t smigd_slurm_admin_uid(const smigd_slurm_t *s)
{
	return s->admin_uid;
}

/* smigd_slurm_conf_path - path of slurm.conf (borrowed) */
const char *smigd_slurm_conf_path(const smigd_slurm_t *s)
{
	return s->conf_path;
}

const char *smigd_slurm_state_save(const smigd_slurm_t *s)
{
	return s->state_save;
}

/*
 * smigd_slurm_set_poll - see smigd_slurm.h. The tables' age: one interval,
 * or SMIGD_NODE_SAFETY_POLLS of them while node events come and the
 * interval is at least SMIGD_NODE_SAFETY_MIN_MS; then the node
 * table is due on a node event, the job table on a node event and when a
 * step's srun or agent leaves (host_nodes_changed(), host_jobs_changed()):
 * a requeue kills the job's steps or follows its node going down.
 */
void smigd_slurm_set_poll(smigd_slurm_t *s, const smig_conf_t *conf,
			  bool node_events)
{
	bool safety = node_events &&
		      conf->poll_interval_ms >= SMIGD_NODE_SAFETY_MIN_MS;
	int64_t age = (int64_t) conf->poll_interval_ms * 1000 *
		      (safety ? SMIGD_NODE_SAFETY_POLLS : 1);

	g_mutex_lock(&s->lock);
	/*
	 * Half a tick of slack: the balancer asks once a tick, and a table
	 * read one tick plus jitter ago must count as due, not wait a tick.
	 */
	s->max_age = MAX(age - (int64_t) smig_conf_tick_ms(conf) * 500, 1);
	/*
	 * A (re)started balancer reads both tables afresh: a table read
	 * lazily under the old settings may be as old as the last job that
	 * asked (a drain since resumed, whose trigger Slurm fires up to 15 s
	 * later), and the new interval must not make it look recent.
	 */
	if (s->nodes_update) {
		s->nodes_polled = 0;
		s->nodes_due = "the balancer started";
	}
	s->jobs_loaded = 0;
	g_mutex_unlock(&s->lock);
}

/* A node event (Slurm's trigger): both tables are due now. */
static void host_nodes_changed(void *ctx)
{
	smigd_slurm_t *s = ctx;

	g_mutex_lock(&s->lock);
	s->nodes_polled = 0;
	s->nodes_due = "a node event";
	s->jobs_loaded = 0;
	g_mutex_unlock(&s->lock);
}

/* A step's srun or agent left: its job may have ended or been requeued. */
static void host_jobs_changed(void *ctx)
{
	smigd_slurm_t *s = ctx;

	g_mutex_lock(&s->lock);
	s->jobs_loaded = 0;
	g_mutex_unlock(&s->lock);
}

/* -------------------------------------------------------------- topology */

/* smigd_slurm_topology_reload - see smigd_slurm.h */
void smigd_slurm_topology_reload(smigd_slurm_t *s)
{
	smigd_topo_cache_reload(s->topo);
}

/* Whether slurmctld's configuration changed since last asked. */
static bool conf_changed(smigd_slurm_t *s)
{
	slurm_conf_t *ctl = NULL;
	bool changed = false;

	g_mutex_lock(&s->lock);
	/* "No change" is an error answer: the tree stands. */
	if (slurm_load_ctl_conf(s->conf_update, &ctl) == SLURM_SUCCESS &&
	    ctl) {
		changed = ctl->last_update != s->conf_update;
		s->conf_update = ctl->last_update;
		free_ctl_conf(ctl);
	}
	g_mutex_unlock(&s->lock);
	return changed;
}

/*
 * The switch tree for a decision or a STATUS; read again when slurmctld's
 * configuration changed (asked at most once per TOPO_CHECK_US).
 */
static smig_topology_t *host_topology(void *ctx)
{
	smigd_slurm_t *s = ctx;
	bool never;

	if (smigd_topo_cache_due(s->topo, TOPO_CHECK_US, &never)) {
		/* Not read yet: smigd reads it once its log is open. */
		if (never) {
			smigd_topo_cache_reload(s->topo);
		} else if (conf_changed(s)) {
			smig_info("slurmctld's configuration changed: reading the switch tree again");
			smigd_topo_cache_reload(s->topo);
		}
	}
	return smigd_topo_cache_ref(s->topo);
}

/* ----------------------------------------------------------------- nodes */

/* Reload the node table if older than s->max_age, or due. Lock held. */
static void nodes_refresh(smigd_slurm_t *s)
{
	int64_t now = g_get_monotonic_time();
	node_info_msg_t *msg = NULL;
	GHashTable *fresh;
	const char *why;

	if (s->nodes_polled && now - s->nodes_polled < s->max_age)
		return;
	why = !s->nodes_update ? "first read" :
	      !s->nodes_polled ? s->nodes_due : "its age";
	s->nodes_polled = now;
	if (slurm_load_node(s->nodes_update, &msg, SHOW_ALL) !=
	    SLURM_SUCCESS) {
		int e = errno;

		if (e == SLURM_NO_CHANGE_IN_DATA)
			ctld_answered(s);
		else
			ctld_failed(s, "slurm_load_node", e);
		return;
	}
	ctld_answered(s);
	fresh = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	for (uint32_t i = 0; i < msg->record_count; i++) {
		node_info_t *n = &msg->node_array[i];
		node_ent_t *old, *e;

		if (!n->name)
			continue;
		e = g_new0(node_ent_t, 1);
		e->state = n->node_state;
		if (e->state & NODE_STATE_NO_RESPOND) {
			old = g_hash_table_lookup(s->nodes, n->name);
			e->noresp_since = old && old->noresp_since ?
					  old->noresp_since : now;
		}
		g_hash_table_replace(fresh, g_strdup(n->name), e);
	}
	/* Rare (a change, read on an event or every interval): verbose. */
	smig_verbose("node table read (%s): %u nodes, slurmctld's update time %ld",
		     why, msg->record_count, (long) msg->last_update);
	s->nodes_update = msg->last_update;
	slurm_free_node_info_msg(msg);
	g_hash_table_destroy(s->nodes);
	s->nodes = fresh;
}

static bool host_node_flags(void *ctx, const char *node, uint32_t *flags)
{
	smigd_slurm_t *s = ctx;
	node_ent_t *e;

	g_mutex_lock(&s->lock);
	nodes_refresh(s);
	e = g_hash_table_lookup(s->nodes, node);
	if (e) {
		*flags = SMIG_NODE_OK;
		if (e->state & NODE_STATE_DRAIN)
			*flags |= SMIG_NODE_DRAIN;
		/*
		 * slurmctld also sets NO_RESPOND on "scontrol update
		 * state=resume" until the node registers again: only a
		 * silence longer than MessageTimeout (counted from when
		 * smigd first saw it) means the node is gone.
		 */
		if ((e->state & NODE_STATE_BASE) == NODE_STATE_DOWN ||
		    ((e->state & NODE_STATE_NO_RESPOND) &&
		     g_get_monotonic_time() - e->noresp_since >
		     (int64_t) s->msg_timeout * G_USEC_PER_SEC))
			*flags |= SMIG_NODE_DOWN;
		if (e->state & NODE_STATE_FAIL)
			*flags |= SMIG_NODE_FAIL;
	}
	g_mutex_unlock(&s->lock);
	return e != NULL;
}

/* ------------------------------------------------------------------ jobs */

/*
 * Reload the job table if it is older than max_age us (0: ask now): one
 * slurm_load_jobs() with the table's update time, which slurmctld answers
 * "no change" cheaply when no job changed since, the way squeue and
 * slurmrestd keep their copy. One RPC per refresh however many jobs the
 * balancer follows. When slurmctld does not answer, the last table stands.
 * Lock held.
 * RET whether slurmctld answered this time
 */
static bool jobs_refresh(smigd_slurm_t *s, int64_t max_age)
{
	int64_t now = g_get_monotonic_time();
	job_info_msg_t *msg = NULL;
	GHashTable *fresh;
	int e_no;

	if (s->jobs_loaded && max_age && now - s->jobs_loaded < max_age)
		return false;
	if (slurm_load_jobs(s->jobs_update, &msg, SHOW_ALL | SHOW_LOCAL) !=
	    SLURM_SUCCESS) {
		e_no = errno;
		if (e_no != SLURM_NO_CHANGE_IN_DATA) {
			ctld_failed(s, "slurm_load_jobs", e_no);
			return false;
		}
		ctld_answered(s);
		s->jobs_loaded = now;
		return true;
	}
	ctld_answered(s);
	fresh = g_hash_table_new_full(NULL, NULL, NULL, job_ent_free);
	for (uint32_t i = 0; i < msg->record_count; i++) {
		slurm_job_info_t *j = &msg->job_array[i];
		job_ent_t *e = g_new0(job_ent_t, 1);

		e->state = j->job_state;
		e->uid = j->user_id;
		e->time_limit = j->time_limit;
		e->het_job_id = j->het_job_id;
		e->batch_flag = j->batch_flag;
		e->requeue = j->requeue;
		e->restart_cnt = j->restart_cnt;
		e->end_time = j->end_time;
		e->submit_time = j->submit_time;
		e->eligible_time = j->eligible_time;
		e->exc_nodes = g_strdup(j->exc_nodes);
		g_hash_table_replace(fresh, GUINT_TO_POINTER(JOB_INFO_ID(j)), e);
	}
	s->jobs_update = msg->last_update;
	s->jobs_loaded = now;
	slurm_free_job_info_msg(msg);
	g_hash_table_destroy(s->jobs);
	s->jobs = fresh;
	return true;
}

/*
 * The job (borrowed) as slurmctld saw it at most max_age us ago (0: ask
 * now), or NULL if slurmctld does not know it (or never answered).
 * OUT fresh - (may be NULL) whether slurmctld answered this time
 */
static job_ent_t *job_get(smigd_slurm_t *s, uint32_t job_id, int64_t max_age,
			  bool *fresh)
{
	bool answered = jobs_refresh(s, max_age);

	if (fresh)
		*fresh = answered;
	return g_hash_table_lookup(s->jobs, GUINT_TO_POINTER(job_id));
}

static bool job_running(const job_ent_t *e)
{
	return e && (e->state & JOB_STATE_BASE) == JOB_RUNNING;
}

static bool host_job_owner(void *ctx, uint32_t job_id, uint32_t *uid)
{
	smigd_slurm_t *s = ctx;
	job_ent_t *e;
	bool running, fresh;

	g_mutex_lock(&s->lock);
	e = job_get(s, job_id, s->max_age, &fresh);
	/*
	 * A job not running in the table loaded before (a new job, or a
	 * requeued one the balancer released) may have started since: its
	 * srun and agents register at once, and a stale "not running" would
	 * refuse them. Ask again ("no change" is cheap).
	 */
	if (!job_running(e) && !fresh)
		e = job_get(s, job_id, 0, NULL);
	running = job_running(e);
	if (running)
		*uid = e->uid;
	g_mutex_unlock(&s->lock);
	return running;
}

static bool host_job_end_time(void *ctx, uint32_t job_id, int64_t *end)
{
	smigd_slurm_t *s = ctx;
	bool limited = false;
	job_ent_t *e;

	g_mutex_lock(&s->lock);
	e = job_get(s, job_id, s->max_age, NULL);
	/*
	 * No limit (a partition with MaxTime=INFINITE): slurmctld sets a
	 * limit of a year (365 days in minutes); that is no estimate.
	 */
	if (job_running(e) && e->time_limit != INFINITE &&
	    e->time_limit != NO_VAL && e->time_limit < 365 * 24 * 60 &&
	    e->end_time) {
		limited = true;
		*end = (int64_t) e->end_time;
	}
	g_mutex_unlock(&s->lock);
	return limited;
}

/* Why Slurm would not requeue this job now (static text), or NULL. */
static const char *requeue_refusal(const job_ent_t *e)
{
	if (!e)
		return "unknown job";
	if ((e->state & JOB_STATE_BASE) != JOB_RUNNING)
		return "not running";
	if (e->het_job_id)
		return "a heterogeneous job (not moved as a whole)";
	if (!e->batch_flag)
		return "not a batch job (Slurm requeues batch jobs only)";
	if (!e->requeue)
		return "not requeue-able (submitted with --no-requeue, or JobRequeue=0 without --requeue)";
	return NULL;
}

/*
 * The job's own exclusions and the bad nodes, as one hostlist expression
 * (caller g_free()s), or NULL if a node is not known to slurmctld or an
 * expression is bad. Lock held. Our own hostlist code, not libslurm's: its
 * public hostlist API changed in 23.02 (hostlist_t became a pointer type,
 * slurm_hostlist_ranged_string_malloc() went away).
 */
static char *merge_exclude(smigd_slurm_t *s, const char *own,
			   const char *exclude)
{
	char **bad = NULL, **mine = NULL, *merged = NULL;
	GPtrArray *names;
	GError *err = NULL;
	size_t i;

	bad = smig_hostlist_expand(exclude, &err);
	if (!bad)
		goto out_err;
	nodes_refresh(s);
	for (i = 0; bad[i]; i++)
		if (!g_hash_table_contains(s->nodes, bad[i]))
			goto out_free;
	if (own && *own) {
		mine = smig_hostlist_expand(own, &err);
		if (!mine)
			goto out_err;
	}
	names = g_ptr_array_new();
	for (i = 0; mine && mine[i]; i++)
		g_ptr_array_add(names, mine[i]);
	for (i = 0; bad[i]; i++)
		if (!mine || !g_strv_contains((const char *const *) mine,
					      bad[i]))
			g_ptr_array_add(names, bad[i]);
	g_ptr_array_add(names, NULL);
	merged = smig_hostlist_compress((const char *const *) names->pdata);
	g_ptr_array_free(names, TRUE);
	goto out_free;
out_err:
	smig_error("ExcNodeList: %s", err->message);
	g_error_free(err);
out_free:
	g_strfreev(mine);
	g_strfreev(bad);
	return merged;
}

/*
 * A job-scope move: requeue the job as SlurmUser would ("scontrol requeue"),
 * then add exclude to its excluded nodes while it is pending. Slurm delays
 * a requeued job's begin time by the credential lifetime, so the scheduler
 * cannot start it on the bad nodes in between; job_release() then lets it
 * start.
 */
static bool host_job_requeue(void *ctx, uint32_t job_id, const char *exclude,
			     bool check_only, GError **error)
{
	smigd_slurm_t *s = ctx;
	job_desc_msg_t desc;
	const char *why;
	char *merged = NULL;
	job_ent_t *e;
	bool fresh;
	int rc = 0;

	g_mutex_lock(&s->lock);
	e = job_get(s, job_id, 0, &fresh);
	why = fresh ? requeue_refusal(e) : "slurmctld does not answer";
	if (why || check_only)
		goto out;
	merged = merge_exclude(s, e->exc_nodes, exclude);
	if (!merged) {
		why = "excluded nodes not known to slurmctld";
		goto out;
	}
	if (requeue_job(job_id) != SLURM_SUCCESS) {
		why = slurm_strerror(errno);
		goto out;
	}
	s->jobs_loaded = 0;
	slurm_init_job_desc_msg(&desc);
	JOB_DESC_SET_ID(&desc, job_id);
	desc.exc_nodes = merged;
	if (slurm_update_job(&desc) != SLURM_SUCCESS) {
		rc = errno;
		smig_error("JobId=%u requeued, but ExcNodeList=%s was refused: %s",
			   job_id, merged, slurm_strerror(rc));
	} else {
		smig_info("JobId=%u requeued, ExcNodeList=%s", job_id, merged);
	}
out:
	g_mutex_unlock(&s->lock);
	g_free(merged);
	if (why) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_STATE,
			    "JobId=%u: %s", job_id, why);
		return false;
	}
	return true;
}

/*
 * After a requeue Slurm delays the job by the credential lifetime
 * (cred_expire + 1 s) from the end of its completion, when it also sets the
 * submit time. The old credentials were revoked before that, but an srun of
 * the old run may outlive it: one whose tasks on a node without slurmd
 * never end waits KillWait + SRUN_ABORT_WAIT s from its abort (the requeue,
 * before the end of the completion), then cancels its step by id, which
 * may be the new run's first step (N.0 again on 24.11). So the begin time
 * becomes max(now, submit + KillWait + SRUN_ABORT_WAIT + 1), never later
 * than Slurm's own (not on Slurm 22.05, which gives the new run new step
 * ids: REQUEUE_REUSES_STEP_IDS). A clean requeue (the balancer's job-scope move: every
 * node of the old run has its slurmd, so every task ends and no srun times
 * out) needs no such wait: max(now, submit + 1). A begin time later than
 * Slurm's own wait (a user's --begin or StartTime) is left alone.
 */
static int host_job_release(void *ctx, uint32_t job_id, bool clean)
{
	smigd_slurm_t *s = ctx;
	time_t now = time(NULL), begin;
	int rc = SMIG_RELEASE_NONE;
	job_desc_msg_t desc;
	job_ent_t *e;
	bool fresh;

	g_mutex_lock(&s->lock);
	e = job_get(s, job_id, 0, &fresh);
	if (!fresh) {
		/* No answer now: ask again rather than give the job up. */
		rc = SMIG_RELEASE_WAIT;
		goto out;
	}
	if (!e ||
	    (e->state & JOB_STATE_BASE) != JOB_PENDING || !e->restart_cnt)
		goto out;
	if (e->state & JOB_COMPLETING) {
		rc = SMIG_RELEASE_WAIT;
		goto out;
	}
	rc = SMIG_RELEASE_DONE;
	begin = MAX(now, e->submit_time + 1 +
			 (clean || !REQUEUE_REUSES_STEP_IDS ? 0 :
			  (time_t) s->kill_wait + SRUN_ABORT_WAIT));
	if (e->eligible_time <= begin ||
	    e->eligible_time > e->submit_time + (time_t) s->cred_expire + 1)
		goto out;
	slurm_init_job_desc_msg(&desc);
	JOB_DESC_SET_ID(&desc, job_id);
	desc.begin_time = begin;
	if (slurm_update_job(&desc) != SLURM_SUCCESS) {
		int err = errno;

		smig_error("JobId=%u: cannot set its begin time to %ld: %s",
			   job_id, (long) begin, slurm_strerror(err));
		rc = SMIG_RELEASE_WAIT;
		goto out;
	}
	s->jobs_loaded = 0;
	smig_debug("JobId=%u may start again at %ld", job_id, (long) begin);
out:
	g_mutex_unlock(&s->lock);
	return rc;
}

/*
 * How a job stands for its images, from the job table read now (cheap:
 * "no change" when nothing changed); false if slurmctld did not answer.
 */
static bool host_job_fate(void *ctx, uint32_t job_id, smig_job_facts_t *f)
{
	smigd_slurm_t *s = ctx;
	bool fresh;
	job_ent_t *e;

	g_mutex_lock(&s->lock);
	e = job_get(s, job_id, 0, &fresh);
	if (fresh) {
		if (!e) {
			f->phase = SMIG_JOB_UNKNOWN;
			g_strlcpy(f->state, "unknown", sizeof(f->state));
			f->end_time = 0;
			f->uid = UINT32_MAX;
		} else {
			f->phase = smigd_job_phase(e->state);
			smigd_job_state_name(e->state, f->state,
					     sizeof(f->state));
			f->end_time = (int64_t) e->end_time;
			f->uid = e->uid;
		}
	}
	g_mutex_unlock(&s->lock);
	return fresh;
}

/* --------------------------------------------------------------- publish */

static void host_job_publish(void *ctx, uint32_t job_id, const char *text)
{
	smigd_slurm_t *s = ctx;
	pub_ent_t *p;

	g_mutex_lock(&s->lock);
	p = g_hash_table_lookup(s->pubs, GUINT_TO_POINTER(job_id));
	if (!p) {
		p = g_new0(pub_ent_t, 1);
		g_hash_table_insert(s->pubs, GUINT_TO_POINTER(job_id), p);
	}
	if (g_strcmp0(p->want, text)) {
		g_free(p->want);
		p->want = g_strdup(text);
		p->dirty = true;
	}
	g_mutex_unlock(&s->lock);
}

/*
 * Write one job's segment if AdminComment holds another. Lock held.
 * RET false if the job is gone (the entry can go)
 */
static bool publish_one(smigd_slurm_t *s, uint32_t job_id, pub_ent_t *p)
{
	job_info_msg_t *msg = NULL;
	slurm_job_info_t *j = NULL;
	job_desc_msg_t desc;
	char *have, *comment;
	int e;

	if (load_job(&msg, job_id) != SLURM_SUCCESS) {
		e = errno;
		if (e == ESLURM_INVALID_JOB_ID)
			return false;
		ctld_failed(s, "slurm_load_job", e);
		return true;
	}
	ctld_answered(s);
	for (uint32_t i = 0; i < msg->record_count; i++)
		if (JOB_INFO_ID(&msg->job_array[i]) == job_id)
			j = &msg->job_array[i];
	if (!j || (j->job_state & JOB_STATE_BASE) > JOB_SUSPENDED) {
		slurm_free_job_info_msg(msg);
		smig_debug("JobId=%u ended, state not stored", job_id);
		return false;
	}
	have = smigd_comment_get(j->admin_comment);
	g_free(p->have);
	p->have = have;
	if (!g_strcmp0(have, p->want)) {
		p->dirty = false;
		slurm_free_job_info_msg(msg);
		return true;
	}
	comment = smigd_comment_set(j->admin_comment, p->want);
	slurm_free_job_info_msg(msg);
	slurm_init_job_desc_msg(&desc);
	JOB_DESC_SET_ID(&desc, job_id);
	desc.admin_comment = comment;
	if (slurm_update_job(&desc) != SLURM_SUCCESS) {
		e = errno;
		g_free(comment);
		if (e == ESLURM_INVALID_JOB_ID || e == ESLURM_JOB_FINISHED)
			return false;
		smig_error("JobId=%u: cannot store its state in AdminComment: %s",
			   job_id, slurm_strerror(e));
		/* Try again after the gap, not at once. */
		p->written = g_get_monotonic_time();
		return true;
	}
	g_free(comment);
	g_free(p->have);
	p->have = g_strdup(p->want);
	p->dirty = false;
	p->written = g_get_monotonic_time();
	return true;
}

/*
 * smigd_slurm_flush - write the AdminComment segments that changed
 * See smigd_slurm.h.
 */
void smigd_slurm_flush(smigd_slurm_t *s)
{
	int64_t now = g_get_monotonic_time();
	GHashTableIter it;
	gpointer k, v;

	g_mutex_lock(&s->lock);
	g_hash_table_iter_init(&it, s->pubs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		pub_ent_t *p = v;

		if (!p->dirty) {
			/* Settled for an hour: the balancer asks anew. */
			if (now - p->written > (int64_t) 3600 * G_USEC_PER_SEC)
				g_hash_table_iter_remove(&it);
			continue;
		}
		if (p->written && now - p->written < PUBLISH_GAP_US)
			continue;
		/* The load= numbers drifted: shown a few minutes late. */
		if (p->written && now - p->written < LOAD_GAP_US &&
		    smigd_comment_minor(p->have, p->want))
			continue;
		if (!publish_one(s, GPOINTER_TO_UINT(k), p))
			g_hash_table_iter_remove(&it);
	}
	g_mutex_unlock(&s->lock);
}

/*
 * smigd_slurm_host_ops - the balancer's host operations, backed by s
 * See smigd_slurm.h.
 */
void smigd_slurm_host_ops(smigd_slurm_t *s, smig_host_ops_t *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->node_flags = host_node_flags;
	ops->job_owner = host_job_owner;
	ops->job_publish = host_job_publish;
	ops->job_end_time = host_job_end_time;
	ops->job_requeue = host_job_requeue;
	ops->job_release = host_job_release;
	ops->topology = host_topology;
	ops->job_fate = host_job_fate;
	ops->nodes_changed = host_nodes_changed;
	ops->jobs_changed = host_jobs_changed;
	ops->ctx = s;
}
