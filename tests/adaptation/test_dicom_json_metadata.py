"""WADO-RS metadata and STOW-RS JSON through the adapter, with pixel cleaning on (issue 14).

A metadata document describes images without carrying their pixels (Pixel
Data is a BulkDataURI): it used to be blocked as pixel-cleaning-impossible,
which broke every viewer that fetches metadata through the proxy. It is
de-identified, and its BulkDataURIs (which embed the original UIDs) removed.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from icapdlp.adaptation.api import Body, NeedBody, Replace
from icapdlp.dicom.options import ProfileOptions
from tests.adaptation.helpers import make_adapter, make_settings, request_tx, response_tx
from tests.payload.helpers import form_body
from tests.support.synthetic import make_ct

pytestmark = pytest.mark.slow  # the worker builds the real pixel cleaner (Tesseract, NER model)


@pytest.fixture(scope="module")
def adapter():
    return make_adapter(make_settings(profile=ProfileOptions()))  # Clean Pixel Data on, OCR always


def _decide(adapter, tx, body: bytes):
    decision = asyncio.run(adapter.on_preview(tx, body[:4096], len(body) <= 4096))
    if isinstance(decision, NeedBody):
        decision = asyncio.run(adapter.on_body(tx, Body(data=body)))
    return decision


def _metadata(seed: int) -> tuple[object, bytes]:
    obj = make_ct(seed)
    ds = obj.dataset
    base = f"https://pacs.example/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    document = ds.to_json_dict(bulk_data_threshold=1,
                               bulk_data_element_handler=lambda elem: f"{base}/bulk/{elem.tag:08X}")
    return obj, json.dumps([document]).encode()


def _assert_deidentified(obj, decision) -> None:
    assert isinstance(decision, Replace), decision
    out = decision.body.read_all() if isinstance(decision.body, Body) else decision.body
    assert obj.surviving(out) == []
    assert b"BulkDataURI" not in out and b"pacs.example" not in out
    assert json.loads(out)[0]["00120062"]["Value"] == ["YES"]  # Patient Identity Removed


def test_a_wado_rs_metadata_response_is_deidentified_not_blocked(adapter):
    obj, body = _metadata(51)
    _assert_deidentified(obj, _decide(adapter, response_tx("application/dicom+json", len(body)), body))


def test_a_stow_rs_json_upload_is_deidentified_not_blocked(adapter):
    obj, body = _metadata(52)
    _assert_deidentified(obj, _decide(adapter, request_tx("application/dicom+json", len(body)), body))
