/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spank_migrate.c - the --migrate option and the SPANK hooks
 *
 * One plugin, three roles:
 *  - srun, sbatch, salloc (local and allocator context): register and
 *    validate --migrate[=MODE][,key=value...]; a bad value fails the job at
 *    submission time;
 *  - slurmstepd (remote context): the node agent of a step (agent.c);
 *  - srun (local context): registers the step with the balancer and
 *    relaunches it when the balancer moves ranks (relaunch.c).
 * Jobs without --migrate see nothing: no connection, no thread, no
 * environment variable. The protocol is in doc/design.md.
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib.h>
#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "smig_conf.h"
#include "smig_error.h"
#include "smig_hostlist.h"
#include "smig_image.h"
#include "smig_lifecycle.h"
#include "smig_log.h"
#include "smig_request.h"
#include "spank_migrate.h"

/*
 * What SPANK_PLUGIN(migrate, 1) would define, made visible: the tree builds
 * with -fvisibility=hidden and Slurm dlsym()s these.
 */
SMIG_SPANK_EXPORT const char plugin_name[] = "migrate";
SMIG_SPANK_EXPORT const char plugin_type[] = "spank";
SMIG_SPANK_EXPORT const unsigned int plugin_version = SLURM_VERSION_NUMBER;
SMIG_SPANK_EXPORT const unsigned int spank_plugin_version = 1;

/* Exported by srun, slurmstepd and libslurmfull (public in slurm/slurm.h). */
extern slurm_conf_t slurm_conf;

smig_spank_t smig_spank;

static int migrate_opt_cb(int val, const char *optarg, int remote);

static struct spank_option migrate_option = {
	.name = "migrate",
	.arginfo = "[MODE][,key=value...]",
	.usage = "Let slurm-migrate capture and move the ranks of this step "
		 "(MODE: auto, advise, manual, off; keys: capture=, "
		 "interval=, every=, capture-timeout=, spares=, max-moves=, "
		 "affinity). See spank_migrate(8).",
	.has_arg = 2,
	.val = 0,
	.cb = migrate_opt_cb,
};

/* Core messages go to Slurm's log of the process we run in. */
static void slurm_sink(smig_log_level_t level, const char *msg)
{
	switch (level) {
	case SMIG_LOG_ERROR:
		slurm_error("migrate: %s", msg);
		break;
	case SMIG_LOG_INFO:
		slurm_info("migrate: %s", msg);
		break;
	case SMIG_LOG_VERBOSE:
		slurm_verbose("migrate: %s", msg);
		break;
	case SMIG_LOG_DEBUG:
		slurm_debug("migrate: %s", msg);
		break;
	case SMIG_LOG_DEBUG2:
		slurm_debug2("migrate: %s", msg);
		break;
	default:
		slurm_debug3("migrate: %s", msg);
		break;
	}
}

/*
 * The value of --migrate, from the command line, from SLURM_SPANK_* (a
 * --migrate given to sbatch/salloc) or, in slurmstepd, from the launch
 * request. A later value replaces an earlier one, as for any option.
 */
static int migrate_opt_cb(int val, const char *optarg, int remote)
{
	smig_request_t req;
	GError *err = NULL;

	if (!smig_request_parse(optarg, &req, &err) ||
	    !smig_request_check_supported(&req, &err)) {
		/* In slurmstepd this is only logged; srun already refused. */
		if (optarg && strlen(optarg) > SMIG_REQUEST_MAX_LEN)
			slurm_error("migrate: --migrate: %s", err->message);
		else
			slurm_error("migrate: --migrate=%s: %s",
				    optarg ? optarg : "", err->message);
		g_error_free(err);
		return -1;
	}
	smig_spank.req = req;
	smig_spank.requested = (req.mode != SMIG_MODE_OFF);
	g_free(smig_spank.req_text);
	smig_spank.req_text = smig_request_to_string(&req);
	return 0;
}

/* smig_spank_from_balancer - see spank_migrate.h */
bool smig_spank_from_balancer(const smig_msg_t *msg)
{
	if (msg->uid == 0 || msg->uid == slurm_conf.slurm_user_id)
		return true;
	slurm_error("migrate: JobId=%u StepId=%u: %s from uid=%u ignored: the balancer runs as root or SlurmUser (uid %u)",
		    smig_spank.job_id, smig_spank.step_id,
		    smig_msg_type_name(msg->type), msg->uid,
		    slurm_conf.slurm_user_id);
	return false;
}

/*
 * slurm_conf_path - the slurm.conf this process uses
 * RET new string, caller g_free()s
 */
static char *slurm_conf_path(void)
{
	const char *env = getenv("SLURM_CONF");

	if (env && *env)
		return g_strdup(env);
	if (slurm_conf.slurm_conf && *slurm_conf.slurm_conf)
		return g_strdup(slurm_conf.slurm_conf);
	return g_strdup("/etc/slurm/slurm.conf");
}

/*
 * load_conf - read migrate.conf beside slurm.conf into smig_spank.conf
 * RET 0, or -1 after logging the file, line, key and value
 */
static int load_conf(void)
{
	char *slurm_path = slurm_conf_path();
	char *path = smig_conf_path_beside(slurm_path);
	GError *err = NULL;
	int rc = 0;

	smig_spank.conf = smig_conf_load(path, slurm_path, &err);
	if (!smig_spank.conf) {
		slurm_error("migrate: %s", err->message);
		g_error_free(err);
		rc = -1;
	}
	g_free(path);
	g_free(slurm_path);
	return rc;
}

/*
 * node_store_dir - MigrateImageStore=local: <MigrateImageDir>/<node>, made
 * here if missing (root, 0755, like MigrateImageDir itself); node is
 * Slurm's name of this node. In loopback test clusters all nodes share one
 * file system: the node's name keeps their stores apart.
 * OUT errmsg - on failure, new text, caller g_free()s
 * RET new path, caller g_free()s; NULL on error
 */
static char *node_store_dir(const char *base, char **errmsg)
{
	const char *node = getenv("SLURMD_NODENAME");
	struct stat st;
	char *path;

	if (!node || !*node || strchr(node, '/') || node[0] == '.') {
		*errmsg = g_strdup_printf("MigrateImageStore=local: SLURMD_NODENAME=%s: not a node name usable in a path",
					  node ? node : "(unset)");
		return NULL;
	}
	path = g_strdup_printf("%s/%s", base, node);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		int e = errno;

		*errmsg = g_strdup_printf("%s: cannot create: %s", path,
					  g_strerror(e));
		g_free(path);
		return NULL;
	}
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0) {
		*errmsg = g_strdup_printf("%s: not a directory owned by root (MigrateImageStore=local keeps each node's images there)",
					  path);
		g_free(path);
		return NULL;
	}
	return path;
}

/*
 * make_job_dir - create or check <base>/<job_id>: a directory (not a
 * symbolic link), mode 0700, owned by uid:gid. Steps on several nodes (one
 * shared file system) and several steps of one job race to create it; any
 * of them may win, the others check and fix what the winner left.
 * IN  base   - MigrateImageDir (borrowed)
 * OUT errmsg - on failure, new text naming the path, caller g_free()s
 * RET new path of the directory, caller g_free()s; NULL on error
 */
static char *make_job_dir(const char *base, uint32_t job_id, uid_t uid,
			  gid_t gid, char **errmsg)
{
	char name[16];
	char *path = NULL;
	struct stat st;
	int base_fd, fd = -1;

	snprintf(name, sizeof(name), "%u", job_id);
	base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (base_fd < 0) {
		int e = errno;

		*errmsg = g_strdup_printf("MigrateImageDir=%s: cannot open: %s (the admin creates it, owned by root, mode 0755)",
					  base, g_strerror(e));
		return NULL;
	}
	if (mkdirat(base_fd, name, 0700) < 0 && errno != EEXIST) {
		int e = errno;

		*errmsg = g_strdup_printf("%s/%s: cannot create: %s", base,
					  name, g_strerror(e));
		goto out_close_base;
	}
	fd = openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		*errmsg = g_strdup_printf("%s/%s: cannot open: %s (a symbolic link or not a directory?)",
					  base, name, g_strerror(e));
		goto out_close_base;
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;

		*errmsg = g_strdup_printf("%s/%s: fstat: %s", base, name,
					  g_strerror(e));
		goto out_close;
	}
	/* Root: just created by us or by another step; else the job's user. */
	if (!S_ISDIR(st.st_mode) || (st.st_uid != 0 && st.st_uid != uid)) {
		*errmsg = g_strdup_printf("%s/%s: owned by uid %u, not by the job's user %u: left from another job? Remove it.",
					  base, name, (unsigned) st.st_uid,
					  (unsigned) uid);
		goto out_close;
	}
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0700) < 0) {
		int e = errno;

		*errmsg = g_strdup_printf("%s/%s: cannot give it to uid %u gid %u mode 0700: %s",
					  base, name, (unsigned) uid,
					  (unsigned) gid, g_strerror(e));
		goto out_close;
	}
	path = g_strdup_printf("%s/%s", base, name);
out_close:
	close(fd);
out_close_base:
	close(base_fd);
	return path;
}

/*
 * restart_restore - a job that Slurm restarted (SLURM_RESTART_COUNT >= 1:
 * requeued by a job-scope move or after a node failure) restores its ranks
 * from its newest good generation: SLURM_MIGRATE_RESTORE_GEN=last for the
 * tasks, unless the step set SLURM_MIGRATE_RESTORE_GEN itself (a number,
 * "last", or "none" for a fresh start) or the store records no good
 * generation. Images are verified when read, with fallback to older good
 * generations (doc/images.md, "Restart after a requeue").
 */
static void restart_restore(spank_t sp)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD], restarts;
	char val[64] = "", errbuf[512] = "";
	size_t n = 0;

	if (spank_getenv(sp, "SLURM_MIGRATE_RESTORE_GEN", val, sizeof(val)) ==
	    ESPANK_SUCCESS && val[0])
		return;
	if (spank_getenv(sp, "SLURM_RESTART_COUNT", val, sizeof(val)) !=
	    ESPANK_SUCCESS ||
	    !g_ascii_string_to_unsigned(val, 10, 1, UINT32_MAX, &restarts,
					NULL))
		return;
	if (smig_spank.conf->image_store_local) {
		slurm_verbose("migrate: JobId=%u StepId=%u restart %" PRIu64 ": MigrateImageStore=local, the images stayed on the old nodes: starting afresh",
			      smig_spank.job_id, smig_spank.step_id, restarts);
		return;
	}
	if (smig_store_good_read(smig_spank.image_dir, gens, &n, errbuf,
				 sizeof(errbuf)) < 0) {
		slurm_error("migrate: JobId=%u StepId=%u restart %" PRIu64 ": %s: starting afresh",
			    smig_spank.job_id, smig_spank.step_id, restarts,
			    errbuf);
		return;
	}
	if (!n) {
		slurm_verbose("migrate: JobId=%u StepId=%u restart %" PRIu64 ": no good generation recorded: starting afresh",
			      smig_spank.job_id, smig_spank.step_id, restarts);
		return;
	}
	if (spank_setenv(sp, "SLURM_MIGRATE_RESTORE_GEN", "last", 1) !=
	    ESPANK_SUCCESS) {
		slurm_error("migrate: JobId=%u StepId=%u restart %" PRIu64 ": cannot set SLURM_MIGRATE_RESTORE_GEN: starting afresh",
			    smig_spank.job_id, smig_spank.step_id, restarts);
		return;
	}
	slurm_info("migrate: JobId=%u StepId=%u restart %" PRIu64 ": ranks restore from generation %" PRIu64 " (older good ones if it does not verify)",
		   smig_spank.job_id, smig_spank.step_id, restarts,
		   gens[n - 1]);
}

/* pmix_job_nodes_guard: the tasks' own SLURM_JOB_NODELIST, or NULL */
static char *task_job_nodes;

/*
 * pmix_job_nodes_guard - slurmstepd, before Slurm's mpi/pmix reads the
 * step's environment: a step whose nodes are not the first nodes of its
 * job (a relaunched step, typically) shows mpi/pmix its own node list as
 * SLURM_JOB_NODELIST; the tasks get the job's back (task_job_nodes_restore()).
 * mpi/pmix names peers by their index in SLURM_JOB_NODELIST, but when two
 * slurmstepds open their direct connection to each other at the same
 * moment, pmixp_dconn_require_connect() decides who connects by comparing
 * the peer's job-wide index with its own step-wide one: in such a step both
 * can decide to wait for the other, and every later message between them
 * is lost (a PMIx fence that never completes; Slurm 22.05 to 26.05,
 * doc/faults.md). With the step's list both indexes are the same, as in a
 * step on the first nodes of its job. (SLURM_PMIX_DIRECT_CONN=false is no
 * way out: mpi/pmix then uses its tree fence, which in such a step completes
 * on each node with that node's data alone.)
 */
static void pmix_job_nodes_guard(spank_t sp)
{
	char step[8192] = "", job[8192] = "";
	GError *err = NULL;
	bool prefix;

	if (spank_getenv(sp, "SLURM_STEP_NODELIST", step, sizeof(step)) !=
	    ESPANK_SUCCESS ||
	    spank_getenv(sp, "SLURM_JOB_NODELIST", job, sizeof(job)) !=
	    ESPANK_SUCCESS)
		return;
	if (!smig_hostlist_is_prefix(step, job, &prefix, &err)) {
		slurm_error("migrate: JobId=%u StepId=%u: %s",
			    smig_spank.job_id, smig_spank.step_id,
			    err->message);
		g_error_free(err);
		return;
	}
	if (prefix)
		return;
	if (spank_setenv(sp, "SLURM_JOB_NODELIST", step, 1) !=
	    ESPANK_SUCCESS) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot show mpi/pmix the step's nodes %s as the job's (%s): its PMIx start may hang",
			    smig_spank.job_id, smig_spank.step_id, step, job);
		return;
	}
	task_job_nodes = g_strdup(job);
	slurm_verbose("migrate: JobId=%u StepId=%u: nodes %s are not the first nodes of the job (%s): mpi/pmix sees SLURM_JOB_NODELIST=%s",
		      smig_spank.job_id, smig_spank.step_id, step, job, step);
}

/*
 * pmix_fence_guard - slurmstepd, before mpi/pmix reads the step's
 * environment: the step's PMIx fences go round a ring unless the user chose
 * (SLURM_PMIX_FENCE). mpi/pmix's automatic choice runs a fence without data
 * (Open MPI's last barrier in MPI_Init) as a tree, and with fewer nodes than
 * TreeWidth every node is its own root: the "barrier" ends when the node's
 * own ranks arrive, a rank on another node may then send to one still in
 * MPI_Init, and Open MPI 4.1's btl/tcp calls a handler that is not there yet
 * (SIGSEGV at NULL, doc/faults.md). A --migrate step starts again on every
 * move: it must not crash in MPI_Init. A ring costs one hop per node.
 */
static void pmix_fence_guard(spank_t sp)
{
	char have[64];

	if (spank_getenv(sp, "SLURM_PMIX_FENCE", have, sizeof(have)) ==
	    ESPANK_SUCCESS)
		return;
	if (spank_setenv(sp, "SLURM_PMIX_FENCE", "ring", 0) != ESPANK_SUCCESS)
		slurm_error("migrate: JobId=%u StepId=%u: cannot set SLURM_PMIX_FENCE=ring: MPI_Init may not be a barrier (doc/faults.md)",
			    smig_spank.job_id, smig_spank.step_id);
}

/* task_job_nodes_restore - a task gets the job's SLURM_JOB_NODELIST back */
static int task_job_nodes_restore(spank_t sp)
{
	if (task_job_nodes &&
	    spank_setenv(sp, "SLURM_JOB_NODELIST", task_job_nodes, 1) !=
	    ESPANK_SUCCESS) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot set the task's SLURM_JOB_NODELIST=%s",
			    smig_spank.job_id, smig_spank.step_id,
			    task_job_nodes);
		return -1;
	}
	return 0;
}

/*
 * remote_post_opt - slurmstepd: the step's image directory and the tasks'
 * environment. Failures leave the step running without migration; those
 * after migrate.conf was read are told to the balancer and srun
 * (smig_spank.unprotected, slurm_spank_user_init()).
 */
static void remote_post_opt(spank_t sp)
{
	GError *err = NULL;
	char *errmsg = NULL;
	char buf[32];
	uid_t uid;
	gid_t gid;

	if (spank_get_item(sp, S_JOB_ID, &smig_spank.job_id) ||
	    spank_get_item(sp, S_JOB_STEPID, &smig_spank.step_id) ||
	    spank_get_item(sp, S_JOB_UID, &uid) ||
	    spank_get_item(sp, S_JOB_GID, &gid)) {
		slurm_error("migrate: cannot read the job's ids from slurmstepd; the step runs without migration");
		return;
	}
	/* The batch, extern and interactive steps have no PMIx server. */
	if (smig_spank.step_id >= SLURM_MAX_NORMAL_STEP_ID)
		return;
	pmix_job_nodes_guard(sp);
	pmix_fence_guard(sp);
	if (load_conf() < 0) {
		slurm_error("migrate: JobId=%u StepId=%u runs without migration",
			    smig_spank.job_id, smig_spank.step_id);
		return;
	}
	if (!smig_conf_check_image_dir(smig_spank.conf,
				       slurm_conf.slurm_user_id, &err)) {
		errmsg = g_strdup(err->message);
		g_error_free(err);
	} else if (smig_spank.conf->image_store_local) {
		char *base = node_store_dir(smig_spank.conf->image_dir,
					    &errmsg);

		if (base)
			smig_spank.image_dir = make_job_dir(base,
							    smig_spank.job_id,
							    uid, gid, &errmsg);
		g_free(base);
	} else {
		smig_spank.image_dir = make_job_dir(smig_spank.conf->image_dir,
						    smig_spank.job_id, uid,
						    gid, &errmsg);
	}
	if (smig_spank.image_dir) {
		char errbuf[512];

		/* What each capture compares with (a replaced directory). */
		if (smig_dir_id_get(smig_spank.image_dir, &smig_spank.dir_id,
				    errbuf, sizeof(errbuf)) < 0) {
			errmsg = g_strdup(errbuf);
			g_clear_pointer(&smig_spank.image_dir, g_free);
		}
	}
	if (!smig_spank.image_dir) {
		slurm_error("migrate: JobId=%u StepId=%u: %s; the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id, errmsg);
		/* The user hears it too (slurm_spank_user_init). */
		smig_spank.unprotected = errmsg;
		return;
	}
	if (spank_setenv(sp, "SLURM_MIGRATE", smig_spank.req_text, 1) ||
	    spank_setenv(sp, "SLURM_MIGRATE_IMAGE_DIR", smig_spank.image_dir,
			 1)) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot set the tasks' environment; the step runs without migration",
			    smig_spank.job_id, smig_spank.step_id);
		smig_spank.unprotected = g_strdup("cannot set the tasks' environment");
		return;
	}
	snprintf(buf, sizeof(buf), "%u", smig_spank.job_id);
	spank_setenv(sp, "SLURM_MIGRATE_JOB_ID", buf, 1);
	snprintf(buf, sizeof(buf), "%u", smig_spank.step_id);
	spank_setenv(sp, "SLURM_MIGRATE_STEP_ID", buf, 1);
	restart_restore(sp);
	smig_spank.active = true;
}

/*
 * slurmd_check - slurmd start: a MigrateImageDir this node cannot use is
 * said once in slurmd's log (slurmctld refuses it at its start, where it
 * sees the same path); slurmd still starts, as jobs without --migrate
 * need nothing of ours, and each --migrate step is told (agent_report).
 */
static void slurmd_check(void)
{
	GError *err = NULL;

	if (load_conf() < 0)
		return;
	if (!smig_conf_check_image_dir(smig_spank.conf,
				       slurm_conf.slurm_user_id, &err)) {
		slurm_error("migrate: %s; --migrate steps on this node will run without migration",
			    err->message);
		g_error_free(err);
	}
	g_clear_pointer(&smig_spank.conf, smig_conf_free);
}

/* Expired markers one epilog asks the balancer about, at most. */
#define EPILOG_SWEEP_MAX 32

/*
 * job_store_root - the store of this node for the epilog: MigrateImageDir
 * (shared) or <MigrateImageDir>/<node> (local), if it is a directory owned
 * by root (not a link); never created here
 * RET new path, caller g_free()s; NULL if there is none
 */
static char *job_store_root(const char *node)
{
	struct stat st;
	char *root;

	if (!smig_spank.conf->image_store_local)
		return g_strdup(smig_spank.conf->image_dir);
	if (!node || !*node || strchr(node, '/') || node[0] == '.')
		return NULL;
	root = g_strdup_printf("%s/%s", smig_spank.conf->image_dir, node);
	if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
		g_clear_pointer(&root, g_free);
	return root;
}

/*
 * job_epilog - slurmd's epilog of a job on this node (root, every job, also
 * at a requeue): the images of the job in this node's store get what the
 * policy says (smig_store_job_end(): removed, kept until a time, or kept),
 * then the store's expired kept directories are swept (doc/images.md,
 * "When a job ends"). Never fails the epilog: a failure is logged and the
 * images stay.
 */
static void job_epilog(spank_t sp)
{
	const char *node = getenv("SLURMD_NODENAME");
	const char *env = getenv("SLURM_JOB_ID");
	smig_fate_client_t c;
	GError *err = NULL;
	uint32_t job = 0;
	char *root, *path;
	struct stat st;

	if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS || !job)
		job = env ? (uint32_t) g_ascii_strtoull(env, NULL, 10) : 0;
	if (load_conf() < 0)
		return;
	if (!smig_conf_check_image_dir(smig_spank.conf,
				       slurm_conf.slurm_user_id, &err)) {
		/* slurmd said it at its start; jobs could not use it. */
		g_error_free(err);
		goto out_conf;
	}
	if (!(root = job_store_root(node)))
		goto out_conf;
	smig_fate_client_init(&c, smig_spank.conf, slurm_conf.slurm_user_id);
	path = g_strdup_printf("%s/%u", root, job);
	if (job && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		smig_store_job_end(root, node, &c, job);
	g_free(path);
	smig_store_sweep(root, node, &c, job, false, EPILOG_SWEEP_MAX);
	smig_fate_client_close(&c);
	g_free(root);
out_conf:
	g_clear_pointer(&smig_spank.conf, smig_conf_free);
}

SMIG_SPANK_EXPORT int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	if (spank_context() == S_CTX_JOB_SCRIPT)
		job_epilog(sp);
	return 0;
}

SMIG_SPANK_EXPORT int slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	if (ctx == S_CTX_SLURMD) {
		slurmd_check();
		return 0;
	}
	if (ctx == S_CTX_JOB_SCRIPT) {
		smig_log_set_sink(slurm_sink, SMIG_LOG_DEBUG2);
		return 0;
	}
	if (ctx != S_CTX_LOCAL && ctx != S_CTX_REMOTE &&
	    ctx != S_CTX_ALLOCATOR)
		return 0;
	smig_log_set_sink(slurm_sink, SMIG_LOG_DEBUG2);
	/* In every context, or the value never reaches slurmstepd. */
	if (spank_option_register(sp, &migrate_option) != ESPANK_SUCCESS) {
		slurm_error("migrate: cannot register the --migrate option");
		return -1;
	}
	if (ctx == S_CTX_LOCAL)
		return smig_relaunch_init();
	return 0;
}

SMIG_SPANK_EXPORT int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	switch (spank_context()) {
	case S_CTX_REMOTE:
		if (smig_spank.requested)
			remote_post_opt(sp);
		return 0;
	case S_CTX_LOCAL:
		if (!smig_spank.requested)
			return 0;
		if (smig_relaunch_check() < 0 || load_conf() < 0 ||
		    smig_relaunch_spares() < 0)
			return -1;
		smig_spank.active = true;
		return 0;
	default:
		/* sbatch/salloc: the value was checked; steps get it by env. */
		return 0;
	}
}

SMIG_SPANK_EXPORT int slurm_spank_local_user_init(spank_t sp, int ac, char **av)
{
	if (smig_spank.active)
		return smig_relaunch_start(sp);
	return 0;
}

SMIG_SPANK_EXPORT int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
	if (smig_spank.active && spank_remote(sp))
		smig_spank_agent_start(sp);
	else if (smig_spank.unprotected && spank_remote(sp))
		smig_spank_agent_report(sp, smig_spank.unprotected);
	return 0;
}

SMIG_SPANK_EXPORT int slurm_spank_task_init_privileged(spank_t sp, int ac,
						       char **av)
{
	if (spank_remote(sp) && task_job_nodes_restore(sp) < 0)
		return -1;
	if (smig_spank.active && spank_remote(sp))
		return smig_spank_agent_task_init(sp);
	return 0;
}

SMIG_SPANK_EXPORT int slurm_spank_task_post_fork(spank_t sp, int ac,
						 char **av)
{
	if (smig_spank.active && spank_remote(sp))
		smig_sample_task(sp);
	return 0;
}

SMIG_SPANK_EXPORT int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	if (ctx == S_CTX_REMOTE && smig_spank.active) {
		smig_spank_agent_stop();
		smig_sample_fini();
	}
	if (ctx == S_CTX_REMOTE)
		g_clear_pointer(&task_job_nodes, g_free);
	if (ctx == S_CTX_LOCAL) {
		if (smig_spank.active)
			smig_relaunch_exit();	/* may not return */
		smig_relaunch_fini();
	}
	g_clear_pointer(&smig_spank.conf, smig_conf_free);
	g_clear_pointer(&smig_spank.req_text, g_free);
	g_clear_pointer(&smig_spank.image_dir, g_free);
	g_clear_pointer(&smig_spank.unprotected, g_free);
	smig_spank.active = false;
	smig_spank.requested = false;
	return 0;
}

int smig_spank_wait(int fd, int wake_fd, int timeout_ms)
{
	struct pollfd pfd[2] = {
		{ .fd = wake_fd, .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	uint64_t count;
	int n, rc = 0;

	do {
		n = poll(pfd, fd >= 0 ? 2 : 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return SMIG_WAIT_WAKE;	/* cannot wait: caller looks */
	if (pfd[0].revents) {
		while (read(wake_fd, &count, sizeof(count)) < 0 &&
		       errno == EINTR)
			;
		rc |= SMIG_WAIT_WAKE;
	}
	if (fd >= 0 && pfd[1].revents)
		rc |= SMIG_WAIT_FD;
	return rc;
}

void smig_spank_wake(int wake_fd)
{
	uint64_t one = 1;

	/* A full counter (impossible here) still wakes the reader. */
	while (write(wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}
