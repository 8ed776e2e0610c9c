# SPDX-License-Identifier: GPL-2.0-or-later
"""heat.py - what the tests read from contrib/examples/heat and its output

The example prints one line per rank when it starts or restores
("heat: rank R node NODE start|restored iter I") and rank 0 prints the
checksum of the final grid ("heat: done iters=N checksum=HEX").
"""

import os
import re

START_RE = r"^heat: rank (\d+) node (\S+) (start|restored) iter (\d+)$"
DONE_RE = r"^heat: done iters=(\d+) checksum=([0-9a-f]{16})$"


def heat_path(c):
    """Path of the heat example of the cluster's build."""
    path = os.path.join(c.build_dir, "contrib", "examples", "heat")
    assert os.access(path, os.X_OK), f"{path}: build the example first"
    return path


def read(path):
    """Text of a file, "" while it does not exist yet (job output)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def starts(text):
    """[(rank, node, "start"|"restored", iter)] of the lines printed so far."""
    return [(int(r), n, k, int(i)) for r, n, k, i in re.findall(START_RE, text, re.M)]
