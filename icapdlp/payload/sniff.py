"""Is this byte string DICOM? Decided from its first bytes, cheaply and within limits.

Two forms exist on the wire: a Part-10 file (any 128-byte preamble, then
``DICM``) and a bare dataset as DIMSE tools write it (no preamble, no magic).
The bare form is recognised by structure: the first few data elements must
decode as known public tags in ascending order, with a valid VR and lengths
that fit. That is a strong test (random or text bytes fail it on the first
element), and it reads at most a few hundred bytes, so it is safe to run on
every preview.
"""

from __future__ import annotations

import enum
import struct

from pydicom.datadict import dictionary_has_tag, dictionary_VR

PART10_MAGIC_OFFSET = 128
PART10_MAGIC = b"DICM"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive

#: elements that must decode cleanly before a bare dataset is believed; real
#: datasets start with a run of (0008,xxxx) elements, so 3 costs nothing
BARE_MIN_ELEMENTS = 3
#: first groups a bare dataset may start with: command, file meta, directory, identifying
BARE_FIRST_GROUPS = frozenset({0x0000, 0x0002, 0x0004, 0x0008})
#: never look further than this into a buffer when sniffing (keeps sniffing O(1))
SNIFF_WINDOW = 64 * 1024

_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
                       b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_UNDEFINED = 0xFFFFFFFF


class Sniff(enum.Enum):
    DICOM = "dicom"
    NOT_DICOM = "not-dicom"
    UNDECIDED = "undecided"  # too few bytes to tell


def is_part10(data: bytes) -> bool:
    magic = data[PART10_MAGIC_OFFSET:PART10_MAGIC_OFFSET + 4]
    return len(data) >= PART10_MAGIC_OFFSET + 4 and magic == PART10_MAGIC


def looks_like_zip(data: bytes) -> bool:
    return data[:4] in ZIP_MAGICS


def sniff_dicom(data: bytes, complete: bool) -> Sniff:
    """DICOM, not DICOM, or undecided (only when ``complete`` is false and bytes are short)."""
    if is_part10(data):
        return Sniff.DICOM
    window_complete = complete or len(data) > SNIFF_WINDOW  # never look past the window
    bare = _bare_verdict(bytes(data[:SNIFF_WINDOW]), window_complete)
    if bare is Sniff.DICOM:
        return Sniff.DICOM
    if not complete and (len(data) < PART10_MAGIC_OFFSET + 4 or bare is Sniff.UNDECIDED):
        return Sniff.UNDECIDED  # a Part-10 preamble may be anything: wait for the magic
    return Sniff.NOT_DICOM


def _bare_verdict(data: bytes, complete: bool) -> Sniff:
    verdicts = [_walk(data, complete, explicit) for explicit in (True, False)]
    if Sniff.DICOM in verdicts:
        return Sniff.DICOM
    if Sniff.UNDECIDED in verdicts:
        return Sniff.UNDECIDED
    return Sniff.NOT_DICOM


def _walk(data: bytes, complete: bool, explicit: bool) -> Sniff:
    """Decode elements from the start in one little-endian syntax."""
    pos = 0
    previous = -1
    count = 0
    end = len(data)
    while count < BARE_MIN_ELEMENTS:
        if pos == end and complete and count > 0:
            return Sniff.DICOM  # a tiny but wholly well-formed dataset
        if end - pos < 8:
            return Sniff.NOT_DICOM if complete else Sniff.UNDECIDED
        group, elem = struct.unpack_from("<HH", data, pos)
        tag = (group << 16) | elem
        if tag <= previous or (count == 0 and group not in BARE_FIRST_GROUPS):
            return Sniff.NOT_DICOM
        if not (elem == 0 or dictionary_has_tag(tag)):
            return Sniff.NOT_DICOM
        if explicit:
            vr = data[pos + 4:pos + 6]
            if vr in _SHORT_VRS:
                (length,) = struct.unpack_from("<H", data, pos + 6)
                header = 8
            elif vr in _LONG_VRS:
                if end - pos < 12:
                    return Sniff.NOT_DICOM if complete else Sniff.UNDECIDED
                if data[pos + 6:pos + 8] != b"\0\0":
                    return Sniff.NOT_DICOM
                (length,) = struct.unpack_from("<I", data, pos + 8)
                header = 12
            else:
                return Sniff.NOT_DICOM
        else:
            (length,) = struct.unpack_from("<I", data, pos + 4)
            header = 8
            vr = b""
        if length == _UNDEFINED:
            is_sequence = vr in (b"SQ", b"UN") or (not explicit and _dictionary_vr(tag) == "SQ")
            if not is_sequence:
                return Sniff.NOT_DICOM
            return Sniff.DICOM if count >= 1 else Sniff.NOT_DICOM  # cannot skip a nested item cheaply
        if length % 2:
            return Sniff.NOT_DICOM
        pos += header + length
        if pos > end and complete:
            return Sniff.NOT_DICOM
        count += 1
        previous = tag
        if pos > end:
            # the value runs past what we have: judge on the elements seen so far
            return Sniff.DICOM if count >= 2 else Sniff.UNDECIDED
    return Sniff.DICOM


def _dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""
