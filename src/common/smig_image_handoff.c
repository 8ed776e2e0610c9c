/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_image_handoff.c - an image from one node's store to another's
 * (smig_image_send(), smig_image_receive()) and the identity of a store's
 * directory (smig_dir_id_get(), smig_dir_check())
 *
 * libc + libxxhash only, as smig_image.c.
 */
#define _GNU_SOURCE 1	/* mkostemp() */
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

/* ------------------------------------------------------------ hand-off */

/* smig_image_send - see smig_image.h */
int smig_image_send(const char *path, int out_fd, uint64_t len, char *errbuf,
		    size_t errlen)
{
	uint64_t left = len;
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: open: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t) st.st_size != len) {
		smig_img_fail(errbuf, errlen, "%s: not a regular file of %" PRIu64 " bytes",
			      path, len);
		close(fd);
		return SMIG_IMAGE_EINVAL;
	}
	while (left > 0) {
		size_t n = left > (1u << 30) ? (1u << 30) : (size_t) left;
		ssize_t w = sendfile(out_fd, fd, NULL, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : SMIG_IMAGE_ETRUNC;
			smig_img_fail(errbuf, errlen, "%s: sending byte %" PRIu64 " of %" PRIu64 ": %s",
				      path, len - left, len,
				      w < 0 ? strerror(-rc) : "file shrank");
			break;
		}
		left -= (uint64_t) w;
	}
	close(fd);
	return rc;
}

/* smig_image_receive - see smig_image.h */
int smig_image_receive(const char *dir, uint32_t job_id, uint32_t rank,
		       uint64_t gen, int in_fd, uint64_t len, uint32_t uid,
		       uint32_t gid, smig_image_hdr_t *hdr, char *errbuf,
		       size_t errlen)
{
	unsigned char *buf = NULL;
	char path[4096], tmp[4096 + 16];
	XXH3_state_t *state = NULL;
	uint64_t got = 0;
	int fd, rc;

	if ((rc = smig_image_path(path, sizeof(path), dir, rank, gen)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: image path too long", dir);
		return rc;
	}
	if (len < SMIG_IMAGE_HEADER_SIZE ||
	    len - SMIG_IMAGE_HEADER_SIZE > SMIG_IMAGE_MAX_PAYLOAD) {
		smig_img_fail(errbuf, errlen, "%s: %" PRIu64 " bytes announced: not the size of an image",
			      path, len);
		return SMIG_IMAGE_EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: cannot create temporary file: %s",
			      path, strerror(-rc));
		return rc;
	}
	if (uid != (uint32_t) -1 && geteuid() != uid &&
	    fchown(fd, uid, gid) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: chown to %u:%u: %s", tmp, uid, gid,
			      strerror(-rc));
		goto out_unlink;
	}
	buf = malloc(SMIG_IMG_CHUNK);
	state = XXH3_createState();
	if (!buf || !state || XXH3_64bits_reset(state) != XXH_OK) {
		rc = -ENOMEM;
		smig_img_fail(errbuf, errlen, "%s: out of memory", path);
		goto out_unlink;
	}
	while (got < len) {
		size_t want = len - got > SMIG_IMG_CHUNK ? SMIG_IMG_CHUNK : (size_t) (len - got);
		int64_t n;

		/* The header first, alone: it says what the payload is. */
		if (got < SMIG_IMAGE_HEADER_SIZE)
			want = SMIG_IMAGE_HEADER_SIZE;
		n = smig_img_read_full(in_fd, buf, want);
		if (n < 0 || (size_t) n != want) {
			rc = n < 0 ? (int) n : SMIG_IMAGE_ETRUNC;
			smig_img_fail(errbuf, errlen, "%s: receiving byte %" PRIu64 " of %" PRIu64 ": %s",
				      path, got + (n > 0 ? n : 0), len,
				      n < 0 ? strerror(-rc) : "connection closed");
			goto out_unlink;
		}
		if (got == 0) {
			char why[256];

			if ((rc = smig_image_decode_header(buf, n, hdr, why,
							   sizeof(why))) < 0) {
				smig_img_fail(errbuf, errlen, "%s: %s", path, why);
				goto out_unlink;
			}
			if (hdr->job_id != job_id || hdr->rank != rank ||
			    hdr->generation != gen ||
			    hdr->payload_len != len - SMIG_IMAGE_HEADER_SIZE) {
				smig_img_fail(errbuf, errlen, "%s: header says job %u rank %u generation %" PRIu64 " payload %" PRIu64 ", expected job %u rank %u generation %" PRIu64 " payload %" PRIu64,
					      path, hdr->job_id, hdr->rank,
					      hdr->generation, hdr->payload_len,
					      job_id, rank, gen,
					      len - SMIG_IMAGE_HEADER_SIZE);
				rc = SMIG_IMAGE_EINVAL;
				goto out_unlink;
			}
		} else {
			XXH3_64bits_update(state, buf, n);
		}
		if ((rc = smig_img_write_all(fd, buf, n)) < 0) {
			smig_img_fail(errbuf, errlen, "%s: write: %s", tmp,
				      strerror(-rc));
			goto out_unlink;
		}
		got += (uint64_t) n;
	}
	if ((rc = smig_img_check_sum(path, hdr, XXH3_64bits_digest(state), errbuf,
			    errlen)) < 0)
		goto out_unlink;
	if (fsync(fd) < 0 || close(fd) < 0) {
		rc = -errno;
		fd = -1;
		smig_img_fail(errbuf, errlen, "%s: fsync: %s", tmp, strerror(-rc));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: rename to %s: %s", tmp, path,
			      strerror(-rc));
		goto out_unlink;
	}
	if ((rc = smig_img_fsync_dir(dir)) < 0)
		smig_img_fail(errbuf, errlen, "%s: fsync of directory %s: %s", path,
			      dir, strerror(-rc));
	goto out_free;

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out_free:
	XXH3_freeState(state);
	free(buf);
	return rc;
}

/* smig_dir_id_get - see smig_image.h */
int smig_dir_id_get(const char *dir, smig_dir_id_t *id, char *errbuf,
		    size_t errlen)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		int e = errno;

		smig_img_fail(errbuf, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		smig_img_fail(errbuf, errlen, "%s: %s, not a directory: refused", dir,
			      S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
		return -ENOTDIR;
	}
	id->dev = (uint64_t) st.st_dev;
	id->ino = (uint64_t) st.st_ino;
	id->uid = (uint32_t) st.st_uid;
	return 0;
}

/* smig_dir_check - see smig_image.h */
int smig_dir_check(const char *dir, const smig_dir_id_t *id, char *errbuf,
		   size_t errlen)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		int e = errno;

		smig_img_fail(errbuf, errlen, "%s: the job directory is gone: %s", dir,
			      strerror(e));
		return -e;
	}
	if (S_ISLNK(st.st_mode)) {
		smig_img_fail(errbuf, errlen, "%s: the job directory was replaced by a symbolic link while the job runs: refused (nothing written through it)",
			      dir);
		return -ELOOP;
	}
	if (!S_ISDIR(st.st_mode) || (uint64_t) st.st_dev != id->dev ||
	    (uint64_t) st.st_ino != id->ino) {
		smig_img_fail(errbuf, errlen, "%s: the job directory was replaced while the job runs (not the directory made at the step's start): refused",
			      dir);
		return -EXDEV;
	}
	if ((uint32_t) st.st_uid != id->uid) {
		smig_img_fail(errbuf, errlen, "%s: the job directory is now owned by uid %u, not %u: refused",
			      dir, (unsigned) st.st_uid, (unsigned) id->uid);
		return -EPERM;
	}
	return 0;
}
