/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_manual.c - manual moves and the decision history:
 *   smig move JOBID --ranks R --to NODE [--step S] [--wait [SECONDS]]
 *   smig rebalance JOBID [--step S] [--wait [SECONDS]]
 *   smig history JOBID [--json]
 *
 * move and rebalance send REQUEST(what=move|rebalance) and print what the
 * balancer started (REPLY); with --wait they follow the job's state line
 * (QUERY) until the move is done (moves= grew and the generation is good)
 * or failed (last_error=gen=G). history prints the `history` entries of
 * STATUS. The balancer answers the job's owner, root and SlurmUser only.
 * Exit status: 0 done, 1 refused or failed, 2 usage error.
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_link.h"

#define WAIT_STEP_US	(250 * 1000)
#define WAIT_DEFAULT_S	120

int smig_cmd_move(int argc, char **argv);
int smig_cmd_rebalance(int argc, char **argv);
int smig_cmd_history(int argc, char **argv);

static bool parse_num(const char *cmd, const char *opt, const char *text,
		      uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = g_ascii_strtoull(text, &end, 10);
	if (!g_ascii_isdigit(text[0]) || *end || errno || *out > max) {
		fprintf(stderr, "smig %s: %s=%s: not a number (0-%" PRIu64 ")\n",
			cmd, opt, text, max);
		return false;
	}
	return true;
}

/*
 * wait_move - follow the state line until gen is good and moves grew past
 * moves_before (done, 0), gen failed (1) or wait_s passed (1)
 */
static int wait_move(smig_link_t *l, const char *cmd, uint32_t job,
		     uint64_t gen, uint32_t moves_before, uint64_t wait_s)
{
	gint64 end = g_get_monotonic_time() + wait_s * G_USEC_PER_SEC;
	GError *err = NULL;
	char *reason = NULL;
	int rc = 1;

	for (;;) {
		uint64_t good, failed;
		uint32_t moves;

		if (!smig_link_state(l, job, &good, &moves, &failed, &reason,
				     &err)) {
			fprintf(stderr, "smig %s: JobId=%u: %s\n", cmd, job,
				err->message);
			g_error_free(err);
			break;
		}
		if (good >= gen && moves > moves_before) {
			printf("JobId=%u moved (generation %" PRIu64 ")\n",
			       job, gen);
			rc = 0;
			break;
		}
		if (failed >= gen) {
			fprintf(stderr, "smig %s: JobId=%u: generation %" PRIu64 " failed: %s\n",
				cmd, job, failed, reason);
			break;
		}
		if (g_get_monotonic_time() > end) {
			fprintf(stderr, "smig %s: JobId=%u: not moved after %" PRIu64 " s\n",
				cmd, job, wait_s);
			break;
		}
		g_usleep(WAIT_STEP_US);
	}
	g_free(reason);
	return rc;
}

static void move_usage(FILE *f, bool move)
{
	if (move)
		fprintf(f, "Usage: smig move JOBID --ranks RANKS --to NODE [--step STEPID] [--wait [SECONDS]]\n"
			"Move ranks (e.g. 2,3 or 2-3) of the job's --migrate step to NODE of its\n"
			"allocation now. --wait: until they run there (default 120 s).\n");
	else
		fprintf(f, "Usage: smig rebalance JOBID [--step STEPID] [--wait [SECONDS]]\n"
			"Let the policy engine place the job's ranks now (no hysteresis, no\n"
			"cooldown); prints the move started or why none gains.\n");
}

/*
 * request - the shared body of move and rebalance
 * IN argv - "move"/"rebalance" and the words after it
 * RET exit status: 0 started (with --wait: moved) or nothing to gain,
 *     1 refused, busy or failed, 2 usage error
 */
static int request(int argc, char **argv)
{
	const char *cmd = argv[0], *ranks = NULL, *to = NULL;
	bool move = !strcmp(cmd, "move");
	uint64_t step = UINT32_MAX, wait_s = 0, gen = 0;
	const char *started, *text, *why;
	smig_link_t l = { .fd = -1 };
	uint32_t job = 0, moves = 0;
	smig_msg_request_t req = { 0 };
	smig_msg_reply_t rep = { 0 };
	int32_t status;
	GError *err = NULL;
	char *reason = NULL;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			move_usage(stdout, move);
			return 0;
		} else if (move && !strcmp(argv[i], "--ranks") &&
			   i + 1 < argc) {
			ranks = argv[++i];
		} else if (move && !strcmp(argv[i], "--to") && i + 1 < argc) {
			to = argv[++i];
		} else if (!strcmp(argv[i], "--step") && i + 1 < argc) {
			if (!parse_num(cmd, "--step", argv[++i], UINT32_MAX - 1,
				       &step))
				return 2;
		} else if (!strcmp(argv[i], "--wait")) {
			wait_s = WAIT_DEFAULT_S;
			if (i + 1 < argc && g_ascii_isdigit(argv[i + 1][0]) &&
			    job && !parse_num(cmd, "--wait", argv[++i], 86400,
					      &wait_s))
				return 2;
		} else if (!job && argv[i][0] != '-') {
			if (!smig_parse_job(argv[i], &job))
				return 2;
		} else {
			fprintf(stderr, "smig %s: %s: unexpected argument\n",
				cmd, argv[i]);
			move_usage(stderr, move);
			return 2;
		}
	}
	if (!job || (move && (!ranks || !to))) {
		fprintf(stderr, "smig %s: %s missing\n", cmd,
			!job ? "JOBID" : !ranks ? "--ranks" : "--to");
		move_usage(stderr, move);
		return 2;
	}
	if (!smig_link_open(&l, &err))
		goto fail;
	if (wait_s) {
		uint64_t good, failed;

		if (!smig_link_state(&l, job, &good, &moves, &failed, &reason,
				     &err))
			goto fail;
	}
	/* req borrows the words: it is not cleared. */
	req.job = job;
	req.what = (char *) cmd;
	req.ranks = (char *) ranks;
	req.has_ranks = move;
	req.to = (char *) to;
	req.has_to = move;
	req.step = (uint32_t) step;
	req.has_step = step != UINT32_MAX;
	if (!smig_link_request(&l, &req, &rep, &err))
		goto fail;
	status = rep.status;
	started = rep.started;
	text = rep.has_move ? rep.move : "";
	why = rep.has_why ? rep.why : "";
	if (status == -ENODATA) {
		printf("JobId=%u no move: %s\n", job, why);
		rc = 0;
		goto out;
	}
	if (status) {
		fprintf(stderr, "smig %s: JobId=%u: no move started: %s\n", cmd,
			job, why[0] ? why : g_strerror(-status));
		goto out;
	}
	printf("JobId=%u move started %s %s\n", job, started, text);
	if (why[0])
		printf("JobId=%u why: %s\n", job, why);
	fflush(stdout);
	rc = 0;
	if (!wait_s)
		goto out;
	{
		const char *p = strstr(started, "gen=");

		gen = p ? g_ascii_strtoull(p + 4, NULL, 10) : 0;
	}
	rc = wait_move(&l, cmd, job, gen, moves, wait_s);
	goto out;
fail:
	fprintf(stderr, "smig %s: JobId=%u: %s\n", cmd, job, err->message);
	g_error_free(err);
	rc = 1;
out:
	g_free(reason);
	smig_msg_reply_clear(&rep);
	smig_link_close(&l);
	return rc;
}

/*
 * smig_cmd_move, smig_cmd_rebalance - see the file's comment
 * IN argc, argv - the command's name and the words after it
 * RET process exit status
 */
int smig_cmd_move(int argc, char **argv)
{
	return request(argc, argv);
}

int smig_cmd_rebalance(int argc, char **argv)
{
	return request(argc, argv);
}

/* A history entry's string field, "" when absent. */
static const char *entry_str(GVariant *e, const char *key)
{
	const char *v = "";

	g_variant_lookup(e, key, "&s", &v);
	return v;
}

/* A gain as "+12.3%", "-" when absent. */
static void gain_text(GVariant *e, const char *key, char *buf, size_t len)
{
	double v;

	if (g_variant_lookup(e, key, "d", &v))
		snprintf(buf, len, "%+.1f%%", 100 * v);
	else
		snprintf(buf, len, "-");
}

/* Local time of unix microseconds, "2026-11-30 17:20:05". g_free() it */
static char *time_text(int64_t us)
{
	GDateTime *t = g_date_time_new_from_unix_local(us / G_USEC_PER_SEC);
	char *s;

	if (!t)
		return g_strdup("?");
	s = g_date_time_format(t, "%F %T");
	g_date_time_unref(t);
	return s;
}

static void history_text(uint32_t job, GVariant *hist)
{
	gsize n = g_variant_n_children(hist);

	printf("JobId=%u: %zu decision%s\n", job, n, n == 1 ? "" : "s");
	if (!n)
		return;
	printf("%-19s %4s %-8s %-10s %-25s %-10s %8s %8s  %s\n", "TIME", "GEN",
	       "KIND", "RANKS", "FROM->TO", "REASON", "PREDICT", "MEASURED",
	       "OUTCOME");
	for (gsize i = 0; i < n; i++) {
		GVariant *e = g_variant_get_child_value(hist, i);
		char pred[32], meas[32], *when, *move;
		int64_t t = 0;
		guint64 gen = 0;
		const char *why = entry_str(e, "why");

		g_variant_lookup(e, "time", "x", &t);
		g_variant_lookup(e, "gen", "t", &gen);
		gain_text(e, "predicted_gain", pred, sizeof(pred));
		gain_text(e, "measured_gain", meas, sizeof(meas));
		when = time_text(t);
		move = g_strdup_printf("%s->%s", entry_str(e, "from"),
				       entry_str(e, "to"));
		printf("%-19s %4" G_GUINT64_FORMAT " %-8s %-10s %-25s %-10s %8s %8s  %s\n",
		       when, gen, entry_str(e, "kind"), entry_str(e, "ranks"),
		       move, entry_str(e, "reason"), pred, meas,
		       entry_str(e, "outcome"));
		if (why[0] && entry_str(e, "strategy")[0])
			printf("%19s why (%s): %s\n", "",
			       entry_str(e, "strategy"), why);
		else if (why[0])
			printf("%19s why: %s\n", "", why);
		g_free(when);
		g_free(move);
		g_variant_unref(e);
	}
}

static void json_gain(GString *s, GVariant *e, const char *key)
{
	double v;

	g_string_append_printf(s, ",\"%s\":", key);
	if (g_variant_lookup(e, key, "d", &v) && isfinite(v))
		g_string_append_printf(s, "%.6f", v);
	else
		g_string_append(s, "null");
}

static void history_json(uint32_t job, GVariant *hist)
{
	static const char *const keys[] = { "kind", "ranks", "from", "to",
					    "reason", "strategy", "why",
					    "outcome" };
	GString *s = g_string_new(NULL);

	g_string_append_printf(s, "{\"job\":%u,\"history\":[", job);
	for (gsize i = 0; i < g_variant_n_children(hist); i++) {
		GVariant *e = g_variant_get_child_value(hist, i);
		int64_t t = 0;
		guint64 gen = 0;
		uint32_t step;
		char *when;

		g_variant_lookup(e, "time", "x", &t);
		g_variant_lookup(e, "gen", "t", &gen);
		when = time_text(t);
		g_string_append_printf(s, "%s{\"time_us\":%" G_GINT64_FORMAT ",\"time\":",
				       i ? "," : "", t);
		smig_json_str(s, when);
		g_string_append_printf(s, ",\"gen\":%" G_GUINT64_FORMAT, gen);
		if (g_variant_lookup(e, "step", "u", &step))
			g_string_append_printf(s, ",\"step\":%u", step);
		for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
			g_string_append_printf(s, ",\"%s\":", keys[k]);
			smig_json_str(s, entry_str(e, keys[k]));
		}
		json_gain(s, e, "predicted_gain");
		json_gain(s, e, "measured_gain");
		g_string_append_c(s, '}');
		g_free(when);
		g_variant_unref(e);
	}
	g_string_append(s, "]}\n");
	fputs(s->str, stdout);
	g_string_free(s, TRUE);
}

/*
 * smig_cmd_history - "smig history JOBID [--json]": the job's decisions
 * and their outcomes, oldest first
 * RET exit status: 0, 1 (balancer unreachable or refused), 2 usage error
 */
int smig_cmd_history(int argc, char **argv)
{
	smig_link_t l = { .fd = -1 };
	smig_msg_status_t st = { 0 };
	GError *err = NULL;
	bool json = false;
	uint32_t job = 0;
	int rc = 1;

	if (!smig_parse_job_json("history", argc, argv, &job, &json))
		return 2;
	if (!smig_link_open(&l, &err))
		goto fail;
	if (!smig_link_query(&l, job, &st, &err))
		goto fail;
	if (json)
		history_json(job, st.history);
	else
		history_text(job, st.history);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "smig history: JobId=%u: %s\n", job, err->message);
	g_error_free(err);
out:
	smig_msg_status_clear(&st);
	smig_link_close(&l);
	return rc;
}
