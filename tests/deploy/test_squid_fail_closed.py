"""The shipped Squid example fails closed: no body reaches the origin uninspected.

Issue 12 item 9: uploads declared ``application/x-dicom``, ``application/json``,
``text/plain`` or curl's default ``application/x-www-form-urlencoded``, and
DELETE/PROPPATCH requests with a body, never went to icapdlp under the old
content-type list; the origin received the planted PHI byte for byte. Each
case here runs a real Squid rendered from ``squid-examples/upload-download.conf``,
a real ``icapdlp serve`` and the test origin, and judges only what arrived:
either the origin got a body holding no planted value, or the user got a block
(HTTP 403) and the origin got nothing. Downloads are judged the same way on
what the client received.
"""

from __future__ import annotations

import http.client
import base64
import io
import json
import random
import zlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from tests.e2e.client import via_proxy
from tests.support import synthetic
from tests.support.origin import OriginServer
from tests.support.squid import EXAMPLES, SQUID, icap_outcomes, start_squid_from_example

pytestmark = [pytest.mark.slow, pytest.mark.e2e,
              pytest.mark.skipif(not Path(SQUID).exists(), reason="squid-openssl is not installed")]

#: through Squid and icapdlp with one worker on a busy 2-core machine
TIMEOUT = 120.0


def part10(seed: int) -> tuple[synthetic.Synthetic, bytes]:
    original = synthetic.make_ct(seed)
    return original, original.data


def dicom_json(seed: int) -> tuple[synthetic.Synthetic, bytes]:
    """The DICOM JSON model of a synthetic CT (header only: a metadata upload)."""
    original = synthetic.make_ct(seed)
    dataset = original.dataset.copy()
    del dataset.PixelData
    return original, json.dumps([dataset.to_json_dict()]).encode()


@pytest.fixture(scope="module")
def squid(icapdlp):
    proxy = start_squid_from_example("upload-download.conf", icap_port=icapdlp.port)
    yield proxy
    proxy.cleanup()


def chunked_upload(proxy_port: int, method: str, url: str, body: bytes, headers: dict[str, str]) -> int:
    """Send ``body`` with Transfer-Encoding: chunked (no Content-Length at all); the HTTP status."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=TIMEOUT)
    try:
        conn.request(method, url, body=iter([body[:1000], body[1000:]]), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def curl_default_upload(proxy_url: str, url: str, body: bytes, workdir: Path) -> int:
    """``curl --data-binary @file``: curl's own default type, application/x-www-form-urlencoded."""
    source = workdir / "upload.bin"
    source.write_bytes(body)
    result = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy_url,
                             "-H", "Expect:", "--max-time", str(int(TIMEOUT)), "--data-binary", f"@{source}", url],
                            capture_output=True, text=True, timeout=TIMEOUT + 10)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


#: (case id, method, declared type or None, body maker, chunked)
UPLOADS: list[tuple[str, str, str | None, Callable[[int], tuple[synthetic.Synthetic, bytes]], bool]] = [
    ("x-dicom", "POST", "application/x-dicom", part10, False),
    ("json", "POST", "application/json", dicom_json, False),
    ("text-plain", "POST", "text/plain", part10, False),
    ("delete-with-body", "DELETE", "application/dicom", part10, False),
    ("proppatch-with-body", "PROPPATCH", "application/xml", part10, False),
    ("chunked-without-type", "PUT", None, part10, True),
]


def judge_upload(origin: OriginServer, original: synthetic.Synthetic, status: int) -> None:
    """De-identified at the origin, or blocked with nothing forwarded."""
    received = origin.wait_received(1, timeout=5.0 if status == 200 else 1.0)
    if status == 403:
        assert received == [], "a blocked upload must not reach the origin"
        return
    assert status == 200
    [got] = received
    assert got.body, "the origin received the (rewritten) body"
    assert original.surviving(got.body) == [], "planted PHI reached the origin"


@pytest.mark.parametrize("case", UPLOADS, ids=[c[0] for c in UPLOADS])
def test_upload_of_any_type_and_method_is_inspected(case, squid, origin):
    name, method, content_type, make, chunked = case
    original, body = make(300 + UPLOADS.index(case))
    headers = {"Content-Type": content_type} if content_type else {}
    url = origin.url(f"/raw/{name}")
    origin.clear()
    start = len(squid.icap_log())
    if chunked:
        status = chunked_upload(squid.port, method, url, body, headers)
    else:
        status = via_proxy(squid.port, method, url, body, headers).status
    judge_upload(origin, original, status)
    reqmods = [o for o in icap_outcomes(squid.wait_icap_log(start + 1)[start:]) if o[0] == "REQMOD"]
    assert reqmods and reqmods[0][1] in ("ICAP_MOD", "ICAP_SAT"), reqmods


def test_get_with_a_body_is_refused_by_squid_itself(squid, origin):
    """Squid 5.7 answers a GET that carries a body with 411 and forwards nothing: closed too."""
    original, body = part10(319)
    origin.clear()
    reply = via_proxy(squid.port, "GET", origin.url("/raw/get-with-body"), body, {"Content-Type": "text/plain"})
    assert reply.status == 411
    assert origin.wait_received(1, timeout=1.0) == []


def test_curl_default_form_urlencoded_upload_is_inspected(squid, origin, tmp_path):
    original, body = part10(320)
    origin.clear()
    status = curl_default_upload(squid.proxy_url, origin.url("/raw/curl-default"), body, tmp_path)
    judge_upload(origin, original, status)
    [got] = origin.received() or [None]
    if got is not None:
        assert got.headers["content-type"] == "application/x-www-form-urlencoded"


#: (declared type of a download, body maker)
DOWNLOADS = [("text/plain", part10), ("application/json", dicom_json), ("image/jpeg", part10),
             ("text/html", part10)]


@pytest.mark.parametrize("content_type, make", DOWNLOADS, ids=[d[0] for d in DOWNLOADS])
def test_download_of_any_type_is_inspected(content_type, make, squid, origin):
    original, body = make(340 + [d[0] for d in DOWNLOADS].index(content_type))
    path = origin.add_blob(f"blob-{content_type.replace('/', '-')}", body, content_type)
    reply = via_proxy(squid.port, "GET", origin.url(path))
    assert reply.status in (200, 403)
    assert original.surviving(reply.body) == [], "planted PHI reached the client"
    if reply.status == 200:
        assert reply.body, "the client received the (rewritten) object"


def test_a_request_without_a_body_skips_icapdlp(squid, origin):
    """The price of failing closed is bounded: a plain GET costs no REQMOD."""
    path = origin.add_blob("page.txt", b"hello\n", "text/plain")
    start = len(squid.icap_log())
    reply = via_proxy(squid.port, "GET", origin.url(path))
    assert reply.status == 200 and reply.body == b"hello\n"
    outcomes = icap_outcomes(squid.wait_icap_log(start + 1)[start:])
    assert outcomes == [("RESPMOD", "ICAP_ECHO", 204)]


def test_dicom_json_helper_really_carries_the_planted_values():
    """Guards the oracle: the JSON body holds the PHI the test expects to disappear."""
    original, body = dicom_json(1)
    assert original.surviving(body) != []
    assert pydicom.Dataset.from_json(json.loads(body)[0]).PatientName


# -- the opt-in narrow list: what it saves, and the leak it allows -----------------

NARROW = EXAMPLES / "icapdlp-narrow.conf"
#: where a hand-written squid.conf includes the narrow file: before icapdlp.conf's part
SHARED_PART_STARTS = "# ===========================================================================\n# From here"


@pytest.fixture(scope="module")
def narrow_squid(icapdlp):
    proxy = start_squid_from_example("upload-download.conf", icap_port=icapdlp.port, substitutions=[
        (SHARED_PART_STARTS, f"include {NARROW}\n{SHARED_PART_STARTS}")])
    yield proxy
    proxy.cleanup()


def test_narrow_opt_in_still_deidentifies_declared_dicom(narrow_squid, origin):
    original, body = part10(360)
    origin.clear()
    status = via_proxy(narrow_squid.port, "POST", origin.url("/raw/narrow-dicom"), body,
                       {"Content-Type": "application/dicom"}).status
    judge_upload(origin, original, status)


def test_narrow_opt_in_lets_mislabelled_dicom_through_as_its_readme_warns(narrow_squid, origin):
    """The risk icapdlp-narrow.conf spells out, shown: text/plain DICOM is not inspected."""
    original, body = part10(361)
    origin.clear()
    start = len(narrow_squid.icap_log())
    reply = via_proxy(narrow_squid.port, "POST", origin.url("/raw/narrow-text"), body, {"Content-Type": "text/plain"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert got.body == body and original.surviving(got.body) != []
    lines = narrow_squid.wait_icap_log(start + 1, timeout=2.0)[start:]
    assert [o for o in icap_outcomes(lines) if o[0] == "REQMOD"] == []


# -- large responses: released while checked (Squid 5.7 stalls them otherwise, bug 5352) ----------


def download(proxy_port: int, url: str) -> tuple[int, bytes, bool]:
    """(HTTP status, the bytes that arrived, whether the body arrived whole)."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=TIMEOUT)
    try:
        conn.request("GET", url)
        response = conn.getresponse()
        try:
            return response.status, response.read(), True
        except http.client.IncompleteRead as exc:
            return response.status, exc.partial, False
        except (ConnectionError, http.client.HTTPException):
            return response.status, b"", False
    finally:
        conn.close()


def jpeg_like(seed: int, size: int) -> bytes:
    return (b"\xff\xd8\xff\xe0" + random.Random(seed).randbytes(size))[:size]


def html_like(size: int) -> bytes:
    return (b"<!doctype html><p>" + b"<div class='row'>radiology portal report list</div>\n" * (size // 50 + 1))[:size]


@pytest.mark.parametrize("content_type, body", [
    ("image/jpeg", jpeg_like(1, 3_000_000)), ("text/html", html_like(1_000_000)),
    ("application/octet-stream", jpeg_like(2, 200_000)),
], ids=["jpeg-3MB", "html-1MB", "octets-200KB"])
def test_a_large_download_flows_through_squid_unchanged(content_type, body, squid, origin):
    """Above 64 KiB: before release, Squid 5.7 stalled until icap_io_timeout and the client got a 500."""
    path = origin.add_blob(f"large-{content_type.replace('/', '-')}-{len(body)}", body, content_type)
    started = time.monotonic()
    status, data, complete = download(squid.port, origin.url(path))
    assert status == 200 and complete and data == body
    assert time.monotonic() - started < 30  # far below icap_io_timeout: it did not stall


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_a_large_compressed_page_flows_through_squid_unchanged(coding, squid, origin):
    """Most large text on the web comes gzip- or br-coded: checked on its decoded content as it arrives."""
    import gzip as gzip_module

    import brotli

    rng = random.Random(9)
    page = b"".join(b"<p>report %d of the portal</p>\n" % rng.getrandbits(40) for _ in range(60_000))
    body = gzip_module.compress(page, mtime=0) if coding == "gzip" else brotli.compress(page, quality=5)
    assert len(body) > 200_000
    path = origin.add_blob(f"page.html.{coding}", body, "text/html", content_encoding=coding)
    status, data, complete = download(squid.port, origin.url(path))
    assert status == 200 and complete and data == body  # http.client does not undo the coding


def test_dicom_inside_a_large_gzip_page_never_reaches_the_client(squid, origin):
    import gzip as gzip_module

    original = synthetic.make_ct(352)
    rng = random.Random(10)
    page = b"".join(b"<p>row %d</p>\n" % rng.getrandbits(40) for _ in range(40_000))
    body = gzip_module.compress(page + b"<pre>" + base64.b64encode(original.data) + b"</pre>" + page, mtime=0)
    path = origin.add_blob("report.html.gz", body, "text/html", content_encoding="gzip")
    status, data, complete = download(squid.port, origin.url(path))
    assert not (status == 200 and complete), "the download must be cut off or refused, not completed"
    inflater = zlib.decompressobj(31)
    seen = inflater.decompress(data) if data else b""
    assert original.surviving(seen) == [] and original.surviving(base64.b64decode(
        seen[seen.find(b"<pre>") + 5:] if b"<pre>" in seen else b"", validate=False)) == []


def test_dicom_glued_deep_inside_a_large_download_never_reaches_the_client(squid, origin):
    original = synthetic.make_ct(351)
    body = jpeg_like(3, 600_000) + original.data + jpeg_like(4, 300_000)
    path = origin.add_blob("large-glued.jpg", body, "image/jpeg")
    status, data, complete = download(squid.port, origin.url(path))
    assert original.surviving(data) == [], "planted PHI reached the client"
    assert not (status == 200 and complete), "the download must be cut off or refused, not completed"
    assert len(data) <= 600_000 + 512  # at most the bytes in front of the object were released


def test_a_large_wado_rs_study_is_deidentified_through_squid(squid, origin):
    """A multipart/related study above 64 KiB: held open with preamble filler, then rewritten (Squid 5.7 stalled)."""
    import email
    import email.policy

    from tests.support.origin import boundary_of, split_multipart

    study = synthetic.make_study(n_series=1, n_instances=3, seed=353, rows=128, columns=128)
    assert sum(len(obj.data) for obj in study) > 64 * 1024
    path = origin.add_study([obj.data for obj in study])
    conn = http.client.HTTPConnection("127.0.0.1", squid.port, timeout=TIMEOUT)
    try:
        conn.request("GET", origin.url(path))
        response = conn.getresponse()
        status, content_type, data = response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()
    assert status == 200 and content_type.startswith("multipart/related")
    assert all(obj.surviving(data) == [] for obj in study)
    parts = split_multipart(data, boundary_of(content_type))
    assert len(parts) == 3
    for obj, part in zip(study, parts):
        ds = pydicom.dcmread(io.BytesIO(part.data))
        assert ds.PatientIdentityRemoved == "YES" and ds.SOPInstanceUID != obj.dataset.SOPInstanceUID
    # a strict MIME reader takes the preamble the filler made
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + data,
                                       policy=email.policy.HTTP)
    assert message.is_multipart() and len(message.get_payload()) == 3


def test_large_dicom_json_metadata_is_deidentified_through_squid(squid, origin):
    study = synthetic.make_study(n_series=2, n_instances=40, seed=354)
    body = json.dumps([obj.dataset.to_json_dict(bulk_data_threshold=64) for obj in study]).encode()
    assert len(body) > 64 * 1024
    path = origin.add_blob("metadata.json", body, "application/dicom+json")
    status, data, complete = download(squid.port, origin.url(path))
    assert status == 200 and complete
    assert all(obj.surviving(data) == [] for obj in study)
    assert len(json.loads(data)) == 80  # leading white space is still JSON


# -- held open: large responses that may carry DICOM and cannot be released as they arrive -----------
# Each stalled with Squid 5.7 until icap_io_timeout before: nothing of them may leave before the
# verdict, and nothing told Squid the answer had begun. Now the answer begins with a head that
# promises no length (measured: the head alone keeps Squid reading), and the body follows its verdict.


def test_a_large_dicom_download_is_deidentified_through_squid(squid, origin):
    """Elements after Pixel Data (signatures) rule out the header-only 206: the whole file is rewritten."""
    original = synthetic.make_ct(355, rows=256, columns=256)
    assert len(original.data) > 64 * 1024
    path = origin.add_blob("image.dcm", original.data, "application/dicom")
    status, data, complete = download(squid.port, origin.url(path))
    assert status == 200 and complete
    assert original.surviving(data) == []
    assert pydicom.dcmread(io.BytesIO(data)).PatientIdentityRemoved == "YES"


def test_a_large_zip_of_a_study_is_deidentified_through_squid(squid, origin):
    import zipfile

    study = synthetic.make_study(n_series=1, n_instances=3, seed=356, rows=128, columns=128)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as archive:
        for number, obj in enumerate(study):
            archive.writestr(f"study/{number}.dcm", obj.data)
    body = packed.getvalue()
    assert len(body) > 64 * 1024
    path = origin.add_blob("study.zip", body, "application/zip")
    status, data, complete = download(squid.port, origin.url(path))
    assert status == 200 and complete
    assert all(obj.surviving(data) == [] for obj in study)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [archive.read(name) for name in archive.namelist()]
    assert len(members) == 3
    assert all(pydicom.dcmread(io.BytesIO(member)).PatientIdentityRemoved == "YES" for member in members)


def test_a_large_gzip_coded_wado_rs_study_is_deidentified_through_squid(squid, origin):
    import gzip as gzip_module

    from tests.support.origin import split_multipart

    study = synthetic.make_study(n_series=1, n_instances=3, seed=357, rows=256, columns=256)
    boundary = "held-open-study"
    multipart = b"".join(b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (boundary.encode(), obj.data)
                         for obj in study) + b"--%s--\r\n" % boundary.encode()
    body = gzip_module.compress(multipart, mtime=0)
    assert len(body) > 64 * 1024
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    path = origin.add_blob("study.multipart.gz", body, content_type, content_encoding="gzip")
    status, data, complete = download(squid.port, origin.url(path))
    assert status == 200 and complete
    decoded = gzip_module.decompress(data)  # http.client does not undo the coding; the rewrite kept it
    assert all(obj.surviving(decoded) == [] for obj in study)
    parts = split_multipart(decoded, boundary)
    assert len(parts) == 3
    assert all(pydicom.dcmread(io.BytesIO(part.data)).PatientIdentityRemoved == "YES" for part in parts)


def test_a_large_zstd_page_flows_through_squid_unchanged(squid, origin):
    """zstd has no bounded streaming decoder here: held open whole, then passed byte-identical."""
    import zstandard

    rng = random.Random(11)
    page = b"".join(b"<p>report %d of the portal</p>\n" % rng.getrandbits(40) for _ in range(60_000))
    body = zstandard.ZstdCompressor(level=3).compress(page)
    assert len(body) > 200_000
    path = origin.add_blob("page.html.zst", body, "text/html", content_encoding="zstd")
    status, data, complete = download(squid.port, origin.url(path))
    assert status == 200 and complete and data == body


# -- review13: Squid without previews, and an origin slow to send its body ---------------------------


class SlowBodyOrigin:
    """Sends one response's head at once and its body after ``delay`` seconds (a slow origin)."""

    def __init__(self, content_type: str, body: bytes, delay: float) -> None:
        import socket
        import threading

        self.head = (b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % (content_type.encode(), len(body)))
        self.body, self.delay = body, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request and (piece := conn.recv(65536)):
                    request += piece
                conn.sendall(self.head)
                time.sleep(self.delay)
                conn.sendall(self.body)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def squid_without_preview(icapdlp):
    proxy = start_squid_from_example("upload-download.conf", icap_port=icapdlp.port,
                                     replace_lines={"icap_preview_enable": ["icap_preview_enable off"]})
    yield proxy
    proxy.cleanup()


def test_a_large_wado_rs_study_from_a_slow_origin_through_squid_without_previews(squid_without_preview):
    """Squid sends the heads at once and the body as it comes: the pause ends before a body byte is kept.

    The held-open answer then began on a spool that did not exist yet; the connection handler
    failed (AttributeError) and Squid answered the download with an ICAP error.
    """
    from tests.support.origin import split_multipart

    study = synthetic.make_study(n_series=1, n_instances=3, seed=358, rows=128, columns=128)
    boundary = "slow-origin-study"
    body = b"".join(b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (boundary.encode(), obj.data)
                    for obj in study) + b"--%s--\r\n" % boundary.encode()
    assert len(body) > 64 * 1024
    origin = SlowBodyOrigin(f'multipart/related; type="application/dicom"; boundary={boundary}', body, 0.5)
    try:
        status, data, complete = download(squid_without_preview.port, f"http://127.0.0.1:{origin.port}/study")
    finally:
        origin.close()
    assert status == 200 and complete
    assert all(obj.surviving(data) == [] for obj in study)
    parts = split_multipart(data, boundary)
    assert len(parts) == 3
    assert all(pydicom.dcmread(io.BytesIO(part.data)).PatientIdentityRemoved == "YES" for part in parts)
