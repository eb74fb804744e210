"""Every label value defined is one that something emits, and everything emitted is defined.

Issue 16.8: ``stage="detect"`` was pre-initialised on every dashboard and never
observed, six CDR finding kinds and five compound action codes likewise, and a
gzip upload was counted as ``wrapping="raw"``. A defined-but-never-emitted value
is a dead series that looks like "zero of these happened"; an emitted value
missing from the set silently lands in "other".

- Wrappings: the real payload walker and adapter (in-process worker pool) on one
  body per wrapping, compressed and not, and on bodies the worker blocks.
- Report vocabularies (CDR finding kinds, pipeline stages): enums in
  ``icapdlp.report`` that the label sets derive from; each member is produced
  by the real pipeline in ``tests/dicom/test_cdr_findings.py`` (this module
  used to read string keys out of the producing source with ``ast``).
- Action codes: the concrete codes the PS3.15 profile resolves to.
"""

from __future__ import annotations

import asyncio
import gzip

import pytest

from icapdlp.adaptation import worker_tasks
from icapdlp.adaptation.api import Block
from icapdlp.adaptation.factory import policy
from icapdlp.observability import labels as L
from tests.adaptation import wrappings as W
from tests.adaptation.helpers import KEY, make_adapter, make_settings, request_tx
from tests.support.synthetic import make_ct

SETTINGS = make_settings()
POLICY = policy(SETTINGS, KEY)


def emitted(values: tuple[str, ...]) -> set[str]:
    return {v for v in values if v != L.OTHER}


# -- wrappings, through the real walker ---------------------------------------------------------

def _bodies():
    """(direction, content type, body) for every container, each also gzip-encoded."""
    raw = W.raw()
    related = W.related(count=1)
    plain = [("request", raw[0], raw[2]), ("request", *W.form()[0:3:2]), ("request", *related[0:3:2]),
             ("response", *related[0:3:2]), ("request", *W.dicom_json()[0:3:2]), ("request", *W.zipped()[0:3:2]),
             ("request", *W.tarred()[0:3:2])]
    for direction, content_type, body in plain:
        yield direction, content_type, [], body
        yield direction, content_type, ["gzip"], gzip.compress(body, mtime=0)


def test_every_wrapping_label_is_produced_by_real_traffic_and_says_what_was_unwrapped():
    seen: dict[str, str] = {}
    for direction, content_type, codings, body in _bodies():
        result = worker_tasks.rewrite_body(POLICY, "deid-req", direction, content_type, codings, body, None)
        report = result.report
        assert set(report.objects_by_wrapping) == {report.wrapping}, (content_type, codings)
        seen[report.wrapping] = f"{content_type} {codings}"
        assert report.wrapping.startswith("compressed>") == bool(codings), (content_type, codings, report.wrapping)
    assert set(seen) == emitted(L.WRAPPINGS)


def test_a_gzip_file_upload_and_a_zip_in_a_gzip_file_are_labelled_as_such():
    zipped = W.zipped()[2]
    for body, label in ((gzip.compress(make_ct(7).data), "compressed>raw"), (gzip.compress(zipped), "compressed>zip")):
        result = worker_tasks.rewrite_body(POLICY, "deid-req", "request", "application/gzip", [], body, None)
        assert result.report.wrapping == label and set(result.report.objects_by_wrapping) == {label}


@pytest.mark.parametrize("content_type,codings,label,objects", [
    ("application/dicom", [], "raw", 1),
    ("application/dicom", ["gzip"], "compressed>raw", 1),
    ("application/zip", [], "zip", 0),
])
def test_a_body_the_worker_blocks_keeps_its_wrapping(content_type, codings, label, objects):
    """A blocked raw DICOM was reported as wrapping "none" (no object counted)."""
    broken = bytearray(make_ct(8).data)
    broken[132 + 200:] = b"\xff" * (len(broken) - 332)  # DICM header intact, the dataset garbage
    body = bytes(broken)
    if content_type == "application/zip":
        import io
        import zipfile

        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("IM0", body)
        body = out.getvalue()
    if codings:
        body = gzip.compress(body, mtime=0)
    extra = [("Content-Encoding", "gzip")] if codings else []
    tx = request_tx(content_type, len(body), extra=extra)
    decision = asyncio.run(make_adapter(SETTINGS).on_preview(tx, body, True))
    assert isinstance(decision, Block), decision
    assert decision.report.wrapping == label
    assert decision.report.objects_by_wrapping == ({label: objects} if objects else {})


# -- report vocabularies ---------------------------------------------------------------------------

def test_action_codes_are_the_concrete_codes_the_profile_applies():
    from icapdlp.dicom import profile

    concrete = set(profile.COMPOUND.values()) | {c for c in profile._STRENGTH}
    assert emitted(L.ACTION_CODES) == concrete
    assert not emitted(L.ACTION_CODES) & set(profile.COMPOUND), "compound codes are resolved before counting"


def test_box_sources_are_the_pixel_layers_sources():
    from icapdlp.pixels import geometry

    assert emitted(L.BOX_SOURCES) == set(geometry.SOURCES)
