"""Prometheus metrics, on a registry passed in.

Everything is registered on the :class:`CollectorRegistry` the caller gives,
never the global one, so tests use a fresh registry and two servers in one
process do not collide. Label values come only from :mod:`labels`; every
value real traffic can produce is created up front, so a dashboard shows
zeros from the first scrape instead of "no data". The ``other`` catch-all
(what a value outside a closed set is counted as, which only a bug upstream
produces) is created the first time it is needed, so it is not a series of
zeros on every scrape.

Worker processes never touch these objects. They return an ``ObjectReport``
with their counts; the main process hands the finished transaction here once.
That is the whole multi-process story: one registry, one writer, no
``multiprocess`` directory, nothing lost or counted twice. Their memory and
CPU are read from /proc at scrape time (:mod:`.processes`).

The hot path (an OPTIONS or a 204 for non-DICOM traffic) must not eat the
wire-speed budget: a prometheus_client ``inc``/``observe`` takes a lock and a
few Python calls each, six of them per request cost more than parsing the
request. So the per-request families (requests, responses, request duration)
are plain ``int``/``float`` tallies that :class:`_RequestTallies`, a custom
collector, turns into metric families at scrape time, through the public
``prometheus_client.core`` API. Everything runs on the event loop, scrapes
included, so there is no race between adding and reading.

No ``*_created`` series: they doubled the series count and no dashboard or
alert reads them. :func:`prometheus_client.disable_created_metrics` is called
once, here, when this module is imported (every icapdlp metric is built by
this module, so it always runs first).
"""

from __future__ import annotations

import math
import re
import time
from bisect import bisect_left
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from icapdlp import __version__
from icapdlp.observability import labels as L
from icapdlp.observability.events import TransactionRecord

disable_created_metrics()

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
#: upper bounds of the duration buckets, +Inf last, and their "le" label texts
_BOUNDS = (*DURATION_BUCKETS, math.inf)
_LE = tuple("+Inf" if b == math.inf else repr(float(b)) for b in _BOUNDS)
#: readiness checks the server registers (``icapdlp.app.application.readiness_checks``)
READY_CHECKS = ("workers", "config", "tesseract", "ner_model")
#: how a reload ended
RELOAD_OUTCOMES = ("success", "failure")


class _RequestTallies:
    """The per-request families, kept as plain numbers and exported at scrape time.

    Same names, labels and values as a prometheus ``Counter``/``Histogram``
    would give; every (method, outcome), status and method is exported from
    the start, at zero.
    """

    def __init__(self) -> None:
        self.requests = dict.fromkeys(L.all_values(L.ICAP_METHODS, L.OUTCOMES), 0)
        self.responses = dict.fromkeys(L.ICAP_STATUSES, 0)
        #: method -> observations per bucket (not cumulative; +Inf last)
        self.buckets = {m: [0] * len(_BOUNDS) for m in L.ICAP_METHODS}
        self.seconds = dict.fromkeys(L.ICAP_METHODS, 0.0)
        self.bytes_in = 0
        self.bytes_out = 0

    def describe(self) -> list:
        return self._families(empty=True)

    def collect(self) -> list:
        return self._families(empty=False)

    def _families(self, empty: bool) -> list:
        requests = CounterMetricFamily(
            "icapdlp_requests", "ICAP requests finished, by ICAP method and outcome.",
            labels=["method", "outcome"])
        responses = CounterMetricFamily(
            "icapdlp_icap_responses", "ICAP responses sent, by status code.", labels=["status"])
        duration = HistogramMetricFamily(
            "icapdlp_request_duration_seconds", "Time from ICAP request head to the last response byte.",
            labels=["method"])
        body_bytes = CounterMetricFamily(
            "icapdlp_body_bytes", "Encapsulated HTTP body bytes received (in) and sent (out).",
            labels=["direction"])
        if not empty:
            body_bytes.add_metric(("in",), self.bytes_in)
            body_bytes.add_metric(("out",), self.bytes_out)
            for key, n in self.requests.items():
                requests.add_metric(key, n)
            for status, n in self.responses.items():
                responses.add_metric((status,), n)
            for method, counts in self.buckets.items():
                cumulative, buckets = 0, []
                for le, n in zip(_LE, counts):
                    cumulative += n
                    buckets.append((le, cumulative))
                duration.add_metric((method,), buckets, self.seconds[method])
        return [requests, responses, duration, body_bytes]


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
        self._tallies = _RequestTallies()
        registry.register(self._tallies)

        self.stage_duration = Histogram(
            "icapdlp_stage_duration_seconds",
            "Time one transaction spent in a pipeline stage (summed over its DICOM objects).",
            ["stage"], buckets=DURATION_BUCKETS, registry=r)
        self.objects = Counter(
            "icapdlp_dicom_objects", "DICOM objects seen, by what was unwrapped to reach them and the "
            "transaction verdict.", ["wrapping", "verdict"], registry=r)
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
        self.reloads = Counter(
            "icapdlp_reloads", "Configuration reloads (SIGHUP), by outcome; a failure keeps the running policy.",
            ["outcome"], registry=r)

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
        self.ready = Gauge(
            "icapdlp_ready", "1 while every readiness check passes (what /readyz answers 200 for), else 0.",
            registry=r)
        self.ready_check = Gauge(
            "icapdlp_ready_check", "1 while this readiness check passes, else 0 (see /readyz for the error).",
            ["check"], registry=r)
        self.last_reload_successful = Gauge(
            "icapdlp_config_last_reload_successful", "1 if the last configuration load (start-up or reload) "
            "succeeded, 0 if the last reload was rejected.", registry=r)
        self.last_reload_success = Gauge(
            "icapdlp_config_last_reload_success_timestamp_seconds",
            "Unix time the running configuration was loaded (start-up or the last successful reload).",
            registry=r)
        self.build_info = Gauge(
            "icapdlp_build_info", "Always 1; labels name the version, PS3.15 table edition and the digest "
            "of the running policy (follows reloads).", ["version", "table_edition", "policy_digest"], registry=r)
        if process_collector:
            ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu, fds (this process)
            from icapdlp.observability.processes import ChildProcessCollector

            r.register(ChildProcessCollector())  # worker processes and extra acceptors, from /proc

        self._init_children()
        self._version = _checked(version, _VERSION)
        self._table_edition = _checked(table_edition, _EDITION)
        self.set_policy_digest(policy_digest)
        self.last_reload_successful.set(1)
        self.last_reload_success.set(time.time())
        self.set_queue_depth_source(None)
        self.set_workers_busy_source(None)
        self._open = 0
        self._running = 0
        self.open_connections.set_function(lambda: self._open)
        self.in_flight.set_function(lambda: self._running)

    def _init_children(self) -> None:
        """Create every labelled child real traffic can produce: zeros on dashboards, cheap look-ups later."""
        self._status_label = {int(s): s for s in L.ICAP_STATUSES if s.isdigit()}
        self._stage = _children(self.stage_duration, L.STAGES)
        self._objects = {k: self.objects.labels(*k) for k in L.all_values(_emitted(L.WRAPPINGS), L.OUTCOMES)}
        self._actions = _children(self.actions, L.ACTION_CODES)
        self._boxes = _children(self.boxes, L.BOX_SOURCES)
        self._frames_ocr = self.frames.labels("ocr")
        self._frames_skipped = self.frames.labels("skipped")
        self._blocks = {r: self.blocks.labels(r) for r in L.BLOCK_REASONS}
        self._cdr = _children(self.cdr_findings, L.CDR_FINDING_KINDS)
        self._reloads = {o: self.reloads.labels(o) for o in RELOAD_OUTCOMES}

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

    def set_policy_digest(self, policy_digest: str) -> None:
        """Show ``policy_digest`` in ``icapdlp_build_info`` (the old series goes: one build_info at a time)."""
        self.build_info.clear()
        self.build_info.labels(
            version=self._version, table_edition=self._table_edition,
            policy_digest=_checked(policy_digest, _DIGEST)[:16],
        ).set(1)

    def record_reload(self, succeeded: bool, policy_digest: str | None = None,
                      now: Callable[[], float] = time.time) -> None:
        """Count one reload; a successful one also moves build_info to the new policy's digest."""
        self._reloads["success" if succeeded else "failure"].inc()
        self.last_reload_successful.set(1 if succeeded else 0)
        if succeeded:
            self.last_reload_success.set(now())
            if policy_digest is not None:
                self.set_policy_digest(policy_digest)

    def record_readiness(self, ready: bool, checks: dict[str, dict[str, object]]) -> None:
        """Set ``icapdlp_ready`` and one ``icapdlp_ready_check`` per known check from a readiness result."""
        self.ready.set(1 if ready else 0)
        for name, result in checks.items():
            if name in READY_CHECKS:
                self.ready_check.labels(name).set(1 if result.get("ok") else 0)

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
        tallies = self._tallies
        method = record.icap_method
        if method not in tallies.seconds:
            method = "OTHER"
        outcome = record.outcome
        if outcome not in L.OUTCOME_SET:
            outcome = "error"  # an outcome outside the contract is a server bug: count it as one
        tallies.requests[(method, outcome)] += 1
        status = record.icap_status
        tallies.responses[self._status_label.get(status, L.OTHER) if type(status) is int else L.OTHER] += 1
        duration = record.duration_seconds
        if (isinstance(duration, (int, float)) and 0 <= duration < math.inf):  # NaN fails both comparisons
            # the first bound >= duration, as Histogram.observe
            tallies.buckets[method][bisect_left(_BOUNDS, duration)] += 1
            tallies.seconds[method] += duration
        bytes_in = record.bytes_in
        if type(bytes_in) is int and bytes_in > 0:
            tallies.bytes_in += bytes_in
        bytes_out = record.bytes_out
        if type(bytes_out) is int and bytes_out > 0:
            tallies.bytes_out += bytes_out
        if outcome == "blocked":
            self._blocks[block_label(record.reason)].inc()
        report = record.report
        if report is not None and (report.objects_by_wrapping or not _no_totals(report.totals)):
            self._count_report(report, outcome)

    def _count_report(self, report, outcome: str) -> None:
        for wrapping, n in L.fold_counts(report.objects_by_wrapping, L.WRAPPINGS).items():
            key = (wrapping, outcome)
            child = self._objects.get(key)
            if child is None:
                child = self._objects[key] = self.objects.labels(*key)
            child.inc(n)
        totals = report.totals
        if totals is None:
            return
        for code, n in L.fold_counts(totals.actions, L.REPORT_LABELS["actions"]).items():
            _child(self._actions, self.actions, code).inc(n)
        if _count(totals.uids_replaced):
            self.uids_replaced.inc(totals.uids_replaced)
        for source, n in L.fold_counts(totals.boxes_by_source, L.REPORT_LABELS["boxes_by_source"]).items():
            _child(self._boxes, self.boxes, source).inc(n)
        if _count(totals.frames_ocr):
            self._frames_ocr.inc(totals.frames_ocr)
        if _count(totals.frames_skipped):
            self._frames_skipped.inc(totals.frames_skipped)
        for kind, n in L.fold_counts(totals.cdr_findings, L.REPORT_LABELS["cdr_findings"]).items():
            _child(self._cdr, self.cdr_findings, kind).inc(n)
        for stage, seconds in L.fold_seconds(totals.stage_seconds, L.REPORT_LABELS["stage_seconds"]).items():
            _child(self._stage, self.stage_duration, stage).observe(seconds)


def _emitted(values: tuple[str, ...]) -> tuple[str, ...]:
    """The values of a closed set that correct code produces (all but the ``other`` catch-all)."""
    return tuple(v for v in values if v != L.OTHER)


def _children(metric, values: tuple[str, ...]) -> dict:
    return {v: metric.labels(v) for v in _emitted(values)}


def _child(children: dict, metric, label: str):
    """The child for ``label``; ``other`` is created on first use (see the module docstring)."""
    child = children.get(label)
    if child is None:
        child = children[label] = metric.labels(label)
    return child


def block_label(reason: object) -> str:
    """The reason label of a block; a block without a valid reason is a server bug, still a block."""
    value = getattr(reason, "value", None)
    return value if isinstance(value, str) and value in L.BLOCK_REASONS else "internal-error"


def _no_totals(totals) -> bool:
    """An ObjectReport (or None) with nothing counted: counting it would add nothing."""
    return totals is None or totals.is_empty()


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
