"""Golden transcripts against the running server: these bytes in, exactly those bytes out.

Only the Date value is blanked. Each case also checks what the adapter was
asked and that the connection stays usable (or is closed) as required.
"""

from __future__ import annotations

import os

import pytest

from icapdlp.adaptation.api import Block, NeedBody, NoChange, PartialReplace, Replace
from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead
from icapdlp.icap.replies import SERVER_NAME
from icapdlp.verdict import BlockReason, Blocked
from tests.icap import messages as m
from tests.server.harness import ScriptedAdapter

SRV = SERVER_NAME.encode()
COMMON = b'ISTag: "test-istag"\r\nDate: <date>\r\nServer: ' + SRV + b"\r\n"
NO_CONTENT = b"ICAP/1.0 204 No Content\r\n" + COMMON + b"Encapsulated: null-body=0\r\n\r\n"
BODY = bytes(range(256)) * 40  # 10240 bytes, every byte value


def error(status: bytes, close: bool = True) -> bytes:
    return b"ICAP/1.0 " + status + b"\r\n" + COMMON + (b"Connection: close\r\n" if close else b"") + \
        b"Encapsulated: null-body=0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_options_golden(icap_server, connect):
    client = connect(icap_server().port)
    for request in (m.SQUID_OPTIONS, m.CICAP_OPTIONS):  # without and with Encapsulated, one connection
        client.send(request)
        assert client.read_response().normalized() == (
            b"ICAP/1.0 200 OK\r\nMethods: REQMOD\r\nService: " + SRV + b" DICOM de-identification\r\n" + COMMON
            + b"Max-Connections: 1000\r\nOptions-TTL: 3600\r\nPreview: 4096\r\nTransfer-Preview: *\r\n"
            b"Allow: 204, 206\r\nEncapsulated: null-body=0\r\n\r\n")


def test_options_for_unknown_service_is_404_and_keeps_the_connection(icap_server, connect):
    client = connect(icap_server().port)
    client.send(m.SQUID_OPTIONS.replace(b"/deid-req", b"/nope"))
    assert client.read_response().normalized() == error(b"404 ICAP Service Not Found", close=False)
    client.send(m.SQUID_OPTIONS)
    assert client.read_response().status == 200


def test_get_preview0_null_body_gets_204_and_connection_persists(icap_server, connect):
    adapter = ScriptedAdapter()
    client = connect(icap_server(adapter).port)
    for _ in range(3):
        client.send(m.reqmod_get_preview0())
        assert client.read_response().normalized() == NO_CONTENT
    kind, tx, preview, complete = adapter.calls[0]
    assert (kind, preview, complete, tx.has_body, tx.preview_size) == ("preview", b"", True, False, 0)
    assert tx.request.headers.get("host") == "example.org" and tx.allow_204


def test_preview_with_ieof_never_gets_100_continue(icap_server, connect):
    adapter = ScriptedAdapter(preview=NeedBody())
    client = connect(icap_server(adapter).port)
    first, rest = m.reqmod_post(b"small body", preview=4096, allow_204=False)
    assert rest == b""
    client.send(first)
    response = client.read_response()
    assert response.status == 204  # whole body inside the preview: still "in preview", 204 allowed
    assert [c[0] for c in adapter.calls] == ["preview", "body"] and adapter.calls[1][2] == b"small body"
    assert adapter.calls[0][3] is True


def test_preview_then_100_continue_then_echo_without_allow_204(icap_server, connect):
    adapter = ScriptedAdapter(preview=NeedBody())
    client = connect(icap_server(adapter).port)
    first, rest = m.reqmod_post(BODY, preview=1024, allow_204=False)
    client.send(first)
    cont = client.read_response()
    assert cont.raw == b"ICAP/1.0 100 Continue\r\n\r\n"
    client.send(rest)
    echo = client.read_response()
    assert echo.normalized() == (
        b"ICAP/1.0 200 OK\r\n" + COMMON + b"Encapsulated: req-hdr=0, req-body=%d\r\n\r\n" % len(m.HTTP_POST)
        + m.HTTP_POST + chunk(BODY) + b"0\r\n\r\n")
    assert adapter.calls[0][2] == BODY[:1024] and adapter.calls[0][3] is False
    assert adapter.calls[1][2] == BODY


def test_preview_then_100_continue_then_204_with_allow_204(icap_server, connect):
    client = connect(icap_server(ScriptedAdapter(preview=NeedBody())).port)
    first, rest = m.reqmod_post(BODY, preview=1024, allow_204=True)
    client.send(first)
    assert client.read_response().status == 100
    client.send(rest)
    assert client.read_response().normalized() == NO_CONTENT


def test_no_change_from_preview_is_204_without_continue_and_next_request_follows(icap_server, connect):
    adapter = ScriptedAdapter()
    client = connect(icap_server(adapter).port)
    first, _ = m.reqmod_post(BODY, preview=1024, allow_204=False)  # 204 in a preview is always allowed
    client.send(first + m.SQUID_OPTIONS)  # the client sends no more body after our 204
    assert client.read_response().normalized() == NO_CONTENT
    assert client.read_response().status == 200
    assert [c[0] for c in adapter.calls] == ["preview"]


def test_no_preview_with_allow_204_reads_the_body_then_204(icap_server, connect):
    adapter = ScriptedAdapter()
    client = connect(icap_server(adapter).port)
    data, _ = m.reqmod_post(BODY, allow_204=True)
    client.send(data + m.SQUID_OPTIONS)
    assert client.read_response().normalized() == NO_CONTENT
    assert client.read_response().status == 200  # the body was drained: the next request parses
    assert adapter.calls[0][2:] == (b"", False)


def test_no_preview_without_allow_204_streams_an_echo(icap_server, connect):
    client = connect(icap_server(ScriptedAdapter()).port)
    data, _ = m.respmod(BODY, allow_204=False)
    client.send(data)
    response = client.read_response()
    assert response.status == 200 and response.body == BODY
    assert response.headers["encapsulated"] == f"res-hdr=0, res-body={len(m.HTTP_RESPONSE)}"
    assert response.http_heads == m.HTTP_RESPONSE


def test_block_in_reqmod_sends_res_hdr_and_res_body(icap_server, connect):
    observer_server = icap_server(ScriptedAdapter(preview=Block(BlockReason.POLICY_BLOCKS_DICOM, "policy")))
    client = connect(observer_server.port)
    first, _ = m.reqmod_post(BODY, preview=1024)
    client.send(first)
    page = b"Blocked by icapdlp: policy-blocks-dicom\nTransaction: -\n"
    http = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Length: %d\r\n"
            b"Cache-Control: no-store\r\nX-Icapdlp-Reason: policy-blocks-dicom\r\n\r\n" % len(page))
    assert client.read_response().normalized() == (
        b"ICAP/1.0 200 OK\r\n" + COMMON + b"Encapsulated: res-hdr=0, res-body=%d\r\n\r\n" % len(http)
        + http + chunk(page) + b"0\r\n\r\n")
    record = observer_server.observer.records[-1]
    assert (record.outcome, record.reason, record.icap_status) == ("blocked", BlockReason.POLICY_BLOCKS_DICOM, 200)


@pytest.mark.parametrize("failure", [RuntimeError("SMITH^JOHN"), Blocked(BlockReason.UNPARSEABLE_DICOM, "x"), "bad"])
def test_adapter_failures_block_and_the_server_keeps_serving(icap_server, connect, failure):
    thread = icap_server(ScriptedAdapter(preview=failure))
    client = connect(thread.port)
    client.send(m.reqmod_get_preview0())
    response = client.read_response()
    expected = BlockReason.UNPARSEABLE_DICOM if isinstance(failure, Blocked) else BlockReason.INTERNAL_ERROR
    assert response.status == 200 and b"403 Forbidden" in response.http_heads
    assert expected.value.encode() in response.body
    assert thread.observer.records[-1].reason == expected
    client.send(m.SQUID_OPTIONS)
    assert client.read_response().status == 200


def test_partial_replace_is_206_with_use_original_body(icap_server, connect):
    new_head = HttpRequestHead("POST", "/upload", "HTTP/1.1", HttpHeaders([("Host", "example.org")]))
    adapter = ScriptedAdapter(preview=PartialReplace(new_head, None, b"NEWPREFIX", 512))
    client = connect(icap_server(adapter).port)
    first, _ = m.reqmod_post(BODY, preview=1024, extra=(b"Allow: 206",))
    client.send(first)
    response = client.read_response()
    assert response.status == 206 and response.body == b"NEWPREFIX"
    assert response.last_chunk == b"0; use-original-body=512"
    assert response.http_heads == b"POST /upload HTTP/1.1\r\nHost: example.org\r\n\r\n"


def test_partial_replace_without_allow_206_becomes_a_full_read(icap_server, connect):
    new_head = HttpRequestHead("POST", "/upload", "HTTP/1.1", HttpHeaders([]))
    adapter = ScriptedAdapter(preview=PartialReplace(new_head, None, b"P", 1), body=NoChange())
    client = connect(icap_server(adapter).port)
    first, rest = m.reqmod_post(BODY, preview=1024)
    client.send(first)
    assert client.read_response().status == 100
    client.send(rest)
    assert client.read_response().status == 204
    assert adapter.calls[-1][2] == BODY


def test_replace_in_reqmod_fixes_content_length(icap_server, connect):
    head = HttpRequestHead("POST", "/upload", "HTTP/1.1", HttpHeaders([("Host", "h"), ("Content-Length", "10000")]))
    client = connect(icap_server(ScriptedAdapter(preview=NeedBody(), body=Replace(request=head, body=b"clean"))).port)
    data, _ = m.reqmod_post(BODY)
    client.send(data)
    response = client.read_response()
    assert response.status == 200 and response.body == b"clean"
    assert response.http_heads == b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
    assert response.headers["encapsulated"].startswith("req-hdr=0, req-body=")


def test_replace_in_respmod(icap_server, connect):
    head = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders([("Content-Type", "application/dicom")]))
    client = connect(icap_server(ScriptedAdapter(preview=NeedBody(), body=Replace(response=head, body=b"D" * 70000))).port)
    first, rest = m.respmod(BODY, preview=100)
    client.send(first)
    assert client.read_response().status == 100
    client.send(rest)
    response = client.read_response()
    assert response.body == b"D" * 70000 and response.headers["encapsulated"].startswith("res-hdr=0, res-body=")


@pytest.mark.parametrize("request_bytes", [
    m.reqmod_get_preview0(b"deid-resp"),  # REQMOD on a RESPMOD service
    b"FOO icap://127.0.0.1/deid-req ICAP/1.0\r\nHost: h\r\n\r\n",  # no such method
])
def test_unsupported_method_is_405_and_closed(icap_server, connect, request_bytes):
    client = connect(icap_server().port)
    client.send(request_bytes)
    assert client.read_response().normalized() == error(b"405 Method Not Allowed For Service")
    assert client.is_closed()


@pytest.mark.parametrize("preview", [None, 100])
def test_wrong_service_with_body_is_404_after_the_body_is_read(icap_server, connect, preview):
    thread = icap_server()
    client = connect(thread.port)
    first, _ = m.reqmod_post(BODY, service=b"unknown", preview=preview)
    client.send(first)  # with a preview, the client now waits: nothing more is coming
    assert client.read_response().normalized() == error(b"404 ICAP Service Not Found")
    assert client.is_closed()
    assert thread.observer.records[-1].bytes_in == (100 if preview else len(BODY))


def test_malformed_request_is_400_and_closed(icap_server, connect):
    thread = icap_server()
    client = connect(thread.port)
    client.send(b"REQMOD icap://127.0.0.1/deid-req ICAP/1.0\r\nHost: h\r\n\r\n")  # no Encapsulated
    assert client.read_response().normalized() == error(b"400 Bad Request")
    assert client.is_closed()
    assert thread.observer.records[-1].icap_status == 400


def test_connection_close_is_honoured(icap_server, connect):
    client = connect(icap_server().port)
    client.send(m.reqmod_get_preview0(b"deid-req", b"Connection: close"))
    response = client.read_response()
    assert response.status == 204 and response.headers["connection"] == "close"
    assert client.is_closed()


def test_icap_header_over_limit_is_431_and_closed(icap_server, connect):
    client = connect(icap_server(limits={"icap_header_bytes": 1024}).port)
    client.send(b"OPTIONS icap://h/deid-req ICAP/1.0\r\nX-Pad: " + b"a" * 1100)
    assert client.read_response().normalized() == error(b"431 Request Header Fields Too Large")
    assert client.is_closed()


def test_body_over_limit_is_blocked_with_limit_exceeded_and_closed(icap_server, connect):
    thread = icap_server(ScriptedAdapter(preview=NeedBody()), limits={"body_bytes": 4096})
    client = connect(thread.port)
    data, _ = m.reqmod_post(BODY)
    client.send(data)
    response = client.read_response()
    assert response.status == 200 and b"limit-exceeded" in response.body
    assert response.headers["connection"] == "close"
    assert client.is_closed()
    assert thread.observer.records[-1].reason == BlockReason.LIMIT_EXCEEDED


def test_large_body_is_spooled_to_a_file_that_is_removed(icap_server, connect, tmp_path):
    adapter = ScriptedAdapter(preview=NeedBody())
    client = connect(icap_server(adapter, limits={"spool_memory_bytes": 1024, "spool_dir": str(tmp_path)}).port)
    data, _ = m.reqmod_post(BODY, allow_204=False)
    client.send(data)
    response = client.read_response()
    assert response.body == BODY  # echoed from the spool file
    _, _, seen, path, existed = adapter.calls[-1]
    assert seen == BODY and path is not None and path.startswith(str(tmp_path)) and existed
    client.send(m.SQUID_OPTIONS)  # the spool is closed before the next request is read
    client.read_response()
    assert os.listdir(tmp_path) == []


def test_observer_sees_every_request(icap_server, connect):
    thread = icap_server()
    client = connect(thread.port)
    client.send(m.SQUID_OPTIONS + m.reqmod_get_preview0())
    client.read_response()
    client.read_response()
    client.close()
    thread.stop()
    observer = thread.observer
    assert [r.icap_method for r in observer.records] == ["OPTIONS", "REQMOD"]
    assert [r.icap_status for r in observer.records] == [200, 204]
    assert observer.started == 2 and observer.opened == observer.closed == 1
    assert observer.records[1].tx.service == "deid-req"


def test_worker_queue_overload_is_503(icap_server, connect):
    from icapdlp.server.workers import Overloaded

    thread = icap_server(ScriptedAdapter(preview=Overloaded("queue full")))
    client = connect(thread.port)
    client.send(m.reqmod_get_preview0())
    assert client.read_response().normalized() == error(b"503 Service Overloaded")
    assert client.is_closed() and thread.observer.records[-1].icap_status == 503


def test_spool_file_is_removed_when_the_adapter_fails(icap_server, connect, tmp_path):
    adapter = ScriptedAdapter(preview=NeedBody(), body=RuntimeError("boom"))
    client = connect(icap_server(adapter, limits={"spool_memory_bytes": 1024, "spool_dir": str(tmp_path)}).port)
    data, _ = m.reqmod_post(BODY)
    client.send(data)
    response = client.read_response()
    assert response.status == 200 and b"internal-error" in response.body
    assert adapter.calls[-1][4]  # the spool file existed while the adapter ran
    client.send(m.SQUID_OPTIONS)
    client.read_response()
    assert os.listdir(tmp_path) == []
