# SPDX-License-Identifier: GPL-2.0-or-later
"""test_watchdog.py - the relaunch watchdog: a relaunched step that does not
start is started again, and a move never hangs a job

A relaunched step whose ranks are not all past their restore within
MigrateRestoreTimeout (20 s on the test cluster, testsuite/cluster/up.sh) is
ended by srun and started again from the same generation, at most
MigrateRelaunchTries (3) times (doc/faults.md). The tests make the start of
the relaunched step hang on purpose: heat --hold-restore R[:T] keeps rank R
out of smig_register() on the first T tries of a relaunch, so that the other
ranks wait in the restore agreement, as the ranks of a real hung start do
(its "holding" line is not asserted: srun may drop the last output of a
step it kills).

Cost measured here (2 cores, loopback cluster, under load): about 45 s and
110 s.
"""

import json
import os
import re

import pytest

import cluster as cl
from heat import DONE_RE, heat_path, read, reference_checksum, starts, \
    submit_started

HEAT_ARGS = "--nx 96 --ny 64 --iters 240 --sleep-ms 25 --report 40"
TIMEOUT_RE = (r"migrate: JobId=(\d+) StepId=(\d+): relaunch try (\d+) of 3: "
              r"ranks (\S+) not past their restore of generation (\d+) "
              r"within 20s \(reason=restore-timeout\)")
FAILED_RE = (r"migrate: JobId=(\d+) StepId=(\d+): relaunch try 3 of 3: "
             r"ranks (\S+) not past their restore of generation (\d+) "
             r"within 20s \(reason=restore-failed\): ending the step")


def reference(c):
    """Checksum of the same computation without --migrate."""
    return reference_checksum(
        c, f"-N2 -n4 {heat_path(c)} "
        f"{HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}")


def script(c, name, body):
    path = os.path.join(c.workdir, f"{name}.sbatch")
    with open(path, "w") as f:
        f.write("#!/bin/bash\n" + body)
    os.chmod(path, 0o755)
    return path


def smig_history(c, job):
    path = os.path.join(c.build_dir, "contrib", "tools", "smig")
    r = c.run(f"{path} history {job} --json", timeout=30)
    assert r.rc == 0, f"smig history failed:\n{r}"
    return json.loads(r.stdout)["history"]


def drain_node_of(c, text, rank):
    """Drain the node rank RANK started on; RET the node."""
    node = {r: n for r, n, _, _ in starts(text)}[rank]
    r = c.run(f"scontrol update nodename={node} state=drain reason=watchdog",
              user="root", timeout=30)
    assert r.rc == 0, str(r)
    return node


def resume(c, node):
    c.run(f"scontrol update nodename={node} state=resume", user="root",
          timeout=30)


def good_gens(c, job):
    text = read(os.path.join(c.dir, "images", str(job), "good"))
    lines = text.splitlines()
    assert not lines or lines[0] == "smig-good 1", lines
    return [int(l.split()[1]) for l in lines[1:]]


def held_job(c, name, hold, after=""):
    """A job whose step moves off rank 3's node while rank 3 is held out
    of its restore (heat --hold-restore HOLD); the batch script waits for
    the file GO after srun (the balancer keeps a job's record only while
    it runs), then runs AFTER. Returns (job, output path, output up to
    srun's end, drained node, GO path)."""
    go = os.path.join(c.workdir, f"{name}.go")
    s = script(c, name,
               f"srun --mpi=pmix --migrate -N2 -n4 {heat_path(c)} "
               f"{HEAT_ARGS} --hold-restore {hold}\n"
               "echo srun_exit=$?\n"
               f"while [ ! -e {go} ]; do sleep 0.2; done\n" + after)
    job, out, text = submit_started(c, name, s, "-N3 --ntasks-per-node=2", 4)
    if len(starts(text)) != 4:
        c.run(f"scancel {job}", user="root", timeout=30)
        pytest.fail(f"the ranks did not all start:\n{text}")
    node = drain_node_of(c, text, 3)
    text = cl.repeat_until(lambda: read(out), lambda t: "srun_exit=" in t,
                           timeout=240)
    return job, out, text, node, go


def release(c, job, node, go):
    with open(go, "w"):
        pass
    resume(c, node)
    c.run(f"scancel {job}", user="root", timeout=30)


def test_watchdog_relaunches_hung_start(cluster, needs_plugins):
    """A drain moves rank 3's node; on the first start of the relaunched
    step rank 3 never reaches its restore (the others wait for it in the
    restore agreement). After MigrateRestoreTimeout srun says why and
    starts the step again from generation 1 (try 2); every rank restores
    the iteration it stopped at and the job ends with the checksum of a run
    without migration. smig history records the watchdog's relaunch and
    SystemComment its reason (restore-timeout), the move stands."""
    c = cluster
    ref = reference(c)
    job, out, text, node, go = held_job(c, "watchdog_once", "3")
    try:
        assert "srun_exit=" in text, f"srun did not end:\n{text}"
        hist = smig_history(c, job)
        m = re.search(TIMEOUT_RE, text)
        assert m, f"srun did not say why it started the step again:\n{text}"
        assert (int(m.group(1)), int(m.group(3)), m.group(4),
                int(m.group(5))) == (job, 1, "0,1,2,3", 1), m.group(0)
        assert "srun_exit=0" in text, text
        stop = re.findall(r"^heat: rank \d+ stopping for migration at iter "
                          r"(\d+)$", text, re.M)
        assert len(stop) == 4 and len(set(stop)) == 1, text
        restored = [(r, n, i) for r, n, k, i in starts(text)
                    if k == "restored"]
        assert sorted(r for r, _, _ in restored) == [0, 1, 2, 3], text
        assert {i for _, _, i in restored} == {int(stop[0])}, restored
        assert node not in {n for _, n, _ in restored}, restored
        done = re.search(DONE_RE, text, re.M)
        assert done and done.group(1) == "240" and done.group(2) == ref, \
            f"checksum differs from the run without migration ({ref}):\n{text}"
        line = cl.migration_state(c, job)
        assert re.fullmatch(r"mode=auto gen=1 moves=1 last_move=ranks=\S+;"
                            rf"from={node};to=\S+;reason=drain "
                            r"last_error=gen=1;reason=restore-timeout;"
                            r"ranks=0,1,2,3( \S+)*", line), line
        kinds = [(h["kind"], h["outcome"]) for h in hist]
        assert kinds == [("drain", "moved"), ("relaunch", "relaunched")], hist
        assert hist[1]["reason"] == "restore-timeout" and \
            hist[1]["gen"] == 1 and hist[1]["ranks"] == "0,1,2,3", hist[1]
        assert good_gens(c, job) == [1]
        with open(go, "w"):
            pass
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=60)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{read(out)}"
    finally:
        release(c, job, node, go)


def test_watchdog_gives_up_and_keeps_the_image(cluster, needs_plugins):
    """Rank 3 never reaches its restore on any try: srun starts the step
    three times (MigrateRelaunchTries), then ends it with a clear reason
    (restore-failed, naming the generation and how to restart) and fails;
    SystemComment and smig history say the same. Generation 1 stays in the
    manifest, and a restart of the step in the same job
    (SLURM_MIGRATE_RESTORE_GEN=last, without the hold) restores it and
    finishes with the checksum of a run without migration."""
    c = cluster
    ref = reference(c)
    job, out, text, node, go = held_job(
        c, "watchdog_never", "3:99",
        "SLURM_MIGRATE_RESTORE_GEN=last srun --mpi=pmix --migrate "
        f"-N2 -n4 {heat_path(c)} {HEAT_ARGS}\n"
        "echo restart_exit=$?\n")
    try:
        assert "srun_exit=" in text, f"srun did not end:\n{text}"
        hist = smig_history(c, job)
        relaunch = [h["outcome"] for h in hist if h["kind"] == "relaunch"]
        assert relaunch == ["relaunched", "relaunched",
                            "failed:restore-timeout"], hist
        line = cl.migration_state(c, job)
        assert re.fullmatch(r"mode=auto gen=1 moves=1 last_move=\S+ "
                            r"last_error=gen=1;reason=restore-failed;"
                            r"ranks=0,1,2,3( \S+)*", line), line
        assert good_gens(c, job) == [1]
        # The restart may use the drained node again: no second move.
        resume(c, node)
        with open(go, "w"):
            pass
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        tries = [int(m.group(3)) for m in re.finditer(TIMEOUT_RE, text)]
        assert tries == [1, 2], f"relaunch tries {tries}:\n{text}"
        m = re.search(FAILED_RE, text)
        assert m and int(m.group(1)) == job and m.group(4) == "1", text
        assert "generation 1 stays in the job's image directory: restart " \
            "the step with SLURM_MIGRATE_RESTORE_GEN=last" in text, text
        first, restart = text.split("srun_exit=", 1)
        assert not restart.startswith("0"), f"srun succeeded:\n{text}"
        assert "restart_exit=0" in restart, text
        got = {}
        for r, _, k, i in starts(restart):
            if k == "restored":
                got.setdefault(r, i)
        assert sorted(got) == [0, 1, 2, 3], restart
        stop = re.findall(r"^heat: rank \d+ stopping for migration at iter "
                          r"(\d+)$", first, re.M)
        assert set(got.values()) == {int(stop[0])}, (got, stop)
        done = re.search(DONE_RE, restart, re.M)
        assert done and done.group(1) == "240" and done.group(2) == ref, \
            f"checksum differs from the run without migration ({ref}):\n{text}"
    finally:
        release(c, job, node, go)
