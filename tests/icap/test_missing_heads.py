"""Issue 12 item 8: a REQMOD/RESPMOD without the HTTP head its method adapts, byte by byte.

RFC 3507 lets a client leave out req-hdr (REQMOD) or res-hdr (RESPMOD). The
codec still frames such a request (its bytes must be consumed to answer at
all), and the Request event names the missing head so the server refuses it
instead of echoing or passing a body whose type, encoding and target nobody
knows.
"""

from __future__ import annotations

import pytest

from icapdlp.icap import NEED_DATA, RequestParser
from icapdlp.icap.events import BodyData, EndOfMessage
from tests.icap import messages as m

BODY = b"DICM-like bytes nobody can classify"

WITHOUT_HEAD = {
    "REQMOD req-body only": (m.icap_head(b"REQMOD", b"deid-req", b"req-body=0") + m.chunked(BODY), "req-hdr"),
    "REQMOD null-body only": (m.icap_head(b"REQMOD", b"deid-req", b"null-body=0"), "req-hdr"),
    "RESPMOD res-body only": (m.icap_head(b"RESPMOD", b"deid-resp", b"res-body=0") + m.chunked(BODY), "res-hdr"),
    "RESPMOD req-hdr + res-body": (m.icap_head(b"RESPMOD", b"deid-resp", b"req-hdr=0, res-body=%d" % len(m.HTTP_GET))
                                   + m.HTTP_GET + m.chunked(BODY), "res-hdr"),
    "RESPMOD req-hdr + null-body": (m.icap_head(b"RESPMOD", b"deid-resp", b"req-hdr=0, null-body=%d" % len(m.HTTP_GET))
                                    + m.HTTP_GET, "res-hdr"),
}

WITH_HEAD = {
    "REQMOD with req-hdr": m.reqmod_post(BODY)[0],
    "REQMOD GET": m.reqmod_get_preview0(),
    "RESPMOD with both heads": m.respmod(BODY)[0],
    "RESPMOD res-hdr only": m.respmod(BODY, with_req_hdr=False)[0],
    "OPTIONS": m.CICAP_OPTIONS,
    "OPTIONS without Encapsulated": m.SQUID_OPTIONS,
}


def _events(data: bytes, bytewise: bool) -> list:
    parser = RequestParser()
    events = []
    for piece in ([data[i:i + 1] for i in range(len(data))] if bytewise else [data]):
        parser.receive_data(piece)
        while (event := parser.next_event()) is not NEED_DATA:
            events.append(event)
    return events


@pytest.mark.parametrize("name", sorted(WITHOUT_HEAD))
@pytest.mark.parametrize("bytewise", (False, True))
def test_a_request_without_the_head_its_method_adapts_names_the_missing_head(name, bytewise):
    data, missing = WITHOUT_HEAD[name]
    events = _events(data, bytewise)
    request = events[0]
    assert request.missing_http_head == missing
    # still framed to its end, so the server can consume it and answer before closing
    assert isinstance(events[-1], EndOfMessage)
    assert b"".join(e.data for e in events if isinstance(e, BodyData)) in (BODY, b"")


@pytest.mark.parametrize("name", sorted(WITH_HEAD))
def test_requests_with_their_head_miss_nothing(name):
    assert _events(WITH_HEAD[name], False)[0].missing_http_head is None
