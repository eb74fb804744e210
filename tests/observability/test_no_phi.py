"""Plant synthetic PHI wherever a careless implementation might pick it up; none may surface.

The PHI goes into every field a transaction or report can carry: URLs,
header values (filenames, patient headers), the reason phrase, report keys
(wrappings, action codes, finding kinds, box sources, stages), reference
lists (raw UIDs and IDs instead of keyed hashes), the transaction id and the
service name, and the message of an exception raised while recording. Then
the audit lines (stream and rotating file), the ``/metrics`` text served over
a real socket, and every log record are searched byte by byte.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter

from prometheus_client import CollectorRegistry

from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead
from icapdlp.config import Settings
from icapdlp.observability.audit import AuditLog
from icapdlp.observability.options import AuditOptions, MetricsOptions
from icapdlp.observability.wiring import build_observer, start_health_server
from icapdlp.report import ObjectReport
from icapdlp.transaction import TransactionReport
from icapdlp.verdict import BlockReason
from tests.observability import records as R

NAME = "DOE^JOHNATHAN"
NAME_WORDS = ("JOHNATHAN", "Johnathan Doe", "Jane Q Smithfield", "SMITHFIELD")
PATIENT_ID = "MRN48151623"
ACCESSION = "ACC9988776655"
BIRTH_DATE = "19610704"
BIRTH_DATE_ISO = "1961-07-04"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1234567890123456789"
SOP_UID = "1.2.826.0.1.3680043.8.498.9876543210987654321"
DOTLESS_UID = "282600136800438498123456"  # digits only: hex-shaped, must still be refused
OCR_TEXT = "Johnathan Doe DOB 04/07/1961"

PHI = (NAME, *NAME_WORDS, PATIENT_ID, "48151623", ACCESSION, BIRTH_DATE, BIRTH_DATE_ISO,
       STUDY_UID, SOP_UID, "3680043", DOTLESS_UID, "04/07/1961")


class ExplodingCounts(Counter):
    """A report field whose reading fails with PHI in the message."""

    def items(self):
        raise ValueError(f"bad count for {NAME} {PATIENT_ID}")


def planted_records() -> list:
    request = HttpRequestHead(
        "POST", f"/studies/{STUDY_UID}?patient={NAME}&id={PATIENT_ID}", "HTTP/1.1",
        HttpHeaders([("Content-Disposition", f'attachment; filename="{NAME}_{BIRTH_DATE}.dcm"'),
                     ("X-Patient-ID", PATIENT_ID), ("X-Accession", ACCESSION)]))
    response = HttpResponseHead("HTTP/1.1", 200, NAME_WORDS[1], HttpHeaders([("X-Study", STUDY_UID)]))
    tx = R.transaction("tx-77", "deid-req", request=request, response=response)

    totals = ObjectReport(uids_replaced=3, frames_ocr=2)
    totals.actions.update({"X": 5, STUDY_UID: 2, f"PatientName={NAME}": 1})
    totals.cdr_findings.update({"trailing-bytes": 1, PATIENT_ID: 1})
    totals.boxes_by_source.update({"ner": 2, OCR_TEXT: 1})
    totals.stage_seconds.update({"ocr": 0.4, BIRTH_DATE: 0.1})
    totals.study_ref = STUDY_UID
    totals.instance_ref = NAME
    report = TransactionReport(
        objects_by_wrapping={"raw": 1, NAME: 1}, totals=totals, wrapping=ACCESSION,
        study_refs=[STUDY_UID, DOTLESS_UID, BIRTH_DATE + "00000000", "ab" * 16],
        instance_refs=[SOP_UID, PATIENT_ID, "cd" * 16])

    exploding = ObjectReport()
    exploding.actions = ExplodingCounts({"X": 1})
    return [
        R.record("REQMOD", 200, "rewritten", tx=tx, report=report, bytes_in=100, bytes_out=90),
        R.record("RESPMOD", 200, "blocked", reason=BlockReason.ENCAPSULATED_DOCUMENT, report=report,
                 tx=R.transaction(NAME, f"{PATIENT_ID}-svc", method="RESPMOD", request=request)),
        R.record("REQMOD", 200, "rewritten", tx=tx, report=TransactionReport(
            objects_by_wrapping={"raw": 1}, totals=exploding, wrapping="raw")),
    ]


def assert_no_phi(text: str, where: str) -> None:
    lowered = text.lower()
    for value in PHI:
        assert value.lower() not in lowered, f"{value!r} leaked into {where}"


def test_planted_phi_reaches_neither_audit_lines_nor_metrics_nor_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    audit_file = tmp_path / "audit.log"
    settings = Settings(audit=AuditOptions(destination="file", file=str(audit_file), max_bytes=1024, backups=5))
    observer = build_observer(settings, CollectorRegistry())
    stream = io.StringIO()
    stream_audit = AuditLog(AuditOptions(destination="stderr"), settings.services.keys(), stream=stream)

    records = planted_records()
    for record in records:
        observer.connection_opened()
        observer.request_started()
        observer.request_finished(record)
        stream_audit.record(record)
        observer.connection_closed()
    observer.close()

    async def scrape() -> bytes:
        server = await start_health_server(MetricsOptions(port=0), observer)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            body = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return body
        finally:
            await server.close()

    metrics_text = asyncio.run(scrape()).decode()
    audit_text = "".join(p.read_text() for p in sorted(tmp_path.iterdir()))
    log_text = "\n".join(r.getMessage() for r in caplog.records)

    # the planted traffic was really recorded (so "no PHI" is not "no output")
    # two lines each; the third record's line is lost (its report explodes) and counted
    assert audit_text.count("\n") == 2 and stream.getvalue().count("\n") == 2
    assert audit_text.count('"tx":"tx-77"') == 1 and audit_text.count('"tx":"unknown"') == 1
    assert "icapdlp_audit_errors_total 1.0" in metrics_text
    assert '"reason":"encapsulated-document"' in audit_text
    assert '"ab' + "ab" * 15 + '"' in audit_text and "study_refs_rejected" in audit_text
    assert 'icapdlp_deid_actions_total{action="other"} 6.0' in metrics_text
    assert 'icapdlp_blocks_total{reason="encapsulated-document"} 1.0' in metrics_text
    assert "icapdlp_observer_errors_total 1.0" in metrics_text
    assert "ValueError" in log_text

    assert_no_phi(audit_text, "the audit file")
    assert_no_phi(stream.getvalue(), "the audit stream")
    assert_no_phi(metrics_text, "/metrics")
    assert_no_phi(log_text, "the log")


def test_planted_phi_reaches_no_line_of_the_json_log_and_every_line_is_json():
    """Issue 16.10: the [logging] JSON format writes the message only, never args' extras or a traceback.

    The observer's failure (an exception whose message carries PHI) and a
    careless ``log.exception`` both go through the real formatter.
    """
    import json

    from icapdlp.observability.logs import configure_logging
    from icapdlp.observability.options import LoggingOptions

    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(LoggingOptions("debug", "json"), stream=stream)
        observer = build_observer(Settings(audit=AuditOptions(destination="off")), CollectorRegistry())
        for record in planted_records():
            observer.request_finished(record)
        try:
            raise ValueError(f"cannot parse {NAME} born {BIRTH_DATE} study {STUDY_UID}")
        except ValueError:
            logging.getLogger("icapdlp.test").exception("a stage failed")
    finally:
        root.handlers[:], root.level = saved
    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]
    assert any(e.get("exception") == "ValueError" for e in entries)
    assert any("observer failed" in e["message"] for e in entries)
    assert_no_phi(stream.getvalue(), "the JSON log")
