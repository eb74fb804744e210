"""``RequestParser.take_buffered_preview``: the whole preview at once, or nothing consumed.

The fast lane relies on two promises: after a take the parser is exactly
where the events would have left it, and a ``None`` leaves every byte for
``next_event`` to parse (and refuse) as it always does.
"""

from __future__ import annotations

import pytest

from icapdlp.icap import (
    NEED_DATA, PAUSED, BodyData, CodecLimits, EndOfMessage, LimitExceeded, ProtocolError, Request, RequestParser,
)
from tests.icap import messages as m


def _at_preview(data: bytes, limits: CodecLimits | None = None) -> RequestParser:
    parser = RequestParser(limits)
    parser.receive_data(data)
    assert isinstance(parser.next_event(), Request)
    return parser


def _events(parser: RequestParser) -> list:
    events = []
    while (event := parser.next_event()) not in (NEED_DATA, PAUSED):
        events.append(event)
    return events


def test_a_whole_ieof_preview_is_taken_and_the_next_request_follows():
    first, _ = m.reqmod_post(b"a" * 3000, preview=4096)
    parser = _at_preview(first + m.reqmod_get_preview0())
    data, ieof = parser.take_buffered_preview()
    assert (data, ieof) == (b"a" * 3000, True)
    events = _events(parser)
    assert isinstance(events[0], Request) and events[0].method == "REQMOD" and not events[0].has_body
    assert isinstance(events[1], EndOfMessage)


def test_a_preview_without_ieof_leaves_the_parser_paused_for_continue_or_finish():
    first, rest = m.reqmod_post(b"b" * 5000, preview=1000)
    parser = _at_preview(first)
    assert parser.take_buffered_preview() == (b"b" * 1000, False)
    assert parser.next_event() is PAUSED
    parser.continue_body()
    parser.receive_data(rest)
    events = _events(parser)
    assert b"".join(e.data for e in events if isinstance(e, BodyData)) == b"b" * 4000
    assert isinstance(events[-1], EndOfMessage)


def test_after_continue_the_body_limit_counts_the_preview_bytes_too():
    limits = CodecLimits(body_bytes=1500)
    first, rest = m.reqmod_post(b"c" * 1600, preview=1000)
    parser = _at_preview(first, limits)
    assert parser.take_buffered_preview() == (b"c" * 1000, False)
    parser.next_event()
    parser.continue_body()
    parser.receive_data(rest)  # 600 more: 1600 in all
    with pytest.raises(LimitExceeded) as caught:
        _events(parser)
    assert caught.value.limit == "body_bytes"


@pytest.mark.parametrize("case", ["short", "trailers", "data-past-size", "longer-than-announced",
                                  "over-chunk-limit", "bad-size"])
def test_anything_unusual_consumes_nothing_and_next_event_decides(case):
    limits = CodecLimits(chunk_bytes=1024)
    first, _ = m.reqmod_post(b"d" * 10, preview=100)
    head_end = first.index(b"\r\n\r\n", first.index(b"POST")) + 4
    head, chunks = first[:head_end], first[head_end:]
    expected: type[Exception] | None = ProtocolError
    if case == "short":
        chunks, expected = chunks[:-1], None
    elif case == "trailers":
        chunks, expected = chunks[:-2] + b"X-T: 1\r\n\r\n", None
    elif case == "data-past-size":
        # declared 1 byte, then two bytes and a well-formed last chunk where the CRLF should be
        chunks = b"1\r\naXY0; ieof\r\n\r\n"
    elif case == "longer-than-announced":
        head = head.replace(b"Preview: 100", b"Preview: 9")
    elif case == "over-chunk-limit":
        chunks = m.chunked(b"e" * 1100, 2048, b"0; ieof\r\n\r\n")
    else:
        chunks = b"zz\r\n" + chunks
    parser = _at_preview(head + chunks, limits)
    before = parser.buffered
    assert parser.take_buffered_preview() is None
    assert parser.buffered == before
    if expected is None:
        events = _events(parser)  # the general events still read what there is
        assert all(isinstance(e, BodyData) for e in events[:-1])
    else:
        with pytest.raises(expected):
            _events(parser)


def test_only_right_after_the_request_head_of_a_preview():
    data, _ = m.reqmod_post(b"f" * 10)  # no preview
    parser = _at_preview(data)
    assert parser.take_buffered_preview() is None
    assert b"".join(e.data for e in _events(parser) if isinstance(e, BodyData)) == b"f" * 10
