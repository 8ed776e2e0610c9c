/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * relaunch.c - the srun side: register the step, relaunch it where the
 * balancer says
 *
 * srun registers its step with the balancer (HELLO_SRUN) and keeps the
 * connection open. When the balancer moves ranks it sends RELAUNCH with a
 * hostfile (line i = node of rank i); srun writes the file, answers
 * RELAUNCH_ACK, and the balancer then stops the ranks (COMMIT). When the
 * step has ended, slurm_spank_exit() execs a new srun with the same words,
 * --distribution=arbitrary, SLURM_HOSTFILE and SLURM_MIGRATE_RESTORE_GEN:
 * same pid, same allocation, and whoever waits for srun (a batch script)
 * sees the relaunched step's exit status.
 *
 * Traps on that path (see the notes in doc/design.md): srun marks stdin
 * close-on-exec (we keep a dup from slurm_spank_init), srun setenv()s
 * SLURM_DISTRIBUTION, SLURM_STEP_ID, ... (we exec with the environment of
 * slurm_spank_init), srun's children must be reaped, and a termination
 * signal arriving around the exec must not be lost.
 *
 * Threads: the hooks run in srun's main thread; one thread of ours receives
 * from the balancer between local_user_init and exit. It alone writes to the
 * socket while it runs; the main thread writes only before it starts (HELLO)
 * and after it was joined (BYE).
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <slurm/spank.h>

#include "smig_auth.h"
#include "smig_hostlist.h"
#include "smig_msgs.h"
#include "smig_wire.h"
#include "slurm_compat.h"
#include "spank_migrate.h"

#define CONNECT_TIMEOUT_MS	5000
#define RECV_TIMEOUT_MS		10000
/* Reconnecting to the balancer: as the agents (agent.c) */
#define RECONNECT_FIRST_MS	250
#define RECONNECT_CAP_MS	5000
#define RECONNECT_FOR_MS	(600 * 1000)
/* A relaunched srun whose step slurmctld refused: exec again, this often */
#define CREATE_TRIES		8
#define CREATE_PAUSE_MAX_S	5	/* pauses 1, 2, ... s, at most this */

extern char **environ;

static struct {
	char **env;		/* environ of slurm_spank_init, g_strfreev */
	int stdin_fd;		/* dup of fd 0 (srun sets close-on-exec) */

	uint32_t job_id;
	uint32_t step_id;
	uint32_t ntasks;
	char **app_argv;	/* the application's words, g_strfreev() */
	char **alloc_nodes;	/* SLURM_JOB_NODELIST expanded */

	smig_auth_t *auth;
	int fd;
	int wake_fd;
	GThread *thread;
	gint stopping;		/* atomic */

	/* HELLO_SRUN, sent again after a reconnect (srun_connect()) */
	char *alloc_text;	/* SLURM_JOB_NODELIST */
	char *cpus_text;	/* SLURM_JOB_CPUS_PER_NODE */
	uint32_t cpt;
	uint64_t restored_gen;	/* 0: a fresh step */
	uint32_t prev_step;
	uint32_t restore_try;	/* relaunched: start of this relaunch, from 1 */
	char *relaunch_text;	/* relaunched: its hostfile's text */
	int64_t retry_at;	/* monotonic us of the next try; 0: none */
	int64_t lost_at;
	uint32_t backoff_ms;
	uint32_t attempts;
	bool connected_once;

	/*
	 * A move is prepared by RELAUNCH (hostfile written, acknowledged) and
	 * becomes due only with the balancer's COMMIT of that generation; an
	 * ABORT, or no decision at all, drops it: the ranks go on where they
	 * are and must not be relaunched or killed. Written by the thread
	 * while it runs, read by slurm_spank_exit() after the join.
	 */
	bool prepared;		/* RELAUNCH accepted and acknowledged */
	bool pending;		/* ... and COMMITted: relaunch at exit */
	uint64_t gen;
	char *hostfile;		/* our file, g_free() */
	uint32_t nnodes;	/* distinct nodes of its first ntasks lines */
	char *reason;
	uint32_t next_try;	/* the relaunch watchdog's: try of the exec,
				 * 0: a new move */
	bool restore_failed;	/* the watchdog's last try: no exec */

	int exit_status;	/* srun's, from on_exit() */
	bool started;		/* smig_relaunch_start() ran: a step exists */
} rl = { .stdin_fd = -1, .fd = -1, .wake_fd = -1 };

/* Signals that ask srun to end: never relaunch when one of them is pending. */
static const int term_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void term_sigset(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < G_N_ELEMENTS(term_signals); i++)
		sigaddset(set, term_signals[i]);
}

/* term_signal_pending - the first pending termination signal, or 0 */
static int term_signal_pending(void)
{
	sigset_t pending;

	if (sigpending(&pending) < 0)
		return 0;
	for (size_t i = 0; i < G_N_ELEMENTS(term_signals); i++)
		if (sigismember(&pending, term_signals[i]) == 1)
			return term_signals[i];
	return 0;
}

/* smig_relaunch_block_term - see spank_migrate.h */
int smig_relaunch_block_term(sigset_t *old)
{
	sigset_t term;

	term_sigset(&term);
	sigprocmask(SIG_BLOCK, &term, old);
	return term_signal_pending();
}

/* smig_relaunch_environ - see spank_migrate.h */
char **smig_relaunch_environ(void)
{
	return rl.env ? rl.env : environ;
}

/* smig_relaunch_exec_srun - see spank_migrate.h */
void smig_relaunch_exec_srun(char **argv, char **env)
{
	if (rl.stdin_fd >= 0 && dup2(rl.stdin_fd, 0) < 0)
		slurm_error("migrate: cannot restore stdin: %s",
			    g_strerror(errno));
	fflush(NULL);
	execve("/proc/self/exe", argv, env);
}

static void retry_create(void);

/*
 * create_failed - on_exit() of a relaunched srun: when it exits with an
 * error before its step exists (srun does not call slurm_spank_exit then)
 * because slurmctld refused the step for want of memory (srun's last
 * error, still in errno): see retry_create(). Any other error ends srun as
 * usual: a signal cancelled the pending step (srun turns that into
 * ESLURM_ALREADY_DONE), the job is gone, a bad option...
 */
static void create_failed(int status, void *unused)
{
	int e = errno;

	if (!status || !smig_spank.active || rl.started)
		return;
	if (e != ESLURM_INVALID_TASK_MEMORY) {
		slurm_error("migrate: the relaunched step was not created: %s; not trying again",
			    slurm_strerror(e));
		return;
	}
	retry_create();
}

/*
 * restart_kill_bad_exit - a step the user restarts from an image
 * (SLURM_MIGRATE_RESTORE_GEN, not a relaunch of ours: no
 * SLURM_MIGRATE_PREV_STEP) runs as with --kill-on-bad-exit=1 unless the
 * user chose otherwise (option or SLURM_KILL_BAD_EXIT): a rank that cannot
 * restore (a bad image, capture=signal has no older generation to fall
 * back to) fails its task, and without -K the other ranks would wait for
 * it in MPI_Init until the job is cancelled. srun reads SLURM_KILL_BAD_EXIT
 * after slurm_spank_init() (spank_init() comes before its options, 22.05 to
 * 26.05), and its command line still wins. Set after rl.env is copied: our
 * own relaunches keep their relaunch watchdog instead.
 */
static void restart_kill_bad_exit(void)
{
	const char *gen = getenv("SLURM_MIGRATE_RESTORE_GEN");

	if (!gen || !*gen || getenv("SLURM_MIGRATE_PREV_STEP") ||
	    getenv("SLURM_KILL_BAD_EXIT"))
		return;
	if (setenv("SLURM_KILL_BAD_EXIT", "1", 0) < 0)
		slurm_error("migrate: cannot set SLURM_KILL_BAD_EXIT=1 for a restart from SLURM_MIGRATE_RESTORE_GEN=%s: %s",
			    gen, g_strerror(errno));
	else
		slurm_verbose("migrate: a restart from SLURM_MIGRATE_RESTORE_GEN=%s: the step ends when a rank fails (SLURM_KILL_BAD_EXIT=1)",
			      gen);
}

int smig_relaunch_init(void)
{
	int sig;

	rl.env = g_strdupv(environ);
	rl.stdin_fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	/*
	 * A relaunched srun that inherited a termination signal (it arrived
	 * around the exec) must not start a new step.
	 */
	if (getenv("SLURM_MIGRATE_RESTORE_GEN") &&
	    (sig = term_signal_pending())) {
		slurm_error("migrate: signal %s arrived during the relaunch: not starting the step again",
			    strsignal(sig));
		return -1;
	}
	restart_kill_bad_exit();
	return 0;
}

void smig_relaunch_fini(void)
{
	g_clear_pointer(&rl.env, g_strfreev);
	if (rl.stdin_fd >= 0)
		close(rl.stdin_fd);
	rl.stdin_fd = -1;
}

int smig_relaunch_check(void)
{
	const char *job = getenv("SLURM_JOB_ID");
	uint64_t gen = 0;

	const char *nodes = getenv("SLURM_JOB_NODELIST");
	const char *cpus = getenv("SLURM_JOB_CPUS_PER_NODE");

	if (!job || !*job) {
		slurm_error("migrate: --migrate needs an existing allocation (SLURM_JOB_ID is not set): run srun --migrate inside sbatch or salloc");
		return -1;
	}
	/*
	 * The balancer places ranks on the allocation's nodes: without them
	 * (SLURM_JOB_ID set by hand, srun --jobid from outside the job) the
	 * step could never move. Refused now rather than run unprotected.
	 */
	if (!nodes || !*nodes || !cpus || !*cpus) {
		slurm_error("migrate: --migrate needs the allocation's nodes: SLURM_JOB_ID=%.32s is set but %s is not (an allocation known only by its id); run srun --migrate inside the job's sbatch script or salloc shell",
			    job, !nodes || !*nodes ? "SLURM_JOB_NODELIST" :
			    "SLURM_JOB_CPUS_PER_NODE");
		return -1;
	}
	/*
	 * Registered here, after srun's own atexit(spank_fini): exit
	 * handlers run in reverse order, so this one runs while the plugin
	 * is still loaded (as record_exit() does).
	 */
	if (getenv("SLURM_MIGRATE_PREV_STEP") &&
	    smig_relaunch_env_u64("SLURM_MIGRATE_RESTORE_GEN", &gen) && gen)
		on_exit(create_failed, NULL);
	return 0;
}

/* send_msg - send and free msg (from smig_msg_<name>_encode()) */
static bool send_msg(smig_msg_t *msg)
{
	GError *err = NULL;
	bool ok;

	ok = smig_wire_send(rl.fd, rl.auth, msg, &err);
	if (!ok) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot send %s to the balancer: %s",
			    rl.job_id, rl.step_id,
			    smig_msg_type_name(msg->type), err->message);
		g_error_free(err);
	}
	smig_msg_free(msg);
	return ok;
}

/* decode_failed - log a message from the balancer that decode refused */
static void decode_failed(GError *err)
{
	slurm_error("migrate: JobId=%u StepId=%u: %s, ignored", rl.job_id,
		    rl.step_id, err->message);
	g_error_free(err);
}

/*
 * handle_relaunch - RELAUNCH: check the mapping, write it, acknowledge;
 * the move is prepared, and due only when the balancer COMMITs it
 * RET true if the move is now prepared
 */
static bool handle_relaunch(const smig_msg_t *msg)
{
	smig_msg_relaunch_t m;
	smig_msg_relaunch_ack_t ack = { 0 };
	char *errmsg = NULL, *path;
	GError *err = NULL;
	uint32_t nnodes = 0;
	bool ok = false;

	if (!smig_msg_relaunch_decode(msg, &m, &err)) {
		decode_failed(err);
		return false;
	}
	if (m.job != rl.job_id || m.step != rl.step_id || m.gen == 0) {
		slurm_error("migrate: JobId=%u StepId=%u: RELAUNCH for JobId=%u StepId=%u generation %" PRIu64 " is not for this step or has no generation, ignored",
			    rl.job_id, rl.step_id, m.job, m.step, m.gen);
		goto out;
	}
	if (!smig_relaunch_check_hostfile(m.hostfile, rl.ntasks,
					  rl.alloc_nodes, &nnodes, &errmsg) ||
	    !(path = smig_relaunch_write_hostfile(m.hostfile, &errmsg))) {
		slurm_error("migrate: JobId=%u StepId=%u: RELAUNCH of generation %" PRIu64 " refused: %s",
			    rl.job_id, rl.step_id, m.gen, errmsg);
		g_free(errmsg);
		goto out;
	}

	if (rl.hostfile)
		unlink(rl.hostfile);	/* an earlier move never happened */
	g_free(rl.hostfile);
	g_free(rl.reason);
	rl.hostfile = path;
	rl.nnodes = nnodes;
	rl.reason = g_strdup(*m.reason ? m.reason : "requested");
	rl.gen = m.gen;
	rl.prepared = true;
	rl.pending = false;

	ack.job = rl.job_id;
	ack.step = rl.step_id;
	ack.gen = m.gen;
	if (!send_msg(smig_msg_relaunch_ack_encode(&ack)))
		goto out;
	slurm_verbose("migrate: JobId=%u StepId=%u: will relaunch from generation %" PRIu64 " with %s",
		      rl.job_id, rl.step_id, m.gen, path);
	ok = true;
out:
	smig_msg_relaunch_clear(&m);
	return ok;
}

/* drop_pending - forget a move that will not happen, and its file */
static void drop_pending(void)
{
	if (rl.hostfile)
		unlink(rl.hostfile);
	g_clear_pointer(&rl.hostfile, g_free);
	g_clear_pointer(&rl.reason, g_free);
	rl.prepared = false;
	rl.pending = false;
}

/*
 * decide - the balancer's COMMIT or ABORT of the prepared move
 * RET true if the move is now due (COMMIT of the prepared generation)
 */
static bool decide(const smig_msg_t *msg)
{
	uint32_t job, step;
	uint64_t gen;
	GError *err = NULL;

	if (msg->type == SMIG_MSG_ABORT) {
		smig_msg_abort_t m;

		if (!smig_msg_abort_decode(msg, &m, &err)) {
			decode_failed(err);
			return false;
		}
		job = m.job;
		step = m.step;
		gen = m.gen;
		smig_msg_abort_clear(&m);
	} else {
		smig_msg_commit_t m;

		if (!smig_msg_commit_decode(msg, &m, &err)) {
			decode_failed(err);
			return false;
		}
		job = m.job;
		step = m.step;
		gen = m.gen;
		smig_msg_commit_clear(&m);
	}
	if (job != rl.job_id || step != rl.step_id || !rl.prepared ||
	    gen != rl.gen) {
		slurm_debug("migrate: JobId=%u StepId=%u: %s not for the prepared move, ignored",
			    rl.job_id, rl.step_id,
			    smig_msg_type_name(msg->type));
		return false;
	}
	if (msg->type == SMIG_MSG_ABORT) {
		slurm_verbose("migrate: JobId=%u StepId=%u: move to generation %" PRIu64 " aborted by the balancer; the step runs on",
			      rl.job_id, rl.step_id, gen);
		drop_pending();
		return false;
	}
	rl.pending = true;
	return true;
}

/*
 * await_decision - at exit, a prepared move whose COMMIT or ABORT may still
 * be on its way (the ranks stop on COMMIT, which the agents may have had
 * first): wait for it a little.
 */
static void await_decision(void)
{
	gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	GError *err = NULL;
	smig_msg_t *msg;

	while (rl.prepared && !rl.pending && rl.fd >= 0) {
		gint64 left = (end - g_get_monotonic_time()) / 1000;

		if (left <= 0 ||
		    !(msg = smig_wire_recv(rl.fd, rl.auth, (int) left, &err))) {
			slurm_error("migrate: JobId=%u StepId=%u: no decision on the move to generation %" PRIu64 ": %s; not relaunching",
				    rl.job_id, rl.step_id, rl.gen,
				    err ? err->message : "timed out");
			g_clear_error(&err);
			drop_pending();
			return;
		}
		if ((msg->type == SMIG_MSG_COMMIT ||
		     msg->type == SMIG_MSG_ABORT) &&
		    smig_spank_from_balancer(msg))
			decide(msg);
		smig_msg_free(msg);
	}
}

/* srun_hello - HELLO_SRUN: the step, and a committed move under way */
static bool srun_hello(void)
{
	/* The struct borrows the strings: it is not cleared. */
	smig_msg_hello_srun_t m = {
		.job = rl.job_id,
		.step = rl.step_id,
		.request = smig_spank.req_text,
		.ntasks = rl.ntasks,
		.alloc_nodes = rl.alloc_text,
		.alloc_cpus = rl.cpus_text,
		.cpus_per_task = rl.cpt, .has_cpus_per_task = true,
		.restored_gen = rl.restored_gen, .has_restored_gen = true,
		.prev_step = rl.prev_step,
		.has_prev_step = rl.restored_gen != 0,
		.restore_try = rl.restore_try,
		.has_restore_try = rl.restored_gen != 0,
		/* After a reconnect: what a restarted balancer must know. */
		.good_gen = rl.restored_gen, .has_good_gen = true,
		.move_gen = rl.pending ? rl.gen : 0, .has_move_gen = true,
	};

	return send_msg(smig_msg_hello_srun_encode(&m));
}

/*
 * srun_connect - one try to reach the balancer and register; on failure
 * the next try is scheduled (backoff from RECONNECT_FIRST_MS, doubling up
 * to RECONNECT_CAP_MS) until RECONNECT_FOR_MS after the loss
 */
static void srun_connect(void)
{
	const smig_conf_t *conf = smig_spank.conf;
	int64_t now = g_get_monotonic_time();
	GError *err = NULL;

	rl.retry_at = 0;
	rl.fd = smig_wire_connect(conf->balancer_addr, conf->port,
				  CONNECT_TIMEOUT_MS, &err);
	if (rl.fd >= 0 && !srun_hello()) {
		close(rl.fd);
		rl.fd = -1;
	}
	if (rl.fd >= 0) {
		if (rl.connected_once)
			slurm_info("migrate: JobId=%u StepId=%u: reconnected to the balancer at %s:%u after %u failed tries",
				   rl.job_id, rl.step_id, conf->balancer_addr,
				   conf->port, rl.attempts);
		else
			slurm_debug("migrate: JobId=%u StepId=%u: registered with the balancer at %s:%u",
				    rl.job_id, rl.step_id,
				    conf->balancer_addr, conf->port);
		rl.connected_once = true;
		g_clear_error(&err);
		return;
	}
	if (!rl.lost_at) {
		rl.lost_at = now;
		rl.backoff_ms = RECONNECT_FIRST_MS;
	}
	rl.attempts++;
	if (now - rl.lost_at >= 1000 * (int64_t) RECONNECT_FOR_MS) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot reach the balancer at %s:%u for %u s (%s); no more moves for this step",
			    rl.job_id, rl.step_id, conf->balancer_addr,
			    conf->port, RECONNECT_FOR_MS / 1000,
			    err ? err->message : "registration failed");
		g_clear_error(&err);
		return;
	}
	if (rl.attempts == 1)
		slurm_error("migrate: JobId=%u StepId=%u: cannot reach the balancer at %s:%u: %s; retrying for up to %u s",
			    rl.job_id, rl.step_id, conf->balancer_addr,
			    conf->port,
			    err ? err->message : "registration failed",
			    RECONNECT_FOR_MS / 1000);
	g_clear_error(&err);
	rl.retry_at = now + 1000 * (int64_t) rl.backoff_ms;
	rl.backoff_ms = MIN(rl.backoff_ms * 2, RECONNECT_CAP_MS);
}

/*
 * agent_lost - ABORT reason=agent-lost naming a node: the node agent there
 * closed its connection without BYE, so the step's slurmstepd on that node
 * is gone, and Slurm 22.05 would wait for its tasks forever. End the step,
 * so that srun returns and the job can restart from its last good image.
 * RET true if the step was told to end
 */
static bool agent_lost(const smig_msg_abort_t *m)
{
	if (strcmp(m->reason, "agent-lost") || !m->has_node ||
	    m->job != rl.job_id || m->step != rl.step_id)
		return false;
	slurm_error("migrate: JobId=%u StepId=%u: the node agent of %s is gone (its slurmstepd died): ending the step; restart it from its last good image with SLURM_MIGRATE_RESTORE_GEN=last",
		    rl.job_id, rl.step_id, m->node);
	if (smig_slurm_kill_step(rl.job_id, rl.step_id) != 0)
		slurm_error("migrate: JobId=%u StepId=%u: cannot kill the step: %s",
			    rl.job_id, rl.step_id,
			    slurm_strerror(errno));
	return true;
}

/*
 * restore_timed_out - ABORT reason=restore-timeout: the ranks of this
 * relaunched step were not all past their restore within
 * MigrateRestoreTimeout (a start that hangs, doc/faults.md). End the step;
 * at exit, start it again from the same generation with the same hostfile,
 * unless this was the last try (final).
 * RET true if the message was this (handled)
 */
static bool restore_timed_out(const smig_msg_abort_t *m)
{
	const char *ranks = m->has_ranks ? m->ranks : "?";
	const char *timeout = m->has_timeout ? m->timeout : "?";
	uint32_t try = m->has_try ? m->try : 0;
	uint32_t tries = m->has_tries ? m->tries : 0;
	bool final = m->has_final ? m->final : true;
	char *errmsg = NULL, *path;
	uint64_t gen = m->gen;

	if (strcmp(m->reason, "restore-timeout"))
		return false;
	if (m->job != rl.job_id || m->step != rl.step_id ||
	    !rl.restored_gen || gen != rl.restored_gen) {
		slurm_error("migrate: JobId=%u StepId=%u: ABORT reason=restore-timeout not for this relaunched step (generation %" PRIu64 "), ignored",
			    rl.job_id, rl.step_id, rl.restored_gen);
		return true;
	}
	if (!final && rl.relaunch_text &&
	    smig_relaunch_check_hostfile(rl.relaunch_text, rl.ntasks,
					 rl.alloc_nodes, &rl.nnodes, &errmsg) &&
	    (path = smig_relaunch_write_hostfile(rl.relaunch_text, &errmsg))) {
		drop_pending();
		rl.hostfile = path;
		rl.reason = g_strdup("restore-timeout");
		rl.gen = gen;
		rl.next_try = rl.restore_try + 1;
		rl.prepared = rl.pending = true;
		slurm_error("migrate: JobId=%u StepId=%u: relaunch try %u of %u: ranks %s not past their restore of generation %" PRIu64 " within %s (reason=restore-timeout): ending the step and starting it again from generation %" PRIu64,
			    rl.job_id, rl.step_id, try, tries, ranks, gen,
			    timeout, gen);
	} else {
		if (!final)
			slurm_error("migrate: JobId=%u StepId=%u: cannot start the step again: %s",
				    rl.job_id, rl.step_id,
				    errmsg ? errmsg : "no hostfile of the relaunch");
		g_free(errmsg);
		rl.restore_failed = true;
		slurm_error("migrate: JobId=%u StepId=%u: relaunch try %u of %u: ranks %s not past their restore of generation %" PRIu64 " within %s (reason=restore-failed): ending the step; generation %" PRIu64 " stays in the job's image directory: restart the step with SLURM_MIGRATE_RESTORE_GEN=last",
			    rl.job_id, rl.step_id, try, tries, ranks, gen,
			    timeout, gen);
	}
	if (smig_slurm_kill_step(rl.job_id, rl.step_id) != 0)
		slurm_error("migrate: JobId=%u StepId=%u: cannot kill the step: %s",
			    rl.job_id, rl.step_id,
			    slurm_strerror(errno));
	return true;
}

static gpointer relaunch_main(gpointer unused)
{
	uint32_t grace_ms = smig_spank.conf->relaunch_grace_ms;
	gint64 grace_end = 0;	/* 0: no move acknowledged */
	bool killed = false;	/* after MigrateRelaunchGrace */
	bool ended = false;	/* an agent of the step was lost */
	GError *err = NULL;
	smig_msg_abort_t abort_m;
	smig_msg_refused_t refused;
	smig_msg_t *msg;
	int w, timeout;

	while (!g_atomic_int_get(&rl.stopping)) {
		if (rl.fd < 0 && rl.retry_at &&
		    g_get_monotonic_time() >= rl.retry_at)
			srun_connect();
		timeout = -1;
		if (grace_end && !killed) {
			gint64 left = grace_end - g_get_monotonic_time();

			timeout = left > 0 ? (int) (left / 1000) + 1 : 0;
		}
		if (rl.fd < 0 && rl.retry_at) {
			gint64 left = rl.retry_at - g_get_monotonic_time();
			int t = left > 0 ? (int) (left / 1000) + 1 : 0;

			timeout = timeout < 0 ? t : MIN(timeout, t);
		}
		w = smig_spank_wait(rl.fd, rl.wake_fd, timeout);
		if (g_atomic_int_get(&rl.stopping))
			break;
		if (!w && grace_end && !killed &&
		    g_get_monotonic_time() >= grace_end) {
			/* The ranks were told to stop but did not end. */
			slurm_error("migrate: JobId=%u StepId=%u: the step did not end within MigrateRelaunchGrace after the move was committed: killing it",
				    rl.job_id, rl.step_id);
			if (smig_slurm_kill_step(rl.job_id, rl.step_id) != 0)
				slurm_error("migrate: JobId=%u StepId=%u: cannot kill the step: %s",
					    rl.job_id, rl.step_id,
					    slurm_strerror(errno));
			killed = true;
			continue;
		}
		if (!(w & SMIG_WAIT_FD) || rl.fd < 0)
			continue;
		msg = smig_wire_recv(rl.fd, rl.auth, RECV_TIMEOUT_MS, &err);
		if (!msg) {
			/*
			 * A committed move stays due (the ranks are
			 * stopping); a move not committed yet never will be.
			 */
			if (rl.prepared && !rl.pending)
				drop_pending();
			slurm_error("migrate: JobId=%u StepId=%u: connection to the balancer lost: %s; reconnecting",
				    rl.job_id, rl.step_id, err->message);
			g_clear_error(&err);
			close(rl.fd);
			rl.fd = -1;
			rl.lost_at = g_get_monotonic_time();
			rl.backoff_ms = RECONNECT_FIRST_MS;
			rl.attempts = 0;
			rl.retry_at = rl.lost_at + 1000 * rl.backoff_ms;
			continue;
		}
		if (!smig_spank_from_balancer(msg)) {
			smig_msg_free(msg);
			continue;
		}
		switch (msg->type) {
		case SMIG_MSG_RELAUNCH:
			handle_relaunch(msg);
			grace_end = 0;
			break;
		case SMIG_MSG_COMMIT:
			/* The ranks stop now: the step must end. */
			if (decide(msg)) {
				grace_end = g_get_monotonic_time() +
					    (gint64) grace_ms * 1000;
				killed = false;
			}
			break;
		case SMIG_MSG_ABORT:
			if (!smig_msg_abort_decode(msg, &abort_m, &err)) {
				decode_failed(err);
				err = NULL;
				break;
			}
			if (restore_timed_out(&abort_m)) {
				smig_msg_abort_clear(&abort_m);
				break;
			}
			if (!ended && agent_lost(&abort_m))
				ended = true;
			smig_msg_abort_clear(&abort_m);
			decide(msg);
			grace_end = 0;
			break;
		case SMIG_MSG_REFUSED:
			if (!smig_msg_refused_decode(msg, &refused, &err)) {
				decode_failed(err);
				err = NULL;
				break;
			}
			/* A node agent could not set the step up. */
			if (!strcmp(refused.what, "unprotected"))
				slurm_error("migrate: JobId=%u StepId=%u: %s",
					    rl.job_id, rl.step_id,
					    refused.reason);
			else
				slurm_error("migrate: JobId=%u StepId=%u: the balancer refused %s: %s",
					    rl.job_id, rl.step_id,
					    refused.what, refused.reason);
			smig_msg_refused_clear(&refused);
			break;
		default:
			slurm_error("migrate: JobId=%u StepId=%u: unexpected %s from the balancer, ignored",
				    rl.job_id, rl.step_id,
				    smig_msg_type_name(msg->type));
			break;
		}
		smig_msg_free(msg);
	}
	return NULL;
}

/* srun's exit status, for BYE; runs before slurm_spank_exit(). */
static void record_exit(int status, void *unused)
{
	rl.exit_status = status;
}

int smig_relaunch_start(spank_t sp)
{
	const smig_conf_t *conf = smig_spank.conf;
	const char *nodes = getenv("SLURM_JOB_NODELIST");
	const char *cpus = getenv("SLURM_JOB_CPUS_PER_NODE");
	const char *hostfile = getenv("SLURM_HOSTFILE");
	uint64_t gen = 0, prev = 0, cpt = 1;
	bool relaunched = false;
	GError *err = NULL;
	char **argv, *pinned;
	int argc;

	rl.started = true;
	if (spank_get_item(sp, S_JOB_ID, &rl.job_id) ||
	    spank_get_item(sp, S_JOB_STEPID, &rl.step_id) ||
	    spank_get_item(sp, S_JOB_TOTAL_TASK_COUNT, &rl.ntasks) ||
	    spank_get_item(sp, S_JOB_ARGV, &argc, &argv)) {
		slurm_error("migrate: cannot read the step's ids and words from srun; the step runs without migration");
		return 0;
	}
	rl.app_argv = g_new0(char *, argc + 1);
	for (int i = 0; i < argc; i++)
		rl.app_argv[i] = g_strdup(argv[i]);
	if ((pinned = smig_relaunch_pinned_nodes(argc))) {
		slurm_error("migrate: --migrate cannot be combined with %s: the balancer places the ranks on the nodes of the allocation (give the nodes to sbatch/salloc instead)",
			    pinned);
		g_free(pinned);
		return -1;
	}

	if (smig_relaunch_env_u64("SLURM_MIGRATE_PREV_STEP", &prev) &&
	    smig_relaunch_env_u64("SLURM_MIGRATE_RESTORE_GEN", &gen) && gen)
		relaunched = true;
	/*
	 * The step exists now: srun has read the hostfile of the move. Its
	 * text stays here for the relaunch watchdog (restore_timed_out()).
	 */
	if (relaunched && smig_relaunch_is_hostfile(hostfile)) {
		g_file_get_contents(hostfile, &rl.relaunch_text, NULL, NULL);
		unlink(hostfile);
	}
	if (relaunched) {
		uint64_t try = 1;

		smig_relaunch_env_u64("SLURM_MIGRATE_RESTORE_TRY", &try);
		rl.restore_try = (uint32_t) MIN(MAX(try, 1), UINT32_MAX);
	}
	smig_relaunch_env_u64("SLURM_CPUS_PER_TASK", &cpt);
	if (nodes && !(rl.alloc_nodes = smig_hostlist_expand(nodes, &err))) {
		slurm_error("migrate: SLURM_JOB_NODELIST=%s: %s; the step runs without migration",
			    nodes, err->message);
		g_error_free(err);
		return 0;
	}

	rl.auth = smig_auth_munge_new(conf->munge_socket, &err);
	if (!rl.auth) {
		slurm_error("migrate: JobId=%u StepId=%u: %s; the step runs without migration",
			    rl.job_id, rl.step_id, err->message);
		g_error_free(err);
		return 0;
	}
	rl.alloc_text = g_strdup(nodes ? nodes : "");
	rl.cpus_text = g_strdup(cpus ? cpus : "");
	rl.cpt = cpt ? (uint32_t) cpt : 1;
	rl.restored_gen = relaunched ? gen : 0;
	rl.prev_step = (uint32_t) prev;
	rl.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rl.wake_fd < 0) {
		int e = errno;

		slurm_error("migrate: JobId=%u StepId=%u: eventfd: %s; the step runs without migration",
			    rl.job_id, rl.step_id, g_strerror(e));
		return 0;
	}
	/* A balancer that is restarting is tried again from the thread. */
	srun_connect();
	rl.thread = g_thread_try_new("smig-srun", relaunch_main, NULL, &err);
	if (!rl.thread) {
		slurm_error("migrate: JobId=%u StepId=%u: cannot start a thread: %s; the step runs without migration",
			    rl.job_id, rl.step_id, err->message);
		g_error_free(err);
		goto out_close;
	}
	on_exit(record_exit, NULL);
	return 0;

out_close:
	if (rl.fd >= 0)
		close(rl.fd);
	rl.fd = -1;
	return 0;
}

static void relaunch_free(void)
{
	g_clear_pointer(&rl.auth, smig_auth_free);
	g_clear_pointer(&rl.app_argv, g_strfreev);
	g_clear_pointer(&rl.alloc_nodes, g_strfreev);
	g_clear_pointer(&rl.alloc_text, g_free);
	g_clear_pointer(&rl.cpus_text, g_free);
	g_clear_pointer(&rl.relaunch_text, g_free);
	if (rl.wake_fd >= 0)
		close(rl.wake_fd);
	rl.wake_fd = -1;
}

/*
 * retry_create - a relaunched srun exits before its step was created:
 * slurmctld refused it. Right after a restart slurmctld refuses a step on
 * nodes that have not registered again yet ("Memory required by task is
 * not available", which srun does not retry), so exec the same srun again
 * after 1, 2, ... CREATE_PAUSE_MAX_S s, CREATE_TRIES times at most (about
 * 30 s in all; SLURM_MIGRATE_RELAUNCH_TRY
 * counts). Returns if it does not exec.
 */
static void retry_create(void)
{
	uint64_t gen = 0, prev = 0, tries = 0;
	const char *job = getenv("SLURM_JOB_ID");
	char **argv = NULL, **env, num[16];
	gchar *buf = NULL;
	gsize len = 0, off;
	GPtrArray *words;
	sigset_t term, old;
	int sig;

	if (!smig_relaunch_env_u64("SLURM_MIGRATE_RESTORE_GEN", &gen) || !gen ||
	    !smig_relaunch_env_u64("SLURM_MIGRATE_PREV_STEP", &prev))
		return;
	smig_relaunch_env_u64("SLURM_MIGRATE_RELAUNCH_TRY", &tries);
	if (tries >= CREATE_TRIES) {
		slurm_error("migrate: JobId=%s: the relaunched step from generation %" PRIu64 " could not be created %u times: giving up; the images stay in the job's image directory",
			    job ? job : "?", gen, CREATE_TRIES + 1);
		return;
	}
	term_sigset(&term);
	sigprocmask(SIG_BLOCK, &term, &old);
	if ((sig = term_signal_pending()) ||
	    !g_file_get_contents("/proc/self/cmdline", &buf, &len, NULL))
		goto out;
	words = g_ptr_array_new();
	for (off = 0; off < len; off += strlen(buf + off) + 1)
		g_ptr_array_add(words, g_strdup(buf + off));
	g_ptr_array_add(words, NULL);
	argv = (char **) g_ptr_array_free(words, FALSE);
	slurm_error("migrate: JobId=%s: the relaunched step from generation %" PRIu64 " was not created; trying again in %" PRIu64 " s (%" PRIu64 " of %u)",
		    job ? job : "?", gen, MIN(tries + 1, CREATE_PAUSE_MAX_S),
		    tries + 1, CREATE_TRIES);
	g_usleep(MIN(tries + 1, CREATE_PAUSE_MAX_S) * G_USEC_PER_SEC);
	if ((sig = term_signal_pending()))
		goto out;
	snprintf(num, sizeof(num), "%" PRIu64, tries + 1);
	env = g_environ_setenv(g_strdupv(smig_relaunch_environ()),
			       "SLURM_MIGRATE_RELAUNCH_TRY", num, TRUE);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	smig_relaunch_exec_srun(argv, env);
	slurm_error("migrate: cannot exec /proc/self/exe (srun): %s",
		    g_strerror(errno));
	g_strfreev(env);
out:
	g_strfreev(argv);
	g_free(buf);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void smig_relaunch_exit(void)
{
	sigset_t term, old;
	char **argv, **env;
	int sig;

	if (!rl.started) {
		relaunch_free();	/* create_failed() may try again */
		return;
	}

	if (rl.thread) {
		g_atomic_int_set(&rl.stopping, 1);
		smig_spank_wake(rl.wake_fd);
		g_thread_join(rl.thread);
		rl.thread = NULL;
	}
	await_decision();
	if (rl.fd >= 0) {
		smig_msg_bye_t bye = {
			.job = rl.job_id,
			.step = rl.step_id,
			.status = rl.exit_status,
		};

		send_msg(smig_msg_bye_encode(&bye));
		close(rl.fd);
		rl.fd = -1;
	}
	if (!rl.pending) {
		relaunch_free();
		/* The watchdog ended the step: its work is not done. */
		if (rl.restore_failed && !rl.exit_status)
			_exit(1);
		return;
	}

	/* From here a termination signal stays pending, across the exec too. */
	term_sigset(&term);
	sigprocmask(SIG_BLOCK, &term, &old);
	if ((sig = term_signal_pending())) {
		slurm_info("migrate: JobId=%u StepId=%u: signal %s pending: not relaunching the step (generation %" PRIu64 " stays on disk)",
			   rl.job_id, rl.step_id, strsignal(sig), rl.gen);
		goto out_drop;
	}
	if (!(argv = smig_relaunch_argv(rl.app_argv, rl.nnodes)))
		goto out_fail;
	smig_relaunch_wait_step_gone(rl.job_id, rl.step_id);
	env = smig_relaunch_env(rl.env ? rl.env : environ, rl.hostfile,
				rl.gen, rl.step_id, rl.next_try);

	/* srun's own children (e.g. its I/O helpers) must not stay zombies. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	slurm_info("migrate: relaunching step with generation %" PRIu64 ": %s",
		   rl.gen, rl.reason);
	smig_relaunch_exec_srun(argv, env);
	slurm_error("migrate: JobId=%u StepId=%u: cannot exec /proc/self/exe (srun): %s",
		    rl.job_id, rl.step_id, g_strerror(errno));
	g_strfreev(argv);
	g_strfreev(env);
out_fail:
	/*
	 * The ranks stopped for a move that cannot happen: the work is not
	 * done, so srun must not report success.
	 */
	slurm_error("migrate: JobId=%u StepId=%u: relaunch from generation %" PRIu64 " failed; its images stay in the job's image directory",
		    rl.job_id, rl.step_id, rl.gen);
	drop_pending();
	_exit(1);
out_drop:
	drop_pending();
	relaunch_free();
	sigprocmask(SIG_SETMASK, &old, NULL);
}
