/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_pmpi.c - libsmig_pmpi.so: bytes and messages each rank sends to each
 * peer (MPI_COMM_WORLD ranks), through the standard profiling interface
 *
 * Loaded with LD_PRELOAD by the node agent for steps run with
 * --migrate=...,affinity, or linked by the application (-lsmig_pmpi before
 * -lmpi). It counts on the sender's side only, so that each byte is
 * counted once:
 *  - point to point exactly: MPI_Send, Bsend, Ssend, Rsend, Isend, Ibsend,
 *    Issend, Irsend, Sendrecv, Sendrecv_replace (persistent requests,
 *    one-sided and MPI-IO are not counted);
 *  - collectives as their textbook algorithm would send (the MPI library
 *    may pick another one; the totals are right, the peers approximate):
 *    Bcast binomial tree, Reduce binomial tree, Allreduce recursive
 *    doubling, Allgather ring, Alltoall pairwise, Gather and Scatter
 *    linear; Barrier carries no payload (it only publishes).
 * The table is sparse (open addressing, peers that were sent to only).
 * Every second at most (checked when an MPI call is counted) and at
 * MPI_Finalize it is written to <SLURM_MIGRATE_STAT_DIR>/rank<R>.aff
 * (temporary file + rename, format in doc/design.md); the agent reads it.
 * Without SLURM_MIGRATE_STAT_DIR it counts and writes nothing.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#define AFF_MAGIC	0x46414d53u	/* "SMAF" */
#define AFF_VERSION	1
#define MAX_PEERS	65536		/* the agent reads no more */
#define PUBLISH_NS	1000000000LL

typedef struct entry {
	uint32_t key;		/* peer + 1; 0: empty */
	uint32_t zero;
	uint64_t bytes;
	uint64_t msgs;
} entry_t;

static struct {
	int active;
	int world_rank;
	int world_size;
	int locked;		/* MPI_THREAD_MULTIPLE */
	pthread_mutex_t lock;
	entry_t *tab;
	uint32_t cap;		/* power of two */
	uint32_t n;
	int dropped;
	int keyval;		/* comm -> world rank table */
	char path[4096];
	char tmp[4096];
	int64_t last_ns;
} pm = { .lock = PTHREAD_MUTEX_INITIALIZER, .keyval = MPI_KEYVAL_INVALID };

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static entry_t *slot(entry_t *tab, uint32_t cap, uint32_t key)
{
	uint32_t i = (key * 2654435761u) & (cap - 1);

	while (tab[i].key && tab[i].key != key)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static int grow(void)
{
	uint32_t cap = pm.cap ? pm.cap * 2 : 64;
	entry_t *tab = calloc(cap, sizeof(entry_t));

	if (!tab)
		return 0;
	for (uint32_t i = 0; i < pm.cap; i++)
		if (pm.tab[i].key)
			*slot(tab, cap, pm.tab[i].key) = pm.tab[i];
	free(pm.tab);
	pm.tab = tab;
	pm.cap = cap;
	return 1;
}

/* publish - write the table; the caller holds the lock if any */
static void publish(void)
{
	uint32_t hdr[4] = { AFF_MAGIC, AFF_VERSION, (uint32_t) pm.world_rank,
			    pm.n };
	FILE *f;
	int ok;

	f = fopen(pm.tmp, "we");
	if (!f)
		return;
	ok = fwrite(hdr, sizeof(hdr), 1, f) == 1;
	for (uint32_t i = 0; ok && i < pm.cap; i++) {
		entry_t e = pm.tab[i];

		if (!e.key)
			continue;
		e.key -= 1;	/* the file holds the peer itself */
		ok = fwrite(&e, sizeof(e), 1, f) == 1;
	}
	if (fclose(f) != 0)
		ok = 0;
	if (ok)
		rename(pm.tmp, pm.path);
	else
		unlink(pm.tmp);
}

static void count(int world_peer, int64_t bytes)
{
	entry_t *e;
	int64_t now;

	if (!pm.active || world_peer < 0 || bytes < 0)
		return;
	if (pm.locked)
		pthread_mutex_lock(&pm.lock);
	if ((pm.n + 1) * 2 > pm.cap && pm.n < MAX_PEERS && !grow())
		pm.dropped++;
	e = slot(pm.tab, pm.cap, (uint32_t) world_peer + 1);
	if (!e->key) {
		if (pm.n >= MAX_PEERS || (pm.n + 1) * 2 > pm.cap) {
			pm.dropped++;
			goto out;
		}
		e->key = (uint32_t) world_peer + 1;
		pm.n++;
	}
	e->bytes += (uint64_t) bytes;
	e->msgs++;
	now = mono_ns();
	if (now - pm.last_ns >= PUBLISH_NS) {
		pm.last_ns = now;
		publish();
	}
out:
	if (pm.locked)
		pthread_mutex_unlock(&pm.lock);
}

static int del_ranks(MPI_Comm comm, int keyval, void *attr, void *extra)
{
	free(attr);
	return MPI_SUCCESS;
}

/* World rank of rank r of comm (the remote group of an intercomm). */
static int world_of(MPI_Comm comm, int r)
{
	int *tab, flag, inter = 0, n, i;
	MPI_Group g, wg;
	int *idx;

	if (!pm.active || r < 0)
		return -1;
	if (comm == MPI_COMM_WORLD)
		return r;
	if (PMPI_Comm_get_attr(comm, pm.keyval, &tab, &flag) == MPI_SUCCESS &&
	    flag)
		return r < tab[0] ? tab[r + 1] : -1;
	PMPI_Comm_test_inter(comm, &inter);
	if (inter)
		PMPI_Comm_remote_group(comm, &g);
	else
		PMPI_Comm_group(comm, &g);
	PMPI_Group_size(g, &n);
	tab = malloc((n + 1) * sizeof(int));
	idx = malloc(n * sizeof(int));
	if (!tab || !idx) {
		free(tab);
		free(idx);
		PMPI_Group_free(&g);
		return -1;
	}
	PMPI_Comm_group(MPI_COMM_WORLD, &wg);
	for (i = 0; i < n; i++)
		idx[i] = i;
	tab[0] = n;
	PMPI_Group_translate_ranks(g, n, idx, wg, tab + 1);
	PMPI_Group_free(&wg);
	PMPI_Group_free(&g);
	free(idx);
	PMPI_Comm_set_attr(comm, pm.keyval, tab);
	return r < n ? tab[r + 1] : -1;
}

static int64_t nbytes(int n, MPI_Datatype t)
{
	int size = 0;

	if (n <= 0 || t == MPI_DATATYPE_NULL ||
	    PMPI_Type_size(t, &size) != MPI_SUCCESS)
		return 0;
	return (int64_t) n * size;
}

static void p2p(int dest, int n, MPI_Datatype t, MPI_Comm comm)
{
	if (pm.active && dest != MPI_PROC_NULL)
		count(world_of(comm, dest), nbytes(n, t));
}

static void setup(int provided)
{
	const char *dir = getenv("SLURM_MIGRATE_STAT_DIR");

	if (!dir || dir[0] != '/')
		return;
	PMPI_Comm_rank(MPI_COMM_WORLD, &pm.world_rank);
	PMPI_Comm_size(MPI_COMM_WORLD, &pm.world_size);
	if (snprintf(pm.path, sizeof(pm.path), "%s/rank%d.aff", dir,
		     pm.world_rank) >= (int) sizeof(pm.path) ||
	    snprintf(pm.tmp, sizeof(pm.tmp), "%s/rank%d.aff.tmp", dir,
		     pm.world_rank) >= (int) sizeof(pm.tmp) || !grow())
		return;
	PMPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, del_ranks, &pm.keyval,
				NULL);
	pm.locked = provided == MPI_THREAD_MULTIPLE;
	pm.last_ns = mono_ns();
	pm.active = 1;
}

int MPI_Init(int *argc, char ***argv)
{
	int rc = PMPI_Init(argc, argv);

	if (rc == MPI_SUCCESS)
		setup(MPI_THREAD_SINGLE);
	return rc;
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
	int rc = PMPI_Init_thread(argc, argv, required, provided);

	if (rc == MPI_SUCCESS)
		setup(*provided);
	return rc;
}

int MPI_Finalize(void)
{
	if (pm.active) {
		if (pm.locked)
			pthread_mutex_lock(&pm.lock);
		publish();
		pm.active = 0;
		if (pm.locked)
			pthread_mutex_unlock(&pm.lock);
	}
	return PMPI_Finalize();
}

#define P2P(name, ...)							\
int MPI_##name(const void *buf, int n, MPI_Datatype t, int dest, int tag, \
	       MPI_Comm comm __VA_OPT__(, MPI_Request *req))		\
{									\
	p2p(dest, n, t, comm);						\
	return PMPI_##name(buf, n, t, dest, tag, comm			\
			   __VA_OPT__(, req));				\
}

P2P(Send)
P2P(Bsend)
P2P(Ssend)
P2P(Rsend)
P2P(Isend, 1)
P2P(Ibsend, 1)
P2P(Issend, 1)
P2P(Irsend, 1)

int MPI_Sendrecv(const void *sbuf, int sn, MPI_Datatype st, int dest,
		 int stag, void *rbuf, int rn, MPI_Datatype rt, int src,
		 int rtag, MPI_Comm comm, MPI_Status *status)
{
	p2p(dest, sn, st, comm);
	return PMPI_Sendrecv(sbuf, sn, st, dest, stag, rbuf, rn, rt, src,
			     rtag, comm, status);
}

int MPI_Sendrecv_replace(void *buf, int n, MPI_Datatype t, int dest,
			 int stag, int src, int rtag, MPI_Comm comm,
			 MPI_Status *status)
{
	p2p(dest, n, t, comm);
	return PMPI_Sendrecv_replace(buf, n, t, dest, stag, src, rtag, comm,
				     status);
}

/* Size and rank of an intracommunicator; 0 for an intercommunicator. */
static int intra(MPI_Comm comm, int *rank, int *size)
{
	int inter = 0;

	if (!pm.active)
		return 0;
	PMPI_Comm_test_inter(comm, &inter);
	if (inter)
		return 0;
	PMPI_Comm_rank(comm, rank);
	PMPI_Comm_size(comm, size);
	return *size > 1;
}

/* No payload; a program waiting in barriers still gets its counts out. */
int MPI_Barrier(MPI_Comm comm)
{
	int64_t now;

	if (pm.active) {
		if (pm.locked)
			pthread_mutex_lock(&pm.lock);
		now = mono_ns();
		if (now - pm.last_ns >= PUBLISH_NS) {
			pm.last_ns = now;
			publish();
		}
		if (pm.locked)
			pthread_mutex_unlock(&pm.lock);
	}
	return PMPI_Barrier(comm);
}

int MPI_Bcast(void *buf, int n, MPI_Datatype t, int root, MPI_Comm comm)
{
	int rank, size, vr, mask = 1;

	if (intra(comm, &rank, &size)) {
		vr = (rank - root + size) % size;
		while (mask < size && !(vr & mask))
			mask <<= 1;
		for (mask >>= 1; mask > 0; mask >>= 1)
			if (vr + mask < size)
				p2p((vr + mask + root) % size, n, t, comm);
	}
	return PMPI_Bcast(buf, n, t, root, comm);
}

int MPI_Reduce(const void *sbuf, void *rbuf, int n, MPI_Datatype t,
	       MPI_Op op, int root, MPI_Comm comm)
{
	int rank, size, vr;

	if (intra(comm, &rank, &size)) {
		vr = (rank - root + size) % size;
		if (vr)		/* to the parent in the binomial tree */
			p2p(((vr & (vr - 1)) + root) % size, n, t, comm);
	}
	return PMPI_Reduce(sbuf, rbuf, n, t, op, root, comm);
}

int MPI_Allreduce(const void *sbuf, void *rbuf, int n, MPI_Datatype t,
		  MPI_Op op, MPI_Comm comm)
{
	int rank, size;

	if (intra(comm, &rank, &size))
		for (int mask = 1; mask < size; mask <<= 1)
			if ((rank ^ mask) < size)
				p2p(rank ^ mask, n, t, comm);
	return PMPI_Allreduce(sbuf, rbuf, n, t, op, comm);
}

int MPI_Allgather(const void *sbuf, int sn, MPI_Datatype st, void *rbuf,
		  int rn, MPI_Datatype rt, MPI_Comm comm)
{
	int rank, size;

	if (intra(comm, &rank, &size)) {
		/* MPI_IN_PLACE: the block comes from rbuf, rn x rt. */
		int64_t b = sbuf == MPI_IN_PLACE ? nbytes(rn, rt) :
			    nbytes(sn, st);

		count(world_of(comm, (rank + 1) % size), b * (size - 1));
	}
	return PMPI_Allgather(sbuf, sn, st, rbuf, rn, rt, comm);
}

int MPI_Alltoall(const void *sbuf, int sn, MPI_Datatype st, void *rbuf,
		 int rn, MPI_Datatype rt, MPI_Comm comm)
{
	int rank, size;

	if (intra(comm, &rank, &size))
		for (int p = 0; p < size; p++)
			if (p != rank)
				p2p(p, sbuf == MPI_IN_PLACE ? rn : sn,
				    sbuf == MPI_IN_PLACE ? rt : st, comm);
	return PMPI_Alltoall(sbuf, sn, st, rbuf, rn, rt, comm);
}

int MPI_Gather(const void *sbuf, int sn, MPI_Datatype st, void *rbuf, int rn,
	       MPI_Datatype rt, int root, MPI_Comm comm)
{
	int rank, size;

	if (intra(comm, &rank, &size) && rank != root)
		p2p(root, sn, st, comm);
	return PMPI_Gather(sbuf, sn, st, rbuf, rn, rt, root, comm);
}

int MPI_Scatter(const void *sbuf, int sn, MPI_Datatype st, void *rbuf,
		int rn, MPI_Datatype rt, int root, MPI_Comm comm)
{
	int rank, size;

	if (intra(comm, &rank, &size) && rank == root)
		for (int p = 0; p < size; p++)
			if (p != root)
				p2p(p, sn, st, comm);
	return PMPI_Scatter(sbuf, sn, st, rbuf, rn, rt, root, comm);
}
