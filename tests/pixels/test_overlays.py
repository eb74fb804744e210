"""Clean Graphics with pixel cleaning: overlay planes are removed whole, end to end.

Before overlays.py existed every clean() under clean_graphics=true was blocked
(the import failed inside the cleaner). The end-to-end test runs the real
DICOM pipeline and real Tesseract on the synthetic CT, which plants an overlay
plane (bitmap, description, comments) holding PHI.
"""

from __future__ import annotations

import copy
import io

import pydicom
from pydicom import Dataset

from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.pixels.cleaner import BurnedInTextCleaner
from icapdlp.pixels.options import PixelOptions
from icapdlp.pixels.overlays import clean_overlays, is_overlay_tag
from icapdlp.report import ObjectReport
from tests.pixels.conftest import KeywordNer
from tests.support.synthetic import make_ct, make_multiframe, to_bytes

KEY = bytes(range(32))


def _config(**profile) -> PipelineConfig:
    return PipelineConfig(profile=ProfileOptions(**profile), limits=DicomLimits(), key=KEY)


def _cleaner(options: PixelOptions = PixelOptions(), **kw) -> BurnedInTextCleaner:
    return BurnedInTextCleaner(options, 1 << 30, ner=KeywordNer({}), **kw)


def test_clean_graphics_end_to_end_removes_every_overlay_byte():
    obj = make_ct(8, rows=32, columns=32)
    overlay_bits = bytes(obj.dataset[0x60003000].value)
    overlay_text = [str(obj.dataset[0x60000022].value), str(obj.dataset[0x60004000].value)]
    assert any(p in obj.phi_strings for p in overlay_text)
    result = deidentify_bytes(obj.data, _config(clean_graphics=True), _cleaner(clean_graphics=True))
    out = pydicom.dcmread(io.BytesIO(result.data))
    assert [t for t in out.keys() if is_overlay_tag(int(t))] == []
    assert overlay_bits not in result.data
    assert [p for p in overlay_text if p.encode() in result.data] == []
    assert result.report.cdr_findings["overlay-removed"] == 1
    assert result.report.pixels_cleaned
    assert "113103" in [item.CodeValue for item in out.DeidentificationMethodCodeSequence]


def test_every_plane_is_removed_and_counted_and_nothing_else():
    ds = copy.deepcopy(make_ct(9).dataset)
    ds.add_new(0x60020022, "LO", "SECOND PLANE")
    ds.add_new(0x60023000, "OW", b"\x01\x02" * 8)
    ds.add_new(0x601E1500, "LO", "LAST PLANE")
    ds.add_new(0x60010010, "LO", "ODD GROUP IS PRIVATE")  # not an overlay group
    before = {int(t) for t in ds.keys() if not is_overlay_tag(int(t))}
    report = ObjectReport()
    assert clean_overlays(ds, report) == 3
    assert {int(t) for t in ds.keys()} == before
    assert report.cdr_findings["overlay-removed"] == 3
    assert report.actions["X"] == 3 + len([t for t in make_ct(9).dataset.keys() if is_overlay_tag(int(t))])


def test_no_overlay_means_no_finding():
    ds = Dataset()
    ds.Rows = 4
    report = ObjectReport()
    assert clean_overlays(ds, report) == 0 and not report.cdr_findings and "Rows" in ds


def test_frames_the_policy_skips_are_counted_by_the_pipeline():
    obj = make_multiframe(3, frames=3, rows=8, columns=8)
    ds = copy.deepcopy(obj.dataset)
    ds.BurnedInAnnotation = "NO"
    cleaner = _cleaner(PixelOptions(ocr_when="unless-burned-in-no"))
    result = deidentify_bytes(to_bytes(ds), _config(), cleaner)
    assert result.report.frames_skipped == 3
    assert result.report.frames_ocr == 0 and not result.report.pixels_cleaned
