/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-cli-test.c - smig-image(1), the built program, run on images
 * written by smig_image_write(): good ones, one with a flipped byte, a
 * truncated one, a bad manifest; its output and exit status each time, and
 * every row of doc/bad-input.md's "smig-image (CLI)" table
 */
#define _GNU_SOURCE 1	/* openpty() */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "smig_image.h"

#if !defined(SMIG_IMAGE_TOOL) || !defined(SMIG_TOP_SRCDIR)
#error "SMIG_IMAGE_TOOL and SMIG_TOP_SRCDIR must be set (testsuite/unit/local.mk)"
#endif

#define PAYLOAD_LEN	(3 * 1024 * 1024 + 17)	/* several chunks */

static char *tmpdir;
static char errbuf[512];

typedef struct {
	int status;	/* exit status; -1: did not exit */
	char *out;
	gsize out_len;
	char *err;
} run_t;

static void rm_tree(const char *dir)
{
	const char *name;
	GDir *d = g_dir_open(dir, 0, NULL);

	while (d && (name = g_dir_read_name(d))) {
		char *p = g_build_filename(dir, name, NULL);

		if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
		    !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
			rm_tree(p);
		else
			g_remove(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(dir);
}

static void setup(void)
{
	tmpdir = g_dir_make_tmp("image-cli-test-XXXXXX", NULL);
	ck_assert_ptr_nonnull(tmpdir);
}

static void teardown(void)
{
	rm_tree(tmpdir);
	g_clear_pointer(&tmpdir, g_free);
}

static void run_free(run_t *r)
{
	g_free(r->out);
	g_free(r->err);
}

/*
 * run - smig-image with args (NULL-terminated) in tmpdir, stdout and
 * stderr captured (pipes: not a terminal)
 */
static run_t run(const char *arg, ...)
{
	GPtrArray *argv = g_ptr_array_new();
	GError *err = NULL;
	run_t r = { 0 };
	int wait_status;
	va_list ap;

	g_ptr_array_add(argv, (char *) SMIG_IMAGE_TOOL);
	va_start(ap, arg);
	for (const char *a = arg; a; a = va_arg(ap, const char *))
		g_ptr_array_add(argv, (char *) a);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	ck_assert_msg(g_spawn_sync(tmpdir, (char **) argv->pdata, NULL, 0,
				   NULL, NULL, &r.out, &r.err, &wait_status,
				   &err), "%s: %s", SMIG_IMAGE_TOOL,
		      err ? err->message : "");
	g_ptr_array_free(argv, TRUE);
	r.out_len = strlen(r.out);
	r.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
	return r;
}

/* The file's bytes; fails the test if it cannot be read. */
static char *slurp(const char *path, gsize *len)
{
	GError *err = NULL;
	char *text;

	ck_assert_msg(g_file_get_contents(path, &text, len, &err), "%s",
		      err ? err->message : "");
	return text;
}

static unsigned char *make_payload(size_t len, unsigned seed)
{
	unsigned char *p = g_malloc(len);

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char) (i * 31 + seed);
	return p;
}

/* rank's image of gen with a payload of len bytes; RET its path */
static char *write_image(uint32_t rank, uint64_t gen, size_t len)
{
	smig_image_hdr_t h = {
		.job_id = 42, .step_id = 3, .rank = rank, .nranks = 2,
		.generation = gen, .safepoint = 100 * gen,
		.payload_len = len,
		.created_ns = 1765100000123456789ull,	/* 2025-12-07 */
	};
	unsigned char *payload = make_payload(len, rank + (unsigned) gen);
	char path[4096];

	strcpy(h.tag, "heat");
	ck_assert_msg(smig_image_write(tmpdir, &h, payload, path, sizeof(path),
				       errbuf, sizeof(errbuf)) == 0,
		      "%s", errbuf);
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

/* Count of files in tmpdir whose name starts with prefix. */
static unsigned count_files(const char *prefix)
{
	GDir *d = g_dir_open(tmpdir, 0, NULL);
	const char *name;
	unsigned n = 0;

	while (d && (name = g_dir_read_name(d)))
		n += g_str_has_prefix(name, prefix);
	if (d)
		g_dir_close(d);
	return n;
}

/* A job directory: ranks 0, 1 of generations 1 and 2; 1 is good. */
static void make_store(void)
{
	uint64_t keep;

	for (uint64_t g = 1; g <= 2; g++)
		for (uint32_t r = 0; r < 2; r++)
			g_free(write_image(r, g, r ? PAYLOAD_LEN : 1000));
	ck_assert_msg(smig_store_commit(tmpdir, 1, 2, (uint32_t) -1,
					(uint32_t) -1, &keep, errbuf,
					sizeof(errbuf)) == 0, "%s", errbuf);
}

START_TEST(test_list)
{
	char *tmp = g_build_filename(tmpdir, "rank0.g3.img.tmp.abcdef", NULL);
	run_t r;

	make_store();
	/* A writer's temporary file is not an image: not listed. */
	ck_assert(g_file_set_contents(tmp, "x", 1, NULL));
	g_free(tmp);
	r = run("list", tmpdir, NULL);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_str_eq(r.err, "");
	ck_assert_str_eq(r.out,
		"  RANK      GEN          BYTES  CREATED               TAG                   GOOD\n"
		"     0        1           1000  2025-12-07T09:33:20Z  heat                  yes\n"
		"     1        1        3145745  2025-12-07T09:33:20Z  heat                  yes\n"
		"     0        2           1000  2025-12-07T09:33:20Z  heat                  no\n"
		"     1        2        3145745  2025-12-07T09:33:20Z  heat                  no\n");
	run_free(&r);

	r = run("list", "--json", tmpdir, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "\"good\":[1],\"images\":[{\"file\":\"rank0.g1.img\",\"rank\":0,\"generation\":1,\"job\":42,\"step\":3,\"nranks\":2,\"payload_len\":1000,\"created_ns\":1765100000123456789,\"created\":\"2025-12-07T09:33:20Z\",\"tag\":\"heat\",\"good\":true}"),
		      "%s", r.out);
	ck_assert_msg(strstr(r.out, "{\"file\":\"rank1.g2.img\",\"rank\":1,\"generation\":2,\"job\":42,\"step\":3,\"nranks\":2,\"payload_len\":3145745,"),
		      "%s", r.out);
	ck_assert_msg(g_str_has_suffix(r.out, "\"good\":false}]}\n"), "%s",
		      r.out);
	run_free(&r);
}
END_TEST

/* A damaged header, a truncated image, a bad manifest: named, status 1. */
START_TEST(test_list_bad)
{
	char *p, *msg;
	run_t r;

	make_store();
	p = g_build_filename(tmpdir, "rank1.g2.img", NULL);
	ck_assert_int_eq(truncate(p, 500), 0);
	g_free(p);
	p = g_build_filename(tmpdir, "rank0.g2.img", NULL);
	flip_byte(p, 40);	/* the safe-point count */
	r = run("list", tmpdir, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.out, "     0        2              -  -                     -                     bad\n"),
		      "%s", r.out);
	ck_assert_msg(strstr(r.out, "     1        2              -  -                     -                     bad\n"),
		      "%s", r.out);
	ck_assert_msg(strstr(r.out, "     1        1        3145745  2025-12-07T09:33:20Z  heat                  yes\n"),
		      "%s", r.out);
	msg = g_strdup_printf("smig-image list: %s: header checksum mismatch (expected ",
			      p);
	ck_assert_msg(strstr(r.err, msg), "%s", r.err);
	g_free(msg);
	g_free(p);
	p = g_build_filename(tmpdir, "rank1.g2.img", NULL);
	msg = g_strdup_printf("smig-image list: %s: generation 2: truncated: 372 payload bytes, header says 3145745\n",
			      p);
	ck_assert_msg(strstr(r.err, msg), "%s", r.err);
	g_free(msg);
	g_free(p);
	run_free(&r);

	/* An image whose name is not its header's. */
	p = g_build_filename(tmpdir, "rank0.g1.img", NULL);
	msg = g_build_filename(tmpdir, "rank0.g9.img", NULL);
	ck_assert_int_eq(link(p, msg), 0);
	r = run("list", tmpdir, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, " header says rank 0 generation 1, the name rank 0 generation 9\n"),
		      "%s", r.err);
	run_free(&r);
	g_free(msg);
	g_free(p);

	p = g_build_filename(tmpdir, "good", NULL);
	ck_assert(g_file_set_contents(p, "smig-good 1\ngen x\n", -1, NULL));
	r = run("list", tmpdir, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("smig-image list: manifest: %s:2: \"gen x\": not \"gen G\" with G above 0\n",
			      p);
	ck_assert_msg(strstr(r.err, msg), "%s", r.err);
	ck_assert_msg(strstr(r.out, "     0        1           1000  2025-12-07T09:33:20Z  heat                  ?\n"),
		      "%s", r.out);
	run_free(&r);
	g_free(msg);
	g_free(p);
}
END_TEST

START_TEST(test_verify)
{
	char *a = write_image(0, 5, 1000), *b = write_image(1, 5, PAYLOAD_LEN);
	char *msg, *want;
	run_t r;

	r = run("verify", a, b, NULL);
	ck_assert_int_eq(r.status, 0);
	want = g_strdup_printf("%s: ok (job 42 rank 0 of 2 generation 5, 1000 payload bytes)\n%s: ok (job 42 rank 1 of 2 generation 5, 3145745 payload bytes)\n",
			       a, b);
	ck_assert_str_eq(r.out, want);
	ck_assert_str_eq(r.err, "");
	g_free(want);
	run_free(&r);

	/* One payload byte flipped, in the last chunk: the other still ok. */
	flip_byte(b, SMIG_IMAGE_HEADER_SIZE + PAYLOAD_LEN - 3);
	r = run("verify", a, b, NULL);
	ck_assert_int_eq(r.status, 1);
	want = g_strdup_printf("%s: ok (job 42 rank 0 of 2 generation 5, 1000 payload bytes)\n",
			       a);
	ck_assert_str_eq(r.out, want);
	msg = g_strdup_printf("smig-image verify: %s: generation 5: payload checksum mismatch (expected ",
			      b);
	ck_assert_msg(g_str_has_prefix(r.err, msg), "%s", r.err);
	ck_assert_int_eq(strlen(r.err), strlen(msg) + 16 + 8 + 16 + 2);
	g_free(msg);
	g_free(want);
	run_free(&r);

	/* Header byte flipped; truncated; not an image; missing. */
	flip_byte(a, 70);	/* in the tag */
	r = run("verify", a, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	msg = g_strdup_printf("smig-image verify: %s: header checksum mismatch (expected ",
			      a);
	ck_assert_msg(g_str_has_prefix(r.err, msg), "%s", r.err);
	g_free(msg);
	run_free(&r);

	flip_byte(a, 70);
	ck_assert_int_eq(truncate(a, SMIG_IMAGE_HEADER_SIZE + 999), 0);
	r = run("verify", a, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("smig-image verify: %s: generation 5: truncated: 999 payload bytes, header says 1000\n",
			      a);
	ck_assert_str_eq(r.err, msg);
	g_free(msg);
	run_free(&r);

	ck_assert_int_eq(truncate(a, 60), 0);
	r = run("verify", a, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("smig-image verify: %s: header is 60 bytes, shorter than 128\n",
			      a);
	ck_assert_str_eq(r.err, msg);
	g_free(msg);
	run_free(&r);

	ck_assert(g_file_set_contents(a, "#!/bin/sh\necho not an image\n"
				      "                                    "
				      "                                    "
				      "                                    ",
				      -1, NULL));
	r = run("verify", a, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("smig-image verify: %s: not a recovery image (bad magic)\n",
			      a);
	ck_assert_str_eq(r.err, msg);
	g_free(msg);
	run_free(&r);
	g_free(a);
	g_free(b);
}
END_TEST

START_TEST(test_show)
{
	char *a = write_image(1, 4, 1000), *want, *msg;
	run_t r;

	r = run("show", a, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.err, "");
	want = g_strdup_printf(
		"file:         %s\n"
		"state:        ok\n"
		"file size:    1128\n"
		"version:      1\n"
		"header size:  128\n"
		"job:          42\n"
		"step:         3\n"
		"rank:         1\n"
		"ranks:        2\n"
		"generation:   4\n"
		"safe point:   400\n"
		"payload:      1000 bytes\n"
		"created:      2025-12-07T09:33:20Z (1765100000123456789 ns)\n"
		"tag:          heat\n"
		"payload xxh3: ", a);
	ck_assert_msg(g_str_has_prefix(r.out, want), "%s", r.out);
	ck_assert_msg(strstr(r.out, "\nheader xxh3:  "), "%s", r.out);
	g_free(want);
	run_free(&r);

	r = run("show", "--json", a, NULL);
	ck_assert_int_eq(r.status, 0);
	want = g_strdup_printf("{\"file\":\"%s\",\"ok\":true,\"error\":null,\"file_size\":1128,\"version\":1,\"header_size\":128,\"job\":42,\"step\":3,\"rank\":1,\"nranks\":2,\"generation\":4,\"safepoint\":400,\"payload_len\":1000,\"created_ns\":1765100000123456789,\"created\":\"2025-12-07T09:33:20Z\",\"tag\":\"heat\",\"payload_xxh3\":\"",
			       a);
	ck_assert_msg(g_str_has_prefix(r.out, want), "%s", r.out);
	g_free(want);
	run_free(&r);

	/* A bad payload: the header still shown, the state says why. */
	flip_byte(a, SMIG_IMAGE_HEADER_SIZE + 10);
	r = run("show", a, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("state:        bad: %s: generation 4: payload checksum mismatch (expected ",
			      a);
	ck_assert_msg(strstr(r.out, msg), "%s", r.out);
	ck_assert_msg(strstr(r.out, "\ngeneration:   4\n"), "%s", r.out);
	ck_assert_msg(g_str_has_prefix(r.err, "smig-image show: "), "%s",
		      r.err);
	ck_assert_msg(strstr(r.err, msg + strlen("state:        bad: ")),
		      "%s", r.err);
	g_free(msg);
	run_free(&r);
	r = run("show", "--json", a, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.out, "\"ok\":false,\"error\":\""), "%s", r.out);
	run_free(&r);

	/* Truncated: header shown, state bad. */
	ck_assert_int_eq(truncate(a, 600), 0);
	r = run("show", a, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("state:        bad: %s: generation 4: truncated: 472 payload bytes, header says 1000\nfile size:    600\n",
			      a);
	ck_assert_msg(strstr(r.out, msg), "%s", r.out);
	g_free(msg);
	run_free(&r);

	/* A damaged header: nothing to show. */
	flip_byte(a, 33);
	r = run("show", a, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	msg = g_strdup_printf("smig-image show: %s: header checksum mismatch (expected ",
			      a);
	ck_assert_msg(g_str_has_prefix(r.err, msg), "%s", r.err);
	g_free(msg);
	run_free(&r);
	g_free(a);
}
END_TEST

START_TEST(test_extract)
{
	char *a = write_image(1, 6, PAYLOAD_LEN), *out, *msg, *got;
	unsigned char *want = make_payload(PAYLOAD_LEN, 1 + 6);
	gsize len;
	run_t r;

	/* To a pipe (g_spawn_sync's), then to a file; both the payload. */
	r = run("extract", a, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.err, "");
	ck_assert(memcmp(r.out, want, PAYLOAD_LEN) == 0);
	run_free(&r);

	out = g_build_filename(tmpdir, "state.bin", NULL);
	ck_assert(g_file_set_contents(out, "old", -1, NULL));
	r = run("extract", a, "-o", out, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "");
	ck_assert_str_eq(r.err, "");
	got = slurp(out, &len);
	ck_assert_uint_eq(len, PAYLOAD_LEN);
	ck_assert(memcmp(got, want, PAYLOAD_LEN) == 0);
	g_free(got);
	run_free(&r);

	/* Damaged: OUT keeps its old bytes, no temporary file stays,
	 * nothing reaches the pipe. */
	ck_assert(g_file_set_contents(out, "old", -1, NULL));
	flip_byte(a, SMIG_IMAGE_HEADER_SIZE + PAYLOAD_LEN / 2);
	r = run("extract", a, "-o", out, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("smig-image extract: %s: generation 6: payload checksum mismatch (expected ",
			      a);
	ck_assert_msg(g_str_has_prefix(r.err, msg), "%s", r.err);
	got = slurp(out, &len);
	ck_assert_str_eq(got, "old");
	g_free(got);
	ck_assert_uint_eq(count_files("state.bin"), 1);
	run_free(&r);
	r = run("extract", a, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.out_len, 0);
	ck_assert_msg(g_str_has_prefix(r.err, msg), "%s", r.err);
	g_free(msg);
	run_free(&r);

	/* Truncated. */
	ck_assert_int_eq(truncate(a, SMIG_IMAGE_HEADER_SIZE + 100), 0);
	r = run("extract", a, "-o", out, NULL);
	ck_assert_int_eq(r.status, 1);
	msg = g_strdup_printf("smig-image extract: %s: generation 6: truncated: 100 payload bytes, header says %d\n",
			      a, PAYLOAD_LEN);
	ck_assert_str_eq(r.err, msg);
	g_free(msg);
	ck_assert_uint_eq(count_files("state.bin"), 1);
	run_free(&r);
	g_free(want);
	g_free(out);
	g_free(a);
}
END_TEST

/* Standard output on a terminal: refused, nothing written to it. */
START_TEST(test_extract_terminal)
{
	char *a = write_image(0, 1, 1000), buf[256], err[512] = "", *msg;
	int master, slave, status, errp[2];
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pipe(errp), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(slave, STDOUT_FILENO);
		dup2(errp[1], STDERR_FILENO);
		execl(SMIG_IMAGE_TOOL, SMIG_IMAGE_TOOL, "extract", a,
		      (char *) NULL);
		_exit(127);
	}
	close(slave);
	close(errp[1]);
	n = read(errp[0], err, sizeof(err) - 1);
	ck_assert_int_gt(n, 0);
	close(errp[0]);
	msg = g_strdup_printf("smig-image extract: %s: standard output is a terminal: refused (use -o OUT or a pipe)\n",
			      a);
	ck_assert_str_eq(err, msg);
	g_free(msg);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 2);
	/* Nothing arrived on the terminal (EIO: no writer left). */
	fcntl(master, F_SETFL, O_NONBLOCK);
	n = read(master, buf, sizeof(buf));
	ck_assert_msg(n <= 0, "%zd bytes on the terminal", n);
	close(master);
	g_free(a);
}
END_TEST

/*
 * Every row of doc/bad-input.md's "## smig-image (CLI)" table: the command
 * (split on spaces, run in tmpdir) gets exactly the message on stderr and a
 * non-zero status: 2 for usage errors, 1 for a file it cannot use.
 */
START_TEST(test_bad_input_table)
{
	char *path = g_build_filename(SMIG_TOP_SRCDIR, "doc", "bad-input.md",
				      NULL);
	char *text = slurp(path, NULL), **lines = g_strsplit(text, "\n", -1);
	unsigned rows = 0;
	bool in = false;

	g_free(write_image(0, 1, 10));	/* rank0.g1.img, for some rows */
	for (unsigned i = 0; lines[i]; i++) {
		char **cells, **args, *cmd, *msg, *got;
		GPtrArray *argv;
		run_t r = { 0 };
		int want;

		if (g_str_has_prefix(lines[i], "## ")) {
			in = g_str_has_prefix(lines[i] + 3,
					      "smig-image (CLI)");
			continue;
		}
		if (!in || !g_str_has_prefix(lines[i], "| `"))
			continue;
		cells = g_strsplit(lines[i] + 1, "|", -1);
		ck_assert_msg(g_strv_length(cells) == 4,
			      "doc/bad-input.md:%u: a row needs 3 cells",
			      i + 1);
		cmd = g_strdup(g_strstrip(cells[0]));
		msg = g_strdup(g_strstrip(cells[1]));
		want = atoi(g_strstrip(cells[2]));
		g_strfreev(cells);
		ck_assert(g_str_has_prefix(cmd, "`smig-image") &&
			  g_str_has_suffix(cmd, "`") &&
			  g_str_has_prefix(msg, "`") &&
			  g_str_has_suffix(msg, "`"));
		cmd[strlen(cmd) - 1] = msg[strlen(msg) - 1] = '\0';
		args = g_strsplit(cmd + 1, " ", -1);
		argv = g_ptr_array_new();
		g_ptr_array_add(argv, (char *) SMIG_IMAGE_TOOL);
		for (unsigned k = 1; args[k]; k++)
			g_ptr_array_add(argv, !strcmp(args[k], "''") ? "" :
					args[k]);
		g_ptr_array_add(argv, NULL);
		{
			int ws;

			ck_assert(g_spawn_sync(tmpdir, (char **) argv->pdata,
					       NULL, 0, NULL, NULL, &r.out,
					       &r.err, &ws, NULL));
			r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
		}
		got = g_strdup(r.err);
		g_strchomp(got);
		ck_assert_msg(!strcmp(got, msg + 1) && r.status == want,
			      "doc/bad-input.md:%u: %s:\n  table: %s (exit %d)\n  tool:  %s (exit %d)",
			      i + 1, cmd + 1, msg + 1, want, got, r.status);
		g_free(got);
		run_free(&r);
		g_ptr_array_free(argv, TRUE);
		g_strfreev(args);
		g_free(cmd);
		g_free(msg);
		rows++;
	}
	ck_assert_msg(rows >= 10, "only %u rows under \"## smig-image (CLI)\"",
		      rows);
	g_strfreev(lines);
	g_free(text);
	g_free(path);
}
END_TEST

static Suite *image_cli_suite(void)
{
	Suite *s = suite_create("smig-image");
	TCase *tc = tcase_create("cli");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_bad);
	tcase_add_test(tc, test_verify);
	tcase_add_test(tc, test_show);
	tcase_add_test(tc, test_extract);
	tcase_add_test(tc, test_extract_terminal);
	tcase_add_test(tc, test_bad_input_table);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(image_cli_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
