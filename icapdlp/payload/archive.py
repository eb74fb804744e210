"""Zip archives of studies: members read within limits, DICOM members rewritten, archive rebuilt.

A zip is hostile input twice over: its central directory can lie about sizes
(bombs, overlapping members) and its names can point outside the extraction
folder (``../``, absolute paths, drive letters). Every limit is checked on the
directory *before* inflating, and inflating is bounded again on the real
bytes, because the directory is only a claim.

Readers also disagree on where a zip is and what it holds (``zipscan``):
zipfile reads the members through the central directory, and the scan
checks that the local headers, read one after another as a streaming reader
does, tell the same story. The bytes before and after the archive and the
entries only a streaming reader sees are handed back to the caller to inspect.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from icapdlp.payload import signatures, zipscan
from icapdlp.payload.zipscan import RATIO_FLOOR_BYTES
from icapdlp.verdict import BlockReason, Blocked

#: general-purpose flag bit 0: the member is encrypted (APPNOTE 4.4.4)
FLAG_ENCRYPTED = 0x1
#: general-purpose flag bit 11: the name is UTF-8 (else code page 437)
FLAG_UTF8 = 0x800
#: compression method 99: WinZip AES encryption
METHOD_AES = 99
#: compression methods zipfile reads and writes; anything else cannot be inspected or rebuilt
SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
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


@dataclass
class ZipArchive:
    """A zip body, split the way its readers split it (see ``zipscan``)."""

    #: members both the central directory and the local headers list, directories included
    members: list[Member]
    comment: bytes
    #: bytes before the archive (a stub, another zip): the caller classifies them
    prefix: bytes
    #: bytes after the end records: the caller classifies them
    trailing: bytes
    #: local entries no central directory lists; streaming readers (Java's ZipInputStream)
    #: return them, so they are inspected, but a rebuilt archive cannot say the same thing
    unlisted: list[Member]
    #: the free-form bytes of the archive's metadata: its comment, each member's comment and
    #: central and local extra fields. zipfile and `unzip -z` hand them over, so the caller
    #: classifies them; a rebuilt archive keeps them, so what holds an object is refused
    metadata: list[bytes] = field(default_factory=list)


def read_archive(data: bytes, limits: ArchiveLimits) -> ZipArchive:
    """Every member with its data (directory entries too: they can hold data), and what surrounds them.

    Raises Blocked: unsafe-archive (bad structure, bombs, path tricks),
    encrypted-archive, limit-exceeded (member count or total size),
    uninspectable (bytes no reader lists, or that two readers read differently).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, struct.error):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "not a readable zip archive") from None
    except NotImplementedError:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "unsupported zip feature") from None
    with archive:
        infos = archive.infolist()
        _check_directory(infos, limits)
        members: list[Member] = []
        total = 0
        for info in infos:
            content = _read_member(archive, info, limits.max_inflated_bytes - total)
            total += len(content)
            members.append(Member(info, content))
        comment = archive.comment
    layout = zipscan.scan(data, limits.max_members, limits.max_inflated_bytes, limits.max_ratio)
    listed_offsets = sorted(entry.offset for entry in layout.entries if entry.listed)
    if listed_offsets != sorted(info.header_offset for info in infos):
        raise Blocked(BlockReason.UNINSPECTABLE, "zip readers disagree on where the members are")
    if len(layout.entries) > limits.max_members:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, f"archive has more than {limits.max_members} members")
    if any(signatures.dicom_marker_offset(region) is not None for region in layout.metadata(data)):
        # comments and extra fields are carried over unread when nothing else changes
        raise Blocked(BlockReason.UNINSPECTABLE, "a DICOM file in zip metadata (a comment or an extra field)")
    if _records_in_metadata(layout.metadata(data)):
        raise Blocked(BlockReason.UNINSPECTABLE, "zip records inside zip metadata (an archive in an extra field)")
    unlisted = []
    for entry in layout.unlisted:
        member = _read_unlisted(data, entry, limits.max_inflated_bytes - total, limits.max_ratio)
        total += len(member.data)
        unlisted.append(member)
    metadata = [comment] + [piece for info in infos for piece in (info.comment, info.extra)]
    metadata += [_local_extra(data, entry) for entry in layout.entries]
    return ZipArchive(members, comment, data[:layout.prefix_end], data[layout.end:], unlisted,
                      [piece for piece in metadata if piece])


def _local_extra(data: bytes, entry: zipscan.Entry) -> bytes:
    """The extra field of an entry's local header (the central directory has its own)."""
    name_length, extra_length = struct.unpack_from("<HH", data, entry.offset + 26)
    start = entry.offset + 30 + name_length
    return data[start:start + extra_length]


def _records_in_metadata(regions: list[bytes]) -> bool:
    """Whether a local header or directory record stands where only one member's header belongs.

    Each region but the last is the bytes before a member's data: its local
    header (and the data descriptor of the member before it); the last holds
    the central directory and end records. An entry and a directory hidden in
    an extra field or a comment are an archive another reader may be pointed
    at (an end record that disagrees, a carving tool): none belongs there.
    """
    *headers, tail = regions
    for region in headers:
        if region.count(zipscan.LOCAL_SIG) > 1 or any(sig in region for sig in _DIRECTORY_SIGS):
            return True
    return zipscan.LOCAL_SIG in tail


#: central directory and end records, which stand only after the members' data
_DIRECTORY_SIGS = (zipscan.CENTRAL_SIG, zipscan.EOCD_SIG, zipscan.ZIP64_EOCD_SIG, zipscan.ZIP64_LOCATOR_SIG)


def _read_unlisted(data: bytes, entry: zipscan.Entry, budget: int, max_ratio: int) -> Member:
    """A local entry only streaming readers see, read as they read it (stored or deflated only)."""
    name = entry.name.decode("utf-8" if entry.flags & FLAG_UTF8 else "cp437")
    check_member_name(name)
    if entry.flags & FLAG_ENCRYPTED or entry.method == METHOD_AES:
        raise Blocked(BlockReason.ENCRYPTED_ARCHIVE, "archive member is encrypted")
    if entry.file_size > budget:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "archive inflates beyond the limit")
    if _ratio_too_high(entry.file_size, entry.compressed_size, max_ratio):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, f"member compression ratio above {max_ratio}")
    raw = data[entry.data_offset:entry.data_offset + entry.compressed_size]
    if entry.method == zipfile.ZIP_STORED:
        content = raw
    elif entry.method == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            content = inflater.decompress(raw, entry.file_size + 1)
        except zlib.error:
            raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive member is corrupt") from None
    else:
        raise Blocked(BlockReason.UNINSPECTABLE, "an unlisted zip entry with a method streaming readers lack")
    if len(content) != entry.file_size or zlib.crc32(content) != entry.crc:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "archive member is corrupt")
    info = zipfile.ZipInfo(name)
    info.compress_type, info.file_size = entry.method, entry.file_size
    info.compress_size = entry.compressed_size
    return Member(info, content)


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
            new = replace(member)  # directory entries too: a name ending in "/" can hold data
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
