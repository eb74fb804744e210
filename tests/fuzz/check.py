"""One call for a test: run a target on one input under the harness and fail on a finding."""

from __future__ import annotations

from tests.fuzz.harness import Outcome, assert_invariant, peak_bound, run_case
from tests.fuzz.targets import TARGETS


def check(target_name: str, data: bytes) -> Outcome:
    target = TARGETS[target_name]
    outcome = run_case(lambda: target.run(data), target.allowed, max_peak_bytes=peak_bound(len(data)),
                       forbid_warnings=target.entry_point)
    assert_invariant(outcome, f"{target_name} on {len(data)} bytes")
    return outcome
