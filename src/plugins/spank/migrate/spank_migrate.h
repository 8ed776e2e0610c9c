/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spank_migrate.h - private declarations of spank_migrate.so
 *
 * spank_migrate.c holds the option and the SPANK hooks, agent.c the Slurm and
 * PMIx glue of the node agent (slurmstepd, remote context; its protocol engine
 * and image store are src/common/smig_agent*.c), relaunch.c the srun side
 * (local context).
 * Every hook runs in the main thread of its process; agent.c and relaunch.c
 * each own at most one thread, started in a user_init hook and joined in
 * slurm_spank_exit().
 */
#ifndef SMIG_SPANK_MIGRATE_H
#define SMIG_SPANK_MIGRATE_H

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <glib.h>
#include <slurm/spank.h>

#include "smig_conf.h"
#include "smig_image.h"
#include "smig_request.h"
#include "smig_wire.h"

/* The symbols Slurm looks up (the tree builds with -fvisibility=hidden). */
#define SMIG_SPANK_EXPORT __attribute__((visibility("default")))

/* What the option and slurm_spank_init_post_opt() found out. */
typedef struct smig_spank {
	bool requested;		/* --migrate, mode not off */
	smig_request_t req;	/* the parsed request */
	char *req_text;		/* canonical text, g_free() */
	smig_conf_t *conf;	/* migrate.conf, loaded when requested */
	bool active;		/* remote: a step that migrates; local: an
				 * srun that registers with the balancer */
	uint32_t job_id;	/* remote: set in init_post_opt */
	uint32_t step_id;
	char *image_dir;	/* remote: MigrateImageDir/jobid, g_free */
	smig_dir_id_t dir_id;	/* remote: image_dir as made at step start,
				 * checked at each capture (agent.c) */
	char *unprotected;	/* remote: why the step cannot migrate
				 * (told to the balancer), g_free */
} smig_spank_t;

/* The one instance, in spank_migrate.c. */
extern smig_spank_t smig_spank;

#define SMIG_WAIT_FD	1	/* the socket is readable (or closed) */
#define SMIG_WAIT_WAKE	2	/* smig_spank_wake() was called */

/*
 * smig_spank_wait - wait until a socket or a wake-up eventfd is readable;
 * the eventfd is reset before returning
 * IN fd         - socket, or -1 for none
 * IN wake_fd    - eventfd written to by smig_spank_wake()
 * IN timeout_ms - -1 waits forever
 * RET SMIG_WAIT_* bits, 0 on timeout
 */
int smig_spank_wait(int fd, int wake_fd, int timeout_ms);

/* smig_spank_wake - make smig_spank_wait() on wake_fd return SMIG_WAIT_WAKE */
void smig_spank_wake(int wake_fd);

/* agent.c: the host of the node agent of one step on one node (slurmstepd) */

/*
 * smig_spank_agent_start - resolve libpmix, register the -107 handler and
 * start the agent thread (slurm_spank_user_init). Failures are logged; the step
 * runs on without migration.
 */
void smig_spank_agent_start(spank_t sp);

/*
 * smig_spank_agent_task_init - capture=signal, in the task before exec
 * (task_init_privileged, root; no PMIx): SLURM_MIGRATE_CHECKPOINT_FILE for
 * the rank and, with SLURM_MIGRATE_RESTORE_GEN, the payload of the rank's
 * verified image of that generation written back into that file
 * RET 0, or -1 (logged) when the image cannot be restored: the task fails
 *     rather than start from nothing
 */
int smig_spank_agent_task_init(spank_t sp);

/*
 * smig_spank_agent_report - the step cannot be protected on this node (the
 * job's image directory could not be made, ...): tell the balancer (HELLO_AGENT
 * with "error"), which records it in the job's last_error and tells the
 * step's srun (slurm_spank_user_init). Failures are logged.
 * IN why - what went wrong (borrowed)
 */
void smig_spank_agent_report(spank_t sp, const char *why);

/* smig_spank_agent_stop - BYE, join the threads, deregister, free (exit) */
void smig_spank_agent_stop(void);

/* sample.c: what the agent measures (see its header comment) */

/*
 * smig_sample_setup - the step's stat directory and the tasks' environment
 * (SLURM_MIGRATE_STAT_DIR; LD_PRELOAD of the PMPI layer with affinity);
 * user_init, before the tasks exist. Failures are logged.
 */
void smig_sample_setup(spank_t sp, const char *node);

/* smig_sample_task - remember a task's pid and rank (task_post_fork) */
void smig_sample_task(spank_t sp);

/*
 * smig_sample_pid - the process of a local rank (task_post_fork recorded it)
 * RET its pid, 0 if unknown
 */
pid_t smig_sample_pid(uint32_t rank);

/* smig_sample_interval_ms - interval= of the step, else MigrateSampleInterval */
uint32_t smig_sample_interval_ms(void);

/*
 * smig_sample_collect - sample every task and the node (agent thread)
 * RET floating a{sv} body of a SAMPLE; NULL when no rank has a sample yet
 */
GVariant *smig_sample_collect(void);

/* smig_sample_fini - remove the stat directory, forget the tasks (exit) */
void smig_sample_fini(void);

/* relaunch.c: the srun side */

/* smig_relaunch_init - snapshot environ and stdin (slurm_spank_init, local) */
int smig_relaunch_init(void);

/*
 * smig_relaunch_check - srun with --migrate: refuse it outside an allocation
 * RET 0, or -1 after logging why
 */
int smig_relaunch_check(void);

/* Set in the environment of an srun launched with its hot spares left out. */
#define SMIG_SPARES_ENV		"SLURM_MIGRATE_SPARES"
/* The word that leaves them out (then the nodes, ranged). */
#define SMIG_SPARES_EXCLUDE	"--exclude="

/*
 * smig_relaunch_spares - spares=N (init_post_opt, local, after
 * smig_relaunch_check()): exec srun again with --nodes=K-N (unless the user
 * gave -N) and --exclude= the allocation's last N nodes, so that they stay
 * free as hot spares; nothing to do without spares= or in the srun it
 * execs (SMIG_SPARES_ENV set; relaunches inherit it)
 * RET 0 when nothing is to be done; -1 (logged, naming spares= and the
 *     value) when refused: N >= the allocation's nodes, -N leaves no room,
 *     -w, -F or -x given, or the exec failed. It does not return otherwise.
 */
int smig_relaunch_spares(void);

/*
 * Shared by relaunch.c and spares.c, which both exec srun again:
 * smig_relaunch_block_term - block srun's termination signals
 * OUT old - the mask before; RET the first of them pending, or 0
 * smig_relaunch_environ - the environment of slurm_spank_init (srun
 *                         setenv()s its own step's variables after it)
 * smig_relaunch_exec_srun - stdin back, buffers flushed, execve() of srun;
 *                           returns only if the exec failed (errno)
 */
int smig_relaunch_block_term(sigset_t *old);
char **smig_relaunch_environ(void);
void smig_relaunch_exec_srun(char **argv, char **env);

/*
 * smig_relaunch_start - HELLO_SRUN and the relaunch thread (local_user_init)
 * RET 0 (also when the step runs on without migration: logged), -1 when
 *     the user's srun options make migration impossible (srun must fail)
 */
int smig_relaunch_start(spank_t sp);

/* smig_relaunch_exit - join the thread, BYE, exec the new srun if due (exit) */
void smig_relaunch_exit(void);

/* smig_relaunch_fini - free the snapshot (exit, every srun) */
void smig_relaunch_fini(void);

/* relaunch_cmd.c: the relaunched srun's hostfile, words and environment */

/* smig_relaunch_is_hostfile - a hostfile relaunch.c wrote (by its name) */
bool smig_relaunch_is_hostfile(const char *path);

/*
 * smig_relaunch_check_hostfile - a RELAUNCH mapping: at least ntasks lines,
 * each a node of alloc_nodes (borrowed)
 * OUT nnodes - distinct nodes of the first ntasks lines
 * OUT errmsg - new text on failure, caller g_free()s
 */
bool smig_relaunch_check_hostfile(const char *text, uint32_t ntasks,
				  char *const *alloc_nodes, uint32_t *nnodes,
				  char **errmsg);

/*
 * smig_relaunch_write_hostfile - text into a new file in TMPDIR, mode 0600
 * RET new path, caller g_free()s; NULL (errmsg set, caller g_free()s) on error
 */
char *smig_relaunch_write_hostfile(const char *text, char **errmsg);

/*
 * smig_relaunch_env_u64 - a number from the environment
 * RET false if absent or bad (logged)
 */
bool smig_relaunch_env_u64(const char *name, uint64_t *out);

/*
 * smig_relaunch_pinned_nodes - srun's first word before the napp words of
 * the application that pins nodes (-w, --nodelist, -F, --nodefile)
 * RET new string, caller g_free()s; NULL if none
 */
char *smig_relaunch_pinned_nodes(unsigned napp);

/*
 * smig_relaunch_argv - srun's words with --nodes=nnodes (up to Slurm 24.05;
 * from 24.11 without any -N) and --distribution=arbitrary before the
 * application's words (app_argv, borrowed)
 * RET new vector, caller g_strfreev()s; NULL (logged) on error
 */
char **smig_relaunch_argv(char *const *app_argv, uint32_t nnodes);

/*
 * smig_relaunch_env - base (borrowed) without srun's and an earlier move's
 * variables, with SLURM_HOSTFILE, the generation, the old step and the try
 * RET new vector, caller g_strfreev()s
 */
char **smig_relaunch_env(char *const *base, const char *hostfile,
			 uint64_t gen, uint32_t step_id, uint32_t next_try);

/*
 * smig_relaunch_wait_step_gone - wait until slurmctld no longer lists the
 * step (at most 60 s; logged)
 */
void smig_relaunch_wait_step_gone(uint32_t job_id, uint32_t step_id);

/*
 * smig_spank_from_balancer - true if an authenticated message comes from
 * the balancer's side (root or SlurmUser, as slurmctld runs); anything else
 * (a user who took the port, a forged peer) is logged and must be ignored
 */
bool smig_spank_from_balancer(const smig_msg_t *msg);

#endif /* SMIG_SPANK_MIGRATE_H */
