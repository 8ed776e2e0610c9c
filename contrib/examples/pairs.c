/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pairs.c - a traffic pattern with known byte counts, for the affinity view
 *
 * Every rank sends --small bytes to each other rank once (MPI_Send); then
 * ranks A and B (--pair A,B) exchange --big bytes in each direction
 * --rounds times with MPI_Sendrecv. Expected counts (sender side, both
 * directions summed): A-B: 2 x (small + rounds x big) bytes, every other
 * pair: 2 x small. Then it waits --hold seconds (barriers, no payload) so
 * the node agent samples the final counts, and exits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

static long arg(int argc, char **argv, const char *name, long def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name)) {
			char *end;
			long v;

			errno = 0;
			v = strtol(argv[i + 1], &end, 10);
			if (errno || *end || v < 0) {
				fprintf(stderr, "pairs: %s %s: not a number >= 0\n",
					name, argv[i + 1]);
				exit(2);
			}
			return v;
		}
	return def;
}

int main(int argc, char **argv)
{
	long small = arg(argc, argv, "--small", 1000);
	long big = arg(argc, argv, "--big", 1 << 20);
	long rounds = arg(argc, argv, "--rounds", 10);
	long a = arg(argc, argv, "--a", 1);
	long b = arg(argc, argv, "--b", 2);
	long hold = arg(argc, argv, "--hold", 5);
	int rank, size, peer;
	char *sbuf, *rbuf;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (a >= size || b >= size || a == b) {
		if (!rank)
			fprintf(stderr, "pairs: --a %ld --b %ld: two distinct ranks below %d\n",
				a, b, size);
		MPI_Finalize();
		return 2;
	}
	sbuf = calloc(1, big > small ? big : small);
	rbuf = calloc(1, big > small ? big : small);
	if (!sbuf || !rbuf)
		MPI_Abort(MPI_COMM_WORLD, 1);
	/* Everyone to everyone, once: ring shifts keep sends and receives paired. */
	for (int d = 1; d < size; d++) {
		MPI_Sendrecv(sbuf, (int) small, MPI_BYTE, (rank + d) % size, 1,
			     rbuf, (int) small, MPI_BYTE,
			     (rank - d + size) % size, 1, MPI_COMM_WORLD,
			     MPI_STATUS_IGNORE);
	}
	if (rank == a || rank == b) {
		peer = rank == a ? (int) b : (int) a;
		for (long r = 0; r < rounds; r++)
			MPI_Sendrecv(sbuf, (int) big, MPI_BYTE, peer, 2, rbuf,
				     (int) big, MPI_BYTE, peer, 2,
				     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	}
	for (long t = 0; t < hold * 5; t++) {
		MPI_Barrier(MPI_COMM_WORLD);
		usleep(200000);
	}
	if (!rank)
		printf("pairs: done ranks=%d pair=%ld,%ld bytes=%ld\n", size,
		       a, b, 2 * (small + rounds * big));
	free(sbuf);
	free(rbuf);
	MPI_Finalize();
	return 0;
}
