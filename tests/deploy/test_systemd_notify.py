"""``icapdlp serve`` under systemd's ``Type=notify`` (issue 16 item 2).

The unit used to be ``Type=simple``: systemd started Squid the moment the
icapdlp process existed, Squid's first OPTIONS failed while icapdlp was
still loading, and Squid answered every upload with HTTP 500 for about a
minute. Now ``serve`` tells systemd when it is ready, over the socket named
by ``$NOTIFY_SOCKET``. No running systemd is needed to check that: these
tests bind the datagram socket themselves (a path and an abstract ``@``
name), read the sender's credentials as systemd does (``SO_PASSCRED``;
systemd's default ``NotifyAccess=main`` drops messages from other PIDs),
start the real ``python -m icapdlp serve`` and judge every message against
what the ports answer at that moment.
"""

from __future__ import annotations

import array
import http.client
import os
import secrets
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

import pytest

from icapdlp.app import notify
from tests.e2e.client import via_proxy
from tests.e2e.conftest import E2E_POLICY
from tests.support import synthetic
from tests.support.origin import OriginServer
from tests.support.processes import ServerProcess, free_port, start_icapdlp
from tests.support.squid import SQUID, start_squid_from_example

#: the server needs a few seconds to start its worker and load the NER model there
START_TIMEOUT = 90.0
_UCRED = struct.Struct("3i")  # pid, uid, gid


class NotifySocket:
    """A datagram socket standing in for systemd's: records (sender pid, fields) per message."""

    def __init__(self, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._dir: str | None = None
        if abstract:
            self.name = f"@icapdlp-test-{secrets.token_hex(8)}"
            self.sock.bind(b"\0" + self.name[1:].encode())
        else:  # a short directory: socket paths are limited to 107 bytes
            self._dir = tempfile.mkdtemp(prefix="icapdlp-n-")
            self.name = f"{self._dir}/notify"
            self.sock.bind(self.name)

    def receive(self, timeout: float) -> tuple[int, dict[str, str]] | None:
        """The next message as (sender pid, {KEY: VALUE}), or None after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
        except TimeoutError:
            return None
        pid = -1
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = _UCRED.unpack(payload[:_UCRED.size])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        return pid, fields

    def wait_for(self, key: str, timeout: float, on_message=None) -> list[tuple[int, dict[str, str]]]:
        """Messages up to and including the first that sets ``key``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            message = self.receive(max(0.05, deadline - time.monotonic()))
            if message is None:
                break
            if on_message is not None:
                on_message(message)
            seen.append(message)
            if key in message[1]:
                return seen
        raise AssertionError(f"no {key} within {timeout} s; got {seen}")

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def readyz_status(metrics_port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    finally:
        conn.close()


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Launch:
    """``icapdlp serve`` started in a thread (start_icapdlp blocks until the port listens)."""

    def __init__(self, workdir: Path, notify_name: str) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.server: ServerProcess | None = None
        self.error: BaseException | None = None
        env = {"NOTIFY_SOCKET": notify_name, "ICAPDLP_METRICS__PORT": str(self.metrics_port)}

        def run() -> None:
            try:
                self.server = start_icapdlp(E2E_POLICY, workdir, port=self.port, env=env, timeout=START_TIMEOUT)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def joined(self) -> ServerProcess:
        self.thread.join(START_TIMEOUT)
        if self.error is not None:
            raise self.error
        assert self.server is not None
        return self.server

    def stop(self) -> None:
        self.thread.join(START_TIMEOUT)
        if self.server is not None:
            self.server.stop()


# -- the protocol itself -------------------------------------------------------------


def test_socket_names_map_to_addresses():
    assert notify.socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify.socket_address("@/org/freedesktop/systemd1/notify/42") == b"\0/org/freedesktop/systemd1/notify/42"
    assert notify.socket_address("vsock:2:1234") is None
    assert notify.socket_address("relative/path") is None
    assert notify.socket_address("@") is None


@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
def test_notifier_sends_one_datagram_and_removes_the_variable(abstract):
    receiver = NotifySocket(abstract)
    try:
        environ = {"NOTIFY_SOCKET": receiver.name, "OTHER": "x"}
        notifier = notify.Notifier.from_environment(environ)
        assert environ == {"OTHER": "x"}, "children must not inherit the socket"
        assert notifier.send("READY=1", "STATUS=serving")
        pid, fields = receiver.receive(5)
        assert pid == os.getpid() and fields == {"READY": "1", "STATUS": "serving"}
    finally:
        receiver.close()


def test_notifier_without_systemd_or_with_a_dead_socket_does_nothing_harmful(tmp_path):
    assert notify.Notifier.from_environment({}).send("READY=1") is False
    gone = notify.Notifier(str(tmp_path / "nobody-listens"))
    assert gone.send("READY=1") is False and gone.send("STOPPING=1") is False


class SlowReadiness:
    """Readiness like /readyz's: "ner_model" fails for the first ``pending`` evaluations."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.evaluations = 0

    async def evaluate(self):
        self.evaluations += 1
        ok = self.evaluations > self.pending
        return ok, {"config": {"ok": True}, "ner_model": {"ok": ok}, "workers": {"ok": True}}


def test_ready_waits_for_every_readiness_check_and_says_which_one(monkeypatch):
    import asyncio

    monkeypatch.setattr(notify, "READY_POLL_SECONDS", 0.0)
    receiver = NotifySocket(abstract=True)
    try:
        readiness = SlowReadiness(pending=3)
        state = notify.ServiceState(notify.Notifier(receiver.name), readiness)
        state.reloading()  # a SIGHUP before the first READY=1 must not announce anything
        asyncio.run(state.announce_when_ready())
        messages = receiver.wait_for("READY", 5)
        assert [fields for _, fields in messages] == [
            {"STATUS": "listening; waiting for readiness checks: ner_model"},  # sent once, not per poll
            {"READY": "1", "STATUS": "serving"}]
        assert readiness.evaluations == 4 and state.announced
    finally:
        receiver.close()


# -- the real server ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
def test_serve_reports_ready_reloading_and_stopping(abstract, tmp_path):
    receiver = NotifySocket(abstract)
    launch = Launch(tmp_path / "server", receiver.name)
    at_ready: dict[str, object] = {}

    def judge(message: tuple[int, dict[str, str]]) -> None:
        if "READY" in message[1] and not at_ready:  # probe at once: this is the moment Squid would start
            at_ready["icap"] = port_accepts(launch.port)
            at_ready["readyz"] = readyz_status(launch.metrics_port)

    try:
        before = receiver.wait_for("READY", START_TIMEOUT, on_message=judge)
        server = launch.joined()
        assert at_ready == {"icap": True, "readyz": 200}, "READY=1 before the port listened and /readyz said 200"
        assert {pid for pid, _ in before} == {server.pid}, "only the main process speaks for the service"
        assert before[-1][1]["READY"] == "1" and before[-1][1]["STATUS"] == "serving"
        for _, fields in before[:-1]:  # anything earlier only says what it is waiting for
            assert set(fields) == {"STATUS"} and fields["STATUS"].startswith("listening; waiting")

        server.signal(signal.SIGHUP)
        reload_messages = receiver.wait_for("READY", 60)
        assert [pid for pid, _ in reload_messages] == [server.pid] * len(reload_messages)
        first, last = reload_messages[0][1], reload_messages[-1][1]
        assert first["RELOADING"] == "1"
        assert 0 < int(first["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert last["READY"] == "1" and last["STATUS"] == "serving (reloaded)"

        server.signal(signal.SIGTERM)
        [(pid, fields)] = receiver.wait_for("STOPPING", 30)
        assert pid == server.pid and fields["STOPPING"] == "1"
        assert server.process.wait(60) == 0
    finally:
        launch.stop()
        receiver.close()


@pytest.mark.slow
@pytest.mark.e2e
def test_rejected_reload_still_reports_ready_with_the_reason(tmp_path):
    receiver = NotifySocket(abstract=True)
    launch = Launch(tmp_path / "server", receiver.name)
    try:
        receiver.wait_for("READY", START_TIMEOUT)
        server = launch.joined()
        server.config_path.write_text("[servr]\nport = 1\n")  # a typo: the reload is refused
        server.signal(signal.SIGHUP)
        messages = receiver.wait_for("READY", 60)
        assert messages[0][1]["RELOADING"] == "1"
        assert messages[-1][1]["STATUS"] == "serving (reload rejected; previous policy kept)"
        assert port_accepts(launch.port)
    finally:
        launch.stop()
        receiver.close()


# -- the acceptance scenario: Squid started when systemd would start it ----------------------


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not Path(SQUID).exists(), reason="squid-openssl is not installed")
def test_squid_started_at_ready_serves_the_first_upload(tmp_path):
    """systemd starts squid.service (After=icapdlp.service) when READY=1 arrives; the first upload works.

    Squid keeps the example's own failure settings (the other tests disable the
    failure limit): a failed first OPTIONS would mark the service down for 30 s.
    """
    receiver = NotifySocket(abstract=True)
    launch = Launch(tmp_path / "server", receiver.name)
    origin = OriginServer().start()
    proxy = None
    try:
        receiver.wait_for("READY", START_TIMEOUT)
        proxy = start_squid_from_example(
            "upload-download.conf", icap_port=launch.port,
            replace_lines={"icap_service_failure_limit": ["icap_service_failure_limit 10 in 30 seconds"]})
        original = synthetic.make_ct(400)
        reply = via_proxy(proxy.port, "POST", origin.url("/raw/first.dcm"), original.data,
                          {"Content-Type": "application/dicom"})
        assert reply.status == 200, "Squid found icapdlp ready at its first OPTIONS"
        [got] = origin.wait_received(1)
        assert original.surviving(got.body) == []
        launch.joined()
    finally:
        if proxy is not None:
            proxy.cleanup()
        origin.stop()
        launch.stop()
        receiver.close()


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(not Path(SQUID).exists(), reason="squid-openssl is not installed")
def test_control_squid_started_with_the_process_refuses_the_first_upload(tmp_path):
    """What Type=simple did (issue 16 item 2): Squid started beside a loading icapdlp answers 500.

    Shows that the test above can fail: the only difference is when Squid starts.
    """
    receiver = NotifySocket(abstract=True)
    launch = Launch(tmp_path / "server", receiver.name)
    origin = OriginServer().start()
    proxy = None
    try:
        proxy = start_squid_from_example(
            "upload-download.conf", icap_port=launch.port,
            replace_lines={"icap_service_failure_limit": ["icap_service_failure_limit 10 in 30 seconds"]})
        assert not port_accepts(launch.port), "icapdlp was already listening: the control proves nothing"
        original = synthetic.make_ct(401)
        reply = via_proxy(proxy.port, "POST", origin.url("/raw/too-early.dcm"), original.data,
                          {"Content-Type": "application/dicom"})
        assert reply.status == 500 and origin.received() == []
        launch.joined()
    finally:
        if proxy is not None:
            proxy.cleanup()
        origin.stop()
        launch.stop()
        receiver.close()
