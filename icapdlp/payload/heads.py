"""DICOM carried in an HTTP head: the request target's query and path, or a header value.

A small Part-10 file is about 600 bytes, 800 characters of base64url: it fits
in a query parameter (Squid takes request heads up to 64 KB) or in a custom
header, and the origin decodes it with one line (``parse_qs`` then
``urlsafe_b64decode``). A body check never sees it. This module walks each
value of a head that is long enough to hold an encoded object, exactly as a
text body is walked (base64, hex, percent-encoding, the JSON model...), and
refuses the head when one holds DICOM: a head cannot be rewritten in place
without changing what the request means, so DICOM there is uninspectable.

Values shorter than ``textruns.MIN_RUN_CHARS`` cannot hold an encoded object
the walk would find, so an ordinary head (short values, a cookie, a JWT that
decodes to JSON) costs a few regular-expression scans.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from icapdlp.payload import textruns
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import PayloadWalker
from icapdlp.report import ObjectReport
from icapdlp.verdict import BlockReason, Blocked


def head_values(target: str | None, headers: Iterable[tuple[str, str]]) -> list[bytes]:
    """Every value of a head a receiver may decode: query values and keys, path segments, header values.

    Percent-encoding is undone as a server undoes it (``+`` in a query is a
    space); values too short to hold an encoded object are left out.
    """
    values: list[bytes] = []
    if target:
        parts = urlsplit(target)
        values += [unquote_to_bytes(segment) for segment in parts.path.split("/")]
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            values += [key.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape")]
        values.append(unquote_to_bytes(parts.query))  # (a query that is one value, without key=)
    values += [value.encode("latin-1", "replace") for _, value in headers]
    return [value for value in values if len(value) >= textruns.MIN_RUN_CHARS]


def check_head(target: str | None, headers: Iterable[tuple[str, str]], options: PayloadOptions) -> None:
    """Raise Blocked (uninspectable) when a value of this head holds a DICOM object or its JSON model.

    ``target``: the request target as sent (None for a response head);
    ``headers``: the head's (name, value) pairs. Each long value is walked as
    a line of a body of no declared type; whatever that walk would refuse,
    or any object it finds, refuses the head.
    """
    values = head_values(target, headers)
    if values:  # one walk of all values, a line each: the walk's fixed cost is most of a short value's
        walker = PayloadWalker(_REFUSING_REWRITER, options, "request", options.max_inflated_bytes)
        walker.rewrite_message(None, [], b"\n".join(values))


class _RefusingRewriter:
    """An object found in a head value: the head cannot be rewritten in place, so it is refused."""

    def rewrite_dicom(self, data: bytes) -> tuple[bytes, ObjectReport]:
        raise Blocked(BlockReason.UNINSPECTABLE, "a DICOM object in a request target or header value")

    def rewrite_json(self, dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
        raise Blocked(BlockReason.UNINSPECTABLE, "a DICOM JSON dataset in a request target or header value")


_REFUSING_REWRITER = _RefusingRewriter()
