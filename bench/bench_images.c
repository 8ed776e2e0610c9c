// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench_images.c - the image store against the raw operations it is made of,
 * measured side by side (interleaved, median of repeats) in one run:
 *
 *   capture   smig_image_write() (header + XXH3 + temporary file + write +
 *             fsync + rename + fsync of the directory) vs a raw sequential
 *             write of the same bytes + fsync, same file system
 *   restore   smig_image_read() (read + verify both checksums into a new
 *             buffer) vs a raw read() of the same file into a buffer; both
 *             cold: the file's pages are dropped (fsync, then
 *             posix_fadvise(DONTNEED)) before each read
 *   checksum  XXH3-64 over memory vs the disk's write bandwidth (the raw
 *             write figure of the largest size)
 *   hand-off  the agents' own code, smig_agent_store_send() and
 *             smig_agent_store_receive() (a munge-sealed HANDOFF frame,
 *             sendfile() of the image, smig_image_receive(): write +
 *             checksum in one pass + fsync + rename, and the HANDOFF
 *             reply) vs a raw TCP copy of the
 *             same bytes (read/write to the socket, write to a file, fsync),
 *             both over loopback into the same directory
 *
 * usage: bench_images [DIR [MAX_MIB]]   (default /var/tmp, 1024)
 * Prints one line per size and operation, then the headline lines, one a
 * size: "bench-images: 1MiB capture ratio X [lo, hi] (n=N); restore ratio
 * ...; hand-off ratio ..." and "bench-images: checksum / raw write bandwidth
 * ratio X [lo, hi] (n=N) ...".
 */
#define _GNU_SOURCE 1
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <glib.h>

#include "smig_agent_store.h"
#include "smig_auth.h"
#include "smig_image.h"
#include "smig_log.h"
#include "smig_msgs.h"
#include "smig_wire.h"

#define MIB		(1024.0 * 1024.0)
#define JOB		4242
#define RANK		0

static const char *dir;
static smig_auth_t *auth;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * ratio_ci - the median of the pairs' ratios raw[i] / smig[i] (each pair
 * measured back to back) and a 95 % percentile bootstrap interval of that
 * median (2,000 resamples, fixed seed: the same data gives the same
 * interval)
 */
static double ratio_ci(const double *raw, const double *smig, int n,
		       double *lo, double *hi)
{
	double r[16], boot[2000], pick[16];
	unsigned int seed = 12345;

	for (int i = 0; i < n; i++)
		r[i] = raw[i] / smig[i];
	for (int b = 0; b < 2000; b++) {
		for (int i = 0; i < n; i++)
			pick[i] = r[rand_r(&seed) % n];
		boot[b] = median(pick, n);
	}
	qsort(boot, 2000, sizeof(boot[0]), cmp_double);
	*lo = boot[49];
	*hi = boot[1949];
	return median(r, n);
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_images: %s: %s\n", what, why);
	exit(1);
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write", strerror(errno));
		p += w;
		len -= w;
	}
}

static size_t read_some(int fd, void *buf, size_t len)
{
	ssize_t r;

	do
		r = read(fd, buf, len);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		die("read", strerror(errno));
	return r;
}

/* Evict a file's pages so that the next read comes from the disk. */
static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die(path, strerror(errno));
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

/*
 * Both writers create a new file (a capture writes a new generation's
 * name; old generations are deleted later, outside the capture): the
 * previous file is removed before the clock starts.
 */
static double raw_write(const char *path, const void *buf, size_t len)
{
	double t;
	int fd;

	unlink(path);
	sync();
	t = now_s();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		die(path, strerror(errno));
	write_all(fd, buf, len);
	if (fsync(fd) < 0)
		die("fsync", strerror(errno));
	close(fd);
	return now_s() - t;
}

static double image_write(smig_image_hdr_t *hdr, const void *buf)
{
	char err[512], path[4096];
	double t;

	smig_image_path(path, sizeof(path), dir, hdr->rank, hdr->generation);
	unlink(path);
	sync();
	t = now_s();
	if (smig_image_write(dir, hdr, buf, NULL, 0, err, sizeof(err)))
		die("smig_image_write", err);
	return now_s() - t;
}

static double raw_read(const char *path, size_t len)
{
	double t;
	char *buf;
	size_t got = 0;
	int fd;

	drop_cache(path);
	t = now_s();
	buf = malloc(len);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0)
		die(path, "open or malloc failed");
	while (got < len) {
		size_t n = read_some(fd, buf + got, len - got);

		if (!n)
			die(path, "short file");
		got += n;
	}
	close(fd);
	free(buf);
	return now_s() - t;
}

static double image_read(const char *path)
{
	smig_image_hdr_t hdr;
	char err[512];
	void *payload;
	double t;

	drop_cache(path);
	t = now_s();
	if (smig_image_read(path, &hdr, &payload, err, sizeof(err)))
		die("smig_image_read", err);
	free(payload);
	return now_s() - t;
}

/* ---------------------------------------------------------- hand-off */

struct rx {
	int listen_fd;
	bool raw;
	uint64_t len;		/* raw: bytes to expect */
	char path[4096];	/* raw: the file to write; else the directory */
	smig_dir_id_t dir_id;	/* not raw: the directory's identity */
};

/* One receiver connection, as the agent's receiver does it (or raw). */
static void *rx_main(void *arg)
{
	struct rx *rx = arg;
	int fd = accept(rx->listen_fd, NULL, NULL);

	if (fd < 0)
		die("accept", strerror(errno));
	if (rx->raw) {
		int out = open(rx->path, O_WRONLY | O_CREAT | O_TRUNC |
			       O_CLOEXEC, 0600);
		char *buf = malloc(1 << 20);
		uint64_t got = 0;

		if (out < 0 || !buf)
			die(rx->path, "open or malloc failed");
		while (got < rx->len) {
			size_t n = read_some(fd, buf, 1 << 20);

			if (!n)
				die("raw copy", "connection closed");
			write_all(out, buf, n);
			got += n;
		}
		if (fsync(out) < 0)
			die("fsync", strerror(errno));
		close(out);
		free(buf);
		write_all(fd, "k", 1);
	} else {
		/* The agent's hand-off receiver, as it runs in slurmstepd. */
		smig_agent_store_t st = {
			.dir = rx->path, .dir_id = &rx->dir_id, .job_id = JOB,
			.node = "receiver", .auth = auth,
		};

		smig_agent_store_receive(&st, fd);
	}
	close(fd);
	return NULL;
}

static int listener(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
		die("listen", strerror(errno));
	*port = ntohs(sa.sin_port);
	return fd;
}

/*
 * One transfer of the image at src: raw copy, or the hand-off path into
 * rx_dir (a directory other than src's, as on another node).
 */
static double transfer(const char *src, uint64_t len, bool raw,
		       const char *dst)
{
	struct rx rx = { .raw = raw, .len = len };
	GError *err = NULL;
	uint16_t port;
	pthread_t th;
	double t;
	int fd;

	snprintf(rx.path, sizeof(rx.path), "%s", dst);
	/* Into a new file, as a hand-off of a new generation is. */
	if (raw) {
		unlink(dst);
	} else {
		char old[4096], errbuf[512];

		smig_image_path(old, sizeof(old), dst, RANK, 1);
		unlink(old);
		if (smig_dir_id_get(dst, &rx.dir_id, errbuf, sizeof(errbuf)))
			die("smig_dir_id_get", errbuf);
	}
	sync();
	rx.listen_fd = listener(&port);
	pthread_create(&th, NULL, rx_main, &rx);
	drop_cache(src);
	t = now_s();
	if (raw) {
		int in = open(src, O_RDONLY | O_CLOEXEC);
		char *buf = malloc(1 << 20), k;
		size_t n;

		fd = smig_wire_connect("127.0.0.1", port, 5000, &err);
		if (fd < 0)
			die("connect", err->message);
		if (in < 0 || !buf)
			die(src, "open or malloc failed");
		while ((n = read_some(in, buf, 1 << 20)))
			write_all(fd, buf, n);
		close(in);
		free(buf);
		if (read_some(fd, &k, 1) != 1)
			die("raw copy", "no acknowledgement");
		close(fd);
	} else {
		/* The agent's sender: HANDOFF, sendfile, the reply. */
		smig_agent_store_t st = {
			.dir = dir, .job_id = JOB, .node = "sender",
			.timeout_ms = 60000, .auth = auth,
		};
		char errbuf[512];

		if (smig_agent_store_send(&st, RANK, 1, "receiver",
					  "127.0.0.1", port, errbuf,
					  sizeof(errbuf)))
			die("smig_agent_store_send", errbuf);
	}
	t = now_s() - t;
	pthread_join(th, NULL);
	close(rx.listen_fd);
	return t;
}

int main(int argc, char **argv)
{
	static const size_t mib[] = { 1, 16, 256, 1024 };
	double disk_bw = 0, sum_bw;
	double last_wr[9] = { 0 }, t_in_order[5];
	double sum_ratio = 0, sum_lo = 0, sum_hi = 0;
	int last_rep = 0, sum_n = 0;
	char *headline[G_N_ELEMENTS(mib)] = { NULL };
	bool munged;
	char raw_path[4096], img_path[4096], rx_dir[4096], rx_raw[4200];
	size_t max_mib = 1024, largest = 0;
	GError *err = NULL;
	unsigned char *buf;
	int nsizes = 0;

	/* The receiver's "image received" lines: errors only. */
	smig_log_set_sink(NULL, SMIG_LOG_ERROR);
	dir = argc > 1 ? argv[1] : "/var/tmp";
	if (argc > 2)
		max_mib = strtoul(argv[2], NULL, 10);
	auth = smig_auth_munge_new(NULL, &err);
	if (auth) {
		/* munged may not run here: try one credential. */
		smig_msg_handoff_t probe = { .job = JOB, .gen = 1,
					     .rank = RANK };
		smig_msg_t *m = smig_msg_handoff_encode(&probe);
		GBytes *frame;

		frame = smig_wire_encode(auth, m, &err);
		smig_msg_free(m);
		if (frame)
			g_bytes_unref(frame);
		else
			g_clear_pointer(&auth, smig_auth_free);
	}
	munged = auth != NULL;
	if (!auth) {
		printf("munge: %s: hand-off frames measured without a credential\n",
		       err->message);
		g_clear_error(&err);
		auth = smig_auth_none_new(0, 0);
	}
	snprintf(rx_dir, sizeof(rx_dir), "%s/bench-images.%d.rx", dir,
		 (int) getpid());
	snprintf(raw_path, sizeof(raw_path), "%s/bench-images.%d.raw", dir,
		 (int) getpid());
	snprintf(rx_raw, sizeof(rx_raw), "%s/raw", rx_dir);
	if (mkdir(rx_dir, 0700) < 0)
		die(rx_dir, strerror(errno));
	buf = malloc(max_mib * (size_t) MIB);
	if (!buf)
		die("malloc", "out of memory");
	/* Incompressible, and touched once so no page fault is timed. */
	for (size_t i = 0; i < max_mib * (size_t) MIB; i += 8) {
		uint64_t v = XXH64(&i, sizeof(i), 7);

		memcpy(buf + i, &v, 8);
	}

	{
		struct utsname u;
		char when[64];
		time_t now = time(NULL);

		uname(&u);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC",
			 gmtime(&now));
		printf("bench-images %s on %s: %ld cores, kernel %s; hand-off frames %s\n",
		       when, u.nodename, sysconf(_SC_NPROCESSORS_ONLN),
		       u.release, munged ? "sealed by munge" :
		       "WITHOUT a credential (no munged)");
	}
	printf("directory %s (disk figures fsync'ed; reads cold: fdatasync + POSIX_FADV_DONTNEED before each); sizes interleaved, the order of smig and raw alternating\n",
	       dir);
	printf("%8s %10s %10s %10s %7s\n", "size", "operation", "smig MB/s",
	       "raw MB/s", "ratio");
	for (size_t k = 0; k < G_N_ELEMENTS(mib) && mib[k] <= max_mib; k++) {
		size_t len = mib[k] * (size_t) MIB;
		int rep = mib[k] >= 1024 ? 7 : 9;
		double wi[9], wr[9], ri[9], rr[9], hi[9], hr[9];
		smig_image_hdr_t hdr = {
			.job_id = JOB, .rank = RANK, .nranks = 1,
			.generation = 1, .payload_len = len - SMIG_IMAGE_HEADER_SIZE,
		};
		uint64_t file_len = len;

		strcpy(hdr.tag, "bench");
		smig_image_path(img_path, sizeof(img_path), dir, RANK, 1);
		for (int i = 0; i < rep; i++) {
			/* Same bytes on disk: header + payload = len. */
			/* Alternate which goes first: no order bias. */
			if (i % 2) {
				wi[i] = image_write(&hdr, buf);
				wr[i] = raw_write(raw_path, buf, len);
				ri[i] = image_read(img_path);
				rr[i] = raw_read(raw_path, len);
				hi[i] = transfer(img_path, file_len, false,
						 rx_dir);
				hr[i] = transfer(img_path, file_len, true,
						 rx_raw);
			} else {
				wr[i] = raw_write(raw_path, buf, len);
				wi[i] = image_write(&hdr, buf);
				rr[i] = raw_read(raw_path, len);
				ri[i] = image_read(img_path);
				hr[i] = transfer(img_path, file_len, true,
						 rx_raw);
				hi[i] = transfer(img_path, file_len, false,
						 rx_dir);
			}
			unlink(rx_raw);
		}
		{
			static const char *const ops[] = {
				"capture", "restore", "hand-off" };
			const double *sm[] = { wi, ri, hi }, *rw[] = { wr, rr, hr };
			char *line = g_strdup_printf("%zuMiB", mib[k]);

			for (int o = 0; o < 3; o++) {
				double lo, hi2, ratio;
				char *next;

				ratio = ratio_ci(rw[o], sm[o], rep, &lo, &hi2);
				printf("%6zuMiB %10s %10.0f %10.0f %7.2f [%.2f, %.2f] (n=%d)\n",
				       mib[k], ops[o],
				       len / MIB / median((double *) sm[o], rep),
				       len / MIB / median((double *) rw[o], rep),
				       ratio, lo, hi2, rep);
				next = g_strdup_printf("%s%s %s ratio %.2f [%.2f, %.2f] (n=%d)",
						       line, o ? ";" : "",
						       ops[o], ratio, lo, hi2,
						       rep);
				g_free(line);
				line = next;
			}
			headline[nsizes] = line;
		}
		fflush(stdout);
		memcpy(last_wr, wr, sizeof(wr));
		last_rep = rep;
		disk_bw = len / MIB / median(wr, rep);
		largest = mib[k];
		nsizes++;
		unlink(img_path);
		smig_image_path(img_path, sizeof(img_path), rx_dir, RANK, 1);
		unlink(img_path);
	}
	{
		double t[5];
		size_t len = largest * (size_t) MIB;
		volatile uint64_t sink = 0;

		for (int i = 0; i < 5; i++) {
			double t0 = now_s();

			sink ^= XXH3_64bits(buf, len);
			t[i] = now_s() - t0;
			t_in_order[i] = t[i];
		}
		/* CPU-bound: the best of 5 is the core's speed when the other
		 * core's load (this box has 2) leaves it alone. */
		qsort(t, 5, sizeof(t[0]), cmp_double);
		sum_bw = len / MIB / t[0];
		printf("%6zuMiB %10s %10.0f %10.0f %6.1fx  (XXH3-64 in memory, best of 5, vs the raw disk write above)\n",
		       largest, "checksum", sum_bw, disk_bw, sum_bw / disk_bw);
		/* The headline's interval: the i-th raw write of the largest
		 * size over the i-th checksum pass (same bytes), i < 5. */
		sum_n = last_rep < 5 ? last_rep : 5;
		sum_ratio = ratio_ci(last_wr, t_in_order, sum_n, &sum_lo,
				     &sum_hi);
	}
	unlink(raw_path);
	rmdir(rx_dir);
	free(buf);
	smig_auth_free(auth);
	if (!nsizes)
		die("sizes", "MAX_MIB below 1");
	/* One headline per size: each ratio with its interval. */
	for (int k = 0; k < nsizes; k++) {
		printf("bench-images: %s (ratios raw time / smig time, median of n pairs [95 %% bootstrap]; goals capture >= 0.9, restore >= 0.9, hand-off >= 0.8)\n",
		       headline[k]);
		g_free(headline[k]);
	}
	printf("bench-images: checksum / raw write bandwidth ratio %.1f [%.1f, %.1f] (n=%d) (raw write time of the largest size / XXH3-64 time, pairs in run order, median [95 %% bootstrap]; best of 5 passes %.1fx; goal >= 10)\n",
	       sum_ratio, sum_lo, sum_hi, sum_n, sum_bw / disk_bw);
	return 0;
}
