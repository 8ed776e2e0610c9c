/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_trigger.c - node events pushed by Slurm: smigd's node triggers
 *
 * With smigd_slurm.c and smigd_topo.c, the only file of smigd that calls
 * libslurm (<slurm/slurm.h> only). smigd registers permanent node triggers
 * (what "strigger --set --node --down --flags=perm --program=..." does),
 * one per event type, whose program is smigd itself in its notifier mode:
 *     <smigd> -f <migrate.conf> -E <event>
 * to which slurmctld appends its argument (the nodes, or "reconfig"), so
 * it sends NODE_EVENT to the balancer, which reads the node table again at
 * once; the poll of the node table is then only a safety net
 * (SMIGD_NODE_SAFETY_POLLS). How slurmctld runs triggers
 * (src/slurmctld/trigger_mgr.c, 22.05.8 and 24.11.5 alike):
 *   - only SlurmUser may set one (root too when SlurmUser is root); the
 *     program must exist on slurmctld's host, be a regular file and be
 *     executable by that user, else the set is refused (access denied);
 *   - trigger_process() looks at the events every TRIGGER_INTERVAL (15 s)
 *     in slurmctld's background thread, then forks, switches to the uid
 *     (and gid) that set the trigger and execv()s the program with the
 *     words of its string as arguments, then the nodes; slurmctld's
 *     environment is kept, its file descriptors are closed;
 *   - a PERM trigger that fired is cloned (a new one waits) while the fired
 *     copy, its res_id now the nodes, waits for its program (at most 300 s);
 *     Slurm refuses a second trigger equal to one it holds (TRIGGER_DUP).
 * Which node events exist differs between releases (in this file only):
 *   down      a node set DOWN (not responding, scontrol state=down): all;
 *   up        a DOWN node back: all;
 *   reconfig  any "scontrol update node" (drain, resume, fail), node
 *             creation or deletion, "scontrol reconfigure": all; on 22.05
 *             the only event of an admin's drain of a busy node;
 *   draining  a node set to DRAIN while it runs jobs, also by slurmctld
 *             itself: 23.02 on (TRIGGER_TYPE_DRAINING).
 * Not registered: drained (only once the node has no job left, when the
 * ranks are gone anyway) and fail (22.05 to 24.11 never fire it).
 * Drains that slurmctld sets itself on 22.05 reach smigd through the safety
 * poll. Identity: a trigger is smigd's if it is a node trigger of smigd's
 * uid whose program starts with "<smigd's path> ". At start smigd keeps
 * those it wants, clears the others (another migrate.conf, an event it no
 * longer registers) and sets the missing ones; on a clean stop it clears
 * them (a trigger left behind by kill -9 is taken over at the next start).
 */
#include "smig_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "smig_error.h"
#include "smig_log.h"
#include "smigd_slurm.h"
#include "smigd_trigger.h"

/* Slurm's trigger offsets count from 0x8000 (strigger --offset=0). */
#define OFFSET_NONE 0x8000

static const struct node_event {
	uint32_t type;
	const char *name;
} events[] = {
	{ TRIGGER_TYPE_DOWN, "down" },
	{ TRIGGER_TYPE_UP, "up" },
	{ TRIGGER_TYPE_RECONFIG, "reconfig" },
#ifdef TRIGGER_TYPE_DRAINING
	{ TRIGGER_TYPE_DRAINING, "draining" },
#endif
};

/* smigd_trigger_event_known - see smigd_trigger.h */
bool smigd_trigger_event_known(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(events); i++)
		if (!strcmp(events[i].name, name))
			return true;
	return false;
}

/* The events' names, "down, up, ..." (caller g_free()s). */
static char *event_names(void)
{
	GString *s = g_string_new(NULL);

	for (size_t i = 0; i < G_N_ELEMENTS(events); i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "",
				       events[i].name);
	return g_string_free(s, FALSE);
}

/*
 * The program string of an event: "<exe> -f <conf> -E <name>". RET new
 * string, or NULL with error set when a path holds a space (Slurm splits
 * the string at spaces)
 */
static char *program_of(const char *exe, const char *conf, const char *name,
			GError **error)
{
	if (strchr(exe, ' ') || strchr(conf, ' ')) {
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_CONFIG,
			    "%s: a space in the path of smigd or of migrate.conf (%s): Slurm splits a trigger's program at spaces",
			    strchr(exe, ' ') ? exe : conf,
			    strchr(exe, ' ') ? "smigd" : "migrate.conf");
		return NULL;
	}
	return g_strdup_printf("%s -f %s -E %s", exe, conf, name);
}

/* Whether t is a node trigger of ours (uid, program "<exe> ..."). */
static bool trigger_ours(const trigger_info_t *t, const char *exe)
{
	size_t n = strlen(exe);

	return t->res_type == TRIGGER_RES_TYPE_NODE &&
	       t->user_id == (uint32_t) geteuid() && t->program &&
	       !strncmp(t->program, exe, n) && t->program[n] == ' ';
}

/* Clear one trigger by id; RET Slurm's errno, 0 on success. */
static int trigger_clear(uint32_t id)
{
	trigger_info_t t;

	slurm_init_trigger_msg(&t);
	t.trig_id = id;
	t.res_type = TRIGGER_RES_TYPE_NODE;
	return slurm_clear_trigger(&t) == SLURM_SUCCESS ? 0 : errno;
}

/*
 * Which of events[] are set as wanted (want[i]); clears our triggers that
 * are not wanted, and duplicates. RET false with error set if slurmctld
 * does not list its triggers.
 */
static bool triggers_scan(const char *exe, char *const *progs, bool *want,
			  GError **error)
{
	trigger_info_msg_t *msg = NULL;
	int e;

	if (slurm_get_triggers(&msg) != SLURM_SUCCESS) {
		e = errno;
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_IO,
			    "slurm_get_triggers: %s", slurm_strerror(e));
		return false;
	}
	for (uint32_t r = 0; msg && r < msg->record_count; r++) {
		trigger_info_t *t = &msg->trigger_array[r];
		bool keep = false;

		/* A fired copy (res_id: its nodes) goes by itself. */
		if (!trigger_ours(t, exe) || g_strcmp0(t->res_id, "*"))
			continue;
		for (size_t i = 0; i < G_N_ELEMENTS(events); i++) {
			if (t->trig_type != events[i].type ||
			    !(t->flags & TRIGGER_FLAG_PERM) ||
			    strcmp(t->program, progs[i]) || want[i])
				continue;
			want[i] = keep = true;
			smig_verbose("Slurm trigger %u (node %s, %s) kept",
				     t->trig_id, events[i].name, t->program);
		}
		if (keep)
			continue;
		e = trigger_clear(t->trig_id);
		if (e)
			smig_error("Slurm trigger %u (%s): not cleared: %s",
				   t->trig_id, t->program, slurm_strerror(e));
		else
			smig_info("Slurm trigger %u (%s): cleared, not one smigd wants",
				  t->trig_id, t->program);
	}
	slurm_free_trigger_msg(msg);
	return true;
}

/* smigd_trigger_register - see smigd_trigger.h */
bool smigd_trigger_register(const char *exe, const char *conf,
			    GError **error)
{
	char *progs[G_N_ELEMENTS(events)] = { NULL };
	bool have[G_N_ELEMENTS(events)] = { false };
	bool ok = false;
	char *names;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(events); i++) {
		progs[i] = program_of(exe, conf, events[i].name, error);
		if (!progs[i])
			goto out;
	}
	if (!triggers_scan(exe, progs, have, error))
		goto out;
	for (i = 0; i < G_N_ELEMENTS(events); i++) {
		trigger_info_t t;
		int e;

		if (have[i])
			continue;
		slurm_init_trigger_msg(&t);
		t.flags = TRIGGER_FLAG_PERM;
		t.res_type = TRIGGER_RES_TYPE_NODE;
		t.res_id = "*";
		t.trig_type = events[i].type;
		t.offset = OFFSET_NONE;
		t.program = progs[i];
		if (slurm_set_trigger(&t) == SLURM_SUCCESS) {
			smig_verbose("Slurm trigger set: node %s, program %s",
				     events[i].name, progs[i]);
			continue;
		}
		e = errno;
		/* Set meanwhile (another smigd start): the same trigger. */
		if (e == ESLURM_TRIGGER_DUP)
			continue;
		g_set_error(error, SMIG_ERROR, SMIG_ERROR_STATE,
			    "slurmctld refused the node trigger %s (program %s): %s%s",
			    events[i].name, progs[i], slurm_strerror(e),
			    e == ESLURM_ACCESS_DENIED ?
			    " (slurmctld lets only SlurmUser set triggers, and the program must be an executable file on slurmctld's host)" :
			    "");
		goto out;
	}
	names = event_names();
	smig_info("Slurm's node triggers (%s) tell smigd of node events; the node table is read on each, and every %d MigratePollIntervals",
		  names, SMIGD_NODE_SAFETY_POLLS);
	g_free(names);
	ok = true;
out:
	for (i = 0; i < G_N_ELEMENTS(events); i++)
		g_free(progs[i]);
	return ok;
}

/* smigd_trigger_clear_all - see smigd_trigger.h */
void smigd_trigger_clear_all(const char *exe)
{
	trigger_info_msg_t *msg = NULL;
	unsigned cleared = 0;
	int e;

	if (slurm_get_triggers(&msg) != SLURM_SUCCESS) {
		e = errno;
		smig_error("slurm_get_triggers: %s: smigd's node triggers stay (the next start takes them over)",
			   slurm_strerror(e));
		return;
	}
	for (uint32_t r = 0; msg && r < msg->record_count; r++) {
		trigger_info_t *t = &msg->trigger_array[r];

		if (!trigger_ours(t, exe) || g_strcmp0(t->res_id, "*"))
			continue;
		e = trigger_clear(t->trig_id);
		if (e)
			smig_error("Slurm trigger %u (%s): not cleared: %s",
				   t->trig_id, t->program, slurm_strerror(e));
		else
			cleared++;
	}
	slurm_free_trigger_msg(msg);
	smig_info("Slurm's node triggers of smigd cleared: %u", cleared);
}
