/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_hostlist.c - libFuzzer harness for hostlists and counts
 *
 * The input is what srun passes in SLURM_JOB_NODELIST ("node[1-4,7]") or
 * SLURM_JOB_CPUS_PER_NODE ("2(x3),1"), both sent to the balancer in
 * HELLO_SRUN. Names that expand must compress to an expression that expands
 * to the same names.
 */
#include "smig_config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_hostlist.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	GError *err = NULL;
	char *text, **names, **again, *packed;
	GArray *counts;

	if (!init) {
		fuzz_quiet();
		init = true;
	}
	text = fuzz_strndup(data, size);
	names = smig_hostlist_expand(text, &err);
	if (names) {
		packed = smig_hostlist_compress((const char *const *) names);
		again = smig_hostlist_expand(packed, &err);
		if (!again || g_strv_length(again) != g_strv_length(names))
			abort();
		for (guint i = 0; names[i]; i++)
			if (strcmp(names[i], again[i]) != 0)
				abort();
		g_strfreev(again);
		g_free(packed);
		g_strfreev(names);
	} else if (!err || !err->message[0]) {
		abort();
	}
	g_clear_error(&err);

	counts = smig_counts_expand(text, &err);
	if (counts)
		g_array_unref(counts);
	else if (!err)
		abort();
	g_clear_error(&err);
	g_free(text);
	return 0;
}
