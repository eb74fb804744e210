"""Tesseract missing and the NER model failing to load: objects that need OCR are blocked
with pixel-cleaning-impossible (never passed uncleaned), other traffic is unaffected.

The issue also asks for /readyz to report "not ready" in both cases; see the
report of this area for the state of that check (`readiness_reports_engines`).
"""

from __future__ import annotations

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric
from tests.support import burned_in

OCR_POLICY = """
[workers]
processes = 1
[profile]
clean_pixel_data = true
"""


def burned_in_upload() -> bytes:
    return burned_in.to_bytes(burned_in.make_case(1).dataset)


@pytest.mark.e2e
def test_without_tesseract_on_path_ocr_objects_are_blocked(icapdlp_server, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # the venv python is started by its absolute path, so an empty PATH only hides tesseract
    server = icapdlp_server(OCR_POLICY, env={"PATH": str(empty)})
    reply = client.upload(server.port, burned_in_upload())
    assert reply.http_status == 403 and reply.block_reason == "pixel-cleaning-impossible"
    assert metric(server, "icapdlp_blocks_total", 'reason="pixel-cleaning-impossible"') == 1
    # non-DICOM traffic does not depend on OCR
    assert client.upload(server.port, b"<html>hello</html>" * 300, "text/html").status == 204
    assert "Tesseract missing" in server.output()


@pytest.mark.e2e
@pytest.mark.slow
def test_an_ner_model_that_cannot_load_blocks_objects_with_text(icapdlp_server):
    server = icapdlp_server(OCR_POLICY + '[pixels]\nner_model = "no_such_ner_model_pkg"\n')
    reply = client.upload(server.port, burned_in_upload())
    assert reply.http_status == 403 and reply.block_reason == "pixel-cleaning-impossible"
    assert "NER model unavailable" in server.output()
    assert client.upload(server.port, b"plain" * 2000, "text/plain").status == 204


@pytest.mark.e2e
def test_a_crashing_tesseract_blocks_ocr_objects(icapdlp_server, tmp_path):
    """A `tesseract` on PATH that dies of SIGSEGV, as a broken install or a hostile image might make it."""
    import os

    fake = tmp_path / "crashing-bin"
    fake.mkdir()
    script = fake / "tesseract"
    script.write_text("#!/bin/sh\nkill -SEGV $$\n")
    script.chmod(0o755)
    server = icapdlp_server(OCR_POLICY, env={"PATH": f"{fake}{os.pathsep}/usr/bin{os.pathsep}/bin"})
    reply = client.upload(server.port, burned_in_upload())
    assert reply.http_status == 403 and reply.block_reason == "pixel-cleaning-impossible"
    after = client.upload(server.port, burned_in_upload())  # the worker survived the crash of its child
    assert after.block_reason == "pixel-cleaning-impossible"
    assert server.process.poll() is None
