"""Request parser: every case fed whole, one byte at a time, and followed by another request."""

from __future__ import annotations

import pytest

from icapdlp.icap import (
    CONNECTION_CLOSED, NEED_DATA, PAUSED, BodyData, CodecLimits, EndOfMessage, LimitExceeded, PreviewEnd,
    ProtocolError, Request, RequestParser,
)
from tests.icap import messages as m

MODES = ("whole", "bytewise", "trailing")


def pieces(data: bytes, mode: str) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))] if mode == "bytewise" else [data]


def drain(parser: RequestParser, data: bytes, mode: str = "whole") -> list:
    """Feed ``data`` as ``mode`` says and return the events, with adjacent BodyData merged."""
    events: list = []
    for piece in pieces(data, mode):
        parser.receive_data(piece)
        while (event := parser.next_event()) not in (NEED_DATA, PAUSED):
            if isinstance(event, BodyData) and events and isinstance(events[-1], BodyData):
                events[-1] = BodyData(events[-1].data + event.data)
            else:
                events.append(event)
    return events


def parse(data: bytes, mode: str, limits: CodecLimits | None = None) -> list:
    """Parse one request; in "trailing" mode a second request follows and must parse too."""
    parser = RequestParser(limits)
    if mode != "trailing":
        return drain(parser, data, mode)
    events = drain(parser, data + m.SQUID_OPTIONS)
    assert isinstance(events[-2], Request) and events[-2].method == "OPTIONS", "the trailing request was lost"
    assert isinstance(events[-1], EndOfMessage)
    return events[:-2]


@pytest.mark.parametrize("mode", MODES)
def test_squid_options_without_encapsulated(mode):
    request, end = parse(m.SQUID_OPTIONS, mode)
    assert (request.method, request.service, request.body_entity) == ("OPTIONS", "deid-req", None)
    assert request.encapsulated == [("null-body", 0)]
    assert request.allow == {"206", "trailers"}
    assert end == EndOfMessage(ieof=False)


@pytest.mark.parametrize("mode", MODES)
def test_cicap_options_with_null_body(mode):
    request, end = parse(m.CICAP_OPTIONS, mode)
    assert request.method == "OPTIONS" and not request.has_body and isinstance(end, EndOfMessage)


@pytest.mark.parametrize("mode", MODES)
def test_get_with_preview_zero_and_null_body_needs_no_chunk_data(mode):
    request, end = parse(m.reqmod_get_preview0(), mode)
    assert request.preview == 0 and not request.has_body and not request.in_preview
    assert request.http_request.method == "GET"
    assert request.http_request.target == "http://example.org/index.html"
    assert list(request.http_request.headers) == [("Host", "example.org"), ("Accept", "*/*")]
    assert end == EndOfMessage()


@pytest.mark.parametrize("mode", MODES)
def test_preview_with_ieof_is_the_whole_message(mode):
    first, rest = m.reqmod_post(b"x" * 100, preview=4096)
    assert rest == b""
    request, body, end = parse(first, mode)
    assert request.in_preview and body.data == b"x" * 100 and end == EndOfMessage(ieof=True)


@pytest.mark.parametrize("mode", ("whole", "bytewise"))
def test_preview_without_ieof_pauses_until_the_server_continues(mode):
    body = bytes(range(256)) * 40
    first, rest = m.reqmod_post(body, preview=1024)
    parser = RequestParser()
    request, preview, pause = drain(parser, first, mode)
    assert preview.data == body[:1024] and isinstance(pause, PreviewEnd)
    assert parser.next_event() is PAUSED
    parser.continue_body()
    remainder, end = drain(parser, rest + m.SQUID_OPTIONS, mode)[:2]
    assert remainder.data == body[1024:] and end == EndOfMessage(ieof=False)


def test_finish_early_makes_the_next_bytes_a_new_request():
    first, _ = m.reqmod_post(b"y" * 5000, preview=10)
    parser = RequestParser()
    assert isinstance(drain(parser, first)[-1], PreviewEnd)
    parser.finish_early()
    request, end = drain(parser, m.SQUID_OPTIONS)
    assert request.method == "OPTIONS" and isinstance(end, EndOfMessage)


def test_continue_and_finish_are_refused_outside_a_paused_preview():
    parser = RequestParser()
    with pytest.raises(RuntimeError):
        parser.continue_body()
    with pytest.raises(RuntimeError):
        parser.finish_early()


@pytest.mark.parametrize("mode", MODES)
def test_no_preview_body_and_duplicate_content_length_kept(mode):
    body = b"\x00\xff" * 5000
    data, _ = m.reqmod_post(body)
    request, got, end = parse(data, mode)
    assert request.preview is None and got.data == body and end == EndOfMessage()
    assert request.http_request.headers.get_all("Content-Length") == ["10000", "10000"]
    assert ("X-Mixed-CASE", "Kept") in list(request.http_request.headers)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_req_hdr", [True, False])
def test_respmod_with_and_without_req_hdr(mode, with_req_hdr):
    data, _ = m.respmod(b"abc" * 10, with_req_hdr=with_req_hdr)
    request, body, end = parse(data, mode)
    assert request.body_entity == "res-body" and body.data == b"abc" * 10
    assert request.http_response.status == 200 and request.http_response.reason == "OK"
    assert (request.http_request is not None) == with_req_hdr


@pytest.mark.parametrize("mode", MODES)
def test_respmod_null_body(mode):
    enc = b"req-hdr=0, res-hdr=%d, null-body=%d" % (len(m.HTTP_GET), len(m.HTTP_GET) + len(m.HTTP_RESPONSE))
    data = m.icap_head(b"RESPMOD", b"deid-resp", enc) + m.HTTP_GET + m.HTTP_RESPONSE
    request, end = parse(data, mode)
    assert not request.has_body and request.http_response.headers.get("content-length") == "10000"


@pytest.mark.parametrize("mode", MODES)
def test_chunk_extensions_spaces_and_trailers_are_tolerated(mode):
    head = m.icap_head(b"REQMOD", b"deid-req", b"req-hdr=0, req-body=%d" % len(m.HTTP_POST),
                       b"Preview: 8", b"Allow: 204, 206, trailers") + m.HTTP_POST
    data = head + b"4 ; name=value\r\nabcd\r\n4;x\r\nefgh\r\n0 ; ieof ; other=1\r\nX-Trailer: 1\r\n\r\n"
    request, body, end = parse(data, mode)
    assert body.data == b"abcdefgh"
    assert end == EndOfMessage(ieof=True, trailers=[("X-Trailer", "1")])
    assert request.allow == {"204", "206", "trailers"}


@pytest.mark.parametrize("mode", MODES)
def test_connection_close_and_icap_header_case_are_kept(mode):
    request, _ = parse(m.reqmod_get_preview0(b"deid-req", b"connection: Close", b"X-Client-IP: 10.0.0.1"), mode)
    assert request.close
    assert ("X-Client-IP", "10.0.0.1") in list(request.headers)


def test_eof_between_requests_and_inside_one():
    parser = RequestParser()
    parser.receive_data(b"")
    assert parser.next_event() is CONNECTION_CLOSED
    parser = RequestParser()
    parser.receive_data(m.reqmod_get_preview0()[:30])
    parser.receive_data(b"")
    with pytest.raises(ProtocolError):
        parser.next_event()


def test_a_failed_parser_stays_failed():
    parser = RequestParser()
    parser.receive_data(b"GARBAGE\r\n\r\n")
    with pytest.raises(ProtocolError):
        parser.next_event()
    parser.receive_data(m.SQUID_OPTIONS)
    with pytest.raises(ProtocolError):
        parser.next_event()


MALFORMED = {
    "no Encapsulated on REQMOD": m.icap_head(b"REQMOD", b"s", b"x").replace(b"Encapsulated: x\r\n", b""),
    "REQMOD with res-body": m.icap_head(b"REQMOD", b"s", b"res-hdr=0, res-body=10"),
    "offsets not increasing": m.icap_head(b"RESPMOD", b"s", b"req-hdr=0, res-hdr=0, null-body=5"),
    "first offset not 0": m.icap_head(b"REQMOD", b"s", b"req-hdr=3, null-body=10"),
    "unknown entity": m.icap_head(b"REQMOD", b"s", b"foo-hdr=0, null-body=10"),
    "Encapsulated twice": m.icap_head(b"REQMOD", b"s", b"null-body=0", b"Encapsulated: null-body=0"),
    "malformed Preview": m.icap_head(b"REQMOD", b"s", b"null-body=0", b"Preview: -1"),
    "header without colon": b"OPTIONS icap://h/s ICAP/1.0\r\nHost\r\n\r\n",
    "obsolete line folding": b"OPTIONS icap://h/s ICAP/1.0\r\nHost: a\r\n b\r\n\r\n",
    "control character": b"OPTIONS icap://h/s ICAP/1.0\r\nHost: a\x01b\r\n\r\n",
    "request line with two fields": b"OPTIONS icap://h/s\r\n\r\n",
    "not ICAP": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "http head without blank line": m.icap_head(b"REQMOD", b"s", b"req-hdr=0, null-body=10") + b"GET / HTTP",
    "bad http request line": m.icap_head(b"REQMOD", b"s", b"req-hdr=0, null-body=4") + b"GE\r\n\r\n",
    "bad status line": (m.icap_head(b"RESPMOD", b"s", b"res-hdr=0, null-body=14") + b"HTTP/1.1 2x\r\n\r\n"),
    "bad chunk size": m.icap_head(b"REQMOD", b"s", b"req-body=0") + b"zz\r\n",
    "chunk longer than its size": m.icap_head(b"REQMOD", b"s", b"req-body=0") + b"2\r\nabc\r\n0\r\n\r\n",
    "preview longer than announced": (m.icap_head(b"REQMOD", b"s", b"req-body=0", b"Preview: 2")
                                      + b"3\r\nabc\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("mode", ("whole", "bytewise"))
def test_malformed_requests_raise_protocol_error_400(name, mode):
    with pytest.raises(ProtocolError) as info:
        drain(RequestParser(), MALFORMED[name], mode)
    assert info.value.status_hint == 400


def test_other_icap_versions_get_505():
    with pytest.raises(ProtocolError) as info:
        drain(RequestParser(), b"OPTIONS icap://h/s ICAP/2.0\r\n\r\n")
    assert info.value.status_hint == 505


def test_unknown_method_is_framed_for_a_405_answer():
    request, end = drain(RequestParser(), b"FOO icap://h/s ICAP/1.0\r\nHost: h\r\n\r\n")
    assert request.method == "FOO" and isinstance(end, EndOfMessage)


# -- limits: exactly at the limit passes, one byte more fails ---------------------------------

def _options_of_size(size: int) -> bytes:
    base = b"OPTIONS icap://h/s ICAP/1.0\r\nX-Pad: \r\n\r\n"
    return base.replace(b"X-Pad: ", b"X-Pad: " + b"a" * (size - len(base)))


@pytest.mark.parametrize("mode", ("whole", "bytewise"))
def test_icap_header_limit(mode):
    limits = CodecLimits(icap_header_bytes=1024)
    request, _ = drain(RequestParser(limits), _options_of_size(1024), mode)
    assert request.method == "OPTIONS"
    with pytest.raises(LimitExceeded) as info:
        drain(RequestParser(limits), _options_of_size(1025), mode)
    assert info.value.status_hint == 431 and info.value.limit == "icap_header_bytes"


def test_http_header_limit():
    http = b"GET / HTTP/1.1\r\nX-Pad: \r\n\r\n"
    http = http.replace(b"X-Pad: ", b"X-Pad: " + b"b" * (1024 - len(http)))
    for size, ok in ((1024, True), (1025, False)):
        block = http if ok else http.replace(b"X-Pad: ", b"X-Pad: b")
        assert len(block) == size
        data = m.icap_head(b"REQMOD", b"s", b"req-hdr=0, null-body=%d" % size) + block
        if ok:
            assert drain(RequestParser(CodecLimits(http_header_bytes=1024)), data)[0].http_request
        else:
            with pytest.raises(LimitExceeded) as info:
                drain(RequestParser(CodecLimits(http_header_bytes=1024)), data)
            assert info.value.status_hint == 431


def test_chunk_limit():
    head = m.icap_head(b"REQMOD", b"s", b"req-body=0")
    ok = head + m.chunked(b"c" * 2048, size=2048)
    assert drain(RequestParser(CodecLimits(chunk_bytes=2048)), ok)[1].data == b"c" * 2048
    with pytest.raises(LimitExceeded) as info:
        drain(RequestParser(CodecLimits(chunk_bytes=2048)), head + b"801\r\n")
    assert info.value.status_hint == 413 and info.value.limit == "chunk_bytes"


def test_body_limit_counts_all_chunks():
    head = m.icap_head(b"REQMOD", b"s", b"req-body=0")
    limits = CodecLimits(body_bytes=3000)
    assert drain(RequestParser(limits), head + m.chunked(b"d" * 3000, size=1000))[1].data == b"d" * 3000
    with pytest.raises(LimitExceeded) as info:
        drain(RequestParser(limits), head + m.chunked(b"d" * 3001, size=1000))
    assert info.value.limit == "body_bytes" and info.value.status_hint == 413


def test_errors_never_quote_header_values():
    secret = b"SMITH^JOHN"
    data = b"OPTIONS icap://h/s ICAP/1.0\r\nX-Patient: " + secret + b"\x01\r\n\r\n"
    with pytest.raises(ProtocolError) as info:
        drain(RequestParser(), data)
    assert "SMITH" not in str(info.value)


def test_memoised_chunk_line_still_obeys_each_parsers_chunk_limit():
    """Chunk-size lines are memoised across parsers; the limit is per parser and checked on every hit."""
    data, _ = m.reqmod_post(b"a" * 600, preview=None)
    assert parse(data, "whole", CodecLimits(chunk_bytes=600))[1] == BodyData(b"a" * 600)
    parser = RequestParser(CodecLimits(chunk_bytes=599))
    parser.receive_data(data)
    parser.next_event()
    with pytest.raises(LimitExceeded) as raised:
        parser.next_event()
    assert raised.value.limit == "chunk_bytes" and raised.value.status_hint == 413
    assert parse(data, "whole", CodecLimits(chunk_bytes=600))[1] == BodyData(b"a" * 600)  # and back


def test_memoised_request_line_does_not_memoise_a_refusal():
    bad = b"REQMOD icap://127.0.0.1:1344/deid-req ICAP/1.1\r\nEncapsulated: null-body=0\r\n\r\n"
    for _ in range(2):
        parser = RequestParser()
        parser.receive_data(bad)
        with pytest.raises(ProtocolError) as raised:
            parser.next_event()
        assert raised.value.status_hint == 505
    request = parse(m.reqmod_get_preview0(), "whole")[0]
    again = parse(m.reqmod_get_preview0(), "whole")[0]
    assert (request.method, request.uri, request.service) == (again.method, again.uri, again.service) == (
        "REQMOD", "icap://127.0.0.1:1344/deid-req", "deid-req")


def test_memos_stay_bounded_under_ever_new_lines():
    from icapdlp.icap import parser as parser_module

    for i in range(3 * parser_module._LINE_CACHE_LIMIT):
        parse(m.reqmod_get_preview0(b"svc-%d" % i), "whole")
        data, _ = m.reqmod_post(b"b" * (1 + i % 700))
        parse(data, "whole")
    assert len(parser_module._line_cache) <= parser_module._LINE_CACHE_LIMIT
    assert len(parser_module._chunk_cache) <= parser_module._LINE_CACHE_LIMIT
