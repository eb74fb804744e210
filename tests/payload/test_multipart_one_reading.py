"""One multipart reading, or none (issue 12 item 1).

Each body here is split one way by our strict CRLF parser and another way by
a lenient receiver. The first tests show, with Werkzeug itself (what Flask
runs), that the receiver pulls a DICOM file out of bytes we read as
preamble, epilogue or the inside of an ordinary part; each of these passed
on the old code. The walker must refuse them as ``uninspectable``.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from werkzeug.formparser import MultiPartParser

from icapdlp.payload.multipart import parse_multipart
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import form_body, walk

B = "xYzBoundary42"
FILE_HEADERS = b'Content-Disposition: form-data; name="f"; filename="x.dcm"'
TEXT_HEADERS = b'Content-Disposition: form-data; name="note"'
PLANTED = b"PLANTED^ZEBULON"


def tiny_bare_dataset() -> bytes:
    """A 130-byte bare dataset (implicit VR LE, no preamble) with a planted name, ID and birth date.

    Small enough to hide in a 1 KiB preamble; pydicom (force=True) reads it.
    """
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyDate = "20200101"
    ds.PatientName = PLANTED.decode()
    ds.PatientID = "PID-PLANTED-77"
    ds.PatientBirthDate = "19610304"
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, True
    write_dataset(out, ds)
    return out.getvalue()


DICOM = tiny_bare_dataset()


def werkzeug_files(body: bytes, boundary: str) -> list[bytes]:
    """The uploaded files a Flask application would get from ``body``."""
    _, files = MultiPartParser().parse(io.BytesIO(body), boundary.encode(), len(body))
    return [storage.read() for _, storage in files.items(multi=True)]


def lf_part(boundary: str, headers: bytes, content: bytes, nl: bytes = b"\n") -> bytes:
    """A delimiter line, header block and content written with ``nl`` line ends instead of CRLF."""
    return b"--" + boundary.encode() + nl + headers + nl + nl + content + nl


def assert_uninspectable(content_type: str, body: bytes) -> None:
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    assert info.value.reason is BlockReason.UNINSPECTABLE, info.value


#: (id, body): a lenient receiver finds DICOM where we read something else
LEAKS = [
    ("lf-part-before-the-first-crlf-delimiter",
     lf_part(B, FILE_HEADERS, DICOM) + form_body(B, [(TEXT_HEADERS, b"hello")])[0:]
     .replace(b"--" + B.encode() + b"\r\n", b"\r\n--" + B.encode() + b"\r\n", 1)),
    ("lf-part-inside-a-crlf-part",
     form_body(B, [(TEXT_HEADERS, b"hello\n" + lf_part(B, FILE_HEADERS, DICOM)[:-1])])),
    ("cr-only-part-inside-a-crlf-part",
     form_body(B, [(TEXT_HEADERS, b"hello\r" + lf_part(B, FILE_HEADERS, DICOM, b"\r")[:-1])])),
    ("vertical-tab-padding-after-a-crlf-delimiter",
     form_body(B, [(TEXT_HEADERS, b"hello\r\n--" + B.encode() + b"\x0b\r\n" + FILE_HEADERS + b"\r\n\r\n"
                    + DICOM)])),
    ("delimiter-mid-line-in-the-preamble",
     b"preamble text --" + B.encode() + b"\r\n" + FILE_HEADERS + b"\r\n\r\n" + DICOM
     + form_body(B, [(TEXT_HEADERS, b"hello")], preamble=b"x")[1:]),
]


@pytest.mark.parametrize("body", [body for _, body in LEAKS], ids=[name for name, _ in LEAKS])
def test_werkzeug_extracts_dicom_that_icapdlp_refuses_to_read_one_way(body):
    assert any(PLANTED in data for data in werkzeug_files(body, B)), "the receiver does not see it"
    assert_uninspectable(f"multipart/form-data; boundary={B}", body)


def test_a_delimiter_like_line_in_the_epilogue_is_refused():
    body = form_body(B, [(TEXT_HEADERS, b"hello")], epilogue=b"\r\n" + lf_part(B, FILE_HEADERS, DICOM))
    assert_uninspectable(f"multipart/form-data; boundary={B}", body)


def outer_and_inner(ours: str, theirs: str) -> bytes:
    """Framed by ``ours``; its one part holds a whole body framed by ``theirs`` with the DICOM."""
    inner = form_body(theirs, [(FILE_HEADERS, DICOM)])
    return form_body(ours, [(b"Content-Type: text/plain", inner)])


@pytest.mark.parametrize("content_type, body, theirs", [
    # Werkzeug keeps the last of repeated parameters, we kept the first
    (f"multipart/form-data; boundary={B}; boundary=other", outer_and_inner(B, "other"), "other"),
    # RFC 2231 form: Werkzeug decodes it, a plain parser sees no boundary and passed the body opaque
    ("multipart/form-data; boundary*=UTF-8''other", form_body("other", [(FILE_HEADERS, DICOM)]), "other"),
    # Werkzeug's unquoted value ends at the comma
    ("multipart/form-data; boundary=other,x", outer_and_inner("other,x", "other"), "other"),
    # parameters past 4096 characters were dropped, so the body passed as opaque bytes
    (f'multipart/form-data; boundary=other; note="{"n" * 5000}"', form_body("other", [(FILE_HEADERS, DICOM)]),
     "other"),
])
def test_a_boundary_parameter_read_differently_is_refused(content_type, body, theirs):
    from werkzeug.http import parse_options_header

    assert parse_options_header(content_type)[1]["boundary"] == theirs
    assert any(PLANTED in data for data in werkzeug_files(body, theirs))
    assert_uninspectable(content_type, body)


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=",
                                          'multipart/form-data; boundary="a\\"b"',
                                          'multipart/form-data; boundary="trailing "'])
def test_a_multipart_type_without_one_clear_boundary_is_refused(content_type):
    assert_uninspectable(content_type, form_body("a", [(FILE_HEADERS, DICOM)]))


@pytest.mark.parametrize("content_type", [
    f"multipart/form-data; boundary={B}", f'multipart/form-data; boundary="{B}"',
    f"multipart/form-data; BOUNDARY={B}", f"Multipart/Form-Data;boundary={B}",
    'multipart/form-data; boundary="a (quoted) boundary: with/odd=chars?"',
])
def test_ordinary_boundaries_still_work(content_type):
    from icapdlp.payload.media import parse_media_type

    boundary = parse_media_type(content_type).param("boundary")
    body = form_body(boundary, [(FILE_HEADERS, DICOM), (TEXT_HEADERS, b"hello")])
    result, rewriter = walk(content_type, body)
    assert rewriter.seen == [DICOM] and result.changed


def test_valid_framing_with_padding_a_preamble_and_look_alikes_keeps_passing():
    """CRLF framing, transport padding, boundary text mid-line or longer, another case: one reading."""
    looks_alike = (b"mid-line --" + B.encode() + b"\r\n" + b"\r\n--" + B.encode() + b"tail\r\n"
                   + b"\n--" + B.lower().encode() + b"\n" + b"\n-- " + B.encode() + b"\n")
    body = form_body(B, [(TEXT_HEADERS, looks_alike), (TEXT_HEADERS, b"second")],
                     preamble=b"This is a multi-part message in MIME format.\r\n", epilogue=b"\r\n")
    body = body.replace(b"--" + B.encode() + b"\r\n", b"--" + B.encode() + b" \t\r\n", 1)
    parsed = parse_multipart(body, B, 10)
    assert [p.content for p in parsed.parts] == [looks_alike, b"second"]
    assert werkzeug_files(body, B) == []  # no file for either reader
    assert walk(f"multipart/form-data; boundary={B}", body)[0].body is body


def test_boundary_text_that_no_receiver_reads_as_a_delimiter_may_stand_in_preamble_and_epilogue():
    body = form_body(B, [(TEXT_HEADERS, b"hello")], preamble=b"see --" + B.encode() + b"X for details\r\n",
                     epilogue=b"\r\n--" + B.encode() + b"tail")
    assert werkzeug_files(body, B) == []
    assert walk(f"multipart/form-data; boundary={B}", body)[0].body is body


_LINE_ENDS = [b"\r\n"] * 6 + [b"\n", b"\r"]
_PADDING = [b"", b"", b" ", b"\t", b"\x0b", b"\x0c "]


@st.composite
def lenient_bodies(draw):
    """Form bodies whose framing mixes line ends and padding, with delimiter-like lines in contents."""
    boundary = b"--" + B.encode()
    pieces = [draw(st.sampled_from([b"", b"preamble", b"pre--" + B.encode()]))]
    for index in range(draw(st.integers(1, 3))):
        end = draw(st.sampled_from(_LINE_ENDS))
        lead = b"" if index == 0 and not pieces[0] else draw(st.sampled_from(_LINE_ENDS))
        content = draw(st.binary(max_size=30))
        if draw(st.booleans()):
            tail = draw(st.sampled_from(_PADDING + [b"--"]))
            content += draw(st.sampled_from(_LINE_ENDS)) + boundary + tail
            content += draw(st.sampled_from(_LINE_ENDS)) + draw(st.binary(max_size=10))
        headers = b'Content-Disposition: form-data; name="f%d"; filename="f%d"' % (index, index)
        pieces.append(lead + boundary + draw(st.sampled_from(_PADDING)) + end + headers + end + end + content)
    after_close = draw(st.sampled_from([b"", b"\r\n"]))
    pieces.append(draw(st.sampled_from(_LINE_ENDS)) + boundary + b"--" + after_close)
    pieces.append(draw(st.sampled_from([b"", b"epilogue", b"\n" + boundary + b"\n"])))
    return b"".join(pieces)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(body=lenient_bodies())
def test_whatever_we_accept_werkzeug_splits_the_same_way(body):
    """Differential oracle: a body we split is either refused by Werkzeug or split into the same files."""
    try:
        ours = parse_multipart(body, B, 50)
    except Blocked:
        return
    try:
        theirs = werkzeug_files(body, B)
    except ValueError:
        return  # Werkzeug refuses it: it extracts nothing
    assert theirs == [part.content for part in ours.parts]


def email_files(body: bytes, boundary: str) -> list[bytes] | None:
    """The parts Python's email package (a MIME receiver) reads from ``body``."""
    import email
    import email.policy

    head = f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
    message = email.message_from_bytes(head + body, policy=email.policy.compat32)
    if not message.is_multipart():
        return None
    return [part.get_payload(decode=True) for part in message.get_payload()]


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(body=lenient_bodies())
def test_whatever_we_accept_the_email_package_splits_the_same_way(body):
    try:
        ours = parse_multipart(body, B, 50)
    except Blocked:
        return
    assert email_files(body, B) == [part.content for part in ours.parts]


def test_a_close_delimiter_without_a_line_end_after_it_is_refused():
    """email reads ``--B--epilogue`` as content of the last part, Werkzeug as the close: two readings."""
    body = form_body(B, [(FILE_HEADERS, b"")], epilogue=DICOM)
    assert email_files(body, B)[0].endswith(DICOM)
    assert_uninspectable(f"multipart/form-data; boundary={B}", body)
    padded = form_body(B, [(TEXT_HEADERS, b"hello")], epilogue=b" \t\r\nepilogue")
    assert parse_multipart(padded, B, 10).parts[0].content == b"hello"
