# SPDX-License-Identifier: GPL-2.0-or-later
"""test_fault_matrix.py - issue 9's fault matrix: what happens, and nothing is lost

Each test breaks one thing under a running heat job (contrib/examples) and
checks what a person would: what the balancer did (its state line, its
log), the job's outcome (completed with the checksum of a run without
faults, or restarted from the last good generation) and that no good image
was lost (the manifest "good" still names it and the ranks restore it).
doc/faults.md lists every case of the matrix with its test and result; the
image store filling up is test_fault_store_full in test_image_faults.py
(it shares that file's two-step job).

Cost measured here (2 cores, loopback cluster): stepd_killed_capture
18 s, srun_killed_relaunch 11 s per signal, drain_two 8 s and 9 s,
partition 15 s plus 1.5 s to start a second cluster in network-namespace
mode (unless the session's cluster already is one); with
test_fault_store_full (13 s), about 90 s for the whole matrix.
"""

import os
import re
import signal

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read, starts, submit_started

HEAT_ARGS = "--nx 96 --ny 64 --iters 240 --sleep-ms 25 --report 40"
STOP_RE = r"^heat: rank (\d+) stopping for migration at iter (\d+)$"
PAYLOAD_ITER_OFF = 128 + 8 + 32  # heat_image.iter (see test_image_faults.py)


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


def write_script(c, name, body):
    path = os.path.join(c.workdir, f"{name}.sbatch")
    with open(path, "w") as f:
        f.write("#!/bin/bash\n" + body)
    os.chmod(path, 0o755)
    return path


def job_dir(c, job):
    return os.path.join(c.dir, "images", str(job))


def good_gens(c, job):
    """Generations the job's manifest lists ([] while there is none)."""
    lines = read(os.path.join(job_dir(c, job), "good")).splitlines()
    assert not lines or lines[0] == "smig-good 1", lines
    return [int(l.split()[1]) for l in lines[1:]]


def image_iter(c, job, rank, gen):
    with open(os.path.join(job_dir(c, job), f"rank{rank}.g{gen}.img"),
              "rb") as f:
        f.seek(PAYLOAD_ITER_OFF)
        return int.from_bytes(f.read(8), "little", signed=True)


def comment(c, job):
    return cl.migration_state(c, job)


def checksum_of(text, reference, what):
    m = re.search(DONE_RE, text, re.M)
    assert m, f"{what} printed no checksum:\n{text}"
    assert m.group(1) == "240", f"{what} ended at iteration {m.group(1)}"
    assert m.group(2) == reference, \
        f"{what}: checksum {m.group(2)} != {reference} of a run without faults"


def restored(text):
    """{rank: (node, iter)} of the first "restored" line of each rank in
    TEXT."""
    got = {}
    for r, n, k, i in starts(text):
        if k == "restored":
            got.setdefault(r, (n, i))
    return got


def release(c, name):
    with open(os.path.join(c.workdir, f"{name}.go"), "w"):
        pass


def drain(c, nodes, reason="fault"):
    r = c.run(f"scontrol update nodename={','.join(nodes)} state=drain "
              f"reason={reason}", user="root", timeout=30)
    assert r.rc == 0, str(r)


def resume(c, nodes):
    """Undo drain(); a node resumed already is no error."""
    c.run(f"scontrol update nodename={','.join(nodes)} state=resume",
          user="root", timeout=30)


def node_stepd(c, node, job, step):
    """PID of the slurmstepd of JOB.STEP on NODE (from the node's cgroup,
    which the harness keeps), None if there is none."""
    try:
        with open(os.path.join(c.env["SMIG_CGROUP"], node,
                               "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except (OSError, KeyError, ValueError):
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("slurmstepd") and f"[{job}.{step}]" in cmd:
            return pid
    return None


def srun_of(c, job, word):
    """PID of the srun of JOB of cluster C (other clusters run jobs of the
    same number on this machine) whose command line has WORD."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if os.path.basename(argv[0]) != b"srun" or \
                    word.encode() not in argv:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"SLURM_JOB_ID={job}".encode() in env and \
                f"SLURM_CONF={c.env['SLURM_CONF']}".encode() in env:
            return int(pid)
    return None


def test_fault_stepd_killed_capture(cluster, needs_plugins, reference):
    """slurmstepd of one node of the step is killed (SIGKILL) while its
    ranks capture: the balancer aborts the capture (agent-lost, naming that
    node's ranks), srun kills the broken step at once (Slurm 22.05 would
    wait for the dead slurmstepd forever), the manifest still names the
    generations from before and only them, and the restart in the same job
    (SLURM_MIGRATE_RESTORE_GEN=last) restores the newest of them on every
    rank and completes with the checksum of a run without faults."""
    c = cluster
    name = "fault_stepd"
    go = os.path.join(c.workdir, f"{name}.go")
    if os.path.exists(go):
        os.unlink(go)
    heat = heat_path(c)
    script = write_script(c, name,
        f"srun --mpi=pmix --migrate=every=1s,capture-timeout=10s -N2 -n4 "
        f"{heat} {HEAT_ARGS} --capture-sleep-ms 1000\n"
        "echo srun_exit=$?\n"
        f"for i in $(seq 600); do [ -e {go} ] && break; sleep 0.2; done\n"
        # --overlap: the dead slurmstepd's step keeps its CPUs in
        # slurmctld until the job ends (doc/faults.md).
        "SLURM_MIGRATE_RESTORE_GEN=last srun --overlap --mpi=pmix "
        f"--migrate -N2 -n4 {heat} {HEAT_ARGS}\n"
        "echo step2_exit=$?\n")
    job, out, text = submit_started(c, name, script, "-N2 --ntasks-per-node=2", 4)
    try:
        first = {r: n for r, n, _, _ in starts(text)}
        assert sorted(first) == [0, 1, 2, 3], text
        victim = first[3]
        lost = sorted(r for r, n in first.items() if n == victim)
        gens = cl.repeat_until(lambda: good_gens(c, job), bool, timeout=60)
        assert gens, f"no good generation before the fault:\n{read(out)}"
        cap_re = r"^heat: rank 3 capturing iter (\d+) pid \d+$"
        seen = len(re.findall(cap_re, read(out), re.M))
        text = cl.repeat_until(lambda: read(out), lambda t: len(re.findall(
            cap_re, t, re.M)) > seen or "srun_exit=" in t, timeout=60,
            poll_interval=0.05)
        assert len(re.findall(cap_re, text, re.M)) > seen, \
            f"no capture after generation {gens}:\n{text}"
        before = good_gens(c, job)
        pid = node_stepd(c, victim, job, 0)
        assert pid, f"no slurmstepd of {job}.0 on {victim}"
        os.kill(pid, signal.SIGKILL)

        text = cl.repeat_until(lambda: read(out), lambda t: "srun_exit=" in t,
                               timeout=60)
        assert "srun_exit=" in text, \
            f"srun still waits for the killed slurmstepd:\n{text}"
        assert "srun_exit=0" not in text, text
        line = comment(c, job)
        m = re.search(r"last_error=gen=(\d+);reason=agent-lost;ranks=(\S+?)"
                      r"(?: |$)", line)
        assert m, f"SystemComment={line!r}"
        failed = int(m.group(1))
        assert m.group(2) == ",".join(map(str, lost)), line
        assert failed > before[-1], line
        after = good_gens(c, job)
        assert after == before, f"manifest changed from {before} to {after}"
        assert re.search(rf"JobId={job} StepId=0: the node agent of {victim} "
                         r"is gone", text), text
        last = after[-1]
        want = image_iter(c, job, 0, last)

        release(c, name)
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "step2_exit=0" in text, text
        step2 = text.split("srun_exit=", 1)[1]
        checksum_of(step2, reference, "the restart")
        got = restored(step2)
        assert sorted(got) == [0, 1, 2, 3], step2
        assert {i for _, i in got.values()} == {want}, \
            f"ranks did not all restore generation {last} (iter {want}): {got}"
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)


# slurmctld with DebugFlags=Steps (logged at level verbose), when it cannot
# create a step yet: 22.05 says it in _slurm_rpc_job_step_create, 24.11 in
# step_create_from_msg.
STEP_BUSY_RE = (r"(_slurm_rpc_job_step_create|step_create_from_msg) "
                r"for JobId={job}: Requested nodes are busy")


@pytest.mark.parametrize("sig", ["KILL", "TERM"])
def test_fault_srun_killed_relaunch(cluster, needs_plugins, reference, sig):
    """srun is killed (SIGKILL) or terminated (SIGTERM) after the move was
    committed and before the relaunched step starts (it waits for the
    spare node, which another step of the job holds): the old ranks had
    stopped at one safe point, so the move's generation is good (manifest)
    and nothing is lost; the batch script sees srun fail (137, or 1 after
    "Cancelled pending job step"), and a restart
    (SLURM_MIGRATE_RESTORE_GEN=last) restores that generation on every rank
    at the iteration where they stopped and completes with the checksum of
    a run without faults."""
    c = cluster
    name = f"fault_srun_{sig}"
    go = os.path.join(c.workdir, f"{name}.go")
    held = os.path.join(c.workdir, f"{name}.held")
    for p in (go, held):
        if os.path.exists(p):
            os.unlink(p)
    heat = heat_path(c)
    script = write_script(c, name,
        # Another step holds the spare node (the 3rd) until the test says.
        f"srun -N1 -n2 --relative=2 bash -c 'touch {held}; "
        f"while [ ! -e {go} ]; do sleep 0.2; done' &\n"
        f"for i in $(seq 300); do [ -e {held} ] && break; sleep 0.1; done\n"
        f"srun --mpi=pmix --migrate -N2 -n4 {heat} {HEAT_ARGS}\n"
        "echo srun_exit=$?\n"
        "wait\n"
        "SLURM_MIGRATE_RESTORE_GEN=last srun --mpi=pmix --migrate -N2 -n4 "
        f"{heat} {HEAT_ARGS}\n"
        "echo step2_exit=$?\n")
    job, out, text = submit_started(c, name, script, "-N3 --ntasks-per-node=2", 4)
    victim = None
    # slurmctld logs the refused step creation (see STEP_BUSY_RE).
    level = re.search(r"^SlurmctldDebug\s*=\s*(\S+)$", cl.show_config(c), re.M)
    assert level, "no SlurmctldDebug in scontrol show config"
    quiet = level.group(1) in ("quiet", "fatal", "error", "info")
    for cmd in ("setdebugflags +Steps", "setdebug verbose" if quiet else ""):
        if not cmd:
            continue
        r = c.run(f"scontrol {cmd}", user="root", timeout=30)
        assert r.rc == 0, str(r)
    try:
        first = {r: n for r, n, _, _ in starts(text)}
        assert sorted(first) == [0, 1, 2, 3], text
        victim = first[3]
        drain(c, [victim])
        # srun execs itself with --distribution=arbitrary; the new step
        # waits (silently) for the spare node's CPUs.
        pid = cl.repeat_until(lambda: srun_of(c, job, "--distribution=arbitrary"),
                              bool, timeout=60, poll_interval=0.1)
        text = read(out)
        assert pid, f"no relaunched srun:\n{text}"
        assert "relaunching step with generation 1" in text, text
        stops = re.findall(STOP_RE, text, re.M)
        assert sorted(int(r) for r, _ in stops) == [0, 1, 2, 3], text
        assert len({i for _, i in stops}) == 1, stops
        stop_iter = int(stops[0][1])
        # slurmctld refused the new step for now (its nodes are busy) and
        # srun waits: only then is "not started" a result.
        busy = STEP_BUSY_RE.format(job=job)
        log = cl.repeat_until(lambda: c.read_log("slurmctld"),
                              lambda t: re.search(busy, t), timeout=30)
        assert re.search(busy, log), \
            f"slurmctld did not refuse the relaunched step ({busy}):\n{log[-2000:]}"
        text = read(out)
        assert not restored(text), "the relaunched step started"
        os.kill(pid, getattr(signal, f"SIG{sig}"))
        text = cl.repeat_until(lambda: read(out), lambda t: "srun_exit=" in t,
                               timeout=30)
        # SIGTERM: srun cancels its pending step itself and fails.
        want = "137" if sig == "KILL" else "1"
        assert re.search(rf"^srun_exit={want}$", text, re.M), text
        if sig == "TERM":
            assert "Cancelled pending job step with signal 15" in text, text
        # smigd writes AdminComment from its own flush, rate limited: wait
        # for the committed move to be published, then check the line.
        line = cl.repeat_until(lambda: comment(c, job),
                               lambda l: "moves=0" not in l, timeout=20)
        assert line.startswith("mode=auto gen=1 moves=1 last_move="), line
        assert good_gens(c, job) == [1]
        assert image_iter(c, job, 0, 1) == stop_iter

        resume(c, [victim])
        release(c, name)
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "step2_exit=0" in text, text
        step2 = text.split("srun_exit=", 1)[1]
        checksum_of(step2, reference, "the restart")
        got = restored(step2)
        assert sorted(got) == [0, 1, 2, 3], step2
        assert {i for _, i in got.values()} == {stop_iter}, got
    finally:
        c.run("scontrol setdebugflags -Steps", user="root", timeout=30)
        if quiet:
            c.run(f"scontrol setdebug {level.group(1)}", user="root", timeout=30)
        release(c, name)
        if victim:
            resume(c, [victim])
        c.run(f"scancel {job}", user="root", timeout=30)


@pytest.mark.parametrize("room", ["spares", "no-spare"])
def test_fault_drain_two(cluster, needs_plugins, reference, room):
    """Both nodes of a step are drained in one command. With two free nodes
    in the allocation (spares) all four ranks move in one capture
    (generation 1, one move naming both nodes), restore the iteration they
    stopped at, run on the two spare nodes and finish with the right
    checksum. Without room (one free node, two slots, for four ranks) and
    a job that may not be requeued, the balancer moves nobody:
    SystemComment gives the reason, no image is written, and the job runs
    on where it is to the right checksum."""
    c = cluster
    name = f"fault_drain_two_{room}"
    script = write_script(c, name,
        f"srun --mpi=pmix --migrate -N2 -n4 {heat_path(c)} "
        f"{HEAT_ARGS}\n"
        "echo srun_exit=$?\n")
    # --no-requeue: no job-scope move either (a requeue is the balancer's
    # answer to "no room in the allocation" where the job allows it).
    opts = ("-N4 --ntasks-per-node=2" if room == "spares" else
            "-N3 --ntasks-per-node=2 --no-requeue")
    # A relaunch that does not start is the product's to detect and
    # recover from (the relaunch watchdog, doc/faults.md): never run again
    # here.
    job, out, text = submit_started(c, name, script, opts, 4)
    first = {r: n for r, n, _, _ in starts(text)}
    step_nodes = sorted(set(first.values()))
    if sorted(first) != [0, 1, 2, 3] or len(step_nodes) != 2:
        c.run(f"scancel {job}", user="root", timeout=30)
        pytest.fail(f"unexpected placement {first}:\n{text}")
    drain(c, step_nodes)
    try:
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        checksum_of(text, reference, "the job")
        line = comment(c, job)
        if room == "no-spare":
            # Job scope would requeue the job, but it may not be requeued.
            assert re.fullmatch(r"mode=auto gen=0 moves=0 "
                                r"last_error=gen=1;reason=no-requeue"
                                r"( \S+)*", line), line
            assert "stopping for migration" not in text, text
            assert not restored(text), text
            assert not [f for f in os.listdir(job_dir(c, job))
                        if f.endswith(".img")]
            return
        stops = re.findall(STOP_RE, text, re.M)
        assert sorted(int(r) for r, _ in stops) == [0, 1, 2, 3], text
        assert len({i for _, i in stops}) == 1, stops
        got = restored(text)
        assert sorted(got) == [0, 1, 2, 3], text
        assert {i for _, i in got.values()} == {int(stops[0][1])}, got
        targets = {n for n, _ in got.values()}
        assert len(targets) == 2 and not targets & set(step_nodes), got
        # Ranks of one node stay together on one target node.
        for a in range(4):
            for b in range(4):
                if first[a] == first[b]:
                    assert got[a][0] == got[b][0], got
        m = re.fullmatch(r"mode=auto gen=1 moves=1 last_move=ranks=0,1,2,3;"
                         r"from=(\S+)\+(\S+);to=(\S+)\+(\S+);reason=drain",
                         line)
        assert m, line
        assert sorted(m.group(1, 2)) == step_nodes, line
        assert set(m.group(3, 4)) == targets, line
        assert good_gens(c, job) == [1]
    finally:
        resume(c, step_nodes)
        c.run(f"scancel {job}", user="root", timeout=30)


@pytest.fixture(scope="module")
def netns_cluster(cluster, request):
    """A cluster in network-namespace mode (up.sh --netns: one namespace,
    address and veth per node): the session's own if it runs in that mode,
    else a second one for this module (~1 s to start), stopped after; its
    directory is removed unless a test failed."""
    yield from cl.module_cluster(cluster, request, "netns", ["--netns"],
                                 "SMIG_NETNS")


def test_fault_partition(netns_cluster, needs_plugins, reference):
    """One node of the step is cut off the network (its veth down, network
    namespace mode) while the step captures periodically: the capture that
    cannot hear from that node's agent is abandoned at capture-timeout
    (SystemComment: reason=capture-timeout naming the cut node's ranks),
    nobody moves or stops; once the link is back (before SlurmdTimeout) the
    job completes on its nodes with the checksum of a run without faults,
    and the manifest never names the abandoned generation while every
    generation it names has all four images."""
    c = netns_cluster
    name = "fault_partition"
    script = write_script(c, name,
        "srun --mpi=pmix --migrate=every=1s,capture-timeout=3s -N2 -n4 "
        f"{heat_path(c)} {HEAT_ARGS}\n"
        "echo srun_exit=$?\n")
    job, out, text = submit_started(c, name, script, "-N2 --ntasks-per-node=2", 4)
    veth = None
    try:
        first = {r: n for r, n, _, _ in starts(text)}
        assert sorted(first) == [0, 1, 2, 3], text
        victim = first[3]
        cut = sorted(r for r, n in first.items() if n == victim)
        before = cl.repeat_until(lambda: good_gens(c, job), bool, timeout=60)
        assert before, f"no good generation before the cut:\n{read(out)}"
        veth = f"smv{c.port_base}n{c.nodes.index(victim) + 1}"
        r = c.run(f"ip link set {veth} down", user="root", timeout=30)
        assert r.rc == 0, str(r)
        line = cl.repeat_until(lambda: comment(c, job),
                               lambda s: "last_error=" in s, timeout=30)
        r = c.run(f"ip link set {veth} up", user="root", timeout=30)
        assert r.rc == 0, str(r)
        veth = None
        m = re.search(r"last_error=gen=(\d+);reason=capture-timeout;"
                      r"ranks=(\S+?)(?: |$)", line)
        assert m, f"SystemComment={line!r}"
        failed = int(m.group(1))
        named = {int(x) for x in m.group(2).split(",")}
        assert set(cut) <= named, f"ranks of {victim} not named: {line!r}"

        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED", f"job {job} ended {state}:\n{text}"
        assert "srun_exit=0" in text, text
        checksum_of(text, reference, "the job")
        assert "stopping for migration" not in text, text
        assert all(k == "start" for _, _, k, _ in starts(text)), text
        gens = good_gens(c, job)
        assert failed not in gens and gens[-1] >= before[-1], \
            f"manifest {gens} (before the cut {before}, failed {failed})"
        for g in gens:
            for rank in range(4):
                assert os.path.exists(os.path.join(
                    job_dir(c, job), f"rank{rank}.g{g}.img")), (rank, g)
    finally:
        if veth:
            c.run(f"ip link set {veth} up", user="root", timeout=30)
        c.run(f"scancel {job}", user="root", timeout=30)
