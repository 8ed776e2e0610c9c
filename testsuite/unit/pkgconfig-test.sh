#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# pkgconfig-test.sh - a program built against the build tree with nothing
# but "pkg-config --cflags --libs slurm-migrate-uninstalled"
# (PKG_CONFIG_PATH=the build directory) compiles with
# <slurm-migrate/smig.h> and with <smig.h>, links the build tree's libsmig,
# and runs without LD_LIBRARY_PATH, calling into that library.
# Run by make check from the build directory (CC, PKG_CONFIG from make).

set -euo pipefail

build=${abs_top_builddir:-$PWD}
cc=${CC:-cc}
pkgconfig=${PKG_CONFIG:-pkg-config}
dir=$(mktemp -d "${TMPDIR:-/tmp}/pkgconfig-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() { printf 'pkgconfig-test: FAIL: %s\n' "$*" >&2; exit 1; }

flags=$(PKG_CONFIG_PATH=$build "$pkgconfig" --cflags --libs \
	slurm-migrate-uninstalled) ||
	fail "pkg-config slurm-migrate-uninstalled failed (PKG_CONFIG_PATH=$build)"
printf 'pkgconfig-test: flags: %s\n' "$flags"
want=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$build/smig_config.h")
got=$(PKG_CONFIG_PATH=$build "$pkgconfig" --modversion slurm-migrate-uninstalled)
[[ $got == "$want" ]] || fail "version $got, smig_config.h says $want"

for hdr in '<slurm-migrate/smig.h>' '<smig.h>'; do
	cat > "$dir/app.c" <<EOC
#include <stdio.h>
#include <string.h>
#include $hdr

int main(void)
{
	/* Not under srun --migrate: no generation, and a real call into the
	 * build tree's libsmig. */
	printf("gen=%llu ok=%s\n", (unsigned long long) smig_generation(),
	       smig_strerror(0));
	return 0;
}
EOC
	# shellcheck disable=SC2086 # the flags are words
	"$cc" -Wall -Werror -o "$dir/app" "$dir/app.c" $flags ||
		fail "$hdr: compiling with the flags above failed"
	out=$(env -u LD_LIBRARY_PATH "$dir/app") || fail "$hdr: the program failed"
	printf 'pkgconfig-test: %s: %s\n' "$hdr" "$out"
	[[ $out == "gen=0 ok=success" ]] ||
		fail "$hdr: unexpected output: $out"
	lib=$(env -u LD_LIBRARY_PATH ldd "$dir/app" | awk '/libsmig\.so/ {print $3}')
	[[ $lib == "$build/contrib/libsmig/.libs/libsmig.so"* ]] ||
		fail "$hdr: the program loads libsmig from \"$lib\", not the build tree"
done
echo "pkgconfig-test: ok"
