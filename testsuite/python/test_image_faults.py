# SPDX-License-Identifier: GPL-2.0-or-later
"""test_image_faults.py - the recovery image fault matrix: nothing is lost

Each case runs one batch job of two steps. Step 1 runs heat with periodic
capture (--migrate=every=1s), so the job directory holds the MigrateRetain=2
newest good generations and the manifest "good" names them. The test then
breaks something: an image of the newest generation (truncated, one bit
flipped in payload or header, another format version, an image of another
rank or job, unreadable), the disk (full while step 1 captures), or a rank
(killed while it captures). Step 2 restarts the application from the last
good generation (SLURM_MIGRATE_RESTORE_GEN=last). Each case checks that the
fault was detected, that the error names the file and the reason, that the
previous good generation was used, and that the job finished with the
checksum of a run without any fault.
"""

import os
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

import cluster as cl
from heat import DONE_RE, START_RE, heat_path, read

HEAT_ARGS = "--nx 96 --ny 64 --iters 240 --sleep-ms 25 --report 40"
MIGRATE1 = "every=1s,capture-timeout=5s"
HDR = 128                      # image header size (src/common/smig_image.h)
PAYLOAD_ITER_OFF = HDR + 8 + 32  # heat_image.iter in heat's payload
FINISHED = []                  # jobs whose images outlive them (donors)


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


def job_dir(c, job):
    return os.path.join(c.dir, "images", str(job))


def good_gens(c, job):
    """Generations the manifest of the job's image directory lists."""
    text = read(os.path.join(job_dir(c, job), "good"))
    lines = text.splitlines()
    assert not lines or lines[0] == "smig-good 1", f"manifest: {text!r}"
    return [int(l.split()[1]) for l in lines[1:]]


def image(c, job, rank, gen):
    return os.path.join(job_dir(c, job), f"rank{rank}.g{gen}.img")


def image_iter(path):
    with open(path, "rb") as f:
        f.seek(PAYLOAD_ITER_OFF)
        return struct.unpack("<q", f.read(8))[0]


class Case:
    """One job: step 1 (periodic capture) ... go file ... step 2 (restore)."""

    def __init__(self, c, name, step1_extra="", hold=False, mpi="pmix",
                 heat=None):
        self.c = c
        self.name = name
        self.go = os.path.join(c.workdir, f"{name}.go")
        self.out = os.path.join(c.workdir, f"{name}.out")
        script = os.path.join(c.workdir, f"{name}.sbatch")
        heat = heat or heat_path(c)
        with open(script, "w") as f:
            f.write("#!/bin/bash\n"
                    f"srun --mpi={mpi} --migrate={MIGRATE1} -N2 -n4 {heat} "
                    f"{HEAT_ARGS} {step1_extra}\n"
                    "echo step1_exit=$?\n"
                    f"for i in $(seq 900); do [ -e {self.go} ] && break; "
                    "sleep 0.2; done\n"
                    f"SLURM_MIGRATE_RESTORE_GEN=last srun --mpi={mpi} "
                    f"--migrate=capture-timeout=5s -N2 -n4 {heat} {HEAT_ARGS}\n"
                    "echo step2_exit=$?\n")
        os.chmod(script, 0o755)
        for p in (self.go, self.out):
            if os.path.exists(p):
                os.unlink(p)
        self.job = cl.submit_job(c, f"-N2 -n4 {'-H ' if hold else ''}"
                                 f"-o {self.out} {script}")

    def text(self):
        return read(self.out)

    def wait_step1(self, timeout=120):
        text = cl.repeat_until(self.text, lambda t: "step1_exit=" in t,
                               timeout=timeout)
        assert "step1_exit=" in text, f"job {self.job}: step 1 did not end:\n{text}"
        return text

    def release_step2(self):
        with open(self.go, "w"):
            pass

    def finish(self, reference, timeout=120):
        """Let step 2 run; check the job completed with the right result and
        return the text of step 2."""
        self.release_step2()
        state = cl.wait_for_job_state(self.c, self.job, "COMPLETED",
                                      timeout=timeout)
        text = self.text()
        assert state == "COMPLETED", f"job {self.job} ended {state}:\n{text}"
        assert "step2_exit=0" in text, f"step 2 failed:\n{text}"
        step2 = text.split("step1_exit=", 1)[1]
        m = re.search(DONE_RE, step2, re.M)
        assert m, f"step 2 printed no checksum:\n{text}"
        assert m.group(1) == "240"
        assert m.group(2) == reference, \
            f"checksum {m.group(2)} != {reference} of a run without faults"
        return step2

    def cancel(self):
        self.c.run(f"scancel {self.job}", user="root", timeout=30)

    def started(self, timeout=90):
        """True once step 1's four ranks printed their start line; False if
        step 1 ended before (Open MPI's start-up fails now and then here)."""
        text = cl.repeat_until(self.text, lambda t: len(re.findall(
            START_RE, t, re.M)) >= 4 or "step1_exit=" in t, timeout=timeout)
        return len(re.findall(START_RE, text, re.M)) >= 4


def new_case(c, name, step1_extra="", attempts=3, **case_kw):
    """A Case whose step 1 started its four ranks; the launch (not an
    assertion) is retried only when step 1 failed before that with Open
    MPI's own start-up failure (cl.job_start_retry; never for another MPI,
    case_kw mpi=)."""
    if case_kw.get("mpi", "pmix") != "pmix":
        attempts = 1
    for attempt in range(1, attempts + 1):
        marks = cl.log_marks(c)
        case = Case(c, f"{name}.{attempt}", step1_extra, **case_kw)
        if case.started():
            return case
        text = case.text()
        again = cl.job_start_retry(c, case.job, text,
                                   len(re.findall(START_RE, text, re.M)), 4,
                                   attempt, attempts, marks,
                                   timed_out="step1_exit=" not in text)
        case.cancel()
        if not again:
            pytest.fail(f"job {case.job}: step 1 did not start:\n{text}")
    raise AssertionError("unreachable")


def restored_iters(step2):
    got = {int(r): int(i) for r, _, kind, i in re.findall(START_RE, step2, re.M)
           if kind == "restored"}
    assert sorted(got) == [0, 1, 2, 3], f"not every rank restored:\n{step2}"
    return set(got.values())


def check_fallback(case, reference, newest, older, older_iter, words):
    """Step 2 names the bad image and reason, falls back from newest to
    older on every rank and finishes right."""
    step2 = case.finish(reference)
    bad = image(case.c, case.job, 1, newest)
    lines = [l for l in step2.splitlines() if bad in l]
    assert lines, f"no error names {bad}:\n{step2}"
    assert any(all(w in l for w in words) for l in lines), \
        f"the error about {bad} does not say {words}:\n" + "\n".join(lines)
    assert (f"generation {newest} is not valid on every rank: falling back "
            f"to generation {older}") in step2, step2
    assert restored_iters(step2) == {older_iter}, \
        f"ranks did not all restore generation {older} (iter {older_iter}):\n{step2}"


def corrupt_newest(c, reference, name, corrupt, words, **case_kw):
    """Step 1 leaves two good generations; corrupt(path) breaks rank 1's
    image of the newest one; step 2 must fall back to the older one."""
    case = new_case(c, name, **case_kw)
    try:
        text = case.wait_step1()
        assert "step1_exit=0" in text, f"step 1 failed:\n{text}"
        gens = good_gens(c, case.job)
        assert len(gens) == 2, \
            f"manifest lists {gens}, expected MigrateRetain=2 generations:\n{text}"
        older, newest = gens
        # Retention: nothing older than the kept generations is left.
        left = sorted(f for f in os.listdir(job_dir(c, case.job))
                      if f.endswith(".img"))
        assert left == sorted(f"rank{r}.g{g}.img" for r in range(4)
                              for g in gens), f"images left: {left}"
        corrupt(image(c, case.job, 1, newest))
        check_fallback(case, reference, newest, older,
                       image_iter(image(c, case.job, 0, older)), words)
        FINISHED.append(case.job)
        return case
    except BaseException:
        case.cancel()
        raise


def flip_bit(path, offset, bit=0):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ (1 << bit)]))


def test_image_fault_truncate(cluster, needs_plugins, reference):
    """An image cut short (its last 100 bytes gone) is detected on restore
    ("truncated", naming the file) and every rank restores the previous good
    generation; the job completes with the right checksum."""
    corrupt_newest(cluster, reference, "fault_truncate",
                   lambda p: os.truncate(p, os.path.getsize(p) - 100),
                   ["truncated"])


def test_image_fault_bitflip_payload(cluster, needs_plugins, reference):
    """One bit flipped in the payload fails the payload checksum; the
    previous good generation is used."""
    corrupt_newest(cluster, reference, "fault_bitflip_payload",
                   lambda p: flip_bit(p, HDR + 1000, 3),
                   ["payload checksum mismatch"])


def test_image_fault_bitflip_header(cluster, needs_plugins, reference):
    """One bit flipped in the header (the safe-point count) fails the header
    checksum; the previous good generation is used."""
    corrupt_newest(cluster, reference, "fault_bitflip_header",
                   lambda p: flip_bit(p, 40, 5),
                   ["header checksum mismatch"])


def test_image_fault_version(cluster, needs_plugins, reference):
    """An image of another format version is refused by name and version;
    the previous good generation is used."""
    def version(p):
        with open(p, "r+b") as f:
            f.seek(8)
            f.write(struct.pack("<I", 2))
    corrupt_newest(cluster, reference, "fault_version", version,
                   ["format version 2", "this build reads 1"])


def test_image_fault_other_rank(cluster, needs_plugins, reference):
    """Rank 0's image put in place of rank 1's (a valid image of the wrong
    rank) is refused; the previous good generation is used."""
    def swap(p):
        shutil.copyfile(p.replace("rank1.", "rank0."), p)
    corrupt_newest(cluster, reference, "fault_other_rank", swap,
                   ["rank 0 in header, expected 1"])


def test_image_fault_other_job(cluster, needs_plugins, reference):
    """An image of another job (valid, same rank) put in place of this job's
    is refused naming both jobs; the previous good generation is used."""
    if not FINISHED:
        # Run alone: a first job provides the images of "another job".
        d = new_case(cluster, "fault_other_job_donor")
        try:
            assert "step1_exit=0" in d.wait_step1()
            d.release_step2()
            cl.wait_for_job_state(cluster, d.job, "COMPLETED", timeout=120)
        finally:
            d.cancel()
        FINISHED.append(d.job)
    donor = FINISHED[-1]
    # The older generation: the newest one of a fault case was damaged.
    src = image(cluster, donor, 1, good_gens(cluster, donor)[0])
    corrupt_newest(cluster, reference, "fault_other_job",
                   lambda p: shutil.copyfile(src, p),
                   [f"job {donor} in header, this is job"])


def test_image_fault_permission(cluster, needs_plugins, reference):
    """An image the job's user cannot read (mode 000) is reported with
    "Permission denied" and the file; the previous good generation is used."""
    corrupt_newest(cluster, reference, "fault_permission",
                   lambda p: os.chmod(p, 0), ["Permission denied"])


def test_fault_store_full(cluster, needs_plugins, reference):
    """The job's image directory is a small tmpfs that fills up during step
    1 (fault matrix, doc/faults.md): the capture that hits ENOSPC fails with
    the file and "No space left on device", SystemComment names the failed
    generation and reason=capture-failed, the job runs on and completes,
    the manifest still names the generation before the disk filled (never
    the failed one, every rank's image of it present), and step 2 restores
    it."""
    c = cluster
    case = Case(c, "fault_disk_full", hold=True)
    d = job_dir(c, case.job)
    mounted = False
    try:
        pw = subprocess.run(["id", "-u", c.user], text=True,
                            stdout=subprocess.PIPE).stdout.strip()
        os.makedirs(d, mode=0o700)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            f"size=1m,mode=0700,uid={pw}", "smig-test", d],
                           text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stdout}")
        mounted = True
        r = c.run(f"scontrol release {case.job}", user="root", timeout=30)
        assert r.rc == 0, str(r)
        gens = cl.repeat_until(lambda: good_gens(c, case.job),
                               lambda g: len(g) >= 1, timeout=90)
        assert gens, f"no good generation before the fill:\n{case.text()}"
        # Fill the file system (root can use it all: tmpfs has no reserve).
        fd = os.open(os.path.join(d, "filler"), os.O_WRONLY | os.O_CREAT,
                     0o600)
        try:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        full_at = good_gens(c, case.job)
        text = case.wait_step1()
        assert "step1_exit=0" in text, f"step 1 failed (job lost?):\n{text}"
        assert "No space left on device" in text, \
            f"no capture failed with ENOSPC:\n{text}"
        # The agent's manifest write may hit the full disk too: the line
        # that matters names a rank's image.
        full = [l for l in text.splitlines() if "No space left" in l]
        assert any(re.search(rf"{re.escape(d)}/rank\d\.g\d+\.img", l)
                   for l in full), "\n".join(full)
        gens = good_gens(c, case.job)
        assert gens[-1] == full_at[-1] or gens[-1] <= full_at[-1] + 1, \
            f"manifest {gens} after the fill at {full_at}"
        last = gens[-1]
        # every=1s goes on trying after a failure (doc/design.md, "Failures
        # and back-off"): each failed generation is in the log, none in the
        # manifest; SystemComment names the last one tried (the step may
        # have ended during it).
        failed = [int(g) for g in re.findall(
            rf"JobId={case.job} StepId=\d+: capture aborted gen=(\d+) "
            r"reason=capture-failed", c.read_log(c.balancer_log))]
        assert failed and min(failed) > last, failed
        assert not set(failed) & set(gens), (failed, gens)
        line = cl.migration_state(c, case.job)
        m = re.search(r"last_error=gen=(\d+);reason=\S+", line)
        assert m and int(m.group(1)) >= max(failed), f"SystemComment={line!r}"
        assert int(m.group(1)) not in gens, gens
        for rank in range(4):
            assert os.path.exists(image(c, case.job, rank, last)), \
                f"rank {rank}'s image of good generation {last} is gone"
        os.unlink(os.path.join(d, "filler"))
        step2 = case.finish(reference)
        assert restored_iters(step2) == {image_iter(image(c, case.job, 0, last))}
        ctld = c.read_log(c.balancer_log)
        assert re.search(rf"JobId={case.job} StepId=\d+: capture aborted gen=\d+ "
                         r"reason=capture-failed", ctld), \
            "the balancer's log has no capture-failed line for the job"
    except BaseException:
        case.cancel()
        raise
    finally:
        if mounted:
            for _ in range(20):
                if subprocess.run(["umount", d]).returncode == 0:
                    break
                time.sleep(0.5)


def test_image_fault_kill_writer(cluster, needs_plugins, reference):
    """A rank killed (SIGKILL) while it captures (heat --capture-sleep-ms
    keeps it in its capture callback) takes step 1 down; its generation
    never becomes good: the manifest still names the previous one, and
    step 2 (the restart) restores that generation on every rank and
    completes with the right checksum."""
    c = cluster
    case = new_case(c, "fault_kill_writer", "--capture-sleep-ms 1500")
    try:
        cap_re = r"^heat: rank 1 capturing iter (\d+) pid (\d+)$"
        # Let one capture complete first, then kill rank 1 in the next.
        cl.repeat_until(lambda: good_gens(c, case.job), lambda g: len(g) >= 1,
                        timeout=90)
        before = good_gens(c, case.job)
        seen = len(re.findall(cap_re, case.text(), re.M))
        text = cl.repeat_until(case.text, lambda t: len(re.findall(
            cap_re, t, re.M)) > seen or "step1_exit=" in t, timeout=60,
            poll_interval=0.1)
        caps = re.findall(cap_re, text, re.M)
        assert len(caps) > seen, f"no second capture of rank 1:\n{text}"
        it, pid = caps[-1]
        os.kill(int(pid), signal.SIGKILL)
        text = case.wait_step1()
        assert "step1_exit=0" not in text, f"step 1 survived the kill:\n{text}"
        gens = good_gens(c, case.job)
        assert gens == before, f"manifest changed from {before} to {gens}"
        last = gens[-1]
        step2 = case.finish(reference)
        assert restored_iters(step2) == {image_iter(image(c, case.job, 0, last))}
        assert int(it) > image_iter(image(c, case.job, 0, last)), \
            "the killed capture was not newer than the restored generation"
    except BaseException:
        case.cancel()
        raise


def test_capture_request(cluster, needs_plugins, reference):
    """"smig capture JOBID --wait" run by the job's owner captures the running
    step now without moving it: the tool reports the generation started and
    then good, the manifest names it, all four ranks' images of it exist, no
    rank stops or restores, and the job completes with the right checksum."""
    c = cluster
    smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
    script = os.path.join(c.workdir, "capture_request.sbatch")
    out = os.path.join(c.workdir, "capture_request.out")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"srun --mpi=pmix --migrate -N2 -n4 {heat_path(c)} {HEAT_ARGS}\n"
                "echo srun_exit=$?\n")
    os.chmod(script, 0o755)
    job = cl.submit_job(c, f"-N2 -n4 -o {out} {script}")
    try:
        text = cl.repeat_until(lambda: read(out), lambda t: len(re.findall(
            START_RE, t, re.M)) >= 4 or "srun_exit=" in t, timeout=90)
        assert len(re.findall(START_RE, text, re.M)) >= 4, text
        r = c.run(f"{smig} capture {job} --wait 60", timeout=90)
        assert r.rc == 0, f"smig capture failed:\n{r}"
        m = re.search(rf"^JobId={job} capture started StepId=0:gen=(\d+)$",
                      r.stdout, re.M)
        assert m, str(r)
        gen = int(m.group(1))
        assert f"JobId={job} generation {gen} is good" in r.stdout, str(r)
        assert gen in good_gens(c, job)
        for rank in range(4):
            assert os.path.exists(image(c, job, rank, gen))
        state = cl.wait_for_job_state(c, job, "COMPLETED", timeout=120)
        text = read(out)
        assert state == "COMPLETED" and "srun_exit=0" in text, text
        assert "restored" not in text and "stopping" not in text, text
        assert re.search(DONE_RE, text, re.M).group(2) == reference
        bad = c.run(f"{smig} capture {job}", timeout=60)
        # The job is over: nothing to capture, said with the job's id.
        assert bad.rc != 0 and f"JobId={job}" in bad.stderr, str(bad)
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)
