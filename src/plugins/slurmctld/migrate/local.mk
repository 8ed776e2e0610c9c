# slurmctld_migrate.so: SlurmctldPlugstack=migrate, the balancer's host in slurmctld.
# Needs Slurm's internal headers (--with-slurm-source).
if HAVE_SLURM_SOURCE
slurmplugin_LTLIBRARIES += slurmctld_migrate.la
slurmctld_migrate_la_SOURCES = src/plugins/slurmctld/migrate/slurmctld_migrate.c
# Slurm's source tree first: its "config.h" must win (ours is smig_config.h).
slurmctld_migrate_la_CPPFLAGS = $(SLURM_SRC_CPPFLAGS) $(AM_CPPFLAGS) $(SLURM_CPPFLAGS)
slurmctld_migrate_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
slurmctld_migrate_la_LIBADD = src/common/libsmig_core.la $(GLIB_LIBS) $(MUNGE_LIBS) $(XXHASH_LIBS)
slurmctld_migrate_la_LDFLAGS = -module -avoid-version -shared -rpath $(slurmplugindir) \
	-export-symbols-regex '^(plugin_(name|type|version)|init|fini|slurmctld_plugstack_p_get_config)$$'
endif
EXTRA_DIST += src/plugins/slurmctld/migrate/slurmctld_migrate.c
