"""Damaged DICOM in every wrapping, through the real pipeline: a result or a Blocked, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icapdlp.adaptation import worker_tasks
from icapdlp.adaptation.factory import policy
from icapdlp.verdict import BlockReason, Blocked
from tests.adaptation.helpers import KEY, make_settings
from tests.adaptation.wrappings import WRAPPINGS

#: pydicom's warnings quote element values (PHI): any that escapes the worker code fails the test
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

POLICY = policy(make_settings(), KEY)
SAMPLES = {name: build(80) for name, build in WRAPPINGS.items()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SAMPLES)), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)),
                                                  min_size=1, max_size=8), st.booleans())
def test_mutated_bodies_are_rewritten_or_blocked(name, flips, truncate):
    content_type, extra, body, _ = SAMPLES[name]
    data = bytearray(body)
    for position, value in flips:
        data[position % len(data)] = value
    if truncate:
        data = data[: flips[0][0] % len(data)]
    try:
        result = worker_tasks.rewrite_body(POLICY, "deid-req", "request", content_type,
                                           [v for k, v in extra if k == "Content-Encoding"], bytes(data), None)
    except Blocked as blocked:
        assert blocked.reason in BlockReason
    else:
        assert result.changed or result.data is None
