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

import pytest

import cluster as cl

HEAT_ARGS = "--nx 96 --ny 64 --iters 400 --sleep-ms 25 --report 40"
START_RE = r"^heat: rank (\d+) node (\S+) (start|restored) iter (\d+)$"
DONE_RE = r"^heat: done iters=(\d+) checksum=([0-9a-f]{16})$"


def heat_path(c):
    path = os.path.join(c.build_dir, "contrib", "examples", "heat")
    assert os.access(path, os.X_OK), f"{path}: build the example first"
    return path


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def starts(text):
    return [(int(r), n, k, int(i)) for r, n, k, i in re.findall(START_RE, text, re.M)]


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
    ref = cl.srun_mpi(c, f"-N3 -n6 {heat} {HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}",
                      started_re=START_RE, timeout=120)
    assert ref.rc == 0, f"reference run failed:\n{ref}"
    reference = re.search(DONE_RE, ref.stdout, re.M).group(2)

    script = os.path.join(c.workdir, "handoff.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate -N3 -n6 {heat} {HEAT_ARGS}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    for attempt in range(3):
        out = os.path.join(c.workdir, f"handoff.{attempt}.out")
        job = cl.submit_job(c, f"-N3 --exclusive -o {out} {script}")
        text = cl.repeat_until(lambda: read(out), lambda t: len(starts(t)) >= 6
                               or "srun_exit=" in t, timeout=90)
        if len(starts(text)) >= 6:
            break
        c.run(f"scancel {job}", user="root", timeout=30)
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
            assert re.search(rf"JobId={job} rank={rank} generation=1 "
                             rf"node={restored[rank]}: image received and verified", log), \
                f"no hand-off line in slurmd.{restored[rank]}.log"
        # Ranks that stayed never had their images copied anywhere.
        for rank in set(range(6)) - set(moving):
            homes = [n for n in c.nodes if os.path.exists(os.path.join(
                images, n, str(job), f"rank{rank}.g1.img"))]
            assert homes == [first[rank]], f"rank {rank} images on {homes}"
        comment = cl.get_job_parameter(c, job, "SystemComment", "")
        assert comment.startswith("mode=auto gen=1 moves=1 last_move="), comment
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
