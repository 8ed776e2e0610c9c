/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_agent_store.h - the node agent's image store: its own check of the
 * ranks' images, the manifest of good generations, hand-off of images
 * between nodes (MigrateImageStore=local) and, for capture=signal, the
 * application's checkpoint file wrapped into and out of an image
 *
 * Slurm-free; the SPANK plugin wires these functions into the engine's ops
 * (smig_agent.h). Every function checks first that the job directory is the
 * one made at the step's start (smig_dir_check()).
 */
#ifndef SMIG_AGENT_STORE_H
#define SMIG_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smig_auth.h"
#include "smig_image.h"

/* The store of one step on one node; caller-owned, every pointer borrowed. */
typedef struct smig_agent_store {
	const char *dir;		/* MigrateImageDir/<jobid> */
	const smig_dir_id_t *dir_id;	/* dir as made at the step's start */
	uint32_t job_id;
	uint32_t step_id;
	const char *node;		/* Slurm's name of this node */
	const uint32_t *ranks;		/* global ranks of this node's tasks */
	uint32_t nranks;
	uint32_t ntasks;		/* ranks of the step */
	uint32_t retain;		/* MigrateRetain */
	uint32_t timeout_ms;		/* one hand-off (MigrateCaptureTimeout) */
	smig_auth_t *auth;		/* hand-off connections */
} smig_agent_store_t;

/*
 * smig_agent_store_verify - the agent's own check of rank's image of gen:
 * the path is computed here, never taken from the rank
 * OUT bytes - payload length, on success
 * RET 0, or a negative code with a message in errbuf
 */
int smig_agent_store_verify(const smig_agent_store_t *st, uint32_t rank,
			    uint64_t gen, uint64_t *bytes, char *errbuf,
			    size_t errlen);

/*
 * smig_agent_store_commit - gen is good: record it in the manifest (where a
 * restart finds it) and delete this node's ranks' images older than the
 * retain newest good generations (and the partner copies older than them
 * that this node holds). Failures are logged: the images
 * themselves are safe.
 */
void smig_agent_store_commit(const smig_agent_store_t *st, uint64_t gen);

/*
 * smig_agent_store_send - hand rank's image of gen to the agent of node to
 * at addr:port: HANDOFF with the size, the file's bytes, then that agent's
 * HANDOFF reply (written, checked, fsync'ed). Bounded by st->timeout_ms.
 * RET 0, or a negative code with a message in errbuf
 */
int smig_agent_store_send(const smig_agent_store_t *st, uint32_t rank,
			  uint64_t gen, const char *to, const char *addr,
			  uint16_t port, char *errbuf, size_t errlen);

/*
 * smig_agent_store_partner_copy - MigratePartnerCopies=yes: send each of
 * this node's ranks' images of gen to the agent of node to at addr:port as
 * a partner copy (HANDOFF with partner true, stored in the partner's
 * "<jobdir>/partner/"). Blocking, one image after the other, each bounded by
 * st->timeout_ms: run it off the agent thread. Each failure is logged.
 * RET the number of images not copied (0: all)
 */
int smig_agent_store_partner_copy(const smig_agent_store_t *st,
				  uint64_t gen, const char *to,
				  const char *addr, uint16_t port);

/*
 * smig_agent_store_receive - one connection to this node's hand-off
 * receiver: a HANDOFF of this job from root or the job's user, then the
 * image's bytes, stored and checked (in "<jobdir>/partner/" when the
 * HANDOFF says partner); the outcome goes back on fd (which
 * the caller closes). Everything is logged.
 */
void smig_agent_store_receive(const smig_agent_store_t *st, int fd);

/*
 * smig_agent_store_partner_restore - at the start of a step that restores
 * (SLURM_MIGRATE_RESTORE_GEN set): for each of this node's ranks and each
 * generation this node's manifest names, when the job directory lacks the
 * rank's image but "<jobdir>/partner/" holds a copy of it (the rank ran on
 * the node this one is partner of), the copy gets the image's name (a hard
 * link: atomic, no bytes copied). The restore checks it as any image (a bad
 * one falls back). Each one used is logged.
 * RET the number of partner copies put in place
 */
int smig_agent_store_partner_restore(const smig_agent_store_t *st);

/*
 * smig_agent_store_ckpt_path - capture=signal: "<dir>/rank<R>.ckpt", the
 * file the application writes when signalled (SLURM_MIGRATE_CHECKPOINT_FILE)
 * RET 0, or -ENAMETOOLONG
 */
int smig_agent_store_ckpt_path(const smig_agent_store_t *st, char *buf,
			       size_t len, uint32_t rank);

/*
 * smig_agent_store_wrap - capture=signal: the rank's checkpoint file ckpt
 * is complete (renamed into place): wrap its bytes into the image of gen
 * (owned by the job's user, 0600), as libsmig would have written it
 * RET 0, or a negative code with a message in errbuf
 */
int smig_agent_store_wrap(const smig_agent_store_t *st, uint32_t rank,
			  uint64_t gen, const char *ckpt, char *errbuf,
			  size_t errlen);

/*
 * smig_agent_store_restore_gen - the generation SLURM_MIGRATE_RESTORE_GEN
 * names: none (NULL, "" or "none": 0), a number, or "last" (the newest
 * good generation in the manifest)
 * OUT gen - 0 or the generation
 * RET 0, or a negative code with a message in errbuf
 */
int smig_agent_store_restore_gen(const smig_agent_store_t *st,
				 const char *val, uint64_t *gen, char *errbuf,
				 size_t errlen);

/*
 * smig_agent_store_unwrap - capture=signal: write the payload of rank's
 * image of gen into ckpt (temporary name, owner uid/gid, 0600, fsync,
 * rename), before the task starts
 * RET 0, or a negative code with a message in errbuf
 */
int smig_agent_store_unwrap(const smig_agent_store_t *st, uint32_t rank,
			    uint64_t gen, const char *ckpt, uint32_t uid,
			    uint32_t gid, char *errbuf, size_t errlen);

#endif /* SMIG_AGENT_STORE_H */
