"""Property tests: arbitrary input only ever raises ProtocolError; requests survive a round trip."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead
from icapdlp.icap import (
    CONNECTION_CLOSED, NEED_DATA, PAUSED, BodyData, CodecLimits, EndOfMessage, PreviewEnd, ProtocolError,
    Request, RequestParser,
)
from icapdlp.icap.chunked import encode_chunk, last_chunk, parse_chunk_line
from icapdlp.icap.writer import encode_request
from tests.icap import messages as m

SMALL = CodecLimits(icap_header_bytes=2048, http_header_bytes=2048, chunk_bytes=4096, body_bytes=65536)
SEEDS = [m.SQUID_OPTIONS, m.CICAP_OPTIONS, m.reqmod_get_preview0(), b"".join(m.reqmod_post(b"z" * 300, preview=100)),
         m.reqmod_post(b"q" * 50)[0], m.respmod(b"r" * 40, preview=10)[0]]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def _run(data: bytes, cuts: list[int], continue_preview: bool) -> list:
    """Feed everything then EOF; return events. Any exception but ProtocolError fails the test."""
    parser = RequestParser(SMALL)
    events = []
    try:
        for piece in [*_split(data, cuts), b""]:
            parser.receive_data(piece)
            while True:
                event = parser.next_event()
                if event is NEED_DATA or event is CONNECTION_CLOSED:
                    break
                if event is PAUSED:
                    parser.continue_body() if continue_preview else parser.finish_early()
                    continue
                events.append(event)
    except ProtocolError:
        pass
    return events


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8), st.booleans())
def test_arbitrary_bytes_only_raise_protocol_error(data, cuts, cont):
    _run(data, cuts, cont)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 2000), st.binary(max_size=3)), min_size=1,
                                          max_size=4), st.lists(st.integers(0, 2000), max_size=6), st.booleans())
def test_mutated_requests_only_raise_protocol_error(seed, edits, cuts, cont):
    data = bytearray(seed)
    for position, replacement in edits:
        position %= len(data) + 1
        data[position:position + len(replacement)] = replacement
    _run(bytes(data), cuts, cont)


TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xff, blacklist_characters="\x7f"),
                max_size=30).map(lambda v: v.strip(" \t"))
FIELDS = st.lists(st.tuples(TOKEN, VALUE), max_size=6)


@st.composite
def requests(draw):
    method = draw(st.sampled_from(["REQMOD", "RESPMOD"]))
    http_req = None
    if method == "REQMOD" or draw(st.booleans()):
        http_req = HttpRequestHead(draw(st.sampled_from(["GET", "POST", "PUT"])), "/" + draw(TOKEN), "HTTP/1.1",
                                   HttpHeaders(draw(FIELDS)))
    http_res = None
    if method == "RESPMOD":
        http_res = HttpResponseHead("HTTP/1.1", draw(st.integers(100, 599)), draw(VALUE), HttpHeaders(draw(FIELDS)))
    body = draw(st.none() | st.binary(max_size=3000))
    preview = draw(st.none() | st.integers(0, 4096))
    sizes = draw(st.lists(st.integers(1, 700), min_size=1, max_size=5))
    return method, http_req, http_res, body, preview, sizes


def _encode(method, http_req, http_res, body, preview, sizes) -> bytes:
    fields = [("Host", "127.0.0.1"), ("Allow", "204")]
    if preview is not None:
        fields.append(("Preview", str(preview)))
    entity = None if body is None else ("req-body" if method == "REQMOD" else "res-body")
    data = encode_request(method, "icap://127.0.0.1/svc", fields, http_request=http_req, http_response=http_res,
                          body_entity=entity)
    if body is None:
        return data
    out, i, k = [data], 0, 0
    in_preview = preview is not None
    limit = len(body) if preview is None else min(preview, len(body))
    while i < limit:
        n = min(sizes[k % len(sizes)], limit - i)
        out.append(encode_chunk(body[i:i + n]))
        i, k = i + n, k + 1
    if in_preview:
        out.append(last_chunk(ieof=len(body) <= preview))
        if len(body) <= preview:
            return b"".join(out)
        while i < len(body):
            n = min(sizes[k % len(sizes)], len(body) - i)
            out.append(encode_chunk(body[i:i + n]))
            i, k = i + n, k + 1
    out.append(last_chunk())
    return b"".join(out)


@settings(max_examples=200, deadline=None)
@given(requests(), st.lists(st.integers(0, 8000), max_size=10))
def test_round_trip(request_parts, cuts):
    method, http_req, http_res, body, preview, _ = request_parts
    events = _run(_encode(*request_parts), cuts, continue_preview=True)
    request = events[0]
    assert isinstance(request, Request) and request.method == method and request.service == "svc"
    assert request.http_request == http_req and request.http_response == http_res
    assert request.preview == preview
    got = b"".join(e.data for e in events if isinstance(e, BodyData))
    assert got == (body or b"")
    assert isinstance(events[-1], EndOfMessage)
    previews = [e for e in events if isinstance(e, PreviewEnd)]
    whole_in_preview = body is not None and preview is not None and len(body) <= preview
    assert events[-1].ieof == whole_in_preview
    assert len(previews) == (1 if body is not None and preview is not None and not whole_in_preview else 0)


@given(st.integers(0, 2**40), st.booleans())
def test_chunk_line_round_trip(size, ieof):
    line = (b"%x" % size) + (b"; ieof" if ieof else b"")
    header = parse_chunk_line(line, 2**41)
    assert (header.size, header.ieof) == (size, ieof)
