/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_int.h - internals shared by the files of libsmig (never installed)
 *
 *   smig.c          the API: smig_init(), smig_register(), smig_safepoint(),
 *                   smig_finalize(); the one instance of smig_lib_t; logging
 *   smig_event.c    the node agent's events and our replies, whatever the
 *                   transport; the PMIx transport (Open MPI)
 *   smig_chan.c     the other transport: the agent's socket on the node,
 *                   and the restore agreement over PMI-1 (MPICH, srun
 *                   --mpi=pmi2: no PMIx in the rank)
 *   smig_capture.c  the slow path of a safe point: pause, capture, write
 *                   the image, wait for the decision; smig_write()
 *   smig_restore.c  restore: verify images, agree on a generation with the
 *                   other ranks, run the restore callback; smig_read()
 *
 * The process's state is a static in smig.c; the other files work on the
 * smig_lib_t * their caller passes. Symbols here are hidden (the library
 * is built with -fvisibility=hidden): only SMIG_EXPORT functions of
 * smig.h are exported. smig_log() here is libsmig's own, not the one of
 * src/common/smig_log.h (libsmig_core), which libsmig never links.
 */
#ifndef SMIG_INT_H
#define SMIG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pmix.h>

#include "smig.h"
#include "smig_image.h"
#include "smig_region.h"

#define SMIG_EXPORT __attribute__((visibility("default")))

#define ERRBUF_LEN		512

/* Where this rank is in the capture of the current generation. */
typedef enum {
	PHASE_IDLE,		/* nothing pending */
	PHASE_PRECOPY,		/* prepared, the pre-copy thread copies the
				 * regions; count not sent yet */
	PHASE_PREPARED,		/* pause at pause_at until the target comes */
	PHASE_CAPTURE,		/* capture at safe point target */
	PHASE_DONE,		/* done sent: wait for commit or abort */
} phase_t;

typedef enum {
	DECISION_NONE,
	DECISION_COMMIT,
	DECISION_COMMIT_STOP,
} decision_t;

/* One instance per process (smig.c). Fields marked (main) are used only by
 * the thread that calls the API; (lock) fields are shared with the handler. */
typedef struct {
	bool initialized;		/* (main) smig_init() ran */
	bool active;			/* (main) SLURM_MIGRATE, or stopped */
	bool stopped;			/* (main) SMIG_STOP was returned */
	bool registered;		/* (main) smig_register() ran */
	bool restore_later;		/* (main) SMIG_RESTORE_LATER, smig_restore() not yet */
	int init_error;			/* (main) what a failed smig_init() returned */
	pmix_proc_t me;			/* set in init, then read-only */
	uint32_t nranks;
	char *image_dir;		/* (main) */
	smig_dir_id_t dir_id;		/* (main) image_dir at smig_init() */
	uint32_t job_id;
	uint32_t step_id;
	size_t evhdlr;			/* PMIx registration id */
	bool chan;			/* set in init: the agent's socket,
					 * not PMIx (smig_chan.c) */
	int chan_fd;			/* the socket (chan) */
	pthread_t chan_thread;		/* its reader (chan) */
	pthread_mutex_t chan_wlock;	/* one reply at a time (chan) */

	char tag[SMIG_IMAGE_TAG_LEN + 1];	/* (main) */
	smig_capture_fn capture;		/* (main) */
	smig_restore_fn restore;		/* (main) */
	smig_restore_reader_fn restore_rd;	/* (main) instead of restore */
	void *arg;				/* (main) */

	uint64_t good[SMIG_STORE_MAX_GOOD];	/* (main) good generations */
	size_t ngood;			/* (main) 0: no manifest */

	_Atomic uint64_t count;		/* k: safe points so far */
	_Atomic int pending;		/* nonzero: take the slow path */
	_Atomic uint64_t last_good;	/* smig_generation() */

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC */
	phase_t phase;			/* (lock) */
	uint64_t gen;			/* (lock) generation in the phase */
	uint64_t pause_at;		/* (lock) */
	uint64_t target;		/* (lock) */
	uint32_t timeout_ms;		/* (lock) */
	decision_t decision;		/* (lock) */
	bool capture_ok;		/* (lock) our done was status 0 */
	bool aborted;			/* (lock) abort with the target known:
					 * the callback still runs at it */
	int32_t reason;			/* (lock) SMIG_REASON_* of the prepare */
	bool will_stop;			/* (lock) the prepare's smig.stop */

	/* Memory regions (smig_region.c) and their pre-copy. */
	smig_region_t regions[SMIG_REGION_MAX];	/* (lock) registered */
	size_t nregions;		/* (lock) */
	bool precopy_on;		/* set in init: precopy=on */
	uint64_t precopy_rate;		/* set in init: bytes/s, 0: no limit */
	bool precopy_started;		/* (main) the thread runs */
	pthread_t precopy_thread;
	pthread_cond_t precopy_cond;	/* CLOCK_MONOTONIC; wakes the thread
					 * and those waiting for it */
	bool precopy_quit;		/* (lock) smig_finalize() */
	bool precopy_busy;		/* (lock) the thread copies */
	uint64_t precopy_deadline;	/* (lock) ms, CLOCK_MONOTONIC */
	atomic_int precopy_cancel;	/* abort, region change, finalize */
	smig_precopy_t *pc;		/* (lock) the rounds done for a
					 * generation, for its capture */
} smig_lib_t;

/* ---------------------------------------------------------------- smig.c */

/* smig_log - one line to stderr, "smig: rank R: ...", written at once */
__attribute__((format(printf, 1, 2)))
void smig_log(const char *fmt, ...);

/* smig_log_debugging - SLURM_MIGRATE_DEBUG was set (smig_init()) */
bool smig_log_debugging(void);

#define smig_debug(...) \
	do { if (smig_log_debugging()) smig_log(__VA_ARGS__); } while (0)

/* ---------------------------------------------------------- smig_event.c */

/* What one checkpoint event of the node agent carries, on any transport. */
typedef struct {
	const char *op;		/* borrowed from the transport's message */
	const char *reason;	/* prepare: smig.reason, borrowed; NULL:
				 * none (smig_capture_info()) */
	uint64_t gen;
	uint64_t target;
	uint32_t timeout_ms;
	bool stop;
	bool has_gen, has_target, has_stop, has_timeout;
} smig_lib_event_t;

/*
 * smig_lib_event_apply - one checkpoint event from the node agent, parsed
 * by its transport: checks it and records it in st (takes st->lock). Runs
 * in the transport's thread: never blocks, never waits for the app.
 * RET the pause_at to answer with a count (the caller sends it with
 *     smig_lib_notify_agent()), 0 for none
 */
uint64_t smig_lib_event_apply(smig_lib_t *st, const smig_lib_event_t *ev);

/*
 * smig_lib_attach - the transport to the node agent (smig_init()): PMIx, or
 * with SLURM_MIGRATE_AGENT_SOCKET the agent's socket (smig_chan.c). Sets
 * st->me (rank), st->nranks, st->chan; the event handler or reader is
 * started by smig_lib_listen().
 * RET SMIG_OK or SMIG_ERR_PMIX (logged)
 */
int smig_lib_attach(smig_lib_t *st);

/* smig_lib_listen - receive the agent's events from now on; RET as above */
int smig_lib_listen(smig_lib_t *st);

/* smig_lib_detach - stop receiving, drop the transport; RET as above */
int smig_lib_detach(smig_lib_t *st, bool listening);

/*
 * smig_lib_notify_agent - send one reply (count, done or restored) to the
 * node agent
 * IN op       - "count", "done", or "restored": past smig_register(),
 *               gen the generation this rank restored, 0 for a fresh
 *               start (the balancer's relaunch watchdog waits for it, and
 *               captures no step before every rank sent it)
 * IN pause_at - count only
 * IN status, bytes, msg - done only (msg borrowed, may be NULL)
 * Never called with st->lock held.
 */
void smig_lib_notify_agent(smig_lib_t *st, const char *op, uint64_t gen,
			   uint64_t pause_at, int32_t status, uint64_t bytes,
			   const char *msg);

/* smig_lib_set_idle - back to no pending capture. Caller holds st->lock. */
void smig_lib_set_idle(smig_lib_t *st);

/* ----------------------------------------------------------- smig_chan.c */

/*
 * smig_chan_open - connect to the node agent's socket (path in
 * SLURM_MIGRATE_AGENT_SOCKET), say which rank this is; rank and size from
 * PMI_RANK/PMI_SIZE (srun --mpi=pmi2) or SLURM_PROCID/SLURM_STEP_NUM_TASKS
 * RET SMIG_OK or SMIG_ERR_PMIX (logged)
 */
int smig_chan_open(smig_lib_t *st);

/* smig_chan_listen - start the reader thread; RET as above */
int smig_chan_listen(smig_lib_t *st);

/* smig_chan_close - stop the reader, close the socket */
void smig_chan_close(smig_lib_t *st, bool listening);

/* smig_chan_send - one line (with its newline) to the agent; RET 0, -errno */
int smig_chan_send(smig_lib_t *st, const char *line, size_t len);

/*
 * smig_chan_agree - the restore agreement without PMIx: every rank's
 * (gen, mask) through the PMI-1 key-value space of slurmstepd's mpi/pmi2
 * (PMI_FD: put, barrier, get); arguments as agree() of smig_restore.c
 * RET true, or false with a message logged
 */
bool smig_chan_agree(smig_lib_t *st, const char *key, uint64_t gen,
		     uint64_t mine, uint64_t *all);

/* -------------------------------------------------------- smig_capture.c */

/*
 * smig_lib_safepoint_slow - something is pending at safe point k: pause,
 * capture, reply, wait for the decision (main thread, takes st->lock)
 * RET SMIG_OK or SMIG_STOP
 */
int smig_lib_safepoint_slow(smig_lib_t *st, uint64_t k);

/*
 * smig_lib_precopy_start - the pre-copy thread (smig_register(), when
 * precopy=on); RET SMIG_OK or SMIG_ERR_IO (logged)
 */
int smig_lib_precopy_start(smig_lib_t *st);

/* smig_lib_precopy_stop - stop and join it, drop a pre-copy left (finalize) */
void smig_lib_precopy_stop(smig_lib_t *st);

/*
 * smig_lib_precopy_wake - on_prepare() moved to PHASE_PRECOPY: wake the
 * thread. Caller holds st->lock.
 */
void smig_lib_precopy_wake(smig_lib_t *st);

/*
 * smig_lib_precopy_quiesce - no pre-copy reads the regions when this
 * returns (a region is about to change): a running one is cancelled and
 * waited for, a finished one dropped. Caller holds st->lock.
 */
void smig_lib_precopy_quiesce(smig_lib_t *st);

/* -------------------------------------------------------- smig_restore.c */

/*
 * smig_lib_read_manifest - the good generations the store recorded
 * (st->good); a bad manifest is reported and ignored: every image is
 * verified anyway.
 */
void smig_lib_read_manifest(smig_lib_t *st);

/*
 * smig_lib_restore_from - find the newest generation <= gen that every rank
 * can restore, hand it to the restore callback (main thread)
 * IN collective - smig_restore(): a last agreement after the callbacks
 *                 makes the answer the same on every rank
 * RET SMIG_RESTORED or an error (all ranks return an error together, except
 * when !collective and the restore callback of one rank fails)
 */
int smig_lib_restore_from(smig_lib_t *st, uint64_t gen, bool collective);

/*
 * smig_lib_restore_gen - SLURM_MIGRATE_RESTORE_GEN as a generation
 * OUT gen - 0: a fresh start ("none" or unset)
 * RET SMIG_OK, or an error (logged)
 */
int smig_lib_restore_gen(smig_lib_t *st, uint64_t *gen);

/*
 * smig_lib_restore_refuse - smig_restore() on a rank that cannot restore
 * before it looked at any image: round 1 with generation 0, so that the
 * other ranks fail with it instead of waiting in the fence
 */
void smig_lib_restore_refuse(smig_lib_t *st);

/* smig_lib_reason_parse - SMIG_REASON_* of a prepare's smig.reason */
int32_t smig_lib_reason_parse(const char *name);

#endif /* SMIG_INT_H */
