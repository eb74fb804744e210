"""The adversarial wrappings target, a short fixed run (the long one is benchmarks/fuzz/run.py).

Every generated body - an object with planted patient data nested at random in
containers, encodings and multipart framings - must come out blocked with a
reason, or with no planted value in anything a lenient receiver unpacks from it.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter

import pytest

from tests.fuzz.budget import SCALE
from tests.fuzz.wrappings import generate, outcome, receiver_views, surviving

#: cases in the CI run (ICAPDLP_FUZZ_SCALE multiplies it)
CASES = int(160 * SCALE)


def test_the_oracle_sees_the_planted_values_through_every_wrapping_a_receiver_undoes():
    rng = random.Random(20261202)
    blind = Counter()
    for _ in range(300):
        case = generate(rng)
        if not surviving(case.planted, receiver_views(case.body, case.content_type, case.codings)):
            blind[case.shape] += 1
            # only compressed or encoded bytes behind an arbitrary prefix hide from a receiver
            assert "prefix" in case.shape or "junk-framed" in case.shape, case.shape
    assert sum(blind.values()) < 0.1 * 300


@pytest.mark.slow
def test_wrapped_planted_values_are_blocked_or_removed():
    rng = random.Random(20261203)
    kinds: Counter[str] = Counter()
    leaks = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(CASES):
            case = generate(rng)
            kind, left = outcome(case)
            kinds[kind.split(":")[0]] += 1
            if kind == "phi-survived":
                leaks.append((case.shape, case.content_type, case.codings, len(left)))
    assert leaks == [], f"{len(leaks)} leaks, e.g. {leaks[:5]}"
    assert kinds["clean"] > kinds["blocked"] / 4, kinds  # most wrappings are undone, not refused
