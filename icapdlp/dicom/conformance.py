"""Value checks against the VR and the dictionary, and Pixel Data against its geometry.

Why: a corrupted (or crafted) length makes one element swallow the elements
after it. The parser then reads their bytes (names, IDs, free text) as that
element's value, and if the profile keeps the element, that PHI is written
out again inside it. The prescan cannot see this: the lengths still fit their
container. What gives it away is that the value no longer fits its VR: a
Manufacturer (LO) of 600 characters, a Samples per Pixel (US, VM 1) holding
513 numbers, Pixel Data longer than Rows x Columns x frames.

Rules (PS3.5 6.2 maximum lengths, PS3.6 value multiplicities):

- a text value longer than its VR allows, or with more values than the
  dictionary's fixed (or bounded) VM, is removed;
- a binary numeric value (US, SS, UL, SL, FL, FD, AT, SV, UV) with more values
  than the dictionary VM allows is removed (a length that is not a multiple
  of the value size already fails to parse and blocks the object);
- a DS or IS value that is not a number (PS3.5 6.2 character repertoire) is
  removed: a Patient's Body Mass Index holding a name is a name;
- an explicit VR that the dictionary does not allow for the tag is removed
  (a sequence encoded as PN carries its items' bytes as text);
- any of these on a structural attribute the object cannot be rebuilt without
  (Rows, Columns, Bits Allocated, SOP Instance UID...) blocks the object;
- native Pixel Data longer than its geometry is cut to the geometry (the excess
  is trailing data, counted as a CDR finding); shorter blocks the object.

Every element is checked, not only kept ones: an element the profile replaces
or removes loses its value anyway, so removing it here changes nothing, and
one pass before de-identification is simpler to trust than a check at each
action. Values with no maximum (UT, UR, UC, OB, OW, UN, ...) are not checked.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.datadict import get_entry

from icapdlp.dicom.prescan import PIXEL_DATA
from icapdlp.dicom.reader import decoded_element
from icapdlp.report import CdrFinding, ObjectReport
from icapdlp.verdict import Blocked, BlockReason

#: PS3.5 Table 6.2-1 maximum characters per value. DA/DT/TM use the range-query
#: maxima (18/54/28) so no valid value is ever refused; PN is per component group.
MAX_CHARS = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 18, "DS": 16, "DT": 54, "IS": 12, "LO": 64,
    "LT": 10240, "PN": 64, "SH": 16, "ST": 1024, "TM": 28, "UI": 64,
}
#: VRs whose value is one text with no backslash-separated multiplicity
SINGLE_VALUE_TEXT = frozenset({"LT", "ST", "UT", "UR"})
#: binary numeric VRs (pydicom decodes them to numbers; one number per value)
BINARY_NUMERIC = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV"})
#: top-level attributes the rebuild depends on: a malformed one blocks the object
STRUCTURAL = frozenset({
    0x00080016, 0x00080018,  # SOP Class UID, SOP Instance UID
    0x00280002, 0x00280004, 0x00280006,  # Samples per Pixel, Photometric Int., Planar Config.
    0x00280008, 0x00280010, 0x00280011,  # Number of Frames, Rows, Columns
    0x00280100, 0x00280101, 0x00280102, 0x00280103,  # Bits Allocated/Stored, High Bit, Pixel Rep.
})
#: PS3.5 6.2 repertoires of the number strings (leading/trailing spaces allowed)
NUMBER_STRING = {
    "DS": re.compile(r" *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *"),
    "IS": re.compile(r" *[+-]?\d+ *"),
}


@lru_cache(maxsize=4096)
def _dictionary(tag: int) -> tuple[frozenset[str], int | None] | None:
    """(allowed VRs, maximum VM or None for unbounded) from the dictionary, or None."""
    try:
        vr, vm = get_entry(tag)[:2]
    except KeyError:
        return None
    vrs = frozenset(v.strip() for v in vr.split(" or "))
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", vm.strip())
    bound = int(match.group(2) or match.group(1)) if match else None
    return vrs, bound


def enforce_value_conformance(ds: Dataset, report: ObjectReport) -> None:
    """Remove (or block on) every element whose value cannot be what its VR says."""
    _walk(ds, report, top=True)


def _walk(ds: Dataset, report: ObjectReport, *, top: bool) -> None:
    for tag in list(ds.keys()):
        elem = decoded_element(ds, tag)
        tag = int(tag)
        if elem.VR == "SQ":
            for item in elem.value or ():
                _walk(item, report, top=False)
            continue
        if tag == PIXEL_DATA or not _violates(tag, elem):
            continue
        if top and tag in STRUCTURAL:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                          f"structural element ({tag >> 16:04X},{tag & 0xFFFF:04X}) does not fit its VR")
        del ds[tag]
        report.actions["X"] += 1
        report.cdr_findings[CdrFinding.LENGTH_INVALID] += 1


def _violates(tag: int, elem: DataElement) -> bool:
    vr = elem.VR
    entry = None if elem.tag.is_private else _dictionary(tag)
    if entry is not None and vr != "UN" and vr not in entry[0]:
        return True  # explicit VR the dictionary does not allow for this tag
    bound = entry[1] if entry is not None else None
    value = elem.value
    if value is None or value == "" or value == b"":
        return False
    values = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" \
        else [value]
    if vr in BINARY_NUMERIC:
        return bound is not None and len(values) > bound
    limit = MAX_CHARS.get(vr)
    if limit is None and vr not in SINGLE_VALUE_TEXT:
        return False  # OB/OW/UN/UC...: no maximum to check
    if bound is not None and vr not in SINGLE_VALUE_TEXT and len(values) > bound:
        return True
    if limit is None:
        return False
    for v in values:
        original = getattr(v, "original_string", None)
        if original is None and isinstance(v, (int, float)):
            continue  # a number from DICOM JSON, not bytes from the stream: nothing can hide in it
        text = str(original if original is not None else v)
        parts = text.split("=") if vr == "PN" else [text]
        if any(len(p.rstrip(" \0")) > limit for p in parts):
            return True
        number = NUMBER_STRING.get(vr)
        if number is not None and text.strip(" \0") and not number.fullmatch(text.strip("\0")):
            return True
    return False


#: photometric interpretations whose native data holds chroma once per two pixels
SUBSAMPLED_422 = frozenset({"YBR_FULL_422", "YBR_PARTIAL_422"})


def expected_pixel_bytes(ds: Dataset) -> int | None:
    """Native Pixel Data length the geometry implies (rounded up to even), or None if unknown."""
    try:
        rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        allocated = int(ds.get("BitsAllocated", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return None
    if min(rows, columns, samples, allocated, frames) <= 0:
        return None
    if samples == 3 and str(ds.get("PhotometricInterpretation", "")).strip() in SUBSAMPLED_422:
        samples = 2  # PS3.3 C.7.6.3.1.2: each pair of pixels is stored Y Y Cb Cr
    total = (rows * columns * samples * frames * allocated + 7) // 8
    return total + total % 2


#: how an encapsulated value (Item tag), a JPEG (SOI) or a JPEG 2000 codestream (SOC) starts: native
#: Pixel Data longer than its geometry that starts so is a compressed stream under a native transfer
#: syntax; cutting it would keep the stream's first bytes (its metadata segments) as "pixels"
COMPRESSED_STARTS = (b"\xfe\xff\x00\xe0", b"\xff\xd8\xff", b"\xff\x4f\xff\x51")


def enforce_pixel_geometry(ds: Dataset, encapsulated: bool, report: ObjectReport) -> None:
    """Cut native Pixel Data to its geometry; block when it is shorter or has no geometry."""
    if encapsulated or PIXEL_DATA not in ds:
        return
    raw = ds[PIXEL_DATA].value
    if not raw:
        return
    expected = expected_pixel_bytes(ds)
    if expected is None:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "Pixel Data without a usable geometry")
    if len(raw) < expected:
        raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                      f"Pixel Data of {len(raw)} bytes is shorter than its geometry ({expected})")
    if len(raw) > expected:
        if bytes(raw[:4]).startswith(COMPRESSED_STARTS):
            raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                          "native Pixel Data holds an encapsulated or compressed stream")
        if isinstance(raw, memoryview):
            ds[PIXEL_DATA]._value = raw[:expected]  # a view of the input stays a view: no copy
        else:
            ds[PIXEL_DATA].value = raw[:expected]
        report.cdr_findings[CdrFinding.TRAILING_BYTES] += 1
