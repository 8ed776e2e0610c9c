// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench_tracking.c - how the pre-copy finds what changed (issue 19,
 * doc/design.md "Pre-copy"): block hashes against the kernel's soft-dirty
 * page bits, on one buffer of this process, measured side by side:
 *
 *   hash scan   XXH3-64 of every 1 MiB block of the buffer (what a round
 *               and the safe point cost when nothing changed: libsmig's
 *               smig_precopy_round()/_finish() compare these), and the
 *               same with memcpy to a private block first (a changed block)
 *   soft-dirty  "4" written to /proc/self/clear_refs (clears the bits and
 *               write-protects every page), then /proc/self/pagemap read
 *               for every page (bit 55): the two steps of one round
 *   app cost    a write of one byte to every 4 KiB page, as an application
 *               touches its state: after clear_refs (with soft-dirty, each
 *               first write is a write-protect fault) against the same
 *               writes with no clear_refs before; the difference is what
 *               soft-dirty costs the application per round, which block
 *               hashes never do. A kernel without CONFIG_MEM_SOFT_DIRTY
 *               accepts clear_refs but never sets the bit: "soft-dirty
 *               works: no", and the difference is nothing
 *   wp fault    the same writes after mprotect(PROT_READ) of the buffer,
 *               a SIGSEGV handler making each page writable again (write
 *               tracking in user space, where soft-dirty is missing): the
 *               price of a write-protect fault per page on this machine
 *
 * usage: bench_tracking [MIB [REPEATS]]   (default 1024, 7)
 * Prints one line per measurement (median, min and max of the repeats, in
 * ms, and the rate), then "bench-tracking: ..." headline lines.
 */
#define _GNU_SOURCE 1
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define BLOCK		(1024 * 1024)
#define PAGE		4096
#define MAX_REPEATS	31

/* The buffer the SIGSEGV handler makes writable again, page by page. */
static unsigned char *wp_buf;
static size_t wp_len;
static volatile size_t wp_faults;

static void wp_handler(int sig, siginfo_t *si, void *ctx)
{
	uintptr_t a = (uintptr_t) si->si_addr & ~(uintptr_t) (PAGE - 1);

	(void) ctx;
	if (a < (uintptr_t) wp_buf || a >= (uintptr_t) wp_buf + wp_len ||
	    mprotect((void *) a, PAGE, PROT_READ | PROT_WRITE) < 0) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	wp_faults++;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/* report - median, min, max of t[n] ms; RET the median */
static double report(const char *what, double *t, int n, double mib)
{
	double med;

	qsort(t, n, sizeof(*t), cmp_double);
	med = t[n / 2];
	printf("%-34s median %9.2f ms  min %9.2f  max %9.2f  (n=%d)",
	       what, med, t[0], t[n - 1], n);
	if (mib > 0)
		printf("  %.2f GB/s", mib * 1048576.0 / (med / 1e3) / 1e9);
	printf("\n");
	return med;
}

/* clear_refs - write "4": soft-dirty bits cleared. RET 0 or -errno */
static int clear_refs(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "4", 1) != 1)
		rc = -errno;
	close(fd);
	return rc;
}

/* scan_pagemap - pages of buf with the soft-dirty bit; -1 on error */
static long scan_pagemap(const unsigned char *buf, size_t len,
			 uint64_t *entries)
{
	size_t npages = len / PAGE;
	off_t off = (off_t) ((uintptr_t) buf / PAGE * sizeof(uint64_t));
	long dirty = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = pread(fd, entries, npages * sizeof(uint64_t), off);
	close(fd);
	if (r != (ssize_t) (npages * sizeof(uint64_t)))
		return -1;
	for (size_t i = 0; i < npages; i++)
		dirty += (entries[i] >> 55) & 1;
	return dirty;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	int reps = argc > 2 ? atoi(argv[2]) : 7;
	double t[MAX_REPEATS], scan, copy, clr, pm, wr_plain, wr_sd, wp;
	size_t len = mib * 1048576, npages = len / PAGE;
	unsigned char *buf, *bounce;
	uint64_t *entries, sink = 0;
	struct utsname u;
	time_t when = time(NULL);
	long dirty;

	if (!mib || reps < 1 || reps > MAX_REPEATS) {
		fprintf(stderr, "usage: bench_tracking [MIB [REPEATS (1..%d)]]\n",
			MAX_REPEATS);
		return 2;
	}
	buf = aligned_alloc(PAGE, len);
	bounce = malloc(BLOCK);
	entries = malloc(npages * sizeof(uint64_t));
	if (!buf || !bounce || !entries) {
		fprintf(stderr, "bench_tracking: out of memory for %zu MiB\n",
			mib);
		return 1;
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char) (i * 2654435761u >> 13);
	uname(&u);
	printf("bench-tracking: %s", ctime(&when));
	printf("host: %ld cores online, kernel %s %s, buffer %zu MiB, block %d KiB, %d repeats\n",
	       sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, mib,
	       BLOCK / 1024, reps);

	/* Block hashes: the scan of a round / the safe point. */
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms();

		for (size_t b = 0; b < len; b += BLOCK)
			sink ^= XXH3_64bits(buf + b, BLOCK);
		t[r] = now_ms() - t0;
	}
	scan = report("hash scan (XXH3, all blocks)", t, reps, mib);
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms();

		for (size_t b = 0; b < len; b += BLOCK) {
			memcpy(bounce, buf + b, BLOCK);
			sink ^= XXH3_64bits(bounce, BLOCK);
		}
		t[r] = now_ms() - t0;
	}
	copy = report("copy + hash (a changed block)", t, reps, mib);

	/* Soft-dirty: clear, then read the bits. */
	if (clear_refs() < 0) {
		printf("soft-dirty: /proc/self/clear_refs: %s: not available\n",
		       strerror(errno));
		return 1;
	}
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms();

		clear_refs();
		t[r] = now_ms() - t0;
	}
	clr = report("soft-dirty clear_refs", t, reps, 0);
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms();

		dirty = scan_pagemap(buf, len, entries);
		t[r] = now_ms() - t0;
		if (dirty < 0) {
			printf("soft-dirty: /proc/self/pagemap: cannot read\n");
			return 1;
		}
	}
	pm = report("soft-dirty pagemap read", t, reps, 0);
	/* Does the kernel track? One page written after a clear. */
	clear_refs();
	buf[PAGE * 3] ^= 1;
	dirty = scan_pagemap(buf, len, entries);
	printf("soft-dirty works: %s (%ld dirty page%s after writing 1)\n",
	       dirty == 1 ? "yes" : "no", dirty, dirty == 1 ? "" : "s");

	/* The application's side: one write per page. */
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms();

		for (size_t p = 0; p < npages; p++)
			((volatile unsigned char *) buf)[p * PAGE] += 1;
		t[r] = now_ms() - t0;
	}
	wr_plain = report("app writes, no tracking", t, reps, 0);
	for (int r = 0; r < reps; r++) {
		double t0;

		clear_refs();
		t0 = now_ms();
		for (size_t p = 0; p < npages; p++)
			((volatile unsigned char *) buf)[p * PAGE] += 1;
		t[r] = now_ms() - t0;
	}
	wr_sd = report("app writes after clear_refs", t, reps, 0);

	/* Write tracking by page protection: one fault per first write. */
	{
		struct sigaction sa = { .sa_sigaction = wp_handler,
					.sa_flags = SA_SIGINFO };

		wp_buf = buf;
		wp_len = len;
		sigaction(SIGSEGV, &sa, NULL);
		for (int r = 0; r < reps; r++) {
			double t0;

			if (mprotect(buf, len, PROT_READ) < 0) {
				printf("mprotect: %s\n", strerror(errno));
				return 1;
			}
			t0 = now_ms();
			for (size_t p = 0; p < npages; p++)
				((volatile unsigned char *) buf)[p * PAGE] += 1;
			t[r] = now_ms() - t0;
		}
		wp = report("app writes after mprotect", t, reps, 0);
		printf("write-protect faults: %zu (%zu pages x %d repeats)\n",
		       (size_t) wp_faults, npages, reps);
	}

	printf("bench-tracking: %zu MiB: block hash scan %.1f ms (%.1f GB/s); soft-dirty round %.1f ms (clear_refs %.1f + pagemap %.1f)\n",
	       mib, scan, mib * 1048576.0 / (scan / 1e3) / 1e9, clr + pm, clr,
	       pm);
	printf("bench-tracking: %zu MiB: copy of a changed block %.1f ms for all blocks (%.1f GB/s)\n",
	       mib, copy, mib * 1048576.0 / (copy / 1e3) / 1e9);
	printf("bench-tracking: %zu MiB: soft-dirty costs the application %.0f ns per first write to a page after each clear (%.1f ms for every page once, %.1f ms without tracking)\n",
	       mib, (wr_sd - wr_plain) * 1e6 / npages, wr_sd, wr_plain);
	printf("bench-tracking: %zu MiB: a write-protect fault costs the application %.0f ns per first write to a page (%.1f ms for every page once)\n",
	       mib, (wp - wr_plain) * 1e6 / npages, wp);
	fprintf(stderr, "(%" PRIx64 ")\n", sink);
	free(entries);
	free(bounce);
	free(buf);
	return 0;
}
