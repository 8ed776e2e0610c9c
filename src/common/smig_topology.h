/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_topology.h - distances between nodes (Slurm's switch tree), as the
 * policy engine's snapshot wants them
 *
 * Pure: the caller reads topology.conf or Slurm's switch records
 * (smigd_slurm.c: slurm_load_topo()); these functions take the text and
 * the records. No Slurm. A tree is immutable once
 * built and reference-counted: threads may share it.
 */
#ifndef SMIG_TOPOLOGY_H
#define SMIG_TOPOLOGY_H

#include <stdint.h>
#include <glib.h>

typedef struct smig_topology smig_topology_t;

/*
 * smig_topology_parse - read the switch tree of a topology.conf text
 * IN  text  - whole file (borrowed); lines "SwitchName=s0 Nodes=n[1-4]",
 *             "SwitchName=s2 Switches=s[0-1]", '#' comments; keys are
 *             case-insensitive; LinkSpeed and Level (as Slurm's
 *             slurm_print_topo_info_msg() prints them) are accepted and
 *             ignored
 * IN  path  - file name for messages (borrowed)
 * OUT error - SMIG_ERROR_CONFIG naming path:line, key and value: unknown
 *             key, missing SwitchName, switch defined twice, unknown child
 *             switch, a switch or node with two parents, a cycle
 * RET new tree (one reference), caller smig_topology_unref()s; NULL on
 *     error
 *
 * Switch levels as Slurm counts them: a switch without child switches is
 * level 0, any other one more than its highest child.
 */
smig_topology_t *smig_topology_parse(const char *text, const char *path,
				     GError **error);

/* One switch record as Slurm's topo_info_t has it (strings borrowed). */
typedef struct smig_topology_switch {
	const char *name;	/* SwitchName */
	const char *nodes;	/* hostlist of its nodes, NULL or "": none */
	const char *switches;	/* hostlist of its child switches,
				 * likewise */
} smig_topology_switch_t;

/*
 * smig_topology_from_switches - the tree of Slurm's switch records
 * IN  sw    - nsw records (borrowed), in any order
 * IN  what  - their source for messages ("slurm_load_topo"): an error
 *             names what:INDEX (from 1), the field and the value, as
 *             smig_topology_parse() does for a file's lines
 * OUT error - SMIG_ERROR_CONFIG, as smig_topology_parse()
 * RET new tree (one reference), caller smig_topology_unref()s; NULL on
 *     error; nsw 0 gives a tree without levels (flat)
 */
smig_topology_t *smig_topology_from_switches(const smig_topology_switch_t *sw,
					     uint32_t nsw, const char *what,
					     GError **error);

/* smig_topology_ref - one more reference (any thread). RET topo */
smig_topology_t *smig_topology_ref(smig_topology_t *topo);

/* smig_topology_unref - drop a reference, the last frees; NULL: no-op */
void smig_topology_unref(smig_topology_t *topo);

/* smig_topology_switches - number of switches (ids 0 to this - 1) */
uint32_t smig_topology_switches(const smig_topology_t *topo);

/*
 * smig_topology_switch_name - name of switch id (borrowed from the tree);
 * NULL for ids beyond the switches (smig_topology_paths()' ids of nodes
 * outside the tree)
 */
const char *smig_topology_switch_name(const smig_topology_t *topo,
				      uint32_t id);

/* smig_topology_leaf - a node's leaf switch (borrowed), NULL if none */
const char *smig_topology_leaf(const smig_topology_t *topo, const char *node);

/* smig_topology_levels - highest switch level + 1 (0: no switch) */
uint32_t smig_topology_levels(const smig_topology_t *topo);

/*
 * smig_topology_paths - the snapshot's node_switch array for some nodes
 * IN  names   - node names (borrowed), nnames of them
 * OUT nlevels - columns of the result: smig_topology_levels()
 * RET new array of nnames x nlevels switch ids, row-major: column l holds
 *     the highest switch above the node whose level is <= l, or an id of
 *     its own when there is none (a node not in the tree meets no other
 *     node below the top); caller g_free()s; NULL when nlevels is 0
 */
uint32_t *smig_topology_paths(const smig_topology_t *topo,
			      const char *const *names, uint32_t nnames,
			      uint32_t *nlevels);

/*
 * smig_topology_byte_cost - the snapshot's byte_cost array
 * IN  link_bw - bytes/s between two nodes under one leaf switch, > 0
 * IN  nlevels - switch levels (smig_topology_levels())
 * OUT cost    - nlevels + 2 entries (caller's storage): [0] = 0 (ranks of
 *               one node: shared memory, not modelled), [l] = l / link_bw
 *               (each switch level up is one more link to cross)
 */
void smig_topology_byte_cost(double link_bw, uint32_t nlevels, double *cost);

#endif /* SMIG_TOPOLOGY_H */
