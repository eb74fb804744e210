"""The label sets of findings, stages, block reasons and wrappings are their enums.

Issue 15: the finding kinds and stages were loose strings with a second,
hand-written list of label values beside them. The metric label sets now
derive from the enums (``icapdlp.report``, ``icapdlp.verdict``): every member
is a series at zero in the first scrape, and nothing else can become one of
these labels, whatever a report contains.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from icapdlp.observability import labels as L
from icapdlp.observability.metrics import Metrics
from icapdlp.report import INFLATED, CdrFinding, Container, ObjectReport, Stage, wrapping
from icapdlp.transaction import TransactionReport
from icapdlp.verdict import BlockReason
from tests.observability import records as R

#: every wrapping label an object can be counted under, built from the Container enum alone
ENUM_WRAPPINGS = {wrapping(c, inflated) for c in Container for inflated in (False, True)}
#: sample name, label, the values the enum allows
ENUM_LABELS = [
    ("icapdlp_cdr_findings_total", "kind", {k.value for k in CdrFinding}),
    ("icapdlp_stage_duration_seconds_count", "stage", {s.value for s in Stage}),
    ("icapdlp_blocks_total", "reason", {r.value for r in BlockReason}),
    ("icapdlp_dicom_objects_total", "wrapping", ENUM_WRAPPINGS),
]


def _scrape(metrics: Metrics) -> dict[tuple[str, str], dict[str, float]]:
    """(sample name, label) -> {label value: summed value}, parsed from the text exposition."""
    seen: dict[tuple[str, str], dict[str, float]] = {}
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, label, _ in ENUM_LABELS:
                if sample.name == name:
                    values = seen.setdefault((name, label), {})
                    key = sample.labels[label]
                    values[key] = values.get(key, 0.0) + sample.value
    return seen


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), process_collector=False)


def test_the_label_sets_are_the_enums_plus_the_catch_all():
    assert set(L.CDR_FINDING_KINDS) == {k.value for k in CdrFinding} | {L.OTHER}
    assert set(L.STAGES) == {s.value for s in Stage} | {L.OTHER}
    assert set(L.BLOCK_REASONS) == {r.value for r in BlockReason}
    assert set(L.WRAPPINGS) == ENUM_WRAPPINGS | {L.OTHER}
    assert all(w.startswith(INFLATED) or w in {c.value for c in Container} for w in ENUM_WRAPPINGS)


@pytest.mark.parametrize("name,label,allowed", ENUM_LABELS, ids=[e[1] for e in ENUM_LABELS])
def test_every_enum_member_is_a_series_at_zero_in_the_first_scrape(metrics, name, label, allowed):
    values = _scrape(metrics)[(name, label)]
    assert set(values) == allowed
    assert all(v == 0 for v in values.values())


def test_reports_keyed_by_enum_members_count_under_their_own_labels(metrics):
    totals = ObjectReport()
    for n, kind in enumerate(CdrFinding, 1):
        totals.cdr_findings[kind] += n
    for stage in Stage:
        totals.stage_seconds[stage] += 0.01
    objects = {label: 1 for label in ENUM_WRAPPINGS}
    metrics.request_finished(R.record(report=TransactionReport(objects_by_wrapping=objects, totals=totals)))
    for reason in BlockReason:
        metrics.request_finished(R.record(outcome="blocked", reason=reason))
    scraped = _scrape(metrics)
    assert scraped[("icapdlp_cdr_findings_total", "kind")] == {
        k.value: float(n) for n, k in enumerate(CdrFinding, 1)}
    assert scraped[("icapdlp_stage_duration_seconds_count", "stage")] == {s.value: 1.0 for s in Stage}
    assert scraped[("icapdlp_blocks_total", "reason")] == {r.value: 1.0 for r in BlockReason}
    assert scraped[("icapdlp_dicom_objects_total", "wrapping")] == {w: 1.0 for w in ENUM_WRAPPINGS}


def test_nothing_outside_the_enums_becomes_one_of_their_labels(metrics):
    totals = ObjectReport()
    totals.cdr_findings.update({"trailing-byte": 1, "PATIENT^NAME": 2, CdrFinding.TRAILING_BYTES: 1})
    totals.stage_seconds.update({"detect": 0.1, "Parse": 0.2})
    report = TransactionReport(objects_by_wrapping={"gzip>raw": 1, "rar": 1, "compressed>rar": 1},
                               totals=totals)
    metrics.request_finished(R.record(report=report))
    metrics.request_finished(R.record(outcome="blocked", reason="made-up-reason"))
    for name, label, allowed in ENUM_LABELS:
        values = _scrape(metrics)[(name, label)]
        assert set(values) <= allowed | {L.OTHER}, (name, set(values) - allowed)
    scraped = _scrape(metrics)
    assert scraped[("icapdlp_cdr_findings_total", "kind")][L.OTHER] == 3
    assert scraped[("icapdlp_cdr_findings_total", "kind")]["trailing-bytes"] == 1
    assert scraped[("icapdlp_stage_duration_seconds_count", "stage")][L.OTHER] == 1
    assert scraped[("icapdlp_dicom_objects_total", "wrapping")][L.OTHER] == 3
    assert scraped[("icapdlp_blocks_total", "reason")]["internal-error"] == 1
