# spank_migrate.so: --migrate option (srun/sbatch/salloc), node agent (slurmstepd), relaunch (srun).
# Public Slurm API only; libpmix is reached through the copy slurmstepd already loaded.
slurmplugin_LTLIBRARIES += spank_migrate.la
spank_migrate_la_SOURCES = \
	src/plugins/spank/migrate/spank_migrate.c \
	src/plugins/spank/migrate/agent.c \
	src/plugins/spank/migrate/agent_signal.c \
	src/plugins/spank/migrate/agent_signal.h \
	src/plugins/spank/migrate/agent_sock.c \
	src/plugins/spank/migrate/agent_sock.h \
	src/plugins/spank/migrate/relaunch.c \
	src/plugins/spank/migrate/spares.c \
	src/plugins/spank/migrate/relaunch_cmd.c \
	src/plugins/spank/migrate/sample.c \
	src/plugins/spank/migrate/slurm_compat.h \
	src/plugins/spank/migrate/spank_migrate.h
spank_migrate_la_CPPFLAGS = $(AM_CPPFLAGS) $(SLURM_CPPFLAGS) $(PMIX_CFLAGS) \
	-DSMIG_LIBDIR='"$(pkglibdir)"'
spank_migrate_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
spank_migrate_la_LIBADD = src/common/libsmig_core.la -ldl -lpthread
spank_migrate_la_LDFLAGS = -module -avoid-version -shared \
	-export-symbols-regex '^(plugin_(name|type|version)|spank_.*|slurm_spank_.*)$$'
