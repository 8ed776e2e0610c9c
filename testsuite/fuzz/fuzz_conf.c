/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_conf.c - libFuzzer harness for the migrate.conf parser
 *
 * The input is a file: it is loaded as migrate.conf (smig_conf_load(),
 * which feeds each line to smig_conf_parse_line()) and, separately, as the
 * slurm.conf the MigrateBalancerAddr default is read from. A file that
 * loads must list its settings (smig_conf_pairs()), and every listed
 * value must parse again on a fresh configuration.
 */
#include "smig_config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <glib.h>

#include "smig_conf.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pairs(const smig_conf_t *conf)
{
	GArray *pairs = smig_conf_pairs(conf);
	smig_conf_t *fresh = smig_conf_new();

	for (guint i = 0; i < pairs->len; i++) {
		smig_conf_pair_t *p = &g_array_index(pairs, smig_conf_pair_t,
						     i);
		GError *err = NULL;
		char *line;

		/* "(null)"-like defaults are not settings one can write. */
		if (!p->value || !*p->value || p->value[0] == '(')
			continue;
		line = g_strdup_printf("%s=%s", p->key, p->value);
		/* A value the parser accepted, written back, parses. */
		if (!smig_conf_parse_line(fresh, "again", 1, line, &err))
			abort();
		g_free(line);
	}
	smig_conf_free(fresh);
	smig_conf_pairs_free(pairs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	smig_conf_t *conf;
	GError *err = NULL;
	char *dir, *path, *missing, *text;
	uint32_t u;

	if (!init) {
		fuzz_quiet();
		init = true;
	}
	path = fuzz_tmpfile(data, size, "migrate.conf", &dir);
	conf = smig_conf_load(path, NULL, &err);
	if (conf) {
		check_pairs(conf);
		smig_conf_free(conf);
	} else if (!err || !err->message[0]) {
		abort();	/* a refusal always says why */
	}
	g_clear_error(&err);

	/* The same bytes as slurm.conf, with no migrate.conf at all. */
	missing = g_build_filename(dir, "absent.conf", NULL);
	conf = smig_conf_load(missing, path, &err);
	if (!conf)
		abort();
	smig_conf_free(conf);
	g_free(missing);
	fuzz_tmpfile_remove(path, dir);

	text = fuzz_strndup(data, size);
	(void) smig_parse_duration(text, &u);
	(void) smig_parse_uint(text, 0, UINT32_MAX, &u);
	g_free(text);
	return 0;
}
