"""Bare datasets a lenient reader takes though their start is unusual (red-team F1).

pydicom's ``dcmread(force=True)`` walks a sequence of undefined length item by
item, and reads a tag the dictionary does not define as an element like any
other. The walker's lenient look stopped at both, so a bare dataset that
starts with an undefined-length sequence and has an undefined tag after each
patient element passed as opaque binary while pydicom read the patient's name.
"""

from __future__ import annotations

import io
import os

import pytest
from pydicom import Dataset, Sequence, dcmread
from pydicom.filewriter import dcmwrite

from icapdlp import lenient
from tests.payload.helpers import walk

NAME, PATIENT_ID = "PLANTEDNAME^LENIENT", "PLANTEDID42"


def odd_dataset(first_sequence: bool = True, undefined_tags: bool = True, *, little: bool = True,
                implicit: bool = False, nested: bool = False) -> bytes:
    ds = Dataset()
    if first_sequence:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "eng", "RFC5646", "English"
        if nested:
            inner = Dataset()
            inner.CodeValue, inner.CodingSchemeDesignator = "x", "99LOCAL"
            item.ConceptCodeSequence = Sequence([inner])
            item["ConceptCodeSequence"].is_undefined_length = True
        ds.LanguageCodeSequence = Sequence([item])  # (0008,0006), the first element: undefined length
        ds["LanguageCodeSequence"].is_undefined_length = True
    ds.PatientName = NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19610214"
    if undefined_tags:
        ds.add_new(0x00100011, "LO", "x")  # (not in the dictionary) right after Patient's Name
        ds.add_new(0x00100023, "LO", "y")  # ... and after Patient ID
    ds.StudyDescription = "CHEST"
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=False, little_endian=little, implicit_vr=implicit)
    return out.getvalue()


@pytest.mark.parametrize("form", ["explicit-le", "explicit-be", "implicit-le"])
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_a_dataset_starting_with_an_undefined_length_sequence_is_dicom(form, nested):
    body = odd_dataset(little=form != "explicit-be", implicit=form == "implicit-le", nested=nested)
    assert dcmread(io.BytesIO(body), force=True).PatientName == NAME  # the receiver reads it
    assert lenient.looks_like_dataset(body)
    result, rewriter = walk("application/octet-stream", body)
    assert rewriter.seen == [body]


def test_undefined_tags_after_the_patient_elements_do_not_hide_them_inside_other_bytes():
    body = os.urandom(0) + bytes(range(256)) * 4 + odd_dataset(first_sequence=False)
    assert lenient.embedded_dataset_offset(body) is not None


def test_the_undefined_tags_alone_and_the_sequence_alone_are_dicom_too():
    for first, undefined in ((True, False), (False, True)):
        assert lenient.looks_like_dataset(odd_dataset(first, undefined))


def test_an_unterminated_undefined_length_value_first_is_judged_on_what_decoded():
    """A sequence whose delimiter never comes is no dataset by itself (random bytes stay random)."""
    body = b"\x08\x00\x06\x00SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + os.urandom(4000)
    assert not lenient.looks_like_dataset(body)


def test_random_and_text_bytes_are_still_no_dataset():
    import random

    rng = random.Random(17)
    assert not any(lenient.looks_like_dataset(rng.randbytes(4096)) for _ in range(2000))
    assert not lenient.looks_like_dataset(b"Patient name and ID are in the attached report. " * 100)


def test_a_first_value_longer_than_any_window_is_stepped_over():
    """Red-team F19: a 300 KB value first, then the patient module (each of its elements followed by an
    undefined tag); pydicom reads it, and the look at the body's start stopped at its first 256 KiB."""
    ds = Dataset()
    ds.add_new(0x00080119, "UC", "x" * 300_000)  # Long Code Value
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, "19610214"
    ds.add_new(0x00100011, "LO", "x")
    ds.StudyDescription = "CHEST"
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=False, little_endian=True, implicit_vr=False)
    body = out.getvalue()
    assert dcmread(io.BytesIO(body), force=True).PatientName == NAME
    result, rewriter = walk("application/octet-stream", body)
    assert rewriter.seen == [body]


def test_patient_elements_followed_by_a_long_value_inside_other_bytes_are_found():
    ds = Dataset()
    ds.PatientName, ds.PatientID = NAME, PATIENT_ID
    ds.add_new(0x00100011, "LT", "x" * 9000)  # right after the name, longer than the 4 KiB looked at before
    ds.StudyDescription = "CHEST"
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=False, little_endian=True, implicit_vr=False)
    body = bytes(range(256)) * 4 + out.getvalue()
    assert lenient.embedded_dataset_offset(body) is not None


def _written(ds: Dataset, implicit: bool = False) -> bytes:
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=False, little_endian=True, implicit_vr=implicit)
    return out.getvalue()


def test_a_dataset_of_groups_outside_the_identifying_ones_is_dicom():
    """Red-team F28: clinical trial, pixel, annotation and review groups only; PS3.15 lists each."""
    ds = Dataset()
    ds.ClinicalTrialSubjectID, ds.ClinicalTrialSubjectReadingID = PATIENT_ID, PATIENT_ID
    ds.Rows, ds.Columns, ds.BitsAllocated = 2, 2, 8
    ds.ContentCreatorName = NAME
    ds.ReviewerName, ds.ReviewDate = NAME, "19610214"
    body = _written(ds)
    assert str(dcmread(io.BytesIO(body), force=True).ReviewerName) == NAME
    assert lenient.looks_like_dataset(body)


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_a_dataset_led_by_an_element_of_group_0001_is_dicom(implicit):
    """Red-team F29: pydicom reads a (0001,xxxx) element as private and goes on."""
    ds = Dataset()
    ds.add_new(0x00010010, "LO", "LEADER")
    ds.OtherPatientIDs, ds.PatientBirthDate = PATIENT_ID, "19610214"
    ds.add_new(0x00101001, "PN", NAME)  # Other Patient Names
    ds.StudyDescription = "CHEST"
    body = _written(ds, implicit)
    assert lenient.looks_like_dataset(body)


def test_three_elements_outside_the_identifying_groups_holding_a_name_are_dicom():
    """Red-team F41: 80 bytes, Clinical Trial Subject ID and two person names; pydicom reads them."""
    ds = Dataset()
    ds.ClinicalTrialSubjectID = PATIENT_ID
    ds.ContentCreatorName = NAME
    ds.ReviewerName = NAME
    body = _written(ds)
    assert str(dcmread(io.BytesIO(body), force=True).ReviewerName) == NAME
    assert lenient.looks_like_dataset(body)
