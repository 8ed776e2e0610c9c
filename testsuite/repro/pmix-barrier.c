// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pmix-barrier.c - is a PMIx fence without data a barrier across nodes?
 *
 * Every rank calls PMIx_Fence(NULL, 0, NULL, 0) (all ranks of the
 * namespace, nothing collected: what Open MPI 4.1's MPI_Init does after its
 * modex); rank 0 first sleeps SEC seconds (argv[1], default 2). Each rank
 * prints how long its fence took: in a barrier every rank waits about SEC
 * seconds for rank 0. Plain PMIx, no MPI: see ompi-init-segv.sh and
 * doc/faults.md.
 *
 *   gcc -o pmix-barrier pmix-barrier.c $(pkg-config --cflags --libs pmix)
 *   srun --mpi=pmix -N3 -n6 ./pmix-barrier 2
 *   SLURM_PMIX_FENCE=ring srun --mpi=pmix -N3 -n6 ./pmix-barrier 2
 */
#include <pmix.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	pmix_proc_t me;
	pmix_status_t rc;
	int sec = argc > 1 ? atoi(argv[1]) : 2;
	const char *node = getenv("SLURMD_NODENAME");
	double t0;

	rc = PMIx_Init(&me, NULL, 0);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "pmix-barrier: PMIx_Init: %s\n",
			PMIx_Error_string(rc));
		return 1;
	}
	if (me.rank == 0)
		sleep(sec);
	t0 = now();
	rc = PMIx_Fence(NULL, 0, NULL, 0);
	printf("pmix-barrier: rank %u node %s fence %s after %.3f s\n",
	       me.rank, node ? node : "?",
	       rc == PMIX_SUCCESS ? "done" : PMIx_Error_string(rc),
	       now() - t0);
	fflush(stdout);
	PMIx_Finalize(NULL, 0);
	return rc == PMIX_SUCCESS ? 0 : 1;
}
