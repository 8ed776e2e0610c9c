# Example MPI applications (built with mpicc's flags), used by the tests, demo and benchmarks.
# They include <slurm-migrate/smig.h> as an installed program does (the build
# tree's copy in include/), and are installed as sources beside the docs
# (pkg-config --variable=examplesdir slurm-migrate) to build as the README shows.
smigexamplesdir = $(docdir)/examples
dist_smigexamples_DATA = contrib/examples/heat.c contrib/examples/pairs.c \
	contrib/examples/sigapp.c
noinst_PROGRAMS += contrib/examples/heat
contrib_examples_heat_SOURCES = contrib/examples/heat.c
contrib_examples_heat_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_builddir)/include
contrib_examples_heat_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
contrib_examples_heat_LDADD = contrib/libsmig/libsmig.la $(MPI_LIBS) -lm -lpthread
if HAVE_MPICH
# heat again against MPICH (mpicc.mpich's flags): tests of the agent's socket
noinst_PROGRAMS += contrib/examples/heat-mpich
contrib_examples_heat_mpich_SOURCES = contrib/examples/heat.c
contrib_examples_heat_mpich_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_builddir)/include
contrib_examples_heat_mpich_CFLAGS = $(AM_CFLAGS) $(MPICH_CFLAGS)
contrib_examples_heat_mpich_LDADD = contrib/libsmig/libsmig.la $(MPICH_LIBS) -lm -lpthread
$(contrib_examples_heat_mpich_OBJECTS): include/slurm-migrate/smig.h
endif
noinst_PROGRAMS += contrib/examples/pairs
contrib_examples_pairs_SOURCES = contrib/examples/pairs.c
contrib_examples_pairs_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_builddir)/include
contrib_examples_pairs_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
contrib_examples_pairs_LDADD = contrib/libsmig/libsmig.la $(MPI_LIBS)
$(contrib_examples_heat_OBJECTS) $(contrib_examples_pairs_OBJECTS): \
	include/slurm-migrate/smig.h
noinst_PROGRAMS += contrib/examples/sigapp
contrib_examples_sigapp_SOURCES = contrib/examples/sigapp.c
contrib_examples_sigapp_CFLAGS = $(AM_CFLAGS) $(MPI_CFLAGS)
contrib_examples_sigapp_LDADD = $(MPI_LIBS)
# Debian's LAMMPS migrated by capture=signal (test_app_lammps.py): no build
EXTRA_DIST += contrib/examples/lammps/README.md contrib/examples/lammps/in.melt \
	contrib/examples/lammps/lmp-migrate
