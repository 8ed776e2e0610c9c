# smig: the command line tool (smig show, smig plot; other subcommands add
# their file to contrib_tools_smig_SOURCES, e.g. smig_capture.c).
bin_PROGRAMS += contrib/tools/smig
contrib_tools_smig_SOURCES = contrib/tools/smig.c contrib/tools/smig_capture.c
contrib_tools_smig_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
contrib_tools_smig_LDADD = src/common/libsmig_core.la $(GLIB_LIBS) -lm
