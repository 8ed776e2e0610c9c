/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_slurm.h - smigd's link to slurmctld, through libslurm's public API
 *
 * smigd_slurm.c is the only file of smigd that calls libslurm: it reads
 * slurmctld's configuration and implements the balancer's host operations
 * (smig_host_ops_t) with slurm_load_node(), slurm_load_jobs(),
 * slurm_load_job(), slurm_update_job() and slurm_requeue(). Every call takes one lock inside,
 * so the balancer's thread and smigd's main thread may both call in.
 */
#ifndef SMIGD_SLURM_H
#define SMIGD_SLURM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "smig_balancer.h"

typedef struct smigd_slurm smigd_slurm_t;

/*
 * smigd_slurm_new - initialise libslurm and read slurmctld's configuration
 * (SlurmUser, StateSaveLocation, MessageTimeout, AuthInfo, SlurmctldPlugstack)
 * OUT error - slurmctld does not answer, or it still loads the slurmctld
 *             plugin of 0.1 (SlurmctldPlugstack=migrate); caller
 *             g_error_free()s
 * RET new link, caller frees with smigd_slurm_free(); NULL on error
 */
smigd_slurm_t *smigd_slurm_new(GError **error);

/* smigd_slurm_free - free the link and its caches; NULL is a no-op */
void smigd_slurm_free(smigd_slurm_t *s);

/*
 * smigd_slurm_topology_reload - read the switch tree from slurmctld (at
 * start, once the log is open, and on SIGHUP); a failed read keeps the tree
 * read before. The balancer asks for it with its topology() host op, which
 * reads it again when slurmctld's configuration changed.
 */
void smigd_slurm_topology_reload(smigd_slurm_t *s);

/* smigd_slurm_admin_uid - SlurmUser's uid */
uint32_t smigd_slurm_admin_uid(const smigd_slurm_t *s);

/*
 * smigd_slurm_conf_path - path of slurm.conf: $SLURM_CONF, else the one
 * slurmctld reports (borrowed, valid for the life of s)
 */
const char *smigd_slurm_conf_path(const smigd_slurm_t *s);

/*
 * smigd_slurm_state_save - slurm.conf's StateSaveLocation (MigrateStateDir's
 * default is <it>/migrate, smig_conf_default_state_dir())
 * RET borrowed string, NULL if slurmctld did not say
 */
const char *smigd_slurm_state_save(const smigd_slurm_t *s);

/*
 * smigd_slurm_set_poll - read node and job states from slurmctld at most once
 * per MigratePollInterval of conf (the ops answer from those tables in
 * between); before smigd_slurm_host_ops() and again on SIGHUP
 * IN node_events - Slurm's node triggers tell smigd of node events
 *                  (smigd_trigger.c): then at most once per
 *                  SMIGD_NODE_SAFETY_POLLS intervals, and at once after a
 *                  node event (and, for jobs, after a step's peer left)
 */
void smigd_slurm_set_poll(smigd_slurm_t *s, const smig_conf_t *conf,
			  bool node_events);

/*
 * While Slurm's node triggers tell smigd of node events (smigd_trigger.c),
 * the node table is read at most once per this many MigratePollIntervals
 * (a safety net for events no trigger reports), and at once on an event.
 */
#define SMIGD_NODE_SAFETY_POLLS 6
/*
 * ... but only from this MigratePollInterval on: a shorter one was chosen
 * to see every change at once (a small cluster, the test clusters' 1 s),
 * and Slurm's trigger check (every 15 s) would make smigd see a resumed
 * node as drained for longer than that.
 */
#define SMIGD_NODE_SAFETY_MIN_MS 10000

/*
 * smigd_slurm_host_ops - the balancer's host operations, backed by s
 * OUT ops - filled in; s must outlive every balancer that uses them
 */
void smigd_slurm_host_ops(smigd_slurm_t *s, smig_host_ops_t *ops);

/*
 * smigd_slurm_flush - write the AdminComment segments that changed (read,
 * modify, write; at most one write per job per second); called from the
 * main loop every 250 ms
 */
void smigd_slurm_flush(smigd_slurm_t *s);

#endif /* SMIGD_SLURM_H */
