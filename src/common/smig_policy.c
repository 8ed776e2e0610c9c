/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_policy.c - evacuation of nodes to be left; plans and their words
 *
 * The policy engine (smig_policy_decide()) lives in smig_policy_engine.c.
 */
#include "smig_config.h"

#include <string.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_policy.h"

#define NODE_BAD (SMIG_NODE_DRAIN | SMIG_NODE_DOWN | SMIG_NODE_FAIL)

/*
 * smig_node_flags_reason - the worst state among flags, as one word
 * RET "down", "fail", "drain" or "ok" (static); a down node is worse than a
 * failing one, which is worse than one being drained.
 */
const char *smig_node_flags_reason(uint32_t flags)
{
	if (flags & SMIG_NODE_DOWN)
		return "down";
	if (flags & SMIG_NODE_FAIL)
		return "fail";
	if (flags & SMIG_NODE_DRAIN)
		return "drain";
	return "ok";
}

/* smig_plan_free - free a plan; NULL is a no-op */
void smig_plan_free(smig_plan_t *plan)
{
	if (!plan)
		return;
	if (plan->moves)
		g_array_unref(plan->moves);
	g_free(plan->reason);
	g_free(plan->text);
	g_free(plan->why);
	g_free(plan);
}

/* "2,3" or "0-3,7": runs of three or more ranks as ranges. */
static void append_ranks(GString *s, const uint32_t *ranks, guint n)
{
	for (guint i = 0; i < n;) {
		guint j = i;

		while (j + 1 < n && ranks[j + 1] == ranks[j] + 1)
			j++;
		if (s->len && s->str[s->len - 1] != ' ')
			g_string_append_c(s, ',');
		if (j - i >= 2) {
			g_string_append_printf(s, "%u-%u", ranks[i], ranks[j]);
		} else {
			g_string_append_printf(s, "%u", ranks[i]);
			if (j > i)
				g_string_append_printf(s, ",%u", ranks[j]);
		}
		i = j + 1;
	}
}

/*
 * smig_plan_moves_text - words for people: one "ranks 2,3 node2->node3"
 * group per (from, to) pair, in the order of the first rank of each pair,
 * joined by "; "
 * RET new string ("" for no moves), caller g_free()s
 */
char *smig_plan_moves_text(const smig_policy_node_t *nodes,
			   const GArray *moves)
{
	GString *s = g_string_new(NULL);
	bool *done = g_new0(bool, moves->len);
	uint32_t *ranks = g_new(uint32_t, moves->len);

	for (guint i = 0; i < moves->len; i++) {
		const smig_policy_move_t *m =
			&g_array_index(moves, smig_policy_move_t, i);
		guint n = 0;

		if (done[i])
			continue;
		for (guint j = i; j < moves->len; j++) {
			const smig_policy_move_t *o =
				&g_array_index(moves, smig_policy_move_t, j);

			if (!done[j] && o->from == m->from && o->to == m->to) {
				ranks[n++] = o->rank;
				done[j] = true;
			}
		}
		if (s->len)
			g_string_append(s, "; ");
		g_string_append(s, n > 1 ? "ranks " : "rank ");
		append_ranks(s, ranks, n);
		g_string_append_printf(s, " %s->%s", nodes[m->from].name,
				       nodes[m->to].name);
	}
	g_free(ranks);
	g_free(done);
	return g_string_free(s, false);
}

/*
 * evac_target - the first usable node, in allocation order, that has a free
 * slot and is (spare true) or is not (spare false) a spare
 * IN  load  - ranks on each node, with the moves planned so far
 * OUT to    - its index, set only when one is found
 * RET true if found
 */
static bool evac_target(const smig_policy_node_t *nodes, uint32_t nnodes,
			const uint32_t *load, bool spare, uint32_t *to)
{
	for (uint32_t i = 0; i < nnodes; i++) {
		if ((nodes[i].flags & NODE_BAD) || load[i] >= nodes[i].slots ||
		    nodes[i].spare != spare)
			continue;
		*to = i;
		return true;
	}
	return false;
}

/* Distance of nodes a and b: 0, l + 1 (first common level l), top. */
static uint32_t evac_dist(const smig_policy_evac_topo_t *t, uint32_t a,
			  uint32_t b)
{
	uint32_t nl = t->nlevels;

	if (a == b)
		return 0;
	for (uint32_t l = 0; l < nl; l++) {
		if (t->node_switch[a * nl + l] == t->node_switch[b * nl + l])
			return l + 1;
	}
	return nl + 1;
}

/*
 * evac_near - like evac_target(), but the node nearest to rank r's
 * partners: least sum of bytes x distance to where each partner is (with
 * the moves planned so far), then nearest to the node r leaves, then first
 * in allocation order
 * IN place - node of each rank, moves planned so far included
 */
static bool evac_near(const smig_policy_node_t *nodes, uint32_t nnodes,
		      const uint32_t *load, bool spare, uint32_t *to,
		      const smig_policy_evac_topo_t *t, const uint32_t *place,
		      uint32_t r)
{
	/* Bytes to each node from r's partners: one pass over the edges. */
	double *to_node = g_new0(double, nnodes), best = 0;
	uint32_t *pnode = g_new(uint32_t, nnodes), np = 0, best_d = 0;
	bool found = false;

	for (size_t e = 0; e < t->nedges; e++) {
		const smig_policy_edge_t *ed = &t->edges[e];
		uint32_t q = ed->a == r ? ed->b : ed->a;

		if ((ed->a != r && ed->b != r) || q == r || !(ed->bytes > 0))
			continue;
		if (!to_node[place[q]])
			pnode[np++] = place[q];
		to_node[place[q]] += ed->bytes;
	}
	for (uint32_t i = 0; i < nnodes; i++) {
		double cost = 0;
		uint32_t d;

		if ((nodes[i].flags & NODE_BAD) || load[i] >= nodes[i].slots ||
		    nodes[i].spare != spare)
			continue;
		for (uint32_t k = 0; k < np; k++)
			cost += to_node[pnode[k]] * evac_dist(t, i, pnode[k]);
		d = evac_dist(t, i, place[r]);
		if (!found || cost < best || (cost == best && d < best_d)) {
			best = cost;
			best_d = d;
			*to = i;
			found = true;
		}
	}
	g_free(to_node);
	g_free(pnode);
	return found;
}

/*
 * smig_policy_evacuate - move every rank off nodes flagged non-OK
 * IN  nodes     - allocation nodes (borrowed), nnodes of them
 * IN  rank_node - node index of each rank, nranks of them (borrowed)
 * OUT error     - SMIG_ERROR_POLICY when there are not enough free slots
 *                 or rank_node names a node that does not exist
 * RET new plan (empty when no rank needs to move), caller frees with
 *     smig_plan_free(); NULL on error
 *
 * Ranks move in rank order; each takes the first usable spare node
 * (smig_policy_node_t.spare: a hot spare of spares=N), in allocation order,
 * that has a free slot, else the first other usable node with a free slot.
 * Only ranks on nodes to be left move, so the number of moves is the least
 * possible.
 */
smig_plan_t *smig_policy_evacuate(const smig_policy_node_t *nodes,
				  uint32_t nnodes, const uint32_t *rank_node,
				  uint32_t nranks, GError **error)
{
	return smig_policy_evacuate_topo(nodes, nnodes, rank_node, nranks,
					 NULL, error);
}

/*
 * smig_policy_evacuate_topo - smig_policy_evacuate() near the partners
 * IN topo - switch levels and traffic (borrowed); NULL or nlevels 0:
 *           exactly smig_policy_evacuate()
 *
 * As smig_policy_evacuate() (same ranks, same order, spares first, the same
 * error), but among the usable nodes of a class (spares, then the others)
 * with a free slot each rank takes the one whose switches are nearest to
 * its partners (see the header).
 */
smig_plan_t *smig_policy_evacuate_topo(const smig_policy_node_t *nodes,
				       uint32_t nnodes,
				       const uint32_t *rank_node,
				       uint32_t nranks,
				       const smig_policy_evac_topo_t *topo,
				       GError **error)
{
	uint32_t *place = NULL;
	uint32_t *load = g_new0(uint32_t, nnodes ? nnodes : 1);
	uint64_t need = 0, free_slots = 0;
	uint32_t left_flags = 0, target = 0;
	smig_plan_t *plan = NULL;
	GArray *moves;

	for (uint32_t r = 0; r < nranks; r++) {
		if (rank_node[r] >= nnodes) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
				    "rank %u is on node index %u but the allocation has %u nodes",
				    r, rank_node[r], nnodes);
			goto out_free_load;
		}
		load[rank_node[r]]++;
	}
	for (uint32_t i = 0; i < nnodes; i++) {
		if (nodes[i].flags & NODE_BAD) {
			need += load[i];
			if (load[i])
				left_flags |= nodes[i].flags;
		} else if (nodes[i].slots > load[i]) {
			free_slots += nodes[i].slots - load[i];
		}
	}
	if (need > free_slots) {
		GString *names = g_string_new(NULL);

		for (uint32_t i = 0; i < nnodes; i++) {
			if ((nodes[i].flags & NODE_BAD) && load[i])
				g_string_append_printf(names, "%s%s",
						       names->len ? "," : "",
						       nodes[i].name);
		}
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_POLICY,
			    "%" G_GUINT64_FORMAT " rank%s must leave %s but only %" G_GUINT64_FORMAT " free slot%s remain%s",
			    need, need == 1 ? "" : "s", names->str,
			    free_slots, free_slots == 1 ? "" : "s",
			    free_slots == 1 ? "s" : "");
		g_string_free(names, true);
		goto out_free_load;
	}

	if (topo && topo->nlevels && topo->node_switch) {
		place = g_new(uint32_t, nranks ? nranks : 1);
		memcpy(place, rank_node, sizeof(uint32_t) * nranks);
	}
	moves = g_array_new(false, false, sizeof(smig_policy_move_t));
	for (uint32_t r = 0; r < nranks; r++) {
		smig_policy_move_t m = { .rank = r, .from = rank_node[r] };

		if (!(nodes[m.from].flags & NODE_BAD))
			continue;
		/* Spares first (hot spares, spares=N), then any free slot. */
		if (place) {
			if (!evac_near(nodes, nnodes, load, true, &target,
				       topo, place, r))
				evac_near(nodes, nnodes, load, false, &target,
					  topo, place, r);
			place[r] = target;
		} else if (!evac_target(nodes, nnodes, load, true, &target)) {
			evac_target(nodes, nnodes, load, false, &target);
		}
		m.to = target;
		load[target]++;
		g_array_append_val(moves, m);
	}
	g_free(place);

	plan = g_new0(smig_plan_t, 1);
	plan->moves = moves;
	plan->reason = g_strdup(smig_node_flags_reason(left_flags));
	plan->text = moves->len ? smig_plan_moves_text(nodes, moves) :
				  g_strdup("no rank moves");
out_free_load:
	g_free(load);
	return plan;
}
