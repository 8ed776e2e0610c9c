/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * request-test.c - the --migrate grammar: values, round trip, every error
 */
#include "smig_config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <glib.h>

#include "smig_error.h"
#include "smig_request.h"

#define KEYS "(mode, capture, interval, every, capture-timeout, spares, max-moves, affinity, precopy)"

static void expect_error(const char *text, const char *msg)
{
	smig_request_t req, before;
	GError *err = NULL;

	smig_request_init(&req);
	req.spares = 77;
	before = req;
	ck_assert_msg(!smig_request_parse(text, &req, &err), "accepted %s",
		      text);
	ck_assert_ptr_nonnull(err);
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_REQUEST));
	ck_assert_str_eq(err->message, msg);
	/* A refused request leaves the caller's copy alone. */
	ck_assert(!memcmp(&req, &before, sizeof(req)));
	g_error_free(err);
}

static bool req_equal(const smig_request_t *a, const smig_request_t *b)
{
	return a->mode == b->mode && a->capture == b->capture &&
	       a->capture_signal == b->capture_signal &&
	       a->interval_ms == b->interval_ms &&
	       a->every_ms == b->every_ms &&
	       a->capture_timeout_ms == b->capture_timeout_ms &&
	       a->spares == b->spares && a->max_moves == b->max_moves &&
	       a->affinity == b->affinity && a->precopy == b->precopy;
}

START_TEST(test_bare)
{
	smig_request_t req;
	GError *err = NULL;
	char *s;

	ck_assert(smig_request_parse(NULL, &req, &err));
	ck_assert_int_eq(req.mode, SMIG_MODE_AUTO);
	ck_assert(smig_request_parse("", &req, &err));
	ck_assert_int_eq(req.mode, SMIG_MODE_AUTO);
	ck_assert_int_eq(req.capture, SMIG_CAPTURE_CALLBACK);
	ck_assert_uint_eq(req.spares, 0);
	ck_assert(!req.affinity);
	s = smig_request_to_string(&req);
	ck_assert_str_eq(s, "mode=auto,capture=callback");
	g_free(s);
}
END_TEST

START_TEST(test_modes)
{
	static const struct {
		const char *text;
		smig_mode_t mode;
	} cases[] = {
		{ "auto", SMIG_MODE_AUTO }, { "advise", SMIG_MODE_ADVISE },
		{ "manual", SMIG_MODE_MANUAL }, { "off", SMIG_MODE_OFF },
		{ "mode=advise", SMIG_MODE_ADVISE },
		{ "spares=1,manual", SMIG_MODE_MANUAL },
	};
	smig_request_t req;
	GError *err = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		ck_assert_msg(smig_request_parse(cases[i].text, &req, &err),
			      "%s", cases[i].text);
		ck_assert_int_eq(req.mode, cases[i].mode);
	}
	ck_assert_str_eq(smig_mode_name(SMIG_MODE_OFF), "off");
	ck_assert_str_eq(smig_mode_name(SMIG_MODE_MANUAL), "manual");
}
END_TEST

START_TEST(test_all_keys)
{
	smig_request_t req;
	GError *err = NULL;
	char *s;

	ck_assert(smig_request_parse("advise,capture=signal:USR1,interval=10s,every=1h,capture-timeout=90s,spares=2,max-moves=3,affinity",
				     &req, &err));
	ck_assert_ptr_null(err);
	ck_assert_int_eq(req.mode, SMIG_MODE_ADVISE);
	ck_assert_int_eq(req.capture, SMIG_CAPTURE_SIGNAL);
	ck_assert_int_eq(req.capture_signal, SIGUSR1);
	ck_assert_uint_eq(req.interval_ms, 10000);
	ck_assert_uint_eq(req.every_ms, 3600000);
	ck_assert_uint_eq(req.capture_timeout_ms, 90000);
	ck_assert_uint_eq(req.spares, 2);
	ck_assert_uint_eq(req.max_moves, 3);
	ck_assert(req.affinity);
	s = smig_request_to_string(&req);
	ck_assert_str_eq(s, "mode=advise,capture=signal:USR1,interval=10s,every=1h,capture-timeout=90s,spares=2,max-moves=3,affinity");
	g_free(s);

	ck_assert(smig_request_parse("capture=signal:SIGterm,affinity=no",
				     &req, &err));
	ck_assert_int_eq(req.capture_signal, SIGTERM);
	ck_assert(!req.affinity);
	ck_assert(smig_request_parse("affinity=yes", &req, &err));
	ck_assert(req.affinity);
	ck_assert(!req.precopy);

	/* precopy=on reaches libsmig in the canonical text; off is the
	 * default and is not written. */
	ck_assert(smig_request_parse("manual,precopy=on", &req, &err));
	ck_assert(req.precopy);
	s = smig_request_to_string(&req);
	ck_assert_str_eq(s, "mode=manual,capture=callback,precopy=on");
	g_free(s);
	ck_assert(smig_request_parse("precopy=off", &req, &err));
	ck_assert(!req.precopy);
	s = smig_request_to_string(&req);
	ck_assert_str_eq(s, "mode=auto,capture=callback");
	g_free(s);
}
END_TEST

START_TEST(test_round_trip)
{
	static const char *const texts[] = {
		"", "off", "manual,spares=0", "capture=signal:USR2,every=500ms",
		"mode=auto,interval=90,capture-timeout=2m,max-moves=1000000",
		"spares=1024,affinity,capture=callback",
		"manual,precopy=on,every=10s", "precopy=off",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
		smig_request_t a, b;
		GError *err = NULL;
		char *s, *s2;

		ck_assert_msg(smig_request_parse(texts[i], &a, &err), "%s",
			      texts[i]);
		s = smig_request_to_string(&a);
		ck_assert_msg(smig_request_parse(s, &b, &err), "%s: %s", s,
			      err ? err->message : "");
		ck_assert_msg(req_equal(&a, &b), "%s -> %s", texts[i], s);
		s2 = smig_request_to_string(&b);
		ck_assert_str_eq(s, s2);
		g_free(s);
		g_free(s2);
	}
}
END_TEST

START_TEST(test_errors)
{
	expect_error("mode=bogus", "mode=bogus: unknown mode (auto, advise, manual, off)");
	expect_error("mode=", "mode=: unknown mode (auto, advise, manual, off)");
	expect_error("bogus=1", "bogus: unknown key " KEYS);
	expect_error("bogus",
		     "bogus: neither a mode (auto, advise, manual, off) nor a key " KEYS);
	expect_error("spares=-1", "spares=-1: not a count (0-1024)");
	expect_error("spares=1025", "spares=1025: not a count (0-1024)");
	expect_error("spares=", "spares=: not a count (0-1024)");
	expect_error("max-moves=many",
		     "max-moves=many: not a count (0-1000000, 0: no limit)");
	expect_error("capture=signal:FOO",
		     "capture=signal:FOO: unknown signal (e.g. signal:USR1)");
	expect_error("capture=signal:KILL",
		     "capture=signal:KILL: unknown signal (e.g. signal:USR1)");
	expect_error("capture=file",
		     "capture=file: unknown capture method (callback, signal:SIG)");
	expect_error("interval=soon",
		     "interval=soon: not a duration (examples: 30s, 5m, 1h)");
	expect_error("every=0", "every=0: not a duration (examples: 30s, 5m, 1h)");
	expect_error("capture-timeout=-1s",
		     "capture-timeout=-1s: not a duration (examples: 30s, 5m, 1h)");
	expect_error("affinity=maybe",
		     "affinity=maybe: not yes or no (affinity, affinity=yes, affinity=no)");
	expect_error("spares", "spares: missing value (spares=VALUE)");
	expect_error("precopy=yes",
		     "precopy=yes: not on or off (precopy=on, precopy=off)");
	expect_error("precopy=", "precopy=: not on or off (precopy=on, precopy=off)");
	expect_error("precopy", "precopy: missing value (precopy=VALUE)");
	expect_error("precopy=on,precopy=off",
		     "precopy=off: precopy given twice (each at most once)");
	expect_error("auto,advise", "advise: mode given twice (each at most once)");
	expect_error("mode=auto,mode=off",
		     "mode=off: mode given twice (each at most once)");
	expect_error("auto,mode=off",
		     "mode=off: mode given twice (each at most once)");
	expect_error("spares=1,spares=2",
		     "spares=2: spares given twice (each at most once)");
	expect_error("affinity,affinity=no",
		     "affinity=no: affinity given twice (each at most once)");
	expect_error("auto,,spares=1",
		     "empty item in \"auto,,spares=1\" (MODE and key=value items separated by single commas)");
	expect_error("auto,",
		     "empty item in \"auto,\" (MODE and key=value items separated by single commas)");
	expect_error("Auto",
		     "Auto: neither a mode (auto, advise, manual, off) nor a key " KEYS);
}
END_TEST

/*
 * Values made consistent (doc/bad-input.md): an empty value is a bare
 * --migrate (auto) while an empty item is refused; a huge value is quoted
 * once, in part, with its length; interval= below 100 ms is refused with
 * the bound instead of being raised silently.
 */
START_TEST(test_bounds)
{
	char *huge = g_strnfill(100 * 1024, 'x');
	char *max = g_strnfill(SMIG_REQUEST_MAX_LEN, 'y');
	smig_request_t req;
	GError *err = NULL;

	memcpy(huge, "mode=", 5);
	expect_error(huge, "a value of 102400 bytes beginning \"mode=xxxxxxxxxxxxxxxxxxxxxxxxxxx\" (at most 1024 bytes)");
	/* At the limit: parsed, refused for what it says. */
	ck_assert(!smig_request_parse(max, &req, &err));
	ck_assert(g_str_has_suffix(err->message,
				   ": neither a mode (auto, advise, manual, off) nor a key " KEYS));
	g_clear_error(&err);
	expect_error("interval=1ms",
		     "interval=1ms: too short (at least 100ms; examples: 30s, 5m, 1h)");
	expect_error("interval=99ms",
		     "interval=99ms: too short (at least 100ms; examples: 30s, 5m, 1h)");
	ck_assert(smig_request_parse("interval=100ms", &req, &err));
	ck_assert_uint_eq(req.interval_ms, 100);
	expect_error("auto,",
		     "empty item in \"auto,\" (MODE and key=value items separated by single commas)");
	ck_assert(smig_request_parse("", &req, &err));
	ck_assert_int_eq(req.mode, SMIG_MODE_AUTO);
	g_free(huge);
	g_free(max);
}
END_TEST

START_TEST(test_supported)
{
	const char *ok[] = { NULL, "", "auto", "advise", "manual", "off",
			     "auto,capture=callback,capture-timeout=5s",
			     "manual,max-moves=3" };
	smig_request_t req;
	GError *err = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		ck_assert(smig_request_parse(ok[i], &req, &err));
		ck_assert_msg(smig_request_check_supported(&req, &err),
			      "%s: %s", ok[i] ? ok[i] : "(bare)",
			      err ? err->message : "");
	}
	/* Capture by signal is supported since issue 5. */
	ck_assert(smig_request_parse("capture=signal:USR1", &req, &err));
	ck_assert(smig_request_check_supported(&req, &err));
	/* Sampling and affinity are supported since issue 6. */
	ck_assert(smig_request_parse("interval=30s,affinity", &req, &err));
	ck_assert(smig_request_check_supported(&req, &err));
	/* Periodic capture is supported since issue 5. */
	ck_assert(smig_request_parse("every=10m", &req, &err));
	ck_assert(smig_request_check_supported(&req, &err));
	/* Hot spares are supported since issue 20. */
	ck_assert(smig_request_parse("auto,spares=1", &req, &err));
	ck_assert(smig_request_check_supported(&req, &err));
}
END_TEST

/* smig_request_spares(): the step's nodes and the spares srun leaves out */
START_TEST(test_spares)
{
	char *alloc[] = { "node1", "node2", "node3", NULL };
	char *one[] = { "node1", NULL };
	smig_request_t req;
	GError *err = NULL;
	uint32_t nnodes = 99;
	char *spares = NULL;

	ck_assert(smig_request_parse("spares=1", &req, &err));
	ck_assert(smig_request_spares(&req, alloc, NULL, &nnodes, &spares,
				      &err));
	ck_assert_uint_eq(nnodes, 2);
	ck_assert_str_eq(spares, "node3");
	g_free(spares);

	/* The user's -N stands when it leaves room: no --nodes added. */
	ck_assert(smig_request_spares(&req, alloc, "2", &nnodes, &spares,
				      &err));
	ck_assert_uint_eq(nnodes, 0);
	ck_assert_str_eq(spares, "node3");
	g_free(spares);
	ck_assert(smig_request_spares(&req, alloc, "1-3", &nnodes, &spares,
				      &err));
	ck_assert_uint_eq(nnodes, 0);
	g_free(spares);

	ck_assert(!smig_request_spares(&req, alloc, "3", &nnodes, &spares,
				       &err));
	ck_assert(g_error_matches(err, SMIG_ERROR, SMIG_ERROR_REQUEST));
	ck_assert_str_eq(err->message,
			 "spares=1 with -N/--nodes=3: the allocation has 3 nodes (node[1-3]), so the step may use at most 2; drop -N, give -N2 or less, or ask for fewer spares");
	g_clear_error(&err);
	ck_assert(!smig_request_spares(&req, alloc, "x", &nnodes, &spares,
				       &err));
	ck_assert_str_eq(err->message,
			 "spares=1: srun's -N/--nodes is \"x\", not a node count");
	g_clear_error(&err);
	ck_assert(!smig_request_spares(&req, one, NULL, &nnodes, &spares,
				       &err));
	ck_assert_str_eq(err->message,
			 "spares=1: the allocation has 1 node (node1); at least one must run the step (ask sbatch or salloc for more nodes, or for fewer spares)");
	g_clear_error(&err);

	ck_assert(smig_request_parse("manual,spares=2", &req, &err));
	ck_assert(smig_request_spares(&req, alloc, NULL, &nnodes, &spares,
				      &err));
	ck_assert_uint_eq(nnodes, 1);
	ck_assert_str_eq(spares, "node[2-3]");
	g_free(spares);
	ck_assert(smig_request_parse("spares=3", &req, &err));
	ck_assert(!smig_request_spares(&req, alloc, NULL, &nnodes, &spares,
				       &err));
	ck_assert_str_eq(err->message,
			 "spares=3: the allocation has 3 nodes (node[1-3]); at least one must run the step (ask sbatch or salloc for more nodes, or for fewer spares)");
	g_clear_error(&err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("request");
	TCase *tc = tcase_create("request");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_bare);
	tcase_add_test(tc, test_modes);
	tcase_add_test(tc, test_all_keys);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_supported);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_spares);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
