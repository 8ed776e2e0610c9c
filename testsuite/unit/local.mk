# Unit tests of the core (Check; no Slurm).
if HAVE_CHECK
UNIT_TESTS = \
	testsuite/unit/conf-test \
	testsuite/unit/request-test \
	testsuite/unit/wire-test \
	testsuite/unit/image-test \
	testsuite/unit/policy-test \
	testsuite/unit/hostlist-test \
	testsuite/unit/metrics-test \
	testsuite/unit/decide-test \
	testsuite/unit/log-test
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
# wire-test's munge round trip against a private munged.
TESTS += testsuite/unit/munge-test.sh
EXTRA_DIST += testsuite/unit/munge-test.sh
UNIT_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(CHECK_CFLAGS)
UNIT_LDADD = src/common/libsmig_core.la $(CHECK_LIBS) $(GLIB_LIBS)
testsuite_unit_conf_test_SOURCES = testsuite/unit/conf-test.c
testsuite_unit_conf_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_conf_test_LDADD = $(UNIT_LDADD)
testsuite_unit_request_test_SOURCES = testsuite/unit/request-test.c
testsuite_unit_request_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_request_test_LDADD = $(UNIT_LDADD)
testsuite_unit_wire_test_SOURCES = testsuite/unit/wire-test.c
testsuite_unit_wire_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_wire_test_LDADD = $(UNIT_LDADD)
testsuite_unit_image_test_SOURCES = testsuite/unit/image-test.c
testsuite_unit_image_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_image_test_LDADD = $(UNIT_LDADD)
testsuite_unit_policy_test_SOURCES = testsuite/unit/policy-test.c
testsuite_unit_policy_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_policy_test_LDADD = $(UNIT_LDADD)
testsuite_unit_hostlist_test_SOURCES = testsuite/unit/hostlist-test.c
testsuite_unit_hostlist_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_hostlist_test_LDADD = $(UNIT_LDADD)
testsuite_unit_metrics_test_SOURCES = testsuite/unit/metrics-test.c
testsuite_unit_metrics_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_metrics_test_LDADD = $(UNIT_LDADD) -lm
testsuite_unit_log_test_SOURCES = testsuite/unit/log-test.c
testsuite_unit_log_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_log_test_LDADD = $(UNIT_LDADD)
testsuite_unit_decide_test_SOURCES = testsuite/unit/decide-test.c
testsuite_unit_decide_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_decide_test_LDADD = $(UNIT_LDADD) -lm
endif
# balancer-test: a real balancer over loopback TCP (the balancer helper's entry).
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/balancer-test
TESTS += testsuite/unit/balancer-test
testsuite_unit_balancer_test_SOURCES = testsuite/unit/balancer-test.c
testsuite_unit_balancer_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_balancer_test_LDADD = $(UNIT_LDADD)
endif
# topology-test: switch tree, byte costs, evacuations near partners.
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/topology-test
TESTS += testsuite/unit/topology-test
testsuite_unit_topology_test_SOURCES = testsuite/unit/topology-test.c
testsuite_unit_topology_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_topology_test_LDADD = $(UNIT_LDADD)
endif
# limits-test: the balancer's resource caps over loopback (security helper's).
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/limits-test
TESTS += testsuite/unit/limits-test
testsuite_unit_limits_test_SOURCES = testsuite/unit/limits-test.c
testsuite_unit_limits_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_limits_test_LDADD = $(UNIT_LDADD)
endif
# msgs-test: the typed wire messages (smig_msgs.def) and doc/design.md's table.
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/msgs-test
TESTS += testsuite/unit/msgs-test
testsuite_unit_msgs_test_SOURCES = testsuite/unit/msgs-test.c
testsuite_unit_msgs_test_CFLAGS = $(UNIT_CFLAGS) -DSMIG_TOP_SRCDIR='"$(abs_top_srcdir)"'
testsuite_unit_msgs_test_LDADD = $(UNIT_LDADD)
endif
# badinput-test: doc/bad-input.md's tables against the parsers (security helper's).
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/badinput-test
TESTS += testsuite/unit/badinput-test
testsuite_unit_badinput_test_SOURCES = testsuite/unit/badinput-test.c
testsuite_unit_badinput_test_CFLAGS = $(UNIT_CFLAGS) -DSMIG_TOP_SRCDIR='"$(abs_top_srcdir)"'
testsuite_unit_badinput_test_LDADD = $(UNIT_LDADD)
endif
# state-test: the balancer's state file and a balancer restarted from it.
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/state-test
TESTS += testsuite/unit/state-test
testsuite_unit_state_test_SOURCES = testsuite/unit/state-test.c
testsuite_unit_state_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_state_test_LDADD = $(UNIT_LDADD)
endif
# smigd_comment-test: smigd's segment of AdminComment (pure; no Slurm).
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/smigd_comment-test
TESTS += testsuite/unit/smigd_comment-test
testsuite_unit_smigd_comment_test_SOURCES = testsuite/unit/smigd_comment-test.c \
	src/smigd/smigd_comment.c
testsuite_unit_smigd_comment_test_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/smigd
testsuite_unit_smigd_comment_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_smigd_comment_test_LDADD = $(CHECK_LIBS) $(GLIB_LIBS)
endif
# agent-test: the node agent's protocol engine, against a fake and a real balancer.
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/agent-test
TESTS += testsuite/unit/agent-test
testsuite_unit_agent_test_SOURCES = testsuite/unit/agent-test.c
testsuite_unit_agent_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_agent_test_LDADD = $(UNIT_LDADD)
endif
# partner-test: partner copies of a node-local store (choice, copy over
# loopback TCP checked on arrival, retention, removal with the job).
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/partner-test
TESTS += testsuite/unit/partner-test
testsuite_unit_partner_test_SOURCES = testsuite/unit/partner-test.c
testsuite_unit_partner_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_partner_test_LDADD = $(UNIT_LDADD)
endif
# image-cli-test: smig-image(1) on good, damaged and truncated images, and
# doc/bad-input.md's smig-image table.
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/image-cli-test
TESTS += testsuite/unit/image-cli-test
testsuite_unit_image_cli_test_SOURCES = testsuite/unit/image-cli-test.c
testsuite_unit_image_cli_test_CFLAGS = $(UNIT_CFLAGS) \
	-DSMIG_IMAGE_TOOL='"$(abs_top_builddir)/contrib/tools/smig-image$(EXEEXT)"' \
	-DSMIG_TOP_SRCDIR='"$(abs_top_srcdir)"'
testsuite_unit_image_cli_test_LDADD = $(UNIT_LDADD) -lutil
endif
# pkgconfig-test: a program built with pkg-config slurm-migrate-uninstalled.
TESTS += testsuite/unit/pkgconfig-test.sh
EXTRA_DIST += testsuite/unit/pkgconfig-test.sh
AM_TESTS_ENVIRONMENT = CC='$(CC)'; PKG_CONFIG='$(PKG_CONFIG)'; \
	abs_top_builddir='$(abs_top_builddir)'; export CC PKG_CONFIG abs_top_builddir;

# Without Check no unit test is built: make check fails, saying so, rather
# than passing with "# TOTAL: 0".
if !HAVE_CHECK
check-local:
	@echo "make check: configure found no Check (apt-get install check, then configure again): no unit test can run" >&2; exit 1
endif
# lifecycle-test: a job's images when it ends (Slurm's state -> phase ->
# fate, the marker, a removal that follows no link); <slurm/slurm.h> for
# its macros only, no libslurm.
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/lifecycle-test
TESTS += testsuite/unit/lifecycle-test
testsuite_unit_lifecycle_test_SOURCES = testsuite/unit/lifecycle-test.c \
	src/smigd/smigd_phase.c
testsuite_unit_lifecycle_test_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/smigd $(SLURM_CPPFLAGS)
testsuite_unit_lifecycle_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_lifecycle_test_LDADD = $(UNIT_LDADD)
endif
# region-test: images of memory regions and their pre-copy (smig_region.h).
if HAVE_CHECK
check_PROGRAMS += testsuite/unit/region-test
TESTS += testsuite/unit/region-test
testsuite_unit_region_test_SOURCES = testsuite/unit/region-test.c
testsuite_unit_region_test_CFLAGS = $(UNIT_CFLAGS)
testsuite_unit_region_test_LDADD = $(UNIT_LDADD) -lpthread
endif
