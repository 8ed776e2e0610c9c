/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig.c - slurm-migrate application library: PMIx event handler, safe
 *	    points, capture and restore of recovery images
 *
 * This file holds the API (smig_init(), smig_register(), smig_safepoint(),
 * smig_finalize()), the process's one state and the log; the events, the
 * capture and the restore have files of their own (listed in smig_int.h),
 * which work on the state this file passes them.
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
 * Threads: the event handler runs in PMIx's progress thread (without PMIx,
 * MPICH: the reader thread of the agent's socket, smig_chan.c). It only
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

#include "smig_int.h"

#define LOG_LINE_MAX		1024

/* Pre-copy writes at most this many MiB/s (SLURM_MIGRATE_PRECOPY_RATE). */
#define PRECOPY_DEFAULT_RATE_MIB	256

/* The one instance; the other files get a pointer to it. */
static smig_lib_t state = {
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
/* SLURM_MIGRATE_DEBUG: set in smig_init() before the handler runs. */
static bool log_debug;

/* smig_log - one line to stderr, "smig: rank R: ...", written at once */
void smig_log(const char *fmt, ...)
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

/* smig_log_debugging - SLURM_MIGRATE_DEBUG was set (smig_init()) */
bool smig_log_debugging(void)
{
	return log_debug;
}

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

/*
 * request_item - the value of key in the canonical request text
 * (SLURM_MIGRATE, "mode=auto,capture=callback,precopy=on"): a new string,
 * or NULL if the key is not there
 */
static char *request_item(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t) (end - p) : strlen(p);

		if (len > klen && !strncmp(p, key, klen) && p[klen] == '=')
			return strndup(p + klen + 1, len - klen - 1);
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

/*
 * precopy_config - precopy=on|off of the request (the SPANK plugin refused
 * any other value at srun time) and SLURM_MIGRATE_PRECOPY_RATE (MiB/s)
 * RET SMIG_OK, or SMIG_ERR_INVAL (logged)
 */
static int precopy_config(smig_lib_t *st)
{
	char *v = request_item(getenv("SLURM_MIGRATE"), "precopy");
	const char *rate = getenv("SLURM_MIGRATE_PRECOPY_RATE");
	uint64_t mib = PRECOPY_DEFAULT_RATE_MIB;

	st->precopy_on = false;
	if (v && strcmp(v, "on") && strcmp(v, "off")) {
		smig_log("SLURM_MIGRATE: precopy=%s: not on or off", v);
		free(v);
		return SMIG_ERR_INVAL;
	}
	st->precopy_on = v && !strcmp(v, "on");
	free(v);
	if (rate && !parse_u64(rate, UINT64_C(1) << 20, &mib)) {
		smig_log("SLURM_MIGRATE_PRECOPY_RATE=%s: not a number of MiB/s in 0..%" PRIu64 " (0: no limit)",
			 rate, UINT64_C(1) << 20);
		return SMIG_ERR_INVAL;
	}
	st->precopy_rate = mib << 20;
	return SMIG_OK;
}

SMIG_EXPORT int smig_init(void)
{
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
	log_debug = dbg && *dbg && strcmp(dbg, "0");

	/* PMIx, or the node agent's socket (no PMIx: MPICH). */
	if (smig_lib_attach(&state) != SMIG_OK) {
		state.init_error = SMIG_ERR_PMIX;
		return SMIG_ERR_PMIX;
	}
	atomic_store(&log_rank, state.me.rank);

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
	if (precopy_config(&state) != SMIG_OK) {
		pthread_cond_destroy(&state.cond);
		free(state.image_dir);
		state.image_dir = NULL;
		goto out_finalize_inval;
	}
	/* Before the events: on_prepare() looks at precopy_started. */
	if (state.precopy_on)
		smig_lib_precopy_start(&state);

	if (smig_lib_listen(&state) != SMIG_OK) {
		smig_lib_precopy_stop(&state);
		pthread_cond_destroy(&state.cond);
		free(state.image_dir);
		state.image_dir = NULL;
		goto out_finalize;
	}
	state.initialized = true;
	state.active = true;
	progress_open();
	smig_debug("attached: nspace=%s ranks=%u job=%u step=%u dir=%s",
		   state.me.nspace, state.nranks, state.job_id, state.step_id,
		   state.image_dir);
	return SMIG_OK;

out_finalize_inval:
	state.init_error = SMIG_ERR_INVAL;
	smig_lib_detach(&state, false);
	return SMIG_ERR_INVAL;
out_finalize:
	state.init_error = SMIG_ERR_PMIX;
	smig_lib_detach(&state, false);
	return SMIG_ERR_PMIX;
}

/*
 * smig_lib_restore_gen - SLURM_MIGRATE_RESTORE_GEN as a generation
 * OUT gen - 0: a fresh start ("none" or unset)
 * RET SMIG_OK, or an error (logged)
 */
int smig_lib_restore_gen(smig_lib_t *st, uint64_t *gen)
{
	const char *v = getenv("SLURM_MIGRATE_RESTORE_GEN");

	*gen = 0;
	/* "none": a fresh start, also in a restarted (requeued) job. */
	if (!v || !*v || !strcmp(v, "none"))
		return SMIG_OK;
	if (!strcmp(v, "last")) {
		/* A restart after a failure: the newest good generation. */
		if (!st->ngood) {
			smig_log("SLURM_MIGRATE_RESTORE_GEN=last: no good generation recorded in %s/%s: cannot restore",
				 st->image_dir, SMIG_STORE_MANIFEST);
			return SMIG_ERR_IMAGE;
		}
		*gen = st->good[st->ngood - 1];
		return SMIG_OK;
	}
	if (!parse_u64(v, UINT64_MAX, gen) || *gen == 0) {
		smig_log("SLURM_MIGRATE_RESTORE_GEN=%s: not a generation (a number >= 1, last or none)",
			 v);
		*gen = 0;
		return SMIG_ERR_INVAL;
	}
	return SMIG_OK;
}

/*
 * restore_now - restore the generation the environment names (or start
 * afresh) and tell the agent this rank is ready
 * IN collective - smig_restore(): the same answer on every rank
 * RET SMIG_OK (fresh), SMIG_RESTORED, or an error
 */
static int restore_now(bool collective)
{
	uint64_t gen;
	int rc;

	rc = smig_lib_restore_gen(&state, &gen);
	if (rc) {
		/* The others may have a generation: never leave them in the
		 * fence (they fail: "differs between ranks"). */
		if (collective && getenv("SLURM_MIGRATE_RESTORE_GEN"))
			smig_lib_restore_refuse(&state);
		return rc;
	}
	if (!gen) {
		/* Ready: the balancer captures no step before every rank is. */
		smig_lib_notify_agent(&state, "restored", 0, 0, 0, 0, NULL);
		return SMIG_OK;
	}
	rc = smig_lib_restore_from(&state, gen, collective);
	/*
	 * Past the restore: the agent tells the balancer, whose watchdog
	 * relaunches a step whose ranks do not all get here (a start that
	 * hangs, doc/faults.md), and which captures no step before all its
	 * ranks are here. A failed restore ends the rank anyway.
	 */
	if (rc == SMIG_RESTORED)
		smig_lib_notify_agent(&state, "restored",
				      atomic_load(&state.last_good), 0, 0, 0,
				      NULL);
	return rc;
}

SMIG_EXPORT int smig_register_flags(const char *tag, smig_capture_fn capture,
				    smig_restore_fn restore,
				    smig_restore_reader_fn restore_rd,
				    void *arg, unsigned flags)
{
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
	/* Regions only: no callbacks at all (smig_region_register()). */
	if (!capture && !restore && !restore_rd && !state.nregions) {
		smig_log("smig_register: capture and restore callbacks are NULL and no memory region is registered (smig_region_register() first)");
		return SMIG_ERR_INVAL;
	}
	if ((capture || restore || restore_rd) &&
	    (!capture || (!restore && !restore_rd))) {
		smig_log("smig_register: %s callback is NULL",
			 capture ? "restore" : "capture");
		return SMIG_ERR_INVAL;
	}
	if (restore_rd && state.nregions) {
		smig_log("smig_register_reader: memory regions are registered: a streaming restore callback does not mix with regions (use smig_register())");
		return SMIG_ERR_INVAL;
	}
	if (restore && restore_rd) {
		smig_log("smig_register_flags: restore and restore_rd both given: one of them");
		return SMIG_ERR_INVAL;
	}
	if (flags & ~SMIG_RESTORE_LATER) {
		smig_log("smig_register_flags: flags=0x%x: unknown bits 0x%x (SMIG_RESTORE_LATER is 0x%x)",
			 flags, flags & ~SMIG_RESTORE_LATER,
			 SMIG_RESTORE_LATER);
		return SMIG_ERR_INVAL;
	}
	strcpy(state.tag, tag);
	state.capture = capture;
	state.restore = restore;
	state.restore_rd = restore_rd;
	state.arg = arg;
	state.registered = true;
	state.restore_later = flags & SMIG_RESTORE_LATER;
	if (!state.active)
		return SMIG_OK;
	smig_lib_read_manifest(&state);
	if (state.restore_later)
		return SMIG_OK;
	return restore_now(false);
}

SMIG_EXPORT int smig_register(const char *tag, smig_capture_fn capture,
			      smig_restore_fn restore, void *arg)
{
	return smig_register_flags(tag, capture, restore, NULL, arg, 0);
}

SMIG_EXPORT int smig_register_reader(const char *tag, smig_capture_fn capture,
				     smig_restore_reader_fn restore,
				     void *arg)
{
	return smig_register_flags(tag, capture, NULL, restore, arg, 0);
}

SMIG_EXPORT int smig_region_register(const char *name, void *ptr,
				     size_t len)
{
	smig_region_t *r;

	if (!state.initialized) {
		smig_log("smig_region_register(\"%s\") before smig_init()",
			 name ? name : "(null)");
		return state.init_error ? state.init_error : SMIG_ERR_STATE;
	}
	if (!smig_region_name_ok(name)) {
		smig_log("smig_region_register: name \"%s\": must be 1..%d bytes of A-Z a-z 0-9 _ . -",
			 name ? name : "(null)", SMIG_REGION_NAME_LEN);
		return SMIG_ERR_INVAL;
	}
	if (!ptr || !len || (uint64_t) len > SMIG_IMAGE_MAX_PAYLOAD) {
		smig_log("smig_region_register(\"%s\"): %s", name,
			 !ptr ? "ptr is NULL" : "len must be 1 byte to 64 GiB");
		return SMIG_ERR_INVAL;
	}
	if (state.registered && state.restore_rd) {
		smig_log("smig_region_register(\"%s\"): a streaming restore callback (smig_register_reader()) is registered: regions do not mix with it",
			 name);
		return SMIG_ERR_STATE;
	}
	pthread_mutex_lock(&state.lock);
	for (size_t i = 0; i < state.nregions; i++) {
		if (strcmp(state.regions[i].name, name))
			continue;
		pthread_mutex_unlock(&state.lock);
		smig_log("smig_region_register(\"%s\"): a region of this name is registered (smig_region_unregister() it first)",
			 name);
		return SMIG_ERR_INVAL;
	}
	if (state.nregions == SMIG_REGION_MAX) {
		pthread_mutex_unlock(&state.lock);
		smig_log("smig_region_register(\"%s\"): %d regions are registered already (the most)",
			 name, SMIG_REGION_MAX);
		return SMIG_ERR_INVAL;
	}
	/* A pre-copy in progress started from the old list: dropped. */
	smig_lib_precopy_quiesce(&state);
	r = &state.regions[state.nregions++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->ptr = ptr;
	r->len = len;
	pthread_mutex_unlock(&state.lock);
	smig_debug("region \"%s\" registered: %zu bytes", name, len);
	return SMIG_OK;
}

SMIG_EXPORT int smig_region_unregister(const char *name)
{
	size_t i;

	if (!state.initialized) {
		smig_log("smig_region_unregister(\"%s\") before smig_init() or after smig_finalize()",
			 name ? name : "(null)");
		return SMIG_ERR_STATE;
	}
	pthread_mutex_lock(&state.lock);
	for (i = 0; name && i < state.nregions; i++)
		if (!strcmp(state.regions[i].name, name))
			break;
	if (!name || i == state.nregions) {
		pthread_mutex_unlock(&state.lock);
		smig_log("smig_region_unregister(\"%s\"): no region of this name is registered",
			 name ? name : "(null)");
		return SMIG_ERR_INVAL;
	}
	/* No pre-copy reads the memory once this returns. */
	smig_lib_precopy_quiesce(&state);
	memmove(&state.regions[i], &state.regions[i + 1],
		(state.nregions - i - 1) * sizeof(state.regions[0]));
	state.nregions--;
	pthread_mutex_unlock(&state.lock);
	return SMIG_OK;
}

SMIG_EXPORT int smig_restore(void)
{
	if (!state.initialized) {
		if (state.init_error) {
			smig_log("smig_restore: smig_init() failed, this rank can neither be captured nor restored");
			return state.init_error;
		}
		smig_log("smig_restore() before smig_init()");
		return SMIG_ERR_STATE;
	}
	if (!state.registered || !state.restore_later) {
		smig_log("smig_restore() without smig_register_flags(..., SMIG_RESTORE_LATER) before it, or called twice");
		return SMIG_ERR_STATE;
	}
	state.restore_later = false;
	if (!state.active)
		return SMIG_OK;
	return restore_now(true);
}

/* Names of SMIG_REASON_*, as the balancer sends them (smig.reason). */
static const char *const reason_names[] = {
	[SMIG_REASON_UNKNOWN] = "unknown",
	[SMIG_REASON_DRAIN] = "drain",
	[SMIG_REASON_BALANCE] = "balance",
	[SMIG_REASON_PERIODIC] = "periodic",
	[SMIG_REASON_REQUEST] = "request",
	[SMIG_REASON_REQUEUE] = "requeue",
};

SMIG_EXPORT const char *smig_reason_name(int reason)
{
	if (reason < 0 ||
	    reason >= (int) (sizeof(reason_names) / sizeof(reason_names[0])))
		return "unknown";
	return reason_names[reason];
}

/* smig_lib_reason_parse - SMIG_REASON_* of a prepare's smig.reason */
int32_t smig_lib_reason_parse(const char *name)
{
	if (!name)
		return SMIG_REASON_UNKNOWN;
	for (size_t i = 1; i < sizeof(reason_names) / sizeof(reason_names[0]);
	     i++)
		if (!strcmp(name, reason_names[i]))
			return i;
	/* A newer balancer's reason: the callback sees "unknown". */
	smig_debug("prepare with %s=%s: not a reason this library knows",
		   "smig.reason", name);
	return SMIG_REASON_UNKNOWN;
}

SMIG_EXPORT int smig_safepoint(void)
{
	uint64_t k;

	if (!state.active)
		return SMIG_OK;
	if (state.restore_later) {
		smig_log("smig_safepoint() before smig_restore() (smig_register_flags() was given SMIG_RESTORE_LATER)");
		return SMIG_ERR_STATE;
	}
	k = atomic_fetch_add(&state.count, 1) + 1;
	if (progress)
		atomic_store_explicit(progress, k, memory_order_relaxed);
	if (!atomic_load(&state.pending))
		return SMIG_OK;
	return smig_lib_safepoint_slow(&state, k);
}

SMIG_EXPORT uint64_t smig_generation(void)
{
	return atomic_load(&state.last_good);
}

SMIG_EXPORT int smig_finalize(void)
{
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

	/* No event from here on: a reader thread is joined. */
	ret = smig_lib_detach(&state, true);
	smig_lib_precopy_stop(&state);
	pthread_mutex_lock(&state.lock);
	if (state.phase != PHASE_IDLE)
		smig_log("finalizing while generation %" PRIu64 " is being captured: the balancer will time out and abort it",
			 state.gen);
	smig_lib_set_idle(&state);
	pthread_mutex_unlock(&state.lock);
	pthread_cond_destroy(&state.cond);
	free(state.image_dir);
	state.image_dir = NULL;
	if (progress) {
		void *p = (void *) progress;

		progress = NULL;
		munmap(p, sizeof(uint64_t));
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
