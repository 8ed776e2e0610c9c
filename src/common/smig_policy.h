/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy.h - decide where ranks go: a snapshot in, a plan of moves out
 *
 * Pure: no I/O, no clock, deterministic for the same snapshot.
 * This first version knows one strategy, evacuation: every rank on a node
 * that must be left (draining, down, failing) moves to a usable node of the
 * allocation with a free slot: fewest moves (only those ranks move), ranks
 * in rank order, each to the first node in allocation order that still has
 * a free slot (nodes the step already uses and spares alike).
 */
#ifndef SMIG_POLICY_H
#define SMIG_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef enum {
	SMIG_NODE_OK = 0,
	SMIG_NODE_DRAIN = 1 << 0,	/* draining or drained: leave it */
	SMIG_NODE_DOWN = 1 << 1,	/* down or not responding */
	SMIG_NODE_FAIL = 1 << 2,	/* failing (scontrol state=fail) */
} smig_node_flags_t;

typedef struct smig_policy_node {
	const char *name;	/* borrowed */
	uint32_t slots;		/* ranks it may hold in this allocation */
	uint32_t flags;		/* smig_node_flags_t */
} smig_policy_node_t;

typedef struct smig_policy_move {
	uint32_t rank;
	uint32_t from;		/* index into the node array */
	uint32_t to;
} smig_policy_move_t;

typedef struct smig_plan {
	GArray *moves;		/* of smig_policy_move_t, by rank */
	char *reason;		/* "down", "fail", "drain" (the worst flag of
				 * the nodes left), "ok" for an empty plan */
	char *text;		/* words for people: "ranks 2,3 node2->node3",
				 * "; " between node pairs; "no rank moves" */
} smig_plan_t;

/*
 * smig_policy_evacuate - move every rank off nodes flagged non-OK
 * IN  nodes     - allocation nodes (borrowed), nnodes of them
 * IN  rank_node - node index of each rank, nranks of them (borrowed)
 * OUT error     - SMIG_ERROR_POLICY when there are not enough free slots
 *                 ("3 ranks must leave node2 but only 1 free slot remains")
 * RET new plan (empty when no rank needs to move), caller frees with
 *     smig_plan_free(); NULL on error
 */
smig_plan_t *smig_policy_evacuate(const smig_policy_node_t *nodes,
				  uint32_t nnodes, const uint32_t *rank_node,
				  uint32_t nranks, GError **error);

/* smig_plan_free - free a plan; NULL is a no-op */
void smig_plan_free(smig_plan_t *plan);

/* smig_node_flags_reason - "drain", "down", "fail" or "ok" (static) */
const char *smig_node_flags_reason(uint32_t flags);

#endif /* SMIG_POLICY_H */
