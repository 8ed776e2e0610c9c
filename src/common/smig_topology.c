/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_topology.c - switch tree from topology.conf text or Slurm's switch
 * records, distance costs for the policy engine
 */
#include "smig_config.h"

#include <string.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_hostlist.h"
#include "smig_topology.h"

#define NO_PARENT UINT32_MAX

typedef struct {
	char *name;
	uint32_t line;		/* where it is defined */
	char *children;		/* Switches= expression, NULL: none */
	uint32_t parent;
	uint32_t level;
	int state;		/* level computation: 0 new, 1 busy, 2 done */
} sw_t;

struct smig_topology {
	gint refs;		/* smig_topology_ref(): any thread */
	GArray *sw;		/* of sw_t */
	GHashTable *by_name;	/* switch name -> index + 1 */
	GHashTable *node_sw;	/* node name -> leaf switch index + 1 */
	GHashTable *above;	/* nodes placed by a switch with child
				 * switches: a switch below it may claim
				 * them (Slurm's records list every node
				 * below a switch in its Nodes=) */
	uint32_t nlevels;
};

/* smig_topology_ref - one more reference to a tree. RET topo */
smig_topology_t *smig_topology_ref(smig_topology_t *topo)
{
	if (topo)
		g_atomic_int_inc(&topo->refs);
	return topo;
}

/* smig_topology_unref - drop a reference; the last frees; NULL: no-op */
void smig_topology_unref(smig_topology_t *topo)
{
	if (!topo || !g_atomic_int_dec_and_test(&topo->refs))
		return;
	for (guint i = 0; i < topo->sw->len; i++) {
		sw_t *s = &g_array_index(topo->sw, sw_t, i);

		g_free(s->name);
		g_free(s->children);
	}
	g_array_unref(topo->sw);
	g_hash_table_unref(topo->by_name);
	g_hash_table_unref(topo->node_sw);
	g_hash_table_unref(topo->above);
	g_free(topo);
}

/* Level of switch i; false on a cycle. */
static bool sw_level(smig_topology_t *t, uint32_t i, const char *path,
		     GError **error)
{
	sw_t *s = &g_array_index(t->sw, sw_t, i);

	if (s->state == 2)
		return true;
	if (s->state == 1) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s:%u: SwitchName=%s: switch is its own ancestor",
			    path, s->line, s->name);
		return false;
	}
	s->state = 1;
	s->level = 0;
	for (guint c = 0; c < t->sw->len; c++) {
		sw_t *child = &g_array_index(t->sw, sw_t, c);

		if (child->parent != i)
			continue;
		if (!sw_level(t, c, path, error))
			return false;
		s = &g_array_index(t->sw, sw_t, i);
		s->level = MAX(s->level, child->level + 1);
	}
	s->state = 2;
	return true;
}

/*
 * Add switch name with its child switches and nodes (hostlist expressions,
 * NULL: none); where:line names it in messages. Parents are resolved later
 * (topo_finish()).
 */
static bool add_switch(smig_topology_t *t, const char *name,
		       const char *switches, const char *nodes,
		       const char *path, uint32_t lineno, GError **error)
{
	if (!name || !*name) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s:%u: no SwitchName=", path, lineno);
		return false;
	}
	if (g_hash_table_contains(t->by_name, name)) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s:%u: SwitchName=%s: defined twice", path,
			    lineno, name);
		return false;
	}
	{
		sw_t s = { g_strdup(name), lineno,
			   switches && *switches ? g_strdup(switches) : NULL,
			   NO_PARENT, 0, 0 };

		g_array_append_val(t->sw, s);
		g_hash_table_insert(t->by_name, s.name,
				    GUINT_TO_POINTER(t->sw->len));
	}
	if (nodes && *nodes) {
		char **names = smig_hostlist_expand(nodes, error);

		if (!names) {
			g_prefix_error(error, "%s:%u: Nodes=%s: ", path, lineno,
				       nodes);
			return false;
		}
		for (char **n = names; *n; n++) {
			gpointer old = g_hash_table_lookup(t->node_sw, *n);
			bool parent = switches && *switches;

			/*
			 * Slurm fills the Nodes= of a switch above others
			 * with every node below it (topology/tree's
			 * _validate_switches(), in slurm_load_topo()'s
			 * records and their printed form): the lowest
			 * switch that lists a node places it, in whatever
			 * order the records come.
			 */
			if (old && parent)
				continue;
			if (old && !parent &&
			    g_hash_table_remove(t->above, *n))
				old = NULL;
			if (old) {
				g_set_error(error, SMIG_ERROR,
					    SMIG_ERROR_CONFIG,
					    "%s:%u: Nodes=%s: node %s is already under switch %s",
					    path, lineno, nodes, *n,
					    g_array_index(t->sw, sw_t,
							  GPOINTER_TO_UINT(old) - 1).name);
				g_strfreev(names);
				return false;
			}
			g_hash_table_insert(t->node_sw, g_strdup(*n),
					    GUINT_TO_POINTER(t->sw->len));
			if (parent)
				g_hash_table_add(t->above, g_strdup(*n));
		}
		g_strfreev(names);
	}
	return true;
}

static bool parse_line(smig_topology_t *t, char *line, const char *path,
		       uint32_t lineno, GError **error)
{
	char **tok = g_strsplit_set(line, " \t", -1);
	char *name = NULL, *switches = NULL, *nodes = NULL;
	bool ok = false;

	for (char **p = tok; *p; p++) {
		char *eq;

		if (!**p)
			continue;
		eq = strchr(*p, '=');
		if (!eq || eq == *p || !eq[1]) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s: not key=value", path, lineno,
				    *p);
			goto out;
		}
		*eq = '\0';
		if (!g_ascii_strcasecmp(*p, "SwitchName") && !name) {
			name = eq + 1;
		} else if (!g_ascii_strcasecmp(*p, "Switches") && !switches) {
			switches = eq + 1;
		} else if (!g_ascii_strcasecmp(*p, "Nodes") && !nodes) {
			nodes = eq + 1;
		} else if (!g_ascii_strcasecmp(*p, "LinkSpeed") ||
			   !g_ascii_strcasecmp(*p, "Level")) {
			/*
			 * Slurm ignores LinkSpeed too; Level is in what
			 * slurm_print_topo_info_msg() prints, and computed
			 * here again.
			 */
		} else {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
				    "%s:%u: %s=%s: unknown or repeated key (SwitchName, Switches, Nodes, LinkSpeed, Level)",
				    path, lineno, *p, eq + 1);
			goto out;
		}
	}
	ok = add_switch(t, name, switches, nodes, path, lineno, error);
out:
	g_strfreev(tok);
	return ok;
}

static smig_topology_t *topo_new(void)
{
	smig_topology_t *t = g_new0(smig_topology_t, 1);

	t->refs = 1;
	t->sw = g_array_new(false, false, sizeof(sw_t));
	t->by_name = g_hash_table_new(g_str_hash, g_str_equal);
	t->node_sw = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   NULL);
	t->above = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					 NULL);
	return t;
}

/*
 * Every switch added: link each to its parent (each Switches= names
 * existing switches, each only once) and compute the levels.
 */
static bool topo_finish(smig_topology_t *t, const char *path, GError **error)
{
	for (guint i = 0; i < t->sw->len; i++) {
		sw_t *s = &g_array_index(t->sw, sw_t, i);
		char **names;

		if (!s->children)
			continue;
		names = smig_hostlist_expand(s->children, error);
		if (!names) {
			g_prefix_error(error, "%s:%u: Switches=%s: ", path,
				       s->line, s->children);
			return false;
		}
		for (char **n = names; *n; n++) {
			guint c = GPOINTER_TO_UINT(g_hash_table_lookup(
				t->by_name, *n));
			sw_t *child;

			if (!c) {
				g_set_error(error, SMIG_ERROR,
					    SMIG_ERROR_CONFIG,
					    "%s:%u: Switches=%s: no switch named %s",
					    path, s->line, s->children, *n);
				g_strfreev(names);
				return false;
			}
			child = &g_array_index(t->sw, sw_t, c - 1);
			if (child->parent != NO_PARENT) {
				g_set_error(error, SMIG_ERROR,
					    SMIG_ERROR_CONFIG,
					    "%s:%u: Switches=%s: switch %s is already under switch %s",
					    path, s->line, s->children, *n,
					    g_array_index(t->sw, sw_t,
							  child->parent).name);
				g_strfreev(names);
				return false;
			}
			child->parent = i;
		}
		g_strfreev(names);
	}
	for (guint i = 0; i < t->sw->len; i++) {
		if (!sw_level(t, i, path, error))
			return false;
		t->nlevels = MAX(t->nlevels,
				 g_array_index(t->sw, sw_t, i).level + 1);
	}
	return true;
}

/*
 * smig_topology_parse - read the switch tree of a topology.conf text
 * RET new tree, caller smig_topology_unref()s; NULL on error
 */
smig_topology_t *smig_topology_parse(const char *text, const char *path,
				     GError **error)
{
	smig_topology_t *t = topo_new();
	char **lines = g_strsplit(text, "\n", -1);
	uint32_t lineno = 0;

	for (char **l = lines; *l; l++) {
		char *hash = strchr(*l, '#');

		lineno++;
		if (hash)
			*hash = '\0';
		g_strstrip(*l);
		if (**l && !parse_line(t, *l, path, lineno, error))
			goto fail;
	}
	if (!topo_finish(t, path, error))
		goto fail;
	g_strfreev(lines);
	return t;
fail:
	g_strfreev(lines);
	smig_topology_unref(t);
	return NULL;
}

/*
 * smig_topology_from_switches - the tree of Slurm's switch records
 * RET new tree, caller smig_topology_unref()s; NULL on error
 */
smig_topology_t *smig_topology_from_switches(const smig_topology_switch_t *sw,
					     uint32_t nsw, const char *what,
					     GError **error)
{
	smig_topology_t *t = topo_new();

	for (uint32_t i = 0; i < nsw; i++)
		if (!add_switch(t, sw[i].name, sw[i].switches, sw[i].nodes,
				what, i + 1, error))
			goto fail;
	if (!topo_finish(t, what, error))
		goto fail;
	return t;
fail:
	smig_topology_unref(t);
	return NULL;
}

/* smig_topology_switches - number of switches */
uint32_t smig_topology_switches(const smig_topology_t *topo)
{
	return topo->sw->len;
}

/* smig_topology_switch_name - a switch id's name, NULL beyond them */
const char *smig_topology_switch_name(const smig_topology_t *topo,
				      uint32_t id)
{
	return id < topo->sw->len ? g_array_index(topo->sw, sw_t, id).name :
				    NULL;
}

/* smig_topology_leaf - name of a node's leaf switch, NULL if none */
const char *smig_topology_leaf(const smig_topology_t *topo, const char *node)
{
	guint leaf = GPOINTER_TO_UINT(g_hash_table_lookup(topo->node_sw,
							  node));

	return leaf ? g_array_index(topo->sw, sw_t, leaf - 1).name : NULL;
}

/* smig_topology_levels - highest switch level + 1 (0: no switch) */
uint32_t smig_topology_levels(const smig_topology_t *topo)
{
	return topo->nlevels;
}

/*
 * smig_topology_paths - node_switch array of the snapshot
 * RET new array nnames x nlevels, caller g_free()s; NULL when no levels
 */
uint32_t *smig_topology_paths(const smig_topology_t *topo,
			      const char *const *names, uint32_t nnames,
			      uint32_t *nlevels)
{
	uint32_t L = topo->nlevels, nsw = topo->sw->len;
	uint32_t *paths;

	*nlevels = L;
	if (!L)
		return NULL;
	paths = g_new(uint32_t, (size_t) nnames * L);
	for (uint32_t n = 0; n < nnames; n++) {
		guint leaf = GPOINTER_TO_UINT(g_hash_table_lookup(
			topo->node_sw, names[n]));
		uint32_t sw = leaf ? leaf - 1 : NO_PARENT;

		for (uint32_t l = 0; l < L; l++) {
			const sw_t *s;

			if (sw == NO_PARENT ||
			    g_array_index(topo->sw, sw_t, sw).level > l) {
				/* An id no other node has: they never meet. */
				paths[(size_t) n * L + l] = nsw + n;
				continue;
			}
			s = &g_array_index(topo->sw, sw_t, sw);
			while (s->parent != NO_PARENT &&
			       g_array_index(topo->sw, sw_t, s->parent).level <=
				       l) {
				sw = s->parent;
				s = &g_array_index(topo->sw, sw_t, sw);
			}
			paths[(size_t) n * L + l] = sw;
		}
	}
	return paths;
}

/* smig_topology_byte_cost - the snapshot's byte_cost array (see header) */
void smig_topology_byte_cost(double link_bw, uint32_t nlevels, double *cost)
{
	cost[0] = 0;
	for (uint32_t l = 1; l < nlevels + 2; l++)
		cost[l] = l / link_bw;
}
