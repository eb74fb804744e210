"""Writing cleaned frames back: lossless JPEG 2000 keeps its colour transform and its size."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless

from icapdlp.pixels.encode import write_back
from icapdlp.pixels.frames import decode


@pytest.mark.parametrize("name", ["US1_J2KR.dcm", "GDCMJ2K_TextGBR.dcm"])
def test_lossless_j2k_with_the_reversible_colour_transform_stays_ybr_rct(name):
    path = get_testdata_file(name)
    if path is None:
        pytest.skip("pydicom-data is not installed")  # requirements/dev.txt pins it
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "YBR_RCT"
    original_size, original_pixels = len(ds.PixelData), ds.pixel_array
    decoded = decode(ds, 1 << 30)
    decoded.frames[0, :4, :4] = 0  # a redaction
    original_pixels[:4, :4] = 0
    assert write_back(ds, decoded) == JPEG2000Lossless
    assert ds.PhotometricInterpretation == "YBR_RCT"  # RGB would name a stream coded without the transform
    assert len(ds.PixelData) <= original_size * 1.1  # without the transform: 2.2 times larger
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    assert (pydicom.dcmread(buffer).pixel_array == original_pixels).all()  # lossless, decodes as the input
