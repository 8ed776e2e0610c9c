#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# packages.sh - build the Debian packages of this tree and check them with
# lintian, on this machine's release
#
# usage: testsuite/debian/packages.sh [--out DIR] [--release 13]
#   --out DIR      keep the .deb, .changes and the logs in DIR (default: a new
#                  directory under /var/tmp, printed at the end)
#   --release 13   build for Debian 13 instead: the same, inside a copy of
#                  the cached Debian 13 root (droot.sh; the copy in
#                  /var/tmp/smig-packages-13 goes at the end), with the
#                  host's network for apt-get
#
# Installs what it needs (debhelper, lintian and the build dependencies of
# debian/control, apt-get), copies the files git tracks (or, outside a git
# checkout, the tree) to a scratch directory, runs dpkg-buildpackage -us -uc
# there (the unit tests run as dh_auto_test), then lintian on the .changes.
# Exits non-zero if the build fails or lintian reports an error or a warning
# (overrides, each with a comment, live in debian/*.lintian-overrides).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../cluster/prepare.sh
. "$repo/testsuite/cluster/prepare.sh"

out='' release=''
while (($#)); do
	case $1 in
	--out) [[ $# -ge 2 ]] || prep_die "--out needs a directory"
	    out=$2; shift ;;
	--release) [[ $# -ge 2 ]] || prep_die "--release needs 13"
	    release=$2; shift ;;
	-h|--help) sed -n '4,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) prep_die "unknown argument '$1'" ;;
	esac
	shift
done
[[ $(id -u) == 0 ]] || prep_die "installs packages: run as root"

# --release 13: this script again, inside a scratch copy of the release's
# cached root, on a copy of the files git lists; the results come out in
# --out.
if [[ -n $release ]]; then
	case $release in
	13|trixie) release=13 ;;
	*) prep_die "--release '$release': only 13 (12 is this host: no --release)" ;;
	esac
	git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 ||
		prep_die "$repo is not a git checkout: the files to copy are git's list"
	out=${out:-$(mktemp -d /var/tmp/smig-packages.XXXXXX)}
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	scratch=/var/tmp/smig-packages-$release
	rm -rf "$scratch"
	mkdir -p "$scratch/src"
	trap 'rm -rf "$scratch"' EXIT
	# shellcheck source=droot.sh
	. "$here/droot.sh"
	croot=$(droot_make "$release")
	prep_say "copying the Debian $release root $croot to $scratch/root"
	cp -a --reflink=auto "$croot" "$scratch/root"
	git -C "$repo" ls-files -z --cached --others --exclude-standard |
		(cd "$repo" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
		tar -xf - -C "$scratch/src"
	prep_say "packages.sh inside the Debian $release root"
	droot_enter "$scratch/root" no "$scratch/src:/src:ro" "$out:/out" -- \
		/src/testsuite/debian/packages.sh --out /out ||
		prep_die "building the packages inside the Debian $release root failed (logs in $out)"
	exit 0
fi

# debian/control's Build-Depends, without version constraints; of
# alternatives ("pkgconf | pkg-config"), the first one installed, else the
# first (Debian 12 has pkg-config, 13 calls it obsolete for pkgconf).
build_deps() {
	local group alt pick
	sed -n '/^Build-Depends:/,/^[A-Z]/p' "$repo/debian/control" |
		sed -e 's/^Build-Depends://' -e '/^[A-Z][-A-Za-z]*:/d' |
		tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/[[:space:]]//g' |
		grep -v '^$' | grep -v '^debhelper-compat$' |
		while read -r group; do
			pick=${group%%|*}
			for alt in ${group//|/ }; do
				if [[ $(dpkg-query -W -f='${Status}' "$alt" 2>/dev/null) == "install ok installed" ]]; then
					pick=$alt
					break
				fi
			done
			echo "$pick"
		done
}
# shellcheck disable=SC2046
PREP_PACKAGES="debhelper lintian dpkg-dev $(build_deps | tr '\n' ' ')" prep_packages

out=${out:-$(mktemp -d /var/tmp/smig-packages.XXXXXX)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /var/tmp/smig-packages-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/slurm-migrate-0.1.0
mkdir "$src"
prep_say "copying the tree to $src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and new files, as they are in the working tree.
	git -C "$repo" ls-files -z --cached --others --exclude-standard |
		(cd "$repo" && xargs -0 cp --parents -P -t "$src")
else
	cp -a "$repo/." "$src/"
fi

prep_say "dpkg-buildpackage -us -uc (log: $out/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc) >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	prep_die "dpkg-buildpackage failed (log: $out/build.log)"
fi
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$work"/*.dsc \
	"$work"/*.tar.* "$out/"
grep -E '^# (TOTAL|PASS|FAIL|ERROR):' "$out/build.log" | sed 's/^/unit tests (dh_auto_test): /'

prep_say "lintian (log: $out/lintian.log)"
changes=$(ls "$out"/*.changes)
if ! lintian --info --fail-on error,warning "$changes" >"$out/lintian.log" 2>&1; then
	grep -E '^[EW]: ' "$out/lintian.log" || tail -n 20 "$out/lintian.log"
	prep_die "lintian failed or reported errors or warnings (log: $out/lintian.log)"
fi
ls -1 "$out"/*.deb
echo "packages: built and lintian-clean on $(. /etc/os-release && echo "$PRETTY_NAME") in $out"
