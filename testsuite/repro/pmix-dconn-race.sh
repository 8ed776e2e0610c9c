#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# pmix-dconn-race.sh - reproduce, with plain Slurm, the hang of a PMIx fence in
# a step that runs on nodes other than the first nodes of its job
#
# Suspected cause (Slurm 22.05.8 src/plugins/mpi/pmix, same in 24.11):
# pmixp_dconn_require_connect() breaks the tie between two slurmstepds that
# both sent their first message to each other through slurmd (both in
# PMIXP_DIRECT_EP_SENT, TCP "two-sided" direct connections) with
#     if (dconn->nodeid < pmixp_info_nodeid())
# where dconn->nodeid is the peer's node id in the JOB and pmixp_info_nodeid()
# this node's id in the STEP. For a step on node[2-3] of a job on node[1-3]
# (job ids 1,2; step ids 0,1) both sides find "false", both wait for the
# other to connect, nobody does, and every later message queued on the
# direct connection is lost: the first fence (sent through slurmd) completes,
# the second hangs.
#
# This script starts a 3-node local cluster without the slurm-migrate plugins
# (testsuite/cluster/up.sh --no-plugins), allocates all three nodes as the test
# user and runs a plain PMIx client (pmix-fences.c: PMIx_Init, fences that
# collect data, PMIx_Finalize) in 2-node steps, RUNS times per case:
#   a  -w node2,node3, common start        (not the job's first node: hangs?)
#   b  -w node1,node2, common start        (the job's first nodes)
#   c  like a, SLURM_PMIX_DIRECT_CONN=false (the proposed workaround)
#   d  like a, SLURM_PMIX_FENCE=tree
#   e  like a, no common start              (natural timing)
#   f  -w node1,node3, common start        (job ids 0,2 step ids 0,1: the
#                                           tie-break still works)
#   g  like a, SLURM_JOB_NODELIST=node[2-3] (mpi/pmix takes the job's node
#                                           list from there: job ids = step ids)
# After each fence every rank counts the values of that fence it can read
# without asking another node (PMIX_OPTIONAL): a fence that really collected
# shows 4/4; "partial" counts runs where some rank saw fewer. With --skew MS
# the last rank sleeps MS before fence 2: in a real fence all ranks wait.
# "common start": every rank waits for one wall-clock instant before its first
# fence, so both slurmstepds send their first ring message at the same time.
# A run that does not end within --timeout seconds while not every rank has
# passed the second fence is a hang (one that passed it but is still going is
# counted as a failure, "slow"; any other non-zero exit too). For the first
# hung runs (--captures) the script dumps, while the step hangs, the direct
# connection state of both slurmstepds (gdb, exported symbols of
# mpi_pmix_v4.so) and, after it is killed, the step's slurmd log lines.
# Cases run interleaved (a b c ... a b c ...) so that load drift on a shared
# machine hits them alike. Prints a table: case, runs, ok, hangs, failures,
# hang rate with its 95 % (Wilson) interval.
#
# Run as root. Needs: Slurm 22.05 (slurmctld, slurmd, srun), libpmix-dev,
# gcc, gdb (for the captures), munge.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
	cat <<EOF
usage: $0 [options]
  -n, --runs N       runs per case (default 100)
  --cases LIST       cases to run, comma-separated, from a,b,c,d,e,f (default all)
  --timeout SEC      a run still going after SEC s, some rank not past fence 2,
                     is a hang (default 5; must leave 2.5 s after the common start)
  --lead MS          common start: this many ms after srun is started (default 1200)
  --fences N         fences per run after PMIx_Init (default 3)
  --skew MS          the last rank sleeps MS before fence 2 (default 0)
  --captures K       hung runs to capture (gdb dump + log lines) (default 2)
  --port-base P      first TCP port of the cluster (default 23700)
  --dir DIR          cluster directory (default: a new /tmp/pmix-dconn-race.XXXXXX)
  --debug LEVEL      SlurmdDebug/SlurmctldDebug (default debug: mpi/pmix's own lines)
  --user NAME        user the jobs run as (default smigrepro)
  -h, --help         this text
Case a: -w node2,node3; b: -w node1,node2; c: a + SLURM_PMIX_DIRECT_CONN=false;
d: a + SLURM_PMIX_FENCE=tree; e: a without a common start; f: -w node1,node3;
g: a + SLURM_JOB_NODELIST=node[2-3].
EOF
}

die() { printf 'pmix-dconn-race: error: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

runs=100
cases=a,b,c,d,e,f,g
timeout=5
lead=1200
fences=3
skew=0
captures=2
base=23700
dir=
debug=debug
user=smigrepro

while (($# > 0)); do
	case $1 in
	-n|--runs) runs=$2; shift ;;
	--cases) cases=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--lead) lead=$2; shift ;;
	--fences) fences=$2; shift ;;
	--skew) skew=$2; shift ;;
	--captures) captures=$2; shift ;;
	--port-base) base=$2; shift ;;
	--dir) dir=$2; shift ;;
	--debug) debug=$2; shift ;;
	--user) user=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
	shift
done

[[ $(id -u) == 0 ]] || die "must run as root (starts the cluster, runs jobs as --user)"
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 1)); then
	die "--runs=$runs: not a number >= 1"
fi
if ! [[ $timeout =~ ^[0-9]+$ ]] || ((timeout < 3)); then
	die "--timeout=$timeout: not a number of seconds >= 3"
fi
[[ $lead =~ ^[0-9]+$ ]] || die "--lead=$lead: not a number of ms"
((timeout * 1000 >= lead + 2500)) ||
	die "--timeout=$timeout: must be at least --lead ($lead ms) + 2.5 s"
if ! [[ $fences =~ ^[0-9]+$ ]] || ((fences < 2 || fences > 100)); then
	die "--fences=$fences: not a number in 2..100 (the hang is in the second)"
fi
[[ $captures =~ ^[0-9]+$ ]] || die "--captures=$captures: not a number"
[[ $skew =~ ^[0-9]+$ ]] || die "--skew=$skew: not a number of ms"
((timeout * 1000 >= lead + skew + 2500)) ||
	die "--timeout=$timeout: must be at least --lead + --skew ($((lead + skew)) ms) + 2.5 s"
IFS=, read -r -a caselist <<< "$cases"
((${#caselist[@]} > 0)) || die "--cases='$cases': no case"
for c in "${caselist[@]}"; do
	[[ $c =~ ^[a-g]$ ]] || die "--cases='$cases': unknown case '$c' (a..g)"
done
for tool in gcc pkg-config srun salloc scancel squeue runuser timeout; do
	command -v "$tool" > /dev/null || die "$tool not found"
done
have_gdb=yes
command -v gdb > /dev/null || have_gdb=no

# case_nodes/case_env/case_sync CASE - the step's nodes, extra environment,
# whether the ranks wait for a common start.
case_nodes() {
	case $1 in
	b) echo node1,node2 ;;
	f) echo node1,node3 ;;
	*) echo node2,node3 ;;
	esac
}
case_env() {
	case $1 in
	c) echo SLURM_PMIX_DIRECT_CONN=false ;;
	d) echo SLURM_PMIX_FENCE=tree ;;
	g) echo "SLURM_JOB_NODELIST=node[2-3]" ;;
	*) echo ;;
	esac
}
case_sync() { [[ $1 == e ]] && echo no || echo yes; }

if [[ -z $dir ]]; then
	dir=$(mktemp -d /tmp/pmix-dconn-race.XXXXXX)
fi

# --- cleanup, by pid and job id, also on failure
jobid=
runpid=
allocpid=
cluster_started=no
cleanup() {
	local rc=$?

	trap - EXIT INT TERM
	if [[ -n $runpid ]] && kill -0 "$runpid" 2>/dev/null; then
		kill -TERM "$runpid" 2>/dev/null || true
		wait "$runpid" 2>/dev/null || true
	fi
	rm -f "$dir/work/hold"
	if [[ -n $allocpid ]]; then
		for ((i = 0; i < 50; i++)); do
			kill -0 "$allocpid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	if [[ -n $jobid ]]; then
		scancel "$jobid" 2>/dev/null || true
	fi
	if [[ -n $allocpid ]] && kill -0 "$allocpid" 2>/dev/null; then
		kill -TERM "$allocpid" 2>/dev/null || true
		wait "$allocpid" 2>/dev/null || true
	fi
	if pid=$(cat "$dir/work/holder.pid" 2>/dev/null) && [[ $pid =~ ^[0-9]+$ ]] &&
		[[ $({ tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null) == "sh -c "* ]]; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
	if [[ $cluster_started == yes ]]; then
		"$repo/testsuite/cluster/down.sh" --dir "$dir" >&2 || rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- cluster
say "# pmix-dconn-race: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname -s), $(nproc) cores"
cluster_started=yes
SMIG_TEST_USER=$user "$repo/testsuite/cluster/up.sh" --no-plugins --dir "$dir" \
	--port-base "$base" --nodes 3 --debug "$debug" --user "$user" >&2
# shellcheck source=/dev/null
. "$dir/env"
say "# slurm $(srun --version | awk '{ print $2 }'), pmix $(pkg-config --modversion pmix)," \
	"open mpi $( (ompi_info --version 2> /dev/null || echo 'Open MPI absent') | awk 'NR == 1 { print $NF }')," \
	"mpi plugin $(basename "$(readlink -f /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so)")"
say "# packages: $(dpkg-query -W -f '${Package} ${Version}, ' slurmd libpmix2 openmpi-bin 2> /dev/null || echo 'dpkg-query failed')"
say "# runs per case $runs, cases $cases, timeout ${timeout}s, lead ${lead}ms, fences $fences, skew ${skew}ms," \
	"cluster dir $dir, port base $base, SlurmdDebug $debug"

prog=$dir/work/pmix-fences
# shellcheck disable=SC2046 # pkg-config prints several words
gcc -Wall -O2 -o "$prog" "$here/pmix-fences.c" $(pkg-config --cflags --libs pmix)
chmod 0755 "$prog"

# The allocation: salloc as the user, holding a shell that saves its
# environment. Every srun below runs with exactly that environment, as an
# srun in a batch script or an salloc shell does: mpi/pmix takes the job's
# node list from SLURM_JOB_NODELIST there (an srun --jobid=J started outside
# the allocation sets it to the step's nodes, which hides the bug).
# The holding shell ends by itself within a second once cleanup removes the
# hold file (salloc does not stop its command when the job is cancelled: a
# plain "sleep" outlived the script).
: > "$dir/work/hold"
chmod 0644 "$dir/work/hold"
# shellcheck disable=SC2016 # expanded by the holding shell
(cd "$dir/work" && exec runuser -u "$user" -- env -i PATH="$PATH" \
	SLURM_CONF="$SLURM_CONF" HOME="$dir/work" USER="$user" \
	salloc -N3 --ntasks-per-node=2 -J pmix-dconn-race \
	sh -c 'echo $$ > holder.pid; env -0 > alloc.env.tmp && mv alloc.env.tmp alloc.env &&
		while [ -e hold ]; do sleep 1; done') \
	> "$dir/work/salloc.out" 2>&1 &
allocpid=$!
for ((i = 0; i < 300; i++)); do
	[[ -s $dir/work/alloc.env ]] && break
	kill -0 "$allocpid" 2>/dev/null ||
		die "salloc failed: $(cat "$dir/work/salloc.out")"
	sleep 0.1
done
[[ -s $dir/work/alloc.env ]] || die "salloc: no allocation after 30 s: $(cat "$dir/work/salloc.out")"
mapfile -d '' allocenv < "$dir/work/alloc.env"
jobid=$(tr '\0' '\n' < "$dir/work/alloc.env" | sed -n 's/^SLURM_JOB_ID=//p')
[[ -n $jobid ]] || die "salloc: no SLURM_JOB_ID in the allocation's environment"
say "# job $jobid on $(squeue -h -j "$jobid" -o %N);" \
	"srun runs with the allocation's SLURM_JOB_NODELIST=$(tr '\0' '\n' < "$dir/work/alloc.env" | sed -n 's/^SLURM_JOB_NODELIST=//p')"

# step_of FILE - the step (J.S) a run's output names (from the PMIx namespace).
step_of() {
	sed -n 's/^rank [0-9]* [^ ]* slurm\.pmix\.\([0-9]*\.[0-9]*\) .*/\1/p' "$1" | head -n 1
}

# stepd_pid NODE STEP - pid of the slurmstepd of STEP (J.S) on NODE, from the
# node's cgroup (all nodes share this machine: ps cannot tell them apart).
stepd_pid() {
	local procs=$SMIG_CGROUP/$1/cgroup.procs pid

	[[ -r $procs ]] || return 1
	while read -r pid; do
		if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null |
			grep -qF "slurmstepd: [$2]"; then
			echo "$pid"
			return 0
		fi
	done < "$procs"
	return 1
}

# dump_dconn PID - the slurmstepd's PMIx node ids and the state of each of its
# direct connections, read with gdb from mpi_pmix_v4.so's exported globals
# (Debian's plugin is stripped, these are dynamic symbols). Layouts from
# pmixp_info.h / pmixp_dconn.h of 22.05.8: pmixp_dconn_t is 64 bytes (mutex
# 40, state at 40, nodeid at 44); pmix_jobinfo_t starts with the namespace
# (at 0, or at 4 behind a magic when built without NDEBUG).
# shellcheck disable=SC2016 # $j and $c are gdb variables
dump_dconn() {
	local pid=$1 g off ns cnt i j k l nid st

	g=$(gdb -p "$pid" -batch -nx \
		-ex 'set $j = (char *)&_pmixp_job_info' \
		-ex 'printf "ns0 %s\n", $j' \
		-ex 'printf "ns4 %s\n", $j + 4' \
		-ex 'printf "ids0 %d %d %d %d\n", *(int *)($j + 268), *(int *)($j + 272), *(int *)($j + 296), *(int *)($j + 300)' \
		-ex 'printf "ids4 %d %d %d %d\n", *(int *)($j + 272), *(int *)($j + 276), *(int *)($j + 304), *(int *)($j + 308)' \
		-ex 'set $c = *(char **)&_pmixp_dconn_conns' \
		-ex 'printf "cnt %d\n", *(int *)&_pmixp_dconn_conn_cnt' \
		-ex 'printf "dconn %d %d\n", *(int *)($c + 44), *(int *)($c + 40)' \
		-ex 'printf "dconn %d %d\n", *(int *)($c + 64 + 44), *(int *)($c + 64 + 40)' \
		-ex 'printf "dconn %d %d\n", *(int *)($c + 128 + 44), *(int *)($c + 128 + 40)' \
		2>&1) || true
	off=
	ns=$(sed -n 's/^ns0 \(slurm\.pmix\..*\)/\1/p' <<< "$g")
	[[ -n $ns ]] && off=0
	if [[ -z $off ]]; then
		ns=$(sed -n 's/^ns4 \(slurm\.pmix\..*\)/\1/p' <<< "$g")
		[[ -n $ns ]] && off=4
	fi
	if [[ -z $off ]]; then
		say "    gdb: could not read mpi_pmix_v4.so's globals:"
		sed 's/^/      | /' <<< "$g" | tail -n 5
		return 0
	fi
	read -r _ i j k l <<< "$(grep "^ids$off " <<< "$g")"
	say "    namespace $ns: step nodes $i (this node's step id $k), job nodes $j (this node's job id $l)"
	cnt=$(sed -n 's/^cnt //p' <<< "$g")
	i=0
	while read -r _ nid st; do
		((i < cnt)) || break
		case $st in
		1) st="PMIXP_DIRECT_INIT" ;;
		2) st="PMIXP_DIRECT_EP_SENT" ;;
		3) st="PMIXP_DIRECT_CONNECTED" ;;
		*) st="state $st" ;;
		esac
		say "    dconn[job node id $nid] = $st"
		i=$((i + 1))
	done < <(grep '^dconn ' <<< "$g")
}

# capture CASE RUN STEP OUTFILE - while the step hangs: which fences each
# rank passed, and both slurmstepds' direct connection states.
capture() {
	local c=$1 r=$2 step=$3 f=$4 n pid

	say "## capture: case $c run $r, step $step, still running after $((timeout - 2))s"
	say "  fences passed (rank node namespace fence N ok ms):"
	sed 's/^/    /' "$f"
	for n in ${nodes//,/ }; do
		if ! pid=$(stepd_pid "$n" "$step"); then
			say "  $n: no slurmstepd of step $step found"
			continue
		fi
		say "  $n: slurmstepd pid $pid"
		if [[ $have_gdb == yes ]]; then
			dump_dconn "$pid"
		else
			say "    (gdb not installed: no dconn dump)"
		fi
	done
}

# log_lines STEP - what the step's slurmstepds logged about PMIx direct
# connections and fences (after the step ended: the ring state is dumped
# when the step's collectives are freed).
log_lines() {
	local step=$1 n

	for n in node1 node2 node3; do
		grep -F "[$step]" "$dir/log/slurmd.$n.log" 2>/dev/null |
			grep -E 'Direct connection|DIRECT PROTO|transit data|_pmix_p2p_send_core|Unable to connect|COLL_FENCE|contribs:|neighbor id|my peerid|status=|wait contrib|collective timeout|done contrib|timeout|pmixp_coll_ring.c:[0-9]+: .*(ring|fwd)|pmixp_server.c:[0-9]+: .*(message from|RING|init)' |
			sed "s/^/    $n: /" | cut -c 1-230 | head -n 40 || true
	done
}

# wait_no_steps - wait (up to 60 s) until the job runs no step.
wait_no_steps() {
	local i

	for ((i = 0; i < 600; i++)); do
		[[ -z $(squeue -h -s -j "$jobid" 2>/dev/null) ]] && return 0
		sleep 0.1
	done
	say "# warning: a step of job $jobid still listed after 60 s"
}

declare -A nrun nok nhang nfail nlate npartial nnowait
for c in "${caselist[@]}"; do
	nrun[$c]=0; nok[$c]=0; nhang[$c]=0; nfail[$c]=0; nlate[$c]=0; npartial[$c]=0; nnowait[$c]=0
done
ncaptured=0
ok_logged=
runlog=$dir/runs.txt
: > "$runlog"
say "# one line per run: case run result seconds step fence1-lines fence2-lines" \
	"min-values-seen fence2-ms-of-ranks-0-1"

for ((r = 1; r <= runs; r++)); do
	for c in "${caselist[@]}"; do
		nodes=$(case_nodes "$c")
		env=()
		[[ -n $(case_env "$c") ]] && env=("$(case_env "$c")")
		at=0
		f=$dir/work/out.$c.$r
		: > "$f"
		chown "$user" "$f"
		t0=$(date +%s%N)
		[[ $(case_sync "$c") == yes ]] && at=$((t0 / 1000000 + lead))
		# shellcheck disable=SC2016
		(cd "$dir/work" && exec runuser -u "$user" -- env -i "${allocenv[@]}" "${env[@]}" \
			timeout -k 5 "$timeout" srun --mpi=pmix \
			-N2 -n4 --ntasks-per-node=2 -w "$nodes" \
			"$prog" "$fences" "$at" "$skew") > "$f" 2> "$f.err" &
		runpid=$!
		captured=no
		dumped=no
		while kill -0 "$runpid" 2>/dev/null; do
			if [[ $captured == no ]] &&
				(($(date +%s%N) - t0 > (timeout - 2) * 1000000000)); then
				captured=yes
				if ((ncaptured < captures)); then
					ncaptured=$((ncaptured + 1))
					dumped=yes
					step=$(step_of "$f")
					capture "$c" "$r" "${step:-?}" "$f"
				fi
			fi
			sleep 0.05
		done
		rc=0
		wait "$runpid" || rc=$?
		runpid=
		secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
		step=$(step_of "$f")
		f1=$(grep -c ' fence 1 ok ' "$f" || true)
		f2=$(grep -c ' fence 2 ok ' "$f" || true)
		late=$(grep -c ' late by ' "$f" || true)
		seen=$(awk '/ fence [0-9]+ ok / { split($NF, v, "/"); if (m == "" || v[1] < m) m = v[1] }
			END { print (m == "" ? "-" : m) }' "$f")
		# Ranks 0 and 1 run on the step's first node, the sleeping rank
		# (the last) on the other one.
		long2=$(awk '/ fence 2 ok / && ($2 == 0 || $2 == 1) { if ($10 > m) m = $10 }
			END { print m + 0 }' "$f")
		((skew > 0 && long2 < skew / 2)) && nnowait[$c]=$((nnowait[$c] + 1))
		[[ $seen != - ]] && ((seen < 4)) && npartial[$c]=$((npartial[$c] + 1))
		nrun[$c]=$((nrun[$c] + 1))
		((late > 0)) && nlate[$c]=$((nlate[$c] + 1))
		if ((rc == 124 || rc == 137)) && ((f2 < 4)); then
			res=hang
			nhang[$c]=$((nhang[$c] + 1))
		elif ((rc == 0)) && (($(grep -c " fence $fences ok " "$f" || true) == 4)); then
			res=ok
			nok[$c]=$((nok[$c] + 1))
		elif ((rc == 124 || rc == 137)); then
			res=slow
			nfail[$c]=$((nfail[$c] + 1))
		else
			res="fail(rc=$rc)"
			nfail[$c]=$((nfail[$c] + 1))
		fi
		printf '%s %d %s %s %s %s %s %s %s\n' "$c" "$r" "$res" "$secs" "${step:-?}" "$f1" "$f2" \
			"$seen" "$long2" |
			tee -a "$runlog"
		if [[ $res != ok ]]; then
			wait_no_steps
			if [[ $dumped == yes && -n $step ]]; then
				sleep 1
				say "## slurmd log lines of hung step $step (case $c run $r, $nodes):"
				log_lines "$step"
			fi
			if [[ $res != hang ]]; then
				say "## case $c run $r failed (rc $rc); its stderr:"
				sed 's/^/    /' "$f.err" | head -n 20
			fi
		elif [[ -n $step && $ok_logged != *"$c"* ]]; then
			# One OK run per case, for comparison with the hung ones.
			ok_logged+=$c
			sleep 0.3
			say "## what the ranks printed in an OK step $step (case $c run $r, $nodes):"
			sort -k 6,6n -k 2,2n "$f" | sed 's/^/    /'
			say "## slurmd log lines of an OK step $step (case $c run $r, $nodes):"
			log_lines "$step"
		fi
		rm -f "$f" "$f.err"
	done
done

# wilson K N - 95 % interval of a proportion, in percent.
wilson() {
	awk -v k="$1" -v n="$2" 'BEGIN {
		z = 1.959964; p = k / n; d = 1 + z * z / n
		c = (p + z * z / (2 * n)) / d
		h = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
		lo = c - h; hi = c + h; if (lo < 0) lo = 0; if (hi > 1) hi = 1
		printf "%5.1f %% [%5.1f, %5.1f]", 100 * p, 100 * lo, 100 * hi }'
}

say ""
say "# results ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
printf '%-4s %-14s %-36s %5s %5s %5s %5s %5s %7s  %s\n' case nodes env runs ok hangs fails late \
	partial "hang rate [95% interval]"
for c in "${caselist[@]}"; do
	e=$(case_env "$c")
	[[ $(case_sync "$c") == no ]] && e="${e:+$e }(no common start)"
	printf '%-4s %-14s %-36s %5d %5d %5d %5d %5d %7d  %s\n' "$c" "$(case_nodes "$c")" "${e:--}" \
		"${nrun[$c]}" "${nok[$c]}" "${nhang[$c]}" "${nfail[$c]}" "${nlate[$c]}" "${npartial[$c]}" \
		"$(wilson "${nhang[$c]}" "${nrun[$c]}")"
done
say "# late: runs in which a rank reached the common start after it had passed"
say "# partial: runs in which a rank could read fewer than all 4 ranks' values right after a"
say "#   fence (the fence did not bring the other node's data: no exchange between the nodes)"
if ((skew > 0)); then
	for c in "${caselist[@]}"; do
		say "# case $c: in ${nnowait[$c]} of ${nrun[$c]} runs ranks 0-1 left fence 2 in less than" \
			"$((skew / 2)) ms while the last rank slept $skew ms before entering it"
	done
fi
