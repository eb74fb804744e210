"""The contract between the ICAP server and whatever adapts messages.

The server (``icapdlp.server``) owns sockets, ICAP framing, previews, 204/206
negotiation and body spooling. An :class:`Adapter` owns the decision: it sees
the encapsulated HTTP heads, the preview and, if it asks, the whole body, and
answers with one of the decision types below. Neither side knows the other's
internals, so the protocol layer is tested with a trivial adapter and the
payload layer is tested without sockets. The :class:`~icapdlp.transaction.Transaction`
it decides on and the :class:`~icapdlp.transaction.TransactionReport` it fills
are ground-floor records (observability reads them too).

Rules both sides rely on:

- ``on_preview`` is always called exactly once per REQMOD/RESPMOD, even when the
  client sent no preview (then ``preview`` is ``b""`` and ``complete`` says
  whether there is no body at all). It must be cheap or offload its work.
- :class:`NeedBody` makes the server read the whole body (spooled past the
  memory threshold) and call ``on_body`` once. With a ``release`` check the
  server also echoes the bytes that check clears while the rest arrives; a
  decision other than :class:`NoChange` then cuts the answer off (the client
  sees a failed transaction, never the uncleared bytes).
- :class:`PartialReplace` is only valid from ``on_preview`` and only when
  ``tx.allow_206``; the server otherwise turns it into a full read.
- Any exception out of an adapter is a bug; the server blocks the message with
  ``internal-error`` (fail closed) and keeps serving.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import BinaryIO, Protocol, Union

from icapdlp.http import HttpRequestHead, HttpResponseHead
from icapdlp.transaction import Transaction, TransactionReport
from icapdlp.verdict import BlockReason


class Body:
    """The whole encapsulated body, in memory or spooled to a temporary file.

    Workers in other processes read a spooled body through ``path`` instead of
    having hundreds of megabytes pickled to them.
    """

    def __init__(self, data: bytes | None = None, path: str | None = None, size: int | None = None) -> None:
        if (data is None) == (path is None):
            raise ValueError("a Body is either in memory or in a file")
        self.data = data
        self.path = path
        self.size = len(data) if data is not None else (size if size is not None else os.path.getsize(path))

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")

    def read_all(self) -> bytes:
        if self.data is not None:
            return self.data
        with open(self.path, "rb") as handle:
            return handle.read()


@dataclass
class NoChange:
    """Pass the message unchanged (204 when allowed, else an echo)."""

    report: TransactionReport | None = None


class ReleaseCheck(Protocol):
    """Clears the leading bytes of a body for release while its later bytes are still arriving."""

    #: no byte will be cleared any more (the body is kept whole from here on)
    stopped: bool

    def feed(self, data: bytes) -> int:
        """Take the body's next bytes; give back how many more leading bytes of the body are cleared."""
        ...


@dataclass
class HoldOpen:
    """Keep a proxy reading a response whose body is held whole until its verdict.

    The answer starts with ``response`` (a head that promises no length and
    no validators) and ``filler`` bytes the body's format ignores in front of
    it (a multipart preamble, JSON white space) go out as the body arrives.
    Then :class:`NoChange` sends the body, :class:`Replace` its new body (its
    head must agree with ``response`` but for the length), anything else cuts
    the answer off.
    """

    response: HttpResponseHead
    filler: bytes


@dataclass
class NeedBody:
    """Read the whole body and call ``on_body``; meanwhile echo what ``release`` clears, or
    keep the client reading with ``hold_open`` (with both: once the release check stops
    before it cleared a byte)."""

    release: ReleaseCheck | None = None
    hold_open: HoldOpen | None = None


@dataclass
class Block:
    """Refuse the message; the server sends the adapter's block page as the HTTP response."""

    reason: BlockReason
    detail: str = ""  # PHI-free, for operators
    report: TransactionReport | None = None


@dataclass
class Replace:
    """Send a modified message.

    For REQMOD, set ``request`` (a modified request, forwarded to the origin) or
    ``response`` (answered to the client instead). For RESPMOD set ``response``.
    ``body`` is the complete new body (``None`` for no body).
    """

    request: HttpRequestHead | None = None
    response: HttpResponseHead | None = None
    body: bytes | Body | None = None
    report: TransactionReport | None = None


@dataclass
class PartialReplace:
    """ICAP 206: new heads, a new body prefix, then the original body from ``original_offset``."""

    request: HttpRequestHead | None
    response: HttpResponseHead | None
    prefix: bytes
    original_offset: int
    report: TransactionReport | None = None


PreviewDecision = Union[NoChange, NeedBody, Block, Replace, PartialReplace]
BodyDecision = Union[NoChange, Block, Replace]


class Adapter(Protocol):
    """What the server calls for every REQMOD/RESPMOD."""

    async def on_preview(self, tx: Transaction, preview: bytes, complete: bool) -> PreviewDecision:
        ...

    async def on_body(self, tx: Transaction, body: Body) -> BodyDecision:
        ...

    def block_response(self, tx: Transaction, reason: BlockReason) -> tuple[HttpResponseHead, bytes]:
        """The HTTP response (403 page) shown for a block: reason code and tx id, never PHI."""
        ...
