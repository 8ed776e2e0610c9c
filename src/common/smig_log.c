/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_log.c - the core's log calls, routed to a sink the host sets
 */
#include "smig_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <glib.h>

#include "smig_log.h"

/*
 * The sink and its level are read on every call and set rarely: atomics
 * suffice, since a sink is a plain function that stays valid for the life
 * of the process (a plugin resets it to NULL in fini() before unloading).
 */
static smig_log_sink_t log_sink;		/* NULL: stderr */
static gint log_max = SMIG_LOG_INFO;
/* Lines written to stderr by different threads must not interleave. */
static GMutex stderr_lock;

const char *smig_log_level_word(smig_log_level_t level)
{
	switch (level) {
	case SMIG_LOG_ERROR:
		return "error";
	case SMIG_LOG_INFO:
		return "info";
	case SMIG_LOG_VERBOSE:
		return "verbose";
	case SMIG_LOG_DEBUG:
		return "debug";
	case SMIG_LOG_DEBUG2:
		return "debug2";
	case SMIG_LOG_DEBUG3:
		return "debug3";
	}
	return "log";
}

static void stderr_sink(smig_log_level_t level, const char *msg)
{
	g_mutex_lock(&stderr_lock);
	fprintf(stderr, "%s: %s\n", smig_log_level_word(level), msg);
	fflush(stderr);
	g_mutex_unlock(&stderr_lock);
}

/*
 * smig_log_set_sink - route the core's messages
 * IN sink - called for each message at or below max; NULL: stderr
 * IN max  - most verbose level passed to the sink
 * Thread-safe.
 */
void smig_log_set_sink(smig_log_sink_t sink, smig_log_level_t max)
{
	g_atomic_pointer_set(&log_sink, sink);
	g_atomic_int_set(&log_max, max);
}

static void emit(smig_log_level_t level, char *msg)
{
	smig_log_sink_t sink = g_atomic_pointer_get(&log_sink);

	if (sink)
		sink(level, msg);
	else
		stderr_sink(level, msg);
	g_free(msg);
}

/*
 * smig_log - format and emit one message if level <= the sink's max
 * Thread-safe.
 */
void smig_log(smig_log_level_t level, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if ((gint) level > g_atomic_int_get(&log_max))
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	emit(level, msg);
}

/*
 * smig_logc - smig_log() with "JobId=J StepId=S node=N: " in front (the
 * fields that are set); thread-safe
 */
void smig_logc(smig_log_level_t level, const smig_log_ctx_t *ctx,
	       const char *fmt, ...)
{
	GString *line;
	va_list ap;

	if ((gint) level > g_atomic_int_get(&log_max))
		return;
	line = g_string_new(NULL);
	if (ctx && ctx->job_id != SMIG_LOG_NO_ID)
		g_string_append_printf(line, "JobId=%u ", ctx->job_id);
	if (ctx && ctx->step_id != SMIG_LOG_NO_ID)
		g_string_append_printf(line, "StepId=%u ", ctx->step_id);
	if (ctx && ctx->node)
		g_string_append_printf(line, "node=%s ", ctx->node);
	if (line->len) {
		g_string_truncate(line, line->len - 1);
		g_string_append(line, ": ");
	}
	va_start(ap, fmt);
	g_string_append_vprintf(line, fmt, ap);
	va_end(ap);
	emit(level, g_string_free(line, FALSE));
}
