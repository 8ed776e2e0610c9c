/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_common.h - helpers shared by the libFuzzer harnesses
 */
#ifndef SMIG_FUZZ_COMMON_H
#define SMIG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_log.h"

/* The core logs through smig_log(); a fuzzer wants silence. */
static void fuzz_quiet_sink(smig_log_level_t level, const char *msg)
{
	(void) level;
	(void) msg;
}

static inline void fuzz_quiet(void)
{
	smig_log_set_sink(fuzz_quiet_sink, SMIG_LOG_ERROR);
}

/*
 * fuzz_strndup - the input as a NUL-terminated string
 * RET new string, caller frees with g_free(); the input may contain NULs,
 *     which end the string early as they would in argv or a file line
 */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	return g_strndup((const char *) data, size);
}

/*
 * fuzz_tmpfile - write the input to a new file in a private directory
 * OUT dirp - directory to remove with fuzz_tmpfile_remove(); caller frees
 * RET path, caller frees with g_free(); aborts on failure (not an input bug)
 */
static inline char *fuzz_tmpfile(const uint8_t *data, size_t size,
				 const char *name, char **dirp)
{
	GError *err = NULL;
	char *dir = g_dir_make_tmp("smig-fuzz-XXXXXX", &err);
	char *path;

	if (!dir)
		abort();
	path = g_build_filename(dir, name, NULL);
	if (!g_file_set_contents(path, (const char *) data, size, &err))
		abort();
	*dirp = dir;
	return path;
}

static inline void fuzz_tmpfile_remove(char *path, char *dir)
{
	(void) remove(path);
	(void) remove(dir);
	g_free(path);
	g_free(dir);
}

#endif /* SMIG_FUZZ_COMMON_H */
