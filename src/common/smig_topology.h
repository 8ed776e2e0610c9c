/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_topology.h - distances between nodes (Slurm's switch tree) and
 * inside a node (hwloc), as the policy engine's snapshot wants them
 *
 * Pure: the caller reads topology.conf and loads hwloc; these functions
 * take the text and the objects. No Slurm.
 */
#ifndef SMIG_TOPOLOGY_H
#define SMIG_TOPOLOGY_H

#include <stdint.h>
#include <glib.h>
#include <hwloc.h>

typedef struct smig_topology smig_topology_t;

/*
 * smig_topology_parse - read the switch tree of a topology.conf text
 * IN  text  - whole file (borrowed); lines "SwitchName=s0 Nodes=n[1-4]",
 *             "SwitchName=s2 Switches=s[0-1]", '#' comments; keys are
 *             case-insensitive; LinkSpeed is accepted and ignored
 * IN  path  - file name for messages (borrowed)
 * OUT error - SMIG_ERROR_CONFIG naming path:line, key and value: unknown
 *             key, missing SwitchName, switch defined twice, unknown child
 *             switch, a switch or node with two parents, a cycle
 * RET new tree, caller frees with smig_topology_free(); NULL on error
 *
 * Switch levels as Slurm counts them: a switch without child switches is
 * level 0, any other one more than its highest child.
 */
smig_topology_t *smig_topology_parse(const char *text, const char *path,
				     GError **error);

/* smig_topology_free - free a tree; NULL is a no-op */
void smig_topology_free(smig_topology_t *topo);

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
 * smig_topology_hwloc_factor - how much dearer, on average, memory traffic
 * between two ranks of one node is than traffic within one NUMA node:
 * the mean of hwloc's NUMA latency matrix over its diagonal mean
 * IN topo - a loaded hwloc topology (borrowed)
 * RET >= 1; 1 when hwloc knows no NUMA latencies (one NUMA node)
 */
double smig_topology_hwloc_factor(hwloc_topology_t topo);

/*
 * smig_topology_byte_cost - the snapshot's byte_cost array
 * IN  link_bw      - bytes/s between two nodes under one leaf switch, > 0
 * IN  shm_bw       - bytes/s between two ranks of one node, > 0
 * IN  hwloc_factor - smig_topology_hwloc_factor() of the nodes
 * IN  nlevels      - switch levels (smig_topology_levels())
 * OUT cost         - nlevels + 2 entries (caller's storage): [0] =
 *                    hwloc_factor / shm_bw, [l] = l / link_bw (each
 *                    switch level up is one more link to cross)
 */
void smig_topology_byte_cost(double link_bw, double shm_bw,
			     double hwloc_factor, uint32_t nlevels,
			     double *cost);

#endif /* SMIG_TOPOLOGY_H */
