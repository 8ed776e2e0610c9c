# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# prepare.sh - install what is missing, build the project
#
# Sourced by run-tests and run-demo (they set -euo pipefail). Functions:
#   prep_packages     apt-get install the Debian packages that are missing
#   prep_build DIR    autogen (when needed), configure, make -j2
#
# The build needs Slurm's public headers and libslurm (libslurm-dev) only:
# no Slurm source tree is fetched or configured.

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PREP_PACKAGES="slurmctld slurmd slurm-client libslurm-dev libpmix-dev
libopenmpi-dev openmpi-bin mpich libmpich-dev libglib2.0-dev munge libmunge-dev
libxxhash-dev libmetis-dev libglpk-dev check pkg-config autoconf automake libtool build-essential
python3-pytest clang libclang-rt-14-dev lammps"

prep_say() { printf '\n=== %s\n' "$*"; }
prep_die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

prep_packages() {
	local p missing=()

	for p in $PREP_PACKAGES; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && { prep_mpi_default; return 0; }
	prep_say "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || prep_die "apt-get update failed"
	apt-get install -y -q "${missing[@]}" ||
		prep_die "apt-get install ${missing[*]} failed"
	prep_mpi_default
}

# prep_mpi_default - Open MPI must stay the default mpicc and mpirun after
# MPICH is installed beside it (the tests, the demo and configure's MPICC use
# Open MPI; MPICH is reached as mpicc.mpich).
prep_mpi_default() {
	local t real

	for t in mpicc mpirun; do
		real=$(readlink -f "$(command -v "$t")" 2>/dev/null) || real=
		[[ $real == *openmpi* || $real == */orterun || $real == */opal_wrapper ]] ||
			prep_die "$t is ${real:-missing}, not Open MPI's: update-alternatives --auto mpi; update-alternatives --auto mpirun (or --set them to the .openmpi ones)"
	done
}

# prep_build DIR - build the project out of tree in DIR.
prep_build() {
	local build=$1 repo=$SMIG_REPO f need=no

	# Regenerate configure when it is missing or older than its inputs.
	if [[ ! -x $repo/configure ]]; then
		need=yes
	else
		while read -r f; do
			[[ $f -nt $repo/configure ]] && need=yes
		done < <(find "$repo/configure.ac" "$repo/Makefile.am" "$repo/src" \
			"$repo/contrib" "$repo/testsuite" "$repo/doc" "$repo/bench" \
			-name configure.ac -o -name Makefile.am -o -name local.mk)
	fi
	if [[ $need == yes ]]; then
		prep_say "autogen.sh"
		"$repo/autogen.sh" || prep_die "autogen.sh failed"
	fi
	mkdir -p "$build"
	if [[ ! -f $build/Makefile || $repo/configure -nt $build/config.status ]]; then
		prep_say "configure in $build"
		(cd "$build" && "$repo/configure" -q) ||
			prep_die "configure failed: see $build/config.log"
	fi
	prep_say "make -j2 in $build"
	make -C "$build" -j2 || prep_die "make failed"
	# Jobs of the test user run the example programs from here.
	if id -u nobody >/dev/null 2>&1 &&
		! runuser -u nobody -- test -r "$build/Makefile"; then
		prep_die "$build is not readable by other users (a parent directory is private?): jobs of the test user run programs from it; use --build DIR in a place like /var/tmp"
	fi
}
