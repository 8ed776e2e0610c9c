// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mpi-hello.c - the smallest MPI program, for ompi-init-segv.sh: MPI_Init,
 * one line, MPI_Finalize. With --exchange each rank then sends one row of
 * 96 doubles to each neighbour (rank +-1), as heat's first halo exchange
 * does, still without any code of slurm-migrate in the process.
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#define ROW 96

int main(int argc, char **argv)
{
	double out[ROW] = { 0 }, up[ROW], down[ROW];
	int rank, size, prev, next;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	printf("hello: rank %d start\n", rank);
	fflush(stdout);
	if (argc > 1 && strcmp(argv[1], "--exchange") == 0) {
		prev = rank > 0 ? rank - 1 : MPI_PROC_NULL;
		next = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;
		MPI_Sendrecv(out, ROW, MPI_DOUBLE, prev, 1, down, ROW,
			     MPI_DOUBLE, next, 1, MPI_COMM_WORLD,
			     MPI_STATUS_IGNORE);
		MPI_Sendrecv(out, ROW, MPI_DOUBLE, next, 2, up, ROW,
			     MPI_DOUBLE, prev, 2, MPI_COMM_WORLD,
			     MPI_STATUS_IGNORE);
	}
	MPI_Finalize();
	return 0;
}
