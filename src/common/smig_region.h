/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_region.h - images of registered memory regions, and their pre-copy
 *
 * libc + libxxhash + smig_image only: linked into libsmig (contrib/libsmig,
 * smig_region_register()) and unit-tested in the core.
 *
 * A rank that registered memory regions gets an image whose payload (the
 * image format itself, smig_image.h, is unchanged) is a region container:
 *
 *   offset size  field (little-endian; offsets relative to the payload)
 *   0      8     magic "SMIGREG\0"
 *   8      4     container version (SMIG_REGION_VERSION)
 *   12     4     number of regions n (<= SMIG_REGION_MAX)
 *   16     4     block size of the pre-copy (information only)
 *   20     4     reserved, zero
 *   24     8     offset of the capture callback's bytes (after the regions)
 *   32     8     their length (0: no callback, or it wrote nothing)
 *   40     24    reserved, zero
 *   64     64*n  one entry per region: name (32 bytes, NUL-padded),
 *                offset (8), length (8), reserved (16, zero)
 *   ...          zeros up to the first region; each region starts where
 *                its file offset (128 + offset) is a multiple of 4096, in
 *                the order of the entries; zeros between regions
 *
 * The layout is a function of the number of regions and their lengths
 * (smig_region_layout()): a reader recomputes it and refuses any other.
 *
 * Pre-copy (doc/design.md, "Pre-copy"): smig_precopy_new() creates the
 * generation's temporary image file; smig_precopy_round() (any thread,
 * while the application runs) writes every block of SMIG_REGION_BLOCK bytes
 * whose XXH3-64 differs from the one recorded when it was last written,
 * through a private copy of the block, so that the recorded hash is always
 * the hash of the bytes in the file; smig_precopy_finish() (the application
 * stopped at its safe point) hashes every block again, rewrites those that
 * differ, checksums the payload from memory and commits the image
 * atomically (smig_image_tmp_commit()). The image is then the memory at the
 * safe point, or (if the file ever differed from what its block hashes say,
 * a 64-bit hash collision) an image whose payload checksum fails: every
 * reader, the node agent first, refuses it.
 */
#ifndef SMIG_REGION_H
#define SMIG_REGION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smig_image.h"

#define SMIG_REGION_MAGIC	"SMIGREG"	/* plus its NUL: 8 bytes */
#define SMIG_REGION_VERSION	1
#define SMIG_REGION_NAME_LEN	32
#define SMIG_REGION_MAX		64
#define SMIG_REGION_DIR_SIZE	64	/* container header */
#define SMIG_REGION_ENTRY_SIZE	64
#define SMIG_REGION_ALIGN	4096	/* file offset of each region */
#define SMIG_REGION_BLOCK	(1024 * 1024)	/* default block */

/* One registered region (the application's memory, borrowed). */
typedef struct smig_region {
	char name[SMIG_REGION_NAME_LEN + 1];
	void *ptr;
	uint64_t len;
} smig_region_t;

/*
 * smig_region_name_ok - a region name: 1..32 bytes of [A-Za-z0-9_.-]
 * RET true if name may be registered
 */
bool smig_region_name_ok(const char *name);

/*
 * smig_region_layout - offsets of n regions of the given lengths
 * OUT off     - n payload offsets
 * OUT app_off - where the callback's bytes start (the end of the regions)
 * RET 0, or SMIG_IMAGE_EINVAL (too many, too large)
 */
int smig_region_layout(const uint64_t *len, size_t n, uint64_t *off,
		       uint64_t *app_off);

typedef struct smig_precopy smig_precopy_t;

/* Counters of one pre-copy (smig_precopy_stats()). */
typedef struct smig_precopy_stats {
	uint64_t total;		/* bytes of all regions */
	uint32_t rounds;	/* smig_precopy_round() calls completed */
	uint64_t copied;	/* bytes written by the rounds */
	uint64_t last_round;	/* bytes written by the last round */
	uint64_t at_stop;	/* bytes written by smig_precopy_finish() */
} smig_precopy_stats_t;

/*
 * smig_precopy_new - start the image of generation hdr->generation of
 * these regions: the temporary file "<dir>/rank<R>.g<G>.img.tmp.XXXXXX"
 * (smig_image_tmp_create()); nothing is copied yet
 * IN hdr   - job, step, rank, nranks, generation, tag (borrowed)
 * IN regs  - n regions (copied; the memory stays the application's)
 * IN block - block size, a multiple of 4096 (0: SMIG_REGION_BLOCK)
 * RET a new pre-copy, or NULL with a message in errbuf
 */
smig_precopy_t *smig_precopy_new(const char *dir, const smig_image_hdr_t *hdr,
				 const smig_region_t *regs, size_t n,
				 uint32_t block, char *errbuf, size_t errlen);

/*
 * smig_precopy_round - one round while the application may write: every
 * block never written, or whose hash changed since it was written, is
 * copied (to a private buffer, hashed there, written to the file, its
 * write-back started)
 * IN rate_bps - at most this many bytes written per second (0: no limit)
 * IN cancel   - nonzero stops the round between two blocks (may be NULL)
 * IN deadline_ns - CLOCK_MONOTONIC time that stops the round between two
 *              blocks (0: none)
 * OUT copied  - bytes written by this round
 * RET 0, 1 if cancelled, 2 at the deadline (a round cut short: copied
 *     counts what it wrote), or a negative code with a message in errbuf
 */
int smig_precopy_round(smig_precopy_t *pc, uint64_t rate_bps,
		       const atomic_int *cancel, uint64_t deadline_ns,
		       uint64_t *copied, char *errbuf, size_t errlen);

/* smig_precopy_now_ns - CLOCK_MONOTONIC in ns, for deadline_ns */
uint64_t smig_precopy_now_ns(void);

/* smig_precopy_sync - fdatasync the file (the rounds' writes). RET 0, -errno */
int smig_precopy_sync(smig_precopy_t *pc);

/*
 * smig_precopy_same - pc was made for these regions (names, addresses and
 * lengths, in this order) and generation
 */
bool smig_precopy_same(const smig_precopy_t *pc, const smig_region_t *regs,
		       size_t n, uint64_t gen);

/* smig_precopy_stats - its counters so far */
void smig_precopy_stats(const smig_precopy_t *pc, smig_precopy_stats_t *out);

/*
 * smig_precopy_finish - the application is stopped: write every block whose
 * hash differs from the one written (and the directory and the callback's
 * bytes), checksum the payload from memory and commit the image atomically
 * IN hdr     - as for smig_precopy_new(), plus safepoint and created_ns;
 *              payload_len is computed
 * IN app     - app_len bytes of the capture callback (may be NULL if 0)
 * OUT hdr_out - the header written (payload_len), may be NULL
 * OUT pathbuf - the image's final path
 * RET 0 or a negative code with a message in errbuf. pc is freed either
 *     way; on failure the temporary file is removed.
 */
int smig_precopy_finish(smig_precopy_t *pc, const smig_image_hdr_t *hdr,
			const void *app, uint64_t app_len,
			smig_precopy_stats_t *stats, smig_image_hdr_t *hdr_out,
			char *pathbuf, size_t pathlen, char *errbuf,
			size_t errlen);

/* smig_precopy_free - drop a pre-copy not finished: file closed, removed */
void smig_precopy_free(smig_precopy_t *pc);

/*
 * smig_region_restore_fd - the payload of a region image into the
 * registered regions
 * IN fd    - the image (smig_image_open(): hdr is its checked header)
 * IN path  - for messages
 * IN regs  - n regions registered for the restore: each one must be in
 *            the image under its name with the same length, and the image
 *            must hold no other region
 * OUT app, app_len - the callback's bytes, a new buffer (free()); NULL if
 *            app_len is 0
 * The regions are filled as the payload is read and checksummed; the
 * checksum is compared at the end: on SMIG_IMAGE_ESUM (or a read error) the
 * regions hold a part of the image and must not be used.
 * RET 0, or a negative code with a message in errbuf naming the path and,
 *     for a mismatch, the region and both sizes (SMIG_IMAGE_EINVAL)
 */
int smig_region_restore_fd(int fd, const smig_image_hdr_t *hdr,
			   const char *path, const smig_region_t *regs,
			   size_t n, void **app, uint64_t *app_len,
			   char *errbuf, size_t errlen);

#endif /* SMIG_REGION_H */
