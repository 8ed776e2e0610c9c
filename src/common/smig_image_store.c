/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_image_store.c - a job's image directory as a store: its manifest of
 * good generations ("good"), the commit of a generation, image names, and
 * pruning what no good generation needs (smig_image.c writes and reads the
 * images themselves)
 */
#define _GNU_SOURCE 1	/* mkostemp() */
#include "smig_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smig_image.h"
#include "smig_image_int.h"

/*
 * smig_store_good_read - see smig_image.h. The manifest is small and
 * written by root or the job's user only; it is parsed strictly anyway.
 */
int smig_store_good_read(const char *dir, uint64_t *gens, size_t *n,
			 char *errbuf, size_t errlen)
{
	char path[4096], line[128];
	unsigned lineno = 0;
	uint64_t prev = 0;
	FILE *f;
	int fd, rc = 0;

	*n = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, SMIG_STORE_MANIFEST) >=
	    (int) sizeof(path)) {
		smig_img_fail(errbuf, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		       O_CLOEXEC)) < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return 0;
		smig_img_fail(errbuf, errlen, "%s: cannot open: %s", path,
			      strerror(-rc));
		return rc;
	}
	if (!(f = fdopen(fd, "r"))) {
		rc = -errno;
		close(fd);
		smig_img_fail(errbuf, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long g;
		char *end;

		lineno++;
		if (!strchr(line, '\n')) {
			smig_img_fail(errbuf, errlen, "%s:%u: line too long", path,
				      lineno);
			rc = SMIG_IMAGE_EINVAL;
			break;
		}
		*strchr(line, '\n') = '\0';
		if (lineno == 1) {
			if (strcmp(line, "smig-good 1")) {
				smig_img_fail(errbuf, errlen, "%s:1: \"%.40s\": not \"smig-good 1\"",
					      path, line);
				rc = SMIG_IMAGE_EVERSION;
				break;
			}
			continue;
		}
		errno = 0;
		if (strncmp(line, "gen ", 4) || line[4] < '1' ||
		    line[4] > '9' || (g = strtoull(line + 4, &end, 10),
				      errno || *end) || g <= prev) {
			smig_img_fail(errbuf, errlen, "%s:%u: \"%.40s\": not \"gen G\" with G above %" PRIu64,
				      path, lineno, line, prev);
			rc = SMIG_IMAGE_EINVAL;
			break;
		}
		if (*n == SMIG_STORE_MAX_GOOD) {
			smig_img_fail(errbuf, errlen, "%s:%u: more than %d generations",
				      path, lineno, SMIG_STORE_MAX_GOOD);
			rc = SMIG_IMAGE_EINVAL;
			break;
		}
		gens[(*n)++] = prev = g;
	}
	if (!rc && ferror(f)) {
		rc = -EIO;
		smig_img_fail(errbuf, errlen, "%s: read error", path);
	}
	if (!rc && lineno == 0) {
		smig_img_fail(errbuf, errlen, "%s: empty", path);
		rc = SMIG_IMAGE_ETRUNC;
	}
	fclose(f);
	if (rc)
		*n = 0;
	return rc;
}

/* smig_store_commit - see smig_image.h */
int smig_store_commit(const char *dir, uint64_t gen, uint32_t retain,
		      uint32_t uid, uint32_t gid, uint64_t *keep_from,
		      char *errbuf, size_t errlen)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD + 1];
	char path[4096], tmp[4096 + 16], text[SMIG_STORE_MAX_GOOD * 28 + 16];
	size_t n = 0, first, i;
	int fd, rc, len;

	if (gen == 0 || retain == 0) {
		smig_img_fail(errbuf, errlen, "%s: commit of generation %" PRIu64 " retain %" PRIu32 ": both must be >= 1",
			      dir, gen, retain);
		return SMIG_IMAGE_EINVAL;
	}
	/* A bad manifest is replaced: the balancer's word is the truth. */
	if (smig_store_good_read(dir, gens, &n, errbuf, errlen) < 0)
		n = 0;
	while (n > 0 && gens[n - 1] >= gen)
		n--;	/* a restarted job may reuse numbers: newest wins */
	gens[n++] = gen;
	if (retain > SMIG_STORE_MAX_GOOD)
		retain = SMIG_STORE_MAX_GOOD;
	first = n > retain ? n - retain : 0;
	*keep_from = gens[first];

	len = snprintf(text, sizeof(text), "smig-good 1\n");
	for (i = first; i < n; i++)
		len += snprintf(text + len, sizeof(text) - len,
				"gen %" PRIu64 "\n", gens[i]);
	snprintf(path, sizeof(path), "%s/%s", dir, SMIG_STORE_MANIFEST);
	snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: cannot create temporary file: %s",
			      path, strerror(-rc));
		return rc;
	}
	if ((rc = smig_img_write_all(fd, text, len)) < 0 ||
	    (uid != (uint32_t) -1 && geteuid() != uid &&
	     fchown(fd, uid, gid) < 0 &&
	     (rc = -errno)) ||
	    (fsync(fd) < 0 && (rc = -errno))) {
		smig_img_fail(errbuf, errlen, "%s: %s", tmp, strerror(-rc));
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = -errno;
		smig_img_fail(errbuf, errlen, "%s: rename to %s: %s", tmp, path,
			      strerror(-rc));
		unlink(tmp);
		return rc;
	}
	if ((rc = smig_img_fsync_dir(dir)) < 0) {
		smig_img_fail(errbuf, errlen, "%s: fsync of directory %s: %s", path,
			      dir, strerror(-rc));
		return rc;
	}
	return 0;
}

/*
 * smig_image_parse_name - "rank<R>.g<G>.img" or
 * "rank<R>.g<G>.img.tmp.XXXXXX"
 * RET true with *rank, *gen, *tmp set
 */
bool smig_image_parse_name(const char *name, uint32_t *rank, uint64_t *gen,
			     bool *tmp)
{
	unsigned long long r, g;
	char *end;

	if (strncmp(name, "rank", 4) || name[4] < '0' || name[4] > '9')
		return false;
	errno = 0;
	r = strtoull(name + 4, &end, 10);
	if (errno || r > UINT32_MAX || strncmp(end, ".g", 2) ||
	    end[2] < '0' || end[2] > '9')
		return false;
	g = strtoull(end + 2, &end, 10);
	if (errno || strncmp(end, ".img", 4))
		return false;
	if (end[4] == '\0')
		*tmp = false;
	else if (!strncmp(end + 4, ".tmp.", 5))
		*tmp = true;
	else
		return false;
	*rank = r;
	*gen = g;
	return true;
}

/* smig_store_prune - see smig_image.h */
int smig_store_prune(const char *dir, const uint32_t *ranks, size_t nranks,
		     uint64_t keep_from, uint64_t newest, char *errbuf,
		     size_t errlen)
{
	struct dirent *de;
	int dfd, deleted = 0, rc = 0;
	DIR *d;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		smig_img_fail(errbuf, errlen, "%s: cannot read the directory: %s", dir,
			      strerror(-rc));
		return rc;
	}
	while ((de = readdir(d))) {
		uint32_t rank;
		uint64_t gen;
		bool tmp, mine = false;

		if (!smig_image_parse_name(de->d_name, &rank, &gen, &tmp))
			continue;
		for (size_t i = 0; i < nranks && !mine; i++)
			mine = ranks[i] == rank;
		if (!mine || (tmp ? gen > newest : gen >= keep_from))
			continue;
		if (unlinkat(dfd, de->d_name, 0) < 0) {
			rc = -errno;
			smig_img_fail(errbuf, errlen, "%s/%s: cannot delete: %s", dir,
				      de->d_name, strerror(-rc));
			continue;
		}
		deleted++;
	}
	closedir(d);
	if (deleted)
		smig_img_fsync_dir(dir);
	return rc ? rc : deleted;
}
