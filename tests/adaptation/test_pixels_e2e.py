"""The adapter with the real pixel cleaner (Tesseract + NER) in the real server's workers.

Proves the worker initializer wires the cleaner in: burned-in PHI is redacted
in a rewritten upload, an image the cleaner cannot handle is blocked with
pixel-cleaning-impossible, and OCR that runs past the task deadline is
blocked with deadline-exceeded instead of hanging the request.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from tests.adaptation.icap_client import http_request_head, send
from tests.support import burned_in
from tests.support.processes import start_icapdlp
from tests.support.synthetic import make_ct, to_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = """
[server]
preview_size = 65536
[workers]
processes = 1
task_deadline = 3
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_icapdlp(CONFIG, tmp_path_factory.mktemp("icapdlp-pixels"))
    yield srv
    srv.stop()


def upload(server, data: bytes):
    fields = [("Host", "pacs.example"), ("Content-Type", "application/dicom"),
              ("Content-Length", str(len(data)))]
    return send(server.port, "REQMOD", "deid-req", req_head=http_request_head("POST", "/up", fields),
                body=data, preview=4096, timeout=60)


def test_burned_in_text_is_redacted(server):
    case = burned_in.make_case(7)
    original = case.dataset.pixel_array.copy()
    reply = upload(server, burned_in.to_bytes(case.dataset))
    assert reply.status == 200 and reply.http_status is None, reply.raw_head
    ds = pydicom.dcmread(DicomBytesIO(reply.body))
    cleaned = ds.pixel_array
    changed = [not np.array_equal(original[y0:y1, x0:x1], cleaned[y0:y1, x0:x1])
               for x0, y0, x1, y1 in (t.box for t in case.phi)]
    assert sum(changed) >= 0.8 * len(changed), f"{sum(changed)} of {len(changed)} PHI boxes redacted"
    assert ds.BurnedInAnnotation == "NO"


def test_uncleanable_pixels_are_blocked(server):
    obj = make_ct(71, rows=64, columns=64)
    obj.dataset.PhotometricInterpretation = "HSV"  # retired: no cleaner can promise anything here
    reply = upload(server, to_bytes(obj.dataset))
    assert reply.http_status == 403 and b"pixel-cleaning-impossible" in reply.body


def test_ocr_past_the_deadline_is_blocked_not_hung(server):
    case = burned_in.make_case(8, frames=120)  # far more OCR than the 3 s task deadline allows (~70 ms a frame)
    reply = upload(server, burned_in.to_bytes(case.dataset))
    assert reply.http_status == 403 and b"deadline-exceeded" in reply.body
