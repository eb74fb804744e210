"""Planted PHI in every kind of place must be gone from the output bytes.

The synthetic objects plant names, IDs, free text, dates and instance UIDs at
the top level, three sequences deep, in multi-valued elements, private
blocks, the File Meta Information, overlays, curves, icons, original
attributes and signatures. The assertions are at byte level on the output.
"""

from __future__ import annotations

import pytest

from tests.dicom.helpers import config, run
from tests.support.synthetic import SAFE_CREATOR, SAFE_PRIVATE_VALUE, UNSAFE_CREATOR, make_ct, make_multiframe

ENCODINGS = [("explicit-le", False), ("implicit-le", False), ("explicit-be", False), ("deflated", False),
             ("explicit-le", True), ("implicit-le", True)]


@pytest.mark.parametrize("transfer_syntax,bare", ENCODINGS)
def test_basic_profile_leaves_no_planted_value(transfer_syntax, bare):
    obj = make_ct(7, transfer_syntax=transfer_syntax, bare=bare)
    result, out = run(obj.data)
    assert obj.surviving(result.data) == []
    assert out.PatientIdentityRemoved == "YES"
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.SOPClassUID == obj.dataset.SOPClassUID  # structural UID untouched
    for gone in ("IconImageSequence", "OriginalAttributesSequence", "DigitalSignaturesSequence",
                 "MACParametersSequence", "OtherPatientIDs"):
        assert gone not in out
    assert not any(elem.tag.is_private for elem in out.iterall())
    assert not any(elem.tag.group & 0xFF00 in (0x5000, 0x6000) for elem in out)


def test_multiframe_every_frame_high_bits_zeroed():
    obj = make_multiframe(3, frames=5, rows=8, columns=8)
    result, out = run(obj.data)
    assert obj.surviving(result.data) == []
    assert int(out.pixel_array.max()) < (1 << out.BitsStored)
    assert result.report.cdr_findings["pixel-high-bits"] == 1


def test_nested_references_are_mapped_not_removed():
    obj = make_ct(1)
    _, out = run(obj.data)
    refs = [item.ReferencedSOPInstanceUID for item in out.ReferencedImageSequence]
    assert len(refs) == 2 and all(r.startswith("2.25.") for r in refs)
    deep = out.RequestAttributesSequence[0].ReferencedStudySequence[0] if "RequestAttributesSequence" in out else None
    assert deep is None or deep.ReferencedSOPInstanceUID.startswith("2.25.")


def test_retain_safe_private_keeps_only_listed_creator():
    obj = make_ct(2)
    cfg = config(retain_safe_private=True, safe_private_creators=(SAFE_CREATOR,))
    result, out = run(obj.data, cfg)
    assert SAFE_PRIVATE_VALUE.encode() in result.data
    assert UNSAFE_CREATOR.encode() not in result.data
    assert obj.surviving(result.data) == []
    assert out.private_block(0x0011, SAFE_CREATOR)[0x01].value == SAFE_PRIVATE_VALUE
    assert "113111" in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]


def test_safe_private_needs_the_option_not_only_the_list():
    obj = make_ct(2)
    result, _ = run(obj.data, config(safe_private_creators=(SAFE_CREATOR,)))
    assert SAFE_PRIVATE_VALUE.encode() not in result.data


def test_retain_uids_keeps_instance_uids_and_says_so():
    obj = make_ct(3)
    result, out = run(obj.data, config(retain_uids=True))
    assert out.SOPInstanceUID == obj.dataset.SOPInstanceUID
    assert out.StudyInstanceUID == obj.dataset.StudyInstanceUID
    kept = {obj.dataset.SOPInstanceUID, obj.dataset.StudyInstanceUID, obj.dataset.SeriesInstanceUID}
    assert obj.surviving(result.data, keep=set(obj.phi_uids)) == []
    assert kept <= {u for u in obj.phi_uids if u.encode() in result.data}
    assert "113110" in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]


def test_full_dates_keep_dates():
    obj = make_ct(4)
    result, out = run(obj.data, config(longitudinal_dates="full"))
    assert out.StudyDate == obj.dataset.StudyDate
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert obj.surviving(result.data, keep=set(obj.phi_dates)) == []


def test_patient_characteristics_kept_when_asked():
    obj = make_ct(5)
    _, out = run(obj.data, config(retain_patient_characteristics=True))
    assert out.PatientAge == "057Y" and out.PatientSex == "F"
    _, out = run(obj.data)
    assert "PatientAge" not in out


def test_institution_and_device_identity_options():
    obj = make_ct(6)
    _, out = run(obj.data, config(retain_institution_identity=True, retain_device_identity=True))
    assert out.InstitutionName == obj.dataset.InstitutionName
    assert out.DeviceSerialNumber == obj.dataset.DeviceSerialNumber
    assert out.StationName == obj.dataset.StationName
    _, out = run(obj.data)
    assert "InstitutionName" not in out  # X/Z/D, Type 3 in the CT Image IOD: removed


def test_clean_descriptors_keeps_meaning_drops_identity():
    obj = make_ct(8)
    result, out = run(obj.data, config(clean_descriptors=True))
    assert "CHEST" in out.StudyDescription
    # descriptors are kept on purpose (cleaned of identity); everything else goes
    descriptors = {"STUDYDESCPHI8Q", "SERIESDESCPHI8Q", "HISTORYPHI8Q", "COMMENTSPHI8Q", "PROCDESCPHI8Q"}
    assert set(obj.surviving(result.data)) == descriptors


def test_clean_descriptors_removes_header_names_and_dates_from_text():
    obj = make_ct(9)
    obj.dataset.StudyDescription = "CT for QUIXOTEPHI9 on 2019-06-12 MRN 123456"
    from tests.support.synthetic import to_bytes
    result, out = run(to_bytes(obj.dataset), config(clean_descriptors=True))
    assert out.StudyDescription.startswith("CT for")
    for leaked in ("QUIXOTEPHI9", "2019-06-12", "123456"):
        assert leaked not in out.StudyDescription


def test_clean_graphics_removes_overlay_planes_and_keeps_cleaned_curve_text():
    obj = make_ct(10)
    result, out = run(obj.data, config(clean_graphics=True))
    assert [t for t in out.keys() if int(t) >> 16 == 0x6000] == []  # the plane goes whole (test_overlays.py)
    assert result.report.cdr_findings["overlay-removed"] == 1
    # curve labels are cleaned text, kept on purpose; the overlay's text went with its plane
    assert set(obj.surviving(result.data)) == {"CURVELABELPHI10Q"}


def test_clean_structured_content_keeps_tree_cleans_text():
    obj = make_ct(11)
    mid = obj.dataset.ContentSequence[0].ContentSequence[0]
    mid.TextValue = "seen by " + obj.dataset.ReferringPhysicianName.family_name + " on 20190612"
    from tests.support.synthetic import to_bytes
    result, out = run(to_bytes(obj.dataset), config(clean_structured_content=True))
    mid = out.ContentSequence[0].ContentSequence[0]
    assert mid.ValueType == "TEXT" and mid.TextValue.startswith("seen by ")
    assert "REFPHYSPHI11Q" not in mid.TextValue and "20190612" not in mid.TextValue
    assert mid.ContentSequence[0].PersonName != obj.dataset.ContentSequence[0].ContentSequence[0].ContentSequence[0].PersonName
    assert obj.surviving(result.data) == []


def test_pseudonyms_are_stable_and_keyed():
    a, b = make_ct(12), make_ct(12, instance_number=2)
    _, out_a = run(a.data, config(pseudonymize_patient=True))
    _, out_b = run(b.data, config(pseudonymize_patient=True))
    assert out_a.PatientID == out_b.PatientID and out_a.PatientID.startswith("PID-")
    assert out_a.PatientName == out_b.PatientName != a.dataset.PatientName
    from tests.dicom.helpers import OTHER_KEY
    _, out_c = run(a.data, config(pseudonymize_patient=True, key=OTHER_KEY))
    assert out_c.PatientID != out_a.PatientID
