"""Every wrapping through the REAL server: raw ICAP bytes and the real c-icap-client.

REQMOD and RESPMOD, with and without preview, small and large bodies. The
rewritten DICOM is parsed and searched for every planted value at byte level;
non-DICOM bodies are compared by sha256; every block reason we can produce is
provoked and must appear in the reply.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import zipfile

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from tests.adaptation.icap_client import http_request_head, http_response_head, send
from tests.adaptation.wrappings import WRAPPINGS, all_member_bytes, plain_body
from tests.payload.helpers import form_body
from tests.support.processes import start_icapdlp
from tests.support.synthetic import make_ct

pytestmark = [pytest.mark.e2e]

CONFIG = """
[server]
preview_size = 65536
[workers]
processes = 1
task_deadline = 60
[profile]
clean_pixel_data = false
[payload]
max_multipart_parts = 20
[services.deid-req]
method = "REQMOD"
[services.deid-resp]
method = "RESPMOD"
[services.block-req]
method = "REQMOD"
mode = "block"
[services.audit-req]
method = "REQMOD"
mode = "report-only"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_icapdlp(CONFIG, tmp_path_factory.mktemp("icapdlp"))
    yield srv
    srv.stop()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def exchange(server, method: str, content_type: str, extra: list, body: bytes, preview: int | None,
             service: str | None = None, allow: str = "204", accept: str | None = None):
    fields = [("Host", "pacs.example"), ("Content-Type", content_type), ("Content-Length", str(len(body))),
              ("ETag", '"orig"')] + extra
    if method == "REQMOD":
        accept_field = [("Accept", accept)] if accept else []
        return send(server.port, "REQMOD", service or "deid-req",
                    req_head=http_request_head("POST", "/upload", fields + accept_field), body=body,
                    preview=preview, allow=allow)
    return send(server.port, "RESPMOD", service or "deid-resp",
                req_head=http_request_head("GET", "/studies/1", [("Host", "pacs.example")] +
                                           ([("Accept", accept)] if accept else [])),
                res_head=http_response_head(200, fields), body=body, preview=preview, allow=allow)


def check_rewritten(reply, content_type: str, extra: list, objs) -> bytes:
    assert reply.status == 200, reply.raw_head
    coding = dict(extra).get("Content-Encoding")
    assert reply.http_fields.get("content-length") == str(len(reply.body))
    assert "etag" not in reply.http_fields
    payload = all_member_bytes(content_type, plain_body(reply.body, content_type, coding))
    for obj in objs:
        assert obj.surviving(payload) == [], "planted PHI survived"
    return payload


@pytest.mark.parametrize("preview", [None, 4096], ids=["no-preview", "preview"])
@pytest.mark.parametrize("method", ["REQMOD", "RESPMOD"])
@pytest.mark.parametrize("name", sorted(WRAPPINGS))
def test_every_wrapping_is_rewritten(server, name, method, preview):
    content_type, extra, body, objs = WRAPPINGS[name]()
    reply = exchange(server, method, content_type, extra, body, preview)
    payload = check_rewritten(reply, content_type, extra, objs)
    if name in ("raw", "gzip"):
        ds = pydicom.dcmread(DicomBytesIO(payload))
        assert ds.PatientIdentityRemoved == "YES"
    if name == "form":
        assert b"free text field" in reply.body and b"not dicom at all\r\n" in reply.body
        assert reply.body.startswith(body[:body.index(b"scan.dcm")])
    if name == "zip":
        with zipfile.ZipFile(io.BytesIO(reply.body)) as archive:
            assert archive.namelist() == ["STUDY/IM0", "STUDY/IM1", "README.txt"]
            assert archive.read("README.txt") == b"viewer instructions"
    if name == "json":
        assert json.loads(reply.body)[0]["00100010"] != objs[0].dataset.to_json_dict()["00100010"]


@pytest.mark.parametrize("size", [1000, 200 * 1024, 11 * 1024 * 1024], ids=["small", "200KiB", "11MiB"])
@pytest.mark.parametrize("method", ["REQMOD", "RESPMOD"])
def test_non_dicom_passes_untouched(server, method, size):
    body = (b"%PDF-1.7 synthetic\n" + bytes(range(256)) * (size // 256 + 1))[:size]
    reply = exchange(server, method, "application/octet-stream", [], body, 4096)
    # read whole and classified: unchanged (a client that does not pause gets nothing released early)
    assert reply.status == 204, reply.raw_head


def test_non_dicom_without_preview_is_echoed_byte_identical(server):
    body = b"<html>" + bytes(range(256)) * 400
    reply = exchange(server, "RESPMOD", "text/html", [], body, None, allow="")
    assert reply.status == 200 and sha(reply.body) == sha(body)


def test_large_dicom_over_ten_mib_full_rewrite(server):
    obj = make_ct(40, rows=1024, columns=1024, frames=6)  # 12 MiB, 12-bit: 206 not possible
    reply = exchange(server, "REQMOD", "application/dicom", [], obj.data, 65536, allow="204, 206")
    assert reply.status == 200 and len(obj.data) > 10 * 1024 * 1024
    assert obj.surviving(reply.body) == []
    ds = pydicom.dcmread(DicomBytesIO(reply.body))
    assert ds.NumberOfFrames == 6 and len(ds.PixelData) == 1024 * 1024 * 6 * 2


def test_report_only_service_passes_dicom_unchanged(server):
    content_type, extra, body, objs = WRAPPINGS["raw"](41)
    reply = exchange(server, "REQMOD", content_type, extra, body, 4096, service="audit-req")
    assert reply.status == 204


def _bad_zip(flag_encrypted: bool) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("pppppp.dcm", b"x" * 10)
    data = out.getvalue()
    if flag_encrypted:
        raw = bytearray(data)
        for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            pos = raw.find(sig)
            raw[pos + off] |= 1
        return bytes(raw)
    return data.replace(b"pppppp.dcm", b"../../.dcm")


BLOCKS = {
    "unparseable-dicom": ("application/dicom", [], b"\0" * 128 + b"DICM" + b"\xff" * 300, "deid-req"),
    "limit-exceeded": ("multipart/form-data; boundary=b", [],
                       form_body("b", [(b"X-N: 1", b"x")] * 21), "deid-req"),
    "unsupported-encoding": ("application/dicom", [("Content-Encoding", "br")], b"\x1b\x00" * 100,
                             "deid-req"),
    "encrypted-archive": ("application/zip", [], _bad_zip(True), "deid-req"),
    "unsafe-archive": ("application/zip", [], _bad_zip(False), "deid-req"),
    "uncheckable-bulk-data": ('multipart/related; type="application/octet-stream"; boundary=b', [],
                              form_body("b", [(b"Content-Type: application/octet-stream", b"\x10" * 500)]),
                              "deid-req"),
    "encapsulated-document": ("application/dicom", [],
                              make_ct(42, sop_class="1.2.840.10008.5.1.4.1.1.104.1").data, "deid-req"),
    "policy-blocks-dicom": ("application/dicom", [], make_ct(43).data, "block-req"),
}


@pytest.mark.parametrize("accept", [None, "application/json"], ids=["html", "json"])
@pytest.mark.parametrize("reason", sorted(BLOCKS))
def test_every_block_reason_reaches_the_reply(server, reason, accept):
    content_type, extra, body, service = BLOCKS[reason]
    reply = exchange(server, "REQMOD", content_type, extra, body, 4096, service=service, accept=accept)
    assert reply.status == 200 and reply.http_status == 403, reply.raw_head
    assert reply.http_fields.get("cache-control") == "no-store"
    assert reason.encode() in reply.body
    if accept:
        assert json.loads(reply.body)["reason"] == reason
    else:
        assert reply.body.startswith(b"<!DOCTYPE html>")


CICAP = shutil.which("c-icap-client")


@pytest.mark.skipif(CICAP is None, reason="c-icap-client is installed by tools/bootstrap.sh")
@pytest.mark.parametrize("options", [[], ["-nopreview"], ["-w", "1024"]],
                         ids=["preview", "nopreview", "w1024"])
@pytest.mark.parametrize("mode", ["-req", "-resp"])
@pytest.mark.parametrize("name", sorted(WRAPPINGS))
def test_real_c_icap_client(server, tmp_path, name, mode, options):
    content_type, extra, body, objs = WRAPPINGS[name](50)
    extra_flags = [f for k, v in extra for f in (("-hx" if mode == "-req" else "-rhx"), f"{k}: {v}")]
    source = tmp_path / "in.bin"
    source.write_bytes(body)
    output = tmp_path / "out.bin"
    header_flag = "-hx" if mode == "-req" else "-rhx"
    service = "deid-req" if mode == "-req" else "deid-resp"
    result = subprocess.run(
        [CICAP, "-i", "127.0.0.1", "-p", str(server.port), "-s", service, "-f", str(source),
         "-o", str(output),
         mode, "http://pacs.example/upload", header_flag, f"Content-Type: {content_type}", *extra_flags, "-v",
         *options], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert b"ICAP/1.0 200 OK" in result.stdout + result.stderr
    out = output.read_bytes()
    assert out and sha(out) != sha(body)
    plain = plain_body(out, content_type, dict(extra).get("Content-Encoding"))
    payload = all_member_bytes(content_type, plain)
    for obj in objs:
        assert obj.surviving(payload) == []


@pytest.mark.skipif(CICAP is None, reason="c-icap-client is installed by tools/bootstrap.sh")
@pytest.mark.parametrize("options, size, expect", [
    ([], 30_000, "204"),  # read whole, classified, unchanged
    ([], 160_000, "204"),  # c-icap-client sends on without waiting: nothing is released before the verdict
    (["-nopreview", "-no204"], 160_000, "200"),
])
def test_real_c_icap_client_non_dicom_is_identical(server, tmp_path, options, size, expect):
    body = (b"plain text file\n" * (size // 16 + 1))[:size]
    source = tmp_path / "in.txt"
    source.write_bytes(body)
    output = tmp_path / "out.txt"
    result = subprocess.run(
        [CICAP, "-i", "127.0.0.1", "-p", str(server.port), "-s", "deid-resp", "-f", str(source),
         "-o", str(output),
         "-resp", "http://pacs.example/notes.txt", "-rhx", "Content-Type: text/plain", "-v", *options],
        capture_output=True, timeout=60)
    assert result.returncode == 0
    assert f"ICAP/1.0 {expect}".encode() in result.stdout + result.stderr
    if expect == "200":  # echoed: must be byte-identical
        assert sha(output.read_bytes()) == sha(body)
    else:  # 204: the client keeps its own copy, nothing is written
        assert not output.exists()


@pytest.mark.skipif(CICAP is None, reason="c-icap-client is installed by tools/bootstrap.sh")
def test_real_c_icap_client_accepts_206(server, tmp_path):
    obj = make_ct(51, rows=256, columns=256, frames=8, bits_stored=16, signatures=False)  # 1 MiB
    source = tmp_path / "in.dcm"
    source.write_bytes(obj.data)
    output = tmp_path / "out.dcm"
    result = subprocess.run(
        [CICAP, "-i", "127.0.0.1", "-p", str(server.port), "-s", "deid-req", "-f", str(source),
         "-o", str(output), "-req", "http://pacs.example/up", "-hx", "Content-Type: application/dicom",
         "-206", "-w", "65536", "-v"],
        capture_output=True, timeout=60)
    assert result.returncode == 0
    assert b"ICAP/1.0 206" in result.stdout + result.stderr
    # c-icap-client writes only the original bytes after its preview for a 206 (it drops the new
    # prefix), so its output file says nothing about our rewrite: the exact bytes of the 206 path
    # are checked with raw ICAP in test_large_206.py and in the adapter tests
    assert b"use-original-body" not in result.stdout  # framing was parsed, not dumped


def test_stow_to_a_study_path_forwards_the_mapped_study_uid_on_the_wire(server):
    """Issue 12 item 11: the request line icapdlp returns names the rewritten study, never the original."""
    study = [make_ct(70, instance_number=i + 1) for i in range(2)]
    original = study[0].dataset.StudyInstanceUID
    body = form_body("stow", [(b"Content-Type: application/dicom", s.data) for s in study])
    ctype = 'multipart/related; type="application/dicom"; boundary=stow'
    fields = [("Host", "pacs.example"), ("Content-Type", ctype), ("Content-Length", str(len(body)))]
    reply = send(server.port, "REQMOD", "deid-req", body=body, preview=4096,
                 req_head=http_request_head("POST", f"/dicomweb/studies/{original}", fields))
    assert reply.status == 200
    request_line = reply.http_head.split(b"\r\n", 1)[0].decode()
    parts = reply.body.split(b"--stow")[1:-1]
    new_uids = {pydicom.dcmread(DicomBytesIO(p[p.index(b"\r\n\r\n") + 4:-2])).StudyInstanceUID for p in parts}
    (new_uid,) = new_uids
    assert request_line == f"POST /dicomweb/studies/{new_uid} HTTP/1.1"
    assert original.encode() not in reply.http_head + reply.body
