"""Where a zip archive is, and which bytes belong to which member, as two kinds of reader see it.

Zip readers disagree by design. ``unzip``, Python's zipfile and Java's
``ZipFile`` find the archive from its end: the end-of-central-directory
record (EOCD) points at the central directory (CD), which lists the members;
bytes before the archive (a self-extractor stub, another zip) are skipped.
Java's ``ZipInputStream`` and other streaming readers start at byte 0 and
walk the local headers one after another, never reading the CD. An attacker
uses the gap between the two: a member only one of them lists, a zip behind a
prefix, two zips end to end, a data descriptor that ends a member elsewhere
than the CD says.

``scan`` reads both ways and checks that every byte of the body belongs to
exactly one thing: the prefix before the archive, a member both views agree
on (same place, name, method and size), a member only the streaming view
sees (returned as unlisted: the caller inspects it), the CD and its end
records, or trailing bytes after them. Anything else (gaps, overlaps,
disagreements) is blocked as uninspectable or unsafe.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from icapdlp.verdict import BlockReason, Blocked

LOCAL_SIG = b"PK\x03\x04"
CENTRAL_SIG = b"PK\x01\x02"
EOCD_SIG = b"PK\x05\x06"
ZIP64_EOCD_SIG = b"PK\x06\x06"
ZIP64_LOCATOR_SIG = b"PK\x06\x07"
DESCRIPTOR_SIG = b"PK\x07\x08"
APK_SIGNING_MAGIC = b"APK Sig Block 42"
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # APPNOTE 4.3.7
CENTRAL_HEADER = struct.Struct("<4sHHHHHHIIIHHHHHII")  # APPNOTE 4.3.12
EOCD = struct.Struct("<4sHHHHIIH")  # APPNOTE 4.3.16
ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")  # APPNOTE 4.3.14, without extensible data
ZIP64_LOCATOR = struct.Struct("<4sIQI")
#: the EOCD ends the body, or is followed by a comment of at most 64 KiB (APPNOTE 4.3.16)
EOCD_SEARCH = EOCD.size + 0xFFFF
ZIP64_EXTRA_ID = 0x0001
MAX32 = 0xFFFFFFFF
FLAG_DESCRIPTOR = 0x8  # general-purpose bit 3: sizes and CRC follow the data
METHOD_STORED, METHOD_DEFLATED = 0, 8
#: inflate in slices of this size while looking for the end of a deflate stream
INFLATE_STEP = 1024 * 1024
#: members this small cannot be bombs however high their ratio looks (archive uses it too)
RATIO_FLOOR_BYTES = 64 * 1024


@dataclass(frozen=True)
class Entry:
    """One member as its local header (and the CD, when ``listed``) place it."""

    name: bytes
    offset: int  # of the local header
    data_offset: int
    compressed_size: int
    file_size: int
    crc: int
    method: int
    flags: int
    end: int  # after the data and any data descriptor
    listed: bool


@dataclass(frozen=True)
class Layout:
    prefix_end: int  # bytes [0, prefix_end) come before the archive
    entries: list[Entry]  # every local entry, in file order
    comment: bytes
    end: int  # after the EOCD and its comment; bytes from here on trail the archive

    @property
    def unlisted(self) -> list[Entry]:
        return [entry for entry in self.entries if not entry.listed]

    def metadata(self, data: bytes) -> list[bytes]:
        """The archive's bytes that are no member's data: headers, extra fields, descriptors,
        the central directory, end records and comments (no reader extracts them as a file)."""
        regions, position = [], self.prefix_end
        for entry in self.entries:
            regions.append(data[position:entry.data_offset])
            position = entry.data_offset + entry.compressed_size
        regions.append(data[position:self.end])
        return regions


@dataclass(frozen=True)
class _Central:
    name: bytes
    offset: int
    compressed_size: int
    file_size: int
    crc: int
    method: int
    flags: int


def find_eocd(data: bytes) -> int | None:
    """Offset of the EOCD an end-first reader would use (the last one in the final 64 KiB), or None."""
    position = data.rfind(EOCD_SIG, max(0, len(data) - EOCD_SEARCH))
    if position < 0 or len(data) - position < EOCD.size:
        return None
    return position


#: compression methods zip readers implement (APPNOTE 4.4.5: stored, shrunk, imploded, deflate,
#: deflate64, bzip2, LZMA, zstd, MP3, xz, JPEG, WavPack, PPMd, AE-x)
_METHODS = frozenset({0, 1, 6, 8, 9, 12, 14, 93, 94, 95, 96, 97, 98, 99})
#: the highest "version needed to extract" APPNOTE defines (6.3)
_MAX_VERSION = 63
_NAME_MAX = 4096


def plausible_record(data: bytes, at: int) -> bool:
    """Whether the zip record signature at ``at`` starts a record a zip reader would take.

    Four signature bytes stand by chance about once per GiB of compressed or
    random data per record type: an 80 MiB video holds one in 13. Refusing
    every such hit as a broken archive blocked ordinary large downloads. A
    reader checks the fields after the signature; so does this: the version
    needed, the compression method and the name length of a local or
    central header, the disk numbers and comment of an end record, the size
    of a zip64 end record. Random bytes pass one of them about once in
    10^8; a record cut off by the body's end counts as plausible.
    """
    sig = data[at:at + 4]
    try:
        if sig == LOCAL_SIG:
            version, _flags, method = struct.unpack_from("<HHH", data, at + 4)
            (name_length,) = struct.unpack_from("<H", data, at + 26)
            return version <= _MAX_VERSION and method in _METHODS and name_length <= _NAME_MAX
        if sig == CENTRAL_SIG:
            version, _flags, method = struct.unpack_from("<HHH", data, at + 6)
            (name_length,) = struct.unpack_from("<H", data, at + 28)
            return version <= _MAX_VERSION and method in _METHODS and name_length <= _NAME_MAX
        if sig == EOCD_SIG:
            disk, cd_disk, on_disk, total = struct.unpack_from("<HHHH", data, at + 4)
            (comment_length,) = struct.unpack_from("<H", data, at + 20)
            single = disk == cd_disk == 0 and on_disk == total
            zip64 = disk == cd_disk == on_disk == total == 0xFFFF or (disk == cd_disk == 0 and total == 0xFFFF)
            return (single or zip64) and at + 22 + comment_length <= len(data)
        if sig == ZIP64_EOCD_SIG:
            (size,) = struct.unpack_from("<Q", data, at + 4)
            return 44 <= size < 1 << 20
    except struct.error:
        return True  # cut off by the end of the body: a reader would try it
    return False


def holds_zip(data: bytes) -> bool:
    """Whether end-first readers (unzip, zipfile) find an archive with members in ``data``.

    Used to recognise zips that do not start at byte 0 (behind a prefix,
    after another zip); an empty archive behind other bytes holds nothing.
    """
    eocd = find_eocd(data)
    if eocd is None:
        return False
    try:
        cd_end, entries, cd_size, _ = _directory(data, eocd)
    except Blocked:
        return False
    cd_start = cd_end - cd_size
    return entries > 0 and cd_start >= 0 and data[cd_start:cd_start + 4] == CENTRAL_SIG


def _directory(data: bytes, eocd: int) -> tuple[int, int, int, int]:
    """(end, entry count, size, declared offset) of the central directory, zip64 records included.

    A zip64 locator before the EOCD is believed, as zipfile does, only where
    the EOCD's own fields agree: Info-ZIP ``unzip`` reads an EOCD field
    that is not saturated (0xFFFF, 0xFFFFFFFF) as it stands, so fields
    naming another central directory are two archives, one per reader.
    Like zipfile, no extensible data is assumed.
    """
    _, disk, cd_disk, _, entries, cd_size, cd_offset, _ = EOCD.unpack_from(data, eocd)
    locator = eocd - ZIP64_LOCATOR.size
    if locator >= 0 and data[locator:locator + 4] == ZIP64_LOCATOR_SIG:
        record = locator - ZIP64_EOCD.size
        wide = _zip64_end(data, record)
        for narrow, value, saturated in zip((entries, cd_size, cd_offset), wide, (0xFFFF, MAX32, MAX32)):
            if narrow not in (saturated, value):
                raise Blocked(BlockReason.UNINSPECTABLE,
                              "the zip end record and the zip64 end record name different central directories")
        return (record, *wide)
    if disk or cd_disk:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "multi-disk zip archives are not supported")
    return eocd, entries, cd_size, cd_offset


def scan(data: bytes, max_members: int, max_inflated_bytes: int, max_ratio: int) -> Layout:
    """The archive's layout; Blocked when a byte belongs to no member or to two."""
    eocd = find_eocd(data)
    if eocd is None:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "no end of central directory: not a readable zip archive")
    end = eocd + EOCD.size + EOCD.unpack_from(data, eocd)[7]
    if end > len(data):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip comment runs past the end")
    cd_end, entries, cd_size, cd_offset = _directory(data, eocd)
    if entries > max_members:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, f"archive has more than {max_members} members")
    cd_start = cd_end - cd_size
    concat = cd_start - cd_offset  # bytes before the archive, as end-first readers compute them
    if cd_start < 0 or concat < 0:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip central directory lies outside the body")
    central = _read_central(data, cd_start, cd_end, entries, concat)
    listed = {entry.offset: entry for entry in central}
    if data[concat:concat + 4] == LOCAL_SIG or not central:
        start = concat
    else:
        start = min(listed)  # a stub before an archive whose offsets count from byte 0 (zip -A)
    if LOCAL_SIG in data[:start] and not holds_zip(data[:start]):
        raise Blocked(BlockReason.UNINSPECTABLE,
                      "zip local entries before the archive that no central directory lists")
    found = _walk_locals(data, start, cd_start, listed, max_members, (max_inflated_bytes, max_ratio))
    missing = set(listed) - {entry.offset for entry in found}
    if missing:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "a central directory entry points inside another member")
    return Layout(start, found, data[eocd + EOCD.size:end], end)


def _zip64_end(data: bytes, record: int) -> tuple[int, int, int]:
    if record < 0 or data[record:record + 4] != ZIP64_EOCD_SIG:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip64 locator without its end record")
    _, size, _, _, disk, cd_disk, _, entries, cd_size, cd_offset = ZIP64_EOCD.unpack_from(data, record)
    if size != ZIP64_EOCD.size - 12 or disk or cd_disk:
        raise Blocked(BlockReason.UNINSPECTABLE, "zip64 end record with extensible data or several disks")
    return entries, cd_size, cd_offset


def _read_central(data: bytes, start: int, end: int, count: int, concat: int) -> list[_Central]:
    """The CD's entries; its bytes must be exactly ``count`` records (unzip counts, zipfile measures)."""
    entries: list[_Central] = []
    position = start
    while position < end:
        if data[position:position + 4] != CENTRAL_SIG or position + CENTRAL_HEADER.size > end:
            raise Blocked(BlockReason.UNINSPECTABLE, "bytes in the zip central directory that are no entry")
        (_, _, _, flags, method, _, _, crc, compressed, size, name_len, extra_len, comment_len,
         disk, _, _, offset) = CENTRAL_HEADER.unpack_from(data, position)
        name_start = position + CENTRAL_HEADER.size
        extra = data[name_start + name_len:name_start + name_len + extra_len]
        size, compressed, offset = _zip64_values(extra, [size, compressed, offset])
        entries.append(_Central(data[name_start:name_start + name_len], offset + concat, compressed, size,
                                crc, method, flags))
        position = name_start + name_len + extra_len + comment_len
    if position != end or len(entries) != count:
        raise Blocked(BlockReason.UNINSPECTABLE, "zip central directory size and entry count disagree")
    if len({entry.offset for entry in entries}) != len(entries):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "two zip entries share one local header")
    return entries


def _zip64_values(extra: bytes, values: list[int]) -> list[int]:
    """Replace the 32-bit fields that hold 0xFFFFFFFF by the zip64 extra field's values, in order."""
    position = 0
    while position + 4 <= len(extra):
        field_id, size = struct.unpack_from("<HH", extra, position)
        if field_id == ZIP64_EXTRA_ID:
            body = extra[position + 4:position + 4 + size]
            index = 0
            for slot, value in enumerate(values):
                if value == MAX32:
                    if index + 8 > len(body):
                        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip64 extra field is too short")
                    values[slot] = struct.unpack_from("<Q", body, index)[0]
                    index += 8
            return values
        position += 4 + size
    return values


def _walk_locals(data: bytes, start: int, cd_start: int, listed: dict[int, _Central],
                 max_members: int, budget: tuple[int, int]) -> list[Entry]:
    """Local entries from ``start`` to the CD, one after another, as a streaming reader meets them."""
    found: list[Entry] = []
    position = start
    while position < cd_start:
        if data[position:position + 4] != LOCAL_SIG:
            if _is_apk_signing_block(data, position, cd_start):
                break  # Android's signatures: readers skip them, metadata() keeps them in view
            raise Blocked(BlockReason.UNINSPECTABLE, "bytes between zip entries that no reader lists")
        if len(found) >= max_members:
            raise Blocked(BlockReason.LIMIT_EXCEEDED, f"archive has more than {max_members} members")
        central = listed.get(position)
        entry = _local_entry(data, position, central, budget)
        if entry.end > cd_start:
            raise Blocked(BlockReason.UNSAFE_ARCHIVE, "a zip member overlaps the central directory")
        if central is not None:
            _check_agreement(entry, central)
        found.append(entry)
        position = entry.end
    return found


def _is_apk_signing_block(data: bytes, start: int, cd_start: int) -> bool:
    """Whether [start, cd_start) is exactly one APK Signing Block (size, pairs, size, magic).

    Every APK has one between its last entry and its central directory; it holds
    signatures and certificates, never a file a reader extracts.
    """
    length = cd_start - start
    if length < 32 or data[cd_start - 16:cd_start] != APK_SIGNING_MAGIC:
        return False
    (leading,) = struct.unpack_from("<Q", data, start)
    (trailing,) = struct.unpack_from("<Q", data, cd_start - 24)
    return leading == trailing == length - 8


def _local_entry(data: bytes, offset: int, central: _Central | None, budget: tuple[int, int]) -> Entry:
    if offset + LOCAL_HEADER.size > len(data):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip local header is truncated")
    (_, _, flags, method, _, _, crc, compressed, size, name_len,
     extra_len) = LOCAL_HEADER.unpack_from(data, offset)
    name_start = offset + LOCAL_HEADER.size
    name = data[name_start:name_start + name_len]
    extra = data[name_start + name_len:name_start + name_len + extra_len]
    data_offset = name_start + name_len + extra_len
    size, compressed = _zip64_values(extra, [size, compressed])
    zip64 = size > MAX32 or compressed > MAX32 or _has_zip64_extra(extra)
    if not flags & FLAG_DESCRIPTOR:
        end = data_offset + compressed
    elif method == METHOD_DEFLATED:
        # a streaming reader inflates until the deflate stream ends; the descriptor follows
        compressed, inflated = _deflate_extent(data, data_offset, budget)
        crc, end = _descriptor(data, data_offset + compressed, compressed, inflated, zip64)
        size = inflated
    elif central is not None:
        # ZipInputStream refuses these; end-first readers take the sizes from the CD
        compressed, size, crc = central.compressed_size, central.file_size, central.crc
        crc, end = _descriptor(data, data_offset + compressed, compressed, size, zip64)
    else:
        raise Blocked(BlockReason.UNINSPECTABLE, "an unlisted zip entry whose end only a descriptor gives")
    if end > len(data):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip member runs past the end")
    return Entry(name, offset, data_offset, compressed, size, crc, method, flags, end, central is not None)


def _has_zip64_extra(extra: bytes) -> bool:
    position = 0
    while position + 4 <= len(extra):
        field_id, size = struct.unpack_from("<HH", extra, position)
        if field_id == ZIP64_EXTRA_ID:
            return True
        position += 4 + size
    return False


def _deflate_extent(data: bytes, start: int, budget: tuple[int, int]) -> tuple[int, int]:
    """(compressed, inflated) length of the raw deflate stream at ``start``; output is discarded.

    ``budget`` is (most bytes, highest ratio): an unlisted member is inflated
    here first, so the bomb checks zipfile's reading applies to listed ones
    apply here too.
    """
    limit, max_ratio = budget
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    view = memoryview(data)[start:]
    inflated = 0
    try:
        pending = view
        while not inflater.eof:
            chunk = inflater.decompress(pending, INFLATE_STEP)
            inflated += len(chunk)
            if inflated > limit:
                raise Blocked(BlockReason.LIMIT_EXCEEDED, "archive inflates beyond the limit")
            pending = inflater.unconsumed_tail
            consumed = len(view) - len(pending)
            if inflated > RATIO_FLOOR_BYTES and inflated > max_ratio * consumed:
                raise Blocked(BlockReason.UNSAFE_ARCHIVE, f"member compression ratio above {max_ratio}")
            if not chunk and not pending:
                raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip member's deflate stream is truncated")
    except zlib.error:
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip member's deflate stream is corrupt") from None
    return len(view) - len(inflater.unused_data), inflated


def _descriptor(data: bytes, position: int, compressed: int, size: int, zip64: bool) -> tuple[int, int]:
    """(crc, end) of the data descriptor at ``position``; its sizes must be the ones measured."""
    signed = data[position:position + 4] == DESCRIPTOR_SIG
    body = position + 4 if signed else position
    layout = "<IQQ" if zip64 else "<III"
    if body + struct.calcsize(layout) > len(data):
        raise Blocked(BlockReason.UNSAFE_ARCHIVE, "zip data descriptor is truncated")
    crc, stated_compressed, stated_size = struct.unpack_from(layout, data, body)
    if (stated_compressed, stated_size) != (compressed, size):
        raise Blocked(BlockReason.UNINSPECTABLE, "a zip data descriptor disagrees with the member's data")
    return crc, body + struct.calcsize(layout)


def _check_agreement(entry: Entry, central: _Central) -> None:
    """A member both views list must be the same member to both."""
    if entry.name != central.name:
        raise Blocked(BlockReason.UNINSPECTABLE,
                      "zip local header and central directory name a member differently")
    if (entry.method, entry.flags & 0x1) != (central.method, central.flags & 0x1):
        raise Blocked(BlockReason.UNINSPECTABLE, "zip local header and central directory differ on method")
    if (entry.compressed_size, entry.file_size, entry.crc) != (central.compressed_size, central.file_size,
                                                               central.crc):
        raise Blocked(BlockReason.UNINSPECTABLE,
                      "zip local header and central directory differ on a member's size or checksum")
