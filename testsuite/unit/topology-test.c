/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * topology-test.c - switch tree from topology.conf text, paths, errors,
 * hwloc factor, byte costs
 */
#include "smig_config.h"

#include <stdlib.h>
#include <check.h>
#include <glib.h>
#include <hwloc.h>

#include "smig_error.h"
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

START_TEST(test_hwloc_and_costs)
{
	hwloc_topology_t topo;
	hwloc_obj_t objs[2];
	hwloc_uint64_t values[4] = { 10, 20, 20, 10 };
	hwloc_distances_add_handle_t h;
	double cost[4];

	hwloc_topology_init(&topo);
	hwloc_topology_set_synthetic(topo, "pack:2 numa:1 core:2 pu:1");
	hwloc_topology_load(topo);
	/* No latency matrix: factor 1. */
	ck_assert(smig_topology_hwloc_factor(topo) == 1);
	objs[0] = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, 0);
	objs[1] = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, 1);
	h = hwloc_distances_add_create(topo, "test",
				       HWLOC_DISTANCES_KIND_FROM_USER |
				       HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(hwloc_distances_add_values(topo, h, 2, objs, values,
						    0), 0);
	ck_assert_int_eq(hwloc_distances_add_commit(topo, h, 0), 0);
	/* Mean 15 over local 10. */
	ck_assert(smig_topology_hwloc_factor(topo) == 1.5);
	hwloc_topology_destroy(topo);

	smig_topology_byte_cost(1e9, 1e10, 1.5, 2, cost);
	ck_assert(cost[0] == 1.5 / 1e10);
	ck_assert(cost[1] == 1 / 1e9);
	ck_assert(cost[2] == 2 / 1e9);
	ck_assert(cost[3] == 3 / 1e9);
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
	tcase_add_test(tc, test_hwloc_and_costs);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
