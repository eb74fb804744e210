"""Metrics, health endpoints and the PHI-free audit log.

The application wiring builds and starts all of it through
:mod:`icapdlp.observability.wiring` (``build_observer``, ``start_health_server``,
``watch_worker_pool``) and :mod:`icapdlp.observability.health` (``Readiness``).
This package re-exports nothing: each name has one module to import it from,
so importing ``icapdlp.observability.options`` (as the settings schema does)
loads nothing else.
"""
