#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_restart.py - a crashed job computing again, next to a fresh submission

Measured side by side in one run on one local cluster (these machines are
noisy: only figures taken together mean something):

  fresh submission  sbatch of a 4-rank heat job (2 nodes x 2 slots, no
                    spare): from sbatch's start to every rank past its first
                    iteration
  crash restart     the same job with --migrate=every=1s and --requeue; once
                    it has a good generation, one of its nodes (not the batch
                    host) is frozen (cgroup freezer: slurmd, slurmstepd and
                    ranks stop, as a hung node does). Slurm declares the node
                    down after SlurmdTimeout and requeues the job; the
                    balancer releases it at once (no credential wait) and the
                    ranks restore from the last good generation. Timed: from
                    Slurm's requeue (slurmctld log) to every rank past its
                    first iteration after the restore. Detection (freeze to
                    requeue, set by SlurmdTimeout) is printed apart.
  job-scope move    the same job without every=; one of its nodes is drained:
                    the balancer captures every rank, requeues the job without
                    the node and releases it. Timed: from the balancer's
                    requeue (smigd log) to every rank computing again
                    (the issue's goal: within 2 s plus the image restore), and
                    from the drain to every rank computing again.

  plain Slurm       the same crash of the same job without --migrate (the
                    baseline): Slurm requeues it and starts it again once
                    the old run's credential expired, from iteration 0. Timed
                    as the crash restart: Slurm's requeue to every rank past
                    its first iteration.

Every figure is a median with its range (min .. max) over the runs; a run
that fails is counted and printed with its reason, and any failure makes the
bench exit 1 after printing everything. With --out the output also goes to
that file (bench/results/restart.txt from make). The headlines:
"bench-restart: crash restart / fresh submission ratio X [lo, hi] (n=N);
crash restart / plain Slurm's restart ratio X [lo, hi] (n=N); ..." (the
ratios of runs of the same round, median with its bootstrap 95 % interval)
and "bench-restart: detection=..." (freeze to Slurm's requeue, set by
SlurmdTimeout).
"""

import argparse
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "testsuite", "python", "lib"))
import benchlib as bl  # noqa: E402
import cluster as cl  # noqa: E402

HEAT = "--nx 96 --ny 64 --sleep-ms 20 --timestamps"
TS_RE = r"^heat: rank (\d+) (?:node (\S+) )?(start|restored|computing|finishing)" \
        r" iter (\d+) t=([0-9.]+)$"


def heat_lines(text):
    return [(int(r), node, kind, int(it), float(t))
            for r, node, kind, it, t in re.findall(TS_RE, text, re.M)]


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait(pred, timeout, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def script(c, name, heat, iters, migrate):
    path = os.path.join(c.workdir, f"{name}.sbatch")
    opt = f" --migrate={migrate}" if migrate else ""
    with open(path, "w") as f:
        f.write("#!/bin/bash\n"
                "echo run restart=${SLURM_RESTART_COUNT:-0}\n"
                f"srun --mpi=pmix{opt} -N2 -n4 {heat} {HEAT} --iters {iters}\n")
    os.chmod(path, 0o755)
    return path


def fresh(c, heat, run):
    """Seconds from sbatch to 4 ranks computing, or None."""
    out = os.path.join(c.workdir, f"fresh{run}.out")
    path = script(c, f"fresh{run}", heat, 20, "every=1s")
    t0 = time.time()
    job = cl.submit_job(c, f"-N2 --ntasks-per-node=2 -o {out} {path}")
    text = wait(lambda: (lambda t: t if sum(k == "computing" for _, _, k, _, _ in
                                            heat_lines(t)) >= 4 else "")(read(out)), 60)
    cl.wait_for_job_state(c, job, "COMPLETED", timeout=60)
    if not text:
        return failed(f"fresh {run}: job {job} did not compute")
    return max(t for _, _, k, _, t in heat_lines(text) if k == "computing") - t0


def freezer(c, node):
    root = c.env.get("SMIG_CGROUP")
    v1 = os.path.join(root, node, "freezer.state")
    if os.path.exists(v1):
        return v1, "FROZEN", "THAWED"
    return os.path.join(root, node, "cgroup.freeze"), "1", "0"


def node_usable(c, node):
    r = c.run(f"scontrol show node {node}", user="root", timeout=30)
    st = (cl.parse_scontrol(r.stdout) or [{}])[0].get("State", "")
    if any(w in st for w in ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING")):
        c.run(f"scontrol update nodename={node} state=resume", user="root", timeout=30)
        return False
    return bool(st)


FAILURES = []


def failed(what):
    """Count and print one failed run (never dropped silently)."""
    FAILURES.append(what)
    print(f"  FAILED: {what}", file=sys.stderr)
    return None


def crash(c, heat, run, plain=False):
    """(restart, detection, release, start, restore) seconds of one crash,
    or None; PLAIN: the job without --migrate, (restart, detection) only."""
    kind = "plain" if plain else "crash"
    out = os.path.join(c.workdir, f"{kind}{run}.out")
    path = script(c, f"{kind}{run}", heat, 2000,
                  None if plain else "every=1s,capture-timeout=5s")
    job = cl.submit_job(c, f"-N2 --ntasks-per-node=2 --requeue --open-mode=append "
                        f"-o {out} {path}")
    text = wait(lambda: (lambda t: t if sum(k == "computing" for _, _, k, _, _ in
                                            heat_lines(t)) >= 4 else "")(read(out)), 60)
    gen = plain or wait(lambda: re.search(r"\bgen=[1-9]", cl.migration_state(
        c, job)), 30)
    batch = cl.get_job_parameter(c, job, "BatchHost")
    nodes = sorted({n for _, n, k, _, _ in heat_lines(text) if k == "start"} - {batch})
    if not text or not gen or not nodes:
        c.run(f"scancel {job}", user="root")
        return failed(f"{kind} {run}: job {job} did not start or capture")
    victim = nodes[0]
    state_file, frozen, thawed = freezer(c, victim)
    t_freeze = time.time()
    with open(state_file, "w") as f:
        f.write(frozen)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=150)
    finally:
        with open(state_file, "w") as f:
            f.write(thawed)
        wait(lambda: node_usable(c, victim), 60, 1)
    text = read(out)
    if state != "COMPLETED":
        return failed(f"{kind} {run}: job {job} ended {state}")
    log = c.read_log("slurmctld")
    req = re.search(r"^\[(\S+)\] requeue job JobId=%d due to failure of node" % job,
                    log, re.M)
    second = text.split("run restart=1", 1)[-1]
    lines = heat_lines(second)
    computing = [t for _, _, k, _, t in lines if k == "computing"][:4]
    if plain:
        if not req or len(computing) != 4:
            return failed(f"plain {run}: incomplete record (job {job}: "
                          f"requeue line {bool(req)}, {len(computing)} ranks computing)")
        t_req = bl.log_time(req.group(1))
        return max(computing) - t_req, t_req - t_freeze
    rel = re.search(r"^\[(\S+)\] smigd: \w+: JobId=%d: released" % job,
                    c.read_log("smigd"), re.M)
    restored = [t for _, _, k, _, t in lines if k == "restored"]
    if not req or not rel or len(restored) != 4 or len(computing) != 4:
        return failed(f"crash {run}: incomplete record (job {job}: requeue "
                      f"line {bool(req)}, release line {bool(rel)}, "
                      f"{len(restored)} restored, {len(computing)} computing)")
    t_req, t_rel = bl.log_time(req.group(1)), bl.log_time(rel.group(1))
    return (max(computing) - t_req, t_req - t_freeze, t_rel - t_req,
            max(restored) - t_rel, max(computing) - max(restored))


def job_scope(c, heat, run):
    """(requeue -> computing, drain -> computing) seconds of one drain of a
    job without spare, or None."""
    out = os.path.join(c.workdir, f"move{run}.out")
    path = script(c, f"move{run}", heat, 400, "auto")
    job = cl.submit_job(c, f"-N2 --ntasks-per-node=2 --requeue --open-mode=append "
                        f"-o {out} {path}")
    text = wait(lambda: (lambda t: t if sum(k == "computing" for _, _, k, _, _ in
                                            heat_lines(t)) >= 4 else "")(read(out)), 60)
    batch = cl.get_job_parameter(c, job, "BatchHost")
    nodes = sorted({n for _, n, k, _, _ in heat_lines(text) if k == "start"} - {batch})
    if not text or not nodes:
        c.run(f"scancel {job}", user="root")
        return failed(f"move {run}: job {job} did not start")
    victim = nodes[0]
    time.sleep(1.0)
    t_drain = time.time()
    c.run(f"scontrol update nodename={victim} state=drain reason=bench", user="root")
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root")
    text = read(out)
    req = re.search(r"^\[(\S+)\] smigd: \w+: JobId=%d: requeued gen=" % job,
                    c.read_log("smigd"), re.M)
    computing = [t for _, _, k, _, t in heat_lines(text.split("run restart=1", 1)[-1])
                 if k == "computing"][:4]
    if state != "COMPLETED" or not req or len(computing) != 4:
        return failed(f"move {run}: job {job} ended {state}, requeue line "
                      f"{bool(req)}, {len(computing)} ranks computing")
    return max(computing) - bl.log_time(req.group(1)), max(computing) - t_drain


def spread(values):
    """ "median ms (min .. max, n=N)" of seconds"""
    v = sorted(values)
    return (f"{statistics.median(v) * 1e3:9.1f} ms ({v[0] * 1e3:.0f} .. "
            f"{v[-1] * 1e3:.0f}, n={len(v)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--runs", type=int, default=3,
                    help="crashes measured (with and without the balancer each)")
    ap.add_argument("--out", help="also write the output to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-restart: starts Slurm daemons: run as root")
    heat = os.path.join(args.build, "contrib", "examples", "heat")
    lines = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    with cl.bench_cluster("bench-restart", args.build) as c:
        if not c.env.get("SMIG_CGROUP"):
            sys.exit("bench-restart: no writable cgroup hierarchy: cannot freeze a node")
        for line in bl.host_facts():
            out(line)
        fresh_runs, moves, crashes, plains = [], [], [], []
        # Interleaved: fresh, crash, plain, move in each round.
        for i in range(args.runs):
            fresh_runs.append(fresh(c, heat, i))
            crashes.append(crash(c, heat, i))
            plains.append(crash(c, heat, i, plain=True))
            if i < 2:
                moves.append(job_scope(c, heat, i))
        out(f"load average at the end {os.getloadavg()[0]:.1f}")
    # Ratios of the same round (runs side by side), before failed runs
    # (None, counted in FAILURES) are left out.
    per_fresh = [c[0] / f for f, c in zip(fresh_runs, crashes) if f and c]
    per_plain = [c[0] / p[0] for c, p in zip(crashes, plains) if c and p]
    fresh_runs = [r for r in fresh_runs if r]
    moves = [r for r in moves if r]
    crashes = [r for r in crashes if r]
    plains = [r for r in plains if r]

    out("bench-restart (4 MPI ranks on 2 nodes, no spare; one node frozen; "
        "loopback cluster, SlurmdTimeout=10, cred_expire=10); median (min .. max, n)")
    if fresh_runs:
        out(f"  {'fresh submission':<44} {spread(fresh_runs)}")
    if crashes:
        out(f"  {'crash restart: requeue -> all computing':<44} {spread([x[0] for x in crashes])}")
        out(f"  {'  requeue -> released (completing ends)':<44} {spread([x[2] for x in crashes])}")
        out(f"  {'  released -> all ranks restored':<44} {spread([x[3] for x in crashes])}")
        out(f"  {'  restored -> all computing':<44} {spread([x[4] for x in crashes])}")
    if plains:
        out(f"  {'plain Slurm (no --migrate): requeue -> all':<44}")
        out(f"  {'  computing again, from iteration 0':<44} {spread([x[0] for x in plains])}")
    detections = [x[1] for x in crashes + plains]
    if detections:
        out(f"  {'detection: freeze -> requeue (SlurmdTimeout)':<44} {spread(detections)}")
    if moves:
        out(f"  {'job-scope move: balancer requeue -> all computing':<44} {spread([x[0] for x in moves])}")
        out(f"  {'  drain -> all computing':<44} {spread([x[1] for x in moves])}")
    out(f"failed runs: {len(FAILURES)}")
    for f in FAILURES:
        out(f"  {f}")
    if fresh_runs and crashes and plains and moves:
        f = statistics.median(fresh_runs)
        r = statistics.median(x[0] for x in crashes)
        p = statistics.median(x[0] for x in plains)
        mv = statistics.median(x[0] for x in moves)
        out(f"bench-restart: crash restart / fresh submission ratio "
            f"{bl.ratio_ci(per_fresh)}; crash restart / plain Slurm's restart "
            f"ratio {bl.ratio_ci(per_plain)} (same round, median [bootstrap "
            f"95 %]); crash_restart={r:.2f}s fresh_submit={f:.2f}s "
            f"plain_slurm_restart={p:.2f}s job_scope_move={mv:.2f}s "
            f"(n={len(crashes)}, {len(fresh_runs)}, {len(plains)}, {len(moves)})")
        out(f"bench-restart: detection={statistics.median(detections):.2f}s "
            f"(freeze -> Slurm's requeue, SlurmdTimeout=10; n={len(detections)})")
    else:
        out("bench-restart: no complete measurement of every kind")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    if FAILURES or not (fresh_runs and crashes and plains and moves):
        sys.exit(1)


if __name__ == "__main__":
    main()
