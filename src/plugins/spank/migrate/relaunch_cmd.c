/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * relaunch_cmd.c - the srun side: what the relaunched srun is made of (its
 * hostfile, its words, its environment) and the wait for the old step
 *
 * relaunch.c talks to the balancer and execs; these helpers keep no state.
 */
#include "smig_config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <slurm/spank.h>

#include "slurm_compat.h"
#include "spank_migrate.h"

/* Before the exec: slurmctld must have seen the old step end. */
#define STEP_GONE_WAIT_MS	60000
#define HOSTFILE_PREFIX		"smig-hostfile."
#define DIST_ARBITRARY		"--distribution=arbitrary"

/* smig_relaunch_is_hostfile - a file relaunch.c wrote (by its name) */
bool smig_relaunch_is_hostfile(const char *path)
{
	const char *base;

	if (!path || path[0] != '/')
		return false;
	base = strrchr(path, '/') + 1;
	return g_str_has_prefix(base, HOSTFILE_PREFIX);
}

/*
 * smig_relaunch_check_hostfile - a RELAUNCH mapping: ntasks lines (or more:
 * srun ignores the rest), each the name of a node of the allocation
 * IN  alloc_nodes - the allocation's nodes (borrowed; NULL: none known)
 * OUT nnodes - distinct nodes the ntasks ranks run on
 * OUT errmsg - new text on failure, caller g_free()s
 */
bool smig_relaunch_check_hostfile(const char *text, uint32_t ntasks,
				  char *const *alloc_nodes, uint32_t *nnodes,
				  char **errmsg)
{
	char **lines = g_strsplit(text, "\n", -1);
	GHashTable *nodes = g_hash_table_new(g_str_hash, g_str_equal);
	uint32_t n = 0;
	bool ok = true;

	for (char **l = lines; *l && ok; l++) {
		if (!**l && !l[1])
			break;		/* the final newline */
		n++;
		if (n <= ntasks)
			g_hash_table_add(nodes, *l);
		if (!alloc_nodes || !g_strv_contains(
				(const char *const *) alloc_nodes, *l)) {
			*errmsg = g_strdup_printf("hostfile line %u: \"%s\" is not a node of the allocation (%s)",
						  n, *l,
						  getenv("SLURM_JOB_NODELIST"));
			ok = false;
		}
	}
	if (ok && n < ntasks) {
		*errmsg = g_strdup_printf("hostfile has %u lines for %u tasks",
					  n, ntasks);
		ok = false;
	}
	*nnodes = g_hash_table_size(nodes);
	g_hash_table_destroy(nodes);
	g_strfreev(lines);
	return ok;
}

/*
 * smig_relaunch_write_hostfile - text into a new file of ours, mode 0600
 * OUT errmsg - new text on failure, caller g_free()s
 * RET new path, caller g_free()s; NULL (errmsg set) on error
 */
char *smig_relaunch_write_hostfile(const char *text, char **errmsg)
{
	const char *tmp = getenv("TMPDIR");
	size_t len = strlen(text), off = 0;
	char *path;
	ssize_t w;
	int fd;

	if (!tmp || tmp[0] != '/')
		tmp = "/tmp";
	path = g_strdup_printf("%s/" HOSTFILE_PREFIX "XXXXXX", tmp);
	fd = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		*errmsg = g_strdup_printf("%s: cannot create: %s", path,
					  g_strerror(e));
		g_free(path);
		return NULL;
	}
	while (off < len) {
		w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;

			*errmsg = g_strdup_printf("%s: write: %s", path,
						  g_strerror(e));
			close(fd);
			unlink(path);
			g_free(path);
			return NULL;
		}
		off += w;
	}
	if ((len == 0 || text[len - 1] != '\n') && write(fd, "\n", 1) != 1) {
		*errmsg = g_strdup_printf("%s: write failed", path);
		close(fd);
		unlink(path);
		g_free(path);
		return NULL;
	}
	close(fd);
	return path;
}

/*
 * smig_relaunch_env_u64 - a number from the environment
 * RET false if absent or bad (logged)
 */
bool smig_relaunch_env_u64(const char *name, uint64_t *out)
{
	const char *v = getenv(name);
	char *end;

	if (!v || !*v)
		return false;
	errno = 0;
	*out = g_ascii_strtoull(v, &end, 10);
	if (errno || *end || v[0] == '-') {
		slurm_error("migrate: %s=%s: not a number, ignored", name, v);
		return false;
	}
	return true;
}

/*
 * smig_relaunch_pinned_nodes - the first of srun's own words (before the
 * application's NAPP words) that names nodes for the step (-w, --nodelist,
 * -F, --nodefile): srun ignores SLURM_HOSTFILE then, so a relaunch could
 * not place ranks where the balancer says
 * RET new string (the word), caller g_free()s; NULL if none
 */
char *smig_relaunch_pinned_nodes(unsigned napp)
{
	static const char *const opts[] = { "-w", "--nodelist", "-F",
					    "--nodefile" };
	gchar *buf = NULL, *found = NULL;
	GPtrArray *words = g_ptr_array_new();
	gsize len = 0, off;

	if (!g_file_get_contents("/proc/self/cmdline", &buf, &len, NULL))
		goto out;
	for (off = 0; off < len; off += strlen(buf + off) + 1)
		g_ptr_array_add(words, buf + off);
	for (guint i = 1; i + napp < words->len && !found; i++) {
		const char *w = words->pdata[i];

		for (size_t k = 0; k < G_N_ELEMENTS(opts) && !found; k++) {
			size_t l = strlen(opts[k]);

			/* "-w x", "-wx", "--nodelist=x", "--nodelist x" */
			if (!strncmp(w, opts[k], l) &&
			    (!w[l] || w[1] != '-' || w[l] == '='))
				found = g_strdup(w);
		}
	}
out:
	g_ptr_array_free(words, TRUE);
	g_free(buf);
	return found;
}

/*
 * smig_relaunch_argv - srun's own words (without the --exclude= of hot
 * spares that smig_relaunch_spares() added) with --nodes=K (the nodes of
 * the new mapping) and --distribution=arbitrary just before the application's
 * words (so that they override a -N or -m of the user); from Slurm 24.11
 * the user's -N goes and no --nodes is added (SMIG_SLURM_ARBITRARY_NODES)
 * IN app_argv - the application's words (borrowed)
 * IN nnodes   - the nodes of the new mapping
 * RET new vector, caller g_strfreev()s; NULL (logged) if the command line
 * does not end with the application's words
 */
char **smig_relaunch_argv(char *const *app_argv, uint32_t nnodes)
{
	guint napp = app_argv ? g_strv_length((char **) app_argv) : 0;
	GPtrArray *out;
	gchar *buf = NULL;
	gsize len = 0, off;
	GPtrArray *words = g_ptr_array_new();
	GError *err = NULL;
	char *spares;
	guint n, head;

	if (!g_file_get_contents("/proc/self/cmdline", &buf, &len, &err)) {
		slurm_error("migrate: %s", err->message);
		g_error_free(err);
		g_ptr_array_free(words, TRUE);
		return NULL;
	}
	for (off = 0; off < len; off += strlen(buf + off) + 1)
		g_ptr_array_add(words, buf + off);
	n = words->len;
	if (napp == 0 || n <= napp) {
		slurm_error("migrate: /proc/self/cmdline has %u words, the step has %u: cannot relaunch",
			    n, napp);
		goto out_fail;
	}
	head = n - napp;
	for (guint i = 0; i < napp; i++) {
		if (strcmp(words->pdata[head + i], app_argv[i])) {
			slurm_error("migrate: srun's command line does not end with the application's words (\"%s\" != \"%s\"): cannot relaunch",
				    (char *) words->pdata[head + i],
				    app_argv[i]);
			goto out_fail;
		}
	}
	/*
	 * A move may change the number of nodes (ranks 2,3 to a spare while
	 * 0,1 stay): --nodes=K overrides the user's -N, which srun would
	 * refuse ("Only allocated 2 nodes asked for 3"). Replace the pair an
	 * earlier move added instead of adding one more on every move.
	 * Slurm 24.11 refuses any -N with --distribution=arbitrary and takes
	 * the nodes from the hostfile: the user's -N goes, none is added.
	 */
	if (!strcmp(words->pdata[head - 1], DIST_ARBITRARY)) {
		head--;
		if (head > 1 && g_str_has_prefix(words->pdata[head - 1],
						 "--nodes="))
			head--;
	}
	/* The word smig_relaunch_spares() added: the hostfile may use them. */
	spares = getenv(SMIG_SPARES_ENV) ?
		 g_strconcat(SMIG_SPARES_EXCLUDE, getenv(SMIG_SPARES_ENV),
			     NULL) : NULL;
	out = g_ptr_array_new();
	for (guint i = 0; i < head; i++) {
		const char *w = words->pdata[i];

		if (i > 0 && spares && !strcmp(w, spares))
			continue;

		if (!SMIG_SLURM_ARBITRARY_NODES && i > 0 &&
		    (!strcmp(w, "-N") || !strcmp(w, "--nodes"))) {
			i++;	/* and its value */
			continue;
		}
		if (!SMIG_SLURM_ARBITRARY_NODES && i > 0 &&
		    (g_str_has_prefix(w, "-N") ||
		     g_str_has_prefix(w, "--nodes=")))
			continue;
		g_ptr_array_add(out, g_strdup(w));
	}
	if (SMIG_SLURM_ARBITRARY_NODES)
		g_ptr_array_add(out, g_strdup_printf("--nodes=%u", nnodes));
	g_ptr_array_add(out, g_strdup(DIST_ARBITRARY));
	head = n - napp;
	for (guint i = head; i < n; i++)
		g_ptr_array_add(out, g_strdup(words->pdata[i]));
	g_ptr_array_add(out, NULL);
	g_ptr_array_free(words, TRUE);
	g_free(buf);
	g_free(spares);
	return (char **) g_ptr_array_free(out, FALSE);

out_fail:
	g_ptr_array_free(words, TRUE);
	g_free(buf);
	return NULL;
}

/*
 * smig_relaunch_env - the environment of slurm_spank_init, without what
 * srun set or an earlier move left, with the new mapping and generation
 * IN base     - the environment of slurm_spank_init (borrowed)
 * IN hostfile - the new mapping's file
 * IN gen      - the generation the new step restores
 * IN step_id  - the step that ends (SLURM_MIGRATE_PREV_STEP)
 * IN next_try - the relaunch watchdog's next try, 0: a new move
 * RET new vector, caller g_strfreev()s
 */
char **smig_relaunch_env(char *const *base, const char *hostfile,
			 uint64_t gen, uint32_t step_id, uint32_t next_try)
{
	static const char *const drop[] = {
		"SLURM_NTASKS_PER_NODE", "SLURM_DISTRIBUTION",
		"SLURM_STEP_ID", "SLURM_STEPID", "SLURM_HOSTFILE",
		"SLURM_MIGRATE_RESTORE_GEN", "SLURM_MIGRATE_PREV_STEP",
		"SLURM_MIGRATE_RELAUNCH_TRY", "SLURM_MIGRATE_RESTORE_TRY",
	};
	char **env = g_strdupv((char **) base);
	char num[32];

	for (size_t i = 0; i < G_N_ELEMENTS(drop); i++)
		env = g_environ_unsetenv(env, drop[i]);
	env = g_environ_setenv(env, "SLURM_HOSTFILE", hostfile, TRUE);
	snprintf(num, sizeof(num), "%" PRIu64, gen);
	env = g_environ_setenv(env, "SLURM_MIGRATE_RESTORE_GEN", num, TRUE);
	snprintf(num, sizeof(num), "%u", step_id);
	env = g_environ_setenv(env, "SLURM_MIGRATE_PREV_STEP", num, TRUE);
	/* The relaunch watchdog's next try of the same relaunch. */
	if (next_try) {
		snprintf(num, sizeof(num), "%u", next_try);
		env = g_environ_setenv(env, "SLURM_MIGRATE_RESTORE_TRY", num,
				       TRUE);
	}
	return env;
}

/*
 * smig_relaunch_wait_step_gone - wait (at most STEP_GONE_WAIT_MS) until
 * slurmctld no longer lists the step that ended. Its resources are free then, so the new
 * step is not refused: right after a restart, slurmctld recovers the old
 * step from its state file and refuses a step on its nodes ("Memory
 * required by task is not available") instead of deferring it.
 */
void smig_relaunch_wait_step_gone(uint32_t job_id, uint32_t step_id)
{
	gint64 start = g_get_monotonic_time();
	gint64 end = start + 1000 * (gint64) STEP_GONE_WAIT_MS;
	job_step_info_response_msg_t *resp;
	int rc, e, polls = 0;

	for (;;) {
		resp = NULL;
		rc = smig_slurm_get_step(job_id, step_id, &resp);
		e = errno;
		if (rc == 0 && resp && resp->job_step_count == 0) {
			slurm_free_job_step_info_response_msg(resp);
			break;
		}
		if (resp)
			slurm_free_job_step_info_response_msg(resp);
		if (rc != 0 && e == ESLURM_INVALID_JOB_ID)
			break;
		if (g_get_monotonic_time() >= end) {
			slurm_error("migrate: JobId=%u StepId=%u: slurmctld still lists the step after %u s (%s); relaunching anyway",
				    job_id, step_id,
				    STEP_GONE_WAIT_MS / 1000,
				    rc ? slurm_strerror(e) :
				    "step listed");
			return;
		}
		polls++;
		g_usleep(rc ? 500000 : 50000);
	}
	if (polls)
		slurm_verbose("migrate: JobId=%u StepId=%u: slurmctld saw the step end after %" G_GINT64_FORMAT " ms",
			      job_id, step_id,
			      (g_get_monotonic_time() - start) / 1000);
}
