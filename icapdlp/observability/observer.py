"""The real :class:`~icapdlp.observability.events.Observer`: metrics plus the audit log.

The server calls it on the event loop for every connection and request. It
must never raise into the server: a bug here is counted on
``icapdlp_observer_errors_total`` and logged by exception type, and the
transaction carries on. Losing one audit line is bad; failing a clinical
upload because the audit disk is full would be worse, and the counter plus
its alert make the loss visible.
"""

from __future__ import annotations

import logging

from icapdlp.observability.audit import AuditLog
from icapdlp.observability.events import TransactionRecord
from icapdlp.observability.metrics import Metrics

log = logging.getLogger(__name__)


class RecordingObserver:
    """Feeds every event to :class:`Metrics` and every finished transaction to the :class:`AuditLog`."""

    def __init__(self, metrics: Metrics, audit: AuditLog) -> None:
        self.metrics = metrics
        self.audit = audit

    @property
    def registry(self):
        return self.metrics.registry

    def connection_opened(self) -> None:
        self.metrics.connection_opened()

    def connection_closed(self) -> None:
        self.metrics.connection_closed()

    def request_started(self) -> None:
        self.metrics.request_started()

    def request_finished(self, record: TransactionRecord) -> None:
        # two plain try blocks rather than a loop over the steps: this runs once per request
        try:
            self.metrics.request_finished(record)
        except Exception as exc:  # noqa: BLE001 - observability must not break serving
            self._failed(exc)
        try:
            self.audit.record(record)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.metrics.observer_errors.inc()
        log.error("observer failed to record a transaction: %s", type(exc).__name__)

    def close(self) -> None:
        self.audit.close()
