"""What an HTTP head says about DICOM the body check cannot see: objects in the head, bodies in pieces.

A small Part-10 file is about 600 bytes, 800 characters of base64url: it fits
in a query parameter (Squid takes request heads up to 64 KB) or in a custom
header, and the origin decodes it with one line (``parse_qs`` then
``urlsafe_b64decode``). A body check never sees it. This module lists each
value of a head that is long enough to hold an encoded object;
:func:`icapdlp.payload.walker.check_head` walks them exactly as a text body
is walked (base64, hex, percent-encoding, the JSON model...) and refuses the
head when one holds DICOM: a head cannot be rewritten in place
without changing what the request means, so DICOM there is uninspectable.

Values shorter than ``textruns.MIN_RUN_CHARS`` cannot hold an encoded object
the walk would find; an ordinary browser head (a cookie, a JWT, a user agent)
costs one walk of a few hundred characters, about half a millisecond.

``piece_offset`` tells a body that is one piece of a larger one (a ``206``
range, a resumable upload's chunk): a stateless check sees one piece at a
time, so only a policy that refuses pieces past the start keeps an object cut
across messages from being joined at the receiver.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from icapdlp.payload import textruns


def head_values(target: str | None, headers: Iterable[tuple[str, str]]) -> list[bytes]:
    """Every value of a head a receiver may decode: query values and keys, path segments, header values.

    Percent-encoding is undone as a server undoes it (``+`` in a query is a
    space); values too short to hold an encoded object are left out.
    """
    # asked for every request: text too short to make a long value is not decoded at all (one
    # character becomes at most four UTF-8 bytes; percent-decoding only shortens)
    shortest = textruns.MIN_RUN_CHARS // 4
    values: list[bytes] = []
    if target and len(target) >= shortest:
        parts = urlsplit(target)
        values += [unquote_to_bytes(segment) for segment in parts.path.split("/") if len(segment) >= shortest]
        if len(parts.query) >= shortest:
            for key, value in parse_qsl(parts.query, keep_blank_values=True):
                values += [key.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape")]
            values.append(unquote_to_bytes(parts.query))  # (a query that is one value, without key=)
    values += [value.encode("latin-1", "replace") for _, value in headers
               if len(value) >= textruns.MIN_RUN_CHARS]  # (latin-1: one byte per character)
    return [value for value in values if len(value) >= textruns.MIN_RUN_CHARS]


#: the offset given to a piece whose place cannot be read: not the start, so refused with the others
_UNKNOWN_PLACE = 1


def piece_offset(status: int | None, request_headers: Iterable[tuple[str, str]],
                 response_headers: Iterable[tuple[str, str]] = ()) -> int | None:
    """Where a message's body sits in a larger representation: None when it is the whole of it.

    A body can be one piece of a file other messages complete: a ``206``
    answer (its ``Content-Range``), a request carrying ``Content-Range`` (a
    resumable PUT), a tus ``PATCH`` at ``Upload-Offset``. A stateless check
    sees one piece; a receiver that joins them (tusd appends each PATCH, a
    download manager joins its Range answers) gets the file. A policy that
    refuses pieces past the start (so no object can be completed from
    pieces that each passed alone) asks this. A ``206`` whose one range is
    the whole representation is the whole of it; a piece whose place
    cannot be read, and a multi-range answer, count as past the start.
    ``status``: the response status (None for a request).
    """
    request, response = _first_values(request_headers), _first_values(response_headers)
    if status == 206:
        if response.get("content-type", "").lower().startswith("multipart/byteranges"):
            return _UNKNOWN_PLACE
        return _range_start(response.get("content-range"))
    if "content-range" in request:
        return _range_start(request["content-range"])
    if "upload-offset" in request:
        value = request["upload-offset"].strip()
        return int(value) if value.isdigit() else _UNKNOWN_PLACE
    return None


def _first_values(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        found.setdefault(name.lower(), value)
    return found


def _range_start(content_range: str | None) -> int | None:
    """The first byte of ``bytes FIRST-LAST/TOTAL``: None when the range is the whole representation."""
    unit, _, spec = (content_range or "").strip().partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    if unit.lower() != "bytes" or not first.strip().isdigit() or not last.strip().isdigit():
        return _UNKNOWN_PLACE
    start = int(first)
    if start == 0 and total.strip().isdigit() and int(last) + 1 == int(total):
        return None
    return start
