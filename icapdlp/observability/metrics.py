"""Prometheus metrics, on a registry passed in.

Everything is registered on the :class:`CollectorRegistry` the caller gives,
never the global one, so tests use a fresh registry and two servers in one
process do not collide. Label values come only from :mod:`labels` and every
combination is created up front, so a dashboard shows zeros from the first
scrape instead of "no data".

Worker processes never touch these objects. They return an ``ObjectReport``
with their counts; the main process hands the finished transaction here once.
That is the whole multi-process story: one registry, one writer, no
``multiprocess`` directory, nothing lost or counted twice.

The hot path (an OPTIONS or a 204 for non-DICOM traffic) costs a handful of
dictionary look-ups of pre-bound children, so observability does not eat the
wire-speed budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from icapdlp import __version__
from icapdlp.observability import labels as L
from icapdlp.observability.events import TransactionRecord

#: 1 ms (an OPTIONS or 204 on loopback) up to 2 min (a large multi-frame study
#: through OCR and NER, just under the default 120 s worker deadline)
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)

#: build-info label values are checked, not trusted: a table edition looks like
#: "2024b", a policy digest is hex, a version is a PEP 440-ish token
_EDITION = re.compile(r"^[0-9]{4}[a-e]$")
_DIGEST = re.compile(r"^[0-9a-f]{8,64}$")
_VERSION = re.compile(r"^[0-9A-Za-z.+_-]{1,40}$")
UNKNOWN = "unknown"


class Metrics:
    """All icapdlp metrics, and the one method that turns a finished transaction into them."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        version: str = __version__,
        table_edition: str = UNKNOWN,
        policy_digest: str = UNKNOWN,
        process_collector: bool = True,
    ) -> None:
        self.registry = registry
        r = registry

        self.requests = Counter(
            "icapdlp_requests", "ICAP requests finished, by ICAP method and outcome.",
            ["method", "outcome"], registry=r)
        self.responses = Counter(
            "icapdlp_icap_responses", "ICAP responses sent, by status code.", ["status"], registry=r)
        self.request_duration = Histogram(
            "icapdlp_request_duration_seconds", "Time from ICAP request head to the last response byte.",
            ["method"], buckets=DURATION_BUCKETS, registry=r)
        self.stage_duration = Histogram(
            "icapdlp_stage_duration_seconds",
            "Time one transaction spent in a pipeline stage (summed over its DICOM objects).",
            ["stage"], buckets=DURATION_BUCKETS, registry=r)
        self.body_bytes = Counter(
            "icapdlp_body_bytes", "Encapsulated HTTP body bytes received (in) and sent (out).",
            ["direction"], registry=r)
        self.objects = Counter(
            "icapdlp_dicom_objects", "DICOM objects seen, by how they travelled and the transaction verdict.",
            ["wrapping", "verdict"], registry=r)
        self.actions = Counter(
            "icapdlp_deid_actions", "De-identification actions applied to attributes, by PS3.15 action code.",
            ["action"], registry=r)
        self.uids_replaced = Counter(
            "icapdlp_uids_replaced", "UIDs replaced with keyed replacements.", registry=r)
        self.boxes = Counter(
            "icapdlp_redaction_boxes", "Burned-in text regions redacted, by what found them.",
            ["source"], registry=r)
        self.frames = Counter(
            "icapdlp_frames", "Image frames run through OCR or skipped by policy.", ["handling"], registry=r)
        self.blocks = Counter(
            "icapdlp_blocks", "Messages refused, by block reason.", ["reason"], registry=r)
        self.cdr_findings = Counter(
            "icapdlp_cdr_findings", "Findings of the clean rebuild (content disarm), by kind.",
            ["kind"], registry=r)
        self.connections = Counter(
            "icapdlp_connections", "ICAP connections accepted.", registry=r)
        self.audit_errors = Counter(
            "icapdlp_audit_errors", "Audit lines lost (the write failed or the record was malformed).",
            registry=r)
        self.observer_errors = Counter(
            "icapdlp_observer_errors", "Transactions whose metrics or audit line failed to record (a bug).",
            registry=r)

        self.in_flight = Gauge(
            "icapdlp_requests_in_flight", "ICAP requests being processed.", registry=r)
        self.open_connections = Gauge(
            "icapdlp_connections_open", "ICAP connections currently open.", registry=r)
        self.queue_depth = Gauge(
            "icapdlp_worker_queue_depth", "Tasks waiting for a worker process.", registry=r)
        self.queue_limit = Gauge(
            "icapdlp_worker_queue_limit", "Queue depth at which new work is refused (workers.max_queue).",
            registry=r)
        self.workers = Gauge(
            "icapdlp_workers", "Worker processes configured.", registry=r)
        self.workers_busy = Gauge(
            "icapdlp_workers_busy", "Worker processes running a task.", registry=r)
        self.build_info = Gauge(
            "icapdlp_build_info", "Always 1; labels name the version, PS3.15 table edition and policy digest.",
            ["version", "table_edition", "policy_digest"], registry=r)
        if process_collector:
            ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu, fds

        self._init_children()
        self.build_info.labels(
            version=_checked(version, _VERSION),
            table_edition=_checked(table_edition, _EDITION),
            policy_digest=_checked(policy_digest, _DIGEST)[:16],
        ).set(1)
        self.set_queue_depth_source(None)
        self.set_workers_busy_source(None)
        self._open = 0
        self._running = 0

    def _init_children(self) -> None:
        """Create every labelled child now: zeros on dashboards, and cheap look-ups later."""
        self._requests = {k: self.requests.labels(*k) for k in L.all_values(L.ICAP_METHODS, L.OUTCOMES)}
        self._responses = {s: self.responses.labels(s) for s in L.ICAP_STATUSES}
        self._status = {int(s): child for s, child in self._responses.items() if s.isdigit()}
        self._duration = {m: self.request_duration.labels(m) for m in L.ICAP_METHODS}
        self._stage = {s: self.stage_duration.labels(s) for s in L.STAGES}
        self._bytes_in = self.body_bytes.labels("in")
        self._bytes_out = self.body_bytes.labels("out")
        self._objects = {k: self.objects.labels(*k) for k in L.all_values(L.WRAPPINGS, L.OUTCOMES)}
        self._actions = {a: self.actions.labels(a) for a in L.ACTION_CODES}
        self._boxes = {s: self.boxes.labels(s) for s in L.BOX_SOURCES}
        self._frames_ocr = self.frames.labels("ocr")
        self._frames_skipped = self.frames.labels("skipped")
        self._blocks = {r: self.blocks.labels(r) for r in L.BLOCK_REASONS}
        self._cdr = {k: self.cdr_findings.labels(k) for k in L.CDR_FINDING_KINDS}

    # -- gauges fed by the application -------------------------------------------------

    def set_queue_depth_source(self, source: Callable[[], float] | None) -> None:
        """Read the worker queue depth from ``source`` at every scrape (``None``: 0)."""
        self.queue_depth.set_function(_safe_source(source))

    def set_workers_busy_source(self, source: Callable[[], float] | None) -> None:
        """Read the number of busy workers from ``source`` at every scrape (``None``: 0)."""
        self.workers_busy.set_function(_safe_source(source))

    def set_worker_capacity(self, processes: int, max_queue: int) -> None:
        self.workers.set(processes)
        self.queue_limit.set(max_queue)

    # -- events ------------------------------------------------------------------------

    def connection_opened(self) -> None:
        self._open += 1
        self.open_connections.set(self._open)
        self.connections.inc()

    def connection_closed(self) -> None:
        self._open = max(0, self._open - 1)  # a stray close must not drive the gauge negative
        self.open_connections.set(self._open)

    def request_started(self) -> None:
        self._running += 1
        self.in_flight.set(self._running)

    def request_finished(self, record: TransactionRecord) -> None:
        """Count one finished transaction: the request, its bytes, and its report's totals."""
        self._running = max(0, self._running - 1)
        self.in_flight.set(self._running)

        method = record.icap_method
        if method not in self._duration:
            method = "OTHER"
        outcome = record.outcome
        if outcome not in L.OUTCOME_SET:
            outcome = "error"  # an outcome outside the contract is a server bug: count it as one
        self._requests[(method, outcome)].inc()
        status = record.icap_status
        child = self._status.get(status) if type(status) is int else None
        (self._responses[L.OTHER] if child is None else child).inc()
        duration = record.duration_seconds
        if isinstance(duration, (int, float)) and math.isfinite(duration) and duration >= 0:
            self._duration[method].observe(duration)
        if _count(record.bytes_in):
            self._bytes_in.inc(record.bytes_in)
        if _count(record.bytes_out):
            self._bytes_out.inc(record.bytes_out)
        if outcome == "blocked":
            self._blocks[block_label(record.reason)].inc()
        if record.report is not None:
            self._count_report(record.report, outcome)

    def _count_report(self, report, outcome: str) -> None:
        for wrapping, n in L.fold_counts(report.objects_by_wrapping, L.WRAPPINGS).items():
            self._objects[(wrapping, outcome)].inc(n)
        totals = report.totals
        if totals is None:
            return
        for code, n in L.fold_counts(totals.actions, L.ACTION_CODES).items():
            self._actions[code].inc(n)
        if _count(totals.uids_replaced):
            self.uids_replaced.inc(totals.uids_replaced)
        for source, n in L.fold_counts(totals.boxes_by_source, L.BOX_SOURCES).items():
            self._boxes[source].inc(n)
        if _count(totals.frames_ocr):
            self._frames_ocr.inc(totals.frames_ocr)
        if _count(totals.frames_skipped):
            self._frames_skipped.inc(totals.frames_skipped)
        for kind, n in L.fold_counts(totals.cdr_findings, L.CDR_FINDING_KINDS).items():
            self._cdr[kind].inc(n)
        for stage, seconds in L.fold_seconds(totals.stage_seconds, L.STAGES).items():
            self._stage[stage].observe(seconds)


def block_label(reason: object) -> str:
    """The reason label of a block; a block without a valid reason is a server bug, still a block."""
    value = getattr(reason, "value", None)
    return value if isinstance(value, str) and value in L.BLOCK_REASONS else "internal-error"


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _checked(value: object, pattern: re.Pattern[str]) -> str:
    return value if isinstance(value, str) and pattern.match(value) else UNKNOWN


def _safe_source(source: Callable[[], float] | None) -> Callable[[], float]:
    """Wrap an application callback so a failing one shows as NaN, never breaks a scrape."""
    if source is None:
        return lambda: 0.0

    def read() -> float:
        try:
            return float(source())
        except Exception:  # noqa: BLE001 - a scrape must not fail because a pool is shutting down
            return math.nan

    return read
