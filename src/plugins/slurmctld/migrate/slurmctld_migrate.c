/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * slurmctld_migrate.c - SlurmctldPlugstack=migrate: host of the balancer
 *
 * A thin adapter. init() reads migrate.conf (beside slurm.conf), opens munge
 * and starts the balancer (src/common/smig_balancer.c) on its own thread;
 * fini() joins it. The balancer asks for node states and job owners and
 * publishes each job's migration state as the job's SystemComment through the
 * host operations below, which take the controller's locks themselves: they
 * run on the balancer's thread, never under a lock of slurmctld.
 *
 * Slurm's own "config.h" comes first: its internal headers need it. Ours is
 * smig_config.h, so the two never clash (see doc/design.md).
 */
#include "config.h"

#include "src/common/slurm_xlator.h"
#include "src/common/hostlist.h"
#include "src/common/list.h"
#include "src/common/log.h"
#include "src/common/node_conf.h"
#include "src/common/read_config.h"
#include "src/common/slurm_cred.h"
#include "src/common/xmalloc.h"
#include "src/common/xstring.h"
#include "src/slurmctld/locks.h"
#include "src/slurmctld/slurmctld.h"
#include "src/slurmctld/state_save.h"

#include <errno.h>
#include <sys/stat.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_balancer.h"
#include "smig_conf.h"
#include "smig_error.h"
#include "smig_log.h"
#include "smig_policy.h"

/* The tree builds with -fvisibility=hidden; Slurm dlsym()s these. */
#define PLUGIN_EXPORT __attribute__((visibility("default")))

PLUGIN_EXPORT const char plugin_name[] = "slurmctld migrate balancer";
PLUGIN_EXPORT const char plugin_type[] = "slurmctld/migrate";
PLUGIN_EXPORT const uint32_t plugin_version = SLURM_VERSION_NUMBER;

static smig_conf_t *mconf;	/* "conf" is slurmd's, via slurm_xlator.h */
static smig_auth_t *auth;
static smig_balancer_t *balancer;

/* The core's log lines, into slurmctld's log. */
static void log_sink(smig_log_level_t level, const char *msg)
{
	switch (level) {
	case SMIG_LOG_ERROR:
		slurm_error("slurmctld/migrate: %s", msg);
		break;
	case SMIG_LOG_INFO:
		slurm_info("slurmctld/migrate: %s", msg);
		break;
	case SMIG_LOG_VERBOSE:
		slurm_verbose("slurmctld/migrate: %s", msg);
		break;
	case SMIG_LOG_DEBUG:
		debug("slurmctld/migrate: %s", msg);
		break;
	case SMIG_LOG_DEBUG2:
		debug2("slurmctld/migrate: %s", msg);
		break;
	case SMIG_LOG_DEBUG3:
		debug3("slurmctld/migrate: %s", msg);
		break;
	}
}

/* Host operations: balancer thread, no controller lock held on entry. */

static bool host_node_flags(void *ctx, const char *node, uint32_t *flags)
{
	slurmctld_lock_t node_read = {
		NO_LOCK, NO_LOCK, READ_LOCK, NO_LOCK, NO_LOCK };
	node_record_t *node_ptr;
	bool found = false;

	lock_slurmctld(node_read);
	node_ptr = find_node_record((char *) node);
	if (node_ptr) {
		found = true;
		*flags = SMIG_NODE_OK;
		if (IS_NODE_DRAIN(node_ptr))
			*flags |= SMIG_NODE_DRAIN;
		/*
		 * slurmctld also sets NO_RESPOND on "scontrol update
		 * state=resume" until the node registers again (a fraction
		 * of a second): only a silence longer than MessageTimeout
		 * means the node is gone.
		 */
		if (IS_NODE_DOWN(node_ptr) ||
		    (IS_NODE_NO_RESPOND(node_ptr) &&
		     time(NULL) - node_ptr->last_response >
		     (time_t) slurm_conf.msg_timeout))
			*flags |= SMIG_NODE_DOWN;
		if (IS_NODE_FAIL(node_ptr))
			*flags |= SMIG_NODE_FAIL;
	}
	unlock_slurmctld(node_read);
	return found;
}

static bool host_job_owner(void *ctx, uint32_t job_id, uint32_t *uid)
{
	slurmctld_lock_t job_read = {
		NO_LOCK, READ_LOCK, NO_LOCK, NO_LOCK, NO_LOCK };
	job_record_t *job_ptr;
	bool running = false;

	lock_slurmctld(job_read);
	job_ptr = find_job_record(job_id);
	if (job_ptr && IS_JOB_RUNNING(job_ptr)) {
		running = true;
		*uid = job_ptr->user_id;
	}
	unlock_slurmctld(job_read);
	return running;
}

static bool host_job_end_time(void *ctx, uint32_t job_id, int64_t *end)
{
	slurmctld_lock_t job_read = {
		NO_LOCK, READ_LOCK, NO_LOCK, NO_LOCK, NO_LOCK };
	job_record_t *job_ptr;
	bool limited = false;

	lock_slurmctld(job_read);
	job_ptr = find_job_record(job_id);
	/*
	 * No limit (a partition with MaxTime=INFINITE): slurmctld sets a
	 * limit of a year (365 days in minutes); that is no estimate.
	 */
	if (job_ptr && IS_JOB_RUNNING(job_ptr) &&
	    job_ptr->time_limit != INFINITE && job_ptr->time_limit != NO_VAL &&
	    job_ptr->time_limit < 365 * 24 * 60 && job_ptr->end_time) {
		limited = true;
		*end = (int64_t) job_ptr->end_time;
	}
	unlock_slurmctld(job_read);
	return limited;
}

static void host_job_publish(void *ctx, uint32_t job_id, const char *text)
{
	slurmctld_lock_t job_write = {
		NO_LOCK, WRITE_LOCK, NO_LOCK, NO_LOCK, NO_LOCK };
	job_record_t *job_ptr;

	lock_slurmctld(job_write);
	job_ptr = find_job_record(job_id);
	if (job_ptr) {
		xfree(job_ptr->system_comment);
		job_ptr->system_comment = xstrdup(text);
		last_job_update = time(NULL);
	}
	unlock_slurmctld(job_write);
	if (!job_ptr)
		debug("slurmctld/migrate: JobId=%u gone, state not stored",
		      job_id);
}

/*
 * Why Slurm would not requeue this job now (RET static text), or NULL.
 * Caller holds the job read lock.
 */
static const char *requeue_refusal(job_record_t *job_ptr)
{
	if (!job_ptr)
		return "unknown job";
	if (!IS_JOB_RUNNING(job_ptr))
		return "not running";
	if (job_ptr->het_job_id)
		return "a heterogeneous job (not moved as a whole)";
	if (!job_ptr->batch_flag)
		return "not a batch job (Slurm requeues batch jobs only)";
	if (!job_ptr->details || !job_ptr->details->requeue)
		return "not requeue-able (submitted with --no-requeue, or JobRequeue=0 without --requeue)";
	return NULL;
}

/*
 * A job-scope move: requeue the job as SlurmUser would ("scontrol requeue")
 * and add exclude to its excluded nodes, in one hold of the locks, so the
 * scheduler never sees it pending with the bad nodes allowed.
 */
static bool host_job_requeue(void *ctx, uint32_t job_id, const char *exclude,
			     bool check_only, GError **error)
{
	/* As _slurm_rpc_requeue(): write job and node, read federation. */
	slurmctld_lock_t job_write = {
		NO_LOCK, WRITE_LOCK, WRITE_LOCK, NO_LOCK, READ_LOCK };
	job_record_t *job_ptr;
	bitstr_t *exc_bitmap = NULL;
	const char *why;
	char *merged = NULL;
	hostlist_t hl;
	int rc;

	lock_slurmctld(job_write);
	job_ptr = find_job_record(job_id);
	why = requeue_refusal(job_ptr);
	if (why || check_only)
		goto out;

	/* The job's own exclusions stay; the bad nodes join them. */
	hl = hostlist_create(job_ptr->details->exc_nodes);
	if (hl) {
		hostlist_push(hl, exclude);
		hostlist_uniq(hl);
		merged = hostlist_ranged_string_xmalloc(hl);
		hostlist_destroy(hl);
	}
	if (!merged || node_name2bitmap(merged, false, &exc_bitmap)) {
		why = "excluded nodes not known to slurmctld";
		goto out;
	}
	rc = job_requeue(slurm_conf.slurm_user_id, job_id, NULL, false, 0);
	if (rc != SLURM_SUCCESS) {
		why = slurm_strerror(rc);
		goto out;
	}
	xfree(job_ptr->details->exc_nodes);
	job_ptr->details->exc_nodes = merged;
	merged = NULL;
	FREE_NULL_BITMAP(job_ptr->details->exc_node_bitmap);
	job_ptr->details->exc_node_bitmap = exc_bitmap;
	exc_bitmap = NULL;
	last_job_update = time(NULL);
	info("slurmctld/migrate: JobId=%u requeued, ExcNodeList=%s", job_id,
	     job_ptr->details->exc_nodes);
out:
	unlock_slurmctld(job_write);
	xfree(merged);
	FREE_NULL_BITMAP(exc_bitmap);
	if (why) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_STATE,
			    "JobId=%u: %s", job_id, why);
		return false;
	}
	if (!check_only)
		schedule_job_save();
	return true;
}

/*
 * After a requeue Slurm delays the job by the credential lifetime
 * (cred_expire + 1 s, 121 s by default) from the end of its completion.
 * The old credentials were revoked at the requeue (end_time): a launch one
 * second later is safe, so the begin time becomes max(now, end_time + 1).
 * A begin time later than Slurm's own wait (a user's --begin or StartTime)
 * is left alone.
 */
static int host_job_release(void *ctx, uint32_t job_id)
{
	slurmctld_lock_t job_write = {
		NO_LOCK, WRITE_LOCK, NO_LOCK, NO_LOCK, NO_LOCK };
	job_record_t *job_ptr;
	int rc = SMIG_RELEASE_NONE, window = 1200;
	time_t now = time(NULL), begin = 0;
	bool released = false;

	(void) slurm_cred_ctx_get(slurmctld_config.cred_ctx,
				  SLURM_CRED_OPT_EXPIRY_WINDOW, &window);
	lock_slurmctld(job_write);
	job_ptr = find_job_record(job_id);
	if (!job_ptr || !IS_JOB_PENDING(job_ptr) || !job_ptr->restart_cnt ||
	    !job_ptr->details)
		goto out;
	if (IS_JOB_COMPLETING(job_ptr)) {
		rc = SMIG_RELEASE_WAIT;
		goto out;
	}
	rc = SMIG_RELEASE_DONE;
	begin = MAX(now, job_ptr->end_time + 1);
	if (job_ptr->details->begin_time > begin &&
	    job_ptr->details->begin_time <=
	    job_ptr->details->submit_time + window + 1) {
		job_ptr->details->begin_time = begin;
		last_job_update = now;
		released = true;
	}
out:
	unlock_slurmctld(job_write);
	if (released) {
		queue_job_scheduler();
		debug("slurmctld/migrate: JobId=%u may start again at %ld",
		      job_id, (long) begin);
	}
	return rc;
}

static void cleanup(void)
{
	g_clear_pointer(&balancer, smig_balancer_free);
	g_clear_pointer(&auth, smig_auth_free);
	g_clear_pointer(&mconf, smig_conf_free);
	/* The sink lives in this plugin, which may be unloaded next. */
	smig_log_set_sink(NULL, SMIG_LOG_INFO);
}

/*
 * init - read migrate.conf and start the balancer
 * RET SLURM_SUCCESS, or SLURM_ERROR after one error line: slurmctld then
 *     stops with "failed to initialize slurmctld_plugstack"
 */
PLUGIN_EXPORT extern int init(void)
{
	smig_host_ops_t ops = {
		.node_flags = host_node_flags,
		.job_owner = host_job_owner,
		.job_publish = host_job_publish,
		.job_end_time = host_job_end_time,
		.job_requeue = host_job_requeue,
		.job_release = host_job_release,
	};
	GError *err = NULL;
	char *path;

	smig_log_set_sink(log_sink, SMIG_LOG_DEBUG2);

	path = smig_conf_path_beside(slurm_conf.slurm_conf);
	mconf = smig_conf_load(path, slurm_conf.slurm_conf, &err);
	g_free(path);
	if (!mconf)
		goto fail;
	if (!smig_conf_default_state_dir(mconf,
					 slurm_conf.state_save_location, &err))
		goto fail;
	/* Else every --migrate step would run without migration. */
	if (!smig_conf_check_image_dir(mconf, slurm_conf.slurm_user_id, &err))
		goto fail;

	auth = smig_auth_munge_new(mconf->munge_socket, &err);
	if (!auth)
		goto fail;

	balancer = smig_balancer_new(mconf, &ops, auth,
				     slurm_conf.slurm_user_id);
	if (!smig_balancer_start(balancer, &err))
		goto fail;

	slurm_info("slurmctld/migrate: balancer listening on %s:%u",
		   mconf->balancer_addr, smig_balancer_port(balancer));
	return SLURM_SUCCESS;

fail:
	slurm_error("slurmctld/migrate: %s", err->message);
	g_error_free(err);
	cleanup();
	return SLURM_ERROR;
}

/* fini - stop the balancer (joins its thread) and free everything */
PLUGIN_EXPORT extern int fini(void)
{
	cleanup();
	return SLURM_SUCCESS;
}

/*
 * slurmctld_plugstack_p_get_config - our settings for "scontrol show config"
 * IN/OUT p - name and key pairs to fill in; Slurm frees them with xfree()
 * Called with slurmctld's read locks held: reads only, takes no lock.
 */
PLUGIN_EXPORT extern void
slurmctld_plugstack_p_get_config(config_plugin_params_t *p)
{
	GArray *pairs;

	xstrcat(p->name, plugin_type);
	if (!mconf)
		return;
	pairs = smig_conf_pairs(mconf);
	for (guint i = 0; i < pairs->len; i++) {
		smig_conf_pair_t *kv = &g_array_index(pairs, smig_conf_pair_t,
						      i);
		config_key_pair_t *key_pair = xmalloc(sizeof(*key_pair));

		key_pair->name = xstrdup(kv->key);
		key_pair->value = xstrdup(kv->value);
		list_append(p->key_pairs, key_pair);
	}
	smig_conf_pairs_free(pairs);
}
