#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# down.sh - stop a local test cluster started by up.sh
#
# Stops smigd, slurmctld, the slurmds and whatever their jobs left (slurmstepds,
# tasks: found in the nodes' cgroups), by pid: SIGTERM, then SIGKILL after
# SMIG_STOP_GRACE seconds. Removes what up.sh created outside the cluster
# directory (cgroups, network namespaces; munged and the test user when the
# last cluster of this machine goes down). Safe to call twice, and after an
# up.sh that failed half-way. Keeps the cluster directory (logs) for reading.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
	echo "usage: $0 [--dir DIR]   (default \$SMIG_CLUSTER_DIR or $SMIG_REPO/.cluster)"
}

dir=${SMIG_CLUSTER_DIR:-$SMIG_REPO/.cluster}
while (($# > 0)); do
	case $1 in
	--dir) dir=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; smig_die "unknown option '$1'" ;;
	esac
	shift
done

[[ $(id -u) == 0 ]] || smig_die "must run as root"
if [[ ! -d $dir/harness ]]; then
	smig_say "$dir: no cluster of this harness there: nothing to stop"
	exit 0
fi
dir=$(cd "$dir" && pwd)
cluster_down "$dir"
smig_say "down: $dir (logs kept in $dir/log)"
