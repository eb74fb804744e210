"""Overlays follow the SERVICE's profile, as the worker applies it, with pixel cleaning running.

Before, the pixel cleaner read Clean Graphics from the global [profile] while the
header walker read the service's profile: a service with Clean Graphics under a
global profile without it kept a blanked overlay plane, and a service without it
under a global profile with it reported planes "removed" by an option it does not
have. The worker's own state and cleaner are used (as a worker process builds
them), with canned OCR and a keyword NER so it runs quickly.
"""

from __future__ import annotations

import io

import pydicom

from icapdlp.adaptation.factory import policy
from icapdlp.adaptation.worker_tasks import PipelineRewriter, state
from icapdlp.config import ServiceOptions, Settings
from icapdlp.dicom.options import ProfileOptions
from tests.pixels.conftest import KeywordNer
from tests.support.synthetic import make_ct

KEY = bytes(range(32))


def _reads_nothing(grey8, language="eng"):
    return []


def _rewrite(settings: Settings, service: str, data: bytes):
    worker = state(policy(settings, KEY))
    worker.pixel_cleaner.read_words, worker.pixel_cleaner.ner = _reads_nothing, KeywordNer({})
    out, report = PipelineRewriter(worker, service).rewrite_dicom(data)
    assert report.pixels_cleaned  # the cleaner ran: before, it was the one removing planes
    return pydicom.dcmread(io.BytesIO(out)), report


def _codes(ds) -> list[str]:
    return [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]


def _settings(global_graphics: bool, service_graphics: bool) -> Settings:
    return Settings(profile=ProfileOptions(clean_graphics=global_graphics), services={
        "own": ServiceOptions(profile=ProfileOptions(clean_graphics=service_graphics)),
        "inherits": ServiceOptions()})


def test_a_service_with_clean_graphics_under_a_global_profile_without_it():
    data = make_ct(31).data
    settings = _settings(global_graphics=False, service_graphics=True)
    own, own_report = _rewrite(settings, "own", data)
    inherits, inherits_report = _rewrite(settings, "inherits", data)
    for ds in (own, inherits):
        assert [t for t in ds.keys() if int(t) >> 16 == 0x6000] == []
    assert own_report.cdr_findings["overlay-removed"] == 1 and "113103" in _codes(own)
    assert 0x50002500 in own  # Clean Graphics keeps curves (cleaned)
    assert inherits_report.cdr_findings["overlay-removed"] == 0 and "113103" not in _codes(inherits)
    assert 0x50002500 not in inherits


def test_a_service_without_clean_graphics_under_a_global_profile_with_it():
    data = make_ct(32).data
    settings = _settings(global_graphics=True, service_graphics=False)
    own, own_report = _rewrite(settings, "own", data)
    inherits, inherits_report = _rewrite(settings, "inherits", data)
    assert own_report.cdr_findings["overlay-removed"] == 0 and "113103" not in _codes(own)
    assert 0x50002500 not in own
    assert inherits_report.cdr_findings["overlay-removed"] == 1 and "113103" in _codes(inherits)
