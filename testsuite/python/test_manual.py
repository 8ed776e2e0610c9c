# SPDX-License-Identifier: GPL-2.0-or-later
"""test_manual.py - moves asked for by people, and the balancer's own choices

* test_manual_move: `smig move` by the job's owner and by root moves ranks of
  a running step where they asked; another user is refused.
* test_manual_cli_usage: usage errors of every subcommand exit 2 (no cluster
  job needed).
* test_auto_affinity: ranks that exchange most of the bytes start on
  different nodes; with --migrate=auto,affinity the balancer brings them
  together and the bytes crossing nodes drop.
"""

import json
import os
import re
import time

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read, starts, submit_started

# About 20 s of compute (iters x sleep-ms): room for two moves.
HEAT_ARGS = "--nx 96 --ny 64 --iters 800 --sleep-ms 25 --report 50"


def smig(c, args, user=None, timeout=60):
    """Run the build's smig tool with ARGS as USER (default: the test user)."""
    path = os.path.join(c.build_dir, "contrib", "tools", "smig")
    assert os.access(path, os.X_OK), f"{path}: build it first"
    return c.run(f"{path} {args}", user=user, timeout=timeout)


def hostnames(c, hostlist):
    r = c.run(f"scontrol show hostnames {hostlist}", user="root", timeout=30)
    assert r.rc == 0, f"scontrol show hostnames failed:\n{r}"
    return r.stdout.split()


@pytest.fixture(scope="module")
def reference_checksum(cluster):
    """Checksum of the same computation without --migrate and without a move."""
    args = HEAT_ARGS.replace("--sleep-ms 25", "--sleep-ms 0")
    r = cl.srun_mpi(cluster, f"-N2 -n4 {heat_path(cluster)} {args}",
                    started_re=START_RE, timeout=120)
    assert r.rc == 0, f"reference run failed:\n{r}"
    m = re.search(DONE_RE, r.stdout, re.M)
    assert m, f"reference run printed no checksum:\n{r}"
    return m.group(2)


def heat_script(c, name, migrate, heat_args=HEAT_ARGS):
    """A batch script running heat's 4 ranks on 2 of the allocation's nodes."""
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate={migrate} -N2 -n4 "
                f"{heat_path(c)} {heat_args}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    return script


def latest_starts(text):
    """{rank: node} of the last start or restore line of each rank."""
    where = {}
    for rank, node, _, _ in starts(text):
        where[rank] = node
    return where


def wait_history(c, job, count, timeout=60):
    """`smig history JOB --json` until it lists COUNT entries (or TIMEOUT);
    return the parsed entries of the last answer."""
    def get():
        r = smig(c, f"history {job} --json", timeout=30)
        if r.rc != 0:
            return []
        return json.loads(r.stdout)["history"]
    return cl.repeat_until(get, lambda h: len(h) >= count, timeout=timeout)


def test_manual_cli_usage(cluster):
    """Every smig subcommand exits 2 on a usage error and names what is
    wrong (smig capture exited 1 before), without asking the balancer."""
    c = cluster
    cases = [
        ("", "Usage: smig COMMAND"),
        ("bogus 1", "bogus: unknown command"),
        ("show", "JOBID missing"),
        ("plot 1", "JOBID and --out FILE.svg needed"),
        ("capture", "Usage: smig capture"),
        ("capture 0", "JOBID=0: not a job id"),
        ("capture 1 --step x", "--step=x: not a number"),
        ("move 1 --to node1", "--ranks missing"),
        ("move 1 --ranks 2", "--to missing"),
        ("move x --ranks 2 --to node1", "JOBID=x: not a job id"),
        ("rebalance", "JOBID missing"),
        ("rebalance 1 --bogus", "--bogus: unexpected argument"),
        ("history", "JOBID missing"),
        ("history 1 --bogus", "--bogus: unexpected argument"),
    ]
    for args, words in cases:
        r = smig(c, args, timeout=30)
        assert r.rc == 2, f"smig {args}: exit {r.rc}, not 2:\n{r}"
        assert words in r.stderr, f"smig {args}: {words!r} not said:\n{r}"


def test_manual_move(cluster, needs_plugins, reference_checksum):
    """The job's owner moves ranks 2,3 to the spare node of the allocation
    with `smig move --wait`: they restore there from one safe point; another
    ordinary user is refused with the reason; root moves rank 1 to the node
    ranks 2,3 left (the step then spans three nodes, more than its -N2: the
    relaunch must say --nodes=3). The job completes with the checksum of a run without
    moves, SystemComment counts 2 moves, and `smig history` lists both as
    kind request, outcome moved. About 40 s."""
    c = cluster
    user2 = c.env["SMIG_TEST_USER2"]
    script = heat_script(c, "manual_move", "manual")
    job, out, text = submit_started(c, "manual_move", script,
                                    "-N3 --ntasks-per-node=2", 4)
    first = latest_starts(text)
    assert sorted(first) == [0, 1, 2, 3], text
    alloc = hostnames(c, cl.get_job_parameter(c, job, "NodeList"))
    spare = sorted(set(alloc) - set(first.values()))
    assert len(spare) == 1 and first[2] == first[3] and first[0] == first[1] \
        and first[0] != first[2], f"unexpected placement {first} in {alloc}"
    spare = spare[0]
    try:
        r = smig(c, f"move {job} --ranks 2,3 --to {spare}", user=user2)
        assert r.rc == 1, f"another user's move was not refused:\n{r}"
        assert "the balancer refused REQUEST: uid" in r.stderr and \
            "is not the owner" in r.stderr, r

        r = smig(c, f"move {job} --ranks 2,3 --to nosuchnode")
        assert r.rc == 1 and "to=nosuchnode: not a node of the job's allocation" \
            in r.stderr, f"bad node not refused by name:\n{r}"

        r = smig(c, f"move {job} --ranks 2-3 --to {spare} --wait 90",
                 timeout=120)
        assert r.rc == 0, f"owner's move failed:\n{r}\n{read(out)}"
        assert re.search(rf"move started StepId=\d+:gen=1 ranks=2,3;from={first[2]};"
                         rf"to={spare};reason=request", r.stdout), r
        assert "moved (generation 1)" in r.stdout, r
        seen = cl.repeat_until(lambda: read(out),
                               lambda t: len([s for s in starts(t)
                                              if s[2] == "restored"]) >= 4,
                               timeout=60)
        after = latest_starts(seen)
        assert after == {0: first[0], 1: first[1], 2: spare, 3: spare}, \
            f"after the owner's move: {after}\n{seen}"

        r = smig(c, f"move {job} --ranks 1 --to {first[2]} --wait 90",
                 user="root", timeout=120)
        assert r.rc == 0, f"root's move failed:\n{r}\n{read(out)}"
        assert "moved (generation 2)" in r.stdout, r
        # The balancer forgets the job when it ends: read it now.
        hist = wait_history(c, job, 2)
        moves = [(h["kind"], h["ranks"], h["from"], h["to"], h["outcome"])
                 for h in hist if h["kind"] == "request"]
        assert moves == [("request", "2,3", first[2], spare, "moved"),
                         ("request", "1", first[0], first[2], "moved")], \
            f"history: {hist}"
        r = smig(c, f"history {job}")
        assert r.rc == 0 and re.search(rf"request\s+2,3\s+{first[2]}->{spare}\s",
                                       r.stdout), f"history table:\n{r}"

        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == reference_checksum, \
            f"checksum {m and m.group(2)} != {reference_checksum}:\n{text}"
        final = latest_starts(text)
        assert final == {0: first[0], 1: first[2], 2: spare, 3: spare}, \
            f"final placement {final}\n{text}"
        line = cl.migration_state(c, job)
        assert re.match(r"mode=manual gen=2 moves=2 last_move=ranks=1;"
                        rf"from={first[0]};to={first[2]};reason=request", line), line
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)



PAIRS_START_RE = r"^pairs: rank (\d+) node (\S+) (start|restored) iter (\d+)$"


def pairs_starts(text):
    """[(rank, node, "start"|"restored", iter)] of pairs' lines so far."""
    return [(int(r), n, k, int(i))
            for r, n, k, i in re.findall(PAIRS_START_RE, text, re.M)]


def cross_share(status):
    """Share of the bytes in STATUS's node traffic matrix (smig show --json
    node_traffic) sent between different nodes; None without traffic."""
    total = sum(e["bytes"] for e in status["node_traffic"])
    cross = sum(e["bytes"] for e in status["node_traffic"]
                if e["from"] != e["to"])
    return cross / total if total else None


def show_json(c, job):
    r = smig(c, f"show {job} --json", timeout=30)
    return json.loads(r.stdout) if r.rc == 0 else None


def first_auto_decision(c, job, out, timeout):
    """The first automatic decision of JOB that is no longer pending
    (`smig history --json`), waited for TIMEOUT s; OUT is the job's output,
    shown if none comes."""
    hist = cl.repeat_until(
        lambda: smig(c, f"history {job} --json", timeout=30),
        lambda r: r.rc == 0 and any(
            h["kind"] == "auto" and h["outcome"] != "pending"
            for h in json.loads(r.stdout)["history"]),
        timeout=timeout)
    assert hist.rc == 0, f"smig history failed:\n{hist}"
    entries = json.loads(hist.stdout)["history"]
    auto = [h for h in entries if h["kind"] == "auto"]
    assert auto, f"no automatic decision in {timeout} s: {entries}\n{read(out)}"
    print(f"decision: {auto[0]}")
    return auto[0]


def test_auto_affinity(cluster, needs_plugins):
    """Ranks 0-2 and 1-3 exchange 2 MiB each way per iteration
    (contrib/examples/pairs --iters) and start apart (0,1 on one node, 2,3
    on the other); with --migrate=auto,affinity,interval=1s the balancer
    moves ranks by itself (history: kind auto, outcome moved) so that 0 shares a node with 2 and 1 with 3; afterwards the share
    of bytes crossing nodes in the node traffic matrix drops from most of
    them to a small part, and the job completes. About 50 s.
    A relaunch whose ranks do not all restore fails the test: recovering
    from one is the product's relaunch watchdog's job, never a rerun here."""
    c = cluster
    pairs = os.path.join(c.build_dir, "contrib", "examples", "pairs")
    script = os.path.join(c.workdir, "affinity.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "srun --mpi=pmix --migrate=auto,affinity,interval=1s -N2 -n4 "
                f"{pairs} --iters 2500 --pairs 0:2,1:3 --big 2097152 "
                "--sleep-ms 10\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "affinity", script,
                                    "-N3 --ntasks-per-node=2 -t 10", 4,
                                    starts_fn=pairs_starts)
    first = {r: n for r, n, _, _ in pairs_starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    assert first[0] == first[1] != first[2] == first[3], \
        f"heavy pairs do not start apart: {first}"
    try:
        # Before any move: most bytes cross nodes.
        before = cl.repeat_until(lambda: show_json(c, job),
                                 lambda s: s and cross_share(s) is not None,
                                 timeout=30)
        assert before and cross_share(before) > 0.8, \
            f"bytes crossing nodes before the move: {before}"

        decision = first_auto_decision(c, job, out, 90)
        # The gain is the heavy pairs' traffic, whichever strategy (on 4
        # ranks the exact search) found the swap.
        assert decision["outcome"] == "moved" and \
            decision["reason"] == "affinity", \
            f"decision: {decision} (why: {decision['why']})"

        text = cl.repeat_until(lambda: read(out),
                               lambda t: len([s for s in pairs_starts(t)
                                              if s[2] == "restored"]) >= 4,
                               timeout=60)
        assert len([s for s in pairs_starts(text) if s[2] == "restored"]) >= 4, \
            f"the relaunched step's ranks did not all restore in 60 s:\n{text}"
        where = {r: n for r, n, _, _ in pairs_starts(text)}
        assert where[0] == where[2] and where[1] == where[3], \
            f"heavy pairs still apart after the move: {where}\n{text}"

        # Samples of the new placement: every rank is listed on its new
        # node, and a few intervals of traffic counted there.
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
        assert after and cross_share(after) is not None and \
            cross_share(after) < 0.2, \
            f"bytes crossing nodes after the move: {after['node_traffic']} " \
            f"(before {before['node_traffic']})"

        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED" and "srun_exit=0" in text and \
            "pairs: done iters=2500 ranks=4" in text, f"job {job} ended {state}:\n{text}"
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)


def job_pids(job, node, comm):
    """Pids of the processes named COMM of JOB on NODE (SLURM_JOB_ID and
    SLURMD_NODENAME of their environment)."""
    want = {f"SLURM_JOB_ID={job}".encode(), f"SLURMD_NODENAME={node}".encode()}
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != comm:
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = set(f.read().split(b"\0"))
        except OSError:
            continue
        if want <= env:
            pids.append(int(pid))
    return pids


def test_manual_rebalance(cluster, needs_plugins, needs_cpu_quota):
    """In mode manual the balancer never moves by itself; `smig rebalance`
    by the owner runs the policy engine at once. Before a full window of
    samples it answers "no move: no decision possible" (exit 0). Then the
    step's second node is slowed to 0.05 core (cpu cgroup quota on the
    node's cgroup) and, once the samples show it, `smig rebalance` starts a
    move of that node's ranks to the spare node (reason balance, history
    kind request), where they restore. About 35 s."""
    c = cluster
    # The ranks of the node slowed to 0.05 core reach their safe point
    # slowly, more so under load: a capture timeout of 60 s, not the test
    # cluster's 20 s, so that the move this test asks for can complete.
    script = heat_script(c, "rebalance", "manual,interval=1s,capture-timeout=60s",
                         "--nx 1024 --ny 512 --iters 100000000 --report 1000")
    job, out, text = submit_started(c, "rebalance", script,
                                    "-N3 --ntasks-per-node=2 -t 10", 4)
    first = latest_starts(text)
    alloc = hostnames(c, cl.get_job_parameter(c, job, "NodeList"))
    spare = sorted(set(alloc) - set(first.values()))
    assert len(spare) == 1 and first[2] == first[3] != first[0] == first[1], \
        f"unexpected placement {first} in {alloc}"
    slow = cl.cpu_cgroup(c, first[2])
    try:
        r = smig(c, f"rebalance {job}")
        assert r.rc == 0 and "no move: no decision possible" in r.stdout, \
            f"rebalance before a full window of samples:\n{r}"
        cl.set_cpu_quota(c, first[2], 5000, 100000)
        # The node's slurmd put its ranks there; a slurmd that an earlier
        # test restarted by hand may not have: put them there ourselves.
        pids = job_pids(job, first[2], "heat")
        assert len(pids) == 2, f"ranks of job {job} on {first[2]}: {pids}"
        for pid in pids:
            with open(os.path.join(slow, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        # The engine needs a full window in which the node was slow: ask
        # again until it decides (each "no move" is the engine's answer).
        r = cl.repeat_until(lambda: smig(c, f"rebalance {job}"),
                            lambda r: r.rc != 0 or "move started" in r.stdout,
                            timeout=40, poll_interval=2)
        assert r.rc == 0 and re.search(
            rf"move started StepId=\d+:gen=1 ranks=2,3;from={first[2]};"
            rf"to={spare[0]};reason=balance", r.stdout), f"rebalance:\n{r}"
        assert "why: " in r.stdout, r
        text = cl.repeat_until(lambda: read(out),
                               lambda t: len([s for s in starts(t)
                                              if s[2] == "restored"]) >= 4,
                               timeout=120)
        where = latest_starts(text)
        assert where == {0: first[0], 1: first[0], 2: spare[0], 3: spare[0]}, \
            f"after the rebalance: {where}\n{text}"
        hist = wait_history(c, job, 1)
        assert [(h["kind"], h["reason"], h["outcome"]) for h in hist] == \
            [("request", "balance", "moved")], f"history: {hist}"
    finally:
        cl.set_cpu_quota(c, first[2], -1)
        c.run(f"scancel {job}", user="root", timeout=30)
