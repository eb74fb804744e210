from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from icapdlp.payload.encoding import (
    CODING_TOKENS,
    SUPPORTED_CODINGS,
    body_compression,
    encode,
    inflate,
    inflate_prefix,
)
from icapdlp.payload.media import parse_encodings
from icapdlp.verdict import BlockReason, Blocked

DATA = b"0123456789abcdef" * 4096  # 64 KiB, compresses well


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize("coded, coding", [
    (gzip.compress(DATA), "gzip"),
    (gzip.compress(DATA[:100]) + gzip.compress(DATA[100:]), "gzip"),  # two members
    (zlib.compress(DATA), "deflate"),
    (_raw_deflate(DATA), "deflate"),  # raw deflate some servers send
])
def test_inflate_every_accepted_form(coded, coding):
    assert inflate(coded, coding, len(DATA)) == DATA


def test_limit_at_limit_and_one_past():
    coded = gzip.compress(DATA)
    assert inflate(coded, "gzip", len(DATA)) == DATA
    with pytest.raises(Blocked) as info:
        inflate(coded, "gzip", len(DATA) - 1)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_bomb_stops_near_the_limit():
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KiB
    with pytest.raises(Blocked) as info:
        inflate(bomb, "gzip", 1024 * 1024)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


@pytest.mark.parametrize("bad", [gzip.compress(DATA)[:-12], b"not compressed at all",
                                 gzip.compress(DATA) + b"junk"])
def test_corrupt_or_truncated_is_unsupported_encoding(bad):
    with pytest.raises(Blocked) as info:
        inflate(bad, "gzip", 1 << 24)
    assert info.value.reason is BlockReason.UNSUPPORTED_ENCODING


def test_unknown_coding_is_refused_by_name():
    with pytest.raises(Blocked) as info:
        inflate(b"x", "compress", 100)
    assert info.value.reason is BlockReason.UNSUPPORTED_ENCODING and "compress" in info.value.detail


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_encode_roundtrips_and_is_deterministic(coding):
    assert inflate(encode(DATA, coding), coding, len(DATA)) == DATA
    assert encode(DATA, coding) == encode(DATA, coding)


def test_prefix_inflate_reads_a_truncated_stream():
    coded = gzip.compress(DATA)
    assert DATA.startswith(inflate_prefix(coded[:200], "gzip", 1000))
    assert len(inflate_prefix(coded, "gzip", 1000)) == 1000
    assert inflate_prefix(b"garbage", "gzip", 100) == b""


# -- every coding: br, zstd, bzip2, xz beside gzip and deflate -----------------------------------

ALL = ["gzip", "deflate", "br", "zstd", "bzip2", "xz"]
#: each format written by its own reference library, not by our encoder
REFERENCE = {
    "gzip": lambda d: gzip.compress(d, mtime=0), "deflate": zlib.compress, "br": brotli.compress,
    "zstd": lambda d: zstandard.ZstdCompressor(level=1).compress(d), "bzip2": bz2.compress,
    "xz": lambda d: lzma.compress(d, lzma.FORMAT_XZ),
}
#: the streams a format's tool reads one after the other (brotli and deflate have one)
CONCATENATED = ["gzip", "zstd", "bzip2", "xz"]


@pytest.mark.parametrize("coding", ALL)
def test_every_coding_decodes_its_reference_encoder_and_roundtrips_ours(coding):
    assert inflate(REFERENCE[coding](DATA), coding, len(DATA)) == DATA
    ours = encode(DATA, coding)
    assert inflate(ours, coding, len(DATA)) == DATA and encode(DATA, coding) == ours


@pytest.mark.parametrize("coding", ALL)
def test_every_coding_at_the_limit_and_one_past(coding):
    coded = REFERENCE[coding](DATA)
    assert inflate(coded, coding, len(DATA)) == DATA
    with pytest.raises(Blocked) as info:
        inflate(coded, coding, len(DATA) - 1)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def _zeros_bomb(coding: str, mib: int) -> bytes:
    """``mib`` MiB of zeros, compressed without ever holding them whole."""
    zeros = bytes(1 << 20)
    if coding == "br":
        c = brotli.Compressor(quality=5)
        return b"".join(c.process(zeros) for _ in range(mib)) + c.finish()
    if coding == "zstd":
        c = zstandard.ZstdCompressor(level=1).compressobj()
        return b"".join(c.compress(zeros) for _ in range(mib)) + c.flush()
    c = {"gzip": lambda: zlib.compressobj(9, zlib.DEFLATED, 31), "deflate": lambda: zlib.compressobj(9),
         "bzip2": lambda: bz2.BZ2Compressor(9), "xz": lambda: lzma.LZMACompressor(lzma.FORMAT_XZ)}[coding]()
    return b"".join(c.compress(zeros) for _ in range(mib)) + c.flush()


@pytest.mark.parametrize("coding", ALL)
def test_a_bomb_of_every_coding_is_refused_within_the_memory_bound(coding):
    """64 MiB of zeros in at most a few dozen KB: refused at 1 MiB, never allocating near 64 MiB."""
    from tests.fuzz.harness import run_case

    bomb = _zeros_bomb(coding, 64)
    limit = 1024 * 1024
    bound = 8 * limit + WORKING_MEMORY.get(coding, 0)
    outcome = run_case(lambda: inflate(bomb, coding, limit), (Blocked,), max_peak_bytes=bound)
    assert outcome.kind == "refused", outcome.signature()
    assert outcome.error.reason is BlockReason.LIMIT_EXCEEDED
    assert outcome.peak_bytes < bound


#: decoder memory that does not depend on the output: the 8 MiB dictionary of xz's default preset
WORKING_MEMORY = {"xz": 9 * 1024 * 1024}


def _zstd_streamed(data: bytes, window_log: int) -> bytes:
    """A frame written without its content size, so its header keeps the window it declares."""
    params = zstandard.ZstdCompressionParameters(window_log=window_log)
    writer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return writer.compress(data) + writer.flush()


@pytest.mark.parametrize("coding, coded", [
    ("xz", lzma.compress(b"x" * 100, lzma.FORMAT_XZ,
                         filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 30}])),
    ("zstd", _zstd_streamed(b"y" * 100, 30)),
])
def test_a_tiny_stream_asking_for_a_gigabyte_of_decoder_memory_is_refused(coding, coded):
    from tests.fuzz.harness import run_case

    outcome = run_case(lambda: inflate(coded, coding, 1 << 20), (Blocked,), max_peak_bytes=256 << 20)
    assert outcome.kind == "refused", outcome.signature()
    assert outcome.error.reason is BlockReason.UNSUPPORTED_ENCODING


@pytest.mark.parametrize("coding", ALL)
def test_truncated_corrupt_and_junk_after_the_stream_are_refused(coding):
    coded = REFERENCE[coding](DATA)
    # gunzip ignores zeros after a member
    zero_padding = [] if coding == "gzip" else [coded + b"\x00\x00\x00"]
    for bad in [coded[:len(coded) // 2], coded[:-1], b"\x00not compressed at all" * 3, coded + b"junk",
                coded + REFERENCE["bzip2" if coding == "gzip" else "gzip"](b"other format"), *zero_padding]:
        with pytest.raises(Blocked) as info:
            inflate(bad, coding, 1 << 24)
        assert info.value.reason is BlockReason.UNSUPPORTED_ENCODING, (coding, bad[-8:])


@pytest.mark.parametrize("coding", CONCATENATED)
def test_concatenated_streams_are_all_decoded_as_their_tools_do(coding):
    coded = REFERENCE[coding](DATA[:1000]) + REFERENCE[coding](DATA[1000:])
    assert inflate(coded, coding, len(DATA)) == DATA


@pytest.mark.parametrize("coding", ["deflate", "br"])
def test_single_stream_codings_refuse_a_second_stream(coding):
    coded = REFERENCE[coding](DATA[:1000]) + REFERENCE[coding](DATA[1000:])
    with pytest.raises(Blocked) as info:
        inflate(coded, coding, len(DATA))
    assert info.value.reason is BlockReason.UNSUPPORTED_ENCODING


def test_xz_stream_padding_in_fours_is_accepted_and_other_padding_is_not():
    one = lzma.compress(DATA[:1000], lzma.FORMAT_XZ)
    two = lzma.compress(DATA[1000:], lzma.FORMAT_XZ)
    assert inflate(one + b"\0" * 8 + two + b"\0" * 4, "xz", len(DATA)) == DATA
    with pytest.raises(Blocked):
        inflate(one + b"\0" * 3 + two, "xz", len(DATA))


def test_zstd_skippable_frames_are_read_past():
    skippable = (0x184D2A53).to_bytes(4, "little") + (6).to_bytes(4, "little") + b"opaque"
    coded = skippable + REFERENCE["zstd"](DATA)
    assert inflate(coded, "zstd", len(DATA)) == DATA
    assert body_compression(coded) == "zstd"


@pytest.mark.parametrize("coding", ["gzip", "zstd", "bzip2", "xz"])
def test_a_compressed_body_is_recognised_by_its_magic(coding):
    assert body_compression(REFERENCE[coding](DATA)) == coding
    assert body_compression(encode(b"", coding)) == coding


@pytest.mark.parametrize("data", [b"", b"BZh9 is how this text begins", b"\x1f\x8b", b"\xfd7zXZ", b"plain",
                                  REFERENCE["br"](DATA), REFERENCE["deflate"](DATA)])
def test_no_magic_no_compressed_body(data):
    assert body_compression(data) is None


def test_coding_tokens_are_one_table_media_uses():
    assert parse_encodings(["GZIP", "x-gzip, identity", "BR", " Zstd ", "x-bzip2", "X-XZ", "compress"]) == [
        "gzip", "gzip", "br", "zstd", "bzip2", "xz", "compress"]
    assert {CODING_TOKENS[t] for t in CODING_TOKENS} - {"identity"} == SUPPORTED_CODINGS


@pytest.mark.parametrize("coding", ALL)
def test_prefix_of_every_coding_gives_the_start(coding):
    coded = REFERENCE[coding](os.urandom(50_000) + DATA)
    start = inflate_prefix(coded[:len(coded) // 2], coding, 20_000)
    assert inflate(coded, coding, 1 << 20).startswith(start)
    # bzip2 (900 KB) and zstd (128 KiB) give nothing before a whole block is in: triage then reads the body
    assert len(start) == (0 if coding in ("bzip2", "zstd") else 20_000)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=300), st.sampled_from(ALL))
def test_arbitrary_bytes_decode_or_block_for_every_coding(data, coding):
    try:
        out = inflate(data, coding, 10_000)
    except Blocked as blocked:
        assert blocked.reason in (BlockReason.UNSUPPORTED_ENCODING, BlockReason.LIMIT_EXCEEDED)
    else:
        assert len(out) <= 10_000
    assert len(inflate_prefix(data, coding, 1000)) <= 1000
