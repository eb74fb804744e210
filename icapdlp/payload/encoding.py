"""Content-Encoding gzip / deflate: bounded inflate, and the same coding on the way out.

Inflation is the classic amplification attack (a few kilobytes that expand to
gigabytes), so every inflate here stops at an explicit output limit and
reports ``limit-exceeded`` instead of growing. Output is produced in slices so
a bomb never allocates more than the limit plus one slice.
"""

from __future__ import annotations

import zlib

from icapdlp.verdict import BlockReason, Blocked

#: content codings icapdlp undoes and redoes; any other coding is refused (one table for all callers)
SUPPORTED_CODINGS = frozenset({"gzip", "deflate"})
#: bytes of output asked from zlib per step; bounds the overshoot past the limit
INFLATE_STEP = 256 * 1024
#: gzip level for re-encoding: zlib's default trades speed and size well
GZIP_LEVEL = 6

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


def inflate(data: bytes, coding: str, limit: int) -> bytes:
    """Undo one coding ("gzip" or "deflate"); Blocked on bad data or output above ``limit``.

    gzip may hold several members (RFC 1952 §2.2); all are inflated. HTTP
    "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2) but some servers send raw
    deflate; both are accepted because refusing would only break downloads.
    """
    if coding == "gzip":
        return _inflate_members(data, _GZIP_WBITS, limit)
    if coding == "deflate":
        wbits = _ZLIB_WBITS if _zlib_header(data) else _RAW_WBITS
        return _inflate_members(data, wbits, limit, single=True)
    raise Blocked(BlockReason.UNSUPPORTED_ENCODING, f"content coding {coding!r} is not supported")


def inflate_prefix(data: bytes, coding: str, limit: int) -> bytes:
    """Inflate as much of a truncated stream (a preview) as it holds, up to ``limit`` bytes.

    Used only to sniff what is inside; a damaged prefix gives what came out
    before the damage.
    """
    if coding not in ("gzip", "deflate"):
        return b""
    wbits = _GZIP_WBITS if coding == "gzip" else (_ZLIB_WBITS if _zlib_header(data) else _RAW_WBITS)
    inflater = zlib.decompressobj(wbits)
    try:
        return inflater.decompress(data, limit)
    except zlib.error:
        return b""


def encode(data: bytes, coding: str) -> bytes:
    """Apply ``coding`` to a rewritten body (mtime 0 so the output is deterministic)."""
    if coding == "gzip":
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
        return compressor.compress(data) + compressor.flush()
    if coding == "deflate":
        return zlib.compress(data, GZIP_LEVEL)
    raise Blocked(BlockReason.UNSUPPORTED_ENCODING, f"content coding {coding!r} is not supported")


def _zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _inflate_members(data: bytes, wbits: int, limit: int, single: bool = False) -> bytes:
    out = bytearray()
    remaining = memoryview(data)
    while True:
        inflater = zlib.decompressobj(wbits)
        pending = bytes(remaining)
        try:
            while not inflater.eof:
                chunk = inflater.decompress(pending, INFLATE_STEP)
                out += chunk
                if len(out) > limit:
                    raise Blocked(BlockReason.LIMIT_EXCEEDED, f"inflated body exceeds {limit} bytes")
                pending = inflater.unconsumed_tail
                if not chunk and not pending:
                    raise Blocked(BlockReason.UNSUPPORTED_ENCODING, "compressed body is truncated")
        except zlib.error:
            raise Blocked(BlockReason.UNSUPPORTED_ENCODING, "compressed body is corrupt") from None
        rest = inflater.unused_data
        if not rest or single:
            if rest:
                raise Blocked(BlockReason.UNSUPPORTED_ENCODING, "bytes after the compressed stream")
            return bytes(out)
        if rest.strip(b"\0") == b"":
            return bytes(out)  # zero padding after the last gzip member (seen from some servers)
        remaining = memoryview(rest)
