# Example MPI applications (built with mpicc's flags), used by the tests, demo and benchmarks.
noinst_PROGRAMS += contrib/examples/heat
contrib_examples_heat_SOURCES = contrib/examples/heat.c
contrib_examples_heat_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/contrib/libsmig
contrib_examples_heat_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
contrib_examples_heat_LDADD = contrib/libsmig/libsmig.la $(MPI_LIBS) -lm -lpthread
if HAVE_MPICH
# heat again against MPICH (mpicc.mpich's flags): tests of the agent's socket
noinst_PROGRAMS += contrib/examples/heat-mpich
contrib_examples_heat_mpich_SOURCES = contrib/examples/heat.c
contrib_examples_heat_mpich_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/contrib/libsmig
contrib_examples_heat_mpich_CFLAGS = $(AM_CFLAGS) $(MPICH_CFLAGS)
contrib_examples_heat_mpich_LDADD = contrib/libsmig/libsmig.la $(MPICH_LIBS) -lm -lpthread
endif
noinst_PROGRAMS += contrib/examples/pairs
contrib_examples_pairs_SOURCES = contrib/examples/pairs.c
contrib_examples_pairs_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/contrib/libsmig
contrib_examples_pairs_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
contrib_examples_pairs_LDADD = contrib/libsmig/libsmig.la $(MPI_LIBS)
noinst_PROGRAMS += contrib/examples/sigapp
contrib_examples_sigapp_SOURCES = contrib/examples/sigapp.c
contrib_examples_sigapp_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
contrib_examples_sigapp_LDADD = $(MPI_LIBS)
# Debian's LAMMPS migrated by capture=signal (test_app_lammps.py): no build
EXTRA_DIST += contrib/examples/lammps/README.md contrib/examples/lammps/in.melt \
	contrib/examples/lammps/lmp-migrate
