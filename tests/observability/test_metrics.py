"""Metrics: closed, pre-initialised labels and exact counts after known traffic."""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from icapdlp.observability import labels as L
from icapdlp.observability.metrics import DURATION_BUCKETS, Metrics
from icapdlp.report import ObjectReport
from icapdlp.transaction import TransactionReport
from icapdlp.verdict import BlockReason
from tests.observability import records as R


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), process_collector=False)


def value(m: Metrics, name: str, **labels: str) -> float:
    got = m.registry.get_sample_value(name, labels)
    assert got is not None, f"{name}{labels} is not exported"
    return got


def emitted(values: tuple[str, ...]) -> list[str]:
    """A closed set without "other" (created only when something is counted as it)."""
    return [v for v in values if v != L.OTHER]


#: metric family -> its labels' closed sets (the whole labelled surface of the server)
LABELLED = {
    "icapdlp_requests": {"method": L.ICAP_METHODS, "outcome": L.OUTCOMES},
    "icapdlp_icap_responses": {"status": L.ICAP_STATUSES},
    "icapdlp_request_duration_seconds": {"method": L.ICAP_METHODS},
    "icapdlp_stage_duration_seconds": {"stage": L.STAGES},
    "icapdlp_body_bytes": {"direction": L.DIRECTIONS},
    "icapdlp_dicom_objects": {"wrapping": L.WRAPPINGS, "verdict": L.OUTCOMES},
    "icapdlp_deid_actions": {"action": L.ACTION_CODES},
    "icapdlp_redaction_boxes": {"source": L.BOX_SOURCES},
    "icapdlp_frames": {"handling": L.FRAME_HANDLING},
    "icapdlp_blocks": {"reason": L.BLOCK_REASONS},
    "icapdlp_cdr_findings": {"kind": L.CDR_FINDING_KINDS},
}


#: families whose "other" catch-all is a real value (a transaction that ended before any status)
OTHER_EMITTED = {"icapdlp_icap_responses"}


def test_every_label_combination_is_exported_at_zero_from_the_start(metrics):
    """Every value real traffic produces is there at zero; "other" (only a bug makes it) is not."""
    families = {f.name: f for f in metrics.registry.collect()}
    for name, label_sets in LABELLED.items():
        family = families[name]
        sample = name + ("_count" if family.type == "histogram" else "_total")
        seen = {tuple(s.labels[k] for k in label_sets) for s in family.samples if s.name == sample}
        keep = (lambda v: True) if name in OTHER_EMITTED else (lambda v: v != L.OTHER)
        expected = set(L.all_values(*([v for v in values if keep(v)] for values in label_sets.values())))
        assert seen == expected, name
        assert all(s.value == 0 for s in family.samples if s.name == sample), name


def test_label_values_are_the_closed_sets_and_block_reasons_are_all_of_them():
    assert set(L.BLOCK_REASONS) == {r.value for r in BlockReason}
    assert L.ACTION_CODES == ("D", "Z", "X", "K", "C", "U", "U*", "other")
    assert set(L.WRAPPINGS) >= {"raw", "form", "stow", "wado", "json", "zip", "compressed>raw", "compressed>zip", "other"}
    assert set(L.STAGES) == {"parse", "deid", "ocr", "ner", "encode", "other"}
    assert set(L.BOX_SOURCES) >= {"header-match", "ner", "all-text"}
    assert "other" in L.CDR_FINDING_KINDS and "preamble-executable" in L.CDR_FINDING_KINDS


def test_names_follow_prometheus_conventions(metrics):
    for family in metrics.registry.collect():
        assert family.name.startswith("icapdlp_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        if "bytes" in family.name:
            assert family.name.endswith("_bytes"), family.name


def test_duration_buckets_span_one_millisecond_to_two_minutes(metrics):
    assert DURATION_BUCKETS[0] == 0.001 and DURATION_BUCKETS[-1] == 120.0
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)
    bounds = {s.labels["le"] for family in metrics.registry.collect() for s in family.samples
              if s.name == "icapdlp_request_duration_seconds_bucket"}
    assert {"0.001", "120.0", "+Inf"} <= bounds


def test_counts_after_a_known_mix_of_traffic_are_exact(metrics):
    reports = [R.object_report(seed) for seed in range(12)]
    mix = (
        [R.record("OPTIONS", 200, "no-change", duration=0.0005)] * 7
        + [R.record("REQMOD", 204, "no-change", duration=0.002, bytes_in=1000)] * 50
        + [R.record("RESPMOD", 200, "rewritten", duration=1.5, bytes_in=5000, bytes_out=4000,
                    report=R.merged(reports[i:i + 3], "stow")) for i in (0, 3, 6)]
        + [R.record("REQMOD", 200, "rewritten", duration=0.7, bytes_in=3000, bytes_out=2500,
                    report=R.merged(reports[9:], "zip"))]
        + [R.record("REQMOD", 200, "blocked", reason=BlockReason.LIMIT_EXCEEDED, bytes_in=10)] * 4
        + [R.record("RESPMOD", 200, "blocked", reason=BlockReason.ENCRYPTED_ARCHIVE,
                    report=R.merged([ObjectReport()], "zip"))]
        + [R.record("REQMOD", 500, "error", duration=30.0)] * 2
        + [R.record("OTHER", 400, "error", duration=0.0001)]
    )
    for rec in mix:
        metrics.request_started()
        metrics.request_finished(rec)

    assert value(metrics, "icapdlp_requests_total", method="OPTIONS", outcome="no-change") == 7
    assert value(metrics, "icapdlp_requests_total", method="REQMOD", outcome="no-change") == 50
    assert value(metrics, "icapdlp_requests_total", method="RESPMOD", outcome="rewritten") == 3
    assert value(metrics, "icapdlp_requests_total", method="REQMOD", outcome="rewritten") == 1
    assert value(metrics, "icapdlp_requests_total", method="REQMOD", outcome="blocked") == 4
    assert value(metrics, "icapdlp_requests_total", method="RESPMOD", outcome="blocked") == 1
    assert value(metrics, "icapdlp_requests_total", method="REQMOD", outcome="error") == 2
    assert value(metrics, "icapdlp_requests_total", method="OTHER", outcome="error") == 1
    assert value(metrics, "icapdlp_icap_responses_total", status="204") == 50
    assert value(metrics, "icapdlp_icap_responses_total", status="200") == 7 + 3 + 1 + 4 + 1
    assert value(metrics, "icapdlp_icap_responses_total", status="500") == 2
    assert value(metrics, "icapdlp_icap_responses_total", status="400") == 1
    assert value(metrics, "icapdlp_blocks_total", reason="limit-exceeded") == 4
    assert value(metrics, "icapdlp_blocks_total", reason="encrypted-archive") == 1
    assert sum(value(metrics, "icapdlp_blocks_total", reason=r) for r in L.BLOCK_REASONS) == 5
    assert value(metrics, "icapdlp_body_bytes_total", direction="in") == 50 * 1000 + 3 * 5000 + 3000 + 40
    assert value(metrics, "icapdlp_body_bytes_total", direction="out") == 3 * 4000 + 2500
    assert value(metrics, "icapdlp_dicom_objects_total", wrapping="stow", verdict="rewritten") == 9
    assert value(metrics, "icapdlp_dicom_objects_total", wrapping="zip", verdict="rewritten") == 3
    assert value(metrics, "icapdlp_dicom_objects_total", wrapping="zip", verdict="blocked") == 1

    expected = R.sum_reports(reports)
    for code in emitted(L.ACTION_CODES):
        assert value(metrics, "icapdlp_deid_actions_total", action=code) == expected.actions.get(code, 0), code
    assert value(metrics, "icapdlp_uids_replaced_total") == expected.uids_replaced
    for kind in emitted(L.CDR_FINDING_KINDS):
        assert value(metrics, "icapdlp_cdr_findings_total", kind=kind) == expected.cdr_findings.get(kind, 0)
    for source in emitted(L.BOX_SOURCES):
        assert value(metrics, "icapdlp_redaction_boxes_total", source=source) == \
            expected.boxes_by_source.get(source, 0)
    assert value(metrics, "icapdlp_frames_total", handling="ocr") == expected.frames_ocr
    assert value(metrics, "icapdlp_frames_total", handling="skipped") == expected.frames_skipped

    # durations: one observation per request, in the right buckets
    assert value(metrics, "icapdlp_request_duration_seconds_count", method="REQMOD") == 50 + 1 + 4 + 2
    assert value(metrics, "icapdlp_request_duration_seconds_bucket", method="REQMOD", le="0.0025") == 50
    assert value(metrics, "icapdlp_request_duration_seconds_bucket", method="REQMOD", le="20.0") == 55
    assert value(metrics, "icapdlp_request_duration_seconds_bucket", method="REQMOD", le="30.0") == 57
    assert value(metrics, "icapdlp_request_duration_seconds_sum", method="OPTIONS") == pytest.approx(0.0035)
    # stages: one observation per transaction that carried the stage (4 with reports that timed it)
    assert value(metrics, "icapdlp_stage_duration_seconds_count", stage="ocr") == 4
    assert value(metrics, "icapdlp_stage_duration_seconds_sum", stage="ocr") == pytest.approx(
        sum(r.stage_seconds["ocr"] for r in reports))
    assert value(metrics, "icapdlp_stage_duration_seconds_count", stage="parse") == 4
    assert value(metrics, "icapdlp_requests_in_flight") == 0


def _worker_report(seeds: list[int]) -> ObjectReport:
    """Runs in a worker process: build the object reports and merge them, as a pipeline task would."""
    total = ObjectReport()
    for seed in seeds:
        R.object_report(seed).merge_into(total)
    return total


def test_counts_from_worker_processes_reach_the_registry_exactly_once(metrics):
    """Reports cross a real process boundary (pickled), are merged, recorded: no loss, no double count."""
    batches = [list(range(start, start + 5)) for start in range(0, 200, 5)]  # 40 transactions, 200 objects
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        for seeds, totals in zip(batches, pool.map(_worker_report, batches)):
            report = TransactionReport(objects_by_wrapping={"form": len(seeds)}, totals=totals, wrapping="form")
            metrics.request_started()
            metrics.request_finished(R.record("REQMOD", 200, "rewritten", report=report))

    expected = R.sum_reports([R.object_report(seed) for seed in range(200)])
    assert value(metrics, "icapdlp_dicom_objects_total", wrapping="form", verdict="rewritten") == 200
    assert value(metrics, "icapdlp_requests_total", method="REQMOD", outcome="rewritten") == 40
    for code in emitted(L.ACTION_CODES):
        assert value(metrics, "icapdlp_deid_actions_total", action=code) == expected.actions.get(code, 0)
    assert value(metrics, "icapdlp_uids_replaced_total") == expected.uids_replaced
    assert value(metrics, "icapdlp_frames_total", handling="ocr") == expected.frames_ocr
    assert value(metrics, "icapdlp_cdr_findings_total", kind="trailing-bytes") == \
        expected.cdr_findings["trailing-bytes"]
    assert value(metrics, "icapdlp_stage_duration_seconds_count", stage="parse") == 40


def test_unknown_label_values_from_a_report_count_as_other_and_never_become_labels(metrics):
    totals = ObjectReport()
    totals.actions.update({"D": 2, "Q": 3, "X/Y": 1})
    totals.cdr_findings.update({"zip-bomb-ish": 1, "trailing-bytes": 1})
    totals.boxes_by_source.update({"eyeball": 4})
    totals.stage_seconds.update({"fancy": 0.2})
    report = TransactionReport(objects_by_wrapping={"rar": 2, "raw": 1}, totals=totals, wrapping="rar")
    metrics.request_finished(R.record("REQMOD", 299, "sideways", report=report))
    metrics.request_finished(R.record("SPAM", 200, "no-change"))

    assert value(metrics, "icapdlp_deid_actions_total", action="other") == 4
    assert value(metrics, "icapdlp_deid_actions_total", action="D") == 2
    assert value(metrics, "icapdlp_cdr_findings_total", kind="other") == 1
    assert value(metrics, "icapdlp_redaction_boxes_total", source="other") == 4
    assert value(metrics, "icapdlp_stage_duration_seconds_count", stage="other") == 1
    # an outcome outside the contract is a server bug: counted as an error
    assert value(metrics, "icapdlp_dicom_objects_total", wrapping="other", verdict="error") == 2
    assert value(metrics, "icapdlp_requests_total", method="REQMOD", outcome="error") == 1
    assert value(metrics, "icapdlp_requests_total", method="OTHER", outcome="no-change") == 1
    assert value(metrics, "icapdlp_icap_responses_total", status="other") == 1
    text = generate_latest(metrics.registry).decode()
    for stranger in ("Q", "X/Y", "zip-bomb-ish", "eyeball", "fancy", "rar", "sideways", "SPAM", "299"):
        assert f'"{stranger}"' not in text


def test_bad_numbers_in_a_report_never_drive_a_counter_backwards(metrics):
    totals = ObjectReport(uids_replaced=-5, frames_ocr=-1)
    totals.actions.update({"D": -3, "Z": 2})
    totals.stage_seconds.update({"ocr": math.inf, "ner": -1.0, "parse": 0.1})
    metrics.request_finished(R.record(report=TransactionReport(totals=totals), duration=math.nan,
                                      bytes_in=-10))
    assert value(metrics, "icapdlp_uids_replaced_total") == 0
    assert value(metrics, "icapdlp_deid_actions_total", action="D") == 0
    assert value(metrics, "icapdlp_deid_actions_total", action="Z") == 2
    assert value(metrics, "icapdlp_stage_duration_seconds_count", stage="ocr") == 0
    assert value(metrics, "icapdlp_stage_duration_seconds_count", stage="parse") == 1
    assert value(metrics, "icapdlp_request_duration_seconds_count", method="REQMOD") == 0
    assert value(metrics, "icapdlp_body_bytes_total", direction="in") == 0


def test_a_block_without_a_reason_is_still_counted_as_a_block(metrics):
    metrics.request_finished(R.record(outcome="blocked", reason=None))
    assert value(metrics, "icapdlp_blocks_total", reason="internal-error") == 1


def test_connection_and_in_flight_gauges_follow_events_and_never_go_negative(metrics):
    for _ in range(3):
        metrics.connection_opened()
    metrics.connection_closed()
    metrics.request_started()
    metrics.request_started()
    assert value(metrics, "icapdlp_connections_open") == 2
    assert value(metrics, "icapdlp_connections_total") == 3
    assert value(metrics, "icapdlp_requests_in_flight") == 2
    for _ in range(4):
        metrics.connection_closed()
        metrics.request_finished(R.record("OPTIONS", 200, "no-change"))
    assert value(metrics, "icapdlp_connections_open") == 0
    assert value(metrics, "icapdlp_requests_in_flight") == 0


def test_queue_depth_and_busy_workers_are_read_from_the_application_at_scrape_time(metrics):
    assert value(metrics, "icapdlp_worker_queue_depth") == 0
    depth = [3]
    metrics.set_queue_depth_source(lambda: depth[0])
    metrics.set_workers_busy_source(lambda: 2)
    metrics.set_worker_capacity(4, 256)
    assert value(metrics, "icapdlp_worker_queue_depth") == 3
    depth[0] = 17
    assert value(metrics, "icapdlp_worker_queue_depth") == 17
    assert value(metrics, "icapdlp_workers_busy") == 2
    assert value(metrics, "icapdlp_workers") == 4
    assert value(metrics, "icapdlp_worker_queue_limit") == 256

    def broken() -> int:
        raise RuntimeError("pool is shutting down")

    metrics.set_queue_depth_source(broken)
    assert math.isnan(value(metrics, "icapdlp_worker_queue_depth"))
    assert b"icapdlp_requests_total" in generate_latest(metrics.registry)  # the scrape still works


def test_build_info_labels_are_checked_not_trusted():
    good = Metrics(CollectorRegistry(), version="1.2.3", table_edition="2024b",
                   policy_digest="ab" * 32, process_collector=False)
    assert value(good, "icapdlp_build_info", version="1.2.3", table_edition="2024b",
                 policy_digest="ab" * 8) == 1
    bad = Metrics(CollectorRegistry(), version="DOE^JOHN 1980", table_edition="SMITH",
                  policy_digest="1.2.840.10008", process_collector=False)
    assert value(bad, "icapdlp_build_info", version="unknown", table_edition="unknown",
                 policy_digest="unknown") == 1


def test_process_memory_is_exported_for_the_dashboard():
    m = Metrics(CollectorRegistry())
    assert value(m, "process_resident_memory_bytes") > 0


def test_the_vocabularies_other_layers_report_are_inside_the_closed_sets():
    """Drift guard: a new box source or stage in another layer must be added here, not land in "other"."""
    from icapdlp.pixels import geometry

    assert set(geometry.SOURCES) <= set(L.BOX_SOURCES)
    assert {"parse", "deid", "encode", "ocr", "ner"} <= set(L.STAGES)


def test_no_created_series_in_a_scrape():
    """158 *_created series doubled the series count; no dashboard or alert reads them."""
    m = Metrics(CollectorRegistry())
    m.request_finished(R.record(report=R.merged([R.object_report(1)], "zip")))
    m.record_reload(True, "cd" * 32)
    text = generate_latest(m.registry).decode()
    assert "icapdlp_requests_total" in text and "_created" not in text


def test_a_successful_reload_moves_build_info_and_a_failed_one_does_not():
    m = Metrics(CollectorRegistry(), version="1.2.3", table_edition="2024b", policy_digest="ab" * 32,
                process_collector=False)
    m.record_reload(False, "ef" * 32)
    assert value(m, "icapdlp_build_info", version="1.2.3", table_edition="2024b", policy_digest="ab" * 8) == 1
    assert value(m, "icapdlp_config_last_reload_successful") == 0
    m.record_reload(True, "cd" * 32, now=lambda: 1234.5)
    infos = [s for f in m.registry.collect() if f.name == "icapdlp_build_info" for s in f.samples]
    assert [s.labels["policy_digest"] for s in infos] == ["cd" * 8]
    assert value(m, "icapdlp_reloads_total", outcome="success") == 1
    assert value(m, "icapdlp_reloads_total", outcome="failure") == 1
    assert value(m, "icapdlp_config_last_reload_successful") == 1
    assert value(m, "icapdlp_config_last_reload_success_timestamp_seconds") == 1234.5


def test_readiness_result_sets_the_ready_gauges_for_known_checks_only(metrics):
    metrics.record_readiness(False, {"workers": {"ok": True}, "tesseract": {"ok": False, "error": "OSError"},
                                     "made-up": {"ok": True}})
    assert value(metrics, "icapdlp_ready") == 0
    assert value(metrics, "icapdlp_ready_check", check="workers") == 1
    assert value(metrics, "icapdlp_ready_check", check="tesseract") == 0
    assert metrics.registry.get_sample_value("icapdlp_ready_check", {"check": "made-up"}) is None


def _burn_cpu(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_child_process_memory_is_summed_and_cpu_of_exited_children_is_kept():
    """A real spawned child: its RSS is counted while it lives, its CPU still after it is reaped."""
    from icapdlp.observability.processes import ChildProcessCollector

    collector = ChildProcessCollector()

    def sample(name: str) -> float:
        return next(s.value for f in collector.collect() for s in f.samples if s.name == name)

    before_cpu = sample("icapdlp_worker_cpu_seconds_total")
    before_count = sample("icapdlp_worker_processes")
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_burn_cpu, args=(0.5,))
    child.start()
    try:
        assert sample("icapdlp_worker_processes") >= before_count + 1
        assert sample("icapdlp_worker_resident_memory_bytes") > 0
        assert 0 < sample("icapdlp_worker_resident_memory_max_bytes") <= \
            sample("icapdlp_worker_resident_memory_bytes")
    finally:
        child.join(30)
    assert child.exitcode == 0
    assert sample("icapdlp_worker_cpu_seconds_total") >= before_cpu + 0.4  # exited and reaped: still counted
