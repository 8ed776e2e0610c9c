/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy-test.c - evacuation: fewest moves, allocation order, errors
 */
#include "smig_config.h"

#include <stdlib.h>
#include <check.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_policy.h"

static const smig_policy_move_t *move(const smig_plan_t *p, guint i)
{
	return &g_array_index(p->moves, smig_policy_move_t, i);
}

START_TEST(test_nothing_to_do)
{
	smig_policy_node_t nodes[] = {
		{ "node1", 2, SMIG_NODE_OK }, { "node2", 2, SMIG_NODE_OK },
	};
	uint32_t rank_node[] = { 0, 0, 1, 1 };
	GError *err = NULL;
	smig_plan_t *p = smig_policy_evacuate(nodes, 2, rank_node, 4, &err);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->moves->len, 0);
	ck_assert_str_eq(p->reason, "ok");
	ck_assert_str_eq(p->text, "no rank moves");
	smig_plan_free(p);
	smig_plan_free(NULL);
}
END_TEST

START_TEST(test_drain_to_spare)
{
	smig_policy_node_t nodes[] = {
		{ "node1", 2, SMIG_NODE_OK },
		{ "node2", 2, SMIG_NODE_DRAIN },
		{ "node3", 2, SMIG_NODE_OK },
	};
	uint32_t rank_node[] = { 0, 0, 1, 1 };
	GError *err = NULL;
	smig_plan_t *p = smig_policy_evacuate(nodes, 3, rank_node, 4, &err);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->moves->len, 2);
	ck_assert_uint_eq(move(p, 0)->rank, 2);
	ck_assert_uint_eq(move(p, 0)->from, 1);
	ck_assert_uint_eq(move(p, 0)->to, 2);
	ck_assert_uint_eq(move(p, 1)->rank, 3);
	ck_assert_uint_eq(move(p, 1)->to, 2);
	ck_assert_str_eq(p->reason, "drain");
	ck_assert_str_eq(p->text, "ranks 2,3 node2->node3");
	smig_plan_free(p);
}
END_TEST

START_TEST(test_allocation_order_and_split)
{
	/* Free slots are taken in allocation order: node1's first. */
	smig_policy_node_t nodes[] = {
		{ "node1", 3, SMIG_NODE_OK },
		{ "node2", 4, SMIG_NODE_FAIL },
		{ "node3", 0, SMIG_NODE_OK },
		{ "node4", 4, SMIG_NODE_DOWN },
		{ "node5", 4, SMIG_NODE_OK },
	};
	uint32_t rank_node[] = { 1, 0, 1, 3, 1, 1, 4 };
	GError *err = NULL;
	smig_plan_t *p = smig_policy_evacuate(nodes, 5, rank_node, 7, &err);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->moves->len, 5);
	/* node1 has 2 free slots: ranks 0 and 2; the rest go to node5. */
	ck_assert_uint_eq(move(p, 0)->rank, 0);
	ck_assert_uint_eq(move(p, 0)->to, 0);
	ck_assert_uint_eq(move(p, 1)->rank, 2);
	ck_assert_uint_eq(move(p, 1)->to, 0);
	ck_assert_uint_eq(move(p, 2)->rank, 3);
	ck_assert_uint_eq(move(p, 2)->from, 3);
	ck_assert_uint_eq(move(p, 2)->to, 4);
	ck_assert_uint_eq(move(p, 3)->rank, 4);
	ck_assert_uint_eq(move(p, 4)->rank, 5);
	ck_assert_uint_eq(move(p, 4)->to, 4);
	ck_assert_str_eq(p->reason, "down");
	ck_assert_str_eq(p->text,
			 "ranks 0,2 node2->node1; rank 3 node4->node5; ranks 4,5 node2->node5");
	smig_plan_free(p);
}
END_TEST

START_TEST(test_deterministic_ranges)
{
	smig_policy_node_t nodes[] = {
		{ "a", 8, SMIG_NODE_DRAIN | SMIG_NODE_FAIL },
		{ "b", 8, SMIG_NODE_OK },
	};
	uint32_t rank_node[] = { 0, 0, 0, 0, 1, 0 };
	GError *err = NULL;
	smig_plan_t *p = smig_policy_evacuate(nodes, 2, rank_node, 6, &err);
	smig_plan_t *q = smig_policy_evacuate(nodes, 2, rank_node, 6, &err);

	ck_assert_str_eq(p->text, "ranks 0-3,5 a->b");
	ck_assert_str_eq(p->reason, "fail");
	ck_assert_str_eq(q->text, p->text);
	ck_assert_uint_eq(q->moves->len, p->moves->len);
	smig_plan_free(p);
	smig_plan_free(q);
}
END_TEST

START_TEST(test_not_enough_slots)
{
	smig_policy_node_t nodes[] = {
		{ "node1", 2, SMIG_NODE_OK },
		{ "node2", 4, SMIG_NODE_DRAIN },
		{ "node3", 1, SMIG_NODE_DOWN },
	};
	uint32_t rank_node[] = { 0, 1, 1, 1 };
	uint32_t rank_node2[] = { 0, 1, 1, 2 };
	GError *err = NULL;

	ck_assert_ptr_null(smig_policy_evacuate(nodes, 3, rank_node, 4, &err));
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_POLICY));
	ck_assert_str_eq(err->message,
			 "3 ranks must leave node2 but only 1 free slot remains");
	g_clear_error(&err);
	nodes[0].slots = 1;
	ck_assert_ptr_null(smig_policy_evacuate(nodes, 3, rank_node2, 4, &err));
	ck_assert_str_eq(err->message,
			 "3 ranks must leave node2,node3 but only 0 free slots remain");
	g_clear_error(&err);
}
END_TEST

START_TEST(test_bad_rank_node)
{
	smig_policy_node_t nodes[] = { { "node1", 2, SMIG_NODE_OK } };
	uint32_t rank_node[] = { 0, 5 };
	GError *err = NULL;

	ck_assert_ptr_null(smig_policy_evacuate(nodes, 1, rank_node, 2, &err));
	ck_assert_str_eq(err->message,
			 "rank 1 is on node index 5 but the allocation has 1 nodes");
	g_clear_error(&err);
}
END_TEST

START_TEST(test_reason_words)
{
	ck_assert_str_eq(smig_node_flags_reason(SMIG_NODE_OK), "ok");
	ck_assert_str_eq(smig_node_flags_reason(SMIG_NODE_DRAIN), "drain");
	ck_assert_str_eq(smig_node_flags_reason(SMIG_NODE_DRAIN | SMIG_NODE_FAIL),
			 "fail");
	ck_assert_str_eq(smig_node_flags_reason(SMIG_NODE_DOWN | SMIG_NODE_FAIL),
			 "down");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("evacuate");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_nothing_to_do);
	tcase_add_test(tc, test_drain_to_spare);
	tcase_add_test(tc, test_allocation_order_and_split);
	tcase_add_test(tc, test_deterministic_ranges);
	tcase_add_test(tc, test_not_enough_slots);
	tcase_add_test(tc, test_bad_rank_node);
	tcase_add_test(tc, test_reason_words);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
