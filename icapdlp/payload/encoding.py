"""Compression the payload layer undoes: as Content-Encoding, and as whole compressed bodies.

This module is the one owner of "which codings do we handle": ``media``
normalises header tokens with ``CODING_TOKENS``, triage and the walker ask
``SUPPORTED_CODINGS``, and a compressed body is recognised by
``body_compression`` (its magic number) or ``declared_compression`` (its
Content-Type). Everything is decoded whole and bounded by an output limit
(see ``_codecs``); a stream that is corrupt, truncated or followed by junk is
refused, because a receiver would read something we did not.

Which tokens are accepted, and why:

- ``gzip`` (and its alias ``x-gzip``), ``deflate``, ``br``, ``zstd``: the
  registered codings that browsers, curl ``--compressed`` and HTTP libraries
  undo on their own.
- ``bzip2``/``x-bzip2`` and ``xz``/``x-xz``: not registered for HTTP, and
  browsers and curl do not undo them, but an application may.
  Decoding, inspecting and re-encoding them is never less safe than refusing:
  a receiver that leaves them alone gets the re-encoded (clean) bytes, one
  that undoes them sees what was inspected.
- ``identity`` means no coding and is dropped.
- Anything else (``compress``, ``lzma``, ``aes128gcm``, ``dcb``, a typo) is
  refused as ``unsupported-encoding``: we cannot say what is inside.

Brotli has no magic number, so a brotli *file* is only recognised when it is
declared as a Content-Encoding.
"""

from __future__ import annotations

import zlib

import brotli

from icapdlp.payload import _codecs
from icapdlp.verdict import BlockReason, Blocked

#: HTTP Content-Encoding tokens (lower-cased) -> the coding they name
CODING_TOKENS: dict[str, str] = {
    "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br", "zstd": "zstd",
    "bzip2": "bzip2", "x-bzip2": "bzip2", "xz": "xz", "x-xz": "xz", "identity": "identity",
}
#: codings this module decodes and re-encodes
SUPPORTED_CODINGS: frozenset[str] = frozenset(_codecs.CODECS)
#: Content-Types of compressed files -> their coding (tried when the magic number is absent)
DECLARED_TYPES: dict[str, str] = {
    "application/gzip": "gzip", "application/x-gzip": "gzip",
    "application/x-bzip2": "bzip2", "application/x-bzip": "bzip2",
    "application/x-xz": "xz", "application/zstd": "zstd", "application/x-zstd": "zstd",
}

_BZIP2_BLOCK_MAGICS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")  # first block; empty stream


def inflate(data: bytes, coding: str, limit: int) -> bytes:
    """Undo one coding completely; Blocked on bad data, junk after the stream, or output above ``limit``.

    gzip members, zstd frames, bzip2 and xz streams may be concatenated, as
    their tools accept; deflate (zlib-wrapped or raw) and brotli are one stream.
    """
    return _codecs.decode(_codec(coding), data, limit)


def inflate_prefix(data: bytes, coding: str, limit: int) -> bytes:
    """What the start of a truncated stream (a preview) decodes to, at most ``limit`` bytes.

    Only for a first look; damage ends the output quietly, and an unknown
    coding gives nothing.
    """
    codec = _codecs.CODECS.get(coding)
    return b"" if codec is None else _codecs.decode_prefix(codec, data, limit)


#: codings :class:`StreamDecoder` undoes as bytes arrive (zstd's streaming API cannot bound its output)
STREAMED_CODINGS: frozenset[str] = frozenset({"gzip", "deflate", "br"})


#: bytes of a gzip member's start looked at before it is decoded: the fixed header and a name
GZIP_HEAD_SEEN = 10 + 256
#: gzip header flags (RFC 1952 §2.3.1)
_FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 0x02, 0x04, 0x08, 0x10


def _plain_gzip_header(data: bytes) -> bool:
    """Whether the gzip header at the start of ``data`` is all there (False: wait for more).

    Raises ValueError for fields a decoder skips but a carving reader reads (a
    stream in FEXTRA, red team F37): an extra field, a comment, a file name
    longer than 256 bytes.
    """
    if len(data) < 10:
        return False
    flags = data[3]
    if flags & (_FEXTRA | _FCOMMENT):
        raise ValueError("gzip header with an extra field or a comment")
    if flags & _FNAME and data.find(b"\0", 10, GZIP_HEAD_SEEN) < 0:
        if len(data) < GZIP_HEAD_SEEN:
            return False
        raise ValueError("gzip header with a long file name")
    return True


class StreamDecoder:
    """Undo one content coding as its bytes arrive, in bounded pieces of output.

    For a reader that must see a coded body's content before the body ends
    (the release of a large response). Every piece of output the given bytes
    allow comes out, so a prefix of the coded body decodes here to exactly what
    any decoder gets from it. Raises ``ValueError`` on data the coding does
    not allow (corrupt, or junk after the last gzip member).
    """

    def __init__(self, coding: str) -> None:
        if coding not in STREAMED_CODINGS:
            raise ValueError(f"{coding} is not decoded as a stream")
        self._coding = coding
        self._zlib = None
        self._brotli = brotli.Decompressor() if coding == "br" else None
        self._head = b""  # bytes held for the next call: deflate's first two, or half a gzip magic
        self.finished = False

    def decode(self, data: bytes, step: int):
        """Yield the output ``data`` adds, in pieces of ``step`` bytes (brotli may pass it a little)."""
        if self._brotli is not None:
            yield from self._decode_brotli(data, step)
        else:
            yield from self._decode_zlib(data, step)

    def _decode_zlib(self, data: bytes, step: int):
        if self._head:
            data, self._head = self._head + data, b""
        if self._zlib is None:
            if self._coding == "deflate" and len(data) < 2:
                self._head = data
                return
            if self._coding == "gzip" and not _plain_gzip_header(data):
                self._head = data  # the header is not all here yet
                return
            wbits = 31 if self._coding == "gzip" else (15 if _codecs.zlib_header(data) else -15)
            self._zlib = zlib.decompressobj(wbits)
        try:
            while data:
                if self.finished:  # another gzip member may follow; anything else is junk
                    if len(data) < 2 and data == b"\x1f"[:len(data)] and self._coding == "gzip":
                        self._head = data  # the next member's magic, cut in two
                        return
                    if self._coding != "gzip" or not data.startswith(b"\x1f\x8b"):
                        raise ValueError(f"bytes after the {self._coding} stream")
                    if not _plain_gzip_header(data):
                        self._head = data  # the next member's header, cut
                        return
                    self._zlib, self.finished = zlib.decompressobj(31), False
                piece = self._zlib.decompress(data, step)
                data = self._zlib.unconsumed_tail
                if self._zlib.eof:  # what follows the stream is all in unused_data
                    self.finished = True
                    data = self._zlib.unused_data
                if piece:
                    yield piece
        except zlib.error as exc:
            raise ValueError(f"{self._coding} data is corrupt") from exc

    def _decode_brotli(self, data: bytes, step: int):
        decoder = self._brotli
        try:
            if self.finished and data:
                raise ValueError("bytes after the br stream")
            piece = decoder.process(data, output_buffer_limit=step)
            while piece:  # output held back at the limit comes with empty input
                yield piece
                piece = decoder.process(b"", output_buffer_limit=step)
            self.finished = decoder.is_finished()
        except brotli.error as exc:
            raise ValueError("br data is corrupt") from exc


def encode(data: bytes, coding: str) -> bytes:
    """Apply ``coding`` to a rewritten body (deterministic: same input, same bytes)."""
    return _codec(coding).encode(data)


def body_compression(data: bytes) -> str | None:
    """The coding of a body that is a compressed file, by its magic number, or None.

    The checks are as strict as the tools' own: bzip2 needs its block magic
    after ``BZh1``-``BZh9``, and a zstd file may start with a skippable frame.
    """
    if data[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if data[:3] == b"BZh" and data[3:4] in b"123456789" and data[4:10] in _BZIP2_BLOCK_MAGICS:
        return "bzip2"
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    skippable_frame = data[:1] and data[0] & 0xF0 == 0x50 and data[1:4] == b"\x2a\x4d\x18"
    if data[:4] == b"\x28\xb5\x2f\xfd" or skippable_frame:
        return "zstd"
    return None


def declared_compression(essence: str) -> str | None:
    """The coding a Content-Type (``type/subtype``, lower-cased) declares for the whole body, or None."""
    return DECLARED_TYPES.get(essence)


def _codec(coding: str) -> _codecs.Codec:
    codec = _codecs.CODECS.get(coding)
    if codec is None:
        raise Blocked(BlockReason.UNSUPPORTED_ENCODING, f"content coding {coding[:40]!r} is not supported")
    return codec


def stream_offsets(data: bytes, anchors: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(offset, coding) of every compressed stream's magic past the first byte of ``data``, in order.

    ``anchors``: ``signatures.anchor_offsets(data)``. A stream behind other
    bytes is no compressed *body* (its tool refuses the junk before it), but
    a receiver that knows where it starts, or searches for the magic as
    carving tools do, decodes it. The header checks are ``body_compression``'s,
    as strict as the tools' own.
    """
    found = []
    for offset, kind in anchors:
        if offset > 0 and kind in _codecs.CODECS and body_compression(data[offset:offset + 10]) == kind:
            found.append((offset, kind))
    return found


def inflate_leading(data: bytes, coding: str, limit: int) -> tuple[bytes, int | None]:
    """What a carving reader decodes from the stream at the start of ``data``, and where it ends.

    Damage, truncation or bytes after the stream end the output quietly (see
    ``_codecs.decode_leading``); None for the end when it is unknown. Blocked
    (limit-exceeded) when the output passes ``limit``.
    """
    return _codecs.decode_leading(_codec(coding), data, limit,
                                  lambda rest: body_compression(rest[:10]) == coding)


#: input a decoder is first given when trying a stream without a magic number: random and
#: ordinary binary bytes fail within it (about 4 microseconds), a real stream decodes it
UNMARKED_TRY_BYTES = 1024
#: an LZMA-alone header's uncompressed size is unknown (all ones) or below this (liblzma's own
#: sanity bound, 256 GiB): random bytes meet that about once in 64 million
_LZMA_ALONE_MAX_SIZE = 1 << 38


#: bytes a length prefix (a binary protocol's framing) may take before a zlib stream: a zlib
#: header is looked for at each of these offsets too (its check bits make 1 in 500 offsets of
#: random bytes a candidate, each tried on UNMARKED_TRY_BYTES)
MAX_LENGTH_PREFIX = 16


def unmarked_streams(data: bytes) -> list[tuple[int, str]]:
    """(offset, coding) of each stream without a magic number (``_codecs.UNMARKED``) whose decoder
    takes ``data`` from that offset: the start, or a zlib header within MAX_LENGTH_PREFIX bytes.

    A zlib, raw deflate or LZMA-alone stream shows no signature a search
    could find, but an API that inflates uploads (``zlib.decompress``, PHP's
    ``gzuncompress``, Node's ``inflateSync``, ``lzma.decompress``) reads a
    body that is one, or one after a length prefix. Each decoder is handed
    UNMARKED_TRY_BYTES; one that does not fail there is worth decoding
    (``inflate_unmarked``).
    """
    candidates = [(0, name) for name in _codecs.UNMARKED]
    candidates += [(offset, "deflate") for offset in range(1, min(MAX_LENGTH_PREFIX, len(data) - 2) + 1)
                   if _codecs.zlib_header(data[offset:offset + 2])]
    found = []
    for offset, name in candidates:
        head = data[offset:offset + UNMARKED_TRY_BYTES]
        if name == "lzma" and not _lzma_alone_header(head):
            continue
        try:
            _codecs.UNMARKED[name].open(head, UNMARKED_TRY_BYTES * 64).read(UNMARKED_TRY_BYTES * 64)
        except _codecs.ERRORS:
            continue
        found.append((offset, name))
    return found


def is_whole_brotli_stream(data: bytes, limit: int) -> bool:
    """Whether ``data`` is one brotli stream from its first byte to its last (or decodes past ``limit``).

    Brotli has no magic number, and its decoder takes the first kilobyte of
    one random body in thirteen (a stored meta-block copies it), so taking
    the start is no test. Ending exactly at the body's end is: the decoder
    runs at C speed with its output dropped (random bytes fail or run out
    within about a millisecond a MiB; none of 200 random MiB bodies ended
    so), and ``brotli -d`` or ``brotli.decompress`` of an undeclared body
    reads only such a body.
    """
    decoder, produced = brotli.Decompressor(), 0
    try:
        chunk = decoder.process(data, output_buffer_limit=_codecs.STEP)
        produced += len(chunk)
        while not decoder.is_finished():
            if not chunk or produced > limit:
                return produced > limit
            chunk = decoder.process(b"", output_buffer_limit=_codecs.STEP)
            produced += len(chunk)
    except brotli.error:
        return False
    return True


def _lzma_alone_header(head: bytes) -> bool:
    """Properties a decoder accepts (lc+lp+pb packed below 225) and a plausible uncompressed size."""
    if len(head) < 13 or head[0] >= 9 * 5 * 5:
        return False
    size = int.from_bytes(head[5:13], "little")
    return size == (1 << 64) - 1 or size < _LZMA_ALONE_MAX_SIZE


def inflate_unmarked(data: bytes, name: str, limit: int) -> bytes:
    """What a receiver decodes from the ``name`` stream (see :func:`unmarked_streams`) at the start of ``data``
    (the caller slices it at the stream's offset).

    To its end or its damage, as ``inflate_leading``; Blocked (limit-exceeded) past ``limit``.
    """
    return _codecs.decode_leading(_codecs.UNMARKED[name], data, limit, lambda rest: False)[0]


def stream_header_fields(data: bytes, coding: str) -> tuple[int, list[bytes]]:
    """(length, free-form payloads) of what a decoder skips at the start of a ``coding`` stream.

    A gzip header's extra field, file name and comment, and the contents of
    zstd skippable frames before the first frame: ``gzip -d`` and ``zstd -d``
    step over them, a carving reader (binwalk) finds the stream hidden there,
    and ``gzip.GzipFile`` hands the name over. (0, []) for other codings or
    a header that does not parse (the decoder refuses it then).
    """
    if coding == "zstd":
        return _skippable_frames(data)
    if coding != "gzip" or len(data) < 10:
        return 0, []
    flags, position, fields = data[3], 10, []
    if flags & _FEXTRA:
        if len(data) < position + 2:
            return 0, []
        length = int.from_bytes(data[position:position + 2], "little")
        fields.append(data[position + 2:position + 2 + length])
        position += 2 + length
    for flag in (_FNAME, _FCOMMENT):
        if flags & flag:
            end = data.find(b"\0", position)
            if end < 0:
                return 0, []
            fields.append(data[position:end])
            position = end + 1
    if flags & _FHCRC:
        position += 2
    return min(position, len(data)), fields


def _skippable_frames(data: bytes) -> tuple[int, list[bytes]]:
    position, fields = 0, []
    while len(data) - position >= 8 and data[position] & 0xF0 == 0x50 and data[position + 1:position + 4] == b"\x2a\x4d\x18":
        length = int.from_bytes(data[position + 4:position + 8], "little")
        fields.append(data[position + 8:position + 8 + length])
        position += 8 + length
    return min(position, len(data)), fields
