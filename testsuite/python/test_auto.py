# SPDX-License-Identifier: GPL-2.0-or-later
"""test_auto.py - the balancer moves ranks off a slow node by itself

With --migrate=auto the balancer decides from the node agents' samples
(src/common/smig_decide.c feeding smig_policy_decide()): a node whose
ranks get less of a core than the others' in every sample of a full window
(8 samples) is slow; the ranks move to a faster node (the allocation's
spare) when the predicted gain passes the engine's thresholds. With
--migrate=advise the same decision is only published (advice= in
SystemComment and `smig show`).

A node is slowed with the cpu cgroup quota of its per-node cgroup (the
harness starts each slurmd, and so its stepds and ranks, in one:
testsuite/cluster/up.sh). Costs here (2 cores): about 45 s per test.
"""

import json
import os
import random
import re
import time

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read, submit_started

# About 90 iterations/s unthrottled here: each rank computes ~2.5 ms (its
# 256 rows x 2048 columns) and sleeps 8 ms per iteration, so four ranks need
# about one of the two cores and a 5 % quota slows the job ~10x. The run
# lasts for a steady phase, a slowed phase of at least one window (8 s), the
# relaunch (several seconds on a loaded machine) and more than a full window
# after it (the measured gain needs 2 + 8 samples).
ITERS = 3200
HEAT_ARGS = f"--nx 2048 --ny 1024 --iters {ITERS} --sleep-ms 8 --report 5 --timestamps"
REPORT_RE = r"^heat: iter (\d+)/\d+ t=([\d.]+)$"
STARTT_RE = r"^heat: rank (\d+) node (\S+) (start|restored) iter (\d+) t=([\d.]+)$"
# 5 % of one core for the whole node (its two ranks, stepd and slurmd).
SLOW_QUOTA_US = 5000
PERIOD_US = 100000


def set_quota(c, node, quota_us):
    """NODE's CPU quota per PERIOD_US (-1: no limit), cgroup v2 or v1."""
    cl.set_cpu_quota(c, node, quota_us, PERIOD_US)


WINDOW = 8  # samples per node in a balancing decision (SMIG_METRICS_WINDOW)


def samples(c, job):
    """(samples taken, samples the last balancing decision saw) of JOB
    (`smig show --json`), (0, 0) while it cannot say."""
    r = smig(c, f"show {job} --json")
    if r.rc != 0:
        return 0, 0
    data = json.loads(r.stdout)
    return data.get("samples", 0), data.get("decided_samples", 0)


def decided_after(c, job, taken, windows, nodes=2, timeout=90):
    """Wait until the balancer decided on WINDOWS full windows of samples
    of the job's NODES nodes taken after TAKEN samples: the proof that it
    looked at them. Return (samples, decided_samples)."""
    want = taken + windows * WINDOW * nodes
    got = cl.repeat_until(lambda: samples(c, job), lambda s: s[1] >= want,
                          timeout=timeout)
    assert got[1] >= want, \
        f"the balancer decided on {got[1]} samples, not {want} ({got[0]} taken)"
    return got


def rate(reports, t0, t1):
    """Iterations per second between wall times t0 and t1, from rank 0's
    timestamped report lines [(iter, t)] (None: fewer than two lines)."""
    inside = [(i, t) for i, t in reports if t0 <= t <= t1]
    if len(inside) < 2 or inside[-1][1] <= inside[0][1]:
        return None
    return (inside[-1][0] - inside[0][0]) / (inside[-1][1] - inside[0][1])


def starts_t(text):
    """starts() of heat --timestamps lines: [(rank, node, kind, iter)]."""
    return [(int(r), n, k, int(i)) for r, n, k, i, _ in re.findall(STARTT_RE, text, re.M)]


def reports(text):
    return [(int(i), float(t)) for i, t in re.findall(REPORT_RE, text, re.M)]


def write_script(c, name, migrate, iters=ITERS):
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate={migrate} -N2 -n4 {heat_path(c)} "
                f"{HEAT_ARGS.replace(f'--iters {ITERS}', f'--iters {iters}')}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    return script


def submit(c, name, migrate, iters=ITERS):
    """sbatch -N3 --ntasks-per-node=2 (one spare node) running heat on two
    nodes; wait for the four start lines (the launch is retried on Open
    MPI's start-up flake). Return (job, output path, {rank: node}, spare)."""
    script = write_script(c, name, migrate, iters)
    job, out, text = submit_started(c, name, script, "-N3 --ntasks-per-node=2", 4,
                                    starts_fn=starts_t)
    first = {rank: node for rank, node, kind, _ in starts_t(text)}
    assert sorted(first) == [0, 1, 2, 3], f"job {job} did not start:\n{text}"
    alloc = c.run(f"scontrol show hostnames {cl.get_job_parameter(c, job, 'NodeList')}",
                  timeout=30).stdout.split()
    spare = sorted(set(alloc) - set(first.values()))
    assert len(spare) == 1, f"allocation {alloc}, step on {first}"
    return job, out, first, spare[0]


def system_comment(c, job):
    return cl.migration_state(c, job)


def smig(c, args):
    tool = os.path.join(c.build_dir, "contrib", "tools", "smig")
    return c.run(f"{tool} {args}", timeout=30)


def history(c, job):
    """The job's decisions (`smig history JOB --json`; a gain not known is
    null), [] once the job is gone."""
    r = smig(c, f"history {job} --json")
    return json.loads(r.stdout)["history"] if r.rc == 0 else []


@pytest.fixture(scope="module")
def reference_checksum(cluster):
    """Checksum of the same computation without --migrate, never moved."""
    args = HEAT_ARGS.replace("--sleep-ms 8", "--sleep-ms 0")
    r = cl.srun_mpi(cluster, f"-N2 -n4 {heat_path(cluster)} {args}",
                    started_re=START_RE, timeout=180)
    assert r.rc == 0, f"reference run failed:\n{r}"
    m = re.search(DONE_RE, r.stdout, re.M)
    assert m, f"reference run printed no checksum:\n{r}"
    return m.group(2)


def test_auto_slow_node(cluster, needs_plugins, needs_cpu_quota, reference_checksum):
    """A node of a running --migrate=auto job is slowed (cpu quota of 5 %
    of a core on its cgroup) and nobody acts: the balancer moves that
    node's two ranks to the spare node of the allocation with reason
    balance, SystemComment shows the move and the decision
    (last_decision=auto with its predicted gain), `smig history` lists the
    decision with the gain the balancer measured after the move (rate after
    / before - 1 >= 0.3), the iteration rate after the move is at least
    1.5 times the slowed rate, and the job completes with the checksum of
    a run that never moved."""
    c = cluster
    job, out, first, spare = submit(c, "auto_slow", "auto,interval=1s")
    slow = first[2]
    moving = sorted(r for r, n in first.items() if n == slow)
    try:
        # Steady: a few seconds of iterations before the slowdown.
        cl.repeat_until(lambda: reports(read(out)),
                        lambda r: len(r) >= 10, timeout=60)
        t_slow = time.time()
        set_quota(c, slow, SLOW_QUOTA_US)

        want = (f"moves=1 last_move=ranks={','.join(map(str, moving))};"
                f"from={slow};to={spare};reason=balance")
        comment = cl.repeat_until(lambda: system_comment(c, job),
                                  lambda s: "moves=1" in s, timeout=90)
        assert want in comment, \
            f"SystemComment={comment!r}, expected {want!r}\n{read(out)}"
        m = re.search(r" last_decision=auto;gain=([\d.]+)", comment)
        assert m and float(m.group(1)) >= 0.2, f"SystemComment={comment!r}"

        # The balancer measures the gain once the relaunched ranks have a
        # full window of samples (about 10 s): ask while the job runs.
        hist = cl.repeat_until(
            lambda: history(c, job),
            lambda h: any(e["measured_gain"] is not None for e in h) or
            "srun_exit=" in read(out), timeout=90)
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED" and "srun_exit=0" in text, \
            f"job {job} ended {state}:\n{text}"
    finally:
        set_quota(c, slow, -1)
        c.run(f"scancel {job}", user="root", timeout=30)

    m = re.search(DONE_RE, text, re.M)
    assert m and m.group(1) == str(ITERS), f"no final checksum:\n{text}"
    assert m.group(2) == reference_checksum, \
        f"checksum {m.group(2)} != {reference_checksum} without migration"

    restored = {rank: node for rank, node, kind, _ in starts_t(text) if kind == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
    for rank in range(4):
        assert restored[rank] == (spare if rank in moving else first[rank]), \
            f"ranks {moving} should be on {spare}, the others stay: {restored}"
    stops = [float(t) for t in re.findall(
        r"^heat: rank \d+ stopping for migration at iter \d+ t=([\d.]+)$", text, re.M)]
    assert len(stops) == 4, text
    back = [float(t) for _, _, t in re.findall(
        r"^heat: rank (\d+) node (\S+) restored iter \d+ t=([\d.]+)$", text, re.M)]
    assert stops and back, text
    # The slowed phase: from the slowdown (plus the first throttled
    # second) to the stop; after: from the restart to the end.
    rep = reports(text)
    before = rate(rep, 0, t_slow)
    slowed = rate(rep, t_slow + 1, min(stops))
    after = rate(rep, max(back), rep[-1][1])
    facts = (f"rates before {before}, slowed {slowed}, after {after}; "
             f"moved {min(stops) - t_slow:.1f} s after the slowdown")
    assert slowed is not None and after is not None, \
        f"too few report lines ({facts}):\n{text}"
    assert after >= 1.5 * slowed, f"rate not back after the move: {facts}"
    # The decision in the history, with the balancer's own measurement.
    moves = [e for e in hist if e["kind"] == "auto"]
    assert len(moves) == 1, f"history {hist} ({facts})"
    e = moves[0]
    assert e["outcome"] == "moved" and e["from"] == slow and e["to"] == spare \
        and e["reason"] == "balance" and e["predicted_gain"] >= 0.2, e
    assert (e["measured_gain"] or -1) >= 0.3, f"history {hist} ({facts})"


def test_auto_no_pingpong(cluster, needs_plugins, needs_cpu_quota):
    """Random short bursts (2-4 s of a 5 % cpu quota, each shorter than
    the balancer's 8-sample window, on one node of the job at a time, with
    pauses of 1-3 s) over 40 s make the balancer move the --migrate=auto
    job at most once; the job keeps running."""
    c = cluster
    job, out, first, spare = submit(c, "auto_burst", "auto,interval=1s",
                                    iters=100000)
    nodes = sorted(set(first.values()))
    rnd = random.Random(8)
    bursts = []
    try:
        cl.repeat_until(lambda: reports(read(out)),
                        lambda r: len(r) >= 5, timeout=60)
        end = time.time() + 40
        while time.time() < end:
            node = rnd.choice(nodes)
            length = rnd.uniform(2, 4)
            set_quota(c, node, SLOW_QUOTA_US)
            bursts.append((node, round(length, 1)))
            time.sleep(length)
            set_quota(c, node, -1)
            time.sleep(rnd.uniform(1, 3))
        # A decision on the last burst's window comes before the balancer
        # decided on a whole window of samples taken after it.
        decided_after(c, job, samples(c, job)[0], 1)
        comment = system_comment(c, job)
        state = cl.get_job_parameter(c, job, "JobState")
    finally:
        for node in nodes:
            set_quota(c, node, -1)
        c.run(f"scancel {job}", user="root", timeout=30)
    m = re.search(r" moves=(\d+)", comment)
    # Samples kept coming (load=): the balancer could decide all along.
    assert m and " load=" in comment, f"SystemComment={comment!r}"
    assert int(m.group(1)) <= 1, \
        f"{m.group(1)} moves for bursts {bursts}: {comment!r}\n{read(out)}"
    assert state == "RUNNING", f"job {job} {state} during the bursts:\n{read(out)}"
    assert len(bursts) >= 6, bursts


def test_advise(cluster, needs_plugins, needs_cpu_quota):
    """--migrate=advise with a slowed node: the advice to move that node's
    ranks to the spare (reason balance) appears in SystemComment, in
    `smig show JOB` and its --json state, with last_decision=advise; no
    rank ever stops or restarts, moves stays 0, and the ranks run on their
    first nodes to the end of the observation."""
    c = cluster
    job, out, first, spare = submit(c, "advise", "advise,interval=1s",
                                    iters=100000)
    slow = first[1]
    moving = sorted(r for r, n in first.items() if n == slow)
    advice = (f"advice=ranks={','.join(map(str, moving))};from={slow};"
              f"to={spare};reason=balance")
    try:
        cl.repeat_until(lambda: reports(read(out)),
                        lambda r: len(r) >= 5, timeout=60)
        set_quota(c, slow, SLOW_QUOTA_US)
        comment = cl.repeat_until(lambda: system_comment(c, job),
                                  lambda s: "advice=" in s, timeout=60)
        assert comment.startswith("mode=advise gen=0 moves=0 ") and \
            advice in comment, f"SystemComment={comment!r}, expected {advice!r}"
        assert " last_decision=advise;gain=" in comment, comment

        r = smig(c, f"show {job}")
        assert r.rc == 0 and advice in r.stdout.splitlines()[0], f"smig show:\n{r}"
        r = smig(c, f"show {job} --json")
        assert r.rc == 0, f"smig show --json:\n{r}"
        assert advice in json.loads(r.stdout)["state"], r.stdout

        # Advice stays advice: decisions on two more whole windows.
        decided_after(c, job, samples(c, job)[0], 2)
        comment = system_comment(c, job)
        text = read(out)
        state = cl.get_job_parameter(c, job, "JobState")
    finally:
        set_quota(c, slow, -1)
        c.run(f"scancel {job}", user="root", timeout=30)
    assert " moves=0" in comment and "last_move" not in comment, comment
    assert state == "RUNNING", f"job {job} {state}:\n{text}"
    assert "stopping for migration" not in text and \
        all(kind == "start" for _, _, kind, _ in starts_t(text)), \
        f"a rank moved under advise:\n{text}"
    assert {r: n for r, n, _, _ in starts_t(text)} == first, text
