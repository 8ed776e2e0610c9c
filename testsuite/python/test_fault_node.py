# SPDX-License-Identifier: GPL-2.0-or-later
"""test_fault_node.py - whole jobs survive failing and failed nodes

Each case runs heat (contrib/examples) in a requeue-able batch job
(--requeue, --open-mode=append) whose allocation has no spare slot, and
breaks one of its nodes:

* drained (test_fault_no_spare_requeue): the balancer captures every rank,
  requeues the job without the drained node and releases it at once;
* health file says "fail" (test_fault_health_signal): a predicted failure,
  the node's ranks move before it dies (here to the allocation's spare);
* frozen (test_fault_node_freeze) or its slurmd killed
  (test_fault_slurmd_killed), with periodic capture (every=): the job is
  requeued (by Slurm after the node goes down, or by the balancer once the
  node stops answering) and restarts from its last good generation;
* drained, but the job was submitted --no-requeue (test_fault_no_requeue):
  never requeued, the reason is recorded, the job runs on where it is.

Every case checks that the job completes with the checksum of a run without
any fault, that the broken node ran no rank afterwards, that the ranks
restored from a generation >= 1 where the case restarts, and that the batch
script saw SLURM_RESTART_COUNT=1. The broken node is always repaired at the
end (resumed, health ok, thawed, slurmd started again), also when the test
fails, so that the session's cluster stays usable.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read, starts, submit_started

# 600 iterations x 25 ms: ~15 s of computing, long enough to break a node.
HEAT_ARGS = "--nx 96 --ny 64 --iters 600 --sleep-ms 25 --report 50"
# Crash cases: the job must still be computing when Slurm declares the node
# down (SlurmdTimeout=10 in the test cluster: ~25 s).
HEAT_LONG = "--nx 96 --ny 64 --iters 1400 --sleep-ms 25 --report 100"
RUN_RE = r"^run restart=(\d+)$"


def reference(c, args):
    """Checksum of HEAT args without --migrate and without sleeping."""
    r = cl.srun_mpi(c, f"-N2 -n4 {heat_path(c)} "
                    f"{args.replace('--sleep-ms 25', '--sleep-ms 0')}",
                    started_re=START_RE, timeout=120)
    assert r.rc == 0, f"reference run failed:\n{r}"
    m = re.search(DONE_RE, r.stdout, re.M)
    assert m, f"reference run printed no checksum:\n{r}"
    return m.group(2)


@pytest.fixture(scope="module")
def ref_short(cluster):
    """Checksum of HEAT_ARGS without any fault."""
    return reference(cluster, HEAT_ARGS)


@pytest.fixture(scope="module")
def ref_long(cluster):
    """Checksum of HEAT_LONG without any fault."""
    return reference(cluster, HEAT_LONG)


def submit(c, name, migrate, args, nnodes=2):
    """A requeue-able batch job of NNODES nodes x 2 slots running 4 ranks of
    heat on 2 nodes with --migrate=MIGRATE; returns (job, output path, the
    ranks' nodes) once all four ranks started (the launch is retried on
    Open MPI's start-up flake, never an assertion)."""
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "echo run restart=${SLURM_RESTART_COUNT:-0}\n"
                f"srun --mpi=pmix --migrate={migrate} -N2 -n4 "
                f"{heat_path(c)} {args}\n"
                "echo srun_exit=$? restart=${SLURM_RESTART_COUNT:-0}\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(
        c, name, script,
        f"-N{nnodes} --ntasks-per-node=2 --requeue --open-mode=append", 4)
    first = {rank: node for rank, node, _, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], f"job {job} did not start:\n{text}"
    return job, out, first


def victim_of(c, job, first):
    """A node of the step that is not the batch host (the batch script must
    live on, or Slurm's requeue after a crash would have nothing to do)."""
    batch = cl.get_job_parameter(c, job, "BatchHost")
    nodes = sorted(set(first.values()) - {batch})
    assert nodes, f"no step node other than the batch host {batch}: {first}"
    return nodes[0]


def after_restart(text):
    """Output of the second run of the batch script ("" if none)."""
    parts = re.split(r"^run restart=1$", text, maxsplit=1, flags=re.M)
    return parts[1] if len(parts) == 2 else ""


def restore_gen(c, job):
    """Generation the SPANK plugin chose for the restarted step, from the
    slurmd logs ("restart 1: ranks restore from generation G"), or None."""
    pat = re.compile(rf"JobId={job} StepId=\d+ restart 1: ranks restore "
                     r"from generation (\d+)")
    for n in c.nodes:
        m = pat.search(c.read_log(f"slurmd.{n}"))
        if m:
            return int(m.group(1))
    return None


def check_restarted(c, job, out, victim, checksum, args_iters):
    """The job completed after one restart, every rank restored at one
    iteration > 0 on nodes other than VICTIM, with the right checksum.
    Returns the restored iteration."""
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=150)
    text = read(out)
    assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
    assert cl.get_job_parameter(c, job, "Restarts") == "1", \
        cl.get_job(c, job)
    second = after_restart(text)
    assert second, f"the batch script did not run again:\n{text}"
    assert "srun_exit=0 restart=1" in second, f"srun failed:\n{text}"
    restored = {r: (n, it) for r, n, kind, it in starts(second)
                if kind == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], \
        f"not every rank restored after the restart:\n{text}"
    iters = {it for _, it in restored.values()}
    assert len(iters) == 1 and min(iters) > 0, \
        f"ranks restored at different or zero iterations: {restored}"
    assert victim not in {n for n, _ in restored.values()}, \
        f"a rank restarted on the broken node {victim}: {restored}"
    m = re.search(DONE_RE, second, re.M)
    assert m, f"no final checksum:\n{text}"
    assert m.group(1) == str(args_iters)
    assert m.group(2) == checksum, \
        f"checksum {m.group(2)} != {checksum} of a run without fault"
    return iters.pop()


def scontrol_node(c, node, what):
    c.run(f"scontrol update nodename={node} {what}", user="root", timeout=30)


def node_state(c, node):
    r = c.run(f"scontrol show node {node}", user="root", timeout=30)
    recs = cl.parse_scontrol(r.stdout) if r.rc == 0 else []
    return recs[0].get("State", "") if recs else ""


def wait_node_usable(c, node):
    """Resume NODE and wait until Slurm schedules on it again (bounded)."""
    def usable():
        st = node_state(c, node)
        if any(w in st for w in ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING")):
            scontrol_node(c, node, "state=resume")
            return False
        return bool(st)
    cl.repeat_until(usable, lambda ok: ok, timeout=60, poll_interval=1)


def health_file(c, node):
    return os.path.join(c.dir, "health", node)


def test_fault_no_spare_requeue(cluster, needs_plugins, ref_short):
    """Draining a node of a job that has no free slot in its allocation moves
    the whole job: every rank is captured (a good generation g >= 1), the job
    is requeued with the drained node in its ExcNodeList, starts again on
    other nodes (Restarts=1, SLURM_RESTART_COUNT=1 in the script), its ranks
    restore from g at one iteration and it completes with the checksum of a
    run without migration; SystemComment and `smig history` record the
    job-scope move."""
    c = cluster
    job, out, first = submit(c, "nospare", "auto", HEAT_ARGS)
    victim = victim_of(c, job, first)
    cl.repeat_until(lambda: cl.migration_state(c, job),
                    lambda s: s.startswith("mode=auto"), timeout=20)
    scontrol_node(c, victim, "state=drain reason=fault-test")
    t0 = time.monotonic()
    try:
        cl.repeat_until(lambda: after_restart(read(out)),
                        lambda t: len([s for s in starts(t)
                                       if s[2] == "restored"]) >= 4,
                        timeout=90)
        cl.log.info("job-scope move: drain -> all ranks restored in %.1f s",
                    time.monotonic() - t0)
        # The balancer forgets the job when it ends: its history now.
        smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
        r = c.run(f"{smig} history {job} --json", timeout=30)
        assert r.rc == 0, f"smig history failed:\n{r}"
        hist = [(h["kind"], h["ranks"], h["from"], h["to"], h["outcome"])
                for h in json.loads(r.stdout)["history"]]
        assert ("requeue", "all", victim, "requeue", "requeued") in hist, hist
        check_restarted(c, job, out, victim, ref_short, 600)
        exc = cl.get_job_parameter(c, job, "ExcNodeList", "")
        assert victim in exc, f"ExcNodeList={exc!r}, {victim} not in it"
        gen = restore_gen(c, job)
        assert gen is not None and gen >= 1, \
            f"no restore from a good generation logged (gen={gen})"
        line = cl.migration_state(c, job)
        assert re.search(rf"\bgen={gen} moves=1 last_move=ranks=all;"
                         rf"from={victim};to=requeue;reason=drain\b", line), \
            f"SystemComment: {line!r}"
    finally:
        scontrol_node(c, victim, "state=resume")


def test_fault_health_signal(cluster, needs_plugins, ref_short):
    """A node whose MigrateHealthFile says "fail" is left before it dies:
    its ranks move to the spare node of the allocation (one capture, reason
    health in SystemComment), the node itself stays up in Slurm, the moved
    ranks restore and the job completes with the right checksum."""
    c = cluster
    job, out, first = submit(c, "health", "interval=1s", HEAT_ARGS, nnodes=3)
    victim = victim_of(c, job, first)
    path = health_file(c, victim)
    try:
        with open(path, "w") as f:
            f.write("fail fan speed 0 rpm\n")
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        restored = {r: n for r, n, kind, _ in starts(text) if kind == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], f"no move:\n{text}"
        assert victim not in restored.values(), restored
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == ref_short, f"checksum:\n{text}"
        line = cl.migration_state(c, job)
        assert re.search(rf"moves=1 last_move=ranks=[\d,]+;from={victim};"
                         r"to=\S+;reason=health\b", line), line
        assert "DRAIN" not in node_state(c, victim)
        assert cl.get_job_parameter(c, job, "Restarts") == "0"
    finally:
        with open(path, "w") as f:
            f.write("ok\n")


def wait_gen(c, job, at_least=1, timeout=40):
    """Wait until SystemComment shows a good generation >= AT_LEAST."""
    def gen():
        m = re.search(r"\bgen=(\d+)",
                      cl.migration_state(c, job))
        return int(m.group(1)) if m else 0
    g = cl.repeat_until(gen, lambda g: g >= at_least, timeout=timeout)
    assert g >= at_least, f"no good generation yet: {cl.get_job(c, job)}"
    return g


def freezer(c, node):
    """(state file, frozen value, thawed value) of NODE's cgroup."""
    root = c.env.get("SMIG_CGROUP")
    assert root, "no cgroup: the test should have skipped (needs_cgroup)"
    v1 = os.path.join(root, node, "freezer.state")
    if os.path.exists(v1):
        return v1, "FROZEN", "THAWED"
    return os.path.join(root, node, "cgroup.freeze"), "1", "0"


def test_fault_node_freeze(cluster, needs_plugins, needs_cgroup, ref_long):
    """With every=2s, freezing a node of the job (its slurmd, slurmstepd and
    ranks, cgroup freezer) does not lose the job: Slurm marks the node down
    and requeues the job, the balancer releases it at once, and the restarted
    ranks restore from the last good generation g >= 1 on healthy nodes and
    complete with the checksum of a run without fault."""
    c = cluster
    job, out, first = submit(c, "freeze", "every=2s,capture-timeout=5s",
                             HEAT_LONG)
    victim = victim_of(c, job, first)
    state_file, frozen, thawed = freezer(c, victim)
    wait_gen(c, job)
    try:
        with open(state_file, "w") as f:
            f.write(frozen)
        check_restarted(c, job, out, victim, ref_long, 1400)
        gen = restore_gen(c, job)
        assert gen is not None and gen >= 1, f"restored from gen={gen}"
    finally:
        with open(state_file, "w") as f:
            f.write(thawed)
        wait_node_usable(c, victim)


def alive(pid):
    """True if PID runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_slurmd(c, node):
    """Start NODE's slurmd again in its cgroups, as up.sh does; its pid goes
    to the pid file that down.sh reads."""
    # SMIG_CGROUP and SMIG_CGROUP_CPU already name the cluster's group
    # (<root>/smig-<port base>): the node's group is directly below.
    cgroups = [os.path.join(r, node, "cgroup.procs")
               for r in (c.env.get("SMIG_CGROUP"), c.env.get("SMIG_CGROUP_CPU"))
               if r]
    missing = [p for p in cgroups if not os.path.exists(p)]
    enter = "".join(f"echo $$ > {p}; " for p in cgroups if p not in missing)
    conf = os.path.join(c.dir, "slurm.conf")
    log = open(os.path.join(c.dir, "log", f"slurmd.{node}.out"), "a")
    env = dict(c.env, SLURM_CONF=conf)
    p = subprocess.Popen(["setsid", "bash", "-c",
                          f"{enter}exec slurmd -D -N {node} -f {conf}"],
                         env=env, stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    log.close()
    with open(os.path.join(c.dir, "run", f"slurmd.{node}.pid"), "w") as f:
        f.write(f"{p.pid}\n")
    # Started anyway, so that the node comes back; but later tests that
    # throttle or freeze this node need it in its groups.
    assert not missing, f"{node}: node cgroups missing: {missing}"


def test_fault_slurmd_killed(cluster, needs_plugins, ref_long):
    """With every=2s, killing the slurmd of one of the job's nodes (SIGKILL;
    its stepd and ranks live on, unreachable for Slurm) does not lose the
    job: it is requeued without that node and restarts from a good
    generation g >= 1 on healthy nodes, completing with the checksum of a
    run without fault; the slurmd is started again at the end."""
    c = cluster
    job, out, first = submit(c, "slurmdkill", "every=2s,capture-timeout=5s",
                             HEAT_LONG)
    victim = victim_of(c, job, first)
    pid_file = os.path.join(c.dir, "run", f"slurmd.{victim}.pid")
    with open(pid_file) as f:
        pid = int(f.read().split()[0])
    wait_gen(c, job)
    try:
        os.kill(pid, signal.SIGKILL)
        check_restarted(c, job, out, victim, ref_long, 1400)
        gen = restore_gen(c, job)
        assert gen is not None and gen >= 1, f"restored from gen={gen}"
    finally:
        if not alive(pid):
            start_slurmd(c, victim)
        wait_node_usable(c, victim)


def test_fault_no_requeue(cluster, needs_plugins):
    """A job submitted with --no-requeue is never requeued by a job-scope
    move: draining its node without a spare records
    last_error=...;reason=no-requeue in SystemComment, the job keeps running
    where it is (Restarts=0) and completes."""
    c = cluster
    script = os.path.join(c.workdir, "norequeue.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate -N2 -n4 {heat_path(c)} "
                "--nx 96 --ny 64 --iters 300 --sleep-ms 25\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "norequeue", script,
                                    "-N2 --ntasks-per-node=2 --no-requeue", 4)
    first = {rank: node for rank, node, _, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], f"job {job} did not start:\n{text}"
    victim = victim_of(c, job, first)
    scontrol_node(c, victim, "state=drain reason=fault-test")
    try:
        line = cl.repeat_until(
            lambda: cl.migration_state(c, job),
            lambda s: "reason=no-requeue" in s, timeout=30)
        assert re.search(r"\blast_error=gen=\d+;reason=no-requeue\b", line), line
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=90)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        assert cl.get_job_parameter(c, job, "Restarts") == "0"
        assert not [s for s in starts(text) if s[2] == "restored"], text
    finally:
        scontrol_node(c, victim, "state=resume")
