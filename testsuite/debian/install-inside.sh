#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# install-inside.sh - the steps of install-test.sh, inside the fresh root
#
# usage (by install-test.sh, in the root): install-inside.sh STEP FROM RELEASE
#   STEP     install (the host's network), cluster (loopback only) or purge
#   FROM     readme or packages
# /t is this directory (read-only), /w the work directory: README blocks in
# /w/readme/NAME, logs in /w/logs; the packages in /tmp/pkgs.
# Runs as root; PID 1 of the namespace is its parent: whatever it leaves
# running dies with it, but it stops every daemon it started by its PID.

set -euo pipefail
step=$1 from=$2 rel=$3
src=/usr/local/src/slurm-migrate
user=alice
export DEBIAN_FRONTEND=noninteractive
t0=$SECONDS

say() { printf '\n--- install-test (%s, %ds): %s\n' "$step" "$((SECONDS - t0))" "$*"; }
die() { printf 'install-test (Debian %s): error: %s\n' "$rel" "$*" >&2; exit 1; }

# block NAME - run the README's block NAME as root, each command echoed
# (bash -e: the first failing command fails the block); "sudo " dropped, as
# root needs none and the root has no sudo.
block() {
	say "README block '$1':"
	sed 's/^/    | /' "/w/readme/$1"
	sed 's/^\(\s*\)sudo /\1/' "/w/readme/$1" >"/run/block-$1.sh"
	(cd "${2:-/}" && PATH=/w/shim:$PATH bash -ex "/run/block-$1.sh") ||
		die "README block '$1' failed"
}

# --- systemd's part, there is no systemd in the root ----------------------

# The "systemctl" the README's blocks call: enable --now / start a unit runs
# its ExecStart as its User and Group (setpriv), in the background, its
# output in /w/logs/UNIT.out and its pid in /run/install-test/UNIT.pid;
# restart slurmd stops and starts the site's slurmds (by their pid files);
# daemon-reload does nothing. Anything else fails.
make_shim() {
	mkdir -p /w/shim
	cat >/w/shim/systemctl <<'EOF'
#!/bin/bash
# systemctl of install-test.sh: no systemd in the root (see install-inside.sh)
set -euo pipefail
unit_file() {
	local d
	for d in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
		[[ -r $d/$1.service ]] && { echo "$d/$1.service"; return 0; }
	done
	echo "systemctl (install-test): no unit $1.service" >&2
	exit 1
}
key() { sed -n "s/^$1=//p" "$2" | tail -n 1; }
case "$*" in
daemon-reload) exit 0 ;;
"enable --now "*|"start "*) unit=${*: -1} ;;
"restart slurmd")
	# The site's slurmds (install-inside.sh started them): each again.
	for f in /run/install-test/slurmd.*.pid; do
		node=${f#/run/install-test/slurmd.} node=${node%.pid} pid=$(<"$f")
		kill -TERM "$pid" 2>/dev/null || true
		for ((n = 0; n < 150; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		setsid slurmd -D -N "$node" >>"/w/logs/slurmd.$node.out" 2>&1 </dev/null &
		echo $! >"$f"
		echo "systemctl (install-test): slurmd -N $node restarted (pid $!)"
	done
	exit 0 ;;
*) echo "systemctl (install-test): '$*' not known here" >&2; exit 1 ;;
esac
f=$(unit_file "$unit")
exec_start=$(key ExecStart "$f") u=$(key User "$f") g=$(key Group "$f")
[[ -n $exec_start ]] || { echo "systemctl (install-test): $f has no ExecStart" >&2; exit 1; }
read -r -a argv <<<"$exec_start"
[[ -x ${argv[0]} ]] || { echo "systemctl (install-test): $f: ExecStart ${argv[0]}: not an executable" >&2; exit 1; }
echo "systemctl (install-test): starting $unit from $f: $exec_start as ${u:-root}:${g:-root}"
mkdir -p /run/install-test
setsid setpriv --reuid="${u:-root}" --regid="${g:-root}" --init-groups -- \
	"${argv[@]}" >>"/w/logs/$unit.out" 2>&1 </dev/null &
echo $! >"/run/install-test/$unit.pid"
EOF
	chmod 755 /w/shim/systemctl
}

# --- steps ----------------------------------------------------------------

# The site's Slurm and munge (not ours), then slurm-migrate as the README
# says, an ordinary user and the application, built from the installed
# header and library.
step_install() {
	# The admin answers "yes"; Recommends are optional (not needed here,
	# and they make the run slower).
	printf 'APT::Get::Assume-Yes "true";\nAPT::Install-Recommends "false";\n' \
		>/etc/apt/apt.conf.d/90install-test
	# The site: Slurm, munge, Open MPI (and, for applications, its
	# compiler: with --from readme the build dependencies bring it).
	site="slurmctld slurmd slurm-client munge openmpi-bin"
	[[ $from == packages ]] && site+=" libopenmpi-dev gcc pkg-config"
	say "apt-get update; the site's packages: $site"
	apt-get -q update
	# shellcheck disable=SC2086
	apt-get -q install $site
	# The site's munge key (Debian's munge makes one at install).
	[[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --verbose
	# The site has systemd (not running here: see make_shim).
	mkdir -p /etc/systemd/system
	make_shim
	useradd -m -s /bin/bash "$user"
	write_slurm_conf
	if [[ $from == readme ]]; then
		block source-build-deps "$src"
		block source-build "$src"
		# The cluster uses what make install put in place, not the tree.
		rm -rf "$src/build"
		say "installed: $(command -v smigd smig smig-image | tr '\n' ' ')"
	else
		# What is on the system before our packages: purge must get
		# back to it.
		snapshot >/w/before.list
		block packages-install /tmp
		dpkg-query -W -f='${Package} ${Version} ${Status}\n' smigd \
			slurm-migrate-spank slurm-migrate-tools libsmig0 libsmig-dev
		# Every file of ours, for the purge check.
		dpkg -L smigd slurm-migrate-spank slurm-migrate-tools libsmig0 \
			libsmig-dev | sort -u >/w/ours.list
	fi
	say "$user builds the installed example heat.c with the README's lines"
	sed 's/^/    | /' /w/readme/user-build-app
	(cd "/home/$user" && runuser -u "$user" -- bash -ex /w/readme/user-build-app) ||
		die "README block 'user-build-app' failed as $user"
	runuser -u "$user" -- ldd "/home/$user/heat" | grep -E 'libsmig|libmpi'
}

# snapshot - the files of the root, but the package manager's own state,
# caches, logs and what the cluster run writes (Slurm's spool, the test
# user's home)
snapshot() {
	find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
		-o -path /tmp -o -path /w -o -path /t -o -path /var/cache \
		-o -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/log \
		-o -path /home -o -path /var/spool/slurmctld -o -path /var/lib/munge \
		-o -path /var/spool/slurmd -o -path /etc/ld.so.cache \) -prune \
		-o -print | sort
}

# --- the cluster ------------------------------------------------------------

# daemon NAME CMD... - start a daemon in the background, its pid in
# /run/install-test/NAME.pid
daemon() {
	local name=$1
	shift
	mkdir -p /run/install-test
	setsid "$@" >>"/w/logs/$name.out" 2>&1 </dev/null &
	echo $! >"/run/install-test/$name.pid"
}

# stop_all - every daemon started here or by the README's systemctl, by
# its pid: smigd, the slurmds, slurmctld, munged; TERM, KILL after 15 s
stop_all() {
	local f name pid n
	for f in /run/install-test/smigd.pid /run/install-test/slurmd.*.pid \
		/run/install-test/slurmctld.pid /run/install-test/munged.pid; do
		[[ -r $f ]] || continue
		name=$(basename "$f" .pid) pid=$(<"$f")
		rm -f "$f"
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid"
		for ((n = 0; n < 150; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "install-test: $name (pid $pid) still running after 15 s: KILL"
			kill -KILL "$pid"
		fi
	done
}

show_logs() {
	local f
	for f in /var/log/slurm/*.log /w/logs/*.out; do
		[[ -s $f ]] || continue
		printf '==> %s (end) <==\n' "$f"
		tail -n 25 "$f"
	done
	mkdir -p /w/logs/root
	cp -a /var/log/slurm /w/logs/root/ 2>/dev/null || true
}

# The site's configuration: slurm.conf of a 3-node cluster on this one host
# (the test harness's layout, testsuite/cluster/up.sh: slurmd -N nodeK with
# its own port, spool and TMPDIR), Debian's paths.
write_slurm_conf() {
	local k ompi_major sm
	ompi_major=$(ompi_info -V | sed -n 's/^Open MPI v\([0-9]*\)\..*/\1/p')
	sm=sm
	((ompi_major >= 5)) || sm=vader
	cat >/etc/slurm/slurm.conf <<EOF
# slurm.conf of install-test.sh: three nodes on one host
ClusterName=installtest
SlurmctldHost=droot
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=10
KillWait=5
TmpFS=/tmp/nodes/%n
TaskProlog=/etc/slurm/task-prolog
EOF
	for k in 1 2 3; do
		echo "NodeName=node$k NodeHostname=droot NodeAddr=127.0.0.1 Port=$((6830 + k)) CPUs=2 RealMemory=1000 State=UNKNOWN"
	done >>/etc/slurm/slurm.conf
	echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP" \
		>>/etc/slurm/slurm.conf
	# All nodes share /tmp and /dev/shm: Open MPI's files per node, and
	# its TCP BTL on loopback.
	cat >/etc/slurm/task-prolog <<EOF
#!/bin/sh
echo "export TMPDIR=/tmp/nodes/\$SLURMD_NODENAME"
echo "export OMPI_MCA_btl_${sm}_backing_directory=/tmp/nodes/\$SLURMD_NODENAME"
echo "export OMPI_MCA_pml=ob1"
echo "export OMPI_MCA_btl=self,$sm,tcp"
echo "export OMPI_MCA_btl_tcp_if_include=lo"
echo "export OMPI_MCA_mpi_yield_when_idle=1"
EOF
	chmod 755 /etc/slurm/task-prolog
}

# ompi_flake FILE - FILE shows one of Open MPI's own start-up failures and
# nothing of ours said anything, in FILE or as an error in a daemon's log:
# the one reason a launch runs again. The patterns are the pytest harness's
# (testsuite/python/lib/cluster.py: MPI_FLAKE_PATTERNS, OURS_RE,
# OURS_LOG_ERROR_RE), written into /w by install-test.sh.
ompi_flake() {
	grep -qP -e "$(cat /w/ompi-flake.re)" "$1" &&
		! grep -qiE 'smig|migrat' "$1" &&
		! grep -qP -e "$(cat /w/ours.re)" "$1" &&
		! grep -qsP -e "$(cat /w/ours-log.re)" /var/log/slurm/*.log /w/logs/*.out
}

# starts FILE - how many ranks printed their first start line in FILE
starts() {
	local c
	c=$(grep -cE '^heat: rank [0-9] node \S+ start iter 0$' "$1" 2>/dev/null) || true
	echo "${c:-0}"
}
as_user() { (cd "/home/$user" && runuser -u "$user" -- "$@"); }
job_field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# AdminComment has a line of its own in "scontrol show job", blanks inside.
admin_comment() { scontrol show job "$1" | sed -n 's/^[[:space:]]*AdminComment=//p'; }
heat_args=(--nx 96 --ny 64 --iters 600 --report 50)

# nodes_idle - wait until the 3 nodes are idle (60 s at most)
nodes_idle() {
	local n
	for ((n = 0; n < 600; n++)); do
		[[ $(sinfo -h -N -o '%t' 2>/dev/null | grep -c '^idle$') == 3 ]] && return 0
		sleep 0.1
	done
	sinfo -N
	show_logs
	die "the 3 nodes are not idle after 60 s"
}

step_cluster() {
	local k n out job state first victim done_ref done_mig comment try
	trap 'stop_all' EXIT
	trap 'exit 130' INT TERM
	say "the site's slurm.conf, munge, slurmctld, 3 slurmds"
	write_slurm_conf
	install -d -o slurm -g slurm -m 755 /var/spool/slurmctld /var/log/slurm
	for k in 1 2 3; do
		install -d -m 755 "/var/spool/slurmd/node$k"
		install -d -m 1777 "/tmp/nodes/node$k"
	done
	install -d -o munge -g munge -m 755 /run/munge
	daemon munged setpriv --reuid=munge --regid=munge --init-groups -- /usr/sbin/munged -F
	for ((n = 0; n < 100; n++)); do
		munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
		sleep 0.1
	done
	munge -n </dev/null | unmunge >/dev/null || die "munged does not answer"

	if [[ $from == readme ]]; then
		say "enabling it as the README says"
		sed 's/^/    | /' /w/readme/enable-plugstack
		cat /w/readme/enable-plugstack >>/etc/slurm/plugstack.conf
		# migrate.conf as shown, with this site's controller.
		sed 's/ctld\.example\.org/droot/' /w/readme/enable-migrate-conf \
			>/etc/slurm/migrate.conf
		sed 's/^/    | /' /etc/slurm/migrate.conf
		block source-smigd-unit "$src"
	fi

	daemon slurmctld slurmctld -D
	for k in 1 2 3; do
		daemon "slurmd.node$k" slurmd -D -N "node$k"
	done
	nodes_idle

	if [[ $from == readme ]]; then
		block enable-smigd "$src"
	else
		block packages-enable /
		cat /etc/slurm/plugstack.conf.d/migrate.conf
		nodes_idle
	fi
	for ((n = 0; n < 300; n++)); do
		grep -qs "balancer listening" /w/logs/smigd.out && break
		kill -0 "$(</run/install-test/smigd.pid)" ||
			{ show_logs; die "smigd exited at start"; }
		sleep 0.1
	done
	grep -s "balancer listening" /w/logs/smigd.out ||
		{ show_logs; die "smigd not listening after 30 s"; }

	say "without migration: srun --mpi=pmix -N2 -n4 ./heat ${heat_args[*]}"
	for try in 1 2; do
		as_user srun --mpi=pmix -N2 -n4 ./heat "${heat_args[@]}" >/w/logs/reference.out 2>&1 && break
		cat /w/logs/reference.out
		if ((try == 2)) || ! ompi_flake /w/logs/reference.out; then
			show_logs
			die "the run without migration failed"
		fi
		echo "install-test: Open MPI's start-up failed (its own words above): once more"
	done
	done_ref=$(grep -E '^heat: done iters=600 checksum=[0-9a-f]{16}$' /w/logs/reference.out) ||
		{ cat /w/logs/reference.out; die "the run without migration printed no checksum"; }
	echo "$done_ref"

	say "with migration: sbatch -N3 --ntasks-per-node=2, srun --mpi=pmix --migrate -N2 -n4, a drain"
	cat >"/home/$user/job.sh" <<EOF
#!/bin/bash
srun --mpi=pmix --migrate -N2 -n4 ./heat ${heat_args[*]} --sleep-ms 40
echo srun_exit=\$?
EOF
	chown "$user:" "/home/$user/job.sh"
	for try in 1 2; do
		out=/home/$user/job.$try.out
		job=$(as_user sbatch --parsable -N3 --ntasks-per-node=2 -o "$out" job.sh)
		for ((n = 0; n < 900; n++)); do
			(($(starts "$out") == 4)) && break
			state=$(job_field "$job" JobState)
			[[ $state == PENDING || $state == RUNNING ]] || break
			sleep 0.1
		done
		(($(starts "$out") == 4)) && break
		cat "$out" 2>/dev/null || true
		scancel "$job" || true
		if ((try == 2)) || ! ompi_flake "$out"; then
			show_logs
			die "job $job did not start its 4 ranks (state $(job_field "$job" JobState))"
		fi
		echo "install-test: Open MPI's start-up failed (its own words above): once more"
	done
	first=$(grep -E '^heat: rank [0-9] node \S+ start iter 0$' "$out")
	echo "$first"
	victim=$(sed -n 's/^heat: rank 3 node \(\S*\) start iter 0$/\1/p' <<<"$first")
	# The balancer knows the job before the drain (mode=auto in its
	# state line), so the drain is a move, not a start.
	for ((n = 0; n < 300; n++)); do
		comment=$(admin_comment "$job")
		[[ $comment == *'smig[mode=auto'* ]] && break
		sleep 0.1
	done
	[[ $comment == *'smig[mode=auto gen=0 moves=0'* ]] ||
		{ show_logs; die "job $job: no smig[mode=auto gen=0 moves=0 ...] in its AdminComment before the drain: '$comment'"; }
	echo "AdminComment=$comment"
	say "scontrol update nodename=$victim state=drain (rank 3's node)"
	scontrol update nodename="$victim" state=drain reason=install-test
	for ((n = 0; n < 2400; n++)); do
		state=$(job_field "$job" JobState)
		[[ $state == PENDING || $state == RUNNING || $state == COMPLETING ]] || break
		sleep 0.1
	done
	cat "$out"
	comment=$(admin_comment "$job")
	echo "AdminComment=$comment"
	scontrol update nodename="$victim" state=resume
	[[ $state == COMPLETED ]] || { show_logs; die "job $job ended $state"; }
	grep -qx 'srun_exit=0' "$out" || { show_logs; die "srun did not return 0"; }
	done_mig=$(grep -E '^heat: done iters=600 checksum=[0-9a-f]{16}$' "$out") ||
		{ show_logs; die "job $job printed no checksum"; }
	[[ $done_mig == "$done_ref" ]] ||
		die "job $job: '$done_mig', without migration: '$done_ref'"
	(($(grep -cE '^heat: rank [0-9] node \S+ restored iter [0-9]+$' "$out") == 4)) ||
		{ show_logs; die "job $job: not every rank restored"; }
	grep -E "^heat: rank [0-9] node $victim restored" "$out" &&
		die "job $job: a rank restored on the drained node $victim"
	[[ $comment == *"smig[mode=auto gen=1 moves=1 last_move="*";from=$victim;to="*";reason=drain"* ]] ||
		die "job $job: AdminComment '$comment': not one move from $victim for the drain"
	# A completed job's images go in its epilog (doc/images.md), before
	# slurmctld says COMPLETED.
	[[ ! -e /var/spool/slurm-migrate/$job ]] ||
		{ ls -la "/var/spool/slurm-migrate/$job"; die "job $job completed and left its image directory"; }
	say "migrated: the drain moved rank 3 off $victim, the same checksum as without migration; no image left"
	stop_all
	trap - EXIT
	show_logs >/dev/null
}

# apt-get purge of our packages; then no file of theirs and nothing named
# after them may be left, nor a systemd unit or its enablement, nor smigd's
# state or the image store.
step_purge() {
	local left
	# --autoremove: what apt installed for them only (libglib, libmetis ...).
	say "apt-get purge --autoremove smigd slurm-migrate-spank slurm-migrate-tools libsmig-dev libsmig0"
	apt-get -q purge --autoremove smigd slurm-migrate-spank slurm-migrate-tools \
		libsmig-dev libsmig0
	left=$(dpkg -l | awk '$2 ~ /^(smigd|slurm-migrate-|libsmig)/ { print $1, $2 }')
	[[ -z $left ]] || die "still known to dpkg after the purge: $left"
	snapshot >/w/after.list
	# Files of our packages still there (their directories that others
	# share, /usr/bin or /lib/systemd/system, stay).
	left=$(comm -13 /w/before.list /w/after.list)
	left+=$'\n'$(while read -r f; do
		[[ -e $f || -L $f ]] || continue
		[[ -d $f ]] && continue
		grep -qxF "$f" /w/before.list || echo "$f"
	done </w/ours.list)
	left+=$'\n'$(find / -xdev \( -path /proc -o -path /sys -o -path /w -o -path /t \
		-o -path /tmp -o -path /var/cache/apt -o -path /var/lib/dpkg \
		-o -path /var/log/apt -o -path /var/log/dpkg.log \) -prune -o \
		\( -name '*smig*' -o -name '*slurm-migrate*' -o -name 'spank_migrate*' \
		-o -name 'migrate.conf' \) -print)
	# smigd's state (MigrateStateDir's default, <StateSaveLocation>/migrate)
	[[ -e /var/spool/slurmctld/migrate ]] && left+=$'\n'$(find /var/spool/slurmctld/migrate)
	left=$(sed '/^$/d' <<<"$left" | sort -u)
	[[ -z $left ]] || die "left after apt-get purge:
$left"
	say "purged: nothing of the packages left (files, units, enablement)"
}

case $step in
install) step_install ;;
cluster) step_cluster ;;
purge) step_purge ;;
*) die "step '$step': not install, cluster or purge" ;;
esac
