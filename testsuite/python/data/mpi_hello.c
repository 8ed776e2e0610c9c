/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mpi_hello.c - smallest MPI program the foundation tests launch
 *
 * Each rank prints "hello rank R of N node NODE sum S" after an allreduce of
 * the ranks (S = N(N-1)/2 proves that all ranks talked to each other). NODE
 * is SLURMD_NODENAME: in loopback mode every node has the same hostname.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	const char *node = getenv("SLURMD_NODENAME");
	int rank, size, sum = 0;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	printf("hello rank %d of %d node %s sum %d\n", rank, size,
	       node ? node : "?", sum);
	MPI_Finalize();
	return 0;
}
