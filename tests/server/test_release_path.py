"""The connection's side of releasing a body while it is read (NeedBody with a release check).

A scripted check clears all but the last ``TAIL`` bytes it was fed, so these
tests are about the driver: released bytes come from the spool in order, an
unchanged verdict completes the echo, any other verdict cuts it off with the
held bytes never sent, and a client that writes its whole request before it
reads does not deadlock the connection.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from icapdlp.adaptation.api import Block, NeedBody, NoChange
from icapdlp.verdict import BlockReason
from tests.icap import messages as m
from tests.server.harness import ScriptedAdapter

TAIL = 1000
WAIT = 15.0
#: the release check is fed from the first byte (tests of the driver); the default waits for a pause
EAGER = {"release_after_pause": 0}


class ClearAllButTail:
    """Clears every byte but the last TAIL seen so far."""

    stopped = False

    def __init__(self, fail_after: int | None = None) -> None:
        self.seen = self.cleared = 0
        self.fail_after = fail_after

    def feed(self, data: bytes) -> int:
        self.seen += len(data)
        if self.fail_after is not None and self.seen > self.fail_after:
            raise RuntimeError("a bug in the check")
        more = max(self.seen - TAIL - self.cleared, 0)
        self.cleared += more
        return more


def releasing(body_decision) -> ScriptedAdapter:
    return ScriptedAdapter(preview=lambda *_: NeedBody(release=ClearAllButTail()), body=body_decision)


def read_all(sock: socket.socket, quiet: float = 3.0) -> bytes:
    sock.settimeout(quiet)
    data = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except (TimeoutError, socket.timeout, ConnectionResetError):
        pass
    return bytes(data)


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """The chunked body after the ICAP and HTTP heads, and whether its last chunk arrived."""
    at = data.index(b"\r\n\r\n") + 4  # ICAP head
    at = data.index(b"\r\n\r\n", at) + 4  # HTTP response head
    body = bytearray()
    while True:
        end = data.find(b"\r\n", at)
        if end < 0:
            return bytes(body), False
        size = int(data[at:end].split(b";")[0], 16)
        if size == 0:
            return bytes(body), True
        body += data[end + 2:end + 2 + size]
        if end + 2 + size > len(data):
            return bytes(body), False
        at = end + 2 + size + 2


def _exchange_bytes(thread, body: bytes) -> bytes:
    """One RESPMOD of ``body`` (4 KiB preview) sent whole; everything the server answered."""
    first, rest = m.respmod(body, preview=4096)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        sock.sendall(first + rest)
        return read_all(sock)
    finally:
        sock.close()


def _released_during_a_pause(thread, body: bytes) -> tuple[bytes, bytes]:
    """A RESPMOD of ``body`` whose sender stops after 100 KB (as Squid 5.7 does) until 90 KB of the
    answer arrived: (what arrived before it went on, everything that arrived)."""
    first, rest = m.respmod(body, preview=4096)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        sock.sendall(first + rest[:100_000])
        early = bytearray()
        sock.settimeout(WAIT)
        while b"ICAP/1.0 200 OK" not in early or len(early) < 90_000:
            early += sock.recv(1 << 20)
        sock.sendall(rest[100_000:])
        return bytes(early), bytes(early) + read_all(sock, quiet=2.0)
    finally:
        sock.close()


def _with_a_pause(thread, body: bytes, **respmod) -> tuple[bytes, bytes]:
    """A RESPMOD of ``body`` whose sender stops after 100 KB until the answer has been quiet for a
    second, as Squid 5.7 does: (what arrived during the pause, everything that arrived)."""
    first, rest = m.respmod(body, preview=4096, **respmod)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        sock.sendall(first + rest[:100_000])
        during_pause = read_all(sock, quiet=1.0)
        sock.sendall(rest[100_000:])
        return during_pause, during_pause + read_all(sock, quiet=2.0)
    finally:
        sock.close()


def wait_records(thread, count: int = 1):
    started = time.monotonic()
    while len(thread.observer.records) < count and time.monotonic() - started < WAIT:
        time.sleep(0.02)
    return thread.observer.records


def test_released_bytes_arrive_before_the_body_ends_and_the_echo_completes_unchanged(icap_server):
    thread = icap_server(releasing(NoChange()))
    body = os.urandom(300_000)
    early, data = _released_during_a_pause(thread, body)
    assert early.startswith(b"ICAP/1.0 100 Continue")  # the answer began while the client still sends
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body
    [record] = wait_records(thread)
    assert record.outcome == "no-change" and record.bytes_out == len(body)


def test_an_unchanged_verdict_echoes_the_whole_body_byte_identical_and_keeps_the_connection(icap_server):
    thread = icap_server(releasing(NoChange()), limits={**EAGER, "spool_memory_bytes": 50_000})  # spooled to a file
    body = os.urandom(700_000)
    first, rest = m.respmod(body, preview=4096)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        sock.sendall(first + rest + m.reqmod_get_preview0())
        data = read_all(sock, quiet=2.0)
    finally:
        sock.close()
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body
    assert data.count(b"ICAP/1.0 204") == 1  # the pipelined GET after it, on the same connection
    records = wait_records(thread, 2)
    assert [r.outcome for r in records] == ["no-change", "no-change"]


def test_a_block_after_release_cuts_the_answer_off_and_the_held_bytes_never_leave(icap_server):
    thread = icap_server(releasing(Block(BlockReason.UNPARSEABLE_DICOM, "planted")), limits=EAGER)
    body = os.urandom(200_000)
    data = _exchange_bytes(thread, body)
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert not complete, "a blocked body must not end like a complete one"
    assert body.startswith(echoed) and len(body) - len(echoed) >= TAIL  # the held tail never left
    assert b"HTTP/1.1 403" not in data[data.index(b"ICAP/1.0 200") + 20:]  # no block page after a started answer
    [record] = wait_records(thread)
    assert record.outcome == "blocked" and record.reason is BlockReason.UNPARSEABLE_DICOM


def test_a_client_that_writes_everything_before_reading_does_not_deadlock(icap_server):
    """Released bytes fill the client's receive buffer while it still writes: we keep reading."""
    thread = icap_server(releasing(NoChange()), limits=EAGER)
    body = os.urandom(24 * 1024 * 1024)
    first, rest = m.respmod(body, preview=4096)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        sock.settimeout(30)
        sock.sendall(first + rest)  # everything, before reading a byte
        data = read_all(sock)
    finally:
        sock.close()
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body


def test_a_release_check_that_raises_only_stops_releasing(icap_server):
    check = ClearAllButTail(fail_after=100_000)
    thread = icap_server(ScriptedAdapter(preview=lambda *_: NeedBody(release=check), body=NoChange()), limits=EAGER)
    body = os.urandom(400_000)
    data = _exchange_bytes(thread, body)
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body  # the end-of-body verdict completed what was released


def test_a_body_limit_hit_while_the_client_reads_nothing_ends_the_request_and_the_server_keeps_serving(
        icap_server):
    """Finished arrived while writing was paused and a release check was still set: the loop spun forever."""
    thread = icap_server(releasing(NoChange()), limits={**EAGER, "body_bytes": 6_000_000, "idle_timeout": 3.0})
    body = os.urandom(12_000_000)
    first, rest = m.respmod(body, preview=4096)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", thread.port))
    sock.settimeout(10)
    try:
        try:
            sock.sendall(first + rest)  # never reads: our answer fills its buffer, then the limit hits
        except OSError:
            pass  # the server closed on the limit
        other = socket.create_connection(("127.0.0.1", thread.port), timeout=5)
        other.sendall(b"OPTIONS icap://127.0.0.1/deid-resp ICAP/1.0\r\nHost: x\r\n\r\n")
        assert other.recv(100).startswith(b"ICAP/1.0 200")  # the event loop is free
        other.close()
        # recorded once the unread answer is given up (idle_timeout), as an error
        records = wait_records(thread, 2)
        assert sorted(r.outcome for r in records) == ["error", "no-change"]
    finally:
        sock.close()


# -- when the release starts: only once the body pauses (limits.release_after_pause) ---------------


class CountingCheck(ClearAllButTail):
    """Clears all but the tail, and remembers what it was fed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.fed = bytearray()

    def feed(self, data: bytes) -> int:
        self.fed += data
        return super().feed(data)


def test_a_body_that_keeps_arriving_is_never_fed_to_the_release_check(icap_server):
    """Release checks cost about twice the end-of-body walk: a client that sends on is not made to pay."""
    check = CountingCheck()
    thread = icap_server(ScriptedAdapter(preview=lambda *_: NeedBody(release=check), body=NoChange()),
                         limits={"release_after_pause": 0.5})
    body = os.urandom(2_000_000)
    first, rest = m.respmod(body, preview=4096, allow_204=False)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        sock.sendall(first + rest)
        data = read_all(sock, quiet=2.0)
    finally:
        sock.close()
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body
    assert check.fed == b""


def test_a_pause_feeds_the_check_everything_kept_then_every_later_arrival(icap_server):
    check = CountingCheck()
    thread = icap_server(ScriptedAdapter(preview=lambda *_: NeedBody(release=check), body=NoChange()))
    body = os.urandom(300_000)
    _early, data = _released_during_a_pause(thread, body)
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body
    assert bytes(check.fed) == body  # from the first byte, each byte once, in order


def test_a_pause_after_more_than_the_catch_up_holds_the_body_whole(icap_server, monkeypatch):
    """Checking a long kept stretch at once would stall the event loop: such a body is never released."""
    from icapdlp.server import connection

    monkeypatch.setattr(connection, "RELEASE_CATCH_UP_BYTES", 50_000)
    check = CountingCheck()
    thread = icap_server(ScriptedAdapter(preview=lambda *_: NeedBody(release=check), body=NoChange()),
                         limits={"release_after_pause": 0.05})
    body = os.urandom(300_000)
    during_pause, data = _with_a_pause(thread, body, allow_204=False)
    assert during_pause == b"ICAP/1.0 100 Continue\r\n\r\n"  # nothing of the body left early
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body
    assert check.fed == b""


class ClearInBursts:
    """Clears nothing for a while, then megabytes at once (as a check does after a pause in writing)."""

    BURST = 8_000_000
    stopped = False

    def __init__(self) -> None:
        self.seen = self.cleared = 0

    def feed(self, data: bytes) -> int:
        self.seen += len(data)
        if self.seen - self.cleared < self.BURST + TAIL:
            return 0
        more = self.seen - TAIL - self.cleared
        self.cleared += more
        return more


def test_a_burst_of_cleared_bytes_is_released_in_bounded_pieces(icap_server, monkeypatch):
    """Everything cleared at once went out as one spool read and one chunk (tens of MB per connection)."""
    from icapdlp.server import connection, spool

    largest = [0]
    original_read = spool.Spool.read

    def recording_read(self, start, end):
        largest[0] = max(largest[0], end - start)
        return original_read(self, start, end)
    monkeypatch.setattr(spool.Spool, "read", recording_read)
    thread = icap_server(ScriptedAdapter(preview=lambda *_: NeedBody(release=ClearInBursts()), body=NoChange()),
                         limits=EAGER)
    body = os.urandom(20_000_000)
    first, rest = m.respmod(body, preview=4096)
    sock = socket.create_connection(("127.0.0.1", thread.port))
    sock.settimeout(30)
    try:
        received = bytearray()
        reader = threading.Thread(target=lambda: received.extend(read_all(sock, quiet=3.0)))
        reader.start()
        sock.sendall(first + rest)
        reader.join(60)
    finally:
        sock.close()
    data = bytes(received)
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body
    assert 0 < largest[0] <= connection.FILE_PIECE_BYTES, largest


# -- a response held open: filler, then the verdict's body ------------------------------------------

from icapdlp.adaptation.api import HoldOpen, Replace  # noqa: E402
from icapdlp.http import HttpHeaders, HttpResponseHead  # noqa: E402

OPEN_HEAD = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders([("Content-Type", "multipart/related; boundary=b")]))


def holding(body_decision) -> ScriptedAdapter:
    return ScriptedAdapter(preview=lambda *_: NeedBody(hold_open=HoldOpen(OPEN_HEAD, b"\r\n")), body=body_decision)


def test_a_held_open_response_sends_only_filler_until_the_verdict_then_the_rewritten_body(icap_server):
    new_head = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders(
        [("Content-Type", "multipart/related; boundary=b"), ("Content-Length", "9")]))
    thread = icap_server(holding(Replace(response=new_head, body=b"REWRITTEN")), limits=EAGER)
    body = b"--b\r\n\r\n" + os.urandom(300_000) + b"\r\n--b--\r\n"
    data = _exchange_bytes(thread, body)
    sent, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and sent.endswith(b"REWRITTEN") and set(sent[:-9]) <= {13, 10} and len(sent) > 9
    assert b"Content-Length" not in data[:data.index(b"\r\n\r\n", data.index(b"HTTP/1.1 200")) + 4]
    [record] = wait_records(thread)
    assert record.outcome == "rewritten"


def test_a_held_open_response_that_passes_unchanged_sends_the_original_body_after_the_filler(icap_server):
    thread = icap_server(holding(NoChange()), limits=EAGER)
    body = b"--b\r\n\r\n" + os.urandom(200_000) + b"\r\n--b--\r\n"
    sent, complete = dechunk((data := _exchange_bytes(thread, body))[data.index(b"ICAP/1.0 200"):])
    assert complete and sent.lstrip(b"\r\n") == body


@pytest.mark.parametrize("verdict", ["block", "incompatible head"])
def test_a_held_open_response_that_is_not_passed_as_announced_is_cut_off_with_nothing_of_it_sent(
        icap_server, verdict):
    other_head = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders([("Content-Type", "application/zip")]))
    decision = (Block(BlockReason.UNPARSEABLE_DICOM, "x") if verdict == "block"
                else Replace(response=other_head, body=b"ZIP"))
    thread = icap_server(holding(decision), limits=EAGER)
    body = b"--b\r\n\r\n" + os.urandom(200_000) + b"\r\n--b--\r\n"
    data = _exchange_bytes(thread, body)
    sent, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert not complete and set(sent) <= {13, 10}  # filler only: not a byte of the body, old or new
    [record] = wait_records(thread)
    assert record.outcome == "blocked"
    assert record.reason is (BlockReason.UNPARSEABLE_DICOM if verdict == "block" else BlockReason.INTERNAL_ERROR)


def test_a_held_open_response_that_keeps_arriving_gets_a_proper_block_page(icap_server):
    """No pause, no early answer: the client gets the block page, not a cut-off download."""
    thread = icap_server(holding(Block(BlockReason.UNPARSEABLE_DICOM, "x")), limits={"release_after_pause": 0.5})
    body = b"--b\r\n\r\n" + os.urandom(2_000_000) + b"\r\n--b--\r\n"
    data = _exchange_bytes(thread, body)
    assert b"ICAP/1.0 200 OK" in data and b"HTTP/1.1 403" in data
    [record] = wait_records(thread)
    assert record.outcome == "blocked"


def test_a_held_open_response_that_pauses_begins_its_answer_during_the_pause(icap_server):
    new_head = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders(
        [("Content-Type", "multipart/related; boundary=b"), ("Content-Length", "9")]))
    thread = icap_server(holding(Replace(response=new_head, body=b"REWRITTEN")))
    body = b"--b\r\n\r\n" + os.urandom(300_000) + b"\r\n--b--\r\n"
    during_pause, data = _with_a_pause(thread, body)
    assert b"HTTP/1.1 200 OK" in during_pause and b"multipart/related" in during_pause
    sent, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and sent.endswith(b"REWRITTEN") and set(sent[:-9]) <= {13, 10}


class StopsAtOnce:
    """A release check whose first window fails (a zip, say): it never clears a byte."""

    def __init__(self) -> None:
        self.stopped = False

    def feed(self, data: bytes) -> int:
        self.stopped = True
        return 0


ZIP_HEAD = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders([("Content-Type", "application/zip")]))


def test_a_release_that_stops_before_clearing_a_byte_holds_the_answer_open_instead(icap_server):
    """A large zip of a study: nothing of it may leave, yet Squid 5.7 must see the answer begin."""
    new_head = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders([("Content-Type", "application/zip"),
                                                                     ("Content-Length", "9")]))
    thread = icap_server(ScriptedAdapter(
        preview=lambda *_: NeedBody(release=StopsAtOnce(), hold_open=HoldOpen(ZIP_HEAD, b"")),
        body=Replace(response=new_head, body=b"REWRITTEN")))
    body = b"PK\x03\x04" + os.urandom(300_000)
    during_pause, data = _with_a_pause(thread, body)
    head_end = during_pause.index(b"\r\n\r\n", during_pause.index(b"HTTP/1.1 200 OK")) + 4
    assert b"application/zip" in during_pause and b"Content-Length" not in during_pause
    assert during_pause[head_end:] == b""  # the head only: not a byte of the body before the verdict
    sent, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and sent == b"REWRITTEN"


def test_a_release_that_cleared_bytes_before_it_stopped_is_not_held_open_again(icap_server):
    """Once the echo began with the original head, only the echo can go on (or be cut off)."""
    check = ClearThenStop(stop_after=100_000)
    thread = icap_server(ScriptedAdapter(preview=lambda *_: NeedBody(release=check, hold_open=HoldOpen(ZIP_HEAD, b"")),
                                         body=NoChange()), limits=EAGER)
    body = os.urandom(300_000)
    data = _exchange_bytes(thread, body)
    assert check.stopped and check.cleared > 0
    assert data.count(b"HTTP/1.1 200") == 1 and b"application/zip" not in data
    echoed, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and echoed == body


class ClearThenStop(ClearAllButTail):
    def __init__(self, stop_after: int) -> None:
        super().__init__()
        self.stop_after = stop_after
        self.stopped = False

    def feed(self, data: bytes) -> int:
        if self.stopped:
            return 0
        more = super().feed(data)
        self.stopped = self.seen > self.stop_after
        return more


# -- review13: attacks on the pause timer and the held-open answer -----------------------------------


def test_a_held_open_response_whose_body_has_not_begun_when_the_pause_ends_is_still_answered(icap_server):
    """No preview (Squid with icap_preview_enable off), and the origin's first body bytes come late.

    The pause timer found no body kept yet and began the held-open answer:
    ``_send_filler`` read the size of a spool that did not exist, and the
    connection handler failed (AttributeError), closing the connection.
    """
    thread = icap_server(holding(NoChange()))
    body = b"--b\r\n\r\n" + os.urandom(200_000) + b"\r\n--b--\r\n"
    head_and_body, _ = m.respmod(body, preview=None)
    split = head_and_body.index(b"\r\n\r\n", head_and_body.index(b"HTTP/1.1 200")) + 4
    sock = socket.create_connection(("127.0.0.1", thread.port))
    try:
        sock.sendall(head_and_body[:split])  # the heads; the body follows after a pause
        time.sleep(0.3)
        sock.sendall(head_and_body[split:])
        data = read_all(sock, quiet=2.0)
    finally:
        sock.close()
    sent, complete = dechunk(data[data.index(b"ICAP/1.0 200"):])
    assert complete and sent.lstrip(b"\r\n") == body
    [record] = wait_records(thread)
    assert record.outcome == "no-change"
