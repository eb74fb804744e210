"""Non-DICOM traffic through real Squid + icapdlp arrives byte-identical.

Every upload with a body and every download goes through icapdlp (the
Squid example fails closed) and must come back with every byte unchanged:
as an ICAP 204 (icap.log ``ICAP_ECHO/204``) when Squid allows one (bodies
under 64 KiB), else echoed whole (``ICAP_MOD/200``: "answered with a body",
not "rewritten"). icapdlp reads every body whole before it lets it pass.
"""

from __future__ import annotations

import gzip
import hashlib
import os

import pytest

from tests.e2e.client import form_data, via_proxy, zip_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ECHO_204 = [("REQMOD", "ICAP_ECHO", 204)]
#: a body above 64 KiB: Squid offers no 204, so icapdlp, having read it all, echoes it
ECHO_200 = [("REQMOD", "ICAP_MOD", 200)]


def _upload_arrives_unchanged(squid, origin, icap_watch, method, path, data, headers, outcomes=ECHO_204):
    """Send ``data`` through Squid; the origin must receive it byte for byte, with ``outcomes`` in icap.log."""
    origin.clear()
    reply = via_proxy(squid.port, method, origin.url(path), data, headers)
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert got.body == data
    assert icap_watch.outcomes(len(outcomes), "/deid-req") == outcomes
    return got


def test_binary_upload_larger_than_the_preview_passes_untouched(squid, origin, icap_watch):
    data = os.urandom(300_000)  # > 64 KiB: no Allow: 204; read whole, then echoed
    _upload_arrives_unchanged(squid, origin, icap_watch, "POST", "/raw/blob.bin", data,
                              {"Content-Type": "application/octet-stream"}, ECHO_200)


def test_small_upload_without_content_type_passes_untouched(squid, origin, icap_watch):
    data = b"plain notes, not an image\n" * 100
    _upload_arrives_unchanged(squid, origin, icap_watch, "PUT", "/raw/notes", data, {})


def test_form_upload_of_a_text_file_passes_untouched(squid, origin, icap_watch):
    document = os.urandom(2000) + b"PDF-ish"
    body, content_type = form_data([("comment", None, "text/plain", b"hello"),
                                    ("file", "report.pdf", "application/pdf", document)])
    got = _upload_arrives_unchanged(squid, origin, icap_watch, "POST", "/form", body,
                                    {"Content-Type": content_type})
    assert [p.data for p in got.parts] == [b"hello", document]


def test_gzip_encoded_upload_of_text_passes_untouched(squid, origin, icap_watch):
    data = gzip.compress(b"log line without any image\n" * 5000, mtime=0)
    got = _upload_arrives_unchanged(squid, origin, icap_watch, "POST", "/raw/log.gz", data,
                                    {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    assert got.headers["content-encoding"] == "gzip"


def test_small_zip_without_dicom_passes_untouched(squid, origin, icap_watch):
    data = zip_of({"readme.txt": b"no images here\n", "data.csv": b"a,b\n1,2\n" * 1000})
    _upload_arrives_unchanged(squid, origin, icap_watch, "POST", "/raw/archive.zip", data,
                              {"Content-Type": "application/zip"})


def test_large_zip_without_dicom_is_echoed_unchanged(squid, origin, icap_watch):
    """An archive must be read whole; past 64 KiB Squid offers no 204, so icapdlp echoes it.

    icap.log then says ICAP_MOD/200 although nothing changed: the README's
    table warns that 200 means "answered with a body", not "rewritten".
    """
    data = zip_of({"random.bin": os.urandom(200_000), "notes.txt": b"no images\n"})
    _upload_arrives_unchanged(squid, origin, icap_watch, "POST", "/raw/big.zip", data,
                              {"Content-Type": "application/zip"}, [("REQMOD", "ICAP_MOD", 200)])


def test_json_upload_without_dicom_passes_untouched(squid, origin, icap_watch):
    """Every body goes to icapdlp whatever its type; plain JSON is released with a 204."""
    data = b'{"note": "json that is not the DICOM JSON model"}'
    _upload_arrives_unchanged(squid, origin, icap_watch, "POST", "/raw/data.json", data,
                              {"Content-Type": "application/json"})


def test_binary_download_passes_untouched(squid, origin, icap_watch):
    """Read whole, then released with a 204 (below 64 KiB: see the README on Squid 5.7 and RESPMOD)."""
    data = os.urandom(60_000)
    path = origin.add_blob("firmware.bin", data, "application/octet-stream")
    reply = via_proxy(squid.port, "GET", origin.url(path))
    assert reply.status == 200 and reply.body == data
    assert icap_watch.outcomes(1, "/deid-resp") == [("RESPMOD", "ICAP_ECHO", 204)]


def test_image_download_passes_untouched(squid, origin, icap_watch):
    """Every response goes to icapdlp whatever its type; a PNG is released with a 204."""
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    path = origin.add_blob("logo.png", data, "image/png")
    reply = via_proxy(squid.port, "GET", origin.url(path))
    assert reply.status == 200 and reply.body == data
    assert icap_watch.outcomes(1, "/deid-resp") == [("RESPMOD", "ICAP_ECHO", 204)]


def test_large_non_dicom_upload_streams_through(squid, origin, icap_watch):
    """80 MiB of non-DICOM: read whole (spooled to disk), found to hold no DICOM, echoed unchanged."""
    data = os.urandom(80 * 1024 * 1024)
    origin.clear()
    reply = via_proxy(squid.port, "POST", origin.url("/raw/big.bin"), data,
                      {"Content-Type": "application/octet-stream"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert len(got.body) == len(data)
    assert hashlib.sha256(got.body).digest() == hashlib.sha256(data).digest()
    assert icap_watch.outcomes(1, "/deid-req") == ECHO_200
