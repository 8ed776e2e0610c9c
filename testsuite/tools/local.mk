# testsuite/tools: programs the cluster tests run (not installed).
# smig-wire-send: one crafted message to the balancer (test_security_*.py).
noinst_PROGRAMS += testsuite/tools/smig-wire-send
testsuite_tools_smig_wire_send_SOURCES = testsuite/tools/smig-wire-send.c
testsuite_tools_smig_wire_send_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
testsuite_tools_smig_wire_send_LDADD = src/common/libsmig_core.la $(GLIB_LIBS)
