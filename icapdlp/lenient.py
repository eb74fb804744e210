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

On the ground floor because two layers ask it: the payload walk (is this
opaque body a dataset?) and the DICOM rebuild (does a kept binary value hold
another object?).
"""

from __future__ import annotations

import re
import struct

from pydicom.datadict import dictionary_has_tag, dictionary_VR

#: elements decoded before the verdict; a real dataset reaches its patient module well within this
MAX_ELEMENTS = 64
#: plausible elements required before a dataset is believed
MIN_ELEMENTS = 3
#: elements the dictionary defines, in any groups, that make a dataset without an identifying group's
MIN_STRUCTURAL_ELEMENTS = 5
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


def looks_like_dataset(data: bytes) -> bool:
    """True when some byte order and VR form decode ``data``'s start as an identifying dataset.

    The walk reads element headers only, over the whole body: a first value
    of 300 KB (an OB before the patient module) is stepped over, as a
    lenient reader steps over it.
    """
    return any(_walk(data, little, explicit) for little, explicit in _FORMS)


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
            if any(_walk(data, little, explicit, found) for little, explicit in _FORMS):
                return found
            found, tried = _find(data, tag, found + 1), tried + 1
    return None


def _plausible_tag(group: int, elem: int, known_only: bool = True) -> bool:
    """A tag a stored dataset may hold: a dictionary tag, a group length, a private tag.

    ``known_only=False`` (after the first element): an even tag the dictionary
    does not define is plausible too; a lenient reader takes it as an
    element of its VR (explicit) or as UN, and goes on.
    """
    if group in (0xFFFE, 0xFFFF) or group == 0x0000:
        return False  # item delimiters and command groups never lead a stored dataset
    if elem == 0:
        return True  # group length
    if group & 1:
        return True  # private (pydicom reads the illegal groups 0001-0007 so too)
    return dictionary_has_tag((group << 16) | elem) or not known_only


#: items and their delimiters inside a value of undefined length (sequences, encapsulated pixel data)
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
#: sequences inside sequences walked before the verdict is left to what decoded before them
MAX_SEQUENCE_DEPTH = 8


def _element(data: bytes, pos: int, order: str, explicit: bool) -> tuple[int, int, int] | None:
    """(tag, value length, header size) of the element header at ``pos``, or None if it is no element."""
    end = len(data)
    group, elem = struct.unpack_from(order + "HH", data, pos)
    if explicit and group != 0xFFFE:
        vr = data[pos + 4:pos + 6]
        if vr not in _VRS:
            return None
        if vr in _LONG_VRS:
            if end - pos < 12 or data[pos + 6:pos + 8] != b"\0\0":
                return None
            return group << 16 | elem, struct.unpack_from(order + "I", data, pos + 8)[0], 12
        return group << 16 | elem, struct.unpack_from(order + "H", data, pos + 6)[0], 8
    return group << 16 | elem, struct.unpack_from(order + "I", data, pos + 4)[0], 8


def _after_undefined(data: bytes, pos: int, order: str, explicit: bool, depth: int) -> int | None:
    """Where a value of undefined length starting at ``pos`` ends (after its sequence delimiter), or None.

    A lenient reader walks such a value item by item (pydicom does, for a
    sequence or encapsulated pixel data first in a dataset); the walk goes
    on after it. None when the items do not decode or run past the bytes read.
    """
    while depth <= MAX_SEQUENCE_DEPTH and len(data) - pos >= 8:
        group, elem, length = struct.unpack_from(order + "HHI", data, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            return None
        if length != _UNDEFINED:
            pos += length
            continue
        while len(data) - pos >= 8:  # an item of undefined length: elements up to its delimiter
            element = _element(data, pos, order, explicit)
            if element is None:
                return None
            tag, length, header = element
            if tag == _ITEM_END:
                pos += 8
                break
            pos += header
            if length == _UNDEFINED:
                found = _after_undefined(data, pos, order, explicit, depth + 1)
                if found is None:
                    return None
                pos = found
            else:
                pos += length
        else:
            return None
    return None


def _names_a_person(group: int, elem: int) -> bool:
    """Whether the dictionary gives this tag the person-name VR (a reviewer, an operator, a
    content creator: PS3.15 removes them wherever their group stands)."""
    return "PN" in dictionary_VR((group << 16) | elem)


def _walk(data: bytes, little: bool, explicit: bool, start: int = 0) -> bool:
    """Whether elements decode from ``start``: three including an identifying group's, or
    MIN_STRUCTURAL_ELEMENTS the dictionary defines in any groups (the structure is the evidence:
    clinical-trial, pixel, annotation and review groups name people too)."""
    order = "<" if little else ">"
    pos, count, identifying, known = start, 0, False, 0
    end = len(data)
    while count < MAX_ELEMENTS and end - pos >= 8:
        if (count >= MIN_ELEMENTS and identifying) or known >= MIN_STRUCTURAL_ELEMENTS:
            return True
        group, elem = struct.unpack_from(order + "HH", data, pos)
        if not _plausible_tag(group, elem, known_only=count == 0):
            break  # a reader that got this far has already read the elements before it
        element = _element(data, pos, order, explicit)
        if element is None:
            break
        _, length, header = element
        count += 1
        defined = elem != 0 and not group & 1 and dictionary_has_tag((group << 16) | elem)
        known += defined
        identifying = identifying or group in IDENTIFYING_GROUPS or (defined and _names_a_person(group, elem))
        if length == _UNDEFINED:  # a sequence or encapsulated value: walked to its delimiter
            after = _after_undefined(data, pos + header, order, explicit, 0)
            if after is None:
                break  # (the elements before it decide)
            pos = after
            continue
        pos += header + length
        if pos > end:
            break  # the value runs past what was read: judge on what decoded
    return (count >= MIN_ELEMENTS and identifying) or known >= MIN_STRUCTURAL_ELEMENTS
