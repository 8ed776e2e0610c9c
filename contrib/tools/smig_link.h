/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_link.h - the smig tool's connection to the balancer: migrate.conf
 * beside $SLURM_CONF, munge credentials, one message and its answer
 */
#ifndef SMIG_LINK_H
#define SMIG_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "smig_auth.h"
#include "smig_conf.h"
#include "smig_msgs.h"
#include "smig_wire.h"

#define SMIG_LINK_TIMEOUT_MS	10000

/* A connection to the balancer of this cluster's migrate.conf. */
typedef struct smig_link {
	smig_conf_t *conf;
	smig_auth_t *auth;
	int fd;
} smig_link_t;

/*
 * smig_link_open - read migrate.conf and connect to the balancer
 * OUT l     - caller-owned storage; close it with smig_link_close() also
 *             after a failure
 * OUT error - caller frees it with g_error_free()
 */
bool smig_link_open(smig_link_t *l, GError **error);

/* smig_link_close - close the connection and free what it holds */
void smig_link_close(smig_link_t *l);

/*
 * smig_link_ask - one message (taken: freed here), one answer; REFUSED
 * becomes an error "the balancer refused WHAT: REASON"
 * RET new message, caller smig_msg_free()s; NULL with *error set
 */
smig_msg_t *smig_link_ask(smig_link_t *l, smig_msg_t *msg, GError **error);

/*
 * smig_link_query - QUERY about a job, its STATUS back
 * OUT st    - the STATUS, caller frees it with smig_msg_status_clear()
 * OUT error - REFUSED, another answer, or the link failed
 */
bool smig_link_query(smig_link_t *l, uint32_t job, smig_msg_status_t *st,
		     GError **error);

/*
 * smig_link_request - a REQUEST, its REPLY back
 * IN  req   - read only (may borrow its strings)
 * OUT rep   - the REPLY, caller frees it with smig_msg_reply_clear()
 * OUT error - REFUSED, another answer, or the link failed
 */
bool smig_link_request(smig_link_t *l, const smig_msg_request_t *req,
		       smig_msg_reply_t *rep, GError **error);

/*
 * smig_link_state - the job's state line from QUERY: the generation of the
 * last good image, moves done and the generation and reason of the last
 * error (0 and untouched when absent)
 * OUT reason - set when there is an error; caller g_free()s (replaced)
 */
bool smig_link_state(smig_link_t *l, uint32_t job, uint64_t *good,
		     uint32_t *moves, uint64_t *failed, char **reason,
		     GError **error);

/*
 * smig_parse_job - a job id: decimal, 1 to 2^32-2
 * RET false after a message on stderr ("smig: JOBID=x: not a job id")
 */
bool smig_parse_job(const char *text, uint32_t *job);

/*
 * smig_parse_job_json - the arguments "JOBID [--json]" of subcommand cmd
 * (argv[0] is the subcommand)
 * OUT job, json
 * RET false after a usage message on stderr naming cmd and the argument
 */
bool smig_parse_job_json(const char *cmd, int argc, char **argv,
			 uint32_t *job, bool *json);

/* smig_json_str - append text as a JSON string (quoted, escaped) */
void smig_json_str(GString *s, const char *text);

#endif /* SMIG_LINK_H */
