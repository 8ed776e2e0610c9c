/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_lifecycle.h - what happens to a job's images when the job ends
 *
 * The policy (doc/images.md, "When a job ends"): a completed job's images
 * are removed; those of a job that ended otherwise (failed, cancelled,
 * timeout, node failure, out of memory, ...) are kept MigrateImageKeep after
 * its end, then removed; a job that is pending, running, suspended or
 * requeued keeps them. Slurm's word on the job comes from the balancer
 * (FATE_QUERY, FATE: smigd asks slurmctld); without it nothing is removed.
 *
 * A store root is MigrateImageDir (MigrateImageStore=shared) or
 * <MigrateImageDir>/<node> (local): root-owned, 0755. In it, <jobid>/ is the
 * job's directory (the job's user's), .keep.<jobid> the root-owned marker of
 * a kept directory ("until=T end=E state=S"), and .gone.<jobid>.<node>.<pid>
 * a directory claimed for removal (renamed first, so that the nodes sharing
 * a store never remove one twice or a new one). Removal works from
 * directory descriptors, O_NOFOLLOW, never leaves the file system of the
 * store and never follows a symbolic link.
 */
#ifndef SMIG_LIFECYCLE_H
#define SMIG_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_conf.h"

/* How a job stands, as far as its images are concerned. */
typedef enum {
	SMIG_JOB_UNKNOWN,	/* slurmctld does not know it (purged) */
	SMIG_JOB_ACTIVE,	/* pending, running, suspended, requeued */
	SMIG_JOB_COMPLETED,	/* ended with exit code 0 */
	SMIG_JOB_ENDED,		/* failed, cancelled, timeout, node_fail, ... */
} smig_job_phase_t;

/* What to do with a job's images now. */
typedef enum {
	SMIG_FATE_KEEP,		/* the job may run again: leave them */
	SMIG_FATE_KEEP_UNTIL,	/* keep them until *until, then remove */
	SMIG_FATE_REMOVE,	/* remove them now */
} smig_fate_t;

/* What the balancer said about a job (FATE). */
typedef struct smig_job_facts {
	smig_job_phase_t phase;
	char state[64];		/* Slurm's state, e.g. "FAILED", "unknown" */
	int64_t end_time;	/* unix s; 0 when not ended or unknown */
	uint32_t uid;		/* the job's user; UINT32_MAX unknown */
} smig_job_facts_t;

/* smig_job_phase_name - "unknown", "active", "completed", "ended" */
const char *smig_job_phase_name(smig_job_phase_t phase);

/* smig_job_phase_parse - the reverse; false for another text */
bool smig_job_phase_parse(const char *text, smig_job_phase_t *phase);

/* smig_fate_name - "keep", "keep-until", "remove" */
const char *smig_fate_name(smig_fate_t fate);

/*
 * smig_image_fate - the policy: what to do with the images of a job
 * IN  phase    - how the job stands
 * IN  end_time - unix s of its end (SMIG_JOB_ENDED); for SMIG_JOB_UNKNOWN
 *                the caller's best knowledge (the marker's end, else the
 *                directory's last change), 0 when there is none
 * IN  keep_s   - MigrateImageKeep
 * IN  keep_completed_s - MigrateImageKeepCompleted (0: a completed job's
 *                go at once, the default)
 * IN  now      - unix s
 * OUT until    - SMIG_FATE_KEEP_UNTIL: unix s after which they go
 * RET ACTIVE: KEEP; COMPLETED: REMOVE (with keep_completed_s, as ENDED
 *     with that time); ENDED (and UNKNOWN with an end):
 *     REMOVE once end_time + keep_s <= now (at once with keep_s 0), else
 *     KEEP_UNTIL; UNKNOWN without an end: KEEP
 */
smig_fate_t smig_image_fate(smig_job_phase_t phase, int64_t end_time,
			    uint32_t keep_s, uint32_t keep_completed_s,
			    int64_t now, int64_t *until);

/* A connection to the balancer for FATE_QUERY, opened at the first ask. */
typedef struct smig_fate_client {
	const smig_conf_t *conf;	/* borrowed */
	uint32_t admin_uid;		/* SlurmUser: may answer, as root */
	smig_auth_t *auth;
	int fd;
	bool unreachable;		/* a connection failed: the other
					 * questions of this client fail at
					 * once (an epilog waits once) */
} smig_fate_client_t;

/* smig_fate_client_init - c ready to ask; nothing is opened yet */
void smig_fate_client_init(smig_fate_client_t *c, const smig_conf_t *conf,
			   uint32_t admin_uid);

/* smig_fate_client_close - close and free what c holds */
void smig_fate_client_close(smig_fate_client_t *c);

/*
 * smig_fate_ask - FATE_QUERY for a job, FATE back (from root or admin_uid)
 * OUT facts - the answer
 * OUT error - no balancer, refused, a bad answer; g_error_free()
 * RET true if the balancer answered
 */
bool smig_fate_ask(smig_fate_client_t *c, uint32_t job,
		   smig_job_facts_t *facts, GError **error);

/* A kept job directory's marker. */
typedef struct smig_keep_mark {
	int64_t until;		/* unix s */
	int64_t end;		/* unix s of the job's end */
	char state[64];
} smig_keep_mark_t;

/*
 * smig_store_mark - write root/.keep.<job> (0644; temporary name, rename)
 * RET true, else false with error naming the path
 */
bool smig_store_mark(const char *root, uint32_t job,
		     const smig_keep_mark_t *mark, GError **error);

/*
 * smig_store_read_mark - read root/.keep.<job> (a regular file owned by
 * root, not a link)
 * RET true if there is a valid one
 */
bool smig_store_read_mark(const char *root, uint32_t job,
			  smig_keep_mark_t *mark);

/* smig_store_unmark - remove root/.keep.<job>; none is fine */
void smig_store_unmark(const char *root, uint32_t job);

/*
 * smig_store_remove_job - remove root/<job>: claimed by a rename to
 * .gone.<job>.<node>.<pid> (another node that got there first wins: the
 * directory is gone, true with *bytes 0), then removed from descriptors
 * without following links or leaving the file system; the marker too
 * OUT bytes - what was freed (files' sizes)
 * RET true if nothing of it is left, else false with error (the path, why)
 */
bool smig_store_remove_job(const char *root, uint32_t job, const char *node,
			   uint64_t *bytes, GError **error);

/*
 * smig_store_job_bytes - the size of root/<job>'s files, not following
 * links (files the caller cannot read are left out)
 * RET false if root/<job> is not a directory the caller can read
 */
bool smig_store_job_bytes(const char *root, uint32_t job, uint64_t *bytes);

/*
 * smig_store_end_guess - when a job Slurm no longer knows ended, as far as
 * the store can tell: its marker's end, else its directory's mtime
 * IN mark - the job's marker, NULL if it has none
 * RET seconds since the epoch, 0 if unknown
 */
int64_t smig_store_end_guess(const char *root, uint32_t job,
			     const smig_keep_mark_t *mark);

/* smig_format_time - t as local "YYYY-mm-ddTHH:MM:SS" (the number if not) */
void smig_format_time(int64_t t, char *buf, size_t len);

/*
 * smig_store_jobs - the job directories of a store root (names that are job
 * ids, directories, not links), ascending
 * RET new array of uint32_t, caller g_array_free()s; NULL if root cannot
 *     be read
 */
GArray *smig_store_jobs(const char *root);

/*
 * smig_store_sweep - a node's epilog (and smig images --reclaim): apply the
 * policy to every job of a store root with an expired marker (all jobs with
 * all_jobs), asking the balancer; removes claimed directories (.gone.*)
 * left over an hour ago by a remover that died. Never removes a job's
 * images unless the balancer said how it stands. Logs what it does.
 * IN  skip  - a job to leave alone (the one whose epilog runs), or 0
 * IN  max   - at most this many questions to the balancer
 * RET bytes freed
 */
uint64_t smig_store_sweep(const char *root, const char *node,
			  smig_fate_client_t *c, uint32_t skip,
			  bool all_jobs, unsigned max);

/*
 * smig_store_job_end - the epilog of a job on a node: ask the balancer how
 * the job stands and apply the policy to root/<job> (remove it, mark it
 * kept until T, or leave it); without an answer it stays, said in the log
 * RET true if the balancer answered
 */
bool smig_store_job_end(const char *root, const char *node,
			smig_fate_client_t *c, uint32_t job);

#endif /* SMIG_LIFECYCLE_H */
