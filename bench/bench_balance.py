#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_balance.py - a job on a slowed node: without migration, with
--migrate=auto, and placed well from the start

Measured side by side in one run on one local cluster (these machines are
noisy: only ratios of figures taken together mean something). The same
4-rank heat job (2 ranks on each of 2 nodes of a 3-node allocation, CPU
bound) runs three ways, interleaved in rounds (--rounds, default 3; the
order rotates from round to round):

  (a) slowed     srun -w A,B: node B is slowed after SLOW_AT seconds (a cpu
                 cgroup quota on the node's cgroup: its slurmd, stepd and
                 ranks), no migration
  (b) auto       srun --migrate=auto,interval=1s on A,B, the same slowdown:
                 the balancer notices and moves B's ranks (to C)
  (c) best       srun -w A,C from the start, B slowed all along (unused)

The bench reads rank 0's progress lines ("heat: iter I/N") as they arrive
and derives the iteration rate over time. Printed: the rate of (a) after
the slowdown, of (b) after its move, of (c), the ratio (b after the
move)/(c) of the same round, the time from the slowdown to the move and to
recovery (a 2 s window of (b) at >= 0.9 of (c)), and the decision of the
balancer (smig history). Over the rounds: the median ratio with a bootstrap
95 % interval (goal >= 0.9). A run that does not start, ends early or (b)
without a move is a failure, counted and printed; the exit status is 1 if
any. Everything printed also goes to --out (bench/results/balance.txt from
make); the plot of the three rates over time of the last complete round to
--svg (bench/results/balance.svg). The last line is the headline:
"bench-balance: (b) auto after its move / (c) best ratio X [lo, hi] (n=N);
goal ...; (a) slowed / (c) ratio X [lo, hi] (n=N); ..." (medians over the
rounds with their bootstrap 95 % interval).
"""

import argparse
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "testsuite", "python", "lib"))
import benchlib as bl  # noqa: E402
import cluster as cl  # noqa: E402

HEAT = "--nx 1024 --ny 512 --iters 100000000 --report 5"
SLOW_AT = 8.0          # seconds after the first iteration
QUOTA = (20000, 100000)  # node B gets 0.2 of a core
ITER_RE = re.compile(r"^heat: iter (\d+)/\d+$", re.M)
RESTORED_RE = re.compile(r"^heat: rank \d+ node (\S+) restored iter \d+$", re.M)
WINDOW = 2.0           # seconds of a rate sample


def set_quota(c, node, quota):
    """CPU quota of the node's cgroup per QUOTA[1] us (-1: none), cgroup v2
    cpu.max or v1 cpu.cfs_quota_us."""
    if not cl.cpu_cgroup(c, node):
        sys.exit("bench-balance: no cgroup with a cpu controller (v2 cpu.max or v1 cpu): cannot slow a node")
    cl.set_cpu_quota(c, node, quota, QUOTA[1])


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class RunFailed(Exception):
    """A run that cannot give its figure (the reason in its text)."""


def one_run(c, name, srun_words, nodes, seconds, slow_at, smig):
    """Submit one job, follow rank 0's progress for SECONDS after its first
    iteration, slow node B at SLOW_AT (None: before the start), then cancel.
    Return {"t": [...], "iter": [...], "slow": s, "moved": s or None,
    "history": [...]} with times relative to the first iteration."""
    a, b, _ = nodes
    heat = os.path.join(c.build_dir, "contrib", "examples", "heat")
    script = os.path.join(c.workdir, f"balance-{name}.sbatch")
    out = os.path.join(c.workdir, f"balance-{name}.out")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix {srun_words} -n4 {heat} {HEAT}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    set_quota(c, b, QUOTA[0] if slow_at is None else -1)
    job = cl.submit_job(c, f"-N3 -w {','.join(nodes)} --ntasks-per-node=2 "
                        f"-t 10 -o {out} {script}")
    t, it, history = [], [], []
    start = moved = None
    next_hist = 0.0
    slow = 0.0 if slow_at is None else None
    deadline = time.monotonic() + 90
    try:
        while True:
            now = time.monotonic()
            text = read(out)
            iters = ITER_RE.findall(text)
            if iters and start is None:
                start = now
            if start is None:
                if now > deadline or "srun_exit=" in text:
                    raise RunFailed(f"run {name} (job {job}) did not start: "
                                    f"{text[-500:]!r}")
                time.sleep(0.1)
                continue
            rel = now - start
            t.append(rel)
            it.append(int(iters[-1]))
            if slow is None and rel >= slow_at:
                set_quota(c, b, QUOTA[0])
                slow = rel
            if moved is None and RESTORED_RE.search(text):
                moved = rel
            if "srun_exit=" in text:
                raise RunFailed(f"run {name} (job {job}) ended early: {text[-500:]!r}")
            if smig and slow is not None and rel >= next_hist:
                next_hist = rel + 2
                r = c.run(f"{smig} history {job} --json", timeout=30)
                if r.rc == 0:
                    history = json.loads(r.stdout)["history"] or history
            if rel >= seconds:
                break
            time.sleep(0.2)
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)
        cl.wait_for_job_state(c, job, cl.TERMINAL_STATES, timeout=60)
        set_quota(c, b, -1)
    return {"t": t, "iter": it, "slow": slow, "moved": moved,
            "history": history}


def rate_between(run, t0, t1):
    """Iterations per second between t0 and t1 (the samples nearest)."""
    pts = [(t, i) for t, i in zip(run["t"], run["iter"]) if t0 <= t <= t1]
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def rate_series(run, step=1.0):
    """[(t, rate over the WINDOW before t)] every STEP seconds."""
    out = []
    end = run["t"][-1] if run["t"] else 0
    t = WINDOW
    while t <= end:
        r = rate_between(run, t - WINDOW, t)
        if r is not None:
            out.append((t, r))
        t += step
    return out


def write_svg(path, runs, best, slowed_node):
    """Rate over time of the three runs: one plot, hand-written SVG."""
    W, H, mx, my, pw, ph = 900, 420, 70, 50, 780, 300
    tmax = max(r["t"][-1] for r in runs.values())
    series = {k: rate_series(r) for k, r in runs.items()}
    vmax = max([v for s in series.values() for _, v in s] + [1.0]) * 1.1
    colours = {"slowed": "#c0392b", "auto": "#2471a3", "best": "#229954"}
    names = {"slowed": "(a) slowed node, no migration",
             "auto": "(b) --migrate=auto",
             "best": "(c) best placement from the start"}

    def x(t):
        return mx + t / tmax * pw

    def y(v):
        return my + ph - v / vmax * ph

    p = [f'<?xml version="1.0" encoding="UTF-8"?>\n'
         f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="11">\n'
         f'<rect width="100%" height="100%" fill="white"/>\n'
         f'<text x="10" y="20" font-size="14">bench-balance: heat iterations per second '
         f'({WINDOW:.0f} s windows), node {slowed_node} slowed to {QUOTA[0] / QUOTA[1]:.1f} core</text>\n'
         f'<rect x="{mx}" y="{my}" width="{pw}" height="{ph}" fill="none" stroke="black"/>\n']
    for k in range(6):
        v = vmax * k / 5
        p.append(f'<text x="{mx - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>\n'
                 f'<line x1="{mx}" y1="{y(v):.1f}" x2="{mx + pw}" y2="{y(v):.1f}" stroke="#eee"/>\n')
    step = 10 if tmax > 40 else 5
    for s in range(0, int(tmax) + 1, step):
        p.append(f'<text x="{x(s):.1f}" y="{my + ph + 16}" text-anchor="middle">{s}</text>\n')
    p.append(f'<text x="{mx + pw / 2}" y="{my + ph + 34}" text-anchor="middle">'
             f'seconds since the first iteration</text>\n')
    slow = runs["slowed"]["slow"]
    p.append(f'<line x1="{x(slow):.1f}" y1="{my}" x2="{x(slow):.1f}" y2="{my + ph}" '
             f'stroke="#888" stroke-dasharray="4 3"/>'
             f'<text x="{x(slow) + 3:.1f}" y="{my + 12}">slowdown</text>\n')
    if runs["auto"]["moved"] is not None:
        m = runs["auto"]["moved"]
        p.append(f'<line x1="{x(m):.1f}" y1="{my}" x2="{x(m):.1f}" y2="{my + ph}" '
                 f'stroke="{colours["auto"]}" stroke-dasharray="2 2"/>'
                 f'<text x="{x(m) + 3:.1f}" y="{my + 26}" fill="{colours["auto"]}">move</text>\n')
    p.append(f'<line x1="{mx}" y1="{y(0.9 * best):.1f}" x2="{mx + pw}" y2="{y(0.9 * best):.1f}" '
             f'stroke="{colours["best"]}" stroke-dasharray="1 3"/>'
             f'<text x="{mx + pw - 4}" y="{y(0.9 * best) - 3:.1f}" text-anchor="end" '
             f'fill="{colours["best"]}">0.9 x (c)</text>\n')
    for i, (k, s) in enumerate(series.items()):
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s)
        p.append(f'<polyline fill="none" stroke="{colours[k]}" stroke-width="2" points="{pts}">'
                 f'<title>{names[k]}</title></polyline>\n'
                 f'<text x="{mx + 10 + i * 260}" y="{H - 12}" fill="{colours[k]}">'
                 f'{names[k]}</text>\n')
    p.append("</svg>\n")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(p))
    os.replace(tmp, path)


def round_figures(runs, out, failures, rnd):
    """Print one round's figures; RET (after / best, recovery s) or None."""
    sl, au, be = runs["slowed"], runs["auto"], runs["best"]
    before = rate_between(sl, 1, sl["slow"])
    slowed = rate_between(sl, sl["slow"] + 3, sl["t"][-1])
    best = rate_between(be, 3, be["t"][-1])
    moved = au["moved"]
    after = rate_between(au, moved + 3, au["t"][-1]) if moved is not None else None
    recovered = None
    if moved is not None and best:
        for t, v in rate_series(au, 0.5):
            if t >= moved and v >= 0.9 * best:
                recovered = t
                break
    out(f"  round {rnd}: (a) before the slowdown {before or 0:.1f} iter/s, slowed "
        f"{slowed or 0:.1f}; (c) best {best or 0:.1f}; (b) "
        + (f"after the move {after:.1f}, slowdown -> restored elsewhere "
           f"{moved - au['slow']:.1f} s, -> rate >= 0.9 x (c) "
           + (f"{recovered - au['slow']:.1f} s" if recovered else "not reached")
           if after else "NO MOVE") + f" (load {bl.loadavg()})")
    for h in au["history"]:
        gain, meas = h.get("predicted_gain"), h.get("measured_gain")
        out(f"    decision: {h['kind']} ranks {h['ranks']} {h['from']}->{h['to']} "
            f"reason={h['reason']} predicted_gain="
            f"{'-' if gain is None else f'{gain:+.2f}'} measured_gain="
            f"{'-' if meas is None else f'{meas:+.2f}'} outcome={h['outcome']}")
    if not after or not best:
        failures.append(f"round {rnd}: " + ("(b) no automatic move" if not after
                                            else "(c) no rate"))
        return None
    return after / best, (recovered - au["slow"]) if recovered else None, slowed / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--seconds", type=float, default=50,
                    help="length of runs (a) and (b) after the first iteration")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="also write everything printed to this file")
    ap.add_argument("--svg", default=os.path.join(REPO, "bench", "results", "balance.svg"))
    args = ap.parse_args()
    out = bl.start("bench-balance", args.out)
    out(f"heat {HEAT.split(' --iters')[0]}, 4 ranks on 2 of 3 nodes; node B slowed to "
        f"{QUOTA[0] / QUOTA[1]:.1f} core {SLOW_AT:.0f} s after the first iteration")
    smig = os.path.join(args.build, "contrib", "tools", "smig")
    started = time.monotonic()
    failures, figs, last = [], [], None
    kinds = ["slowed", "auto", "best"]
    with cl.bench_cluster("bench-balance", args.build) as c:
        nodes = c.nodes[:3]
        a, b, spare = nodes
        how = {
            "slowed": (f"-w {a},{b} -N2", args.seconds, SLOW_AT, None),
            "auto": ("--migrate=auto,interval=1s -N2", args.seconds, SLOW_AT, smig),
            "best": (f"-w {a},{spare} -N2", args.seconds * 0.6, None, None),
        }
        for rnd in range(1, args.rounds + 1):
            runs = {}
            for k in kinds[(rnd - 1) % 3:] + kinds[:(rnd - 1) % 3]:
                words, secs, slow_at, tool = how[k]
                try:
                    runs[k] = one_run(c, f"{k}{rnd}", words, nodes, secs, slow_at, tool)
                except RunFailed as e:
                    failures.append(f"round {rnd}: {e}")
                    out(f"  round {rnd}: FAILED: {e}")
            if len(runs) < 3:
                continue
            f = round_figures(runs, out, failures, rnd)
            if f:
                figs.append(f)
                last = runs
    if last:
        best = rate_between(last["best"], 3, last["best"]["t"][-1])
        write_svg(args.svg, last, best, b)
        out(f"plot (round {len(figs)} of the complete ones): {args.svg}")
    out()
    out(f"load average at end: {bl.loadavg()}; run time {time.monotonic() - started:.0f} s")
    out(f"failures: {len(failures)}" + "".join(f"\n  {f}" for f in failures))
    ratios = [f[0] for f in figs]
    rec = [f[1] for f in figs if f[1] is not None]
    lo, hi = bl.bootstrap(ratios) if ratios else (0, 0)
    verdict = ("no round" if not ratios else "met" if lo >= 0.9 else
               "MISSED" if hi < 0.9 else "not resolved")
    out(f"bench-balance: (b) auto after its move / (c) best ratio {bl.ratio_ci(ratios)}; "
        f"goal >= 0.9: {verdict}; (a) slowed / (c) ratio {bl.ratio_ci([f[2] for f in figs])}; "
        f"slowdown -> 0.9 x (c) {bl.spread(rec, '{:.1f}')} s")
    out.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
