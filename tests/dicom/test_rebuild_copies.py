"""The pixel fast paths of the rebuild write exactly what pydicom would write.

Why: ``encode`` appends native Pixel Data itself and ``zero_bits_above_high_bit``
masks a bytearray in place, to avoid copies of the largest value; both must
give the same bytes as the plain pydicom path, or the rebuild would change images.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
from pydicom.filewriter import dcmwrite

from icapdlp.dicom.rebuild import encode, new_file_meta, zero_bits_above_high_bit
from icapdlp.verdict import Blocked, BlockReason
from tests.support.synthetic import HIGH_BIT_PLANT, make_ct, make_multiframe

TS = {"explicit-le": "1.2.840.10008.1.2.1", "implicit-le": "1.2.840.10008.1.2"}


def _plain(ds, ts: str) -> bytes:
    ds = copy.deepcopy(ds)
    ds.file_meta = new_file_meta(ds, ts)
    ds.preamble = bytes(128)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("ts", sorted(TS))
def test_encode_appending_pixels_equals_pydicom(ts):
    ds = copy.deepcopy(make_multiframe(4, frames=3, rows=16, columns=16, signatures=False).dataset)
    assert encode(copy.deepcopy(ds), TS[ts]) == _plain(ds, TS[ts])


def test_encode_with_an_element_after_pixel_data_equals_pydicom():
    ds = copy.deepcopy(make_ct(4, signatures=False).dataset)
    ds.add_new(0x7FE00020, "OW", b"\x01\x02")  # Coefficients SDVN (retired): after Pixel Data
    assert encode(copy.deepcopy(ds), TS["explicit-le"]) == _plain(ds, TS["explicit-le"])


@pytest.mark.parametrize("in_place", [False, True])
def test_high_bits_zeroed_in_place_equal_a_mask(in_place):
    ds = copy.deepcopy(make_ct(4, rows=32, columns=32, bits_stored=12, signatures=False).dataset)
    pixels = np.frombuffer(ds.PixelData, "<u2")
    assert np.any(pixels & HIGH_BIT_PLANT)
    expected = (pixels & 0x0FFF).tobytes()
    assert zero_bits_above_high_bit(ds, False, in_place=in_place)
    assert bytes(ds["PixelData"].value) == expected
    assert not zero_bits_above_high_bit(ds, False, in_place=in_place)  # clean now: nothing to do
    assert encode(ds, TS["explicit-le"]).endswith(expected)


def test_pixel_data_read_as_numbers_is_blocked_not_left_unmasked():
    """Pixel Data that a non-OB/OW VR turned into numbers cannot have its high bits checked: block."""
    ds = copy.deepcopy(make_ct(4, rows=8, columns=8, bits_stored=12, signatures=False).dataset)
    ds["PixelData"]._value = list(np.frombuffer(ds.PixelData, "<u2"))
    with pytest.raises(Blocked) as info:
        zero_bits_above_high_bit(ds, False)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM
