# Man pages: doc/man/manN/*.N.in, filled in with version and date.
MAN_IN = \
	doc/man/man1/smig.1.in \
	doc/man/man1/smig-image.1.in \
	doc/man/man3/smig.3.in \
	doc/man/man5/migrate.conf.5.in \
	doc/man/man7/slurm-migrate.7.in \
	doc/man/man8/smigd.8.in \
	doc/man/man8/spank_migrate.8.in
man_MANS += $(MAN_IN:.in=)
EXTRA_DIST += $(MAN_IN)
CLEANFILES += $(MAN_IN:.in=)
# Rebuilt when the .in changes too (found through VPATH out of tree).
$(MAN_IN:.in=): %: %.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && \
	sed -e 's|@PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g' -e 's|@MAN_DATE[@]|$(MAN_DATE)|g' \
	    $(srcdir)/$@.in > $@
