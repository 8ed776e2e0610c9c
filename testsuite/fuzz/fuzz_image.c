/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_image.c - libFuzzer harness for the image reader
 *
 * The input is an image file as a user could leave it in the job's
 * directory: smig_image_decode_header() parses its front, then the bytes
 * are written to a private temporary file and read back with
 * smig_image_read() and smig_image_verify(), as libsmig and the agent do.
 * A header that decodes must encode again to the same bytes. The same bytes
 * are also read as the directory's manifest of good generations
 * (smig_store_good_read()), which the agent reads as root.
 */
#include "smig_config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_image.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(const uint8_t *data, size_t size,
			    const smig_image_hdr_t *hdr)
{
	unsigned char out[SMIG_IMAGE_HEADER_SIZE];
	smig_image_hdr_t again;
	char errbuf[256];

	if (hdr->payload_len > size - SMIG_IMAGE_HEADER_SIZE)
		return;
	smig_image_encode_header(hdr, data + SMIG_IMAGE_HEADER_SIZE, out);
	if (smig_image_decode_header(out, sizeof(out), &again, errbuf,
				     sizeof(errbuf)) != 0)
		abort();
	if (again.generation != hdr->generation || again.rank != hdr->rank ||
	    again.payload_len != hdr->payload_len ||
	    strcmp(again.tag, hdr->tag) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t gens[SMIG_STORE_MAX_GOOD];
	smig_image_hdr_t hdr;
	char errbuf[256], *dir, *path;
	size_t n = 0;
	void *payload = NULL;
	int rc;

	rc = smig_image_decode_header(data, size, &hdr, errbuf,
				      sizeof(errbuf));
	if (rc == 0) {
		/* NUL within the buffer: the tag is a C string. */
		if (memchr(hdr.tag, '\0', sizeof(hdr.tag)) == NULL)
			abort();
		check_roundtrip(data, size, &hdr);
	} else if (!memchr(errbuf, '\0', sizeof(errbuf)) || !errbuf[0]) {
		abort();	/* every refusal says why */
	}
	(void) smig_image_strerror(rc);

	path = fuzz_tmpfile(data, size, "rank0.g1.img", &dir);
	rc = smig_image_read(path, &hdr, &payload, errbuf, sizeof(errbuf));
	if (rc == 0 && hdr.payload_len != 0 && !payload)
		abort();
	free(payload);
	(void) smig_image_verify(path, &hdr, errbuf, sizeof(errbuf));
	fuzz_tmpfile_remove(path, dir);

	path = fuzz_tmpfile(data, size, SMIG_STORE_MANIFEST, &dir);
	rc = smig_store_good_read(dir, gens, &n, errbuf, sizeof(errbuf));
	if (n > SMIG_STORE_MAX_GOOD || (rc != 0 && n != 0))
		abort();
	for (size_t i = 1; i < n; i++)
		if (gens[i] <= gens[i - 1])
			abort();	/* the manifest only grows */
	fuzz_tmpfile_remove(path, dir);
	return 0;
}
