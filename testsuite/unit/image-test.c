/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-test.c - recovery images: atomic write, read, verify, corruption
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <xxhash.h>

#include "smig_agent_store.h"
#include "smig_image.h"

static char *tmpdir;
static char errbuf[512];

static void setup(void)
{
	tmpdir = g_dir_make_tmp("image-test-XXXXXX", NULL);
	ck_assert_ptr_nonnull(tmpdir);
	errbuf[0] = '\0';
}

static void teardown(void)
{
	const char *name;
	GDir *d = g_dir_open(tmpdir, 0, NULL);

	while (d && (name = g_dir_read_name(d))) {
		char *p = g_build_filename(tmpdir, name, NULL);

		g_remove(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(tmpdir);
	g_clear_pointer(&tmpdir, g_free);
}

static smig_image_hdr_t make_hdr(uint64_t len)
{
	smig_image_hdr_t h = {
		.job_id = 42,
		.step_id = 3,
		.rank = 1,
		.nranks = 4,
		.generation = 7,
		.safepoint = 1234,
		.payload_len = len,
		.created_ns = 1700000000123456789ull,
	};

	strcpy(h.tag, "heat");
	return h;
}

/* Write a test image; RET its path (g_free) and the payload (g_free). */
static char *write_image(uint64_t len, unsigned char **payload_out)
{
	smig_image_hdr_t h = make_hdr(len);
	unsigned char *payload = g_malloc(len ? len : 1);
	char path[4096];

	for (uint64_t i = 0; i < len; i++)
		payload[i] = (unsigned char) (i * 31 + 7);
	ck_assert_msg(smig_image_write(tmpdir, &h, payload, path, sizeof(path),
				       errbuf, sizeof(errbuf)) == 0,
		      "%s", errbuf);
	if (payload_out)
		*payload_out = payload;
	else
		g_free(payload);
	return g_strdup(path);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x01;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* Both readers must refuse with the same code and message. */
static void expect_refused(const char *path, int code, const char *msg)
{
	smig_image_hdr_t h;
	void *payload = NULL;
	char buf2[512];

	ck_assert_int_eq(smig_image_read(path, &h, &payload, errbuf,
					 sizeof(errbuf)), code);
	ck_assert_ptr_null(payload);
	ck_assert_str_eq(errbuf, msg);
	ck_assert_int_eq(smig_image_verify(path, &h, buf2, sizeof(buf2)), code);
	ck_assert_str_eq(buf2, msg);
}

START_TEST(test_path)
{
	char buf[64];

	ck_assert_int_eq(smig_image_path(buf, sizeof(buf), "/img/42", 3, 12), 0);
	ck_assert_str_eq(buf, "/img/42/rank3.g12.img");
	ck_assert_int_eq(smig_image_path(buf, 10, "/img/42", 3, 12),
			 -ENAMETOOLONG);
}
END_TEST

START_TEST(test_write_read)
{
	unsigned char *payload;
	char *path = write_image(100000, &payload);
	char *want = g_strdup_printf("%s/rank1.g7.img", tmpdir);
	smig_image_hdr_t h;
	void *got = NULL;
	struct stat st;
	GDir *d;
	const char *name;
	int n = 0;

	ck_assert_str_eq(path, want);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_size, SMIG_IMAGE_HEADER_SIZE + 100000);
	/* Only the final name is left behind: no temporary file. */
	d = g_dir_open(tmpdir, 0, NULL);
	while ((name = g_dir_read_name(d)))
		n++;
	g_dir_close(d);
	ck_assert_int_eq(n, 1);

	ck_assert_int_eq(smig_image_read(path, &h, &got, errbuf,
					 sizeof(errbuf)), 0);
	ck_assert(!memcmp(got, payload, 100000));
	ck_assert_uint_eq(h.job_id, 42);
	ck_assert_uint_eq(h.step_id, 3);
	ck_assert_uint_eq(h.rank, 1);
	ck_assert_uint_eq(h.nranks, 4);
	ck_assert_uint_eq(h.generation, 7);
	ck_assert_uint_eq(h.safepoint, 1234);
	ck_assert_uint_eq(h.payload_len, 100000);
	ck_assert_uint_eq(h.created_ns, 1700000000123456789ull);
	ck_assert_str_eq(h.tag, "heat");
	free(got);

	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(smig_image_verify(path, &h, errbuf, sizeof(errbuf)), 0);
	ck_assert_uint_eq(h.generation, 7);
	g_free(payload);
	g_free(path);
	g_free(want);
}
END_TEST

START_TEST(test_empty_and_big)
{
	char *path = write_image(0, NULL);
	smig_image_hdr_t h;
	void *got = NULL;

	ck_assert_int_eq(smig_image_read(path, &h, &got, errbuf,
					 sizeof(errbuf)), 0);
	ck_assert_uint_eq(h.payload_len, 0);
	free(got);
	g_free(path);

	/* Several 1 MiB chunks and a partial one for the streaming checksum. */
	path = write_image(3 * 1024 * 1024 + 17, NULL);
	ck_assert_int_eq(smig_image_verify(path, &h, errbuf, sizeof(errbuf)), 0);
	g_free(path);
}
END_TEST

/*
 * An image written in pieces (two 8 MiB pieces and a partial one, each
 * summed as it is written, the header last) is byte for byte the header
 * smig_image_encode_header() makes of the whole payload, followed by the
 * payload, and reads back whole.
 */
START_TEST(test_write_in_pieces)
{
	uint64_t len = 2 * 8 * 1024 * 1024 + 4099;
	smig_image_hdr_t h = make_hdr(len), got;
	unsigned char want[SMIG_IMAGE_HEADER_SIZE], *payload, *file;
	void *back = NULL;
	gsize flen;
	char *path;

	path = write_image(len, &payload);
	ck_assert(g_file_get_contents(path, (char **) &file, &flen, NULL));
	ck_assert_uint_eq(flen, SMIG_IMAGE_HEADER_SIZE + len);
	/* created_ns is the writer's: take it from the file. */
	ck_assert_int_eq(smig_image_read(path, &got, &back, errbuf,
					 sizeof(errbuf)), 0);
	h.created_ns = got.created_ns;
	smig_image_encode_header(&h, payload, want);
	ck_assert_mem_eq(file, want, SMIG_IMAGE_HEADER_SIZE);
	ck_assert_mem_eq(file + SMIG_IMAGE_HEADER_SIZE, payload, len);
	ck_assert_mem_eq(back, payload, len);
	free(back);
	g_free(file);
	g_free(payload);
	g_free(path);
}
END_TEST

/* put_file - len pattern bytes into "<dir>/name"; RET the path (g_free) */
static char *put_file(const char *dir, const char *name, uint64_t len,
		      unsigned char **bytes)
{
	unsigned char *b = g_malloc(len ? len : 1);
	char *p = g_build_filename(dir, name, NULL);

	for (uint64_t i = 0; i < len; i++)
		b[i] = (unsigned char) (i * 131 + 11);
	ck_assert(g_file_set_contents(p, (const char *) b, (gssize) len,
				      NULL));
	*bytes = b;
	return p;
}

/* left_tmp - a temporary image name is left in dir */
static bool left_tmp(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	bool found = false;

	while (d && (name = g_dir_read_name(d)))
		found |= strstr(name, ".img.tmp.") != NULL;
	if (d)
		g_dir_close(d);
	return found;
}

/*
 * A file handed over (smig_capture_file(), capture=signal) becomes an image
 * byte for byte the one smig_image_write() makes of the same bytes: empty,
 * small, and several 1 MiB checksum pieces; from the same file system and
 * from another one (/dev/shm: copy_file_range() may refuse, the read/write
 * loop takes over); no temporary file is left.
 */
START_TEST(test_write_file)
{
	static const uint64_t lens[] = { 0, 5, 3 * 1024 * 1024 + 17 };
	char *other = g_dir_make_tmp("image-test-ref-XXXXXX", NULL);
	char *shm = g_strdup("/dev/shm/image-test-XXXXXX");

	ck_assert_ptr_nonnull(other);
	ck_assert_ptr_nonnull(g_mkdtemp(shm));
	for (size_t i = 0; i < G_N_ELEMENTS(lens) * 2; i++) {
		uint64_t len = lens[i / 2];
		smig_image_hdr_t h = make_hdr(len), got;
		char *src, *ref, *img, path[4096];
		unsigned char *bytes;
		gchar *a, *b;
		gsize alen, blen;
		int fd;

		src = put_file(i % 2 ? shm : tmpdir, "ckpt", len, &bytes);
		fd = open(src, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_msg(smig_image_write_file(tmpdir, &h, fd, src,
						    (uint32_t) -1, 0, path,
						    sizeof(path), errbuf,
						    sizeof(errbuf)) == 0,
			      "%s", errbuf);
		close(fd);
		img = g_strdup_printf("%s/rank1.g7.img", tmpdir);
		ck_assert_str_eq(path, img);
		ck_assert_int_eq(smig_image_verify(img, &got, errbuf,
						   sizeof(errbuf)), 0);
		ck_assert_uint_eq(got.payload_len, len);
		ck_assert_int_eq(smig_image_write(other, &h, bytes, NULL, 0,
						  errbuf, sizeof(errbuf)), 0);
		ref = g_strdup_printf("%s/rank1.g7.img", other);
		ck_assert(g_file_get_contents(img, &a, &alen, NULL));
		ck_assert(g_file_get_contents(ref, &b, &blen, NULL));
		ck_assert_uint_eq(alen, blen);
		ck_assert_mem_eq(a, b, alen);
		ck_assert(!left_tmp(tmpdir));
		g_remove(src);
		g_remove(ref);
		g_free(a);
		g_free(b);
		g_free(src);
		g_free(ref);
		g_free(img);
		g_free(bytes);
	}
	g_rmdir(other);
	g_rmdir(shm);
	g_free(other);
	g_free(shm);
}
END_TEST

/*
 * A file shorter than the length announced (it shrank after its size was
 * taken) leaves no image and no temporary file, and says so.
 */
START_TEST(test_write_file_shrank)
{
	smig_image_hdr_t h = make_hdr(100);
	unsigned char *bytes;
	char *src = put_file(tmpdir, "ckpt", 60, &bytes), *want;
	int fd = open(src, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(smig_image_write_file(tmpdir, &h, fd, src,
					       (uint32_t) -1, 0, NULL, 0,
					       errbuf, sizeof(errbuf)), -EIO);
	close(fd);
	want = g_strdup_printf("copying 100 bytes of %s: the file shrank", src);
	ck_assert_msg(strstr(errbuf, want), "%s", errbuf);
	ck_assert(!left_tmp(tmpdir));
	want = (g_free(want), g_strdup_printf("%s/rank1.g7.img", tmpdir));
	ck_assert(!g_file_test(want, G_FILE_TEST_EXISTS));
	g_free(want);
	g_free(src);
	g_free(bytes);
}
END_TEST

/*
 * smig_image_extract_fd() gives the payload back into a file (truncating
 * what was longer there) and refuses, naming the image and both sums,
 * when the payload changed after the header was checked.
 */
START_TEST(test_extract_fd)
{
	uint64_t len = 2 * 1024 * 1024 + 3;
	unsigned char *payload;
	char *path = write_image(len, &payload), *out, *old;
	smig_image_hdr_t h;
	gchar *got;
	gsize glen;
	int ifd, ofd;

	out = put_file(tmpdir, "restored", len + 500, (unsigned char **) &old);
	ifd = smig_image_open(path, &h, errbuf, sizeof(errbuf));
	ck_assert_int_ge(ifd, 0);
	ofd = open(out, O_RDWR);
	ck_assert_int_ge(ofd, 0);
	ck_assert_msg(smig_image_extract_fd(ifd, &h, path, ofd, out, errbuf,
					    sizeof(errbuf)) == 0, "%s", errbuf);
	close(ofd);
	ck_assert(g_file_get_contents(out, &got, &glen, NULL));
	ck_assert_uint_eq(glen, len);
	ck_assert_mem_eq(got, payload, len);
	g_free(got);

	/* One payload bit flipped behind the checked header. */
	flip_byte(path, SMIG_IMAGE_HEADER_SIZE + 1000);
	ofd = open(out, O_RDWR | O_TRUNC);
	ck_assert_int_ge(ofd, 0);
	ck_assert_int_eq(smig_image_extract_fd(ifd, &h, path, ofd, out, errbuf,
					       sizeof(errbuf)),
			 SMIG_IMAGE_ESUM);
	close(ofd);
	close(ifd);
	ck_assert_msg(g_str_has_prefix(errbuf, path) &&
		      strstr(errbuf, ": generation 7: payload checksum mismatch (expected "),
		      "%s", errbuf);
	g_free(out);
	g_free(old);
	g_free(payload);
	g_free(path);
}
END_TEST

/*
 * capture=signal's wrap and unwrap (the node agent) use the same code: a
 * checkpoint file becomes the image of its rank and generation (tag
 * "signal", payload the file) and comes back byte for byte; a damaged
 * image is refused naming the checksum, and leaves no checkpoint file.
 */
START_TEST(test_agent_wrap_unwrap)
{
	uint32_t ranks[] = { 2 };
	smig_dir_id_t id;
	smig_agent_store_t st = {
		.dir = tmpdir, .dir_id = &id, .job_id = 42, .step_id = 3,
		.node = "node1", .ranks = ranks, .nranks = 1, .ntasks = 4,
		.retain = 2,
	};
	uint64_t len = 1024 * 1024 + 5;
	unsigned char *bytes;
	char *ckpt = put_file(tmpdir, "rank2.ckpt", len, &bytes), *img;
	smig_image_hdr_t h;
	gchar *back;
	gsize blen;

	ck_assert_int_eq(smig_dir_id_get(tmpdir, &id, errbuf, sizeof(errbuf)),
			 0);
	ck_assert_msg(smig_agent_store_wrap(&st, 2, 5, ckpt, errbuf,
					    sizeof(errbuf)) == 0, "%s", errbuf);
	img = g_strdup_printf("%s/rank2.g5.img", tmpdir);
	ck_assert_int_eq(smig_image_verify(img, &h, errbuf, sizeof(errbuf)), 0);
	ck_assert_str_eq(h.tag, "signal");
	ck_assert_uint_eq(h.payload_len, len);
	ck_assert_uint_eq(h.rank, 2);
	ck_assert_uint_eq(h.generation, 5);

	g_remove(ckpt);
	ck_assert_msg(smig_agent_store_unwrap(&st, 2, 5, ckpt, getuid(),
					      getgid(), errbuf,
					      sizeof(errbuf)) == 0,
		      "%s", errbuf);
	ck_assert(g_file_get_contents(ckpt, &back, &blen, NULL));
	ck_assert_uint_eq(blen, len);
	ck_assert_mem_eq(back, bytes, len);
	g_free(back);

	g_remove(ckpt);
	flip_byte(img, SMIG_IMAGE_HEADER_SIZE + len - 1);
	ck_assert_int_eq(smig_agent_store_unwrap(&st, 2, 5, ckpt, getuid(),
						 getgid(), errbuf,
						 sizeof(errbuf)),
			 SMIG_IMAGE_ESUM);
	ck_assert_msg(strstr(errbuf, "payload checksum mismatch"), "%s",
		      errbuf);
	ck_assert(!g_file_test(ckpt, G_FILE_TEST_EXISTS));
	g_free(img);
	g_free(ckpt);
	g_free(bytes);
}
END_TEST

START_TEST(test_overwrite_keeps_atomic)
{
	smig_image_hdr_t h = make_hdr(10);
	char *path = write_image(10, NULL);
	unsigned char payload[10] = "abcdefghi";
	void *got = NULL;

	/* Writing the same generation again replaces the file whole. */
	ck_assert_int_eq(smig_image_write(tmpdir, &h, payload, NULL, 0, errbuf,
					  sizeof(errbuf)), 0);
	ck_assert_int_eq(smig_image_read(path, &h, &got, errbuf,
					 sizeof(errbuf)), 0);
	ck_assert(!memcmp(got, payload, 10));
	free(got);
	g_free(path);
}
END_TEST

START_TEST(test_write_errors)
{
	smig_image_hdr_t h = make_hdr(4);
	char *missing = g_build_filename(tmpdir, "absent", NULL);
	char *want;

	h.generation = 0;
	ck_assert_int_eq(smig_image_write(tmpdir, &h, "abcd", NULL, 0, errbuf,
					  sizeof(errbuf)), SMIG_IMAGE_EINVAL);
	want = g_strdup_printf("%s: rank 1 of 4 generation 0 payload 4 bytes: invalid image fields (generation >= 1, rank < nranks, payload given)",
			       tmpdir);
	ck_assert_str_eq(errbuf, want);
	g_free(want);

	h = make_hdr(4);
	ck_assert_int_eq(smig_image_write(missing, &h, "abcd", NULL, 0, errbuf,
					  sizeof(errbuf)), -ENOENT);
	want = g_strdup_printf("%s/rank1.g7.img: generation 7: cannot create temporary file: No such file or directory",
			       missing);
	ck_assert_str_eq(errbuf, want);
	g_free(want);
	g_free(missing);
}
END_TEST

START_TEST(test_corrupt_header)
{
	char *path = write_image(1000, NULL);
	char *want;
	smig_image_hdr_t h;
	char msg[512];

	/* A job id byte: only the header checksum can tell. */
	flip_byte(path, 16);
	ck_assert_int_eq(smig_image_verify(path, &h, msg, sizeof(msg)),
			 SMIG_IMAGE_EHDRSUM);
	want = g_strdup_printf("%s: header checksum mismatch (expected ", path);
	ck_assert_msg(g_str_has_prefix(msg, want), "%s", msg);
	ck_assert(strstr(msg, ", found "));
	g_free(want);
	expect_refused(path, SMIG_IMAGE_EHDRSUM, msg);
	flip_byte(path, 16);
	ck_assert_int_eq(smig_image_verify(path, &h, msg, sizeof(msg)), 0);

	flip_byte(path, 0);
	want = g_strdup_printf("%s: not a recovery image (bad magic)", path);
	expect_refused(path, SMIG_IMAGE_EBADMAGIC, want);
	g_free(want);
	flip_byte(path, 0);

	flip_byte(path, 8);
	want = g_strdup_printf("%s: format version 0 (this build reads 1)",
			       path);
	expect_refused(path, SMIG_IMAGE_EVERSION, want);
	g_free(want);
	flip_byte(path, 8);

	flip_byte(path, 12);
	want = g_strdup_printf("%s: header size 129 (expected 128)", path);
	expect_refused(path, SMIG_IMAGE_EINVAL, want);
	g_free(want);
	g_free(path);
}
END_TEST

START_TEST(test_header_fields)
{
	unsigned char raw[SMIG_IMAGE_HEADER_SIZE];
	smig_image_hdr_t h = make_hdr(0), out;
	uint64_t sum;

	smig_image_encode_header(&h, NULL, raw);
	ck_assert_int_eq(smig_image_decode_header(raw, sizeof(raw), &out,
						  errbuf, sizeof(errbuf)), 0);
	ck_assert_int_eq(smig_image_decode_header(raw, 100, &out, errbuf,
						  sizeof(errbuf)),
			 SMIG_IMAGE_ETRUNC);
	ck_assert_str_eq(errbuf, "header is 100 bytes, shorter than 128");

	/* Fields that pass the checksum but make no sense. */
	h.rank = 4;
	smig_image_encode_header(&h, NULL, raw);
	ck_assert_int_eq(smig_image_decode_header(raw, sizeof(raw), &out,
						  errbuf, sizeof(errbuf)),
			 SMIG_IMAGE_EINVAL);
	ck_assert_str_eq(errbuf, "generation 7: rank 4 of 4 ranks");
	/* payload_len past the limit, with a header checksum that fits. */
	h = make_hdr(0);
	smig_image_encode_header(&h, NULL, raw);
	for (int i = 0; i < 8; i++)
		raw[48 + i] = (unsigned char) ((SMIG_IMAGE_MAX_PAYLOAD + 1) >>
					       (8 * i));
	sum = XXH3_64bits(raw, 120);
	for (int i = 0; i < 8; i++)
		raw[120 + i] = (unsigned char) (sum >> (8 * i));
	ck_assert_int_eq(smig_image_decode_header(raw, sizeof(raw), &out,
						  errbuf, sizeof(errbuf)),
			 SMIG_IMAGE_EINVAL);
	ck_assert_str_eq(errbuf, "generation 7: payload length 68719476737 exceeds the limit (68719476736)");
	h = make_hdr(0);
	h.generation = 0;
	smig_image_encode_header(&h, NULL, raw);
	ck_assert_int_eq(smig_image_decode_header(raw, sizeof(raw), &out,
						  errbuf, sizeof(errbuf)),
			 SMIG_IMAGE_EINVAL);
	ck_assert_str_eq(errbuf, "generation 0 (generations start at 1)");
	/* A tag of exactly 32 bytes has no NUL in the file but in hdr. */
	h = make_hdr(0);
	memset(h.tag, 'T', SMIG_IMAGE_TAG_LEN);
	h.tag[SMIG_IMAGE_TAG_LEN] = '\0';
	smig_image_encode_header(&h, NULL, raw);
	ck_assert_int_eq(smig_image_decode_header(raw, sizeof(raw), &out,
						  errbuf, sizeof(errbuf)), 0);
	ck_assert_uint_eq(strlen(out.tag), SMIG_IMAGE_TAG_LEN);
}
END_TEST

START_TEST(test_corrupt_payload)
{
	char *path = write_image(5000, NULL);
	char *want;
	smig_image_hdr_t h;
	char msg[512];

	flip_byte(path, SMIG_IMAGE_HEADER_SIZE + 4321);
	ck_assert_int_eq(smig_image_verify(path, &h, msg, sizeof(msg)),
			 SMIG_IMAGE_ESUM);
	want = g_strdup_printf("%s: generation 7: payload checksum mismatch (expected %016" G_GINT64_MODIFIER "x, found ",
			       path, h.payload_hash);
	ck_assert_msg(g_str_has_prefix(msg, want), "%s", msg);
	ck_assert_uint_eq(strlen(msg), strlen(want) + 17);
	g_free(want);
	expect_refused(path, SMIG_IMAGE_ESUM, msg);
	g_free(path);
}
END_TEST

START_TEST(test_truncated)
{
	char *path = write_image(5000, NULL);
	char *want;

	ck_assert_int_eq(truncate(path, SMIG_IMAGE_HEADER_SIZE + 4999), 0);
	want = g_strdup_printf("%s: generation 7: truncated: 4999 payload bytes, header says 5000",
			       path);
	expect_refused(path, SMIG_IMAGE_ETRUNC, want);
	g_free(want);

	ck_assert_int_eq(truncate(path, SMIG_IMAGE_HEADER_SIZE + 5001), 0);
	want = g_strdup_printf("%s: generation 7: trailing bytes: 5001 payload bytes, header says 5000",
			       path);
	expect_refused(path, SMIG_IMAGE_EINVAL, want);
	g_free(want);

	ck_assert_int_eq(truncate(path, 60), 0);
	want = g_strdup_printf("%s: header is 60 bytes, shorter than 128", path);
	expect_refused(path, SMIG_IMAGE_ETRUNC, want);
	g_free(want);
	g_free(path);
}
END_TEST

/* The manifest: commit, retention, the newest good one never dropped. */
START_TEST(test_store_manifest)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD], keep = 0;
	size_t n = 99;
	char *p = g_strdup_printf("%s/good", tmpdir), *text = NULL;

	ck_assert_int_eq(smig_store_good_read(tmpdir, gens, &n, errbuf,
					      sizeof(errbuf)), 0);
	ck_assert_uint_eq(n, 0);	/* no manifest yet */
	for (uint64_t g = 1; g <= 4; g++)
		ck_assert_int_eq(smig_store_commit(tmpdir, g, 2, (uint32_t) -1,
						   (uint32_t) -1, &keep, errbuf,
						   sizeof(errbuf)), 0);
	ck_assert_uint_eq(keep, 3);
	ck_assert(g_file_get_contents(p, &text, NULL, NULL));
	ck_assert_str_eq(text, "smig-good 1\ngen 3\ngen 4\n");
	ck_assert_int_eq(smig_store_good_read(tmpdir, gens, &n, errbuf,
					      sizeof(errbuf)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(gens[0], 3);
	ck_assert_uint_eq(gens[1], 4);
	/* retain 1 keeps only the newest */
	ck_assert_int_eq(smig_store_commit(tmpdir, 6, 1, (uint32_t) -1,
					   (uint32_t) -1, &keep, errbuf,
					   sizeof(errbuf)), 0);
	ck_assert_uint_eq(keep, 6);
	g_free(text);
	g_free(p);
}
END_TEST

START_TEST(test_store_manifest_bad)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD];
	char *p = g_strdup_printf("%s/good", tmpdir), *want;
	size_t n = 0;

	ck_assert(g_file_set_contents(p, "smig-good 1\ngen 5\ngen 3\n", -1,
				      NULL));
	ck_assert_int_eq(smig_store_good_read(tmpdir, gens, &n, errbuf,
					      sizeof(errbuf)),
			 SMIG_IMAGE_EINVAL);
	want = g_strdup_printf("%s:3: \"gen 3\": not \"gen G\" with G above 5",
			       p);
	ck_assert_str_eq(errbuf, want);
	ck_assert_uint_eq(n, 0);
	g_free(want);
	ck_assert(g_file_set_contents(p, "smig-good 2\n", -1, NULL));
	ck_assert_int_eq(smig_store_good_read(tmpdir, gens, &n, errbuf,
					      sizeof(errbuf)),
			 SMIG_IMAGE_EVERSION);
	g_free(p);
}
END_TEST

/* Prune: only the given ranks, only below keep_from, stale temporaries. */
START_TEST(test_store_prune)
{
	static const char *const files[] = {
		"rank0.g1.img", "rank0.g2.img", "rank0.g3.img",
		"rank1.g1.img", "rank0.g2.img.tmp.abcdef", "rank0.g9.img.tmp.x",
		"other",
	};
	uint32_t ranks[] = { 0 };

	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		char *p = g_strdup_printf("%s/%s", tmpdir, files[i]);

		ck_assert(g_file_set_contents(p, "x", 1, NULL));
		g_free(p);
	}
	ck_assert_int_eq(smig_store_prune(tmpdir, ranks, 1, 3, 3, errbuf,
					  sizeof(errbuf)), 3);
	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		char *p = g_strdup_printf("%s/%s", tmpdir, files[i]);
		gboolean gone = i == 0 || i == 1 || i == 4;

		ck_assert_msg(g_file_test(p, G_FILE_TEST_EXISTS) == !gone,
			      "%s", files[i]);
		g_free(p);
	}
}
END_TEST

/* Hand-off: an image through a pipe is stored; a wrong one is not. */
START_TEST(test_store_receive)
{
	unsigned char *payload;
	char *path = write_image(70000, &payload), *rx;
	char *final;
	smig_image_hdr_t h;
	int fds[2];
	struct stat st;

	rx = g_strdup_printf("%s/rx", tmpdir);
	ck_assert_int_eq(mkdir(rx, 0700), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(pipe(fds), 0);
	/* More than a pipe holds: the sender is a child. */
	if (fork() == 0) {
		int rc;

		close(fds[0]);
		rc = smig_image_send(path, fds[1], st.st_size, errbuf,
				     sizeof(errbuf));
		g_free(path);
		g_free(rx);
		g_free(payload);
		_exit(rc ? 1 : 0);
	}
	close(fds[1]);
	ck_assert_int_eq(smig_image_receive(rx, 42, 1, 7, fds[0], st.st_size,
					    (uint32_t) -1, (uint32_t) -1, &h,
					    errbuf, sizeof(errbuf)), 0);
	close(fds[0]);
	final = g_strdup_printf("%s/rank1.g7.img", rx);
	ck_assert_int_eq(smig_image_verify(final, &h, errbuf, sizeof(errbuf)),
			 0);
	unlink(final);
	/* Expected rank 2: refused, nothing under the final name. */
	ck_assert_int_eq(pipe(fds), 0);
	if (fork() == 0) {
		close(fds[0]);
		smig_image_send(path, fds[1], st.st_size, errbuf,
				sizeof(errbuf));
		g_free(path);
		g_free(rx);
		g_free(final);
		g_free(payload);
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(smig_image_receive(rx, 42, 2, 7, fds[0], st.st_size,
					    (uint32_t) -1, (uint32_t) -1, &h,
					    errbuf, sizeof(errbuf)),
			 SMIG_IMAGE_EINVAL);
	close(fds[0]);
	ck_assert_ptr_nonnull(strstr(errbuf, "expected job 42 rank 2"));
	g_free(final);
	final = g_strdup_printf("%s/rank2.g7.img", rx);
	ck_assert(!g_file_test(final, G_FILE_TEST_EXISTS));
	g_free(final);
	g_free(rx);
	g_free(path);
	g_free(payload);
	while (wait(NULL) > 0)
		;
}
END_TEST

START_TEST(test_refuse_links_and_dirs)
{
	char *path = write_image(10, NULL);
	char *link = g_build_filename(tmpdir, "rank1.g8.img", NULL);
	char *sub = g_build_filename(tmpdir, "rank1.g9.img", NULL);
	char *absent = g_build_filename(tmpdir, "rank1.g10.img", NULL);
	char *want;

	ck_assert_int_eq(symlink(path, link), 0);
	want = g_strdup_printf("%s: is a symbolic link (refused)", link);
	expect_refused(link, -ELOOP, want);
	g_free(want);

	/* A FIFO must be refused, not block the reader in open(). */
	ck_assert_int_eq(mkfifo(sub, 0600), 0);
	want = g_strdup_printf("%s: not a regular file (refused)", sub);
	expect_refused(sub, -EINVAL, want);
	g_free(want);
	g_remove(sub);

	ck_assert_int_eq(g_mkdir(sub, 0700), 0);
	want = g_strdup_printf("%s: not a regular file (refused)", sub);
	expect_refused(sub, -EINVAL, want);
	g_free(want);
	g_rmdir(sub);

	want = g_strdup_printf("%s: open: No such file or directory", absent);
	expect_refused(absent, -ENOENT, want);
	g_free(want);

	ck_assert_str_eq(smig_image_strerror(SMIG_IMAGE_ESUM),
			 "image payload checksum mismatch");
	ck_assert_str_eq(smig_image_strerror(-ENOENT),
			 "No such file or directory");
	g_free(path);
	g_free(link);
	g_free(sub);
	g_free(absent);
}
END_TEST

/*
 * A job directory replaced while the job runs (by root: a symbolic link,
 * or another directory) is refused at each check, naming the path.
 */
START_TEST(test_dir_replaced)
{
	char *dir = g_build_filename(tmpdir, "42", NULL);
	char *other = g_build_filename(tmpdir, "elsewhere", NULL);
	char *old = g_build_filename(tmpdir, "42.old", NULL);
	char err[512], *want;
	smig_dir_id_t id;

	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(mkdir(other, 0700), 0);
	ck_assert_int_eq(smig_dir_id_get(dir, &id, err, sizeof(err)), 0);
	ck_assert_int_eq(smig_dir_check(dir, &id, err, sizeof(err)), 0);

	/* Replaced by a symbolic link to another directory. */
	ck_assert_int_eq(rename(dir, old), 0);
	ck_assert_int_eq(symlink(other, dir), 0);
	ck_assert_int_eq(smig_dir_check(dir, &id, err, sizeof(err)), -ELOOP);
	want = g_strdup_printf("%s: the job directory was replaced by a symbolic link while the job runs: refused (nothing written through it)",
			       dir);
	ck_assert_str_eq(err, want);
	g_free(want);
	ck_assert_int_eq(smig_dir_id_get(dir, &id, err, sizeof(err)),
			 -ENOTDIR);
	want = g_strdup_printf("%s: a symbolic link, not a directory: refused",
			       dir);
	ck_assert_str_eq(err, want);
	g_free(want);

	/* Replaced by another directory. */
	ck_assert_int_eq(unlink(dir), 0);
	ck_assert_int_eq(rename(other, dir), 0);
	ck_assert_int_eq(smig_dir_check(dir, &id, err, sizeof(err)), -EXDEV);
	want = g_strdup_printf("%s: the job directory was replaced while the job runs (not the directory made at the step's start): refused",
			       dir);
	ck_assert_str_eq(err, want);
	g_free(want);

	/* The original back in place: accepted again. */
	ck_assert_int_eq(g_rmdir(dir), 0);
	ck_assert_int_eq(rename(old, dir), 0);
	ck_assert_int_eq(smig_dir_check(dir, &id, err, sizeof(err)), 0);
	g_rmdir(dir);
	g_free(dir);
	g_free(other);
	g_free(old);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("image");
	TCase *tc = tcase_create("image");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_write_read);
	tcase_add_test(tc, test_empty_and_big);
	tcase_add_test(tc, test_write_in_pieces);
	tcase_add_test(tc, test_overwrite_keeps_atomic);
	tcase_add_test(tc, test_write_file);
	tcase_add_test(tc, test_write_file_shrank);
	tcase_add_test(tc, test_extract_fd);
	tcase_add_test(tc, test_agent_wrap_unwrap);
	tcase_add_test(tc, test_write_errors);
	tcase_add_test(tc, test_corrupt_header);
	tcase_add_test(tc, test_header_fields);
	tcase_add_test(tc, test_corrupt_payload);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_refuse_links_and_dirs);
	tcase_add_test(tc, test_store_manifest);
	tcase_add_test(tc, test_store_manifest_bad);
	tcase_add_test(tc, test_store_prune);
	tcase_add_test(tc, test_store_receive);
	tcase_add_test(tc, test_dir_replaced);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
