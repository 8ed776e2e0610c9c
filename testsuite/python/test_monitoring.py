# SPDX-License-Identifier: GPL-2.0-or-later
"""test_monitoring.py - per-rank load and communication affinity, as users see them

The node agents sample each rank every second (--migrate=...,interval=1s)
and send SAMPLE messages to the balancer, which keeps rolling windows and
publishes a load= summary in SystemComment; `smig show` asks the balancer
(QUERY/STATUS) for the per-rank table and the top communicating pairs,
which the PMPI layer counts when the step asks for affinity.
"""

import json
import os
import re

import pytest

import cluster as cl
from heat import START_RE, read

SUMMARY_RE = (r"mode=advise gen=0 moves=0( advice=\S+)?(?: last_decision=\S+)? "
              r"load=imbalance:(\d+\.\d\d),hot:rank(\d+)@(\S+),node:(\S+)")


def tool(c, name):
    path = os.path.join(c.build_dir, *name.split("/"))
    assert os.access(path, os.X_OK), f"{path}: build it first"
    return path


def submit(c, name, srun_line, ready, attempts=3):
    """sbatch -N2 --ntasks-per-node=2 a script running SRUN_LINE; wait until
    READY(output text) is true. A job that ended before, failing with Open
    MPI's own start-up failure (cl.job_start_retry), is launched again.
    Return (job id, output path)."""
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write(f"#!/bin/bash\n{srun_line}\necho srun_exit=$?\n")
    os.chmod(script, 0o755)
    for attempt in range(1, attempts + 1):
        out = os.path.join(c.workdir, f"{name}.{attempt}.out")
        marks = cl.log_marks(c)
        job = cl.submit_job(c, f"-N2 --ntasks-per-node=2 -o {out} {script}")
        seen = cl.repeat_until(
            lambda: (read(out), cl.get_job_parameter(c, job, "JobState")),
            lambda t: ready(t[0]) or t[1] in cl.TERMINAL_STATES, timeout=90)
        if ready(read(out)) and seen[1] not in cl.TERMINAL_STATES:
            return job, out
        text = read(out)
        again = cl.job_start_retry(c, job, text, 0, 4, attempt, attempts, marks,
                                   timed_out=seen[1] not in cl.TERMINAL_STATES)
        c.run(f"scancel {job}", user="root", timeout=30)
        if not again:
            pytest.fail(f"job {job} did not start (state {seen[1]}):\n{text}")
    raise AssertionError("unreachable")


def smig_json(c, job):
    r = c.run(f"{tool(c, 'contrib/tools/smig')} show {job} --json", timeout=30)
    if r.rc != 0:
        return None, r
    return json.loads(r.stdout), r


def test_monitoring_hot_rank(cluster, needs_plugins):
    """One rank of four made busier (rank 2 runs two extra spinning threads)
    is named the hottest rank by `smig show JOBID` (highest CPU share in the
    per-rank table, --json and text) and by the load= summary that scontrol
    shows in SystemComment (hot:rank2@<its node>); the table lists all four
    ranks with node, CPU share, run delay, memory and progress; a user who
    does not own the job is refused."""
    c = cluster
    heat = tool(c, "contrib/examples/heat")
    job, out = submit(
        c, "hot",
        f"srun --mpi=pmix --migrate=advise,interval=1s -N2 -n4 {heat} "
        "--nx 64 --ny 64 --iters 100000 --sleep-ms 20 "
        "--busy-rank 2 --busy-threads 2",
        lambda t: len(re.findall(START_RE, t, re.M)) >= 4)
    try:
        nodes = {int(r): n for r, n, _, _ in re.findall(START_RE, read(out), re.M)}

        def state():
            data, _ = smig_json(c, job)
            comment = cl.migration_state(c, job)
            return data, comment

        def hot_everywhere(t):
            data, comment = t
            if not data or len(data["ranks"]) < 4:
                return False
            # A few samples in the window, so one noisy second cannot win.
            if min(len(r["cpu_history"]) for r in data["ranks"]) < 3:
                return False
            # Progress is a rate: known from a rank's second sample on.
            if any(r["iters_per_s"] is None for r in data["ranks"]):
                return False
            top = max(data["ranks"], key=lambda r: r["cpu"])
            m = re.fullmatch(SUMMARY_RE, comment)
            return top["rank"] == 2 and m and m.group(3) == "2"

        data, comment = cl.repeat_until(state, hot_everywhere, timeout=60)
        assert data and len(data["ranks"]) == 4, f"smig show --json: {data}"
        by_rank = {r["rank"]: r for r in data["ranks"]}
        assert max(by_rank.values(), key=lambda r: r["cpu"])["rank"] == 2, \
            f"rank 2 is not the hottest: {by_rank}"
        for rank, r in by_rank.items():
            assert r["node"] == nodes[rank], f"rank {rank}: {r} vs {nodes}"
            assert r["rss"] > 0 and r["delay"] >= 0, r
            # heat calls smig_safepoint() once per iteration.
            assert r["iters_per_s"] is not None and r["iters_per_s"] > 0, r
        m = re.fullmatch(SUMMARY_RE, comment)
        assert m, f"SystemComment={comment!r}"
        assert m.group(3) == "2" and m.group(4) == nodes[2], comment
        assert float(m.group(2)) > 1.2, f"imbalance too small: {comment}"

        r = c.run(f"{tool(c, 'contrib/tools/smig')} show {job}", timeout=30)
        assert r.rc == 0, f"smig show failed:\n{r}"
        assert r.stdout.startswith(f"JobId={job} mode=advise"), r.stdout
        rows = re.findall(r"^\s+(\d+)\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)$",
                          r.stdout, re.M)
        assert len(rows) == 4, f"per-rank table:\n{r.stdout}"
        hottest = max(rows, key=lambda row: float(row[2]))
        assert hottest[0] == "2", f"text table disagrees:\n{r.stdout}"

        r = c.run(f"{tool(c, 'contrib/tools/smig')} show {job}", user="nobody",
                  cwd="/", timeout=30)
        assert r.rc == 1 and "refused QUERY" in r.stderr and \
            "is not the owner" in r.stderr, f"non-owner was not refused:\n{r}"
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)


def test_monitoring_affinity(cluster, needs_plugins):
    """Ranks 1 and 2 of four exchange 10 x 1 MiB each way while every pair
    exchanges 1000 bytes each way once (contrib/examples/pairs, counted by
    libsmig_pmpi.so that the agent preloads for --migrate=...,affinity):
    `smig show` lists the pair 1-2 on top with exactly 2 x (1000 + 10 x
    1048576) bytes, the other pairs with 2000 bytes, a node traffic matrix,
    and `smig plot` draws an SVG of the affinity matrix."""
    c = cluster
    pairs = tool(c, "contrib/examples/pairs")
    want = 2 * (1000 + 10 * 1048576)
    job, out = submit(
        c, "pairs",
        f"srun --mpi=pmix --migrate=advise,interval=1s,affinity -N2 -n4 "
        f"{pairs} --a 1 --b 2 --small 1000 --big 1048576 --rounds 10 --hold 30",
        lambda t: True)
    try:
        def top_pair(t):
            data = t[0]
            return bool(data and data["pairs"] and
                        data["pairs"][0]["bytes"] == want and
                        len(data["pairs"]) == 6)

        data, r = cl.repeat_until(lambda: smig_json(c, job), top_pair,
                                  timeout=60)
        assert data, f"smig show --json failed:\n{r}"
        top = data["pairs"][0]
        assert top["ranks"] == [1, 2] and top["bytes"] == want, \
            f"top pair {top}, want ranks [1, 2] with {want} bytes: {data['pairs']}"
        assert top["msgs"] == 2 * (1 + 10), top
        rest = data["pairs"][1:]
        assert all(p["bytes"] == 2000 for p in rest), rest
        assert data["node_traffic"], data

        r = c.run(f"{tool(c, 'contrib/tools/smig')} show {job}", timeout=30)
        assert r.rc == 0, f"smig show failed:\n{r}"
        m = re.search(r"^TOP PAIRS.*\n.*\n\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$",
                      r.stdout, re.M)
        assert m and m.groups()[:3] == ("1", "2", str(want)), r.stdout
        assert "NODE TRAFFIC" in r.stdout, r.stdout

        svg = os.path.join(c.workdir, f"affinity-{job}.svg")
        r = c.run(f"{tool(c, 'contrib/tools/smig')} plot {job} --out {svg}",
                  timeout=30)
        assert r.rc == 0, f"smig plot failed:\n{r}"
        text = read(svg)
        assert text.startswith("<?xml") and "</svg>" in text, text[:200]
        assert f"1-2: {want} bytes" in text, "pair 1-2 missing in the SVG"
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)
