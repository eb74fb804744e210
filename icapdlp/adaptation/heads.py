"""The HTTP head that goes with a rewritten body.

Only what the new body makes false is changed: the length, and validators and
digests computed over the old bytes (a cache or client checking them would
reject or, worse, mix up the two versions). Everything else, including the
Content-Encoding (the body is re-encoded with it), stays as received.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead
from icapdlp.payload.dicomweb_target import map_target_uids
from icapdlp.transaction import Transaction

#: fields that describe the old body's bytes (RFC 9530 digests, RFC 1864, RFC 3230, validators)
STALE_BODY_FIELDS = ("Content-MD5", "Digest", "Repr-Digest", "Content-Digest", "Want-Digest",
                     "ETag", "Last-Modified")


def body_head(tx: Transaction) -> HttpRequestHead | HttpResponseHead | None:
    """The head of the message whose body is being adapted."""
    return tx.request if tx.icap_method == "REQMOD" else tx.response


def declared_length(headers: HttpHeaders) -> int | None:
    values = headers.get_all("Content-Length")
    if not values or headers.get("Transfer-Encoding") is not None:
        return None
    lengths = {v.strip() for v in values}  # c-icap-client sends Content-Length twice
    if len(lengths) != 1:
        return None
    text = lengths.pop()
    return int(text) if text.isdigit() else None


def rewritten_headers(headers: HttpHeaders, new_length: int) -> HttpHeaders:
    headers = headers.without(*STALE_BODY_FIELDS)
    if headers.get("Transfer-Encoding") is not None:
        return headers.without("Content-Length")  # the client frames the body itself
    if len(headers.get_all("Content-Length")) > 1:
        headers = headers.without("Content-Length")
    return headers.replaced("Content-Length", str(new_length))


def held_open_response(tx: Transaction) -> HttpResponseHead:
    """The head of a response whose answer begins before its body is decided.

    Whatever the body turns out to be (unchanged, rewritten), the head sent
    first must be true of it: no length, no validators or digests of the old
    bytes. A Replace's head is this one plus its new length.
    """
    head = tx.response
    assert head is not None, "only a response is held open"
    return replace(head, headers=head.headers.without(*STALE_BODY_FIELDS, "Content-Length"))


def with_new_body_length(tx: Transaction, new_length: int, map_uid: Callable[[str], str] | None = None
                         ) -> tuple[HttpRequestHead | None, HttpResponseHead | None]:
    """(request, response) heads for a Replace/PartialReplace of the adapted message.

    ``map_uid``: how the body's instance UIDs were rewritten; a request's
    DICOMweb path (``/studies/{uid}``...) is mapped the same way, so it names
    the rewritten objects and not the originals.
    """
    head = body_head(tx)
    assert head is not None, "a body without a head is rejected by the codec"
    new = replace(head, headers=rewritten_headers(head.headers, new_length))
    if tx.icap_method == "REQMOD":
        if map_uid is not None:
            new = replace(new, target=map_target_uids(new.target, map_uid))
        return new, None  # type: ignore[return-value]
    return None, new  # type: ignore[return-value]
