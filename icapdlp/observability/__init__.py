"""Metrics, health endpoints and the PHI-free audit log.

The server imports :func:`build_observer`, :func:`start_health_server`,
:class:`Readiness` and :func:`watch_worker_pool` from here (see
:mod:`icapdlp.observability.wiring`). They are loaded on first use, so that
importing ``icapdlp.observability.options`` (which the settings schema does)
stays light and cannot form an import cycle with ``icapdlp.config``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_observer": "icapdlp.observability.wiring",
    "start_health_server": "icapdlp.observability.wiring",
    "watch_worker_pool": "icapdlp.observability.wiring",
    "Readiness": "icapdlp.observability.health",
    "HealthServer": "icapdlp.observability.health",
    "Metrics": "icapdlp.observability.metrics",
    "RecordingObserver": "icapdlp.observability.observer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
