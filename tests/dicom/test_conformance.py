"""Fail-closed handling of values that do not fit their VR, dictionary VM or pixel geometry.

Found by the fuzz campaign: a widened length made a kept element swallow its
neighbours' values, which were then written out again inside it. Limits are tested at the limit and one past it.
"""

from __future__ import annotations

import copy

import pytest
from pydicom import Dataset

from icapdlp.dicom.pipeline import deidentify_bytes
from icapdlp.verdict import Blocked, BlockReason
from tests.dicom.helpers import config, run
from tests.support.synthetic import make_ct, to_bytes

PLANT = "SWALLOWEDPHI77Q"


def _with(change, seed: int = 5) -> tuple[bytes, Dataset]:
    obj = make_ct(seed)
    ds = copy.deepcopy(obj.dataset)
    change(ds)
    return to_bytes(ds), ds


@pytest.mark.filterwarnings("ignore::UserWarning:pydicom")  # the invalid value is the point of the test
@pytest.mark.parametrize("length,kept", [(64, True), (65, False)])
def test_lo_value_at_and_past_its_maximum(length, kept):
    value = ("M" * (length - len(PLANT))) + PLANT
    result, out = run(_with(lambda ds: setattr(ds, "Manufacturer", value))[0])
    assert ("Manufacturer" in out) is kept
    assert (PLANT.encode() in result.data) is kept
    assert result.report.cdr_findings["length-invalid"] == (0 if kept else 1)


def test_more_values_than_the_dictionary_vm_is_removed():
    # Manufacturer has VM 1; two values are two elements' worth of text
    result, out = run(_with(lambda ds: setattr(ds, "Manufacturer", ["ACME", PLANT]))[0])
    assert "Manufacturer" not in out and PLANT.encode() not in result.data


def test_bounded_vm_at_and_past():
    """Pixel Spacing is DS VM 2: two values kept, three removed."""
    _, two = run(_with(lambda ds: setattr(ds, "PixelSpacing", ["0.5", "0.5"]))[0])
    _, three = run(_with(lambda ds: setattr(ds, "PixelSpacing", ["0.5", "0.5", "0.5"]))[0])
    assert "PixelSpacing" in two and "PixelSpacing" not in three


def test_binary_value_with_too_many_numbers_is_removed():
    # Acquisition Matrix is US VM 4: four numbers kept, 513 (1026 bytes) removed
    _, four = run(_with(lambda ds: ds.add_new(0x00181310, "US", [0, 16, 16, 0]))[0])
    _, many = run(_with(lambda ds: ds.add_new(0x00181310, "US", list(range(513))))[0])
    assert list(four.AcquisitionMatrix) == [0, 16, 16, 0]
    assert "AcquisitionMatrix" not in many


def test_structural_element_that_swallowed_its_neighbours_blocks():
    data, _ = _with(lambda ds: ds.add_new(0x00280002, "US", [1] * 513))  # Samples per Pixel, 1026 bytes
    with pytest.raises(Blocked) as info:
        deidentify_bytes(data, config())
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


def test_explicit_vr_the_dictionary_does_not_allow_is_removed():
    # Device Sequence (SQ) written as PN carrying text
    result, out = run(_with(lambda ds: ds.add_new(0x00500010, "PN", PLANT))[0])
    assert 0x00500010 not in out and PLANT.encode() not in result.data


def test_pixel_data_longer_than_geometry_is_cut_to_it():
    expected = 16 * 16 * 2
    data, _ = _with(lambda ds: setattr(ds, "PixelData", ds.PixelData + PLANT.encode() + b"\0"))
    result, out = run(data)
    assert len(out.PixelData) == expected
    assert PLANT.encode() not in result.data
    assert result.report.cdr_findings["trailing-bytes"] == 1


def test_pixel_data_shorter_than_geometry_blocks():
    data, _ = _with(lambda ds: setattr(ds, "PixelData", ds.PixelData[:-2]))
    with pytest.raises(Blocked) as info:
        deidentify_bytes(data, config())
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


def test_pixel_data_exactly_its_geometry_passes_unchanged_in_length():
    result, out = run(_with(lambda ds: None)[0])
    assert len(out.PixelData) == 16 * 16 * 2 and result.report.cdr_findings["trailing-bytes"] == 0


@pytest.mark.parametrize("value,kept", [("23.5", True), ("-1.5e+01", True), (" 7 ", True), (PLANT, False)])
def test_decimal_string_holding_text_is_removed(value, kept):
    def change(ds):
        ds.add_new(0x00101022, "DS", "0")  # Patient's Body Mass Index
        ds[0x00101022]._value = value  # bypass pydicom's own validation, as a crafted file would
    result, out = run(_with(change)[0])
    assert (0x00101022 in out) is kept
    assert PLANT.encode() not in result.data


def test_numbers_from_dicom_json_are_not_judged_by_their_float_repr():
    """DICOM JSON gives DS as numbers; str(0.30000000000000004) is 19 characters, not a swallow."""
    from icapdlp.dicom.conformance import enforce_value_conformance
    from icapdlp.report import ObjectReport

    ds = Dataset.from_json({"00101022": {"vr": "DS", "Value": [0.30000000000000004]},
                            "00280030": {"vr": "DS", "Value": [0.1234567890123456789, 2]}})
    report = ObjectReport()
    enforce_value_conformance(ds, report)
    assert 0x00101022 in ds and 0x00280030 in ds and not report.cdr_findings
