"""Would a lenient DICOM reader find a dataset here? Structure, not order, decides.

:mod:`icapdlp.payload.sniff` recognises the bare datasets well-behaved tools
write (little endian, ascending tags, starting in groups 0000-0008) cheaply
enough for every preview. A receiver is less particular: pydicom with
``force=True`` and dcmtk read Explicit VR Big Endian, a dataset whose first
element is in group 0010, and elements out of order. A planted patient name in
such a body must not pass as "not DICOM", so before any body is passed as
opaque bytes this module walks its start in every byte order and VR form and
reports whether it decodes as a run of plausible data elements that includes
patient, study or series attributes - the ones that identify someone.

The test stays strong against non-DICOM: each element must be a tag the
dictionary knows (or a private or group-length tag), carry a valid VR in the
explicit forms, and have a length that fits; text never qualifies (element
headers of the identifying groups contain NUL bytes), and random bytes fail
within the first element or two.
"""

from __future__ import annotations

import re
import struct

from pydicom.datadict import dictionary_has_tag

#: elements decoded before the verdict; a real dataset reaches its patient module well within this
MAX_ELEMENTS = 64
#: plausible elements required before a dataset is believed
MIN_ELEMENTS = 3
#: groups whose attributes identify a patient or a study (identifying, per PS3.15's table)
IDENTIFYING_GROUPS = frozenset({0x0008, 0x0010, 0x0020, 0x0032, 0x0038, 0x0040})

_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV"
    .split()
)
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_UNDEFINED = 0xFFFFFFFF
#: (little endian, explicit VR): the four encodings a lenient reader tries
_FORMS = ((True, True), (True, False), (False, True), (False, False))


def looks_like_dataset(data: bytes | memoryview) -> bool:
    """True when some byte order and VR form decode ``data``'s start as an identifying dataset."""
    head = bytes(data[:256 * 1024])
    return any(_walk(head, little, explicit) for little, explicit in _FORMS)


#: where a dataset embedded in other bytes shows itself without a DICM marker, one expression per
#: byte order: the element header of Patient's Name, Patient ID, Patient's Birth Date, Other
#: Patient IDs or Other Patient Names in either VR form, or of any group-0010 element in the
#: explicit form (its VR spelled out): each identifies as well as the name does
_VR_ALTERNATIVES = b"|".join(sorted(_VRS))
_PATIENT_TAGS = (
    re.compile(rb"\x10\x00(?:[\x10\x20\x30]\x00|[\x00\x01]\x10|..(?:%s))" % _VR_ALTERNATIVES, re.DOTALL),
    re.compile(rb"\x00\x10(?:\x00[\x10\x20\x30]|\x10[\x00\x01]|..(?:%s))" % _VR_ALTERNATIVES, re.DOTALL),
)
#: candidate positions tried per expression; past this many (binary of small 16-bit samples repeats
#: a tag's bytes) the body cannot be cleared cheaply and is refused rather than passed unchecked
MAX_CANDIDATES = 8192


class TooManyCandidates(Exception):
    """More look-alikes of a patient element header than can be checked: not cleared."""


def _find(data: bytes, headers: re.Pattern[bytes], start: int) -> int:
    """Where the next of ``headers`` starts at or after ``start`` (overlapping ones too), or -1."""
    match = headers.search(data, start)
    return -1 if match is None else match.start()


def embedded_dataset_offset(data: bytes) -> int | None:
    """Offset of patient attributes that decode as a run of data elements anywhere in ``data``.

    A bare dataset behind other bytes (a prefix, a field of a MessagePack,
    CBOR or BSON document, inside a format icapdlp does not open) carries no
    magic; its patient module does: a patient element header
    (``_PATIENT_TAGS``), followed by more plausible elements, is found by
    searching for the header and walking from there. One search per byte
    order (two regular-expression passes cost half of one ``find`` per tag).
    """
    for tag in _PATIENT_TAGS:
        found, tried = _find(data, tag, 0), 0
        while found >= 0:
            if tried == MAX_CANDIDATES:
                raise TooManyCandidates
            window = data[found:found + 4096]
            if any(_walk(window, little, explicit) for little, explicit in _FORMS):
                return found
            found, tried = _find(data, tag, found + 1), tried + 1
    return None


def _plausible_tag(group: int, elem: int) -> bool:
    if group in (0xFFFE, 0xFFFF) or group < 0x0002:
        return False  # item delimiters and command groups never lead a stored dataset
    if elem == 0:
        return True  # group length
    if group & 1:
        return group > 0x0008  # private
    return dictionary_has_tag((group << 16) | elem)


def _walk(data: bytes, little: bool, explicit: bool) -> bool:
    order = "<" if little else ">"
    pos, count, identifying = 0, 0, False
    end = len(data)
    while count < MAX_ELEMENTS and end - pos >= 8:
        if count >= MIN_ELEMENTS and identifying:
            return True
        group, elem = struct.unpack_from(order + "HH", data, pos)
        if not _plausible_tag(group, elem):
            break  # a reader that got this far has already read the elements before it
        if explicit:
            vr = data[pos + 4:pos + 6]
            if vr not in _VRS:
                break
            if vr in _LONG_VRS:
                if end - pos < 12 or data[pos + 6:pos + 8] != b"\0\0":
                    break
                (length,) = struct.unpack_from(order + "I", data, pos + 8)
                header = 12
            else:
                (length,) = struct.unpack_from(order + "H", data, pos + 6)
                header = 8
        else:
            (length,) = struct.unpack_from(order + "I", data, pos + 4)
            header = 8
        count += 1
        identifying = identifying or group in IDENTIFYING_GROUPS
        if length == _UNDEFINED:
            break  # a sequence or encapsulated value: the elements before it decide
        pos += header + length
        if pos > end:
            break  # the value runs past what was read: judge on what decoded
    return count >= MIN_ELEMENTS and identifying
