/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent_signal.h - the node agent's capture=signal:SIG host (agent_signal.c)
 */
#ifndef SMIG_AGENT_SIGNAL_H
#define SMIG_AGENT_SIGNAL_H

#include <stdint.h>
#include <slurm/spank.h>

#include "smig_agent.h"
#include "smig_agent_store.h"

/*
 * agent_signal_start - a capture=signal step's agent starts (before the
 * agent thread): engine and store are borrowed until agent_signal_stop();
 * a step that restores a generation has its tasks' reads watched
 */
void agent_signal_start(spank_t sp, smig_agent_t *engine,
			const smig_agent_store_t *store);

/* agent_signal_timeout - the agent loop's wait in ms, given the engine's */
int agent_signal_timeout(int left);

/* agent_signal_poll - the agent loop's turn: checkpoint files, reads */
void agent_signal_poll(void);

/* agent_signal_notify - the engine's op for a capture=signal step */
void agent_signal_notify(smig_agent_op_t op, uint64_t gen, uint64_t arg);

/* agent_signal_stop - the end of the step's agent (agent thread joined) */
void agent_signal_stop(void);

#endif /* SMIG_AGENT_SIGNAL_H */
