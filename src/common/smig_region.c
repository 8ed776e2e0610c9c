/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_region.c - images of registered memory regions and their pre-copy:
 * see smig_region.h and doc/design.md, "Pre-copy"
 *
 * libc + libxxhash + smig_image only: linked into libsmig.
 */
#define _GNU_SOURCE 1	/* sync_file_range() */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "smig_image.h"
#include "smig_image_int.h"
#include "smig_region.h"

/* Per region of a pre-copy: the hash of each block as it is in the file. */
typedef struct {
	smig_region_t r;
	uint64_t off;		/* payload offset */
	size_t nblocks;
	uint64_t *hash;		/* of the bytes written */
	uint8_t *valid;		/* 1: block written, hash[] is its hash */
} pc_region_t;

struct smig_precopy {
	int fd;
	char tmp[4096 + 16];
	char dir[4096];
	uint64_t gen;
	uint32_t block;
	size_t n;
	pc_region_t *regs;
	uint64_t app_off;
	unsigned char *bounce;	/* one block: what is hashed is written */
	smig_precopy_stats_t stats;
};

/* smig_region_name_ok - 1..32 bytes of [A-Za-z0-9_.-] */
bool smig_region_name_ok(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	if (len < 1 || len > SMIG_REGION_NAME_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* align_region - first payload offset >= off at an aligned file offset */
static uint64_t align_region(uint64_t off)
{
	uint64_t file = SMIG_IMAGE_HEADER_SIZE + off;

	file = (file + SMIG_REGION_ALIGN - 1) / SMIG_REGION_ALIGN *
	       SMIG_REGION_ALIGN;
	return file - SMIG_IMAGE_HEADER_SIZE;
}

/* smig_region_layout - see smig_region.h */
int smig_region_layout(const uint64_t *len, size_t n, uint64_t *off,
		       uint64_t *app_off)
{
	uint64_t at;

	if (n > SMIG_REGION_MAX)
		return SMIG_IMAGE_EINVAL;
	at = SMIG_REGION_DIR_SIZE + SMIG_REGION_ENTRY_SIZE * (uint64_t) n;
	for (size_t i = 0; i < n; i++) {
		if (len[i] > SMIG_IMAGE_MAX_PAYLOAD)
			return SMIG_IMAGE_EINVAL;
		off[i] = align_region(at);
		at = off[i] + len[i];
		if (at > SMIG_IMAGE_MAX_PAYLOAD)
			return SMIG_IMAGE_EINVAL;
	}
	*app_off = at;
	return 0;
}

/* pwrite_all - all of buf at off. RET 0 or -errno */
static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t) off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t) w;
		off += (uint64_t) w;
	}
	return 0;
}

/* pread_all - exactly len bytes at off. RET 0, -EIO at end of file, -errno */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = pread(fd, p, len, (off_t) off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		p += r;
		len -= (size_t) r;
		off += (uint64_t) r;
	}
	return 0;
}

/* smig_precopy_free - see smig_region.h */
void smig_precopy_free(smig_precopy_t *pc)
{
	if (!pc)
		return;
	if (pc->fd >= 0) {
		close(pc->fd);
		unlink(pc->tmp);
	}
	for (size_t i = 0; i < pc->n; i++) {
		free(pc->regs[i].hash);
		free(pc->regs[i].valid);
	}
	free(pc->regs);
	free(pc->bounce);
	free(pc);
}

/* smig_precopy_new - see smig_region.h */
smig_precopy_t *smig_precopy_new(const char *dir, const smig_image_hdr_t *hdr,
				 const smig_region_t *regs, size_t n,
				 uint32_t block, char *errbuf, size_t errlen)
{
	uint64_t len[SMIG_REGION_MAX], off[SMIG_REGION_MAX];
	smig_precopy_t *pc;
	int fd;

	if (!block)
		block = SMIG_REGION_BLOCK;
	if (n < 1 || n > SMIG_REGION_MAX || block % 4096) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": %zu regions (1..%d), block %u (a multiple of 4096)",
			      dir, hdr->generation, n, SMIG_REGION_MAX, block);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		len[i] = regs[i].len;
	pc = calloc(1, sizeof(*pc));
	if (!pc || !(pc->regs = calloc(n, sizeof(*pc->regs))) ||
	    !(pc->bounce = malloc(block)))
		goto nomem;
	pc->fd = -1;
	pc->n = n;
	pc->block = block;
	pc->gen = hdr->generation;
	snprintf(pc->dir, sizeof(pc->dir), "%s", dir);
	if (smig_region_layout(len, n, off, &pc->app_off)) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": regions larger than an image (%" PRIu64 " bytes)",
			      dir, hdr->generation,
			      (uint64_t) SMIG_IMAGE_MAX_PAYLOAD);
		smig_precopy_free(pc);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		pc_region_t *r = &pc->regs[i];

		r->r = regs[i];
		r->off = off[i];
		r->nblocks = (size_t) ((regs[i].len + block - 1) / block);
		if (r->nblocks &&
		    (!(r->hash = calloc(r->nblocks, sizeof(*r->hash))) ||
		     !(r->valid = calloc(r->nblocks, 1))))
			goto nomem;
		pc->stats.total += regs[i].len;
	}
	fd = smig_image_tmp_create(dir, hdr, pc->tmp, sizeof(pc->tmp), errbuf,
				   errlen);
	if (fd < 0) {
		smig_precopy_free(pc);
		return NULL;
	}
	pc->fd = fd;
	return pc;

nomem:
	smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": out of memory for the block hashes",
		      dir, hdr->generation);
	smig_precopy_free(pc);
	return NULL;
}

/* smig_precopy_now_ns - see smig_region.h */
uint64_t smig_precopy_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* pace - sleep until written bytes fit rate_bps since t0 */
static void pace(uint64_t t0, uint64_t written, uint64_t rate_bps)
{
	uint64_t due, now;
	struct timespec ts;

	if (!rate_bps)
		return;
	due = t0 + (uint64_t) ((double) written * 1e9 / (double) rate_bps);
	now = smig_precopy_now_ns();
	if (due <= now)
		return;
	ts.tv_sec = (time_t) ((due - now) / 1000000000u);
	ts.tv_nsec = (long) ((due - now) % 1000000000u);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* smig_precopy_round - see smig_region.h */
int smig_precopy_round(smig_precopy_t *pc, uint64_t rate_bps,
		       const atomic_int *cancel, uint64_t deadline_ns,
		       uint64_t *copied, char *errbuf, size_t errlen)
{
	uint64_t t0 = smig_precopy_now_ns(), done = 0;
	int rc;

	*copied = 0;
	for (size_t i = 0; i < pc->n; i++) {
		pc_region_t *r = &pc->regs[i];

		for (size_t b = 0; b < r->nblocks; b++) {
			uint64_t at = (uint64_t) b * pc->block;
			uint64_t len = r->r.len - at < pc->block ?
				       r->r.len - at : pc->block;
			const char *mem = (const char *) r->r.ptr + at;
			uint64_t file_off = SMIG_IMAGE_HEADER_SIZE + r->off +
					    at;
			uint64_t h;

			if (cancel && atomic_load(cancel))
				return 1;
			if (deadline_ns &&
			    smig_precopy_now_ns() >= deadline_ns) {
				/* What was written stays valid. */
				*copied = done;
				pc->stats.copied += done;
				pc->stats.last_round = done;
				return 2;
			}
			/* Unchanged since written: nothing to do. */
			if (r->valid[b] && XXH3_64bits(mem, len) == r->hash[b])
				continue;
			/* The application may write meanwhile: the bytes
			 * hashed are the bytes written. */
			memcpy(pc->bounce, mem, len);
			h = XXH3_64bits(pc->bounce, len);
			rc = pwrite_all(pc->fd, pc->bounce, len, file_off);
			if (rc < 0) {
				smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": pre-copy of region %s: write: %s",
					      pc->tmp, pc->gen, r->r.name,
					      strerror(-rc));
				return rc;
			}
			(void) sync_file_range(pc->fd, (off_t) file_off,
					       (off_t) len,
					       SYNC_FILE_RANGE_WRITE);
			r->hash[b] = h;
			r->valid[b] = 1;
			done += len;
			pace(t0, done, rate_bps);
		}
	}
	*copied = done;
	pc->stats.rounds++;
	pc->stats.copied += done;
	pc->stats.last_round = done;
	return 0;
}

/* smig_precopy_sync - see smig_region.h */
int smig_precopy_sync(smig_precopy_t *pc)
{
	return fdatasync(pc->fd) < 0 ? -errno : 0;
}

/* smig_precopy_same - see smig_region.h */
bool smig_precopy_same(const smig_precopy_t *pc, const smig_region_t *regs,
		       size_t n, uint64_t gen)
{
	if (!pc || pc->n != n || pc->gen != gen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(pc->regs[i].r.name, regs[i].name) ||
		    pc->regs[i].r.ptr != regs[i].ptr ||
		    pc->regs[i].r.len != regs[i].len)
			return false;
	return true;
}

/* smig_precopy_stats - see smig_region.h */
void smig_precopy_stats(const smig_precopy_t *pc, smig_precopy_stats_t *out)
{
	*out = pc->stats;
}

/* encode_dir - container header, entries and zeros up to the first region */
static unsigned char *encode_dir(const smig_precopy_t *pc, uint64_t app_len,
				 size_t *dir_len)
{
	size_t len = pc->n ? (size_t) pc->regs[0].off :
			     SMIG_REGION_DIR_SIZE;
	unsigned char *d = calloc(1, len);

	if (!d)
		return NULL;
	memcpy(d, SMIG_REGION_MAGIC, sizeof(SMIG_REGION_MAGIC));
	put_le32(d + 8, SMIG_REGION_VERSION);
	put_le32(d + 12, (uint32_t) pc->n);
	put_le32(d + 16, pc->block);
	put_le64(d + 24, pc->app_off);
	put_le64(d + 32, app_len);
	for (size_t i = 0; i < pc->n; i++) {
		unsigned char *e = d + SMIG_REGION_DIR_SIZE +
				   SMIG_REGION_ENTRY_SIZE * i;

		memcpy(e, pc->regs[i].r.name, strlen(pc->regs[i].r.name));
		put_le64(e + 32, pc->regs[i].off);
		put_le64(e + 40, pc->regs[i].r.len);
	}
	*dir_len = len;
	return d;
}

/* smig_precopy_finish - see smig_region.h */
int smig_precopy_finish(smig_precopy_t *pc, const smig_image_hdr_t *hdr,
			const void *app, uint64_t app_len,
			smig_precopy_stats_t *stats, smig_image_hdr_t *hdr_out,
			char *pathbuf, size_t pathlen, char *errbuf,
			size_t errlen)
{
	static const unsigned char zeros[SMIG_REGION_ALIGN];
	smig_image_hdr_t h = *hdr;
	XXH3_state_t *xx = NULL;
	unsigned char *d = NULL;
	uint64_t end, at_stop = 0;
	size_t dir_len;
	int rc, fd;

	if (app_len > SMIG_IMAGE_MAX_PAYLOAD - pc->app_off) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": regions and %" PRIu64 " callback bytes: larger than an image",
			      pc->tmp, pc->gen, app_len);
		rc = SMIG_IMAGE_EINVAL;
		goto out_free;
	}
	if (!(d = encode_dir(pc, app_len, &dir_len)) ||
	    !(xx = XXH3_createState()) || XXH3_64bits_reset(xx) != XXH_OK) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": out of memory",
			      pc->tmp, pc->gen);
		rc = -ENOMEM;
		goto out_free;
	}
	rc = pwrite_all(pc->fd, d, dir_len, SMIG_IMAGE_HEADER_SIZE);
	XXH3_64bits_update(xx, d, dir_len);
	end = dir_len;
	for (size_t i = 0; i < pc->n && !rc; i++) {
		pc_region_t *r = &pc->regs[i];

		/* Zeros between regions, in the file as in the sum. */
		if (r->off > end) {
			rc = pwrite_all(pc->fd, zeros, r->off - end,
					SMIG_IMAGE_HEADER_SIZE + end);
			XXH3_64bits_update(xx, zeros, r->off - end);
		}
		for (size_t b = 0; b < r->nblocks && !rc; b++) {
			uint64_t at = (uint64_t) b * pc->block;
			uint64_t len = r->r.len - at < pc->block ?
				       r->r.len - at : pc->block;
			const char *mem = (const char *) r->r.ptr + at;

			/* Stopped: the memory is what the image must hold. */
			XXH3_64bits_update(xx, mem, len);
			if (r->valid[b] && XXH3_64bits(mem, len) == r->hash[b])
				continue;
			rc = pwrite_all(pc->fd, mem, len,
					SMIG_IMAGE_HEADER_SIZE + r->off + at);
			at_stop += len;
		}
		end = r->off + r->r.len;
	}
	if (!rc && app_len) {
		rc = pwrite_all(pc->fd, app, app_len,
				SMIG_IMAGE_HEADER_SIZE + pc->app_off);
		XXH3_64bits_update(xx, app, app_len);
	}
	if (rc) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": write: %s",
			      pc->tmp, pc->gen, strerror(-rc));
		goto out_free;
	}
	h.payload_len = pc->app_off + app_len;
	pc->stats.at_stop = at_stop;
	if (stats)
		*stats = pc->stats;
	fd = pc->fd;
	/* smig_image_tmp_commit() closes it, removes it on failure. */
	pc->fd = -1;
	rc = smig_image_tmp_commit(pc->dir, &h, XXH3_64bits_digest(xx), fd,
				   pc->tmp, pathbuf, pathlen, errbuf, errlen);
	if (!rc && hdr_out)
		*hdr_out = h;
out_free:
	XXH3_freeState(xx);
	free(d);
	smig_precopy_free(pc);
	return rc;
}

/*
 * read_sum - len payload bytes at off into buf, added to the sum
 * RET 0, or a negative code with a message in errbuf
 */
static int read_sum(int fd, const char *path, void *buf, uint64_t len,
		    uint64_t off, XXH3_state_t *xx, char *errbuf, size_t errlen)
{
	int rc = pread_all(fd, buf, (size_t) len,
			   SMIG_IMAGE_HEADER_SIZE + off);

	if (rc < 0) {
		smig_img_fail(errbuf, errlen, "%s: read of %" PRIu64 " bytes at payload offset %" PRIu64 ": %s",
			      path, len, off,
			      rc == -EIO ? "file truncated" : strerror(-rc));
		return rc == -EIO ? SMIG_IMAGE_ETRUNC : rc;
	}
	XXH3_64bits_update(xx, buf, (size_t) len);
	return 0;
}

/*
 * match_regions - the image's entries (d) against the registered regions
 * OUT which - for each entry, the index of its registered region
 * RET 0, or SMIG_IMAGE_EINVAL with a message in errbuf
 */
static int match_regions(const unsigned char *d, uint32_t n,
			 const smig_region_t *regs, size_t nregs,
			 const char *path, uint64_t gen, size_t *which,
			 char *errbuf, size_t errlen)
{
	bool seen[SMIG_REGION_MAX] = { false };

	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *e = d + SMIG_REGION_DIR_SIZE +
					 SMIG_REGION_ENTRY_SIZE * i;
		char name[SMIG_REGION_NAME_LEN + 1];
		uint64_t len = get_le64(e + 40);
		size_t j;

		memcpy(name, e, SMIG_REGION_NAME_LEN);
		name[SMIG_REGION_NAME_LEN] = '\0';
		for (j = 0; j < nregs; j++)
			if (!strcmp(regs[j].name, name))
				break;
		if (j == nregs) {
			smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": the image holds region \"%s\" (%" PRIu64 " bytes), which is not registered: register the same regions before the restore",
				      path, gen, name, len);
			return SMIG_IMAGE_EINVAL;
		}
		if (seen[j]) {
			smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": region \"%s\" twice in the image",
				      path, gen, name);
			return SMIG_IMAGE_EINVAL;
		}
		if (regs[j].len != len) {
			smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": region \"%s\" is %" PRIu64 " bytes in the image but %" PRIu64 " bytes registered: refused",
				      path, gen, name, len, regs[j].len);
			return SMIG_IMAGE_EINVAL;
		}
		seen[j] = true;
		which[i] = j;
	}
	for (size_t j = 0; j < nregs; j++)
		if (!seen[j]) {
			smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": region \"%s\" (%" PRIu64 " bytes) is registered but not in the image",
				      path, gen, regs[j].name, regs[j].len);
			return SMIG_IMAGE_EINVAL;
		}
	return 0;
}

/* smig_region_restore_fd - see smig_region.h */
int smig_region_restore_fd(int fd, const smig_image_hdr_t *hdr,
			   const char *path, const smig_region_t *regs,
			   size_t nregs, void **app, uint64_t *app_len,
			   char *errbuf, size_t errlen)
{
	uint64_t len[SMIG_REGION_MAX], off[SMIG_REGION_MAX], app_off, end;
	static const unsigned char zeros[SMIG_REGION_ALIGN];
	unsigned char head[SMIG_REGION_DIR_SIZE], pad[SMIG_REGION_ALIGN];
	size_t which[SMIG_REGION_MAX];
	unsigned char *d = NULL;
	XXH3_state_t *xx = NULL;
	uint64_t gen = hdr->generation, alen;
	uint32_t n;
	int rc;

	*app = NULL;
	*app_len = 0;
	if (!(xx = XXH3_createState()) || XXH3_64bits_reset(xx) != XXH_OK) {
		smig_img_fail(errbuf, errlen, "%s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	if (hdr->payload_len < SMIG_REGION_DIR_SIZE ||
	    (rc = pread_all(fd, head, sizeof(head),
			    SMIG_IMAGE_HEADER_SIZE)) < 0 ||
	    memcmp(head, SMIG_REGION_MAGIC, sizeof(SMIG_REGION_MAGIC))) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": not an image of memory regions (no \"%s\" at the start of the payload): was it captured with the same regions registered?",
			      path, gen, SMIG_REGION_MAGIC);
		rc = SMIG_IMAGE_EINVAL;
		goto out;
	}
	n = get_le32(head + 12);
	if (get_le32(head + 8) != SMIG_REGION_VERSION ||
	    n < 1 || n > SMIG_REGION_MAX) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": region container version %u with %u regions: expected version %d with 1..%d",
			      path, gen, get_le32(head + 8), n,
			      SMIG_REGION_VERSION, SMIG_REGION_MAX);
		rc = SMIG_IMAGE_EINVAL;
		goto out;
	}
	d = malloc(SMIG_REGION_DIR_SIZE + SMIG_REGION_ENTRY_SIZE * n);
	if (!d) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = pread_all(fd, d, SMIG_REGION_DIR_SIZE +
			    SMIG_REGION_ENTRY_SIZE * n,
			    SMIG_IMAGE_HEADER_SIZE)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": reading the region directory: %s",
			      path, gen, strerror(-rc));
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		len[i] = get_le64(d + SMIG_REGION_DIR_SIZE +
				  SMIG_REGION_ENTRY_SIZE * i + 40);
	alen = get_le64(d + 32);
	rc = smig_region_layout(len, n, off, &app_off);
	for (uint32_t i = 0; !rc && i < n; i++)
		if (get_le64(d + SMIG_REGION_DIR_SIZE +
			     SMIG_REGION_ENTRY_SIZE * i + 32) != off[i])
			rc = SMIG_IMAGE_EINVAL;
	if (rc || get_le64(d + 24) != app_off ||
	    alen > SMIG_IMAGE_MAX_PAYLOAD ||
	    app_off + alen != hdr->payload_len) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": region directory does not match its layout or the payload length (%" PRIu64 " bytes)",
			      path, gen, hdr->payload_len);
		rc = SMIG_IMAGE_EINVAL;
		goto out;
	}
	rc = match_regions(d, n, regs, nregs, path, gen, which, errbuf,
			   errlen);
	if (rc)
		goto out;
	/* The payload in order, summed as read. */
	XXH3_64bits_update(xx, d, SMIG_REGION_DIR_SIZE +
			   SMIG_REGION_ENTRY_SIZE * n);
	end = SMIG_REGION_DIR_SIZE + SMIG_REGION_ENTRY_SIZE * n;
	for (uint32_t i = 0; i < n; i++) {
		const smig_region_t *r = &regs[which[i]];

		if (off[i] > end &&
		    (rc = read_sum(fd, path, pad, off[i] - end, end, xx,
				   errbuf, errlen)))
			goto out;
		/* Bytes between regions are zero in an image we wrote. */
		if (off[i] > end && memcmp(pad, zeros, off[i] - end)) {
			smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": padding before region \"%s\" is not zero",
				      path, gen, r->name);
			rc = SMIG_IMAGE_EINVAL;
			goto out;
		}
		for (uint64_t at = 0; at < r->len;) {
			uint64_t piece = r->len - at < SMIG_IMG_CHUNK ?
					 r->len - at : SMIG_IMG_CHUNK;

			if ((rc = read_sum(fd, path, (char *) r->ptr + at,
					   piece, off[i] + at, xx, errbuf,
					   errlen)))
				goto out;
			at += piece;
		}
		end = off[i] + r->len;
	}
	if (alen) {
		if (!(*app = malloc(alen))) {
			smig_img_fail(errbuf, errlen, "%s: out of memory for %" PRIu64 " callback bytes",
				      path, alen);
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = read_sum(fd, path, *app, alen, app_off, xx, errbuf,
				   errlen)))
			goto out;
	}
	if (XXH3_64bits_digest(xx) != hdr->payload_hash) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": payload checksum mismatch while the regions were read (the image is damaged or changed): the regions are not usable",
			      path, gen);
		rc = SMIG_IMAGE_ESUM;
		goto out;
	}
	*app_len = alen;
	rc = 0;
out:
	if (rc) {
		free(*app);
		*app = NULL;
	}
	free(d);
	XXH3_freeState(xx);
	return rc;
}
