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

/* The switch tree smigd keeps, and when it last read or checked it. */
typedef struct smigd_topo_cache smigd_topo_cache_t;

smigd_topo_cache_t *smigd_topo_cache_new(void);

/* smigd_topo_cache_free - NULL is a no-op */
void smigd_topo_cache_free(smigd_topo_cache_t *c);

/*
 * smigd_topo_cache_reload - read the tree now (smigd_topo_read()); a failed
 * read keeps the tree read before, and logs it
 */
void smigd_topo_cache_reload(smigd_topo_cache_t *c);

/*
 * smigd_topo_cache_due - whether the tree was never read or last read or
 * checked at least every_us ago; if so, the check counts as made now
 * OUT never - the tree was never read
 */
bool smigd_topo_cache_due(smigd_topo_cache_t *c, int64_t every_us,
			  bool *never);

/* smigd_topo_cache_ref - the tree (NULL: flat), caller smig_topology_unref()s */
smig_topology_t *smigd_topo_cache_ref(smigd_topo_cache_t *c);

#endif /* SMIGD_TOPO_H */
