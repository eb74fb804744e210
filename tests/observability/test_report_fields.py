"""ObjectReport owns its field list; merging, the audit line and the metrics follow it.

Issue 15: the field list was written three times (the dataclass, ``merge_into``
and the metrics' "is there anything to count" test), so a new field could be
merged but never exported, or exported but never merged. Now ``report.py``
classifies every field by kind and the others derive from that; these tests
set each field alone and require every consumer to see it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from icapdlp import report as R
from icapdlp.observability import labels as L
from icapdlp.observability.audit import AUDITED, audit_entry
from icapdlp.observability.metrics import Metrics
from icapdlp.report import ObjectReport
from icapdlp.transaction import TransactionReport
from tests.observability import records

NAMES = [f.name for f in fields(ObjectReport)]


def _only(name: str) -> ObjectReport:
    """A report with only ``name`` set (a counter gets a key its closed set allows)."""
    report = ObjectReport()
    if name in (*R.COUNTERS, *R.TIMINGS):
        label = next(v for v in L.REPORT_LABELS[name] if v != L.OTHER)
        getattr(report, name)[label] = 0.25 if name in R.TIMINGS else 2
    elif name in R.COUNTS:
        setattr(report, name, 2)
    elif name in R.FLAGS:
        setattr(report, name, True)
    else:
        setattr(report, name, "ab" * 8)
    return report


def test_every_field_has_exactly_one_kind():
    kinds = [*R.COUNTERS, *R.TIMINGS, *R.COUNTS, *R.FLAGS, *R.REFS]
    assert sorted(kinds) == sorted(NAMES)


def test_every_keyed_field_has_a_closed_label_set():
    assert set(L.REPORT_LABELS) == {*R.COUNTERS, *R.TIMINGS}


@pytest.mark.parametrize("name", NAMES)
def test_merging_carries_every_counted_field_and_no_reference(name):
    total = ObjectReport()
    _only(name).merge_into(total)
    _only(name).merge_into(total)
    value = getattr(total, name)
    if name in (*R.COUNTERS, *R.TIMINGS):
        assert sum(value.values()) == 2 * sum(getattr(_only(name), name).values())
    elif name in R.COUNTS:
        assert value == 4
    elif name in R.FLAGS:
        assert value is True
    else:
        assert value == "" and name in R.REFS  # a reference belongs to one object, not to a total
    assert total.is_empty() is (name in R.REFS)


@pytest.mark.parametrize("name", [n for n in NAMES if n in (*R.COUNTERS, *R.COUNTS)])
def test_the_audit_line_carries_every_count_field(name):
    def entry(totals: ObjectReport) -> dict:
        report = TransactionReport(objects_by_wrapping={"raw": 1}, totals=totals, wrapping="raw")
        line = audit_entry(records.record(report=report), {"deid-req"}, now=lambda: 0.0)
        return {k: v for k, v in line.items() if k != "duration_ms"}

    assert name in AUDITED
    assert entry(_only(name)) != entry(ObjectReport())


@pytest.mark.parametrize("name", [n for n in NAMES if n in (*R.COUNTERS, *R.TIMINGS, *R.COUNTS)])
def test_the_metrics_count_every_counted_field(name):
    def scrape(totals: ObjectReport) -> bytes:
        metrics = Metrics(CollectorRegistry(), process_collector=False)
        metrics.request_finished(records.record(report=TransactionReport(totals=totals)))
        return generate_latest(metrics.registry)

    assert scrape(_only(name)) != scrape(ObjectReport())


def test_counter_fields_are_counters():
    assert all(isinstance(getattr(ObjectReport(), n), Counter) for n in (*R.COUNTERS, *R.TIMINGS))
