"""The ICAP listener(s): admission, deadlines and graceful shutdown.

``IcapServer`` owns the listening sockets (plain and, optionally, ICAPS),
the set of open connections and the :class:`Runtime` — the adapter and its
ISTag, swapped together on reload. Each connection reads ``server.runtime``
once per request, so a reload never mixes two policies in one answer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass

from icapdlp.adaptation.api import Adapter
from icapdlp.icap import CodecLimits
from icapdlp.observability.events import NullObserver, Observer, TransactionRecord
from icapdlp.server.access import AllowList, tls_context
from icapdlp.server.connection import IcapConnection
from icapdlp.icap.replies import Replies

log = logging.getLogger("icapdlp.server")

#: listen() backlog: Squid opens many connections at once after a restart
LISTEN_BACKLOG = 1024
#: longest pause between deadline sweeps; shorter when a timeout is configured shorter
MAX_SWEEP_INTERVAL = 0.5


def ensure_port_free(host: str, port: int) -> None:
    """Fail like a plain bind would if ``port`` is taken.

    With SO_REUSEPORT a second icapdlp configured onto the same port would
    silently share its traffic instead of failing; the first acceptor checks
    with an ordinary bind before it opens the shared listener.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, port))  # raises OSError(EADDRINUSE) when anything listens there


@dataclass(frozen=True)
class Runtime:
    """What one configuration generation decides with: the adapter and its replies (ISTag)."""

    adapter: Adapter
    replies: Replies


class IcapServer:
    def __init__(self, settings, runtime: Runtime, observer: Observer | None = None, *,
                 port: int | None = None, reuse_port: bool = False) -> None:
        self.settings = settings
        self._port = settings.server.port if port is None else port
        self._reuse_port = reuse_port
        self.limits = settings.limits
        self.codec_limits = CodecLimits.from_options(settings.limits)
        self.runtime = runtime
        self.observer = observer or NullObserver()
        self.allow_list = AllowList(settings.server.allowed_clients)
        self.connections: set[IcapConnection] = set()
        self.stopping = False
        self._servers: list[asyncio.base_events.Server] = []
        self._sweeper: asyncio.Task | None = None
        self._tls_context = tls_context(settings.tls) if settings.tls.enabled else None
        self.addresses: list[tuple[str, int]] = []

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server_opts = self.settings.server
        self._servers.append(await loop.create_server(
            lambda: IcapConnection(self), server_opts.host, self._port,
            backlog=LISTEN_BACKLOG, reuse_address=True, reuse_port=self._reuse_port or None))
        if self._tls_context is not None:
            self._servers.append(await loop.create_server(
                lambda: IcapConnection(self), server_opts.host, self.settings.tls.port,
                backlog=LISTEN_BACKLOG, reuse_address=True, reuse_port=self._reuse_port or None,
                ssl=self._tls_context))
        self._sweeper = loop.create_task(self._sweep())
        #: (host, port) of each listener, plain first; real ports even when 0 was configured
        self.addresses = [s.sockets[0].getsockname()[:2] for s in self._servers]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def tls_port(self) -> int | None:
        return self.addresses[1][1] if len(self._servers) > 1 else None

    def swap_runtime(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish for ``grace`` seconds, then abort the rest."""
        self.stopping = True
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.shutdown()
        deadline = time.monotonic() + grace
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            await server.wait_closed()

    # -- connections --------------------------------------------------------------

    def admit(self, conn: IcapConnection) -> bool:
        """Called on accept: enforce the allow-list and max_connections."""
        transport = conn.transport
        peer = transport.get_extra_info("peername")
        if not self.allow_list.allows(peer):
            log.warning("refused connection from a client not in server.allowed_clients")
            return False
        if self.stopping:
            return False
        if len(self.connections) >= self.limits.max_connections:
            self.observer.request_started()
            transport.write(self.runtime.replies.error(503, close=True))
            self.observer.request_finished(TransactionRecord(
                icap_method="OTHER", icap_status=503, outcome="error", duration_seconds=0.0))
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:  # small responses (204) must not wait for Nagle
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.connections.add(conn)
        self.observer.connection_opened()
        return True

    def forget(self, conn: IcapConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.observer.connection_closed()

    async def _sweep(self) -> None:
        limits = self.limits
        interval = min(MAX_SWEEP_INTERVAL, limits.header_timeout / 5, limits.idle_timeout / 5)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                conn.check_deadline(now)
