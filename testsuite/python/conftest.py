# SPDX-License-Identifier: GPL-2.0-or-later
"""conftest.py - the session's local Slurm cluster, shared by all tests

Environment (SMIG_PYTEST_*, not the SMIG_* of a cluster's env file, so that
a shell that sourced one can still run the tests):
  SMIG_BUILD_DIR            build directory with the SPANK plugin in .libs,
                            smigd and the examples (default: <repo>/build)
  SMIG_PYTEST_CLUSTER_DIR   cluster directory (default: a new /tmp/smig-pytest-*,
                            removed when all tests pass)
  SMIG_PYTEST_PORT_BASE     port base of the cluster (default: a free one)
  SMIG_PYTEST_NODES         number of nodes (default 4)
  SMIG_PYTEST_NETNS=1       one network namespace per node (up.sh --netns)
  SMIG_NO_PLUGINS=1         run the cluster without the plugins (plugin tests skip)
  SMIG_PYTEST_RETRIES       file the session's launch retries are written to
                            (default: <build dir>/pytest-retries.txt)
"""

import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import cluster as cl  # noqa: E402


def pytest_configure(config):
    """SIGTERM (a CI timeout, kill) ends the session like Ctrl-C does, so that
    the cluster fixture still stops the cluster."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)


def pytest_itemcollected(item):
    """A test without a docstring is a bug: say what it verifies."""
    if not (item.obj.__doc__ or "").strip():
        raise pytest.UsageError(f"{item.nodeid}: test has no docstring")


EXPECTED_SKIPS = os.path.join(os.path.dirname(__file__), "expected-skips")
# Skips of this session: [(test id, reason, expected?)], and the session's
# cluster (for the host facts of expected-skips).
SKIPS = []
SESSION = {}


def read_expected_skips(path=EXPECTED_SKIPS):
    """[(condition, test glob, reason text)] of the expected-skips file."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) != 3 or parts[0] not in HOST_FACTS:
                raise pytest.UsageError(f"{path}:{n}: not CONDITION TEST REASON "
                                        f"with a CONDITION of {sorted(HOST_FACTS)}: {line}")
            out.append(tuple(parts))
    return out


def tmpfs_mount_fails():
    """True if root cannot mount a tmpfs here (tried in a temporary dir)."""
    d = tempfile.mkdtemp(prefix="smig-tmpfs-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "smig-probe", d],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            subprocess.run(["umount", d])
        return r.returncode != 0
    finally:
        os.rmdir(d)


def cluster_env(name):
    c = SESSION.get("cluster")
    return c.env.get(name, "") if c else ""


HOST_FACTS = {
    "no-plugins": lambda: os.environ.get("SMIG_NO_PLUGINS") == "1",
    "no-cgroup": lambda: not cluster_env("SMIG_CGROUP"),
    "no-cpu-cgroup": lambda: not cluster_env("SMIG_CGROUP_CPU"),
    "no-tmpfs-mount": tmpfs_mount_fails,
}


def skip_expected(nodeid, reason, expected):
    """The expected-skips line (condition) that allows this skip, or None."""
    test = nodeid.split("/")[-1]
    for cond, glob, text in expected:
        if (fnmatch.fnmatch(test, glob) and text in reason and
                HOST_FACTS[cond]()):
            return cond
    return None


def pytest_runtest_logreport(report):
    """Collect every skip with its reason (setup or call)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        SKIPS.append([report.nodeid, str(report.longrepr[2]), None])


def pytest_sessionfinish(session, exitstatus):
    """A skip not listed in expected-skips for a fact of this host fails the
    session (exit status 1)."""
    expected = read_expected_skips()
    for s in SKIPS:
        s[2] = skip_expected(s[0], s[1], expected)
    if any(s[2] is None for s in SKIPS) and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    """Every skip with its reason, expected (the expected-skips condition)
    or not; then how many launches ran again (Open MPI's start-up failures only, see
    cl.retry_launch) and where, with their evidence; also written to
    $SMIG_PYTEST_RETRIES."""
    tr = terminalreporter
    tr.section("skips (testsuite/python/expected-skips)")
    tr.write_line(f"skipped: {len(SKIPS)}, not expected on this host: "
                  f"{sum(1 for s in SKIPS if s[2] is None)}")
    for nodeid, reason, cond in SKIPS:
        tr.write_line(f"  {'expected (' + cond + ')' if cond else 'NOT EXPECTED'}: "
                      f"{nodeid}: {reason}")
    lines = [f"launch retries: {len(cl.RETRIES)}"]
    for r in cl.RETRIES:
        lines.append(f"  {r['where']}: {r['what']} attempt {r['attempt']}, "
                     "evidence:")
        lines += ["    " + l for l in r["evidence"].splitlines()]
    tr.section("cleaned after tests (jobs or node states they left)")
    tr.write_line(f"tests cleaned after: {len(CLEANED)}")
    for nodeid, what in CLEANED:
        tr.write_line(f"  {nodeid}: {what}")
    tr.section("launch retries (Open MPI start-up failures)")
    for line in lines:
        tr.write_line(line)
    path = os.environ.get("SMIG_PYTEST_RETRIES",
                          os.path.join(build_dir(), "pytest-retries.txt"))
    try:
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    except OSError as e:
        tr.write_line(f"cannot write {path}: {e}")


def build_dir():
    return os.path.abspath(os.environ.get("SMIG_BUILD_DIR",
                                          os.path.join(cl.REPO, "build")))


def up_script_args(directory, port_base, extra=()):
    args = [os.path.join(cl.CLUSTER_SCRIPTS, "up.sh"), "--dir", directory,
            "--port-base", str(port_base), "--build", build_dir()]
    if os.environ.get("SMIG_NO_PLUGINS") == "1":
        args.append("--no-plugins")
    # The balancer is smigd, beside slurmctld (up.sh starts it): the
    # slurmctld plugin that SMIG_BALANCER=plugin chose is gone. (A shell
    # that sourced a cluster's env file has SMIG_BALANCER=smigd or none.)
    if os.environ.get("SMIG_BALANCER") == "plugin":
        raise pytest.UsageError("SMIG_BALANCER=plugin: the slurmctld plugin "
                                "is gone, the balancer is smigd; unset it")
    return args + list(extra)


@pytest.fixture(scope="session")
def cluster(request):
    """Start the local cluster for the session (testsuite/cluster/up.sh) and
    stop it at the end, also when tests fail or the run is interrupted."""
    if os.geteuid() != 0:
        pytest.exit("the tests start Slurm daemons: run them as root", 2)
    directory = os.environ.get("SMIG_PYTEST_CLUSTER_DIR")
    keep = bool(directory)
    if directory:
        os.makedirs(directory, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="smig-pytest-")
    os.chmod(directory, 0o755)  # the test user runs jobs in it
    base = int(os.environ.get("SMIG_PYTEST_PORT_BASE") or cl.pick_port_base())
    extra = ["--nodes", os.environ.get("SMIG_PYTEST_NODES", "4")]
    if os.environ.get("SMIG_PYTEST_NETNS") == "1":
        extra.append("--netns")
    up = subprocess.run(up_script_args(directory, base, extra), text=True,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        timeout=180)
    try:
        if up.returncode != 0:
            pytest.exit(f"up.sh failed (exit {up.returncode}):\n{up.stdout}", 3)
        c = cl.Cluster(directory, build_dir())
        SESSION["cluster"] = c
        yield c
    finally:
        down = subprocess.run([os.path.join(cl.CLUSTER_SCRIPTS, "down.sh"),
                               "--dir", directory], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=180)
        if down.returncode != 0:
            print(f"down.sh failed (exit {down.returncode}):\n{down.stdout}")
        if request.session.testsfailed or down.returncode != 0 or keep:
            print(f"\ncluster directory kept for reading: {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


# Tests after which jobs or node states were left and cleaned up, for the
# session summary: [(test id, what was cleaned)].
CLEANED = []
# Daemon pid files of the cluster, without the ones whose daemons tests stop
# and start themselves (they restart them before they end).
DAEMON_PIDFILES = ("slurmctld.pid", "smigd.pid")
LOG_TAIL = 120


def log_sizes(c):
    """{log file: size} of the cluster's daemon logs now."""
    sizes = {}
    logdir = os.path.join(c.dir, "log")
    for name in sorted(os.listdir(logdir)):
        if name.endswith(".log"):
            sizes[name] = os.path.getsize(os.path.join(logdir, name))
    return sizes


def log_since(c, name, offset):
    """Lines of log NAME written after OFFSET (the last LOG_TAIL of them)."""
    try:
        with open(os.path.join(c.dir, "log", name), "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError as e:
        return [f"({name}: {e})"]
    if len(lines) > LOG_TAIL:
        lines = [f"... {len(lines) - LOG_TAIL} earlier lines in {name}"] + \
            lines[-LOG_TAIL:]
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the cluster carries what the daemons logged
    while it ran (smigd and slurmctld whole, the slurmds' errors), so that a
    failure in CI can be read without the cluster directory."""
    outcome = yield
    report = outcome.get_result()
    sizes = item.stash.get(LOG_SIZES, None) if hasattr(item, "stash") else None
    c = SESSION.get("cluster")
    if not (report.failed and sizes is not None and c):
        return
    for name in sorted(log_sizes(c)):
        lines = log_since(c, name, sizes.get(name, 0))
        if name.startswith("slurmd."):
            lines = [l for l in lines if "error" in l or "migrate" in l]
        if lines:
            report.sections.append((f"cluster log {name} during {call.when}",
                                    "\n".join(lines)))


LOG_SIZES = pytest.StashKey[dict]()


def cluster_jobs(c):
    """[(job id, state)] of every job in the queue."""
    r = c.run("squeue -h -o '%i %T'", user="root", timeout=30)
    if r.rc != 0:
        return [("?", f"squeue failed: {r}")]
    return [tuple(l.split()[:2]) for l in r.stdout.splitlines() if l.strip()]


# Node states a test leaves that the next test must not find.
BAD_NODE_WORDS = ("DRAIN", "DOWN", "FAIL", "NOT_RESPONDING", "COMPLETING")


def cluster_dirt(c, kept):
    """What a test left behind: ([(job id, state)] of jobs not in KEPT,
    [(node, state)] of nodes in a BAD_NODE_WORDS state, or not IDLE when
    no job of KEPT runs any more)."""
    jobs = cluster_jobs(c)
    kept_running = any(j in kept for j, _ in jobs)
    r = c.run("scontrol show nodes", user="root", timeout=30)
    nodes = []
    for rec in (cl.parse_scontrol(r.stdout) if r.rc == 0 else []):
        if "NodeName" not in rec:
            continue  # not a node record (Slurm 24.11's listing has one)
        state = rec.get("State", "")
        if any(w in state for w in BAD_NODE_WORDS) or \
                (state != "IDLE" and not kept_running):
            nodes.append((rec.get("NodeName", "?"), state))
    if r.rc != 0:
        nodes.append(("?", f"scontrol failed: {r}"))
    return [(j, st) for j, st in jobs if j not in kept], nodes


def daemons_dead(c):
    """The cluster's slurmctld and smigd that are not running."""
    dead = []
    for name in DAEMON_PIDFILES:
        if name == "smigd.pid" and not c.plugins:
            continue
        try:
            with open(os.path.join(c.dir, "run", name)) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            dead.append(name[:-len(".pid")])
    return dead


@pytest.fixture(autouse=True)
def cluster_hygiene(request):
    """Each test that uses the cluster leaves it clean: after it, the jobs
    it submitted and left are cancelled (jobs that were there before it,
    those of module fixtures, stay) and nodes it left drained or down are
    resumed, until no node is drained, down, not responding or completing
    (every node IDLE once no earlier job runs). What was cleaned is listed
    in the session summary, so that a failure does not cascade into the
    next tests unseen. A test after which slurmctld or smigd is not
    running, or a node does not come back within 120 s, errors in its
    teardown."""
    if "cluster" not in request.fixturenames:
        yield
        return
    c = request.getfixturevalue("cluster")
    request.node.stash[LOG_SIZES] = log_sizes(c)
    kept = {j for j, _ in cluster_jobs(c)}
    yield
    dead = daemons_dead(c)
    if dead:
        pytest.fail(f"{', '.join(dead)} not running after the test: the "
                    "tests after it cannot run", pytrace=False)
    jobs, nodes = cluster_dirt(c, kept)
    if not jobs and not nodes:
        return
    what = []
    left_nodes = nodes
    if jobs:
        what.append("jobs " + ", ".join(f"{j} ({s})" for j, s in jobs))
        c.run("scancel --full " + " ".join(j for j, _ in jobs if j != "?"),
              user="root", timeout=30)
    deadline = time.monotonic() + 120
    resumed = set()
    while True:
        jobs, nodes = cluster_dirt(c, kept)
        if not jobs and not nodes:
            break
        if time.monotonic() >= deadline:
            pytest.fail(f"the cluster did not become clean within 120 s "
                        f"after the test: jobs {jobs}, nodes {nodes}",
                        pytrace=False)
        for node, state in nodes:
            if any(w in state for w in ("DRAIN", "DOWN", "FAIL")) and \
                    "NOT_RESPONDING" not in state:
                c.run(f"scontrol update nodename={node} state=resume",
                      user="root", timeout=30)
                resumed.add(f"{node} ({state})")
        time.sleep(1)
    if resumed:
        what.append("nodes resumed " + ", ".join(sorted(resumed)))
    elif left_nodes:
        what.append("waited for nodes " +
                    ", ".join(f"{n} ({s})" for n, s in left_nodes))
    CLEANED.append((request.node.nodeid, "; ".join(what)))


@pytest.fixture(scope="session")
def mpi_hello(cluster):
    """Path of data/mpi_hello.c compiled with mpicc, runnable by the test user."""
    out = os.path.join(cluster.workdir, "mpi_hello")
    cl.compile_mpi(os.path.join(os.path.dirname(__file__), "data", "mpi_hello.c"),
                   out)
    return out


@pytest.fixture
def needs_cgroup(cluster):
    """Skip (loudly, before any job is submitted) when the harness found no
    writable cgroup hierarchy: a node cannot be frozen."""
    if not cluster.env.get("SMIG_CGROUP"):
        pytest.skip("no writable cgroup hierarchy: cannot freeze a node")


@pytest.fixture
def needs_cpu_quota(cluster):
    """Skip (loudly, before any job is submitted) when the harness cannot
    slow a node: no cgroup with a CPU bandwidth limit (cl.cpu_cgroup)."""
    if not cluster.env.get("SMIG_CGROUP_CPU"):
        pytest.skip("no cgroup with a cpu controller (v2 cpu.max or v1 "
                    "cpu.cfs_quota_us): cannot slow a node")


@pytest.fixture
def needs_plugins(cluster):
    """Skip (loudly) when the session runs without the plugins."""
    if not cluster.plugins:
        pytest.skip("SMIG_NO_PLUGINS=1: the cluster runs without the plugins")
