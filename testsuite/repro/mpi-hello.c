// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mpi-hello.c - the smallest MPI program: MPI_Init, one line, MPI_Finalize
 * (for ompi-init-segv.sh: a start-up crash with no code of ours in the rank)
 */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	int rank;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	printf("hello: rank %d start\n", rank);
	fflush(stdout);
	MPI_Finalize();
	return 0;
}
