/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_phase.c - how a job stands for its images (smigd_phase.h)
 */
#include "smig_config.h"

#include <stdio.h>
#include <slurm/slurm.h>

#include "smigd_phase.h"

/*
 * While a requeued job completes, slurmctld shows it PENDING | COMPLETING
 * (22.05's _job_requeue_op()) or with JOB_REQUEUE and a base state of its
 * end; either way it will run again.
 */
#define REQUEUE_FLAGS (JOB_REQUEUE | JOB_REQUEUE_HOLD | JOB_SPECIAL_EXIT | \
		       JOB_REQUEUE_FED | JOB_RESIZING)

/* smigd_job_phase - see smigd_phase.h */
smig_job_phase_t smigd_job_phase(uint32_t job_state)
{
	if (job_state & REQUEUE_FLAGS)
		return SMIG_JOB_ACTIVE;
	switch (job_state & JOB_STATE_BASE) {
	case JOB_PENDING:
	case JOB_RUNNING:
	case JOB_SUSPENDED:
		return SMIG_JOB_ACTIVE;
	case JOB_COMPLETE:
		return SMIG_JOB_COMPLETED;
	default:
		return SMIG_JOB_ENDED;
	}
}

/* smigd_job_state_name - see smigd_phase.h */
void smigd_job_state_name(uint32_t job_state, char *buf, size_t len)
{
	static const char *const names[] = {
		[JOB_PENDING] = "PENDING",
		[JOB_RUNNING] = "RUNNING",
		[JOB_SUSPENDED] = "SUSPENDED",
		[JOB_COMPLETE] = "COMPLETED",
		[JOB_CANCELLED] = "CANCELLED",
		[JOB_FAILED] = "FAILED",
		[JOB_TIMEOUT] = "TIMEOUT",
		[JOB_NODE_FAIL] = "NODE_FAIL",
		[JOB_PREEMPTED] = "PREEMPTED",
		[JOB_BOOT_FAIL] = "BOOT_FAIL",
		[JOB_DEADLINE] = "DEADLINE",
		[JOB_OOM] = "OUT_OF_MEMORY",
	};
	uint32_t base = job_state & JOB_STATE_BASE;
	const char *name = base < sizeof(names) / sizeof(names[0]) &&
			   names[base] ? names[base] : "UNKNOWN";

	snprintf(buf, len, "%s%s", name,
		 job_state & REQUEUE_FLAGS ? "+REQUEUE" : "");
}
