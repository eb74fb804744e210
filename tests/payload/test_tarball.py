"""Tar archives: found by structure wherever the DICOM member sits, every byte accounted for, rebuilt."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icapdlp.payload.archive import ArchiveLimits
from icapdlp.payload.tarball import looks_like_tar, read_tar
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import UnchangedRewriter, marker, walk
from tests.payload.test_multipart_one_reading import tiny_bare_dataset
from tests.support.synthetic import make_ct

CT = make_ct(41)
BARE = make_ct(42, bare=True, transfer_syntax="implicit-le")
README = b"This archive holds one study.\n" * 280  # about 8 KB of text
LIMITS = ArchiveLimits(max_members=10, max_ratio=200, max_inflated_bytes=1 << 20)


def make_tar(members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT, *, mode: int = 0o640,
             mtime: int = 1_600_000_000) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isreg()}


def _blocked(content_type: str, body: bytes) -> BlockReason:
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    return info.value.reason


# -- the leaks of issue 12, item 2 ----------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/x-tar", "application/octet-stream", None])
def test_dicom_after_an_8k_readme_is_rewritten(content_type):
    body = make_tar([("study/README.txt", README), ("study/IM1.dcm", CT.data), ("study/IM2", BARE.data)])
    result, rewriter = walk(content_type, body, direction="response")
    assert rewriter.seen == [CT.data, BARE.data]
    members = tar_members(result.body)
    assert members == {"study/README.txt": README, "study/IM1.dcm": marker(CT.data),
                       "study/IM2": marker(BARE.data)}
    assert CT.surviving(result.body) == [] and BARE.surviving(result.body) == []
    assert result.findings.objects_by_wrapping == {"tar": 2} and result.findings.wrapping == "tar"


def test_dicom_after_a_70k_first_member_is_rewritten_and_names_modes_times_are_kept(tmp_path):
    first = os.urandom(70 * 1024)
    body = make_tar([("a/blob.bin", first), ("a/ct.dcm", CT.data)], mode=0o600, mtime=1_234_567_890)
    result, _ = walk("application/octet-stream", body)
    with tarfile.open(fileobj=io.BytesIO(result.body)) as archive:
        infos = archive.getmembers()
    assert [(i.name, i.mode, i.mtime) for i in infos] == [("a/blob.bin", 0o600, 1_234_567_890),
                                                          ("a/ct.dcm", 0o600, 1_234_567_890)]
    # GNU tar, a real receiver, extracts what the gateway wrote
    (tmp_path / "out.tar").write_bytes(result.body)
    subprocess.run(["tar", "-xf", "out.tar"], cwd=tmp_path, check=True)
    assert (tmp_path / "a" / "blob.bin").read_bytes() == first
    assert (tmp_path / "a" / "ct.dcm").read_bytes() == marker(CT.data)


def test_tar_gz_whose_first_member_is_80k_of_random_bytes_is_looked_into():
    """Inflating only the first 64 KiB of a .tar.gz saw random bytes and passed the DICOM behind them."""
    body = gzip.compress(make_tar([("noise.bin", os.urandom(80 * 1024)), ("ct.dcm", CT.data)]))
    result, rewriter = walk("application/gzip", body)
    assert rewriter.seen == [CT.data]
    assert tar_members(gzip.decompress(result.body))["ct.dcm"] == marker(CT.data)
    assert CT.surviving(gzip.decompress(result.body)) == []


# -- structure ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_format_is_recognised_and_long_names_survive(fmt):
    name = "d" * 60 + "/" + "n" * 60 + ".dcm"  # beyond the 100-byte name field
    body = make_tar([("r.txt", b"hi"), (name, CT.data)], fmt)
    assert looks_like_tar(body)
    result, _ = walk(None, body)
    assert tar_members(result.body) == {"r.txt": b"hi", name: marker(CT.data)}


def test_v7_tar_without_magic_is_recognised_by_its_checksum():
    body = bytearray(make_tar([("ct.dcm", CT.data)], tarfile.USTAR_FORMAT))
    body[257:265] = b"\0" * 8  # no "ustar" magic and version: a v7 header
    checksum = sum(body[:148]) + 8 * 0x20 + sum(body[156:512])
    body[148:156] = b"%06o\0 " % checksum
    assert looks_like_tar(bytes(body))
    result, _ = walk(None, bytes(body))
    assert tar_members(result.body) == {"ct.dcm": marker(CT.data)}


@pytest.mark.parametrize("data", [b"", b"x" * 600, b"\0" * 1024, README, CT.data])
def test_other_bytes_are_not_tar(data):
    assert not looks_like_tar(data)


def test_dicomdir_is_removed_and_report_only_leaves_the_body_alone():
    body = make_tar([("s/DICOMDIR", CT.data), ("s/IM1", CT.data)])
    assert tar_members(walk(None, body)[0].body) == {"s/IM1": marker(CT.data)}
    result, _ = walk(None, make_tar([("s/IM1", CT.data)]), rewriter=UnchangedRewriter())
    assert not result.changed


def test_tar_without_dicom_is_the_same_object():
    body = make_tar([("a.txt", b"hello"), ("b.bin", os.urandom(5000))])
    assert walk("application/x-tar", body)[0].body is body


def test_dicom_in_a_pax_comment_record_is_not_carried_past_the_gateway():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        info.pax_headers = {"comment": CT.data.decode("latin-1")}
        archive.addfile(info, io.BytesIO(b"hi"))
    result, rewriter = walk(None, out.getvalue())
    assert rewriter.seen  # the record's value was classified
    assert CT.surviving(result.body) == []


def test_a_pax_global_header_is_accepted_and_its_values_classified():
    """git archive writes one (comment=<commit>); its values apply to every later member."""
    def with_global(comment: str, members: tuple[tuple[str, bytes], ...]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                          pax_headers={"comment": comment}) as archive:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return out.getvalue()

    result, _ = walk(None, with_global("0123abcd", (("a.txt", b"hi"), ("ct.dcm", CT.data))))
    assert tar_members(result.body) == {"a.txt": b"hi", "ct.dcm": marker(CT.data)}
    hidden = CT.data[:128] + b"DICM" + b"planted " + CT.phi_strings[0].encode()  # a Part-10 start
    body = with_global(hidden.decode("latin-1"), (("a.txt", b"hi"),))
    result, rewriter = walk(None, body)
    assert rewriter.seen and CT.phi_strings[0].encode() not in result.body


# -- bytes after the end of the archive ----------------------------------------------------------

def test_dicom_appended_after_the_end_of_archive_is_rewritten():
    body = make_tar([("a.txt", b"hello")]) + CT.data
    result, rewriter = walk(None, body)
    assert rewriter.seen == [CT.data]
    assert result.body.endswith(marker(CT.data)) and CT.surviving(result.body) == []


def test_a_second_tar_appended_is_read_too():
    """GNU tar -i reads concatenated archives (cat a.tar b.tar)."""
    body = make_tar([("a.txt", b"hello")]) + make_tar([("b.dcm", CT.data)])
    result, _ = walk(None, body)
    assert CT.surviving(result.body) == []
    assert tar_members(result.body[len(make_tar([("a.txt", b"hello")])):]) == {"b.dcm": marker(CT.data)}


def test_zero_padding_after_the_end_is_fine_and_other_bytes_are_returned_as_trailing():
    body = make_tar([("a.txt", b"hello")])
    assert read_tar(body + b"\0" * 700, LIMITS).trailing == b""
    assert read_tar(body + b"\0" * 512 + b"junk", LIMITS).trailing == b"junk"


# -- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../evil.dcm", "a/../../evil", "/etc/passwd"])
def test_path_tricks_are_unsafe(name):
    assert _blocked(None, make_tar([(name, b"x")], tarfile.GNU_FORMAT)) is BlockReason.UNSAFE_ARCHIVE


def test_symlink_out_of_the_archive_is_unsafe():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc"
        archive.addfile(info)
    assert _blocked(None, out.getvalue()) is BlockReason.UNSAFE_ARCHIVE


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_devices_are_unsafe(kind):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("dev")
        info.type = kind
        archive.addfile(info)
    assert _blocked(None, out.getvalue()) is BlockReason.UNSAFE_ARCHIVE


def _retyped(data: bytes, kind: bytes) -> bytes:
    """Change the first header's type flag and fix its checksum."""
    body = bytearray(data)
    body[156:157] = kind
    body[148:156] = b" " * 8
    body[148:156] = b"%06o\0 " % sum(body[:512])
    return bytes(body)


def test_directory_that_claims_data_is_uninspectable():
    """tarfile would read the 'data' as the next header; GNU tar skips it: readers disagree."""
    body = _retyped(make_tar([("d", CT.data)]), tarfile.DIRTYPE)
    assert _blocked(None, body) is BlockReason.UNINSPECTABLE


def test_sparse_member_is_uninspectable():
    body = _retyped(make_tar([("s", CT.data)], tarfile.GNU_FORMAT), tarfile.GNUTYPE_SPARSE)
    assert _blocked(None, body) is BlockReason.UNINSPECTABLE


def test_truncated_member_is_unsafe():
    body = make_tar([("a.dcm", CT.data)])
    assert _blocked(None, body[:512 + 100]) is BlockReason.UNSAFE_ARCHIVE


def test_member_count_and_total_size_at_limit_and_one_past():
    ten = make_tar([(f"f{i}", b"x") for i in range(10)])
    assert len(read_tar(ten, LIMITS).members) == 10
    with pytest.raises(Blocked) as info:
        read_tar(make_tar([(f"f{i}", b"x") for i in range(11)]), LIMITS)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED
    size = ArchiveLimits(10, 200, 1000)
    assert read_tar(make_tar([("a", b"x" * 1000)]), size)
    with pytest.raises(Blocked) as info:
        read_tar(make_tar([("a", b"x" * 1001)]), size)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=2047), st.integers(min_value=0, max_value=255))
def test_corrupted_tars_read_or_block(position, value):
    body = bytearray(make_tar([("a.txt", b"text"), ("b.dcm", CT.data[:600])]))
    body[position] = value
    try:
        read_tar(bytes(body), LIMITS)
    except Blocked as blocked:
        assert blocked.reason in (BlockReason.UNSAFE_ARCHIVE, BlockReason.UNINSPECTABLE)


@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_a_tar_behind_whole_blocks_of_other_bytes_is_found_as_gnu_tar_finds_it(tmp_path, blocks):
    """GNU tar skips a prefix block by block ("Skipping to next header") and extracts what follows."""
    member = gzip.compress(CT.data, mtime=0)  # a compressed member: no byte of it shows DICOM
    body = b"junk " * (blocks * 512 // 5) + b"x" * (blocks * 512 % 5) + make_tar([("scan.dcm.gz", member)])
    (tmp_path / "in.tar").write_bytes(body)
    subprocess.run(["tar", "-xf", "in.tar"], cwd=tmp_path, capture_output=True)  # (exits 2: it warned)
    assert gzip.decompress((tmp_path / "scan.dcm.gz").read_bytes()) == CT.data  # the receiver gets it
    result, rewriter = walk("application/octet-stream", body)
    assert rewriter.seen == [CT.data]
    (tmp_path / "scan.dcm.gz").unlink()
    (tmp_path / "out.tar").write_bytes(result.body)
    subprocess.run(["tar", "-xf", "out.tar"], cwd=tmp_path, capture_output=True)
    assert gzip.decompress((tmp_path / "scan.dcm.gz").read_bytes()) == marker(CT.data)


# -- member extents readers disagree on (red-team F13) -----------------------------------------

def _pax_size_tar(pax_size: str, data: bytes) -> bytes:
    """A member whose pax record names one size and whose header field another (the data is the latter)."""
    info = tarfile.TarInfo("a.dcm")
    info.size = len(data)
    info.pax_headers = {"size": pax_size}  # (tarfile keeps a pax record it is given over the field)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_member_whose_pax_size_disagrees_with_its_header_size_is_refused():
    """Python's tarfile and GNU tar read 1 byte; busybox tar ignores pax size and extracts the object."""
    small = tiny_bare_dataset()
    assert len(small) < 512
    body = _pax_size_tar("1", small)
    assert tar_members(body) == {"a.dcm": small[:1]}  # what tarfile sees
    busybox = subprocess.run(["busybox", "tar", "-xOf", "-"], input=body, capture_output=True, check=True)
    assert busybox.stdout == small  # what busybox extracts
    assert _blocked("application/x-tar", body) is BlockReason.UNINSPECTABLE


def test_a_member_whose_pax_size_agrees_with_its_header_passes():
    body = _pax_size_tar(str(len(b"plain text\n")), b"plain text\n")
    assert walk("application/x-tar", body)[0].body is body


def test_dicom_in_the_padding_after_a_member_is_not_passed():
    """Tar writers zero the rest of a member's last block; what else stands there is classified."""
    small = tiny_bare_dataset()
    body = bytearray(make_tar([("note.txt", b"x")]))
    start = 1024 if body[156:157] == b"x" else 512  # (after the pax header, if one was written)
    body[start + 1:start + 1 + len(small)] = small
    body = bytes(body)
    assert tar_members(body) == {"note.txt": b"x"}
    result, rewriter = walk("application/x-tar", body)
    assert rewriter.seen  # the object in the padding was found ...
    assert small not in result.body and tar_members(result.body) == {"note.txt": b"x"}  # ... and not rebuilt
