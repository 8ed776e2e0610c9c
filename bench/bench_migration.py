#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_migration.py - downtime of a migration next to a bare relaunch

Measured side by side in one run on one local cluster (these machines are
noisy: only ratios of figures taken together mean something):

  bare relaunch  the same step ended and started again without migration:
                 "srun --mpi=pmix -N2 -n4 heat" runs to its end, and the batch
                 script starts it again at once; from the last rank's end
                 (before MPI_Finalize) to every new rank past its first
                 iteration. Also shown: a launch alone (srun's start to every
                 rank past its first iteration).
  migration      a 4-rank heat job, one node drained: from the balancer's
                 capture request (slurmctld log) to every rank past its first
                 iteration after the restore
  image I/O      atomic write and verified read of one rank's image of the
                 same size (bench/image_io)

Goal (issue 4): downtime <= 1.5 x (bare relaunch + image write + image read).
The last line is the headline: "bench-migration: ... ratio=..."
"""

import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "testsuite", "python", "lib"))
import cluster as cl  # noqa: E402

NX, NY = 96, 64
TS_RE = r"^heat: rank (\d+) (?:node \S+ )?(start|restored|computing|finishing|stopping for migration at)" \
        r" iter (\d+) t=([0-9.]+)$"


def heat_lines(text):
    return [(int(r), kind, int(it), float(t))
            for r, kind, it, t in re.findall(TS_RE, text, re.M)]


def ctld_time(stamp):
    """Seconds since the epoch of a slurmctld log stamp (local time, ms)."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def wait_file(path, pred, timeout):
    end = time.monotonic() + timeout
    text = ""
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if pred(text):
            return text
        time.sleep(0.2)
    return text


def bare_relaunch(c, heat, runs):
    """Medians (relaunch, launch): seconds from the old step's last rank
    finishing to all 4 new ranks past one iteration, and from srun's start
    to all 4 ranks past one iteration."""
    script = os.path.join(c.workdir, "bare.sbatch")
    out = os.path.join(c.workdir, "bare.out")
    run = f"srun --mpi=pmix -N2 -n4 {heat} --nx {NX} --ny {NY} --iters 2 --timestamps"
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"for i in $(seq {runs}); do\n"
                f"  {run}\n"
                "  echo \"t0=$(date +%s.%N)\"\n"
                f"  {run}\n"
                "done\n")
    os.chmod(script, 0o755)
    job = cl.submit_job(c, f"-N3 --ntasks-per-node=2 -o {out} {script}")
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=60 + 20 * runs)
    with open(out) as f:
        text = f.read()
    if state != "COMPLETED":
        sys.exit(f"bench-migration: bare relaunch job ended {state}:\n{text}")
    relaunch, launch = [], []
    chunks = text.split("t0=")
    for before, chunk in zip(chunks[:-1], chunks[1:]):
        t0 = float(chunk.split()[0])
        ended = [t for _, kind, _, t in heat_lines(before) if kind == "finishing"][-4:]
        computing = [t for _, kind, _, t in heat_lines(chunk) if kind == "computing"][:4]
        if len(ended) == 4 and len(computing) == 4:
            relaunch.append(max(computing) - max(ended))
            launch.append(max(computing) - t0)
    if not relaunch:
        sys.exit(f"bench-migration: no complete bare run:\n{text}")
    return statistics.median(relaunch), statistics.median(launch), len(relaunch)


def one_migration(c, heat, run):
    """(downtime, capture, relaunch, restore) seconds of one drain move."""
    script = os.path.join(c.workdir, f"mig{run}.sbatch")
    out = os.path.join(c.workdir, f"mig{run}.out")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate -N2 -n4 {heat} --nx {NX} --ny {NY} "
                "--iters 400 --sleep-ms 20 --timestamps\n")
    os.chmod(script, 0o755)
    job = cl.submit_job(c, f"-N3 --ntasks-per-node=2 -o {out} {script}")
    text = wait_file(out, lambda t: sum(k == "start" for _, k, _, _ in heat_lines(t)) == 4, 60)
    nodes = re.findall(r"^heat: rank 3 node (\S+) start", text, re.M)
    if not nodes:
        cl.run_command(f"scancel {job}", env=c.env)
        return None
    victim = nodes[0]
    time.sleep(1.0)
    c.run(f"scontrol update nodename={victim} state=drain reason=bench", user="root")
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root")
    with open(out) as f:
        text = f.read()
    if state != "COMPLETED":
        print(f"  run {run}: job {job} ended {state}", file=sys.stderr)
        return None
    m = re.search(r"^\[(\S+)\] .*JobId=%d StepId=\d+ capture gen=1 timeout_ms" % job,
                  c.read_log("slurmctld"), re.M)
    lines = heat_lines(text)
    stopping = [t for _, k, _, t in lines if k == "stopping for migration at"]
    restored = [t for _, k, _, t in lines if k == "restored"]
    after = [t for _, k, _, t in lines if k == "computing" and restored and t >= min(restored)]
    if not m or len(stopping) != 4 or len(restored) != 4 or len(after) != 4:
        print(f"  run {run}: incomplete record (job {job})", file=sys.stderr)
        return None
    t_req = ctld_time(m.group(1))
    return (max(after) - t_req, max(stopping) - t_req,
            max(restored) - max(stopping), max(after) - max(restored))


def image_io(build, size):
    d = tempfile.mkdtemp(prefix="smig-bench-img-")
    try:
        r = subprocess.run([os.path.join(build, "bench", "image_io"), d, str(size), "21"],
                           text=True, capture_output=True, check=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    m = re.search(r"write_ms=([0-9.]+) read_ms=([0-9.]+)", r.stdout)
    return float(m.group(1)) / 1e3, float(m.group(2)) / 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--runs", type=int, default=3, help="migrations measured")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-migration: starts Slurm daemons: run as root")
    heat = os.path.join(args.build, "contrib", "examples", "heat")
    with cl.bench_cluster("bench-migration", args.build, extra=("--debug", "verbose")) as c:
        bare, launch, nbare = bare_relaunch(c, heat, 5)
        runs = [r for r in (one_migration(c, heat, i) for i in range(args.runs)) if r]
        if not runs:
            sys.exit("bench-migration: no migration completed")
        # One rank's image: its rows plus halos of doubles and a small header.
        size = (NY // 4 + 2) * NX * 8 + 64
        write, read = image_io(args.build, size)

    down = statistics.median(r[0] for r in runs)
    cap = statistics.median(r[1] for r in runs)
    rel = statistics.median(r[2] for r in runs)
    res = statistics.median(r[3] for r in runs)
    goal = 1.5 * (bare + write + read)
    print("bench-migration (4 MPI ranks, 2 nodes -> 1 drained, loopback cluster)")
    print(f"  {'bare relaunch (median of %d)' % nbare:<40} {bare * 1e3:9.1f} ms")
    print(f"  {'  (a launch alone, from srun start)':<40} {launch * 1e3:9.1f} ms")
    print(f"  {'image write / read (one rank, %d B)' % size:<40} {write * 1e3:6.1f} / {read * 1e3:.1f} ms")
    print(f"  {'migration downtime (median of %d)' % len(runs):<40} {down * 1e3:9.1f} ms")
    print(f"  {'  capture request -> all ranks stopped':<40} {cap * 1e3:9.1f} ms")
    print(f"  {'  stopped -> all ranks restored':<40} {rel * 1e3:9.1f} ms")
    print(f"  {'  restored -> all computing':<40} {res * 1e3:9.1f} ms")
    print(f"  {'goal: 1.5 x (bare + write + read)':<40} {goal * 1e3:9.1f} ms")
    print(f"bench-migration: downtime/bare_relaunch ratio={down / bare:.2f} "
          f"(goal <= {goal / bare:.2f}: {'met' if down <= goal else 'NOT met'})")


if __name__ == "__main__":
    main()
