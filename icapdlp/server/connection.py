"""One ICAP connection: the asyncio Protocol that drives the sans-IO exchange.

Everything ICAP decides lives in :class:`~icapdlp.icap.exchange.ServerExchange`;
this class only moves bytes, keeps a body the adapter asked for, calls the
adapter, and enforces deadlines. ``data_received`` advances the exchange
synchronously for as long as nothing needs waiting for, so a request whose
answer is known at once (every "not DICOM" 204) costs no task, no future and
no extra loop turn. Only three things wait, each in a task of its own: an
adapter call that suspends (a worker is busy with the body), a spooled body
being streamed back, and room in the socket's send buffer.

Deadlines are plain numbers checked by the server's sweeper, which costs
nothing per request. Inside a request, every wait on the client (for more
of the body, or for it to read our answer) has its own deadline,
``idle_timeout`` after the last progress: a client that stops in the middle
of a body is cut off then, not after the whole request timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback

from icapdlp.adaptation.api import Body, NeedBody, NoChange, Replace
from icapdlp.icap import NEED_DATA
from icapdlp.icap.exchange import Adapt, Finished, KeepBody, LimitHit, Outcome, SendBody, ServerExchange, Stage
from icapdlp.observability.events import TransactionRecord
from icapdlp.server import decisions
from icapdlp.server.eager import Suspended, run_until_suspended
from icapdlp.server.spool import Spool
from icapdlp.server.workers import Overloaded
from icapdlp.verdict import BlockReason, Blocked

log = logging.getLogger("icapdlp.server")

#: stop reading from the socket while this much is parsed-but-unconsumed: a
#: client streaming faster than we spool must not grow our memory
READ_HIGH_WATER = 256 * 1024
#: a body held open gets its first filler once this much of it is kept: a smaller one fits
#: Squid's buffer and keeps its cheaper 204
HOLD_OPEN_AFTER = 32 * 1024
#: pieces read from a spooled body file per write; large enough for few syscalls,
#: small enough that one slow client holds little memory
FILE_PIECE_BYTES = 256 * 1024
#: a body that pauses with more than this kept is held open, not checked: Squid 5.7 pauses at
#: about 64 KiB, and the check of what was kept runs at once on the event loop (about 40 ms per
#: MiB of binary, 150-550 ms per MiB of text, adversarial url-encoded text the most), so it must
#: stay small
RELEASE_CATCH_UP_BYTES = 256 * 1024

# what the connection is waiting for; each phase has its own timeout
IDLE, HEAD, REQUEST, CLOSING = "idle", "head", "request", "closing"


class ConnectionLost(Exception):
    """The peer went away while we were writing."""


class IcapConnection(asyncio.Protocol):
    """Socket side of one ICAP connection."""

    def __init__(self, server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.exchange: ServerExchange | None = None
        self.phase = IDLE
        self.deadline = float("inf")
        #: while a request waits on the client (body bytes, or room to write): idle_timeout from the
        #: last progress; infinite while the server itself is working
        self.stall_deadline = float("inf")
        self.lost = False
        self.closed = False
        self.request_began = 0.0  # monotonic time of the first byte of the current request
        self._task: asyncio.Task | None = None  # the one thing being waited for, if any
        self._task_is_adapter = False  # that thing is the adapter's answer (nobody waits for it once we are lost)
        self._drain_waiter: asyncio.Future | None = None
        self._write_paused = False
        self._read_paused = False
        # the current request's adaptation
        self._told_started = False
        self._tx = None
        self._spool: Spool | None = None
        self._reason: BlockReason | None = None
        self._report = None
        #: the adapter's check that clears a kept body's bytes for release as they arrive, and the
        #: count of leading body bytes it has cleared (released ones: ``exchange.released``)
        self._release = None
        self._cleared = 0
        #: what to hold open with if the release check stops before it cleared a byte
        self._hold_later = None
        #: neither the release check nor the held-open answer starts before the body pauses
        #: (limits.release_after_pause): a client that keeps sending is answered after the verdict
        self._waits = False
        #: or the adapter's HoldOpen: an answer begun early keeps the client reading while the body is held whole
        self._hold = None
        #: a finished answer still in the socket's send buffer: recorded once the client reads it
        self._unsent_finish: Finished | None = None

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        if not self.server.admit(self):
            transport.close()
            self.lost = self.closed = True
            return
        self.exchange = ServerExchange(self.server.codec_limits, self._runtime)
        self.deadline = time.monotonic() + self.server.limits.idle_timeout

    def _runtime(self):
        return self.server.runtime

    def data_received(self, data: bytes) -> None:
        if self.phase == IDLE:
            self.phase = HEAD
            self.request_began = now = time.monotonic()
            self.deadline = now + self.server.limits.header_timeout
        exchange = self.exchange
        exchange.receive_data(data)
        if self._task is None:
            self._advance()
        if not self.closed and exchange.buffered > READ_HIGH_WATER and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.exchange is not None:
            self.exchange.receive_data(b"")
            if self._task is None:
                self._advance()
        return True  # keep the write side open for a final response

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionLost())
        if self.exchange is not None:
            unsent, self._unsent_finish = self._unsent_finish, None
            if unsent is not None:  # the answer never reached the client
                unsent.outcome, unsent.keep_alive = Outcome.ERROR, False
                self._finish(unsent)
            self.exchange.receive_data(b"")
            task = self._task
            if task is not None and self._task_is_adapter:
                # nobody will read the answer: give its queue place or worker back now, not after
                # the worker deadline, and record the request as the error it ended in
                self._task = None
                task.cancel()
                self.exchange.abandon()
            if self._task is None and not self.closed:
                self._advance()  # a request cut off mid-way is recorded as an error
            self.server.forget(self)
        if self._task is None:  # else the adapter may still read the body: the task's _finish closes it
            self._close_spool()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif self._task is None and not self.closed:
            if self._release is not None:
                self._release_cleared()
            self._advance()

    # -- driving the exchange ----------------------------------------------------------

    def _advance(self) -> None:
        """Pull events from the exchange and act on them until something must be waited for."""
        try:
            self._advance_until_wait()
        except Exception as exc:  # a bug: log where, never the message (it could quote payload bytes)
            self._handler_failed(exc)

    def _handler_failed(self, exc: Exception) -> None:
        """A bug in this driver: the request in progress is recorded as an error and the connection closes."""
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("connection handler failed with %s\n%s", type(exc).__name__, frames)
        exchange = self.exchange
        if exchange is not None and (exchange.in_request or self._tx is not None) and not self.closed:
            try:
                exchange.abandon()
                finished = exchange.next_event()
                if finished.__class__ is Finished:
                    self._finish(finished)
            except Exception as again:  # noqa: BLE001 - recording must not raise a second time
                log.error("recording the failed request failed with %s", type(again).__name__)
        self.close()

    def _advance_until_wait(self) -> None:
        exchange = self.exchange
        self.stall_deadline = float("inf")
        while not self.closed:
            # resume_writing() comes back here; a body being released is still read (and kept)
            if self._write_paused and not self.lost and not (self._reading_on() and exchange.may_release):
                self._flush()
                self.stall_deadline = time.monotonic() + self.server.limits.idle_timeout
                return
            event = self._unsent_finish
            if event is None:
                event = exchange.next_event()
            else:
                self._unsent_finish = None
            cls = event.__class__
            if cls is Adapt:
                if self.phase is not REQUEST:
                    self._enter_request()
                if not self._adapt(event):
                    self._flush()
                    return
            elif cls is Finished:
                self._release = self._hold = None
                if event.bytes_out:  # a body may have filled the socket's buffer: the client must read it
                    self._flush()
                    if self._write_paused and not self.lost:  # recorded once the client has read it
                        self._unsent_finish = event
                        continue
                self._finish(event)
                if not event.keep_alive or self.server.stopping or self.lost:
                    self.close()
                    return
            elif cls is KeepBody:
                self._keep(event.data)
            elif event is NEED_DATA:
                self._flush()
                if self._read_paused:
                    self._read_paused = False
                    self.transport.resume_reading()
                if exchange.in_request:
                    if self.phase is not REQUEST:
                        self._enter_request()
                    self.stall_deadline = time.monotonic() + self.server.limits.idle_timeout
                return
            elif cls is SendBody:
                self._flush()
                self._task = asyncio.get_running_loop().create_task(self._stream(event.body))
                self._task_is_adapter = False
                return
            elif cls is LimitHit:
                self._release = self._hold = None
                if self._tx is None:  # the limit hit inside the preview, before the adapter was asked
                    self._tx = decisions.new_transaction(exchange.request)
                decisions.block(exchange, self._tx, exchange.context.adapter, BlockReason.LIMIT_EXCEEDED,
                                "body larger than limits.body_bytes", close=True)
                self._reason = BlockReason.LIMIT_EXCEEDED
            else:  # CONNECTION_CLOSED: the peer closed between requests
                self.close()
                return

    def _reading_on(self) -> bool:
        """A body is being kept with an answer that may already have begun: read on while writing waits."""
        return self._release is not None or self._hold is not None

    def _echoed(self) -> int:
        """Leading bytes of the kept body already sent (release), which the end of the answer skips."""
        return 0 if self._hold is not None else self.exchange.released

    def _enter_request(self) -> None:
        """The head is read: from now on the request timeout runs, from the request's first byte."""
        self.phase = REQUEST
        self.deadline = self.request_began + self.server.limits.request_timeout

    def _adapt(self, event: Adapt) -> bool:
        """Ask the adapter; True when its answer is already applied, False when a task awaits it."""
        if not self._told_started:
            self._told_started = True
            self.server.observer.request_started()
        adapter = self.exchange.context.adapter
        if event.stage is Stage.PREVIEW:
            self._tx = tx = decisions.new_transaction(event.request)
            allowed, kept = decisions.PREVIEW_DECISIONS, None
            call = adapter.on_preview, tx, event.preview, event.complete
        else:
            tx = self._tx
            self._release = self._hold_later = None  # the body is whole: what was not released goes with the answer
            self._waits = False
            try:
                kept = self._spool.body() if self._spool is not None else Body(data=b"")
            except Blocked as exc:  # the spool could not be flushed
                self._blocked(exc.reason, exc.detail)
                return True
            allowed = decisions.BODY_DECISIONS
            call = adapter.on_body, tx, kept
        try:
            answer = run_until_suspended(call[0](*call[1:]))
        except Overloaded:
            self.exchange.fail(503)
            return True
        except Exception as exc:
            answer = decisions.from_error(exc, tx)
        if answer.__class__ is Suspended:
            self._task = asyncio.get_running_loop().create_task(self._await_adapter(answer, allowed, kept))
            self._task_is_adapter = True
            return False
        self._apply(answer, allowed, kept)
        return True

    async def _await_adapter(self, suspended: Suspended, allowed: tuple, kept: Body | None) -> None:
        try:
            answer = await suspended
        except asyncio.CancelledError:
            raise  # a deadline: check_deadline() already answered
        except Overloaded:
            self._task = None
            self.exchange.fail(503)
            self._advance()
            return
        except Exception as exc:
            answer = decisions.from_error(exc, self._tx)
        self._task = None
        try:
            self._apply(answer, allowed, kept)
        except Exception as exc:
            self._handler_failed(exc)
            return
        self._advance()

    def _apply(self, answer, allowed: tuple, kept: Body | None) -> None:
        exchange = self.exchange
        if answer.__class__ is NoChange:  # the common answer: nothing to check or convert
            self._report = answer.report
            exchange.no_change(decisions.payload(kept, self._echoed()))
            return
        tx = self._tx
        decision = decisions.checked(answer, allowed, tx)
        self._report = getattr(decision, "report", None)
        if decision.__class__ is decisions.Block:
            self._reason = decision.reason
        elif decision.__class__ is NeedBody:
            self._release = decision.release
            if decision.release is None:
                self._hold = decision.hold_open
            else:
                self._hold_later = decision.hold_open
            if self._release is not None or self._hold is not None:
                self._wait_for_pause()
        elif decision.__class__ is Replace and self._hold is not None and exchange.response_started:
            self._reason = decisions.continue_held(exchange, decision, self._hold, tx, exchange.context.adapter)
            return
        decisions.apply(exchange, decision, tx, exchange.context.adapter, kept, self._echoed())

    def _keep(self, data: bytes) -> None:
        spool = self._spool
        if spool is None:
            limits = self.server.limits
            spool = self._spool = Spool(limits.spool_memory_bytes, limits.spool_dir)
        try:
            spool.write(data)
        except Blocked as exc:  # the rest of the body stays unread: answer and close
            self._release = self._hold = None
            self._blocked(exc.reason, exc.detail)
            return
        if self._waits:
            return
        if self._hold is not None:
            self._send_filler()
        elif self._release is not None:
            self._feed_release(data)

    def _feed_release(self, data: bytes) -> None:
        """Feed the release check and echo what it clears; hold open instead once it stops unanswered."""
        release = self._release
        try:
            self._cleared += release.feed(data)
            stopped = release.stopped
        except Exception as exc:  # a bug: release nothing more, the end-of-body verdict decides alone
            log.error("release check failed with %s; holding the body whole", type(exc).__name__)
            self._release, stopped = None, True
        if stopped and not self.exchange.response_started:
            self._hold_instead()
        elif self._release is not None:
            self._release_cleared()  # what it cleared before it stopped still goes

    def _hold_instead(self) -> None:
        """The release ended before a byte left: hold the answer open instead, if the adapter said how."""
        self._release, self._hold, self._hold_later = None, self._hold_later, None
        if self._hold is not None:
            self._send_filler()

    def _wait_for_pause(self) -> None:
        """Start the release check or the held-open answer only once the body stops arriving.

        Why wait: the check walks every window of the body as it arrives, about
        twice the work of the one walk of the whole body at its end, and an
        answer begun early can no longer become a block page; only a client
        that stops sending until it is answered needs either (Squid 5.7). A
        timer looks every ``release_after_pause`` seconds whether the kept body
        grew; the first time it did not, the check is fed what was kept so far
        (or the held-open answer begins) and from then on every arrival.
        """
        pause = self.server.limits.release_after_pause
        self._waits = pause > 0
        if self._waits:
            kept = self._spool.size if self._spool is not None else 0
            asyncio.get_running_loop().call_later(pause, self._answer_if_paused, self._tx, kept)

    def _answer_if_paused(self, tx, kept_then: int) -> None:
        if tx is not self._tx or not self._waits or self.closed or self.lost:
            return  # the body ended, or the request is over
        kept = self._spool.size if self._spool is not None else 0
        if kept != kept_then:  # still arriving
            asyncio.get_running_loop().call_later(self.server.limits.release_after_pause,
                                                  self._answer_if_paused, tx, kept)
            return
        self._waits = False
        try:
            if self._release is not None:
                self._catch_up(kept)
            elif self._hold is not None:
                self._send_filler()
            self._flush()
        except Exception as exc:
            self._handler_failed(exc)

    def _catch_up(self, kept: int) -> None:
        """Feed the release check what was kept before the pause, all at once, on this event loop."""
        if kept > RELEASE_CATCH_UP_BYTES:  # too much to check at once
            self._hold_instead()
            return
        try:
            kept_bytes = self._spool.read(0, kept) if kept else b""
        except Blocked as exc:  # the spool could not be read back
            self._release = self._hold_later = None
            self._blocked(exc.reason, exc.detail)
            if self._task is None:
                self._advance()
            return
        self._feed_release(kept_bytes)

    def _send_filler(self) -> None:
        """Begin the held-open answer, and send filler for the body bytes that just arrived."""
        exchange, spool = self.exchange, self._spool
        # no spool yet: the pause came before the body's first byte (no preview, a slow origin)
        if self._write_paused or not exchange.may_release or spool is None or spool.size < HOLD_OPEN_AFTER:
            return
        if not exchange.response_started:
            exchange.begin(self._hold.response)
        exchange.release(self._hold.filler)

    def _release_cleared(self) -> None:
        """Echo the bytes the release check cleared, read back from the spool, while the client reads.

        While the client does not read our answer, nothing more is released
        but the body is still read and kept (a client that writes its whole
        request before reading must not deadlock); resume_writing() goes on.
        """
        exchange = self.exchange
        while exchange.released < self._cleared and not self._write_paused and exchange.may_release:
            start = exchange.released
            try:
                piece = self._spool.read(start, min(self._cleared, start + FILE_PIECE_BYTES))
            except Blocked as exc:
                self._release = None
                self._blocked(exc.reason, exc.detail)
                return
            exchange.release(piece)
            self._flush()  # may pause writing: the rest waits for resume_writing()

    def _blocked(self, reason: BlockReason, detail: str) -> None:
        self._reason = reason
        decisions.block(self.exchange, self._tx, self.exchange.context.adapter, reason, detail, close=True)

    async def _stream(self, body: Body) -> None:
        """Send a spooled body (an echo or a worker's output file) piece by piece, as the client reads."""
        exchange = self.exchange
        try:
            with body.open() as handle:
                while piece := handle.read(FILE_PIECE_BYTES):
                    exchange.send_body_piece(piece)
                    await self._drain()
            exchange.end_body()
        except asyncio.CancelledError:
            raise  # a deadline: check_deadline() already answered
        except ConnectionLost:
            exchange.abandon()
        except OSError as exc:  # the file went away under us: what was sent cannot be completed
            log.error("reading a body to send failed (%s)", type(exc).__name__)
            exchange.abandon()
        self._task = None
        self._advance()

    def _finish(self, event: Finished) -> None:
        """Record the finished request and get ready for the next one."""
        observer = self.server.observer
        if not self._told_started:
            observer.request_started()
        now = time.monotonic()
        observer.request_finished(TransactionRecord(
            icap_method=event.icap_method, icap_status=event.status, outcome=event.outcome.value,
            duration_seconds=now - (self.request_began or now), bytes_in=event.bytes_in,
            bytes_out=event.bytes_out, tx=self._tx, reason=self._reason, report=self._report))
        self._told_started = False
        self._tx = self._reason = self._report = self._release = self._hold = self._hold_later = None
        self._cleared = 0
        self._waits = False
        if self._spool is not None:
            self._close_spool()
        if self.exchange.buffered:
            self.phase, self.deadline, self.request_began = HEAD, now + self.server.limits.header_timeout, now
        else:
            self.phase, self.deadline = IDLE, now + self.server.limits.idle_timeout

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    # -- writing ---------------------------------------------------------------------------

    def _flush(self) -> None:
        """Everything the exchange has written leaves in one send.

        One send per response matters twice: fewer syscalls on the 204 hot
        path, and clients such as c-icap-client that read a preview answer
        with a single recv see the whole response.
        """
        data = self.exchange.data_to_send()
        if data and not self.lost:
            self.transport.write(data)

    async def _drain(self) -> None:
        self._flush()
        if self.lost:
            raise ConnectionLost()
        if self._write_paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            self.stall_deadline = time.monotonic() + self.server.limits.idle_timeout
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
                self.stall_deadline = float("inf")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.phase = CLOSING
        if self.lost and self._task is None:  # connection_lost left the spool to a task that is over now
            self._close_spool()
        if self.exchange is not None:
            self._flush()
        if self.transport is not None:
            self.transport.close()

    # -- deadlines and shutdown -----------------------------------------------------

    def check_deadline(self, now: float) -> None:
        """Called by the sweeper: enforce the idle, header or request timeout, or a client's stall."""
        if (now < self.deadline and now < self.stall_deadline) or self.lost or self.closed:
            return
        if self.phase == IDLE or self.phase == CLOSING:
            self.close()
        elif self._write_paused:
            # the client stopped reading our answer, or is overdue while our answer waits unread:
            # nothing more can reach it. A 408 here would follow a complete answer (a second one) or
            # restart the stall deadline at every sweep, holding the connection forever.
            self.abort()
        else:
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
            self.exchange.fail(408)  # an ICAP error if nothing of the answer was sent yet
            self._advance()

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else after the response in progress."""
        if self.phase == IDLE and (self.exchange is None or self.exchange.idle):
            self.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
