#!/usr/bin/env python3
"""OPEN: base64 or a container glued behind prose made only of base64-alphabet characters.

Found by the wrappings target (seed 20261202, 6 of 3,931 cases, 3 fixed since;
seed 20261203, 4 of 2,661 cases). The body is lower-case words and spaces
(every character valid base64) followed, with no separator, by base64 of a
DICOM object, or by a tar or multipart body holding one. The text scanner reads the prose
and the block as one run and decodes it misaligned (garbage), so the object is
never seen; a reader that decodes the block line by line (each 76-character
line is 57 aligned bytes) gets the planted values back in fragments.
Prints REPRODUCED and exits 1 while the planted values survive unblocked.

    .venv/bin/python benchmarks/fuzz/findings/base64_behind_alphabet_prose.py
"""

from __future__ import annotations

import random
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.fuzz.wrappings import generate, outcome  # noqa: E402


#: case seeds of the wrappings target that show it (signatures prefix>base64>...)
CASE_SEEDS = (1201100439, 2093562481, 2720585508, 4018026641, 3880723797, 3941182921,
              359621848, 2125603988, 2799377238, 2624205567)


def main() -> int:
    warnings.simplefilter("ignore")
    leaks = 0
    for seed in CASE_SEEDS:
        case = generate(random.Random(seed))
        kind, left = outcome(case)
        print(f"case {seed} ({case.shape}): {kind}, {len(left)} planted values readable")
        leaks += kind == "phi-survived"
    if leaks:
        print(f"REPRODUCED in {leaks} of {len(CASE_SEEDS)} cases")
        return 1
    print("fixed: every case is blocked or clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
