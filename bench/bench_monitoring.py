#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_monitoring.py - throughput of an MPI app with monitoring on vs off

Measured side by side in one batch job on one local cluster (these machines
are noisy: only ratios of figures taken together mean something). The same
2-rank heat run (2 nodes, 512 x 512, one rank per core) is started, in turns:

  off    srun --mpi=pmix heat                       (plugins loaded, no --migrate)
  on     srun --mpi=pmix --migrate=advise,affinity heat
         (node agents sampling at the default MigrateSampleInterval, 30 s;
         libsmig publishing its safe-point count; libsmig_pmpi.so preloaded,
         counting every message)
  on-1s  the same with interval=1s: 30 times more sampling than the default,
         an upper bound

Throughput = iterations per second between every rank's first iteration
and every rank's end (heat --timestamps), so launch times do not count.
Goal (issue 6): slowdown below 0.5 % at the default interval.
The last line is the headline: "bench-monitoring: overhead ... ratio=...".
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "testsuite", "python", "lib"))
import cluster as cl  # noqa: E402

NX, NY = 512, 512
NTASKS = 2  # one rank per node and core: no oversubscription noise
TS_RE = r"^heat: rank (\d+) (computing|finishing) iter (\d+) t=([0-9.]+)$"
VARIANTS = {
    "off": "",
    "on": "--migrate=advise,affinity",
    "on-1s": "--migrate=advise,interval=1s,affinity",
}


def throughput(text):
    """Iterations per second of one run's output, or None."""
    lines = re.findall(TS_RE, text, re.M)
    comp = [(int(i), float(t)) for _, k, i, t in lines if k == "computing"]
    fin = [(int(i), float(t)) for _, k, i, t in lines if k == "finishing"]
    if len(comp) != NTASKS or len(fin) != NTASKS:
        return None
    iters = fin[0][0] - comp[0][0]
    span = max(t for _, t in fin) - max(t for _, t in comp)
    return iters / span if span > 0 else None


def run_job(c, heat, iters, order):
    """One batch job running the variants in ORDER; {variant: [rates]}."""
    script = os.path.join(c.workdir, "overhead.sbatch")
    out = os.path.join(c.workdir, "overhead.out")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n")
        for v in order:
            f.write(f"echo '== {v}'\n"
                    f"srun --mpi=pmix {VARIANTS[v]} -N2 -n{NTASKS} {heat} --nx {NX} "
                    f"--ny {NY} --iters {iters} --timestamps\n")
    os.chmod(script, 0o755)
    job = cl.submit_job(c, f"-N2 --ntasks-per-node=2 -o {out} {script}")
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=600)
    with open(out, errors="replace") as f:
        text = f.read()
    if state != "COMPLETED":
        sys.exit(f"bench-monitoring: job {job} ended {state}:\n{text[-3000:]}")
    rates = {v: [] for v in VARIANTS}
    for chunk in text.split("== ")[1:]:
        name, _, body = chunk.partition("\n")
        r = throughput(body)
        if r:
            rates[name.strip()].append(r)
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs of each variant (interleaved)")
    ap.add_argument("--seconds", type=float, default=35,
                    help="length of one run (> 30 s: one sampling tick at the default)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-monitoring: starts Slurm daemons: run as root")
    heat = os.path.join(args.build, "contrib", "examples", "heat")
    directory = tempfile.mkdtemp(prefix="smig-bench-")
    os.chmod(directory, 0o755)
    base = cl.pick_port_base()
    up = subprocess.run([os.path.join(cl.CLUSTER_SCRIPTS, "up.sh"), "--dir", directory,
                         "--port-base", str(base), "--build", args.build],
                        text=True, capture_output=True)
    try:
        if up.returncode != 0:
            sys.exit(f"bench-monitoring: up.sh failed:\n{up.stdout}{up.stderr}")
        c = cl.Cluster(directory, args.build)
        calib = run_job(c, heat, 200, ["off"])["off"]
        if not calib:
            sys.exit("bench-monitoring: calibration run failed")
        iters = max(200, int(calib[0] * args.seconds))
        order = []
        for i in range(args.rounds):
            names = list(VARIANTS)
            order += names if i % 2 == 0 else names[::-1]
        rates = run_job(c, heat, iters, order)
    finally:
        subprocess.run([os.path.join(cl.CLUSTER_SCRIPTS, "down.sh"), "--dir", directory],
                       capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)

    if any(not r for r in rates.values()):
        sys.exit(f"bench-monitoring: incomplete runs: {rates}")
    med = {v: statistics.median(r) for v, r in rates.items()}
    print(f"bench-monitoring overhead (heat {NX}x{NY}, {NTASKS} ranks on 2 nodes, "
          f"{iters} iterations per run, {args.rounds} runs each, interleaved)")
    for v, r in rates.items():
        print(f"  {v:<8} {med[v]:10.1f} it/s   runs: " +
              " ".join(f"{x:.1f}" for x in r))
    ratio = med["on"] / med["off"]
    ratio1 = med["on-1s"] / med["off"]
    # Spread of the runs of one variant: what this machine can resolve.
    noise = max((max(r) - min(r)) / statistics.median(r) for r in rates.values())
    if noise > 0.05:
        verdict = (f"not resolvable here: runs of one variant differ by up to "
                   f"{100 * noise:.0f} %")
    else:
        verdict = "met" if ratio >= 0.995 else "NOT met"
    print(f"  one run: {iters / med['off']:.0f} s; on-1s / off ratio={ratio1:.4f} "
          f"(slowdown {100 * (1 - ratio1):+.2f} %)")
    print(f"bench-monitoring: overhead at the default interval on/off throughput "
          f"ratio={ratio:.4f} (slowdown {100 * (1 - ratio):+.2f} %, goal < 0.5 %: "
          f"{verdict})")


if __name__ == "__main__":
    main()
