"""CDR for encapsulated Pixel Data: strip metadata segments from JPEG and JPEG 2000 frames.

Why: a compressed frame is not only pixels. JPEG streams carry COM and APPn
segments (EXIF with the camera owner, dates, GPS and serials; XMP; vendor
blocks) and JPEG 2000 codestreams carry COM (0xFF64) marker segments; cameras,
``img2dcm``-style wrappers and some modalities fill them with names and IDs.
No DICOM decoder needs them to rebuild the pixels, so they are removed and the
frames are re-encapsulated with a new Basic (or Extended) Offset Table.

Kept, because decoders read them: APP0 JFIF (colour convention; cut to its
fixed 14 bytes, so any thumbnail goes) and APP14 Adobe (colour transform; cut
to its fixed 12 bytes). ICC profiles (APP2) are removed: DICOM carries a
profile in ICC Profile (0028,2000), which the header rules handle, and no
DICOM decoder applies one from the stream. Entropy-coded data is copied
byte for byte, so the frame decodes to the same pixels.

A JPEG 2000 COM in a tile-part header is removed and that tile-part's Psot is
made smaller by the same count; a stream with a TLM marker (tile-part lengths
in the main header) whose tile-parts would change is blocked rather than
left with wrong lengths. A frame in the JP2 file format (boxes) is blocked:
PS3.5 A.4.4 forbids the JP2 header in DICOM, and its XML/UUID boxes are
another metadata carrier.
"""

from __future__ import annotations

import re
import struct

from pydicom import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames

from icapdlp.report import CdrFinding, ObjectReport
from icapdlp.verdict import Blocked, BlockReason

PIXEL_DATA, EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00010, 0x7FE00001, 0x7FE00002
#: JPEG Baseline, Extended, Lossless (two), JPEG-LS Lossless and Near-Lossless
JPEG_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
#: JPEG 2000 (lossless, lossy, Part 2 multi-component) and High-Throughput JPEG 2000
J2K_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203"})

_SOI, _SOS, _EOI = 0xD8, 0xDA, 0xD9
_APP0, _APP14, _COM = 0xE0, 0xEE, 0xFE
#: markers that stand alone (no length): TEM, RSTn, SOI, EOI
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), _SOI, _EOI})
_JFIF_FIXED, _ADOBE_FIXED = 14, 12
#: a marker inside scan data: FF then TEM or a byte >= 0x80 (FF00 and JPEG-LS FF<80 are data)
_MARKER = re.compile(rb"\xff[\x01\x80-\xff]")
_J2K_SOC, _J2K_SOT, _J2K_SOD, _J2K_EOC, _J2K_COM, _J2K_TLM = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9, 0xFF64, 0xFF55
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def strip_frame_metadata(ds: Dataset, report: ObjectReport) -> None:
    """Remove metadata segments from every frame of encapsulated JPEG / JPEG 2000 Pixel Data.

    Counts one ``codestream-metadata`` finding per removed segment. Leaves the
    dataset untouched when nothing is found (the common case: one pass over
    the headers, and for JPEG one ``find`` pass over the scan data).
    """
    ts = str(ds.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in ds.get("file_meta", {}) else ""
    if ts not in JPEG_SYNTAXES and ts not in J2K_SYNTAXES or PIXEL_DATA not in ds:
        return
    value = ds[PIXEL_DATA].value
    if not value:
        return
    value = bytes(value)
    try:
        frames = list(generate_frames(value, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    except Exception:  # noqa: BLE001 - any doubt about where frames start means they cannot be checked
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "encapsulated frames cannot be delimited") from None
    strip = strip_jpeg if ts in JPEG_SYNTAXES else strip_j2k
    removed, cleaned = 0, []
    for frame in frames:
        new, count = strip(frame)
        cleaned.append(new)
        removed += count
    if not removed:
        return
    report.cdr_findings[CdrFinding.CODESTREAM_METADATA] += removed
    if EXTENDED_OFFSET_TABLE in ds:
        value, offsets, lengths = encapsulate_extended(cleaned)
        ds[PIXEL_DATA].value = value
        ds[EXTENDED_OFFSET_TABLE].value = offsets
        if EXTENDED_OFFSET_TABLE_LENGTHS in ds:
            ds[EXTENDED_OFFSET_TABLE_LENGTHS].value = lengths
    else:
        ds[PIXEL_DATA].value = encapsulate(cleaned, has_bot=len(cleaned) > 1)


def strip_jpeg(frame: bytes) -> tuple[bytes, int]:
    """``frame`` without COM and APPn segments (JFIF/Adobe cut to their fixed part); and how many went."""
    if frame[:2] != b"\xff\xd8":
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG frame does not start with SOI")
    out, pos, removed, end = bytearray(b"\xff\xd8"), 2, 0, len(frame)
    while pos < end:
        if frame[pos] != 0xFF:  # entropy-coded data up to the next marker: copied as is
            nxt = _next_marker(frame, pos)
            out += frame[pos:nxt]
            pos = nxt
            continue
        marker_at = pos
        while pos < end and frame[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= end:
            out += frame[marker_at:]
            break
        marker = frame[pos]
        pos += 1
        if marker in _STANDALONE or marker < 0xC0:  # FF00 / JPEG-LS FF<80 in scan data: data
            out += frame[marker_at:pos]
            if marker == _EOI:
                removed += bool(frame[pos:].strip(b"\x00"))  # bytes after EOI: dropped
                break
            continue
        if pos + 2 > end:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG segment cut short")
        length = struct.unpack_from(">H", frame, pos)[0]
        body = frame[pos + 2:pos + length]
        if length < 2 or pos + length > end:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG segment length out of range")
        seg_end = pos + length
        if marker == _APP0 and body.startswith(b"JFIF\0") and length - 2 >= _JFIF_FIXED:
            fixed = bytearray(body[:_JFIF_FIXED])
            fixed[12:14] = b"\0\0"  # no thumbnail
            out += b"\xff\xe0" + struct.pack(">H", _JFIF_FIXED + 2) + fixed
            removed += length - 2 > _JFIF_FIXED or body[12:14] != b"\0\0"
        elif marker == _APP14 and body.startswith(b"Adobe") and length - 2 >= _ADOBE_FIXED:
            out += b"\xff\xee" + struct.pack(">H", _ADOBE_FIXED + 2) + body[:_ADOBE_FIXED]
            removed += length - 2 > _ADOBE_FIXED
        elif 0xE0 <= marker <= 0xEF or marker == _COM:
            removed += 1
        else:
            out += frame[marker_at:seg_end]
        pos = seg_end
    return (bytes(out), removed) if removed else (frame, 0)


def _next_marker(frame: bytes, pos: int) -> int:
    """Offset of the next 0xFF that starts a marker: not a stuffed FF00 (JPEG) or FF<80 (JPEG-LS)."""
    found = _MARKER.search(frame, pos)
    return len(frame) if found is None else found.start()


def strip_j2k(frame: bytes) -> tuple[bytes, int]:
    """``frame`` without COM marker segments in its main and tile-part headers; and how many went."""
    if frame.startswith(_JP2_SIGNATURE):
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 frame in the JP2 file format (PS3.5 A.4.4)")
    if len(frame) < 4 or struct.unpack_from(">H", frame)[0] != _J2K_SOC:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 frame does not start with SOC")
    out, pos, removed, has_tlm = bytearray(frame[:2]), 2, 0, False
    end = len(frame)
    while True:  # main header: up to the first SOT
        marker, length = _j2k_segment(frame, pos)
        if marker == _J2K_SOT:
            break
        if marker == _J2K_COM:
            removed += 1
        else:
            has_tlm |= marker == _J2K_TLM
            out += frame[pos:pos + 2 + length]
        pos += 2 + length
    while pos < end:  # tile-parts: SOT, header segments, SOD, data (Psot bytes from SOT)
        marker, length = _j2k_segment(frame, pos)
        if marker == _J2K_EOC:
            out += frame[pos:pos + 2]
            removed += bool(frame[pos + 2:].strip(b"\x00"))  # bytes after EOC: dropped
            break
        if marker != _J2K_SOT or length != 10:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 tile-part does not start with SOT")
        psot = struct.unpack_from(">I", frame, pos + 6)[0]
        part_end = end if psot == 0 else pos + psot
        if part_end > end or psot and psot < 14:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 tile-part length out of range")
        head, cut, cursor = bytearray(), 0, pos + 12
        while True:
            seg, seg_len = _j2k_segment(frame, cursor)
            if seg == _J2K_SOD:
                break
            if seg == _J2K_COM:
                cut += 2 + seg_len
            else:
                head += frame[cursor:cursor + 2 + seg_len]
            cursor += 2 + seg_len
            if cursor >= part_end:
                raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 tile-part without SOD")
        if cut:
            if has_tlm:
                raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                              "JPEG 2000 comment in a tile-part of a stream with tile-part lengths (TLM)")
            removed += 1
        sot = bytearray(frame[pos:pos + 12])
        if psot:
            struct.pack_into(">I", sot, 6, psot - cut)
        out += sot + head + frame[cursor:part_end]
        pos = part_end
    return (bytes(out), removed) if removed else (frame, 0)


def _j2k_segment(frame: bytes, pos: int) -> tuple[int, int]:
    """(marker, segment length without the marker) at ``pos``; SOD and EOC have no length."""
    if pos + 2 > len(frame):
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 header cut short")
    marker = struct.unpack_from(">H", frame, pos)[0]
    if marker in (_J2K_SOD, _J2K_EOC):
        return marker, 0
    if marker >> 8 != 0xFF or pos + 4 > len(frame):
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 header marker expected")
    length = struct.unpack_from(">H", frame, pos + 2)[0]
    if length < 2 or pos + 2 + length > len(frame):
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "JPEG 2000 marker segment length out of range")
    return marker, length
