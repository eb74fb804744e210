"""Compressed streams and tar archives behind a prefix of any length (issue 12, the README's "Not found").

``gzip -d`` and GNU tar do not skip arbitrary bytes, but a receiver that
knows where the file starts in its own framing (a 37-byte header of an
upload protocol) or searches for the magic (binwalk, foremost, any carving
script) gets the object. Each case below passed the old code unchanged; the
receiver's own reading, done in the test, shows the object is there.
"""

from __future__ import annotations

import io
import random
import subprocess
import tarfile
import zlib

import pytest

from icapdlp.payload.encoding import encode
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import UnchangedRewriter, marker, walk
from tests.support.synthetic import make_ct

DCM = make_ct(61).data
BARE = make_ct(62, bare=True, transfer_syntax="implicit-le").data
CODINGS = ["gzip", "bzip2", "xz", "zstd"]


def junk(length: int, seed: int = 1) -> bytes:
    """Opaque binary bytes with no signature in them (no magic a check could trip on by accident)."""
    rng = random.Random(seed)
    return bytes(rng.choice(b"\x00\x01\x02\x03\x80\x81\xfe\xff\x10\x11") for _ in range(length))


def carved(body: bytes, offset: int, coding: str) -> bytes:
    """What a carving receiver gets: the stream decoded from its magic, whatever follows it."""
    import bz2
    import lzma

    import zstandard

    stream = body[offset:]
    if coding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(stream)
    if coding == "bzip2":
        return bz2.BZ2Decompressor().decompress(stream)
    if coding == "xz":
        return lzma.LZMADecompressor().decompress(stream)
    return zstandard.ZstdDecompressor().decompressobj().decompress(stream)


def refused(content_type: str | None, body: bytes) -> BlockReason:
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    return info.value.reason


# -- compressed streams -------------------------------------------------------------------------

@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("prefix", [junk(1), junk(37), junk(5000, seed=2), b"see attached: \x00\x01"],
                         ids=["1", "37", "5000", "words"])
@pytest.mark.parametrize("data", [DCM, BARE], ids=["part10", "bare"])
def test_a_compressed_stream_behind_other_bytes_holding_dicom_is_refused(coding, prefix, data):
    body = prefix + encode(data, coding)
    assert carved(body, len(prefix), coding) == data  # the receiver gets the object
    assert refused("application/octet-stream", body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("coding", CODINGS)
def test_a_stream_followed_by_other_bytes_behind_a_prefix_is_refused(coding):
    """A carving tool reads a stream to its end: the bytes after it are not its business."""
    body = junk(37) + encode(DCM, coding) + junk(300, seed=3)
    assert carved(body, 37, coding) == DCM
    assert refused(None, body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("coding", ["gzip", "xz"])
def test_a_truncated_stream_behind_a_prefix_is_refused(coding):
    """What a streaming decoder wrote out before the stream broke off is the receiver's too."""
    body = junk(37) + encode(DCM, coding)[:-12]
    assert DCM[:len(DCM) // 2] in carved(body, 37, coding)
    assert refused(None, body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("coding", CODINGS)
def test_a_stream_inside_another_stream_behind_a_prefix_is_refused(coding):
    body = junk(37) + encode(junk(100, seed=4) + encode(DCM, "gzip"), coding)
    assert refused("application/octet-stream", body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("coding", CODINGS)
def test_a_compressed_stream_behind_a_prefix_without_dicom_passes_unchanged(coding):
    body = junk(37) + encode(b"an ordinary log line\n" * 2000 + junk(3000, seed=5), coding) + junk(50, seed=6)
    assert walk("application/octet-stream", body)[0].body is body


def test_a_compressed_stream_behind_the_zip_it_follows_is_refused():
    """Bytes no wrapping claims (the trailing bytes of a zip) are binary like any other."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    body = out.getvalue() + junk(37) + encode(DCM, "xz")
    assert refused("application/zip", body) is BlockReason.UNINSPECTABLE


def test_random_binary_with_a_magic_that_does_not_decode_passes():
    body = junk(400) + b"\x1f\x8b\x08\x00" + junk(400, seed=7) + b"\x28\xb5\x2f\xfd" + junk(99, seed=8)
    assert walk("application/octet-stream", body)[0].body is body


# -- tar behind a prefix of any length ----------------------------------------------------------

def gnu_tar(tmp_path, fmt: str, members: list[tuple[str, bytes]]) -> bytes:
    """A tar written by GNU tar itself (``--format=v7`` has no magic at all)."""
    for name, data in members:
        (tmp_path / name).write_bytes(data)
    subprocess.run(["tar", f"--format={fmt}", "--mtime=@1600000000", "-cf", "out.tar",
                    *[name for name, _ in members]], cwd=tmp_path, check=True)
    return (tmp_path / "out.tar").read_bytes()


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isreg()}


@pytest.mark.parametrize("fmt", ["v7", "ustar", "gnu", "posix"])
@pytest.mark.parametrize("length", [1, 37, 511, 513, 700])
def test_a_tar_behind_a_prefix_of_any_length_is_rewritten(tmp_path, fmt, length):
    archive = gnu_tar(tmp_path, fmt, [("notes.txt", b"a note\n" * 50), ("scan.dcm", DCM)])
    if fmt == "v7":
        assert b"ustar" not in archive
    prefix = junk(length)
    body = prefix + archive
    assert tar_members(body[length:])["scan.dcm"] == DCM  # a receiver that knows where the tar starts
    result, rewriter = walk("application/octet-stream", body)
    assert rewriter.seen == [DCM]
    assert result.body.startswith(prefix)
    assert tar_members(result.body[length:]) == {"notes.txt": b"a note\n" * 50, "scan.dcm": marker(DCM)}


def test_a_v7_tar_behind_a_prefix_in_report_only_mode_is_left_alone(tmp_path):
    body = junk(37) + gnu_tar(tmp_path, "v7", [("scan.dcm", DCM)])
    result, rewriter = walk(None, body, rewriter=UnchangedRewriter())
    assert rewriter.seen == [DCM] and result.body is body


def test_a_tar_behind_a_prefix_whose_member_is_compressed_dicom_is_rewritten(tmp_path):
    """No byte of the member shows DICOM: only reading the tar finds it."""
    member = encode(DCM, "gzip")
    body = junk(99) + gnu_tar(tmp_path, "v7", [("scan.dcm.gz", member)])
    result, rewriter = walk(None, body)
    assert rewriter.seen == [DCM]


def test_a_zstd_file_starting_with_a_skippable_frame_behind_a_prefix_is_refused():
    """The skippable frame is not looked for: the frame after it shows its own magic."""
    skippable = (0x184D2A50).to_bytes(4, "little") + (9).to_bytes(4, "little") + b"metadata!"
    body = junk(37) + skippable + encode(DCM, "zstd")
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body[37:]), read_across_frames=True)
    assert reader.read() == DCM  # (as `zstd -d` reads a file: past the skippable frame)
    assert refused(None, body) is BlockReason.UNINSPECTABLE


# -- streams hidden where decoders skip (red-team F25) ---------------------------------------------

def _gzip_with_extra(extra_payload: bytes, data: bytes) -> bytes:
    """A gzip member whose FEXTRA subfield holds ``extra_payload`` and whose data is ``data``."""
    extra = b"XX" + len(extra_payload).to_bytes(2, "little") + extra_payload
    header = b"\x1f\x8b\x08\x04" + bytes(4) + b"\x00\xff" + len(extra).to_bytes(2, "little") + extra
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (header + deflater.compress(data) + deflater.flush() + zlib.crc32(data).to_bytes(4, "little")
            + len(data).to_bytes(4, "little"))


@pytest.mark.parametrize("prefix", [b"", junk(300)], ids=["body", "behind-a-prefix"])
def test_a_gzip_stream_inside_another_gzip_streams_extra_field_is_refused(prefix):
    """gzip -d gives the outer stream's text; binwalk carves the inner stream from its magic."""
    hidden = encode(DCM, "gzip")
    body = prefix + _gzip_with_extra(hidden, b"harmless text\n" * 10)
    assert zlib.decompress(body[len(prefix):], 31) == b"harmless text\n" * 10
    assert carved(body, body.find(b"\x1f\x8b\x08", len(prefix) + 3), "gzip") == DCM
    assert refused("application/gzip" if not prefix else "application/octet-stream", body) is BlockReason.UNINSPECTABLE


def test_a_zstd_skippable_frame_holding_a_stream_is_refused():
    import zstandard

    hidden = encode(DCM, "gzip")
    body = (0x184D2A50).to_bytes(4, "little") + len(hidden).to_bytes(4, "little") + hidden
    body += zstandard.ZstdCompressor().compress(b"harmless text\n" * 10)
    assert refused("application/zstd", body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_stream_hidden_in_a_content_codings_header_is_refused(coding):
    """Red-team F37: the same shapes as a Content-Encoding; curl -o keeps the coded bytes, a carver
    reads the hidden stream."""
    import zstandard

    hidden = encode(DCM, "gzip")
    if coding == "gzip":
        body = _gzip_with_extra(hidden, b"harmless text\n" * 10)
    else:
        body = (0x184D2A50).to_bytes(4, "little") + len(hidden).to_bytes(4, "little") + hidden
        body += zstandard.ZstdCompressor().compress(b"harmless text\n" * 10)
    with pytest.raises(Blocked) as info:
        walk("text/plain", body, codings=[coding])
    assert info.value.reason is BlockReason.UNINSPECTABLE
