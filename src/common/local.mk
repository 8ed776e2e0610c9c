# src/common: the Slurm-free core.
# libsmig_image.la: image format only (libc + xxhash), shared with contrib/libsmig.
noinst_LTLIBRARIES += src/common/libsmig_image.la
src_common_libsmig_image_la_SOURCES = src/common/smig_image.c \
	src/common/smig_image_store.c \
	src/common/smig_image_handoff.c src/common/smig_image.h \
	src/common/smig_image_int.h src/common/smig_region.c \
	src/common/smig_region.h
src_common_libsmig_image_la_CFLAGS = $(AM_CFLAGS) $(XXHASH_CFLAGS)
src_common_libsmig_image_la_LIBADD = $(XXHASH_LIBS)

# libsmig_core.la: glib + munge, never Slurm.
noinst_LTLIBRARIES += src/common/libsmig_core.la
src_common_libsmig_core_la_SOURCES = \
	src/common/smig_error.c src/common/smig_error.h \
	src/common/smig_log.c src/common/smig_log.h \
	src/common/smig_conf.c src/common/smig_conf.h \
	src/common/smig_request.c src/common/smig_request.h \
	src/common/smig_wire.c src/common/smig_wire.h \
	src/common/smig_msgs.c src/common/smig_msgs.h \
	src/common/smig_auth.c src/common/smig_auth.h \
	src/common/smig_policy.c src/common/smig_policy.h \
	src/common/smig_policy_engine.c \
	src/common/smig_policy_engine_model.c \
	src/common/smig_policy_engine_state.c \
	src/common/smig_policy_engine_search.c \
	src/common/smig_policy_engine_swap.c \
	src/common/smig_policy_engine_int.h \
	src/common/smig_topology.c src/common/smig_topology.h \
	src/common/smig_balancer.c src/common/smig_balancer.h \
	src/common/smig_balancer_int.h \
	src/common/smig_balancer_poller.c \
	src/common/smig_balancer_conn.c \
	src/common/smig_balancer_registry.c \
	src/common/smig_balancer_capture.c \
	src/common/smig_balancer_history.c \
	src/common/smig_balancer_jobscope.c \
	src/common/smig_balancer_trigger.c \
	src/common/smig_balancer_request.c \
	src/common/smig_balancer_state.c \
	src/common/smig_hostlist.c src/common/smig_hostlist.h \
	src/common/smig_metrics.c src/common/smig_metrics.h \
	src/common/smig_decide.c src/common/smig_decide.h \
	src/common/smig_state.c src/common/smig_state.h \
	src/common/smig_agent.c src/common/smig_agent.h \
	src/common/smig_agent_store.c src/common/smig_agent_store.h \
	src/common/smig_lifecycle.c src/common/smig_lifecycle.h \
	src/common/smig_partner.c src/common/smig_partner.h
# The wire schema, included by smig_msgs.[ch].
EXTRA_DIST += src/common/smig_msgs.def
src_common_libsmig_core_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(MUNGE_CFLAGS)
src_common_libsmig_core_la_LIBADD = src/common/libsmig_image.la \
	$(GLIB_LIBS) $(MUNGE_LIBS) $(METIS_LIBS) -lm
