"""Events the request parser emits, in order, for one ICAP request.

One request is: a :class:`Request` (ICAP head plus the encapsulated HTTP
heads), then zero or more :class:`BodyData`, then either
:class:`PreviewEnd` (a preview ended without ``ieof``: the parser pauses
until the server decides) or :class:`EndOfMessage`.

The HTTP heads use the adaptation layer's types so the server hands them on
without copying; header order and spelling are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead

#: Encapsulated entity names that carry a chunked body
BODY_ENTITIES = frozenset({"req-body", "res-body", "opt-body"})


@dataclass(slots=True)
class Request:
    """The ICAP request head with its encapsulated HTTP heads."""

    method: str
    uri: str
    service: str  # the URI path without leading "/" and query, "" when absent
    headers: HttpHeaders  # ICAP headers, order and case kept
    #: Encapsulated entities in wire order, e.g. [("req-hdr", 0), ("req-body", 412)]
    encapsulated: list[tuple[str, int]]
    http_request: HttpRequestHead | None = None
    http_response: HttpResponseHead | None = None
    #: "req-body", "res-body" or "opt-body" when a chunked body follows, else None
    body_entity: str | None = None
    #: the client's Preview value, None when it sent no preview
    preview: int | None = None
    allow: frozenset[str] = field(default_factory=frozenset)  # tokens of the Allow header
    close: bool = False  # the client sent "Connection: close"
    #: "req-hdr"/"res-hdr" when this REQMOD/RESPMOD lacks the HTTP head it adapts (the server
    #: answers 400); set by the parser from Encapsulated (:func:`icapdlp.icap.headers.missing_http_head`)
    missing_http_head: str | None = None

    @property
    def has_body(self) -> bool:
        return self.body_entity is not None

    @property
    def in_preview(self) -> bool:
        """The body (if any) starts with a preview the server must answer first."""
        return self.preview is not None and self.body_entity is not None


@dataclass(slots=True)
class BodyData:
    """A piece of the decoded (de-chunked) body, in order. Pieces follow no wire boundaries."""

    data: bytes


@dataclass(slots=True)
class PreviewEnd:
    """The preview ended with a plain ``0`` chunk: more body follows if the server asks."""


@dataclass(slots=True)
class EndOfMessage:
    """The request is complete. ``ieof`` says the preview held the whole body."""

    ieof: bool = False
    trailers: list[tuple[str, str]] = field(default_factory=list)


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: more bytes are needed before the next event
NEED_DATA = _Sentinel("NEED_DATA")
#: a preview ended; call ``continue_body()`` (after sending 100) or ``finish_early()``
PAUSED = _Sentinel("PAUSED")
#: the peer closed the connection cleanly between requests
CONNECTION_CLOSED = _Sentinel("CONNECTION_CLOSED")

Event = Request | BodyData | PreviewEnd | EndOfMessage
