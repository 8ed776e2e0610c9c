# SPDX-License-Identifier: GPL-2.0-or-later
"""test_app_lammps.py - a third-party MPI code migrated: LAMMPS (issue 17)

Debian's lammps (lmp, built against Debian's Open MPI) runs its
Lennard-Jones melt under srun --mpi=pmix --migrate=capture=signal:USR1
through contrib/examples/lammps/lmp-migrate (the glue: README.md there).
A drain moves the step mid-run: LAMMPS halts at a neighbour rebuild, writes
its restart file, the agents wrap it into images, the relaunched step reads
it back, and the final state (positions and velocities of all 4000 atoms,
%.17g, sorted by id) is byte-identical to that of a run without migration.
With the only generation's image damaged, a restart of the step from it
fails by name instead of starting LAMMPS from nothing.
"""

import filecmp
import os
import re
import shutil

import pytest

import cluster as cl
from heat import read, submit_started

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "contrib", "examples", "lammps")
NSTEPS = 10000
SRUN = ("srun --mpi=pmix --migrate=capture=signal:USR1 -N2 -n2 ./lmp-migrate "
        f"lmp -in in.melt -log none -var nsteps {NSTEPS}")
# A restart: a rank whose image is bad does not start (task_init fails), the
# others would wait for it in MPI_Init; the plugin runs a step started with
# SLURM_MIGRATE_RESTORE_GEN as with srun -K, which ends it at once (no -K
# here: test_app_lammps_damaged shows it).
SRUN2 = SRUN
# LAMMPS' thermo line (step temp pe ke etotal press), rank 0 prints it once
# every rank is past MPI_Init and the run's set-up.
THERMO_RE = r"^\s+(\d+)(?:\s+-?[0-9.]+(?:e[-+]?\d+)?){5}\s*$"
HALT_RE = r"^Fix halt condition for fix-id halt met on step (\d+) "
RANK_RE = r"^lmp-migrate: rank (\d+) node (\S+) (starts|restores)$"
HDR = 128                       # image header size (src/common/smig_image.h)
RESUMED = set()                 # jobs whose drained node step1() resumed


def steps(text):
    return [int(s) for s in re.findall(THERMO_RE, text, re.M)]


def app_dir(c, name):
    """A directory of the test user's with in.melt and lmp-migrate (a
    module fixture cannot use needs_plugins: the same skip here)."""
    if not c.plugins:
        pytest.skip("SMIG_NO_PLUGINS=1: the cluster runs without the plugins")
    assert shutil.which("lmp"), "lmp not found: apt-get install lammps"
    d = os.path.join(c.workdir, name)
    r = c.run(f"rm -rf {d} && mkdir -p {d} && cp {SRC}/in.melt "
              f"{SRC}/lmp-migrate {d}/", timeout=30)
    assert r.rc == 0, str(r)
    return d


def started(text):
    """submit_started()'s count: LAMMPS' thermo lines once both wrappers
    said they start (rank 0 prints them after every rank's MPI_Init)."""
    return steps(text) if len(re.findall(RANK_RE, text, re.M)) == 2 else []


def batch(c, name, d, body, opts):
    """sbatch OPTS a script that runs BODY in D; wait until LAMMPS printed
    two thermo lines (submit_started: the Open MPI start-up retry).
    RET (job, output path, output so far)."""
    script = os.path.join(d, "job.sbatch")
    with open(script, "w") as f:
        f.write(f"#!/bin/bash\ncd {d}\n{body}")
    os.chmod(script, 0o755)
    return submit_started(c, name, script, opts, 2, starts_fn=started)


@pytest.fixture(scope="module")
def reference(cluster):
    """final.dump of the same step, same srun words, in a batch job of
    two nodes, not migrated."""
    c = cluster
    d = app_dir(c, "lammps_ref")
    job, out, _ = batch(c, "lammps_ref", d, f"{SRUN}\necho srun_exit=$?\n",
                        "-N2 --ntasks-per-node=1")
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
    text = read(out)
    assert state == "COMPLETED" and "srun_exit=0" in text, \
        f"reference job {job} ended {state}:\n{text}"
    assert "Fix halt" not in text and max(steps(text)) == NSTEPS, text
    path = os.path.join(d, "final.dump")
    assert os.path.getsize(path) > 4000 * 7 * 10, f"{path}: too short"
    return path


@pytest.fixture(scope="module")
def moved(cluster):
    """The step in a 3-node batch job, rank 1's node drained once LAMMPS
    printed two thermo lines; after the step the script waits for GO, then
    runs it again with SLURM_MIGRATE_RESTORE_GEN=last (step 2). Yields
    (job, output path, work directory, drained node, GO path)."""
    c = cluster
    d = app_dir(c, "lammps_moved")
    go = os.path.join(d, "GO")
    job, out, text = batch(
        c, "lammps", d,
        f"{SRUN}\necho srun_exit=$?\n"
        f"while [ ! -e {go} ]; do sleep 0.2; done\n"
        "rm -f final.dump\necho step2\n"
        f"SLURM_MIGRATE_RESTORE_GEN=last {SRUN2}\necho srun2_exit=$?\n",
        "-N3 --ntasks-per-node=1")
    ranks = {int(r): n for r, n, _ in re.findall(RANK_RE, text, re.M)}
    assert sorted(ranks) == [0, 1] and len(steps(text)) >= 2, text
    victim = ranks[1]
    try:
        r = c.run(f"scontrol update nodename={victim} state=drain "
                  "reason=lammps", user="root", timeout=30)
        assert r.rc == 0, str(r)
        yield job, out, d, victim, go
    finally:
        with open(go, "w"):
            pass
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)


def step1(c, moved):
    """The output once the moved step ended; the drained node is resumed
    (the move is over), so no test leaves it drained."""
    job, out, _, victim, _ = moved
    text = cl.repeat_until(lambda: read(out), lambda t: "srun_exit=" in t,
                           timeout=240)
    if job not in RESUMED:
        r = c.run(f"scontrol update nodename={victim} state=resume",
                  user="root", timeout=30)
        assert r.rc == 0, str(r)
        RESUMED.add(job)
    assert "srun_exit=0" in text, f"the moved step failed:\n{text}"
    return text


def test_app_lammps(cluster, needs_plugins, reference, moved):
    """Draining the node of rank 1 of LAMMPS' melt (capture=signal:USR1)
    moves the step: LAMMPS halts once at a step S (a multiple of 10, a
    neighbour rebuild, before the end), both ranks hand over their
    checkpoint files, the relaunched ranks (none on the drained node) read
    the restart file and go on from S, and final.dump is byte-identical to
    the reference run's."""
    c = cluster
    job, out, d, victim, _ = moved
    text = step1(c, moved)
    halts = [int(s) for s in re.findall(HALT_RE, text, re.M)]
    assert len(halts) == 1, f"not one halt:\n{text}"
    s = halts[0]
    assert s % 10 == 0 and 0 < s < NSTEPS, s
    done = re.findall(r"^lmp-migrate: rank (\d+) checkpointed$", text, re.M)
    assert sorted(done) == ["0", "1"], text
    first, _, after = text.partition("lmp-migrate: rank 1 checkpointed")
    restores = {int(r): n for r, n, k in re.findall(RANK_RE, after, re.M)
                if k == "restores"}
    assert sorted(restores) == [0, 1], f"not every rank restored once:\n{text}"
    assert len(re.findall(RANK_RE, after, re.M)) == 2, text
    assert victim not in restores.values(), (victim, restores)
    assert "relaunch try" not in text, text
    # The relaunched LAMMPS starts at the halted step (read_restart): its
    # thermo lines follow rank 0's restore line in rank 0's ordered output.
    m = re.search(r"^lmp-migrate: rank 0 node \S+ restores$", after, re.M)
    relaunched = steps(after[m.end():])
    assert relaunched[0] == s and relaunched[-1] == NSTEPS, text
    for rank in (0, 1):
        img = os.path.join(c.dir, "images", str(job), f"rank{rank}.g1.img")
        with open(img, "rb") as f:
            assert f.read(8) == b"SMIGIMG\0", f"{img}: not an image"
    assert filecmp.cmp(reference, os.path.join(d, "final.dump"),
                       shallow=False), \
        f"final.dump after the move differs from {reference}"


def test_app_lammps_damaged(cluster, moved):
    """Generation 1 (the move's) is the job's only good generation; with a
    bit of its rank 0 image's payload flipped (inside LAMMPS' restart
    file), step 2 (SLURM_MIGRATE_RESTORE_GEN=last) fails naming the image
    and "payload checksum mismatch": rank 0 never starts, so LAMMPS never
    runs (no banner, no final.dump); srun, without -K on its command line,
    ends the step (the plugin set SLURM_KILL_BAD_EXIT=1 for the restart)."""
    c = cluster
    job, out, d, _, go = moved
    step1(c, moved)
    jobdir = os.path.join(c.dir, "images", str(job))
    good = re.findall(r"^gen (\d+)$", read(os.path.join(jobdir, "good")), re.M)
    assert good == ["1"], f"good generations: {good}"
    img = os.path.join(jobdir, "rank0.g1.img")
    with open(img, "r+b") as f:
        f.seek(HDR + 1000)
        b = f.read(1)[0]
        f.seek(HDR + 1000)
        f.write(bytes([b ^ 8]))
    with open(go, "w"):
        pass
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
    text = read(out)
    _, _, step2 = text.partition("step2\n")
    m = re.search(r"^srun2_exit=(\d+)$", step2, re.M)
    assert m and m.group(1) != "0", f"step 2 did not fail ({state}):\n{text}"
    lines = [l for l in step2.splitlines()
             if img in l and "payload checksum mismatch" in l]
    assert lines, f"no error names {img} and the checksum:\n{step2}"
    assert "lmp-migrate: rank 0 " not in step2 and "LAMMPS (" not in step2, \
        f"rank 0 started from a damaged image:\n{step2}"
    assert not os.path.exists(os.path.join(d, "final.dump")), step2
