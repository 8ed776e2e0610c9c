/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_topo.h - slurmctld's switch tree (smigd_topo.c)
 */
#ifndef SMIGD_TOPO_H
#define SMIGD_TOPO_H

#include <stdbool.h>
#include <glib.h>

#include "smig_topology.h"

/*
 * smigd_topo_read - ask slurmctld for its switch tree (slurm_load_topo())
 * OUT tree  - the tree, caller smig_topology_unref()s; NULL when there is
 *             none or its records do not make one (then *error is set)
 * RET false with *error set if slurmctld did not answer
 */
bool smigd_topo_read(smig_topology_t **tree, GError **error);

#endif /* SMIGD_TOPO_H */
