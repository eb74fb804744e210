"""Overlays have one owner, the DICOM layer: the same output with pixel cleaning on or off.

Before, the header walker kept an overlay plane with its bitmap blanked while the
pixel cleaner removed the whole plane, so the same object and policy gave two
outputs depending on whether OCR ran (and the cleaner read the global profile,
not the service's). Every overlay form is covered: 60xx planes at the top level
and inside sequence items, a multi-frame plane, an embedded plane (Overlay Bits
Allocated 16: the bitmap lives in Pixel Data's high bits), and high bits set
above High Bit in every frame, also when High Bit is not Bits Stored - 1.

The pixel cleaner here is the real one with canned OCR (it reads nothing) and a
keyword NER, so pixel cleaning runs its whole path (decode, write back) quickly.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
import pytest
from pydicom import Dataset, Sequence

from icapdlp.dicom.highbits import unused_bits_mask
from icapdlp.dicom.options import ProfileOptions
from icapdlp.dicom.pipeline import deidentify_bytes
from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.options import PixelOptions
from tests.dicom.helpers import config
from tests.pixels.conftest import KeywordNer
from tests.support.synthetic import HIGH_BIT_PLANT, make_ct, make_multiframe, to_bytes

#: what pixel cleaning adds on its own (PS3.15 markers); everything else must be identical
PIXEL_MARKERS = ("BurnedInAnnotation", "DeidentificationMethod", "DeidentificationMethodCodeSequence")


def _reads_nothing(grey8, language="eng"):
    return []


def _cleaner() -> BurnedInTextCleaner:
    return BurnedInTextCleaner(PixelOptions(), 1 << 30, ner=KeywordNer({}), read_words=_reads_nothing)


def _run(data: bytes, *, clean_graphics: bool, ocr: bool):
    cfg = config(ProfileOptions(clean_pixel_data=ocr, clean_graphics=clean_graphics))
    result = deidentify_bytes(data, cfg, _cleaner() if ocr else None)
    assert result.report.pixels_cleaned == ocr  # the cleaner really ran (or really did not)
    return result, pydicom.dcmread(io.BytesIO(result.data))


def _without_pixel_markers(ds: Dataset) -> Dataset:
    ds = copy.deepcopy(ds)
    for keyword in PIXEL_MARKERS:
        if keyword in ds:
            delattr(ds, keyword)
    return ds


def _overlay_tags(ds: Dataset) -> list[int]:
    """Every 60xx (even xx) element, at every depth."""
    found = []
    for elem in ds.iterall():
        if (int(elem.tag) >> 16) & 0xFFE1 == 0x6000:
            found.append(int(elem.tag))
    return found


def _every_form(seed: int) -> bytes:
    """A multi-frame object carrying every overlay form at once."""
    ds = copy.deepcopy(make_multiframe(seed, frames=3, rows=16, columns=16).dataset)
    ds.add_new(0x60000015, "IS", 3)  # Number of Frames in Overlay: the 6000 plane covers all frames
    ds.add_new(0x60000051, "US", 1)  # Image Frame Origin
    ds[0x60003000].value = b"\xA5" * (16 * 16 * 3 // 8)
    ds.add_new(0x60020010, "US", 16)  # an embedded plane: bitmap in bit 15 of Pixel Data
    ds.add_new(0x60020011, "US", 16)
    ds.add_new(0x60020040, "CS", "G")
    ds.add_new(0x60020050, "SS", [1, 1])
    ds.add_new(0x60020100, "US", 16)  # Overlay Bits Allocated
    ds.add_new(0x60020102, "US", 15)  # Overlay Bit Position
    ds.add_new(0x601E1500, "LO", "LAST PLANE LABEL")
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    item.add_new(0x60040022, "LO", "PLANE IN AN ITEM")
    ds.ReferencedImageSequence = Sequence([item])
    return to_bytes(ds)


@pytest.mark.parametrize("clean_graphics", [True, False], ids=["clean-graphics", "basic"])
@pytest.mark.parametrize("make", [lambda: make_ct(21).data, lambda: _every_form(22)], ids=["ct", "every-form"])
def test_same_output_with_pixel_cleaning_on_or_off(make, clean_graphics):
    data = make()
    on, out_on = _run(data, clean_graphics=clean_graphics, ocr=True)
    off, out_off = _run(data, clean_graphics=clean_graphics, ocr=False)
    assert _overlay_tags(out_on) == _overlay_tags(out_off) == []
    assert out_on.PixelData == out_off.PixelData
    assert _without_pixel_markers(out_on) == _without_pixel_markers(out_off)
    assert on.report.cdr_findings == off.report.cdr_findings
    assert on.report.cdr_findings["pixel-high-bits"] == 1  # the synthetic pixels carry HIGH_BIT_PLANT
    assert on.report.actions == off.report.actions


def test_clean_graphics_removes_every_plane_whole_counts_each_and_keeps_cleaned_curves():
    data = _every_form(23)
    source = pydicom.dcmread(io.BytesIO(data))
    result, out = _run(data, clean_graphics=True, ocr=False)
    assert _overlay_tags(out) == []
    assert result.report.cdr_findings["overlay-removed"] == 4  # 6000, 6002, 601E and the one in the item
    for text in (str(source[0x60000022].value), str(source[0x60004000].value), "LAST PLANE LABEL",
                 "PLANE IN AN ITEM"):
        assert text.encode() not in result.data
    assert bytes(source[0x60003000].value) not in result.data
    assert 0x50002500 in out  # curves are cleaned, not removed, under Clean Graphics
    assert "113103" in [item.CodeValue for item in out.DeidentificationMethodCodeSequence]


def test_without_clean_graphics_planes_are_removed_by_the_table_and_not_claimed():
    result, out = _run(_every_form(24), clean_graphics=False, ocr=True)
    assert _overlay_tags(out) == [] and 0x50002500 not in out
    assert result.report.cdr_findings["overlay-removed"] == 0
    assert "113103" not in [item.CodeValue for item in out.DeidentificationMethodCodeSequence]


@pytest.mark.parametrize("ocr", [True, False], ids=["ocr", "no-ocr"])
def test_high_bits_are_zeroed_in_every_frame(ocr):
    data = _every_form(25)
    source = pydicom.dcmread(io.BytesIO(data))
    assert np.frombuffer(source.PixelData, "<u2").reshape(3, -1).__and__(HIGH_BIT_PLANT).any(axis=1).all()
    _, out = _run(data, clean_graphics=True, ocr=ocr)
    pixels = np.frombuffer(out.PixelData, "<u2")
    _, used = unused_bits_mask(16, int(out.BitsStored), int(out.HighBit))
    assert not (pixels & ~np.uint16(used)).any()
    assert np.array_equal(pixels, np.frombuffer(source.PixelData, "<u2") & np.uint16(used))


@pytest.mark.parametrize("ocr", [True, False], ids=["ocr", "no-ocr"])
def test_high_bit_not_at_bits_stored_minus_one_keeps_the_image(ocr):
    """12 bits stored in bits 4-15 (High Bit 15): the unused bits are the LOW four.

    The pixel cleaner used to mask to the low 12 bits whatever High Bit said,
    which wiped the image's top bits when OCR ran and not when it did not.
    """
    ds = copy.deepcopy(make_ct(26).dataset)
    values = (np.arange(16 * 16, dtype=np.uint16) * 16 % 4096) << 4 | 0x000F
    ds.HighBit = 15
    ds.PixelData = values.astype("<u2").tobytes()
    _, out = _run(to_bytes(ds), clean_graphics=False, ocr=ocr)
    assert np.array_equal(np.frombuffer(out.PixelData, "<u2"), values & 0xFFF0)
