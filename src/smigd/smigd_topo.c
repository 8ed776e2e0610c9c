/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_topo.c - slurmctld's switch tree through libslurm's public API, for
 * smigd_slurm.c (which keeps it and decides when to read it again)
 */
#include "smig_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "smig_error.h"
#include "smig_topology.h"
#include "smigd_topo.h"

/*
 * The switch tree through the public API: 22.05 and 23.02 give the records
 * (topo_info_response_msg_t.topo_array: name, nodes, switches); from 23.11
 * the records are the topology plugin's own data (topo_info, opaque) and
 * only slurm_print_topo_info_msg() reads them, in the text "SwitchName=s0
 * Level=0 LinkSpeed=1 Nodes=..." that smig_topology_parse() reads (the
 * tree plugin's; another plugin's text, such as topology/block's, is
 * refused there: flat). 25.05 adds the topology's name to slurm_load_topo()
 * (NULL: the default one) and 26.05's print takes a unit.
 */
#define TOPO_RECORDS (SLURM_VERSION_NUMBER < SLURM_VERSION_NUM(23, 11, 0))

static int load_topo(topo_info_response_msg_t **msg)
{
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 5, 0)
	return slurm_load_topo(msg, NULL);
#else
	return slurm_load_topo(msg);
#endif
}

/*
 * The tree of a slurm_load_topo() answer. RET new tree, NULL with *error
 * set when the records do not make one
 */
static smig_topology_t *topo_from_msg(topo_info_response_msg_t *msg,
				      GError **error)
{
#if TOPO_RECORDS
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
#else
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	smig_topology_t *t;

	if (!f) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "open_memstream: %s", g_strerror(errno));
		return NULL;
	}
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 5, 0)
	slurm_print_topo_info_msg(f, msg, NULL, NULL, 0);
#else
	slurm_print_topo_info_msg(f, msg, NULL, 0);
#endif
	fclose(f);
	t = smig_topology_parse(text ? text : "", "slurm_print_topo_info_msg",
				error);
	free(text);
	return t;
#endif
}

/* smigd_topo_read - see smigd_topo.h */
bool smigd_topo_read(smig_topology_t **tree, GError **error)
{
	topo_info_response_msg_t *msg = NULL;

	*tree = NULL;
	if (load_topo(&msg) != SLURM_SUCCESS) {
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
