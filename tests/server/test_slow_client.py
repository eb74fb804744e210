"""A client that stops in the middle of a request is cut off after the idle timeout (issue 12).

Before, only the whole-request timeout (300 s by default) applied once a
request had started, so a client that sent a preview, got 100 Continue and
then went quiet held its connection slot for five minutes; a few hundred of
them held every slot. The timeouts here are short so the difference shows:
``idle_timeout`` 0.5 s against a ``request_timeout`` of 120 s.
"""

from __future__ import annotations

import socket
import time

from icapdlp.adaptation.api import NeedBody, Replace
from icapdlp.http import HttpHeaders, HttpRequestHead
from tests.icap import messages as m
from tests.server.harness import ScriptedAdapter

BODY = bytes(range(256)) * 64  # 16 KiB
LIMITS = {"idle_timeout": 0.5, "request_timeout": 120.0}
#: generous: the stall deadline is 0.5 s; the whole-request timeout it replaces is 120 s
CUT_WITHIN = 15.0


def test_a_client_that_stops_after_100_continue_gets_408_after_the_idle_timeout(icap_server, connect):
    thread = icap_server(ScriptedAdapter(preview=NeedBody()), limits=LIMITS)
    client = connect(thread.port, timeout=60)
    first, rest = m.reqmod_post(BODY, preview=1024)
    client.send(first)
    assert client.read_response().status == 100
    client.send(rest[:5000])  # part of the body, then nothing
    started = time.monotonic()
    response = client.read_response()
    assert response.status == 408 and response.headers.get("connection") == "close"
    assert client.is_closed()
    assert time.monotonic() - started < CUT_WITHIN
    assert thread.observer.records[-1].icap_status == 408


def test_a_client_that_stops_inside_the_preview_is_cut_too(icap_server, connect):
    thread = icap_server(ScriptedAdapter(preview=NeedBody()), limits=LIMITS)
    client = connect(thread.port, timeout=60)
    first, _ = m.reqmod_post(BODY, preview=4096)
    client.send(first[:-1500])
    started = time.monotonic()
    assert client.read_response().status == 408 and client.is_closed()
    assert time.monotonic() - started < CUT_WITHIN


def test_a_slow_but_steady_client_is_served(icap_server, connect):
    """The deadline runs from the last bytes received, not from the start of the body."""
    thread = icap_server(ScriptedAdapter(preview=NeedBody()), limits={"idle_timeout": 1.0, "request_timeout": 120})
    client = connect(thread.port, timeout=60)
    first, rest = m.reqmod_post(BODY, preview=1024)
    client.send(first)
    assert client.read_response().status == 100
    step = len(rest) // 20
    for start in range(0, len(rest), step):  # about 4 s in all, 4x the idle timeout
        client.send(rest[start:start + step])
        time.sleep(0.2)
    assert client.read_response().status == 204


def test_time_the_server_spends_working_is_not_a_client_stall(icap_server, connect):
    thread = icap_server(ScriptedAdapter(preview=NeedBody(), delay=1.5), limits=LIMITS)
    client = connect(thread.port, timeout=60)
    first, rest = m.reqmod_post(BODY, preview=1024)
    client.send(first)
    assert client.read_response().status == 100
    client.send(rest)
    assert client.read_response().status == 204  # 3 s of adapter work against a 0.5 s idle timeout


def test_a_client_that_stops_reading_the_answer_is_dropped(icap_server):
    head = HttpRequestHead("POST", "/upload", "HTTP/1.1", HttpHeaders([("Host", "h")]))
    big = b"x" * (64 * 1024 * 1024)  # far more than the socket buffers hold
    thread = icap_server(ScriptedAdapter(preview=NeedBody(), body=Replace(request=head, body=big)), limits=LIMITS)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        first, _ = m.reqmod_post(b"small", preview=4096)
        sock.sendall(first)  # and never read
        started = time.monotonic()
        while not thread.observer.records and time.monotonic() - started < CUT_WITHIN:
            time.sleep(0.05)
        assert thread.observer.records, "the stalled answer was still held"
        assert thread.observer.records[-1].outcome == "error"
    finally:
        sock.close()
