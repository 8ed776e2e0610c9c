/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig.c - slurm-migrate application library: PMIx event handler, safe
 *	    points, capture and restore of recovery images
 *
 * The contract with the node agent (spank_migrate.so in slurmstepd) is
 * doc/design.md, "PMIx events between agent and ranks" and "The capture
 * protocol". In short, for one generation g:
 *
 *   agent -> rank  prepare(g, timeout_ms)  rank: pause_at = k + 1, reply count
 *   agent -> rank  capture(g, target)      rank: runs on to safe point target,
 *					    captures, writes the image,
 *					    replies done, waits for:
 *   agent -> rank  commit(g, stop)         stop: smig_safepoint() = SMIG_STOP
 *   agent -> rank  abort(g)                go on where we are
 *
 * Threads: the event handler runs in PMIx's progress thread. It only
 * records what arrived in the shared state (under state.lock), answers
 * "count" and wakes the main thread through state.cond. Everything else
 * (capture callback, image write, "done" reply, restore) runs in the
 * thread that calls smig_safepoint() / smig_register(). No PMIx call is
 * ever made with state.lock held.
 *
 * Fast path: k is an atomic counter and "pending" an atomic flag. The
 * handler stores pending before it reads k; smig_safepoint() increments k
 * before it reads pending (both sequentially consistent): either the
 * handler sees the new k, or the safe point sees pending. So pause_at is
 * never a count the rank has already passed without pausing.
 *
 * Libc + PMIx + smig_image only (no glib): it lives in applications.
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <pmix.h>
#include <xxhash.h>

#include "smig.h"
#include "smig_image.h"

#define SMIG_EXPORT __attribute__((visibility("default")))

/* Used when a prepare event carries no smig.timeout_ms. */
#define DEFAULT_TIMEOUT_MS	60000u
/* Newest generations considered when falling back (one bit each). */
#define FALLBACK_GENS		64
#define LOG_LINE_MAX		1024
#define ERRBUF_LEN		512

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
/* Keys of the restore agreement (PMIx_Put + fence, not events). */
#define KEY_RESTORE_GEN	"smig.restore.gen"
#define KEY_RESTORE_R1	"smig.restore.ok1"
#define KEY_RESTORE_R2	"smig.restore.ok2"

/* Where this rank is in the capture of the current generation. */
typedef enum {
	PHASE_IDLE,		/* nothing pending */
	PHASE_PREPARED,		/* pause at pause_at until the target comes */
	PHASE_CAPTURE,		/* capture at safe point target */
	PHASE_DONE,		/* done sent: wait for commit or abort */
} phase_t;

typedef enum {
	DECISION_NONE,
	DECISION_COMMIT,
	DECISION_COMMIT_STOP,
} decision_t;

struct smig_writer {
	unsigned char *buf;
	size_t len;
	size_t cap;
	int err;		/* first error of smig_write(), 0 if none */
	bool open;		/* only inside the capture callback */
};

/* One instance per process. Fields marked (main) are used only by the
 * thread that calls the API; (lock) fields are shared with the handler. */
static struct {
	bool initialized;		/* (main) smig_init() ran */
	bool active;			/* (main) SLURM_MIGRATE, or stopped */
	bool stopped;			/* (main) SMIG_STOP was returned */
	bool registered;		/* (main) smig_register() ran */
	int init_error;			/* (main) what a failed smig_init() returned */
	bool debug;			/* SLURM_MIGRATE_DEBUG */
	pmix_proc_t me;			/* set in init, then read-only */
	uint32_t nranks;
	char *image_dir;		/* (main) */
	smig_dir_id_t dir_id;		/* (main) image_dir at smig_init() */
	uint32_t job_id;
	uint32_t step_id;
	size_t evhdlr;			/* PMIx registration id */

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
} state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/*
 * The safe-point count as the node agent reads it (its progress sample):
 * <SLURM_MIGRATE_STAT_DIR>/rank<R>.prog, 8 bytes, mapped shared. NULL
 * without a stat directory. (main thread)
 */
static _Atomic uint64_t *progress;

/* Rank for log lines; UINT32_MAX until PMIx told us. */
static _Atomic uint32_t log_rank = UINT32_MAX;

/* smig_log - one line to stderr, "smig: rank R: ...", written at once */
__attribute__((format(printf, 1, 2)))
static void smig_log(const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	uint32_t rank = atomic_load(&log_rank);
	va_list ap;
	int n;

	if (rank == UINT32_MAX)
		n = snprintf(line, sizeof(line), "smig: ");
	else
		n = snprintf(line, sizeof(line), "smig: rank %u: ", rank);
	if (n < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n = strlen(line);
	if (n < (int) sizeof(line) - 1)
		line[n++] = '\n';
	else
		line[sizeof(line) - 2] = '\n', n = sizeof(line) - 1;
	/* One write(2): lines of ranks and threads do not interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

#define smig_debug(...) \
	do { if (state.debug) smig_log(__VA_ARGS__); } while (0)

/* parse_u64 - a whole decimal number; RET false for anything else */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

/* has_dot_dot - RET true if the path has a ".." component */
static bool has_dot_dot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2) {
		if ((p == path || p[-1] == '/') && (p[2] == '/' || !p[2]))
			return true;
	}
	return false;
}

/* env_u64 - a numeric variable; RET false (logged) if unset or bad */
static bool env_u64(const char *name, uint64_t max, uint64_t *out)
{
	const char *v = getenv(name);

	if (!v) {
		smig_log("%s is not set (SLURM_MIGRATE is): is the node agent spank_migrate.so loaded?",
			 name);
		return false;
	}
	if (!parse_u64(v, max, out)) {
		smig_log("%s=%s: not a number in 0..%" PRIu64, name, v, max);
		return false;
	}
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* deadline_in - CLOCK_MONOTONIC time ms from now, for state.cond */
static struct timespec deadline_in(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static const char *phase_name(phase_t p)
{
	static const char *const names[] = {
		[PHASE_IDLE] = "idle",
		[PHASE_PREPARED] = "prepared",
		[PHASE_CAPTURE] = "capturing",
		[PHASE_DONE] = "waiting for the decision",
	};

	return names[p];
}

/* set_idle - back to no pending capture. Caller holds state.lock. */
static void set_idle(void)
{
	state.phase = PHASE_IDLE;
	state.pause_at = 0;
	state.target = 0;
	state.decision = DECISION_NONE;
	state.capture_ok = false;
	if (!state.stopped)
		atomic_store(&state.pending, 0);
	pthread_cond_broadcast(&state.cond);
}

/*
 * notify_agent - send one reply (count, done or restored) to the node agent
 * IN op       - "count", "done", or "restored": past smig_register(),
 *               gen the generation this rank restored, 0 for a fresh
 *               start (the balancer's relaunch watchdog waits for it, and
 *               captures no step before every rank sent it)
 * IN pause_at - count only
 * IN status, bytes, msg - done only (msg borrowed, may be NULL)
 * Never called with state.lock held. The info is packed before
 * PMIx_Notify_event() returns, so it is freed here.
 */
static void notify_agent(const char *op, uint64_t gen, uint64_t pause_at,
			 int32_t status, uint64_t bytes, const char *msg)
{
	bool is_done = !strcmp(op, "done"), is_count = !strcmp(op, "count");
	size_t n = is_done ? 7 : is_count ? 5 : 4, i = 0;
	pmix_info_t *info;
	bool yes = true;
	uint32_t rank = state.me.rank;
	pmix_status_t rc;

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
	rc = PMIx_Notify_event(PMIX_JCTRL_CHECKPOINT_COMPLETE, &state.me,
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

/* What one checkpoint event carries. */
struct event {
	const char *op;		/* borrowed from the event's info */
	uint64_t gen;
	uint64_t target;
	uint32_t timeout_ms;
	bool stop;
	bool has_gen, has_target, has_stop, has_timeout;
};

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
static bool parse_event(const pmix_info_t *info, size_t ninfo, struct event *ev)
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
	if (!ev->op) {
		smig_log("checkpoint event without %s: event ignored", KEY_OP);
		return false;
	}
	if (!ev->has_gen || ev->gen == 0) {
		smig_log("checkpoint event op=%s without a generation >= 1 (%s): event ignored",
			 ev->op, KEY_GEN);
		return false;
	}
	return true;
}

/*
 * on_prepare - the next safe point pauses; returns the pause_at to report,
 * 0 if the event was ignored. Caller holds state.lock.
 */
static uint64_t on_prepare(const struct event *ev)
{
	uint64_t good = atomic_load(&state.last_good);

	if (state.phase != PHASE_IDLE) {
		smig_log("prepare of generation %" PRIu64 " while generation %" PRIu64 " is in progress: ignored",
			 ev->gen, state.gen);
		return 0;
	}
	if (ev->gen <= good) {
		smig_log("prepare of generation %" PRIu64 ", not newer than the last good one (%" PRIu64 "): ignored",
			 ev->gen, good);
		return 0;
	}
	state.gen = ev->gen;
	state.phase = PHASE_PREPARED;
	state.target = 0;
	state.decision = DECISION_NONE;
	state.capture_ok = false;
	state.timeout_ms = ev->timeout_ms;
	if (!ev->has_timeout || ev->timeout_ms == 0) {
		smig_log("prepare of generation %" PRIu64 " without %s: using %u ms",
			 ev->gen, KEY_TIMEOUT, DEFAULT_TIMEOUT_MS);
		state.timeout_ms = DEFAULT_TIMEOUT_MS;
	}
	/* Store pending before reading k: see the comment at the top. */
	atomic_store(&state.pending, 1);
	state.pause_at = atomic_load(&state.count) + 1;
	return state.pause_at;
}

/* on_capture, on_commit, on_abort - caller holds state.lock */
static void on_capture(const struct event *ev)
{
	if (state.phase != PHASE_PREPARED || ev->gen != state.gen) {
		smig_log("capture of generation %" PRIu64 " (target %" PRIu64 ") not expected (current generation %" PRIu64 ", %s): ignored",
			 ev->gen, ev->target, state.gen,
			 phase_name(state.phase));
		return;
	}
	if (!ev->has_target) {
		smig_log("capture of generation %" PRIu64 " without %s: ignored",
			 ev->gen, KEY_TARGET);
		return;
	}
	if (ev->target < state.pause_at)
		smig_log("capture of generation %" PRIu64 ": target %" PRIu64 " is below this rank's pause_at %" PRIu64,
			 ev->gen, ev->target, state.pause_at);
	state.target = ev->target;
	state.phase = PHASE_CAPTURE;
	pthread_cond_broadcast(&state.cond);
}

static void on_commit(const struct event *ev)
{
	if (state.phase != PHASE_DONE || ev->gen != state.gen) {
		smig_log("commit of generation %" PRIu64 " not expected (current generation %" PRIu64 ", %s): ignored",
			 ev->gen, state.gen, phase_name(state.phase));
		return;
	}
	if (!ev->has_stop)
		smig_log("commit of generation %" PRIu64 " without %s: taken as stop=false",
			 ev->gen, KEY_STOP);
	state.decision = ev->stop ? DECISION_COMMIT_STOP : DECISION_COMMIT;
	pthread_cond_broadcast(&state.cond);
}

static void on_abort(const struct event *ev)
{
	if (state.phase == PHASE_IDLE || ev->gen != state.gen) {
		smig_log("abort of generation %" PRIu64 " not expected (current generation %" PRIu64 ", %s): ignored",
			 ev->gen, state.gen, phase_name(state.phase));
		return;
	}
	smig_debug("generation %" PRIu64 ": aborted by the balancer", ev->gen);
	/* A capture in progress notices the change when it takes the lock. */
	set_idle();
}

/*
 * event_handler - PMIx_JCTRL_CHECKPOINT from the node agent.
 * Runs in PMIx's progress thread: never blocks, never waits for the app.
 */
static void event_handler(size_t id, pmix_status_t status,
			  const pmix_proc_t *source, pmix_info_t info[],
			  size_t ninfo, pmix_info_t results[], size_t nresults,
			  pmix_event_notification_cbfunc_fn_t cbfunc,
			  void *cbdata)
{
	struct event ev;
	uint64_t pause_at = 0;
	uint64_t gen = 0;

	if (!parse_event(info, ninfo, &ev))
		goto out;
	smig_debug("event op=%s gen=%" PRIu64 " target=%" PRIu64 " stop=%d timeout_ms=%u",
		   ev.op, ev.gen, ev.target, ev.stop, ev.timeout_ms);

	pthread_mutex_lock(&state.lock);
	if (!strcmp(ev.op, "prepare")) {
		pause_at = on_prepare(&ev);
		gen = ev.gen;
	} else if (!strcmp(ev.op, "capture")) {
		on_capture(&ev);
	} else if (!strcmp(ev.op, "commit")) {
		on_commit(&ev);
	} else if (!strcmp(ev.op, "abort")) {
		on_abort(&ev);
	} else {
		smig_log("checkpoint event %s=%s: not prepare, capture, commit or abort: ignored",
			 KEY_OP, ev.op);
	}
	pthread_mutex_unlock(&state.lock);

out:
	/* Let the chain go on at once; the reply is our own event. */
	if (cbfunc)
		cbfunc(PMIX_EVENT_ACTION_COMPLETE, NULL, 0, NULL, NULL, cbdata);
	/* The count is answered from here, not from the main loop, which may
	 * be blocked in MPI by a neighbour (doc/design.md, step 2). Only
	 * copies are used: info may be gone once cbfunc has run. */
	if (pause_at)
		notify_agent("count", gen, pause_at, 0, 0, NULL);
}

/* progress_open - map the progress file; failure only costs the sample */
static void progress_open(void)
{
	const char *dir = getenv("SLURM_MIGRATE_STAT_DIR");
	char path[4096];
	void *p;
	int fd;

	if (!dir || dir[0] != '/' ||
	    snprintf(path, sizeof(path), "%s/rank%u.prog", dir,
		     state.me.rank) >= (int) sizeof(path))
		return;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, sizeof(uint64_t)) < 0) {
		smig_log("%s: %s: progress is not reported", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		smig_log("%s: mmap: %s: progress is not reported", path,
			 strerror(errno));
		return;
	}
	progress = p;
}

SMIG_EXPORT int smig_init(void)
{
	pmix_status_t code = PMIX_JCTRL_CHECKPOINT;
	pmix_proc_t wild;
	pmix_value_t *val = NULL;
	pmix_info_t *info;
	pmix_status_t rc;
	uint64_t v;
	const char *dir, *dbg;
	pthread_condattr_t ca;
	char err[ERRBUF_LEN];

	if (state.initialized || state.init_error) {
		smig_log("smig_init() called twice");
		return SMIG_ERR_STATE;
	}
	if (!getenv("SLURM_MIGRATE")) {
		/* Not a --migrate step: every call is a no-op. */
		state.initialized = true;
		return SMIG_OK;
	}
	dbg = getenv("SLURM_MIGRATE_DEBUG");
	state.debug = dbg && *dbg && strcmp(dbg, "0");

	/* Open MPI already initialised PMIx: this only takes a reference. */
	rc = PMIx_Init(&state.me, NULL, 0);
	if (rc != PMIX_SUCCESS) {
		smig_log("PMIx_Init failed: %s (was the step started with srun --mpi=pmix?)",
			 PMIx_Error_string(rc));
		return SMIG_ERR_PMIX;
	}
	atomic_store(&log_rank, state.me.rank);

	PMIX_LOAD_PROCID(&wild, state.me.nspace, PMIX_RANK_WILDCARD);
	rc = PMIx_Get(&wild, PMIX_JOB_SIZE, NULL, 0, &val);
	if (rc != PMIX_SUCCESS || !val || val->type != PMIX_UINT32 ||
	    val->data.uint32 == 0) {
		smig_log("PMIx_Get(%s) failed: %s", PMIX_JOB_SIZE,
			 rc != PMIX_SUCCESS ? PMIx_Error_string(rc) :
			 "not a positive uint32");
		if (val)
			PMIX_VALUE_RELEASE(val);
		goto out_finalize;
	}
	state.nranks = val->data.uint32;
	PMIX_VALUE_RELEASE(val);

	dir = getenv("SLURM_MIGRATE_IMAGE_DIR");
	if (!dir || dir[0] != '/') {
		smig_log("SLURM_MIGRATE_IMAGE_DIR=%s: not an absolute path (SLURM_MIGRATE is set): is the node agent spank_migrate.so loaded?",
			 dir ? dir : "(unset)");
		goto out_finalize_inval;
	}
	if (has_dot_dot(dir)) {
		smig_log("SLURM_MIGRATE_IMAGE_DIR=%s: a \"..\" component is refused (the node agent sets <MigrateImageDir>/<jobid>)",
			 dir);
		goto out_finalize_inval;
	}
	if (!env_u64("SLURM_MIGRATE_JOB_ID", UINT32_MAX, &v))
		goto out_finalize_inval;
	state.job_id = v;
	if (!env_u64("SLURM_MIGRATE_STEP_ID", UINT32_MAX, &v))
		goto out_finalize_inval;
	state.step_id = v;
	/* Compared at each capture: a replaced directory is refused. */
	if (smig_dir_id_get(dir, &state.dir_id, err, sizeof(err)) < 0) {
		smig_log("SLURM_MIGRATE_IMAGE_DIR=%s", err);
		goto out_finalize_inval;
	}
	state.image_dir = strdup(dir);
	if (!state.image_dir) {
		smig_log("out of memory");
		goto out_finalize;
	}

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&state.cond, &ca);
	pthread_condattr_destroy(&ca);
	state.phase = PHASE_IDLE;
	atomic_store(&state.count, 0);
	atomic_store(&state.pending, 0);
	atomic_store(&state.last_good, 0);

	PMIX_INFO_CREATE(info, 1);
	PMIX_INFO_LOAD(&info[0], PMIX_EVENT_HDLR_NAME, "smig", PMIX_STRING);
	/* Blocking form (no callback): returns the registration id. */
	rc = PMIx_Register_event_handler(&code, 1, info, 1, event_handler,
					 NULL, NULL);
	PMIX_INFO_FREE(info, 1);
	if (rc < 0) {
		smig_log("registering the handler for PMIX_JCTRL_CHECKPOINT failed: %s",
			 PMIx_Error_string(rc));
		pthread_cond_destroy(&state.cond);
		free(state.image_dir);
		state.image_dir = NULL;
		goto out_finalize;
	}
	state.evhdlr = rc;
	state.initialized = true;
	state.active = true;
	progress_open();
	smig_debug("attached: nspace=%s ranks=%u job=%u step=%u dir=%s",
		   state.me.nspace, state.nranks, state.job_id, state.step_id,
		   state.image_dir);
	return SMIG_OK;

out_finalize_inval:
	state.init_error = SMIG_ERR_INVAL;
	PMIx_Finalize(NULL, 0);
	return SMIG_ERR_INVAL;
out_finalize:
	state.init_error = SMIG_ERR_PMIX;
	PMIx_Finalize(NULL, 0);
	return SMIG_ERR_PMIX;
}

/*
 * check_header - the image belongs to this rank, generation and application
 * RET true, or false with a message in err
 */
static bool check_header(const smig_image_hdr_t *h, uint64_t gen,
			 char *err, size_t errlen)
{
	if (h->job_id != state.job_id)
		snprintf(err, errlen, "job %u in header, this is job %u",
			 h->job_id, state.job_id);
	else if (h->rank != state.me.rank)
		snprintf(err, errlen, "rank %u in header, expected %u",
			 h->rank, state.me.rank);
	else if (h->generation != gen)
		snprintf(err, errlen, "generation %" PRIu64 " in header, expected %" PRIu64,
			 h->generation, gen);
	else if (h->nranks != state.nranks)
		snprintf(err, errlen, "captured with %u ranks, this step has %u",
			 h->nranks, state.nranks);
	else if (strcmp(h->tag, state.tag))
		snprintf(err, errlen, "tag \"%s\" in header, application registered \"%s\"",
			 h->tag, state.tag);
	else
		return true;
	return false;
}

/*
 * load_image - read (payload != NULL) or verify one image of this rank
 * OUT hdr     - header, on success
 * OUT payload - new buffer, caller frees with free(); NULL to only verify
 * IN  quiet_missing - no message if the file does not exist
 * RET true, or false with a message logged
 */
static bool load_image(uint64_t gen, smig_image_hdr_t *hdr, void **payload,
		       bool quiet_missing)
{
	char path[4096], err[ERRBUF_LEN], why[ERRBUF_LEN];
	int rc;

	rc = smig_image_path(path, sizeof(path), state.image_dir,
			     state.me.rank, gen);
	if (rc) {
		smig_log("image path for generation %" PRIu64 " in %s: %s",
			 gen, state.image_dir, smig_image_strerror(rc));
		return false;
	}
	err[0] = '\0';
	if (payload)
		rc = smig_image_read(path, hdr, payload, err, sizeof(err));
	else
		rc = smig_image_verify(path, hdr, err, sizeof(err));
	if (rc) {
		/* smig_image's messages name the path and generation. */
		if (quiet_missing && rc == -ENOENT)
			;
		else if (err[0])
			smig_log("%s", err);
		else
			smig_log("image %s (generation %" PRIu64 "): %s",
				 path, gen, smig_image_strerror(rc));
		return false;
	}
	if (!check_header(hdr, gen, why, sizeof(why))) {
		smig_log("image %s (generation %" PRIu64 "): %s", path, gen,
			 why);
		if (payload) {
			free(*payload);
			*payload = NULL;
		}
		return false;
	}
	return true;
}

/*
 * read_manifest - the good generations the store recorded (state.good);
 * a bad manifest is reported and ignored: every image is verified anyway.
 */
static void read_manifest(void)
{
	char err[ERRBUF_LEN] = "";

	if (smig_store_good_read(state.image_dir, state.good, &state.ngood,
				 err, sizeof(err)) < 0)
		smig_log("%s: ignored, falling back to any generation whose images verify on every rank",
			 err);
}

/* known_good - gen is in the manifest, or there is no manifest */
static bool known_good(uint64_t gen)
{
	if (!state.ngood)
		return true;
	for (size_t i = 0; i < state.ngood; i++)
		if (state.good[i] == gen)
			return true;
	return false;
}

/*
 * agree - AND of every rank's mask, through PMIx_Put + fence + PMIx_Get
 * IN  key  - distinct per round (a key is put once)
 * IN  gen  - SLURM_MIGRATE_RESTORE_GEN, checked to be the same everywhere
 * IN  mine - bit i: generation gen - i can be restored by this rank
 * OUT all  - bits set on every rank
 * RET true, or false with a message logged (all ranks must then fail)
 */
static bool agree(const char *key, uint64_t gen, uint64_t mine, uint64_t *all)
{
	pmix_info_t *info;
	pmix_value_t v, *got;
	pmix_proc_t p;
	pmix_status_t rc;
	bool yes = true;
	uint32_t r;

	*all = mine;
	if (state.nranks == 1)
		return true;
	PMIX_VALUE_LOAD(&v, &gen, PMIX_UINT64);
	rc = PMIx_Put(PMIX_GLOBAL, KEY_RESTORE_GEN, &v);
	PMIX_VALUE_DESTRUCT(&v);
	if (rc == PMIX_SUCCESS) {
		PMIX_VALUE_LOAD(&v, &mine, PMIX_UINT64);
		rc = PMIx_Put(PMIX_GLOBAL, key, &v);
		PMIX_VALUE_DESTRUCT(&v);
	}
	if (rc == PMIX_SUCCESS)
		rc = PMIx_Commit();
	if (rc != PMIX_SUCCESS) {
		smig_log("restore agreement: PMIx_Put/Commit of %s failed: %s",
			 key, PMIx_Error_string(rc));
		return false;
	}
	PMIX_INFO_CREATE(info, 1);
	PMIX_INFO_LOAD(&info[0], PMIX_COLLECT_DATA, &yes, PMIX_BOOL);
	/* NULL procs: every rank of our namespace. */
	rc = PMIx_Fence(NULL, 0, info, 1);
	PMIX_INFO_FREE(info, 1);
	if (rc != PMIX_SUCCESS) {
		smig_log("restore agreement: PMIx_Fence failed: %s",
			 PMIx_Error_string(rc));
		return false;
	}
	for (r = 0; r < state.nranks; r++) {
		uint64_t theirs;

		PMIX_LOAD_PROCID(&p, state.me.nspace, r);
		got = NULL;
		rc = PMIx_Get(&p, KEY_RESTORE_GEN, NULL, 0, &got);
		if (rc != PMIX_SUCCESS || !got || got->type != PMIX_UINT64)
			goto get_failed;
		theirs = got->data.uint64;
		PMIX_VALUE_RELEASE(got);
		if (theirs != gen) {
			smig_log("restore agreement: rank %u restores generation %" PRIu64 ", this rank %" PRIu64 ": SLURM_MIGRATE_RESTORE_GEN differs between ranks",
				 r, theirs, gen);
			return false;
		}
		got = NULL;
		rc = PMIx_Get(&p, key, NULL, 0, &got);
		if (rc != PMIX_SUCCESS || !got || got->type != PMIX_UINT64)
			goto get_failed;
		*all &= got->data.uint64;
		PMIX_VALUE_RELEASE(got);
	}
	return true;

get_failed:
	smig_log("restore agreement: PMIx_Get of rank %u failed: %s", r,
		 rc != PMIX_SUCCESS ? PMIx_Error_string(rc) : "not a uint64");
	if (got)
		PMIX_VALUE_RELEASE(got);
	return false;
}

struct smig_reader {
	bool open;		/* inside the streaming restore callback */
	int fd;
	const char *path;
	uint64_t left;		/* payload bytes not read yet */
	uint64_t hash;		/* the verified payload XXH3-64 */
	XXH3_state_t *xx;
	int err;		/* first error, returned from then on */
};

/* reader_fill - read exactly len bytes (len <= r->left) and checksum them */
static int reader_fill(smig_reader_t *r, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(r->fd, (char *) buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			smig_log("%s: read: %s", r->path, strerror(errno));
			return SMIG_ERR_IO;
		}
		if (n == 0) {
			smig_log("%s: truncated after it was verified (%" PRIu64 " payload bytes missing)",
				 r->path, r->left - got);
			return SMIG_ERR_IMAGE;
		}
		got += n;
	}
	XXH3_64bits_update(r->xx, buf, len);
	r->left -= len;
	if (!r->left && XXH3_64bits_digest(r->xx) != r->hash) {
		smig_log("%s: payload changed after it was verified (checksum mismatch)",
			 r->path);
		return SMIG_ERR_IMAGE;
	}
	return SMIG_OK;
}

SMIG_EXPORT int64_t smig_read(smig_reader_t *r, void *buf, size_t len)
{
	int rc;

	if (!r || !r->open) {
		smig_log("smig_read() outside a streaming restore callback");
		return SMIG_ERR_STATE;
	}
	if (r->err)
		return r->err;
	if (!buf && len) {
		smig_log("smig_read: buf is NULL");
		return SMIG_ERR_INVAL;
	}
	if (len > r->left)
		len = r->left;
	if (!len)
		return 0;
	rc = reader_fill(r, buf, len);
	if (rc) {
		r->err = rc;
		return rc;
	}
	return (int64_t) len;
}

/*
 * restore_stream - run the streaming restore callback on the verified
 * image of gen (hdr); the header is read again and must be the verified one
 * OUT app_rc - what the callback returned (0 if it did not run)
 * RET SMIG_OK, or SMIG_ERR_* when the image could not be read or checked
 */
static int restore_stream(uint64_t gen, const smig_image_hdr_t *hdr,
			  int *app_rc)
{
	unsigned char head[SMIG_IMAGE_HEADER_SIZE], buf[65536];
	char path[4096], err[ERRBUF_LEN] = "";
	smig_reader_t r = { .fd = -1, .path = path };
	smig_image_hdr_t now;
	ssize_t n;
	int rc;

	if (smig_image_path(path, sizeof(path), state.image_dir,
			    state.me.rank, gen))
		return SMIG_ERR_IMAGE;
	r.fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (r.fd < 0) {
		smig_log("%s: open: %s", path, strerror(errno));
		return SMIG_ERR_IO;
	}
	do {
		n = pread(r.fd, head, sizeof(head), 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t) sizeof(head) ||
	    smig_image_decode_header(head, sizeof(head), &now, err,
				     sizeof(err)) ||
	    now.payload_len != hdr->payload_len ||
	    now.payload_hash != hdr->payload_hash ||
	    now.generation != hdr->generation || now.rank != hdr->rank) {
		smig_log("%s: header changed after the image was verified%s%s",
			 path, err[0] ? ": " : "", err);
		close(r.fd);
		return SMIG_ERR_IMAGE;
	}
	if (lseek(r.fd, SMIG_IMAGE_HEADER_SIZE, SEEK_SET) < 0 ||
	    !(r.xx = XXH3_createState()) || XXH3_64bits_reset(r.xx) != XXH_OK) {
		smig_log("%s: cannot start reading the payload", path);
		if (r.xx)
			XXH3_freeState(r.xx);
		close(r.fd);
		return SMIG_ERR_IO;
	}
	r.left = hdr->payload_len;
	r.hash = hdr->payload_hash;
	/* An empty payload: the checksum of nothing is checked here. */
	if (!r.left && XXH3_64bits_digest(r.xx) != r.hash)
		r.err = SMIG_ERR_IMAGE;
	*app_rc = 0;
	if (!r.err) {
		r.open = true;
		*app_rc = state.restore_rd(&r, hdr->payload_len, state.arg);
		r.open = false;
	}
	/* What the callback left unread is checked all the same. */
	while (!*app_rc && !r.err && r.left) {
		size_t len = r.left < sizeof(buf) ? r.left : sizeof(buf);

		r.err = reader_fill(&r, buf, len);
	}
	rc = r.err;
	XXH3_freeState(r.xx);
	close(r.fd);
	return rc;
}

/*
 * restore_from - find the newest generation <= gen that every rank can
 * restore, hand it to the restore callback.
 * RET SMIG_RESTORED or an error (all ranks return an error together, except
 * when the restore callback of one rank fails)
 */
static int restore_from(uint64_t gen)
{
	smig_image_hdr_t hdr;
	void *payload = NULL;
	uint64_t mine, all, chosen = 0;
	unsigned i, span;
	bool ok;
	int rc;

	/* Round 1, the usual case: generation gen is good everywhere. */
	ok = load_image(gen, &hdr, state.restore_rd ? NULL : &payload, false);
	if (!agree(KEY_RESTORE_R1, gen, ok ? 1 : 0, &all)) {
		free(payload);
		return SMIG_ERR_PMIX;
	}
	if (all & 1) {
		chosen = gen;
		goto restore;
	}
	free(payload);
	payload = NULL;

	/* Round 2: a set of images of one older generation, the same on all
	 * ranks (images of one generation are consistent with each other). */
	span = gen < FALLBACK_GENS ? gen : FALLBACK_GENS;
	mine = 0;
	/* Only generations the store recorded as good (every rank's image
	 * verified by the agents): an aborted one may be incomplete. */
	for (i = 1; i < span; i++)
		if (known_good(gen - i) && load_image(gen - i, &hdr, NULL, true))
			mine |= UINT64_C(1) << i;
	if (!agree(KEY_RESTORE_R2, gen, mine, &all))
		return SMIG_ERR_PMIX;
	for (i = 1; i < span; i++)
		if (all & (UINT64_C(1) << i))
			break;
	if (i >= span) {
		char good[256] = "none";
		size_t n = 0;

		mine |= ok ? 1 : 0;
		for (i = 0; i < span && n < sizeof(good) - 24; i++)
			if (mine & (UINT64_C(1) << i))
				n += snprintf(good + n, sizeof(good) - n,
					      "%s%" PRIu64, n ? "," : "",
					      gen - i);
		smig_log("no generation in %" PRIu64 "..%" PRIu64 " has a valid image on every rank: cannot restore (this rank's images: %s/rank%u.g<G>.img, valid for G=%s)",
			 gen - span + 1, gen, state.image_dir, state.me.rank,
			 good);
		return SMIG_ERR_IMAGE;
	}
	chosen = gen - i;
	smig_log("generation %" PRIu64 " is not valid on every rank: falling back to generation %" PRIu64,
		 gen, chosen);
	if (!load_image(chosen, &hdr, state.restore_rd ? NULL : &payload,
			false)) {
		/* Verified a moment ago: the store changed under us. Other
		 * ranks may restore; never run on from a mixed set. */
		smig_log("image of generation %" PRIu64 " went bad after it was verified: cannot restore",
			 chosen);
		return SMIG_ERR_IMAGE;
	}

restore:
	if (state.restore_rd) {
		int err = restore_stream(chosen, &hdr, &rc);

		if (err)
			return err;
	} else {
		rc = state.restore(payload, hdr.payload_len, state.arg);
		free(payload);
	}
	if (rc) {
		smig_log("restore callback failed (returned %d) on generation %" PRIu64,
			 rc, chosen);
		return SMIG_ERR_APP;
	}
	atomic_store(&state.count, hdr.safepoint);
	atomic_store(&state.last_good, chosen);
	pthread_mutex_lock(&state.lock);
	state.gen = chosen;
	pthread_mutex_unlock(&state.lock);
	smig_debug("restored generation %" PRIu64 " at safe point %" PRIu64 " (%" PRIu64 " bytes)",
		   chosen, hdr.safepoint, hdr.payload_len);
	return SMIG_RESTORED;
}

/* register_both - smig_register() with one of restore and restore_rd */
static int register_both(const char *tag, smig_capture_fn capture,
			 smig_restore_fn restore,
			 smig_restore_reader_fn restore_rd, void *arg)
{
	const char *v;
	uint64_t gen;
	int rc;

	if (!state.initialized) {
		/* Never a silent fresh start of a relaunched rank. */
		if (state.init_error) {
			smig_log("smig_register: smig_init() failed, this rank can neither be captured nor restored");
			return state.init_error;
		}
		smig_log("smig_register() before smig_init()");
		return SMIG_ERR_STATE;
	}
	if (state.registered) {
		smig_log("smig_register() called twice");
		return SMIG_ERR_STATE;
	}
	if (!tag || !*tag || strlen(tag) > SMIG_IMAGE_TAG_LEN) {
		smig_log("smig_register: tag \"%s\": must be 1..%d bytes",
			 tag ? tag : "(null)", SMIG_IMAGE_TAG_LEN);
		return SMIG_ERR_INVAL;
	}
	if (!capture || (!restore && !restore_rd)) {
		smig_log("smig_register: %s callback is NULL",
			 capture ? "restore" : "capture");
		return SMIG_ERR_INVAL;
	}
	strcpy(state.tag, tag);
	state.capture = capture;
	state.restore = restore;
	state.restore_rd = restore_rd;
	state.arg = arg;
	state.registered = true;
	if (!state.active)
		return SMIG_OK;
	read_manifest();

	v = getenv("SLURM_MIGRATE_RESTORE_GEN");
	/* "none": a fresh start, also in a restarted (requeued) job. */
	if (!v || !*v || !strcmp(v, "none")) {
		/* Ready: the balancer captures no step before every rank is. */
		notify_agent("restored", 0, 0, 0, 0, NULL);
		return SMIG_OK;
	}
	if (!strcmp(v, "last")) {
		/* A restart after a failure: the newest good generation. */
		if (!state.ngood) {
			smig_log("SLURM_MIGRATE_RESTORE_GEN=last: no good generation recorded in %s/%s: cannot restore",
				 state.image_dir, SMIG_STORE_MANIFEST);
			return SMIG_ERR_IMAGE;
		}
		gen = state.good[state.ngood - 1];
	} else if (!parse_u64(v, UINT64_MAX, &gen) || gen == 0) {
		smig_log("SLURM_MIGRATE_RESTORE_GEN=%s: not a generation (a number >= 1, last or none)",
			 v);
		return SMIG_ERR_INVAL;
	}
	rc = restore_from(gen);
	/*
	 * Past the restore: the agent tells the balancer, whose watchdog
	 * relaunches a step whose ranks do not all get here (a start that
	 * hangs, doc/faults.md), and which captures no step before all its
	 * ranks are here. A failed restore ends the rank anyway.
	 */
	if (rc == SMIG_RESTORED)
		notify_agent("restored", atomic_load(&state.last_good), 0, 0,
			     0, NULL);
	return rc;
}

SMIG_EXPORT int smig_register(const char *tag, smig_capture_fn capture,
			      smig_restore_fn restore, void *arg)
{
	return register_both(tag, capture, restore, NULL, arg);
}

SMIG_EXPORT int smig_register_reader(const char *tag, smig_capture_fn capture,
				     smig_restore_reader_fn restore,
				     void *arg)
{
	return register_both(tag, capture, NULL, restore, arg);
}

SMIG_EXPORT int smig_write(smig_writer_t *w, const void *data, size_t len)
{
	if (!w || !w->open) {
		smig_log("smig_write() outside a capture callback");
		return SMIG_ERR_STATE;
	}
	if (w->err)
		return w->err;
	if (len == 0)
		return SMIG_OK;
	if (!data) {
		smig_log("smig_write: data is NULL (len %zu)", len);
		w->err = SMIG_ERR_INVAL;
		return w->err;
	}
	if (len > SMIG_IMAGE_MAX_PAYLOAD - w->len) {
		smig_log("smig_write: image larger than %" PRIu64 " bytes",
			 (uint64_t) SMIG_IMAGE_MAX_PAYLOAD);
		w->err = SMIG_ERR_INVAL;
		return w->err;
	}
	if (w->len + len > w->cap) {
		size_t cap = w->cap ? w->cap : 65536;
		unsigned char *nb;

		while (cap < w->len + len)
			cap *= 2;
		nb = realloc(w->buf, cap);
		if (!nb) {
			smig_log("smig_write: out of memory for a %zu byte image",
				 cap);
			w->err = SMIG_ERR_IO;
			return w->err;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return SMIG_OK;
}

/*
 * do_capture - run the capture callback and write the image of gen at k
 * OUT bytes - payload bytes written
 * OUT msg   - empty, or what went wrong
 * RET 0, or the status for the done reply (SMIG_ERR_* or a smig_image code)
 */
static int do_capture(uint64_t gen, uint64_t k, uint64_t *bytes, char *msg,
		      size_t msglen)
{
	struct smig_writer w = { .open = true };
	smig_image_hdr_t hdr;
	struct timespec ts;
	char path[4096], err[ERRBUF_LEN];
	uint64_t t0 = now_ms();
	int rc;

	*bytes = 0;
	msg[0] = '\0';
	if (!state.registered) {
		snprintf(msg, msglen, "no capture callback: smig_register() was not called");
		rc = SMIG_ERR_STATE;
		goto out;
	}
	rc = state.capture(&w, state.arg);
	w.open = false;
	if (rc) {
		snprintf(msg, msglen, "capture callback returned %d", rc);
		rc = SMIG_ERR_APP;
		goto out;
	}
	if (w.err) {
		snprintf(msg, msglen, "smig_write failed: %s",
			 smig_strerror(w.err));
		rc = w.err;
		goto out;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.job_id = state.job_id;
	hdr.step_id = state.step_id;
	hdr.rank = state.me.rank;
	hdr.nranks = state.nranks;
	hdr.generation = gen;
	hdr.safepoint = k;
	hdr.payload_len = w.len;
	clock_gettime(CLOCK_REALTIME, &ts);
	hdr.created_ns = (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
	strcpy(hdr.tag, state.tag);
	err[0] = '\0';
	rc = smig_dir_check(state.image_dir, &state.dir_id, err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "%s", err);
		goto out;
	}
	rc = smig_image_write(state.image_dir, &hdr, w.buf ? (const void *) w.buf : (const void *) "",
			      path, sizeof(path), err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "%s", err[0] ? err :
			 smig_image_strerror(rc));
		goto out;
	}
	*bytes = w.len;
	smig_debug("generation %" PRIu64 ": wrote %s (%zu bytes, safe point %" PRIu64 ") in %" PRIu64 " ms",
		   gen, path, w.len, k, now_ms() - t0);
out:
	if (rc)
		smig_log("generation %" PRIu64 ": capture at safe point %" PRIu64 " failed: %s",
			 gen, k, msg);
	free(w.buf);
	return rc;
}

/*
 * wait_change - wait until the phase or generation changes, or a decision
 * arrives, for at most 2 x timeout_ms. Caller holds state.lock.
 * RET false on timeout (the rank then resumes by itself)
 */
static bool wait_change(phase_t phase, uint64_t gen)
{
	struct timespec dl = deadline_in(2 * (uint64_t) state.timeout_ms);

	while (state.phase == phase && state.gen == gen &&
	       state.decision == DECISION_NONE) {
		if (pthread_cond_timedwait(&state.cond, &state.lock, &dl) ==
		    ETIMEDOUT)
			return !(state.phase == phase && state.gen == gen &&
				 state.decision == DECISION_NONE);
	}
	return true;
}

/* safepoint_slow - something is pending at safe point k */
static int safepoint_slow(uint64_t k)
{
	int ret = SMIG_OK;

	if (state.stopped) {
		smig_log("smig_safepoint() called after SMIG_STOP: exiting with status 0");
		fflush(NULL);
		_exit(0);
	}
	pthread_mutex_lock(&state.lock);
	for (;;) {
		uint64_t gen = state.gen;

		if (state.phase == PHASE_IDLE)
			break;
		if (state.phase == PHASE_PREPARED) {
			if (k < state.pause_at)
				break;
			smig_debug("generation %" PRIu64 ": paused at safe point %" PRIu64 ", waiting for the target",
				   gen, k);
			if (!wait_change(PHASE_PREPARED, gen)) {
				smig_log("generation %" PRIu64 ": no capture target after %u ms at safe point %" PRIu64 ": resuming",
					 gen, 2 * state.timeout_ms, k);
				set_idle();
				break;
			}
			continue;
		}
		if (state.phase == PHASE_CAPTURE) {
			uint64_t target = state.target, bytes = 0;
			char msg[ERRBUF_LEN];
			int status;

			if (k < target)
				break;
			pthread_mutex_unlock(&state.lock);
			if (k > target) {
				/* Only if the balancer chose a target below
				 * our pause_at: we ran past it. */
				snprintf(msg, sizeof(msg),
					 "safe point %" PRIu64 " already passed (at %" PRIu64 ")",
					 target, k);
				smig_log("generation %" PRIu64 ": %s", gen,
					 msg);
				status = SMIG_ERR_STATE;
			} else {
				status = do_capture(gen, k, &bytes, msg,
						    sizeof(msg));
			}
			pthread_mutex_lock(&state.lock);
			if (state.phase != PHASE_CAPTURE || state.gen != gen) {
				smig_log("generation %" PRIu64 " was aborted during the capture",
					 gen);
				continue;
			}
			state.phase = PHASE_DONE;
			state.capture_ok = status == 0;
			pthread_mutex_unlock(&state.lock);
			notify_agent("done", gen, 0, status, bytes, msg);
			pthread_mutex_lock(&state.lock);
			continue;
		}
		/* PHASE_DONE: wait for the balancer's decision. */
		if (state.decision == DECISION_NONE &&
		    !wait_change(PHASE_DONE, gen)) {
			smig_log("generation %" PRIu64 ": no commit or abort after %u ms: resuming",
				 gen, 2 * state.timeout_ms);
			set_idle();
			break;
		}
		if (state.phase != PHASE_DONE || state.gen != gen)
			continue;	/* aborted */
		if (!state.capture_ok) {
			/* Nothing is lost: never stop without our image. */
			smig_log("generation %" PRIu64 ": commit although this rank's capture failed: ignored, running on",
				 gen);
		} else {
			atomic_store(&state.last_good, gen);
			if (state.decision == DECISION_COMMIT_STOP) {
				state.stopped = true;
				ret = SMIG_STOP;
			}
			smig_debug("generation %" PRIu64 ": committed%s", gen,
				   ret == SMIG_STOP ? ", stopping" : "");
		}
		set_idle();
		break;
	}
	pthread_mutex_unlock(&state.lock);
	return ret;
}

SMIG_EXPORT int smig_safepoint(void)
{
	uint64_t k;

	if (!state.active)
		return SMIG_OK;
	k = atomic_fetch_add(&state.count, 1) + 1;
	if (progress)
		atomic_store_explicit(progress, k, memory_order_relaxed);
	if (!atomic_load(&state.pending))
		return SMIG_OK;
	return safepoint_slow(k);
}

SMIG_EXPORT uint64_t smig_generation(void)
{
	return atomic_load(&state.last_good);
}

SMIG_EXPORT int smig_finalize(void)
{
	pmix_status_t rc;
	int ret = SMIG_OK;

	if (!state.initialized) {
		if (state.init_error)
			return SMIG_OK;	/* reported by smig_init() */
		smig_log("smig_finalize() without smig_init()");
		return SMIG_ERR_STATE;
	}
	state.initialized = false;
	state.registered = false;
	if (!state.active)
		return SMIG_OK;

	rc = PMIx_Deregister_event_handler(state.evhdlr, NULL, NULL);
	if (rc != PMIX_SUCCESS) {
		smig_log("PMIx_Deregister_event_handler failed: %s",
			 PMIx_Error_string(rc));
		ret = SMIG_ERR_PMIX;
	}
	pthread_mutex_lock(&state.lock);
	if (state.phase != PHASE_IDLE)
		smig_log("finalizing while generation %" PRIu64 " is being captured: the balancer will time out and abort it",
			 state.gen);
	set_idle();
	pthread_mutex_unlock(&state.lock);
	pthread_cond_destroy(&state.cond);
	free(state.image_dir);
	state.image_dir = NULL;
	if (progress) {
		void *p = (void *) progress;

		progress = NULL;
		munmap(p, sizeof(uint64_t));
	}
	/* Drops our reference; Open MPI's keeps PMIx up until MPI_Finalize. */
	rc = PMIx_Finalize(NULL, 0);
	if (rc != PMIX_SUCCESS) {
		smig_log("PMIx_Finalize failed: %s", PMIx_Error_string(rc));
		ret = SMIG_ERR_PMIX;
	}
	/* After SMIG_STOP a further smig_safepoint() still exits the rank. */
	state.active = state.stopped;
	return ret;
}

SMIG_EXPORT const char *smig_strerror(int code)
{
	switch (code) {
	case SMIG_OK:
		return "success";
	case SMIG_RESTORED:
		return "state restored from an image";
	case SMIG_STOP:
		return "captured for a move: finalize and exit";
	case SMIG_ERR_INVAL:
		return "invalid argument";
	case SMIG_ERR_STATE:
		return "call out of order";
	case SMIG_ERR_PMIX:
		return "PMIx unavailable or failed";
	case SMIG_ERR_IMAGE:
		return "no valid image to restore from";
	case SMIG_ERR_IO:
		return "input/output or memory error";
	case SMIG_ERR_APP:
		return "the application's callback failed";
	default:
		return "unknown slurm-migrate code";
	}
}
