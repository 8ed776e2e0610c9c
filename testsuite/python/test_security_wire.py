# SPDX-License-Identifier: GPL-2.0-or-later
"""test_security_wire.py - the balancer lets no one in and no one steer
another user's job

A hostile peer (testsuite/tools/smig-wire-send, run as the second test user
or with a forged credential) talks to the real balancer in slurmctld (or
smigd), with real munge. Each attack must be refused, logged in the
balancer's log (uid, message, job), and change nothing: the victim job keeps
computing and its state line (SystemComment, or smigd's AdminComment
segment) stays as it was.
"""

import os
import re

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
    assert cl.migration_state(c, job) == \
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
    before = cl.migration_state(c, job)
    it = sec.iterations(sec.read(out))
    r = sec.wire_send(c, "--bad-token " + hello_srun_args(job, 5),
                      user=sec.attacker(c))
    assert r.rc == 0, str(r)
    assert r.stdout.startswith("CLOSED"), str(r)
    m = sec.wait_log(c, c.balancer_log,
                     r"connection \S+: bad message: .*munge.*$")
    assert m, "no log line for the forged frame:\n" + \
        c.read_log(c.balancer_log)[-3000:]
    unharmed(c, job, out, before, it)


def test_security_replayed_frame(cluster, victim, tmp_path):
    """The same munge-sealed frame sent twice: the first is authenticated
    (and refused for what it asks: the step is registered already), the
    second is refused by munge as a replay, logged, and the connection is
    closed; the victim runs on."""
    c = cluster
    job, out = victim
    before = cl.migration_state(c, job)
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
    m = sec.wait_log(c, c.balancer_log,
                     r"connection \S+: bad message: .*[Rr]eplay.*$")
    assert m, "no log line for the replayed frame:\n" + \
        c.read_log(c.balancer_log)[-3000:]
    unharmed(c, job, out, before, it)


@pytest.fixture(scope="module")
def own_job(cluster, victim):
    """A running job of the attacker (the second test user): a connection
    registered for it is how a peer gets past the registration checks
    before it names the victim's job. Cancelled at the end of the module."""
    c = cluster
    user2 = sec.attacker(c)
    job = cl.submit_job(c, "-N1 -o /dev/null --wrap 'sleep 600'", user=user2)
    state = cl.wait_for_job_state(c, job, "RUNNING", timeout=60)
    try:
        assert state == "RUNNING", f"the attacker's job {job} is {state}"
        yield job
    finally:
        c.run(f"scancel {job}", user="root", timeout=30)


def register_srun(own, step):
    """Register the connection as the srun of the attacker's own job."""
    return hello_srun_args(own, step) + " --then "


def register_agent(own, step):
    """Register the connection as an agent of the attacker's own job."""
    return (f"HELLO_AGENT job=u:{own} step=u:{step} node=s:node4 ranks=au:0 "
            "--then ")


def not_owner(c, user2):
    return (rf"uid {sec.uid_of(user2)} is not the owner "
            rf"\(uid {sec.uid_of(c.user)}\) of the job")


def other_job(job, own, step):
    return (rf"connection is registered for JobId={own} StepId={step}, "
            rf"not JobId={job} StepId=0")


# What another user might send to take over, stop or move the victim:
# (the attacker's messages; the reason of the check that must refuse the
# last one: the owner check of a HELLO or REQUEST, the binding of a
# registered connection to its own job and step, or the role check of a
# connection that registered nothing). Each message is well formed, so
# that it is the named check that refuses it. Each attack registers its
# own step id, so that none is refused as already registered.
ATTACKS = {
    "hello_srun": (
        lambda job, own, st: hello_srun_args(job, 1),
        lambda c, u2, job, own, st: not_owner(c, u2)),
    "hello_agent": (
        lambda job, own, st: f"HELLO_AGENT job=u:{job} step=u:0 node=s:node1 ranks=au:0",
        lambda c, u2, job, own, st: not_owner(c, u2)),
    "relaunch_ack": (
        lambda job, own, st: register_srun(own, st) +
        f"RELAUNCH_ACK job=u:{job} step=u:0 gen=t:1",
        lambda c, u2, job, own, st: other_job(job, own, st)),
    "relaunch_ack_unregistered": (
        lambda job, own, st: f"RELAUNCH_ACK job=u:{job} step=u:0 gen=t:1",
        lambda c, u2, job, own, st: "connection is not registered as srun"),
    "bye": (
        lambda job, own, st: register_srun(own, st) +
        f"BYE job=u:{job} step=u:0 status=i:0",
        lambda c, u2, job, own, st: other_job(job, own, st)),
    "done": (
        lambda job, own, st: register_agent(own, st) +
        f"DONE job=u:{job} step=u:0 gen=t:1 rank=u:0 status=i:0 bytes=t:1 msg=s:",
        lambda c, u2, job, own, st: other_job(job, own, st)),
    "done_unregistered": (
        lambda job, own, st: f"DONE job=u:{job} step=u:0 gen=t:1 rank=u:0 status=i:0 bytes=t:1 msg=s:",
        lambda c, u2, job, own, st: "connection is not registered as an agent"),
    "request_capture": (
        lambda job, own, st: f"REQUEST job=u:{job} step=u:0 what=s:capture",
        lambda c, u2, job, own, st: not_owner(c, u2)),
    "request_move": (
        lambda job, own, st: f"REQUEST job=u:{job} step=u:0 what=s:move ranks=s:0 to=s:node3",
        lambda c, u2, job, own, st: not_owner(c, u2)),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_security_other_user(cluster, victim, own_job, attack):
    """A munge-authenticated, well-formed message from another user about
    the victim's job (register a step, pose as its agent, acknowledge a
    relaunch, end it, report an image, ask for a capture or a move; from a
    connection the attacker registered for its own job, or from one that
    registered nothing) is refused with REFUSED by the check it is aimed
    at, whose reason it names; the refusal is logged with the sender's
    uid, the message, the job and that reason, and changes nothing."""
    c = cluster
    job, out = victim
    user2 = sec.attacker(c)
    before = cl.migration_state(c, job)
    it = sec.iterations(sec.read(out))
    make_args, make_reason = ATTACKS[attack]
    step = 100 + sorted(ATTACKS).index(attack)
    args = make_args(job, own_job, step)
    what = args.split("--then ")[-1].split()[0]
    reason = make_reason(c, user2, job, own_job, step)
    r = sec.wire_send(c, args, user=user2)
    assert r.rc == 0, str(r)
    # Only the last message is answered: a registration is not.
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, str(r)
    assert re.fullmatch(rf"REFUSED what={what} reason={reason}", lines[0]), \
        f"not refused by the check for {attack} ({reason}):\n{r}"
    m = sec.wait_log(c, c.balancer_log,
                     rf"JobId={job}: refused {what} from "
                     rf"uid={sec.uid_of(user2)} \(\S+\): {reason}$")
    assert m, f"no log line for {what} from {user2}:\n" + \
        c.read_log(c.balancer_log)[-3000:]
    unharmed(c, job, out, before, it)


def test_security_bye_unregistered(cluster, victim):
    """A BYE naming the victim's job on a connection bound to no step
    concerns that connection only (peers of a relaunched step leave this
    way): it is closed, and nothing else happens to the victim."""
    c = cluster
    job, out = victim
    before = cl.migration_state(c, job)
    it = sec.iterations(sec.read(out))
    r = sec.wire_send(c, f"BYE job=u:{job} step=u:0 status=i:0",
                      user=sec.attacker(c))
    assert r.rc == 0, str(r)
    assert r.stdout.startswith("CLOSED"), str(r)
    unharmed(c, job, out, before, it)
