"""A bounded scanner of DICOM element headers that runs BEFORE pydicom sees the bytes.

Why: pydicom trusts its input. It inflates the Deflated transfer syntax with
no size limit, recurses once per sequence level (RecursionError near 250),
and a wrong length can make it read far past the object. This scanner walks
only element headers (tag, VR, length), iteratively, and checks every limit
in :class:`~icapdlp.dicom.options.DicomLimits` before any value is decoded:
object size, each length against the bytes that remain in its container,
sequence depth and element count. A Deflated dataset is inflated here in
bounded steps, so a decompression bomb is refused after ``max_inflated_bytes``.

It also decides where the dataset ends. Bytes after it (appended archives,
executables, Data Set Trailing Padding) are not passed on; they are counted
as CDR findings. Detail strings name offsets and sizes only, never values.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR
from pydicom.uid import UID

from icapdlp.dicom.options import DicomLimits
from icapdlp.report import CdrFinding
from icapdlp.verdict import Blocked, BlockReason

PREAMBLE_BYTES = 128
MAGIC = b"DICM"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
#: a File Meta Information group larger than this is not a real one (real ones are < 1 KiB)
MAX_META_BYTES = 64 * 1024
#: inflate in steps of this many output bytes so a bomb is stopped early
INFLATE_STEP = 1024 * 1024

VALID_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split())
#: explicit VRs encoded with 2 reserved bytes and a 4-byte length
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
TRAILING_PADDING = 0xFFFCFFFC
#: executable headers an attacker puts in the preamble (PE/DOS, ELF, Mach-O, scripts)
EXECUTABLE_SIGNATURES = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe",
                         b"\xce\xfa\xed\xfe", b"#!")


@dataclass
class PixelLocation:
    """Where the top-level Pixel Data element sits inside ``ScannedInput.dataset``."""

    header_offset: int
    value_offset: int
    length: int  # UNDEFINED for encapsulated pixel data
    vr: bytes  # b"OB"/b"OW", or b"" in implicit VR


@dataclass
class ScannedInput:
    """What the scanner learnt; ``dataset`` holds only the bytes pydicom may parse."""

    transfer_syntax: str
    implicit: bool
    little_endian: bool
    dataset: bytes | memoryview  # a view into the input unless it was inflated
    #: offset of ``dataset`` in the original input (None when it was inflated)
    dataset_offset: int | None
    has_file_meta: bool
    findings: dict[CdrFinding, int] = field(default_factory=dict)
    elements: int = 0
    max_depth: int = 0
    pixel: PixelLocation | None = None


def scan(data: bytes | bytearray, limits: DicomLimits, *, allow_truncated_pixels: bool = False) -> ScannedInput:
    """Check ``data`` against ``limits``; raise :class:`Blocked` or return the dataset bounds.

    ``allow_truncated_pixels`` is for the ICAP preview path: the buffer is a
    prefix of a larger object, and the scan stops at the top-level Pixel Data.
    """
    if len(data) > limits.max_object_bytes:
        raise Blocked(BlockReason.LIMIT_EXCEEDED,
                      f"object of {len(data)} bytes exceeds {limits.max_object_bytes}")
    findings: dict[CdrFinding, int] = {}
    if len(data) >= PREAMBLE_BYTES + 4 and data[PREAMBLE_BYTES:PREAMBLE_BYTES + 4] == MAGIC:
        preamble = data[:PREAMBLE_BYTES]
        if any(preamble.startswith(sig) for sig in EXECUTABLE_SIGNATURES):
            findings[CdrFinding.PREAMBLE_EXECUTABLE] = 1
        elif preamble.strip(b"\0"):
            findings[CdrFinding.PREAMBLE_NONZERO] = 1
        ts, start = _read_meta(data, PREAMBLE_BYTES + 4)
        has_meta = True
    elif data[:4] == MAGIC:
        ts, start = _read_meta(data, 4)
        has_meta = True
    else:
        ts, start = _guess_bare(data), 0
        has_meta = False
    uid = UID(ts)
    if ts == DEFLATED_LE:
        raw, offset = _bounded_inflate(data[start:], limits, findings), None
        implicit, little = False, True
    elif ts in (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE) or (uid.is_transfer_syntax and uid.is_encapsulated):
        # a view, not a copy: the dataset is most of the object (the pixels)
        raw, offset = memoryview(data)[start:], start
        implicit, little = ts == IMPLICIT_LE, ts != EXPLICIT_BE
    else:
        raise Blocked(BlockReason.UNSUPPORTED_ENCODING, "transfer syntax not supported")
    walker = _Walker(raw, implicit, little, limits, allow_truncated_pixels)
    end = walker.walk()
    if end < len(raw):
        kind = CdrFinding.TRAILING_PADDING if walker.stopped_at_padding else CdrFinding.TRAILING_BYTES
        findings[kind] = findings.get(kind, 0) + 1
        raw = raw[:end]
    if walker.elements == 0:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "no data elements")
    return ScannedInput(ts, implicit, little, raw, offset, has_meta, findings,
                        walker.elements, walker.max_depth, walker.pixel)


def _read_meta(data: bytes, pos: int) -> tuple[str, int]:
    """Walk the group-2 elements (always explicit VR LE); return (transfer syntax, end)."""
    ts = None
    limit = min(len(data), pos + MAX_META_BYTES)
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = bytes(data[pos + 4:pos + 6])  # bytes: a bytearray slice cannot be looked up in a set
        if vr not in VALID_VRS:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, f"invalid VR in file meta at offset {pos}")
        if vr in LONG_VRS:
            if pos + 12 > len(data):
                raise Blocked(BlockReason.UNPARSEABLE_DICOM, "file meta truncated")
            length, head = struct.unpack_from("<I", data, pos + 8)[0], 12
        else:
            length, head = struct.unpack_from("<H", data, pos + 6)[0], 8
        if pos + head + length > limit:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                          f"file meta element length {length} at offset {pos} exceeds the meta limit")
        if elem == 0x0010:
            ts = data[pos + head:pos + head + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos += head + length
    if not ts:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "file meta has no transfer syntax")
    return ts, pos


def _guess_bare(data: bytes) -> str:
    """A dataset without preamble/meta: Explicit VR LE if a VR follows the tag, else Implicit."""
    if len(data) < 8:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "too short to be DICOM")
    group = struct.unpack_from("<H", data, 0)[0]
    if group > 0x0010 or group % 2:  # real bare datasets start with groups 0000-0010
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "does not start like a DICOM dataset")
    return EXPLICIT_LE if bytes(data[4:6]) in VALID_VRS else IMPLICIT_LE


def _bounded_inflate(compressed: bytes, limits: DicomLimits, findings: dict[CdrFinding, int]) -> bytes:
    """Inflate raw deflate (RFC 1951) but never beyond ``max_inflated_bytes``."""
    wbits = 15 if compressed[:1] == b"\x78" else -15  # some writers add a zlib header
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    pending = compressed
    try:
        while True:
            room = limits.max_inflated_bytes + 1 - len(out)
            chunk = inflater.decompress(pending, min(INFLATE_STEP, room))
            out += chunk
            if len(out) > limits.max_inflated_bytes:
                raise Blocked(BlockReason.LIMIT_EXCEEDED,
                              f"deflated dataset inflates beyond {limits.max_inflated_bytes} bytes")
            pending = inflater.unconsumed_tail
            if inflater.eof or not pending and not chunk:
                break
        out += inflater.flush()
    except zlib.error:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "deflated dataset is corrupt") from None
    if not inflater.eof:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "deflated dataset is truncated")
    if inflater.unused_data:
        findings[CdrFinding.TRAILING_BYTES] = findings.get(CdrFinding.TRAILING_BYTES, 0) + 1
    return bytes(out)


class _Frame:
    """One open container: a dataset (top level or item), a sequence, or encapsulated pixels."""

    __slots__ = ("kind", "end", "implicit", "prev_tag", "depth")

    def __init__(self, kind: str, end: int | None, implicit: bool, depth: int) -> None:
        self.kind = kind  # "dataset" | "sequence" | "fragments"
        self.end = end  # None: undefined length, ends at a delimiter
        self.implicit = implicit
        self.prev_tag = -1
        self.depth = depth


class _Walker:
    """Iterative header walk; no recursion so hostile nesting cannot exhaust the stack."""

    def __init__(self, buf: bytes, implicit: bool, little: bool, limits: DicomLimits,
                 allow_truncated_pixels: bool) -> None:
        self.buf = buf
        self.little = little
        self.limits = limits
        self.allow_truncated_pixels = allow_truncated_pixels
        self.u16 = struct.Struct("<H" if little else ">H").unpack_from
        self.u32 = struct.Struct("<I" if little else ">I").unpack_from
        self.tag_fmt = struct.Struct("<HH" if little else ">HH").unpack_from
        self.elements = 0
        self.max_depth = 0
        self.pixel: PixelLocation | None = None
        self.stopped_at_padding = False
        self.stack = [_Frame("dataset", len(buf), implicit, 0)]

    def _fail(self, detail: str) -> Blocked:
        return Blocked(BlockReason.UNPARSEABLE_DICOM, detail)

    def walk(self) -> int:
        """Return the offset where the top-level dataset ends."""
        buf, pos, stack = self.buf, 0, self.stack
        while True:
            frame = stack[-1]
            if frame.end is not None and pos == frame.end:
                if len(stack) == 1:
                    return pos
                stack.pop()
                continue
            top = len(stack) == 1
            limit = frame.end if frame.end is not None else self._container_limit()
            if pos + 8 > limit:
                if top and pos + 8 > len(buf):
                    return pos  # a few stray bytes after the last element: trailing
                raise self._fail(f"truncated element header at offset {pos}")
            group, elem = self.tag_fmt(buf, pos)
            tag = (group << 16) | elem
            if frame.kind in ("sequence", "fragments"):
                pos = self._item(frame, tag, pos)
                continue
            if tag == ITEM_END and frame.end is None and not top:
                stack.pop()
                pos += 8
                continue
            if top and tag == frame.prev_tag and tag != PIXEL_DATA and tag != TRAILING_PADDING:
                # the same element twice (a writer bug seen in real palettes): readers take the
                # second, and so does the parse; ending the dataset here would drop the rest
                pass
            elif top and (tag <= frame.prev_tag or tag == TRAILING_PADDING):
                self.stopped_at_padding = tag == TRAILING_PADDING
                return pos  # the dataset ended; what follows is not part of it
            elif tag <= frame.prev_tag:
                raise self._fail(f"tags out of order at offset {pos}")
            frame.prev_tag = tag
            head = self._element(frame, tag, pos, limit, top)
            if head is None:
                return pos  # implausible header after the pixel data: trailing bytes
            pos = head

    def _container_limit(self) -> int:
        for frame in reversed(self.stack):
            if frame.end is not None:
                return frame.end
        return len(self.buf)

    def _count(self) -> None:
        self.elements += 1
        if self.elements > self.limits.max_elements:
            raise Blocked(BlockReason.LIMIT_EXCEEDED,
                          f"more than {self.limits.max_elements} data elements")

    def _element(self, frame: _Frame, tag: int, pos: int, limit: int, top: bool) -> int | None:
        """Check one element header; push a frame for sequences; return the next offset."""
        buf = self.buf
        if frame.implicit:
            vr = b""
            length = self.u32(buf, pos + 4)[0]
            head = 8
        else:
            vr = bytes(buf[pos + 4:pos + 6])
            if vr not in VALID_VRS:
                if top and self.pixel is not None:
                    return None
                raise self._fail(f"invalid VR at offset {pos}")
            if vr in LONG_VRS:
                if pos + 12 > limit:
                    raise self._fail(f"truncated element header at offset {pos}")
                length, head = self.u32(buf, pos + 8)[0], 12
            else:
                length, head = self.u16(buf, pos + 6)[0], 8
        self._count()
        value = pos + head
        if top and tag == PIXEL_DATA:
            self.pixel = PixelLocation(pos, value, length, vr)
            if self.allow_truncated_pixels:
                return None if length != UNDEFINED else self._open(frame, tag, vr, value, length, top)
        if length == UNDEFINED:
            return self._open(frame, tag, vr, value, length, top)
        if value + length > limit:
            if top and self.pixel is not None and tag != PIXEL_DATA:
                return None
            raise self._fail(f"element length {length} at offset {pos} exceeds remaining {limit - value} bytes")
        if vr == b"SQ" or (frame.implicit and _dictionary_vr(tag) == "SQ"):
            return self._open(frame, tag, vr, value, length, top)
        return value + length

    def _open(self, frame: _Frame, tag: int, vr: bytes, value: int, length: int, top: bool) -> int:
        """Enter a sequence (or encapsulated pixel data); check the depth limit."""
        if length == UNDEFINED and tag == PIXEL_DATA and not frame.implicit and vr in (b"OB", b"OW"):
            self.stack.append(_Frame("fragments", None, False, frame.depth))
            return value
        if length == UNDEFINED and not frame.implicit and vr not in (b"SQ", b"UN"):
            raise self._fail(f"undefined length on a {vr.decode('ascii', 'replace')} element")
        depth = frame.depth + 1
        if depth > self.limits.max_sequence_depth:
            raise Blocked(BlockReason.LIMIT_EXCEEDED,
                          f"sequence nesting deeper than {self.limits.max_sequence_depth}")
        self.max_depth = max(self.max_depth, depth)
        # A UN sequence of undefined length is encoded in Implicit VR Little Endian.
        implicit = frame.implicit or vr == b"UN"
        self.stack.append(_Frame("sequence", None if length == UNDEFINED else value + length,
                                 implicit, depth))
        return value

    def _item(self, frame: _Frame, tag: int, pos: int) -> int:
        length = self.u32(self.buf, pos + 4)[0]
        value = pos + 8
        if tag == SEQ_END and frame.end is None:
            self.stack.pop()
            return value
        if tag != ITEM:
            raise self._fail(f"expected an item at offset {pos}")
        self._count()
        limit = frame.end if frame.end is not None else self._container_limit()
        if frame.kind == "fragments":
            if length == UNDEFINED or value + length > limit:
                raise self._fail(f"pixel data fragment at offset {pos} overruns the object")
            return value + length
        if length == UNDEFINED:
            self.stack.append(_Frame("dataset", None, frame.implicit, frame.depth))
            return value
        if value + length > limit:
            raise self._fail(f"item length {length} at offset {pos} exceeds remaining {limit - value} bytes")
        self.stack.append(_Frame("dataset", value + length, frame.implicit, frame.depth))
        return value


def _dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""
