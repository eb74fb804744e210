"""Builders of synthetic transactions and reports for the observability tests.

Reports are made the way the pipeline makes them: per-object ``ObjectReport``
values (possibly in worker processes) merged into a ``TransactionReport``.
Everything is synthetic and deterministic from a seed.
"""

from __future__ import annotations

import random
from collections import Counter

from icapdlp.observability.events import TransactionRecord
from icapdlp.report import ObjectReport
from icapdlp.transaction import Transaction, TransactionReport
from icapdlp.verdict import BlockReason

ACTIONS = ("D", "Z", "X", "K", "C", "U", "U*")
FINDINGS = ("preamble-executable", "trailing-bytes", "overlay-removed")
SOURCES = ("header-match", "ner", "all-text")
STAGES = ("parse", "deid", "ocr", "ner", "encode")


def transaction(tx_id: str = "tx0001", service: str = "deid-req", method: str = "REQMOD", **kw) -> Transaction:
    fields = dict(request=None, response=None, has_body=True, allow_204=True, allow_206=False, preview_size=4096)
    fields.update(kw)
    return Transaction(id=tx_id, service=service, icap_method=method, **fields)


def object_report(seed: int) -> ObjectReport:
    """What one de-identified object might report; a pure function of ``seed``."""
    rng = random.Random(seed)
    report = ObjectReport()
    for code in ACTIONS:
        report.actions[code] = rng.randint(0, 40)
    report.uids_replaced = rng.randint(1, 9)
    for kind in FINDINGS:
        if rng.random() < 0.3:
            report.cdr_findings[kind] += 1
    for source in SOURCES:
        report.boxes_by_source[source] = rng.randint(0, 3)
    report.frames_ocr = rng.randint(0, 5)
    report.frames_skipped = rng.randint(0, 2)
    for stage in STAGES:
        report.stage_seconds[stage] = rng.random() / 10
    report.study_ref = f"{rng.getrandbits(128):032x}"
    report.instance_ref = f"{rng.getrandbits(128):032x}"
    return report


def merged(object_reports: list[ObjectReport], wrapping: str = "raw") -> TransactionReport:
    """A transaction report over ``object_reports``, as the payload layer builds it."""
    report = TransactionReport(wrapping=wrapping)
    report.objects_by_wrapping[wrapping] = len(object_reports)
    for one in object_reports:
        one.merge_into(report.totals)
        report.study_refs.append(one.study_ref)
        report.instance_refs.append(one.instance_ref)
    return report


def record(method: str = "REQMOD", status: int = 200, outcome: str = "rewritten", *,
           duration: float = 0.01, bytes_in: int = 0, bytes_out: int = 0, tx: Transaction | None = None,
           reason: BlockReason | None = None, report: TransactionReport | None = None) -> TransactionRecord:
    if tx is None and method in ("REQMOD", "RESPMOD"):
        tx = transaction(method=method, service="deid-req" if method == "REQMOD" else "deid-resp")
    return TransactionRecord(icap_method=method, icap_status=status, outcome=outcome,
                             duration_seconds=duration, bytes_in=bytes_in, bytes_out=bytes_out,
                             tx=tx, reason=reason, report=report)


def sum_reports(reports: list[ObjectReport]) -> ObjectReport:
    """Independent expected totals (plain addition, not ``merge_into``)."""
    total = ObjectReport()
    for r in reports:
        total.actions += Counter(r.actions)
        total.uids_replaced += r.uids_replaced
        total.cdr_findings += Counter(r.cdr_findings)
        total.boxes_by_source += Counter(r.boxes_by_source)
        total.frames_ocr += r.frames_ocr
        total.frames_skipped += r.frames_skipped
    return total
