# SPDX-License-Identifier: GPL-2.0-or-later
"""test_mpich.py - migration of MPICH ranks (no PMIx): the agent's socket

Debian's MPICH has no PMIx client; it starts under srun --mpi=pmi2, where
slurmstepd runs no PMIx server. The node agent then offers a socket in the
job's image directory (agent.<step>.<node>.sock, SLURM_MIGRATE_AGENT_SOCKET)
and libsmig in the ranks speaks the same protocol over it; the restore
agreement goes through slurmstepd's PMI-1 (doc/design.md, "The agent's
socket"). These are the Open MPI tests of test_migration.py, test_handoff.py
and test_image_faults.py again with heat built against MPICH
(contrib/examples/heat-mpich); a test that cannot run fails.
"""

import filecmp
import os
import re
import stat
import subprocess

import pytest

import cluster as cl
from heat import DONE_RE, assert_moved_to_spare, heat_mpich_path, read, \
    reference_checksum, starts
from test_handoff import local_store  # noqa: F401 (fixture)
from test_image_faults import HDR, corrupt_newest, flip_bit
from test_image_faults import HEAT_ARGS as FAULT_ARGS
from test_migration import HEAT_ARGS, drain, resume, submit_heat

MPI = "pmi2"
FROZEN = HEAT_ARGS.replace("--sleep-ms 25", "--sleep-ms 0")


def needed(path):
    """The shared libraries an ELF file names (DT_NEEDED)."""
    r = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                       check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)


def test_mpich_libsmig_links_no_mpi(cluster):
    """One libsmig serves Open MPI and MPICH ranks: it links no MPI library;
    heat-mpich links MPICH's and not Open MPI's, heat the reverse."""
    libs = os.path.join(cluster.build_dir, "contrib", "libsmig", ".libs")
    lib = needed(os.path.join(libs, "libsmig.so"))
    assert "libc.so.6" in lib, lib
    assert not [n for n in lib if re.match(r"lib(mpi|mpich|open-)", n)], \
        f"libsmig.so links an MPI: {lib}"
    bins = os.path.join(cluster.build_dir, "contrib", "examples", ".libs")
    heat_mpich_path(cluster)
    mpich = needed(os.path.join(bins, "heat-mpich"))
    assert any(n.startswith("libmpich.so") for n in mpich), mpich
    assert not any(n.startswith("libmpi.so") for n in mpich), mpich
    ompi = needed(os.path.join(bins, "heat"))
    assert any(n.startswith("libmpi.so") for n in ompi), ompi
    assert not any(n.startswith("libmpich.so") for n in ompi), ompi


def agent_socket(c, job, step, node):
    return os.path.join(c.dir, "images", str(job), f"agent.{step}.{node}.sock")


def no_smig_errors(text):
    """libsmig's lines ("smig: ..."): it logs problems only (no
    SLURM_MIGRATE_DEBUG), so a clean move has none."""
    return [l for l in text.splitlines() if l.startswith("smig:")]


def test_mpich_drain_migration(cluster, needs_plugins):
    """heat built against MPICH, srun --mpi=pmi2 --migrate: the agent of each
    node says the step has no PMIx server and offers its socket (a socket,
    mode 0600, the job user's, in the job's directory); draining one of the
    step's nodes moves its ranks to the spare node: every rank stops at one
    safe point and restores it, none on the drained node, the job completes
    with the checksum of an unmigrated MPICH run, SystemComment shows the
    move, libsmig reports no failure, and the sockets are gone at the end."""
    c = cluster
    heat = heat_mpich_path(c)
    reference = reference_checksum(c, f"-N2 -n4 {heat} {FROZEN}", mpi=MPI)
    job, out = submit_heat(c, "mpich_drain", "", mpi=MPI, heat=heat)
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    assert sorted(first) == [0, 1, 2, 3], read(out)
    step_nodes = sorted(set(first.values()))
    assert len(step_nodes) == 2, f"step not on two nodes: {first}"
    victim = first[3]
    moving = sorted(r for r, n in first.items() if n == victim)

    uid = os.stat(os.path.join(c.dir, "images", str(job))).st_uid
    for node in step_nodes:
        sock = agent_socket(c, job, 0, node)
        st = os.lstat(sock)
        assert stat.S_ISSOCK(st.st_mode), f"{sock}: not a socket"
        assert stat.S_IMODE(st.st_mode) == 0o600, f"{sock}: {oct(st.st_mode)}"
        assert st.st_uid == uid, f"{sock}: owner {st.st_uid}, job user {uid}"
        assert re.search(rf"JobId={job} StepId=0 node={node}: no PMIx server "
                         rf"in this step \(not srun --mpi=pmix\): the ranks "
                         rf"reach the agent through /\S*/{job}/agent\.0\.{node}\.sock$",
                         c.read_log(f"slurmd.{node}"), re.M), \
            f"slurmd.{node} does not say that the step uses the agent's socket"

    line = cl.repeat_until(lambda: cl.migration_state(c, job),
                           lambda s: s.startswith("mode=auto"), timeout=20)
    assert re.fullmatch(r"mode=auto gen=0 moves=0( load=\S+)?", line), line
    drain(c, victim)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
        m = re.search(DONE_RE, text, re.M)
        assert m, f"no final checksum:\n{text}"
        assert m.group(1) == "480"
        assert m.group(2) == reference, \
            f"checksum {m.group(2)} != {reference} of MPICH without migration"

        spare = assert_moved_to_spare(text, first, moving, victim, step_nodes)
        comment = cl.migration_state(c, job)
        want = (f"mode=auto gen=1 moves=1 last_move=ranks={','.join(map(str, moving))};"
                f"from={victim};to={spare};reason=drain")
        assert comment == want, f"SystemComment={comment!r}, expected {want!r}"
        assert not no_smig_errors(text), "\n".join(no_smig_errors(text))
        # Each slurmstepd removes its socket when it ends (slurm_spank_exit).
        jobdir = os.path.join(c.dir, "images", str(job))
        left = cl.repeat_until(
            lambda: [f for f in os.listdir(jobdir) if f.endswith(".sock")],
            lambda socks: not socks, timeout=30)
        assert not left, f"agent sockets left after the job: {left}"
    finally:
        resume(c, victim)


def test_mpich_handoff(cluster, needs_plugins, local_store):  # noqa: F811
    """MPICH with MigrateImageStore=local: draining a node of the step hands
    the moving ranks' images of generation 1 to the target node's store
    (identical bytes, mode 0600), no shared job directory is used, every rank
    restores generation 1 and the job completes with the checksum of an
    unmigrated MPICH run."""
    c = cluster
    heat = heat_mpich_path(c)
    args = "--nx 96 --ny 64 --iters 400 --sleep-ms 25 --report 40"
    reference = reference_checksum(
        c, f"-N3 -n6 {heat} {args.replace('--sleep-ms 25', '--sleep-ms 0')}",
        mpi=MPI)
    script = os.path.join(c.workdir, "mpich_handoff.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi={MPI} --migrate -N3 -n6 {heat} {args}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    out = os.path.join(c.workdir, "mpich_handoff.out")
    job = cl.submit_job(c, f"-N3 --exclusive -o {out} {script}")
    text = cl.repeat_until(lambda: read(out), lambda t: len(starts(t)) >= 6
                           or "srun_exit=" in t, timeout=90)
    first = {r: n for r, n, _, _ in starts(text)}
    if sorted(first) != list(range(6)):
        c.run(f"scancel {job}", user="root", timeout=30)
        pytest.fail(f"job {job} did not start its 6 ranks:\n{text}")
    victim = first[5]
    moving = sorted(r for r, n in first.items() if n == victim)
    images = os.path.join(c.dir, "images")
    for node in set(first.values()):
        sock = os.path.join(images, node, str(job), f"agent.0.{node}.sock")
        assert stat.S_ISSOCK(os.lstat(sock).st_mode), f"{sock}: not a socket"
    drain(c, victim)
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
        assert targets <= set(first.values()), restored
        assert not os.path.exists(os.path.join(images, str(job))), \
            "a shared job directory was used"
        for rank in moving:
            src = os.path.join(images, victim, str(job), f"rank{rank}.g1.img")
            dst = os.path.join(images, restored[rank], str(job),
                               f"rank{rank}.g1.img")
            assert os.path.exists(dst), f"{dst} missing: not handed off"
            assert filecmp.cmp(src, dst, shallow=False), f"{dst} differs from {src}"
            assert os.stat(dst).st_mode & 0o777 == 0o600
        assert cl.migration_state(c, job).startswith(
            "mode=auto gen=1 moves=1 last_move="), cl.migration_state(c, job)
        assert not no_smig_errors(text), "\n".join(no_smig_errors(text))
    finally:
        resume(c, victim)


def test_mpich_image_fault_bitflip(cluster, needs_plugins):
    """MPICH, periodic capture, then one bit flipped in the payload of rank
    1's newest image: step 2 (SLURM_MIGRATE_RESTORE_GEN=last, srun
    --mpi=pmi2) names the file and "payload checksum mismatch", all ranks
    agree through PMI-1 on the older good generation and restore it, and the
    job completes with the checksum of an unmigrated MPICH run."""
    c = cluster
    heat = heat_mpich_path(c)
    reference = reference_checksum(
        c, f"-N2 -n4 {heat} {FAULT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}",
        mpi=MPI)
    corrupt_newest(c, reference, "mpich_fault_bitflip",
                   lambda p: flip_bit(p, HDR + 1000, 3),
                   ["payload checksum mismatch"], mpi=MPI, heat=heat)
