# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# prepare.sh - install what is missing, get Slurm's source, build the project
#
# Sourced by run-tests and run-demo (they set -euo pipefail). Functions:
#   prep_packages     apt-get install the Debian packages that are missing
#   prep_slurm_source configured source tree of the installed Slurm, cached
#   prep_build DIR    autogen (when needed), configure, make -j2
#
# Environment: SMIG_SLURM_SOURCE=DIR uses that configured Slurm tree as is;
# SMIG_CACHE_DIR (default /var/cache/slurm-migrate) holds the fetched one.

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PREP_PACKAGES="slurmctld slurmd slurm-client libslurm-dev libpmix-dev
libopenmpi-dev openmpi-bin libhwloc-dev libglib2.0-dev munge libmunge-dev
libxxhash-dev libmetis-dev check pkg-config autoconf automake libtool build-essential
python3-pytest dpkg-dev clang libclang-rt-14-dev"
PREP_CACHE=${SMIG_CACHE_DIR:-/var/cache/slurm-migrate}

prep_say() { printf '\n=== %s\n' "$*"; }
prep_die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

prep_packages() {
	local p missing=()

	for p in $PREP_PACKAGES; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	prep_say "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || prep_die "apt-get update failed"
	apt-get install -y -q "${missing[@]}" ||
		prep_die "apt-get install ${missing[*]} failed"
}

# Print the deb-src lines that mirror the deb entries of the apt sources.
prep_deb_src_lines() {
	local f

	# deb822 files: one stanza per blank-line-separated block.
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		awk '
		function flush() {
			if (types ~ /(^| )deb( |$)/ && uris != "")
				for (i = 1; i <= split(suites, s, " "); i++)
					for (j = 1; j <= split(uris, u, " "); j++)
						print "deb-src" (signed != "" ? " [signed-by=" signed "]" : "") \
						      " " u[j] " " s[i] " " comps
			types = uris = suites = comps = signed = ""
		}
		/^[ \t]*$/ { flush(); next }
		/^[ \t]*#/ { next }
		{
			key = $1; sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
			if (key == "Types") types = $0
			else if (key == "URIs") uris = $0
			else if (key == "Suites") suites = $0
			else if (key == "Components") comps = $0
			else if (key == "Signed-By") signed = $0
		}
		END { flush() }' "$f"
	done
	# One-line format.
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -r $f ]] || continue
		sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f"
	done
}

prep_slurm_source() {
	local ver dir apt_opts

	if [[ -n ${SMIG_SLURM_SOURCE:-} ]]; then
		[[ -f $SMIG_SLURM_SOURCE/config.h ]] ||
			prep_die "SMIG_SLURM_SOURCE=$SMIG_SLURM_SOURCE: not a configured Slurm tree (no config.h)"
		SLURM_SOURCE=$SMIG_SLURM_SOURCE
		return 0
	fi
	ver=$(dpkg-query -W -f='${source:Version}' slurmctld 2>/dev/null) ||
		prep_die "slurmctld is not installed"
	dir=$PREP_CACHE/slurm-wlm-$ver
	SLURM_SOURCE=$dir/src
	[[ -f $SLURM_SOURCE/config.h ]] && return 0

	prep_say "fetching and configuring the source of slurm-wlm $ver into $dir (once)"
	rm -rf "$dir"
	mkdir -p "$dir/lists/partial" "$dir/aptcache/archives/partial"
	prep_deb_src_lines > "$dir/sources.list"
	[[ -s $dir/sources.list ]] ||
		prep_die "no deb entries in /etc/apt/sources.list{,.d/} to mirror as deb-src"
	# Our own source list, lists and cache: /etc/apt and apt's state stay as they are.
	apt_opts=(-q -o "Dir::Etc::SourceList=$dir/sources.list"
		-o Dir::Etc::SourceParts=/nonexistent
		-o "Dir::State::Lists=$dir/lists"
		-o "Dir::Cache=$dir/aptcache")
	apt-get "${apt_opts[@]}" update || prep_die "apt-get update (deb-src) failed"
	(cd "$dir" && apt-get "${apt_opts[@]}" source --download-only "slurm-wlm=$ver") ||
		prep_die "apt-get source slurm-wlm=$ver failed"
	(cd "$dir" && dpkg-source -x slurm-wlm_"${ver#*:}".dsc src) ||
		prep_die "dpkg-source -x failed"
	# The flags of debian/rules (and dh_auto_configure's paths): config.h
	# must describe the installed binaries.
	(cd "$SLURM_SOURCE" && ./configure -q --prefix=/usr \
		--libdir=/usr/lib/x86_64-linux-gnu --localstatedir=/var \
		--sysconfdir=/etc/slurm --with-munge --without-rpath \
		--enable-multiple-slurmd --disable-debug \
		--with-pmix=/usr/lib/x86_64-linux-gnu/pmix2) > "$dir/configure.log" 2>&1 ||
		prep_die "configure of the Slurm source failed: see $dir/configure.log"
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
		(cd "$build" && "$repo/configure" -q ${SLURM_SOURCE:+--with-slurm-source="$SLURM_SOURCE"}) ||
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
