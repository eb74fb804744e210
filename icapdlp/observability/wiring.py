"""How the application builds and starts observability.

The application wiring (``icapdlp.app``) needs two things from this package:

- :func:`build_observer` once at start-up, then the observer's four calls per
  connection / request (see :mod:`icapdlp.observability.events`);
- :func:`start_health_server` for ``/metrics``, ``/healthz`` and ``/readyz``,
  with readiness checks registered on a :class:`Readiness`.

Typical start-up::

    observer = build_observer(settings, policy_digest=settings.behaviour_digest(fingerprint(key)))
    readiness = Readiness()
    watch_worker_pool(observer, pool, readiness)   # worker gauges + the "workers" check
    readiness.add("tesseract", check)              # more checks: any sync or async callable
    health = await start_health_server(settings, observer, readiness)
    ...
    await health.close(); observer.close()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry

from icapdlp.dicom.ps315_table import EDITION as TABLE_EDITION
from icapdlp.observability.audit import AuditLog
from icapdlp.observability.health import HealthServer, Readiness, serve_health
from icapdlp.observability.metrics import Metrics
from icapdlp.observability.observer import RecordingObserver
from icapdlp.observability.options import AuditOptions, MetricsOptions


class WorkerCapacity(Protocol):
    @property
    def processes(self) -> int: ...  # 0: one per core

    @property
    def max_queue(self) -> int: ...


class ObservedSettings(Protocol):
    """The parts of the settings this module reads; ``icapdlp.config.Settings`` has them.

    A protocol rather than an import: the configuration sits above this package
    (it assembles :class:`AuditOptions` and :class:`MetricsOptions` with the
    other layers' options), so this module names what it needs instead.
    """

    @property
    def audit(self) -> AuditOptions: ...

    @property
    def metrics(self) -> MetricsOptions: ...

    @property
    def workers(self) -> WorkerCapacity: ...

    @property
    def services(self) -> Mapping[str, object]: ...

    def behaviour_digest(self, key_fingerprint: str = "") -> str: ...


def build_observer(
    settings: ObservedSettings,
    registry: CollectorRegistry | None = None,
    *,
    table_edition: str | None = None,
    policy_digest: str | None = None,
    process_collector: bool = True,
) -> RecordingObserver:
    """The observer for a server built from ``settings``.

    ``registry`` defaults to a new :class:`CollectorRegistry` (never the global
    one); read it back as ``observer.registry``. ``policy_digest`` should be
    ``settings.behaviour_digest(key_fingerprint)`` when the key is loaded; without
    it the digest of the settings alone is shown. ``table_edition`` defaults to
    the edition the DICOM layer's generated table declares, if it declares one.
    """
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    metrics = Metrics(
        registry,
        table_edition=table_edition or TABLE_EDITION,
        policy_digest=policy_digest or settings.behaviour_digest(),
        process_collector=process_collector,
    )
    workers = settings.workers.processes or os.cpu_count() or 1
    metrics.set_worker_capacity(workers, settings.workers.max_queue)
    audit = AuditLog(settings.audit, services=settings.services.keys(), on_error=metrics.audit_errors.inc)
    return RecordingObserver(metrics, audit)


def watch_worker_pool(metrics: Metrics | RecordingObserver, pool, readiness: Readiness | None = None) -> None:
    """Feed the worker gauges from a pool, and with ``readiness`` add its "workers" check.

    Duck-typed so this package does not import the server: ``pool`` needs
    ``queue_depth``, ``size`` and ``pids``; ``max_queue`` and ``busy`` are used
    when present (without ``busy`` the busy gauge stays at 0). The check passes
    while at least one worker process runs (a worker counts once its initializer
    has finished). It is not the "engines usable" signal: a worker whose NER
    model or Tesseract fails still starts (and blocks images that need them), so
    the application registers separate "tesseract" and "ner_model" checks
    (``icapdlp.app.application.engine_checks``).
    """
    metrics = metrics.metrics if isinstance(metrics, RecordingObserver) else metrics
    metrics.set_queue_depth_source(lambda: pool.queue_depth)
    if hasattr(pool, "busy"):
        metrics.set_workers_busy_source(lambda: pool.busy)
    metrics.set_worker_capacity(pool.size, getattr(pool, "max_queue", 0))
    if readiness is not None:
        readiness.add("workers", lambda: len(pool.pids) > 0)


async def start_health_server(settings: ObservedSettings | MetricsOptions,
                              metrics: Metrics | RecordingObserver | CollectorRegistry,
                              readiness: Readiness | None = None) -> HealthServer | None:
    """Start the ``/metrics`` + ``/healthz`` + ``/readyz`` listener, or ``None`` if disabled.

    ``settings`` is the whole :class:`~icapdlp.config.Settings` or just its
    :class:`MetricsOptions`. Stop it with ``await server.close()``. With a
    :class:`Metrics` (or an observer holding one), every scrape first runs the
    readiness checks into ``icapdlp_ready`` and ``icapdlp_ready_check``.
    """
    options = settings if isinstance(settings, MetricsOptions) else settings.metrics
    if not options.enabled:
        return None
    registry = metrics if isinstance(metrics, CollectorRegistry) else metrics.registry
    metrics = metrics.metrics if isinstance(metrics, RecordingObserver) else metrics
    on_readiness = metrics.record_readiness if isinstance(metrics, Metrics) else None
    return await serve_health(registry, readiness or Readiness(), options.host, options.port, on_readiness)
