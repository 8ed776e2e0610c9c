# SPDX-License-Identifier: GPL-2.0-or-later
"""test_partner.py - partner copies of a node-local store (MigratePartnerCopies)

With MigrateImageStore=local and MigratePartnerCopies=yes each node agent of
a step copies its ranks' images of every periodic generation, once it is
good, to the agent of the next node of the allocation (round-robin), which
checks them and keeps them in <MigrateImageDir>/<node>/<job>/partner/. A node
that is killed (its slurmd, slurmstepd and ranks) then does not take the only
copy of its ranks' images with it: a restart of the step
(SLURM_MIGRATE_RESTORE_GEN=last) that places each rank on its own node or on
its partner restores it from there. In this loopback cluster all nodes share
one file system, so the test removes the killed node's store to stand for
its lost disk.
"""

import filecmp
import os
import re
import shutil
import signal

import pytest

import cluster as cl
from heat import DONE_RE, heat_path, read, reference_checksum, starts
from test_fault_node import alive, start_slurmd, wait_node_usable

# ~35 s of computing on 3 ranks: long enough to copy and to kill a node.
HEAT_ARGS = "--nx 96 --ny 96 --iters 1400 --sleep-ms 25 --report 100"


def sighup_smigd(c, want=r"balancer listening|settings unchanged"):
    """SIGHUP smigd (it reads migrate.conf again) and wait until it says so."""
    pid = c.smigd_pid()
    assert pid, "the session's cluster runs no smigd"
    mark = len(c.read_log("smigd"))
    os.kill(pid, signal.SIGHUP)
    text = cl.repeat_until(lambda: c.read_log("smigd")[mark:],
                           lambda t: re.search(want, t), timeout=30,
                           poll_interval=0.2)
    assert re.search(want, text), f"smigd did not reload:\n{text}"


@pytest.fixture
def partner_store(cluster):
    """migrate.conf with MigrateImageStore=local and MigratePartnerCopies=yes
    (slurmstepd reads it at each step start; smigd on SIGHUP), restored
    after."""
    path = os.path.join(cluster.dir, "migrate.conf")
    with open(path) as f:
        saved = f.read()
    with open(path, "a") as f:
        f.write("MigrateImageStore=local\nMigratePartnerCopies=yes\n")
    try:
        sighup_smigd(cluster, r"balancer listening")
        yield
    finally:
        with open(path, "w") as f:
            f.write(saved)
        sighup_smigd(cluster)


def good(jobdir):
    """Generations the manifest of the job directory JOBDIR names ([] if
    none)."""
    t = read(os.path.join(jobdir, "good"))
    return [int(l.split()[1]) for l in t.splitlines()[1:] if l.startswith("gen ")]


def kill_node(c, node):
    """SIGKILL every process of NODE (slurmd, slurmstepd, ranks): its cgroup
    of the harness."""
    procs = os.path.join(c.env.get("SMIG_CGROUP"), node, "cgroup.procs")
    kill = os.path.join(os.path.dirname(procs), "cgroup.kill")
    if os.path.exists(kill):
        with open(kill, "w") as f:
            f.write("1")
    with open(procs) as f:
        for pid in f.read().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_local_partner_copies_node_killed(cluster, needs_plugins, needs_cgroup,
                                          partner_store):
    """A 3-node job (one rank per node, every=1s) with a node-local store and
    partner copies: each node's partner copies of its neighbour's images are
    byte-identical to the images and logged as received and verified. The
    middle node is killed (slurmd and all) and its store removed; a second
    step with SLURM_MIGRATE_RESTORE_GEN=last on the two nodes left (srun -x
    the dead node; --migrate refuses -w; cyclic:
    the killed node's rank lands on its partner, the third node's rank on
    its partner too) restores every rank at one iteration > 0, the two moved
    ranks from partner copies (logged), and completes with the checksum of a
    run without migration."""
    c = cluster
    heat = heat_path(c)
    reference = reference_checksum(
        c, f"-N3 -n3 {heat} {HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}")
    go = os.path.join(c.workdir, "partner.go")
    out = os.path.join(c.workdir, "partner.out")
    script = os.path.join(c.workdir, "partner.sbatch")
    for p in (go, out):
        if os.path.exists(p):
            os.unlink(p)
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "srun --mpi=pmix --migrate=every=1s,capture-timeout=10s "
                f"-N3 -n3 {heat} {HEAT_ARGS}\n"
                "echo step1_exit=$?\n"
                f"for i in $(seq 900); do [ -s {go} ] && break; sleep 0.2; done\n"
                # --overlap: the killed step's CPUs stay allocated in Slurm
                # until the dead node is cleaned up.
                "SLURM_MIGRATE_RESTORE_GEN=last srun --overlap --mpi=pmix "
                f"--migrate -N2 -n3 -m cyclic -x $(cat {go}) {heat} {HEAT_ARGS}\n"
                "echo step2_exit=$?\n")
    os.chmod(script, 0o755)
    # --no-kill: the job outlives its dead node; --no-requeue: it is
    # restarted by its own script, never requeued.
    job = cl.submit_job(c, f"-N3 --exclusive --no-kill --no-requeue -o {out} {script}")
    images = os.path.join(c.dir, "images")
    victim = None
    victim_pid = None
    try:
        text = cl.repeat_until(lambda: read(out), lambda t: len(starts(t)) >= 3
                               or "step1_exit=" in t, timeout=120)
        first = {r: n for r, n, _, _ in starts(text)}
        assert sorted(first) == [0, 1, 2], text
        nodes = [first[0], first[1], first[2]]
        assert nodes == sorted(nodes) and len(set(nodes)) == 3, first
        # Allocation order: node of rank 0 -> rank 1's -> rank 2's -> rank 0's.
        partner = {nodes[0]: nodes[1], nodes[1]: nodes[2], nodes[2]: nodes[0]}
        victim = nodes[1]
        assert cl.get_job_parameter(c, job, "BatchHost") != victim

        lost = os.path.join(c.workdir, f"partner.lost.{job}")
        gone = set()

        def store(n):
            """NODE's job directory (the copy kept aside once it is lost)."""
            return lost if n in gone else os.path.join(images, n, str(job))

        def copied():
            """Generations >= 2 of which every node's partner holds a copy
            of each of its ranks' images, and the manifests name them."""
            gens = None
            for r, n in first.items():
                pdir = os.path.join(store(partner[n]), "partner")
                have = {int(m.group(1)) for m in (re.match(
                    rf"rank{r}\.g(\d+)\.img$", e) for e in (
                    os.listdir(pdir) if os.path.isdir(pdir) else [])) if m}
                have &= set(good(store(partner[n])))
                gens = have if gens is None else gens & have
            return {g for g in gens if g >= 2}
        gens = cl.repeat_until(copied, lambda g: g, timeout=60)
        assert gens, f"no partner copies of a common generation >= 2: {os.listdir(images)}"

        with open(os.path.join(c.dir, "run", f"slurmd.{victim}.pid")) as f:
            victim_pid = int(f.read().split()[0])
        kill_node(c, victim)
        # Its disk is gone with it (kept aside to compare the copies with).
        shutil.rmtree(lost, ignore_errors=True)
        shutil.copytree(os.path.join(images, victim, str(job)), lost)
        shutil.rmtree(os.path.join(images, victim, str(job)))
        gone.add(victim)
        text = cl.repeat_until(lambda: read(out), lambda t: "step1_exit=" in t,
                               timeout=180)
        assert "step1_exit=" in text, f"step 1 did not end:\n{text}"
        # No agent of step 1 is left: the stores stand still until step 2.
        # Generations copied whose images are still at home too (a commit
        # the home node saw before its partner may have pruned the oldest).
        gens = {g for g in copied() if all(os.path.exists(os.path.join(
            store(first[r]), f"rank{r}.g{g}.img")) for r in first)}
        assert gens, "no generation >= 2 both at home and in the partner copies"
        for g in sorted(gens):
            for r, n in first.items():
                img = os.path.join(store(n), f"rank{r}.g{g}.img")
                cp = os.path.join(store(partner[n]), "partner",
                                  f"rank{r}.g{g}.img")
                assert filecmp.cmp(img, cp, shallow=False), f"{cp} differs from {img}"
                st = os.stat(cp)
                assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
                assert st.st_uid == os.stat(os.path.dirname(os.path.dirname(cp))).st_uid
                assert re.search(rf"JobId={job} StepId=0 node={partner[n]}: rank={r} "
                                 rf"generation={g}: partner copy received and verified",
                                 c.read_log(f"slurmd.{partner[n]}")), \
                    f"no partner copy line for rank {r} in slurmd.{partner[n]}.log"
                # A partner copy never takes the image's own name there.
                assert not os.path.exists(os.path.join(
                    store(partner[n]), f"rank{r}.g{g}.img"))
        with open(go + ".tmp", "w") as f:
            f.write(f"{victim}\n")
        os.rename(go + ".tmp", go)

        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=300)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "step2_exit=0" in text, text
        step2 = text.split("step1_exit=", 1)[1]
        restored = {r: (n, i) for r, n, k, i in starts(step2) if k == "restored"}
        assert sorted(restored) == [0, 1, 2], f"not every rank restored:\n{text}"
        assert len({i for _, i in restored.values()}) == 1 and \
            restored[0][1] > 0, restored
        # Cyclic on (nodes[0], nodes[2]): ranks 0, 2 on nodes[0], 1 on nodes[2].
        assert restored[1][0] == nodes[2] == partner[victim], restored
        assert restored[2][0] == nodes[0] == partner[nodes[2]], restored
        for r in (1, 2):
            node = restored[r][0]
            assert re.search(rf"JobId={job} StepId=1 node={node}: rank={r} "
                             rf"generation=\d+: restoring from the partner copy ",
                             c.read_log(f"slurmd.{node}")), \
                f"rank {r} did not restore from the partner copy on {node}"
        m = re.search(DONE_RE, step2, re.M)
        assert m and m.group(2) == reference, \
            f"wrong or no checksum (want {reference}):\n{text}"
    finally:
        if victim_pid is not None:
            if not alive(victim_pid):
                start_slurmd(c, victim)
            wait_node_usable(c, victim)
        if not os.path.exists(go):
            with open(go, "w") as f:
                f.write("node0\n")
        if cl.get_job_parameter(c, job, "JobState") not in ("COMPLETED", None):
            c.run(f"scancel {job}", user="root", timeout=30)
