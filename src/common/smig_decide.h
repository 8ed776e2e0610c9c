/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_decide.h - turn one step's monitoring samples into a policy snapshot
 *
 * The balancer's bridge between smig_metrics (what the node agents saw)
 * and smig_policy_decide() (where ranks should run). Pure: no I/O, no
 * clock, no Slurm; the caller passes the node flags, the step's placement
 * and the time estimates.
 *
 * The estimator (doc/design.md, "Automatic balancing"), in short:
 * - a node's availability a(n, i) = CPU of its ranks / (CPU + run-queue
 *   delay + stall of its ranks) in sample i: the share of the time its
 *   ranks wanted a core that they got one. Busy-polling MPI ranks are
 *   always runnable, so CPU share alone says nothing; a foreign hog shows
 *   as run-queue delay. The stall is the time neither on a CPU nor in the
 *   run queue beyond the least any node of the step lost in that sample
 *   (that part is the application's own sleep, I/O or blocking waits): a
 *   cpu cgroup quota's throttled time, which the kernel does not count as
 *   run delay. So the slowest node's modelled time per iteration is the
 *   measured one less what every node loses.
 * - speed(n) = the highest a(n, i) / max over nodes m of a(m, i) over the
 *   window: a node counts as slow only if it was slower than the others in
 *   every sample (persistence; a short burst is ignored). Nodes without
 *   ranks of the step (spares) are assumed as fast as the best node.
 * - load(r) = CPU seconds per iteration / the mean of the per-sample best
 *   a (a reference core: one of the best node): reference-core seconds,
 *   from the job's iteration rate (iters/s, the same for every rank of a
 *   bulk-synchronous job); polling time cannot be told from work, so no
 *   rank off the slowest node is given more load than the heaviest rank
 *   of the slowest node (the job is assumed balanced unless measured).
 */
#ifndef SMIG_DECIDE_H
#define SMIG_DECIDE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "smig_metrics.h"
#include "smig_policy.h"
#include "smig_topology.h"

/*
 * Bytes/s between two nodes under one leaf switch; each switch level up
 * one more link of the same speed (smig_topology_byte_cost()): the
 * engine's flat default (1 GB/s per link) for the first hop, so that a
 * flat network and a tree rate traffic under one leaf switch the same.
 * Traffic on one node costs 0 (doc/design.md, "Topology": why no hwloc).
 * An assumption, not a measurement: the default prior of the learned estimate
 * (smig_link_est_t; MigrateLinkBandwidth), doc/design.md, "Calibration".
 */
#define SMIG_DECIDE_LINK_BW	1e9

/* What the caller knows besides the samples; all borrowed for the call. */
typedef struct smig_decide_input {
	const smig_metrics_t *metrics;	/* the job's samples */
	uint32_t nranks;		/* ranks of the step, >= 1 */
	const uint32_t *rank_node;	/* node index where each rank runs */
	/*
	 * The allocation: name, slots, flags, spare and excluded are copied;
	 * cores, speed, background and mem_free are estimated here.
	 */
	const smig_policy_node_t *nodes;
	uint32_t nnodes;
	uint32_t min_samples;	/* samples each rank needs, 1 to
				 * SMIG_METRICS_WINDOW */
	double elapsed;		/* seconds the cumulative pair counters cover
				 * (the step's age); 0: traffic ignored */
	double remaining;	/* seconds the job is expected to run on */
	double relaunch;	/* seconds a move costs the whole job */
	double image_bw;	/* bytes/s images travel at, > 0 */
	/*
	 * Slurm's switch tree (the host's topology()), NULL or without
	 * levels: one flat network, as before switch trees were known
	 */
	const smig_topology_t *topo;
	/*
	 * Bytes/s between two nodes under one leaf switch (or of a flat
	 * network), each switch level up one more link: the balancer's
	 * smig_link_est_bw(); 0: SMIG_DECIDE_LINK_BW
	 */
	double link_bw;
} smig_decide_input_t;

/* The snapshot and the arrays it points into, owned together. */
typedef struct smig_decide {
	smig_policy_snapshot_t snap;	/* for smig_policy_decide() */
	smig_policy_node_t *nodes;	/* nnodes, names borrowed from input */
	smig_policy_rank_t *ranks;	/* nranks */
	smig_policy_edge_t *edges;	/* nedges, may be NULL */
	uint32_t *node_switch;	/* nnodes x snap.nlevels, NULL: flat */
	double *byte_cost;	/* snap.nlevels + 2: [0] = 0 (one node),
				 * [l] = l / link_bw */
	double *avail;		/* per node: its best availability a(n, i)
				 * of the window, -1 where the step has no
				 * (busy) ranks */
	double rate;		/* the job's iterations per second (window
				 * mean over ranks), 0: unknown */
	double t_iter;		/* seconds per iteration: 1 / rate; 1 when
				 * the rate is unknown (loads are then CPU
				 * seconds per second) */
	uint32_t slowest;	/* node index of the slowest node with ranks */
	double link_bw;		/* the bytes/s byte_cost was computed from */
	char *text;		/* "speed node1=0.31 node2=1.00 rate=12.5/s"
				 * for logs, " switches node1=s0 ..." with a
				 * tree */
} smig_decide_t;

/*
 * smig_decide_snapshot - estimate speeds and loads from the samples
 * IN  in    - samples, placement, allocation and costs (borrowed)
 * OUT error - SMIG_ERROR_POLICY when the samples do not allow a decision,
 *             naming the rank: "rank 3: 2 samples, 8 needed", "rank 3:
 *             sampled on node2 but runs on node1" (stale), or a bad input
 *             field; caller g_error_free()s
 * RET new estimate, caller frees with smig_decide_free(); NULL on error
 */
smig_decide_t *smig_decide_snapshot(const smig_decide_input_t *in,
				    GError **error);

/*
 * smig_decide_adjust - anchor a balancing plan at the measured iteration
 * time, and apply the thresholds again
 * IN     d      - the estimate the plan was made from (borrowed)
 * IN     params - the parameters it was made with (borrowed)
 * IN/OUT plan   - a plan of smig_policy_decide() on d->snap; a forced plan
 *                 is left alone. Otherwise, when the model's iteration is
 *                 shorter than the measured t_iter, the part no node's CPU
 *                 explains (sleep, I/O, blocking waits: the model counts
 *                 only runnable time), S = t_iter - iter_before, is added
 *                 to iter_before and iter_after; when it is longer (with a
 *                 known rate), iter_before becomes t_iter and iter_after
 *                 t_iter - (the model's saving), at least iter_after *
 *                 t_iter / iter_before. Gain recomputed; a plan that no
 *                 longer passes hysteresis or min_gain loses its moves
 *                 (reason "ok", why says why).
 * RET true if the plan still has moves
 */
bool smig_decide_adjust(const smig_decide_t *d,
			const smig_policy_params_t *params, smig_plan_t *plan);

/* smig_decide_free - NULL is a no-op */
void smig_decide_free(smig_decide_t *d);

/*
 * smig_decide_edges - the rank pairs of m with traffic as policy edges
 * (a < b; one edge per directed pair), their bytes divided by per (the
 * counters' seconds for a rate, 1 for the bytes), sorted by a, b, bytes so
 * that no decision depends on the metrics' hash order; pairs naming a rank
 * of nranks or more are left out
 * IN m - the job's metrics (borrowed), NULL: none
 * RET the edges (smig_policy_edge_t), caller g_array_unref()s
 */
GArray *smig_decide_edges(const smig_metrics_t *m, uint32_t nranks,
			  double per);

/*
 * smig_decide_rate - the job's iteration rate: the mean over ranks 0 to
 * nranks - 1 of each rank's window mean of iters (samples without a rate
 * left out)
 * IN  min_samples - samples each rank needs
 * OUT rate        - iterations per second; set only on success
 * RET false unless every rank has min_samples samples, at least half of
 *     them with a known rate (the application calls smig_safepoint())
 */
bool smig_decide_rate(const smig_metrics_t *m, uint32_t nranks,
		      uint32_t min_samples, double *rate);

/*
 * The cost of a byte between nodes, learned from the balancer's own moves
 * (doc/design.md, "Calibration"): the assumed bandwidth (the prior,
 * MigrateLinkBandwidth) until a move whose plan was mostly traffic has had
 * its gain measured; then the geometric mean of what such moves showed,
 * the older ones weighing less.
 */
typedef struct smig_link_est {
	double prior_bw;	/* bytes/s assumed before any measurement */
	double sum_log;		/* decayed sum of log(bytes/s seen) */
	double weight;		/* decayed count of observations */
	uint32_t n;		/* observations taken */
} smig_link_est_t;

/* One measured move: what its plan predicted and what was measured. */
typedef struct smig_link_obs {
	double link_bw;		/* bytes/s the plan was made with */
	double iter_before;	/* the plan's seconds per iteration (after
				 * smig_decide_adjust()) */
	double iter_after;
	double comm_before;	/* the slowest node's communication seconds
				 * in them (smig_plan_t.comm_*) */
	double comm_after;
	double rate_before;	/* measured iterations/s before the move */
	double rate_after;	/* ... and after it */
} smig_link_obs_t;

/*
 * smig_link_est_init - an estimate at its prior
 * IN prior_bw - bytes/s; not > 0: SMIG_DECIDE_LINK_BW
 */
void smig_link_est_init(smig_link_est_t *est, double prior_bw);

/* smig_link_est_bw - bytes/s between nodes to plan with now */
double smig_link_est_bw(const smig_link_est_t *est);

/*
 * smig_link_est_observe - learn from a measured move. Its plan's time is
 * split into communication (which scales with the cost of a byte) and the
 * rest (taken as predicted); the cost of a byte that makes the plan's
 * saving equal the measured one (1 / rate before - 1 / rate after) is
 * what the move saw (scaled by 1/1000 .. 1000 at most).
 * IN  o       - the move (borrowed)
 * OUT bw_seen - bytes/s the move saw; set when true
 * OUT why     - a sentence for the log, either way; caller g_free()s
 * RET false when the move says nothing about traffic (its plan's saving
 *     was less than a quarter communication, or a value is missing)
 */
bool smig_link_est_observe(smig_link_est_t *est, const smig_link_obs_t *o,
			   double *bw_seen, char **why);

#endif /* SMIG_DECIDE_H */
