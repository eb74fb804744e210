"""Response serialisation: golden bytes and Encapsulated offsets that match the heads."""

from __future__ import annotations

from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead
from icapdlp.icap.chunked import encode_chunk, last_chunk, parse_chunk_line
from icapdlp.icap.writer import CONTINUE, encapsulate, encode_request, encode_response

REQ = HttpRequestHead("POST", "/up", "HTTP/1.1", HttpHeaders([("Host", "a"), ("content-LENGTH", "3")]))
RES = HttpResponseHead("HTTP/1.1", 403, "Forbidden", HttpHeaders([("Content-Length", "2")]))
ISTAG = [("ISTag", '"t1"')]


def test_204_golden():
    assert encode_response(204, ISTAG) == b'ICAP/1.0 204 No Content\r\nISTag: "t1"\r\nEncapsulated: null-body=0\r\n\r\n'


def test_100_continue_golden():
    assert CONTINUE == b"ICAP/1.0 100 Continue\r\n\r\n"


def test_200_request_echo_golden():
    expected = (b'ICAP/1.0 200 OK\r\nISTag: "t1"\r\nEncapsulated: req-hdr=0, req-body=49\r\n\r\n'
                b"POST /up HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 3\r\n\r\n")
    assert encode_response(200, ISTAG, http_request=REQ, body_entity="req-body") == expected
    assert len(b"POST /up HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 3\r\n\r\n") == 49


def test_200_block_in_reqmod_carries_res_hdr_and_res_body():
    head = encode_response(200, ISTAG, http_response=RES, body_entity="res-body")
    assert head.startswith(b"ICAP/1.0 200 OK\r\n")
    assert b"Encapsulated: res-hdr=0, res-body=45\r\n\r\nHTTP/1.1 403 Forbidden\r\n" in head
    assert len(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n") == 45


def test_offsets_match_the_serialised_heads():
    value, heads = encapsulate(REQ, RES, "res-body")
    offsets = dict(part.split("=") for part in value.split(", "))
    req_end = heads.index(b"\r\n\r\n") + 4
    assert int(offsets["req-hdr"]) == 0
    assert int(offsets["res-hdr"]) == req_end and heads[req_end:].startswith(b"HTTP/1.1 403")
    assert int(offsets["res-body"]) == len(heads)
    value, heads = encapsulate(REQ, None, None)
    assert value == f"req-hdr=0, null-body={len(heads)}"


def test_206_last_chunk_and_ieof():
    assert last_chunk(use_original_body=1234) == b"0; use-original-body=1234\r\n\r\n"
    assert last_chunk(ieof=True) == b"0; ieof\r\n\r\n"
    assert last_chunk() == b"0\r\n\r\n"
    header = parse_chunk_line(b"0; use-original-body=1234", 10)
    assert (header.size, header.use_original_body) == (0, 1234)


def test_chunks_are_hex_sized():
    assert encode_chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"


def test_request_without_encapsulated_like_squid_options():
    data = encode_request("OPTIONS", "icap://h/s", [("Host", "h")], encapsulated=False)
    assert data == b"OPTIONS icap://h/s ICAP/1.0\r\nHost: h\r\n\r\n"
