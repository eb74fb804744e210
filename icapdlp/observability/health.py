"""A tiny HTTP listener for ``/metrics``, ``/healthz`` and ``/readyz``.

Prometheus and orchestrators need three GET endpoints; a web framework would
be a larger attack surface than everything it serves. So this is a bounded
HTTP/1.1 responder: it reads one request head of at most
:data:`MAX_REQUEST_BYTES` within :data:`READ_TIMEOUT` seconds, answers, and
closes the connection. It never reads a body and holds at most
:data:`MAX_CONNECTIONS` connections, so a misbehaving scraper cannot starve
the ICAP server sharing the event loop.

- ``/healthz``: 200 while the process runs its event loop.
- ``/readyz``: 200 only when every registered readiness check passes; the
  JSON body lists each check. A check that raises or times out fails, and is
  reported by exception type only (messages may quote anything).
- ``/metrics``: the registry in Prometheus text format. The readiness checks
  run first and their result goes to ``on_readiness`` (the ``icapdlp_ready``
  gauges), so a scrape and ``/readyz`` never disagree.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

#: a scraper's GET with a few headers is well under 1 KiB; 8 KiB leaves room for
#: proxies that add headers and still refuses anything that is not a probe
MAX_REQUEST_BYTES = 8 * 1024
#: seconds to receive the request head; probes send it at once
READ_TIMEOUT = 5.0
#: seconds to hand the response to the kernel before giving up on a slow reader
WRITE_TIMEOUT = 10.0
#: seconds one readiness check may take; a hung dependency is "not ready"
CHECK_TIMEOUT = 2.0
#: Prometheus, a load balancer and an orchestrator probe; 64 is plenty
MAX_CONNECTIONS = 64

log = logging.getLogger(__name__)

_HEAD_END = b"\r\n\r\n"
#: after an error answer, unread request bytes are drained (up to this much, for
#: at most LINGER seconds) so closing does not reset the connection and destroy
#: the answer before the client reads it
LINGER_BYTES = 64 * 1024
LINGER = 1.0

_CHECK_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

ReadinessCheck = Callable[[], "bool | Awaitable[bool]"]


class Readiness:
    """Named checks the application registers (workers up, NER model loaded, ...)."""

    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}

    def add(self, name: str, check: ReadinessCheck) -> None:
        """Register ``check`` (sync or async, returning truthy when ready) under ``name``."""
        if not _CHECK_NAME.match(name):
            raise ValueError(f"readiness check name {name!r} must match {_CHECK_NAME.pattern}")
        if name in self._checks:
            raise ValueError(f"readiness check {name!r} is already registered")
        self._checks[name] = check

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def evaluate(self) -> tuple[bool, dict[str, dict[str, object]]]:
        """Run every check; ready only if all pass. With no checks registered, ready."""
        results: dict[str, dict[str, object]] = {}
        for name, check in list(self._checks.items()):
            results[name] = await _run_check(check)
        return all(r["ok"] for r in results.values()), results


async def _run_check(check: ReadinessCheck) -> dict[str, object]:
    try:
        value = check()
        if inspect.isawaitable(value):
            value = await asyncio.wait_for(value, CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - a failing check means "not ready", never a crash
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": bool(value)}


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}


class HealthServer:
    """The running listener; ``port`` is the bound port (useful with port 0)."""

    def __init__(self, registry: CollectorRegistry, readiness: Readiness,
                 on_readiness: Callable[[bool, dict], None] | None = None) -> None:
        self.registry = registry
        self.readiness = readiness
        self.on_readiness = on_readiness
        self._server: asyncio.base_events.Server | None = None
        self._active = 0
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> "HealthServer":
        # StreamReader refuses a separator that *starts* past its limit, so the
        # limit excludes the final CRLFCRLF: a head of MAX_REQUEST_BYTES fits exactly
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_REQUEST_BYTES - len(_HEAD_END))
        return self

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._active >= MAX_CONNECTIONS:
            writer.close()
            return
        self._active += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            head_only, response = await self._answer(reader)
            if response is not None:
                await asyncio.wait_for(self._send(writer, response, head_only), WRITE_TIMEOUT)
                if response.status >= 400 and response.status != 408:  # 408: nothing more is coming
                    await _linger(reader, writer)
        except (OSError, asyncio.TimeoutError, asyncio.CancelledError):
            pass
        finally:
            self._active -= 1
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[bool, _Response | None]:
        try:
            head = await asyncio.wait_for(reader.readuntil(_HEAD_END), READ_TIMEOUT)
        except asyncio.TimeoutError:
            return False, _Response(408, b"request head not received in time\n")
        except asyncio.LimitOverrunError:
            return False, _Response(431, b"request head too large\n")
        except asyncio.IncompleteReadError:
            return False, None  # the client went away
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return False, _Response(400, b"bad request line\n")
        method, target = parts[0], parts[1]
        path = target.split(b"?", 1)[0]
        if path not in (b"/metrics", b"/healthz", b"/readyz"):
            return False, _Response(404, b"not found; try /metrics, /healthz or /readyz\n")
        if method not in (b"GET", b"HEAD"):
            return False, _Response(405, b"only GET and HEAD\n")
        try:
            return method == b"HEAD", await self._route(path)
        except Exception as exc:  # noqa: BLE001 - e.g. a broken custom collector; answer, never crash
            log.error("health endpoint %s failed: %s", path.decode("ascii", "replace"), type(exc).__name__)
            return False, _Response(500, b"internal error\n")

    async def _route(self, path: bytes) -> _Response:
        if path == b"/healthz":
            return _Response(200, b"ok\n")
        if path == b"/readyz":
            ready, checks = await self.readiness.evaluate()
            body = json.dumps({"ready": ready, "checks": checks}, sort_keys=True).encode() + b"\n"
            return _Response(200 if ready else 503, body, "application/json")
        if self.on_readiness is not None:
            self.on_readiness(*await self.readiness.evaluate())
        return _Response(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, response: _Response, head_only: bool) -> None:
        head = (
            f"HTTP/1.1 {response.status} {_REASONS[response.status]}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        writer.write(head if head_only else head + response.body)
        await writer.drain()


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if writer.can_write_eof():
        writer.write_eof()
    drained = 0
    try:
        async with asyncio.timeout(LINGER):
            while drained < LINGER_BYTES:
                chunk = await reader.read(LINGER_BYTES - drained)
                if not chunk:
                    return
                drained += len(chunk)
    except (TimeoutError, asyncio.LimitOverrunError, ValueError):
        return


async def serve_health(registry: CollectorRegistry, readiness: Readiness, host: str, port: int,
                       on_readiness: Callable[[bool, dict], None] | None = None) -> HealthServer:
    """Start the listener on ``host:port`` (port 0 picks a free port)."""
    return await HealthServer(registry, readiness, on_readiness).start(host, port)
