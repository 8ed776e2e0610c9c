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

/* Little-endian fields of the image header and the region container. */
static inline void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

static inline uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

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
