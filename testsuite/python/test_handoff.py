# SPDX-License-Identifier: GPL-2.0-or-later
"""test_handoff.py - a move with a node-local image store (no shared file system)

With MigrateImageStore=local each node keeps its ranks' images under
<MigrateImageDir>/<node>/<job>; when ranks move, the agent of the source node
streams their images to the agent of the target node (HANDOFF, munge) before
the balancer lets the ranks stop. In this loopback cluster all nodes share one
file system, so the per-node directories show where the bytes went.
"""

import filecmp
import os
import re
import signal
import time

import pytest

import cluster as cl
from heat import DONE_RE, heat_path, read, reference_checksum, starts, submit_started

HEAT_ARGS = "--nx 96 --ny 64 --iters 400 --sleep-ms 25 --report 40"


@pytest.fixture
def local_store(cluster):
    """migrate.conf with MigrateImageStore=local for the steps started while
    the test runs (slurmstepd reads it at each step start), restored after."""
    path = os.path.join(cluster.dir, "migrate.conf")
    with open(path) as f:
        saved = f.read()
    with open(path, "a") as f:
        f.write("MigrateImageStore=local\n")
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(saved)


def test_handoff(cluster, needs_plugins, local_store):
    """Draining a node of a step whose store is node-local moves its ranks to
    another node of the step: their images of generation 1 are handed from
    the drained node's store to the target node's store (identical bytes,
    owned by the job's user, mode 0600; the target agent logs the received
    and verified image), no shared job directory is used, every rank
    restores generation 1 and the job completes with the checksum of a run
    without migration."""
    c = cluster
    heat = heat_path(c)
    reference = reference_checksum(c, f"-N3 -n6 {heat} {HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}")

    script = os.path.join(c.workdir, "handoff.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate -N3 -n6 {heat} {HEAT_ARGS}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "handoff", script, "-N3 --exclusive", 6)
    first = {r: n for r, n, _, _ in starts(text)}
    assert sorted(first) == list(range(6)), text
    victim = first[5]
    moving = sorted(r for r, n in first.items() if n == victim)
    r = c.run(f"scontrol update nodename={victim} state=drain reason=handoff",
              user="root", timeout=30)
    assert r.rc == 0, str(r)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == reference, \
            f"wrong or no checksum (want {reference}):\n{text}"
        restored = {r: n for r, n, k, _ in starts(text) if k == "restored"}
        assert sorted(restored) == list(range(6)), text
        targets = {restored[r] for r in moving}
        assert victim not in targets, restored
        # Moves of a node-local store go to nodes of the step only.
        assert targets <= set(first.values()), restored

        images = os.path.join(c.dir, "images")
        assert not os.path.exists(os.path.join(images, str(job))), \
            "a shared job directory was used"
        for rank in moving:
            src = os.path.join(images, victim, str(job), f"rank{rank}.g1.img")
            dst = os.path.join(images, restored[rank], str(job),
                               f"rank{rank}.g1.img")
            assert os.path.exists(src), f"{src} missing"
            assert os.path.exists(dst), f"{dst} missing: not handed off"
            assert filecmp.cmp(src, dst, shallow=False), f"{dst} differs from {src}"
            st = os.stat(dst)
            assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
            assert st.st_uid == os.stat(os.path.dirname(dst)).st_uid
            log = c.read_log(f"slurmd.{restored[rank]}")
            assert re.search(rf"JobId={job} StepId=\d+ node={restored[rank]}: "
                             rf"rank={rank} generation=1: image received and verified",
                             log), \
                f"no hand-off line in slurmd.{restored[rank]}.log"
        # Ranks that stayed never had their images copied anywhere.
        for rank in set(range(6)) - set(moving):
            homes = [n for n in c.nodes if os.path.exists(os.path.join(
                images, n, str(job), f"rank{rank}.g1.img"))]
            assert homes == [first[rank]], f"rank {rank} images on {homes}"
        comment = cl.migration_state(c, job)
        assert comment.startswith("mode=auto gen=1 moves=1 last_move="), comment
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)


def stepd_holding(path_prefix):
    """PID of the process that has a file starting with path_prefix open."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(path_prefix):
                    return int(pid)
        except OSError:
            continue
    return None


def node_stepd(c, node, job, step):
    """PID of the slurmstepd of JOB.STEP on NODE, from the node's cgroup the
    harness keeps (testsuite/cluster); None without one."""
    root = c.env.get("SMIG_CGROUP")
    try:
        with open(os.path.join(root, node, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except (OSError, TypeError, ValueError):
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("slurmstepd") and f"[{job}.{step}]" in cmd:
            return pid
    return None


def test_image_fault_agent_killed(cluster, needs_plugins, local_store):
    """With a node-local store, the agent (slurmstepd) of the target node is
    killed while it receives a moving rank's image: the partial file never
    gets an image's name, the source agent reports the failed hand-off naming
    the file and the reason, the generation is never committed (every node's
    manifest still names the previous periodic generation), and the job is
    not lost: the restart (SLURM_MIGRATE_RESTORE_GEN=last) restores that
    generation on every rank from its own node's store and completes with the
    checksum of a run without faults."""
    c = cluster
    heat = heat_path(c)
    # 32 MiB per rank: the hand-off takes long enough to be caught.
    args = "--nx 8192 --ny 1536 --iters 200 --sleep-ms 10 --report 20"
    reference = reference_checksum(c, f"-N3 -n3 {heat} {args.replace('--sleep-ms 10', '--sleep-ms 0')}", timeout=180)

    go = os.path.join(c.workdir, "agent_killed.go")
    out = os.path.join(c.workdir, "agent_killed.out")
    script = os.path.join(c.workdir, "agent_killed.sbatch")
    for p in (go, out):
        if os.path.exists(p):
            os.unlink(p)
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate=every=2s,capture-timeout=30s -N3 -n3 {heat} {args}\n"
                "echo step1_exit=$?\n"
                f"for i in $(seq 900); do [ -e {go} ] && break; sleep 0.2; done\n"
                # --overlap: the killed step's CPUs on the target node stay
                # allocated in Slurm until the node is cleaned up.
                "SLURM_MIGRATE_RESTORE_GEN=last srun --overlap --mpi=pmix "
                f"--migrate -N3 -n3 {heat} {args}\n"
                "echo step2_exit=$?\n")
    os.chmod(script, 0o755)
    job = cl.submit_job(c, f"-N3 --exclusive -o {out} {script}")
    images = os.path.join(c.dir, "images")
    victim = None
    try:
        text = cl.repeat_until(lambda: read(out), lambda t: len(starts(t)) >= 3
                               or "step1_exit=" in t, timeout=120)
        first = {r: n for r, n, _, _ in starts(text)}
        assert sorted(first) == [0, 1, 2], text
        victim = first[2]

        def good(node):
            t = read(os.path.join(images, node, str(job), "good"))
            return [int(l.split()[1]) for l in t.splitlines()[1:]]
        cl.repeat_until(lambda: [good(n) for n in first.values()],
                        lambda g: all(g), timeout=90)
        r = c.run(f"scontrol update nodename={victim} state=drain reason=kill",
                  user="root", timeout=30)
        assert r.rc == 0, str(r)
        before = {n: good(n) for n in first.values()}
        # The target is the first node of the step that is not drained.
        target = first[0]
        tdir = os.path.join(images, target, str(job))
        # Found before the hand-off starts: it can be over in a few ms.
        pid = node_stepd(c, target, job, 0)
        deadline = time.time() + 120
        tmp = None
        while time.time() < deadline and "step1_exit=" not in read(out):
            tmp = next((f for f in os.listdir(tdir)
                        if f.startswith("rank2.") and ".img.tmp." in f), None)
            if tmp:
                break
            time.sleep(0.002)
        if pid and tmp:
            os.kill(pid, signal.SIGKILL)
        assert tmp, f"no hand-off to {target} seen:\n{read(out)}"
        if not pid:
            pid = stepd_holding(os.path.join(tdir, tmp))
            assert pid, f"no process holds {tmp}"
            os.kill(pid, signal.SIGKILL)
        # Slurm does not notice a slurmstepd killed with -9 by itself (the
        # step would hang until the job ends): srun ends the step when the
        # balancer reports the node agent gone (doc/faults.md).
        text = cl.repeat_until(lambda: read(out), lambda t: "step1_exit=" in t,
                               timeout=60)
        assert "step1_exit=" in text, f"step 1 did not end:\n{text}"
        assert "step1_exit=0" not in text, f"step 1 survived:\n{text}"
        assert f"the node agent of {target} is gone" in text, text
        after = {n: good(n) for n in first.values()}
        assert after == before, f"manifests changed: {before} -> {after}"
        assert not os.path.exists(os.path.join(tdir, tmp.split(".tmp.")[0])), \
            "the partial image got an image's name"
        log = c.read_log(f"slurmd.{victim}")
        assert re.search(rf"JobId={job} StepId=0 node={victim}: rank=2 generation=\d+: "
                         rf"hand-off to node {target} failed: \S*rank2\.g\d+\.img: ", log), \
            f"no hand-off failure naming the file in slurmd.{victim}.log"
        with open(go, "w"):
            pass
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=240)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "step2_exit=0" in text, text
        step2 = text.split("step1_exit=", 1)[1]
        m = re.search(DONE_RE, step2, re.M)
        assert m and m.group(2) == reference, \
            f"wrong or no checksum (want {reference}):\n{text}"
        restored = {r: n for r, n, k, _ in starts(step2) if k == "restored"}
        assert sorted(restored) == [0, 1, 2], step2
    finally:
        if victim:
            c.run(f"scontrol update nodename={victim} state=resume",
                  user="root", timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)
