"""Chunked transfer coding as ICAP uses it (RFC 3507 section 4.5, RFC 7230 4.1).

ICAP adds two chunk extensions: ``ieof`` on the last chunk of a preview that
holds the whole body, and ``use-original-body=N`` on the last chunk of a 206
response. Squid sends chunks of any size and may put spaces before ``;``.
"""

from __future__ import annotations

from dataclasses import dataclass

from icapdlp.icap.errors import LimitExceeded, ProtocolError

#: a chunk-size line is a hex number plus extensions; Squid's are < 40 bytes, and
#: 4 KiB leaves room for any real extension while bounding a line that never ends
MAX_CHUNK_LINE_BYTES = 4096
#: 16 hex digits already exceed every configurable chunk limit
_MAX_SIZE_DIGITS = 16
_HEX = frozenset(b"0123456789abcdefABCDEF")

LAST_CHUNK = b"0\r\n\r\n"


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    size: int
    ieof: bool = False
    use_original_body: int | None = None


def parse_chunk_line(line: bytes, max_chunk: int) -> ChunkHeader:
    """Parse one chunk-size line without its CRLF."""
    size_part, _, ext_part = line.partition(b";")
    size_part = size_part.strip(b" \t")
    if not size_part or len(size_part) > _MAX_SIZE_DIGITS or not _HEX.issuperset(size_part):
        raise ProtocolError("malformed chunk size")
    size = int(size_part, 16)
    if size > max_chunk:
        raise LimitExceeded("chunk_bytes", max_chunk, 413)
    ieof = False
    use_original: int | None = None
    if ext_part:
        for extension in ext_part.split(b";"):
            name, eq, value = extension.strip(b" \t").partition(b"=")
            name = name.strip(b" \t").lower()
            if name == b"ieof":
                ieof = True
            elif name == b"use-original-body":
                value = value.strip(b" \t")
                if not eq or not value.isdigit() or len(value) > _MAX_SIZE_DIGITS:
                    raise ProtocolError("malformed use-original-body extension")
                use_original = int(value)
            # other extensions are allowed by RFC 7230 and carry nothing we need
    return ChunkHeader(size, ieof, use_original)


def encode_chunk(data: bytes) -> bytes:
    """One chunk holding ``data`` (empty data would be the last chunk: callers must not pass it)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk(*, ieof: bool = False, use_original_body: int | None = None) -> bytes:
    if use_original_body is not None:
        return b"0; use-original-body=%d\r\n\r\n" % use_original_body
    return b"0; ieof\r\n\r\n" if ieof else LAST_CHUNK
