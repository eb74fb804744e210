"""Zip archives of studies: members read within limits, DICOM members rewritten, archive rebuilt.

A zip is hostile input twice over: its central directory can lie about sizes
(bombs, overlapping members) and its names can point outside the extraction
folder (``../``, absolute paths, drive letters). Every limit is checked on the
directory *before* inflating, and inflating is bounded again on the real
bytes, because the directory is only a claim.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from icapdlp.verdict import BlockReason, Blocked

#: general-purpose flag bit 0: the member is encrypted (APPNOTE 4.4.4)
FLAG_ENCRYPTED = 0x1
#: compression method 99: WinZip AES encryption
METHOD_AES = 99
#: compression methods zipfile reads and writes; anything else cannot be inspected or rebuilt
SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
#: members this small cannot be bombs however high their ratio looks
RATIO_FLOOR_BYTES = 64 * 1024
#: read members in slices of this size so a lying header cannot force one huge read
READ_STEP = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int
    max_ratio: int
    max_inflated_bytes: int


@dataclass
class Member:
    info: zipfile.ZipInfo
    data: bytes

    @property
    def name(self) -> str:
        return self.info.filename

    @property
    def is_dicomdir(self) -> bool:
        return posixpath.basename(self.info.filename.rstrip("/")).upper() == "DICOMDIR"


def read_archive(data: bytes, limits: ArchiveLimits) -> tuple[list[Member], bytes]:
    """All members (directories included, data empty) and the archive comment.

    Raises Blocked: unsafe-archive (bad structure, bombs, path tricks),
    encrypted-archive, limit-exceeded (member count or total size).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "not a readable zip archive") from None
    except NotImplementedError:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "unsupported zip feature") from None
    with archive:
        infos = archive.infolist()
        _check_directory(infos, limits)
        members: list[Member] = []
        total = 0
        for info in infos:
            if info.is_dir():
                members.append(Member(info, b""))
                continue
            content = _read_member(archive, info, limits.max_inflated_bytes - total)
            total += len(content)
            members.append(Member(info, content))
        return members, archive.comment


def _check_directory(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(infos) > limits.max_members:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, f"archive has more than {limits.max_members} members")
    claimed = 0
    seen: set[str] = set()
    for info in infos:
        if info.flag_bits & FLAG_ENCRYPTED or info.compress_type == METHOD_AES:
            raise Blocked(BlockReason.ENCRYPTED_ARCHIVE, "archive member is encrypted")
        if info.compress_type not in SUPPORTED_METHODS:  # directories too: they are rewritten as well
            raise Blocked(BlockReason.UNSAFE_ARCHIVE, "unsupported zip compression method")
        check_member_name(info.filename)
        if info.filename in seen:
            raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive has duplicate member names")
        seen.add(info.filename)
        claimed += info.file_size
        if claimed > limits.max_inflated_bytes:
            raise Blocked(BlockReason.LIMIT_EXCEEDED,
                          f"archive inflates beyond {limits.max_inflated_bytes} bytes")
        if _ratio_too_high(info.file_size, info.compress_size, limits.max_ratio):
            raise Blocked(BlockReason.UNSAFE_ARCHIVE, f"member compression ratio above {limits.max_ratio}")


def _ratio_too_high(inflated: int, compressed: int, max_ratio: int) -> bool:
    if inflated <= RATIO_FLOOR_BYTES:
        return False
    return inflated > max_ratio * max(compressed, 1)


def check_member_name(name: str) -> None:
    """Refuse names that would land outside the extraction folder or confuse tools."""
    if not name or "\0" in name or "\\" in name:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive member name is unsafe")
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":"):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive member has an absolute path")
    if ".." in name.split("/"):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive member path climbs out of the archive")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Inflate one member, never more than its declared size (+1 to catch lies) or the budget."""
    ceiling = min(info.file_size, budget)
    out = bytearray()
    try:
        with archive.open(info) as handle:
            while True:
                chunk = handle.read(min(READ_STEP, ceiling + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
                if len(out) > ceiling:
                    if len(out) > info.file_size:
                        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "member inflates beyond its declared size")
                    raise Blocked(BlockReason.LIMIT_EXCEEDED, "archive inflates beyond the limit")
                if _ratio_too_high(len(out), info.compress_size, _READ_RATIO_GUARD):
                    raise Blocked(BlockReason.UNSAFE_ARCHIVE, "member compression ratio too high")
    except Blocked:
        raise
    except RuntimeError:
        raise Blocked(BlockReason.ENCRYPTED_ARCHIVE, "archive member needs a password") from None
    except NotImplementedError:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "unsupported zip compression method") from None
    except Exception:
        # zlib/lzma/bz2 errors and overlapping-member checks all land here: the bytes are not sound
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive member is corrupt") from None
    if len(out) != info.file_size:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "member size differs from the archive directory")
    return bytes(out)


#: the directory check already bounds the ratio; this guard only stops a member whose
#: real bytes inflate absurdly past its compressed size while reading (a lying directory)
_READ_RATIO_GUARD = 10_000


def rebuild_archive(members: list[Member], comment: bytes,
                    replace: Callable[[Member], bytes | None]) -> tuple[bytes, bool]:
    """Write a new archive; ``replace`` returns new bytes, None to drop, or the member's own data.

    Names, timestamps, comments, permissions and compression methods are kept;
    only contents change. Returns (archive bytes, whether anything changed).
    """
    try:
        return _rebuild(members, comment, replace)
    except Blocked:
        raise
    except Exception:  # zipfile refusing a name, time or method it accepted on read
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive cannot be rebuilt") from None


def _rebuild(members: list[Member], comment: bytes,
             replace: Callable[[Member], bytes | None]) -> tuple[bytes, bool]:
    out = io.BytesIO()
    changed = False
    with zipfile.ZipFile(out, "w", allowZip64=True) as writer:
        writer.comment = comment
        for member in members:
            if member.info.is_dir():
                writer.writestr(_copy_info(member.info), b"")
                continue
            new = replace(member)
            if new is None:
                changed = True
                continue
            if new is not member.data:
                changed = True
            writer.writestr(_copy_info(member.info), new, compress_type=member.info.compress_type)
    return out.getvalue(), changed


def _copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type = info.compress_type
    copy.comment = info.comment
    copy.external_attr = info.external_attr
    copy.create_system = info.create_system
    copy.extra = b""  # old extra fields may carry sizes/zip64 data of the old member
    return copy
