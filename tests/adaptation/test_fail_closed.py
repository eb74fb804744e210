"""Whole-body classification: a body passes only when all of it is accounted for (issue 12).

Each case here carried a planted patient name past the gateway before: the
adapter answered "no change" from a preview, or passed bytes no wrapping
claimed. Each is driven the way Squid drives the server (a 4 KiB preview,
then the whole body when asked) through the real pipeline, and must end
blocked with a reason or rewritten with no planted value left in what a
receiver would decode.
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import quote_from_bytes, unquote_to_bytes

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from icapdlp.adaptation.api import Block, Body, NeedBody, NoChange, Replace
from icapdlp.config.schema import ServiceOptions
from icapdlp.verdict import BlockReason
from tests.adaptation.helpers import make_adapter, make_settings, request_tx
from tests.support.synthetic import make_ct

ADAPTER = make_adapter()
PREVIEW = 4096


def decide(tx, body: bytes, adapter=ADAPTER):
    complete = len(body) <= PREVIEW
    decision = asyncio.run(adapter.on_preview(tx, body[:PREVIEW], complete))
    if isinstance(decision, NeedBody):
        decision = asyncio.run(adapter.on_body(tx, Body(data=body)))
    return decision


def body_of(decision: Replace) -> bytes:
    return decision.body.read_all() if isinstance(decision.body, Body) else decision.body


def assert_blocked_or_clean(decision, obj, decode=lambda data: data) -> None:
    """Blocked with a reason, or rewritten so that no planted value survives decoding."""
    assert not isinstance(decision, NoChange), "the planted object passed unchanged"
    if isinstance(decision, Block):
        assert decision.reason in BlockReason
        return
    assert isinstance(decision, Replace)
    assert obj.surviving(decode(body_of(decision))) == []


def _bare(ds: pydicom.Dataset, *, little_endian: bool = True, implicit_vr: bool = True) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = little_endian, implicit_vr
    pydicom.filewriter.write_dataset(buffer, ds)
    return buffer.getvalue()


def _dataset(seed: int) -> tuple[object, pydicom.Dataset]:
    obj = make_ct(seed, transfer_syntax="implicit-le")
    ds = pydicom.dcmread(DicomBytesIO(obj.data))
    del ds.file_meta
    return obj, ds


# -- item 5: bare datasets a lenient reader takes ---------------------------

def test_a_bare_big_endian_dataset_is_not_passed():
    obj, ds = _dataset(501)
    body = _bare(ds, little_endian=False, implicit_vr=False)
    read_back = pydicom.dcmread(DicomBytesIO(body), force=True)  # a lenient receiver reads it
    assert str(read_back.PatientName).startswith("QUIXOTEPHI")
    assert_blocked_or_clean(decide(request_tx("application/octet-stream", len(body)), body), obj)


def test_a_bare_dataset_starting_in_the_patient_group_is_not_passed():
    obj, ds = _dataset(502)
    for element in [e for e in ds if e.tag.group < 0x0010]:
        del ds[element.tag]
    body = _bare(ds)
    assert body[:2] == b"\x10\x00"
    assert_blocked_or_clean(decide(request_tx("text/plain", len(body)), body), obj)


def test_a_bare_dataset_with_its_first_elements_out_of_order_is_not_passed():
    obj, ds = _dataset(503)
    body = _bare(ds)
    first = 8 + int.from_bytes(body[4:8], "little")
    second = first + 8 + int.from_bytes(body[first + 4:first + 8], "little")
    swapped = body[first:second] + body[:first] + body[second:]
    assert_blocked_or_clean(decide(request_tx("application/x-www-form-urlencoded", len(swapped)), swapped), obj)


# -- items 6 and 7: the DICOM JSON and XML models by content -------------------

def _json_model(seed: int) -> tuple[object, dict]:
    obj = make_ct(seed)
    ds = pydicom.dcmread(DicomBytesIO(obj.data))
    del ds.PixelData
    return obj, ds.to_json_dict()


@pytest.mark.parametrize("shape", ["bom", "whitespace", "empty-first", "wrapped"])
def test_dicom_json_sent_as_plain_json_is_deidentified(shape):
    obj, model = _json_model(510)
    if shape == "bom":
        body = b"\xef\xbb\xbf" + json.dumps([model]).encode()
    elif shape == "whitespace":
        body = b" " * 600 + b"\n" * 10 + json.dumps([model]).encode()
    elif shape == "empty-first":
        body = json.dumps([{}, model]).encode()
    else:
        body = json.dumps({"upload": {"study": model, "note": "for review"}}).encode()
    assert obj.surviving(body), "the test body must carry the planted values"
    decision = decide(request_tx("application/json", len(body)), body)
    assert isinstance(decision, Replace)
    out = body_of(decision)
    assert obj.surviving(out) == []
    json.loads(out)


def test_json_with_dicom_elements_that_does_not_parse_is_blocked():
    obj, model = _json_model(511)
    body = json.dumps([model]).encode()[:-1] + b",]"  # a trailing comma: JSON5 and eval read it
    decision = decide(request_tx("application/json", len(body)), body)
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNPARSEABLE_DICOM


@pytest.mark.parametrize("content_type", ["application/dicom+xml", "text/xml", "application/octet-stream"])
def test_the_dicom_xml_model_is_never_passed(content_type):
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xml:space="preserve">'
            b'<DicomAttribute tag="00100010" vr="PN" keyword="PatientName"><PersonName number="1">'
            b"<Alphabetic><FamilyName>QUIXOTEPHI</FamilyName></Alphabetic></PersonName></DicomAttribute>"
            b"</NativeDicomModel>")
    decision = decide(request_tx(content_type, len(body)), body)
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNPARSEABLE_DICOM


# -- DICOM past the preview, in content no wrapping claims -------------------

def test_a_dicom_file_after_70_kb_of_other_bytes_is_not_passed():
    obj = make_ct(520)
    body = os.urandom(70_000).replace(b"DICM", b"DICN").replace(b"PK", b"QK") + obj.data
    decision = decide(request_tx("application/octet-stream", len(body)), body)
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNPARSEABLE_DICOM


def test_a_percent_encoded_file_in_a_form_is_decoded_and_rewritten():
    """``curl --data-urlencode file@ct.dcm``: Werkzeug hands the application the decoded bytes."""
    obj = make_ct(521)
    body = b"study=A1&file=" + quote_from_bytes(obj.data, safe="").encode() + b"&note=ok"
    decision = decide(request_tx("application/x-www-form-urlencoded", len(body)), body)

    def decoded_fields(data: bytes) -> bytes:
        return b"\n".join(unquote_to_bytes(part.partition(b"=")[2]) for part in data.split(b"&"))

    assert obj.surviving(decoded_fields(body))
    assert_blocked_or_clean(decision, obj, decode=decoded_fields)
    assert isinstance(decision, Replace)
    out = body_of(decision)
    assert out.startswith(b"study=A1&file=") and out.endswith(b"&note=ok")


# -- formats icapdlp cannot open --------------------------------------------

SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(range(256)) * 4


def test_an_archive_format_that_cannot_be_opened_is_blocked_as_uninspectable():
    decision = decide(request_tx("application/octet-stream", len(SEVEN_ZIP)), SEVEN_ZIP)
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNINSPECTABLE


def test_a_service_may_let_uninspectable_bytes_pass_but_still_rewrites_dicom():
    settings = make_settings(services={"deid-req": ServiceOptions(method="REQMOD", uninspectable="pass"),
                                       "deid-resp": ServiceOptions(method="RESPMOD")})
    adapter = make_adapter(settings)
    decision = decide(request_tx("application/octet-stream", len(SEVEN_ZIP)), SEVEN_ZIP, adapter)
    assert isinstance(decision, NoChange)
    obj = make_ct(522)
    boundary = "pass1"
    body = (f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode() + SEVEN_ZIP
            + f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + obj.data
            + f"\r\n--{boundary}--\r\n".encode())
    decision = decide(request_tx(f"multipart/form-data; boundary={boundary}", len(body)), body, adapter)
    assert isinstance(decision, Replace)
    out = body_of(decision)
    assert obj.surviving(out) == [] and SEVEN_ZIP in out


# -- and no over-blocking of what is plainly not DICOM ----------------------

@pytest.mark.parametrize("content_type, body", [
    ("application/javascript", b"if (magic !== 'DICM') { throw new Error('not DICOM'); }\n" * 2000),
    ("application/json", json.dumps({"commits": {"deadbeef": {"author": "x"}}, "n": [1] * 5000}).encode()),
    ("application/x-www-form-urlencoded", b"q=" + b"a+b%20c" * 100 + b"&page=2"),
    ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400),
])
def test_plainly_non_dicom_bodies_pass_after_a_full_look(content_type, body):
    decision = decide(request_tx(content_type, len(body)), body)
    assert isinstance(decision, NoChange)


def test_a_mime_body_without_a_declared_type_is_split_by_its_own_boundary():
    """A zip member that is a multipart message: a receiver that reads its first line finds the part."""
    import io
    import zipfile

    obj, ds = _dataset(530)
    bare = _bare(ds)
    message = (b"--inner7\r\nContent-Type: application/octet-stream\r\n\r\n" + bare + b"\r\n--inner7--\r\n")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("message.mime", message)
    body = out.getvalue()
    decision = decide(request_tx("application/zip", len(body)), body)

    def members(data: bytes) -> bytes:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return b"".join(archive.read(info) for info in archive.infolist())

    assert_blocked_or_clean(decision, obj, decode=members)


def test_decoy_patient_headers_cannot_hide_an_embedded_dataset():
    """Look-alikes of the Patient's Name header before the real one: checked, or the body refused."""
    obj, ds = _dataset(540)
    decoys = b"\x10\x00\x10\x00\xff\xff" * 5000  # 5,000 decoys: more than are checked one by one
    body = b"\x89PNG\r\n\x1a\n" + decoys + _bare(ds)
    decision = decide(request_tx("image/png", len(body)), body)
    assert isinstance(decision, Block)
    few = b"\x89PNG\r\n\x1a\n" + b"\x10\x00\x10\x00\xff\xff" * 100 + _bare(ds)
    decision = decide(request_tx("image/png", len(few)), few)
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNPARSEABLE_DICOM
