"""Every wrapping: what is found, with which label, and how the body is rebuilt."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icapdlp.payload.options import PayloadOptions
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import MARK, UnchangedRewriter, form_body, marker, walk
from tests.payload.test_archive import make_zip
from tests.support.synthetic import make_ct

DCM = make_ct(1).data
BARE = make_ct(2, bare=True, transfer_syntax="implicit-le").data
B = "----WebKitFormBoundary7MA4YWxkTrZu0gW"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("content_type", ["application/dicom", "application/octet-stream", "text/plain",
                                          None])
@pytest.mark.parametrize("data", [DCM, BARE], ids=["part10", "bare"])
def test_raw_body_of_any_declared_type(content_type, data):
    result, rewriter = walk(content_type, data)
    assert result.changed and result.body == marker(data)
    assert rewriter.seen == [data]
    assert result.findings.objects_by_wrapping == {"raw": 1}
    assert result.findings.wrapping == "raw"


def test_non_dicom_body_is_returned_as_the_same_object():
    body = b"<html>" + b"x" * 5000
    result, rewriter = walk("text/html", body)
    assert result.body is body and not result.changed and not rewriter.seen
    assert result.findings.wrapping == "none"


def test_form_upload_rewrites_only_dicom_parts_and_keeps_the_rest_byte_identical():
    text_field = (b'Content-Disposition: form-data; name="comment"', b"see attached")
    other_file = (b'Content-Disposition: form-data; name="f1"; filename="r.pdf"\r\n'
                  b"Content-Type: application/pdf", b"%PDF-1.4 not dicom")
    dicom_file = (b'Content-Disposition: form-data; name="f2"; filename="a.dcm"\r\n'
                  b"Content-Type: application/octet-stream", DCM)
    sneaky = (b'Content-Disposition: form-data; name="f3"; filename="x.txt"\r\nContent-Type: text/plain',
              BARE)
    body = form_body(B, [text_field, other_file, dicom_file, sneaky], preamble=b"pre\r\n", epilogue=b"\r\n")
    result, rewriter = walk(f"multipart/form-data; boundary={B}", body)
    # the parts keep every byte; the uninspected preamble is dropped from the rewritten body
    expected = form_body(B, [text_field, other_file, (dicom_file[0], marker(DCM)), (sneaky[0], marker(BARE))],
                         epilogue=b"\r\n")
    assert result.body == expected
    assert result.findings.objects_by_wrapping == {"form": 2}
    assert result.findings.wrapping == "form"


@pytest.mark.parametrize("preamble, epilogue, kept_epilogue", [
    (b"This is a multi-part message in MIME format.\r\n", b"\r\ntrailing words", b"\r\n"),
    (b"", b"\r\n" + DCM[-60:], b"\r\n"),          # element bytes copied past the close delimiter
    (DCM[128:200] + b"\r\n", b"", b""),             # element bytes before the first delimiter
])
def test_rewritten_form_drops_preamble_and_epilogue(preamble, epilogue, kept_epilogue):
    """Nothing inspects the text outside the parts, so a rewritten body must not carry it (fuzz finding)."""
    dicom_file = (b'Content-Disposition: form-data; name="f"; filename="a.dcm"\r\n'
                  b"Content-Type: application/dicom", DCM)
    body = form_body(B, [dicom_file], preamble=preamble, epilogue=epilogue)
    result, _ = walk(f"multipart/form-data; boundary={B}", body)
    assert result.body == form_body(B, [(dicom_file[0], marker(DCM))], epilogue=kept_epilogue)
    assert result.body.startswith(b"--" + B.encode())


def test_form_without_dicom_keeps_preamble_and_epilogue():
    body = form_body(B, [(b'Content-Disposition: form-data; name="a"', b"1")], preamble=b"pre\r\n",
                     epilogue=b"\r\nepilogue")
    result, _ = walk(f"multipart/form-data; boundary={B}", body)
    assert result.body is body


def test_form_without_dicom_is_unchanged():
    body = form_body(B, [(b'Content-Disposition: form-data; name="a"', b"1")])
    result, _ = walk(f'multipart/form-data; boundary="{B}"', body)
    assert result.body is body


@pytest.mark.parametrize("direction, label", [("request", "stow"), ("response", "wado")])
def test_dicomweb_multipart_related(direction, label):
    parts = [(b"Content-Type: application/dicom", DCM), (b"", BARE)]  # second part inherits type=
    body = form_body("rel", parts)
    ctype = 'multipart/related; type="application/dicom"; boundary=rel'
    result, rewriter = walk(ctype, body, direction=direction)
    assert result.body == form_body("rel", [(parts[0][0], marker(DCM)), (b"", marker(BARE))])
    assert result.findings.objects_by_wrapping == {label: 2}
    assert result.findings.wrapping == label


@pytest.mark.parametrize("part_type", [b"application/octet-stream", b"image/jpeg"])
def test_bulk_data_parts_block_by_default_and_pass_when_allowed(part_type):
    body = form_body("rel", [(b"Content-Type: " + part_type, b"\x01\x02\x03\x04" * 100)])
    ctype = 'multipart/related; type="application/octet-stream"; boundary=rel'
    with pytest.raises(Blocked) as info:
        walk(ctype, body, direction="response")
    assert info.value.reason is BlockReason.UNCHECKABLE_BULK_DATA
    result, _ = walk(ctype, body, direction="response", options=PayloadOptions(bulk_data="allow"))
    assert result.body is body


def test_octet_stream_in_a_form_is_an_ordinary_file_not_bulk_data():
    body = form_body(B, [(b"Content-Type: application/octet-stream", b"\x01\x02" * 100)])
    result, _ = walk(f"multipart/form-data; boundary={B}", body)
    assert result.body is body


def test_dicom_json_body():
    datasets = [{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
                 "7FE00010": {"vr": "OW", "BulkDataURI": "http://pacs/studies/1.2.3/bulk"}}]
    result, rewriter = walk("application/dicom+json", json.dumps(datasets).encode(), direction="response")
    out = json.loads(result.body)
    assert out[0]["00100010"]["Value"] == [{"Alphabetic": "ANON"}]
    assert b"1.2.3" not in result.body and b"DOE" not in result.body
    assert result.findings.objects_by_wrapping == {"json": 1}


def test_plain_json_that_is_the_dicom_model_is_found_and_other_json_is_not():
    model = json.dumps([{"00100020": {"vr": "LO", "Value": ["X"]}}]).encode()
    assert walk("application/json", model)[0].changed
    other = b'{"user": "x", "items": [1, 2]}'
    assert walk("application/json", other)[0].body is other


def test_zip_of_a_study():
    data = make_zip({"study/IM1": DCM, "study/IM2.dcm": BARE, "study/DICOMDIR": DCM, "readme.txt": b"hi"})
    result, rewriter = walk("application/zip", data, direction="response")
    with zipfile.ZipFile(io.BytesIO(result.body)) as archive:
        assert archive.namelist() == ["study/IM1", "study/IM2.dcm", "readme.txt"]
        assert archive.read("study/IM1") == marker(DCM)
        assert archive.read("study/IM2.dcm") == marker(BARE)
        assert archive.read("readme.txt") == b"hi"
    assert result.findings.objects_by_wrapping == {"zip": 2}
    assert result.findings.wrapping == "zip"


def test_zip_without_dicom_is_unchanged_even_under_another_type():
    data = make_zip({"a.txt": b"hello"})
    assert walk("application/octet-stream", data)[0].body is data


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_content_encoding_is_undone_and_redone(coding):
    import zlib

    coded = gzip.compress(DCM) if coding == "gzip" else zlib.compress(DCM)
    result, _ = walk("application/dicom", coded, codings=[coding])
    from icapdlp.payload.encoding import inflate

    assert inflate(result.body, coding, 1 << 20) == marker(DCM)
    # the label says a compressed layer was undone to reach the object (issue 16.8)
    assert result.findings.objects_by_wrapping == {"compressed>raw": 1}
    assert result.findings.wrapping == "compressed>raw"


def test_gzip_file_holding_dicom_and_one_holding_text():
    result, _ = walk("application/gzip", gzip.compress(DCM))
    assert gzip.decompress(result.body) == marker(DCM)
    assert result.findings.objects_by_wrapping == {"compressed>raw": 1} and result.findings.wrapping == "compressed>raw"
    text = gzip.compress(b"plain text " * 100)
    assert walk("application/gzip", text)[0].body is text


@pytest.mark.parametrize("content_type", ["application/dicom", "text/plain", "image/jpeg", None])
def test_unknown_content_coding_is_refused_whatever_the_type(content_type):
    with pytest.raises(Blocked) as info:
        walk(content_type, b"...", codings=["compress"])
    assert info.value.reason is BlockReason.UNSUPPORTED_ENCODING


def test_nesting_limit_at_limit_and_one_past():
    # zip inside zip inside ... : each level is one more wrapping
    def nest(levels: int) -> bytes:
        data = DCM
        for i in range(levels):
            data = make_zip({f"level{i}.zip" if i else "x.dcm": data}, method=zipfile.ZIP_STORED)
        return data

    options = PayloadOptions(max_nesting=3)
    result, _ = walk("application/zip", nest(3), options=options)
    assert result.findings.objects_by_wrapping == {"zip": 1}
    with pytest.raises(Blocked) as info:
        walk("application/zip", nest(4), options=options)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_report_only_rewriter_leaves_every_wrapping_unchanged_but_counts():
    body = form_body(B, [(b"Content-Type: application/dicom", DCM)])
    result, rewriter = walk(f"multipart/form-data; boundary={B}", body, rewriter=UnchangedRewriter())
    assert result.body is body and not result.changed
    assert result.findings.objects_by_wrapping == {"form": 1}
    zipped = make_zip({"a.dcm": DCM})
    assert walk("application/zip", zipped, rewriter=UnchangedRewriter())[0].body is zipped


def test_dicom_xml_model_is_refused():
    body = form_body("rel", [(b"Content-Type: application/dicom+xml", b"<NativeDicomModel/>")])
    with pytest.raises(Blocked) as info:
        walk('multipart/related; type="application/dicom+xml"; boundary=rel', body)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


@pytest.mark.parametrize("stray", [b"\x01", b"\xe4", b"\x00"])
def test_dicom_xml_model_in_text_with_a_stray_binary_byte_is_refused(stray):
    """One control or invalid UTF-8 byte made the body binary, where the model was not looked for."""
    model = b'<NativeDicomModel><DicomAttribute tag="00100010" vr="PN"/></NativeDicomModel>'
    with pytest.raises(Blocked) as info:
        walk("text/xml", b"<doc>" + model + b"</doc>" + stray)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=500), st.sampled_from([
    "application/dicom", "multipart/form-data; boundary=x",
    'multipart/related; type="application/dicom"; boundary=x',
    "application/zip", "application/gzip", "application/dicom+json", "application/octet-stream", None]),
    st.sampled_from([[], ["gzip"], ["deflate"]]))
def test_arbitrary_bodies_give_a_result_or_a_block(data, content_type, codings):
    try:
        result, _ = walk(content_type, data, codings=codings)
    except Blocked as blocked:
        assert blocked.reason in BlockReason
    else:
        assert result.body is data or MARK in result.body or result.changed


def test_multipart_byteranges_of_dicom_are_refused():
    body = form_body("r", [(b"Content-Type: application/dicom\r\nContent-Range: bytes 0-99/5000", DCM[:100])])
    with pytest.raises(Blocked) as info:
        walk("multipart/byteranges; boundary=r", body, direction="response")
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM
    text = form_body("r", [(b"Content-Type: text/plain\r\nContent-Range: bytes 0-3/10", b"abcd")])
    assert walk("multipart/byteranges; boundary=r", text, direction="response")[0].body is text


def test_dicom_hidden_inside_unpacked_content_is_refused_not_passed():
    unknown = b"\0" * 512 + DCM + b"\0" * 512  # no format the walker unpacks: not a tar header
    with pytest.raises(Blocked) as info:
        walk("application/octet-stream", unknown)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM
    # declared a tar, it is one: an empty archive (a zero block ends it), then trailing bytes, classified
    result, _ = walk("application/x-tar", unknown)
    assert result.body.endswith(marker(DCM + b"\0" * 512)) and DCM not in result.body
    text_field = form_body(B, [(b'Content-Disposition: form-data; name="note"', b"see: " + DCM)])
    with pytest.raises(Blocked):
        walk(f"multipart/form-data; boundary={B}", text_field)
    # the word alone is not a file: a text about DICOM passes
    prose = b"x" * 200 + b"a Part-10 file has DICM at offset 128" + b"x" * 200
    assert walk("text/plain", prose)[0].body is prose


def test_gzip_file_with_dicom_further_in_is_looked_at():
    tgz = gzip.compress(b"\0" * 512 + DCM)
    with pytest.raises(Blocked):
        walk("application/gzip", tgz)


STOW_RELATED = 'multipart/related; type="application/dicom"; boundary=rel'


@pytest.mark.parametrize("part_header", [
    b"Content-Type: applicat\xe9on/dicom",  # one flipped bit in the declared type
    b"Content-Type: text/plain",
    b"Content-Type: application/json",  # JSON that is not the DICOM model
])
def test_a_part_of_a_dicom_related_body_that_is_not_dicom_is_blocked(part_header):
    """type="application/dicom" declares every part DICOM: one we would not rewrite must not pass."""
    without_magic = DCM[:128] + DCM[132:]
    content = b'{"note": "x"}' if b"json" in part_header else without_magic
    body = form_body("rel", [(part_header, content), (b"Content-Type: application/dicom", DCM)])
    with pytest.raises(Blocked) as info:
        walk(STOW_RELATED, body)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM
    form = form_body(B, [(part_header, content)])
    if content is without_magic:  # in a form upload too: its patient module shows without the magic
        with pytest.raises(Blocked) as info:
            walk(f"multipart/form-data; boundary={B}", form)
        assert info.value.reason is BlockReason.UNPARSEABLE_DICOM
    else:  # the same JSON part in a form upload is an ordinary file and passes
        result, _ = walk(f"multipart/form-data; boundary={B}", form)
        assert result.body is form


def test_a_content_coded_unrecognised_part_of_a_dicom_related_body_is_blocked():
    without_magic = gzip.compress(DCM[:128] + DCM[132:])
    body = form_body("rel", [(b"Content-Type: text/plain\r\nContent-Encoding: gzip", without_magic)])
    with pytest.raises(Blocked) as info:
        walk(STOW_RELATED, body)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


def test_a_dicom_related_body_may_carry_json_metadata_and_allowed_bulk_data():
    metadata = json.dumps([{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]}}]).encode()
    parts = [(b"Content-Type: application/dicom", DCM), (b"Content-Type: application/dicom+json", metadata),
             (b"Content-Type: application/octet-stream", b"\x01\x02" * 64)]
    body = form_body("rel", parts)
    with pytest.raises(Blocked) as info:
        walk(STOW_RELATED, body)  # bulk data is blocked by default policy
    assert info.value.reason is BlockReason.UNCHECKABLE_BULK_DATA
    result, rewriter = walk(STOW_RELATED, body, options=PayloadOptions(bulk_data="allow"))
    assert result.findings.objects_by_wrapping == {"stow": 1, "json": 1}
    assert rewriter.json_seen and b"DOE^JANE" not in result.body
    assert b"\x01\x02" * 64 in result.body
