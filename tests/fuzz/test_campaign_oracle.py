"""The campaign's PHI oracle sets apart exactly one by-design shape, and nothing else.

``benchmarks/fuzz/run.py`` counts a planted string in the output of the payload
target as a finding, except when it sits only in a plain form field (no filename,
no Content-Type) that the product passed byte-identical: README "Payloads" says
such fields stay byte-identical, and the campaign found mutations that copy DICOM
element bytes into the text of the "note" field. These tests pin that the
exception is that narrow: the same bytes in a file part or a STOW-RS part, or a
real DICOM object left in a field, stay findings.
"""

from __future__ import annotations

from benchmarks.fuzz.run import only_in_plain_form_fields
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
