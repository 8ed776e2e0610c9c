/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_request.c - libFuzzer harness for the --migrate option parser
 *
 * The input is the text after "--migrate=". A request that parses must
 * print as canonical text (smig_request_to_string()) that parses again to
 * the same request and prints the same: that text is what srun sends to
 * the balancer and what the agent puts in SLURM_MIGRATE.
 */
#include "smig_config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_request.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	smig_request_t req, again;
	GError *err = NULL;
	char *text, *canon, *canon2;

	if (!init) {
		fuzz_quiet();
		init = true;
	}
	text = fuzz_strndup(data, size);
	if (!smig_request_parse(text, &req, &err)) {
		if (!err || !err->message[0])
			abort();	/* a refusal always says why */
		g_clear_error(&err);
		g_free(text);
		return 0;
	}
	if (!smig_request_check_supported(&req, &err))
		g_clear_error(&err);
	(void) smig_mode_name(req.mode);

	canon = smig_request_to_string(&req);
	if (!smig_request_parse(canon, &again, &err))
		abort();
	canon2 = smig_request_to_string(&again);
	if (strcmp(canon, canon2) != 0)
		abort();
	g_free(canon2);
	g_free(canon);
	g_free(text);
	return 0;
}
