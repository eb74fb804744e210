from __future__ import annotations

import io
import struct
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icapdlp.payload.archive import ArchiveLimits, read_archive, rebuild_archive
from icapdlp.verdict import BlockReason, Blocked

LIMITS = ArchiveLimits(max_members=10, max_ratio=200, max_inflated_bytes=10 * 1024 * 1024)


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, comment: bytes = b"") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        archive.comment = comment
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6))
            archive.writestr(info, data, compress_type=method)
    return out.getvalue()


def _blocked(data: bytes, limits: ArchiveLimits = LIMITS) -> BlockReason:
    with pytest.raises(Blocked) as info:
        read_archive(data, limits)
    return info.value.reason


def test_read_and_rebuild_keeps_names_times_comment_and_other_members():
    data = make_zip({"a/readme.txt": b"hello", "a/img.dcm": b"old", "a/DICOMDIR": b"dir"}, comment=b"cmt")
    parsed = read_archive(data, LIMITS)
    members, comment = parsed.members, parsed.comment
    assert [m.name for m in members] == ["a/readme.txt", "a/img.dcm", "a/DICOMDIR"]
    assert [m.is_dicomdir for m in members] == [False, False, True]

    def replace(member):
        return {"a/img.dcm": b"new", "a/DICOMDIR": None}.get(member.name, member.data)

    rebuilt, changed = rebuild_archive(members, comment, replace)
    assert changed
    with zipfile.ZipFile(io.BytesIO(rebuilt)) as archive:
        assert archive.namelist() == ["a/readme.txt", "a/img.dcm"]
        assert archive.read("a/readme.txt") == b"hello" and archive.read("a/img.dcm") == b"new"
        assert archive.getinfo("a/readme.txt").date_time == (2020, 1, 2, 3, 4, 6)
        assert archive.comment == b"cmt"


def test_member_count_at_limit_and_one_past():
    ten = make_zip({f"f{i}": b"x" for i in range(10)})
    assert len(read_archive(ten, LIMITS).members) == 10
    assert _blocked(make_zip({f"f{i}": b"x" for i in range(11)})) is BlockReason.LIMIT_EXCEEDED


def test_total_inflated_size_at_limit_and_one_past():
    payload = bytes(range(256)) * 400  # 102400 bytes, incompressible enough to stay under the ratio
    limits = ArchiveLimits(10, 200, 2 * len(payload))
    assert len(read_archive(make_zip({"a": payload, "b": payload}), limits).members) == 2
    assert _blocked(make_zip({"a": payload, "b": payload + b"!"}), limits) is BlockReason.LIMIT_EXCEEDED


def test_ratio_bomb_is_unsafe():
    assert _blocked(make_zip({"zeros": b"\0" * (5 * 1024 * 1024)})) is BlockReason.UNSAFE_ARCHIVE


@pytest.mark.parametrize("name", ["../evil.dcm", "a/../../evil", "/etc/passwd", "C:/win.ini", "a\\b"])
def test_path_tricks_are_unsafe(name):
    placeholder = "p" * len(name)  # zipfile would normalise the bad name: patch the bytes instead
    data = make_zip({placeholder: b"data"}).replace(placeholder.encode(), name.encode())
    assert _blocked(data) is BlockReason.UNSAFE_ARCHIVE


def _set_flag(data: bytes, flag: int) -> bytes:
    """Set general-purpose flag bits in every local and central header."""
    raw = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            (old,) = struct.unpack_from("<H", raw, start + offset)
            struct.pack_into("<H", raw, start + offset, old | flag)
            start += 4
    return bytes(raw)


def test_encrypted_member_is_refused():
    assert _blocked(_set_flag(make_zip({"secret.dcm": b"abc"}), 0x1)) is BlockReason.ENCRYPTED_ARCHIVE


def test_directory_that_lies_about_the_size_is_unsafe():
    data = bytearray(make_zip({"a": b"A" * 1000}, method=zipfile.ZIP_STORED))
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)  # claim 10 bytes uncompressed
    assert _blocked(bytes(data)) is BlockReason.UNSAFE_ARCHIVE


def test_duplicate_names_are_unsafe():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("same", b"1")
        with pytest.warns(UserWarning):
            archive.writestr("same", b"2")
    assert _blocked(out.getvalue()) is BlockReason.UNSAFE_ARCHIVE


def test_garbage_is_unsafe():
    assert _blocked(b"PK\x03\x04 not really a zip") is BlockReason.UNSAFE_ARCHIVE


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_read_or_block(data):
    try:
        read_archive(data, LIMITS)
    except Blocked as blocked:
        assert blocked.reason in BlockReason


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=255))
def test_corrupted_real_archives_read_or_block(position, value):
    data = bytearray(make_zip({"a.dcm": b"DICM" * 50, "b.txt": b"text"}))
    data[position % len(data)] = value
    try:
        read_archive(bytes(data), LIMITS)
    except Blocked as blocked:
        # a flipped byte can also make the local headers and the central directory disagree
        assert blocked.reason in (BlockReason.UNSAFE_ARCHIVE, BlockReason.ENCRYPTED_ARCHIVE,
                                  BlockReason.LIMIT_EXCEEDED, BlockReason.UNINSPECTABLE)


def test_compression_ratio_at_limit_and_one_past():
    from icapdlp.payload.archive import RATIO_FLOOR_BYTES

    member = b"\0" * (RATIO_FLOOR_BYTES * 4)
    data = make_zip({"m": member})
    compressed = zipfile.ZipFile(io.BytesIO(data)).getinfo("m").compress_size
    ratio_at_limit = len(member) // compressed  # this archive's ratio, rounded down
    assert read_archive(data, ArchiveLimits(10, ratio_at_limit + 1, 1 << 30))
    with pytest.raises(Blocked) as info:
        read_archive(data, ArchiveLimits(10, ratio_at_limit, 1 << 30))
    assert info.value.reason is BlockReason.UNSAFE_ARCHIVE


def test_small_members_are_never_ratio_bombs():
    from icapdlp.payload.archive import RATIO_FLOOR_BYTES

    assert read_archive(make_zip({"m": b"\0" * RATIO_FLOOR_BYTES}), ArchiveLimits(10, 2, 1 << 30))


def test_unknown_compression_method_even_on_a_directory_entry_is_unsafe():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.dcm", b"x" * 100)
        archive.writestr("dir/", b"")
    data = bytearray(out.getvalue())
    central = data.rfind(b"PK\x01\x02")  # the directory entry's central record
    struct.pack_into("<H", data, central + 10, 264)  # a compression method zipfile cannot handle
    assert _blocked(bytes(data)) is BlockReason.UNSAFE_ARCHIVE
