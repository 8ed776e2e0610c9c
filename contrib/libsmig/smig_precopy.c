/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_precopy.c - libsmig's pre-copy thread (--migrate=...,precopy=on):
 * between a prepare and this rank's count, while the application runs on,
 * copy the registered regions into the generation's temporary image file in
 * rounds (smig_region.c); doc/design.md, "Pre-copy"
 *
 * The protocol allows it: the balancer chooses the target only once every
 * rank's count is in, and the count may come at any time within the
 * capture timeout. So a rank with regions answers a prepare only when its
 * rounds are done (or half of the capture timeout has passed), and only
 * then starts to pause (pending, pause_at), exactly as on_prepare() does
 * without pre-copy. The rounds run here, never in the transport's thread
 * and never in the application's; the safe point (smig_capture.c) finishes
 * the image from st->pc.
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smig_int.h"

/* At most this many rounds per capture. */
#define PRECOPY_MAX_ROUNDS	4
/* A round that wrote at most max(this, 1/32 of the regions) ends them. */
#define PRECOPY_SMALL		(4u * 1024 * 1024)

/*
 * run_one - the pre-copy of the generation in PHASE_PRECOPY, then the
 * count. Caller holds st->lock; it is dropped while copying.
 */
static void run_one(smig_lib_t *st)
{
	smig_region_t regs[SMIG_REGION_MAX];
	smig_image_hdr_t hdr = { 0 };
	smig_precopy_t *old = st->pc, *pc;
	smig_precopy_stats_t stats = { 0 };
	uint64_t gen = st->gen, deadline = st->precopy_deadline;
	uint64_t t0 = smig_precopy_now_ns(), copied = 0, pause_at = 0;
	size_t n = st->nregions;
	char err[ERRBUF_LEN] = "";
	int rc = 0;

	memcpy(regs, st->regions, n * sizeof(regs[0]));
	st->pc = NULL;
	st->precopy_busy = true;
	atomic_store(&st->precopy_cancel, 0);
	pthread_mutex_unlock(&st->lock);

	smig_precopy_free(old);
	hdr.job_id = st->job_id;
	hdr.step_id = st->step_id;
	hdr.rank = st->me.rank;
	hdr.nranks = st->nranks;
	hdr.generation = gen;
	strcpy(hdr.tag, st->tag);
	pc = smig_precopy_new(st->image_dir, &hdr, regs, n, 0, err,
			      sizeof(err));
	for (int r = 0; pc && r < PRECOPY_MAX_ROUNDS; r++) {
		smig_precopy_stats(pc, &stats);
		rc = smig_precopy_round(pc, st->precopy_rate,
					&st->precopy_cancel,
					deadline * 1000000, &copied, err,
					sizeof(err));
		if (rc || copied <= PRECOPY_SMALL || copied <= stats.total / 32)
			break;
	}
	if (pc && rc >= 0 && smig_precopy_sync(pc) < 0) {
		snprintf(err, sizeof(err), "fdatasync: %s", strerror(errno));
		rc = -EIO;
	}
	if (!pc || rc < 0) {
		smig_log("generation %" PRIu64 ": pre-copy failed: %s: the capture writes the regions at the safe point",
			 gen, err);
		smig_precopy_free(pc);
		pc = NULL;
	} else {
		smig_precopy_stats(pc, &stats);
		smig_debug("generation %" PRIu64 ": pre-copy: %u rounds, %" PRIu64 " of %" PRIu64 " bytes copied while running (last round %" PRIu64 ")%s in %" PRIu64 " ms",
			   gen, stats.rounds, stats.copied, stats.total,
			   stats.last_round,
			   rc == 2 ? ", stopped at half the capture timeout" :
			   rc == 1 ? ", cancelled" : "",
			   (smig_precopy_now_ns() - t0) / 1000000);
	}

	pthread_mutex_lock(&st->lock);
	st->precopy_busy = false;
	pthread_cond_broadcast(&st->precopy_cond);
	/* Not after smig_finalize() began: the transport is gone. */
	if (st->phase == PHASE_PRECOPY && st->gen == gen &&
	    !st->precopy_quit) {
		/* A region changed meanwhile: the safe point writes all. */
		if (!atomic_load(&st->precopy_cancel)) {
			st->pc = pc;
			pc = NULL;
		}
		/* From here as on_prepare(): pending before reading k. */
		st->phase = PHASE_PREPARED;
		atomic_store(&st->pending, 1);
		st->pause_at = atomic_load(&st->count) + 1;
		pause_at = st->pause_at;
	}
	pthread_mutex_unlock(&st->lock);
	smig_precopy_free(pc);
	if (pause_at)
		smig_lib_notify_agent(st, "count", gen, pause_at, 0, 0, NULL);
	pthread_mutex_lock(&st->lock);
}

static void *precopy_main(void *arg)
{
	smig_lib_t *st = arg;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		while (!st->precopy_quit && st->phase != PHASE_PRECOPY)
			pthread_cond_wait(&st->precopy_cond, &st->lock);
		if (st->precopy_quit)
			break;
		run_one(st);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* smig_lib_precopy_start - see smig_int.h */
int smig_lib_precopy_start(smig_lib_t *st)
{
	pthread_condattr_t ca;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->precopy_cond, &ca);
	pthread_condattr_destroy(&ca);
	st->precopy_quit = false;
	st->precopy_busy = false;
	atomic_store(&st->precopy_cancel, 0);
	rc = pthread_create(&st->precopy_thread, NULL, precopy_main, st);
	if (rc) {
		smig_log("precopy=on: cannot start the pre-copy thread: %s: captures write at the safe point only",
			 strerror(rc));
		pthread_cond_destroy(&st->precopy_cond);
		return SMIG_ERR_IO;
	}
	st->precopy_started = true;
	return SMIG_OK;
}

/* smig_lib_precopy_stop - see smig_int.h */
void smig_lib_precopy_stop(smig_lib_t *st)
{
	smig_precopy_t *pc;

	if (!st->precopy_started)
		return;
	pthread_mutex_lock(&st->lock);
	st->precopy_quit = true;
	atomic_store(&st->precopy_cancel, 1);
	pthread_cond_broadcast(&st->precopy_cond);
	pthread_mutex_unlock(&st->lock);
	pthread_join(st->precopy_thread, NULL);
	pthread_mutex_lock(&st->lock);
	pc = st->pc;
	st->pc = NULL;
	pthread_mutex_unlock(&st->lock);
	smig_precopy_free(pc);
	pthread_cond_destroy(&st->precopy_cond);
	st->precopy_started = false;
}

/* smig_lib_precopy_wake - see smig_int.h */
void smig_lib_precopy_wake(smig_lib_t *st)
{
	pthread_cond_broadcast(&st->precopy_cond);
}

/* smig_lib_precopy_quiesce - see smig_int.h */
void smig_lib_precopy_quiesce(smig_lib_t *st)
{
	smig_precopy_t *pc;

	if (st->precopy_started && st->precopy_busy) {
		atomic_store(&st->precopy_cancel, 1);
		while (st->precopy_busy)
			pthread_cond_wait(&st->precopy_cond, &st->lock);
	}
	/* A finished one would only be checked and dropped at the capture. */
	pc = st->pc;
	st->pc = NULL;
	smig_precopy_free(pc);
}
