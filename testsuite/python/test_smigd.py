# SPDX-License-Identifier: GPL-2.0-or-later
"""test_smigd.py - smigd, the balancer as its own daemon beside slurmctld

What an admin would check on the session's cluster (up.sh starts smigd as
it starts slurmctld): SIGHUP with a bad migrate.conf keeps the settings in
use and names file, line, key and value; smigd killed with SIGKILL while a
job runs, in the middle of a capture or of a relaunch, loses nothing once
started again from its state file; smigd stopped for a minute leaves the
running jobs alone and they migrate again once it is back; slurmctld
restarted under a running smigd: smigd carries on; a drain reaches smigd
through Slurm's node trigger (smigd -E), not its poll of the node table.

Cost measured here (2 cores, loopback cluster, under load): kill -9
mid-capture 65-75 s (periodic 5 s captures), mid-relaunch 26 s, the minute
without smigd 115-130 s, the slurmctld restart 50-60 s.
"""

import json
import os
import re
import signal
import socket
import time

import pytest

import cluster as cl
from heat import DONE_RE, heat_path, read, reference_checksum, starts, \
    submit_started
from test_fault_ctld import CAPTURING_RE, HEAT_ARGS, STOPPING_RE, \
    balancer_line, check_images, finish, good_gens, write_script
from test_migration import drain, expand_ranks, resume, submit_heat

# About 40 s of compute: room to kill smigd, start it again and drain.
LONG_ARGS = "--iters 1600"
LONG_REF = "--nx 96 --ny 64 --iters 1600 --sleep-ms 0 --report 20"
# At least 100 s of compute (4000 x 25 ms): smigd away for a minute, then
# a drain.
MINUTE_ARGS = "--iters 4000"
MINUTE_REF = "--nx 96 --ny 64 --iters 4000 --sleep-ms 0 --report 20"
AWAY_S = 60
# A poll so slow that it cannot be what moves the ranks: with the node
# triggers set, the node table is read every 6 of them (30 min), and the
# job ends (about 40 s) long before even one interval.
SLOW_POLL = "300s"
# slurmctld looks at its triggers every 15 s (TRIGGER_INTERVAL), then
# smigd acts on its next tick (2 s): 60 s is generous, 300 s out of reach.
TRIGGER_WAIT_S = 60


@pytest.fixture(scope="module")
def smigd_cluster(cluster):
    """The session's cluster, whose balancer is smigd (started by up.sh)."""
    if not cluster.plugins:
        pytest.skip("SMIG_NO_PLUGINS=1: the cluster runs without the plugins")
    assert cluster.smigd_pid(), "the session's cluster runs no smigd"
    return cluster


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


def assert_drain_moved(c, job, out, victim, reference):
    """The drained job completed: srun 0, the checksum REFERENCE, every rank
    restored off VICTIM, and its state line names the one move (gen=1)."""
    state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=240)
    text = read(out)
    assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
    assert "srun_exit=0" in text, f"srun did not return 0:\n{text}"
    m = re.search(DONE_RE, text, re.M)
    assert m and m.group(2) == reference, \
        f"wrong or no checksum (want {reference}):\n{text}"
    restored = {rank: node for rank, node, kind, _ in starts(text)
                if kind == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], f"not every rank restored:\n{text}"
    assert victim not in restored.values(), \
        f"a rank restarted on the drained node {victim}: {restored}"
    line = cl.migration_state(c, job)
    assert re.match(r"mode=auto gen=1 moves=1 last_move=ranks=[0-9,-]+;"
                    rf"from={victim};to=\S+;reason=drain", line), \
        f"state line after the move: {line!r}"


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
        assert_drain_moved(c, job, out, victim, long_reference)
    finally:
        resume(c, victim)
        if c.smigd_pid() is None:
            c.start_smigd()


def kill9_smigd(c):
    """SIGKILL to smigd by its pid; wait until it is gone."""
    pid = c.smigd_pid()
    assert pid, "smigd is not running"
    os.kill(pid, signal.SIGKILL)
    assert not cl.repeat_until(c.smigd_pid, lambda p: p is None, timeout=10,
                               poll_interval=0.05), "smigd survived SIGKILL"


def restart_smigd(c):
    """Start smigd again (it must be stopped); return the part of its log
    written by the new smigd until it listens."""
    mark = len(c.read_log("smigd"))
    c.start_smigd()
    return smigd_log_since(c, mark)


def smig_history(c, job):
    """The job's decisions as `smig history JOB --json` lists them, as soon
    as the balancer answers for the job (a step of it registered: the
    balancer forgets a job once it ended)."""
    smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
    r = cl.repeat_until(lambda: c.run(f"{smig} history {job} --json", timeout=30),
                        lambda r: r.rc == 0, timeout=20, poll_interval=0.3)
    assert r.rc == 0, f"smig history {job} failed:\n{r}"
    return json.loads(r.stdout)["history"]


def heat_iters(out):
    """The last iteration rank 0 reported in the job's output (0: none)."""
    found = re.findall(r"^heat: iter (\d+)/", read(out), re.M)
    return int(found[-1]) if found else 0


@pytest.fixture(scope="module")
def capture_reference(smigd_cluster):
    """Checksum of test_fault_ctld's heat run without --migrate."""
    return reference_checksum(
        smigd_cluster, f"-N2 -n4 {heat_path(smigd_cluster)} "
        f"{HEAT_ARGS.replace('--sleep-ms 25', '--sleep-ms 0')}")


def test_kill9_mid_capture(smigd_cluster, capture_reference):
    """smigd killed with SIGKILL while the ranks capture generation 2 (each
    capture sleeps 5 s in heat's capture callback; generation 1 is good),
    then started again: it reads the capture in progress from its state
    file and abandons it (its log says so; its state line: gen=1 moves=0
    last_error=gen=2;reason=balancer-restart), the agents resumed the ranks
    where they were, the job completes in its old placement with the
    checksum of a run without migration, and the manifest never names
    generation 2; the newest good generation's four images verify."""
    c = smigd_cluster
    script = write_script(c, "smigd_kill9_capture", "every=1s",
                          "--capture-sleep-ms 5000")
    job, out, text = submit_started(c, "smigd_kill9_capture", script,
                                    "-N2 -n4", 4)
    first = {rank: node for rank, node, kind, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text

    line = cl.repeat_until(lambda: cl.migration_state(c, job),
                           lambda s: re.search(r"\bgen=1\b", s), timeout=60)
    assert re.search(r"\bgen=1 moves=0\b", line), \
        f"generation 1 not good before the kill: {line!r}\n{read(out)}"
    # The capture of generation 2 starts: each rank sleeps 5 s in it.
    text = cl.repeat_until(lambda: read(out),
                           lambda t: len(re.findall(CAPTURING_RE, t, re.M)) > 4,
                           timeout=30, poll_interval=0.1)
    assert len(re.findall(CAPTURING_RE, text, re.M)) > 4, \
        f"no second capture:\n{text}"
    kill9_smigd(c)
    log = restart_smigd(c)
    assert re.search(rf"JobId={job} StepId=\d+: capture gen=2 was in phase "
                     r"(prepare|capture) when the balancer stopped: abandoned",
                     log), f"the restarted smigd did not settle gen=2:\n{log}"
    # Restored from the state file, before any peer registered again.
    assert re.match(r"mode=auto gen=1 moves=0 "
                    r"last_error=gen=2;reason=balancer-restart",
                    balancer_line(c, job)), \
        f"smigd's state after the restart: {balancer_line(c, job)!r}"

    text = finish(c, job, out, capture_reference)
    assert [k for _, _, k, _ in starts(text)] == ["start"] * 4, \
        f"the step was relaunched: the old placement was expected:\n{text}"
    assert not re.search(STOPPING_RE, text, re.M), text
    gens = good_gens(c, job)
    assert 2 not in gens, f"the abandoned generation 2 is in the manifest: {gens}"
    check_images(c, job, gens[-1])


def test_kill9_mid_relaunch(smigd_cluster, capture_reference):
    """smigd killed with SIGKILL right after the relaunch began (a drain
    moved two ranks, srun acknowledged the RELAUNCH, the ranks print
    "stopping for migration", none of the relaunched ranks has restored
    yet), then started again: the relaunch completes (every rank restored
    from generation 1, none on the drained node), the job completes with
    the checksum of a run without migration, the state line shows gen=1
    moves=1 and the move, and `smig history` lists the drain move as
    moved (asked while the job runs: smigd forgets a job that ended); the
    manifest names generation 1, whose four images verify."""
    c = smigd_cluster
    script = write_script(c, "smigd_kill9_relaunch", "auto")
    job, out, text = submit_started(c, "smigd_kill9_relaunch", script,
                                    "-N3 --ntasks-per-node=2", 4)
    first = {rank: node for rank, node, kind, _ in starts(text)}
    assert sorted(first) == [0, 1, 2, 3], text
    victim = first[3]
    moving = sorted(r for r, n in first.items() if n == victim)
    drain(c, victim, "smigd-kill9")
    try:
        text = cl.repeat_until(lambda: read(out),
                               lambda t: re.search(STOPPING_RE, t, re.M),
                               timeout=60, poll_interval=0.05)
        assert re.search(STOPPING_RE, text, re.M), f"no move:\n{text}"
        kill9_smigd(c)
        # The window: the ranks stopped, the relaunched ones not back yet.
        text = read(out)
        assert not [k for _, _, k, _ in starts(text) if k == "restored"], \
            f"the ranks were back before smigd was killed:\n{text}"
        restart_smigd(c)
        assert re.match(r"mode=auto gen=1 moves=1 last_move=ranks=",
                        balancer_line(c, job)), \
            f"smigd's state after the restart: {balancer_line(c, job)!r}"
        # The move, from the state file, while the job runs.
        hist = [(h["kind"], h["gen"], sorted(expand_ranks(h["ranks"])),
                 h["from"], h["outcome"]) for h in smig_history(c, job)]
        assert hist == [("drain", 1, moving, victim, "moved")], \
            f"history: {hist}"
        text = finish(c, job, out, capture_reference)
    finally:
        resume(c, victim)
    restored = {rank: node for rank, node, kind, _ in starts(text)
                if kind == "restored"}
    assert sorted(restored) == [0, 1, 2, 3], \
        f"not every rank restored (new placement expected):\n{text}"
    assert victim not in restored.values(), \
        f"a rank restarted on the drained node {victim}: {restored}"
    line = cl.migration_state(c, job)
    assert re.fullmatch(r"mode=auto gen=1 moves=1 last_move=ranks=\S+;"
                        rf"from={victim};to=\S+;reason=drain( load=\S+)?",
                        line), f"state line after the restart: {line!r}"
    check_images(c, job, 1)


@pytest.fixture(scope="module")
def minute_reference(smigd_cluster):
    """Checksum of the heat run of the minute without smigd, no --migrate."""
    return reference_checksum(smigd_cluster,
                              f"-N2 -n4 {heat_path(smigd_cluster)} {MINUTE_REF}")


def test_smigd_away_a_minute(smigd_cluster, minute_reference):
    """smigd stopped (SIGTERM) for a minute while a --migrate job runs: the
    job is left alone (still RUNNING in its first step, its ranks keep
    computing all along, none stops or captures); once smigd is back, a
    drain moves the drained node's ranks as before and the job completes
    with the checksum of a run without migration (gen=1 moves=1)."""
    c = smigd_cluster
    job, out = submit_heat(c, "smigd-away", "", MINUTE_ARGS)
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    victim = first[3]
    line = cl.repeat_until(lambda: cl.migration_state(c, job),
                           lambda s: s.startswith("mode=auto"), timeout=20)
    assert line.startswith("mode=auto gen=0 moves=0"), f"state line: {line!r}"

    pid = c.smigd_pid()
    assert pid, "smigd is not running"
    os.kill(pid, signal.SIGTERM)
    assert not cl.repeat_until(c.smigd_pid, lambda p: p is None, timeout=20,
                               poll_interval=0.1), "smigd ignored SIGTERM"
    assert not port_accepts(c), "the balancer's port still answers"
    away = time.monotonic()
    seen = [heat_iters(out)]
    while time.monotonic() - away < AWAY_S:
        time.sleep(10)
        assert cl.get_job_parameter(c, job, "JobState") == "RUNNING", \
            f"job {job} left RUNNING while smigd was away:\n{read(out)}"
        seen.append(heat_iters(out))
        assert seen[-1] > seen[-2], \
            f"the job stopped computing while smigd was away ({seen}):\n{read(out)}"
    text = read(out)
    assert [k for _, _, k, _ in starts(text)] == ["start"] * 4, text
    assert not re.search(CAPTURING_RE + "|" + STOPPING_RE, text, re.M), \
        f"a rank stopped or captured while smigd was away:\n{text}"

    restart_smigd(c)
    drain(c, victim)
    try:
        assert_drain_moved(c, job, out, victim, minute_reference)
    finally:
        resume(c, victim)
        if c.smigd_pid() is None:
            c.start_smigd()


def test_slurmctld_restart_under_smigd(smigd_cluster, long_reference):
    """slurmctld restarted (SIGTERM, started again) while smigd runs and a
    --migrate job computes: smigd stays up (same pid) and carries on once
    slurmctld answers again: a drain after the restart moves the drained
    node's ranks, the job completes with the checksum of a run without
    migration and its state line (AdminComment, written through the
    restarted slurmctld) shows gen=1 moves=1 and the move."""
    c = smigd_cluster
    job, out = submit_heat(c, "smigd-ctld", "", LONG_ARGS)
    first = {rank: node for rank, node, kind, _ in starts(read(out))}
    victim = first[3]
    line = cl.repeat_until(lambda: cl.migration_state(c, job),
                           lambda s: s.startswith("mode=auto"), timeout=20)
    assert line.startswith("mode=auto gen=0 moves=0"), f"state line: {line!r}"
    pid = c.smigd_pid()
    assert pid, "smigd is not running"

    c.restart_slurmctld()
    assert c.smigd_pid() == pid, "smigd did not survive the slurmctld restart"
    assert cl.get_job_parameter(c, job, "JobState") == "RUNNING"

    drain(c, victim)
    try:
        assert_drain_moved(c, job, out, victim, long_reference)
        assert c.smigd_pid() == pid, "smigd exited after the slurmctld restart"
    finally:
        resume(c, victim)


def smigd_triggers(c):
    """smigd's node triggers as `strigger --get` lists them: sorted
    (type, program) of those whose program is this build's smigd and that
    wait for an event (RES_ID *; a permanent trigger that fired is listed
    for 300 s more with its nodes as RES_ID while a copy waits)."""
    smigd = os.path.join(c.build_dir, "smigd")
    r = c.run("strigger --get", user="root", timeout=30)
    assert r.rc == 0, f"strigger --get failed:\n{r}"
    found = []
    for line in r.stdout.splitlines():
        cols = line.split(None, 7)
        if len(cols) == 8 and cols[2] == "*" and cols[7].startswith(smigd + " "):
            found.append((cols[3], cols[7]))
    return sorted(found), r.stdout


def test_drain_through_node_trigger(smigd_cluster, long_reference):
    """smigd set Slurm's node triggers at start (strigger --get lists one
    per event, program "smigd -f migrate.conf -E EVENT"); with
    MigratePollInterval=300s (so the node table is read every 30 min), a
    drain reaches smigd through the trigger: its log shows the trigger's
    NODE_EVENT before the capture of the move, the capture starts within
    TRIGGER_WAIT_S of the drain, and the job completes moved off the
    drained node with the checksum of a run without migration. smigd killed
    with SIGKILL and started again takes its triggers over (one per event,
    not two); stopped cleanly (SIGTERM) it clears them."""
    c = smigd_cluster
    smigd = os.path.join(c.build_dir, "smigd")
    path = os.path.join(c.dir, "migrate.conf")
    trig, listing = smigd_triggers(c)
    events = [t for t, _ in trig]
    assert events in (["down", "reconfig", "up"],
                      ["down", "draining", "reconfig", "up"]), \
        f"smigd's node triggers: {trig}\n{listing}"
    for event, program in trig:
        assert program == f"{smigd} -f {path} -E {event}", program
    assert re.search(r"Slurm's node triggers \(down, up, reconfig(, draining)?\) "
                     r"tell smigd of node events", c.read_log("smigd")), \
        "smigd did not log its node triggers"

    with open(path) as f:
        good = f.read()
    pid = c.smigd_pid()
    assert pid, "smigd is not running"
    victim = None
    try:
        slow = "".join(line for line in good.splitlines(keepends=True)
                       if not line.startswith("MigratePollInterval="))
        with open(path, "w") as f:
            f.write(slow + f"MigratePollInterval={SLOW_POLL}\n")
        reloaded = len(c.read_log("smigd"))
        sighup(c, pid, reloaded, r"balancer listening")
        r = c.run(f"{smigd} -C -f {path}", user="root", timeout=30)
        assert re.search(r"^MigratePollInterval\s+= 5m$", r.stdout, re.M), r.stdout

        job, out = submit_heat(c, "smigd-trigger", "", LONG_ARGS)
        first = {rank: node for rank, node, kind, _ in starts(read(out))}
        victim = first[3]
        line = cl.repeat_until(lambda: cl.migration_state(c, job),
                               lambda s: s.startswith("mode=auto"), timeout=20)
        assert line.startswith("mode=auto gen=0 moves=0"), f"state line: {line!r}"

        # The drain must not be in smigd's first read of the node table
        # since the reload (its first node_flags() comes once the step's
        # ranks are ready): a reload reads both tables afresh, so a table
        # read under the old settings (an earlier test's drain, resumed
        # since) is not taken for the new one.
        def reads():
            return re.findall(r"node table read \((.*?)\)",
                              smigd_log_since(c, reloaded))
        first_reads = cl.repeat_until(reads, bool, timeout=30, poll_interval=0.2)
        assert first_reads, "smigd did not read the node table once the job ran"
        assert first_reads[0] in ("the balancer started", "a node event"), \
            f"the reload did not make the node table due: {first_reads}"

        # Nor may an older event (a resume of an earlier test fires
        # Slurm's reconfig trigger up to 15 s later) still be pending, or
        # its read, not the drain's event, would find the drain.
        def settled():
            log = smigd_log_since(c, reloaded)
            return log.rfind("node table read (") > \
                log.rfind("Slurm's node trigger: ")
        assert cl.repeat_until(settled, bool, timeout=30, poll_interval=0.2), \
            "a node event of Slurm's trigger was not followed by a read"
        mark = len(c.read_log("smigd"))
        drained = time.monotonic()
        drain(c, victim)
        text = cl.repeat_until(lambda: smigd_log_since(c, mark),
                               lambda t: re.search(rf"JobId={job} .*capture gen=1 ", t),
                               timeout=TRIGGER_WAIT_S, poll_interval=0.2)
        waited = time.monotonic() - drained
        ev = re.search(r"Slurm's node trigger: event=(reconfig|draining) "
                       r"nodes=\S+: the node table is read again", text)
        read_ = re.search(r"node table read \((.*?)\)", text)
        assert read_ and read_.group(1) == "a node event", \
            f"the node table was not read because of the node event:\n{text}"
        cap = re.search(rf"JobId={job} StepId=\d+.*: capture gen=1 ", text)
        assert cap, f"no capture within {TRIGGER_WAIT_S} s of the drain:\n{text}"
        assert ev and ev.start() < read_.start() < cap.start(), \
            f"the capture did not follow a NODE_EVENT of the trigger:\n{text}"
        assert waited < TRIGGER_WAIT_S
        assert_drain_moved(c, job, out, victim, long_reference)
    finally:
        if victim:
            resume(c, victim)
        with open(path, "w") as f:
            f.write(good)
        if c.smigd_pid() == pid:
            mark = len(c.read_log("smigd"))
            sighup(c, pid, mark, r"balancer listening")

    # kill -9: the triggers stay in slurmctld; the next start keeps them.
    kill9_smigd(c)
    assert smigd_triggers(c)[0] == trig
    log = restart_smigd(c)
    assert smigd_triggers(c)[0] == trig, \
        f"not one trigger per event after a restart:\n{smigd_triggers(c)[1]}"
    assert "Slurm trigger set" not in log, f"triggers set again:\n{log}"
    # A clean stop clears them; the start sets them again.
    pid = c.smigd_pid()
    os.kill(pid, signal.SIGTERM)
    assert not cl.repeat_until(c.smigd_pid, lambda p: p is None, timeout=20,
                               poll_interval=0.1), "smigd ignored SIGTERM"
    assert smigd_triggers(c)[0] == [], \
        f"triggers left after a clean stop:\n{smigd_triggers(c)[1]}"
    restart_smigd(c)
    assert smigd_triggers(c)[0] == trig
