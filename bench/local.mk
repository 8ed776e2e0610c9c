# Benchmarks (make bench, make bench-NAME). Each prints its figures, then one headline ratio line.
EXTRA_DIST += bench
BENCH_TARGETS += bench-migration
bench-migration: all
	$(PYTHON3) $(srcdir)/bench/bench_migration.py --builddir=$(abs_top_builddir) --srcdir=$(abs_top_srcdir)
