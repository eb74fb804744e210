"""Objects the pipeline refuses get a reason that names what is wrong; metadata documents pass."""

from __future__ import annotations

import copy
import json

import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file

from icapdlp.dicom.pipeline import deidentify_bytes, deidentify_dataset
from icapdlp.payload.dicomjson import strip_bulk_data_uris
from icapdlp.report import ObjectReport
from icapdlp.verdict import Blocked, BlockReason
from tests.dicom.helpers import config
from tests.support.synthetic import make_ct, to_bytes


class NeedsCleaning:
    """A PixelCleaner double whose policy wants every image examined; records calls."""

    def __init__(self) -> None:
        self.cleaned = 0

    def needs_cleaning(self, ds: Dataset) -> bool:
        return True

    def clean(self, ds: Dataset, report: ObjectReport) -> None:
        self.cleaned += 1
        report.pixels_cleaned = True


@pytest.mark.parametrize("cleaner", [None, NeedsCleaning()], ids=["no-cleaner", "cleaner"])
def test_a_dicomdir_is_blocked_as_a_dicomdir(cleaner):
    path = get_testdata_file("DICOMDIR")
    with pytest.raises(Blocked) as info:
        deidentify_bytes(open(path, "rb").read(), config(clean_pixel_data=cleaner is not None), cleaner)
    assert info.value.reason is BlockReason.DICOMDIR


def test_an_image_without_pixel_data_is_blocked_as_missing_pixel_data():
    ds = copy.deepcopy(make_ct(41).dataset)
    del ds.PixelData
    with pytest.raises(Blocked) as info:
        deidentify_bytes(to_bytes(ds), config(clean_pixel_data=True), NeedsCleaning())
    assert info.value.reason is BlockReason.MISSING_PIXEL_DATA


def _metadata(obj) -> dict:
    """A WADO-RS /metadata answer for ``obj``: its Pixel Data as a BulkDataURI."""
    ds = obj.dataset
    base = f"https://pacs.example/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    return ds.to_json_dict(bulk_data_threshold=1, bulk_data_element_handler=lambda elem: f"{base}/bulk/{elem.tag:08X}")


def test_a_metadata_document_is_deidentified_not_blocked():
    obj = make_ct(42)
    document = _metadata(obj)
    assert "BulkDataURI" in document["7FE00010"]
    strip_bulk_data_uris(document)  # what the payload layer does first
    ds = Dataset.from_json(document)
    cleaner = NeedsCleaning()
    report = deidentify_dataset(ds, config(clean_pixel_data=True), cleaner)
    out = json.dumps(ds.to_json_dict()).encode()
    assert cleaner.cleaned == 0 and not report.pixels_cleaned  # no pixels: nothing cleaned, nothing claimed
    assert obj.surviving(out) == []
    assert "BurnedInAnnotation" not in ds or ds.BurnedInAnnotation != "NO"


def test_inline_pixels_in_a_json_document_are_still_cleaned():
    obj = make_ct(43)
    ds = Dataset.from_json(obj.dataset.to_json_dict(bulk_data_threshold=1 << 30))  # InlineBinary
    cleaner = NeedsCleaning()
    deidentify_dataset(ds, config(clean_pixel_data=True), cleaner)
    assert cleaner.cleaned == 1
