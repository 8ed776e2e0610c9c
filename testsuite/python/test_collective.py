# SPDX-License-Identifier: GPL-2.0-or-later
"""test_collective.py - a code whose checkpoint is collective: MPI inside the
capture and restore callbacks (smig(3), "Collective contract")

heat --mpi-capture runs an MPI_Allreduce and a gather of the whole grid to
rank 0 inside its capture callback, as codes that write one restart file
from rank 0 do, and prints what smig_capture_info() says; --restore-later
registers with SMIG_RESTORE_LATER and restores through smig_restore(), whose
restore callback checks with an MPI_Allreduce that all ranks restored one
iteration. A capture asked for by the job's owner (reason request, the ranks
go on) and then a drain (reason drain, the ranks stop and move) must leave
the result bit-identical to a run without migration.
"""

import os
import re

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read, starts, submit_started

# About 14 s of compute (iters x sleep-ms): room for a capture and a drain.
HEAT_ARGS = "--nx 96 --ny 64 --iters 560 --sleep-ms 25 --report 20"
CAPTURE_RE = (r"^heat: rank (\d+) capture gen=(\d+) reason=(\w+) stop=(\d) "
              r"safepoint=(\d+) iter=(\d+) min=(\d+) max=(\d+)"
              r"(?: checksum=([0-9a-f]{16}))?$")
CHECK_RE = r"^heat: rank (\d+) restore check iter=(\d+) min=(\d+) max=(\d+)$"


@pytest.fixture(scope="module")
def reference(cluster):
    """Checksum of the same computation without --migrate and without any move."""
    args = HEAT_ARGS.replace("--sleep-ms 25", "--sleep-ms 0")
    r = cl.srun_mpi(cluster, f"-N2 -n4 {heat_path(cluster)} {args}",
                    started_re=START_RE, timeout=120)
    assert r.rc == 0, f"reference run failed:\n{r}"
    m = re.search(DONE_RE, r.stdout, re.M)
    assert m, f"reference run printed no checksum:\n{r}"
    return m.group(2)


def submit(c, name, extra, migrate=""):
    """sbatch -N3 (one spare node) running srun --migrate[=MIGRATE] -N2 -n4
    heat EXTRA;
    wait until the four ranks started (heat.submit_started: the launch, not
    an assertion, is retried only when Open MPI's start-up failed).
    Return (job id, output path)."""
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate{'=' + migrate if migrate else ''} "
                f"-N2 -n4 {heat_path(c)} "
                f"{HEAT_ARGS} {extra}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, name, script, "-N3 --ntasks-per-node=2", 4)
    if len(starts(text)) < 4:
        pytest.fail(f"job {job} did not start its 4 ranks:\n{text}")
    return job, out


def captures(text, gen):
    """{rank: match groups} of the capture lines of generation GEN."""
    return {int(m[0]): m for m in re.findall(CAPTURE_RE, text, re.M)
            if int(m[1]) == gen}


def check_capture_lines(text, gen, reason, stop):
    """Every rank ran its MPI capture callback for GEN at one safe point and
    iteration, saw the reason and stop, and rank 0 got the gathered grid."""
    got = captures(text, gen)
    assert sorted(got) == [0, 1, 2, 3], f"capture lines of gen {gen}:\n{text}"
    assert {(m[2], m[3]) for m in got.values()} == {(reason, str(stop))}, \
        f"gen {gen}: expected reason={reason} stop={stop}: {got}"
    assert len({m[4] for m in got.values()}) == 1, \
        f"gen {gen} captured at different safe points: {got}"
    it = {m[5] for m in got.values()}
    assert len(it) == 1, f"gen {gen} captured at different iterations: {got}"
    for m in got.values():
        # The MPI_Allreduce inside the callback saw every rank's iteration.
        assert m[6] == m[7] == m[5], f"Allreduce in the callback: {m}"
    assert got[0][8], f"rank 0 printed no gathered checksum: {got[0]}"
    assert all(not m[8] for r, m in got.items() if r), got
    return int(it.pop())


def test_collective_callbacks_drain(cluster, needs_plugins, reference):
    """heat with MPI in its capture callback (Allreduce + gather to rank 0)
    and a restore through smig_restore() with MPI in the restore callback:
    "smig capture" by the job's owner runs the callback on every rank with
    gen=1 reason=request stop=0 and the ranks go on; a drain then captures
    gen=2 with reason=drain stop=1, every rank stops at that iteration and
    restores it (the Allreduce in the restore callback sees one iteration),
    and the job completes with the checksum of a run without migration."""
    c = cluster
    smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
    job, out = submit(c, "collective", "--mpi-capture --restore-later")
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    assert sorted(first) == [0, 1, 2, 3], read(out)
    victim = first[3]
    try:
        r = c.run(f"{smig} capture {job} --wait 60", timeout=90)
        assert r.rc == 0, f"smig capture failed:\n{r}"
        assert re.search(rf"^JobId={job} capture started StepId=0:gen=1$",
                         r.stdout, re.M), str(r)
        assert f"JobId={job} generation 1 is good" in r.stdout, str(r)
        text = cl.repeat_until(lambda: read(out),
                               lambda t: len(captures(t, 1)) >= 4, timeout=30)
        it1 = check_capture_lines(text, 1, "request", 0)

        r = c.run(f"scontrol update nodename={victim} state=drain "
                  "reason=collective", user="root", timeout=30)
        assert r.rc == 0, f"drain {victim} failed:\n{r}"
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"

        m = re.search(DONE_RE, text, re.M)
        assert m, f"no final checksum:\n{text}"
        assert m.group(1) == "560"
        assert m.group(2) == reference, \
            f"checksum {m.group(2)} != {reference} without migration"

        it2 = check_capture_lines(text, 2, "drain", 1)
        assert it2 > it1, f"gen 2 at iter {it2}, not after gen 1 ({it1})"
        stopped = re.findall(
            r"^heat: rank (\d+) stopping for migration at iter (\d+)$",
            text, re.M)
        assert sorted(int(r) for r, _ in stopped) == [0, 1, 2, 3], text
        assert {int(i) for _, i in stopped} == {it2}, \
            f"ranks stopped elsewhere than the capture: {stopped}"
        restored = {rank: (node, it) for rank, node, kind, it in starts(text)
                    if kind == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
        assert {it for _, it in restored.values()} == {it2}, restored
        assert victim not in {n for n, _ in restored.values()}, restored
        checks = re.findall(CHECK_RE, text, re.M)
        assert sorted(int(r) for r, *_ in checks) == [0, 1, 2, 3], \
            f"restore callbacks did not all run their Allreduce:\n{text}"
        for _, it, lo, hi in checks:
            assert int(it) == int(lo) == int(hi) == it2, checks
        # No rank waited so long for a verdict that it said so.
        assert "still waiting" not in text, text
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)


def test_collective_callback_after_abort(cluster, needs_plugins, reference):
    """The capture of a drain times out because rank 3 sleeps before its
    safe point (capture-timeout=3s, a 12 s stall) after every rank got the
    capture point: the balancer aborts generation 1, yet every rank, rank 3
    once it wakes, still runs its callback at that capture point (the
    contract: once the capture point is known, the callback runs on every
    rank or none), so the collectives in the callbacks match (min = max =
    the iteration on all four) and the job goes on; no image of generation 1
    is written (it was aborted before any callback returned). A later try of
    the drain moves the ranks, and the result is that of a run without
    migration. (With the previous behaviour every rank dropped generation 1
    at the abort: no gen=1 lines, which this test tells apart. That was
    harmless here only because the halo exchanges kept the other ranks from
    reaching the capture point during rank 3's stall; a rank that reached it
    and entered a collective of its callback before the abort would have
    waited there for rank 3, which skipped its callback.)"""
    c = cluster
    job, out = submit(c, "collective_abort",
                      "--mpi-capture --stall-rank 3 --stall-iter 60 "
                      "--stall-sec 12", migrate="capture-timeout=3s")
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    victim = first[3]
    # Drain while rank 3 sleeps: rank 0 got to iteration 60 too.
    cl.repeat_until(lambda: read(out), lambda t: "heat: iter 60/" in t,
                    timeout=60)
    try:
        r = c.run(f"scontrol update nodename={victim} state=drain "
                  "reason=collective", user="root", timeout=30)
        assert r.rc == 0, f"drain {victim} failed:\n{r}"
        comment = cl.repeat_until(lambda: cl.migration_state(c, job),
                                  lambda s: "last_error=" in s, timeout=30)
        assert re.search(r"^mode=auto gen=0 moves=0 "
                         r"last_error=gen=1;reason=capture-timeout;", comment), \
            f"state line {comment!r}"
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == reference, \
            f"wrong or no checksum (want {reference}):\n{text}"

        # The aborted generation's callbacks ran on all four ranks at one
        # safe point, and their Allreduce matched.
        it1 = check_capture_lines(text, 1, "drain", 1)
        assert it1 > 60, f"generation 1 captured at iteration {it1}"
        jobdir = os.path.join(c.dir, "images", str(job))
        g1 = [f for f in os.listdir(jobdir) if f.endswith(".g1.img")]
        assert not g1, f"images of the aborted generation 1: {g1}"

        stopped = re.findall(
            r"^heat: rank (\d+) stopping for migration at iter (\d+)$",
            text, re.M)
        assert sorted(int(r) for r, _ in stopped) == [0, 1, 2, 3], text
        moved = {int(i) for _, i in stopped}
        assert len(moved) == 1, f"ranks stopped at different safe points: {stopped}"
        gens = {int(m[1]) for m in re.findall(CAPTURE_RE, text, re.M)}
        last = max(gens)
        assert last > 1, f"no capture after generation 1: {sorted(gens)}"
        assert check_capture_lines(text, last, "drain", 1) == moved.pop()
        restored = {rank: (node, it) for rank, node, kind, it in starts(text)
                    if kind == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
        assert victim not in {n for n, _ in restored.values()}, restored
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)


def test_restore_fails_everywhere(cluster, needs_plugins):
    """smig_restore() gives the same answer on every rank: after a drain
    moves the step, rank 3's restore callback fails (after its
    MPI_Allreduce), and all four ranks' smig_restore() return "the
    application's callback failed" (they all reach the MPI_Barrier heat
    calls on a failure), none starts computing, and srun fails."""
    c = cluster
    job, out = submit(c, "restore_fails", "--restore-later --fail-restore 3")
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    victim = first[3]
    try:
        r = c.run(f"scontrol update nodename={victim} state=drain "
                  "reason=collective", user="root", timeout=30)
        assert r.rc == 0, f"drain {victim} failed:\n{r}"
        text = cl.repeat_until(lambda: read(out),
                               lambda t: "srun_exit=" in t, timeout=180)
        stopped = re.findall(
            r"^heat: rank (\d+) stopping for migration at iter (\d+)$",
            text, re.M)
        assert sorted(int(r) for r, _ in stopped) == [0, 1, 2, 3], text
        # The fresh start's answers (success) first, then the relaunched
        # step's: the last one of each rank is the relaunched step's.
        failed = dict((int(r), a) for r, a in re.findall(
            r"^heat: rank (\d+) smig_restore: (.*)$", text, re.M))
        assert sorted(failed) == [0, 1, 2, 3], text
        assert set(failed.values()) == {"the application's callback failed"}, \
            f"ranks answered differently: {failed}\n{text}"
        checks = re.findall(CHECK_RE, text, re.M)
        assert sorted(int(r) for r, *_ in checks) == [0, 1, 2, 3], text
        assert "restore callback failed (returned -1)" in text, text
        assert not [s for s in starts(text) if s[2] == "restored"], text
        assert not re.search(DONE_RE, text, re.M), text
        assert re.search(r"^srun_exit=[1-9]", text, re.M), text
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)
