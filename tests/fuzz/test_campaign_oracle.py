"""The campaign's PHI oracle (benchmarks/fuzz/oracle.py) sets apart three shapes, and nothing else.

``benchmarks/fuzz/run.py`` counts a planted string in the output of the pipeline
or payload target as a finding, except (1) when it sits only in a plain form field
(no filename, no Content-Type) that the product passed byte-identical, as README
"Payloads" promises, (2) when a mutation turned its tag into another current
attribute that the profile keeps, and (3) when it sits only in top-level Pixel
Data while the fuzzing profile does not clean pixels. The campaign found all
three. These tests pin that the exceptions are that narrow.
"""

from __future__ import annotations

import struct

from pydicom import Dataset

from benchmarks.fuzz.oracle import classify, only_in_plain_form_fields
from tests.fuzz import mutations, targets
from tests.fuzz import seeds
from tests.fuzz.targets import payload_body
from tests.support import synthetic

FORM_INDEX = [name for name, *_ in seeds.payload_seeds()].index("form")
STOW_INDEX = [name for name, *_ in seeds.payload_seeds()].index("stow")


def _fragment() -> tuple[bytes, bytes]:
    """Element bytes of the overlay comment (from the seed object), and the planted value in them."""
    planted = next(p for p in synthetic.make_ct(1).phi_strings if p.startswith("OVERLAYCOMMENT")).encode()
    data = seeds.dicom_bytes()[0]
    at = data.find(planted)
    return data[at - 8:at + len(planted) + 8], planted


def _form(note: bytes, file_headers: bytes = b"Content-Type: application/dicom") -> bytes:
    return seeds.form_data([(b'Content-Disposition: form-data; name="note"', note),
                            (b'Content-Disposition: form-data; name="f"; filename="a.dcm"\r\n' + file_headers,
                             seeds.dicom_bytes()[0])])


def _out(content_type: str, body: bytes) -> bytes:
    result = payload_body(content_type, (), body)
    return result.data if result.changed else body


def test_dicom_bytes_in_the_text_of_a_plain_field_are_set_apart():
    fragment, planted = _fragment()
    body = _form(b"hello " + fragment)
    out = _out(seeds.payload_seeds()[FORM_INDEX][1], body)
    assert planted in out  # the field passed byte-identical, as README promises
    assert only_in_plain_form_fields(FORM_INDEX, body, out, [planted])


def test_the_same_bytes_in_a_file_part_stay_a_finding():
    fragment, planted = _fragment()
    body = seeds.form_data([(b'Content-Disposition: form-data; name="f"; filename="n.txt"', b"x " + fragment)])
    out = _out(seeds.payload_seeds()[FORM_INDEX][1], body)
    assert planted in out and not only_in_plain_form_fields(FORM_INDEX, body, out, [planted])


def test_a_field_whose_bytes_changed_or_a_stow_part_stays_a_finding():
    fragment, planted = _fragment()
    body = _form(b"hello " + fragment)
    out = _out(seeds.payload_seeds()[FORM_INDEX][1], body)
    assert not only_in_plain_form_fields(FORM_INDEX, body, out.replace(b"hello ", b"HELLO "), [planted])
    assert not only_in_plain_form_fields(STOW_INDEX, body, out, [planted])


def _planted_operator(index: int) -> bytes:
    return next(p for p in seeds.dicom_planted()[seeds.dicom_seeds()[index][0]]
                if p.startswith("OPERATOR")).encode()


def test_a_value_whose_tag_a_flip_turned_into_a_kept_attribute_is_relabelled():
    """Found by the campaign: (0008,1070) Operators' Name -> (0018,1070) Radiopharmaceutical Route."""
    index = 1  # ct-implicit: the VR comes from the (new) tag
    seed = seeds.dicom_bytes()[index]
    at = seed.find(struct.pack("<HH", 0x0008, 0x1070))
    mutated = mutations.apply(seed, [("flip", at, 4)])  # group 0x0008 -> 0x0018
    assert mutated[at:at + 4] == struct.pack("<HH", 0x0018, 0x1070)
    out = targets.pipeline(mutated)
    planted = _planted_operator(index)
    assert planted in out and classify("pipeline", index, mutated, out, [planted]) == "relabelled"


def test_a_value_under_its_planted_tag_or_a_listed_tag_stays_a_finding():
    index = 0
    seed = seeds.dicom_bytes()[index]
    planted = _planted_operator(index)
    assert classify("pipeline", index, seed, seed, [planted]) == "phi-survived"  # under (0008,1070)
    # Table E.1-1 lists Institution Address and a project rule lists Universal Entity ID:
    # a planted string kept under either would be a defect, whatever tag it came from
    for keyword in ("InstitutionAddress", "UniversalEntityID"):
        one = Dataset()
        setattr(one, keyword, planted.decode())
        one.preamble, one.file_meta = bytes(128), _meta()
        assert classify("pipeline", index, seed, _bytes(one), [planted]) == "phi-survived", keyword


def _meta():
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "2.25.1"
    return meta


def _bytes(ds: Dataset) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_icon_pixels_lifted_to_the_top_level_are_pixel_data_not_a_header_leak():
    """Found by the campaign (seed 20261130): a dup made the icon's 4x4 items the main image."""
    index = 0
    seed = seeds.dicom_bytes()[index]
    mutated = mutations.apply(seed, [("dup", 2692, 234, 1336)])
    out = targets.pipeline(mutated)
    planted = next(p for p in seeds.dicom_planted()["ct-explicit"] if p.startswith("ICON")).encode()
    assert planted in out and classify("pipeline", index, mutated, out, [planted]) == "pixel-data"


def test_a_planted_string_in_nested_pixel_data_stays_a_finding():
    """The icon left in place (its sequence not removed) would be a defect, not pixel data."""
    index = 0
    seed = seeds.dicom_bytes()[index]
    planted = next(p for p in seeds.dicom_planted()["ct-explicit"] if p.startswith("ICON")).encode()
    assert classify("pipeline", index, seed, seed, [planted]) == "phi-survived"
