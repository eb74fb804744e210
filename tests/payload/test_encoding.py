from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icapdlp.payload.encoding import encode, inflate, inflate_prefix
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
        inflate(b"x", "br", 100)
    assert info.value.reason is BlockReason.UNSUPPORTED_ENCODING and "br" in info.value.detail


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_encode_roundtrips_and_is_deterministic(coding):
    assert inflate(encode(DATA, coding), coding, len(DATA)) == DATA
    assert encode(DATA, coding) == encode(DATA, coding)


def test_prefix_inflate_reads_a_truncated_stream():
    coded = gzip.compress(DATA)
    assert DATA.startswith(inflate_prefix(coded[:200], "gzip", 1000))
    assert len(inflate_prefix(coded, "gzip", 1000)) == 1000
    assert inflate_prefix(b"garbage", "gzip", 100) == b""


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["gzip", "deflate"]))
def test_arbitrary_bytes_inflate_or_block(data, coding):
    try:
        out = inflate(data, coding, 10_000)
    except Blocked as blocked:
        assert blocked.reason in (BlockReason.UNSUPPORTED_ENCODING, BlockReason.LIMIT_EXCEEDED)
    else:
        assert len(out) <= 10_000
