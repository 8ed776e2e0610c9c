# SPDX-License-Identifier: GPL-2.0-or-later
"""test_topology.py - Slurm's switch tree decides where ranks go

* test_topology_pairs_share_switch: on a cluster with a switch tree (up.sh
  --topology: s0 = node1, node2; s1 = node3, node4; one spine), a job with
  one rank per node whose heavy pairs (0-2, 1-3) start under different leaf
  switches is moved by the balancer so that each pair shares a leaf switch;
  `smig history` gives reason "topology", the bytes per iteration by switch
  level and a predicted gain; `smig show` names each rank's switch and the
  traffic by switch pair. On a flat network no placement of this job is
  better than another (every pair crosses nodes whatever happens): only the
  switch levels can decide this move.
* test_topology_drain_near_partner: the same cluster, a job in mode manual
  with one rank per node and a free slot on each; draining the node of
  rank 0 sends rank 0 to the node of its heavy partner (rank 2, under the
  other leaf switch), where a flat network takes the first free slot in
  allocation order, under the drained node's own leaf switch.
"""

import os
import time

import pytest

import cluster as cl
from heat import read, submit_started
from test_manual import (first_auto_decision, hostnames, pairs_starts,
                         show_json, smig)

LEAF = {"node1": "s0", "node2": "s0", "node3": "s1", "node4": "s1"}


@pytest.fixture(scope="module")
def topo_cluster(cluster, request):
    """A cluster with a switch tree (up.sh --topology): the session's own
    if it runs in that mode, else a second one for this module, stopped
    after; its directory is removed unless a test failed. The session's
    cluster stays flat, as every other test wants it."""
    yield from cl.module_cluster(cluster, request, "topology", ["--topology"],
                                 "SMIG_TOPOLOGY")


def test_topology_pairs_share_switch(topo_cluster, needs_plugins):
    """Ranks 0-2 and 1-3 exchange 16 MiB each way per iteration
    (contrib/examples/pairs --iters), one rank per node (one slot each:
    nothing can share a node), in rank order: both pairs cross the spine.
    With --migrate=auto,affinity,interval=1s the balancer swaps ranks so
    that each pair is under one leaf switch (history: kind auto, outcome
    moved, reason topology, why naming the switch levels, a predicted
    gain); `smig show` lists each rank's switch and the switch traffic, and
    after the move the bytes crossing the spine are a small part. The job
    completes. About 90 s. A relaunch whose ranks do not all restore fails
    the test (the relaunch watchdog's job, never a rerun here)."""
    c = topo_cluster
    r = c.run("scontrol show topology", user="root", timeout=30)
    assert r.rc == 0 and "SwitchName=s0" in r.stdout and \
        "SwitchName=spine" in r.stdout, f"Slurm has no switch tree:\n{r}"
    log = c.log_path("smigd")
    assert "switch tree: 3 switches in 2 levels" in read(log), \
        f"smigd did not read the switch tree:\n{read(log)[-3000:]}"

    pairs = os.path.join(c.build_dir, "contrib", "examples", "pairs")
    script = os.path.join(c.workdir, "topology.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "srun --mpi=pmix --migrate=auto,affinity,interval=1s -N4 -n4 "
                f"{pairs} --iters 2500 --pairs 0:2,1:3 --big 16777216 "
                "--sleep-ms 10\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "topology", script,
                                    "-N4 --ntasks-per-node=1 -t 10", 4,
                                    starts_fn=pairs_starts)
    first = {r: n for r, n, _, _ in pairs_starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    assert LEAF[first[0]] != LEAF[first[2]] and \
        LEAF[first[1]] != LEAF[first[3]], \
        f"heavy pairs do not start under different switches: {first}"
    try:
        # smig show: each rank's switch, traffic by switch pair.
        before = cl.repeat_until(
            lambda: show_json(c, job),
            lambda s: s and s["switch_traffic"] and
            any(e["from"] != e["to"] for e in s["switch_traffic"]),
            timeout=30)
        assert before and before["switch_traffic"], \
            f"no switch traffic in smig show: {before}"
        assert {r["rank"]: r["switch"] for r in before["ranks"]} == \
            {r: LEAF[n] for r, n in first.items()}, before["ranks"]
        shown = smig(c, f"show {job}", timeout=30)
        assert shown.rc == 0 and "SWITCH TRAFFIC" in shown.stdout and \
            any(line.split()[:3] == ["RANK", "NODE", "SWITCH"]
                for line in shown.stdout.splitlines()), \
            f"smig show has no switches:\n{shown}"

        decision = first_auto_decision(c, job, out, 120)
        assert decision["outcome"] == "moved" and \
            decision["reason"] == "topology", \
            f"decision: {decision} (why: {decision['why']})"
        assert "Topology (switch levels)" in decision["why"] and \
            "via a level-1 switch" in decision["why"], decision["why"]
        assert decision.get("predicted_gain", 0) > 0, decision
        text_hist = smig(c, f"history {job}", timeout=30)
        assert text_hist.rc == 0 and "topology" in text_hist.stdout, \
            f"smig history:\n{text_hist}"

        text = cl.repeat_until(lambda: read(out),
                               lambda t: len([s for s in pairs_starts(t)
                                              if s[2] == "restored"]) >= 4,
                               timeout=60)
        assert len([s for s in pairs_starts(text) if s[2] == "restored"]) >= 4, \
            f"the relaunched step's ranks did not all restore in 60 s:\n{text}"
        where = {r: n for r, n, _, _ in pairs_starts(text)}
        assert LEAF[where[0]] == LEAF[where[2]] and \
            LEAF[where[1]] == LEAF[where[3]], \
            f"heavy pairs still under different switches: {where}\n{text}"

        # The new placement's samples: bytes stay under the leaf switches.
        def moved_status():
            s = show_json(c, job)
            if not s or {r["rank"]: r["node"] for r in s["ranks"]} != where:
                return None
            return s
        after = cl.repeat_until(moved_status, lambda s: s is not None,
                                timeout=30)
        assert after, f"STATUS never showed the new placement {where}"
        time.sleep(3)
        after = show_json(c, job)
        total = sum(e["bytes"] for e in after["switch_traffic"])
        cross = sum(e["bytes"] for e in after["switch_traffic"]
                    if e["from"] != e["to"])
        assert total and cross / total < 0.2, \
            f"bytes crossing switches after the move: " \
            f"{after['switch_traffic']} (before {before['switch_traffic']})"

        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED" and "srun_exit=0" in text and \
            "pairs: done iters=2500 ranks=4" in text, \
            f"job {job} ended {state}:\n{text}"
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)


def test_topology_drain_near_partner(topo_cluster, needs_plugins):
    """Ranks 0-2 and 1-3 exchange 16 MiB each way per iteration, one rank
    per node in a 4-node allocation of 2 slots a node, mode manual (no
    balancing move). Once smigd has the pairs' traffic, the node of rank 0
    is drained: rank 0 alone moves, to the node of rank 2 (its partner,
    under the other leaf switch), not to the first free slot in allocation
    order (under the drained node's leaf switch: the test checks that the
    two differ, so that the old rule fails it). SystemComment names the
    move; the job completes all its iterations. About 60 s."""
    c = topo_cluster
    pairs = os.path.join(c.build_dir, "contrib", "examples", "pairs")
    script = os.path.join(c.workdir, "topology-drain.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "srun --mpi=pmix --migrate=manual,affinity,interval=1s "
                f"-N4 -n4 --ntasks-per-node=1 {pairs} --iters 2500 "
                "--pairs 0:2,1:3 --big 16777216 --sleep-ms 10\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "topology-drain", script,
                                    "-N4 --ntasks-per-node=2 -t 10", 4,
                                    starts_fn=pairs_starts)
    first = {r: n for r, n, _, _ in pairs_starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim, partner = first[0], first[2]
    assert LEAF[victim] != LEAF[partner], \
        f"ranks 0 and 2 start under one switch: {first}"
    alloc = hostnames(c, cl.get_job_parameter(c, job, "NodeList"))
    flat = next(n for n in alloc if n != victim)
    assert LEAF[flat] == LEAF[victim], \
        f"allocation {alloc}: the flat rule's target {flat} is not under " \
        f"{victim}'s switch, the test would not tell the rules apart"
    drained = False
    try:
        # The pairs' traffic is in smigd's samples before the drain.
        seen = cl.repeat_until(
            lambda: show_json(c, job),
            lambda s: s and s["switch_traffic"] and
            any(e["from"] != e["to"] for e in s["switch_traffic"]),
            timeout=30)
        assert seen and seen["switch_traffic"], \
            f"no switch traffic in smig show: {seen}"
        r = c.run(f"scontrol update nodename={victim} state=drain "
                  "reason=topology-test", user="root", timeout=30)
        assert r.rc == 0, f"drain {victim} failed:\n{r}"
        drained = True
        want = (f"mode=manual gen=1 moves=1 last_move=ranks=0;"
                f"from={victim};to={partner};reason=drain")
        comment = cl.repeat_until(lambda: cl.migration_state(c, job),
                                  lambda s: "last_move=" in s, timeout=60)
        assert comment == want, \
            f"SystemComment={comment!r}, expected {want!r}\n{read(out)}"
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED" and "srun_exit=0" in text and \
            "pairs: done iters=2500 ranks=4" in text, \
            f"job {job} ended {state}:\n{text}"
        where = {r: n for r, n, _, _ in pairs_starts(text)}
        assert where[0] == partner, f"rank 0 restored on {where[0]}:\n{text}"
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)
        if drained:
            c.run(f"scontrol update nodename={victim} state=resume",
                  user="root", timeout=30)
