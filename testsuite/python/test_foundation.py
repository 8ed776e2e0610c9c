# SPDX-License-Identifier: GPL-2.0-or-later
"""test_foundation.py - smigd runs, the SPANK plugin loads, and ordinary jobs
do not notice them"""

import os
import re
import subprocess
import time

import pytest

import cluster as cl

HELLO_RE = r"^hello rank \d+ of \d+ node \S+ sum \d+$"


def job_id_from(stdout):
    m = re.search(r"^JOBID=(\d+)$", stdout, re.M)
    assert m, f"no JOBID line in {stdout!r}"
    return int(m.group(1))


def assert_no_system_comment(c, job_id):
    """The job has no migration state line (cl.migration_state)."""
    job = cl.get_job(c, job_id)
    assert job, f"slurmctld does not know job {job_id}"
    line = cl.migration_state(c, job_id)
    assert line == "", f"job {job_id} has the state line {line!r}"


def test_plugins_loaded(cluster, needs_plugins):
    """smigd runs (its log says where it listens), slurmctld loads no
    slurmctld plugin of ours (no SlurmctldPlugstack), smigd's effective
    settings ("smigd -C") hold our MigratePort, and srun knows the --migrate
    option from spank_migrate.so."""
    want = cluster.balancer_line_re(
        re.escape(f"balancer listening on {cluster.balancer_addr}:"
                  f"{cluster.migrate_port}"))
    name = cluster.balancer_log
    text = cl.repeat_until(lambda: cluster.read_log(name),
                           lambda t: re.search(want, t), timeout=10)
    assert re.search(want, text), \
        f"{cluster.log_path(name)} lacks {want!r}; its end:\n{text[-2000:]}"

    config = cl.show_config(cluster)
    m = re.search(r"^SlurmctldPlugstack\s*=\s*(.*)$", config, re.M)
    assert not m or m.group(1).strip() in ("", "(null)"), \
        f"slurmctld loads a slurmctld plugin beside smigd: {m.group(0)!r}"
    pairs = cluster.balancer_settings()
    assert pairs is not None, "smigd -C lists no settings"
    assert pairs.get("MigratePort") == str(cluster.migrate_port), \
        f"MigratePort in the balancer's settings: {pairs!r}"

    r = cluster.run("srun --help", timeout=30)
    assert r.rc == 0, f"srun --help failed:\n{r}"
    assert re.search(r"^\s+--migrate\b", r.stdout, re.M), \
        f"srun --help does not list --migrate:\n{r.stdout[-1500:]}"


def test_ordinary_job(cluster):
    """srun without --migrate runs as with plain Slurm: hostname and true
    exit 0 with the expected output on the requested nodes, and the job
    carries no SystemComment."""
    r = cluster.run("srun -N4 -n4 bash -c 'echo $SLURMD_NODENAME'", timeout=60)
    assert r.rc == 0, f"srun failed:\n{r}"
    assert sorted(r.stdout.split()) == sorted(cluster.nodes), str(r)

    r = cluster.run("srun -N2 -n2 hostname", timeout=60)
    assert r.rc == 0, f"srun hostname failed:\n{r}"
    hostnames = r.stdout.split()
    assert len(hostnames) == 2, str(r)

    r = cluster.run("srun -n1 true && srun -n1 bash -c 'echo JOBID=$SLURM_JOB_ID'",
                    timeout=60)
    assert r.rc == 0, f"srun true failed:\n{r}"
    assert r.stderr == "", f"unexpected messages from srun:\n{r}"
    assert_no_system_comment(cluster, job_id_from(r.stdout))

    r = cluster.run("srun -n1 false", timeout=60)
    assert r.rc == 1, f"srun false: exit code not passed through:\n{r}"


def test_ordinary_mpi_job(cluster, mpi_hello):
    """An MPI job without --migrate (srun --mpi=pmix -N2 -n4) starts all
    ranks on two nodes, they talk (allreduce), it exits 0, prints nothing
    on stderr, and has no SystemComment. The launch runs again only for
    Open MPI's own start-up failure text, never for a crash (cl.srun_mpi
    crash_ok=False): a crash here may be ours."""
    r = cl.srun_mpi(cluster, f"-N2 -n4 bash -c 'echo JOBID=$SLURM_JOB_ID >&2; "
                    f"exec {mpi_hello}'", started_re=HELLO_RE, timeout=120,
                    crash_ok=False)
    assert r.rc == 0, f"MPI job failed:\n{r}"
    lines = sorted(l for l in r.stdout.splitlines() if l)
    ranks = sorted(int(re.match(r"hello rank (\d+)", l).group(1)) for l in lines)
    assert ranks == [0, 1, 2, 3], str(r)
    assert all(l.endswith("sum 6") and " of 4 " in l for l in lines), str(r)
    nodes = {re.search(r"node (\S+)", l).group(1) for l in lines}
    assert len(nodes) == 2 and nodes <= set(cluster.nodes), str(r)
    ids = set(re.findall(r"^JOBID=(\d+)$", r.stderr, re.M))
    assert len(ids) == 1, str(r)
    rest = re.sub(r"^JOBID=\d+\n", "", r.stderr, flags=re.M)
    assert rest == "", f"unexpected messages on stderr:\n{r}"
    assert_no_system_comment(cluster, int(ids.pop()))


def test_migrate_step_fence_ring(cluster, needs_plugins):
    """A --migrate step's PMIx fences go round a ring (SLURM_PMIX_FENCE=ring
    in the step's environment, set by the agent before mpi/pmix reads it):
    Slurm 22.05's automatic choice makes Open MPI's last barrier in MPI_Init
    no barrier, which crashes Open MPI 4.1 ranks under load (doc/faults.md).
    The user's own choice stands, and steps without --migrate are left as
    Slurm makes them."""
    c = cluster
    show = "bash -c 'echo fence=${SLURM_PMIX_FENCE:-unset}'"
    r = c.run(f"salloc -N2 -n2 srun --mpi=pmix --migrate=manual -N2 -n2 {show}",
              timeout=60)
    assert r.rc == 0, str(r)
    assert r.stdout.split() == ["fence=ring", "fence=ring"], str(r)
    r = c.run(f"salloc -N2 -n2 env SLURM_PMIX_FENCE=tree srun --mpi=pmix "
              f"--migrate=manual -N2 -n2 {show}", timeout=60)
    assert r.rc == 0, str(r)
    assert r.stdout.split() == ["fence=tree", "fence=tree"], str(r)
    r = c.run(f"salloc -N2 -n2 srun --mpi=pmix -N2 -n2 {show}", timeout=60)
    assert r.rc == 0, str(r)
    assert r.stdout.split() == ["fence=unset", "fence=unset"], str(r)


def test_ordinary_batch_job(cluster, mpi_hello):
    """An sbatch job without --migrate (two srun steps, one MPI) completes
    with ExitCode=0:0, writes the expected output, and has no SystemComment.
    Only the launch is retried (at most 3 jobs in all), when the MPI step
    failed before its ranks got past MPI_Init with Open MPI's own start-up
    failure text (cl.job_start_retry), never for a crash: this test proves
    ordinary jobs unaffected. The assertions run on the last job."""
    script = os.path.join(cluster.workdir, "batch.sh")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                "srun -N2 -n2 bash -c 'echo step0 $SLURMD_NODENAME'\n"
                f"srun --mpi=pmix -N2 -n4 {mpi_hello}\n"
                "echo batch done\n")
    os.chmod(script, 0o755)
    for attempt in range(1, 4):
        out = os.path.join(cluster.workdir, f"batch.{attempt}.out")
        marks = cl.log_marks(cluster)
        job_id = cl.submit_job(cluster, f"-N2 --ntasks-per-node=2 -o {out} {script}")
        state = cl.wait_for_job_state(cluster, job_id, "COMPLETED", timeout=120)
        output = open(out).read() if os.path.exists(out) else ""
        hello = [l for l in output.splitlines() if re.match(HELLO_RE, l)]
        if state == "COMPLETED" and len(hello) == 4:
            break
        if not cl.job_start_retry(cluster, job_id, output, len(hello), 4,
                                  attempt, 3, marks, crash_ok=False,
                                  timed_out=state not in cl.TERMINAL_STATES):
            break
        cluster.run(f"scancel {job_id}", user="root", timeout=30)
    assert state == "COMPLETED", f"job {job_id} ended {state}; output:\n{output}"
    assert cl.get_job_parameter(cluster, job_id, "ExitCode") == "0:0"
    lines = output.splitlines()
    assert len([l for l in lines if l.startswith("step0 node")]) == 2, output
    assert len(hello) == 4, output
    assert lines[-1] == "batch done", output
    assert_no_system_comment(cluster, job_id)


@pytest.mark.parametrize("value,word", [
    ("bogus", "bogus"),
    ("mode=bogus", "bogus"),
    ("spares=-1", "-1"),
    ("every=soon", "every=soon"),
])
def test_bad_migrate_flag(cluster, needs_plugins, value, word):
    """A bad --migrate value makes srun fail at submit time, before anything
    runs, and its message names the offending value."""
    r = cluster.run(f"srun --migrate={value} bash -c 'echo RAN'", timeout=60)
    assert not r.timed_out, str(r)
    assert r.rc != 0, f"srun --migrate={value} succeeded:\n{r}"
    assert "RAN" not in r.stdout, f"the job ran despite --migrate={value}:\n{r}"
    assert word in r.stderr, f"the error does not name {word!r}:\n{r}"
    assert "--migrate" in r.stderr or "migrate:" in r.stderr, str(r)


@pytest.mark.parametrize("line3,key", [
    ("MigrateBogusKey=1", "MigrateBogusKey"),
    ("MigratePort=notanumber", "MigratePort"),
])
def test_bad_migrate_conf(cluster, needs_plugins, tmp_path, line3, key):
    """smigd -D -f FILE beside the session's slurmctld, with a migrate.conf
    whose line 3 is bad (an unknown key, or a value that is not a number),
    exits non-zero at once, and its stderr names the file, line 3 and the
    key."""
    conf = tmp_path / "migrate.conf"
    conf.write_text("# migrate.conf with an error on line 3\n"
                    "MigratePollInterval=1s\n"
                    f"{line3}\n"
                    "MigrateCaptureTimeout=20s\n")
    path = str(conf)
    what = "smigd"
    command = [os.path.join(cluster.build_dir, "smigd"), "-D", "-f", path]
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cluster.env,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"{what} still ran after 30s with a bad {path}:\n{out}")
    seconds = time.monotonic() - start
    text, logfile = out, "smigd's stderr"
    assert proc.returncode != 0, f"{what} exited 0 with a bad {path}"
    assert seconds < 20, f"{what} took {seconds:.1f}s to refuse"
    prefix = "smigd: error: "
    want = re.compile(re.escape(prefix + f"{path}:3: {key}=") + r".*\S")
    assert want.search(text), \
        f"{logfile} does not name {path}:3 and {key}:\n{text[-2000:]}\n{out}"
