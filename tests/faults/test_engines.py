"""Tesseract missing and the NER model failing to load: objects that need OCR are blocked
with pixel-cleaning-impossible (never passed uncleaned), other traffic is unaffected.

/readyz reports "not ready" (503) in both cases and names the failing check;
with both engines usable it reports ready (200).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric, readyz
from tests.support import burned_in
from tests.support.processes import REPO_ROOT, ServerStartError

OCR_POLICY = """
[workers]
processes = 1
[profile]
clean_pixel_data = true
"""


#: the tests of a missing or crashing `tesseract` program need the engine that runs it
PYTESSERACT = '[pixels]\nocr_engine = "pytesseract"\n'


def burned_in_upload() -> bytes:
    return burned_in.to_bytes(burned_in.make_case(1).dataset)


def readiness(server) -> tuple[int, dict[str, bool]]:
    status, body = readyz(server)
    return status, {name: check["ok"] for name, check in json.loads(body)["checks"].items()}


def broken_model_package(directory) -> str:
    """A pip-installed-looking package (passes the start-up check) whose import fails, as spacy.load does it."""
    package = directory / "broken_ner_model"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('this model package is broken on purpose')\n")
    info = directory / "broken_ner_model-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken_ner_model\nVersion: 1.0\n")
    return str(directory)


@pytest.mark.e2e
def test_without_tesseract_on_path_the_server_refuses_to_start(icapdlp_server, tmp_path):
    """A setting that cannot work stops start-up with its reason (issue 16.5), never a server blocking every image."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # the venv python is started by its absolute path, so an empty PATH only hides tesseract
    with pytest.raises(ServerStartError, match="pixels.ocr_engine") as refused:
        icapdlp_server(OCR_POLICY + PYTESSERACT, env={"PATH": str(empty)})
    assert "exit code 2" in str(refused.value) and "serving" not in str(refused.value)


@pytest.mark.e2e
def test_tesseract_gone_after_start_up_blocks_ocr_objects(icapdlp_server, tmp_path):
    """The program disappears while the server runs (a package upgrade, a broken mount): fail closed."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "tesseract").symlink_to(shutil.which("tesseract"))
    server = icapdlp_server(OCR_POLICY + PYTESSERACT, env={"PATH": str(tools)})
    (tools / "tesseract").unlink()
    reply = client.upload(server.port, burned_in_upload())
    assert reply.http_status == 403 and reply.block_reason == "pixel-cleaning-impossible"
    assert metric(server, "icapdlp_blocks_total", 'reason="pixel-cleaning-impossible"') == 1
    # non-DICOM traffic does not depend on OCR
    assert client.upload(server.port, b"<html>hello</html>" * 300, "text/html").status == 204
    assert "Tesseract missing" in server.output()
    status, checks = readiness(server)
    assert status == 503
    assert checks == {"workers": True, "config": True, "tesseract": False, "ner_model": True}


@pytest.mark.e2e
@pytest.mark.slow
def test_an_ner_model_that_cannot_load_blocks_objects_with_text(icapdlp_server, tmp_path):
    """Installed (so start-up accepts it; an uninstalled one is refused, tests/config) but failing to load."""
    site = broken_model_package(tmp_path / "site")
    server = icapdlp_server(OCR_POLICY + '[pixels]\nner_model = "broken_ner_model"\n',
                            env={"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), site])})
    status, checks = readiness(server)  # the worker's warm-up failed and was recorded, not fatal
    assert status == 503
    assert checks == {"workers": True, "config": True, "tesseract": True, "ner_model": False}
    reply = client.upload(server.port, burned_in_upload())
    assert reply.http_status == 403 and reply.block_reason == "pixel-cleaning-impossible"
    # the detail names the failure class only (the model's import error here), never content
    assert "pixel cleaning failed (RuntimeError)" in server.output() or "NER model unavailable" in server.output()
    assert client.upload(server.port, b"plain" * 2000, "text/plain").status == 204


@pytest.mark.e2e
@pytest.mark.slow
def test_with_both_engines_usable_the_server_is_ready(icapdlp_server):
    server = icapdlp_server(OCR_POLICY)
    status, checks = readiness(server)
    assert status == 200
    assert checks == {"workers": True, "config": True, "tesseract": True, "ner_model": True}


@pytest.mark.e2e
def test_a_crashing_tesseract_blocks_ocr_objects(icapdlp_server, tmp_path):
    """A `tesseract` on PATH that dies of SIGSEGV, as a broken install or a hostile image might make it."""
    import os

    fake = tmp_path / "crashing-bin"
    fake.mkdir()
    script = fake / "tesseract"
    # it lists its languages (the start-up check asks that) and crashes on everything else
    real = shutil.which("tesseract")
    script.write_text(f'#!/bin/sh\nif [ "$1" = "--list-langs" ]; then exec {real} --list-langs; fi\nkill -SEGV $$\n')
    script.chmod(0o755)
    server = icapdlp_server(OCR_POLICY + PYTESSERACT, env={"PATH": f"{fake}{os.pathsep}/usr/bin{os.pathsep}/bin"})
    reply = client.upload(server.port, burned_in_upload())
    assert reply.http_status == 403 and reply.block_reason == "pixel-cleaning-impossible"
    after = client.upload(server.port, burned_in_upload())  # the worker survived the crash of its child
    assert after.block_reason == "pixel-cleaning-impossible"
    assert server.process.poll() is None
