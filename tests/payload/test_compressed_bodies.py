"""Compressed bodies and content codings (issue 12 item 4 and the tar.gz case of item 2).

Every case here leaked on the old code: a bz2, xz or zstd file was opaque
bytes, ``Content-Encoding: br`` or ``zstd`` was refused only on a DICOM
candidate type (and passed on image/jpeg), and a gzip file was judged on its
first 64 KiB.
"""

from __future__ import annotations

import io
import lzma
import os
import tarfile
import zlib

import pytest

from icapdlp.payload.encoding import encode, inflate
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import passes_unopened
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import marker, walk
from tests.support.synthetic import make_ct

DCM = make_ct(31).data
BARE = make_ct(32, bare=True, transfer_syntax="implicit-le").data


def make_tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("coding", ["gzip", "bzip2", "xz", "zstd"])
@pytest.mark.parametrize("content_type", ["application/octet-stream", None, "text/plain"])
@pytest.mark.parametrize("data", [DCM, BARE], ids=["part10", "bare"])
def test_a_compressed_file_holding_dicom_is_rewritten_and_recompressed(coding, content_type, data):
    body = encode(data, coding)
    result, rewriter = walk(content_type, body)
    assert rewriter.seen == [data]
    assert result.changed and inflate(result.body, coding, 1 << 20) == marker(data)
    assert result.findings.objects_by_wrapping == {"compressed>raw": 1}


@pytest.mark.parametrize("coding", ["gzip", "bzip2", "xz", "zstd"])
def test_a_compressed_tar_with_dicom_after_80_kb_of_noise_is_not_passed(coding):
    """The tar.gz leak: its first member is 80 KB of random bytes, so a 64 KiB look saw no DICOM."""
    tar = make_tar([("noise.bin", os.urandom(80_000)), ("scan/IM0001.dcm", DCM)])
    body = encode(tar, coding)
    result, rewriter = walk("application/octet-stream", body)  # decoded whole, the tar read member by member
    assert rewriter.seen == [DCM] and result.changed


@pytest.mark.parametrize("coding", ["gzip", "bzip2", "xz", "zstd"])
def test_a_compressed_file_without_dicom_is_unchanged(coding):
    body = encode(os.urandom(100_000) + b"plain text " * 100, coding)
    assert walk("application/octet-stream", body)[0].body is body


@pytest.mark.parametrize("content_type, coding", [
    ("application/gzip", "gzip"), ("application/x-bzip2", "bzip2"), ("application/x-xz", "xz"),
    ("application/zstd", "zstd"),
])
def test_a_body_declared_compressed_that_does_not_decode_is_refused(content_type, coding):
    body = b"\x00\x01 not what the type says " * 10
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    assert info.value.reason is BlockReason.UNSUPPORTED_ENCODING


@pytest.mark.parametrize("coding", ["br", "zstd", "bzip2", "xz", "gzip", "deflate"])
@pytest.mark.parametrize("content_type", ["image/jpeg", "text/html", "application/dicom", None])
def test_every_content_coding_is_undone_whatever_the_declared_type(coding, content_type):
    """A download labelled image/jpeg under br came through Squid and curl --compressed got the DICOM."""
    body = encode(DCM, coding)
    result, rewriter = walk(content_type, body, codings=[coding])
    assert rewriter.seen == [DCM]
    assert inflate(result.body, coding, 1 << 20) == marker(DCM)


def test_stacked_codings_are_undone_last_first_and_redone_in_order():
    body = encode(encode(DCM, "zstd"), "br")
    result, rewriter = walk("image/jpeg", body, codings=["zstd", "br"])
    assert rewriter.seen == [DCM]
    assert inflate(inflate(result.body, "br", 1 << 20), "zstd", 1 << 20) == marker(DCM)


def test_a_content_coded_compressed_file_is_undone_twice():
    body = encode(encode(DCM, "xz"), "gzip")
    result, rewriter = walk("application/octet-stream", body, codings=["gzip"])
    assert rewriter.seen == [DCM]
    assert inflate(inflate(result.body, "gzip", 1 << 20), "xz", 1 << 20) == marker(DCM)


@pytest.mark.parametrize("coding", ["br", "zstd", "bzip2", "xz"])
def test_a_content_coding_bomb_is_refused_at_the_limit(coding):
    body = encode(bytes(8 * 1024 * 1024), coding)
    with pytest.raises(Blocked) as info:
        walk("text/plain", body, codings=[coding], max_inflated=1024 * 1024)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


# -- streams without a magic number: zlib, raw deflate, LZMA alone (red-team F6) ----------------

def _zlib(data: bytes) -> bytes:
    return zlib.compress(data)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _lzma_alone(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_ALONE)


UNMARKED = {"zlib": (_zlib, zlib.decompress), "raw-deflate": (_raw_deflate, lambda b: zlib.decompress(b, -15)),
            "lzma-alone": (_lzma_alone, lzma.decompress)}


@pytest.mark.parametrize("name", list(UNMARKED))
@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/zlib", None])
@pytest.mark.parametrize("data", [DCM, BARE], ids=["part10", "bare"])
def test_a_body_that_is_a_stream_without_magic_holding_dicom_is_refused(name, content_type, data):
    """An API that inflates uploads (zlib.decompress, PHP gzuncompress, lzma.decompress) reads it."""
    compress, receiver = UNMARKED[name]
    body = compress(data)
    assert receiver(body) == data
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    assert info.value.reason is BlockReason.UNINSPECTABLE
    assert not passes_unopened(content_type, [], body, PayloadOptions())


@pytest.mark.parametrize("name", list(UNMARKED))
def test_a_stream_without_magic_followed_by_other_bytes_is_read_to_its_end(name):
    compress, _ = UNMARKED[name]
    with pytest.raises(Blocked):
        walk("application/octet-stream", compress(BARE) + os.urandom(300))


@pytest.mark.parametrize("name", list(UNMARKED))
def test_a_stream_without_magic_holding_no_dicom_passes(name):
    compress, _ = UNMARKED[name]
    body = compress(b"an ordinary compressed record, repeated " * 500)
    assert walk("application/octet-stream", body)[0].body is body
    assert passes_unopened("application/octet-stream", [], body, PayloadOptions())


def test_random_binary_bodies_still_pass_from_the_probe():
    """Random bytes (a compressed image's entropy data) fail a decoder within a few bytes; one in a few
    hundred gets further and decodes a little garbage, which the probe classifies itself."""
    import random

    rng = random.Random(13)
    assert all(passes_unopened("application/octet-stream", [], rng.randbytes(8192), PayloadOptions())
               for _ in range(1000))


@pytest.mark.parametrize("prefix", [(len(BARE)).to_bytes(4, "big"), b"\x01" + (len(DCM)).to_bytes(8, "little")],
                         ids=["4-byte-length", "type-and-8-byte-length"])
def test_a_zlib_stream_behind_a_length_prefix_holding_dicom_is_refused(prefix):
    """Red-team F30: length-prefixed binary protocols; the receiver inflates body[len(prefix):]."""
    body = prefix + zlib.compress(DCM)
    assert zlib.decompress(body[len(prefix):]) == DCM
    with pytest.raises(Blocked) as info:
        walk("application/octet-stream", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


# -- a brotli file sent without Content-Encoding (red team a05, a31) ------------------------------

def test_an_undeclared_brotli_body_holding_dicom_is_refused():
    import brotli

    from tests.payload.helpers import walk
    from tests.support.synthetic import make_ct

    data = make_ct(80, rows=4, columns=4).data
    body = brotli.compress(data)
    assert brotli.decompress(body) == data  # what `brotli -d` or brotli.decompress gives the receiver
    with pytest.raises(Blocked) as info:
        walk("application/octet-stream", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_random_bodies_a_brotli_decoder_takes_at_first_still_pass_the_probe():
    """One random body in about twenty decodes for a while as stored meta-blocks: none ends as one stream."""
    import random

    from icapdlp.payload.options import PayloadOptions
    from icapdlp.payload.walker import passes_unopened

    rng = random.Random(15)
    bodies = [rng.randbytes(64 * 1024) for _ in range(60)]
    assert all(passes_unopened("application/octet-stream", [], body, PayloadOptions()) for body in bodies)


def test_an_undeclared_brotli_body_without_dicom_passes():
    import brotli

    from tests.payload.helpers import walk

    body = brotli.compress(b"plain log line, nothing to see\n" * 2000)
    assert walk("application/octet-stream", body)[0].body is body
