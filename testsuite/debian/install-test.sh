#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# install-test.sh - install slurm-migrate into a fresh Debian root as an admin
# would, start a small Slurm cluster there and migrate a rank
#
# usage: testsuite/debian/install-test.sh --from readme|packages [--release 12|13]
#                                          [--debs DIR] [--keep]
#   --from readme    the README's own commands (the blocks marked
#                    "<!-- install-test: NAME -->", taken from README.md at
#                    each run): the build dependencies' apt-get line,
#                    configure, make, make check, make install, the systemd
#                    unit, plugstack.conf, migrate.conf, smigd; in a source
#                    tree of the files git lists (no build tree)
#   --from packages  testsuite/debian/packages.sh builds the packages on the
#                    release (here, or for 13 inside its cached build root),
#                    then the README's apt-get install and enabling lines;
#                    after the migration apt-get purge, and nothing of them
#                    may be left (files, systemd units)
#   --release REL    12 (default) or 13
#   --debs DIR       (packages) use the .deb files in DIR instead of building
#   --keep           keep the root after a success (it is kept after a failure)
#
# Each run starts from a copy of the release's bare debootstrap (droot.sh
# base: nothing of ours, no Slurm; cached in /var/cache/slurm-migrate/roots,
# made once, ~2 min) in /var/tmp/smig-install-REL-FROM/root. Inside, in
# private namespaces (droot.sh): apt-get installs the site's Slurm (slurmctld,
# slurmd, slurm-client, munge) and what the README says; the downloaded
# packages are kept for the next run in
# /var/cache/slurm-migrate/roots/apt-CODENAME.
# Then, with only loopback, /etc/slurm/slurm.conf of a 3-node cluster (three
# slurmd -N nodeK on the root's one host), munged, slurmctld, the slurmds and
# smigd (its systemd unit's ExecStart and User, started as systemctl would:
# there is no systemd in the root) start; an ordinary user builds heat
# (the installed contrib/examples/heat.c) with the README's pkg-config lines, runs it
# once without migration, then in an sbatch job with srun --mpi=pmix
# --migrate; a drain of one of the step's nodes must move its ranks and the
# job end with the same checksum. Every daemon is stopped by its PID; the
# namespaces end with each step, so nothing stays mounted or running, also
# after a failure or Ctrl-C. Logs: /var/tmp/smig-install-REL-FROM/logs.
# Runs as root. The cluster step holds /var/tmp/smig-bench.lock
# ($SMIG_BENCH_LOCK), the lock of the machine's timing-sensitive runs.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=droot.sh
. "$here/droot.sh"

die() { printf 'install-test: error: %s\n' "$*" >&2; exit 1; }
say() { printf '\n=== install-test: %s (%ds)\n' "$*" "$((SECONDS - start))"; }
usage() { sed -n '4,22p' "$0" | sed 's/^# \{0,1\}//'; }

from='' rel=12 debs='' keep=no
while (($#)); do
	case $1 in
	--from) [[ $# -ge 2 ]] || die "--from needs readme or packages"
	    from=$2; shift ;;
	--release) [[ $# -ge 2 ]] || die "--release needs 12 or 13"
	    rel=$2; shift ;;
	--debs) [[ $# -ge 2 ]] || die "--debs needs a directory"
	    debs=$(cd "$2" && pwd) || die "--debs $2: no such directory"; shift ;;
	--keep) keep=yes ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$1'" ;;
	esac
	shift
done
case $from in
readme|packages) ;;
*) usage >&2; die "--from '$from': not readme or packages" ;;
esac
case $rel in
12|bookworm) rel=12 ;;
13|trixie) rel=13 ;;
*) die "--release '$rel': not 12 or 13" ;;
esac
[[ -z $debs || $from == packages ]] || die "--debs: only with --from packages"
[[ $(id -u) == 0 ]] || die "run as root: makes roots, enters namespaces, starts Slurm daemons"
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 ||
	die "$repo is not a git checkout: the files to copy are git's list"
start=$SECONDS
code=$(droot_codename "$rel")
work=/var/tmp/smig-install-$rel-$from
root=$work/root
apt_cache=$DROOT_CACHE/apt-$code
lock=${SMIG_BENCH_LOCK:-/var/tmp/smig-bench.lock}

# --- the README's blocks: the line after a marker opens a fenced block
mkdir -p "$work"
rm -rf "${work:?}/root" "$work/readme" "$work/logs" "$work/debs"
mkdir -p "$work/readme" "$work/logs" "$apt_cache/partial"
# The one list of what may run a launch again, and of what forbids it: the
# pytest harness's (testsuite/python/lib/cluster.py), one regex a file for
# install-inside.sh's ompi_flake() (grep -P takes a single pattern).
python3 - "$repo/testsuite/python/lib" "$work" <<'PY' || die "cannot read the Open MPI start-up patterns"
import sys
sys.path.insert(0, sys.argv[1])
import cluster
for name, pats in (("ompi-flake.re", cluster.MPI_FLAKE_PATTERNS),
                   ("ours.re", [cluster.OURS_RE]),
                   ("ours-log.re", [cluster.OURS_LOG_ERROR_RE])):
    with open(f"{sys.argv[2]}/{name}", "w") as f:
        f.write("|".join(f"(?:{p})" for p in pats) + "\n")
PY
awk -v out="$work/readme" '
	/^<!-- install-test: [a-z-]+ -->$/ { name = $3; next }
	name != "" && !inblock && /^```/ { inblock = 1; file = out "/" name; printf "" > file; next }
	inblock && /^```$/ { inblock = 0; close(file); name = ""; next }
	inblock { print > file; next }
	name != "" { name = "" }
' "$repo/README.md"
want="source-build-deps source-build source-smigd-unit enable-plugstack
	enable-migrate-conf enable-smigd user-build-app"
[[ $from == packages ]] && want="packages-install packages-enable user-build-app"
for b in $want; do
	[[ -s $work/readme/$b ]] ||
		die "README.md has no block marked '<!-- install-test: $b -->' (a fenced block on the next line)"
done

# --- the packages, built on the release
if [[ $from == packages && -z $debs ]]; then
	debs=$work/debs
	say "building the packages for Debian $rel (testsuite/debian/packages.sh)"
	if [[ $rel == 12 ]]; then
		"$here/packages.sh" --out "$debs"
	else
		"$here/packages.sh" --release "$rel" --out "$debs"
	fi
fi

# --- a fresh root: a copy of the bare debootstrap, the harness beside it
base=$(droot_base "$rel")
say "copying $base to $root"
cp -a --reflink=auto "$base" "$root"
if [[ $from == readme ]]; then
	# The source tree as git lists it (tracked and new files, as they are
	# in the working tree): no build tree, nothing ignored.
	mkdir -p "$root/usr/local/src/slurm-migrate"
	git -C "$repo" ls-files -z --cached --others --exclude-standard |
		(cd "$repo" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
		tar -xf - -C "$root/usr/local/src/slurm-migrate"
fi

# inside STEP NET - run install-inside.sh STEP in the root; NET yes: only
# loopback (the cluster), no: the host's network (apt).
inside() {
	local step=$1 net=$2 binds=("$here:/t:ro" "$work:/w")
	[[ $net == no ]] && binds+=("$apt_cache:/var/cache/apt/archives")
	[[ -n $debs ]] && binds+=("$debs:/tmp/pkgs:ro")
	droot_enter "$root" "$net" "${binds[@]}" -- \
		/bin/bash /t/install-inside.sh "$step" "$from" "$rel"
}

# droot_enter traps HUP, INT and TERM for its namespace; an interrupted
# step ends the run.
rc=0
say "install (the host's network for apt-get)"
inside install no 2>&1 | tee "$work/logs/install.log" || rc=$?
if ((rc == 0)); then
	# Only the cluster holds the machine's lock of timing-sensitive runs.
	say "cluster and migration (loopback only; waiting for $lock)"
	exec 9>>"$lock"
	flock 9
	say "cluster and migration: $lock taken"
	inside cluster yes 2>&1 | tee "$work/logs/cluster.log" || rc=$?
	flock -u 9
	exec 9>&-
fi
if ((rc == 0)) && [[ $from == packages ]]; then
	say "purge"
	inside purge no 2>&1 | tee "$work/logs/purge.log" || rc=$?
fi
if ((rc != 0)); then
	printf 'install-test --from %s --release %s: FAILED (exit %d) after %ds; root kept in %s, logs in %s/logs\n' \
		"$from" "$rel" "$rc" "$((SECONDS - start))" "$root" "$work"
	exit "$rc"
fi
[[ $keep == yes ]] || rm -rf "$root"
# Launches run again for Open MPI's own start-up failure (install-inside.sh).
retries=$(grep -c "Open MPI's start-up failed" "$work/logs/cluster.log" 2>/dev/null) || true
printf 'install-test --from %s --release %s: passed in %ds, launch retries: %d (logs in %s/logs)\n' \
	"$from" "$rel" "$((SECONDS - start))" "${retries:-0}" "$work"
