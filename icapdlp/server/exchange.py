"""One ICAP request from head to final response: the server's decision table.

Given the parsed :class:`~icapdlp.icap.events.Request`, this module asks the
adapter, reads (or skips) the body as the adapter's answer requires and
writes the response. It never touches sockets directly: it uses the
connection's ``next_event`` / ``write`` / ``drain``.

Fail closed: an adapter exception, an invalid decision or a spool failure
becomes a block page; a broken request becomes an ICAP error and a closed
connection; nothing falls through to "unchanged".
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from icapdlp.adaptation.api import Block, Body, NeedBody, NoChange, PartialReplace, Replace, Transaction
from icapdlp.http import HttpRequestHead, HttpResponseHead
from icapdlp.icap import BodyData, EndOfMessage, LimitExceeded, PreviewEnd, ProtocolError, Request
from icapdlp.icap.chunked import LAST_CHUNK, encode_chunk, last_chunk
from icapdlp.observability.events import TransactionRecord
from icapdlp.server.blockpage import minimal_block_response
from icapdlp.server.resume import Resume
from icapdlp.server.spool import Spool
from icapdlp.server.workers import Overloaded
from icapdlp.verdict import BlockReason, Blocked

log = logging.getLogger("icapdlp.server")


class ConnectionLost(Exception):
    """The peer went away while we were writing."""

_PREVIEW_DECISIONS = (NoChange, NeedBody, Block, Replace, PartialReplace)
_BODY_DECISIONS = (NoChange, Block, Replace)
#: pieces read from a spooled body file per write; large enough for few syscalls,
#: small enough that one slow client holds little memory
FILE_PIECE_BYTES = 256 * 1024


async def serve_request(conn, request: Request, runtime, started: float) -> bool:
    """Handle one request; return whether the connection may carry another."""
    conn.server.observer.request_started()
    exchange = Exchange(conn, request, runtime, started)
    return await exchange.guarded(exchange.run())


def new_transaction(request: Request) -> Transaction:
    """The adapter's view of a REQMOD/RESPMOD whose method and service were checked."""
    return Transaction(
        id=transaction_id(), service=request.service, icap_method=request.method,
        request=request.http_request, response=request.http_response, has_body=request.body_entity is not None,
        allow_204="204" in request.allow, allow_206="206" in request.allow, preview_size=request.preview)


class _TransactionIds:
    """Random 64-bit hex ids drawn from the OS CSPRNG a few hundred at a time.

    Same randomness as ``secrets.token_hex(8)`` per id, without a system call
    per request; a forked acceptor starts a fresh pool so no two processes
    hand out ids from the same bytes.
    """

    POOL_BYTES = 4096  # 512 ids per refill

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._at = b"", 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(self.POOL_BYTES), 0
        self._at = at + 8
        return self._pool[at:at + 8].hex()


transaction_id = _TransactionIds()


class Exchange:
    """State of one request while it is being answered."""

    def __init__(self, conn, request: Request, runtime, started: float) -> None:
        self.conn = conn
        self.request = request
        self.runtime = runtime
        self.replies = runtime.replies
        self.started = started
        self.tx: Transaction | None = None
        self.status = 0
        self.outcome = "error"
        self.reason: BlockReason | None = None
        self.report = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.icap_method = request.method if request.method in ("OPTIONS", "REQMOD", "RESPMOD") else "OTHER"
        #: the first adapter answer, when the fast lane already asked (see ``ask``)
        self.first_answer: Resume | None = None

    def record(self) -> TransactionRecord:
        return TransactionRecord(
            icap_method=self.icap_method, icap_status=self.status, outcome=self.outcome,
            duration_seconds=time.monotonic() - self.started, bytes_in=self.bytes_in,
            bytes_out=self.bytes_out, tx=self.tx, reason=self.reason, report=self.report)

    async def guarded(self, step) -> bool:
        """Await ``step`` (the request's handling from some point on) with every failure answered.

        The caller has already told the observer the request started; this
        tells it the request finished, whatever happened.
        """
        conn = self.conn
        keep_alive = False
        try:
            keep_alive = await step
        except asyncio.CancelledError:
            if conn.timed_out is None:
                raise
            self.fail(408)
        except LimitExceeded as exc:
            if exc.limit == "body_bytes" and self.tx is not None and not conn.response_started:
                await self.send_block(BlockReason.LIMIT_EXCEEDED, "body larger than limits.body_bytes", close=True)
            else:
                self.fail(exc.status_hint)
        except ProtocolError as exc:
            self.fail(exc.status_hint)
        except Blocked as exc:  # from spooling: the rest of the body is unread, so close afterwards
            if conn.response_started:
                self.fail(500)
            else:
                await self.send_block(exc.reason, exc.detail, close=True)
        except Overloaded:
            self.fail(503)
        except ConnectionLost:
            self.outcome = "error"
        finally:
            conn.flush()
            conn.server.observer.request_finished(self.record())
        return keep_alive and not self.request.close

    # -- top level -------------------------------------------------------------------

    async def run(self) -> bool:
        request = self.request
        services = self.replies.services
        if request.method == "OPTIONS":
            await self.skip_body()
            if request.service not in services:
                return self.refuse(404)
            self.send_head(self.replies.options(request.service, close=request.close), 200, "no-change")
            return True
        if request.method not in ("REQMOD", "RESPMOD"):
            return await self.refuse_unread(405)
        if request.service not in services:
            return await self.refuse_unread(404)
        if services[request.service] != request.method:
            return await self.refuse_unread(405)
        if request.missing_http_head is not None:  # a body without its head: nothing to adapt, never echo
            return await self.refuse_unread(400)
        self.tx = new_transaction(request)
        if not request.has_body:
            return await self.adapt_bodiless()
        if request.preview is not None:
            return await self.adapt_with_preview()
        return await self.adapt_without_preview()

    async def adapt_bodiless(self) -> bool:
        tx = self.tx
        await self.skip_body()
        decision = await self.ask(self.runtime.adapter.on_preview, (tx, b"", True), _PREVIEW_DECISIONS)
        if isinstance(decision, (NeedBody, PartialReplace)):
            decision = await self.ask(self.runtime.adapter.on_body, (tx, Body(data=b"")), _BODY_DECISIONS)
        # a Preview header with null-body is still "inside a preview": 204 is always allowed
        await self.answer(decision, None, may_204=tx.allow_204 or self.request.preview is not None)
        return True

    async def adapt_with_preview(self) -> bool:
        conn = self.conn
        preview = bytearray()
        while True:
            event = await conn.next_event()
            if isinstance(event, BodyData):
                preview += event.data
            else:
                complete = isinstance(event, EndOfMessage)
                break
        self.bytes_in = len(preview)
        return await self.decide_preview(bytes(preview), complete)

    async def decide_preview(self, preview: bytes, complete: bool) -> bool:
        """The preview is read (``complete``: it held the whole body); ask and answer."""
        tx = self.tx
        conn = self.conn
        decision = await self.ask(self.runtime.adapter.on_preview, (tx, preview, complete), _PREVIEW_DECISIONS)
        if isinstance(decision, PartialReplace) and not tx.allow_206:
            decision = NeedBody()
        if not isinstance(decision, NeedBody):
            if not complete:
                conn.parser.finish_early()  # the client waits for our answer, sends no more
            await self.answer(decision, None, may_204=True)
            return True
        spool = self.new_spool()
        try:
            spool.write(preview)
            if not complete:
                conn.write_interim(self.replies.CONTINUE)
                conn.parser.continue_body()
                await self.read_body(spool)
            body = spool.body()
            decision = await self.ask(self.runtime.adapter.on_body, (tx, body), _BODY_DECISIONS)
            # when the preview held the whole body (ieof) we are still inside the preview
            await self.answer(decision, body, may_204=tx.allow_204 or complete)
        finally:
            spool.close()
        return True

    async def adapt_without_preview(self) -> bool:
        tx = self.tx
        decision = await self.ask(self.runtime.adapter.on_preview, (tx, b"", False), _PREVIEW_DECISIONS)
        if isinstance(decision, PartialReplace):
            decision = NeedBody()
        if isinstance(decision, NoChange) and not tx.allow_204:
            self.report = decision.report
            await self.stream_echo()
            return True
        if not isinstance(decision, NeedBody):
            await self.skip_body()
            await self.answer(decision, None, may_204=tx.allow_204)
            return True
        spool = self.new_spool()
        try:
            await self.read_body(spool)
            body = spool.body()
            decision = await self.ask(self.runtime.adapter.on_body, (tx, body), _BODY_DECISIONS)
            await self.answer(decision, body, may_204=tx.allow_204)
        finally:
            spool.close()
        return True

    # -- reading ------------------------------------------------------------------------

    def new_spool(self) -> Spool:
        limits = self.conn.server.limits
        return Spool(limits.spool_memory_bytes, limits.spool_dir)

    async def read_body(self, spool: Spool) -> None:
        while True:
            event = await self.conn.next_event()
            if isinstance(event, BodyData):
                self.bytes_in += len(event.data)
                spool.write(event.data)
            elif isinstance(event, EndOfMessage):
                return
            else:  # a second preview end cannot happen after continue_body()
                raise ProtocolError("unexpected preview end")

    async def skip_body(self) -> None:
        """Consume the rest of this request without keeping it."""
        conn = self.conn
        while True:
            event = await conn.next_event()
            if isinstance(event, BodyData):
                self.bytes_in += len(event.data)
            elif isinstance(event, PreviewEnd):
                conn.parser.finish_early()
                return
            elif isinstance(event, EndOfMessage):
                return

    # -- deciding -------------------------------------------------------------------------

    async def ask(self, method, args, allowed):
        """Call the adapter; turn every failure into a block (fail closed)."""
        tx = self.tx
        first, self.first_answer = self.first_answer, None
        try:
            decision = await (method(*args) if first is None else first)
        except Blocked as exc:
            return Block(exc.reason, exc.detail)
        except (Overloaded, asyncio.CancelledError):
            raise
        except Exception as exc:  # the exception text may quote payload: log its type only
            log.error("adapter raised %s in transaction %s; blocking", type(exc).__name__, tx.id)
            return Block(BlockReason.INTERNAL_ERROR, f"adapter raised {type(exc).__name__}")
        if not isinstance(decision, allowed):
            log.error("adapter returned %s in transaction %s; blocking", type(decision).__name__, tx.id)
            return Block(BlockReason.INTERNAL_ERROR, f"adapter returned {type(decision).__name__}")
        return decision

    # -- answering --------------------------------------------------------------------------

    async def answer(self, decision, body: Body | None, *, may_204: bool) -> None:
        self.report = getattr(decision, "report", None)
        if isinstance(decision, NoChange):
            if may_204:
                self.send_head(self.replies.no_content(close=self.request.close), 204, "no-change")
            else:
                await self.send_echo(body)
        elif isinstance(decision, Block):
            await self.send_block(decision.reason, decision.detail)
        elif isinstance(decision, Replace):
            await self.send_replace(decision)
        elif isinstance(decision, PartialReplace):
            await self.send_partial(decision)
        else:  # ask() only lets the types above through
            await self.send_block(BlockReason.INTERNAL_ERROR, "no decision")

    def send_head(self, data: bytes, status: int, outcome: str) -> None:
        self.conn.write(data)
        self.status = status
        self.outcome = outcome

    def echo_heads(self) -> dict:
        request = self.request
        if request.method == "REQMOD":
            return {"http_request": request.http_request, "body_entity": "req-body" if request.has_body else None}
        return {"http_response": request.http_response, "body_entity": "res-body" if request.has_body else None}

    async def send_echo(self, body: Body | None) -> None:
        """200 with the unchanged message: the client did not allow 204 here."""
        heads = self.echo_heads()
        self.send_head(self.replies.message(200, close=self.request.close, **heads), 200, "no-change")
        if heads["body_entity"] is not None:
            await self.write_body(body if body is not None else Body(data=b""))

    async def stream_echo(self) -> None:
        """Echo a body that is still arriving, chunk by chunk, without holding it."""
        conn = self.conn
        self.send_head(self.replies.message(200, close=self.request.close, **self.echo_heads()), 200, "no-change")
        while True:
            event = await conn.next_event()
            if isinstance(event, BodyData):
                self.bytes_in += len(event.data)
                self.bytes_out += len(event.data)
                conn.write(encode_chunk(event.data))
                await conn.drain()
            elif isinstance(event, EndOfMessage):
                conn.write(LAST_CHUNK)
                return

    async def send_block(self, reason: BlockReason, detail: str = "", close: bool = False) -> None:
        tx = self.tx
        self.reason = reason
        if detail:
            log.info("transaction %s blocked: %s (%s)", tx.id, reason.value, detail)
        try:
            head, page = self.runtime.adapter.block_response(tx, reason)
        except Exception as exc:
            log.error("block_response raised %s in transaction %s", type(exc).__name__, tx.id)
            head, page = minimal_block_response(tx, reason)
        head = _with_length(head, len(page))
        self.conn.write(self.replies.message(200, http_response=head, body_entity="res-body",
                                             close=close or self.request.close))
        self.status = 200
        self.outcome = "blocked"
        await self.write_body(Body(data=page))

    async def send_replace(self, decision: Replace) -> None:
        heads = self.replacement_heads(decision.request, decision.response)
        if heads is None:
            await self.send_block(BlockReason.INTERNAL_ERROR, "replacement without a head for this method")
            return
        body = decision.body
        if isinstance(body, (bytes, bytearray)):
            body = Body(data=bytes(body))
        if body is not None:
            heads = {k: _with_length(v, body.size) for k, v in heads.items()}
        entity = None if body is None else ("req-body" if "http_request" in heads else "res-body")
        self.send_head(self.replies.message(200, body_entity=entity, close=self.request.close, **heads),
                       200, "rewritten")
        if body is not None:
            await self.write_body(body)

    async def send_partial(self, decision: PartialReplace) -> None:
        heads = self.replacement_heads(decision.request, decision.response)
        if heads is None or decision.original_offset < 0:
            await self.send_block(BlockReason.INTERNAL_ERROR, "invalid partial replacement")
            return
        entity = "req-body" if "http_request" in heads else "res-body"
        self.send_head(self.replies.message(206, body_entity=entity, close=self.request.close, **heads),
                       206, "rewritten")
        if decision.prefix:
            self.conn.write(encode_chunk(decision.prefix))
            self.bytes_out += len(decision.prefix)
        self.conn.write(last_chunk(use_original_body=decision.original_offset))

    def replacement_heads(self, request: HttpRequestHead | None, response: HttpResponseHead | None):
        if response is not None:
            return {"http_response": response}
        if request is not None and self.request.method == "REQMOD":
            return {"http_request": request}
        return None

    async def write_body(self, body: Body) -> None:
        conn = self.conn
        if body.data is not None:
            if body.data:
                conn.write(encode_chunk(body.data))
        else:
            with body.open() as handle:
                while piece := handle.read(FILE_PIECE_BYTES):
                    conn.write(encode_chunk(piece))
                    await conn.drain()
        conn.write(LAST_CHUNK)
        self.bytes_out += body.size
        await conn.drain()

    # -- refusing ------------------------------------------------------------------------------

    def refuse(self, status: int) -> bool:
        """An error answer after the request was read completely."""
        self.send_head(self.replies.error(status, close=self.request.close), status, "error")
        return not self.request.close

    async def refuse_unread(self, status: int) -> bool:
        """An error answer before adaptation: consume the request, answer, then close.

        Closing with unread bytes in the socket makes the kernel send a reset
        that can destroy our answer before the client reads it, so the preview
        or body is consumed first (bounded by the body limit and the request
        timeout). The connection is closed afterwards: c-icap-client, for one,
        waits for the close after an error answer.
        """
        await self.skip_body()
        self.send_head(self.replies.error(status, close=True), status, "error")
        return False

    def fail(self, status: int) -> None:
        """A request that cannot be finished: answer if nothing was sent yet; the caller closes."""
        self.status = self.status or status
        self.outcome = "error"
        if not self.conn.response_started:
            self.status = status
            self.conn.write(self.replies.error(status, close=True))


def _with_length(head, length: int):
    """Keep a Content-Length in step with a body we send (only if the head has one)."""
    if head.headers.get("Content-Length") is None:
        return head
    headers = head.headers.replaced("Content-Length", str(length))
    if isinstance(head, HttpRequestHead):
        return HttpRequestHead(head.method, head.target, head.version, headers)
    return HttpResponseHead(head.version, head.status, head.reason, headers)
