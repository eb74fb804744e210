"""[server] acceptors > 1: several processes on one port, one set of metrics, restarts, clean stop."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request

import pytest

from icapdlp.app.application import worker_share
from tests.app.passthrough_serve import COMMAND as PASSTHROUGH_SERVE
from tests.icap import messages as m
from tests.server.harness import IcapClient
from tests.support.processes import start_icapdlp

pytestmark = pytest.mark.e2e


def test_worker_processes_are_divided_between_acceptors():
    assert [worker_share(5, 2, i) for i in range(2)] == [3, 2]
    assert [worker_share(2, 2, i) for i in range(2)] == [1, 1]
    assert [worker_share(1, 3, i) for i in range(3)] == [1, 1, 1]  # every acceptor needs one


def _serving_pids(port: int, state: str = "established") -> set[int]:
    """PIDs holding TCP sockets on local ``port`` in ``state`` (from /proc: no ss/ps needed)."""
    wanted = {"established": "01", "listening": "0A"}[state]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in list(handle)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == wanted:
                    inodes.add(fields[9])
    pids = set()
    for pid in _all_pids():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.add(pid)
                    break
        except OSError:
            continue
    return pids


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _children(parent: int) -> list[int]:
    found = []
    for pid in _all_pids():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(pid)
    return found


def _requests_total(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    return sum(float(v) for v in re.findall(r'^icapdlp_requests_total\{method="REQMOD"[^}]*\} (\S+)', text, re.M))


def _wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_two_acceptors_share_the_port_and_report_into_one_registry(tmp_path):
    server = start_icapdlp("[server]\nacceptors = 2\n[workers]\nprocesses = 2\n", tmp_path, command=PASSTHROUGH_SERVE)
    clients: list[IcapClient] = []
    try:
        assert _wait(lambda: len(_serving_pids(server.port, "listening")) == 2)  # bound after its own start-up
        clients = [IcapClient(server.port) for _ in range(40)]
        for client in clients:
            for _ in range(3):
                client.send(m.reqmod_get_preview0())
                assert client.read_response().status == 204
        assert len(_serving_pids(server.port)) == 2, "the kernel gave every connection to one process"
        assert _wait(lambda: _requests_total(server.metrics_port) == 120)
        victim = _child_acceptors(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        assert _wait(lambda: "acceptor 1 exited" in server.output())
        assert _wait(lambda: len(_child_acceptors(server.pid)) == 1 and victim not in _child_acceptors(server.pid))
    finally:
        for client in clients:
            client.close()
        assert server.stop() == 0
    assert _child_acceptors(server.pid) == []


def _child_acceptors(parent: int) -> list[int]:
    """PIDs of the extra acceptor processes: spawned children that listen on a socket."""
    acceptors = []
    for pid in _children(parent):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"spawn_main" in cmdline and _children(pid):  # acceptors have worker children; workers do not
            acceptors.append(pid)
    return acceptors


def test_a_taken_port_stops_a_multi_acceptor_start(tmp_path):
    import socket

    from tests.support.processes import ServerStartError, free_port

    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as another icapdlp would
        other.bind(("127.0.0.1", port))  # bound, not listening: our probe must still see it
        with pytest.raises(ServerStartError, match="Address already in use"):
            start_icapdlp("[server]\nacceptors = 2\n[workers]\nprocesses = 1\n", tmp_path,
                          command=PASSTHROUGH_SERVE, port=port, timeout=20)
