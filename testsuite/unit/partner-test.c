/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * partner-test.c - partner copies of a node-local store
 * (MigratePartnerCopies=yes): the choice of partners, the copies' directory,
 * a copy from one node agent's store to another's over loopback TCP
 * (checked on arrival, a damaged image refused), their retention and their
 * removal with the job directory
 */
#include "smig_config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "smig_agent_store.h"
#include "smig_auth.h"
#include "smig_lifecycle.h"
#include "smig_partner.h"

#define JOB 4242u

START_TEST(test_pick_all_usable)
{
	bool usable[4] = { true, true, true, true };
	unsigned held[4] = { 0 };

	for (uint32_t i = 0; i < 4; i++) {
		uint32_t p = smig_partner_pick(usable, 4, i);

		ck_assert_uint_eq(p, (i + 1) % 4);
		held[p]++;
	}
	/* Balanced: each node holds the copies of exactly one other. */
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_uint_eq(held[i], 1);
}
END_TEST

START_TEST(test_pick_skips)
{
	bool usable[5] = { true, false, true, false, true };
	bool two[3] = { false, true, true };
	bool one[3] = { false, true, false };

	ck_assert_uint_eq(smig_partner_pick(usable, 5, 0), 2);
	ck_assert_uint_eq(smig_partner_pick(usable, 5, 2), 4);
	ck_assert_uint_eq(smig_partner_pick(usable, 5, 4), 0);
	/* A node without a receiver neither holds nor gets a partner. */
	ck_assert_uint_eq(smig_partner_pick(usable, 5, 1), SMIG_PARTNER_NONE);
	ck_assert_uint_eq(smig_partner_pick(usable, 5, 5), SMIG_PARTNER_NONE);
	ck_assert_uint_eq(smig_partner_pick(two, 3, 1), 2);
	ck_assert_uint_eq(smig_partner_pick(two, 3, 2), 1);
	/* Alone: never its own partner. */
	ck_assert_uint_eq(smig_partner_pick(one, 3, 1), SMIG_PARTNER_NONE);
	ck_assert_uint_eq(smig_partner_pick(one, 1, 0), SMIG_PARTNER_NONE);
}
END_TEST

START_TEST(test_partner_dir)
{
	char buf[64], tiny[8];

	ck_assert_int_eq(smig_partner_dir(buf, sizeof(buf), "/s/node2/42"), 0);
	ck_assert_str_eq(buf, "/s/node2/42/partner");
	ck_assert_int_eq(smig_partner_dir(tiny, sizeof(tiny), "/s/node2/42"),
			 -ENAMETOOLONG);
	ck_assert_str_eq(tiny, "");
}
END_TEST

/* One node's agent store of the step in dir (ranks: its tasks). */
typedef struct node_store {
	char *dir;
	smig_dir_id_t id;
	uint32_t ranks[2];
	smig_agent_store_t st;
} node_store_t;

static smig_auth_t *auth;

static void node_store_init(node_store_t *n, const char *root,
			    const char *node, uint32_t r0, uint32_t r1)
{
	char err[256];

	n->dir = g_build_filename(root, node, "4242", NULL);
	ck_assert_int_eq(g_mkdir_with_parents(n->dir, 0700), 0);
	ck_assert_int_eq(smig_dir_id_get(n->dir, &n->id, err, sizeof(err)),
			 0);
	n->ranks[0] = r0;
	n->ranks[1] = r1;
	n->st = (smig_agent_store_t) {
		.dir = n->dir, .dir_id = &n->id, .job_id = JOB, .step_id = 0,
		.node = node, .ranks = n->ranks, .nranks = 2, .ntasks = 4,
		.retain = 2, .timeout_ms = 10000, .auth = auth,
	};
}

/* write_image - rank's image of gen in n's store, payload from a seed */
static void write_image(node_store_t *n, uint32_t rank, uint64_t gen)
{
	smig_image_hdr_t hdr = { .job_id = JOB, .rank = rank, .nranks = 4,
				 .generation = gen };
	char payload[5000], err[512];

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (char) (i * 7 + rank * 13 + gen);
	hdr.payload_len = sizeof(payload);
	ck_assert_msg(smig_image_write(n->dir, &hdr, payload, NULL, 0, err,
				       sizeof(err)) == 0, "%s", err);
}

/* The receiving side: one agent's hand-off receiver, n connections. */
typedef struct rx {
	int lfd;
	int n;
	node_store_t *to;
} rx_t;

static gpointer rx_main(gpointer p)
{
	rx_t *rx = p;

	for (int i = 0; i < rx->n; i++) {
		int fd = accept(rx->lfd, NULL, NULL);

		if (fd < 0)
			break;
		smig_agent_store_receive(&rx->to->st, fd);
		close(fd);
	}
	return NULL;
}

/* rx_listen - a loopback listening socket. OUT port */
static int rx_listen(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/*
 * copy - node from's ranks' images of gen to node to, which accepts nconn
 * connections (a missing image is never sent)
 * RET failures
 */
static int copy(node_store_t *from, node_store_t *to, uint64_t gen,
		int nconn)
{
	rx_t rx = { .n = nconn, .to = to };
	uint16_t port;
	GThread *t;
	int failed;

	rx.lfd = rx_listen(&port);
	t = g_thread_new("rx", rx_main, &rx);
	failed = smig_agent_store_partner_copy(&from->st, gen, to->st.node,
					       "127.0.0.1", port);
	g_thread_join(t);
	close(rx.lfd);
	return failed;
}

static bool exists(const char *dir, const char *name)
{
	char *p = g_build_filename(dir, name, NULL);
	bool ok = g_file_test(p, G_FILE_TEST_EXISTS);

	g_free(p);
	return ok;
}

/* count of "*.tmp.*" files in dir (left-overs of a refused copy) */
static int tmp_files(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = g_dir_read_name(d)))
		n += strstr(e, ".tmp.") != NULL;
	g_dir_close(d);
	return n;
}

START_TEST(test_copy_verify_prune_remove)
{
	char *root = g_dir_make_tmp("partner-XXXXXX", NULL);
	node_store_t a, b;
	char pdir[4096], *pa, *pb, *ca, *cb, err[256];
	gsize la, lb;
	uint64_t bytes;
	GError *gerr = NULL;
	int fd;

	auth = smig_auth_none_new(getuid(), getgid());
	node_store_init(&a, root, "node1", 0, 1);
	node_store_init(&b, root, "node2", 2, 3);
	ck_assert_int_eq(smig_partner_dir(pdir, sizeof(pdir), b.dir), 0);

	/* Generation 3: copied, checked, byte for byte in partner/. */
	write_image(&a, 0, 3);
	write_image(&a, 1, 3);
	ck_assert_int_eq(copy(&a, &b, 3, 2), 0);
	for (uint32_t r = 0; r < 2; r++) {
		char name[64];
		struct stat s;

		snprintf(name, sizeof(name), "rank%u.g3.img", r);
		pa = g_build_filename(a.dir, name, NULL);
		pb = g_build_filename(pdir, name, NULL);
		ck_assert(g_file_get_contents(pa, &ca, &la, NULL));
		ck_assert_msg(g_file_get_contents(pb, &cb, &lb, NULL),
			      "%s missing", pb);
		ck_assert_uint_eq(la, lb);
		ck_assert(memcmp(ca, cb, la) == 0);
		ck_assert_int_eq(stat(pb, &s), 0);
		ck_assert_uint_eq(s.st_mode & 0777, 0600);
		/* Not in the job directory itself: a partner copy. */
		ck_assert(!exists(b.dir, name));
		g_free(ca);
		g_free(cb);
		g_free(pa);
		g_free(pb);
	}
	ck_assert_int_eq(tmp_files(pdir), 0);

	/* Generation 4 with rank 1's payload damaged: refused, not stored. */
	write_image(&a, 0, 4);
	write_image(&a, 1, 4);
	pa = g_build_filename(a.dir, "rank1.g4.img", NULL);
	fd = open(pa, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "X", 1, 1000), 1);
	close(fd);
	g_free(pa);
	ck_assert_int_eq(copy(&a, &b, 4, 2), 1);
	ck_assert(exists(pdir, "rank0.g4.img"));
	ck_assert(!exists(pdir, "rank1.g4.img"));
	ck_assert_int_eq(tmp_files(pdir), 0);
	/* An image that is not there is a failure too. */
	ck_assert_int_eq(copy(&a, &b, 9, 0), 2);

	/* Retention: node2's commits keep MigrateRetain (2) generations. */
	write_image(&a, 0, 5);
	write_image(&a, 1, 5);
	ck_assert_int_eq(copy(&a, &b, 5, 2), 0);
	smig_agent_store_commit(&b.st, 3);
	smig_agent_store_commit(&b.st, 4);
	ck_assert(exists(pdir, "rank0.g3.img"));
	smig_agent_store_commit(&b.st, 5);
	ck_assert(!exists(pdir, "rank0.g3.img"));
	ck_assert(!exists(pdir, "rank1.g3.img"));
	ck_assert(exists(pdir, "rank0.g4.img"));
	ck_assert(exists(pdir, "rank0.g5.img"));
	ck_assert(exists(pdir, "rank1.g5.img"));
	/* The copy verifies as the image it is (a restore reads it so). */
	{
		smig_image_hdr_t hdr;

		pb = g_build_filename(pdir, "rank1.g5.img", NULL);
		ck_assert_msg(smig_image_verify(pb, &hdr, err,
						sizeof(err)) == 0, "%s", err);
		ck_assert_uint_eq(hdr.job_id, JOB);
		ck_assert_uint_eq(hdr.rank, 1);
		ck_assert_uint_eq(hdr.generation, 5);
		g_free(pb);
	}

	/*
	 * A restore on node2 of ranks 0 and 1 (they ran on node1): the copies
	 * of the manifest's generations (4, 5) take the images' names; rank
	 * 1's damaged generation 4 was never stored, so it stays missing (the
	 * restore falls back as for any bad image). Done twice: no change.
	 */
	{
		smig_agent_store_t moved = b.st;
		uint32_t ranks[2] = { 0, 1 };
		struct stat s1, s2;

		moved.ranks = ranks;
		ck_assert_int_eq(smig_agent_store_partner_restore(&moved), 3);
		ck_assert(exists(b.dir, "rank0.g4.img"));
		ck_assert(exists(b.dir, "rank0.g5.img"));
		ck_assert(exists(b.dir, "rank1.g5.img"));
		ck_assert(!exists(b.dir, "rank1.g4.img"));
		pa = g_build_filename(b.dir, "rank1.g5.img", NULL);
		pb = g_build_filename(pdir, "rank1.g5.img", NULL);
		ck_assert_int_eq(stat(pa, &s1), 0);
		ck_assert_int_eq(stat(pb, &s2), 0);
		ck_assert_uint_eq(s1.st_ino, s2.st_ino);
		g_free(pa);
		g_free(pb);
		ck_assert_int_eq(smig_agent_store_partner_restore(&moved), 0);
		/* Its own ranks' images are never replaced. */
		ck_assert_int_eq(smig_agent_store_partner_restore(&b.st), 0);
	}

	/* The epilog's removal of the job directory takes them too. */
	{
		char *nroot = g_build_filename(root, "node2", NULL);

		ck_assert_msg(smig_store_remove_job(nroot, JOB, "node2",
						    &bytes, &gerr),
			      "%s", gerr ? gerr->message : "");
		ck_assert(!g_file_test(b.dir, G_FILE_TEST_EXISTS));
		ck_assert_uint_gt(bytes, 3 * 5000);
		g_free(nroot);
	}
	{
		char *n1 = g_build_filename(root, "node1", NULL);
		char *n2 = g_build_filename(root, "node2", NULL);

		ck_assert(smig_store_remove_job(n1, JOB, "node1", &bytes,
						&gerr));
		ck_assert_int_eq(g_rmdir(n1), 0);
		ck_assert_int_eq(g_rmdir(n2), 0);
		ck_assert_int_eq(g_rmdir(root), 0);
		g_free(n1);
		g_free(n2);
	}
	smig_auth_free(auth);
	g_free(a.dir);
	g_free(b.dir);
	g_free(root);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("partner");
	TCase *tc = tcase_create("partner");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_pick_all_usable);
	tcase_add_test(tc, test_pick_skips);
	tcase_add_test(tc, test_partner_dir);
	tcase_add_test(tc, test_copy_verify_prune_remove);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
