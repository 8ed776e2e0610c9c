# SPDX-License-Identifier: GPL-2.0-or-later
"""test_file_checkpoint.py - file-based capture and restore (smig(3),
"Checkpoint files")

heat --file-checkpoint checkpoints as a code with restart files does: its
capture callback writes a restart file with stdio at smig_capture_path() and
hands it over with smig_capture_file(); its restore callback reads the file
at smig_restore_path(). libsmig places the file into the rank's image (in
the kernel, checksummed) and gives it back on restore. A drain moves the
ranks (shared store, and node-local store with hand-off), and a restart
after the newest image was damaged falls back to the older generation, or
fails naming the images when no generation is good on every rank; the
result is always bit-identical to a run without migration.
"""

import os
import re
import struct

import pytest

import cluster as cl
from heat import (DONE_RE, heat_path, read, reference_checksum, starts,
                  submit_started)
from test_handoff import local_store  # noqa: F401 (fixture)

HEAT_ARGS = ("--nx 96 --ny 64 --iters 400 --sleep-ms 25 --report 40 "
             "--file-checkpoint")
HDR = 128                       # image header size (src/common/smig_image.h)
IMAGE_MAGIC = 0x48454154        # heat's restart file: "HEAT", rank, ...
FILE_BYTES = 48 + 16 * 96 * 8   # header + 16 rows of 96 doubles per rank
CKPT_RE = (r"^heat: rank (\d+) file checkpoint gen=(\d+) iter=(\d+) "
           r"bytes=(\d+) path=(\S+)$")
RESTORE_RE = r"^heat: rank (\d+) file restore iter=(\d+) bytes=(\d+) path=(\S+)$"
CAPTURE_RE = (r"^heat: rank (\d+) capture gen=(\d+) reason=(\w+) stop=(\d) "
              r"safepoint=\d+ iter=(\d+) min=(\d+) max=(\d+)")
CHECK_RE = r"^heat: rank (\d+) restore check iter=(\d+) min=(\d+) max=(\d+)$"


@pytest.fixture(scope="module")
def reference(cluster):
    """Checksum of the same computation without --migrate (the file API is
    then a no-op)."""
    return reference_checksum(
        cluster, f"-N2 -n4 {heat_path(cluster)} "
        f"{HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}")



def payload(path):
    """(magic, rank, iter, length) of heat's restart file inside an image."""
    with open(path, "rb") as f:
        data = f.read()
    magic, rank = struct.unpack_from("<II", data, HDR)
    it = struct.unpack_from("<q", data, HDR + 8 + 32)[0]
    return magic, rank, it, len(data) - HDR


def leftovers(d):
    """Checkpoint or restore files of the file API left in directory d."""
    return sorted(f for f in os.listdir(d)
                  if f.endswith((".tmp.ckpt", ".tmp.restore")))


def file_lines(regex, text):
    """{rank: match groups} of the last line of REGEX of each rank."""
    return {int(m[0]): m for m in re.findall(regex, text, re.M)}


def drain_and_check(c, name, reference, images_of, nodes_opt, extra=""):
    """Run heat --file-checkpoint EXTRA -N2 -n4 in a job of 3 nodes, drain
    the node of rank 3 and check the move; images_of(node, job) is the
    store directory holding a node's images. Return (job, first placement,
    restored placement, output)."""
    heat = heat_path(c)
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate -N2 -n4 {heat} {HEAT_ARGS} "
                f"{extra}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, name, script, nodes_opt, 4)
    first = {r: n for r, n, _, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim = first[3]
    r = c.run(f"scontrol update nodename={victim} state=drain reason={name}",
              user="root", timeout=30)
    assert r.rc == 0, str(r)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(1) == "400" and m.group(2) == reference, \
            f"wrong or no checksum (want {reference}):\n{text}"
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)

    stopped = re.findall(
        r"^heat: rank (\d+) stopping for migration at iter (\d+)$", text, re.M)
    assert sorted(int(r) for r, _ in stopped) == [0, 1, 2, 3], text
    its = {int(i) for _, i in stopped}
    assert len(its) == 1, f"ranks stopped at different iterations: {stopped}"
    it = its.pop()
    restored = {r: n for r, n, k, i in starts(text) if k == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
    assert victim not in restored.values(), restored

    # Each rank wrote its restart file where libsmig said: in its node's
    # store, named after its image of the generation.
    ckpts = file_lines(CKPT_RE, text)
    assert sorted(ckpts) == [0, 1, 2, 3], f"file checkpoint lines:\n{text}"
    gens = {int(g[1]) for g in ckpts.values()}
    assert len(gens) == 1, f"ranks checkpointed different generations: {ckpts}"
    gen = gens.pop()
    for rank, (_, g, ci, nbytes, path) in ckpts.items():
        d = images_of(first[rank], job)
        assert path == os.path.join(d, f"rank{rank}.g{g}.img.tmp.ckpt"), path
        assert int(ci) == it and int(nbytes) == FILE_BYTES, ckpts[rank]

    # ... got it back in its new node's store, byte for byte as written
    # (heat checks the grid's header and size; the checksum the rows) ...
    rest = file_lines(RESTORE_RE, text)
    assert sorted(rest) == [0, 1, 2, 3], f"file restore lines:\n{text}"
    for rank, (_, ri, nbytes, path) in rest.items():
        d = images_of(restored[rank], job)
        assert path == os.path.join(d, f"rank{rank}.g{gen}.img.tmp.restore"), \
            path
        assert int(ri) == it and int(nbytes) == FILE_BYTES, rest[rank]

    # ... and the image's payload is the restart file; libsmig removed the
    # files it named once each callback returned.
    for rank in range(4):
        d = images_of(restored[rank], job)
        img = os.path.join(d, f"rank{rank}.g{gen}.img")
        assert payload(img) == (IMAGE_MAGIC, rank, it, FILE_BYTES), \
            f"{img}: {payload(img)}"
    for d in {images_of(n, job) for n in list(first.values()) +
              list(restored.values())}:
        assert not leftovers(d), f"{d}: {leftovers(d)}"
    return job, first, restored, text


def test_file_checkpoint_drain(cluster, needs_plugins, reference):
    """A drain moves rank 3's node: every rank's capture callback (with an
    MPI_Allreduce and a gather first: a collective checkpoint) writes its
    restart file at smig_capture_path() (in the job's store) and hands it
    over; after the move every rank restores in smig_restore()
    (SMIG_RESTORE_LATER; an MPI_Allreduce in the restore callback) from the
    file at smig_restore_path() at the iteration it stopped; the image's
    payload is the file, no file of the API is left, and the result is that
    of a run without migration."""
    c = cluster
    images = os.path.join(c.dir, "images")
    _, _, _, text = drain_and_check(
        c, "filecp_drain", reference,
        lambda node, job: os.path.join(images, str(job)),
        "-N3 --ntasks-per-node=2", "--restore-later --mpi-capture")
    caps = file_lines(CAPTURE_RE, text)
    assert sorted(caps) == [0, 1, 2, 3], f"collective capture lines:\n{text}"
    its = {m[4] for m in caps.values()}
    assert len(its) == 1 and {(m[2], m[3]) for m in caps.values()} == \
        {("drain", "1")}, caps
    it = its.pop()
    for m in caps.values():
        assert m[5] == m[6] == m[4], f"Allreduce in the capture callback: {m}"
    checks = file_lines(CHECK_RE, text)
    assert sorted(checks) == [0, 1, 2, 3], \
        f"restore callbacks did not all run their Allreduce:\n{text}"
    for _, ci, lo, hi in checks.values():
        assert ci == lo == hi == it, checks


def test_file_checkpoint_handoff(cluster, needs_plugins, reference,
                                 local_store):
    """With MigrateImageStore=local the restart files are written into each
    node's own store; the moving ranks' images (their files) are handed to
    the other node of the step (a node-local store moves ranks only to
    nodes of the step; --exclusive gives it the CPUs) and restored from its
    store; the result is that of a run without migration."""
    c = cluster
    images = os.path.join(c.dir, "images")
    job, first, restored, _ = drain_and_check(
        c, "filecp_handoff", reference,
        lambda node, job: os.path.join(images, node, str(job)),
        "-N3 --exclusive")
    assert not os.path.exists(os.path.join(images, str(job))), \
        "a shared job directory was used"
    moved = [r for r in range(4) if restored[r] != first[r]]
    assert moved, f"no rank changed node: {first} -> {restored}"
    for rank in moved:
        log = c.read_log(f"slurmd.{restored[rank]}")
        assert re.search(rf"JobId={job} StepId=\d+ node={restored[rank]}: "
                         rf"rank={rank} generation=\d+: image received and "
                         "verified", log), \
            f"no hand-off of rank {rank} in slurmd.{restored[rank]}.log"


def two_steps(c, name, damage):
    """One job: step 1 heat --file-checkpoint with every=1s (two good
    generations stay, MigrateRetain=2); damage(job, gens) breaks images;
    step 2 restarts with SLURM_MIGRATE_RESTORE_GEN=last. Return (job,
    generations, text of step 2, output)."""
    heat = heat_path(c)
    go = os.path.join(c.workdir, f"{name}.go")
    if os.path.exists(go):
        os.unlink(go)
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "srun --mpi=pmix --migrate=every=1s,capture-timeout=5s "
                f"-N2 -n4 {heat} {HEAT_ARGS}\n"
                "echo srun_exit=$?\n"
                f"for i in $(seq 900); do [ -e {go} ] && break; sleep 0.2; done\n"
                "SLURM_MIGRATE_RESTORE_GEN=last srun --mpi=pmix "
                f"--migrate=capture-timeout=5s -N2 -n4 {heat} "
                f"{HEAT_ARGS}\n"
                "echo step2_exit=$?\n")
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, name, script, "-N2 -n4", 4)
    try:
        assert len(starts(text)) >= 4, f"step 1 did not start:\n{text}"
        text = cl.repeat_until(lambda: read(out), lambda t: "srun_exit=" in t,
                               timeout=120)
        assert "srun_exit=0" in text, f"step 1 failed:\n{text}"
        d = os.path.join(c.dir, "images", str(job))
        lines = read(os.path.join(d, "good")).splitlines()
        assert lines and lines[0] == "smig-good 1", lines
        gens = [int(l.split()[1]) for l in lines[1:]]
        assert len(gens) == 2, f"manifest {gens}, expected 2 generations"
        # Step 1's files are all handed over and removed.
        assert not leftovers(d), leftovers(d)
        damage(d, gens)
        with open(go, "w"):
            pass
        text = cl.repeat_until(lambda: read(out),
                               lambda t: "step2_exit=" in t, timeout=120)
        assert "step2_exit=" in text, f"step 2 did not end:\n{text}"
        return job, d, gens, text.split("srun_exit=", 1)[1], text
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)


def flip_payload_bit(path):
    with open(path, "r+b") as f:
        f.seek(HDR + 1000)
        b = f.read(1)[0]
        f.seek(HDR + 1000)
        f.write(bytes([b ^ 8]))


def test_file_checkpoint_fallback(cluster, needs_plugins, reference):
    """Rank 1's restart file in the newest image is damaged (one bit): the
    restart names the image and the checksum mismatch, every rank falls
    back to the older generation and reads its restart file of that
    generation, and the job completes with the result of a run without
    migration."""
    c = cluster
    job, d, gens, step2, text = two_steps(
        c, "filecp_fallback",
        lambda d, gens: flip_payload_bit(os.path.join(d, f"rank1.g{gens[1]}.img")))
    older, newest = gens
    assert "step2_exit=0" in step2, f"step 2 failed:\n{text}"
    bad = os.path.join(d, f"rank1.g{newest}.img")
    assert any(bad in l and "payload checksum mismatch" in l
               for l in step2.splitlines()), f"no error names {bad}:\n{step2}"
    assert (f"generation {newest} is not valid on every rank: falling back "
            f"to generation {older}") in step2, step2
    it = payload(os.path.join(d, f"rank0.g{older}.img"))[2]
    rest = file_lines(RESTORE_RE, step2)
    assert sorted(rest) == [0, 1, 2, 3], f"file restore lines:\n{step2}"
    for rank, (_, ri, nbytes, path) in rest.items():
        assert path == os.path.join(d, f"rank{rank}.g{older}.img.tmp.restore")
        assert int(ri) == it and int(nbytes) == FILE_BYTES, rest[rank]
    m = re.search(DONE_RE, step2, re.M)
    assert m and m.group(1) == "400" and m.group(2) == reference, \
        f"wrong or no checksum (want {reference}):\n{step2}"
    assert not leftovers(d), leftovers(d)


def test_file_checkpoint_no_good_generation(cluster, needs_plugins):
    """Rank 1's images of both good generations are damaged: the restart
    fails on every rank before any restore callback runs, with the message
    that no generation has a valid image on every rank, naming the images;
    no rank starts computing and no restore file is left."""
    c = cluster

    def damage(d, gens):
        for g in gens:
            flip_payload_bit(os.path.join(d, f"rank1.g{g}.img"))

    job, d, gens, step2, text = two_steps(c, "filecp_none", damage)
    assert re.search(r"^step2_exit=[1-9]", step2, re.M), \
        f"step 2 did not fail:\n{text}"
    older, newest = gens
    assert re.search(rf"no generation in \d+\.\.{newest} has a valid image on "
                     r"every rank: cannot restore", step2), step2
    for g in gens:
        bad = os.path.join(d, f"rank1.g{g}.img")
        assert any(bad in l and "payload checksum mismatch" in l
                   for l in step2.splitlines()), f"no error names {bad}:\n{step2}"
    assert not re.findall(RESTORE_RE, step2, re.M), step2
    assert not [s for s in starts(step2)], step2
    assert not re.search(DONE_RE, step2, re.M), step2
    assert not leftovers(d), leftovers(d)

