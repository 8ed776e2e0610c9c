/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_capture.c - libsmig's slow path of a safe point: pause at pause_at,
 * run the capture callback at the target (smig_write()), write the image,
 * reply done and wait for commit or abort; doc/design.md, "The capture
 * protocol"
 *
 * Runs in the thread that calls smig_safepoint(). No PMIx call is made
 * with st->lock held.
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "smig_int.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* deadline_in - CLOCK_MONOTONIC time ms from now, for st->cond */
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

struct smig_writer {
	smig_capture_info_t info;	/* smig_capture_info() */
	smig_lib_t *st;
	unsigned char *buf;
	size_t len;
	size_t cap;
	int err;		/* first error of smig_write(), 0 if none */
	bool open;		/* only inside the capture callback */
	bool path_given;	/* smig_capture_path(): path is ours */
	char path[4096];	/* "<dir>/rank<R>.g<G>.img.tmp.ckpt" */
	int file_fd;		/* smig_capture_file(), -1: none */
	char file[4096];	/* its name, for messages */
};

SMIG_EXPORT int smig_write(smig_writer_t *w, const void *data, size_t len)
{
	if (!w || !w->open) {
		smig_log("smig_write() outside a capture callback");
		return SMIG_ERR_STATE;
	}
	if (w->err)
		return w->err;
	if (w->file_fd >= 0) {
		smig_log("smig_write() after smig_capture_file(): a capture is either bytes or one file");
		w->err = SMIG_ERR_STATE;
		return w->err;
	}
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

SMIG_EXPORT const char *smig_capture_path(smig_writer_t *w)
{
	smig_lib_t *st;
	int n;

	if (!w || !w->open) {
		smig_log("smig_capture_path() outside a capture callback");
		return NULL;
	}
	if (w->path_given)
		return w->path;
	st = w->st;
	n = snprintf(w->path, sizeof(w->path),
		     "%s/rank%u.g%" PRIu64 ".img.tmp.ckpt", st->image_dir,
		     (unsigned) st->me.rank, w->info.generation);
	if (n < 0 || (size_t) n >= sizeof(w->path)) {
		smig_log("smig_capture_path: %s: path too long", st->image_dir);
		return NULL;
	}
	/* Left by a capture of this generation that died: not the app's. */
	if (unlink(w->path) < 0 && errno != ENOENT) {
		smig_log("smig_capture_path: %s: cannot remove the old file: %s",
			 w->path, strerror(errno));
		return NULL;
	}
	w->path_given = true;
	return w->path;
}

SMIG_EXPORT int smig_capture_file(smig_writer_t *w, const char *path)
{
	struct stat s;
	int fd;

	if (!w || !w->open) {
		smig_log("smig_capture_file() outside a capture callback");
		return SMIG_ERR_STATE;
	}
	if (!path) {
		smig_log("smig_capture_file: path is NULL");
		return SMIG_ERR_INVAL;
	}
	if (w->file_fd >= 0 || w->len) {
		smig_log("smig_capture_file(\"%s\"): %s", path,
			 w->file_fd >= 0 ? "a file was already handed over (one per capture)" :
			 "after smig_write(): a capture is either bytes or one file");
		return SMIG_ERR_STATE;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		smig_log("smig_capture_file: %s: %s", path,
			 e == ELOOP ? "a symbolic link (refused)" : strerror(e));
		return e == ELOOP ? SMIG_ERR_INVAL : SMIG_ERR_IO;
	}
	if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) ||
	    s.st_uid != geteuid() ||
	    (uint64_t) s.st_size > SMIG_IMAGE_MAX_PAYLOAD) {
		smig_log("smig_capture_file: %s: not a regular file of this user of at most %" PRIu64 " bytes",
			 path, (uint64_t) SMIG_IMAGE_MAX_PAYLOAD);
		close(fd);
		return SMIG_ERR_INVAL;
	}
	snprintf(w->file, sizeof(w->file), "%s", path);
	w->file_fd = fd;
	return SMIG_OK;
}

SMIG_EXPORT int smig_capture_info(const smig_writer_t *w,
				  smig_capture_info_t *info)
{
	if (!w || !w->open || !info) {
		smig_log("smig_capture_info() %s",
			 info ? "outside a capture callback" : "with info NULL");
		return info ? SMIG_ERR_STATE : SMIG_ERR_INVAL;
	}
	*info = w->info;
	return SMIG_OK;
}

/*
 * capture_regions - the image of the registered regions (and the callback's
 * bytes, w) at this safe point: from the pre-copy of this generation when
 * there is one for these regions (only the blocks changed since are
 * written), else all of it (doc/design.md, "Pre-copy")
 * IN/OUT hdr - fields set; payload_len set here
 * RET 0, or the status for the done reply with a message in msg
 */
static int capture_regions(smig_lib_t *st, struct smig_writer *w,
			   smig_image_hdr_t *hdr, char *path, size_t pathlen,
			   char *msg, size_t msglen)
{
	smig_region_t regs[SMIG_REGION_MAX];
	smig_precopy_stats_t stats;
	smig_precopy_t *pc;
	char err[ERRBUF_LEN] = "";
	size_t n;
	int rc;

	if (w->file_fd >= 0) {
		snprintf(msg, msglen, "smig_capture_file() with memory regions registered: a capture is regions and smig_write() bytes, or one file");
		return SMIG_ERR_STATE;
	}
	pthread_mutex_lock(&st->lock);
	n = st->nregions;
	memcpy(regs, st->regions, n * sizeof(regs[0]));
	pc = st->pc;
	st->pc = NULL;
	pthread_mutex_unlock(&st->lock);
	if (pc && !smig_precopy_same(pc, regs, n, hdr->generation)) {
		smig_precopy_free(pc);
		pc = NULL;
	}
	if (!pc)
		pc = smig_precopy_new(st->image_dir, hdr, regs, n, 0, err,
				      sizeof(err));
	if (!pc) {
		snprintf(msg, msglen, "%s", err);
		return SMIG_ERR_IO;
	}
	rc = smig_precopy_finish(pc, hdr, w->buf, w->len, &stats, hdr, path,
				 pathlen, err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "%s", err[0] ? err :
			 smig_image_strerror(rc));
		return rc;
	}
	smig_debug("generation %" PRIu64 ": regions: %" PRIu64 " bytes, %" PRIu64 " written at the safe point (%u pre-copy rounds wrote %" PRIu64 ")",
		   hdr->generation, stats.total, stats.at_stop, stats.rounds,
		   stats.copied);
	return 0;
}

/*
 * do_capture - run the capture callback and write the image of gen at k
 * IN  info  - for smig_capture_info()
 * IN  write - false: the generation was aborted, the callback runs (other
 *             ranks may wait for it in a collective) but no image is written
 * OUT bytes - payload bytes written
 * OUT msg   - empty, or what went wrong
 * RET 0, or the status for the done reply (SMIG_ERR_* or a smig_image code)
 */
static int do_capture(smig_lib_t *st, const smig_capture_info_t *info,
		      bool write, uint64_t *bytes, char *msg, size_t msglen)
{
	struct smig_writer w = {
		.info = *info, .st = st, .open = true, .file_fd = -1,
	};
	uint64_t gen = info->generation, k = info->safepoint;
	smig_image_hdr_t hdr;
	struct timespec ts;
	char path[4096], err[ERRBUF_LEN];
	uint64_t t0 = now_ms();
	int rc;

	*bytes = 0;
	msg[0] = '\0';
	if (!st->registered) {
		snprintf(msg, msglen, "no capture callback: smig_register() was not called");
		rc = SMIG_ERR_STATE;
		goto out;
	}
	/* Regions only (smig_register() with no callbacks): no bytes. */
	rc = st->capture ? st->capture(&w, st->arg) : 0;
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
	if (!write) {
		smig_debug("generation %" PRIu64 ": capture callback ran at safe point %" PRIu64 " after an abort: no image",
			   gen, k);
		goto out;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.job_id = st->job_id;
	hdr.step_id = st->step_id;
	hdr.rank = st->me.rank;
	hdr.nranks = st->nranks;
	hdr.generation = gen;
	hdr.safepoint = k;
	hdr.payload_len = w.len;
	if (w.file_fd >= 0) {
		struct stat s;

		if (fstat(w.file_fd, &s) < 0) {
			snprintf(msg, msglen, "%.300s: fstat: %s", w.file,
				 strerror(errno));
			rc = SMIG_ERR_IO;
			goto out;
		}
		hdr.payload_len = (uint64_t) s.st_size;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	hdr.created_ns = (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
	strcpy(hdr.tag, st->tag);
	err[0] = '\0';
	rc = smig_dir_check(st->image_dir, &st->dir_id, err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "%s", err);
		goto out;
	}
	if (st->nregions) {
		rc = capture_regions(st, &w, &hdr, path, sizeof(path), msg,
				     msglen);
		if (rc)
			goto out;
	} else if (w.file_fd >= 0)
		/* In the kernel and summed in one pass (smig_image.h). */
		rc = smig_image_write_file(st->image_dir, &hdr, w.file_fd,
					   w.file, (uint32_t) -1, 0, path,
					   sizeof(path), err, sizeof(err));
	else
		rc = smig_image_write(st->image_dir, &hdr,
				      w.buf ? (const void *) w.buf :
					      (const void *) "",
				      path, sizeof(path), err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "%s", err[0] ? err :
			 smig_image_strerror(rc));
		goto out;
	}
	*bytes = hdr.payload_len;
	smig_debug("generation %" PRIu64 ": wrote %s (%" PRIu64 " bytes%s%s, safe point %" PRIu64 ") in %" PRIu64 " ms",
		   gen, path, hdr.payload_len, w.file_fd >= 0 ? " of " : "",
		   w.file_fd >= 0 ? w.file : "", k, now_ms() - t0);
out:
	if (rc)
		smig_log("generation %" PRIu64 ": capture at safe point %" PRIu64 " failed: %s",
			 gen, k, msg);
	if (w.file_fd >= 0)
		close(w.file_fd);
	/* The file of smig_capture_path() is ours: handed over or not. */
	if (w.path_given && unlink(w.path) < 0 && errno != ENOENT)
		smig_log("generation %" PRIu64 ": %s: cannot remove: %s", gen,
			 w.path, strerror(errno));
	free(w.buf);
	return rc;
}

/*
 * wait_change - wait until the phase or generation changes, or a decision
 * or an abort arrives. Caller holds st->lock. Never gives up: a rank
 * resumes only on its agent's word (commit or abort), which always comes
 * (from the balancer, from the agent when it loses the balancer, or the
 * step ends); doc/design.md, "Collective contract". After 2 x timeout_ms
 * one line says why it still waits.
 */
static void wait_change(smig_lib_t *st, phase_t phase, uint64_t gen,
			const char *what)
{
	struct timespec dl = deadline_in(2 * (uint64_t) st->timeout_ms);
	bool said = false;

	while (st->phase == phase && st->gen == gen &&
	       st->decision == DECISION_NONE && !st->aborted) {
		if (said) {
			pthread_cond_wait(&st->cond, &st->lock);
			continue;
		}
		if (pthread_cond_timedwait(&st->cond, &st->lock, &dl) ==
		    ETIMEDOUT) {
			smig_log("generation %" PRIu64 ": no %s after %u ms: still waiting (a rank never resumes on its own while another may be in its capture callback)",
				 gen, what, 2 * st->timeout_ms);
			said = true;
		}
	}
}

/*
 * run_capture - safe point k is the target of gen: run the callback (also
 * after an abort: the other ranks run theirs), write the image unless
 * aborted, reply done unless aborted. Caller holds st->lock; it is dropped
 * around the callback and the reply.
 */
static void run_capture(smig_lib_t *st, uint64_t gen, uint64_t k)
{
	smig_capture_info_t info = {
		.generation = gen, .safepoint = k, .reason = st->reason,
		.will_stop = st->will_stop,
	};
	uint64_t target = st->target, bytes = 0;
	bool write = !st->aborted;
	char msg[ERRBUF_LEN];
	int status;

	pthread_mutex_unlock(&st->lock);
	if (k > target) {
		/* Only if the balancer chose a target below our pause_at: we
		 * ran past it. */
		snprintf(msg, sizeof(msg),
			 "safe point %" PRIu64 " already passed (at %" PRIu64 ")",
			 target, k);
		smig_log("generation %" PRIu64 ": %s", gen, msg);
		status = SMIG_ERR_STATE;
	} else {
		status = do_capture(st, &info, write, &bytes, msg,
				    sizeof(msg));
	}
	pthread_mutex_lock(&st->lock);
	if (st->phase != PHASE_CAPTURE || st->gen != gen) {
		smig_log("generation %" PRIu64 " ended during the capture",
			 gen);
		return;
	}
	if (st->aborted) {
		if (write)
			smig_log("generation %" PRIu64 " was aborted during the capture",
				 gen);
		smig_lib_set_idle(st);
		return;
	}
	st->phase = PHASE_DONE;
	st->capture_ok = status == 0;
	pthread_mutex_unlock(&st->lock);
	smig_lib_notify_agent(st, "done", gen, 0, status, bytes, msg);
	pthread_mutex_lock(&st->lock);
}

/* smig_lib_safepoint_slow - something is pending at safe point k */
int smig_lib_safepoint_slow(smig_lib_t *st, uint64_t k)
{
	int ret = SMIG_OK;

	if (st->stopped) {
		smig_log("smig_safepoint() called after SMIG_STOP: exiting with status 0");
		fflush(NULL);
		_exit(0);
	}
	pthread_mutex_lock(&st->lock);
	for (;;) {
		uint64_t gen = st->gen;

		/* Pre-copying: nothing pending for this safe point yet. */
		if (st->phase == PHASE_IDLE || st->phase == PHASE_PRECOPY)
			break;
		if (st->phase == PHASE_PREPARED) {
			if (k < st->pause_at)
				break;
			smig_debug("generation %" PRIu64 ": paused at safe point %" PRIu64 ", waiting for the target",
				   gen, k);
			wait_change(st, PHASE_PREPARED, gen, "capture target");
			continue;
		}
		if (st->phase == PHASE_CAPTURE) {
			if (k < st->target)
				break;
			run_capture(st, gen, k);
			continue;
		}
		/* PHASE_DONE: wait for the balancer's decision. */
		if (st->decision == DECISION_NONE)
			wait_change(st, PHASE_DONE, gen, "commit or abort");
		if (st->phase != PHASE_DONE || st->gen != gen)
			continue;	/* aborted */
		if (!st->capture_ok) {
			/* Nothing is lost: never stop without our image. */
			smig_log("generation %" PRIu64 ": commit although this rank's capture failed: ignored, running on",
				 gen);
		} else {
			atomic_store(&st->last_good, gen);
			if (st->decision == DECISION_COMMIT_STOP) {
				st->stopped = true;
				ret = SMIG_STOP;
			}
			smig_debug("generation %" PRIu64 ": committed%s", gen,
				   ret == SMIG_STOP ? ", stopping" : "");
		}
		smig_lib_set_idle(st);
		break;
	}
	pthread_mutex_unlock(&st->lock);
	return ret;
}
