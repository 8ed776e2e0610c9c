/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smigd_trigger.h - Slurm's node triggers that tell smigd of node events
 * (smigd_trigger.c says how slurmctld runs them, and which events)
 */
#ifndef SMIGD_TRIGGER_H
#define SMIGD_TRIGGER_H

#include <stdbool.h>
#include <glib.h>

/*
 * smigd_trigger_register - make slurmctld hold smigd's permanent node
 * triggers, one per event, whose program is "<exe> -f <conf> -E <event>":
 * those of an earlier start are kept, ours that differ are cleared
 * IN  exe   - smigd's absolute path (no space)
 * IN  conf  - migrate.conf's absolute path (no space)
 * OUT error - slurmctld refused (not SlurmUser, program not executable
 *             on its host) or did not answer; caller g_error_free()s
 * RET true if every trigger is set
 */
bool smigd_trigger_register(const char *exe, const char *conf,
			    GError **error);

/*
 * smigd_trigger_clear_all - clear smigd's node triggers (those whose
 * program starts with "<exe> "), at a clean stop; failures are logged
 */
void smigd_trigger_clear_all(const char *exe);

/* smigd_trigger_event_known - whether name is an event smigd registers */
bool smigd_trigger_event_known(const char *name);

#endif /* SMIGD_TRIGGER_H */
