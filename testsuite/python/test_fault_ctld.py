# SPDX-License-Identifier: GPL-2.0-or-later
"""test_fault_ctld.py - the balancer restarted in the middle of a migration

The balancer is smigd (it lived in slurmctld once, hence the file's name).
These tests stop smigd (SIGTERM, by pid) and start it again while a capture
or a relaunch is under way (cluster.restart_balancer()); test_smigd.py does
the same with SIGKILL, and restarts slurmctld under a running smigd. The
balancer comes back from its state file (MigrateStateDir, by default
StateSaveLocation/migrate), the node agents and srun reconnect, and the
migration ends in the old or the new placement (doc/design.md, "Restart of
the balancer"): never with ranks stopped, never losing a good image. Each
test costs about 25-30 s here (one job of 15 s of compute plus two 5 s
captures or a move; smigd is away for about a second); the reference run
about 1 s.
"""

import ctypes
import os
import re
import struct

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read, starts, submit_started

HEAT_ARGS = "--nx 96 --ny 64 --iters 600 --sleep-ms 25 --report 50"
IMG_HDR = 128                   # src/common/smig_image.h
CAPTURING_RE = r"^heat: rank (\d+) capturing iter (\d+) pid (\d+)$"
STOPPING_RE = r"^heat: rank (\d+) stopping for migration at iter (\d+)$"

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = (ctypes.c_char_p, ctypes.c_size_t)


@pytest.fixture(scope="module")
def reference(cluster):
    """Checksum of the same computation without --migrate."""
    r = cl.srun_mpi(cluster, f"-N2 -n4 {heat_path(cluster)} "
                    f"{HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}",
                    started_re=START_RE, timeout=120)
    assert r.rc == 0, f"reference run failed:\n{r}"
    m = re.search(DONE_RE, r.stdout, re.M)
    assert m, f"reference run printed no checksum:\n{r}"
    return m.group(2)


def system_comment(c, job):
    """The job's state line: SystemComment, or smigd's AdminComment segment."""
    return cl.migration_state(c, job) or ""


def balancer_line(c, job):
    """The balancer's own state line of the job ("smig show", a QUERY), as
    soon as the balancer answers after a restart; "" if it never does."""
    smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
    r = cl.repeat_until(lambda: c.run(f"{smig} show {job}", timeout=30),
                        lambda r: r.rc == 0, timeout=20, poll_interval=0.3)
    assert r.rc == 0, f"smig show {job} after the restart:\n{r}"
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"JobId={job} "), r.stdout
    return first[len(f"JobId={job} "):]


def write_script(c, name, migrate, extra=""):
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate={migrate} -N2 -n4 {heat_path(c)} "
                f"{HEAT_ARGS} {extra}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    return script


def good_gens(c, job):
    """Generations the manifest of the job's image directory lists."""
    text = read(os.path.join(c.dir, "images", str(job), "good"))
    lines = text.splitlines()
    assert lines and lines[0] == "smig-good 1", f"manifest: {text!r}"
    return [int(line.split()[1]) for line in lines[1:]]


def verify_image(path, job, rank, gen):
    """Check an image as smig_image_verify() does: header fields, size and
    both XXH3-64 checksums. Returns None, or what is wrong."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < IMG_HDR or data[:8] != b"SMIGIMG\0":
        return f"{path}: not an image"
    h_job, _, h_rank, _, h_gen, _, plen = struct.unpack_from("<IIIIQQQ", data, 16)
    if (h_job, h_rank, h_gen) != (job, rank, gen):
        return f"{path}: header says job {h_job} rank {h_rank} gen {h_gen}"
    if len(data) != IMG_HDR + plen:
        return f"{path}: {len(data)} bytes, header says {IMG_HDR + plen}"
    (phash,) = struct.unpack_from("<Q", data, 96)
    (hhash,) = struct.unpack_from("<Q", data, 120)
    if _xxh.XXH3_64bits(data[:120], 120) != hhash:
        return f"{path}: header checksum mismatch"
    if _xxh.XXH3_64bits(data[IMG_HDR:], plen) != phash:
        return f"{path}: payload checksum mismatch"
    return None


def check_images(c, job, gen):
    """The manifest names GEN as the newest good generation and every rank's
    image of it verifies."""
    gens = good_gens(c, job)
    assert gens and gens[-1] == gen, \
        f"manifest of job {job} lists {gens}, expected the newest to be {gen}"
    for rank in range(4):
        path = os.path.join(c.dir, "images", str(job), f"rank{rank}.g{gen}.img")
        assert os.path.exists(path), f"{path}: missing"
        assert verify_image(path, job, rank, gen) is None, \
            verify_image(path, job, rank, gen)


def finish(c, job, out, reference):
    """Wait for the job; check it completed with the reference checksum and
    srun's exit 0; return the output."""
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
    text = read(out)
    assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
    assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
    m = re.search(DONE_RE, text, re.M)
    assert m, f"no final checksum:\n{text}"
    assert m.group(1) == "600"
    assert m.group(2) == reference, \
        f"checksum {m.group(2)} != {reference} without migration:\n{text}"
    return text


def test_fault_ctld_restart_capture(cluster, needs_plugins, reference):
    """smigd restarts while the ranks capture generation 2 (each capture
    sleeps 5 s in heat's capture callback; generation 1 is good): the
    restarted balancer abandons generation 2 (the agents resumed the ranks
    when the connection dropped), the job completes in its old placement
    with the reference checksum, SystemComment shows moves=0 with
    last_error=gen=2;reason=balancer-restart, and the manifest never names
    generation 2. every= goes on once the agents are back (doc/design.md,
    "Failures and back-off"): the newest good generation is 1 or a later
    one, and its four images verify."""
    c = cluster
    script = write_script(c, "ctld_capture", "every=1s",
                          "--capture-sleep-ms 5000")
    job, out, text = submit_started(c, "ctld_capture", script,
                                    "-N2 -n4", 4)
    first = {rank: node for rank, node, kind, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text

    line = cl.repeat_until(lambda: system_comment(c, job),
                           lambda s: re.search(r"\bgen=1\b", s), timeout=60)
    assert re.search(r"\bgen=1 moves=0\b", line), \
        f"generation 1 not good before the restart: {line!r}\n{read(out)}"
    # The capture of generation 2 starts: each rank sleeps 5 s in it.
    text = cl.repeat_until(lambda: read(out),
                           lambda t: len(re.findall(CAPTURING_RE, t, re.M)) > 4,
                           timeout=30, poll_interval=0.1)
    assert len(re.findall(CAPTURING_RE, text, re.M)) > 4, \
        f"no second capture:\n{text}"
    away, _ = c.restart_balancer()
    # Restored from the state file, before any peer registered again.
    assert re.match(r"mode=auto gen=1 moves=0 "
                    r"last_error=gen=2;reason=balancer-restart",
                    balancer_line(c, job)), \
        f"balancer's state after the restart: {balancer_line(c, job)!r}"

    text = finish(c, job, out, reference)
    assert [k for _, _, k, _ in starts(text)] == ["start"] * 4, \
        f"the step was relaunched: the old placement was expected:\n{text}"
    assert not re.search(STOPPING_RE, text, re.M), text
    log = c.read_log(c.balancer_log)
    assert re.search(rf"JobId={job} StepId=\d+: capture gen=2 was in phase "
                     r"(prepare|capture) when the balancer stopped: abandoned",
                     log), \
        f"smigd stopped after generation 2 completed ({away:.1f}s away)?"
    line = system_comment(c, job)
    # The last error is the restart's, or a later periodic capture that
    # the step's end cut short (each capture here sleeps 5 s).
    m = re.fullmatch(r"mode=auto gen=(\d+) moves=0 last_error=(gen=2;"
                     r"reason=balancer-restart|gen=\d+;reason=step-ended;"
                     r"ranks=\S+)( load=\S+)?", line)
    assert m and int(m.group(1)) != 2, f"SystemComment after the restart: {line!r}"
    gens = good_gens(c, job)
    assert 2 not in gens, f"the abandoned generation 2 is in the manifest: {gens}"
    check_images(c, job, int(m.group(1)))


def test_fault_ctld_restart_relaunch(cluster, needs_plugins, reference):
    """smigd restarts right after the relaunch began (a drain moved two
    ranks, the balancer sent COMMIT and the ranks print "stopping for
    migration"): the move is past its point of no return, so the job
    completes in the new placement (every rank restored from generation 1,
    none on the drained node) with the reference checksum; the relaunched
    srun and its agents reach the restarted balancer; SystemComment still
    shows gen=1 moves=1 and the move; the manifest names generation 1, whose
    four images verify."""
    c = cluster
    script = write_script(c, "ctld_relaunch", "auto")
    job, out, text = submit_started(c, "ctld_relaunch", script,
                                    "-N3 --ntasks-per-node=2", 4)
    first = {rank: node for rank, node, kind, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim = first[3]
    r = c.run(f"scontrol update nodename={victim} state=drain reason=ctld-test",
              user="root", timeout=30)
    assert r.rc == 0, f"drain {victim} failed:\n{r}"
    try:
        text = cl.repeat_until(lambda: read(out),
                               lambda t: re.search(STOPPING_RE, t, re.M),
                               timeout=60, poll_interval=0.05)
        assert re.search(STOPPING_RE, text, re.M), f"no move:\n{text}"
        away, _ = c.restart_balancer()
        # The move was recorded before the COMMIT was sent.
        assert re.match(r"mode=auto gen=1 moves=1 last_move=ranks=",
                        balancer_line(c, job)), \
            f"balancer's state after the restart: {balancer_line(c, job)!r}"

        text = finish(c, job, out, reference)
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
    restored = {rank: node for rank, node, kind, _ in starts(text)
                if kind == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], \
        f"not every rank restored (new placement expected):\n{text}"
    assert victim not in restored.values(), \
        f"a rank restarted on the drained node {victim}: {restored}"
    line = system_comment(c, job)
    assert re.fullmatch(r"mode=auto gen=1 moves=1 last_move=ranks=\S+;"
                        rf"from={victim};to=\S+;reason=drain( load=\S+)?",
                        line), f"SystemComment after the restart: {line!r}"
    check_images(c, job, 1)
