# smigd: the balancer as its own daemon beside slurmctld. The only program
# that links libslurm (public API, <slurm/slurm.h>); the plugins never do.
sbin_PROGRAMS += smigd
smigd_SOURCES = \
	src/smigd/smigd.c \
	src/smigd/smigd_slurm.c src/smigd/smigd_slurm.h \
	src/smigd/smigd_topo.c src/smigd/smigd_topo.h \
	src/smigd/smigd_trigger.c src/smigd/smigd_trigger.h \
	src/smigd/smigd_comment.c src/smigd/smigd_comment.h \
	src/smigd/smigd_phase.c src/smigd/smigd_phase.h
smigd_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/smigd $(SLURM_CPPFLAGS)
smigd_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
smigd_LDADD = src/common/libsmig_core.la $(GLIB_LIBS) $(SLURM_LIBS) $(MUNGE_LIBS)
EXTRA_DIST += contrib/smigd.service
