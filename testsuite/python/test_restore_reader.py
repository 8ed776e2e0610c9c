# SPDX-License-Identifier: GPL-2.0-or-later
"""test_restore_reader.py - restore through smig_register_reader()/smig_read()

heat --reader registers a streaming restore callback that reads its image
one grid row per smig_read() instead of getting one buffer.
"""

import os
import re

import cluster as cl
from heat import DONE_RE, heat_path, read, reference_checksum, starts, submit_started

HEAT_ARGS = "--nx 96 --ny 64 --iters 400 --sleep-ms 25 --report 40"


def test_restore_reader(cluster, needs_plugins):
    """Draining a node of a step whose ranks restore with a reader handle
    moves its ranks: every rank restores generation 1 row by row through
    smig_read() at the iteration where all stopped, and the job completes
    with the checksum of a run without migration."""
    c = cluster
    heat = heat_path(c)
    reference = reference_checksum(c, f"-N2 -n4 {heat} {HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}")

    script = os.path.join(c.workdir, "reader.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate -N2 -n4 {heat} {HEAT_ARGS} --reader\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, "reader", script, "-N3 --ntasks-per-node=2", 4)
    first = {r: n for r, n, _, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim = first[3]
    r = c.run(f"scontrol update nodename={victim} state=drain reason=reader",
              user="root", timeout=30)
    assert r.rc == 0, str(r)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == reference, \
            f"checksum not that of a run without migration ({reference}):\n{text}"
        stopped = re.findall(r"^heat: rank (\d+) stopping for migration at iter (\d+)$",
                             text, re.M)
        assert len({i for _, i in stopped}) == 1, stopped
        restored = {rank: (node, it) for rank, node, kind, it in starts(text)
                    if kind == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
        assert {it for _, it in restored.values()} == {int(stopped[0][1])}, restored
        assert victim not in {n for n, _ in restored.values()}, restored
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
