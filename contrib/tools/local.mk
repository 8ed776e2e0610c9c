# smig: the command line tool (smig show, plot, capture, move, rebalance,
# history; smig_link.c: the connection to the balancer they share).
bin_PROGRAMS += contrib/tools/smig
contrib_tools_smig_SOURCES = contrib/tools/smig.c contrib/tools/smig_capture.c \
	contrib/tools/smig_manual.c contrib/tools/smig_link.c contrib/tools/smig_link.h \
	contrib/tools/smig_images.c
contrib_tools_smig_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
contrib_tools_smig_LDADD = src/common/libsmig_core.la $(GLIB_LIBS) -lm

# smig-image: list, verify, show and extract recovery images (no balancer).
bin_PROGRAMS += contrib/tools/smig-image
contrib_tools_smig_image_SOURCES = contrib/tools/smig_image_cli.c
contrib_tools_smig_image_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XXHASH_CFLAGS)
contrib_tools_smig_image_LDADD = src/common/libsmig_image.la $(GLIB_LIBS) $(XXHASH_LIBS)
