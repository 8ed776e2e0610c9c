/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig.h - slurm-migrate application library: recovery images for MPI ranks
 *
 * An MPI program that runs under "srun --mpi=pmix --migrate ..." links
 * -lsmig (pkg-config slurm-migrate) and:
 *
 *	MPI_Init(&argc, &argv);
 *	smig_init();
 *	rc = smig_register("heat", capture, restore, &state);
 *	    rc == SMIG_RESTORED: restore() ran, state is that of a capture
 *	for (;;) {
 *		one_iteration(&state);
 *		if (smig_safepoint() == SMIG_STOP)
 *			break;		    ranks are moving: leave the loop
 *	}
 *	smig_finalize();
 *	MPI_Finalize();
 *
 * A code whose restore needs its own objects, or MPI, registers with
 * smig_register_flags(..., SMIG_RESTORE_LATER) and calls smig_restore() on
 * every rank once they exist: the answer is the same on every rank.
 *
 * Every rank must call smig_safepoint() at the same place of its main loop,
 * once per iteration, outside of any MPI call in progress: the ranks agree
 * on one safe-point count for a capture, so the images of one generation form
 * a consistent set. Outside a --migrate step every call is a cheap no-op.
 * See smig(3).
 *
 * This header includes only <stddef.h> and <stdint.h>.
 */
#ifndef SLURM_MIGRATE_SMIG_H
#define SLURM_MIGRATE_SMIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMIG_API_VERSION 4	/* 3: the file API (smig_capture_path());
				 * 4: memory regions (smig_region_register()) */

/* Results (>= 0) and errors (< 0). */
#define SMIG_OK		0	/* go on */
#define SMIG_RESTORED	1	/* smig_register(): state restored from an image */
#define SMIG_STOP	2	/* smig_safepoint(): captured for a move; finalize and exit 0 */
#define SMIG_ERR_INVAL	(-1)	/* bad argument */
#define SMIG_ERR_STATE	(-2)	/* call out of order (e.g. register before init) */
#define SMIG_ERR_PMIX	(-3)	/* PMIx unavailable or failed */
#define SMIG_ERR_IMAGE	(-4)	/* no valid image to restore from */
#define SMIG_ERR_IO	(-5)	/* a system call failed */
#define SMIG_ERR_APP	(-6)	/* the application's callback failed */

/* Handle through which a capture callback writes its state. */
typedef struct smig_writer smig_writer_t;

/*
 * Capture callback: serialise the state with smig_write() (any number of
 * calls). Return 0 on success, anything else fails the capture (the job
 * keeps running; the previous image stays the good one). It runs on every
 * rank at the same safe point, and may call MPI, collectives included, as
 * long as every rank makes the same calls (also when it fails): no rank
 * skips it once any rank runs it, and no rank leaves its safe point on its
 * own while another may be inside it (smig(3), "Collective contract").
 */
typedef int (*smig_capture_fn)(smig_writer_t *w, void *arg);

/*
 * Restore callback: rebuild the state from the bytes a capture wrote
 * (borrowed for the call). Return 0 on success.
 */
typedef int (*smig_restore_fn)(const void *data, size_t len, void *arg);

/* Handle through which a streaming restore callback reads the state. */
typedef struct smig_reader smig_reader_t;

/*
 * Streaming restore callback (smig_register_reader()): read the len bytes a
 * capture wrote with smig_read(), in pieces of any size, without a buffer
 * of the whole image. Return 0 on success.
 */
typedef int (*smig_restore_reader_fn)(smig_reader_t *r, uint64_t len,
				      void *arg);

/* Why a capture runs (smig_capture_info_t.reason). */
#define SMIG_REASON_UNKNOWN	0	/* an older node agent or balancer */
#define SMIG_REASON_DRAIN	1	/* evacuation: node drained, down, failing */
#define SMIG_REASON_BALANCE	2	/* a balancing move (--migrate=auto) */
#define SMIG_REASON_PERIODIC	3	/* every= */
#define SMIG_REASON_REQUEST	4	/* smig capture, smig move, smig rebalance */
#define SMIG_REASON_REQUEUE	5	/* job scope: the job is requeued */

/* What the capture callback may learn of its capture (smig_capture_info()). */
typedef struct {
	uint64_t generation;	/* the generation being captured (>= 1) */
	uint64_t safepoint;	/* the safe-point count it is taken at */
	int32_t reason;		/* SMIG_REASON_* */
	int32_t will_stop;	/* 1: if every rank succeeds, the ranks stop
				 * after it (a move, a requeue); 0: they go on */
} smig_capture_info_t;

/* Flag of smig_register_flags(): see smig_restore(). */
#define SMIG_RESTORE_LATER	1u

/*
 * smig_init - attach to the step's migration service (after MPI_Init)
 * RET SMIG_OK (also outside --migrate steps), or an error
 */
int smig_init(void);

/*
 * smig_register - give the library the application's callbacks
 * IN tag     - short name stored in images (<= 32 bytes), e.g. "heat"
 * IN capture - serialises the state
 * IN restore - rebuilds it
 * IN arg     - passed to both
 * RET SMIG_OK on a fresh start; SMIG_RESTORED when this rank was relaunched
 *     and restore() has run on its image (the newest generation all ranks
 *     can read: generation g, else the previous good one); an error if this
 *     rank was relaunched but no valid image exists (never a silent fresh
 *     start)
 */
int smig_register(const char *tag, smig_capture_fn capture,
		  smig_restore_fn restore, void *arg);

/*
 * smig_register_reader - smig_register() for large state: the restore
 * callback streams the image with smig_read() instead of getting one
 * buffer. The image is verified (header and payload checksums, job, rank,
 * generation, tag) before the callback runs, and the bytes it reads are
 * checksummed again as they arrive: a file that changed in between makes
 * the last smig_read() and this call fail (SMIG_ERR_IMAGE). Bytes the
 * callback leaves unread are read and checked after it returns.
 * RET as smig_register()
 */
int smig_register_reader(const char *tag, smig_capture_fn capture,
			 smig_restore_reader_fn restore, void *arg);

/*
 * smig_register_flags - smig_register() (restore != NULL) or
 * smig_register_reader() (restore_rd != NULL; give exactly one)
 * IN flags - 0, or SMIG_RESTORE_LATER: nothing is restored here; the rank
 *            calls smig_restore() later, on every rank, also on a fresh
 *            start
 * RET as smig_register(); with SMIG_RESTORE_LATER SMIG_OK or an error
 */
int smig_register_flags(const char *tag, smig_capture_fn capture,
			smig_restore_fn restore,
			smig_restore_reader_fn restore_rd, void *arg,
			unsigned flags);

/*
 * smig_restore - the restore of smig_register_flags(SMIG_RESTORE_LATER),
 * where the application's objects exist. Collective: every rank of the
 * step calls it; the restore callback may call MPI (collectives included).
 * The answer is the same on every rank: all ranks restored the same
 * generation, or all started afresh, or all get the same error (an image
 * or a callback that failed on any rank fails every rank).
 * RET SMIG_RESTORED, SMIG_OK (fresh start), or an error
 */
int smig_restore(void);

/*
 * smig_capture_info - the generation, safe point and reason of the capture
 * in progress (capture callback only)
 * RET SMIG_OK, or SMIG_ERR_STATE outside a capture callback
 */
int smig_capture_info(const smig_writer_t *w, smig_capture_info_t *info);

/* smig_reason_name - "drain", "balance", "periodic", "request", "requeue", "unknown" */
const char *smig_reason_name(int reason);

/*
 * smig_read - the next bytes of the image being restored (streaming restore
 * callback only)
 * OUT buf - up to len bytes
 * RET bytes read (less than len only at the end of the image, 0 after it),
 *     or an error (< 0): SMIG_ERR_IO, SMIG_ERR_IMAGE (file truncated or
 *     changed since it was verified), SMIG_ERR_STATE (no restore running)
 */
int64_t smig_read(smig_reader_t *r, void *buf, size_t len);

/*
 * smig_write - append bytes to the image being captured (capture callback only)
 * RET SMIG_OK or an error
 */
int smig_write(smig_writer_t *w, const void *data, size_t len);

/*
 * File-based capture and restore (smig(3), "Checkpoint files"): a code that
 * writes its own checkpoint file writes it where libsmig says and hands it
 * over, instead of reading it back into smig_write():
 *
 *	capture(w, arg):  path = smig_capture_path(w);
 *			  write_restart_file(path);
 *			  return smig_capture_file(w, path);
 *	restore(r, len, arg) (smig_register_reader()):
 *			  return read_restart_file(smig_restore_path(r));
 *
 * The file becomes the payload of this rank's image of the generation
 * unchanged (smig-image extract gives it back byte for byte): libsmig
 * copies it behind the image's header in the kernel (copy_file_range(2),
 * page cache to page cache; a server-side copy on NFS 4.2), never through
 * a buffer of the whole file, checksums it in one pass of 1 MiB reads and
 * renames the image into place (atomically, as every image). One file per
 * rank and capture; smig_write() and smig_capture_file() do not mix in one
 * capture.
 */

/*
 * smig_capture_path - where this rank writes its checkpoint file for the
 * capture in progress (capture callback only): in the job's image store
 * (the same file system), "<store>/rank<R>.g<G>.img.tmp.ckpt". The file
 * does not exist when this returns (a stale one is removed); the caller
 * creates it (mode 0600 is enough). The string is libsmig's, valid until
 * the callback returns. The file is libsmig's too: it is removed when the
 * capture callback returns, whether it was handed over or not, and also
 * when the generation is aborted.
 * RET the path, or NULL outside a capture callback (logged)
 */
const char *smig_capture_path(smig_writer_t *w);

/*
 * smig_capture_file - hand over the finished checkpoint file at path
 * (capture callback only; at most once per capture, not after smig_write())
 * IN path - a regular file of this user, not a symbolic link, normally the
 *           one of smig_capture_path() (removed after the capture); another
 *           path is copied (in the kernel) and left where it is
 * The file must be complete and closed: after the callback returns, libsmig
 * checksums it and places it, the capture fails if that fails (the
 * previous generation stays the good one).
 * RET SMIG_OK, or an error: SMIG_ERR_STATE (outside a capture callback,
 *     a second file, after smig_write()), SMIG_ERR_INVAL (path NULL, not a
 *     regular file, too large), SMIG_ERR_IO (cannot be opened)
 */
int smig_capture_file(smig_writer_t *w, const char *path);

/*
 * smig_restore_path - the restored checkpoint file (streaming restore
 * callback only, before any smig_read()): the payload of the image chosen
 * for this rank (generation g, or the older one all ranks fell back to),
 * written to "<store>/rank<R>.g<G>.img.tmp.restore" in the kernel and
 * checksummed as written; it is byte for byte what smig_capture_file()
 * handed over. Valid until the restore callback returns: libsmig removes
 * the file then (a code that wants to keep it link(2)s or rename(2)s it
 * elsewhere on the same file system inside the callback). Calling it again
 * gives the same path; smig_read() is not allowed after it.
 * RET the path, or NULL (logged): outside a streaming restore callback,
 *     after smig_read(), or the copy failed or did not match its checksum
 *     (the restore then fails with SMIG_ERR_IMAGE or SMIG_ERR_IO, as a bad
 *     image found by smig_read() does)
 */
const char *smig_restore_path(smig_reader_t *r);

/*
 * Memory regions (smig(3), "Memory regions"): instead of, or besides,
 * serialising its state in a capture callback, a rank registers the memory
 * that holds it; libsmig writes each region into the rank's image and
 * reads it back into the same registration on restore. With
 * --migrate=...,precopy=on the regions are copied into the next image in
 * the background when a capture is requested, while the application runs
 * on, and the safe point writes only the blocks changed since.
 *
 *	smig_init();
 *	smig_region_register("grid", grid, n * sizeof(double));
 *	rc = smig_register("heat", NULL, NULL, NULL);   regions only
 *
 * The rule for a restore: the regions registered when smig_register() (or,
 * with SMIG_RESTORE_LATER, smig_restore()) restores must be those of the
 * image, same names and same sizes (any order): a region missing on either
 * side or of another size fails the restore (SMIG_ERR_IMAGE) with a message
 * naming the region and both sizes. A region's memory must stay valid until
 * it is unregistered or smig_finalize() returns; a capture holds the
 * regions as registered when its capture callback returns. Regions do not
 * mix with smig_register_reader() or smig_capture_file().
 */

/*
 * smig_region_register - add a region (after smig_init(), outside a
 * capture callback)
 * IN name - 1..32 bytes of A-Z a-z 0-9 _ . -, unique
 * IN ptr, len - the memory (len >= 1), the application's
 * RET SMIG_OK, SMIG_ERR_INVAL (bad or duplicate name, NULL, 0, more than
 *     64 regions), SMIG_ERR_STATE (before smig_init(), with a streaming
 *     restore callback)
 */
int smig_region_register(const char *name, void *ptr, size_t len);

/*
 * smig_region_unregister - remove a region: no pre-copy reads its memory
 * once this returns
 * RET SMIG_OK, SMIG_ERR_INVAL (no region of this name), SMIG_ERR_STATE
 */
int smig_region_unregister(const char *name);

/*
 * smig_safepoint - a point in the main loop where the state is consistent
 * RET SMIG_OK to go on; SMIG_STOP when the image of this rank was captured,
 *     all ranks' images are safe and the step is being relaunched elsewhere:
 *     the caller leaves its loop, calls smig_finalize() and MPI_Finalize()
 *     and exits with status 0. Costs a load and a compare when nothing is
 *     pending.
 */
int smig_safepoint(void);

/* smig_generation - newest generation captured or restored by this rank (0: none) */
uint64_t smig_generation(void);

/* smig_finalize - detach (before MPI_Finalize). RET SMIG_OK or an error */
int smig_finalize(void);

/* smig_strerror - static text for a result or error code */
const char *smig_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* SLURM_MIGRATE_SMIG_H */
