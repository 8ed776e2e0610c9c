# SPDX-License-Identifier: GPL-2.0-or-later
"""test_capture_signal.py - capture=signal:SIG for applications without libsmig

contrib/examples/sigapp checkpoints itself on SIGUSR1 into
$SLURM_MIGRATE_CHECKPOINT_FILE and reads it back when
SLURM_MIGRATE_RESTORE_GEN is set; the node agent signals it, wraps the file
into a verified image and writes the image back into the file on restore.
"""

import json
import os
import re
import stat

import cluster as cl
from heat import read, reference_checksum, submit_started

START_RE = r"^sigapp: rank (\d+) node (\S+) (start|restored) iter (\d+)$"
DONE_RE = r"^sigapp: done iters=(\d+) checksum=([0-9a-f]{16})$"
ARGS = "--iters 400 --sleep-ms 25"


def sigapp_path(c):
    path = os.path.join(c.build_dir, "contrib", "examples", "sigapp")
    assert os.access(path, os.X_OK), f"{path}: build the example first"
    return path


def starts(text):
    return [(int(r), n, k, int(i)) for r, n, k, i in re.findall(START_RE, text, re.M)]


def drained_sigapp(c, name, extra="", after=""):
    """A --migrate=capture=signal:USR1 sigapp step (-N2 -n4 in a 3-node
    job, sigapp EXTRA, then the script runs AFTER) whose rank 3's node is
    drained once every rank started. RET (job, output path, that node)."""
    app = sigapp_path(c)
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate=capture=signal:USR1 -N2 -n4 {app} "
                f"{ARGS} {extra}\n"
                "echo srun_exit=$?\n" + after)
    os.chmod(script, 0o755)
    job, out, text = submit_started(c, name, script, "-N3 --ntasks-per-node=2",
                                    4, starts_fn=starts)
    first = {r: n for r, n, _, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim = first[3]
    r = c.run(f"scontrol update nodename={victim} state=drain reason={name}",
              user="root", timeout=30)
    assert r.rc == 0, str(r)
    return job, out, victim


def test_capture_signal(cluster, needs_plugins):
    """Draining one node of a step run with --migrate=capture=signal:USR1
    moves its ranks: every rank is signalled and checkpoints at one
    iteration, the agents wrap the files into images of generation 1 (0600,
    SMIGIMG), the relaunched ranks find their state in
    SLURM_MIGRATE_CHECKPOINT_FILE and restart from that iteration, none on
    the drained node, and the job completes with the checksum of a run
    without migration."""
    c = cluster
    app = sigapp_path(c)
    reference = reference_checksum(c, f"-N2 -n4 {app} --iters 400 --sleep-ms 0",
                                   started_re=START_RE, done_re=DONE_RE)
    job, out, victim = drained_sigapp(c, "sigapp")
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
        m = re.search(DONE_RE, text, re.M)
        assert m, f"no final checksum:\n{text}"
        assert m.group(2) == reference, \
            f"checksum {m.group(2)} != {reference} without migration:\n{text}"

        ckpts = re.findall(r"^sigapp: rank (\d+) checkpoint iter (\d+)$", text, re.M)
        assert sorted(int(r) for r, _ in ckpts) == [0, 1, 2, 3], text
        assert len({i for _, i in ckpts}) == 1, f"checkpoints at different iterations: {ckpts}"
        restored = [(rank, node, it) for rank, node, kind, it in starts(text)
                    if kind == "restored"]
        # Each rank restored once: its agent saw it read its checkpoint
        # file, so the relaunch watchdog never started the step again.
        assert sorted(r for r, _, _ in restored) == [0, 1, 2, 3], \
            f"not every rank restored exactly once:\n{text}"
        assert "relaunch try" not in text, text
        restored = {rank: (node, it) for rank, node, it in restored}
        assert {it for _, it in restored.values()} == {int(ckpts[0][1])}, restored
        assert victim not in {n for n, _ in restored.values()}, restored

        jobdir = os.path.join(c.dir, "images", str(job))
        for rank in range(4):
            img = os.path.join(jobdir, f"rank{rank}.g1.img")
            st = os.stat(img)
            assert stat.S_IMODE(st.st_mode) == 0o600, f"{img}: {oct(st.st_mode)}"
            with open(img, "rb") as f:
                assert f.read(8) == b"SMIGIMG\0", f"{img}: not an image"
    finally:
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)


def test_capture_signal_every(cluster, needs_plugins):
    """With capture=signal:USR1,every=1s the step is signalled repeatedly and
    runs on (good generations recorded in the manifest), and a second step
    with SLURM_MIGRATE_RESTORE_GEN=last finds the newest good generation's
    state in its checkpoint files: every rank restores at one iteration and
    the result is that of a run without migration."""
    c = cluster
    app = sigapp_path(c)
    reference = reference_checksum(c, f"-N2 -n4 {app} --iters 400 --sleep-ms 0",
                                   started_re=START_RE, done_re=DONE_RE)

    script = os.path.join(c.workdir, "sigevery.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate=capture=signal:USR1,every=1s -N2 -n4 {app} {ARGS}\n"
                "echo srun_exit=$?\n"
                "echo restart\n"
                f"SLURM_MIGRATE_RESTORE_GEN=last srun --mpi=pmix --migrate=capture=signal:USR1 "
                f"-N2 -n4 {app} {ARGS}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    out = os.path.join(c.workdir, "sigevery.out")
    job = cl.submit_job(c, f"-N2 --ntasks-per-node=2 -o {out} {script}")
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
    text = read(out)
    assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
    first, _, second = text.partition("restart\n")
    assert "srun_exit=0" in first and "srun_exit=0" in second, text
    ckpts = re.findall(r"^sigapp: rank (\d+) checkpoint iter (\d+)$", first, re.M)
    assert len(ckpts) >= 8, f"fewer than two captures:\n{text}"
    with open(os.path.join(c.dir, "images", str(job), "good")) as f:
        good = [int(g) for g in re.findall(r"^gen (\d+)$", f.read(), re.M)]
    assert good, "no good generation recorded"
    restored = {rank: it for rank, _, kind, it in starts(second) if kind == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
    assert len(set(restored.values())) == 1, restored
    assert int(restored[0]) in {int(i) for _, i in ckpts}, (restored, ckpts)
    for part in (first, second):
        m = re.search(DONE_RE, part, re.M)
        assert m and m.group(2) == reference, \
            f"checksum not that of a run without migration ({reference}):\n{text}"


TIMEOUT_RE = (r"migrate: JobId=(\d+) StepId=(\d+): relaunch try (\d+) of 3: "
              r"ranks (\S+) not past their restore of generation (\d+) "
              r"within 20s \(reason=restore-timeout\)")


def test_capture_signal_watchdog(cluster, needs_plugins):
    """A relaunched capture=signal step is under the relaunch watchdog: a
    rank counts as past its restore once it has read the checkpoint file
    its agent wrote. Rank 3 of the relaunched step never reads its file on
    the first try (sigapp --hold-restore 3): after MigrateRestoreTimeout
    (20 s here) srun names rank 3 alone, ends the step and starts it again
    from generation 1; every rank restores the iteration it checkpointed
    at, and the job completes with the checksum of a run without
    migration. smig history records the watchdog's relaunch, SystemComment
    its reason."""
    c = cluster
    app = sigapp_path(c)
    reference = reference_checksum(c, f"-N2 -n4 {app} --iters 400 --sleep-ms 0",
                                   started_re=START_RE, done_re=DONE_RE)
    # The script waits for GO after srun: the balancer keeps a job's
    # history only while the job runs.
    go = os.path.join(c.workdir, "sighold.go")
    job, out, victim = drained_sigapp(
        c, "sighold", "--hold-restore 3",
        f"while [ ! -e {go} ]; do sleep 0.2; done\n")
    try:
        text = cl.repeat_until(lambda: read(out), lambda t: "srun_exit=" in t,
                               timeout=240)
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
        m = re.search(TIMEOUT_RE, text)
        assert m, f"srun did not say why it started the step again:\n{text}"
        assert (int(m.group(1)), int(m.group(3)), m.group(4),
                int(m.group(5))) == (job, 1, "3", 1), m.group(0)
        assert len(re.findall(TIMEOUT_RE, text)) == 1, text
        ckpts = re.findall(r"^sigapp: rank (\d+) checkpoint iter (\d+)$", text, re.M)
        assert sorted(int(r) for r, _ in ckpts) == [0, 1, 2, 3], text
        # The second try's restores: every rank, at the checkpoint.
        second = text[m.end():]
        restored = {rank: (node, it) for rank, node, kind, it in starts(second)
                    if kind == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
        assert {it for _, it in restored.values()} == {int(ckpts[0][1])}, restored
        assert victim not in {n for n, _ in restored.values()}, restored
        done = re.search(DONE_RE, text, re.M)
        assert done and done.group(2) == reference, \
            f"checksum differs from the run without migration ({reference}):\n{text}"
        line = cl.migration_state(c, job)
        assert re.search(r"\blast_error=gen=1;reason=restore-timeout;ranks=3\b",
                         line), line
        smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
        r = c.run(f"{smig} history {job} --json", timeout=30)
        assert r.rc == 0, f"smig history failed:\n{r}"
        hist = [(h["kind"], h["outcome"], h.get("ranks"))
                for h in json.loads(r.stdout)["history"]]
        assert hist[1:] == [("relaunch", "relaunched", "3")], hist
        with open(go, "w"):
            pass
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=60)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{read(out)}"
    finally:
        with open(go, "w"):
            pass
        c.run(f"scontrol update nodename={victim} state=resume", user="root",
              timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)
