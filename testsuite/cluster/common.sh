# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# common.sh - shared settings and functions of the local test cluster
#
# Sourced by up.sh and down.sh; not run on its own. Everything a cluster
# needs lives in its cluster directory (SMIG_CLUSTER_DIR). What must live
# elsewhere (munged's socket directory, the test user, cgroups, network
# namespaces) is recorded when created and removed by cluster_down.
#
# Shared between clusters of one machine (several may run side by side with
# different port bases): munged and the test user. A registry under
# /run/slurm-migrate-harness/ lists the running clusters; the last cluster
# to go down stops the munged and removes the user the harness created.

SMIG_CLUSTER_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by up.sh and down.sh
SMIG_REPO=$(cd "$SMIG_CLUSTER_HERE/../.." && pwd)

SMIG_SLURM_PLUGINDIR=${SMIG_SLURM_PLUGINDIR:-/usr/lib/x86_64-linux-gnu/slurm-wlm}
SMIG_REGISTRY=/run/slurm-migrate-harness
SMIG_REGISTRY_LOCK=/run/lock/slurm-migrate-harness.lock
# Seconds a daemon gets between SIGTERM and SIGKILL.
SMIG_STOP_GRACE=${SMIG_STOP_GRACE:-10}

smig_say() { printf 'cluster: %s\n' "$*" >&2; }
smig_die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

# Is PID a live (not zombie) process? A zombie still answers kill -0.
smig_alive() {
	local pid=$1 state

	[[ $pid =~ ^[0-9]+$ ]] || return 1
	state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# Read a pid file; print the pid if the file holds a number.
smig_read_pid() {
	local pid

	[[ -r $1 ]] || return 1
	read -r pid < "$1" || true
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	echo "$pid"
}

# smig_stop_pids NAME GRACE PID... - SIGTERM, wait up to GRACE s, SIGKILL.
smig_stop_pids() {
	local what=$1 grace=$2 pid left i
	shift 2

	(($# > 0)) || return 0
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		left=()
		for pid in "$@"; do
			smig_alive "$pid" && left+=("$pid")
		done
		((${#left[@]} == 0)) && return 0
		sleep 0.1
	done
	smig_say "$what: pids ${left[*]} ignored SIGTERM for ${grace}s: SIGKILL"
	kill -KILL "${left[@]}" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		left=()
		for pid in "$@"; do
			smig_alive "$pid" && left+=("$pid")
		done
		((${#left[@]} == 0)) && return 0
		sleep 0.1
	done
	smig_say "$what: pids ${left[*]} still alive after SIGKILL"
	return 1
}

# --- cgroups: every slurmd of a cluster (and so its stepds and tasks) runs in
# a group of its own node, which finds all of them at the end and lets tests
# freeze or slow down one node. cgroup v1 (freezer hierarchy) or v2.

# Print the cgroup root the harness uses, or nothing if none is writable.
smig_cgroup_root() {
	if [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then
		echo /sys/fs/cgroup
	elif [[ -w /sys/fs/cgroup/freezer/cgroup.procs ]]; then
		echo /sys/fs/cgroup/freezer
	fi
}

# smig_cgroup_v2_enable ROOT GROUP CONTROLLER FILE - on a cgroup v2
# hierarchy ROOT, enable CONTROLLER for the children of ROOT/GROUP (GROUP
# holds no process: its children do), from ROOT down, where it is not
# enabled yet. Print ROOT/GROUP if each child has FILE (e.g. cpu.max); fail
# if the controller is not available (e.g. bound to a v1 hierarchy) or
# cannot be enabled.
smig_cgroup_v2_enable() {
	local root=$1 group=$2 ctl=$3 file=$4 d=$1 part child
	local -a parts

	grep -qw "$ctl" "$root/cgroup.controllers" 2>/dev/null || return 1
	IFS=/ read -ra parts <<< "$group"
	for part in "${parts[@]}" ""; do
		grep -qw "$ctl" "$d/cgroup.subtree_control" ||
			echo "+$ctl" > "$d/cgroup.subtree_control" 2>/dev/null ||
			return 1
		[[ -n $part ]] || break
		d=$d/$part
	done
	for child in "$d"/*/; do
		[[ -e $child$file ]] || return 1
	done
	echo "$d"
}

# smig_cgroup_v2_cpu ROOT GROUP - the cpu controller (cpu.max) for the
# children of ROOT/GROUP, as smig_cgroup_v2_enable.
smig_cgroup_v2_cpu() {
	smig_cgroup_v2_enable "$1" "$2" cpu cpu.max
}

# Print the pids of every process in the cgroups listed in the state file.
smig_cgroup_pids() {
	local dir=$1 cg

	[[ -r $dir/harness/cgroups ]] || return 0
	while read -r cg; do
		if [[ -n $cg && -r $cg/cgroup.procs ]]; then
			cat "$cg/cgroup.procs"
		fi
	done < "$dir/harness/cgroups" | sort -un
}

# --- the registry of clusters sharing munged and the test user.

smig_registry_lock() {
	mkdir -p "$(dirname "$SMIG_REGISTRY_LOCK")"
	exec 9>>"$SMIG_REGISTRY_LOCK"
	flock -w 60 9 || smig_die "$SMIG_REGISTRY_LOCK: could not lock within 60s"
}

smig_registry_unlock() {
	flock -u 9 2>/dev/null || true
	exec 9>&-
}

# Remove entries of clusters whose slurmctld is gone without down.sh.
smig_registry_prune() {
	local f dir pid

	for f in "$SMIG_REGISTRY"/clusters/*; do
		[[ -f $f ]] || continue
		read -r dir < "$f" || true
		# A cluster being started has no slurmctld yet: keep it, unless
		# its up.sh died long ago.
		[[ -n $(find "$dir/harness/starting" -mmin -10 2>/dev/null) ]] &&
			continue
		pid=$(smig_read_pid "$dir/run/slurmctld.pid") && smig_alive "$pid" &&
			continue
		rm -f "$f"
	done
}

smig_munge_ok() {
	munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

# smig_shared_up DIR USER - make sure munged answers and USER exists;
# register the cluster. Runs under the registry lock.
smig_shared_up() {
	local dir=$1 user=$2 i pid

	smig_registry_lock
	mkdir -p "$SMIG_REGISTRY/clusters"
	smig_registry_prune
	echo "$dir" > "$SMIG_REGISTRY/clusters/$(smig_cluster_key "$dir")"

	if ! smig_munge_ok; then
		if [[ ! -d /run/munge ]]; then
			install -d -o munge -g munge -m 0755 /run/munge
			: > "$SMIG_REGISTRY/created-run-munge"
		fi
		install -d -o munge -g munge -m 0700 "$SMIG_REGISTRY/munge"
		runuser -u munge -- munged \
			--pid-file="$SMIG_REGISTRY/munge/munged.pid" \
			--log-file="$SMIG_REGISTRY/munge/munged.log" \
			--seed-file="$SMIG_REGISTRY/munge/munged.seed" ||
			smig_die "munged failed to start: see $SMIG_REGISTRY/munge/munged.log"
		for ((i = 0; i < 50; i++)); do
			smig_munge_ok && break
			sleep 0.1
		done
		smig_munge_ok || smig_die "munged started but 'munge -n | unmunge' fails: see $SMIG_REGISTRY/munge/munged.log"
		pid=$(smig_read_pid "$SMIG_REGISTRY/munge/munged.pid") ||
			smig_die "munged wrote no pid file $SMIG_REGISTRY/munge/munged.pid"
		echo "$pid" > "$SMIG_REGISTRY/munged.pid"
		smig_say "started munged (pid $pid)"
	fi

	# USER runs the jobs; USER2 is "another user" (security tests).
	for user in "$user" "${user}2"; do
		id -u "$user" >/dev/null 2>&1 && continue
		useradd --no-create-home --home-dir /nonexistent \
			--shell /bin/bash --user-group "$user" ||
			smig_die "useradd $user failed"
		echo "$user" >> "$SMIG_REGISTRY/created-users"
		smig_say "created test user $user"
	done
	smig_registry_unlock
}

# smig_shared_down DIR - unregister; the last cluster stops what the harness
# started for all of them.
smig_shared_down() {
	local dir=$1 pid user

	[[ -d $SMIG_REGISTRY ]] || return 0
	smig_registry_lock
	rm -f "$SMIG_REGISTRY/clusters/$(smig_cluster_key "$dir")"
	smig_registry_prune
	if compgen -G "$SMIG_REGISTRY/clusters/*" >/dev/null; then
		smig_registry_unlock
		return 0
	fi
	if pid=$(smig_read_pid "$SMIG_REGISTRY/munged.pid"); then
		if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == munged ]]; then
			smig_stop_pids munged "$SMIG_STOP_GRACE" "$pid" || true
		fi
		rm -f "$SMIG_REGISTRY/munged.pid"
		rm -rf "$SMIG_REGISTRY/munge"
	fi
	if [[ -e $SMIG_REGISTRY/created-run-munge ]]; then
		rm -rf /run/munge
		rm -f "$SMIG_REGISTRY/created-run-munge"
	fi
	if [[ -r $SMIG_REGISTRY/created-users ]]; then
		while read -r user; do
			[[ -n $user ]] || continue
			userdel "$user" 2>/dev/null ||
				smig_say "userdel $user failed (processes left?)"
		done < "$SMIG_REGISTRY/created-users"
		rm -f "$SMIG_REGISTRY/created-users"
	fi
	rmdir "$SMIG_REGISTRY/clusters" "$SMIG_REGISTRY" 2>/dev/null || true
	smig_registry_unlock
}

# A file name for the cluster directory in the registry.
smig_cluster_key() {
	printf '%s' "$1" | md5sum | cut -c1-16
}

# --- network namespaces (up.sh --netns)

# smig_netns_down DIR - remove the namespaces, veths and bridge recorded.
smig_netns_down() {
	local dir=$1 kind name

	[[ -r $dir/harness/netns ]] || return 0
	# Namespaces first (their veth ends go with them), the bridge last.
	while read -r kind name; do
		case $kind in
		netns)
			ip netns delete "$name" 2>/dev/null || true
			;;
		veth)
			ip link delete "$name" 2>/dev/null || true
			;;
		esac
	done < "$dir/harness/netns"
	while read -r kind name; do
		[[ $kind == bridge ]] && { ip link delete "$name" 2>/dev/null || true; }
	done < "$dir/harness/netns"
	rm -f "$dir/harness/netns"
}

# --- the whole cluster

# cluster_down DIR - stop every process of the cluster and remove what it
# created outside DIR. Safe to call twice and after a half-done up.sh.
cluster_down() {
	local dir=$1 f pid pids=() cg

	[[ -d $dir/harness ]] || return 0

	# smigd and slurmctld first (no new steps), then the slurmds.
	for f in "$dir"/run/smigd.pid "$dir"/run/slurmctld.pid "$dir"/run/slurmd.*.pid; do
		pid=$(smig_read_pid "$f") || continue
		smig_alive "$pid" && pids+=("$pid")
	done
	smig_stop_pids "slurm daemons" "$SMIG_STOP_GRACE" "${pids[@]}" || true

	# What is left in the nodes' cgroups: slurmstepds and tasks of jobs.
	# shellcheck disable=SC2207
	pids=($(smig_cgroup_pids "$dir"))
	if ((${#pids[@]} > 0)); then
		# A frozen node ignores signals until thawed.
		while read -r cg; do
			[[ -w $cg/freezer.state ]] && echo THAWED > "$cg/freezer.state"
			[[ -w $cg/cgroup.freeze ]] && echo 0 > "$cg/cgroup.freeze"
		done < "$dir/harness/cgroups"
		# slurmstepd ignores SIGTERM: a short grace for the tasks only.
		smig_stop_pids "job processes" 2 "${pids[@]}" || true
	fi
	if [[ -r $dir/harness/cgroups ]]; then
		while read -r cg; do
			[[ -d $cg ]] && { rmdir "$cg" 2>/dev/null ||
				smig_say "cannot remove cgroup $cg (processes left?)"; }
		done < <(sort -r "$dir/harness/cgroups")
		rm -f "$dir/harness/cgroups"
	fi

	smig_netns_down "$dir"
	smig_shared_down "$dir"
	rm -f "$dir"/run/*.pid "$dir/harness/starting" "$dir/harness/up"
}
