# SPDX-License-Identifier: GPL-2.0-or-later
"""test_precopy.py - live migration: memory regions and their pre-copy
(--migrate=...,precopy=on, issue 19)

heat --state-mib N registers N MiB per rank as the memory region "state"
(smig_region_register()) beside its capture callback, and rewrites 256 KiB
of it every iteration, also while libsmig's pre-copy thread copies it.
"""

import os
import re

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read, starts, submit_started

STATE_MIB = 64
HEAT_ARGS = f"--nx 96 --ny 64 --iters 400 --report 40 --state-mib {STATE_MIB}"
STATE_RE = r"^heat: state checksum=([0-9a-f]{16})$"
PRECOPY_RE = (r"^smig: rank (\d+): generation (\d+): pre-copy: (\d+) rounds, "
              r"(\d+) of (\d+) bytes copied while running")
AT_STOP_RE = (r"^smig: rank (\d+): generation (\d+): regions: (\d+) bytes, "
              r"(\d+) written at the safe point \((\d+) pre-copy rounds")


def reference(c, heat):
    """Grid and state checksums of the same run without migration."""
    ref = cl.srun_mpi(c, f"-N2 -n4 {heat} {HEAT_ARGS} --sleep-ms 0",
                      started_re=START_RE, timeout=180)
    assert ref.rc == 0, f"reference run failed:\n{ref}"
    done = re.search(DONE_RE, ref.stdout, re.M)
    state = re.search(STATE_RE, ref.stdout, re.M)
    assert done and state, f"the reference run printed no checksums:\n{ref}"
    return done.group(2), state.group(1)


def test_precopy_drain(cluster, needs_plugins):
    """Draining a node of a step with precopy=on moves its ranks: each rank
    pre-copies its 64 MiB region in rounds while heat runs on and writes it,
    writes at the safe point only the blocks changed since (fewer bytes
    than the region), every rank restores at the iteration where all
    stopped, and the grid and the state end byte-identical to a run
    without migration."""
    c = cluster
    heat = heat_path(c)
    ref_grid, ref_state = reference(c, heat)

    script = os.path.join(c.workdir, "precopy.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "export SLURM_MIGRATE_DEBUG=1\n"
                "srun --mpi=pmix --migrate=manual,precopy=on -N2 -n4 "
                f"{heat} {HEAT_ARGS} --sleep-ms 50\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "precopy", script,
                                    "-N3 --ntasks-per-node=2", 4)
    first = {r: n for r, n, _, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim = first[3]
    r = c.run(f"scontrol update nodename={victim} state=drain reason=precopy",
              user="root", timeout=30)
    assert r.rc == 0, str(r)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=240)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"

        # The pre-copy ran on every rank, with the application running.
        total = STATE_MIB << 20
        pre = {int(m[0]): (int(m[2]), int(m[3]), int(m[4]))
               for m in re.findall(PRECOPY_RE, text, re.M)}
        assert sorted(pre) == [0, 1, 2, 3], \
            f"not every rank pre-copied its region:\n{text}"
        for rank, (rounds, copied, size) in pre.items():
            assert size == total, (rank, size)
            assert rounds >= 1 and copied >= total, (rank, rounds, copied)
        # At the safe point only what changed since the last round: heat
        # rewrites 256 KiB (within one 1 MiB block) per 50 ms iteration,
        # so all 64 blocks would take well over a hundred iterations.
        stop = {int(m[0]): (int(m[2]), int(m[3]), int(m[4]))
                for m in re.findall(AT_STOP_RE, text, re.M)}
        assert sorted(stop) == [0, 1, 2, 3], f"no capture line per rank:\n{text}"
        # What it did (pytest -s): rank: (rounds, bytes copied while
        # running, region bytes), rank: (region bytes, bytes at the stop,
        # rounds).
        print(f"\npre-copy: {pre}\nat the stop: {stop}")
        for rank, (size, at_stop, rounds) in stop.items():
            assert size == total and rounds >= 1, (rank, size, rounds)
            assert at_stop < total, \
                f"rank {rank} wrote its whole region at the safe point:\n{text}"

        stopped = re.findall(r"^heat: rank (\d+) stopping for migration at iter (\d+)$",
                             text, re.M)
        assert sorted(int(r) for r, _ in stopped) == [0, 1, 2, 3], text
        assert len({i for _, i in stopped}) == 1, stopped
        restored = {rank: (node, it) for rank, node, kind, it in starts(text)
                    if kind == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
        assert {it for _, it in restored.values()} == {int(stopped[0][1])}, restored
        assert victim not in {n for n, _ in restored.values()}, restored

        done = re.search(DONE_RE, text, re.M)
        assert done and done.group(2) == ref_grid, \
            f"grid checksum not that of a run without migration ({ref_grid}):\n{text}"
        st = re.search(STATE_RE, text, re.M)
        assert st and st.group(1) == ref_state, \
            f"state checksum not that of a run without migration ({ref_state}):\n{text}"
        assert "pre-copy failed" not in text, text
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)


def test_precopy_refused_value(cluster, needs_plugins):
    """A bad precopy= value is refused by srun before anything runs, naming
    key and value."""
    c = cluster
    r = c.run("salloc -N1 -n1 srun --mpi=pmix --migrate=manual,precopy=yes "
              "-n1 echo ran-anyway", timeout=90)
    out = r.stdout + r.stderr
    assert r.rc not in (0, None), f"srun accepted precopy=yes:\n{r}"
    assert "precopy=yes: not on or off (precopy=on, precopy=off)" in out, str(r)
    assert "ran-anyway" not in out, str(r)
