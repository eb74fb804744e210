"""Metrics of a real ``icapdlp serve``, scraped over HTTP: reloads, readiness, worker processes.

Issue 16 items 3 and 8: after SIGHUP the ISTag changed while
``icapdlp_build_info`` kept the old policy digest; there was no readiness
gauge, no reload metric, no worker memory, and 158 ``*_created`` series.
"""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import http_get, metric, rss_kb, wait_until, worker_pids
from tests.support.processes import icapdlp_server  # noqa: F401  (the factory fixture)
from tests.support import synthetic

BASE = """
[workers]
processes = 2
[profile]
clean_pixel_data = false
"""


def istag_digest(port: int) -> str:
    """The policy digest prefix inside the ISTag ("<version>-<digest>")."""
    tag = client.options(port).headers["istag"].strip('"')
    return tag.rsplit("-", 1)[1]


def build_info(server) -> list[dict[str, str]]:
    _, text = http_get(server, "/metrics")
    return [dict(re.findall(r'(\w+)="([^"]*)"', m)) for m in re.findall(r"^icapdlp_build_info\{([^}]*)\} 1\.0$",
                                                                      text, re.M)]


@pytest.mark.e2e
def test_after_sighup_build_info_shows_the_policy_the_istag_names_and_reloads_are_counted(icapdlp_server):
    server = icapdlp_server(BASE)
    (info,) = build_info(server)
    assert istag_digest(server.port).startswith(info["policy_digest"])
    loaded_at = metric(server, "icapdlp_config_last_reload_success_timestamp_seconds")
    assert abs(loaded_at - time.time()) < 120
    assert metric(server, "icapdlp_reloads_total", 'outcome="success"') == 0
    assert metric(server, "icapdlp_reloads_total", 'outcome="failure"') == 0
    assert metric(server, "icapdlp_config_last_reload_successful") == 1

    before = istag_digest(server.port)
    server.config_path.write_text(BASE + "retain_device_identity = true\n")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: istag_digest(server.port) != before, timeout=30)
    (info,) = build_info(server)  # one series: the old digest is gone, not left at 1
    assert istag_digest(server.port).startswith(info["policy_digest"])
    assert not before.startswith(info["policy_digest"])
    assert metric(server, "icapdlp_reloads_total", 'outcome="success"') == 1
    assert metric(server, "icapdlp_config_last_reload_success_timestamp_seconds") > loaded_at

    server.config_path.write_text("[profile\nbroken toml")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: metric(server, "icapdlp_reloads_total", 'outcome="failure"') == 1, timeout=30)
    assert metric(server, "icapdlp_config_last_reload_successful") == 0
    assert build_info(server) == [info], "a rejected reload must not change the digest shown"
    assert metric(server, "icapdlp_reloads_total", 'outcome="success"') == 1


@pytest.mark.e2e
def test_readiness_per_check_worker_memory_and_no_created_series(icapdlp_server):
    server = icapdlp_server(BASE)
    assert wait_until(lambda: metric(server, "icapdlp_ready") == 1, timeout=60)
    status, body = http_get(server, "/readyz")
    checks = json.loads(body)["checks"]
    assert status == 200 and set(checks) == {"workers", "config", "tesseract", "ner_model"}
    for name in checks:
        assert metric(server, "icapdlp_ready_check", f'check="{name}"') == 1, name

    reply = client.upload(server.port, synthetic.make_ct(41).data)  # some work in a worker
    assert reply.status == 200 and reply.block_reason is None
    _, text = http_get(server, "/metrics")
    assert "_created" not in text
    workers = worker_pids(server)
    assert len(workers) == 2
    assert metric(server, "icapdlp_worker_processes") >= 2  # plus multiprocessing's resource tracker
    total = metric(server, "icapdlp_worker_resident_memory_bytes")
    largest = metric(server, "icapdlp_worker_resident_memory_max_bytes")
    expected = sum(rss_kb(pid) for pid in workers) * 1024
    assert 0.8 * expected <= total <= 1.5 * expected + 64 * 2**20, (total, expected)
    assert max(rss_kb(pid) for pid in workers) * 1024 * 0.8 <= largest <= total
    assert metric(server, "icapdlp_worker_cpu_seconds_total") > 0
