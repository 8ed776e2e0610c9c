/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_policy_topo.h - bench-policy's topology scenario: heavy talkers
 * split across leaf switches, the engine with switch levels and the same
 * engine topology-blind against the ILP optimum of bench_policy_ilp.c
 */
#ifndef BENCH_POLICY_TOPO_H
#define BENCH_POLICY_TOPO_H

#include <stdbool.h>

/* Counts and ratios of the scenario, for its headline. */
typedef struct {
	int n, proven, model_bad, topo_better, blind_better;
	double med, lo, hi, max;		/* engine / optimum */
	double bmed, blo, bhi, bmax;		/* blind / optimum */
	double tsec;				/* GLPK's seconds in all */
} topo_sum_t;

/*
 * table_topology - the scenario's table (one line an instance)
 * IN  seeds - instances per size
 * IN  limit - GLPK's time limit per instance, seconds (bench_policy.c
 *             gives 5 x the limit of table 1: this programme is harder)
 * OUT sum   - counts and ratios
 */
void table_topology(int seeds, double limit, topo_sum_t *sum);

/* topo_headline - the line "bench-policy: topology ..." of SUM */
void topo_headline(const topo_sum_t *sum);

/* From bench_policy.c: median (sorts V) and its 95 % bootstrap interval. */
double median_of(double *v, int n);
void boot_median(const double *v, int n, double *lo, double *hi);

#endif /* BENCH_POLICY_TOPO_H */
