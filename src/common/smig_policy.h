/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy.h - decide where ranks go: a snapshot in, a plan of moves out
 *
 * Pure: no I/O, no clock, no Slurm, deterministic for the same snapshot.
 *
 * Two entry points:
 * - smig_policy_evacuate(): the first, minimal strategy, which the
 *   balancer uses for nodes that must be left: every rank on a node that
 *   is draining, down or failing moves to a usable node of the allocation
 *   with a free slot:
 *   fewest moves (only those ranks move), ranks in rank order, each to the
 *   first spare node (hot spares, spares=N) in allocation order that still
 *   has a free slot, else to the first other node that has one;
 *   smig_policy_evacuate_topo() does the same nearest to each rank's
 *   partners on a switch tree.
 * - smig_policy_decide(): the policy engine. A snapshot (ranks, nodes,
 *   communication affinity, distances, costs, constraints) and a strategy
 *   go in; a plan comes out with its moves, the predicted iteration time
 *   before and after, the predicted migration cost, the net gain over the
 *   expected remaining run and the reasons in words. doc/design.md
 *   ("Policy") describes the model and the strategies.
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

/*
 * One node of the allocation (or a spare). smig_policy_evacuate() reads
 * name, slots, flags and spare only; smig_policy_decide() reads every
 * field.
 */
typedef struct smig_policy_node {
	const char *name;	/* borrowed */
	uint32_t slots;		/* ranks it may hold in this allocation */
	uint32_t flags;		/* smig_node_flags_t */
	uint32_t cores;		/* cores the job may use there, >= 1 */
	double speed;		/* per-core speed relative to the reference
				 * core the loads are measured in, > 0 */
	double background;	/* cores kept busy by other work (mean run
				 * queue of foreign processes), 0 <= x < cores */
	uint64_t mem_free;	/* bytes free now, not counting the memory of
				 * the job's own ranks there */
	bool spare;		/* held idle for the job: used when it pays,
				 * ties go to nodes that are not spares;
				 * smig_policy_evacuate() fills spares
				 * first */
	bool excluded;		/* the job may not use it (left like a
				 * draining node) */
} smig_policy_node_t;

typedef struct smig_policy_move {
	uint32_t rank;
	uint32_t from;		/* index into the node array */
	uint32_t to;
} smig_policy_move_t;

typedef struct smig_plan {
	GArray *moves;		/* of smig_policy_move_t, by rank */
	char *reason;		/* "down", "fail", "drain" (the worst flag of
				 * the nodes left), "ok" for an empty plan;
				 * smig_policy_decide() also gives "excluded",
				 * "balance" (load), "affinity" (traffic) and
				 * "topology" (traffic moved to lower switch
				 * levels, snapshots with nlevels > 0) */
	char *text;		/* words for people: "ranks 2,3 node2->node3",
				 * "; " between node pairs; "no rank moves" */
	/* Set by smig_policy_decide() only (zero from _evacuate()): */
	char *why;		/* the reasons in words, one sentence per
				 * fact: bottleneck, prediction, cost, gain, or
				 * why nothing moves; with switch levels, a
				 * plan's bytes per iteration by level before
				 * and after ("Topology (switch levels): ...") */
	const char *strategy;	/* static: name of the strategy whose plan
				 * won ("refine", "comm", "greedy", ...) */
	double iter_before;	/* predicted seconds per iteration now */
	double iter_after;	/* ... after the moves */
	double cost;		/* predicted seconds the job loses moving */
	double gain;		/* net seconds saved over the remaining run:
				 * remaining * (1 - after / before) - cost */
	bool forced;		/* moves were mandatory (nodes to leave): the
				 * plan stands whatever the gain */
	double comm_before;	/* communication seconds of the slowest node
				 * in iter_before (the rest is compute) */
	double comm_after;	/* ... in iter_after */
} smig_plan_t;

/* An undirected communication edge: ranks a and b exchange bytes/s. */
typedef struct smig_policy_edge {
	uint32_t a;
	uint32_t b;
	double bytes;		/* bytes/s in both directions together,
				 * measured at the current pace; several edges
				 * of one pair add up */
} smig_policy_edge_t;

/* One rank as the balancer last measured it. */
typedef struct smig_policy_rank {
	uint32_t node;		/* index into the node array: where it runs */
	double load;		/* compute seconds per iteration on one
				 * reference core (speed 1), >= 0 */
	uint64_t mem;		/* resident bytes */
	uint64_t image;		/* bytes of its recovery image */
	double rate;		/* iterations per second, 0: not known */
} smig_policy_rank_t;

/*
 * A snapshot: everything the engine knows, borrowed for the call only.
 * The balancer builds it from its samples (loads, rates and affinity
 * averaged over its window), Slurm's node states and switch tree
 * (smig_decide.c with smig_topology_*()). Zero-initialise it, then fill
 * what is known.
 */
typedef struct smig_policy_snapshot {
	const smig_policy_node_t *nodes;	/* nnodes of them */
	uint32_t nnodes;
	const smig_policy_rank_t *ranks;	/* nranks of them */
	uint32_t nranks;
	const smig_policy_edge_t *edges;	/* nedges, NULL when 0 */
	size_t nedges;
	/*
	 * Distances. Switch levels from topology.conf: node_switch holds
	 * nnodes x nlevels switch ids, row-major, level 0 = the node's leaf
	 * switch, level l = its highest ancestor of level <= l; two nodes
	 * meet at the first level with equal ids (smig_topology_paths()
	 * fills it). nlevels 0, node_switch NULL: one flat network.
	 */
	uint32_t nlevels;
	const uint32_t *node_switch;
	/*
	 * Seconds per byte between two ranks nlevels + 2 entries: [0] on
	 * the same node (shared memory; the balancer passes 0), [1] under
	 * the same leaf switch, ..., [nlevels + 1] across the top or
	 * unknown. NULL: [0] = 0, [l] = l x 1e-9 (1 GB/s per link, each
	 * level one more link); smig_topology_byte_cost() computes them.
	 */
	const double *byte_cost;
	double image_bw;	/* bytes/s a moved rank's image travels at,
				 * > 0 */
	double relaunch;	/* seconds a relaunch costs the whole job
				 * (capture of all ranks, stop, start, restore),
				 * >= 0 */
	double remaining;	/* seconds the job is expected to run on at
				 * today's pace (time limit left), >= 0 */
} smig_policy_snapshot_t;

typedef enum {
	SMIG_POLICY_DEFAULT = 0,	/* combined: evacuate, then the best of
					 * refine, comm, greedy+refine and, on
					 * small instances, an exact search */
	SMIG_POLICY_EVACUATE,		/* only leave bad nodes, fewest moves */
	SMIG_POLICY_REFINE,		/* evacuate, then move single ranks off
					 * the slowest node while it pays */
	SMIG_POLICY_COMM,		/* evacuate, METIS k-way placement of the
					 * affinity graph, then refine */
	/* Reference strategies of the field, for bench/ comparisons: */
	SMIG_POLICY_GREEDY,		/* longest processing time first, from
					 * scratch, communication-blind */
	SMIG_POLICY_BLIND,		/* the default, affinity ignored while
					 * deciding (plans still rated with it) */
} smig_policy_strategy_t;

/* How to decide; smig_policy_params_init() sets the defaults. */
typedef struct smig_policy_params {
	smig_policy_strategy_t strategy;
	uint32_t max_moves;	/* ranks moved per decision at most, 0: any */
	double min_gain;	/* seconds of net gain a plan must bring;
				 * default 60 */
	double hysteresis;	/* relative iteration-time gain a plan must
				 * bring, 0 <= x < 1; default 0.05 */
} smig_policy_params_t;

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

/* What smig_policy_evacuate_topo() knows of the network (borrowed). */
typedef struct smig_policy_evac_topo {
	uint32_t nlevels;		/* switch levels, 0: flat */
	const uint32_t *node_switch;	/* nnodes x nlevels, as in
					 * smig_policy_snapshot_t */
	const smig_policy_edge_t *edges;	/* traffic, any scale */
	size_t nedges;
} smig_policy_evac_topo_t;

/*
 * smig_policy_evacuate_topo - smig_policy_evacuate() with switches
 * IN topo - switch levels and traffic (borrowed); NULL, nlevels 0 or
 *           node_switch NULL: exactly smig_policy_evacuate()
 *
 * The same ranks move (the least number of moves), in rank order, spares
 * first, slots respected, the same error when they do not fit; but within
 * each class (spares, then the other usable nodes) a rank takes the node
 * with a free slot whose distance to its partners, weighted by their
 * bytes, is least (partners where they are, or where this plan already
 * sent them), so under the leaf switch of its heaviest partners; then the
 * node nearest to the one it leaves (so with no traffic: under the same
 * leaf switch if one has room); then allocation order.
 */
smig_plan_t *smig_policy_evacuate_topo(const smig_policy_node_t *nodes,
				       uint32_t nnodes,
				       const uint32_t *rank_node,
				       uint32_t nranks,
				       const smig_policy_evac_topo_t *topo,
				       GError **error);

/* smig_plan_free - free a plan; NULL is a no-op */
void smig_plan_free(smig_plan_t *plan);

/* smig_node_flags_reason - "drain", "down", "fail" or "ok" (static) */
const char *smig_node_flags_reason(uint32_t flags);

/*
 * smig_policy_params_init - default parameters (combined strategy, no
 * move limit, min_gain 60 s, hysteresis 5 %)
 * OUT params - caller-owned storage
 */
void smig_policy_params_init(smig_policy_params_t *params);

/*
 * smig_policy_decide - the policy engine: where the ranks should run
 * IN  snap   - the snapshot (borrowed for the call; never kept)
 * IN  params - strategy and limits; NULL: smig_policy_params_init()
 * OUT error  - SMIG_ERROR_POLICY: bad input, named by field, index and
 *              value ("rank 7: load=-1: not a finite number >= 0"), or
 *              no placement exists (ranks must leave but do not fit)
 * RET new plan, caller frees with smig_plan_free(); NULL on error
 *
 * Ranks on nodes flagged DRAIN, DOWN or FAIL, or excluded, must leave
 * (plan->forced): those moves are made whatever they cost, and fail with
 * an error when there is no room (slots, memory) or when they exceed
 * max_moves. Otherwise the plan is empty (reason "ok", plan->why says why)
 * unless it gains at least min_gain seconds and iter_after <=
 * (1 - hysteresis) * iter_before, so that noise cannot cause ping-pong.
 * Deterministic: the same snapshot and params give the same plan. Pure;
 * safe to call from any thread. Time O((ranks + edges) log nodes) for
 * refine; METIS adds its own (about a second per million edges), so the
 * default runs it only when communication is at least 5 % of the
 * iteration time.
 */
smig_plan_t *smig_policy_decide(const smig_policy_snapshot_t *snap,
				const smig_policy_params_t *params,
				GError **error);

/*
 * The model alone, for tools and bench/ (exhaustive search): the seconds
 * per iteration of any placement of a snapshot's ranks.
 */
typedef struct smig_policy_eval smig_policy_eval_t;

/*
 * smig_policy_eval_new - prepare the model of a snapshot
 * IN  snap  - snapshot (borrowed; must outlive the evaluator)
 * OUT error - bad input, as smig_policy_decide() reports it
 * RET new evaluator, caller frees with smig_policy_eval_free(); NULL on
 *     error
 */
smig_policy_eval_t *smig_policy_eval_new(const smig_policy_snapshot_t *snap,
					 GError **error);

/*
 * smig_policy_eval_time - predicted seconds per iteration
 * IN rank_node - node index of each rank (each < nnodes), NULL: where the
 *                ranks run now (borrowed)
 * Slots, memory and node flags are not checked: any placement has a time.
 */
double smig_policy_eval_time(smig_policy_eval_t *ev,
			     const uint32_t *rank_node);

/* smig_policy_eval_free - free an evaluator; NULL is a no-op */
void smig_policy_eval_free(smig_policy_eval_t *ev);

/*
 * smig_plan_moves_text - "ranks 2,3 node2->node3; rank 5 node1->node4"
 * IN nodes - node array the moves index (borrowed)
 * IN moves - of smig_policy_move_t, in the order groups are listed
 * RET new string ("" for no moves), caller g_free()s
 */
char *smig_plan_moves_text(const smig_policy_node_t *nodes,
			   const GArray *moves);

/* smig_policy_strategy_name - "default", "refine", ... (static) */
const char *smig_policy_strategy_name(smig_policy_strategy_t strategy);

#endif /* SMIG_POLICY_H */
