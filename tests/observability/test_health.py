"""The health listener over real sockets: routes, readiness flips, and its bounds."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from icapdlp.config import Settings
from icapdlp.observability import health
from icapdlp.observability.health import MAX_REQUEST_BYTES, Readiness
from icapdlp.observability.options import MetricsOptions
from icapdlp.observability.wiring import build_observer, start_health_server
from tests.observability import records as R

pytestmark = pytest.mark.timeout(30)


async def fetch(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` and read the whole response (the server closes the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        data = b""
    writer.close()
    if not data:
        return 0, {}, b""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def get(port: int, path: str, method: str = "GET"):
    return fetch(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def run(coro):
    return asyncio.run(coro)


def serve(readiness: Readiness | None = None, registry: CollectorRegistry | None = None):
    return start_health_server(MetricsOptions(port=0), registry or CollectorRegistry(), readiness)


def test_healthz_metrics_and_404_over_a_real_socket():
    async def main():
        observer = build_observer(Settings(), CollectorRegistry(), process_collector=False)
        observer.request_started()
        observer.request_finished(R.record("OPTIONS", 200, "no-change"))
        server = await start_health_server(MetricsOptions(port=0), observer)
        try:
            health_ = await get(server.port, "/healthz")
            metrics = await get(server.port, "/metrics?x=1")
            missing = await get(server.port, "/metric")
            post = await get(server.port, "/metrics", "POST")
            head = await get(server.port, "/healthz", "HEAD")
        finally:
            await server.close()
        return health_, metrics, missing, post, head

    health_, metrics, missing, post, head = run(main())
    assert health_[0] == 200 and health_[2] == b"ok\n"
    assert metrics[0] == 200 and metrics[1]["Content-Type"].startswith("text/plain; version=")
    text = metrics[2].decode()
    assert 'icapdlp_requests_total{method="OPTIONS",outcome="no-change"} 1.0' in text
    assert 'icapdlp_build_info{policy_digest="' in text and 'table_edition="2024b"' in text
    assert missing[0] == 404 and post[0] == 405
    assert head[0] == 200 and head[1]["Content-Length"] == "3" and head[2] == b""


def test_readyz_lists_every_check_and_flips_when_one_fails():
    state = {"workers": True}
    readiness = Readiness()
    readiness.add("workers", lambda: state["workers"])

    async def model_loaded() -> bool:
        return True

    readiness.add("ner-model", model_loaded)
    readiness.add("config", lambda: True)

    async def main():
        server = await serve(readiness)
        try:
            ready = await get(server.port, "/readyz")
            state["workers"] = False
            not_ready = await get(server.port, "/readyz")
            state["workers"] = True
            again = await get(server.port, "/readyz")
        finally:
            await server.close()
        return ready, not_ready, again

    ready, not_ready, again = run(main())
    assert ready[0] == 200 and json.loads(ready[2]) == {
        "ready": True, "checks": {"workers": {"ok": True}, "ner-model": {"ok": True}, "config": {"ok": True}}}
    assert ready[1]["Content-Type"] == "application/json"
    assert not_ready[0] == 503
    body = json.loads(not_ready[2])
    assert body["ready"] is False and body["checks"]["workers"] == {"ok": False}
    assert body["checks"]["config"] == {"ok": True}
    assert again[0] == 200


def test_a_check_that_raises_or_hangs_is_not_ready_and_only_its_exception_type_is_shown(monkeypatch):
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.05)
    readiness = Readiness()

    def tesseract() -> bool:
        raise RuntimeError("cannot open /data/DOE^JOHN/scan.png")

    async def hung() -> bool:
        await asyncio.sleep(10)
        return True

    readiness.add("tesseract", tesseract)
    readiness.add("workers", hung)

    async def main():
        server = await serve(readiness)
        try:
            return await get(server.port, "/readyz")
        finally:
            await server.close()

    status, _, body = run(main())
    assert status == 503
    assert json.loads(body)["checks"] == {
        "tesseract": {"ok": False, "error": "RuntimeError"},
        "workers": {"ok": False, "error": "TimeoutError"},
    }
    assert b"DOE" not in body


def test_readiness_check_names_are_validated_and_unique():
    readiness = Readiness()
    readiness.add("workers", lambda: True)
    with pytest.raises(ValueError):
        readiness.add("workers", lambda: True)
    with pytest.raises(ValueError):
        readiness.add("Bad Name!", lambda: True)


def test_request_head_is_accepted_at_the_limit_and_refused_one_byte_past_it():
    def request_of(size: int) -> bytes:
        start, end = b"GET /healthz HTTP/1.1\r\nX-Pad: ", b"\r\n\r\n"
        return start + b"a" * (size - len(start) - len(end)) + end

    async def main():
        server = await serve()
        try:
            at_limit = await fetch(server.port, request_of(MAX_REQUEST_BYTES))
            past = await fetch(server.port, request_of(MAX_REQUEST_BYTES + 1))
            garbage = await fetch(server.port, b"\x16\x03\x01 nonsense\r\n\r\n")
        finally:
            await server.close()
        return at_limit, past, garbage

    at_limit, past, garbage = run(main())
    assert len(past) == 3 and at_limit[0] == 200
    assert past[0] == 431
    assert garbage[0] == 400


def test_a_silent_client_gets_408_after_the_read_timeout(monkeypatch):
    monkeypatch.setattr(health, "READ_TIMEOUT", 0.2)

    async def main():
        server = await serve()
        try:
            return await fetch(server.port, b"GET /healthz HTTP/1.1\r\n")  # head never finished
        finally:
            await server.close()

    assert run(main())[0] == 408


def test_connections_past_the_limit_are_closed_unanswered(monkeypatch):
    monkeypatch.setattr(health, "MAX_CONNECTIONS", 2)

    async def main():
        server = await serve()
        try:
            idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
            await asyncio.sleep(0.05)  # let the server accept both
            refused = await get(server.port, "/healthz")
            for _, writer in idle:
                writer.close()
            await asyncio.sleep(0.05)
            served = await get(server.port, "/healthz")
        finally:
            await server.close()
        return refused, served

    refused, served = run(main())
    assert refused[0] == 0  # closed without a response
    assert served[0] == 200


def test_disabled_metrics_start_no_listener():
    assert run(start_health_server(MetricsOptions(enabled=False), CollectorRegistry())) is None


def test_a_failing_collector_answers_500_and_the_listener_keeps_serving():
    class Broken:
        def collect(self):
            raise RuntimeError("collector broke")

    registry = CollectorRegistry()
    registry.register(Broken())

    async def main():
        server = await serve(registry=registry)
        try:
            return await get(server.port, "/metrics"), await get(server.port, "/healthz")
        finally:
            await server.close()

    metrics, healthz = run(main())
    assert metrics[0] == 500 and healthz[0] == 200


def test_a_scrape_carries_the_same_readiness_as_readyz_per_check():
    """Issue 16.8: readiness was only visible to a probe; now every scrape runs the checks into gauges."""
    state = {"tesseract": True}

    async def ner_model() -> bool:
        raise OSError("model directory unreadable")

    async def main():
        observer = build_observer(Settings(), CollectorRegistry(), process_collector=False)
        readiness = Readiness()
        readiness.add("workers", lambda: True)
        readiness.add("tesseract", lambda: state["tesseract"])
        readiness.add("ner_model", ner_model)
        server = await start_health_server(MetricsOptions(port=0), observer, readiness)
        try:
            first = (await get(server.port, "/metrics"))[2].decode()
            ready = await get(server.port, "/readyz")
            state["tesseract"] = False
            second = (await get(server.port, "/metrics"))[2].decode()
        finally:
            await server.close()
        return first, ready, second

    first, ready, second = run(main())
    assert ready[0] == 503
    assert "icapdlp_ready 0.0" in first
    assert 'icapdlp_ready_check{check="workers"} 1.0' in first
    assert 'icapdlp_ready_check{check="tesseract"} 1.0' in first
    assert 'icapdlp_ready_check{check="ner_model"} 0.0' in first
    assert 'icapdlp_ready_check{check="tesseract"} 0.0' in second  # evaluated again at each scrape
    assert "model directory" not in first
