"""The adapter end to end without sockets: triage, real pipeline, rebuilt heads, blocks."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
from urllib.parse import quote_from_bytes, unquote_to_bytes

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from icapdlp.adaptation.api import Block, Body, NeedBody, NoChange, PartialReplace, Replace
from icapdlp.verdict import BlockReason
from tests.adaptation.helpers import make_adapter, make_settings, request_tx, response_tx
from tests.payload.helpers import form_body
from tests.support.synthetic import make_ct

ADAPTER = make_adapter()


def run(coro):
    return asyncio.run(coro)


def decide(tx, body: bytes, preview_size: int = 4096):
    """What a server would do: preview first, then the whole body when asked."""
    complete = len(body) <= preview_size
    decision = run(ADAPTER.on_preview(tx, body[:preview_size], complete))
    if isinstance(decision, NeedBody):
        decision = run(ADAPTER.on_body(tx, Body(data=body)))
    return decision


def body_bytes(decision: Replace) -> bytes:
    return decision.body.read_all() if isinstance(decision.body, Body) else decision.body


def assert_clean_dicom(data: bytes, synthetic) -> None:
    assert synthetic.surviving(data) == []
    ds = pydicom.dcmread(DicomBytesIO(data))
    assert ds.PatientIdentityRemoved == "YES"
    assert data[:128] == b"\0" * 128


def test_raw_upload_is_rewritten_and_heads_fixed():
    obj = make_ct(11)
    tx = request_tx("application/dicom", len(obj.data))
    decision = decide(tx, obj.data)
    assert isinstance(decision, Replace) and decision.response is None
    out = body_bytes(decision)
    assert_clean_dicom(out, obj)
    headers = decision.request.headers
    assert headers.get("Content-Length") == str(len(out))
    for stale in ("ETag", "Content-MD5", "Digest"):
        assert headers.get(stale) is None
    assert headers.get("X-Keep") == "1" and headers.get("Host") == "pacs.example"
    assert decision.report.objects_by_wrapping == {"raw": 1} and decision.report.wrapping == "raw"
    assert decision.report.instance_refs and decision.report.totals.uids_replaced > 0


def test_non_dicom_passes_once_all_of_it_was_seen_never_from_a_partial_preview():
    body = b"<html>" + b"<p>x x</p>" * 20_000  # words: a run of 200 000 x's would be base64, read whole
    tx = response_tx("text/html", len(body))
    assert isinstance(run(ADAPTER.on_preview(tx, body[:4096], False)), NeedBody)
    decision = run(ADAPTER.on_body(tx, Body(data=body)))
    assert isinstance(decision, NoChange) and decision.report is None  # cleared unopened: nothing to report
    small = b"<html>" + b"x" * 2000
    decision = run(ADAPTER.on_preview(response_tx("text/html", len(small)), small, True))
    assert isinstance(decision, NoChange)


def test_lying_content_type_is_still_found_and_rewritten():
    obj = make_ct(12, bare=True)
    decision = decide(response_tx("image/png", len(obj.data)), obj.data)
    assert isinstance(decision, Replace) and decision.request is None
    assert obj.surviving(body_bytes(decision)) == []
    headers = decision.response.headers
    assert headers.get("ETag") is None and headers.get("Last-Modified") is None


def test_form_upload_keeps_other_fields_byte_identical():
    obj = make_ct(13)
    b = "formBoundary123"
    note = (b'Content-Disposition: form-data; name="note"', b"hello")
    body = form_body(b, [note, (b'Content-Disposition: form-data; name="f"; filename="a.dcm"\r\n'
                                b"Content-Type: application/dicom", obj.data)])
    decision = decide(request_tx(f"multipart/form-data; boundary={b}", len(body)), body)
    out = body_bytes(decision)
    assert out.startswith(body[:body.index(b"a.dcm")])  # the text field and the part head, byte for byte
    assert obj.surviving(out) == []
    assert decision.report.objects_by_wrapping == {"form": 1}


def test_stow_body_with_several_instances_keeps_uid_references_consistent():
    study = [make_ct(20, instance_number=i + 1) for i in range(3)]
    body = form_body("stow", [(b"Content-Type: application/dicom", s.data) for s in study])
    ctype = 'multipart/related; type="application/dicom"; boundary=stow'
    decision = decide(request_tx(ctype, len(body)), body)
    out = body_bytes(decision)
    for s in study:
        assert s.surviving(out) == []
    assert decision.report.objects_by_wrapping == {"stow": 3}


def test_dicom_json_uids_match_the_rewritten_instance():
    obj = make_ct(21)
    as_json = json.dumps([obj.dataset.to_json_dict()]).encode()
    json_decision = decide(response_tx("application/dicom+json", len(as_json)), as_json)
    raw_decision = decide(response_tx("application/dicom", len(obj.data)), obj.data)
    new_json = json.loads(body_bytes(json_decision))[0]
    new_ds = pydicom.dcmread(DicomBytesIO(body_bytes(raw_decision)))
    assert new_json["0020000D"]["Value"][0] == new_ds.StudyInstanceUID != obj.dataset.StudyInstanceUID
    assert new_json["00080018"]["Value"][0] == new_ds.SOPInstanceUID
    assert obj.surviving(body_bytes(json_decision)) == []
    assert json_decision.report.objects_by_wrapping == {"json": 1}


def test_gzip_encoded_upload_is_reencoded():
    obj = make_ct(22)
    coded = gzip.compress(obj.data)
    tx = request_tx("application/dicom", len(coded), extra=[("Content-Encoding", "gzip")])
    decision = decide(tx, coded)
    out = gzip.decompress(body_bytes(decision))
    assert_clean_dicom(out, obj)
    assert decision.request.headers.get("Content-Encoding") == "gzip"
    assert decision.request.headers.get("Content-Length") == str(len(body_bytes(decision)))


def test_block_mode_blocks_from_the_preview():
    obj = make_ct(23)
    tx = request_tx("application/dicom", len(obj.data), service="block-req")
    decision = run(ADAPTER.on_preview(tx, obj.data[:4096], False))
    assert isinstance(decision, Block) and decision.reason is BlockReason.POLICY_BLOCKS_DICOM


def test_block_mode_finds_dicom_inside_a_form():
    obj = make_ct(24)
    body = form_body("x", [(b"Content-Type: application/octet-stream", obj.data)])
    decision = decide(request_tx("multipart/form-data; boundary=x", len(body), service="block-req"), body)
    assert isinstance(decision, Block) and decision.reason is BlockReason.POLICY_BLOCKS_DICOM


def test_report_only_passes_unchanged_but_reports():
    obj = make_ct(25)
    decision = decide(request_tx("application/dicom", len(obj.data), service="audit-req"), obj.data)
    assert isinstance(decision, NoChange)
    assert decision.report.objects_by_wrapping == {"raw": 1} and decision.report.totals.actions


def test_unparseable_dicom_is_blocked():
    junk = b"\0" * 128 + b"DICM" + b"\xff" * 500
    decision = decide(request_tx("application/dicom", len(junk)), junk)
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNPARSEABLE_DICOM


def test_unsupported_encoding_is_blocked_from_the_preview():
    tx = request_tx("application/dicom", 100, extra=[("Content-Encoding", "compress")])
    decision = run(ADAPTER.on_preview(tx, b"\x1b" * 100, True))
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNSUPPORTED_ENCODING


def test_spooled_body_is_read_by_path_and_large_results_come_back_as_files(tmp_path):
    from icapdlp.config.server_options import LimitsOptions

    adapter = make_adapter(make_settings(limits=LimitsOptions(spool_memory_bytes=1024)))
    obj = make_ct(26, rows=64, columns=64)
    spooled = tmp_path / "body"
    spooled.write_bytes(obj.data)
    tx = request_tx("application/dicom", len(obj.data))
    decision = run(adapter.on_body(tx, Body(path=str(spooled))))
    assert isinstance(decision.body, Body) and decision.body.path is not None
    out_path = decision.body.path
    assert obj.surviving(decision.body.read_all()) == []
    import gc
    import os

    del decision
    gc.collect()
    assert not os.path.exists(out_path)  # the output file goes away with its Body


def test_206_header_only_rewrite_for_a_large_raw_object():
    obj = make_ct(27, rows=256, columns=256, bits_stored=16, signatures=False)
    tx = request_tx("application/dicom", len(obj.data), allow_206=True)
    preview = obj.data[:16384]
    decision = run(ADAPTER.on_preview(tx, preview, False))
    assert isinstance(decision, PartialReplace)
    rebuilt = decision.prefix + obj.data[decision.original_offset:]
    assert obj.surviving(rebuilt) == []
    assert decision.request.headers.get("Content-Length") == str(len(rebuilt))
    ds = pydicom.dcmread(DicomBytesIO(rebuilt))
    assert ds.PixelData == obj.dataset.PixelData
    assert decision.report.objects_by_wrapping == {"raw": 1}


def test_206_falls_back_to_a_full_read_when_not_allowed_or_header_not_in_preview():
    obj = make_ct(28, rows=256, columns=256, bits_stored=16, signatures=False)
    no_206 = request_tx("application/dicom", len(obj.data), allow_206=False)
    assert isinstance(run(ADAPTER.on_preview(no_206, obj.data[:16384], False)), NeedBody)
    short = request_tx("application/dicom", len(obj.data), allow_206=True)
    assert isinstance(run(ADAPTER.on_preview(short, obj.data[:1024], False)), NeedBody)
    chunked = request_tx("application/dicom", None, allow_206=True, extra=[("Transfer-Encoding", "chunked")])
    assert isinstance(run(ADAPTER.on_preview(chunked, obj.data[:16384], False)), NeedBody)
    # bytes after the Pixel Data (a signature sequence) must be dropped: only a full rewrite can
    signed = make_ct(28, rows=256, columns=256, bits_stored=16, signatures=True)
    tx = request_tx("application/dicom", len(signed.data), allow_206=True)
    assert isinstance(run(ADAPTER.on_preview(tx, signed.data[:16384], False)), NeedBody)


def test_206_is_not_used_when_the_policy_cleans_these_pixels():
    from icapdlp.dicom.options import ProfileOptions

    adapter = make_adapter(make_settings(profile=ProfileOptions(clean_pixel_data=True)))
    obj = make_ct(30, rows=256, columns=256, bits_stored=16, signatures=False)
    tx = request_tx("application/dicom", len(obj.data), allow_206=True)
    assert isinstance(run(adapter.on_preview(tx, obj.data[:16384], False)), NeedBody)


@pytest.mark.parametrize("accept, kind", [(None, "text/html"), ("application/json", "application/json"),
                                          ("text/html,application/json;q=0.9", "text/html")])
def test_block_page_names_reason_and_transaction_only(accept, kind):
    tx = response_tx("application/dicom", 10, accept=accept)
    head, body = ADAPTER.block_response(tx, BlockReason.UNSAFE_ARCHIVE)
    assert head.status == 403 and head.headers.get("Cache-Control") == "no-store"
    assert head.headers.get("Content-Type").startswith(kind)
    assert head.headers.get("Content-Length") == str(len(body))
    assert b"unsafe-archive" in body and b"tx-test-2" in body
    assert b"/studies/1" not in body and b"pacs.example" not in body
    if kind == "application/json":
        assert json.loads(body)["reason"] == "unsafe-archive"


def test_output_is_deterministic_for_the_same_key():
    obj = make_ct(29)
    first = body_bytes(decide(request_tx("application/dicom", len(obj.data)), obj.data))
    second = body_bytes(decide(request_tx("application/dicom", len(obj.data)), obj.data))
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


def test_large_spooled_raw_object_is_spliced_header_plus_original_pixels(tmp_path, monkeypatch):
    from icapdlp.adaptation import splice

    monkeypatch.setattr(splice, "SPLICE_MIN_BYTES", 1024)
    obj = make_ct(31, rows=128, columns=128, frames=4, bits_stored=16, signatures=False)
    spooled = tmp_path / "body"
    spooled.write_bytes(obj.data)
    decision = run(ADAPTER.on_body(request_tx("application/dicom", len(obj.data)), Body(path=str(spooled))))
    out = body_bytes(decision)
    partial = run(ADAPTER.on_preview(request_tx("application/dicom", len(obj.data), allow_206=True),
                                     obj.data[:16384], False))
    assert out == partial.prefix + obj.data[partial.original_offset:]  # same bytes as the 206 path
    assert obj.surviving(out) == []
    assert out.endswith(obj.dataset.PixelData)
    assert decision.request.headers.get("Content-Length") == str(len(out))


def test_spooled_object_the_splice_declines_goes_through_the_whole_pipeline(tmp_path, monkeypatch):
    from icapdlp.adaptation import splice

    monkeypatch.setattr(splice, "SPLICE_MIN_BYTES", 1024)
    obj = make_ct(32, rows=128, columns=128, frames=4, bits_stored=12)  # unused high bits must be zeroed
    spooled = tmp_path / "body"
    spooled.write_bytes(obj.data)
    tx = request_tx("application/dicom", len(obj.data))
    out = body_bytes(run(ADAPTER.on_body(tx, Body(path=str(spooled)))))
    assert_clean_dicom(out, obj)
    import numpy as np

    planted = np.frombuffer(obj.dataset.PixelData, "<u2")
    stored = np.frombuffer(pydicom.dcmread(DicomBytesIO(out)).PixelData, "<u2")
    assert (planted & 0xF000).any() and not (stored & 0xF000).any()  # the splice would have kept them


class RefusingPool:
    async def run(self, fn, *args, deadline=None):
        raise AssertionError("non-DICOM must not reach a worker")


def test_whole_body_without_preview_is_triaged_on_the_loop():
    from icapdlp.adaptation.factory import build_adapter
    from tests.adaptation.helpers import KEY

    adapter = build_adapter(make_settings(), KEY, RefusingPool())
    body = b"<html>" + b"<p>x x</p>" * 20_000  # within LOOP_CLASSIFY_BYTES: a scan on the loop, no worker
    decision = run(adapter.on_body(response_tx("text/html", len(body)), Body(data=body)))
    assert isinstance(decision, NoChange)


def test_per_service_profile_overrides_the_global_one():
    from icapdlp.config.schema import ServiceOptions
    from icapdlp.dicom.options import ProfileOptions

    settings = make_settings(services={
        "deid-req": ServiceOptions(method="REQMOD"),
        "research-req": ServiceOptions(method="REQMOD",
                                       profile=ProfileOptions(clean_pixel_data=False, retain_uids=True)),
    })
    adapter = make_adapter(settings)
    obj = make_ct(33)
    outputs = {}
    for service in ("deid-req", "research-req"):
        tx = request_tx("application/dicom", len(obj.data), service=service)
        outputs[service] = body_bytes(run(adapter.on_body(tx, Body(data=obj.data))))
    study_uid = obj.dataset.StudyInstanceUID.encode()
    assert study_uid not in outputs["deid-req"]
    assert study_uid in outputs["research-req"]
    assert obj.dataset.PatientName.family_name.encode() not in outputs["research-req"]


def test_unknown_service_is_refused_not_crashed():
    tx = request_tx("application/dicom", 10, service="nope")
    decision = run(ADAPTER.on_preview(tx, b"x" * 10, True))
    assert isinstance(decision, Block) and decision.reason is BlockReason.INTERNAL_ERROR


def test_output_that_cannot_be_written_is_blocked_as_spool_failed(tmp_path):
    from icapdlp.config.server_options import LimitsOptions

    missing = tmp_path / "gone"  # the spool folder vanished (disk unmounted, cleaned up)
    limits = LimitsOptions(spool_memory_bytes=1024, spool_dir=str(missing))
    adapter = make_adapter(make_settings(limits=limits))
    obj = make_ct(34, rows=64, columns=64)
    decision = run(adapter.on_body(request_tx("application/dicom", len(obj.data)), Body(data=obj.data)))
    assert isinstance(decision, Block) and decision.reason is BlockReason.SPOOL_FAILED


def test_byte_ranges_of_dicom_are_blocked_and_other_ranges_pass():
    import dataclasses

    from icapdlp.http import HttpHeaders, HttpResponseHead

    obj = make_ct(35)
    content_range = ("Content-Range", f"bytes 1000-5999/{len(obj.data)}")
    base = response_tx("application/dicom", 5000, extra=[content_range])
    ranged = dataclasses.replace(base, response=HttpResponseHead("HTTP/1.1", 206, "Partial Content",
                                                                 base.response.headers))
    decision = run(ADAPTER.on_preview(ranged, obj.data[1000:5096], False))
    assert isinstance(decision, Block) and decision.reason is BlockReason.UNPARSEABLE_DICOM
    page = dataclasses.replace(ranged, response=HttpResponseHead(
        "HTTP/1.1", 206, "Partial Content", HttpHeaders([("Content-Type", "text/html")])))
    assert isinstance(run(ADAPTER.on_preview(page, b"<html>" * 1000, True)), NoChange)


def test_json_documents_that_are_not_instances_are_deidentified_not_blocked():
    # a STOW-RS Store Instances Response and a QIDO-RS study match: no SOP UIDs of their own
    referenced = {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
                  "00081155": {"vr": "UI", "Value": ["1.2.3.4.5"]}}
    stow_answer = {"00081190": {"vr": "UR", "Value": ["http://pacs.example/studies/1.2.3.4"]},
                   "00081199": {"vr": "SQ", "Value": [referenced]}}
    study_match = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "QUIXOTEPHI^ALONSO"}]},
                   "0020000D": {"vr": "UI", "Value": ["1.2.3.4"]},
                   "00100020": {"vr": "LO", "Value": ["PIDPHI00042X"]}}
    for document in (stow_answer, [study_match]):
        body = json.dumps(document).encode()
        decision = decide(response_tx("application/dicom+json", len(body)), body)
        assert isinstance(decision, Replace), decision
        out = body_bytes(decision)
        parsed = json.loads(out)
        first = parsed[0] if isinstance(parsed, list) else parsed
        assert "00080016" not in first and "00080018" not in first  # the lent UIDs are gone again
        for value in (b"QUIXOTEPHI", b"PIDPHI00042X", b"1.2.3.4"):  # 1.2.3.4 is in the URL too
            assert value not in out


@pytest.mark.parametrize("header", ["GZIP", "x-gzip", "gzip, identity", "identity, Gzip", " gzip "])
def test_content_encoding_spellings_receivers_accept_are_undone_not_refused(header):
    """Tokens are case-insensitive, x-gzip is gzip and identity is nothing (RFC 9110 §8.4.1)."""
    obj = make_ct(26)
    coded = gzip.compress(obj.data)
    tx = request_tx("application/dicom", len(coded), extra=[("Content-Encoding", header)])
    decision = decide(tx, coded)
    assert isinstance(decision, Replace), decision
    assert_clean_dicom(gzip.decompress(body_bytes(decision)), obj)
    assert decision.request.headers.get("Content-Encoding") == header


def test_content_encoding_split_over_two_header_fields_is_undone():
    obj = make_ct(27)
    coded = gzip.compress(obj.data)
    tx = request_tx("application/dicom", len(coded),
                    extra=[("Content-Encoding", "identity"), ("Content-Encoding", "GZIP")])
    decision = decide(tx, coded)
    assert isinstance(decision, Replace), decision
    assert_clean_dicom(gzip.decompress(body_bytes(decision)), obj)


@pytest.mark.parametrize("coding", ["br", "zstd"])
def test_a_download_labelled_image_jpeg_under_br_or_zstd_is_rewritten(coding):
    """Issue 12 item 4: came through Squid as image/jpeg and curl --compressed got the DICOM."""
    from icapdlp.payload.encoding import encode, inflate

    obj = make_ct(28)
    coded = encode(obj.data, coding)
    tx = response_tx("image/jpeg", len(coded), extra=[("Content-Encoding", coding)])
    decision = decide(tx, coded)
    assert isinstance(decision, Replace), decision
    assert_clean_dicom(inflate(body_bytes(decision), coding, 1 << 24), obj)
    assert decision.response.headers.get("Content-Encoding") == coding


@pytest.mark.parametrize("coding", ["bzip2", "xz", "zstd"])
def test_a_compressed_dicom_file_upload_is_rewritten(coding):
    from icapdlp.payload.encoding import encode, inflate

    obj = make_ct(29)
    coded = encode(obj.data, coding)
    decision = decide(request_tx("application/octet-stream", len(coded)), coded)
    assert isinstance(decision, Replace), decision
    assert_clean_dicom(inflate(body_bytes(decision), coding, 1 << 24), obj)


@pytest.mark.parametrize("content_type, wrap", [
    ("application/json", lambda data: json.dumps({"file": base64.b64encode(data).decode()}).encode()),
    ("text/plain", lambda data: base64.encodebytes(data)),
    ("text/plain", lambda data: data.hex().encode()),
    ("application/x-www-form-urlencoded", lambda data: b"file=" + quote_from_bytes(data, safe="").encode()),
])
def test_a_dicom_file_written_as_text_is_rewritten_end_to_end(content_type, wrap):
    """Issue 12 item 4: base64 and hex bodies passed from the preview with the DICOM inside."""
    obj = make_ct(30)
    body = wrap(obj.data)
    decision = decide(request_tx(content_type, len(body)), body)
    assert isinstance(decision, Replace), decision
    out = body_bytes(decision)
    if content_type == "application/json":
        clean = base64.b64decode(json.loads(out)["file"])
    elif content_type.endswith("urlencoded"):
        clean = unquote_to_bytes(out[len(b"file="):])
    else:
        clean = bytes.fromhex(out.decode()) if b"\n" not in body else base64.b64decode(out)
    assert_clean_dicom(clean, obj)
    assert obj.surviving(out) == []


def test_a_tar_gz_whose_dicom_member_follows_80_kb_of_noise_is_not_passed():
    """Issue 12 item 2: the gzip was judged on its first 64 KiB inflated, which held only noise."""
    import io
    import os
    import tarfile

    obj = make_ct(31)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("noise.bin", os.urandom(80_000)), ("IM0001.dcm", obj.data)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    body = out.getvalue()
    decision = decide(response_tx("application/octet-stream", len(body)), body)
    assert isinstance(decision, (Block, Replace)), decision  # passed unchanged before
    if isinstance(decision, Replace):  # decoded whole, read as a tar, its DICOM member rewritten
        with tarfile.open(fileobj=io.BytesIO(body_bytes(decision)), mode="r:gz") as tar:
            members = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
        assert obj.surviving(members) == []
