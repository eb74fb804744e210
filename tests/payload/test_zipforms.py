"""Zip in every form receivers read (issue 12, item 3): blocked, or no planted value reaches any reader.

Each archive is read back the ways real receivers read it: Info-ZIP
``unzip`` and Python's zipfile (from the end, through the central directory)
and a ZipInputStream mimic (local headers from byte 0).
"""

from __future__ import annotations

import io
import struct
import subprocess
import zipfile
import zlib

import pytest

from icapdlp.payload import zipscan
from icapdlp.verdict import BlockReason, Blocked
from tests.payload import zipcraft
from tests.payload.helpers import marker, walk
from tests.support.synthetic import make_ct

CT = make_ct(51)
OTHER = make_ct(52)
STUB_64 = bytes(range(64))
STUB_5K = b"#!/bin/sh\nexec unzip \"$0\"\n" + b"# self-extracting stub padding\n" * 170


def every_reader(data: bytes, tmp_path) -> dict[str, dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        by_zipfile = {name: archive.read(name) for name in archive.namelist()}
    return {"zipfile": by_zipfile, "stream": zipcraft.stream_read(data),
            "unzip": zipcraft.unzip_extract(data, tmp_path)}


def planted_in(readers: dict[str, dict[str, bytes]]) -> list[str]:
    found = []
    for reader, members in readers.items():
        for name, content in members.items():
            survivors = CT.surviving(content) + OTHER.surviving(content)
            found += [f"{reader}:{name}:{value}" for value in survivors]
    return found


def _blocked(content_type: str | None, body: bytes) -> Blocked:
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    return info.value


# -- (a) a zip behind a prefix ---------------------------------------------------------------------

@pytest.mark.parametrize("prefix", [STUB_64, STUB_5K], ids=["64B", "5KB"])
@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/zip"])
def test_zip_behind_a_prefix_is_found_and_rewritten(prefix, content_type, tmp_path):
    body = prefix + zipcraft.make_zip({"study/ct.dcm": CT.data, "readme.txt": b"hello"})
    before = zipcraft.unzip_extract(body, tmp_path / "before")
    assert before["study/ct.dcm"] == CT.data  # unzip does extract it: this is a real path
    result, rewriter = walk(content_type, body)
    assert rewriter.seen == [CT.data]
    assert result.body.startswith(prefix)  # the prefix was classified (not DICOM) and kept
    readers = every_reader(result.body, tmp_path)
    assert readers["unzip"] == readers["zipfile"] == {"study/ct.dcm": marker(CT.data), "readme.txt": b"hello"}
    assert planted_in(readers) == []


def test_self_extractor_whose_offsets_count_from_the_stub_is_rewritten(tmp_path):
    """zip -A rewrites the offsets to count from byte 0 of the stub, not of the archive."""
    ct, readme = zipcraft.pieces(zipcraft.make_zip({"ct.dcm": CT.data, "readme.txt": b"hello"}))
    body = STUB_5K + zipcraft.assemble([(ct, True), (readme, True)], base=len(STUB_5K))
    assert zipcraft.unzip_extract(body, tmp_path / "before")["ct.dcm"] == CT.data
    result, _ = walk("application/octet-stream", body)
    readers = every_reader(result.body, tmp_path)
    assert readers["unzip"]["ct.dcm"] == marker(CT.data) and planted_in(readers) == []


def test_a_dicom_file_in_front_of_a_zip_is_rewritten_too():
    """A polyglot: a DICOM reader reads the front, unzip the back."""
    body = OTHER.data + zipcraft.make_zip({"ct.dcm": CT.data})
    result, rewriter = walk("application/octet-stream", body)
    assert rewriter.seen == [OTHER.data, CT.data]
    assert result.body.startswith(marker(OTHER.data))
    with zipfile.ZipFile(io.BytesIO(result.body)) as archive:
        assert archive.read("ct.dcm") == marker(CT.data)


# -- (b) two zips end to end -----------------------------------------------------------------------

def test_two_concatenated_zips_are_both_inspected(tmp_path):
    """unzip and zipfile read the second zip; ZipInputStream reads the first from byte 0."""
    first = zipcraft.make_zip({"ct.dcm": CT.data})
    body = first + zipcraft.make_zip({"readme.txt": b"hello"})
    assert zipcraft.stream_read(body) == {"ct.dcm": CT.data}
    result, rewriter = walk("application/zip", body)
    assert rewriter.seen == [CT.data]
    readers = every_reader(result.body, tmp_path)
    assert readers["stream"] == {"ct.dcm": marker(CT.data)}
    assert readers["unzip"] == readers["zipfile"] == {"readme.txt": b"hello"}
    assert planted_in(readers) == []


# -- (c) a local entry the central directory does not list ---------------------------------------

@pytest.mark.parametrize("hidden_first", [False, True], ids=["after", "before"])
def test_a_dicom_entry_missing_from_the_central_directory_is_uninspectable(hidden_first):
    readme, hidden = zipcraft.pieces(zipcraft.make_zip({"readme.txt": b"hello", "ct.dcm": CT.data}))
    layout = [(hidden, False), (readme, True)] if hidden_first else [(readme, True), (hidden, False)]
    body = zipcraft.assemble(layout)
    assert zipcraft.stream_read(body)["ct.dcm"] == CT.data  # Java's ZipInputStream returns it
    assert zipfile.ZipFile(io.BytesIO(body)).namelist() == ["readme.txt"]
    blocked = _blocked("application/zip", body)
    assert blocked.reason is BlockReason.UNINSPECTABLE and "does not list" in blocked.detail


def test_an_unlisted_entry_that_holds_no_dicom_is_inspected_and_passes():
    readme, note = zipcraft.pieces(zipcraft.make_zip({"readme.txt": b"hello", "note.txt": b"nothing here"}))
    body = zipcraft.assemble([(readme, True), (note, False)])
    result, _ = walk("application/zip", body)
    assert result.body is body


def test_an_unlisted_bomb_is_unsafe():
    readme, bomb = zipcraft.pieces(zipcraft.make_zip({"readme.txt": b"hello", "zeros": bytes(8 << 20)}))
    assert _blocked("application/zip", zipcraft.assemble([(readme, True), (bomb, False)])).reason \
        is BlockReason.UNSAFE_ARCHIVE


def test_an_unlisted_entry_next_to_a_dicom_member_blocks_the_rebuild():
    """Rewriting the listed DICOM would drop (or newly list) the unlisted entry: no faithful rebuild."""
    ct, note = zipcraft.pieces(zipcraft.make_zip({"ct.dcm": CT.data, "note.txt": b"nothing here"}))
    assert _blocked("application/zip", zipcraft.assemble([(ct, True), (note, False)])).reason \
        is BlockReason.UNINSPECTABLE


def test_local_entries_in_a_prefix_that_is_no_zip_are_uninspectable():
    """A streaming reader that looks for the first local header (not at byte 0) would find the hidden one."""
    hidden = zipcraft.pieces(zipcraft.make_zip({"ct.dcm": CT.data}))[0]
    body = b"junk" + hidden.local + zipcraft.make_zip({"readme.txt": b"hello"})
    blocked = _blocked("application/octet-stream", body)
    assert blocked.reason is BlockReason.UNINSPECTABLE and "before the archive" in blocked.detail


def test_an_apk_signing_block_before_the_directory_is_not_a_gap():
    ct, readme = zipcraft.pieces(zipcraft.make_zip({"ct.dcm": CT.data, "readme.txt": b"hello"}))
    pairs = struct.pack("<QI", 4 + 20, 0x7109871A) + b"s" * 20
    size = len(pairs) + 8 + 16
    block = struct.pack("<Q", size) + pairs + struct.pack("<Q", size) + b"APK Sig Block 42"
    body = zipcraft.assemble([(ct, True), (readme, True)], before_directory=block)
    assert zipfile.ZipFile(io.BytesIO(body)).read("ct.dcm") == CT.data
    result, _ = walk("application/vnd.android.package-archive", body)
    assert zipfile.ZipFile(io.BytesIO(result.body)).read("ct.dcm") == marker(CT.data)
    broken = zipcraft.assemble([(ct, True), (readme, True)], before_directory=block[:-1] + b"!")
    assert _blocked("application/zip", broken).reason is BlockReason.UNINSPECTABLE


def test_bytes_between_entries_are_uninspectable():
    one, two = zipcraft.pieces(zipcraft.make_zip({"a.txt": b"a", "b.txt": b"b"}))
    body = zipcraft.assemble([(one, True), (two, True)], between=b"\x00hidden bytes")
    assert _blocked("application/zip", body).reason is BlockReason.UNINSPECTABLE


# -- (d) a directory entry that holds data ---------------------------------------------------------

def test_a_directory_entry_holding_dicom_is_rewritten(tmp_path):
    body = zipcraft.make_zip({"dir/": CT.data, "readme.txt": b"hello"})
    assert zipfile.ZipFile(io.BytesIO(body)).read("dir/") == CT.data
    result, rewriter = walk("application/zip", body)
    assert rewriter.seen == [CT.data]
    with zipfile.ZipFile(io.BytesIO(result.body)) as archive:
        assert archive.read("dir/") == marker(CT.data)
    assert zipcraft.stream_read(result.body)["dir/"] == marker(CT.data)
    assert zipcraft.unzip_test(result.body, tmp_path) == 0
    assert CT.surviving(result.body) == []


# -- (e) zip64, and data descriptors ---------------------------------------------------------------

@pytest.mark.parametrize("eocd_fields", ["ffff", "real"])
@pytest.mark.parametrize("prefix", [b"", STUB_64], ids=["plain", "prefixed"])
def test_zip64_end_records_are_read(prefix, eocd_fields, tmp_path):
    """zipfile and unzip believe a zip64 locator whether or not the EOCD's own fields say 0xFFFF."""
    ct, readme = zipcraft.pieces(zipcraft.make_zip({"ct.dcm": CT.data, "readme.txt": b"hello"}))
    body = bytearray(prefix + zipcraft.assemble([(ct, True), (readme, True)], zip64_end=True))
    if eocd_fields == "real":
        cd_size = len(ct.central) + len(readme.central)
        struct.pack_into("<HHII", body, len(body) - 14, 2, 2, cd_size, len(ct.local) + len(readme.local))
    body = bytes(body)
    assert zipcraft.unzip_extract(body, tmp_path / "before")["ct.dcm"] == CT.data
    result, _ = walk("application/octet-stream", body)
    readers = every_reader(result.body, tmp_path)
    assert readers["unzip"]["ct.dcm"] == marker(CT.data) and planted_in(readers) == []


@pytest.mark.parametrize("zip64", [False, True])
@pytest.mark.parametrize("prefix", [b"", STUB_5K], ids=["plain", "prefixed"])
def test_streamed_zip_with_data_descriptors(zip64, prefix, tmp_path):
    body = prefix + zipcraft.streamed_zip({"readme.txt": b"hello", "ct.dcm": CT.data}, zip64=zip64)
    if not prefix:
        assert zipcraft.stream_read(body)["ct.dcm"] == CT.data  # the mimic reads descriptors right
    result, rewriter = walk("application/octet-stream", body)
    assert rewriter.seen == [CT.data]
    readers = every_reader(result.body, tmp_path)
    assert readers["zipfile"]["ct.dcm"] == marker(CT.data) and planted_in(readers) == []
    assert zipcraft.unzip_test(result.body, tmp_path) in ((0,) if not prefix else (0, 1))


def test_stored_members_with_descriptors_are_read_from_the_directory_sizes():
    """Python's zipfile writes these when streaming; ZipInputStream refuses them, unzip reads them."""
    body = zipcraft.streamed_zip({"readme.txt": b"hello", "ct.dcm": CT.data}, method=zipfile.ZIP_STORED)
    result, rewriter = walk("application/zip", body)
    assert rewriter.seen == [CT.data]
    assert zipfile.ZipFile(io.BytesIO(result.body)).read("ct.dcm") == marker(CT.data)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_a_descriptor_member_whose_directory_size_differs_is_uninspectable(method):
    """ZipInputStream ends the member where the deflate stream ends; unzip where the directory says."""
    body = bytearray(zipcraft.streamed_zip({"readme.txt": b"hello" * 50, "ct.dcm": CT.data}, method=method))
    central = body.find(b"PK\x01\x02")
    compressed = int.from_bytes(body[central + 20:central + 24], "little")
    body[central + 20:central + 24] = (compressed + 16).to_bytes(4, "little")
    with pytest.raises(Blocked) as info:
        walk("application/zip", bytes(body))
    assert info.value.reason in (BlockReason.UNINSPECTABLE, BlockReason.UNSAFE_ARCHIVE)


@pytest.mark.parametrize("where", ["archive comment", "member comment", "extra field"])
def test_a_dicom_file_in_zip_metadata_is_uninspectable(where):
    small = make_ct(53, rows=2, columns=2, signatures=False).data[:60000]
    assert _blocked("application/zip", _zip_with_metadata(where, small)).reason is BlockReason.UNINSPECTABLE


def _zip_with_metadata(where: str, value: bytes) -> bytes:
    """A one-member zip carrying ``value`` in its member comment, an extra field or the archive comment."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("readme.txt", date_time=zipcraft.DATE)
        if where == "member comment":
            info.comment = value
        if where == "extra field":
            info.extra = struct.pack("<HH", 0xCAFE, len(value)) + value
        archive.writestr(info, b"hello")
        if where == "archive comment":
            archive.comment = value
    return out.getvalue()


# -- nesting ---------------------------------------------------------------------------------------

def test_a_zip_inside_a_tar_and_a_tar_inside_a_zip():
    """A tar ending in a zip member must be read as a tar, not as a zip behind a prefix."""
    from tests.payload.test_tarball import make_tar, tar_members

    inner = zipcraft.make_zip({"ct.dcm": CT.data})
    result, _ = walk(None, make_tar([("readme.txt", b"hello"), ("study.zip", inner)]))
    assert result.findings.wrapping == "tar"
    rebuilt_inner = tar_members(result.body)["study.zip"]
    assert zipfile.ZipFile(io.BytesIO(rebuilt_inner)).read("ct.dcm") == marker(CT.data)
    outer = zipcraft.make_zip({"study.tar": make_tar([("ct.dcm", CT.data)])})
    result, _ = walk(None, outer)
    inner_tar = zipfile.ZipFile(io.BytesIO(result.body)).read("study.tar")
    assert tar_members(inner_tar) == {"ct.dcm": marker(CT.data)}


# -- recognition -------------------------------------------------------------------------------------

def test_holds_zip_needs_a_central_directory_and_members():
    assert zipscan.holds_zip(b"junk" + zipcraft.make_zip({"a": b"b"}))
    empty = zipcraft.make_zip({})
    assert not zipscan.holds_zip(b"junk" + empty)
    assert not zipscan.holds_zip(b"x" * 100 + b"PK\x05\x06" + b"\0" * 18)
    assert not zipscan.holds_zip(CT.data)


def test_trailing_bytes_after_the_archive_are_classified():
    body = zipcraft.make_zip({"readme.txt": b"hello"}) + CT.data
    result, rewriter = walk("application/zip", body)
    assert rewriter.seen == [CT.data] and result.body.endswith(marker(CT.data))
    with zipfile.ZipFile(io.BytesIO(result.body)) as archive:
        assert archive.read("readme.txt") == b"hello"


# -- end records that disagree (red-team F14) -------------------------------------------------------

def _hidden_directory_zip(data: bytes) -> bytes:
    """readme.txt, listed by a central directory the zip64 end record names; inside readme's extra field a
    deflated entry and a directory listing it, which the 32-bit end record (not saturated) names."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflater.compress(data) + deflater.flush()
    hidden_at = 30 + len(b"readme.txt") + 4
    hidden = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, zlib.crc32(data), len(packed), len(data),
                         5, 0) + b"x.dcm" + packed

    def central(name: bytes, crc: int, compressed: int, size: int, method: int, offset: int) -> bytes:
        return struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, compressed, size,
                           len(name), 0, 0, 0, 0, 0, offset) + name

    hidden_directory = central(b"x.dcm", zlib.crc32(data), len(packed), len(data), 8, hidden_at)
    extra = struct.pack("<HH", 0xCAFE, len(hidden) + len(hidden_directory)) + hidden + hidden_directory
    readme = b"just a readme\n"
    body = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(readme), len(readme), len(readme),
                       len(b"readme.txt"), len(extra)) + b"readme.txt" + extra + readme
    directory_at = len(body)
    directory = central(b"readme.txt", zlib.crc32(readme), len(readme), len(readme), 0, 0)
    body += directory
    record_at = len(body)
    body += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(directory), directory_at)
    body += struct.pack("<4sIQI", b"PK\x06\x07", 0, record_at, 1)
    return body + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(hidden_directory),
                              hidden_at + len(hidden), 0)


def test_end_records_naming_different_central_directories_are_uninspectable(tmp_path):
    """zipfile believes the zip64 record (readme.txt); unzip reads the 32-bit fields and extracts x.dcm."""
    body = _hidden_directory_zip(CT.data)
    assert zipfile.ZipFile(io.BytesIO(body)).namelist() == ["readme.txt"]
    (tmp_path / "in.zip").write_bytes(body)
    subprocess.run([zipcraft.UNZIP, "-o", "-qq", "in.zip", "-d", "out"], cwd=tmp_path, capture_output=True)
    assert (tmp_path / "out" / "x.dcm").read_bytes() == CT.data  # (unzip warns, compensates, extracts)
    assert _blocked("application/zip", body).reason is BlockReason.UNINSPECTABLE


def test_a_local_entry_inside_an_extra_field_is_uninspectable():
    """Whatever end record names it, an entry hidden in metadata is an archive another reader finds."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflater.compress(CT.data) + deflater.flush()
    hidden = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, zlib.crc32(CT.data), len(packed),
                         len(CT.data), 5, 0) + b"x.dcm" + packed
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("readme.txt", date_time=zipcraft.DATE)
        info.extra = struct.pack("<HH", 0xCAFE, len(hidden)) + hidden
        archive.writestr(info, b"hello")
    assert _blocked("application/zip", out.getvalue()).reason is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("encoding", ["base64", "gzip"])
@pytest.mark.parametrize("where", ["archive comment", "member comment", "extra field"])
def test_an_encoded_dicom_file_in_zip_metadata_is_uninspectable(where, encoding):
    """Red-team F17: zipfile's ZipFile.comment / ZipInfo.comment / ZipInfo.extra hand these over; only a
    literal DICM was looked for there."""
    import base64
    import gzip

    small = make_ct(54, rows=2, columns=2, signatures=False).data
    payload = base64.b64encode(small) if encoding == "base64" else gzip.compress(small)
    assert _blocked("application/zip", _zip_with_metadata(where, payload)).reason is BlockReason.UNINSPECTABLE


def test_ordinary_zip_metadata_passes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("readme.txt", date_time=zipcraft.DATE)
        info.comment = b"generated by the nightly build"
        info.extra = struct.pack("<HHBI", 0x5455, 5, 1, 1_600_000_000)  # an extended timestamp
        archive.writestr(info, b"hello")
        archive.comment = b"release 1.2"
    body = out.getvalue()
    assert walk("application/zip", body)[0].body is body


# -- zip signatures that stand by chance --------------------------------------------------------------


@pytest.mark.parametrize("signature", [b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06"])
def test_a_zip_signature_standing_by_chance_in_random_bytes_does_not_block_the_body(signature):
    """Four signature bytes stand about once per GiB of random or compressed data: an 80 MiB
    upload of random bytes was refused as a broken archive (`unsafe-archive`) one time in 13."""
    import random

    rng = random.Random(5)
    for _ in range(20):
        body = bytearray(rng.randbytes(300_000))
        at = rng.randrange(1000, 290_000)
        body[at:at + 4] = signature
        out, _ = walk("application/octet-stream", bytes(body))
        assert out.body == bytes(body)


def test_a_real_zip_behind_random_bytes_is_still_opened():
    import random

    member = make_ct(57, rows=2, columns=2, signatures=False)
    prefix = random.Random(6).randbytes(5000)
    inner = zipcraft.make_zip({"ct.dcm": member.data}) + random.Random(7).randbytes(200)
    body = prefix + inner
    try:
        out, _ = walk("application/octet-stream", body)
    except Blocked as blocked:
        assert blocked.reason in (BlockReason.UNSAFE_ARCHIVE, BlockReason.UNINSPECTABLE)
    else:
        assert out.body != body and member.surviving(out.body) == []  # opened and rewritten
