"""The sans-IO exchange: which answers are legal when, and the bytes each one produces.

No sockets and no adapter: a test plays both the client (bytes in, sending
the rest of a body only after ``100 Continue``) and the driver (answering
``Adapt`` with a decision method). The last test checks the state table's
rules for every combination of request shape, Allow values and decisions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from icapdlp.http import HttpHeaders, HttpResponseHead
from icapdlp.icap import CONNECTION_CLOSED, NEED_DATA, CodecLimits
from icapdlp.icap.exchange import (
    Adapt, Finished, IllegalDecision, KeepBody, LimitHit, Outcome, SendBody, ServerExchange, Stage,
)
from icapdlp.icap.replies import Replies
from tests.icap import messages as m

SERVICES = {"deid-req": "REQMOD", "deid-resp": "RESPMOD"}
PAGE_HEAD = HttpResponseHead("HTTP/1.1", 403, "Forbidden", HttpHeaders([("Content-Type", "text/plain")]))


@dataclass
class Context:
    replies: Replies


def new_exchange(**limits) -> ServerExchange:
    context = Context(Replies('"t"', SERVICES, preview_size=4096, options_ttl=60, max_connections=10))
    return ServerExchange(CodecLimits(**limits), lambda: context)


def events_until_wait(exchange: ServerExchange) -> list:
    """Events up to NEED_DATA or the first one the driver must answer."""
    out = []
    while True:
        event = exchange.next_event()
        out.append(event)
        if event is NEED_DATA or isinstance(event, (Adapt, SendBody, LimitHit, Finished)):
            return out


def statuses(data: bytes) -> list[int]:
    return [int(line.split(b" ")[1]) for line in data.split(b"\r\n") if line.startswith(b"ICAP/1.0 ")]


def test_a_bodiless_get_is_asked_once_and_answered_204():
    exchange = new_exchange()
    exchange.receive_data(m.reqmod_get_preview0())
    adapt = exchange.next_event()
    assert isinstance(adapt, Adapt) and adapt.stage is Stage.PREVIEW and adapt.complete and adapt.preview == b""
    exchange.no_change()
    finished = exchange.next_event()
    assert isinstance(finished, Finished) and finished.keep_alive and finished.status == 204
    assert statuses(exchange.data_to_send()) == [204]
    assert exchange.next_event() is NEED_DATA and exchange.idle


def test_an_answer_from_a_short_preview_finishes_it_early_and_the_next_request_parses():
    first, rest = m.reqmod_post(b"a" * 100, preview=10)
    exchange = new_exchange()
    exchange.receive_data(first + m.reqmod_get_preview0())  # the client sends nothing more of the body
    adapt = exchange.next_event()
    assert adapt.preview == b"a" * 10 and not adapt.complete
    exchange.no_change()
    assert exchange.next_event().status == 204
    assert isinstance(exchange.next_event(), Adapt)  # the pipelined GET, read from where the preview ended
    exchange.no_change()
    assert exchange.next_event().keep_alive
    assert statuses(exchange.data_to_send()) == [204, 204]


def test_need_body_after_a_short_preview_sends_100_and_keeps_preview_then_rest():
    body = bytes(range(256)) * 40
    first, rest = m.reqmod_post(body, preview=100, allow_204=False)
    exchange = new_exchange()
    exchange.receive_data(first)
    exchange.next_event()
    exchange.need_body()
    kept = events_until_wait(exchange)
    assert kept[0] == KeepBody(body[:100]) and kept[-1] is NEED_DATA
    assert exchange.data_to_send() == b"ICAP/1.0 100 Continue\r\n\r\n"
    exchange.receive_data(rest)
    events = events_until_wait(exchange)
    assert b"".join(e.data for e in events if isinstance(e, KeepBody)) == body[100:]
    assert isinstance(events[-1], Adapt) and events[-1].stage is Stage.BODY
    exchange.no_change(body)  # no Allow: 204 and past the preview: the kept body is echoed
    finished = exchange.next_event()
    out = exchange.data_to_send()
    assert statuses(out) == [200] and finished.bytes_out == len(body) and finished.bytes_in == len(body)
    assert out.endswith(b"0\r\n\r\n")


def test_need_body_on_a_whole_preview_asks_about_the_body_without_100():
    first, _ = m.reqmod_post(b"abc", preview=4096)
    exchange = new_exchange()
    exchange.receive_data(first)
    assert exchange.next_event().complete
    exchange.need_body()
    assert exchange.next_event() == KeepBody(b"abc")
    assert exchange.next_event() == Adapt(exchange.request, Stage.BODY)
    assert exchange.data_to_send() == b""  # no 100 Continue: nothing more is coming
    exchange.no_change(b"abc")
    assert exchange.next_event().status == 204  # still inside the preview (ieof): 204 is allowed


def test_no_change_without_preview_and_without_204_is_echoed_as_it_arrives():
    whole, _ = m.reqmod_post(b"z" * 9000, allow_204=False)
    head_end = whole.index(b"\r\n\r\n", whole.index(b"POST")) + 4
    exchange = new_exchange()
    exchange.receive_data(whole[:head_end + 10])
    assert isinstance(exchange.next_event(), Adapt)
    exchange.no_change()
    assert exchange.next_event() is NEED_DATA
    early = exchange.data_to_send()
    assert statuses(early) == [200] and b"z" in early  # the echo began before the body ended
    exchange.receive_data(whole[head_end + 10:])
    finished = exchange.next_event()
    assert finished.bytes_out == 9000 and exchange.data_to_send().endswith(b"0\r\n\r\n")


def test_an_answer_without_preview_waits_until_the_body_is_read():
    whole, _ = m.reqmod_post(b"q" * 5000)
    exchange = new_exchange()
    exchange.receive_data(whole[:300])
    exchange.next_event()
    exchange.respond(http_response=PAGE_HEAD, body=b"blocked", outcome=Outcome.BLOCKED)
    assert exchange.next_event() is NEED_DATA and exchange.data_to_send() == b""
    exchange.receive_data(whole[300:])
    finished = exchange.next_event()
    assert finished.outcome is Outcome.BLOCKED and finished.keep_alive and finished.bytes_in == 5000
    assert statuses(exchange.data_to_send()) == [200]


def test_206_is_only_legal_from_a_preview_with_allow_206():
    first, _ = m.reqmod_post(b"x" * 100, preview=10)
    exchange = new_exchange()
    exchange.receive_data(first)
    exchange.next_event()
    assert not exchange.may_partial
    with pytest.raises(IllegalDecision):
        exchange.partial(b"new", 10, http_response=PAGE_HEAD)
    first, _ = m.reqmod_post(b"x" * 100, preview=10, extra=(b"Allow: 206",))
    exchange = new_exchange()
    exchange.receive_data(first)
    exchange.next_event()
    assert exchange.may_partial
    exchange.partial(b"new", 10, http_response=PAGE_HEAD)
    assert exchange.next_event().status == 206
    assert exchange.data_to_send().endswith(b"0; use-original-body=10\r\n\r\n")


@pytest.mark.parametrize("call", ["need_body", "partial", "next_event"])
def test_illegal_calls_at_the_body_stage_are_refused(call):
    first, _ = m.reqmod_post(b"abc", preview=4096)
    exchange = new_exchange()
    exchange.receive_data(first)
    exchange.next_event()
    exchange.need_body()
    exchange.next_event()
    assert exchange.next_event().stage is Stage.BODY
    with pytest.raises(IllegalDecision):
        if call == "partial":
            exchange.partial(b"", 0, http_response=PAGE_HEAD)
        else:
            getattr(exchange, call)()


@pytest.mark.parametrize(("request_bytes", "status", "keep_alive"), [
    (m.reqmod_get_preview0(b"nowhere"), 404, False),
    (m.reqmod_get_preview0(b"deid-resp"), 405, False),
    (m.icap_head(b"REQMOD", b"deid-req", b"req-body=0") + m.chunked(b"secret"), 400, False),
    (m.SQUID_OPTIONS, 200, True),
    (m.SQUID_OPTIONS.replace(b"deid-req", b"nowhere"), 404, True),
])
def test_routing_is_decided_by_the_exchange_without_asking(request_bytes, status, keep_alive):
    exchange = new_exchange()
    exchange.receive_data(request_bytes)
    finished = exchange.next_event()
    assert isinstance(finished, Finished) and (finished.status, finished.keep_alive) == (status, keep_alive)
    assert b"secret" not in exchange.data_to_send()


def test_a_body_over_the_limit_is_handed_to_the_driver_then_the_connection_closes():
    whole, _ = m.reqmod_post(b"b" * 5000)
    exchange = new_exchange(body_bytes=4096)
    exchange.receive_data(whole)
    exchange.next_event()
    exchange.need_body()
    events = events_until_wait(exchange)
    assert isinstance(events[-1], LimitHit)
    exchange.respond(http_response=PAGE_HEAD, body=b"too big", outcome=Outcome.BLOCKED)
    finished = exchange.next_event()
    assert finished.outcome is Outcome.BLOCKED and not finished.keep_alive
    assert b"Connection: close" in exchange.data_to_send()


def test_a_malformed_head_is_answered_400_and_closes():
    exchange = new_exchange()
    exchange.receive_data(b"REQMOD icap://h/deid-req ICAP/1.0\r\nBad Header\r\n\r\n")
    finished = exchange.next_event()
    assert (finished.icap_method, finished.status, finished.keep_alive) == ("OTHER", 400, False)
    assert statuses(exchange.data_to_send()) == [400]


def test_a_file_body_is_streamed_by_the_driver_between_send_body_and_end_body():
    first, _ = m.reqmod_post(b"abc", preview=4096)
    exchange = new_exchange()
    exchange.receive_data(first)
    exchange.next_event()
    handle = object()
    exchange.respond(http_response=PAGE_HEAD, body=handle)
    assert exchange.next_event() == SendBody(handle)
    exchange.send_body_piece(b"12345")
    exchange.end_body()
    finished = exchange.next_event()
    assert finished.bytes_out == 5 and exchange.data_to_send().endswith(b"5\r\n12345\r\n0\r\n\r\n")


# -- the state table, for every request shape and decision ---------------------------------

SHAPES = ["bodiless", "bodiless-preview", "whole-preview", "short-preview", "no-preview"]
PREVIEW_ANSWERS = ["no_change", "need_body", "respond", "partial"]
BODY_ANSWERS = ["no_change", "respond"]


def build(shape: str, allow_204: bool, allow_206: bool) -> tuple[bytes, bytes, bytes]:
    extra = (b"Allow: 206",) if allow_206 else ()
    allow = (b"Allow: 204",) if allow_204 else ()
    body = b"payload-" * 50
    if shape == "bodiless":
        return m.icap_head(b"REQMOD", b"deid-req", b"req-hdr=0, null-body=%d" % len(m.HTTP_GET),
                           *allow, *extra) + m.HTTP_GET, b"", b""
    if shape == "bodiless-preview":
        return m.icap_head(b"REQMOD", b"deid-req", b"req-hdr=0, null-body=%d" % len(m.HTTP_GET),
                           *allow, *extra, b"Preview: 0") + m.HTTP_GET, b"", b""
    preview = {"whole-preview": 4096, "short-preview": 16, "no-preview": None}[shape]
    first, rest = m.reqmod_post(body, preview=preview, allow_204=allow_204, extra=extra)
    return first, rest, body


@pytest.mark.parametrize(("shape", "allow_204", "allow_206", "first_answer", "body_answer"), list(
    itertools.product(SHAPES, (False, True), (False, True), PREVIEW_ANSWERS, BODY_ANSWERS)))
def test_every_request_shape_and_answer_gives_one_legal_final_response(shape, allow_204, allow_206, first_answer,
                                                                       body_answer):
    first, rest, body = build(shape, allow_204, allow_206)
    exchange = new_exchange()
    exchange.receive_data(first + (rest if shape == "no-preview" else b""))
    client_sent_rest = shape == "no-preview"
    kept = bytearray()
    asked = []
    out = bytearray()
    while True:
        event = exchange.next_event()
        out += exchange.data_to_send()
        if event is NEED_DATA:
            assert b"100 Continue" in out and not client_sent_rest, "the exchange waits for bytes it never asked for"
            exchange.receive_data(rest)
            client_sent_rest = True
            continue
        if isinstance(event, KeepBody):
            kept += event.data
            continue
        if isinstance(event, Finished):
            break
        assert isinstance(event, Adapt)
        asked.append(event.stage)
        if event.stage is Stage.PREVIEW:
            answer = first_answer
            if answer == "partial" and not exchange.may_partial:
                answer = "need_body"  # what the server does with a 206 it may not send
        else:
            answer = body_answer
            assert bytes(kept) == body
        if answer == "no_change":
            exchange.no_change(bytes(kept) if event.stage is Stage.BODY else None)
        elif answer == "need_body":
            exchange.need_body()
        elif answer == "respond":
            exchange.respond(http_response=PAGE_HEAD, body=b"page", outcome=Outcome.BLOCKED)
        else:
            exchange.partial(b"new-prefix", 16, http_response=PAGE_HEAD)
    out += exchange.data_to_send()
    finals = [s for s in statuses(bytes(out)) if s != 100]
    assert len(finals) == 1 and event.keep_alive
    final = finals[0]
    in_preview = shape in ("bodiless-preview", "whole-preview", "short-preview")
    if final == 204:
        assert allow_204 or (in_preview and (asked == [Stage.PREVIEW] or shape != "short-preview"))
    if b"100 Continue" in out:
        assert shape == "short-preview" and Stage.BODY in asked
    if final == 206:
        assert allow_206 and in_preview and shape != "bodiless-preview" and asked == [Stage.PREVIEW]
    # the connection carries on: a second request is read from exactly where the first ended
    exchange.receive_data(m.reqmod_get_preview0())
    assert isinstance(exchange.next_event(), Adapt)


def test_a_refused_request_whose_body_outgrows_the_limit_is_an_icap_error_not_a_limit_hit():
    """A request refused by routing (unknown service) is never adapted: no LimitHit (block page) for it.

    The driver has no transaction for it; the old exchange answered an ICAP
    error (413) and recorded an error, not a blocked transaction.
    """
    data, _ = m.reqmod_post(b"b" * 5000, service=b"no-such-service")
    exchange = new_exchange(body_bytes=1024)
    exchange.receive_data(data)
    event = exchange.next_event()
    assert isinstance(event, Finished) and event.outcome is Outcome.ERROR and not event.keep_alive
    assert statuses(exchange.data_to_send()) == [event.status] and event.status in (404, 413)


# -- release(): echoing checked bytes of a body still being read -------------------------


def _keeping_respmod(body: bytes, preview: int = 100):
    """An exchange keeping a RESPMOD body after its preview (100 Continue sent), and the rest to send."""
    first, rest = m.respmod(body, preview=preview)
    exchange = new_exchange()
    exchange.receive_data(first)
    assert isinstance(exchange.next_event(), Adapt)
    exchange.need_body()
    assert exchange.next_event() == KeepBody(body[:preview])
    assert exchange.next_event() is NEED_DATA
    assert exchange.data_to_send() == b"ICAP/1.0 100 Continue\r\n\r\n"
    return exchange, rest


def test_released_bytes_start_the_echo_and_no_change_completes_it_with_the_rest():
    body = bytes(range(256)) * 40
    exchange, rest = _keeping_respmod(body)
    exchange.release(body[:60])
    early = exchange.data_to_send()
    assert statuses(early) == [200] and early.endswith(b"3c\r\n" + body[:60] + b"\r\n")
    exchange.receive_data(rest)
    events = events_until_wait(exchange)
    assert isinstance(events[-1], Adapt) and events[-1].stage is Stage.BODY
    exchange.no_change(body[60:])  # the driver gives what was not released yet
    finished = exchange.next_event()
    assert finished.status == 200 and finished.outcome is Outcome.NO_CHANGE and finished.keep_alive
    late = exchange.data_to_send()
    assert statuses(late) == []  # one head only, though the client allowed 204
    assert finished.bytes_out == len(body) and late.endswith(b"\r\n0\r\n\r\n")
    assert exchange.next_event() is NEED_DATA and exchange.idle


def test_a_block_after_release_cuts_the_answer_off_instead_of_completing_it():
    body = b"x" * 5000
    exchange, rest = _keeping_respmod(body)
    exchange.release(body[:1000])
    sent = exchange.data_to_send()
    exchange.receive_data(rest)
    events_until_wait(exchange)
    exchange.respond(200, http_response=PAGE_HEAD, body=b"blocked", outcome=Outcome.BLOCKED)
    finished = exchange.next_event()
    assert finished.outcome is Outcome.BLOCKED and not finished.keep_alive
    assert exchange.data_to_send() == b""  # no block page, no last chunk: the client sees a failure
    assert not sent.endswith(b"0\r\n\r\n") and b"blocked" not in sent
    assert exchange.next_event() is CONNECTION_CLOSED


def test_a_spool_failure_while_releasing_cuts_the_answer_off():
    body = b"y" * 5000
    exchange, _rest = _keeping_respmod(body)
    exchange.release(body[:500])
    exchange.data_to_send()
    exchange.respond(200, http_response=PAGE_HEAD, body=b"page", outcome=Outcome.BLOCKED, close=True)
    finished = exchange.next_event()
    assert finished.outcome is Outcome.BLOCKED and not finished.keep_alive and exchange.data_to_send() == b""


def test_a_body_limit_after_release_ends_without_completing_the_answer():
    body = b"z" * 5000
    first, rest = m.respmod(body, preview=100)
    exchange = new_exchange(body_bytes=2000)
    exchange.receive_data(first)
    exchange.next_event()
    exchange.need_body()
    events_until_wait(exchange)
    exchange.release(body[:100])
    exchange.data_to_send()
    exchange.receive_data(rest)
    finished = events_until_wait(exchange)[-1]
    assert isinstance(finished, Finished) and finished.outcome is Outcome.ERROR and not finished.keep_alive
    assert not exchange.data_to_send().endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("state", ["asking about the preview", "asked about the body", "idle"])
def test_release_is_only_legal_while_a_body_is_kept(state):
    body = b"q" * 3000
    first, rest = m.respmod(body, preview=100)
    exchange = new_exchange()
    if state != "idle":
        exchange.receive_data(first)
        exchange.next_event()
    if state == "asked about the body":
        exchange.need_body()
        exchange.receive_data(rest)
        events_until_wait(exchange)
    with pytest.raises(IllegalDecision):
        exchange.release(b"q")


# -- begin() and continue_with(): a response held open until its verdict ----------------------------


def test_a_held_open_answer_begins_with_the_given_head_then_filler_then_the_new_body():
    body = b"--b\r\n" + b"x" * 5000 + b"\r\n--b--\r\n"
    exchange, rest = _keeping_respmod(body)
    open_head = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders([("Content-Type", "multipart/related")]))
    exchange.begin(open_head)
    exchange.release(b"\r\n")
    early = exchange.data_to_send()
    assert statuses(early) == [200] and b"Content-Type: multipart/related" in early
    assert b"Content-Length" not in early and early.endswith(b"2\r\n\r\n\r\n")
    exchange.receive_data(rest)
    events_until_wait(exchange)
    exchange.continue_with(b"NEW BODY")
    finished = exchange.next_event()
    assert finished.outcome is Outcome.REWRITTEN and finished.keep_alive
    assert exchange.data_to_send() == b"8\r\nNEW BODY\r\n0\r\n\r\n"


def test_begin_is_only_for_a_response_being_kept_and_only_once():
    first, _rest = m.reqmod_post(b"r" * 3000, preview=100)
    exchange = new_exchange()
    exchange.receive_data(first)
    exchange.next_event()
    exchange.need_body()
    events_until_wait(exchange)
    with pytest.raises(IllegalDecision):
        exchange.begin(PAGE_HEAD)  # a request is not held open
    exchange, _ = _keeping_respmod(b"s" * 3000)
    exchange.begin(PAGE_HEAD)
    with pytest.raises(IllegalDecision):
        exchange.begin(PAGE_HEAD)


def test_continue_with_needs_a_begun_answer_at_the_body_stage():
    exchange, rest = _keeping_respmod(b"t" * 3000)
    exchange.receive_data(rest)
    events_until_wait(exchange)
    with pytest.raises(IllegalDecision):
        exchange.continue_with(b"x")
