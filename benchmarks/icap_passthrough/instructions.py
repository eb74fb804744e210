#!/usr/bin/env python3
"""Instructions per no-change request, under valgrind's callgrind: the stable measure.

Wall-clock numbers on a shared machine move by 2x between runs; instruction
counts do not. This runs ``inprocess.py`` (one connection, fake transport,
real adapter and observer) twice under callgrind, with ``--small`` and
``--large`` requests, and divides the difference by the extra requests, so
start-up and warm-up cancel out. ``--baseline DIR`` measures another
checkout (e.g. ``git worktree add /tmp/base main``) in the same run and
prints the two side by side.

Usage: .venv/bin/python benchmarks/icap_passthrough/instructions.py [--cases ab] [--baseline DIR]
Needs the Debian package ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = HERE.parents[1]


def total_instructions(tree: Path, case: str, n: int, extra: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                        str(tree / "benchmarks/icap_passthrough/inprocess.py"), "--case", case, "--n", str(n),
                        "--repeat", "1", *extra], check=True, env=env, capture_output=True)
        match = re.search(rb"^(?:summary|totals): (\d+)", out.read_bytes(), re.M)
        return int(match.group(1))


def per_request(tree: Path, case: str, small: int, large: int, extra: list[str]) -> float:
    """Thousands of instructions per request."""
    return (total_instructions(tree, case, large, extra) - total_instructions(tree, case, small, extra)) \
        / (large - small) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="ab")
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=12000)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--adapter", choices=("auto", "passthrough"), default="auto")
    parser.add_argument("--observer", choices=("real", "null"), default="real")
    args = parser.parse_args()
    extra = ["--adapter", args.adapter, "--observer", args.observer]
    trees = [("this tree", TREE)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    print(f"k instructions per request (callgrind; adapter={args.adapter}, observer={args.observer})")
    print("case  " + "  ".join(f"{name:>12}" for name, _ in trees))
    for case in args.cases:
        cells = [per_request(tree, case, args.small, args.large, extra) for _, tree in trees]
        print(f"{case:4}  " + "  ".join(f"{cell:12.1f}" for cell in cells))


if __name__ == "__main__":
    main()
