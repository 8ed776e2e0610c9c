# SPDX-License-Identifier: GPL-2.0-or-later
"""cluster.py - helpers for tests on the local Slurm cluster of testsuite/cluster

Modelled on Slurm's testsuite/python/lib/atf.py: run_command, submit_job,
wait_for_job_state, get_job_parameter, scontrol parsing; plus an srun
helper for MPI jobs that runs the launch again (never an assertion) only
when Open MPI 4.1's start-up failed, recognised by its own words (see
MPI_FLAKE_PATTERNS); every such retry is logged and listed at the end of
the session.
Every command has a timeout; a command that exceeds it is killed with its
whole process group.
"""

import contextlib
import dataclasses
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

log = logging.getLogger("smig")

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
CLUSTER_SCRIPTS = os.path.join(REPO, "testsuite", "cluster")

DEFAULT_TIMEOUT = 60
# Terminal job states of Slurm 22.05.
TERMINAL_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED",
                   "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}
# Fields of "scontrol show job" printed alone on their line, whose values may
# hold spaces and '=' (our SystemComment does).
WHOLE_LINE_FIELDS = ("SystemComment", "Comment", "AdminComment", "Command",
                     "WorkDir", "StdErr", "StdIn", "StdOut")


@dataclasses.dataclass
class Result:
    """What a command did: exit code (None if it timed out), output, time."""
    command: str
    rc: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    def __str__(self):
        return (f"$ {self.command}\n  rc={self.rc} timed_out={self.timed_out} "
                f"({self.seconds:.1f}s)\n  stdout: {self.stdout.strip()!r}\n"
                f"  stderr: {self.stderr.strip()!r}")


class Cluster:
    """A running test cluster: its directory, environment and test user."""

    def __init__(self, directory, build_dir):
        self.dir = directory
        self.build_dir = build_dir
        self.env = dict(os.environ)
        self.env.update(read_env_file(os.path.join(directory, "env")))
        self.user = self.env["SMIG_TEST_USER"]
        self.port_base = int(self.env["SMIG_PORT_BASE"])
        self.migrate_port = int(self.env["SMIG_MIGRATE_PORT"])
        self.balancer_addr = self.env["SMIG_BALANCER_ADDR"]
        self.nodes = self.env["SMIG_NODE_NAMES"].split()
        self.plugins = self.env.get("SMIG_PLUGINS") == "yes"
        # The balancer: "smigd" (up.sh starts it), "none" without plugins.
        self.balancer = "smigd" if self.plugins else "none"
        # Jobs run here: owned by the test user.
        self.workdir = os.path.join(directory, "work")

    def log_path(self, name):
        """Path of a daemon's log: "slurmctld" or "slurmd.node1"."""
        return os.path.join(self.dir, "log", name + ".log")

    def read_log(self, name):
        """Text of a daemon's log ("" if there is none yet)."""
        try:
            with open(self.log_path(name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def pid_alive(self, pid):
        """True while PID runs (a zombie or a reused pid of another program
        does not count)."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            return False
        return state not in ("Z", "X") and comm == "slurmctld"

    def restart_slurmctld(self, timeout=60):
        """Stop slurmctld by its pid (SIGTERM: it saves its state; SIGKILL
        after 20 s), start it again as up.sh
        does (slurmctld -D -i -f slurm.conf in its own session, same log and
        pid file) and wait until it answers and no node is marked
        non-responding. Returns (seconds it was away, new pid); the session
        cluster stays usable for the tests after this one."""
        pidfile = os.path.join(self.dir, "run", "slurmctld.pid")
        with open(pidfile) as f:
            pid = int(f.read().strip())
        start = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        if repeat_until(lambda: self.pid_alive(pid), lambda a: not a,
                        timeout=20, poll_interval=0.1):
            os.kill(pid, signal.SIGKILL)
            assert not repeat_until(lambda: self.pid_alive(pid), lambda a: not a,
                                    timeout=10, poll_interval=0.1), \
                f"slurmctld {pid} survived SIGKILL"
        conf = os.path.join(self.dir, "slurm.conf")
        out = os.path.join(self.dir, "log", "slurmctld.out")
        r = self.run(f"setsid slurmctld -D -i -f {shlex.quote(conf)} "
                     f">> {shlex.quote(out)} 2>&1 < /dev/null & echo $!",
                     user="root", timeout=30)
        assert r.rc == 0 and r.stdout.strip().isdigit(), f"slurmctld start:\n{r}"
        new = int(r.stdout.strip())
        with open(pidfile, "w") as f:
            f.write(f"{new}\n")
        up = repeat_until(lambda: self.run("scontrol ping", user="root", timeout=10),
                          lambda r: r.rc == 0 and "is UP" in r.stdout,
                          timeout=timeout, poll_interval=0.2)
        away = time.monotonic() - start
        assert up.rc == 0 and "is UP" in up.stdout, f"slurmctld not back:\n{up}"
        nodes = repeat_until(
            lambda: self.run("sinfo -h -N -o '%N %t'", user="root", timeout=10),
            lambda r: r.rc == 0 and r.stdout.strip() and "*" not in r.stdout,
            timeout=timeout, poll_interval=0.3)
        assert nodes.rc == 0 and "*" not in nodes.stdout, \
            f"nodes not back after the slurmctld restart:\n{nodes}"
        return away, new

    def smigd_pid(self):
        """Pid of the cluster's smigd (started by up.sh), None if it has
        none running."""
        try:
            with open(os.path.join(self.dir, "run", "smigd.pid")) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
            return None
        return pid if comm == "smigd" and state not in ("Z", "X") else None

    def start_smigd(self, timeout=30):
        """Start smigd as up.sh does (BUILD/smigd -D, as root, its
        own session, same log and pid file) and wait until it listens again.
        Returns its pid."""
        assert self.smigd_pid() is None, "smigd runs already"
        logf = self.log_path("smigd")
        listening = self.read_log("smigd").count("balancer listening")
        smigd = os.path.join(self.build_dir, "smigd")
        pidfile = os.path.join(self.dir, "run", "smigd.pid")
        out = os.path.join(self.dir, "log", "smigd.out")
        r = self.run(f"setsid {shlex.quote(smigd)} -D -v -L {shlex.quote(logf)} "
                     f"-p {shlex.quote(pidfile)} >> {shlex.quote(out)} 2>&1 "
                     f"< /dev/null & echo $!", user="root", timeout=30)
        assert r.rc == 0 and r.stdout.strip().isdigit(), f"smigd start:\n{r}"
        pid = int(r.stdout.strip())
        up = repeat_until(lambda: self.read_log("smigd").count("balancer listening"),
                          lambda n: n > listening, timeout=timeout, poll_interval=0.2)
        assert up > listening, \
            f"smigd not listening after {timeout}s:\n{self.read_log('smigd')[-2000:]}"
        return pid

    @property
    def balancer_log(self):
        """Name of the log the balancer writes to (read_log()): smigd's."""
        return "smigd"

    def balancer_line_re(self, text, error=False):
        """Regex of a line of smigd's log (read_log(balancer_log)) whose own
        words start with TEXT (a regex): "smigd: LEVEL: TEXT". ERROR: error
        lines only."""
        return r"smigd: " + ("error" if error else r"\w+") + ": " + text

    def balancer_settings(self):
        """The balancer's effective settings as {MigrateKey: value}, as
        "smigd -C" prints them; None if it prints none."""
        smigd = os.path.join(self.build_dir, "smigd")
        r = self.run(f"{shlex.quote(smigd)} -C", user="root", timeout=30)
        assert r.rc == 0, f"smigd -C failed:\n{r}"
        pairs = {}
        for line in r.stdout.splitlines():
            key, sep, value = line.partition(" = ")
            if sep and not line.startswith("#"):
                pairs[key.strip()] = value.strip()
        return pairs or None

    def restart_balancer(self, timeout=60):
        """Stop smigd by its pid with SIGTERM (SIGKILL after 20 s) and start
        it again. Returns (seconds the balancer was away, new pid)."""
        pid = self.smigd_pid()
        assert pid, "smigd is not running"
        start = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        if repeat_until(self.smigd_pid, lambda p: p is None, timeout=20,
                        poll_interval=0.1):
            os.kill(pid, signal.SIGKILL)
            assert not repeat_until(self.smigd_pid, lambda p: p is None,
                                    timeout=10, poll_interval=0.1), \
                f"smigd {pid} survived SIGKILL"
        new = self.start_smigd(timeout=timeout)
        return time.monotonic() - start, new

    def run(self, command, user=None, **kwargs):
        """run_command() with the cluster's environment, as USER (default:
        the test user; user="root" runs as root)."""
        user = self.user if user is None else user
        kwargs.setdefault("cwd", self.workdir)
        return run_command(command, env=self.env, user=user, **kwargs)


def read_env_file(path):
    """Variables of a file of "export K=V" lines written by up.sh."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("export "):
                continue
            key, _, value = line[len("export "):].partition("=")
            # up.sh writes values plain or in double quotes, never escapes.
            env[key] = value[1:-1] if value[:1] == '"' else value
    return env


def run_command(command, env=None, user=None, timeout=DEFAULT_TIMEOUT, cwd=None,
                input=None):
    """Run a shell command, as USER if given (runuser), within TIMEOUT seconds.

    On timeout the whole process group is killed and the result has
    timed_out=True and rc=None. Never raises for a failing command: callers
    assert on the Result.
    """
    argv = ["bash", "-c", command]
    if user and user != "root":
        argv = ["runuser", "-u", user, "--"] + argv
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, text=True,
                            stdin=subprocess.PIPE if input is not None
                            else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    timed_out = False
    try:
        stdout, stderr = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc.pid, signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): leave nothing running behind.
        kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    result = Result(command=command, rc=None if timed_out else proc.returncode,
                    stdout=stdout, stderr=stderr,
                    seconds=time.monotonic() - start, timed_out=timed_out)
    log.debug("%s", result)
    return result


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def repeat_until(func, condition, timeout=DEFAULT_TIMEOUT, poll_interval=0.5):
    """Call func() until condition(value) holds or TIMEOUT s pass; return the
    last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = func()
        if condition(value) or time.monotonic() >= deadline:
            return value
        time.sleep(poll_interval)


# --- scontrol

def parse_scontrol(text):
    """Records of "scontrol show job|node|..." (multi-line format) as a list
    of dicts. Fields of WHOLE_LINE_FIELDS keep the rest of their line."""
    records = []
    current = None
    for line in text.splitlines():
        if not line.strip():
            current = None
            continue
        if current is None:
            current = {}
            records.append(current)
        stripped = line.strip()
        key, sep, rest = stripped.partition("=")
        if sep and key in WHOLE_LINE_FIELDS:
            current[key] = rest.rstrip()
            continue
        for key, value in re.findall(r"(\S+?)=(\S*)", stripped):
            current[key] = value
    return records


def get_job(cluster, job_id):
    """The job's fields as a dict; {} if slurmctld does not know the job."""
    r = cluster.run(f"scontrol show job {int(job_id)}", user="root", timeout=30)
    if r.rc != 0:
        return {}
    records = parse_scontrol(r.stdout)
    return records[0] if records else {}


def get_job_parameter(cluster, job_id, name, default=None):
    """One field of "scontrol show job", DEFAULT if absent."""
    return get_job(cluster, job_id).get(name, default)


def admin_comment_segment(comment):
    """The state line in smigd's "smig[LINE]" segment of an AdminComment
    (at the start or after a blank; backslash escapes), None if absent."""
    m = re.search(r"(?:^|\s)smig\[((?:\\.|[^\\\]])*)", comment or "")
    return re.sub(r"\\(.)", r"\1", m.group(1)) if m else None


def migration_state(cluster, job_id, default=""):
    """The job's one-line migration state as people see it in "scontrol
    show job": the smig[...] segment of AdminComment, which smigd writes;
    DEFAULT if none."""
    job = get_job(cluster, job_id)
    line = admin_comment_segment(job.get("AdminComment"))
    return default if line is None else line


def wait_for_job_state(cluster, job_id, states, timeout=DEFAULT_TIMEOUT):
    """Poll until the job's JobState is one of STATES (a str or a set); a
    terminal state that is not wanted ends the wait early. Return the
    last JobState seen (None if the job is unknown)."""
    wanted = {states} if isinstance(states, str) else set(states)

    def state():
        return get_job_parameter(cluster, job_id, "JobState")

    return repeat_until(state, lambda s: s in wanted or s in TERMINAL_STATES,
                        timeout=timeout)


def submit_job(cluster, sbatch_args, user=None, timeout=30):
    """sbatch --parsable ARGS as the test user; return the job id (int).
    Raises AssertionError with the command's output if sbatch fails."""
    r = cluster.run(f"sbatch --parsable {sbatch_args}", user=user, timeout=timeout)
    assert r.rc == 0 and r.stdout.strip(), f"sbatch failed:\n{r}"
    return int(r.stdout.strip().split(";")[0])


def show_config(cluster):
    """Text of "scontrol show config"."""
    r = cluster.run("scontrol show config", user="root", timeout=30)
    assert r.rc == 0, f"scontrol show config failed:\n{r}"
    return r.stdout


# --- Open MPI's start-up failures: the only launches a test runs again
#
# A launch is run again only when it failed before all its ranks started
# and Open MPI or its PMIx client said, in its own words, that its start-up
# failed: the texts below are Open MPI 4.1's and PMIx 4's (help-mpi-runtime,
# ompi_mpi_errors_are_fatal, ORTE_ERROR_LOG, pmix_output, btl/tcp), never
# ours; a crash report is Open MPI's or, with Open MPI 5, UCX's. A timeout says nothing, so it is not retried. A crash counts only
# where the caller allows it (never in the tests that prove ordinary jobs
# unaffected) and only when Open MPI's own signal handler shows it crashed
# in Open MPI's code. Any error of ours (libsmig's "smig: " lines, the
# SPANK plugin's and the agent's "migrate: " lines, smigd's
# "smigd: error: " lines, in the job's output or the daemons' logs),
# or any sign that a migration started, rules a retry out.
MPI_FLAKE_PATTERNS = [
    r"It looks like MPI_INIT failed for some reason",
    r"MPI_INIT has failed because at least one MPI process is unreachable",
    r"\*\*\* An error occurred in MPI_Init\b",
    r"Local abort before MPI_INIT completed",
    r"ORTE_ERROR_LOG: .+ in file \S+ at line \d+",
    r"PMIX ERROR: .+ in file \S+ at line \d+",
    r"\[btl_tcp_\w+\.c:\d+:mca_btl_tcp_\w+\] .*",
]
# Open MPI's signal handler (opal/util/stacktrace.c): "[host:pid] [ 1]
# /path/mca_btl_tcp.so(...)"; frame 0 is the signal trampoline in libc.
OMPI_CRASH_RE = r"\*\*\* Process received signal \*\*\*"
# Open MPI 5 loads UCX (libucs) even with pml ob1, and UCX's signal handler
# reports instead: "[host:pid :0:tid] Caught signal 11 (...)", "==== backtrace
# (tid: N) ====", then " 0  /path/libucs.so.0(...) [addr]": its own frames
# and libc's signal trampoline first. Seen on Debian 13 (Open MPI 5.0.7): a
# rank crashed in MPI_Init, in mca_pml_ob1_recv_frag_callback_match.
UCX_CRASH_RE = r"^\[[^\]]+\] Caught signal \d+ \(.*\)$"
UCX_FRAME_RE = r"^ *(\d+)  (/\S+)"
# Any crash: Open MPI's handler, or srun's word on a task killed by a signal.
CRASH_RE = (OMPI_CRASH_RE + "|" + UCX_CRASH_RE +
            r"|^.*\btask \d+: (?:Segmentation fault|Bus error|"
            r"Illegal instruction|Floating point exception|Aborted).*$|"
            r"\(core dumped\)")
OMPI_FRAME_RE = r"^\[[^\]]+\] \[ ?(\d+)\] (\S+)"
OMPI_LIB_RE = r"/(?:libmpi|libopen-pal|libopen-rte|libpmix|mca_\w+)\.so[.\d]*\("
# Words of ours: any such line in a failed launch's output means our code
# had something to say, and the failure is ours to explain.
OURS_RE = r"^.*(?:\bsmig: |\bmigrate: |\bsmigd: ).*$"
# A migration started: a restore, a relaunch, a generation or move counted.
MIGRATION_RE = (r"^.*(?:\brestored iter\b|relaunching step|restore from "
                r"generation|\bgen=[1-9]|\bmoves=[1-9]).*$")
# Daemon log lines of ours that are errors.
OURS_LOG_ERROR_RE = r"^.*(?:error: migrate: |smigd: error: ).*$"

# Every launch run again in this session: {"where", "attempt", "evidence"}.
RETRIES = []


def daemon_logs(cluster):
    """Names of the cluster's daemon logs (read_log names)."""
    names = ["slurmctld"] + [f"slurmd.{n}" for n in cluster.nodes]
    if cluster.plugins:
        names.append("smigd")
    return [n for n in names if os.path.exists(cluster.log_path(n))]


def log_marks(cluster):
    """Sizes of the daemon logs now: what a launch adds comes after."""
    return {n: os.path.getsize(cluster.log_path(n)) for n in daemon_logs(cluster)}


def log_since(cluster, marks):
    """Text the daemon logs gained since MARKS."""
    text = []
    for name in daemon_logs(cluster):
        with open(cluster.log_path(name), "rb") as f:
            f.seek(marks.get(name, 0))
            text.append(f.read().decode(errors="replace"))
    return "".join(text)


def ompi_crash_evidence(text):
    """The lines of Open MPI's crash report if it shows a crash in Open
    MPI's own code (its first frame past the signal trampoline is in one of
    its libraries) and no frame of ours; else None."""
    if re.search(UCX_CRASH_RE, text, re.M):
        return ucx_crash_evidence(text)
    if not re.search(OMPI_CRASH_RE, text):
        return None
    frames = re.findall(OMPI_FRAME_RE, text, re.M)
    if any(re.search(r"smig|spank_migrate|slurm-migrate", path)
           for _, path in frames):
        return None
    first = [path for n, path in frames if n == "1"]
    if not first or not all(re.search(OMPI_LIB_RE, p) for p in first):
        return None
    lines = [l for l in text.splitlines()
             if re.search(r"Process received signal|Signal: |\[ ?[01]\] ", l)]
    return "\n".join(lines[:8])


def ucx_crash_evidence(text):
    """As ompi_crash_evidence, for UCX's crash report (UCX_CRASH_RE): the
    first frame past UCX's handler and libc's signal trampoline is in Open
    MPI's libraries, and no frame is ours; else None."""
    frames = [path for _, path in re.findall(UCX_FRAME_RE, text, re.M)]
    if any(re.search(r"smig|spank_migrate|slurm-migrate", p) for p in frames):
        return None
    past = [p for p in frames if not re.search(r"/lib(?:ucs|c)\.so", p)]
    if not past or not re.search(OMPI_LIB_RE, past[0]):
        return None
    lines = [l for l in text.splitlines()
             if re.search(UCX_CRASH_RE, l) or re.search(UCX_FRAME_RE, l)]
    return "\n".join(lines[:8])


# Open MPI 4.1's TCP BTL calling a NULL handler in MPI_Init
# (doc/faults.md, "A rank dies with SIGSEGV at NULL in MPI_Init"): the
# report of one process is exactly these lines, the only frame the signal
# trampoline in libc (the jump to address 0 leaves nothing to unwind).
OMPI_NULL_CALL_REPORT = [
    r"\*\*\* Process received signal \*\*\*",
    r"Signal: Segmentation fault \(11\)",
    r"Signal code: Address not mapped \(1\)",
    r"Failing at address: \(nil\)",
    r"\[ 0\] /\S*/libc\.so\.6\(\+0x[0-9a-f]+\)\[0x[0-9a-f]+\]",
    r"\*\*\* End of error message \*\*\*",
]
# srun's word on the crashed task.
SRUN_SEGV_RE = r"^srun: error: \S+: task (\d+): Segmentation fault(?: \(core dumped\))?$"


def ompi_null_call_evidence(text):
    """The lines of Open MPI's crash report if TEXT shows exactly the
    start-up crash of doc/faults.md: one process's report is
    OMPI_NULL_CALL_REPORT line for line (SIGSEGV at address 0, no frame past
    the trampoline), srun names one task killed by SIGSEGV, and no line
    names that rank (it died before it printed its start line); else
    None."""
    reports = {}
    for m in re.finditer(r"^\[([^\]\s]+:\d+)\] (.*)$", text, re.M):
        reports.setdefault(m.group(1), []).append(m.group(2))
    if len(reports) != 1:
        return None
    (who, lines), = reports.items()
    if len(lines) != len(OMPI_NULL_CALL_REPORT) or not all(
            re.fullmatch(p, l) for p, l in zip(OMPI_NULL_CALL_REPORT, lines)):
        return None
    tasks = re.findall(SRUN_SEGV_RE, text, re.M)
    if len(tasks) != 1 or re.search(rf"\brank {tasks[0]}\b", text):
        return None
    return "\n".join([f"[{who}] {l}" for l in lines] +
                      [f"task {tasks[0]} died before its start line "
                       "(Open MPI btl/tcp NULL call in MPI_Init, "
                       "doc/faults.md)"])


def mpi_start_failure(result, started_re, ranks=1, crash_ok=True,
                      daemon_log=""):
    """Why RESULT (a failed launch; stdout and stderr both searched) is
    Open MPI's start-up failure and may run again, as (evidence, None); or
    (None, why not). DAEMON_LOG: what the daemons logged meanwhile."""
    text = f"{result.stdout}\n{result.stderr}"
    if result.rc == 0 and not result.timed_out:
        return None, "the launch succeeded"
    if started_re and len(re.findall(started_re, result.stdout, re.M)) >= ranks:
        return None, f"all {ranks} ranks started"
    m = re.search(MIGRATION_RE, text, re.M)
    if m:
        return None, f"a migration started: {m.group(0)!r}"
    m = (re.search(OURS_RE, text, re.M) or
         re.search(OURS_LOG_ERROR_RE, daemon_log, re.M))
    if m:
        return None, f"a piece of ours said: {m.group(0)!r}"
    if result.timed_out:
        return None, "it hung (a timeout is no signature)"
    m = re.search(CRASH_RE, text, re.M)
    if m:
        if not crash_ok:
            return None, f"a crash (never run again in this test): {m.group(0)!r}"
        evidence = ompi_crash_evidence(text) or ompi_null_call_evidence(text)
        if evidence:
            return evidence, None
        return None, f"a crash outside Open MPI's code, or of ours: {m.group(0)!r}"
    for p in MPI_FLAKE_PATTERNS:
        m = re.search(p, text, re.M)
        if m:
            return m.group(0), None
    return None, "no Open MPI start-up failure text"


def retry_launch(cluster, result, started_re, ranks, attempt, attempts,
                 marks=None, crash_ok=True, what=""):
    """True if the failed launch RESULT (attempt ATTEMPT of ATTEMPTS) is to
    run again: Open MPI's start-up failure (mpi_start_failure; MARKS from
    log_marks() before the launch, to read what the daemons logged), and
    attempts left. Each retry is logged with its evidence and counted in
    RETRIES (the session summary lists them)."""
    daemon_log = log_since(cluster, marks) if marks is not None else ""
    evidence, why_not = mpi_start_failure(result, started_re, ranks,
                                          crash_ok, daemon_log)
    where = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
    if evidence is None:
        log.info("%s: launch %s not run again: %s", where, what, why_not)
        return False
    if attempt >= attempts:
        log.warning("%s: Open MPI start-up failure in launch %s, attempt %d "
                    "of %d, no attempt left; evidence:\n%s", where, what,
                    attempt, attempts, evidence)
        return False
    RETRIES.append({"where": where, "attempt": attempt, "what": what,
                    "evidence": evidence})
    log.warning("%s: Open MPI start-up failure in launch %s (attempt %d of "
                "%d), launching again; evidence:\n%s", where, what, attempt,
                attempts, evidence)
    return True


def srun_mpi(cluster, srun_args, started_re, timeout=120, attempts=3, user=None,
             crash_ok=True, mpi="pmix"):
    """Run "srun --mpi=MPI SRUN_ARGS" as the test user (MPI: pmix for Open
    MPI, pmi2 for MPICH, which is never run again: ATTEMPTS is then 1).

    STARTED_RE matches a line each rank prints after MPI_Init; a launch
    that failed before every rank printed it (the ranks counted from
    -n/--ntasks of SRUN_ARGS) is run again, at most ATTEMPTS times in all,
    only if it is Open MPI's start-up failure (retry_launch; CRASH_OK=False:
    not even for a crash in Open MPI's code). Returns the last Result; the
    caller asserts on it.
    """
    command = f"srun --mpi={mpi} {srun_args}"
    if mpi != "pmix":
        attempts = 1
    m = re.search(r"(?:^|\s)(?:-n\s*|--ntasks[= ])(\d+)", srun_args)
    ranks = int(m.group(1)) if m else 1
    for attempt in range(1, attempts + 1):
        marks = log_marks(cluster)
        r = cluster.run(command, user=user, timeout=timeout)
        if not retry_launch(cluster, r, started_re, ranks, attempt, attempts,
                            marks, crash_ok, what=f"'{command}'"):
            return r
    return r


def job_start_retry(cluster, job, text, started, ranks, attempt, attempts,
                    marks=None, crash_ok=True, timed_out=False):
    """retry_launch() for batch job JOB whose output is TEXT (stdout and
    stderr together), STARTED of its RANKS ranks started; its state line
    (migration_state) counts too (a generation or a move means a migration started). The
    caller cancels JOB."""
    if started >= ranks:
        return False
    comment = migration_state(cluster, job) or ""
    result = Result(command=f"job {job}", rc=1, stdout="",
                    stderr=f"{text}\nstate line={comment}",
                    seconds=0, timed_out=timed_out)
    return retry_launch(cluster, result, None, ranks, attempt, attempts,
                        marks, crash_ok, what=f"job {job}")


# --- slowing a node: the CPU bandwidth of its cgroup

def cpu_cgroup(cluster, node):
    """NODE's cgroup with a CPU bandwidth limit (cgroup v2: the harness's
    node group with the cpu controller, cpu.max; v1: the cpu hierarchy's,
    cpu.cfs_quota_us), or None if the harness has none (SMIG_CGROUP_CPU
    empty: see testsuite/cluster/up.sh)."""
    root = cluster.env.get("SMIG_CGROUP_CPU")
    if not root:
        return None
    path = os.path.join(root, node)
    assert os.path.isdir(path), f"{path}: the harness made no cpu cgroup for {node}"
    return path


def set_cpu_quota(cluster, node, quota_us, period_us=100000):
    """Give NODE's cgroup QUOTA_US of CPU time every PERIOD_US (-1: no
    limit): cpu.max on cgroup v2, cpu.cfs_period_us and cpu.cfs_quota_us
    on v1."""
    path = cpu_cgroup(cluster, node)
    assert path, "no cpu cgroup: the test should have skipped (needs_cpu_quota)"
    if os.path.exists(os.path.join(path, "cpu.max")):
        with open(os.path.join(path, "cpu.max"), "w") as f:
            f.write(f"{'max' if quota_us < 0 else quota_us} {period_us}\n")
        return
    with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
        f.write(f"{period_us}\n")
    with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
        f.write(f"{quota_us}\n")


def compile_mpi(source, output):
    """mpicc SOURCE -o OUTPUT; raise AssertionError with the compiler's words."""
    r = run_command(f"mpicc -O2 -o {shlex.quote(output)} {shlex.quote(source)}",
                    timeout=120)
    assert r.rc == 0, f"mpicc failed:\n{r}"
    os.chmod(output, 0o755)


# --- a cluster of a benchmark's own

@contextlib.contextmanager
def bench_cluster(name, build, extra=()):
    """A local cluster of its own for benchmark NAME: up.sh in a new
    directory on free ports (EXTRA: more up.sh arguments), yielded as a
    Cluster; stopped by down.sh (by PID) and removed at the end, also when
    the benchmark fails. Exits with NAME and up.sh's words if it does not
    start."""
    directory = tempfile.mkdtemp(prefix="smig-bench-")
    os.chmod(directory, 0o755)
    up = subprocess.run([os.path.join(CLUSTER_SCRIPTS, "up.sh"), "--dir", directory,
                         "--port-base", str(pick_port_base()), "--build", build,
                         *extra], text=True, capture_output=True)
    try:
        if up.returncode != 0:
            sys.exit(f"{name}: up.sh failed:\n{up.stdout}{up.stderr}")
        yield Cluster(directory, build)
    finally:
        subprocess.run([os.path.join(CLUSTER_SCRIPTS, "down.sh"), "--dir", directory],
                       capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


def module_cluster(cluster, request, what, up_args, env_key):
    """Generator for a module fixture that wants a cluster started with
    UP_ARGS (up.sh arguments beyond the node count): yields the session's
    CLUSTER if its environment has ENV_KEY=yes (it runs in that mode),
    else starts a second one of 4 nodes for the module (~1 s), stopped by
    down.sh after; its directory is removed unless a test failed. WHAT
    names it in messages and in the directory's prefix."""
    if cluster.env.get(env_key) == "yes":
        yield cluster
        return
    import conftest
    directory = tempfile.mkdtemp(prefix=f"smig-pytest-{what}-")
    os.chmod(directory, 0o755)
    up = subprocess.run(conftest.up_script_args(
        directory, pick_port_base(), ["--nodes", "4", *up_args]),
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=180)
    failed = request.session.testsfailed
    try:
        assert up.returncode == 0, \
            f"up.sh {' '.join(up_args)} failed:\n{up.stdout}"
        yield Cluster(directory, conftest.build_dir())
    finally:
        down = subprocess.run([os.path.join(CLUSTER_SCRIPTS, "down.sh"),
                               "--dir", directory], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=180)
        if down.returncode != 0:
            print(f"down.sh failed (exit {down.returncode}):\n{down.stdout}")
        if up.returncode or down.returncode or \
                request.session.testsfailed > failed:
            print(f"\n{what} cluster directory kept for reading: {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


# --- ports

def ports_free(first, count):
    """True if TCP ports FIRST..FIRST+COUNT-1 can all be bound."""
    for port in range(first, first + count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_port_base(count=64, low=20000, high=40000, step=100):
    """A port base with COUNT free ports after it. Bases are spread by the
    process id so that concurrent test sessions rarely even try the same one."""
    n = (high - low) // step
    start = os.getpid() % n
    for i in range(n):
        base = low + ((start + i) % n) * step
        if ports_free(base, count):
            return base
    raise RuntimeError(f"no {count} free TCP ports found between {low} and {high}")
