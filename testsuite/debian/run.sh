#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# run.sh - run ./run-tests or ./run-demo of this tree inside a Debian root
#
# usage: testsuite/debian/run.sh run-tests|run-demo RELEASE [ARGS...]
#   RELEASE  13 or sid (12 is this host: plain ./run-tests)
#   ARGS     passed to the command inside (e.g. -k EXPR, --core)
#
# Called by ./run-tests --debian RELEASE and ./run-demo --debian RELEASE.
# The tree's files (git ls-files: tracked and new files, as they are in the
# working tree) are copied into $SMIG_DEBIAN_WORK (default
# /var/tmp/smig-debian-RELEASE)/src, the build goes to .../build, and the
# command runs inside the release's cached root (droot.sh, made on first
# use) in its own namespaces with only loopback, as
#   /w/src/run-tests --in-root --build /w/build ARGS
# --in-root builds and tests with what the root has (it installs nothing)
# and leaves out what needs the host's tools (sanitizers, fuzzing). The
# output comes here and to .../RUN.log, the exit status is the command's;
# every process of the root ends with it (also on failure or Ctrl-C).

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

(($# >= 2)) || die "usage: run.sh run-tests|run-demo RELEASE [ARGS...]"
cmd=$1 rel=$2
shift 2
case $cmd in
run-tests|run-demo) ;;
*) die "'$cmd': not run-tests or run-demo" ;;
esac
case $rel in
13|trixie) rel=13 ;;
sid|unstable) rel=sid ;;
12|bookworm) die "--debian $rel: Debian 12 is this host's release: run ./$cmd without --debian" ;;
*) die "--debian $rel: not 13 or sid" ;;
esac
[[ $(id -u) == 0 ]] || die "run as root: enters namespaces, starts Slurm daemons"
command -v git >/dev/null && git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 ||
	die "$repo is not a git checkout: the files to copy are git's list"

work=${SMIG_DEBIAN_WORK:-/var/tmp/smig-debian-$rel}
mkdir -p "$work/src" "$work/build"
# Jobs of the test user run programs from the build: readable by all.
chmod 755 "$work" "$work/src" "$work/build"

# The tree as it is now. Files kept from an earlier copy keep their times
# (tar keeps the working tree's), so make rebuilds only what changed;
# files that are no longer in the list go.
printf '\n=== copying %s into %s/src\n' "$repo" "$work"
git -C "$repo" ls-files -z --cached --others --exclude-standard |
	sort -z >"$work/files.new"
if [[ -f $work/files ]]; then
	comm -z -23 "$work/files" "$work/files.new" |
		(cd "$work/src" && xargs -0 -r rm -f --)
fi
(cd "$repo" && tar --null -T "$work/files.new" --ignore-failed-read -cf - 2>/dev/null) |
	tar -xf - -C "$work/src" || die "copying the tree into $work/src failed"
mv "$work/files.new" "$work/files"

log=$work/$cmd.log
printf '=== %s inside the Debian %s root (output also in %s)\n' "$cmd" "$rel" "$log"
start=$SECONDS
rc=0
# droot.sh in the background (stdin kept) so that a signal to this script
# alone reaches it: it ends the root's namespaces, and all inside.
"$here/droot.sh" run --net --bind "$work:/w" "$rel" -- \
	/w/src/"$cmd" --in-root --build /w/build "$@" <&0 > >(tee "$log") 2>&1 &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' HUP INT TERM
wait "$child" || rc=$?
if kill -0 "$child" 2>/dev/null; then
	wait "$child" || rc=$?
fi
trap - HUP INT TERM
wait	# tee
printf '%s --debian %s: exit %d after %ds (logs in %s: %s.log, build/pytest.log, build/test-cluster/)\n' \
	"$cmd" "$rel" "$rc" "$((SECONDS - start))" "$work" "$cmd"
exit "$rc"
