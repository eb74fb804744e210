"""Where a stream behind other bytes starts that no magic number shows: zlib streams.

A zlib stream (RFC 1950) begins with a two-byte header, not a magic, yet it is
the most common compressed carrier inside other formats: a PDF attachment's
FlateDecode stream, every git object in a packfile, each block of a squashfs
image with its default compressor, a PNG's image data. Their readers find the
stream by the format's own structure; a carving tool (binwalk) finds it by the
header zlib itself writes (``78 01``, ``78 5e``, ``78 9c``, ``78 da``: levels 0-1,
2-5, 6, 7-9). Both kinds of start are offered here for the walker to decode,
as it decodes a gzip stream behind a prefix (``encoding.stream_offsets``).

A header alone is weak evidence: random bytes show one about 64 times per
MiB. Each is handed the next TRY_BYTES to inflate first; random bytes fail
within a few (none of 20,000 random trials decoded its kilobyte), so only a
real stream reaches the walker's full decode.

"""

from __future__ import annotations

import re
import zlib

from icapdlp.verdict import BlockReason, Blocked

#: the headers zlib writes for its compression levels (CMF 0x78: deflate, 32 KiB window)
_ZLIB_HEADER = re.compile(rb"\x78[\x01\x5e\x9c\xda]")
#: a PDF stream's data starts after the ``stream`` keyword and its end of line (ISO 32000 7.3.8)
_PDF_STREAM = b"stream"
#: zlib streams decoded in one body (a PDF holds one per page, font and image); past this many,
#: or one per ZLIB_STREAM_SPACING bytes, the body cannot be cleared at a bounded cost
MAX_ZLIB_STREAMS = 4096
ZLIB_STREAM_SPACING = 1024
#: input all the zlib streams of one body may make the decoder read, per byte of the body: streams
#: that end cleanly cover what they read, so only crafted overlapping damaged ones come near it
MAX_ZLIB_READ_FACTOR = 8
#: input inflated before a header is believed: random bytes fail well within it
TRY_BYTES = 1024
#: output allowed to the trial (it only asks whether the decoder fails)
_TRY_OUTPUT = 64 * TRY_BYTES

def zlib_offsets(data: bytes) -> list[int]:
    """Offsets past the first byte of ``data`` where a zlib stream starts that a decoder takes, in order.

    Candidates are zlib's own headers anywhere (what a carving tool looks
    for), and any valid zlib header right after a PDF ``stream`` keyword
    (what a PDF reader decodes, whatever window size the header names).
    """
    candidates = {match.start() for match in _ZLIB_HEADER.finditer(data) if match.start() > 0}
    found = data.find(_PDF_STREAM)
    while found >= 0:
        start = _after_end_of_line(data, found + len(_PDF_STREAM))
        if start is not None and _zlib_header(data[start:start + 2]):
            candidates.add(start)
        found = data.find(_PDF_STREAM, found + 1)
    return [offset for offset in sorted(candidates) if _decoder_takes(data[offset:offset + TRY_BYTES])]


def _after_end_of_line(data: bytes, pos: int) -> int | None:
    if data.startswith(b"\r\n", pos):
        return pos + 2
    if data[pos:pos + 1] in (b"\n", b"\r"):
        return pos + 1
    return None


def _zlib_header(head: bytes) -> bool:
    """A zlib header any inflater accepts: deflate, a window up to 32 KiB, no preset dictionary, FCHECK."""
    return (len(head) == 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and not head[1] & 0x20
            and (head[0] << 8 | head[1]) % 31 == 0)


def _decoder_takes(head: bytes) -> bool:
    try:
        zlib.decompressobj().decompress(head, _TRY_OUTPUT)
    except zlib.error:
        return False
    return True


#: input handed to the decoder at a time, and output asked of it at a time
_PIECE = 64 * 1024


def inflate_zlib(data: bytes, offset: int, limit: int) -> tuple[bytes, int | None, int]:
    """What a reader decodes from the zlib stream at ``offset``: to its end, damage or the data's end.

    Returns the output, where the stream ends (None after damage or
    truncation: then where it ends is unknown), and how much input the
    decoder was handed. Reads ``data`` in place: a body with thousands of
    streams (a PDF) is not copied once per stream. Blocked (limit-exceeded)
    when the output passes ``limit``.
    """
    decoder = zlib.decompressobj()
    view = memoryview(data)
    fed, pending, out = offset, b"", bytearray()
    try:
        while not decoder.eof:
            if not pending:
                if fed >= len(data):
                    return bytes(out), None, fed - offset  # (truncated: what a carving tool writes)
                pending = view[fed:fed + (TRY_BYTES if fed == offset else _PIECE)]  # (a damaged
                fed += len(pending)  # stream is then counted about as far as it was read)
            out += decoder.decompress(pending, _PIECE)
            pending = decoder.unconsumed_tail
            if len(out) > limit:
                raise Blocked(BlockReason.LIMIT_EXCEEDED, f"decoded zlib data exceeds {limit} bytes")
    except zlib.error:
        return bytes(out), None, fed - offset
    end = fed - len(decoder.unused_data)  # (after the end, zlib keeps what it left in unused_data)
    return bytes(out), end, end - offset
