# SPDX-License-Identifier: GPL-2.0-or-later
"""conftest.py - the session's local Slurm cluster, shared by all tests

Environment (SMIG_PYTEST_*, not the SMIG_* of a cluster's env file, so that
a shell that sourced one can still run the tests):
  SMIG_BUILD_DIR            build directory with the plugins in .libs and
                            the examples (default: <repo>/build)
  SMIG_PYTEST_CLUSTER_DIR   cluster directory (default: a new /tmp/smig-pytest-*,
                            removed when all tests pass)
  SMIG_PYTEST_PORT_BASE     port base of the cluster (default: a free one)
  SMIG_PYTEST_NODES         number of nodes (default 4)
  SMIG_PYTEST_NETNS=1       one network namespace per node (up.sh --netns)
  SMIG_NO_PLUGINS=1         run the cluster without the plugins (plugin tests skip)
  SMIG_BALANCER=smigd       the balancer runs as smigd beside slurmctld (up.sh
                            --smigd) instead of the slurmctld plugin (default
                            SMIG_BALANCER=plugin)
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

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


def build_dir():
    return os.path.abspath(os.environ.get("SMIG_BUILD_DIR",
                                          os.path.join(cl.REPO, "build")))


def up_script_args(directory, port_base, extra=()):
    args = [os.path.join(cl.CLUSTER_SCRIPTS, "up.sh"), "--dir", directory,
            "--port-base", str(port_base), "--build", build_dir()]
    if os.environ.get("SMIG_NO_PLUGINS") == "1":
        args.append("--no-plugins")
    balancer = os.environ.get("SMIG_BALANCER", "plugin")
    if balancer == "smigd":
        args.append("--smigd")
    elif balancer != "plugin":
        raise pytest.UsageError(f"SMIG_BALANCER={balancer}: not plugin or smigd")
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


@pytest.fixture(scope="session")
def mpi_hello(cluster):
    """Path of data/mpi_hello.c compiled with mpicc, runnable by the test user."""
    out = os.path.join(cluster.workdir, "mpi_hello")
    cl.compile_mpi(os.path.join(os.path.dirname(__file__), "data", "mpi_hello.c"),
                   out)
    return out


@pytest.fixture
def needs_plugins(cluster):
    """Skip (loudly) when the session runs without the plugins."""
    if not cluster.plugins:
        pytest.skip("SMIG_NO_PLUGINS=1: the cluster runs without the plugins")


@pytest.fixture
def spare_config(tmp_path_factory):
    """Write the configuration of a second, never started cluster (its own
    directory and ports) and return (directory, port_base); a test starts
    daemons from it by hand."""
    def make(overrides=()):
        directory = str(tmp_path_factory.mktemp("spare"))
        os.chmod(directory, 0o755)
        base = cl.pick_port_base()
        extra = ["--generate-only"]
        for name, path in overrides:
            extra += ["--override", f"{name}={path}"]
        r = subprocess.run(up_script_args(directory, base, extra), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        assert r.returncode == 0, f"up.sh --generate-only failed:\n{r.stdout}"
        return directory, base
    return make
