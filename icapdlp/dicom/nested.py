"""Block an object whose kept binary values hold another DICOM object (red-team F32).

Why: the header rules keep OB/OW/OF/UN values the table does not list
(Waveform Data, Spectroscopy Data...) and Pixel Data, and CDR copies them as
they are. A whole Part-10 file (or a bare dataset a lenient reader such as
pydicom ``force=True`` takes) stored in one of them leaves with the rewritten
object: names and IDs in clear. It cannot be de-identified in place (its
length, offsets and meaning belong to the outer attribute), so it is blocked.

Two looks: a ``DICM`` marker anywhere in the value followed by File Meta or
by a dataset (a byte search; about 45 ms for the 50 MB of a 512x512x100 CT),
and :mod:`icapdlp.lenient`'s walk for a dataset at the value's start.
Not done: ``lenient.embedded_dataset_offset`` (patient elements anywhere in a
value) - 16-bit samples look like element headers often enough that it found
"datasets" in a real ultrasound palette LUT; a bare dataset (no ``DICM``)
behind other samples in a kept value is therefore not found.
"""

from __future__ import annotations

import re

from collections.abc import Iterator

from pydicom import Dataset

from icapdlp import lenient
from icapdlp.verdict import Blocked, BlockReason

#: binary VRs whose values CDR copies unread
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
#: Pixel Data, Float and Double Float Pixel Data: large, and samples look like anything
PIXEL_VALUE_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_DICM = re.compile(rb"DICM")
#: bytes of a value the lenient walk reads from a start (it needs bytes, so this is a copy): it
#: steps over values, so a first value of up to about this size before the patient module is
#: covered; a small fixed copy keeps a large object's peak memory where it was
START_WINDOW = 256 << 10
#: ``DICM`` markers looked behind (a smaller window each), past which the value is refused
MAX_MARKERS, MARKER_WINDOW = 64, 1 << 16
_DETAIL = "a binary value holds a DICOM object (it cannot be rewritten in place)"


def block_nested_objects(ds: Dataset) -> None:
    """Raise Blocked if a binary value at any depth of ``ds`` holds a Part-10 file or a dataset."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                block_nested_objects(item)
            continue
        if elem.VR not in BINARY_VRS and int(elem.tag) not in PIXEL_VALUE_TAGS:
            continue
        value = elem.value
        if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) < 8:
            continue
        if isinstance(value, memoryview):
            value = value.cast("B")
        if holds_part10(value) or lenient.looks_like_dataset(bytes(value[:START_WINDOW])):
            raise Blocked(BlockReason.UNINSPECTABLE, _DETAIL)


def check_streamed_value(chunks) -> Iterator[bytes]:
    """Yield ``chunks`` (a value copied piece by piece, e.g. spliced Pixel Data); raise Blocked
    as :func:`block_nested_objects` would for the whole value. Each piece is searched with the
    end of the one before it, so a marker across a boundary is seen with its window."""
    carry, first = b"", True
    for chunk in chunks:
        joined = carry + chunk
        if holds_part10(joined) or first and lenient.looks_like_dataset(bytes(joined[:START_WINDOW])):
            raise Blocked(BlockReason.UNINSPECTABLE, _DETAIL)
        carry, first = joined[-(MARKER_WINDOW + 8):], False
        yield chunk


def holds_part10(value) -> bool:
    """A ``DICM`` marker followed by File Meta or by a dataset (pydicom reads either after it)."""
    for count, hit in enumerate(_DICM.finditer(value)):
        if count == MAX_MARKERS:
            return True  # no image or waveform repeats the marker this often: not cleared
        after = hit.end()
        if bytes(value[after:after + 2]) in (b"\x02\x00", b"\x00\x02"):
            return True
        if lenient.looks_like_dataset(bytes(value[after:after + MARKER_WINDOW])):
            return True
    return False
