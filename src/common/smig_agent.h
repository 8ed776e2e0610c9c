/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_agent.h - the node agent's protocol engine (no Slurm, no PMIx)
 *
 * One engine per step and node. It registers with the balancer
 * (HELLO_AGENT), registers again after a loss with a backoff, turns the
 * balancer's PREPARE, CAPTURE, COMMIT and ABORT into calls of the host's
 * notify(), turns the ranks' answers (smig_agent_count(), _done(),
 * _restored()) into COUNT, DONE and RESTORED, sends SAMPLEs and answers
 * HANDOFF requests through the host's handoff(). See doc/design.md for the
 * messages. The host (the SPANK plugin in slurmstepd, or a unit test) owns
 * the thread, the wait on the socket, the ranks and the image directory.
 *
 * Every function runs in the one thread of the host that drives the engine;
 * the host's ops are called from these functions, in that thread.
 */
#ifndef SMIG_AGENT_H
#define SMIG_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_wire.h"

/* Reconnecting to the balancer (doc/design.md "Restart of the balancer") */
#define SMIG_AGENT_RECONNECT_FIRST_MS	250	/* first retry after a loss */
#define SMIG_AGENT_RECONNECT_CAP_MS	5000	/* backoff doubles up to this */
#define SMIG_AGENT_RECONNECT_FOR_MS	(600 * 1000) /* then give up */
#define SMIG_AGENT_CONNECT_TIMEOUT_MS	5000	/* one try */
#define SMIG_AGENT_RECV_TIMEOUT_MS	10000	/* rest of a frame */

typedef struct smig_agent smig_agent_t;

/* What the balancer asks of this node's ranks. */
typedef enum {
	SMIG_AGENT_PREPARE,	/* arg: timeout_ms */
	SMIG_AGENT_CAPTURE,	/* arg: target */
	SMIG_AGENT_COMMIT,	/* arg: stop (0 or 1) */
	SMIG_AGENT_ABORT,	/* arg: 0 */
} smig_agent_op_t;

/*
 * smig_agent_prepared - what the last PREPARE said, for the prepare the
 * host sends its ranks (smig_capture_info(3))
 * OUT stop - true: the ranks stop if the capture succeeds (a move)
 * RET its reason ("drain", "balance", "periodic", "request", "requeue"),
 *     NULL from a balancer that sent none; valid until the next PREPARE
 */
const char *smig_agent_prepared(const smig_agent_t *a, bool *stop);

/* smig_agent_op_name - "prepare", "capture", "commit", "abort" (static) */
const char *smig_agent_op_name(smig_agent_op_t op);

/*
 * What the engine needs from its host. host is the pointer given to
 * smig_agent_new(). Only notify is required.
 */
typedef struct smig_agent_ops {
	/*
	 * notify - tell this node's ranks op of generation gen (PMIx event,
	 * or signals). The ranks' answers come back through smig_agent_count()
	 * and smig_agent_done(), which may be called from inside notify.
	 * ABORT also comes when the connection that ran a capture is lost.
	 */
	void (*notify)(void *host, smig_agent_op_t op, uint64_t gen,
		       uint64_t arg);
	/* now - monotonic clock in microseconds; NULL: g_get_monotonic_time() */
	int64_t (*now)(void *host);
	/*
	 * sample - the body of one SAMPLE (a{sv}, floating reference, the
	 * engine sinks it); NULL when there is nothing to send. NULL: no
	 * SAMPLEs.
	 */
	GVariant *(*sample)(void *host);
	/*
	 * image_verify - the host's own check of rank's image of gen (the
	 * path is the host's, never the rank's)
	 * OUT bytes - payload length, on success
	 * RET 0, or a negative code with a message in errbuf
	 * NULL: every image is taken as it is reported
	 */
	int (*image_verify)(void *host, uint32_t rank, uint64_t gen,
			    uint64_t *bytes, char *errbuf, size_t errlen);
	/* image_commit - gen is good: record it, prune (host logs failures) */
	void (*image_commit)(void *host, uint64_t gen);
	/*
	 * handoff - send rank's image of gen to the agent of node to at
	 * addr:port (MigrateImageStore=local) and wait for its answer
	 * RET 0, or a negative code with a message in errbuf
	 * NULL: HANDOFF requests are refused with -ENOTSUP
	 */
	int (*handoff)(void *host, uint32_t rank, uint64_t gen, const char *to,
		       const char *addr, uint16_t port, char *errbuf,
		       size_t errlen);
	/*
	 * from_balancer - msg comes from the balancer's side (root or
	 * SlurmUser); false (logged by the host) drops it. NULL: uid 0 only.
	 */
	bool (*from_balancer)(void *host, const smig_msg_t *msg);
	/*
	 * partner_copy - gen is good and the ranks go on (COMMIT stop=false
	 * naming a partner, MigratePartnerCopies=yes): copy this node's ranks'
	 * images of gen to the agent of node at addr:port, in the background
	 * (the host returns at once and logs the outcome). Called after
	 * image_commit. NULL: partner copies are not made.
	 */
	void (*partner_copy)(void *host, uint64_t gen, const char *node,
			     const char *addr, uint16_t port);
} smig_agent_ops_t;

/* The step and node an engine speaks for; copied by smig_agent_new(). */
typedef struct smig_agent_cfg {
	uint32_t job_id;
	uint32_t step_id;
	const char *node;		/* Slurm's name of this node */
	const uint32_t *ranks;		/* global ranks of this node's tasks */
	uint32_t nranks;
	const char *balancer_addr;	/* MigrateBalancerAddr */
	uint16_t port;			/* MigratePort */
	uint16_t handoff_port;		/* hand-off receiver; 0: none */
	uint32_t sample_interval_ms;	/* 0: no SAMPLEs */
	smig_auth_t *auth;		/* borrowed; outlives the engine */
} smig_agent_cfg_t;

/*
 * smig_agent_new - an engine that is not connected yet; the first
 * smig_agent_tick() connects
 * IN cfg  - copied
 * IN ops  - copied; notify must be set
 * IN host - passed to every op (borrowed)
 * RET new engine, free with smig_agent_free()
 */
smig_agent_t *smig_agent_new(const smig_agent_cfg_t *cfg,
			     const smig_agent_ops_t *ops, void *host);

/*
 * smig_agent_free - close the connection without BYE and free
 * (NULL: no-op); see smig_agent_bye() for an orderly end
 */
void smig_agent_free(smig_agent_t *agent);

/*
 * smig_agent_tick - run what is due: connect or reconnect (HELLO_AGENT,
 * then RESTORED for the ranks restored so far), a SAMPLE
 * RET milliseconds until something is due again (the host waits on
 * smig_agent_fd() at most that long), -1 when nothing ever is
 */
int smig_agent_tick(smig_agent_t *agent);

/* smig_agent_fd - the socket to the balancer, -1 while not connected */
int smig_agent_fd(const smig_agent_t *agent);

/*
 * smig_agent_read - smig_agent_fd() is readable: read one message and act
 * on it; a closed or broken connection is dropped (and retried)
 */
void smig_agent_read(smig_agent_t *agent);

/*
 * smig_agent_count - rank paused its counter at pause_at for gen: COUNT
 * (dropped, with a debug line, unless gen is the capture in progress)
 */
void smig_agent_count(smig_agent_t *agent, uint32_t rank, uint64_t gen,
		      uint64_t pause_at);

/*
 * smig_agent_done - rank finished its capture of gen: DONE. A status of 0
 * is checked first with the host's image_verify(), whose error replaces it.
 * IN msg - the rank's error text, "" or NULL if none (borrowed)
 */
void smig_agent_done(smig_agent_t *agent, uint32_t rank, uint64_t gen,
		     int32_t status, uint64_t bytes, const char *msg);

/*
 * smig_agent_restored - rank is past its restore of gen (0: a fresh
 * start): RESTORED with every rank of this node restored so far, once per
 * rank; sent again after each reconnect
 */
void smig_agent_restored(smig_agent_t *agent, uint32_t rank, uint64_t gen);

/* smig_agent_capture_gen - the capture in progress, 0 if none */
uint64_t smig_agent_capture_gen(const smig_agent_t *agent);

/* smig_agent_good_gen - the newest generation COMMITted on this node */
uint64_t smig_agent_good_gen(const smig_agent_t *agent);

/*
 * smig_agent_bye - the step ends: BYE (status 0) if connected, then close;
 * no more reconnects
 */
void smig_agent_bye(smig_agent_t *agent);

/*
 * smig_agent_report - the step cannot be protected on this node: connect
 * once, HELLO_AGENT with "error" = why, and wait for the balancer's answer
 * (it was read: closing then loses nothing)
 * IN why   - what went wrong (borrowed)
 * OUT error - set on failure; caller frees it with g_error_free()
 * RET true if the balancer answered
 */
bool smig_agent_report(smig_agent_t *agent, const char *why, GError **error);

#endif /* SMIG_AGENT_H */
