#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check_figures.py - every figure of bench/README.md is in the results file
it names

Usage: check_figures.py [README [RESULTS_DIR]]
(default: bench/README.md and bench/results/ beside this script).

The README is cut into blocks at blank lines. Every block that holds a
number must name the results file(s) it quotes, as bench/results/NAME.txt,
and every number in it must be printed in one of the files it names: the
same digits, as a whole number ("1.0" is not found in "11.05", "165" not in
"1650"), commas between thousands ignored, a leading sign ignored ("+0.29"
is found as "0.29" or "+0.29"). What is not a measurement must be marked so
that a reader sees why:

  * inside a `code span` (settings, commands, options: `--rounds 3`);
  * matched by one of the few patterns of ALLOWED below (each says why);
  * the table of benchmarks whose header row is "| target | what | goal |":
    it says what each bench runs and its goal, settings and goals only.

A table (lines starting with "|") quotes the files named by the paragraph
right before it, which introduces it. Commit hashes (7 to 40 hex digits with
a letter) name trees, not figures, and are not numbers here. A name like
"node2" or "XXH3" is a name: a number must not follow a letter or a dot.

Each figure not found is printed with its block's line and start; the exit
status is 1 if any is missing, a block with figures names no file, or a
named file does not exist. Python 3, standard library only; it only reads.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# A number: digits, thousands with commas or not, and any ".digits" parts
# (a version or an address like 4.2.2 is one token, compared whole). It
# must not follow a letter, digit, "_" or "." (node2, XXH3, .5 of 4.5)
# nor run into a digit or "," + digit (then it is a longer number).
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)*(?![\d])")
# A commit hash (tree f5cba50, a checksum 6c67df5ca1ecc9d6): not a number.
HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")
CODE = re.compile(r"`[^`]*`")
CITED = re.compile(r"bench/results/([\w.-]+\.txt)")
TARGETS_HEADER = re.compile(r"^\|\s*target\s*\|\s*what\s*\|\s*goal\s*\|")

# Numbers that are not measurements, each with why. Keep this short: a
# setting or a command belongs in a `code span` instead.
ALLOWED = [
    # The project's issue numbers ("issue 16").
    (re.compile(r"\bissues? \d+"), "an issue number"),
    # Enumerations in prose: "(1) ... (2) ...".
    (re.compile(r"\(\d\)"), "an enumeration"),
    # Slurm releases named in prose ("On Slurm 24.11").
    (re.compile(r"\bSlurm \d\d\.\d\d\b"), "a Slurm release"),
    # The cores of the machine every bench ran on ("the 2 cores",
    # "2-core"); each file prints its host's cores in its head.
    (re.compile(r"\b2(?: shared|-core| cores)\b"), "the host's cores"),
]


def tokens(text):
    """Numbers of TEXT as compared: sign dropped, commas dropped."""
    # "11.39..12.53" is a range: two numbers (positions kept).
    text = HASH.sub(" ", text).replace("..", "  ")
    return [(m.start(), m.group(0)) for m in NUMBER.finditer(text)]


def norm(tok):
    return tok.lstrip("+-").replace(",", "")


def blocks(text):
    """(first line number, text) of each block between blank lines."""
    out, cur, start = [], [], 0
    for i, line in enumerate(text.split("\n"), 1):
        if line.strip():
            if not cur:
                start = i
            cur.append(line)
        elif cur:
            out.append((start, "\n".join(cur)))
            cur = []
    if cur:
        out.append((start, "\n".join(cur)))
    return out


def blank(text, regex):
    """TEXT with what REGEX matches replaced by spaces (positions kept)."""
    return regex.sub(lambda m: " " * len(m.group(0)), text)


def check(readme, results):
    with open(readme) as f:
        text = f.read()
    have = {}
    for name in sorted(os.listdir(results)):
        if name.endswith(".txt"):
            with open(os.path.join(results, name)) as f:
                have[name] = {norm(t) for _, t in tokens(f.read())}
    problems = figures = 0
    name = os.path.relpath(readme, os.path.dirname(HERE))
    prev_cited = []
    for line, block in blocks(text):
        is_table = block.startswith("|")
        if is_table and TARGETS_HEADER.match(block):
            continue
        cited = CITED.findall(block)
        if is_table and not cited:
            cited = prev_cited
        if not is_table:
            prev_cited = cited
        bare = blank(block, CODE)
        for regex, _why in ALLOWED:
            bare = blank(bare, regex)
        nums = tokens(bare)
        head = f"{name}:{line}: {block.splitlines()[0][:72]!r}"
        unknown = [c for c in cited if c not in have]
        if unknown and not (is_table and cited is prev_cited):
            print(f"{head}\n  names a file that does not exist: "
                  + ", ".join(f"bench/results/{c}" for c in unknown))
            problems += len(unknown)
        if not nums:
            continue
        if not cited:
            print(f"{head}\n  quotes {len(nums)} figures but names no results "
                  f"file (bench/results/NAME.txt): "
                  + ", ".join(t for _, t in nums))
            problems += len(nums)
            continue
        pool = set().union(*(have.get(c, set()) for c in cited))
        missing = []
        for pos, tok in nums:
            figures += 1
            if norm(tok) not in pool:
                lno = line + bare.count("\n", 0, pos)
                ctx = " ".join(bare[max(0, pos - 30):pos + len(tok) + 20].split())
                missing.append(f"{tok} (line {lno}: ...{ctx}...)")
        if missing:
            print(f"{head}\n  not in {', '.join(cited)}:")
            for m in missing:
                print(f"    {m}")
            problems += len(missing)
    if problems:
        print(f"bench-check: {problems} figures of {name} not backed by the "
              f"results files they name")
        return 1
    print(f"bench-check: {figures} figures of {name}, each found in the "
          f"results file its paragraph names")
    return 0


def main(argv):
    if len(argv) > 3 or any(a.startswith("-") for a in argv[1:]):
        sys.exit(__doc__.split("\n\n")[1])
    readme = argv[1] if len(argv) > 1 else os.path.join(HERE, "README.md")
    results = argv[2] if len(argv) > 2 else os.path.join(HERE, "results")
    return check(readme, results)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
