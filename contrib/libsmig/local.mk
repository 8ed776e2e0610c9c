# libsmig.so: the application library (installed API <slurm-migrate/smig.h>).
lib_LTLIBRARIES += contrib/libsmig/libsmig.la
contrib_libsmig_libsmig_la_SOURCES = contrib/libsmig/smig.c contrib/libsmig/smig.h
contrib_libsmig_libsmig_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/contrib/libsmig $(PMIX_CFLAGS)
contrib_libsmig_libsmig_la_LIBADD = src/common/libsmig_image.la $(PMIX_LIBS) -lpthread
contrib_libsmig_libsmig_la_LDFLAGS = -version-info 0:0:0 -export-symbols-regex '^smig_'
smigincludedir = $(includedir)/slurm-migrate
smiginclude_HEADERS = contrib/libsmig/smig.h
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = contrib/libsmig/slurm-migrate.pc
EXTRA_DIST += contrib/libsmig/slurm-migrate.pc.in
