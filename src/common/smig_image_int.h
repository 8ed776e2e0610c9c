/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_image_int.h - helpers shared by smig_image.c and
 * smig_image_handoff.c (not part of the image API)
 */
#ifndef SMIG_IMAGE_INT_H
#define SMIG_IMAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "smig_image.h"

/* Streaming reads and checksums go in pieces of this size. */
#define SMIG_IMG_CHUNK (1024 * 1024)

/* smig_img_fail - the message into errbuf (if any) */
void smig_img_fail(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* smig_img_write_all - all of buf. RET 0 or -errno */
int smig_img_write_all(int fd, const void *buf, uint64_t len);

/* smig_img_read_full - up to len bytes, short only at end of file.
 * RET bytes or -errno */
int64_t smig_img_read_full(int fd, void *buf, size_t len);

/* smig_img_fsync_dir - make a rename in dir durable. RET 0 or -errno */
int smig_img_fsync_dir(const char *dir);

/* smig_img_check_sum - have is hdr's payload checksum, else
 * SMIG_IMAGE_ESUM with a message naming path */
int smig_img_check_sum(const char *path, const smig_image_hdr_t *hdr,
		       uint64_t have, char *errbuf, size_t errlen);

#endif /* SMIG_IMAGE_INT_H */
