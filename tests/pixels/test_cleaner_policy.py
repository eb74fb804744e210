"""Policy, limits and fail-closed behaviour of the cleaner; review output."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import RLELossless

from icapdlp.config import Settings
from icapdlp.pixels import build_cleaner, engine_status
from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.frames import decoded_size
from icapdlp.pixels.options import PixelOptions
from icapdlp.report import ObjectReport
from icapdlp.verdict import Blocked, BlockReason
from tests.pixels.conftest import KeywordNer, truth_reader
from tests.support.burned_in import make_case


def cleaner(case, options=PixelOptions(), limit=1 << 30, **kw):
    return BurnedInTextCleaner(options, limit, ner=KeywordNer({}), read_words=truth_reader(case.truth), **kw)


@pytest.fixture(scope="module")
def case():
    return make_case(21, rows=160, cols=240, font_px=(10, 16))


def test_policy_modes(case):
    ds = case.dataset
    assert cleaner(case).needs_cleaning(ds)
    ds.BurnedInAnnotation = "NO"
    assert not cleaner(case, PixelOptions(ocr_when="unless-burned-in-no")).needs_cleaning(ds)
    ds.BurnedInAnnotation = "YES"
    assert cleaner(case, PixelOptions(ocr_when="unless-burned-in-no")).needs_cleaning(ds)
    listed = PixelOptions(ocr_when="listed", modalities=("CT",), image_types=("SECONDARY",))
    assert not cleaner(case, listed).needs_cleaning(ds)
    ds.ImageType = ["DERIVED", "SECONDARY"]
    assert cleaner(case, listed).needs_cleaning(ds)
    assert cleaner(case, replace(listed, image_types=(), sop_classes=(str(ds.SOPClassUID),))).needs_cleaning(ds)
    del ds.ImageType


def test_header_without_pixel_data_is_judged_from_rows_and_columns(case):
    header = copy.deepcopy(case.dataset)
    del header.PixelData
    assert cleaner(case).needs_cleaning(header)
    assert cleaner(case).skipped_frames(header) == 0
    del header.Rows
    assert not cleaner(case).needs_cleaning(header)


def test_skipped_frames_are_counted_for_the_pipeline(case):
    ds = copy.deepcopy(case.dataset)
    ds.BurnedInAnnotation = "NO"
    ds.NumberOfFrames = 1
    assert cleaner(case, PixelOptions(ocr_when="unless-burned-in-no")).skipped_frames(ds) == 1


def test_all_text_modalities_redact_every_word(case):
    ds = copy.deepcopy(case.dataset)
    report = ObjectReport()
    cleaner(case, PixelOptions(redact_all_text_modalities=("US",))).clean(ds, report)
    assert report.boxes_by_source["all-text"] > 0 and report.boxes_by_source["ner"] == 0


def test_pixel_limit_at_and_one_past(case):
    size = decoded_size(case.dataset)
    cleaner(case, limit=size).clean(copy.deepcopy(case.dataset), ObjectReport())
    with pytest.raises(Blocked) as info:
        cleaner(case, limit=size - 1).clean(copy.deepcopy(case.dataset), ObjectReport())
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_corrupt_compressed_frame_blocks():
    bad = make_case(3, rows=64, cols=64, transfer_syntax=RLELossless, font_px=(8, 10))
    ds = bad.dataset
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([b"\x01\x00\x00\x00" + b"\xff" * 60])
    with pytest.raises(Blocked) as info:
        cleaner(bad).clean(ds, ObjectReport())
    assert info.value.reason is BlockReason.PIXEL_CLEANING_IMPOSSIBLE
    assert bad.header["PatientID"] not in str(info.value)


def test_unsupported_bits_and_photometric_block(case):
    ds = copy.deepcopy(case.dataset)
    ds.BitsAllocated = 24  # 32 is decoded since issue 13 (tests/pixels/test_object_classes.py)
    with pytest.raises(Blocked):
        cleaner(case).clean(ds, ObjectReport())
    ds = copy.deepcopy(case.dataset)
    ds.PhotometricInterpretation = "CMYK"
    with pytest.raises(Blocked):
        cleaner(case).clean(ds, ObjectReport())


def test_missing_tesseract_program_blocks_with_the_pytesseract_engine(case, monkeypatch):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    settings = Settings(pixels=PixelOptions(ocr_engine="pytesseract"))
    with pytest.raises(Blocked) as info:
        build_cleaner(settings).clean(copy.deepcopy(case.dataset), ObjectReport())
    assert info.value.reason is BlockReason.PIXEL_CLEANING_IMPOSSIBLE
    assert engine_status(settings)["tesseract"] is False
    # the library engine does not need the program: it never falls back, nor is it blocked by it
    assert engine_status(Settings())["tesseract"] is True


def test_missing_tesseract_library_blocks_with_the_library_engine(case):
    settings = Settings(pixels=PixelOptions(tesseract_library="/nonexistent/libtesseract.so.5"))
    with pytest.raises(Blocked) as info:
        build_cleaner(settings).clean(copy.deepcopy(case.dataset), ObjectReport())
    assert info.value.reason is BlockReason.PIXEL_CLEANING_IMPOSSIBLE
    assert engine_status(settings)["tesseract"] is False


def test_missing_model_blocks_and_reports_not_ready(case):
    settings = Settings(pixels=PixelOptions(ner_model="no_such_model_xyz"))
    assert engine_status(settings) == {"tesseract": True, "ner_model": False}
    c = build_cleaner(settings)
    c.read_words = truth_reader(case.truth)
    with pytest.raises(Blocked) as info:
        c.clean(copy.deepcopy(case.dataset), ObjectReport())
    assert info.value.reason is BlockReason.PIXEL_CLEANING_IMPOSSIBLE


def test_review_writes_side_by_side_png_and_index(case, tmp_path: Path):
    from PIL import Image

    ds = copy.deepcopy(case.dataset)
    cleaner(case, review_dir=str(tmp_path)).clean(ds, ObjectReport())
    pngs = list(tmp_path.glob("*.png"))
    assert len(pngs) == 1
    img = Image.open(pngs[0])
    assert img.size[0] > 2 * 240 and img.size[1] == 160
    arr = np.asarray(img.convert("RGB"))
    assert (arr[..., 0] == 255).any()  # header-match boxes outlined in red
    index = (tmp_path / "index.html").read_text()
    assert pngs[0].name in index
    assert case.header["PatientID"] not in index and case.header["last"] not in pngs[0].name


def test_frames_the_policy_skips_are_counted_by_the_pipeline():
    from icapdlp.dicom.options import DicomLimits, ProfileOptions
    from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
    from tests.support.synthetic import make_multiframe, to_bytes

    obj = make_multiframe(3, frames=3, rows=8, columns=8)
    ds = copy.deepcopy(obj.dataset)
    ds.BurnedInAnnotation = "NO"
    skipping = BurnedInTextCleaner(PixelOptions(ocr_when="unless-burned-in-no"), 1 << 30, ner=KeywordNer({}))
    result = deidentify_bytes(to_bytes(ds), PipelineConfig(ProfileOptions(), DicomLimits(), bytes(range(32))),
                              skipping)
    assert result.report.frames_skipped == 3
    assert result.report.frames_ocr == 0 and not result.report.pixels_cleaned
