"""Tar archives of studies: recognised by structure, every byte accounted for, rebuilt when changed.

A tar has no magic at offset 0 and no directory: it is a run of 512-byte
header blocks, each followed by its member's data, ended by zero blocks. A
DICOM file can sit anywhere in it (after a large README, after a 70 KB first
member), so a look at the first bytes proves nothing; the whole archive is
read, member by member, and every byte must belong to a header, a member's
data, the end-of-archive zeros, or trailing bytes that the caller classifies
(GNU tar ``-i`` reads a second archive appended to the first).

Python's tarfile is the parser (it is what Python receivers use, and it reads
pax and GNU long names, pax size overrides and base-256 numbers as GNU tar
does); this module adds what a gateway needs on top: limits, name checks, a
refusal of members whose data layout differs between readers (sparse files,
devices, non-file members that claim data), and the check that tarfile's
members tile the bytes with no gap.
"""

from __future__ import annotations

import io
import posixpath
import struct
import tarfile
from dataclasses import dataclass

from icapdlp.payload.archive import ArchiveLimits, check_member_name
from icapdlp.verdict import BlockReason, Blocked

BLOCK = tarfile.BLOCKSIZE
#: where ustar ("ustar\0") and GNU ("ustar  \0") headers carry their magic
MAGIC_OFFSET = 257
#: the header's checksum field: 8 bytes of octal, summed as if they were spaces
CHECKSUM_FIELD = slice(148, 156)
#: member types whose bytes every reader lays out the same way
REGULAR_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE})
DATALESS_TYPES = frozenset({tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE})
DEVICE_TYPES = frozenset({tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE})
#: pax records whose meaning the rebuilt archive keeps (tarfile regenerates them as needed);
#: the values of any other record (comments, xattrs) are returned for classification
KEPT_PAX_KEYS = frozenset({"path", "linkpath", "size", "mtime", "atime", "ctime", "uid", "gid", "uname",
                           "gname", "charset", "hdrcharset"})


@dataclass
class TarMember:
    info: tarfile.TarInfo
    #: the member's content (regular files only; empty otherwise)
    data: bytes
    #: values of pax records the rebuild drops and non-zero bytes in the padding of the member's last
    #: block: classified, because an extractor may store them (the rebuild writes neither)
    extras: bytes = b""

    @property
    def is_dicomdir(self) -> bool:
        return posixpath.basename(self.info.name.rstrip("/")).upper() == "DICOMDIR"


@dataclass
class TarArchive:
    members: list[TarMember]
    #: bytes after the end-of-archive zeros that are not zero (another archive, or anything)
    trailing: bytes


def looks_like_tar(data: bytes) -> bool:
    """Whether ``data`` starts with a tar header whose checksum is right.

    The checksum covers all 512 header bytes, so random or text bytes pass it
    by chance with negligible probability; it recognises ustar, GNU and v7
    (no magic) archives alike, as tar itself does.
    """
    if len(data) < BLOCK:
        return False
    header = bytes(data[:BLOCK])
    if header.count(0) == BLOCK:
        return False
    field = header[CHECKSUM_FIELD].replace(b"\0", b" ").strip()
    if not field or not all(48 <= c <= 55 for c in field):
        return False
    stored = int(field, 8)
    unsigned = sum(header) - sum(header[CHECKSUM_FIELD]) + 8 * 0x20
    signed = sum(struct.unpack("148b", header[:148])) + sum(struct.unpack("356b", header[156:])) + 8 * 0x20
    return stored in (unsigned, signed)


def aligned_tar_offset(data: bytes) -> int | None:
    """Offset (a multiple of 512 past 0) of a tar header that GNU tar finds behind other bytes, or None.

    GNU tar, meeting a block that is no header, says "Skipping to next header"
    and tries every following 512-byte block: a tar behind a prefix of whole
    blocks is extracted, compressed members and all. Looked for by the ustar
    magic (C-speed ``find``), then the checksum; a v7 header (no magic) behind
    a prefix is not found.
    """
    found = data.find(b"ustar", BLOCK + MAGIC_OFFSET)
    while found >= 0:
        start = found - MAGIC_OFFSET
        if start % BLOCK == 0 and looks_like_tar(data[start:start + BLOCK]):
            return start
        found = data.find(b"ustar", found + 1)
    return None


def tar_offset(data: bytes, anchors: list[tuple[int, str]]) -> int | None:
    """Offset (past 0) of the first tar header behind other bytes, whatever the prefix's length, or None.

    GNU tar finds one behind whole 512-byte blocks of other bytes; a receiver
    that knows where the archive starts in its own framing, or a carving
    tool, finds it behind any prefix. ``anchors``: ``signatures.anchor_offsets``
    of ``data``, where a ustar or GNU header shows its magic and a v7 header
    (no magic) the end of its checksum field as tar writers end it. Either
    way the header's checksum decides.
    """
    starts = sorted(start for start, kind in anchors if kind in ("tar", "ustar") and start > 0)
    return next((start for start in starts if looks_like_tar(data[start:start + BLOCK])), None)


def read_tar(data: bytes, limits: ArchiveLimits) -> TarArchive:
    """Every member (regular files with their data), and the non-zero trailing bytes.

    Raises Blocked: unsafe-archive (bad structure, path tricks, devices),
    uninspectable (sparse members, data whose extent readers disagree on),
    limit-exceeded (member count or total size).
    """
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except (tarfile.TarError, ValueError, EOFError, OSError):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "not a readable tar archive") from None
    members: list[TarMember] = []
    position = 0  # the first byte no member has claimed yet
    total = 0
    with archive:
        while True:
            try:
                info = archive.next()
            except (tarfile.TarError, ValueError, EOFError, OSError, UnicodeError):
                raise Blocked(BlockReason.UNSAFE_ARCHIVE, "tar header is corrupt") from None
            if info is None:
                break
            if len(members) >= limits.max_members:
                raise Blocked(BlockReason.LIMIT_EXCEEDED,
                              f"archive has more than {limits.max_members} members")
            if info.offset != position:
                _check_global_headers(data, position, info.offset)
            member = _member(data, info)
            total += len(member.data)
            if total > limits.max_inflated_bytes:
                raise Blocked(BlockReason.LIMIT_EXCEEDED,
                              f"archive holds more than {limits.max_inflated_bytes} bytes")
            members.append(member)
            position = info.offset_data + (_padded(info.size) if info.type in REGULAR_TYPES else 0)
    return TarArchive(members, _trailing(data, position))


def _member(data: bytes, info: tarfile.TarInfo) -> TarMember:
    if info.issparse() or any(key.startswith("GNU.sparse") for key in info.pax_headers):
        raise Blocked(BlockReason.UNINSPECTABLE, "sparse tar member: readers lay its data out differently")
    if info.type in DEVICE_TYPES:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "tar member is a device or a fifo")
    if info.type not in REGULAR_TYPES | DATALESS_TYPES:
        raise Blocked(BlockReason.UNINSPECTABLE, "tar member of a type whose data readers treat differently")
    check_member_name(info.name)
    if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        check_member_name(info.linkname)
    # global pax records are in every later member's pax_headers too, so they are classified here
    extras = b"".join(value.encode("utf-8", "surrogateescape")
                      for key, value in info.pax_headers.items() if key not in KEPT_PAX_KEYS)
    if info.type not in REGULAR_TYPES:
        if info.size:
            raise Blocked(BlockReason.UNINSPECTABLE, "a tar directory or link member claims data")
        return TarMember(info, b"", extras)
    if "size" in info.pax_headers and _header_size(data, info) != info.size:
        # busybox tar ignores the pax record and reads the header's size: the member's extent differs
        raise Blocked(BlockReason.UNINSPECTABLE, "a tar member's pax size and header size disagree")
    content = data[info.offset_data:info.offset_data + info.size]
    if len(content) != info.size:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "tar member is truncated")
    padding = data[info.offset_data + info.size:info.offset_data + _padded(info.size)]
    if padding.count(0) != len(padding):
        extras += padding  # (tar writers zero it; whatever stands there is classified, and the rebuild zeroes it)
    return TarMember(info, content, extras)


def _header_size(data: bytes, info: tarfile.TarInfo) -> int | None:
    """The size field of the header block just before a member's data (what a reader without pax reads)."""
    field = data[info.offset_data - BLOCK + 124:info.offset_data - BLOCK + 136]
    try:
        return tarfile.nti(field)
    except (tarfile.TarError, ValueError):
        return None


def _check_global_headers(data: bytes, start: int, end: int) -> None:
    """Bytes tarfile skipped before a member: allowed only as pax global headers (git archive writes one)."""
    while start < end:
        header = data[start:start + BLOCK]
        if len(header) < BLOCK or header[156:157] != tarfile.XGLTYPE:
            raise Blocked(BlockReason.UNINSPECTABLE, "bytes between tar members that no member claims")
        try:
            size = tarfile.nti(header[124:136])
        except (tarfile.TarError, ValueError):
            raise Blocked(BlockReason.UNSAFE_ARCHIVE, "tar header is corrupt") from None
        start += BLOCK + _padded(size)
    if start != end:
        raise Blocked(BlockReason.UNINSPECTABLE, "bytes between tar members that no member claims")


def _trailing(data: bytes, position: int) -> bytes:
    """What follows the members once whole zero blocks (the end-of-archive marker, padding) are skipped."""
    while data[position:position + BLOCK].count(0) == BLOCK:
        position += BLOCK
    rest = data[position:]
    return b"" if rest.count(0) == len(rest) else rest


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def rebuild_tar(members: list[TarMember], contents: list[bytes | None]) -> bytes:
    """Write a new (pax) archive: ``contents[i]`` is member i's new bytes, or None to drop it.

    Names, link names, types, modes, owners and times are kept; pax records
    with no such meaning (comments, extended attributes) are not carried over.
    """
    out = io.BytesIO()
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as writer:
            for member, content in zip(members, contents, strict=True):
                if content is None:
                    continue
                copy = _copy_info(member.info, len(content))
                writer.addfile(copy, io.BytesIO(content) if member.info.type in REGULAR_TYPES else None)
    except (tarfile.TarError, ValueError, OSError):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "tar archive cannot be rebuilt") from None
    return out.getvalue()


def _copy_info(info: tarfile.TarInfo, size: int) -> tarfile.TarInfo:
    copy = tarfile.TarInfo(info.name)
    copy.type = tarfile.REGTYPE if info.type in REGULAR_TYPES else info.type
    copy.size = size
    for attribute in ("mode", "mtime", "uid", "gid", "uname", "gname", "linkname"):
        setattr(copy, attribute, getattr(info, attribute))
    return copy
