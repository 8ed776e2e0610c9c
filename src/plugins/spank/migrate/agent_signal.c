/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * agent_signal.c - the node agent's capture=signal:SIG host, in slurmstepd:
 * no PMIx events, no safe points. It answers the engine's PREPARE itself,
 * signals the ranks on CAPTURE and turns the checkpoint files they rename
 * into place into images (sig_capture(), sig_poll()); a relaunched rank
 * counts as past its restore once it has read the file task_init wrote for
 * it (sig_watch_start(), sig_watch_poll(): inotify), which puts these steps
 * under the relaunch watchdog too (doc/design.md, "Capture by signal").
 *
 * Threads: agent_signal_start() and _stop() run in slurmstepd's main thread
 * while the agent thread is not running; everything else in the agent
 * thread.
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <slurm/spank.h>

#include "agent_signal.h"
#include "smig_log.h"
#include "spank_migrate.h"

#define CTX SMIG_CTX_NODE(smig_spank.job_id, smig_spank.step_id, \
			  sc.store->node)

static struct {
	smig_agent_t *engine;	/* borrowed from the agent */
	const smig_agent_store_t *store; /* borrowed: dir, ranks, node */
	uint32_t timeout_ms;	/* PREPARE's timeout_ms */
	int64_t deadline;	/* monotonic us; 0: no signal capture */
	bool *done;		/* per index of ranks[]: DONE sent */
	int watch_fd;		/* inotify on the image directory, -1: none */
	uint64_t restore_gen;	/* the generation the tasks restore */
	bool *read;		/* per index of ranks[]: file read */
	uint32_t nread;
} sc = { .watch_fd = -1 };

/*
 * sig_capture - capture=signal:SIG, CAPTURE of gen: remove each local
 * rank's old checkpoint file and send it the signal; sig_poll() waits for
 * the new files
 */
static void sig_capture(uint64_t gen)
{
	int sig = smig_spank.req.capture_signal;
	char ckpt[PATH_MAX], msg[PATH_MAX + 64];

	g_free(sc.done);
	sc.done = g_new0(bool, sc.store->nranks);
	sc.deadline = g_get_monotonic_time() +
			     1000 * (int64_t) sc.timeout_ms;
	for (uint32_t i = 0; i < sc.store->nranks; i++) {
		uint32_t rank = sc.store->ranks[i];
		pid_t pid = smig_sample_pid(rank);

		smig_agent_store_ckpt_path(sc.store, ckpt, sizeof(ckpt),
					   rank);
		if (unlink(ckpt) < 0 && errno != ENOENT) {
			snprintf(msg, sizeof(msg), "%s: cannot remove the previous checkpoint: %s",
				 ckpt, g_strerror(errno));
		} else if (pid <= 0) {
			snprintf(msg, sizeof(msg), "rank %u: no task process known on node %s",
				 rank, sc.store->node);
		} else if (kill(pid, sig) < 0) {
			snprintf(msg, sizeof(msg), "rank %u pid %d: kill(%s): %s",
				 rank, (int) pid, strsignal(sig),
				 g_strerror(errno));
		} else {
			continue;
		}
		smig_cerror(CTX, "generation=%" PRIu64 ": %s", gen, msg);
		sc.done[i] = true;
		smig_agent_done(sc.engine, rank, gen, -EIO, 0, msg);
	}
}

/*
 * sig_poll - capture=signal: wrap the checkpoint files that appeared; at
 * the deadline, a DONE with an error for every rank still missing
 */
static void sig_poll(void)
{
	uint64_t gen = smig_agent_capture_gen(sc.engine);
	bool late = g_get_monotonic_time() >= sc.deadline;
	char ckpt[PATH_MAX], errbuf[PATH_MAX + 128];
	bool all = true;
	struct stat st;

	for (uint32_t i = 0; i < sc.store->nranks && sc.deadline; i++) {
		uint32_t rank = sc.store->ranks[i];
		int rc;

		if (sc.done[i])
			continue;
		smig_agent_store_ckpt_path(sc.store, ckpt, sizeof(ckpt),
					   rank);
		if (lstat(ckpt, &st) < 0 && !late) {
			all = false;
			continue;
		}
		if (lstat(ckpt, &st) < 0) {
			snprintf(errbuf, sizeof(errbuf), "%s: no checkpoint file %u ms after %s",
				 ckpt, sc.timeout_ms,
				 strsignal(smig_spank.req.capture_signal));
			rc = -ETIMEDOUT;
		} else {
			rc = smig_agent_store_wrap(sc.store, rank, gen,
						   ckpt, errbuf,
						   sizeof(errbuf));
		}
		if (rc < 0)
			smig_cerror(CTX, "rank=%u generation=%" PRIu64 ": capture by signal failed: %s",
				    rank, gen, errbuf);
		sc.done[i] = true;
		smig_agent_done(sc.engine, rank, gen, rc, 0,
				rc < 0 ? errbuf : "");
	}
	if (all)
		sc.deadline = 0;
}

/* sig_stop - capture=signal: COMMIT stop=true, the ranks cannot return */
static void sig_stop(void)
{
	for (uint32_t i = 0; i < sc.store->nranks; i++) {
		pid_t pid = smig_sample_pid(sc.store->ranks[i]);

		if (pid > 0 && kill(pid, SIGKILL) < 0 && errno != ESRCH)
			smig_cerror(CTX, "rank=%u pid %d: kill(SIGKILL) after the capture: %s",
				    sc.store->ranks[i], (int) pid,
				    g_strerror(errno));
	}
}

/* sig_notify - capture=signal: the engine's op, without PMIx */
static void sig_notify(smig_agent_op_t op, uint64_t gen, uint64_t arg)
{
	switch (op) {
	case SMIG_AGENT_PREPARE:
		/* No safe points: the application picks its own moment. */
		sc.timeout_ms = (uint32_t) arg;
		sc.deadline = 0;
		for (uint32_t i = 0; i < sc.store->nranks; i++)
			smig_agent_count(sc.engine, sc.store->ranks[i], gen, 0);
		break;
	case SMIG_AGENT_CAPTURE:
		sig_capture(gen);
		break;
	case SMIG_AGENT_COMMIT:
		sc.deadline = 0;
		if (arg)
			sig_stop();
		break;
	default:
		sc.deadline = 0;
		break;
	}
}

/*
 * sig_watch_start - capture=signal, a step that restores a generation: watch
 * the image directory for the tasks' reads of their checkpoint files
 * (task_init writes each one, under another name, before the task starts;
 * the application reads it when it restores). A rank whose file was read is
 * past its restore: RESTORED, which ends the relaunch watchdog's watch.
 * Without the watch (no inotify) the watchdog relaunches the step after
 * MigrateRestoreTimeout, so a failure here is logged as an error.
 */
static void sig_watch_start(spank_t sp)
{
	char val[64] = "", errbuf[PATH_MAX + 128] = "";
	uint64_t gen = 0;

	if (smig_spank.req.capture != SMIG_CAPTURE_SIGNAL ||
	    !smig_spank.image_dir)
		return;
	if (spank_getenv(sp, "SLURM_MIGRATE_RESTORE_GEN", val, sizeof(val)) !=
	    ESPANK_SUCCESS ||
	    smig_agent_store_restore_gen(sc.store, val, &gen, errbuf,
					 sizeof(errbuf)) < 0 || !gen)
		return;	/* a fresh start, or task_init reports the error */
	sc.watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (sc.watch_fd < 0 ||
	    inotify_add_watch(sc.watch_fd, sc.store->dir,
			      IN_CLOSE_NOWRITE | IN_CLOSE_WRITE) < 0) {
		smig_cerror(CTX, "%s: inotify: %s; the ranks of this node cannot report their restore of generation %" PRIu64 " (the relaunch watchdog will end the step)",
			    sc.store->dir, g_strerror(errno), gen);
		if (sc.watch_fd >= 0)
			close(sc.watch_fd);
		sc.watch_fd = -1;
		return;
	}
	sc.restore_gen = gen;
	sc.read = g_new0(bool, sc.store->nranks ? sc.store->nranks : 1);
	sc.nread = 0;
}

/* sig_watch_stop - the end of the watch of sig_watch_start() */
static void sig_watch_stop(void)
{
	if (sc.watch_fd >= 0)
		close(sc.watch_fd);
	sc.watch_fd = -1;
	g_clear_pointer(&sc.read, g_free);
	sc.nread = 0;
}

/* sig_watch_read - a task closed "rank<N>.ckpt": rank N is past its restore */
static void sig_watch_read(const char *name)
{
	char want[32];

	if (!g_str_has_prefix(name, "rank") || !g_str_has_suffix(name, ".ckpt"))
		return;
	for (uint32_t i = 0; i < sc.store->nranks; i++) {
		uint32_t rank = sc.store->ranks[i];

		snprintf(want, sizeof(want), "rank%u.ckpt", rank);
		if (strcmp(name, want) || sc.read[i])
			continue;
		sc.read[i] = true;
		sc.nread++;
		smig_cverbose(CTX, "rank=%u: read its checkpoint file of generation %" PRIu64,
			      rank, sc.restore_gen);
		smig_agent_restored(sc.engine, rank,
				    sc.restore_gen);
	}
}

/* sig_watch_poll - the watch's events so far (agent thread) */
static void sig_watch_poll(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;

	while (sc.watch_fd >= 0 &&
	       (n = read(sc.watch_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;
		     p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *) p;
			if (ev->len)
				sig_watch_read(ev->name);
		}
		if (sc.nread == sc.store->nranks)
			sig_watch_stop();
	}
}

void agent_signal_start(spank_t sp, smig_agent_t *engine,
			const smig_agent_store_t *store)
{
	sc.engine = engine;
	sc.store = store;
	sig_watch_start(sp);
}

int agent_signal_timeout(int left)
{
	/* Look for the checkpoint files every 20 ms ... */
	if (sc.deadline)
		left = left < 0 ? 20 : MIN(left, 20);
	/* ... and for the restoring tasks' reads every 50 ms. */
	if (sc.watch_fd >= 0)
		left = left < 0 ? 50 : MIN(left, 50);
	return left;
}

void agent_signal_poll(void)
{
	if (sc.deadline && smig_agent_capture_gen(sc.engine))
		sig_poll();
	sig_watch_poll();
}

void agent_signal_notify(smig_agent_op_t op, uint64_t gen, uint64_t arg)
{
	sig_notify(op, gen, arg);
}

void agent_signal_stop(void)
{
	g_clear_pointer(&sc.done, g_free);
	sc.deadline = 0;
	sig_watch_stop();
	sc.engine = NULL;
	sc.store = NULL;
}
