/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * state-test.c - the balancer's state file (smig_state.c), and a balancer
 * restarted from it (smig_balancer.c) over loopback TCP
 *
 * The balancer part: one fake srun and two fake agents ("none"
 * credentials), allocation node[1-3] with 2 CPUs each, ranks 0,1 on node1
 * and 2,3 on node2, as in balancer-test.c.
 */
#include "smig_config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <check.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "smig_auth.h"
#include "smig_balancer.h"
#include "smig_conf.h"
#include "smig_error.h"
#include "smig_policy.h"
#include "smig_state.h"
#include "smig_wire.h"

#define JOB	42
#define OWNER	1000
#define ADMIN	64030
#define WAIT_MS	3000

static char *dir;

static void dir_setup(void)
{
	dir = g_dir_make_tmp("state-test.XXXXXX", NULL);
	ck_assert(dir);
}

/* Remove the directory and what the tests left in it. */
static void dir_teardown(void)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		char *p = g_build_filename(dir, name, NULL);

		g_unlink(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(dir);
	g_clear_pointer(&dir, g_free);
}

static GVariant *sample_state(void)
{
	return g_variant_new_parsed(
		"{'jobs': <[{'id': <uint32 42>, 'uid': <uint32 1000>, "
		"'mode': <'auto'>, 'last_good': <uint64 3>, "
		"'last_tried': <uint64 4>, 'moves': <uint32 1>, "
		"'last_move': <'ranks=2,3;from=node2;to=node3;reason=drain'>}]>}");
}

static char *state_path(void)
{
	return g_build_filename(dir, SMIG_STATE_FILE, NULL);
}

/* The names in dir that start with prefix. */
static unsigned count_files(const char *prefix)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *name;
	unsigned n = 0;

	while ((name = g_dir_read_name(d)))
		n += g_str_has_prefix(name, prefix);
	g_dir_close(d);
	return n;
}

START_TEST(test_round_trip)
{
	GVariant *in = g_variant_ref_sink(sample_state()), *out = NULL;
	GError *err = NULL;
	char *path = state_path();
	struct stat st;

	ck_assert_msg(smig_state_save(dir, in, &err), "%s",
		      err ? err->message : "");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_msg(smig_state_load(dir, &out, &err), "%s",
		      err ? err->message : "");
	ck_assert(out);
	ck_assert(g_variant_equal(in, out));
	/* Saved again: replaced, no temporary file left. */
	ck_assert(smig_state_save(dir, in, &err));
	ck_assert_uint_eq(count_files(SMIG_STATE_FILE), 1);
	g_variant_unref(out);
	g_variant_unref(in);
	g_free(path);
}
END_TEST

START_TEST(test_missing_file)
{
	GVariant *out = (GVariant *) 1;
	GError *err = NULL;

	ck_assert(smig_state_load(dir, &out, &err));
	ck_assert(out == NULL);
	ck_assert(err == NULL);
}
END_TEST

START_TEST(test_check_dir)
{
	GError *err = NULL;
	char *missing = g_build_filename(dir, "nope", NULL);
	char *file = state_path(), *want;

	ck_assert(smig_state_check_dir(dir, &err));
	ck_assert(!smig_state_check_dir(missing, &err));
	want = g_strdup_printf("MigrateStateDir=%s: No such file or directory (create it, owned by SlurmUser, mode 0700)",
			       missing);
	ck_assert_str_eq(err->message, want);
	g_clear_error(&err);
	g_free(want);
	ck_assert(g_file_set_contents(file, "x", 1, NULL));
	ck_assert(!smig_state_check_dir(file, &err));
	want = g_strdup_printf("MigrateStateDir=%s: not a directory", file);
	ck_assert_str_eq(err->message, want);
	g_clear_error(&err);
	g_free(want);
	g_free(file);
	g_free(missing);
}
END_TEST

/*
 * Save, then let edit() spoil the file; the load must fail with
 * "<path>: <want> (kept as <path>.bad-<time>)" and leave no state file.
 */
static void expect_bad(void (*edit)(guint8 *data, gsize *len),
		       const char *want)
{
	GError *err = NULL;
	GVariant *out = NULL;
	char *path = state_path(), *full, *prefix;
	unsigned set_aside = count_files(SMIG_STATE_FILE ".bad-");
	gchar *data;
	gsize len;

	ck_assert(smig_state_save(dir, sample_state(), &err));
	ck_assert(g_file_get_contents(path, &data, &len, NULL));
	edit((guint8 *) data, &len);
	ck_assert(g_file_set_contents(path, data, len, NULL));
	g_free(data);

	ck_assert(!smig_state_load(dir, &out, &err));
	ck_assert(out == NULL);
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_STATE));
	full = g_strdup_printf("%s: %s", path, want);
	prefix = g_strdup_printf("%s (kept as %s.bad-", full, path);
	ck_assert_msg(g_str_has_prefix(err->message, prefix), "%s",
		      err->message);
	ck_assert(!g_file_test(path, G_FILE_TEST_EXISTS));
	/* One more: never over one set aside before (the same second). */
	ck_assert_uint_eq(count_files(SMIG_STATE_FILE ".bad-"), set_aside + 1);
	/* A start after that is a first start. */
	g_clear_error(&err);
	ck_assert(smig_state_load(dir, &out, &err));
	ck_assert(out == NULL);
	g_free(prefix);
	g_free(full);
	g_free(path);
}

static void cut_ten(guint8 *data, gsize *len)
{
	*len -= 10;
}

static void flip_body(guint8 *data, gsize *len)
{
	data[*len - 3] ^= 0x10;
}

static void version_two(guint8 *data, gsize *len)
{
	data[8] = 2;
}

static void foreign(guint8 *data, gsize *len)
{
	memcpy(data, "#!/bin/sh\n", 10);
}

static void empty(guint8 *data, gsize *len)
{
	*len = 0;
}

START_TEST(test_truncated)
{
	GVariant *v = g_variant_ref_sink(sample_state());
	char *want = g_strdup_printf("truncated or overlong: header says %zu bytes of state, the file holds %zu",
				     g_variant_get_size(v),
				     g_variant_get_size(v) - 10);

	expect_bad(cut_ten, want);
	g_free(want);
	g_variant_unref(v);
}
END_TEST

START_TEST(test_corrupt)
{
	GVariant *v = g_variant_ref_sink(sample_state());
	char *want = g_strdup_printf("checksum mismatch (SHA-256 of %zu bytes)",
				     g_variant_get_size(v));

	expect_bad(flip_body, want);
	g_free(want);
	g_variant_unref(v);
}
END_TEST

START_TEST(test_version)
{
	expect_bad(version_two, "format version 2 (this build reads 1)");
}
END_TEST

START_TEST(test_foreign)
{
	GVariant *v = g_variant_ref_sink(sample_state());
	char *want = g_strdup_printf("not a state file of slurm-migrate (%zu bytes, no SMIGSTAT header)",
				     g_variant_get_size(v) + 56);

	expect_bad(foreign, want);
	g_free(want);
	expect_bad(empty,
		   "not a state file of slurm-migrate (0 bytes, no SMIGSTAT header)");
	g_variant_unref(v);
}
END_TEST

/* ---------------------------------------------------------------- balancer */

static GMutex host_lock;
static GCond host_cond;
static uint32_t node_state[4];
static char *published;

static bool host_node_flags(void *ctx, const char *node, uint32_t *flags)
{
	unsigned i;

	if (sscanf(node, "node%u", &i) != 1 || i < 1 || i > 3)
		return false;
	g_mutex_lock(&host_lock);
	*flags = node_state[i];
	g_mutex_unlock(&host_lock);
	return true;
}

static bool host_job_owner(void *ctx, uint32_t job_id, uint32_t *uid)
{
	if (job_id != JOB)
		return false;
	*uid = OWNER;
	return true;
}

static void host_job_publish(void *ctx, uint32_t job_id, const char *text)
{
	g_mutex_lock(&host_lock);
	g_free(published);
	published = g_strdup(text);
	g_cond_broadcast(&host_cond);
	g_mutex_unlock(&host_lock);
}

/* Wait until the published line is want; RET the last line (g_free) */
static char *wait_published(const char *want)
{
	gint64 end = g_get_monotonic_time() + WAIT_MS * 1000;
	char *got;

	g_mutex_lock(&host_lock);
	while (g_strcmp0(published, want) &&
	       g_cond_wait_until(&host_cond, &host_lock, end))
		;
	got = g_strdup(published);
	g_mutex_unlock(&host_lock);
	return got;
}

static smig_conf_t *conf;
static smig_auth_t *bal_auth, *user_auth;
static smig_balancer_t *bal;

static void bal_start(void)
{
	smig_host_ops_t ops = {
		.node_flags = host_node_flags,
		.job_owner = host_job_owner,
		.job_publish = host_job_publish,
	};
	GError *err = NULL;

	g_mutex_lock(&host_lock);
	g_clear_pointer(&published, g_free);
	g_mutex_unlock(&host_lock);
	bal = smig_balancer_new(conf, &ops, bal_auth, ADMIN);
	ck_assert_msg(smig_balancer_start(bal, &err), "%s",
		      err ? err->message : "");
}

static void bal_setup(void)
{
	dir_setup();
	conf = smig_conf_new();
	g_free(conf->balancer_addr);
	conf->balancer_addr = g_strdup("127.0.0.1");
	conf->port = 0;
	conf->poll_interval_ms = 20;
	conf->capture_timeout_ms = 5000;
	conf->retry_interval_ms = 60000;
	conf->state_dir = g_strdup(dir);
	bal_auth = smig_auth_none_new(ADMIN, ADMIN);
	user_auth = smig_auth_none_new(OWNER, OWNER);
	memset(node_state, 0, sizeof(node_state));
	bal_start();
}

static void bal_teardown(void)
{
	smig_balancer_free(bal);
	smig_auth_free(bal_auth);
	smig_auth_free(user_auth);
	smig_conf_free(conf);
	g_clear_pointer(&published, g_free);
	dir_teardown();
}

static int peer(void)
{
	GError *err = NULL;
	int fd = smig_wire_connect("127.0.0.1", smig_balancer_port(bal),
				   WAIT_MS, &err);

	ck_assert_msg(fd >= 0, "%s", err ? err->message : "");
	return fd;
}

static void body_start(GVariantBuilder *vb)
{
	g_variant_builder_init(vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(vb, "{sv}", "job", g_variant_new_uint32(JOB));
	g_variant_builder_add(vb, "{sv}", "step", g_variant_new_uint32(0));
}

static void send_msg(int fd, smig_msg_type_t type, GVariantBuilder *vb)
{
	smig_msg_t *m = smig_msg_new(type, g_variant_builder_end(vb));
	GError *err = NULL;

	ck_assert_msg(smig_wire_send(fd, user_auth, m, &err), "%s",
		      err ? err->message : "");
	smig_msg_free(m);
}

static uint64_t expect_gen(int fd, smig_msg_type_t type)
{
	GError *err = NULL;
	smig_msg_t *m = smig_wire_recv(fd, user_auth, WAIT_MS, &err);
	uint64_t gen = 0;

	ck_assert_msg(m, "waiting for %s: %s", smig_msg_type_name(type),
		      err ? err->message : "");
	ck_assert_str_eq(smig_msg_type_name(m->type),
			 smig_msg_type_name(type));
	ck_assert(smig_msg_get_u64(m, "gen", &gen));
	smig_msg_free(m);
	return gen;
}

static void hello_srun(int fd)
{
	GVariantBuilder vb;

	body_start(&vb);
	g_variant_builder_add(&vb, "{sv}", "request",
			      g_variant_new_string("mode=auto"));
	g_variant_builder_add(&vb, "{sv}", "ntasks", g_variant_new_uint32(4));
	g_variant_builder_add(&vb, "{sv}", "alloc_nodes",
			      g_variant_new_string("node[1-3]"));
	g_variant_builder_add(&vb, "{sv}", "alloc_cpus",
			      g_variant_new_string("2(x3)"));
	send_msg(fd, SMIG_MSG_HELLO_SRUN, &vb);
}

static void hello_agent(int fd, const char *node, uint32_t r0,
			uint64_t good_gen)
{
	uint32_t ranks[2] = { r0, r0 + 1 };
	GVariantBuilder vb;

	body_start(&vb);
	g_variant_builder_add(&vb, "{sv}", "node", g_variant_new_string(node));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	g_variant_builder_add(&vb, "{sv}", "good_gen",
			      g_variant_new_uint64(good_gen));
	send_msg(fd, SMIG_MSG_HELLO_AGENT, &vb);
	/* Its ranks are past smig_register(), as a real agent says. */
	body_start(&vb);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(0));
	g_variant_builder_add(&vb, "{sv}", "ranks",
			      g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32,
							ranks, 2,
							sizeof(uint32_t)));
	send_msg(fd, SMIG_MSG_RESTORED, &vb);
}

static void rank_msg(int fd, smig_msg_type_t type, uint64_t gen,
		     uint32_t rank)
{
	GVariantBuilder vb;

	body_start(&vb);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(gen));
	g_variant_builder_add(&vb, "{sv}", "rank", g_variant_new_uint32(rank));
	if (type == SMIG_MSG_COUNT) {
		g_variant_builder_add(&vb, "{sv}", "pause_at",
				      g_variant_new_uint64(5));
	} else {
		g_variant_builder_add(&vb, "{sv}", "status",
				      g_variant_new_int32(0));
		g_variant_builder_add(&vb, "{sv}", "bytes",
				      g_variant_new_uint64(64));
		g_variant_builder_add(&vb, "{sv}", "msg",
				      g_variant_new_string(""));
	}
	send_msg(fd, type, &vb);
}

/* Register, drain node2: PREPARE gen 1 to both agents. */
static void start_capture(int *srun, int *a1, int *a2)
{
	char *got;

	*srun = peer();
	hello_srun(*srun);
	got = wait_published("mode=auto gen=0 moves=0");
	ck_assert_str_eq(got, "mode=auto gen=0 moves=0");
	g_free(got);
	*a1 = peer();
	hello_agent(*a1, "node1", 0, 0);
	*a2 = peer();
	hello_agent(*a2, "node2", 2, 0);
	g_mutex_lock(&host_lock);
	node_state[2] = SMIG_NODE_DRAIN;
	g_mutex_unlock(&host_lock);
	ck_assert_uint_eq(expect_gen(*a1, SMIG_MSG_PREPARE), 1);
	ck_assert_uint_eq(expect_gen(*a2, SMIG_MSG_PREPARE), 1);
}

/*
 * The job's decision history as QUERY answers it: "KIND:OUTCOME" of each
 * entry, oldest first, joined by spaces. RET g_free()
 */
static char *history_text(void)
{
	GVariantBuilder vb;
	GVariant *hist;
	GString *out = g_string_new(NULL);
	GError *err = NULL;
	smig_msg_t *m;
	int fd = peer();

	g_variant_builder_init(&vb, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&vb, "{sv}", "job", g_variant_new_uint32(JOB));
	send_msg(fd, SMIG_MSG_QUERY, &vb);
	m = smig_wire_recv(fd, user_auth, WAIT_MS, &err);
	ck_assert_msg(m, "STATUS: %s", err ? err->message : "");
	ck_assert_str_eq(smig_msg_type_name(m->type), "STATUS");
	hist = g_variant_lookup_value(m->body, "history",
				      G_VARIANT_TYPE("aa{sv}"));
	ck_assert(hist);
	for (gsize i = 0; i < g_variant_n_children(hist); i++) {
		GVariant *e = g_variant_get_child_value(hist, i);
		const char *kind = "?", *outcome = "?";

		g_variant_lookup(e, "kind", "&s", &kind);
		g_variant_lookup(e, "outcome", "&s", &outcome);
		g_string_append_printf(out, "%s%s:%s", i ? " " : "", kind,
				       outcome);
		g_variant_unref(e);
	}
	g_variant_unref(hist);
	smig_msg_free(m);
	close(fd);
	return g_string_free(out, FALSE);
}

/* The balancer stops before its peers notice (as when slurmctld stops). */
static void restart(int srun, int a1, int a2)
{
	smig_balancer_free(bal);
	close(srun);
	close(a1);
	close(a2);
	bal_start();
}

START_TEST(test_restart_in_capture)
{
	int srun, a1, a2;
	char *got;
	const char *want = "mode=auto gen=0 moves=0 last_error=gen=1;reason=balancer-restart";

	start_capture(&srun, &a1, &a2);
	for (uint32_t r = 0; r < 4; r++)
		rank_msg(r < 2 ? a1 : a2, SMIG_MSG_COUNT, 1, r);
	ck_assert_uint_eq(expect_gen(a1, SMIG_MSG_CAPTURE), 1);
	ck_assert_uint_eq(expect_gen(a2, SMIG_MSG_CAPTURE), 1);

	/* Stopped in the capture phase: abandoned, never gen 1 again. */
	restart(srun, a1, a2);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	got = history_text();
	ck_assert_str_eq(got, "drain:failed:balancer-restart");
	g_free(got);

	/* The peers register again; the retry interval holds off a new
	 * capture, whose number would be 2. */
	srun = peer();
	hello_srun(srun);
	a1 = peer();
	hello_agent(a1, "node1", 0, 0);
	a2 = peer();
	hello_agent(a2, "node2", 2, 0);
	usleep(200 * 1000);
	g_mutex_lock(&host_lock);
	ck_assert_str_eq(published, want);
	g_mutex_unlock(&host_lock);
	close(srun);
	close(a1);
	close(a2);
}
END_TEST

START_TEST(test_restart_in_relaunch)
{
	int srun, a1, a2;
	char *got;
	const char *want = "mode=auto gen=0 moves=0 last_error=gen=1;reason=balancer-restart";

	start_capture(&srun, &a1, &a2);
	for (uint32_t r = 0; r < 4; r++)
		rank_msg(r < 2 ? a1 : a2, SMIG_MSG_COUNT, 1, r);
	expect_gen(a1, SMIG_MSG_CAPTURE);
	expect_gen(a2, SMIG_MSG_CAPTURE);
	for (uint32_t r = 0; r < 4; r++)
		rank_msg(r < 2 ? a1 : a2, SMIG_MSG_DONE, 1, r);
	ck_assert_uint_eq(expect_gen(srun, SMIG_MSG_RELAUNCH), 1);

	/* RELAUNCH sent, no COMMIT: srun drops the move, the ranks go
	 * on; generation 1 was never recorded as good by the agents. */
	restart(srun, a1, a2);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
}
END_TEST

START_TEST(test_restart_after_commit)
{
	int srun, a1, a2;
	char *got;
	GVariantBuilder vb;
	const char *want = "mode=auto gen=1 moves=1 last_move=ranks=2,3;from=node2;to=node3;reason=drain";

	start_capture(&srun, &a1, &a2);
	for (uint32_t r = 0; r < 4; r++)
		rank_msg(r < 2 ? a1 : a2, SMIG_MSG_COUNT, 1, r);
	expect_gen(a1, SMIG_MSG_CAPTURE);
	expect_gen(a2, SMIG_MSG_CAPTURE);
	for (uint32_t r = 0; r < 4; r++)
		rank_msg(r < 2 ? a1 : a2, SMIG_MSG_DONE, 1, r);
	expect_gen(srun, SMIG_MSG_RELAUNCH);
	body_start(&vb);
	g_variant_builder_add(&vb, "{sv}", "gen", g_variant_new_uint64(1));
	send_msg(srun, SMIG_MSG_RELAUNCH_ACK, &vb);
	ck_assert_uint_eq(expect_gen(srun, SMIG_MSG_COMMIT), 1);
	ck_assert_uint_eq(expect_gen(a1, SMIG_MSG_COMMIT), 1);

	/* Past the point of no return: the move stands after a restart. */
	restart(srun, a1, a2);
	got = wait_published(want);
	ck_assert_str_eq(got, want);
	g_free(got);
	got = history_text();
	ck_assert_str_eq(got, "drain:moved");
	g_free(got);
}
END_TEST

START_TEST(test_bad_file_starts_empty)
{
	int a1;
	char *path, *got;

	/* A state file of gen 3, spoiled, then a restart. */
	smig_balancer_free(bal);
	bal = NULL;
	ck_assert(smig_state_save(dir, sample_state(), NULL));
	path = state_path();
	ck_assert(g_file_set_contents(path, "SMIGSTAT", 8, NULL));
	g_free(path);
	bal_start();
	ck_assert_uint_eq(count_files(SMIG_STATE_FILE ".bad-"), 1);

	/* Empty, but an agent that saw generation 3 committed keeps the
	 * numbers growing: the next capture is 4. */
	a1 = peer();
	hello_agent(a1, "node1", 0, 3);
	{
		int srun = peer(), a2 = peer();

		hello_agent(a2, "node2", 2, 3);
		hello_srun(srun);
		got = wait_published("mode=auto gen=3 moves=0");
		ck_assert_str_eq(got, "mode=auto gen=3 moves=0");
		g_free(got);
		g_mutex_lock(&host_lock);
		node_state[2] = SMIG_NODE_DRAIN;
		g_mutex_unlock(&host_lock);
		ck_assert_uint_eq(expect_gen(a1, SMIG_MSG_PREPARE), 4);
		close(srun);
		close(a2);
	}
	close(a1);
}
END_TEST

START_TEST(test_missing_dir_refused)
{
	smig_host_ops_t ops = {
		.node_flags = host_node_flags,
		.job_owner = host_job_owner,
		.job_publish = host_job_publish,
	};
	smig_balancer_t *b2;
	GError *err = NULL;
	char *want;

	g_free(conf->state_dir);
	conf->state_dir = g_build_filename(dir, "missing", NULL);
	b2 = smig_balancer_new(conf, &ops, bal_auth, ADMIN);
	ck_assert(!smig_balancer_start(b2, &err));
	want = g_strdup_printf("MigrateStateDir=%s: No such file or directory (create it, owned by SlurmUser, mode 0700)",
			       conf->state_dir);
	ck_assert_str_eq(err->message, want);
	g_free(want);
	g_error_free(err);
	smig_balancer_free(b2);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("file");
	TCase *tb = tcase_create("balancer");

	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_check_dir);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_foreign);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tb, bal_setup, bal_teardown);
	tcase_set_timeout(tb, 20);
	tcase_add_test(tb, test_restart_in_capture);
	tcase_add_test(tb, test_restart_in_relaunch);
	tcase_add_test(tb, test_restart_after_commit);
	tcase_add_test(tb, test_bad_file_starts_empty);
	tcase_add_test(tb, test_missing_dir_refused);
	suite_add_tcase(s, tb);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(state_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
