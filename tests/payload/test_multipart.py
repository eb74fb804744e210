from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icapdlp.payload.multipart import parse_multipart, replace_content
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import form_body

B = "xYzBoundary42"


def test_roundtrip_keeps_every_byte_including_preamble_epilogue_and_padding():
    body = form_body(B, [(b'Content-Disposition: form-data; name="a"', b"alpha"),
                         (b'Content-Disposition: form-data; name="f"; filename="x.dcm"\r\n'
                          b"Content-Type: application/dicom", b"\x00\x01--" + B.encode() + b"X\r\n")],
                     preamble=b"this is a preamble\r\n", epilogue=b"\r\nepilogue text")
    body = body.replace(b"--" + B.encode() + b"\r\n", b"--" + B.encode() + b" \t\r\n", 1)  # transport padding
    parsed = parse_multipart(body, B, 10)
    assert parsed.to_bytes() == body
    assert [p.content for p in parsed.parts] == [b"alpha", b"\x00\x01--" + B.encode() + b"X\r\n"]
    assert parsed.parts[1].filename == "x.dcm"
    assert parsed.parts[1].media_type.essence == "application/dicom"
    assert parsed.preamble.startswith(b"this is a preamble")
    assert parsed.epilogue == b"\r\nepilogue text"


def test_boundary_prefix_inside_content_does_not_split_the_part():
    content = b"line\r\n--" + B.encode() + b"tail is longer than the boundary"
    body = form_body(B, [(b"Content-Type: text/plain", content)])
    assert parse_multipart(body, B, 10).parts[0].content == content


def test_part_without_headers_and_empty_part():
    d = b"--" + B.encode()
    body = d + b"\r\n\r\nbare\r\n" + d + b"\r\nX-A: 1\r\n\r\n\r\n" + d + b"--"
    parsed = parse_multipart(body, B, 10)
    assert [p.content for p in parsed.parts] == [b"bare", b""]
    assert parsed.to_bytes() == body


@pytest.mark.parametrize("body, detail", [
    (b"no delimiter at all", "no delimiter line"),
    (b"--" + B.encode() + b"\r\nA: b\r\n\r\ncontent without close", "no close delimiter"),
    (b"--" + B.encode() + b"\r\nA: b without blank line", "part header block"),
])
def test_malformed_bodies_are_blocked_not_passed(body, detail):
    with pytest.raises(Blocked) as info:
        parse_multipart(body, B, 10)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM
    assert detail in info.value.detail


def test_part_count_limit_at_limit_and_one_past():
    body = form_body(B, [(b"A: 1", b"x")] * 5)
    assert len(parse_multipart(body, B, 5).parts) == 5
    with pytest.raises(Blocked) as info:
        parse_multipart(body, B, 4)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_boundary_length_limit():
    long = "b" * 200
    body = form_body(long, [(b"A: 1", b"x")])
    assert parse_multipart(body, long, 1).parts[0].content == b"x"
    with pytest.raises(Blocked):
        parse_multipart(form_body(long + "b", [(b"A: 1", b"x")]), long + "b", 1)


def test_replace_content_fixes_length_drops_md5_and_refuses_boundary_collisions():
    headers = b"Content-Length: 5\r\nContent-MD5: abc\r\nContent-Type: application/dicom"
    body = form_body(B, [(headers, b"hello")])
    part = parse_multipart(body, B, 10).parts[0]
    new = replace_content(part, b"longer content", b"--" + B.encode())
    assert new.header("Content-Length") == "14"
    assert new.header("Content-MD5") is None
    assert new.header("Content-Type") == "application/dicom"
    for bad in (b"a\r\n--" + B.encode(), b"--" + B.encode() + b"zz"):
        with pytest.raises(Blocked) as info:
            replace_content(part, bad, b"--" + B.encode())
        assert info.value.reason is BlockReason.INTERNAL_ERROR


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["b", B, "--", "a b"]))
def test_arbitrary_bytes_parse_or_block(data, boundary):
    try:
        parsed = parse_multipart(data, boundary, 50)
    except Blocked as blocked:
        assert blocked.reason in (BlockReason.UNPARSEABLE_DICOM, BlockReason.LIMIT_EXCEEDED)
    else:
        assert parsed.to_bytes() == data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=5), st.binary(max_size=20),
       st.binary(max_size=20))
def test_well_formed_bodies_roundtrip(contents, preamble, epilogue):
    parts = [(b"Content-Type: application/octet-stream", c) for c in contents]
    body = form_body(B, parts, preamble=(preamble.replace(b"\r", b"") + b"\r\n") if preamble else b"",
                     epilogue=(b"\r\n" + epilogue) if epilogue else b"")  # a line end after the close
    try:
        parsed = parse_multipart(body, B, 10)
    except Blocked:
        assert any(b"\r\n--" + B.encode() in c or c.startswith(b"--" + B.encode()) for c in contents) or \
            b"--" + B.encode() in preamble
        return
    assert parsed.to_bytes() == body


def test_part_header_block_limit_at_limit_and_one_past():
    from icapdlp.payload.multipart import MAX_PART_HEADER_BYTES

    def body_with_header(size: int) -> bytes:
        line = b"X-Pad: " + b"a" * (size - len(b"X-Pad: ") - 4)  # + CRLF CRLF = size bytes
        return form_body(B, [(line, b"content")])

    assert parse_multipart(body_with_header(MAX_PART_HEADER_BYTES), B, 1).parts[0].content == b"content"
    with pytest.raises(Blocked) as info:
        parse_multipart(body_with_header(MAX_PART_HEADER_BYTES + 1), B, 1)
    assert "header block" in info.value.detail


@pytest.mark.parametrize("body", [
    # the blank line after the first part's headers is missing: its "header block" would run over
    # its content and the next delimiter (fuzz finding: a whole DICOM object rode through there)
    b"--" + B.encode() + b"\r\nX-Note: 1\r\nhidden content\r\n--" + B.encode() + b"\r\nA: b\r\n\r\nx\r\n--"
    + B.encode() + b"--",
    # a line in the header block that is not a header field
    b"--" + B.encode() + b"\r\nContent-Type: text/plain\r\nnot a header\r\n\r\nx\r\n--" + B.encode() + b"--",
    # the blank line that ends the headers doubles as the delimiter's CRLF
    b"--" + B.encode() + b"\r\nA: b\r\n\r\n--" + B.encode() + b"--",
    # binary in a header value (fuzz finding: dataset bytes spliced into a name="..." parameter)
    b"--" + B.encode() + b'\r\nContent-Disposition: form-data; name="x\x08\x00\x10\x10SH"\r\n\r\nv\r\n--'
    + B.encode() + b"--",
])
def test_header_blocks_that_could_hide_content_are_malformed(body):
    with pytest.raises(Blocked) as info:
        parse_multipart(body, B, 10)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


def test_folded_header_lines_are_fields_not_hidden_content():
    body = form_body(B, [(b"Content-Disposition: form-data;\r\n name=\"a\"", b"x")])
    assert parse_multipart(body, B, 10).parts[0].header("Content-Disposition") == 'form-data; name="a"'


def test_preamble_and_epilogue_limit_at_limit_and_one_past():
    from icapdlp.payload.multipart import MAX_PREAMBLE_BYTES

    def body(preamble: int, epilogue: int) -> bytes:
        return form_body(B, [(b"A: 1", b"x")], preamble=b"p" * (preamble - 2) + b"\r\n",
                         epilogue=(b"\r\n" + b"e" * (epilogue - 2)) if epilogue else b"")

    assert parse_multipart(body(MAX_PREAMBLE_BYTES, MAX_PREAMBLE_BYTES), B, 1).parts[0].content == b"x"
    for preamble, epilogue in ((MAX_PREAMBLE_BYTES + 1, 0), (2, MAX_PREAMBLE_BYTES + 1)):
        with pytest.raises(Blocked) as info:
            parse_multipart(body(preamble, epilogue), B, 1)
        assert info.value.reason is BlockReason.LIMIT_EXCEEDED
