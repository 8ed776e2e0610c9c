# libsmig_pmpi.so: per-peer byte counts through the MPI profiling interface
# (LD_PRELOAD by the node agent with --migrate=...,affinity). A module only
# the agent loads, not a library to link with: installed in the private
# $(pkglibdir) (<libdir>/slurm-migrate), where the agent looks for it.
pkglib_LTLIBRARIES = contrib/pmpi/libsmig_pmpi.la
contrib_pmpi_libsmig_pmpi_la_SOURCES = contrib/pmpi/smig_pmpi.c
contrib_pmpi_libsmig_pmpi_la_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS) -fvisibility=default
contrib_pmpi_libsmig_pmpi_la_LIBADD = $(MPI_LIBS) -lpthread
contrib_pmpi_libsmig_pmpi_la_LDFLAGS = -avoid-version -shared
