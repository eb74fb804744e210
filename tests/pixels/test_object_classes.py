"""Which objects are OCR'd, and objects of every sample size are rewritten, not blocked (issue 13).

Real third-party files (pydicom's own test files): an RT Dose with 32-bit samples, a Segmentation
with 1-bit samples, native YBR_FULL_422, 32-bit RGB, through the whole pipeline with Clean Pixel
Data on. OCR is a recording stand-in: what is asserted is who gets OCR and what gets written.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from icapdlp.config import Settings
from icapdlp.dicom.options import ProfileOptions
from icapdlp.dicom.pipeline import deidentify_bytes
from icapdlp.pixels import build_cleaner
from icapdlp.pixels.geometry import Box
from icapdlp.pixels.ocr import OcrWord
from icapdlp.pixels.policy import TEXT_FREE_CLASSES
from tests.dicom.helpers import config
from tests.pixels.conftest import KeywordNer


class RecordingOcr:
    """Reads one 'word' at a fixed place of every frame it is given, and counts the frames."""

    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, grey8, language="eng"):
        self.frames += 1
        assert grey8.dtype == np.uint8 and grey8.ndim == 2
        return [OcrWord("Okafor", Box(1, 1, 9, 5), 95.0, (0, 0, 0, 0))]


def _run(name: str):
    data = open(get_testdata_file(name), "rb").read()
    ocr = RecordingOcr()
    cleaner = build_cleaner(Settings())
    cleaner.read_words = ocr
    cleaner.ner = KeywordNer({"Okafor": "PERSON"})
    result = deidentify_bytes(data, config(ProfileOptions(clean_pixel_data=True)), cleaner)
    return pydicom.dcmread(io.BytesIO(result.data)), result.report, ocr


@pytest.mark.parametrize("name", ["rtdose.dcm", "liver.dcm"])
def test_classes_without_burned_in_text_are_rewritten_without_ocr(name):
    original = pydicom.dcmread(get_testdata_file(name))
    assert str(original.SOPClassUID) in TEXT_FREE_CLASSES
    out, report, ocr = _run(name)
    assert ocr.frames == 0 and not report.pixels_cleaned
    assert report.frames_skipped == int(original.get("NumberOfFrames", 1))
    assert out.PixelData == original.PixelData  # the dose grid / label map is untouched
    assert out.PatientName != original.PatientName  # and the header is de-identified


@pytest.mark.parametrize("name, bits, photometric", [
    ("SC_rgb_32bit.dcm", 32, "RGB"),
    ("SC_rgb_32bit_2frame.dcm", 32, "RGB"),
    ("SC_ybr_full_422_uncompressed.dcm", 8, "YBR_FULL"),
])
def test_deep_and_subsampled_colour_is_cleaned_and_written_back(name, bits, photometric):
    original = pydicom.dcmread(get_testdata_file(name))
    out, report, ocr = _run(name)
    frames = int(original.get("NumberOfFrames", 1))
    assert report.pixels_cleaned and ocr.frames >= 1
    assert out.BitsAllocated == bits and out.PhotometricInterpretation == photometric
    arr = out.pixel_array.reshape(frames, out.Rows, out.Columns, 3)
    before = original.pixel_array.reshape(frames, original.Rows, original.Columns, 3)
    assert arr.dtype.itemsize * 8 == bits
    if photometric == "RGB":
        assert (arr[:, 1:5, 1:9] == 0).all()  # the planted word's box, padded, is black on every frame
        outside = np.ones(arr.shape[1:3], bool)
        outside[:16, :16] = False
        assert np.array_equal(arr[:, outside], before[:, outside])
    else:
        assert (arr[0, 1:5, 1:9, 0] == 0).all()  # Y = 0 in the box
