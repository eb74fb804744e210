"""Serialise ICAP heads with correct ``Encapsulated`` offsets.

The writer only builds bytes; the chunked body that follows a head is
written with :func:`icapdlp.icap.chunked.encode_chunk`. Requests can be
written too, for tests, the benchmark client and tools.
"""

from __future__ import annotations

from collections.abc import Iterable

from icapdlp.http import HttpRequestHead, HttpResponseHead
from icapdlp.icap.headers import serialize_fields, serialize_request_head, serialize_response_head

#: reason phrases of RFC 3507 section 4.3.3, plus the HTTP ones we use for limits
REASONS = {
    100: "Continue",
    200: "OK",
    204: "No Content",
    206: "Partial Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "ICAP Service Not Found",
    405: "Method Not Allowed For Service",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    500: "Server Error",
    501: "Method Not Implemented",
    503: "Service Overloaded",
    505: "ICAP Version Not Supported",
}

CONTINUE = b"ICAP/1.0 100 Continue\r\n\r\n"


def encapsulate(
    http_request: HttpRequestHead | None,
    http_response: HttpResponseHead | None,
    body_entity: str | None,
) -> tuple[str, bytes]:
    """The ``Encapsulated`` value and the serialised HTTP heads that follow the ICAP head.

    ``body_entity`` is ``"req-body"``, ``"res-body"`` or ``"opt-body"`` when a
    chunked body follows, ``None`` for ``null-body``.
    """
    parts: list[str] = []
    blocks: list[bytes] = []
    offset = 0
    if http_request is not None:
        block = serialize_request_head(http_request)
        parts.append(f"req-hdr={offset}")
        blocks.append(block)
        offset += len(block)
    if http_response is not None:
        block = serialize_response_head(http_response)
        parts.append(f"res-hdr={offset}")
        blocks.append(block)
        offset += len(block)
    parts.append(f"{body_entity or 'null-body'}={offset}")
    return ", ".join(parts), b"".join(blocks)


def encode_head(start_line: str, fields: Iterable[tuple[str, str]], encapsulated: str | None) -> bytes:
    """Start line + ICAP headers (+ Encapsulated) + blank line, as bytes."""
    text = f"{start_line}\r\n{serialize_fields(fields)}"
    if encapsulated is not None:
        text += f"Encapsulated: {encapsulated}\r\n"
    return (text + "\r\n").encode("latin-1")


def encode_response(
    status: int,
    fields: Iterable[tuple[str, str]],
    *,
    http_request: HttpRequestHead | None = None,
    http_response: HttpResponseHead | None = None,
    body_entity: str | None = None,
) -> bytes:
    """An ICAP response head including the encapsulated HTTP heads (no body)."""
    encapsulated, heads = encapsulate(http_request, http_response, body_entity)
    start = f"ICAP/1.0 {status} {REASONS.get(status, 'Unknown')}"
    return encode_head(start, fields, encapsulated) + heads


def encode_request(
    method: str,
    uri: str,
    fields: Iterable[tuple[str, str]],
    *,
    http_request: HttpRequestHead | None = None,
    http_response: HttpResponseHead | None = None,
    body_entity: str | None = None,
    encapsulated: bool = True,
) -> bytes:
    """An ICAP request head (client side); ``encapsulated=False`` omits the header like Squid's OPTIONS."""
    value, heads = encapsulate(http_request, http_response, body_entity)
    return encode_head(f"{method} {uri} ICAP/1.0", fields, value if encapsulated else None) + heads
