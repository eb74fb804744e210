"""Issue 12 item 8 against a running server: a body without its HTTP head is refused, never echoed.

Squid never sends these, but any other ICAP client can: a REQMOD with
``Encapsulated: req-body=0`` or a RESPMOD without res-hdr. Before the fix the
adapter saw no head, answered "no change", and the server echoed the body
(200, no ``Allow: 204``) or passed it (204).
"""

from __future__ import annotations

import pytest

from tests.icap import messages as m
from tests.server.harness import ScriptedAdapter

PHI = b"SMITH^JOHN planted patient name"
BODY = b"\0" * 128 + b"DICM" + PHI


def _request(method: bytes, service: bytes, encapsulated: bytes, heads: bytes, *, allow_204: bool,
             preview: int | None) -> tuple[bytes, bytes]:
    extra = [b"Allow: 204"] if allow_204 else []
    if preview is not None:
        extra.append(b"Preview: %d" % preview)
        head = m.icap_head(method, service, encapsulated, *extra) + heads
        return head + m.chunked(BODY[:preview], last=b"0\r\n\r\n"), m.chunked(BODY[preview:])
    return m.icap_head(method, service, encapsulated, *extra) + heads + m.chunked(BODY), b""


CASES = {
    "REQMOD req-body only": (b"REQMOD", b"deid-req", b"req-body=0", b""),
    "RESPMOD res-body only": (b"RESPMOD", b"deid-resp", b"res-body=0", b""),
    "RESPMOD req-hdr and res-body": (b"RESPMOD", b"deid-resp", b"req-hdr=0, res-body=%d" % len(m.HTTP_GET),
                                     m.HTTP_GET),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("allow_204", (False, True))
@pytest.mark.parametrize("preview", (None, 16))
def test_a_body_without_its_head_gets_400_and_is_never_echoed(icap_server, connect, name, allow_204, preview):
    adapter = ScriptedAdapter()  # answers "no change" to anything: what used to echo or pass the body
    server = icap_server(adapter)
    client = connect(server.port)
    first, rest = _request(*CASES[name], allow_204=allow_204, preview=preview)
    client.send(first + rest)  # a client that does not wait for 100 Continue: the server reads it all
    response = client.read_response()
    assert response.status == 400
    assert response.headers.get("connection") == "close" and response.body is None
    assert PHI not in response.raw
    assert adapter.calls == []
    assert client.is_closed()
    record = server.observer.records[-1]
    assert (record.icap_status, record.outcome) == (400, "error")


def test_a_bodiless_reqmod_without_req_hdr_is_refused_too(icap_server, connect):
    adapter = ScriptedAdapter()
    client = connect(icap_server(adapter).port)
    client.send(m.icap_head(b"REQMOD", b"deid-req", b"null-body=0", b"Allow: 204"))
    assert client.read_response().status == 400
    assert adapter.calls == []


def test_the_same_requests_with_their_heads_still_reach_the_adapter(icap_server, connect):
    adapter = ScriptedAdapter()
    client = connect(icap_server(adapter).port)
    client.send(m.reqmod_post(BODY)[0])
    assert client.read_response().status == 204
    client.send(m.respmod(BODY, with_req_hdr=False)[0])
    assert client.read_response().status == 204
    asked = [call[1] for call in adapter.calls]
    assert asked and asked[0].request is not None and asked[-1].response is not None
