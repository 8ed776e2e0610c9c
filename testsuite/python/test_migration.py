# SPDX-License-Identifier: GPL-2.0-or-later
"""test_migration.py - draining a node moves a running MPI job's ranks off it

The walking skeleton end to end: sbatch allocates three nodes, the step runs
on two of them, an admin drains one, the balancer captures recovery images of
all ranks at one safe point, and srun relaunches the step with the drained
node's ranks on the spare node, where they restore and finish the run.
"""

import os
import re
import stat

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, assert_moved_to_spare, heat_path, read, \
    starts, submit_started

# Long enough to drain a node mid-run (iters x sleep-ms ~ 12 s of compute).
HEAT_ARGS = "--nx 96 --ny 64 --iters 480 --sleep-ms 25 --report 20"


@pytest.fixture(scope="module")
def reference_checksum(cluster):
    """Checksum of the same computation without --migrate and without any move."""
    r = cl.srun_mpi(cluster, f"-N2 -n4 {heat_path(cluster)} {HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}",
                    started_re=START_RE, timeout=120)
    assert r.rc == 0, f"reference run failed:\n{r}"
    m = re.search(DONE_RE, r.stdout, re.M)
    assert m, f"reference run printed no checksum:\n{r}"
    return m.group(2)


def submit_heat(c, name, migrate, heat_extra="", attempts=3, mpi="pmix",
                heat=None):
    """Submit "sbatch -N3 --ntasks-per-node=2" running
    "srun --mpi=MPI --migrate=MIGRATE -N2 -n4 HEAT ..." and wait until all
    four ranks printed their start line. The launch (not an assertion) is
    retried only when Open MPI's start-up failed (cl.job_start_retry; never
    for another MPI). Return (job_id, output path)."""
    script = os.path.join(c.workdir, f"{name}.sbatch")
    if mpi != "pmix":
        attempts = 1
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi={mpi} --migrate{'=' + migrate if migrate else ''} "
                f"-N2 -n4 {heat or heat_path(c)} {HEAT_ARGS} {heat_extra}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    for attempt in range(1, attempts + 1):
        out = os.path.join(c.workdir, f"{name}.{attempt}.out")
        marks = cl.log_marks(c)
        job = cl.submit_job(c, f"-N3 --ntasks-per-node=2 -o {out} {script}")
        seen = cl.repeat_until(
            lambda: (read(out), cl.get_job_parameter(c, job, "JobState")),
            lambda t: len(starts(t[0])) >= 4 or t[1] in cl.TERMINAL_STATES,
            timeout=90)
        text = read(out)
        if len(starts(text)) >= 4:
            return job, out
        again = cl.job_start_retry(c, job, text, len(starts(text)), 4, attempt,
                                   attempts, marks,
                                   timed_out=seen[1] not in cl.TERMINAL_STATES)
        c.run(f"scancel {job}", user="root", timeout=30)
        if not again:
            pytest.fail(f"job {job} did not start its 4 ranks (state {seen[1]}):\n{text}")
    raise AssertionError("unreachable")


def drain(c, node, reason="maintenance"):
    r = c.run(f"scontrol update nodename={node} state=drain reason={reason}",
              user="root", timeout=30)
    assert r.rc == 0, f"drain {node} failed:\n{r}"


def resume(c, node):
    c.run(f"scontrol update nodename={node} state=resume", user="root", timeout=30)


def expand_ranks(text):
    """"0,2-3" -> {0, 2, 3}"""
    ranks = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        ranks.update(range(int(lo), int(hi or lo) + 1))
    return ranks


def system_comment(c, job):
    """The job's state line: SystemComment, or smigd's AdminComment segment."""
    return cl.migration_state(c, job)


def test_drain_migration(cluster, needs_plugins, reference_checksum):
    """Draining one of the step's two nodes moves its ranks to the spare node
    of the allocation: every rank stops at one safe point and restores from a
    verified image of generation 1, the drained node runs no rank afterwards,
    the job completes with the checksum of a run without migration, srun
    returns the app's exit status, and SystemComment shows
    mode, gen=1, moves=1 and the move (ranks, from, to, reason=drain)."""
    c = cluster
    job, out = submit_heat(c, "drain", "")
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    assert sorted(first) == [0, 1, 2, 3], read(out)
    alloc = cl.get_job_parameter(c, job, "NodeList")
    step_nodes = sorted(set(first.values()))
    assert len(step_nodes) == 2, f"step not on two nodes: {first}"
    victim = first[3]
    moving = sorted(r for r, n in first.items() if n == victim)

    line = cl.repeat_until(lambda: system_comment(c, job),
                           lambda s: s.startswith("mode=auto"), timeout=20)
    assert re.fullmatch(r"mode=auto gen=0 moves=0( load=\S+)?", line), \
        f"SystemComment before the drain: {line!r}"

    drain(c, victim)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert cl.get_job_parameter(c, job, "ExitCode") == "0:0"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"

        m = re.search(DONE_RE, text, re.M)
        assert m, f"no final checksum:\n{text}"
        assert m.group(1) == "480"
        assert m.group(2) == reference_checksum, \
            f"checksum {m.group(2)} != {reference_checksum} without migration"

        spare = assert_moved_to_spare(text, first, moving, victim, step_nodes)

        comment = system_comment(c, job)
        want = (f"mode=auto gen=1 moves=1 last_move=ranks={','.join(map(str, moving))};"
                f"from={victim};to={spare};reason=drain")
        assert comment == want, f"SystemComment={comment!r}, expected {want!r} (alloc {alloc})"

        jobdir = os.path.join(c.dir, "images", str(job))
        st = os.stat(jobdir)
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        for rank in range(4):
            img = os.path.join(jobdir, f"rank{rank}.g1.img")
            st = os.stat(img)
            assert stat.S_IMODE(st.st_mode) == 0o600, f"{img}: {oct(st.st_mode)}"
            with open(img, "rb") as f:
                assert f.read(8) == b"SMIGIMG\0", f"{img}: not an image"
    finally:
        resume(c, victim)


def test_capture_timeout(cluster, needs_plugins, reference_checksum):
    """A capture that cannot finish (rank 3 stalls outside its safe point for
    longer than capture-timeout) is abandoned: SystemComment records the
    failed generation, the reason and the ranks that did not make it (rank 3
    among them), with gen=0 and moves=0, and no rank stops for it. The drain
    is still acted on: the evacuation is tried again one capture timeout
    later, and once rank 3 is back a capture completes, the drained node's
    ranks move (all four stop at one iteration and restore it, none on the
    drained node) and the job finishes with the right checksum. Generation 1
    never becomes good."""
    c = cluster
    job, out = submit_heat(c, "timeout", "capture-timeout=3s",
                           "--stall-rank 3 --stall-iter 60 --stall-sec 12")
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    victim = first[3]
    # Drain while rank 3 sleeps: rank 0 got to iteration 60 too.
    cl.repeat_until(lambda: read(out), lambda t: "heat: iter 60/" in t, timeout=60)
    drain(c, victim)
    try:
        comment = cl.repeat_until(lambda: system_comment(c, job),
                                  lambda s: "last_error=" in s, timeout=30)
        m = re.fullmatch(r"mode=auto gen=0 moves=0 "
                         r"last_error=gen=1;reason=capture-timeout;ranks=([0-9,-]+)"
                         r"( load=\S+)?",
                         comment)
        assert m, f"SystemComment={comment!r}"
        # Its neighbours wait for rank 3's halo, so they may miss the target too.
        assert 3 in expand_ranks(m.group(1)), f"rank 3 not named: {comment!r}"
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == reference_checksum, \
            f"wrong or no checksum (want {reference_checksum}):\n{text}"
        stops = re.findall(r"^heat: rank (\d+) stopping for migration at "
                           r"iter (\d+)$", text, re.M)
        assert sorted(int(r) for r, _ in stops) == [0, 1, 2, 3], text
        assert len({i for _, i in stops}) == 1, stops
        restored = {r: (n, i) for r, n, k, i in starts(text)
                    if k == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], text
        assert {i for _, i in restored.values()} == {int(stops[0][1])}, text
        assert victim not in {n for n, _ in restored.values()}, text
        m = re.fullmatch(r"mode=auto gen=(\d+) moves=1 last_move=\S+;"
                         rf"from={victim};to=\S+;reason=drain( \S+)*",
                         system_comment(c, job))
        assert m and int(m.group(1)) > 1, system_comment(c, job)
        # Generation 1 never became good: rank 3 never wrote it.
        assert not os.path.exists(os.path.join(c.dir, "images", str(job), "rank3.g1.img"))
    finally:
        resume(c, victim)


def test_drain_without_migrate(cluster, reference_checksum):
    """A job that did not ask for --migrate behaves as Slurm does today when
    an admin drains a node under it: it keeps running there to the end with
    the right result, nothing is captured or moved, and it has no
    SystemComment."""
    c = cluster
    script = os.path.join(c.workdir, "plain.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix -N2 -n4 {heat_path(c)} {HEAT_ARGS}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "plain", script, "-N3 --ntasks-per-node=2", 4)
    first = {rank: node for rank, node, _, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim = first[3]
    drain(c, victim)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == reference_checksum, text
        assert "stopping for migration" not in text and "restored" not in text, text
        assert "migrate:" not in text, f"the plugin spoke to a plain job:\n{text}"
        assert system_comment(c, job) == ""
        assert not os.path.exists(os.path.join(c.dir, "images", str(job)))
    finally:
        resume(c, victim)


@pytest.mark.parametrize("pin", ["-w $SLURM_JOB_NODELIST",
                                 "--nodelist=$SLURM_JOB_NODELIST"])
def test_migrate_refuses_pinned_nodes(cluster, needs_plugins, pin):
    """srun --migrate with a node list of its own (-w, --nodelist) fails at
    srun time, naming the option, before anything runs: srun would ignore
    the balancer's mapping on a relaunch."""
    c = cluster
    r = c.run(f"salloc -N2 --ntasks-per-node=1 bash -c "
              f"'srun --migrate {pin} -n2 bash -c \"echo RAN\"'", timeout=60)
    assert not r.timed_out, str(r)
    assert r.rc != 0, f"srun accepted --migrate with {pin}:\n{r}"
    assert "RAN" not in r.stdout, str(r)
    opt = pin.split()[0].split("=")[0]
    assert f"--migrate cannot be combined with {opt}" in r.stderr, str(r)
