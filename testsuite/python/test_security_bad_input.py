# SPDX-License-Identifier: GPL-2.0-or-later
"""test_security_bad_input.py - the environment and CLI rows of
doc/bad-input.md, each run for real

The table is the test data: each row's value is given to a real rank (heat,
through libsmig, under srun --migrate) or to the smig CLI, which must fail
and print the row's message. (The --migrate and migrate.conf rows are
checked by testsuite/unit/badinput-test.c.)
"""

import os
import re
import shlex

import pytest

import cluster as cl

DOC = os.path.join(cl.REPO, "doc", "bad-input.md")


def table(section):
    """[(input, message)] of the table under the "## SECTION..." heading."""
    rows, inside = [], False
    with open(DOC) as f:
        for line in f:
            if line.startswith("## "):
                inside = line[3:].startswith(section)
                continue
            if not inside or not line.startswith("| `"):
                continue
            cells = re.split(r"\s+(?<!\\)\|\s+", line.strip()[2:-2])
            assert len(cells) == 2, f"{DOC}: a row needs 2 cells: {line}"
            rows.append(tuple(c.strip("`").replace("\\|", "|") for c in cells))
    assert rows, f"{DOC}: no rows under ## {section}"
    return rows


def matches(message, text):
    """The table's message (a prefix if it ends in "...") is in TEXT."""
    if message.endswith("..."):
        return message[:-3] in text
    return message in text


ENV_ROWS = table("Environment")
CLI_ROWS = table("smig (CLI)")


@pytest.mark.parametrize("assignment,message", ENV_ROWS,
                         ids=[a for a, _ in ENV_ROWS])
def test_security_bad_env(cluster, needs_plugins, assignment, message):
    """A rank started by srun --migrate with the variable set to the bad value
    fails in smig_register() and prints the table's message, instead of
    running on without migration."""
    c = cluster
    heat = os.path.join(c.build_dir, "contrib", "examples", "heat")
    r = c.run(f"salloc -N1 -n1 srun --mpi=pmix --migrate=manual -n1 "
              f"env {shlex.quote(assignment)} {heat} --iters 3 --report 1",
              timeout=90)
    out = r.stdout + r.stderr
    assert r.rc not in (0, None), f"the rank ran with {assignment}:\n{r}"
    assert matches(message, out), f"expected {message!r}:\n{r}"
    assert "heat: done" not in out, str(r)


@pytest.mark.parametrize("command,message", CLI_ROWS,
                         ids=[a for a, _ in CLI_ROWS])
def test_security_bad_cli(cluster, command, message):
    """The smig CLI refuses the bad arguments with the table's message on
    stderr and a non-zero exit status."""
    c = cluster
    tool = os.path.join(c.build_dir, "contrib", "tools", "smig")
    if not os.access(tool, os.X_OK):
        pytest.fail(f"{tool}: not built")
    args = command.split()[1:]
    r = c.run(" ".join([tool] + [shlex.quote(a) for a in args]), timeout=30)
    assert r.rc not in (0, None), str(r)
    assert matches(message, r.stderr), f"expected {message!r}:\n{r}"


def test_migrate_allocation_without_nodes(cluster, needs_plugins):
    """srun --migrate in an allocation known only by SLURM_JOB_ID (its node
    list not in the environment) fails at once with a non-zero status and
    says why, instead of running the step without migration."""
    c = cluster
    r = c.run("salloc -N1 -n1 env -u SLURM_JOB_NODELIST "
              "srun --mpi=pmix --migrate=manual -n1 echo ran-unprotected",
              timeout=90)
    out = r.stdout + r.stderr
    assert r.rc not in (0, None), f"srun --migrate ran:\n{r}"
    assert "ran-unprotected" not in out, str(r)
    assert re.search(r"^srun: error: migrate: --migrate needs the "
                     r"allocation's nodes: SLURM_JOB_ID=\d+ is set but "
                     r"SLURM_JOB_NODELIST is not \(an allocation known only "
                     r"by its id\); run srun --migrate inside the job's "
                     r"sbatch script or salloc shell$", out, re.M), str(r)
