"""The Squid end-to-end benchmark measures successful uploads, in three columns, and says so.

A throughput benchmark that silently counts Squid's error pages (HTTP 500
when an ICAP service with bypass=off fails) would report a fast, broken
path. The slow test runs the real benchmark (Squid 5.7, icapdlp, c-icap, the
origin, the load client) for one short round and requires its table to have
the icapdlp, c-icap and no-ICAP columns, every answer to be HTTP 200 and the
origin to have received every upload intact. The fast tests show that the
benchmark's own check fails on each kind of bad cell.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report.tables import extract_tables
from benchmarks.squid_e2e.run import problems, routing_problems
from tests.support.squid import SQUID

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "squid_e2e" / "run.py"


def good_cell() -> dict:
    return {"statuses": {"200": 120}, "errors": 0, "completed": 150, "origin": {"intact": 150, "other": 0}}


def test_a_clean_cell_has_no_problem():
    assert problems(good_cell()) == []


@pytest.mark.parametrize("change, expected", [
    ({"statuses": {"200": 100, "500": 20}}, "HTTP statuses other than 200"),
    ({"statuses": {}}, "no answers"),
    ({"errors": 3}, "3 connection(s) lost"),
    ({"origin": {"intact": 149, "other": 0}}, "origin got 149 intact"),
    ({"origin": {"intact": 150, "other": 1}}, "1 other requests"),
])
def test_the_check_fails_on_errors_lost_connections_and_what_the_origin_did_not_get(change, expected):
    cell = good_cell() | change
    found = problems(cell)
    assert found and any(expected in p for p in found), found


def icap_line(path: str, method: str = "REQMOD", outcome: str = "ICAP_ECHO/204") -> str:
    return f"1796214497.718      1 {outcome} 0 {method} icap://127.0.0.1:1344{path} -"


def test_routing_check_counts_each_services_reqmods_against_its_columns_uploads():
    lines = [icap_line("/deid-req", "OPTIONS", "ICAP_OPT/200")] + [icap_line("/deid-req")] * 3 + [
        icap_line("/echo")] * 2 + [icap_line("/echo", outcome="ICAP_MOD/200")] * 2
    assert routing_problems(lines, {"icapdlp": 3, "c-icap": 4, "no-ICAP": 9}) == []
    # an icapdlp-column upload that Squid sent to c-icap, or to no service at all
    assert routing_problems(lines, {"icapdlp": 4, "c-icap": 3, "no-ICAP": 9}) == [
        "icapdlp: 3 REQMOD transactions in icap.log for 4 uploads",
        "c-icap: 4 REQMOD transactions in icap.log for 3 uploads"]
    assert routing_problems(lines, {"icapdlp": 4, "c-icap": 4, "no-ICAP": 9}) == [
        "icapdlp: 3 REQMOD transactions in icap.log for 4 uploads"]
    # a third service in the log (a no-ICAP upload that went through ICAP after all)
    assert routing_problems(lines + [icap_line("/other")], {"icapdlp": 3, "c-icap": 4, "no-ICAP": 9}) == [
        "1 REQMOD transactions went to neither service"]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not Path(SQUID).exists() or shutil.which("c-icap") is None,
                    reason="needs squid-openssl and c-icap (tools/bootstrap.sh)")
def test_one_short_round_gives_three_columns_of_successful_uploads():
    command = [sys.executable, str(SCRIPT), "--duration", "1", "--warmup", "0.5", "--rounds", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every upload answered 200 and reached the origin intact" in done.stdout

    main, cpu = extract_tables(done.stdout)[:2]
    header, *rows = main
    for column in ("icapdlp req/s", "c-icap req/s", "no-ICAP req/s", "ratio"):
        assert column in header, header
    assert [row[0] for row in rows] == ["1", "all"]
    statuses = rows[0][header.index("HTTP statuses icapdlp/c-icap/no-ICAP")].split("/")
    assert len(statuses) == 3
    for cell in statuses:  # only 200, and some of them, in every column
        assert re.fullmatch(r"200:[1-9]\d*", cell), statuses
    for column in ("icapdlp req/s", "c-icap req/s", "no-ICAP req/s"):
        assert float(rows[0][header.index(column)].replace(",", "")) > 0

    assert [row[0] for row in cpu[1:]] == ["icapdlp", "c-icap", "no-ICAP"]
    # Squid reached each ICAP service (and never the other one from the wrong port)
    outcomes = re.search(r"icap\.log \(warm-up included\): icapdlp (.*) \| c-icap (.*)", done.stdout)
    assert outcomes and "REQMOD ICAP_ECHO/204" in outcomes[1] and "REQMOD" in outcomes[2]
