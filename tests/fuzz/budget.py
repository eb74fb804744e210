"""Hypothesis settings for the fuzz area.

CI runs a fixed, derandomized budget so a red build is reproducible; set
``ICAPDLP_FUZZ_SCALE`` (a multiplier, e.g. 10) for a bigger local run with
fresh random examples. The long campaign is ``benchmarks/fuzz/run.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("ICAPDLP_FUZZ_SCALE", "1"))

_BASE = settings(
    deadline=None,  # each case runs under harness.run_case's own per-case deadline
    derandomize=SCALE == 1,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def fuzz_settings(n: int) -> settings:
    """Settings for one fuzz test: the CI example budget ``n`` scaled by ICAPDLP_FUZZ_SCALE.

    Applied per test (not as a global profile) so other areas' hypothesis tests are untouched.
    """
    return settings(_BASE, max_examples=max(1, int(n * SCALE)))
