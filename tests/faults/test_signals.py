"""SIGTERM: stop accepting, finish in-flight work within the grace, exit 0.
SIGHUP: reload the policy atomically (ISTag and behaviour change together); a bad new
policy is rejected and the running one stays."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from tests.faults import icap_client as client
from tests.faults.serverctl import metric, slow_dicom, wait_until
from tests.support import synthetic

SLOW_ITEMS = 30_000  # ~2 s in the worker (see test_worker_crash)
BASE = """
[workers]
processes = 1
[profile]
clean_pixel_data = false
"""


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def start_slow_upload(port: int, seed: int) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run():
        try:
            outcome.append(client.upload(port, slow_dicom(seed, SLOW_ITEMS)))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted on by the test
            outcome.append(exc)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def sigterm_during_slow_upload(icapdlp_server, grace: float):
    """Start a server with ``grace``, wait until a slow upload occupies a worker, send SIGTERM.

    Returns the server, the upload thread, its outcome list and when the signal was sent.
    """
    server = icapdlp_server(BASE + f"[server]\nshutdown_grace = {grace}\n")
    thread, outcome = start_slow_upload(server.port, 31)
    assert wait_until(lambda: metric(server, "icapdlp_workers_busy") >= 1, timeout=30)
    sent = time.monotonic()
    server.signal(signal.SIGTERM)
    return server, thread, outcome, sent


@pytest.mark.e2e
def test_sigterm_finishes_the_in_flight_request_refuses_new_ones_and_exits_0(icapdlp_server):
    server, thread, outcome, sent = sigterm_during_slow_upload(icapdlp_server, 20)
    assert wait_until(lambda: refuses_connections(server.port), timeout=5), "still accepting after SIGTERM"
    thread.join(30)
    (reply,) = outcome
    assert not isinstance(reply, Exception), reply
    assert reply.status == 200 and reply.block_reason is None and reply.body[128:132] == b"DICM"
    assert server.process.wait(25) == 0
    assert time.monotonic() - sent < 20


@pytest.mark.e2e
def test_sigterm_with_work_longer_than_the_grace_exits_without_passing_it(icapdlp_server):
    server, thread, outcome, sent = sigterm_during_slow_upload(icapdlp_server, 0.5)
    code = server.process.wait(15)
    assert time.monotonic() - sent < 10, "the grace was not enforced"
    assert code == 0
    thread.join(30)
    (reply,) = outcome
    # cut off: a closed connection or a block page, never the unmodified object (204)
    assert isinstance(reply, Exception) or reply.block_reason is not None, reply


def istag(port: int) -> str:
    return client.options(port).headers["istag"]


@pytest.mark.e2e
def test_sighup_swaps_policy_and_istag_together_and_rejects_a_bad_file(icapdlp_server):
    server = icapdlp_server(BASE)
    obj = synthetic.make_ct(33)
    station = str(obj.dataset.StationName)
    before_tag = istag(server.port)
    assert station.encode() not in client.upload(server.port, obj.data).body

    server.config_path.write_text(BASE + "retain_device_identity = true\n")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: istag(server.port) != before_tag, timeout=20), "ISTag did not change on reload"
    new_tag = istag(server.port)
    after = client.upload(server.port, obj.data).body
    assert station.encode() in after, "new policy not applied with the new ISTag"

    for bad in ("[profile\nbroken toml", BASE + "no_such_option = 1\n", BASE + "[limits]\nbody_bytes = -5\n"):
        server.config_path.write_text(bad)
        log_before = server.output().count("reload rejected")
        server.signal(signal.SIGHUP)
        assert wait_until(lambda: server.output().count("reload rejected") > log_before, timeout=20), bad
        assert istag(server.port) == new_tag
        assert station.encode() in client.upload(server.port, obj.data).body, "old policy not kept"
    assert server.process.poll() is None
    assert os.path.exists(server.config_path)


@pytest.mark.e2e
def test_sighup_rejects_a_policy_whose_ner_model_is_not_installed(icapdlp_server):
    """serve refuses it at start-up; a reload to it is refused the same way, the old policy stays."""
    server = icapdlp_server(BASE)
    before_tag = istag(server.port)
    server.config_path.write_text(BASE.replace("clean_pixel_data = false", "clean_pixel_data = true")
                                  + '[pixels]\nner_model = "no_such_ner_model_pkg"\n')
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "reload rejected" in server.output(), timeout=20)
    assert "pixels.ner_model" in server.output()
    assert istag(server.port) == before_tag
    assert server.process.poll() is None
