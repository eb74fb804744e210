"""A DICOM object in a request's query, path or a header value (issue 12, red team F16).

A 600-byte Part-10 file is 800 characters of base64url: it fits in a query
parameter or a header, and the origin reads it with ``parse_qs`` and
``urlsafe_b64decode``. ``walker.check_head`` walks each long value as a text
body is walked and refuses DICOM there (uninspectable: a head is not
rewritten in place). Ordinary heads pass.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import parse_qs, quote, urlsplit

import pydicom
import pytest
from pydicom.dataset import Dataset

from icapdlp.payload.heads import head_values
from icapdlp.payload.walker import check_head
from icapdlp.payload.options import PayloadOptions
from icapdlp.verdict import BlockReason, Blocked
from tests.support.synthetic import to_bytes

NAME, PID = "ZORROTEST^DIEGOTEST", "PIDTEST4711"


def small_part10() -> bytes:
    """A Part-10 file of a few hundred bytes: patient, study and SOP elements, no pixels."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1601"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PID, "19610214"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1602"
    ds.file_meta = Dataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return to_bytes(ds)


DCM = small_part10()
ENCODED = base64.urlsafe_b64encode(DCM).decode("ascii")
OPTIONS = PayloadOptions()


def refused(target: str | None, headers: list[tuple[str, str]]) -> BlockReason:
    with pytest.raises(Blocked) as info:
        check_head(target, headers, OPTIONS)
    return info.value.reason


def _read(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), force=True).PatientName)


def test_a_part10_file_in_a_query_parameter_is_refused():
    target = f"/upload?f={ENCODED}&name=scan"
    value = parse_qs(urlsplit(target).query)["f"][0]
    assert _read(base64.urlsafe_b64decode(value)) == NAME  # the origin's reading
    assert len(ENCODED) < 2048
    assert refused(target, [("Host", "example.org")]) is BlockReason.UNINSPECTABLE


def test_the_same_percent_encoded_in_an_absolute_form_target_is_refused():
    target = "http://example.org/upload?f=" + quote(base64.b64encode(DCM).decode(), safe="")
    assert refused(target, []) is BlockReason.UNINSPECTABLE


def test_a_part10_file_in_a_path_segment_is_refused():
    assert refused(f"/files/{ENCODED}/raw", []) is BlockReason.UNINSPECTABLE


def test_a_part10_file_in_a_request_header_is_refused():
    headers = [("Host", "example.org"), ("X-Attachment", ENCODED), ("Content-Length", "5")]
    assert _read(base64.urlsafe_b64decode(dict(headers)["X-Attachment"])) == NAME
    assert refused("/upload", headers) is BlockReason.UNINSPECTABLE


def test_a_hex_written_file_in_a_cookie_is_refused():
    assert refused("/", [("Cookie", "session=abc; blob=" + DCM.hex())]) is BlockReason.UNINSPECTABLE


def test_ordinary_heads_pass():
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    token = ".".join([part(b'{"alg":"HS256","typ":"JWT"}'),
                      part(b'{"sub":"1234567890","name":"A User","iat":1516239022}'),
                      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"])
    headers = [("Host", "pacs.example.org"), ("Authorization", "Bearer " + token),
               ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                              "Chrome/120.0"),
               ("Cookie", "sid=" + "a1b2c3d4" * 16), ("Accept", "application/dicom+json")]
    target = "/dicomweb/studies?PatientID=12345&limit=25&includefield=00100010&fuzzymatching=true"
    check_head(target, headers, OPTIONS)  # (raises nothing)


def test_short_values_are_not_walked():
    assert head_values("/a/b?x=1", [("Host", "h")]) == []


# -- pieces of a larger body (red-team F11 across messages) ------------------------------------------

@pytest.mark.parametrize("status, request_headers, response_headers, expected", [
    (200, [], [("Content-Type", "application/octet-stream")], None),
    (206, [], [("Content-Range", "bytes 0-99/100")], None),
    (206, [], [("Content-Range", "bytes 0-99/5000")], 0),
    (206, [], [("content-range", "bytes 128-131/1000")], 128),
    (206, [], [("Content-Range", "bytes */1000")], 1),
    (206, [], [("Content-Type", "multipart/byteranges; boundary=RNG")], 1),
    (None, [("Upload-Offset", "0"), ("Tus-Resumable", "1.0.0")], [], 0),
    (None, [("Upload-Offset", "132"), ("Tus-Resumable", "1.0.0")], [], 132),
    (None, [("Upload-Offset", "-5")], [], 1),
    (None, [("Content-Range", "bytes 4096-8191/20000")], [], 4096),
    (None, [("Content-Type", "application/dicom")], [], None),
], ids=["whole", "206-whole", "206-first", "206-later", "206-unsatisfied", "206-multi", "tus-first",
        "tus-later", "tus-bad", "put-range", "plain-request"])
def test_a_body_that_is_a_piece_is_told_by_its_place(status, request_headers, response_headers, expected):
    from icapdlp.payload.heads import piece_offset

    assert piece_offset(status, request_headers, response_headers) == expected


# --- a multipart part's own head (red team a46): Werkzeug hands its filename and headers over too ---

def _walk_form(part_head: bytes) -> None:
    from tests.payload.helpers import form_body, walk

    body = form_body("B", [(part_head, b"hello"), (b'Content-Disposition: form-data; name="n"', b"scan")])
    walk("multipart/form-data; boundary=B", body)


def test_a_part10_file_as_a_part_filename_is_refused():
    head = f'Content-Disposition: form-data; name="f"; filename="{ENCODED}.dcm"\r\nContent-Type: text/plain'
    with pytest.raises(Blocked) as info:
        _walk_form(head.encode())
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_a_part10_file_in_an_extra_part_header_is_refused():
    head = f'Content-Disposition: form-data; name="f"; filename="note.txt"\r\nX-Attachment: {ENCODED}'
    with pytest.raises(Blocked) as info:
        _walk_form(head.encode())
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_a_form_whose_part_heads_are_ordinary_passes():
    long_name = "Quarterly report for the radiology department, final version 2026-11.pdf"
    head = (f'Content-Disposition: form-data; name="f"; filename="{long_name}"\r\n'
            'Content-Type: application/pdf')
    _walk_form(head.encode())  # no Blocked: a long plain filename is text, not an object
