"""One bounded decoder and one encoder per compression format (package-private: use ``encoding``).

Each decoder reads a stream in slices and never holds much more output than
the caller's limit: a decompression bomb (kilobytes that expand to gigabytes)
is refused at the limit instead of being grown into memory. The rules about
what may follow a stream (another member, padding, nothing) are per format
and match what the format's own command-line tool accepts, because that is
what a receiver will do with the bytes we pass on.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from dataclasses import dataclass
from typing import Callable, Protocol

import brotli
import zstandard

from icapdlp.verdict import BlockReason, Blocked

#: bytes of output asked from a decoder per step; bounds the overshoot past the limit
STEP = 256 * 1024
#: compressed bytes handed to zlib per call (see _ZlibStream)
INPUT_PIECE = 64 * 1024
#: zstd's worst expansion: a 4-byte RLE block yields a 128 KiB block (RFC 8878 §3.1.1.2)
ZSTD_MAX_RATIO = 32 * 1024
#: input fed to the zstd decoder per call (its API has no output cap): the low end keeps the
#: overshoot near the limit to about 2 MiB, the high end keeps ordinary bodies fast
ZSTD_PIECE_MIN, ZSTD_PIECE_MAX = 64, 1024 * 1024
#: working memory a decoder may ask for (the xz dictionary, the zstd window), whatever the
#: output limit: xz -9 needs 65 MiB and zstd's own tool stops at 128 MiB without --long, so a
#: stream asking more is refused instead of letting a 100-byte upload allocate a gigabyte
DECODER_MEMORY_BYTES = 128 * 1024 * 1024
#: reads in a row that give nothing before a stream that claims it has input is called stuck
MAX_IDLE_READS = 4

#: re-encoding levels: speed over size (the body is on its way through a proxy)
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
ZSTD_LEVEL = 3
BZIP2_LEVEL = 9  # bzip2's speed hardly depends on the level; 9 is what bzip2(1) writes
XZ_PRESET = 1

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS

ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError, brotli.error, zstandard.ZstdError, ValueError)


class _Stream(Protocol):
    """One compressed stream (a gzip member, a zstd frame, an xz stream...) being decoded."""

    def read(self, size: int) -> bytes:
        """About ``size`` bytes of output (zstd may give more, see ZSTD_MAX_RATIO)."""

    @property
    def finished(self) -> bool:
        """The stream's end marker has been read."""

    @property
    def starved(self) -> bool:
        """No more output can come: every input byte is consumed and the end was not reached."""

    @property
    def rest(self) -> bytes:
        """Input after the stream's end (valid once ``finished``)."""


class _ZlibStream:
    """Input is given in pieces: zlib copies what it did not consume (``unconsumed_tail``) on every
    call, so handing it the whole body made inflating quadratic in the body's size."""

    def __init__(self, data: bytes, wbits: int) -> None:
        self._decoder = zlib.decompressobj(wbits)
        self._data = memoryview(data)
        self._pos = 0
        self._tail: bytes | memoryview = b""

    def read(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size and not self._decoder.eof:
            if not self._tail:
                if self._pos >= len(self._data):
                    break
                self._tail = self._data[self._pos:self._pos + INPUT_PIECE]
                self._pos += INPUT_PIECE
            out += self._decoder.decompress(self._tail, size - len(out))
            self._tail = self._decoder.unconsumed_tail
        return bytes(out)

    finished = property(lambda self: self._decoder.eof)
    starved = property(lambda self: not self._tail and self._pos >= len(self._data))

    @property
    def rest(self) -> bytes:
        return self._decoder.unused_data + bytes(self._data[self._pos:])


class _BufferingStream:
    """bz2 and lzma decompressors: given all input once, then asked for output in slices."""

    def __init__(self, decoder, data: bytes) -> None:
        self._decoder = decoder
        self._pending = data

    def read(self, size: int) -> bytes:
        chunk = self._decoder.decompress(self._pending, size)
        self._pending = b""
        return chunk

    finished = property(lambda self: self._decoder.eof)
    starved = property(lambda self: self._decoder.needs_input)
    rest = property(lambda self: self._decoder.unused_data)


class _BrotliStream:
    """Brotli has no member framing: bytes after the end make the decoder fail, as they should."""

    def __init__(self, data: bytes) -> None:
        self._decoder = brotli.Decompressor()
        self._pending = data
        self._dry = False

    def read(self, size: int) -> bytes:
        chunk = self._decoder.process(self._pending, output_buffer_limit=size)
        self._pending = b""
        self._dry = not chunk
        return chunk

    finished = property(lambda self: self._decoder.is_finished())
    starved = property(lambda self: self._dry)
    rest = property(lambda self: b"")


class _ZstdStream:
    """One zstd frame. Input is fed in pieces sized so one piece cannot expand past the budget."""

    def __init__(self, data: bytes, budget: int) -> None:
        self._decoder = zstandard.ZstdDecompressor(max_window_size=DECODER_MEMORY_BYTES).decompressobj()
        self._data = memoryview(data)
        self._pos = 0
        self._budget = budget
        self._produced = 0

    def read(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size and self._pos < len(self._data) and not self._decoder.eof:
            room = max(self._budget - self._produced - len(out), 0) // ZSTD_MAX_RATIO
            piece = min(max(room, ZSTD_PIECE_MIN), ZSTD_PIECE_MAX)
            out += self._decoder.decompress(self._data[self._pos:self._pos + piece])
            self._pos += piece
        self._produced += len(out)
        return bytes(out)

    finished = property(lambda self: self._decoder.eof)
    starved = property(lambda self: self._pos >= len(self._data))

    @property
    def rest(self) -> bytes:
        return self._decoder.unused_data + bytes(self._data[self._pos:])


@dataclass(frozen=True)
class Codec:
    """How one format is decoded, what may follow a stream, and how it is written back."""

    name: str
    open: Callable[[bytes, int], _Stream]  # (input, output budget) -> stream
    encode: Callable[[bytes], bytes]
    #: another stream of the same format may follow (gzip members, zstd frames, bz2/xz streams)
    concatenated: bool
    #: strip what the format's tool ignores after a stream; None if what is left is not allowed
    after_stream: Callable[[bytes], bytes | None] = lambda rest: rest


def _gzip_after(rest: bytes) -> bytes | None:
    # zero padding after the last member is seen from some servers, and gunzip ignores it
    return b"" if rest.strip(b"\0") == b"" else rest


def _xz_after(rest: bytes) -> bytes | None:
    # xz Stream Padding: null bytes in multiples of four between or after streams (xz spec §2.2)
    zeros = len(rest) - len(rest.lstrip(b"\0"))
    return rest[zeros:] if zeros % 4 == 0 else None


def zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _gzip_encode(data: bytes) -> bytes:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)  # mtime 0: deterministic
    return compressor.compress(data) + compressor.flush()


CODECS: dict[str, Codec] = {codec.name: codec for codec in (
    Codec("gzip", lambda data, _: _ZlibStream(data, _GZIP_WBITS), _gzip_encode, True, _gzip_after),
    # HTTP "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2), but some servers send raw deflate
    Codec("deflate", lambda data, _: _ZlibStream(data, _ZLIB_WBITS if zlib_header(data) else _RAW_WBITS),
          lambda data: zlib.compress(data, GZIP_LEVEL), False),
    Codec("br", lambda data, _: _BrotliStream(data),
          lambda data: brotli.compress(data, quality=BROTLI_QUALITY), False),
    Codec("zstd", _ZstdStream, lambda data: zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data), True),
    Codec("bzip2", lambda data, _: _BufferingStream(bz2.BZ2Decompressor(), data),
          lambda data: bz2.compress(data, BZIP2_LEVEL), True),
    Codec("xz", lambda data, _: _BufferingStream(
              lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=DECODER_MEMORY_BYTES), data),
          lambda data: lzma.compress(data, lzma.FORMAT_XZ, preset=XZ_PRESET), True, _xz_after),
)}


#: streams without a magic number that a receiver may be handed as a whole body and decode
#: (``zlib.decompress`` with either window form, ``lzma.decompress`` of an .lzma file): found
#: only by decoding, so tried on binary content (``encoding.unmarked_streams``). Not brotli:
#: its decoder takes the first kilobyte of one random body in thirteen (a stored meta-block
#: copies it), which would send that many bodies to a worker and stop released downloads; a
#: body that is one brotli stream end to end is found by ``encoding.is_whole_brotli_stream``
UNMARKED: dict[str, Codec] = {codec.name: codec for codec in (
    CODECS["deflate"],
    Codec("lzma", lambda data, _: _BufferingStream(
              lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=DECODER_MEMORY_BYTES), data),
          lambda data: lzma.compress(data, lzma.FORMAT_ALONE, preset=XZ_PRESET), False),
)}


def _drain(codec: Codec, stream: _Stream, out: bytearray, limit: int) -> bool:
    """Read ``stream`` into ``out`` until it finishes (True) or stops giving output (False).

    Blocked when ``out`` grows past ``limit``.
    """
    idle = 0
    while not stream.finished:
        chunk = stream.read(STEP)
        out += chunk
        if len(out) > limit:
            raise Blocked(BlockReason.LIMIT_EXCEEDED, f"decoded {codec.name} data exceeds {limit} bytes")
        idle = 0 if chunk else idle + 1
        if not stream.finished and idle and (stream.starved or idle > MAX_IDLE_READS):
            return False
    return True


def decode(codec: Codec, data: bytes, limit: int) -> bytes:
    """Every stream in ``data``; Blocked if corrupt, truncated, followed by junk, or above ``limit``."""
    out = bytearray()
    remaining = data
    try:
        while True:
            stream = codec.open(remaining, limit - len(out))
            if not _drain(codec, stream, out, limit):
                raise Blocked(BlockReason.UNSUPPORTED_ENCODING, f"{codec.name} body is truncated")
            rest = codec.after_stream(stream.rest)
            if rest is None or (rest and not codec.concatenated):
                raise Blocked(BlockReason.UNSUPPORTED_ENCODING, f"bytes after the {codec.name} stream")
            if not rest:
                return bytes(out)
            remaining = rest
    except ERRORS:
        raise Blocked(BlockReason.UNSUPPORTED_ENCODING,
                      f"{codec.name} body is corrupt or needs more decoder memory than allowed") from None


def decode_prefix(codec: Codec, data: bytes, limit: int) -> bytes:
    """As much as a truncated first stream gives, at most ``limit`` bytes; damage ends it quietly."""
    out = bytearray()
    try:
        stream = codec.open(data, limit)
        while not stream.finished and len(out) < limit:
            chunk = stream.read(min(STEP, limit - len(out)))
            if not chunk and stream.starved:
                break
            out += chunk
    except ERRORS:
        pass
    return bytes(out[:limit])


def decode_leading(codec: Codec, data: bytes, limit: int,
                   another_stream: Callable[[bytes], bool]) -> tuple[bytes, int | None]:
    """What a carving reader gets from the stream(s) at the start of ``data``, and where they end.

    Unlike :func:`decode`, what follows is not judged: streams are read one
    after another while ``another_stream`` says the rest starts with one (a
    format that may be concatenated), and damage, truncation or other
    bytes simply end the output (what was decoded by then is what a carving
    tool writes out). The end is None when the output ended in damage or
    truncation (where the stream ends is then unknown). Blocked above ``limit``.
    """
    out = bytearray()
    remaining = data
    while True:
        try:
            stream = codec.open(remaining, limit - len(out))
            if not _drain(codec, stream, out, limit):
                return bytes(out), None
            rest = stream.rest
        except ERRORS:
            return bytes(out), None
        if not (codec.concatenated and another_stream(rest)):
            return bytes(out), len(data) - len(rest)
        remaining = rest
