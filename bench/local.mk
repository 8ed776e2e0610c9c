# Benchmarks (make bench, make bench-NAME). Each prints its figures, then its
# headline lines "bench-NAME: ...", each ratio as "ratio X [lo, hi] (n=N)"
# (median and 95 % interval). They start their own local cluster
# (testsuite/cluster/up.sh) with its own ports, so run them as root.
EXTRA_DIST += bench/bench_migration.py bench/README.md bench/bench_balance.py

# bench-check: every figure of bench/README.md is printed in the results
# file its paragraph names (bench/check_figures.py; it only reads text, so
# make check runs it too, as a test). The committed results go into the
# tarball.
EXTRA_DIST += bench/check_figures.py bench/results
TESTS += bench/check_figures.py
bench-check:
	$(PYTHON3) $(srcdir)/bench/check_figures.py $(srcdir)/bench/README.md \
		$(srcdir)/bench/results
.PHONY: bench-check

BENCH_TARGETS += bench-migration
bench-migration: all
	$(PYTHON3) $(srcdir)/bench/bench_migration.py --build $(abs_top_builddir) \
		--out $(abs_srcdir)/bench/results/migration.txt

# bench-restart: a crashed job (node frozen) computing again from its last
# image after Slurm's requeue, next to a fresh submission of the same job.
EXTRA_DIST += bench/bench_restart.py
BENCH_TARGETS += bench-restart
bench-restart: all
	$(PYTHON3) $(srcdir)/bench/bench_restart.py --build $(abs_top_builddir) \
		--out $(abs_srcdir)/bench/results/restart.txt

# bench-policy: the policy engine against an independent optimum (an ILP
# solved by GLPK), the check of its own exact search, reference strategies,
# scale and a switch tree's scenario (no cluster needed). Full output in
# bench/results/policy.txt.
# Needs GLPK (libglpk-dev): without it the target fails, saying so.
BENCH_TARGETS += bench-policy
if HAVE_GLPK
noinst_PROGRAMS += bench/bench_policy
bench_bench_policy_SOURCES = bench/bench_policy.c bench/bench_policy_ilp.c \
	bench/bench_policy_ilp.h bench/bench_policy_topo.c \
	bench/bench_policy_topo.h
bench_bench_policy_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
bench_bench_policy_LDADD = src/common/libsmig_core.la $(GLIB_LIBS) \
	$(GLPK_LIBS) -lm

bench-policy: bench/bench_policy
	SMIG_BENCH_TREE="$$(git -C $(srcdir) describe --always --dirty \
		2>/dev/null || echo unknown)" ./bench/bench_policy \
		> bench/policy.out 2>&1; rc=$$?; \
	cp bench/policy.out $(abs_srcdir)/bench/results/policy.txt; \
	cat bench/policy.out; exit $$rc
else
EXTRA_DIST += bench/bench_policy.c bench/bench_policy_ilp.c \
	bench/bench_policy_ilp.h bench/bench_policy_topo.c \
	bench/bench_policy_topo.h
bench-policy:
	@echo "bench-policy: needs GLPK (glpk.h, libglpk): apt-get install libglpk-dev, then run configure again" >&2; \
	exit 1
endif

# bench-monitoring: overhead of monitoring + the PMPI layer on an MPI app:
# a 2-rank heat on 2 nodes (real messages: the PMPI counting path runs) off,
# at the default interval and at interval=1s, interleaved rounds on one local
# cluster. Full output in bench/results/monitoring.txt. The balancer's
# ingestion with munge is bench-smigd's part (b).
EXTRA_DIST += bench/bench_monitoring.py
BENCH_TARGETS += bench-monitoring
bench-monitoring: all
	$(PYTHON3) $(srcdir)/bench/bench_monitoring.py --build $(abs_top_builddir) \
		--out $(abs_srcdir)/bench/results/monitoring.txt

# bench-images: the image store vs raw write/read, checksum vs disk, hand-off
# vs raw TCP copy (no cluster needed; runs on /var/tmp).
noinst_PROGRAMS += bench/bench_images
bench_bench_images_SOURCES = bench/bench_images.c
bench_bench_images_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XXHASH_CFLAGS)
bench_bench_images_LDADD = src/common/libsmig_core.la $(GLIB_LIBS) \
	$(XXHASH_LIBS) -lpthread

BENCH_TARGETS += bench-images
bench-images: bench/bench_images
	./bench/bench_images /var/tmp > bench/images.out || \
		{ cat bench/images.out; exit 1; }
	cp bench/images.out $(abs_srcdir)/bench/results/images.txt
	cat bench/images.out

# bench-balance: a heat job on a node slowed by a cpu cgroup quota, without
# migration, with --migrate=auto and placed well from the start (one local
# cluster), interleaved in rounds; output in bench/results/balance.txt, plot
# in bench/results/balance.svg.
BENCH_TARGETS += bench-balance
bench-balance: all
	$(PYTHON3) $(srcdir)/bench/bench_balance.py --build $(abs_top_builddir) \
		--out $(abs_srcdir)/bench/results/balance.txt \
		--svg $(abs_srcdir)/bench/results/balance.svg

# bench-soak: N drain migrations of running heat jobs (first node, last node,
# two nodes, node-local store in turn), counting hangs the product recovered
# from, unrecovered hangs and wrong results (issue 13). N: make bench-soak
# SOAK_N=200, or SOAK_N in the environment (default 50). Full output in
# bench/results/soak.txt; logs of failures kept under /var/tmp.
EXTRA_DIST += bench/bench_soak.py
BENCH_TARGETS += bench-soak
bench-soak: all
	$(PYTHON3) $(srcdir)/bench/bench_soak.py --build $(abs_top_builddir) \
		--migrations "$(SOAK_N)" --out $(abs_srcdir)/bench/results/soak.txt

# bench-smigd: slurmctld's CPU with smigd polling vs without on a cluster of
# 9 nodes + 1,991 configured nodes without slurmd (interleaved windows), then
# smigd's ingestion of 10,000 agents x 100 ranks through sockets with munge
# (bench_smigd_gen plays the agents of real jobs). Full output in
# bench/results/smigd.txt.
noinst_PROGRAMS += bench/bench_smigd_gen
bench_bench_smigd_gen_SOURCES = bench/bench_smigd_gen.c
bench_bench_smigd_gen_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
bench_bench_smigd_gen_LDADD = src/common/libsmig_core.la $(GLIB_LIBS)
EXTRA_DIST += bench/bench_smigd.py bench/benchlib.py

BENCH_TARGETS += bench-smigd
bench-smigd: all bench/bench_smigd_gen
	$(PYTHON3) $(srcdir)/bench/bench_smigd.py --build $(abs_top_builddir) \
		--out $(abs_srcdir)/bench/results/smigd.txt

# bench-gain: the policy engine's predicted gain against the gain the
# balancer measures on a local cluster after the move, for a slow node,
# heavy pairs split across nodes, and both (smig rebalance on jobs with
# samples). Full output in bench/results/gain.txt.
EXTRA_DIST += bench/bench_gain.py
BENCH_TARGETS += bench-gain
bench-gain: all
	$(PYTHON3) $(srcdir)/bench/bench_gain.py --build $(abs_top_builddir) \
		--out $(abs_srcdir)/bench/results/gain.txt

# bench-tracking: how the pre-copy finds what changed (issue 19): XXH3 block
# hashes against the kernel's soft-dirty bits (clear_refs + pagemap) and
# what each costs the application, on a 1 GiB buffer (no cluster needed).
# Output in bench/results/tracking.txt.
noinst_PROGRAMS += bench/bench_tracking
bench_bench_tracking_SOURCES = bench/bench_tracking.c
bench_bench_tracking_CFLAGS = $(AM_CFLAGS) $(XXHASH_CFLAGS)
bench_bench_tracking_LDADD = $(XXHASH_LIBS)

BENCH_TARGETS += bench-tracking
bench-tracking: bench/bench_tracking
	./bench/bench_tracking 1024 5 > bench/tracking.out || \
		{ cat bench/tracking.out; exit 1; }
	cp bench/tracking.out $(abs_srcdir)/bench/results/tracking.txt
	cat bench/tracking.out
