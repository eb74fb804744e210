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

The hot path (an OPTIONS or a 204 for non-DICOM traffic) must not eat the
wire-speed budget: a prometheus_client ``inc``/``observe`` takes a lock and a
few Python calls each, six of them per request cost more than parsing the
request. So a finished transaction without findings only adds 1 to a plain
``int`` keyed by (method, outcome, status, duration bucket); a collector
registered ahead of the metrics folds those into the prometheus children
when the registry is collected (a scrape, ``get_sample_value``), and the
in-flight and open-connection gauges are read from plain counters at scrape
time. Everything runs on the event loop, scrapes included, so there is no
race between adding and folding. Names, labels and values are unchanged.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
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
#: upper bounds of the duration buckets as prometheus_client orders them (+Inf last)
_BOUNDS = (*DURATION_BUCKETS, math.inf)
#: a duration that was not observed (not a finite non-negative number)
_NOT_OBSERVED = -1


class _FoldPending:
    """A collector that exports nothing: collecting it folds the pending counts into the metrics.

    It is registered before any metric, and a registry collects in
    registration order, so every scrape sees the counts folded first.
    """

    def __init__(self, metrics: "Metrics") -> None:
        self._metrics = metrics

    def describe(self) -> list:
        return []

    def collect(self) -> list:
        self._metrics.fold_pending()
        return []


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
        #: counts of plain finished requests not yet folded: (method, outcome, status label, bucket) -> n
        self._pending: dict[tuple[str, str, str, int], int] = {}
        self._pending_seconds = dict.fromkeys(L.ICAP_METHODS, 0.0)
        self._pending_bytes_in = 0
        registry.register(_FoldPending(self))  # first: see _FoldPending

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
        self.open_connections.set_function(lambda: self._open)
        self.in_flight.set_function(lambda: self._running)

    def _init_children(self) -> None:
        """Create every labelled child now: zeros on dashboards, and cheap look-ups later."""
        self._requests = {k: self.requests.labels(*k) for k in L.all_values(L.ICAP_METHODS, L.OUTCOMES)}
        self._responses = {s: self.responses.labels(s) for s in L.ICAP_STATUSES}
        self._status_label = {int(s): s for s in L.ICAP_STATUSES if s.isdigit()}
        self._duration = {m: self.request_duration.labels(m) for m in L.ICAP_METHODS}
        for child in self._duration.values():  # fold_pending adds to these directly
            if len(getattr(child, "_buckets", ())) != len(_BOUNDS) or not hasattr(child, "_sum"):
                raise RuntimeError("prometheus_client Histogram internals changed: update Metrics.fold_pending")
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
        self.connections.inc()

    def connection_closed(self) -> None:
        self._open = max(0, self._open - 1)  # a stray close must not drive the gauge negative

    def request_started(self) -> None:
        self._running += 1

    def request_finished(self, record: TransactionRecord) -> None:
        """Count one finished transaction: the request, its bytes, and its report's totals."""
        if self._running > 0:  # a stray finish must not drive the gauge negative
            self._running -= 1

        method = record.icap_method
        if method not in self._duration:
            method = "OTHER"
        outcome = record.outcome
        if outcome not in L.OUTCOME_SET:
            outcome = "error"  # an outcome outside the contract is a server bug: count it as one
        status = record.icap_status
        status = self._status_label.get(status, L.OTHER) if type(status) is int else L.OTHER
        duration = record.duration_seconds
        if type(duration) is float and 0.0 <= duration < math.inf:  # NaN fails both comparisons
            bucket = bisect_left(_BOUNDS, duration)  # the first bound >= duration, as Histogram.observe
            self._pending_seconds[method] += duration
        else:
            bucket = _NOT_OBSERVED
            if isinstance(duration, (int, float)) and math.isfinite(duration) and duration >= 0:
                self._duration[method].observe(duration)  # an int (or bool) duration: rare, direct
        key = (method, outcome, status, bucket)
        pending = self._pending
        pending[key] = pending.get(key, 0) + 1
        bytes_in = record.bytes_in
        if type(bytes_in) is int:
            if bytes_in > 0:
                self._pending_bytes_in += bytes_in
        elif _count(bytes_in):
            self._bytes_in.inc(bytes_in)
        if record.bytes_out and _count(record.bytes_out):
            self._bytes_out.inc(record.bytes_out)
        if outcome == "blocked":
            self._blocks[block_label(record.reason)].inc()
        report = record.report
        if report is not None and (report.objects_by_wrapping or not _no_totals(report.totals)):
            self._count_report(report, outcome)

    def fold_pending(self) -> None:
        """Add the pending plain counts to the prometheus children (called when the registry is collected)."""
        pending, self._pending = self._pending, {}
        for (method, outcome, status, bucket), n in pending.items():
            self._requests[(method, outcome)].inc(n)
            self._responses[status].inc(n)
            if bucket != _NOT_OBSERVED:
                self._duration[method]._buckets[bucket].inc(n)
        seconds = self._pending_seconds
        for method, total in seconds.items():
            if total:
                self._duration[method]._sum.inc(total)
                seconds[method] = 0.0
        if self._pending_bytes_in:
            self._bytes_in.inc(self._pending_bytes_in)
            self._pending_bytes_in = 0

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


def _no_totals(totals) -> bool:
    """An ObjectReport (or None) whose counters are all empty: counting it would add nothing."""
    return totals is None or not (
        totals.actions or totals.uids_replaced or totals.boxes_by_source or totals.frames_ocr
        or totals.frames_skipped or totals.cdr_findings or totals.stage_seconds)


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
