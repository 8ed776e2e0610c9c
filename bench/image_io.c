// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * image_io.c - time the atomic write and the verified read of one recovery
 * image of a given payload size, as the library does them during a move.
 *
 * usage: image_io DIR BYTES REPEAT
 * prints: "write_ms=<median> read_ms=<median> bytes=<BYTES>"
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smig_image.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	char err[512], path[4096];
	smig_image_hdr_t hdr = { 0 }, got;
	double *w, *r;
	unsigned char *payload;
	size_t bytes;
	int repeat, rc;

	if (argc != 4) {
		fprintf(stderr, "usage: image_io DIR BYTES REPEAT\n");
		return 2;
	}
	bytes = strtoull(argv[2], NULL, 10);
	repeat = atoi(argv[3]);
	if (repeat < 1 || !(payload = malloc(bytes ? bytes : 1)))
		return 2;
	w = calloc(repeat, sizeof(*w));
	r = calloc(repeat, sizeof(*r));
	if (!w || !r)
		return 2;
	for (size_t i = 0; i < bytes; i++)
		payload[i] = (unsigned char) (i * 2654435761u >> 24);
	hdr.job_id = 1;
	hdr.nranks = 1;
	hdr.payload_len = bytes;
	snprintf(hdr.tag, sizeof(hdr.tag), "bench");
	for (int i = 0; i < repeat; i++) {
		void *back = NULL;
		double t0;

		hdr.generation = i + 1;
		t0 = now_ms();
		rc = smig_image_write(argv[1], &hdr, payload, path,
				      sizeof(path), err, sizeof(err));
		w[i] = now_ms() - t0;
		if (rc) {
			fprintf(stderr, "image_io: write: %s\n", err);
			return 1;
		}
		t0 = now_ms();
		rc = smig_image_read(path, &got, &back, err, sizeof(err));
		r[i] = now_ms() - t0;
		if (rc) {
			fprintf(stderr, "image_io: read: %s\n", err);
			return 1;
		}
		free(back);
		remove(path);
	}
	qsort(w, repeat, sizeof(*w), cmp_double);
	qsort(r, repeat, sizeof(*r), cmp_double);
	printf("write_ms=%.3f read_ms=%.3f bytes=%zu\n", w[repeat / 2],
	       r[repeat / 2], bytes);
	free(w);
	free(r);
	free(payload);
	return 0;
}
