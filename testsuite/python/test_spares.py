# SPDX-License-Identifier: GPL-2.0-or-later
"""test_spares.py - hot spares: srun --migrate=spares=N (issue 20)

sbatch allocates three nodes; "srun --migrate=spares=1 -n4" (no -N) runs
the step on the first two and leaves the third free as a hot spare; smig show
lists it; an admin drains a node of the step and its ranks move onto the
spare, and the result is bit-identical to a run without migration. Bad
combinations are refused by srun before anything runs, naming spares= and
its value.
"""

import json
import os
import re

import cluster as cl
from heat import DONE_RE, START_RE, assert_moved_to_spare, heat_path, read, \
    starts, submit_started
from test_manual import hostnames, smig

# As test_migration.py: long enough to drain a node mid-run (~12 s of compute).
HEAT_ARGS = "--nx 96 --ny 64 --iters 480 --sleep-ms 25 --report 20"


def test_drain_uses_spare(cluster, needs_plugins):
    """spares=1 in a 3-node allocation of 4 CPUs a node: the step (two
    ranks a node) runs on the first two nodes, smig show (text and --json)
    lists the third as the step's hot spare, a drain of a node of the step
    moves its two ranks onto that spare, not onto the two free CPUs of the
    step's other node (where a drain without spares= puts them: allocation
    order), the job completes with the checksum of the same
    computation without migration, SystemComment names the spare as the
    target, and afterwards no spare is left (the drained node is not
    usable)."""
    c = cluster
    args = HEAT_ARGS.replace("--sleep-ms 25", "--sleep-ms 0")
    ref = cl.srun_mpi(c, f"-N2 -n4 {heat_path(c)} {args}",
                      started_re=START_RE, timeout=120)
    assert ref.rc == 0, f"reference run failed:\n{ref}"
    m = re.search(DONE_RE, ref.stdout, re.M)
    assert m, f"reference run printed no checksum:\n{ref}"
    reference = m.group(2)

    script = os.path.join(c.workdir, "spares.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "srun --mpi=pmix --migrate=spares=1 -n4 --ntasks-per-node=2 "
                f"{heat_path(c)} {HEAT_ARGS}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "spares", script,
                                    "-N3 --ntasks-per-node=4", 4)
    first = {rank: node for rank, node, kind, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], f"the 4 ranks did not start:\n{text}"
    alloc = hostnames(c, cl.get_job_parameter(c, job, "NodeList"))
    assert len(alloc) == 3, alloc
    step_nodes = sorted(set(first.values()))
    # The last node of the allocation is the spare: the step has the others.
    assert step_nodes == sorted(alloc[:2]), \
        f"step on {step_nodes}, allocation {alloc}: spare not left free"
    spare = alloc[2]

    # The balancer lists the spare once every rank registered.
    r = cl.repeat_until(lambda: smig(c, f"show {job} --json"),
                        lambda r: r.rc == 0 and
                        json.loads(r.stdout)["spares"] != [],
                        timeout=30)
    assert r.rc == 0, str(r)
    doc = json.loads(r.stdout)
    assert doc["spares"] == [{"step": 0, "spares": 1, "nodes": [spare]}], \
        doc["spares"]
    r = smig(c, f"show {job}")
    assert r.rc == 0, str(r)
    assert f"hot spares: StepId=0 spares=1: {spare}\n" in r.stdout, r.stdout

    victim = first[3]
    moving = sorted(rk for rk, n in first.items() if n == victim)
    cl.repeat_until(lambda: cl.migration_state(c, job),
                    lambda s: s.startswith("mode=auto"), timeout=20)
    r = c.run(f"scontrol update nodename={victim} state=drain "
              "reason=spares-test", user="root", timeout=30)
    assert r.rc == 0, f"drain {victim} failed:\n{r}"
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
        m = re.search(DONE_RE, text, re.M)
        assert m, f"no final checksum:\n{text}"
        assert m.group(1) == "480"
        assert m.group(2) == reference, \
            f"checksum {m.group(2)} != {reference} without migration"
        target = assert_moved_to_spare(text, first, moving, victim,
                                       step_nodes)
        assert target == spare, f"ranks {moving} went to {target}, not the spare {spare}"
        comment = cl.migration_state(c, job)
        want = (f"mode=auto gen=1 moves=1 last_move=ranks={','.join(map(str, moving))};"
                f"from={victim};to={spare};reason=drain")
        assert comment == want, f"SystemComment={comment!r}, expected {want!r}"
    finally:
        c.run(f"scontrol update nodename={victim} state=resume",
              user="root", timeout=30)


def test_spares_refused(cluster, needs_plugins):
    """srun refuses, before any task runs, spares=N that leaves no node for
    the step (N >= the allocation's nodes) and spares= with a -N that leaves
    no room, naming spares= and the values; -w is refused by name."""
    c = cluster
    cases = [
        ("--migrate=spares=2 -n1",
         "spares=2: the allocation has 2 nodes ("),
        ("--migrate=spares=1 -N2 -n2",
         "spares=1 with -N/--nodes=2: the allocation has 2 nodes ("),
        ("--migrate=spares=1 -w $SLURM_JOB_NODELIST -n1",
         "spares=1 cannot be combined with -w/--nodelist"),
    ]
    for opts, msg in cases:
        r = c.run("salloc -N2 --ntasks-per-node=1 bash -c "
                  f"'srun {opts} bash -c \"echo RAN\"'", timeout=60)
        assert not r.timed_out, str(r)
        assert r.rc != 0, f"srun accepted {opts}:\n{r}"
        assert "RAN" not in r.stdout, str(r)
        assert msg in r.stderr, f"{opts}: expected {msg!r}:\n{r}"
