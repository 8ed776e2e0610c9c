#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_monitoring.py - an MPI app's speed with monitoring on vs off

One local cluster of 2 nodes. The same heat run (512 x 512, 2 ranks, one on
each node: every iteration each rank sends a halo row of 4,096 bytes to the
other with MPI_Sendrecv, so libsmig_pmpi.so's counting path runs on every
message) is submitted as its own batch job in three variants:

  off    srun --mpi=pmix heat                  (plugins loaded, no --migrate:
         no agent, no libsmig_pmpi.so, libsmig does nothing)
  on     srun --mpi=pmix --migrate=advise,affinity heat
         (node agents sampling at the default MigrateSampleInterval, 30 s;
         libsmig publishing its safe-point count; libsmig_pmpi.so preloaded,
         counting every message and writing its table every second)
  on-1s  the same with interval=1s: 30 times the sampling of the default,
         an upper bound

in rounds (off on on-1s, the order rotating each round). A run has the
iterations that last --seconds at the median rate of the runs so far
(default 35: longer than the 30 s interval, so an "on" run holds the agents'
first look of the default interval). Its rate = iterations per wall second between every rank's first
iteration and every rank's end (heat --timestamps), so launch times do not
count; ranks waiting in MPI busy-poll, so CPU time per iteration would not
be clean. Per round: time per iteration on / off (rate off / rate on; 1.004
= 0.4 % slower); the figure is the median of the rounds' ratios with a
bootstrap 95 % interval, "ratio 1.004 [0.998, 1.011] (n=7)". Goal (issue 6):
overhead < 0.5 % at the default interval: met when the whole interval is
below 1.005, missed when the whole interval is at or above it, else this run
cannot resolve it.

Proof that the counting path ran: each rank's wrapper copies, after heat
ended, the traffic table libsmig_pmpi.so wrote at MPI_Finalize (rank<R>.aff,
the file the agent reads; doc/design.md): for on and on-1s, both ranks must
have counted bytes > 0 to the other; for off there must be no table. Then,
still inside the run's job, `smig show JOB --json` asks the balancer what it
holds: for on-1s at least one SAMPLE and the pair 0-1 with bytes > 0; for off
the balancer must not know the job. For on it is printed only: a run of 35 s
holds the agents' first look at 30 s, and the agent sends its first SAMPLE at
the second look (a rate needs two), 60 s after the step's start. Anything
else is a failed run.

Beside the ranks: each rank runs under bash -c, which after heat reads its
parent slurmstepd's CPU time (the node agent is a thread of it; all its
threads' schedstat). slurmstepd's CPU per wall second of the run, summed over
the 2 nodes, per variant (median), on minus off: the share of a core the
agent takes from the ranks (it is inside the wall-clock ratio too; shown
apart because its own noise is smaller).

The balancer's ingestion of a big machine (10,000 agents x 100 ranks, munge)
is measured by bench-smigd, part (b), against the real smigd.

Everything printed also goes to --out (overwritten). Failed runs are counted
and printed, never dropped; the exit status is 1 if any. The last line is
the headline: "bench-monitoring: ...".
"""

import argparse
import json
import os
import re
import shlex
import signal
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "testsuite", "python", "lib"))
import benchlib as bl  # noqa: E402
import cluster as cl  # noqa: E402
import heat as hl  # noqa: E402

NX, NY = 512, 512
NTASKS = 2              # one rank per node: no oversubscription
GOAL = 1.005
TS_RE = r"^heat: rank (\d+) (computing|finishing) iter (\d+) t=([0-9.]+)$"
STEPD_RE = r"^stepd (\d+) (\d+) (\d+) (\d+)$"
VARIANTS = {
    "off": "",
    "on": "--migrate=advise,affinity",
    "on-1s": "--migrate=advise,interval=1s,affinity",
}


def rate(text):
    """(iterations per second, iterations) of one run's output, or None."""
    lines = re.findall(TS_RE, text, re.M)
    comp = {int(r): (int(i), float(t)) for r, k, i, t in lines if k == "computing"}
    fin = {int(r): (int(i), float(t)) for r, k, i, t in lines if k == "finishing"}
    if sorted(comp) != list(range(NTASKS)) or sorted(fin) != list(range(NTASKS)):
        return None
    iters = fin[0][0] - comp[0][0]
    span = max(t for _, t in fin.values()) - max(t for _, t in comp.values())
    return (iters / span, iters) if span > 0 and iters > 0 else None


def write_script(c, heat, smig, name, variant, iters):
    """The batch script of one run: the step, then what the balancer holds."""
    inner = (f"s0=$(date +%s%N); {heat} --nx {NX} --ny {NY} --iters {iters} "
             "--timestamps; rc=$?; s1=$(date +%s%N); "
             "[ -n \"$SLURM_MIGRATE_STAT_DIR\" ] && cp \"$SLURM_MIGRATE_STAT_DIR/"
             f"rank$SLURM_PROCID.aff\" {shlex.quote(c.workdir)}/{name}.rank$SLURM_PROCID.aff; "
             "ns=$(cat /proc/$PPID/task/*/schedstat | "
             "awk '{n += $1} END {printf \"%d\", n}'); "
             "echo stepd $SLURM_NODEID $s0 $s1 $ns; exit $rc")
    path = os.path.join(c.workdir, f"{name}.sbatch")
    with open(path, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix {VARIANTS[variant]} -N2 -n{NTASKS} "
                f"--ntasks-per-node=1 bash -c {shlex.quote(inner)}\n"
                "echo \"== srun rc=$?\"\n"
                f"{smig} show $SLURM_JOB_ID --json > {name}.json 2>&1\n"
                "echo \"== smig rc=$?\"\n")
    os.chmod(path, 0o755)
    return path


def one_run(c, heat, smig, name, variant, iters, timeout):
    """Submit and wait for one run. RET dict: rate, iters, stepd (CPU s per
    wall s, both nodes), show (the balancer's view), error (None if good)."""
    script = write_script(c, heat, smig, name, variant, iters)
    out = os.path.join(c.workdir, f"{name}.out")
    job = cl.submit_job(c, f"-N2 --ntasks-per-node=1 -D {c.workdir} -o {out} "
                        f"-J {name} {script}")
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=timeout)
    text = hl.read(out)
    res = {"job": job, "variant": variant, "rate": None, "iters": None,
           "stepd": None, "show": None, "error": None, "text": text}
    got = rate(text)
    stepd = re.findall(STEPD_RE, text, re.M)
    if state != "COMPLETED" or "== srun rc=0" not in text or not got:
        res["error"] = (f"job {job} {state}, "
                        f"{'srun rc=0' if '== srun rc=0' in text else 'srun failed'}, "
                        f"{'rate read' if got else 'no rate (timestamps missing)'}")
        return res
    res["rate"], res["iters"] = got
    if len(stepd) == NTASKS:
        cpu = sum(int(ns) for _, _, _, ns in stepd) / 1e9
        wall = statistics.mean((int(s1) - int(s0)) / 1e9 for _, s0, s1, _ in stepd)
        res["stepd"] = cpu / wall
    else:
        res["error"] = f"job {job}: {len(stepd)} stepd lines, {NTASKS} wanted"
        return res
    shown = hl.read(os.path.join(c.workdir, f"{name}.json"))
    tables = [aff_bytes(os.path.join(c.workdir, f"{name}.rank{k}.aff"), 1 - k)
              for k in range(NTASKS)]
    res["aff"] = tables
    if variant == "off":
        if "== smig rc=0" in text:
            res["error"] = f"job {job}: the balancer knows an off job: {shown[:300]}"
        elif any(t is not None for t in tables):
            res["error"] = f"job {job}: an off run wrote a traffic table"
        res["show"] = shown.strip().splitlines()[-1] if shown.strip() else "(nothing)"
        return res
    if not all(tables):
        res["error"] = (f"job {job}: libsmig_pmpi.so's tables (rank 0, rank 1: bytes "
                        f"to the other) {tables}: the counting path did not run")
        return res
    try:
        data = json.loads(shown)
    except ValueError:
        res["error"] = f"job {job}: smig show --json: {shown[:300]!r}"
        return res
    pair = [p for p in data.get("pairs", []) if sorted(p["ranks"]) == [0, 1]]
    res["show"] = {"samples": data.get("samples", 0),
                   "interval_ms": data.get("interval_ms"),
                   "bytes": pair[0]["bytes"] if pair else 0,
                   "msgs": pair[0]["msgs"] if pair else 0}
    # At the default interval a run of SECONDS < 60 s holds the agents'
    # first look (at 30 s, no SAMPLE sent: a rate needs two looks) only.
    if variant == "on-1s" and (not res["show"]["samples"] or
                               not res["show"]["bytes"]):
        res["error"] = (f"job {job}: the balancer saw {res['show']['samples']} samples "
                        f"and {res['show']['bytes']} bytes between ranks 0 and 1")
    return res


def aff_bytes(path, peer):
    """Bytes to PEER in a rank<R>.aff table (doc/design.md), None if there
    is no table or it is not one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if len(data) < 16:
        return None
    magic, version, _, n = struct.unpack_from("=IIII", data)
    if magic != 0x46414d53 or version != 1 or len(data) < 16 + 24 * n:
        return None
    total = 0
    for i in range(n):
        p, _, nbytes, _ = struct.unpack_from("=IIQQ", data, 16 + 24 * i)
        if p == peer:
            total += nbytes
    return total


def describe(r):
    """One line of a run's figures."""
    line = (f"{r['rate']:8.1f} it/s over {r['iters']} iterations, slurmstepd "
            f"{100 * r['stepd']:5.2f} % of a core (2 nodes)")
    if r.get("aff") and all(r["aff"]):
        line += (f"; libsmig_pmpi.so counted {r['aff'][0]:,} + {r['aff'][1]:,} bytes "
                 "(rank 0 to 1 + 1 to 0)")
    s = r["show"]
    if isinstance(s, dict):
        line += (f"; balancer: {s['samples']} samples at {s['interval_ms']} ms, "
                 f"pair 0-1 {s['bytes']:,} bytes in {s['msgs']:,} messages "
                 f"({s['bytes'] / max(s['msgs'], 1):.0f} B each)")
    elif s:
        line += f"; balancer: {s}"
    return line


def verdict(lo, hi):
    if hi < GOAL:
        return "met"
    if lo >= GOAL:
        return "MISSED"
    return "cannot be resolved by this run (the interval straddles 1.005)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", help="results file (overwritten)")
    ap.add_argument("--rounds", type=int, default=6,
                    help="rounds of off, on, on-1s (order rotating)")
    ap.add_argument("--seconds", type=float, default=35,
                    help="length of one run at the median rate so far (> 30 s: "
                    "the agents' first look at the default interval)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-monitoring: starts Slurm daemons: run as root")
    # SIGTERM: stop the cluster (bench_cluster's finally) before leaving.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.build = os.path.abspath(args.build)
    out = bl.Out(args.out)
    for line in bl.host_facts():
        out(line)
    out("SHARED: runs of clusters are serialised by a lock, builds and editors are not")
    out(f"command: {' '.join(sys.argv)}")
    heat = os.path.join(args.build, "contrib", "examples", "heat")
    smig = os.path.join(args.build, "contrib", "tools", "smig")
    failures, runs = [], []
    start = time.monotonic()
    with cl.bench_cluster("bench-monitoring", args.build, ["--nodes", "2"]) as c:
        calib = one_run(c, heat, smig, "calib", "off", 20000, 120)
        rates = []
        if calib["error"]:
            out(f"calibration run FAILED: {calib['error']}\n{calib['text'][-2000:]}")
            failures.append(f"calibration: {calib['error']}")
        else:
            out(f"calibration (off, 20000 iterations): {calib['rate']:.1f} it/s")
        names = list(VARIANTS)
        for rnd in range(args.rounds if not calib["error"] else 0):
            # The same iterations for the round's runs: SECONDS at the
            # median rate of the runs so far (the short calibration run is
            # faster than long ones: it stands alone only in round 1).
            iters = int(statistics.median(rates or [calib["rate"]]) * args.seconds)
            order = names[rnd % 3:] + names[:rnd % 3]
            out(f"round {rnd + 1}: {iters} iterations a run (load {bl.loadavg()}):")
            for v in order:
                r = one_run(c, heat, smig, f"r{rnd + 1}-{v}", v, iters,
                            args.seconds * 4 + 60)
                r["round"] = rnd
                runs.append(r)
                if r["error"]:
                    failures.append(f"round {rnd + 1} {v}: {r['error']}")
                    out(f"  {v:<6} FAILED: {r['error']}")
                    out("    " + "\n    ".join(r["text"].strip().splitlines()[-12:]))
                else:
                    out(f"  {v:<6} {describe(r)}")
                    rates.append(r["rate"])
    out()
    out(f"load average at end: {bl.loadavg()}; run time {time.monotonic() - start:.0f} s")
    good = {(r["round"], r["variant"]): r for r in runs if not r["error"]}
    head = {}
    for v in ("on", "on-1s"):
        ratios = [good[(k, "off")]["rate"] / good[(k, v)]["rate"]
                  for k in range(args.rounds)
                  if (k, "off") in good and (k, v) in good]
        if len(ratios) < 2:
            out(f"{v}: fewer than 2 complete rounds, no ratio")
            continue
        med = statistics.median(ratios)
        lo, hi = bl.bootstrap(ratios)
        head[v] = (med, lo, hi, len(ratios))
        out(f"{v} / off, time per iteration, per round: "
            + " ".join(f"{x:.4f}" for x in ratios))
        out(f"  ratio {med:.4f} [{lo:.4f}, {hi:.4f}] (n={len(ratios)}): overhead "
            f"{100 * (med - 1):+.2f} % [{100 * (lo - 1):+.2f}, {100 * (hi - 1):+.2f}]")
    stepd = {v: [r["stepd"] for r in good.values() if r["variant"] == v]
             for v in VARIANTS}
    if all(stepd.values()):
        base = statistics.median(stepd["off"])
        out("beside the ranks, slurmstepd's CPU per wall second (2 nodes), median "
            "(min .. max): " + "; ".join(
                f"{v} {100 * statistics.median(x):.3f} % ({100 * min(x):.3f} .. "
                f"{100 * max(x):.3f})" for v, x in stepd.items()))
        out(f"  minus off: on {100 * (statistics.median(stepd['on']) - base):+.3f} % "
            f"of a core, on-1s {100 * (statistics.median(stepd['on-1s']) - base):+.3f} %")
    for v in ("on", "on-1s"):
        got = [r for r in good.values() if r["variant"] == v]
        if got:
            aff = [sum(r["aff"]) for r in got]
            shows = [r["show"] for r in got]
            out(f"counting path, {v}: libsmig_pmpi.so counted {min(aff):,} .. "
                f"{max(aff):,} bytes (both ranks) in {len(got)} runs; the balancer "
                f"saw pair 0-1 bytes {min(x['bytes'] for x in shows):,} .. "
                f"{max(x['bytes'] for x in shows):,} from "
                f"{min(x['samples'] for x in shows)} .. "
                f"{max(x['samples'] for x in shows)} samples")
    out(f"failed runs: {len(failures)}" + "".join(f"\n  {f}" for f in failures))
    words = []
    if "on" in head:
        med, lo, hi, n = head["on"]
        words.append(f"overhead at the default interval (30 s): ratio {med:.3f} "
                     f"[{lo:.3f}, {hi:.3f}] (n={n}), goal < 0.5 % (ratio < 1.005): "
                     f"{verdict(lo, hi)}")
    else:
        words.append("overhead at the default interval: not measured")
    if "on-1s" in head:
        med, lo, hi, n = head["on-1s"]
        words.append(f"at interval=1s (upper bound): ratio {med:.3f} [{lo:.3f}, "
                     f"{hi:.3f}] (n={n})")
    onruns = [r for r in runs if r["variant"] != "off"]
    words.append(f"counting path shown (libsmig_pmpi.so's bytes > 0) in "
                 f"{sum(1 for r in onruns if r.get('aff') and all(r['aff']))} of "
                 f"{len(onruns)} on runs, the balancer's pair bytes > 0 in "
                 f"{sum(1 for r in onruns if r['variant'] == 'on-1s' and isinstance(r['show'], dict) and r['show']['bytes'] > 0)}"
                 f" of {sum(1 for r in onruns if r['variant'] == 'on-1s')} on-1s runs")
    out("bench-monitoring: " + "; ".join(words) + f"; failed runs={len(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
