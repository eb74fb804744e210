"""One ICAP connection: an asyncio Protocol feeding the sans-IO parser.

The connection's task pulls events and runs one request at a time
(:mod:`icapdlp.server.exchange`), so request handling reads as straight-line
code while the socket side stays a few dozen lines. Deadlines are plain
numbers checked by the server's sweeper, which costs nothing per request.

Inside a request, every wait on the client (for more of the body, or for
it to read our answer) has its own deadline, ``idle_timeout`` after the
last progress: a client that stops in the middle of a body (after a 100
Continue, say) is cut off then, not after the whole request timeout, so a
few hundred stalled uploads cannot hold every connection slot.

Fast path: while the task waits for the next request, ``data_received``
starts the request's coroutine itself (``coro.send(None)``). No-change
traffic (a 204 decided from the head or the preview) usually finishes in
that first step, so it costs no future, no task wake-up and no extra loop
iteration. When the coroutine does suspend (more bytes needed, an adapter
awaiting a worker) it is handed to the task, which resumes it exactly where
it stopped: same code, same bytes on the wire, same timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback

from icapdlp.icap import CONNECTION_CLOSED, NEED_DATA, ProtocolError, Request, RequestParser
from icapdlp.observability.events import TransactionRecord
from icapdlp.server.exchange import ConnectionLost
from icapdlp.server.fastlane import answer_at_once
from icapdlp.server.resume import Resume

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
        #: while a request waits on the client (body bytes, or room to write): idle_timeout from the
        #: last progress; infinite while the server itself is working
        self.stall_deadline = float("inf")
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
        self._park_waiter: asyncio.Future | None = None
        self._parked = False  # the task waits for the next request: data_received may serve it
        #: for the task: a Resume, CONNECTION_CLOSED (stop) or a ProtocolError met in data_received
        self._stash = None

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
        if self._parked and self._stash is None:
            self._serve_inline()
            if self._stash is None:
                return  # still parked: the parser holds less than one (size-limited) head
        if parser.buffered > READ_HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def _serve_inline(self) -> None:
        """Serve the buffered requests without the task while each finishes in one step.

        Mirrors one turn of :meth:`_run` per request; whatever does not finish
        here (a suspended request, a protocol error, the end of the
        connection) is stashed for the task, which is then woken.
        """
        server = self.server
        parser = self.parser
        while not server.stopping and not self.lost:
            try:
                event = parser.next_event()
            except ProtocolError as exc:
                self._hand_to_task(exc)
                return
            if event is NEED_DATA:
                return
            if event is CONNECTION_CLOSED:
                self._hand_to_task(event)
                return
            try:
                outcome = self._begin_request(event)
            except Exception as exc:  # noqa: BLE001 - a bug: the task logs it as _run does (never the
                self._hand_to_task(Resume(error=exc))  # message) and closes; from data_received asyncio
                return  # would log str(exc), which could quote payload bytes
            if outcome.__class__ is not bool:  # the general path: run its first step here
                first = Resume.first_step(outcome)
                if not first.finished:  # it awaits, or failed: the task finishes it
                    self.flush()
                    self._hand_to_task(first)
                    return
                outcome = first.value
            self.flush()
            if not outcome or self.lost:
                self._hand_to_task(CONNECTION_CLOSED)
                return
            self._await_next_request()
        self._hand_to_task(CONNECTION_CLOSED)  # stopping: the task closes the connection

    def _begin_request(self, request: Request):
        """Start serving ``request``: keep-alive if answered at once, else the coroutine that answers it."""
        started = self.request_began
        self.phase, self.deadline = REQUEST, started + self.server.limits.request_timeout
        return answer_at_once(self, request, self.server.runtime, started)

    def _await_next_request(self) -> None:
        """A response is complete: the header deadline runs if bytes of the next request are here, else idle."""
        self.response_started = False
        now = time.monotonic()
        if self.parser.buffered:
            self.phase, self.deadline, self.request_began = HEAD, now + self.server.limits.header_timeout, now
        else:
            self.phase, self.deadline = IDLE, now + self.server.limits.idle_timeout

    def _hand_to_task(self, item) -> None:
        self._stash = item
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
        """Resolve whatever waits for bytes: a request's ``next_event`` and/or the parked task."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        waiter = self._park_waiter
        if waiter is not None:
            self._park_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _resume_reading(self) -> None:
        """Undo ``data_received``'s back-pressure once the parser needs bytes again."""
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()

    async def next_request(self):
        """The next request, or what ``data_received`` left for the task to finish."""
        parser = self.parser
        while True:
            stash = self._stash
            if stash is not None:
                self._stash = None
                if isinstance(stash, ProtocolError):
                    raise stash
                return stash
            event = parser.next_event()
            if event is not NEED_DATA:
                return event
            self._resume_reading()
            # its own slot: a request started in data_received may set _waiter before the task runs
            self._park_waiter = waiter = asyncio.get_running_loop().create_future()
            self._parked = True
            try:
                await waiter
            except asyncio.CancelledError as exc:
                stash = self._stash
                if isinstance(stash, Resume) and stash.error is None:
                    # a timeout while the request waited for the task: it belongs to the request
                    self._stash = None
                    stash.throw_first = exc
                    return stash
                raise
            finally:
                self._parked = False

    async def next_event(self):
        """The next parser event, waiting for bytes as needed (never NEED_DATA)."""
        parser = self.parser
        while True:
            event = parser.next_event()
            if event is not NEED_DATA:
                return event
            self._resume_reading()
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            self.stall_deadline = time.monotonic() + self.server.limits.idle_timeout
            try:
                await waiter
            finally:
                self.stall_deadline = float("inf")

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
            self.stall_deadline = time.monotonic() + self.server.limits.idle_timeout
            try:
                await self._drain_waiter
            finally:
                self.stall_deadline = float("inf")

    def close(self) -> None:
        self.phase = CLOSING
        self.flush()
        if self.transport is not None:
            self.transport.close()

    # -- deadlines and shutdown -----------------------------------------------------

    def check_deadline(self, now: float) -> None:
        """Called by the sweeper: enforce the idle, header or request timeout, or a client's stall."""
        if (now < self.deadline and now < self.stall_deadline) or self.lost:
            return
        if self.phase == IDLE or self.phase == CLOSING:
            self.close()
        elif now >= self.stall_deadline and self._write_paused:
            self.abort()  # the client stopped reading our answer: nothing more can reach it
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
        try:
            while self._stash is not None or not server.stopping:
                if self._stash is None:  # else data_received already set up the next step
                    self._await_next_request()
                try:
                    event = await self.next_request()
                except ProtocolError as exc:
                    self._refuse(exc.status_hint)
                    return
                if event is CONNECTION_CLOSED:
                    return
                if isinstance(event, Resume):  # a request data_received started (phase already set)
                    keep_alive = await event
                else:
                    assert isinstance(event, Request)
                    keep_alive = self._begin_request(event)
                    if keep_alive.__class__ is not bool:
                        keep_alive = await keep_alive
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
