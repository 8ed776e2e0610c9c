# SPDX-License-Identifier: GPL-2.0-or-later
"""test_security_images.py - images belong to the job's user, and no path
trick gets the root agent to work outside the job's directory

The job's image directory <MigrateImageDir>/<jobid> is created by the agent
(root) with mode 0700 for the job's user; another user can neither list,
read, write nor restore from it. A directory planted in its place (a
symbolic link, or one owned by someone else) makes the agent refuse and
run the step without migration, touching nothing.
"""

import os
import re
import shutil
import stat

import pytest

import cluster as cl
import security as sec


def image_root(c):
    return os.path.join(c.dir, "images")


@pytest.fixture(scope="module")
def victim(cluster):
    """A running --migrate=manual heat job of the test user with one image
    file in its directory (planted as root: what a capture leaves)."""
    c = cluster
    if not c.plugins:
        pytest.skip("SMIG_NO_PLUGINS=1: the cluster runs without the plugins")
    job, out = sec.start_victim(c, "sec-img")
    jobdir = os.path.join(image_root(c), str(job))
    image = os.path.join(jobdir, "rank0.g1.img")
    with open(image, "wb") as f:
        f.write(b"SMIGIMG\0" + bytes(120))
    uid = sec.uid_of(c.user)
    os.chown(image, uid, os.stat(jobdir).st_gid)
    os.chmod(image, 0o600)
    yield job, out, jobdir
    c.run(f"scancel {job}", user="root", timeout=30)


def test_security_image_dir_private(cluster, victim):
    """The job's directory is 0700 and owned by the job's user; another user
    cannot list it, read an image in it, write a new one, or plant a link."""
    c = cluster
    job, out, jobdir = victim
    st = os.lstat(jobdir)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, \
        f"{jobdir}: mode {stat.S_IMODE(st.st_mode):o}"
    assert st.st_uid == sec.uid_of(c.user)
    user2 = sec.attacker(c)
    image = os.path.join(jobdir, "rank0.g1.img")
    for cmd in (f"ls {jobdir}", f"cat {image}", f": > {jobdir}/rank0.g2.img",
                f"ln -s /etc/shadow {jobdir}/rank1.g1.img",
                f"rm -f {image}"):
        r = c.run(cmd, user=user2, timeout=30)
        assert r.rc != 0 and "Permission denied" in r.stderr, str(r)
    assert sorted(os.listdir(jobdir)) == ["rank0.g1.img"]
    # The owner can.
    r = c.run(f"ls {jobdir}", timeout=30)
    assert r.rc == 0 and "rank0.g1.img" in r.stdout, str(r)


def test_security_restore_other_users_image(cluster, victim):
    """Another user cannot restore from the victim's images: the agent puts
    the user's own job directory in SLURM_MIGRATE_IMAGE_DIR whatever the
    user exported, and a rank pointed at the victim's directory by hand
    fails to read it (permission denied, a clear message, exit non-zero)."""
    c = cluster
    job, out, jobdir = victim
    user2 = sec.attacker(c)
    heat = os.path.join(c.build_dir, "contrib", "examples", "heat")
    r = c.run(f"salloc -N1 -n1 env SLURM_MIGRATE_IMAGE_DIR={jobdir} "
              "srun --mpi=pmix "
              "--migrate=manual -n1 printenv SLURM_MIGRATE_IMAGE_DIR",
              user=user2, cwd="/tmp", timeout=60)
    assert r.rc == 0, str(r)
    own = r.stdout.strip()
    assert own != jobdir and re.fullmatch(
        re.escape(image_root(c)) + r"/\d+", own), str(r)

    r = c.run(f"salloc -N1 -n1 srun --mpi=pmix --migrate=manual -n1 env "
              f"SLURM_MIGRATE_IMAGE_DIR={jobdir} SLURM_MIGRATE_RESTORE_GEN=1 "
              f"{heat} --iters 5", user=user2, cwd="/tmp", timeout=60)
    assert r.rc != 0, str(r)
    assert "Permission denied" in r.stdout + r.stderr, str(r)
    assert "heat: done" not in r.stdout, str(r)


def planted_dir_refused(c, name, plant, want_log):
    """Start a victim job while PLANT(jobdir) puts something in place of its
    image directory; the agent must refuse it with a log line matching
    WANT_LOG and the job must run (without migration)."""
    planted = {}

    def hook(job):
        jobdir = os.path.join(image_root(c), str(job))
        planted["jobdir"] = jobdir
        planted["target"] = plant(jobdir)

    job, out = sec.start_victim(c, name, hold_hook=hook)
    try:
        pat = re.escape(planted["jobdir"]) + want_log
        m = sec.wait_log(c, "slurmd.node1", pat) or \
            sec.wait_log(c, "slurmd.node2", pat, timeout=1)
        assert m, f"no refusal for {planted['jobdir']} in the slurmd logs"
        assert "runs without migration" in m.group(0)
        assert cl.get_job_parameter(c, job, "JobState") == "RUNNING"
        # The user is told too: srun's stderr (in the job's output) and
        # SystemComment, not only the slurmd log.
        told = (rf"^srun: error: migrate: JobId={job} StepId=0: "
                rf"node=node[12] ranks=[01] cannot be protected: "
                rf"{re.escape(planted['jobdir'])}: [^\n]*; "
                rf"the step runs without migration$")
        text = cl.repeat_until(lambda: sec.read(out),
                               lambda t: re.search(told, t, re.M),
                               timeout=15)
        assert re.search(told, text, re.M), \
            f"srun did not say why:\n{text}"
        comment = cl.migration_state(c, job, None)
        assert re.fullmatch(r"mode=manual gen=0 moves=0 "
                            r"last_error=gen=1;reason=unprotected;ranks=[01]",
                            comment or ""), comment
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)
    return planted


def test_security_job_dir_symlink(cluster, needs_plugins):
    """A symbolic link in place of the job's image directory (pointing at a
    directory of another user) is refused by the agent, which neither
    follows it nor changes the target's owner or mode."""
    c = cluster
    user2 = sec.attacker(c)
    target = os.path.join(c.dir, "tmp", "sec-symlink-target")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    os.chown(target, sec.uid_of(user2), -1)
    os.chmod(target, 0o755)

    def plant(jobdir):
        os.symlink(target, jobdir)
        return target

    planted_dir_refused(c, "sec-symlink", plant,
                        r": cannot open: .*symbolic link.*$")
    st = os.stat(target)
    assert st.st_uid == sec.uid_of(user2), "the agent chowned the target"
    assert stat.S_IMODE(st.st_mode) == 0o755, "the agent chmodded the target"
    assert os.listdir(target) == []
    os.unlink(planted_dir_path(c, target))


def planted_dir_path(c, target):
    """The link in the image root that points at TARGET."""
    for name in os.listdir(image_root(c)):
        p = os.path.join(image_root(c), name)
        if os.path.islink(p) and os.readlink(p) == target:
            return p
    raise AssertionError(f"no link to {target} in {image_root(c)}")


def test_security_job_dir_foreign_owner(cluster, needs_plugins):
    """A directory owned by another user in place of the job's image
    directory (left over, or planted) is refused by the agent: it is not
    given to the job's user and its contents stay as they were."""
    c = cluster
    user2 = sec.attacker(c)

    def plant(jobdir):
        os.mkdir(jobdir, 0o755)
        os.chown(jobdir, sec.uid_of(user2), -1)
        with open(os.path.join(jobdir, "keep"), "w") as f:
            f.write("theirs\n")
        return jobdir

    planted = planted_dir_refused(c, "sec-foreign", plant,
                                  r": owned by uid \d+, not by the job's user \d+.*$")
    st = os.stat(planted["jobdir"])
    assert st.st_uid == sec.uid_of(user2)
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert os.listdir(planted["jobdir"]) == ["keep"]
    shutil.rmtree(planted["jobdir"])


def test_security_job_dir_replaced_while_running(cluster, needs_plugins):
    """The job directory replaced by a symbolic link while the job runs
    (root's doing) is refused at the next capture: "smig capture --wait"
    fails, nothing is written into the link's target, SystemComment says
    the capture failed, and the ranks (libsmig, in the job's output) and
    the balancer's log say why."""
    c = cluster
    smig = os.path.join(c.build_dir, "contrib", "tools", "smig")
    target = os.path.join(c.dir, "tmp", "sec-replaced-target")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    os.chmod(target, 0o777)
    job, out = sec.start_victim(c, "sec-replaced")
    jobdir = os.path.join(image_root(c), str(job))
    try:
        os.rename(jobdir, jobdir + ".orig")
        os.symlink(target, jobdir)
        r = c.run(f"{smig} capture {job} --wait 60", timeout=90)
        assert r.rc != 0, f"the capture through a symbolic link passed:\n{r}"
        assert os.listdir(target) == [], "images written through the link"
        want = (re.escape(jobdir) + r": the job directory was replaced by "
                r"a symbolic link while the job runs: refused")
        text = sec.read(out)
        assert re.search(r"^smig: rank [01]: generation 1: capture at safe "
                         r"point \d+ failed: " + want +
                         r" \(nothing written through it\)$", text, re.M), \
            f"no refusal in the job's output:\n{text}"
        assert sec.wait_log(c, c.balancer_log, rf"JobId={job} StepId=0: "
                            r"rank=[01] capture gen=1 failed: status=-\d+ " +
                            want), "no refusal in the balancer's log"
        # smigd writes AdminComment from its own flush, rate limited: wait
        # for the error to be published, then check what it says.
        comment = cl.repeat_until(lambda: cl.migration_state(c, job, None),
                                  lambda s: "last_error=" in (s or ""),
                                  timeout=20)
        assert re.search(r"last_error=gen=1;reason=capture-failed;"
                         r"ranks=[01,]+$", comment or ""), comment
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)
        if os.path.islink(jobdir):
            os.unlink(jobdir)
        if os.path.isdir(jobdir + ".orig"):
            os.rename(jobdir + ".orig", jobdir)
        shutil.rmtree(target, ignore_errors=True)
