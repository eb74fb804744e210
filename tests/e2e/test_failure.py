"""Fail closed through a real Squid: icapdlp down, icapdlp back, icapdlp blocking.

The Squid here is rendered from squid-examples/upload-download.conf
(``bypass=off``), with only the failure limit disabled so a restarted
icapdlp is used by the next request. What the README promises is checked at
the origin: while icapdlp is down a candidate upload gets HTTP 500 and not
one byte reaches the origin; after a restart traffic flows again with the
same Squid process; a blocked object gets the 403 page and nothing is sent.
"""

from __future__ import annotations

import os

import pytest

from icapdlp.verdict import BlockReason
from tests.e2e.client import via_proxy
from tests.e2e.conftest import E2E_POLICY, IcapLogWatch
from tests.support import synthetic
from tests.support.processes import free_port, start_icapdlp
from tests.support.squid import start_squid_from_example

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Restartable:
    """One icapdlp on a fixed port and key that a test may stop and start again."""

    def __init__(self, workdir) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.server = None
        self.key_path = None

    def start(self):
        self.server = start_icapdlp(E2E_POLICY, self.workdir, port=self.port, key_path=self.key_path)
        self.key_path = self.server.key_path
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture(scope="module")
def restartable(e2e_dir):
    service = Restartable(e2e_dir / "restartable")
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def failure_squid(restartable):
    proxy = start_squid_from_example("upload-download.conf", icap_port=restartable.port)
    yield proxy
    proxy.cleanup()


def upload(proxy, origin, name: str, data: bytes, content_type: str = "application/octet-stream"):
    return via_proxy(proxy.port, "POST", origin.url(f"/raw/{name}"), data, {"Content-Type": content_type})


def test_icapdlp_down_refuses_candidates_and_restart_recovers(failure_squid, restartable, origin):
    squid_pid = failure_squid.process.pid
    data = os.urandom(100_000)
    origin.clear()
    assert upload(failure_squid, origin, "warm-up", data).status == 200  # OPTIONS fetched, service up
    assert origin.wait_received(1)[0].body == data

    restartable.stop()
    origin.clear()
    watch = IcapLogWatch(failure_squid)
    refused = upload(failure_squid, origin, "while-down", data)
    assert refused.status == 500
    dicom = synthetic.make_ct(7)
    refused_dicom = upload(failure_squid, origin, "dicom-while-down", dicom.data, "application/dicom")
    assert refused_dicom.status == 500
    assert all(p.encode() not in refused_dicom.body for p in dicom.phi_strings)
    outcomes = watch.outcomes(2, "/deid-req")
    assert [o[0] for o in outcomes] == ["REQMOD", "REQMOD"]
    assert all(outcome.startswith("ICAP_ERR") for _, outcome, _ in outcomes)
    # every body goes to icapdlp (fail closed), so a body of any type is refused during the outage
    assert upload(failure_squid, origin, "json-while-down", b"{}", "application/json").status == 500
    assert origin.wait_received(1, timeout=1.0) == [], "nothing of the refused uploads arrived"

    restartable.start()
    origin.clear()
    watch = IcapLogWatch(failure_squid)
    assert upload(failure_squid, origin, "after-restart", data).status == 200
    assert origin.wait_received(1)[0].body == data
    # read whole, then released: a 204 where Squid offered one, else an echo
    assert watch.outcomes(1, "/deid-req")[0] in (("REQMOD", "ICAP_ECHO", 204), ("REQMOD", "ICAP_MOD", 200))
    assert failure_squid.process.pid == squid_pid, "Squid was neither restarted nor reconfigured"


def test_blocked_upload_shows_the_403_page_and_reaches_nobody(failure_squid, restartable, origin):
    if restartable.server is None:
        restartable.start()
    dicom = synthetic.make_ct(8)
    truncated = dicom.data[: len(dicom.data) // 2]  # "DICM" magic, then a cut-off dataset
    origin.clear()
    watch = IcapLogWatch(failure_squid)
    reply = upload(failure_squid, origin, "truncated.dcm", truncated, "application/dicom")
    assert reply.status == 403
    page = reply.body.decode("utf-8", "replace")
    assert BlockReason.UNPARSEABLE_DICOM.value in page
    assert not dicom.surviving(reply.body), "the block page repeats nothing from the object"
    assert watch.outcomes(1, "/deid-req") == [("REQMOD", "ICAP_SAT", 200)]
    assert origin.wait_received(1, timeout=1.0) == []


def test_squid_started_without_icapdlp_keeps_the_service_down(e2e_dir, origin):
    """Squid marks a service down when its OPTIONS fetch fails, for at least 30 s.

    The README warns about this: start icapdlp before Squid (the compose file
    and the systemd unit order them), or expect 500s for up to
    icap_service_revival_delay after icapdlp appears.
    """
    port = free_port()
    proxy = start_squid_from_example("upload-download.conf", icap_port=port)
    try:
        origin.clear()
        assert upload(proxy, origin, "no-server", b"x" * 1000).status == 500
        server = start_icapdlp(E2E_POLICY, e2e_dir / "late", port=port)
        try:
            assert upload(proxy, origin, "server-just-started", b"x" * 1000).status == 500
            assert origin.wait_received(1, timeout=0.5) == []
        finally:
            server.stop()
    finally:
        proxy.cleanup()
