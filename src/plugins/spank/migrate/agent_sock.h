/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent_sock.h - the node agent's socket for ranks without PMIx
 * (agent_sock.c)
 */
#ifndef SMIG_AGENT_SOCK_H
#define SMIG_AGENT_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "smig_agent.h"

/* A rank's answer, on its way to the agent thread (PMIx or socket). */
typedef struct rank_event {
	bool done;		/* false: count (or restored) */
	bool restored;		/* past its restore (relaunch watchdog) */
	uint64_t gen;
	uint32_t rank;
	uint64_t pause_at;	/* count */
	int32_t status;		/* done */
	uint64_t bytes;		/* done */
	char *msg;		/* done, g_free() */
} rank_event_t;

/* rank_event_free - free an event and its message */
void rank_event_free(void *ev);

/* agent_sock_deliver_fn - hand a parsed answer (owned) to the agent thread */
typedef void (*agent_sock_deliver_fn)(rank_event_t *ev);

/*
 * agent_sock_start - listen on <dir>/agent.<step>.<node>.sock (mode 0600,
 * owned by uid:gid, in the job's directory of mode 0700) and start the
 * thread that reads the ranks' lines (slurm_spank_user_init)
 * IN dir     - the job's image directory on this node (borrowed)
 * IN ranks   - the global ranks of this node (borrowed until _stop())
 * IN deliver - called from the socket's thread for each answer
 * RET false (logged) on failure
 */
bool agent_sock_start(const char *dir, const char *node, uint32_t job_id,
		      uint32_t step_id, uid_t uid, gid_t gid,
		      const uint32_t *ranks, uint32_t nranks,
		      agent_sock_deliver_fn deliver);

/* agent_sock_path - the socket's path for the tasks, NULL if none */
const char *agent_sock_path(void);

/*
 * agent_sock_notify - the engine's op to every rank of this node that said
 * hello (agent thread); arg as for PMIx: timeout_ms, target or stop
 * IN reason, stop - a prepare's reason (NULL: none) and whether the ranks
 *                   will stop (-1: not said), for smig_capture_info()
 */
void agent_sock_notify(smig_agent_op_t op, uint64_t gen, uint64_t arg,
		       const char *reason, int stop);

/* agent_sock_stop - join the thread, close and remove the socket (exit) */
void agent_sock_stop(void);

#endif /* SMIG_AGENT_SOCK_H */
