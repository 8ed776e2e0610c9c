#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""harness-verdict.py - what the cluster tests' retry rule
(testsuite/python/lib/cluster.py: mpi_start_failure) says about failed
launches: for each FILE (the output of one failed srun, stdout and stderr
together), one line "FILE retry" with the evidence's last line, or
"FILE no-retry: why". Used by ompi-init-segv.sh; also by hand."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "python"))
from lib import cluster as cl  # noqa: E402


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(f"usage: {argv[0]} OUTPUT...", file=sys.stderr)
        return 2
    for path in argv[1:]:
        with open(path, errors="replace") as f:
            text = f.read()
        result = cl.Result(command=path, rc=1, stdout=text, stderr="",
                           seconds=0, timed_out=False)
        evidence, why_not = cl.mpi_start_failure(result, None, ranks=6)
        if evidence:
            print(f"{path} retry: {evidence.splitlines()[-1]}")
        else:
            print(f"{path} no-retry: {why_not}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
