/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * make_seeds.c - write the binary seed corpora (wire frames, images)
 *
 * Built and run by "testsuite/fuzz/run.sh --make-seeds": the seeds in
 * corpus/wire and corpus/image are real encoder output (smig_wire_encode()
 * with the "none" method, smig_image_encode_header()), one per message type
 * of doc/design.md and a few image shapes. Text corpora are plain files.
 */
#include "smig_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_image.h"
#include "smig_wire.h"

static void put(const char *dir, const char *name, const void *buf,
		size_t len)
{
	char *path = g_build_filename(dir, name, NULL);
	GError *err = NULL;

	if (!g_file_set_contents(path, buf, len, &err)) {
		fprintf(stderr, "make_seeds: %s\n", err->message);
		exit(1);
	}
	g_free(path);
}

static void frame(const char *dir, smig_auth_t *auth, smig_msg_type_t type,
		  const char *body_text)
{
	GVariant *body = g_variant_new_parsed(body_text);
	smig_msg_t *msg = smig_msg_new(type, body);
	GBytes *bytes = smig_wire_encode(auth, msg, NULL);
	char *name = g_ascii_strdown(smig_msg_type_name(type), -1);
	gsize len;
	const void *data = g_bytes_get_data(bytes, &len);

	put(dir, name, data, len);
	g_free(name);
	g_bytes_unref(bytes);
	smig_msg_free(msg);
}

static void image(const char *dir, const char *name, size_t payload_len,
		  const char *tag)
{
	smig_image_hdr_t hdr = {
		.job_id = 42, .step_id = 0, .rank = 3, .nranks = 4,
		.generation = 2, .safepoint = 100,
		.payload_len = payload_len, .created_ns = 1,
	};
	unsigned char *buf = g_malloc0(SMIG_IMAGE_HEADER_SIZE + payload_len);

	g_strlcpy(hdr.tag, tag, sizeof(hdr.tag));
	for (size_t i = 0; i < payload_len; i++)
		buf[SMIG_IMAGE_HEADER_SIZE + i] = (unsigned char) i;
	smig_image_encode_header(&hdr, buf + SMIG_IMAGE_HEADER_SIZE, buf);
	put(dir, name, buf, SMIG_IMAGE_HEADER_SIZE + payload_len);
	g_free(buf);
}

int main(int argc, char **argv)
{
	smig_auth_t *auth = smig_auth_none_new(1000, 1000);
	const char *w, *im;

	if (argc != 3) {
		fprintf(stderr, "usage: make_seeds WIRE_DIR IMAGE_DIR\n");
		return 2;
	}
	w = argv[1];
	im = argv[2];
	frame(w, auth, SMIG_MSG_HELLO_SRUN,
	      "{'job': <@u 42>, 'step': <@u 0>, 'request': <'mode=auto,capture=callback'>, 'ntasks': <@u 4>, 'alloc_nodes': <'node[1-2]'>, 'alloc_cpus': <'2(x2)'>, 'cpus_per_task': <@u 1>, 'restored_gen': <@t 0>, 'prev_step': <@u 0>}");
	frame(w, auth, SMIG_MSG_HELLO_AGENT,
	      "{'job': <@u 42>, 'step': <@u 0>, 'node': <'node1'>, 'ranks': <@au [0, 1]>}");
	frame(w, auth, SMIG_MSG_PREPARE,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>, 'timeout_ms': <@u 60000>}");
	frame(w, auth, SMIG_MSG_COUNT,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>, 'rank': <@u 1>, 'pause_at': <@t 17>}");
	frame(w, auth, SMIG_MSG_CAPTURE,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>, 'target': <@t 18>}");
	frame(w, auth, SMIG_MSG_DONE,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>, 'rank': <@u 1>, 'status': <0>, 'bytes': <@t 4096>, 'msg': <''>}");
	frame(w, auth, SMIG_MSG_ABORT,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>, 'reason': <'capture-timeout'>}");
	frame(w, auth, SMIG_MSG_RELAUNCH,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>, 'hostfile': <'node1\\nnode3\\n'>, 'reason': <'drain'>}");
	frame(w, auth, SMIG_MSG_RELAUNCH_ACK,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>}");
	frame(w, auth, SMIG_MSG_COMMIT,
	      "{'job': <@u 42>, 'step': <@u 0>, 'gen': <@t 1>, 'stop': <true>}");
	frame(w, auth, SMIG_MSG_BYE,
	      "{'job': <@u 42>, 'step': <@u 0>, 'status': <0>}");
	frame(w, auth, SMIG_MSG_REFUSED,
	      "{'what': <'HELLO_SRUN'>, 'reason': <'not your job'>}");
	image(im, "small.img", 64, "heat");
	image(im, "empty.img", 0, "");
	image(im, "longtag.img", 16, "0123456789abcdef0123456789abcdef");
	smig_auth_free(auth);
	return 0;
}
