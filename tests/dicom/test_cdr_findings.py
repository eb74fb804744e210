"""Every CDR finding kind and every pipeline stage is emitted by the real pipeline.

Issue 15: finding kinds and stages were loose strings, and a listed kind that
nothing emitted was a dead series on every dashboard ("zero of these
happened"). They are enums now (``icapdlp.report``) and the metric label sets
derive from them; these tests keep each member honest: one input per kind,
through :func:`deidentify_bytes`, that must produce it. A new member without
an input here fails; a member whose emission goes away fails.

OCR is canned (a reader that returns one word) so the pixel path runs without
Tesseract; what is tested is which stage the pipeline times, not what OCR reads.
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Callable

import pytest
from pydicom import Dataset

from icapdlp.dicom.options import ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.geometry import Box
from icapdlp.pixels.ocr import OcrWord
from icapdlp.pixels.options import PixelOptions
from icapdlp.report import CdrFinding, ObjectReport, Stage
from tests.dicom.helpers import TEST_KEY, config
from tests.dicom.test_codestream import JPEG_BASELINE, encapsulated_object, planted_jpeg
from tests.pixels.conftest import KeywordNer
from tests.support.synthetic import make_ct, make_multiframe, to_bytes


def _ct(seed: int, **changes) -> bytes:
    """A synthetic CT that holds nothing any finding names (all 16 bits used, nothing after the pixels)."""
    return make_ct(seed, bits_stored=16, signatures=False, **changes).data


def _changed(change: Callable[[Dataset], None], seed: int = 61) -> bytes:
    ds = copy.deepcopy(make_ct(seed, bits_stored=16, signatures=False).dataset)
    change(ds)
    return to_bytes(ds)


def _crafted_decimal(ds: Dataset) -> None:
    ds.add_new(0x00101022, "DS", "0")  # Patient's Body Mass Index
    ds[0x00101022]._value = "NOT A NUMBER"  # bypass pydicom's validation, as a crafted file would


def _one_word(grey8, language="eng") -> list[OcrWord]:
    """Canned OCR: one word in the top-left corner of every frame."""
    return [OcrWord("WORD", Box(0, 0, 4, 4), 95.0, (0, 0, 0, 0))]


def _ocr_run(data: bytes) -> ObjectReport:
    """The pipeline with pixel cleaning and Clean Graphics, canned OCR and a keyword NER."""
    cfg = PipelineConfig(profile=ProfileOptions(clean_graphics=True), limits=config().limits, key=TEST_KEY)
    cleaner = BurnedInTextCleaner(PixelOptions(), 1 << 30, ner=KeywordNer({"WORD": "PERSON"}),
                                  read_words=_one_word)
    return deidentify_bytes(data, cfg, cleaner).report


def _graphics_run(data: bytes) -> ObjectReport:
    """Clean Graphics without pixel cleaning: the DICOM layer alone owns the overlay decision."""
    cfg = PipelineConfig(profile=ProfileOptions(clean_graphics=True, clean_pixel_data=False),
                         limits=config().limits, key=TEST_KEY)
    return deidentify_bytes(data, cfg).report


def _plain_run(data: bytes) -> ObjectReport:
    return deidentify_bytes(data, config()).report


PADDING = struct.pack("<HH2sHI", 0xFFFC, 0xFFFC, b"OB", 0, 6) + b"PADDED"

#: for each finding kind: how to run the pipeline, and an input that holds what the kind names
INPUTS: dict[CdrFinding, tuple[Callable[[bytes], ObjectReport], Callable[[], bytes]]] = {
    CdrFinding.PREAMBLE_EXECUTABLE: (_plain_run, lambda: b"MZ\x90\x00" + _ct(62)[4:]),
    CdrFinding.PREAMBLE_NONZERO: (_plain_run, lambda: b"hello" + _ct(63)[5:]),
    CdrFinding.TRAILING_BYTES: (_plain_run, lambda: _ct(64) + b"\x01\x02\x03"),
    CdrFinding.TRAILING_PADDING: (_plain_run, lambda: _ct(65) + PADDING),
    CdrFinding.LENGTH_INVALID: (_plain_run, lambda: _changed(_crafted_decimal)),
    CdrFinding.OVERLAY_REMOVED: (_graphics_run, lambda: _ct(66, rows=32, columns=32)),
    CdrFinding.PIXEL_HIGH_BITS: (
        _plain_run, lambda: make_multiframe(67, frames=2, rows=32, columns=32, bits_stored=12,
                                            signatures=False).data),
    CdrFinding.UNDEFINED_TAG: (_plain_run, lambda: _changed(lambda ds: ds.add_new(0x00080880, "LO", "X"))),
    CdrFinding.MISPLACED_ATTRIBUTE: (
        _plain_run, lambda: _changed(lambda ds: setattr(ds, "LocalNamespaceEntityID", "FACILITY"))),
    CdrFinding.CODESTREAM_METADATA: (
        _plain_run, lambda: encapsulated_object([planted_jpeg(71)], JPEG_BASELINE, seed=71)),
}


@pytest.mark.parametrize("kind", list(CdrFinding), ids=str)
def test_every_finding_kind_is_emitted_by_the_pipeline_for_the_input_that_holds_it(kind):
    assert kind in INPUTS, f"{kind}: a finding kind with no input that produces it (add one, or drop the kind)"
    run, make_input = INPUTS[kind]
    report = run(make_input())
    assert set(report.cdr_findings) == {kind}, dict(report.cdr_findings)
    assert all(isinstance(k, CdrFinding) for k in report.cdr_findings), "emitted as a loose string"


def test_a_clean_object_has_no_findings():
    """The inputs above differ from this one only in what the finding names."""
    report = _plain_run(_ct(68))
    assert not report.cdr_findings


def test_every_stage_is_timed_by_a_run_with_pixel_cleaning():
    report = _ocr_run(make_ct(69, rows=32, columns=32).data)
    assert set(report.stage_seconds) == set(Stage)
    assert all(isinstance(stage, Stage) for stage in report.stage_seconds)


def test_without_pixel_cleaning_only_parse_deid_and_encode_are_timed():
    report = _plain_run(make_ct(70).data)
    assert set(report.stage_seconds) == {Stage.PARSE, Stage.DEID, Stage.ENCODE}
