// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pmix-fences.c - a plain PMIx client: PMIx_Init, then N fences that collect
 * data (as MPI_Init's modex does), PMIx_Finalize. No MPI, no slurm-migrate.
 *
 * Used by pmix-dconn-race.sh to reproduce a hang in Slurm's mpi/pmix plugin.
 * With data to collect, Slurm 22.05 runs each fence as a ring (unless
 * SLURM_PMIX_FENCE says otherwise); on a 2-node step both slurmstepds send
 * to each other at once, which is what the race needs.
 *
 * usage: pmix-fences [NFENCES [START_AT_MS [SKEW_MS]]]
 *   NFENCES      fences after PMIx_Init (default 3)
 *   START_AT_MS  wall-clock time (ms since the epoch) to start the first
 *                fence at: every rank of every node waits for it, so all
 *                slurmstepds send their first ring message at the same
 *                moment (all "nodes" share this machine's clock). 0: no wait.
 *   SKEW_MS      the last rank sleeps this long before fence 2 (default 0):
 *                in a real fence every rank then waits about as long.
 * Prints one line per fence and rank to stdout: how long the fence took and
 * how many ranks' values of this fence the rank can read right after it
 * without asking their node (PMIX_OPTIONAL: only what the fence brought);
 * exit 0 when all fences passed.
 */

#include <pmix.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* now_ms - wall-clock time in ms since the epoch */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* sleep_until_ms - sleep until the wall clock reads AT (ms since the epoch) */
static void sleep_until_ms(long long at)
{
	struct timespec ts = {
		.tv_sec = at / 1000,
		.tv_nsec = (at % 1000) * 1000000,
	};

	while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL))
		;
}

int main(int argc, char **argv)
{
	const char *node = getenv("SLURMD_NODENAME");
	int nfences = argc > 1 ? atoi(argv[1]) : 3;
	long long at = argc > 2 ? atoll(argv[2]) : 0;
	long long skew = argc > 3 ? atoll(argv[3]) : 0;
	long long t;
	pmix_info_t optional;
	pmix_value_t *got;
	uint32_t size = 0, r;
	int seen;
	pmix_proc_t me, all;
	pmix_info_t info;
	pmix_value_t val;
	pmix_status_t rc;
	bool collect = true, yes = true;
	char key[64], data[64];
	int i;

	if (!node)
		node = "?";
	if (nfences < 1 || nfences > 100) {
		fprintf(stderr, "pmix-fences: NFENCES=%s: not a number in 1..100\n",
			argv[1]);
		return 2;
	}
	rc = PMIx_Init(&me, NULL, 0);
	if (rc != PMIX_SUCCESS) {
		fprintf(stderr, "pmix-fences: %s: PMIx_Init: %s\n", node,
			PMIx_Error_string(rc));
		return 1;
	}
	PMIX_LOAD_PROCID(&all, me.nspace, PMIX_RANK_WILDCARD);
	PMIX_INFO_LOAD(&info, PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
	PMIX_INFO_LOAD(&optional, PMIX_OPTIONAL, &yes, PMIX_BOOL);
	if (PMIx_Get(&all, PMIX_JOB_SIZE, NULL, 0, &got) == PMIX_SUCCESS) {
		size = got->data.uint32;
		PMIX_VALUE_RELEASE(got);
	}

	if (at > 0) {
		long long late = now_ms() - at;

		if (late > 0)
			printf("rank %u %s %s late by %lld ms for the common start\n",
			       me.rank, node, me.nspace, late);
		else
			sleep_until_ms(at);
	}
	for (i = 1; i <= nfences; i++) {
		/* Something to collect: Slurm picks the ring for such fences. */
		snprintf(key, sizeof(key), "repro.fence%d", i);
		snprintf(data, sizeof(data), "rank %u on %s", me.rank, node);
		val.type = PMIX_STRING;
		val.data.string = data;
		rc = PMIx_Put(PMIX_GLOBAL, key, &val);
		if (rc == PMIX_SUCCESS)
			rc = PMIx_Commit();
		if (i == 2 && skew > 0 && size > 0 && me.rank == size - 1)
			sleep_until_ms(now_ms() + skew);
		t = now_ms();
		if (rc == PMIX_SUCCESS)
			rc = PMIx_Fence(&all, 1, &info, 1);
		if (rc != PMIX_SUCCESS) {
			fprintf(stderr, "pmix-fences: rank %u %s: fence %d: %s\n",
				me.rank, node, i, PMIx_Error_string(rc));
			PMIx_Finalize(NULL, 0);
			return 1;
		}
		t = now_ms() - t;
		seen = 0;
		for (r = 0; r < size; r++) {
			pmix_proc_t p;

			PMIX_LOAD_PROCID(&p, me.nspace, r);
			if (PMIx_Get(&p, key, &optional, 1, &got) ==
			    PMIX_SUCCESS) {
				seen++;
				PMIX_VALUE_RELEASE(got);
			}
		}
		printf("rank %u %s %s fence %d ok %lld took %lld ms, values seen %d/%u\n",
		       me.rank, node, me.nspace, i, now_ms(), t, seen, size);
		fflush(stdout);
	}
	rc = PMIx_Finalize(NULL, 0);
	return rc == PMIX_SUCCESS ? 0 : 1;
}
