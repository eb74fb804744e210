"""The server side of an ICAP connection, sans-IO: which answer is legal when.

In the manner of h11, one :class:`ServerExchange` per connection turns bytes
into a short list of things the driver must do, and the driver's decisions
into bytes::

    exchange.receive_data(data)            # b"" when the peer closed
    event = exchange.next_event()          # NEED_DATA, CONNECTION_CLOSED or one of:
        Adapt(request, stage, preview, complete)  -> answer with a decision method
        KeepBody(data)                     -> keep these body bytes (the adapter asked for the body);
                                              release() may echo checked ones while the rest arrives
        SendBody(body)                     -> stream ``body`` with send_body_piece() / end_body()
        LimitHit(error)                    -> a body limit inside an adapted request: respond() or fail()
        Finished(...)                      -> one request is answered; close unless keep_alive
    transport.write(exchange.data_to_send())

The decision methods (:meth:`no_change`, :meth:`need_body`, :meth:`respond`,
:meth:`partial`, :meth:`fail`) are only legal in the states listed in
``_LEGAL``; the exchange applies RFC 3507's rules itself: routing (404, 405,
400 for a REQMOD/RESPMOD without the HTTP head it adapts), ``100 Continue``
after a preview, 204 only where the client allowed it or inside a preview,
an echo otherwise (streamed as it arrives when there was no preview), 206
only from a preview and only with ``Allow: 206``, finishing a preview early
when the answer comes from it, and reading a body to its end before an early
answer so the client is never reset mid-upload. A body being kept may be
echoed as it is cleared (:meth:`release`); such an answer can then only be
completed unchanged or cut off, never replaced.

Nothing here awaits, spools or knows the adapter's types: the server maps
the adapter's decisions onto these methods (``icapdlp.server.decisions``).
Every parser error becomes an ICAP error answer and a closed connection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from icapdlp.icap.chunked import LAST_CHUNK, encode_chunk, last_chunk
from icapdlp.icap.errors import LimitExceeded, ProtocolError
from icapdlp.icap.events import (
    CONNECTION_CLOSED, NEED_DATA, BodyData, EndOfMessage, PreviewEnd, Request,
)
from icapdlp.icap.parser import CodecLimits, RequestParser

ADAPTED_METHODS = frozenset({"REQMOD", "RESPMOD"})
_RECORDED_METHODS = frozenset({"OPTIONS", "REQMOD", "RESPMOD"})


class Stage(enum.Enum):
    """What the adapter is asked about."""

    PREVIEW = "preview"  # heads plus the preview (b"" without one); complete: the preview is the body
    BODY = "body"  # the whole body, kept by the driver from KeepBody events


class Outcome(str, enum.Enum):
    """How a request ended, as metrics and the audit log name it."""

    NO_CHANGE = "no-change"
    REWRITTEN = "rewritten"
    BLOCKED = "blocked"
    ERROR = "error"


@dataclass(slots=True)
class Adapt:
    """Ask the adapter; answer with exactly one decision method."""

    request: Request
    stage: Stage
    preview: bytes = b""
    complete: bool = True


@dataclass(slots=True)
class KeepBody:
    """A piece of a body the adapter asked for; the driver keeps it for the BODY stage."""

    data: bytes


@dataclass(slots=True)
class SendBody:
    """Stream ``body`` (the driver's object) with :meth:`ServerExchange.send_body_piece`, then ``end_body``."""

    body: object


@dataclass(slots=True)
class LimitHit:
    """The body outgrew ``limits.body_bytes`` before any answer: the driver blocks or fails, and the connection closes."""

    error: LimitExceeded


@dataclass(slots=True)
class Finished:
    """One request is answered (or abandoned). Close the connection unless ``keep_alive``."""

    request: Request | None  # None when not even the head could be read
    icap_method: str  # OPTIONS, REQMOD, RESPMOD or OTHER
    status: int
    outcome: Outcome
    bytes_in: int  # encapsulated body bytes received
    bytes_out: int  # encapsulated body bytes sent
    keep_alive: bool


# exchange states
_IDLE = "idle"                        # between requests
_PREVIEW = "reading preview"          # collecting the preview before asking
_ASKED_PREVIEW = "asked (preview)"    # Adapt(PREVIEW) is out
_KEEPING = "keeping body"             # NeedBody: KeepBody per piece, then Adapt(BODY)
_BODY_IN_HAND = "body in hand"        # NeedBody on a body already complete: Adapt(BODY) next
_ASKED_BODY = "asked (body)"          # Adapt(BODY) is out
_SKIPPING = "skipping body"           # the answer waits until the body is read to its end
_ECHOING = "echoing"                  # no change, no 204, no preview: the body is echoed as it arrives
_SENDING = "sending body"             # SendBody is out
_LIMIT = "limit hit"                  # LimitHit is out
_DONE = "done"                        # Finished is next
_CLOSED = "closed"                    # nothing more on this connection

#: states in which the driver owes the exchange a call before the next event
_OWED = frozenset({_ASKED_PREVIEW, _ASKED_BODY, _SENDING, _LIMIT})

#: states in which next_event() does not read from the parser
_NOT_READING = _OWED | {_DONE, _CLOSED, _BODY_IN_HAND}

#: the decision methods and the states they are legal in
_LEGAL = {
    "need_body": frozenset({_ASKED_PREVIEW}),
    "partial": frozenset({_ASKED_PREVIEW}),
    # _KEEPING and _BODY_IN_HAND: keeping the body failed (the spool), the driver blocks
    "respond": frozenset({_ASKED_PREVIEW, _ASKED_BODY, _KEEPING, _BODY_IN_HAND, _LIMIT}),
}


class IllegalDecision(RuntimeError):
    """The driver answered in a state where that answer is not allowed (a bug in the driver)."""


class ServerExchange:
    """Drives one ICAP connection's requests, one at a time, from head to final response.

    ``context`` is read once per request from ``current_context()`` (the
    server's runtime: the replies with their ISTag and service table, and
    whatever else the driver pairs with them), so a reload never mixes two
    configurations in one answer. It must have a ``replies`` attribute.
    """

    __slots__ = ("parser", "_current_context", "context", "_out", "_state", "request", "status",
                 "outcome", "bytes_in", "bytes_out", "response_started", "_preview", "_complete",
                 "_deferred", "_keep_alive", "_in_request", "_next", "_routed", "released")

    def __init__(self, limits: CodecLimits | None, current_context) -> None:
        self.parser = RequestParser(limits)
        self._current_context = current_context
        self.context = None
        self._out: list[bytes] = []
        self._state = _IDLE
        self._reset()

    def _reset(self) -> None:
        self.request: Request | None = None
        self.status = 0
        self.outcome = Outcome.ERROR
        self.bytes_in = 0
        self.bytes_out = 0
        self.response_started = False
        self._preview: list[bytes] | bytes | None = None
        self._complete = False  # the preview held the whole body (or a bodiless request had a Preview)
        self._deferred = None  # the answer to write once a skipped body is read
        self._keep_alive = True
        self._in_request = False
        self._next = None  # an event a decision produced, returned by the next next_event()
        self._routed = False  # routed to adaptation (not refused): a body limit is then a LimitHit
        self.released = 0  # body bytes echoed by release() while the body was still being read

    # -- bytes in and out -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` when it closed its side."""
        self.parser.receive_data(data)

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    @property
    def buffered(self) -> int:
        """Received bytes not yet turned into events (for read back-pressure)."""
        return self.parser.buffered

    @property
    def idle(self) -> bool:
        """Between requests with nothing of the next one received."""
        return not self._in_request and self.parser.at_request_boundary

    @property
    def in_request(self) -> bool:
        """A request's head has been read and the request is not finished."""
        return self._in_request

    @property
    def may_release(self) -> bool:
        """A body is being kept: :meth:`release` is legal."""
        return self._state == _KEEPING

    @property
    def may_partial(self) -> bool:
        """A 206 is legal now: the adapter is asked about a body's preview and the client sent ``Allow: 206``."""
        request = self.request
        return (self._state == _ASKED_PREVIEW and request.preview is not None and request.has_body
                and "206" in request.allow)

    # -- events -------------------------------------------------------------------------

    def next_event(self):
        pending = self._next
        if pending is not None:
            self._next = None
            return pending
        state = self._state
        if state in _NOT_READING:
            if state is _DONE:
                return self._finished()
            if state is _CLOSED:
                return CONNECTION_CLOSED
            if state is _BODY_IN_HAND:
                self._state = _ASKED_BODY
                return Adapt(self.request, Stage.BODY)
            raise IllegalDecision(f"next_event() while the driver owes an answer ({state})")
        try:
            while True:
                event = self.parser.next_event()
                if event is NEED_DATA:
                    return event
                if event is CONNECTION_CLOSED:
                    self._state = _CLOSED
                    return event
                answer = self._on_parser_event(event)
                if answer is not None:
                    return answer
                if self._state == _DONE:  # an answer held back behind a skipped body was written
                    return self._finished()
        except LimitExceeded as exc:
            request = self.request
            if (exc.limit == "body_bytes" and not self.response_started and request is not None
                    and self._routed and self._state in (_PREVIEW, _KEEPING, _SKIPPING)):
                self._keep_alive = False
                self._state = _LIMIT
                return LimitHit(exc)
            return self._protocol_failure(exc)
        except ProtocolError as exc:
            return self._protocol_failure(exc)

    def _on_parser_event(self, event):
        state = self._state
        cls = event.__class__
        if cls is BodyData:
            data = event.data
            self.bytes_in += len(data)
            if state == _PREVIEW:
                self._preview.append(data)
            elif state == _KEEPING:
                return KeepBody(data)
            elif state == _ECHOING:
                self.bytes_out += len(data)
                self._out.append(encode_chunk(data))
            return None  # else skipping
        if cls is Request:
            return self._on_request(event)
        # EndOfMessage or PreviewEnd
        if state == _PREVIEW:
            self._complete = cls is EndOfMessage
            pieces = self._preview
            self._preview = preview = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            self._state = _ASKED_PREVIEW
            return Adapt(self.request, Stage.PREVIEW, preview, self._complete)
        if cls is PreviewEnd:  # a preview nobody asks about (OPTIONS, refusals): the client waits for us
            self.parser.finish_early()
        if state == _KEEPING:
            self._state = _ASKED_BODY
            return Adapt(self.request, Stage.BODY)
        if state == _ECHOING:
            self._out.append(LAST_CHUNK)
            self._state = _DONE
            return self._finished()
        # skipping: the body is read to its end, so the answer held back can go now
        deferred, self._deferred = self._deferred, None
        return deferred()

    def _on_request(self, request: Request):
        # every field was reset when the previous request finished (or at start)
        self._in_request = True
        self.request = request
        self.context = context = self._current_context()
        services = context.replies.services
        method = request.method
        if method == "OPTIONS":
            return self._skip_then(self._answer_options)
        if method not in ADAPTED_METHODS:
            return self._skip_then(self._refuser(405))
        if services.get(request.service) != method:
            return self._skip_then(self._refuser(404 if request.service not in services else 405))
        if request.missing_http_head is not None:  # a body without its head: nothing to adapt, never echo
            return self._skip_then(self._refuser(400))
        self._routed = True
        if request.body_entity is None:
            self.parser.next_event()  # the EndOfMessage a bodiless request always has ready
            # a Preview header with null-body is still "inside a preview": 204 is always allowed
            self._complete = request.preview is not None
            self._state = _ASKED_PREVIEW
            return Adapt(request, Stage.PREVIEW, b"", True)
        if request.preview is not None:
            self._preview = []  # its pieces, joined once when it ends
            self._state = _PREVIEW
            return None
        self._state = _ASKED_PREVIEW
        return Adapt(request, Stage.PREVIEW, b"", False)

    def _skip_then(self, answer):
        """Read the rest of this request without keeping it, then ``answer()``."""
        self._deferred = answer
        self._state = _SKIPPING
        return None

    # -- decisions (answers to Adapt and LimitHit) ----------------------------------------

    def _check(self, name: str) -> None:
        if self._state not in _LEGAL[name]:
            raise IllegalDecision(f"{name}() is not legal while {self._state}")

    def _unpreviewed_body_follows(self) -> bool:
        """Asked about a request whose body was neither previewed nor read: read it before answering."""
        request = self.request
        return self._state == _ASKED_PREVIEW and request.has_body and request.preview is None

    def _answer(self, answer) -> None:
        """Write ``answer`` now, or after the unread body when there was no preview."""
        if self._unpreviewed_body_follows():
            self._skip_then(answer)
            return
        if self._state == _ASKED_PREVIEW and self.request.has_body and not self._complete:
            self.parser.finish_early()  # answered from a preview that stopped short: no more body comes
        self._next = answer()

    def no_change(self, kept_body: object = None) -> None:
        """Pass the message unchanged: 204 where allowed, else an echo (of ``kept_body`` after BODY)."""
        state = self._state
        if state is not _ASKED_PREVIEW and state is not _ASKED_BODY:
            raise IllegalDecision(f"no_change() is not legal while {state}")
        request = self.request
        if self.response_started:  # the answer began (release, begin): the driver's body completes it
            self._next = self._body_answer(kept_body if kept_body is not None else b"")()
            return
        if state is _ASKED_PREVIEW and request.preview is not None:
            may_204 = True  # inside a preview, or a Preview header on a bodiless request
        else:
            may_204 = "204" in request.allow or self._complete
        if may_204:
            self._answer(self._head_answer(self.context.replies.no_content(close=request.close), 204,
                                           Outcome.NO_CHANGE))
        elif self._unpreviewed_body_follows():  # echo the body while it arrives, holding none of it
            self._write_head(self._echo_head(), 200, Outcome.NO_CHANGE)
            self._state = _ECHOING
        else:
            body = None if not request.has_body else (b"" if kept_body is None else kept_body)
            self._answer(self._message_answer(self._echo_head(), 200, Outcome.NO_CHANGE, body))

    def need_body(self) -> None:
        """Read the whole body: ``KeepBody`` events (the preview first), then ``Adapt(BODY)``.

        Writes ``100 Continue`` when a preview stopped short of the body.
        """
        self._check("need_body")
        request = self.request
        preview = self._preview or b""
        self._preview = None
        if not request.has_body or self._complete:
            self._state = _BODY_IN_HAND
        else:
            if request.preview is not None:
                self._out.append(self.context.replies.CONTINUE)
                self.parser.continue_body()
            self._state = _KEEPING
        if preview:
            self._next = KeepBody(preview)

    def respond(self, status: int = 200, *, http_request=None, http_response=None, body: object = None,
                outcome: Outcome = Outcome.REWRITTEN, close: bool = False) -> None:
        """Answer with a message: ``body`` None (null-body), bytes, or an object for ``SendBody``.

        ``http_response`` set: the answer is an HTTP response (res-body);
        else the modified HTTP request (req-body). ``close``: the connection
        ends after this answer; always so while body bytes are still unread.
        """
        self._check("respond")
        if self.response_started:  # a began answer cannot become another one
            self._cut_off(outcome)
            return
        if self._state == _KEEPING or self._state == _LIMIT:
            close = True  # the rest of the body is unread: nothing after this answer can be framed
        entity = None if body is None else ("req-body" if http_response is None else "res-body")
        if close:
            self._keep_alive = False
        head = self.context.replies.message(status, http_request=http_request, http_response=http_response,
                                            body_entity=entity, close=close or self.request.close)
        answer = self._message_answer(head, status, outcome, body)
        if self._state == _KEEPING or self._state == _LIMIT:
            self._next = answer()
        else:
            self._answer(answer)

    def partial(self, prefix: bytes, original_offset: int, *, http_request=None, http_response=None) -> None:
        """ICAP 206: new heads, a new body prefix, then the client's body from ``original_offset``."""
        self._check("partial")
        if not self.may_partial or original_offset < 0:
            raise IllegalDecision("206 without Allow: 206, without a body, or with a negative offset")
        entity = "req-body" if http_response is None else "res-body"
        head = self.context.replies.message(206, http_request=http_request, http_response=http_response,
                                            body_entity=entity, close=self.request.close)

        def answer():
            self._write_head(head, 206, Outcome.REWRITTEN)
            if prefix:
                self._out.append(encode_chunk(prefix))
                self.bytes_out += len(prefix)
            self._out.append(last_chunk(use_original_body=original_offset))
            return self._finish_answer()
        self._answer(answer)

    def release(self, piece: bytes) -> None:
        """Echo ``piece``, the next bytes of a body still being kept, before the adapter's answer.

        For a client that must see the answer begin before it sends more
        (Squid 5.7 stops reading a response's origin while its 64 KiB
        adaptation buffer waits on the ICAP server). The first call writes the
        unchanged head (ICAP 200). From then on the answer can only be
        completed by :meth:`no_change` with the rest of the body; any other
        answer cuts the connection off, which every ICAP client reads as a
        failed transaction.
        """
        if self._state != _KEEPING:
            raise IllegalDecision(f"release() is not legal while {self._state}")
        if not self.response_started:
            self._write_head(self._echo_head(), 200, Outcome.NO_CHANGE)
        if piece:
            self._out.append(encode_chunk(piece))
            self.bytes_out += len(piece)
            self.released += len(piece)

    def begin(self, http_response) -> None:
        """Start the answer with ``http_response`` (RESPMOD) while a body is still being kept.

        For a body held whole until its verdict behind a proxy that waits for
        the answer to begin: :meth:`release` then sends bytes the body's format
        ignores, and :meth:`continue_with` (or :meth:`no_change`) the body.
        """
        if self._state != _KEEPING or self.response_started or self.request.method != "RESPMOD":
            raise IllegalDecision(f"begin() is not legal while {self._state}")
        head = self.context.replies.message(200, http_response=http_response, body_entity="res-body",
                                            close=self.request.close)
        self._write_head(head, 200, Outcome.NO_CHANGE)

    def continue_with(self, body: object, outcome: Outcome = Outcome.REWRITTEN) -> None:
        """Complete an answer that :meth:`begin` started with ``body`` (bytes, or an object for SendBody)."""
        if self._state is not _ASKED_BODY or not self.response_started:
            raise IllegalDecision(f"continue_with() is not legal while {self._state}")
        self.outcome = outcome
        self._next = self._body_answer(body if body is not None else b"")()

    def _cut_off(self, outcome: Outcome) -> None:
        """An answer other than the echo after release(): write nothing more and close."""
        self.outcome = outcome
        self._keep_alive = False
        self._next = self._deferred = None
        self._state = _DONE

    def fail(self, status: int) -> None:
        """The request cannot be finished: an ICAP error if nothing was sent yet; the connection closes."""
        self.outcome = Outcome.ERROR
        self._keep_alive = False
        self._next = self._deferred = None
        if not self.response_started:
            self.status = status
            self.response_started = True
            self._out.append(self._replies().error(status, close=True))
        else:
            self.status = self.status or status
        self._state = _DONE

    def abandon(self) -> None:
        """The peer is gone mid-answer: record an error, write nothing more."""
        self.outcome = Outcome.ERROR
        self._keep_alive = False
        self._next = self._deferred = None
        self._state = _DONE

    # -- streaming a body the driver holds --------------------------------------------------

    def send_body_piece(self, piece: bytes) -> None:
        if self._state != _SENDING:
            raise IllegalDecision("send_body_piece() without SendBody")
        if piece:
            self._out.append(encode_chunk(piece))
            self.bytes_out += len(piece)

    def end_body(self) -> None:
        if self._state != _SENDING:
            raise IllegalDecision("end_body() without SendBody")
        self._out.append(LAST_CHUNK)
        self._state = _DONE

    # -- internals ------------------------------------------------------------------------------

    def _replies(self):
        """This request's replies; the current generation's when no request head was read."""
        if self.request is None or self.context is None:
            return self._current_context().replies
        return self.context.replies

    def _echo_head(self) -> bytes:
        request = self.request
        replies = self.context.replies
        if request.method == "REQMOD":
            return replies.message(200, http_request=request.http_request, close=request.close,
                                   body_entity="req-body" if request.has_body else None)
        return replies.message(200, http_response=request.http_response, close=request.close,
                               body_entity="res-body" if request.has_body else None)

    def _write_head(self, head: bytes, status: int, outcome: Outcome) -> None:
        self._out.append(head)
        self.response_started = True
        self.status = status
        self.outcome = outcome

    def _head_answer(self, head: bytes, status: int, outcome: Outcome):
        def answer():
            self._write_head(head, status, outcome)
            return self._finish_answer()
        return answer

    def _message_answer(self, head: bytes, status: int, outcome: Outcome, body):
        def answer():
            self._write_head(head, status, outcome)
            if body is None:
                return self._finish_answer()
            return self._body_answer(body)()
        return answer

    def _body_answer(self, body):
        """The body part of an answer whose head is written: bytes at once, else SendBody."""
        def answer():
            if isinstance(body, (bytes, bytearray)):
                if body:
                    self._out.append(encode_chunk(bytes(body)))
                    self.bytes_out += len(body)
                self._out.append(LAST_CHUNK)
                return self._finish_answer()
            self._state = _SENDING
            return SendBody(body)
        return answer

    def _finish_answer(self):
        """The answer is written: Finished now if we are inside next_event, else at the next call."""
        self._state = _DONE
        return None

    def _answer_options(self):
        request = self.request
        replies = self.context.replies
        if request.service not in replies.services:
            return self._refuser(404, close=request.close)()
        self._write_head(replies.options(request.service, close=request.close), 200, Outcome.NO_CHANGE)
        return self._finished_now()

    def _refuser(self, status: int, close: bool = True):
        """An error answer to a request read to its end.

        Refusals before adaptation close the connection (c-icap-client, for
        one, waits for the close after an error answer); an OPTIONS for an
        unknown service keeps it unless the client asked to close.
        """
        def answer():
            self._write_head(self._replies().error(status, close=close), status, Outcome.ERROR)
            if close:
                self._keep_alive = False
            return self._finished_now()
        return answer

    def _finished_now(self) -> Finished:
        self._state = _DONE
        return self._finished()

    def _protocol_failure(self, exc: ProtocolError) -> Finished:
        self.fail(exc.status_hint)
        return self._finished()

    def _finished(self) -> Finished:
        request = self.request
        method = request.method if request is not None and request.method in _RECORDED_METHODS else "OTHER"
        keep_alive = self._keep_alive and not (request is not None and request.close)
        finished = Finished(request, method, self.status, self.outcome, self.bytes_in, self.bytes_out, keep_alive)
        self._reset()
        self._state = _IDLE if keep_alive else _CLOSED
        return finished
