#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sanitize.sh - the core and its unit tests built with ASan + UBSan, run
#
# usage: testsuite/sanitize.sh DIR
#   DIR   a build directory of its own (configured here if needed; run-tests
#         uses BUILD/asan), never the normal build: every object in it
#         carries the sanitizers
#
# Only the core (src/common) and the Check unit tests are built and run;
# the plugins run inside Slurm's daemons and are not built here. A leak,
# an invalid access or undefined behaviour fails the test it happens in
# (Check forks each test, so the sanitizer's report is in that test's log).

set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $# == 1 ]] || { sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
build=$1
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

mkdir -p "$build"
build=$(cd "$build" && pwd)
if [[ ! -f $build/Makefile || $repo/configure -nt $build/config.status ]]; then
	(cd "$build" && "$repo/configure" -q CFLAGS="-g -O1 $san" LDFLAGS="$san") ||
		{ echo "sanitize: configure failed: see $build/config.log" >&2; exit 1; }
fi

tests=()
for f in "$repo"/testsuite/unit/*-test.c; do
	t=${f#"$repo"/}
	tests+=("${t%.c}")
done
# The tools the unit tests run (image-cli-test: smig-image) carry the
# sanitizers too.
make -C "$build" -j2 src/common/libsmig_core.la contrib/tools/smig-image \
	"${tests[@]}" ||
	{ echo "sanitize: build failed" >&2; exit 1; }

# G_SLICE: glib's slice allocator would hide leaks from LeakSanitizer.
rc=0
G_SLICE=always-malloc G_DEBUG=gc-friendly \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	make -C "$build" check-TESTS TESTS="${tests[*]}" || rc=$?
for t in "${tests[@]}"; do
	log=$build/$t.log
	[[ -e $log ]] || continue
	printf 'sanitize: %s: %s\n' "${t##*/}" \
		"$(grep -E '^[0-9]+%: Checks' "$log" | tail -n 1)"
	if ((rc != 0)) && ! grep -qE '^100%: Checks' "$log"; then
		printf '\n--- %s\n' "$log"
		cat "$log"
	fi
done
((rc == 0)) || { echo "sanitize: unit tests failed under ASan/UBSan" >&2; exit 1; }
echo "sanitize: unit tests clean under ASan + UBSan"
