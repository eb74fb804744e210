"""build_observer: what the server imports, wired from settings, never raising into the server."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect

from prometheus_client import REGISTRY, CollectorRegistry

from icapdlp import __version__
from icapdlp.config import Settings
from icapdlp.config.server_options import WorkerOptions
from icapdlp.observability.events import Observer
from icapdlp.observability.health import Readiness
from icapdlp.observability.wiring import build_observer, watch_worker_pool
from tests.observability import records as R


def test_the_observer_implements_the_contract_and_uses_its_own_registry():
    observer = build_observer(Settings(audit=dataclasses.replace(Settings().audit, destination="off")))
    for name in ("connection_opened", "connection_closed", "request_started", "request_finished"):
        contract = inspect.signature(getattr(Observer, name))
        assert list(inspect.signature(getattr(observer, name)).parameters) == list(contract.parameters)[1:]
    assert observer.registry is not REGISTRY
    assert REGISTRY.get_sample_value("icapdlp_requests_total", {"method": "REQMOD", "outcome": "error"}) is None


def test_worker_capacity_and_policy_digest_come_from_settings():
    settings = Settings(workers=WorkerOptions(processes=3, max_queue=50))
    observer = build_observer(settings, CollectorRegistry(), policy_digest="0123456789abcdef" * 4)
    registry = observer.registry
    assert registry.get_sample_value("icapdlp_workers") == 3
    assert registry.get_sample_value("icapdlp_worker_queue_limit") == 50
    info = [s for f in registry.collect() if f.name == "icapdlp_build_info" for s in f.samples]
    assert [s.labels["policy_digest"] for s in info] == ["0123456789abcdef"]
    plain = build_observer(Settings(), CollectorRegistry())
    digest = Settings().behaviour_digest()[:16]
    assert plain.registry.get_sample_value(
        "icapdlp_build_info", {"version": __version__, "table_edition": "2024b", "policy_digest": digest}) == 1


def test_a_recording_failure_is_counted_and_logged_by_type_never_raised(caplog):
    observer = build_observer(Settings(), CollectorRegistry(), process_collector=False)
    broken = R.record()
    broken.report = object()  # not a report: recording it fails inside the observer
    observer.request_started()
    observer.request_finished(broken)
    registry = observer.registry
    assert registry.get_sample_value("icapdlp_observer_errors_total") == 1
    # the request itself was still counted before the report failed
    assert registry.get_sample_value("icapdlp_requests_total", {"method": "REQMOD", "outcome": "rewritten"}) == 1
    assert registry.get_sample_value("icapdlp_requests_in_flight") == 0
    assert [r.getMessage() for r in caplog.records if r.name.startswith("icapdlp")][0].endswith("AttributeError")


class FakePool:
    """The attributes of icapdlp.server.workers.WorkerPool that the gauges read."""

    size = 4
    max_queue = 64

    def __init__(self) -> None:
        self.queue_depth = 0
        self.busy = 0


def test_worker_gauges_follow_the_pool_at_every_scrape():
    observer = build_observer(Settings(), CollectorRegistry(), process_collector=False)
    pool = FakePool()
    watch_worker_pool(observer, pool)  # no readiness given: gauges only
    registry = observer.registry
    assert registry.get_sample_value("icapdlp_workers") == 4
    assert registry.get_sample_value("icapdlp_worker_queue_limit") == 64
    pool.queue_depth, pool.busy = 9, 3
    assert registry.get_sample_value("icapdlp_worker_queue_depth") == 9
    assert registry.get_sample_value("icapdlp_workers_busy") == 3


def test_the_real_worker_pool_feeds_the_gauges_and_the_workers_readiness_check():
    from icapdlp.server.workers import WorkerPool

    async def main():
        pool = WorkerPool(1, max_queue=7)
        observer = build_observer(Settings(), CollectorRegistry(), process_collector=False)
        readiness = Readiness()
        watch_worker_pool(observer, pool, readiness)
        before = await readiness.evaluate()
        await pool.start()
        try:
            started = await readiness.evaluate()
            gauges = [observer.registry.get_sample_value(name) for name in
                      ("icapdlp_workers", "icapdlp_worker_queue_limit", "icapdlp_worker_queue_depth")]
        finally:
            await pool.close()
        closed = await readiness.evaluate()
        return before, started, gauges, closed

    before, started, gauges, closed = asyncio.run(main())
    assert before == (False, {"workers": {"ok": False}})
    assert started == (True, {"workers": {"ok": True}})
    assert gauges == [1, 7, 0]
    assert closed[0] is False
