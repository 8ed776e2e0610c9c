# SPDX-License-Identifier: GPL-2.0-or-later
"""test_security_wire.py - the balancer lets no one in and no one steer
another user's job

A hostile peer (testsuite/tools/smig-wire-send, run as the second test user
or with a forged credential) talks to the real balancer in slurmctld, with
real munge. Each attack must be refused, logged in slurmctld's log (uid,
message, job), and change nothing: the victim job keeps computing and its
SystemComment stays as it was.
"""

import os

import pytest

import cluster as cl
import security as sec


@pytest.fixture(scope="module")
def victim(cluster):
    """A running --migrate=manual heat job of the test user, cancelled at
    the end of the module."""
    c = cluster
    if not c.plugins:
        pytest.skip("SMIG_NO_PLUGINS=1: the cluster runs without the plugins")
    job, out = sec.start_victim(c, "sec-wire")
    yield job, out
    c.run(f"scancel {job}", user="root", timeout=30)


def unharmed(c, job, out, comment_before, iter_before):
    """The victim runs on, computing, its SystemComment unchanged."""
    assert cl.get_job_parameter(c, job, "JobState") == "RUNNING", \
        sec.read(out)
    assert cl.get_job_parameter(c, job, "SystemComment", "") == \
        comment_before
    progressed = cl.repeat_until(lambda: sec.iterations(sec.read(out)),
                                 lambda i: i > iter_before, timeout=30)
    assert progressed > iter_before, \
        f"the victim stopped computing:\n{sec.read(out)}"
    assert "stopping for migration" not in sec.read(out)


def hello_srun_args(job, step):
    return (f"HELLO_SRUN job=u:{job} step=u:{step} request=s:mode=auto "
            "ntasks=u:2 'alloc_nodes=s:node[1-2]' 'alloc_cpus=s:1(x2)'")


def test_security_unauthenticated_frame(cluster, victim):
    """A frame whose token is not a munge credential (forged by hand) is
    refused before anything in it is read: the balancer logs a bad message
    with munge's verdict and closes the connection; the victim runs on."""
    c = cluster
    job, out = victim
    before = cl.get_job_parameter(c, job, "SystemComment", "")
    it = sec.iterations(sec.read(out))
    r = sec.wire_send(c, "--bad-token " + hello_srun_args(job, 5),
                      user=sec.attacker(c))
    assert r.rc == 0, str(r)
    assert r.stdout.startswith("CLOSED"), str(r)
    m = sec.wait_log(c, "slurmctld",
                     r"connection \S+ \(JobId=0\): bad message: .*munge.*$")
    assert m, "no log line for the forged frame:\n" + \
        c.read_log("slurmctld")[-3000:]
    unharmed(c, job, out, before, it)


def test_security_replayed_frame(cluster, victim, tmp_path):
    """The same munge-sealed frame sent twice: the first is authenticated
    (and refused for what it asks: the step is registered already), the
    second is refused by munge as a replay, logged, and the connection is
    closed; the victim runs on."""
    c = cluster
    job, out = victim
    before = cl.get_job_parameter(c, job, "SystemComment", "")
    it = sec.iterations(sec.read(out))
    saved = os.path.join(c.workdir, f"replay.{job}.frame")
    r = sec.wire_send(c, f"--save {saved} " + hello_srun_args(job, 0),
                      user=c.user)
    assert r.rc == 0, str(r)
    assert r.stdout.strip() == \
        "REFUSED what=HELLO_SRUN reason=StepId=0 already registered", str(r)
    r = sec.wire_send(c, f"--replay {saved}", user=c.user)
    assert r.rc == 0, str(r)
    assert r.stdout.startswith("CLOSED"), str(r)
    m = sec.wait_log(c, "slurmctld",
                     r"connection \S+ \(JobId=0\): bad message: .*[Rr]eplay.*$")
    assert m, "no log line for the replayed frame:\n" + \
        c.read_log("slurmctld")[-3000:]
    unharmed(c, job, out, before, it)


# What another user might send to take over, stop or move the victim.
ATTACKS = {
    "hello_srun": lambda job: hello_srun_args(job, 1),
    "hello_agent": lambda job: f"HELLO_AGENT job=u:{job} step=u:0 node=s:node1 ranks=au:0",
    "relaunch_ack": lambda job: f"RELAUNCH_ACK job=u:{job} step=u:0 gen=t:1",
    "bye": lambda job: f"BYE job=u:{job} step=u:0 status=i:0",
    "done": lambda job: f"DONE job=u:{job} step=u:0 gen=t:1 rank=u:0 status=i:0 bytes=t:1 msg=s:",
    "request_capture": lambda job: f"REQUEST job=u:{job} step=u:0 op=s:capture",
    "request_move": lambda job: f"REQUEST job=u:{job} step=u:0 op=s:move ranks=au:0 to=s:node3",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_security_other_user(cluster, victim, attack):
    """A munge-authenticated message from another user about the victim's
    job (register a step, pose as its agent, acknowledge a relaunch, end
    it, report an image, ask for a capture or a move) is refused with
    REFUSED, logged with the sender's uid, the message and the job, and
    changes nothing (a BYE only closes the sender's own connection)."""
    c = cluster
    job, out = victim
    user2 = sec.attacker(c)
    before = cl.get_job_parameter(c, job, "SystemComment", "")
    it = sec.iterations(sec.read(out))
    args = ATTACKS[attack](job)
    what = args.split()[0]
    r = sec.wire_send(c, args, user=user2)
    assert r.rc == 0, str(r)
    if what == "BYE":
        # A BYE on a connection bound to no step concerns that connection
        # only (peers of a relaunched step leave this way): it is closed,
        # and nothing else happens.
        assert r.stdout.startswith("CLOSED"), str(r)
        unharmed(c, job, out, before, it)
        return
    assert r.stdout.startswith(f"REFUSED what={what} reason="), str(r)
    m = sec.wait_log(c, "slurmctld",
                     rf"refused {what} from uid={sec.uid_of(user2)} "
                     rf"\(\S+\) for JobId={job}: .*$")
    assert m, f"no log line for {what} from {user2}:\n" + \
        c.read_log("slurmctld")[-3000:]
    unharmed(c, job, out, before, it)
