"""Byte-exact ICAP requests as Squid and c-icap-client send them, for codec and server tests.

Built by hand (not with the writer under test) so a writer bug cannot hide
a parser bug. Offsets are computed from the real header bytes.
"""

from __future__ import annotations

HTTP_GET = b"GET http://example.org/index.html HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n"
HTTP_POST = (b"POST /upload HTTP/1.1\r\nHost: example.org\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Length: 10000\r\nContent-Length: 10000\r\nX-Mixed-CASE: Kept\r\n\r\n")
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000\r\n\r\n"

SQUID_OPTIONS = (b"OPTIONS icap://127.0.0.1:1344/deid-req ICAP/1.0\r\nHost: 127.0.0.1:1344\r\n"
                 b"Allow: 206, trailers\r\n\r\n")
CICAP_OPTIONS = (b"OPTIONS icap://127.0.0.1:1344/deid-req ICAP/1.0\r\nHost: 127.0.0.1:1344\r\n"
                 b"User-Agent: C-ICAP-Client-Library/0.5.10\r\nEncapsulated: null-body=0\r\n\r\n")


def icap_head(method: bytes, service: bytes, encapsulated: bytes, *extra: bytes) -> bytes:
    lines = [method + b" icap://127.0.0.1:1344/" + service + b" ICAP/1.0", b"Host: 127.0.0.1:1344", *extra,
             b"Encapsulated: " + encapsulated]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def chunked(body: bytes, size: int = 4096, last: bytes = b"0\r\n\r\n") -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size))
    return out + last


def reqmod_get_preview0(service: bytes = b"deid-req", *extra: bytes) -> bytes:
    """Squid's REQMOD for a GET: Preview: 0, null-body, no chunk data at all."""
    return icap_head(b"REQMOD", service, b"req-hdr=0, null-body=%d" % len(HTTP_GET),
                     b"Allow: 204, trailers", b"Preview: 0", *extra) + HTTP_GET


def reqmod_post(body: bytes, *, preview: int | None = None, allow_204: bool = True, ieof: bool | None = None,
                service: bytes = b"deid-req", extra: tuple[bytes, ...] = ()) -> tuple[bytes, bytes]:
    """(first bytes, rest): with a preview, ``first`` ends after the preview's last chunk."""
    headers = list(extra)
    if allow_204:
        headers.append(b"Allow: 204")
    if preview is not None:
        headers.append(b"Preview: %d" % preview)
    head = icap_head(b"REQMOD", service, b"req-hdr=0, req-body=%d" % len(HTTP_POST), *headers) + HTTP_POST
    if preview is None:
        return head + chunked(body), b""
    whole = ieof if ieof is not None else len(body) <= preview
    first = body[:preview]
    last = b"0; ieof\r\n\r\n" if whole else b"0\r\n\r\n"
    return head + chunked(first, last=last), (b"" if whole else chunked(body[preview:]))


def respmod(body: bytes, *, preview: int | None = None, with_req_hdr: bool = True, allow_204: bool = True,
            service: bytes = b"deid-resp") -> tuple[bytes, bytes]:
    headers = [b"Allow: 204"] if allow_204 else []
    if preview is not None:
        headers.append(b"Preview: %d" % preview)
    if with_req_hdr:
        enc = b"req-hdr=0, res-hdr=%d, res-body=%d" % (len(HTTP_GET), len(HTTP_GET) + len(HTTP_RESPONSE))
        heads = HTTP_GET + HTTP_RESPONSE
    else:
        enc = b"res-hdr=0, res-body=%d" % len(HTTP_RESPONSE)
        heads = HTTP_RESPONSE
    head = icap_head(b"RESPMOD", service, enc, *headers) + heads
    if preview is None:
        return head + chunked(body), b""
    whole = len(body) <= preview
    return (head + chunked(body[:preview], last=b"0; ieof\r\n\r\n" if whole else b"0\r\n\r\n"),
            b"" if whole else chunked(body[preview:]))
