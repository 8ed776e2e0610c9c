# SPDX-License-Identifier: GPL-2.0-or-later
"""security.py - helpers of the test_security_* tests

A victim: a running migrate-enabled MPI job of the test user. An attacker:
the second test user (SMIG_TEST_USER2, created by the cluster harness)
with testsuite/tools/smig-wire-send, which sends one crafted message to the
balancer and prints its answer.
"""

import os
import pwd
import re
import shlex
import time

import pytest

import cluster as cl

START_RE = r"^heat: rank (\d+) node (\S+) (start|restored) iter (\d+)$"
# Runs for minutes; the module's fixture cancels it.
HEAT_ARGS = "--nx 64 --ny 32 --iters 100000 --sleep-ms 20 --report 50"


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def uid_of(user):
    return pwd.getpwnam(user).pw_uid


def attacker(c):
    """The second test user's name."""
    user = c.env.get("SMIG_TEST_USER2")
    if not user:
        pytest.fail("the cluster has no SMIG_TEST_USER2 (testsuite/cluster/up.sh too old?)")
    return user


def wire_send(c, args, user):
    """Run smig-wire-send ARGS as USER; return its Result."""
    tool = os.path.join(c.build_dir, "testsuite", "tools", "smig-wire-send")
    assert os.access(tool, os.X_OK), f"{tool}: build it first (make)"
    return c.run(f"{tool} --host {shlex.quote(c.balancer_addr)} "
                 f"--port {c.migrate_port} {args}", user=user, timeout=30)


def start_victim(c, name, migrate="manual", hold_hook=None):
    """Submit a 2-node heat job of the test user with --migrate=MIGRATE and
    wait until both ranks run. HOLD_HOOK(job_id), if given, runs while the
    job is held, before it may start. Return (job_id, output path)."""
    heat = os.path.join(c.build_dir, "contrib", "examples", "heat")
    script = os.path.join(c.workdir, f"{name}.sbatch")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate={migrate} -N2 -n2 {heat} "
                f"{HEAT_ARGS}\necho srun_exit=$?\n")
    os.chmod(script, 0o755)
    for attempt in range(1, 4):
        out = os.path.join(c.workdir, f"{name}.{attempt}.out")
        marks = cl.log_marks(c)
        hold = "--hold " if hold_hook else ""
        job = cl.submit_job(c, f"{hold}-N2 --ntasks-per-node=1 -o {out} {script}")
        if hold_hook:
            hold_hook(job)
            r = c.run(f"scontrol release {job}", user="root", timeout=30)
            assert r.rc == 0, f"release failed:\n{r}"
        seen = cl.repeat_until(
            lambda: (read(out), cl.get_job_parameter(c, job, "JobState")),
            lambda t: len(re.findall(START_RE, t[0], re.M)) >= 2 or
            t[1] in cl.TERMINAL_STATES,
            timeout=90)
        text = read(out)
        if len(re.findall(START_RE, text, re.M)) >= 2:
            # The agents say hello right after the ranks' start.
            time.sleep(1)
            return job, out
        again = cl.job_start_retry(c, job, text,
                                   len(re.findall(START_RE, text, re.M)), 2,
                                   attempt, 3, marks,
                                   timed_out=seen[1] not in cl.TERMINAL_STATES)
        c.run(f"scancel {job}", user="root", timeout=30)
        if not again:
            pytest.fail(f"job {job} did not start (state {seen[1]}):\n{text}")
    raise AssertionError("unreachable")


def iterations(text):
    """Highest iteration any progress line of heat reports so far."""
    its = [int(i) for i in re.findall(r"\biter[= ](\d+)", text)]
    return max(its) if its else 0


def wait_log(c, name, pattern, timeout=15):
    """Wait until the daemon log NAME matches PATTERN; return the match or
    None."""
    return cl.repeat_until(lambda: re.search(pattern, c.read_log(name), re.M),
                           lambda m: m is not None, timeout=timeout)
