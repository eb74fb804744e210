"""Build the zip forms receivers accept and a gateway must not misread, and read zips as receivers do.

Why: zipfile writes only well-formed archives. The attacks on a zip gateway
are archives that real readers accept but read differently (issue 12): a
local entry the central directory does not list, bytes between entries, a zip
behind a prefix, zip64 end records on a small archive. These helpers take an
archive zipfile wrote apart and put it back together in those forms, and
read archives the way ``unzip`` (the real one) and Java's ``ZipInputStream``
(a faithful mimic: sequential local headers from byte 0) do.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
EOCD = struct.Struct("<4sHHHHIIH")
ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
ZIP64_LOCATOR = struct.Struct("<4sIQI")
DATE = (2020, 1, 2, 3, 4, 6)


@dataclass
class Piece:
    """One member: its local header and data (and descriptor), and its central record."""

    local: bytes
    central: bytes


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=DATE), data, compress_type=method)
    return out.getvalue()


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors, as streaming zippers do."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        return len(data)


def streamed_zip(members: dict[str, bytes], *, zip64: bool = False,
                 method: int = zipfile.ZIP_DEFLATED) -> bytes:
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = method
            with archive.open(info, "w", force_zip64=zip64) as handle:
                handle.write(data)
    return bytes(stream.buffer)


def pieces(data: bytes) -> list[Piece]:
    """Take a zipfile-written archive (no prefix, no comment) apart."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    eocd = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = EOCD.unpack_from(data, eocd)[5:7]
    starts = [info.header_offset for info in infos] + [cd_offset]
    out, position = [], cd_offset
    for index in range(len(infos)):
        name_len, extra_len, comment_len = CENTRAL.unpack_from(data, position)[10:13]
        record_end = position + CENTRAL.size + name_len + extra_len + comment_len
        out.append(Piece(data[starts[index]:starts[index + 1]], data[position:record_end]))
        position = record_end
    return out


def assemble(members: list[tuple[Piece, bool]], *, between: bytes = b"", zip64_end: bool = False,
             base: int = 0, before_directory: bytes = b"") -> bytes:
    """Lay the pieces out again; a member with False is left out of the central directory.

    ``between`` goes between consecutive local entries; ``zip64_end`` writes
    zip64 end records (as zip -fz does) even though nothing needs them;
    ``base`` is added to every offset (as ``zip -A`` does for a stub of that size);
    ``before_directory`` goes after the last entry (where an APK keeps its signing block).
    """
    body = bytearray()
    central = bytearray()
    listed = 0
    for index, (piece, is_listed) in enumerate(members):
        if index:
            body += between
        offset = len(body)
        body += piece.local
        if is_listed:
            record = bytearray(piece.central)
            struct.pack_into("<I", record, 42, base + offset)
            central += record
            listed += 1
    body += before_directory
    cd_offset = base + len(body)
    body += central
    if zip64_end:
        record_offset = base + len(body)
        body += ZIP64_EOCD.pack(b"PK\x06\x06", ZIP64_EOCD.size - 12, 45, 45, 0, 0, listed, listed,
                                len(central), cd_offset)
        body += ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, record_offset, 1)
        body += EOCD.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        body += EOCD.pack(b"PK\x05\x06", 0, 0, listed, listed, len(central), cd_offset, 0)
    return bytes(body)


def stream_read(data: bytes) -> dict[str, bytes]:
    """Read as Java's ZipInputStream does: local headers one after another from byte 0.

    It stops at the first bytes that are not a local header, takes sizes
    from the local header (or inflates to the end of the deflate stream and
    skips the data descriptor when flag bit 3 is set), and never reads the
    central directory.
    """
    out: dict[str, bytes] = {}
    position = 0
    while data[position:position + 4] == b"PK\x03\x04":
        flags, method, _, _, _, compressed, size, name_len, extra_len = LOCAL.unpack_from(data, position)[2:]
        name = data[position + 30:position + 30 + name_len].decode("utf-8")
        extra = data[position + 30 + name_len:position + 30 + name_len + extra_len]
        start = position + 30 + name_len + extra_len
        zip64 = b"\x01\x00" in extra[:2] or (compressed == 0xFFFFFFFF)
        if zip64 and compressed == 0xFFFFFFFF:
            size, compressed = struct.unpack_from("<QQ", extra, 4)
        if flags & 0x8:
            assert method == zipfile.ZIP_DEFLATED, "ZipInputStream refuses a stored entry with a descriptor"
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            content = inflater.decompress(data[start:])
            end = len(data) - len(inflater.unused_data)
            if data[end:end + 4] == b"PK\x07\x08":
                end += 4
            end += 4 + (16 if zip64 else 8)
        else:
            raw = data[start:start + compressed]
            content = raw if method == zipfile.ZIP_STORED else zlib.decompress(raw, -zlib.MAX_WBITS)
            end = start + compressed
        out[name] = content
        position = end
    return out


UNZIP = shutil.which("unzip")


def unzip_extract(data: bytes, workdir: Path) -> dict[str, bytes]:
    """Extract with Info-ZIP unzip (what a user runs); exit 1 is unzip's 'warning' (e.g. a prefix)."""
    assert UNZIP, "Info-ZIP unzip is required (apt package unzip, installed by tools/bootstrap.sh)"
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / "in.zip"
    archive.write_bytes(data)
    target = workdir / "out"
    done = subprocess.run([UNZIP, "-o", "-qq", str(archive), "-d", str(target)], capture_output=True)
    assert done.returncode in (0, 1), done.stderr
    return {str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()}


def unzip_test(data: bytes, workdir: Path) -> int:
    archive = workdir / "test.zip"
    archive.write_bytes(data)
    assert UNZIP, "Info-ZIP unzip is required (apt package unzip, installed by tools/bootstrap.sh)"
    return subprocess.run([UNZIP, "-tqq", str(archive)], capture_output=True).returncode
