/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_event.c - libsmig's side of the node agent's protocol: the
 * checkpoint events of the agent (prepare, capture, commit, abort) and our
 * replies (count, done, restored); doc/design.md, "PMIx events between agent
 * and ranks". One engine, two transports: PMIx events (here; Open MPI,
 * srun --mpi=pmix) or the agent's socket (smig_chan.c; MPICH, srun
 * --mpi=pmi2), which parse into the same smig_lib_event_t.
 *
 * smig_lib_event_apply() runs in PMIx's progress thread or in the socket's
 * reader thread: it only records what arrived (under st->lock) and wakes
 * the main thread through st->cond.
 */
#include "smig_config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <pmix.h>

#include "smig_int.h"

/* Used when a prepare event carries no smig.timeout_ms. */
#define DEFAULT_TIMEOUT_MS	60000u

/* Keys of the events (doc/design.md, "PMIx events"). */
#define KEY_OP		"smig.op"
#define KEY_GEN		"smig.gen"
#define KEY_TARGET	"smig.target"
#define KEY_STOP	"smig.stop"
#define KEY_TIMEOUT	"smig.timeout_ms"
#define KEY_RANK	"smig.rank"
#define KEY_PAUSE_AT	"smig.pause_at"
#define KEY_STATUS	"smig.status"
#define KEY_BYTES	"smig.bytes"
#define KEY_MSG		"smig.msg"
#define KEY_REASON	"smig.reason"

/* A reply over the agent's socket, newline included. */
#define LINE_MAX_LEN	1024

static const char *phase_name(phase_t p)
{
	static const char *const names[] = {
		[PHASE_IDLE] = "idle",
		[PHASE_PRECOPY] = "pre-copying",
		[PHASE_PREPARED] = "prepared",
		[PHASE_CAPTURE] = "capturing",
		[PHASE_DONE] = "waiting for the decision",
	};

	return names[p];
}

/* smig_lib_set_idle - back to no pending capture. Caller holds st->lock. */
void smig_lib_set_idle(smig_lib_t *st)
{
	st->phase = PHASE_IDLE;
	st->pause_at = 0;
	st->target = 0;
	st->decision = DECISION_NONE;
	st->capture_ok = false;
	st->aborted = false;
	st->reason = SMIG_REASON_UNKNOWN;
	st->will_stop = false;
	if (!st->stopped)
		atomic_store(&st->pending, 0);
	pthread_cond_broadcast(&st->cond);
}

/*
 * chan_notify - smig_lib_notify_agent() over the agent's socket: one line
 * of the same keys, "smig.op=done smig.gen=4 smig.rank=1 smig.status=0
 * smig.bytes=80 smig.msg=text to the end of the line" (doc/design.md, "The
 * agent's socket")
 */
static void chan_notify(smig_lib_t *st, const char *op, uint64_t gen,
			uint64_t pause_at, int32_t status, uint64_t bytes,
			const char *msg)
{
	char line[LINE_MAX_LEN];
	int n;

	n = snprintf(line, sizeof(line) - 1, "%s=%s %s=%" PRIu64 " %s=%u",
		     KEY_OP, op, KEY_GEN, gen, KEY_RANK, st->me.rank);
	if (!strcmp(op, "count"))
		n += snprintf(line + n, sizeof(line) - 1 - n, " %s=%" PRIu64,
			      KEY_PAUSE_AT, pause_at);
	else if (!strcmp(op, "done"))
		n += snprintf(line + n, sizeof(line) - 1 - n,
			      " %s=%d %s=%" PRIu64 " %s=%s", KEY_STATUS,
			      status, KEY_BYTES, bytes, KEY_MSG,
			      msg ? msg : "");
	if (n > (int) sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* The message is the rest of the line: no newline inside. */
	for (int i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	if (smig_chan_send(st, line, n) < 0)
		smig_log("generation %" PRIu64 ": sending %s to the node agent failed: %s",
			 gen, op, strerror(errno));
	else
		smig_debug("generation %" PRIu64 ": sent %.*s", gen, n - 1,
			   line);
}

/*
 * smig_lib_notify_agent - send one reply (count, done or restored) to the
 * node agent
 * IN op       - "count", "done", or "restored": past smig_register(),
 *               gen the generation this rank restored, 0 for a fresh
 *               start (the balancer's relaunch watchdog waits for it, and
 *               captures no step before every rank sent it)
 * IN pause_at - count only
 * IN status, bytes, msg - done only (msg borrowed, may be NULL)
 * Never called with st->lock held. The info is packed before
 * PMIx_Notify_event() returns, so it is freed here.
 */
void smig_lib_notify_agent(smig_lib_t *st, const char *op, uint64_t gen,
			   uint64_t pause_at, int32_t status, uint64_t bytes,
			   const char *msg)
{
	bool is_done = !strcmp(op, "done"), is_count = !strcmp(op, "count");
	size_t n = is_done ? 7 : is_count ? 5 : 4, i = 0;
	pmix_info_t *info;
	bool yes = true;
	uint32_t rank = st->me.rank;
	pmix_status_t rc;

	if (st->chan) {
		chan_notify(st, op, gen, pause_at, status, bytes, msg);
		return;
	}
	PMIX_INFO_CREATE(info, n);
	/* Else slurmstepd's and Open MPI's default handlers kill the job. */
	PMIX_INFO_LOAD(&info[i++], PMIX_EVENT_NON_DEFAULT, &yes, PMIX_BOOL);
	PMIX_INFO_LOAD(&info[i++], KEY_OP, op, PMIX_STRING);
	PMIX_INFO_LOAD(&info[i++], KEY_GEN, &gen, PMIX_UINT64);
	PMIX_INFO_LOAD(&info[i++], KEY_RANK, &rank, PMIX_UINT32);
	if (is_done) {
		PMIX_INFO_LOAD(&info[i++], KEY_STATUS, &status, PMIX_INT32);
		PMIX_INFO_LOAD(&info[i++], KEY_BYTES, &bytes, PMIX_UINT64);
		PMIX_INFO_LOAD(&info[i++], KEY_MSG, msg ? msg : "",
			       PMIX_STRING);
	} else if (is_count) {
		PMIX_INFO_LOAD(&info[i++], KEY_PAUSE_AT, &pause_at,
			       PMIX_UINT64);
	}
	rc = PMIx_Notify_event(PMIX_JCTRL_CHECKPOINT_COMPLETE, &st->me,
			       PMIX_RANGE_RM, info, n, NULL, NULL);
	if (rc != PMIX_SUCCESS && rc != PMIX_OPERATION_SUCCEEDED)
		smig_log("generation %" PRIu64 ": sending %s to the node agent failed: %s",
			 gen, op, PMIx_Error_string(rc));
	else if (is_done)
		smig_debug("generation %" PRIu64 ": sent done status=%d bytes=%" PRIu64 " msg=%s",
			   gen, status, bytes, msg ? msg : "");
	else if (is_count)
		smig_debug("generation %" PRIu64 ": sent count pause_at=%" PRIu64,
			   gen, pause_at);
	else
		smig_debug("generation %" PRIu64 ": sent %s", gen, op);
	PMIX_INFO_FREE(info, n);
}

/* info_uint - an unsigned value of any width; RET false for another type */
static bool info_uint(const pmix_info_t *in, uint64_t *out)
{
	switch (in->value.type) {
	case PMIX_UINT64:
		*out = in->value.data.uint64;
		return true;
	case PMIX_UINT32:
		*out = in->value.data.uint32;
		return true;
	case PMIX_UINT16:
		*out = in->value.data.uint16;
		return true;
	case PMIX_UINT8:
		*out = in->value.data.uint8;
		return true;
	case PMIX_SIZE:
		*out = in->value.data.size;
		return true;
	default:
		return false;
	}
}

/* parse_event - pick our keys out of an event; RET false (logged) if bad */
static bool parse_event(const pmix_info_t *info, size_t ninfo,
			smig_lib_event_t *ev)
{
	uint64_t v;
	size_t i;

	memset(ev, 0, sizeof(*ev));
	for (i = 0; i < ninfo; i++) {
		const pmix_info_t *in = &info[i];

		if (PMIX_CHECK_KEY(in, KEY_OP)) {
			if (in->value.type != PMIX_STRING ||
			    !in->value.data.string) {
				smig_log("checkpoint event: %s is not a string (type %s): event ignored",
					 KEY_OP,
					 PMIx_Data_type_string(in->value.type));
				return false;
			}
			ev->op = in->value.data.string;
		} else if (PMIX_CHECK_KEY(in, KEY_REASON)) {
			/* Informative (smig_capture_info()): never fatal. */
			if (in->value.type == PMIX_STRING)
				ev->reason = in->value.data.string;
		} else if (PMIX_CHECK_KEY(in, KEY_GEN)) {
			if (!info_uint(in, &ev->gen))
				goto bad_type;
			ev->has_gen = true;
		} else if (PMIX_CHECK_KEY(in, KEY_TARGET)) {
			if (!info_uint(in, &ev->target))
				goto bad_type;
			ev->has_target = true;
		} else if (PMIX_CHECK_KEY(in, KEY_TIMEOUT)) {
			if (!info_uint(in, &v) || v > UINT32_MAX)
				goto bad_type;
			ev->timeout_ms = v;
			ev->has_timeout = true;
		} else if (PMIX_CHECK_KEY(in, KEY_STOP)) {
			if (in->value.type != PMIX_BOOL)
				goto bad_type;
			ev->stop = in->value.data.flag;
			ev->has_stop = true;
		}
		continue;
bad_type:
		smig_log("checkpoint event: %s has type %s, not an unsigned number or bool as doc/design.md says: event ignored",
			 in->key, PMIx_Data_type_string(in->value.type));
		return false;
	}
	/* op and gen are checked by smig_lib_event_apply(). */
	return true;
}

/*
 * on_prepare - the next safe point pauses; returns the pause_at to report,
 * 0 if the event was ignored. Caller holds st->lock.
 */
static uint64_t on_prepare(smig_lib_t *st, const smig_lib_event_t *ev)
{
	uint64_t good = atomic_load(&st->last_good);

	if (st->phase != PHASE_IDLE) {
		smig_log("prepare of generation %" PRIu64 " while generation %" PRIu64 " is in progress: ignored",
			 ev->gen, st->gen);
		return 0;
	}
	if (ev->gen <= good) {
		smig_log("prepare of generation %" PRIu64 ", not newer than the last good one (%" PRIu64 "): ignored",
			 ev->gen, good);
		return 0;
	}
	st->gen = ev->gen;
	st->phase = PHASE_PREPARED;
	st->target = 0;
	st->decision = DECISION_NONE;
	st->capture_ok = false;
	st->aborted = false;
	/* An older agent sends neither: SMIG_REASON_UNKNOWN, will_stop 0. */
	st->reason = smig_lib_reason_parse(ev->reason);
	st->will_stop = ev->has_stop && ev->stop;
	st->timeout_ms = ev->timeout_ms;
	if (!ev->has_timeout || ev->timeout_ms == 0) {
		smig_log("prepare of generation %" PRIu64 " without %s: using %u ms",
			 ev->gen, KEY_TIMEOUT, DEFAULT_TIMEOUT_MS);
		st->timeout_ms = DEFAULT_TIMEOUT_MS;
	}
	/*
	 * Pre-copy (smig_precopy.c): the rank runs on at full speed while
	 * its thread copies the regions, at most half the capture timeout;
	 * the thread then does what follows here and sends the count.
	 */
	if (st->precopy_started && st->nregions) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		st->phase = PHASE_PRECOPY;
		st->precopy_deadline = (uint64_t) ts.tv_sec * 1000 +
				       ts.tv_nsec / 1000000 +
				       st->timeout_ms / 2;
		smig_lib_precopy_wake(st);
		return 0;
	}
	/* Store pending before reading k: see the comment at the top. */
	atomic_store(&st->pending, 1);
	st->pause_at = atomic_load(&st->count) + 1;
	return st->pause_at;
}

/* on_capture, on_commit, on_abort - caller holds st->lock */
static void on_capture(smig_lib_t *st, const smig_lib_event_t *ev)
{
	if (st->phase != PHASE_PREPARED || ev->gen != st->gen) {
		smig_log("capture of generation %" PRIu64 " (target %" PRIu64 ") not expected (current generation %" PRIu64 ", %s): ignored",
			 ev->gen, ev->target, st->gen,
			 phase_name(st->phase));
		return;
	}
	if (!ev->has_target) {
		smig_log("capture of generation %" PRIu64 " without %s: ignored",
			 ev->gen, KEY_TARGET);
		return;
	}
	if (ev->target < st->pause_at)
		smig_log("capture of generation %" PRIu64 ": target %" PRIu64 " is below this rank's pause_at %" PRIu64,
			 ev->gen, ev->target, st->pause_at);
	st->target = ev->target;
	st->phase = PHASE_CAPTURE;
	pthread_cond_broadcast(&st->cond);
}

static void on_commit(smig_lib_t *st, const smig_lib_event_t *ev)
{
	if (st->phase != PHASE_DONE || ev->gen != st->gen) {
		smig_log("commit of generation %" PRIu64 " not expected (current generation %" PRIu64 ", %s): ignored",
			 ev->gen, st->gen, phase_name(st->phase));
		return;
	}
	if (!ev->has_stop)
		smig_log("commit of generation %" PRIu64 " without %s: taken as stop=false",
			 ev->gen, KEY_STOP);
	st->decision = ev->stop ? DECISION_COMMIT_STOP : DECISION_COMMIT;
	pthread_cond_broadcast(&st->cond);
}

static void on_abort(smig_lib_t *st, const smig_lib_event_t *ev)
{
	if (st->phase == PHASE_IDLE || ev->gen != st->gen) {
		smig_log("abort of generation %" PRIu64 " not expected (current generation %" PRIu64 ", %s): ignored",
			 ev->gen, st->gen, phase_name(st->phase));
		return;
	}
	smig_debug("generation %" PRIu64 ": aborted by the balancer", ev->gen);
	/*
	 * The target is known: other ranks may be inside their capture
	 * callback, in a collective that waits for this one. The callback
	 * still runs at the target (doc/design.md, "Collective contract");
	 * only the image is dropped. A capture in progress notices the flag
	 * when it takes the lock.
	 */
	if (st->phase == PHASE_CAPTURE) {
		st->aborted = true;
		pthread_cond_broadcast(&st->cond);
		return;
	}
	/* The pre-copy thread stops at its next block and sends nothing. */
	if (st->phase == PHASE_PRECOPY)
		atomic_store(&st->precopy_cancel, 1);
	smig_lib_set_idle(st);
}

/*
 * smig_lib_event_apply - one checkpoint event, parsed: see smig_int.h
 * Runs in the transport's thread: never blocks, never waits for the app.
 */
uint64_t smig_lib_event_apply(smig_lib_t *st, const smig_lib_event_t *ev)
{
	uint64_t pause_at = 0;

	if (!ev->op) {
		smig_log("checkpoint event without %s: event ignored", KEY_OP);
		return 0;
	}
	if (!ev->has_gen || ev->gen == 0) {
		smig_log("checkpoint event op=%s without a generation >= 1 (%s): event ignored",
			 ev->op, KEY_GEN);
		return 0;
	}
	smig_debug("event op=%s gen=%" PRIu64 " target=%" PRIu64 " stop=%d timeout_ms=%u",
		   ev->op, ev->gen, ev->target, ev->stop, ev->timeout_ms);

	pthread_mutex_lock(&st->lock);
	if (!strcmp(ev->op, "prepare")) {
		pause_at = on_prepare(st, ev);
	} else if (!strcmp(ev->op, "capture")) {
		on_capture(st, ev);
	} else if (!strcmp(ev->op, "commit")) {
		on_commit(st, ev);
	} else if (!strcmp(ev->op, "abort")) {
		on_abort(st, ev);
	} else {
		smig_log("checkpoint event %s=%s: not prepare, capture, commit or abort: ignored",
			 KEY_OP, ev->op);
	}
	pthread_mutex_unlock(&st->lock);
	return pause_at;
}

/* The one instance (smig.c), for PMIx's handler, which has no argument. */
static smig_lib_t *pmix_st;

/*
 * pmix_handler - PMIx_JCTRL_CHECKPOINT from the node agent.
 * Runs in PMIx's progress thread: never blocks, never waits for the app.
 */
static void pmix_handler(size_t id, pmix_status_t status,
			 const pmix_proc_t *source, pmix_info_t info[],
			 size_t ninfo, pmix_info_t results[], size_t nresults,
			 pmix_event_notification_cbfunc_fn_t cbfunc,
			 void *cbdata)
{
	smig_lib_event_t ev;
	uint64_t pause_at = 0;

	if (parse_event(info, ninfo, &ev))
		pause_at = smig_lib_event_apply(pmix_st, &ev);
	/* Let the chain go on at once; the reply is our own event. */
	if (cbfunc)
		cbfunc(PMIX_EVENT_ACTION_COMPLETE, NULL, 0, NULL, NULL, cbdata);
	/* The count is answered from here, not from the main loop, which may
	 * be blocked in MPI by a neighbour (doc/design.md, step 2). Only
	 * copies are used: info may be gone once cbfunc has run. */
	if (pause_at)
		smig_lib_notify_agent(pmix_st, "count", ev.gen, pause_at, 0,
				      0, NULL);
}

/* smig_lib_attach - see smig_int.h */
int smig_lib_attach(smig_lib_t *st)
{
	pmix_value_t *val = NULL;
	pmix_proc_t wild;
	pmix_status_t rc;

	st->chan = getenv("SLURM_MIGRATE_AGENT_SOCKET") != NULL;
	if (st->chan)
		return smig_chan_open(st);
	/* Open MPI already initialised PMIx: this only takes a reference. */
	rc = PMIx_Init(&st->me, NULL, 0);
	if (rc != PMIX_SUCCESS) {
		smig_log("PMIx_Init failed: %s (was the step started with srun --mpi=pmix?)",
			 PMIx_Error_string(rc));
		return SMIG_ERR_PMIX;
	}
	PMIX_LOAD_PROCID(&wild, st->me.nspace, PMIX_RANK_WILDCARD);
	rc = PMIx_Get(&wild, PMIX_JOB_SIZE, NULL, 0, &val);
	if (rc != PMIX_SUCCESS || !val || val->type != PMIX_UINT32 ||
	    val->data.uint32 == 0) {
		smig_log("PMIx_Get(%s) failed: %s", PMIX_JOB_SIZE,
			 rc != PMIX_SUCCESS ? PMIx_Error_string(rc) :
			 "not a positive uint32");
		if (val)
			PMIX_VALUE_RELEASE(val);
		PMIx_Finalize(NULL, 0);
		return SMIG_ERR_PMIX;
	}
	st->nranks = val->data.uint32;
	PMIX_VALUE_RELEASE(val);
	return SMIG_OK;
}

/* smig_lib_listen - see smig_int.h */
int smig_lib_listen(smig_lib_t *st)
{
	pmix_status_t code = PMIX_JCTRL_CHECKPOINT, rc;
	pmix_info_t *info;

	if (st->chan)
		return smig_chan_listen(st);
	pmix_st = st;
	PMIX_INFO_CREATE(info, 1);
	PMIX_INFO_LOAD(&info[0], PMIX_EVENT_HDLR_NAME, "smig", PMIX_STRING);
	/* Blocking form (no callback): returns the registration id. */
	rc = PMIx_Register_event_handler(&code, 1, info, 1, pmix_handler,
					 NULL, NULL);
	PMIX_INFO_FREE(info, 1);
	if (rc < 0) {
		smig_log("registering the handler for PMIX_JCTRL_CHECKPOINT failed: %s",
			 PMIx_Error_string(rc));
		return SMIG_ERR_PMIX;
	}
	st->evhdlr = rc;
	return SMIG_OK;
}

/* smig_lib_detach - see smig_int.h */
int smig_lib_detach(smig_lib_t *st, bool listening)
{
	pmix_status_t rc;
	int ret = SMIG_OK;

	if (st->chan) {
		smig_chan_close(st, listening);
		return SMIG_OK;
	}
	if (listening) {
		rc = PMIx_Deregister_event_handler(st->evhdlr, NULL, NULL);
		if (rc != PMIX_SUCCESS) {
			smig_log("PMIx_Deregister_event_handler failed: %s",
				 PMIx_Error_string(rc));
			ret = SMIG_ERR_PMIX;
		}
	}
	/* Drops our reference; Open MPI's keeps PMIx up until MPI_Finalize. */
	rc = PMIx_Finalize(NULL, 0);
	if (rc != PMIX_SUCCESS) {
		smig_log("PMIx_Finalize failed: %s", PMIx_Error_string(rc));
		ret = SMIG_ERR_PMIX;
	}
	return ret;
}
