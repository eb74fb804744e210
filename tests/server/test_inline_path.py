"""The connection drives the exchange from ``data_received`` until something must be awaited.

Requests whose answer is known at once are answered there; anything that
waits (more bytes, an adapter that awaits) resumes from a task. These
tests pin the cases where the two meet: several requests in one segment,
a request split anywhere, a hand-over in the middle of a pipeline, and the
observer seeing exactly one record per request in each case.
"""

from __future__ import annotations

import time

from icapdlp.adaptation.api import NoChange
from tests.icap import messages as m
from tests.server.harness import ListObserver, ScriptedAdapter


def _wait_records(observer: ListObserver, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(observer.records) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_pipelined_requests_in_one_segment_are_answered_in_order_and_each_recorded(icap_server, connect):
    observer = ListObserver()
    thread = icap_server(ScriptedAdapter(), observer=observer)
    client = connect(thread.port)
    post, _ = m.reqmod_post(b"x" * 100, preview=4096)
    client.send(m.reqmod_get_preview0() + post + m.reqmod_get_preview0() + b"OPTIONS icap://127.0.0.1/deid-req "
                b"ICAP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    statuses = [client.read_response().status for _ in range(4)]
    assert statuses == [204, 204, 204, 200]
    _wait_records(observer, 4)
    assert [(r.icap_method, r.icap_status) for r in observer.records] == [
        ("REQMOD", 204), ("REQMOD", 204), ("REQMOD", 204), ("OPTIONS", 200)]
    assert [r.bytes_in for r in observer.records] == [0, 100, 0, 0]
    assert observer.started == 4


def test_request_split_byte_by_byte_is_answered_once(icap_server, connect):
    observer = ListObserver()
    thread = icap_server(ScriptedAdapter(), observer=observer)
    client = connect(thread.port)
    request = m.reqmod_get_preview0()
    for i in range(len(request)):
        client.send(request[i:i + 1])
        time.sleep(0.0005)
    assert client.read_response().status == 204
    client.send(request)  # the connection still serves the next request
    assert client.read_response().status == 204
    _wait_records(observer, 2)
    assert len(observer.records) == 2


def test_adapter_that_awaits_mid_pipeline_keeps_order(icap_server, connect):
    """The first request suspends (adapter sleeps): it and the ones behind it go through the task."""
    observer = ListObserver()
    adapter = ScriptedAdapter(preview=NoChange(), delay=0.05)
    thread = icap_server(adapter, observer=observer)
    client = connect(thread.port)
    body = b"y" * 300
    post, _ = m.reqmod_post(body, preview=4096, allow_204=True)
    client.send(m.reqmod_get_preview0() + post + m.reqmod_get_preview0())
    assert [client.read_response().status for _ in range(3)] == [204, 204, 204]
    assert [call[0] for call in adapter.calls] == ["preview"] * 3
    assert adapter.calls[1][2] == body
    _wait_records(observer, 3)
    assert [r.bytes_in for r in observer.records] == [0, 300, 0]


def test_body_arriving_after_the_head_is_read_by_the_task(icap_server, connect):
    """No preview: the head is served inline, the body waits in the task, the answer is the same."""
    thread = icap_server(ScriptedAdapter())
    client = connect(thread.port)
    data, _ = m.reqmod_post(b"z" * 5000, allow_204=False)
    split = data.index(b"\r\n\r\n", data.index(b"POST")) + 4  # after the HTTP head, before the chunks
    client.send(data[:split])
    time.sleep(0.05)
    client.send(data[split:])
    response = client.read_response()
    assert response.status == 200 and response.body == b"z" * 5000
    client.send(m.reqmod_get_preview0())
    assert client.read_response().status == 204


def test_broken_head_after_a_good_request_is_refused_and_closed(icap_server, connect):
    observer = ListObserver()
    thread = icap_server(ScriptedAdapter(), observer=observer)
    client = connect(thread.port)
    client.send(m.reqmod_get_preview0() + b"REQMOD icap://127.0.0.1/deid-req ICAP/2.0\r\nHost: x\r\n\r\n")
    assert client.read_response().status == 204
    assert client.read_response().status == 505
    assert client.is_closed()
    _wait_records(observer, 2)
    assert [r.icap_status for r in observer.records] == [204, 505]


class _FailingObserver(ListObserver):
    """An observer with a bug, from its second request on, whose message quotes payload-like text."""

    #: built at run time, so only the message, never the source line of a traceback frame, can carry it
    planted = "^".join(("PLANTED", "PATIENT", "NAME"))

    def request_started(self) -> None:
        super().request_started()
        if self.started > 1:
            raise RuntimeError(self.planted)


def test_a_bug_while_starting_an_inline_request_closes_without_logging_its_message(icap_server, connect, caplog):
    """The second request on a connection starts in data_received (the task is parked): a bug
    there must reach the task's handler, which logs type and frames only, not asyncio's, which
    would log the message."""
    thread = icap_server(ScriptedAdapter(), observer=_FailingObserver())
    client = connect(thread.port)
    with caplog.at_level("DEBUG"):
        client.send(m.reqmod_get_preview0())
        assert client.read_response().status == 204
        time.sleep(0.05)  # the task parks, waiting for the next request
        client.send(m.reqmod_get_preview0())
        client.sock.settimeout(5)
        assert client.sock.recv(65536) == b""  # closed, nothing answered (no 204 for a request we failed)
        deadline = time.monotonic() + 5
        while "RuntimeError" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "connection handler failed with RuntimeError" in caplog.text
    assert "in _advance" in caplog.text  # it was the synchronous drive from data_received
    assert _FailingObserver.planted not in caplog.text
