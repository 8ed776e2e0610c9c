/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * heat.c - example MPI application for slurm-migrate: a 2-D heat (Jacobi)
 *	    stencil over a global grid split in row blocks across ranks
 *
 * The global grid has ny rows and nx columns; the top row is held at 100,
 * the other borders at 0. Each rank owns a block of consecutive rows plus
 * one halo row above and below, exchanged with MPI_Sendrecv every
 * iteration. The result is exact and does not depend on the number of
 * ranks: rank 0 prints an FNV-1a hash of the final grid's doubles in
 * row-major order.
 *
 * With libsmig (smig(3)) the state of a rank is captured at the safe point
 * after each iteration (iteration count + the rank's rows) and restored on
 * a relaunch. Outside a --migrate step the library does nothing.
 *
 * Lines printed (stdout), used by the tests:
 *   heat: rank R node NODE start|restored iter I
 *   heat: iter I/N[ t=SECONDS]                      (rank 0, --report)
 *   heat: rank R stopping for migration at iter I   (SMIG_STOP)
 *   heat: rank R capture gen=G reason=WHY stop=0|1 safepoint=K iter=I
 *	   min=I max=I checksum=<16 hex digits>	     (--mpi-capture; the
 *							checksum on rank 0)
 *   heat: rank R restore check iter=I min=I max=I   (--restore-later)
 *   heat: rank R smig_restore: TEXT                 (--restore-later)
 *   heat: rank R file checkpoint gen=G iter=I bytes=N path=PATH
 *   heat: rank R file restore iter=I bytes=N path=PATH (--file-checkpoint)
 *   heat: done iters=N checksum=<16 hex digits>     (rank 0)
 *   heat: state checksum=<16 hex digits>            (rank 0, --state-mib)
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include <slurm-migrate/smig.h>

#define FNV_OFFSET	UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME	UINT64_C(0x100000001b3)
#define IMAGE_MAGIC	UINT32_C(0x48454154)	/* "HEAT" */
#define TAG_HALO	1
#define TAG_GATHER	2

struct opts {
	long nx, ny, iters, sleep_ms, report;
	long stall_rank, stall_iter, stall_sec;
	long busy_rank, busy_threads;
	long hold_rank, hold_tries;
	bool timestamps;
	bool cpu_time;
	bool reader;
	bool restore_later;
	bool file_ckpt;
	long state_mib;
};

/* The state of one rank: what a capture saves. */
struct heat {
	int rank, size;
	long nx, ny;
	long row0;		/* global index of the first owned row */
	long rows;		/* owned rows */
	long iter;		/* iterations done */
	double *cur, *next;	/* (rows + 2) x nx; rows 0, rows + 1: halos */
};

/* Fixed-size header of a capture, followed by rows x nx doubles. */
struct heat_image {
	uint32_t magic;
	uint32_t rank;
	int64_t nx, ny, row0, rows, iter;
};

/* --capture-sleep-ms: the capture callback has only the state as argument */
static long capture_sleep_ms;
/* --mpi-capture, --restore-later: MPI inside the callbacks */
static bool mpi_capture, mpi_restore;
/* --fail-restore: this rank's restore callback fails (after its MPI) */
static long fail_restore_rank = -1;

/*
 * --state-mib: N MiB of extra state per rank, a memory region of libsmig
 * (smig_region_register(), "state"), of which every iteration rewrites one
 * window of STATE_WINDOW bytes from its old contents: a code with a large
 * state that changes in part, for the pre-copy (precopy=on).
 */
#define STATE_WINDOW	(256 * 1024)
static uint64_t *state_words;
static size_t state_nwords;

static void usage(FILE *f)
{
	fprintf(f,
"Usage: heat [OPTION]...\n"
"2-D heat stencil (Jacobi) over MPI ranks, with slurm-migrate capture/restore.\n"
"\n"
"  --nx N           grid columns (default 256)\n"
"  --ny N           grid rows, at least the number of ranks (default 256)\n"
"  --iters N        iterations (default 1000)\n"
"  --sleep-ms M     sleep M ms per iteration (default 0)\n"
"  --stall-rank R   with --stall-iter/--stall-sec: rank R sleeps S seconds\n"
"  --stall-iter I     before the safe point of iteration I\n"
"  --stall-sec S\n"
"  --capture-sleep-ms M  each capture prints \"capturing\" with the pid\n"
"                   and sleeps M ms (a slow writer, for fault tests)\n"
"  --busy-rank R    with --busy-threads N: rank R runs N extra threads that\n"
"  --busy-threads N   spin until the end (a rank using more CPU than the\n"
"                   others, for monitoring tests)\n"
"  --report N       rank 0 prints a progress line every N iterations\n"
"  --timestamps     add wall-clock times (t=seconds since the epoch) to the\n"
"                   --report and start/restored/stopping lines, and print a\n"
"                   \"computing\"\n"
"                   line after the first iteration and a \"finishing\" line\n"
"                   before MPI_Finalize (for benchmarks)\n"
"  --cpu-time       print \"heat: rank R loop cpu=S iters=N\" after the loop:\n"
"                   the CPU seconds of the whole process (all threads)\n"
"                   spent in the loop's N iterations (for benchmarks)\n"
"  --hold-restore R[:T]  in a relaunched step (SLURM_MIGRATE_PREV_STEP set),\n"
"                   rank R never gets to its restore on the first T tries\n"
"                   (default 1; SLURM_MIGRATE_RESTORE_TRY): a start that\n"
"                   hangs, for the relaunch watchdog's tests\n"
"  --reader         restore through smig_register_reader()/smig_read(),\n"
"                   one row per read, instead of one buffer\n"
"  --mpi-capture    the capture callback calls MPI: an MPI_Allreduce of the\n"
"                   iteration (min and max) and the grid's checksum gathered\n"
"                   to rank 0; each rank prints what smig_capture_info()\n"
"                   says (a collective checkpoint, smig(3))\n"
"  --restore-later  register with SMIG_RESTORE_LATER and restore through\n"
"                   smig_restore(); the restore callback checks with an\n"
"                   MPI_Allreduce that every rank restored one iteration\n"
"  --fail-restore R rank R's restore callback fails (after its MPI calls):\n"
"                   with --restore-later every rank's smig_restore() fails\n"
"  --state-mib N    N MiB more state per rank, registered as the memory region\n"
"                   \"state\" (smig_region_register()); every iteration\n"
"                   rewrites 256 KiB of it; rank 0 prints its checksum\n"
"  --file-checkpoint  checkpoint through files, as codes with restart files\n"
"                   do: the capture callback writes a restart file (stdio)\n"
"                   at smig_capture_path() and hands it over with\n"
"                   smig_capture_file(); the restore reads the file at\n"
"                   smig_restore_path() (smig(3), \"Checkpoint files\")\n"
"  --help           this text\n");
}

/* stamp - " t=<seconds since the epoch>" with --timestamps, else "" */
static const char *stamp(const struct opts *o, char *buf, size_t len)
{
	struct timespec ts;

	if (!o->timestamps)
		return "";
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, " t=%lld.%06ld", (long long) ts.tv_sec,
		 ts.tv_nsec / 1000);
	return buf;
}

/* parse_long - a decimal number in [min, max]; RET false (printed) else */
static bool parse_long(const char *opt, const char *s, long min, long max,
		       long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "heat: --%s=%s: not a number in %ld..%ld\n",
			opt, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

static bool parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "nx", required_argument, NULL, 'x' },
		{ "ny", required_argument, NULL, 'y' },
		{ "iters", required_argument, NULL, 'i' },
		{ "sleep-ms", required_argument, NULL, 's' },
		{ "stall-rank", required_argument, NULL, 'R' },
		{ "stall-iter", required_argument, NULL, 'I' },
		{ "stall-sec", required_argument, NULL, 'S' },
		{ "report", required_argument, NULL, 'r' },
		{ "busy-rank", required_argument, NULL, 'B' },
		{ "busy-threads", required_argument, NULL, 'T' },
		{ "capture-sleep-ms", required_argument, NULL, 'C' },
		{ "timestamps", no_argument, NULL, 't' },
		{ "reader", no_argument, NULL, 'D' },
		{ "mpi-capture", no_argument, NULL, 'M' },
		{ "restore-later", no_argument, NULL, 'L' },
		{ "fail-restore", required_argument, NULL, 'F' },
		{ "hold-restore", required_argument, NULL, 'H' },
		{ "cpu-time", no_argument, NULL, 'P' },
		{ "file-checkpoint", no_argument, NULL, 'K' },
		{ "state-mib", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, idx = 0;

	*o = (struct opts) {
		.nx = 256, .ny = 256, .iters = 1000,
		.stall_rank = -1, .stall_iter = -1, .busy_rank = -1,
		.hold_rank = -1,
	};
	while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		const char *name = c == '?' || c == 'h' ? "" : longopts[idx].name;
		bool ok = true;

		switch (c) {
		case 'x':
			ok = parse_long(name, optarg, 3, 1L << 20, &o->nx);
			break;
		case 'y':
			ok = parse_long(name, optarg, 3, 1L << 20, &o->ny);
			break;
		case 'i':
			ok = parse_long(name, optarg, 0, LONG_MAX, &o->iters);
			break;
		case 's':
			ok = parse_long(name, optarg, 0, 3600000, &o->sleep_ms);
			break;
		case 'R':
			ok = parse_long(name, optarg, 0, INT_MAX,
					&o->stall_rank);
			break;
		case 'I':
			ok = parse_long(name, optarg, 1, LONG_MAX,
					&o->stall_iter);
			break;
		case 'S':
			ok = parse_long(name, optarg, 0, 86400, &o->stall_sec);
			break;
		case 'r':
			ok = parse_long(name, optarg, 0, LONG_MAX, &o->report);
			break;
		case 'B':
			ok = parse_long(name, optarg, 0, INT_MAX,
					&o->busy_rank);
			break;
		case 'T':
			ok = parse_long(name, optarg, 0, 64,
					&o->busy_threads);
			break;
		case 'C':
			ok = parse_long(name, optarg, 0, 3600000,
					&capture_sleep_ms);
			break;
		case 't':
			o->timestamps = true;
			break;
		case 'D':
			o->reader = true;
			break;
		case 'M':
			mpi_capture = true;
			break;
		case 'L':
			o->restore_later = true;
			mpi_restore = true;
			break;
		case 'F':
			ok = parse_long(name, optarg, 0, INT_MAX,
					&fail_restore_rank);
			break;
		case 'H': {
			char *colon = strchr(optarg, ':');

			o->hold_tries = 1;
			if (colon) {
				*colon = '\0';
				ok = parse_long(name, colon + 1, 1, LONG_MAX,
						&o->hold_tries);
			}
			ok = ok && parse_long(name, optarg, 0, INT_MAX,
					      &o->hold_rank);
			break;
		}
		case 'P':
			o->cpu_time = true;
			break;
		case 'K':
			o->file_ckpt = true;
			break;
		case 'm':
			ok = parse_long(name, optarg, 1, 65536, &o->state_mib);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return false;
		}
		if (!ok)
			return false;
	}
	if (optind < argc) {
		fprintf(stderr, "heat: unexpected argument '%s'\n", argv[optind]);
		return false;
	}
	return true;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * hold_restore - --hold-restore: in a relaunched step, this rank never
 * reaches smig_register() on the first T tries of the relaunch (the others
 * then wait in the restore agreement, as in a start that hangs)
 */
static void hold_restore(const struct opts *o, int rank)
{
	const char *try_text = getenv("SLURM_MIGRATE_RESTORE_TRY");
	long try = try_text ? atol(try_text) : 1;

	if (rank != o->hold_rank || !getenv("SLURM_MIGRATE_PREV_STEP") ||
	    try > o->hold_tries)
		return;
	printf("heat: rank %d holding before its restore (try %ld)\n", rank,
	       try);
	fflush(stdout);
	for (;;)
		sleep_ms(3600000);
}

/* Rows of rank r when ny rows are split as evenly as possible. */
static void block_of(long ny, int size, int r, long *row0, long *rows)
{
	long base = ny / size, extra = ny % size;

	*rows = base + (r < extra);
	*row0 = r * base + (r < extra ? r : extra);
}

/* set_borders - fixed values of the global borders in a (rows+2) x nx block */
static void set_borders(const struct heat *h, double *g)
{
	long i, j, nx = h->nx;

	for (i = 0; i < h->rows + 2; i++) {
		long gi = h->row0 + i - 1;

		if (gi < 0 || gi >= h->ny)
			continue;
		if (gi == 0 || gi == h->ny - 1) {
			for (j = 0; j < nx; j++)
				g[i * nx + j] = gi == 0 ? 100.0 : 0.0;
		} else {
			g[i * nx] = 0.0;
			g[i * nx + nx - 1] = 0.0;
		}
	}
}

static void exchange_halos(struct heat *h)
{
	int up = h->rank > 0 ? h->rank - 1 : MPI_PROC_NULL;
	int down = h->rank < h->size - 1 ? h->rank + 1 : MPI_PROC_NULL;
	long nx = h->nx;
	double *g = h->cur;

	/* First owned row up, bottom halo from below; then the reverse. */
	MPI_Sendrecv(&g[1 * nx], nx, MPI_DOUBLE, up, TAG_HALO,
		     &g[(h->rows + 1) * nx], nx, MPI_DOUBLE, down, TAG_HALO,
		     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	MPI_Sendrecv(&g[h->rows * nx], nx, MPI_DOUBLE, down, TAG_HALO,
		     &g[0], nx, MPI_DOUBLE, up, TAG_HALO,
		     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

static void step(struct heat *h)
{
	long i, j, nx = h->nx;
	double *c = h->cur, *n = h->next, *t;

	exchange_halos(h);
	for (i = 1; i <= h->rows; i++) {
		long gi = h->row0 + i - 1;

		if (gi == 0 || gi == h->ny - 1) {
			memcpy(&n[i * nx], &c[i * nx], nx * sizeof(double));
			continue;
		}
		n[i * nx] = c[i * nx];
		for (j = 1; j < nx - 1; j++)
			n[i * nx + j] = 0.25 * (c[(i - 1) * nx + j] +
						c[(i + 1) * nx + j] +
						c[i * nx + j - 1] +
						c[i * nx + j + 1]);
		n[i * nx + nx - 1] = c[i * nx + nx - 1];
	}
	t = h->cur;
	h->cur = h->next;
	h->next = t;
	h->iter++;
}

static uint64_t fnv1a(uint64_t hash, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		hash ^= p[i];
		hash *= FNV_PRIME;
	}
	return hash;
}

/* checksum - FNV-1a of the whole grid in row order, streamed through rank 0 */
static uint64_t checksum(const struct heat *h)
{
	size_t row_bytes = h->nx * sizeof(double);
	uint64_t hash = FNV_OFFSET;
	double *buf;
	int r;

	if (h->rank != 0) {
		MPI_Send(&h->cur[h->nx], h->rows * h->nx, MPI_DOUBLE, 0,
			 TAG_GATHER, MPI_COMM_WORLD);
		return 0;
	}
	hash = fnv1a(hash, &h->cur[h->nx], h->rows * row_bytes);
	buf = malloc((h->ny / h->size + 1) * row_bytes);
	if (!buf) {
		fprintf(stderr, "heat: rank 0: out of memory for the checksum\n");
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	for (r = 1; r < h->size; r++) {
		long row0, rows;

		block_of(h->ny, h->size, r, &row0, &rows);
		MPI_Recv(buf, rows * h->nx, MPI_DOUBLE, r, TAG_GATHER,
			 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		hash = fnv1a(hash, buf, rows * row_bytes);
	}
	free(buf);
	return hash;
}

/*
 * capture_collective - --mpi-capture: what a code whose checkpoint is
 * collective does inside its capture callback: every rank takes part in an
 * MPI_Allreduce and in a gather of the grid to rank 0 (checksum()), then
 * prints what smig_capture_info() says
 */
static void capture_collective(smig_writer_t *w, const struct heat *h)
{
	smig_capture_info_t ci;
	long mine[2] = { h->iter, -h->iter }, all[2];
	uint64_t sum;

	if (smig_capture_info(w, &ci) != SMIG_OK)
		memset(&ci, 0, sizeof(ci));
	MPI_Allreduce(mine, all, 2, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
	sum = checksum(h);
	printf("heat: rank %d capture gen=%" PRIu64 " reason=%s stop=%d safepoint=%" PRIu64 " iter=%ld min=%ld max=%ld",
	       h->rank, ci.generation, smig_reason_name(ci.reason),
	       (int) ci.will_stop, ci.safepoint, h->iter, -all[1], all[0]);
	if (h->rank == 0)
		printf(" checksum=%016" PRIx64, sum);
	printf("\n");
	fflush(stdout);
}

static int capture(smig_writer_t *w, void *arg)
{
	const struct heat *h = arg;
	struct heat_image im = {
		.magic = IMAGE_MAGIC, .rank = h->rank, .nx = h->nx,
		.ny = h->ny, .row0 = h->row0, .rows = h->rows, .iter = h->iter,
	};
	int rc;

	if (capture_sleep_ms) {
		struct timespec ts = {
			.tv_sec = capture_sleep_ms / 1000,
			.tv_nsec = capture_sleep_ms % 1000 * 1000000,
		};

		printf("heat: rank %d capturing iter %ld pid %ld\n", h->rank,
		       h->iter, (long) getpid());
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
	if (mpi_capture)
		capture_collective(w, h);
	rc = smig_write(w, &im, sizeof(im));
	if (rc == SMIG_OK)
		rc = smig_write(w, &h->cur[h->nx],
				h->rows * h->nx * sizeof(double));
	return rc;
}

/*
 * capture_file - --file-checkpoint: the capture as a code with its own
 * restart file does it: write the file where libsmig says (stdio, the same
 * bytes as capture() gives smig_write()), hand it over
 */
static int capture_file(smig_writer_t *w, void *arg)
{
	const struct heat *h = arg;
	struct heat_image im = {
		.magic = IMAGE_MAGIC, .rank = h->rank, .nx = h->nx,
		.ny = h->ny, .row0 = h->row0, .rows = h->rows, .iter = h->iter,
	};
	size_t cells = (size_t) (h->rows * h->nx);
	const char *path = smig_capture_path(w);
	smig_capture_info_t ci;
	bool ok;
	FILE *f;

	if (mpi_capture)
		capture_collective(w, h);
	if (!path)
		return -1;
	f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "heat: rank %d: %s: %s\n", h->rank, path,
			strerror(errno));
		return -1;
	}
	ok = fwrite(&im, sizeof(im), 1, f) == 1 &&
	     fwrite(&h->cur[h->nx], sizeof(double), cells, f) == cells;
	if (fclose(f) || !ok) {
		fprintf(stderr, "heat: rank %d: writing %s failed\n", h->rank,
			path);
		return -1;
	}
	if (smig_capture_info(w, &ci) != SMIG_OK)
		memset(&ci, 0, sizeof(ci));
	printf("heat: rank %d file checkpoint gen=%" PRIu64 " iter=%ld bytes=%zu path=%s\n",
	       h->rank, ci.generation, h->iter,
	       sizeof(im) + cells * sizeof(double), path);
	fflush(stdout);
	return smig_capture_file(w, path);
}

/*
 * restore_check - --restore-later: the restore callback may call MPI
 * (smig_restore()): every rank restored the same iteration
 * RET 0, or -1 (smig_restore() then fails on every rank)
 */
static int restore_check(const struct heat *h)
{
	long mine[2] = { h->iter, -h->iter }, all[2];

	if (!mpi_restore)
		return 0;
	MPI_Allreduce(mine, all, 2, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
	printf("heat: rank %d restore check iter=%ld min=%ld max=%ld\n",
	       h->rank, h->iter, -all[1], all[0]);
	fflush(stdout);
	if (h->rank == fail_restore_rank)
		return -1;	/* after the collective, as smig(3) asks */
	return -all[1] == all[0] ? 0 : -1;
}

static int restore(const void *data, size_t len, void *arg)
{
	struct heat *h = arg;
	struct heat_image im;
	size_t want = h->rows * h->nx * sizeof(double);

	if (len != sizeof(im) + want) {
		fprintf(stderr, "heat: rank %d: image of %zu bytes, expected %zu\n",
			h->rank, len, sizeof(im) + want);
		return -1;
	}
	memcpy(&im, data, sizeof(im));
	if (im.magic != IMAGE_MAGIC || im.rank != (uint32_t) h->rank ||
	    im.nx != h->nx || im.ny != h->ny || im.row0 != h->row0 ||
	    im.rows != h->rows || im.iter < 0) {
		fprintf(stderr, "heat: rank %d: image is of another grid (rank %u, %" PRId64 "x%" PRId64 ", rows %" PRId64 "+%" PRId64 ") than this run (%ldx%ld, rows %ld+%ld)\n",
			h->rank, im.rank, im.nx, im.ny, im.row0, im.rows,
			h->nx, h->ny, h->row0, h->rows);
		return -1;
	}
	memcpy(&h->cur[h->nx], (const char *) data + sizeof(im), want);
	h->iter = im.iter;
	return restore_check(h);
}

/* restore_reader - restore() streamed: the header, then one row per read */
static int restore_reader(smig_reader_t *r, uint64_t len, void *arg)
{
	struct heat *h = arg;
	size_t row = h->nx * sizeof(double);
	struct heat_image im;
	int64_t n;

	if (len != sizeof(im) + h->rows * row) {
		fprintf(stderr, "heat: rank %d: image of %" PRIu64 " bytes, expected %zu\n",
			h->rank, len, sizeof(im) + h->rows * row);
		return -1;
	}
	n = smig_read(r, &im, sizeof(im));
	if (n != (int64_t) sizeof(im))
		return -1;
	if (im.magic != IMAGE_MAGIC || im.rank != (uint32_t) h->rank ||
	    im.nx != h->nx || im.ny != h->ny || im.row0 != h->row0 ||
	    im.rows != h->rows || im.iter < 0) {
		fprintf(stderr, "heat: rank %d: image is of another grid\n",
			h->rank);
		return -1;
	}
	for (long i = 1; i <= h->rows; i++) {
		n = smig_read(r, &h->cur[i * h->nx], row);
		if (n != (int64_t) row) {
			fprintf(stderr, "heat: rank %d: smig_read of row %ld: %s\n",
				h->rank, i, n < 0 ? smig_strerror((int) n) :
				"short read");
			return -1;
		}
	}
	h->iter = im.iter;
	return restore_check(h);
}

/*
 * restore_file - --file-checkpoint: read the restart file libsmig gives
 * back (the file capture_file() handed over, byte for byte)
 */
static int restore_file(smig_reader_t *r, uint64_t len, void *arg)
{
	struct heat *h = arg;
	size_t cells = (size_t) (h->rows * h->nx);
	const char *path = smig_restore_path(r);
	struct heat_image im;
	bool ok;
	FILE *f;

	if (!path)
		return -1;
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "heat: rank %d: %s: %s\n", h->rank, path,
			strerror(errno));
		return -1;
	}
	ok = len == sizeof(im) + cells * sizeof(double) &&
	     fread(&im, sizeof(im), 1, f) == 1 &&
	     im.magic == IMAGE_MAGIC && im.rank == (uint32_t) h->rank &&
	     im.nx == h->nx && im.ny == h->ny && im.row0 == h->row0 &&
	     im.rows == h->rows && im.iter >= 0 &&
	     fread(&h->cur[h->nx], sizeof(double), cells, f) == cells &&
	     fgetc(f) == EOF;
	fclose(f);
	if (!ok) {
		fprintf(stderr, "heat: rank %d: %s (%" PRIu64 " bytes) is not this rank's restart file\n",
			h->rank, path, len);
		return -1;
	}
	h->iter = im.iter;
	printf("heat: rank %d file restore iter=%ld bytes=%" PRIu64 " path=%s\n",
	       h->rank, h->iter, len, path);
	fflush(stdout);
	return restore_check(h);
}

/* state_init - --state-mib: contents that depend on the rank */
static void state_init(int rank)
{
	for (size_t i = 0; i < state_nwords; i++)
		state_words[i] = (uint64_t) (i + 1) * UINT64_C(0x9e3779b97f4a7c15) ^
				 (uint64_t) rank;
}

/* state_step - rewrite one window of the state from its old contents */
static void state_step(long iter, int rank)
{
	size_t win = STATE_WINDOW / sizeof(uint64_t), nwin;
	size_t at;

	if (!state_nwords)
		return;
	if (win > state_nwords)
		win = state_nwords;
	nwin = state_nwords / win;
	at = (size_t) ((uint64_t) iter * UINT64_C(2654435761) % nwin) * win;
	for (size_t i = at; i < at + win; i++)
		state_words[i] = state_words[i] * UINT64_C(6364136223846793005) +
				 (uint64_t) iter + (uint64_t) rank;
}

/* state_checksum - an FNV-1a-like hash of every rank's state words, in
 * rank order */
static uint64_t state_checksum(const struct heat *h)
{
	uint64_t mine = FNV_OFFSET, sum = FNV_OFFSET, *all = NULL;

	for (size_t i = 0; i < state_nwords; i++) {
		mine = (mine ^ state_words[i]) * FNV_PRIME;
		mine ^= mine >> 29;	/* high bits into the low ones */
	}
	if (h->rank == 0)
		all = malloc(sizeof(uint64_t) * h->size);
	MPI_Gather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0,
		   MPI_COMM_WORLD);
	if (h->rank == 0) {
		for (int r = 0; r < h->size; r++)
			sum = (sum ^ all[r]) * FNV_PRIME;
		free(all);
	}
	return sum;
}

static const char *node_name(void)
{
	static char host[256];
	const char *n = getenv("SLURMD_NODENAME");

	if (n && *n)
		return n;
	if (gethostname(host, sizeof(host) - 1))
		return "unknown";
	return host;
}

/* --busy-threads: spinners that burn CPU until busy_stop is set */
static atomic_bool busy_stop;

static void *spin(void *unused)
{
	volatile double x = 1;

	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed))
		for (int i = 0; i < 100000; i++)
			x = x * 1.0000001 + 1e-9;
	return NULL;
}

static void check_smig(int rank, const char *what, int rc)
{
	if (rc >= 0)
		return;
	fprintf(stderr, "heat: rank %d: %s: %s\n", rank, what,
		smig_strerror(rc));
	MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
	struct heat h = { 0 };
	struct opts o;
	pthread_t busy[64];
	long nbusy = 0;
	size_t cells;
	bool stopped = false;
	char tbuf[40];
	struct timespec cpu0, cpu1;
	long first;
	uint64_t sum;
	int rc;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &h.rank);
	MPI_Comm_size(MPI_COMM_WORLD, &h.size);
	if (!parse_opts(argc, argv, &o)) {
		MPI_Finalize();
		return 2;
	}
	if (o.ny < h.size) {
		if (h.rank == 0)
			fprintf(stderr, "heat: --ny=%ld: fewer rows than ranks (%d)\n",
				o.ny, h.size);
		MPI_Finalize();
		return 2;
	}
	h.nx = o.nx;
	h.ny = o.ny;
	block_of(h.ny, h.size, h.rank, &h.row0, &h.rows);
	cells = (size_t) (h.rows + 2) * h.nx;
	h.cur = calloc(cells, sizeof(double));
	h.next = calloc(cells, sizeof(double));
	if (!h.cur || !h.next) {
		fprintf(stderr, "heat: rank %d: out of memory for %zu cells\n",
			h.rank, cells);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	set_borders(&h, h.cur);

	check_smig(h.rank, "smig_init", smig_init());
	if (o.state_mib) {
		/* Registered before smig_register(), which restores it. */
		state_nwords = (size_t) o.state_mib * 1024 * 1024 /
			       sizeof(uint64_t);
		state_words = malloc(state_nwords * sizeof(uint64_t));
		if (!state_words) {
			fprintf(stderr, "heat: rank %d: out of memory for --state-mib=%ld\n",
				h.rank, o.state_mib);
			MPI_Abort(MPI_COMM_WORLD, 1);
		}
		state_init(h.rank);
		check_smig(h.rank, "smig_region_register",
			   smig_region_register("state", state_words,
						state_nwords *
						sizeof(uint64_t)));
	}
	hold_restore(&o, h.rank);
	if (o.file_ckpt) {
		/* Restart files: the capture hands one over, the restore
		 * reads it back (a streaming restore callback). */
		rc = smig_register_flags("heat", capture_file, NULL,
					 restore_file, &h, o.restore_later ?
					 SMIG_RESTORE_LATER : 0);
		if (o.restore_later && rc == SMIG_OK) {
			check_smig(h.rank, "smig_register_flags", rc);
			rc = smig_restore();
			printf("heat: rank %d smig_restore: %s\n", h.rank,
			       smig_strerror(rc));
			fflush(stdout);
			if (rc < 0)
				MPI_Barrier(MPI_COMM_WORLD);
		}
	} else if (o.restore_later) {
		/* Objects exist; a real code would set more up here. */
		rc = smig_register_flags("heat", capture,
					 o.reader ? NULL : restore,
					 o.reader ? restore_reader : NULL, &h,
					 SMIG_RESTORE_LATER);
		check_smig(h.rank, "smig_register_flags", rc);
		rc = smig_restore();
		printf("heat: rank %d smig_restore: %s\n", h.rank,
		       smig_strerror(rc));
		fflush(stdout);
		/* The same answer everywhere: all ranks get here, or none. */
		if (rc < 0)
			MPI_Barrier(MPI_COMM_WORLD);
		check_smig(h.rank, "smig_restore", rc);
	} else if (o.reader) {
		rc = smig_register_reader("heat", capture, restore_reader, &h);
	} else {
		rc = smig_register("heat", capture, restore, &h);
	}
	check_smig(h.rank, "smig_register", rc);
	printf("heat: rank %d node %s %s iter %ld%s\n", h.rank, node_name(),
	       rc == SMIG_RESTORED ? "restored" : "start", h.iter,
	       stamp(&o, tbuf, sizeof(tbuf)));
	fflush(stdout);
	first = h.iter;
	if (h.rank == o.busy_rank)
		for (; nbusy < o.busy_threads; nbusy++)
			if (pthread_create(&busy[nbusy], NULL, spin, NULL)) {
				fprintf(stderr, "heat: rank %d: cannot start a busy thread\n",
					h.rank);
				break;
			}

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
	while (h.iter < o.iters) {
		step(&h);
		state_step(h.iter, h.rank);
		if (o.timestamps && h.iter == first + 1) {
			printf("heat: rank %d computing iter %ld%s\n", h.rank,
			       h.iter, stamp(&o, tbuf, sizeof(tbuf)));
			fflush(stdout);
		}
		if (o.sleep_ms)
			sleep_ms(o.sleep_ms);
		if (o.report && h.rank == 0 && h.iter % o.report == 0) {
			printf("heat: iter %ld/%ld%s\n", h.iter, o.iters,
			       stamp(&o, tbuf, sizeof(tbuf)));
			fflush(stdout);
		}
		if (h.rank == o.stall_rank && h.iter == o.stall_iter)
			sleep(o.stall_sec);
		if (smig_safepoint() == SMIG_STOP) {
			stopped = true;
			break;
		}
	}

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
	if (o.cpu_time) {
		printf("heat: rank %d loop cpu=%.6f iters=%ld\n", h.rank,
		       (double) (cpu1.tv_sec - cpu0.tv_sec) +
		       (cpu1.tv_nsec - cpu0.tv_nsec) / 1e9, h.iter - first);
		fflush(stdout);
	}
	atomic_store(&busy_stop, true);
	for (long i = 0; i < nbusy; i++)
		pthread_join(busy[i], NULL);
	if (stopped) {
		printf("heat: rank %d stopping for migration at iter %ld%s\n",
		       h.rank, h.iter, stamp(&o, tbuf, sizeof(tbuf)));
		fflush(stdout);
	} else {
		sum = checksum(&h);
		if (h.rank == 0) {
			printf("heat: done iters=%ld checksum=%016" PRIx64 "\n",
			       h.iter, sum);
			fflush(stdout);
		}
		if (o.state_mib) {
			sum = state_checksum(&h);
			if (h.rank == 0) {
				printf("heat: state checksum=%016" PRIx64 "\n",
				       sum);
				fflush(stdout);
			}
		}
		if (o.timestamps) {
			printf("heat: rank %d finishing iter %ld%s\n", h.rank,
			       h.iter, stamp(&o, tbuf, sizeof(tbuf)));
			fflush(stdout);
		}
	}
	smig_finalize();
	free(state_words);
	free(h.cur);
	free(h.next);
	MPI_Finalize();
	return 0;
}
