"""The fast lane answers exactly as the general path: same bytes, same records, same adapter calls.

Each example feeds one generated stream of ICAP requests (well-formed,
mutated, truncated, over a limit, pipelined, split anywhere) to two
in-process connections, one with the fast lane and one without, each with
its own scripted adapter that decides the same way (no change, need body,
block, replace, raise, an invalid decision; at once or after awaiting).
Everything observable must match: the bytes written (Date blanked), whether
and when the connection closed, the observer's records and the adapter's
calls. A last group of tests checks that the fast lane is really taken for
the shapes it exists for, so the comparison is not vacuous.
"""

from __future__ import annotations

import asyncio
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icapdlp.adaptation.api import Block, NeedBody, NoChange, Replace
from icapdlp.http import HttpHeaders, HttpResponseHead
from icapdlp.server import fastlane
from icapdlp.server.blockpage import minimal_block_response
from icapdlp.server.connection import IcapConnection
from icapdlp.server.listener import IcapServer, Runtime
from icapdlp.server.replies import Replies
from icapdlp.transaction import TransactionReport
from icapdlp.verdict import BlockReason, Blocked
from tests.icap import messages as m
from tests.server.harness import ISTAG, SERVICES, ListObserver, make_settings

#: the smallest limits the settings allow, so generated requests reach them
LIMITS = {"icap_header_bytes": 1024, "http_header_bytes": 1024, "chunk_bytes": 1024, "body_bytes": 2048}
DECISIONS = ("nochange", "nochange", "nochange", "needbody", "block", "replace", "raise", "blocked", "invalid")


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed_at: int | None = None  # bytes written when close() was called

    def write(self, data: bytes) -> None:
        assert self.closed_at is None, "write after close"
        self.out += data

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        if self.closed_at is None:
            self.closed_at = len(self.out)

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class ScriptAdapter:
    """Decides from a script (one entry per call) and records each call without the random tx id."""

    def __init__(self, script: list[tuple[str, bool]]) -> None:
        self.script = list(script)
        self.calls: list[tuple] = []

    async def _decide(self, tx):
        kind, suspend = self.script.pop(0) if self.script else ("nochange", False)
        if suspend:
            await asyncio.sleep(0)
        if kind == "nochange":
            return NoChange(TransactionReport())
        if kind == "needbody":
            return NeedBody()
        if kind == "block":
            return Block(BlockReason.POLICY_BLOCKS_DICOM, "scripted")
        if kind == "replace":
            head = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders([("Content-Length", "3")]))
            return Replace(response=head, body=b"new")
        if kind == "raise":
            raise ValueError("scripted failure")
        if kind == "blocked":
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "scripted")
        return "not a decision"

    async def on_preview(self, tx, preview: bytes, complete: bool):
        self.calls.append(("preview", _tx_view(tx), preview, complete))
        return await self._decide(tx)

    async def on_body(self, tx, body):
        self.calls.append(("body", _tx_view(tx), body.read_all()))
        decision = await self._decide(tx)
        return NoChange() if isinstance(decision, NeedBody) else decision

    def block_response(self, tx, reason):
        return minimal_block_response(None, reason)  # no tx id: the bytes of both runs can be compared


def _tx_view(tx) -> tuple:
    return (tx.service, tx.icap_method, tx.request, tx.response, tx.has_body, tx.allow_204, tx.allow_206,
            tx.preview_size)


def _record_view(record) -> tuple:
    tx = None if record.tx is None else _tx_view(record.tx)
    return (record.icap_method, record.icap_status, record.outcome, record.bytes_in, record.bytes_out,
            record.reason, record.report, tx)


async def _settle() -> None:
    for _ in range(12):
        await asyncio.sleep(0)


async def _serve(stream: list[bytes], script, fast: bool, limits: dict) -> tuple:
    settings_ = make_settings(limits=limits)
    replies = Replies(ISTAG, SERVICES, preview_size=4096, options_ttl=60, max_connections=10)
    adapter = ScriptAdapter(script)
    observer = ListObserver()
    server = IcapServer(settings_, Runtime(adapter, replies), observer)
    server.fast_lane = fast
    conn = IcapConnection(server)
    transport = FakeTransport()
    conn.connection_made(transport)
    for segment in stream:
        if transport.closed_at is not None:
            break  # a closed transport delivers nothing more
        conn.data_received(segment)
        await _settle()
    if transport.closed_at is None:
        conn.eof_received()
        await _settle()
    conn.connection_lost(None)
    await asyncio.wait_for(conn._task, 5)
    out = re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", bytes(transport.out))
    return out, transport.closed_at, [_record_view(r) for r in observer.records], observer.started, adapter.calls


def _both(stream: list[bytes], script, limits: dict | None = None) -> tuple:
    limits = LIMITS if limits is None else limits
    general = asyncio.run(_serve(stream, script, False, limits))
    fast = asyncio.run(_serve(stream, script, True, limits))
    return general, fast


# -- generated requests ---------------------------------------------------------------

HTTP_POST = b"POST /f HTTP/1.1\r\nHost: example.org\r\nContent-Type: text/plain\r\n\r\n"


@st.composite
def requests(draw) -> bytes:
    method = draw(st.sampled_from([b"REQMOD"] * 6 + [b"RESPMOD"] * 4 + [b"OPTIONS", b"GET"]))
    matching = b"deid-resp" if method == b"RESPMOD" else b"deid-req"
    service = draw(st.sampled_from([matching] * 8 + [b"deid-req", b"deid-resp", b"nope"]))
    headers = []
    allow = draw(st.sampled_from([None, b"204", b"204", b"204, 206", b"trailers", b"206"]))
    if allow is not None:
        headers.append(b"Allow: " + allow)
    if draw(st.integers(0, 5)) == 0:
        headers.append(b"Connection: close")
    shape = draw(st.sampled_from(["null-body", "null-body", "preview", "preview", "preview", "no-preview"]))
    if draw(st.integers(0, 7)) == 0:  # over limits.body_bytes once the rest follows a 100 Continue
        body = bytes([draw(st.integers(0, 255))]) * draw(st.integers(1900, 2200))
    else:
        body = draw(st.binary(max_size=300))
    preview = draw(st.integers(0, min(len(body), 320) + 20))
    if shape == "preview":
        # now and then a preview longer than announced: the parser must refuse it on both paths
        announced = max(0, preview - draw(st.sampled_from([0] * 6 + [1, 7])))
        headers.append(b"Preview: %d" % announced)
    elif shape == "null-body" and draw(st.booleans()):
        headers.append(b"Preview: %d" % draw(st.sampled_from([0, 0, 5])))
    if method == b"RESPMOD":
        http = m.HTTP_GET + m.HTTP_RESPONSE
        enc = b"req-hdr=0, res-hdr=%d, " % len(m.HTTP_GET) + b"%s=" + b"%d" % len(http)
    else:
        http, enc = HTTP_POST, b"req-hdr=0, %s=" + b"%d" % len(HTTP_POST)
    body_name = b"null-body" if shape == "null-body" else (b"res-body" if method == b"RESPMOD" else b"req-body")
    data = m.icap_head(method, service, enc.replace(b"%s", body_name), *headers) + http
    if shape == "null-body":
        return data
    size = draw(st.integers(1, 400))
    if shape == "preview":
        first, rest = body[:preview], body[preview:]
        ieof = not rest and draw(st.integers(0, 3)) > 0
        preview_chunks = m.chunked(first, size, b"0; ieof\r\n\r\n" if ieof else b"0\r\n\r\n")
        if first and draw(st.integers(0, 7)) == 0:  # a chunk whose data runs past its size line
            piece = first[:size]
            preview_chunks = preview_chunks.replace(b"%x\r\n" % len(piece), b"%x\r\n" % (len(piece) - 1), 1)
        data += preview_chunks
        if draw(st.integers(0, 5)) == 0:
            data = data[:-2] + b"X-Trailer: 1\r\n\r\n"
        if not ieof and draw(st.booleans()):
            data += m.chunked(rest, size)  # the rest, sent whatever the answer (a client error if 204)
        return data
    return data + m.chunked(body, size)


@st.composite
def streams(draw) -> list[bytes]:
    data = b"".join(draw(st.lists(requests(), min_size=1, max_size=4)))
    mutation = draw(st.sampled_from(["none"] * 8 + ["flip", "truncate", "insert", "crlf"]))
    if mutation != "none" and data:
        at = draw(st.integers(0, len(data) - 1))
        if mutation == "flip":
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
        elif mutation == "truncate":
            data = data[:at]
        elif mutation == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        else:
            data = b"\r\n" + data
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    return [p for p in pieces if p]


scripts = st.lists(st.tuples(st.sampled_from(DECISIONS), st.booleans()), max_size=8)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), script=scripts)
def test_the_fast_lane_is_indistinguishable_from_the_general_path(stream, script):
    general, fast = _both(stream, script)
    assert fast[0] == general[0]  # bytes on the wire
    assert fast[1] == general[1]  # closed, and after the same bytes
    assert fast[2] == general[2]  # what the observer recorded
    assert fast[3] == general[3]  # request_started calls
    assert fast[4] == general[4]  # adapter calls


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), script=scripts)
def test_with_default_limits_too(stream, script):
    general, fast = _both(stream, script, {})
    assert fast == general


# -- the fast lane is really taken ----------------------------------------------------------


def _count_fast_answers(monkeypatch) -> list:
    taken = []
    original = fastlane.new_transaction

    def spy(request):
        taken.append(request.method)
        return original(request)

    monkeypatch.setattr(fastlane, "new_transaction", spy)
    return taken


def test_a_get_preview0_and_a_1k_ieof_preview_are_answered_by_the_fast_lane(monkeypatch):
    taken = _count_fast_answers(monkeypatch)
    post, _ = m.reqmod_post(b"q" * 1024, preview=4096)
    resp, _ = m.respmod(b"r" * 100, preview=4096)
    general, fast = _both([m.reqmod_get_preview0() + post + resp], [], {})
    assert fast == general
    assert taken == ["REQMOD", "REQMOD", "RESPMOD"]
    assert [r[1] for r in fast[2]] == [204, 204, 204]
    assert [r[3] for r in fast[2]] == [0, 1024, 100]


def test_a_preview_without_ieof_answered_204_leaves_the_parser_ready_for_the_next_request(monkeypatch):
    taken = _count_fast_answers(monkeypatch)
    first, rest = m.reqmod_post(b"p" * 5000, preview=4096)
    assert rest  # the client would send this only after a 100 Continue
    general, fast = _both([first + m.reqmod_get_preview0()], [], {})
    assert fast == general
    assert [r[1] for r in fast[2]] == [204, 204]
    assert taken == ["REQMOD", "REQMOD"]


def test_a_preview_still_arriving_goes_the_general_way_and_is_answered_the_same(monkeypatch):
    taken = _count_fast_answers(monkeypatch)
    post, _ = m.reqmod_post(b"s" * 1000, preview=4096)
    cut = len(post) - 3  # the head is here, the last chunk is not
    general, fast = _both([post[:cut], post[cut:]], [], {})
    assert fast == general
    assert taken == [] and [r[1] for r in fast[2]] == [204]


def test_decisions_other_than_no_change_continue_in_the_general_path_with_one_adapter_call(monkeypatch):
    taken = _count_fast_answers(monkeypatch)
    post, _ = m.reqmod_post(b"t" * 100, preview=4096)
    script = [("block", False), ("raise", False), ("needbody", False), ("nochange", False), ("nochange", True)]
    general, fast = _both([post * 4], script, {})
    assert fast == general
    assert len(taken) == 4
    assert [c[0] for c in fast[4]] == ["preview", "preview", "preview", "body", "preview"]
    assert [(r[1], r[2]) for r in fast[2]] == [
        (200, "blocked"), (200, "blocked"), (204, "no-change"), (204, "no-change")]


def test_bodiless_without_preview_or_allow_204_is_echoed_as_before():
    head = m.icap_head(b"REQMOD", b"deid-req", b"req-hdr=0, null-body=%d" % len(m.HTTP_GET)) + m.HTTP_GET
    general, fast = _both([head], [], {})
    assert fast == general
    assert fast[2][0][1:3] == (200, "no-change")
    assert fast[0].startswith(b"ICAP/1.0 200 OK\r\n")
