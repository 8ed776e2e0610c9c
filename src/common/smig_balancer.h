/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_balancer.h - the balancer service, independent of its host
 *
 * The balancer owns one thread with its own GMainContext: it listens on
 * MigrateBalancerAddr:MigratePort, authenticates every message (munge),
 * tracks the steps that asked for migration (srun and node agents register),
 * polls node states through its host, runs the capture protocol and tells
 * srun where to relaunch. It publishes each job's one-line state through its
 * host (smigd: a segment of the job's AdminComment). The protocol is in
 * doc/design.md. Its host is smigd (src/smigd), which backs these
 * operations with libslurm's public API.
 */
#ifndef SMIG_BALANCER_H
#define SMIG_BALANCER_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_conf.h"
#include "smig_lifecycle.h"

typedef struct smig_balancer smig_balancer_t;

/* What smig_host_ops_t.job_release() found. */
enum {
	SMIG_RELEASE_NONE = -1,
	SMIG_RELEASE_WAIT = 0,
	SMIG_RELEASE_DONE = 1,
};

/*
 * What the balancer needs from its host. Every call comes from the
 * balancer's own thread with no lock of the host held; the host takes its
 * own locks inside and must not block for long.
 */
typedef struct smig_host_ops {
	/*
	 * node_flags - state of one node as smig_node_flags_t bits
	 * RET false if the node is unknown
	 */
	bool (*node_flags)(void *ctx, const char *node, uint32_t *flags);
	/*
	 * job_owner - uid of a job that is running now
	 * RET false if the job does not exist or is not running
	 */
	bool (*job_owner)(void *ctx, uint32_t job_id, uint32_t *uid);
	/*
	 * job_publish - the job's one-line migration state for people
	 * (borrowed text; smigd stores a copy in AdminComment)
	 */
	void (*job_publish)(void *ctx, uint32_t job_id, const char *text);
	/*
	 * job_end_time - when a running job's time limit ends (may be NULL)
	 * OUT end - unix seconds
	 * RET false if the job is unknown, not running or has no time limit
	 */
	bool (*job_end_time)(void *ctx, uint32_t job_id, int64_t *end);
	/*
	 * job_requeue - job-scope move: requeue a running batch job with
	 * the nodes of exclude added to its excluded nodes (optional: a
	 * host without it never moves whole jobs)
	 * IN  exclude    - hostlist expression of nodes to exclude (borrowed)
	 * IN  check_only - only say whether the job could be requeued now
	 * OUT error      - why not (not a batch job, not requeue-able,
	 *                  not running); caller g_error_free()s
	 * RET true if requeued (or, with check_only, if it could be)
	 */
	bool (*job_requeue)(void *ctx, uint32_t job_id, const char *exclude,
			    bool check_only, GError **error);
	/*
	 * job_release - a job that was requeued (by job_requeue or by the
	 * host itself after a node failure) may start again: its begin
	 * time, which the host delays after a requeue, becomes now if
	 * clean (job_requeue of a job-scope move: every node of the old run
	 * can end its tasks), else as soon as no process of the old run can
	 * still act on the new one (doc/faults.md) (optional)
	 * RET SMIG_RELEASE_DONE: pending and free to start (now or
	 *     already); SMIG_RELEASE_WAIT: requeued but still completing,
	 *     ask again; SMIG_RELEASE_NONE: not a requeued pending job
	 *     (running, ended, unknown)
	 */
	int (*job_release)(void *ctx, uint32_t job_id, bool clean);
	/*
	 * topology - the cluster's switch tree (optional: a host without
	 * it, or a NULL answer, is one flat network); asked for each
	 * balancing decision and each STATUS, answered from what the host
	 * read (smigd: Slurm's topology/tree, read rarely)
	 * RET a new reference, caller smig_topology_unref()s; NULL: flat
	 */
	struct smig_topology *(*topology)(void *ctx);
	/*
	 * job_fate - how a job stands for its images (FATE_QUERY), asked of
	 * slurmctld now (optional: without it every FATE_QUERY is refused
	 * and images stay)
	 * OUT facts - phase, Slurm's state name, end time, uid (UINT32_MAX
	 *             for an unknown job)
	 * RET false if slurmctld did not answer
	 */
	bool (*job_fate)(void *ctx, uint32_t job_id, smig_job_facts_t *facts);
	/*
	 * nodes_changed - Slurm said that nodes changed (NODE_EVENT, sent by
	 * smigd -E from a Slurm node trigger): the next node_flags() reads
	 * the node table again (optional: without it NODE_EVENT is refused)
	 */
	void (*nodes_changed)(void *ctx);
	/*
	 * jobs_changed - a registered srun or agent left (BYE or a closed
	 * connection): its job may have ended or been requeued, so the next
	 * job_owner() asks slurmctld (optional)
	 */
	void (*jobs_changed)(void *ctx);
	void *ctx;
} smig_host_ops_t;

/*
 * smig_balancer_new - a balancer, not yet listening
 * IN  conf       - settings (borrowed; must outlive the balancer)
 * IN  ops        - host callbacks (copied)
 * IN  auth       - credentials (borrowed; must outlive the balancer)
 * IN  admin_uid  - SlurmUser's uid; it and root may do anything
 * RET new balancer, caller frees with smig_balancer_free()
 */
smig_balancer_t *smig_balancer_new(const smig_conf_t *conf,
				   const smig_host_ops_t *ops,
				   smig_auth_t *auth, uint32_t admin_uid);

/*
 * smig_balancer_start - bind the port and start the thread
 * RET false with error set if the port cannot be bound (names addr:port)
 */
bool smig_balancer_start(smig_balancer_t *b, GError **error);

/*
 * smig_balancer_port - the TCP port bound by smig_balancer_start() (the
 * kernel's choice when MigratePort is 0, as in unit tests); 0 before
 */
uint16_t smig_balancer_port(const smig_balancer_t *b);

/*
 * smig_balancer_set_max_conns - lower the connection cap, which is
 * otherwise derived from RLIMIT_NOFILE at start (unit tests); before
 * smig_balancer_start() only
 * IN  n - at most this many connections; 0 keeps the derived cap
 */
void smig_balancer_set_max_conns(smig_balancer_t *b, uint32_t n);

/*
 * smig_balancer_free - stop and join the thread, close every connection;
 * NULL is a no-op, and so is a balancer whose start failed or never ran
 */
void smig_balancer_free(smig_balancer_t *b);

#endif /* SMIG_BALANCER_H */
