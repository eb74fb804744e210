"""The log and the audit of a real ``icapdlp serve``: separate streams, [logging] level and format.

Issue 16.10: plain-text logs and JSON audit lines shared stderr, there was no
log-level setting, and the start-up line did not give the metrics address.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric, wait_until
from tests.observability.test_no_phi import assert_no_phi
from tests.support import synthetic
from tests.support.processes import icapdlp_server  # noqa: F401  (the factory fixture)

BASE = """
[workers]
processes = 1
[profile]
clean_pixel_data = false
"""


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def is_audit_line(line: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False
    return isinstance(entry, dict) and {"tx", "outcome", "method"} <= set(entry)


def upload_planted(port: int):
    obj = synthetic.make_ct(52)
    reply = client.upload(port, obj.data)
    assert reply.status == 200 and reply.block_reason is None
    return obj


def planted_values(obj) -> list[str]:
    ds = obj.dataset
    return [str(ds.PatientName), str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)]


@pytest.mark.e2e
def test_json_warning_logs_on_stderr_and_the_audit_only_in_its_file(icapdlp_server, tmp_path):
    audit_file = tmp_path / "audit.jsonl"
    config = (BASE + '[logging]\nlevel = "warning"\nformat = "json"\n'
              + f'[audit]\ndestination = "file"\nfile = "{audit_file}"\n')
    server = icapdlp_server(config, separate_stderr=True)
    obj = upload_planted(server.port)
    server.config_path.write_text("[profile\nbroken toml")  # an ERROR in the log: "reload rejected"
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "reload rejected" in server.stderr(), timeout=30)
    assert server.stop() == 0

    err = lines(server.stderr())
    assert err, "the rejected reload must be logged"
    entries = [json.loads(line) for line in err]  # every stderr line is one JSON object
    assert all(set(e) >= {"time", "level", "logger", "message"} for e in entries)
    assert {e["level"] for e in entries} <= {"WARNING", "ERROR", "CRITICAL"}, "INFO below the configured level"
    assert any("reload rejected" in e["message"] for e in entries)
    assert not any(is_audit_line(line) for line in err)
    assert server.output() == "", "nothing on stdout: the audit goes to its file only"
    audit = lines(audit_file.read_text())
    assert len(audit) == 1 and is_audit_line(audit[0]) and json.loads(audit[0])["outcome"] == "rewritten"
    for where, text in (("stderr", server.stderr()), ("the audit file", audit_file.read_text())):
        assert_no_phi(text, where)
        for value in planted_values(obj):
            assert value not in text, f"{value!r} in {where}"


@pytest.mark.e2e
def test_default_text_log_on_stderr_names_both_addresses_and_the_audit_is_stdout_only(icapdlp_server):
    server = icapdlp_server(BASE, separate_stderr=True)
    assert wait_until(lambda: "serving icap://" in server.stderr(), timeout=30)
    obj = upload_planted(server.port)
    assert wait_until(lambda: lines(server.output()), timeout=10)
    assert server.stop() == 0

    (started,) = [line for line in lines(server.stderr()) if "serving icap://" in line]
    assert f"icap://127.0.0.1:{server.port}" in started
    assert f"http://127.0.0.1:{server.metrics_port}/metrics" in started
    assert " INFO " in started
    out = lines(server.output())
    assert len(out) == 1 and all(is_audit_line(line) for line in out)
    assert not any(is_audit_line(line) for line in lines(server.stderr()))
    for value in planted_values(obj):
        assert value not in server.stderr() and value not in server.output()


@pytest.mark.e2e
def test_a_reload_applies_the_new_logging_section(icapdlp_server):
    server = icapdlp_server(BASE, separate_stderr=True)
    assert wait_until(lambda: "serving icap://" in server.stderr(), timeout=30)
    server.config_path.write_text(BASE + '[logging]\nlevel = "warning"\nformat = "json"\n')
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: metric(server, "icapdlp_reloads_total", 'outcome="success"') == 1, timeout=30)
    mark = len(lines(server.stderr()))
    server.config_path.write_text("[profile\nbroken toml")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "reload rejected" in server.stderr(), timeout=30)
    after = lines(server.stderr())[mark:]
    assert after and all(json.loads(line)["level"] in ("WARNING", "ERROR") for line in after)
