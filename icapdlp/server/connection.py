"""One ICAP connection: an asyncio Protocol feeding the sans-IO parser.

``data_received`` only appends bytes to the parser and wakes the
connection's task; the task pulls events and runs one request at a time
(:mod:`icapdlp.server.exchange`), so request handling reads as straight-line
code while the socket side stays a few dozen lines. Deadlines are plain
numbers checked by the server's sweeper, which costs nothing per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback

from icapdlp.icap import CONNECTION_CLOSED, NEED_DATA, ProtocolError, Request, RequestParser
from icapdlp.observability.events import TransactionRecord
from icapdlp.server.exchange import ConnectionLost, serve_request

log = logging.getLogger("icapdlp.server")

#: stop reading from the socket while this much is parsed-but-unconsumed: a
#: client streaming faster than we spool must not grow our memory
READ_HIGH_WATER = 256 * 1024

# what the connection is waiting for; each phase has its own timeout
IDLE, HEAD, REQUEST, CLOSING = "idle", "head", "request", "closing"


class IcapConnection(asyncio.Protocol):
    """Socket side of one ICAP connection."""

    def __init__(self, server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser: RequestParser | None = None
        self.phase = IDLE
        self.deadline = float("inf")
        self.timed_out: str | None = None  # the phase whose deadline passed
        self.lost = False
        self.response_started = False  # bytes of the current response were written
        self.request_began = 0.0  # monotonic time of the first byte of the current request
        self._waiter: asyncio.Future | None = None
        self._drain_waiter: asyncio.Future | None = None
        self._write_paused = False
        self._read_paused = False
        self._out: list[bytes] = []
        self._task: asyncio.Task | None = None

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        if not self.server.admit(self):
            transport.close()
            self.lost = True
            return
        self.parser = RequestParser(self.server.codec_limits)
        self.deadline = time.monotonic() + self.server.limits.idle_timeout
        self._task = asyncio.get_running_loop().create_task(self._run())

    def data_received(self, data: bytes) -> None:
        if self.phase == IDLE:
            self.phase = HEAD
            self.request_began = now = time.monotonic()
            self.deadline = now + self.server.limits.header_timeout
        parser = self.parser
        parser.receive_data(data)
        if parser.buffered > READ_HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        if self.parser is not None:
            self.parser.receive_data(b"")
        self._wake()
        return True  # keep the write side open for a final response

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.parser is not None:
            self.parser.receive_data(b"")
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionLost())
        if self._task is not None:
            self.server.forget(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- primitives for the exchange ---------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def next_event(self):
        """The next parser event, waiting for bytes as needed (never NEED_DATA)."""
        parser = self.parser
        while True:
            event = parser.next_event()
            if event is not NEED_DATA:
                return event
            if self._read_paused:
                self._read_paused = False
                self.transport.resume_reading()
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            await waiter

    def write(self, data: bytes) -> None:
        """Queue response bytes; they leave in one send at the next ``flush``/``drain``.

        One send per response matters twice: fewer syscalls on the 204 hot
        path, and clients such as c-icap-client that read a preview answer
        with a single recv see the whole response.
        """
        if data and not self.lost:
            self.response_started = True
            self._out.append(data)

    def flush(self) -> None:
        out = self._out
        if out:
            if not self.lost:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def write_interim(self, data: bytes) -> None:
        """An interim answer (100 Continue): does not count as the start of the final response."""
        if not self.lost:
            self.flush()
            self.transport.write(data)

    async def drain(self) -> None:
        self.flush()
        if self.lost:
            raise ConnectionLost()
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    def close(self) -> None:
        self.phase = CLOSING
        self.flush()
        if self.transport is not None:
            self.transport.close()

    # -- deadlines and shutdown -----------------------------------------------------

    def check_deadline(self, now: float) -> None:
        """Called by the sweeper: enforce the idle, header or request timeout."""
        if now < self.deadline or self.lost:
            return
        if self.phase == IDLE or self.phase == CLOSING:
            self.close()
        elif self._task is not None and self.timed_out is None:
            self.timed_out = self.phase
            self._task.cancel()

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else after the response in progress."""
        if self.phase == IDLE and (self.parser is None or self.parser.at_request_boundary):
            self.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- the connection's task ------------------------------------------------------

    async def _run(self) -> None:
        server = self.server
        limits = server.limits
        try:
            while not server.stopping:
                self.response_started = False
                now = time.monotonic()
                if self.parser.buffered:
                    self.phase, self.deadline, self.request_began = HEAD, now + limits.header_timeout, now
                else:
                    self.phase, self.deadline = IDLE, now + limits.idle_timeout
                try:
                    event = await self.next_event()
                except ProtocolError as exc:
                    self._refuse(exc.status_hint)
                    return
                if event is CONNECTION_CLOSED:
                    return
                assert isinstance(event, Request)
                started = self.request_began
                self.phase, self.deadline = REQUEST, started + limits.request_timeout
                keep_alive = await serve_request(self, event, server.runtime, started)
                self.flush()
                if not keep_alive or self.lost:
                    return
        except asyncio.CancelledError:
            if self.timed_out is None:
                raise
            if self.timed_out == HEAD or not self.response_started:
                self._refuse(408)
        except ConnectionLost:
            pass
        except Exception as exc:  # a bug: log where, never the message (it could quote payload bytes)
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("connection handler failed with %s\n%s", type(exc).__name__, frames)
        finally:
            self.close()

    def _refuse(self, status: int) -> None:
        """Answer a request we could not even read (bad head, timeout) and close."""
        observer = self.server.observer
        observer.request_started()
        self.write(self.server.runtime.replies.error(status, close=True))
        observer.request_finished(TransactionRecord(
            icap_method="OTHER", icap_status=status, outcome="error",
            duration_seconds=time.monotonic() - (self.request_began or time.monotonic())))
