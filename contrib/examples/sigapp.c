/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sigapp.c - an unmodified-style MPI application that checkpoints itself on
 * a signal (no libsmig): the example of --migrate=capture=signal:SIG
 *
 * Usage: sigapp [--iters N] [--sleep-ms MS] [--signal NAME]
 *               [--hold-restore R[:T]]
 *
 * Each rank iterates on an array of integers coupled to the other ranks by
 * an MPI_Allreduce (exact arithmetic, so the result does not depend on where
 * the ranks run). The contract with the node agent (spank_migrate(8)):
 *
 * - on SIG (default USR1) the application writes its state to a temporary
 *   file and renames it to $SLURM_MIGRATE_CHECKPOINT_FILE (the agent takes
 *   the file only once it exists under that name: the rename is the "done");
 * - with SLURM_MIGRATE_RESTORE_GEN set, it reads its state back from that
 *   file before it computes anything.
 *
 * The ranks agree on a consistent point themselves: the signal only sets a
 * flag, and all ranks checkpoint together at the first iteration where an
 * MPI_Allreduce(MIN) of the flag shows that every rank has been signalled.
 *
 * --hold-restore R[:T] (for the relaunch watchdog's tests): in a relaunched
 * step (SLURM_MIGRATE_PREV_STEP set) rank R never reads its checkpoint
 * file on the first T tries (default 1; SLURM_MIGRATE_RESTORE_TRY), as in a
 * start that hangs.
 *
 * Output: "sigapp: rank R node N start|restored iter I",
 * "sigapp: rank R checkpoint iter I", and from rank 0
 * "sigapp: done iters=N checksum=HEX".
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#define NVALS		4096
#define CKPT_MAGIC	UINT64_C(0x3150434b50474953)	/* "SIGPCKP1" */

static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
	(void) sig;
	signalled = 1;
}

/* The state of one rank: what the checkpoint file holds. */
struct state {
	uint64_t magic;
	uint64_t iter;		/* next iteration to run */
	uint64_t vals[NVALS];
};

static int write_state(const char *path, const struct state *st)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	if (fwrite(st, sizeof(*st), 1, f) != 1 || fflush(f) ||
	    fsync(fileno(f))) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int read_state(const char *path, struct state *st)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -1;
	ok = fread(st, sizeof(*st), 1, f) == 1 && fgetc(f) == EOF &&
	     st->magic == CKPT_MAGIC;
	fclose(f);
	return ok ? 0 : -1;
}

static int signal_number(const char *name)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "HUP", SIGHUP },
		{ "INT", SIGINT }, { "TERM", SIGTERM }, { "URG", SIGURG },
	};

	if (!strncmp(name, "SIG", 3))
		name += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!strcmp(name, sigs[i].name))
			return sigs[i].sig;
	return -1;
}

/*
 * hold_restore - --hold-restore: in a relaunched step, rank HOLD_RANK never
 * reads its checkpoint file on the first TRIES tries of the relaunch
 */
static void hold_restore(int rank, int hold_rank, long tries)
{
	const char *try_text = getenv("SLURM_MIGRATE_RESTORE_TRY");
	long try = try_text ? atol(try_text) : 1;

	if (rank != hold_rank || !getenv("SLURM_MIGRATE_PREV_STEP") ||
	    try > tries)
		return;
	printf("sigapp: rank %d holding before its restore (try %ld)\n", rank,
	       try);
	fflush(stdout);
	for (;;)
		sleep(3600);
}

int main(int argc, char **argv)
{
	const char *ckpt = getenv("SLURM_MIGRATE_CHECKPOINT_FILE");
	const char *restore = getenv("SLURM_MIGRATE_RESTORE_GEN");
	uint64_t iters = 400, local, sum, hash;
	struct sigaction sa = { .sa_handler = on_signal };
	struct state *st;
	char node[256] = "?";
	long sleep_ms = 25, hold_tries = 0;
	int rank, sig = SIGUSR1, hold_rank = -1;
	char *end;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--iters")) {
			iters = strtoull(argv[i + 1], NULL, 10);
		} else if (!strcmp(argv[i], "--sleep-ms")) {
			sleep_ms = strtol(argv[i + 1], NULL, 10);
		} else if (!strcmp(argv[i], "--signal")) {
			sig = signal_number(argv[i + 1]);
		} else if (!strcmp(argv[i], "--hold-restore")) {
			hold_rank = (int) strtol(argv[i + 1], &end, 10);
			hold_tries = *end == ':' ? strtol(end + 1, &end, 10) : 1;
			if (*end || hold_rank < 0 || hold_tries < 1) {
				fprintf(stderr, "sigapp: --hold-restore %s: not R or R:T\n",
					argv[i + 1]);
				return 2;
			}
		} else {
			fprintf(stderr, "sigapp: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (sig < 0 || sleep_ms < 0) {
		fprintf(stderr, "sigapp: bad --signal or --sleep-ms\n");
		return 2;
	}
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (ckpt && sigaction(sig, &sa, NULL)) {
		perror("sigapp: sigaction");
		return 1;
	}

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	gethostname(node, sizeof(node) - 1);
	if (getenv("SLURMD_NODENAME"))
		snprintf(node, sizeof(node), "%s", getenv("SLURMD_NODENAME"));

	st = calloc(1, sizeof(*st));
	if (!st)
		MPI_Abort(MPI_COMM_WORLD, 1);
	if (ckpt && restore && *restore) {
		hold_restore(rank, hold_rank, hold_tries);
		if (read_state(ckpt, st)) {
			fprintf(stderr, "sigapp: rank %d: SLURM_MIGRATE_RESTORE_GEN=%s but %s is missing or not a checkpoint: %s\n",
				rank, restore, ckpt, strerror(errno));
			MPI_Abort(MPI_COMM_WORLD, 1);
		}
		printf("sigapp: rank %d node %s restored iter %" PRIu64 "\n",
		       rank, node, st->iter);
	} else {
		st->magic = CKPT_MAGIC;
		for (int j = 0; j < NVALS; j++)
			st->vals[j] = (uint64_t) rank * NVALS + j;
		printf("sigapp: rank %d node %s start iter 0\n", rank, node);
	}
	fflush(stdout);

	for (; st->iter < iters; st->iter++) {
		int flag = signalled, all;

		/* Checkpoint where every rank has been signalled. */
		MPI_Allreduce(&flag, &all, 1, MPI_INT, MPI_MIN,
			      MPI_COMM_WORLD);
		if (all && ckpt) {
			signalled = 0;
			if (write_state(ckpt, st)) {
				fprintf(stderr, "sigapp: rank %d: %s: %s\n",
					rank, ckpt, strerror(errno));
				MPI_Abort(MPI_COMM_WORLD, 1);
			}
			printf("sigapp: rank %d checkpoint iter %" PRIu64 "\n",
			       rank, st->iter);
			fflush(stdout);
		}
		local = st->vals[st->iter % NVALS];
		MPI_Allreduce(&local, &sum, 1, MPI_UINT64_T, MPI_SUM,
			      MPI_COMM_WORLD);
		for (int j = 0; j < NVALS; j++)
			st->vals[j] = st->vals[j] * UINT64_C(6364136223846793005) +
				      UINT64_C(1442695040888963407) + sum;
		if (sleep_ms) {
			struct timespec ts = {
				.tv_sec = sleep_ms / 1000,
				.tv_nsec = (sleep_ms % 1000) * 1000000L,
			};

			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
	}

	hash = 0;
	for (int j = 0; j < NVALS; j++)
		hash ^= st->vals[j] * (uint64_t) (j + 1);
	MPI_Allreduce(&hash, &sum, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
	if (rank == 0)
		printf("sigapp: done iters=%" PRIu64 " checksum=%016" PRIx64 "\n",
		       iters, sum);
	free(st);
	MPI_Finalize();
	return 0;
}
