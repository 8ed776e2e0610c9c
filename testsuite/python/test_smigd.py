# SPDX-License-Identifier: GPL-2.0-or-later
"""test_smigd.py - smigd, the balancer as its own daemon beside slurmctld

Uses the session's cluster when it runs smigd (SMIG_BALANCER=smigd, up.sh
--smigd), else a cluster of its own started with up.sh --smigd for this
module (the session's stays idle meanwhile). What an admin would check:
SIGHUP with a bad migrate.conf keeps the settings in use and names file,
line, key and value; smigd killed with SIGKILL while a job runs leaves the
job running, and once smigd is back the job migrates as before.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import cluster as cl
from heat import DONE_RE, heat_path, read, reference_checksum, starts
from conftest import build_dir, up_script_args
from test_migration import drain, resume, submit_heat

# About 40 s of compute: room to kill smigd, start it again and drain.
LONG_ARGS = "--iters 1600"
LONG_REF = "--nx 96 --ny 64 --iters 1600 --sleep-ms 0 --report 20"


@pytest.fixture(scope="module")
def smigd_cluster(request, cluster):
    """A cluster whose balancer is smigd: the session's if it is one, else a
    new one (up.sh --smigd) stopped at the end of the module."""
    if cluster.balancer == "smigd":
        yield cluster
        return
    if not cluster.plugins:
        pytest.skip("SMIG_NO_PLUGINS=1: the cluster runs without the plugins")
    directory = tempfile.mkdtemp(prefix="smig-pytest-smigd-")
    os.chmod(directory, 0o755)
    up = subprocess.run(up_script_args(directory, cl.pick_port_base(),
                                       ["--smigd", "--nodes", "4"]),
                        text=True, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, timeout=180)
    try:
        assert up.returncode == 0, f"up.sh --smigd failed:\n{up.stdout}"
        yield cl.Cluster(directory, build_dir())
    finally:
        down = subprocess.run([os.path.join(cl.CLUSTER_SCRIPTS, "down.sh"),
                               "--dir", directory], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=180)
        if request.session.testsfailed or down.returncode != 0:
            print(f"\nsmigd cluster directory kept for reading: {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def smigd_log_since(c, mark):
    """smigd's log after the first MARK characters."""
    return c.read_log("smigd")[mark:]


def sighup(c, pid, mark, want, timeout=15):
    """Send SIGHUP to smigd and wait for a log line matching WANT after MARK;
    return the new part of the log."""
    os.kill(pid, signal.SIGHUP)
    return cl.repeat_until(lambda: smigd_log_since(c, mark),
                           lambda t: re.search(want, t), timeout=timeout,
                           poll_interval=0.2)


def port_accepts(c):
    """True if the balancer's port takes a TCP connection."""
    try:
        with socket.create_connection((c.balancer_addr, c.migrate_port), timeout=5):
            return True
    except OSError:
        return False


def test_sighup_bad_conf_keeps_settings(smigd_cluster):
    """SIGHUP with a bad migrate.conf: smigd logs file:line: Key=Value and the
    reason, keeps the settings in use (same pid, no balancer restart, still
    listening), and "smigd -C" refuses the same file naming the same line;
    the good file back again reads as unchanged; a valid change restarts the
    balancer with the new setting (smigd -C shows it)."""
    c = smigd_cluster
    path = os.path.join(c.dir, "migrate.conf")
    with open(path) as f:
        good = f.read()
    pid = c.smigd_pid()
    assert pid, "smigd is not running"
    bad_line = len(good.splitlines()) + 1
    try:
        with open(path, "w") as f:
            f.write(good + "MigrateCaptureTimeout=soon\n")
        mark = len(c.read_log("smigd"))
        text = sighup(c, pid, mark, r"SIGHUP: .*keeping the settings in use")
        want = (f"{path}:{bad_line}: MigrateCaptureTimeout=soon: ")
        assert re.search(r"error: SIGHUP: " + re.escape(want) + r".*: keeping the settings in use",
                         text), f"no file:line:key:value error after SIGHUP:\n{text}"
        assert "restarting the balancer" not in text, text
        assert c.smigd_pid() == pid, "smigd did not survive the bad file"
        assert port_accepts(c), "the balancer stopped listening"

        r = c.run(f"{os.path.join(c.build_dir, 'smigd')} -C -f {path}", user="root",
                  timeout=30)
        assert r.rc == 1, f"smigd -C accepted a bad file:\n{r}"
        assert want in r.stderr, str(r)

        with open(path, "w") as f:
            f.write(good)
        mark = len(c.read_log("smigd"))
        text = sighup(c, pid, mark, r"SIGHUP: .*settings unchanged")
        assert "settings unchanged" in text, text

        # A valid change: the balancer restarts with it.
        with open(path, "w") as f:
            f.write(good + "MigrateRetain=3\n")
        mark = len(c.read_log("smigd"))
        text = sighup(c, pid, mark, r"balancer listening")
        assert "settings changed: restarting the balancer" in text, text
        assert re.search(r"balancer listening", text), text
        r = c.run(f"{os.path.join(c.build_dir, 'smigd')} -C -f {path}", user="root",
                  timeout=30)
        assert r.rc == 0, str(r)
        assert re.search(r"^MigrateRetain\s+= 3$", r.stdout, re.M), r.stdout
        assert c.smigd_pid() == pid
    finally:
        with open(path, "w") as f:
            f.write(good)
        if c.smigd_pid() == pid:
            mark = len(c.read_log("smigd"))
            sighup(c, pid, mark, r"SIGHUP: .*(unchanged|balancer listening)")


@pytest.fixture(scope="module")
def long_reference(smigd_cluster):
    """Checksum of the long heat run without --migrate and without a move."""
    return reference_checksum(smigd_cluster,
                              f"-N2 -n4 {heat_path(smigd_cluster)} {LONG_REF}")


def test_kill9_restart_job_runs_on_and_migrates(smigd_cluster, long_reference):
    """smigd killed with SIGKILL while a --migrate job runs: the job keeps
    computing (its output advances while smigd is away), smigd started again
    restores the job from its state file, and a drain after that moves the
    drained node's ranks as before: the job completes with the checksum of a
    run without migration, and its state line shows gen=1 moves=1."""
    c = smigd_cluster
    job, out = submit_heat(c, "smigd-kill9", "", LONG_ARGS)
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    victim = first[3]
    line = cl.repeat_until(lambda: cl.migration_state(c, job),
                           lambda s: s.startswith("mode=auto"), timeout=20)
    assert line.startswith("mode=auto gen=0 moves=0"), f"state line: {line!r}"

    pid = c.smigd_pid()
    assert pid, "smigd is not running"
    os.kill(pid, signal.SIGKILL)
    assert not cl.repeat_until(c.smigd_pid, lambda p: p is None, timeout=10,
                               poll_interval=0.1), "smigd survived SIGKILL"

    def iters():
        found = re.findall(r"^heat: iter (\d+)/", read(out), re.M)
        return int(found[-1]) if found else 0

    before = iters()
    time.sleep(4)
    assert cl.get_job_parameter(c, job, "JobState") == "RUNNING"
    assert iters() > before, f"the job stopped computing while smigd was away:\n{read(out)}"

    mark = len(c.read_log("smigd"))
    c.start_smigd()
    log = smigd_log_since(c, mark)
    assert re.search(r"state of \d+ jobs restored", log), \
        f"smigd did not restore its state file:\n{log}"

    drain(c, victim)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=240)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
        m = re.search(DONE_RE, text, re.M)
        assert m and m.group(2) == long_reference, \
            f"wrong or no checksum (want {long_reference}):\n{text}"
        restored = {rank: node for rank, node, kind, _ in starts(text)
                    if kind == "restored"}
        assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
        assert victim not in restored.values(), \
            f"a rank restarted on the drained node {victim}: {restored}"
        line = cl.migration_state(c, job)
        assert re.match(r"mode=auto gen=1 moves=1 last_move=ranks=[0-9,-]+;"
                        rf"from={victim};to=\S+;reason=drain", line), \
            f"state line after the move: {line!r}"
    finally:
        resume(c, victim)
        if c.smigd_pid() is None:
            c.start_smigd()
