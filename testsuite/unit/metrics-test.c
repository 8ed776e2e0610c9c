/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metrics-test.c - rolling windows, summary, traffic table, /proc parsers
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_metrics.h"

static void add_node(smig_metrics_t *m, const char *name, smig_health_t h)
{
	smig_node_sample_t ns = { name, 1.5, 1ull << 30, h, "fan" };
	GError *err = NULL;

	ck_assert_msg(smig_metrics_add_node(m, &ns, &err), "%s",
		      err ? err->message : "");
}

static void add_rank(smig_metrics_t *m, const char *node, uint32_t rank,
		     double cpu)
{
	smig_rank_sample_t rs = { rank, cpu, 0.1, 4096, 10.0 };
	GError *err = NULL;

	ck_assert_msg(smig_metrics_add_rank(m, node, &rs, &err), "%s",
		      err ? err->message : "");
}

START_TEST(test_summary)
{
	smig_metrics_t *m = smig_metrics_new();
	char *s;

	ck_assert(!smig_metrics_has_samples(m));
	ck_assert_ptr_null(smig_metrics_summary(m));
	add_node(m, "node1", SMIG_HEALTH_OK);
	add_node(m, "node2", SMIG_HEALTH_OK);
	add_rank(m, "node1", 0, 0.5);
	add_rank(m, "node1", 1, 0.5);
	add_rank(m, "node2", 2, 0.5);
	add_rank(m, "node2", 3, 1.5);
	ck_assert(smig_metrics_has_samples(m));
	s = smig_metrics_summary(m);
	/* mean 0.75, max 1.5 */
	ck_assert_str_eq(s, "imbalance:2.00,hot:rank3@node2,node:node2");
	g_free(s);
	/* The window forgets: after 8 quiet samples rank 3 is not hot. */
	for (int i = 0; i < SMIG_METRICS_WINDOW; i++) {
		add_rank(m, "node2", 3, 0.25);
		add_rank(m, "node1", 1, 0.75);
	}
	s = smig_metrics_summary(m);
	ck_assert_str_eq(s, "imbalance:1.50,hot:rank1@node1,node:node1");
	g_free(s);
	add_node(m, "node2", SMIG_HEALTH_FAIL);
	s = smig_metrics_summary(m);
	ck_assert_str_eq(s, "imbalance:1.50,hot:rank1@node1,node:node1,unhealthy:node2");
	g_free(s);
	smig_metrics_free(m);
}
END_TEST

/* The mean progress rate skips the unknown first sample of a rank. */
START_TEST(test_iters_mean)
{
	smig_metrics_t *m = smig_metrics_new();
	smig_rank_sample_t rs = { 0, 0.5, 0.1, 4096, -1 };
	GError *err = NULL;
	GVariant *v, *ranks;
	double iters = 0;

	add_node(m, "node1", SMIG_HEALTH_OK);
	ck_assert(smig_metrics_add_rank(m, "node1", &rs, &err));
	v = g_variant_ref_sink(smig_metrics_to_variant(m));
	ranks = g_variant_lookup_value(v, "ranks", NULL);
	g_variant_get_child(ranks, 0, "(usddtd@ad)", NULL, NULL, NULL, NULL,
			    NULL, &iters, NULL);
	ck_assert(iters == -1);
	g_variant_unref(ranks);
	g_variant_unref(v);
	rs.iters = 10;
	ck_assert(smig_metrics_add_rank(m, "node1", &rs, &err));
	rs.iters = 20;
	ck_assert(smig_metrics_add_rank(m, "node1", &rs, &err));
	v = g_variant_ref_sink(smig_metrics_to_variant(m));
	ranks = g_variant_lookup_value(v, "ranks", NULL);
	g_variant_get_child(ranks, 0, "(usddtd@ad)", NULL, NULL, NULL, NULL,
			    NULL, &iters, NULL);
	ck_assert_double_eq_tol(iters, 15, 1e-9);
	g_variant_unref(ranks);
	g_variant_unref(v);
	smig_metrics_free(m);
}
END_TEST

START_TEST(test_node_health)
{
	smig_metrics_t *m = smig_metrics_new();
	const char *why = "x";

	ck_assert_int_eq(smig_metrics_node_health(NULL, "node1", &why),
			 SMIG_HEALTH_UNKNOWN);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(smig_metrics_node_health(m, "node1", NULL),
			 SMIG_HEALTH_UNKNOWN);
	add_node(m, "node1", SMIG_HEALTH_OK);
	add_node(m, "node1", SMIG_HEALTH_FAIL);
	/* The latest sample counts. */
	ck_assert_int_eq(smig_metrics_node_health(m, "node1", &why),
			 SMIG_HEALTH_FAIL);
	ck_assert_str_eq(why, "fan");
	ck_assert_int_eq(smig_metrics_node_health(m, "node2", &why),
			 SMIG_HEALTH_UNKNOWN);
	smig_metrics_free(m);
}
END_TEST

START_TEST(test_bad_samples)
{
	smig_metrics_t *m = smig_metrics_new();
	smig_rank_sample_t rs = { 70000, 1, 0, 0, -1 };
	smig_node_sample_t ns = { "", 0, 0, SMIG_HEALTH_OK, NULL };
	smig_pair_sample_t ps = { 3, 3, 1, 1 };
	GError *err = NULL;

	ck_assert(!smig_metrics_add_node(m, &ns, &err));
	ck_assert_str_eq(err->message, "node sample without a node name");
	g_clear_error(&err);
	ns.node = "n1";
	ns.load = NAN;
	ck_assert(!smig_metrics_add_node(m, &ns, &err));
	ck_assert_str_eq(err->message, "node=n1: load=nan: not a finite number >= 0");
	g_clear_error(&err);
	ck_assert(!smig_metrics_add_rank(m, "n1", &rs, &err));
	ck_assert_str_eq(err->message, "rank=70000: beyond the cap of 65536 ranks per job");
	g_clear_error(&err);
	rs.rank = 1;
	ck_assert(!smig_metrics_add_rank(m, "n9", &rs, &err));
	ck_assert_str_eq(err->message, "rank=1: node=n9: no sample of that node");
	g_clear_error(&err);
	add_node(m, "n1", SMIG_HEALTH_OK);
	rs.cpu = -2;
	ck_assert(!smig_metrics_add_rank(m, "n1", &rs, &err));
	ck_assert_str_eq(err->message, "rank=1: cpu=-2 delay=0 iters=-1: not finite numbers >= 0");
	g_clear_error(&err);
	ck_assert(!smig_metrics_set_pair(m, &ps, &err));
	ck_assert_str_eq(err->message, "pair 3->3: not two distinct ranks below 65536");
	g_clear_error(&err);
	ck_assert(!smig_metrics_has_samples(m));
	smig_metrics_free(m);
}
END_TEST

START_TEST(test_pairs_variant)
{
	smig_metrics_t *m = smig_metrics_new();
	smig_pair_sample_t ps[] = {
		{ 0, 1, 100, 1 }, { 1, 0, 100, 1 }, { 2, 3, 5000, 2 },
		{ 3, 2, 7000, 3 }, { 0, 2, 1, 1 },
	};
	GError *err = NULL;
	GVariant *v, *pairs, *matrix;
	uint32_t a, b, total;
	guint64 bytes, msgs;

	add_node(m, "node1", SMIG_HEALTH_OK);
	add_node(m, "node2", SMIG_HEALTH_OK);
	add_rank(m, "node1", 0, 1);
	add_rank(m, "node1", 1, 1);
	add_rank(m, "node2", 2, 1);
	add_rank(m, "node2", 3, 1);
	for (size_t i = 0; i < G_N_ELEMENTS(ps); i++)
		ck_assert(smig_metrics_set_pair(m, &ps[i], &err));
	/* Counters are cumulative: a new value replaces the old one. */
	ps[0].bytes = 300;
	ck_assert(smig_metrics_set_pair(m, &ps[0], &err));
	v = g_variant_ref_sink(smig_metrics_to_variant(m));
	ck_assert(g_variant_lookup(v, "pairs_total", "u", &total));
	ck_assert_uint_eq(total, 3);
	pairs = g_variant_lookup_value(v, "pairs", G_VARIANT_TYPE("a(uutt)"));
	ck_assert_ptr_nonnull(pairs);
	ck_assert_uint_eq(g_variant_n_children(pairs), 3);
	g_variant_get_child(pairs, 0, "(uutt)", &a, &b, &bytes, &msgs);
	ck_assert_uint_eq(a, 2);
	ck_assert_uint_eq(b, 3);
	ck_assert_uint_eq(bytes, 12000);
	ck_assert_uint_eq(msgs, 5);
	g_variant_get_child(pairs, 1, "(uutt)", &a, &b, &bytes, &msgs);
	ck_assert_uint_eq(bytes, 400);
	matrix = g_variant_lookup_value(v, "matrix", G_VARIANT_TYPE("a(sst)"));
	ck_assert_uint_eq(g_variant_n_children(matrix), 3);
	ck_assert_uint_gt(smig_metrics_memory(m), 0);
	g_variant_unref(matrix);
	g_variant_unref(pairs);
	g_variant_unref(v);
	smig_metrics_free(m);
}
END_TEST

/* One job cannot make the balancer hold more rank pairs than the cap. */
START_TEST(test_pairs_cap)
{
	smig_metrics_t *m = smig_metrics_new();
	smig_pair_sample_t ps = { 0, 0, 10, 1 };
	GError *err = NULL;
	uint32_t n = 0;

	for (ps.src = 0; n < SMIG_METRICS_MAX_PAIRS; ps.src++)
		for (ps.dst = 0; ps.dst < 1024 && n < SMIG_METRICS_MAX_PAIRS;
		     ps.dst++) {
			if (ps.src == ps.dst)
				continue;
			ck_assert(smig_metrics_set_pair(m, &ps, &err));
			n++;
		}
	ps.src = 60000;
	ps.dst = 60001;
	ck_assert(!smig_metrics_set_pair(m, &ps, &err));
	ck_assert_str_eq(err->message,
			 "pair 60000->60001: too many rank pairs for one job (262144)");
	g_clear_error(&err);
	/* A pair already known is still updated. */
	ps.src = 0;
	ps.dst = 1;
	ps.bytes = 99;
	ck_assert(smig_metrics_set_pair(m, &ps, &err));
	smig_metrics_free(m);
}
END_TEST

START_TEST(test_proc)
{
	uint64_t u = 0, d = 0;
	double load = 0;
	smig_health_t h;
	char *r;

	ck_assert(smig_proc_parse_stat("1234 (a b) c)) R 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 1 0", &u));
	ck_assert_uint_eq(u, 267);
	ck_assert(!smig_proc_parse_stat("1234 (x) R 1 2", &u));
	ck_assert(!smig_proc_parse_stat("garbage", &u));
	ck_assert(!smig_proc_parse_stat("", &u));
	ck_assert(smig_proc_parse_schedstat("1529512 60000 12\n", &u, &d));
	ck_assert_uint_eq(u, 1529512);
	ck_assert_uint_eq(d, 60000);
	ck_assert(!smig_proc_parse_schedstat("x 1", &u, &d));
	ck_assert(smig_proc_parse_status_rss("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t    2048 kB\n", &u));
	ck_assert_uint_eq(u, 2048 * 1024);
	ck_assert(!smig_proc_parse_status_rss("Name:\tkthreadd\nState:\tS\n", &u));
	ck_assert(!smig_proc_parse_status_rss("VmRSS:\t12 MB\n", &u));
	ck_assert(smig_proc_parse_meminfo("MemTotal: 100 kB\nMemFree: 5 kB\nMemAvailable:   50 kB\n", &u));
	ck_assert_uint_eq(u, 50 * 1024);
	ck_assert(smig_proc_parse_loadavg("0.52 0.40 0.30 1/100 4242\n", &load));
	ck_assert(fabs(load - 0.52) < 1e-9);
	ck_assert(!smig_proc_parse_loadavg("-1 2 3", &load));
	ck_assert(!smig_proc_parse_loadavg("abc", &load));
	ck_assert(smig_health_parse("FAIL  disk /scratch read-only\nmore\n", &h, &r));
	ck_assert_int_eq(h, SMIG_HEALTH_FAIL);
	ck_assert_str_eq(r, "disk /scratch read-only");
	g_free(r);
	ck_assert(smig_health_parse("ok", &h, &r));
	ck_assert_int_eq(h, SMIG_HEALTH_OK);
	ck_assert_str_eq(r, "");
	g_free(r);
	ck_assert(!smig_health_parse("okay fine", &h, &r));
	ck_assert(!smig_health_parse("", &h, &r));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);	/* a hang guard: 262144 pairs under ASan on a busy machine */
	tcase_add_test(tc, test_summary);
	tcase_add_test(tc, test_iters_mean);
	tcase_add_test(tc, test_node_health);
	tcase_add_test(tc, test_bad_samples);
	tcase_add_test(tc, test_pairs_variant);
	tcase_add_test(tc, test_pairs_cap);
	tcase_add_test(tc, test_proc);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
