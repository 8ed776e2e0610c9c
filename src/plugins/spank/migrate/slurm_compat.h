/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * slurm_compat.h - the SPANK plugin's calls into libslurm, one spelling for
 * Slurm 22.05 through 26.05
 *
 * The only place of the plugin where Slurm releases differ; configure
 * decides which spelling the installed headers want (SMIG_SLURM_*):
 *   22.05 - 24.05: slurm_kill_job_step(job, step, signal)
 *   24.11 - 25.11: slurm_kill_job_step(job, step, signal, flags)
 *   26.05:         slurm_kill_job_step(&step_id, signal, flags) and
 *                  slurm_get_job_steps(&step_id, &resp, show_flags)
 * slurm_get_errno() is gone after 22.05: Slurm's calls set errno, in every
 * release, so callers read errno. And srun's words for a relaunch:
 * SMIG_SLURM_ARBITRARY_NODES below.
 *
 * The plugin never links -lslurm: these symbols are srun's (libslurmfull).
 */
#ifndef SMIG_SLURM_COMPAT_H
#define SMIG_SLURM_COMPAT_H

#include <signal.h>
#include <stdint.h>
#include <slurm/slurm.h>

/*
 * srun takes --nodes with --distribution=arbitrary: up to 24.05 (measured on
 * 22.05, where the relaunch needs it to override the user's -N); 24.11
 * refuses the pair ("--nodes is incompatible with --distribution=arbitrary")
 * and counts the nodes of the hostfile.
 */
#define SMIG_SLURM_ARBITRARY_NODES \
	(SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(24, 11, 0))

#if SMIG_SLURM_STEP_ID_API
static inline slurm_step_id_t smig_slurm_step_id(uint32_t job_id,
						 uint32_t step_id)
{
	slurm_step_id_t id = SLURM_STEP_ID_INITIALIZER;

	id.job_id = job_id;
	id.step_id = step_id;
	return id;
}
#endif

/*
 * smig_slurm_kill_step - SIGKILL to every task of step job_id.step_id,
 * through slurmctld
 * RET 0, or -1 with errno set (a Slurm error code)
 */
static inline int smig_slurm_kill_step(uint32_t job_id, uint32_t step_id)
{
#if SMIG_SLURM_STEP_ID_API
	slurm_step_id_t id = smig_slurm_step_id(job_id, step_id);

	return slurm_kill_job_step(&id, SIGKILL, 0);
#elif SMIG_SLURM_KILL_FLAGS
	return slurm_kill_job_step(job_id, step_id, SIGKILL, 0);
#else
	return slurm_kill_job_step(job_id, step_id, SIGKILL);
#endif
}

/*
 * smig_slurm_get_step - slurmctld's record of step job_id.step_id
 * OUT resp - the answer; caller frees it with
 *            slurm_free_job_step_info_response_msg()
 * RET 0, or -1 with errno set (a Slurm error code)
 */
static inline int smig_slurm_get_step(uint32_t job_id, uint32_t step_id,
				      job_step_info_response_msg_t **resp)
{
#if SMIG_SLURM_STEP_ID_API
	slurm_step_id_t id = smig_slurm_step_id(job_id, step_id);

	return slurm_get_job_steps(&id, resp, SHOW_ALL);
#else
	return slurm_get_job_steps(0, job_id, step_id, resp, SHOW_ALL);
#endif
}

#endif /* SMIG_SLURM_COMPAT_H */
