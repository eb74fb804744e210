"""DICOM through real Squid + icapdlp, in every wrapping the issue names.

Each test sends synthetic objects with planted PHI (tests/support/synthetic.py)
through the proxy and judges what the origin stored (uploads) or what the
client received (downloads): no planted value survives anywhere in the bytes,
the object parses, its pixels are present, UIDs are replaced consistently
across the instances of one study, and icap.log records ICAP_MOD/200.
Non-DICOM siblings in the same message (form fields, archive members) must
stay byte-identical.
"""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pydicom
import pytest

from tests.e2e.client import decoded_body, form_data, stow_body, unzip, via_proxy, zip_of
from tests.e2e.conftest import IcapLogWatch
from tests.support import burned_in, synthetic
from tests.support.origin import boundary_of, split_multipart

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def assert_deidentified(original: synthetic.Synthetic, output: bytes) -> pydicom.Dataset:
    """The checks every rewritten object must pass; returns the parsed result."""
    assert original.surviving(output) == [], "planted PHI left in the bytes"
    assert output[:128] == b"\0" * 128 and output[128:132] == b"DICM", "clean preamble and magic"
    ds = pydicom.dcmread(io.BytesIO(output))
    assert ds.SOPInstanceUID != original.dataset.SOPInstanceUID
    assert ds.StudyInstanceUID != original.dataset.StudyInstanceUID
    assert (ds.Rows, ds.Columns) == (original.dataset.Rows, original.dataset.Columns)
    assert len(ds.PixelData) == len(original.dataset.PixelData), "pixels present, same geometry"
    pixels = ds.pixel_array
    assert np.count_nonzero(pixels) > 0
    assert int(pixels.max()) < (1 << int(ds.BitsStored)), "nothing hides above the high bit"
    return ds


def test_raw_dicom_upload_is_deidentified(squid, origin, icap_watch):
    original = synthetic.make_ct(21)
    origin.clear()
    reply = via_proxy(squid.port, "POST", origin.url("/raw/ct.dcm"), original.data,
                      {"Content-Type": "application/dicom"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert_deidentified(original, got.body)
    assert icap_watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_MOD", 200)]


def test_form_upload_rewrites_the_dicom_part_only(squid, origin, icap_watch):
    original = synthetic.make_ct(22)
    comment = b"second opinion please"
    body, content_type = form_data([("comment", None, "text/plain", comment),
                                    ("file", "image.dcm", "application/dicom", original.data)])
    origin.clear()
    reply = via_proxy(squid.port, "POST", origin.url("/form"), body, {"Content-Type": content_type})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert len(got.parts) == 2
    assert got.parts[0].data == comment
    assert_deidentified(original, got.parts[1].data)
    assert original.surviving(got.body) == []
    assert icap_watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_MOD", 200)]


@pytest.fixture(scope="module")
def stow_exchange(squid, origin):
    """One STOW-RS upload of a three-instance study; the tests below judge its two halves."""
    study = synthetic.make_study(n_series=1, n_instances=3, seed=23)
    body, content_type = stow_body([obj.data for obj in study])
    origin.clear()
    watch = IcapLogWatch(squid)
    reply = via_proxy(squid.port, "POST", origin.url("/studies"), body,
                      {"Content-Type": content_type, "Accept": "application/dicom+json"})
    [got] = origin.wait_received(1)
    return study, reply, got, watch.outcomes(2)


def test_stow_rs_upload_of_a_study_keeps_references_consistent(stow_exchange):
    study, _, got, outcomes = stow_exchange
    assert [p.content_type for p in got.parts] == ["application/dicom"] * 3
    results = [assert_deidentified(obj, part.data) for obj, part in zip(study, got.parts)]
    assert len({ds.StudyInstanceUID for ds in results}) == 1, "one study stays one study"
    assert len({ds.SOPInstanceUID for ds in results}) == 3
    # instance 2 references instance 1: the reference now carries instance 1's new UID
    assert results[0].SOPInstanceUID.encode() in got.parts[1].data
    assert ("REQMOD", "ICAP_MOD", 200) in outcomes


def test_stow_rs_response_reaches_the_client(stow_exchange):
    """The Store Instances Response is DICOM JSON too: it crosses RESPMOD and must not be blocked.

    Note what a user sees (see squid-examples/README.md): the response lists
    the stored instances' UIDs, which RESPMOD maps once more, so they differ
    from the UIDs the origin stored.
    """
    study, reply, got, outcomes = stow_exchange
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/dicom+json")
    answer = json.loads(reply.body)
    assert len(answer["00081199"]["Value"]) == 3
    assert all(obj.surviving(reply.body) == [] for obj in study)
    assert [o for o in outcomes if o[0] == "RESPMOD"] == [("RESPMOD", "ICAP_MOD", 200)]


def test_gzip_encoded_dicom_upload_is_deidentified(squid, origin, icap_watch):
    original = synthetic.make_ct(24)
    origin.clear()
    reply = via_proxy(squid.port, "POST", origin.url("/raw/ct.dcm.gz"), gzip.compress(original.data, mtime=0),
                      {"Content-Type": "application/dicom", "Content-Encoding": "gzip"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    assert_deidentified(original, decoded_body(got.headers, got.body))
    assert icap_watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_MOD", 200)]


def test_zip_upload_rewrites_dicom_members_and_keeps_the_rest(squid, origin, icap_watch):
    first, second = synthetic.make_ct(25), synthetic.make_ct(26)
    readme = b"two images from the scanner\n"
    archive = zip_of({"study/IM0001": first.data, "study/IM0002.dcm": second.data, "README.txt": readme})
    origin.clear()
    reply = via_proxy(squid.port, "POST", origin.url("/raw/study.zip"), archive,
                      {"Content-Type": "application/zip"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    members = unzip(got.body)
    assert members["README.txt"] == readme
    dicom_members = {name: data for name, data in members.items() if name != "README.txt"}
    assert len(dicom_members) == 2
    outputs = sorted(dicom_members.values(), key=len)
    for data in outputs:
        assert first.surviving(data) == [] and second.surviving(data) == []
        pydicom.dcmread(io.BytesIO(data))
    assert icap_watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_MOD", 200)]


def test_wado_rs_download_is_deidentified(squid, origin, icap_watch):
    study = synthetic.make_study(n_series=1, n_instances=2, seed=27)
    path = origin.add_study([obj.data for obj in study])
    reply = via_proxy(squid.port, "GET", origin.url(path),
                      headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("multipart/related")
    parts = split_multipart(reply.body, boundary_of(reply.headers["content-type"]))
    assert len(parts) == 2
    for obj, part in zip(study, parts):
        assert_deidentified(obj, part.data)
    assert all(obj.surviving(reply.body) == [] for obj in study)
    assert icap_watch.outcomes(1, "/deid-resp") == [("RESPMOD", "ICAP_MOD", 200)]


def test_burned_in_text_is_redacted_on_the_way_through(squid, origin, icap_watch):
    """Real Tesseract and NER behind a real Squid: an ultrasound frame with burned-in PHI.

    Every box the synthetic generator drew PHI into must have changed; the
    technical labels it drew must be untouched; the header values are gone.
    """
    case = burned_in.make_case(3)
    data = burned_in.to_bytes(case.dataset)
    origin.clear()
    reply = via_proxy(squid.port, "POST", origin.url("/raw/us.dcm"), data, {"Content-Type": "application/dicom"})
    assert reply.status == 200
    [got] = origin.wait_received(1)
    before, after = case.dataset.pixel_array, pydicom.dcmread(io.BytesIO(got.body)).pixel_array
    assert before.shape == after.shape

    def changed(box: tuple[int, int, int, int]) -> bool:
        x0, y0, x1, y1 = box
        return bool((before[y0:y1, x0:x1] != after[y0:y1, x0:x1]).any())

    assert case.phi and all(changed(t.box) for t in case.phi)
    assert case.labels and not any(changed(t.box) for t in case.labels)
    for key in ("PatientName", "PatientID", "AccessionNumber"):
        assert case.header[key].encode() not in got.body
    assert icap_watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_MOD", 200)]


def test_upload_larger_than_64_mib_is_deidentified(squid, origin, icap_watch):
    """33 frames of 1024 x 1024 x 16 bit: about 66 MiB, past every in-memory threshold."""
    original = synthetic.make_multiframe(28, frames=33, rows=1024, columns=1024)
    assert len(original.data) > 64 * 1024 * 1024
    origin.clear()
    reply = via_proxy(squid.port, "PUT", origin.url("/raw/cine.dcm"), original.data,
                      {"Content-Type": "application/dicom"})
    assert reply.status == 200
    [got] = origin.wait_received(1, timeout=60)
    ds = assert_deidentified(original, got.body)
    assert int(ds.NumberOfFrames) == 33
    assert icap_watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_MOD", 200)]
