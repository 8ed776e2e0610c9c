/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_topo.c - slurmctld's switch tree through libslurm's public API, and
 * the copy smigd keeps (smigd_slurm.c decides when to read it again)
 */
#include "smig_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "smig_error.h"
#include "smig_log.h"
#include "smig_topology.h"
#include "smigd_topo.h"

/*
 * The switch tree through the public API: 22.05 and 23.02 give the records
 * (topo_info_response_msg_t.topo_array: name, nodes, switches). From 23.11
 * the records are the topology plugin's own data, which only the plugin
 * unpacks, and the plugin cannot be loaded into a program linked with the
 * public libslurm.so: topology_tree.so wants symbols (topo_conf) that only
 * libslurmfull, Slurm's own programs' library, exports, so 24.11's
 * slurm_load_topo() fails to unpack ("cannot find topo plugin for
 * topology/tree") and then crashes smigd. There the tree comes from
 * `scontrol show topology` (Slurm's own program: its text "SwitchName=s0
 * Level=0 LinkSpeed=1 Nodes=..." is what smig_topology_parse() reads), and
 * only with TopologyPlugin=topology/tree (any other plugin: flat, without
 * asking; topology/block's text is no switch tree).
 */
#define TOPO_RECORDS (SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(23, 11, 0))

#if TOPO_RECORDS
static smig_topology_t *topo_from_msg(topo_info_response_msg_t *msg,
				      GError **error)
{
	smig_topology_switch_t *sw = g_new0(smig_topology_switch_t,
					    msg->record_count + 1);
	smig_topology_t *t;

	for (uint32_t i = 0; i < msg->record_count; i++) {
		sw[i].name = msg->topo_array[i].name;
		sw[i].nodes = msg->topo_array[i].nodes;
		sw[i].switches = msg->topo_array[i].switches;
	}
	t = smig_topology_from_switches(sw, msg->record_count,
					"slurm_load_topo", error);
	g_free(sw);
	return t;
}

/* smigd_topo_read - see smigd_topo.h */
bool smigd_topo_read(smig_topology_t **tree, GError **error)
{
	topo_info_response_msg_t *msg = NULL;

	*tree = NULL;
	if (slurm_load_topo(&msg) != SLURM_SUCCESS) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "slurm_load_topo: %s", slurm_strerror(errno));
		return false;
	}
	if (msg) {
		*tree = topo_from_msg(msg, error);
		slurm_free_topo_info_msg(msg);
	}
	return true;
}
#else
/* Whether slurmctld runs topology/tree; false with *error if it does not
 * answer. */
static bool topo_is_tree(bool *tree, GError **error)
{
	slurm_conf_t *ctl = NULL;

	if (slurm_load_ctl_conf((time_t) 0, &ctl) != SLURM_SUCCESS) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "slurm_load_ctl_conf: %s", slurm_strerror(errno));
		return false;
	}
	*tree = !g_strcmp0(ctl->topology_plugin, "topology/tree");
#if HAVE_DECL_SLURM_FREE_CTL_CONF
	slurm_free_ctl_conf(ctl);
#else
	slurm_free_conf(ctl);	/* 26.05 */
#endif
	return true;
}

/* smigd_topo_read - see smigd_topo.h */
bool smigd_topo_read(smig_topology_t **tree, GError **error)
{
	char *argv[] = { (char *) SMIG_SCONTROL, "show", "topology", NULL };
	char *out = NULL, *err = NULL;
	GError *e = NULL;
	bool is_tree;
	int status;

	*tree = NULL;
	if (!topo_is_tree(&is_tree, error))
		return false;
	if (!is_tree)
		return true;
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
			  &out, &err, &status, &e)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s show topology: %s", SMIG_SCONTROL, e->message);
		g_error_free(e);
		return false;
	}
	if (!g_spawn_check_wait_status(status, &e)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "%s show topology: %s: %s", SMIG_SCONTROL,
			    e->message, g_strstrip(err));
		g_error_free(e);
		g_free(out);
		g_free(err);
		return false;
	}
	*tree = smig_topology_parse(out, SMIG_SCONTROL " show topology",
				    error);
	g_free(out);
	g_free(err);
	return true;
}
#endif

/* ------------------------------------------------------------ the cache */

struct smigd_topo_cache {
	GMutex lock;
	smig_topology_t *topo;	/* NULL: one flat network */
	int64_t checked;	/* monotonic us of the last read or check, 0: never */
};

smigd_topo_cache_t *smigd_topo_cache_new(void)
{
	smigd_topo_cache_t *c = g_new0(smigd_topo_cache_t, 1);

	g_mutex_init(&c->lock);
	return c;
}

void smigd_topo_cache_free(smigd_topo_cache_t *c)
{
	if (!c)
		return;
	smig_topology_unref(c->topo);
	g_mutex_clear(&c->lock);
	g_free(c);
}

void smigd_topo_cache_reload(smigd_topo_cache_t *c)
{
	smig_topology_t *t = NULL;
	GError *err = NULL;
	bool had;

	g_mutex_lock(&c->lock);
	c->checked = g_get_monotonic_time();
	had = c->topo != NULL;
	g_mutex_unlock(&c->lock);
	if (!smigd_topo_read(&t, &err)) {
		/* The tree known so far stands. */
		smig_error("%s: switch tree not read, %s", err->message,
			   had ? "the one read before stands" :
			   "one flat network until it is");
		g_error_free(err);
		return;
	}
	if (!t && err) {
		smig_error("switch tree: %s: one flat network", err->message);
		g_error_free(err);
	}
	if (t && !smig_topology_levels(t))
		g_clear_pointer(&t, smig_topology_unref);
	if (t)
		smig_info("switch tree: %u switches in %u levels",
			  smig_topology_switches(t), smig_topology_levels(t));
	else
		smig_info("switch tree: none (one flat network)");
	g_mutex_lock(&c->lock);
	smig_topology_unref(c->topo);
	c->topo = t;
	g_mutex_unlock(&c->lock);
}

bool smigd_topo_cache_due(smigd_topo_cache_t *c, int64_t every_us,
			  bool *never)
{
	int64_t now = g_get_monotonic_time();
	bool due;

	g_mutex_lock(&c->lock);
	*never = !c->checked;
	due = *never || now - c->checked >= every_us;
	if (due)
		c->checked = now;
	g_mutex_unlock(&c->lock);
	return due;
}

smig_topology_t *smigd_topo_cache_ref(smigd_topo_cache_t *c)
{
	smig_topology_t *t;

	g_mutex_lock(&c->lock);
	t = smig_topology_ref(c->topo);
	g_mutex_unlock(&c->lock);
	return t;
}
