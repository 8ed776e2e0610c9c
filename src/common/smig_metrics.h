/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_metrics.h - rolling windows of rank and node load, and the sparse
 * rank x rank traffic table of one job; parsers of the /proc files and of
 * the admin's health file the node agent samples
 *
 * Pure: no I/O, no Slurm, no locking (the balancer's thread owns each
 * instance). Bounded memory, caps below (doc/design.md, "Monitoring"):
 * per job at most SMIG_METRICS_MAX_RANKS ranks (about 120 bytes each),
 * SMIG_METRICS_MAX_NODES nodes and SMIG_METRICS_MAX_PAIRS rank pairs (about
 * 64 bytes each); a sample beyond a cap is refused with an error.
 */
#ifndef SMIG_METRICS_H
#define SMIG_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#define SMIG_METRICS_WINDOW	8	/* samples kept per rank and node */
#define SMIG_METRICS_MAX_RANKS	65536	/* ranks of one job */
#define SMIG_METRICS_MAX_NODES	16384	/* nodes of one job */
#define SMIG_METRICS_MAX_PAIRS	262144	/* directed rank pairs of one job */
#define SMIG_METRICS_STATUS_RANKS 4096	/* ranks listed in one STATUS */
#define SMIG_METRICS_STATUS_PAIRS 64	/* top pairs listed in one STATUS */

typedef enum {
	SMIG_HEALTH_UNKNOWN,	/* no health file configured or readable */
	SMIG_HEALTH_OK,
	SMIG_HEALTH_WARN,
	SMIG_HEALTH_FAIL,
} smig_health_t;

/* smig_health_name - "unknown", "ok", "warn", "fail" (static) */
const char *smig_health_name(smig_health_t h);

/* One rank over one sampling interval, as the agent computed it. */
typedef struct smig_rank_sample {
	uint32_t rank;
	double cpu;		/* CPU seconds per wall second (1.0: a core) */
	double delay;		/* run-queue delay per wall second */
	uint64_t rss;		/* resident bytes */
	double iters;		/* safe points per second; < 0: unknown */
} smig_rank_sample_t;

/* One node at one sampling time. */
typedef struct smig_node_sample {
	const char *node;	/* borrowed */
	double load;		/* 1-minute load average */
	uint64_t mem_avail;	/* bytes */
	smig_health_t health;
	const char *reason;	/* borrowed, may be NULL */
} smig_node_sample_t;

/* Traffic a rank sent to a peer since it started (cumulative). */
typedef struct smig_pair_sample {
	uint32_t src;
	uint32_t dst;
	uint64_t bytes;
	uint64_t msgs;
} smig_pair_sample_t;

typedef struct smig_metrics smig_metrics_t;

/* smig_metrics_new - empty; caller frees with smig_metrics_free() */
smig_metrics_t *smig_metrics_new(void);

/* smig_metrics_free - NULL is a no-op */
void smig_metrics_free(smig_metrics_t *m);

/*
 * smig_metrics_add_node - one node sample into the node's window
 * OUT error - too many nodes or an empty name; caller g_error_free()s
 */
bool smig_metrics_add_node(smig_metrics_t *m, const smig_node_sample_t *s,
			   GError **error);

/*
 * smig_metrics_add_rank - one rank sample into the rank's window; the rank
 * is placed on node (which must have been added with _add_node())
 * OUT error - rank beyond the cap, unknown node or a value out of range
 *             (negative, not finite); caller g_error_free()s
 */
bool smig_metrics_add_rank(smig_metrics_t *m, const char *node,
			   const smig_rank_sample_t *s, GError **error);

/*
 * smig_metrics_set_pair - the cumulative counters of src -> dst (replace
 * the previous value; src == dst is refused)
 * OUT error - caller g_error_free()s
 */
bool smig_metrics_set_pair(smig_metrics_t *m, const smig_pair_sample_t *s,
			   GError **error);

/*
 * smig_metrics_node_health - the node's health in its latest sample
 * OUT reason - its reason, or NULL (borrowed: valid until the next sample
 *              of that node); may be NULL
 * RET SMIG_HEALTH_UNKNOWN when m is NULL or the node has no sample
 */
smig_health_t smig_metrics_node_health(const smig_metrics_t *m,
				       const char *node, const char **reason);

/* smig_metrics_has_samples - true once any rank sample was added */
bool smig_metrics_has_samples(const smig_metrics_t *m);

/*
 * smig_metrics_hot - the rank with the highest mean CPU share over its
 * window (lowest rank on a tie) and the imbalance max/mean
 * RET false if no rank has samples
 */
bool smig_metrics_hot(const smig_metrics_t *m, uint32_t *rank,
		      double *imbalance);

/*
 * smig_metrics_summary - the "load=" field of the job's state line, e.g.
 * "imbalance:1.42,hot:rank3@node2,node:node2[,unhealthy:node4]"
 * (node: the node whose ranks use the most CPU)
 * RET new string, caller g_free()s; NULL before the first rank sample
 */
char *smig_metrics_summary(const smig_metrics_t *m);

/*
 * smig_metrics_to_variant - everything a QUERY may see, as a{sv}
 * (fields in doc/design.md, STATUS); lists are capped at
 * SMIG_METRICS_STATUS_RANKS ranks and SMIG_METRICS_STATUS_PAIRS pairs
 * RET new floating GVariant
 */
GVariant *smig_metrics_to_variant(const smig_metrics_t *m);

/*
 * smig_metrics_rank_window - one rank's window, newest sample first
 * IN  rank  - the rank
 * OUT node  - name of the node of its newest sample (borrowed from m;
 *             valid until m changes), NULL if never sampled; may be NULL
 * OUT cpu, delay, iters - SMIG_METRICS_WINDOW entries each (caller-owned
 *             storage, may be NULL); the first RET entries are set, iters
 *             -1 where unknown
 * OUT rss   - latest resident bytes, may be NULL
 * RET samples in the window (0: the rank was never sampled)
 */
uint32_t smig_metrics_rank_window(const smig_metrics_t *m, uint32_t rank,
				  const char **node, double *cpu,
				  double *delay, double *iters, uint64_t *rss);

/*
 * smig_metrics_foreach_pair - call fn for each directed rank pair with its
 * cumulative counters, in no particular order
 * IN fn, data - callback and its argument (the sample is borrowed)
 */
void smig_metrics_foreach_pair(const smig_metrics_t *m,
			       void (*fn)(const smig_pair_sample_t *s,
					  void *data),
			       void *data);

/*
 * smig_metrics_clear_ranks - forget every rank's window and the traffic
 * counters (after a move they describe the old placement); node windows
 * stay. smig_metrics_has_samples() is false until the next rank sample.
 */
void smig_metrics_clear_ranks(smig_metrics_t *m);

/* smig_metrics_memory - approximate bytes held by m */
size_t smig_metrics_memory(const smig_metrics_t *m);

/*
 * /proc parsers: text is one file's content, NUL-terminated (borrowed).
 * Each returns false on text it cannot parse, leaving the outputs alone.
 */

/* /proc/<pid>/stat: utime + stime in clock ticks */
bool smig_proc_parse_stat(const char *text, uint64_t *ticks);

/* /proc/<pid>/schedstat: time on CPU and time runnable waiting, in ns */
bool smig_proc_parse_schedstat(const char *text, uint64_t *run_ns,
			       uint64_t *delay_ns);

/* /proc/<pid>/status: VmRSS in bytes (a kernel thread has none: false) */
bool smig_proc_parse_status_rss(const char *text, uint64_t *bytes);

/* /proc/meminfo: MemAvailable in bytes */
bool smig_proc_parse_meminfo(const char *text, uint64_t *bytes);

/* /proc/loadavg: the 1-minute load */
bool smig_proc_parse_loadavg(const char *text, double *load);

/*
 * smig_health_parse - the admin's health file (MigrateHealthFile): the
 * first word is ok, warn or fail (case-insensitive), the rest of the first
 * line is the reason
 * OUT reason - new string (may be empty), caller g_free()s; set on success
 * RET false if the first word is none of the three
 */
bool smig_health_parse(const char *text, smig_health_t *health,
		       char **reason);

#endif /* SMIG_METRICS_H */
