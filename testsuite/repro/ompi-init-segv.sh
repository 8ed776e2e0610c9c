#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# ompi-init-segv.sh - count start-up crashes (SIGSEGV at NULL, Open MPI's
# handler printing only the signal trampoline) of MPI ranks under load, with
# core dumps, and take a backtrace of each core
#
# Starts a 3-node local cluster (testsuite/cluster/up.sh, with the
# slurm-migrate plugins unless --no-plugins), allocates it with one sbatch job
# (-N3 --ntasks-per-node=2) and runs in it, RUNS times per case and
# interleaved (a b c a b c ...), "srun --mpi=pmix -N3 -n6 PROGRAM" with
# "ulimit -c unlimited", each launch in its own directory (core_pattern
# "core" puts a rank's core in its cwd). Cases:
#   heat    contrib/examples/heat, no --migrate (libsmig returns at once)
#   hello   testsuite/repro/mpi-hello.c: MPI_Init, one line, MPI_Finalize
#   heat+E, hello+E   the same with the environment E (NAME=VALUE[,NAME=VALUE])
#           added to srun's, e.g. hello+OMPI_MCA_pmix=^ext3x
# --load K starts K busy loops (stopped by pid at the end) besides whatever
# else runs on the machine. A launch is a crash if it printed Open MPI's
# "Process received signal" or srun's "Segmentation fault"; for every core
# found, gdb prints the crashed thread's registers, stack words and
# backtraces into DIR/work/RUN/gdb.txt. Prints one table row per case:
# launches, crashes, SIGSEGV-at-NULL crashes, other failures, cores.
#
# Run as root. Needs: Slurm 22.05, Open MPI (mpicc), gdb, munge; a build of
# this project (--build, default <repo>/build) with contrib/examples/heat.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
	cat <<EOF
usage: $0 [options]
  -n, --runs N       launches per case (default 50)
  --cases LIST       comma-separated (default heat,hello); a case is heat or
                     hello, optionally +NAME=VALUE[+NAME=VALUE...]
  --load K           K busy loops beside the launches (default 0)
  --build DIR        build directory of this project (default $repo/build)
  --no-plugins       plain Slurm, no slurm-migrate plugins (up.sh --no-plugins)
  --port-base P      first TCP port of the cluster (default 24300)
  --dir DIR          cluster directory (default: a new /tmp/ompi-init-segv.XXXXXX)
  --timeout SEC      a launch still going after SEC s is killed (default 60)
  -h, --help         this text
EOF
}

die() { printf 'ompi-init-segv: error: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

runs=50
cases=heat,hello
load=0
build=$repo/build
plugins=yes
base=24300
dir=
timeout=60

while (($# > 0)); do
	case $1 in
	-n|--runs) runs=$2; shift ;;
	--cases) cases=$2; shift ;;
	--load) load=$2; shift ;;
	--build) build=$2; shift ;;
	--no-plugins) plugins=no ;;
	--port-base) base=$2; shift ;;
	--dir) dir=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
	shift
done

[[ $(id -u) == 0 ]] || die "must run as root (starts the cluster)"
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 1)); then
	die "--runs=$runs: not a number >= 1"
fi
[[ $load =~ ^[0-9]+$ ]] || die "--load=$load: not a number of busy loops"
[[ $timeout =~ ^[0-9]+$ ]] && ((timeout >= 5)) ||
	die "--timeout=$timeout: not a number of seconds >= 5"
[[ -x $build/contrib/examples/heat ]] ||
	die "--build=$build: no contrib/examples/heat there (build the project first)"
IFS=, read -r -a caselist <<< "$cases"
((${#caselist[@]} > 0)) || die "--cases='$cases': no case"
for c in "${caselist[@]}"; do
	[[ $c =~ ^(heat|hello)(\+[A-Za-z_][A-Za-z0-9_]*=[^+]*)*$ ]] ||
		die "--cases='$cases': bad case '$c' (heat or hello, then +NAME=VALUE...)"
done
for tool in mpicc gdb sbatch squeue scancel timeout; do
	command -v "$tool" > /dev/null || die "$tool not found"
done
if [[ -z $dir ]]; then
	dir=$(mktemp -d /tmp/ompi-init-segv.XXXXXX)
fi
mkdir -p "$dir"
chmod 0755 "$dir"

# --- cleanup, by pid and job id, also on failure
jobid=
loadpids=()
cluster_started=no
cleanup() {
	local rc=$? pid

	trap - EXIT INT TERM
	for pid in "${loadpids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $jobid ]]; then
		scancel "$jobid" 2>/dev/null || true
	fi
	if [[ $cluster_started == yes ]]; then
		"$repo/testsuite/cluster/down.sh" --dir "$dir" >&2 || rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- cluster
say "# ompi-init-segv: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname -s), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
upargs=(--dir "$dir" --port-base "$base" --nodes 3 --build "$build")
[[ $plugins == yes ]] || upargs+=(--no-plugins)
cluster_started=yes
"$repo/testsuite/cluster/up.sh" "${upargs[@]}" >&2
# shellcheck source=/dev/null
. "$dir/env"
user=$SMIG_TEST_USER
say "# packages: $(dpkg-query -W -f '${Package} ${Version}, ' slurmd libpmix2 openmpi-bin libopenmpi3 libevent-core-2.1-7 libhwloc15 2> /dev/null || true)"
say "# runs per case $runs, cases $cases, busy loops $load, plugins $plugins, cluster dir $dir"

work=$dir/work
mpicc -O2 -g -o "$work/mpi-hello" "$here/mpi-hello.c"
chmod 0755 "$work/mpi-hello"

# The job: one launch per line of launches.txt ("RUN PROGRAM ENV..."),
# results appended to results.txt ("RUN RC").
: > "$work/launches.txt"
for ((i = 1; i <= runs; i++)); do
	for c in "${caselist[@]}"; do
		prog=${c%%+*}
		env=
		[[ $c == *+* ]] && env=${c#*+} && env=${env//+/ }
		printf '%s-%03d %s %s\n' "${c//[^A-Za-z0-9_.=^-]/_}" "$i" "$prog" "$env" \
			>> "$work/launches.txt"
	done
done
cat > "$work/job.sh" <<EOF
#!/bin/bash
ulimit -c unlimited
unset SLURM_NTASKS_PER_NODE
while read -r run prog env; do
	mkdir -p "$work/\$run"
	cd "$work/\$run"
	case \$prog in
	heat) argv=("$build/contrib/examples/heat" --nx 96 --ny 64 --iters 5) ;;
	hello) argv=("$work/mpi-hello") ;;
	esac
	# shellcheck disable=SC2086
	env \$env timeout -s KILL $timeout srun --mpi=pmix -N3 -n6 "\${argv[@]}" < /dev/null > out 2>&1
	echo "\$run \$?" >> "$work/results.txt"
done < "$work/launches.txt"
echo done >> "$work/results.txt"
EOF
chown -R "$user" "$work"
chmod 0755 "$work/job.sh"

for ((i = 0; i < load; i++)); do
	(exec bash -c 'while :; do :; done') &
	loadpids+=($!)
done

jobid=$(cd "$work" && runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" \
	sbatch --parsable -N3 --ntasks-per-node=2 -o "$work/job.out" \
	-J ompi-init-segv "$work/job.sh")
say "# job $jobid"
total=$(wc -l < "$work/launches.txt")
while ! grep -qx done "$work/results.txt" 2>/dev/null; do
	state=$(squeue -h -j "$jobid" -o %T 2>/dev/null || true)
	if [[ -z $state ]]; then
		grep -qx done "$work/results.txt" 2>/dev/null && break
		die "job $jobid ended before its launches: $(cat "$work/job.out" 2>/dev/null)"
	fi
	sleep 5
	printf '# %s: %s of %s launches, load %s\n' "$(date -u +%H:%M:%S)" \
		"$(grep -vcx done "$work/results.txt" 2>/dev/null || echo 0)" \
		"$total" "$(cut -d' ' -f1 /proc/loadavg)" >&2
done
for pid in "${loadpids[@]}"; do
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
loadpids=()

# --- backtraces of the cores
for core in "$work"/*/core*; do
	[[ -e $core ]] || continue
	rundir=$(dirname "$core")
	exe=$(gdb -batch -c "$core" 2>/dev/null |
		sed -n "s/^Core was generated by \`\([^ ']*\).*/\1/p")
	[[ -n $exe ]] || exe=$build/contrib/examples/.libs/heat
	{
		echo "=== $core ($exe)"
		gdb -batch -ex 'info registers rip rsp rbp' -ex 'x/8gx $sp' \
			-ex 'info symbol *(void **)$sp' -ex bt -ex 'info threads' \
			-ex 'thread apply all bt' -ex 'info sharedlibrary' \
			"$exe" "$core" 2>&1
	} >> "$rundir/gdb.txt"
done

# --- table
printf '%-40s %8s %8s %10s %8s %6s\n' case launches crashes segv-null other cores
for c in "${caselist[@]}"; do
	tag=${c//[^A-Za-z0-9_.=^-]/_}
	n=0 crash=0 null=0 other=0 cores=0
	while read -r run rc; do
		[[ $run == "$tag"-* ]] || continue
		n=$((n + 1))
		out=$work/$run/out
		if grep -qE 'Process received signal|Segmentation fault' "$out"; then
			crash=$((crash + 1))
			grep -q 'Failing at address: (nil)' "$out" && null=$((null + 1))
		elif [[ $rc != 0 ]]; then
			other=$((other + 1))
		fi
		compgen -G "$work/$run/core*" > /dev/null && cores=$((cores + 1))
	done < <(grep -vx done "$work/results.txt")
	printf '%-40s %8d %8d %10d %8d %6d\n' "$c" "$n" "$crash" "$null" "$other" "$cores"
done
say "# crashed launches:"
grep -lE 'Process received signal|Segmentation fault' "$work"/*/out 2>/dev/null |
	sed 's/^/#   /' || true
say "# end $(date -u '+%H:%M:%S UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
