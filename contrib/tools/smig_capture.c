/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * smig_capture.c - "smig capture JOBID [--wait]": ask the balancer for a
 * capture of the job's --migrate steps now (an image for later; nobody
 * moves). REQUEST(what=capture) -> REPLY with the generations started; with
 * --wait, QUERY until each is good (gen= of the state line) or failed
 * (last_error=gen=G). The balancer accepts the job's owner, root and
 * SlurmUser (munge).
 */
#include "smig_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_link.h"

#define WAIT_STEP_US	(250 * 1000)

int smig_cmd_capture(int argc, char **argv);

static void capture_usage(FILE *f)
{
	fprintf(f, "Usage: smig capture JOBID [--step STEPID] [--wait [SECONDS]]\n"
		"Capture recovery images of the job's --migrate steps now, for later (nobody\n"
		"moves). --wait: until every generation started is good (default 120 s).\n");
}

static bool parse_num(const char *opt, const char *text, uint64_t max,
		      uint64_t *out)
{
	char *end;

	errno = 0;
	*out = g_ascii_strtoull(text, &end, 10);
	if (!g_ascii_isdigit(text[0]) || *end || errno || *out > max) {
		fprintf(stderr, "smig capture: %s=%s: not a number (0-%" PRIu64 ")\n",
			opt, text, max);
		return false;
	}
	return true;
}

/*
 * smig_cmd_capture - see the file's comment
 * IN argc, argv - "capture" and the words after it
 * RET process exit status: 0 started (and with --wait, all good), 1 error,
 *     2 usage error
 */
int smig_cmd_capture(int argc, char **argv)
{
	uint64_t job = 0, step = UINT32_MAX, wait_s = 0, v;
	smig_link_t l = { .fd = -1 };
	smig_msg_request_t req = { .what = "capture" };
	smig_msg_reply_t rep = { 0 };
	const char *started, *busy;
	GError *err = NULL;
	char *reason = NULL;
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			capture_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--step") && i + 1 < argc) {
			if (!parse_num("--step", argv[++i], UINT32_MAX - 1,
				       &step))
				return 2;
		} else if (!strcmp(argv[i], "--wait")) {
			wait_s = 120;
			if (i + 1 < argc && g_ascii_isdigit(argv[i + 1][0]) &&
			    job) {
				if (!parse_num("--wait", argv[++i], 86400,
					       &wait_s))
					return 2;
			}
		} else if (!job && g_ascii_isdigit(argv[i][0])) {
			if (!parse_num("JOBID", argv[i], UINT32_MAX - 2, &job))
				return 2;
			if (!job) {
				fprintf(stderr, "smig capture: JOBID=0: not a job id (e.g. 42)\n");
				return 2;
			}
		} else {
			fprintf(stderr, "smig capture: %s: unexpected argument\n",
				argv[i]);
			capture_usage(stderr);
			return 2;
		}
	}
	if (!job) {
		capture_usage(stderr);
		return 2;
	}
	if (!smig_link_open(&l, &err))
		goto fail;
	req.job = (uint32_t) job;
	req.step = (uint32_t) step;
	req.has_step = step != UINT32_MAX;
	if (!smig_link_request(&l, &req, &rep, &err))
		goto fail;
	started = rep.started;
	busy = rep.has_busy ? rep.busy : "";
	if (rep.status) {
		fprintf(stderr, "smig capture: JobId=%" PRIu64 ": no capture started: %s%s\n",
			job, busy[0] ? "capture or move in progress in steps " :
			"no step ready", busy);
		goto out;
	}
	printf("JobId=%" PRIu64 " capture started %s\n", job, started);
	if (busy[0])
		printf("JobId=%" PRIu64 " busy (capture or move in progress) steps %s\n",
		       job, busy);
	fflush(stdout);
	rc = 0;
	if (!wait_s)
		goto out;

	/* The newest generation started: all of them are good once it is. */
	v = 0;
	for (const char *p = started; (p = strstr(p, "gen=")); p += 4)
		v = MAX(v, g_ascii_strtoull(p + 4, NULL, 10));
	for (gint64 end = g_get_monotonic_time() + wait_s * G_USEC_PER_SEC;;) {
		uint64_t good, failed;
		uint32_t moves;

		if (!smig_link_state(&l, (uint32_t) job, &good, &moves,
				     &failed, &reason, &err))
			goto fail;
		if (good >= v) {
			printf("JobId=%" PRIu64 " generation %" PRIu64 " is good\n",
			       job, good);
			break;
		}
		if (failed >= v) {
			fprintf(stderr, "smig capture: JobId=%" PRIu64 ": generation %" PRIu64 " failed: %s\n",
				job, failed, reason);
			rc = 1;
			break;
		}
		if (g_get_monotonic_time() > end) {
			fprintf(stderr, "smig capture: JobId=%" PRIu64 ": generation %" PRIu64 " not good after %" PRIu64 " s\n",
				job, v, wait_s);
			rc = 1;
			break;
		}
		g_usleep(WAIT_STEP_US);
	}
	goto out;
fail:
	fprintf(stderr, "smig capture: JobId=%" PRIu64 ": %s\n", job,
		err->message);
	g_error_free(err);
	rc = 1;
out:
	g_free(reason);
	smig_msg_reply_clear(&rep);
	smig_link_close(&l);
	return rc;
}
