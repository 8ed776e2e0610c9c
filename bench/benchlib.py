# SPDX-License-Identifier: GPL-2.0-or-later
"""benchlib.py - what the cluster benchmarks share: their output file, the
host facts at its head, and how a figure and its spread are printed."""

import datetime
import math
import os
import platform
import random
import re
import statistics
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Out:
    """Lines to stdout and to the results file (overwritten) as they come."""

    def __init__(self, path):
        self.file = open(path, "w") if path else None

    def __call__(self, line=""):
        print(line, flush=True)
        if self.file:
            self.file.write(line + "\n")
            self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


def command_out(argv):
    """First line of a command's output, "unknown" if it fails."""
    try:
        r = subprocess.run(argv, text=True, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0] if r.returncode == 0 and text else "unknown"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def host_facts():
    """Lines saying when, where and on what the bench ran."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            model = m.group(1) if m else model
    except OSError:
        pass
    pkg = ["dpkg-query", "-W", "-f=${Version}"]
    rev = command_out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = command_out(["bash", "-c", f"git -C '{REPO}' status --porcelain "
                         "--untracked-files=no -- . ':!bench/results' | wc -l"])
    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"host: {platform.node()}, {os.cpu_count()} cores ({model}), "
        f"kernel {platform.release()}",
        f"versions: Slurm {command_out(['slurmd', '-V'])}, "
        f"PMIx {command_out(pkg + ['libpmix2'])}, "
        f"{command_out(['ompi_info', '--version'])} "
        f"({command_out(pkg + ['openmpi-bin'])}), "
        f"munge {command_out(pkg + ['munge'])}",
        f"tree: {rev}" + ("" if dirty in ("0", "unknown") else
                          f" with {dirty} changed files"),
        f"load average at start: {loadavg()}",
    ]


def log_time(stamp):
    """Seconds since the epoch of a Slurm or smigd log stamp
    ("2026-12-07T19:32:23.259", local time)."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def bootstrap(values, n=2000, seed=1):
    """95 % interval of the median of VALUES by resampling (seeded: the
    same values give the same interval)."""
    rnd = random.Random(seed)
    meds = sorted(statistics.median(rnd.choices(values, k=len(values)))
                  for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def ratio_ci(values, fmt="{:.2f}"):
    """"median [lo, hi] (n=N)": the median and its bootstrap 95 % interval."""
    if not values:
        return "none (n=0)"
    lo, hi = bootstrap(values)
    f = fmt.format
    return f"{f(statistics.median(values))} [{f(lo)}, {f(hi)}] (n={len(values)})"


def proportion_ci(k, n, fmt="{:.3f}"):
    """"K/N [lo, hi] (n=N)" for K events in N trials: the share and its
    exact (Clopper-Pearson) 95 % interval, for counts such as hangs in N
    migrations, where a bootstrap of 0 events says nothing."""
    if n <= 0:
        return "none (n=0)"

    def tail(p, lo_i, hi_i):  # P(lo_i <= X <= hi_i), X ~ Binomial(n, p)
        return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i)
                   for i in range(lo_i, hi_i + 1))

    def rising(f, target):  # p in [0, 1] where increasing f(p) = target
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
        return (lo + hi) / 2

    low = 0.0 if k == 0 else rising(lambda p: tail(p, k, n), 0.025)
    high = 1.0 if k == n else rising(lambda p: 1 - tail(p, 0, k), 0.975)
    f = fmt.format
    return f"{f(k / n)} [{f(low)}, {f(high)}] (n={n})"


def spread(values, fmt="{:.3f}"):
    """"median (min .. max, n=N)" of VALUES."""
    if not values:
        return "none (n=0)"
    f = fmt.format
    return (f"{f(statistics.median(values))} ({f(min(values))} .. {f(max(values))}, "
            f"n={len(values)})")


class Runs:
    """What a cluster benchmark keeps about its runs: the failures (counted
    and printed, never dropped) and Open MPI start-up retries (logged)."""

    def __init__(self, c, out):
        self.c, self.out = c, out
        self.failures = []
        self.retries = 0
        self.seq = 0

    def fail(self, what):
        self.failures.append(what)
        self.out(f"    FAILED: {what}")

    def start(self, name, script, sbatch_opts, nranks, starts_fn):
        """sbatch SCRIPT and wait for NRANKS start lines (heat.submit_started:
        only an Open MPI start-up failure recognised by its own words is
        retried); each retry is printed and counted. RET (job, output path,
        text)."""
        import heat as hl
        job, out, text = hl.submit_started(self.c, name, script, sbatch_opts, nranks,
                                           starts_fn=starts_fn)
        tries = sum(1 for n in os.listdir(self.c.workdir)
                    if n.startswith(f"{name}.") and n.endswith(".out"))
        if tries > 1:
            self.retries += tries - 1
            self.out(f"    {name}: Open MPI start-up failed, started again "
                     f"({tries - 1} retries)")
        return job, out, text


def start(name, out_path):
    """What every cluster benchmark does first: refuse to run as another
    user than root (it starts Slurm's daemons), open the output (Out) and
    print the host facts and the command. RET the Out."""
    import sys
    if os.geteuid() != 0:
        sys.exit(f"{name}: starts Slurm daemons: run as root")
    out = Out(out_path)
    for line in host_facts():
        out(line)
    out(f"command: {' '.join(sys.argv)}")
    return out
