"""Compressed bodies and content codings (issue 12 item 4 and the tar.gz case of item 2).

Every case here leaked on the old code: a bz2, xz or zstd file was opaque
bytes, ``Content-Encoding: br`` or ``zstd`` was refused only on a DICOM
candidate type (and passed on image/jpeg), and a gzip file was judged on its
first 64 KiB.
"""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from icapdlp.payload.encoding import encode, inflate
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
