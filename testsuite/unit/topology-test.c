/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * topology-test.c - switch tree from topology.conf text, paths, errors,
 * byte costs; evacuations near partners (switch levels)
 */
#include "smig_config.h"

#include <stdlib.h>
#include <check.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_policy.h"
#include "smig_topology.h"

static void parse_err(const char *text, const char *msg)
{
	GError *err = NULL;

	ck_assert_ptr_null(smig_topology_parse(text, "topology.conf", &err));
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_CONFIG));
	ck_assert_str_eq(err->message, msg);
	g_error_free(err);
}

START_TEST(test_tree_and_paths)
{
	const char *text =
		"# two leaf switches under one top switch\n"
		"SwitchName=s0 Nodes=n[1-2] LinkSpeed=100\n"
		"switchname=s1 nodes=n[3-4]\n"
		"\n"
		"SwitchName=top Switches=s[0-1]  # the spine\n";
	const char *names[] = { "n1", "n2", "n3", "x9" };
	GError *err = NULL;
	smig_topology_t *t = smig_topology_parse(text, "topology.conf", &err);
	uint32_t nlevels, *p;

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(smig_topology_levels(t), 2);
	p = smig_topology_paths(t, names, 4, &nlevels);
	ck_assert_uint_eq(nlevels, 2);
	/* n1, n2 meet at level 0; n1, n3 at level 1; x9 nowhere. */
	ck_assert_uint_eq(p[0], p[2]);
	ck_assert_uint_ne(p[0], p[4]);
	ck_assert_uint_eq(p[1], p[5]);
	ck_assert_uint_ne(p[6], p[0]);
	ck_assert_uint_ne(p[7], p[1]);
	g_free(p);
	smig_topology_unref(t);
	smig_topology_unref(NULL);

	t = smig_topology_parse("# nothing\n", "topology.conf", &err);
	ck_assert_uint_eq(smig_topology_levels(t), 0);
	ck_assert_ptr_null(smig_topology_paths(t, names, 4, &nlevels));
	ck_assert_uint_eq(nlevels, 0);
	smig_topology_unref(t);
}
END_TEST

START_TEST(test_unbalanced_tree)
{
	/* n5 hangs off the top switch itself (level 1). */
	const char *text = "SwitchName=a Nodes=n1\n"
			   "SwitchName=top Switches=a Nodes=n5\n";
	const char *names[] = { "n1", "n5" };
	smig_topology_t *t = smig_topology_parse(text, "t", NULL);
	uint32_t nlevels, *p = smig_topology_paths(t, names, 2, &nlevels);

	ck_assert_uint_eq(nlevels, 2);
	ck_assert_uint_ne(p[0], p[2]);
	ck_assert_uint_eq(p[1], p[3]);
	g_free(p);
	smig_topology_unref(t);
}
END_TEST

/*
 * Slurm's switch records (topo_info_t of slurm_load_topo()) in the order
 * slurmctld keeps them, and the text its print function gives (24.11).
 */
START_TEST(test_from_switches)
{
	const smig_topology_switch_t recs[] = {
		{ "s0", "node[1-2]", NULL },
		{ "s1", "node[3-4]", "" },
		/* As Slurm gives it: every node below the spine. */
		{ "spine", "node[1-4]", "s[0-1]" },
	};
	const char *names[] = { "node1", "node2", "node3", "node4", "node9" };
	const char *printed =
		"SwitchName=s0 Level=0 LinkSpeed=1 Nodes=node[1-2]\n"
		"SwitchName=s1 Level=0 LinkSpeed=1 Nodes=node[3-4]\n"
		"SwitchName=spine Level=1 LinkSpeed=1 Nodes=node[1-4] Switches=s[0-1]\n";
	GError *err = NULL;
	smig_topology_t *t = smig_topology_from_switches(recs, 3,
							 "slurm_load_topo",
							 &err);
	smig_topology_t *u;
	uint32_t nlevels, *p, *q;

	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(smig_topology_levels(t), 2);
	ck_assert_uint_eq(smig_topology_switches(t), 3);
	p = smig_topology_paths(t, names, 5, &nlevels);
	ck_assert_uint_eq(nlevels, 2);
	/* Level 0: the leaves by name; level 1: the spine for all four. */
	ck_assert_str_eq(smig_topology_switch_name(t, p[0]), "s0");
	ck_assert_str_eq(smig_topology_switch_name(t, p[2]), "s0");
	ck_assert_str_eq(smig_topology_switch_name(t, p[4]), "s1");
	ck_assert_str_eq(smig_topology_switch_name(t, p[6]), "s1");
	for (int n = 0; n < 4; n++)
		ck_assert_str_eq(smig_topology_switch_name(t, p[2 * n + 1]),
				 "spine");
	/* node9 is under no switch: ids of its own, no name. */
	ck_assert_ptr_null(smig_topology_switch_name(t, p[8]));
	ck_assert_ptr_null(smig_topology_switch_name(t, p[9]));
	ck_assert_str_eq(smig_topology_leaf(t, "node3"), "s1");
	ck_assert_ptr_null(smig_topology_leaf(t, "node9"));

	/* The spine's record first: the leaves still place their nodes. */
	{
		const smig_topology_switch_t rev[] = { recs[2], recs[0],
						       recs[1] };
		smig_topology_t *r = smig_topology_from_switches(
			rev, 3, "slurm_load_topo", &err);

		ck_assert_ptr_nonnull(r);
		ck_assert_str_eq(smig_topology_leaf(r, "node1"), "s0");
		ck_assert_str_eq(smig_topology_leaf(r, "node4"), "s1");
		smig_topology_unref(r);
	}

	/* The same tree from the printed records. */
	u = smig_topology_parse(printed, "scontrol", &err);
	ck_assert_ptr_nonnull(u);
	q = smig_topology_paths(u, names, 5, &nlevels);
	ck_assert_mem_eq(p, q, sizeof(uint32_t) * 10);
	g_free(q);
	smig_topology_unref(u);

	/* A reference outlives the first owner. */
	u = smig_topology_ref(t);
	smig_topology_unref(t);
	ck_assert_str_eq(smig_topology_leaf(u, "node1"), "s0");
	smig_topology_unref(u);
	g_free(p);

	/* No record: flat. */
	t = smig_topology_from_switches(NULL, 0, "slurm_load_topo", &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(smig_topology_levels(t), 0);
	smig_topology_unref(t);

	/* Bad records are named by index, field and value. */
	{
		const smig_topology_switch_t bad[] = {
			{ "s0", "node[1-2]", NULL },
			{ "s1", "node2", NULL },
		};
		const smig_topology_switch_t noname[] = { { NULL, "n1", NULL } };
		const smig_topology_switch_t loop[] = {
			{ "a", NULL, "b" }, { "b", NULL, "a" },
		};

		ck_assert_ptr_null(smig_topology_from_switches(
			bad, 2, "slurm_load_topo", &err));
		ck_assert_str_eq(err->message,
				 "slurm_load_topo:2: Nodes=node2: node node2 is already under switch s0");
		g_clear_error(&err);
		ck_assert_ptr_null(smig_topology_from_switches(
			noname, 1, "slurm_load_topo", &err));
		ck_assert_str_eq(err->message,
				 "slurm_load_topo:1: no SwitchName=");
		g_clear_error(&err);
		ck_assert_ptr_null(smig_topology_from_switches(
			loop, 2, "slurm_load_topo", &err));
		ck_assert_str_eq(err->message,
				 "slurm_load_topo:1: SwitchName=a: switch is its own ancestor");
		g_clear_error(&err);
	}
}
END_TEST

START_TEST(test_parse_errors)
{
	parse_err("SwitchName=s0 Foo=bar\n",
		  "topology.conf:1: Foo=bar: unknown or repeated key (SwitchName, Switches, Nodes, LinkSpeed, Level)");
	parse_err("\nNodes=n1\n", "topology.conf:2: no SwitchName=");
	parse_err("SwitchName=s0 junk\n", "topology.conf:1: junk: not key=value");
	parse_err("SwitchName=s0\nSwitchName=s0\n",
		  "topology.conf:2: SwitchName=s0: defined twice");
	parse_err("SwitchName=s0 Nodes=n1\nSwitchName=s1 Nodes=n[1-2]\n",
		  "topology.conf:2: Nodes=n[1-2]: node n1 is already under switch s0");
	parse_err("SwitchName=s0 Switches=s9\n",
		  "topology.conf:1: Switches=s9: no switch named s9");
	parse_err("SwitchName=s0\nSwitchName=a Switches=s0\nSwitchName=b Switches=s0\n",
		  "topology.conf:3: Switches=s0: switch s0 is already under switch a");
	parse_err("SwitchName=a Switches=b\nSwitchName=b Switches=a\n",
		  "topology.conf:1: SwitchName=a: switch is its own ancestor");
	{
		GError *err = NULL;

		ck_assert_ptr_null(smig_topology_parse("SwitchName=s Nodes=n[1-\n",
						       "t", &err));
		ck_assert(g_str_has_prefix(err->message, "t:1: Nodes=n[1-: "));
		g_clear_error(&err);
		ck_assert_ptr_null(smig_topology_parse("SwitchName=s Switches=a[\n",
						       "t", &err));
		ck_assert(g_str_has_prefix(err->message, "t:1: Switches=a[: "));
		g_error_free(err);
	}
}
END_TEST

START_TEST(test_byte_costs)
{
	double cost[4];

	smig_topology_byte_cost(1e9, 2, cost);
	ck_assert(cost[0] == 0);
	ck_assert(cost[1] == 1 / 1e9);
	ck_assert(cost[2] == 2 / 1e9);
	ck_assert(cost[3] == 3 / 1e9);
}
END_TEST

/*
 * Two leaf switches (ids 0, 1) under one spine (id 2): node1, node2 under
 * leaf 0, node3, node4 under leaf 1.
 */
static const uint32_t evac_switch[] = { 0, 2, 0, 2, 1, 2, 1, 2 };

static const smig_policy_move_t *evac_move(const smig_plan_t *p, guint i)
{
	return &g_array_index(p->moves, smig_policy_move_t, i);
}

/* Same moves, in the same order, to the same nodes. */
static void evac_same(const smig_plan_t *p, const smig_plan_t *q)
{
	ck_assert_uint_eq(p->moves->len, q->moves->len);
	for (guint i = 0; i < p->moves->len; i++) {
		ck_assert_uint_eq(evac_move(p, i)->rank, evac_move(q, i)->rank);
		ck_assert_uint_eq(evac_move(p, i)->from, evac_move(q, i)->from);
		ck_assert_uint_eq(evac_move(p, i)->to, evac_move(q, i)->to);
	}
	ck_assert_str_eq(p->text, q->text);
	ck_assert_str_eq(p->reason, q->reason);
}

START_TEST(test_evacuate_near_partners)
{
	/* node1 drains; ranks 0, 1 leave it. */
	smig_policy_node_t nodes[] = {
		{ .name = "node1", .slots = 2, .flags = SMIG_NODE_DRAIN },
		{ .name = "node2", .slots = 2 },
		{ .name = "node3", .slots = 2 },
		{ .name = "node4", .slots = 2 },
	};
	uint32_t rank_node[] = { 0, 0, 1, 2 };
	/* Rank 0 talks to rank 3 (leaf 1), rank 1 to rank 2 (leaf 0). */
	smig_policy_edge_t edges[] = {
		{ 0, 3, 1e8 }, { 1, 2, 1e8 }, { 0, 2, 1e6 },
	};
	smig_policy_evac_topo_t topo = { 2, evac_switch, edges, 3 };
	smig_policy_evac_topo_t flat = { 0, NULL, edges, 3 };
	GError *err = NULL;
	smig_plan_t *p, *q, *t;

	/* Without levels: exactly smig_policy_evacuate() (first free slot). */
	p = smig_policy_evacuate(nodes, 4, rank_node, 4, &err);
	q = smig_policy_evacuate_topo(nodes, 4, rank_node, 4, &flat, &err);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(q);
	evac_same(p, q);
	ck_assert_str_eq(p->text, "rank 0 node1->node2; rank 1 node1->node3");
	smig_plan_free(q);
	q = smig_policy_evacuate_topo(nodes, 4, rank_node, 4, NULL, &err);
	evac_same(p, q);
	smig_plan_free(q);

	/* With levels: each rank next to its heavy partner, same moves. */
	t = smig_policy_evacuate_topo(nodes, 4, rank_node, 4, &topo, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->moves->len, 2);
	ck_assert_uint_eq(evac_move(t, 0)->rank, 0);
	ck_assert_uint_eq(evac_move(t, 0)->to, 2);
	ck_assert_uint_eq(evac_move(t, 1)->rank, 1);
	ck_assert_uint_eq(evac_move(t, 1)->to, 1);
	ck_assert_str_eq(t->text, "rank 0 node1->node3; rank 1 node1->node2");
	ck_assert_str_eq(t->reason, "drain");
	smig_plan_free(t);

	/* node3 full: rank 0 goes under the same leaf switch, node4. */
	nodes[2].slots = 1;
	t = smig_policy_evacuate_topo(nodes, 4, rank_node, 4, &topo, &err);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(evac_move(t, 0)->to, 3);
	ck_assert_uint_eq(evac_move(t, 1)->to, 1);
	smig_plan_free(t);
	smig_plan_free(p);
}
END_TEST

START_TEST(test_evacuate_near_home)
{
	/* node3 drains; its rank has no traffic: stay under leaf 1. */
	smig_policy_node_t nodes[] = {
		{ .name = "node1", .slots = 2 },
		{ .name = "node2", .slots = 2 },
		{ .name = "node3", .slots = 2, .flags = SMIG_NODE_DOWN },
		{ .name = "node4", .slots = 2 },
	};
	uint32_t rank_node[] = { 0, 1, 2, 2 };
	smig_policy_evac_topo_t topo = { 2, evac_switch, NULL, 0 };
	GError *err = NULL;
	smig_plan_t *p, *t;

	p = smig_policy_evacuate(nodes, 4, rank_node, 4, &err);
	ck_assert_str_eq(p->text, "rank 2 node3->node1; rank 3 node3->node2");
	t = smig_policy_evacuate_topo(nodes, 4, rank_node, 4, &topo, &err);
	ck_assert_str_eq(t->text, "ranks 2,3 node3->node4");
	ck_assert_str_eq(t->reason, "down");
	smig_plan_free(t);

	/* Room for one under leaf 1: the other rank goes to node1. */
	nodes[3].slots = 1;
	t = smig_policy_evacuate_topo(nodes, 4, rank_node, 4, &topo, &err);
	ck_assert_str_eq(t->text, "rank 2 node3->node4; rank 3 node3->node1");
	smig_plan_free(t);

	/* Hot spares still come first, wherever they are. */
	nodes[3].slots = 2;
	nodes[0].slots = 3;
	nodes[0].spare = true;
	t = smig_policy_evacuate_topo(nodes, 4, rank_node, 4, &topo, &err);
	ck_assert_str_eq(t->text, "ranks 2,3 node3->node1");
	smig_plan_free(t);

	/* Not enough room: the same error as without levels. */
	nodes[0].slots = 1;
	nodes[1].slots = 1;
	nodes[3].slots = 0;
	ck_assert_ptr_null(smig_policy_evacuate_topo(nodes, 4, rank_node, 4,
						     &topo, &err));
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_POLICY));
	ck_assert_str_eq(err->message,
			 "2 ranks must leave node3 but only 0 free slots remain");
	g_error_free(err);
	smig_plan_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("topology");
	TCase *tc = tcase_create("topology");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_tree_and_paths);
	tcase_add_test(tc, test_unbalanced_tree);
	tcase_add_test(tc, test_from_switches);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_byte_costs);
	tcase_add_test(tc, test_evacuate_near_partners);
	tcase_add_test(tc, test_evacuate_near_home);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
