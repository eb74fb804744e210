"""A spooled raw object is held once by the worker, and every raw path reports like the full one.

Why: issue #5. A full rewrite of a large object used to hold it three or
four times (the read body, pydicom's parsed pixel value, the masked copy,
the joined output), so a 200 MiB upload grew the worker by about 800 MiB.
The worker now reads the spool into its own buffer, masks bits above High
Bit in it and writes the pieces to the output file. The memory assertion
uses tracemalloc (Python and numpy allocations), not timing: the peak of
what the task allocates must stay well under twice the object.

Issue item 3: objects answered with ICAP 206 or by the header splice are
counted in the per-object report like whole-pipeline rewrites.
"""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from icapdlp.adaptation import splice, worker_tasks
from icapdlp.adaptation.api import Body, NeedBody, PartialReplace, Replace
from icapdlp.adaptation.factory import policy
from icapdlp.config.server_options import LimitsOptions
from icapdlp.dicom.options import DicomLimits, ProfileOptions
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.verdict import Blocked, BlockReason
from tests.adaptation.helpers import KEY, make_adapter, make_settings, request_tx
from tests.support.synthetic import make_multiframe

SETTINGS = make_settings(limits=LimitsOptions(spool_memory_bytes=1024))
POLICY = policy(SETTINGS, KEY)


def _expected(data: bytes) -> bytes:
    return deidentify_bytes(data, PipelineConfig(ProfileOptions(clean_pixel_data=False), DicomLimits(), KEY)).data


def _comparable(report) -> tuple:
    """A TransactionReport without its timings (the only part that may differ between runs)."""
    totals = report.totals
    return (report.objects_by_wrapping, report.wrapping, report.study_refs, report.instance_refs,
            totals.actions, totals.uids_replaced, totals.cdr_findings, totals.frames_skipped)


@pytest.fixture(scope="module")
def big12() -> bytes:
    """About 8 MiB of 12-bit frames with bits planted above High Bit: every pixel must be rewritten."""
    return make_multiframe(61, frames=16, rows=512, columns=512, bits_stored=12, signatures=False).data


def test_spooled_raw_object_is_held_once_by_the_worker(tmp_path, big12):
    spooled = tmp_path / "body"
    spooled.write_bytes(big12)
    worker_tasks.state(POLICY)  # per-process state (settings, configs) is not part of one task's cost
    tracemalloc.start()
    try:
        result = worker_tasks.rewrite_body(POLICY, "deid-req", "request", "application/dicom", [], None,
                                           str(spooled))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.3 * len(big12), f"worker task peaked at {peak / len(big12):.2f} x the object"
    assert result.changed and result.data is None and result.path is not None
    with open(result.path, "rb") as handle:
        assert handle.read() == _expected(big12)
    assert result.size == len(_expected(big12))
    assert spooled.read_bytes() == big12  # the spool (the server's) is never written
    assert result.report.objects_by_wrapping == {"raw": 1} and result.report.wrapping == "raw"
    assert result.report.totals.cdr_findings["pixel-high-bits"] == 1
    assert len(result.report.instance_refs) == 1


def test_spooled_raw_object_reports_what_the_walker_reports(tmp_path, big12):
    spooled = tmp_path / "body"
    spooled.write_bytes(big12)
    from_file = worker_tasks.rewrite_body(POLICY, "deid-req", "request", "application/dicom", [], None,
                                          str(spooled))
    in_memory = worker_tasks.rewrite_body(POLICY, "deid-req", "request", "application/dicom", [], big12, None)
    assert _comparable(from_file.report) == _comparable(in_memory.report)
    with open(from_file.path, "rb") as handle:
        assert handle.read() == _read(in_memory)


def _read(result) -> bytes:
    if result.data is not None:
        return result.data
    with open(result.path, "rb") as handle:
        return handle.read()


def test_report_only_and_block_services_on_the_raw_path(tmp_path, big12):
    spooled = tmp_path / "body"
    spooled.write_bytes(big12)
    audit = worker_tasks.rewrite_body(POLICY, "audit-req", "request", "application/dicom", [], None, str(spooled))
    assert not audit.changed and audit.path is None and audit.data is None
    assert audit.report.totals.cdr_findings["pixel-high-bits"] == 1  # counted, not applied
    assert spooled.read_bytes() == big12
    with pytest.raises(Blocked) as blocked:
        worker_tasks.rewrite_body(POLICY, "block-req", "request", "application/dicom", [], None, str(spooled))
    assert blocked.value.reason is BlockReason.POLICY_BLOCKS_DICOM


def test_a_spooled_body_over_the_body_limit_is_refused_on_the_raw_path(tmp_path, big12):
    settings = make_settings(limits=LimitsOptions(spool_memory_bytes=1024, body_bytes=len(big12) - 1))
    spooled = tmp_path / "body"
    spooled.write_bytes(big12)
    with pytest.raises(Blocked) as blocked:
        worker_tasks.rewrite_body(policy(settings, KEY), "deid-req", "request", "application/dicom", [], None,
                                  str(spooled))
    assert blocked.value.reason is BlockReason.LIMIT_EXCEEDED


def test_206_objects_are_reported_like_full_rewrites():
    obj = make_multiframe(62, frames=2, rows=256, columns=256, bits_stored=16, signatures=False)
    adapter = make_adapter(SETTINGS)
    partial = asyncio.run(adapter.on_preview(request_tx("application/dicom", len(obj.data), allow_206=True),
                                             obj.data[:16384], False))
    assert isinstance(partial, PartialReplace)
    assert not isinstance(partial, NeedBody)
    full = asyncio.run(adapter.on_body(request_tx("application/dicom", len(obj.data)), Body(data=obj.data)))
    assert isinstance(full, Replace)
    assert _comparable(partial.report) == _comparable(full.report)
    assert partial.report.totals.actions["X"] > 0 and partial.report.totals.uids_replaced > 0


def test_spliced_objects_are_reported_like_full_rewrites(tmp_path, monkeypatch):
    monkeypatch.setattr(splice, "SPLICE_MIN_BYTES", 1024)
    obj = make_multiframe(63, frames=2, rows=256, columns=256, bits_stored=16, signatures=False)
    spooled = tmp_path / "body"
    spooled.write_bytes(obj.data)
    spliced = worker_tasks._splice(worker_tasks.state(POLICY), "deid-req", str(spooled))  # a raw object, as triaged
    assert spliced is not None  # the header splice took it
    whole = worker_tasks.rewrite_body(POLICY, "deid-req", "request", "application/dicom", [], obj.data, None)
    assert _comparable(spliced.report) == _comparable(whole.report)
    assert _read(spliced) == _read(whole)


def test_a_spliced_object_whose_pixels_hold_a_part10_file_is_blocked(tmp_path, monkeypatch):
    """The splice copies Pixel Data unread; a DICOM file planted in it must block like the full path
    (red-team F32), wherever it lies: across the copy's chunk boundary too."""
    monkeypatch.setattr(splice, "SPLICE_MIN_BYTES", 1024)
    monkeypatch.setattr(splice, "COPY_STEP", 4096)
    obj = make_multiframe(64, frames=2, rows=256, columns=256, bits_stored=16, signatures=False)
    inner = make_multiframe(65, frames=1, rows=8, columns=8, bits_stored=16).data
    data = bytearray(obj.data)
    pixels = data.rindex(b"\xe0\x7f\x10\x00OW") + 12  # where the copied value starts
    at = pixels + 4096 * 20 - 2  # "DICM" split by a chunk boundary of the copy
    data[at - 128:at - 128 + len(inner)] = inner
    spooled = tmp_path / "body"
    spooled.write_bytes(bytes(data))
    with pytest.raises(Blocked) as caught:
        worker_tasks._splice(worker_tasks.state(POLICY), "deid-req", str(spooled))
    assert caught.value.reason is BlockReason.UNINSPECTABLE
    assert not list(tmp_path.glob("icapdlp-out-*"))
