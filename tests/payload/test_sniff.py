from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icapdlp.payload.sniff import Sniff, is_part10, looks_like_zip, sniff_dicom
from tests.support.synthetic import make_ct


@pytest.mark.parametrize("syntax", ["explicit-le", "implicit-le"])
@pytest.mark.parametrize("bare", [False, True])
def test_dicom_found_whole_and_from_a_preview(syntax, bare):
    data = make_ct(3, transfer_syntax=syntax, bare=bare).data
    assert sniff_dicom(data, complete=True) is Sniff.DICOM
    assert sniff_dicom(data[:512], complete=False) is Sniff.DICOM
    assert is_part10(data) is (not bare)


def test_part10_with_a_hostile_preamble_is_still_dicom():
    data = bytearray(make_ct(1).data)
    data[:4] = b"MZ\x90\x00"  # a PE header in the preamble (CVE-2019-11687)
    assert sniff_dicom(bytes(data), complete=True) is Sniff.DICOM


@pytest.mark.parametrize("data", [
    b"<!DOCTYPE html><html><body>" + b"x" * 300,
    b"%PDF-1.7\n" + b"\0" * 300,
    b"\x89PNG\r\n\x1a\n" + b"\0" * 300,
    b"\0" * 300,
    b"{\"json\": true}",
])
def test_common_non_dicom_is_rejected(data):
    assert sniff_dicom(data, complete=True) is Sniff.NOT_DICOM
    assert sniff_dicom(data, complete=False) is (Sniff.NOT_DICOM if len(data) >= 132 else Sniff.UNDECIDED)


def test_short_incomplete_preview_is_undecided_until_the_magic_offset():
    data = make_ct(1).data
    assert sniff_dicom(data[:131], complete=False) is Sniff.UNDECIDED
    assert sniff_dicom(data[:132], complete=False) is Sniff.DICOM
    assert sniff_dicom(b"", complete=True) is Sniff.NOT_DICOM


def test_bare_dataset_needs_ascending_known_tags():
    data = make_ct(1, bare=True).data
    swapped = data[8 + 10:] # drop the first element: still DICOM
    assert sniff_dicom(swapped, complete=True) is Sniff.DICOM
    reordered = data[18:36] + data[:18] + data[36:]  # second element first: tags descend
    assert sniff_dicom(reordered, complete=True) is Sniff.NOT_DICOM


def test_magic_helpers():
    assert looks_like_zip(b"PK\x03\x04rest") and not looks_like_zip(b"PK")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_arbitrary_bytes_give_a_verdict(data, complete):
    assert sniff_dicom(data, complete) in Sniff
