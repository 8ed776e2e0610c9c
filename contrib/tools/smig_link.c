/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_link.c - the smig tool's connection to the balancer (smig_link.h)
 */
#include "smig_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_link.h"

bool smig_link_open(smig_link_t *l, GError **error)
{
	const char *env = getenv("SLURM_CONF");
	char *slurm_conf = g_strdup(env && *env ? env :
				    "/etc/slurm/slurm.conf");
	char *path = smig_conf_path_beside(slurm_conf);
	bool ok = false;

	l->fd = -1;
	l->auth = NULL;
	l->conf = smig_conf_load(path, slurm_conf, error);
	if (!l->conf)
		goto out;
	l->auth = smig_auth_munge_new(l->conf->munge_socket, error);
	if (!l->auth)
		goto out;
	l->fd = smig_wire_connect(l->conf->balancer_addr, l->conf->port,
				  SMIG_LINK_TIMEOUT_MS, error);
	if (l->fd < 0) {
		g_prefix_error(error, "balancer at %s:%u: ",
			       l->conf->balancer_addr, l->conf->port);
		goto out;
	}
	ok = true;
out:
	g_free(path);
	g_free(slurm_conf);
	return ok;
}

void smig_link_close(smig_link_t *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	g_clear_pointer(&l->auth, smig_auth_free);
	g_clear_pointer(&l->conf, smig_conf_free);
}

smig_msg_t *smig_link_ask(smig_link_t *l, smig_msg_t *msg, GError **error)
{
	smig_msg_refused_t r;
	smig_msg_t *reply;
	bool sent;

	sent = smig_wire_send(l->fd, l->auth, msg, error);
	smig_msg_free(msg);
	if (!sent)
		return NULL;
	reply = smig_wire_recv(l->fd, l->auth, SMIG_LINK_TIMEOUT_MS, error);
	if (reply && reply->type == SMIG_MSG_REFUSED) {
		/* smig_wire_recv() checked the schema: decode cannot fail. */
		if (smig_msg_refused_decode(reply, &r, error)) {
			g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
				    "the balancer refused %s: %s", r.what,
				    r.reason);
			smig_msg_refused_clear(&r);
		}
		smig_msg_free(reply);
		return NULL;
	}
	return reply;
}

/* An answer of another type than wanted: "unexpected TYPE ..." */
static bool answer_is(const smig_msg_t *reply, smig_msg_type_t type,
		      GError **error)
{
	if (reply->type == type)
		return true;
	g_set_error(error, SMIG_ERROR, SMIG_ERROR_WIRE,
		    "unexpected %s from the balancer",
		    smig_msg_type_name(reply->type));
	return false;
}

bool smig_link_query(smig_link_t *l, uint32_t job, smig_msg_status_t *st,
		     GError **error)
{
	smig_msg_query_t q = { .job = job };
	smig_msg_t *reply;
	bool ok;

	memset(st, 0, sizeof(*st));
	reply = smig_link_ask(l, smig_msg_query_encode(&q), error);
	if (!reply)
		return false;
	ok = answer_is(reply, SMIG_MSG_STATUS, error) &&
	     smig_msg_status_decode(reply, st, error);
	smig_msg_free(reply);
	return ok;
}

bool smig_link_request(smig_link_t *l, const smig_msg_request_t *req,
		       smig_msg_reply_t *rep, GError **error)
{
	smig_msg_t *reply;
	bool ok;

	memset(rep, 0, sizeof(*rep));
	reply = smig_link_ask(l, smig_msg_request_encode(req), error);
	if (!reply)
		return false;
	ok = answer_is(reply, SMIG_MSG_REPLY, error) &&
	     smig_msg_reply_decode(reply, rep, error);
	smig_msg_free(reply);
	return ok;
}

bool smig_link_state(smig_link_t *l, uint32_t job, uint64_t *good,
		     uint32_t *moves, uint64_t *failed, char **reason,
		     GError **error)
{
	smig_msg_status_t st;
	const char *line, *p;

	if (!smig_link_query(l, job, &st, error))
		return false;
	line = st.state;
	*good = *failed = 0;
	*moves = 0;
	if ((p = strstr(line, " gen=")))
		*good = g_ascii_strtoull(p + 5, NULL, 10);
	if ((p = strstr(line, " moves=")))
		*moves = (uint32_t) g_ascii_strtoull(p + 7, NULL, 10);
	if ((p = strstr(line, "last_error=gen="))) {
		const char *r = strstr(p, ";reason=");

		*failed = g_ascii_strtoull(p + 15, NULL, 10);
		g_free(*reason);
		*reason = r ? g_strndup(r + 8, strcspn(r + 8, "; ")) :
			      g_strdup("?");
	}
	smig_msg_status_clear(&st);
	return true;
}

bool smig_parse_job_json(const char *cmd, int argc, char **argv,
			 uint32_t *job, bool *json)
{
	const char *jobarg = NULL;

	*json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			*json = true;
		else if (!jobarg && argv[i][0] != '-')
			jobarg = argv[i];
		else {
			fprintf(stderr, "smig %s: %s: unexpected argument (smig %s JOBID [--json])\n",
				cmd, argv[i], cmd);
			return false;
		}
	}
	if (!jobarg) {
		fprintf(stderr, "smig %s: JOBID missing (smig %s JOBID [--json])\n",
			cmd, cmd);
		return false;
	}
	return smig_parse_job(jobarg, job);
}

bool smig_parse_job(const char *text, uint32_t *job)
{
	char *end;
	guint64 v;

	errno = 0;
	v = g_ascii_strtoull(text, &end, 10);
	if (!text[0] || *end || errno || v == 0 || v >= UINT32_MAX ||
	    !g_ascii_isdigit(text[0])) {
		fprintf(stderr, "smig: JOBID=%s: not a job id (e.g. 42)\n",
			text);
		return false;
	}
	*job = (uint32_t) v;
	return true;
}

void smig_json_str(GString *s, const char *text)
{
	g_string_append_c(s, '"');
	for (const char *p = text; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(s, "\\%c", *p);
		else if ((unsigned char) *p < 0x20)
			g_string_append_printf(s, "\\u%04x", *p);
		else
			g_string_append_c(s, *p);
	}
	g_string_append_c(s, '"');
}
