"""StreamDecoder: a coded body undone as it arrives gives exactly what decoding it whole gives."""

from __future__ import annotations

import gzip
import random
import zlib

import brotli
import pytest

from icapdlp.payload.encoding import STREAMED_CODINGS, StreamDecoder


def _coded(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.compress(data[:len(data) // 2], mtime=0) + gzip.compress(data[len(data) // 2:], mtime=0)
    if coding == "deflate":
        return zlib.compress(data)
    return brotli.compress(data, quality=5)


def _decode_in(coding: str, coded: bytes, pieces: list[int]) -> tuple[bytes, int, bool]:
    decoder = StreamDecoder(coding)
    out, largest, at, index = bytearray(), 0, 0, 0
    while at < len(coded):
        size = pieces[index % len(pieces)]
        for piece in decoder.decode(coded[at:at + size], 65_536):
            largest = max(largest, len(piece))
            out += piece
        at, index = at + size, index + 1
    return bytes(out), largest, decoder.finished


@pytest.mark.parametrize("coding", sorted(STREAMED_CODINGS))
@pytest.mark.parametrize("pieces", [[1], [7, 1, 4096], [65_536], [10_000_000]], ids=["1", "mixed", "64k", "whole"])
def test_pieces_of_any_size_decode_to_the_whole(coding, pieces):
    rng = random.Random(len(pieces))
    data = rng.randbytes(50_000) * 4 + b"text " * 200_000
    coded = _coded(coding, data)
    decoded, largest, finished = _decode_in(coding, coded, pieces)
    assert decoded == data and finished
    if coding != "br":  # zlib gives at most the step; brotli may overshoot its buffer limit a little
        assert largest <= 65_536


def test_raw_deflate_without_the_zlib_wrapper_is_read_too():
    data = b"raw deflate, as some servers send it " * 5000
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    coded = compressor.compress(data) + compressor.flush()
    assert _decode_in("deflate", coded, [999])[0] == data


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_junk_after_the_stream_is_an_error(coding):
    coded = _coded(coding, b"payload " * 10_000) + b"JUNK after the end"
    with pytest.raises(ValueError):
        _decode_in(coding, coded, [4096])


def test_a_prefix_decodes_to_a_prefix():
    data = random.Random(3).randbytes(300_000)
    coded = gzip.compress(data, mtime=0)
    decoded, _, finished = _decode_in("gzip", coded[:len(coded) // 2], [4096])
    assert data.startswith(decoded) and 0 < len(decoded) < len(data) and not finished


def test_zstd_is_not_streamed():
    with pytest.raises(ValueError):
        StreamDecoder("zstd")
