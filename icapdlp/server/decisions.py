"""The adapter's decisions, checked and turned into calls on the sans-IO exchange.

The exchange (:mod:`icapdlp.icap.exchange`) knows ICAP's rules and nothing
of the adapter's types; this module is the one place that knows both: which
decisions are valid at which stage, how a block page and a replacement
become messages (with a ``Content-Length`` kept in step), and that every
failure of the adapter is a block (fail closed).
"""

from __future__ import annotations

import logging
import os

from icapdlp.adaptation.api import Block, Body, HoldOpen, NeedBody, NoChange, PartialReplace, Replace
from icapdlp.http import with_content_length
from icapdlp.icap.events import Request
from icapdlp.icap.exchange import Outcome, ServerExchange
from icapdlp.server.blockpage import minimal_block_response
from icapdlp.transaction import Transaction
from icapdlp.verdict import BlockReason, Blocked

log = logging.getLogger("icapdlp.server")

PREVIEW_DECISIONS = (NoChange, NeedBody, Block, Replace, PartialReplace)
BODY_DECISIONS = (NoChange, Block, Replace)


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


def new_transaction(request: Request) -> Transaction:
    """The adapter's view of a REQMOD/RESPMOD the exchange routed to adaptation."""
    return Transaction(
        id=transaction_id(), service=request.service, icap_method=request.method,
        request=request.http_request, response=request.http_response, has_body=request.body_entity is not None,
        allow_204="204" in request.allow, allow_206="206" in request.allow, preview_size=request.preview)


def checked(decision, allowed: tuple, tx: Transaction):
    """``decision`` if it is one of ``allowed``, else an internal-error block (a bug in the adapter)."""
    if isinstance(decision, allowed):
        return decision
    log.error("adapter returned %s in transaction %s; blocking", type(decision).__name__, tx.id)
    return Block(BlockReason.INTERNAL_ERROR, f"adapter returned {type(decision).__name__}")


def from_error(exc: Exception, tx: Transaction) -> Block:
    """An adapter that raised: its block reason when it said why, else internal-error."""
    if isinstance(exc, Blocked):
        return Block(exc.reason, exc.detail)
    # the exception text may quote payload: log its type only
    log.error("adapter raised %s in transaction %s; blocking", type(exc).__name__, tx.id)
    return Block(BlockReason.INTERNAL_ERROR, f"adapter raised {type(exc).__name__}")


def apply(exchange: ServerExchange, decision, tx: Transaction, adapter, kept: Body | None = None,
          echoed: int = 0) -> None:
    """Answer the exchange's question with the adapter's (checked) decision.

    ``kept`` is the body read for the BODY stage, echoed when the message
    passes unchanged and a 204 is not allowed (from ``echoed`` on, when its
    start was released already). A PartialReplace where 206 is
    not allowed becomes a full read, as RFC 3507 leaves no other answer.
    """
    cls = decision.__class__
    if cls is NoChange:
        exchange.no_change(payload(kept, echoed))
    elif cls is NeedBody:
        exchange.need_body()
    elif cls is Block:
        block(exchange, tx, adapter, decision.reason, decision.detail)
    elif cls is Replace:
        _replace(exchange, tx, adapter, decision)
    elif cls is PartialReplace:
        if not exchange.may_partial:
            exchange.need_body()
            return
        heads = _replacement_heads(tx, decision.request, decision.response)
        if heads is None or decision.original_offset < 0:
            block(exchange, tx, adapter, BlockReason.INTERNAL_ERROR, "invalid partial replacement")
            return
        exchange.partial(decision.prefix, decision.original_offset, **heads)
    else:  # checked() only lets the types above through
        block(exchange, tx, adapter, BlockReason.INTERNAL_ERROR, "no decision")


def block(exchange: ServerExchange, tx: Transaction | None, adapter, reason: BlockReason, detail: str = "",
          close: bool = False) -> None:
    """The adapter's block page as the HTTP response (a minimal one if the adapter fails at that too)."""
    if detail:
        log.info("transaction %s blocked: %s (%s)", tx.id if tx else "-", reason.value, detail)
    try:
        head, page = adapter.block_response(tx, reason)
    except Exception as exc:
        log.error("block_response raised %s in transaction %s", type(exc).__name__, tx.id if tx else "-")
        head, page = minimal_block_response(tx, reason)
    exchange.respond(200, http_response=with_content_length(head, len(page)), body=page,
                     outcome=Outcome.BLOCKED, close=close)


def continue_held(exchange: ServerExchange, decision: Replace, hold: HoldOpen, tx: Transaction,
                  adapter) -> BlockReason | None:
    """A Replace for a response held open: its body completes the answer that began with ``hold``'s head.

    The head already sent must be true of the new body: a Replace whose head
    differs from it in anything but the length is cut off instead (the
    returned reason; None when the body was sent).
    """
    sent, new = hold.response, decision.response
    if (new is None or (new.version, new.status, new.reason) != (sent.version, sent.status, sent.reason)
            or list(new.headers.without("Content-Length")) != list(sent.headers)):
        block(exchange, tx, adapter, BlockReason.INTERNAL_ERROR, "rewritten head differs from the one sent")
        return BlockReason.INTERNAL_ERROR
    body = decision.body
    exchange.continue_with(payload(body) if isinstance(body, Body) else (b"" if body is None else bytes(body)),
                           Outcome.REWRITTEN)
    return None


def _replace(exchange: ServerExchange, tx: Transaction, adapter, decision: Replace) -> None:
    heads = _replacement_heads(tx, decision.request, decision.response)
    if heads is None:
        block(exchange, tx, adapter, BlockReason.INTERNAL_ERROR, "replacement without a head for this method")
        return
    body = decision.body
    if isinstance(body, Body):
        size = body.size
        body = payload(body)
    elif body is not None:
        body = bytes(body)
        size = len(body)
    if body is not None:
        heads = {name: with_content_length(head, size) for name, head in heads.items()}
    exchange.respond(200, body=body, outcome=Outcome.REWRITTEN, **heads)


def _replacement_heads(tx: Transaction, request, response):
    """The head the answer carries: a response always may; a modified request only in REQMOD."""
    if response is not None:
        return {"http_response": response}
    if request is not None and tx.icap_method == "REQMOD":
        return {"http_request": request}
    return None


def payload(body: Body | None, skip: int = 0):
    """What the exchange writes: the bytes of an in-memory body, else the Body to stream.

    ``skip``: the leading bytes already released (echoed while the body was read).
    """
    if body is None:
        return None
    if body.data is not None:
        return body.data[skip:] if skip else body.data
    return _Tail(body, skip) if skip else body


class _Tail:
    """The part of a spooled body after its first ``start`` bytes, for the driver to stream."""

    __slots__ = ("body", "start")

    def __init__(self, body: Body, start: int) -> None:
        self.body = body
        self.start = start

    def open(self):
        handle = self.body.open()
        handle.seek(self.start)
        return handle
