/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_image.c - the recovery image format and its atomic store
 * (the hand-off between nodes: smig_image_handoff.c)
 *
 * libc + libxxhash only: linked into contrib/libsmig as well as the core.
 */
#define _GNU_SOURCE 1	/* mkostemp(), copy_file_range() */
#include "smig_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "smig_image.h"
#include "smig_image_int.h"

#define HDR_HASH_OFF	120	/* the header checksum covers 0..119 */
#define WRITE_CHUNK	(8 * 1024 * 1024)	/* write_payload() */

void smig_img_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/*
 * smig_image_strerror - static text of a SMIG_IMAGE_E* code or -errno
 */
const char *smig_image_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
	case SMIG_IMAGE_EBADMAGIC:
		return "not a recovery image";
	case SMIG_IMAGE_EVERSION:
		return "unknown image format version";
	case SMIG_IMAGE_EHDRSUM:
		return "image header checksum mismatch";
	case SMIG_IMAGE_ESUM:
		return "image payload checksum mismatch";
	case SMIG_IMAGE_ETRUNC:
		return "image truncated";
	case SMIG_IMAGE_EINVAL:
		return "image header field out of range";
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

/*
 * smig_image_path - "<dir>/rank<R>.g<G>.img" into buf
 * RET 0, or -ENAMETOOLONG if it does not fit
 */
int smig_image_path(char *buf, size_t len, const char *dir, uint32_t rank,
		    uint64_t generation)
{
	int n = snprintf(buf, len, "%s/rank%" PRIu32 ".g%" PRIu64 ".img", dir,
			 rank, generation);

	if (n < 0 || (size_t) n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* The wall clock in ns, an image's creation time. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void encode_header_sum(const smig_image_hdr_t *hdr, uint64_t sum,
			      unsigned char out[SMIG_IMAGE_HEADER_SIZE]);
static int image_tmp(const char *dir, const smig_image_hdr_t *h,
		     char *path, size_t pathlen, char *tmp, size_t tmplen,
		     char *errbuf, size_t errlen);
static int commit_tmp(int fd, const char *tmp, const char *path,
		      const char *dir, uint64_t gen, uint32_t uid,
		      uint32_t gid, char *pathbuf, size_t pathlen,
		      char *errbuf, size_t errlen);

/*
 * smig_image_encode_header - the 128 header bytes for hdr and its payload
 * IN  hdr     - fields (borrowed); version and payload_hash are computed
 * IN  payload - hdr->payload_len bytes (borrowed; may be NULL if 0)
 * OUT out     - SMIG_IMAGE_HEADER_SIZE bytes
 */
void smig_image_encode_header(const smig_image_hdr_t *hdr, const void *payload,
			      unsigned char out[SMIG_IMAGE_HEADER_SIZE])
{
	encode_header_sum(hdr, hdr->payload_len ?
			  XXH3_64bits(payload, hdr->payload_len) :
			  XXH3_64bits(NULL, 0), out);
}

/* encode_header_sum - smig_image_encode_header() with the payload's sum */
static void encode_header_sum(const smig_image_hdr_t *hdr, uint64_t sum,
			      unsigned char out[SMIG_IMAGE_HEADER_SIZE])
{
	memset(out, 0, SMIG_IMAGE_HEADER_SIZE);
	memcpy(out, SMIG_IMAGE_MAGIC, sizeof(SMIG_IMAGE_MAGIC));
	put_le32(out + 8, SMIG_IMAGE_VERSION);
	put_le32(out + 12, SMIG_IMAGE_HEADER_SIZE);
	put_le32(out + 16, hdr->job_id);
	put_le32(out + 20, hdr->step_id);
	put_le32(out + 24, hdr->rank);
	put_le32(out + 28, hdr->nranks);
	put_le64(out + 32, hdr->generation);
	put_le64(out + 40, hdr->safepoint);
	put_le64(out + 48, hdr->payload_len);
	put_le64(out + 56, hdr->created_ns);
	/* strnlen: the tag need not be terminated within its 32 bytes. */
	memcpy(out + 64, hdr->tag, strnlen(hdr->tag, SMIG_IMAGE_TAG_LEN));
	put_le64(out + 96, sum);
	put_le64(out + HDR_HASH_OFF, XXH3_64bits(out, HDR_HASH_OFF));
}

/*
 * smig_image_decode_header - parse and check header bytes (not the payload)
 * IN  buf, len - bytes read (not trusted)
 * OUT hdr      - fields, on success
 * RET 0, or SMIG_IMAGE_E* with a message in errbuf (no path: callers that
 *     know it add it)
 */
int smig_image_decode_header(const void *buf, size_t len, smig_image_hdr_t *hdr,
			     char *errbuf, size_t errlen)
{
	const unsigned char *p = buf;
	uint64_t want, have;
	uint32_t v;

	if (len < SMIG_IMAGE_HEADER_SIZE) {
		smig_img_fail(errbuf, errlen,
			      "header is %zu bytes, shorter than %d", len,
			      SMIG_IMAGE_HEADER_SIZE);
		return SMIG_IMAGE_ETRUNC;
	}
	if (memcmp(p, SMIG_IMAGE_MAGIC, sizeof(SMIG_IMAGE_MAGIC))) {
		smig_img_fail(errbuf, errlen, "not a recovery image (bad magic)");
		return SMIG_IMAGE_EBADMAGIC;
	}
	if ((v = get_le32(p + 8)) != SMIG_IMAGE_VERSION) {
		smig_img_fail(errbuf, errlen,
			      "format version %" PRIu32 " (this build reads %d)", v,
			      SMIG_IMAGE_VERSION);
		return SMIG_IMAGE_EVERSION;
	}
	if ((v = get_le32(p + 12)) != SMIG_IMAGE_HEADER_SIZE) {
		smig_img_fail(errbuf, errlen,
			      "header size %" PRIu32 " (expected %d)", v,
			      SMIG_IMAGE_HEADER_SIZE);
		return SMIG_IMAGE_EINVAL;
	}
	want = get_le64(p + HDR_HASH_OFF);
	have = XXH3_64bits(p, HDR_HASH_OFF);
	if (want != have) {
		smig_img_fail(errbuf, errlen,
			      "header checksum mismatch (expected %016" PRIx64 ", found %016" PRIx64 ")",
			      want, have);
		return SMIG_IMAGE_EHDRSUM;
	}

	memset(hdr, 0, sizeof(*hdr));
	hdr->version = SMIG_IMAGE_VERSION;
	hdr->job_id = get_le32(p + 16);
	hdr->step_id = get_le32(p + 20);
	hdr->rank = get_le32(p + 24);
	hdr->nranks = get_le32(p + 28);
	hdr->generation = get_le64(p + 32);
	hdr->safepoint = get_le64(p + 40);
	hdr->payload_len = get_le64(p + 48);
	hdr->created_ns = get_le64(p + 56);
	memcpy(hdr->tag, p + 64, SMIG_IMAGE_TAG_LEN);
	hdr->tag[SMIG_IMAGE_TAG_LEN] = '\0';
	hdr->payload_hash = get_le64(p + 96);

	if (hdr->generation == 0) {
		smig_img_fail(errbuf, errlen, "generation 0 (generations start at 1)");
		return SMIG_IMAGE_EINVAL;
	}
	if (hdr->rank >= hdr->nranks) {
		smig_img_fail(errbuf, errlen,
			      "generation %" PRIu64 ": rank %" PRIu32 " of %" PRIu32 " ranks",
			      hdr->generation, hdr->rank, hdr->nranks);
		return SMIG_IMAGE_EINVAL;
	}
	if (hdr->payload_len > SMIG_IMAGE_MAX_PAYLOAD) {
		smig_img_fail(errbuf, errlen,
			      "generation %" PRIu64 ": payload length %" PRIu64 " exceeds the limit (%" PRIu64 ")",
			      hdr->generation, hdr->payload_len,
			      (uint64_t) SMIG_IMAGE_MAX_PAYLOAD);
		return SMIG_IMAGE_EINVAL;
	}
	return 0;
}

/* Write all of buf. RET 0 or -errno. */
int smig_img_write_all(int fd, const void *buf, uint64_t len)
{
	const char *p = buf;

	while (len > 0) {
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t) len;
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (uint64_t) w;
	}
	return 0;
}

/* Read up to len bytes, stopping only at end of file. RET bytes or -errno. */
int64_t smig_img_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, p + got, len - got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t) r;
	}
	return (int64_t) got;
}

/* pwrite all of buf at off. RET 0 or -errno. */
static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t) w;
		off += w;
	}
	return 0;
}

/*
 * write_payload - the payload after the header's place, in WRITE_CHUNK pieces:
 * each piece is summed while it is still in the cache, written, and its
 * write-back started at once (sync_file_range), so that the disk writes
 * while the next piece is summed and copied, and the final fsync has
 * little left to do
 * OUT sum - XXH3-64 of the payload
 * RET 0 or -errno
 */
static int write_payload(int fd, const void *payload, uint64_t len,
			 uint64_t *sum)
{
	XXH3_state_t *state;
	const char *p = payload;
	off_t off = SMIG_IMAGE_HEADER_SIZE;
	int rc = 0;

	if (len < WRITE_CHUNK) {
		*sum = XXH3_64bits(len ? payload : NULL, (size_t) len);
		return pwrite_all(fd, payload, (size_t) len, off);
	}
	if (!(state = XXH3_createState()) || XXH3_64bits_reset(state) != XXH_OK) {
		XXH3_freeState(state);
		return -ENOMEM;
	}
	for (uint64_t left = len; left > 0 && !rc;) {
		size_t n = left > WRITE_CHUNK ? WRITE_CHUNK : (size_t) left;

		XXH3_64bits_update(state, p, n);
		rc = pwrite_all(fd, p, n, off);
		/* Only a hint: fsync() below is what makes it durable. */
		if (!rc)
			(void) sync_file_range(fd, off, (off_t) n,
					       SYNC_FILE_RANGE_WRITE);
		p += n;
		off += (off_t) n;
		left -= n;
	}
	*sum = XXH3_64bits_digest(state);
	XXH3_freeState(state);
	return rc;
}

/*
 * smig_image_write - store one image atomically, mode 0600: a temporary
 * "<final>.tmp.XXXXXX" in dir, write, fsync, rename, fsync of dir
 * IN hdr     - fields; generation >= 1, rank < nranks (borrowed);
 *              created_ns 0 means now
 * IN payload - hdr->payload_len bytes (borrowed)
 * OUT pathbuf - final path, if not NULL
 * RET 0 or a negative code with a message in errbuf
 */
int smig_image_write(const char *dir, const smig_image_hdr_t *hdr,
		     const void *payload, char *pathbuf, size_t pathlen,
		     char *errbuf, size_t errlen)
{
	unsigned char raw[SMIG_IMAGE_HEADER_SIZE];
	char path[4096], tmp[4096 + 16];
	smig_image_hdr_t h = *hdr;
	int fd, rc;
	uint64_t sum;

	if (h.generation == 0 || h.rank >= h.nranks ||
	    h.payload_len > SMIG_IMAGE_MAX_PAYLOAD ||
	    (h.payload_len && !payload)) {
		smig_img_fail(errbuf, errlen,
			      "%s: rank %" PRIu32 " of %" PRIu32 " generation %" PRIu64 " payload %" PRIu64 " bytes: invalid image fields (generation >= 1, rank < nranks, payload given)",
			      dir, h.rank, h.nranks, h.generation, h.payload_len);
		return SMIG_IMAGE_EINVAL;
	}
	if (h.created_ns == 0)
		h.created_ns = now_ns();
	fd = image_tmp(dir, &h, path, sizeof(path), tmp, sizeof(tmp), errbuf,
		       errlen);
	if (fd < 0)
		return fd;
	if ((rc = write_payload(fd, payload, h.payload_len, &sum)) < 0 ||
	    (encode_header_sum(&h, sum, raw),
	     (rc = pwrite_all(fd, raw, sizeof(raw), 0)) < 0)) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": write: %s",
			      tmp, h.generation, strerror(-rc));
		goto out_close_unlink;
	}
	return commit_tmp(fd, tmp, path, dir, h.generation, (uint32_t) -1, 0,
			  pathbuf, pathlen, errbuf, errlen);

out_close_unlink:
	close(fd);
	unlink(tmp);
	return rc;
}

/*
 * image_tmp - the final path of hdr's image in dir and a new temporary file
 * beside it, "<final>.tmp.XXXXXX" (mode 0600, O_EXCL: no one else has it)
 * RET the open file, or a negative code with a message in errbuf
 */
static int image_tmp(const char *dir, const smig_image_hdr_t *h,
		     char *path, size_t pathlen, char *tmp, size_t tmplen,
		     char *errbuf, size_t errlen)
{
	int fd, rc;

	if ((rc = smig_image_path(path, pathlen, dir, h->rank,
				  h->generation)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: image path too long", dir);
		return rc;
	}
	snprintf(tmp, tmplen, "%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": cannot create temporary file: %s",
			      path, h->generation, strerror(-rc));
		return rc;
	}
	return fd;
}

/*
 * commit_tmp - the temporary image fd (tmp) is written: owner uid/gid
 * ((uint32_t) -1: leave it), fsync, close, rename to path, fsync of dir.
 * Closes fd; removes tmp on failure.
 * RET 0 or a negative code with a message in errbuf
 */
static int commit_tmp(int fd, const char *tmp, const char *path,
		      const char *dir, uint64_t gen, uint32_t uid,
		      uint32_t gid, char *pathbuf, size_t pathlen,
		      char *errbuf, size_t errlen)
{
	const char *what = "chown";
	int rc;

	if ((uid != (uint32_t) -1 && geteuid() != uid &&
	     fchown(fd, uid, gid) < 0) ||
	    (what = "fsync", fsync(fd) < 0)) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": %s: %s",
			      tmp, gen, what, strerror(-rc));
		close(fd);
		goto out_unlink;
	}
	if (close(fd) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": close: %s",
			      tmp, gen, strerror(-rc));
		goto out_unlink;
	}
	if (rename(tmp, path) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": rename to %s: %s",
			      tmp, gen, path, strerror(-rc));
		goto out_unlink;
	}
	/* The rename is durable only once the directory is on disk. */
	if ((rc = smig_img_fsync_dir(dir)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: fsync of directory %s: %s",
			      path, dir, strerror(-rc));
		return rc;
	}
	if (pathbuf && pathlen)
		snprintf(pathbuf, pathlen, "%s", path);
	return 0;

out_unlink:
	unlink(tmp);
	return rc;
}

/*
 * copy_range - len bytes of in_fd at in_off to out_fd at out_off, in the
 * kernel (copy_file_range(): page cache to page cache, a server-side copy
 * on NFS 4.2); a read/write loop where the kernel refuses (another file
 * system type, an old kernel)
 * RET 0, -EIO if in_fd ended early, or -errno
 */
static int copy_range(int in_fd, uint64_t in_off, int out_fd,
		      uint64_t out_off, uint64_t len)
{
	loff_t ioff = (loff_t) in_off, ooff = (loff_t) out_off;
	char *buf = NULL;
	int rc = 0;

	while (len > 0) {
		size_t want = len > (1u << 30) ? (1u << 30) : (size_t) len;
		ssize_t n = copy_file_range(in_fd, &ioff, out_fd, &ooff, want,
					    0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EINVAL ||
			      errno == ENOSYS || errno == EOPNOTSUPP ||
			      errno == EBADF))
			break;	/* the read/write loop below */
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		len -= (uint64_t) n;
	}
	if (len && !(buf = malloc(SMIG_IMG_CHUNK)))
		return -ENOMEM;
	while (len > 0 && !rc) {
		size_t want = len > SMIG_IMG_CHUNK ? SMIG_IMG_CHUNK :
						     (size_t) len;
		ssize_t n = pread(in_fd, buf, want, ioff);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		rc = pwrite_all(out_fd, buf, (size_t) n, ooff);
		ioff += n;
		ooff += n;
		len -= (uint64_t) n;
	}
	free(buf);
	return rc;
}

/*
 * sum_range - XXH3-64 of len bytes of fd at off (one pass, 1 MiB pieces)
 * RET 0, -EIO if the file is shorter, or -errno
 */
static int sum_range(int fd, uint64_t off, uint64_t len, uint64_t *sum)
{
	XXH3_state_t *state = XXH3_createState();
	void *buf = malloc(SMIG_IMG_CHUNK);
	int rc = 0;

	if (!buf || !state || XXH3_64bits_reset(state) != XXH_OK) {
		rc = -ENOMEM;
		goto out;
	}
	while (len > 0) {
		size_t want = len > SMIG_IMG_CHUNK ? SMIG_IMG_CHUNK :
						     (size_t) len;
		ssize_t n = pread(fd, buf, want, (off_t) off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out;
		}
		XXH3_64bits_update(state, buf, (size_t) n);
		off += (uint64_t) n;
		len -= (uint64_t) n;
	}
	*sum = XXH3_64bits_digest(state);
out:
	XXH3_freeState(state);
	free(buf);
	return rc;
}

/*
 * smig_image_write_file - smig_image_write() of a file's bytes: see
 * smig_image.h
 */
int smig_image_write_file(const char *dir, const smig_image_hdr_t *hdr,
			  int in_fd, const char *in_name, uint32_t uid,
			  uint32_t gid, char *pathbuf, size_t pathlen,
			  char *errbuf, size_t errlen)
{
	unsigned char raw[SMIG_IMAGE_HEADER_SIZE];
	char path[4096], tmp[4096 + 16];
	smig_image_hdr_t h = *hdr;
	uint64_t sum = 0;
	int fd, rc;

	if (h.generation == 0 || h.rank >= h.nranks ||
	    h.payload_len > SMIG_IMAGE_MAX_PAYLOAD) {
		smig_img_fail(errbuf, errlen,
			      "%s: rank %" PRIu32 " of %" PRIu32 " generation %" PRIu64 " payload %" PRIu64 " bytes: invalid image fields (generation >= 1, rank < nranks, payload at most %" PRIu64 ")",
			      in_name, h.rank, h.nranks, h.generation,
			      h.payload_len, (uint64_t) SMIG_IMAGE_MAX_PAYLOAD);
		return SMIG_IMAGE_EINVAL;
	}
	if (h.created_ns == 0)
		h.created_ns = now_ns();
	fd = image_tmp(dir, &h, path, sizeof(path), tmp, sizeof(tmp), errbuf,
		       errlen);
	if (fd < 0)
		return fd;
	/* The sum is taken of the bytes as they are in the image. */
	if ((rc = copy_range(in_fd, 0, fd, SMIG_IMAGE_HEADER_SIZE,
			     h.payload_len)) < 0 ||
	    (rc = sum_range(fd, SMIG_IMAGE_HEADER_SIZE, h.payload_len,
			    &sum)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": copying %" PRIu64 " bytes of %s: %s",
			      tmp, h.generation, h.payload_len, in_name,
			      rc == -EIO ? "the file shrank" : strerror(-rc));
		goto out_close_unlink;
	}
	encode_header_sum(&h, sum, raw);
	if ((rc = pwrite_all(fd, raw, sizeof(raw), 0)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": write: %s",
			      tmp, h.generation, strerror(-rc));
		goto out_close_unlink;
	}
	return commit_tmp(fd, tmp, path, dir, h.generation, uid, gid, pathbuf,
			  pathlen, errbuf, errlen);

out_close_unlink:
	close(fd);
	unlink(tmp);
	return rc;
}

/*
 * smig_image_tmp_create - a new temporary image file for hdr in dir (an
 * image written in place, in pieces: libsmig's regions, see smig_image.h)
 */
int smig_image_tmp_create(const char *dir, const smig_image_hdr_t *hdr,
			  char *tmp, size_t tmplen, char *errbuf,
			  size_t errlen)
{
	char path[4096];

	if (hdr->generation == 0 || hdr->rank >= hdr->nranks) {
		smig_img_fail(errbuf, errlen,
			      "%s: rank %" PRIu32 " of %" PRIu32 " generation %" PRIu64 ": invalid image fields (generation >= 1, rank < nranks)",
			      dir, hdr->rank, hdr->nranks, hdr->generation);
		return SMIG_IMAGE_EINVAL;
	}
	return image_tmp(dir, hdr, path, sizeof(path), tmp, tmplen, errbuf,
			 errlen);
}

/*
 * smig_image_tmp_commit - the payload of the temporary image fd is in
 * place: header with the given payload checksum, fsync, rename: see
 * smig_image.h
 */
int smig_image_tmp_commit(const char *dir, const smig_image_hdr_t *hdr,
			  uint64_t payload_hash, int fd, const char *tmp,
			  char *pathbuf, size_t pathlen, char *errbuf,
			  size_t errlen)
{
	unsigned char raw[SMIG_IMAGE_HEADER_SIZE];
	smig_image_hdr_t h = *hdr;
	char path[4096];
	int rc;

	if (h.payload_len > SMIG_IMAGE_MAX_PAYLOAD ||
	    (rc = smig_image_path(path, sizeof(path), dir, h.rank,
				  h.generation)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": payload %" PRIu64 " bytes: too large or path too long",
			      tmp, h.generation, h.payload_len);
		rc = SMIG_IMAGE_EINVAL;
		goto out_close_unlink;
	}
	if (h.created_ns == 0)
		h.created_ns = now_ns();
	encode_header_sum(&h, payload_hash, raw);
	if (ftruncate(fd, (off_t) (SMIG_IMAGE_HEADER_SIZE +
				   h.payload_len)) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": ftruncate: %s",
			      tmp, h.generation, strerror(-rc));
		goto out_close_unlink;
	}
	if ((rc = pwrite_all(fd, raw, sizeof(raw), 0)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": write: %s",
			      tmp, h.generation, strerror(-rc));
		goto out_close_unlink;
	}
	return commit_tmp(fd, tmp, path, dir, h.generation, (uint32_t) -1, 0,
			  pathbuf, pathlen, errbuf, errlen);

out_close_unlink:
	close(fd);
	unlink(tmp);
	return rc;
}

/* smig_image_extract_fd - see smig_image.h */
int smig_image_extract_fd(int img_fd, const smig_image_hdr_t *hdr,
			  const char *img_path, int out_fd,
			  const char *out_name, char *errbuf, size_t errlen)
{
	uint64_t sum = 0;
	int rc;

	if ((rc = copy_range(img_fd, SMIG_IMAGE_HEADER_SIZE, out_fd, 0,
			     hdr->payload_len)) < 0 ||
	    (rc = sum_range(out_fd, 0, hdr->payload_len, &sum)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": copying %" PRIu64 " payload bytes to %s: %s",
			      img_path, hdr->generation, hdr->payload_len,
			      out_name,
			      rc == -EIO ? "the image shrank" : strerror(-rc));
		return rc == -EIO ? SMIG_IMAGE_ETRUNC : rc;
	}
	if (ftruncate(out_fd, (off_t) hdr->payload_len) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: truncate to %" PRIu64 " bytes: %s",
			      out_name, hdr->payload_len, strerror(-rc));
		return rc;
	}
	return smig_img_check_sum(img_path, hdr, sum, errbuf, errlen);
}

/*
 * smig_image_open - open an image and check its header against the file's
 * size (see smig_image.h)
 * RET fd at the payload, or a negative code with a message in errbuf
 */
int smig_image_open(const char *path, smig_image_hdr_t *hdr, char *errbuf,
		      size_t errlen)
{
	unsigned char raw[SMIG_IMAGE_HEADER_SIZE];
	char why[256];
	struct stat st;
	int64_t n;
	int fd, rc;

	/*
	 * O_NONBLOCK: a FIFO put in place of an image must not hang the
	 * reader in open(); it has no effect on the regular files we accept.
	 */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
		       O_NONBLOCK)) < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			smig_img_fail(errbuf, errlen,
				      "%s: is a symbolic link (refused)", path);
		else
			smig_img_fail(errbuf, errlen, "%s: open: %s", path,
				      strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: fstat: %s", path, strerror(-rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		smig_img_fail(errbuf, errlen, "%s: not a regular file (refused)", path);
		goto out_close;
	}
	if ((n = smig_img_read_full(fd, raw, sizeof(raw))) < 0) {
		rc = (int) n;
		smig_img_fail(errbuf, errlen, "%s: read: %s", path, strerror(-rc));
		goto out_close;
	}
	if ((rc = smig_image_decode_header(raw, (size_t) n, hdr, why,
					   sizeof(why))) < 0) {
		smig_img_fail(errbuf, errlen, "%s: %s", path, why);
		goto out_close;
	}
	if ((uint64_t) st.st_size - SMIG_IMAGE_HEADER_SIZE !=
	    hdr->payload_len) {
		uint64_t have = (uint64_t) st.st_size - SMIG_IMAGE_HEADER_SIZE;

		rc = have < hdr->payload_len ? SMIG_IMAGE_ETRUNC :
					       SMIG_IMAGE_EINVAL;
		smig_img_fail(errbuf, errlen,
			      "%s: generation %" PRIu64 ": %s: %" PRIu64 " payload bytes, header says %" PRIu64,
			      path, hdr->generation,
			      have < hdr->payload_len ? "truncated" : "trailing bytes",
			      have, hdr->payload_len);
		goto out_close;
	}
	return fd;

out_close:
	close(fd);
	return rc;
}

int smig_img_check_sum(const char *path, const smig_image_hdr_t *hdr,
		     uint64_t have, char *errbuf, size_t errlen)
{
	if (have == hdr->payload_hash)
		return 0;
	smig_img_fail(errbuf, errlen,
		      "%s: generation %" PRIu64 ": payload checksum mismatch (expected %016" PRIx64 ", found %016" PRIx64 ")",
		      path, hdr->generation, hdr->payload_hash, have);
	return SMIG_IMAGE_ESUM;
}

/*
 * prefault - map every page of a new buffer writable before read() fills
 * it: one madvise(MADV_POPULATE_WRITE) (Linux 5.14) instead of a page fault
 * per 4 KiB inside read(), or a write to each page where the kernel lacks
 * it. Measured (bench-images, a VM, 256 MiB): a cold read into a fresh
 * buffer was 0.55 of a raw read without it, because both read()'s faults
 * and the checksum's first pass over pages that read() faulted in cost far
 * more than a populated mapping.
 */
static void prefault(void *buf, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t start, end;

	if (page <= 0 || len < (size_t) page * 16)
		return;
	start = ((uintptr_t) buf + (uintptr_t) page - 1) &
		~((uintptr_t) page - 1);
	end = ((uintptr_t) buf + len) & ~((uintptr_t) page - 1);
	if (end <= start)
		return;
#ifdef MADV_POPULATE_WRITE
	if (madvise((void *) start, end - start, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	for (volatile char *p = (char *) start; (uintptr_t) p < end;
	     p += page)
		*p = 0;
}

/*
 * smig_image_read - read and verify a whole image
 * OUT hdr     - header fields
 * OUT payload - new buffer, caller frees with free(); set only on success
 * RET 0 or a negative code with a message in errbuf
 * The file is opened with O_NOFOLLOW: a symbolic link is refused.
 */
int smig_image_read(const char *path, smig_image_hdr_t *hdr, void **payload,
		    char *errbuf, size_t errlen)
{
	void *buf;
	int64_t n;
	int fd, rc;

	if ((fd = smig_image_open(path, hdr, errbuf, errlen)) < 0)
		return fd;
	if (hdr->payload_len > SIZE_MAX - 1 ||
	    !(buf = malloc(hdr->payload_len ? (size_t) hdr->payload_len : 1))) {
		rc = -ENOMEM;
		smig_img_fail(errbuf, errlen,
			      "%s: generation %" PRIu64 ": cannot allocate %" PRIu64 " bytes",
			      path, hdr->generation, hdr->payload_len);
		goto out_close;
	}
	prefault(buf, (size_t) hdr->payload_len);
	n = smig_img_read_full(fd, buf, (size_t) hdr->payload_len);
	if (n < 0 || (uint64_t) n != hdr->payload_len) {
		rc = n < 0 ? (int) n : SMIG_IMAGE_ETRUNC;
		smig_img_fail(errbuf, errlen, "%s: generation %" PRIu64 ": read: %s",
			      path, hdr->generation,
			      n < 0 ? strerror(-rc) : "file shrank while read");
		goto out_free;
	}
	if ((rc = smig_img_check_sum(path, hdr, XXH3_64bits(buf, (size_t) n), errbuf,
			    errlen)) < 0)
		goto out_free;
	*payload = buf;
	close(fd);
	return 0;

out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

/*
 * smig_image_verify - check an image without keeping its payload (streams
 * the checksum in 1 MiB chunks; constant memory)
 * OUT hdr - header fields (may be set even on error)
 * RET 0 or a negative code with a message in errbuf
 */
int smig_image_verify(const char *path, smig_image_hdr_t *hdr, char *errbuf,
		      size_t errlen)
{
	XXH3_state_t *state;
	uint64_t left;
	void *buf;
	int fd, rc;

	if ((fd = smig_image_open(path, hdr, errbuf, errlen)) < 0)
		return fd;
	buf = malloc(SMIG_IMG_CHUNK);
	state = XXH3_createState();
	if (!buf || !state || XXH3_64bits_reset(state) != XXH_OK) {
		rc = -ENOMEM;
		smig_img_fail(errbuf, errlen, "%s: out of memory", path);
		goto out_free;
	}
	for (left = hdr->payload_len; left > 0;) {
		size_t want = left > SMIG_IMG_CHUNK ? SMIG_IMG_CHUNK : (size_t) left;
		int64_t n = smig_img_read_full(fd, buf, want);

		if (n < 0 || (size_t) n != want) {
			rc = n < 0 ? (int) n : SMIG_IMAGE_ETRUNC;
			smig_img_fail(errbuf, errlen,
				      "%s: generation %" PRIu64 ": read: %s", path,
				      hdr->generation,
				      n < 0 ? strerror(-rc) : "file shrank while read");
			goto out_free;
		}
		XXH3_64bits_update(state, buf, want);
		left -= want;
	}
	rc = smig_img_check_sum(path, hdr, XXH3_64bits_digest(state), errbuf, errlen);
out_free:
	XXH3_freeState(state);
	free(buf);
	close(fd);
	return rc;
}

/* ------------------------------------------------------------ the store */

/* fsync_dir - make a rename in dir durable. RET 0 or -errno */
int smig_img_fsync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (dfd < 0)
		return -errno;
	if (fsync(dfd) < 0)
		rc = -errno;
	close(dfd);
	return rc;
}
