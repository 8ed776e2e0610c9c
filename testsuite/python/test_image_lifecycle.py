# SPDX-License-Identifier: GPL-2.0-or-later
"""test_image_lifecycle.py - what happens to a job's images when it ends

doc/images.md, "When a job ends": the SPANK plugin's job epilog (slurmd,
root, every node of the job) asks smigd how the job stands (FATE_QUERY,
slurmctld's job table) and applies the policy to the job's directory of
its store: a completed job's images are removed; a job that ended otherwise
keeps them MigrateImageKeep after its end (a root-owned marker
.keep.<jobid> beside the directory says until when), after which an
epilog's sweep (or "smig images --reclaim") removes them; a requeued or
running job keeps them, whatever a marker says. Real Slurm, jobs as the
test user, heat with periodic capture so that each job has images.
"""

import os
import re
import time

import pytest

import cluster as cl
from heat import heat_path, read, starts, submit_started

HEAT_ARGS = "--nx 96 --ny 64 --iters {iters} --sleep-ms 25 --report 40"
KEEP_S = 25


def job_dir(c, job):
    return os.path.join(c.dir, "images", str(job))


def marker(c, job):
    return os.path.join(c.dir, "images", f".keep.{job}")


def lifecycle_log(c, pattern, timeout=30):
    """smigd's log once it holds PATTERN (or after TIMEOUT s): each node's
    epilog reports there what it did with a job's images (FATE_DONE,
    doc/images.md), on every Slurm release; Slurm 24.11 keeps the epilog's
    own output out of slurmd's log."""
    return cl.repeat_until(lambda: c.read_log("smigd"),
                           lambda t: re.search(pattern, t), timeout=timeout)


def script(c, name, body):
    path = os.path.join(c.workdir, f"{name}.sbatch")
    with open(path, "w") as f:
        f.write("#!/bin/bash\n" + body)
    os.chmod(path, 0o755)
    return path


def heat_line(c, iters, every="1s"):
    return (f"srun --mpi=pmix --migrate=every={every},capture-timeout=10s "
            f"-N2 -n4 {heat_path(c)} {HEAT_ARGS.format(iters=iters)}\n"
            "echo srun_exit=$?\n")


def wait_good(c, job, timeout=60):
    """Wait until the job's manifest names a generation (images exist)."""
    good = os.path.join(job_dir(c, job), "good")
    text = cl.repeat_until(lambda: read(good) if os.path.exists(good) else "",
                           lambda t: len(t.splitlines()) >= 2, timeout=timeout)
    assert len(text.splitlines()) >= 2, \
        f"job {job}: no good generation in {good} after {timeout}s"


def run_plain_job(c, name):
    """A job on every node without --migrate: its epilogs sweep the store."""
    out = os.path.join(c.workdir, f"{name}.out")
    job = cl.submit_job(c, f"-N{len(c.nodes)} -o {out} --wrap 'srun true'")
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
    assert state == "COMPLETED", f"plain job {job} ended {state}"
    # Its epilogs have run once no node is completing it.
    cl.repeat_until(lambda: cl.get_job_parameter(c, job, "JobState"),
                    lambda s: s is None or "COMPLETING" not in s, timeout=60)
    assert cl.repeat_until(
        lambda: c.run("squeue -h -t CG -o %i", user="root", timeout=30).stdout,
        lambda t: not t.strip(), timeout=60).strip() == "", "nodes still completing"
    return job


@pytest.fixture(autouse=True)
def policy(cluster):
    """migrate.conf with the default MigrateImageKeepCompleted=0 (up.sh
    keeps completed jobs' images a day for the other tests) and
    MigrateImageKeep=KEEP_S (the epilog reads migrate.conf at each run),
    restored after."""
    path = os.path.join(cluster.dir, "migrate.conf")
    with open(path) as f:
        saved = f.read()
    lines = [l for l in saved.splitlines()
             if not l.startswith(("MigrateImageKeepCompleted=", "MigrateImageKeep="))]
    with open(path, "w") as f:
        f.write("\n".join(lines) + f"\nMigrateImageKeep={KEEP_S}s\n")
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(saved)


def test_completed_job_leaves_no_images(cluster, needs_plugins):
    """A completed --migrate job had images while it ran (a good generation
    in its manifest); once it ended, no image directory is left and every
    node's epilog told smigd it removed them (job COMPLETED)."""
    c = cluster
    s = script(c, "life_done", heat_line(c, 400))
    job, out, text = submit_started(c, "life_done", s, "-N2 -n4", 4)
    assert len(starts(text)) >= 4, f"heat did not start:\n{text}"
    wait_good(c, job)
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=180)
    assert state == "COMPLETED", f"job {job} ended {state}:\n{read(out)}"
    assert "srun_exit=0" in read(out), read(out)
    gone = cl.repeat_until(lambda: os.path.exists(job_dir(c, job)),
                           lambda e: not e, timeout=60)
    assert not gone, f"{job_dir(c, job)} still there after the job completed"
    assert not os.path.exists(marker(c, job))
    removed = (rf"JobId={job} node=\S+: job COMPLETED\S*: images removed from "
               rf"{re.escape(os.path.join(c.dir, 'images'))} \(\d+ bytes\)")
    logs = lifecycle_log(c, removed)
    assert re.search(removed, logs), \
        f"no smigd log line of the removal of job {job}'s images"
    assert not re.search(rf"JobId={job} .*images kept", logs), logs[-3000:]


def test_failed_job_keeps_images_for_keep_time(cluster, needs_plugins):
    """A job that fails (its script exits 3 after a step that captured)
    keeps its images: the directory and its manifest stay, a root-owned
    marker says until=<end + MigrateImageKeep>, smig images lists it with
    policy keep-until; a sweep before that time (another job's epilogs)
    leaves it; the first sweep after it removes directory and marker."""
    c = cluster
    s = script(c, "life_fail", heat_line(c, 120) + "exit 3\n")
    job, out, text = submit_started(c, "life_fail", s, "-N2 -n4", 4)
    assert len(starts(text)) >= 4, f"heat did not start:\n{text}"
    wait_good(c, job)
    state = cl.wait_for_job_state(c, job, "FAILED", timeout=180)
    assert state == "FAILED", f"job {job} ended {state}:\n{read(out)}"
    mark = cl.repeat_until(lambda: read(marker(c, job)) if os.path.exists(marker(c, job)) else "",
                           lambda t: t.startswith("until="), timeout=60)
    m = re.match(r"until=(\d+) end=(\d+) state=(\S+)$", mark.strip())
    assert m, f"marker of job {job}: {mark!r}"
    until, end = int(m.group(1)), int(m.group(2))
    assert until == end + KEEP_S, mark
    assert m.group(3).startswith("FAILED"), mark
    st = os.lstat(marker(c, job))
    assert st.st_uid == 0 and (st.st_mode & 0o777) == 0o644, oct(st.st_mode)
    assert os.path.exists(os.path.join(job_dir(c, job), "good")), \
        "the failed job's manifest is gone"
    kept = (rf"JobId={job} node=\S+: job FAILED\S*: images kept in "
            rf"\S+/{job} until \S+ \(MigrateImageKeep={KEEP_S}s\)")
    assert re.search(kept, lifecycle_log(c, kept)), \
        "no smigd log line of the kept images"

    smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
    r = c.run(f"{smig} images", timeout=60)
    assert r.rc == 0, str(r)
    assert re.search(rf"^{job}\s+-\s+\d+\s+FAILED\S*\s+keep-until\s+\S+$",
                     r.stdout, re.M), f"smig images:\n{r}"

    # Before the keep time: a sweep leaves it.
    assert time.time() < until - 5, "the job took too long to end for this test"
    run_plain_job(c, "life_sweep1")
    if time.time() < until:
        assert os.path.isdir(job_dir(c, job)), \
            f"{job_dir(c, job)} removed before its keep time ended"
    # After it: the next epilog's sweep removes it.
    time.sleep(max(0, until - time.time()) + 1)
    run_plain_job(c, "life_sweep2")
    assert not os.path.exists(job_dir(c, job)), \
        f"{job_dir(c, job)} still there after its keep time and a sweep"
    assert not os.path.exists(marker(c, job))
    swept = rf"JobId={job} node=\S+: job FAILED\S*: images removed from"
    assert re.search(swept, lifecycle_log(c, swept)), \
        "no smigd log line of the sweep's removal"


def test_requeued_job_keeps_images(cluster, needs_plugins):
    """scontrol requeuehold of a running --migrate job: the epilogs of the
    old run see the job requeued and keep its images, no marker; the
    directory and its manifest are still there while it waits to run
    again."""
    c = cluster
    go = os.path.join(c.workdir, "life_requeue.go")
    if os.path.exists(go):
        os.unlink(go)
    body = (heat_line(c, 80) +
            'if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then\n'
            f"  for i in $(seq 600); do [ -e {go} ] && break; sleep 0.2; done\n"
            "fi\n")
    s = script(c, "life_requeue", body)
    job, out, text = submit_started(c, "life_requeue", s,
                                    "-N2 -n4 --requeue --open-mode=append", 4)
    assert len(starts(text)) >= 4, f"heat did not start:\n{text}"
    wait_good(c, job)
    cl.repeat_until(lambda: read(out), lambda t: "srun_exit=" in t, timeout=120)
    assert "srun_exit=0" in read(out), read(out)
    r = c.run(f"scontrol requeuehold {job}", user="root", timeout=30)
    assert r.rc == 0, f"requeue:\n{r}"
    again = (rf"JobId={job} node=\S+: job \S+: images kept in \S+/{job} "
             r"\(the job may run again\)")
    logs = lifecycle_log(c, again, timeout=60)
    assert re.search(again, logs), \
        "no smigd log line of the requeued job's kept images"
    assert not re.search(rf"JobId={job} .*images removed", logs)
    state = cl.get_job_parameter(c, job, "JobState")
    assert state in ("PENDING", "REQUEUE_HOLD", "REQUEUED"), state
    assert os.path.exists(os.path.join(job_dir(c, job), "good"))
    assert not os.path.exists(marker(c, job))
    c.run(f"scancel {job}", user="root", timeout=30)


def test_running_job_never_swept(cluster, needs_plugins):
    """An expired marker beside the directory of a running job (as if an
    earlier run had failed): neither smig images --reclaim (root) nor
    another job's epilog sweep removes the running job's images; the
    sweep drops the stale marker (the job's own end decides)."""
    c = cluster
    s = script(c, "life_run", heat_line(c, 2000))
    job, out, text = submit_started(c, "life_run", s, "-N2 -n4", 4)
    try:
        assert len(starts(text)) >= 4, f"heat did not start:\n{text}"
        wait_good(c, job)
        path = marker(c, job)
        r = c.run(f"printf 'until=1 end=1 state=FAILED\\n' > {path} && chmod 0644 {path}",
                  user="root", timeout=30)
        assert r.rc == 0, str(r)
        smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
        r = c.run(f"{smig} images --reclaim", user="root", timeout=60)
        assert r.rc == 0, str(r)
        assert re.search(rf"^{job}\s+-\s+\d+\s+RUNNING\s+keep\s+-$", r.stdout, re.M), str(r)
        assert os.path.exists(os.path.join(job_dir(c, job), "good")), \
            f"smig images --reclaim removed a running job's images:\n{r}"
        assert not os.path.exists(path), "the stale marker stayed"
        # The same through an epilog's sweep.
        r = c.run(f"printf 'until=1 end=1 state=FAILED\\n' > {path} && chmod 0644 {path}",
                  user="root", timeout=30)
        assert r.rc == 0, str(r)
        sweeper = cl.submit_job(c, "-N1 -n1 -o /dev/null --wrap true")
        cl.wait_for_job_state(c, sweeper, "COMPLETED", timeout=120)
        gone = cl.repeat_until(lambda: os.path.exists(path), lambda e: not e,
                               timeout=60)
        assert not gone, "the sweep did not look at the expired marker"
        assert os.path.exists(os.path.join(job_dir(c, job), "good")), \
            "an epilog's sweep removed a running job's images"
        assert cl.get_job_parameter(c, job, "JobState") == "RUNNING"
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)
