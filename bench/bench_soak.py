#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""bench_soak.py - N drain migrations of running jobs, one after another

A soak, not a speed figure: it counts what went wrong over many moves (issue
13: goal 0 unrecovered hangs and 0 wrong results in 200 migrations) and prints
the downtime of each. One local cluster of its own (4 nodes of 4 CPUs); the
heat example (contrib/examples/heat, a safe point every iteration) runs in an
sbatch allocation of all 4 nodes and is drained off its nodes again and again.
Migration i (0-based) has pattern PATTERNS[i % 4]:

  first  drain the first node of the step (lowest-numbered node holding ranks)
  last   drain the last node of the step
  two    drain both nodes of the step at once (all four ranks move)
  local  MigrateImageStore=local (the images are handed off between the
         nodes' agents): drain the step's first node, then its last, in turn

The first three run in shared-store jobs ("srun --mpi=pmix --migrate -N2 -n4
heat" in "sbatch -N4 --ntasks-per-node=2": two nodes are always spare, and a
node has no room for more than its two ranks), up to --per-job moves a
job, cycling first, last, two. A node-local store moves ranks only to nodes
where the step has an agent, so local jobs run "srun -N4 -n4" (one rank a
node, "sbatch -N4 --exclusive") and shrink by one node a move: at most 3
moves a job. Shared and local
jobs alternate; migrate.conf gets MigrateImageStore=local for the local jobs
only (slurmstepd reads it at each step start).

One move: the bench drains the node(s) and waits until every rank printed
"stopping for migration at iter I", then "restored iter I" and "computing
iter I+1" after it (all ranks restored and past one iteration), then resumes
the drained nodes (scontrol update state=resume) so the next move has room.
Downtime of a move: from the earliest "stopping for migration" line of its
ranks to the latest "restored" line (heat --timestamps, wall clock of this one
machine); the drain's own time to the same line and the time to all ranks
computing are printed beside it. A move that does not complete within --bound
seconds of the drain (or of srun's last RECOVERED_RE line: each relaunch
attempt of the product's watchdog gets a whole bound), or whose job ends
first, is an unrecovered hang: counted, printed with the job id and the stage
it stopped at, the job's output, the daemons' logs, its SystemComment and
"smig history" copied to --keep, the job cancelled; the job's remaining moves
go to the next job. A move that completed after srun printed RECOVERED_RE
(the relaunch watchdog's line, one a relaunch attempt) is a hang the product
recovered from.

A job that has done its moves runs to its end; its final checksum is compared
with a run of the same heat arguments and layout without migration ("wrong
results" counts jobs: a different or missing checksum, or srun failing, in a
job whose moves all completed; a job cancelled after an unrecovered hang is
counted there, not here). A job whose ranks do not all start is printed and
counted as a failed start; its moves go to the next job (3 jobs in a row
without a move end the bench, printing what was done).

The last line is the headline:
"bench-soak: N migrations, U unrecovered: unrecovered / migrations ratio
X [lo, hi] (n=N); W wrong results: wrong / jobs ratio X [lo, hi] (n=J)
(exact 95 % intervals, Clopper-Pearson); downtime median X s p95 Y s"
"""

import argparse
import datetime
import math
import os
import re
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "testsuite", "python", "lib"))
import benchlib as bl  # noqa: E402
import cluster as cl  # noqa: E402
import heat as hl  # noqa: E402

# srun's line for each relaunch attempt of the restore watchdog, e.g.
# "migrate: JobId=J StepId=S: relaunch attempt 2 of 3: ranks 2,3 not restored
# within 60s (reason=restore-timeout)". A move that completed after such a
# line is a hang the product recovered from.
RECOVERED_RE = r"restore-timeout"

PATTERNS = ("first", "last", "two", "local")
SHARED_PATTERNS = PATTERNS[:3]
LOCAL_MAX_MOVES = 3
NX, NY = 96, 64
SLEEP_MS = 10
REPORT = 50
# Rank 0's progress must leave this many iterations before a drain: a move
# started at the very end of a run would race the job's own end.
MARGIN_ITERS = 400
START_TIMEOUT = 90
RESUME_TIMEOUT = 30

LINE_RE = (r"^heat: rank (\d+) (?:node (\S+) )?"
           r"(start|restored|computing|stopping for migration at|finishing)"
           r" iter (\d+) t=([0-9.]+)$")
PROGRESS_RE = r"^heat: iter (\d+)/(\d+) t=[0-9.]+$"


def lines_of(text):
    """[(rank, node, kind, iter, t)] of heat's --timestamps lines, in the
    order of the file (each rank's own lines in the order it printed)."""
    return [(int(r), n or None, k, int(i), float(t))
            for r, n, k, i, t in re.findall(LINE_RE, text, re.M)]


def progress(text):
    """Rank 0's last reported iteration, 0 before the first report."""
    found = re.findall(PROGRESS_RE, text, re.M)
    return int(found[-1][0]) if found else 0


def placement(lines):
    """{rank: node} of each rank's last start or restored line."""
    where = {}
    for r, n, k, _, _ in lines:
        if k in ("start", "restored"):
            where[r] = n
    return where


def node_key(node):
    """Sort key of Slurm's node names: node2 before node10."""
    m = re.match(r"^(.*?)(\d+)$", node)
    return (m.group(1), int(m.group(2))) if m else (node, 0)


def pstats(values):
    """(median, p95, max) of VALUES (p95: nearest rank), Nones if empty."""
    if not values:
        return None, None, None
    s = sorted(values)
    return statistics.median(s), s[math.ceil(0.95 * len(s)) - 1], s[-1]


def fmt(x):
    return "-" if x is None else f"{x:.2f}"


def move_state(lines, stops_before, nranks, drained):
    """Where a move stands in heat's lines. STOPS_BEFORE: stopping lines
    printed before the drain. Returns (done, stage, record): record holds
    the stop iteration, the times and the new placement once done."""
    stops = [x for x in lines if x[2] == "stopping for migration at"][stops_before:]
    if len(stops) < nranks:
        return False, f"{len(stops)}/{nranks} ranks stopped", None
    it = min(x[3] for x in stops[:nranks])
    last_restore = {}
    for pos, (r, n, k, i, t) in enumerate(lines):
        if k == "restored" and i == it:
            last_restore[r] = (pos, n, t)
    if len(last_restore) < nranks:
        return False, f"stopped at iter {it}, {len(last_restore)}/{nranks} " \
            "ranks restored", None
    computing = {}
    for pos, (r, n, k, i, t) in enumerate(lines):
        if k == "computing" and i == it + 1 and r in last_restore \
                and pos > last_restore[r][0]:
            computing[r] = t
    if len(computing) < nranks:
        return False, f"stopped at iter {it}, restored, {len(computing)}/{nranks} " \
            "ranks computing", None
    t_stop = min(x[4] for x in stops[:nranks])
    return True, "done", {
        "iter": it,
        "stops": len(stops),
        "t_stop": t_stop,
        "t_restored": max(t for _, _, t in last_restore.values()),
        "t_computing": max(computing.values()),
        "where": {r: n for r, (_, n, _) in last_restore.items()},
        "on_drained": sorted(r for r, (_, n, _) in last_restore.items()
                             if n in drained),
    }


class Soak:
    """One soak run on one cluster: jobs, moves and what they gave."""

    def __init__(self, c, args, out):
        self.c = c
        self.args = args
        self.out = out
        self.heat = hl.heat_path(c)
        self.conf = os.path.join(c.dir, "migrate.conf")
        with open(self.conf) as f:
            self.conf_text = f.read()
        self.moves = []         # one dict a migration (completed or not)
        self.jobs = []          # one dict a job
        self.start_failures = []
        self.reference = {}

    def heat_args(self, sleep_ms=SLEEP_MS):
        a = f"--nx {NX} --ny {NY} --iters {self.args.iters}"
        if sleep_ms:
            a += f" --sleep-ms {sleep_ms} --report {REPORT} --timestamps"
        return a

    @staticmethod
    def layout(local):
        return "-N4 -n4" if local else "-N2 -n4"

    def references(self):
        """Checksums of runs without migration, one per layout."""
        for local in (False, True):
            try:
                self.reference[local] = hl.reference_checksum(
                    self.c, f"{self.layout(local)} {self.heat} {self.heat_args(0)}",
                    timeout=300)
            except AssertionError as e:
                sys.exit(f"bench-soak: {e}")
            self.out(f"reference (no migration, srun {self.layout(local)}): "
                     f"checksum {self.reference[local]}")

    def set_store(self, local):
        """migrate.conf as generated, plus MigrateImageStore=local if LOCAL."""
        with open(self.conf, "w") as f:
            f.write(self.conf_text + ("MigrateImageStore=local\n" if local else ""))

    def keep(self, job, why, files):
        """Copy what explains a failure to --keep/job<JOB>; return its path."""
        d = os.path.join(self.args.keep, f"job{job}")
        os.makedirs(d, exist_ok=True)
        for p in files:
            if os.path.exists(p):
                shutil.copy(p, d)
        logs = os.path.join(self.c.dir, "log")
        for name in os.listdir(logs):
            shutil.copy(os.path.join(logs, name), d)
        r = self.c.run(f"scontrol show job {job}", user="root", timeout=30)
        tool = os.path.join(self.c.build_dir, "contrib", "tools", "smig")
        h = self.c.run(f"{tool} history {job}", timeout=30)
        with open(os.path.join(d, "why.txt"), "w") as f:
            f.write(f"{why}\n\n$ scontrol show job {job}\n{r.stdout}{r.stderr}"
                    f"\n$ smig history {job}\n{h.stdout}{h.stderr}")
        return d

    def resume(self, nodes):
        """Resume NODES and wait until none is drained; True if so."""
        names = ",".join(nodes)
        self.c.run(f"scontrol update nodename={names} state=resume", user="root",
                   timeout=30)
        r = cl.repeat_until(
            lambda: self.c.run(f"sinfo -h -N -n {names} -o '%t'", user="root",
                               timeout=30),
            lambda r: r.rc == 0 and r.stdout.strip() and
            not re.search(r"drain|drng", r.stdout),
            timeout=RESUME_TIMEOUT, poll_interval=0.3)
        return r.rc == 0 and not re.search(r"drain|drng", r.stdout)

    def victims(self, pattern, where, local_turn):
        nodes = sorted(set(where.values()), key=node_key)
        if pattern == "first" or (pattern == "local" and local_turn % 2 == 0):
            return nodes[:1]
        if pattern in ("last", "local"):
            return nodes[-1:]
        return nodes[:2]

    def run_job(self, planned):
        """Start a job and do the migrations of PLANNED (patterns) on it.
        Return the number done (completed or failed); the rest go to the
        next job."""
        local = planned[0] == "local"
        self.set_store(local)
        index = len(self.jobs) + len(self.start_failures)
        name = f"soak{index}"
        script = os.path.join(self.c.workdir, f"{name}.sbatch")
        outp = os.path.join(self.c.workdir, f"{name}.out")
        errp = os.path.join(self.c.workdir, f"{name}.err")
        with open(script, "w") as f:
            f.write("#!/bin/bash\n"
                    f"srun --mpi=pmix --migrate {self.layout(local)} {self.heat} "
                    f"{self.heat_args()}\n"
                    "echo srun_exit=$?\n")
        os.chmod(script, 0o755)
        files = (script, outp, errp)
        # Shared: 2 slots a node, so that ranks leaving a node go to a
        # spare node (with whole nodes the balancer packs them onto the
        # step's other node). Local: whole nodes (4 CPUs), room for the
        # ranks of the step's other nodes.
        alloc = "--exclusive" if local else "--ntasks-per-node=2"
        job = cl.submit_job(self.c, f"-N4 {alloc} --no-requeue -J {name} "
                            f"-o {outp} -e {errp} {script}")
        text = cl.repeat_until(
            lambda: hl.read(outp),
            lambda t: sum(x[2] == "computing" for x in lines_of(t)) >= 4 or
            "srun_exit=" in t, timeout=START_TIMEOUT)
        if sum(x[2] == "computing" for x in lines_of(text)) < 4:
            d = self.keep(job, "the ranks did not all start", files)
            self.c.run(f"scancel {job}", user="root", timeout=30)
            cl.wait_for_job_state(self.c, job, "CANCELLED", timeout=60)
            self.start_failures.append(job)
            errors = [x for x in hl.read(errp).splitlines() if "error" in x]
            self.out(f"  job {job}: its ranks did not all start within "
                     f"{START_TIMEOUT} s (not a migration; logs in {d})"
                     + (f": {errors[-1]}" if errors else ""))
            return 0
        record = {"job": job, "local": local, "patterns": [], "result": None}
        self.jobs.append(record)
        self.out(f"  job {job} ({'local' if local else 'shared'} store, srun "
                 f"{self.layout(local)}, {self.args.iters} iterations)")
        done = 0
        local_turn = 0
        for pattern in planned:
            text = hl.read(outp)
            left = self.args.iters - progress(text)
            if left < MARGIN_ITERS or "srun_exit=" in text:
                self.out(f"    {left} iterations left: the job's remaining "
                         f"{len(planned) - done} moves go to the next job")
                break
            move = self.one_move(job, pattern, text, outp, errp, local_turn, files)
            local_turn += pattern == "local"
            done += 1
            record["patterns"].append(pattern)
            if not move["completed"]:
                record["result"] = "cancelled"
                self.c.run(f"scancel {job}", user="root", timeout=30)
                cl.wait_for_job_state(self.c, job, "CANCELLED", timeout=60)
                return done
        self.finish(record, outp, errp, files)
        return done

    def one_move(self, job, pattern, text, outp, errp, local_turn, files):
        lines = lines_of(text)
        where = placement(lines)
        victims = self.victims(pattern, where, local_turn)
        moving = sorted(r for r, n in where.items() if n in victims)
        stops_before = sum(x[2] == "stopping for migration at" for x in lines)
        recovered_before = len(re.findall(RECOVERED_RE, hl.read(errp)))
        move = {"job": job, "pattern": pattern, "victims": victims,
                "completed": False, "recovered": 0}
        self.moves.append(move)
        t_drain = time.time()
        done = False
        r = self.c.run(f"scontrol update nodename={','.join(victims)} "
                       "state=drain reason=bench-soak", user="root", timeout=30)
        deadline = time.monotonic() + self.args.bound
        attempts = recovered_before
        stage = f"scontrol drain failed: {r.stdout}{r.stderr}".strip() \
            if r.rc != 0 else "nothing yet"
        while r.rc == 0:
            # Each relaunch attempt of the product's watchdog gets a whole
            # bound of its own: the product is still at work.
            seen = len(re.findall(RECOVERED_RE, hl.read(errp)))
            if seen > attempts:
                attempts = seen
                deadline = time.monotonic() + self.args.bound
            text = hl.read(outp)
            done, stage, rec = move_state(lines_of(text), stops_before, 4,
                                          set(victims))
            if done:
                break
            if "srun_exit=" in text:
                stage += "; the job's srun ended (" + \
                    re.search(r"srun_exit=\d*", text).group(0) + ")"
                break
            if time.monotonic() > deadline:
                stage += f"; not done within {self.args.bound:.0f} s"
                break
            time.sleep(0.3)
        move["recovered"] = len(re.findall(RECOVERED_RE, hl.read(errp))) - \
            recovered_before
        n = len(self.moves)
        if r.rc == 0 and done:
            move["completed"] = True
            move["downtime"] = rec["t_restored"] - rec["t_stop"]
            move["to_computing"] = rec["t_computing"] - rec["t_stop"]
            move["drain_to_restored"] = rec["t_restored"] - t_drain
            move["on_drained"] = rec["on_drained"]
            targets = sorted({rec["where"][r] for r in moving}, key=node_key)
            comment = cl.get_job_parameter(self.c, job, "SystemComment", "")
            m = re.search(r"\bmoves=(\d+)", comment)
            notes = []
            if move["recovered"]:
                notes.append(f"RECOVERED: {move['recovered']} restore-timeout "
                             "relaunch attempt(s)")
            if rec["stops"] > 4:
                notes.append(f"{rec['stops']} stopping lines (more than one capture)")
            job_moves = sum(1 for x in self.moves if x["job"] == job)
            if not m or int(m.group(1)) != job_moves:
                notes.append(f"SystemComment moves= is not {job_moves}")
            if rec["on_drained"]:
                notes.append(f"ranks {rec['on_drained']} restored ON A DRAINED NODE")
            self.out(f"    move {n:3d} {pattern:5s}: drain {','.join(victims)} "
                     f"(ranks {','.join(map(str, moving))}) -> {','.join(targets)}, "
                     f"iter {rec['iter']}: downtime {move['downtime']:.2f} s "
                     f"(computing {move['to_computing']:.2f} s, drain->restored "
                     f"{move['drain_to_restored']:.2f} s), "
                     f"moves={m.group(1) if m else '?'}"
                     + ("; " + "; ".join(notes) if notes else ""))
            if not self.resume(victims):
                self.out(f"    nodes {','.join(victims)} still drained after "
                         f"{RESUME_TIMEOUT} s")
        else:
            move["stage"] = stage
            d = self.keep(job, f"move {n} ({pattern}, drain {','.join(victims)}): "
                          f"{stage}", files)
            self.out(f"    move {n:3d} {pattern:5s}: drain {','.join(victims)} "
                     f"(ranks {','.join(map(str, moving))}): UNRECOVERED, job {job}: "
                     f"{stage}" + (f" ({move['recovered']} restore-timeout "
                                   "attempts)" if move["recovered"] else "")
                     + f"; logs in {d}")
            self.resume(victims)
        return move

    def finish(self, record, outp, errp, files):
        """Wait for the job's end; compare its checksum with the reference."""
        job = record["job"]
        text = hl.read(outp)
        left = max(self.args.iters - progress(text), 0)
        bound = 120 + 4 * left * SLEEP_MS / 1000
        text = cl.repeat_until(lambda: hl.read(outp), lambda t: "srun_exit=" in t,
                               timeout=bound)
        m = re.search(hl.DONE_RE, text, re.M)
        want = self.reference[record["local"]]
        if "srun_exit=0" in text and m and m.group(2) == want:
            record["result"] = "identical"
            self.out(f"    job {job}: checksum {want}, identical to the reference")
            return
        record["result"] = "wrong"
        ex = re.search(r"srun_exit=\d*", text)
        why = (f"checksum {m.group(2) if m else 'none'}, reference {want}, "
               f"{ex.group(0) if ex else f'srun still running after {bound:.0f} s'}")
        d = self.keep(job, f"result: {why}", files)
        self.out(f"    job {job}: NOT IDENTICAL: {why}; logs in {d}")
        if not ex:
            self.c.run(f"scancel {job}", user="root", timeout=30)
            cl.wait_for_job_state(self.c, job, "CANCELLED", timeout=60)

    def plan(self, n):
        """Jobs as lists of patterns: the shared-store migrations in chunks
        of --per-job, the local ones in chunks of LOCAL_MAX_MOVES,
        alternating shared and local jobs."""
        seq = [PATTERNS[i % len(PATTERNS)] for i in range(n)]
        shared = [p for p in seq if p != "local"]
        local = [p for p in seq if p == "local"]
        per = self.args.per_job
        sj = [shared[i:i + per] for i in range(0, len(shared), per)]
        lj = [local[i:i + LOCAL_MAX_MOVES] for i in range(0, len(local), LOCAL_MAX_MOVES)]
        jobs = []
        for i in range(max(len(sj), len(lj))):
            jobs += sj[i:i + 1] + lj[i:i + 1]
        return jobs

    def run(self, n):
        queue = self.plan(n)
        idle = 0
        while queue:
            planned = queue.pop(0)
            done = self.run_job(planned)
            # A job that did no move (its ranks did not start, or it had
            # too few iterations): 3 in a row end the bench.
            idle = idle + 1 if done == 0 else 0
            if idle >= 3:
                self.out("  3 jobs in a row did no move: ending the bench")
                self.set_store(False)
                return False
            if done < len(planned):
                queue.insert(0, planned[done:])
        self.set_store(False)
        return True

    def report(self, n_planned, complete):
        out = self.out
        out()
        out(f"{'pattern':8s} {'migrations':>10s} {'recovered':>9s} "
            f"{'unrecovered':>11s} {'in wrong jobs':>13s}   downtime s: "
            f"{'median':>6s} {'p95':>6s} {'max':>6s}   drain->restored s: "
            f"{'median':>6s} {'max':>6s}")
        wrong_jobs = {j["job"] for j in self.jobs if j["result"] == "wrong"}
        for pattern in PATTERNS + ("all",):
            ms = [m for m in self.moves if pattern in ("all", m["pattern"])]
            ok = [m for m in ms if m["completed"]]
            rec = sum(1 for m in ok if m["recovered"])
            unrec = len(ms) - len(ok)
            wrong = sum(1 for m in ms if m["job"] in wrong_jobs)
            med, p95, mx = pstats([m["downtime"] for m in ok])
            dmed, _, dmx = pstats([m["drain_to_restored"] for m in ok])
            out(f"{pattern:8s} {len(ms):10d} {rec:9d} {unrec:11d} {wrong:13d}   "
                f"{'':11s} {fmt(med):>6s} {fmt(p95):>6s} {fmt(mx):>6s}   "
                f"{'':18s} {fmt(dmed):>6s} {fmt(dmx):>6s}")
        ident = sum(1 for j in self.jobs if j["result"] == "identical")
        cancelled = [j["job"] for j in self.jobs if j["result"] == "cancelled"]
        out(f"jobs: {len(self.jobs)} ran moves ({sum(not j['local'] for j in self.jobs)} "
            f"shared store, {sum(j['local'] for j in self.jobs)} local); results "
            f"identical to the reference {ident}, not identical {len(wrong_jobs)}"
            + (f" (jobs {','.join(map(str, sorted(wrong_jobs)))})" if wrong_jobs else "")
            + f", cancelled after an unrecovered hang {len(cancelled)}"
            + (f" (jobs {','.join(map(str, cancelled))})" if cancelled else ""))
        out(f"jobs whose ranks did not all start (no move tried): "
            f"{len(self.start_failures)}"
            + (f" (jobs {','.join(map(str, self.start_failures))})"
               if self.start_failures else ""))
        unrec = [m for m in self.moves if not m["completed"]]
        for m in unrec:
            out(f"unrecovered: job {m['job']} {m['pattern']} drain "
                f"{','.join(m['victims'])}: {m['stage']}")
        if not complete or len(self.moves) < n_planned:
            out(f"INCOMPLETE: {len(self.moves)} of {n_planned} migrations tried")
        on_drained = sum(1 for m in self.moves if m.get("on_drained"))
        if on_drained:
            out(f"moves that restored a rank on a drained node: {on_drained}")
        ok = [m["downtime"] for m in self.moves if m["completed"]]
        med, p95, _ = pstats(ok)
        # Counts as shares with their exact 95 % interval: 0 of 200 says
        # "under 1.8 %", not "never".
        out(f"bench-soak: {len(self.moves)} migrations, {len(unrec)} unrecovered: "
            f"unrecovered / migrations ratio {bl.proportion_ci(len(unrec), len(self.moves))}; "
            f"{len(wrong_jobs)} wrong results: wrong / jobs ratio "
            f"{bl.proportion_ci(len(wrong_jobs), len(self.jobs))}; "
            f"(exact 95 % intervals, Clopper-Pearson); downtime median {fmt(med)} s "
            f"p95 {fmt(p95)} s")
        return not unrec and not wrong_jobs and complete


def positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text}: not a count >= 1")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--migrations", default="",
                    help="N migrations (default: $SOAK_N, else 50)")
    ap.add_argument("--per-job", type=positive, default=10,
                    help="shared-store migrations per job (default 10)")
    ap.add_argument("--iters", type=positive, default=2500,
                    help="heat iterations of a job (10 ms each; default 2500)")
    ap.add_argument("--bound", type=float, default=120.0,
                    help="seconds from a drain to all ranks computing again "
                    "before the move counts as an unrecovered hang (default 120)")
    ap.add_argument("--keep", default="",
                    help="directory for the logs of failures (default "
                    "/var/tmp/smig-bench-soak-DATE)")
    ap.add_argument("--out", default="", help="also write the output to this file")
    ap.add_argument("--debug", default="verbose",
                    help="SlurmctldDebug/SlurmdDebug of the cluster (default verbose)")
    args = ap.parse_args()
    raw = args.migrations or os.environ.get("SOAK_N", "") or "50"
    try:
        n = positive(raw)
    except (ValueError, argparse.ArgumentTypeError):
        sys.exit(f"bench-soak: migrations (SOAK_N) = '{raw}': not a count >= 1")
    if os.geteuid() != 0:
        sys.exit("bench-soak: starts Slurm daemons: run as root")
    if not args.keep:
        args.keep = "/var/tmp/smig-bench-soak-" + \
            datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = bl.Out(args.out)
    out(f"bench-soak: {n} drain migrations, patterns {', '.join(PATTERNS)} in turn")
    for line in bl.host_facts():
        out(line)
    out(f"heat --nx {NX} --ny {NY} --iters {args.iters} --sleep-ms {SLEEP_MS}; "
        "shared-store jobs: srun -N2 -n4 in sbatch -N4 --ntasks-per-node=2, "
        f"up to {args.per_job} moves; "
        f"local-store jobs: srun -N4 -n4 in sbatch -N4 --exclusive, up to {LOCAL_MAX_MOVES} moves; "
        f"bound {args.bound:.0f} s a move; failure logs to {args.keep}")
    out(f"recovered hang: a completed move after srun printed /{RECOVERED_RE}/; "
        "downtime: earliest 'stopping for migration' to latest 'restored' line")
    started = time.monotonic()
    with cl.bench_cluster("bench-soak", args.build, extra=("--debug", args.debug)) as c:
        soak = Soak(c, args, out)
        soak.references()
        complete = soak.run(n)
    out(f"run time {time.monotonic() - started:.0f} s, load average "
        f"{os.getloadavg()[0]:.2f} at the end")
    ok = soak.report(n, complete)
    out.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
