#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_migration.py - downtime of a migration against state size, next to a
bare relaunch and a raw write + read of the same bytes

One local cluster (4 nodes of 4 CPUs). A 4-rank heat job (srun --mpi=pmix
-N3 -n4 in sbatch -N3 --ntasks-per-node=2: ranks 0,1 | 2 | 3) whose grid
gives each rank a state of 1 MiB, 64 MiB or 1 GiB. In each round, for each
size (sizes in rotating order), side by side:

  bare     the same step ended and started again without migration: the
           batch script runs the srun twice; from the first rank leaving
           its loop (heat's "finishing" line) to the last rank of the new
           step past its first iteration ("computing")
  shared   --migrate=capture-timeout=10m (at 1 GiB the ranks' iterations and
           image writes on the 2 shared cores outlast the test cluster's
           MigrateCaptureTimeout=20s; the capture is then aborted and
           retried, as it should), MigrateImageStore=shared: the node of rank 3 is
           drained; from the first rank stopping at the safe point
           ("stopping for migration") to the last rank past its first
           iteration after its restore. Its parts: the safe point spread
           (first to last stop), last stop to every rank restored (images
           written, step relaunched, images read), restored to computing
  local    the same with MigrateImageStore=local (rank 3's image handed
           off to the node it moves to)
  raw      4 writers at once, each writing and fsync()ing SIZE bytes to a
           new file in the image directory (8 MiB write()s), then 4
           readers at once, each reading its file into a buffer of SIZE
           bytes: the wall time of each phase

The capture request (smigd's "capture gen=" line) to the first stop is the
wait for the app's next safe point, printed apart: the ranks compute
meanwhile. Figure per round: downtime / (bare + raw write + raw read) of the
same round and size; the headline per size and store is the median of the
rounds with a bootstrap 95 % interval. Goal (issue 16): <= 1.1 at every size.

A run that fails (job not started, not moved, not restored in time) is
counted and printed with its reason, never dropped; the exit status is 1 if
any. Everything printed also goes to --out (bench/results/migration.txt
from make).
"""

import argparse
import os
import re
import signal
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "testsuite", "python", "lib"))
import benchlib as bl  # noqa: E402
import cluster as cl  # noqa: E402
import heat as hl  # noqa: E402

MIB = 1 << 20
# name: (bytes of one rank's state, nx, ny); 4 ranks of ny / 4 rows.
SIZES = {
    "1MiB": (MIB, 1024, 512),
    "64MiB": (64 * MIB, 4096, 8192),
    "1GiB": (1024 * MIB, 16384, 32768),
}
STORES = ("shared", "local")
LAYOUT = "-N3 -n4"
SBATCH = "-N3 --ntasks-per-node=2"
TS_RE = (r"^heat: rank (\d+) (?:node (\S+) )?(start|restored|computing|finishing|"
         r"stopping for migration at) iter (\d+) t=([0-9.]+)$")
CHUNK = 8 * MIB


def heat_lines(text):
    """[(rank, node or None, kind, iter, t)] of heat's --timestamps lines."""
    return [(int(r), n or None, k, int(i), float(t))
            for r, n, k, i, t in re.findall(TS_RE, text, re.M)]


def starts(text):
    return [x for x in heat_lines(text) if x[2] == "start"]


class Bench(bl.Runs):
    def __init__(self, c, args, out):
        super().__init__(c, out)
        self.args = args
        self.heat = hl.heat_path(c)
        self.conf = os.path.join(c.dir, "migrate.conf")
        with open(self.conf) as f:
            self.conf_text = f.read()
        m = re.search(r"^MigrateImageDir=(\S+)", self.conf_text, re.M)
        self.image_dir = m.group(1)
        # smigd reads MigrateRestoreTimeout at start: SIGHUP (no job runs).
        self.set_store("shared")
        mark = len(c.read_log("smigd"))
        os.kill(c.smigd_pid(), signal.SIGHUP)
        said = cl.repeat_until(lambda: c.read_log("smigd")[mark:],
                               lambda t: "balancer listening" in t, timeout=30)
        if "balancer listening" not in said:
            sys.exit(f"bench-migration: smigd did not take MigrateRestoreTimeout=2m "
                     f"after SIGHUP:\n{said}")

    def script(self, size, migrate, iters, twice=False):
        _, nx, ny = SIZES[size]
        self.seq += 1
        path = os.path.join(self.c.workdir, f"run{self.seq}.sbatch")
        run = (f"srun --mpi=pmix {migrate} {LAYOUT} {self.heat} --nx {nx} --ny {ny} "
               f"--iters {iters} --sleep-ms 20 --timestamps")
        with open(path, "w") as f:
            f.write(f"#!/bin/bash\n{run}\n" + (f"{run}\n" if twice else "") +
                    "echo srun_exit=$?\n")
        os.chmod(path, 0o755)
        return path

    def launch(self, name, path):
        """sbatch PATH and wait for the 4 ranks' start lines (Runs.start())."""
        job, out, text = self.start(name, path, SBATCH, 4, starts)
        if len(starts(text)) < 4:
            self.c.run(f"scancel {job}", user="root", timeout=30)
            return None, out
        return job, out

    def bare(self, size):
        """Seconds from the first rank finishing to the last rank of the
        next step computing, or None (failure recorded)."""
        name = f"bare-{size}-{self.seq}"
        job, out = self.launch(name, self.script(size, "", 3, twice=True))
        if job is None:
            self.fail(f"bare {size}: the ranks did not start")
            return None
        state = cl.wait_for_job_state(self.c, job, "COMPLETED", timeout=600)
        text = hl.read(out)
        lines = heat_lines(text)
        fin = [t for _, _, k, _, t in lines if k == "finishing"]
        comp = [t for _, _, k, _, t in lines if k == "computing"]
        if state != "COMPLETED" or len(fin) != 8 or len(comp) != 8:
            self.fail(f"bare {size}: job {job} {state}, {len(fin)} finishing and "
                      f"{len(comp)} computing lines of 8")
            return None
        first = min(fin[:4])
        after = [t for t in comp if t > first]
        if len(after) != 4:
            self.fail(f"bare {size}: job {job}: {len(after)} ranks computing after the "
                      "first step's end, not 4")
            return None
        return max(after) - first

    def set_store(self, store):
        """migrate.conf as up.sh wrote it, with the store and the
        product's default MigrateRestoreTimeout (2m) instead of the test
        clusters' 20 s: a relaunched step of 1 GiB ranks needs longer than
        20 s to be past its restore here, and smigd's relaunch watchdog
        would start it again (and again) inside the measured downtime."""
        with open(self.conf, "w") as f:
            f.write(re.sub(r"^MigrateRestoreTimeout=.*\n", "", self.conf_text,
                           flags=re.M) + "MigrateRestoreTimeout=2m\n" +
                    ("MigrateImageStore=local\n" if store == "local" else ""))

    def migration(self, size, store):
        """Dict of the move's times (seconds), or None (failure recorded)."""
        self.set_store(store)
        name = f"mig-{store}-{size}-{self.seq}"
        job, out = self.launch(name, self.script(size, "--migrate=capture-timeout=10m", 1000000))
        if job is None:
            self.fail(f"{store} {size}: the ranks did not start")
            return None
        text = hl.read(out)
        victim = [n for r, n, k, _, _ in heat_lines(text) if r == 3 and k == "start"][0]
        # One full iteration first, so that the grid is in place everywhere.
        text = cl.repeat_until(lambda: hl.read(out), lambda t: sum(
            1 for x in heat_lines(t) if x[2] == "computing") >= 4, timeout=300)
        smigd_mark = len(self.c.read_log("smigd"))
        self.c.run(f"scontrol update nodename={victim} state=drain reason=bench",
                   user="root", timeout=30)
        try:
            text = cl.repeat_until(
                lambda: hl.read(out),
                lambda t: len([x for x in heat_lines(t) if x[2] == "restored"]) >= 4 and
                len(self.after_restore(t)) >= 4 or "srun_exit=" in t,
                timeout=self.args.move_timeout, poll_interval=0.5)
        finally:
            self.c.run(f"scancel {job}", user="root", timeout=30)
            self.c.run(f"scontrol update nodename={victim} state=resume", user="root",
                       timeout=30)
            cl.wait_for_job_state(self.c, job, {"CANCELLED", "COMPLETED", "FAILED"},
                                  timeout=120)
        lines = heat_lines(text)
        stops = [t for _, _, k, _, t in lines if k == "stopping for migration at"]
        restored = [(r, n, t) for r, n, k, _, t in lines if k == "restored"]
        after = self.after_restore(text)
        m = re.search(r"^\[(\S+)\] smigd: \w+: JobId=%d StepId=\d+: capture gen=1 "
                      r"timeout_ms" % job, self.c.read_log("smigd")[smigd_mark:], re.M)
        if len(stops) != 4 or len(restored) != 4 or len(after) != 4 or not m:
            self.fail(f"{store} {size}: job {job}: {len(stops)} stops, {len(restored)} "
                      f"restores, {len(after)} ranks computing after them of 4, capture "
                      f"request {'found' if m else 'not found'} in smigd's log "
                      f"(within {self.args.move_timeout:.0f} s of the drain)")
            return None
        moved = [n for r, n, _ in restored if r == 3]
        if moved and moved[0] == victim:
            self.fail(f"{store} {size}: job {job}: rank 3 restored on the drained "
                      f"node {victim}")
            return None
        return {
            "down": max(after) - min(stops),
            "wait": min(stops) - bl.log_time(m.group(1)),
            "skew": max(stops) - min(stops),
            "restore": max(t for _, _, t in restored) - max(stops),
            "first": max(after) - max(t for _, _, t in restored),
        }

    @staticmethod
    def after_restore(text):
        lines = heat_lines(text)
        restored = [t for _, _, k, _, t in lines if k == "restored"]
        if not restored:
            return []
        return [t for _, _, k, _, t in lines if k == "computing" and t >= min(restored)]

    def raw(self, size):
        """(write s, read s): 4 writers then 4 readers of SIZE bytes each."""
        nbytes = SIZES[size][0]
        data = os.urandom(CHUNK)
        paths = [os.path.join(self.image_dir, f"bench-raw-{i}") for i in range(4)]
        errors = []

        def write(path):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    left = nbytes
                    while left:
                        left -= os.write(fd, memoryview(data)[:min(left, CHUNK)])
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as e:
                errors.append(f"{path}: {e}")

        def read(path):
            try:
                buf = bytearray(nbytes)
                view = memoryview(buf)
                with open(path, "rb", buffering=0) as f:
                    got = 0
                    while got < nbytes:
                        n = f.readinto(view[got:got + CHUNK])
                        if not n:
                            raise OSError(f"short read at {got}")
                        got += n
            except OSError as e:
                errors.append(f"{path}: {e}")

        def phase(fn):
            threads = [threading.Thread(target=fn, args=(p,)) for p in paths]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.monotonic() - t0

        try:
            w = phase(write)
            r = phase(read)
        finally:
            for p in paths:
                if os.path.exists(p):
                    os.unlink(p)
        if errors:
            self.fail(f"raw {size}: {'; '.join(errors)}")
            return None
        return w, r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(bl.REPO, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default=",".join(SIZES),
                    help="comma-separated subset of " + ", ".join(SIZES))
    ap.add_argument("--move-timeout", type=float, default=300,
                    help="seconds from the drain to every rank computing again")
    ap.add_argument("--out", help="also write everything printed to this file")
    args = ap.parse_args()
    sizes = args.sizes.split(",")
    for s in sizes:
        if s not in SIZES:
            sys.exit(f"bench-migration: --sizes: {s}: not one of {', '.join(SIZES)}")
    out = bl.start("bench-migration", args.out)
    out(f"layout: sbatch {SBATCH}, srun --mpi=pmix {LAYOUT} heat --sleep-ms 20 "
        "(ranks 0,1 | 2 | 3); the node of rank 3 is drained")
    started = time.monotonic()
    res = {(s, k): [] for s in sizes for k in ("bare", "raw") + STORES}
    with cl.bench_cluster("bench-migration", args.build) as c:
        b = Bench(c, args, out)
        out(f"image directory: {b.image_dir}")
        for rnd in range(args.rounds):
            order = sizes[rnd % len(sizes):] + sizes[:rnd % len(sizes)]
            for size in order:
                bare = b.bare(size)
                mig = {k: b.migration(size, k) for k in STORES}
                raw = b.raw(size)
                res[(size, "bare")].append(bare)
                res[(size, "raw")].append(raw)
                for k in STORES:
                    res[(size, k)].append(mig[k])
                words = [f"bare {bare * 1e3:.0f} ms" if bare else "bare FAILED",
                         f"raw write {raw[0] * 1e3:.0f} ms read {raw[1] * 1e3:.0f} ms"
                         if raw else "raw FAILED"]
                for k in STORES:
                    m = mig[k]
                    words.append(f"{k} downtime {m['down'] * 1e3:.0f} ms (stop skew "
                                 f"{m['skew'] * 1e3:.0f}, to restored "
                                 f"{m['restore'] * 1e3:.0f}, to computing "
                                 f"{m['first'] * 1e3:.0f})" if m else f"{k} FAILED")
                out(f"  round {rnd + 1} {size:>5}: " + "; ".join(words) +
                    f" (load {bl.loadavg()})")
        b.set_store("shared")
    out()
    out(f"medians over {args.rounds} rounds (min .. max), ms; ratio = downtime / "
        "(bare + raw write + raw read) of the same round, median [bootstrap 95 %]:")
    heads = []
    for size in sizes:
        bares = res[(size, "bare")]
        raws = res[(size, "raw")]
        ok = [x for x in bares if x]
        out(f"  {size}: bare relaunch {bl.spread([x * 1e3 for x in ok], '{:.0f}')}; raw write "
            f"{bl.spread([r[0] * 1e3 for r in raws if r], '{:.0f}')}, raw read "
            f"{bl.spread([r[1] * 1e3 for r in raws if r], '{:.0f}')}")
        for k in STORES:
            ms = res[(size, k)]
            good = [m for m in ms if m]
            for key, what in (("down", "downtime"), ("wait", "capture request to first stop "
                                                    "(ranks computing; not downtime)"),
                              ("skew", "first to last stop"),
                              ("restore", "last stop to all restored"),
                              ("first", "restored to all computing")):
                out(f"    {k:6s} {what}: {bl.spread([m[key] * 1e3 for m in good], '{:.0f}')}")
            ratios = [m["down"] / (bb + r[0] + r[1])
                      for m, bb, r in zip(ms, bares, raws) if m and bb and r]
            heads.append((size, k, ratios))
            out(f"    {k:6s} ratio {bl.ratio_ci(ratios)}")
    out()
    out(f"load average at end: {bl.loadavg()}; run time {time.monotonic() - started:.0f} s; "
        f"Open MPI start-up retries: {b.retries}")
    out(f"failures: {len(b.failures)}" + "".join(f"\n  {f}" for f in b.failures))
    for size, k, ratios in heads:
        verdict = ("no run" if not ratios else
                   "met" if max(bl.bootstrap(ratios)) <= 1.1 else
                   "MISSED" if min(bl.bootstrap(ratios)) > 1.1 else "not resolved")
        out(f"bench-migration: {size} {k}: downtime / (bare relaunch + raw write + raw read) "
            f"ratio {bl.ratio_ci(ratios)}; goal <= 1.1: {verdict}")
    out.close()
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
