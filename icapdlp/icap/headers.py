"""Header blocks, start lines and the Encapsulated header.

Text is decoded as Latin-1 so every byte survives a parse/serialise round
trip unchanged. Parsing is strict where a lenient reading could make two
parties disagree about where a message ends (header syntax, Encapsulated
offsets) and lenient only where Squid and c-icap-client are known to differ
from the letter of RFC 3507 (see FIELD-NOTES).
"""

from __future__ import annotations

import re

from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead
from icapdlp.icap.errors import ProtocolError

# RFC 7230 token characters: what a header name or method may contain
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# control characters other than horizontal tab are never valid in a value
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: offsets in Encapsulated are decimal; 12 digits is far beyond any header limit
_MAX_OFFSET_DIGITS = 12

_KNOWN_METHODS = frozenset({"OPTIONS", "REQMOD", "RESPMOD", "GET", "POST", "PUT", "HEAD", "DELETE", "PATCH",
                            "CONNECT"})

HEADER_ENTITIES = ("req-hdr", "res-hdr")
BODY_ENTITIES = ("req-body", "res-body", "opt-body", "null-body")

#: the Encapsulated shapes each method may carry (RFC 3507 section 4.4.1)
_ALLOWED_SHAPES: dict[str, frozenset[tuple[str, ...]]] = {
    "REQMOD": frozenset({("req-hdr", "req-body"), ("req-hdr", "null-body"), ("req-body",), ("null-body",)}),
    "RESPMOD": frozenset({
        ("req-hdr", "res-hdr", "res-body"), ("req-hdr", "res-hdr", "null-body"),
        ("res-hdr", "res-body"), ("res-hdr", "null-body"),
        ("req-hdr", "res-body"), ("req-hdr", "null-body"),
        ("res-body",), ("null-body",),
    }),
    "OPTIONS": frozenset({("opt-body",), ("null-body",)}),
}

#: the HTTP head each adapted method modifies. RFC 3507 lets a REQMOD omit req-hdr and a
#: RESPMOD omit res-hdr, but then there is no message to adapt: a body without its head has no
#: declared type, encoding or target to check, and echoing it back would pass bytes nobody
#: inspected. The server refuses such a request with 400 (issue 12, item 8).
REQUIRED_HEADS = {"REQMOD": "req-hdr", "RESPMOD": "res-hdr"}


def missing_http_head(method: str, entities) -> str | None:
    """The entity name of the HTTP head ``method`` needs and ``entities`` lack, else ``None``."""
    needed = REQUIRED_HEADS.get(method)
    if needed is None:
        return None
    for name, _ in entities:  # a plain loop: this runs once per request on the hot path
        if name == needed:
            return None
    return needed


# a whole header block in one match: lines of "token: value" with no control characters;
# one regex call per block instead of two per line is most of the hot path's parsing cost
_VALID_BLOCK = re.compile(r"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*(?:\r\n(?!$)|$))*")


def parse_fields(block: str, where: str) -> list[tuple[str, str]]:
    """Parse ``Name: value`` lines (CRLF separated, no terminating blank line)."""
    if not block:
        return []
    if _VALID_BLOCK.fullmatch(block) is None:
        _explain_invalid(block, where)
    fields = []
    for line in block.split("\r\n"):
        name, _, value = line.partition(":")
        fields.append((name, value.strip(" \t")))
    return fields


def _explain_invalid(block: str, where: str) -> None:
    """Raise the precise error for a block the fast check rejected."""
    for line in block.split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise ProtocolError(f"{where}: header line without ':'")
        if not _TOKEN.fullmatch(name):
            # also rejects obsolete line folding (a line starting with whitespace)
            raise ProtocolError(f"{where}: invalid header name")
        if _BAD_VALUE_CHAR.search(value):
            raise ProtocolError(f"{where}: control character in header value")
    raise ProtocolError(f"{where}: malformed header block")


def parse_request_line(line: str, where: str) -> tuple[str, str, str]:
    """``METHOD SP TARGET SP VERSION`` -> (method, target, version)."""
    parts = line.split(" ")
    if len(parts) != 3 or not parts[1]:
        raise ProtocolError(f"{where}: malformed request line")
    method, target, version = parts
    if method not in _KNOWN_METHODS and not _TOKEN.fullmatch(method):
        raise ProtocolError(f"{where}: invalid method")
    if _BAD_VALUE_CHAR.search(target):
        raise ProtocolError(f"{where}: control character in request target")
    return method, target, version


def parse_http_request_head(block: str) -> HttpRequestHead:
    line, _, rest = block.partition("\r\n")
    method, target, version = parse_request_line(line, "req-hdr")
    if not version.startswith("HTTP/"):
        raise ProtocolError("req-hdr: not an HTTP request line")
    return HttpRequestHead(method, target, version, HttpHeaders(parse_fields(rest, "req-hdr")))


def parse_http_response_head(block: str) -> HttpResponseHead:
    line, _, rest = block.partition("\r\n")
    version, _, after = line.partition(" ")
    code, _, reason = after.partition(" ")
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit() or not code.isascii():
        raise ProtocolError("res-hdr: malformed status line")
    if _BAD_VALUE_CHAR.search(reason):
        raise ProtocolError("res-hdr: control character in reason phrase")
    return HttpResponseHead(version, int(code), reason, HttpHeaders(parse_fields(rest, "res-hdr")))


#: clients repeat the same few Encapsulated and Allow values; remembering a bounded
#: number of parses saves most of their cost on the hot path
_CACHE_LIMIT = 512
_encapsulated_cache: dict[tuple[str, str], tuple[tuple[str, int], ...]] = {}
_token_cache: dict[str, frozenset[str]] = {}


def parse_encapsulated(value: str, method: str) -> list[tuple[str, int]]:
    """Parse and validate ``Encapsulated`` for ``method``; offsets must start at 0 and grow."""
    key = (value, method)
    cached = _encapsulated_cache.get(key)
    if cached is None:
        cached = tuple(_parse_encapsulated(value, method))
        if len(_encapsulated_cache) >= _CACHE_LIMIT:
            _encapsulated_cache.clear()
        _encapsulated_cache[key] = cached
    return list(cached)


def _parse_encapsulated(value: str, method: str) -> list[tuple[str, int]]:
    entities: list[tuple[str, int]] = []
    for item in value.split(","):
        name, eq, number = item.strip().partition("=")
        number = number.strip()
        name = name.strip().lower()
        if (not eq or name not in HEADER_ENTITIES + BODY_ENTITIES or not number.isdigit()
                or not number.isascii() or len(number) > _MAX_OFFSET_DIGITS):
            raise ProtocolError("Encapsulated: malformed entry")
        entities.append((name, int(number)))
    shape = tuple(name for name, _ in entities)
    allowed = _ALLOWED_SHAPES.get(method)
    if allowed is not None and shape not in allowed:
        raise ProtocolError(f"Encapsulated: {', '.join(shape)} is not valid for {method}")
    if allowed is None and (shape[-1] not in BODY_ENTITIES
                            or any(name not in HEADER_ENTITIES for name in shape[:-1])
                            or len(set(shape)) != len(shape)):
        raise ProtocolError("Encapsulated: malformed entity list")
    if entities[0][1] != 0:
        raise ProtocolError("Encapsulated: first offset is not 0")
    for (_, previous), (_, current) in zip(entities, entities[1:]):
        if current <= previous:
            raise ProtocolError("Encapsulated: offsets do not increase")
    return entities


def serialize_fields(fields) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in fields)


def serialize_request_head(head: HttpRequestHead) -> bytes:
    text = f"{head.method} {head.target} {head.version}\r\n{serialize_fields(head.headers)}\r\n"
    return text.encode("latin-1")


def serialize_response_head(head: HttpResponseHead) -> bytes:
    text = f"{head.version} {head.status} {head.reason}\r\n{serialize_fields(head.headers)}\r\n"
    return text.encode("latin-1")


def token_set(value: str | None) -> frozenset[str]:
    """Comma-separated tokens, lower-cased: ``"204, Trailers"`` -> {"204", "trailers"}."""
    if not value:
        return frozenset()
    cached = _token_cache.get(value)
    if cached is None:
        cached = frozenset(part.strip().lower() for part in value.split(",") if part.strip())
        if len(_token_cache) >= _CACHE_LIMIT:
            _token_cache.clear()
        _token_cache[value] = cached
    return cached
