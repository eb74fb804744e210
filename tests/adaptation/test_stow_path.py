"""STOW-RS to /studies/{uid}: the request path is mapped like the instances in the body (issue 12, item 11).

Before, the instances got keyed UIDs and the URL kept the original Study
Instance UID: it leaked to the origin, and a conformant STOW-RS server
rejects instances whose study differs from the path's.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from icapdlp.adaptation.api import Body, NeedBody, PartialReplace, Replace
from icapdlp.dicom.deid import replacement_uid
from icapdlp.dicom.options import ProfileOptions
from icapdlp.payload.dicomweb_target import map_target_uids
from tests.adaptation.helpers import KEY, NO_PIXELS, make_adapter, make_settings, request_tx
from tests.payload.helpers import form_body
from tests.support.synthetic import make_ct

ADAPTER = make_adapter()
STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=stow'


def run(coro):
    return asyncio.run(coro)


def with_target(tx, target: str):
    return dataclasses.replace(tx, request=dataclasses.replace(tx.request, target=target))


def decide(tx, body: bytes, adapter=ADAPTER):
    decision = run(adapter.on_preview(tx, body[:4096], len(body) <= 4096))
    if isinstance(decision, NeedBody):
        decision = run(adapter.on_body(tx, Body(data=body)))
    return decision


def stow(target: str, objects, adapter=ADAPTER):
    body = form_body("stow", [(b"Content-Type: application/dicom", o.data) for o in objects])
    return decide(with_target(request_tx(STOW_TYPE, len(body)), target), body, adapter)


def rewritten_instances(decision: Replace) -> list[pydicom.Dataset]:
    data = decision.body.read_all() if isinstance(decision.body, Body) else decision.body
    parts = data.split(b"--stow")[1:-1]
    return [pydicom.dcmread(DicomBytesIO(part[part.index(b"\r\n\r\n") + 4:-2])) for part in parts]


@pytest.mark.parametrize("base", ["", "http://pacs.example:8042/dicomweb"])
def test_the_study_uid_in_a_stow_path_is_the_rewritten_instances_study_uid(base):
    study = [make_ct(40, instance_number=i + 1, study_uid="1.2.826.0.1.3680043.9.7433.40.1") for i in range(2)]
    original = study[0].dataset.StudyInstanceUID
    decision = stow(f"{base}/studies/{original}", study)
    assert isinstance(decision, Replace)
    instances = rewritten_instances(decision)
    new_uid = instances[0].StudyInstanceUID
    assert new_uid != original and all(ds.StudyInstanceUID == new_uid for ds in instances)
    assert decision.request.target == f"{base}/studies/{new_uid}"
    assert original not in decision.request.target
    assert decision.request.headers.get("Content-Length") is not None  # the rest of the head as before


def test_series_and_instance_uids_in_the_path_are_mapped_too():
    obj = make_ct(41)
    ds = obj.dataset
    target = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    decision = stow(target, [obj])
    (new,) = rewritten_instances(decision)
    assert decision.request.target == (f"/studies/{new.StudyInstanceUID}/series/{new.SeriesInstanceUID}"
                                       f"/instances/{new.SOPInstanceUID}")


def test_a_percent_encoded_uid_is_read_as_a_server_reads_it():
    obj = make_ct(42)
    original = obj.dataset.StudyInstanceUID
    encoded = "".join(f"%{ord(c):02X}" for c in original)
    decision = stow(f"/Studies/{encoded}?x=1", [obj])
    (new,) = rewritten_instances(decision)
    assert decision.request.target == f"/Studies/{new.StudyInstanceUID}?x=1"


def test_retain_uids_keeps_the_path_as_it_keeps_the_instances_uids():
    settings = make_settings(profile=dataclasses.replace(NO_PIXELS, retain_uids=True))
    obj = make_ct(43)
    target = f"/studies/{obj.dataset.StudyInstanceUID}"
    decision = stow(target, [obj], make_adapter(settings))
    (new,) = rewritten_instances(decision)
    assert new.StudyInstanceUID == obj.dataset.StudyInstanceUID and decision.request.target == target


def test_a_per_service_profile_decides_for_its_own_path():
    from icapdlp.config.schema import ServiceOptions

    services = {"deid-req": ServiceOptions(method="REQMOD"),
                "research-req": ServiceOptions(method="REQMOD", profile=dataclasses.replace(NO_PIXELS, retain_uids=True))}
    adapter = make_adapter(make_settings(services=services))
    obj = make_ct(44)
    target = f"/studies/{obj.dataset.StudyInstanceUID}"
    body = form_body("stow", [(b"Content-Type: application/dicom", obj.data)])
    kept = decide(with_target(request_tx(STOW_TYPE, len(body), service="research-req"), target), body, adapter)
    mapped = decide(with_target(request_tx(STOW_TYPE, len(body), service="deid-req"), target), body, adapter)
    assert kept.request.target == target
    assert mapped.request.target == f"/studies/{rewritten_instances(mapped)[0].StudyInstanceUID}" != target


def test_a_raw_object_answered_with_206_gets_the_mapped_path():
    obj = make_ct(45, rows=256, columns=256, bits_stored=16, signatures=False)
    tx = with_target(request_tx("application/dicom", len(obj.data), allow_206=True),
                     f"/studies/{obj.dataset.StudyInstanceUID}")
    decision = run(ADAPTER.on_preview(tx, obj.data[:16384], False))
    assert isinstance(decision, PartialReplace)
    new = pydicom.dcmread(DicomBytesIO(decision.prefix + obj.data[decision.original_offset:]))
    assert decision.request.target == f"/studies/{new.StudyInstanceUID}"


def test_paths_without_uids_and_query_strings_are_left_as_sent():
    mapped = lambda uid: "2.25.1"  # noqa: E731
    for target in ("/studies", "/studies/", "/upload?studies=1.2.3", "/studies/latest",
                   "/studies/1.2.3.abc", "http://host", "/studies/" + "1." * 40 + "1"):
        assert map_target_uids(target, mapped) is target
    assert map_target_uids("/a/studies/1.2/x?PatientID=1.2#studies/3.4", mapped) == "/a/studies/2.25.1/x?PatientID=1.2#studies/3.4"


@pytest.mark.parametrize(("target", "expected"), [
    ("/studies//1.2.3", "/studies//M(1.2.3)"),  # nginx merges the slashes
    ("/studies/./1.2.3", "/studies/M(1.2.3)"),
    ("/x/../studies/1.2.3/", "/studies/M(1.2.3)/"),
    ("/studies/1.2.3;jsessionid=9", "/studies/M(1.2.3);jsessionid=9"),  # servlet containers drop it
    ("/studies/%2e/1.2.3", "/studies/M(1.2.3)"),
    ("/api/1.0/studies/4.5", "/api/1.0/studies/M(4.5)"),  # a UID-shaped version elsewhere stays
])
def test_what_lenient_servers_normalise_away_cannot_hide_a_uid(target, expected):
    assert map_target_uids(target, lambda uid: f"M({uid})") == expected


def test_the_path_uses_the_one_uid_rule_of_the_header_walker():
    assert replacement_uid(KEY, "1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"  # standard: kept
    assert replacement_uid(KEY, " 1.2.3\0") == replacement_uid(KEY, "1.2.3") != "1.2.3"
    assert ProfileOptions().retain_uids is False
