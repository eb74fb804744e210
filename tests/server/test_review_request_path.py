"""Adversarial review of the single request path (issue 15): socket-level findings."""

from __future__ import annotations

import socket
import struct
import time

from icapdlp.adaptation.api import NeedBody, NoChange, Replace
from icapdlp.http import HttpHeaders, HttpRequestHead
from tests.icap import messages as m
from tests.server.harness import ScriptedAdapter

WAIT = 15.0


def _read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(3.0)  # silence for 3 s: nothing more comes
    data = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except (ConnectionResetError, TimeoutError, socket.timeout):
        pass
    return bytes(data)


def test_request_deadline_after_the_whole_answer_is_written_answers_nothing_more(icap_server):
    """The answer is complete but still in the send buffer when request_timeout passes.

    The request is over: the deadline must not write a second (408) answer
    after it, nor record a second transaction.
    """
    head = HttpRequestHead("POST", "/upload", "HTTP/1.1", HttpHeaders([("Host", "h")]))
    big = b"x" * (48 * 1024 * 1024)  # more than the socket buffers hold
    thread = icap_server(ScriptedAdapter(preview=NeedBody(), body=Replace(request=head, body=big)),
                         limits={"request_timeout": 1.0, "header_timeout": 1.0, "idle_timeout": 60.0})
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        first, _ = m.reqmod_post(b"small", preview=4096)
        sock.sendall(first)
        time.sleep(2.5)  # the request deadline passes while the answer waits to be read
        data = _read_until_closed(sock)
        assert b"ICAP/1.0 408" not in data
        started = time.monotonic()
        while not thread.observer.records and time.monotonic() - started < WAIT:
            time.sleep(0.05)
        time.sleep(0.3)
        assert len(thread.observer.records) == 1
        assert thread.observer.records[0].outcome == "error"  # the answer never reached the client whole
    finally:
        sock.close()


def test_a_spool_failure_on_a_body_the_preview_held_whole_is_blocked_and_recorded(icap_server, connect, tmp_path):
    """NeedBody on a complete preview keeps the preview; if the spool fails there, the answer is a block.

    The same failure after 100 Continue already answered a block; on a preview
    that held the whole body the block was refused as an illegal decision and
    the connection closed with no answer and no transaction record.
    """
    missing = str(tmp_path / "no-such-dir")
    thread = icap_server(ScriptedAdapter(preview=NeedBody()),
                         limits={"spool_memory_bytes": 0, "spool_dir": missing})
    client = connect(thread.port)
    first, _ = m.reqmod_post(b"a body the preview holds whole", preview=4096)
    client.send(first)
    response = client.read_response()
    assert response.status == 200 and b"403" in response.http_heads.split(b"\r\n")[0]
    started = time.monotonic()
    while not thread.observer.records and time.monotonic() - started < WAIT:
        time.sleep(0.05)
    assert [(r.outcome, r.reason.value) for r in thread.observer.records] == [("blocked", "spool-failed")]


class _SlowBodyReader(ScriptedAdapter):
    """Reads the body's file only after a pause, as a worker process does when the pool is busy."""

    def __init__(self) -> None:
        super().__init__(preview=NeedBody())
        self.file_there: list[bool] = []

    async def on_body(self, tx, body):
        import asyncio
        import os

        await asyncio.sleep(1.0)
        self.file_there.append(body.path is not None and os.path.exists(body.path))
        return NoChange()


def test_a_client_leaving_while_the_adapter_works_ends_the_request_at_once(icap_server, tmp_path):
    """Nobody reads the answer: the adapter's wait is given up (its queue place or worker comes back),
    the request is recorded as the error it ended in, not as whatever the abandoned job returns, and
    its body file is removed. (Before, the wait went on until the worker deadline.)"""
    adapter = _SlowBodyReader()
    thread = icap_server(adapter, limits={"spool_memory_bytes": 0, "spool_dir": str(tmp_path)})
    sock = socket.create_connection(("127.0.0.1", thread.port))
    first, _ = m.reqmod_post(b"a body spooled to a file", preview=4096)
    sock.sendall(first)
    time.sleep(0.3)  # the adapter has the body
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset: the connection is lost at once
    started = time.monotonic()
    while not thread.observer.records and time.monotonic() - started < WAIT:
        time.sleep(0.05)
    assert [r.outcome for r in thread.observer.records] == ["error"]
    assert time.monotonic() - started < 0.9  # before the adapter's own 1 s pause was over
    assert list(tmp_path.iterdir()) == []
    time.sleep(1.2)
    assert adapter.file_there == []  # its wait was cancelled: it never went on to read


def test_a_preview_that_outgrows_the_body_limit_is_blocked_with_its_transaction(icap_server, connect):
    """The block page and the audit record name the transaction, as they do for every other block.

    Before, a limit hit inside the preview (before the adapter was asked)
    had no transaction: the real block page raised on it and the audit
    record had no id.
    """
    thread = icap_server(ScriptedAdapter(preview=NeedBody()), limits={"body_bytes": 1024})
    client = connect(thread.port)
    first, _ = m.reqmod_post(b"p" * 3000, preview=4096)
    client.send(first)
    response = client.read_response()
    assert response.status == 200 and b"403" in response.http_heads.split(b"\r\n")[0]
    assert client.is_closed()
    records = thread.observer.records
    assert [(r.outcome, r.reason.value) for r in records] == [("blocked", "limit-exceeded")]
    assert records[0].tx is not None and records[0].tx.service == "deid-req"


def test_a_streamed_answer_the_client_stops_reading_after_the_request_deadline_is_dropped(icap_server, tmp_path):
    """The request deadline passes while a spooled answer is streamed and the client does not read.

    Before, every sweep answered the overdue request again (a 408 that could
    not be written) and restarted the stall deadline, so the connection was
    never dropped.
    """
    from icapdlp.adaptation.api import Body

    page = tmp_path / "answer"
    page.write_bytes(b"y" * (48 * 1024 * 1024))  # more than the socket buffers hold
    head = HttpRequestHead("POST", "/upload", "HTTP/1.1", HttpHeaders([("Host", "h")]))
    answer = Replace(request=head, body=Body(path=str(page), size=page.stat().st_size))
    thread = icap_server(ScriptedAdapter(preview=NeedBody(), body=answer),
                         limits={"request_timeout": 1.0, "header_timeout": 1.0, "idle_timeout": 2.0})
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        first, _ = m.reqmod_post(b"small", preview=4096)
        sock.sendall(first)  # and never read
        started = time.monotonic()
        while not thread.observer.records and time.monotonic() - started < WAIT:
            time.sleep(0.05)
        assert [r.outcome for r in thread.observer.records] == ["error"], "the stalled answer was still held"
    finally:
        sock.close()


def test_a_bug_in_the_connection_handler_still_records_the_request_as_an_error(icap_server, monkeypatch):
    """The handler closed the connection on an unexpected exception and wrote no transaction record."""
    from icapdlp.server import decisions

    def broken_apply(*_args, **_kwargs):
        raise RuntimeError("a bug")
    monkeypatch.setattr(decisions, "apply", broken_apply)
    thread = icap_server(ScriptedAdapter(preview=NeedBody()))
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        first, _rest = m.reqmod_post(b"x" * 10_000, preview=100)
        sock.sendall(first)
        assert _read_until_closed(sock) == b""  # closed, with nothing written for the broken request
    finally:
        sock.close()
    started = time.monotonic()
    while not thread.observer.records and time.monotonic() - started < WAIT:
        time.sleep(0.05)
    assert [r.outcome for r in thread.observer.records] == ["error"]


def test_a_lost_connection_gives_up_its_adapter_wait_at_once(icap_server):
    """The adapter's answer (a queued or running worker job) was awaited until the worker deadline."""
    thread = icap_server(ScriptedAdapter(delay=30.0))
    sock = socket.create_connection(("127.0.0.1", thread.port))
    first, _rest = m.reqmod_post(b"y" * 5000, preview=100)
    sock.sendall(first)
    time.sleep(0.3)  # the adapter is now being awaited
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset: the connection is lost (a FIN alone leaves our side open for the answer)
    started = time.monotonic()
    while not thread.observer.records and time.monotonic() - started < 10:
        time.sleep(0.05)
    assert [r.outcome for r in thread.observer.records] == ["error"]
    assert time.monotonic() - started < 5  # not after the adapter's 30 s
