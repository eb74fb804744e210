"""Project rules for attributes PS3.15 Table E.1-1 does not list (profile.PROJECT_ROWS and friends).

Found by the fuzz campaign: Universal Entity ID (0040,0032) and Local Namespace
Entity ID (0040,0031), valid dictionary tags the table does not list, were kept
with planted PHI when a mutation lifted them to the top level. The same gap
exists without any mutation: Issuer of Accession Number Sequence (0008,0051) and
Issuer of Patient ID Qualifiers Sequence (0010,0024) are top-level attributes of
real images that the table does not list, and they carry the hospital's
namespace and OID. Each test plants a distinctive value and checks the output
bytes; the "kept" tests check that clinically needed attributes still pass.
"""

from __future__ import annotations

import copy

import pytest
from pydicom import Dataset, Sequence
from pydicom.datadict import DicomDictionary, keyword_for_tag

from icapdlp.dicom import ps315_table
from icapdlp.dicom.options import ProfileOptions
from icapdlp.dicom.profile import (
    PROJECT_ROWS,
    SEQUENCE_ONLY_TAGS,
    UNLISTED_NARRATIVES,
    UNLISTED_PERSON_NAMES,
    action_table,
)
from tests.dicom.helpers import config, run
from tests.support.synthetic import make_ct, to_bytes

NAMESPACE, OID, FACILITY = "NSPHI71Q", "1.2.3.4.OIDPHI71Q", "FACILITYPHI71Q"


def _with(change, seed: int = 71, transfer_syntax: str = "explicit-le") -> bytes:
    ds = copy.deepcopy(make_ct(seed).dataset)
    change(ds)
    return to_bytes(ds, transfer_syntax=transfer_syntax)


def _hd_item() -> Dataset:
    """An HL7 v2 Hierarchic Designator (the hospital's namespace and OID)."""
    item = Dataset()
    item.LocalNamespaceEntityID = NAMESPACE
    item.UniversalEntityID = OID
    item.UniversalEntityIDType = "ISO"
    return item


def _planted_gone(data: bytes, *planted: str) -> list[str]:
    return [p for p in planted if p.encode() in data]


# -- the list itself ---------------------------------------------------------------------------

def test_every_project_row_is_a_current_dictionary_attribute_the_table_does_not_list():
    """When a later edition of the table lists one of these, the table wins and this test says so."""
    listed = {value for value, *_ in ps315_table.ROWS}
    for row in PROJECT_ROWS:
        entry = DicomDictionary[row.tag]
        assert entry[2] == row.name and entry[3] != "Retired", row.name
        assert row.tag not in listed, f"{row.name} is now in Table E.1-1: drop the project row"
        assert row.basic in ("X", "D", "Z", "X/D", "X/Z") and row.reason
        assert all(column in ps315_table.OPTION_COLUMNS and action in ("K", "C") for column, action in row.options)
    assert len({row.tag for row in PROJECT_ROWS}) == len(PROJECT_ROWS)
    assert SEQUENCE_ONLY_TAGS < {row.tag for row in PROJECT_ROWS}


def test_generated_lists_are_the_reviewed_ones():
    """Pinned: a pydicom upgrade that adds names or comments fails here until someone reviews it."""
    assert [keyword_for_tag(t) for t in UNLISTED_PERSON_NAMES] == ["SecondaryReviewerName", "EvaluatorName"]
    assert [keyword_for_tag(t) for t in UNLISTED_NARRATIVES] == [
        "TransactionStatusComment", "MaterialNotes", "CalibrationNotes", "PulserNotes", "ReceiverNotes",
        "PreAmplifierNotes", "ProbeDriveNotes", "PotentialReasonsForProcedure",
        "InstructionPerformanceComment", "CalculationComment", "CommentsOnPatientPerformanceOfVisualField",
        "SystemStatusComment", "TestResultComment", "CommentsOnTheScheduledProcedureStep",
        "SubstanceAdministrationNotes", "AssertionComments", "SurfaceComments", "ReasonForCancellation",
        "ReasonForChannelOmissionDescription", "SOPAuthorizationComment", "DoseComment",
        "FrameOfReferenceTransformationComment", "OverrideReason", "TreatmentStatusComment",
        "SetupImageComment"]


def test_table_rows_are_never_overridden():
    """Issuer of Patient ID is a table row (X); Institution Name under Retain Institution Identity is K."""
    table = action_table(ProfileOptions(retain_institution_identity=True))
    assert table.action(0x00100021) == "X" and table.action(0x00080080) == "K"
    assert table.action(0x00080070) is None  # Manufacturer: unlisted, kept by the walker


# -- identifier-bearing attributes where the Standard puts them -----------------------------------

def test_issuer_sequences_of_real_images_are_removed():
    def change(ds):
        ds.IssuerOfAccessionNumberSequence = Sequence([_hd_item()])
        qualifiers = _hd_item()
        facility = Dataset()
        facility.LocalNamespaceEntityID = FACILITY
        qualifiers.AssigningFacilitySequence = Sequence([facility])
        qualifiers.IdentifierTypeCode = "MR"
        ds.IssuerOfPatientIDQualifiersSequence = Sequence([qualifiers])
    result, out = run(_with(change))
    assert _planted_gone(result.data, NAMESPACE, OID, FACILITY) == []
    assert "IssuerOfAccessionNumberSequence" not in out and "IssuerOfPatientIDQualifiersSequence" not in out
    assert result.report.cdr_findings["misplaced-attribute"] == 0  # where the Standard puts them


def test_issuers_go_under_retain_institution_identity_as_the_tables_issuers_do():
    data = _with(lambda ds: setattr(ds, "IssuerOfAccessionNumberSequence", Sequence([_hd_item()])))
    result, out = run(data, config(retain_institution_identity=True))
    assert _planted_gone(result.data, NAMESPACE, OID) == []
    assert out.InstitutionName == make_ct(71).dataset.InstitutionName  # the option itself still works


def test_a_hierarchic_designator_inside_a_kept_sequence_is_removed():
    """Referenced Request Sequence (unlisted, walked) holds Order Placer Identifier Sequence."""
    def change(ds):
        request = Dataset()
        request.OrderPlacerIdentifierSequence = Sequence([_hd_item()])
        request.StudyInstanceUID = ds.StudyInstanceUID
        ds.ReferencedRequestSequence = Sequence([request])
    result, out = run(_with(change))
    assert _planted_gone(result.data, NAMESPACE, OID) == []
    item = out.ReferencedRequestSequence[0]
    assert "OrderPlacerIdentifierSequence" not in item and item.StudyInstanceUID.startswith("2.25.")


@pytest.mark.parametrize("retain", [False, True])
def test_hl7_instance_identifier_is_an_instance_id(retain):
    document_id = "2.16.840.1.999^DOCPHI71Q"

    def change(ds):
        ref = Dataset()
        ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.2"
        ref.ReferencedSOPInstanceUID = "1.2.3.71"
        ref.HL7InstanceIdentifier = document_id
        ds.HL7StructuredDocumentReferenceSequence = Sequence([ref])
    result, _ = run(_with(change), config(retain_uids=retain))
    assert (document_id.encode() in result.data) is retain


@pytest.mark.parametrize("retain", [False, True])
def test_device_identifiers_follow_retain_device_identity(retain):
    def change(ds):
        device = Dataset()
        device.DeviceID = "ASSETPHI71Q"
        device.CodeValue, device.CodingSchemeDesignator, device.CodeMeaning = "A-04000", "SRT", "Catheter"
        ds.DeviceSequence = Sequence([device])
        ds.SecondaryCaptureDeviceID = "WORKSTATIONPHI71Q"
    result, out = run(_with(change), config(retain_device_identity=retain))
    assert (b"ASSETPHI71Q" in result.data) is retain and (b"WORKSTATIONPHI71Q" in result.data) is retain
    assert out.DeviceSequence[0].CodeMeaning == "Catheter"


def test_contact_details_of_a_person_are_removed():
    def change(ds):
        contact = Dataset()
        contact.ContactURI = "tel:+1-555-0171"
        contact.ContactDisplayName = "NURSEPHI71Q"
        ds.ProcedureStepCommunicationsURISequence = Sequence([contact])
    result, _ = run(_with(change))
    assert _planted_gone(result.data, "tel:+1-555-0171", "NURSEPHI71Q") == []


# -- generated rules: person names and narratives ------------------------------------------------

def test_an_unlisted_person_name_is_replaced_not_kept():
    result, out = run(_with(lambda ds: setattr(ds, "EvaluatorName", "EVALPHI71Q^ANA")))
    assert b"EVALPHI71Q" not in result.data and out.EvaluatorName == "ANONYMOUS^ANONYMOUS"


@pytest.mark.parametrize("clean_descriptors", [False, True])
def test_an_unlisted_comment_follows_the_tables_comment_rows(clean_descriptors):
    """Comments on the Scheduled Procedure Step: X, or cleaned under Clean Descriptors."""
    def change(ds):
        step = Dataset()
        step.CommentsOnTheScheduledProcedureStep = f"call {make_ct(71).dataset.PatientName} before contrast"
        step.ScheduledProcedureStepDescription = "CT CHEST"
        ds.ScheduledProcedureStepSequence = Sequence([step])
    result, out = run(_with(change), config(clean_descriptors=clean_descriptors))
    assert b"QUIXOTEPHI71" not in result.data and b"ALONSOPHI71" not in result.data
    step = out.ScheduledProcedureStepSequence[0]
    if clean_descriptors:
        assert "before contrast" in step.CommentsOnTheScheduledProcedureStep
        assert "113105" in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    else:
        assert "CommentsOnTheScheduledProcedureStep" not in step


def test_sr_text_is_cleaned_not_replaced_under_clean_structured_content():
    """Text Value gets its container's action: D (dummy) by default, C under Clean Structured Content."""
    obj = make_ct(72)
    name = str(obj.dataset.PatientName).split("^")[0]
    obj.dataset.ContentSequence[0].ContentSequence[0].TextValue = f"Nodule stable, {name} informed"
    data = to_bytes(obj.dataset)
    result, out = run(data, config(clean_structured_content=True))
    assert out.ContentSequence[0].ContentSequence[0].TextValue == "Nodule stable, REMOVED informed"
    _, basic = run(data)
    assert basic.ContentSequence[0].ContentSequence[0].TextValue == "ANONYMOUS"


# -- what radiology users need stays ---------------------------------------------------------------

def test_descriptive_unlisted_attributes_are_kept():
    def change(ds):
        ds.ConvolutionKernel = "B30f"
        ds.ManufacturerModelName = "SYNTH CT 64"
        ds.WindowCenterWidthExplanation = "SOFT TISSUE"
        region = Dataset()
        region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = "T-D3000", "SRT", "Chest"
        ds.AnatomicRegionSequence = Sequence([region])
        ds.IdentifierTypeCode = "MR"  # a code of HL7 table 0203, no identity
    _, out = run(_with(change))
    assert (out.ConvolutionKernel, out.ManufacturerModelName, out.WindowCenterWidthExplanation) == \
        ("B30f", "SYNTH CT 64", "SOFT TISSUE")
    assert out.AnatomicRegionSequence[0].CodeMeaning == "Chest" and out.Manufacturer == "SYNTHETIC MEDICAL"


# -- misplaced at the top level (the fuzz finding) ---------------------------------------------------

TOP_LEVEL = [("LocalNamespaceEntityID", NAMESPACE), ("UniversalEntityID", OID),
             ("UniversalEntityIDType", "OIDPHI71Q"), ("TextValue", "LIFTEDTEXTPHI71Q"),
             ("HL7InstanceIdentifier", "DOCPHI71Q"), ("UnformattedTextValue", "ANNOTPHI71Q")]


@pytest.mark.parametrize("transfer_syntax", ["explicit-le", "implicit-le"])
@pytest.mark.parametrize("keyword,planted", TOP_LEVEL)
def test_a_sequence_only_attribute_at_the_top_level_is_removed_and_counted(keyword, planted, transfer_syntax):
    result, out = run(_with(lambda ds: setattr(ds, keyword, planted), transfer_syntax=transfer_syntax),
                      config(retain_uids=True, clean_structured_content=True, clean_graphics=True))
    assert planted.encode() not in result.data and keyword not in out
    assert result.report.cdr_findings["misplaced-attribute"] == 1


def test_a_misplaced_sequence_and_its_contents_are_removed():
    def change(ds):
        facility = Dataset()
        facility.LocalNamespaceEntityID = FACILITY
        ds.AssigningFacilitySequence = Sequence([facility])
    result, out = run(_with(change))
    assert FACILITY.encode() not in result.data and "AssigningFacilitySequence" not in out
    assert result.report.cdr_findings["misplaced-attribute"] == 1


# -- kept UIDs must be UIDs ------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::UserWarning:pydicom")  # the invalid value is the point of the test
def test_a_structural_uid_holding_text_is_removed_not_kept():
    def change(ds):
        ds.ReferencedImageSequence[0].ReferencedSOPClassUID = "1.2.PRIVATEPHI71Q"
    result, out = run(_with(change))
    assert b"PRIVATEPHI71Q" not in result.data
    assert "ReferencedSOPClassUID" not in out.ReferencedImageSequence[0]
    assert out.ReferencedImageSequence[1].ReferencedSOPClassUID == make_ct(71).dataset.SOPClassUID


@pytest.mark.filterwarnings("ignore::UserWarning:pydicom")  # the invalid value is the point of the test
def test_under_retain_uids_a_uid_holding_text_is_removed_and_real_uids_are_kept():
    def change(ds):
        ds.add_new(0x00209161, "UI", "CONCATPHI71Q")  # Concatenation UID, not in Table E.1-1
    obj = make_ct(71)
    result, out = run(_with(change), config(retain_uids=True))
    assert b"CONCATPHI71Q" not in result.data and 0x00209161 not in out
    assert out.StudyInstanceUID == obj.dataset.StudyInstanceUID


@pytest.mark.filterwarnings("ignore::UserWarning:pydicom")  # the invalid value is the point of the test
def test_a_sop_class_uid_holding_text_blocks_the_object():
    from icapdlp.verdict import Blocked

    with pytest.raises(Blocked):
        run(_with(lambda ds: setattr(ds, "SOPClassUID", "1.2.CLASSPHI71Q")))


# -- dates, network addresses and places the table does not list (issue 14) ---------------------

STUDY_URL = "https://pacs.hospitalphi14.example/wado?studyUID=1.2.826.0.1.3680043.10.9999.14"


def test_alternative_calendar_dates_and_retrieve_addresses_are_removed():
    def change(ds):
        ds.add_new(0x00100033, "LO", "BIRTHALTPHI14 1398")  # Patient's Birth Date in Alternative Calendar
        ds.add_new(0x00100034, "LO", "DEATHALTPHI14 1440")
        ds.RetrieveURL = STUDY_URL
        reference = Dataset()
        reference.RetrieveURI = STUDY_URL + "/series"
        reference.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        ds.ReferencedImageSequence = Sequence([reference])
        ds.StorageMediaFileSetID = "MEDIAPHI14"
    result, out = run(_with(change))
    assert _planted_gone(result.data, "BIRTHALTPHI14", "DEATHALTPHI14", "hospitalphi14", "9999.14",
                         "MEDIAPHI14") == []
    assert "RetrieveURL" not in out and "RetrieveURI" not in out.ReferencedImageSequence[0]


def test_pixel_data_provider_url_gets_a_dummy_where_the_iod_requires_it():
    """Type 1C in the Image Pixel module (JPIP): X/D keeps a value, never the original."""
    result, out = run(_with(lambda ds: setattr(ds, "PixelDataProviderURL", STUDY_URL)))
    assert out.PixelDataProviderURL == "urn:anonymous"
    assert b"hospitalphi14" not in result.data


def test_unlisted_dates_follow_the_date_options():
    def change(ds):
        ds.StudyUpdateDateTime = "20190612101010"
    _, out = run(_with(change))
    assert "StudyUpdateDateTime" not in out  # not in the CT IOD: X
    _, out = run(_with(change), config(longitudinal_dates="full"))
    assert out.StudyUpdateDateTime == "20190612101010"
    _, out = run(_with(change), config(longitudinal_dates="modified"))
    assert out.StudyUpdateDateTime not in ("20190612101010", "") and out.StudyUpdateDateTime.endswith("101010")


# -- directory-record attributes (group 0004) outside a DICOMDIR (red-team F34) -------------------

@pytest.mark.parametrize("keyword,value", [
    ("ReferencedFileID", ["DIRPLANTNAME", "DIRPLANTID"]),
    ("ReferencedSOPInstanceUIDInFile", "1.2.3.4.77"),
    ("FileSetDescriptorFileID", ["DIRPLANTNAME"]),
])
def test_a_directory_record_attribute_at_the_top_level_of_an_image_is_removed_and_counted(keyword, value):
    result, out = run(_with(lambda ds: setattr(ds, keyword, value)))
    assert keyword not in out
    assert b"DIRPLANT" not in result.data and b"1.2.3.4.77" not in result.data
    assert result.report.cdr_findings["misplaced-attribute"] == 1
