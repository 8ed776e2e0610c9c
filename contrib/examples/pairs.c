/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pairs.c - a traffic pattern with known byte counts, for the affinity view
 *
 * One-shot mode (default): every rank sends --small bytes to each other
 * rank once (MPI_Send); then ranks A and B (--a A --b B) exchange --big
 * bytes in each direction --rounds times with MPI_Sendrecv. Expected
 * counts (sender side, both directions summed): A-B: 2 x (small + rounds x
 * big) bytes, every other pair: 2 x small. Then it waits --hold seconds
 * (barriers, no payload) so the node agent samples the final counts, and
 * exits.
 *
 * Iterative mode (--iters N): a migratable job whose heavy talkers are
 * chosen: in each of N iterations the ranks of every pair of --pairs
 * A:B[,C:D...] (default A:B of --a/--b) exchange --big bytes each way, every
 * rank sleeps --sleep-ms, all meet in a barrier, then smig_safepoint()
 * (libsmig: the state, the iteration count, is captured and restored, so
 * the ranks can be moved). Lines printed:
 *   pairs: rank R node NODE start|restored iter I
 *   pairs: rank R stopping for migration at iter I
 *   pairs: done iters=N ranks=S               (rank 0)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include <slurm-migrate/smig.h>

#define MAX_PAIRS	64

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

static const char *opt(int argc, char **argv, const char *name)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

static const char *node_name(void)
{
	const char *n = getenv("SLURMD_NODENAME");

	return n && *n ? n : "unknown";
}

/*
 * parse_pairs - "0:2,1:3" into pair[] (2 entries each); RET pairs, or -1
 * after a message naming the value
 */
static int parse_pairs(const char *text, int size, long pair[][2])
{
	const char *p = text;
	int n = 0;

	while (*p) {
		char *end;
		long a, b;

		errno = 0;
		a = strtol(p, &end, 10);
		if (end == p || *end != ':' || errno)
			goto bad;
		p = end + 1;
		b = strtol(p, &end, 10);
		if (end == p || errno || a < 0 || b < 0 || a >= size ||
		    b >= size || a == b || n == MAX_PAIRS)
			goto bad;
		pair[n][0] = a;
		pair[n][1] = b;
		n++;
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			goto bad;
	}
	if (n)
		return n;
bad:
	fprintf(stderr, "pairs: --pairs %s: a list of A:B of distinct ranks below %d (at most %d pairs, e.g. 0:2,1:3)\n",
		text, size, MAX_PAIRS);
	return -1;
}

struct state {
	long iter;
};

static int capture(smig_writer_t *w, void *arg)
{
	return smig_write(w, arg, sizeof(struct state));
}

static int restore(const void *data, size_t len, void *arg)
{
	if (len != sizeof(struct state))
		return -1;
	memcpy(arg, data, len);
	return 0;
}

static void check_smig(int rank, const char *what, int rc)
{
	if (rc < 0) {
		fprintf(stderr, "pairs: rank %d: %s: %s\n", rank, what,
			smig_strerror(rc));
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
}

/* --iters: the migratable loop; RET exit status */
static int iterate(int argc, char **argv, int rank, int size, long a,
		   long b)
{
	long iters = arg(argc, argv, "--iters", 0);
	long big = arg(argc, argv, "--big", 1 << 20);
	long sleep_ms = arg(argc, argv, "--sleep-ms", 10);
	const char *text = opt(argc, argv, "--pairs");
	long pair[MAX_PAIRS][2] = { { a, b } };
	struct state st = { 0 };
	char *sbuf, *rbuf;
	bool stopped = false;
	int npairs = 1, rc;

	if (text && (npairs = parse_pairs(text, size, pair)) < 0)
		return 2;
	sbuf = calloc(1, big ? big : 1);
	rbuf = calloc(1, big ? big : 1);
	if (!sbuf || !rbuf)
		MPI_Abort(MPI_COMM_WORLD, 1);
	check_smig(rank, "smig_init", smig_init());
	rc = smig_register("pairs", capture, restore, &st);
	check_smig(rank, "smig_register", rc);
	printf("pairs: rank %d node %s %s iter %ld\n", rank, node_name(),
	       rc == SMIG_RESTORED ? "restored" : "start", st.iter);
	fflush(stdout);
	while (st.iter < iters) {
		for (int i = 0; i < npairs; i++) {
			int peer;

			if (pair[i][0] != rank && pair[i][1] != rank)
				continue;
			peer = (int) (pair[i][0] == rank ? pair[i][1] :
				      pair[i][0]);
			MPI_Sendrecv(sbuf, (int) big, MPI_BYTE, peer, 3, rbuf,
				     (int) big, MPI_BYTE, peer, 3,
				     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		}
		if (sleep_ms)
			usleep((useconds_t) sleep_ms * 1000);
		MPI_Barrier(MPI_COMM_WORLD);
		st.iter++;
		if (smig_safepoint() == SMIG_STOP) {
			stopped = true;
			break;
		}
	}
	if (stopped)
		printf("pairs: rank %d stopping for migration at iter %ld\n",
		       rank, st.iter);
	else if (!rank)
		printf("pairs: done iters=%ld ranks=%d\n", st.iter, size);
	fflush(stdout);
	smig_finalize();
	free(sbuf);
	free(rbuf);
	MPI_Finalize();
	return 0;
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
	if (arg(argc, argv, "--iters", 0))
		return iterate(argc, argv, rank, size, a, b);
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
