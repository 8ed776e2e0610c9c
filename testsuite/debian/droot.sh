#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# droot.sh - a Debian root per release, made once, cached, entered in
# private namespaces
#
# usage: testsuite/debian/droot.sh make RELEASE
#        testsuite/debian/droot.sh run [--net] [--bind HOSTDIR:DIR[:ro]]... RELEASE -- CMD...
#        testsuite/debian/droot.sh path RELEASE
#        testsuite/debian/droot.sh base RELEASE
#        testsuite/debian/droot.sh check
#   RELEASE   12 | 13 | sid (also bookworm, trixie)
#   make      debootstrap the release from Debian's archive and install the
#             packages the project needs inside; cached under
#             $SMIG_CACHE_DIR/roots/CODENAME (default /var/cache/slurm-migrate)
#             and made again when its package list or droot_make changes
#   run       run CMD inside the root: new mount, PID, UTS and IPC namespaces
#             (and a network namespace with only loopback: --net); proc,
#             sys, a private /dev, /dev/pts, /dev/shm and tmpfs on /run and
#             /tmp; HOSTDIR bound at DIR. Every process inside dies with CMD,
#             every mount goes with the namespace: nothing stays behind.
#   path      print the root's directory (made if needed)
#   base      print the directory of the release's bare debootstrap
#             (minbase, nothing installed: CODENAME-base in the cache; made
#             if needed), the start of install-test.sh's fresh roots
#   check     (inside a root) are the packages a root gets installed here?
#             Names the missing ones, exit 1 if any
#
# The roots are kept read-only in use: CMD writes only in the bound
# directories, /run and /tmp (and /etc/passwd, /etc/group of the root, for
# the test users the cluster harness adds).

set -euo pipefail

DROOT_CACHE=${SMIG_CACHE_DIR:-/var/cache/slurm-migrate}/roots
DROOT_MIRROR=${SMIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DROOT_SELF=$(readlink -f "${BASH_SOURCE[0]}")

# What the project needs to build and run its tests inside a root (the
# host's list, testsuite/cluster/prepare.sh, minus the sanitizer and fuzz
# tools, which run on the host only).
DROOT_PACKAGES="slurmctld slurmd slurm-client libslurm-dev libpmix-dev
libopenmpi-dev openmpi-bin mpich libmpich-dev libglib2.0-dev munge libmunge-dev
libxxhash-dev libmetis-dev check pkg-config autoconf automake libtool
build-essential python3 python3-pytest dpkg-dev iproute2 procps psmisc lammps
ca-certificates"

droot_die() { printf 'droot: error: %s\n' "$*" >&2; exit 1; }
droot_say() { printf '\n=== droot: %s\n' "$*"; }

# droot_codename RELEASE - bookworm, trixie or sid
droot_codename() {
	case $1 in
	12|bookworm) echo bookworm ;;
	13|trixie) echo trixie ;;
	sid|unstable) echo sid ;;
	*) droot_die "release '$1': not 12, 13 or sid" ;;
	esac
}

# The stamp that says which recipe made a root: the package list and the
# steps that make it (droot_make, as bash prints it). A root with another
# stamp is made again; a change elsewhere (how a root is entered) keeps it.
droot_stamp() {
	{ echo "$DROOT_PACKAGES" | tr -s ' \n' '\n\n' | sort; declare -f droot_make; } |
		sha256sum | cut -c1-16
}

droot_host_tools() {
	command -v debootstrap >/dev/null && command -v unshare >/dev/null && return 0
	droot_say "installing debootstrap on the host"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } ||
		droot_die "apt-get install debootstrap failed"
}

# droot_make RELEASE - the cached root's directory on stdout (made if needed)
droot_make() {
	local code dir tmp stamp
	code=$(droot_codename "$1")
	dir=$DROOT_CACHE/$code
	stamp=$(droot_stamp)
	if [[ -f $dir/.smig-stamp && $(<"$dir/.smig-stamp") == "$stamp" ]]; then
		echo "$dir"
		return 0
	fi
	[[ $(id -u) == 0 ]] || droot_die "making a root needs root"
	droot_host_tools
	mkdir -p "$DROOT_CACHE"
	# A debootstrap that finished is kept for the next try when the
	# package step fails (the network, a mirror in sync).
	tmp=$DROOT_CACHE/.$code.new
	if [[ ! -f $tmp/.smig-debootstrapped ]]; then
		rm -rf "$tmp"
		mkdir -m 755 "$tmp"
		droot_say "debootstrap $code into $tmp (from $DROOT_MIRROR)" >&2
		if ! debootstrap --variant=minbase "$code" "$tmp" "$DROOT_MIRROR" >"$tmp.log" 2>&1; then
			tail -n 20 "$tmp.log" >&2
			rm -rf "$tmp"
			droot_die "debootstrap $code failed (log: $tmp.log)"
		fi
		touch "$tmp/.smig-debootstrapped"
	fi
	droot_say "installing the project's packages in the $code root" >&2
	# sid's Release file is valid for a week only; a mirror that is not
	# refreshed (or a clock ahead) makes apt refuse it: these roots are
	# for tests, not for a system that must see security updates in time.
	echo 'Acquire::Check-Valid-Until "false";' \
		>"$tmp/etc/apt/apt.conf.d/99smig-valid-until"
	# The host's network (no --net) for apt.
	if ! droot_enter "$tmp" no -- /bin/sh -c "
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q && apt-get install -y -q --no-install-recommends $(echo $DROOT_PACKAGES) &&
		apt-get clean" >>"$tmp.log" 2>&1; then
		tail -n 20 "$tmp.log" >&2
		droot_die "installing packages in the $code root failed (log: $tmp.log)"
	fi
	# Daemons must not start at install time nor later by themselves.
	rm -f "$tmp/usr/sbin/policy-rc.d"
	echo "$stamp" >"$tmp/.smig-stamp"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	mv "$tmp.log" "$dir.log"
	echo "$dir"
}

# droot_base RELEASE - a cached debootstrap (minbase) of the release and
# nothing else: what an admin starts from (install-test.sh copies it for
# each run). Its directory on stdout, made if needed.
droot_base() {
	local code dir tmp
	code=$(droot_codename "$1")
	dir=$DROOT_CACHE/$code-base
	# The mark that the root is whole lives beside it: nothing of ours in
	# the root.
	if [[ -d $dir && -f $dir.done ]]; then
		echo "$dir"
		return 0
	fi
	[[ $(id -u) == 0 ]] || droot_die "making a root needs root"
	droot_host_tools
	mkdir -p "$DROOT_CACHE"
	tmp=$DROOT_CACHE/.$code-base.new
	rm -rf "$tmp"
	mkdir -m 755 "$tmp"
	droot_say "debootstrap $code (minbase) into $tmp (from $DROOT_MIRROR)" >&2
	if ! debootstrap --variant=minbase "$code" "$tmp" "$DROOT_MIRROR" >"$tmp.log" 2>&1; then
		tail -n 20 "$tmp.log" >&2
		rm -rf "$tmp"
		droot_die "debootstrap $code failed (log: $tmp.log)"
	fi
	# sid's Release file is valid for a week only (see droot_make).
	[[ $code == sid ]] && echo 'Acquire::Check-Valid-Until "false";' \
		>"$tmp/etc/apt/apt.conf.d/99smig-valid-until"
	# What Debian's installer writes and debootstrap does not (droot_inside
	# binds its own /etc/hosts over it).
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
		>"$tmp/etc/hosts"
	# debootstrap's own .deb files: apt-get clean, as after an install.
	rm -f "$tmp"/var/cache/apt/archives/*.deb
	rm -rf "$dir" "$dir.done"
	mv "$tmp" "$dir"
	mv "$tmp.log" "$dir.log"
	touch "$dir.done"
	echo "$dir"
}

# droot_enter ROOT NET [BIND...] -- CMD... : the namespaces and mounts
# NET: yes (own network namespace, loopback only) or no (host's network)
# BIND: HOSTDIR:DIR[:ro]
droot_enter() {
	local root=$1 net=$2 flags=(--mount --pid --fork --uts --ipc --kill-child
		--propagation private)
	shift 2
	[[ $net == yes ]] && flags+=(--net)
	# In the background (stdin kept) so that a signal to this script alone
	# (a CI timeout, kill PID) ends the namespace too: unshare killed
	# kills its child, PID 1 inside, and with it everything inside.
	unshare "${flags[@]}" -- /bin/bash "$DROOT_SELF" __inside "$root" "$net" "$@" <&0 &
	DROOT_CHILD=$!
	trap 'kill -KILL "$DROOT_CHILD" 2>/dev/null' HUP INT TERM
	local rc=0
	wait "$DROOT_CHILD" || rc=$?
	# A trapped signal ends the first wait early: collect the real end.
	if kill -0 "$DROOT_CHILD" 2>/dev/null || ((rc > 128)); then
		wait "$DROOT_CHILD" 2>/dev/null || rc=$?
	fi
	trap - HUP INT TERM
	return "$rc"
}

# Runs as PID 1's child in the new namespaces, on the host's file system.
droot_inside() {
	local root=$1 net=$2 b host dir mode d
	shift 2
	mount --make-rprivate /
	# "/" inside is a mount point, as on a host: unshare --propagation
	# (up.sh --netns) and mount --make-rprivate / need one.
	mount --bind "$root" "$root"
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount -t tmpfs -o mode=755,nosuid dev "$root/dev"
	for d in null zero full random urandom tty; do
		touch "$root/dev/$d"
		mount --bind "/dev/$d" "$root/dev/$d"
	done
	mkdir -p "$root/dev/pts" "$root/dev/shm" "$root/dev/mqueue"
	mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
	ln -s pts/ptmx "$root/dev/ptmx"
	ln -s /proc/self/fd "$root/dev/fd"
	ln -s /proc/self/fd/0 "$root/dev/stdin"
	ln -s /proc/self/fd/1 "$root/dev/stdout"
	ln -s /proc/self/fd/2 "$root/dev/stderr"
	mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
	mount -t mqueue mqueue "$root/dev/mqueue"
	mount -t tmpfs -o mode=755,nosuid,nodev run "$root/run"
	mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$root/tmp"
	while [[ $1 != -- ]]; do
		b=$1
		shift
		IFS=: read -r host dir mode <<<"$b"
		[[ -d $host ]] || droot_die "--bind $b: $host is not a directory"
		mkdir -p "$root/$dir"
		mount --bind "$host" "$root/$dir"
		[[ $mode == ro ]] && mount -o remount,bind,ro "$root/$dir"
	done
	shift
	# The root's hostname resolves, as the host's does (Slurm checks
	# SlurmctldHost and NodeHostname against it).
	printf '127.0.0.1\tlocalhost droot\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
		>"$root/run/.droot-hosts"
	# A bare debootstrap has no /etc/hosts to bind over (Debian's
	# installer writes it).
	[[ -e $root/etc/hosts ]] || : >"$root/etc/hosts"
	mount --bind "$root/run/.droot-hosts" "$root/etc/hosts"
	if [[ $net == yes ]]; then
		ip link set lo up
		# An IPv4 address other than 127.0.0.1: glibc's getaddrinfo()
		# with AI_ADDRCONFIG (Slurm 24.11 listens so) finds no IPv4
		# address on a loopback-only system and fails. TEST-NET-1, on
		# lo: nothing leaves the namespace.
		ip addr add 192.0.2.1/32 dev lo
	else
		cp /etc/resolv.conf "$root/run/resolv.conf" 2>/dev/null || true
		[[ -L $root/etc/resolv.conf ]] || cp /etc/resolv.conf "$root/etc/resolv.conf"
	fi
	hostname droot
	chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 CI="${CI:-}" "$@"
	# Not exec: this shell, PID 1 of the namespace, reaps the orphans.
	exit $?
}

# droot_check - the packages of a root are installed (on this system)
droot_check() {
	local p missing=()

	for p in $DROOT_PACKAGES; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	droot_die "not installed here: ${missing[*]} (the root is made with them: remake it with droot.sh make RELEASE after removing $DROOT_CACHE/CODENAME)"
}

droot_main() {
	local cmd=${1:-} net=no binds=() root
	shift || true
	case $cmd in
	__inside) droot_inside "$@" ;;
	make) [[ $# == 1 ]] || droot_die "usage: make RELEASE"; droot_make "$1" >/dev/null ;;
	path) [[ $# == 1 ]] || droot_die "usage: path RELEASE"; droot_make "$1" ;;
	base) [[ $# == 1 ]] || droot_die "usage: base RELEASE"; droot_base "$1" ;;
	check) droot_check ;;
	run)
		while (($# > 0)); do
			case $1 in
			--net) net=yes ;;
			--bind) [[ $# -ge 2 ]] || droot_die "--bind needs HOSTDIR:DIR[:ro]"
				binds+=("$2"); shift ;;
			*) break ;;
			esac
			shift
		done
		[[ $# -ge 3 && $2 == -- ]] || droot_die "usage: run [--net] [--bind H:D[:ro]]... RELEASE -- CMD..."
		root=$(droot_make "$1")
		shift 2
		droot_enter "$root" "$net" "${binds[@]}" -- "$@" ;;
	*) sed -n '4,31p' "$DROOT_SELF" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	droot_main "$@"
fi
