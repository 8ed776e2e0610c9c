/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spares.c - spares=N on the srun side: srun launches the step without the
 * allocation's last N nodes (hot spares), by executing itself again with
 * --nodes and --exclude before the step exists (relaunch.c does the exec)
 */
#include "smig_config.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <slurm/spank.h>

#include "smig_hostlist.h"
#include "smig_request.h"
#include "spank_migrate.h"

/*
 * srun's options as srun parsed them (opt.c): its global "opt" and
 * libslurmfull's accessors, looked up at run time (the plugin links no
 * Slurm library; only srun has them). srun gives its words to no SPANK
 * item before the step exists, and spares= must change them before.
 */
typedef bool (*set_by_cli_fn)(void *opt, int optval);
typedef bool (*isset_fn)(void *opt, const char *name);
typedef char *(*get_fn)(void *opt, const char *name);
typedef void (*xfree_fn)(void *ptr);

/*
 * user_node_opts - what the user told srun about nodes: its -N (srun's text
 * "2" or "2-3", NULL if none was given on the command line) and the first
 * option that names or leaves out nodes (-w, --nodefile, -x), if any
 * OUT nodes - new string, caller g_free()s
 * OUT pin   - static option name, NULL if none
 * RET false (logged) when srun's options cannot be read
 */
static bool user_node_opts(char **nodes, const char **pin)
{
	void *opt = dlsym(RTLD_DEFAULT, "opt");
	set_by_cli_fn by_cli = (set_by_cli_fn) dlsym(RTLD_DEFAULT,
						     "slurm_option_set_by_cli");
	isset_fn isset = (isset_fn) dlsym(RTLD_DEFAULT, "slurm_option_isset");
	get_fn get = (get_fn) dlsym(RTLD_DEFAULT, "slurm_option_get");
	xfree_fn xfree_ptr = (xfree_fn) dlsym(RTLD_DEFAULT,
					      "slurm_xfree_ptr");
	char *v;

	*nodes = NULL;
	*pin = NULL;
	if (!opt || !by_cli || !isset || !get || !xfree_ptr) {
		slurm_error("migrate: --migrate=%s: spares=%u: cannot read srun's options (srun's opt or libslurmfull's slurm_option_* not found)",
			    smig_spank.req_text, smig_spank.req.spares);
		return false;
	}
	if (by_cli(opt, 'w'))
		*pin = "-w/--nodelist";
	else if (isset(opt, "nodefile"))
		*pin = "-F/--nodefile";
	else if (by_cli(opt, 'x'))
		*pin = "-x/--exclude";
	if (by_cli(opt, 'N') && (v = get(opt, "nodes"))) {
		*nodes = g_strdup(v);
		xfree_ptr(v);
	}
	return true;
}

/*
 * smig_relaunch_spares - see spank_migrate.h. srun's words with
 * --nodes=K-N (unless the user gave -N) and --exclude=SPARES after its
 * first word (the user gave neither -w nor -x, so nothing overrides them),
 * SLURM_MIGRATE_SPARES=SPARES in the environment of slurm_spank_init: the
 * new srun sees it and launches, and a relaunch drops the --exclude
 * (smig_relaunch_argv()).
 */
int smig_relaunch_spares(void)
{
	const char *nodelist = getenv("SLURM_JOB_NODELIST");
	char **alloc = NULL, **argv = NULL, **env = NULL, *user_nodes = NULL;
	char *spares = NULL;
	const char *pin;
	uint32_t nnodes = 0;
	GError *err = NULL;
	GPtrArray *words;
	gchar *buf = NULL;
	gsize len = 0, off;
	sigset_t old;
	int sig;

	if (!smig_spank.req.spares || getenv(SMIG_SPARES_ENV))
		return 0;
	if (smig_spank.conf && smig_spank.conf->image_store_local) {
		slurm_error("migrate: --migrate=%s: spares=%u needs a shared MigrateImageDir: with MigrateImageStore=local an image is handed only to a node where the step runs, and a hot spare runs none of it",
			    smig_spank.req_text, smig_spank.req.spares);
		return -1;
	}
	if (!user_node_opts(&user_nodes, &pin))
		return -1;
	if (pin) {
		slurm_error("migrate: --migrate=%s: spares=%u cannot be combined with %s: srun leaves the allocation's last %u node%s out of the step itself",
			    smig_spank.req_text, smig_spank.req.spares, pin,
			    smig_spank.req.spares,
			    smig_spank.req.spares == 1 ? "" : "s");
		goto out;
	}
	if (!(alloc = smig_hostlist_expand(nodelist, &err)) ||
	    !smig_request_spares(&smig_spank.req, alloc, user_nodes, &nnodes,
				 &spares, &err)) {
		slurm_error("migrate: --migrate=%s: %s", smig_spank.req_text,
			    err->message);
		g_error_free(err);
		goto out;
	}
	if (!g_file_get_contents("/proc/self/cmdline", &buf, &len, &err)) {
		slurm_error("migrate: spares=%u: %s", smig_spank.req.spares,
			    err->message);
		g_error_free(err);
		goto out;
	}
	words = g_ptr_array_new();
	for (off = 0; off < len; off += strlen(buf + off) + 1) {
		g_ptr_array_add(words, g_strdup(buf + off));
		if (off)
			continue;
		if (nnodes)
			g_ptr_array_add(words,
					g_strdup_printf("--nodes=%u", nnodes));
		g_ptr_array_add(words, g_strdup_printf(SMIG_SPARES_EXCLUDE "%s",
						       spares));
	}
	g_ptr_array_add(words, NULL);
	argv = (char **) g_ptr_array_free(words, FALSE);
	env = g_environ_setenv(g_strdupv(smig_relaunch_environ()),
			       SMIG_SPARES_ENV, spares, TRUE);
	slurm_verbose("migrate: spares=%u: launching the step without %s (hot spares)",
		      smig_spank.req.spares, spares);

	if ((sig = smig_relaunch_block_term(&old))) {
		slurm_error("migrate: signal %s arrived: not launching the step",
			    strsignal(sig));
		sigprocmask(SIG_SETMASK, &old, NULL);
		goto out;
	}
	smig_relaunch_exec_srun(argv, env);
	slurm_error("migrate: spares=%u: cannot exec /proc/self/exe (srun): %s",
		    smig_spank.req.spares, g_strerror(errno));
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	g_strfreev(alloc);
	g_strfreev(argv);
	g_strfreev(env);
	g_free(user_nodes);
	g_free(spares);
	g_free(buf);
	return -1;
}
