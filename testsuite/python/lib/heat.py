# SPDX-License-Identifier: GPL-2.0-or-later
"""heat.py - what the tests read from contrib/examples/heat and its output

The example prints one line per rank when it starts or restores
("heat: rank R node NODE start|restored iter I") and rank 0 prints the
checksum of the final grid ("heat: done iters=N checksum=HEX").
"""

import os
import re

import cluster as cl

START_RE = r"^heat: rank (\d+) node (\S+) (start|restored) iter (\d+)$"
DONE_RE = r"^heat: done iters=(\d+) checksum=([0-9a-f]{16})$"


def heat_path(c):
    """Path of the heat example of the cluster's build."""
    path = os.path.join(c.build_dir, "contrib", "examples", "heat")
    assert os.access(path, os.X_OK), f"{path}: build the example first"
    return path


def heat_mpich_path(c):
    """Path of heat built against MPICH (contrib/examples/heat-mpich)."""
    path = os.path.join(c.build_dir, "contrib", "examples", "heat-mpich")
    assert os.access(path, os.X_OK), \
        f"{path}: not built: configure did not find mpicc.mpich (apt-get install mpich libmpich-dev)"
    return path


def read(path):
    """Text of a file, "" while it does not exist yet (job output)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def starts(text):
    """[(rank, node, "start"|"restored", iter)] of the lines printed so far."""
    return [(int(r), n, k, int(i)) for r, n, k, i in re.findall(START_RE, text, re.M)]


def submit_started(c, name, script, sbatch_opts, nranks, starts_fn=starts,
                   attempts=3, crash_ok=True):
    """sbatch SBATCH_OPTS SCRIPT (output NAME.<attempt>.out in the work
    directory) and wait until NRANKS start lines (STARTS_FN) are printed.
    Only the launch is retried, at most ATTEMPTS times, and only when the
    ranks did not all start because Open MPI's start-up failed
    (cl.job_start_retry: its own words, nothing of ours, no migration);
    the caller asserts on the result. Return (job id, output path, output
    text)."""
    for attempt in range(1, attempts + 1):
        out = os.path.join(c.workdir, f"{name}.{attempt}.out")
        marks = cl.log_marks(c)
        job = cl.submit_job(c, f"{sbatch_opts} -o {out} {script}")
        text = cl.repeat_until(lambda: read(out), lambda t: len(starts_fn(t)) >= nranks
                               or "srun_exit=" in t, timeout=90)
        if len(starts_fn(text)) >= nranks:
            break
        again = cl.job_start_retry(c, job, text, len(starts_fn(text)), nranks,
                                   attempt, attempts, marks, crash_ok,
                                   timed_out="srun_exit=" not in text)
        c.run(f"scancel {job}", user="root", timeout=30)
        if not again:
            break
    return job, out, text


def reference_checksum(c, srun_args, started_re=START_RE, done_re=DONE_RE,
                       timeout=120, mpi="pmix"):
    """The checksum (DONE_RE's second group) that "srun --mpi=MPI
    SRUN_ARGS" prints without migration; asserts that the run succeeded."""
    ref = cl.srun_mpi(c, srun_args, started_re=started_re, timeout=timeout,
                      mpi=mpi)
    assert ref.rc == 0, f"reference run failed:\n{ref}"
    m = re.search(done_re, ref.stdout, re.M)
    assert m, f"the reference run printed no checksum:\n{ref}"
    return m.group(2)


def assert_moved_to_spare(text, first, moving, victim, step_nodes):
    """Asserts on heat's output TEXT of a drain move: every rank stopped
    at one safe point and restored at that iteration, none on the drained
    node VICTIM, the ranks MOVING together on one node outside STEP_NODES,
    the others where they started (FIRST: rank -> node). RET that node."""
    stopped = re.findall(r"^heat: rank (\d+) stopping for migration at iter (\d+)$",
                         text, re.M)
    assert sorted(int(r) for r, _ in stopped) == [0, 1, 2, 3], text
    assert len({i for _, i in stopped}) == 1, \
        f"ranks stopped at different safe points: {stopped}"
    restored = {rank: (node, it) for rank, node, kind, it in starts(text)
                if kind == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
    assert {it for _, it in restored.values()} == {int(stopped[0][1])}, \
        f"restored at other iterations than captured: {restored}"
    assert victim not in {n for n, _ in restored.values()}, \
        f"a rank restarted on the drained node {victim}: {restored}"
    spare = sorted({n for n, _ in restored.values()} - set(step_nodes))
    assert len(spare) == 1, f"moved ranks not on one spare node: {restored}"
    for rank in moving:
        assert restored[rank][0] == spare[0], restored
    for rank in set(first) - set(moving):
        assert restored[rank][0] == first[rank], \
            "a rank that did not have to move moved"
    return spare[0]
