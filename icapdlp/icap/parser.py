"""Server-side ICAP/1.0 request parser: bytes in, events out, no I/O.

Usage, h11 style::

    parser = RequestParser(limits)
    parser.receive_data(chunk)          # b"" signals end of stream
    event = parser.next_event()         # an event, NEED_DATA, PAUSED or CONNECTION_CLOSED

After a :class:`PreviewEnd` the parser returns ``PAUSED`` until the server
either sent ``100 Continue`` and calls :meth:`continue_body`, or answered from
the preview and calls :meth:`finish_early` (the client then sends no more of
this body). After :class:`EndOfMessage` the parser is ready for the next
request on the same connection. Every problem raises :class:`ProtocolError`
(or its subclass :class:`LimitExceeded`); after one, the parser stays broken
and the connection must be closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from icapdlp.http import HttpHeaders
from icapdlp.icap import headers as hdr
from icapdlp.icap.chunked import MAX_CHUNK_LINE_BYTES, ChunkHeader, parse_chunk_line
from icapdlp.icap.errors import LimitExceeded, ProtocolError
from icapdlp.icap.events import (
    CONNECTION_CLOSED, NEED_DATA, PAUSED, BodyData, EndOfMessage, PreviewEnd, Request,
)

ICAP_VERSION = "ICAP/1.0"
#: the ICAP headers that change how a request is framed or answered (lower-case name -> role)
_FRAMING_FIELDS = {"encapsulated": "encapsulated", "preview": "preview", "allow": "allow",
                   "connection": "connection"}

# parser states
_HEAD, _HTTP_HEADS, _END_PENDING, _CHUNK_LINE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _PAUSED, _BROKEN = range(9)


@dataclass(frozen=True, slots=True)
class CodecLimits:
    """What one request may make the parser buffer. Defaults match ``LimitsOptions``."""

    icap_header_bytes: int = 64 * 1024
    http_header_bytes: int = 64 * 1024
    chunk_bytes: int = 16 * 1024 * 1024
    body_bytes: int = 2 * 1024 * 1024 * 1024

    @classmethod
    def from_options(cls, options) -> "CodecLimits":
        """Take the four limits from any object that has them (``LimitsOptions``)."""
        return cls(options.icap_header_bytes, options.http_header_bytes, options.chunk_bytes, options.body_bytes)


def service_from_uri(uri: str) -> str:
    """``icap://host:1344/deid-req?x=1`` -> ``deid-req``."""
    scheme, sep, rest = uri.partition("://")
    path = rest[rest.find("/"):] if sep and "/" in rest else ("" if sep else scheme)
    return path.partition("?")[0].strip("/")


#: a client sends the same few ICAP request lines (one per service) over and over;
#: a bounded memo of validated lines skips their parse on the hot path
_LINE_CACHE_LIMIT = 256
_line_cache: dict[str, tuple[str, str, str]] = {}
#: chunk-size lines repeat too ("1000", "0; ieof", "0"); a ChunkHeader is immutable, so shareable
_chunk_cache: dict[bytes, ChunkHeader] = {}


def _request_line(line: str) -> tuple[str, str, str]:
    """A valid ICAP/1.0 request line -> (method, uri, service); ProtocolError otherwise."""
    parsed = _line_cache.get(line)
    if parsed is None:
        method, uri, version = hdr.parse_request_line(line, "ICAP request line")
        if version != ICAP_VERSION:
            raise ProtocolError("unsupported ICAP version", 505 if version.startswith("ICAP/") else 400)
        parsed = (method, uri, service_from_uri(uri))
        if len(_line_cache) >= _LINE_CACHE_LIMIT:
            _line_cache.clear()
        _line_cache[line] = parsed
    return parsed


def _remember_chunk_line(line: bytes, chunk: ChunkHeader) -> None:
    if len(_chunk_cache) >= _LINE_CACHE_LIMIT:
        _chunk_cache.clear()
    _chunk_cache[line] = chunk


class RequestParser:
    """Turns the byte stream of one ICAP connection into request events."""

    __slots__ = ("limits", "_buf", "_state", "_eof", "_pending", "_remaining", "_body_total",
                 "_preview_left", "_in_preview", "_ieof")

    def __init__(self, limits: CodecLimits | None = None) -> None:
        self.limits = limits or CodecLimits()
        self._buf = bytearray()
        self._state = _HEAD
        self._eof = False
        self._pending: Request | None = None
        self._remaining = 0
        self._body_total = 0
        self._preview_left = 0
        self._in_preview = False
        self._ieof = False

    # -- input -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Append bytes from the peer; ``b""`` means the peer closed its side."""
        if data:
            self._buf += data
        else:
            self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes received and not yet turned into events (for read back-pressure)."""
        return len(self._buf)

    @property
    def at_request_boundary(self) -> bool:
        """No part of a request has been received: an idle connection."""
        return self._state == _HEAD and not self._buf

    # -- server decisions after a preview ---------------------------------------

    def continue_body(self) -> None:
        """The server sent ``100 Continue``: the rest of the body follows."""
        if self._state != _PAUSED:
            raise RuntimeError("continue_body() outside a paused preview")
        self._in_preview = False
        self._state = _CHUNK_LINE

    def finish_early(self) -> None:
        """The server answered from the preview: the client sends nothing more of this body."""
        if self._state != _PAUSED:
            raise RuntimeError("finish_early() outside a paused preview")
        self._state = _HEAD

    # -- output ------------------------------------------------------------------

    def next_event(self):
        try:
            while True:
                state = self._state
                if state == _HEAD:
                    event = self._read_icap_head()
                    if event is not None:
                        return event
                elif state == _HTTP_HEADS:
                    return self._read_http_heads()
                elif state == _CHUNK_DATA:
                    return self._read_chunk_data()
                elif state == _CHUNK_LINE:
                    event = self._read_chunk_line()
                    if event is not None:
                        return event
                elif state == _CHUNK_END:
                    event = self._read_chunk_end()
                    if event is not None:
                        return event
                elif state == _TRAILERS:
                    return self._read_trailers()
                elif state == _END_PENDING:
                    self._state = _HEAD
                    return EndOfMessage()
                elif state == _PAUSED:
                    return PAUSED
                else:
                    raise ProtocolError("connection already failed")
        except ProtocolError:
            self._state = _BROKEN
            raise

    # -- states --------------------------------------------------------------------

    def _need_more(self, what: str):
        if self._eof:
            raise ProtocolError(f"connection closed inside {what}")
        return NEED_DATA

    def _read_icap_head(self):
        buf = self._buf
        if not buf:  # the common case between requests on a persistent connection
            return CONNECTION_CLOSED if self._eof else NEED_DATA
        while buf.startswith(b"\r\n"):  # RFC 7230 3.5: ignore empty lines before a request line
            del buf[:2]
        limit = self.limits.icap_header_bytes
        end = buf.find(b"\r\n\r\n", 0, limit)
        if end < 0:
            if len(buf) >= limit:
                raise LimitExceeded("icap_header_bytes", limit, 431)
            if self._eof and not buf:
                return CONNECTION_CLOSED
            return self._need_more("an ICAP header")
        head = buf[:end].decode("latin-1")
        del buf[:end + 4]
        line, _, rest = head.partition("\r\n")
        method, uri, service = _request_line(line)
        fields = hdr.parse_fields(rest, "ICAP header")
        encapsulated = preview = allow = None
        close = False
        for name, value in fields:
            kind = _FRAMING_FIELDS.get(name.lower())
            if kind is None:
                continue
            if kind == "encapsulated":
                if encapsulated is not None:
                    raise ProtocolError("Encapsulated given twice")
                encapsulated = value
            elif kind == "preview":
                if preview is not None or not value.isdigit() or not value.isascii() or len(value) > 10:
                    raise ProtocolError("malformed Preview")
                preview = int(value)
            elif kind == "allow":
                allow = hdr.token_set(value) if allow is None else allow | hdr.token_set(value)
            else:
                close = close or "close" in hdr.token_set(value)
        if encapsulated is None:
            if method in ("REQMOD", "RESPMOD"):
                raise ProtocolError("missing Encapsulated")
            entities = [("null-body", 0)]  # Squid's OPTIONS carries none
        else:
            entities = hdr.parse_encapsulated(encapsulated, method)
        body_name, heads_length = entities[-1]
        if heads_length > self.limits.http_header_bytes:
            raise LimitExceeded("http_header_bytes", self.limits.http_header_bytes, 431)
        self._pending = Request(
            method=method, uri=uri, service=service, headers=HttpHeaders(fields),
            encapsulated=entities, body_entity=None if body_name == "null-body" else body_name,
            preview=preview, allow=allow or frozenset(), close=close,
            missing_http_head=hdr.missing_http_head(method, entities),
        )
        self._state = _HTTP_HEADS
        return None

    def _read_http_heads(self):
        request = self._pending
        entities = request.encapsulated
        total = entities[-1][1]
        buf = self._buf
        if len(buf) < total:
            return self._need_more("encapsulated HTTP headers")
        for (name, start), (_, end) in zip(entities, entities[1:]):
            block = buf[start:end].decode("latin-1")
            if not block.endswith("\r\n\r\n"):
                raise ProtocolError(f"{name} does not end with an empty line")
            block = block[:-4]
            if name == "req-hdr":
                request.http_request = hdr.parse_http_request_head(block)
            else:
                request.http_response = hdr.parse_http_response_head(block)
        del buf[:total]
        self._pending = None
        if request.body_entity is None:
            self._state = _END_PENDING
        else:
            self._state = _CHUNK_LINE
            self._body_total = 0
            self._in_preview = request.preview is not None
            self._preview_left = request.preview or 0
            self._ieof = False
        return request

    def _read_chunk_line(self):
        buf = self._buf
        end = buf.find(b"\r\n", 0, MAX_CHUNK_LINE_BYTES + 2)
        if end < 0:
            if len(buf) > MAX_CHUNK_LINE_BYTES:
                raise ProtocolError("chunk-size line too long")
            return self._need_more("a chunk-size line")
        line = bytes(buf[:end])
        chunk = _chunk_cache.get(line)
        if chunk is None:
            chunk = parse_chunk_line(line, self.limits.chunk_bytes)
            _remember_chunk_line(line, chunk)
        elif chunk.size > self.limits.chunk_bytes:  # the memo is shared by parsers with other limits
            raise LimitExceeded("chunk_bytes", self.limits.chunk_bytes, 413)
        size = chunk.size
        if size == 0:
            del buf[:end + 2]
            self._ieof = chunk.ieof and self._in_preview
            self._state = _TRAILERS
            return self._read_trailers() if buf[:2] == b"\r\n" else None  # no trailers: the usual end
        self._body_total += size
        if self._body_total > self.limits.body_bytes:
            raise LimitExceeded("body_bytes", self.limits.body_bytes, 413)
        if self._in_preview:
            self._preview_left -= size
            if self._preview_left < 0:
                raise ProtocolError("preview longer than announced")
        start = end + 2
        stop = start + size
        if buf[stop:stop + 2] == b"\r\n":  # the whole chunk is here: one event, same checks
            data = bytes(buf[start:stop])
            del buf[:stop + 2]
            return BodyData(data)
        del buf[:start]
        self._remaining = size
        self._state = _CHUNK_DATA
        return None

    def _read_chunk_data(self):
        buf = self._buf
        if not buf:
            return self._need_more("chunk data")
        n = min(self._remaining, len(buf))
        data = bytes(buf[:n])
        del buf[:n]
        self._remaining -= n
        if not self._remaining:
            self._state = _CHUNK_END
        return BodyData(data)

    def _read_chunk_end(self):
        buf = self._buf
        if len(buf) < 2:
            return self._need_more("a chunk")
        if buf[:2] != b"\r\n":
            raise ProtocolError("chunk data longer than its size")
        del buf[:2]
        self._state = _CHUNK_LINE
        return None

    def _read_trailers(self):
        buf = self._buf
        if buf[:2] == b"\r\n":
            trailers: list[tuple[str, str]] = []
            del buf[:2]
        else:
            limit = self.limits.http_header_bytes
            end = buf.find(b"\r\n\r\n", 0, limit)
            if end < 0:
                if len(buf) >= limit:
                    raise LimitExceeded("http_header_bytes", limit, 431)
                return self._need_more("chunk trailers")
            trailers = hdr.parse_fields(buf[:end].decode("latin-1"), "trailer")
            del buf[:end + 4]
        if self._in_preview and not self._ieof:
            self._state = _PAUSED
            return PreviewEnd()
        self._state = _HEAD
        return EndOfMessage(ieof=self._ieof, trailers=trailers)
