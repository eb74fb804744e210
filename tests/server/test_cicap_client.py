"""Conformance with the real ``c-icap-client`` (Debian package c-icap) against the running server.

c-icap-client sends ``Encapsulated: null-body=0`` on OPTIONS and Content-Length
twice; ``-hx``/``-rhx`` add HTTP request/response headers. It prints to stderr.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from icapdlp.adaptation.api import Block, NeedBody
from icapdlp.verdict import BlockReason
from tests.server.harness import ISTAG, ScriptedAdapter

pytestmark = pytest.mark.e2e
CLIENT = shutil.which("c-icap-client")
BODY = bytes(range(256)) * 300  # 76800 bytes: larger than the preview


def cicap(port: int, *args: str) -> str:
    assert CLIENT, "c-icap-client is required (apt package c-icap)"
    done = subprocess.run([CLIENT, "-i", "127.0.0.1", "-p", str(port), *args], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stderr.decode(errors="replace") + done.stdout.decode(errors="replace")


@pytest.fixture
def body_file(tmp_path):
    path = tmp_path / "body.bin"
    path.write_bytes(BODY)
    return path


def test_options(icap_server):
    out = cicap(icap_server().port, "-s", "deid-req", "-method", "OPTIONS", "-v")
    assert "ICAP/1.0 200 OK" in out and f"ISTag: {ISTAG}" in out
    assert "Preview: 4096" in out and "Allow 204: Yes" in out and "Allow 206: Yes" in out
    assert "Methods: REQMOD" in out and "Transfer-Preview: *" in out


@pytest.mark.parametrize("flags", [[], ["-nopreview"], ["-no204"]], ids=["preview", "no-preview", "no-204-preview"])
def test_reqmod_no_change_is_204(icap_server, body_file, tmp_path, flags):
    adapter = ScriptedAdapter()
    out = cicap(icap_server(adapter).port, "-s", "deid-req", "-req", "http://example.org/up", "-f", str(body_file),
                "-hx", "X-Planted: value", "-o", str(tmp_path / "out"), *flags)
    assert "No modification needed (Allow 204 response)" in out
    tx = adapter.calls[0][1]
    assert tx.request.method == "GET" and tx.request.headers.get("X-Planted") == "value"
    assert tx.request.headers.get_all("Content-Length") == [str(len(BODY))] * 2


def test_reqmod_without_preview_and_without_204_is_an_exact_echo(icap_server, body_file, tmp_path):
    out_file = tmp_path / "out"
    out = cicap(icap_server().port, "-s", "deid-req", "-req", "http://example.org/up", "-f", str(body_file),
                "-nopreview", "-no204", "-o", str(out_file), "-v")
    assert "ICAP/1.0 200 OK" in out and out_file.read_bytes() == BODY


@pytest.mark.parametrize("flags", [[], ["-nopreview"]], ids=["preview", "no-preview"])
def test_respmod_full_read_and_echo(icap_server, body_file, tmp_path, flags):
    adapter = ScriptedAdapter(preview=NeedBody())
    out_file = tmp_path / "out"
    out = cicap(icap_server(adapter).port, "-s", "deid-resp", "-f", str(body_file), "-no204",
                "-rhx", "X-Res: 1", "-o", str(out_file), "-v", *flags)
    assert "ICAP/1.0 200 OK" in out and "X-Res: 1" in out
    assert out_file.read_bytes() == BODY
    assert adapter.calls[-1][0] == "body" and adapter.calls[-1][2] == BODY


def test_respmod_preview_answered_204_even_with_no204(icap_server, body_file):
    adapter = ScriptedAdapter()
    out = cicap(icap_server(adapter).port, "-s", "deid-resp", "-f", str(body_file), "-no204", "-w", "1024")
    assert "No modification needed" in out
    assert adapter.calls[0][2] == BODY[:1024] and adapter.calls[0][3] is False


def test_respmod_block_page_reaches_the_client(icap_server, body_file, tmp_path):
    # without a preview: c-icap-client cannot read a final answer to a preview other than
    # 100 or 204 (Squid can; the transcript tests cover that case byte by byte)
    out_file = tmp_path / "out"
    adapter = ScriptedAdapter(preview=NeedBody(), body=Block(BlockReason.POLICY_BLOCKS_DICOM))
    out = cicap(icap_server(adapter).port, "-s", "deid-resp", "-f", str(body_file), "-o", str(out_file), "-v",
                "-nopreview")
    assert "HTTP/1.1 403 Forbidden" in out
    assert out_file.read_bytes() == b"Blocked by icapdlp: policy-blocks-dicom\nTransaction: -\n"


def test_wrong_method_for_service(icap_server, body_file):
    out = cicap(icap_server().port, "-s", "deid-req", "-f", str(body_file), "-v", "-nopreview")  # RESPMOD
    assert "ICAP/1.0 405 Method Not Allowed For Service" in out
