/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_images.c - "smig images [--reclaim]": the job directories of the
 * image store this host sees, with their size, how the job stands (the
 * balancer asks slurmctld: FATE_QUERY) and what the policy does with them
 * (doc/images.md, "When a job ends"); --reclaim (root) applies the policy
 * to every directory now, as the nodes' epilogs do for the jobs that end.
 */
#include "smig_config.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>

#include "smig_conf.h"
#include "smig_lifecycle.h"
#include "smig_log.h"

int smig_cmd_images(int argc, char **argv);

static void images_usage(FILE *f)
{
	fprintf(f, "Usage: smig images [--reclaim]\n"
		"List the job directories of the image store (MigrateImageDir): size, the\n"
		"job's state, what happens to them and when. --reclaim (root): remove now\n"
		"what the policy removes (completed jobs; ended ones after MigrateImageKeep).\n");
}

/*
 * SlurmUser's uid from slurm.conf (the balancer runs as it or as root);
 * 0 when it is not set or unknown
 */
static uint32_t slurm_user_uid(const char *slurm_conf)
{
	char *text = NULL, **lines;
	uint32_t uid = 0;

	if (!g_file_get_contents(slurm_conf, &text, NULL, NULL))
		return 0;
	lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		char *line = g_strstrip(*l), *eq = strchr(line, '=');
		struct passwd *pw;

		if (!eq || g_ascii_strncasecmp(line, "SlurmUser", 9) ||
		    eq != line + 9)
			continue;
		eq = g_strstrip(eq + 1);
		eq[strcspn(eq, " \t#")] = '\0';
		if ((pw = getpwnam(eq)))
			uid = pw->pw_uid;
	}
	g_strfreev(lines);
	g_free(text);
	return uid;
}

/* The store roots: (node, path) pairs; node "-" for a shared store. */
static GPtrArray *store_roots(const smig_conf_t *conf)
{
	GPtrArray *roots = g_ptr_array_new_with_free_func(g_free);
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (!conf->image_store_local) {
		g_ptr_array_add(roots, g_strdup("-"));
		g_ptr_array_add(roots, g_strdup(conf->image_dir));
		return roots;
	}
	if (!(d = opendir(conf->image_dir)))
		return roots;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != 0)
			continue;
		g_ptr_array_add(roots, g_strdup(e->d_name));
		g_ptr_array_add(roots, g_strdup_printf("%s/%s",
						       conf->image_dir,
						       e->d_name));
	}
	closedir(d);
	return roots;
}

/* One line per job directory of root; false if the balancer did not answer. */
static bool list_root(const char *node, const char *root,
		      smig_fate_client_t *c)
{
	int64_t now = (int64_t) time(NULL);
	GArray *jobs = smig_store_jobs(root);
	bool answered = true;

	for (guint i = 0; jobs && i < jobs->len; i++) {
		uint32_t job = g_array_index(jobs, uint32_t, i);
		smig_job_facts_t f;
		smig_keep_mark_t mark;
		GError *err = NULL;
		int64_t until = 0, end = 0;
		uint64_t bytes;
		char size[32] = "?", when[32] = "-";
		const char *what;
		bool marked = smig_store_read_mark(root, job, &mark);

		if (smig_store_job_bytes(root, job, &bytes))
			snprintf(size, sizeof(size), "%" PRIu64, bytes);
		if (!smig_fate_ask(c, job, &f, &err)) {
			printf("%-10u %-12s %14s %-24s %-10s %s\n", job, node,
			       size, "?", "keep", err->message);
			g_error_free(err);
			answered = false;
			continue;
		}
		end = f.phase != SMIG_JOB_UNKNOWN ? f.end_time :
		      smig_store_end_guess(root, job, marked ? &mark : NULL);
		what = smig_fate_name(smig_image_fate(f.phase, end,
						      c->conf->image_keep_s,
						      c->conf->image_keep_completed_s,
						      now, &until));
		if (until)
			smig_format_time(until, when, sizeof(when));
		printf("%-10u %-12s %14s %-24s %-10s %s\n", job, node, size,
		       f.state, what, when);
	}
	if (jobs)
		g_array_free(jobs, TRUE);
	return answered;
}

int smig_cmd_images(int argc, char **argv)
{
	const char *env = getenv("SLURM_CONF");
	char *slurm_conf = g_strdup(env && *env ? env :
				    "/etc/slurm/slurm.conf");
	char *path = smig_conf_path_beside(slurm_conf);
	bool reclaim = false;
	smig_fate_client_t c;
	GPtrArray *roots;
	GError *err = NULL;
	smig_conf_t *conf;
	uint64_t freed = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reclaim")) {
			reclaim = true;
		} else if (!strcmp(argv[i], "--help") ||
			   !strcmp(argv[i], "-h")) {
			images_usage(stdout);
			goto out_path;
		} else {
			fprintf(stderr, "smig images: %s: unknown argument\n",
				argv[i]);
			images_usage(stderr);
			rc = 2;
			goto out_path;
		}
	}
	if (reclaim && geteuid() != 0) {
		fprintf(stderr, "smig images --reclaim: run it as root (it removes directories from MigrateImageDir, owned by root)\n");
		rc = 1;
		goto out_path;
	}
	if (!(conf = smig_conf_load(path, slurm_conf, &err))) {
		fprintf(stderr, "smig: %s\n", err->message);
		g_error_free(err);
		rc = 1;
		goto out_path;
	}
	smig_fate_client_init(&c, conf, slurm_user_uid(slurm_conf));
	roots = store_roots(conf);
	if (reclaim) {
		for (guint i = 0; i + 1 < roots->len; i += 2)
			freed += smig_store_sweep(roots->pdata[i + 1],
						  roots->pdata[i], &c, 0,
						  true, G_MAXUINT);
		printf("reclaimed %" PRIu64 " bytes\n", freed);
	}
	printf("%-10s %-12s %14s %-24s %-10s %s\n", "JOBID", "NODE", "BYTES",
	       "STATE", "POLICY", "UNTIL");
	for (guint i = 0; i + 1 < roots->len; i += 2)
		if (!list_root(roots->pdata[i], roots->pdata[i + 1], &c))
			rc = 1;
	g_ptr_array_free(roots, TRUE);
	smig_fate_client_close(&c);
	smig_conf_free(conf);
out_path:
	g_free(path);
	g_free(slurm_conf);
	return rc;
}
