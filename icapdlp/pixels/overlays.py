"""Overlay planes under the Clean Graphics option: removed whole, and counted.

Why removal: PS3.15 E.3.3 (Clean Graphics) asks that graphics which may carry
identifying information be cleaned. An overlay bitmap (60xx,3000) can hold
burned-in text (a name, an ID, a date) that we cannot verify is gone short of
OCR on a 1-bit plane, and the plane's text attributes (Overlay Description,
Label, Comments) are free text. Removing the plane takes away everything it
could carry and leaves nothing to verify, so removal is a valid (the
strictest) "clean": the image itself is unchanged and still correct, it only
loses an annotation layer. Bits above Bits Stored in the pixel data (embedded
overlays) are cleared separately when the pixels are written back.

The whole repeating group 60xx (even xx, 6000-601E) goes, not only Overlay
Data, Comments, Description and Label: an Overlay Plane module left without
its Type 1 Overlay Data would be an invalid object, and its remaining
attributes (origin, rows, bit position) have no use without the bitmap.
"""

from __future__ import annotations

from pydicom import Dataset

from icapdlp.report import CdrFinding, ObjectReport

#: overlay groups are the even groups 6000-601E (PS3.5 7.6 repeating groups)
OVERLAY_GROUP_MASK, OVERLAY_GROUP_BASE = 0xFFE1, 0x6000


def is_overlay_tag(tag: int) -> bool:
    """Whether ``tag`` belongs to an overlay plane group (60xx, even xx)."""
    return (tag >> 16) & OVERLAY_GROUP_MASK == OVERLAY_GROUP_BASE


def clean_overlays(ds: Dataset, report: ObjectReport, _cleaner: object | None = None) -> int:
    """Remove every overlay plane of ``ds`` (top level); return the number of planes removed.

    Each removed element is counted as action X and each removed plane as an
    ``overlay-removed`` CDR finding. The calling pixel cleaner passes itself as
    ``_cleaner``; removal needs nothing from it.
    """
    tags = [int(tag) for tag in ds.keys() if is_overlay_tag(int(tag))]
    planes = {tag >> 16 for tag in tags}
    if not tags:
        return 0
    for tag in tags:
        del ds[tag]
    report.actions["X"] += len(tags)
    report.cdr_findings[CdrFinding.OVERLAY_REMOVED] += len(planes)
    return len(planes)
