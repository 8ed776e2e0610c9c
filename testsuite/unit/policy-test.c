/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * policy-test.c - evacuation: fewest moves, allocation order, errors;
 * the policy engine: each strategy, edge cases, input validation; the swap
 * search on its own
 */
#include "smig_config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_policy.h"
/* The swap search's own entry points (the engine's internals). */
#include "smig_policy_engine_int.h"

static const smig_policy_move_t *move(const smig_plan_t *p, guint i)
{
	return &g_array_index(p->moves, smig_policy_move_t, i);
}

START_TEST(test_nothing_to_do)
{
	smig_policy_node_t nodes[] = {
		{ .name = "node1", .slots = 2, .flags = SMIG_NODE_OK }, { .name = "node2", .slots = 2, .flags = SMIG_NODE_OK },
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
		{ .name = "node1", .slots = 2, .flags = SMIG_NODE_OK },
		{ .name = "node2", .slots = 2, .flags = SMIG_NODE_DRAIN },
		{ .name = "node3", .slots = 2, .flags = SMIG_NODE_OK },
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

/*
 * Hot spares (spares=N) are taken first, even when a node of the step has
 * free slots earlier in allocation order; when they are full, the other
 * free slots, in allocation order. A drained spare is no target.
 */
START_TEST(test_spares_first)
{
	smig_policy_node_t nodes[] = {
		{ .name = "node1", .slots = 4, .flags = SMIG_NODE_OK },
		{ .name = "node2", .slots = 4, .flags = SMIG_NODE_DRAIN },
		{ .name = "node3", .slots = 2, .flags = SMIG_NODE_DRAIN,
		  .spare = true },
		{ .name = "node4", .slots = 2, .flags = SMIG_NODE_OK,
		  .spare = true },
	};
	uint32_t rank_node[] = { 0, 0, 1, 1, 1 };
	GError *err = NULL;
	smig_plan_t *p = smig_policy_evacuate(nodes, 4, rank_node, 5, &err);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->moves->len, 3);
	ck_assert_uint_eq(move(p, 0)->rank, 2);
	ck_assert_uint_eq(move(p, 0)->to, 3);
	ck_assert_uint_eq(move(p, 1)->rank, 3);
	ck_assert_uint_eq(move(p, 1)->to, 3);
	/* node4 is full: node1's free slots next. */
	ck_assert_uint_eq(move(p, 2)->rank, 4);
	ck_assert_uint_eq(move(p, 2)->to, 0);
	ck_assert_str_eq(p->text, "ranks 2,3 node2->node4; rank 4 node2->node1");
	smig_plan_free(p);

	/* Without the spare flag: node1's free slots first, as before. */
	nodes[3].spare = false;
	p = smig_policy_evacuate(nodes, 4, rank_node, 5, &err);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->text, "ranks 2,3 node2->node1; rank 4 node2->node4");
	smig_plan_free(p);
}
END_TEST

START_TEST(test_allocation_order_and_split)
{
	/* Free slots are taken in allocation order: node1's first. */
	smig_policy_node_t nodes[] = {
		{ .name = "node1", .slots = 3, .flags = SMIG_NODE_OK },
		{ .name = "node2", .slots = 4, .flags = SMIG_NODE_FAIL },
		{ .name = "node3", .slots = 0, .flags = SMIG_NODE_OK },
		{ .name = "node4", .slots = 4, .flags = SMIG_NODE_DOWN },
		{ .name = "node5", .slots = 4, .flags = SMIG_NODE_OK },
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
		{ .name = "a", .slots = 8, .flags = SMIG_NODE_DRAIN | SMIG_NODE_FAIL },
		{ .name = "b", .slots = 8, .flags = SMIG_NODE_OK },
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
		{ .name = "node1", .slots = 2, .flags = SMIG_NODE_OK },
		{ .name = "node2", .slots = 4, .flags = SMIG_NODE_DRAIN },
		{ .name = "node3", .slots = 1, .flags = SMIG_NODE_DOWN },
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
	smig_policy_node_t nodes[] = { { .name = "node1", .slots = 2, .flags = SMIG_NODE_OK } };
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

/* ------------------------------------------------------ policy engine */

/* A snapshot with its storage: nn nodes of 4 cores/slots, 4 ranks each. */
typedef struct {
	smig_policy_snapshot_t s;
	smig_policy_node_t nodes[8];
	smig_policy_rank_t ranks[32];
	smig_policy_edge_t edges[32];
	smig_policy_params_t p;
} snap_t;

static const char *const names[] = { "n1", "n2", "n3", "n4",
				      "n5", "n6", "n7", "n8" };

static void snap_init(snap_t *t, uint32_t nn, uint32_t nr)
{
	memset(t, 0, sizeof(*t));
	for (uint32_t n = 0; n < nn; n++) {
		t->nodes[n].name = names[n];
		t->nodes[n].slots = 4;
		t->nodes[n].cores = 4;
		t->nodes[n].speed = 1;
		t->nodes[n].mem_free = 1 << 30;
	}
	for (uint32_t r = 0; r < nr; r++) {
		t->ranks[r].node = r * nn / nr;
		t->ranks[r].load = 1;
		t->ranks[r].mem = 1 << 20;
		t->ranks[r].image = 1 << 20;
		t->ranks[r].rate = 1;
	}
	t->s.nodes = t->nodes;
	t->s.nnodes = nn;
	t->s.ranks = t->ranks;
	t->s.nranks = nr;
	t->s.edges = t->edges;
	t->s.image_bw = 1e9;
	t->s.relaunch = 1;
	t->s.remaining = 3600;
	smig_policy_params_init(&t->p);
}

static smig_plan_t *decide_ok(snap_t *t, smig_policy_strategy_t strat)
{
	GError *err = NULL;
	smig_plan_t *p;

	t->p.strategy = strat;
	p = smig_policy_decide(&t->s, &t->p, &err);
	if (!p)
		ck_abort_msg("decide: %s", err->message);
	return p;
}

static void decide_err(snap_t *t, const char *msg)
{
	GError *err = NULL;

	ck_assert_ptr_null(smig_policy_decide(&t->s, &t->p, &err));
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_POLICY));
	ck_assert_str_eq(err->message, msg);
	g_error_free(err);
}

static uint32_t node_after(const smig_plan_t *p, const snap_t *t, uint32_t r)
{
	for (guint i = 0; i < p->moves->len; i++) {
		if (move(p, i)->rank == r)
			return move(p, i)->to;
	}
	return t->ranks[r].node;
}

START_TEST(test_params_defaults)
{
	smig_policy_params_t p;

	smig_policy_params_init(&p);
	ck_assert_int_eq(p.strategy, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(p.max_moves, 0);
	ck_assert(p.min_gain == 60);
	ck_assert(p.hysteresis == 0.05);
	ck_assert_str_eq(smig_policy_strategy_name(SMIG_POLICY_DEFAULT),
			 "default");
	ck_assert_str_eq(smig_policy_strategy_name(SMIG_POLICY_EVACUATE),
			 "evacuate");
	ck_assert_str_eq(smig_policy_strategy_name(SMIG_POLICY_REFINE),
			 "refine");
	ck_assert_str_eq(smig_policy_strategy_name(SMIG_POLICY_COMM), "comm");
	ck_assert_str_eq(smig_policy_strategy_name(SMIG_POLICY_GREEDY),
			 "greedy");
	ck_assert_str_eq(smig_policy_strategy_name(SMIG_POLICY_BLIND),
			 "blind");
	ck_assert_str_eq(smig_policy_strategy_name(99), "unknown");
}
END_TEST

START_TEST(test_reject_bad_input)
{
	snap_t t;

	snap_init(&t, 2, 8);
	t.ranks[7].load = -1;
	decide_err(&t, "rank 7: load=-1: not a finite number >= 0");
	t.ranks[7].load = NAN;
	decide_err(&t, "rank 7: load=nan: not a finite number >= 0");
	t.ranks[7].load = 1;
	t.ranks[3].rate = INFINITY;
	decide_err(&t, "rank 3: rate=inf: not a finite number >= 0");
	t.ranks[3].rate = 1;
	t.ranks[2].node = 5;
	decide_err(&t, "rank 2: node=5: not a node index < 2");
	t.ranks[2].node = 0;
	t.nodes[1].speed = 0;
	decide_err(&t, "node 1 (n2): speed=0: not a finite number > 0");
	t.nodes[1].speed = 1;
	t.nodes[1].background = 4;
	decide_err(&t, "node 1 (n2): background=4: not a finite number in [0, cores=4)");
	t.nodes[1].background = 0;
	t.nodes[0].cores = 0;
	decide_err(&t, "node 0 (n1): cores=0: not an integer >= 1");
	t.nodes[0].cores = 4;
	t.edges[0] = (smig_policy_edge_t) { 1, 9, 5 };
	t.s.nedges = 1;
	decide_err(&t, "edge 0: rank 1 - rank 9: not a rank index < 8");
	t.edges[0] = (smig_policy_edge_t) { 1, 1, 5 };
	decide_err(&t, "edge 0: rank 1 - rank 1: an edge joins two different ranks");
	t.edges[0] = (smig_policy_edge_t) { 1, 2, -5 };
	decide_err(&t, "edge 0 (rank 1 - rank 2): bytes=-5: not a finite number >= 0");
	t.edges[0].bytes = 5;
	for (uint32_t r = 0; r < 8; r++)
		t.ranks[r].rate = 0;
	decide_err(&t, "affinity: 1 edges in bytes/s but no rank has a rate > 0 to turn them into bytes per iteration");
	t.s.nedges = 0;
	t.s.image_bw = 0;
	decide_err(&t, "image_bw=0: not a finite number > 0");
	t.s.image_bw = 1e9;
	t.s.relaunch = NAN;
	decide_err(&t, "relaunch=nan: not a finite number >= 0");
	t.s.relaunch = 1;
	t.s.remaining = -3;
	decide_err(&t, "remaining=-3: not a finite number >= 0");
	t.s.remaining = 10;
	t.p.min_gain = -1;
	decide_err(&t, "min_gain=-1: not a finite number >= 0");
	t.p.min_gain = 0;
	t.p.hysteresis = 1;
	decide_err(&t, "hysteresis=1: not a finite number in [0, 1)");
	t.p.hysteresis = 0;
	t.p.strategy = 42;
	decide_err(&t, "strategy=42: not a smig_policy_strategy_t");
	t.p.strategy = 0;
	t.s.nnodes = 0;
	decide_err(&t, "nnodes=0: a snapshot needs at least one node");
	t.s.nnodes = 2;
	t.s.nlevels = 1;
	decide_err(&t, "nlevels=1 but no node_switch array");
	t.s.nlevels = 0;
	{
		double cost[2] = { 0, -1 };

		t.s.byte_cost = cost;
		decide_err(&t, "byte_cost[1]=-1: not a finite number >= 0");
		t.s.byte_cost = NULL;
	}
	t.s.ranks = NULL;
	decide_err(&t, "nranks=8 but no rank array");
	t.s.ranks = t.ranks;
	t.s.edges = NULL;
	t.s.nedges = 1;
	decide_err(&t, "nedges=1 but no edge array");
}
END_TEST

START_TEST(test_one_node)
{
	snap_t t;
	smig_plan_t *p;

	snap_init(&t, 1, 4);
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(p->moves->len, 0);
	ck_assert_str_eq(p->reason, "ok");
	ck_assert_str_eq(p->text, "no rank moves");
	ck_assert(!p->forced);
	ck_assert(p->iter_before == 1);
	ck_assert(p->iter_after == 1);
	ck_assert_str_eq(p->why,
			 "Slowest node now: n1 (1 s/iteration: compute 1 s, communication 0 s). No move makes the slowest node faster.");
	smig_plan_free(p);
	t.nodes[0].flags = SMIG_NODE_DRAIN;
	decide_err(&t, "4 ranks must leave n1 but only 0 free slots remain");
}
END_TEST

START_TEST(test_all_draining_no_spare)
{
	snap_t t;

	snap_init(&t, 3, 12);
	t.nodes[0].flags = SMIG_NODE_DRAIN;
	t.nodes[1].flags = SMIG_NODE_FAIL;
	t.nodes[2].flags = SMIG_NODE_DOWN;
	decide_err(&t, "12 ranks must leave n1,n2,n3 but only 0 free slots remain");
	/* No spare: the others are full. */
	t.nodes[1].flags = t.nodes[2].flags = 0;
	decide_err(&t, "4 ranks must leave n1 but only 0 free slots remain");
	t.nodes[1].slots = 5;
	decide_err(&t, "4 ranks must leave n1 but only 1 free slot remains");
}
END_TEST

START_TEST(test_rank_larger_than_any_node)
{
	snap_t t;
	smig_plan_t *p;

	snap_init(&t, 3, 4);
	t.nodes[2].slots = 4;
	/* Rank 0 needs 2 GiB; no other node has that much free. */
	t.ranks[0].mem = 2ull << 30;
	t.ranks[0].load = 50;
	/* Where it is, it stays: its own memory counts as its node's. */
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(node_after(p, &t, 0), 0);
	smig_plan_free(p);
	t.nodes[0].flags = SMIG_NODE_DRAIN;
	decide_err(&t, "rank 0 (mem=2147483648 bytes) must leave n1 but no usable node has room for it");
}
END_TEST

START_TEST(test_zero_loads)
{
	snap_t t;
	smig_plan_t *p;

	snap_init(&t, 2, 8);
	for (uint32_t r = 0; r < 8; r++)
		t.ranks[r].load = 0;
	for (int s = SMIG_POLICY_DEFAULT; s <= SMIG_POLICY_BLIND; s++) {
		p = decide_ok(&t, s);
		ck_assert_uint_eq(p->moves->len, 0);
		ck_assert(p->iter_before == 0);
		ck_assert(isfinite(p->gain));
		smig_plan_free(p);
	}
	/* Zero loads still leave a draining node. */
	t.nodes[1].flags = SMIG_NODE_DRAIN;
	t.nodes[0].slots = 8;
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(p->moves->len, 4);
	ck_assert(p->forced);
	smig_plan_free(p);
}
END_TEST

START_TEST(test_evacuate_strategy)
{
	snap_t t;
	smig_plan_t *p;

	snap_init(&t, 3, 8);
	t.nodes[0].slots = t.nodes[1].slots = 6;
	t.nodes[2].slots = 2;
	t.nodes[2].flags = SMIG_NODE_OK;
	t.nodes[1].flags = SMIG_NODE_DRAIN;
	p = decide_ok(&t, SMIG_POLICY_EVACUATE);
	/* Ranks 2..5 are on n2 (block: 8 ranks over 3 nodes). */
	ck_assert_uint_eq(p->moves->len, 3);
	ck_assert(p->forced);
	ck_assert_str_eq(p->reason, "drain");
	ck_assert_str_eq(p->strategy, "evacuate");
	for (guint i = 0; i < p->moves->len; i++) {
		ck_assert_uint_eq(move(p, i)->from, 1);
		ck_assert_uint_ne(move(p, i)->to, 1);
	}
	ck_assert(p->cost == 1 + 3.0 * (1 << 20) / 1e9);
	ck_assert(g_str_has_prefix(p->why, "3 ranks must leave nodes that are drain. "));
	smig_plan_free(p);
	/* Excluded nodes are left the same way. */
	t.nodes[1].flags = 0;
	t.nodes[1].excluded = true;
	p = decide_ok(&t, SMIG_POLICY_EVACUATE);
	ck_assert_str_eq(p->reason, "excluded");
	ck_assert_uint_eq(p->moves->len, 3);
	smig_plan_free(p);
	/* More than max_moves must leave: no plan. */
	t.p.max_moves = 2;
	t.p.strategy = SMIG_POLICY_DEFAULT;
	decide_err(&t, "3 ranks must leave their nodes but max_moves=2");
}
END_TEST

START_TEST(test_refine_slow_node)
{
	snap_t t;
	smig_plan_t *p, *q;

	/* Other work keeps 2 of n1's 4 cores busy: its 3 ranks take 1.5 s. */
	snap_init(&t, 4, 12);
	for (uint32_t n = 0; n < 4; n++)
		t.nodes[n].slots = 6;
	t.nodes[0].background = 2;
	t.ranks[0].image = 100 << 20;
	p = decide_ok(&t, SMIG_POLICY_REFINE);
	ck_assert(p->iter_before == 1.5);
	ck_assert(p->iter_after == 1);
	ck_assert(p->iter_after < p->iter_before);
	ck_assert_uint_gt(p->moves->len, 0);
	ck_assert_str_eq(p->reason, "balance");
	ck_assert(!p->forced);
	ck_assert(p->gain > 60);
	ck_assert(fabs(p->gain - (3600 * (1 - p->iter_after / 1.5) -
				  p->cost)) < 1e-6);
	for (guint i = 0; i < p->moves->len; i++) {
		ck_assert_uint_eq(move(p, i)->from, 0);
		/* The big image stays: smaller ones move for the same time. */
		ck_assert_uint_ne(move(p, i)->rank, 0);
	}
	/* The default is at least as good, and deterministic. */
	q = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert(q->gain >= p->gain - 1e-9);
	smig_plan_free(p);
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_str_eq(p->text, q->text);
	ck_assert_str_eq(p->why, q->why);
	smig_plan_free(p);
	smig_plan_free(q);
	/*
	 * Half speed: every rank of n1 takes 2 s, so only emptying n1 helps;
	 * refinement moves its ranks off one by one although the first
	 * moves alone gain nothing.
	 */
	t.nodes[0].background = 0;
	t.nodes[0].speed = 0.5;
	p = decide_ok(&t, SMIG_POLICY_REFINE);
	ck_assert(p->iter_before == 2);
	ck_assert(p->iter_after == 1);
	ck_assert_uint_eq(p->moves->len, 3);
	smig_plan_free(p);
	/* With a move limit, nothing pays. */
	t.p.max_moves = 2;
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(p->moves->len, 0);
	smig_plan_free(p);
}
END_TEST

START_TEST(test_not_paying)
{
	snap_t t;
	smig_plan_t *p;

	snap_init(&t, 4, 12);
	for (uint32_t n = 0; n < 4; n++)
		t.nodes[n].slots = 6;
	t.nodes[0].speed = 0.5;
	/* Ten seconds left: the move costs more than it saves. */
	t.s.remaining = 10;
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(p->moves->len, 0);
	ck_assert_str_eq(p->reason, "ok");
	ck_assert(strstr(p->why, "below min_gain=60 s."));
	smig_plan_free(p);
	/* Enough time, but the gain is under the hysteresis. */
	t.s.remaining = 36000;
	t.nodes[0].speed = 0.98;
	t.p.hysteresis = 0.5;
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(p->moves->len, 0);
	ck_assert(strstr(p->why, "below hysteresis=50.0 %."));
	smig_plan_free(p);
}
END_TEST

START_TEST(test_comm_pairs)
{
	snap_t t;
	smig_plan_t *p;
	smig_policy_eval_t *ev;
	GError *err = NULL;
	uint32_t place[8];

	/* Ranks r and r+4 exchange 1 GB/s but sit on different nodes. */
	snap_init(&t, 2, 8);
	for (uint32_t r = 0; r < 4; r++)
		t.edges[r] = (smig_policy_edge_t) { r, r + 4, 1e9 };
	t.s.nedges = 4;
	ev = smig_policy_eval_new(&t.s, &err);
	ck_assert_ptr_nonnull(ev);
	/* 1 s of compute + 4 GB at 1 ns a byte. */
	ck_assert(fabs(smig_policy_eval_time(ev, NULL) - 5) < 1e-9);
	for (uint32_t r = 0; r < 8; r++)
		place[r] = r % 4 < 2 ? 0 : 1;
	ck_assert(fabs(smig_policy_eval_time(ev, place) - 1) < 1e-9);
	smig_policy_eval_free(ev);
	smig_policy_eval_free(NULL);

	for (int s = SMIG_POLICY_COMM; s >= SMIG_POLICY_DEFAULT; s -= 3) {
		p = decide_ok(&t, s);
		ck_assert(fabs(p->iter_after - 1) < 1e-9);
		for (uint32_t r = 0; r < 4; r++)
			ck_assert_uint_eq(node_after(p, &t, r),
					  node_after(p, &t, r + 4));
		/* Whichever strategy found it: the gain is traffic. */
		ck_assert_str_eq(p->reason, "affinity");
		smig_plan_free(p);
	}
	/* Blind and greedy do not see the traffic. */
	p = decide_ok(&t, SMIG_POLICY_BLIND);
	ck_assert_uint_eq(p->moves->len, 0);
	smig_plan_free(p);
	p = decide_ok(&t, SMIG_POLICY_GREEDY);
	ck_assert(p->iter_after >= 1);
	smig_plan_free(p);
}
END_TEST

START_TEST(test_comm_switch_levels)
{
	snap_t t;
	smig_plan_t *p;
	/* n1,n2 under one leaf switch; n3,n4 under another. */
	uint32_t sw[] = { 0, 0, 1, 1 };
	double cost[] = { 0, 1e-9, 4e-9 };
	smig_policy_eval_t *ev;
	uint32_t place[8] = { 0, 0, 1, 1, 2, 2, 3, 3 };

	snap_init(&t, 4, 8);
	t.s.nlevels = 1;
	t.s.node_switch = sw;
	t.s.byte_cost = cost;
	t.edges[0] = (smig_policy_edge_t) { 0, 4, 1e8 };
	t.s.nedges = 1;
	ev = smig_policy_eval_new(&t.s, NULL);
	/* n1: compute 1 s + 0.1 GB across the top at 4 ns. */
	ck_assert(fabs(smig_policy_eval_time(ev, place) - 1.4) < 1e-9);
	/* Under the same leaf switch: 1 ns. */
	place[4] = 1;
	ck_assert(fabs(smig_policy_eval_time(ev, place) - 1.1) < 1e-9);
	smig_policy_eval_free(ev);
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert(p->iter_after <= 1.1 + 1e-9);
	smig_plan_free(p);
	ck_assert_ptr_null(smig_policy_eval_new(&(smig_policy_snapshot_t){ 0 },
						NULL));
}
END_TEST

START_TEST(test_greedy_and_blind)
{
	snap_t t;
	smig_plan_t *p;

	/* 2 cores a node: n1 holds 4 x 1.5 s (3 s), n2 4 x 1 s (2 s). */
	snap_init(&t, 2, 8);
	t.nodes[0].slots = t.nodes[1].slots = 8;
	t.nodes[0].cores = t.nodes[1].cores = 2;
	for (uint32_t r = 0; r < 4; r++)
		t.ranks[r].load = 1.5;
	p = decide_ok(&t, SMIG_POLICY_GREEDY);
	ck_assert_str_eq(p->strategy, "greedy");
	ck_assert(p->iter_before == 3);
	ck_assert(fabs(p->iter_after - 2.5) < 1e-9);
	smig_plan_free(p);
	/* Two 1.5 s ranks for two 1 s ranks: four moves, the fewest. */
	p = decide_ok(&t, SMIG_POLICY_BLIND);
	ck_assert(fabs(p->iter_after - 2.5) < 1e-9);
	ck_assert_uint_eq(p->moves->len, 4);
	smig_plan_free(p);
	/* Greedy leaves drained nodes too, and respects max_moves there. */
	t.nodes[1].flags = SMIG_NODE_DRAIN;
	p = decide_ok(&t, SMIG_POLICY_GREEDY);
	ck_assert(p->forced);
	for (guint i = 0; i < p->moves->len; i++)
		ck_assert_uint_eq(move(p, i)->to, 0);
	smig_plan_free(p);
	t.p.max_moves = 1;
	decide_err(&t, "greedy placement moves 4 ranks but max_moves=1");
	t.nodes[0].slots = 4;
	decide_err(&t, "rank 4 (mem=1048576 bytes) fits on no usable node");
}
END_TEST

START_TEST(test_spare_and_background)
{
	snap_t t;
	smig_plan_t *p;

	/* n1 is shared with other work (3 of 4 cores): its ranks go to the
	 * spare n3. */
	snap_init(&t, 3, 8);
	t.nodes[2].spare = true;
	t.ranks[7].node = 1;
	for (uint32_t r = 0; r < 8; r++)
		t.ranks[r].node = r < 4 ? 0 : 1;
	t.nodes[0].background = 3;
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert(p->iter_before == 4);
	ck_assert(p->iter_after <= 1 + 1e-9);
	for (guint i = 0; i < p->moves->len; i++)
		ck_assert_uint_eq(move(p, i)->to, 2);
	smig_plan_free(p);
}
END_TEST

START_TEST(test_exact_swap)
{
	snap_t t;
	smig_plan_t *p, *q;

	/*
	 * Full nodes of one core: n1 runs loads 3+3, n2 runs 2+2. No single
	 * move fits; swapping a 3 with a 2 makes 5 s on both: the exact
	 * search of a small instance finds it, with the fewest moves.
	 */
	snap_init(&t, 2, 4);
	for (uint32_t n = 0; n < 2; n++) {
		t.nodes[n].slots = 2;
		t.nodes[n].cores = 1;
	}
	t.ranks[0].load = t.ranks[1].load = 3;
	t.ranks[2].load = t.ranks[3].load = 2;
	/* Moving rank 3 costs less than rank 2 (LPT from scratch moves 2). */
	t.ranks[2].image = 1 << 30;
	p = decide_ok(&t, SMIG_POLICY_REFINE);
	ck_assert_uint_eq(p->moves->len, 0);
	smig_plan_free(p);
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_str_eq(p->strategy, "exact");
	ck_assert_str_eq(p->reason, "balance");
	ck_assert(p->iter_before == 6);
	ck_assert(p->iter_after == 5);
	ck_assert_uint_eq(p->moves->len, 2);
	ck_assert_uint_eq(move(p, 0)->rank, 1);
	ck_assert_uint_eq(move(p, 0)->to, 1);
	ck_assert_uint_eq(move(p, 1)->rank, 3);
	ck_assert_uint_eq(move(p, 1)->to, 0);
	ck_assert_str_eq(p->text, "rank 1 n1->n2; rank 3 n2->n1");
	/* Deterministic. */
	q = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_str_eq(p->why, q->why);
	smig_plan_free(q);
	smig_plan_free(p);
	/* A swap takes two moves: with max_moves=1 nothing can gain. */
	t.p.max_moves = 1;
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_eq(p->moves->len, 0);
	smig_plan_free(p);
	/* A draining node: its ranks leave, the search keeps the rest. */
	t.p.max_moves = 0;
	snap_init(&t, 3, 6);
	t.nodes[2].flags = SMIG_NODE_DRAIN;
	for (uint32_t r = 0; r < 6; r++)
		t.ranks[r].load = 1 + r;
	p = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert(p->forced);
	for (guint i = 0; i < p->moves->len; i++)
		ck_assert_uint_ne(move(p, i)->to, 2);
	ck_assert_uint_eq(p->moves->len, 2);
	/* The 6 s rank sets the pace wherever it goes: no extra move. */
	ck_assert(p->iter_after == 6);
	smig_plan_free(p);
}
END_TEST

START_TEST(test_hub_rank)
{
	smig_policy_node_t nodes[2] = { { 0 } };
	smig_policy_rank_t ranks[41] = { { 0 } };
	smig_policy_edge_t split[80], merged[40];
	smig_policy_snapshot_t a = { 0 }, b;
	smig_policy_eval_t *ea, *eb;
	GError *err = NULL;
	double ta, tb;

	/*
	 * Rank 0 talks to all 40 others, each pair given as two edges in
	 * falling rank order: its row (80 entries) is sorted and merged in
	 * O(n log n), and rates as the same graph with one edge per pair.
	 */
	for (uint32_t n = 0; n < 2; n++) {
		nodes[n].name = names[n];
		nodes[n].slots = nodes[n].cores = 41;
		nodes[n].speed = 1;
		nodes[n].mem_free = 1 << 30;
	}
	for (uint32_t r = 0; r < 41; r++) {
		ranks[r].node = r % 2;
		ranks[r].load = 1;
		ranks[r].rate = 1;
	}
	for (uint32_t i = 0; i < 40; i++) {
		uint32_t peer = 40 - i;

		split[2 * i] = (smig_policy_edge_t) { 0, peer, 1e6 + peer };
		split[2 * i + 1] = (smig_policy_edge_t) { peer, 0, 2e6 };
		merged[i] = (smig_policy_edge_t) { 0, peer, 3e6 + peer };
	}
	a.nodes = nodes;
	a.nnodes = 2;
	a.ranks = ranks;
	a.nranks = 41;
	a.image_bw = 1e9;
	b = a;
	a.edges = split;
	a.nedges = 80;
	b.edges = merged;
	b.nedges = 40;
	ea = smig_policy_eval_new(&a, &err);
	ck_assert_ptr_nonnull(ea);
	eb = smig_policy_eval_new(&b, &err);
	ck_assert_ptr_nonnull(eb);
	ta = smig_policy_eval_time(ea, NULL);
	tb = smig_policy_eval_time(eb, NULL);
	ck_assert(ta > 1);
	ck_assert(fabs(ta - tb) < 1e-12 * tb);
	smig_policy_eval_free(ea);
	smig_policy_eval_free(eb);
}
END_TEST

/* ---------------------------------------------------------- swap search */

/* A model and a state on the snapshot's placement, with affinity. */
static void swap_setup(snap_t *t, model_t *m, state_t *st)
{
	GError *err = NULL;

	if (!smig_pol_model_init(m, &t->s, &err))
		ck_abort_msg("model: %s", err->message);
	smig_pol_st_init(st, m, true);
}

static void swap_teardown(model_t *m, state_t *st)
{
	smig_pol_st_fini(st);
	smig_pol_model_fini(m);
}

/* No node over its slots or memory, none of the nodes to leave used. */
static void assert_fits(const state_t *st)
{
	const model_t *m = st->m;

	for (uint32_t n = 0; n < m->nn; n++) {
		ck_assert_uint_le(st->k[n], m->snap->nodes[n].slots);
		ck_assert_uint_le(st->mem[n], m->mem_cap[n]);
		if (m->bad[n])
			ck_assert_uint_eq(st->k[n], 0);
	}
}

/*
 * Full nodes of one core: n1 runs loads 3+3, n2 runs 2+2 (6 s). No single
 * move fits anywhere; exchanging a 3 for a 2 makes 5 s on both.
 */
static void swap_full_nodes(snap_t *t, uint32_t nn)
{
	snap_init(t, nn, 4);
	for (uint32_t n = 0; n < nn; n++) {
		t->nodes[n].slots = 2;
		t->nodes[n].cores = 1;
	}
	for (uint32_t r = 0; r < 4; r++) {
		t->ranks[r].node = r / 2;
		t->ranks[r].load = r < 2 ? 3 : 2;
	}
}

START_TEST(test_swap_exchange)
{
	snap_t t;
	model_t m;
	state_t st;
	double before;

	swap_full_nodes(&t, 2);
	swap_setup(&t, &m, &st);
	before = st_max(&st);
	ck_assert(before == 6);
	/* Single moves are stuck: both nodes are full. */
	smig_pol_refine(&st, before, 0);
	ck_assert_uint_eq(st.nmoved, 0);
	ck_assert(st_max(&st) == 6);
	/* The exchange: one 3 s rank for one 2 s rank, two moves. */
	ck_assert(smig_pol_swap(&st, before, 0));
	ck_assert(st_max(&st) == 5);
	ck_assert_uint_eq(st.nmoved, 2);
	ck_assert(st.L[0] == 5 && st.L[1] == 5);
	assert_fits(&st);
	/* A local optimum: nothing more to do. */
	ck_assert(!smig_pol_swap(&st, before, 0));
	swap_teardown(&m, &st);

	/* An exchange is two moves: max_moves=1 forbids it. */
	swap_setup(&t, &m, &st);
	ck_assert(!smig_pol_swap(&st, before, 1));
	ck_assert_uint_eq(st.nmoved, 0);
	swap_teardown(&m, &st);
}
END_TEST

START_TEST(test_swap_pair)
{
	snap_t t;
	model_t m;
	state_t st;
	double before;

	/*
	 * n1 (2 cores) runs two pairs, 0-1 and 2-3, each exchanging
	 * 1.5 GB/s: 2 s of compute. n2 is empty. Moving one rank of a pair
	 * adds 1.5 s of traffic on both nodes (3 s and 2.5 s): refine is
	 * stuck; the pair moved whole makes 1 s on each node.
	 */
	snap_init(&t, 2, 4);
	for (uint32_t n = 0; n < 2; n++)
		t.nodes[n].cores = 2;
	for (uint32_t r = 0; r < 4; r++)
		t.ranks[r].node = 0;
	t.edges[0] = (smig_policy_edge_t) { 0, 1, 1.5e9 };
	t.edges[1] = (smig_policy_edge_t) { 2, 3, 1.5e9 };
	t.s.nedges = 2;
	swap_setup(&t, &m, &st);
	before = st_max(&st);
	ck_assert(before == 2);
	smig_pol_refine(&st, before, 0);
	ck_assert_uint_eq(st.nmoved, 0);
	ck_assert(smig_pol_swap(&st, before, 0));
	ck_assert(fabs(st_max(&st) - 1) < 1e-12);
	ck_assert_uint_eq(st.nmoved, 2);
	ck_assert_uint_eq(st.node_of[0], st.node_of[1]);
	ck_assert_uint_eq(st.node_of[2], st.node_of[3]);
	ck_assert_uint_ne(st.node_of[0], st.node_of[2]);
	ck_assert(st.comm[0] == 0 && st.comm[1] == 0);
	assert_fits(&st);
	swap_teardown(&m, &st);
}
END_TEST

START_TEST(test_swap_constraints)
{
	snap_t t;
	model_t m;
	state_t st;
	double before;

	/*
	 * An empty third node with free slots would take a 3 s rank (5 s
	 * would become 4 s): draining, excluded or without slots, it takes
	 * none, and the exchange is the best left.
	 */
	for (int c = 0; c < 4; c++) {
		swap_full_nodes(&t, 3);
		if (c == 0)
			t.nodes[2].flags = SMIG_NODE_DRAIN;
		else if (c == 1)
			t.nodes[2].excluded = true;
		else if (c == 2)
			t.nodes[2].slots = 0;
		swap_setup(&t, &m, &st);
		before = st_max(&st);
		ck_assert(smig_pol_swap(&st, before, 0));
		assert_fits(&st);
		if (c < 3) {
			ck_assert_uint_eq(st.k[2], 0);
			ck_assert(st_max(&st) == 5);
		} else {
			/* Usable: it takes a 3 s rank and the pace is 4 s. */
			ck_assert_uint_eq(st.k[2], 1);
			ck_assert(st_max(&st) == 4);
		}
		swap_teardown(&m, &st);
	}
	/*
	 * Memory: the 2 s ranks need 1 GB and n1 has 1 MB free (plus its
	 * own ranks' 2 MB): no exchange fits, nothing moves.
	 */
	swap_full_nodes(&t, 2);
	t.ranks[2].mem = t.ranks[3].mem = 1 << 30;
	t.nodes[0].mem_free = 1 << 20;
	swap_setup(&t, &m, &st);
	before = st_max(&st);
	ck_assert(!smig_pol_swap(&st, before, 0));
	ck_assert_uint_eq(st.nmoved, 0);
	assert_fits(&st);
	swap_teardown(&m, &st);
}
END_TEST

/*
 * 24 ranks on 2 nodes (too many for the exact search), n1 at half speed,
 * 14 slots a node: n2 can take only 2 more ranks, so single moves soon
 * stop; the default's swap search balances the rest by exchanges.
 */
static void swap_slow_node(snap_t *t)
{
	snap_init(t, 2, 24);
	for (uint32_t n = 0; n < 2; n++) {
		t->nodes[n].slots = 14;
		t->nodes[n].cores = 6;
	}
	t->nodes[0].speed = 0.5;
	for (uint32_t r = 0; r < 24; r++)
		t->ranks[r].load = 0.5 + (r * 7 % 11) / 10.0;
}

START_TEST(test_swap_default)
{
	snap_t t;
	smig_plan_t *p, *q, *d;
	uint32_t k[2] = { 0 };

	swap_slow_node(&t);
	p = decide_ok(&t, SMIG_POLICY_REFINE);
	d = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert(g_str_has_suffix(d->strategy, "+swap"));
	ck_assert(d->gain > p->gain);
	ck_assert(d->iter_after < p->iter_after);
	for (uint32_t r = 0; r < 24; r++)
		k[node_after(d, &t, r)]++;
	ck_assert_uint_le(k[0], 14);
	ck_assert_uint_le(k[1], 14);
	/* Deterministic: the same plan, word for word. */
	q = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_str_eq(q->strategy, d->strategy);
	ck_assert_str_eq(q->text, d->text);
	ck_assert_str_eq(q->why, d->why);
	smig_plan_free(q);
	/* A move limit holds for the swap search's candidates too. */
	t.p.max_moves = 3;
	q = decide_ok(&t, SMIG_POLICY_DEFAULT);
	ck_assert_uint_le(q->moves->len, 3);
	smig_plan_free(q);
	smig_plan_free(p);
	smig_plan_free(d);
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
	tcase_add_test(tc, test_spares_first);
	tcase_add_test(tc, test_deterministic_ranges);
	tcase_add_test(tc, test_not_enough_slots);
	tcase_add_test(tc, test_bad_rank_node);
	tcase_add_test(tc, test_reason_words);
	suite_add_tcase(s, tc);
	tc = tcase_create("engine");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_params_defaults);
	tcase_add_test(tc, test_reject_bad_input);
	tcase_add_test(tc, test_one_node);
	tcase_add_test(tc, test_all_draining_no_spare);
	tcase_add_test(tc, test_rank_larger_than_any_node);
	tcase_add_test(tc, test_zero_loads);
	tcase_add_test(tc, test_evacuate_strategy);
	tcase_add_test(tc, test_refine_slow_node);
	tcase_add_test(tc, test_not_paying);
	tcase_add_test(tc, test_comm_pairs);
	tcase_add_test(tc, test_comm_switch_levels);
	tcase_add_test(tc, test_greedy_and_blind);
	tcase_add_test(tc, test_spare_and_background);
	tcase_add_test(tc, test_exact_swap);
	tcase_add_test(tc, test_hub_rank);
	tcase_add_test(tc, test_swap_exchange);
	tcase_add_test(tc, test_swap_pair);
	tcase_add_test(tc, test_swap_constraints);
	tcase_add_test(tc, test_swap_default);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
