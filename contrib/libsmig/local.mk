# libsmig.so: the application library (installed API <slurm-migrate/smig.h>).
lib_LTLIBRARIES += contrib/libsmig/libsmig.la
contrib_libsmig_libsmig_la_SOURCES = contrib/libsmig/smig.c contrib/libsmig/smig.h \
	contrib/libsmig/smig_event.c contrib/libsmig/smig_capture.c \
	contrib/libsmig/smig_restore.c contrib/libsmig/smig_chan.c \
	contrib/libsmig/smig_precopy.c contrib/libsmig/smig_int.h
contrib_libsmig_libsmig_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/contrib/libsmig $(PMIX_CFLAGS)
contrib_libsmig_libsmig_la_LIBADD = src/common/libsmig_image.la $(PMIX_LIBS) -lpthread
contrib_libsmig_libsmig_la_LDFLAGS = -version-info 3:0:3 -export-symbols-regex '^smig_'
smigincludedir = $(includedir)/slurm-migrate
smiginclude_HEADERS = contrib/libsmig/smig.h
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = contrib/libsmig/slurm-migrate.pc
EXTRA_DIST += contrib/libsmig/slurm-migrate.pc.in \
	contrib/libsmig/slurm-migrate-uninstalled.pc.in
# The build tree as a prefix: configure writes slurm-migrate-uninstalled.pc
# into the build directory, and the header is <slurm-migrate/smig.h> here
# too (include/slurm-migrate/smig.h, a copy kept current by make).
noinst_DATA = include/slurm-migrate/smig.h
CLEANFILES += include/slurm-migrate/smig.h
include/slurm-migrate/smig.h: $(srcdir)/contrib/libsmig/smig.h
	$(AM_V_GEN)$(MKDIR_P) $(@D) && cp $(srcdir)/contrib/libsmig/smig.h $@

# Fortran (optional, when configure found a compiler): the module smig
# (contrib/libsmig/smig_mod.f90 -> smig.mod + smig_mod.o, installed beside
# smig.h) and the example contrib/examples/counter.
EXTRA_DIST += contrib/libsmig/smig_mod.f90 contrib/examples/counter.f90
if HAVE_FC
FCFLAGS ?= -O2
contrib/libsmig/smig_mod.o: $(srcdir)/contrib/libsmig/smig_mod.f90
	@$(MKDIR_P) contrib/libsmig
	$(FC) $(FCFLAGS) -J contrib/libsmig -c $(srcdir)/contrib/libsmig/smig_mod.f90 -o $@
contrib/libsmig/smig.mod: contrib/libsmig/smig_mod.o
contrib/examples/counter: $(srcdir)/contrib/examples/counter.f90 \
		contrib/libsmig/smig_mod.o contrib/libsmig/libsmig.la
	@$(MKDIR_P) contrib/examples
	$(FC) $(FCFLAGS) -I contrib/libsmig -J contrib/examples \
		$(srcdir)/contrib/examples/counter.f90 \
		contrib/libsmig/smig_mod.o -Lcontrib/libsmig/.libs -lsmig \
		-Wl,-rpath,$(abs_top_builddir)/contrib/libsmig/.libs -o $@
smigfortrandir = $(smigincludedir)
smigfortran_DATA = contrib/libsmig/smig.mod contrib/libsmig/smig_mod.o
noinst_SCRIPTS = contrib/examples/counter
CLEANFILES += contrib/libsmig/smig.mod contrib/libsmig/smig_mod.o \
	contrib/examples/counter contrib/examples/counter_state.mod
endif
