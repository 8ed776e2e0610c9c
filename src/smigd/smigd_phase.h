/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_phase.h - how a job stands for its images, from Slurm's job_state
 * (<slurm/slurm.h>'s macros only; no libslurm call: unit-tested)
 */
#ifndef SMIGD_PHASE_H
#define SMIGD_PHASE_H

#include <stddef.h>
#include <stdint.h>

#include "smig_lifecycle.h"

/*
 * smigd_job_phase - a job_state of slurmctld's job table as a phase:
 * a requeue flag (REQUEUE, REQUEUE_HOLD, SPECIAL_EXIT, REQUEUE_FED) or
 * RESIZING, or the base states PENDING, RUNNING, SUSPENDED: ACTIVE (the
 * job runs or will run again); COMPLETE: COMPLETED; any other end
 * (CANCELLED, FAILED, TIMEOUT, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE,
 * OOM): ENDED
 */
smig_job_phase_t smigd_job_phase(uint32_t job_state);

/*
 * smigd_job_state_name - Slurm's name of the base state ("COMPLETED",
 * "FAILED", "OUT_OF_MEMORY", ...), with "+REQUEUE" when a requeue flag is
 * set
 * OUT buf - at least 48 bytes
 */
void smigd_job_state_name(uint32_t job_state, char *buf, size_t len);

#endif /* SMIGD_PHASE_H */
