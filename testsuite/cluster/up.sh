#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# up.sh - start a local Slurm 22.05 test cluster with slurm-migrate
#
# One slurmctld, smigd (the balancer) and N slurmd ("slurmd -N nodeK") on this machine, every file
# generated into one cluster directory; nothing in /etc is modified. Clients
# use it with: . <dir>/env   (sets SLURM_CONF and friends)
# Stop it with down.sh. Run as root. See README.md in this directory.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
	cat <<EOF
usage: $0 [options]
  --dir DIR          cluster directory (default \$SMIG_CLUSTER_DIR or $SMIG_REPO/.cluster)
  --port-base PORT   first TCP port (default \$SMIG_PORT_BASE or 17000): SlurmctldPort=PORT,
                     MigratePort=PORT+1, node K listens on PORT+10+K
  --nodes N          number of nodes, >= 1 (default \$SMIG_NODES or 4)
  --ghost-nodes N    also configure N nodes ghost0001.. without a slurmd (0..9999,
                     default 0): an unused address and port, State=DOWN, so that
                     slurmctld holds a big node table (bench-smigd)
  --build DIR        build directory (default \$SMIG_BUILD_DIR or $SMIG_REPO/build);
                     the plugins are taken from DIR/.libs
  --plugindir DIR    directory holding spank_migrate.so
  --no-plugins       run plain Slurm: no smigd, empty plugstack.conf
  --smigd            accepted for older callers: smigd (BUILD/smigd -D, as root) is
                     always the balancer unless --no-plugins
  --netns            one network namespace per node (real addresses 10.251.X.0/24)
  --topology         a switch tree: topology.conf with one leaf switch per 2 nodes
                     (s0: node[1-2], s1: node[3-4], ...) under one spine switch,
                     TopologyPlugin=topology/tree (default: none, a flat network)
  --override F=PATH  use PATH instead of the generated file F (slurm.conf, migrate.conf,
                     plugstack.conf, TaskProlog); may be repeated
  --user NAME        test user that jobs run as (default \$SMIG_TEST_USER or smigtest)
  --generate-only    write the configuration and exit: start no daemon
  --debug LEVEL      SlurmctldDebug and SlurmdDebug (default info)
  --timeout SEC      how long to wait for all nodes to be idle (default 60)
EOF
}

dir=${SMIG_CLUSTER_DIR:-$SMIG_REPO/.cluster}
base=${SMIG_PORT_BASE:-17000}
nnodes=${SMIG_NODES:-4}
nghost=0
build=${SMIG_BUILD_DIR:-$SMIG_REPO/build}
plugindir=
plugins=yes
balancer=smigd
netns=no
topology=no
user=${SMIG_TEST_USER:-smigtest}
generate_only=no
debug=info
timeout=60
overrides=()

while (($# > 0)); do
	case $1 in
	--dir) dir=$2; shift ;;
	--port-base) base=$2; shift ;;
	--nodes) nnodes=$2; shift ;;
	--ghost-nodes) nghost=$2; shift ;;
	--build) build=$2; shift ;;
	--plugindir) plugindir=$2; shift ;;
	--no-plugins) plugins=no ;;
	--smigd) ;;
	--netns) netns=yes ;;
	--topology) topology=yes ;;
	--override) overrides+=("$2"); shift ;;
	--user) user=$2; shift ;;
	--generate-only) generate_only=yes ;;
	--debug) debug=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; smig_die "unknown option '$1'" ;;
	esac
	shift
done

[[ $(id -u) == 0 ]] || smig_die "must run as root (starts munged and Slurm daemons)"
if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1024 || base > 65000)); then
	smig_die "--port-base=$base: not a port number in 1024..65000"
fi
if ! [[ $nnodes =~ ^[0-9]+$ ]] || ((nnodes < 1 || nnodes > 40)); then
	smig_die "--nodes=$nnodes: not a number in 1..40"
fi
if ! [[ $nghost =~ ^[0-9]+$ ]] || ((nghost > 9999)); then
	smig_die "--ghost-nodes=$nghost: not a number in 0..9999"
fi
[[ $timeout =~ ^[0-9]+$ ]] || smig_die "--timeout=$timeout: not a number of seconds"
[[ $user =~ ^[a-z_][a-z0-9_-]*$ ]] || smig_die "--user=$user: not a user name"
for o in "${overrides[@]}"; do
	case ${o%%=*} in
	slurm.conf|migrate.conf|plugstack.conf|TaskProlog) ;;
	*) smig_die "--override $o: unknown file '${o%%=*}' (slurm.conf, migrate.conf, plugstack.conf, TaskProlog)" ;;
	esac
	[[ -r ${o#*=} ]] || smig_die "--override $o: cannot read '${o#*=}'"
done
if [[ $plugins == yes && -z $plugindir ]]; then
	plugindir=$build/.libs
fi
[[ $plugins == no ]] && balancer=none
if [[ $balancer == smigd ]]; then
	[[ -x $build/smigd ]] || smig_die "$build/smigd missing: build first (make -C $build)"
	smigd_bin=$(cd "$build" && pwd)/smigd
fi
if [[ $plugins == yes ]]; then
	[[ -r $plugindir/spank_migrate.so ]] ||
		smig_die "$plugindir/spank_migrate.so missing: build first (make -C $build) or give --plugindir, or use --no-plugins"
	plugindir=$(cd "$plugindir" && pwd)
fi

# The cluster directory: ours (marker file) or new; never clobber others.
if [[ -e $dir && ! -e $dir/harness/cluster ]] && [[ -n $(ls -A "$dir" 2>/dev/null) ]]; then
	smig_die "$dir exists and is not a cluster directory of this harness: choose another --dir"
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if pid=$(smig_read_pid "$dir/run/slurmctld.pid") && smig_alive "$pid"; then
	smig_die "a cluster is already running in $dir (slurmctld pid $pid): run down.sh --dir $dir first"
fi
# Leftovers of an earlier run that was not stopped cleanly.
cluster_down "$dir"
rm -rf "${dir:?}"/{harness,state,spool,log,run,tmp,images,work,health}
rm -f "$dir"/{slurm.conf,plugstack.conf,migrate.conf,TaskProlog,topology.conf,hosts,env}
mkdir -p "$dir"/{harness,state,spool,log,run,tmp}
: > "$dir/harness/cluster"
chmod 0755 "$dir"

host=$(hostname -s)
ctld_addr=127.0.0.1
node_addr() { echo "127.0.0.$(($1 + 1))"; }
ompi_if=lo
if [[ $netns == yes ]]; then
	# A /24 of our own per port base; the bridge holds .1, node K .K+1.
	subnet=${SMIG_NETNS_SUBNET:-10.251.$(((base / 10) % 250)).}
	ctld_addr=${subnet}1
	node_addr() { echo "$subnet$(($1 + 1))"; }
	ompi_if=${subnet}0/24
fi
# Open MPI 5 renamed its shared-memory BTL vader to sm (and its settings).
ompi_major=$(ompi_info -V 2>/dev/null | sed -n 's/^Open MPI v\([0-9]*\)\..*/\1/p')
[[ -n $ompi_major ]] || smig_die "ompi_info -V gives no Open MPI version: apt-get install openmpi-bin"
ompi_sm=sm
((ompi_major >= 5)) || ompi_sm=vader
mport=$((base + 1))
nodes=()
for ((k = 1; k <= nnodes; k++)); do
	nodes+=("node$k")
done

# --- configuration files, as an admin would write them

cat > "$dir/slurm.conf" <<EOF
# slurm.conf - local test cluster of slurm-migrate (generated by up.sh)
ClusterName=smig$base
SlurmctldHost=$host($ctld_addr)
SlurmctldPort=$base
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Short credential life: a requeued job may start again after 11 s.
AuthInfo=cred_expire=10

StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.%n.log
SlurmctldDebug=$debug
SlurmdDebug=$debug

PluginDir=$SMIG_SLURM_PLUGINDIR${plugindir:+:$plugindir}
PlugStackConfig=$dir/plugstack.conf

ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
JobRequeue=1

# All slurmd share one host: node names come from -N, hardware from here.
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=10
SlurmctldTimeout=10
MessageTimeout=5
KillWait=5
InactiveLimit=0
MinJobAge=300
# Per-node TMPDIR: PMIx and Open MPI files of two "nodes" must not collide.
TmpFS=$dir/tmp/%n
TaskProlog=$dir/TaskProlog

EOF
for ((k = 1; k <= nnodes; k++)); do
	nodehost=$host
	[[ $netns == yes ]] && nodehost=node$k
	echo "NodeName=node$k NodeHostname=$nodehost NodeAddr=$(node_addr "$k") Port=$((base + 10 + k)) CPUs=4 RealMemory=2000 State=UNKNOWN" \
		>> "$dir/slurm.conf"
done
if ((nghost > 0)); then
	# Nobody listens on 127.0.0.254:PORT+9 (slurmd of node K: PORT+10+K), so
	# slurmctld's messages to these nodes are refused at once.
	cat >> "$dir/slurm.conf" <<EOF
# --ghost-nodes: configured, no slurmd anywhere
NodeName=ghost[0001-$(printf %04d "$nghost")] NodeHostname=$host NodeAddr=127.0.0.254 Port=$((base + 9)) CPUs=4 RealMemory=2000 State=DOWN Reason=ghost
EOF
fi
echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP" \
	>> "$dir/slurm.conf"

if [[ $topology == yes ]]; then
	# topology.conf beside slurm.conf, where slurmctld looks for it.
	{
		echo "# topology.conf - switch tree of the test cluster (generated by up.sh --topology)"
		leaves=()
		for ((k = 1; k <= nnodes; k += 2)); do
			sw=s$(((k - 1) / 2))
			leaves+=("$sw")
			if ((k + 1 <= nnodes)); then
				echo "SwitchName=$sw Nodes=node[$k-$((k + 1))]"
			else
				echo "SwitchName=$sw Nodes=node$k"
			fi
		done
		echo "SwitchName=spine Switches=$(IFS=,; echo "${leaves[*]}")"
	} > "$dir/topology.conf"
	echo "TopologyPlugin=topology/tree" >> "$dir/slurm.conf"
fi

if [[ $plugins == yes ]]; then
	cat > "$dir/plugstack.conf" <<EOF
# plugstack.conf - SPANK plugins of the test cluster (generated by up.sh)
required $plugindir/spank_migrate.so
EOF
else
	echo "# plugstack.conf - empty: the cluster runs without plugins (--no-plugins)" \
		> "$dir/plugstack.conf"
fi

cat > "$dir/migrate.conf" <<EOF
# migrate.conf - slurm-migrate settings of the test cluster (generated by up.sh)
MigrateBalancerAddr=$ctld_addr
MigratePort=$mport
MigratePollInterval=1s
MigrateCaptureTimeout=20s
# A relaunched step has this long to be past its restore (the watchdog tests).
MigrateRestoreTimeout=20s
MigrateImageDir=$dir/images
# Tests look at a completed job's images after its end; test_image_lifecycle
# sets the default (0: removed at the job's end) for its own jobs.
MigrateImageKeepCompleted=1d
# One health file per node (tests write "fail ..." to predict a failure).
MigrateHealthFile=$dir/health/%n
EOF

# Runs as the job's user before each task; "export" lines reach the task.
cat > "$dir/TaskProlog" <<EOF
#!/bin/sh
# TaskProlog - per-node temporary directory and Open MPI settings for tasks
# (generated by up.sh). All nodes share this machine's /tmp and /dev/shm.
echo "export TMPDIR=$dir/tmp/\$SLURMD_NODENAME"
echo "export OMPI_MCA_btl_${ompi_sm}_backing_directory=$dir/tmp/\$SLURMD_NODENAME"
# More ranks than cores: without yield_when_idle the ranks busy-poll.
echo "export OMPI_MCA_pml=ob1"
echo "export OMPI_MCA_btl=self,$ompi_sm,tcp"
echo "export OMPI_MCA_btl_tcp_if_include=$ompi_if"
echo "export OMPI_MCA_mpi_yield_when_idle=1"
EOF
chmod 0755 "$dir/TaskProlog"

for o in "${overrides[@]}"; do
	cp "${o#*=}" "$dir/${o%%=*}"
	smig_say "using ${o#*=} as ${o%%=*}"
done

install -d -m 0755 "$dir/health"
for n in "${nodes[@]}"; do
	mkdir -p "$dir/spool/$n" "$dir/tmp/$n"
	chmod 1777 "$dir/tmp/$n"
	echo "ok" > "$dir/health/$n"
	chmod 0644 "$dir/health/$n"
done
chmod 0755 "$dir"/{tmp,log}
# The PMIx server of a step keeps files in the spool dir that tasks read.
chmod 0755 "$dir/spool"
chmod 0700 "$dir"/{state,harness}

cat > "$dir/env" <<EOF
# Source this file to use the test cluster: . $dir/env
export SLURM_CONF=$dir/slurm.conf
export SMIG_CLUSTER_DIR=$dir
export SMIG_PORT_BASE=$base
export SMIG_MIGRATE_PORT=$mport
export SMIG_BALANCER_ADDR=$ctld_addr
export SMIG_NODE_NAMES="${nodes[*]}"
export SMIG_TEST_USER=$user
export SMIG_TEST_USER2=${user}2
export SMIG_NETNS=$netns
export SMIG_TOPOLOGY=$topology
export SMIG_PLUGINS=$plugins
export SMIG_BALANCER=$balancer
export OMPI_MCA_pml=ob1
export OMPI_MCA_btl=self,$ompi_sm,tcp
export OMPI_MCA_btl_tcp_if_include=$ompi_if
export OMPI_MCA_mpi_yield_when_idle=1
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin
EOF
chmod 0644 "$dir/env"

if [[ $generate_only == yes ]]; then
	smig_say "configuration written to $dir (--generate-only: nothing started)"
	exit 0
fi

# --- start: from here on, a failure stops what was started.

: > "$dir/harness/starting"
started=no
on_exit() {
	local rc=$?

	if [[ $started != yes ]]; then
		smig_say "start failed: stopping what was started"
		# The log file, or what the daemon printed before it had one.
		for f in "$dir"/run/slurm*.pid "$dir"/run/smigd.pid; do
			[[ -e $f ]] || continue
			f=$dir/log/$(basename "$f" .pid)
			[[ -s $f.log ]] && f=$f.log || f=$f.out
			[[ -s $f ]] || continue
			printf '==> %s (end) <==\n' "$f" >&2
			tail -n "$([[ $f == */slurmctld.* ]] && echo 15 || echo 4)" "$f" >&2
		done
		cluster_down "$dir"
		((rc == 0)) && rc=1
	fi
	rm -f "$dir/harness/starting"
	exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM

smig_shared_up "$dir" "$user"

install -d -o root -g root -m 0755 "$dir/images"
install -d -o "$user" -g "$user" -m 0755 "$dir/work"

# Network namespaces: a bridge with our /24, one namespace + veth per node.
if [[ $netns == yes ]]; then
	br=smigbr$base
	[[ -e /sys/class/net/$br ]] && smig_die "bridge $br exists: is another cluster using port base $base?"
	echo "bridge $br" >> "$dir/harness/netns"
	ip link add "$br" type bridge
	ip addr add "${ctld_addr}/24" dev "$br"
	ip link set "$br" up
	{
		echo "127.0.0.1 localhost"
		echo "$ctld_addr $host"
		for ((k = 1; k <= nnodes; k++)); do
			echo "$(node_addr "$k") node$k"
		done
	} > "$dir/hosts"
	chmod 0644 "$dir/hosts"
	for ((k = 1; k <= nnodes; k++)); do
		ns=smig${base}n$k
		[[ -e /run/netns/$ns ]] && smig_die "network namespace $ns exists already"
		echo "netns $ns" >> "$dir/harness/netns"
		echo "veth smv${base}n$k" >> "$dir/harness/netns"
		ip netns add "$ns"
		ip link add "smv${base}n$k" type veth peer name eth0 netns "$ns"
		ip link set "smv${base}n$k" master "$br" up
		nsenter --net="/run/netns/$ns" ip link set lo up
		nsenter --net="/run/netns/$ns" ip addr add "$(node_addr "$k")/24" dev eth0
		nsenter --net="/run/netns/$ns" ip link set eth0 up
	done
fi

# One cgroup per node (freezer in v1, or v2): finds stepds and tasks at the
# end, lets tests freeze a node. A cpu controller lets tests slow a node:
# the v1 cpu hierarchy's group (cpu.cfs_quota_us), or on v2 the same group
# with the cpu controller enabled for it (cpu.max).
cgroot=$(smig_cgroup_root)
# The group's name is unique on the machine: a cluster in a Debian root
# shares the host's cgroup tree (/sys) and may pick the same port base.
cg=smig-$base-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
cgcpu=
[[ $cgroot == /sys/fs/cgroup/freezer && -w /sys/fs/cgroup/cpu/cgroup.procs ]] &&
	cgcpu=/sys/fs/cgroup/cpu
for r in $cgroot $cgcpu; do
	mkdir -p "$r/$cg"
	echo "$r/$cg" >> "$dir/harness/cgroups"
	for n in "${nodes[@]}"; do
		mkdir -p "$r/$cg/$n"
		echo "$r/$cg/$n" >> "$dir/harness/cgroups"
	done
done
cpu_env=${cgcpu:+$cgcpu/$cg}
if [[ -n $cgroot && -z $cgcpu ]] && ! cpu_env=$(smig_cgroup_v2_cpu "$cgroot" "$cg"); then
	smig_say "cgroup v2 without the cpu controller for $cg: tests cannot slow a node"
	cpu_env=
fi
[[ -n $cgroot ]] || smig_say "no writable cgroup hierarchy: job processes are found through slurmd only"
{
	echo "export SMIG_CGROUP=${cgroot:+$cgroot/$cg}"
	echo "export SMIG_CGROUP_CPU=$cpu_env"
} >> "$dir/env"

# start_daemon NAME CGROUP-NODE CMD... - start CMD in the background in the
# node's cgroups, own session, log to log/NAME.out; record its pid.
start_daemon() {
	local name=$1 node=$2 r pid
	shift 2
	local enter=()

	for r in $cgroot $cgcpu; do
		[[ -n $node ]] && enter+=("$r/$cg/$node/cgroup.procs")
	done
	# shellcheck disable=SC2016
	SLURM_CONF=$dir/slurm.conf setsid bash -c '
		for f in "${@:1:$0}"; do echo $$ > "$f"; done
		shift "$0"
		exec "$@"' "${#enter[@]}" "${enter[@]}" "$@" \
		>> "$dir/log/$name.out" 2>&1 < /dev/null &
	pid=$!
	echo "$pid" > "$dir/run/$name.pid"
}

start_daemon slurmctld "" slurmctld -D -i -f "$dir/slurm.conf"
for ((k = 1; k <= nnodes; k++)); do
	n=node$k
	if [[ $netns == yes ]]; then
		start_daemon "slurmd.$n" "$n" nsenter --net="/run/netns/smig${base}n$k" \
			unshare --uts --mount -- sh -c \
			"mount --bind '$dir/hosts' /etc/hosts && hostname $n && exec slurmd -D -N $n -f '$dir/slurm.conf'"
	else
		start_daemon "slurmd.$n" "$n" slurmd -D -N "$n" -f "$dir/slurm.conf"
	fi
done

# Wait until every node is idle; a daemon that dies ends the wait at once.
export SLURM_CONF=$dir/slurm.conf
deadline=$((SECONDS + timeout))
while :; do
	for f in "$dir"/run/slurm*.pid; do
		pid=$(smig_read_pid "$f") || continue
		smig_alive "$pid" ||
			smig_die "$(basename "$f" .pid) (pid $pid) exited during start-up"
	done
	states=$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u) || states=
	nidle=$(awk '$2 == "idle" { n++ } END { print n + 0 }' <<< "$states")
	((nidle == nnodes)) && break
	((SECONDS < deadline)) ||
		smig_die "nodes not idle after ${timeout}s: $(tr '\n' ' ' <<< "$states")"
	sleep 0.3
done

# smigd needs slurmctld answering; it is up once it listens.
if [[ $balancer == smigd ]]; then
	start_daemon smigd "" "$smigd_bin" -D -v -L "$dir/log/smigd.log" \
		-p "$dir/run/smigd.pid"
	pid=$(smig_read_pid "$dir/run/smigd.pid")
	while ! grep -qs "balancer listening" "$dir/log/smigd.log"; do
		smig_alive "$pid" || smig_die "smigd (pid $pid) exited during start-up"
		((SECONDS < deadline)) || smig_die "smigd not listening after ${timeout}s"
		sleep 0.2
	done
fi

started=yes
rm -f "$dir/harness/starting"
: > "$dir/harness/up"
mode=loopback
[[ $netns == yes ]] && mode=netns
smig_say "up: $nnodes nodes idle ($mode), balancer $balancer, SlurmctldPort=$base MigratePort=$mport, dir $dir"
smig_say "use it with: . $dir/env"
