"""Metrics the hot path adds as plain ints are exported exactly as per-request prometheus calls would be.

``Metrics.request_finished`` keeps finished requests in plain ``int``/``float``
tallies that a custom collector exports when the registry is collected (the
server's fast lane is why). This checks the exported samples against a model
of the per-request semantics, on generated records (odd values included) with
scrapes at arbitrary points, so the tallies can never lose, double or misfile
a count. It lives with the server tests because the server's hot path is
what the tallies exist for; ``tests/observability`` covers the metric
surface itself.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from icapdlp.observability import labels as L
from icapdlp.observability.events import TransactionRecord
from icapdlp.observability.metrics import DURATION_BUCKETS, Metrics
from icapdlp.report import ObjectReport
from icapdlp.transaction import TransactionReport

BOUNDS = (*DURATION_BUCKETS, math.inf)

durations = st.one_of(
    st.floats(min_value=0, max_value=200, allow_nan=False),
    st.sampled_from([0.0, 0.001, 0.0025, 120.0, 1e-9, -0.5, math.nan, math.inf, -math.inf, 0, 3, True, None, "1"]),
    st.sampled_from(DURATION_BUCKETS),  # exactly on a bound: "le" includes it
)
records = st.builds(
    TransactionRecord,
    icap_method=st.sampled_from(["REQMOD", "RESPMOD", "OPTIONS", "OTHER", "SPAM", None]),
    icap_status=st.sampled_from([204, 200, 206, 400, 404, 503, 299, 0, "204", True, None]),
    outcome=st.sampled_from(["no-change", "rewritten", "blocked", "error", "sideways"]),
    duration_seconds=durations,
    bytes_in=st.sampled_from([0, 1, 1024, 10**9, -5, True, 2.5, None]),
    bytes_out=st.sampled_from([0, 7, -1, False]),
    report=st.sampled_from([None, "empty", "found"]),
)


def _report(kind):
    if kind == "empty":
        return TransactionReport()
    if kind == "found":
        return TransactionReport(objects_by_wrapping={"raw": 1}, totals=ObjectReport(uids_replaced=2))
    return None


class Model:
    """What per-request prometheus calls would have exported."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.responses: dict[str, int] = {}
        self.buckets: dict[tuple[str, int], int] = {}
        self.seconds = dict.fromkeys(L.ICAP_METHODS, 0.0)
        self.bytes_in = self.bytes_out = 0
        self.running = 0

    def finish(self, r: TransactionRecord) -> None:
        self.running = max(0, self.running - 1)
        method = r.icap_method if r.icap_method in L.ICAP_METHODS else "OTHER"
        outcome = r.outcome if r.outcome in L.OUTCOMES else "error"
        self.requests[(method, outcome)] = self.requests.get((method, outcome), 0) + 1
        status = str(r.icap_status) if type(r.icap_status) is int and str(r.icap_status) in L.ICAP_STATUSES else "other"
        self.responses[status] = self.responses.get(status, 0) + 1
        d = r.duration_seconds
        if isinstance(d, (int, float)) and math.isfinite(d) and d >= 0:
            index = next(i for i, bound in enumerate(BOUNDS) if d <= bound)
            self.buckets[(method, index)] = self.buckets.get((method, index), 0) + 1
            self.seconds[method] += float(d)
        for name in ("bytes_in", "bytes_out"):
            value = getattr(r, name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                setattr(self, name, getattr(self, name) + value)


def _check(metrics: Metrics, model: Model) -> None:
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in metrics.registry.collect() for s in family.samples}  # one collection: one fold

    def get(name: str, labels: dict | None = None) -> float | None:
        return samples.get((name, tuple(sorted((labels or {}).items()))))

    for method in L.ICAP_METHODS:
        for outcome in L.OUTCOMES:
            assert get("icapdlp_requests_total", {"method": method, "outcome": outcome}) == \
                model.requests.get((method, outcome), 0)
        cumulative = 0
        for index, bound in enumerate(BOUNDS):
            cumulative += model.buckets.get((method, index), 0)
            le = "+Inf" if bound == math.inf else repr(float(bound))
            assert get("icapdlp_request_duration_seconds_bucket", {"method": method, "le": le}) == cumulative
        assert get("icapdlp_request_duration_seconds_count", {"method": method}) == cumulative
        assert math.isclose(get("icapdlp_request_duration_seconds_sum", {"method": method}),
                            model.seconds[method], rel_tol=1e-9, abs_tol=1e-9)
    for status in L.ICAP_STATUSES:
        assert get("icapdlp_icap_responses_total", {"status": status}) == model.responses.get(status, 0)
    assert get("icapdlp_body_bytes_total", {"direction": "in"}) == model.bytes_in
    assert get("icapdlp_body_bytes_total", {"direction": "out"}) == model.bytes_out
    assert get("icapdlp_requests_in_flight") == model.running


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.one_of(records, st.just("scrape"), st.just("start")), max_size=60))
def test_folded_counts_equal_per_request_counting_whatever_the_scrape_timing(steps):
    metrics = Metrics(CollectorRegistry(), process_collector=False)
    model = Model()
    for step in steps:
        if step == "scrape":
            _check(metrics, model)
        elif step == "start":
            metrics.request_started()
            model.running += 1
        else:
            step.report = _report(step.report)
            metrics.request_finished(step)
            model.finish(step)
    _check(metrics, model)
    _check(metrics, model)  # a second scrape adds nothing


def test_a_text_scrape_folds_too_and_reports_found_by_the_adapter_are_still_counted():
    metrics = Metrics(CollectorRegistry(), process_collector=False)
    for _ in range(3):
        metrics.request_started()
        metrics.request_finished(TransactionRecord("REQMOD", 204, "no-change", 0.0004, bytes_in=10,
                                                   report=TransactionReport()))
    metrics.request_finished(TransactionRecord(
        "RESPMOD", 200, "rewritten", 0.2, report=TransactionReport(objects_by_wrapping={"zip": 2},
                                                                   totals=ObjectReport(uids_replaced=5))))
    text = generate_latest(metrics.registry).decode()
    assert 'icapdlp_requests_total{method="REQMOD",outcome="no-change"} 3.0' in text
    assert 'icapdlp_request_duration_seconds_bucket{le="0.001",method="REQMOD"} 3.0' in text
    assert 'icapdlp_body_bytes_total{direction="in"} 30.0' in text
    assert 'icapdlp_dicom_objects_total{verdict="rewritten",wrapping="zip"} 2.0' in text
    assert "icapdlp_uids_replaced_total 5.0" in text
