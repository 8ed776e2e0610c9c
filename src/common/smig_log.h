/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_log.h - the core's log calls; the host (a plugin, a tool) sets the sink
 *
 * The core never calls Slurm or g_log(): it calls smig_log(). Plugins set a sink
 * that forwards to slurm_error()/slurm_info()/... in init(); tools and unit tests
 * keep the default sink, which writes "LEVEL: message" lines to stderr.
 */
#ifndef SMIG_LOG_H
#define SMIG_LOG_H

#include <stdint.h>
#include <glib.h>

typedef enum {
	SMIG_LOG_ERROR,
	SMIG_LOG_INFO,
	SMIG_LOG_VERBOSE,
	SMIG_LOG_DEBUG,
	SMIG_LOG_DEBUG2,
	SMIG_LOG_DEBUG3,
} smig_log_level_t;

/* A sink receives one complete line without a trailing newline (borrowed). */
typedef void (*smig_log_sink_t)(smig_log_level_t level, const char *msg);

/*
 * smig_log_set_sink - route the core's messages
 * IN sink - function called for each message at or below max; NULL: stderr
 * IN max  - most verbose level passed to the sink
 * Thread-safe; meant to be called once from the host's init().
 */
void smig_log_set_sink(smig_log_sink_t sink, smig_log_level_t max);

/* smig_log_level_word - "error", "info", ... "debug3" (static text) */
const char *smig_log_level_word(smig_log_level_t level);

/* smig_log - format and emit one message if level <= the sink's max */
void smig_log(smig_log_level_t level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/*
 * Who a message is about. Every message of the balancer and the agents about
 * one job, step or node goes through smig_logc(), which writes the context
 * the same way everywhere ("JobId=J StepId=S node=N: text"), so that a log
 * can be searched for one job. A field is left out when it is unset.
 */
#define SMIG_LOG_NO_ID UINT32_MAX
typedef struct smig_log_ctx {
	uint32_t job_id;	/* SMIG_LOG_NO_ID: none */
	uint32_t step_id;	/* SMIG_LOG_NO_ID: none */
	const char *node;	/* NULL: none */
} smig_log_ctx_t;

/* Contexts for the common cases (compound literals: use them in the call) */
#define SMIG_CTX_JOB(job) (&(smig_log_ctx_t){ (job), SMIG_LOG_NO_ID, NULL })
#define SMIG_CTX_STEP(job, step) (&(smig_log_ctx_t){ (job), (step), NULL })
#define SMIG_CTX_NODE(job, step, node) \
	(&(smig_log_ctx_t){ (job), (step), (node) })

/*
 * smig_logc - smig_log() with the context in front:
 * "JobId=J StepId=S node=N: " followed by the formatted text
 * IN ctx - NULL: no context (same as smig_log())
 */
void smig_logc(smig_log_level_t level, const smig_log_ctx_t *ctx,
	       const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#define smig_error(...)   smig_log(SMIG_LOG_ERROR, __VA_ARGS__)
#define smig_info(...)    smig_log(SMIG_LOG_INFO, __VA_ARGS__)
#define smig_verbose(...) smig_log(SMIG_LOG_VERBOSE, __VA_ARGS__)
#define smig_debug(...)   smig_log(SMIG_LOG_DEBUG, __VA_ARGS__)
#define smig_debug2(...)  smig_log(SMIG_LOG_DEBUG2, __VA_ARGS__)

#define smig_cerror(ctx, ...)   smig_logc(SMIG_LOG_ERROR, ctx, __VA_ARGS__)
#define smig_cinfo(ctx, ...)    smig_logc(SMIG_LOG_INFO, ctx, __VA_ARGS__)
#define smig_cverbose(ctx, ...) smig_logc(SMIG_LOG_VERBOSE, ctx, __VA_ARGS__)
#define smig_cdebug(ctx, ...)   smig_logc(SMIG_LOG_DEBUG, ctx, __VA_ARGS__)
#define smig_cdebug2(ctx, ...)  smig_logc(SMIG_LOG_DEBUG2, ctx, __VA_ARGS__)

#endif /* SMIG_LOG_H */
