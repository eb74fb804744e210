"""Audit log: the fields of a line, hash references, destinations and size rotation."""

from __future__ import annotations

import io
import json
import os

import pytest

from icapdlp.observability.audit import MAX_REFS_PER_LINE, AuditLog, RotatingLineFile, audit_entry
from icapdlp.observability.options import AuditOptions
from icapdlp.report import ObjectReport
from icapdlp.transaction import TransactionReport
from icapdlp.verdict import BlockReason
from tests.observability import records as R

SERVICES = {"deid-req", "deid-resp"}
STUDY = "a3" * 16
INSTANCE = "b4" * 16


def rewritten_record():
    totals = ObjectReport(uids_replaced=7, frames_ocr=3, frames_skipped=1, pixels_cleaned=True)
    totals.actions.update({"X": 12, "Z": 4, "U": 7})
    totals.boxes_by_source.update({"ner": 2, "header-match": 1})
    totals.cdr_findings.update({"preamble-executable": 1})
    report = TransactionReport(objects_by_wrapping={"stow": 2}, totals=totals, wrapping="stow",
                               study_refs=[STUDY, STUDY], instance_refs=[INSTANCE, "c5" * 16])
    return R.record("REQMOD", 200, "rewritten", duration=1.2345, bytes_in=9000, bytes_out=8000,
                    tx=R.transaction("tx-42", "deid-req"), report=report)


def test_a_rewritten_transaction_line_has_exactly_the_agreed_fields():
    entry = audit_entry(rewritten_record(), SERVICES, now=lambda: 1_800_000_000.25)
    assert entry == {
        "time": "2027-01-15T08:00:00.250Z",
        "tx": "tx-42", "service": "deid-req", "method": "REQMOD", "status": 200,
        "outcome": "rewritten", "reason": None, "wrapping": "stow",
        "bytes_in": 9000, "bytes_out": 8000, "duration_ms": 1234.5,
        "objects": {"stow": 2},
        "actions": {"X": 12, "Z": 4, "U": 7}, "uids_replaced": 7,
        "boxes": {"ner": 2, "header-match": 1}, "frames_ocr": 3, "frames_skipped": 1,
        "cdr": {"preamble-executable": 1},
        "study_refs": [STUDY], "instance_refs": [INSTANCE, "c5" * 16],
    }


def test_a_blocked_transaction_names_its_reason_and_a_plain_one_has_no_report_fields():
    blocked = audit_entry(R.record("RESPMOD", 200, "blocked", reason=BlockReason.UNSAFE_ARCHIVE), SERVICES)
    assert blocked["reason"] == "unsafe-archive" and blocked["outcome"] == "blocked"
    assert blocked["service"] == "deid-resp" and blocked["wrapping"] == "none"
    assert "actions" not in blocked and "study_refs" not in blocked
    assert audit_entry(R.record(outcome="blocked"), SERVICES)["reason"] == "internal-error"
    not_dicom = audit_entry(R.record("REQMOD", 204, "no-change", report=TransactionReport()), SERVICES)
    assert not_dicom["wrapping"] == "none" and "actions" not in not_dicom and "objects" not in not_dicom
    empty_zip = audit_entry(R.record(report=TransactionReport(wrapping="zip")), SERVICES)
    assert empty_zip["wrapping"] == "zip" and empty_zip["objects"] == {}
    timed_out = R.record(status=500, outcome="error", reason=BlockReason.DEADLINE_EXCEEDED)
    assert audit_entry(timed_out, SERVICES)["reason"] == "deadline-exceeded"
    assert audit_entry(R.record(status=500, outcome="error"), SERVICES)["reason"] is None


def test_only_well_formed_keyed_hashes_are_written_as_references():
    report = TransactionReport(
        study_refs=["1.2.840.10008.5.1.4.1.1.2", "12345678901234567890", "ABCDEF0123456789ABCD",
                    "abc", STUDY, 42],
        instance_refs=[INSTANCE])
    report.totals.study_ref = "d6" * 16
    entry = audit_entry(R.record(report=report), SERVICES)
    assert entry["study_refs"] == [STUDY, "d6" * 16]
    assert entry["study_refs_rejected"] == 5
    assert entry["instance_refs"] == [INSTANCE] and "instance_refs_rejected" not in entry


@pytest.mark.parametrize("count, omitted", [(MAX_REFS_PER_LINE, None), (MAX_REFS_PER_LINE + 1, 1)])
def test_references_are_capped_per_line_and_the_rest_is_counted(count, omitted):
    refs = [f"{n:032x}ff" for n in range(count)]
    entry = audit_entry(R.record(report=TransactionReport(instance_refs=refs)), SERVICES)
    assert entry["instance_refs"] == refs[:MAX_REFS_PER_LINE]
    assert entry.get("instance_refs_omitted") == omitted


def test_unconfigured_service_names_and_malformed_ids_are_not_written():
    tx = R.transaction("id with spaces", "some-other-service")
    entry = audit_entry(R.record(tx=tx), SERVICES)
    assert entry["tx"] == "unknown" and entry["service"] == "unknown"


def test_stream_destination_writes_one_json_line_per_transaction_and_skips_options():
    out = io.StringIO()
    audit = AuditLog(AuditOptions(destination="stderr"), SERVICES, stream=out)
    audit.record(rewritten_record())
    audit.record(R.record("OPTIONS", 200, "no-change"))
    audit.record(R.record("REQMOD", 204, "no-change"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["outcome"] for line in lines] == ["rewritten", "no-change"]


def test_stdout_is_the_default_stream_and_stderr_is_left_to_the_log(capsys):
    """Issue 16.10: the audit and the log shared stderr; the audit goes only where [audit] says."""
    AuditLog(AuditOptions(), SERVICES).record(R.record())
    captured = capsys.readouterr()
    assert json.loads(captured.out)["tx"] == "tx0001" and captured.err == ""
    AuditLog(AuditOptions(destination="stderr"), SERVICES).record(R.record())
    captured = capsys.readouterr()
    assert json.loads(captured.err)["tx"] == "tx0001" and captured.out == ""


def test_off_writes_nothing(capsys, tmp_path):
    AuditLog(AuditOptions(destination="off"), SERVICES).record(R.record())
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == "" and not list(tmp_path.iterdir())


def test_a_failed_write_is_counted_not_raised():
    errors = []
    out = io.StringIO()
    out.close()
    AuditLog(AuditOptions(), SERVICES, on_error=lambda: errors.append(1), stream=out).record(R.record())
    assert errors == [1]


def _lines(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def test_rotation_keeps_whole_lines_newest_last_and_at_most_backups_files(tmp_path):
    path = str(tmp_path / "audit.log")
    line = "x" * 99  # 100 bytes with its newline
    rotating = RotatingLineFile(path, max_bytes=1000, backups=2)
    for n in range(35):
        rotating.write_line(f"{n:02d}" + line[2:])
    rotating.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["audit.log", "audit.log.1", "audit.log.2"]
    # a file may reach max_bytes exactly (10 lines), never more
    assert [os.path.getsize(tmp_path / n) for n in names] == [500, 1000, 1000]
    kept = _lines(path + ".2") + _lines(path + ".1") + _lines(path)
    assert [int(k[:2]) for k in kept] == list(range(10, 35))


def test_rotation_with_no_backups_truncates_instead_of_growing(tmp_path):
    path = str(tmp_path / "audit.log")
    rotating = RotatingLineFile(path, max_bytes=1024, backups=0)
    for n in range(30):
        rotating.write_line(f"{n:04d}" + "y" * 95)
    rotating.close()
    assert os.listdir(tmp_path) == ["audit.log"]
    assert [int(k[:4]) for k in _lines(path)] == list(range(20, 30))


def test_the_file_destination_appends_across_restarts_and_rotates_audit_lines(tmp_path):
    path = str(tmp_path / "audit.log")
    line_bytes = len(json.dumps(audit_entry(rewritten_record(), SERVICES), separators=(",", ":"))) + 1
    # five lines per file, four files: room for all 13 lines, with two rotations on the way
    options = AuditOptions(destination="file", file=path, max_bytes=5 * line_bytes + 4, backups=3)
    first = AuditLog(options, SERVICES)
    first.record(rewritten_record())
    first.close()
    second = AuditLog(options, SERVICES)
    for _ in range(12):
        second.record(rewritten_record())
    second.close()
    files = [path + suffix for suffix in (".3", ".2", ".1", "") if os.path.exists(path + suffix)]
    assert len(files) == 3
    entries = [json.loads(line) for f in files for line in _lines(f)]
    assert len(entries) == 13 and all(e["tx"] == "tx-42" for e in entries)
    assert all(os.path.getsize(f) <= options.max_bytes for f in files)


def test_time_is_utc_with_milliseconds_across_second_boundaries():
    times = [audit_entry(R.record(), SERVICES, now=lambda t=t: t)["time"]
             for t in (1_800_000_000.999, 1_800_000_001.0, 1_800_000_000.5)]
    assert times == ["2027-01-15T08:00:00.999Z", "2027-01-15T08:00:01.000Z", "2027-01-15T08:00:00.500Z"]


def test_an_unwritable_audit_file_stops_start_up_with_a_config_error(tmp_path):
    from icapdlp.errors import ConfigError

    missing = tmp_path / "no-such-dir" / "audit.log"
    with pytest.raises(ConfigError, match="audit.file: cannot open"):
        AuditLog(AuditOptions(destination="file", file=str(missing)), SERVICES)
